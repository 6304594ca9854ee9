"""
An LP's residuals vs iterations, through the callback
=====================================================

:func:`optcore.linprog` takes SciPy's ``linprog`` call and solves the LP by restarted
reflected Halpern PDHG. Its callback receives the relative primal, dual and gap residuals at
every check; it stops when all three are below ``tol``. HiGHS gives the reference objective.
"""

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp
from scipy import optimize

import optcore

rng = np.random.default_rng(0)
m, n = 300, 600
A = sp.random_array((m, n), density=0.02, rng=rng, format="csr") + sp.eye_array(m, n, format="csr")
b = A @ rng.uniform(0, 1, n) + rng.uniform(0, 0.1, m)
c = -rng.uniform(0.1, 1, n)

trace = []
res = optcore.linprog(
    c,
    A_ub=A,
    b_ub=b,
    bounds=(0, 2),
    tol=1e-8,
    callback=lambda r: trace.append((r.nit, r.rel_primal, r.rel_dual, r.rel_gap)),
)
ref = optimize.linprog(c, A_ub=A, b_ub=b, bounds=(0, 2))
print(res.message)
print(f"objective {res.fun:.10f} (HiGHS {ref.fun:.10f})")

k, p, d, g = np.array(trace).T
fig, ax = plt.subplots(figsize=(6, 4))
ax.semilogy(k, p, label="primal")
ax.semilogy(k, np.maximum(d, 1e-17), label="dual")
ax.semilogy(k, g, label="gap")
ax.axhline(1e-8, color="gray", ls=":", label="tol")
ax.set_xlabel("iteration")
ax.set_ylabel("relative residual")
ax.legend()
fig.tight_layout()
