"""Unbalanced OT on dense costs: the returned plan is the one the core's final measurement wrote.

The core writes ``P = exp((f + g - M) / reg)`` of the returned potentials in the same pass that
measures the residual, cost and objective, and takes those sums over the plan as written (in the
working dtype). These tests check that the plan is that expression (to float64 rounding), that
every reported number is re-measured on it, and that not asking for it changes nothing else.
"""

import numpy as np
import pytest

import optcore


def _problem(n=70, m=55, seed=3, mass_b=1.4):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    return a / a.sum(), mass_b * b / b.sum(), M


def _targets(w, f, reg, rho):
    """``w exp(-(f - reg log w) / rho)``, 0 where ``w`` is 0 (``f`` is ``-inf`` there)."""
    if np.isinf(rho):
        return w
    pos = w > 0
    out = np.zeros_like(w)
    out[pos] = w[pos] * np.exp(-(f[pos] - reg * np.log(w[pos])) / rho)
    return out


def _residual(P, res, a, b, reg, rho):
    rows, cols = P.sum(1, dtype=np.float64), P.sum(0, dtype=np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    f, g = res.f.astype(np.float64), res.g.astype(np.float64)
    return float(
        np.abs(rows - _targets(a64, f, reg, rho[0])).sum() + np.abs(cols - _targets(b64, g, reg, rho[1])).sum()
    )


@pytest.mark.parametrize("reg,reg_m", [(0.05, 0.1), (0.01, 1.0), (0.02, (0.3, np.inf))])
def test_plan_is_the_expression_of_the_returned_potentials(reg, reg_m):
    a, b, M = _problem()
    res = optcore.ot.sinkhorn(a, b, M, reg=reg, reg_m=reg_m, tol=1e-10)
    assert res.success and res.plan.dtype == np.float64 and res.plan.shape == M.shape
    want = np.exp((res.f[:, None] + res.g[None, :] - M) / reg)
    # The same expression up to the rounding of its argument: 1e-14 relative to the plan's
    # largest entries, and entry by entry where entries are not negligible.
    assert np.abs(res.plan - want).max() <= 1e-14 * want.max()
    big = want > 1e-6 * want.max()
    assert np.abs(res.plan[big] / want[big] - 1).max() <= 1e-13


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reported_numbers_are_measured_on_the_returned_plan(dtype):
    a, b, M = (v.astype(dtype) for v in _problem(seed=4))
    reg, rho = 0.03, (0.5, 2.0)
    tol = 1e-9 if dtype == np.float64 else 1e-5
    res = optcore.ot.sinkhorn(a, b, M, reg=reg, reg_m=rho, tol=tol)
    P = res.plan
    assert P.dtype == dtype and res.success
    err = _residual(P, res, a, b, reg, rho)
    # The core sums in rows/blocks, NumPy pairwise: the same numbers up to float64 rounding.
    assert err == pytest.approx(res.marginal_error, rel=1e-6, abs=1e-14)
    P64, M64 = P.astype(np.float64), M.astype(np.float64)
    assert res.cost == pytest.approx(float((P64 * M64).sum()), rel=1e-12)
    assert res.mass == pytest.approx(float(P64.sum()), rel=1e-12)


def test_no_plan_changes_nothing_else():
    a, b, M = _problem(seed=5)
    kw = dict(reg=0.02, reg_m=(0.2, 0.9), tol=1e-11)
    with_plan = optcore.ot.sinkhorn(a, b, M, **kw)
    without = optcore.ot.sinkhorn(a, b, M, return_plan=False, **kw)
    assert without.plan is None and without.x is None
    assert with_plan.nit == without.nit
    for key in ("f", "g"):
        assert np.array_equal(with_plan[key], without[key])
    # In float64 the plan as written is the plan measured: the same sums, bit for bit.
    for key in ("marginal_error", "cost", "fun", "mass"):
        assert with_plan[key] == without[key]


def test_zero_weights_give_zero_rows_and_columns():
    a, b, M = _problem(seed=6)
    a[[0, 7]] = 0.0
    b[3] = 0.0
    res = optcore.ot.sinkhorn(a, b, M, reg=0.05, reg_m=0.5, tol=1e-10)
    assert res.success
    assert np.all(res.plan[[0, 7]] == 0) and np.all(res.plan[:, 3] == 0)
    assert np.all(np.isfinite(res.plan))
    assert _residual(res.plan, res, a, b, 0.05, (0.5, 0.5)) == pytest.approx(res.marginal_error, abs=1e-14)


def test_any_memory_order_of_the_cost_gives_the_same_result():
    # A C-contiguous float64 cost goes to the core as is; another order is copied once.
    a, b, M = _problem(seed=7)
    res = optcore.ot.sinkhorn(a, b, M, reg=0.05, reg_m=1.0, tol=1e-10)
    view = np.asfortranarray(M)
    res2 = optcore.ot.sinkhorn(a, b, view, reg=0.05, reg_m=1.0, tol=1e-10)
    assert np.array_equal(res.plan, res2.plan) and res.marginal_error == res2.marginal_error


def test_bad_cost_is_named():
    a, b, M = _problem(seed=8)
    M[2, 3] = np.nan
    with pytest.raises(ValueError, match="`M`"):
        optcore.ot.sinkhorn(a, b, M, reg=0.05, reg_m=1.0)
    M[2, 3] = np.inf
    with pytest.raises(ValueError, match="`M`"):
        optcore.ot.sinkhorn(a, b, M, reg=0.05, reg_m=1.0)
