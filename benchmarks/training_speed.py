"""Training speed: stage-1 patches/s, stage-2 images/s, and the input-pipeline stall.

Each stage trains with the shipped recipe (configs/shipped.toml: batch sizes, crop
sizes, precision, the stage-2 ranking pairs) on its real tf.data pipeline, then on
the same batches cached in memory (`take(k).cache().repeat()`, filled beforehand):
the stall, the fraction of step time spent waiting for data, is
1 - t(cached) / t(real), in wall time and in CPU time (the pipeline's share of the
work: on saturated cores, what it takes from the training step). Times are the median
of `--rounds` turns of `--steps` steps; the two pipelines take turns, each turn on a
fresh iterator (see `epoch_seconds`).
Stage 1 draws pairs from the Kodak references, stage 2 crops from CLIVE photos; each
fresh for every step (the recipe) and with data echoing (`--echo`: the recipe's
pair_echo / crop_echo, each example used that many times).

With --autotune-baseline, each pipeline is also timed with tf.data's autotuning back on
(TF's default; the training pipelines turn it off, see stage1.pair_batches).

Usage: python benchmarks/training_speed.py [--steps 32] [--rounds 3] [--precision P] [--echo 4 8 ...]
       [--stage1-only | --stage2-only] [--autotune-baseline]
"""

import argparse
import csv
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402

from diqa_tf.data.options import with_autotuning  # noqa: E402
from diqa_tf.data.stage1 import ECHO_WINDOW_BATCHES  # noqa: E402


def epoch_seconds(model, datasets, steps, rounds):
    """Median (wall, CPU) seconds of `steps` train steps per dataset, taking turns.

    Each turn starts a fresh iterator (2 untimed warm-up steps) and deletes it after:
    an idle iterator would keep filling its prefetch buffer in the background,
    slowing the other datasets' turns and speeding up its own.
    Returns ({name: wall s}, {name: CPU s of the process}).
    """
    train = _common.train_step(model)

    def run(ds):
        it = iter(ds)
        for _ in range(2):
            train(it)
        float(train(it)["loss"])  # the warm-up steps have finished
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            logs = train(it)
        float(logs["loss"])  # wait for the last step
        return time.perf_counter() - wall, time.process_time() - cpu

    for ds in datasets.values():  # trace, build the oneDNN primitives
        run(ds)
    times = {name: [] for name in datasets}
    for _ in range(rounds):
        for name, ds in datasets.items():
            times[name].append(run(ds))
    return (
        {name: statistics.median(w for w, _ in t) for name, t in times.items()},
        {name: statistics.median(c for _, c in t) for name, t in times.items()},
    )


def cached(ds, batches):
    """The first `batches` batches of `ds`, in memory, repeated (filled here)."""
    ds = ds.take(batches).cache()
    for _ in ds:
        pass
    return ds.repeat()


def pipeline_cpu_ms(ds, batch_size, batches=2 * ECHO_WINDOW_BATCHES):
    """CPU milliseconds (all threads) the pipeline alone spends on one training example
    (over two echo windows, so that echoing is counted at its long-run cost)."""
    it = iter(ds)
    for _ in range(5):  # warm-up: fill the buffers
        next(it)
    cpu = time.process_time()
    for _ in range(batches):
        next(it)
    return 1000 * (time.process_time() - cpu) / (batches * batch_size)


def speed(model, real, args, stage_config, batch, unit):
    """`model`'s rate on `real` and the stall against its cached copy: (the table
    rows from the batch column on, the results entry). With --autotune-baseline, a
    second row: the same pipeline autotuned, against the same cached copy."""
    datasets = {"real": real, "cached": cached(real, 4)}
    if args.autotune_baseline:
        datasets["autotuned"] = with_autotuning(real, True)
    seconds, cpu = epoch_seconds(model, datasets, args.steps, args.rounds)
    making = pipeline_cpu_ms(real, stage_config.batch_size)
    training = 1000 * cpu["cached"] / (args.steps * stage_config.batch_size)
    # On saturated cores the pipeline's CPU share is the stall to expect in the long
    # run; steadier than the wall times on a machine whose speed drifts.
    share = making / (making + training)
    precision = model.dtype_policy.name  # what the recipe's precision ("auto") took here
    rows, entry = [], {
        "pipeline_cpu_ms_per_example": making,
        "training_cpu_ms_per_example": training,
        "pipeline_cpu_share": share,
        "epoch_seconds": seconds,
        "epoch_cpu_seconds": cpu,
        "batch": batch,
        "precision": precision,
    }
    for name in (n for n in datasets if n != "cached"):
        per_s = args.steps * stage_config.batch_size / seconds[name]
        stall = 1 - seconds["cached"] / seconds[name]
        stall_cpu = 1 - cpu["cached"] / cpu[name]
        suffix = "" if name == "real" else f"_{name}"
        entry[f"{unit}_per_s{suffix}"] = per_s
        entry[f"stall_fraction{suffix}"] = stall
        entry[f"stall_fraction_cpu{suffix}"] = stall_cpu
        label = batch if name == "real" else f"{batch}, tf.data autotuning on"
        rows.append((label, precision, per_s, f"{unit}/s", stall, stall_cpu, making, share))
    return rows, entry


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # A turn spans one echo window: shorter turns would pay for a whole window of
    # fresh examples (the prefetch makes the next one at once) in a fraction of it.
    parser.add_argument("--steps", type=int, default=ECHO_WINDOW_BATCHES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", help="override the recipe's (e.g. float32)")
    parser.add_argument("--clive-images", type=int, default=64)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--stage1-only", action="store_true", help="skip stage 2")
    only.add_argument("--stage2-only", action="store_true", help="skip stage 1")
    parser.add_argument(
        "--autotune-baseline",
        action="store_true",
        help="also time each pipeline with tf.data autotuning on (TF's default)",
    )
    parser.add_argument(
        "--echo", type=int, nargs="+", default=[4], help="pair_echo / crop_echo values to compare"
    )
    args = parser.parse_args()

    import dataclasses

    import keras
    import numpy as np

    from diqa_tf.config import TrainingRecipe
    from diqa_tf.data import files
    from diqa_tf.data import stage1 as stage1_data
    from diqa_tf.data import stage2 as stage2_data
    from diqa_tf.models import ErrorMapModel, QualityModel
    from diqa_tf.training.precision import precision_policy

    recipe = TrainingRecipe.load(_common.ROOT / "configs/shipped.toml")
    s1, s2, pre = recipe.stage1, recipe.stage2, recipe.preprocessing
    if args.precision:
        s1 = dataclasses.replace(s1, precision=args.precision)
        s2 = dataclasses.replace(s2, precision=args.precision)
    keras.utils.set_random_seed(0)
    rows, results = [], {}

    # Stage 1
    references = [np.asarray(files.read_image(p)) for p in _common.kodak_paths()]
    for echo in [] if args.stage2_only else sorted({s1.pair_echo, *args.echo}):
        real = stage1_data.pair_dataset(
            stage1_data.reference_dataset(references),
            pre,
            crop_size=s1.crop_size,
            batch_size=s1.batch_size,
            min_crop_reliability=s1.min_crop_reliability,
            echo=echo,
        )
        with precision_policy(s1.precision):
            model = ErrorMapModel(preprocessing_config=pre)
            model.compile(optimizer=keras.optimizers.Nadam(s1.learning_rate))
        batch = f"{s1.batch_size} crops {s1.crop_size}^2, pair_echo {echo}"
        stage_rows, results[f"stage1_echo{echo}"] = speed(model, real, args, s1, batch, "patches")
        for row in stage_rows:
            rows.append(("stage 1", *row))
            print(rows[-1], flush=True)
    if args.stage1_only:
        return report(rows, results, args)

    # Stage 2 (untrained: the weights do not change a step's cost)
    clive = _common.DATA / "clive"
    with open(clive / "mos.csv", newline="") as f:
        records = [(str(clive / r["image"]), float(r["mos"])) for r in csv.DictReader(f)]
    records = records[7 : 7 + args.clive_images]  # skip the 7 subject-training images
    with precision_policy(s2.precision):
        model = QualityModel(preprocessing_config=pre, score_scale=recipe.score_scale)
        model.compile(
            optimizer=keras.optimizers.Nadam(s2.learning_rate),
            ranking_weight=s2.ranking_weight,
            ranking_margin=s2.ranking_margin,
        )
    for echo in sorted({s2.crop_echo, *args.echo}):
        real = stage2_data.training_dataset(
            [p for p, _ in records],
            [s for _, s in records],
            pre,
            s2.batch_size,
            s2.crop_size,
            seed=0,
            ranking=s2.ranking_weight > 0,
            echo=echo,
        )
        for _ in real.take(len(records) // s2.batch_size + 1):  # fill the decoded-image cache
            pass
        pairs = " + distorted copies" if s2.ranking_weight > 0 else ""
        batch = f"{s2.batch_size} crops {s2.crop_size}^2{pairs}, crop_echo {echo}"
        stage_rows, results[f"stage2_echo{echo}"] = speed(model, real, args, s2, batch, "images")
        for row in stage_rows:
            rows.append(("stage 2", *row))
            print(rows[-1], flush=True)
    report(rows, results, args)


def report(rows, results, args):
    """Print the table and write the results JSON."""
    _common.table(
        ["stage", "batch", "precision", "rate", "unit", "stall (wall)", "stall (CPU)",
         "pipeline CPU ms/example", "pipeline CPU share"],
        rows,
    )
    _common.write_result(
        "training_speed", {"steps": args.steps, "rounds": args.rounds, **results}
    )


if __name__ == "__main__":
    main()
