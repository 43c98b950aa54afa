"""`diqa predict`: score image files into a CSV or JSON of path,score."""

import csv
import io
import json
import sys

from diqa_tf.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_model_option,
    error,
    output_file,
    positive_int,
    quality_model,
    write_atomic,
)
from diqa_tf.cli.native_stderr import silence_native_stderr
from diqa_tf.cli.progress import Progress, add_quiet_option


def format_scores(rows, json_format):
    """The text of `path,score` rows, as CSV (4 decimals) or as a JSON list."""
    if json_format:
        return json.dumps([{"path": p, "score": s} for p, s in rows], indent=1) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "score"])
    writer.writerows((p, f"{s:.4f}") for p, s in rows)
    return buffer.getvalue()


def write_scores(paths, scores, errors, output):
    """Name each failed file, then write the scored rows to `output` or stdout.

    `output` (FILE.csv or FILE.json) is written only when some image was scored, and
    atomically. Returns the rows, in the order of `paths`.
    """
    for problem in errors:
        error(str(problem))
    rows = [(p, scores[p]) for p in paths if p in scores]
    text = format_scores(rows, output and output.lower().endswith(".json"))
    if output:
        if rows:
            write_atomic(output, text)
    else:
        sys.stdout.write(text)
    return rows


def run(args):
    from diqa_tf.data import files
    from diqa_tf.inference import Scorer

    model = quality_model(args.model)
    paths, problems = files.find_images(args.inputs)
    for item, reason in problems:
        error(f"{item}: {reason}")
    with Progress(len(paths), "scoring", quiet=args.quiet) as progress:
        scores, errors = Scorer(model, args.batch_size, precision=args.precision).score_files(paths, progress.update)
    if args.clip:
        scale = model.get_layer("score_mapping").scale
        scores = {path: scale.clip(score) for path, score in scores.items()}
    rows = write_scores(paths, scores, errors, args.output)
    failed = len(errors) + len(problems)
    progress.summary("scored", len(rows), failed)
    return EXIT_FAILED if failed else EXIT_OK


def register(commands):
    predict = commands.add_parser("predict", help="score image files (CSV path,score)")
    predict.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    add_model_option(predict)
    predict.add_argument("--batch-size", type=positive_int, default=8,
                         help="images per batch; only images of one size share a batch")
    predict.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                         help="bfloat16 runs the convolutions about 3x faster on CPUs with "
                         "AVX-512 BF16/AMX, with the same ranking (see BENCHMARKS.md)")
    predict.add_argument("--clip", action="store_true",
                         help="clip scores to the model's scale (the shipped model: 0-100). "
                         "Scores beyond it mean images unlike the training data; clipped, "
                         "they tie at the scale's ends (see README)")
    predict.add_argument("--output", type=output_file,
                         help="write to FILE.csv or FILE.json instead of standard output")
    add_quiet_option(predict)
    predict.set_defaults(func=silence_native_stderr(run))
