"""Peak memory of ``zo.minimize`` at large d (issue 26): the gradient methods hold the iterate,
one older iterate (the anchor, from which the best point and the adaptive step's previous
iterate are regenerated) and the point handed to ``fun``, never a float64 direction or estimate
(they are generated chunk by chunk)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from optcore import zo

# The peak resident memory from /proc/self/status (VmHWM) in a fresh process, in copies of x
# (float32) beyond the memory before the call.
SCRIPT = """
import sys, numpy as np
from optcore import zo
def hwm():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM"))
d, q, lr, method, iters = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
rugged = len(sys.argv) > 6
x0 = np.ones(d, np.float32)  # touched: resident before the run
w = np.arange(d, dtype=np.float32)  # in place below: no temporary raises the peak before the run
w /= d
w += 1
if rugged:  # lucky points stay best for many steps: the previous iterate is replayed
    f = lambda v: float(np.dot(v, v)) * (1 + 1e-3 * np.sin(1e4 * float(np.dot(v, w[: v.size]))))
else:
    f = lambda v: float(np.dot(v, v))
zo.minimize(f, x0[:10], q=2, maxfev=6, warn=False)
base = hwm()
kw = {} if lr == "adaptive" else {"lr": float(lr)}
res = zo.minimize(f, x0, method=method, q=q, maxiter=iters, rng=0, warn=False, **kw)
assert res.nit == iters
print((hwm() - base) / x0.nbytes)
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")

D = 2_000_000


def copies(
    d: int, q: int, lr: str = "adaptive", method: str = "gaussian", iters: int = 2, rugged: bool = False
) -> float:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(d), str(q), lr, method, str(iters)] + (["rugged"] if rugged else []),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


def test_adaptive_step_holds_three_copies_of_x():
    # The iterate, the anchor (the best point's center; the previous iterate is replayed from
    # it), the point handed to fun: over a run with step backs, on a smooth and a rugged
    # objective (where the best point stays behind for many steps).
    c = copies(D, 10, iters=12)
    assert c <= 3.3, c
    c = copies(D // 2, 10, iters=16, rugged=True)
    assert c <= 3.3, c


def test_fixed_step_holds_three_copies_of_x_whatever_q():
    # No step back: no previous iterate. q = 64 directions cost no memory (generated in chunks).
    c10 = copies(D, 10, lr="1e-3")
    c64 = copies(D // 4, 64, lr="1e-3", method="sphere", iters=1)
    assert c10 <= 3.5, c10
    assert c64 <= 3.5, c64


def test_chunked_step_is_the_whole_vector_step():
    # The estimate regenerated chunk by chunk (Optimizer.gradient) is the one the step used:
    # x_1 = x_0 - lr g exactly, in float64, for each gradient method's plain update, at a d
    # spanning several chunks.
    d = 3 * 4096 + 5
    x0 = np.linspace(-1, 1, d)
    f = lambda v: float(np.sum(v**2) + v[0])  # noqa: E731
    for method in ("gaussian", "sphere", "cge"):
        kw = {"options": {"n_coords": 300}} if method == "cge" else {"q": 4}
        opt = zo.Optimizer(method=method, x0=x0, rng=3, lr=1e-2, **kw)
        X = opt.ask()
        opt.tell(X, np.array([f(x) for x in X]))
        g = opt.gradient
        assert g.shape == (d,) and np.all(np.isfinite(g)) and np.any(g != 0)
        np.testing.assert_array_equal(opt.x, x0 - 1e-2 * g)


def test_gradient_of_every_method_has_the_iterate_shape():
    # The estimate is regenerated on demand for the gradient methods; CBO has none (zeros),
    # ZO-RankSGD keeps its own.
    x0 = np.linspace(-1, 1, 5)
    for method in ("gaussian", "cbo", "rank"):
        opt = zo.Optimizer(method=method, x0=x0, rng=0)
        assert opt.gradient.shape == (5,) and not opt.gradient.any()
        X = opt.ask()
        opt.tell(X, np.sum(X**2, axis=1))
        g = opt.gradient
        assert g.shape == (5,) and np.all(np.isfinite(g))
        assert (method == "cbo") == (not g.any())
