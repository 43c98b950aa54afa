"""Size, latency and ranking fidelity of the .tflite variants of the shipped model.

For each quantization mode at 500x500 (by default): file size, p50/p95 latency of
one image on the LiteRT interpreter (2 threads), and SRCC against the float .tflite
model on 40 real images (scikit-image photos, undistorted and distorted). The Keras
float32 model (same normalization in the graph, TF limited to 2 threads) is timed
in the same run as the baseline. Latencies are measured in interleaved rounds, so a
burst of load from other processes hits every variant alike; report them as ratios.

Usage: python benchmarks/tflite_variants.py [--runs 100] [--rounds 5] [--threads 2]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402

KINDS = ("jpeg", "gaussian_blur", "white_noise", "contrast", "motion_blur",
         "low_light_noise", "exposure", "resampling_blur")


def evaluation_images(size):
    """40 images: 8 photos, each undistorted and at 4 distortions (kinds and levels vary)."""
    import tensorflow as tf

    from diqa_tf.data import distortions
    from diqa_tf.data.files import skimage_photos
    from diqa_tf.export import tflite

    images = []
    for p, (_, photo) in enumerate(skimage_photos()):
        base = tflite.fit_to_input(photo, size)
        images.append(base)
        for j in range(4):
            kind = distortions.ALL_KINDS.index(KINDS[(2 * p + j) % len(KINDS)])
            level = (p + j) % distortions.NUM_LEVELS
            out = distortions.distort(base, kind, level, tf.constant([p, j]))
            images.append(out.numpy())
    return images


def interleaved_latencies(runners, image, runs, warmup, rounds):
    """({name: [wall s]}, {name: [CPU s]}): `runs / rounds` calls of each runner in turn.

    CPU time (all threads of the process) says how much work a call is, which a busy
    machine disturbs less than the wall time.
    """
    for run in runners.values():
        for _ in range(warmup):
            run(image)
    wall = {name: [] for name in runners}
    cpu = {name: [] for name in runners}
    per_round = -(-runs // rounds)
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(per_round):
                w, c = time.perf_counter(), time.process_time()
                run(image)
                wall[name].append(time.perf_counter() - w)
                cpu[name].append(time.process_time() - c)
    return ({n: t[:runs] for n, t in wall.items()}, {n: t[:runs] for n, t in cpu.items()})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, nargs=2, default=[500, 500], metavar=("H", "W"))
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    size = tuple(args.input_size)

    import numpy as np
    import tensorflow as tf
    from scipy.stats import spearmanr

    from diqa_tf.export import tflite
    from diqa_tf.export.litert_runner import TFLiteScorer
    from diqa_tf.inference import Scorer

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    model = _common.shipped_model()
    images = evaluation_images(size)
    keras_scorer = Scorer(model, batch_size=1)
    variants, runners = {}, {"keras_fp32": lambda image: keras_scorer.predict_batch([image])}
    with tempfile.TemporaryDirectory() as folder:
        for mode in tflite.QUANTIZE_MODES:
            start = time.perf_counter()
            flatbuffer = tflite.convert(model, size, mode)
            seconds = time.perf_counter() - start
            path = tflite.write_tflite(flatbuffer, Path(folder) / f"{mode}.tflite")
            scorer = TFLiteScorer(path, num_threads=args.threads)
            variants[mode] = {"bytes": len(flatbuffer), "convert_s": round(seconds, 1),
                              "scores": scorer.score_arrays(images)}
            runners[mode] = scorer.run
            print(f"converted {mode} in {seconds:.1f} s", file=sys.stderr)
        wall, cpu = interleaved_latencies(runners, images[0], args.runs, args.warmup, args.rounds)

    variants["keras_fp32"] = {"scores": keras_scorer.score_arrays(images)}
    reference = variants["none"]["scores"]
    p50_float = float(np.median(wall["none"]))
    cpu_float = float(np.median(cpu["none"]))
    rows, results = [], []
    for name in runners:
        scores = variants[name]["scores"]
        size_bytes = variants[name].get("bytes")
        p50, p95 = (float(np.percentile(wall[name], q)) for q in (50, 95))
        result = {
            "variant": name,
            "bytes": size_bytes,
            "size_vs_float": size_bytes / variants["none"]["bytes"] if size_bytes else None,
            "convert_s": variants[name].get("convert_s"),
            "p50_ms": 1000 * p50,
            "p95_ms": 1000 * p95,
            "p50_vs_float": p50 / p50_float,
            "cpu_ms_median": 1000 * float(np.median(cpu[name])),
            "cpu_vs_float": float(np.median(cpu[name])) / cpu_float,
            "srcc_vs_float": float(spearmanr(scores, reference)[0]),
            "max_abs_diff_vs_float": float(np.max(np.abs(scores - reference))),
        }
        results.append(result)
        rows.append((name, size_bytes / 1e6 if size_bytes else "-",
                     result["size_vs_float"] or "-", result["p50_ms"], result["p95_ms"],
                     result["p50_vs_float"], result["cpu_vs_float"],
                     f"{result['srcc_vs_float']:.4f}", result["max_abs_diff_vs_float"]))
    print(f"\nshipped model at {size[0]}x{size[1]}: {len(images)} images for SRCC, "
          f"{args.runs} timed calls each, {args.threads} threads")
    _common.table(["variant", "MB", "size x float", "p50 ms", "p95 ms", "p50 x float",
                   "CPU x float", "SRCC vs float", "max |d score|"], rows)
    _common.write_result("tflite_variants", {
        "input_size": list(size), "images": len(images), "runs": args.runs,
        "threads": args.threads, "litert": _version("ai-edge-litert"), "variants": results,
    })


def _version(package):
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
