"""Stage-1 targets and the handcrafted features (DESIGN 2 and 3).

All maps are on the paper's 0-255 definitions. Inputs are [H, W, 1] or [N, H, W, 1].
"""

import tensorflow as tf


def error_map(hp_reference, hp_distorted, exponent):
    """Objective error map e = |I_hat_r - I_hat_d| ** p, at full resolution."""
    diff = tf.abs(tf.cast(hp_reference, tf.float32) - tf.cast(hp_distorted, tf.float32))
    return tf.pow(diff, exponent)


def reliability_map(hp_distorted, alpha):
    """Reliability r = 2 / (1 + exp(-alpha |I_hat_d|)) - 1, in [0, 1), full resolution."""
    return 2.0 * tf.sigmoid(alpha * tf.abs(tf.cast(hp_distorted, tf.float32))) - 1.0


def pool_to_output(x, stride):
    """Average-pool `stride` x `stride` ('same') onto the network's output grid.

    The grid is ceil(H / stride) x ceil(W / stride); border windows average only
    the pixels inside the image.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    squeeze = x.shape.rank == 3
    if squeeze:
        x = x[tf.newaxis]
    y = tf.nn.avg_pool2d(x, stride, stride, "SAME")
    return y[0] if squeeze else y


def normalize_reliability(reliability, floor):
    """r_hat = r / max(mean(r), floor), the mean taken per sample.

    Our guard (DESIGN 2): a flat crop has mean(r) ~ 0; the floor keeps its weights
    bounded (r <= 1, so r_hat <= 1 / floor) instead of 0/0 = NaN.
    """
    reliability = tf.convert_to_tensor(reliability, tf.float32)
    axes = list(range(1, reliability.shape.rank)) if reliability.shape.rank == 4 else None
    mean = tf.reduce_mean(reliability, axis=axes, keepdims=True)
    return reliability / tf.maximum(mean, floor)


def handcrafted_features(hp_distorted, low, alpha, sigma_low_scale):
    """[mu_r, sigma_low * scale] per image: [H, W, 1] -> [2], [N, H, W, 1] -> [N, 2].

    mu_r is the mean of the non-normalized reliability map (already in [0, 1]);
    sigma_low is the standard deviation of I_low (0-255), fed at unit order.
    """
    hp_distorted = tf.convert_to_tensor(hp_distorted, tf.float32)
    axes = [-3, -2, -1]
    mu_r = tf.reduce_mean(reliability_map(hp_distorted, alpha), axis=axes)
    sigma_low = tf.math.reduce_std(tf.cast(low, tf.float32), axis=axes)
    return tf.stack([mu_r, sigma_low * sigma_low_scale], axis=-1)
