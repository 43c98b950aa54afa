"""Saving models without ever leaving a half-written file."""

import os
from pathlib import Path

import keras


def save_model_atomic(model, path):
    """Save a `.keras` file to a temporary name beside `path`, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.keras")
    model.save(tmp)
    os.replace(tmp, path)


class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Keep the model with the lowest `monitor` at `path`, written atomically."""

    def __init__(self, path, monitor="val_loss"):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.best = float("inf")

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best = value
            save_model_atomic(self.model, self.path)
