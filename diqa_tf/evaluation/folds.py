"""Fixed k-fold cross-validation folds, kept in a JSON file so that every recipe is
judged on the same photos (`diqa folds` writes one; `diqa benchmark --folds` reads it).

The file names each fold's images by path relative to the database root (for a CSV,
its folder), with the seed that drew them:
`{"database", "k", "seed", "images", "folds": [[path, ...], ...]}`.
"""

import json
import os
from pathlib import Path

from diqa_tf.atomic import write_atomic
from diqa_tf.errors import DatasetError
from diqa_tf.evaluation.splits import content_folds


def _base(root):
    root = Path(root)
    return root if root.is_dir() else root.parent


def relative_path(path, root):
    """`path` relative to the database root (for a CSV file: its folder)."""
    return Path(os.path.relpath(path, _base(root))).as_posix()


def write_folds(path, database_name, root, records, k, seed):
    """Draw k content-disjoint folds of `records` and write them to `path`."""
    try:
        folds = content_folds([r.content for r in records], k, seed)
    except ValueError as e:
        raise DatasetError(f"{database_name}: {e}") from None
    document = {
        "database": database_name,
        "k": k,
        "seed": seed,
        "images": len(records),
        "folds": [sorted(relative_path(records[i].path, root) for i in fold) for fold in folds],
    }
    write_atomic(path, json.dumps(document, indent=1) + "\n")
    return document


def _load(path):
    path = Path(path)
    try:
        document = json.loads(path.read_text())
        folds = document["folds"]
        if not isinstance(folds, list) or not all(isinstance(f, list) for f in folds):
            raise TypeError("`folds` must be a list of lists of paths")
    except FileNotFoundError:
        raise DatasetError(f"{path}: folds file not found") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{path}: not a folds file written by `diqa folds` ({e})") from None
    return folds


def fold_count(path):
    """How many folds the file holds."""
    return len(_load(path))


def read_folds(path, root, records):
    """[(train indices, test indices)] of each fold in the file, test = that fold.

    Every record must be in exactly one fold and every name in the file must be a
    record, else the folds would not be the ones the file promises.
    """
    folds = _load(path)
    index = {relative_path(r.path, root): i for i, r in enumerate(records)}
    fold_of = {}
    for f, names in enumerate(folds):
        for name in names:
            if name in fold_of:
                raise DatasetError(f"{path}: {name} is in folds {fold_of[name] + 1} and {f + 1}")
            fold_of[name] = f
    unknown = sorted(set(fold_of) - set(index))
    missing = sorted(set(index) - set(fold_of))
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"{len(unknown)} names not in the database (e.g. {unknown[0]})")
        if missing:
            problems.append(f"{len(missing)} database images in no fold (e.g. {missing[0]})")
        raise DatasetError(f"{path}: does not match the database: {'; '.join(problems)}")
    content_fold = {}
    for name, i in index.items():
        content = records[i].content
        if content_fold.setdefault(content, fold_of[name]) != fold_of[name]:
            raise DatasetError(f"{path}: content {content!r} is in folds "
                               f"{content_fold[content] + 1} and {fold_of[name] + 1}")
    splits = []
    for f in range(len(folds)):
        test = sorted(index[name] for name in folds[f])
        train = sorted(i for name, i in index.items() if fold_of[name] != f)
        if len(test) < 3:
            raise DatasetError(f"{path}: fold {f + 1} has {len(test)} images; at least 3 are needed")
        splits.append((train, test))
    return splits
