"""`diqa explain`: a picture per image of its score, error map and quality map."""

from pathlib import Path

from diqa_tf.cli.common import EXIT_FAILED, EXIT_OK, add_model_option, error, quality_model
from diqa_tf.cli.native_stderr import silence_native_stderr
from diqa_tf.cli.progress import Progress, add_quiet_option
from diqa_tf.errors import InvalidImageError


def picture_names(paths):
    """`NAME_explained.png` per image; a repeated name gets `-2`, `-3`, ...

    The suffix keeps a picture from overwriting its image when --output is the
    image's own folder.
    """
    names, seen = [], {}
    for path in paths:
        stem = Path(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(f"{stem}_explained.png" if seen[stem] == 1
                     else f"{stem}-{seen[stem]}_explained.png")
    return names


def run(args):
    from diqa_tf.data import files
    from diqa_tf.explain import Explainer
    from diqa_tf.models import ErrorMapModel
    from diqa_tf.resources import DEFAULT_STAGE1_MODEL, default_model_path, load_model
    from diqa_tf.viz.explain import save_explanation
    from diqa_tf.viz.figures import check_folder, pyplot

    pyplot()  # a missing [viz] extra or a bad --output fail before any work
    output = Path(args.output)
    check_folder(output)
    model = quality_model(args.model)
    stage1 = None
    if args.error_map == "stage1":
        stage1 = load_model(args.stage1 or default_model_path(DEFAULT_STAGE1_MODEL),
                            expected=ErrorMapModel)
    config = model.preprocessing_config
    explainer = Explainer(model, stage1)
    reference = None
    if args.reference:
        reference = files.read_image(
            args.reference, config.min_size, files.WHOLE_IMAGE_MAX_PIXELS
        )

    paths, problems = files.find_images(args.inputs)
    for item, reason in problems:
        error(f"{item}: {reason}")
    with Progress(len(paths), "explaining", quiet=args.quiet) as progress:
        for path, name in zip(paths, picture_names(paths)):
            try:
                image = files.read_image(path, config.min_size, files.WHOLE_IMAGE_MAX_PIXELS)
                result = explainer.explain(image, reference, name=path)
            except InvalidImageError as e:
                with progress.paused():
                    error(str(e))
                progress.update(1, failed=1)
                continue
            written = save_explanation(result, output / name, Path(path).name,
                                       config.output_stride)
            with progress.paused():
                print(written, flush=True)
            progress.update(1)
    failed = progress.failed + len(problems)
    progress.summary("explained", failed=failed)
    return EXIT_FAILED if failed else EXIT_OK


def register(commands):
    explain = commands.add_parser(
        "explain", help="pictures of each image's predicted error and quality maps"
    )
    explain.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files, folders or globs")
    add_model_option(explain)
    explain.add_argument("--output", required=True, metavar="DIR",
                         help="folder for the pictures (NAME_explained.png per image)")
    explain.add_argument("--reference", metavar="REF",
                         help="the pristine image every IMAGE is a distorted copy of (same "
                         "size): adds the true error map and the reliability map")
    explain.add_argument("--error-map", choices=("stage1", "model"), default="stage1",
                         help="where the predicted error map comes from: the stage-1 model "
                         "(default; faithful) or the quality model's own head (drifts in "
                         "stage 2, see saved_models/README.md)")
    explain.add_argument("--stage1", metavar="PATH",
                         help="the stage-1 .keras model for --error-map stage1 "
                         "(default: the shipped diqa_stage1.keras)")
    add_quiet_option(explain)
    explain.set_defaults(func=silence_native_stderr(run))
