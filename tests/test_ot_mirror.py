"""Mirror Sinkhorn (optcore.ot.mirror_sinkhorn): claims re-measured on the returned plan, the
paper's rate against the exact OT cost, noisy costs, built-in objectives, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optcore
from optcore.ot import mirror_sinkhorn
from optcore.testing import check_result, ot_problems

ot = pytest.importorskip("ot")


def _cloud(n, m, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    return np.full(n, 1 / n, dtype), np.full(m, 1 / m, dtype), M.astype(dtype)


@settings(max_examples=150)
@given(
    p=ot_problems(max_size=6),
    tol=st.sampled_from([1e-1, 1e-2, 1e-4, 1e-12]),
    output=st.sampled_from(["average", "last"]),
)
def test_claims_hold_on_the_returned_plan(p, tol, output):
    res = mirror_sinkhorn(p.a, p.b, p.M, maxiter=200, tol=tol * float(np.sum(p.a)), output=output, warn=False)
    assert check_result(res, p, maxiter=200) == []
    assert res.plan.dtype == p.M.dtype
    # without gap_tol the whole horizon runs (feasibility alone never stops it)
    if res.status in (0, 1):
        assert res.nit == 200 and res.history[-1, 0] == res.nit and res.history[-1, 1] == res.marginal_error


@settings(max_examples=100)
@given(
    n=st.integers(1, 6),
    m=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    T=st.sampled_from([100, 1000]),
)
def test_linear_cost_approaches_emd_at_the_paper_rate(n, m, seed, scale, T):
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) + 0.05, rng.random(m) + 0.05
    a, b = a / a.sum(), b / b.sum()
    M = rng.random((n, m)) * scale
    exact = ot.emd2(a, b, M)
    res = mirror_sinkhorn(a, b, M, maxiter=T, tol=1e-15, warn=False)
    delta = max(np.abs(np.log(a)).max() + np.abs(np.log(b)).max(), 1.0)
    # O(log T / sqrt T) of the averaged plan (observed worst case ~0.06 of this bound)
    bound = np.sqrt(delta) * np.abs(M).max() * (1 + np.log(T)) / np.sqrt(T)
    assert abs(res.cost - exact) <= bound
    assert res.marginal_error <= bound / max(np.abs(M).max(), 1e-300)


def test_rate_on_point_clouds_and_last_iterate():
    a, b, M = _cloud(40, 30)
    exact = ot.emd2(a, b, M)
    gaps = [mirror_sinkhorn(a, b, M, maxiter=T, tol=1e-15, warn=False).cost - exact for T in (100, 1000, 10000)]
    assert gaps[0] > gaps[1] > gaps[2] > 0
    assert gaps[2] < 0.01
    last = mirror_sinkhorn(a, b, M, maxiter=10000, tol=1e-15, output="last", warn=False)
    assert abs(last.cost - exact) < gaps[2]


def test_noisy_costs_converge_in_expectation():
    a, b, M = _cloud(20, 20, seed=3)
    exact = ot.emd2(a, b, M)

    def sampler(k, rng):
        return M + 0.2 * rng.standard_normal(M.shape)

    gaps = {
        T: np.mean(
            [
                mirror_sinkhorn(a, b, M, cost_sampler=sampler, maxiter=T, tol=1e-15, rng=s, warn=False).cost
                for s in range(4)
            ]
        )
        - exact
        for T in (100, 3000)
    }
    assert gaps[3000] < 0.5 * gaps[100]
    assert gaps[3000] < 0.03
    # same seed, same result
    r1 = mirror_sinkhorn(a, b, M, cost_sampler=sampler, maxiter=50, rng=7, warn=False)
    r2 = mirror_sinkhorn(a, b, M, cost_sampler=sampler, maxiter=50, rng=7, warn=False)
    np.testing.assert_array_equal(r1.plan, r2.plan)


def test_grad_callback_matches_the_native_objectives():
    a, b, M = _cloud(8, 6, seed=1)
    R = np.outer(a, b) * (1 + 0.5 * np.random.default_rng(0).random((8, 6)))
    native = mirror_sinkhorn(a, b, M, maxiter=300, tol=1e-15, warn=False)
    viapy = mirror_sinkhorn(
        a, b, grad=lambda P: M, fun=lambda P: float(np.sum(P * M)), maxiter=300, tol=1e-15, warn=False
    )
    # the native linear objective takes a fused fast path (potentials, not the plan, as state): the
    # same iteration, so the plans agree to rounding
    np.testing.assert_allclose(native.plan, viapy.plan, rtol=1e-10, atol=1e-15)
    assert viapy.fun == pytest.approx(native.fun)
    quad = mirror_sinkhorn(a, b, objective="quadratic", ref=R, step=1.0, maxiter=300, tol=1e-15, warn=False)
    quad_py = mirror_sinkhorn(a, b, grad=lambda P: 2 * (P - R), step=1.0, maxiter=300, tol=1e-15, warn=False)
    np.testing.assert_allclose(quad.plan, quad_py.plan, rtol=1e-12, atol=1e-15)
    assert quad.fun == pytest.approx(np.sum((quad.plan - R) ** 2))


def test_kl_objective_gives_the_sinkhorn_plan():
    # min <P, M> + reg KL(P | a b^T) over U(a, b) is entropic OT: compare with optcore's sinkhorn.
    a, b, M = _cloud(10, 12, seed=2)
    reg = 0.1
    ref = np.exp(-M / reg)
    sk = optcore.ot.sinkhorn(a, b, M, reg=reg)
    dist = []
    for T in (1000, 10000):
        res = mirror_sinkhorn(a, b, objective="kl", ref=ref, output="last", maxiter=T, tol=1e-15, warn=False)
        dist.append(np.abs(res.plan - sk.plan).sum())
    # the decreasing step converges at the paper's sqrt rate (a constant one oscillates)
    assert dist[1] < 0.5 * dist[0] and dist[1] < 0.02


def test_float32_and_workers_bit_identical():
    a, b, M = _cloud(70, 50, seed=4, dtype=np.float32)
    r1 = mirror_sinkhorn(a, b, M, maxiter=100, workers=1, warn=False)
    r2 = mirror_sinkhorn(a, b, M, maxiter=100, workers=2, warn=False)
    assert r1.plan.dtype == np.float32
    np.testing.assert_array_equal(r1.plan, r2.plan)
    assert r1.marginal_error == r2.marginal_error


def test_callback_and_stop():
    a, b, M = _cloud(10, 10)
    seen = []

    def cb(r):
        seen.append((r.nit, r.marginal_error, r.step))
        if r.nit >= 30:
            raise StopIteration

    res = mirror_sinkhorn(a, b, M, maxiter=1000, tol=1e-15, callback=cb, check_every=10, warn=False)
    assert [s[0] for s in seen] == [10, 20, 30]
    assert res.status == 99 and not res.success and res.nit == 30
    assert check_result(res, optcore.testing.OTProblem(a, b, M, 1.0), maxiter=1000) == []


def test_status_and_warning():
    a, b, M = _cloud(10, 10)
    with pytest.warns(optcore.ConvergenceWarning):
        res = mirror_sinkhorn(a, b, M, maxiter=20, tol=1e-12)
    assert res.status == 1 and res.nit == 20
    res = mirror_sinkhorn(a, b, M, maxiter=5000, tol=0.05, check_every=1)
    assert res.success and res.nit == 5000 and res.marginal_error <= 0.05
    res = mirror_sinkhorn(a, b, M, maxiter=5000, tol=0.05, gap_tol=0.05, check_every=1)
    assert res.success and res.nit < 5000 and res.marginal_error <= 0.05 and res.gap <= 0.05


def test_a_feasible_start_is_not_called_converged():
    # The product plan a b^T meets the marginals exactly; it is far from optimal (cost 0.5 vs 0).
    M = np.array([[0.0, 1.0], [1.0, 0.0]])
    res = mirror_sinkhorn([0.5, 0.5], [0.5, 0.5], M, maxiter=10_000)
    assert res.nit == 10_000 and res.success
    assert res.cost < 3e-3 and res.cost <= res.gap
    res = mirror_sinkhorn([0.5, 0.5], [0.5, 0.5], M, maxiter=100, gap_tol=1e-6, warn=False)
    assert res.status == 1 and not res.success and res.gap > 1e-6
    assert "gap_tol" in res.message


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 12), m=st.integers(2, 12), seed=st.integers(0, 2**31), output=st.sampled_from(["average", "last"])
)
def test_gap_certifies_the_suboptimality(n, m, seed, output):
    a, b, M = _cloud(n, m, seed)
    exact = ot.emd2(a, b, M)
    for maxiter in (10, 300):
        res = mirror_sinkhorn(a, b, M, maxiter=maxiter, output=output, warn=False)
        # F(P) - F* <= gap for any plan P, feasible or not: F* is the exact OT cost
        assert res.cost - exact <= res.gap * (1 + 1e-9) + 1e-12
    res = mirror_sinkhorn(a, b, M, maxiter=20_000, output="last", gap_tol=1e-3, tol=1e-3, warn=False)
    if res.success:
        assert res.gap <= 1e-3 and res.cost - exact <= 1e-3 + 1e-12 and res.nit < 20_000


def test_gap_with_a_gradient_oracle_and_builtins():
    a, b, _ = _cloud(6, 5, seed=3)
    R = np.outer(a, b)  # feasible: F* = 0 for the quadratic and the KL objective
    calls = []

    def grad(P):
        calls.append(1)
        return 2 * (P - R)

    res = mirror_sinkhorn(a, b, grad=grad, fun=lambda P: float(np.sum((P - R) ** 2)), maxiter=50, check_every=10)
    assert res.fun <= res.gap + 1e-15 and len(calls) == 50 + 1  # one more call: the certificate
    for objective in ("quadratic", "kl"):
        res = mirror_sinkhorn(a, b, objective=objective, ref=R, maxiter=50, gap_tol=1e-9, output="last", warn=False)
        assert res.fun <= res.gap + 1e-15


def test_noisy_costs_certify_nothing():
    a, b, M = _cloud(5, 5)

    def sampler(k, rng):
        return M + 0.1 * rng.standard_normal(M.shape)

    res = mirror_sinkhorn(a, b, M, cost_sampler=sampler, maxiter=100, rng=0, warn=False)
    assert np.isnan(res.gap) and res.nit == 100 and "no optimality certificate" in res.message
    with pytest.raises(ValueError, match="gap_tol"):
        mirror_sinkhorn(a, b, M, cost_sampler=sampler, gap_tol=1e-3)


def test_grad_errors_propagate():
    a, b, M = _cloud(4, 5)

    def boom(P):
        raise KeyError("inside grad")

    with pytest.raises(KeyError, match="inside grad"):
        mirror_sinkhorn(a, b, grad=boom)
    with pytest.raises(ValueError, match="grad.*shape"):
        mirror_sinkhorn(a, b, grad=lambda P: np.zeros((2, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        mirror_sinkhorn(a, b, grad=lambda P: np.full(P.shape, np.nan))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(), ValueError, "nothing to minimise"),
        (dict(M=np.ones((3, 3))), ValueError, "shape"),
        (dict(M=np.ones((4, 5)), step=-1.0), ValueError, "step"),
        (dict(M=np.ones((4, 5)), step="fast"), ValueError, "step"),
        (dict(M=np.ones((4, 5)), output="best"), ValueError, "output"),
        (dict(M=np.ones((4, 5)), objective="l2"), ValueError, "objective"),
        (dict(M=np.ones((4, 5)), objective="kl"), ValueError, "ref"),
        (dict(M=np.ones((4, 5)), grad=lambda P: P, cost_sampler=lambda k, r: 0), ValueError, "not both"),
        (dict(M=np.ones((4, 5)), grad=3), TypeError, "grad"),
        (dict(M=np.full((4, 5), np.nan)), ValueError, "M"),
        (dict(M=np.ones((4, 5)), maxiter=-1), ValueError, "maxiter"),
        (dict(M=np.ones((4, 5)), tol=0.0), ValueError, "tol"),
        (dict(M=np.ones((4, 5)), gap_tol=-1.0), ValueError, "gap_tol"),
        (dict(objective="kl", ref=np.zeros((4, 5))), ValueError, "KL reference"),
    ],
)
def test_bad_input_named_errors(kwargs, exc, match):
    a, b = np.full(4, 0.25), np.full(5, 0.2)
    with pytest.raises(exc, match=match):
        mirror_sinkhorn(a, b, **kwargs)


def test_bad_weights():
    M = np.ones((2, 2))
    with pytest.raises(ValueError, match="mass"):
        mirror_sinkhorn([0.5, 0.5], [0.5, 0.6], M)
    with pytest.raises(ValueError, match="negative"):
        mirror_sinkhorn([1.5, -0.5], [0.5, 0.5], M)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("step", ["sqrt", "horizon", 2.0, 60.0])
@pytest.mark.parametrize("output", ["average", "last"])
def test_stored_plan_form_follows_the_general_loop(dtype, step, output):
    # The native linear objective updates the stored plan by a stored exp(-eta M) (or, for a
    # step too large for the dtype, runs in the log domain); a gradient oracle takes the general
    # n x m log-state loop. Odd horizon and check interval: row-only and column-only passes.
    a, b, M = _cloud(9, 7, seed=5, dtype=dtype)
    kw = dict(step=step, output=output, maxiter=301, check_every=7, tol=1e-15, warn=False)
    native = mirror_sinkhorn(a, b, M, **kw)
    viapy = mirror_sinkhorn(a, b, grad=lambda P: M, fun=lambda P: float(np.sum(P * M)), **kw)
    # float32 with the large step: both run in the log domain, whose exponents (S M ~ 4e4) carry
    # float32's relative rounding times their size
    rtol = 1e-11 if dtype == np.float64 else 2e-4 if step != 60.0 else 1e-2
    np.testing.assert_allclose(native.plan, viapy.plan, rtol=rtol, atol=rtol * float(native.plan.max()))
    assert native.nit == viapy.nit == 301
    np.testing.assert_array_equal(native.history[:, 0], viapy.history[:, 0])
    assert native.history[-1, 1] == native.marginal_error
