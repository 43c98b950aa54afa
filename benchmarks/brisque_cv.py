"""BRISQUE + SVR retrained on each fold's training part: the anchor DIQA must beat.

The classical baseline of issue 17, on the same fixed folds as `diqa benchmark --folds`:
BRISQUE's 36 features (the `brisque` package from PyPI, `BRISQUETrainer`'s own feature
extraction and [-1, 1] feature scaling) and an epsilon-SVR with an RBF kernel (libsvm,
as that trainer uses). C and gamma are chosen per fold by an inner 4-fold CV on that
fold's training part only (best mean SRCC), the usual practice for BRISQUE; the test
fold is never looked at. SRCC/PLCC/KRCC/RMSE as DIQA's (`diqa_tf.evaluation.metrics`).

    pip install -e '.[benchmarks]'
    python benchmarks/brisque_cv.py --folds configs/folds/clive_5fold.json

Features are cached in benchmarks/results/brisque_features_clive.npz (3 min to compute).
"""

import argparse
import itertools
from pathlib import Path

import numpy as np

from _common import DATA, RESULTS, table, write_result

C_GRID = (4.0, 16.0, 64.0, 256.0, 1024.0)
GAMMA_GRID = (0.01, 0.03, 0.1, 0.3)
EPSILON = 0.1


def features(records, cache):
    """[N, 36] BRISQUE features of the records' images, cached by image path."""
    from brisque.trainer import BRISQUETrainer
    from PIL import Image

    names = [str(r.path) for r in records]
    if cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        if list(stored["names"]) == names:
            return stored["features"]
    extractor = BRISQUETrainer()
    rows = []
    for i, path in enumerate(names):
        with Image.open(path) as image:
            rows.append(extractor._extract_features(np.asarray(image.convert("RGB"))))
        if (i + 1) % 100 == 0:
            print(f"  features: {i + 1}/{len(names)}", flush=True)
    result = np.asarray(rows, dtype=np.float64)
    np.savez_compressed(cache, names=np.array(names), features=result)
    return result


class SVR:
    """BRISQUETrainer's scaling ([-1, 1] from the training features' range) and libsvm SVR."""

    def __init__(self, c, gamma):
        self.c, self.gamma = c, gamma

    def fit(self, x, y):
        from libsvm import svmutil

        self.low = x.min(axis=0)
        self.range = np.where(np.ptp(x, axis=0) > 0, np.ptp(x, axis=0), 1.0)
        options = f"-s 3 -t 2 -c {self.c} -g {self.gamma} -p {EPSILON} -q"
        self.model = svmutil.svm_train(y.tolist(), self._scale(x).tolist(), options)
        return self

    def _scale(self, x):
        return -1.0 + 2.0 * (x - self.low) / self.range

    def predict(self, x):
        from libsvm import svmutil

        predicted, _, _ = svmutil.svm_predict([0.0] * len(x), self._scale(x).tolist(), self.model, "-q")
        return np.asarray(predicted)


def choose(x, y, seed):
    """(C, gamma) with the best mean SRCC over an inner 4-fold CV of (x, y)."""
    from scipy.stats import spearmanr

    inner = np.random.default_rng(seed).permutation(len(y)) % 4
    best = None
    for c, gamma in itertools.product(C_GRID, GAMMA_GRID):
        srcc = np.mean([
            spearmanr(SVR(c, gamma).fit(x[inner != f], y[inner != f]).predict(x[inner == f]),
                      y[inner == f])[0]
            for f in range(4)
        ])
        if best is None or srcc > best[0]:
            best = (srcc, c, gamma)
    return best[1], best[2]


def main():
    from diqa_tf.config import TrainingRecipe
    from diqa_tf.data.databases import get_database
    from diqa_tf.evaluation.folds import read_folds
    from diqa_tf.evaluation.metrics import correlations
    from diqa_tf.evaluation.protocol import load_records

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", required=True, help="a folds file (`diqa folds`)")
    parser.add_argument("--root", default=str(DATA / "clive" / "mos.csv"), help="the scored CSV")
    parser.add_argument("--name", default="brisque_cv", help="results/NAME.json")
    args = parser.parse_args()

    root = Path(args.root).resolve()
    records = load_records(get_database("csv"), root, TrainingRecipe())
    x = features(records, RESULTS / "brisque_features_clive.npz")
    y = np.array([r.score for r in records])
    rows, per_fold = [], []
    for fold, (train, test) in enumerate(read_folds(args.folds, root, records), start=1):
        c, gamma = choose(x[train], y[train], seed=fold)
        predicted = SVR(c, gamma).fit(x[train], y[train]).predict(x[test])
        m = correlations(predicted, y[test]).to_dict()
        per_fold.append({"fold": fold, "c": c, "gamma": gamma, **m})
        rows.append([fold, len(train), len(test), c, gamma, m["srcc"], m["plcc"]])
        print(f"fold {fold}: SRCC {m['srcc']:.4f}  PLCC {m['plcc']:.4f}  (C {c:g}, gamma {gamma:g})",
              flush=True)
    summary = {
        statistic: {m: float(f([p[m] for p in per_fold])) for m in ("srcc", "plcc", "krcc", "rmse")}
        for statistic, f in (("mean", np.mean), ("sd", lambda v: np.std(v, ddof=1)))
    }
    rows.append(["mean", "", "", "", "", summary["mean"]["srcc"], summary["mean"]["plcc"]])
    rows.append(["sd", "", "", "", "", summary["sd"]["srcc"], summary["sd"]["plcc"]])
    table(["fold", "train", "test", "C", "gamma", "SRCC", "PLCC"], rows)
    write_result(args.name, {
        "folds_file": args.folds,
        "features": "brisque 0.2.0 BRISQUETrainer (36 features, 2 scales)",
        "svr": {"c_grid": C_GRID, "gamma_grid": GAMMA_GRID, "epsilon": EPSILON,
                "selection": "inner 4-fold CV on the training part, best mean SRCC"},
        "per_fold": per_fold,
        **summary,
    })


if __name__ == "__main__":
    main()
