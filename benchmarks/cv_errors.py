"""Where does a recipe go wrong? Its cross-validation predictions, by MOS fifth and by photo.

Pools the test predictions of every finished fold of a `diqa benchmark --folds` run (each
photo scored by the fold model that never saw it) and reports, for each fifth of the photos
ranked by MOS, the mean MOS and the mean prediction (a model that compresses the scale
overrates the worst fifth and underrates the best), then the photos it under- and overrates
most. Reads only the run's result files: no model is loaded.

    python benchmarks/cv_errors.py --run benchmarks/results/cv/lr1e-3_rank0.2_pair0.5_e24
"""

import argparse
import json
from pathlib import Path

import numpy as np

from _common import table, write_result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a `diqa benchmark --folds` output folder")
    parser.add_argument("--worst", type=int, default=5, help="photos listed each way")
    parser.add_argument("--name", help="results/NAME.json (default: cv_errors-RUN)")
    args = parser.parse_args()
    run = Path(args.run)
    predictions = [p for f in sorted(run.glob("split_*/result.json"))
                   for p in json.loads(f.read_text())["predictions"]]
    if not predictions:
        raise SystemExit(f"{run}: no finished fold (split_*/result.json)")
    mos = np.array([p["score"] for p in predictions])
    predicted = np.array([p["prediction"] for p in predictions])

    fifths = [{"fifth": i, "mos_range": [float(mos[part].min()), float(mos[part].max())],
               "mean_mos": float(mos[part].mean()), "mean_prediction": float(predicted[part].mean())}
              for i, part in enumerate(np.array_split(np.argsort(mos), 5), start=1)]
    table(["MOS fifth", "MOS range", "mean MOS", "mean prediction"],
          [[f["fifth"], "{:.1f}-{:.1f}".format(*f["mos_range"]), f["mean_mos"], f["mean_prediction"]]
           for f in fifths])

    error = predicted - mos
    order = np.argsort(error)
    listed = {"underrated": order[: args.worst], "overrated": order[::-1][: args.worst]}
    worst = {
        kind: [{"image": predictions[i]["image"], "mos": float(mos[i]),
                "prediction": float(predicted[i])} for i in indices]
        for kind, indices in listed.items()
    }
    table(["", "photo", "MOS", "prediction"],
          [[kind, p["image"], p["mos"], p["prediction"]] for kind, ps in worst.items() for p in ps])
    write_result(args.name or f"cv_errors-{run.name}",
                 {"run": str(run), "photos": len(predictions), "fifths": fifths, **worst})


if __name__ == "__main__":
    main()
