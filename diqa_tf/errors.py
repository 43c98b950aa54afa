"""The errors a user can cause. The CLI turns each into one line on stderr."""

import re


class DIQAError(Exception):
    """Base class of the user-facing errors of diqa-tf."""


class ConfigError(DIQAError):
    """A config file or value is wrong."""


class InvalidImageError(DIQAError):
    """An image file is missing, unreadable, not an image, or too small."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class DatasetError(DIQAError):
    """A score file (CSV) or a folder of images is wrong."""


class ModelError(DIQAError):
    """A model file is missing or is not a DIQA model."""


def first_line(error):
    """The first line of a third-party error (converters and runners dump pages)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# Lines of a TF error message that frame it rather than say what went wrong.
_TF_PREAMBLES = ("[[", "Graph execution error", "Detected at node", "<stack traces", "File ")


def tf_gist(message, default):
    """What a TF error message says went wrong, on one line, or `default` if nothing.

    A failed graph assertion anywhere in it gives only the assertion's message; else
    its first line that is not framing, less op and node annotations. Reads the
    messages of local ops (`error.message`) and those TF Serving sends alike.
    """
    message = message or ""
    assertion = re.search(r"assertion failed: \[(.*?)\](?:\s|$)", message)
    if assertion:
        return assertion.group(1).strip() or default
    lines = [line.strip() for line in message.splitlines()
             if line.strip() and not line.strip().startswith(_TF_PREAMBLES)]
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", lines[0] if lines else "")
    text = re.sub(r"\s*\[\[\{\{node .*$", "", text)
    return re.sub(r"\s*\[Op:\w+\](?:\s*name:.*)?$", "", text).strip() or default
