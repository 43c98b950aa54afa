"""How well predicted quality scores agree with subjective scores (MOS/DMOS).

SRCC and KRCC are computed on the raw predictions; PLCC and RMSE after the VQEG
4-parameter logistic mapping, as is usual in IQA papers (design doc, section 5).
"""

import dataclasses
import warnings
from typing import Callable

import numpy as np
from scipy import optimize
from scipy import stats

# A 4-parameter fit on 4 or fewer points is exact or underdetermined: scipy
# raises or cannot estimate the covariance, so fall back to a line there.
_MIN_POINTS_FOR_LOGISTIC = 5
_MAXFEV = 10000


@dataclasses.dataclass(frozen=True)
class Correlations:
    """Agreement of `n` predictions with their targets.

    `fit` says which mapping was used for `plcc` and `rmse`: "logistic" or "linear".
    """

    srcc: float
    plcc: float
    krcc: float
    rmse: float
    n: int
    fit: str

    def to_dict(self) -> dict:
        """The fields as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)


def logistic_4(x, b1, b2, b3, b4):
    """VQEG 4-parameter logistic: `(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2`."""
    x = np.asarray(x, dtype=np.float64)
    # exp overflow only means the curve is saturated at b2; 1 / inf == 0 is right.
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return (b1 - b2) / (1.0 + np.exp(-(x - b3) / np.abs(b4))) + b2


def _as_vector(name, values):
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{name}` must be numeric. Received: {name}={values!r}") from e
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D. Received: {name}.shape={array.shape}")
    return array


def _validate(predictions, targets):
    x = _as_vector("predictions", predictions)
    y = _as_vector("targets", targets)
    if x.size != y.size:
        raise ValueError(
            "`predictions` and `targets` must have the same length. "
            f"Received: len(predictions)={x.size}, len(targets)={y.size}"
        )
    if x.size < 3:
        raise ValueError(
            f"`predictions` and `targets` must have at least 3 values. Received: {x.size}"
        )
    for name, array in (("predictions", x), ("targets", y)):
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ValueError(
                f"`{name}` must be all finite. Received: {bad.size} NaN or infinite "
                f"value(s), the first at index {bad[0]} ({array[bad[0]]})"
            )
    return x, y


def _fit_linear(x, y):
    slope, intercept = np.polyfit(x, y, 1)

    def mapping(values):
        return slope * np.asarray(values, dtype=np.float64) + intercept

    return mapping


def _fit_logistic_params(x, y):
    """The fitted logistic parameters, or None where the fit does not converge."""
    if x.size < _MIN_POINTS_FOR_LOGISTIC:
        return None
    std = float(np.std(x))
    p0 = [float(np.max(y)), float(np.min(y)), float(np.mean(x)), std if std > 0 else 1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", optimize.OptimizeWarning)
        try:
            params, _ = optimize.curve_fit(logistic_4, x, y, p0=p0, maxfev=_MAXFEV)
        except (RuntimeError, optimize.OptimizeWarning):
            return None
    if not np.all(np.isfinite(params)) or not np.all(np.isfinite(logistic_4(x, *params))):
        return None
    return params


def fit_logistic(predictions, targets) -> tuple[Callable, str]:
    """Fits `targets ~ logistic_4(predictions)`, else a line where the logistic fails.

    Returns:
        `(mapping, fit)`: `mapping` maps predictions to the target scale, `fit` is
        "logistic" or "linear".
    """
    x, y = _validate(predictions, targets)
    params = _fit_logistic_params(x, y)
    if params is None:
        return _fit_linear(x, y), "linear"

    def mapping(values):
        return logistic_4(values, *params)

    return mapping, "logistic"


def correlations(predictions, targets) -> Correlations:
    """SRCC, KRCC (raw) and PLCC, RMSE (after `fit_logistic`) of predictions vs targets."""
    x, y = _validate(predictions, targets)
    mapping, fit = fit_logistic(x, y)
    mapped = mapping(x)
    return Correlations(
        srcc=float(stats.spearmanr(x, y)[0]),
        plcc=float(stats.pearsonr(mapped, y)[0]),
        krcc=float(stats.kendalltau(x, y)[0]),
        rmse=float(np.sqrt(np.mean((mapped - y) ** 2))),
        n=int(x.size),
        fit=fit,
    )
