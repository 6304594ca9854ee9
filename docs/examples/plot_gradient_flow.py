"""
Gradient flow of the Sinkhorn divergence
========================================

Points descend the Sinkhorn divergence toward a target cloud. The gradient with respect to the
positions comes from the optimal potentials (``return_grad=True``: the envelope theorem, no
differentiation through the Sinkhorn iterations). Each point moves by ``-lr * grad_x / a`` (the
Wasserstein gradient of the divergence, as in Feydy et al. 2019).
"""

import matplotlib.pyplot as plt
import numpy as np

import optcore

rng = np.random.default_rng(0)
n, m = 200, 250
x = rng.normal(size=(n, 2)) * 0.15 + [-0.6, 0.0]
theta = rng.uniform(0, 2 * np.pi, m)
y = np.c_[np.cos(theta), np.sin(theta)] * 0.5 + rng.normal(size=(m, 2)) * 0.03 + [0.4, 0.0]
a, b = np.full(n, 1 / n), np.full(m, 1 / m)

lr, steps, reg = 0.5, 60, 1e-2
snapshots, values = {0: x.copy()}, []
for k in range(1, steps + 1):
    res = optcore.ot.sinkhorn_divergence(a, x, b, y, reg, return_grad=True, tol=1e-6)
    values.append(res.fun)
    x = x - lr * res.grad_x / a[:, None]
    if k in (5, 15, steps):
        snapshots[k] = x.copy()

fig, axes = plt.subplots(1, len(snapshots) + 1, figsize=(14, 3.2))
for ax, (k, pts) in zip(axes, snapshots.items()):
    ax.scatter(y[:, 0], y[:, 1], s=4, c="C1", label="target")
    ax.scatter(pts[:, 0], pts[:, 1], s=4, c="C0", label="particles")
    ax.set_title(f"step {k}")
    ax.set_aspect("equal")
    ax.set_xlim(-1.2, 1.2)
    ax.set_ylim(-0.8, 0.8)
axes[0].legend(fontsize=7)
axes[-1].semilogy(values)
axes[-1].set_xlabel("step")
axes[-1].set_title("Sinkhorn divergence")
fig.tight_layout()
plt.show()
