"""Shared test set-up.

At import time (before anything starts the TF runtime): quiet TF's C++ logging and
split the one physical CPU into two logical devices, so tests/test_distribute.py can
run a MirroredStrategy over "/cpu:0" and "/cpu:1".
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

N_LOGICAL_CPUS = 2


def _split_cpu(n):
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:
        # The runtime is already initialized (e.g. another conftest or plugin touched
        # TF first): keep what is there; the distribution tests skip if < 2 devices.
        pass


_split_cpu(N_LOGICAL_CPUS)


@pytest.fixture
def rng():
    """A fresh, seeded numpy generator for each test."""
    return np.random.default_rng(0)
