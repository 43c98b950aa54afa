"""`diqa beam-score` on the DirectRunner vs `diqa predict`, on the same images, same run.

Rows, each the whole command in a fresh process (TF start-up and model load
included, as a user meets them), in interleaved rounds (median of each):
- `diqa predict`: the in-process Scorer (batches of one image size);
- `diqa beam-score`, DirectRunner with one in-process worker (Beam's default);
- `diqa beam-score`, DirectRunner with 2 worker processes (multi_processing),
  the model loaded once and shared (large_model).
Each command also runs on 4 images, so the fixed cost (start-up) and the cost per
image can be told apart. Then, in this process, the two scoring paths without Beam
or start-up: the SavedModel's `serving_default` on encoded bytes in batches of 8
mixed sizes (what each Beam batch runs, plus the check's decode) vs
`Scorer.score_files`. Beam's point is scale-out to many machines; this measures
its local overhead. The machine is shared: compare the ratios, not the rates.

Images: 100 crops (192-320 px, mixed sizes) of scikit-image's photos, or with
--clive N the first N 500x500 CLIVE photos (read only), or --folder DIR.

Usage: python benchmarks/beam_throughput.py [--images 100] [--rounds 1] [--clive N | --folder DIR]
"""

import argparse
import csv
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402

DIQA = str(Path(sys.executable).with_name("diqa"))
SMALL = 4  # images in the fixed-cost run
COMMANDS = {
    "diqa predict (Scorer)": lambda folder, out: [
        DIQA, "predict", folder, "--output", f"{out}.csv", "--quiet"],
    "beam-score, DirectRunner, 1 worker": lambda folder, out: [
        DIQA, "beam-score", "--input", f"{folder}/*", "--output", out],
    "beam-score, DirectRunner, 2 processes": lambda folder, out: [
        DIQA, "beam-score", "--input", f"{folder}/*", "--output", out,
        "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
}


def skimage_crops(folder, count, seed=0):
    """`count` PNG crops of scikit-image's photos, sides 192-320 (mixed sizes)."""
    import imageio.v3 as iio
    import numpy as np

    from diqa_tf.data import files

    rng = np.random.default_rng(seed)
    photos = files.skimage_photos()
    for i in range(count):
        name, photo = photos[i % len(photos)]
        h, w = (int(rng.integers(192, 321)) for _ in range(2))
        h, w = min(h, photo.shape[0]), min(w, photo.shape[1])
        y = int(rng.integers(0, photo.shape[0] - h + 1))
        x = int(rng.integers(0, photo.shape[1] - w + 1))
        iio.imwrite(folder / f"{i:03d}_{name}.png", photo[y : y + h, x : x + w], extension=".png")


def link_images(folder, paths):
    for path in paths:
        os.symlink(path, folder / Path(path).name)


def run(command):
    """(wall s, CPU s of the command and its waited-for children), or exit on failure."""
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def read_scores(pattern):
    scores = {}
    for path in glob.glob(pattern):
        with open(path, newline="") as f:
            scores.update((row["path"], float(row["score"])) for row in csv.DictReader(f))
    return scores


def compare_in_process(images, rounds):
    """CPU and wall s of the two scoring paths on `images`, in this process."""
    from diqa_tf.beam import _ReadImage, _SavedModelScorer, default_saved_model
    from diqa_tf.inference import Scorer

    paths = [str(p) for p in images]
    contents = [p.read_bytes() for p in images]
    saved_model = _SavedModelScorer(str(default_saved_model()))
    scorer = Scorer(_common.shipped_model(), 8)

    read = _ReadImage(16)

    def beam_path():
        for path in paths:  # Beam's read and check of each file, as in the pipeline
            list(read.process(path))
        for i in range(0, len(contents), 8):
            saved_model(contents[i : i + 8])

    cases = {"SavedModel serving_default + check, batches of 8": beam_path,
             "Scorer.score_files (diqa predict)": lambda: scorer.score_files(paths)}
    for run_case in cases.values():  # trace and warm up
        run_case()
    wall, cpu = _common.interleaved(cases, rounds=max(rounds, 2))
    base = cpu["Scorer.score_files (diqa predict)"]
    return {name: {"wall_s": wall[name], "cpu_s": cpu[name], "cpu_vs_scorer": cpu[name] / base}
            for name in cases}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--clive", action="store_true", help="CLIVE 500x500 photos")
    source.add_argument("--folder", help="a folder of images (the first --images files)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="diqa_beam_bench_"))
    full, small = work / "full", work / "small"
    full.mkdir()
    small.mkdir()
    if args.clive:
        source_name = "clive 500x500"
        link_images(full, _common.clive_paths(args.images))
    elif args.folder:
        source_name = f"folder {args.folder}"
        link_images(full, sorted(str(p) for p in Path(args.folder).iterdir())[: args.images])
    else:
        source_name = "scikit-image crops 192-320 px"
        skimage_crops(full, args.images)
    images = sorted(full.iterdir())
    for path in images[:SMALL]:
        shutil.copy(path, small / path.name)

    times = {(name, n): [] for name in COMMANDS for n in (SMALL, len(images))}
    for round_ in range(args.rounds):
        for i, (name, command) in enumerate(COMMANDS.items()):
            for folder, n in ((small, SMALL), (full, len(images))):
                out = work / f"round{round_}" / f"command{i}_{n}"
                times[name, n].append(run(command(str(folder), str(out))))
                print(f"round {round_ + 1}: {name}, {n} images: {times[name, n][-1][0]:.1f} s",
                      flush=True)

    predicted = read_scores(str(work / "round0" / f"command0_{len(images)}.csv"))
    max_diff = 0.0
    for i in range(1, len(COMMANDS)):
        beam = read_scores(str(work / "round0" / f"command{i}_{len(images)}-*-of-*.csv"))
        assert beam.keys() == predicted.keys(), "beam-score and predict scored different files"
        max_diff = max(max_diff, *(abs(beam[p] - predicted[p]) for p in predicted))

    in_process = compare_in_process(images, args.rounds)
    baseline = "diqa predict (Scorer)"
    rows, results = [], {}
    for name in COMMANDS:
        wall_full = statistics.median([w for w, _ in times[name, len(images)]])
        cpu_full = statistics.median([c for _, c in times[name, len(images)]])
        wall_small = statistics.median([w for w, _ in times[name, SMALL]])
        per_image = (wall_full - wall_small) / (len(images) - SMALL)
        results[name] = {
            "wall_s": wall_full,
            "cpu_s": cpu_full,
            "images_per_s": len(images) / wall_full,
            f"wall_s_{SMALL}_images": wall_small,
            "marginal_s_per_image": per_image,
        }
    base = results[baseline]
    for name, r in results.items():
        r["wall_vs_predict"] = r["wall_s"] / base["wall_s"]
        r["marginal_vs_predict"] = r["marginal_s_per_image"] / base["marginal_s_per_image"]
        r["cpu_vs_predict"] = r["cpu_s"] / base["cpu_s"]
        rows.append([name, r["wall_s"], r["images_per_s"], r["wall_vs_predict"],
                     r[f"wall_s_{SMALL}_images"], r["marginal_s_per_image"],
                     r["marginal_vs_predict"], r["cpu_s"], r["cpu_vs_predict"]])
    print(f"\n{len(images)} images ({source_name}); medians of {args.rounds} round(s)")
    _common.table(
        ["command", "wall s", "images/s", "x predict", f"wall s ({SMALL} img)",
         "s/image", "s/image x predict", "CPU s", "CPU x predict"],
        rows,
    )
    print(f"\nin process, no Beam, no start-up ({len(images)} images)")
    _common.table(
        ["path", "wall s", "CPU s", "CPU x Scorer"],
        [[name, r["wall_s"], r["cpu_s"], r["cpu_vs_scorer"]] for name, r in in_process.items()],
    )
    print(f"max |beam-score - predict| over the CSV scores (4 decimals): {max_diff:.4f}")
    _common.write_result(
        "beam_throughput",
        {"images": len(images), "source": source_name, "rounds": args.rounds,
         "batch_size": 8, "max_abs_score_diff_csv": max_diff, "commands": results,
         "in_process": in_process,
         "note": "each row is a whole command in a fresh process; CPU s counts the "
                 "command's waited-for children (Beam's shared-model process may "
                 "not be counted)"},
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
