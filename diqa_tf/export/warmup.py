"""TF Serving warm-up records: a few real requests run once when a version loads.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord of
`PredictionLog` protos) before it marks a version available, so the first user
request does not pay for graph start-up. Ours are `serving_default` requests made
from scikit-image's bundled photos (installed with the package, no download),
encoded as PNG and JPEG at different sizes, one of them a grey photo, and one
request holding two images of different sizes, as real clients send.
"""

import tensorflow as tf

from diqa_tf.errors import DIQAError

WARMUP_FILE = "tf_serving_warmup_requests"

# (photos, format, height, width) per request; small sizes keep the file ~50 KB.
_REQUESTS = (
    (("astronaut", "png", 96, 96),),
    (("coffee", "jpeg", 80, 120),),
    (("chelsea", "jpeg", 64, 96), ("camera", "png", 112, 112)),
)


def serving_protos():
    """tensorflow_serving's protobuf modules, or a DIQAError saying how to install them."""
    try:
        from tensorflow_serving.apis import (
            get_model_metadata_pb2,
            model_pb2,
            predict_pb2,
            prediction_log_pb2,
        )
    except ImportError:
        raise DIQAError(
            "TF Serving support needs tensorflow-serving-api: pip install diqa-tf[serving]"
        ) from None
    return get_model_metadata_pb2, model_pb2, predict_pb2, prediction_log_pb2


def _encoded_photo(name, image_format, height, width):
    import skimage.data

    photo = tf.convert_to_tensor(getattr(skimage.data, name)())
    if photo.shape.rank == 2:
        photo = photo[..., tf.newaxis]
    small = tf.image.resize(tf.cast(photo, tf.float32), [height, width], method="area")
    small = tf.cast(tf.round(small), tf.uint8)
    if image_format == "png":
        return tf.io.encode_png(small).numpy()
    return tf.io.encode_jpeg(small, quality=90).numpy()


def warmup_logs():
    """The warm-up `PredictionLog` records (`serving_default`, input `image_bytes`).

    The model name is left out: TF Serving runs warm-up requests on the version
    being loaded, whatever name it is served under.
    """
    _, model_pb2, predict_pb2, prediction_log_pb2 = serving_protos()
    logs = []
    for photos in _REQUESTS:
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(signature_name="serving_default")
        )
        contents = [_encoded_photo(*photo) for photo in photos]
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(contents, tf.string))
        logs.append(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        )
    return logs


def write_warmup_file(path):
    """Write the warm-up TFRecord at `path` (normally `VERSION/assets.extra/...`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in warmup_logs():
            writer.write(log.SerializeToString())
    return path
