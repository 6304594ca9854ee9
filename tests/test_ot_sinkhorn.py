"""Tests of :func:`optcore.ot.sinkhorn`.

Every numerical check is made against an independent reference computed here in float64:
the marginal error and objective measured on the returned plan, POT's log-domain Sinkhorn,
POT's exact ``ot.emd2``, the exact optimality condition of 2x2 problems, and the identities the
solution must satisfy (plan = exp((f + g - M) / reg), invariances).
"""

from __future__ import annotations

import warnings
from itertools import pairwise

import numpy as np
import ot as pot
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from ot_reference import (
    LOG_METHODS,
    METHODS,
    SCALING_RANGE,
    SOLVE_TOL,
    assert_valid_result,
    dual_tolerance,
    entropic_objective,
    marginal_l1,
    point_cloud,
    problems,
    random_problem,
    weights,
)
from scipy.optimize import brentq

import optcore
from optcore import ConvergenceWarning
from optcore.ot import sinkhorn

# ------------------------------------------------------------------------------------------
# Reference values
# ------------------------------------------------------------------------------------------


def two_by_two_reference(a, b, M, reg) -> np.ndarray:
    """Exact entropic plan of a 2x2 problem. The feasible plans are
    P(t) = [[t, a0 - t], [b0 - t, a1 - b0 + t]]; the objective is strictly convex in t and
    its derivative vanishes where log(P00 P11 / (P01 P10)) = -(M00 - M01 - M10 + M11) / reg,
    a monotone equation solved by bracketing."""
    lo, hi = max(0.0, b[0] - a[1]), min(a[0], b[0])
    target = -(M[0, 0] - M[0, 1] - M[1, 0] + M[1, 1]) / reg

    def plan(t):
        return np.array([[t, a[0] - t], [b[0] - t, a[1] - b[0] + t]])

    def h(t):
        P = plan(t)
        return np.log(P[0, 0]) + np.log(P[1, 1]) - np.log(P[0, 1]) - np.log(P[1, 0]) - target

    with np.errstate(divide="ignore"):  # h(lo) = -inf, h(hi) = +inf
        t = brentq(h, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps)
    return plan(t)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("reg", [0.1, 0.5, 2.0])
def test_two_by_two_matches_exact_minimiser(method, reg):
    """A 2x2 problem (the docstring example) equals the exact 1-D minimiser of the objective."""
    a, b = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    M = np.array([[0.0, 1.0], [1.0, 0.0]])
    res = sinkhorn(a, b, M, reg, method=method, tol=1e-12)
    assert res.success and res.status == 0
    assert_allclose(res.plan, two_by_two_reference(a, b, M, reg), atol=1e-9)
    assert_valid_result(res, a, b, M, reg, 1e-12)


def test_docstring_example_plan():
    """The rounded plan of the docstring example."""
    a, b = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    M = np.array([[0.0, 1.0], [1.0, 0.0]])
    res = sinkhorn(a, b, M, reg=0.1)
    assert_array_equal(np.round(res.plan, 3), [[0.25, 0.25], [0.0, 0.5]])


@pytest.mark.parametrize("method", METHODS)
def test_result_fields(method, dtype, tols):
    """Every documented field, checked against float64 recomputation from the plan."""
    p = random_problem(3, 17, 23, zero_frac=0.2, scale=2.0, reg_factor=0.1).astype(dtype)
    res = sinkhorn(p.a, p.b, p.M, p.reg, method=method, tol=tols.solve_tol)
    assert isinstance(res, optcore.OTResult) and isinstance(res, optcore.OptimizeResult)
    for key in (
        "x",
        "plan",
        "f",
        "g",
        "cost",
        "fun",
        "marginal_error",
        "nit",
        "success",
        "status",
        "message",
        "method",
        "reg",
        "tol",
    ):
        assert key in res, key
    assert res.success is True and res.status == 0
    assert "onverged" in res.message
    assert res.method == method and res.reg == p.reg and res.tol == tols.solve_tol
    assert isinstance(res.nit, int) and 0 < res.nit <= 10_000
    assert isinstance(res.cost, float) and isinstance(res.fun, float)
    assert res.f.shape == (17,) and res.g.shape == (23,)
    assert_valid_result(res, p.a, p.b, p.M, p.reg, tols.solve_tol)


@pytest.mark.parametrize("method", METHODS)
def test_default_tol(method, dtype):
    """tol=None means 1e-9 (float64) / 1e-5 (float32), and holds on the returned plan."""
    p = random_problem(5, 12, 15, reg_factor=0.2).astype(dtype)
    res = sinkhorn(p.a, p.b, p.M, p.reg, method=method)
    expected = 1e-9 if dtype == np.float64 else 1e-5
    assert res.tol == expected == optcore.ot.default_tol(dtype)
    assert res.success
    assert marginal_l1(res.plan, p.a, p.b) <= expected


# ------------------------------------------------------------------------------------------
# Several target histograms at once
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_batched_histograms_shapes_and_values(method, dtype, tols):
    """b of shape (m, k): plan (k, n, m), f (k, n), g (k, m), per-histogram error/cost/fun
    of shape (k,), each slice equal to the single-histogram solve and valid on its own."""
    n, m, k = 13, 9, 3
    rng = np.random.default_rng(11)
    a = weights(rng, n, 0.2)
    B = np.stack([weights(rng, m, 0.2) for _ in range(k)], axis=1)
    M = rng.random((n, m))
    a, B, M = a.astype(dtype), B.astype(dtype), M.astype(dtype)
    reg, tol = 0.1, tols.solve_tol
    res = sinkhorn(a, B, M, reg, method=method, tol=tol)
    assert res.plan.shape == (k, n, m) and res.x is res.plan
    assert res.f.shape == (k, n) and res.g.shape == (k, m)
    for name in ("marginal_error", "cost", "fun"):
        assert np.shape(res[name]) == (k,), name
    assert res.plan.dtype == dtype and res.f.dtype == dtype and res.g.dtype == dtype
    assert res.success and res.status == 0
    for h in range(k):
        plan = res.plan[h]
        sub = optcore.OTResult(
            plan=plan,
            x=plan,
            f=res.f[h],
            g=res.g[h],
            cost=float(res.cost[h]),
            fun=float(res.fun[h]),
            marginal_error=float(res.marginal_error[h]),
            success=bool(res.marginal_error[h] <= tol),
            status=0 if res.marginal_error[h] <= tol else 1,
        )
        assert_valid_result(sub, a, B[:, h], M, reg, tol)
        single = sinkhorn(a, B[:, h], M, reg, method=method, tol=tol)
        assert np.abs(single.plan.astype(np.float64) - res.plan[h]).sum() <= 20 * tol


def test_batched_failure_reported():
    """With k histograms, a non-converged histogram makes the whole result unsuccessful."""
    rng = np.random.default_rng(2)
    a = weights(rng, 20)
    B = np.stack([weights(rng, 25) for _ in range(2)], axis=1)
    M = rng.random((20, 25))
    with pytest.warns(ConvergenceWarning):
        res = sinkhorn(a, B, M, 0.01, maxiter=3)
    assert not res.success and res.status == 1
    assert np.all(res.marginal_error > res.tol)


# ------------------------------------------------------------------------------------------
# Hypothesis properties
# ------------------------------------------------------------------------------------------


@given(p=problems())
def test_property_valid_plan(p):
    """Plan >= 0, finite; measured marginal error <= tol when success; zero-weight rows and
    columns are zero; plan = exp((f+g-M)/reg); cost and objective match the plan."""
    tol = SOLVE_TOL[p.M.dtype]
    for method in METHODS:
        res = sinkhorn(p.a, p.b, p.M, p.reg, method=method, tol=tol, warn=False)
        assert res.plan.dtype == p.M.dtype
        assert_valid_result(res, p.a, p.b, p.M, p.reg, tol)
        assert res.success, (method, res.message)


@given(p=problems(), c=st.floats(-5.0, 5.0))
def test_property_constant_shift(p, c):
    """M + c: same plan (to tolerance), and f_i + g_j shifts by exactly c."""
    tol = SOLVE_TOL[p.M.dtype]
    eps = float(np.finfo(p.M.dtype).eps)
    shift = c * p.scale
    M2 = (p.M.astype(np.float64) + shift).astype(p.M.dtype)
    applied = M2.astype(np.float64) - p.M.astype(np.float64)  # the shift after rounding
    mass = float(p.a.sum(dtype=np.float64))
    for method in METHODS:
        if method == "scaling" and np.max(np.abs(M2)) / p.reg > 0.6 * SCALING_RANGE[p.M.dtype]:
            continue  # documented: K = exp(-M/reg) leaves the dtype's range
        r1 = sinkhorn(p.a, p.b, p.M, p.reg, method=method, tol=tol)
        r2 = sinkhorn(p.a, p.b, M2, p.reg, method=method, tol=tol)
        assert r1.success and r2.success
        rounding = float(np.max(np.abs(applied - shift))) / p.reg
        diff = np.abs(r1.plan.astype(np.float64) - r2.plan).sum()
        assert diff <= 20 * tol + 4 * rounding * mass + 1e-12, method
        fin = np.isfinite(r1.f)[:, None] & np.isfinite(r1.g)[None, :]
        assert np.array_equal(fin, np.isfinite(r2.f)[:, None] & np.isfinite(r2.g)[None, :])
        s1 = r1.f.astype(np.float64)[:, None] + r1.g.astype(np.float64)[None, :]
        s2 = r2.f.astype(np.float64)[:, None] + r2.g.astype(np.float64)[None, :]
        size = max(np.max(np.abs(v[np.isfinite(v)]), initial=0.0) for v in (r1.f, r1.g, r2.f, r2.g))
        atol = (
            16 * eps * (abs(shift) + 2 * size + p.scale)
            + float(np.max(np.abs(applied - shift)))
            + dual_tolerance(r1.plan, p.reg, 20 * tol)[fin]
        )
        assert np.all(np.abs(s2[fin] - s1[fin] - shift) <= atol), method


@given(p=problems())
def test_property_transpose(p):
    """sinkhorn(b, a, M.T) gives the transposed plan and the swapped potentials."""
    tol = SOLVE_TOL[p.M.dtype]
    eps = float(np.finfo(p.M.dtype).eps)
    for method in METHODS:
        r = sinkhorn(p.a, p.b, p.M, p.reg, method=method, tol=tol)
        rt = sinkhorn(p.b, p.a, np.ascontiguousarray(p.M.T), p.reg, method=method, tol=tol)
        assert r.success and rt.success
        assert rt.plan.shape == r.plan.T.shape
        assert np.abs(rt.plan.T.astype(np.float64) - r.plan).sum() <= 20 * tol + 1e-12, method
        s = r.f.astype(np.float64)[:, None] + r.g.astype(np.float64)[None, :]
        st_ = rt.g.astype(np.float64)[:, None] + rt.f.astype(np.float64)[None, :]
        fin = np.isfinite(s)
        assert np.array_equal(fin, np.isfinite(st_))
        size = max(np.max(np.abs(v[np.isfinite(v)]), initial=0.0) for v in (r.f, r.g, rt.f, rt.g))
        atol = 16 * eps * (2 * size + p.scale) + dual_tolerance(r.plan, p.reg, 20 * tol)[fin]
        assert np.all(np.abs(st_[fin] - s[fin]) <= atol), method


@given(p=problems(dtype=np.float64))
def test_property_float32_matches_float64(p):
    """float32 (default tol 1e-5) matches float64 (tol 1e-10) to 1e-4 of the plan's mass."""
    mass = float(p.a.sum())
    p32 = p.astype(np.float32)
    for method in METHODS:
        r64 = sinkhorn(p.a, p.b, p.M, p.reg, method=method, tol=1e-10)
        r32 = sinkhorn(p32.a, p32.b, p32.M, p.reg, method=method)
        assert r64.success and r32.success, method
        assert r32.plan.dtype == np.float32
        assert np.abs(r32.plan.astype(np.float64) - r64.plan).sum() <= 1e-4 * mass, method
        assert r32.cost == pytest.approx(r64.cost, rel=1e-4, abs=1e-4 * mass * p.scale)


# ------------------------------------------------------------------------------------------
# Agreement with POT
# ------------------------------------------------------------------------------------------

POT_CASES = [
    # (n, m, seed, reg as a fraction of max(M), point cloud?)
    (7, 9, 0, 0.1, False),
    (25, 30, 1, 0.05, True),
    (40, 20, 2, 0.02, True),
    (33, 33, 3, 0.2, False),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", POT_CASES, ids=[f"{c[0]}x{c[1]}-reg{c[3]}" for c in POT_CASES])
def test_matches_pot_sinkhorn_log(method, case):
    """The plan equals POT's sinkhorn_log (stopThr 1e-12) to 1e-7 absolute."""
    n, m, seed, reg_factor, cloud = case
    rng = np.random.default_rng(seed)
    a, b = weights(rng, n), weights(rng, m)
    M = point_cloud(n, m, seed) if cloud else rng.random((n, m))
    reg = reg_factor * M.max()
    expected = pot.sinkhorn(a, b, M, reg, method="sinkhorn_log", stopThr=1e-12, numItermax=100_000)
    assert marginal_l1(expected, a, b) < 1e-10  # the reference itself converged
    res = sinkhorn(a, b, M, reg, method=method, tol=1e-10)
    assert res.success
    assert_allclose(res.plan, expected, rtol=0, atol=1e-7)
    assert res.cost == pytest.approx(float(np.sum(expected * M)), rel=1e-6)
    assert res.fun == pytest.approx(entropic_objective(expected, M, reg), rel=1e-6, abs=1e-9)


# ------------------------------------------------------------------------------------------
# Convergence to exact optimal transport
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", LOG_METHODS)
def test_cost_converges_to_emd(method):
    """|<P_reg, M> - emd| decreases as reg -> 0 and is < 1% of emd at reg = 0.003 max(M)."""
    n, m = 20, 25
    rng = np.random.default_rng(0)
    M = point_cloud(n, m, 0)
    a, b = weights(rng, n), weights(rng, m)
    exact = float(pot.emd2(a, b, M))
    gaps = []
    for reg in (0.1, 0.03, 0.01, 0.003):
        res = sinkhorn(a, b, M, reg * M.max(), method=method, tol=1e-10, maxiter=100_000)
        assert res.success, (reg, res.message)
        # feasible up to tol: cannot beat the exact optimum by more than tol * max(M)
        assert res.cost >= exact - 1e-10 * M.max()
        gaps.append(abs(res.cost - exact))
    assert all(g1 > g2 for g1, g2 in pairwise(gaps)), gaps
    assert gaps[-1] < 1e-2 * exact, gaps


# ------------------------------------------------------------------------------------------
# Small regularisation
# ------------------------------------------------------------------------------------------


def small_reg_problem(dtype):
    """The docstring's point cloud (50 x 60), some zero weights, reg = 1e-4 max(M)."""
    M = point_cloud(50, 60, 0)
    rng = np.random.default_rng(1)
    a, b = weights(rng, 50, 0.1), weights(rng, 60, 0.1)
    return a.astype(dtype), b.astype(dtype), M.astype(dtype), 1e-4 * float(M.max())


@pytest.mark.parametrize("method", LOG_METHODS)
def test_small_reg_is_stable(method, dtype):
    """reg = 1e-4 max(M): no NaN anywhere, a finite plan, -inf potentials only where the
    weight is zero, and the reported error is the error of the returned plan."""
    a, b, M, reg = small_reg_problem(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = sinkhorn(a, b, M, reg, method=method)
    for name in ("plan", "f", "g"):
        assert not np.isnan(res[name]).any(), name
        assert res[name].dtype == dtype, name
    assert np.all(np.isfinite(res.plan)) and np.all(res.plan >= 0)
    assert np.isfinite(res.fun) and np.isfinite(res.cost)
    assert np.array_equal(np.isneginf(res.f), a == 0) and not np.isposinf(res.f).any()
    assert np.array_equal(np.isneginf(res.g), b == 0) and not np.isposinf(res.g).any()
    measured = marginal_l1(res.plan, a, b)
    assert res.marginal_error == pytest.approx(measured, rel=1e-9, abs=1e-14)
    assert res.success == (measured <= res.tol * (1 + 1e-9))
    assert res.status in (0, 1, 4)
    assert np.all(res.plan[a == 0] == 0) and np.all(res.plan[:, b == 0] == 0)


@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "zero-weights"])
def test_small_reg_scaling_breaks_down_cleanly(uniform):
    """method='scaling' at reg = 1e-4 max(M) (float64): status 4, a message pointing to
    method='log', a ConvergenceWarning, and no NaN in the plan."""
    if uniform:  # exactly the docstring example's data
        M = point_cloud(50, 60, 0)
        a, b, reg = np.full(50, 1 / 50), np.full(60, 1 / 60), 1e-4 * float(M.max())
    else:
        a, b, M, reg = small_reg_problem(np.float64)
    with pytest.warns(ConvergenceWarning) as record:
        res = sinkhorn(a, b, M, reg, method="scaling")
    assert res.status == 4 and not res.success
    assert "log" in res.message
    assert any("log" in str(w.message) for w in record)
    assert not np.isnan(res.plan).any()
    assert res.marginal_error == pytest.approx(marginal_l1(res.plan, a, b), rel=1e-9, abs=1e-14)
