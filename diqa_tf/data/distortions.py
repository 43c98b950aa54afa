"""Synthetic distortions for stage-1 pairs, as TF ops (runs inside tf.data).

DESIGN 4 lists JPEG, Gaussian blur, white noise, contrast and brightness changes and
colour quantization; the prototype's lesson added realistic camera distortions
(exposure, motion blur, low-light noise, chroma noise, saturation, resampling blur,
sharpening) and mixtures of two. Each type has 5 levels, 0 (visible but mild) to
4 (severe), like LIVE/TID2013. Images are RGB float32 on 0-255, [H, W, 3]; all
randomness is stateless (seeded), so a pipeline replays exactly.
JPEG2000 is not included: it needs Pillow with OpenJPEG, outside the TF graph.
"""


import tensorflow as tf

DISTORTIONS = (
    "jpeg",
    "gaussian_blur",
    "white_noise",
    "contrast",
    "exposure",
    "quantization",
    "motion_blur",
    "resampling_blur",
    "low_light_noise",
    "chroma_noise",
    "saturation",
    "sharpening",
)
MIXTURE = "mixture"  # two distinct distortions, one after the other
ALL_KINDS = DISTORTIONS + (MIXTURE,)
NUM_LEVELS = 5


def _level_value(values, level):
    return tf.gather(tf.constant(values, tf.float32), level)


def _seeds(seed, n):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def _line_filter(image, taps, step):
    """Sum of `taps[i]` times [H, W, 3] `image` shifted by (i - r) * `step` (rows,
    columns), r = len(taps) // 2: a 1-D filter along any direction, symmetric borders.

    Shift-and-add, not a convolution: TF's own conv kernels (oneDNN off, the default
    on CPUs without AVX-512) run such few-channel filters slowly. Measured on a
    2-core AVX2 EPYC, one 144^2 crop: motion blur 54 -> 3.0 ms, Gaussian blur 11.6 -> 5.6
    (the same values: the sums run in the same order).
    """
    r = len(taps) // 2
    size = tf.shape(image)
    padded = tf.pad(image, [[r, r], [r, r], [0, 0]], mode="SYMMETRIC")
    out = tf.zeros_like(image)
    for i in range(len(taps)):
        begin = tf.stack([r + (i - r) * step[0], r + (i - r) * step[1], 0])
        out += taps[i] * tf.slice(padded, begin, size)
    return out


def _gaussian_kernel_1d(sigma, radius):
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-0.5 * tf.square(x / sigma))
    return k / tf.reduce_sum(k)


def _gaussian_blur(image, sigma, radius=14):
    taps = tf.unstack(_gaussian_kernel_1d(sigma, radius))
    image = _line_filter(image, taps, (0, 1))
    return _line_filter(image, taps, (1, 0))


def jpeg(image, level, seed):
    quality = tf.gather(tf.constant([43, 28, 17, 10, 5]), level)
    out = tf.image.adjust_jpeg_quality(image / 255.0, quality)
    return out * 255.0


def gaussian_blur(image, level, seed):
    return _gaussian_blur(image, _level_value([0.8, 1.3, 2.0, 3.0, 4.5], level))


def white_noise(image, level, seed):
    std = _level_value([4.0, 8.0, 14.0, 22.0, 35.0], level)
    return image + std * tf.random.stateless_normal(tf.shape(image), seed)


def contrast(image, level, seed):
    """Lower or raise contrast (a coin decides); raising clips highlights and shadows."""
    lower = _level_value([0.75, 0.6, 0.45, 0.3, 0.2], level)
    higher = _level_value([1.3, 1.6, 2.0, 2.5, 3.2], level)
    up = tf.random.stateless_uniform([], seed) < 0.5
    return tf.image.adjust_contrast(image, tf.where(up, higher, lower))


def exposure(image, level, seed):
    """Over- or under-exposure: a gain with clipping, as a camera would."""
    over = _level_value([1.25, 1.5, 1.9, 2.4, 3.2], level)
    up = tf.random.stateless_uniform([], seed) < 0.5
    return image * tf.where(up, over, 1.0 / over)


def quantization(image, level, seed):
    steps = _level_value([24.0, 12.0, 8.0, 5.0, 3.0], level)
    step = 255.0 / (steps - 1.0)
    return tf.round(image / step) * step


def motion_blur(image, level, seed):
    """A line kernel of 3..19 pixels, horizontal, vertical or diagonal."""
    length = tf.gather(tf.constant([3, 5, 9, 13, 19]), level)
    radius = 9
    taps = tf.cast(tf.abs(tf.range(-radius, radius + 1)) <= length // 2, tf.float32)
    direction = tf.random.stateless_uniform([], seed, 0, 4, dtype=tf.int32)
    # horizontal, vertical, diagonal, anti-diagonal: (rows, columns) per tap
    step = tf.unstack(tf.gather(tf.constant([[0, 1], [1, 0], [1, 1], [1, -1]]), direction))
    return _line_filter(image, tf.unstack(taps / tf.reduce_sum(taps)), step)


def resampling_blur(image, level, seed):
    """Downscale (antialiased) and upscale back: the look of a resized photo."""
    factor = _level_value([1.5, 2.0, 3.0, 4.0, 6.0], level)
    size = tf.shape(image)[:2]
    small = tf.cast(tf.math.ceil(tf.cast(size, tf.float32) / factor), tf.int32)
    image = tf.image.resize(image, small, method="area", antialias=True)
    return tf.image.resize(image, size, method="bicubic")


def low_light_noise(image, level, seed):
    """Darken, add shot (signal-dependent) and read noise, brighten back."""
    gain = _level_value([0.5, 0.3, 0.2, 0.12, 0.07], level)
    dark = image * gain
    std = tf.sqrt(0.6 * dark + 2.0)
    noisy = dark + std * tf.random.stateless_normal(tf.shape(image), seed)
    return noisy / gain


def chroma_noise(image, level, seed):
    """Blotchy colour noise at half resolution, as from a small sensor."""
    std = _level_value([6.0, 10.0, 16.0, 24.0, 36.0], level)
    size = tf.shape(image)[:2]
    half = (size + 1) // 2
    noise = tf.random.stateless_normal(tf.concat([half, [3]], 0), seed)
    noise = tf.image.resize(noise, size, method="bilinear")
    return image + std * noise


def saturation(image, level, seed):
    factor = tf.where(
        tf.random.stateless_uniform([], seed) < 0.5,
        _level_value([0.6, 0.4, 0.25, 0.1, 0.0], level),
        _level_value([1.6, 2.2, 3.0, 4.0, 5.0], level),
    )
    image = tf.clip_by_value(image, 0.0, 255.0) / 255.0
    return tf.image.adjust_saturation(image, factor) * 255.0


def sharpening(image, level, seed):
    """Unsharp masking with growing strength: halos and amplified noise."""
    amount = _level_value([0.8, 1.5, 2.5, 4.0, 6.0], level)
    blurred = _gaussian_blur(image, tf.constant(1.5))
    return image + amount * (image - blurred)


_FUNCTIONS = (
    jpeg,
    gaussian_blur,
    white_noise,
    contrast,
    exposure,
    quantization,
    motion_blur,
    resampling_blur,
    low_light_noise,
    chroma_noise,
    saturation,
    sharpening,
)


def _finish(image):
    """Back to what a real 8-bit image could hold."""
    return tf.round(tf.clip_by_value(image, 0.0, 255.0))


def distort(image, kind, level, seed):
    """Apply distortion `kind` (an index into ALL_KINDS) at `level` (0-4).

    `seed` is a stateless seed (shape [2], int). The mixture applies two distinct
    single distortions, each at a level drawn at random.
    """
    image = tf.convert_to_tensor(image, tf.float32)
    kind = tf.convert_to_tensor(kind, tf.int32)
    level = tf.convert_to_tensor(level, tf.int32)
    s_apply, s_first, s_second, s_levels = _seeds(seed, 4)

    def single(img, k, lvl, s):
        branches = [
            (lambda f=f: tf.ensure_shape(f(img, lvl, s), img.shape)) for f in _FUNCTIONS
        ]
        return _finish(tf.switch_case(k, branches))

    def mixture():
        n = len(DISTORTIONS)
        first = tf.random.stateless_uniform([], s_first, 0, n, dtype=tf.int32)
        offset = tf.random.stateless_uniform([], s_second, 1, n, dtype=tf.int32)
        second = (first + offset) % n
        levels = tf.random.stateless_uniform([2], s_levels, 0, NUM_LEVELS - 1, dtype=tf.int32)
        once = single(image, first, levels[0], s_apply)
        return single(once, second, levels[1], s_first)

    return tf.cond(
        kind == len(DISTORTIONS),
        mixture,
        lambda: single(image, tf.minimum(kind, len(DISTORTIONS) - 1), level, s_apply),
    )
