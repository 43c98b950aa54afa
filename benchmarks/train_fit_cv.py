"""Does stage 2 underfit or overfit? SRCC on a fold model's own training photos vs its test fold.

For the folds of a `diqa benchmark --folds` run, scores the photos each fold's model
trained on (whole images, as at test time) and sets their SRCC against MOS beside the
test fold's. Training SRCC near the test SRCC means the model cannot fit even the
photos it saw (underfitting: more capacity or training helps); far above it,
overfitting (regularization helps).

    python benchmarks/train_fit_cv.py --run benchmarks/results/cv/lr1e-3_rank0.2_e12 \
        --folds configs/folds/clive_5fold.json --split 1
"""

import argparse
import json
from pathlib import Path

from _common import table, write_result


def main():
    from scipy.stats import pearsonr, spearmanr

    from diqa_tf.config import TrainingRecipe
    from diqa_tf.data import files
    from diqa_tf.data.databases import get_database
    from diqa_tf.evaluation.folds import read_folds
    from diqa_tf.evaluation.protocol import load_records
    from diqa_tf.inference import Scorer
    from diqa_tf.models import QualityModel
    from diqa_tf.resources import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a `diqa benchmark --folds` output folder")
    parser.add_argument("--folds", required=True, help="the run's folds file")
    parser.add_argument("--split", type=int, nargs="+", help="1-based folds (default: all done)")
    parser.add_argument("--name", help="results/NAME.json (default: train_fit-RUN)")
    args = parser.parse_args()
    run = Path(args.run)
    root = Path(json.loads((run / "protocol.json").read_text())["settings"]["root"])
    records = load_records(get_database("csv"), root, TrainingRecipe())
    folds = read_folds(args.folds, root, records)
    splits = args.split or [int(p.parent.name.split("_")[1])
                            for p in sorted(run.glob("split_*/result.json"))]

    per_fold, rows = {}, []
    for split in splits:
        result = json.loads((run / f"split_{split:02d}" / "result.json").read_text())
        model = load_model(run / f"split_{split:02d}" / "stage2" / "stage2.keras",
                           expected=QualityModel)
        train = folds[split - 1][0]
        scores = Scorer(model).score_arrays(
            [files.read_image(records[i].path).numpy() for i in train])
        mos = [records[i].score for i in train]
        per_fold[split] = {"train_srcc": float(spearmanr(scores, mos)[0]),
                           "train_plcc_linear": float(pearsonr(scores, mos)[0]),
                           "test_srcc": result["metrics"]["srcc"], "train_images": len(train)}
        rows.append([split, len(train), per_fold[split]["train_srcc"],
                     per_fold[split]["test_srcc"]])
    table(["fold", "training photos", "SRCC on them", "SRCC on the test fold"], rows)
    write_result(args.name or f"train_fit-{run.name}", {"run": str(run), "folds": per_fold})


if __name__ == "__main__":
    main()
