"""Scores of images unlike any training photo (README, "Scores outside the scale").

The head is linear, so such images are extrapolated beyond the model's scale. Scores
scikit-image's astronaut, its 1-bit Floyd-Steinberg copy, uniform random noise, and
the mean of `diqa demo`'s strongest white noise, unclipped.

    python benchmarks/out_of_scale.py [--model saved_models/diqa_clive.keras]
"""

import argparse

import numpy as np

from _common import table, write_result


def main():
    from PIL import Image
    from skimage import data

    from diqa_tf import demo
    from diqa_tf.explain import Explainer
    from diqa_tf.inference import Scorer
    from diqa_tf.models import QualityModel
    from diqa_tf.resources import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a stage-2 .keras model (default: the shipped one)")
    args = parser.parse_args()
    model = load_model(args.model, expected=QualityModel)

    photo = data.astronaut()
    one_bit = np.asarray(Image.fromarray(photo).convert("1").convert("RGB"))  # dithers
    noise = np.random.default_rng(0).integers(0, 256, photo.shape, dtype=np.uint8)
    images = {"astronaut": photo, "astronaut, 1-bit dithered": one_bit,
              "uniform random noise": noise}
    scores = Scorer(model).score_arrays([i.astype(np.float32) for i in images.values()])
    found = {name: float(score) for name, score in zip(images, scores)}
    items, outputs = demo.run_demo(Explainer(model))
    found["demo, strongest white noise (mean)"] = float(
        demo.mean_table(items, outputs, "score")["white_noise"][-1])
    table(["image", "score"], list(found.items()))
    write_result("out_of_scale", {"model": args.model or "shipped", "scores": found})


if __name__ == "__main__":
    main()
