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


def _encoded(array, format, **options):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format, **options)
    return buffer.getvalue()


def test_serving_default_scores_webp_and_16_bit_png_like_diqa_predict(exported, rng):
    from diqa_tf.data import files

    model, loaded, _ = exported
    image = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    contents = [
        _encoded(image, "WEBP", quality=80),
        _encoded(image, "WEBP", lossless=True),
        tf.io.encode_png(tf.constant(image.astype(np.uint16) * 257 + 60)).numpy(),
    ]
    expected = Scorer(model).score_arrays(
        [files.decode_contents(f"image {i}", c) for i, c in enumerate(contents)]
    )
    served = loaded.signatures["serving_default"](image_bytes=tf.constant(contents))
    np.testing.assert_allclose(served["score"].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert expected[1] == pytest.approx(Scorer(model).score_arrays([image])[0], abs=1e-5)


def test_serving_default_refuses_tiff_naming_the_formats_it_decodes(exported, rng):
    _, loaded, _ = exported
    tiff = _encoded(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8), "TIFF")
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"image 0 of the request is not a PNG, JPEG, BMP, GIF or WebP image \(TIFF",
    ):
        loaded.signatures["serving_default"](image_bytes=tf.constant([tiff]))
