"""optcore.ot.sparse_ot with small k (issue 20): k = 1 is unregularized OT, and the result
says when no k-sparse plan can meet the marginals (status 2) or why L-BFGS stopped short."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optcore
from optcore.ot.sparse import _sparsity_gap


def cloud(n, m, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    return np.full(n, 1 / n), np.full(m, 1 / m), ((x[:, None] - y[None]) ** 2).sum(-1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [8, 40, 120])
def test_k1_gives_the_emd_cost_on_square_uniform_problems(n, seed):
    # n = m, uniform weights, random continuous costs: the EMD is a unique permutation (almost
    # surely), and k = 1 with the semi-dual is exactly unregularized OT's semi-dual.
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(100 + seed)
    a = b = np.full(n, 1 / n)
    M = rng.random((n, n)) if seed % 2 else cloud(n, n, seed)[2]
    emd = ot.emd2(a, b, M)
    res = optcore.ot.sparse_ot(a, b, M, 1, 1e-2, maxiter=5000)
    assert res.success and res.status == 0 and res.marginal_error <= res.tol
    assert res.cost == pytest.approx(emd, rel=1e-9, abs=1e-15)
    assert res.plan.nnz == n and np.diff(res.plan.indptr).max() == 1
    # the plan is the permutation of the EMD
    P = res.plan.toarray()
    assert np.array_equal(P > 0, ot.emd(a, b, M) > 1e-12)
    # the semi-dual value less its constant (reg / 2) sum b_j^2 is the LP dual: the EMD cost
    assert res.fun - 0.5 * 1e-2 * float((b**2).sum()) == pytest.approx(emd, abs=1e-9)


@pytest.mark.parametrize("dual", ["semi", "dual"])
def test_too_few_columns_is_reported_infeasible(dual):
    # k = 1 and m < n: at most m rows can receive mass.
    a, b, M = cloud(12, 5, 0)
    with pytest.warns(optcore.ConvergenceWarning, match="Infeasible"):
        res = optcore.ot.sparse_ot(a, b, M, 1, 0.05, dual=dual, maxiter=300)
    assert res.status == 2 and not res.success
    assert "at most 1 nonzeros per column cannot meet the marginals" in res.message
    gap, _ = _sparsity_gap(a, b, 1)
    assert gap >= 7 / 12  # the 7 rows that stay empty
    # sharper: each row gets 0 or >= 1/5 from whole columns, so each is off by 1/12 at least
    assert gap == pytest.approx(1.0)
    assert res.marginal_error >= gap - 1e-12  # the bound holds on the returned plan
    # k = 3 fits 12 rows into 5 columns: no proof of infeasibility, status is not 2
    res = optcore.ot.sparse_ot(a, b, M, 3, 0.05, dual=dual, maxiter=300, warn=False)
    assert res.status != 2


def test_heavy_column_and_non_multiple_rows_are_infeasible():
    # a column heavier than the k largest rows together
    a = np.full(6, 1 / 6)
    b = np.array([0.5, 0.25, 0.25])
    gap, why = _sparsity_gap(a, b, 2)
    assert gap == pytest.approx(0.5 - 2 / 6) and "exceeds" in why
    M = np.random.default_rng(1).random((6, 3))
    res = optcore.ot.sparse_ot(a, b, M, 2, 0.1, maxiter=200, warn=False)
    assert res.status == 2 and res.marginal_error >= gap - 1e-12
    # k = 1, equal columns of mass 1/4, rows of mass 1/3: no row is a whole number of columns
    a, b = np.full(3, 1 / 3), np.full(4, 1 / 4)
    gap, why = _sparsity_gap(a, b, 1)
    assert gap == pytest.approx(3 * (1 / 3 - 1 / 4)) and "whole number" in why
    res = optcore.ot.sparse_ot(a, b, np.random.default_rng(2).random((3, 4)), 1, 0.1, maxiter=200, warn=False)
    assert res.status == 2 and res.marginal_error >= gap - 1e-12
    # feasible shapes give no bound
    assert _sparsity_gap(np.full(4, 0.25), np.full(4, 0.25), 1)[0] == 0.0
    assert _sparsity_gap(np.full(2, 0.5), np.full(4, 0.25), 1)[0] == 0.0
    assert _sparsity_gap(np.full(4, 0.25), np.full(2, 0.5), 1)[0] == pytest.approx(1.0)  # 2 rows stay empty


def test_limit_message_names_the_cause():
    # A problem too large for the iterations given: status 1 with the k = 1 explanation.
    a, b, M = cloud(200, 200, 0)
    res = optcore.ot.sparse_ot(a, b, M, 1, 1e-2, maxiter=20, warn=False)
    assert res.status == 1 and "piecewise linear" in res.message
    res = optcore.ot.sparse_ot(a, b, M, 3, 1e-2, dual="dual", maxiter=20, warn=False)
    assert res.status == 1 and "top-k support" in res.message


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    st.integers(1, 7),
    st.integers(1, 7),
    st.integers(1, 3),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_property_the_infeasibility_bound_holds_on_every_returned_plan(n, m, k, equal_b, seed):
    # The bound is a lower bound on the marginal error of any plan with <= k nonzeros per column,
    # so the returned plan (which has that sparsity) can never beat it; status 2 exactly when it
    # exceeds tol on a run that did not converge.
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, n).astype(np.float64)
    b = np.ones(m) if equal_b else rng.integers(1, 6, m).astype(np.float64)
    a, b = a / a.sum(), b / b.sum()
    M = rng.random((n, m))
    res = optcore.ot.sparse_ot(a, b, M, k, 0.1, maxiter=200, warn=False)
    assert np.diff(res.plan.indptr).max() <= k
    gap, why = _sparsity_gap(a, b * (a.sum() / b.sum()), k)
    assert res.marginal_error >= gap - 1e-12
    assert (gap > 0) == bool(why)
    if res.status == 2:
        assert gap > res.tol and not res.success and "cannot meet the marginals" in res.message
    if gap > res.tol and k < n:
        assert res.status == 2
