"""The paper's evaluation protocol on one database: repeated content-disjoint splits.

Each split (DESIGN 4) puts a random `train_ratio` of the contents (reference images;
each image is its own content in authentic databases) on the training side and the
rest on the test side, then:
1. stage 1: trained on the training side's own reference/distorted pairs where the
   database has references (as in the paper); otherwise, or when a stage-1 model is
   given, that model (by default the shipped one, which never saw CLIVE);
2. stage 2 on the training side's images, scores on the database's own scale;
3. SRCC/PLCC/KRCC/RMSE on the test side's whole images, overall and per distortion type.

Everything goes to one output folder: `protocol.json` (the settings, so that a rerun
cannot mix settings), `split_NN/` (the training runs and `result.json`), and
`results.json` + `results.md` (rewritten after each split). A rerun skips the splits
that have a `result.json` and resumes an interrupted one from its training's backup/.
"""

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from diqa_tf.atomic import write_atomic
from diqa_tf.config import TrainingRecipe
from diqa_tf.data import files
from diqa_tf.errors import DatasetError, DIQAError
from diqa_tf.evaluation.folds import read_folds, relative_path
from diqa_tf.evaluation.metrics import correlations
from diqa_tf.evaluation.splits import content_split
from diqa_tf.models import QualityModel
from diqa_tf.resources import DEFAULT_STAGE1_MODEL, default_model_path, load_model
from diqa_tf.training.stage1 import train_stage1
from diqa_tf.training.logs import score_paths
from diqa_tf.training.stage2 import train_stage2

logger = logging.getLogger(__name__)

METRICS = ("srcc", "plcc", "krcc", "rmse")
# Fewer test images of one distortion type than this give no per-type correlation.
MIN_PER_TYPE = 3


@dataclasses.dataclass(frozen=True)
class ProtocolSettings:
    """What defines a protocol run; a rerun into the same output must match it.

    `stage1`: a stage-1 model for every split (None: train one per split where the
    database has references, else the shipped stage-1 model). `folds`: a folds file
    (`diqa_tf.evaluation.folds`): split i tests on its fold i and trains on the others,
    and `splits` says how many of its folds to run (`train_ratio` does not apply).
    `ranking_references`: folders of pristine photos for every split's stage 2
    (Stage2Config.reference_ranking_weight).
    """

    database: str
    root: str
    splits: int = 10
    train_ratio: float = 0.8
    seed: int = 0
    stage1: str | None = None
    folds: str | None = None
    ranking_references: tuple = ()

    def __post_init__(self):
        if self.splits < 1:
            raise DIQAError(f"`splits` must be at least 1. Received: {self.splits}")
        if not 0.0 < self.train_ratio < 1.0:
            raise DIQAError(f"`train_ratio` must be in (0, 1). Received: {self.train_ratio}")


def load_records(database, root, recipe: TrainingRecipe):
    """The database's records. A generic CSV follows the recipe's
    `stage2.exclude_training_images` (CLIVE's subject-training images)."""
    if database.name == "csv":
        return database.load(root, exclude_training_images=recipe.stage2.exclude_training_images)
    return database.load(root)


def score_scale(database, recipe: TrainingRecipe):
    """The scale scores are trained and reported on: the database's own; for a generic
    CSV (whose range the file does not say) the recipe's [score_scale]."""
    return recipe.score_scale if database.name == "csv" else database.scale


def make_splits(records, n_splits, train_ratio, seed):
    """[(train indices, test indices)] for split i shuffled with seed `seed + i`.

    Content-disjoint: all images of one content fall on the same side.
    """
    contents = [r.content for r in records]
    n_contents = len(set(contents))
    if n_contents < 2:
        raise DatasetError(f"content-disjoint splits need at least 2 contents; found {n_contents}")
    splits = []
    for i in range(n_splits):
        train, test = content_split(contents, 1.0 - train_ratio, seed + i)
        if not train or len(test) < 3:
            raise DatasetError(
                f"train ratio {train_ratio} of {n_contents} contents leaves {len(train)} training "
                f"and {len(test)} test images; the test side needs at least 3"
            )
        splits.append((train, test))
    return splits


def official_split(records):
    """(train indices, test indices) from the database's own sets, or None without them.

    KonIQ-10k's `koniq10k_distributions_sets.csv` assigns each image to training,
    validation or test. Ours: train on "training", report on "test", and leave
    "validation" out (stage 2 here selects no model on it), so the numbers are on the
    same test images as published ones.
    """
    sets = [r.split for r in records]
    if any(s is None for s in sets):
        return None
    train = [i for i, s in enumerate(sets) if s == "training"]
    test = [i for i, s in enumerate(sets) if s == "test"]
    if not train or not test:
        raise DatasetError("the official sets name no training or no test image")
    return train, test


def run_protocol(database, settings: ProtocolSettings, recipe: TrainingRecipe, output_dir,
                 verbose=0, on_split=None):
    """Run (or resume) the protocol; returns the summary written to `results.json`.

    `on_split(result, skipped)` is called after each split (for progress lines).
    """
    output_dir = Path(output_dir)
    records = load_records(database, settings.root, recipe)
    official = official_split(records)
    if settings.folds:
        splits = read_folds(settings.folds, settings.root, records)
        if settings.splits > len(splits):
            raise DIQAError(f"{settings.folds}: has {len(splits)} folds; "
                            f"{settings.splits} were asked for")
        splits = splits[: settings.splits]
    elif official:
        logger.info("%s: the database's official training/test sets, one split "
                    "(--splits and --train-ratio do not apply)", database.name)
        splits = [official]
    else:
        splits = make_splits(records, settings.splits, settings.train_ratio, settings.seed)
    _check_settings(output_dir, settings, recipe)
    recipe = dataclasses.replace(recipe, score_scale=score_scale(database, recipe))
    has_references = any(r.reference for r in records)
    pristine = files.read_photos(settings.ranking_references)
    logger.info("%s: %d images, %d contents, %d splits", database.name, len(records),
                len({r.content for r in records}), len(splits))
    results = []
    for i, (train_idx, test_idx) in enumerate(splits, start=1):
        split_dir = output_dir / f"split_{i:02d}"
        done = split_dir / "result.json"
        skipped = done.is_file()
        if skipped:
            result = json.loads(done.read_text())
        else:
            result = _run_split(
                i, [records[j] for j in train_idx], [records[j] for j in test_idx],
                settings, recipe, has_references, split_dir, verbose, pristine,
            )
            write_atomic(done, json.dumps(result, indent=2))
        results.append(result)
        summary = summarize(database.name, settings, recipe, results)
        write_atomic(output_dir / "results.json", json.dumps(summary, indent=2))
        write_atomic(output_dir / "results.md", markdown(summary))
        if on_split:
            on_split(result, skipped)
    return summary


def _run_split(index, train, test, settings, recipe, has_references, split_dir, verbose,
               pristine):
    # Each split also draws its own training randomness (crops, init of the new head).
    recipe = dataclasses.replace(
        recipe,
        stage1=dataclasses.replace(recipe.stage1, seed=recipe.stage1.seed + index - 1),
        stage2=dataclasses.replace(
            recipe.stage2, seed=recipe.stage2.seed + index - 1, holdout_fraction=0.0
        ),
    )
    seconds = {}
    start = time.time()
    if settings.stage1 is None and has_references:
        stage1_path = split_dir / "stage1" / "stage1.keras"
        if not (split_dir / "stage1" / "stage1_metrics.json").is_file():
            references, pairs = _reference_pairs(train)
            logger.info("split %d: stage 1 on %d references, %d pairs", index,
                        len(references), sum(len(p) for p in pairs.values()))
            train_stage1(references, recipe, split_dir / "stage1", verbose=verbose, pairs=pairs)
        stage1_source = "trained on the split's reference/distorted pairs"
    else:
        stage1_path = Path(settings.stage1 or default_model_path(DEFAULT_STAGE1_MODEL))
        stage1_source = str(stage1_path)
    seconds["stage1"] = round(time.time() - start, 1)

    start = time.time()
    stage2_dir = split_dir / "stage2"
    if not (stage2_dir / "stage2_metrics.json").is_file():
        logger.info("split %d: stage 2 on %d images", index, len(train))
        train_stage2(f"{settings.database} split {index}", stage1_path, recipe, stage2_dir,
                     verbose=verbose, records=train, ranking_references=pristine)
    seconds["stage2"] = round(time.time() - start, 1)

    start = time.time()
    model = load_model(stage2_dir / "stage2.keras", expected=QualityModel)
    predictions = score_paths(model, [r.path for r in test])
    seconds["evaluation"] = round(time.time() - start, 1)
    targets = np.array([r.score for r in test])
    return {
        "split": index,
        "seed": settings.seed + index - 1,
        "stage1": stage1_source,
        "train_images": len(train),
        "test_images": len(test),
        "test_contents": sorted({r.content for r in test}),
        "metrics": correlations(predictions, targets).to_dict(),
        "by_distortion": _by_distortion(test, predictions),
        "seconds": seconds,
        "predictions": [
            {"image": relative_path(r.path, settings.root), "score": r.score,
             "prediction": float(p)}
            for r, p in zip(test, predictions)
        ],
    }


def _reference_pairs(records):
    """[(reference path, RGB array)] and {reference path: [distorted paths]} of `records`."""
    pairs = {}
    for r in records:
        if r.reference:
            pairs.setdefault(r.reference, []).append(r.path)
    references = [(path, files.read_image(path).numpy()) for path in sorted(pairs)]
    return references, pairs


def _by_distortion(test, predictions):
    groups = {}
    for r, p in zip(test, predictions):
        if r.distortion:
            groups.setdefault(r.distortion, []).append((p, r.score))
    return {
        kind: correlations(*zip(*pairs)).to_dict()
        for kind, pairs in sorted(groups.items())
        if len(pairs) >= MIN_PER_TYPE
    }


def _sd(values):
    """The sample standard deviation over splits (0 for one split)."""
    return np.std(values, ddof=1) if len(values) > 1 else 0.0


STATISTICS = (("median", np.median), ("mean", np.mean), ("sd", _sd))


def _aggregate(values_by_metric):
    return {
        statistic: {m: float(f(values_by_metric[m])) for m in METRICS}
        for statistic, f in STATISTICS
    }


def summarize(name, settings, recipe, results):
    """The protocol's summary: per split, median and mean, and per distortion type."""
    per_split = [
        {"split": r["split"], "train_images": r["train_images"], "test_images": r["test_images"],
         **{m: r["metrics"][m] for m in METRICS}, "fit": r["metrics"]["fit"]}
        for r in results
    ]
    summary = {
        "database": name,
        "settings": dataclasses.asdict(settings),
        "score_scale": recipe.score_scale.to_dict(),
        "stage1": results[0]["stage1"] if results else None,
        "splits_done": len(results),
        "per_split": per_split,
        **_aggregate({m: [s[m] for s in per_split] for m in METRICS}),
        "by_distortion": {},
    }
    kinds = sorted({k for r in results for k in r["by_distortion"]})
    for kind in kinds:
        found = [r["by_distortion"][kind] for r in results if kind in r["by_distortion"]]
        summary["by_distortion"][kind] = {
            "splits": len(found),
            "images": int(sum(f["n"] for f in found)),
            **_aggregate({m: [f[m] for f in found] for m in METRICS}),
        }
    return summary


def markdown(summary):
    """The summary as Markdown tables (per split, median, mean; per distortion type)."""
    s = summary["settings"]
    scale = summary["score_scale"]
    direction = "higher" if scale["higher_is_better"] else "lower"
    if s.get("folds"):
        how = f"folds of `{s['folds']}` (each tested once, trained on the others)"
    else:
        how = f"content-disjoint splits (train ratio {s['train_ratio']:g}, seed {s['seed']})"
    lines = [
        f"# DIQA protocol on `{summary['database']}` ({s['root']})",
        "",
        f"{summary['splits_done']} of {s['splits']} {how}; stage 1: {summary['stage1']}. "
        f"RMSE on the database's scale ({scale['low']:g}..{scale['high']:g}, "
        f"{direction} = better), after the 4-parameter logistic fit.",
        "",
        "| split | train | test | SRCC | PLCC | KRCC | RMSE |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary["per_split"]:
        fit = "" if row["fit"] == "logistic" else f" ({row['fit']} fit)"
        lines.append(
            f"| {row['split']} | {row['train_images']} | {row['test_images']} | "
            + " | ".join(f"{row[m]:.4f}" for m in METRICS) + f"{fit} |"
        )
    for statistic, _ in STATISTICS:
        values = summary[statistic]
        lines.append(f"| **{statistic}** | | | " + " | ".join(f"{values[m]:.4f}" for m in METRICS)
                     + " |")
    if summary["by_distortion"]:
        lines += [
            "",
            "Per distortion type (test images of that type in each split; median / mean "
            "over the splits):",
            "",
            "| distortion | splits | images | SRCC | PLCC | KRCC | RMSE |",
            "|---|---|---|---|---|---|---|",
        ]
        for kind, row in summary["by_distortion"].items():
            cells = " | ".join(
                f"{row['median'][m]:.4f} / {row['mean'][m]:.4f}" for m in METRICS
            )
            lines.append(f"| {kind} | {row['splits']} | {row['images']} | {cells} |")
    return "\n".join(lines) + "\n"


def _check_settings(output_dir, settings, recipe):
    """Record the settings in `protocol.json`, or refuse a rerun that changed them.

    `splits` may change: split i is the same whatever their number (its own seed, or
    fold i), so a rerun with more splits extends a run and one with fewer reports part.
    A setting that a run's `protocol.json` predates counts as its default there (what
    the code that wrote it did), so runs survive new options. A folds file counts by
    its contents, wherever the checkout is.
    """
    path = output_dir / "protocol.json"
    current = _as_json(settings, recipe)
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DIQAError(f"{path}: cannot be read ({e})") from None
        previous = _merged(_as_json(ProtocolSettings("", ""), TrainingRecipe()), previous)
        changed = [
            f"{section}.{key}"
            for section in current
            for key in sorted(set(current[section]) | set(previous.get(section, {})))
            if current[section].get(key) != previous.get(section, {}).get(key)
            and (section, key) != ("settings", "splits")
        ]
        if changed:
            raise DIQAError(
                f"{output_dir}: a protocol run with other settings is there (changed: "
                f"{', '.join(changed)}); rerun it with its own options or use a new --output"
            )
        return
    write_atomic(path, json.dumps(current, indent=2))


def _as_json(settings, recipe):
    current = {"settings": dataclasses.asdict(settings), "recipe": dataclasses.asdict(recipe)}
    if settings.folds:
        digest = hashlib.sha256(Path(settings.folds).read_bytes()).hexdigest()
        current["settings"]["folds"] = f"sha256:{digest}"
    if settings.ranking_references:
        current["settings"]["ranking_references"] = _photos_digest(settings.ranking_references)
    return json.loads(json.dumps(current))  # tuples -> lists, as read back


def _photos_digest(inputs):
    """sha256 of the photos `inputs` name (their names and bytes), so that a rerun counts
    them by what they are, wherever the folder is."""
    digest = hashlib.sha256()
    for path in files.image_paths(inputs):
        digest.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes())
    return f"sha256:{digest.hexdigest()}"


def _merged(defaults, values):
    """`values` over `defaults`, recursively for dicts."""
    if not isinstance(defaults, dict) or not isinstance(values, dict):
        return values
    return {**defaults, **{k: _merged(defaults.get(k), v) for k, v in values.items()}}
