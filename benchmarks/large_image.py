"""A large photo: peak memory (RSS) and score, tiled vs whole image.

The photo is a Kodak picture resized to --size (Lanczos) and saved as JPEG.
Each way of scoring runs in its own process (`--child`), which reports its peak
RSS from resource.getrusage after loading the model and after scoring. Whole-image
scoring (about 290 bytes a pixel) runs only up to files.WHOLE_IMAGE_MAX_PIXELS.

Usage: python benchmarks/large_image.py [--size 4000x3000]   # or 12000x9000 (108 MP)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402

MODES = {
    "diqa predict (tiled)": "cli",
    "Scorer.score_files, tiled": "tiled",
    "Scorer.score_files, whole image": "whole",
    # What tiling cost before large images were kept at their file's depth: the
    # whole image decoded to float32 RGB (12 bytes a pixel), then scored in tiles.
    "float32 decode, then tiles": "float",
}


def child(mode, path):
    import resource

    from diqa_tf.inference import Scorer

    model = _common.shipped_model()
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
    start = time.perf_counter()
    if mode == "float":
        from diqa_tf.data import files

        score = Scorer(model).score_tiled(files.read_image(path))
    elif mode == "cli":
        from diqa_tf.cli import main as cli_main

        out = path + ".csv"
        assert cli_main(["predict", path, "--output", out]) == 0
        score = float(open(out).read().splitlines()[1].split(",")[1])
    else:
        scorer = Scorer(model) if mode == "tiled" else Scorer(model, tile_pixels=float("inf"))
        scores, errors = scorer.score_files([path])
        assert not errors
        score = scores[path]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    result = {"score": score, "seconds": seconds, "rss_loaded_gb": loaded, "peak_rss_gb": peak}
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--modes", default=",".join(MODES.values()),
                        help="comma-separated, of: " + ", ".join(MODES.values()))
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)

    from PIL import Image

    width, height = (int(v) for v in args.size.split("x"))
    source = _common.kodak_paths()[0]
    path = os.path.join(tempfile.mkdtemp(prefix="diqa_large_"), "large.jpg")
    with Image.open(source) as image:
        image.convert("RGB").resize((width, height), Image.LANCZOS).save(path, quality=92)

    from diqa_tf.data.files import WHOLE_IMAGE_MAX_PIXELS

    results = {}
    for name, mode in MODES.items():
        if mode not in args.modes.split(","):
            continue
        if mode == "whole" and width * height > WHOLE_IMAGE_MAX_PIXELS:
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, path],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        results[name] = json.loads(out)
    whole = results.get("Scorer.score_files, whole image", {}).get("score", float("nan"))
    rows = [
        (name, r["score"], abs(r["score"] - whole), r["peak_rss_gb"], r["rss_loaded_gb"],
         r["seconds"])
        for name, r in results.items()
    ]
    _common.table(
        ["path", "score", "|score - whole|", "peak RSS GB", "RSS after load GB", "seconds"], rows
    )
    _common.write_result(
        "large_image",
        {"size": [width, height], "source": os.path.basename(source), "runs": results},
    )


if __name__ == "__main__":
    main()
