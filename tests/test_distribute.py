"""Training under tf.distribute gives the weights of one device.

- MirroredStrategy over 2 logical CPUs: N steps of our loop (the model's own
  train_step through strategy.run) equal N steps on one device.
- MultiWorkerMirroredStrategy: 2 worker processes on 127.0.0.1 (TF_CONFIG) end with
  identical weights, equal to a single-worker run.

The loss must be averaged over the GLOBAL batch (DESIGN 2): with 2 replicas, a loss
averaged over the per-replica batch doubles the summed gradients. SGD(lr=0.01) makes
the weight update large, and each test checks that the update is far larger than the
tolerance, so such a scaling error cannot pass.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from diqa_tf.models import ErrorMapModel, QualityModel
from diqa_tf.training import distributed_loop

from test_training import write_references

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


STEPS = 3


def _train(model_class, strategy, weights, batches, steps_per_execution=1):
    """`STEPS` steps of the training loop on `batches` (global batches, in order)."""
    with strategy.scope():
        model = model_class()
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.01),
            steps_per_execution=steps_per_execution,
        )
        model.set_weights(weights)
    dataset = tf.data.Dataset.from_tensor_slices(batches).repeat()
    history = distributed_loop.train(
        model, strategy, dataset, steps_per_epoch=STEPS, epochs=1, verbose=0
    )
    return model.get_weights(), history.history["loss"][0]


def _batches(rng, with_features):
    """STEPS different global batches, stacked: [STEPS, GLOBAL_BATCH, ...]."""
    return tf.nest.map_structure(
        lambda *xs: np.stack(xs), *[_data(rng, with_features) for _ in range(STEPS)]
    )


@pytest.mark.parametrize(
    "model_class, with_features", [(ErrorMapModel, False), (QualityModel, True)]
)
def test_mirrored_steps_equal_single_device_steps(rng, mirrored, model_class, with_features):
    keras.utils.set_random_seed(0)
    initial = model_class().get_weights()
    batches = _batches(rng, with_features)

    single, single_loss = _train(
        model_class, tf.distribute.OneDeviceStrategy("/cpu:0"), initial, batches
    )
    replicated, mirrored_loss = _train(model_class, mirrored, initial, batches)

    # The steps must move the weights by much more than the tolerance: a loss scaled
    # by the per-replica batch would double the update, a difference of `moved`.
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(single, initial))
    assert moved > 100 * ATOL
    assert np.isfinite(single_loss) and np.isfinite(mirrored_loss)
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=1e-5)
    for a, b in zip(replicated, single, strict=True):
        np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)


def test_steps_per_execution_is_refused(rng, mirrored):
    """keras-team/keras#19246: guarded with an error, not silently run one step at a time."""
    keras.utils.set_random_seed(0)
    initial = ErrorMapModel().get_weights()
    with pytest.raises(ValueError, match="steps_per_execution"):
        _train(ErrorMapModel, mirrored, initial, _batches(rng, False), steps_per_execution=2)


# --- MultiWorkerMirroredStrategy: 2 worker processes -----------------------------------

# A worker: the strategy comes first (MultiWorkerMirroredStrategy needs a fresh
# runtime), then the `diqa` command line, which reuses it.
WORKER = """
import sys
from diqa_tf.training.distribute import make_strategy
make_strategy()
from diqa_tf.cli import main
sys.exit(main(sys.argv[1:]))
"""

TINY_STAGE1 = """
[stage1]
crop_size = 32
batch_size = 4
steps_per_epoch = 3
epochs = 1
validation_references = 0.34
validation_pairs = 4
"""


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_training(references, config, output, tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    command = [sys.executable, "-c", WORKER, "train", "stage1", "--references", str(references),
               "--config", str(config), "--output", str(output), "--quiet", "--seed", "0"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(process):
    try:
        out, _ = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    assert process.returncode == 0, out
    return out


@pytest.mark.slow  # 3 processes that each import TensorFlow: ~1 min alone, more on a busy machine
def test_two_workers_equal_one_worker(tmp_path, textured_image):
    references = write_references(tmp_path / "refs", textured_image)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_STAGE1)

    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    cluster = tmp_path / "cluster"
    processes = [
        _start_training(references, config, cluster,
                        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
        for i in range(2)
    ] + [_start_training(references, config, tmp_path / "single")]
    chief, _, single = [_finish(p) for p in processes]
    assert "2 replica(s)" in chief and "1 replica(s)" in single

    # The chief writes to --output, worker 1 to --output/worker-1.
    weights = [
        keras.saving.load_model(path / "stage1.keras").get_weights()
        for path in (cluster, cluster / "worker-1", tmp_path / "single")
    ]
    for a, b, c in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, atol=ATOL, rtol=0)
