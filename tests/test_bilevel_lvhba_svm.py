"""LV-HBA on the primal SVM of its paper (`problems.SVMPrimalHyperparameter`)."""

import numpy as np
import pytest
from scipy.optimize import minimize as sp_minimize

from optcore import NumericalError, bilevel
from optcore.bilevel import problems


def instance(seed=0, n=60, nv=40, p=3, dtype=None):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n + nv, p))
    t = np.sign(X[:, 0] + 0.5 * X[:, 1] + 0.3 + 0.6 * r.normal(size=n + nv))
    prob = problems.SVMPrimalHyperparameter(X[:n], t[:n], X[n:], t[n:], dtype=dtype)
    return prob, X, t, n


def test_lower_solution_matches_scipy():
    prob, X, t, n = instance()
    c = np.random.default_rng(1).uniform(-3, 1, size=n)
    y = prob.lower_solution(c)
    w, b, xi = prob.split(y)
    A = np.hstack([X[:n], np.ones((n, 1))]) * t[:n, None]

    def obj(v):
        s = np.maximum(0.0, 1.0 - A @ v)
        g = -A.T @ (np.exp(c) * s)
        g[:-1] += v[:-1]
        return 0.5 * v[:-1] @ v[:-1] + 0.5 * (np.exp(c) * s) @ s, g

    ref = sp_minimize(obj, np.zeros(4), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15}).x
    np.testing.assert_allclose(np.r_[w, b], ref, atol=1e-5)
    np.testing.assert_allclose(xi, np.maximum(0.0, 1.0 - A @ np.r_[w, b]), atol=1e-12)


def test_upper_loss_counts_misclassified():
    prob, X, t, n = instance()
    y = prob.lower_solution(np.zeros(n))
    Xv, tv = X[n:], t[n:]
    wrong = np.sum(np.sign(prob.decision(y, Xv)) != tv)
    # ℓ ∈ (−0.01, 1): about 1 per misclassified sample; far from the margin exactly so.
    f = prob.upper_loss(y, Xv, tv)
    assert -0.01 * len(tv) < f < wrong + 0.5 * len(tv)
    assert prob.upper_loss(y, Xv, tv) > prob.upper_loss(
        y, Xv[tv * prob.decision(y, Xv) > 0], tv[tv * prob.decision(y, Xv) > 0]
    )


def test_lvhba_lowers_validation_loss_and_reports_the_truth():
    prob, X, t, n = instance()
    Xv, tv = X[n:], t[n:]
    c0 = np.full(n, -5.0)
    start = prob.upper_loss(prob.lower_solution(c0), Xv, tv)
    res = bilevel.minimize(prob, c0, method="lvhba", maxiter=2000, warn=False, rng=0, options={"c0": 300.0})
    assert res.status == 1 and not res.success
    # The validation loss of the returned y: well below the exact SVM's at the start.
    assert res.fun == pytest.approx(prob.upper_loss(res.y, Xv, tv), rel=1e-9)
    assert res.fun < 0.5 * start
    # What the result says about itself, re-measured: the margins h(y) ≤ 0 and λ ≥ 0.
    w, b, xi = prob.split(res.y)
    h = 1.0 - xi - t[:n] * (X[:n] @ w + b)
    assert res.constraint_violation == pytest.approx(max(h.max(), 0.0), rel=1e-9, abs=1e-15)
    assert res.constraint_violation < 0.1
    assert np.all(res.multipliers >= 0)
    # x moved (its own step, the constraints do not involve x) and stayed finite.
    assert np.all(np.isfinite(res.x)) and np.abs(res.x - c0).max() > 0.1
    assert res.steps["x"] > res.steps["y"]


def test_reproducible_by_rng_and_float32():
    prob, X, t, n = instance()
    c0 = np.full(n, -5.0)
    a = bilevel.minimize(prob, c0, method="lvhba", maxiter=300, warn=False, rng=3, options={"c0": 300.0})
    b = bilevel.minimize(prob, c0, method="lvhba", maxiter=300, warn=False, rng=3, options={"c0": 300.0})
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    p32, *_ = instance(dtype=np.float32)
    r32 = bilevel.minimize(
        p32, c0.astype(np.float32), method="lvhba", maxiter=300, warn=False, rng=3, options={"c0": 300.0}
    )
    assert r32.x.dtype == np.float32 and r32.y.dtype == np.float32
    assert np.all(np.isfinite(r32.y))
    np.testing.assert_allclose(r32.x, a.x, atol=0.3)  # the same run up to f32 round-off growth


def test_default_start_and_zero_weights():
    prob, X, t, n = instance()
    np.testing.assert_array_equal(prob.start, np.r_[np.ones(3), 0.0, np.ones(n)])
    res = bilevel.minimize(prob, np.full(n, -5.0), method="lvhba", maxiter=1, warn=False, rng=0)
    assert res.nit == 1
    # f divides the margins by ‖w‖: w = 0 is a named numerical error, not a NaN result.
    with pytest.raises(NumericalError, match="‖w‖"):
        bilevel.minimize(prob, np.full(n, -5.0), np.zeros(prob.d_y), method="lvhba", maxiter=10, warn=False)


def test_bad_input_raises_named_errors():
    r = np.random.default_rng(0)
    X, t = r.normal(size=(10, 2)), np.sign(r.normal(size=10))
    with pytest.raises(ValueError, match="same number of columns"):
        problems.SVMPrimalHyperparameter(X, t, X[:, :1], t)
    with pytest.raises(ValueError, match="y_tr"):
        problems.SVMPrimalHyperparameter(X, t[:5], X, t)
    with pytest.raises(ValueError, match="labels"):
        problems.SVMPrimalHyperparameter(X, 3 * t, X, t)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="X_tr"):
        problems.SVMPrimalHyperparameter(Xn, t, X, t)
    with pytest.raises(ValueError, match="dtype"):
        problems.SVMPrimalHyperparameter(X, t, X, t, dtype=np.int32)
    prob = problems.SVMPrimalHyperparameter(X, t, X, t)
    with pytest.raises(ValueError, match="x0"):
        bilevel.minimize(prob, np.zeros(3), method="lvhba")
    with pytest.raises(ValueError, match="log-weights"):
        prob.lower_solution(np.full(10, np.nan))
