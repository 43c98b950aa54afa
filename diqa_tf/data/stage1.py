"""Stage-1 pairs generated on the fly from pristine references (DESIGN 4).

Each element: a random crop of a reference, distorted by a random type and level,
turned into ({"image": I_hat_d}, {"error_map": e, "reliability": r}) on the
network's output grid. Normalization runs on the crop plus a margin, so the crop's
border pixels see real context; the margin is a multiple of the output stride, so
the pooled maps stay aligned.
"""

import numpy as np
import tensorflow as tf

from diqa_tf import ops, preprocessing
from diqa_tf.config import PreprocessingConfig
from diqa_tf.data import distortions
from diqa_tf.data.options import with_autotuning

MARGIN = 16
# With data echoing, the copies of one example are spread over a shuffle window this
# many batches wide (~56 MB of stage-1 pairs at batch 32, ~128 MB of stage-2 crops).
ECHO_WINDOW_BATCHES = 32


def screen_references(references, config: PreprocessingConfig, crop_size, min_reliability):
    """Split [(name, image)] into (usable, rejected) references.

    Rejected, each with its reason: images smaller than a crop plus its margins,
    and near-flat images (mean reliability below `min_reliability`), from which
    the flat-crop filter could never draw a pair.
    """
    usable, rejected = [], []
    size = crop_size + 2 * MARGIN
    for name, image in references:
        image = np.asarray(image, np.float32)
        if min(image.shape[:2]) < size:
            rejected.append((name, f"smaller than {size}x{size} (crop plus margins)"))
            continue
        hp, _ = ops.high_pass(ops.to_grayscale(image), config.pyramid_levels)
        structure = float(tf.reduce_mean(ops.reliability_map(hp, config.reliability_alpha)))
        if structure < min_reliability:
            rejected.append((name, f"nearly flat (mean reliability {structure:.3f})"))
            continue
        usable.append((name, image))
    return usable, rejected


def reference_dataset(images):
    """A dataset of RGB float32 references from a list of uint8/float arrays [H, W, 3]."""
    images = [np.asarray(image, np.float32) for image in images]
    return tf.data.Dataset.from_generator(
        lambda: iter(images),
        output_signature=tf.TensorSpec([None, None, 3], tf.float32),
    ).cache()


def make_pair(reference, seed, crop_size):
    """A random crop of `reference` (plus MARGIN on each side) and a distorted copy."""
    s_crop, s_kind, s_level, s_distort = tf.unstack(
        tf.random.experimental.stateless_split(seed, 4)
    )
    size = crop_size + 2 * MARGIN
    crop = tf.image.stateless_random_crop(reference, [size, size, 3], s_crop)
    return crop, random_distortion(crop, s_kind, s_level, s_distort)


def random_distortion(
    image, s_kind, s_level, s_distort, min_level=0, focus_kinds=(), focus_fraction=0.0
):
    """`image` distorted by a random type at a random level in [min_level, NUM_LEVELS);
    or, with probability `focus_fraction`, by one of `focus_kinds` (names) at any level,
    0 included (see Stage2Config.ranking_focus_fraction)."""
    kind = tf.random.stateless_uniform(
        [], s_kind, 0, len(distortions.ALL_KINDS), dtype=tf.int32
    )
    if focus_fraction:  # off: the same random streams as before the focus existed
        focus_seed = tf.random.experimental.stateless_fold_in(s_kind, 1)
        s_focus, s_focus_kind = tf.unstack(
            tf.random.experimental.stateless_split(focus_seed, 2)
        )
        focus = tf.random.stateless_uniform([], s_focus) < focus_fraction
        kinds = tf.constant([distortions.ALL_KINDS.index(k) for k in focus_kinds], tf.int32)
        pick = tf.random.stateless_uniform(
            [], s_focus_kind, 0, len(focus_kinds), dtype=tf.int32
        )
        kind = tf.where(focus, tf.gather(kinds, pick), kind)
        min_level = tf.where(focus, 0, min_level)
    level = tf.random.stateless_uniform(
        [], s_level, min_level, distortions.NUM_LEVELS, dtype=tf.int32
    )
    return distortions.distort(image, kind, level, s_distort)


def crop_example(reference, distorted, crop_size, config: PreprocessingConfig):
    """(inputs, targets, flatness) of reference/distorted crops of `crop_size` plus MARGIN
    on each side ([H, W, 3], or a batch [N, H, W, 3]): maps computed with the margin as
    context, then cut to the crop. Flatness is the reference crop's mean reliability."""
    maps = preprocessing.stage1_targets(reference, distorted, config)
    m = MARGIN // config.output_stride
    g = crop_size // config.output_stride
    inside = slice(MARGIN, MARGIN + crop_size)
    cells = slice(m, m + g)
    inputs = {"image": maps["image"][..., inside, inside, :]}
    targets = {key: maps[key][..., cells, cells, :] for key in ("error_map", "reliability")}
    flatness = tf.reduce_mean(
        maps["reference_reliability"][..., cells, cells, :], axis=[-3, -2, -1]
    )
    return inputs, targets, flatness


def pair_dataset(
    references,
    config: PreprocessingConfig,
    crop_size=112,
    batch_size=32,
    seed=0,
    min_crop_reliability=0.2,
    repeat=True,
    echo=1,
):
    """Endless (or one-pass) batches of stage-1 pairs from `reference_dataset`.

    Crops whose reference is nearly flat (mean reliability below
    `min_crop_reliability`) are dropped: they carry no error to learn (DESIGN 2).
    The crop size must be a multiple of the output stride. `echo`: see `pair_batches`.
    """
    check_crop_size(crop_size, config)
    return pair_batches(
        references.shuffle(1024, seed=seed, reshuffle_each_iteration=True),
        lambda ref, s: make_pair(ref, s, crop_size),
        crop_size,
        config,
        batch_size=batch_size,
        seed=seed,
        min_crop_reliability=min_crop_reliability,
        repeat=repeat,
        echo=echo,
    )


def check_crop_size(crop_size, config: PreprocessingConfig):
    """Raise ValueError unless `crop_size` is a multiple of the output stride."""
    if crop_size % config.output_stride:
        raise ValueError(
            f"`crop_size` must be a multiple of {config.output_stride}. Received: {crop_size}"
        )


def with_seeds(ds, seed):
    """Zip each element of `ds` with its own stateless seed [seed, i] (i counts elements)."""
    seeds = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.cast(seed, tf.int64), i]))
    return tf.data.Dataset.zip(ds, seeds)


def echoed_batches(ds, echo, batch_size, seed):
    """Batches of `batch_size` elements of `ds`, each element used `echo` times.

    `echo` > 1 is data echoing (Choi et al., "Faster Neural Network Training with Data
    Echoing", 2019): making examples then costs 1/echo as much per step, which hides
    the making on a CPU that also trains. A window of fresh elements (ECHO_WINDOW_BATCHES
    batches once echoed) is indexed `echo` times in a seeded random order and cut into
    batches, so the copies of an element are shuffled apart. Vectorized, as
    per-element echoing (flat_map + shuffle) added 0.4 CPU ms an element.
    """
    if isinstance(echo, bool) or not isinstance(echo, int) or echo < 1:
        raise ValueError(f"`echo` must be a whole number >= 1. Received: {echo!r}")
    if echo == 1:
        return ds.batch(batch_size, drop_remainder=True)
    fresh = max(1, ECHO_WINDOW_BATCHES * batch_size // echo)

    def copies(window, s):
        size = tf.shape(tf.nest.flatten(window)[0])[0]  # `fresh`, or fewer at the end
        order = tf.random.experimental.stateless_shuffle(tf.range(echo * size) % size, s)
        return tf.nest.map_structure(lambda x: tf.gather(x, order), window)

    windows = with_seeds(ds.batch(fresh), seed)
    return windows.map(lambda window, s: copies(window, s)).rebatch(
        batch_size, drop_remainder=True
    )


def pair_batches(
    shuffled,
    make_crops,
    crop_size,
    config,
    *,
    batch_size,
    seed,
    min_crop_reliability,
    repeat,
    echo=1,
):
    """Batches of stage-1 examples over `shuffled` (repeated if `repeat`), dropping crops
    of near-flat references: the pipeline both stage-1 sources share.

    `make_crops(element, seed)` gives a (reference, distorted) pair of crops with their
    margins. Their maps are computed a batch at a time: on 144 x 144 crops the many
    small ops of per-crop graphs are dominated by per-op overhead, and the whole
    pipeline costs ~30% less CPU batched (measured 4.9 vs 7.0 ms a pair, shipped
    recipe). The flat-crop filter then runs per crop; the survivors are batched again.

    `echo`: see `echoed_batches`.
    """
    ds = shuffled.repeat() if repeat else shuffled
    ds = with_seeds(ds, seed).map(
        make_crops, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    ds = ds.batch(batch_size).map(
        lambda reference, distorted: crop_example(reference, distorted, crop_size, config),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.unbatch().filter(lambda inputs, targets, rel: rel >= min_crop_reliability)
    ds = ds.map(lambda inputs, targets, rel: (inputs, targets))
    ds = echoed_batches(ds, echo, batch_size, seed).prefetch(tf.data.AUTOTUNE)
    # No autotuning: with pair_echo 4 on 2 AVX2 cores, making pairs took 3.8% of the
    # CPU, yet stage 1 trained 10.6% slower on the autotuned pipeline than on batches
    # cached in memory, and 2.2% slower without (training_speed.py --autotune-baseline).
    return with_autotuning(ds, False)
