"""`diqa demo`'s error maps come from the shipped stage-1 model, and mean what they say."""

import numpy as np
import pytest

from diqa_tf import demo
from diqa_tf.data.files import skimage_photos
from diqa_tf.explain import Explainer
from diqa_tf.models import ErrorMapModel
from diqa_tf.resources import DEFAULT_STAGE1_MODEL, default_model_path, load_model


@pytest.fixture(scope="module")
def small_demo(tiny_quality_model_path):
    """The demo on 96x96 crops of two photos: the shipped stage-1 model's error maps."""
    stage1 = load_model(default_model_path(DEFAULT_STAGE1_MODEL), expected=ErrorMapModel)
    photos = [(name, photo[200:296, 200:296]) for name, photo in skimage_photos()
              if name in ("astronaut", "coffee")]
    explainer = Explainer(load_model(tiny_quality_model_path), stage1)
    return demo.run_demo(explainer, photos), stage1


def test_demo_error_maps_rise_with_the_noise_level(small_demo):
    (items, outputs), _ = small_demo
    assert len(items) == 2 * len(demo.DEMO_DISTORTIONS) * 6
    row = demo.mean_table(items, outputs, "error_map")["white_noise"]  # original, levels 0-4
    assert all(later > earlier for earlier, later in zip(row, row[1:])), row


def test_demo_error_maps_are_the_stage1_models(small_demo):
    (items, outputs), stage1 = small_demo
    from diqa_tf import preprocessing

    image = items[-1][3]
    hp = preprocessing.normalize(image[np.newaxis], stage1.preprocessing_config)["image"]
    expected = stage1({"image": hp}, training=False)["error_map"].numpy()[0, ..., 0]
    np.testing.assert_allclose(outputs[-1]["error_map"], expected, rtol=1e-5, atol=1e-5)
