"""optcore.ot.sparse_ot / smooth_ot: sparsity-constrained and quadratic OT (issue 20, part 2)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import optcore
from optcore.testing import ot_problems

pytest.importorskip("ot")
import ot  # noqa: E402
import ot.smooth  # noqa: E402


def problem(n, m, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    return np.full(n, 1 / n, dtype), np.full(m, 1 / m, dtype), M.astype(dtype)


@pytest.mark.parametrize("dual", ["semi", "dual"])
@pytest.mark.parametrize("k", [1, 2, 5])
def test_at_most_k_nonzeros_per_column(dual, k):
    a, b, M = problem(40, 30)
    res = optcore.ot.sparse_ot(a, b, M, k, 0.05, dual=dual, warn=False)
    assert np.diff(res.plan.indptr).max() <= k
    assert res.success == (res.marginal_error <= res.tol)
    assert res.nit <= 1000
    P = res.plan.toarray()
    err = np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()
    assert err == pytest.approx(res.marginal_error, rel=1e-9, abs=1e-15)
    assert res.cost == pytest.approx(float((P * M).sum()), rel=1e-12)


@pytest.mark.parametrize("dual", ["semi", "dual"])
def test_k1_gives_emd_cost(dual):
    # n = m with uniform weights and a continuous random cost: the optimum is a unique permutation.
    a, b, M = problem(30, 30, seed=3)
    res = optcore.ot.sparse_ot(a, b, M, 1, 1e-2, dual=dual, tol=1e-8)
    assert res.success
    assert res.cost == pytest.approx(ot.emd2(a, b, M), rel=1e-9)
    assert np.diff(res.plan.indptr).max() == 1


@pytest.mark.parametrize("dual", ["semi", "dual"])
def test_smooth_matches_pot_l2(dual):
    a, b, M = problem(50, 40, seed=1)
    reg = 0.1
    res = optcore.ot.smooth_ot(a, b, M, reg, dual=dual)
    assert res.success
    regul = ot.smooth.SquaredL2(gamma=reg)
    if dual == "dual":
        _, log = ot.smooth.smooth_ot_dual(a, b, M, reg, reg_type="l2", log=True, stopThr=1e-12, numItermax=5000)
        pot = ot.smooth.dual_obj_grad(log["alpha"], log["beta"], a, b, M, regul)[0]
        ours = ot.smooth.dual_obj_grad(res.alpha, res.beta, a, b, M, regul)[0]
    else:
        _, log = ot.smooth.smooth_ot_semi_dual(a, b, M, reg, reg_type="l2", log=True, stopThr=1e-12, numItermax=5000)
        pot = ot.smooth.semi_dual_obj_grad(log["alpha"], a, b, M, regul)[0]
        ours = ot.smooth.semi_dual_obj_grad(res.alpha, a, b, M, regul)[0]
    assert ours == pytest.approx(res.fun, abs=1e-12)  # our objective is POT's, at our variables
    assert res.fun == pytest.approx(pot, abs=1e-6)
    assert res.fun >= pot - 1e-12  # we maximize at least as well
    assert res.primal == pytest.approx(res.fun, abs=1e-7)  # no duality gap for k >= n


@pytest.mark.parametrize("dual", ["semi", "dual"])
def test_objective_and_gradient_match_pot_sparsity_constrained(dual):
    # Our objective at our variables equals POT's sparsity_constrained objective there, and its
    # gradient (POT's, the marginal residual) vanishes at our solution when we report success.
    a, b, M = problem(30, 20, seed=2)
    k, reg = 4, 0.05
    res = optcore.ot.sparse_ot(a, b, M, k, reg, dual=dual, warn=False)
    regul = ot.smooth.SparsityConstrained(max_nz=k, gamma=reg)
    if dual == "dual":
        val, ga, gb = ot.smooth.dual_obj_grad(res.alpha, res.beta, a, b, M, regul)
        grad = np.concatenate([ga, gb])
    else:
        val, grad = ot.smooth.semi_dual_obj_grad(res.alpha, a, b, M, regul)
    assert val == pytest.approx(res.fun, abs=1e-12)
    assert np.abs(grad).sum() <= res.marginal_error + 1e-12


def test_gradient_matches_finite_differences():
    # The semi-dual's gradient a - T 1 (POT's formula) at random alpha, against central
    # differences of our objective value (res.fun at maxiter=0 is the objective at alpha = 0;
    # the Rust unit test checks every coordinate at random points).
    a, b, M = problem(12, 9, seed=4)
    regul = ot.smooth.SparsityConstrained(max_nz=3, gamma=0.2)
    rng = np.random.default_rng(0)
    alpha = rng.random(12) * 0.1
    _, g = ot.smooth.semi_dual_obj_grad(alpha, a, b, M, regul)
    h = 1e-6
    for i in range(12):
        e = np.zeros(12)
        e[i] = h
        fd = (
            ot.smooth.semi_dual_obj_grad(alpha + e, a, b, M, regul)[0]
            - ot.smooth.semi_dual_obj_grad(alpha - e, a, b, M, regul)[0]
        ) / (2 * h)
        assert fd == pytest.approx(g[i], abs=1e-6)
    res = optcore.ot.sparse_ot(a, b, M, 3, 0.2, maxiter=0, warn=False)
    assert res.fun == pytest.approx(ot.smooth.semi_dual_obj_grad(np.zeros(12), a, b, M, regul)[0], abs=1e-14)
    assert res.nit == 0 and not res.success


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        (dict(k=0, reg=0.1), ValueError, "`k`"),
        (dict(k=-3, reg=0.1), ValueError, "`k`"),
        (dict(k=2.5, reg=0.1), TypeError, "`k`"),
        (dict(k=True, reg=0.1), TypeError, "`k`"),
        (dict(k=2, reg=0.0), ValueError, "`reg`"),
        (dict(k=2, reg=-1.0), ValueError, "`reg`"),
        (dict(k=2, reg=float("nan")), ValueError, "`reg`"),
        (dict(k=2, reg=None), ValueError, "`reg`"),
        (dict(k=2, reg=0.1, dual="primal"), ValueError, "dual"),
    ],
)
def test_bad_arguments_named(kwargs, exc, word):
    a, b, M = problem(5, 4)
    with pytest.raises(exc, match=word):
        optcore.ot.sparse_ot(a, b, M, **kwargs)


def test_bad_inputs_named():
    a, b, M = problem(5, 4)
    with pytest.raises(ValueError, match="same total mass"):
        optcore.ot.sparse_ot(a, b * 2, M, 2, 0.1)
    with pytest.raises(ValueError, match="`M`"):
        optcore.ot.sparse_ot(a, b, np.full((5, 4), np.nan), 2, 0.1)
    with pytest.raises(ValueError, match="shapes"):
        optcore.ot.sparse_ot(a[:3], b, M, 2, 0.1)
    with pytest.raises(ValueError, match="`reg`"):
        optcore.ot.smooth_ot(a, b, M, reg=0)


@pytest.mark.parametrize("dual", ["semi", "dual"])
def test_float32(dual):
    a, b, M = problem(40, 30, dtype=np.float32)
    res = optcore.ot.smooth_ot(a, b, M, 0.1, dual=dual)
    assert res.plan.dtype == np.float32
    assert res.success and res.marginal_error <= 1e-5
    r64 = optcore.ot.smooth_ot(a.astype(np.float64), b.astype(np.float64), M.astype(np.float64), 0.1, dual=dual)
    assert res.fun == pytest.approx(r64.fun, rel=1e-5)


def test_deterministic_across_workers():
    a, b, M = problem(120, 90, seed=5)
    r1 = optcore.ot.sparse_ot(a, b, M, 4, 0.05, workers=1, warn=False)
    r2 = optcore.ot.sparse_ot(a, b, M, 4, 0.05, workers=2, warn=False)
    assert np.array_equal(r1.alpha, r2.alpha) and r1.nit == r2.nit
    assert np.array_equal(r1.plan.data, r2.plan.data) and np.array_equal(r1.plan.indices, r2.plan.indices)


def test_callback_stop_and_maxiter():
    a, b, M = problem(30, 30)
    seen = []

    def cb(r):
        seen.append(r.nit)
        raise StopIteration

    res = optcore.ot.sparse_ot(a, b, M, 3, 0.05, callback=cb, check_every=2, warn=False)
    assert res.status == 99 and not res.success and seen == [2]
    res = optcore.ot.sparse_ot(a, b, M, 30, 0.05, maxiter=3, warn=False)
    assert res.nit <= 3 and res.success == (res.marginal_error <= res.tol)


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(ot_problems(max_size=8, extreme=False))
def test_property_claims_hold(p):
    a, b, M, reg = p.a, p.b, p.M, p.reg
    n = M.shape[0]
    for k in (1, n):
        res = optcore.ot.sparse_ot(a, b, M, k, reg, maxiter=200, warn=False)
        assert np.diff(res.plan.indptr).max(initial=0) <= k
        P = res.plan.toarray().astype(np.float64)
        # b is rescaled onto sum(a) (documented), in the dtype.
        b_used = (b.astype(np.float64) * (a.sum(dtype=np.float64) / b.sum(dtype=np.float64))).astype(b.dtype)
        if a.sum(dtype=np.float64) == b.sum(dtype=np.float64):
            b_used = b
        err = np.abs(P.sum(1) - a.astype(np.float64)).sum() + np.abs(P.sum(0) - b_used.astype(np.float64)).sum()
        assert res.success == (res.marginal_error <= res.tol)
        assert err == pytest.approx(res.marginal_error, rel=1e-6, abs=1e-12 * float(a.sum()))
        assert res.nit <= 200
        assert res.status != 4 or res.marginal_error > res.tol
