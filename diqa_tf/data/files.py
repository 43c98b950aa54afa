"""Finding image files and reading them with errors that name the file."""

import glob
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from diqa_tf import ops
from diqa_tf.data import formats
from diqa_tf.errors import DatasetError, InvalidImageError, tf_gist

IMAGE_EXTENSIONS = formats.EXTENSIONS

# The largest image scored, checked from the file's header before decoding. Scoring
# tiles images above 4 megapixels (diqa_tf.inference) and keeps a large image at its
# file's depth (3 bytes a pixel for 8 bits) until each tile is converted, so memory
# stays bounded (README, "Speed and large images").
MAX_PIXELS = 200_000_000
# The largest image handled whole: `diqa explain` draws whole maps (about 370 bytes a
# pixel) and the SavedModel (TF Serving, `diqa beam-score`) scores whole images.
WHOLE_IMAGE_MAX_PIXELS = 40_000_000


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
                problems.append((item, f"folder holds no image ({formats.SUPPORTED})"))
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


def image_paths(inputs):
    """`find_images`, raising DatasetError naming the first input that matches no image."""
    paths, problems = find_images(inputs)
    if problems:
        item, reason = problems[0]
        raise DatasetError(f"{item}: {reason}")
    return paths


def read_photos(inputs):
    """[(path, float32 RGB)] of every image that `inputs` (files, folders, globs) name;
    DatasetError or InvalidImageError naming what cannot be used."""
    return [(str(path), read_image(path).numpy()) for path in image_paths(inputs)]


def read_image(path, min_size=16, max_pixels=MAX_PIXELS, native=False):
    """Read and decode one image file to float32 RGB 0-255 [H, W, 3].

    Raises InvalidImageError naming the file and the reason (missing, empty, not an
    image, smaller than `min_size`, larger than `max_pixels`); never a TF trace.
    `native=True` keeps the file's depth (uint8 or uint16; see `ops.to_float`).
    """
    return decode_contents(path, read_bytes(path), min_size, max_pixels, native)


def read_bytes(path):
    """A file's bytes, or InvalidImageError naming it and why it cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidImageError(path, "no such file") from None
    except IsADirectoryError:
        raise InvalidImageError(path, "is a folder, not an image") from None
    except OSError as e:
        raise InvalidImageError(path, f"cannot be read ({e.strerror})") from None


def decode_contents(path, contents, min_size=16, max_pixels=MAX_PIXELS, native=False):
    """Decode an image file's bytes with read_image's checks; `path` names it in errors.

    For bytes read elsewhere (Beam filesystems): the same rules as `diqa predict`.
    """
    if not contents:
        raise InvalidImageError(path, "empty file (0 bytes)")
    check_pixel_count(path, contents, max_pixels)
    _check_jpeg_complete(path, contents)
    try:
        image = formats.decode(contents)
    except formats.UnreadableImage as e:
        raise InvalidImageError(path, str(e)) from None
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        reason = tf_gist(e.message, "cannot be decoded")
        raise InvalidImageError(
            path, f"not a readable {formats.sniff(contents)} image ({reason})"
        ) from None
    height, width = int(image.shape[0]), int(image.shape[1])
    if height < min_size or width < min_size:
        raise InvalidImageError(
            path, f"image is {width}x{height}; both sides must be at least {min_size} pixels"
        )
    return image if native else ops.to_float(image)


def too_large(max_pixels):
    """The reason given for an image above `max_pixels` (files and the SavedModel)."""
    text = f"more than the {max_pixels // 1_000_000} megapixels that can be scored"
    if max_pixels < MAX_PIXELS:
        text += f" whole (`diqa predict` scores up to {MAX_PIXELS // 1_000_000} in tiles)"
    return text


def check_pixel_count(path, contents, max_pixels=MAX_PIXELS):
    """Refuse an image above `max_pixels` from its header; returns its pixel count
    (None where the header cannot be read: the decoder then says what is wrong)."""
    size = formats.size(contents)
    if size is None:
        return None
    width, height = size
    if width * height > max_pixels:
        raise InvalidImageError(path, f"image is {width}x{height}, {too_large(max_pixels)}")
    return width * height


def _check_jpeg_complete(path, contents):
    """Refuse a JPEG whose data stop before its end-of-image marker (a cut-off download).

    TF's decoder refuses these too, but only after libjpeg has printed "Premature end
    of JPEG data" or "Input file read error" to the process's stderr; this check says
    what is wrong, and says it once. The end marker FF D9 follows the last start-of-scan
    FF DA: neither can occur inside the scan data (a data byte FF is followed by 00 or
    a restart code), while bytes appended after the end marker do no harm.
    """
    if contents[:2] == b"\xff\xd8" and contents.rfind(b"\xff\xd9") <= contents.rfind(b"\xff\xda"):
        raise InvalidImageError(
            path, "not a readable JPEG image (the JPEG data end before "
            "its end-of-image marker: the file is truncated or corrupt)"
        )


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
