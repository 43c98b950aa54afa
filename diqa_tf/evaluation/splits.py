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
