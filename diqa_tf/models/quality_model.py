"""Stage 2: the backbone, a regression head with the handcrafted features, and maps."""

import keras
import tensorflow as tf

from diqa_tf import preprocessing
from diqa_tf.config import PreprocessingConfig, ScoreScale
from diqa_tf.layers import BroadcastFeatures, ScoreMapping
from diqa_tf.models.backbone import DIQABackbone
from diqa_tf.models.per_sample_loss import PerSampleLossModel
from diqa_tf.models.error_map_model import ErrorMapModel, error_map_head


def pairwise_ranking(predicted, target):
    """Per-sample mean over the other samples j of relu(|t_i - t_j| - s_ij (p_i - p_j)),
    s_ij = sign(t_i - t_j): each pair's predicted difference must have the true sign and
    at least the true size. Zero when the predictions equal the targets, so it agrees with
    the squared error; unlike it, it is paid by every misordered pair. Ours, not the
    paper's."""
    predicted = tf.cast(predicted, tf.float32)
    target = tf.cast(target, tf.float32)
    true = target[:, None] - target[None, :]
    guess = predicted[:, None] - predicted[None, :]
    hinge = tf.nn.relu(tf.abs(true) - tf.sign(true) * guess)  # 0 on the diagonal
    others = tf.maximum(tf.cast(tf.size(target), tf.float32) - 1.0, 1.0)
    return tf.reduce_sum(hinge, axis=1) / others


@keras.saving.register_keras_serializable(package="diqa_tf")
class QualityModel(PerSampleLossModel):
    """{"image": I_hat, "features": [2]} -> {"score", "error_map", "quality_map"}.

    - `score` [N]: the quality on the training data's scale (see `ScoreMapping`).
    - `error_map` [N, h, w, 1]: the stage-1 head on the (fine-tuned) backbone.
    - `quality_map` [N, h, w, 1]: the perceptual map of DESIGN 6 (ours): the stage-2
      head applied at every position of conv8 (Dense on the last axis acts as a 1x1
      conv) with the image's features broadcast; the score is the same head applied
      to the spatial mean of conv8.
    The model's score depends only on its own image: no padding, no batch statistics.
    """

    def __init__(
        self,
        backbone=None,
        preprocessing_config=None,
        score_scale=None,
        hidden_units=128,
        **kwargs,
    ):
        if isinstance(preprocessing_config, dict):
            preprocessing_config = PreprocessingConfig.from_dict(preprocessing_config)
        if isinstance(score_scale, dict):
            score_scale = ScoreScale.from_dict(score_scale)
        preprocessing_config = preprocessing_config or PreprocessingConfig()
        score_scale = score_scale or ScoreScale()
        if backbone is None:
            backbone = DIQABackbone(input_scale=preprocessing_config.input_scale)

        # === Layers ===
        hidden = keras.layers.Dense(hidden_units, activation="relu", name="quality_hidden")
        output = keras.layers.Dense(1, name="quality")
        mapping = ScoreMapping(**score_scale.to_dict(), name="score_mapping")

        # === Functional Model ===
        image = keras.Input(shape=(None, None, 1), name="image")
        features = keras.Input(shape=(2,), name="features")
        conv8 = backbone(image)
        # The stage-1 head rides along, frozen: stage 2 never changes it (its optional
        # stage-1 term, `error_map_weight`, trains the backbone to keep it right).
        error_head = error_map_head()
        error_head.trainable = False
        error_map = error_head(conv8)
        pooled = keras.layers.GlobalAveragePooling2D(name="pool")(conv8)
        quality = output(hidden(keras.layers.Concatenate(name="concat")([pooled, features])))
        score = keras.layers.Reshape((), name="score")(mapping(quality))
        local = keras.layers.Concatenate(name="concat_local")(
            [conv8, BroadcastFeatures(name="broadcast")([features, conv8])]
        )
        quality_map = mapping(output(hidden(local)))
        kwargs.setdefault("name", "diqa_quality")
        super().__init__(
            inputs={"image": image, "features": features},
            outputs={"score": score, "error_map": error_map, "quality_map": quality_map},
            **kwargs,
        )

        # === Config ===
        self.backbone = backbone
        self.preprocessing_config = preprocessing_config
        self.score_scale = score_scale
        self.hidden_units = hidden_units
        self.score_mapping = mapping
        # Set by compile: the synthetic ranking terms and the in-batch pairwise term.
        self.ranking_weight, self.ranking_margin, self.pair_ranking_weight = 0.0, 0.03, 0.0
        self.reference_ranking_weight = 0.0
        self.error_map_weight = 0.0
        self.ladder_weight = 0.0
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @classmethod
    def from_stage1(cls, stage1: ErrorMapModel, score_scale=None, hidden_units=128):
        """A stage-2 model whose backbone and error-map head start from stage 1."""
        model = cls(
            preprocessing_config=stage1.preprocessing_config,
            score_scale=score_scale,
            hidden_units=hidden_units,
        )
        model.backbone.set_weights(stage1.backbone.get_weights())
        model.get_layer("error_map").set_weights(stage1.get_layer("error_map").get_weights())
        return model

    def compile(
        self,
        ranking_weight=0.0,
        ranking_margin=0.03,
        pair_ranking_weight=0.0,
        reference_ranking_weight=0.0,
        error_map_weight=0.0,
        ladder_weight=0.0,
        **kwargs,
    ):
        """Keras compile, plus the weights of the optional ranking terms (and the margin of
        the synthetic ones, the ladder's included) and of the stage-1 term; see
        `_per_sample_loss`."""
        super().compile(**kwargs)
        self.ranking_weight = ranking_weight
        self.ranking_margin = ranking_margin
        self.pair_ranking_weight = pair_ranking_weight
        self.reference_ranking_weight = reference_ranking_weight
        self.error_map_weight = error_map_weight
        self.ladder_weight = ladder_weight

    def get_compile_config(self):
        if not self.compiled:  # nothing to restore
            return None
        return {
            **super().get_compile_config(),
            "ranking_weight": self.ranking_weight,
            "ranking_margin": self.ranking_margin,
            "pair_ranking_weight": self.pair_ranking_weight,
            "reference_ranking_weight": self.reference_ranking_weight,
            "error_map_weight": self.error_map_weight,
            "ladder_weight": self.ladder_weight,
        }

    def compile_from_config(self, config):
        """Recompile a reloaded model, ranking term included (Keras skips custom compiles)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _per_sample_loss(self, data, training):
        """Squared error on the normalized scale ([0, 1], higher = better).

        Ours, not the paper's: when the inputs also hold "distorted_image" and
        "distorted_features" (see `diqa_tf.data.stage2`), a hinge term asks each
        synthetically distorted crop to score at least `ranking_margin` below its
        original. Fine-tuned on authentic photos alone (CLIVE, mostly blur), the
        network learns "more high frequencies = better" and rates added noise as
        an improvement; the ranking term keeps stage 1's distortion knowledge.

        Also ours: with `pair_ranking_weight` > 0, `pairwise_ranking` between the
        images of the batch (on each replica's part of it under a strategy) adds a
        loss on their order, which SRCC measures and squared error only approximates.

        And ours: when the inputs also hold "reference_image", "reference_features" and
        their "reference_distorted_" twins (crops of pristine photos, which have no
        score), the same hinge on them, its mean over those crops weighted by
        `reference_ranking_weight`, is added to each sample's loss.

        Ours too: when the inputs also hold "pair_image", "pair_error_map" and
        "pair_reliability" (stage-1 pairs of pristine photos), stage 1's loss on them, its
        mean weighted by `error_map_weight`, is added to each sample's loss. The error-map
        head stays frozen, so only the backbone can keep that loss low: it must keep
        what stage 1 taught it, in the form stage 1's head reads.

        And: when the inputs also hold "ladder_image" (and its "ladder_distorted_" twin: the
        same crop one distortion level heavier), the hinge between the two, its mean
        weighted by `ladder_weight`, is added to each sample's loss.
        """
        inputs, scores = data
        target = self.score_mapping.normalize(tf.reshape(scores, [-1]))
        if "distorted_image" in inputs:
            original, hinge = self._scored_with_hinge(inputs, "", training)
            loss = tf.square(original - target) + self.ranking_weight * hinge
        else:
            own = {key: inputs[key] for key in ("image", "features")}
            original = self.score_mapping.normalize(self(own, training=training)["score"])
            loss = tf.square(original - target)
        if "reference_image" in inputs:
            _, hinge = self._scored_with_hinge(inputs, "reference_", training)
            loss += self.reference_ranking_weight * tf.reduce_mean(hinge)
        if "ladder_image" in inputs:
            _, hinge = self._scored_with_hinge(inputs, "ladder_", training)
            loss += self.ladder_weight * tf.reduce_mean(hinge)
        if "pair_image" in inputs:
            loss += self.error_map_weight * tf.reduce_mean(self._error_map_loss(inputs, training))
        return self._with_pairs(loss, original, target)

    def _scored_with_hinge(self, inputs, prefix, training):
        """Normalized scores of the crops inputs[prefix + "image"], and the hinge asking
        each to score at least `ranking_margin` above its distorted copy; one forward
        pass over both."""
        both = {
            key: tf.concat([inputs[prefix + key], inputs[f"{prefix}distorted_{key}"]], 0)
            for key in ("image", "features")
        }
        quality = self.score_mapping.normalize(self(both, training=training)["score"])
        original, distorted = tf.split(quality, 2)
        return original, tf.nn.relu(self.ranking_margin - (original - distorted))

    def _error_map_loss(self, inputs, training):
        """Stage 1's per-pair loss (DESIGN 2) on the stage-1 pairs in `inputs`."""
        conv8 = self.backbone(inputs["pair_image"], training=training)
        return preprocessing.weighted_error_per_sample(
            self.get_layer("error_map")(conv8),
            inputs["pair_error_map"],
            inputs["pair_reliability"],
            self.preprocessing_config,
        )

    def _with_pairs(self, loss, predicted, target):
        if not self.pair_ranking_weight:
            return loss
        return loss + self.pair_ranking_weight * pairwise_ranking(predicted, target)

    def get_config(self):
        return {
            "name": self.name,
            "backbone": keras.layers.serialize(self.backbone),
            "preprocessing_config": self.preprocessing_config.to_dict(),
            "score_scale": self.score_scale.to_dict(),
            "hidden_units": self.hidden_units,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)

