"""`diqa convert`: a .tflite model for LiteRT (mobile), the normalization inside."""

import argparse
import re
from pathlib import Path

from diqa_tf.cli.common import EXIT_OK, add_model_option, quality_model
from diqa_tf.cli.native_stderr import discarded

# diqa_tf.export.tflite's QUANTIZE_MODES and DEFAULT_INPUT_SIZE, repeated so that
# building the parser (`diqa --help`) does not import TensorFlow; a test keeps them equal.
QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
DEFAULT_INPUT_SIZE = (500, 500)


def input_size(text):
    """`HxW` in pixels, e.g. 500x500 -> (500, 500)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"must be HxW in pixels, e.g. 500x500, got {text!r}")
    height, width = int(match[1]), int(match[2])
    if min(height, width) < 1:
        raise argparse.ArgumentTypeError(f"both sides must be at least 1, got {text!r}")
    return height, width


def tflite_file(text):
    if Path(text).suffix.lower() != ".tflite":
        raise argparse.ArgumentTypeError(f"must end in .tflite, got {text!r}")
    return text


def run(args):
    from diqa_tf.export import tflite

    if args.calibration and args.quantize != "int8":
        args.usage_error("--calibration is only used with --quantize int8")
    model = quality_model(args.model)
    calibration = None
    if args.calibration:
        calibration = tflite.folder_calibration_images(
            args.calibration, args.input_size, model.preprocessing_config.min_size
        )
    with discarded(1, 2):
        flatbuffer = tflite.convert(model, args.input_size, args.quantize, calibration)
    tflite.write_tflite(flatbuffer, args.output)
    height, width = args.input_size
    print(
        f"wrote {args.output} ({len(flatbuffer) / 1e6:.2f} MB, quantize {args.quantize}): "
        f"input `image` float32 [1, {height}, {width}, 3] RGB 0-255; outputs `score`, "
        "`quality_map`"
    )
    return EXIT_OK


def register(commands):
    convert = commands.add_parser(
        "convert", help="write a .tflite model for LiteRT (mobile), normalization inside"
    )
    add_model_option(convert)
    convert.add_argument("--output", required=True, type=tflite_file, metavar="FILE.tflite",
                         help="the model file to write (replaced atomically if it exists)")
    convert.add_argument(
        "--quantize", choices=QUANTIZE_MODES, default="none",
        help="post-training quantization (default: none, float32); int8 calibrates on "
        "real photos, see --calibration",
    )
    convert.add_argument(
        "--input-size", type=input_size, default=DEFAULT_INPUT_SIZE, metavar="HxW",
        help="the model's fixed input size (default: 500x500, CLIVE's photo size); "
        "apps fit each image to it (scale to cover, crop the centre)",
    )
    convert.add_argument(
        "--calibration", metavar="DIR",
        help="int8 only: a folder of typical photos to calibrate on (up to 64 are used; "
        "default: the photos bundled with scikit-image)",
    )
    convert.set_defaults(func=run, usage_error=convert.error)
