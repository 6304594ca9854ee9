"""
Bilevel: a ridge hyperparameter path
====================================

Two ridge penalties ``exp(λ_1)``, ``exp(λ_2)`` (one per group of features) chosen to minimise
the validation loss ``F(λ) = ||X_val w*(λ) - y_val||² / n``. The contours are ``F`` in closed
form; the paths are the iterates of :func:`optcore.bilevel.minimize` (AID with conjugate
gradients, and the fully first-order F2SA), recorded by the callback.
"""

import matplotlib.pyplot as plt
import numpy as np

from optcore import bilevel

rng = np.random.default_rng(1)
n, p = 30, 2
w = np.array([0.5, 0.2])
X, Xv = rng.standard_normal((n, p)), rng.standard_normal((n, p))
y, yv = X @ w + rng.standard_normal(n), Xv @ w + rng.standard_normal(n)
prob = bilevel.problems.RidgeHyperparameter(X, y, Xv, yv, per_feature=True)

g1, g2 = np.meshgrid(np.linspace(-7, 4, 60), np.linspace(-7, 4, 60))
F = np.array([prob.value(np.array([u, v])) for u, v in zip(g1.ravel(), g2.ravel())]).reshape(g1.shape)

fig, ax = plt.subplots(figsize=(5.5, 4.5))
cs = ax.contour(g1, g2, F, levels=np.quantile(F, np.linspace(0, 1, 25) ** 2), cmap="viridis")
lam0 = np.array([3.0, -5.0])
for method, color in (("aid", "C3"), ("f2sa", "C1")):
    path = [lam0]
    res = bilevel.minimize(
        prob, lam0, method=method, maxiter=400, rng=0, warn=False, check_every=1, callback=lambda r: path.append(r.x)
    )
    path = np.array(path)
    ax.plot(
        path[:, 0],
        path[:, 1],
        ".-",
        color=color,
        ms=3,
        label=f"{method}: {res.nit} iterations, F = {prob.value(res.x):.5f}",
    )
ax.set_xlabel("λ_1")
ax.set_ylabel("λ_2")
ax.legend()
fig.colorbar(cs, label="F(λ)")
fig.tight_layout()
