"""The `diqa` command: the only place that prints or exits.

Each subcommand lives in its own module with a `register(commands)` function that
adds its parser and sets `func`; COMMANDS lists them in the order `--help` shows.
Exit status: 0 success, 1 some inputs failed (each named on stderr), 2 usage error.
"""

import argparse
import importlib
import logging
import os
import sys

from diqa_tf.cli.common import EXIT_FAILED, error
from diqa_tf.cli.native_stderr import discarded
from diqa_tf.errors import DIQAError

COMMANDS = (
    "train", "predict", "evaluate", "explain", "benchmark", "folds", "demo", "export", "convert",
    "remote", "beam-score", "spark-score",
)


def _start_tensorflow():
    """Import TensorFlow and set up its devices with native stderr silenced.

    TF's C++ start-up lines (oneDNN notes, CUDA probes) are printed before its log
    level applies; users of a command-line tool should not have to read them.
    Python exceptions are unaffected.
    """
    if os.environ.get("DIQA_TF_LOGS"):
        return
    with discarded(2):
        import tensorflow as tf

        # With TF_CONFIG, `diqa train` starts a MultiWorkerMirroredStrategy, which
        # needs a TensorFlow runtime that has not started yet.
        if not os.environ.get("TF_CONFIG"):
            tf.config.list_logical_devices()


class _StderrHandler(logging.Handler):
    """Library log lines to whatever sys.stderr is now (the CLI owns the terminal)."""

    def emit(self, record):
        print(self.format(record), file=sys.stderr)


def _setup_logging():
    logger = logging.getLogger("diqa_tf")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())


def build_parser():
    parser = argparse.ArgumentParser(
        prog="diqa", description="DIQA blind image quality prediction (Keras 3 / TensorFlow)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"diqa_tf.cli.{name.replace('-', '_')}").register(commands)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    _start_tensorflow()
    _setup_logging()
    try:
        return args.func(args)
    except DIQAError as e:
        error(str(e))
        return EXIT_FAILED
    except KeyboardInterrupt:
        error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
