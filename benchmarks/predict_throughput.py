"""`diqa predict` on real photos: end to end vs the bare model vs one image at a time.

Rows, all measured in the same run in interleaved rounds (median of each):
- end to end: `Scorer.score_files` (read, decode, normalize, model) plus the CSV,
  in float32 and in bfloat16; and `diqa predict` itself, in process, on all the
  photos and on one: its time includes a fixed start-up (loading the model, tracing
  and optimizing its graph), so its rate per photo is the difference of the two;
- bare model: the Keras QualityModel on pre-normalized tensors (all outputs), and
  the Scorer's score graph on pre-decoded tensors (normalization included);
- tutorial style: one image at a time, eager (decode, normalize, model(x));
- the roofline: one large 3x3 convolution in TF, float32 and bfloat16.
Rates are given per wall second and per CPU second of the process (all threads):
on a busy machine the wall time is noise, while CPU time is the work each path
does, which bounds throughput once the cores are saturated.

Usage: python benchmarks/predict_throughput.py [--images 48] [--rounds 5] [--no-bfloat16]
"""

import argparse
import csv
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402

E2E = "end to end (score_files + CSV)"
BARE = "bare Keras model, pre-normalized"
GRAPH = "Scorer graph, pre-decoded"
TUTORIAL = "tutorial: one at a time, eager"
CLI = "diqa predict (CLI, loads the model)"
CLI_ONE = "diqa predict, 1 photo (start-up)"
PEAK = "one 3x3 conv 4x128x128x128->128"
PEAK_BF16 = PEAK + ", bfloat16"
E2E_BF16 = E2E + ", bfloat16"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="CLIVE 500x500 photos")
    parser.add_argument("--tutorial-images", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-bfloat16", action="store_true",
                        help="skip the bfloat16 rows (a CPU without native bfloat16 emulates "
                        "it, many times slower)")
    args = parser.parse_args()

    import tensorflow as tf

    from diqa_tf import preprocessing
    from diqa_tf.cli import main as cli_main
    from diqa_tf.data import files
    from diqa_tf.inference import Scorer

    model = _common.shipped_model()
    config = model.preprocessing_config
    scorer = Scorer(model, args.batch_size)
    scorer_bf16 = None if args.no_bfloat16 else Scorer(model, args.batch_size, precision="bfloat16")
    spec = {
        "image": tf.TensorSpec([None, None, None, 1], tf.float32),
        "features": tf.TensorSpec([None, 2], tf.float32),
    }
    bare = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    peak_run, peak_flops = _common.big_conv()
    peak_bf16_run = None if args.no_bfloat16 else _common.big_conv(dtype="bfloat16")[0]
    out_csv = os.path.join(tempfile.mkdtemp(prefix="diqa_bench_"), "scores.csv")

    sets = {
        "clive 500x500": _common.clive_paths(args.images),
        "kodak 768x512": _common.kodak_paths(),
    }
    rows, results = [], {}
    for name, paths in sets.items():
        images = [files.read_image(p) for p in paths]
        by_size = {}
        for image in images:
            by_size.setdefault(tuple(image.shape), []).append(image)
        batches = [
            tf.stack(group[i : i + args.batch_size])
            for group in by_size.values()
            for i in range(0, len(group), args.batch_size)
        ]
        normalized = [preprocessing.normalize(b, config) for b in batches]
        tutorial_paths = paths[: args.tutorial_images]

        def end_to_end(scorer):
            scores, errors = scorer.score_files(paths)
            assert not errors and len(scores) == len(paths)
            with open(out_csv, "w", newline="") as f:
                csv.writer(f).writerows(sorted(scores.items()))

        def tutorial():
            for path in tutorial_paths:
                image = tf.io.decode_image(
                    tf.io.read_file(path), channels=3, dtype=tf.float32
                ) * 255.0
                inputs = preprocessing.normalize(image[tf.newaxis], config)
                float(model(inputs)["score"][0])

        cases = {
            E2E: lambda: end_to_end(scorer),
            E2E_BF16: lambda: end_to_end(scorer_bf16),
            CLI: lambda: cli_main(["predict", *paths, "--output", out_csv]),
            CLI_ONE: lambda: cli_main(["predict", paths[0], "--output", out_csv]),
            BARE: lambda: [bare(x)["score"].numpy() for x in normalized],
            GRAPH: lambda: [scorer.score_batch(b) for b in batches],
            TUTORIAL: tutorial,
            PEAK: lambda: [peak_run() for _ in range(3)],
            PEAK_BF16: lambda: [peak_bf16_run() for _ in range(3)],
        }
        if args.no_bfloat16:
            del cases[E2E_BF16], cases[PEAK_BF16]
        for fn in cases.values():  # warm-up: traces, oneDNN primitives
            fn()
        wall, cpu = _common.interleaved(cases, args.rounds)
        flops = sum(_common.conv_stack_flops(model, *i.shape[:2]) for i in images) / len(images)
        work = {key: len(paths) * flops for key in cases}
        work[TUTORIAL] = len(tutorial_paths) * flops
        work[CLI_ONE] = flops
        work[PEAK] = work[PEAK_BF16] = 3 * peak_flops
        gflops_wall = {key: work[key] / wall[key] / 1e9 for key in cases}
        gflops_cpu = {key: work[key] / cpu[key] / 1e9 for key in cases}
        for key in cases:
            images_per_s = "" if key in (PEAK, PEAK_BF16) else work[key] / flops / wall[key]
            rows.append((
                name, key, images_per_s,
                gflops_wall[key] / gflops_wall[BARE], gflops_cpu[key] / gflops_cpu[BARE],
                gflops_wall[key], gflops_cpu[key],
            ))

        def ratios(per, marginal):
            """The ratios of the targets, those whose rows ran."""
            pairs = {
                "end_to_end / bare_model": (E2E, BARE),
                "end_to_end / scorer_graph": (E2E, GRAPH),
                "bare_model / conv_peak": (BARE, PEAK),
                "end_to_end_bf16 / conv_peak_bf16": (E2E_BF16, PEAK_BF16),
                "end_to_end / tutorial": (E2E, TUTORIAL),
                "end_to_end_bf16 / tutorial": (E2E_BF16, TUTORIAL),
            }
            out = {k: per[a] / per[b] for k, (a, b) in pairs.items() if a in per and b in per}
            out["cli_per_photo_after_startup / bare_model"] = marginal / per[BARE]
            return out

        # The CLI per photo once started: (N - 1) photos in the difference of the runs.
        marginal_wall = (len(paths) - 1) * flops / (wall[CLI] - wall[CLI_ONE]) / 1e9
        marginal_cpu = (len(paths) - 1) * flops / (cpu[CLI] - cpu[CLI_ONE]) / 1e9

        results[name] = {
            "images": len(paths),
            "conv_stack_gflop_per_image": flops / 1e9,
            "wall_seconds": wall,
            "cpu_seconds": cpu,
            "gflop_per_wall_s": gflops_wall,
            "gflop_per_cpu_s": gflops_cpu,
            "cli_startup_wall_s": wall[CLI_ONE],
            "ratios_wall": ratios(gflops_wall, marginal_wall),
            "ratios_cpu": ratios(gflops_cpu, marginal_cpu),
        }
    _common.table(
        ["images", "path", "images/s", "x bare (wall)", "x bare (CPU)",
         "GFLOP/wall s", "GFLOP/CPU s"],
        rows,
    )
    for name, result in results.items():
        for kind in ("ratios_wall", "ratios_cpu"):
            print(name, kind, {k: round(v, 3) for k, v in result[kind].items()})
    _common.write_result(
        "predict_throughput",
        {"batch_size": args.batch_size, "rounds": args.rounds, "sets": results},
    )


if __name__ == "__main__":
    main()
