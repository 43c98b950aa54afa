"""Scoring a list of scored images and comparing with their subjective scores."""

import numpy as np

from diqa_tf.errors import DatasetError
from diqa_tf.evaluation.metrics import correlations
from diqa_tf.inference import Scorer


def predictions_flipped(model, scale):
    """Whether scores on `scale` run the other way from the model's (DMOS vs MOS)."""
    return scale is not None and scale.higher_is_better != model.score_scale.higher_is_better


def evaluate_records(model, records, batch_size=8, scale=None):
    """(Correlations, errors) of `model` on ScoredImage records, on whole images.

    `scale`: the records' ScoreScale. Where its direction differs from the model's
    (DMOS against a MOS model), predictions are negated first, so that a good model
    has positive SRCC. Unreadable images are returned as errors and left out.
    """
    scores, errors = Scorer(model, batch_size).score_files([r.path for r in records])
    scored = [r for r in records if r.path in scores]
    if len(scored) < 3:
        raise DatasetError(f"only {len(scored)} readable images: need at least 3 to correlate")
    predictions = np.array([scores[r.path] for r in scored])
    if predictions_flipped(model, scale):
        predictions = -predictions
    targets = np.array([r.score for r in scored])
    return correlations(predictions, targets), errors
