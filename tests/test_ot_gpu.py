"""The GPU path of optcore.ot.sinkhorn.

Two layers:

* without a GPU (CI): the device driver (:mod:`optcore.ot._gpu.sinkhorn`) runs on NumPy arrays
  through :class:`optcore.ot._gpu.emulate.NumpyKernels`, a tile-for-tile emulation of the CUDA
  kernels, and is checked against the Rust solver; plus the CPU side of the new API (point
  clouds, batches, ``return_plan``);
* with CuPy and a device (marked ``gpu``): every kernel against the float64 emulation on
  fresh random inputs with poisoned outputs, and the whole solver against the CPU float64
  result (odd sizes, zero-mass entries, tiny reg, batches, k histograms, point clouds).
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

import optcore
from optcore.ot import sinkhorn
from optcore.ot._device import sinkhorn_emulated
from optcore.ot._gpu.emulate import NumpyKernels
from optcore.ot._gpu.launch import MAX_SPLITS, ONLINE_DIMS, padded_dim, splits

DEFAULTS = dict(maxiter=20_000, warn=False)


def emulated(a, b, M, reg, **kw):
    """The device path on NumPy arrays (the emulated kernels)."""
    return sinkhorn_emulated(a, b, M, reg, **{**DEFAULTS, **kw})


def problem(n, m, seed, d=2, zero=False, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, d)), rng.random((m, d))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    if zero and n > 2:
        a[1] = 0.0
    if zero and m > 2:
        b[-1] = 0.0
    a /= a.sum()
    b /= b.sum()
    return a.astype(dtype), b.astype(dtype), M.astype(dtype), x.astype(dtype), y.astype(dtype)


def plan_l1(p, q):
    return float(np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)).sum())


# ------------------------------------------------------------------------------------------
# The device driver on the emulated kernels, against the Rust solver
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["log", "eps_scaling", "scaling"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,m", [(1, 5), (31, 17), (40, 7), (3, 700)])
def test_emulated_driver_matches_cpu(method, dtype, n, m):
    """Same plan, cost and objective as the Rust solver (float64 reference), within tol."""
    a, b, M, *_ = problem(n, m, seed=n * 100 + m)
    ref = sinkhorn(a, b, M, 0.05, method="log", tol=1e-12)
    res = emulated(a.astype(dtype), b.astype(dtype), M.astype(dtype), 0.05, method=method)
    assert res.success, res.message
    assert res.plan.dtype == dtype and res.f.dtype == dtype
    tol = res.tol
    assert res.marginal_error <= tol
    measured = np.abs(res.plan.sum(1, dtype=np.float64) - a).sum() + np.abs(res.plan.sum(0, dtype=np.float64) - b).sum()
    assert measured <= tol * 1.001
    assert plan_l1(res.plan, ref.plan) <= 20 * tol + (1e-5 if dtype == np.float32 else 0)
    assert res.cost == pytest.approx(ref.cost, rel=1e-4 if dtype == np.float32 else 1e-8)
    assert res.fun == pytest.approx(ref.fun, rel=1e-4 if dtype == np.float32 else 1e-8, abs=1e-9)


@pytest.mark.parametrize("method", ["log", "eps_scaling"])
def test_emulated_zero_mass_and_tiny_reg(method):
    """Zero weights give zero rows/columns and -inf potentials; reg = 1e-3 * max(M) works."""
    a, b, M, *_ = problem(30, 20, seed=3, zero=True)
    reg = 1e-3 * M.max()
    ref = sinkhorn(a, b, M, reg, method="eps_scaling", tol=1e-11)
    res = emulated(a, b, M, reg, method=method, maxiter=50_000)
    assert res.success, res.message
    assert np.isneginf(res.f[1]) and np.isneginf(res.g[-1])
    assert np.all(res.plan[1] == 0) and np.all(res.plan[:, -1] == 0)
    assert plan_l1(res.plan, ref.plan) <= 1e-7


def test_emulated_online_matches_dense():
    """Point clouds (cost on the fly, padded to an instantiated dimension) = the dense cost."""
    a, b, M, x, y = problem(33, 29, seed=5, d=5)
    assert padded_dim(5) == 8
    dense = emulated(a, b, M, 0.02)
    online = emulated(a, b, None, 0.02, x=x, y=y)
    assert online.success and online.nit == dense.nit
    assert_allclose(online.f, dense.f, rtol=1e-10, atol=1e-12)
    assert online.cost == pytest.approx(dense.cost, rel=1e-10)
    lean = emulated(a, b, None, 0.02, x=x, y=y, return_plan=False)
    assert lean.plan is None and lean.x is None
    assert lean.marginal_error <= lean.tol and lean.cost == pytest.approx(dense.cost, rel=1e-10)


def test_emulated_batch_and_histograms():
    """A batch (3-D M) and k target histograms solve as one batch; each equals its own solve."""
    probs = [problem(12, 9, seed=s) for s in range(3)]
    A = np.stack([p[0] for p in probs])
    Bw = np.stack([p[1] for p in probs])
    M = np.stack([p[2] for p in probs])
    res = emulated(A, Bw, M, 0.05)
    assert res.plan.shape == (3, 12, 9) and res.f.shape == (3, 12) and res.cost.shape == (3,)
    for i, (a, b, Mi, *_) in enumerate(probs):
        ref = sinkhorn(a, b, Mi, 0.05, tol=1e-12)
        assert plan_l1(res.plan[i], ref.plan) <= 1e-8
    a, _, M0, *_ = probs[0]
    hist = np.stack([p[1] for p in probs], axis=1)  # (m, k)
    res = emulated(a, hist, M0, 0.05)
    cpu = sinkhorn(a, hist, M0, 0.05, tol=1e-12)
    assert res.plan.shape == cpu.plan.shape == (3, 12, 9)
    assert plan_l1(res.plan, cpu.plan) <= 3e-8


def test_emulated_callback_and_disp(capsys):
    """The callback sees the device arrays; StopIteration stops with status 99; disp prints."""
    a, b, M, *_ = problem(20, 20, seed=7)
    seen = []

    def cb(r):
        seen.append((r.nit, r.marginal_error))
        if r.nit >= 30:
            raise StopIteration

    res = emulated(a, b, M, 0.01, callback=cb, disp=True)
    assert res.status == 99 and res.nit == 30 and [s[0] for s in seen] == [10, 20, 30]
    out = capsys.readouterr().out
    assert "device emulation" in out and "iter" in out


def test_emulated_iteration_limit_and_warning():
    a, b, M, *_ = problem(20, 20, seed=8)
    with pytest.warns(optcore.ConvergenceWarning):
        res = emulated(a, b, M, 0.001, maxiter=20, warn=True)
    assert res.status == 1 and res.nit == 20 and not res.success


def test_splits_cover_everything():
    """The slices of a pass cover the other side exactly once, in multiples of the granule."""
    cases = [(1, 1, 1), (313, 1, 10_000), (8, 256, 256), (782, 1, 100_000), (1, 1, 7), (6, 1, 3000), (1, 1, 10**6)]
    for blocks, batch, n_other in cases:
        for granule in (32, 128):
            nsplit, chunk = splits(blocks, batch, n_other, granule)
            assert chunk % granule == 0 and nsplit * chunk >= n_other > (nsplit - 1) * chunk
            assert 1 <= nsplit <= MAX_SPLITS


def test_padded_dim():
    assert [padded_dim(d) for d in (1, 2, 3, 5, 64, 65, 128)] == [1, 2, 3, 8, 64, 128, 128]
    with pytest.raises(ValueError, match="M instead"):
        padded_dim(129)
    assert ONLINE_DIMS[-1] == 128


# ------------------------------------------------------------------------------------------
# The CPU side of the new API: point clouds, batches, return_plan, argument errors
# ------------------------------------------------------------------------------------------


def test_cpu_point_clouds_equal_cost_matrix():
    a, b, M, x, y = problem(25, 30, seed=11, d=3)
    r1 = sinkhorn(a, b, M, 0.05)
    r2 = sinkhorn(a, b, reg=0.05, x=x, y=y)
    assert_allclose(r2.plan, r1.plan, atol=1e-14)
    r3 = sinkhorn(a, b, reg=0.05, x=x, y=y, return_plan=False)
    assert r3.plan is None and r3.cost == pytest.approx(r1.cost)


def test_cpu_batch():
    probs = [problem(10, 8, seed=s) for s in range(4)]
    M = np.stack([p[2] for p in probs])
    res = sinkhorn(np.stack([p[0] for p in probs]), probs[0][1], M, 0.05)  # b shared (1-D)
    assert res.plan.shape == (4, 10, 8) and res.success
    for i, p in enumerate(probs):
        ref = sinkhorn(p[0], probs[0][1], p[2], 0.05)
        assert_allclose(res.plan[i], ref.plan)


def test_cpu_new_argument_errors():
    a, b, M, x, y = problem(5, 4, seed=1)
    with pytest.raises(ValueError, match="reg"):
        sinkhorn(a, b, M)
    with pytest.raises(ValueError, match="not both"):
        sinkhorn(a, b, M, 0.1, x=x, y=y)
    with pytest.raises(ValueError, match="both point clouds"):
        sinkhorn(a, b, reg=0.1, x=x)
    with pytest.raises(ValueError, match="required"):
        sinkhorn(a, b, reg=0.1)
    with pytest.raises(ValueError, match=r"\(n, d\) and \(m, d\)"):
        sinkhorn(a, b, reg=0.1, x=x, y=y[:, :1])
    with pytest.raises(ValueError, match="shape"):
        sinkhorn(np.ones((2, 3)) / 5, b, np.stack([M, M]), 0.1)


def test_emulated_argument_errors():
    a, b, M, x, y = problem(5, 4, seed=2)
    with pytest.raises(ValueError, match="scaling"):
        emulated(a, b, None, 0.1, x=x, y=y, method="scaling")
    with pytest.raises(ValueError, match="same total mass"):
        emulated(a, 2 * b, M, 0.1)
    with pytest.raises(ValueError, match="negative"):
        emulated(-a, b, M, 0.1)
    with pytest.raises(ValueError, match="NaN"):
        emulated(a, b, np.where(M > 0.5, np.nan, M), 0.1)
    with pytest.raises(TypeError, match="complex"):
        emulated(a, b, M.astype(complex), 0.1)
    with pytest.raises(ValueError, match="too large"):
        emulated(a.astype(np.float32), b.astype(np.float32), (M * 1e30).astype(np.float32), 1e-10)
    with pytest.raises(ValueError, match="reg"):
        emulated(a, b, M, -1.0)


# ------------------------------------------------------------------------------------------
# On a device (CuPy and a GPU): the kernels and the solver
# ------------------------------------------------------------------------------------------


def _cupy():
    import cupy  # noqa: PLC0415

    return cupy


def _lse(pm, ps):
    pm = np.asarray(pm, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(np.isneginf(pm), -np.inf, pm + np.log(np.asarray(ps, dtype=np.float64)))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B,n,m", [(1, 1, 1), (1, 31, 1000), (1, 1000, 7), (3, 33, 65), (1, 300, 257)])
@pytest.mark.parametrize("cost", [False, True])
def test_gpu_dense_kernels_match_emulation(dtype, B, n, m, cost):
    """sk_dense_rows / sk_dense_cols / sk_finalize against the float64 emulation on the same
    (rounded) inputs, outputs poisoned with NaN first: relative error < 1e-5 (float32),
    1e-12 (float64)."""
    cp = _cupy()
    from optcore.ot._gpu.launch import CupyKernels  # noqa: PLC0415

    rng = np.random.default_rng()
    M = rng.random((B, n, m)).astype(dtype)
    h_r = (rng.standard_normal((B, m)) * 0.1).astype(dtype)
    h_c = (rng.standard_normal((B, n)) * 0.1).astype(dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    kern, emu = CupyKernels(dtype), NumpyKernels(np.float64)
    size = MAX_SPLITS * B * max(n, m)
    for side, h, length in (("rows", h_r, n), ("cols", h_c, m)):
        pm = cp.full(size, np.nan, dtype=dtype)
        ps = cp.full(size, np.nan)
        pc = cp.full(size, np.nan)
        fn = kern.dense_rows if side == "rows" else kern.dense_cols
        ns = fn(cp.asarray(M), cp.asarray(h), pm, ps, pc, B, n, m, n * m, 1 / 0.05, cost)
        epm, eps_, epc = np.empty(size), np.empty(size), np.empty(size)
        fe = emu.dense_rows if side == "rows" else emu.dense_cols
        ns_e = fe(M.astype(np.float64), h.astype(np.float64), epm, eps_, epc, B, n, m, n * m, 1 / 0.05, cost)
        assert ns == ns_e
        R = ns * B * length
        got, want = _lse(pm[:R].get(), ps[:R].get()), _lse(epm[:R], eps_[:R])
        assert not np.isnan(got).any(), "unwritten partials"
        assert_allclose(got, want, rtol=rtol, atol=rtol)
        if cost:
            cg = pc[:R].get() * np.exp(pm[:R].get().astype(np.float64))
            ce = epc[:R] * np.exp(epm[:R])
            assert_allclose(cg, ce, rtol=10 * rtol)
        # finalize: update and the error/cost/dot sums
        w = rng.random((B, length)).astype(dtype)
        w[:, 0] = 0.0
        p_old = (rng.standard_normal((B, length)) * 0.01).astype(dtype)
        out_g = [cp.zeros(B) for _ in range(3)]
        out_e = [np.zeros(B) for _ in range(3)]
        p_new = cp.full((B, length), np.nan, dtype=dtype)
        p_new_e = np.full((B, length), np.nan)
        bad_g, bad_e = cp.zeros(1, dtype=np.int32), np.zeros(1, dtype=np.int32)
        flags = 1 | 2 | (4 if cost else 0)
        kern.finalize(
            pm, ps, pc, ns, B, length, cp.asarray(w), length, cp.asarray(p_old), p_new, *out_g, bad_g, 0.05, 1.5, flags
        )
        emu.finalize(
            epm,
            eps_,
            epc,
            ns,
            B,
            length,
            w.astype(np.float64),
            length,
            p_old.astype(np.float64),
            p_new_e,
            *out_e,
            bad_e,
            0.05,
            1.5,
            flags,
        )
        got = p_new.get().astype(np.float64)
        assert np.isneginf(got[:, 0]).all()
        assert_allclose(got[:, 1:], p_new_e[:, 1:], rtol=10 * rtol, atol=10 * rtol)
        for g_, e_ in zip(out_g, out_e):
            assert_allclose(g_.get(), e_, rtol=100 * rtol, atol=100 * rtol)
        assert int(bad_g.get()[0]) == int(bad_e[0]) == 0


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 3, 5, 64, 128])
@pytest.mark.parametrize("n,m", [(1, 31), (300, 1000), (1000, 7)])
def test_gpu_online_kernel_matches_emulation(dtype, d, n, m):
    """sk_online (both directions are this kernel) against the float64 emulation."""
    cp = _cupy()
    from optcore.ot._gpu.launch import CupyKernels  # noqa: PLC0415

    rng = np.random.default_rng()
    D = padded_dim(d)
    X = np.zeros((n, D), dtype=dtype)
    X[:, :d] = rng.random((n, d)) / np.sqrt(d)
    Y = np.zeros((m, D), dtype=dtype)
    Y[:, :d] = rng.random((m, d)) / np.sqrt(d)
    h = (rng.standard_normal(m) * 0.05).astype(dtype)
    # own potentials: near (p_near) and far from (p_far) the fixed shift's trusted range, so that
    # both the one-pass path and its fallback are exercised; a zero weight too.
    w = np.full(n, 1.0 / n, dtype=dtype)
    w[0] = 0
    kern, emu = CupyKernels(dtype), NumpyKernels(np.float64)
    size = MAX_SPLITS * max(n, m)
    for p_own in ((rng.standard_normal(n) * 0.01).astype(dtype), np.full(n, 50.0, dtype=dtype)):
        pm, ps, pc = cp.full(size, np.nan, dtype=dtype), cp.full(size, np.nan), cp.full(size, np.nan)
        ns = kern.online(
            cp.asarray(X), cp.asarray(Y), cp.asarray(h), cp.asarray(p_own), cp.asarray(w), pm, ps, pc, D, 1 / 0.02, True
        )
        epm, eps_, epc = np.empty(size), np.empty(size), np.empty(size)
        ns_e = emu.online(
            X.astype(np.float64),
            Y.astype(np.float64),
            h.astype(np.float64),
            p_own,
            w,
            epm,
            eps_,
            epc,
            D,
            1 / 0.02,
            True,
        )
        _check_online(pm, ps, pc, epm, eps_, epc, ns, ns_e, n, dtype)


def _check_online(pm, ps, pc, epm, eps_, epc, ns, ns_e, n, dtype):
    assert ns == ns_e
    R = ns * n
    got, want = _lse(pm[:R].get(), ps[:R].get()), _lse(epm[:R], eps_[:R])
    assert not np.isnan(got).any()
    # float32 squared distances carry ~1e-7 relative error, divided by reg = 0.02
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())
    # the cost sums, relative to exp(LSE): sum_j exp(x_j) C_j / sum_j exp(x_j)
    cg = pc[:R].get() / ps[:R].get()
    ce = epc[:R] / eps_[:R]
    assert_allclose(cg, ce, rtol=10 * rtol, atol=10 * rtol * np.abs(ce).max())


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["log", "eps_scaling", "scaling"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,m", [(1, 31), (31, 1000), (1000, 7), (257, 300)])
def test_gpu_solver_matches_cpu(method, dtype, n, m):
    """The solver on the device against the CPU float64 result; CuPy in, CuPy out."""
    cp = _cupy()
    a, b, M, *_ = problem(n, m, seed=n + 7 * m, zero=True)
    reg = 0.05
    ref = sinkhorn(a, b, M, reg, method="log", tol=1e-12)
    res = sinkhorn(
        cp.asarray(a, dtype=dtype),
        cp.asarray(b, dtype=dtype),
        cp.asarray(M, dtype=dtype),
        reg,
        method=method,
        warn=False,
    )
    assert res.success, res.message
    assert isinstance(res.plan, cp.ndarray) and isinstance(res.f, cp.ndarray)
    assert res.plan.dtype == dtype
    P = res.plan.get()
    assert res.marginal_error <= res.tol
    tol = 1e-4 if dtype == np.float32 else 1e-8
    assert plan_l1(P, ref.plan) <= tol
    assert res.cost == pytest.approx(ref.cost, rel=tol, abs=tol)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_tiny_reg_batch_histograms_online(dtype):
    cp = _cupy()
    a, b, M, x, y = problem(200, 150, seed=21, d=3, zero=True)
    reg = 2e-3 * M.max() if dtype == np.float64 else 5e-3 * M.max()
    ref = sinkhorn(a, b, M, reg, method="eps_scaling", tol=1e-11)
    res = sinkhorn(
        cp.asarray(a, dtype),
        cp.asarray(b, dtype),
        cp.asarray(M, dtype),
        reg,
        method="eps_scaling",
        maxiter=100_000,
        warn=False,
    )
    assert res.success, res.message
    assert plan_l1(res.plan.get(), ref.plan) <= (5e-4 if dtype == np.float32 else 1e-7)
    # point clouds on the fly
    on = sinkhorn(
        cp.asarray(a, dtype),
        cp.asarray(b, dtype),
        reg=reg,
        x=cp.asarray(x, dtype),
        y=cp.asarray(y, dtype),
        method="eps_scaling",
        maxiter=100_000,
        warn=False,
    )
    assert on.success and plan_l1(on.plan.get(), ref.plan) <= (5e-4 if dtype == np.float32 else 1e-7)
    lean = sinkhorn(
        cp.asarray(a, dtype),
        cp.asarray(b, dtype),
        reg=reg,
        x=cp.asarray(x, dtype),
        y=cp.asarray(y, dtype),
        method="eps_scaling",
        maxiter=100_000,
        return_plan=False,
        warn=False,
    )
    assert lean.plan is None and lean.cost == pytest.approx(ref.cost, rel=1e-3 if dtype == np.float32 else 1e-7)
    # batch of 5 and 4 histograms
    probs = [problem(64, 48, seed=s) for s in range(5)]
    A = cp.asarray(np.stack([p[0] for p in probs]), dtype)
    Bw = cp.asarray(np.stack([p[1] for p in probs]), dtype)
    Ms = cp.asarray(np.stack([p[2] for p in probs]), dtype)
    bat = sinkhorn(A, Bw, Ms, 0.05, warn=False)
    assert bat.success and bat.plan.shape == (5, 64, 48)
    for i, p in enumerate(probs):
        assert plan_l1(bat.plan[i].get(), sinkhorn(p[0], p[1], p[2], 0.05, tol=1e-12).plan) <= (
            1e-4 if dtype == np.float32 else 1e-8
        )
    hist = np.stack([p[1] for p in probs[:4]], axis=1)
    for method in ("log", "scaling"):
        kh = sinkhorn(
            cp.asarray(probs[0][0], dtype),
            cp.asarray(hist, dtype),
            cp.asarray(probs[0][2], dtype),
            0.05,
            method=method,
            warn=False,
        )
        cpu = sinkhorn(probs[0][0], hist, probs[0][2], 0.05, tol=1e-12)
        assert kh.plan.shape == (4, 64, 48)
        assert plan_l1(kh.plan.get(), cpu.plan) <= (4e-4 if dtype == np.float32 else 4e-8)


@pytest.mark.gpu
def test_gpu_mixing_and_errors():
    cp = _cupy()
    a, b, M, x, y = problem(6, 5, seed=3)
    with pytest.raises(TypeError, match="CuPy"):
        sinkhorn(a, b, cp.asarray(M), 0.1)
    with pytest.raises(TypeError, match="CuPy"):
        sinkhorn(None, None, reg=0.1, x=cp.asarray(x), y=y)
    with pytest.raises(ValueError, match="one problem"):
        sinkhorn(cp.asarray(a), cp.asarray(np.stack([b, b], axis=1)), cp.asarray(M), 0.1, method="sns")
    with pytest.raises(ValueError, match="NaN"):
        sinkhorn(cp.asarray(a), cp.asarray(b), cp.asarray(np.where(M > 0.3, np.nan, M)), 0.1)
    with pytest.raises(ValueError, match="M instead"):
        sinkhorn(None, None, reg=0.1, x=cp.ones((3, 200)), y=cp.ones((4, 200)))
    res = sinkhorn(None, None, cp.asarray(M), 0.1, x0=None, maxiter=3, warn=False)
    assert res.status == 1 and res.nit == 3


# ------------------------------------------------------------------------------------------
# Sinkhorn–Newton–Sparse on the device (emulated on CPU; on a GPU below)
# ------------------------------------------------------------------------------------------


def sns_problem(n, seed):
    """Small reg relative to a U[0, 1] cost: where Newton beats Sinkhorn (the SNS benchmark's
    'random' family, scaled down)."""
    rng = np.random.default_rng(seed)
    M = rng.random((n, n))
    a = np.full(n, 1.0 / n)
    return a, a.copy(), M


@pytest.mark.parametrize("options", [None, {"warmup": 20}, {"density": 0.2}, {"eps_scaling": True}])
def test_emulated_sns_matches_cpu(options):
    a, b, M = sns_problem(60, seed=1)
    reg = 1 / 200
    ref = sinkhorn(a, b, M, reg, method="sns", tol=1e-10)
    res = emulated(a, b, M, reg, method="sns", tol=1e-10, options=options)
    assert res.success, res.message
    assert res.n_newton >= 1 and res.nit == res.n_newton + res.n_sinkhorn
    assert 0 < res.hessian_density <= 1 and res.cg_iterations >= 1 and res.line_search_evals >= 1
    assert res.marginal_error <= 1e-10
    assert plan_l1(res.plan, ref.plan) <= 1e-8
    assert res.cost == pytest.approx(ref.cost, rel=1e-9)
    if options and "density" in options:
        assert res.hessian_density >= 0.2


def test_emulated_sns_fewer_iterations_than_sinkhorn():
    a, b, M = sns_problem(60, seed=2)
    reg = 1 / 400
    sns = emulated(a, b, M, reg, method="sns", tol=1e-9, maxiter=5_000)
    assert sns.success and sns.nit < 200
    log = emulated(a, b, M, reg, method="log", tol=1e-9, maxiter=10 * sns.nit, options={"overrelaxation": 1.0})
    assert not log.success  # plain Sinkhorn is far from 1e-9 after 10x the iterations


def test_emulated_sns_rejects_batches_and_clouds():
    a, b, M, x, y = problem(6, 5, seed=4)
    with pytest.raises(ValueError, match="one problem"):
        emulated(a, np.stack([b, b], axis=1), M, 0.1, method="sns")
    with pytest.raises(ValueError, match="pass M"):
        emulated(a, b, None, 0.1, x=x, y=y, method="sns")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_sns_matches_cpu(dtype):
    cp = _cupy()
    a, b, M = sns_problem(300, seed=3)
    reg = 1 / 400
    tol = 1e-9 if dtype == np.float64 else 1e-5
    ref = sinkhorn(a, b, M, reg, method="sns", tol=1e-11)
    res = sinkhorn(
        cp.asarray(a, dtype), cp.asarray(b, dtype), cp.asarray(M, dtype), reg, method="sns", tol=tol, warn=False
    )
    assert res.success, res.message
    assert isinstance(res.plan, cp.ndarray) and res.plan.dtype == dtype
    assert res.n_newton >= 1
    assert plan_l1(res.plan.get(), ref.plan) <= (10 * tol if dtype == np.float64 else 1e-4)


@pytest.mark.parametrize("density", [None, 0.01, 0.3])
def test_sns_threshold_is_the_largest_admissible_power_of_two(density):
    """The bisection returns what a scan of every exponent from the top would."""
    from optcore.ot._gpu.sns import _threshold  # noqa: PLC0415

    rng = np.random.default_rng(5)
    P = rng.random((200, 150)) ** 12 / 3
    P[0, :5] = 0.0
    total = float(P.sum())
    min_keep = 450
    t = _threshold(np, P, total, min_keep, density)
    want = int(np.ceil(density * P.size)) if density else min_keep

    def admissible(e):
        kept = P >= 2.0**e
        return kept.sum() >= want and (density or P[kept].sum() >= (1 - 1e-5) * total)

    best = max(e for e in range(-160, 2) if admissible(e))
    assert t == 2.0**best
