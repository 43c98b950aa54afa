"""What every `diqa` command shares: error lines, argument types, atomic writes."""

import argparse
import sys
from pathlib import Path

from diqa_tf.atomic import write_atomic  # noqa: F401  (re-exported: the commands' writer)

EXIT_OK, EXIT_FAILED = 0, 1  # argparse exits with 2 on usage errors


def error(message):
    """One `diqa: error: ...` line on stderr: how every failure reaches the user."""
    print(f"diqa: error: {message}", file=sys.stderr)


def whole_number(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def positive_int(text):
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def fraction(text):
    value = number(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def output_file(text):
    if Path(text).suffix.lower() not in (".csv", ".json"):
        raise argparse.ArgumentTypeError(f"must end in .csv or .json, got {text!r}")
    return text


def quality_model(path):
    from diqa_tf.models import QualityModel
    from diqa_tf.resources import load_model

    return load_model(path, expected=QualityModel)


def add_database_options(parser):
    """--database NAME --root DIR, both required (benchmark, folds)."""
    from diqa_tf.data.databases import DATABASES

    parser.add_argument("--database", required=True, metavar="NAME",
                        help=f"one of {', '.join(DATABASES)}")
    parser.add_argument("--root", required=True, metavar="DIR",
                        help="the database's folder as unpacked (for `csv`: the CSV file)")


def add_model_option(parser):
    parser.add_argument("--model", help="a DIQA .keras model (default: the shipped model)")
