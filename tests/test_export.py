"""The SavedModel: both signatures agree with the Keras model; bad images are refused."""

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from diqa_tf.export.saved_model import export_saved_model
from diqa_tf.inference import Scorer
from diqa_tf.models import QualityModel


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(1)
    model = QualityModel()
    path = export_saved_model(model, tmp_path_factory.mktemp("export") / "1")
    return model, tf.saved_model.load(str(path)), path


def _png(rgb):
    return cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))[1].tobytes()


def test_signatures_match_keras_on_mixed_sizes(exported, rng):
    model, loaded, _ = exported
    images = [rng.integers(0, 256, size, dtype=np.uint8) for size in [(40, 56, 3), (33, 17, 3)]]
    keras_scores = Scorer(model).score_arrays([i.astype(np.float32) for i in images])
    served = loaded.signatures["serving_default"](
        image_bytes=tf.constant([_png(i) for i in images])
    )["score"].numpy()
    np.testing.assert_allclose(served, keras_scores, rtol=1e-5, atol=1e-5)
    for image, expected in zip(images, keras_scores):
        out = loaded.signatures["predict_image"](image=tf.constant(image[None], tf.float32))
        np.testing.assert_allclose(out["score"].numpy(), [expected], rtol=1e-5, atol=1e-5)
        h, w = -(-image.shape[0] // 4), -(-image.shape[1] // 4)
        assert out["error_map"].shape == (1, h, w, 1)
        assert out["quality_map"].shape == (1, h, w, 1)


def test_too_small_image_is_an_invalid_argument(exported, rng):
    _, loaded, _ = exported
    tiny = _png(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 16 pixels"):
        loaded.signatures["serving_default"](image_bytes=tf.constant([tiny]))


def test_existing_export_is_kept_without_overwrite(exported):
    model, _, path = exported
    with pytest.raises(FileExistsError):
        export_saved_model(model, path)
    assert (path / "saved_model.pb").exists()
