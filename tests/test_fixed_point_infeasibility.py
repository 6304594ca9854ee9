"""Infeasibility detection of optcore.fixed_point.halpern: consistent problems are never called
inconsistent, the displacement estimate of inconsistent ones matches the known gap vector, and
Park & Ryu's accelerated estimator meets its rate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optcore
from optcore.fixed_point import halpern
from optcore.fixed_point import operators as ops

METHODS = [
    {"method": "picard"},
    {"method": "km"},
    {"method": "halpern"},
    {"method": "halpern", "restart": "adaptive"},
]
method_st = st.sampled_from(range(len(METHODS)))


def unit(v):
    return v / np.linalg.norm(v)


def ball_and_plane(d, offset, radius, rng):
    """DR for a ball at the origin and the hyperplane ``a^T x = offset``; the gap vector."""
    a = unit(rng.standard_normal(d))
    T = ops.DouglasRachford(ops.Ball(np.zeros(d), radius), ops.Affine(a[None, :], [offset]))
    return T, (radius - offset) * a if offset > radius else np.zeros(d)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(2, 30),
    frac=st.floats(0.0, 0.999),
    scale=st.floats(0.01, 1e3),
    which=method_st,
)
def test_feasible_dr_pairs_are_never_inconsistent(seed, d, frac, scale, which):
    # A ball and a hyperplane that meet (distance frac * radius), from starts near or far away.
    rng = np.random.default_rng(seed)
    radius = float(rng.uniform(0.1, 5.0))
    T, _ = ball_and_plane(d, frac * radius, radius, rng)
    x0 = scale * rng.standard_normal(d)
    res = halpern(T, x0, maxiter=3000, warn=False, **METHODS[which])
    assert res.status != 2, res.message


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 20), scale=st.floats(0.01, 1e3), which=method_st)
def test_intersecting_boxes_are_never_inconsistent(seed, d, scale, which):
    rng = np.random.default_rng(seed)
    lo1 = rng.uniform(-3, 0, d)
    hi1 = lo1 + rng.uniform(0.0, 3, d)
    point = rng.uniform(lo1, hi1)  # a common point
    lo2 = point - rng.uniform(0, 2, d)
    hi2 = point + rng.uniform(0, 2, d)
    T = ops.DouglasRachford(ops.Box(lo1, hi1), ops.Box(lo2, hi2))
    res = halpern(T, scale * rng.standard_normal(d), maxiter=3000, warn=False, **METHODS[which])
    assert res.status != 2, res.message


def pdhg_operator(A, b, c):
    """PDHG of ``min c^T x, A x = b, x >= 0`` in the coordinates of its metric (nonexpansive)."""
    m, n = A.shape
    tau = sigma = 0.9 / np.linalg.norm(A, 2)
    M = np.block([[np.eye(n) / tau, A.T], [A, np.eye(m) / sigma]])
    lam, Q = np.linalg.eigh(M)
    Mh, Mih = (Q * np.sqrt(lam)) @ Q.T, (Q / np.sqrt(lam)) @ Q.T

    def T(w):
        z = Mih @ w
        x, y = z[:n], z[n:]
        xb = np.maximum(x - tau * (c - A.T @ y), 0.0)
        yb = y + sigma * (b - A @ (2 * xb - x))
        return Mh @ np.concatenate([xb, yb])

    return T


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 6), n=st.integers(2, 10), which=method_st)
def test_feasible_lp_operators_are_never_inconsistent(seed, m, n, which):
    # A random feasible, bounded LP (b = A x_feas, c > 0): its PDHG operator has fixed points.
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n))
    b = A @ rng.uniform(0, 2, n)
    T = pdhg_operator(A, b, rng.uniform(0.1, 1.0, n))
    res = halpern(T, rng.standard_normal(m + n), maxiter=1500, warn=False, **METHODS[which])
    assert res.status != 2, res.message


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 5), n=st.integers(2, 8))
def test_feasible_lps_are_never_called_infeasible_by_linprog(seed, m, n):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n))
    res = optcore.linprog(rng.uniform(0.1, 1.0, n), A_eq=A, b_eq=A @ rng.uniform(0, 2, n))
    assert res.status != 2, res.message


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(2, 50),
    gap=st.floats(0.1, 10.0),
    which=method_st,
)
def test_displacement_matches_the_gap_of_a_ball_and_a_plane(seed, d, gap, which):
    rng = np.random.default_rng(seed)
    T, v = ball_and_plane(d, 1.0 + gap, 1.0, rng)
    res = halpern(T, rng.standard_normal(d), maxiter=50_000, warn=False, **METHODS[which])
    assert res.status == 2, res.message
    assert np.linalg.norm(res.displacement - v) <= 1e-5 * np.linalg.norm(v)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 40), which=method_st)
def test_displacement_matches_the_gap_of_disjoint_boxes(seed, d, which):
    # v = P_{A - B}(0) = (lo_A - hi_B)_+ - (lo_B - hi_A)_+ per coordinate.
    rng = np.random.default_rng(seed)
    lo1, hi1 = np.zeros(d), np.ones(d)
    lo2 = rng.uniform(-1, 0.5, d)
    hi2 = lo2 + rng.uniform(0.6, 1.0, d)
    k = int(rng.integers(1, d + 1))
    lo2[:k] = rng.uniform(1.2, 3.0, k)
    hi2[:k] = lo2[:k] + 1.0
    v = np.maximum(lo1 - hi2, 0) - np.maximum(lo2 - hi1, 0)
    T = ops.DouglasRachford(ops.Box(lo1, hi1), ops.Box(lo2, hi2))
    res = halpern(T, rng.standard_normal(d), maxiter=100_000, warn=False, **METHODS[which])
    assert res.status == 2, res.message
    # Polyhedral DR passes plateaus on which the estimate rests for a while: about tol_disp
    # is the promise where T is a translation near the iterates, 1e-2 the bound here.
    assert np.linalg.norm(res.displacement - v) <= 1e-2 * np.linalg.norm(v)


def test_the_accelerated_estimator_meets_its_rate():
    # Park & Ryu (2023, Thm. 8): Halpern's residual u_k = x_k - T x_k satisfies
    # ||u_k - v|| <= (sqrt(H_k + 12) + 1) / (k + 1) ||x0 - x_v|| for any x_v with
    # x_v - T x_v = v. On the ball and plane, Picard reaches such a point in a few steps.
    rng = np.random.default_rng(3)
    d = 200
    T, v = ball_and_plane(d, 3.0, 1.0, rng)
    x0 = 10 * rng.standard_normal(d)
    xv = halpern(T, x0, method="picard", maxiter=60, options={"tol_disp": 0}, warn=False).x
    assert np.linalg.norm(xv - T(xv) - v) < 1e-12
    D = np.linalg.norm(x0 - xv)
    errors = {}
    for k in (10, 100, 1000):
        x = halpern(T, x0, maxiter=k, options={"tol_disp": 0}, warn=False).x
        errors[k] = np.linalg.norm(x - T(x) - v)
        bound = (np.sqrt(np.sum(1 / np.arange(1, k + 1)) + 12) + 1) / (k + 1) * D
        assert errors[k] <= bound
    # The rate itself: ten times the iterations, about a tenth of the error.
    assert errors[1000] <= 0.15 * errors[100] and errors[100] <= 0.15 * errors[10]


def test_the_proxy_drift_beats_the_plain_residual_and_halpern_detects_quickly():
    # The bench's problem (halpern.py (c)): before, plain Halpern needed 23,376 iterations to
    # detect and restarted Halpern 4,628; Picard 405.
    rng = np.random.default_rng(0)
    d = 2000
    T, v = ball_and_plane(d, 3.0, 1.0, rng)
    x0 = rng.standard_normal(d) * 2
    nit = {}
    for kw in METHODS:
        res = halpern(T, x0, maxiter=50_000, warn=False, **kw)
        assert res.status == 2
        nit[str(kw)] = res.nit
        err = np.linalg.norm(res.displacement - v) / np.linalg.norm(v)
        assert err <= 1e-5, (kw, err)
        # The residual at the returned point is Park & Ryu's estimate: far less accurate for
        # the anchored method, which is why the detector extrapolates it.
        if kw.get("method") == "halpern":
            assert np.linalg.norm(res.x - T(res.x) - v) > 10 * err * np.linalg.norm(v)
    assert max(nit.values()) <= 3000, nit


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_translation_displacement_in_both_dtypes(dtype):
    # T x = x - v (a translation): every method's estimate is v; float32 stays float32.
    v = np.array([0.5, -1.0, 2.0])

    def T(x):
        return x - v.astype(x.dtype)

    for kw in METHODS:
        res = halpern(T, np.array([1.0, 2.0, 3.0], dtype=dtype), warn=False, **kw)
        assert res.status == 2 and res.displacement.dtype == dtype
        assert np.allclose(res.displacement, v, rtol=1e-5 if dtype == np.float32 else 1e-12)
        assert res.nit <= res.nfev and not res.success
