"""Decoding and colour conversion (DESIGN 1, steps 1-2)."""

import tensorflow as tf

# 16-bit values map to 0-255 as 8-bit ones do: 65535 = 255 * 257, so an 8-bit value v
# stored in 16 bits (v * 257) decodes to exactly v.
UINT16_PER_LEVEL = 257.0


def leading_bytes(contents, length):
    """The first `length` bytes, padded with zeros: safe to slice for short inputs."""
    return tf.strings.join([tf.strings.substr(contents, 0, length), b"\0" * length])


# The formats `decode_image` reads, by their leading bytes: each signature is a list of
# (offset, bytes) that must all match. `diqa_tf.data.formats.sniff` reads the same table.
TF_SIGNATURES = (
    ("PNG", ((0, b"\x89PNG\r\n\x1a\n"),)),
    ("JPEG", ((0, b"\xff\xd8\xff"),)),
    ("GIF", ((0, b"GIF87a"),)),
    ("GIF", ((0, b"GIF89a"),)),
    ("BMP", ((0, b"BM"),)),
    ("WebP", ((0, b"RIFF"), (8, b"WEBP"))),
)


def is_decodable(contents):
    """True for bytes that start like PNG, JPEG, GIF, BMP or WebP (works in graphs)."""
    head = leading_bytes(contents, 12)
    return tf.reduce_any(
        [
            tf.reduce_all([tf.strings.substr(head, start, len(m)) == m for start, m in parts])
            for _, parts in TF_SIGNATURES
        ]
    )


def is_16_bit_png(contents):
    """True for PNG bytes whose IHDR says 16 bits per sample (works in graphs)."""
    head = leading_bytes(contents, 25)
    return tf.logical_and(
        tf.strings.substr(head, 0, 8) == b"\x89PNG\r\n\x1a\n",
        tf.strings.substr(head, 24, 1) == b"\x10",
    )


def decode_image(contents):
    """Decode PNG/JPEG/BMP/GIF/WebP bytes to float32 RGB on 0-255, shape [H, W, 3].

    GIFs give their first frame, alpha is dropped and grey images are replicated;
    16-bit PNGs are scaled to 0-255 (see `to_float`). Works in graphs (tf.data, the
    SavedModel).
    """
    return tf.cond(
        is_16_bit_png(contents),
        lambda: to_float(decode_16_bit_png(contents)),
        lambda: to_float(decode_8_bit(contents)),
    )


def decode_8_bit(contents):
    """PNG/JPEG/BMP/GIF/WebP bytes -> uint8 RGB [H, W, 3] (16-bit PNGs lose bits).

    uint8 because TF's WebP decoder gives nothing else; a quarter of float32's memory.
    """
    image = tf.io.decode_image(contents, channels=3, dtype=tf.uint8, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def decode_16_bit_png(contents):
    """16-bit PNG bytes -> uint16 RGB [H, W, 3] on 0-65535."""
    return tf.io.decode_png(contents, channels=3, dtype=tf.uint16)


def to_float(image):
    """uint8 (0-255), uint16 (0-65535) or float (0-255) image -> float32 on 0-255."""
    if image.dtype == tf.uint16:
        return tf.cast(image, tf.float32) / UINT16_PER_LEVEL
    return tf.cast(image, tf.float32)


def to_grayscale(image):
    """ITU-R BT.601 luma of an RGB image on 0-255 ([..., 3] -> [..., 1]).

    A one-channel input is returned as it is.
    """
    image = tf.convert_to_tensor(image, dtype=tf.float32)
    if image.shape[-1] == 1:
        return image
    return tf.image.rgb_to_grayscale(image)
