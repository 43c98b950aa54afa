"""Decoding and colour conversion (DESIGN 1, steps 1-2)."""

import tensorflow as tf


def decode_image(contents):
    """Decode PNG/JPEG/BMP/GIF bytes to float32 RGB on 0-255, shape [H, W, 3].

    GIFs give their first frame, 16-bit PNGs are scaled to 0-255 (decoding to float
    scales by the type's range), alpha is dropped and grey images are replicated.
    """
    image = tf.io.decode_image(
        contents, channels=3, dtype=tf.float32, expand_animations=False
    )
    return image * 255.0


def to_grayscale(image):
    """ITU-R BT.601 luma of an RGB image on 0-255 ([..., 3] -> [..., 1]).

    A one-channel input is returned as it is.
    """
    image = tf.convert_to_tensor(image, dtype=tf.float32)
    if image.shape[-1] == 1:
        return image
    return tf.image.rgb_to_grayscale(image)
