"""Mixed-precision training with float32 models on disk."""

import contextlib
import functools
import logging
import os

import keras

logger = logging.getLogger(__name__)

# CPU flags of x86 instructions that compute in bfloat16 (oneDNN uses them).
_BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpu_flags(cpuinfo="/proc/cpuinfo"):
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:  # not Linux
        pass
    return set()


def _gpu_capabilities():
    import tensorflow as tf

    return [
        tf.config.experimental.get_device_details(gpu).get("compute_capability") or (0, 0)
        for gpu in tf.config.list_physical_devices("GPU")
    ]


@functools.cache
def native_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether TF computes in bfloat16 natively here: on a GPU of compute capability
    8.0 or newer, or on an x86 CPU with AVX-512 BF16 or AMX while oneDNN is on (its
    default on them). Elsewhere TF emulates bfloat16: a stage-1 training step took
    12.7x as long as in float32 on a 2-core AVX2 EPYC (TF 2.21;
    benchmarks/training_precision.py)."""
    capabilities = _gpu_capabilities()
    if capabilities:
        return all(tuple(c) >= (8, 0) for c in capabilities)
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    return onednn and bool(_cpu_flags(cpuinfo) & set(_BFLOAT16_CPU_FLAGS))


def resolve_precision(name):
    """The Keras dtype policy for a recipe's `precision`.

    "auto": mixed_bfloat16 where the hardware computes bfloat16 natively, else
    float32. An explicit reduced precision the hardware only emulates is kept, with
    a warning: it would make training many times slower, not faster.
    """
    if name == "auto":
        name = "mixed_bfloat16" if native_bfloat16() else "float32"
        logger.info("precision auto: %s", name)
    elif name == "mixed_bfloat16" and not native_bfloat16():
        logger.warning(
            "precision %s: this machine has no native bfloat16 (no AVX-512 BF16 or AMX "
            "CPU with oneDNN, no GPU of compute capability 8.0+), so TF emulates it, "
            "many times slower than float32; use float32 (in a recipe: auto)",
            name,
        )
    elif name == "mixed_float16" and not _gpu_capabilities():
        logger.warning(
            "precision %s: float16 is for GPUs; on a CPU it is slower than float32", name
        )
    return name


@contextlib.contextmanager
def precision_policy(name):
    """Build layers under dtype policy `name` (see resolve_precision), restoring the
    previous one after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(resolve_precision(name))
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
