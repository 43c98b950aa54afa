"""What every `diqa` command shares: error lines, argument types, atomic writes."""

import argparse
import contextlib
import os
import sys
from pathlib import Path

from diqa_tf.errors import DIQAError

EXIT_OK, EXIT_FAILED = 0, 1  # argparse exits with 2 on usage errors


def error(message):
    """One `diqa: error: ...` line on stderr: how every failure reaches the user."""
    print(f"diqa: error: {message}", file=sys.stderr)


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def output_file(text):
    if Path(text).suffix.lower() not in (".csv", ".json"):
        raise argparse.ArgumentTypeError(f"must end in .csv or .json, got {text!r}")
    return text


def write_atomic(path, text):
    """Write through a hidden `.partial` file and a rename: no half-written file is left."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = e.strerror or str(e)
        if isinstance(e, FileExistsError):  # mkdir met a file where a folder must be
            reason = f"{e.filename} is a file, not a folder"
        raise DIQAError(f"{path}: cannot be written ({reason})") from None


def quality_model(path):
    from diqa_tf.models import QualityModel
    from diqa_tf.resources import load_model

    return load_model(path, expected=QualityModel)




def add_model_option(parser):
    parser.add_argument("--model", help="a DIQA .keras model (default: the shipped model)")
