"""Matplotlib on demand (the optional `[viz]` extra), and pictures written atomically."""

from pathlib import Path

from diqa_tf.atomic import write_atomic
from diqa_tf.errors import DIQAError

INSTALL_HINT = "pictures need matplotlib: pip install 'diqa-tf[viz]' (or pip install matplotlib)"


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or DIQAError saying how to install it.

    Commands call it before any long work, so a missing extra fails at once.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DIQAError(INSTALL_HINT) from None
    return plt


def check_folder(folder):
    """Raise DIQAError now, before long work, where `folder` or a parent of it is a file."""
    folder = Path(folder)
    for path in (folder, *folder.parents):
        if path.exists():
            if path.is_dir():
                return
            if path == folder:
                raise DIQAError(f"{folder}: is a file, not a folder")
            raise DIQAError(f"{folder}: cannot be made ({path} is a file, not a folder)")


def save_figure(fig, path, dpi=80):
    """Write `fig` as a PNG (atomically, see `write_atomic`) and close it."""
    plt = pyplot()
    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    finally:
        plt.close(fig)
