"""Finding image files and reading them with errors that name the file."""

import glob
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from diqa_tf import ops
from diqa_tf.errors import InvalidImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def find_images(inputs, recursive=True):
    """Expand files, folders and globs to image paths, in a stable order.

    Returns (paths, problems): `problems` lists (input, reason) for inputs that
    match nothing, so the caller can report them and go on.
    """
    paths, problems = [], []
    for item in inputs:
        item = str(item)
        if os.path.isdir(item):
            pattern = os.path.join(item, "**", "*") if recursive else os.path.join(item, "*")
            found = sorted(
                p
                for p in glob.glob(pattern, recursive=recursive)
                if p.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(p)
            )
            if not found:
                problems.append((item, "folder holds no PNG/JPEG/BMP/GIF image"))
            paths.extend(found)
        elif os.path.exists(item):
            paths.append(item)
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not found:
                problems.append((item, "pattern matches no file"))
            paths.extend(found)
        else:
            problems.append((item, "no such file or folder"))
    return paths, problems


def read_image(path, min_size=16):
    """Read and decode one image file to float32 RGB 0-255 [H, W, 3].

    Raises InvalidImageError naming the file and the reason; never a TF trace.
    """
    path = Path(path)
    try:
        contents = path.read_bytes()
    except FileNotFoundError:
        raise InvalidImageError(path, "no such file") from None
    except IsADirectoryError:
        raise InvalidImageError(path, "is a folder, not an image") from None
    except OSError as e:
        raise InvalidImageError(path, f"cannot be read ({e.strerror})") from None
    if not contents:
        raise InvalidImageError(path, "empty file (0 bytes)")
    try:
        image = ops.decode_image(contents)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        reason = e.message.splitlines()[0] if e.message else "cannot be decoded"
        raise InvalidImageError(path, f"not a readable PNG/JPEG/BMP/GIF image ({reason})") from None
    height, width = int(image.shape[0]), int(image.shape[1])
    if height < min_size or width < min_size:
        raise InvalidImageError(
            path, f"image is {width}x{height}; both sides must be at least {min_size} pixels"
        )
    return image


def skimage_photos():
    """The natural colour and grey photos bundled with scikit-image, as (name, uint8 RGB).

    They install with the package's dependencies, so the demo and stage-1 training
    have real photos on any machine, with no download.
    """
    import skimage.data

    names = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon", "page")
    photos = []
    for name in names:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        photos.append((name, np.ascontiguousarray(image[..., :3])))
    return photos
