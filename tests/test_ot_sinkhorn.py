"""Tests of :func:`optcore.ot.sinkhorn`.

Every numerical check is made against an independent reference computed here in float64:
the marginal error and objective measured on the returned plan, POT's log-domain Sinkhorn,
POT's exact ``ot.emd2``, the exact optimality condition of 2x2 problems, and the identities the
solution must satisfy (plan = exp((f + g - M) / reg), invariances).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import optcore
import ot as pot
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from optcore import ConvergenceWarning, OptcoreWarning
from optcore.ot import sinkhorn
from scipy.optimize import brentq

METHODS = ("log", "eps_scaling", "scaling", "sns")
LOG_METHODS = ("log", "eps_scaling", "sns")


# ------------------------------------------------------------------------------------------
# Independent reference computations (float64)
# ------------------------------------------------------------------------------------------


def marginal_l1(plan, a, b) -> float:
    """||P 1 - a||_1 + ||P^T 1 - b||_1 of one plan, in float64."""
    P = np.asarray(plan, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(P.sum(axis=1) - a).sum() + np.abs(P.sum(axis=0) - b).sum())


def as_solved(a, b):
    """``b`` as the solver uses it: masses within relative 1e-6 are rescaled onto sum(a) (in
    b's dtype, as documented), and the marginal error is measured against that."""
    b = np.asarray(b)
    sa, sb = float(np.sum(a, dtype=np.float64)), np.sum(b, axis=0, dtype=np.float64)
    if np.all(sb == sa):
        return b
    return (b.astype(np.float64) * (sa / sb)).astype(b.dtype)


def entropic_objective(plan, M, reg) -> float:
    """<P, M> + reg * sum P log P with 0 log 0 = 0, in float64."""
    P = np.asarray(plan, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    pos = P > 0
    entropy = float(np.sum(P[pos] * np.log(P[pos])))
    return float(np.sum(P * M)) + reg * entropy


def plan_from_potentials(f, g, M, reg) -> np.ndarray:
    """exp((f_i + g_j - M_ij) / reg) in float64 (zero where a potential is -inf)."""
    f = np.asarray(f, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.exp((f[:, None] + g[None, :] - M) / reg)


def weights(rng, k, zero_frac=0.0, mass=1.0) -> np.ndarray:
    """Random non-negative weights in float64: a fraction ~zero_frac of exact zeros, the
    others uniform in [0.1, 1], scaled to total ``mass`` (always at least one positive)."""
    w = rng.uniform(0.1, 1.0, k)
    w[rng.random(k) < zero_frac] = 0.0
    if not w.any():
        w[rng.integers(k)] = 1.0
    return w * (mass / w.sum())


def point_cloud(n, m, seed, *, normalize=False):
    """Squared Euclidean costs between uniform points of the unit square."""
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    M = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return M / M.max() if normalize else M


@dataclass
class Problem:
    a: np.ndarray
    b: np.ndarray
    M: np.ndarray
    reg: float
    scale: float

    def astype(self, dtype) -> Problem:
        return Problem(self.a.astype(dtype), self.b.astype(dtype), self.M.astype(dtype), self.reg, self.scale)


def random_problem(
    seed, n, m, *, zero_frac=0.3, scale=1.0, reg_factor=0.1, mass=1.0, offset=0.0, dtype=np.float64
) -> Problem:
    rng = np.random.default_rng(seed)
    a = weights(rng, n, zero_frac, mass)
    b = weights(rng, m, zero_frac, mass)
    M = scale * (rng.random((n, m)) + offset)
    return Problem(a, b, M, reg_factor * scale, scale).astype(dtype)


@st.composite
def problems(draw, dtype=None) -> Problem:
    """Random problems: n, m in 1..60, weights with zeros (positive total), costs of any
    scale and sign, reg in [0.05, 1] times the cost scale."""
    n = draw(st.integers(1, 60))
    m = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    zero_frac = draw(st.sampled_from([0.0, 0.25, 0.6]))
    scale = draw(st.floats(0.1, 10.0))
    reg_factor = draw(st.floats(0.05, 1.0))
    mass = draw(st.floats(0.5, 2.0))
    offset = draw(st.floats(-1.0, 1.0))
    if dtype is None:
        dtype = draw(st.sampled_from([np.float32, np.float64]))
    return random_problem(
        seed, n, m, zero_frac=zero_frac, scale=scale, reg_factor=reg_factor, mass=mass, offset=offset, dtype=dtype
    )


def dual_tolerance(plan, reg: float, plan_l1: float) -> np.ndarray:
    """How far f_i + g_j = M_ij + reg log P_ij of two solutions may differ when their plans
    differ by at most plan_l1 in L1: reg * plan_l1 / P_ij, entry by entry."""
    P = np.asarray(plan, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return reg * plan_l1 / P


SOLVE_TOL = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-4}
#: The documented range of method="scaling": it stops with status 4 once |M| / reg exceeds about this.
SCALING_RANGE = {np.dtype(np.float64): 700.0, np.dtype(np.float32): 87.0}


def plan_identity_rtol(res, M, reg) -> float:
    """Relative error allowed between the plan and exp((f + g - M)/reg) computed from the
    returned (rounded) potentials: the exponent carries eps * (|f| + |g| + |M|) / reg."""
    eps = float(np.finfo(res.plan.dtype).eps)
    size = max(np.max(np.abs(v[np.isfinite(v)]), initial=0.0) for v in (res.f, res.g))
    return 32 * eps * (1.0 + (2 * size + float(np.max(np.abs(M)))) / reg)


def assert_valid_result(res, a, b, M, reg, tol):
    """The invariants every returned result satisfies, checked against float64 references."""
    P = res.plan
    assert P is res.x
    assert P.shape == M.shape
    assert not np.isnan(P).any() and np.all(np.isfinite(P))
    assert np.all(P >= 0)
    b = as_solved(a, b)
    measured = marginal_l1(P, a, b)
    mass = float(np.sum(a, dtype=np.float64))
    assert res.marginal_error == pytest.approx(measured, rel=1e-9, abs=1e-13 * mass)
    assert res.success == (res.marginal_error <= tol)
    if res.success:
        assert res.status == 0
        assert measured <= tol * (1 + 1e-9) + 1e-15
    else:
        assert res.status in (1, 4)
    P64 = P.astype(np.float64)
    assert res.cost == pytest.approx(float(np.sum(P64 * M.astype(np.float64))), rel=1e-9, abs=1e-12 * mass)
    # fun = cost + entropy term can cancel: compare relative to the size of the two terms
    pos = P64 > 0
    terms = abs(res.cost) + reg * abs(float(np.sum(P64[pos] * np.log(P64[pos]))))
    eps = float(np.finfo(P.dtype).eps)
    assert res.fun == pytest.approx(entropic_objective(P64, M, reg), rel=0, abs=64 * eps * terms + 1e-15 * mass)
    # zero weights: zero rows / columns, -inf potentials; positive weights: finite potentials
    assert np.all(P[np.asarray(a) == 0, :] == 0)
    assert np.all(P[:, np.asarray(b) == 0] == 0)
    assert np.all(np.isneginf(res.f[np.asarray(a) == 0]))
    assert np.all(np.isneginf(res.g[np.asarray(b) == 0]))
    assert np.all(np.isfinite(res.f[np.asarray(a) > 0]))
    assert np.all(np.isfinite(res.g[np.asarray(b) > 0]))
    # P_ij = exp((f_i + g_j - M_ij) / reg)
    Q = plan_from_potentials(res.f, res.g, M, reg)
    fin = np.isfinite(res.f)[:, None] & np.isfinite(res.g)[None, :]
    assert np.all(Q[~fin] == 0)
    assert_allclose(P64[fin], Q[fin], rtol=plan_identity_rtol(res, M, reg), atol=1e-30)


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


# ------------------------------------------------------------------------------------------
# Input validation
# ------------------------------------------------------------------------------------------

A3 = np.array([0.2, 0.3, 0.5])
B4 = np.array([0.1, 0.2, 0.3, 0.4])
M34 = np.arange(12, dtype=np.float64).reshape(3, 4) / 12


def _with(arr, idx, value):
    out = np.array(arr, dtype=np.result_type(arr, type(value)))
    out[idx] = value
    return out


BAD_INPUTS = [
    # (id, overrides of the valid call, exception, regex the message must match)
    ("a-negative", dict(a=np.array([-0.2, 0.7, 0.5])), ValueError, r"`a`.*negative"),
    ("b-negative", dict(b=np.array([0.1, 0.2, -0.3, 1.0])), ValueError, r"`b`.*negative"),
    ("a-nan", dict(a=_with(A3, 0, np.nan)), ValueError, r"`a`"),
    ("a-inf", dict(a=_with(A3, 1, np.inf)), ValueError, r"`a`"),
    ("b-nan", dict(b=_with(B4, 2, np.nan)), ValueError, r"`b`"),
    ("b-inf", dict(b=_with(B4, 3, np.inf)), ValueError, r"`b`"),
    ("M-nan", dict(M=_with(M34, (1, 1), np.nan)), ValueError, r"`M`"),
    ("M-inf", dict(M=_with(M34, (0, 3), np.inf)), ValueError, r"`M`"),
    ("M-neg-inf", dict(M=_with(M34, (2, 0), -np.inf)), ValueError, r"`M`"),
    ("mass-mismatch", dict(b=B4 * 1.01), ValueError, r"mass"),
    ("a-zero-mass", dict(a=np.zeros(3), b=np.zeros(4)), ValueError, r"mass"),
    ("M-transposed", dict(M=M34.T), ValueError, r"`M`"),
    ("M-1d", dict(M=M34.ravel()), ValueError, r"`M`"),
    ("M-4d", dict(M=M34[None, None]), ValueError, r"`M`"),
    ("a-2d", dict(a=A3[:, None]), ValueError, r"`a`"),
    ("b-3d", dict(b=B4[:, None, None]), ValueError, r"`b`"),
    ("reg-zero", dict(reg=0.0), ValueError, r"`reg`"),
    ("reg-negative", dict(reg=-0.1), ValueError, r"`reg`"),
    ("reg-nan", dict(reg=float("nan")), ValueError, r"`reg`"),
    ("reg-inf", dict(reg=float("inf")), ValueError, r"`reg`"),
    ("reg-complex", dict(reg=0.1 + 0j), TypeError, r"`reg`"),
    ("reg-string", dict(reg="0.1"), TypeError, r"`reg`"),
    ("a-complex", dict(a=A3.astype(complex)), TypeError, r"`a`"),
    ("b-complex", dict(b=B4.astype(complex)), TypeError, r"`b`"),
    ("M-complex", dict(M=M34 + 0j), TypeError, r"`M`"),
    ("M-strings", dict(M=np.full((3, 4), "x")), TypeError, r"`M`"),
    ("M-ragged", dict(M=[[0.0, 1.0], [1.0]]), ValueError, r"`M`"),
    ("method-unknown", dict(method="sinkhorn_knopp"), ValueError, r"method"),
    ("method-none", dict(method=None), ValueError, r"method"),
    ("options-unknown", dict(options={"eps_decay_typo": 0.5}), ValueError, r"eps_decay_typo"),
    ("options-wrong-method", dict(method="scaling", options={"eps0": 1.0}), ValueError, r"eps0"),
    ("options-not-dict", dict(options=[("eps0", 1.0)]), TypeError, r"`options`"),
    ("eps-decay-out-of-range", dict(method="eps_scaling", options={"eps_decay": 1.5}), ValueError, r"eps_decay"),
    ("workers-zero", dict(workers=0), ValueError, r"`workers`"),
    ("workers-negative", dict(workers=-3), ValueError, r"`workers`"),
    ("workers-float", dict(workers=2.0), TypeError, r"`workers`"),
    ("maxiter-float", dict(maxiter=10.5), TypeError, r"`maxiter`"),
    ("maxiter-string", dict(maxiter="100"), TypeError, r"`maxiter`"),
    ("maxiter-negative", dict(maxiter=-1), ValueError, r"`maxiter`"),
    ("check-every-zero", dict(check_every=0), ValueError, r"`check_every`"),
    ("tol-zero", dict(tol=0.0), ValueError, r"`tol`"),
    ("tol-nan", dict(tol=float("nan")), ValueError, r"`tol`"),
    ("callback-not-callable", dict(callback=42), TypeError, r"`callback`"),
    ("x0-not-a-pair", dict(x0=np.zeros(3)), ValueError, r"`x0`"),
    ("x0-wrong-shapes", dict(x0=(np.zeros(4), np.zeros(3))), ValueError, r"`x0`"),
    ("x0-nan", dict(x0=(_with(np.zeros(3), 0, np.nan), np.zeros(4))), ValueError, r"`x0"),
    ("x0-plus-inf", dict(x0=(np.zeros(3), _with(np.zeros(4), 0, np.inf))), ValueError, r"`x0"),
    ("empty-arrays", dict(a=np.array([]), b=np.array([]), M=np.zeros((0, 0))), ValueError, r"`a`|empty"),
    ("empty-M-default-weights", dict(a=None, b=None, M=np.zeros((0, 0))), ValueError, r"`M`|`a`|empty"),
    ("empty-M-rows", dict(a=None, b=None, M=np.zeros((0, 4))), ValueError, r"`M`|`a`|empty"),
    ("empty-M-cols", dict(a=A3, b=None, M=np.zeros((3, 0))), ValueError, r"`M`|`b`|empty"),
    ("empty-histograms", dict(b=np.zeros((4, 0))), ValueError, r"`b`|empty"),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("overrides", "exc", "match"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_raises(overrides, exc, match, method):
    """Bad input raises the documented exception with a message naming the argument."""
    kwargs = dict(a=A3, b=B4, M=M34, reg=0.1, method=method)
    kwargs.update(overrides)
    with pytest.raises(exc, match=match):
        sinkhorn(**kwargs)


def test_valid_reference_call_succeeds():
    """The baseline of the bad-input table is itself valid (so each case tests one defect)."""
    for method in METHODS:
        res = sinkhorn(A3, B4, M34, 0.1, method=method)
        assert res.success
        assert_valid_result(res, A3, B4, M34, 0.1, res.tol)


def test_masses_within_relative_1e6_are_accepted():
    """Masses that agree to relative 1e-6 are accepted; the plan fits a and b within tol
    plus the mass difference."""
    b = B4 * (1 + 1e-8)
    res = sinkhorn(A3, b, M34, 0.1)
    assert marginal_l1(res.plan, A3, b) <= 1e-9 + 2e-8


# ------------------------------------------------------------------------------------------
# Memory layouts and dtypes
# ------------------------------------------------------------------------------------------


def _layout_cases():
    rng = np.random.default_rng(7)
    M_wide = rng.random((12, 30))
    a = weights(rng, 12, 0.2)
    b = weights(rng, 15, 0.2)
    a_wide = np.repeat(a, 2)  # a_wide[::2] == a
    b_rev = b[::-1].copy()  # b_rev[::-1] == b
    return {
        "M-column-stride": (a, b, M_wide[:, ::2]),
        "M-fortran": (a, b, np.asfortranarray(M_wide[:, :15])),
        "M-transposed-view": (a, b, np.ascontiguousarray(M_wide[:, :15].T).T),
        "weights-strided": (a_wide[::2], b_rev[::-1], M_wide[:, 1::2]),
    }


LAYOUTS = _layout_cases()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(LAYOUTS))
def test_noncontiguous_inputs_give_identical_results(case, method):
    """Strided, Fortran-ordered and reversed inputs give bit-identical results to
    contiguous float64 copies."""
    a, b, M = LAYOUTS[case]
    assert not (a.flags.c_contiguous and b.flags.c_contiguous and M.flags.c_contiguous)
    res = sinkhorn(a, b, M, 0.1, method=method)
    ref = sinkhorn(np.ascontiguousarray(a), np.ascontiguousarray(b), np.ascontiguousarray(M), 0.1, method=method)
    for name in ("plan", "f", "g"):
        assert_array_equal(res[name], ref[name])
    assert res.nit == ref.nit and res.marginal_error == ref.marginal_error
    assert_valid_result(res, a, b, M, 0.1, res.tol)


@pytest.mark.parametrize("method", METHODS)
def test_integer_inputs_equal_float64(method):
    """Integer weights and costs are accepted, solved in float64, and equal the float64 solve."""
    a = np.array([1, 2, 3, 0, 4])
    b = np.array([2, 2, 2, 2, 2])
    M = np.arange(25).reshape(5, 5) % 7
    res = sinkhorn(a, b, M, 2.0, method=method)
    ref = sinkhorn(a.astype(np.float64), b.astype(np.float64), M.astype(np.float64), 2.0, method=method)
    for name in ("plan", "f", "g"):
        assert res[name].dtype == np.float64
        assert_array_equal(res[name], ref[name])
    assert res.success
    assert_valid_result(res, a, b, M, 2.0, res.tol)


@pytest.mark.parametrize("method", METHODS)
def test_list_inputs(method):
    """Nested Python lists are accepted like arrays."""
    res = sinkhorn(A3.tolist(), B4.tolist(), M34.tolist(), 0.1, method=method)
    ref = sinkhorn(A3, B4, M34, 0.1, method=method)
    assert_array_equal(res.plan, ref.plan)


@pytest.mark.parametrize("method", METHODS)
def test_float32_in_float32_out(method):
    """float32 inputs give float32 plan, f and g (also with k histograms)."""
    p = random_problem(4, 10, 11, reg_factor=0.2).astype(np.float32)
    res = sinkhorn(p.a, p.b, p.M, p.reg, method=method)
    for name in ("plan", "x", "f", "g"):
        assert res[name].dtype == np.float32, name
    assert res.success
    assert_valid_result(res, p.a, p.b, p.M, p.reg, res.tol)
    B = np.stack([p.b, p.b[::-1]], axis=1)
    resk = sinkhorn(p.a, B, p.M, p.reg, method=method)
    for name in ("plan", "f", "g"):
        assert resk[name].dtype == np.float32, name


@pytest.mark.parametrize("method", METHODS)
def test_mixed_precision_promotes_to_float64(method):
    """One float64 input makes the solve float64."""
    a = np.array([0.25, 0.5, 0.25], dtype=np.float32)  # exactly representable: equal masses
    b = np.array([0.125, 0.375, 0.5], dtype=np.float32)
    M = np.random.default_rng(4).random((3, 3))
    res = sinkhorn(a, b, M, 0.2, method=method)
    assert res.plan.dtype == res.f.dtype == res.g.dtype == np.float64
    assert res.success and marginal_l1(res.plan, a, b) <= 1e-9


# ------------------------------------------------------------------------------------------
# Non-convergence and warnings
# ------------------------------------------------------------------------------------------


def hard_problem():
    rng = np.random.default_rng(8)
    return weights(rng, 20), weights(rng, 24), rng.random((20, 24)), 0.01


@pytest.mark.parametrize("method", METHODS)
def test_iteration_limit(method):
    """maxiter=3: success False, status 1, nit 3, the true error of the plan, and a
    ConvergenceWarning (an OptcoreWarning and a UserWarning) pointing at the caller."""
    a, b, M, reg = hard_problem()
    with pytest.warns(ConvergenceWarning) as record:
        res = sinkhorn(a, b, M, reg, method=method, maxiter=3)
    assert res.success is False and res.status == 1
    assert res.nit == 3
    assert "maxiter" in res.message or "teration" in res.message
    measured = marginal_l1(res.plan, a, b)
    assert measured > res.tol
    assert res.marginal_error == pytest.approx(measured, rel=1e-9)
    assert len(record) == 1
    w = record[0]
    assert issubclass(w.category, OptcoreWarning) and issubclass(w.category, UserWarning)
    assert os.path.samefile(w.filename, __file__)  # stacklevel points at the caller


@pytest.mark.parametrize("method", METHODS)
def test_warn_false_suppresses_warning(method):
    """warn=False: no warning at all, same result."""
    a, b, M, reg = hard_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sinkhorn(a, b, M, reg, method=method, maxiter=3, warn=False)
    assert res.status == 1 and not res.success


@pytest.mark.parametrize("method", METHODS)
def test_converged_solve_does_not_warn(method):
    """A converged solve emits no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sinkhorn(A3, B4, M34, 0.1, method=method)
    assert res.success


# ------------------------------------------------------------------------------------------
# Callbacks and progress output
# ------------------------------------------------------------------------------------------


def callback_problem():
    rng = np.random.default_rng(9)
    return weights(rng, 30, 0.1), weights(rng, 40, 0.1), rng.random((30, 40)), 0.05


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("check_every", [1, 7])
def test_callback_protocol(method, check_every):
    """callback(intermediate_result) every check_every iterations, with nit, f, g and the
    marginal error of the plan exp((f + g - M)/reg) those potentials define."""
    a, b, M, reg = callback_problem()
    seen = []

    def callback(intermediate):
        assert isinstance(intermediate, optcore.OptimizeResult)
        f, g = intermediate.f, intermediate.g
        seen.append(
            dict(
                nit=intermediate.nit,
                err=intermediate.marginal_error,
                f=f,
                g=g,
                f_copy=np.array(f),
                g_copy=np.array(g),
                reg=intermediate.get("reg", reg),
            )
        )

    res = sinkhorn(a, b, M, reg, method=method, callback=callback, check_every=check_every)
    assert res.success
    nits = [s["nit"] for s in seen]
    # consecutive multiples of check_every (a first call at nit=0, before any iteration, is allowed)
    first = nits[0] // check_every
    assert nits == [check_every * (first + i) for i in range(len(nits))], nits
    assert first in (0, 1) and nits[-1] <= res.nit and len(nits) >= res.nit // check_every - 1
    for s in seen:
        assert s["f"].shape == (30,) and s["g"].shape == (40,)
        P = plan_from_potentials(s["f"], s["g"], M, s["reg"])
        # the reported error is the error of the plan these potentials define
        assert s["err"] == pytest.approx(marginal_l1(P, a, b), rel=1e-6, abs=1e-12), s["nit"]
        # arrays handed to the callback are not overwritten by later iterations
        assert_array_equal(s["f"], s["f_copy"])
        assert_array_equal(s["g"], s["g_copy"])
    if method == "eps_scaling":
        regs = [s["reg"] for s in seen]
        assert regs[0] > reg and regs[-1] == reg
        assert all(r1 >= r2 for r1, r2 in pairwise(regs))


@pytest.mark.parametrize("method", METHODS)
def test_callback_stop_iteration(method):
    """StopIteration: status 99, success False, and the true error of the returned plan."""
    a, b, M, reg = callback_problem()
    # sns reaches 1e-14 in about 13 iterations: stop it in its Newton stage instead
    stop_at = 10 if method == "sns" else 20

    def callback(intermediate):
        if intermediate.nit >= stop_at:
            raise StopIteration

    res = sinkhorn(a, b, M, reg, method=method, callback=callback, check_every=5, tol=1e-14)
    assert res.status == 99 and res.success is False
    assert res.nit == stop_at
    if method == "sns":
        assert res.n_newton > 0
    assert "StopIteration" in res.message
    assert res.marginal_error == pytest.approx(marginal_l1(res.plan, a, b), rel=1e-9, abs=1e-15)
    assert np.all(res.plan >= 0) and np.all(np.isfinite(res.plan))


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("method", METHODS)
def test_callback_exception_propagates(method):
    """Any other exception from the callback propagates out of sinkhorn unchanged."""
    a, b, M, reg = callback_problem()
    boom = _Boom("boom from callback")

    def callback(intermediate):
        raise boom

    with pytest.raises(_Boom) as excinfo:
        sinkhorn(a, b, M, reg, method=method, callback=callback)
    assert excinfo.value is boom


@pytest.mark.parametrize("method", METHODS)
def test_disp_prints_progress(method, capsys):
    """disp=True: a title, a header, one line per check (the same checks the callback sees)
    and a summary line with the final message and iteration count."""
    a, b, M, reg = callback_problem()
    seen = []
    res = sinkhorn(
        a, b, M, reg, method=method, disp=True, check_every=5, callback=lambda r: seen.append((r.nit, r.marginal_error))
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert "optcore.ot.sinkhorn" in out[0] and method in out[0]
    assert out[1].split() == ["iter", "error", "time", "(s)"]
    body = out[2:-1]
    assert len(body) == len(seen) > 0
    for line, (nit, err) in zip(body, seen, strict=True):
        fields = line.split()
        assert int(fields[0]) == nit
        assert float(fields[1]) == pytest.approx(err, rel=1e-4)
        assert float(fields[2]) >= 0
    assert out[-1].startswith(res.message) and f"{res.nit} iterations" in out[-1]


def test_no_output_without_disp(capsys):
    """disp=False prints nothing."""
    sinkhorn(A3, B4, M34, 0.1)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------------------------------
# Ctrl-C
# ------------------------------------------------------------------------------------------

INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import _thread, os, signal, sys, threading, time
    import numpy as np
    import optcore

    # A process started in the background by a non-interactive shell inherits SIGINT ignored,
    # and then Python installs no handler: install it, so the test does not depend on how the
    # test run itself was launched.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    method = sys.argv[1]
    # Solves that take seconds: slow convergence at small reg (scaling: as small as it can go).
    n, reg = (1000, 1.5e-3) if method == "scaling" else (400, 1e-4)
    rng = np.random.default_rng(0)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    M /= M.max()
    a = np.full(n, 1.0 / n)

    def run(callback, check_every):
        t0 = time.perf_counter()
        try:
            # sns reaches machine precision within a second and then stops (status 4): keep it
            # in its Sinkhorn stage so that the solve lasts
            options = {"warmup": 10**8} if method == "sns" else None
            res = optcore.ot.sinkhorn(a, a, M, reg, method=method, tol=1e-300, maxiter=10**9,
                                      callback=callback, check_every=check_every, warn=False, options=options)
        except KeyboardInterrupt:
            return "interrupted", time.perf_counter() - t0
        return f"returned(status={res.status},nit={res.nit})", time.perf_counter() - t0

    # 1. a real SIGINT from another thread while the Rust loop runs without callback and
    #    with checks at most every 10**6 iterations: the core must poll signals on its own.
    delay = 0.2
    threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT)).start()
    what, t = run(None, 10**6)
    print("timer", what, t - delay, flush=True)

    # 2. interrupt_main() from the callback.
    def cb(r):
        if r.nit >= 20:
            _thread.interrupt_main()
    what, t = run(cb, 10)
    print("callback", what, t, flush=True)

    # 3. the extension still works afterwards.
    res = optcore.ot.sinkhorn(None, None, M[:5, :5], 0.1, method=method)
    print("after", res.success, flush=True)
    """
)


@pytest.mark.parametrize("method", METHODS)
def test_keyboard_interrupt_is_prompt(method, tmp_path):
    """SIGINT during a long solve raises KeyboardInterrupt out of sinkhorn within ~1 s."""
    script = tmp_path / "interrupt.py"
    script.write_text(INTERRUPT_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), method], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line.split()[1:] for line in proc.stdout.strip().splitlines()}
    for case in ("timer", "callback"):
        what, delay = lines[case][0], float(lines[case][1])
        assert what == "interrupted", proc.stdout
        assert delay < 1.5, proc.stdout  # the core polls signals at least every 0.2 s
    assert lines["after"] == ["True"]


# ------------------------------------------------------------------------------------------
# Determinism and threads
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def determinism_problem():
    p = random_problem(10, 150, 170, zero_frac=0.1, reg_factor=0.02)
    rng = np.random.default_rng(10)
    B = np.stack([p.b, weights(rng, 170, 0.1)], axis=1)
    return p, B


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batched", [False, True], ids=["k=1", "k=2"])
def test_bit_identical_across_runs_and_workers(method, batched, determinism_problem):
    """The same call twice, and workers = None / 1 / 2 / -1, give bit-identical results."""
    p, B = determinism_problem
    b = B if batched else p.b
    runs = [sinkhorn(p.a, b, p.M, p.reg, method=method, workers=w) for w in (None, None, 1, 2, -1)]
    ref = runs[0]
    assert np.all(ref.success)
    for res in runs[1:]:
        for name in ("plan", "f", "g", "marginal_error", "cost", "fun"):
            assert_array_equal(res[name], ref[name], err_msg=name)
        assert res.nit == ref.nit and res.status == ref.status


# ------------------------------------------------------------------------------------------
# Warm start
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_warm_start_from_solution(method, dtype, tols):
    """x0 = (res.f, res.g) of a converged solve (with -inf entries for zero weights)
    re-converges in at most 2 iterations to the same plan."""
    p = random_problem(12, 30, 40, zero_frac=0.15, reg_factor=0.05).astype(dtype)
    assert (p.a == 0).any() and (p.b == 0).any()
    tol = tols.solve_tol
    res = sinkhorn(p.a, p.b, p.M, p.reg, method=method, tol=tol)
    assert res.success and np.isneginf(res.f).any() and np.isneginf(res.g).any()
    warm = sinkhorn(p.a, p.b, p.M, p.reg, method=method, tol=tol, x0=(res.f, res.g))
    assert warm.success
    assert warm.nit <= 2, warm.nit
    assert np.abs(warm.plan.astype(np.float64) - res.plan).sum() <= 2 * tol
    assert_valid_result(warm, p.a, p.b, p.M, p.reg, tol)


@pytest.mark.parametrize("method", METHODS)
def test_warm_start_batched(method):
    """x0 of shapes (k, n), (k, m) with k histograms."""
    rng = np.random.default_rng(13)
    a = weights(rng, 15, 0.2)
    B = np.stack([weights(rng, 18, 0.2) for _ in range(3)], axis=1)
    M = rng.random((15, 18))
    res = sinkhorn(a, B, M, 0.05, method=method)
    warm = sinkhorn(a, B, M, 0.05, method=method, x0=(res.f, res.g))
    assert warm.success and warm.nit <= 2, warm.nit
    assert_allclose(warm.plan, res.plan, atol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_warm_start_from_arbitrary_potentials(method):
    """Any finite x0 converges to the same solution as a cold start."""
    p = random_problem(14, 20, 25, zero_frac=0.0, reg_factor=0.1)
    rng = np.random.default_rng(14)
    cold = sinkhorn(p.a, p.b, p.M, p.reg, method=method)
    warm = sinkhorn(p.a, p.b, p.M, p.reg, method=method, x0=(rng.normal(size=20), rng.normal(size=25)))
    assert cold.success and warm.success
    assert np.abs(warm.plan - cold.plan).sum() <= 20 * cold.tol


# ------------------------------------------------------------------------------------------
# Default (uniform) weights
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("empty", [None, [], ()], ids=["None", "list", "tuple"])
def test_missing_weights_are_uniform(method, empty):
    """a or b None / [] means uniform weights 1/n, 1/m."""
    rng = np.random.default_rng(15)
    M = rng.random((8, 11))
    ref = sinkhorn(np.full(8, 1 / 8), np.full(11, 1 / 11), M, 0.1, method=method)
    for a, b in ((empty, np.full(11, 1 / 11)), (np.full(8, 1 / 8), empty), (empty, empty)):
        res = sinkhorn(a, b, M, 0.1, method=method)
        assert_array_equal(res.plan, ref.plan)
    assert_allclose(ref.plan.sum(axis=1), 1 / 8, atol=1e-9)
    assert_allclose(ref.plan.sum(axis=0), 1 / 11, atol=1e-9)


# ------------------------------------------------------------------------------------------
# CuPy dispatch (without CuPy: objects whose type lives in a module named "cupy")
# ------------------------------------------------------------------------------------------


class FakeCupyArray:
    """Stands in for cupy.ndarray: only ``type(x).__module__`` is looked at."""

    __module__ = "cupy"

    def __init__(self, data):
        self.data = np.asarray(data)
        self.shape = self.data.shape


class FakeCupyCoreArray(FakeCupyArray):
    __module__ = "cupy._core.core"  # where cupy.ndarray really lives


@pytest.mark.parametrize("which", ["a", "b", "M"])
def test_mixed_cupy_numpy_is_type_error(which):
    """One CuPy input among NumPy inputs: TypeError naming the arguments."""
    kwargs = dict(a=A3, b=B4, M=M34)
    kwargs[which] = FakeCupyArray(kwargs[which])
    with pytest.raises(TypeError, match=rf"CuPy.*{which}: cupy"):
        sinkhorn(reg=0.1, **kwargs)


def test_mixed_cupy_numpy_type_error_everywhere_else():
    """Two CuPy inputs with one NumPy input is also mixed."""
    with pytest.raises(TypeError, match="CuPy"):
        sinkhorn(FakeCupyArray(A3), B4, FakeCupyCoreArray(M34), 0.1)
