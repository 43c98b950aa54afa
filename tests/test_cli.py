"""The `diqa` command, in process (`diqa_tf.cli.main`) and once as a console script.

Exit status: 0 success, 1 some inputs failed (one `diqa: error: ...` line each), 2 usage.
"""

import csv
import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diqa_tf import cli

ERROR_PREFIX = "diqa: error: "


def run_cli(capsys, *argv):
    """(exit status, stdout, stderr) of `diqa ARGV`, run in this process."""
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def error_lines(err):
    return [line for line in err.splitlines() if line.startswith(ERROR_PREFIX)]


def assert_no_traceback(err):
    assert "Traceback" not in err, err


def parse_score_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["path", "score"], rows[:1]
    scores = {path: float(score) for path, score in rows[1:]}
    assert all(math.isfinite(s) for s in scores.values()), scores
    return scores


@pytest.fixture(scope="module")
def model(tiny_quality_model_path):
    return str(tiny_quality_model_path)


# --- The console script -----------------------------------------------------------


def test_console_script_help():
    script = Path(sys.executable).parent / "diqa"
    if not script.exists():
        found = shutil.which("diqa")
        if found is None:
            pytest.skip("the `diqa` console script is not installed")
        script = Path(found)
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for command in ("train", "predict", "evaluate", "demo"):
        assert command in result.stdout
    assert_no_traceback(result.stderr)


# --- predict ----------------------------------------------------------------------


def test_predict_files_to_stdout(capsys, model, image_folder):
    files = [image_folder / "a.png", image_folder / "b.jpg", image_folder / "e.png"]
    status, out, err = run_cli(capsys, "predict", *files, "--model", model)
    assert status == 0, err
    scores = parse_score_csv(out)
    assert list(scores) == [str(f) for f in files]
    assert error_lines(err) == []
    assert "scored 3 images, 0 failed" in err


def test_predict_folder_and_glob(capsys, model, image_folder):
    status, out, err = run_cli(capsys, "predict", image_folder, "--model", model)
    assert status == 0, err
    from_folder = parse_score_csv(out)
    assert len(from_folder) == 6

    status, out, err = run_cli(
        capsys, "predict", str(image_folder / "*.png"), "--model", model
    )
    assert status == 0, err
    from_glob = parse_score_csv(out)
    assert sorted(Path(p).name for p in from_glob) == ["a.png", "c.png", "e.png"]
    # The CSV keeps 4 decimals: scores equal to float round-off (batches of other sizes)
    # may print one step apart.
    for path, score in from_glob.items():
        assert score == pytest.approx(from_folder[path], abs=1.5e-4)


def test_predict_bfloat16_is_close_to_float32_but_not_the_same_run(capsys, model, image_folder):
    files = [image_folder / "a.png", image_folder / "b.jpg", image_folder / "e.png"]
    status, out, err = run_cli(capsys, "predict", *files, "--model", model)
    assert status == 0, err
    full = parse_score_csv(out)
    status, out, err = run_cli(capsys, "predict", *files, "--model", model, "--precision", "bfloat16")
    assert status == 0, err
    half = parse_score_csv(out)
    assert list(half) == list(full)
    diffs = [abs(half[p] - full[p]) for p in full]
    assert max(diffs) <= 0.02 * max(abs(v) for v in full.values()) + 0.1, (full, half)
    assert max(diffs) > 0, "--precision bfloat16 gave float32's exact scores: not applied"


def test_predict_output_csv_and_json(capsys, model, image_folder, tmp_path):
    out_csv = tmp_path / "sub" / "scores.csv"
    status, out, err = run_cli(
        capsys, "predict", image_folder, "--model", model, "--output", out_csv
    )
    assert status == 0, err
    assert out == ""
    csv_scores = parse_score_csv(out_csv.read_text())
    assert len(csv_scores) == 6

    out_json = tmp_path / "scores.json"
    status, out, err = run_cli(
        capsys, "predict", image_folder, "--model", model, "--output", out_json
    )
    assert status == 0, err
    rows = json.loads(out_json.read_text())
    assert isinstance(rows, list) and len(rows) == 6
    for row in rows:
        assert set(row) == {"path", "score"}
        assert isinstance(row["score"], float) and math.isfinite(row["score"])
        assert row["score"] == pytest.approx(csv_scores[row["path"]], abs=1e-4)
    assert not list(tmp_path.glob(".*partial*"))


def test_predict_clip_limits_scores_to_the_models_scale(capsys, image_folder, tmp_path):
    """A 1-bit image lies far outside the shipped model's CLIVE training data: it scores
    far below 0 on the 0-100 scale; --clip makes that 0 and leaves in-range scores as
    they are."""
    from PIL import Image

    binary = np.random.default_rng(0).random((64, 64)) > 0.5
    one_bit = tmp_path / "one_bit.png"
    Image.fromarray(binary).save(one_bit)
    assert Image.open(one_bit).mode == "1"
    inputs = [one_bit, image_folder / "a.png", tmp_path / "missing.png"]
    status, out, err = run_cli(capsys, "predict", *inputs)
    raw = parse_score_csv(out)
    assert status == 1 and raw[str(one_bit)] < -10, raw  # the premise
    status, out, err = run_cli(capsys, "predict", *inputs, "--clip")
    assert status == 1
    assert_no_traceback(err)
    assert len(error_lines(err)) == 1 and "missing.png: no such file" in error_lines(err)[0]
    clipped = parse_score_csv(out)
    assert list(clipped) == [str(one_bit), str(image_folder / "a.png")]
    assert clipped[str(one_bit)] == 0.0
    expected = min(max(raw[str(image_folder / "a.png")], 0.0), 100.0)
    assert clipped[str(image_folder / "a.png")] == expected


@pytest.fixture
def bad_inputs(tmp_path, textured_image):
    """{reason keyword: path} of inputs that must each fail alone."""
    import imageio.v3 as iio

    text = tmp_path / "text.png"
    text.write_text("this is not an image\n")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    tiny = tmp_path / "tiny.png"
    iio.imwrite(tiny, textured_image(8, 8), extension=".png")
    no_images = tmp_path / "no_images"
    no_images.mkdir()
    (no_images / "notes.txt").write_text("hello")
    return {
        "no such file": tmp_path / "missing.png",
        "not a readable": text,
        "empty file": empty,
        "8x8": tiny,
        "holds no": no_images,
    }


def test_predict_bad_inputs_each_named_once(capsys, model, image_folder, bad_inputs):
    good = [image_folder / "a.png", image_folder / "f.jpg"]
    items = [good[0], *bad_inputs.values(), good[1]]
    status, out, err = run_cli(capsys, "predict", *items, "--model", model)
    assert status == 1
    assert_no_traceback(err)
    assert set(parse_score_csv(out)) == {str(p) for p in good}
    lines = error_lines(err)
    assert len(lines) == len(bad_inputs), err
    for keyword, path in bad_inputs.items():
        matching = [line for line in lines if line.startswith(f"{ERROR_PREFIX}{path}: ")]
        assert len(matching) == 1, (path, lines)
        assert keyword in matching[0]
    assert f"{len(bad_inputs)} failed" in err


@pytest.mark.parametrize(
    "keyword", ["no such file", "not a readable", "empty file", "8x8", "holds no"]
)
def test_predict_each_bad_input_alone(capsys, model, image_folder, bad_inputs, keyword):
    path = bad_inputs[keyword]
    status, out, err = run_cli(
        capsys, "predict", path, image_folder / "e.png", "--model", model
    )
    assert status == 1
    assert_no_traceback(err)
    assert error_lines(err) == [line for line in err.splitlines() if str(path) in line]
    assert len(error_lines(err)) == 1 and keyword in error_lines(err)[0]
    assert list(parse_score_csv(out)) == [str(image_folder / "e.png")]


def test_predict_all_bad_writes_no_output_file(capsys, model, bad_inputs, tmp_path):
    target = tmp_path / "never.csv"
    status, out, err = run_cli(
        capsys, "predict", bad_inputs["empty file"], "--model", model, "--output", target
    )
    assert status == 1
    assert len(error_lines(err)) == 1
    assert not target.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "x.png", "--batch-size", "0"],
        ["predict", "x.png", "--batch-size", "two"],
        ["predict", "x.png", "--output", "out.txt"],
        ["predict"],
        ["frobnicate"],
        [],
        ["train"],
        ["evaluate", "--model", "m.keras"],
    ],
    ids=["batch0", "batch-text", "output-txt", "no-inputs", "unknown", "nothing",
         "train-no-stage", "evaluate-no-csv"],
)
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    _, err = capsys.readouterr()
    assert "usage: diqa" in err
    assert_no_traceback(err)


def test_model_errors(capsys, image_folder, tiny_stage1_model_path, tmp_path):
    image = image_folder / "a.png"
    not_a_model = tmp_path / "junk.keras"
    not_a_model.write_text("definitely not a zip archive")
    txt = tmp_path / "model.txt"
    txt.write_text("text")
    cases = [
        (tmp_path / "missing.keras", "no such model file"),
        (not_a_model, "not a loadable DIQA model"),
        (txt, "not a Keras model file"),
        (tmp_path, "not a Keras model file"),
        (tiny_stage1_model_path, "not the QualityModel needed"),
    ]
    for path, keyword in cases:
        status, out, err = run_cli(capsys, "predict", image, "--model", path)
        assert status == 1, (path, err)
        assert out == ""
        assert_no_traceback(err)
        lines = error_lines(err)
        assert len(lines) == 1, (path, err)
        assert lines[0].startswith(f"{ERROR_PREFIX}{path}: ")
        assert keyword in lines[0]
    assert "ErrorMapModel" in lines[0] and "stage-1" in lines[0]


def test_score_does_not_depend_on_batch(capsys, model, image_folder, tmp_path):
    """a.png alone, and in a batch of 4 same-size images, scores the same."""
    out_alone, out_batch = tmp_path / "alone.json", tmp_path / "batch.json"
    target = image_folder / "c.png"
    status, _, err = run_cli(
        capsys, "predict", target, "--model", model, "--output", out_alone
    )
    assert status == 0, err
    others = [image_folder / n for n in ("a.png", "b.jpg", "d.jpeg", "e.png", "f.jpg")]
    status, _, err = run_cli(
        capsys, "predict", others[0], target, *others[1:], "--model", model,
        "--batch-size", "4", "--output", out_batch,
    )
    assert status == 0, err
    alone = {r["path"]: r["score"] for r in json.loads(out_alone.read_text())}
    batch = {r["path"]: r["score"] for r in json.loads(out_batch.read_text())}
    assert len(batch) == 6
    assert batch[str(target)] == pytest.approx(alone[str(target)], abs=1e-4)


# --- evaluate ---------------------------------------------------------------------


def test_evaluate(capsys, model, scored_csv):
    n_rows = len(scored_csv.read_text().splitlines()) - 1
    status, out, err = run_cli(
        capsys, "evaluate", "--model", model, "--csv", scored_csv, "--batch-size", "3"
    )
    assert status == 0, err
    assert error_lines(err) == []
    values = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("SRCC", "PLCC", "KRCC", "RMSE", "N"):
            values[parts[0]] = float(parts[1])
    assert set(values) == {"SRCC", "PLCC", "KRCC", "RMSE", "N"}, out
    assert values["N"] == n_rows == 8
    for key in ("SRCC", "PLCC", "KRCC"):
        assert -1.0 <= values[key] <= 1.0
    assert values["RMSE"] >= 0.0


def _csv_case(folder, header, rows):
    path = folder / "case.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize(
    "header, rows, keyword",
    [
        ("image,quality", ["imgs/img0.jpg,50"], "needs the columns"),
        ("image,mos", ["imgs/img0.jpg,50", "imgs/img1.png,good"], "line 3"),
        ("image,mos", ["imgs/img0.jpg,50", "imgs/img1.png,nan"], "line 3"),
        ("image,mos", ["imgs/img0.jpg,50", "imgs/img0.jpg,40"], "duplicate"),
        ("image,mos", ["imgs/img0.jpg,50", "imgs/nope.png,40"], "image not found"),
    ],
    ids=["no-mos", "not-number", "nan", "duplicate", "not-found"],
)
def test_evaluate_csv_errors(capsys, model, scored_csv, header, rows, keyword):
    # The case CSV sits beside the good one, so its relative paths resolve.
    path = _csv_case(scored_csv.parent, header, rows)
    try:
        status, out, err = run_cli(capsys, "evaluate", "--model", model, "--csv", path)
    finally:
        path.unlink()
    assert status == 1
    assert_no_traceback(err)
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert str(path) in lines[0] and keyword in lines[0]
    if keyword == "line 3":
        assert ("good" in lines[0]) or ("nan" in lines[0].lower())
    if keyword == "duplicate":
        assert "line 3" in lines[0] and "line 2" in lines[0]


def test_evaluate_missing_csv(capsys, model, tmp_path):
    status, _, err = run_cli(
        capsys, "evaluate", "--model", model, "--csv", tmp_path / "none.csv"
    )
    assert status == 1
    assert len(error_lines(err)) == 1 and "no such file" in err
    assert_no_traceback(err)


# --- configs and training -----------------------------------------------------------


def test_config_unknown_key(capsys, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[stage1]\nbatch_sise = 4\n")
    status, out, err = run_cli(
        capsys, "train", "stage1", "--with-skimage-photos", "--config", config,
        "--output", tmp_path / "run",
    )
    assert status == 1
    assert_no_traceback(err)
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert "batch_sise" in lines[0] and "Did you mean `batch_size`" in lines[0]
    assert str(config) in lines[0]
    assert not (tmp_path / "run" / "stage1.keras").exists()


def test_config_unknown_section(capsys, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[stage_1]\nepochs = 1\n")
    status, _, err = run_cli(
        capsys, "train", "stage1", "--with-skimage-photos", "--config", config,
        "--output", tmp_path / "run",
    )
    assert status == 1
    lines = error_lines(err)
    assert len(lines) == 1 and "stage_1" in lines[0] and "Did you mean" in lines[0]


TINY_RECIPE = """
[stage1]
steps_per_epoch = 2
epochs = 1
batch_size = 4
validation_pairs = 8
crop_size = 32

[stage2]
epochs = 1
batch_size = 2
crop_size = 32
holdout_fraction = {holdout}
"""


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_train_stage1_then_stage2_then_predict(capsys, tmp_path, scored_csv, image_folder):
    # 3 of the 8 images held out: correlations need at least 3 points.
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_RECIPE.format(holdout=0.375))
    run1 = tmp_path / "run1"
    status, out, err = run_cli(
        capsys, "train", "stage1", "--with-skimage-photos", "--config", config,
        "--output", run1, "--quiet",
    )
    assert status == 0, err
    assert "stage 1 done" in out
    assert re.search(r"^epoch 1/1: 2 steps in [\d.]+ s; loss \S+, .*val_loss ", out, re.M), out
    for name in ("stage1.keras", "stage1_log.csv", "stage1_metrics.json"):
        assert (run1 / name).is_file(), name
    metrics = json.loads((run1 / "stage1_metrics.json").read_text())
    assert _finite(metrics["validation"]["weighted_mse"])
    assert _finite(metrics["validation"]["map_plcc"])
    assert len(metrics["validation_references"]) == 1
    assert len(metrics["training_references"]) == 7

    run2 = tmp_path / "run2"
    status, out, err = run_cli(
        capsys, "train", "stage2", "--csv", scored_csv, "--stage1", run1 / "stage1.keras",
        "--config", config, "--output", run2, "--quiet",
    )
    assert status == 0, err
    assert "stage 2 done" in out
    assert (run2 / "stage2.keras").is_file()
    metrics = json.loads((run2 / "stage2_metrics.json").read_text())
    assert metrics["holdout_images"] == 3 and metrics["training_images"] == 5
    assert "srcc" in metrics["holdout"]
    assert metrics["holdout"]["n"] == 3

    status, out, err = run_cli(
        capsys, "predict", image_folder, "--model", run2 / "stage2.keras"
    )
    assert status == 0, err
    assert len(parse_score_csv(out)) == 6

    # A stage-2 model is not a stage-1 model.
    status, _, err = run_cli(
        capsys, "train", "stage2", "--csv", scored_csv, "--stage1", run2 / "stage2.keras",
        "--config", config, "--output", tmp_path / "run3", "--quiet",
    )
    assert status == 1
    assert len(error_lines(err)) == 1 and "not the ErrorMapModel needed" in err
    assert_no_traceback(err)

    # A finished model is not replaced by accident...
    stage2_args = ["train", "stage2", "--csv", scored_csv, "--stage1", run1 / "stage1.keras",
                   "--config", config, "--quiet"]
    status, _, err = run_cli(capsys, *stage2_args, "--output", run2)
    assert status == 1 and "use --overwrite" in error_lines(err)[0]
    # ...and --holdout-fraction 0 trains on every image (the shipped model's last step).
    status, out, err = run_cli(
        capsys, *stage2_args, "--output", tmp_path / "run4", "--holdout-fraction", "0"
    )
    assert status == 0, err
    metrics = json.loads((tmp_path / "run4" / "stage2_metrics.json").read_text())
    assert metrics["training_images"] == 8 and "holdout" not in metrics


def test_train_log_to_a_file_is_one_plain_line_per_epoch(
    capsys, tmp_path, scored_csv, tiny_stage1_model_path
):
    """Standard output is not a terminal here (as in `diqa train ... > log`), and no
    --quiet: no progress bar, no ANSI escapes, one line an epoch with the held-out
    correlations."""
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_RECIPE.format(holdout=0.375).replace("epochs = 1", "epochs = 2"))
    status, out, err = run_cli(
        capsys, "train", "stage2", "--csv", scored_csv, "--stage1", tiny_stage1_model_path,
        "--config", config, "--output", tmp_path / "run",
    )
    assert status == 0, err
    assert "\x1b" not in out + err and "\r" not in out + err and "\x08" not in out + err
    lines = out.splitlines()
    assert lines[0].startswith("stage 2: ") and lines[-1].startswith("stage 2 done")
    epoch_lines = lines[1:-1]
    assert len(epoch_lines) == 2, out
    for epoch, line in enumerate(epoch_lines, 1):
        assert re.fullmatch(
            rf"epoch {epoch}/2: 2 steps in [\d.]+ s; loss \S+, .*holdout_srcc \S+, "
            r"holdout_plcc \S+",
            line,
        ), line


def test_train_stage2_small_holdout(capsys, tmp_path, scored_csv, tiny_stage1_model_path):
    """holdout_fraction=0.25 of 8 images holds out 2: too few to correlate.

    The CLI must still end with an error line (or skip the correlations), not a
    traceback from an uncaught ValueError.
    """
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_RECIPE.format(holdout=0.25))
    status, out, err = run_cli(
        capsys, "train", "stage2", "--csv", scored_csv,
        "--stage1", tiny_stage1_model_path, "--config", config,
        "--output", tmp_path / "run", "--quiet",
    )
    assert status == 1
    lines = error_lines(err)
    assert len(lines) == 1 and "need at least 3" in lines[0], err
    assert not (tmp_path / "run" / "stage2.keras").exists()  # refused before training
    assert_no_traceback(err)


def test_train_stage1_without_references(capsys, tmp_path):
    status, _, err = run_cli(capsys, "train", "stage1", "--output", tmp_path / "run")
    assert status == 1
    lines = error_lines(err)
    assert len(lines) == 1 and "no reference images" in lines[0]


def test_train_stage1_single_reference(capsys, tmp_path, textured_image):
    import imageio.v3 as iio

    refs = tmp_path / "refs"
    refs.mkdir()
    iio.imwrite(refs / "only.png", textured_image(96, 96), extension=".png")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_RECIPE.format(holdout=0.25))
    status, out, err = run_cli(
        capsys, "train", "stage1", "--references", refs, "--config", config,
        "--output", tmp_path / "run", "--quiet",
    )
    assert_no_traceback(err)
    assert status == 1
    lines = error_lines(err)
    assert len(lines) == 1 and "at least 2 usable references" in lines[0], err


def test_train_stage1_flat_reference_is_left_out_not_hung(capsys, tmp_path, textured_image):
    """A flat reference could never yield a pair: it is rejected up front, by name."""
    import imageio.v3 as iio

    refs = tmp_path / "refs"
    refs.mkdir()
    iio.imwrite(refs / "a_flat.png", np.full((96, 96, 3), 128, np.uint8), extension=".png")
    iio.imwrite(refs / "textured.png", textured_image(96, 96), extension=".png")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_RECIPE.format(holdout=0.25))
    status, out, err = run_cli(
        capsys, "train", "stage1", "--references", refs, "--config", config,
        "--output", tmp_path / "run", "--quiet",
    )
    assert status == 1
    assert "a_flat.png left out: nearly flat" in err
    assert "at least 2 usable references" in error_lines(err)[0]


# --- demo ---------------------------------------------------------------------------


def test_demo(capsys, model, tmp_path):
    """The quality model is a random one; the error maps come from the shipped stage-1
    model, and on the full-size photos its mean error rises with the noise level."""
    output = tmp_path / "demo"
    status, out, err = run_cli(capsys, "demo", "--model", model, "--output", output)
    assert status == 0, err
    tables = {"quality": {}, "objective error": {}}
    table = None
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Mean predicted"):
            table = tables["quality" if "quality" in line else "objective error"]
            assert "stage-1 model diqa_stage1.keras" in line or table is tables["quality"]
        elif parts and parts[0] in ("jpeg", "gaussian_blur", "white_noise"):
            table[parts[0]] = [float(v) for v in parts[1:]]
    for table in tables.values():
        assert set(table) == {"jpeg", "gaussian_blur", "white_noise"}, out
        assert all(len(row) == 6 and all(math.isfinite(v) for v in row) for row in table.values())
    noise = tables["objective error"]["white_noise"]
    assert all(later > earlier for earlier, later in zip(noise, noise[1:])), noise
    assert (output / "demo_maps.png").stat().st_size > 0
    rows = (output / "demo_scores.csv").read_text().splitlines()
    assert rows[0] == "photo,distortion,level,score,mean_error"
    assert len(rows) == 73
