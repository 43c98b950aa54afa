"""How well stage 1 predicts objective error maps."""

import numpy as np

from diqa_tf import preprocessing


def error_map_quality(model, dataset, config):
    """Reliability-weighted MSE and Pearson correlation of predicted vs true maps.

    The correlation is over all pixels of all maps of `dataset` (batches of
    ({"image"}, {"error_map", "reliability"})).
    """
    losses, predicted, true = [], [], []
    for inputs, targets in dataset:
        pred = model(inputs, training=False)["error_map"]
        losses.append(
            preprocessing.weighted_error_per_sample(
                pred, targets["error_map"], targets["reliability"], config
            ).numpy()
        )
        predicted.append(pred.numpy().ravel())
        true.append(targets["error_map"].numpy().ravel())
    predicted, true = np.concatenate(predicted), np.concatenate(true)
    return {
        "weighted_mse": float(np.mean(np.concatenate(losses))),
        "map_plcc": float(np.corrcoef(predicted, true)[0, 1]),
        "maps": int(sum(len(x) for x in losses)),
    }
