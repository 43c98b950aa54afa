"""The main job on embedded data: scikit-image's photos, distorted at growing strength."""

import numpy as np
import tensorflow as tf

from diqa_tf.data import distortions
from diqa_tf.data.files import skimage_photos

DEMO_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
DEMO_DISTORTIONS = ("jpeg", "gaussian_blur", "white_noise")


def demo_images(seed=0):
    """[(photo, distortion, level or None, RGB uint8-valued float32)].

    Level None is the undistorted photo; levels 0-4 go from mild to severe.
    """
    items = []
    for name, photo in skimage_photos():
        if name not in DEMO_PHOTOS:
            continue
        image = tf.constant(photo, tf.float32)
        for kind in DEMO_DISTORTIONS:
            items.append((name, kind, None, photo.astype(np.float32)))
            index = distortions.ALL_KINDS.index(kind)
            for level in range(distortions.NUM_LEVELS):
                out = distortions.distort(image, index, level, tf.constant([seed, level]))
                items.append((name, kind, level, out.numpy()))
    return items


def run_demo(scorer):
    """Score every demo image. Returns (items, outputs): outputs[i] has score and maps."""
    items = demo_images()
    outputs = []
    for _, _, _, image in items:
        out = scorer.predict_batch([image])
        outputs.append({key: value[0] for key, value in out.items()})
    return items, outputs


def score_table(items, outputs):
    """{distortion: [mean score over photos at level None, 0, 1, 2, 3, 4]}."""
    table = {}
    for kind in DEMO_DISTORTIONS:
        row = []
        for level in (None, *range(distortions.NUM_LEVELS)):
            scores = [
                float(o["score"])
                for (_, k, lvl, _), o in zip(items, outputs)
                if k == kind and lvl == level
            ]
            row.append(float(np.mean(scores)))
        table[kind] = row
    return table
