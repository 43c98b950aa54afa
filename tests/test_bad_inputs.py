"""Every user mistake on `diqa predict`, `explain` and `evaluate [--report]`, as one table.

A bad case must end with exit status 1, exactly one `diqa: error:` line that starts
with the thing at fault (a path, or a CSV and its line) and says what is wrong, no
traceback, and no partial output file; the good image scored beside a bad one is
still in the output (its picture, for explain). An unusual but valid image must score
(exit 0, a finite score) and, where it has an 8-bit RGB twin, score the same as the twin.

All files are tiny and made in tmp_path (the "too large" PNGs are headers only).
"""

import dataclasses
import json
import math
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from test_cli import ERROR_PREFIX, assert_no_traceback, error_lines, parse_score_csv, run_cli

from diqa_tf.data.files import MAX_PIXELS, WHOLE_IMAGE_MAX_PIXELS
from diqa_tf.errors import tf_gist
from diqa_tf.export.saved_model import for_its_file

# The first bytes of a HEIC file (its "ftyp" box): enough to be recognized as one.
HEIC_HEADER = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64


@dataclasses.dataclass
class Run:
    argv: list
    named: object = None  # the error line starts with it (a path, "CSV, line N"); None: works
    keyword: str = ""  # ... and contains this
    output: Path | None = None  # predict's --output
    scored: tuple = ()  # exactly the paths `output` must hold (none: no output file)
    same_score: bool = False  # the scored paths score alike (a valid image and its twin)
    never_created: tuple = ()  # files that must not exist afterwards
    folder: Path | None = None  # explain's --output, evaluate's --report
    folder_files: tuple = ()  # exactly the files `folder` must hold (none: no folder)
    no_matplotlib: bool = False  # run as if the [viz] extra were not installed
    no_heif: bool = False  # run as if pillow-heif (the [heic] extra) were not installed


class Workspace:
    """tmp_path, the models, and a good 24x24 RGB PNG to score beside each bad input."""

    def __init__(self, tmp, model, stage1, image):
        self.tmp, self.model, self.stage1, self.image = tmp, model, stage1, image
        self.good = self.save(image, "good.png")

    def save(self, image, name, **options):
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(path, **options)
        return path

    def write(self, name, data):
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
        return path

    def folder(self, name):
        (self.tmp / name).mkdir()
        return self.tmp / name

    def predict(self, *inputs, model=None, output=None, **expected):
        output = output or self.tmp / "out" / "scores.csv"
        argv = ["predict", *inputs, "--model", model or self.model, "--output", output]
        return Run(argv, output=output, **expected)

    def bad_image(self, path, keyword):
        """`path` fails alone: the good image beside it is still scored."""
        return self.predict(path, self.good, named=path, keyword=keyword, scored=(self.good,))

    def valid_image(self, path, twin=None):
        scored = (path, twin) if twin else (path, self.good)
        return self.predict(*scored, scored=scored, same_score=twin is not None)

    def bad_model(self, path, keyword, **expected):
        return self.predict(self.good, model=path, named=path, keyword=keyword, **expected)

    def explain(self, *inputs, model=None, stage1=None, output=None, options=(), **expected):
        output = output or self.tmp / "pictures"
        argv = ["explain", *inputs, "--model", model or self.model,
                "--stage1", stage1 or self.stage1, "--output", output, *options]
        return Run(argv, folder=output, **expected)

    def bad_explain_image(self, path, keyword):
        """`path` fails alone: the good image beside it gets its picture."""
        return self.explain(path, self.good, named=path, keyword=keyword,
                            folder_files=("good_explained.png",))

    def valid_explain_image(self, path):
        return self.explain(path, folder_files=(f"{Path(path).stem}_explained.png",))

    def report(self, lines, report=None, **expected):
        """`evaluate --report` on data/scores.csv beside data/imgs/{a,b,c}.png (all differ)."""
        rng = np.random.default_rng(0)
        for name in ("a", "b", "c"):
            noisy = np.clip(self.image + rng.normal(0, 30, self.image.shape), 0, 255)
            self.save(noisy.astype(np.uint8), f"data/imgs/{name}.png")
        csv = self.write("data/scores.csv", "".join(f"{line}\n" for line in lines))
        report = report or self.tmp / "report"
        argv = ["evaluate", "--model", self.model, "--csv", csv, "--report", report]
        return Run(argv, folder=report, **expected)

    def bad_csv(self, lines, where, keyword, name="scores.csv"):
        """An evaluate CSV beside data/imgs/{a,b}.png (and ../outside.png)."""
        for image_name in ("data/imgs/a.png", "data/imgs/b.png", "outside.png"):
            self.save(self.image, image_name)
        csv = self.tmp / "data" / name
        if lines is not None:
            self.write(f"data/{name}", "".join(f"{line}\n" for line in lines))
        named = f"{csv}, line {where}" if where else csv
        return Run(["evaluate", "--model", self.model, "--csv", csv], named, keyword)


# --- Crafted files ----------------------------------------------------------------------


def png_header_only(width, height):
    """A PNG whose IHDR claims width x height, with a few bytes of IDAT: it cannot decode."""

    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def tiff_rgb_16_bit(w, name="deep_rgb.tif"):
    """An uncompressed 16-bit RGB TIFF of w.image * 257 (Pillow cannot write one)."""
    height, width = w.image.shape[:2]
    data = (w.image.astype("<u2") * 257).tobytes()
    tags = [  # (tag, type, count, value): types 3 SHORT, 4 LONG
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, None), (259, 3, 1, 1),
        (262, 3, 1, 2), (273, 4, 1, None), (277, 3, 1, 3), (278, 4, 1, height),
        (279, 4, 1, len(data)), (284, 3, 1, 1),
    ]
    ifd_size = 2 + 12 * len(tags) + 4
    bits_at = 8 + ifd_size
    data_at = bits_at + 6
    entries = b""
    for tag, kind, count, value in tags:
        value = {258: bits_at, 273: data_at}.get(tag, value)
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 and count == 1 else (
            struct.pack("<I", value))
        entries += struct.pack("<HHI", tag, kind, count) + packed
    header = b"II*\0" + struct.pack("<I", 8)
    ifd = struct.pack("<H", len(tags)) + entries + struct.pack("<I", 0)
    return w.write(name, header + ifd + struct.pack("<HHH", 16, 16, 16) + data)


def tiff_grey_16_bit(w):
    """A 16-bit grey TIFF and its twin, the 16-bit grey PNG of the same values."""
    luma = w.image[..., 1].astype(np.uint16) * 257 + np.uint16(100)  # not 8-bit values
    image = Image.fromarray(luma)
    assert image.mode == "I;16"
    return w.save(image, "deep_grey.tif"), w.save(image, "deep_grey.png")


def float_tiff(w):
    return w.save(Image.fromarray(w.image[..., 0].astype(np.float32)), "float.tif")


def heic(w):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    return w.save(w.image, "phone.heic", quality=-1)


def truncated_jpeg(w):
    full = w.save(w.image, "whole.jpg", quality=90).read_bytes()
    return w.write("truncated.jpg", full[: len(full) // 2])


def png16(w):
    rgb16 = tf.constant(w.image.astype(np.uint16) * 257)  # 255 -> 65535: the same picture
    return w.write("deep.png", tf.io.encode_png(rgb16).numpy())


def grey(w):
    luma = w.image[..., 1]
    return w.save(luma, "grey.png"), w.save(np.stack([luma] * 3, axis=-1), "grey_rgb.png")


def rgba(w):
    alpha = np.linspace(0, 255, w.image.shape[1], dtype=np.uint8)
    alpha = np.broadcast_to(alpha, w.image.shape[:2])[..., None]
    return w.save(np.concatenate([w.image, alpha], axis=-1), "alpha.png"), w.good


def cmyk(w):
    path = w.save(Image.fromarray(w.image).convert("CMYK"), "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    return path


def animated_gif(w):
    """Two frames of different content; the twin is frame 0 as Pillow decodes it
    (the GIF palette quantizes colours), saved as an RGB PNG."""
    frames = [Image.fromarray(w.image), Image.fromarray(255 - w.image[::-1])]
    path = w.save(frames[0], "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    with Image.open(path) as gif:
        assert gif.n_frames == 2
        gif.seek(0)
        first = gif.convert("RGB")
    return path, w.save(first, "anim_frame0.png")


def corrupt_jpeg(w):
    """A JPEG start-of-image marker followed by noise."""
    noise = np.random.default_rng(0).integers(0, 256, 300, np.uint8).tobytes()
    return w.write("corrupt.jpg", b"\xff\xd8" + noise)


def jpeg_header_only(w, width, height):
    """A real small JPEG whose frame header (SOF0) claims width x height."""
    data = bytearray(w.save(w.image, "small.jpg", quality=90).read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return w.write(f"huge{width}.jpg", bytes(data))


def saved_model_folder(w):
    """A TF SavedModel folder (what `diqa export` writes), not a DIQA `.keras` file."""
    module = tf.Module()
    module.f = tf.function(lambda x: x + 1.0, input_signature=[tf.TensorSpec([], tf.float32)])
    tf.saved_model.save(module, str(w.tmp / "served"))
    return w.tmp / "served"


def evil_keras(w):
    """A `.keras` zip whose config names class EvilLayer from module `os`."""
    path = w.tmp / "evil.keras"
    config = {"module": "os", "class_name": "EvilLayer", "registered_name": "EvilLayer",
              "config": {"name": "evil"}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", b"")
    return path


def lambda_keras(w):
    """A real `.keras` model whose Lambda layer's code creates a marker file when run."""
    import keras

    marker = w.tmp / "code_ran"
    touch = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    function = eval(f"lambda x: x + 0 * len(str({touch}))")  # the path as a constant, no closure
    model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(function)])
    path = w.tmp / "lambda.keras"
    model.save(path)
    marker.unlink()  # building the model ran the code once; loading must not
    return w.bad_model(path, "not a loadable DIQA model", never_created=(marker,))


def junk_zip(w):
    path = w.tmp / "junk.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("junk.bin", b"\x00\x01junk" * 10)
    return path


# --- The table ------------------------------------------------------------------------

CASES = {
    # predict: a bad image fails alone; the good one beside it is scored.
    "missing-file": lambda w: w.bad_image(w.tmp / "missing.png", "no such file"),
    "empty-folder": lambda w: w.bad_image(w.folder("empty"), "holds no"),
    "truncated-jpeg": lambda w: w.bad_image(truncated_jpeg(w), "not a readable"),
    "text-as-png": lambda w: w.bad_image(w.write("text.png", "not an image\n"), "not a readable"),
    "zero-bytes": lambda w: w.bad_image(w.write("zero.png", b""), "empty file"),
    "corrupt-jpeg": lambda w: w.bad_image(corrupt_jpeg(w), "truncated or corrupt"),
    "8x8": lambda w: w.bad_image(w.save(w.image[:8, :8], "tiny.png"), "8x8"),
    "20000x20000-header": lambda w: w.bad_image(
        w.write("huge.png", png_header_only(20000, 20000)), "20000x20000, more than the"),
    "20000x20000-jpeg-header": lambda w: w.bad_image(
        jpeg_header_only(w, 20000, 20000), "20000x20000, more than the"),
    "15000x14000-header": lambda w: w.bad_image(
        w.write("big.png", png_header_only(15000, 14000)),
        f"15000x14000, more than the {MAX_PIXELS // 1_000_000} megapixels that can be scored"),
    "tiff-header-only": lambda w: w.bad_image(
        w.write("cut.tif", tiff_rgb_16_bit(w).read_bytes()[:300]), "not a readable TIFF image"),
    "tiff-32-bit-float": lambda w: w.bad_image(float_tiff(w), "32-bit floating-point samples"),
    "heic-without-pillow-heif": lambda w: dataclasses.replace(
        w.bad_image(w.write("phone.heic", HEIC_HEADER), "pip install 'diqa-tf[heic]'"),
        no_heif=True),
    "unknown-format": lambda w: w.bad_image(
        w.write("drawing.svg", "<svg></svg>"),
        "supported format: PNG, JPEG, BMP, GIF, WebP, TIFF, HEIC, AVIF"),
    # predict: unusual but valid images score (like their 8-bit RGB twin where given).
    "png-16-bit": lambda w: w.valid_image(png16(w), twin=w.good),
    "grey-png": lambda w: w.valid_image(*grey(w)),
    "rgba-png": lambda w: w.valid_image(*rgba(w)),
    "cmyk-jpeg": lambda w: w.valid_image(cmyk(w)),
    "animated-gif": lambda w: w.valid_image(*animated_gif(w)),
    "webp-lossless": lambda w: w.valid_image(
        w.save(w.image, "lossless.webp", lossless=True), twin=w.good),
    "webp-lossy": lambda w: w.valid_image(w.save(w.image, "lossy.webp", quality=80)),
    "tiff-8-bit": lambda w: w.valid_image(w.save(w.image, "plain.tif"), twin=w.good),
    "tiff-8-bit-lzw": lambda w: w.valid_image(
        w.save(w.image, "lzw.tiff", compression="tiff_lzw"), twin=w.good),
    "tiff-16-bit-rgb": lambda w: w.valid_image(tiff_rgb_16_bit(w), twin=w.good),
    "tiff-16-bit-grey": lambda w: w.valid_image(*tiff_grey_16_bit(w)),
    "avif": lambda w: w.valid_image(w.save(w.image, "photo.avif", quality=90)),
    "heic": lambda w: w.valid_image(heic(w)),
    # predict --output
    "all-inputs-fail": lambda w: w.predict(w.tmp / "missing.png", named=w.tmp / "missing.png",
                                           keyword="no such file"),
    "output-under-a-file": lambda w: w.predict(
        w.good, output=w.write("blocker", "") / "scores.csv",
        named=w.tmp / "blocker" / "scores.csv", keyword="blocker is a file, not a folder"),
    "output-is-a-folder": lambda w: w.predict(
        w.good, output=w.folder("taken.csv"), named=w.tmp / "taken.csv",
        keyword="cannot be written", scored=()),
    # --model
    "model-folder": lambda w: w.bad_model(w.write("folder/x.pb", "x").parent, "not a Keras model"),
    "model-savedmodel-folder": lambda w: w.bad_model(saved_model_folder(w), "not a Keras model"),
    "model-zip-of-junk": lambda w: w.bad_model(junk_zip(w), "not a loadable DIQA model"),
    "model-text": lambda w: w.bad_model(w.write("text.keras", "hello\n"), "not a `.keras` zip"),
    "model-unknown-class": lambda w: w.bad_model(
        evil_keras(w), "Could not locate class 'EvilLayer'"),
    "model-lambda-code": lambda_keras,
    # evaluate --csv
    "csv-missing": lambda w: w.bad_csv(None, None, "no such file"),
    "csv-empty": lambda w: w.bad_csv([], None, "no header"),
    "csv-header-only": lambda w: w.bad_csv(["image,mos"], None, "no images listed"),
    "csv-no-mos-column": lambda w: w.bad_csv(["image,quality", "imgs/a.png,50"], None,
                                             "needs the columns"),
    "csv-nan-mos": lambda w: w.bad_csv(["image,mos", "imgs/a.png,50", "imgs/b.png,nan"], 3,
                                       "is nan"),
    "csv-text-mos": lambda w: w.bad_csv(["image,mos", "imgs/a.png,50", "imgs/b.png,good"], 3,
                                        "not a number: 'good'"),
    "csv-duplicate": lambda w: w.bad_csv(["image,mos", "imgs/a.png,50", "./imgs/a.png,40"], 3,
                                         "first on line 2"),
    "csv-image-not-found": lambda w: w.bad_csv(["image,mos", "imgs/a.png,50", "imgs/c.png,4"], 3,
                                               "image not found"),
    "csv-path-escapes": lambda w: w.bad_csv(["image,mos", "imgs/a.png,50", "../outside.png,4"],
                                            3, "outside the CSV's folder"),
    "csv-path-escapes-inside": lambda w: w.bad_csv(
        ["image,mos", "imgs/../../outside.png,4"], 2, "outside the CSV's folder"),
    "csv-absolute-path": lambda w: w.bad_csv(
        ["image,mos", "imgs/a.png,50", f"{w.tmp / 'outside.png'},4"], 3, "absolute path"),
    "csv-reference-escapes": lambda w: w.bad_csv(
        ["image,mos,reference", "imgs/a.png,50,../outside.png"], 2, "`reference`"),
    # explain: a bad image fails alone; the good one beside it gets its picture.
    "explain-missing-file": lambda w: w.bad_explain_image(w.tmp / "missing.png", "no such file"),
    "explain-empty-folder": lambda w: w.bad_explain_image(w.folder("empty"), "holds no"),
    "explain-truncated-jpeg": lambda w: w.bad_explain_image(truncated_jpeg(w), "truncated"),
    "explain-text-as-png": lambda w: w.bad_explain_image(
        w.write("text.png", "not an image\n"), "not a readable"),
    "explain-zero-bytes": lambda w: w.bad_explain_image(w.write("zero.png", b""), "empty file"),
    "explain-8x8": lambda w: w.bad_explain_image(w.save(w.image[:8, :8], "tiny.png"), "8x8"),
    "explain-20000x20000-header": lambda w: w.bad_explain_image(
        w.write("huge.png", png_header_only(20000, 20000)), "20000x20000, more than the"),
    "explain-all-inputs-fail": lambda w: w.explain(
        w.tmp / "missing.png", named=w.tmp / "missing.png", keyword="no such file"),
    "explain-png-16-bit": lambda w: w.valid_explain_image(png16(w)),
    "explain-cmyk-jpeg": lambda w: w.valid_explain_image(cmyk(w)),
    "explain-animated-gif": lambda w: w.valid_explain_image(animated_gif(w)[0]),
    "explain-webp": lambda w: w.valid_explain_image(w.save(w.image, "photo.webp")),
    "explain-tiff-16-bit": lambda w: w.valid_explain_image(tiff_rgb_16_bit(w)),
    "explain-above-whole-image-limit": lambda w: w.bad_explain_image(
        w.write("big.png", png_header_only(8000, 6000)),
        f"8000x6000, more than the {WHOLE_IMAGE_MAX_PIXELS // 1_000_000} megapixels that can "
        "be scored whole"),
    "explain-reference-missing": lambda w: w.explain(
        w.good, options=["--reference", w.tmp / "ref.png"], named=w.tmp / "ref.png",
        keyword="no such file"),
    "explain-reference-not-an-image": lambda w: w.explain(
        w.good, options=["--reference", w.write("ref.png", "text")], named=w.tmp / "ref.png",
        keyword="not a readable"),
    "explain-reference-other-size": lambda w: w.explain(
        w.good, options=["--reference", w.save(w.image[:20], "ref.png")], named=w.good,
        keyword="image is 24x24 but its reference is 24x20"),
    "explain-output-is-a-file": lambda w: Run(
        w.explain(w.good, output=w.write("taken", "")).argv, named=w.tmp / "taken",
        keyword="is a file, not a folder"),
    "explain-output-under-a-file": lambda w: w.explain(
        w.good, output=w.write("blocker", "") / "pictures",
        named=w.tmp / "blocker" / "pictures", keyword="blocker is a file, not a folder"),
    "explain-stage1-is-a-quality-model": lambda w: w.explain(
        w.good, stage1=w.model, named=w.model, keyword="not the ErrorMapModel needed here"),
    "explain-model-is-stage1": lambda w: w.explain(
        w.good, model=w.stage1, named=w.stage1, keyword="predicts error maps, not scores"),
    "explain-unknown-keras": lambda w: w.explain(
        w.good, model=evil_keras(w), named=w.tmp / "evil.keras",
        keyword="Could not locate class 'EvilLayer'"),
    "explain-no-matplotlib": lambda w: w.explain(
        w.good, named="pictures need matplotlib", keyword="pip install 'diqa-tf[viz]'",
        no_matplotlib=True),
    # evaluate --report: nothing is written unless scoring succeeds.
    "report-bad-csv": lambda w: w.report(
        ["image,mos", "imgs/a.png,50", "imgs/b.png,nan"],
        named=f"{w.tmp / 'data' / 'scores.csv'}, line 3", keyword="is nan"),
    "report-too-few-images": lambda w: w.report(
        ["image,mos", "imgs/a.png,50", "imgs/b.png,40"], named=w.tmp / "data" / "scores.csv",
        keyword="only 2 readable images: need at least 3"),
    "report-output-is-a-file": lambda w: Run(
        w.report(["image,mos", "imgs/a.png,50"], report=w.write("taken", "")).argv,
        named=w.tmp / "taken", keyword="is a file, not a folder"),
    "report-no-matplotlib": lambda w: w.report(
        ["image,mos", "imgs/a.png,50", "imgs/b.png,40", "imgs/c.png,30"],
        named="pictures need matplotlib", keyword="pip install 'diqa-tf[viz]'",
        no_matplotlib=True),
    "report-unreadable-image": lambda w: w.report(
        ["image,mos", "imgs/a.png,50", "imgs/b.png,40", "imgs/c.png,30", "imgs/text.png,20"],
        named=w.write("data/imgs/text.png", "text"), keyword="not a readable",
        folder_files=("index.html", "predictions.csv", "scatter.png")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, capsys, monkeypatch, tmp_path, tiny_quality_model_path,
                   tiny_stage1_model_path, textured_image):
    w = Workspace(tmp_path, tiny_quality_model_path, tiny_stage1_model_path,
                  textured_image(24, 24))
    run = CASES[case](w)
    if run.no_matplotlib:
        monkeypatch.setitem(sys.modules, "matplotlib", None)
    if run.no_heif:  # not importable, and its opener (if a test registered it) gone
        monkeypatch.setitem(sys.modules, "pillow_heif", None)
        monkeypatch.setattr(Image, "ID", [i for i in Image.ID if i != "HEIF"])
    status, out, err = run_cli(capsys, *run.argv)

    assert_no_traceback(err)
    lines = error_lines(err)
    others = [line for line in err.splitlines() if line not in lines]
    assert all(line.startswith(("scored ", "explained ")) for line in others), err  # summaries
    if run.named is None:
        assert status == 0 and lines == [], err
    else:
        assert status == 1, err
        assert len(lines) == 1, err
        assert lines[0].startswith(f"{ERROR_PREFIX}{run.named}"), lines[0]
        assert run.keyword in lines[0], lines[0]
    if run.argv[0] == "evaluate" and not run.folder_files:
        assert out == ""
    if run.folder is not None:
        if run.folder_files:
            assert sorted(p.name for p in run.folder.iterdir()) == sorted(run.folder_files)
        else:
            assert not run.folder.exists(), list(run.folder.iterdir())

    assert not list(tmp_path.rglob("*.partial")), "a partial output file was left"
    assert not any(p.exists() for p in run.never_created), "code from the model file ran"
    if run.output is not None:
        assert out == ""
        if run.scored:
            scores = parse_score_csv(run.output.read_text())
            assert list(scores) == [str(p) for p in run.scored]
            if run.same_score:
                a, b = scores.values()
                assert math.isclose(a, b, abs_tol=1e-3), scores
        else:
            assert not run.output.is_file()


@pytest.mark.parametrize(
    "message, gist",
    [
        # A local decoder's error (error.message of an eager op).
        ("{{function_node __wrapped__DecodeImage_device_/job:localhost}} Input is empty. "
         "[Op:DecodeImage] name: ", "Input is empty."),
        # A failed assertion of our graph, as a local call raises it: only its message.
        ("Graph execution error:\n\nDetected at node Assert defined at (most recent call last):\n"
         '  File "score.py", line 3\n\nassertion failed: [image 2 of the request is 40x8; both '
         "sides must be at least 16 pixels]\n\t [[{{node Assert}}]] [Op:__inference_serve_12]",
         "image 2 of the request is 40x8; both sides must be at least 16 pixels"),
        # What TF Serving sends for a decoder's refusal.
        ("Invalid PNG data, size 12\n\t [[{{node DecodePng}}]]", "Invalid PNG data, size 12"),
        ("", "DEFAULT"),
        ("Graph execution error:\n\n", "DEFAULT"),
    ],
)
def test_tf_error_messages_come_down_to_what_went_wrong(message, gist):
    assert tf_gist(message, "DEFAULT") == gist


def test_a_signature_message_is_reworded_for_its_file():
    assert for_its_file("image 12 of the request is 40x8; too small") == "image is 40x8; too small"
    assert for_its_file("Invalid PNG data") == "Invalid PNG data"
