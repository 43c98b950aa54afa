"""`diqa explain` and `diqa_tf.explain.explain_image`: scores and maps, as arrays and pictures."""

import sys

import numpy as np
import pytest
from PIL import Image
from test_cli import assert_no_traceback, error_lines, run_cli

from diqa_tf import preprocessing
from diqa_tf.errors import InvalidImageError
from diqa_tf.explain import explain_image
from diqa_tf.inference import Scorer
from diqa_tf.models import ErrorMapModel, QualityModel
from diqa_tf.resources import load_model


@pytest.fixture(scope="module")
def models(tiny_quality_model_path, tiny_stage1_model_path):
    return (load_model(tiny_quality_model_path, expected=QualityModel),
            load_model(tiny_stage1_model_path, expected=ErrorMapModel))


def _noisy(image, sigma, seed=0):
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.float32)


# --- The Python function ------------------------------------------------------------------


def test_explain_image_arrays(models, textured_image):
    model, stage1 = models
    image = textured_image(40, 56).astype(np.float32)
    result = explain_image(image, model, stage1)

    assert result.error_map_source == "stage1"
    assert result.error_map.shape == result.quality_map.shape == (10, 14)
    assert result.error_map.dtype == np.float32
    assert result.true_error_map is None and result.reliability is None
    np.testing.assert_array_equal(result.image, image)
    # The same score as `diqa predict`, and the stage-1 model's own map.
    assert result.score == pytest.approx(float(Scorer(model).score_arrays([image])[0]), abs=1e-3)
    hp = preprocessing.normalize(image[None], stage1.preprocessing_config)["image"]
    expected = stage1({"image": hp})["error_map"].numpy()[0, ..., 0]
    np.testing.assert_allclose(result.error_map, expected, atol=1e-5)
    assert np.all(np.isfinite(result.quality_map))


def test_explain_image_without_stage1_uses_the_model_head(models, textured_image):
    model, _ = models
    image = textured_image(32, 32).astype(np.float32)
    result = explain_image(image, model)
    assert result.error_map_source == "quality_model"
    inputs = preprocessing.normalize(image[None], model.preprocessing_config)
    np.testing.assert_allclose(result.error_map, model(inputs)["error_map"][0, ..., 0], atol=1e-5)


def test_explain_image_with_reference(models, textured_image):
    model, stage1 = models
    reference = textured_image(32, 48).astype(np.float32)
    distorted = _noisy(reference, 20)
    result = explain_image(distorted, model, stage1, reference=reference)
    targets = preprocessing.stage1_targets(reference, distorted, model.preprocessing_config)
    np.testing.assert_allclose(result.true_error_map, targets["error_map"][..., 0], rtol=1e-5)
    np.testing.assert_allclose(result.reliability, targets["reliability"][..., 0], rtol=1e-5)
    assert result.true_error_map.shape == (8, 12)
    assert np.all((result.reliability >= 0) & (result.reliability < 1))
    # The undistorted image has no objective error; the noisy one has some everywhere.
    clean = explain_image(reference, model, stage1, reference=reference)
    assert np.all(clean.true_error_map == 0)
    assert np.all(result.true_error_map > 0)


def test_explain_image_reference_size_mismatch(models, textured_image):
    model, _ = models
    with pytest.raises(InvalidImageError, match=r"^photo\.png: image is 32x32 but its "
                       r"reference is 40x32"):
        explain_image(textured_image(32, 32), model,
                      reference=textured_image(32, 40), name="photo.png")


# --- The command ---------------------------------------------------------------------------


def _picture(path):
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        pixels = np.asarray(picture.convert("RGB"))
    assert pixels.std() > 10  # something was drawn
    return pixels


def test_explain_command(capsys, tiny_quality_model_path, image_folder, tmp_path):
    # No --stage1: the shipped stage-1 model gives the error map.
    inputs = [image_folder / "a.png", image_folder / "b.jpg"]
    status, out, err = run_cli(capsys, "explain", *inputs, "--model", tiny_quality_model_path,
                               "--output", tmp_path / "out")
    assert status == 0, err
    written = [tmp_path / "out" / "a_explained.png", tmp_path / "out" / "b_explained.png"]
    assert out.splitlines() == [str(p) for p in written]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in written]
    for path in written:
        height, width, _ = _picture(path).shape
        assert width > 2 * height  # image | error map | quality map, side by side
    assert err.startswith("explained 2 images, 0 failed, in ")
    assert error_lines(err) == []


def test_explain_reference_adds_two_panels(
    capsys, tiny_quality_model_path, tiny_stage1_model_path, textured_image, tmp_path
):
    reference = textured_image(32, 32)
    Image.fromarray(reference).save(tmp_path / "ref.png")
    Image.fromarray(_noisy(reference, 25).astype(np.uint8)).save(tmp_path / "noisy.png")
    common = ["explain", tmp_path / "noisy.png", "--model", tiny_quality_model_path,
              "--stage1", tiny_stage1_model_path, "--quiet"]
    status, _, err = run_cli(capsys, *common, "--output", tmp_path / "plain")
    assert status == 0 and err == "", err  # --quiet: no summary
    status, _, err = run_cli(capsys, *common, "--output", tmp_path / "ref",
                             "--reference", tmp_path / "ref.png")
    assert status == 0 and err == "", err
    plain = _picture(tmp_path / "plain" / "noisy_explained.png")
    with_reference = _picture(tmp_path / "ref" / "noisy_explained.png")
    assert with_reference.shape[1] > 1.4 * plain.shape[1]  # 5 panels against 3


def test_explain_repeated_names_and_model_head(
    capsys, tiny_quality_model_path, textured_image, tmp_path
):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        Image.fromarray(textured_image(24, 24)).save(tmp_path / folder / "photo.png")
    # --error-map model never loads a stage-1 model (this one does not exist).
    status, out, err = run_cli(
        capsys, "explain", tmp_path / "x", tmp_path / "y", "--model", tiny_quality_model_path,
        "--error-map", "model", "--stage1", tmp_path / "none.keras", "--output", tmp_path / "o")
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "photo-2_explained.png", "photo_explained.png"]


def test_explain_without_matplotlib(capsys, monkeypatch, tiny_quality_model_path, image_folder,
                                    tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, out, err = run_cli(capsys, "explain", image_folder / "a.png",
                               "--model", tiny_quality_model_path, "--output", tmp_path / "o")
    assert status == 1
    assert_no_traceback(err)
    assert err.splitlines() == [
        "diqa: error: pictures need matplotlib: pip install 'diqa-tf[viz]' "
        "(or pip install matplotlib)"]
    assert out == "" and not (tmp_path / "o").exists()

