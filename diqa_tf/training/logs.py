"""Training logs: TensorBoard (OUTPUT/tensorboard), the CSV, and the held-out
correlations they show.

Ours rather than keras.callbacks.TensorBoard, which depends on `fit` internals
(its train counters) that our loop (distributed_loop) does not have, and rather
than keras.callbacks.CSVLogger, which adds empty `val_*` columns to runs without
validation.
"""

import csv
import importlib.util
import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from diqa_tf.errors import DatasetError
from diqa_tf.evaluation.metrics import correlations
from diqa_tf.inference import Scorer
from diqa_tf.models import QualityModel
from diqa_tf.training.precision import as_float32

logger = logging.getLogger(__name__)


class EpochSummaries(keras.callbacks.Callback):
    """Every number in the epoch logs as a scalar (tag = its name, step = epoch),
    the training loss every `every_steps` steps (tag `batch_loss`), and, with
    `sample` ({"image"}, {"error_map"}: one stage-1 example), the predicted and
    true error maps side by side (tag `error_map`, each scaled to [0, 1])."""

    def __init__(self, log_dir, steps_per_epoch, every_steps=10, sample=None):
        super().__init__()
        # tf.summary needs the tensorboard package, which TF 2.21 no longer pulls in.
        self.writer = None
        if importlib.util.find_spec("tensorboard"):
            self.writer = tf.summary.create_file_writer(str(log_dir))
        else:
            logger.warning("no TensorBoard logs: `pip install tensorboard` to get them")
        self.steps_per_epoch = steps_per_epoch
        self.every_steps = every_steps
        self.sample = sample
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self._epoch * self.steps_per_epoch + batch + 1
        if self.writer and logs and "loss" in logs and step % self.every_steps == 0:
            with self.writer.as_default(step=step):
                tf.summary.scalar("batch_loss", logs["loss"])

    def on_epoch_end(self, epoch, logs=None):
        if not self.writer:
            return
        with self.writer.as_default(step=epoch + 1):
            for name, value in (logs or {}).items():
                tf.summary.scalar(name, value)
            if self.sample is not None:
                tf.summary.image("error_map", self._error_map_image())
        self.writer.flush()

    def _error_map_image(self):
        inputs, targets = self.sample
        predicted = tf.nn.relu(self.model(inputs, training=False)["error_map"][:1])
        true = targets["error_map"][:1]
        scale = lambda m: m / tf.maximum(tf.reduce_max(m), 1e-6)  # noqa: E731
        return tf.concat([scale(tf.cast(predicted, tf.float32)), scale(true)], axis=2)

    def on_train_end(self, logs=None):
        if self.writer:
            self.writer.close()


class EpochCSV(keras.callbacks.Callback):
    """One row per epoch: `epoch` and the epoch logs, columns in sorted order.
    With `append`, rows go after those already in the file (a resumed run)."""

    def __init__(self, path, append=False):
        super().__init__()
        self.path = Path(path)
        if not append:
            self.path.unlink(missing_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        keys = sorted(logs or {})
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["epoch", *keys])
            writer.writerow([epoch, *(logs[k] for k in keys)])


class HoldoutCorrelations(keras.callbacks.Callback):
    """Adds `holdout_srcc` and `holdout_plcc` (whole held-out images, float32
    model) to each epoch's logs; place it before the callbacks that read them."""

    def __init__(self, paths, targets):
        super().__init__()
        self.paths = list(paths)
        self.targets = np.asarray(targets, np.float64)

    def on_epoch_end(self, epoch, logs=None):
        try:
            held = correlations(score_paths(self.model, self.paths), self.targets)
            logs["holdout_srcc"], logs["holdout_plcc"] = held.srcc, held.plcc
        except ValueError as e:  # e.g. a diverged model's NaN scores: log, keep training
            logger.warning("epoch %d: no held-out correlations: %s", epoch + 1, e)
            logs["holdout_srcc"] = logs["holdout_plcc"] = float("nan")


def score_paths(model, paths):
    """Predicted scores of the image files `paths` (a float32 copy of `model`)."""
    scores, errors = Scorer(as_float32(model, QualityModel)).score_files(paths)
    if errors:
        raise DatasetError("; ".join(str(e) for e in errors[:3]))
    return np.array([scores[p] for p in paths])
