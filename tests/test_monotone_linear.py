"""optcore.monotone to 1e-6 on matrix games and quadratic min-max problems (issue 23, section 2).

Every check re-measures the claimed residual on the returned point with NumPy (``residual`` is
the natural residual ``L ||z - P(z - F(z)/L)||``), and compares the games' values with HiGHS.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from optcore.monotone import FiniteSum, MatrixGame, QuadraticMinMax, solve


def _simplex(v):
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    r = np.nonzero(u - css / np.arange(1, len(v) + 1) > 0)[0][-1]
    return np.maximum(v - css[r] / (r + 1), 0.0)


def game_residual(game, x, y):
    L = game.lipschitz
    z = np.r_[x, y].astype(np.float64)
    t = z - game.operator(z) / L
    n = game.shape[1]
    return L * np.linalg.norm(z - np.r_[_simplex(t[:n]), _simplex(t[n:])])


def game_value(A):
    m, n = A.shape
    res = linprog(
        np.r_[np.zeros(n), 1.0],
        A_ub=np.c_[A, -np.ones(m)],
        b_ub=np.zeros(m),
        A_eq=np.r_[np.ones(n), 0.0][None],
        b_eq=[1.0],
        bounds=[(0, None)] * n + [(None, None)],
        method="highs",
    )
    assert res.status == 0
    return res.fun


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 10), n=st.integers(1, 10))
def test_halpern_reaches_1e6_on_random_games(seed, m, n):
    A = np.random.default_rng(seed).normal(size=(m, n))
    game = MatrixGame(A)
    res = solve(game, method="halpern", tol=1e-6, maxiter=200_000, check_every=10)
    assert res.success, res.message
    assert "PDHG" in res.variant
    r = game_residual(game, res.x, res.y)
    assert r <= 1e-6 * (1 + 1e-9) and r == pytest.approx(res.residual, rel=1e-6, abs=1e-12)
    v = game_value(A)
    assert (A.T @ res.y).min() - 1e-9 <= v <= (A @ res.x).max() + 1e-9


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 8), method=st.sampled_from(["halpern", "eg"]))
def test_quadratic_minmax_to_1e6(seed, n, method):
    """Square random couplings (invertible M): ``||M z + q|| <= 1e-6`` re-measured, and ``z`` near
    the solution of ``M z = -q`` within the residual over the smallest singular value."""
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n, n))
    A = rng.normal(size=(n, n)) + 2 * np.eye(n)
    q = QuadraticMinMax(B.T @ B / n, A, h=rng.normal(size=n), b=rng.normal(size=n))
    res = solve(q, method=method, tol=1e-6, maxiter=500_000, check_every=10, warn=False)
    assert res.success, res.message
    r = np.linalg.norm(q.operator(res.x))
    assert r <= 1e-6 * (1 + 1e-9)
    smin = np.linalg.svd(q.M, compute_uv=False)[-1]
    assert np.linalg.norm(res.x - q.solution()) <= 1e-6 / smin * (1 + 1e-6) + 1e-12


def test_restarts_give_the_linear_rate_on_a_game():
    """On the policeman-burglar game the restarted method reaches 1e-6; without restarts, the
    same budget leaves it orders of magnitude away (O(1/k) only)."""
    game = MatrixGame.policeman_burglar(60, rng=0)
    res = solve(game, method="halpern", tol=1e-6, maxiter=10**6, options={"max_epochs": 3000})
    assert res.success and res.restarts >= 3, (res.message, res.restarts)
    assert game_residual(game, res.x, res.y) <= 1e-6 * (1 + 1e-9)
    plain = solve(
        game, method="halpern", tol=1e-6, maxiter=10**6, warn=False, options={"max_epochs": res.epochs, "restart": 0}
    )
    assert not plain.success and plain.restarts == 0 and plain.residual > 100 * res.residual
    # linear: the epochs from 1e-3 to 1e-6 are at most about those from 1 to 1e-3
    h = res.history
    e3 = h[h[:, 1] <= 1e-3][0, 0]
    e0 = h[h[:, 1] <= 1.0][0, 0]
    assert res.epochs - e3 <= 3 * max(e3 - e0, 50)


def test_halpern_pdhg_on_the_lower_bound_quadratic():
    """The hard instance of Cai et al.'s second experiment (n = 40): 1e-6 with restarts; the
    factorisation of I + tau H is counted in the epochs."""
    q = QuadraticMinMax.lower_bound(40)
    res = solve(q, method="halpern", tol=1e-6, maxiter=10**6, check_every=10)
    assert res.success and res.restarts > 0
    assert np.linalg.norm(q.operator(res.x)) <= 1e-6 * (1 + 1e-9)
    one = solve(q, method="halpern", tol=1e-6, maxiter=0, warn=False)
    # the factorisation and the first products (K^T y0, K x0: one epoch)
    assert one.epochs == np.ceil((40**3 / (3 * 80**2) + 1) * 80) / 80 and one.nit == 0


def test_float32_games_and_quadratics():
    A = np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32)
    res = solve(MatrixGame(A), method="halpern", tol=1e-6)
    assert res.success and res.x.dtype == np.float32 and res.y.dtype == np.float32
    q = QuadraticMinMax(np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32), h=np.ones(3), b=np.ones(3))
    r = solve(q, method="halpern", tol=1e-6)
    assert r.success and r.x.dtype == np.float32  # the dtype of H and A


def test_callable_sums_keep_the_forward_reflected_halpern():
    """A FiniteSum of callables has no primal-dual split: "halpern" runs the inexact Euclidean
    resolvent as before."""
    M = np.array([[0.0, 1.0], [-1.0, 0.0]])
    fs = FiniteSum(lambda i, z: np.tile(M @ z + 0.5, (len(i), 1)), n=2, dim=2, lipschitz=1.0)
    res = solve(fs, method="halpern", tol=1e-6, maxiter=100_000)
    assert res.success and "forward-reflected" in res.variant
    assert np.linalg.norm(M @ res.x + 0.5) <= 1e-6 * (1 + 1e-9)


@pytest.mark.parametrize("batch", [1, 8, 64])
def test_vr_halpern_minibatches(batch):
    """Algorithm 2 with minibatches: same seed, same run; the budget holds; progress on a game."""
    game = MatrixGame.policeman_burglar(40, rng=0)
    kw = dict(method="vr_halpern", rng=3, warn=False, tol=1e-6, options={"max_epochs": 300, "batch": batch})
    a, b = solve(game, **kw), solve(game, **kw, workers=1)
    assert np.array_equal(a.x, b.x) and a.nfev == b.nfev
    assert a.epochs <= 300 + 2
    start = game_residual(game, np.full(40, 1 / 40), np.full(40, 1 / 40))
    assert a.residual < 0.25 * start
