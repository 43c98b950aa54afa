"""The shared DIQA convolutional backbone (DESIGN 3)."""

import keras

# (filters, stride) of conv1..conv8: the paper's table. All 3x3, 'same', ReLU, He init.
BACKBONE_LAYERS = (
    (48, 1),
    (48, 2),
    (64, 1),
    (64, 2),
    (64, 1),
    (64, 1),
    (128, 1),
    (128, 1),
)


@keras.saving.register_keras_serializable(package="diqa_tf")
class DIQABackbone(keras.Model):
    """I_hat (H, W, 1) on 0-255 -> conv8 features (ceil(H/4), ceil(W/4), 128).

    Args:
        input_scale: fixed factor applied to I_hat first (ours: 1/16, so the
            network sees unit-order inputs; DESIGN 4 lessons).
    """

    def __init__(self, input_scale=1.0 / 16.0, **kwargs):
        # === Functional Model ===
        inputs = keras.Input(shape=(None, None, 1), name="image")
        x = keras.layers.Rescaling(input_scale, name="input_scaling")(inputs)
        for index, (filters, stride) in enumerate(BACKBONE_LAYERS, start=1):
            x = keras.layers.Conv2D(
                filters,
                3,
                strides=stride,
                padding="same",
                activation="relu",
                kernel_initializer="he_normal",
                name=f"conv{index}",
            )(x)
        kwargs.setdefault("name", "backbone")
        super().__init__(inputs=inputs, outputs=x, **kwargs)

        # === Config ===
        self.input_scale = input_scale

    def get_config(self):
        return {"name": self.name, "input_scale": self.input_scale}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
