"""The one preprocessing path, binding the ops to a `PreprocessingConfig`.

tf.data pipelines, the exported SavedModel and the CLI all call these functions, so
training and inference can never normalize differently.
"""

import tensorflow as tf

from diqa_tf import ops
from diqa_tf.config import PreprocessingConfig


def normalize(image, config: PreprocessingConfig):
    """RGB (or grey) 0-255 image -> model inputs {"image": I_hat, "features": [2]}.

    Works on [H, W, C] and [N, H, W, C]; the features are computed on the whole image.
    """
    grey = ops.to_grayscale(image)
    hp, low = ops.high_pass(grey, config.pyramid_levels)
    features = ops.handcrafted_features(
        hp, low, config.reliability_alpha, config.sigma_low_scale
    )
    return {"image": hp, "features": features}


def stage1_targets(reference, distorted, config: PreprocessingConfig):
    """Reference and distorted images -> dict of I_hat_d and the pooled maps.

    Keys: "image" (I_hat_d, full resolution), "error_map" and "reliability"
    (pooled to the output grid), "reference_reliability" (pooled, of I_hat_r: how
    much structure the reference has, for dropping flat crops).
    """
    hp_ref, _ = ops.high_pass(ops.to_grayscale(reference), config.pyramid_levels)
    hp_dist, _ = ops.high_pass(ops.to_grayscale(distorted), config.pyramid_levels)
    stride = config.output_stride
    alpha = config.reliability_alpha
    error = ops.error_map(hp_ref, hp_dist, config.error_exponent)
    return {
        "image": hp_dist,
        "error_map": ops.pool_to_output(error, stride),
        "reliability": ops.pool_to_output(ops.reliability_map(hp_dist, alpha), stride),
        "reference_reliability": ops.pool_to_output(
            ops.reliability_map(hp_ref, alpha), stride
        ),
    }


def weighted_error_per_sample(predicted, target, reliability, config: PreprocessingConfig):
    """mean_pixels((r_hat * (e_pred - e)) ** 2) for each sample of a batch: [N]."""
    r_hat = ops.normalize_reliability(reliability, config.reliability_floor)
    predicted = tf.cast(predicted, tf.float32)  # float32 loss under mixed precision
    squared = tf.square(r_hat * (predicted - target))
    return tf.reduce_mean(squared, axis=[1, 2, 3])


def image_is_large_enough(image, config: PreprocessingConfig):
    """True where both sides are at least `config.min_size` (works in graphs)."""
    shape = tf.shape(image)
    return tf.logical_and(shape[-3] >= config.min_size, shape[-2] >= config.min_size)
