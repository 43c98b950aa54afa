"""The errors a user can cause. The CLI turns each into one line on stderr."""


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
