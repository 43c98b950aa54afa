"""Do the lightest JPEG, blur and noise score below the original on pristine photos? (issue 17)

CLIVE's photos are phone pictures, mostly JPEG already; `diqa demo`'s are clean
scikit-image photos, and a model tuned on CLIVE scored one of them (coffee) 16 points
higher after JPEG at quality 43. This check takes pristine photos that stage 2 never
trains on (by default the stage-1 references of ../shared/data/references: Kodak,
McMaster, LIVE, Wikimedia), distorts each with the two lightest levels (0 and 1) of JPEG,
Gaussian blur and white noise of `diqa_tf.data.distortions`, and reports per distortion
the share of photos that score HIGHER than the original, and the mean change.

    python benchmarks/light_distortions.py --model saved_models/diqa_clive.keras
    python benchmarks/light_distortions.py --model RUN/split_02/stage2/stage2.keras \
        --name light_distortions-RUN-fold2
"""

import argparse
import os

import numpy as np

from _common import DATA, series_scores, table, write_result

KINDS = ("jpeg", "gaussian_blur", "white_noise")
LEVELS = (0, 1)


def main():
    from diqa_tf.data import files
    from diqa_tf.inference import Scorer
    from diqa_tf.models import QualityModel
    from diqa_tf.resources import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a stage-2 .keras model")
    parser.add_argument("--photos", default=str(DATA / "references"),
                        help="a folder of pristine photos (searched recursively)")
    parser.add_argument("--name", default="light_distortions", help="results/NAME.json")
    args = parser.parse_args()

    paths, problems = files.find_images([args.photos])
    if problems:
        raise SystemExit("; ".join(f"{item}: {why}" for item, why in problems))
    scorer = Scorer(load_model(args.model, expected=QualityModel))
    changes = {kind: {level: [] for level in LEVELS} for kind in KINDS}
    for seed, path in enumerate(paths):
        rgb = files.read_image(path).numpy()
        for kind in KINDS:
            original, *scores = series_scores(scorer, rgb, kind, seed, LEVELS)
            for level, score in zip(LEVELS, scores):
                changes[kind][level].append(score - original)

    rows, summary = [], {}
    for kind in KINDS:
        for level in LEVELS:
            delta = np.array(changes[kind][level])
            higher = float(np.mean(delta > 0))
            summary[f"{kind} level {level}"] = {
                "higher_than_original": higher, "mean_change": float(delta.mean()),
                "per_photo_change": delta.round(2).tolist(),
            }
            rows.append([f"{kind} level {level}", f"{int(np.sum(delta > 0))}/{len(delta)}",
                         higher, float(delta.mean())])
    table(["distortion", "scores higher", "share", "mean change"], rows)
    names = [os.path.relpath(p, args.photos) for p in paths]
    write_result(args.name, {"model": args.model, "photos": names, "results": summary})


if __name__ == "__main__":
    main()
