"""Bulk scoring on Apache Beam (DirectRunner): ScoreImages and `diqa beam-score`."""

import csv

import pytest

beam = pytest.importorskip("apache_beam")

from apache_beam.metrics.metric import MetricsFilter  # noqa: E402

from diqa_tf.beam import ScoreImages  # noqa: E402
from diqa_tf.cli import main  # noqa: E402

# name, height, width: four sizes (one not a multiple of 4), PNG and JPEG, one grey;
# WebP, which the graph decodes, and a 16-bit TIFF, which _ReadImage sends as a PNG.
GOOD = (("a.png", 40, 56), ("b.jpg", 48, 48), ("c.png", 33, 70), ("d.png", 40, 56),
        ("e.jpg", 52, 36), ("f.webp", 40, 56), ("g.tif", 36, 44))
CORRUPT = "broken.jpg"


@pytest.fixture(scope="module")
def saved_model(tiny_quality_model_path, tmp_path_factory):
    """The tiny random model exported by `diqa export`'s code, once for the module."""
    from diqa_tf.export.saved_model import export_saved_model
    from diqa_tf.resources import load_model

    target = tmp_path_factory.mktemp("saved_model") / "tiny" / "1"
    return export_saved_model(load_model(tiny_quality_model_path), target)


@pytest.fixture(scope="module")
def images(textured_image, tmp_path_factory):
    """A folder with GOOD images, a truncated JPEG and an 8-pixel-high PNG."""
    import imageio.v3 as iio
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("beam_images")
    for seed, (name, height, width) in enumerate(GOOD):
        image = textured_image(height, width, seed)
        if name == "e.jpg":
            image = image[..., :1].repeat(3, axis=-1)
        if name.endswith(".tif"):
            Image.fromarray(image[..., 0].astype(np.uint16) * 257 + 50).save(folder / name)
        elif name.endswith(".webp"):
            Image.fromarray(image).save(folder / name, quality=80)
        else:
            iio.imwrite(folder / name, image, extension=".jpg" if name.endswith("jpg") else ".png")
    (folder / CORRUPT).write_bytes((folder / "b.jpg").read_bytes()[:200])
    iio.imwrite(folder / "tiny.png", textured_image(8, 40), extension=".png")
    return folder


@pytest.fixture(scope="module")
def predicted(tiny_quality_model_path, images):
    """`diqa predict`'s scores (the in-process Scorer) for the GOOD images."""
    from diqa_tf.inference import Scorer
    from diqa_tf.resources import load_model

    paths = [str(images / name) for name, _, _ in GOOD]
    scores, errors = Scorer(load_model(tiny_quality_model_path)).score_files(paths)
    assert not errors
    return scores


# Rows the pipeline hands back: the DirectRunner runs in this process, and Beam
# pickles module-level functions by reference, so _keep writes here.
_OUTPUTS = {}


def _keep(row, name):
    _OUTPUTS[name][row[0]] = row[1]


def _run(paths, **score_images):
    """Run ScoreImages on `paths`; returns (scores dict, errors dict, metrics)."""
    _OUTPUTS.update(scores={}, errors={})
    pipeline = beam.Pipeline("DirectRunner")
    scored = pipeline | beam.Create([str(p) for p in paths]) | ScoreImages(**score_images)
    scored.scores | "Keep scores" >> beam.Map(_keep, "scores")
    scored.errors | "Keep errors" >> beam.Map(_keep, "errors")
    result = pipeline.run()
    result.wait_until_finish()
    return dict(_OUTPUTS["scores"]), dict(_OUTPUTS["errors"]), result.metrics()


def _distribution(metrics, name):
    (found,) = metrics.query(MetricsFilter().with_name(name))["distributions"]
    return found.committed


def test_scores_equal_diqa_predict_with_mixed_sizes_in_one_batch(saved_model, images, predicted):
    paths = [images / name for name, _, _ in GOOD]
    scores, errors, metrics = _run(paths, model=saved_model, batch_size=len(paths))
    assert errors == {}
    assert scores.keys() == predicted.keys()
    for path, score in scores.items():
        assert isinstance(score, float)
        assert score == pytest.approx(predicted[path], rel=1e-5, abs=1e-5), path
    # All seven images, of four sizes, went to the model in one call.
    batches = _distribution(metrics, "inference_request_batch_size")
    assert (batches.count, batches.max) == (1, len(paths))


def test_bad_files_go_to_the_error_output_and_the_rest_is_scored(saved_model, images, predicted):
    paths = [images / n for n in ("a.png", CORRUPT, "b.jpg", "tiny.png", "missing.png")]
    scores, errors, _ = _run(paths, model=saved_model, batch_size=8)
    assert sorted(scores) == [str(images / "a.png"), str(images / "b.jpg")]
    for path, score in scores.items():
        assert score == pytest.approx(predicted[path], rel=1e-5, abs=1e-5)
    assert errors[str(images / CORRUPT)].startswith("not a readable JPEG image (")
    assert errors[str(images / "tiny.png")] == (
        "image is 40x8; both sides must be at least 16 pixels"
    )
    assert errors[str(images / "missing.png")] == "no such file"


def test_an_image_the_graph_refuses_fails_alone_not_its_batch(saved_model, images, predicted):
    """min_size=8 lets the 8-pixel image past the check; the model (16) refuses it."""
    paths = [images / n for n in ("a.png", "tiny.png", "b.jpg")]
    scores, errors, _ = _run(paths, model=saved_model, batch_size=3, min_size=8)
    assert sorted(scores) == [str(images / "a.png"), str(images / "b.jpg")]
    for path, score in scores.items():
        assert score == pytest.approx(predicted[path], rel=1e-5, abs=1e-5)
    assert list(errors) == [str(images / "tiny.png")]
    assert errors[str(images / "tiny.png")] == (
        "the model refused it (image is 40x8; both sides must be at least 16 pixels)"
    )


def _read_shards(pattern):
    rows, headers = [], set()
    for path in sorted(pattern.parent.glob(pattern.name)):
        with open(path, newline="") as f:
            reader = csv.reader(f)
            headers.add(tuple(next(reader)))
            rows.extend(reader)
    return headers, rows


def test_cli_writes_csv_shards_like_diqa_predict(
    saved_model, tiny_quality_model_path, images, tmp_path, capsys
):
    prefix = tmp_path / "out" / "scores"
    code = main(["beam-score", "--input", str(images / "*"), "--output", str(prefix),
                 "--model", str(saved_model), "--num-shards", "2", "--batch-size", "4"])
    assert code == 1  # two images failed
    err = capsys.readouterr().err
    assert f"diqa: error: 2 images could not be scored; see {prefix}-errors-*.csv" in err
    assert f"scored {len(GOOD)} images, 2 failed" in err
    assert sorted(p.name for p in prefix.parent.iterdir()) == [
        "scores-00000-of-00002.csv", "scores-00001-of-00002.csv",
        "scores-errors-00000-of-00002.csv", "scores-errors-00001-of-00002.csv",
    ]
    headers, rows = _read_shards(prefix.parent / "scores-0*.csv")
    assert headers == {("path", "score")}
    beam_scores = {path: float(score) for path, score in rows}

    predict_csv = tmp_path / "predict.csv"
    main(["predict", str(images), "--model", str(tiny_quality_model_path),
          "--output", str(predict_csv), "--quiet"])
    with open(predict_csv, newline="") as f:
        predicted = {row["path"]: float(row["score"]) for row in csv.DictReader(f)}
    assert beam_scores.keys() == predicted.keys() == {str(images / n) for n, _, _ in GOOD}
    for path, score in beam_scores.items():  # both printed with 4 decimals
        assert score == pytest.approx(predicted[path], abs=1.01e-4), path

    headers, rows = _read_shards(prefix.parent / "scores-errors-*.csv")
    assert headers == {("path", "reason")}
    assert sorted(path for path, _ in rows) == [str(images / CORRUPT), str(images / "tiny.png")]


def test_cli_exits_0_when_every_image_is_scored(saved_model, images, tmp_path, capsys):
    prefix = tmp_path / "good"
    code = main(["beam-score", "--input", str(images / "?.png"), "--output", str(prefix),
                 "--model", str(saved_model), "--direct_num_workers", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "diqa: error" not in err
    assert "scored 3 images, 0 failed" in err
    _, rows = _read_shards(tmp_path / "good-0*.csv")
    good = [str(images / name) for name in ("a.png", "c.png", "d.png")]
    assert sorted(path for path, _ in rows) == good
    headers, rows = _read_shards(tmp_path / "good-errors-*.csv")
    assert (headers, rows) == ({("path", "reason")}, [])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--projekt", "p"], "unknown pipeline option: --projekt (did you mean --project?)"),
        (["--direct_num_workers", "two"],
         "bad pipeline option: argument --direct_num_workers: invalid int value: 'two'"),
        (["--runner", "NoSuchRunner"], "--runner NoSuchRunner: Unexpected pipeline runner"),
        (["--model", "{images}/a.png"], "{images}/a.png: not a SavedModel folder"),
        (["--input", "{images}/*.jxl"], "{images}/*.jxl: pattern matches no file"),
    ],
)
def test_cli_refuses_bad_options_in_one_line(saved_model, images, tmp_path, capsys, extra, message):
    args = ["beam-score", "--input", str(images / "*"), "--output", str(tmp_path / "s"),
            "--model", str(saved_model)]
    code = main(args + [a.format(images=images) for a in extra])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("diqa: error: " + message.format(images=images)), err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing ran
