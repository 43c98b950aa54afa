"""`preprocessing.normalize` for the .tflite graph, built from ops LiteRT runs fast.

Same maths as `diqa_tf.ops` (BT.601 grey, reflect-101 Gaussian pyramid, I_hat = I -
I_low, the handcrafted features); two steps are written differently, for the .tflite
graph only (tf.data, Keras and the SavedModel keep `diqa_tf.ops`):
- reflect-101 padding is SLICE + CONCATENATION instead of MIRROR_PAD: the same copies,
  bit for bit, measured 2 ms faster at 500x500 (pyrDown's pads alone);
- pyrUp needs no zero insertion (FILL + PACK + RESHAPE at full resolution, then a
  5x5 blur of mostly zeros): each of the four output phases is a 3x3 filter of the
  small image, one DEPTHWISE_CONV_2D with 4 outputs, interleaved by DEPTH_TO_SPACE.
It sums 3 taps where `ops.pyr_up` sums 5 (two of them zeros), so I_hat differs from
`preprocessing.normalize` by float32 round-off only (max 5e-5 on 0-255 at 500x500).
Measured with LiteRT 2.3 (XNNPACK, 2 threads) at 500x500, the normalization alone
converted: 15.7 ms with `preprocessing.normalize`, 3.3 ms with this one (p50). It is
float in every variant, so it weighs most on int8: see `tflite._quantize_int8_selectively`.
"""

import numpy as np
import tensorflow as tf

from diqa_tf import ops

# cv2.pyrDown's 5-tap binomial kernel, as in diqa_tf.ops.pyramid.
_BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0


def normalize(image, config):
    """RGB 0-255 [1, H, W, 3] (H, W static) -> {"image": I_hat, "features": [1, 2]}."""
    grey = ops.to_grayscale(image)
    low = low_pass(grey, config.pyramid_levels)
    hp = grey - low
    features = ops.handcrafted_features(
        hp, low, config.reliability_alpha, config.sigma_low_scale
    )
    return {"image": hp, "features": features}


def low_pass(x, levels):
    """`ops.low_pass` of a [1, H, W, 1] image: the same bottom/right reflect-101 padding."""
    height, width = x.shape[1], x.shape[2]
    factor = 2**levels
    y = _pad(x, 1, [], [height - 2 - i for i in range(-height % factor)])
    y = _pad(y, 2, [], [width - 2 - i for i in range(-width % factor)])
    for _ in range(levels):
        y = pyr_down(y)
    for _ in range(levels):
        y = pyr_up(y)
    if y.shape[1] != height or y.shape[2] != width:
        y = y[:, :height, :width, :]
    return y


def pyr_down(x):
    """`ops.pyr_down` of [1, H, W, 1], bit for bit: the same blur of the same padded image."""
    x = _reflect_101(x, 2)
    x = tf.nn.depthwise_conv2d(x, _BINOMIAL_5.reshape(1, 5, 1, 1), [1, 1, 2, 1], "VALID")
    return tf.nn.depthwise_conv2d(x, _BINOMIAL_5.reshape(5, 1, 1, 1), [1, 2, 1, 1], "VALID")


def pyr_up(x):
    """`ops.pyr_up` of [1, h, w, 1] -> [1, 2h, 2w, 1] by its four polyphase filters.

    Zero insertion then the gain-2-per-axis blur gives, along each axis, even outputs
    (x[i-1] + 6 x[i] + x[i+1]) / 8 and odd outputs (x[i] + x[i+1]) / 2. The
    reflect-101 border of the zero-inserted image is, on the small one, reflect-101
    before the first sample (x[-1] = x[1]) and a repeat after the last (x[h] = x[h-1]).
    """
    x = _pad(x, 1, [1], [x.shape[1] - 1])
    x = _pad(x, 2, [1], [x.shape[2] - 1])
    phases = tf.nn.depthwise_conv2d(x, _PYR_UP_PHASES, [1, 1, 1, 1], "VALID")
    return tf.nn.depth_to_space(phases, 2)


def _polyphase_kernel():
    even, odd = np.array([1.0, 6.0, 1.0]) / 8.0, np.array([0.0, 4.0, 4.0]) / 8.0
    # Channel 2 * a + b is output row phase a, column phase b (DEPTH_TO_SPACE's order).
    phases = [(even, even), (even, odd), (odd, even), (odd, odd)]
    kernel = np.stack([np.outer(rows, cols) for rows, cols in phases], axis=-1)
    return kernel[:, :, np.newaxis, :].astype(np.float32)  # [3, 3, 1, 4]


_PYR_UP_PHASES = _polyphase_kernel()


def _reflect_101(x, pad):
    """tf.pad(..., mode="REFLECT") by `pad` on both sides of rows and columns."""
    x = _pad(x, 1, range(pad, 0, -1), [x.shape[1] - 2 - i for i in range(pad)])
    return _pad(x, 2, range(pad, 0, -1), [x.shape[2] - 2 - i for i in range(pad)])


def _pad(x, axis, before, after):
    """Concatenate the rows (axis 1) or columns (axis 2) at these indices around `x`."""
    before, after = list(before), list(after)
    if not before and not after:
        return x

    def take(index):
        begin, size = [0, 0, 0, 0], [-1, -1, -1, -1]
        begin[axis], size[axis] = index, 1
        return tf.slice(x, begin, size)

    return tf.concat([take(i) for i in before] + [x] + [take(i) for i in after], axis)
