"""Point clouds on the CPU without an n x m array (issue 17 item 10): ``x=``/``y=`` with
``return_plan=False`` and ``method="log"`` run the core's online log-domain Sinkhorn."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import optcore


def _clouds(n, m, d, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)).astype(dtype), rng.random((m, d)).astype(dtype)


def _dense_M(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def _implied_error(res, x, y, a, b):
    """The marginal error of exp((f + g - M) / reg), in float64."""
    M = _dense_M(x.astype(np.float64), y.astype(np.float64))
    P = np.exp((res.f.astype(np.float64)[:, None] + res.g.astype(np.float64)[None, :] - M) / res.reg)
    return np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum(), P, M


@pytest.mark.parametrize("maxiter", [5, 10_000])
def test_online_matches_dense_log_path_f64(maxiter):
    x, y = _clouds(40, 55, 3)
    a = np.random.default_rng(1).random(40)
    a /= a.sum()
    b = np.full(55, 1 / 55)
    kw = dict(reg=0.05, tol=1e-12, maxiter=maxiter, warn=False, options={"overrelaxation": 1.0})
    on = optcore.ot.sinkhorn(a, b, x=x, y=y, return_plan=False, **kw)
    de = optcore.ot.sinkhorn(a, b, x=x, y=y, return_plan=True, **kw)
    assert on.plan is None and on.x is None
    assert on.status == de.status and on.success == de.success
    if maxiter == 5:
        # Converged runs may differ by a confirmation near the rounding floor.
        assert on.nit == de.nit == 5
    # Potentials are unique up to f + c, g - c.
    c = on.f[0] - de.f[0]
    np.testing.assert_allclose(on.f - c, de.f, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(on.g + c, de.g, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(on.cost, de.cost, rtol=1e-10)
    np.testing.assert_allclose(on.fun, de.fun, rtol=1e-10)
    if maxiter == 5:
        np.testing.assert_allclose(on.marginal_error, de.marginal_error, rtol=1e-10)
    err, P, M = _implied_error(on, x, y, a, b)
    np.testing.assert_allclose(on.marginal_error, err, rtol=1e-8, atol=1e-15)
    np.testing.assert_allclose(on.cost, (P * M).sum(), rtol=1e-10)


def test_online_default_overrelaxation_converges():
    x, y = _clouds(60, 50, 2, seed=3)
    res = optcore.ot.sinkhorn(None, None, x=x, y=y, reg=0.01, return_plan=False)
    assert res.success and res.status == 0
    assert res.marginal_error <= res.tol
    err, _, _ = _implied_error(res, x, y, np.full(60, 1 / 60), np.full(50, 1 / 50))
    assert err <= 1.01 * res.tol


def test_online_float32():
    x, y = _clouds(50, 70, 2, seed=2, dtype=np.float32)
    res = optcore.ot.sinkhorn(None, None, x=x, y=y, reg=0.05, return_plan=False)
    assert res.f.dtype == np.float32 and res.g.dtype == np.float32
    assert res.success and res.marginal_error <= 1e-5
    ref = optcore.ot.sinkhorn(None, None, x=x.astype(np.float64), y=y.astype(np.float64), reg=0.05, return_plan=False)
    np.testing.assert_allclose(res.cost, ref.cost, rtol=1e-4)


def test_online_zero_weights():
    x, y = _clouds(30, 20, 2, seed=4)
    a = np.full(30, 1 / 28)
    a[[3, 7]] = 0
    b = np.full(20, 1 / 19)
    b[5] = 0
    res = optcore.ot.sinkhorn(a, b, x=x, y=y, reg=0.05, return_plan=False)
    assert res.success
    assert np.isneginf(res.f[[3, 7]]).all() and np.isneginf(res.g[5])


def test_online_callback_count_matches_dense():
    x, y = _clouds(30, 40, 2, seed=5)
    counts = []
    for plan in (False, True):
        seen = []
        optcore.ot.sinkhorn(
            None,
            None,
            x=x,
            y=y,
            reg=1e-3,
            tol=1e-15,
            maxiter=23,
            check_every=4,
            callback=lambda r, seen=seen: seen.append(r.nit),
            return_plan=plan,
            warn=False,
            options={"overrelaxation": 1.0},
        )
        counts.append(seen)
    assert counts[0] == counts[1] == [4, 8, 12, 16, 20]


def test_online_stop_iteration():
    x, y = _clouds(30, 40, 2, seed=6)

    def cb(r):
        assert r.f.shape == (30,) and r.g.shape == (40,)
        if r.nit == 3:
            raise StopIteration

    res = optcore.ot.sinkhorn(None, None, x=x, y=y, reg=1e-3, check_every=1, callback=cb, return_plan=False)
    assert res.status == 99 and res.nit == 3 and not res.success
    assert np.isfinite(res.marginal_error) and res.plan is None


def test_online_bit_identical_for_any_workers():
    x, y = _clouds(300, 200, 2, seed=7)
    r1 = optcore.ot.sinkhorn(None, None, x=x, y=y, reg=0.01, return_plan=False, maxiter=40, warn=False, workers=1)
    r2 = optcore.ot.sinkhorn(None, None, x=x, y=y, reg=0.01, return_plan=False, maxiter=40, warn=False, workers=2)
    assert r1.f.tobytes() == r2.f.tobytes() and r1.g.tobytes() == r2.g.tobytes()
    assert r1.marginal_error == r2.marginal_error


def test_issue17_item10_point_clouds_stay_small():
    """n = m = 20000, d = 2, return_plan=False: no n x m array (3.2 GB in float64)."""
    code = textwrap.dedent(
        """
        import resource, numpy as np, optcore
        rng = np.random.default_rng(0)
        x, y = rng.random((20000, 2)), rng.random((20000, 2))
        res = optcore.ot.sinkhorn(None, None, x=x, y=y, reg=0.05, maxiter=1, return_plan=False, warn=False)
        assert res.plan is None and res.nit == 1 and np.isfinite(res.marginal_error), res
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    peak_mb = int(out.stdout.split()[-1]) / 1024
    assert peak_mb < 1024, f"peak RSS {peak_mb:.0f} MB"
