"""Stage-2 training: fine-tune the whole network on subjective scores (DESIGN 4)."""

import json
import os
import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from diqa_tf.atomic import write_atomic
from diqa_tf.config import TrainingRecipe
from diqa_tf.data import files, stage1 as stage1_data, stage2 as stage2_data
from diqa_tf.data.score_csv import read_score_csv
from diqa_tf.errors import ConfigError, DatasetError, tf_gist
from diqa_tf.evaluation.metrics import correlations
from diqa_tf.evaluation.splits import content_split
from diqa_tf.models import ErrorMapModel, QualityModel
from diqa_tf.resources import load_model
from diqa_tf.training import runner
from diqa_tf.training.checkpoints import save_model_atomic
from diqa_tf.training.precision import as_float32, precision_policy
from diqa_tf.training.logs import HoldoutCorrelations, score_paths
from diqa_tf.training.runner import CHECKPOINT_EVERY

logger = logging.getLogger(__name__)


def train_stage2(
    csv_path,
    stage1_path,
    recipe: TrainingRecipe,
    output_dir,
    verbose=1,
    records=None,
    *,
    strategy=None,
    resume=True,
    checkpoint_every=CHECKPOINT_EVERY,
    callbacks=(),
    ranking_references=(),
):
    """Train a QualityModel from a stage-1 model on the images of `csv_path`.

    With `stage2.holdout_fraction > 0`, a content-disjoint part of the CSV is held
    out and scored on whole images at the end (the honest accuracy); 0 trains on
    everything; the held-out SRCC/PLCC are also logged after each epoch. Writes
    `stage2.keras`, `stage2_log.csv`, `stage2_metrics.json` (with the held-out names
    and predictions), `tensorboard/` and `backup/` (checkpoints every
    `checkpoint_every` steps and at each epoch end, from which the run continues
    when started again with `resume`) to `output_dir`. `strategy`: as in
    `train_stage1`. `callbacks`: more Keras callbacks, after the stage's own (so
    they see the held-out correlations in the epoch logs). Returns the metrics dict.

    `records`: ScoredImage records to train on instead of the CSV's (e.g. one split
    of a database); `csv_path` then only names them in messages.
    `ranking_references`: pristine photos [(name, RGB)] for the hinge of
    `stage2.reference_ranking_weight`, the stage-1 term of `stage2.error_map_weight` and
    the ladder of `stage2.ladder_weight` (needed by them, and only by them).
    """
    cfg = recipe.stage2
    _check_ranking_references(ranking_references, cfg)
    strategy, output_dir = runner.prepare(output_dir, strategy, cfg.seed)

    if records is None:
        records = read_score_csv(csv_path, exclude_training_images=cfg.exclude_training_images)
    train_idx, holdout_idx = content_split(
        [r.content for r in records], cfg.holdout_fraction, cfg.seed
    )
    train_records = [records[i] for i in train_idx]
    if len(train_records) < cfg.batch_size:
        raise DatasetError(
            f"{csv_path}: {len(train_records)} training images, fewer than one batch "
            f"({cfg.batch_size})"
        )
    if 0 < len(holdout_idx) < 3:
        raise DatasetError(
            f"{csv_path}: holdout_fraction {cfg.holdout_fraction} holds out {len(holdout_idx)} "
            "images; correlations need at least 3 (raise it, or use 0 to train on all)"
        )
    logger.info("stage 2: %d training images, %d held out", len(train_idx), len(holdout_idx))

    stage1 = load_model(stage1_path, expected=ErrorMapModel)
    steps_per_epoch = max(1, len(train_records) // cfg.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate,
        decay_steps=steps_per_epoch * cfg.epochs,
        alpha=cfg.final_learning_rate_fraction,
    )
    with strategy.scope(), precision_policy(cfg.precision):
        model = QualityModel.from_stage1(stage1, score_scale=recipe.score_scale)
        model.compile(
            optimizer=keras.optimizers.Nadam(schedule),
            ranking_weight=cfg.ranking_weight,
            ranking_margin=cfg.ranking_margin,
            pair_ranking_weight=cfg.pair_ranking_weight,
            reference_ranking_weight=cfg.reference_ranking_weight,
            error_map_weight=cfg.error_map_weight,
            ladder_weight=cfg.ladder_weight,
        )
    dataset = stage2_data.training_dataset(
        [r.path for r in train_records],
        [r.score for r in train_records],
        recipe.preprocessing,
        cfg.batch_size,
        cfg.crop_size,
        cfg.seed,
        ranking=cfg.ranking_weight > 0,
        echo=cfg.crop_echo,
        ranking_focus_kinds=cfg.ranking_focus_kinds,
        ranking_focus_fraction=cfg.ranking_focus_fraction,
        references=ranking_references if cfg.reference_ranking_weight else (),
        reference_batch_size=cfg.reference_batch_size,
        reference_crop_size=cfg.reference_crop_size,
        pairs=_error_map_pairs(ranking_references, recipe) if cfg.error_map_weight else None,
        ladders=stage2_data.ladder_batches(
            ranking_references, recipe.preprocessing, cfg.reference_batch_size,
            cfg.reference_crop_size, cfg.seed,
        ) if cfg.ladder_weight else None,
    )
    held = [records[i] for i in holdout_idx]
    if held:  # first: the epoch logs then carry the held-out SRCC/PLCC to the others
        callbacks = [HoldoutCorrelations([r.path for r in held], [r.score for r in held]),
                     *callbacks]
    start = time.time()
    try:
        runner.run(
            model,
            strategy,
            dataset,
            output_dir,
            "stage2",
            steps_per_epoch=steps_per_epoch,
            epochs=cfg.epochs,
            resume=resume,
            checkpoint_every=checkpoint_every,
            verbose=verbose,
            callbacks=callbacks,
        )
    except tf.errors.InvalidArgumentError as e:
        raise DatasetError(f"{csv_path}: {tf_gist(e.message, 'cannot be decoded')}") from None
    seconds = time.time() - start

    model = as_float32(model, QualityModel)
    save_model_atomic(model, output_dir / "stage2.keras")
    metrics = {
        "training_seconds": round(seconds, 1),
        "training_images": len(train_idx),
        "holdout_images": len(holdout_idx),
        "ranking_references": len(ranking_references),
    }
    if held:
        predictions = score_paths(model, [r.path for r in held])
        targets = np.array([r.score for r in held])
        metrics["holdout"] = correlations(predictions, targets).to_dict()
        root = Path(csv_path).parent
        metrics["holdout_predictions"] = {
            os.path.relpath(r.path, root): float(p) for r, p in zip(held, predictions)
        }
    write_atomic(output_dir / "stage2_metrics.json", json.dumps(metrics, indent=2))
    return metrics


def _error_map_pairs(references, recipe: TrainingRecipe):
    """Endless batches of stage-1 pairs of `references`, made as stage 1 makes them."""
    s1 = recipe.stage1
    usable, rejected = stage1_data.screen_references(
        references, recipe.preprocessing, s1.crop_size, s1.min_crop_reliability
    )
    for name, reason in rejected:
        logger.warning("stage2.error_map_weight: skipping %s: %s", name, reason)
    if not usable:
        raise DatasetError(
            "stage2.error_map_weight: none of the pristine photos can make stage-1 pairs "
            "(each was too small or nearly flat; see the warnings above)"
        )
    return stage1_data.pair_dataset(
        stage1_data.reference_dataset([image for _, image in usable]),
        recipe.preprocessing,
        crop_size=s1.crop_size,
        batch_size=recipe.stage2.error_map_batch_size,
        seed=recipe.stage2.seed,
        min_crop_reliability=s1.min_crop_reliability,
    )


def _check_ranking_references(references, cfg):
    """Pristine photos exactly when a term of the recipe on them is on, each large enough
    for the hinges' crops (plus their context); else an error that says what to change.
    (The stage-1 term skips photos too small for its crops: `_error_map_pairs`.)"""
    weights = ("reference_ranking_weight", "error_map_weight", "ladder_weight")
    for weight in weights:
        if getattr(cfg, weight) and not references:
            raise ConfigError(
                f"stage2.{weight} is {getattr(cfg, weight)}, but no pristine photos were "
                "given for it (--ranking-references DIR)"
            )
    if references and not any(getattr(cfg, weight) for weight in weights):
        raise ConfigError(
            "pristine photos were given (--ranking-references) but the recipe does not "
            "use them: set one of stage2.reference_ranking_weight, error_map_weight or "
            "ladder_weight above 0"
        )
    if not (cfg.reference_ranking_weight or cfg.ladder_weight):
        return
    size = cfg.reference_crop_size + 2 * stage2_data.MARGIN
    for name, image in references:
        if min(np.shape(image)[:2]) < size:
            raise DatasetError(
                f"{name}: {np.shape(image)[1]}x{np.shape(image)[0]} pixels, smaller than the "
                f"{size}x{size} that stage2.reference_crop_size {cfg.reference_crop_size} "
                f"needs ({stage2_data.MARGIN} pixels of context each side)"
            )
