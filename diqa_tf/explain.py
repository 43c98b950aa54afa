"""What the network sees in one image: its score and its maps, as numpy arrays.

The paper's third contribution is that DIQA's intermediate maps can be looked at.
`explain_image` returns them for one RGB image; `diqa_tf.viz.explain` draws them
and `diqa explain` does both for files:

    from diqa_tf.explain import explain_image
    from diqa_tf.resources import load_model, default_model_path, DEFAULT_STAGE1_MODEL
    from diqa_tf.models import QualityModel, ErrorMapModel

    model = load_model(expected=QualityModel)
    stage1 = load_model(default_model_path(DEFAULT_STAGE1_MODEL), expected=ErrorMapModel)
    result = explain_image(image, model, stage1)  # image: [H, W, 3], 0-255
    result.score, result.error_map.shape  # (ceil(H/4), ceil(W/4))
    # For many images, `explainer = Explainer(model, stage1)` and `explainer.explain(image)`.

Choice (ours): the predicted objective error map comes from the stage-1 model where one
is given. Stage 2 fine-tunes the backbone without error-map targets, so the quality
model's own `error_map` head drifts away from objective error (saved_models/README.md,
"Limits"); without `stage1` that drifting head is used and `error_map_source` says so.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from diqa_tf import preprocessing
from diqa_tf.errors import InvalidImageError


@dataclasses.dataclass(frozen=True)
class Explanation:
    """One image's score and maps. Maps are 2-D float32 on the output grid (1/4 size).

    - `image`: the input, RGB float32 0-255 [H, W, 3].
    - `score`: the quality model's score (its scale, e.g. CLIVE MOS, higher = better).
    - `error_map`: the predicted objective error map (higher = more error).
    - `error_map_source`: "stage1" (the stage-1 model) or "quality_model" (its head).
    - `quality_map`: the perceptual quality map of DESIGN 6, on the score's scale; its
      spatial mean through the model's head is the score.
    - `true_error_map`, `reliability`: with a reference only, the objective error map
      |I_hat_r - I_hat_d|^p and the reliability map of the image, pooled to the grid
      exactly like the stage-1 training targets; None otherwise.
    """

    image: np.ndarray
    score: float
    error_map: np.ndarray
    error_map_source: str
    quality_map: np.ndarray
    true_error_map: np.ndarray | None = None
    reliability: np.ndarray | None = None


class Explainer:
    """Computes `Explanation`s with one QualityModel (and optionally a stage-1 model).

    Each model runs as one traced graph for all image sizes: TF then frees each
    layer's output as soon as it is used, which more than halves the peak memory of
    a large image against calling the Keras models eagerly. The two models run one
    after the other, so the peak is that of one model, not of both.
    """

    def __init__(self, model, stage1=None):
        self.model = model
        self.stage1 = stage1
        spec = [tf.TensorSpec([None, None, None, 3], tf.float32)]
        self._quality = tf.function(self._quality_graph, input_signature=spec)
        self._error_map = tf.function(self._stage1_graph, input_signature=spec)

    def _quality_graph(self, images):
        inputs = preprocessing.normalize(images, self.model.preprocessing_config)
        return self.model(inputs, training=False)

    def _stage1_graph(self, images):
        hp = preprocessing.normalize(images, self.stage1.preprocessing_config)["image"]
        return self.stage1({"image": hp}, training=False)["error_map"]

    def explain(self, image, reference=None, name="image"):
        """Score and maps of `image` (RGB 0-255 [H, W, 3]).

        `reference`: the pristine image, same size, for the true maps. `name` names
        the image in errors. Raises InvalidImageError when the reference's size
        differs from the image's.
        """
        image = tf.convert_to_tensor(image, tf.float32)
        if reference is not None:
            reference = tf.convert_to_tensor(reference, tf.float32)
            if reference.shape[:2] != image.shape[:2]:
                raise InvalidImageError(
                    name,
                    f"image is {image.shape[1]}x{image.shape[0]} but its reference is "
                    f"{reference.shape[1]}x{reference.shape[0]}; they must be the same size",
                )
        outputs = self._quality(image[tf.newaxis])
        error_map, source = outputs["error_map"], "quality_model"
        if self.stage1 is not None:
            error_map, source = self._error_map(image[tf.newaxis]), "stage1"
        true_error_map = reliability = None
        if reference is not None:
            # The stage-1 model's own target definition, where it predicts the error map.
            config = (self.stage1 or self.model).preprocessing_config
            targets = preprocessing.stage1_targets(reference, image, config)
            true_error_map = _plane(targets["error_map"])
            reliability = _plane(targets["reliability"])
        return Explanation(
            image=image.numpy(),
            score=float(outputs["score"][0]),
            error_map=_plane(error_map),
            error_map_source=source,
            quality_map=_plane(outputs["quality_map"]),
            true_error_map=true_error_map,
            reliability=reliability,
        )


def explain_image(image, model, stage1=None, reference=None, name="image"):
    """`Explainer(model, stage1).explain(image, reference, name)`, for one image.

    For many images, make one Explainer: it traces its graphs once.
    """
    return Explainer(model, stage1).explain(image, reference, name)


def _plane(tensor):
    """[1, h, w, 1] or [h, w, 1] -> float32 numpy [h, w]."""
    array = np.asarray(tensor, dtype=np.float32)
    return array.reshape(array.shape[-3], array.shape[-2])
