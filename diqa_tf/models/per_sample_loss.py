"""The train_step / test_step that both DIQA models share."""

import keras
import tensorflow as tf


class PerSampleLossModel(keras.Model):
    """A Keras model trained on a per-sample loss, `_per_sample_loss(data, training)`.

    The step divides the summed loss by the GLOBAL batch size: under a
    tf.distribute strategy each replica's gradients are summed, so the update is the
    same on 1 or N devices. Subclasses set `self.loss_tracker` (a Mean metric).
    """

    @property
    def metrics(self):
        return [self.loss_tracker]

    def _per_sample_loss(self, data, training):
        raise NotImplementedError

    def train_step(self, data):
        with tf.GradientTape() as tape:
            per_sample = self._per_sample_loss(data, training=True)
            loss = tf.nn.compute_average_loss(per_sample)
            # mixed_float16: compile wraps the optimizer in a LossScaleOptimizer, whose
            # apply() unscales the gradients and skips steps that overflowed.
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.loss_tracker.update_state(per_sample)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        self.loss_tracker.update_state(self._per_sample_loss(data, training=False))
        return {m.name: m.result() for m in self.metrics}
