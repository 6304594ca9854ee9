"""optcore.monotone.SampleSaddle: the native sparse finite sum over samples (issue 23, section 2).

The native F is compared with a dense NumPy evaluation (through the residual the solver reports
at ``maxiter=0``: for an unconstrained problem the natural residual is ``||F(z)||``); every
reported residual is re-measured densely on the returned point; ``"vr_halpern"`` must reach its
tolerance in fewer epochs (checks included) than the deterministic methods on an instance of its
regime.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from optcore.monotone import SampleSaddle, solve


def random_saddle(seed: int, n: int = 40, dx: int = 6, dy: int = 5, dtype=np.float64, **kw) -> SampleSaddle:
    g = np.random.default_rng(seed)
    P = sp.random(n, dx, density=0.4, random_state=g, data_rvs=g.standard_normal, dtype=dtype, format="csr")
    Q = sp.random(n, dy, density=0.4, random_state=g, data_rvs=g.standard_normal, dtype=dtype, format="csr")
    Q = (Q + sp.csr_matrix(np.c_[np.ones(n), np.zeros((n, dy - 1))]).astype(dtype)).tocsr()
    return SampleSaddle(P, Q, g.standard_normal(n), **kw)


def dense(prob: SampleSaddle):
    """``M`` and ``F(0)`` of ``F(z) = M z + F(0)``, from the definition."""
    P, Q, n = prob.P.toarray(), prob.Q.toarray(), prob.n
    a, b = prob.alpha, prob.beta
    M = np.block([[a * P.T @ P, P.T @ Q], [-Q.T @ P, b * Q.T @ Q]]) / n
    f0 = np.r_[-a * P.T @ prob.c, Q.T @ prob.c] / n
    return M, f0


@pytest.mark.parametrize("alpha, beta", [(0.0, 1.0), (1.0, 1.0), (0.3, 0.0), (0.0, 0.0)])
def test_native_F_and_constants_against_dense(alpha, beta):
    prob = random_saddle(3, alpha=alpha, beta=beta)
    M, f0 = dense(prob)
    z = np.random.default_rng(0).standard_normal(prob.dim)
    # maxiter=0: the residual of the start, ||F(z)|| (unconstrained), from the core's full F
    res = solve(prob, z, method="eg", maxiter=0, warn=False)
    assert res.residual == pytest.approx(np.linalg.norm(M @ z + f0), rel=1e-12)
    np.testing.assert_allclose(prob.operator(z), M @ z + f0, rtol=1e-12, atol=1e-14)
    # L: the spectral norm, raised by the 1 % margin; L_ms: the mean of the exact 2 x 2 norms
    norm = np.linalg.norm(M, 2)
    assert norm <= prob.lipschitz <= 1.0101 * norm
    pa, qb = np.linalg.norm(prob.P.toarray(), axis=1), np.linalg.norm(prob.Q.toarray(), axis=1)
    li = [np.linalg.norm([[alpha * p * p, p * q], [-p * q, beta * q * q]], 2) for p, q in zip(pa, qb)]
    assert prob.lipschitz_ms == pytest.approx(np.mean(li), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from(["vr_halpern", "halpern", "eag", "eg"]),
    f32=st.booleans(),
    tol=st.sampled_from([1e-3, 1e-6]),
)
def test_reported_residual_is_the_remeasured_one(seed, method, f32, tol):
    prob = random_saddle(seed, n=30, alpha=1.0, dtype=np.float32 if f32 else np.float64)
    M, f0 = dense(prob)
    res = solve(prob, method=method, tol=tol, rng=seed, warn=False, options={"max_epochs": 3000})
    assert res.x.dtype == (np.float32 if f32 else np.float64)
    # the residual is measured on the float64 point the core returns; the float32 result is
    # that point rounded
    z64 = np.asarray(res.x, dtype=np.float64)
    if not f32:
        assert res.residual == pytest.approx(np.linalg.norm(M @ z64 + f0), rel=1e-9, abs=1e-13)
    else:
        assert np.linalg.norm(M @ z64 + f0) <= res.residual + prob.lipschitz * np.linalg.norm(z64) * 1e-6
    assert res.success == (res.residual <= tol)
    assert res.fun == pytest.approx(prob.objective(res.x), rel=1e-9, abs=1e-12)


def test_vr_halpern_reaches_tol_in_fewer_epochs_than_the_deterministic_methods():
    prob = SampleSaddle.iv_regression(4000, 20, rng=1)
    assert np.sqrt(prob.n) * prob.lipschitz / prob.lipschitz_ms > 8
    work = {}
    for method, every in (("vr_halpern", 2), ("eag", 5), ("eg", 5)):
        res = solve(prob, method=method, tol=1e-6, rng=0, check_every=every, warn=False, options={"max_epochs": 3000})
        work[method] = res.epochs + res.n_residual if res.success else np.inf
        if method == "vr_halpern":
            assert res.success, res.message
            assert np.linalg.norm(prob.operator(res.x)) <= 1e-6
    assert 2 * work["vr_halpern"] < min(work["eag"], work["eg"]), work


def test_same_seed_same_result_for_any_workers():
    prob = SampleSaddle.iv_regression(3000, 10, rng=2)
    runs = [
        solve(prob, method="vr_halpern", tol=1e-8, rng=5, workers=w, warn=False, options={"max_epochs": 300})
        for w in (1, 2, 1)
    ]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.x, runs[0].x)
        assert r.nfev == runs[0].nfev
    other = solve(prob, method="vr_halpern", tol=1e-8, rng=6, warn=False, options={"max_epochs": 300})
    assert not np.array_equal(other.x, runs[0].x)


def test_inputs_dense_coo_and_duplicates():
    g = np.random.default_rng(0)
    P, Q = g.standard_normal((12, 3)), g.standard_normal((12, 4))
    a = SampleSaddle(P, Q, np.ones(12), alpha=0.5)
    # COO with split (duplicate) entries sums them, as SciPy does
    rows, cols = np.nonzero(P)
    dup = sp.coo_matrix((np.r_[P[rows, cols] / 2, P[rows, cols] / 2], (np.r_[rows, rows], np.r_[cols, cols])), P.shape)
    b = SampleSaddle(dup, sp.csc_matrix(Q), np.ones(12), alpha=0.5)
    z = g.standard_normal(7)
    np.testing.assert_allclose(a.operator(z), b.operator(z), rtol=1e-14)
    assert a.lipschitz_ms == pytest.approx(b.lipschitz_ms, rel=1e-14)
    assert a.lipschitz == pytest.approx(b.lipschitz, rel=1e-9)
    # a given Lipschitz constant is used as is
    assert SampleSaddle(P, Q, lipschitz=7.5).lipschitz == 7.5


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(P=np.ones((3, 2)), Q=np.ones((4, 2))), ValueError, "same number of rows"),
        (dict(P=np.ones(3), Q=np.ones((3, 2))), ValueError, "`P`"),
        (dict(P=np.ones((3, 0)), Q=np.ones((3, 2))), ValueError, "`P`"),
        (dict(P=np.ones((3, 2)), Q=np.ones((3, 2)), c=np.ones(2)), ValueError, "`c`"),
        (dict(P=np.ones((3, 2)), Q=np.ones((3, 2)), c=[1.0, np.nan, 0.0]), ValueError, "`c`"),
        (dict(P=sp.csr_matrix(np.array([[np.inf, 1.0]])), Q=np.ones((1, 2))), ValueError, "`P`"),
        (dict(P=np.ones((3, 2)) * 1j, Q=np.ones((3, 2))), TypeError, "`P`"),
        (dict(P=sp.csr_matrix(np.ones((3, 2)) * 1j), Q=np.ones((3, 2))), TypeError, "`P`"),
        (dict(P=np.ones((3, 2)), Q=np.ones((3, 2)), alpha=-1.0), ValueError, "alpha"),
        (dict(P=np.ones((3, 2)), Q=np.ones((3, 2)), beta=np.nan), ValueError, "beta"),
        (dict(P=np.ones((3, 2)), Q=np.ones((3, 2)), lipschitz=0.0), ValueError, "lipschitz"),
        (dict(P=np.zeros((3, 2)), Q=np.zeros((3, 2))), ValueError, "zero"),
    ],
)
def test_bad_input_names_the_argument(kwargs, err, match):
    with pytest.raises(err, match=match):
        SampleSaddle(**kwargs)._problem()


def test_bad_start_and_options():
    prob = random_saddle(0)
    with pytest.raises(ValueError, match="x0"):
        solve(prob, np.zeros(prob.dim + 1))
    with pytest.raises(ValueError, match="x0"):
        solve(prob, np.full(prob.dim, np.nan))
    with pytest.raises(ValueError, match="batch"):
        solve(prob, method="vr_halpern", options={"batch": 0})
