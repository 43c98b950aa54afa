"""Pure TF functions: usable in tf.data, in exported graphs and on numpy arrays."""

from diqa_tf.ops.image import (
    TF_SIGNATURES,
    decode_8_bit,
    decode_16_bit_png,
    decode_image,
    is_16_bit_png,
    is_decodable,
    leading_bytes,
    to_float,
    to_grayscale,
)
from diqa_tf.ops.maps import (
    error_map,
    handcrafted_features,
    normalize_reliability,
    pool_to_output,
    reliability_map,
)
from diqa_tf.ops.pyramid import high_pass, low_pass, pyr_down, pyr_up

__all__ = [
    "TF_SIGNATURES",
    "decode_16_bit_png",
    "decode_8_bit",
    "decode_image",
    "error_map",
    "handcrafted_features",
    "high_pass",
    "is_16_bit_png",
    "is_decodable",
    "leading_bytes",
    "low_pass",
    "normalize_reliability",
    "pool_to_output",
    "pyr_down",
    "pyr_up",
    "reliability_map",
    "to_float",
    "to_grayscale",
]
