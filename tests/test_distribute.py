"""One training step under MirroredStrategy (2 logical CPUs) equals the one-device step.

The loss must be averaged over the GLOBAL batch (DESIGN 2): with 2 replicas, a loss
averaged over the per-replica batch doubles the summed gradients. SGD(lr=0.1) makes
the weight update large, and each test checks that the update is far larger than the
tolerance, so such a scaling error cannot pass.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from diqa_tf.models import ErrorMapModel, QualityModel

GLOBAL_BATCH = 4
SIZE = 32
ATOL = 1e-5


@pytest.fixture(scope="module")
def mirrored():
    """ONE MirroredStrategy for the module: a second instance in the same process can
    reuse the first one's collective instance keys on CPU and abort with "Shape
    mismatch in the collective instance" (seen with TF 2.21); not a diqa_tf issue."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(devices) < 2:
        pytest.skip("needs 2 logical CPU devices (configured in conftest.py)")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return strategy


def _data(rng, with_features):
    n, h = GLOBAL_BATCH, SIZE // 4
    image = (rng.standard_normal((n, SIZE, SIZE, 1)) * 15.0).astype(np.float32)
    if with_features:
        inputs = {"image": image, "features": rng.random((n, 2)).astype(np.float32)}
        targets = rng.uniform(0.0, 100.0, n).astype(np.float32)
    else:
        inputs = {"image": image}
        targets = {
            "error_map": (rng.random((n, h, h, 1)) + 0.1).astype(np.float32),
            "reliability": rng.random((n, h, h, 1)).astype(np.float32),
        }
    return inputs, targets


def _one_step(model_class, strategy, weights, data):
    with strategy.scope():
        model = model_class()
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1))
        model.set_weights(weights)
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(GLOBAL_BATCH)
    history = model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    return model.get_weights(), history.history["loss"][0]


@pytest.mark.parametrize(
    "model_class, with_features", [(ErrorMapModel, False), (QualityModel, True)]
)
def test_mirrored_step_equals_single_device_step(rng, mirrored, model_class, with_features):
    keras.utils.set_random_seed(0)
    initial = model_class().get_weights()
    data = _data(rng, with_features)

    single, single_loss = _one_step(
        model_class, tf.distribute.OneDeviceStrategy("/cpu:0"), initial, data
    )
    replicated, mirrored_loss = _one_step(model_class, mirrored, initial, data)

    # The step must move the weights by much more than the tolerance: a loss scaled
    # by the per-replica batch would double the update, a difference of `moved`.
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(single, initial))
    assert moved > 100 * ATOL
    assert np.isfinite(single_loss) and np.isfinite(mirrored_loss)
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=1e-5)
    for a, b in zip(replicated, single, strict=True):
        np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)
