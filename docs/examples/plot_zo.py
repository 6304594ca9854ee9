"""
Zeroth-order convergence against SciPy's derivative-free methods
================================================================

A rotated quadratic in dimension 30 (condition number 10), given as a plain Python function of
one point. The curves are the best value found against the number of evaluations, counted in
the function itself for every solver.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy import optimize

from optcore import zo

d = 30
Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))
A = np.sqrt(np.linspace(1, 10, d))[:, None] * Q


def f(x):
    v = float(np.sum((A @ (x - 1)) ** 2))
    f.values.append(v)
    return v


x0 = np.zeros(d)
budget = 150 * d
runs = {
    "optcore zo cge": lambda: zo.minimize(f, x0, method="cge", rng=0, maxfev=budget),
    "optcore zo gaussian": lambda: zo.minimize(f, x0, method="gaussian", rng=0, maxfev=budget),
    "scipy Powell": lambda: optimize.minimize(f, x0, method="Powell", options={"maxfev": budget}),
    "scipy Nelder-Mead": lambda: optimize.minimize(f, x0, method="Nelder-Mead", options={"maxfev": budget}),
    "scipy COBYLA": lambda: optimize.minimize(f, x0, method="COBYLA", options={"maxiter": budget}),
}
fig, ax = plt.subplots(figsize=(6, 4))
for name, run in runs.items():
    f.values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run()
    best = np.minimum.accumulate(f.values)
    ax.semilogy(np.arange(1, best.size + 1), best, label=f"{name}: {best[-1]:.1e}")
ax.set_xlabel("function evaluations")
ax.set_ylabel("best f so far")
ax.legend(fontsize=8)
fig.tight_layout()
