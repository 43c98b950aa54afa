"""Scorer: the tf.data input pipeline, tiling of large images, bfloat16 scores."""

import numpy as np
import pytest
import tensorflow as tf

from diqa_tf import preprocessing
from diqa_tf.inference import Scorer, receptive_field, tile_spans


@pytest.fixture(scope="module")
def quality_model(tiny_quality_model_path):
    from diqa_tf.models import QualityModel
    from diqa_tf.resources import load_model

    return load_model(tiny_quality_model_path, expected=QualityModel)


@pytest.fixture(scope="module")
def scorer(quality_model):
    """Shared (its graphs trace once): batches of 3, tiles of 64 above 100x100 pixels."""
    return Scorer(quality_model, batch_size=3, tile_pixels=100 * 100, tile_size=64)


def _model_score(model, image):
    image = np.asarray(image, np.float32)[np.newaxis]
    inputs = preprocessing.normalize(image, model.preprocessing_config)
    return float(model(inputs, training=False)["score"][0])


def _write(path, image):
    import imageio.v3 as iio

    iio.imwrite(path, image, extension=path.suffix)
    return path


# --- Tiling -----------------------------------------------------------------------------


def test_receptive_field_of_diqa(quality_model):
    """Pyramid 1 + 4 + 8 + 8 + 4 = 25, convs 1 + 2*(1+1+2+2+4+4+4+4) = 45: 69 pixels."""
    assert receptive_field(quality_model) == 69
    scorer = Scorer(quality_model)
    assert scorer.halo >= 69 and scorer.halo % 4 == 0


@pytest.mark.parametrize("length", [300, 298, 203, 64])
def test_tile_spans_cover_and_align(length):
    spans = tile_spans(length, core=32, halo=72, stride=4)
    cores = [(c0, c1) for _, _, c0, c1 in spans]
    assert cores[0][0] == 0 and cores[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(cores, cores[1:]))  # a partition
    for start, stop, c0, c1 in spans:
        assert start % 4 == 0 and (stop - start) % 4 == length % 4
        assert start == 0 or c0 - start >= 72
        assert stop == length or stop - c1 >= 72


@pytest.mark.parametrize("shape", [(200, 300), (103, 154)])
def test_tiled_score_equals_whole_image_score(quality_model, scorer, textured_image, shape):
    image = textured_image(*shape, seed=3).astype(np.float32)
    assert len(tile_spans(shape[1], 64, scorer.halo, 4)) >= 3  # up to 4 x 5 tiny tiles
    tiled = scorer.score_tiled(image)
    assert tiled == pytest.approx(_model_score(quality_model, image), abs=1e-4)


def test_tiles_without_halo_would_differ(quality_model, scorer, textured_image, monkeypatch):
    """The equality above is not trivial: a halo below the receptive field breaks it."""
    image = textured_image(100, 150, seed=3).astype(np.float32)
    monkeypatch.setattr(scorer, "halo", 8)
    assert abs(scorer.score_tiled(image) - _model_score(quality_model, image)) > 1e-3


def test_scorer_tiles_above_the_pixel_threshold(
    quality_model, scorer, textured_image, tmp_path, monkeypatch
):
    tiled = []
    original = scorer.score_tiled
    monkeypatch.setattr(
        scorer, "score_tiled", lambda im: tiled.append((im.shape, im.dtype)) or original(im)
    )
    small = textured_image(96, 96, seed=1)
    large = textured_image(104, 112, seed=2)
    scores = scorer.score_arrays([small, large])
    assert tiled == [((104, 112, 3), tf.float32)]
    files_scores, errors = scorer.score_files(
        [str(_write(tmp_path / "small.png", small)), str(_write(tmp_path / "large.png", large))]
    )
    # From a file, a large image stays uint8 (3 bytes a pixel) until each tile is scored.
    assert not errors and tiled[1:] == [((104, 112, 3), tf.uint8)]
    expected = [_model_score(quality_model, im) for im in (small, large)]
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    np.testing.assert_allclose(sorted(files_scores.values()), sorted(expected), atol=1e-4)


# --- The file pipeline --------------------------------------------------------------------


def test_score_files_equals_model_and_does_not_retrace(quality_model, scorer, image_folder):
    from diqa_tf.data import files

    paths = sorted(str(p) for p in image_folder.iterdir())
    done = []
    scores, errors = scorer.score_files(paths, on_done=done.append)
    assert not errors and list(scores) != [] and set(scores) == set(paths)
    assert sum(done) == len(paths)
    for path in paths:
        expected = _model_score(quality_model, files.read_image(path))
        assert scores[path] == pytest.approx(expected, abs=1e-4)
    scorer.score_files(paths[:1])
    # Two image sizes, batches of 3, 2 and 1, several calls: one trace of the graph.
    assert scorer._score.experimental_get_tracing_count() == 1


def test_score_files_reports_bad_files_in_order(scorer, image_folder, tmp_path, textured_image):
    good = sorted(str(p) for p in image_folder.iterdir())[:2]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "empty.png").write_bytes(b"")
    tiny = _write(tmp_path / "tiny.png", textured_image(8, 40))
    paths = [
        str(tmp_path / "broken.jpg"),
        good[0],
        str(tmp_path / "missing.png"),
        str(tmp_path / "empty.png"),
        str(tiny),
        good[1],
    ]
    done = []
    scores, errors = scorer.score_files(paths, on_done=done.append)
    assert set(scores) == set(good)
    assert [e.path for e in errors] == [paths[0], paths[2], paths[3], paths[4]]
    reasons = [e.reason for e in errors]
    assert "not a readable" in reasons[0]
    assert reasons[1] == "no such file"
    assert "empty" in reasons[2]
    assert "at least 16 pixels" in reasons[3]
    assert sum(done) == len(paths)


def test_score_contents_equals_score_files_and_names_bad_images(scorer, image_folder, tmp_path):
    paths = sorted(str(p) for p in image_folder.iterdir())
    expected, _ = scorer.score_files(paths)
    items = [(p, open(p, "rb").read()) for p in paths]
    cut = items[1][1][:200]
    items[1:1] = [("cut.jpg", cut), ("empty.png", b"")]
    scores, errors = scorer.score_contents(items)
    assert scores.keys() == expected.keys()
    for path, score in scores.items():
        assert score == pytest.approx(expected[path], rel=1e-5, abs=1e-5), path
    assert [(e.path, e.reason) for e in errors] == [
        ("cut.jpg", "not a readable JPEG image (the JPEG data end before its "
         "end-of-image marker: the file is truncated or corrupt)"),
        ("empty.png", "empty file (0 bytes)"),
    ]


# --- Precision ----------------------------------------------------------------------------


def test_bfloat16_scores_close_to_float32(quality_model, scorer, textured_image):
    rng = np.random.default_rng(0)
    base = textured_image(64, 64, seed=5).astype(np.float32)
    # The same picture with more and more noise: the scores move by far more than
    # bfloat16 rounding, so both precisions must rank them alike.
    images = [np.clip(base + rng.normal(0, s, base.shape), 0, 255) for s in (0, 10, 25, 50, 90)]
    fp32 = scorer.score_arrays(images)
    bf16 = Scorer(quality_model, precision="bfloat16").score_arrays(images)
    assert np.all(np.isfinite(bf16)) and not np.array_equal(fp32, bf16)
    spread = np.ptp(fp32)
    assert np.max(np.abs(bf16 - fp32)) < 0.05 * spread
    assert list(np.argsort(bf16)) == list(np.argsort(fp32))


def test_scorer_rejects_unknown_precision_and_tile_size(quality_model):
    with pytest.raises(ValueError, match="`precision` must be one of"):
        Scorer(quality_model, precision="float16")
    with pytest.raises(ValueError, match="`tile_size` must be a positive multiple of 4"):
        Scorer(quality_model, tile_size=30)
