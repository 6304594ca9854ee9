"""Hashes of solver results on fixed inputs and seeds, one per family and method.

A refactoring that must not change results (same iterates, same floating-point operations)
is checked by running this script before and after and comparing the JSON it prints:

    python benches/iterate_hashes.py > before.json   # on the old commit
    python benches/iterate_hashes.py > after.json    # on the new one
    diff before.json after.json

Each hash covers the numeric fields of the result (arrays bit for bit, scalars by their
IEEE bytes) plus ``nit`` and ``status``; messages are not hashed (their wording may change).
The same machine (SIMD level) must run both: FMA and vector widths change the last bits.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings

import numpy as np
import scipy.sparse as sp

import optcore
from optcore import bilevel, zo
from optcore.fixed_point import operators as ops
from optcore.monotone import FiniteSum, MatrixGame, QuadraticMinMax

SKIP = {"message", "phase_times", "elapsed", "time", "times", "wall_time"}


def _feed(h, key, v):
    if key in SKIP:
        return
    if isinstance(v, dict):
        for k in sorted(v):
            _feed(h, f"{key}.{k}", v[k])
        return
    if sp.issparse(v):
        v = v.toarray()
    if isinstance(v, (list, tuple)):
        try:
            v = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            for i, e in enumerate(v):
                _feed(h, f"{key}[{i}]", e)
            return
    if isinstance(v, (bool, np.bool_)):
        v = int(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        v = np.asarray(v)
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        h.update(key.encode())
        h.update(str(v.dtype).encode())
        h.update(np.ascontiguousarray(v).tobytes())
    elif hasattr(v, "__dict__") and not callable(v):
        _feed(h, key, {k: w for k, w in vars(v).items() if not k.startswith("_")})


def digest(res) -> str:
    h = hashlib.sha256()
    items = dict(res) if isinstance(res, dict) else {"value": res}
    for k in sorted(items):
        _feed(h, k, items[k])
    return h.hexdigest()[:16]


def cases():
    rng = np.random.default_rng(0)
    x, y = rng.random((120, 2)), rng.random((90, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    M /= M.max()
    a, b = np.full(120, 1 / 120), rng.dirichlet(np.ones(90))
    for dt in (np.float64, np.float32):
        aa, bb, MM = a.astype(dt), b.astype(dt), M.astype(dt)
        for method, reg in (("log", 1e-2), ("eps_scaling", 1e-3), ("scaling", 5e-2), ("sns", 1e-2)):
            yield (
                f"ot.sinkhorn[{method},{dt.__name__}]",
                lambda m=method, r=reg, A=aa, B=bb, C=MM: optcore.ot.sinkhorn(A, B, C, reg=r, method=m),
            )
    B = rng.dirichlet(np.ones(90), size=3).T
    yield "ot.sinkhorn[scaling,batch]", lambda: optcore.ot.sinkhorn(a, B, M, reg=5e-2, method="scaling")
    yield "ot.sinkhorn[log,batch]", lambda: optcore.ot.sinkhorn(a, B, M, reg=2e-2)
    yield (
        "ot.sinkhorn[log,no-overrelax]",
        lambda: optcore.ot.sinkhorn(a, b, M, reg=1e-2, options={"overrelaxation": 1.0}),
    )
    yield (
        "ot.sinkhorn[log,points]",
        lambda: optcore.ot.sinkhorn(a, b, None, reg=1e-2, x=x, y=y) if _accepts_points() else None,
    )

    d = 200
    A = rng.standard_normal((10, d))
    p = rng.standard_normal(d)
    p *= 0.5 / np.linalg.norm(p)
    ball, plane = ops.Ball(np.zeros(d), 1.0), ops.Affine(A, A @ p)
    T = ops.DouglasRachford(ball, plane)
    for method in ("halpern", "km", "picard"):
        yield f"fixed_point.halpern[{method}]", lambda m=method: optcore.fixed_point.halpern(T, np.zeros(d), method=m)
    yield "fixed_point.halpern[restart]", lambda: optcore.fixed_point.halpern(T, np.zeros(d), restart="adaptive")
    far = ops.Affine(np.ones((1, d)) / np.sqrt(d), [3.0])
    for method in ("halpern", "picard"):
        yield (
            f"fixed_point.halpern[infeasible,{method}]",
            lambda m=method: optcore.fixed_point.halpern(
                ops.DouglasRachford(ball, far), np.zeros(d), method=m, maxiter=30000
            ),
        )
    yield (
        "fixed_point.halpern[callable]",
        lambda: optcore.fixed_point.halpern(lambda v: np.cos(v), np.zeros(3), method="km"),
    )
    yield (
        "fixed_point.halpern[simplex,f32]",
        lambda: optcore.fixed_point.halpern(
            ops.Compose(ops.Simplex(50), ops.Box(-0.1, 0.5, dim=50)), np.linspace(0, 1, 50).astype(np.float32)
        ),
    )
    L = rng.standard_normal((30, 30))
    L = L - L.T
    yield (
        "fixed_point.halpern[resolvent]",
        lambda: optcore.fixed_point.halpern(
            ops.Compose(ops.LinearResolvent(L, 0.5), ops.Box(-1, 1, dim=30)), np.ones(30)
        ),
    )

    game = MatrixGame.policeman_burglar(60, rng=0)
    for method in ("vr_halpern", "halpern", "eag", "eg"):
        yield (
            f"monotone.solve[game,{method}]",
            lambda m=method: optcore.monotone.solve(game, method=m, rng=0, options={"max_epochs": 200}),
        )
    quad = QuadraticMinMax.lower_bound(40)
    for method in ("vr_halpern", "eag"):
        yield (
            f"monotone.solve[quad,{method}]",
            lambda m=method: optcore.monotone.solve(quad, method=m, rng=0, options={"max_epochs": 300}),
        )
    Ms = np.random.default_rng(0).normal(size=(20, 4, 4))
    Ms = Ms - Ms.transpose(0, 2, 1)
    fs = FiniteSum(
        lambda i, z: Ms[i] @ z + 1.0,
        n=20,
        dim=4,
        lipschitz=float(np.linalg.norm(Ms.mean(0), 2)) + 1,
        project=ops.Box(-1, 1, dim=4),
    )
    yield (
        "monotone.solve[finitesum]",
        lambda: optcore.monotone.solve(fs, method="vr_halpern", rng=0, options={"max_epochs": 100}),
    )

    yield "linprog[readme]", lambda: optcore.linprog([-1, -1], A_ub=[[1, 2], [3, 1]], b_ub=[4, 6])
    As = sp.random_array((300, 600), density=0.01, rng=0, format="csr") + sp.eye_array(300, 600)
    yield "linprog[random]", lambda: optcore.linprog(-np.ones(600), A_ub=As, b_ub=np.ones(300), bounds=(0, 2), tol=1e-7)
    yield (
        "linprog[eq+free]",
        lambda: optcore.linprog(
            [1, 2, -1],
            A_eq=[[1, 1, 1]],
            b_eq=[1],
            A_ub=[[1, -1, 0]],
            b_ub=[0.5],
            bounds=[(None, None), (0, 3), (-1, 1)],
        ),
    )
    yield (
        "linprog[infeasible]",
        lambda: optcore.linprog([1, 1], A_ub=[[1, 1], [-1, -1]], b_ub=[1, -2], options={"presolve": False}),
    )
    yield "linprog[unbounded]", lambda: optcore.linprog([-1, 0], A_ub=[[0, 1]], b_ub=[1])
    # Large enough for the parallel row passes and the chunked convergence checks.
    Al = sp.random_array((8000, 40000), density=20 / 40000, rng=1, format="csr") + sp.eye_array(8000, 40000)
    yield (
        "linprog[large]",
        lambda: optcore.linprog(-np.ones(40000), A_ub=Al, b_ub=np.ones(8000), bounds=(0, 2), maxiter=640, warn=False),
    )

    f = lambda v: float(np.sum((v - 1.0) ** 2))  # noqa: E731
    fb = lambda X: ((X - 1.0) ** 2).sum(axis=1)  # noqa: E731
    for method in ("gaussian", "sphere", "cge", "signsgd", "adamm", "perturbed", "rank"):
        yield (
            f"zo.minimize[{method}]",
            lambda m=method: zo.minimize(f, np.zeros(8), method=m, rng=0, maxfev=1500, warn=False),
        )
    yield (
        "zo.minimize[cbo,vectorized,f32]",
        lambda: zo.minimize(fb, np.zeros(8, np.float32), method="cbo", vectorized=True, rng=0, maxfev=3000, warn=False),
    )
    yield (
        "zo.minimize[cbo,native]",
        lambda: zo.minimize(
            zo.functions.rastrigin, np.full(6, 3.0), method="cbo", bounds=(-5, 5), rng=0, maxfev=3000, warn=False
        ),
    )
    yield (
        "zo.minimize[gaussian,momentum]",
        lambda: zo.minimize(
            zo.functions.rosenbrock,
            np.zeros(6),
            method="gaussian",
            rng=0,
            maxfev=3000,
            options={"momentum": 0.9},
            warn=False,
        ),
    )
    yield "zo.gradient", lambda: zo.gradient(f, np.arange(5.0), rng=0)
    yield (
        "zo.rank_minimize",
        lambda: zo.rank_minimize(
            zo.ranking_oracle(fb, k=3, vectorized=True), np.zeros(8), m=8, k=3, maxiter=200, rng=0, warn=False
        ),
    )

    def ask_tell():
        opt = zo.Optimizer(method="sphere", x0=np.zeros(8), rng=0)
        for _ in range(50):
            X = opt.ask()
            opt.tell(X, fb(X))
        return {"x": opt.best[0], "fun": opt.best[1]}

    yield "zo.Optimizer", ask_tell

    q = bilevel.problems.Quadratic.random(d_x=6, d_y=30, seed=0)
    for method in ("aid", "itd", "soba", "borep", "f2sa", "penalty"):
        yield (
            f"bilevel.minimize[quadratic,{method}]",
            lambda m=method: bilevel.minimize(q, np.zeros(6), method=m, rng=0, maxiter=300, warn=False),
        )
    X, Xv = rng.standard_normal((100, 10)), rng.standard_normal((100, 10))
    w = rng.standard_normal(10)
    t, tv = X @ w + rng.standard_normal(100), Xv @ w + rng.standard_normal(100)
    ridge = bilevel.problems.RidgeHyperparameter(X, t, Xv, tv, per_feature=True)
    for method in ("aid", "f2sa"):
        yield (
            f"bilevel.minimize[ridge,{method}]",
            lambda m=method: bilevel.minimize(ridge, np.zeros(10), method=m, maxiter=300, rng=0, warn=False),
        )
    yield (
        "bilevel.minimize[ridge,stochastic]",
        lambda: bilevel.minimize(
            ridge, np.zeros(10), method="soba", maxiter=200, rng=0, warn=False, options={"batch_size": 16}
        ),
    )
    Ad, Bd = np.diag(np.arange(1.0, 6.0)), np.ones((2, 5)) * 0.1
    prob = bilevel.Problem(
        grad_f=lambda x, y: (x - 1.0, y),
        grad_g=lambda x, y: (Bd @ y, Ad @ y + Bd.T @ x),
        hvp_yy=lambda x, y, v: Ad @ v,
        jvp_xy=lambda x, y, v: Bd @ v,
    )
    for method in ("penalty", "aid", "f2sa"):
        yield (
            f"bilevel.minimize[python,{method}]",
            lambda m=method: bilevel.minimize(prob, np.zeros(2), np.zeros(5), method=m, rng=0, maxiter=300, warn=False),
        )
    yield "bilevel.hypergradient", lambda: {"g": bilevel.hypergradient(prob, np.ones(2), np.ones(5), method="exact")}
    # The second-order policy: no analytic product (both by finite differences of grad_g), or
    # only the Hessian-vector product (the mixed one by finite differences).
    for name, extra in (("python-fd", {}), ("python-hvp", {"hvp_yy": lambda x, y, v: Ad @ v})):
        pfd = bilevel.Problem(
            grad_f=lambda x, y: (x - 1.0, y), grad_g=lambda x, y: (Bd @ y, Ad @ y + Bd.T @ x), **extra
        )
        for method in ("aid", "itd"):
            yield (
                f"bilevel.minimize[{name},{method}]",
                lambda m=method, p=pfd: bilevel.minimize(
                    p, np.zeros(2), np.zeros(5), method=m, rng=0, maxiter=100, warn=False
                ),
            )
    labels = (np.abs(X[:, 0] * 3).astype(int) % 3, np.abs(Xv[:, 0] * 3).astype(int) % 3)
    logistic = bilevel.problems.LogisticHyperCleaning(sp.csr_array(X), labels[0], Xv, labels[1], reg=1e-2)
    yield (
        "bilevel.minimize[logistic-csr,aid]",
        lambda: bilevel.minimize(logistic, np.zeros(100), method="aid", maxiter=30, rng=0, warn=False),
    )
    yield from _newer_cases()


def _newer_cases():
    """Grids, unbalanced OT, barycenters, divergences, Mirror Sinkhorn, sparse OT, the L-BFGS outer
    loop and LV-HBA (added after the wave that introduced them)."""
    rng = np.random.default_rng(1)
    g = optcore.ot.Grid([np.linspace(0, 1, 16)] * 2)
    pts = g.points()
    ga = np.exp(-((pts - 0.3) ** 2).sum(1) / 0.02).reshape(g.shape)
    gb = np.exp(-((pts - [0.7, 0.6]) ** 2).sum(1) / 0.05).reshape(g.shape)
    ga, gb = ga / ga.sum(), gb / gb.sum()
    yield "ot.sinkhorn[grid]", lambda: optcore.ot.sinkhorn(ga, gb, g, reg=1e-2, tol=1e-6)
    x, y = rng.random((60, 2)), rng.random((50, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    a, b = np.full(60, 1 / 60), np.full(50, 1.5 / 50)
    yield "ot.sinkhorn[unbalanced]", lambda: optcore.ot.sinkhorn(a, b, M, reg=0.02, reg_m=0.1)
    yield "ot.sinkhorn[unbalanced,grid]", lambda: optcore.ot.sinkhorn(ga, 2 * gb, g, reg=1e-2, reg_m=(np.inf, 0.5))
    A = np.stack([ga, gb])
    yield "ot.barycenter[grid]", lambda: optcore.ot.barycenter(A, None, reg=5e-3, weights=[0.3, 0.7])
    t = np.linspace(0, 1, 40)
    H = np.stack([np.exp(-((t - c) ** 2) / 1e-2) for c in (0.2, 0.8)], axis=1)
    H /= H.sum(0)
    yield "ot.barycenter[dense]", lambda: optcore.ot.barycenter(H, (t[:, None] - t[None]) ** 2, reg=1e-3)
    yield (
        "ot.sinkhorn_divergence",
        lambda: optcore.ot.sinkhorn_divergence(None, x, None, y, reg=2e-2, return_grad=True),
    )
    b1 = np.full(50, 1 / 50)
    yield "ot.mirror_sinkhorn[linear]", lambda: optcore.ot.mirror_sinkhorn(a, b1, M, maxiter=500, warn=False)
    R = np.outer(a, b1) * (1 + rng.random((60, 50)))
    yield (
        "ot.mirror_sinkhorn[quadratic]",
        lambda: optcore.ot.mirror_sinkhorn(a, b1, objective="quadratic", ref=R, maxiter=500, warn=False),
    )
    for dual in ("semi", "dual"):
        yield (
            f"ot.sparse_ot[{dual},k=4]",
            lambda d=dual: optcore.ot.sparse_ot(a, b1, M, k=4, reg=0.1, dual=d, warn=False),
        )
    q = bilevel.problems.Quadratic.random(d_x=4, d_y=12, seed=0)
    for method in ("aid", "itd", "exact"):
        yield (
            f"bilevel.minimize[quadratic,{method},lbfgs]",
            lambda m=method: bilevel.minimize(q, np.zeros(4), method=m, outer="lbfgs", tol=1e-10, rng=0, warn=False),
        )
    toy = bilevel.problems.ConstrainedToy(n=3, a=2 / 3)
    yield (
        "bilevel.minimize[toy,lvhba]",
        lambda: bilevel.minimize(toy, np.ones(3), method="lvhba", maxiter=2000, rng=0, warn=False),
    )
    if hasattr(bilevel.problems, "SVMPrimalHyperparameter"):
        r = np.random.default_rng(0)
        Xs = r.normal(size=(40, 3))
        ts = np.sign(Xs[:, 0] + 0.5 * r.normal(size=40))
        svm = bilevel.problems.SVMPrimalHyperparameter(Xs[:25], ts[:25], Xs[25:], ts[25:])
        yield (
            "bilevel.minimize[svm_primal,lvhba]",
            lambda: bilevel.minimize(
                svm, np.full(25, -3.0), method="lvhba", maxiter=500, rng=0, warn=False, options={"c0": 100.0}
            ),
        )


def _accepts_points() -> bool:
    import inspect

    return "x" in inspect.signature(optcore.ot.sinkhorn).parameters


def main() -> None:
    out = {}
    warnings.simplefilter("ignore")
    for name, fn in cases():
        try:
            r = fn()
            out[name] = None if r is None else digest(r)
        except Exception as e:  # recorded, so that a change in what raises shows too
            out[name] = f"raised {type(e).__name__}"
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
