"""Does averaging a photo's score with its mirror image's help? (issue 17, test-time lever)

For each finished fold of a `diqa benchmark --folds` run, scores the fold's test photos
as they are and mirrored left-right, and reports SRCC against MOS for each and for their
mean. The mean costs a second forward pass: half of `diqa predict`'s throughput.

    python benchmarks/flip_average_cv.py --run benchmarks/results/cv/lr1e-3_rank0.2_e12
"""

import argparse
import json
from pathlib import Path

import numpy as np

from _common import table, write_result


def main():
    from scipy.stats import spearmanr

    from diqa_tf.data import files
    from diqa_tf.inference import Scorer
    from diqa_tf.models import QualityModel
    from diqa_tf.resources import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a `diqa benchmark --folds` output folder")
    parser.add_argument("--name", help="results/NAME.json (default: flip_average-RUN)")
    args = parser.parse_args()
    run = Path(args.run)
    protocol = json.loads((run / "protocol.json").read_text())
    root = Path(protocol["settings"]["root"]).parent

    per_fold, rows = {}, []
    for result_file in sorted(run.glob("split_*/result.json")):
        result = json.loads(result_file.read_text())
        model = load_model(result_file.parent / "stage2" / "stage2.keras", expected=QualityModel)
        scorer = Scorer(model)
        images = [files.read_image(root / p["image"]).numpy() for p in result["predictions"]]
        mos = [p["score"] for p in result["predictions"]]
        plain = scorer.score_arrays(images)
        mirrored = scorer.score_arrays([image[:, ::-1] for image in images])
        srcc = {name: float(spearmanr(scores, mos)[0]) for name, scores in
                (("plain", plain), ("mirrored", mirrored), ("mean", (plain + mirrored) / 2))}
        per_fold[result["split"]] = srcc
        rows.append([result["split"], srcc["plain"], srcc["mirrored"], srcc["mean"]])
    means = {k: float(np.mean([f[k] for f in per_fold.values()])) for k in ("plain", "mirrored", "mean")}
    rows.append(["mean", means["plain"], means["mirrored"], means["mean"]])
    table(["fold", "SRCC plain", "SRCC mirrored", "SRCC mean of both"], rows)
    write_result(args.name or f"flip_average-{run.name}",
                 {"run": str(run), "srcc_by_fold": per_fold, "mean_srcc": means})


if __name__ == "__main__":
    main()
