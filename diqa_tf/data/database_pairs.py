"""Stage-1 pairs from a database's own reference and distorted images, as in the paper.

The elements are those of diqa_tf.data.stage1.pair_dataset, ({"image": I_hat_d},
{"error_map": e, "reliability": r}) on the output grid: the same random crop (plus its
margin) of a reference and of one of its distorted versions. Both files are read at
each use (a database does not fit in memory); the pair list is shuffled, so batches
mix references and distortion types.
"""

import tensorflow as tf
from PIL import Image

from diqa_tf.config import PreprocessingConfig
from diqa_tf.data import formats
from diqa_tf.data.stage1 import MARGIN, check_crop_size, pair_batches
from diqa_tf.errors import DatasetError


def check_sizes(pairs):
    """Raise DatasetError unless each distorted image has its reference's size
    (the error map compares them pixel by pixel); sizes are read from the headers."""
    sizes = {}
    for reference, distorted in pairs:
        for path in (reference, distorted):
            if path not in sizes:
                try:
                    with Image.open(path) as image:
                        sizes[path] = image.size
                except OSError as e:
                    raise DatasetError(f"{path}: cannot be read as an image ({e})") from None
        if sizes[reference] != sizes[distorted]:
            (rw, rh), (dw, dh) = sizes[reference], sizes[distorted]
            raise DatasetError(
                f"{distorted}: is {dw}x{dh} but its reference {reference} is {rw}x{rh}; "
                "stage-1 pairs need equal sizes"
            )


def _load_pair(reference_path, distorted_path):
    reference = formats.decode_file(reference_path)
    distorted = formats.decode_file(distorted_path)
    return tf.stack([reference, distorted])


def _crop_pair(pair, seed, crop_size):
    size = crop_size + 2 * MARGIN
    crop = tf.image.stateless_random_crop(pair, [2, size, size, 3], seed)
    return crop[0], crop[1]


def pair_dataset(
    pairs,
    config: PreprocessingConfig,
    crop_size=112,
    batch_size=32,
    seed=0,
    min_crop_reliability=0.2,
    repeat=True,
    echo=1,
):
    """Endless (or one-pass) batches from `pairs`, a list of (reference path, distorted path).

    Crops of near-flat references are dropped, as for the synthetic pairs. Every image
    must be at least `crop_size + 2 * MARGIN` pixels a side.
    """
    check_crop_size(crop_size, config)
    if not pairs:
        raise DatasetError("stage 1: no reference/distorted pairs to train on")
    pairs = [(str(r), str(d)) for r, d in pairs]
    check_sizes(pairs)
    references, distorted = zip(*pairs)
    ds = tf.data.Dataset.from_tensor_slices((list(references), list(distorted)))
    return pair_batches(
        ds.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True),
        lambda paths, s: _crop_pair(_load_pair(*paths), s, crop_size),
        crop_size,
        config,
        batch_size=batch_size,
        seed=seed,
        min_crop_reliability=min_crop_reliability,
        repeat=repeat,
        echo=echo,
    )
