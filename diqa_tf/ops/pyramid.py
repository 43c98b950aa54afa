"""The Gaussian pyramid high-pass normalization of DESIGN 1 (steps 3-4).

`pyr_down` / `pyr_up` are OpenCV's `cv2.pyrDown` / `cv2.pyrUp`: the separable 5-tap
binomial kernel [1, 4, 6, 4, 1] / 16 with reflect-101 borders (TF's 'REFLECT'),
factor 2 per level. Inputs are [H, W, C] or [N, H, W, C] float tensors.
"""

import tensorflow as tf

_BINOMIAL_5 = (1.0, 4.0, 6.0, 4.0, 1.0)


def _as_batch(x):
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    if x.shape.rank == 3:
        return x[tf.newaxis], True
    if x.shape.rank != 4:
        raise ValueError(
            f"`x` must have rank 3 [H, W, C] or 4 [N, H, W, C]. Received: shape={x.shape}"
        )
    return x, False


def _separable_blur(x, gain, strides=1):
    """Depthwise 5x5 binomial blur (times `gain`) of a reflect-101 padded image."""
    channels = x.shape[-1]
    taps = tf.constant(_BINOMIAL_5, tf.float32) / 16.0 * gain
    row = tf.tile(tf.reshape(taps, [1, 5, 1, 1]), [1, 1, channels, 1])
    col = tf.tile(tf.reshape(taps, [5, 1, 1, 1]), [1, 1, channels, 1])
    x = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
    x = tf.nn.depthwise_conv2d(x, row, [1, 1, strides, 1], "VALID")
    return tf.nn.depthwise_conv2d(x, col, [1, strides, 1, 1], "VALID")


def pyr_down(x):
    """Blur and keep every second row and column: [H, W] -> [ceil(H/2), ceil(W/2)]."""
    x, squeeze = _as_batch(x)
    y = _separable_blur(x, gain=1.0, strides=2)
    return y[0] if squeeze else y


def pyr_up(x):
    """Insert zero rows and columns, then blur with gain 4: [H, W] -> [2H, 2W]."""
    x, squeeze = _as_batch(x)
    shape = tf.shape(x)
    n, h, w, c = shape[0], shape[1], shape[2], shape[3]
    zeros = tf.zeros_like(x)
    x = tf.reshape(tf.stack([x, zeros], axis=3), [n, h, 2 * w, c])
    x = tf.reshape(tf.stack([x, tf.zeros_like(x)], axis=2), [n, 2 * h, 2 * w, c])
    y = _separable_blur(x, gain=2.0)  # 2 per axis: 4 in all
    return y[0] if squeeze else y


def low_pass(x, levels):
    """I_low: `levels` pyramid levels down and back up, cropped to the input size.

    Our choice for sizes that are not multiples of 2**levels (the paper is silent):
    the image is first padded by reflection (reflect-101) on the bottom and right
    to the next multiple, so every level halves exactly.
    """
    x, squeeze = _as_batch(x)
    shape = tf.shape(x)
    h, w = shape[1], shape[2]
    factor = 2**levels
    pad_h, pad_w = (-h) % factor, (-w) % factor
    y = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
    for _ in range(levels):
        y = pyr_down(y)
    for _ in range(levels):
        y = pyr_up(y)
    y = y[:, :h, :w, :]
    return y[0] if squeeze else y


def high_pass(x, levels):
    """Return (I_hat, I_low) with I_hat = I - I_low (DESIGN 1, step 4)."""
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    low = low_pass(x, levels)
    return x - low, low
