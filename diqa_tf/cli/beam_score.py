"""`diqa beam-score`: score every image matching a glob on Apache Beam, into CSV shards.

Options this command does not define (--project, --region, --temp_location,
--direct_num_workers, ...) are Beam pipeline options and go to the pipeline
unchanged, as in any Beam program; docs/beam.md has the commands for Dataflow,
Flink and Spark.
"""

import argparse
import logging
import os
import sys
import time

from diqa_tf.cli.common import EXIT_FAILED, EXIT_OK, error, positive_int, whole_number
from diqa_tf.cli.progress import summary_line
from diqa_tf.errors import ConfigError, DIQAError, ModelError, first_line


def run(args):
    flags = [f"--runner={args.runner}", *args.pipeline_args]
    if not os.environ.get("DIQA_TF_LOGS"):
        flags += _quiet_logs(args.runner, args.pipeline_args)
    try:
        import apache_beam as beam
        from apache_beam.io.filesystems import FileSystems

        from diqa_tf import beam as diqa_beam
    except ImportError as e:
        raise DIQAError(
            f"beam-score needs Apache Beam ({e.name} is not installed): "
            "pip install 'diqa-tf[beam]'"
        ) from None
    options = diqa_beam.pipeline_options(flags)
    _check_input(FileSystems, args.input)
    if args.model:
        _check_model(FileSystems, args.model)
    else:
        diqa_beam.default_saved_model()  # fail here, not on every worker
    try:
        pipeline = beam.Pipeline(options=options)
    except ValueError as e:  # an unknown runner
        raise ConfigError(f"--runner {args.runner}: {first_line(e)}") from None
    diqa_beam.score_to_csv(
        pipeline, args.input, args.output, args.model, args.batch_size, args.num_shards
    )
    start = time.time()
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except Exception as e:  # runners raise many types; the user needs one line
        raise DIQAError(f"pipeline failed: {first_line(e)}") from None
    seconds = time.time() - start
    scored, failed = diqa_beam.counts(result)
    if failed:
        error(f"{failed} images could not be scored; see {args.output}-errors-*.csv")
    print(f"{summary_line('scored', scored, failed, seconds)}; wrote {args.output}-*.csv",
          file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _quiet_logs(runner, pipeline_args):
    """Keep Beam's and TF's log lines off the terminal; returns flags to add.

    Beam logs through the root logger, which its import would set up (basicConfig),
    and local worker processes log at INFO and start TF; their lines would bury
    the command's own. Failures still reach the user, as exceptions. On remote
    runners worker logs go to the runner's log service and are left alone.
    DIQA_TF_LOGS=1 shows everything.
    """
    logging.getLogger().addHandler(logging.NullHandler())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # inherited by local workers
    if runner == "DirectRunner" and not any(
        flag.startswith("--default_sdk_harness_log_level") for flag in pipeline_args
    ):
        return ["--default_sdk_harness_log_level=ERROR"]
    return []


def _check_input(filesystems, pattern):
    """Refuse a glob that matches nothing before starting workers (one listing call)."""
    try:
        (match,) = filesystems.match([pattern], limits=[1])
    except Exception as e:  # BeamIOError, or ValueError for a scheme with no filesystem
        raise DIQAError(f"{pattern}: cannot be listed ({first_line(e)})") from None
    if not match.metadata_list:
        raise DIQAError(f"{pattern}: pattern matches no file")


def _check_model(filesystems, path):
    try:
        found = filesystems.exists(filesystems.join(path, "saved_model.pb"))
    except Exception as e:
        raise ModelError(f"{path}: cannot be read ({first_line(e)})") from None
    if not found:
        hint = " (`diqa export` turns a .keras model into one)" if path.endswith(".keras") else ""
        raise ModelError(f"{path}: not a SavedModel folder (no saved_model.pb){hint}")


def _shard_count(text):
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (the runner chooses) or more, got {value}")
    return value


def _pass_unknown_options(parser):
    """Keep the options `parser` does not define in `args.pipeline_args`.

    argparse would refuse them; Beam programs take their pipeline options from the
    same command line, and `pipeline_options` refuses the ones Beam does not know.
    """
    parse_known_args = parser.parse_known_args

    def parse_keeping_unknown(args=None, namespace=None):
        namespace, unknown = parse_known_args(args, namespace)
        namespace.pipeline_args = unknown
        return namespace, []

    parser.parse_known_args = parse_keeping_unknown


def register(commands):
    parser = commands.add_parser(
        "beam-score",
        help="score images on Apache Beam (DirectRunner, Dataflow, Flink, Spark)",
        epilog="Other options are Beam pipeline options (--project, --temp_location, "
        "--direct_num_workers, ...); see docs/beam.md.",
    )
    parser.add_argument("--input", required=True, metavar="GLOB",
                        help="image files: a glob on any Beam filesystem (local, gs://, ...)")
    parser.add_argument("--output", required=True, metavar="PREFIX",
                        help="writes PREFIX-SSSSS-of-NNNNN.csv (path,score) and "
                        "PREFIX-errors-SSSSS-of-NNNNN.csv (path,reason)")
    parser.add_argument("--model", metavar="SAVEDMODEL_DIR",
                        help="a SavedModel folder from `diqa export` (default: the shipped model)")
    parser.add_argument("--runner", default="DirectRunner",
                        help="Beam runner: DirectRunner (default), DataflowRunner, "
                        "FlinkRunner, SparkRunner, PortableRunner")
    parser.add_argument("--batch-size", type=positive_int, default=8,
                        help="images per model call; sizes may differ within a batch")
    parser.add_argument("--num-shards", type=_shard_count, default=0,
                        help="output files per set (default 0: the runner chooses)")
    _pass_unknown_options(parser)
    parser.set_defaults(func=run)
