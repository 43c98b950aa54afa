"""Shared helpers of the benchmark scripts: data, timing, tables, JSON results.

The machine these run on is often shared, so every number a script reports is
measured beside its baseline in the same run, in interleaved rounds (median of each),
and the claims are ratios.
"""

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
# Real photos (read only). Override with DIQA_BENCH_DATA=/path/to/data.
DATA = Path(os.environ.get("DIQA_BENCH_DATA", ROOT.parent / "shared" / "data"))


def clive_paths(count=None, size=(500, 500)):
    """CLIVE photos of one size (default 500x500), in file-name order."""
    from PIL import Image

    folder = DATA / "clive" / "images"
    if not folder.is_dir():
        sys.exit(f"no CLIVE images at {folder}: set DIQA_BENCH_DATA")
    paths = []
    for path in sorted(folder.iterdir()):
        with Image.open(path) as image:
            if image.size == size:
                paths.append(str(path))
        if count and len(paths) == count:
            break
    return paths


def kodak_paths():
    folder = DATA / "references" / "kodak"
    if not folder.is_dir():
        sys.exit(f"no Kodak images at {folder}: set DIQA_BENCH_DATA")
    return sorted(str(p) for p in folder.iterdir())


def shipped_model():
    from diqa_tf.resources import load_model

    return load_model()


def conv_stack_flops(model, height, width):
    """FLOPs (2 per multiply-add) of the backbone convs on one H x W image."""
    import keras

    flops, h, w, channels = 0, height, width, 1
    for layer in model.backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            s = layer.strides[0]
            h, w = -(-h // s), -(-w // s)
            k = layer.kernel_size[0] * layer.kernel_size[1]
            flops += 2 * h * w * k * channels * layer.filters
            channels = layer.filters
    return flops


def train_step(model):
    """The compiled model's train function (optimizer built, so no step pays for it)."""
    model.optimizer.build(model.trainable_variables)
    model.make_train_function()
    return model.train_function


def big_conv(shape=(4, 128, 128, 128), filters=128, dtype="float32"):
    """One large 3x3 'same' conv in TF, the roofline. Returns (run, flops per run)."""
    import tensorflow as tf

    x = tf.cast(tf.random.normal(shape), dtype)
    kernel = tf.cast(tf.random.normal([3, 3, shape[-1], filters]), dtype)
    conv = tf.function(lambda a, b: tf.nn.conv2d(a, b, 1, "SAME"))
    conv(x, kernel).numpy()  # trace, pick the oneDNN primitive
    flops = 2 * shape[0] * shape[1] * shape[2] * 9 * shape[3] * filters
    return (lambda: conv(x, kernel).numpy()), flops


def _times(fn):
    """(wall seconds, CPU seconds of the whole process, all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(cases, rounds=3):
    """Time each callable once per round, rounds interleaved.

    Returns ({name: median wall s}, {name: median CPU s}). On a busy machine the wall
    time says little; the CPU time says how much work each path does, which is what
    bounds its throughput once the cores are saturated.
    """
    wall = {name: [] for name in cases}
    cpu = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            w, c = _times(fn)
            wall[name].append(w)
            cpu[name].append(c)
    median = statistics.median
    return (
        {name: median(t) for name, t in wall.items()},
        {name: median(t) for name, t in cpu.items()},
    )


def machine():
    import keras
    import tensorflow as tf

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def table(headers, rows):
    """Print a plain-text table (numbers with 3 significant digits)."""

    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    text = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for row in text:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def write_result(name, data):
    """benchmarks/results/NAME.json, with the machine and the command; NAME-TAG.json
    with DIQA_BENCH_TAG=TAG set (results of another machine beside this one's)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    if os.environ.get("DIQA_BENCH_TAG"):
        name = f"{name}-{os.environ['DIQA_BENCH_TAG']}"
    data = {"command": " ".join([sys.executable, *sys.argv]), "machine": machine(), **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def series_scores(scorer, rgb, kind, seed, levels=range(5)):
    """Scores of the photo and of it distorted by `kind` (a name in
    diqa_tf.data.distortions) at each of `levels` (0-4, mild to severe), seeded by
    [`seed`, level]: 1 + len(levels) values."""
    import numpy as np
    import tensorflow as tf

    from diqa_tf.data import distortions

    index = distortions.ALL_KINDS.index(kind)
    image = tf.constant(rgb, tf.float32)
    images = [np.asarray(rgb, np.float32)] + [
        distortions.distort(image, index, level, tf.constant([seed, level])).numpy()
        for level in levels
    ]
    return [float(v) for v in scorer.score_arrays(images)]
