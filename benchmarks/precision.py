"""bfloat16 inference vs float32: throughput, and the SRCC change on held-out CLIVE.

`Scorer(model, precision="bfloat16")` runs the backbone convs in bfloat16 (oneDNN
uses AVX-512 BF16 / AMX where the CPU has them); preprocessing, pooling and the head
stay float32. Throughput is timed on pre-decoded 500x500 batches, the two precisions
in interleaved rounds; the roofline of each is one large 3x3 conv in that dtype.
Scores: the 186 CLIVE photos of fold 1 of configs/folds/clive_5fold.json, SRCC against
their MOS in each precision. The shipped model trained on every CLIVE photo, so these
SRCCs measure how far bfloat16 moves the ranking, not the model's accuracy.

Usage: python benchmarks/precision.py [--images 16] [--rounds 3] [--photos 186]
"""

import argparse
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402


def fold_photos(count):
    """(paths, MOS) of the first `count` CLIVE photos of CV fold 1."""
    folds = json.loads((_common.ROOT / "configs/folds/clive_5fold.json").read_text())
    names = folds["folds"][0][:count]
    clive = _common.DATA / "clive"
    with open(clive / "mos.csv", newline="") as f:
        mos = {row["image"]: float(row["mos"]) for row in csv.DictReader(f)}
    return [str(clive / n) for n in names], [mos[n] for n in names]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="500x500 photos timed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", type=int, default=186, help="photos of fold 1 scored")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    from scipy.stats import spearmanr

    from diqa_tf.data import files
    from diqa_tf.inference import Scorer

    model = _common.shipped_model()
    scorers = {p: Scorer(model, 8, precision=p) for p in ("float32", "bfloat16")}
    images = [files.read_image(p) for p in _common.clive_paths(args.images)]
    batches = [tf.stack(images[i : i + 8]) for i in range(0, len(images), 8)]
    conv32, flops = _common.big_conv()
    conv16, _ = _common.big_conv(dtype="bfloat16")
    cases = {
        "float32 model": lambda: [scorers["float32"].score_batch(b) for b in batches],
        "bfloat16 model": lambda: [scorers["bfloat16"].score_batch(b) for b in batches],
        "float32 3x3 conv": lambda: [conv32() for _ in range(3)],
        "bfloat16 3x3 conv": lambda: [conv16() for _ in range(3)],
    }
    for fn in cases.values():
        fn()
    wall, cpu = _common.interleaved(cases, args.rounds)
    per_image = _common.conv_stack_flops(model, 500, 500)
    work = {k: len(images) * per_image for k in cases}
    work["float32 3x3 conv"] = work["bfloat16 3x3 conv"] = 3 * flops
    rows = [
        (k, work[k] / wall[k] / 1e9, work[k] / cpu[k] / 1e9)
        for k in cases
    ]
    _common.table(["path", "GFLOP/wall s", "GFLOP/CPU s"], rows)
    speedup_wall = wall["float32 model"] / wall["bfloat16 model"]
    speedup_cpu = cpu["float32 model"] / cpu["bfloat16 model"]

    paths, mos = fold_photos(args.photos)
    scores = {}
    for precision, scorer in scorers.items():
        result, errors = scorer.score_files(paths)
        assert not errors
        scores[precision] = np.array([result[p] for p in paths])
    srcc = {p: float(spearmanr(s, mos)[0]) for p, s in scores.items()}
    diff = np.abs(scores["bfloat16"] - scores["float32"])
    summary = {
        "bf16_speedup_wall": speedup_wall,
        "bf16_speedup_cpu": speedup_cpu,
        "scored_photos": len(paths),
        "srcc_float32": srcc["float32"],
        "srcc_bfloat16": srcc["bfloat16"],
        "abs_srcc_change": abs(srcc["bfloat16"] - srcc["float32"]),
        "srcc_bf16_vs_fp32_scores": float(spearmanr(scores["bfloat16"], scores["float32"])[0]),
        "max_abs_score_change": float(diff.max()),
        "mean_abs_score_change": float(diff.mean()),
    }
    for key, value in summary.items():
        print(f"{key:28s} {value:.4g}")
    _common.write_result(
        "precision",
        {
            "rounds": args.rounds,
            "timed_images": len(images),
            "gflop_per_wall_s": {k: work[k] / wall[k] / 1e9 for k in cases},
            "gflop_per_cpu_s": {k: work[k] / cpu[k] / 1e9 for k in cases},
            **summary,
        },
    )


if __name__ == "__main__":
    main()
