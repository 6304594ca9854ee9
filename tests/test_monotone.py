"""Tests of :mod:`optcore.monotone` (matrix games by extragradient / extra-anchored gradient).

References: closed-form equilibria (rock-paper-scissors, a pure saddle point) and the value of
random games from ``scipy.optimize.linprog`` (HiGHS).
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import linprog

import optcore
from optcore import ConvergenceWarning
from optcore.monotone import GameResult, MatrixGame, solve

RPS = [[0.0, 1.0, -1.0], [-1.0, 0.0, 1.0], [1.0, -1.0, 0.0]]


def lp_value(A) -> float:
    """min_x max_y y^T A x over simplices as an LP: min t s.t. A x <= t 1, x in the simplex."""
    m, n = A.shape
    c = np.r_[np.zeros(n), 1.0]
    res = linprog(
        c,
        A_ub=np.c_[A, -np.ones(m)],
        b_ub=np.zeros(m),
        A_eq=np.r_[np.ones(n), 0.0][None],
        b_eq=[1.0],
        bounds=[(0, None)] * n + [(None, None)],
        method="highs",
    )
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("method, tol", [("eg", 1e-9), ("eag", 1e-4)])
def test_rock_paper_scissors(method, tol):
    res = solve(MatrixGame(RPS), ([1.0, 0, 0], [0, 0, 1.0]), method=method, tol=tol)
    assert isinstance(res, GameResult) and res.success, res.message
    assert abs(res.fun) <= tol and res.gap <= tol
    assert_allclose(res.x, np.full(3, 1 / 3), atol=10 * tol)
    assert_allclose(res.y, np.full(3, 1 / 3), atol=10 * tol)


def test_pure_saddle_point():
    A = np.array([[3.0, 1.0], [2.0, 0.0]])  # row 0 and column 1: value 1
    res = solve(MatrixGame(A), method="eg", tol=1e-10)
    assert res.success and res.fun == pytest.approx(1.0, abs=1e-9)
    assert_allclose(res.x, [0, 1], atol=1e-9)
    assert_allclose(res.y, [1, 0], atol=1e-9)


@settings(max_examples=20)
@given(
    seed=st.integers(0, 2**32 - 1), m=st.integers(1, 12), n=st.integers(1, 12), method=st.sampled_from(["eg", "eag"])
)
def test_property_value_matches_linprog(seed, m, n, method):
    """The LP value lies in [min_j (A^T y)_j, max_i (A x)_i] at the returned strategies, and
    y^T A x is within the reported gap of it."""
    A = np.random.default_rng(seed).normal(size=(m, n))
    g = MatrixGame(A)
    tol = 1e-4
    res = solve(g, method=method, tol=tol, maxiter=200_000)
    assert res.success, res.message
    v = lp_value(A)
    x, y = res.x, res.y
    assert np.all(x >= 0) and np.all(y >= 0)
    assert x.sum() == pytest.approx(1, abs=1e-12) and y.sum() == pytest.approx(1, abs=1e-12)
    assert res.gap == pytest.approx(g.gap(x, y), rel=1e-9, abs=1e-12) and res.gap <= tol
    assert (A.T @ y).min() - 1e-9 <= v <= (A @ x).max() + 1e-9
    assert abs(res.fun - v) <= res.gap + 1e-9


def test_iteration_limit_and_callback():
    rng = np.random.default_rng(1)
    g = MatrixGame(rng.normal(size=(30, 40)))
    with pytest.warns(ConvergenceWarning):
        res = solve(g, method="eag", tol=1e-12, maxiter=50)
    # two full evaluations of F per iteration, N = max(30, 40) components each; the residual
    # checks are counted apart
    assert res.status == 1 and res.nit == 50 and res.nfev == 2 * 50 * 40 and res.epochs == 100
    assert res.n_residual >= 6
    seen = []

    def cb(r):
        seen.append((r.nit, r.gap, g.gap(r.x, r.y)))
        if r.nit >= 30:
            raise StopIteration

    res = solve(g, method="eg", tol=1e-12, callback=cb, check_every=10)
    assert res.status == 99 and res.nit == 30
    assert [s[0] for s in seen] == [10, 20, 30]
    for _, reported, measured in seen:
        assert reported == pytest.approx(measured, rel=1e-9)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: solve(np.eye(2)), TypeError, "`problem`"),
        (lambda: MatrixGame(np.ones(3)), ValueError, "`A`"),
        (lambda: MatrixGame([[1.0, np.nan]]), ValueError, "`A`"),
        (lambda: MatrixGame([[1j]]), TypeError, "`A`"),
        (lambda: solve(MatrixGame(RPS), method="newton"), ValueError, "unknown method"),
        (lambda: solve(MatrixGame(RPS), options={"step": 10.0}), ValueError, "step"),
        (lambda: solve(MatrixGame(RPS), options={"eta": 0.1}), ValueError, "unknown option"),
        (lambda: solve(MatrixGame(RPS), ([1.0, 0.0], [1.0, 0, 0])), ValueError, "`x0`"),
        (lambda: solve(MatrixGame(RPS), [1.0, 0.0, 0.0]), ValueError, "`x0`"),
        (lambda: solve(MatrixGame(RPS), tol=-1), ValueError, "`tol`"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_docstring_example():
    result = doctest.testmod(optcore.monotone, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------------------------------
# Finite sums: every method, the estimators, the problems
# ------------------------------------------------------------------------------------------

from optcore.monotone import FiniteSum, QuadraticMinMax  # noqa: E402


@pytest.mark.parametrize("method", ["eg", "eag", "halpern", "vr_halpern"])
def test_every_method_solves_a_random_game_like_an_lp(method):
    """The equilibrium's value and the duality gap agree with the LP solution of the game."""
    from scipy.optimize import linprog  # noqa: PLC0415

    rng = np.random.default_rng(4)
    A = rng.normal(size=(12, 9))
    g = MatrixGame(A)
    # value v = min_x max_y y^T A x: min t s.t. A x <= t, x in the simplex
    m, n = A.shape
    lp = linprog(
        np.r_[np.zeros(n), 1.0],
        A_ub=np.c_[A, -np.ones(m)],
        b_ub=np.zeros(m),
        A_eq=np.r_[np.ones(n), 0.0][None],
        b_eq=[1.0],
        bounds=[(0, None)] * n + [(None, None)],
    )
    value = lp.fun
    res = solve(g, method=method, tol=1e-7, maxiter=10**6, rng=0, options={"max_epochs": 2e6})
    assert res.success, res.message
    assert res.gap <= 1e-4
    assert abs(res.fun - value) <= res.gap + 1e-9
    assert res.x.sum() == pytest.approx(1) and res.y.sum() == pytest.approx(1)
    assert np.all(res.x >= 0) and np.all(res.y >= 0)


def test_vr_halpern_is_reproducible_by_seed_and_names_its_algorithm():
    g = MatrixGame.policeman_burglar(60, rng=1)
    r1 = solve(g, method="vr_halpern", tol=0, rng=7, warn=False, options={"max_epochs": 30})
    r2 = solve(g, method="vr_halpern", tol=0, rng=7, warn=False, options={"max_epochs": 30})
    r3 = solve(g, method="vr_halpern", tol=0, rng=8, warn=False, options={"max_epochs": 30})
    assert np.array_equal(r1.z, r2.z) and r1.nfev == r2.nfev
    assert not np.array_equal(r1.z, r3.z)
    assert "Algorithm 2" in r1.variant
    assert r1.history.shape[1] == 2 and np.all(np.diff(r1.history[:, 0]) >= 0)
    assert r1.residual < r1.history[0, 1]  # progress from the uniform start


def test_quadratic_min_max_reaches_the_linear_solution():
    q = QuadraticMinMax.lower_bound(20)
    z_star = q.solution()
    assert np.allclose(q.operator(z_star), 0, atol=1e-10)
    for method in ("eg", "eag", "halpern", "vr_halpern"):
        res = solve(q, method=method, tol=1e-8, maxiter=10**7, rng=0, options={"max_epochs": 5e6})
        assert res.success, (method, res.message)
        assert np.linalg.norm(q.operator(res.x)) <= 1e-7
        assert res.fun is None


def test_algorithm_1_on_a_cocoercive_sum():
    rng = np.random.default_rng(2)
    B = rng.normal(size=(30, 10)) / 6
    q = QuadraticMinMax(B.T @ B + 0.05 * np.eye(10), np.zeros((0, 10)), h=rng.normal(size=10))
    res = solve(q, method="vr_halpern", tol=1e-6, maxiter=10**7, rng=0, options={"max_epochs": 1e6})
    assert res.success and "Algorithm 1" in res.variant
    assert np.allclose(res.x, np.linalg.solve(q.H, q.h), atol=1e-4)
    forced = solve(
        q, method="vr_halpern", tol=1e-6, maxiter=10**7, rng=0, options={"max_epochs": 1e6, "cocoercive": False}
    )
    assert forced.success and "Algorithm 2" in forced.variant


def _sum_of_affine(rng, n, d):
    """F_i(z) = M_i z + q_i with M_i = S_i + K_i (S_i PSD, K_i skew): monotone in the mean."""
    Ms, qs = [], []
    for _ in range(n):
        G = rng.normal(size=(d, d)) / d
        K = rng.normal(size=(d, d)) / d
        Ms.append(G @ G.T + (K - K.T))
        qs.append(rng.normal(size=d))
    return np.array(Ms), np.array(qs)


def test_python_finite_sum_matches_the_native_operator_and_box_projection():
    from optcore.fixed_point import operators  # noqa: PLC0415

    rng = np.random.default_rng(3)
    n, d = 8, 5
    Ms, qs = _sum_of_affine(rng, n, d)
    calls = []

    def F(i, z):
        calls.append(len(i))
        return np.einsum("kij,j->ki", Ms[i], z) + qs[i]

    L = float(np.linalg.norm(Ms.mean(0), 2))
    Lms = float(np.sqrt(np.mean([np.linalg.norm(M, 2) ** 2 for M in Ms])))
    fs = FiniteSum(F, n, d, lipschitz=L, lipschitz_ms=Lms, project=operators.Box(-np.ones(d), np.ones(d)))
    z = rng.normal(size=d)
    assert np.allclose(fs.operator(z), Ms.mean(0) @ z + qs.mean(0))
    assert calls == [n]  # one batched call for the full operator
    # the VR estimator F(w) + F_i(u) - F_i(w) is unbiased: its mean over i is F(u)
    w, u = rng.normal(size=d), rng.normal(size=d)
    est = np.mean([fs.operator(w) + F(np.array([i]), u)[0] - F(np.array([i]), w)[0] for i in range(n)], axis=0)
    assert np.allclose(est, fs.operator(u))
    for method in ("eg", "vr_halpern"):
        res = solve(fs, method=method, tol=1e-7, maxiter=10**6, rng=0, options={"max_epochs": 2e5})
        assert res.success, (method, res.message)
        assert np.all(np.abs(res.x) <= 1 + 1e-12)
        # the natural residual is measured independently here
        t = np.clip(res.x - fs.operator(res.x) / L, -1, 1)
        assert np.linalg.norm(res.x - t) * L <= 1.01e-7


@pytest.mark.parametrize(
    "F, match",
    [
        (lambda i, z: np.zeros((len(i), 2)), r"shape \(1, 2\)|expected"),
        (lambda i, z: np.full((len(i), 3), np.nan), "NaN"),
        (lambda i, z: 1 / 0, "division"),
    ],
)
def test_python_finite_sum_errors_are_reported(F, match):
    fs = FiniteSum(F, 4, 3, lipschitz=1.0, full=lambda z: np.zeros(3) + 1.0)
    with pytest.raises((ValueError, ZeroDivisionError), match=match):
        solve(fs, method="vr_halpern", tol=1e-9, rng=0, options={"max_epochs": 10})


def test_finite_sum_argument_errors():
    with pytest.raises(TypeError, match="callable"):
        FiniteSum(3, 4, 3, lipschitz=1.0)
    with pytest.raises(ValueError, match="lipschitz"):
        FiniteSum(lambda i, z: z, 4, 3, lipschitz=-1.0)
    with pytest.raises(TypeError, match="project"):
        FiniteSum(lambda i, z: z, 4, 3, lipschitz=1.0, project="box")
    with pytest.raises(ValueError, match="symmetric"):
        QuadraticMinMax(np.array([[1.0, 2.0], [0.0, 1.0]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="restart"):
        solve(MatrixGame(RPS), method="eag", options={"restart": 1.5})


def test_float32_game_keeps_its_dtype():
    res = solve(MatrixGame(np.asarray(RPS, dtype=np.float32)), method="eg", tol=1e-6)
    assert res.success and res.x.dtype == np.float32 and res.y.dtype == np.float32


def test_workers_give_bit_identical_results():
    game = MatrixGame.policeman_burglar(60, rng=0)
    runs = [solve(game, method="vr_halpern", rng=3, maxiter=200, warn=False, workers=w) for w in (1, 2)]
    assert runs[0].nit == runs[1].nit and runs[0].nfev == runs[1].nfev
    assert runs[0].x.tobytes() == runs[1].x.tobytes() and runs[0].y.tobytes() == runs[1].y.tobytes()
    assert runs[0].residual == runs[1].residual


def test_bad_workers():
    with pytest.raises(ValueError, match="`workers`"):
        solve(MatrixGame([[0.0, 1.0], [1.0, 0.0]]), workers=0)


# ------------------------------------------------------------------------------------------
# Issue 17: the returned residual and status hold when re-measured
# ------------------------------------------------------------------------------------------


def _project_simplex(v):
    """Euclidean projection onto the probability simplex (sort-based, shifted by the max)."""
    u = np.sort(v - v.max())[::-1]
    css = np.cumsum(u) - 1.0
    rho = np.nonzero(u - css / np.arange(1, len(u) + 1) > 0)[0][-1]
    return np.maximum(v - v.max() - css[rho] / (rho + 1), 0.0)


def _measured_residual(problem, z):
    """The natural residual ``L ||z - P(z - F(z)/L)||`` re-measured in NumPy (scaled norm)."""
    L = problem.lipschitz if problem.lipschitz > 0 else 1.0
    t = z - problem.operator(z) / L
    if isinstance(problem, MatrixGame):
        n = problem.shape[1]
        t = np.r_[_project_simplex(t[:n]), _project_simplex(t[n:])]
    d = z - t
    big = np.abs(d).max()
    return 0.0 if big == 0 else float(L * big * np.sqrt(np.sum((d / big) ** 2)))


@settings(max_examples=40)
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(1, 4),
    n=st.integers(1, 4),
    game=st.booleans(),
    method=st.sampled_from(["eg", "eag", "halpern", "vr_halpern"]),
)
def test_property_residual_and_status_hold_when_remeasured(seed, m, n, game, method):
    rng = np.random.default_rng(seed)
    if game:
        problem = MatrixGame(rng.standard_normal((m, n)))
    else:
        B = rng.standard_normal((n, n))
        problem = optcore.monotone.QuadraticMinMax(B @ B.T, rng.standard_normal((m, n)), h=rng.standard_normal(n))
    tol, maxiter = 1e-5, 3000
    res = solve(problem, method=method, tol=tol, maxiter=maxiter, rng=seed, warn=False, options={"max_epochs": 3e4})
    z = np.asarray(res.z if game else res.x, dtype=np.float64)
    r = _measured_residual(problem, z)
    assert r == pytest.approx(res.residual, rel=1e-7, abs=1e-12)
    assert res.nit <= maxiter and res.epochs <= 3e4 + 2
    assert res.success == (res.status == 0) and res.status in (0, 1)
    assert res.success == (res.residual <= tol)
