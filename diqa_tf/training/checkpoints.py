"""Checkpoints and saved models, never half-written.

Every file goes to a hidden `.partial` name first and is then renamed into place
(`os.replace` is atomic on one file system): a run killed at any moment leaves
either the previous file or the new one.
"""

import json
import os
import shutil
from pathlib import Path

import keras

from diqa_tf.atomic import write_atomic

STATE_FILE = "state.json"


def save_model_atomic(model, path):
    """Save a `.keras` file to a temporary name beside `path`, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.keras")
    model.save(tmp)
    os.replace(tmp, path)


class BestModel(keras.callbacks.Callback):
    """Keep the model with the lowest `monitor` at `path`; stop after `patience`
    epochs without improvement (early stopping whose state survives a restart,
    unlike keras EarlyStopping: see TrainingCheckpoint's `stateful`)."""

    def __init__(self, path, monitor="val_loss", patience=None):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.patience = patience
        self.state = {"best": float("inf"), "wait": 0}

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        if value < self.state["best"]:
            self.state = {"best": float(value), "wait": 0}
            save_model_atomic(self.model, self.path)
        else:
            self.state["wait"] += 1
            if self.patience is not None and self.state["wait"] >= self.patience:
                self.model.stop_training = True


class TrainingCheckpoint(keras.callbacks.Callback):
    """The training state in `backup_dir`, saved every `every_steps` steps and at
    each epoch end: model and optimizer weights (`step-N.weights.h5`) and
    `state.json` (the global step, and the `state` dict of each `stateful`
    callback). `state.json` is written last and names its weights file, so it
    always describes a complete checkpoint; the older weights file is then removed.
    """

    def __init__(self, backup_dir, steps_per_epoch, every_steps=100, stateful=()):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.steps_per_epoch = steps_per_epoch
        self.every_steps = every_steps
        self.stateful = list(stateful)
        self._epoch = 0

    def restore(self, model):
        """Load the latest checkpoint into `model` (and the stateful callbacks);
        returns the global step to continue from (0 when there is none)."""
        if not (self.backup_dir / STATE_FILE).exists():
            return 0
        state = json.loads((self.backup_dir / STATE_FILE).read_text())
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.backup_dir / state["weights"])
        for callback, saved in zip(self.stateful, state["callbacks"], strict=True):
            callback.state = saved
        return state["step"]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self._epoch * self.steps_per_epoch + batch + 1
        # The last step of an epoch is saved by on_epoch_end, after validation and
        # the stateful callbacks have seen the epoch.
        if step % self.every_steps == 0 and batch + 1 < self.steps_per_epoch:
            self._save(step)

    def on_epoch_end(self, epoch, logs=None):
        self._save((epoch + 1) * self.steps_per_epoch)

    def _save(self, step):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"step-{step:09d}.weights.h5"
        tmp = self.backup_dir / f".partial-{name}"
        self.model.save_weights(tmp)
        os.replace(tmp, self.backup_dir / name)
        state = {"step": step, "weights": name, "callbacks": [c.state for c in self.stateful]}
        write_atomic(self.backup_dir / STATE_FILE, json.dumps(state))
        for old in self.backup_dir.glob("step-*.weights.h5"):
            if old.name != name:
                old.unlink()

    def remove(self):
        """Delete the checkpoints (after a finished run)."""
        shutil.rmtree(self.backup_dir, ignore_errors=True)
