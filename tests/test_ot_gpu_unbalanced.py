"""Unbalanced OT (finite ``reg_m``) and grids in the GPU driver.

Without a GPU the driver runs on NumPy through the kernel emulation
(:func:`optcore.ot._device.sinkhorn_emulated`) and is checked against the Rust CPU solvers
(``optcore.ot.sinkhorn`` with ``reg_m`` / a :class:`~optcore.ot.Grid`); the modified
``sk_finalize`` compiles under NVRTC with the argument list the launcher passes. With CuPy and a
device (marked ``gpu``) the same comparisons run on the device.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose
from test_api import NVRTC_OPTIONS, nvrtc  # noqa: F401  (the NVRTC fixture)

from optcore import _core
from optcore.ot import Grid, sinkhorn
from optcore.ot._device import sinkhorn_emulated
from optcore.ot._gpu.emulate import NumpyKernels

DEFAULTS = dict(maxiter=20_000, warn=False)


def emulated(a, b, M, reg, **kw):
    return sinkhorn_emulated(a, b, M, reg, **{**DEFAULTS, **kw})


def problem(n, m, seed, zero=False):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    if zero:
        a[1], b[-1] = 0.0, 0.0
    return a / a.sum(), 1.3 * b / b.sum(), M, x, y


def relaxed_residual(plan, f, g, a, b, reg, reg_m):
    """The residual of the CPU loop, recomputed here from the returned plan and potentials."""
    ra, rb = reg_m
    P = np.asarray(plan, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = np.where(a > 0, a * np.exp(-(f.astype(np.float64) - reg * np.log(a)) / ra), 0.0)
        tb = np.where(b > 0, b * np.exp(-(g.astype(np.float64) - reg * np.log(b)) / rb), 0.0)
    return np.abs(P.sum(1) - ta).sum() + np.abs(P.sum(0) - tb).sum()


# ------------------------------------------------------------------------------------------
# Unbalanced, dense cost and point clouds
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["log", "eps_scaling"])
@pytest.mark.parametrize("reg_m", [0.5, (0.3, 2.0), (np.inf, 1.0), (1.0, np.inf)])
@pytest.mark.parametrize("n,m", [(31, 17), (3, 40)])
def test_emulated_unbalanced_matches_cpu_f64(method, reg_m, n, m):
    """Potentials, plan, cost, objective and mass of the Rust unbalanced solver to 1e-10."""
    a, b, M, *_ = problem(n, m, seed=n + m)
    reg = 0.05
    ref = sinkhorn(a, b, M, reg, reg_m=reg_m, method="log", tol=1e-13, maxiter=50_000)
    res = emulated(a, b, M, reg, reg_m=reg_m, method=method, tol=1e-12)
    assert ref.success and res.success, (ref.message, res.message)
    assert_allclose(res.f, ref.f, rtol=0, atol=1e-10)
    assert_allclose(res.g, ref.g, rtol=0, atol=1e-10)
    assert np.abs(res.plan - ref.plan).sum() <= 1e-10
    assert res.cost == pytest.approx(ref.cost, rel=1e-10)
    assert res.fun == pytest.approx(ref.fun, rel=1e-10, abs=1e-12)
    assert res.mass == pytest.approx(ref.mass, rel=1e-10)
    assert res.reg_m == ref.reg_m
    # The residual is the CPU loop's, measured on what is returned.
    assert res.marginal_error <= res.tol
    pair = ref.reg_m
    assert res.marginal_error == pytest.approx(
        relaxed_residual(res.plan, res.f, res.g, a, b, reg, pair), rel=1e-6, abs=1e-15
    )
    # The mass is a's where that marginal is a constraint, else it moves.
    if np.isinf(pair[0]):
        assert res.mass == pytest.approx(1.0, rel=1e-11)
    else:
        assert abs(res.mass - 1.0) > 1e-3


def test_emulated_unbalanced_f32_and_zero_weights():
    """float32 against the float64 CPU solution (looser); zero weights give -inf potentials
    and zero rows/columns."""
    a, b, M, *_ = problem(30, 20, seed=4, zero=True)
    reg, reg_m = 0.05, (0.7, 0.4)
    ref = sinkhorn(a, b, M, reg, reg_m=reg_m, tol=1e-13)
    res = emulated(a.astype(np.float32), b.astype(np.float32), M.astype(np.float32), reg, reg_m=reg_m)
    assert res.success, res.message
    assert res.plan.dtype == np.float32 and res.f.dtype == np.float32
    assert res.marginal_error <= res.tol == 1e-5
    assert np.isneginf(res.f[1]) and np.isneginf(res.g[-1])
    assert np.all(res.plan[1] == 0) and np.all(res.plan[:, -1] == 0)
    live_f, live_g = np.isfinite(ref.f), np.isfinite(ref.g)
    assert_allclose(res.f[live_f], ref.f[live_f], atol=2e-5)
    assert_allclose(res.g[live_g], ref.g[live_g], atol=2e-5)
    assert np.abs(res.plan - ref.plan).sum() <= 1e-4
    assert res.mass == pytest.approx(ref.mass, rel=1e-5)
    assert res.fun == pytest.approx(ref.fun, rel=1e-4)


def test_emulated_unbalanced_online_and_lean():
    """Point clouds = the dense cost; without the plan the residual, cost, objective and mass
    come from the kernel measurement on the returned potentials (same numbers)."""
    a, b, M, x, y = problem(33, 29, seed=5)
    dense = emulated(a, b, M, 0.02, reg_m=0.4, tol=1e-12)
    online = emulated(a, b, None, 0.02, x=x, y=y, reg_m=0.4, tol=1e-12)
    lean = emulated(a, b, M, 0.02, reg_m=0.4, tol=1e-12, return_plan=False)
    assert dense.success and online.success and lean.success
    assert lean.plan is None
    for r in (online, lean):
        assert_allclose(r.f, dense.f, rtol=0, atol=1e-11)
        for key in ("cost", "fun", "mass"):
            assert r[key] == pytest.approx(dense[key], rel=1e-10), key
        assert r.marginal_error <= r.tol


def test_emulated_unbalanced_limit_callback_and_status():
    """The iteration limit and a callback stop report as on the CPU; a large reg_m approaches
    the balanced solution."""
    a, b, M, *_ = problem(20, 20, seed=8)
    b = b / b.sum()
    res = emulated(a, b, M, 0.01, reg_m=0.1, maxiter=3)
    assert res.status == 1 and not res.success and res.nit == 3
    seen = []

    def cb(r):
        seen.append(r.nit)
        if r.nit >= 20:
            raise StopIteration

    res = emulated(a, b, M, 0.01, reg_m=0.1, callback=cb, tol=1e-14)
    assert res.status == 99 and seen == [10, 20] and res.nit == 20
    near = emulated(a, b, M, 0.05, reg_m=1e5, tol=1e-10)
    bal = sinkhorn(a, b, M, 0.05, tol=1e-12)
    assert near.success and np.abs(near.plan - bal.plan).sum() <= 1e-4


def test_emulated_callback_potentials_are_those_of_the_cpu_callback():
    """A single problem's callback sees 1-D potentials (a grid's flat), as on the CPU."""
    a, b, M, *_ = problem(6, 5, seed=1)
    grid = GRIDS["2d"]
    ga, gb = grid_weights(grid, seed=1)
    cases = (
        ((a, b / 1.3, M), {}),
        ((a, b / 1.3, M), {"method": "sns", "options": {"warmup": 2, "switch_tol": 1.0}, "tol": 1e-12}),
        ((a, b, M), {"reg_m": 0.5}),
        ((ga, gb, grid), {"return_plan": False}),
    )
    for args, kw in cases:
        shapes = {"cpu": [], "emu": []}
        for name, solve in (("cpu", sinkhorn), ("emu", emulated)):
            solve(*args, 0.1, callback=lambda r, name=name: shapes[name].append((r.f.shape, r.g.shape)), **kw)
        want = ((args[0].size,), (args[1].size,))
        assert set(shapes["emu"]) == {want} and set(shapes["cpu"]) <= {want}, kw


def test_emulated_unbalanced_argument_errors():
    """What the CPU path refuses, refused with its messages."""
    a, b, M, *_ = problem(6, 5, seed=1)
    for method in ("scaling", "sns"):
        with pytest.raises(ValueError, match="`reg_m` supports method 'log' or 'eps_scaling'"):
            emulated(a, b, M, 0.1, reg_m=1.0, method=method)
    with pytest.raises(ValueError, match="one problem with a 2-D cost"):
        emulated(a, b, np.stack([M, M]), 0.1, reg_m=1.0)
    with pytest.raises(ValueError, match="one target histogram"):
        emulated(a, np.stack([b, b], axis=1), M, 0.1, reg_m=1.0)
    with pytest.raises(ValueError, match="positive total mass"):
        emulated(a, np.zeros_like(b), M, 0.1, reg_m=1.0)


def test_balanced_finalize_is_unchanged_bit_for_bit():
    """tau = 1, rho = inf is the old half-iteration: the same bits as the update written out."""
    rng = np.random.default_rng(2)
    k = NumpyKernels(np.float64)
    R = 37
    pm, ps = rng.normal(size=R), rng.random(R) + 0.5
    w = rng.random(R)
    w[3] = 0.0
    p_old = rng.normal(size=R)
    p_new = np.empty(R)
    err, cost, dot, marg = np.zeros(1), np.zeros(1), np.zeros(1), np.empty(R)
    k.finalize(pm, ps, ps, 1, 1, R, w, R, p_old, p_new, err, cost, dot, marg, np.zeros(1, int), 0.1, 1.0, 1 | 2 | 8)
    L = 0.1 * (pm + np.log(ps))
    with np.errstate(divide="ignore"):
        want = np.where(w > 0, 0.1 * np.log(w) - L, -np.inf)
    assert np.array_equal(p_new, want)
    assert err[0] == np.abs(np.where(np.isfinite(want), np.exp((want + L) / 0.1), 0) - w).sum()
    assert np.array_equal(marg, np.where(np.isfinite(want), np.exp((want + L) / 0.1), 0))
    # tau < 1: the unbalanced update; rho: the relaxed target.
    k.finalize(pm, ps, ps, 1, 1, R, w, R, p_old, p_new, err, cost, dot, marg, np.zeros(1, int), 0.1, 1.0, 1, 0.8, 0.4)
    with np.errstate(divide="ignore"):
        assert np.array_equal(p_new, np.where(w > 0, 0.1 * np.log(w) - 0.8 * L, -np.inf))


# ------------------------------------------------------------------------------------------
# Grids
# ------------------------------------------------------------------------------------------

GRIDS = {
    "1d": Grid(np.linspace(0, 1, 23)),
    "2d": Grid([np.linspace(0, 1, 7), np.sort(np.random.default_rng(0).random(5))]),
    "3d": Grid([np.linspace(0, 1, 4), np.linspace(0, 0.5, 3), np.linspace(-1, 1, 5)]),
    "p1": Grid([np.linspace(0, 1, 6), np.linspace(0, 1, 5)], p=1.0),
}


def grid_weights(grid, seed, zero=False):
    rng = np.random.default_rng(seed)
    a, b = rng.random(grid.shape) + 0.1, rng.random(grid.shape) + 0.1
    if zero:
        a.flat[2], b.flat[-1] = 0.0, 0.0
    return a / a.sum(), b / b.sum()


@pytest.mark.parametrize("name", sorted(GRIDS))
@pytest.mark.parametrize("reg_m", [None, 0.5, (np.inf, 0.3)])
def test_emulated_grid_matches_cpu(name, reg_m):
    """Same potentials (grid-shaped), cost, objective and mass as the Rust grid solver, to 1e-10."""
    grid = GRIDS[name]
    a, b = grid_weights(grid, seed=len(name), zero=name == "2d")
    reg = 0.05
    ref = sinkhorn(a, b, grid, reg, reg_m=reg_m, tol=1e-13, maxiter=50_000)
    res = emulated(a, b, grid, reg, reg_m=reg_m, tol=1e-12, return_plan="auto")
    assert ref.success and res.success, (ref.message, res.message)
    assert res.f.shape == res.g.shape == grid.shape and res.plan is None and res.grid is grid
    live = np.isfinite(ref.f)
    shift = 0.0 if reg_m is not None else (res.f[live] - ref.f[live]).mean()  # balanced: f + c, g - c
    assert_allclose(res.f[live], ref.f[live] + shift, rtol=0, atol=1e-10)
    assert_allclose(res.g[np.isfinite(ref.g)], ref.g[np.isfinite(ref.g)] - shift, rtol=0, atol=1e-10)
    assert np.array_equal(np.isneginf(res.f), np.isneginf(ref.f))
    assert res.cost == pytest.approx(ref.cost, rel=1e-10)
    assert res.fun == pytest.approx(ref.fun, rel=1e-9, abs=1e-12)
    assert res.mass == pytest.approx(ref.mass, rel=1e-10)
    assert res.marginal_error <= res.tol
    # The dense form of the same problem (the grid's cost matrix) agrees.
    dense = sinkhorn(a.ravel(), b.ravel(), grid.cost_matrix(), reg, reg_m=reg_m, tol=1e-13, maxiter=50_000)
    assert res.cost == pytest.approx(dense.cost, rel=1e-9)


def test_emulated_grid_plan_f32_and_eps_scaling():
    """return_plan=True forms the dense plan of the returned potentials; float32 and
    eps_scaling work on grids."""
    grid = GRIDS["2d"]
    a, b = grid_weights(grid, seed=3)
    ref = sinkhorn(a, b, grid, 0.02, tol=1e-13, return_plan=True)
    res = emulated(a, b, grid, 0.02, method="eps_scaling", tol=1e-12, return_plan=True)
    assert res.success and res.plan.shape == (grid.size, grid.size)
    assert np.abs(res.plan - ref.plan).sum() <= 1e-10
    r32 = emulated(a.astype(np.float32), b.astype(np.float32), grid, 0.02, reg_m=0.5)
    c32 = sinkhorn(a, b, grid, 0.02, reg_m=0.5, tol=1e-13)
    assert r32.success and r32.f.dtype == np.float32 and r32.marginal_error <= 1e-5
    assert_allclose(r32.f, c32.f, atol=1e-5)
    assert r32.cost == pytest.approx(c32.cost, rel=1e-4)


def test_emulated_grid_argument_errors():
    grid = GRIDS["2d"]
    a, b = grid_weights(grid, seed=3)
    with pytest.raises(ValueError, match="a Grid supports method"):
        emulated(a, b, grid, 0.1, method="scaling")
    with pytest.raises(ValueError, match="grid's shape"):
        emulated(a[:-1], b, grid, 0.1)


# ------------------------------------------------------------------------------------------
# The modified kernel under NVRTC
# ------------------------------------------------------------------------------------------


def test_finalize_compiles_with_the_launchers_arguments(nvrtc):  # noqa: F811
    """sk_finalize<float/double> compiles, and its PTX entry takes exactly as many parameters
    as CupyKernels.finalize passes (a mismatch would read garbage on the device)."""
    from optcore.ot._gpu.launch import CupyKernels  # noqa: PLC0415

    captured = []

    class Fake(CupyKernels):
        def __init__(self, dtype):  # no CuPy: record the launch instead
            self.dtype, self.t = np.dtype(dtype), "double" if dtype == np.float64 else "float"

        def _fn(self, expr):
            return lambda grid, block, args: captured.append((expr, args))

    for dtype in (np.float32, np.float64):
        x = np.zeros(4, dtype=dtype)
        d = np.zeros(4)
        Fake(dtype).finalize(x, d, d, 1, 1, 4, x, 4, x, x, d, d, d, d, np.zeros(1, np.int32), 0.1, 1.0, 1, 0.5, 2.0)
    exprs = [e for e, _ in captured]
    result, log, ptx, lowered = nvrtc.compile(_core.kernel_source("ot_sinkhorn.cu"), "ot.cu", exprs, NVRTC_OPTIONS)
    assert result == 0, log
    for expr, args in captured:
        entry = re.search(re.escape(f".entry {lowered[expr]}(") + r"(.*?)\)", ptx, re.S)
        assert entry is not None, expr
        assert entry.group(1).count(".param") == len(args), (expr, entry.group(1))


# ------------------------------------------------------------------------------------------
# On a device (CuPy and a GPU)
# ------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_finalize_matches_emulation(dtype):
    """sk_finalize with tau < 1, a finite rho and the marginal output, against the emulation,
    on poisoned outputs."""
    import cupy as cp  # noqa: PLC0415

    from optcore.ot._gpu.launch import CupyKernels  # noqa: PLC0415

    rng = np.random.default_rng(11)
    B, L, ns = 2, 300, 3
    R = B * L
    pm = rng.normal(size=ns * R).astype(dtype)
    ps, pc = rng.random(ns * R) + 0.1, rng.random(ns * R)
    w = rng.random(R).astype(dtype)
    w[5] = 0
    p_old = rng.normal(size=R).astype(dtype)
    outs = {}
    for name, k, x in (("emu", NumpyKernels(dtype), np), ("gpu", CupyKernels(dtype), cp)):
        arrs = [x.asarray(v) for v in (pm, ps, pc, w, p_old)]
        p_new, marg = x.full(R, np.nan, dtype=dtype), x.full(R, np.nan)
        acc = [x.zeros(B) for _ in range(3)]
        bad = x.zeros(1, dtype=np.int32)
        k.finalize(
            *arrs[:3], ns, B, L, arrs[3], L, arrs[4], p_new, *acc, marg, bad, 0.05, 1.3, 1 | 2 | 4 | 8, 0.7, 0.35
        )
        outs[name] = [np.asarray(v.get() if x is cp else v) for v in (p_new, marg, *acc)]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for e, g in zip(outs["emu"], outs["gpu"]):
        assert_allclose(g, e, rtol=rtol, atol=1e-300)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_unbalanced_and_grid_match_cpu(dtype):
    """CuPy in, CuPy out: unbalanced dense, point clouds and a grid against the CPU solvers."""
    import cupy as cp  # noqa: PLC0415

    a, b, M, x, y = problem(257, 300, seed=9, zero=True)
    reg, reg_m = 0.05, (0.5, 2.0)
    ref = sinkhorn(a, b, M, reg, reg_m=reg_m, tol=1e-12)
    tol = 1e-4 if dtype == np.float32 else 1e-9
    c = [cp.asarray(v, dtype=dtype) for v in (a, b, M, x, y)]
    for res in (
        sinkhorn(c[0], c[1], c[2], reg, reg_m=reg_m, warn=False),
        sinkhorn(c[0], c[1], None, reg, x=c[3], y=c[4], reg_m=reg_m, warn=False),
    ):
        assert res.success, res.message
        assert isinstance(res.plan, cp.ndarray) and res.plan.dtype == dtype
        assert float(cp.abs(res.plan - cp.asarray(ref.plan)).sum()) <= tol
        assert res.mass == pytest.approx(ref.mass, rel=tol) and res.fun == pytest.approx(ref.fun, rel=tol)
    grid = GRIDS["3d"]
    ga, gb = grid_weights(grid, seed=2, zero=True)
    gref = sinkhorn(ga, gb, grid, reg, reg_m=0.5, tol=1e-12)
    res = sinkhorn(cp.asarray(ga, dtype=dtype), cp.asarray(gb, dtype=dtype), grid, reg, reg_m=0.5, warn=False)
    assert res.success, res.message
    assert isinstance(res.f, cp.ndarray) and res.f.shape == grid.shape and res.plan is None
    live = np.isfinite(gref.f)
    assert_allclose(res.f.get()[live], gref.f[live], atol=1e-4 if dtype == np.float32 else 1e-9)
    assert res.cost == pytest.approx(gref.cost, rel=tol)
