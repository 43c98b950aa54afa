"""Stage-1 training: error maps from synthetic pairs, with early stopping by content."""

import json
import logging
import time

import keras
import numpy as np

from diqa_tf.atomic import write_atomic
from diqa_tf.config import TrainingRecipe
from diqa_tf.data import database_pairs
from diqa_tf.data import stage1 as stage1_data
from diqa_tf.errors import DatasetError
from diqa_tf.evaluation.maps import error_map_quality
from diqa_tf.models import ErrorMapModel
from diqa_tf.training import runner
from diqa_tf.training.checkpoints import BestModel, save_model_atomic
from diqa_tf.training.precision import as_float32, precision_policy
from diqa_tf.training.runner import CHECKPOINT_EVERY

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


def train_stage1(
    references,
    recipe: TrainingRecipe,
    output_dir,
    verbose=1,
    *,
    strategy=None,
    resume=True,
    checkpoint_every=CHECKPOINT_EVERY,
    callbacks=(),
    pairs=None,
):
    """Train an ErrorMapModel on pairs made from `references` [(name, RGB array)].

    `pairs`: {reference name: [distorted image paths]}, a database's own distorted
    versions of each reference, named by its file path: stage 1 then learns from
    these pairs (as in the paper) instead of synthetic distortions.

    Writes to `output_dir`: `stage1.keras` (the best model on the validation
    references), `stage1_log.csv`, `stage1_metrics.json`, `tensorboard/`, and
    `backup/` (checkpoints every `checkpoint_every` steps and at each epoch end)
    from which the run continues when started again with `resume`.
    `strategy`: a tf.distribute strategy (default: `make_strategy()`); in a
    multi-worker cluster the workers other than the chief write to
    `output_dir/worker-<i>`. `callbacks`: more Keras callbacks, after the stage's own.
    Returns the metrics dict.
    """
    cfg, pre = recipe.stage1, recipe.preprocessing
    strategy, output_dir = runner.prepare(output_dir, strategy, cfg.seed)

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
    common = dict(
        config=pre,
        crop_size=cfg.crop_size,
        batch_size=cfg.batch_size,
        min_crop_reliability=cfg.min_crop_reliability,
    )

    def pair_dataset(indices, seed, echo):
        if pairs is None:
            refs = stage1_data.reference_dataset([references[i][1] for i in indices])
            return stage1_data.pair_dataset(refs, seed=seed, echo=echo, **common)
        listed = [(names[i], d) for i in indices for d in pairs.get(names[i], ())]
        return database_pairs.pair_dataset(listed, seed=seed, echo=echo, **common)

    train = pair_dataset(train_idx, cfg.seed, cfg.pair_echo)
    val_batches = max(1, cfg.validation_pairs // cfg.batch_size)
    validation = pair_dataset(val_idx, cfg.seed + 1, echo=1).take(val_batches).cache()

    with strategy.scope(), precision_policy(cfg.precision):
        model = ErrorMapModel(preprocessing_config=pre)
        model.compile(optimizer=keras.optimizers.Nadam(cfg.learning_rate))
    best_path = output_dir / "stage1.keras"
    best = BestModel(best_path, patience=cfg.early_stopping_patience)
    inputs, targets = list(validation)[0]  # a whole pass: it fills the cache
    sample = ({"image": inputs["image"][:1]}, {"error_map": targets["error_map"][:1]})
    start = time.time()
    runner.run(
        model,
        strategy,
        train,
        output_dir,
        "stage1",
        steps_per_epoch=cfg.steps_per_epoch,
        epochs=cfg.epochs,
        resume=resume,
        checkpoint_every=checkpoint_every,
        verbose=verbose,
        validation=validation,
        validation_steps=val_batches,
        callbacks=[best, *callbacks],
        stateful=[best],
        sample=sample,
    )
    seconds = time.time() - start
    model = as_float32(keras.saving.load_model(best_path), ErrorMapModel)
    metrics = {
        "training_seconds": round(seconds, 1),
        "training_references": [names[i] for i in train_idx],
        "validation_references": [names[i] for i in val_idx],
        "validation": error_map_quality(model, validation, pre),
    }
    write_atomic(output_dir / "stage1_metrics.json", json.dumps(metrics, indent=2))
    save_model_atomic(model, best_path)
    return metrics
