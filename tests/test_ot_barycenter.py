"""Entropic barycenters (optcore.ot.barycenter): POT's results (dense and convolutional), the
tolerance re-measured on the returned state, small reg, float32, workers, bad inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

import optcore
from optcore.ot import barycenter, grid_cost

ot = pytest.importorskip("ot")


def _hists(n, k, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    A = rng.random((n, k)) ** 3
    return (A / A.sum(0)).astype(dtype)


def _line_cost(n):
    x = np.linspace(0, 1, n)
    return (x[:, None] - x[None, :]) ** 2


def _images(k=3, size=16):
    """Shapes: a square, a disc, a ring (masses 1)."""
    t = np.linspace(-1, 1, size)
    X, Y = np.meshgrid(t, t, indexing="ij")
    R = np.hypot(X, Y)
    shapes = [(np.abs(X) < 0.5) & (np.abs(Y) < 0.5), R < 0.6, (R > 0.5) & (R < 0.85)]
    A = np.stack([s.astype(float) for s in shapes[:k]])
    return A / A.sum(axis=(1, 2), keepdims=True)


def _remeasure(res, H, C, reg):
    """Both marginal errors of every plan P_h = exp((f_h + g_h - C)/reg), in NumPy."""
    q = res.barycenter.reshape(-1).astype(np.float64)
    errs = []
    for h in range(H.shape[0]):
        logP = (res.f[h].reshape(-1)[:, None] + res.g[h].reshape(-1)[None, :] - C) / reg
        P = np.exp(logP)
        errs.append(np.abs(P.sum(1) - H[h]).sum() + np.abs(P.sum(0) - q).sum())
    return np.array(errs)


@pytest.mark.parametrize("method", ["sinkhorn_log", "sinkhorn_stabilized"])
def test_dense_matches_pot_to_1e_6(method):
    # POT's log-domain and stabilized forms; its default scaling form ("sinkhorn") stops about
    # 1e-3 away from both on this problem (see the bench notes).
    n, k, reg = 40, 3, 2e-2
    A, M = _hists(n, k), _line_cost(n)
    w = np.array([0.2, 0.3, 0.5])
    res = barycenter(A, M, reg, w, tol=1e-11)
    assert res.success and res.nit <= 10_000
    ref = ot.bregman.barycenter(A, M, reg, w, method=method, numItermax=20_000, stopThr=1e-14, warn=False)
    assert np.abs(res.barycenter - ref).sum() < 1e-6


def test_convolutional_matches_pot_to_1e_6():
    A = _images()
    reg = 4e-3
    res = barycenter(A, None, reg, tol=1e-11)
    ref = ot.bregman.convolutional_barycenter2d(A, reg, numItermax=20_000, stopThr=1e-13, warn=False)
    assert res.success and res.barycenter.shape == A.shape[1:]
    assert np.abs(res.barycenter - ref).sum() < 1e-6


@pytest.mark.parametrize("shape", [(16, 16), (13, 20)])
@pytest.mark.parametrize("reg", [1e-1, 4e-3, 3e-4])
def test_grid_tolerance_holds_on_the_returned_state(shape, reg):
    # Grids run their applies in the scaling form where it holds (whole 8-column panels or not,
    # rows without mass, and at small reg the log-domain fallback): the reported error is the
    # returned state's, and the result is the dense form's.
    h, w = shape
    t = [np.linspace(-1, 1, h), np.linspace(-1, 1, w)]
    X, Y = np.meshgrid(*t, indexing="ij")
    A = np.stack([((np.abs(X) < 0.5) & (np.abs(Y) < 0.4)) * 1.0, (np.hypot(X - 0.3, Y) < 0.5) * (1 + X**2)])
    A /= A.sum(axis=(1, 2), keepdims=True)
    C0, C1 = grid_cost(h), grid_cost(w)
    full = (C0[:, None, :, None] + C1[None, :, None, :]).reshape(h * w, h * w)
    tol = 1e-9
    g = barycenter(A, [C0, C1], reg, [0.4, 0.6], tol=tol, maxiter=50_000)
    assert g.success and g.marginal_error.max() <= tol
    measured = _remeasure(g, A.reshape(2, -1), full, reg)
    assert np.all(np.abs(measured - g.marginal_error) <= 1e-12 + 1e-6 * g.marginal_error)
    d = barycenter(A.reshape(2, -1).T, full, reg, [0.4, 0.6], tol=1e-12, maxiter=50_000)
    assert np.abs(g.barycenter.ravel() - d.barycenter).sum() < 1e-8


def test_grid_equals_dense_form():
    A = _images(2, 8)
    C1 = grid_cost(8)
    full = (C1[:, None, :, None] + C1[None, :, None, :]).reshape(64, 64)
    reg = 1e-2
    g = barycenter(A, [C1, C1], reg, tol=1e-12)
    d = barycenter(A.reshape(2, -1).T, full, reg, tol=1e-12)
    assert np.abs(g.barycenter.ravel() - d.barycenter).max() < 1e-10


@settings(max_examples=40)
@given(
    n=st.integers(2, 12),
    k=st.integers(1, 4),
    reg=st.sampled_from([1.0, 1e-1, 1e-2, 1e-3]),
    tol=st.sampled_from([1e-3, 1e-7, 1e-10]),
    seed=st.integers(0, 2**16),
)
def test_tolerance_holds_on_the_returned_state(n, k, reg, tol, seed):
    rng = np.random.default_rng(seed)
    A = rng.random((n, k)) * (rng.random((n, k)) > 0.3)
    A[0] += 0.1
    A /= A.sum(0)
    M = rng.random((n, n))
    res = barycenter(A, M, reg, rng.random(k) + 0.1, tol=tol, maxiter=20_000, warn=False)
    assert res.nit <= 20_000 and res.status in (0, 1, 4)
    assert res.success == (res.marginal_error.max() <= tol)
    measured = _remeasure(res, A.T, M, reg)
    assert np.all(np.abs(measured - res.marginal_error) <= 1e-9 + 1e-6 * res.marginal_error)
    assert np.all(res.barycenter >= 0)


def test_small_reg_is_stable_and_converges():
    n = 60
    A = np.zeros((n, 2))
    A[5:10, 0] = 0.2
    A[48:53, 1] = 0.2
    res = barycenter(A, _line_cost(n), 1e-4, tol=1e-9)
    assert res.success and np.all(np.isfinite(res.barycenter))
    # the midpoint of two bumps centred at 7 and 50 is near 28.5
    assert abs(float(np.arange(n) @ res.barycenter) - 28.5) < 0.5


def test_rectangular_cost_gives_another_support():
    n, m = 20, 7
    x, z = np.linspace(0, 1, n), np.linspace(0, 1, m)
    M = (x[:, None] - z[None, :]) ** 2
    A = _hists(n, 2)
    res = barycenter(A, M, 5e-2, tol=1e-10)
    assert res.success and res.barycenter.shape == (m,)
    assert np.all(_remeasure(res, A.T, M, 5e-2) <= 1e-10 * 1.01)


def test_float32_keeps_its_dtype():
    A, M = _hists(30, 2, dtype=np.float32), _line_cost(30).astype(np.float32)
    r32 = barycenter(A, M, 1e-2)
    r64 = barycenter(A.astype(np.float64), M.astype(np.float64), 1e-2)
    assert r32.barycenter.dtype == np.float32 and r32.success and r32.tol == 1e-5
    assert np.abs(r32.barycenter - r64.barycenter).sum() < 1e-5
    img = barycenter(_images(2, 8).astype(np.float32), None, 1e-2)
    assert img.barycenter.dtype == np.float32 and img.success


def test_same_result_for_any_workers():
    A = _images(3, 24)
    r1 = barycenter(A, None, 3e-3, workers=1, tol=1e-8)
    r2 = barycenter(A, None, 3e-3, workers=2, tol=1e-8)
    assert r1.nit == r2.nit and np.array_equal(r1.barycenter, r2.barycenter)


def test_limits_callback_and_zero_weight():
    A, M = _hists(20, 3), _line_cost(20)
    with pytest.warns(optcore.ConvergenceWarning):
        res = barycenter(A, M, 1e-3, maxiter=3)
    assert res.status == 1 and res.nit == 3 and not res.success
    seen = []

    def cb(r):
        seen.append(r.nit)
        if r.nit >= 20:
            raise StopIteration

    res = barycenter(A, M, 1e-3, callback=cb, check_every=10)
    assert res.status == 99 and seen == [10, 20] and res.nit == 20
    # a zero weight leaves that histogram out
    r0 = barycenter(A, M, 1e-2, [0.5, 0.5, 0.0], tol=1e-11)
    r1 = barycenter(A[:, :2], M, 1e-2, tol=1e-11)
    assert np.abs(r0.barycenter - r1.barycenter).max() < 1e-9


def test_fun_is_the_weighted_entropic_cost():
    A, M, reg = _hists(15, 2), _line_cost(15), 5e-2
    w = np.array([0.4, 0.6])
    res = barycenter(A, M, reg, w, tol=1e-12)
    vals = []
    for h in range(2):
        s = optcore.ot.sinkhorn(A[:, h], res.barycenter, M, reg, tol=1e-12)
        vals.append(s.fun)
    assert abs(res.fun - w @ vals) < 1e-9


def test_bad_inputs_are_named():
    A, M = _hists(5, 2), _line_cost(5)
    cases = [
        (dict(A=-A, M=M, reg=0.1), "`A` has negative"),
        (dict(A=A, M=M, reg=0.0), "`reg`"),
        (dict(A=A, M=M, reg=None), "`reg`"),
        (dict(A=A, M=M[:4], reg=0.1), "`A` must have shape"),
        (dict(A=A, M=np.where(M > 0.5, np.nan, M), reg=0.1), "`M` contains"),
        (dict(A=A * [1.0, 2.0], M=M, reg=0.1), "same total mass"),
        (dict(A=A, M=M, reg=0.1, weights=[1.0]), "`weights` must have shape"),
        (dict(A=A, M=M, reg=0.1, weights=[-1.0, 2.0]), "`weights` has negative"),
        (dict(A=A, M=M, reg=0.1, weights=[0.0, 0.0]), "`weights` sum to zero"),
        (dict(A=np.ones((2, 4, 4)), M=[grid_cost(4)], reg=0.1), "one 1-D cost per axis"),
        (dict(A=np.ones((2, 4, 4)), M=[grid_cost(4), grid_cost(3)], reg=0.1), "`M[1]` must have shape"),
        (dict(A=A, M=M, reg=1e-310), "too large"),
    ]
    for kw, msg in cases:
        with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace("[", r"\[")):
            barycenter(**kw)
    with pytest.raises(TypeError, match="`A`"):
        barycenter(A.astype(complex), M, 0.1)
    with pytest.raises(TypeError, match="maxiter"):
        barycenter(A, M, 0.1, maxiter=1.5)
    with pytest.raises(ValueError, match="maxiter"):
        barycenter(A, M, 0.1, maxiter=0)


def test_unequal_masses_within_1e_6_are_rescaled():
    A, M = _hists(10, 2), _line_cost(10)
    A[:, 1] *= 1 + 5e-7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = barycenter(A, M, 0.1)
    assert res.success
    assert abs(logsumexp(np.log(res.barycenter)) - 0.0) < 1e-6
