"""Stage 1: the backbone plus a 1x1 head that predicts the objective error map."""

import keras

from diqa_tf import preprocessing
from diqa_tf.config import PreprocessingConfig
from diqa_tf.models.backbone import DIQABackbone
from diqa_tf.models.per_sample_loss import PerSampleLossModel


def error_map_head():
    """The stage-1 head: a 1x1 linear conv, one filter (the predicted error map)."""
    return keras.layers.Conv2D(1, 1, name="error_map")


@keras.saving.register_keras_serializable(package="diqa_tf")
class ErrorMapModel(PerSampleLossModel):
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

    def _per_sample_loss(self, data, training):
        inputs, targets = data
        predicted = self(inputs, training=training)["error_map"]
        return preprocessing.weighted_error_per_sample(
            predicted,
            targets["error_map"],
            targets["reliability"],
            self.preprocessing_config,
        )

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
