"""Training throughput on GPUs: both stages under MirroredStrategy, steps/s and images/s.

For each GPU count (1, then all GPUs when there are several) and each precision,
the real training path runs for `--warmup` + `--steps` steps: the stage's tf.data
pipeline, its model built in `strategy.scope()`, and the training loop of
`diqa train` (diqa_tf.training.distributed_loop). Only the steps after the warm-up
(tracing, autotuning) are timed. The per-GPU batch is the recipe's (stage 1: 32
crops of 112x112; stage 2: 8 crops of 256x256), so the global batch grows with
the GPU count. Data are synthetic (textured images with random scores): the
throughput does not depend on the content, and no data set is needed.

Without a GPU it says so and exits 0 (CPU training has its own numbers in the
model card). Writes a table and benchmarks/results/train_gpu.json.

Usage: python benchmarks/train_gpu.py [--steps 50] [--warmup 10]
           [--precisions float32 mixed_float16]
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402


def textured(rng, height, width):
    import numpy as np

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 128 + 60 * np.sin(x / 7.0) * np.cos(y / 11.0) + 0.1 * (x - width / 2)
    image = base[..., None] + rng.normal(0, 12, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def stage1_setup(recipe, global_batch, seed=0):
    import numpy as np

    from diqa_tf.data import stage1 as stage1_data

    rng = np.random.default_rng(seed)
    references = [textured(rng, 512, 768).astype(np.float32) for _ in range(16)]
    cfg = recipe.stage1
    dataset = stage1_data.pair_dataset(
        stage1_data.reference_dataset(references),
        recipe.preprocessing,
        crop_size=cfg.crop_size,
        batch_size=global_batch,
        seed=seed,
        min_crop_reliability=cfg.min_crop_reliability,
    )

    def model():
        from diqa_tf.models import ErrorMapModel

        return ErrorMapModel(preprocessing_config=recipe.preprocessing)

    return dataset, model, cfg.learning_rate


def stage2_setup(recipe, global_batch, folder, seed=0):
    import imageio.v3 as iio
    import numpy as np

    from diqa_tf.data import stage2 as stage2_data

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(64):
        path = os.path.join(folder, f"img{i}.png")
        if not os.path.exists(path):
            iio.imwrite(path, textured(rng, 384, 512))
        paths.append(path)
    cfg = recipe.stage2
    dataset = stage2_data.training_dataset(
        paths, rng.uniform(0, 100, len(paths)).tolist(), recipe.preprocessing,
        global_batch, cfg.crop_size, seed,
    )

    def model():
        from diqa_tf.models import ErrorMapModel, QualityModel

        stage1 = ErrorMapModel(preprocessing_config=recipe.preprocessing)
        return QualityModel.from_stage1(stage1, score_scale=recipe.score_scale)

    return dataset, model, cfg.learning_rate


def measure(stage, strategy, precision, args, recipe, folder):
    import keras

    from diqa_tf.training import distributed_loop
    from diqa_tf.training.precision import precision_policy

    per_replica = recipe.stage1.batch_size if stage == "stage1" else recipe.stage2.batch_size
    global_batch = per_replica * strategy.num_replicas_in_sync
    if stage == "stage1":
        dataset, build, learning_rate = stage1_setup(recipe, global_batch)
    else:
        dataset, build, learning_rate = stage2_setup(recipe, global_batch, folder)
    keras.utils.set_random_seed(0)
    with strategy.scope(), precision_policy(precision):
        model = build()
        model.compile(optimizer=keras.optimizers.Nadam(learning_rate))
    times = []  # batch-end times

    def finished(batch, logs):
        float(logs["loss"])  # wait for the step: the loop itself does not
        times.append(time.perf_counter())

    timer = keras.callbacks.LambdaCallback(on_train_batch_end=finished)
    steps = args.warmup + args.steps
    distributed_loop.train(
        model, strategy, dataset, steps_per_epoch=steps, epochs=1, callbacks=[timer], verbose=0
    )
    seconds = times[-1] - times[args.warmup - 1]
    steps_per_second = args.steps / seconds
    return {
        "stage": stage,
        "gpus": strategy.num_replicas_in_sync,
        "precision": precision,
        "global_batch": global_batch,
        "steps_per_s": steps_per_second,
        "images_per_s": steps_per_second * global_batch,
        "crop": recipe.stage1.crop_size if stage == "stage1" else recipe.stage2.crop_size,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_float16"])
    args = parser.parse_args()

    import tensorflow as tf

    from diqa_tf.config import TrainingRecipe

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if not gpus:
        print("no GPU found: this benchmark measures GPU training and has nothing to do here")
        return 0
    recipe = TrainingRecipe()
    # One MirroredStrategy per GPU count, made once (a second instance over the same
    # devices can clash in the collective runtime).
    strategies = [tf.distribute.MirroredStrategy(gpus[:1])]
    if len(gpus) > 1:
        strategies.append(tf.distribute.MirroredStrategy(gpus))
    rows = []
    with tempfile.TemporaryDirectory(prefix="diqa_train_gpu_") as folder:
        for strategy in strategies:
            for precision in args.precisions:
                for stage in ("stage1", "stage2"):
                    rows.append(measure(stage, strategy, precision, args, recipe, folder))
                    print(rows[-1], flush=True)
    headers = ["stage", "gpus", "precision", "crop", "global_batch", "steps_per_s",
               "images_per_s"]
    _common.table(headers, [[row[h] for h in headers] for row in rows])
    _common.write_result("train_gpu", {
        "gpus": gpus,
        "gpu_name": tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]).get("device_name", "unknown"),
        "timed_steps": args.steps,
        "warmup_steps": args.warmup,
        "rows": rows,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
