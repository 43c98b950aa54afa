"""DIQA Keras models: backbone, stage 1 (error map), stage 2 (quality score)."""

from diqa_tf.models.backbone import DIQABackbone
from diqa_tf.models.error_map_model import ErrorMapModel
from diqa_tf.models.quality_model import QualityModel

__all__ = ["DIQABackbone", "ErrorMapModel", "QualityModel"]
