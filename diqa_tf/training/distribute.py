"""Which tf.distribute strategy trains, and where each worker writes.

- `TF_CONFIG` set (a cluster): `MultiWorkerMirroredStrategy`, each worker on its
  own local devices (choose them with CUDA_VISIBLE_DEVICES).
- otherwise `MirroredStrategy` over the local GPUs (all, the first N, or a list
  of device names); one device (or none: the CPU) gets the default strategy.
"""

import json
import os
from pathlib import Path

import tensorflow as tf

from diqa_tf.errors import ConfigError

_multi_worker = None  # the process's MultiWorkerMirroredStrategy, once made


def _cluster():
    """The cluster spec from TF_CONFIG, or None."""
    text = os.environ.get("TF_CONFIG", "")
    if not text:
        return None
    try:
        cluster = json.loads(text).get("cluster")
    except (json.JSONDecodeError, AttributeError):
        raise ConfigError(f"TF_CONFIG is not a JSON object: {text[:80]!r}") from None
    return cluster or None


def _local_devices(devices):
    """Device names for `devices`: None (all GPUs), a count, or a list of names."""
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if devices is None:
        return gpus
    if isinstance(devices, int):
        pool = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
        if devices > len(pool):
            raise ConfigError(
                f"--devices {devices}: only {len(pool)} local device(s) found ({', '.join(pool)})"
            )
        return pool[:devices]
    return list(devices)


def make_strategy(devices=None):
    """The strategy for this process (see the module docstring).

    MultiWorkerMirroredStrategy can be created once per process, before TensorFlow
    runs any op: call this first thing in a training program; later calls return
    the same strategy.
    """
    global _multi_worker
    if _cluster():
        if devices is not None:
            raise ConfigError(
                "--devices cannot be combined with TF_CONFIG: each worker uses its local "
                "GPUs (choose them with CUDA_VISIBLE_DEVICES)"
            )
        if _multi_worker is None:
            try:
                _multi_worker = tf.distribute.MultiWorkerMirroredStrategy()
            except RuntimeError as e:  # "Collective ops must be configured at program startup"
                raise ConfigError(
                    f"TF_CONFIG: cannot start MultiWorkerMirroredStrategy ({e}); it must be "
                    "created before TensorFlow runs any op"
                ) from None
        return _multi_worker
    names = _local_devices(devices)
    if len(names) > 1:
        return tf.distribute.MirroredStrategy(names)
    if len(names) == 1:
        return tf.distribute.OneDeviceStrategy(names[0])
    return tf.distribute.get_strategy()


def parse_devices(text):
    """`--devices` text: a count ("2") or comma-separated names ("GPU:0,GPU:2")."""
    text = text.strip()
    if text.isdigit():
        if int(text) < 1:
            raise ValueError("must be at least 1")
        return int(text)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("give a count or device names")
    return [name if name.startswith("/") else f"/{name}" for name in names]


def worker_output(output_dir, strategy):
    """Where this worker writes: `output_dir` for the chief (or a lone process),
    `output_dir/worker-<i>` for the other workers of a cluster.

    Each worker keeps its own checkpoints, so a worker resumes from its own files and
    no two processes ever write the same file.
    """
    output_dir = Path(output_dir)
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return output_dir
    cluster = resolver.cluster_spec().as_dict()
    chief = resolver.task_type == "chief" or (
        "chief" not in cluster and resolver.task_type == "worker" and resolver.task_id == 0
    )
    return output_dir if chief else output_dir / f"{resolver.task_type}-{resolver.task_id}"


def shard_by_data(dataset):
    """Shard explicitly by DATA: every worker builds the same (generated, seeded)
    stream and keeps its part of each global batch. FILE sharding would need one
    file per worker; our pairs are generated, not read from files."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
