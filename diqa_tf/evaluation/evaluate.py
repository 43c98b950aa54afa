"""Scoring a list of scored images and comparing with their subjective scores."""

import numpy as np

from diqa_tf.errors import DatasetError
from diqa_tf.evaluation.metrics import correlations
from diqa_tf.inference import Scorer


def evaluate_records(model, records, batch_size=8):
    """(Correlations, errors) of `model` on ScoredImage records, on whole images.

    Unreadable images are returned as errors and left out of the correlations.
    """
    scores, errors = Scorer(model, batch_size).score_files([r.path for r in records])
    scored = [r for r in records if r.path in scores]
    if len(scored) < 3:
        raise DatasetError(f"only {len(scored)} readable images: need at least 3 to correlate")
    predictions = np.array([scores[r.path] for r in scored])
    targets = np.array([r.score for r in scored])
    return correlations(predictions, targets), errors
