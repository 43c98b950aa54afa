"""`diqa train`'s output where Keras' progress bar does not belong: one line an epoch.

Keras' bar redraws itself with ANSI escapes and, in a file, leaves a line a step; a
run started with `nohup diqa train ... > log` (or `--quiet`) gets instead

    epoch 3/20: 92 steps in 41.2 s; loss 0.0123, val_loss 0.0140

with whatever the epoch logged (stage 2 adds holdout_srcc and holdout_plcc).
"""

import sys
import time

import keras


class EpochLines(keras.callbacks.Callback):
    """Prints one plain line per epoch to `stream` (default: standard output).

    Put it after the callbacks that add to the epoch logs, so their values are in it.
    """

    def __init__(self, epochs, stream=None):
        super().__init__()
        self.epochs = epochs
        self.stream = stream or sys.stdout
        self._start = None
        self._steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.monotonic()
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.monotonic() - self._start
        metrics = ", ".join(f"{name} {value:.4g}" for name, value in (logs or {}).items())
        print(
            f"epoch {epoch + 1}/{self.epochs}: {self._steps} steps in {seconds:.1f} s"
            + (f"; {metrics}" if metrics else ""),
            file=self.stream,
            flush=True,
        )


def plain_lines(quiet, stream=None):
    """True where training should print EpochLines instead of Keras' progress bar:
    with --quiet, or when standard output is not a terminal (a file, a pipe)."""
    stream = stream or sys.stdout
    try:
        return quiet or not stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return True
