"""`diqa spark-score` on a standalone Spark cluster vs `diqa predict`, same photos, same run.

A standalone cluster runs on 127.0.0.1 for the whole benchmark (a master and two
1-core workers, started as tests/test_spark.py starts them; its start-up is not
timed, as a cluster is already up where Spark is used). Rows, each the whole command
in a fresh process (TF start-up, model load and, for Spark, the application's
executors and Python workers included), in interleaved rounds (median of each):
- `diqa predict`: the in-process Scorer, TF on both cores;
- `diqa spark-score`, 1 executor (1 core: `spark.cores.max=1`);
- `diqa spark-score`, 2 executors (1 core each).
Each command also runs on 4 photos, so the fixed cost (start-up) and the cost per
photo can be told apart: the marginal rate is (N - 4) photos over the difference of
the times the commands' own summary lines report (which leave out TF's and the
JVM's start-up; see `run`). The machine may be shared: compare the ratios, not the rates.

Photos: the first N 500x500 CLIVE photos (read only; DIQA_BENCH_DATA overrides where).

Usage: python benchmarks/spark_throughput.py [--images 96] [--rounds 1]
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import _common  # noqa: E402
from beam_throughput import link_images, read_scores  # noqa: E402
from spark_cluster import spark_env, standalone_cluster  # noqa: E402

DIQA = str(Path(sys.executable).with_name("diqa"))
SMALL = 4  # photos in the fixed-cost run
PREDICT = "diqa predict"


def run(command):
    """(wall s of the whole command, s its summary line reports), or exit on failure.

    The summary's time starts once the command is ready to score: for `predict` after
    TF's start-up and the model load; for `spark-score` once Spark has started (the
    application's executors, their Python workers, TF and the model load included).
    """
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    summary = re.search(r"^scored \d+ images, 0 failed, in ([\d.]+) s", done.stderr, re.M)
    if done.returncode != 0 or not summary:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return wall, float(summary.group(1))


def commands(master):
    spark = lambda cores: lambda folder, out: [  # noqa: E731
        DIQA, "spark-score", "--input", f"{folder}/*", "--output", out, "--master", master,
        "--conf", f"spark.cores.max={cores}", "--conf", "spark.executor.memory=1g",
        "--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0"]
    return {
        PREDICT: lambda folder, out: [DIQA, "predict", folder, "--output", f"{out}.csv"],
        "spark-score, 1 executor (1 core)": spark(1),
        "spark-score, 2 executors (1 core each)": spark(2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="diqa_spark_bench_"))
    full, small = work / "full", work / "small"
    full.mkdir()
    small.mkdir()
    link_images(full, _common.clive_paths(args.images))
    images = sorted(full.iterdir())
    for path in images[:SMALL]:
        shutil.copy(path, small / path.name)
    os.environ.update(spark_env())  # the commands bind to 127.0.0.1 too

    with standalone_cluster(work / "cluster", workers=2, cores=1) as master:
        cases = commands(master)
        times = {(name, n): [] for name in cases for n in (SMALL, len(images))}
        for round_ in range(args.rounds):
            for i, (name, command) in enumerate(cases.items()):
                for folder, n in ((small, SMALL), (full, len(images))):
                    out = work / f"round{round_}" / f"command{i}_{n}"
                    times[name, n].append(run(command(str(folder), str(out))))
                    print(f"round {round_ + 1}: {name}, {n} photos: "
                          f"{times[name, n][-1][0]:.1f} s", flush=True)

    predicted = read_scores(str(work / "round0" / f"command0_{len(images)}.csv"))
    predicted = {os.path.abspath(p): s for p, s in predicted.items()}
    max_diff = 0.0
    for i in range(1, len(cases)):
        output = work / "round0" / f"command{i}_{len(images)}"
        scored = read_scores(str(output / "scores" / "*.csv"))
        assert scored.keys() == predicted.keys(), "spark-score and predict scored different files"
        max_diff = max(max_diff, *(abs(scored[p] - predicted[p]) for p in predicted))

    rows, results = [], {}
    median = statistics.median
    for name in cases:
        wall_full = median([w for w, _ in times[name, len(images)]])
        wall_small = median([w for w, _ in times[name, SMALL]])
        inner_full = median([s for _, s in times[name, len(images)]])
        inner_small = median([s for _, s in times[name, SMALL]])
        results[name] = {
            "wall_s": wall_full,
            "images_per_s": len(images) / wall_full,
            f"wall_s_{SMALL}_images": wall_small,
            "summary_s": inner_full,
            f"summary_s_{SMALL}_images": inner_small,
            # The cost of the photos beyond the first SMALL, start-up cancelled out.
            "marginal_images_per_s": (len(images) - SMALL) / (inner_full - inner_small),
        }
    base = results[PREDICT]
    for name, r in results.items():
        r["wall_vs_predict"] = r["wall_s"] / base["wall_s"]
        r["marginal_rate_vs_predict"] = r["marginal_images_per_s"] / base["marginal_images_per_s"]
        rows.append([name, r["wall_s"], r["images_per_s"], r["wall_vs_predict"],
                     r["summary_s"], r[f"summary_s_{SMALL}_images"],
                     r["marginal_images_per_s"], r["marginal_rate_vs_predict"]])
    print(f"\n{len(images)} CLIVE photos (500x500); medians of {args.rounds} round(s)")
    _common.table(
        ["command", "wall s", "images/s", "wall x predict", "summary s",
         f"summary s ({SMALL} photos)", "marginal images/s", "x predict"],
        rows,
    )
    print(f"max |spark-score - predict| over the CSV scores (4 decimals): {max_diff:.4f}")
    _common.write_result(
        "spark_throughput",
        {"images": len(images), "source": "clive 500x500", "rounds": args.rounds,
         "batch_size": 8, "cluster": "standalone on 127.0.0.1: a master, two 1-core workers",
         "max_abs_score_diff_csv": max_diff, "commands": results,
         "note": "each row is a whole command in a fresh process, start-up included; "
                 "the cluster's own start-up is not timed"},
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
