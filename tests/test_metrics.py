"""SRCC/KRCC/PLCC/RMSE and the logistic mapping of diqa_tf.evaluation.metrics."""

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from diqa_tf.evaluation import metrics


def test_perfect_monotone_nonlinear_relation():
    x = np.linspace(0.0, 10.0, 50)
    y = metrics.logistic_4(x, 90.0, 10.0, 4.0, 1.5)
    result = metrics.correlations(x, y)
    assert result.fit == "logistic"
    assert result.srcc == pytest.approx(1.0)
    assert result.krcc == pytest.approx(1.0)
    assert result.plcc == pytest.approx(1.0, abs=1e-6)
    assert result.rmse == pytest.approx(0.0, abs=1e-4)
    assert result.n == 50
    # The mapping is what lifts PLCC: the raw relation is far from linear.
    assert stats.pearsonr(x, y)[0] < 0.99


def test_reversed_order():
    x = np.linspace(0.0, 1.0, 30)
    y = np.exp(-3.0 * x)  # strictly decreasing, e.g. DMOS vs a quality score
    result = metrics.correlations(x, y)
    assert result.srcc == pytest.approx(-1.0)
    assert result.krcc == pytest.approx(-1.0)
    # The fitted mapping follows the decrease, so the mapped scores agree with y.
    assert result.plcc > 0.99


def test_small_example_against_scipy():
    x = np.array([3.1, 1.2, 4.8, 2.2, 5.0, 0.7, 3.9, 2.9])
    y = np.array([30.0, 15.0, 41.0, 25.0, 52.0, 8.0, 33.0, 36.0])
    result = metrics.correlations(x, y)
    mapping, fit = metrics.fit_logistic(x, y)
    assert result.fit == fit
    assert result.srcc == pytest.approx(stats.spearmanr(x, y)[0])
    assert result.krcc == pytest.approx(stats.kendalltau(x, y)[0])
    assert result.plcc == pytest.approx(stats.pearsonr(mapping(x), y)[0])
    assert result.rmse == pytest.approx(np.sqrt(np.mean((mapping(x) - y) ** 2)))


def test_hand_computed_example_uses_linear_fit():
    # 4 points cannot support a 4-parameter logistic. By hand: SRCC = 1 - 6*2/(4*15)
    # = 0.8, KRCC = (5 - 1)/6, the line is 2.5 + 0.8 (x - 2.5): residuals +-0.3, +-0.9.
    result = metrics.correlations([1, 2, 3, 4], [1, 3, 2, 4])
    assert result.fit == "linear"
    assert result.srcc == pytest.approx(0.8)
    assert result.krcc == pytest.approx(2.0 / 3.0)
    assert result.plcc == pytest.approx(0.8)
    assert result.rmse == pytest.approx(math.sqrt(0.45))


def test_noisy_data_in_range():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 100.0, size=200)
    y = x + rng.normal(0.0, 25.0, size=200)
    result = metrics.correlations(x, y)
    for value in (result.srcc, result.plcc, result.krcc):
        assert -1.0 <= value <= 1.0
    assert 0.3 < result.srcc < 1.0
    assert result.rmse > 0.0


def test_uncorrelated_noise():
    rng = np.random.default_rng(1)
    result = metrics.correlations(rng.normal(size=100), rng.normal(size=100))
    for value in (result.srcc, result.plcc, result.krcc):
        assert -1.0 <= value <= 1.0
    assert abs(result.srcc) < 0.3


def test_to_dict_is_json_serialisable():
    result = metrics.correlations([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 1.0, 4.0, 3.0, 6.0, 5.0])
    d = result.to_dict()
    assert set(d) == {"srcc", "plcc", "krcc", "rmse", "n", "fit"}
    assert json.loads(json.dumps(d)) == d


def test_linear_fallback_when_curve_fit_does_not_converge(monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found: maxfev reached")

    monkeypatch.setattr(metrics.optimize, "curve_fit", fail)
    x = np.linspace(0.0, 1.0, 20)
    y = 3.0 * x + 1.0
    mapping, fit = metrics.fit_logistic(x, y)
    assert fit == "linear"
    np.testing.assert_allclose(mapping(x), y, atol=1e-9)
    result = metrics.correlations(x, y)
    assert result.fit == "linear"
    assert result.plcc == pytest.approx(1.0)
    assert result.rmse == pytest.approx(0.0, abs=1e-9)


def test_linear_fallback_on_optimize_warning(monkeypatch):
    def warn(*args, **kwargs):
        warnings.warn("Covariance could not be estimated", metrics.optimize.OptimizeWarning)
        return np.ones(4), np.full((4, 4), np.inf)

    monkeypatch.setattr(metrics.optimize, "curve_fit", warn)
    _, fit = metrics.fit_logistic(np.arange(10.0), np.arange(10.0) ** 2)
    assert fit == "linear"


def test_linear_fallback_on_non_finite_parameters(monkeypatch):
    monkeypatch.setattr(
        metrics.optimize, "curve_fit", lambda *a, **k: (np.array([1.0, np.nan, 0.0, 1.0]), None)
    )
    _, fit = metrics.fit_logistic(np.arange(10.0), np.arange(10.0) ** 2)
    assert fit == "linear"


def test_too_few_points_for_logistic_use_linear_without_monkeypatch():
    # Real, unpatched scipy: 3 and 4 points do not support the 4-parameter fit.
    for n in (3, 4):
        x = np.arange(float(n))
        _, fit = metrics.fit_logistic(x, x**2)
        assert fit == "linear"


def test_logistic_4_saturates_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning: overflow in exp
        out = metrics.logistic_4(np.array([-1e6, 0.0, 1e6]), 5.0, 1.0, 0.0, 1.0)
    np.testing.assert_allclose(out, [1.0, 3.0, 5.0])


@pytest.mark.parametrize(
    "predictions, targets, match",
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], r"same length.*len\(predictions\)=3, len\(targets\)=2"),
        ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0], r"`predictions` must be all finite.*index 1"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, np.inf], r"`targets` must be all finite.*index 2"),
        ([1.0, 2.0], [1.0, 2.0], r"at least 3 values. Received: 2"),
        ([[1.0, 2.0, 3.0]], [1.0, 2.0, 3.0], r"`predictions` must be 1-D.*\(1, 3\)"),
        (["a", "b", "c"], [1.0, 2.0, 3.0], r"`predictions` must be numeric"),
    ],
)
def test_bad_inputs_raise(predictions, targets, match):
    with pytest.raises(ValueError, match=match):
        metrics.correlations(predictions, targets)
