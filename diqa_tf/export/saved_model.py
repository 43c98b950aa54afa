"""SavedModel export: the preprocessing ops and the model in one serving graph.

Signatures (stable names, never Keras' generated ones):
- `serving_default`: `image_bytes` (tf.string [N], encoded PNG/JPEG/BMP/GIF, any
  sizes) -> `score` (float32 [N], on the model's score scale).
- `predict_image`: `image` (float32 [N, H, W, 3], 0-255) -> `score` [N],
  `error_map` and `quality_map` [N, ceil(H/4), ceil(W/4), 1].
"""

import os
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from diqa_tf import ops, preprocessing


def export_saved_model(model, path, overwrite=False):
    """Write `model` (a QualityModel) as a SavedModel at `path`, atomically.

    The export is built in a temporary folder beside `path` and renamed into place,
    so a reader never sees half a model. An existing `path` is replaced only with
    `overwrite=True`.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    config = model.preprocessing_config

    def predict_image(image):
        outputs = model(preprocessing.normalize(image, config), training=False)
        return {key: outputs[key] for key in ("score", "error_map", "quality_map")}

    def serve_bytes(image_bytes):
        def score_one(contents):
            image = ops.decode_image(contents)
            tf.debugging.assert_greater_equal(
                tf.reduce_min(tf.shape(image)[:2]),
                config.min_size,
                message=f"image too small: both sides must be at least {config.min_size} pixels",
            )
            return predict_image(image[tf.newaxis])["score"][0]

        return {"score": tf.map_fn(score_one, image_bytes, fn_output_signature=tf.float32)}

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
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="image")],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        archive.write_out(str(tmp / "model"), verbose=False)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp / "model", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
