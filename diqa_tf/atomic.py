"""Files that are never half-written: what every output of diqa-tf goes through.

Each file is written to a hidden `.partial` name beside its place and then renamed
(`os.replace` is atomic on one file system), so a run killed at any moment leaves
either the previous file or the new one.
"""

import contextlib
import os
from pathlib import Path

from diqa_tf.errors import DIQAError


def write_atomic(path, content):
    """Write `content` (str, bytes, or a function that writes to a given path) at `path`.

    A failed write leaves no file behind and raises DIQAError naming `path`.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        elif isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            content(tmp)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = e.strerror or str(e)
        if isinstance(e, FileExistsError):  # mkdir met a file where a folder must be
            reason = f"{e.filename} is a file, not a folder"
        raise DIQAError(f"{path}: cannot be written ({reason})") from None
    return path
