"""Finding and loading models, the shipped default included."""

import importlib.resources
import re
import zipfile
from pathlib import Path

import keras

from diqa_tf.errors import ModelError, first_line

DEFAULT_MODEL = "diqa_clive.keras"
# The stage-1 model the shipped one started from (no CLIVE image seen): the start for
# stage 2 on users' own data and for the benchmark protocol on authentic databases.
DEFAULT_STAGE1_MODEL = "diqa_stage1.keras"


def default_model_path(name=DEFAULT_MODEL):
    """A shipped model: `saved_models/` in a clone, installed as `diqa_tf.shipped`."""
    return Path(str(importlib.resources.files("diqa_tf.shipped").joinpath(name)))


def load_model(path=None, expected=None):
    """Load a DIQA `.keras` model in Keras safe mode (never runs code from the file).

    `expected` is the class the caller needs (e.g. QualityModel); anything else is
    refused with a ModelError that says what the file holds.
    """
    import diqa_tf.models  # noqa: F401  (registers the classes for deserialization)

    path = Path(path) if path else default_model_path()
    if not path.exists():
        raise ModelError(f"{path}: no such model file")
    if path.is_dir() or path.suffix != ".keras":
        raise ModelError(f"{path}: not a Keras model file (expected a `.keras` file)")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found"
        raise ModelError(f"{path}: not a loadable DIQA model (not a `.keras` zip archive)")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # Keras raises many types for foreign or corrupt files.
        raise ModelError(f"{path}: not a loadable DIQA model ({_first_sentence(e)})") from None
    if expected is not None and not isinstance(model, expected):
        raise ModelError(
            f"{path}: is a {type(model).__name__}, not the {expected.__name__} needed here"
            + (" (a stage-1 model predicts error maps, not scores)"
               if type(model).__name__ == "ErrorMapModel" else "")
        )
    return model


def _first_sentence(error):
    """The gist of a Keras loading error, without its advice and the config it dumps."""
    key_message = error.args[0] if isinstance(error, KeyError) and error.args else None
    text = first_line(key_message) if key_message else first_line(error)
    return re.split(r"(?<=\.)\s+(?=[A-Z])", text, maxsplit=1)[0]
