"""``python -m optcore``: a short tour that solves representative problems of each family
and prints optcore's results beside the reference library's (here: Sinkhorn against POT)."""

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
        print(f"   {reg:>6g}  {'optcore (log, default)':<28} {t:>9.4f} {res.nit:>6d} {_l1(res.plan, a, b):>9.1e}  {res.cost:>12.8f}")
        res32, t32 = _timed(lambda: optcore.ot.sinkhorn(a.astype(np.float32), b.astype(np.float32), M.astype(np.float32), reg))
        print(f"   {'':>6}  {'optcore (log, float32)':<28} {t32:>9.4f} {res32.nit:>6d} {_l1(res32.plan, a, b):>9.1e}  {res32.cost:>12.8f}")
        if pot is not None:
            for method in ("sinkhorn", "sinkhorn_log"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    (plan, log), tp = _timed(
                        lambda: pot.sinkhorn(a, b, M, reg, method=method, stopThr=1e-7, numItermax=100_000, log=True)
                    )
                nit = log.get("niter", len(log.get("err", [])) * 10)
                print(f"   {'':>6}  {'POT ' + method:<28} {tp:>9.4f} {nit:>6d} {_l1(plan, a, b):>9.1e}  {float((plan * M).sum()):>12.8f}")
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
        print(f"   {'POT emd (exact LP)':<28} {t:>9.4f} {'':>14} {_l1(plan, a, b):>9.1e}  {float((plan * M).sum()):>12.8f}")
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
    for name, kw in (("optcore halpern restart='adaptive'", {"restart": "adaptive"}),
                     ("optcore picard", {"method": "picard"})):
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


def tour_bilevel(seed: int) -> None:
    from scipy import linalg, optimize

    from optcore import bilevel

    p, n = 20, 200
    print(f"== Bilevel: ridge hyperparameters, one per feature (p = {p}, {n} train / {n} validation rows) ==")
    print("   min_λ ||X_val w*(λ) - y_val||²/n, w*(λ) = argmin_w ||X w - y||²/n + Σ exp(λ_j) w_j²;")
    print("   optcore.bilevel (native problem, Rust) beside SciPy L-BFGS-B on the closed form (NumPy solves).")
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(p)
    X, Xv = rng.standard_normal((n, p)), rng.standard_normal((n, p))
    y, yv = X @ w + rng.standard_normal(n), Xv @ w + rng.standard_normal(n)
    prob = bilevel.problems.RidgeHyperparameter(X, y, Xv, yv, per_feature=True)
    lam0 = np.zeros(p)
    g_rs = bilevel.hypergradient(prob, lam0, prob.y_star(lam0), method="exact")
    g_np = prob.hypergradient_closed_form(lam0)
    print(f"   hypergradient at λ = 0: optcore vs closed form, max |diff| = {np.abs(g_rs - g_np).max():.1e}")

    def F_and_grad(lam):
        H = 2 * X.T @ X / n + 2 * np.diag(np.exp(lam))
        c = linalg.cho_factor(H)
        wl = linalg.cho_solve(c, 2 * X.T @ y / n)
        r = Xv @ wl - yv
        v = linalg.cho_solve(c, 2 * Xv.T @ r / n)
        return r @ r / n, -2 * np.exp(lam) * wl * v

    print(f"   {'solver':<30} {'time (s)':>9} {'iters':>7} {'F(λ)':>12} {'||∇F||':>9}")
    for method in ("aid", "f2sa"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res, t = _timed(lambda m=method: bilevel.minimize(prob, lam0, method=m, maxiter=3000, tol=1e-7, rng=seed))
        grad = np.linalg.norm(F_and_grad(res.x)[1])
        print(f"   {'optcore ' + method:<30} {t:>9.4f} {res.nit:>7} {prob.value(res.x):>12.8f} {grad:>9.1e}")
    ref, t = _timed(lambda: optimize.minimize(F_and_grad, lam0, jac=True, method="L-BFGS-B", options={"gtol": 1e-9}))
    print(f"   {'scipy L-BFGS-B (closed form)':<30} {t:>9.4f} {ref.nit:>7} {ref.fun:>12.8f} {np.linalg.norm(ref.jac):>9.1e}")
    print("   optcore runs gradient descent on λ with estimated steps and never forms the Hessian; it")
    print("   also takes Python oracles (bilevel.Problem). `python benches/bilevel.py` compares with JAXopt.")
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
    tour_bilevel(args.seed)
    print("Families still to come in this tour: Halpern LP, zeroth-order.")


if __name__ == "__main__":
    main()
