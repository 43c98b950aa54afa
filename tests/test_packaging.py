"""Packaging: every subpackage is installed, and the shipped model is found and loads."""

import configparser
from pathlib import Path

from diqa_tf.models import QualityModel
from diqa_tf.resources import default_model_path, load_model

ROOT = Path(__file__).resolve().parents[1]


def test_setup_cfg_lists_every_subpackage():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "diqa_tf").rglob("__init__.py")
    }
    assert on_disk | {"diqa_tf.shipped"} == listed


def test_shipped_model_is_the_default_and_loads():
    path = default_model_path()
    assert path.resolve() == (ROOT / "saved_models" / "diqa_clive.keras").resolve()
    model = load_model()
    assert isinstance(model, QualityModel)
    assert model.score_scale.high == 100.0


def test_shipped_stage1_model_loads():
    from diqa_tf.models import ErrorMapModel
    from diqa_tf.resources import DEFAULT_STAGE1_MODEL

    model = load_model(default_model_path(DEFAULT_STAGE1_MODEL), expected=ErrorMapModel)
    assert model.count_params() == 381_329


def test_wheel_carries_the_shipped_model(tmp_path):
    """An installed wheel finds the default model as diqa_tf/shipped/ (not only a clone)."""
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("diqa_tf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "diqa_tf/shipped/diqa_clive.keras" in names
    assert "diqa_tf/shipped/diqa_stage1.keras" in names
    assert "diqa_tf/cli/__init__.py" in names and "diqa_tf/ops/pyramid.py" in names


def test_shipped_saved_model_matches_the_shipped_keras_model():
    """The committed SavedModel is an export of the committed Keras file, not a stale one."""
    import io

    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from diqa_tf.inference import Scorer

    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3)).astype(np.float32)
    expected = Scorer(load_model()).score_arrays([image])
    loaded = tf.saved_model.load(str(ROOT / "saved_models" / "diqa_clive" / "1"))
    served = loaded.signatures["predict_image"](image=tf.constant(image[None]))["score"]
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-5, atol=1e-4)
    # Its decoder is today's: PNG and WebP bytes (a stale export refuses WebP).
    png = tf.io.encode_png(tf.constant(image, tf.uint8)).numpy()
    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(buffer, format="WEBP", lossless=True)
    served = loaded.signatures["serving_default"](image_bytes=tf.constant([png, buffer.getvalue()]))
    np.testing.assert_allclose(served["score"].numpy(), [expected[0]] * 2, rtol=1e-5, atol=1e-4)
