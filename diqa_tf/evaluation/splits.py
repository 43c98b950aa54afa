"""Content-disjoint splits: no scene is ever on both sides (DESIGN 4)."""

import numpy as np


def content_split(contents, holdout_fraction, seed):
    """Split item indices so that all items of one content fall on the same side.

    Returns (train_indices, holdout_indices), each sorted. Contents are shuffled
    with `seed`; the holdout takes round(holdout_fraction * n_contents) of them.
    """
    unique = sorted(set(contents))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_holdout = int(round(holdout_fraction * len(unique)))
    held = {unique[i] for i in order[:n_holdout]}
    train = [i for i, c in enumerate(contents) if c not in held]
    holdout = [i for i, c in enumerate(contents) if c in held]
    return train, holdout


def content_folds(contents, k, seed):
    """Split item indices into `k` content-disjoint folds of near-equal content counts.

    Returns a list of k sorted index lists. Contents are shuffled with `seed` and dealt
    round-robin, so fold sizes differ by at most one content.
    """
    unique = sorted(set(contents))
    if not 2 <= k <= len(unique):
        raise ValueError(f"`k` must be between 2 and the number of contents ({len(unique)}). "
                         f"Received: k={k}")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[j]: position % k for position, j in enumerate(order)}
    folds = [[] for _ in range(k)]
    for i, c in enumerate(contents):
        folds[fold_of[c]].append(i)
    return folds
