"""
Sinkhorn plans, and log-domain Sinkhorn vs Sinkhorn–Newton–Sparse
==================================================================

Entropic transport plans between two point clouds at three regularisations, then the marginal
error ``||P 1 - a||_1 + ||P^T 1 - b||_1`` against time for the default log-domain Sinkhorn and
for SNS on the SNS paper's random-assignment problem at ``reg = 1/1200``: SNS switches to
Newton steps once Sinkhorn has found the support and reaches 1e-10 in a few steps, where
the log-domain iteration is still far from it after 20000 iterations.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import optcore

rng = np.random.default_rng(0)
n = 60
x = rng.normal(size=(n, 2)) * [1.0, 0.4]
y = rng.normal(size=(n, 2)) * [0.4, 1.0] + [2.0, 0.0]
a = b = np.full(n, 1 / n)
M = ((x[:, None] - y[None]) ** 2).sum(-1)
M /= M.max()

fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
for ax, reg in zip(axes, (1e-1, 1e-2, 1e-3)):
    res = optcore.ot.sinkhorn(a, b, M, reg=reg)
    order_x, order_y = np.argsort(x[:, 0] + x[:, 1]), np.argsort(y[:, 1])
    ax.imshow(res.plan[np.ix_(order_x, order_y)], cmap="magma_r")
    ax.set_title(f"reg = {reg:g}: {res.nit} iterations\nmarginal error {res.marginal_error:.1e}")
    ax.set_xlabel("target point")
axes[0].set_ylabel("source point")
fig.tight_layout()

# %%
# Convergence at small ``reg``: the callback records the measured marginal error.

m = 200
C = np.random.default_rng(1).random((m, m))
u = np.full(m, 1 / m)
fig, ax = plt.subplots(figsize=(6, 4))
for method in ("log", "sns"):
    trace = []
    start = time.perf_counter()
    res = optcore.ot.sinkhorn(
        u,
        u,
        C,
        reg=1 / 1200,
        method=method,
        tol=1e-10,
        maxiter=20_000,
        warn=False,
        check_every=1 if method == "sns" else 20,
        callback=lambda r: trace.append((time.perf_counter() - start, r.marginal_error)),
    )
    t, err = np.array(trace).T
    ax.semilogy(t, err, label=f"{method}: {res.nit} iterations, success={res.success}")
    print(f"{method:>4}: success={res.success}, nit={res.nit}, marginal error {res.marginal_error:.2e}")
ax.axhline(1e-10, color="gray", ls=":", label="tol")
ax.set_xlabel("time (s)")
ax.set_ylabel("marginal error (L1)")
ax.legend()
fig.tight_layout()
