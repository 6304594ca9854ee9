"""Unbalanced OT (``reg_m``): against POT's ``sinkhorn_unbalanced`` and the balanced limit."""

import numpy as np
import pytest

import optcore


def _problem(n=30, m=25, seed=0, mass_b=1.6):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    a = rng.random(n) + 0.1
    b = rng.random(m) + 0.1
    return a / a.sum(), mass_b * b / b.sum(), M


def _targets(w, f, reg, rho):
    return w if np.isinf(rho) else w * np.exp(-(f - reg * np.log(w)) / rho)


def _pot_objective(P, a, b, M, reg, rho_a, rho_b):
    """The objective with generalised KLs, from a plan (POT's total_cost plus its mass terms)."""

    def kl(p, q):
        p, q = np.ravel(p), np.ravel(q)
        pos = p > 0
        return np.sum(p[pos] * np.log(p[pos] / q[pos])) - p.sum() + q.sum()

    val = (P * M).sum() + reg * kl(P, np.outer(a, b))
    if np.isfinite(rho_a):
        val += rho_a * kl(P.sum(1), a)
    if np.isfinite(rho_b):
        val += rho_b * kl(P.sum(0), b)
    return val


@pytest.mark.parametrize("reg_m", [1.0, (0.3, 5.0), (np.inf, 0.5)])
@pytest.mark.parametrize("method", ["log", "eps_scaling"])
def test_matches_pot(reg_m, method):
    ot = pytest.importorskip("ot")
    a, b, M = _problem()
    reg = 0.05
    res = optcore.ot.sinkhorn(a, b, M, reg=reg, reg_m=reg_m, method=method, tol=1e-12)
    assert res.success and res.marginal_error <= 1e-12
    rho = reg_m if isinstance(reg_m, tuple) else (reg_m, reg_m)
    P, log = ot.unbalanced.sinkhorn_unbalanced(
        a, b, M, reg, rho, reg_type="kl", numItermax=100_000, stopThr=1e-15, log=True
    )
    np.testing.assert_allclose(res.plan, P, atol=1e-10)
    want = _pot_objective(P, a, b, M, reg, *rho)
    assert res.fun == pytest.approx(want, abs=1e-8)
    # POT's total_cost is the same objective without the KLs' mass terms.
    assert abs(log["total_cost"] - _pot_objective(P, a, b, M, reg, *rho)) < 1.0
    assert res.cost == pytest.approx((P * M).sum(), abs=1e-10)
    assert res.mass == pytest.approx(P.sum(), abs=1e-10)


def test_marginal_error_is_the_residual_of_the_returned_plan():
    a, b, M = _problem(seed=1)
    reg, rho = 0.02, (0.4, 0.7)
    res = optcore.ot.sinkhorn(a, b, M, reg=reg, reg_m=rho, tol=1e-10)
    P = res.plan
    err = np.abs(P.sum(1) - _targets(a, res.f, reg, rho[0])).sum()
    err += np.abs(P.sum(0) - _targets(b, res.g, reg, rho[1])).sum()
    assert err == pytest.approx(res.marginal_error, rel=1e-6, abs=1e-15)
    assert res.marginal_error <= 1e-10 and res.success
    # An early stop reports a residual above tol, and is not a success.
    short = optcore.ot.sinkhorn(a, b, M, reg=reg, reg_m=rho, tol=1e-14, maxiter=3, warn=False)
    assert short.status == 1 and short.marginal_error > 1e-14 and short.nit <= 3


def test_balanced_limit():
    a, b, M = _problem(mass_b=1.0, seed=2)
    base = optcore.ot.sinkhorn(a, b, M, reg=0.05)
    same = optcore.ot.sinkhorn(a, b, M, reg=0.05, reg_m=np.inf)
    same2 = optcore.ot.sinkhorn(a, b, M, reg=0.05, reg_m=(np.inf, np.inf))
    for r in (same, same2):
        assert np.array_equal(r.plan, base.plan) and np.array_equal(r.f, base.f) and r.nit == base.nit
        assert "reg_m" not in r
    near = optcore.ot.sinkhorn(a, b, M, reg=0.05, reg_m=1e7, tol=1e-11)
    np.testing.assert_allclose(near.plan, base.plan, atol=1e-6)


def test_zero_weights_and_float32():
    a, b, M = _problem(seed=3)
    a[[0, 5]] = 0.0
    b[3] = 0.0
    res = optcore.ot.sinkhorn(a, b, M, reg=0.05, reg_m=0.5, tol=1e-11)
    assert res.success and np.all(res.plan[[0, 5]] == 0) and np.all(res.plan[:, 3] == 0)
    assert np.isneginf(res.f[0]) and np.isneginf(res.g[3])
    r32 = optcore.ot.sinkhorn(a.astype(np.float32), b.astype(np.float32), M.astype(np.float32), reg=0.05, reg_m=0.5)
    assert r32.success and r32.plan.dtype == np.float32 and r32.tol == 1e-5
    np.testing.assert_allclose(r32.plan, res.plan, atol=1e-5)


def test_point_clouds_and_bit_identical_workers():
    rng = np.random.default_rng(4)
    x, y = rng.random((40, 3)), rng.random((30, 3))
    r1 = optcore.ot.sinkhorn(None, None, x=x, y=y, reg=0.05, reg_m=1.0, workers=1)
    r2 = optcore.ot.sinkhorn(None, None, x=x, y=y, reg=0.05, reg_m=1.0, workers=2)
    assert r1.success and np.array_equal(r1.plan, r2.plan) and r1.nit == r2.nit


@pytest.mark.parametrize(
    "reg_m, exc",
    [(0.0, ValueError), (-1.0, ValueError), (np.nan, ValueError), ((1.0, 2.0, 3.0), ValueError), ("big", TypeError)],
)
def test_bad_reg_m_is_named(reg_m, exc):
    a, b, M = _problem()
    with pytest.raises(exc, match="reg_m"):
        optcore.ot.sinkhorn(a, b, M, reg=0.05, reg_m=reg_m)


def test_unsupported_combinations_are_named():
    a, b, M = _problem()
    with pytest.raises(ValueError, match="method"):
        optcore.ot.sinkhorn(a, b, M, reg=0.05, reg_m=1.0, method="sns")
    with pytest.raises(ValueError, match="reg_m"):
        optcore.ot.sinkhorn(a, b, np.stack([M, M]), reg=0.05, reg_m=1.0)


def test_small_reg_dense_matches_the_exact_grid_passes():
    """At a small reg the dense operator rebuilds its kernel and falls back to exact sums; its
    fixed point is the one of the grid's exact log-sum-exp passes."""
    grid = optcore.ot.Grid([np.linspace(0, 1, 9), np.linspace(0, 1, 7)])
    rng = np.random.default_rng(5)
    a, b = rng.random(grid.size) + 0.01, rng.random(grid.size) + 0.01
    a, b = a / a.sum(), 0.7 * b / b.sum()
    a[3] = 0.0
    kw = dict(reg=1e-3, reg_m=(0.2, 0.05), tol=1e-10)
    rd = optcore.ot.sinkhorn(a, b, grid.cost_matrix(), **kw)
    rg = optcore.ot.sinkhorn(a.reshape(grid.shape), b.reshape(grid.shape), grid, **kw)
    assert rd.success and rg.success
    fin = np.isfinite(rd.f)
    np.testing.assert_array_equal(fin, np.isfinite(rg.f.ravel()))
    np.testing.assert_allclose(rd.f[fin], rg.f.ravel()[fin], atol=1e-9)
    np.testing.assert_allclose(rd.g, rg.g.ravel(), atol=1e-9)
    assert rd.fun == pytest.approx(rg.fun, rel=1e-9)


@pytest.mark.parametrize("reg_m", [(0.1, np.inf), 0.3])
def test_eps_scaling_reaches_small_reg(reg_m):
    """Every ε stage after the first starts from the previous residual: the last stage's stall
    test never sees an infinite error (it once declared a stall on the stage's first iteration)."""
    x = np.linspace(0, 1, 10)
    M = (x[:, None] - x[None]) ** 2
    rng = np.random.default_rng(0)
    a, b = rng.random(10), rng.random(10)
    a, b = a / a.sum(), b / b.sum()
    res = optcore.ot.sinkhorn(a, b, M, reg=1e-4, reg_m=reg_m, method="eps_scaling", maxiter=20_000)
    assert res.success and res.stages > 1 and res.marginal_error <= 1e-9
    ref = optcore.ot.sinkhorn(a, b, M, reg=1e-4, reg_m=reg_m, maxiter=20_000)
    np.testing.assert_allclose(res.plan, ref.plan, atol=1e-8)
