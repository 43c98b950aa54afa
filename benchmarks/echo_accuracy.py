"""What data echoing costs in accuracy: stage 1 trained with fresh pairs and with echoed ones.

Echoing (`pair_echo`: each pair used N times, its copies shuffled apart) makes the input
pipeline cheaper per step (see training_speed.py); the price is fewer distinct pairs.
Each run trains stage 1 from the same initial weights on the same references for the
same number of steps (the shipped recipe, shortened; early stopping off), and validates
on the same pairs of held-out references: the validation loss after each epoch and the
best model's map correlation tell how much echoing loses, and the wall time how
much it saves on this machine.

Usage: python benchmarks/echo_accuracy.py [--echo 1 4] [--steps-per-epoch 150] [--epochs 4]
"""

import argparse
import csv
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--echo", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--steps-per-epoch", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

    from diqa_tf.config import TrainingRecipe
    from diqa_tf.data import files
    from diqa_tf.training.precision import resolve_precision
    from diqa_tf.training.stage1 import train_stage1

    paths, problems = files.find_images([str(_common.DATA / "references")])
    if problems or not paths:
        sys.exit(f"references under {_common.DATA / 'references'}: {problems or 'none'}")
    references = [(str(p), files.read_image(p).numpy()) for p in paths]
    recipe = TrainingRecipe.load(_common.ROOT / "configs/shipped.toml")

    rows, results = [], {}
    for echo in args.echo:
        stage1 = dataclasses.replace(
            recipe.stage1,
            pair_echo=echo,
            steps_per_epoch=args.steps_per_epoch,
            epochs=args.epochs,
            early_stopping_patience=args.epochs,  # every run trains all its steps
        )
        run_recipe = dataclasses.replace(recipe, stage1=stage1)
        with tempfile.TemporaryDirectory() as output:
            metrics = train_stage1(references, run_recipe, output, verbose=0)
            with open(Path(output) / "stage1_log.csv", newline="") as f:
                val_loss = [float(r["val_loss"]) for r in csv.DictReader(f)]
        validation = metrics["validation"]
        rows.append(
            (echo, metrics["training_seconds"], val_loss[-1], min(val_loss),
             validation["map_plcc"])
        )
        results[f"pair_echo{echo}"] = {
            "training_seconds": metrics["training_seconds"],
            "val_loss_per_epoch": val_loss,
            "validation": validation,
            "precision": resolve_precision(stage1.precision),  # what "auto" took here
        }
        print(rows[-1], flush=True)

    _common.table(
        ["pair_echo", "training s", "final val loss", "best val loss", "best model's map PLCC"],
        rows,
    )
    _common.write_result(
        "echo_accuracy",
        {"steps_per_epoch": args.steps_per_epoch, "epochs": args.epochs,
         "references": len(references), **results},
    )


if __name__ == "__main__":
    main()
