"""Do scores fall as synthetic distortions grow, on CLIVE's best photos? (issue 17)

CLIVE rarely shows white noise, JPEG or blur added to a good photo, so a model tuned
on it alone can learn "more high frequencies = better" and rate noise as an
improvement. This check takes the N CLIVE photos with the highest MOS (with --fold,
only those of that test fold, so a CV model is checked on photos it never trained on),
distorts each with JPEG, Gaussian blur and white noise at the 5 levels of
`diqa_tf.data.distortions` (as `diqa demo` does), and reports, per distortion, how many
series fall (Spearman of score against level <= -0.8, the original counted as the
lowest level) and the mean score per level. It also runs `diqa demo`'s table and says
whether each row falls at every step.

    python benchmarks/distortion_check.py --model saved_models/diqa_clive.keras
    python benchmarks/distortion_check.py --model RUN/split_01/stage2/stage2.keras \
        --folds configs/folds/clive_5fold.json --fold 1 --name distortion_check-RUN
"""

import argparse
from pathlib import Path

import numpy as np

from _common import DATA, series_scores, table, write_result

KINDS = ("jpeg", "gaussian_blur", "white_noise")
FALLS = -0.8  # a series "falls" when its Spearman against the level is at most this


def best_photos(records, count, indices=None):
    """The `count` records with the highest score (among `indices` when given)."""
    pool = range(len(records)) if indices is None else indices
    return sorted(pool, key=lambda i: -records[i].score)[:count]


def main():
    from scipy.stats import spearmanr

    from diqa_tf import demo
    from diqa_tf.config import TrainingRecipe
    from diqa_tf.data import files
    from diqa_tf.data.databases import get_database
    from diqa_tf.evaluation.folds import read_folds
    from diqa_tf.evaluation.protocol import load_records
    from diqa_tf.explain import Explainer
    from diqa_tf.inference import Scorer
    from diqa_tf.models import QualityModel
    from diqa_tf.resources import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a stage-2 .keras model")
    parser.add_argument("--root", default=str(DATA / "clive" / "mos.csv"), help="the scored CSV")
    parser.add_argument("--photos", type=int, default=12, help="how many of the best photos (12)")
    parser.add_argument("--folds", help="a folds file; with --fold, photos of that test fold only")
    parser.add_argument("--fold", type=int, help="1-based fold number (needs --folds)")
    parser.add_argument("--name", default="distortion_check", help="results/NAME.json")
    args = parser.parse_args()

    root = Path(args.root).resolve()
    records = load_records(get_database("csv"), root, TrainingRecipe())
    indices = None
    if args.fold:
        indices = read_folds(args.folds, root, records)[args.fold - 1][1]
    chosen = best_photos(records, args.photos, indices)
    model = load_model(args.model, expected=QualityModel)
    scorer = Scorer(model)

    per_kind, rows = {}, []
    for kind in KINDS:
        series = []
        for i in chosen:
            rgb = files.read_image(records[i].path).numpy()
            scores = series_scores(scorer, rgb, kind, seed=i)
            series.append({"image": Path(records[i].path).name, "mos": records[i].score,
                           "scores": scores,
                           "spearman": float(spearmanr(range(len(scores)), scores)[0])})
        rhos = [s["spearman"] for s in series]
        means = np.mean([s["scores"] for s in series], axis=0).tolist()
        per_kind[kind] = {"falling": int(sum(r <= FALLS for r in rhos)), "series": len(series),
                          "median_spearman": float(np.median(rhos)), "mean_by_level": means,
                          "per_photo": series}
        rows.append([kind, f"{per_kind[kind]['falling']}/{len(series)}",
                     per_kind[kind]["median_spearman"], *means])

    items, outputs = demo.run_demo(Explainer(model))
    demo_table = demo.mean_table(items, outputs, "score")
    demo_falls = {k: bool(np.all(np.diff(row) < 0)) for k, row in demo_table.items()}
    for kind, row in demo_table.items():
        rows.append([f"demo {kind}", "falls" if demo_falls[kind] else "NOT falling", "", *row])

    table(["series", f"rho<={FALLS}", "median rho", "orig", "L0", "L1", "L2", "L3", "L4"], rows)
    write_result(args.name, {
        "model": args.model,
        "photos": [Path(records[i].path).name for i in chosen],
        "fold": args.fold,
        "distortions": per_kind,
        "demo": {"mean_by_level": demo_table, "falls_at_every_step": demo_falls},
    })


if __name__ == "__main__":
    main()
