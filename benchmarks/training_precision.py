"""Stage-1 training step time in float32 and mixed_bfloat16, and what `auto` picks here.

Whether bfloat16 pays depends on the hardware: oneDNN computes it natively on CPUs
with AVX-512 BF16 or AMX; elsewhere TF emulates it. The step runs on one batch of the
shipped recipe's shape (32 crops of 112^2) held in memory, so only the model's work is
timed; the precisions take turns (median of `--rounds` turns of `--steps` steps).

Usage: python benchmarks/training_precision.py [--steps 5] [--rounds 3]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from diqa_tf.config import TrainingRecipe
    from diqa_tf.models import ErrorMapModel
    from diqa_tf.training.precision import native_bfloat16, precision_policy, resolve_precision

    s1 = TrainingRecipe.load(_common.ROOT / "configs/shipped.toml").stage1
    g = s1.crop_size // 4
    batch = (
        {"image": 15 * tf.random.normal([s1.batch_size, s1.crop_size, s1.crop_size, 1])},
        {"error_map": tf.random.uniform([s1.batch_size, g, g, 1]),
         "reliability": tf.random.uniform([s1.batch_size, g, g, 1])},
    )
    cases = {}
    for precision in ("float32", "mixed_bfloat16"):
        keras.utils.set_random_seed(0)
        with precision_policy(precision):
            model = ErrorMapModel()
        model.compile(optimizer=keras.optimizers.Nadam(s1.learning_rate))
        step = _common.train_step(model)
        data = iter(tf.data.Dataset.from_tensors(batch).repeat())
        float(step(data)["loss"])  # trace, build the kernels

        def run(step=step, data=data):
            for _ in range(args.steps):
                logs = step(data)
            float(logs["loss"])

        cases[precision] = run
    wall, cpu = _common.interleaved(cases, args.rounds)
    rows = [
        (p, 1000 * wall[p] / args.steps, 1000 * cpu[p] / args.steps,
         wall[p] / wall["float32"])
        for p in cases
    ]
    _common.table(["precision", "wall ms/step", "CPU ms/step", "x float32 (wall)"], rows)
    auto = resolve_precision("auto")
    print(f"native bfloat16: {native_bfloat16()}; precision auto -> {auto}")
    _common.write_result(
        "training_precision",
        {"steps": args.steps, "rounds": args.rounds, "batch": s1.batch_size,
         "crop_size": s1.crop_size, "native_bfloat16": native_bfloat16(), "auto": auto,
         "ms_per_step": {p: 1000 * wall[p] / args.steps for p in cases},
         "cpu_ms_per_step": {p: 1000 * cpu[p] / args.steps for p in cases}},
    )


if __name__ == "__main__":
    main()
