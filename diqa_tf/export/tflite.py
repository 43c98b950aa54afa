"""TFLite / LiteRT conversion: the normalization and the model in one builtin-only graph.

The .tflite model has one signature, `serving_default`:
- input `image`: float32 [1, H, W, 3], RGB on 0-255, H x W fixed at conversion
  (default 500 x 500, the size of the CLIVE photos the shipped model was trained on);
- outputs `score` (float32 [1], on the model's score scale) and `quality_map`
  (float32 [1, ceil(H/4), ceil(W/4), 1], the perceptual map of DESIGN 6).
Grey conversion, the pyramid high-pass and the handcrafted features run inside the
graph: `preprocessing.normalize`, the same ops as tf.data and the SavedModel, all
TFLite builtins that XNNPACK runs fast (reflect-101 padding as STRIDED_SLICE +
CONCATENATION, pyrUp as a polyphase DEPTHWISE_CONV_2D + DEPTH_TO_SPACE; see
`ops.pyramid`). Decoding, and fitting an image to H x W (`fit_to_input`), stay outside.
"""

import logging
import tempfile
import warnings
from pathlib import Path

import flatbuffers
import keras
import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

from diqa_tf import preprocessing
from diqa_tf.atomic import write_atomic
from diqa_tf.errors import DIQAError, first_line

logger = logging.getLogger(__name__)

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
# Ours: CLIVE's photos are 500 x 500, so the shipped model sees them unchanged.
DEFAULT_INPUT_SIZE = (500, 500)
SIGNATURE = "serving_default"
OUTPUTS = ("score", "quality_map")
# int8 calibration: at most this many images, each one a float model run.
MAX_CALIBRATION_IMAGES = 64

# Ops that make a converted model unusable on a stock LiteRT runtime. Resource
# variables left in the graph convert "fine" and then return NaN (the known silent
# failure); Flex (Select TF) and other custom ops need a runtime that ships them.
_VARIABLE_OPS = ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE")


def fit_to_input(image, input_size):
    """Fit an RGB (or grey) [h, w, C] 0-255 image to [H, W, 3], as the .tflite expects.

    Our choice: scale the image so that it covers H x W with the least resampling
    (the larger of H/h and W/w; bilinear with antialiasing when shrinking), then
    crop the centre. An image of exactly H x W passes unchanged. CLIVE's photos were
    made the same way from camera pictures, so the shipped model has seen this.
    """
    image = tf.convert_to_tensor(image, tf.float32)
    if image.shape.rank != 3 or image.shape[-1] not in (1, 3):
        raise DIQAError(
            f"`image` must be [H, W, 3] or [H, W, 1]. Received: shape={tuple(image.shape)}"
        )
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    height, width = input_size
    h, w = int(image.shape[0]), int(image.shape[1])
    if (h, w) != (height, width):
        scale = max(height / h, width / w)
        size = (max(height, round(h * scale)), max(width, round(w * scale)))
        image = tf.image.resize(image, size, method="bilinear", antialias=True)
        top, left = (size[0] - height) // 2, (size[1] - width) // 2
        image = image[top : top + height, left : left + width]
    return image.numpy()


def convert(model, input_size=DEFAULT_INPUT_SIZE, quantize="none", calibration=None):
    """Convert a QualityModel to .tflite bytes, checked to hold builtin ops only.

    `calibration` (int8 only): a list of RGB 0-255 images, each fitted to the input
    size; default `skimage_calibration_images(input_size)`.
    """
    if quantize not in QUANTIZE_MODES:
        raise DIQAError(f"`quantize` must be one of {QUANTIZE_MODES}. Received: {quantize!r}")
    height, width = input_size
    config = model.preprocessing_config
    if min(height, width) < config.min_size:
        raise DIQAError(
            f"input size {height}x{width}: both sides must be at least {config.min_size} pixels"
        )

    def serve(image):
        outputs = model(preprocessing.normalize(image, config), training=False)
        return {key: outputs[key] for key in OUTPUTS}

    # Through a SavedModel, as Keras' own LiteRT export does: converting the concrete
    # function directly leaves VAR_HANDLE / READ_VARIABLE ops that return NaN.
    with tempfile.TemporaryDirectory(prefix="diqa_tflite_") as saved_model:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            SIGNATURE,
            serve,
            input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="image")],
        )
        archive.write_out(saved_model, verbose=False)
        try:
            flatbuffer = _convert(saved_model, quantize, input_size, calibration)
        except DIQAError:
            raise
        except Exception as e:  # the converter raises its own types, with MLIR dumps
            raise DIQAError(f"TFLite conversion failed ({first_line(e)})") from None
    check_builtin_only(flatbuffer)
    return flatbuffer


def _converter(saved_model):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=[SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def _convert(saved_model, quantize, input_size, calibration):
    """Post-training quantization; the input and outputs stay float32 in every mode."""
    converter = _converter(saved_model)
    if quantize == "none":
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    float_flatbuffer = _converter(saved_model).convert()
    if quantize == "dynamic":  # int8 weights, activations quantized on the fly
        return _restore_float_convs(converter.convert(), float_flatbuffer)
    if calibration is None:
        calibration = skimage_calibration_images(input_size)
    if not calibration:
        raise DIQAError("int8 quantization needs at least one calibration image")
    images = [fit_to_input(image, input_size)[np.newaxis] for image in calibration]

    def dataset():
        for image in images:
            yield [image]

    converter.representative_dataset = dataset
    return _quantize_int8_selectively(converter, float_flatbuffer, dataset)


# int8 and dynamic keep these CONV_2D layers (conv1, conv2) float; see
# _quantize_int8_selectively. Operators are stored in execution order and the
# normalization has no CONV_2D (its filters are DEPTHWISE_CONV_2D), so they are the
# first two CONV_2D ops of the graph.
FLOAT_CONVS = 2


def _conv_ops(model):
    graph = model.subgraphs[0]
    conv = schema.BuiltinOperator.CONV_2D
    return [op for op in graph.operators if model.operatorCodes[op.opcodeIndex].builtinCode == conv]


def _restore_float_convs(dynamic_flatbuffer, float_flatbuffer):
    """Put the float32 weights of conv1 and conv2 back into a dynamic-range model.

    Dynamic-range quantization quantizes conv2's input (conv1's output) to 8 bits per
    image, on the fly, which loses the fine texture _quantize_int8_selectively keeps:
    measured at 500x500, SRCC 0.987 against the float model on the benchmark's 40
    photos. The converter has no option to leave one layer out, so the weight tensor
    is swapped back in the flatbuffer: a conv with float weights runs as a plain float
    conv (conv1, under 1024 weights, is never quantized).
    """
    quantized = schema.ModelT.InitFromPackedBuf(dynamic_flatbuffer, 0)
    original = schema.ModelT.InitFromPackedBuf(float_flatbuffer, 0)
    pairs = zip(_conv_ops(quantized)[:FLOAT_CONVS], _conv_ops(original)[:FLOAT_CONVS])
    for op, float_op in pairs:
        weights = quantized.subgraphs[0].tensors[op.inputs[1]]
        float_weights = original.subgraphs[0].tensors[float_op.inputs[1]]
        if weights.type == schema.TensorType.FLOAT32:
            continue
        weights.type, weights.quantization = schema.TensorType.FLOAT32, None
        quantized.buffers[weights.buffer].data = original.buffers[float_weights.buffer].data
    builder = flatbuffers.Builder(0)
    builder.Finish(quantized.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _quantize_int8_selectively(converter, float_flatbuffer, dataset):
    """int8 for conv3..conv8 (about 80% of the multiply-adds); the rest stays float32.

    Our choice, measured on the shipped model against its float .tflite (SRCC on 104
    distorted scikit-image photos at 128x128): everything int8, normalization
    included, 0.94; the normalization and the dense head kept float, 0.98; conv1
    and conv2 kept float as well, 0.998 (0.997 at 500x500). The sensitive tensors
    are I_hat and conv1's output: the fine texture of flat regions (sky, dark
    backgrounds) is a small fraction of their range, which per-tensor 8-bit steps
    erase. Selective quantization goes through TF's quantization debugger
    (denylisted ops and nodes).

    Latency, by `benchmarks/tflite_variants.py` (500x500, LiteRT 2.3, XNNPACK, 2
    threads, p50): float 134 ms, int8 49 ms, 2.7x, SRCC 0.998 against float on its
    40 photos (before `ops.pyramid` took its polyphase pyrUp and slice padding, the
    normalization took 16 ms instead of 3 ms: 157 and 70 ms, 2.3x). What stays float is what bounds the ratio: conv1 and conv2
    (1.4 of the convs' 8.3 G multiply-adds). Measured there and rejected, as below our 0.99
    SRCC floor: conv2 in int8 as well, 0.968 (calibrated on 64 CLIVE photos instead
    of scikit-image's, 0.960; conv1's output channels first rescaled to one range,
    an exact change in float, 0.986); the dense head in int8 on the map positions,
    0.993 but a quality_map correlating at 0.57 with float's on one photo.
    """
    model = schema.ModelT.InitFromPackedBuf(float_flatbuffer, 0)
    tensors = model.subgraphs[0].tensors
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_ops=sorted(operator_names(float_flatbuffer) - {"CONV_2D"}),
        denylisted_nodes=[
            tensors[op.outputs[0]].name.decode() for op in _conv_ops(model)[:FLOAT_CONVS]
        ],
    )
    with warnings.catch_warnings():  # the debugger builds a (deprecated) tf.lite.Interpreter
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=dataset, debug_options=options
        )
        return debugger.get_nondebug_quantized_model()


def operator_names(flatbuffer):
    """The set of operator names in a .tflite flatbuffer (custom ops by their code)."""
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = set()
    for subgraph in model.subgraphs or []:
        for operator in subgraph.operators or []:
            code = model.operatorCodes[operator.opcodeIndex]
            # Codes above 127 live in `builtinCode` only (the schema's compatibility rule).
            number = max(code.builtinCode, code.deprecatedBuiltinCode)
            if number == schema.BuiltinOperator.CUSTOM:
                names.add(code.customCode.decode())
            else:
                names.add(builtin.get(number, f"BUILTIN_{number}"))
    return names


def check_builtin_only(flatbuffer):
    """Refuse a model holding variables, Flex or other custom ops (see _VARIABLE_OPS)."""
    names = operator_names(flatbuffer)
    variables = sorted(n for n in names if n in _VARIABLE_OPS)
    if variables:
        raise DIQAError(
            f"the converted model holds resource-variable ops ({', '.join(variables)}); "
            "LiteRT would return NaN"
        )
    builtin = {k for k in vars(schema.BuiltinOperator) if not k.startswith("_")}
    custom = sorted(n for n in names if n not in builtin and not n.startswith("BUILTIN_"))
    if custom:
        kind = "Flex (Select TF)" if any(n.startswith("Flex") for n in custom) else "custom"
        raise DIQAError(
            f"the converted model holds {kind} ops ({', '.join(custom)}); "
            "only TFLite builtin ops run on a stock LiteRT runtime"
        )


def skimage_calibration_images(input_size):
    """int8 calibration data: scikit-image's natural photos fitted to the input size."""
    from diqa_tf.data.files import skimage_photos

    return [fit_to_input(photo, input_size) for _, photo in skimage_photos()]


def folder_calibration_images(folder, input_size, min_size=16):
    """Up to MAX_CALIBRATION_IMAGES images of `folder`, evenly spread, fitted.

    Unreadable files are skipped with a log line; a folder with no usable image
    raises DIQAError.
    """
    from diqa_tf.data import files, formats
    from diqa_tf.errors import InvalidImageError

    folder = Path(folder)
    if not folder.is_dir():
        raise DIQAError(f"{folder}: calibration folder not found")
    paths, _ = files.find_images([folder])
    if len(paths) > MAX_CALIBRATION_IMAGES:
        step = len(paths) / MAX_CALIBRATION_IMAGES
        paths = [paths[int(i * step)] for i in range(MAX_CALIBRATION_IMAGES)]
    images = []
    for path in paths:
        try:
            images.append(fit_to_input(files.read_image(path, min_size), input_size))
        except InvalidImageError as e:
            logger.warning("calibration: skipped %s", e)
    if not images:
        raise DIQAError(f"{folder}: no readable image ({formats.SUPPORTED}) to calibrate with")
    return images


def write_tflite(flatbuffer, path):
    """Write the .tflite bytes atomically."""
    return write_atomic(path, flatbuffer)
