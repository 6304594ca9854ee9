"""
Halpern iterations and their residual bound
===========================================

Douglas–Rachford for a point in the intersection of a ball and an affine set. Halpern's
iteration guarantees ``||x_k - T(x_k)|| <= 2 ||x0 - x*|| / (k + 1)`` for every fixed point
``x*``; the adaptive restart re-anchors once the residual has dropped enough, and converges
linearly on this polyhedral-like problem.
"""

import matplotlib.pyplot as plt
import numpy as np

import optcore
from optcore.fixed_point import operators as ops

rng = np.random.default_rng(0)
d = 200
A = rng.standard_normal((10, d)) / np.sqrt(d)
q = A.T @ np.linalg.solve(A @ A.T, A @ rng.standard_normal(d))
q *= 0.99 / np.linalg.norm(q)
T = ops.DouglasRachford(ops.Ball(np.zeros(d), 1.0), ops.Affine(A, A @ q))
x0 = 10 * rng.standard_normal(d)

# A fixed point to evaluate the bound with (Halpern converges to the one nearest x0).
ref = optcore.fixed_point.halpern(T, x0, restart="adaptive", tol=1e-12, maxiter=100_000)
dist0 = np.linalg.norm(x0 - ref.x)

fig, ax = plt.subplots(figsize=(6, 4))
for label, kw in (("halpern", {}), ("halpern, restart='adaptive'", {"restart": "adaptive"}), ("km", {"method": "km"})):
    trace = []
    res = optcore.fixed_point.halpern(
        T,
        x0,
        tol=1e-8,
        maxiter=5000,
        check_every=1,
        warn=False,
        callback=lambda r: trace.append((r.nit, r.residual)),
        **kw,
    )
    k, r = np.array(trace).T
    ax.loglog(k + 1, r, label=f"{label}: status {res.status}, residual {res.residual:.1e}")
k = np.arange(1, 5001)
ax.loglog(k + 1, 2 * dist0 / (k + 1), "k--", label="bound 2||x0 - x*|| / (k + 1)")
ax.set_xlabel("iteration k + 1")
ax.set_ylabel("||x_k - T(x_k)||")
ax.legend(fontsize=8)
fig.tight_layout()
print(f"solution in the ball: {np.linalg.norm(T.shadow(ref.x)):.6f} <= 1")
