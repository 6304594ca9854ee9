"""Unbalanced OT on dense costs either side of the size where the core's passes go parallel
(2^18 cost entries), and the measurements the loop spares: bit-identical for any ``workers``,
``success`` exactly when the residual re-measured on the returned plan is within ``tol``."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optcore


def _problem(n, m, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    return (a / a.sum()).astype(dtype), (1.5 * b / b.sum()).astype(dtype), M.astype(dtype)


def _residual(res, a, b, reg, rho):
    """||P 1 - a~||_1 + ||P^T 1 - b~||_1 on the returned plan, in float64."""
    P = res.plan.astype(np.float64)
    f, g = res.f.astype(np.float64), res.g.astype(np.float64)
    a, b = a.astype(np.float64), b.astype(np.float64)
    ta = a * np.exp(-(f - reg * np.log(a)) / rho)
    tb = b * np.exp(-(g - reg * np.log(b)) / rho)
    return float(np.abs(P.sum(1) - ta).sum() + np.abs(P.sum(0) - tb).sum())


@pytest.mark.parametrize("shape", [(200, 300), (520, 530)])  # below and above 2^18 entries
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bit_identical_for_any_workers(shape, dtype):
    a, b, M = _problem(*shape, dtype=dtype)
    tol = 1e-8 if dtype == np.float64 else 1e-5
    runs = [optcore.ot.sinkhorn(a, b, M, reg=0.02, reg_m=0.5, tol=tol, workers=w, warn=False) for w in (1, 2)]
    r1, r2 = runs
    assert r1.success and r1.nit == r2.nit
    for key in ("f", "g", "plan"):
        assert np.array_equal(r1[key], r2[key]), key
    for key in ("marginal_error", "cost", "fun", "mass"):
        assert r1[key] == r2[key], key


@pytest.mark.parametrize(("reg", "rho"), [(0.05, 0.1), (0.01, 1.0), (0.005, 10.0)])
@pytest.mark.parametrize("tol", [1e-6, 1e-10])
def test_success_is_the_residual_measured_on_the_plan(reg, rho, tol):
    a, b, M = _problem(150, 120, seed=3)
    res = optcore.ot.sinkhorn(a, b, M, reg=reg, reg_m=rho, tol=tol, maxiter=100_000, warn=False)
    err = _residual(res, a, b, reg, rho)
    assert res.success == (res.marginal_error <= tol)
    assert res.success and err <= tol
    assert res.marginal_error == pytest.approx(err, rel=1e-6, abs=1e-14)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    m=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    reg=st.sampled_from([0.002, 0.02, 0.2]),
    rho=st.sampled_from([0.05, 1.0, 20.0, (0.3, np.inf)]),
)
def test_success_and_plan_hold_on_any_small_problem(n, m, seed, reg, rho):
    # Small reg puts the kernel's scalings out of range (rebuilds, exact rows and columns, the
    # measurement by exponentials); larger ones keep the stored kernel (the fused pass, the
    # measurement by scaling it): either way what the result says is measured on its plan.
    a, b, M = _problem(n, m, seed=seed)
    tol = 1e-9
    res = optcore.ot.sinkhorn(a, b, M, reg=reg, reg_m=rho, tol=tol, maxiter=50_000, warn=False)
    ra, rb = (rho, rho) if np.isscalar(rho) else rho
    P = res.plan
    f, g = res.f, res.g
    ta = a * np.exp(-(f - reg * np.log(a)) / ra)
    tb = b if np.isinf(rb) else b * np.exp(-(g - reg * np.log(b)) / rb)
    err = float(np.abs(P.sum(1) - ta).sum() + np.abs(P.sum(0) - tb).sum())
    assert res.success == (res.marginal_error <= tol)
    assert res.success and err <= tol * (1 + 1e-6) + 1e-15
    # The plan is the expression of the potentials up to the rounding of the exponential's
    # argument (a few ulps of |f| + |g| + |M| over reg, the same in this reference).
    want = np.exp((f[:, None] + g[None, :] - M) / reg)
    ulps = 4e-16 * (1 + (np.abs(f[np.isfinite(f)]).max() + np.abs(g[np.isfinite(g)]).max() + M.max()) / reg)
    assert np.abs(P - want).max() <= ulps * want.max()
