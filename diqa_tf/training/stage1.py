"""Stage-1 training: error maps from synthetic pairs, with early stopping by content."""

import json
import logging
import time
from pathlib import Path

import keras
import numpy as np

from diqa_tf.config import TrainingRecipe
from diqa_tf.data import stage1 as stage1_data
from diqa_tf.errors import DatasetError
from diqa_tf.evaluation.maps import error_map_quality
from diqa_tf.models import ErrorMapModel
from diqa_tf.training.checkpoints import AtomicBestCheckpoint, save_model_atomic
from diqa_tf.training.precision import as_float32, precision_policy

logger = logging.getLogger(__name__)


def split_references(names, fraction, seed):
    """Content-disjoint split of reference indices: (train, validation).

    With `fraction > 0` both sides get at least one reference.
    """
    if fraction > 0 and len(names) < 2:
        raise DatasetError(
            f"stage 1 needs at least 2 usable references (one for validation); got {len(names)}"
        )
    order = np.random.default_rng(seed).permutation(len(names))
    n_val = min(max(1, int(round(fraction * len(names)))), len(names) - 1) if fraction > 0 else 0
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def train_stage1(references, recipe: TrainingRecipe, output_dir, verbose=1):
    """Train an ErrorMapModel on pairs made from `references` [(name, RGB array)].

    Writes to `output_dir`: `stage1.keras` (the best model on the validation
    references), `stage1_log.csv`, `stage1_metrics.json`, and `backup/` from which
    an interrupted run resumes (Keras BackupAndRestore) when started again.
    Returns the metrics dict.
    """
    cfg, pre = recipe.stage1, recipe.preprocessing
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)

    references, rejected = stage1_data.screen_references(
        references, pre, cfg.crop_size, cfg.min_crop_reliability
    )
    for name, reason in rejected:
        logger.warning("stage 1: reference %s left out: %s", name, reason)
    if not references:
        raise DatasetError("stage 1: no usable reference image (see the warnings above)")
    names = [name for name, _ in references]
    train_idx, val_idx = split_references(names, cfg.validation_references, cfg.seed)
    logger.info(
        "stage 1: %d training references, %d validation references",
        len(train_idx),
        len(val_idx),
    )
    train_refs = stage1_data.reference_dataset([references[i][1] for i in train_idx])
    val_refs = stage1_data.reference_dataset([references[i][1] for i in val_idx])
    common = dict(
        config=pre,
        crop_size=cfg.crop_size,
        batch_size=cfg.batch_size,
        min_crop_reliability=cfg.min_crop_reliability,
    )
    train = stage1_data.pair_dataset(train_refs, seed=cfg.seed, **common)
    val_batches = max(1, cfg.validation_pairs // cfg.batch_size)
    validation = (
        stage1_data.pair_dataset(val_refs, seed=cfg.seed + 1, **common)
        .take(val_batches)
        .cache()
    )

    with precision_policy(cfg.precision):
        model = ErrorMapModel(preprocessing_config=pre)
    model.compile(optimizer=keras.optimizers.Nadam(cfg.learning_rate))
    best_path = output_dir / "stage1.keras"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(output_dir / "backup")),
        AtomicBestCheckpoint(best_path),
        keras.callbacks.EarlyStopping(
            patience=cfg.early_stopping_patience, restore_best_weights=True
        ),
        keras.callbacks.CSVLogger(str(output_dir / "stage1_log.csv"), append=True),
    ]
    start = time.time()
    model.fit(
        train,
        validation_data=validation,
        validation_steps=val_batches,
        steps_per_epoch=cfg.steps_per_epoch,
        epochs=cfg.epochs,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the tf.data pipelines shuffle themselves
    )
    seconds = time.time() - start
    model = as_float32(keras.saving.load_model(best_path), ErrorMapModel)
    metrics = {
        "training_seconds": round(seconds, 1),
        "training_references": [names[i] for i in train_idx],
        "validation_references": [names[i] for i in val_idx],
        "validation": error_map_quality(model, validation, pre),
    }
    (output_dir / "stage1_metrics.json").write_text(json.dumps(metrics, indent=2))
    save_model_atomic(model, best_path)
    return metrics
