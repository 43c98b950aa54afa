"""SavedModel export: the preprocessing ops and the model in one serving graph.

Signatures (stable names, never Keras' generated ones):
- `serving_default`: `image_bytes` (tf.string [N], encoded PNG/JPEG/BMP/GIF/WebP, any
  sizes) -> `score` (float32 [N], on the model's score scale). TIFF, HEIC and AVIF,
  which `diqa predict` reads through Pillow, have no TF decoder: refused, by name.
- `predict_image`: `image` (float32 [N, H, W, 3] RGB or [N, H, W, 1] grey, 0-255)
  -> `score` [N], `error_map` and `quality_map` [N, ceil(H/4), ceil(W/4), 1].

A bad input (not an image, a corrupt file, too small or too large, a wrong channel
count) stops the request with INVALID_ARGUMENT and a message naming the image's
index in the request; TF Serving passes that status and message on to the client.
The version folder also holds `assets.extra/tf_serving_warmup_requests`.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from diqa_tf import ops, preprocessing
from diqa_tf.data.files import WHOLE_IMAGE_MAX_PIXELS, too_large
from diqa_tf.data.formats import TF_FORMATS
from diqa_tf.export.warmup import WARMUP_FILE, serving_protos, write_warmup_file

# Checked before decoding (ops.is_decodable), so that anything else is named by its
# index; tf.io.decode_image also knows JPEG XL, which the package does not claim to read.
_NOT_DECODED = (
    "image {} of the request is not a " + ", ".join(TF_FORMATS[:-1]) + f" or {TF_FORMATS[-1]} "
    "image (TIFF, HEIC and AVIF are read by `diqa predict` only)"
)


def for_its_file(reason):
    """A `serving_default` message about one image, worded for a caller that names its
    file: "image 3 of the request is 40x8; ..." -> "image is 40x8; ..."."""
    return re.sub(r"^image \d+ of the request\b", "image", reason)


def _check_size(image, config, index=None):
    """Assert ops: `image` ([..., H, W, C]) passes `preprocessing.image_is_large_enough`
    and has at most WHOLE_IMAGE_MAX_PIXELS pixels (checked after decoding, before the
    network's memory: the SavedModel scores whole images, without tiles).

    `index` is the image's place in a `serving_default` request, named in the message.
    """
    shape = tf.shape(image)
    height, width = shape[-3], shape[-2]
    what = "`image`" if index is None else "image {} of the request"
    values = (width, height) if index is None else (index, width, height)
    pixels = tf.cast(height, tf.int64) * tf.cast(width, tf.int64)
    return [
        tf.debugging.Assert(
            preprocessing.image_is_large_enough(image, config),
            [tf.strings.format(
                what + " is {}x{}; both sides must be at least " f"{config.min_size} pixels",
                values,
            )],
        ),
        tf.debugging.Assert(
            pixels <= WHOLE_IMAGE_MAX_PIXELS,
            [tf.strings.format(
                what + " is {}x{}, " + too_large(WHOLE_IMAGE_MAX_PIXELS), values
            )],
        ),
    ]


def _grey(image):
    """[N, H, W, 1 or 3] -> [N, H, W, 1] luma (one grey channel is kept as it is)."""
    channels = tf.shape(image)[-1]
    check = tf.debugging.Assert(
        tf.logical_or(channels == 1, channels == 3),
        [tf.strings.format("`image` must have 1 or 3 channels, got {}", channels)],
    )
    with tf.control_dependencies([check]):
        grey = tf.cond(
            channels == 1,
            lambda: image[..., :1],
            lambda: ops.to_grayscale(tf.ensure_shape(image, [None, None, None, 3])),
        )
    return tf.ensure_shape(grey, [None, None, None, 1])


def serving_functions(model):
    """The two signature functions of `model` (a QualityModel), as plain callables."""
    config = model.preprocessing_config

    def predict_image(image):
        with tf.control_dependencies(_check_size(image, config)):
            grey = _grey(image)
        outputs = model(preprocessing.normalize(grey, config), training=False)
        return {key: outputs[key] for key in ("score", "error_map", "quality_map")}

    def score_one(args):
        index, contents = args
        check = tf.debugging.Assert(
            ops.is_decodable(contents), [tf.strings.format(_NOT_DECODED, index)]
        )
        with tf.control_dependencies([check]):
            image = ops.decode_image(contents)
        with tf.control_dependencies(_check_size(image, config, index)):
            image = tf.identity(image)
        outputs = model(preprocessing.normalize(image[tf.newaxis], config), training=False)
        return outputs["score"][0]

    def serve_bytes(image_bytes):
        indices = tf.range(tf.size(image_bytes))
        scores = tf.map_fn(score_one, (indices, image_bytes), fn_output_signature=tf.float32)
        return {"score": scores}

    return serve_bytes, predict_image


def export_saved_model(model, path, overwrite=False):
    """Write `model` (a QualityModel) as a SavedModel at `path`, atomically.

    `path` is a version folder (`NAME/VERSION`). The export, warm-up records
    included, is built in a hidden temporary folder beside `path` (TF Serving skips
    names that are not numbers) and renamed into place, so a reader never sees half a
    model. An existing `path` is replaced only with `overwrite=True`: it is renamed
    aside, the new one renamed in, then the old one deleted.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    serving_protos()  # the warm-up records need them: fail before the slow part
    serve_bytes, predict_image = serving_functions(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        serve_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    archive.add_endpoint(
        "predict_image",
        predict_image,
        input_signature=[tf.TensorSpec([None, None, None, None], tf.float32, name="image")],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        staged = tmp / "model"
        archive.write_out(str(staged), verbose=False)
        write_warmup_file(staged / "assets.extra" / WARMUP_FILE)
        if path.exists():
            os.replace(path, tmp / "replaced")
        os.replace(staged, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
