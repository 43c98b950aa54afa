"""Shared test set-up.

At import time (before anything starts the TF runtime): quiet TF's C++ logging and
split the one physical CPU into two logical devices, so tests/test_distribute.py can
run a MirroredStrategy over "/cpu:0" and "/cpu:1".
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

N_LOGICAL_CPUS = 2


def _split_cpu(n):
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:
        # The runtime is already initialized (e.g. another conftest or plugin touched
        # TF first): keep what is there; the distribution tests skip if < 2 devices.
        pass


_split_cpu(N_LOGICAL_CPUS)


@pytest.fixture
def rng():
    """A fresh, seeded numpy generator for each test."""
    return np.random.default_rng(0)


# --- Tiny models and image files for the CLI and data tests --------------------------
# Session-scoped: each is built once. None of them reads /work/shared/data.


def _textured(rng, height, width):
    """A uint8 RGB image with structure: a gradient, stripes and noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 128 + 60 * np.sin(x / 3.0) * np.cos(y / 5.0) + (x - width / 2)
    image = base[..., None] + rng.normal(0, 20, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _write_image(path, image):
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        iio.imwrite(path, image, extension=".jpg", quality=90)
    else:
        iio.imwrite(path, image, extension=".png")
    return path


@pytest.fixture(scope="session")
def textured_image():
    """Factory: textured_image(height, width, seed=0) -> uint8 RGB [H, W, 3]."""

    def make(height, width, seed=0):
        return _textured(np.random.default_rng(seed), height, width)

    return make


def _save_random_model(tmp_path_factory, class_name, filename):
    """A randomly initialized (seed 0) diqa_tf model saved to a `.keras` file."""
    import keras

    from diqa_tf import models

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("models") / filename
    getattr(models, class_name)().save(path)
    return path


@pytest.fixture(scope="session")
def tiny_quality_model_path(tmp_path_factory):
    """A QualityModel with random weights, saved once per session."""
    return _save_random_model(tmp_path_factory, "QualityModel", "quality.keras")


@pytest.fixture(scope="session")
def tiny_stage1_model_path(tmp_path_factory):
    """A stage-1 ErrorMapModel, random weights."""
    return _save_random_model(tmp_path_factory, "ErrorMapModel", "stage1.keras")


IMAGE_FOLDER_FILES = (
    # name, height, width: four 40x56 images (one batch of 4) and two 48x48.
    ("a.png", 40, 56),
    ("b.jpg", 40, 56),
    ("c.png", 40, 56),
    ("d.jpeg", 40, 56),
    ("e.png", 48, 48),
    ("f.jpg", 48, 48),
)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """A folder of 6 small PNG/JPEG images (see IMAGE_FOLDER_FILES)."""
    folder = tmp_path_factory.mktemp("images")
    for seed, (name, height, width) in enumerate(IMAGE_FOLDER_FILES):
        _write_image(folder / name, _textured(np.random.default_rng(seed), height, width))
    return folder


SCORED_CSV_ROWS = 8


@pytest.fixture(scope="session")
def scored_csv(tmp_path_factory):
    """`scores.csv` (image,mos) beside `imgs/` holding its 8 images (relative paths).

    Noisier images get lower MOS, so the scores are not pure noise.
    """
    folder = tmp_path_factory.mktemp("scored")
    rng = np.random.default_rng(1)
    lines = ["image,mos"]
    for i in range(SCORED_CSV_ROWS):
        height, width = (40, 56) if i % 2 else (48, 48)
        image = _textured(rng, height, width).astype(np.float32)
        noise = 6.0 * i
        image = np.clip(image + rng.normal(0, noise + 1e-3, image.shape), 0, 255)
        name = f"imgs/img{i}.{'jpg' if i % 3 == 0 else 'png'}"
        _write_image(folder / name, image.astype(np.uint8))
        lines.append(f"{name},{95.0 - 11.5 * i:.1f}")
    path = folder / "scores.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
