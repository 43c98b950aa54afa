"""Latency of one 500x500 image: Keras, the SavedModel signatures, TFLite float/int8.

p50 and p95 over `--calls` calls after warm-up; the runners take turns in
`--rounds` interleaved rounds, so a burst of load from other processes hits all alike.
- Keras: `Scorer.score_batch` (the model in a tf.function), float32 and bfloat16;
- SavedModel (saved_models/diqa_clive/1): `predict_image` on the float tensor, and
  `serving_default` on the encoded JPEG (decoding included);
- TFLite (LiteRT, 2 threads) float and int8, converted here by diqa_tf.export.tflite
  (int8 calibrated on 8 other CLIVE photos); benchmarks/tflite_variants.py measures
  their fidelity.

Usage: python benchmarks/latency.py [--calls 100] [--rounds 5] [--no-tflite]
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-tflite", action="store_true")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from diqa_tf.data import files
    from diqa_tf.inference import Scorer

    model = _common.shipped_model()
    paths = _common.clive_paths(9)
    path = paths[0]
    image = files.read_image(path)
    batch = image[tf.newaxis]
    jpeg = tf.constant([open(path, "rb").read()])
    saved = tf.saved_model.load(str(_common.ROOT / "saved_models/diqa_clive/1"))
    predict_image = saved.signatures["predict_image"]
    serving_default = saved.signatures["serving_default"]
    fp32, bf16 = Scorer(model), Scorer(model, precision="bfloat16")
    runners = {
        "Keras (Scorer, float32)": lambda: fp32.score_batch(batch),
        "Keras (Scorer, bfloat16)": lambda: bf16.score_batch(batch),
        "SavedModel predict_image (tensor)": lambda: predict_image(image=batch)["score"].numpy(),
        "SavedModel serving_default (JPEG bytes)": lambda: serving_default(
            image_bytes=jpeg
        )["score"].numpy(),
    }
    if not args.no_tflite and os.path.exists(_common.ROOT / "diqa_tf/export/tflite.py"):
        from diqa_tf.export import tflite
        from diqa_tf.export.litert_runner import TFLiteScorer

        folder = tempfile.mkdtemp(prefix="diqa_latency_")
        calibration = [files.read_image(p).numpy() for p in paths[1:]]
        frame = image.numpy()
        for mode in ("none", "int8"):
            flatbuffer = tflite.convert(
                model, quantize=mode, calibration=calibration if mode == "int8" else None
            )
            written = tflite.write_tflite(flatbuffer, os.path.join(folder, f"{mode}.tflite"))
            scorer = TFLiteScorer(written)
            name = "TFLite float32" if mode == "none" else "TFLite int8"
            runners[name] = lambda s=scorer: s.run(frame)["score"]

    for run in runners.values():
        for _ in range(args.warmup):
            run()
    times = {name: [] for name in runners}
    per_round = -(-args.calls // args.rounds)
    for _ in range(args.rounds):
        for name, run in runners.items():
            for _ in range(per_round):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    base = np.percentile(times["Keras (Scorer, float32)"], 50)
    rows, results = [], {}
    for name, t in times.items():
        p50, p95 = np.percentile(t, 50), np.percentile(t, 95)
        rows.append((name, 1000 * p50, 1000 * p95, base / p50))
        results[name] = {"p50_ms": 1000 * p50, "p95_ms": 1000 * p95, "calls": len(t)}
    _common.table(["runner", "p50 ms", "p95 ms", "speed-up vs Keras fp32 (p50)"], rows)
    _common.write_result("latency", {"image": os.path.basename(path), "runners": results})


if __name__ == "__main__":
    main()
