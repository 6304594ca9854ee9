"""Sinkhorn on grids (``optcore.ot.Grid``): against the dense solver on the grid's cost matrix."""

import numpy as np
import pytest

import optcore
from optcore.ot import Grid


def _weights(shape, seed, zeros=0):
    rng = np.random.default_rng(seed)
    w = rng.random(shape) + 0.05
    if zeros:
        w.ravel()[rng.choice(w.size, zeros, replace=False)] = 0.0
    return w / w.sum()


def _same_potentials(fg, fd, gg, gd, atol):
    """Potentials agree up to the shift (f + c, g - c), with -inf at the same places."""
    fg, fd, gg, gd = (np.ravel(np.asarray(v, dtype=np.float64)) for v in (fg, fd, gg, gd))
    np.testing.assert_array_equal(np.isinf(fg), np.isinf(fd))
    np.testing.assert_array_equal(np.isinf(gg), np.isinf(gd))
    ok = np.isfinite(fd)
    c = (fg[ok] - fd[ok])[0]
    np.testing.assert_allclose(fg[ok] - c, fd[ok], rtol=0, atol=atol)
    okg = np.isfinite(gd)
    np.testing.assert_allclose(gg[okg] + c, gd[okg], rtol=0, atol=atol)


GRIDS = {
    "1d": [np.linspace(0, 1, 17)],
    "2d-uneven": [np.array([0.0, 0.1, 0.35, 0.4, 0.9, 1.0]), np.linspace(-0.5, 0.5, 5)],
    "3d": [np.linspace(0, 1, 3), np.array([0.0, 0.2, 0.7, 1.0]), np.linspace(0, 0.5, 2)],
}


@pytest.mark.parametrize("name", sorted(GRIDS))
@pytest.mark.parametrize("p", [2.0, 1.0])
def test_grid_matches_dense_solver(name, p):
    grid = Grid(GRIDS[name], p=p)
    a, b = _weights(grid.shape, 1), _weights(grid.shape, 2)
    reg = 0.05
    rg = optcore.ot.sinkhorn(a, b, grid, reg=reg, tol=1e-13)
    rd = optcore.ot.sinkhorn(a.ravel(), b.ravel(), grid.cost_matrix(), reg=reg, tol=1e-13)
    assert rg.success and rd.success
    assert rg.marginal_error <= 1e-13
    assert rg.f.shape == grid.shape and rg.plan is None
    _same_potentials(rg.f, rd.f, rg.g, rd.g, 1e-10)
    assert rg.cost == pytest.approx(rd.cost, rel=1e-10)
    assert rg.fun == pytest.approx(rd.fun, rel=1e-10, abs=1e-12)


def test_zero_masses_and_plan_on_request():
    grid = Grid(GRIDS["2d-uneven"])
    a, b = _weights(grid.shape, 3, zeros=4), _weights(grid.shape, 4, zeros=3)
    rg = optcore.ot.sinkhorn(a, b, grid, reg=0.02, tol=1e-12, return_plan=True)
    rd = optcore.ot.sinkhorn(a.ravel(), b.ravel(), grid.cost_matrix(), reg=0.02, tol=1e-12)
    assert rg.success
    _same_potentials(rg.f, rd.f, rg.g, rd.g, 1e-10)
    assert rg.plan.shape == (grid.size, grid.size)
    np.testing.assert_allclose(rg.plan, rd.plan, atol=1e-12)
    # The marginal error the result states holds on the plan it returns.
    err = np.abs(rg.plan.sum(1) - a.ravel()).sum() + np.abs(rg.plan.sum(0) - b.ravel()).sum()
    assert err <= 1e-12


def test_small_reg_is_stable_and_eps_scaling_agrees():
    grid = Grid([np.linspace(0, 1, 24)] * 2)
    x = grid.points()
    a = np.exp(-((x - 0.3) ** 2).sum(1) / 0.01).reshape(grid.shape) + 1e-15
    b = np.exp(-((x - 0.7) ** 2).sum(1) / 0.02).reshape(grid.shape) + 1e-15
    a, b = a / a.sum(), b / b.sum()
    r1 = optcore.ot.sinkhorn(a, b, grid, reg=1e-4, tol=1e-6)
    r2 = optcore.ot.sinkhorn(a, b, grid, reg=1e-4, tol=1e-6, method="eps_scaling")
    assert r1.success and r2.success
    assert np.all(np.isfinite(r1.f)) and r1.marginal_error <= 1e-6
    assert r2.stages > 1
    assert r1.cost == pytest.approx(r2.cost, rel=1e-4)


def test_float32_keeps_its_dtype():
    grid = Grid([np.linspace(0, 1, 12)] * 2)
    a = _weights(grid.shape, 5).astype(np.float32)
    b = _weights(grid.shape, 6).astype(np.float32)
    res = optcore.ot.sinkhorn(a, b, grid, reg=0.01)
    assert res.success and res.f.dtype == np.float32 and res.tol == 1e-5
    r64 = optcore.ot.sinkhorn(a.astype(np.float64), b.astype(np.float64), grid, reg=0.01)
    assert res.cost == pytest.approx(r64.cost, rel=1e-4)


def test_bit_identical_for_any_workers_and_callback_stop():
    grid = Grid([np.linspace(0, 1, 20), np.linspace(0, 2, 15)])
    a, b = _weights(grid.shape, 7), _weights(grid.shape, 8)
    r1 = optcore.ot.sinkhorn(a, b, grid, reg=0.01, workers=1)
    r2 = optcore.ot.sinkhorn(a, b, grid, reg=0.01, workers=2)
    assert np.array_equal(r1.f, r2.f) and r1.nit == r2.nit

    def stop(res):
        raise StopIteration

    r3 = optcore.ot.sinkhorn(a, b, grid, reg=0.01, callback=stop, check_every=1, warn=False)
    assert r3.status == 99 and not r3.success and r3.nit <= 2


def test_unbalanced_grid_matches_dense_unbalanced():
    grid = Grid(GRIDS["2d-uneven"])
    a, b = _weights(grid.shape, 9), 1.7 * _weights(grid.shape, 10)
    rg = optcore.ot.sinkhorn(a, b, grid, reg=0.05, reg_m=(0.5, 2.0), tol=1e-12)
    rd = optcore.ot.sinkhorn(a.ravel(), b.ravel(), grid.cost_matrix(), reg=0.05, reg_m=(0.5, 2.0), tol=1e-12)
    assert rg.success and rd.success
    # Unbalanced potentials are unique (no shift).
    np.testing.assert_allclose(rg.f.ravel(), rd.f, atol=1e-10)
    np.testing.assert_allclose(rg.g.ravel(), rd.g, atol=1e-10)
    assert rg.fun == pytest.approx(rd.fun, rel=1e-10)
    assert rg.mass == pytest.approx(rd.mass, rel=1e-10)


@pytest.mark.parametrize(
    "axes, match",
    [
        ([[0.0, 1.0, 1.0]], "axes\\[0\\]"),
        ([[0.0, 2.0, 1.0]], "strictly increasing"),
        ([[0.0, 1.0], [0.0, np.nan]], "axes\\[1\\]"),
        ([[0.0, np.inf]], "axes\\[0\\]"),
        ([[]], "axes\\[0\\]"),
        ([], "axes"),
    ],
)
def test_bad_grids_are_named(axes, match):
    with pytest.raises(ValueError, match=match):
        Grid(axes)


def test_bad_arguments_are_named():
    grid = Grid([np.linspace(0, 1, 4)] * 2)
    a = np.full(16, 1 / 16)
    with pytest.raises(ValueError, match="`p`"):
        Grid([np.linspace(0, 1, 4)], p=0)
    with pytest.raises(ValueError, match="`a`"):
        optcore.ot.sinkhorn(np.full(15, 1 / 15), a, grid, reg=0.1)
    with pytest.raises(ValueError, match="`b`"):
        optcore.ot.sinkhorn(a, np.full(9, 1 / 9), grid, reg=0.1)
    with pytest.raises(ValueError, match="reg"):
        optcore.ot.sinkhorn(a, a, grid, reg=0.0)
    with pytest.raises(ValueError, match="method"):
        optcore.ot.sinkhorn(a, a, grid, reg=0.1, method="sns")
    with pytest.raises(ValueError, match="same total mass"):
        optcore.ot.sinkhorn(a, 2 * a, grid, reg=0.1)
    with pytest.raises(ValueError, match="reg_m"):
        optcore.ot.sinkhorn(a, a, grid, reg=0.1, reg_m=-1.0)


def test_an_axis_whose_kernel_cannot_fit_is_a_memory_error_not_an_abort():
    # A 1-D axis of 3e5 points needs a 720 GB kernel: it used to abort the interpreter (run in a
    # subprocess, so a regression fails this test instead of killing the test run).
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import numpy as np, optcore
        n = 300_000
        g = optcore.ot.Grid([np.linspace(0, 1, n)])
        a = np.full(n, 1 / n)
        for kw in ({}, {"reg_m": 1.0}):
            try:
                optcore.ot.sinkhorn(a, a, g, reg=0.1, maxiter=2, **kw)
            except MemoryError as e:
                print("MemoryError", e)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("MemoryError") == 2 and "1-D kernel" in out.stdout
