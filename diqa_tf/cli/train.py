"""`diqa train stage1|stage2`."""

import argparse
import dataclasses
from pathlib import Path

from diqa_tf.cli.common import EXIT_OK, fraction, positive_int
from diqa_tf.errors import DIQAError

CHECKPOINT_EVERY = 100  # as diqa_tf.training.runner; not imported: keeps --help fast


def _load_recipe(path):
    from diqa_tf.config import TrainingRecipe

    return TrainingRecipe.load(path) if path else TrainingRecipe()


def _load_references(folders, with_skimage_photos):
    from diqa_tf.data import files

    references = files.read_photos(folders)
    if with_skimage_photos:
        references.extend(files.skimage_photos())
    if not references:
        raise DIQAError("no reference images: give --references DIR or --with-skimage-photos")
    return references


def _check_training_output(output, model_name, resume, overwrite):
    """Resume only when asked, and never replace a finished model unasked."""
    output = Path(output)
    backup = output / "backup" / "state.json"
    if resume and overwrite:
        raise DIQAError("--resume and --overwrite exclude each other")
    if resume and not backup.exists():
        raise DIQAError(f"{output / 'backup'}: no checkpoint to resume from")
    if backup.exists() and not (resume or overwrite):
        raise DIQAError(
            f"{output / 'backup'}: an interrupted run's checkpoint is there; "
            "use --resume to continue it or --overwrite to train anew"
        )
    if (output / model_name).exists() and not (resume or overwrite):
        raise DIQAError(
            f"{output / model_name}: a finished model is there; use --overwrite to train anew"
        )


def _training_setup(args, stage):
    """The strategy (made first: MultiWorkerMirroredStrategy needs a fresh runtime)
    and the recipe with the command-line overrides of `stage` ("stage1"/"stage2")."""
    import tensorflow as tf

    from diqa_tf.training.distribute import make_strategy

    strategy = make_strategy(args.devices)
    recipe = _load_recipe(args.config)
    overrides = {}
    if args.precision:
        overrides["precision"] = args.precision
    if args.seed is not None:
        overrides["seed"] = args.seed
        # Bit-for-bit repeatable runs: deterministic kernels (slower on GPU).
        tf.config.experimental.enable_op_determinism()
    if getattr(args, "holdout_fraction", None) is not None:
        overrides["holdout_fraction"] = args.holdout_fraction
    section = dataclasses.replace(getattr(recipe, stage), **overrides)
    return strategy, dataclasses.replace(recipe, **{stage: section})


def _training_options(args, strategy, epochs):
    """Keras' progress bar on a terminal; elsewhere (a log file) or with --quiet, one
    plain line an epoch (EpochLines) instead."""
    from diqa_tf.cli.epoch_lines import EpochLines, plain_lines

    plain = plain_lines(args.quiet)
    return dict(
        verbose=0 if plain else 1,
        callbacks=[EpochLines(epochs)] if plain else [],
        strategy=strategy,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
    )


def run_stage1(args):
    from diqa_tf.training.stage1 import train_stage1

    _check_training_output(args.output, "stage1.keras", args.resume, args.overwrite)
    strategy, recipe = _training_setup(args, "stage1")
    references = _load_references(args.references, args.with_skimage_photos)
    print(
        f"stage 1: {len(references)} reference images, {strategy.num_replicas_in_sync} "
        f"replica(s) -> {args.output}",
        flush=True,
    )
    metrics = train_stage1(
        references, recipe, args.output,
        **_training_options(args, strategy, recipe.stage1.epochs),
    )
    v = metrics["validation"]
    print(
        f"stage 1 done in {metrics['training_seconds']:.0f} s: on unseen references "
        f"weighted MSE {v['weighted_mse']:.4f}, map PLCC {v['map_plcc']:.3f} "
        f"({v['maps']} maps); model: {Path(args.output) / 'stage1.keras'}"
    )
    return EXIT_OK


def run_stage2(args):
    from diqa_tf.data import files
    from diqa_tf.training.stage2 import train_stage2

    _check_training_output(args.output, "stage2.keras", args.resume, args.overwrite)
    strategy, recipe = _training_setup(args, "stage2")
    print(
        f"stage 2: {strategy.num_replicas_in_sync} replica(s) -> {args.output}", flush=True
    )
    metrics = train_stage2(
        args.csv, args.stage1, recipe, args.output,
        ranking_references=files.read_photos(args.ranking_references),
        **_training_options(args, strategy, recipe.stage2.epochs),
    )
    held = metrics.get("holdout")
    summary = f"stage 2 done in {metrics['training_seconds']:.0f} s"
    if held:
        summary += (
            f": held out ({held['n']} images) SRCC {held['srcc']:.3f}, PLCC {held['plcc']:.3f}"
        )
    print(f"{summary}; model: {Path(args.output) / 'stage2.keras'}")
    return EXIT_OK


def _devices(text):
    from diqa_tf.training.distribute import parse_devices

    try:
        return parse_devices(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e}, got {text!r}") from None


def _add_training_options(parser):
    """The options both stages share: output, resumption, devices, precision, seed."""
    from diqa_tf.config import PRECISIONS

    parser.add_argument("--config", help="training recipe (TOML), e.g. configs/shipped.toml")
    parser.add_argument("--output", required=True, help="folder for the model and logs")
    parser.add_argument("--quiet", action="store_true",
                        help="one line per epoch, no progress bar (also the default when "
                        "standard output is not a terminal, e.g. a log file)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a finished model (or an interrupted run) in --output")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run whose checkpoint is in OUTPUT/backup")
    parser.add_argument("--checkpoint-every", type=positive_int, default=CHECKPOINT_EVERY,
                        metavar="N", help="checkpoint every N steps, and at each epoch end "
                        f"(default {CHECKPOINT_EVERY})")
    parser.add_argument("--devices", type=_devices, metavar="N|LIST",
                        help="train on N local devices or on a list such as GPU:0,GPU:1 "
                        "(MirroredStrategy; default: all GPUs, else the CPU). With TF_CONFIG "
                        "set, the workers of that cluster train together instead")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="override the recipe's precision (mixed_float16: GPUs; "
                        "mixed_bfloat16: CPUs with AVX-512 BF16 or AMX, and GPUs from "
                        "compute capability 8.0; auto: mixed_bfloat16 where the hardware "
                        "has it, else float32); saved models are float32")
    parser.add_argument("--seed", type=int,
                        help="override the recipe's seed and use deterministic ops: "
                        "repeated runs on the same machine give identical weights")


def register(commands):
    train = commands.add_parser(
        "train",
        help="train stage 1 or stage 2",
        description="Train a stage. Checkpoints go to OUTPUT/backup (every "
        "--checkpoint-every steps and at each epoch end); continue an interrupted run "
        "with --resume. TensorBoard logs: OUTPUT/tensorboard.",
    )
    stages = train.add_subparsers(dest="stage", required=True, metavar="STAGE")
    s1 = stages.add_parser("stage1", help="learn objective error maps from synthetic pairs")
    s1.add_argument("--references", nargs="*", default=[], metavar="DIR",
                    help="folders (or files, globs) of pristine reference images")
    s1.add_argument("--with-skimage-photos", action="store_true",
                    help="add the natural photos bundled with scikit-image")
    _add_training_options(s1)
    s1.set_defaults(func=run_stage1)

    s2 = stages.add_parser("stage2", help="learn subjective scores from a CSV of image,mos")
    s2.add_argument("--csv", required=True, help="CSV with columns image,mos (paths relative to it)")
    s2.add_argument("--stage1", required=True, help="stage-1 model (.keras) to start from")
    s2.add_argument("--holdout-fraction", type=fraction, metavar="F",
                    help="override the recipe's held-out fraction (0: train on everything)")
    s2.add_argument("--ranking-references", nargs="+", default=[], metavar="DIR",
                    help="folders (or files, globs) of pristine photos for the recipe's "
                    "stage2.reference_ranking_weight (a distorted crop must score below "
                    "its original), stage2.error_map_weight (stage 1's loss on pairs "
                    "made from them) and stage2.ladder_weight")
    _add_training_options(s2)
    s2.set_defaults(func=run_stage2)
