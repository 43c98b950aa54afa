"""Stage-2 tf.data pipeline: whole images normalized once, cached, cropped at random."""

import tensorflow as tf

from diqa_tf import ops, preprocessing
from diqa_tf.config import PreprocessingConfig


def _load(path, score, config):
    image = ops.decode_image(tf.io.read_file(path))
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


def training_dataset(paths, scores, config: PreprocessingConfig, batch_size, crop_size, seed):
    """Endless shuffled batches. Whole images when `crop_size` is 0, batched by size."""
    ds = tf.data.Dataset.from_tensor_slices((list(paths), [float(s) for s in scores]))
    ds = ds.map(lambda p, s: _load(p, s, config), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.cache().shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
    if crop_size:
        seeds = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.cast(seed, tf.int64), i]))
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda example, s: _random_crop(*example, crop_size, s),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        ds = ds.batch(batch_size, drop_remainder=True)
    else:
        # Images of one size per batch: no padding, so no image affects another.
        ds = ds.group_by_window(
            key_func=lambda inputs, s: _size_key(inputs["image"]),
            reduce_func=lambda key, window: window.batch(batch_size),
            window_size=batch_size,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def _size_key(image):
    shape = tf.cast(tf.shape(image), tf.int64)
    return shape[0] * 1_000_003 + shape[1]
