"""
Wasserstein barycenters of shapes
=================================

Entropic barycenters of four shapes on a 64 x 64 grid with bilinear weights (the convolutional
form of Solomon et al. 2015: the squared Euclidean kernel is applied one axis at a time in the
log domain, no 4096 x 4096 matrix), then the barycenter of two bumps on a line at a small
``reg`` with a dense cost, where the scaling form underflows but the log-domain iteration does
not.
"""

import matplotlib.pyplot as plt
import numpy as np

import optcore

s = 64
t = np.linspace(-1, 1, s)
X, Y = np.meshgrid(t, t, indexing="ij")
R = np.hypot(X, Y)
masks = [
    (np.abs(X) < 0.55) & (np.abs(Y) < 0.55),
    R < 0.65,
    (R > 0.45) & (R < 0.8),
    ((np.abs(X) < 0.2) | (np.abs(Y) < 0.2)) & (R < 0.85),
]
A = np.stack([m.astype(float) for m in masks])
A /= A.sum(axis=(1, 2), keepdims=True)

nb = 4
fig, axes = plt.subplots(nb, nb, figsize=(6, 6))
for i in range(nb):
    for j in range(nb):
        tx, ty = i / (nb - 1), j / (nb - 1)
        w = np.array([(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty])
        keep = w > 0
        res = optcore.ot.barycenter(A[keep], None, reg=2e-3, weights=w[keep], tol=1e-6)
        axes[i, j].imshow(res.barycenter, cmap="Blues")
        axes[i, j].axis("off")
fig.suptitle("Barycenters of four shapes (reg = 2e-3)")
fig.tight_layout()

# %%
# A dense cost at small ``reg``: two bumps on a line, and their barycenters for three weights.

n = 200
x = np.linspace(0, 1, n)
M = (x[:, None] - x[None, :]) ** 2
H = np.stack([np.exp(-((x - c) ** 2) / 2e-3) for c in (0.2, 0.75)], axis=1)
H /= H.sum(0)
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(x, H, "k--", lw=1)
for w0 in (0.25, 0.5, 0.75):
    res = optcore.ot.barycenter(H, M, reg=1e-4, weights=[w0, 1 - w0])
    ax.plot(x, res.barycenter, label=f"weights ({w0}, {1 - w0}): {res.nit} iterations")
ax.legend(fontsize=8)
ax.set_title("reg = 1e-4 (exp(-M/reg) underflows: the log domain keeps the result)")
fig.tight_layout()
plt.show()
