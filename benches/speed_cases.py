"""Representative solves of every family, timed (min of 3 after a warm-up); prints a JSON.

Used to check that a change which keeps iterates bit-identical (see iterate_hashes.py) keeps the
speed too: run it alternately with two installs (e.g. two virtual environments) and compare.
"""

import json
import time
import warnings

import numpy as np
import scipy.sparse as sp

import optcore
from optcore import bilevel, zo
from optcore.fixed_point import operators as ops
from optcore.monotone import MatrixGame

warnings.simplefilter("ignore")

rng = np.random.default_rng(0)


def ot_setup(n):
    x, y = rng.random((n, 2)), rng.random((n, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    M /= M.max()
    return np.full(n, 1 / n), np.full(n, 1 / n), M


a, b, M = ot_setup(1000)
a5, b5, M5 = ot_setup(400)
B = rng.dirichlet(np.ones(1000), size=4).T
A = sp.random_array((2000, 4000), density=0.002, rng=0, format="csr") + sp.eye_array(2000, 4000)
d = 2000
Aa = rng.standard_normal((10, d))
p = rng.standard_normal(d)
p *= 0.5 / np.linalg.norm(p)
T = ops.DouglasRachford(ops.Ball(np.zeros(d), 1.0), ops.Affine(Aa, Aa @ p))
game = MatrixGame.policeman_burglar(200, rng=0)
X, Xv = rng.standard_normal((800, 60)), rng.standard_normal((800, 60))
w = rng.standard_normal(60)
ridge = bilevel.problems.RidgeHyperparameter(
    X, X @ w + rng.standard_normal(800), Xv, Xv @ w + rng.standard_normal(800), per_feature=True
)
CASES = {
    "ot.sinkhorn log 1000^2": lambda: optcore.ot.sinkhorn(a, b, M, reg=1e-2, tol=1e-9),
    "ot.sinkhorn eps_scaling 1000^2": lambda: optcore.ot.sinkhorn(a, b, M, reg=1e-3, method="eps_scaling", tol=1e-8),
    "ot.sinkhorn sns 400^2": lambda: optcore.ot.sinkhorn(a5, b5, M5, reg=1e-3, method="sns", tol=1e-9),
    "ot.sinkhorn scaling k=4": lambda: optcore.ot.sinkhorn(a, B, M, reg=5e-2, method="scaling"),
    "linprog 2000x4000": lambda: optcore.linprog(-np.ones(4000), A_ub=A, b_ub=np.ones(2000), bounds=(0, 2), tol=1e-6),
    "fixed_point DR d=2000": lambda: optcore.fixed_point.halpern(T, np.zeros(d), restart="adaptive", tol=1e-10),
    "monotone vr_halpern game 200": lambda: optcore.monotone.solve(
        game, method="vr_halpern", rng=0, options={"max_epochs": 300}
    ),
    "monotone eag game 200": lambda: optcore.monotone.solve(game, method="eag", rng=0, options={"max_epochs": 3000}),
    "zo cge sphere d=500 native": lambda: zo.minimize(
        zo.functions.sphere, np.full(500, 2.0), method="cge", rng=0, maxfev=200000
    ),
    "zo gaussian rosenbrock d=50": lambda: zo.minimize(
        zo.functions.rosenbrock, np.zeros(50), method="gaussian", rng=0, maxfev=100000
    ),
    "bilevel aid ridge 800x60": lambda: bilevel.minimize(ridge, np.zeros(60), method="aid", maxiter=500, rng=0),
    "bilevel f2sa ridge 800x60": lambda: bilevel.minimize(ridge, np.zeros(60), method="f2sa", maxiter=500, rng=0),
}
out = {}
for name, fn in CASES.items():
    fn()
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    out[name] = min(ts)
print(json.dumps(out))
