"""optcore.monotone "halpern" on the PDHG operator: an iteration is one epoch, its residual checks
cost no evaluation, and what a result says about its residual is re-measured (issue 23, section 2).

The residual is the natural residual ``L ||z - P(z - F(z)/L)||``, re-measured here with NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optcore.monotone import MatrixGame, QuadraticMinMax, solve


def _simplex(v):
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    r = np.nonzero(u - css / np.arange(1, len(v) + 1) > 0)[0][-1]
    return np.maximum(v - css[r] / (r + 1), 0.0)


def residual(problem, z):
    """The natural residual of ``z`` (float64), in NumPy."""
    z = np.asarray(z, dtype=np.float64)
    L = problem.lipschitz
    t = z - problem.operator(z) / L
    if isinstance(problem, MatrixGame):
        n = problem.shape[1]
        t = np.r_[_simplex(t[:n]), _simplex(t[n:])]
    return L * np.linalg.norm(z - t)


def _game(seed, m, n, dtype):
    return MatrixGame(np.random.default_rng(seed).normal(size=(m, n)).astype(dtype))


def _quad(seed, n, dtype):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n, n))
    A = rng.normal(size=(n, n)) + 2 * np.eye(n)
    H = (B.T @ B / n).astype(dtype)
    return QuadraticMinMax((H + H.T) / 2, A.astype(dtype), h=rng.normal(size=n), b=rng.normal(size=n))


def test_an_iteration_is_one_epoch_and_checks_cost_no_evaluation():
    """Halpern-PDHG reads K twice per iteration (one epoch) and forms F at its point from those
    products: with a check at every iteration, only the first and the last residual are full
    evaluations."""
    game = MatrixGame.policeman_burglar(50, rng=0)
    # without restarts, so without the polishing attempts that follow them
    res = solve(game, method="halpern", tol=0.0, maxiter=300, check_every=1, warn=False, options={"restart": 0})
    assert res.nit == 300 and res.status == 1
    assert res.nfev == (res.nit + 1) * 50  # + K^T y0 and K x0 at the start
    assert res.n_residual == 2
    assert len(res.history) == 301


@pytest.mark.parametrize("kind", ["game", "quad"])
def test_the_checks_residuals_are_the_points_own(kind):
    """The residual recorded at iteration k of a long run (from the method's own products) equals
    the one a run stopped at k re-measures with a full evaluation (same trajectory)."""
    problem = MatrixGame.policeman_burglar(40, rng=1) if kind == "game" else _quad(3, 6, np.float64)
    long = solve(problem, method="halpern", tol=0.0, maxiter=400, check_every=20, warn=False)
    for k in (20, 140, 380):
        short = solve(problem, method="halpern", tol=0.0, maxiter=k, check_every=20, warn=False)
        at_k = long.history[k // 20, 1]
        assert short.nit == k
        assert at_k == pytest.approx(short.residual, rel=1e-8, abs=1e-14)
        assert short.residual == pytest.approx(residual(problem, short.z if kind == "game" else short.x), rel=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["game", "quad"]),
    m=st.integers(1, 9),
    n=st.integers(1, 9),
    dtype=st.sampled_from([np.float32, np.float64]),
    budget=st.sampled_from([30, 10**5]),
)
def test_reported_residual_and_success_hold_when_remeasured(seed, kind, m, n, dtype, budget):
    """Small random games and quadratic min-max problems, float32 and float64, stopped by
    convergence (1e-6 reached) or by a short budget: ``residual`` is the NumPy re-measure of the
    returned point (float64; a float32 point within its rounding), ``success`` exactly
    ``residual <= tol``, and the large budget always reaches 1e-6."""
    problem = _game(seed, m, n, dtype) if kind == "game" else _quad(seed, n, dtype)
    res = solve(problem, method="halpern", tol=1e-6, maxiter=budget, check_every=7, warn=False)
    assert res.success == (res.residual <= 1e-6)
    if budget > 1000:
        assert res.success, res.message
    z = res.z if kind == "game" else res.x
    assert z.dtype == dtype
    r = residual(problem, z)
    if dtype == np.float64:
        assert r == pytest.approx(res.residual, rel=1e-9, abs=1e-15)
    else:
        # rounding the float64 point to float32 moves the residual by at most about L * eps * |z|
        slack = 4 * problem.lipschitz * np.finfo(np.float32).eps * max(1.0, np.abs(z).max()) * np.sqrt(z.size)
        assert abs(r - res.residual) <= slack + 1e-9 * res.residual


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_polishing_lands_on_the_equilibrium(seed):
    """Random 80 x 60 games: after a restart the equilibrium on the supports the iterate suggests
    replaces it when its re-measured residual is smaller, so the run ends at the equilibrium to
    rounding (Halpern-PDHG alone stops just below tol), with the polishing counted in the epochs."""
    game = MatrixGame(np.random.default_rng(seed).normal(size=(80, 60)))
    res = solve(game, method="halpern", tol=1e-12, maxiter=10**6, warn=False, options={"max_epochs": 2000})
    assert res.success, res.message
    assert res.residual <= 1e-13
    assert residual(game, res.z) == pytest.approx(res.residual, abs=1e-14)
    assert game.gap(res.x, res.y) <= 1e-13
    assert res.epochs > res.nit + 1  # the polishing's factorisations and evaluations are counted
