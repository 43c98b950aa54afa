"""Which of its inputs makes a model score light JPEG above the original? (issue 17)

The stage-2 head sees the backbone's pooled conv8 features of the normalized image and
two handcrafted features of the whole image (mean reliability, std of I_low). For each
`diqa demo` photo and its lightest JPEG (quality 43, the demo's level 0), this scores the
original, the JPEG copy, and the two mixtures: the copy's image with the original's
handcrafted features, and the original's image with the copy's. If the first mixture
scores like the copy, the CNN features carry the change.

    python benchmarks/feature_swap.py --model saved_models/diqa_clive.keras
"""

import argparse

import numpy as np

from _common import table, write_result


def main():
    from diqa_tf import demo, preprocessing
    from diqa_tf.models import QualityModel
    from diqa_tf.resources import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a stage-2 .keras model")
    parser.add_argument("--name", default="feature_swap", help="results/NAME.json")
    args = parser.parse_args()

    model = load_model(args.model, expected=QualityModel)
    items = demo.demo_images()
    original = {name: image for name, kind, level, image in items if level is None}
    jpeg = {name: image for name, kind, level, image in items if kind == "jpeg" and level == 0}

    def score(image, features):
        return float(model({"image": image, "features": features})["score"][0])

    rows, results = [], {}
    for name in original:
        a = preprocessing.normalize(original[name][np.newaxis], model.preprocessing_config)
        b = preprocessing.normalize(jpeg[name][np.newaxis], model.preprocessing_config)
        result = {
            "original": score(a["image"], a["features"]),
            "jpeg_q43": score(b["image"], b["features"]),
            "jpeg_image_original_features": score(b["image"], a["features"]),
            "original_image_jpeg_features": score(a["image"], b["features"]),
        }
        results[name] = result
        rows.append([name, *result.values()])
    table(["photo", "original", "JPEG q43", "JPEG image + original's features",
           "original image + JPEG's features"], rows)
    write_result(args.name, {"model": args.model, "results": results})


if __name__ == "__main__":
    main()
