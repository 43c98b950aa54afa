"""`diqa benchmark` (the paper's protocol) and stage-1 pairs from a database's own images.

Tiny data built here (nothing read from /work/shared/data), a tiny recipe (one epoch of
two steps, 16-px crops): the numbers are meaningless, the artefacts and their
bookkeeping are what is tested.
"""

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf

from diqa_tf.config import PreprocessingConfig
from diqa_tf.data import database_pairs
from diqa_tf.data import stage1 as stage1_data
from diqa_tf.data.databases import get_database
from diqa_tf.errors import DatasetError
from diqa_tf.data.score_csv import ScoredImage
from diqa_tf.evaluation.protocol import make_splits, official_split
from diqa_tf.evaluation.splits import content_folds
from diqa_tf.resources import load_model

from test_cli import assert_no_traceback, error_lines, run_cli
from test_databases import build_live

TINY_RECIPE = """
[stage1]
crop_size = 16
batch_size = 4
steps_per_epoch = 2
epochs = 1
validation_references = 0.5
validation_pairs = 4
[stage2]
batch_size = 4
crop_size = 16
epochs = 1
"""


@pytest.fixture
def tiny_recipe(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_RECIPE)
    return path


def _textured(seed, size=64):
    """A uint8 image with structure everywhere (no flat crop), values 40..215."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    base = 128 + 50 * np.sin(x / (2.0 + seed % 3)) * np.cos(y / 3.0)
    image = base[..., None] + rng.normal(0, 12, (size, size, 3))
    return np.clip(image, 40, 215).astype(np.uint8)


def _write(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, image, extension=".png")
    return path


def build_csv_with_references(root, n_references=6):
    """A generic CSV of a synthetic database: each reference with 'noise' and 'shift'
    versions (image,mos,reference,distortion,content); 64x64 images."""
    lines = ["image,mos,reference,distortion,content"]
    rng = np.random.default_rng(0)
    for i in range(n_references):
        reference = _textured(i)
        _write(root / "refs" / f"r{i}.png", reference)
        noisy = np.clip(reference + rng.normal(0, 5 + 5 * i, reference.shape), 0, 255)
        _write(root / "dist" / f"r{i}_noise.png", noisy.astype(np.uint8))
        _write(root / "dist" / f"r{i}_shift.png", reference + 20)
        lines.append(f"dist/r{i}_noise.png,{80 - 8 * i},refs/r{i}.png,noise,r{i}")
        lines.append(f"dist/r{i}_shift.png,{85 - 3 * i},refs/r{i}.png,shift,r{i}")
    path = root / "scores.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def build_authentic_csv(root, n=12):
    """A generic CSV without references: each image its own content; noisier = lower MOS."""
    lines = ["image,mos"]
    rng = np.random.default_rng(1)
    for i in range(n):
        image = np.clip(_textured(i, 32) + rng.normal(0, 4 * i + 1, (32, 32, 3)), 0, 255)
        _write(root / "imgs" / f"{i}.png", image.astype(np.uint8))
        lines.append(f"imgs/{i}.png,{90 - 6 * i}")
    path = root / "mos.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _benchmark(capsys, *argv):
    status, out, err = run_cli(capsys, "benchmark", "--quiet", *argv)
    assert_no_traceback(err)
    return status, out, err


def _results(output):
    return json.loads((Path(output) / "results.json").read_text())


# --- Stage-1 pairs from a database ------------------------------------------------------


def test_database_pairs_match_the_synthetic_elements_and_align(tmp_path):
    csv_path = build_csv_with_references(tmp_path, n_references=2)
    records = get_database("csv").load(csv_path)
    pairs = [(r.reference, r.path) for r in records]
    config = PreprocessingConfig()
    ds = database_pairs.pair_dataset(pairs, config, crop_size=16, batch_size=4, seed=0)
    synthetic = stage1_data.pair_dataset(
        stage1_data.reference_dataset([_textured(0)]), config, crop_size=16, batch_size=4
    )
    assert ds.element_spec == synthetic.element_spec
    # One pass, one pair at a time: the brightness shift leaves I_hat unchanged, so a
    # crop taken at the same place in both images has no error (float rounding, raised
    # to the power 0.2, leaves ~0.1; a crop shifted by one pixel gives ~2); noise has some.
    for (reference, distorted), record in zip(pairs, records):
        one = database_pairs.pair_dataset(
            [(reference, distorted)], config, crop_size=16, batch_size=1, repeat=False
        )
        (inputs, targets), = list(one)
        assert inputs["image"].shape == (1, 16, 16, 1)
        assert targets["error_map"].shape == (1, 4, 4, 1)
        error = float(tf.reduce_mean(targets["error_map"]))
        if record.distortion == "shift":
            assert error < 0.3
        else:
            assert error > 0.8


def test_database_pairs_refuse_different_sizes(tmp_path):
    reference = _write(tmp_path / "ref.png", _textured(0, 64))
    distorted = _write(tmp_path / "dist.png", _textured(1, 56))
    with pytest.raises(DatasetError, match=r"dist.png: is 56x56 but its reference .* is 64x64"):
        database_pairs.pair_dataset([(reference, distorted)], PreprocessingConfig(), crop_size=16)


def test_splits_are_content_disjoint_and_differ(tmp_path):
    records = get_database("csv").load(build_csv_with_references(tmp_path))
    contents = [r.content for r in records]
    splits = make_splits(records, 4, 0.5, seed=3)
    for train, test in splits:
        assert sorted(train + test) == list(range(len(records)))
        assert not {contents[i] for i in train} & {contents[i] for i in test}
    assert len({tuple(test) for _, test in splits}) > 1


# --- The benchmark command -------------------------------------------------------------


def test_benchmark_trains_stage1_on_the_database_pairs(capsys, tmp_path, tiny_recipe):
    csv_path = build_csv_with_references(tmp_path / "db")
    output = tmp_path / "out"
    status, out, err = _benchmark(
        capsys, "--database", "csv", "--root", csv_path, "--splits", "1",
        "--train-ratio", "0.5", "--config", tiny_recipe, "--output", output,
    )
    assert status == 0, err
    split = json.loads((output / "split_01" / "result.json").read_text())
    assert split["stage1"] == "trained on the split's reference/distorted pairs"
    stage1 = json.loads((output / "split_01" / "stage1" / "stage1_metrics.json").read_text())
    test_refs = {f"r{i}" for i in range(6)} - set(split["test_contents"])
    used = {Path(p).stem for p in stage1["training_references"] + stage1["validation_references"]}
    assert used == test_refs  # stage 1 saw only the training side's references
    assert (split["train_images"], split["test_images"]) == (6, 6)
    assert set(split["by_distortion"]) == {"noise", "shift"}
    assert all(v["n"] == 3 for v in split["by_distortion"].values())
    summary = _results(output)
    assert set(summary["by_distortion"]) == {"noise", "shift"}
    assert "| noise | 1 | 3 |" in (output / "results.md").read_text()


def test_benchmark_on_a_database_layout(capsys, tmp_path, tiny_recipe, tiny_stage1_model_path):
    root = build_live(tmp_path / "live")
    output = tmp_path / "out"
    status, out, err = _benchmark(
        capsys, "--database", "live", "--root", root, "--splits", "2", "--train-ratio", "0.5",
        "--seed", "1", "--config", tiny_recipe, "--stage1", tiny_stage1_model_path,
        "--output", output,
    )
    assert status == 0, err
    summary = _results(output)
    assert summary["score_scale"] == {"low": 0.0, "high": 100.0, "higher_is_better": False}
    assert summary["stage1"] == str(Path(tiny_stage1_model_path).resolve())
    records = get_database("live").load(root)
    by_content = {}
    for r in records:
        by_content.setdefault(r.content, set()).add(str(Path(r.path).relative_to(root)))
    for i in (1, 2):
        split = json.loads((output / f"split_0{i}" / "result.json").read_text())
        tested = {p["image"] for p in split["predictions"]}
        # Whole contents on the test side, the rest on the training side.
        assert tested == set().union(*(by_content[c] for c in split["test_contents"]))
        assert split["train_images"] + split["test_images"] == len(records)
    # Trained to predict on the database's own scale (DMOS 0..100, lower = better).
    model = load_model(output / "split_01" / "stage2" / "stage2.keras")
    assert model.score_scale == get_database("live").scale
    assert "split 2:" in out and "median" in out


def test_benchmark_authentic_csv_median_mean_and_rerun(capsys, tmp_path, tiny_recipe):
    csv_path = build_authentic_csv(tmp_path / "db")
    output = tmp_path / "out"
    argv = ["--database", "csv", "--root", csv_path, "--splits", "3", "--train-ratio", "0.67",
            "--config", tiny_recipe, "--output", output]
    status, out, err = _benchmark(capsys, *argv)
    assert status == 0, err
    summary = _results(output)
    assert summary["splits_done"] == 3
    assert summary["stage1"].endswith("diqa_stage1.keras")  # the shipped stage-1 model
    for metric in ("srcc", "plcc", "krcc", "rmse"):
        values = [row[metric] for row in summary["per_split"]]
        assert summary["median"][metric] == pytest.approx(np.median(values))
        assert summary["mean"][metric] == pytest.approx(np.mean(values))
    assert [(r["train_images"], r["test_images"]) for r in summary["per_split"]] == [(8, 4)] * 3
    table = (output / "results.md").read_text()
    median = summary["median"]
    assert f"| **median** | | | {median['srcc']:.4f} | {median['plcc']:.4f} |" in table
    assert table.count("\n| 3 | 8 | 4 |") == 1 and "Per distortion" not in table

    # A rerun keeps finished splits; a split without its result is scored again
    # from its finished training (not retrained).
    kept = (output / "split_01" / "result.json").stat().st_mtime_ns
    (output / "split_03" / "result.json").unlink()
    log = (output / "split_03" / "stage2" / "stage2_log.csv").read_text()
    status, out, err = _benchmark(capsys, *argv)
    assert status == 0, err
    assert out.count("finished before, kept") == 2
    assert (output / "split_01" / "result.json").stat().st_mtime_ns == kept
    assert (output / "split_03" / "result.json").is_file()
    assert (output / "split_03" / "stage2" / "stage2_log.csv").read_text() == log
    assert _results(output)["per_split"] == summary["per_split"]

    # Other settings into the same output: refused, nothing overwritten.
    status, out, err = _benchmark(capsys, *argv[:-1], output, "--seed", "5")
    assert status == 1
    (line,) = error_lines(err)
    assert "other settings" in line and "settings.seed" in line


@pytest.mark.parametrize("argv, status, message", [
    (["--train-ratio", "1.5"], 2, "--train-ratio: must be between 0 and 1"),
    (["--splits", "0"], 2, "--splits: must be at least 1"),
    (["--stage1", "missing.keras"], 2, "--stage1: no such model file"),
    (["--train-ratio", "0.9"], 1, "the test side needs at least 3"),
])
def test_benchmark_bad_options(capsys, tmp_path, argv, status, message):
    csv_path = build_authentic_csv(tmp_path / "db")
    argv = ["--database", "csv", "--root", csv_path, "--output", tmp_path / "out", *argv]
    try:
        got, out, err = _benchmark(capsys, *argv)
    except SystemExit as e:  # argparse: usage errors
        got, (out, err) = e.code, capsys.readouterr()
    assert got == status
    assert message in err.strip().splitlines()[-1]  # after argparse's usage, if any
    assert not (tmp_path / "out" / "protocol.json").exists()


def test_benchmark_unknown_database(capsys, tmp_path):
    status, out, err = _benchmark(
        capsys, "--database", "tid2031", "--root", tmp_path, "--output", tmp_path / "out"
    )
    assert status == 1
    (line,) = error_lines(err)
    assert "unknown database 'tid2031'" in line and "Did you mean 'tid2013'" in line


def test_benchmark_incomplete_layout(capsys, tmp_path):
    root = build_live(tmp_path / "live")
    (root / "dmos.mat").unlink()
    status, out, err = _benchmark(
        capsys, "--database", "live", "--root", root, "--output", tmp_path / "out"
    )
    assert status == 1
    (line,) = error_lines(err)
    assert "dmos.mat" in line


def test_official_sets_make_the_one_split():
    """KonIQ-10k's official sets: train on "training", test on "test", validation unused."""
    sets = ["training", "test", "validation", "training", "test"]
    records = [ScoredImage(f"{i}.jpg", 3.0, f"{i}.jpg", split=s) for i, s in enumerate(sets)]
    assert official_split(records) == ([0, 3], [1, 4])
    records[2] = ScoredImage("2.jpg", 3.0, "2.jpg")  # one image without a set: none used
    assert official_split(records) is None
    only_training = [ScoredImage("a.jpg", 3.0, "a", split="training")]
    with pytest.raises(DatasetError, match="no training or no test"):
        official_split(only_training)


# --- Fixed k-fold cross-validation ---------------------------------------------------------


def test_content_folds_are_disjoint_balanced_and_seeded():
    contents = [f"c{i // 2}" for i in range(22)]  # 11 contents of 2 images each
    folds = content_folds(contents, 3, seed=4)
    assert sorted(i for f in folds for i in f) == list(range(22))
    assert sorted(len({contents[i] for i in f}) for f in folds) == [3, 4, 4]
    fold_of = {contents[i]: n for n, f in enumerate(folds) for i in f}
    assert all(fold_of[contents[i]] == n for n, f in enumerate(folds) for i in f)
    assert content_folds(contents, 3, seed=4) == folds
    assert content_folds(contents, 3, seed=5) != folds
    with pytest.raises(ValueError, match="`k` must be between 2 and the number of contents"):
        content_folds(contents, 12, seed=0)


def test_benchmark_on_fixed_folds_runs_each_fold_and_extends(capsys, tmp_path, tiny_recipe):
    csv_path = build_authentic_csv(tmp_path / "db")
    folds_path = tmp_path / "folds.json"
    status, out, err = run_cli(capsys, "folds", "--database", "csv", "--root", csv_path,
                               "--k", "3", "--seed", "7", "--output", folds_path)
    assert status == 0, err
    assert "12 images in 3 content-disjoint folds (4, 4, 4; seed 7)" in out
    document = json.loads(folds_path.read_text())
    assert (document["k"], document["seed"], document["images"]) == (3, 7, 12)
    assert sorted(n for f in document["folds"] for n in f) == sorted(
        f"imgs/{i}.png" for i in range(12))

    output = tmp_path / "out"
    argv = ["--database", "csv", "--root", csv_path, "--folds", folds_path,
            "--config", tiny_recipe, "--output", output]
    status, out, err = _benchmark(capsys, *argv, "--splits", "2")  # a screen: 2 of 3 folds
    assert status == 0, err
    summary = _results(output)
    assert summary["splits_done"] == 2
    for fold in (1, 2):
        result = json.loads((output / f"split_{fold:02d}" / "result.json").read_text())
        tested = sorted(p["image"] for p in result["predictions"])
        assert tested == document["folds"][fold - 1]
        assert result["train_images"] == 8
    srcc = [row["srcc"] for row in summary["per_split"]]
    assert summary["sd"]["srcc"] == pytest.approx(np.std(srcc, ddof=1))
    assert "| **sd** | | |" in (output / "results.md").read_text()

    # All folds (the default with --folds) into the same output: the screen is extended.
    status, out, err = _benchmark(capsys, *argv)
    assert status == 0, err
    assert out.count("finished before, kept") == 2 and "split 3:" in out
    assert _results(output)["splits_done"] == 3

    # The folds count by their contents: the same file elsewhere resumes the run.
    moved = tmp_path / "elsewhere" / "folds.json"
    moved.parent.mkdir()
    moved.write_bytes(folds_path.read_bytes())
    argv[argv.index(folds_path)] = moved
    status, out, err = _benchmark(capsys, *argv)
    assert status == 0, err
    assert out.count("finished before, kept") == 3


def test_benchmark_refuses_folds_that_do_not_match(capsys, tmp_path, tiny_recipe):
    csv_path = build_authentic_csv(tmp_path / "db")
    folds_path = tmp_path / "folds.json"
    run_cli(capsys, "folds", "--database", "csv", "--root", csv_path, "--k", "3",
            "--output", folds_path)
    document = json.loads(folds_path.read_text())
    document["folds"][0][0] = "imgs/elsewhere.png"
    folds_path.write_text(json.dumps(document))
    argv = ["--database", "csv", "--root", csv_path, "--folds", folds_path,
            "--config", tiny_recipe, "--output", tmp_path / "out"]
    status, out, err = _benchmark(capsys, *argv)
    assert status == 1
    (line,) = error_lines(err)
    assert "does not match the database" in line and "imgs/elsewhere.png" in line
    assert str(folds_path) in line

    folds_path.write_text("not json")
    status, out, err = _benchmark(capsys, *argv)
    assert status == 1
    (line,) = error_lines(err)
    assert "not a folds file" in line
    assert not (tmp_path / "out" / "protocol.json").exists()


def test_benchmark_run_resumes_after_new_settings_were_added(capsys, tmp_path, tiny_recipe):
    """A protocol.json written before a setting existed reads as that setting's default."""
    csv_path = build_authentic_csv(tmp_path / "db")
    output = tmp_path / "out"
    argv = ["--database", "csv", "--root", csv_path, "--splits", "1", "--train-ratio", "0.67",
            "--config", tiny_recipe, "--output", output]
    status, out, err = _benchmark(capsys, *argv)
    assert status == 0, err
    recorded = json.loads((output / "protocol.json").read_text())
    del recorded["settings"]["folds"], recorded["recipe"]["stage2"]["pair_ranking_weight"]
    (output / "protocol.json").write_text(json.dumps(recorded))
    status, out, err = _benchmark(capsys, *argv)
    assert status == 0, err
    assert "finished before, kept" in out

    recorded["recipe"]["stage2"]["pair_ranking_weight"] = 0.5  # a real change is refused
    (output / "protocol.json").write_text(json.dumps(recorded))
    status, out, err = _benchmark(capsys, *argv)
    assert status == 1 and "recipe.stage2" in error_lines(err)[0]


def test_benchmark_ranking_references_reach_every_split_and_count_by_content(
    capsys, tmp_path, tiny_recipe
):
    """`--ranking-references` trains each split with the pristine photos; protocol.json
    records them by content, so a moved copy resumes and other photos are refused."""
    csv_path = build_authentic_csv(tmp_path / "db")
    pristine = tmp_path / "pristine"
    for i in range(2):
        _write(pristine / f"p{i}.png", _textured(20 + i))
    recipe = tmp_path / "pristine.toml"
    recipe.write_text(tiny_recipe.read_text().replace(
        "[stage2]\n", "[stage2]\nreference_ranking_weight = 0.5\nreference_batch_size = 2\n"
        "reference_crop_size = 16\n"))
    output = tmp_path / "out"
    argv = ["--database", "csv", "--root", csv_path, "--splits", "1", "--train-ratio", "0.67",
            "--config", recipe, "--output", output]
    status, out, err = _benchmark(capsys, *argv, "--ranking-references", pristine)
    assert status == 0, err
    metrics = json.loads((output / "split_01" / "stage2" / "stage2_metrics.json").read_text())
    assert metrics["ranking_references"] == 2
    recorded = json.loads((output / "protocol.json").read_text())
    assert recorded["settings"]["ranking_references"].startswith("sha256:")

    moved = tmp_path / "moved"
    moved.mkdir()
    for path in pristine.iterdir():
        (moved / path.name).write_bytes(path.read_bytes())
    status, out, err = _benchmark(capsys, *argv, "--ranking-references", moved)
    assert status == 0 and "finished before, kept" in out, err
    _write(moved / "p1.png", _textured(30))
    status, out, err = _benchmark(capsys, *argv, "--ranking-references", moved)
    assert status == 1 and "settings.ranking_references" in error_lines(err)[0]
