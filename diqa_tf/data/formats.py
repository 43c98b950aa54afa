"""Image formats: which one a file is (from its first bytes) and who decodes it.

TensorFlow decodes PNG, JPEG, BMP, GIF and WebP (also inside the SavedModel);
Pillow decodes TIFF, and HEIC and AVIF through plugins: `pillow-heif` (the `[heic]`
extra) for HEIC, Pillow's own AVIF plugin (in its wheels from 11.3) for AVIF.
Decoded images keep the file's depth (uint8, or uint16 for 16-bit files);
`diqa_tf.ops.to_float` scales both to 0-255.
"""

import contextlib
import io
import threading
import warnings

import numpy as np
import tensorflow as tf
from PIL import Image, features

from diqa_tf import ops
from diqa_tf.errors import first_line

TF_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WebP")
PILLOW_FORMATS = ("TIFF", "HEIC", "AVIF")
SUPPORTED = ", ".join(TF_FORMATS + PILLOW_FORMATS)
EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif",
)

# Brands of an ISO base media file ("ftyp" box) that mark HEIC and AVIF images.
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_AVIF_BRANDS = {b"avif", b"avis"}

# TF's JPEG decoder refuses images of 2**29 bytes or more (RGB: 179 megapixels, e.g.
# 200-megapixel phone photos); larger files in TF's formats go through Pillow.
TF_MAX_PIXELS = 2**29 // 3 - 1

# Pillow's decompression-bomb limit and the warnings filters are process-wide
# settings: see `_opened` (Scorer reads files on two threads).
PILLOW_LOCK = threading.Lock()


class UnreadableImage(Exception):
    """Bytes that are not an image this package reads; the message says why (and what to do)."""


def sniff(contents):
    """The format's name (one of TF_FORMATS + PILLOW_FORMATS) from the leading bytes, or None."""
    head = bytes(contents[:32])
    for kind, parts in ops.TF_SIGNATURES:
        if all(head[start : start + len(m)] == m for start, m in parts):
            return kind
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF, BigTIFF
        return "TIFF"
    if head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        box = bytes(contents[8 : max(size, 12)])
        brands = {box[i : i + 4] for i in range(0, len(box) - 3, 4)} - {b"\x00\x00\x00\x00"}
        if brands & _AVIF_BRANDS:
            return "AVIF"
        if brands & _HEIC_BRANDS or box[:4] == b"mif1":
            return "HEIC"
    return None


def decode(contents):
    """Encoded bytes -> RGB tf.Tensor [H, W, 3], uint8 or uint16 (the file's depth).

    Raises UnreadableImage for bytes of no supported format, a missing plugin or a
    file Pillow cannot read, and TF's own errors for a broken PNG/JPEG/BMP/GIF/WebP.
    The caller has checked the size (`size`): Pillow's bomb limit is off here.
    """
    kind = sniff(contents)
    if kind is None:
        raise UnreadableImage(
            f"not a readable image (its first bytes match no supported format: {SUPPORTED})"
        )
    if kind in TF_FORMATS and _pixels(contents) <= TF_MAX_PIXELS:
        if kind == "PNG" and bool(ops.is_16_bit_png(contents)):
            return ops.decode_16_bit_png(contents)
        return ops.decode_8_bit(contents)
    return tf.convert_to_tensor(_pillow_array(contents, kind))


def _pillow_array(contents, kind):
    try:
        with _opened(contents, kind) as image:
            image.seek(0)  # the first page or frame
            return _rgb_array(image, kind)
    except UnreadableImage:
        raise
    except Exception as e:  # Pillow raises many types for broken files
        raise UnreadableImage(f"not a readable {kind} image ({first_line(e)})") from None


def decode_file(path):
    """A file's image as float32 RGB 0-255 [H, W, 3], in a tf.data graph.

    TF decodes its formats in the graph; the others (TIFF, HEIC, AVIF) go through
    `decode` in Python (tf.numpy_function), so training reads what `diqa predict` reads.
    """
    contents = tf.io.read_file(path)

    def with_pillow(data):
        try:
            return ops.to_float(decode(data)).numpy()
        except UnreadableImage as e:  # tf.data raises it as InvalidArgumentError
            raise ValueError(str(e)) from None

    image = tf.cond(
        ops.is_decodable(contents),
        lambda: ops.decode_image(contents),
        lambda: tf.numpy_function(with_pillow, [contents], tf.float32, stateful=False),
    )
    return tf.ensure_shape(image, [None, None, 3])


def _pixels(contents):
    width, height = size(contents) or (0, 0)  # unknown: TF's decoder says what is wrong
    return width * height


def size(contents):
    """(width, height) from the header (Pillow's open decodes nothing), or None if unknown."""
    kind = sniff(contents)
    try:
        with _opened(contents, kind) as image:
            return image.size
    except Exception:  # Pillow raises many types for headers it cannot parse:
        return None  # the decoder says what is wrong with the file.


@contextlib.contextmanager
def _opened(contents, kind):
    """Pillow's Image.open, with its bomb limit off (callers check sizes themselves)
    and its warnings (e.g. "Corrupt EXIF data") silenced: the decoder's verdict is
    what counts. Both settings are process-wide: one file at a time."""
    if kind == "HEIC":
        _heif_available()
    with PILLOW_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            image = Image.open(io.BytesIO(contents))
        except Image.UnidentifiedImageError:
            raise UnreadableImage(_unidentified(kind)) from None
        finally:
            Image.MAX_IMAGE_PIXELS = limit
        with image:
            yield image


def _rgb_array(image, kind):
    """A Pillow image -> uint8 or uint16 RGB numpy array [H, W, 3]."""
    if image.mode.startswith("I;16"):  # 16-bit grey
        grey = np.asarray(image).astype(np.uint16)
        return np.repeat(grey[..., np.newaxis], 3, axis=-1)
    if image.mode in ("I", "F"):
        raise UnreadableImage(
            f"a {kind} image of 32-bit {'integer' if image.mode == 'I' else 'floating-point'} "
            "samples, whose range is unknown; save it with 8 or 16 bits per sample"
        )
    # 16-bit colour TIFFs open as 8-bit RGB (Pillow keeps each sample's high byte).
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def _heif_available():
    """Register pillow-heif's HEIC opener with Pillow; False where it is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _unidentified(kind):
    """Why Pillow could not open a file whose first bytes say `kind`."""
    if kind == "HEIC" and not _heif_available():
        return "a HEIC image: reading it needs pillow-heif (pip install 'diqa-tf[heic]')"
    if kind == "AVIF" and not features.check("avif"):
        return (
            "an AVIF image: reading it needs Pillow 11.3 or later built with AVIF "
            "(pip install -U pillow)"
        )
    return f"not a readable {kind} image (Pillow cannot identify it)"

