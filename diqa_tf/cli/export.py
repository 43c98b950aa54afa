"""`diqa export`: a versioned SavedModel for TF Serving."""

from pathlib import Path

from diqa_tf.cli.common import EXIT_OK, add_model_option, positive_int, quality_model
from diqa_tf.errors import DIQAError


def run(args):
    from diqa_tf.export.saved_model import export_saved_model

    model = quality_model(args.model)
    target = Path(args.output) / str(args.version)
    if target.exists() and not args.overwrite:
        raise DIQAError(f"{target}: version {args.version} exists (use --overwrite to replace it)")
    export_saved_model(model, target, overwrite=args.overwrite)
    print(f"wrote SavedModel {target} (signatures: serving_default, predict_image)")
    return EXIT_OK


def register(commands):
    export = commands.add_parser("export", help="write a SavedModel for TF Serving")
    add_model_option(export)
    export.add_argument("--output", required=True, help="model folder; the version goes below it")
    export.add_argument("--version", type=positive_int, default=1)
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    export.set_defaults(func=run)
