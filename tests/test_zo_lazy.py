"""The best point and the adaptive step's previous iterate kept as seeds and replays (issue 26):
the best point reported is bit for bit the best point evaluated, and a step back returns to
exactly the previous center, for every gradient method, while the state holds at most the
iterate and one older iterate."""

from __future__ import annotations

import numpy as np
import pytest

from optcore import zo


def rugged(x):
    """A smooth bowl plus a fine ripple: lucky points stay best for many steps, so the previous
    iterate is often several replayed steps from the best point's center."""
    x = np.asarray(x, np.float64)
    return float(np.sum((x - 0.3) ** 2) + 0.05 * np.sin(2e3 * np.sum(x * np.arange(1, x.size + 1))))


def smooth(x):
    x = np.asarray(x, np.float64)
    return float(np.sum((x - 0.3) ** 2) + 0.5 * np.sin(3 * x).sum())


CASES = [
    ("gaussian", np.float64, None, {}),
    ("gaussian", np.float32, None, {}),
    ("gaussian", np.float64, (-0.2, 0.25), {}),
    ("gaussian", np.float64, None, {"momentum": 0.9}),
    ("sphere", np.float64, None, {"scheme": "central"}),
    ("sphere", np.float32, (-0.5, 0.2), {}),
    ("signsgd", np.float32, None, {}),
    ("perturbed", np.float64, None, {}),
    ("cge", np.float64, (-1.0, 0.25), {"n_coords": 3}),
    ("adamm", np.float64, None, {}),
]
IDS = [f"{m}-{np.dtype(t).name}-{'box' if b else 'free'}-{'.'.join(o) or 'default'}" for m, t, b, o in CASES]


class Recorder:
    """A per-point objective that keeps a copy of every point and its value; with ``fails``,
    every ``fails``-th evaluation fails (``+inf``)."""

    def __init__(self, f, fails=0):
        self.f, self.points, self.values, self.fails = f, [], [], fails

    def __call__(self, x):
        v = self.f(x)
        if self.fails and (len(self.values) + 1) % self.fails == 0:
            v = np.inf
        self.points.append(np.array(x, copy=True))
        self.values.append(v)
        return v

    def argmin(self):
        return self.points[int(np.argmin(self.values))]


def batch_size(method, opts, q):
    if method == "cge":
        return 1 + opts["n_coords"]
    central = opts.get("scheme", "central" if method == "perturbed" else "forward") == "central"
    return 1 + (2 * q if central else q)


@pytest.mark.parametrize("f, fails", [(rugged, 0), (smooth, 0), (rugged, 5)], ids=["rugged", "smooth", "failing"])
@pytest.mark.parametrize("method, dtype, bounds, opts", CASES, ids=IDS)
def test_best_point_and_step_back_are_the_evaluated_points(f, fails, method, dtype, bounds, opts):
    # "failing": every 5th evaluation is +inf (nan_as_inf's failed evaluation): an iteration
    # with a failed perturbed point stays where it is, one with a failed center steps back.
    q = 3
    x0 = np.linspace(-0.4, 0.2, 7).astype(dtype)
    rec = Recorder(f, fails)
    kw = {} if method == "cge" else {"q": q}
    res = zo.minimize(
        rec, x0, method=method, bounds=bounds, options=opts, rng=5, maxiter=120, nan_as_inf=True, warn=False, **kw
    )
    values = np.array(rec.values)
    # The reported best point is the first point that reached the smallest value, bit for bit.
    assert res.fun == values.min()
    assert res.x.dtype == dtype and res.x.tobytes() == rec.argmin().tobytes()
    # Every step back returns to exactly the previous center (the values are deterministic, so
    # f_prev is the previous center's value).
    B = batch_size(method, opts, q)
    assert len(rec.points) == res.nfev == B * res.nit
    centers = rec.points[::B]
    fc = values[::B]
    backs = 0
    for k in range(1, len(centers) - 1):
        if fc[k] > fc[k - 1]:
            backs += 1
            assert centers[k + 1].tobytes() == centers[k - 1].tobytes(), k
    assert backs > 0


@pytest.mark.parametrize("method, dtype, bounds, opts", CASES[:7], ids=IDS[:7])
def test_ask_tell_best_is_the_best_told_point_at_every_iteration(method, dtype, bounds, opts):
    # Optimizer.best regenerates the best point from whatever the state keeps (the iterate, the
    # anchor, a rejected step from it, or a vector) at every iteration.
    x0 = np.linspace(-0.4, 0.2, 6).astype(dtype)
    opt = zo.Optimizer(method=method, x0=x0, bounds=bounds, options=opts, q=2, rng=11)
    pts, vals = [], []
    for _ in range(60):
        X = opt.ask()
        v = np.array([rugged(x) for x in X])
        pts.extend(np.array(X, copy=True))
        vals.extend(v)
        opt.tell(X, v)
        xb, fb = opt.best
        assert fb == min(vals)
        assert xb.tobytes() == pts[int(np.argmin(vals))].tobytes()


def test_fixed_step_best_point_is_an_evaluated_point():
    rec = Recorder(rugged)
    res = zo.minimize(rec, np.zeros(5), lr=1e-2, q=2, rng=1, maxiter=80, warn=False)
    assert res.fun == min(rec.values) and res.x.tobytes() == rec.argmin().tobytes()
