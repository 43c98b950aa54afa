"""Scoring a list of scored images and comparing with their subjective scores."""

from collections import namedtuple

import numpy as np

from diqa_tf.errors import DatasetError
from diqa_tf.evaluation.metrics import correlations
from diqa_tf.inference import Scorer

Evaluation = namedtuple("Evaluation", "result records predictions scores targets errors")
Evaluation.__doc__ = """What evaluate_records found: `records` are the readable ones, `scores` the
model's own predictions for them, `predictions` the same after any flip (what `result`
correlates with `targets`), `errors` the InvalidImageError of each unreadable image."""


def predictions_flipped(model, scale):
    """Whether scores on `scale` run the other way from the model's (DMOS vs MOS)."""
    return scale is not None and scale.higher_is_better != model.score_scale.higher_is_better


def evaluate_records(model, records, batch_size=8, scale=None, on_done=None, on_error=None):
    """Score `model` on ScoredImage records, on whole images; returns an Evaluation.

    `scale`: the records' ScoreScale. Where its direction differs from the model's
    (DMOS against a MOS model), predictions are negated first, so that a good model
    has positive SRCC. Unreadable images are left out; each is passed to
    `on_error(error)` before the correlations (and before the DatasetError when fewer
    than 3 remain). `on_done(n)` is Scorer.score_files's progress callback.
    """
    scores, errors = Scorer(model, batch_size).score_files([r.path for r in records], on_done)
    for problem in errors:
        if on_error:
            on_error(problem)
    scored = [r for r in records if r.path in scores]
    if len(scored) < 3:
        raise DatasetError(f"only {len(scored)} readable images: need at least 3 to correlate")
    own_scores = np.array([scores[r.path] for r in scored])
    predictions = -own_scores if predictions_flipped(model, scale) else own_scores
    targets = np.array([r.score for r in scored])
    result = correlations(predictions, targets)
    return Evaluation(result, scored, predictions, own_scores, targets, errors)
