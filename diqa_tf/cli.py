"""The `diqa` command: the only place that prints or exits.

Exit status: 0 success, 1 some inputs failed (each named on stderr), 2 usage error.
"""

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import logging
import os
import sys
import time
from pathlib import Path

from diqa_tf.errors import DIQAError

EXIT_OK, EXIT_FAILED = 0, 1  # argparse exits with 2 on usage errors


def _start_tensorflow():
    """Import TensorFlow and set up its devices with native stderr silenced.

    TF's C++ start-up lines (oneDNN notes, CUDA probes) are printed before its log
    level applies; users of a command-line tool should not have to read them.
    Python exceptions are unaffected.
    """
    if os.environ.get("DIQA_TF_LOGS"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf

            tf.config.list_logical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _StderrHandler(logging.Handler):
    """Library log lines to whatever sys.stderr is now (the CLI owns the terminal)."""

    def emit(self, record):
        print(self.format(record), file=sys.stderr)


def _setup_logging():
    logger = logging.getLogger("diqa_tf")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())


def _error(message):
    print(f"diqa: error: {message}", file=sys.stderr)


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


def cmd_train_stage1(args):
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


def cmd_train_stage2(args):
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


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _output_file(text):
    if Path(text).suffix.lower() not in (".csv", ".json"):
        raise argparse.ArgumentTypeError(f"must end in .csv or .json, got {text!r}")
    return text


def _write_atomic(path, text):
    """Write through a hidden `.partial` file and a rename: no half-written file is left."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = e.strerror or str(e)
        if isinstance(e, FileExistsError):  # mkdir met a file where a folder must be
            reason = f"{e.filename} is a file, not a folder"
        raise DIQAError(f"{path}: cannot be written ({reason})") from None


def _format_scores(rows, json_format):
    if json_format:
        return json.dumps([{"path": p, "score": s} for p, s in rows], indent=1) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "score"])
    writer.writerows((p, f"{s:.4f}") for p, s in rows)
    return buffer.getvalue()


def _quality_model(path):
    from diqa_tf.models import QualityModel
    from diqa_tf.resources import load_model

    return load_model(path, expected=QualityModel)


def cmd_predict(args):
    from diqa_tf.data import files
    from diqa_tf.inference import Scorer

    model = _quality_model(args.model)
    paths, problems = files.find_images(args.inputs)
    for item, reason in problems:
        _error(f"{item}: {reason}")
    start = time.time()
    scores, errors = Scorer(model, args.batch_size).score_files(paths)
    for error in errors:
        _error(str(error))
    rows = [(p, scores[p]) for p in paths if p in scores]
    text = _format_scores(rows, args.output and args.output.lower().endswith(".json"))
    if args.output:
        if rows:
            _write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    seconds = time.time() - start
    failed = len(errors) + len(problems)
    print(
        f"scored {len(rows)} images, {failed} failed, in {seconds:.1f} s "
        f"({len(rows) / max(seconds, 1e-9):.1f} images/s)",
        file=sys.stderr,
    )
    return EXIT_FAILED if failed else EXIT_OK


def _describe_scale(scale):
    direction = "higher" if scale.higher_is_better else "lower"
    return f"{scale.low:g}..{scale.high:g}, {direction} = better"


def cmd_evaluate(args):
    from diqa_tf.data.databases import get_database
    from diqa_tf.evaluation.evaluate import evaluate_records, predictions_flipped

    if args.csv:
        database, root = get_database("csv"), args.csv
    else:
        database, root = get_database(args.database), args.root
    records = database.load(root)
    model = _quality_model(args.model)
    if args.database:
        print(f"{database.name}: {len(records)} images, scores {_describe_scale(database.scale)}")
    if predictions_flipped(model, database.scale):
        print(
            f"predictions negated: the model's scores ({_describe_scale(model.score_scale)}) "
            f"run the other way from {database.name}'s, so a good model has positive SRCC"
        )
    result, errors = evaluate_records(model, records, args.batch_size, scale=database.scale)
    for error in errors:
        _error(str(error))
    print(f"SRCC  {result.srcc:.4f}")
    print(f"PLCC  {result.plcc:.4f}")
    print(f"KRCC  {result.krcc:.4f}")
    print(f"RMSE  {result.rmse:.4f}")
    print(f"N     {result.n}")
    if result.fit != "logistic":
        print(f"(PLCC and RMSE after a {result.fit} fit: the logistic fit did not converge)")
    return EXIT_FAILED if errors else EXIT_OK


def cmd_demo(args):
    from diqa_tf import demo
    from diqa_tf.inference import Scorer
    from diqa_tf.viz.error_maps import save_map_grid

    model = _quality_model(args.model)
    start = time.time()
    items, outputs = demo.run_demo(Scorer(model))
    table = demo.score_table(items, outputs)
    print(f"Mean predicted quality of {len(demo.DEMO_PHOTOS)} scikit-image photos "
          f"({', '.join(demo.DEMO_PHOTOS)}); higher = better")
    header = f"{'distortion':<15}{'original':>9}" + "".join(f"{'level ' + str(i):>9}" for i in range(5))
    print(header)
    for kind, row in table.items():
        print(f"{kind:<15}" + "".join(f"{v:9.1f}" for v in row))
    output = Path(args.output)
    rows = []
    for (name, kind, level, image), out in zip(items, outputs):
        shown = level in (1, 3) or (level is None and kind == demo.DEMO_DISTORTIONS[0])
        if name == demo.DEMO_PHOTOS[0] and shown:
            label = f"{name}, {kind} level {level}" if level is not None else f"{name}, original"
            rows.append({**out, "image": image, "label": f"{label}: score {out['score']:.1f}"})
    save_map_grid(rows, output / "demo_maps.png", title="DIQA: predicted maps")
    _write_atomic(
        output / "demo_scores.csv",
        "photo,distortion,level,score\n"
        + "".join(
            f"{n},{k},{'' if l is None else l},{o['score']:.4f}\n"
            for (n, k, l, _), o in zip(items, outputs)
        ),
    )
    print(f"wrote {output / 'demo_maps.png'} and {output / 'demo_scores.csv'} "
          f"({len(items)} images in {time.time() - start:.0f} s)")
    return EXIT_OK


def cmd_export(args):
    from diqa_tf.export.saved_model import export_saved_model

    model = _quality_model(args.model)
    target = Path(args.output) / str(args.version)
    if target.exists() and not args.overwrite:
        raise DIQAError(f"{target}: version {args.version} exists (use --overwrite to replace it)")
    export_saved_model(model, target, overwrite=args.overwrite)
    print(f"wrote SavedModel {target} (signatures: serving_default, predict_image)")
    return EXIT_OK


def build_parser():
    from diqa_tf.data.databases import DATABASES

    parser = argparse.ArgumentParser(
        prog="diqa", description="DIQA blind image quality prediction (Keras 3 / TensorFlow)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    s1.set_defaults(func=cmd_train_stage1)

    s2 = stages.add_parser("stage2", help="learn subjective scores from a CSV of image,mos")
    s2.add_argument("--csv", required=True, help="CSV with columns image,mos (paths relative to it)")
    s2.add_argument("--stage1", required=True, help="stage-1 model (.keras) to start from")
    s2.add_argument("--config", help="training recipe (TOML), e.g. configs/shipped.toml")
    s2.add_argument("--holdout-fraction", type=_fraction, metavar="F",
                    help="override the recipe's held-out fraction (0: train on everything)")
    s2.add_argument("--output", required=True, help="folder for the model and logs")
    s2.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    s2.add_argument("--overwrite", action="store_true", help="replace a finished model in --output")
    s2.set_defaults(func=cmd_train_stage2)

    predict = commands.add_parser("predict", help="score image files (CSV path,score)")
    predict.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    predict.add_argument("--model", help="a DIQA .keras model (default: the shipped model)")
    predict.add_argument("--batch-size", type=_positive_int, default=8,
                         help="images per batch; only images of one size share a batch")
    predict.add_argument("--output", type=_output_file,
                         help="write to FILE.csv or FILE.json instead of standard output")
    predict.set_defaults(func=cmd_predict)

    evaluate = commands.add_parser(
        "evaluate", help="SRCC, PLCC, KRCC, RMSE on a scored CSV or an IQA database"
    )
    evaluate.add_argument("--model", help="a DIQA .keras model (default: the shipped model)")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", help="CSV with columns image,mos")
    source.add_argument("--database", metavar="NAME",
                        help="an IQA database in its original layout: "
                        f"{', '.join(DATABASES)} (with --root)")
    evaluate.add_argument("--root", metavar="DIR",
                          help="the database's folder as unpacked (with --database)")
    evaluate.add_argument("--batch-size", type=_positive_int, default=8)
    evaluate.set_defaults(func=cmd_evaluate, usage_error=evaluate.error)

    demo = commands.add_parser("demo", help="score scikit-image photos at growing distortion")
    demo.add_argument("--model", help="a DIQA .keras model (default: the shipped model)")
    demo.add_argument("--output", default="demo_output", help="folder for the picture and CSV")
    demo.set_defaults(func=cmd_demo)

    export = commands.add_parser("export", help="write a SavedModel for TF Serving")
    export.add_argument("--model", help="a DIQA .keras model (default: the shipped model)")
    export.add_argument("--output", required=True, help="model folder; the version goes below it")
    export.add_argument("--version", type=_positive_int, default=1)
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    export.set_defaults(func=cmd_export)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "evaluate" and bool(args.database) != bool(args.root):
        args.usage_error("--database NAME and --root DIR go together")
    _start_tensorflow()
    _setup_logging()
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
