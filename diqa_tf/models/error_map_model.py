"""Stage 1: the backbone plus a 1x1 head that predicts the objective error map."""

import keras
import tensorflow as tf

from diqa_tf import preprocessing
from diqa_tf.config import PreprocessingConfig
from diqa_tf.models.backbone import DIQABackbone


def error_map_head():
    """The stage-1 head: a 1x1 linear conv, one filter (the predicted error map)."""
    return keras.layers.Conv2D(1, 1, name="error_map")


@keras.saving.register_keras_serializable(package="diqa_tf")
class ErrorMapModel(keras.Model):
    """{"image": I_hat_d} -> {"error_map": (ceil(H/4), ceil(W/4), 1)}.

    Trained with the reliability-weighted loss of DESIGN 2 in `train_step`; the
    data are `({"image": I_hat_d}, {"error_map": e, "reliability": r})`, maps
    pooled to the output grid (see `diqa_tf.data.stage1`).
    """

    def __init__(self, backbone=None, preprocessing_config=None, **kwargs):
        if isinstance(preprocessing_config, dict):
            preprocessing_config = PreprocessingConfig.from_dict(preprocessing_config)
        preprocessing_config = preprocessing_config or PreprocessingConfig()
        if backbone is None:
            backbone = DIQABackbone(input_scale=preprocessing_config.input_scale)

        # === Functional Model ===
        image = keras.Input(shape=(None, None, 1), name="image")
        error_map = error_map_head()(backbone(image))
        kwargs.setdefault("name", "diqa_error_map")
        super().__init__(
            inputs={"image": image}, outputs={"error_map": error_map}, **kwargs
        )

        # === Config ===
        self.backbone = backbone
        self.preprocessing_config = preprocessing_config
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def _per_sample_loss(self, data, training):
        inputs, targets = data
        predicted = self(inputs, training=training)["error_map"]
        return preprocessing.weighted_error_per_sample(
            predicted,
            targets["error_map"],
            targets["reliability"],
            self.preprocessing_config,
        )

    def train_step(self, data):
        with tf.GradientTape() as tape:
            per_sample = self._per_sample_loss(data, training=True)
            # Divides by the GLOBAL batch size: gradients are summed over replicas.
            loss = tf.nn.compute_average_loss(per_sample)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.loss_tracker.update_state(per_sample)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        self.loss_tracker.update_state(self._per_sample_loss(data, training=False))
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {
            "name": self.name,
            "backbone": keras.layers.serialize(self.backbone),
            "preprocessing_config": self.preprocessing_config.to_dict(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
