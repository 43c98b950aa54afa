"""The Gaussian pyramid high-pass normalization of DESIGN 1 (steps 3-4).

`pyr_down` / `pyr_up` are OpenCV's `cv2.pyrDown` / `cv2.pyrUp`: the separable 5-tap
binomial kernel [1, 4, 6, 4, 1] / 16 with reflect-101 borders (TF's 'REFLECT'),
factor 2 per level. Inputs are [H, W, C] or [N, H, W, C] float tensors.
"""

import numpy as np
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


def _reflect_101(x, axis):
    """Two rows (axis 1) or columns (axis 2) of reflect-101 padding on both sides.

    Slices and a concat, not tf.pad's MIRROR_PAD: the same values, and LiteRT runs
    slices faster (measured ~2 ms of pyrDown's 500x500 pads).
    """
    take = lambda start, stop: x[:, start:stop] if axis == 1 else x[:, :, start:stop]  # noqa: E731
    return tf.concat([take(2, 3), take(1, 2), x, take(-2, -1), take(-3, -2)], axis)


def pyr_down(x):
    """Blur and keep every second row and column: [H, W] -> [ceil(H/2), ceil(W/2)].

    One 5x5 depthwise filter with stride 2 on both axes, not two separable passes:
    a row pass strided along one axis only needs unequal strides, which TF's own
    depthwise kernel refuses where oneDNN is off (CPUs without AVX-512, by default).
    The strided 5x5 filter costs 25 multiply-adds per output pixel, a few 1e-4 of
    the model's.
    """
    x, squeeze = _as_batch(x)
    taps = np.array(_BINOMIAL_5) / 16.0
    kernel = tf.constant(np.outer(taps, taps)[:, :, np.newaxis, np.newaxis], tf.float32)
    kernel = tf.tile(kernel, [1, 1, x.shape[-1], 1])
    y = _reflect_101(_reflect_101(x, 1), 2)
    y = tf.nn.depthwise_conv2d(y, kernel, [1, 2, 2, 1], "VALID")
    return y[0] if squeeze else y


def _pyr_up_phases():
    """[3, 3, 1, 4]: pyrUp's four output phases as 3x3 filters of the small image.

    Zero insertion then the 5-tap blur with gain 2 per axis gives, along each axis,
    even outputs (x[i-1] + 6 x[i] + x[i+1]) / 8 and odd outputs (x[i] + x[i+1]) / 2.
    Channel 2 * a + b is row phase a, column phase b (DEPTH_TO_SPACE's order).
    """
    even, odd = np.array([1.0, 6.0, 1.0]) / 8.0, np.array([0.0, 4.0, 4.0]) / 8.0
    phases = [(even, even), (even, odd), (odd, even), (odd, odd)]
    kernel = np.stack([np.outer(rows, cols) for rows, cols in phases], axis=-1)
    return kernel[:, :, np.newaxis, :].astype(np.float32)


_PYR_UP_PHASES = _pyr_up_phases()


def pyr_up(x):
    """Insert zero rows and columns, then blur with gain 4: [H, W] -> [2H, 2W].

    Computed by its four polyphase filters on the small image, interleaved by
    depth_to_space, instead of blurring a zero-inserted image four times the size
    (mostly zeros): the same sums to float32 round-off (max 5e-5 on 0-255), and
    15.7 -> 3.3 ms for the whole normalization at 500x500 in LiteRT. The reflect-101
    border of the zero-inserted image is, on the small one, reflect-101 before the
    first sample (x[-1] = x[1]) and a repeat after the last (x[h] = x[h-1]).
    """
    x, squeeze = _as_batch(x)
    shape = tf.shape(x)
    n, h, w, c = shape[0], shape[1], shape[2], x.shape[-1]
    x = tf.concat([x[:, 1:2], x, x[:, -1:]], 1)
    x = tf.concat([x[:, :, 1:2], x, x[:, :, -1:]], 2)
    kernel = tf.tile(_PYR_UP_PHASES, [1, 1, c, 1])
    phases = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID")  # [n, h, w, c * 4]
    if c > 1:  # depth_to_space wants the phase before the channel
        phases = tf.reshape(phases, [n, h, w, c, 4])
        phases = tf.reshape(tf.transpose(phases, [0, 1, 2, 4, 3]), [n, h, w, 4 * c])
    y = tf.nn.depth_to_space(phases, 2)
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
    y = x
    if x.shape[1] is None or x.shape[2] is None or x.shape[1] % factor or x.shape[2] % factor:
        # (A fixed size that needs none, as in a .tflite graph, keeps MIRROR_PAD out.)
        y = tf.pad(y, [[0, 0], [0, (-h) % factor], [0, (-w) % factor], [0, 0]], mode="REFLECT")
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
