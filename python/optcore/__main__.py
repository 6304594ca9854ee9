"""``python -m optcore``: a short tour that solves representative problems of each family
and prints optcore's converged results beside the reference library's (Sinkhorn and SNS against
POT, Halpern, linprog, matrix games, zeroth-order and bilevel against SciPy)."""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import optcore


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _l1(plan, a, b) -> float:
    plan = np.asarray(plan, dtype=np.float64)
    return float(np.abs(plan.sum(1) - a).sum() + np.abs(plan.sum(0) - b).sum())


def tour_ot(n: int, seed: int) -> None:
    print(f"== Entropic optimal transport: optcore.ot.sinkhorn vs POT, n = m = {n} ==")
    print("   points uniform in the unit square, squared Euclidean cost / max, uniform weights;")
    print("   'error' is ||P1-a||_1 + ||P^T1-b||_1 measured here on each returned plan.")
    try:
        import ot as pot
    except ImportError:
        pot = None
        print("   (POT is not installed: `pip install pot` to see it beside optcore)")
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    M = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    M /= M.max()
    a = b = np.full(n, 1.0 / n)
    header = f"   {'reg':>6}  {'solver':<28} {'time (s)':>9} {'iters':>6} {'error':>9}  {'<P, M>':>12}"
    print(header)
    for reg in (0.05, 0.01, 0.002):
        res, t = _timed(lambda: optcore.ot.sinkhorn(a, b, M, reg, tol=1e-6))
        print(
            f"   {reg:>6g}  {'optcore (log, default)':<28} {t:>9.4f} {res.nit:>6d} {_l1(res.plan, a, b):>9.1e}  {res.cost:>12.8f}"
        )
        res32, t32 = _timed(
            lambda: optcore.ot.sinkhorn(a.astype(np.float32), b.astype(np.float32), M.astype(np.float32), reg)
        )
        print(
            f"   {'':>6}  {'optcore (log, float32)':<28} {t32:>9.4f} {res32.nit:>6d} {_l1(res32.plan, a, b):>9.1e}  {res32.cost:>12.8f}"
        )
        if pot is not None:
            for method in ("sinkhorn", "sinkhorn_log"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    (plan, log), tp = _timed(
                        lambda: pot.sinkhorn(a, b, M, reg, method=method, stopThr=1e-7, numItermax=100_000, log=True)
                    )
                nit = log.get("niter", len(log.get("err", [])) * 10)
                print(
                    f"   {'':>6}  {'POT ' + method:<28} {tp:>9.4f} {nit:>6d} {_l1(plan, a, b):>9.1e}  {float((plan * M).sum()):>12.8f}"
                )
    print("   POT is run with stopThr=1e-7 (its own 2-norm criterion on one marginal); optcore's tol")
    print("   bounds the L1 error of the plan it returns. `python benches/ot_cpu.py` equalises errors.")
    print()


def tour_sns(n: int, seed: int) -> None:
    print(f"== Sinkhorn-Newton-Sparse at small reg: random assignment, n = m = {n}, reg = 1/1200 ==")
    print("   cost i.i.d. uniform on [0, 1], uniform weights (the SNS paper's first problem); tol 1e-9;")
    print("   POT's exact LP (ot.emd) gives the unregularised optimum for reference.")
    rng = np.random.default_rng(seed)
    M = rng.random((n, n))
    a = b = np.full(n, 1.0 / n)
    reg = 1 / 1200
    print(f"   {'solver':<28} {'time (s)':>9} {'iters':>14} {'error':>9}  {'<P, M>':>12}")
    res, t = _timed(lambda: optcore.ot.sinkhorn(a, b, M, reg, method="sns", tol=1e-9))
    its = f"{res.nit} ({res.n_sinkhorn}+{res.n_newton})"
    print(f"   {'optcore sns':<28} {t:>9.4f} {its:>14} {_l1(res.plan, a, b):>9.1e}  {res.cost:>12.8f}")
    res, t = _timed(lambda: optcore.ot.sinkhorn(a, b, M, reg, method="log", tol=1e-9, maxiter=200_000))
    print(f"   {'optcore log':<28} {t:>9.4f} {res.nit:>14d} {_l1(res.plan, a, b):>9.1e}  {res.cost:>12.8f}")
    try:
        import ot as pot
    except ImportError:
        print("   (POT is not installed: `pip install pot` to see ot.emd beside optcore)")
    else:
        plan, t = _timed(lambda: pot.emd(a, b, M))
        print(
            f"   {'POT emd (exact LP)':<28} {t:>9.4f} {'':>14} {_l1(plan, a, b):>9.1e}  {float((plan * M).sum()):>12.8f}"
        )
    print("   iters of sns: total (Sinkhorn + Newton). The entropic cost is above the LP optimum by")
    print("   the regularisation's bias, O(reg log n).")
    print()


def tour_fixed_point(d: int, seed: int) -> None:
    from scipy import optimize

    from optcore.fixed_point import operators as ops

    print(f"== Fixed points: Douglas–Rachford for a point of ball ∩ affine set, d = {d} ==")
    print("   optcore.fixed_point.halpern (native operators, loop in Rust) vs scipy.optimize.fixed_point")
    print("   on the same operator; 'residual' is ||z - T(z)|| measured here, 'dist' the distance of the")
    print("   solution P_ball(z) to the affine set.")
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((10, d)) / np.sqrt(d)
    q = A.T @ np.linalg.solve(A @ A.T, A @ rng.standard_normal(d))
    q *= 0.99 / np.linalg.norm(q)  # the affine set passes at distance 0.99 from the ball's center
    b = A @ q
    T = ops.DouglasRachford(ops.Ball(np.zeros(d), 1.0), ops.Affine(A, b))
    z0 = rng.standard_normal(d)

    def report(name, z, t, nit):
        x = T.shadow(z)
        dist = float(np.linalg.norm(A.T @ np.linalg.solve(A @ A.T, A @ x - b)))
        res = float(np.linalg.norm(z - T(z)))
        print(f"   {name:<34} {t:>9.4f} {nit:>7} {res:>10.1e} {dist:>10.1e}")

    print(f"   {'solver':<34} {'time (s)':>9} {'iters':>7} {'residual':>10} {'dist':>10}")
    for name, kw in (
        ("optcore halpern restart='adaptive'", {"restart": "adaptive"}),
        ("optcore picard", {"method": "picard"}),
    ):
        res, t = _timed(lambda kw=kw: optcore.fixed_point.halpern(T, z0, tol=1e-8, maxiter=20_000, **kw))
        report(name, res.x, t, res.nit)
    for method in ("iteration", "del2"):
        try:
            z, t = _timed(lambda m=method: optimize.fixed_point(T, z0, xtol=1e-8, maxiter=500, method=m))
            report(f"scipy fixed_point ({method})", z, t, "?")
        except RuntimeError as exc:
            print(f"   {'scipy fixed_point (' + method + ')':<34} failed: {str(exc)[:50]}")
    print("   SciPy stops on its relative step (xtol) and does not report iterations.")
    print()


def tour_linprog(m: int, n: int, seed: int) -> None:
    import scipy.sparse as sp
    from scipy import optimize

    print(f"== Linear programming: a random sparse feasible LP, {m} rows x {n} columns ==")
    print("   optcore.linprog (restarted reflected Halpern PDHG, first-order) vs scipy.optimize.linprog")
    print("   (HiGHS, simplex/IPM) with the same call; optcore stops at relative KKT error 1e-6.")
    rng = np.random.default_rng(seed)
    A = sp.random_array((m, n), density=min(1.0, 8 / n), rng=rng, format="csr")
    A = A + sp.eye_array(m, n, format="csr")
    x_feas = rng.uniform(0.0, 1.0, n)
    b = A @ x_feas + rng.uniform(0.0, 0.1, m)
    c = -rng.uniform(0.1, 1.0, n)
    kw = dict(A_ub=A, b_ub=b, bounds=(0, 2))
    ref, t_ref = _timed(lambda: optimize.linprog(c, **kw))
    res, t = _timed(lambda: optcore.linprog(c, **kw, tol=1e-6))
    print(f"   {'solver':<22} {'time (s)':>9} {'iters':>7} {'objective':>16} {'status':>7}")
    print(f"   {'optcore linprog':<22} {t:>9.4f} {res.nit:>7} {res.fun:>16.8f} {res.status:>7}")
    print(f"   {'scipy linprog (HiGHS)':<22} {t_ref:>9.4f} {ref.nit:>7} {ref.fun:>16.8f} {ref.status:>7}")
    print(
        f"   relative objective gap {abs(res.fun - ref.fun) / (1 + abs(ref.fun)):.1e}; optcore's duals "
        f"(ineqlin.marginals) differ from HiGHS's by {np.abs(res.ineqlin.marginals - ref.ineqlin.marginals).max():.1e}"
    )
    print()


def tour_monotone(n: int, seed: int) -> None:
    from scipy import optimize

    from optcore.monotone import MatrixGame, solve

    print(f"== Monotone inclusions: the {n}x{n} 'policeman and burglar' matrix game, tol 1e-6 ==")
    print("   optcore.monotone.solve (restarted reflected Halpern PDHG, extra-anchored gradient,")
    print("   variance-reduced Halpern, extragradient; budget 20000 epochs) vs the game's value from")
    print("   scipy.optimize.linprog (HiGHS). 'residual' is the natural residual of the returned strategies,")
    print("   'gap' their duality gap (0 exactly at equilibrium).")
    game = MatrixGame.policeman_burglar(n, rng=seed)
    A = game.A
    lp = optimize.linprog(
        np.r_[np.zeros(n), 1.0],
        A_ub=np.c_[A, -np.ones(n)],
        b_ub=np.zeros(n),
        A_eq=np.r_[np.ones(n), 0.0][None],
        b_eq=[1.0],
        bounds=[(0, None)] * n + [(None, None)],
    )
    print(
        f"   {'solver':<28} {'time (s)':>9} {'epochs':>7} {'status':>6} {'residual':>10} {'gap':>10} {'|value - LP|':>13}"
    )
    for method in ("halpern", "eag", "vr_halpern", "eg"):
        res, t = _timed(
            lambda m=method: solve(game, method=m, tol=1e-6, rng=seed, warn=False, options={"max_epochs": 20_000})
        )
        print(
            f"   {'optcore ' + method:<28} {t:>9.4f} {res.epochs:>7.0f} {res.status:>6} {res.residual:>10.2e} "
            f"{res.gap:>10.2e} {abs(res.fun - lp.fun):>13.2e}"
        )
    print(f"   the game's value (HiGHS LP): {lp.fun:.8f}")
    print("   An epoch is one full operator's worth of component evaluations. halpern (matrix games and")
    print("   quadratic min-max problems) adapts its primal weight and restarts: the fewest epochs.")
    print("   vr_halpern samples minibatches of components: it pays off when F is a large sum of costly")
    print("   components (500x500 game: benches/results/monotone.md); on this small dense game it is still")
    print("   at 4.5e-2 when the budget ends, and says so (status 1). eg has no rate on the residual.")
    print()


def tour_zo(d: int, seed: int) -> None:
    from scipy import optimize

    from optcore import zo

    print(f"== Zeroth-order: optcore.zo.minimize vs scipy.optimize.minimize, d = {d} ==")
    print("   f(x) = |A (x - 1)|^2, A = diag(sqrt(1..10)) Q with Q a random rotation (condition 10): a Python")
    print("   function of one point (no gradients), x0 = 0. 'evals to 1e-6': evaluations until f <= 1e-6 first")
    print("   held, counted here for every solver.")
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    A = np.sqrt(np.linspace(1, 10, d))[:, None] * Q

    def f(x):
        f.n += 1
        v = float(np.sum((A @ (x - 1)) ** 2))
        if f.hit is None and v <= 1e-6:
            f.hit = f.n
        return v

    x0 = np.zeros(d)
    print(f"   {'solver':<34} {'time (s)':>9} {'evals':>7} {'evals to 1e-6':>14} {'final f':>10}")

    def row(name, call):
        f.n, f.hit = 0, None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res, t = _timed(call)
        print(f"   {name:<34} {t:>9.4f} {f.n:>7} {f.hit or '–':>14} {res.fun:>10.2e}")

    for method in ("cge", "gaussian"):
        row(f"optcore zo {method}", lambda m=method: zo.minimize(f, x0, method=m, rng=seed, maxfev=200 * d))
    for method in ("Powell", "Nelder-Mead"):
        row(f"scipy {method}", lambda m=method: optimize.minimize(f, x0, method=m, options={"maxfev": 200 * d}))
    X = np.random.default_rng(seed).standard_normal((4, 5))
    print(
        f"   native batched test functions: zo.functions.rastrigin(X) for X of shape {X.shape} -> "
        f"{np.round(zo.functions.rastrigin(X), 2)}"
    )
    print("   Budget 200 d evaluations each. On separable functions Powell is faster (coordinate line searches);")
    print("   method='cbo' (consensus-based, global) is for multimodal functions such as Rastrigin, not this one.")
    print("   `python benches/zo.py` compares every method with Nelder–Mead, Powell, COBYQA, pycma and nevergrad.")


def tour_bilevel(seed: int) -> None:
    from scipy import optimize

    from optcore import bilevel

    dx, dy = 10, 200
    print(f"== Bilevel: a quadratic bilevel problem, d_x = {dx}, d_y = {dy}, known solution ==")
    print("   min_x f(x, y*(x)), y*(x) = argmin_y g(x, y) strongly convex; optcore.bilevel.minimize on the")
    print("   native problem (aid: Hessian- and Jacobian-vector products, or the factored lower Hessian where")
    print("   that is cheaper: column 'lower'; exact: the factored lower Hessian) beside")
    print("   SciPy L-BFGS-B on the closed-form F(x) and its exact gradient (dense solves with the Hessian).")
    print("   '|x - x*|' is the distance to the closed-form solution, 'F - F*' the upper-level gap, '|grad F|'")
    print("   the hypergradient norm at the returned x; tol 1e-10 on it.")
    q = bilevel.problems.Quadratic.random(d_x=dx, d_y=dy, seed=seed)
    x0 = np.zeros(dx)
    print(
        f"   {'solver':<30} {'time (s)':>9} {'iters':>7} {'status':>6} {'|x - x*|':>10} {'F - F*':>10} {'|grad F|':>10}"
        f" {'lower':>10}"
    )
    runs = (
        ("optcore aid, outer='lbfgs'", "aid", "lbfgs", 1000),
        ("optcore exact (L-BFGS)", "exact", "lbfgs", 1000),
        ("optcore aid, gradient steps", "aid", "gd", 3000),
    )
    for name, method, outer, maxiter in runs:
        res, t = _timed(
            lambda m=method, o=outer, n=maxiter: bilevel.minimize(
                q, x0, method=m, outer=o, tol=1e-10, maxiter=n, rng=seed, warn=False
            )
        )
        err = np.linalg.norm(res.x - q.optimal_x)
        gap = q.value(res.x) - q.optimal_value
        print(
            f"   {name:<30} {t:>9.4f} {res.nit:>7} {res.status:>6} {err:>10.1e} {gap:>10.1e} {res.hypergrad_norm:>10.1e}"
            f" {res.get('lower_solve', 'iterative'):>10}"
        )
    ref, t = _timed(
        lambda: optimize.minimize(
            lambda x: (q.value(x), q.hypergradient_closed_form(x)),
            x0,
            jac=True,
            method="L-BFGS-B",
            options={"gtol": 1e-10, "ftol": 0.0},
        )
    )
    err = np.linalg.norm(ref.x - q.optimal_x)
    gnorm = np.linalg.norm(q.hypergradient_closed_form(ref.x))
    print(
        f"   {'scipy L-BFGS-B (closed form)':<30} {t:>9.4f} {ref.nit:>7} {ref.status:>6} {err:>10.1e} "
        f"{ref.fun - q.optimal_value:>10.1e} {gnorm:>10.1e}"
    )
    print("   outer='lbfgs' solves the lower level by Newton-CG and H v = grad_y f by CG at every outer point")
    print("   (warm started, tolerances shrinking with the hypergradient), or, once those products cost more than")
    print("   a Cholesky factorisation, by Newton with the factored lower Hessian (options={'lower_solve': ...}),")
    print("   and line-searches on F: it reaches the optimum in about as many iterations as L-BFGS-B on the")
    print("   closed form. On this well-conditioned quadratic gradient steps get there too; on ridge")
    print("   hyperparameters (nearly flat directions) they stall.")
    print("   Python oracles work too (bilevel.Problem, with f=... for the line search);")
    print("   `python benches/bilevel_outer.py` compares with JAXopt and L-BFGS-B on ridge and hyper-cleaning.")
    print()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m optcore", description=__doc__)
    parser.add_argument("--n", type=int, default=500, help="OT problem size (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"optcore {optcore.__version__} (CPU kernels: {optcore._core.simd_level()})\n")
    tour_ot(args.n, args.seed)
    tour_sns(min(args.n, 500), args.seed)
    tour_fixed_point(2000, args.seed)
    tour_monotone(50, args.seed)
    tour_linprog(2000, 4000, args.seed)
    tour_zo(30, args.seed)
    tour_bilevel(args.seed)


if __name__ == "__main__":
    main()
