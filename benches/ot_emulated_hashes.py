"""Hashes of the GPU driver's results on the NumPy emulation of the kernels (no GPU needed).

The device path (``optcore.ot._device``) runs on NumPy arrays with
:class:`optcore.ot._gpu.emulate.NumpyKernels` exactly as on CuPy, so a refactoring of the driver
that must not change results is checked by running this script before and after and comparing
the JSON it prints (as ``benches/iterate_hashes.py`` does for the CPU solvers).
``benches/results/ot_emulated_hashes.json`` holds the hashes of commit 19888af (before the
driver asked the Rust core's controller for its decisions); ``--check`` compares with it.
The same machine (SIMD level, NumPy build) must produce both.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from optcore.ot._device import sinkhorn_emulated

REFERENCE = Path(__file__).parent / "results" / "ot_emulated_hashes.json"


def emulated(a, b, M, reg, **kw):
    return sinkhorn_emulated(a, b, M, reg, **{"maxiter": 20_000, "warn": False, **kw})


def digest(res) -> str:
    h = hashlib.sha256()
    for k in sorted(res):
        v = res[k]
        if k == "message" or v is None or isinstance(v, str):
            continue
        v = np.asarray(v)
        h.update(k.encode())
        h.update(str(v.dtype).encode())
        h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()[:16]


def cases():
    rng = np.random.default_rng(0)
    x, y = rng.random((60, 2)), rng.random((45, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    a, b = np.full(60, 1 / 60), rng.dirichlet(np.ones(45))
    Mb = np.stack([M, M * 1.3, M**0.5])
    A = rng.dirichlet(np.ones(60), size=3)
    Bw = rng.dirichlet(np.ones(45), size=3)
    hist = rng.dirichlet(np.ones(45), size=2).T
    for dt in (np.float64, np.float32):
        aa, bb, MM = a.astype(dt), b.astype(dt), M.astype(dt)
        yield f"log,{dt.__name__}", lambda A_=aa, B_=bb, M_=MM: emulated(A_, B_, M_, 1e-2)
        yield f"eps_scaling,{dt.__name__}", lambda A_=aa, B_=bb, M_=MM: emulated(A_, B_, M_, 1e-3, method="eps_scaling")
        yield f"scaling,{dt.__name__}", lambda A_=aa, B_=bb, M_=MM: emulated(A_, B_, M_, 5e-2, method="scaling")
        yield f"sns,{dt.__name__}", lambda A_=aa, B_=bb, M_=MM: emulated(A_, B_, M_, 1e-2, method="sns")
    yield "log,no-overrelax", lambda: emulated(a, b, M, 1e-2, options={"overrelaxation": 1.0})
    yield "log,fixed-omega", lambda: emulated(a, b, M, 1e-2, options={"overrelaxation": 1.5})
    yield "log,maxiter", lambda: emulated(a, b, M, 1e-3, maxiter=35)
    yield (
        "log,stall",
        lambda: emulated(
            a.astype(np.float32), b.astype(np.float32), M.astype(np.float32), 1e-2, tol=1e-12, maxiter=3000
        ),
    )
    yield "log,x0", lambda: emulated(a, b, M, 1e-2, x0=(np.zeros(60), np.zeros(45)))
    yield "log,batch", lambda: emulated(A, Bw, Mb, 2e-2)
    yield "log,histograms", lambda: emulated(a, hist, M, 2e-2)
    yield "log,points", lambda: emulated(a, b, None, 1e-2, x=x, y=y)
    yield "log,points,noplan", lambda: emulated(a, b, None, 1e-2, x=x, y=y, return_plan=False)
    yield "eps_scaling,points", lambda: emulated(a, b, None, 1e-3, x=x, y=y, method="eps_scaling")
    yield "sns,warmup", lambda: emulated(a, b, M, 1e-2, method="sns", options={"warmup": 20})
    yield "sns,eps", lambda: emulated(a, b, M, 2e-3, method="sns", options={"eps_scaling": True})
    yield "sns,density", lambda: emulated(a, b, M, 1e-2, method="sns", options={"density": 0.2})
    yield "scaling,batch", lambda: emulated(A, Bw, Mb, 5e-2, method="scaling")


def main():
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, fn in cases():
            out[key] = digest(fn())
    print(json.dumps(out, indent=1, sort_keys=True))
    if "--check" in sys.argv[1:]:
        ref = json.loads(REFERENCE.read_text())
        bad = sorted(k for k in ref if out.get(k) != ref[k])
        if bad:
            sys.exit(f"changed against {REFERENCE.name}: {bad}")


if __name__ == "__main__":
    main()
