"""The main job on embedded data: scikit-image's photos, distorted at growing strength."""

import numpy as np
import tensorflow as tf

from diqa_tf.data import distortions
from diqa_tf.data.files import skimage_photos

DEMO_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
DEMO_DISTORTIONS = ("jpeg", "gaussian_blur", "white_noise")


def demo_images(photos=None, seed=0):
    """[(photo, distortion, level or None, RGB uint8-valued float32)].

    `photos`: [(name, uint8 RGB)], default scikit-image's DEMO_PHOTOS. Level None is
    the undistorted photo; levels 0-4 go from mild to severe.
    """
    if photos is None:
        photos = [(name, photo) for name, photo in skimage_photos() if name in DEMO_PHOTOS]
    items = []
    for name, photo in photos:
        image = tf.constant(photo, tf.float32)
        for kind in DEMO_DISTORTIONS:
            items.append((name, kind, None, photo.astype(np.float32)))
            index = distortions.ALL_KINDS.index(kind)
            for level in range(distortions.NUM_LEVELS):
                out = distortions.distort(image, index, level, tf.constant([seed, level]))
                items.append((name, kind, level, out.numpy()))
    return items


def run_demo(explainer, photos=None):
    """Explain every demo image (`explainer`: a diqa_tf.explain.Explainer; with a
    stage-1 model its error maps are the faithful ones). Returns (items, outputs):
    outputs[i] has the score, error_map and quality_map of items[i]."""
    items = demo_images(photos)
    outputs = []
    for _, _, _, image in items:
        result = explainer.explain(image)
        outputs.append(
            {"score": result.score, "error_map": result.error_map,
             "quality_map": result.quality_map}
        )
    return items, outputs


def mean_table(items, outputs, key="score"):
    """{distortion: [mean of `key` over photos (and map cells) at level None, 0, ..., 4]}."""
    table = {}
    for kind in DEMO_DISTORTIONS:
        row = []
        for level in (None, *range(distortions.NUM_LEVELS)):
            values = [
                float(np.mean(o[key]))
                for (_, k, lvl, _), o in zip(items, outputs)
                if k == kind and lvl == level
            ]
            row.append(float(np.mean(values)))
        table[kind] = row
    return table
