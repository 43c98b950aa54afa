"""Cost vs image size and batch size: scoring and a stage-1 training step.

Scoring (the Scorer's graph on pre-decoded images, whole images, float32):
sizes 256^2 .. 2048^2 at batch 1, and batch sizes 1 .. 8 at 512^2. Training: one
ErrorMapModel train step (float32, random inputs, no data pipeline) at crop sizes
64^2 .. 256^2 with 8 crops a batch. If cost grows linearly with pixels, the
megapixels/s column stays flat; "x 512^2" is it relative to the 512^2 row.
Each table's rows take turns in interleaved rounds (median of each).

Usage: python benchmarks/scaling.py [--rounds 3]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-size", type=int, default=2048)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from diqa_tf.inference import Scorer
    from diqa_tf.models import ErrorMapModel

    model = _common.shipped_model()
    scorer = Scorer(model)
    rng = np.random.default_rng(0)

    def images(size, batch):
        return tf.constant(rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32))

    sizes = [s for s in (256, 512, 1024, 2048) if s <= args.max_size]
    predict_cases = {(s, 1): images(s, 1) for s in sizes}
    predict_cases.update({(512, b): images(512, b) for b in (2, 4, 8)})
    cases = {key: (lambda x=x: scorer.score_batch(x)) for key, x in predict_cases.items()}

    keras.utils.set_random_seed(0)
    trainee = ErrorMapModel()
    trainee.compile(optimizer=keras.optimizers.Nadam(2e-4))
    trainee.optimizer.build(trainee.trainable_variables)
    trainee.make_train_function()
    train = trainee.train_function
    crops = (64, 112, 128, 256)
    train_data = {}
    for c in crops:
        g = c // 4
        batch = (
            {"image": tf.random.normal([8, c, c, 1], stddev=15.0)},
            {
                "error_map": tf.random.uniform([8, g, g, 1]),
                "reliability": tf.random.uniform([8, g, g, 1]),
            },
        )
        train_data[c] = tf.data.Dataset.from_tensors(batch).repeat()
    iterators = {c: iter(ds) for c, ds in train_data.items()}
    train_cases = {c: (lambda it=it: float(train(it)["loss"])) for c, it in iterators.items()}

    for fn in (*cases.values(), *train_cases.values()):
        fn()
    wall, cpu = _common.interleaved(cases, args.rounds)
    twall, tcpu = _common.interleaved(train_cases, args.rounds)

    def rate(pixels, seconds):
        return pixels / seconds / 1e6

    rows, predict = [], {}
    base_wall = rate(512 * 512, wall[(512, 1)])
    base_cpu = rate(512 * 512, cpu[(512, 1)])
    for (size, batch), seconds in wall.items():
        px = size * size * batch
        r_wall, r_cpu = rate(px, seconds), rate(px, cpu[(size, batch)])
        rows.append((f"score {size}^2", batch, r_wall, r_wall / base_wall, r_cpu, r_cpu / base_cpu))
        predict[f"{size}x{size} batch {batch}"] = {
            "mpixels_per_wall_s": r_wall,
            "mpixels_per_cpu_s": r_cpu,
        }
    train_rows = {}
    tb_wall = rate(8 * 128 * 128, twall[128])
    tb_cpu = rate(8 * 128 * 128, tcpu[128])
    for c in crops:
        px = 8 * c * c
        r_wall, r_cpu = rate(px, twall[c]), rate(px, tcpu[c])
        rows.append((f"train step {c}^2", 8, r_wall, r_wall / tb_wall, r_cpu, r_cpu / tb_cpu))
        train_rows[f"{c}x{c} batch 8"] = {"mpixels_per_wall_s": r_wall, "mpixels_per_cpu_s": r_cpu}
    _common.table(
        ["work", "batch", "Mpx/wall s", "x ref (wall)", "Mpx/CPU s", "x ref (CPU)"], rows
    )
    print("ref: score 512^2 batch 1; train step 128^2 batch 8")
    _common.write_result(
        "scaling", {"rounds": args.rounds, "predict": predict, "train_stage1_float32": train_rows}
    )


if __name__ == "__main__":
    main()
