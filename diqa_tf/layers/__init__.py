"""Thin Keras layers over the ops, serializable, for models and exported graphs."""

import keras
import tensorflow as tf

from diqa_tf import ops
from diqa_tf.config import PreprocessingConfig, ScoreScale
from diqa_tf import preprocessing


@keras.saving.register_keras_serializable(package="diqa_tf")
class HighPass(keras.layers.Layer):
    """Grey 0-255 image -> I_hat = I - I_low (DESIGN 1)."""

    def __init__(self, levels=2, **kwargs):
        super().__init__(**kwargs)
        self.levels = levels

    def call(self, inputs):
        return ops.high_pass(inputs, self.levels)[0]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}


@keras.saving.register_keras_serializable(package="diqa_tf")
class Normalize(keras.layers.Layer):
    """RGB or grey 0-255 images -> {"image": I_hat, "features": [mu_r, sigma_low]}."""

    def __init__(self, preprocessing_config=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(preprocessing_config, dict):
            preprocessing_config = PreprocessingConfig.from_dict(preprocessing_config)
        self.preprocessing_config = preprocessing_config or PreprocessingConfig()

    def call(self, inputs):
        return preprocessing.normalize(inputs, self.preprocessing_config)

    def compute_output_shape(self, input_shape):
        return {"image": (*input_shape[:-1], 1), "features": (input_shape[0], 2)}

    def get_config(self):
        return {
            **super().get_config(),
            "preprocessing_config": self.preprocessing_config.to_dict(),
        }


@keras.saving.register_keras_serializable(package="diqa_tf")
class ScoreMapping(keras.layers.Layer):
    """Maps the normalized quality q in [0, 1] (higher = better) to the dataset's scale.

    The mapping lives in the model, so predictions come back on the scale (and in
    the direction, e.g. DMOS) of the data the model was trained on.
    """

    def __init__(self, low=0.0, high=100.0, higher_is_better=True, **kwargs):
        super().__init__(**kwargs)
        self.scale = ScoreScale(low, high, higher_is_better)

    def call(self, quality):
        span = self.scale.high - self.scale.low
        if self.scale.higher_is_better:
            return self.scale.low + quality * span
        return self.scale.high - quality * span

    def normalize(self, score):
        """The inverse: a score on the dataset's scale -> q in [0, 1], higher = better."""
        score = tf.cast(score, tf.float32)
        span = self.scale.high - self.scale.low
        if self.scale.higher_is_better:
            return (score - self.scale.low) / span
        return (self.scale.high - score) / span

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), **self.scale.to_dict()}


@keras.saving.register_keras_serializable(package="diqa_tf")
class BroadcastFeatures(keras.layers.Layer):
    """([N, F] features, [N, h, w, C] map) -> features broadcast to [N, h, w, F]."""

    def call(self, inputs):
        features, like = inputs
        shape = tf.shape(like)
        return tf.broadcast_to(
            features[:, tf.newaxis, tf.newaxis, :],
            tf.stack([shape[0], shape[1], shape[2], tf.shape(features)[-1]]),
        )

    def compute_output_shape(self, input_shape):
        features_shape, like_shape = input_shape
        return (*like_shape[:3], features_shape[-1])
