"""Bulk scoring on Apache Spark: the per-batch scoring, `diqa spark-score`'s one-line
errors, and whole runs on a real standalone cluster (a master and two workers on
127.0.0.1) and on `local[2]`.

The runs need Java (17+); they skip, saying so, only where there is none. `.ci/run`
installs one where it can.
"""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from spark_cluster import spark_env, standalone_cluster

from diqa_tf.cli import main
from diqa_tf.cli.spark_score import spark_reason
from diqa_tf.spark import NOT_LOCAL, score_frame

DIQA = str(Path(sys.executable).with_name("diqa"))
# name, height, width: three sizes (one not a multiple of 4), PNG and JPEG.
GOOD = (("a.png", 40, 56), ("b.jpg", 48, 48), ("c.png", 33, 70), ("d.png", 40, 56),
        ("e.jpg", 52, 36))
CORRUPT = "broken.jpg"
TRUNCATED = ("not a readable JPEG image (the JPEG data end before its "
             "end-of-image marker: the file is truncated or corrupt)")
TOO_SMALL = "image is 40x8; both sides must be at least 16 pixels"


def _java_missing():
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return not java or not os.access(java, os.X_OK)


needs_java = pytest.mark.skipif(
    _java_missing(), reason="no Java (JAVA_HOME or `java` on PATH): Spark cannot start; "
    "install openjdk-17-jre-headless (.ci/run does where apt-get works)"
)


@pytest.fixture(scope="module")
def images(textured_image, tmp_path_factory):
    """GOOD images, a truncated JPEG and an 8-pixel-high PNG."""
    import imageio.v3 as iio

    folder = tmp_path_factory.mktemp("spark_images")
    for seed, (name, height, width) in enumerate(GOOD):
        iio.imwrite(folder / name, textured_image(height, width, seed),
                    extension=".jpg" if name.endswith("jpg") else ".png")
    (folder / CORRUPT).write_bytes((folder / "b.jpg").read_bytes()[:200])
    iio.imwrite(folder / "tiny.png", textured_image(8, 40), extension=".png")
    return folder


@pytest.fixture(scope="module")
def scorer(tiny_quality_model_path):
    from diqa_tf.inference import Scorer
    from diqa_tf.resources import load_model

    return Scorer(load_model(tiny_quality_model_path))


@pytest.fixture(scope="module")
def predicted(scorer, images):
    """`diqa predict`'s scores (its Scorer, in this process) for the GOOD images."""
    scores, errors = scorer.score_files([str(images / name) for name, _, _ in GOOD])
    assert not errors
    return scores


def _assert_scores_equal(scores, predicted):
    assert scores.keys() == predicted.keys()
    for path, score in scores.items():
        assert score == pytest.approx(predicted[path], rel=1e-5), path


# --- One batch of rows, as each Python worker scores it (no Spark) ----------------------


def test_frame_of_paths_scores_local_files_and_names_the_rest(scorer, images, predicted):
    good = [str(images / name) for name, _, _ in GOOD]
    paths = [f"file:{good[0]}", *good[1:], str(images / CORRUPT), str(images / "tiny.png"),
             str(images / "missing.png"), "hdfs://namenode/photos/x.jpg"]
    out = score_frame(scorer, pd.DataFrame({"path": paths}))
    assert list(out.columns) == ["path", "score", "error"] and list(out.path) == paths
    scored = out[out.error.isna()]
    assert list(scored.path) == paths[:5]
    _assert_scores_equal(dict(zip(good, scored.score)), predicted)
    failed = out[out.score.isna()]
    assert dict(zip(failed.path, failed.error)) == {
        str(images / CORRUPT): TRUNCATED,
        str(images / "tiny.png"): TOO_SMALL,
        str(images / "missing.png"): "no such file",
        "hdfs://namenode/photos/x.jpg": NOT_LOCAL,
    }


def test_file_uris_are_percent_decoded_as_binary_file_writes_them(
    scorer, images, predicted, tmp_path
):
    spaced = tmp_path / "with space.png"
    shutil.copy(images / GOOD[0][0], spaced)
    uri = "file:" + str(spaced).replace(" ", "%20")
    out = score_frame(scorer, pd.DataFrame({"path": [uri]}))
    assert out.error.isna().all(), out.error[0]
    assert out.score[0] == pytest.approx(predicted[str(images / GOOD[0][0])], rel=1e-5)


def test_frame_of_contents_scores_bytes_as_binary_file_gives_them(scorer, images, predicted):
    names = [name for name, _, _ in GOOD] + [CORRUPT, "tiny.png"]
    paths = [f"file:{images / name}" for name in names]  # as binaryFile lists them
    contents = [(images / name).read_bytes() for name in names]
    out = score_frame(scorer, pd.DataFrame({"path": paths, "content": contents}))
    assert list(out.path) == paths
    scored = out[out.error.isna()]
    _assert_scores_equal(
        {p.removeprefix("file:"): s for p, s in zip(scored.path, scored.score)}, predicted
    )
    failed = out[out.score.isna()]
    assert list(failed.error) == [TRUNCATED, TOO_SMALL]


# --- `diqa spark-score`: what it refuses before Spark starts ----------------------------


@pytest.mark.parametrize(
    "extra, environ, message",
    [
        (["--input", "{images}/*.webp"], {}, "{images}/*.webp: pattern matches no file"),
        ([], {"JAVA_HOME": "{images}"},
         "spark-score needs Java 17 or later (JAVA_HOME={images} has no bin/java); install one"),
        (["--master", "spark://127.0.0.1:1"], {},
         "--master spark://127.0.0.1:1: cannot reach the Spark master (127.0.0.1:1: "),
        (["--model", "{images}/a.png"], {},
         "{images}/a.png: not a Keras model file (expected a `.keras` file)"),
    ],
)
def test_cli_refuses_bad_input_in_one_line(
    images, tmp_path, capsys, monkeypatch, extra, environ, message
):
    for key, value in environ.items():
        monkeypatch.setenv(key, value.format(images=images))
    args = ["spark-score", "--input", str(images / "*"), "--output", str(tmp_path / "out")]
    code = main(args + [a.format(images=images) for a in extra])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("diqa: error: " + message.format(images=images)), err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing ran


@pytest.mark.parametrize(
    "text, reason",
    [
        ("An error occurred while calling o45.collectToPython.\n: org.apache.spark.SparkException: "
         "Job aborted due to stage failure: Task 0 in stage 0.0 failed 1 times, most recent "
         "failure: Lost task 0.0 (TID 0): org.apache.spark.api.python.PythonException: "
         "Traceback (most recent call last):\n  File \"worker.py\", line 1247, in main\n"
         "    process()\nValueError: no model\n\n\tat org.apache.spark.api.python.Runner",
         "ValueError: no model"),
        ("An error occurred while calling None.JavaSparkContext.\n: org.apache.spark."
         "SparkException: Could not parse Master URL: 'foo'\n\tat org.apache.spark.SparkContext",
         "Could not parse Master URL: 'foo'"),
    ],
)
def test_spark_failures_become_one_line(text, reason):
    assert spark_reason(RuntimeError(text)) == reason


def test_cli_refuses_an_output_that_holds_results(images, tmp_path, capsys):
    (tmp_path / "errors").mkdir()
    code = main(["spark-score", "--input", str(images / "*"), "--output", str(tmp_path)])
    assert code == 1
    assert capsys.readouterr().err == (
        f"diqa: error: {tmp_path / 'errors'}: already exists; choose another --output\n"
    )


# --- Whole runs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A master and two 1-core workers on 127.0.0.1, stopped however the tests end."""
    root = tmp_path_factory.mktemp("spark_cluster")
    with standalone_cluster(root, workers=2, cores=1) as master:
        yield master, root


def _spark_score(*args):
    return subprocess.run([DIQA, "spark-score", *args], capture_output=True, text=True,
                          env=spark_env(), timeout=400)


@needs_java
def test_standalone_cluster_with_two_executors_scores_as_diqa_predict(
    cluster, images, tiny_quality_model_path, predicted, tmp_path
):
    master, root = cluster
    out = tmp_path / "out"
    done = _spark_score(
        "--input", str(images / "*"), "--output", str(out), "--master", master,
        "--model", str(tiny_quality_model_path), "--format", "parquet", "--partitions", "4",
        "--conf", "spark.executor.memory=1g",
        "--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0",
    )
    assert done.returncode == 1, done.stderr  # two images failed
    lines = done.stderr.splitlines()  # no Spark or TF lines: they go to Spark's log
    assert len(lines) == 2, done.stderr
    assert lines[0] == f"diqa: error: 2 images could not be scored; see {out}/errors"
    assert lines[1].startswith("scored 5 images, 2 failed, in ")

    scores = pd.read_parquet(out / "scores")
    _assert_scores_equal(dict(zip(scores.path, scores.score)), predicted)
    errors = pd.read_parquet(out / "errors")
    assert dict(zip(errors.path, errors.reason)) == {
        str(images / CORRUPT): TRUNCATED,
        str(images / "tiny.png"): TOO_SMALL,
    }
    # Both workers ran an executor of this application, and each finished tasks. Under
    # load the master may start a spare executor that gets none: any one of them counts.
    for worker in ("worker0", "worker1"):
        executor_logs = list((root / worker).glob("app-*/*/stderr"))
        assert any("Finished task" in log.read_text() for log in executor_logs), worker


@needs_java
def test_local_master_writes_csv_like_diqa_predict(images, tiny_quality_model_path, tmp_path):
    out = tmp_path / "out"
    done = _spark_score("--input", str(images / "[abc].*"), "--output", str(out),
                        "--master", "local[2]", "--model", str(tiny_quality_model_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("scored 3 images, 0 failed, in "), done.stderr
    assert len(done.stderr.splitlines()) == 1

    predict_csv = tmp_path / "predict.csv"
    assert main(["predict", str(images / "[abc].*"), "--model", str(tiny_quality_model_path),
                 "--output", str(predict_csv), "--quiet"]) == 0
    with open(predict_csv, newline="") as f:
        expected = [(row["path"], row["score"]) for row in csv.DictReader(f)]
    rows, headers = [], set()
    for part in sorted((out / "scores").glob("part-*.csv")):
        with open(part, newline="") as f:
            reader = csv.reader(f)
            headers.add(tuple(next(reader, ())))
            rows.extend(tuple(row) for row in reader)
    assert headers == {("path", "score")}
    assert sorted(rows) == sorted(expected)  # the same 4 decimals
    assert (out / "scores" / "_SUCCESS").exists() and (out / "errors" / "_SUCCESS").exists()
