"""Stage-2 tf.data pipeline: whole images normalized once, cached, cropped at random.

With `ranking=True` (our addition, see Stage2Config.ranking_weight) each example also
carries a synthetically distorted copy of its crop, for the ranking term of
QualityModel's loss; with `references`, each batch also carries crops of pristine
photos and their distorted copies (Stage2Config.reference_ranking_weight); with
`pairs`, stage-1 pairs of them (Stage2Config.error_map_weight); with `ladders`, copies of
their crops at two neighbouring levels (Stage2Config.ladder_weight).
"""

import numpy as np
import tensorflow as tf

from diqa_tf import preprocessing
from diqa_tf.config import PreprocessingConfig
from diqa_tf.data import distortions, formats
from diqa_tf.data.options import with_autotuning
from diqa_tf.data.stage1 import MARGIN, echoed_batches, random_distortion, with_seeds


def _load(path, score, config):
    image = formats.decode_file(path)
    return preprocessing.normalize(image, config), score


def _random_crop(inputs, score, crop_size, seed):
    """Crop I_hat; the features stay those of the whole image (DESIGN 3)."""
    image = inputs["image"]
    shape = tf.shape(image)
    tf.debugging.assert_greater_equal(
        tf.reduce_min(shape[:2]),
        crop_size,
        message=f"stage-2 training crops need images of at least {crop_size}x{crop_size}; "
        "use a smaller stage2.crop_size, or 0 for whole images",
    )
    crop = tf.image.stateless_random_crop(image, [crop_size, crop_size, 1], seed)
    crop = tf.image.stateless_random_flip_left_right(crop, seed + 1)
    return {"image": crop, "features": inputs["features"]}, score


def _load_rgb(path, score, config):
    """Decoded RGB (uint8, to halve the cache) and the whole image's features."""
    image = formats.decode_file(path)
    features = preprocessing.normalize(image, config)["features"]
    return {"rgb": tf.cast(tf.round(image), tf.uint8), "features": features}, score


def _context_crop(rgb, crop_size, seed):
    """A random crop of `crop_size` plus MARGIN on each side (float32), flipped at random."""
    size = crop_size + 2 * MARGIN
    crop = tf.image.stateless_random_crop(tf.cast(rgb, tf.float32), [size, size, 3], seed)
    return tf.image.stateless_random_flip_left_right(crop, seed)


def _ranking_pair(inputs, score, crop_size, seed, config, focus_kinds=(), focus_fraction=0.0):
    """A random crop and a distorted copy, both normalized. The copy's distortion is of
    any type at levels 1-4 (the lightest level of some types, such as sharpening or
    contrast, can improve a photo) or, with probability `focus_fraction`, one of
    `focus_kinds` at levels 0-4 (`stage1.random_distortion`).

    Normalization runs on the crop plus a margin, so the crop sees real context. The
    distorted copy's whole-image features are estimated as the original's plus the
    change that the distortion makes to the crop's features.
    """
    s_crop, s_kind, s_level, s_distort = tf.unstack(
        tf.random.experimental.stateless_split(seed, 4)
    )
    size = crop_size + 2 * MARGIN
    tf.debugging.assert_greater_equal(
        tf.reduce_min(tf.shape(inputs["rgb"])[:2]),
        size,
        message=f"stage-2 ranking crops need images of at least {size}x{size} (the crop_size "
        f"{crop_size} plus {MARGIN} pixels of context each side); use a smaller "
        "stage2.crop_size",
    )
    crop = _context_crop(inputs["rgb"], crop_size, s_crop)
    distorted = random_distortion(
        crop, s_kind, s_level, s_distort, 1, focus_kinds, focus_fraction
    )
    original, changed = preprocessing.normalize(crop, config), preprocessing.normalize(distorted, config)
    inner = slice(MARGIN, MARGIN + crop_size)
    return {
        "image": original["image"][inner, inner],
        "features": inputs["features"],
        "distorted_image": changed["image"][inner, inner],
        "distorted_features": inputs["features"] + changed["features"] - original["features"],
    }, score


# Ours: half of the pristine crops' copies are JPEG, blur or noise at any level, the
# lightest included (the failure they are there for: light JPEG on a clean photo); the
# rest are any type at levels 1-4, as the ranking term's on the training photos.
REFERENCE_FOCUS_FRACTION = 0.5
REFERENCE_FOCUS_KINDS = ("jpeg", "gaussian_blur", "white_noise")


def reference_batches(references, config: PreprocessingConfig, batch_size, crop_size, seed):
    """Endless batches of {"image", "features", "distorted_image", "distorted_features"}:
    crops of the pristine photos `references` ([(name, RGB [H, W, 3])], each at least
    crop_size + 2 * MARGIN on both sides) and distorted copies, as `_ranking_pair`."""

    def pair(example, s):
        s = tf.random.experimental.stateless_fold_in(s, 1)  # apart from the photos' stream
        inputs, _ = _ranking_pair(example, 0.0, crop_size, s, config, REFERENCE_FOCUS_KINDS,
                                  REFERENCE_FOCUS_FRACTION)
        return inputs

    ds = _pristine_examples(references, config, seed).map(pair, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True)


# Ours: the kinds whose heavier level is always worse, for the ladder's rungs.
LADDER_KINDS = ("jpeg", "gaussian_blur", "white_noise")


def ladder_batches(references, config: PreprocessingConfig, batch_size, crop_size, seed):
    """Endless batches of {"image", "features", "distorted_image", "distorted_features"}:
    two copies of a crop of a pristine photo (as `reference_batches`'), distorted by the
    same one of LADDER_KINDS (same noise) at levels L and L + 1, L in 0-3: the lighter
    copy, then the heavier (Stage2Config.ladder_weight)."""
    kinds = tf.constant([distortions.ALL_KINDS.index(k) for k in LADDER_KINDS], tf.int32)

    def rungs(example, s):
        s = tf.random.experimental.stateless_fold_in(s, 2)  # apart from the other streams
        s_crop, s_kind, s_level, s_distort = tf.unstack(tf.random.experimental.stateless_split(s, 4))
        crop = _context_crop(example["rgb"], crop_size, s_crop)
        kind = kinds[tf.random.stateless_uniform([], s_kind, 0, len(LADDER_KINDS), tf.int32)]
        level = tf.random.stateless_uniform([], s_level, 0, distortions.NUM_LEVELS - 1, tf.int32)
        original = preprocessing.normalize(crop, config)
        lighter, heavier = (
            preprocessing.normalize(distortions.distort(crop, kind, lvl, s_distort), config)
            for lvl in (level, level + 1)
        )
        inner = slice(MARGIN, MARGIN + crop_size)
        shift = example["features"] - original["features"]  # as _ranking_pair's estimate
        return {
            "image": lighter["image"][inner, inner],
            "features": lighter["features"] + shift,
            "distorted_image": heavier["image"][inner, inner],
            "distorted_features": heavier["features"] + shift,
        }

    ds = _pristine_examples(references, config, seed).map(rungs, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True)


def _pristine_examples(references, config, seed):
    """Endless ({"rgb", "features"}, stateless seed) of the pristine photos `references`,
    decoded and featured once, reshuffled each pass."""
    images = [np.asarray(np.round(image), np.uint8) for _, image in references]
    ds = tf.data.Dataset.from_generator(
        lambda: iter(images), output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
    )

    def load(rgb):
        features = preprocessing.normalize(tf.cast(rgb, tf.float32), config)["features"]
        return {"rgb": rgb, "features": features}

    ds = ds.map(load).cache().shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return with_seeds(ds.repeat(), seed)


def training_dataset(
    paths,
    scores,
    config: PreprocessingConfig,
    batch_size,
    crop_size,
    seed,
    ranking=False,
    echo=1,
    ranking_focus_kinds=(),
    ranking_focus_fraction=0.0,
    references=(),
    reference_batch_size=8,
    reference_crop_size=128,
    pairs=None,
    ladders=None,
):
    """Endless shuffled batches. Whole images when `crop_size` is 0, batched by size.

    `ranking_focus_*`: how the ranking term's distorted copies are drawn, as in
    Stage2Config. `references`: pristine photos [(name, RGB)]; each batch then also
    holds `reference_batch_size` `reference_batches` under "reference_" + their keys.
    `pairs`: endless batches of stage-1 pairs (`stage1.pair_dataset`); each batch then
    also holds one of them as "pair_image", "pair_error_map" and "pair_reliability".
    `ladders`: endless `ladder_batches`; each batch then also holds one under "ladder_" +
    their keys.

    `echo` > 1 uses each training crop that many times (`stage1.echoed_batches`); whole
    images are normalized once and cached, so there is nothing to echo.
    """
    if ranking and not crop_size:
        raise ValueError("`ranking` needs training crops: set a `crop_size`")
    if echo != 1 and not crop_size:
        raise ValueError("`echo` needs training crops: set a `crop_size`")
    ds = tf.data.Dataset.from_tensor_slices((list(paths), [float(s) for s in scores]))
    load = _load_rgb if ranking else _load
    ds = ds.map(lambda p, s: load(p, s, config), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.cache().shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
    if crop_size:

        def crop(example, s):
            if ranking:
                return _ranking_pair(
                    *example, crop_size, s, config, ranking_focus_kinds, ranking_focus_fraction
                )
            return _random_crop(*example, crop_size, s)

        ds = with_seeds(ds, seed).map(crop, num_parallel_calls=tf.data.AUTOTUNE)
        ds = echoed_batches(ds, echo, batch_size, seed)
    else:
        # Images of one size per batch: no padding, so no image affects another.
        ds = ds.group_by_window(
            key_func=lambda inputs, s: _size_key(inputs["image"]),
            reduce_func=lambda key, window: window.batch(batch_size),
            window_size=batch_size,
        )
    if references:
        pristine = reference_batches(
            references, config, reference_batch_size, reference_crop_size, seed
        )
        ds = tf.data.Dataset.zip(ds, pristine).map(
            lambda batch, extra: (
                {**batch[0], **{f"reference_{k}": v for k, v in extra.items()}},
                batch[1],
            )
        )
    if ladders is not None:
        ds = tf.data.Dataset.zip(ds, ladders).map(
            lambda batch, extra: (
                {**batch[0], **{f"ladder_{k}": v for k, v in extra.items()}}, batch[1]
            )
        )
    if pairs is not None:
        ds = tf.data.Dataset.zip(ds, pairs).map(
            lambda batch, pair: (
                {**batch[0], "pair_image": pair[0]["image"],
                 **{f"pair_{k}": v for k, v in pair[1].items()}},
                batch[1],
            )
        )
    return with_autotuning(ds.prefetch(tf.data.AUTOTUNE), False)  # as stage1.pair_batches


def _size_key(image):
    shape = tf.cast(tf.shape(image), tf.int64)
    return shape[0] * 1_000_003 + shape[1]
