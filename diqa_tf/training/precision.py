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
    """A float32 copy of `model` (built from its config), with the same weights.

    Models trained in mixed precision store their layers' policy in the config; the
    shipped and exported models must compute in float32 on every device.
    """
    config = model.get_config()
    with precision_policy("float32"):
        copy = cls.from_config(_strip_policies(config))
    copy.set_weights(model.get_weights())
    return copy


def _strip_policies(config):
    """Remove every serialized `dtype` policy, so layers take the current default."""
    if isinstance(config, dict):
        return {
            key: _strip_policies(value)
            for key, value in config.items()
            if not (key == "dtype" and isinstance(value, dict))
        }
    if isinstance(config, list):
        return [_strip_policies(value) for value in config]
    return config
