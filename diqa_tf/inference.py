"""Scoring images with a stage-2 model: batching by size, errors per file."""

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from diqa_tf import preprocessing
from diqa_tf.data import files
from diqa_tf.errors import InvalidImageError

logger = logging.getLogger(__name__)


class Scorer:
    """Runs a QualityModel on RGB images (0-255), normalizing inside one graph.

    Images of equal size share a batch; there is no padding, so an image's score
    never depends on the other images it is scored with.
    """

    def __init__(self, model, batch_size=8):
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be at least 1. Received: {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.config = model.preprocessing_config
        spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        self._forward = tf.function(self._forward_graph, input_signature=[spec])

    def _forward_graph(self, images):
        return self.model(preprocessing.normalize(images, self.config), training=False)

    def predict_batch(self, images):
        """Model outputs (numpy) for a list of same-size [H, W, 3] images."""
        outputs = self._forward(tf.stack([tf.cast(i, tf.float32) for i in images]))
        return {key: value.numpy() for key, value in outputs.items()}

    def score_arrays(self, images):
        """Scores of a list of [H, W, 3] arrays of any sizes, in order."""
        scores = np.empty(len(images), np.float32)
        for indices, batch in self._batches_by_size(enumerate(images)):
            scores[indices] = self.predict_batch(batch)["score"]
        return scores

    def score_files(self, paths, on_done=None):
        """Score image files. Returns (scores, errors).

        `scores` maps path -> score for the files that could be read; `errors`
        lists InvalidImageError for the others. `on_done(n)` is called after each
        batch with the number of files finished (for progress bars).
        """
        errors, decoded = [], []

        def read(path):
            try:
                return path, files.read_image(path, self.config.min_size), None
            except InvalidImageError as e:
                return path, None, e

        scores = {}
        with ThreadPoolExecutor(max_workers=2) as pool:
            for path, image, error in pool.map(read, paths):
                if error is not None:
                    errors.append(error)
                    if on_done:
                        on_done(1)
                    continue
                decoded.append((path, image))
                if len(decoded) >= 4 * self.batch_size:
                    self._score_into(scores, decoded, on_done)
                    decoded = []
        self._score_into(scores, decoded, on_done)
        return scores, errors

    def _score_into(self, scores, decoded, on_done):
        for paths, batch in self._batches_by_size(decoded):
            for path, score in zip(paths, self.predict_batch(batch)["score"]):
                scores[path] = float(score)
            if on_done:
                on_done(len(paths))

    def _batches_by_size(self, items):
        """Group (key, image) pairs by image size into batches of at most batch_size."""
        groups = {}
        for key, image in items:
            groups.setdefault(tuple(image.shape[:2]), []).append((key, image))
        for group in groups.values():
            for start in range(0, len(group), self.batch_size):
                chunk = group[start : start + self.batch_size]
                yield [k for k, _ in chunk], [i for _, i in chunk]
