"""Tests of :mod:`optcore.fixed_point`: :func:`halpern` and the native operators.

References are computed here independently: projections by closed forms, ``np.clip``,
``np.linalg.lstsq``, a sort-based NumPy simplex projection and ``scipy.optimize.minimize``;
fixed points by ``np.linalg.solve``; displacement vectors of inconsistent feasibility problems
by the closed-form gap between the sets; Halpern's rate bound ``2 ||x0 - x*|| / (k + 1)``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import minimize

import optcore
from optcore import ConvergenceWarning
from optcore.fixed_point import FixedPointResult, halpern
from optcore.fixed_point import operators as ops

METHODS = ("halpern", "km", "picard")


# ------------------------------------------------------------------------------------------
# Independent references
# ------------------------------------------------------------------------------------------


def simplex_ref(v, total=1.0):
    """Euclidean projection onto {x >= 0, sum x = total} (Held et al.; sort-based, NumPy)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - total
    rho = np.nonzero(u - css / np.arange(1, len(v) + 1) > 0)[0][-1]
    theta = css[rho] / (rho + 1)
    return np.maximum(v - theta, 0.0)


def ball_ref(x, c, r):
    d = np.linalg.norm(x - c)
    return x.copy() if d <= r else c + r * (x - c) / d


def affine_ref(x, A, b):
    """x plus the least-norm correction z with A (x + z) = b (lstsq)."""
    z, *_ = np.linalg.lstsq(A, b - A @ x, rcond=None)
    return x + z


def random_orthogonal(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


# ------------------------------------------------------------------------------------------
# Operators against references
# ------------------------------------------------------------------------------------------


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 30))
def test_box_is_clip(seed, d):
    rng = np.random.default_rng(seed)
    lo = rng.normal(size=d)
    hi = lo + rng.exponential(size=d)
    lo[rng.random(d) < 0.2] = -np.inf
    x = 3 * rng.normal(size=d)
    assert_allclose(ops.Box(lo, hi)(x), np.clip(x, lo, hi), rtol=0, atol=0)


def test_box_scalar_bounds_broadcast():
    assert_allclose(ops.Box(0.0, 1.0, dim=3)(np.array([-1.0, 0.5, 2.0])), [0.0, 0.5, 1.0])
    assert_allclose(ops.Box(np.zeros(2), 1.0)(np.array([2.0, -1.0])), [1.0, 0.0])


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 30), r=st.floats(0.0, 5.0))
def test_ball_projection(seed, d, r):
    rng = np.random.default_rng(seed)
    c, x = rng.normal(size=d), 3 * rng.normal(size=d)
    assert_allclose(ops.Ball(c, r)(x), ball_ref(x, c, r), rtol=1e-14, atol=1e-14)


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 40), total=st.floats(0.1, 10.0))
def test_simplex_matches_sort_reference(seed, d, total):
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=rng.uniform(0.01, 10), size=d)
    p = ops.Simplex(d, total)(x)
    assert_allclose(p, simplex_ref(x, total), rtol=1e-12, atol=1e-12)
    assert np.all(p >= 0) and p.sum() == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_simplex_matches_scipy_minimize(seed):
    """Small cases: the projection minimises ||p - x||^2 over the simplex (SLSQP)."""
    rng = np.random.default_rng(seed)
    d = 5
    x = rng.normal(size=d)
    cons = [{"type": "eq", "fun": lambda p: p.sum() - 1.0, "jac": lambda p: np.ones(d)}]
    ref = minimize(
        lambda p: ((p - x) ** 2).sum(),
        np.full(d, 1 / d),
        jac=lambda p: 2 * (p - x),
        bounds=[(0, None)] * d,
        constraints=cons,
        method="SLSQP",
        options={"ftol": 1e-14},
    )
    assert ref.success
    assert_allclose(ops.Simplex(d)(x), ref.x, atol=1e-6)


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 30), data=st.data())
def test_affine_matches_lstsq(seed, d, data):
    m = data.draw(st.integers(1, d))
    rng = np.random.default_rng(seed)
    A, b, x = rng.normal(size=(m, d)), rng.normal(size=m), rng.normal(size=d)
    p = ops.Affine(A, b)(x)
    assert_allclose(p, affine_ref(x, A, b), rtol=1e-9, atol=1e-9)
    assert_allclose(A @ p, b, atol=1e-9)


def test_affine_hyperplane_from_1d():
    p = ops.Affine([1.0, 1.0], 1.0)(np.array([1.0, 1.0]))
    assert_allclose(p, [0.5, 0.5], atol=1e-15)


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 20), lam=st.floats(0.01, 10.0))
def test_linear_resolvent(seed, d, lam):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(d, d))
    K = rng.normal(size=(d, d))
    L = B @ B.T / d + (K - K.T)  # monotone: PSD symmetric part plus a skew part
    x = rng.normal(size=d)
    y = ops.LinearResolvent(L, lam)(x)
    assert_allclose(y, 2 * np.linalg.solve(np.eye(d) + lam * L, x) - x, rtol=1e-8, atol=1e-10)
    assert np.linalg.norm(y) <= np.linalg.norm(x) * (1 + 1e-10)  # nonexpansive (linear)


def test_combinators_match_numpy():
    rng = np.random.default_rng(0)
    d = 6
    box, ball = ops.Box(-0.5, 0.5, dim=d), ops.Ball(np.ones(d) * 0.2, 0.7)
    x = rng.normal(size=d)
    pb = ball_ref(np.clip(x, -0.5, 0.5), np.ones(d) * 0.2, 0.7)
    assert_allclose((ball @ box)(x), pb, atol=1e-15)
    assert_allclose(ops.Compose(ball, box)(x), pb, atol=1e-15)
    assert_allclose(ops.reflect(box)(x), 2 * np.clip(x, -0.5, 0.5) - x, atol=1e-15)
    avg = ops.Average([box, ball, ops.Identity(d)], [0.2, 0.3, 0.5])
    want = 0.2 * np.clip(x, -0.5, 0.5) + 0.3 * ball_ref(x, np.ones(d) * 0.2, 0.7) + 0.5 * x
    assert_allclose(avg(x), want, atol=1e-15)
    # Douglas-Rachford: (I + R_B R_A) / 2, A applied first
    dr = ops.DouglasRachford(box, ball)
    ra = 2 * np.clip(x, -0.5, 0.5) - x
    rbra = 2 * ball_ref(ra, np.ones(d) * 0.2, 0.7) - ra
    assert_allclose(dr(x), 0.5 * (x + rbra), atol=1e-14)
    assert_allclose(dr.shadow(x), np.clip(x, -0.5, 0.5))


def test_operator_float32_in_float32_out():
    x = np.array([2.0, -1.0, 0.25], dtype=np.float32)
    for op in (ops.Box(0, 1, dim=3), ops.Ball(np.zeros(3), 1.0), ops.Simplex(3), ops.Affine([[1.0, 1.0, 1.0]], [1.0])):
        y = op(x)
        assert y.dtype == np.float32
        assert_allclose(y, op(x.astype(np.float64)), rtol=1e-6, atol=1e-6)
    assert ops.Box(0, 1, dim=3)([1, 2, 3]).dtype == np.float64  # ints become float64


def _random_projection(rng, d):
    kind = rng.integers(4)
    if kind == 0:
        lo = rng.normal(size=d)
        return ops.Box(lo, lo + rng.exponential(size=d))
    if kind == 1:
        return ops.Ball(rng.normal(size=d), rng.uniform(0.1, 2))
    if kind == 2:
        return ops.Simplex(d, rng.uniform(0.5, 2))
    m = int(rng.integers(1, d + 1))
    return ops.Affine(rng.normal(size=(m, d)), rng.normal(size=m))


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 12))
def test_property_native_operators_are_nonexpansive(seed, d):
    """Projections are firmly nonexpansive; their reflections, compositions, averages, DR and
    linear resolvents are nonexpansive: ||Tx - Ty|| <= ||x - y|| on random pairs."""
    rng = np.random.default_rng(seed)
    P, Q = _random_projection(rng, d), _random_projection(rng, d)
    B = rng.normal(size=(d, d))
    K = rng.normal(size=(d, d))
    built = [
        P,
        Q,
        ops.reflect(P),
        Q @ P,
        ops.Average([P, ops.reflect(Q)], [0.3, 0.7]),
        ops.DouglasRachford(P, Q),
        ops.LinearResolvent(B @ B.T + K - K.T, rng.uniform(0.1, 3)),
    ]
    for _ in range(5):
        x, y = rng.normal(scale=3, size=d), rng.normal(scale=3, size=d)
        for T in built:
            assert np.linalg.norm(T(x) - T(y)) <= np.linalg.norm(x - y) * (1 + 1e-9) + 1e-12, T
        # firm nonexpansiveness of projections: ||Px - Py||^2 <= <Px - Py, x - y>
        for T in (P, Q):
            dp = T(x) - T(y)
            assert dp @ dp <= dp @ (x - y) + 1e-9 * (1 + np.linalg.norm(x - y) ** 2)


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: ops.Box([0.0, 2.0], [1.0, 1.0]), ValueError, "lower"),
        (lambda: ops.Box(0.0, 1.0), ValueError, "dim"),
        (lambda: ops.Box([0.0, 0.0], [1.0, 1.0, 1.0]), ValueError, "upper"),
        (lambda: ops.Ball([0.0, np.nan], 1.0), ValueError, "center"),
        (lambda: ops.Ball([0.0], -1.0), ValueError, "radius"),
        (lambda: ops.Simplex(0), ValueError, "dim"),
        (lambda: ops.Simplex(3, total=0.0), ValueError, "total"),
        (lambda: ops.Affine([[1.0, 1.0], [2.0, 2.0]], [0.0, 0.0]), ValueError, "full row rank"),
        (lambda: ops.Affine([[1.0, 1.0]], [0.0, 1.0]), ValueError, "`b`"),
        (lambda: ops.Affine([[1.0, 1j]], [0.0]), TypeError, "`A`"),
        (lambda: ops.LinearResolvent(-np.eye(2)), ValueError, "monotone"),
        (lambda: ops.LinearResolvent(np.eye(2), lam=0.0), ValueError, "lam"),
        (lambda: ops.LinearResolvent(np.ones((2, 3))), ValueError, "square"),
        (lambda: ops.Compose(ops.Identity(2), ops.Identity(3)), ValueError, "same dimension"),
        (lambda: ops.Compose(ops.Identity(2), lambda x: x), TypeError, "ops\\[1\\]"),
        (lambda: ops.Average([ops.Identity(2), ops.Identity(2)], [0.7, 0.7]), ValueError, "weights"),
        (lambda: ops.Average([ops.Identity(2)], [1.0, 0.0]), ValueError, "weights"),
        (lambda: ops.DouglasRachford(ops.Identity(2), "x"), TypeError, "PB"),
        (lambda: ops.Identity(3)(np.zeros(2)), ValueError, "length 3"),
        (lambda: ops.Simplex(2)(np.array([np.inf, 0.0])), ValueError, "`x`"),
    ],
)
def test_operator_bad_input(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


# ------------------------------------------------------------------------------------------
# Halpern's rate and fixed points
# ------------------------------------------------------------------------------------------


def record_residuals(T, x0, maxiter, **kw):
    """Residuals ||x_k - T x_k|| for k = 1..maxiter via the callback (check_every=1), measured
    here on the reported iterates."""
    seen = []

    def cb(r):
        x = np.asarray(r.x, dtype=np.float64)
        seen.append((r.nit, r.residual, float(np.linalg.norm(x - np.asarray(T(r.x), dtype=np.float64)))))

    res = halpern(T, x0, tol=0.0, maxiter=maxiter, callback=cb, check_every=1, warn=False, **kw)
    return res, seen


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 8), contract=st.floats(0.0, 1.0), box=st.booleans())
def test_property_halpern_rate_on_random_nonexpansive_maps(seed, d, contract, box):
    """T(x) = clip(x* + Q D (x - x*)) with Q orthogonal, |D| <= 1 and x* inside the box: T is
    nonexpansive with fixed point x*, and ||x_k - T x_k|| <= 2 ||x0 - x*|| / (k + 1)."""
    rng = np.random.default_rng(seed)
    Q = random_orthogonal(rng, d)
    D = rng.uniform(-1, 1, size=d) * contract + (1 - contract) * np.sign(rng.normal(size=d))
    M = Q @ np.diag(D) @ Q.T @ random_orthogonal(rng, d) if rng.random() < 0.5 else Q @ np.diag(D) @ Q.T
    xs = rng.normal(size=d)
    lo, hi = xs - rng.uniform(0.1, 2, size=d), xs + rng.uniform(0.1, 2, size=d)

    def T(x):
        y = xs + M @ (x - xs)
        return np.clip(y, lo, hi) if box else y

    x0 = xs + rng.normal(scale=3, size=d)
    dist = np.linalg.norm(x0 - xs)
    res, seen = record_residuals(T, x0, 200)
    assert res.status in (0, 1)  # 0: an exact fixed point was hit (tol = 0)
    # the callback sees every iterate after the first, up to the one returned (excluded)
    assert [s[0] for s in seen] == list(range(1, res.nit))
    for k, r_reported, r_measured in seen:
        assert r_reported == pytest.approx(r_measured, rel=1e-9, abs=1e-13)
        assert r_measured <= 2 * dist / (k + 1) * (1 + 1e-9) + 1e-13, (k, r_measured)
    assert res.residual <= 2 * dist / (res.nit + 1) * (1 + 1e-9) + 1e-13


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 20))
def test_property_halpern_rate_native_alternating_projections(seed, d):
    """Native operators: alternating projections onto a box and a ball that share the point
    x*; the bound holds with D = ||x0 - x*|| at every iteration."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=d)
    T = ops.Ball(xs + rng.normal(scale=0.3, size=d), rng.uniform(0.5, 2.0) + 0.0) @ ops.Box(xs - 1, xs + 1)
    # make sure x* is in the ball too
    if np.linalg.norm(T.ops[0].center - xs) > T.ops[0].radius:
        T = ops.Ball(xs, 1.0) @ ops.Box(xs - 1, xs + 1)
    x0 = xs + rng.normal(scale=5, size=d)
    res, seen = record_residuals(T, x0, 100)
    dist = np.linalg.norm(x0 - xs)
    for k, r_reported, r_measured in seen:
        assert r_reported == pytest.approx(r_measured, rel=1e-9, abs=1e-13)
        assert r_measured <= 2 * dist / (k + 1) * (1 + 1e-9) + 1e-13


@pytest.mark.parametrize(
    "method, restart", [("halpern", None), ("halpern", "adaptive"), ("km", None), ("picard", None)]
)
def test_fixed_point_of_averaged_affine_map_equals_direct_solve(method, restart):
    """T x = M x + c with ||M|| < 1: the fixed point solves (I - M) x = c."""
    rng = np.random.default_rng(3)
    d = 15
    M = 0.9 * random_orthogonal(rng, d) @ np.diag(rng.uniform(-1, 1, d)) @ random_orthogonal(rng, d)
    c = rng.normal(size=d)
    xstar = np.linalg.solve(np.eye(d) - M, c)
    # plain Halpern converges only like 1/k, whatever the contraction: a looser tolerance
    tol = 1e-4 if method == "halpern" and restart is None else 1e-10
    res = halpern(lambda x: M @ x + c, np.zeros(d), method=method, restart=restart, maxiter=200_000, tol=tol)
    assert res.success, res.message
    assert res.residual <= tol
    assert np.linalg.norm(res.x - xstar) <= tol / 0.1 * 1.01  # ||x - x*|| <= r / (1 - ||M||)
    assert res.nfev == res.nit + 1


def test_halpern_converges_to_projection_of_x0_onto_fixed_set():
    """T = reflection through an affine set: Fix T is the set, Picard oscillates forever, and
    Halpern converges to the projection of x0 (its implicit regularisation)."""
    rng = np.random.default_rng(1)
    A, b = rng.normal(size=(3, 8)), rng.normal(size=3)
    T = ops.reflect(ops.Affine(A, b))
    x0 = rng.normal(size=8)
    res = halpern(T, x0, tol=1e-6, maxiter=100_000)
    assert res.success
    assert_allclose(res.x, affine_ref(x0, A, b), atol=1e-6)
    with pytest.warns(ConvergenceWarning):
        pic = halpern(T, x0, method="picard", maxiter=1000)
    assert pic.status == 1


def test_douglas_rachford_ball_affine():
    rng = np.random.default_rng(0)
    d, m = 200, 10
    A = rng.normal(size=(m, d))
    p = rng.normal(size=d)
    p *= 0.5 / np.linalg.norm(p)  # a point inside the unit ball ...
    b = A @ p  # ... on the affine set: the intersection is not empty
    T = ops.DouglasRachford(ops.Ball(np.zeros(d), 1.0), ops.Affine(A, b))
    for restart, tol in ((None, 1e-3), ("adaptive", 1e-8)):
        res = halpern(T, rng.normal(size=d), restart=restart, tol=tol, maxiter=100_000)
        assert res.success, res.message
        x = T.shadow(res.x)
        assert np.linalg.norm(x) <= 1 + 1e-12
        # at a DR point z with ||z - Tz|| <= tol, P_A z is within about tol of B
        assert np.linalg.norm(A @ x - b) <= 2 * tol * np.linalg.norm(A, 2)


def test_restart_reduces_iterations_on_averaged_linear_map():
    rng = np.random.default_rng(2)
    d = 50
    Q = random_orthogonal(rng, d)
    S = Q @ np.diag(np.linspace(-0.95, 0.95, d)) @ Q.T
    T = lambda x: 0.5 * (x + S @ x)  # noqa: E731  averaged, fixed point 0
    x0 = rng.normal(size=d)
    plain = halpern(T, x0, maxiter=50_000, warn=False)
    rest = halpern(T, x0, restart="adaptive", maxiter=50_000)
    assert rest.success and rest.restarts > 0
    assert rest.nit * 10 < plain.nit
    assert np.linalg.norm(rest.x) <= rest.residual / 0.025 * 1.01


def test_km_relaxation_one_is_picard_and_anchoring_option():
    rng = np.random.default_rng(4)
    M = 0.5 * random_orthogonal(rng, 5)
    T = lambda x: M @ x + 1.0  # noqa: E731
    km = halpern(T, np.zeros(5), method="km", options={"relaxation": 1.0})
    pic = halpern(T, np.zeros(5), method="picard")
    assert km.nit == pic.nit and np.array_equal(km.x, pic.x)
    half = halpern(T, np.zeros(5), method="km")
    assert half.success and half.nit > pic.nit
    a2 = halpern(T, np.zeros(5), anchoring=2.0, tol=1e-4, maxiter=100_000)
    a1 = halpern(T, np.zeros(5), tol=1e-4, maxiter=100_000)
    assert a1.success and a2.success and a1.nit != a2.nit


# ------------------------------------------------------------------------------------------
# Infeasibility
# ------------------------------------------------------------------------------------------


def disjoint_boxes(d, rng):
    lo_a = rng.normal(size=d)
    hi_a = lo_a + rng.uniform(0.5, 1.0, size=d)
    shift = np.zeros(d)
    shift[: max(1, d // 3)] = rng.uniform(1.5, 3.0, size=max(1, d // 3))
    lo_b, hi_b = lo_a + shift, hi_a + shift + rng.uniform(0, 1, size=d)
    # gap vector P_{cl(A - B)}(0): A - B is the box [lo_a - hi_b, hi_a - lo_b]
    v = np.clip(0.0, lo_a - hi_b, hi_a - lo_b)
    return ops.Box(lo_a, hi_a), ops.Box(lo_b, hi_b), v


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", range(3))
def test_disjoint_boxes_status_2_with_gap_vector(method, seed):
    rng = np.random.default_rng(seed)
    d = 12
    A, B, v = disjoint_boxes(d, rng)
    assert np.linalg.norm(v) > 0
    res = halpern(ops.DouglasRachford(A, B), rng.normal(size=d), method=method, maxiter=100_000)
    assert res.status == 2 and not res.success, res.message
    assert "no fixed point" in res.message
    assert np.linalg.norm(res.displacement - v) <= 1e-6 * np.linalg.norm(v)
    assert res.residual >= np.linalg.norm(v) * (1 - 1e-12)  # ||x - Tx|| >= ||v||


@pytest.mark.parametrize("method", METHODS)
def test_ball_and_disjoint_hyperplane_status_2(method):
    rng = np.random.default_rng(5)
    d = 30
    a = rng.normal(size=d)
    a /= np.linalg.norm(a)
    T = ops.DouglasRachford(ops.Ball(np.zeros(d), 1.0), ops.Affine(a[None], [3.0]))
    res = halpern(T, rng.normal(size=d), method=method, maxiter=100_000)
    assert res.status == 2, res.message
    assert_allclose(res.displacement, -2.0 * a, rtol=0, atol=2e-6 * 2.0)


def test_translation_displacement_is_exact():
    v = np.array([1.0, -2.0, 0.5])
    for method in METHODS:
        res = halpern(lambda x: x - v, np.zeros(3), method=method)
        assert res.status == 2 and res.nit >= 50
        assert_allclose(res.displacement, v, rtol=1e-12)


def test_detection_can_be_turned_off():
    res = halpern(lambda x: x - 1.0, np.zeros(3), options={"tol_disp": 0.0}, maxiter=500, warn=False)
    assert res.status == 1 and res.displacement is None


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 30), method=st.sampled_from(METHODS), restart=st.booleans())
def test_property_feasible_problems_are_never_infeasible(seed, d, method, restart):
    """Random consistent ball ∩ affine (possibly touching only barely) and box ∩ affine
    problems, started far away: the run may stop at maxiter, but never with status 2."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, d))
    A = rng.normal(size=(m, d))
    p = rng.normal(size=d)
    r = np.linalg.norm(p) * rng.uniform(1.0, 1.5)  # p in the ball: the sets intersect
    PA = ops.Ball(np.zeros(d), r) if rng.random() < 0.5 else ops.Box(p - rng.uniform(0, 1, d), p + 1e-3)
    T = ops.DouglasRachford(PA, ops.Affine(A, A @ p))
    x0 = rng.normal(scale=10.0 ** rng.uniform(0, 3), size=d)
    res = halpern(
        T, x0, method=method, restart="adaptive" if restart and method == "halpern" else None, maxiter=3000, warn=False
    )
    assert res.status in (0, 1), res.message
    assert res.displacement is None


def test_slow_feasible_rotation_is_not_infeasible():
    """A slow rotation about a far fixed point: iterates travel a long way before converging."""
    th = 0.01
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    c = np.array([100.0, 0.0])
    for method in METHODS[:2]:
        res = halpern(lambda x: c + R @ (x - c), np.zeros(2), method=method, maxiter=30_000, warn=False)
        assert res.status in (0, 1)


# ------------------------------------------------------------------------------------------
# Results, dtypes, callbacks, progress
# ------------------------------------------------------------------------------------------


def test_result_fields():
    res = halpern(lambda x: 0.5 * x + 1.0, np.zeros((2, 3)), method="picard")
    assert isinstance(res, FixedPointResult) and isinstance(res, optcore.OptimizeResult)
    assert res.x.shape == (2, 3) and res.x.dtype == np.float64
    assert res.status == 0 and res.success and res.message.startswith("Converged")
    assert res.fun == res.residual <= 1e-8
    assert res.residual == pytest.approx(np.linalg.norm(res.x - (0.5 * res.x + 1.0)), rel=1e-9)
    assert res.displacement is None and res.method == "picard" and res.nfev == res.nit + 1
    assert res.initial_residual == pytest.approx(np.sqrt(6.0))


def test_rtol_is_relative_to_initial_residual():
    T = lambda x: 0.9 * x + 1.0  # noqa: E731
    res = halpern(T, np.zeros(4), method="picard", tol=0.0, rtol=1e-3)
    assert res.success and res.residual <= 1e-3 * res.initial_residual
    assert res.residual > 1e-3 * res.initial_residual * 0.9 * 0.9  # stopped at the first such iterate


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("method", METHODS)
def test_float32_in_float32_out(native, method):
    d = 5
    x0 = np.arange(d, dtype=np.float32) * 3
    T = ops.Box(0.0, 1.0, dim=d) if native else (lambda x: np.clip(x, 0, 1))
    res = halpern(T, x0, method=method, restart="adaptive" if method == "halpern" else None)
    assert res.x.dtype == np.float32
    assert res.success, res.message
    assert res.residual <= 1e-5


def test_integer_and_list_x0_become_float64():
    res = halpern(lambda x: 0.5 * x, [1, 2, 3], method="picard")
    assert res.x.dtype == np.float64 and res.success


def test_callable_receives_x0_shape_and_dtype():
    seen = []

    def T(x):
        seen.append((x.shape, x.dtype))
        return 0.5 * x

    halpern(T, np.ones((3, 2), dtype=np.float32), method="picard")
    assert set(seen) == {((3, 2), np.dtype(np.float32))}


@pytest.mark.parametrize("check_every", [1, 7])
def test_callback_protocol(check_every):
    rng = np.random.default_rng(0)
    d = 10
    T = ops.LinearResolvent(np.eye(d) * 0.5 + np.triu(np.ones((d, d))) - np.tril(np.ones((d, d))))
    seen = []

    def cb(r):
        assert isinstance(r, FixedPointResult)
        seen.append((r.nit, r.residual, np.array(r.x), r.x))

    x0 = rng.normal(size=d)
    res = halpern(T, x0, callback=cb, check_every=check_every, restart="adaptive")
    assert res.success
    nits = [s[0] for s in seen]
    assert nits == [check_every * (i + 1) for i in range(len(nits))]
    assert nits[-1] < res.nit <= nits[-1] + check_every
    for _, r, xcopy, x in seen:
        assert r == pytest.approx(np.linalg.norm(xcopy - T(xcopy)), rel=1e-9)
        assert np.array_equal(x, xcopy)  # not overwritten by later iterations


def test_callback_stop_iteration():
    def cb(r):
        if r.nit >= 20:
            raise StopIteration

    res = halpern(lambda x: np.cos(x), np.zeros(3), callback=cb, check_every=5, tol=0.0)
    assert res.status == 99 and not res.success and res.nit == 20
    assert "StopIteration" in res.message
    assert res.residual == pytest.approx(np.linalg.norm(res.x - np.cos(res.x)), rel=1e-12)


class _Boom(RuntimeError):
    pass


def test_callback_exception_propagates():
    boom = _Boom("from callback")

    def cb(r):
        raise boom

    with pytest.raises(_Boom) as ei:
        halpern(ops.Box(0, 1, dim=2), np.array([3.0, 4.0]), callback=cb, tol=0.0)
    assert ei.value is boom


def test_disp_prints_progress(capsys):
    seen = []
    res = halpern(
        lambda x: np.cos(x),
        np.zeros(3),
        disp=True,
        check_every=5,
        tol=1e-10,
        restart="adaptive",
        callback=lambda r: seen.append((r.nit, r.residual)),
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert "optcore.fixed_point.halpern" in out[0]
    assert out[1].split() == ["iter", "error", "time", "(s)"]
    # disp paces its lines (the first check, then at most one per second, then the last):
    # every printed line is one of the checks the callback saw, the first and the last included.
    body = out[2:-1]
    checks = dict(seen)
    assert 0 < len(body) <= len(seen)
    for line in body:
        nit, r = int(line.split()[0]), float(line.split()[1])
        assert r == pytest.approx(checks[nit], rel=1e-4)
    assert int(body[0].split()[0]) == seen[0][0] and int(body[-1].split()[0]) == seen[-1][0]
    assert out[-1].startswith(res.message)


def test_no_output_without_disp(capsys):
    halpern(lambda x: np.cos(x), np.zeros(3), method="picard")
    assert capsys.readouterr().out == ""


def test_iteration_limit_warns():
    with pytest.warns(ConvergenceWarning, match="restart='adaptive'"):
        res = halpern(lambda x: np.cos(x), np.zeros(3), maxiter=3)
    assert res.status == 1 and res.nit == 3 and not res.success
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        halpern(lambda x: np.cos(x), np.zeros(3), maxiter=3, warn=False)


def test_maxiter_zero_returns_x0():
    res = halpern(lambda x: x + 1, np.zeros(2), maxiter=0, warn=False)
    assert res.nit == 0 and res.nfev == 1 and np.array_equal(res.x, np.zeros(2))


# ------------------------------------------------------------------------------------------
# Bad input and misbehaving T
# ------------------------------------------------------------------------------------------

GOOD_T = ops.Box(0, 1, dim=3)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(T=3), TypeError, "`T`"),
        (dict(x0=np.zeros(2)), ValueError, "`x0`.*length 3"),
        (dict(x0=np.array([0.0, np.nan, 1.0])), ValueError, "`x0`"),
        (dict(x0=np.zeros(3, complex)), TypeError, "`x0`"),
        (dict(x0=np.zeros(0), T=lambda x: x), ValueError, "`x0` is empty"),
        (dict(x0=[[1, 2], [3]]), ValueError, "`x0`"),
        (dict(method="newton"), ValueError, "method"),
        (dict(restart="always"), ValueError, "`restart`"),
        (dict(restart="adaptive", method="km"), ValueError, "restart"),
        (dict(anchoring=-1.0), ValueError, "`anchoring`"),
        (dict(anchoring=1.0, method="picard"), ValueError, "`anchoring`"),
        (dict(tol=-1.0), ValueError, "`tol`"),
        (dict(rtol=np.inf), ValueError, "`rtol`"),
        (dict(maxiter=1.5), TypeError, "`maxiter`"),
        (dict(maxiter=-1), ValueError, "`maxiter`"),
        (dict(check_every=0), ValueError, "`check_every`"),
        (dict(callback=5), TypeError, "`callback`"),
        (dict(options={"bogus": 1}), ValueError, "unknown option"),
        (dict(options=[1]), TypeError, "`options`"),
        (dict(options={"restart_factor": 0.5}), ValueError, "restart_factor"),
        (dict(options={"restart_factor": 1.5}, restart="adaptive"), ValueError, "restart_factor"),
        (dict(method="km", options={"relaxation": 1.5}), ValueError, "relaxation"),
        (dict(options={"tol_disp": -1}), ValueError, "tol_disp"),
        (dict(options={"min_disp_iter": 0}), ValueError, "min_disp_iter"),
    ],
)
def test_bad_input_raises(kwargs, exc, match):
    args = dict(T=GOOD_T, x0=np.zeros(3))
    args.update(kwargs)
    T, x0 = args.pop("T"), args.pop("x0")
    with pytest.raises(exc, match=match):
        halpern(T, x0, **args)


def test_callable_exception_propagates_unchanged():
    boom = _Boom("from T")
    calls = []

    def T(x):
        calls.append(1)
        if len(calls) == 5:
            raise boom
        return 0.5 * x

    with pytest.raises(_Boom) as ei:
        halpern(T, np.ones(3), tol=0.0)
    assert ei.value is boom and len(calls) == 5


@pytest.mark.parametrize("bad", [lambda x: x[:-1], lambda x: x.reshape(1, -1), lambda x: 1.0])
def test_callable_wrong_shape_is_value_error(bad):
    with pytest.raises(ValueError, match="`T` returned an array of shape"):
        halpern(bad, np.ones(3))


def test_callable_complex_output_is_type_error():
    with pytest.raises(TypeError, match="`T` must return real numbers"):
        halpern(lambda x: x + 1j, np.ones(3))


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_callable_nan_is_status_4(bad_value):
    calls = []

    def T(x):
        calls.append(1)
        return 0.5 * x + (bad_value if len(calls) == 4 else 0.0)

    with pytest.warns(ConvergenceWarning, match="non-finite"):
        res = halpern(T, np.ones(3), tol=0.0)
    assert res.status == 4 and not res.success
    assert "non-finite" in res.message and "iteration 3" in res.message
    assert np.all(np.isfinite(res.x)) and np.isnan(res.residual)


INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import numpy as np
    from optcore.fixed_point import halpern, operators as ops

    # SIGINT may be inherited ignored (a background launch): install Python's handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    d = 2000
    rng = np.random.default_rng(0)
    T = ops.DouglasRachford(ops.Ball(np.zeros(d), 1.0), ops.Affine(rng.normal(size=(5, d)), np.ones(5)))
    t0 = time.perf_counter()
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        halpern(T, rng.normal(size=d), tol=0.0, maxiter=10**9, check_every=10**8, warn=False)
        print("returned", time.perf_counter() - t0)
    except KeyboardInterrupt:
        print("interrupted", time.perf_counter() - t0 - 0.3)
    res = halpern(ops.Box(0, 1, dim=2), np.array([0.5, 0.5]))
    print("after", res.success)
    """
)


def test_keyboard_interrupt_is_prompt(tmp_path):
    """SIGINT during a native run raises KeyboardInterrupt within ~1 s; the module still works."""
    script = tmp_path / "interrupt.py"
    script.write_text(INTERRUPT_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env={**os.environ}
    )
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line.split()[1:] for line in proc.stdout.strip().splitlines()}
    assert "interrupted" in lines, proc.stdout
    assert float(lines["interrupted"][0]) < 1.5
    assert lines["after"] == ["True"]


# ------------------------------------------------------------------------------------------
# Package surface: exports, docstring examples, the tour
# ------------------------------------------------------------------------------------------


def test_exported_from_package():
    assert "fixed_point" in optcore.__all__
    assert optcore.fixed_point.halpern is halpern
    assert set(ops.__all__) <= set(dir(ops))


@pytest.mark.parametrize("module", ["optcore.fixed_point", "optcore.fixed_point.operators"])
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_readme_example_runs():
    """The README's 'Fixed points (Halpern)' example runs and gives what its comments say."""
    readme = os.path.dirname(__file__) + "/../README.md"
    text = open(readme, encoding="utf-8").read()
    code = text.split("## Fixed points (Halpern)")[1].split("```python")[1].split("```")[0]
    ns: dict = {}
    exec(code, ns)  # noqa: S102
    d = ns["d"]
    assert ns["res"].status == 2
    assert_allclose(ns["res"].displacement, -2 * np.ones(d) / np.sqrt(d), rtol=1e-6)
    assert np.linalg.norm(ns["x"]) <= 1 + 1e-12


def test_tour_section_runs(capsys):
    from optcore.__main__ import tour_fixed_point

    tour_fixed_point(300, 0)
    out = capsys.readouterr().out
    assert "optcore halpern restart='adaptive'" in out and "scipy fixed_point" in out


def test_vectorized_batch_of_problems_one_call_per_iteration():
    """B affine contractions x -> A_b x + c_b solved in lockstep by one call per iteration;
    each row reaches its own fixed point, and every row's residual meets tol."""
    rng = np.random.default_rng(11)
    B, d = 6, 4
    As = rng.normal(size=(B, d, d))
    As /= 1.5 * np.linalg.norm(As, 2, axis=(1, 2))[:, None, None]  # contractions
    cs = rng.normal(size=(B, d))
    calls = []

    def T(X):
        calls.append(X.shape)
        return np.einsum("bij,bj->bi", As, X) + cs

    res = halpern(T, np.zeros((B, d)), vectorized=True, restart="adaptive", tol=1e-10, maxiter=20_000)
    assert res.success, res.message
    assert set(calls) == {(B, d)} and res.nfev == len(calls)
    want = np.stack([np.linalg.solve(np.eye(d) - As[b], cs[b]) for b in range(B)])
    assert np.allclose(res.x, want, atol=1e-9)
    assert res.residuals.shape == (B,) and np.all(res.residuals <= 1e-10)


def test_vectorized_argument_errors():
    from optcore.fixed_point import operators  # noqa: PLC0415

    with pytest.raises(ValueError, match=r"\(B, d\)"):
        halpern(lambda x: x, np.zeros(3), vectorized=True)
    with pytest.raises(ValueError, match="Python callables"):
        halpern(operators.Box(-1, 1, dim=3), np.zeros(3), vectorized=True)
    with pytest.raises(TypeError, match="vectorized"):
        halpern(lambda x: x, np.zeros((2, 3)), vectorized="yes")


@pytest.mark.parametrize("native", [True, False])
def test_workers_give_bit_identical_results(native):
    T = ops.DouglasRachford(ops.Ball(np.zeros(50), 1.0), ops.Affine(np.ones((1, 50)), [1.0]))
    op = T if native else (lambda v: T(v))
    x0 = np.linspace(-2.0, 3.0, 50)
    runs = [halpern(op, x0, restart="adaptive", maxiter=2000, warn=False, workers=w) for w in (1, 2)]
    assert runs[0].nit == runs[1].nit and runs[0].x.tobytes() == runs[1].x.tobytes()
    assert runs[0].residual == runs[1].residual


def test_bad_workers():
    with pytest.raises(TypeError, match="`workers`"):
        halpern(ops.Box(-1, 1, dim=2), np.zeros(2), workers="all")
