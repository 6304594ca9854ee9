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
    res = linprog(c, A_ub=np.c_[A, -np.ones(m)], b_ub=np.zeros(m), A_eq=np.r_[np.ones(n), 0.0][None],
                  b_eq=[1.0], bounds=[(0, None)] * n + [(None, None)], method="highs")
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
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 12), n=st.integers(1, 12), method=st.sampled_from(["eg", "eag"]))
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
    assert res.status == 1 and res.nit == 50 and res.nfev == 2 * 50 + 1
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
        (lambda: solve(MatrixGame(RPS), method="vr_halpern"), ValueError, "unknown method"),
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
