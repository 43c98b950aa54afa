"""Mixed-precision training with float32 models on disk."""

import contextlib

import keras


@contextlib.contextmanager
def precision_policy(name):
    """Build layers under dtype policy `name`, restoring the previous one after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def as_float32(model, cls):
    """A float32 copy of `model` (rebuilt from its config), with the same weights.

    Layers take the dtype policy in force when they are built, and the DIQA model
    configs carry none: rebuilding under float32 gives a model that computes in
    float32 on every device, as the shipped and exported models must.
    """
    with precision_policy("float32"):
        copy = cls.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy
