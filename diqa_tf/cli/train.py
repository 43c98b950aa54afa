"""`diqa train stage1|stage2`."""

import dataclasses
from pathlib import Path

from diqa_tf.cli.common import EXIT_OK, fraction
from diqa_tf.errors import DIQAError


def _load_recipe(path):
    from diqa_tf.config import TrainingRecipe

    return TrainingRecipe.load(path) if path else TrainingRecipe()


def _load_references(folders, with_skimage_photos):
    from diqa_tf.data import files

    references = []
    paths, problems = files.find_images(folders)
    if problems:
        item, reason = problems[0]
        raise DIQAError(f"{item}: {reason}")
    for path in paths:
        references.append((str(path), files.read_image(path).numpy()))
    if with_skimage_photos:
        references.extend(files.skimage_photos())
    if not references:
        raise DIQAError("no reference images: give --references DIR or --with-skimage-photos")
    return references


def _check_training_output(output, model_name, overwrite):
    """Refuse to replace a finished model; an interrupted run (backup/) resumes."""
    output = Path(output)
    if (output / model_name).exists() and not (output / "backup").exists() and not overwrite:
        raise DIQAError(
            f"{output / model_name}: a finished model is there; use --overwrite to train anew"
        )


def run_stage1(args):
    from diqa_tf.training.stage1 import train_stage1

    _check_training_output(args.output, "stage1.keras", args.overwrite)
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


def run_stage2(args):
    from diqa_tf.training.stage2 import train_stage2

    _check_training_output(args.output, "stage2.keras", args.overwrite)
    recipe = _load_recipe(args.config)
    if args.holdout_fraction is not None:
        stage2 = dataclasses.replace(recipe.stage2, holdout_fraction=args.holdout_fraction)
        recipe = dataclasses.replace(recipe, stage2=stage2)
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


def register(commands):
    train = commands.add_parser(
        "train",
        help="train stage 1 or stage 2",
        description="Train a stage. Checkpoints go to OUTPUT/backup; run the same command "
        "again to resume an interrupted run.",
    )
    stages = train.add_subparsers(dest="stage", required=True, metavar="STAGE")
    s1 = stages.add_parser("stage1", help="learn objective error maps from synthetic pairs")
    s1.add_argument("--references", nargs="*", default=[], metavar="DIR",
                    help="folders (or files, globs) of pristine reference images")
    s1.add_argument("--with-skimage-photos", action="store_true",
                    help="add the natural photos bundled with scikit-image")
    s1.add_argument("--config", help="training recipe (TOML), e.g. configs/shipped.toml")
    s1.add_argument("--output", required=True, help="folder for the model and logs")
    s1.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    s1.add_argument("--overwrite", action="store_true", help="replace a finished model in --output")
    s1.set_defaults(func=run_stage1)

    s2 = stages.add_parser("stage2", help="learn subjective scores from a CSV of image,mos")
    s2.add_argument("--csv", required=True, help="CSV with columns image,mos (paths relative to it)")
    s2.add_argument("--stage1", required=True, help="stage-1 model (.keras) to start from")
    s2.add_argument("--config", help="training recipe (TOML), e.g. configs/shipped.toml")
    s2.add_argument("--holdout-fraction", type=fraction, metavar="F",
                    help="override the recipe's held-out fraction (0: train on everything)")
    s2.add_argument("--output", required=True, help="folder for the model and logs")
    s2.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    s2.add_argument("--overwrite", action="store_true", help="replace a finished model in --output")
    s2.set_defaults(func=run_stage2)
