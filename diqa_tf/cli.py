"""The `diqa` command: the only place that prints or exits.

Exit status: 0 success, 1 some inputs failed (each named on stderr), 2 usage error.
"""

import argparse
import logging
import sys
from pathlib import Path

from diqa_tf.errors import DIQAError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _error(message):
    print(f"diqa: error: {message}", file=sys.stderr)


def _load_recipe(path):
    from diqa_tf.config import TrainingRecipe

    return TrainingRecipe.load(path) if path else TrainingRecipe()


def _load_references(folders, with_skimage_photos):
    from diqa_tf.data import files

    references = []
    paths, problems = files.find_images(folders)
    for item, reason in problems:
        raise DIQAError(f"{item}: {reason}")
    for path in paths:
        references.append((str(path), files.read_image(path).numpy()))
    if with_skimage_photos:
        references.extend(files.skimage_photos())
    if not references:
        raise DIQAError("no reference images: give --references DIR or --with-skimage-photos")
    return references


def cmd_train_stage1(args):
    from diqa_tf.training.stage1 import train_stage1

    recipe = _load_recipe(args.config)
    references = _load_references(args.references, args.with_skimage_photos)
    print(f"stage 1: {len(references)} reference images -> {args.output}", flush=True)
    metrics = train_stage1(references, recipe, args.output, verbose=2 if args.quiet else 1)
    v = metrics["validation"]
    print(
        f"stage 1 done in {metrics['training_seconds']:.0f} s: on unseen references "
        f"weighted MSE {v['weighted_mse']:.4f}, map PLCC {v['map_plcc']:.3f} "
        f"({v['maps']} maps); model: {Path(args.output) / 'stage1.keras'}"
    )
    return EXIT_OK


def cmd_train_stage2(args):
    from diqa_tf.training.stage2 import train_stage2

    recipe = _load_recipe(args.config)
    metrics = train_stage2(
        args.csv, args.stage1, recipe, args.output, verbose=2 if args.quiet else 1
    )
    held = metrics.get("holdout")
    summary = f"stage 2 done in {metrics['training_seconds']:.0f} s"
    if held:
        summary += (
            f": held out ({held['n']} images) SRCC {held['srcc']:.3f}, PLCC {held['plcc']:.3f}"
        )
    print(f"{summary}; model: {Path(args.output) / 'stage2.keras'}")
    return EXIT_OK


def build_parser():
    parser = argparse.ArgumentParser(
        prog="diqa", description="DIQA blind image quality prediction (Keras 3 / TensorFlow)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train stage 1 or stage 2")
    stages = train.add_subparsers(dest="stage", required=True, metavar="STAGE")
    s1 = stages.add_parser("stage1", help="learn objective error maps from synthetic pairs")
    s1.add_argument("--references", nargs="*", default=[], metavar="DIR",
                    help="folders (or files, globs) of pristine reference images")
    s1.add_argument("--with-skimage-photos", action="store_true",
                    help="add the natural photos bundled with scikit-image")
    s1.add_argument("--config", help="training recipe (TOML), e.g. configs/shipped.toml")
    s1.add_argument("--output", required=True, help="folder for the model and logs")
    s1.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    s1.set_defaults(func=cmd_train_stage1)

    s2 = stages.add_parser("stage2", help="learn subjective scores from a CSV of image,mos")
    s2.add_argument("--csv", required=True, help="CSV with columns image,mos (paths relative to it)")
    s2.add_argument("--stage1", required=True, help="stage-1 model (.keras) to start from")
    s2.add_argument("--config", help="training recipe (TOML), e.g. configs/shipped.toml")
    s2.add_argument("--output", required=True, help="folder for the model and logs")
    s2.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    s2.set_defaults(func=cmd_train_stage2)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.func(args)
    except DIQAError as e:
        _error(str(e))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
