"""`diqa train`: interruption and --resume, --seed, --precision, TensorBoard logs.

The resume and seed tests run `diqa train stage1` in subprocesses (a run must be
killed, and --seed turns on TF's deterministic ops for the whole process); the
others run in this process.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from diqa_tf import cli
from diqa_tf.models import ErrorMapModel
from diqa_tf.training import distributed_loop
from diqa_tf.training.precision import precision_policy

DIQA = "import sys; from diqa_tf.cli import main; sys.exit(main())"  # the `diqa` command
STEPS_PER_EPOCH = 6
RECIPE = f"""
[stage1]
crop_size = 32
batch_size = 4
steps_per_epoch = {STEPS_PER_EPOCH}
epochs = 2
validation_references = 0.34
validation_pairs = 4

[stage2]
crop_size = 32
batch_size = 2
epochs = 2
holdout_fraction = 0.375
"""


def write_references(folder, textured_image):
    """`folder` (created) with three 96x96 textured references: a tiny stage-1 set."""
    import imageio.v3 as iio

    folder.mkdir()
    for seed in range(3):
        iio.imwrite(folder / f"r{seed}.png", textured_image(96, 96, seed=seed))
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory, textured_image):
    """(references folder, recipe) for a 12-step stage-1 run."""
    folder = tmp_path_factory.mktemp("training")
    references = write_references(folder / "refs", textured_image)
    config = folder / "recipe.toml"
    config.write_text(RECIPE)
    return references, config


def _train_stage1(setup, output, *extra):
    references, config = setup
    command = [sys.executable, "-c", DIQA, "train", "stage1", "--references",
               str(references), "--config", str(config), "--output", str(output), "--quiet",
               "--seed", "0", "--checkpoint-every", "2", *extra]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(process):
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return out


def _weights(path):
    return keras.saving.load_model(path).get_weights()


@pytest.fixture(scope="module")
def two_runs(setup, tmp_path_factory):
    """Two uninterrupted runs with --seed 0, side by side."""
    root = tmp_path_factory.mktemp("runs")
    outputs = [root / "a", root / "b"]
    for process in [_train_stage1(setup, output) for output in outputs]:
        _finish(process)
    return outputs


@pytest.mark.slow  # 2 subprocess runs of `diqa train`: ~40 s alone, more on a busy machine
def test_seed_repeats_bit_for_bit(two_runs):
    a, b = two_runs
    for x, y in zip(_weights(a / "stage1.keras"), _weights(b / "stage1.keras"), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not (a / "backup").exists()  # checkpoints go once a run has finished


@pytest.mark.slow  # + 2 more subprocess runs
def test_sigkill_then_resume_gives_the_uninterrupted_weights(setup, two_runs, tmp_path):
    output = tmp_path / "killed"
    state = output / "backup" / "state.json"
    process = _train_stage1(setup, output)
    deadline = time.time() + 300
    while not state.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, "the run ended before a checkpoint"

    saved = json.loads(state.read_text())
    assert saved["step"] % STEPS_PER_EPOCH, f"not killed mid-epoch: {saved}"
    assert (output / "backup" / saved["weights"]).is_file()  # a complete checkpoint

    # Without --resume the interrupted run is neither resumed nor replaced by accident.
    status = cli.main(["train", "stage1", "--references", str(setup[0]), "--config",
                       str(setup[1]), "--output", str(output)])
    assert status == 1

    out = _finish(_train_stage1(setup, output, "--resume"))
    assert "stage 1 done" in out
    reference = _weights(two_runs[0] / "stage1.keras")
    for x, y in zip(_weights(output / "stage1.keras"), reference, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not (output / "backup").exists()


def test_resume_needs_a_checkpoint(capsys, tmp_path, setup):
    args = ["train", "stage1", "--references", str(setup[0]), "--output", str(tmp_path)]
    assert cli.main([*args, "--resume"]) == 1
    assert "no checkpoint to resume from" in capsys.readouterr().err
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "state.json").write_text("{}")
    assert cli.main(args) == 1
    assert "use --resume to continue it or --overwrite" in capsys.readouterr().err


# --- precision ------------------------------------------------------------------------


def _losses(precision, batches, initial, optimizer=lambda: keras.optimizers.Nadam(1e-4)):
    """Per-step training losses (of the whole run so far) of an ErrorMapModel."""
    with precision_policy(precision):
        model = ErrorMapModel()
    model.compile(optimizer=optimizer())
    model.set_weights(initial)
    losses = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(logs["loss"])

    dataset = tf.data.Dataset.from_tensor_slices(batches)
    distributed_loop.train(
        model, tf.distribute.get_strategy(), dataset, steps_per_epoch=len(batches[0]["image"]),
        epochs=1, callbacks=[Record()], verbose=0,
    )
    return np.array(losses), model


def _batches(rng, steps, n, size):
    """The same batch at every step: a training run's loss must fall."""
    batch = (
        {"image": (rng.standard_normal((n, size, size, 1)) * 15).astype(np.float32)},
        {
            "error_map": (rng.random((n, size // 4, size // 4, 1)) + 0.1).astype(np.float32),
            "reliability": rng.random((n, size // 4, size // 4, 1)).astype(np.float32),
        },
    )
    return tf.nest.map_structure(lambda x: np.stack([x] * steps), batch)


def test_bfloat16_loss_tracks_float32(rng):
    batches = _batches(rng, steps=4, n=4, size=32)
    keras.utils.set_random_seed(0)
    initial = ErrorMapModel().get_weights()
    reference, _ = _losses("float32", batches, initial)
    mixed, _ = _losses("mixed_bfloat16", batches, initial)
    assert reference[-1] < 0.8 * reference[0]  # it learns: the comparison means something
    np.testing.assert_allclose(mixed, reference, rtol=0.05)


def test_float16_scales_the_loss(rng):
    """compile wraps the optimizer in a LossScaleOptimizer; train_step must scale the
    loss, else apply() divides unscaled gradients by the scale (2**15) and SGD learns
    nothing (Nadam would hide it: it is blind to a constant gradient factor).
    Small shapes: float16 convolutions are slow on CPU."""
    batches = _batches(rng, steps=4, n=2, size=16)
    keras.utils.set_random_seed(0)
    initial = ErrorMapModel().get_weights()
    sgd = lambda: keras.optimizers.SGD(1e-3)  # noqa: E731
    reference, _ = _losses("float32", batches, initial, sgd)
    mixed, model = _losses("mixed_float16", batches, initial, sgd)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert reference[-1] < 0.8 * reference[0]
    # A step that overflows at the initial scale is skipped (as designed), so float16
    # may lag float32 by a step; it must still learn.
    assert np.all(np.isfinite(mixed)) and mixed[-1] < 0.8 * mixed[0]


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return str(path)


@pytest.mark.parametrize(
    "flags, onednn, native",
    [("avx512f avx512_bf16", None, True), ("amx_tile amx_bf16", None, True),
     ("avx512f", None, False), ("avx512_bf16", "0", False)],
)
def test_native_bfloat16_reads_the_cpu_flags(tmp_path, monkeypatch, flags, onednn, native):
    from diqa_tf.training import precision

    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    if onednn is not None:  # oneDNN off: TF's own kernels emulate bfloat16
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", onednn)
    precision.native_bfloat16.cache_clear()
    try:
        assert precision.native_bfloat16(_cpuinfo(tmp_path, flags)) is native
    finally:
        precision.native_bfloat16.cache_clear()


@pytest.mark.parametrize("native, policy", [(True, "mixed_bfloat16"), (False, "float32")])
def test_auto_precision_uses_bfloat16_only_where_native(monkeypatch, native, policy):
    from diqa_tf.training import precision

    monkeypatch.setattr(precision, "native_bfloat16", lambda: native)
    with precision_policy("auto"):
        model = ErrorMapModel()
    assert model.dtype_policy.name == policy
    assert keras.config.dtype_policy().name == "float32"  # restored


def test_emulated_bfloat16_warns(monkeypatch, caplog):
    from diqa_tf.training import precision

    monkeypatch.setattr(precision, "native_bfloat16", lambda: False)
    with caplog.at_level("WARNING", logger=precision.__name__):
        assert precision.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert "no native bfloat16" in caplog.text
    caplog.clear()
    monkeypatch.setattr(precision, "native_bfloat16", lambda: True)
    with caplog.at_level("WARNING", logger=precision.__name__):
        precision.resolve_precision("mixed_bfloat16")
    assert not caplog.text
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])
    with caplog.at_level("WARNING", logger=precision.__name__):
        precision.resolve_precision("mixed_float16")
    assert "float16 is for GPUs" in caplog.text


def test_recipe_and_cli_accept_auto_precision(capsys):
    from diqa_tf.config import TrainingRecipe

    recipe = TrainingRecipe.from_dict({"stage1": {"precision": "auto"}})
    assert recipe.stage1.precision == "auto"
    with pytest.raises(SystemExit):
        cli.main(["train", "stage1", "--help"])
    assert "{float32,auto,mixed_bfloat16,mixed_float16}" in capsys.readouterr().out


# --- TensorBoard ----------------------------------------------------------------------


def _tags(folder):
    pytest.importorskip("tensorboard")  # tf.summary needs it (see setup.cfg)
    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.mark.slow  # reads the runs of test_seed_repeats_bit_for_bit
def test_stage1_tensorboard_logs(two_runs):
    assert {"loss", "val_loss", "batch_loss", "error_map"} <= _tags(two_runs[0] / "tensorboard")


def test_stage2_tensorboard_and_csv_logs(capsys, tmp_path, setup, scored_csv,
                                         tiny_stage1_model_path):
    output = tmp_path / "run"
    status = cli.main(["train", "stage2", "--csv", str(scored_csv), "--stage1",
                       str(tiny_stage1_model_path), "--config", str(setup[1]),
                       "--output", str(output), "--quiet"])
    assert status == 0, capsys.readouterr().err
    assert {"loss", "holdout_srcc", "holdout_plcc"} <= _tags(output / "tensorboard")
    rows = (output / "stage2_log.csv").read_text().splitlines()
    assert rows[0] == "epoch,holdout_plcc,holdout_srcc,loss" and len(rows) == 3


def test_recipe_pair_echo_reaches_the_training_pipeline(monkeypatch, tmp_path, setup):
    """`pair_echo` in a recipe echoes the training pairs; validation pairs stay fresh."""
    from diqa_tf.data import stage1 as stage1_data

    real, seen = stage1_data.pair_dataset, []

    def spy(*args, echo=1, **kwargs):
        seen.append(echo)
        return real(*args, echo=echo, **kwargs)

    monkeypatch.setattr(stage1_data, "pair_dataset", spy)
    references, _ = setup
    recipe = tmp_path / "echo.toml"
    recipe.write_text(RECIPE.replace("[stage1]\n", "[stage1]\npair_echo = 2\n"))
    code = cli.main(["train", "stage1", "--references", str(references), "--config",
                     str(recipe), "--output", str(tmp_path / "out"), "--quiet"])
    assert code == 0 and (tmp_path / "out" / "stage1.keras").is_file()
    assert seen == [2, 1]


def test_recipe_ranking_focus_reaches_the_training_pipeline(
    monkeypatch, capsys, tmp_path, scored_csv, tiny_stage1_model_path
):
    """`ranking_focus_*` in a recipe shape the ranking term's distorted copies."""
    from diqa_tf.data import stage2 as stage2_data

    real, seen = stage2_data.training_dataset, []

    def spy(*args, **kwargs):
        seen.append((kwargs["ranking"], kwargs["ranking_focus_kinds"],
                     kwargs["ranking_focus_fraction"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(stage2_data, "training_dataset", spy)
    recipe = tmp_path / "focus.toml"
    # Ranking crops take MARGIN pixels of context each side: 8 + 32 fits the 40x56 images.
    recipe.write_text(RECIPE.replace("crop_size = 32\nbatch_size = 2", "crop_size = 8\nbatch_size = 2")
                      .replace("[stage2]\n", "[stage2]\nranking_weight = 0.2\n"
                               "ranking_focus_fraction = 1.0\n"
                               'ranking_focus_kinds = ["white_noise"]\n'))
    code = cli.main(["train", "stage2", "--csv", str(scored_csv), "--stage1",
                     str(tiny_stage1_model_path), "--config", str(recipe),
                     "--output", str(tmp_path / "out"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert seen == [(True, ("white_noise",), 1.0)]


def test_ranking_crops_larger_than_the_images_fail_clearly(
    capsys, tmp_path, scored_csv, tiny_stage1_model_path
):
    recipe = tmp_path / "ranking.toml"
    recipe.write_text(RECIPE.replace("[stage2]\n", "[stage2]\nranking_weight = 0.2\n"))
    code = cli.main(["train", "stage2", "--csv", str(scored_csv), "--stage1",
                     str(tiny_stage1_model_path), "--config", str(recipe),
                     "--output", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0
    assert (f"{scored_csv}: stage-2 ranking crops need images of at least 64x64 (the "
            "crop_size 32 plus 16 pixels of context each side)") in err
    assert "function_node" not in err and "assertion failed" not in err


def train_stage2_cli(capsys, csv, stage1, config, output, *extra):
    """`diqa train stage2` on `csv` with recipe `config`: (exit code, stderr)."""
    code = cli.main(["train", "stage2", "--csv", str(csv), "--stage1", str(stage1), "--config",
                     str(config), "--output", str(output), "--quiet", "--overwrite", *extra])
    return code, capsys.readouterr().err


def test_stage2_ranking_references_train_and_fail_clearly(
    capsys, tmp_path, scored_csv, tiny_stage1_model_path, textured_image
):
    """`--ranking-references` feeds the recipe's reference_ranking_weight; a mismatch
    between the two, or a photo too small for its crops, is a clear error."""
    references = write_references(tmp_path / "pristine", textured_image)
    recipe = tmp_path / "pristine.toml"
    recipe.write_text(RECIPE.replace("[stage2]\n", "[stage2]\nreference_ranking_weight = 0.5\n"
                                     "reference_batch_size = 2\nreference_crop_size = 24\n"))

    def train(config, *extra):
        return train_stage2_cli(capsys, scored_csv, tiny_stage1_model_path, config,
                                tmp_path / "out", *extra)

    code, err = train(recipe, "--ranking-references", str(references))
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "stage2_metrics.json").read_text())
    assert metrics["ranking_references"] == 3

    code, err = train(recipe)
    assert code != 0 and "stage2.reference_ranking_weight is 0.5, but no pristine photos" in err
    plain = tmp_path / "plain.toml"
    plain.write_text(RECIPE)
    code, err = train(plain, "--ranking-references", str(references))
    assert code != 0
    assert ("set one of stage2.reference_ranking_weight, error_map_weight or ladder_weight "
            "above 0") in err
    big = tmp_path / "big.toml"
    big.write_text(RECIPE.replace("[stage2]\n", "[stage2]\nreference_ranking_weight = 0.5\n"
                                  "reference_crop_size = 80\n"))
    code, err = train(big, "--ranking-references", str(references))
    assert code != 0
    assert (f"{references / 'r0.png'}: 96x96 pixels, smaller than the 112x112 that "
            "stage2.reference_crop_size 80 needs") in err
    code, err = train(recipe, "--ranking-references", str(tmp_path / "nowhere"))
    assert code != 0 and "nowhere" in err


def test_stage2_ladder_trains_on_pristine_crops_and_fails_clearly(
    capsys, tmp_path, scored_csv, tiny_stage1_model_path, textured_image
):
    """stage2.ladder_weight trains with crops of `--ranking-references`, needs them, and
    names a photo too small for its crops."""
    references = write_references(tmp_path / "pristine", textured_image)
    recipe = tmp_path / "ladder.toml"
    recipe.write_text(RECIPE.replace("[stage2]\n", "[stage2]\nladder_weight = 0.5\n"
                                     "reference_batch_size = 2\nreference_crop_size = 80\n"))

    def train(*extra):
        return train_stage2_cli(capsys, scored_csv, tiny_stage1_model_path, recipe,
                                tmp_path / "out", *extra)

    code, err = train()
    assert code != 0 and "stage2.ladder_weight is 0.5, but no pristine photos" in err
    code, err = train("--ranking-references", str(references))
    assert code != 0
    assert (f"{references / 'r0.png'}: 96x96 pixels, smaller than the 112x112 that "
            "stage2.reference_crop_size 80 needs") in err
    recipe.write_text(recipe.read_text().replace("reference_crop_size = 80", "reference_crop_size = 24"))
    code, err = train("--ranking-references", str(references))
    assert code == 0, err
    assert (tmp_path / "out" / "stage2.keras").exists()


def test_stage2_error_map_term_trains_on_pristine_pairs_and_fails_clearly(
    capsys, tmp_path, scored_csv, tiny_stage1_model_path, textured_image
):
    """stage2.error_map_weight trains with stage-1 pairs of `--ranking-references`; it
    needs them, and photos that cannot make a stage-1 crop are a clear error."""
    import imageio.v3 as iio

    references = write_references(tmp_path / "pristine", textured_image)
    recipe = tmp_path / "error_map.toml"
    recipe.write_text(RECIPE.replace("[stage2]\n", "[stage2]\nerror_map_weight = 1.0\n"
                                     "error_map_batch_size = 2\n"))

    def train(*extra):
        return train_stage2_cli(capsys, scored_csv, tiny_stage1_model_path, recipe,
                                tmp_path / "out", *extra)

    code, err = train("--ranking-references", str(references))
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "stage2_metrics.json").read_text())
    assert metrics["ranking_references"] == 3
    code, err = train()
    assert code != 0 and "stage2.error_map_weight is 1.0, but no pristine photos" in err
    small = tmp_path / "small"
    small.mkdir()
    iio.imwrite(small / "tiny.png", textured_image(40, 40, seed=0))
    code, err = train("--ranking-references", str(small))
    assert code != 0
    assert "none of the pristine photos can make stage-1 pairs" in err
    assert "tiny.png" in err and "smaller than 64x64" in err
