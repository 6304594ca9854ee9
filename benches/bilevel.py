#!/usr/bin/env python
"""Bilevel optimisation: optcore.bilevel against JAXopt implicit differentiation and plain
NumPy exact-hypergradient descent (issue 7, evidence items 1-3).

    python benches/bilevel.py            # -> benches/results/bilevel.md + .json (about 15 min on 2 cores)
    python benches/bilevel.py --quick    # smaller budgets, smoke run (-> bilevel_quick.md)

1. Quadratic bilevel with a closed-form solution, benchopt's sizes (d_x = 10, d_y = 100, lower
   level strongly convex: ``Quadratic.random(10, 100, seed=0)``, ``A`` with eigenvalues in
   [0.1, 1]): relative gap ``(F(x_k) − F*)/|F*|`` against iterations, oracle calls and time
   for every method, with default options. Oracle calls and times at a target come from a
   rerun stopped at the first iteration that reached it (the methods are deterministic).
2. Ridge hyperparameters, one per feature, d ∈ {50, 500}, 1000 training and 1000 validation
   rows (Gaussian X, dense Gaussian true weights, unit noise, seed 0). ``F*`` is the best of
   a long SciPy L-BFGS-B run on the closed-form ``F`` and every method's best point. Every
   method does gradient descent on ``λ`` with the same step (optcore's estimate ``1/L̂_F``)
   within a time budget: optcore ``aid`` (native problem, Rust), NumPy (exact hypergradient
   by Cholesky of the d × d Hessian, Gram matrices precomputed), and JAXopt (``LBFGS`` inner
   solver with its default implicit differentiation, warm started, the outer step jitted).
   Reported: time to reach relative gaps 1e-2 … 1e-6.
3. Data hyper-cleaning on scikit-learn's ``load_digits`` (1797 images, 8×8, 10 classes;
   standardised, an intercept column; 900 train / 450 validation / 447 test, half of the
   training labels replaced by uniform random labels, seed 0), multinomial logistic
   regression with one weight per training example, ``reg = 1e-3``: validation and test
   accuracy against time for optcore ``f2sa``, ``penalty``, ``borep``, ``aid``, ``soba`` and
   JAXopt (same model, ``LBFGS`` inner solver with implicit differentiation, outer gradient
   descent with optcore ``aid``'s step). Plus a synthetic version at benchopt's MNIST size
   (20000 × 784, 10 classes, 5000 validation rows) timed over a few outer iterations.

Times are wall-clock with the callback's own time subtracted; F is evaluated afterwards on
the recorded iterates (at about 80 log-spaced iterations, so a time to target is resolved to
about 5%). The machine is shared and has 2 cores: timings are noisy; ratios measured in one
run are more meaningful than absolute times.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import ot_cpu  # same directory: machine_info / machine_lines / ForeignLoad
import scipy.linalg as sla
from scipy import optimize

from optcore import bilevel
from optcore.bilevel import problems

HERE = Path(__file__).resolve().parent
TARGETS = (1e-2, 1e-3, 1e-4, 1e-6)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- traces


class Trace:
    """Records ``(time, x)`` per iteration, excluding the recorder's own time."""

    def __init__(self, budget: float):
        self.budget = budget
        self.t0 = time.perf_counter()
        self.overhead = 0.0
        self.times: list[float] = []
        self.xs: list[np.ndarray] = []
        self.extra: list = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0 - self.overhead

    def record(self, x, extra=None) -> bool:
        """Returns False once the budget is spent."""
        s = time.perf_counter()
        self.times.append(s - self.t0 - self.overhead)
        self.xs.append(np.array(x, dtype=np.float64, copy=True))
        self.extra.append(extra)
        self.overhead += time.perf_counter() - s
        return self.times[-1] < self.budget

    def callback(self, r):
        if not self.record(r.x):
            raise StopIteration


def sample_idx(n: int, points: int = 80) -> list[int]:
    idx = np.unique(np.round(np.geomspace(1, n, points)).astype(int) - 1)
    return sorted(set(idx.tolist()) | {n - 1})


def first_reach(times, gaps, target):
    for t, g in zip(times, gaps):
        if g <= target:
            return t
    return None


def fmt_t(t) -> str:
    return "–" if t is None else (f"{t:.3f}" if t < 10 else f"{t:.1f}")


def total_calls(c: dict) -> int:
    return int(c["grad_f"] + c["grad_g"] + c["hvp_yy"] + c["jvp_xy"])


# --------------------------------------------------------------------------- 1. quadratic


QUAD_RUNS = [
    ("aid (CG)", "aid", None, 200),
    ("aid (Neumann)", "aid", {"solver": "neumann"}, 1000),
    ("itd", "itd", None, 1000),
    ("soba", "soba", None, 3000),
    ("borep", "borep", None, 3000),
    ("f2sa", "f2sa", None, 3000),
    ("f2sa + momentum", "f2sa", {"momentum": 0.5}, 3000),
    ("penalty", "penalty", None, 1000),
]


def bench_quadratic(args) -> dict:
    q = problems.Quadratic.random(10, 100, seed=0)
    H = q._hessian_F()
    g0 = q.hypergradient_closed_form(np.zeros(10))
    F0 = q.value(np.zeros(10))
    Fs = q.optimal_value

    def gap(x):
        return max((0.5 * x @ H @ x + g0 @ x + F0 - Fs) / abs(Fs), 0.0)

    out = []
    for label, method, opts, maxiter in QUAD_RUNS:
        maxiter = maxiter // 4 if args.quick else maxiter
        tr = Trace(np.inf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = bilevel.minimize(
                q,
                np.zeros(10),
                method=method,
                maxiter=maxiter,
                tol=0.0,
                rng=0,
                options=opts,
                callback=tr.callback,
                check_every=1,
            )
        gaps = [gap(x) for x in tr.xs]
        row = dict(
            label=label,
            method=method,
            options=opts,
            nit=res.nit,
            final_gap=gaps[-1] if gaps else None,
            time=tr.times[-1] if tr.times else None,
            calls=total_calls(res.oracle_calls),
            oracle_calls=res.oracle_calls,
            phase_times=res.phase_times,
            at={},
        )
        for target in (1e-6, 1e-10):
            k = next((i for i, g in enumerate(gaps) if g <= target), None)
            if k is None:
                continue
            # Rerun to exactly k+1 iterations without a callback: calls and time at the target.
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r2 = bilevel.minimize(q, np.zeros(10), method=method, maxiter=k + 1, tol=0.0, rng=0, options=opts)
            t = time.perf_counter() - t
            row["at"][f"{target:g}"] = dict(nit=k + 1, calls=total_calls(r2.oracle_calls), time=t, gap=gap(r2.x))
        # A sparse gap curve for the JSON.
        row["curve"] = [(i + 1, gaps[i]) for i in sample_idx(len(gaps), 30)] if gaps else []
        out.append(row)
        log(f"quadratic {label}: gap {row['final_gap']:.2e} after {res.nit} it")
    return dict(F_star=Fs, rows=out)


# --------------------------------------------------------------------------- 2. ridge


def ridge_data(p: int, n: int = 1000, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(p)
    X, Xv = rng.standard_normal((n, p)), rng.standard_normal((n, p))
    return X, X @ w + rng.standard_normal(n), Xv, Xv @ w + rng.standard_normal(n)


class RidgeExact:
    """F(λ) and its exact gradient by dense Cholesky (NumPy/SciPy)."""

    def __init__(self, X, t, Xv, tv):
        n, nv = len(t), len(tv)
        self.G, self.b = 2 * X.T @ X / n, 2 * X.T @ t / n
        self.Gv, self.bv, self.cv = 2 * Xv.T @ Xv / nv, 2 * Xv.T @ tv / nv, tv @ tv / nv

    def value_grad(self, lam):
        e = np.exp(lam)
        c = sla.cho_factor(self.G + np.diag(2 * e))
        w = sla.cho_solve(c, self.b)
        gw = self.Gv @ w - self.bv
        F = 0.5 * w @ self.Gv @ w - self.bv @ w + self.cv
        v = sla.cho_solve(c, gw)
        return F, -2 * e * w * v


def jax_ridge(X, t, Xv, tv):
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import jaxopt  # noqa: PLC0415

    jax.config.update("jax_enable_x64", True)
    Xj, tj, Xvj, tvj = map(jnp.asarray, (X, t, Xv, tv))
    n, nv = len(t), len(tv)

    def inner(w, lam):
        r = Xj @ w - tj
        return r @ r / n + jnp.sum(jnp.exp(lam) * w * w)

    solver = jaxopt.LBFGS(fun=inner, tol=1e-9, maxiter=500)

    def outer(lam, w0):
        w = solver.run(w0, lam).params
        r = Xvj @ w - tvj
        return r @ r / nv, w

    return jax.jit(jax.value_and_grad(outer, has_aux=True)), jnp


def bench_ridge(args) -> list:
    out = []
    for p in args.ridge_dims:
        budget = (args.budget / 4 if p <= 100 else args.budget) * (0.2 if args.quick else 1.0)
        X, t, Xv, tv = ridge_data(p)
        prob = problems.RidgeHyperparameter(X, t, Xv, tv, per_feature=True)
        ex = RidgeExact(X, t, Xv, tv)
        lam0 = np.zeros(p)
        # Reference: L-BFGS-B on the closed form.
        tr0 = time.perf_counter()
        ref_budget = 60.0 * (0.2 if args.quick else 1.0)

        def stop(intermediate_result):
            if time.perf_counter() - tr0 > ref_budget:
                raise StopIteration

        ref = optimize.minimize(
            ex.value_grad,
            lam0,
            jac=True,
            method="L-BFGS-B",
            callback=stop,
            options=dict(maxiter=5000, ftol=1e-15, gtol=1e-12),
        )
        t_ref = time.perf_counter() - tr0
        log(f"ridge d={p}: L-BFGS-B reference F={ref.fun:.10g} ({ref.nit} it, {t_ref:.1f} s)")
        runs = {}
        # optcore aid
        tr = Trace(budget)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = bilevel.minimize(
                prob, lam0, method="aid", maxiter=10**7, tol=0.0, rng=0, callback=tr.callback, check_every=1
            )
        beta = res.outer_step
        runs["optcore aid"] = (tr, dict(nit=res.nit, oracle_calls=res.oracle_calls, phase_times=res.phase_times))
        # NumPy exact-hypergradient GD (Gram precomputation included in its time).
        tr = Trace(budget)
        exn = RidgeExact(X, t, Xv, tv)
        lam = lam0.copy()
        while True:
            _, g = exn.value_grad(lam)
            lam = lam - beta * g
            if not tr.record(lam):
                break
        runs["NumPy exact GD"] = (tr, dict(nit=len(tr.xs)))
        # JAXopt implicit differentiation.
        vg, jnp = jax_ridge(X, t, Xv, tv)
        lamj, wj = jnp.asarray(lam0), jnp.zeros(p)
        tc = time.perf_counter()
        (Fj, wj2), gj = vg(lamj, wj)
        gj.block_until_ready()
        compile_s = time.perf_counter() - tc
        tr = Trace(budget)
        while True:
            (Fj, wj), gj = vg(lamj, wj)
            lamj = lamj - beta * gj
            lamj.block_until_ready()
            if not tr.record(np.asarray(lamj)):
                break
        runs["JAXopt implicit diff"] = (tr, dict(nit=len(tr.xs), compile_s=compile_s))
        # Gaps.
        evals = {}
        best = ref.fun
        for name, (tr, _) in runs.items():
            idx = sample_idx(len(tr.xs))
            vals = [ex.value_grad(tr.xs[i])[0] for i in idx]
            evals[name] = (idx, vals)
            best = min(best, min(vals))
        rows = []
        for name, (tr, info) in runs.items():
            idx, vals = evals[name]
            gaps = [(v - best) / abs(best) for v in vals]
            times = [tr.times[i] for i in idx]
            rows.append(
                dict(
                    name=name,
                    final_gap=gaps[-1],
                    iterations=len(tr.xs),
                    time=tr.times[-1],
                    per_iter_ms=1e3 * tr.times[-1] / max(len(tr.xs), 1),
                    reach={f"{g:g}": first_reach(times, gaps, g) for g in TARGETS},
                    curve=list(zip([i + 1 for i in idx], times, gaps)),
                    **info,
                )
            )
            log(f"ridge d={p} {name}: {len(tr.xs)} it, gap {gaps[-1]:.2e}, {rows[-1]['per_iter_ms']:.2f} ms/it")
        out.append(
            dict(
                p=p,
                n=1000,
                budget=budget,
                F_star=best,
                F_lbfgs=ref.fun,
                lbfgs_nit=int(ref.nit),
                lbfgs_time=t_ref,
                step=beta,
                rows=rows,
            )
        )
    return out


# --------------------------------------------------------------------------- 3. hyper-cleaning


def digits_split(seed: int = 0):
    from sklearn.datasets import load_digits  # noqa: PLC0415

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    X, y = X[perm], y[perm]
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    X = np.hstack([X, np.ones((len(X), 1))])
    ntr, nval = 900, 450
    noisy = y[:ntr].copy()
    flip = rng.random(ntr) < 0.5
    noisy[flip] = rng.integers(0, 10, flip.sum())
    return (X[:ntr], noisy, y[:ntr]), (X[ntr : ntr + nval], y[ntr : ntr + nval]), (X[ntr + nval :], y[ntr + nval :])


def jax_cleaning(Xtr, ltr, Xv, lv, classes, reg):
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import jaxopt  # noqa: PLC0415
    from jax.scipy.special import logsumexp  # noqa: PLC0415

    jax.config.update("jax_enable_x64", True)
    Xj, Xvj = jnp.asarray(Xtr), jnp.asarray(Xv)
    lj, lvj = jnp.asarray(ltr), jnp.asarray(lv)

    def ce(W, X, lab):
        z = X @ W
        return logsumexp(z, axis=1) - jnp.take_along_axis(z, lab[:, None], axis=1)[:, 0]

    def inner(W, x):
        return jnp.mean(jax.nn.sigmoid(x) * ce(W, Xj, lj)) + 0.5 * reg * jnp.sum(W * W)

    solver = jaxopt.LBFGS(fun=inner, tol=1e-8, maxiter=500)

    def outer(x, W0):
        W = solver.run(W0, x).params
        return jnp.mean(ce(W, Xvj, lvj)), W

    return jax.jit(jax.value_and_grad(outer, has_aux=True)), jnp


CLEAN_RUNS = [("f2sa", 200), ("penalty", 60), ("borep", 300), ("aid", 200), ("soba", 1000)]


def bench_cleaning(args) -> dict:
    (Xtr, noisy, clean), (Xv, yv), (Xte, yte) = digits_split()
    reg = 1e-3
    prob = problems.LogisticHyperCleaning(Xtr, noisy, Xv, yv, reg=reg, classes=10)
    ntr = len(noisy)
    acc = lambda y: (prob.accuracy(y, Xv, yv), prob.accuracy(y, Xte, yte))  # noqa: E731
    base = bilevel.minimize(prob, np.zeros(ntr), maxiter=0)
    rows = []
    beta = None
    for method, maxiter in CLEAN_RUNS:
        maxiter = maxiter // 4 if args.quick else maxiter
        tr = Trace(np.inf)
        snaps = []

        def cb(r, tr=tr, snaps=snaps):
            s = time.perf_counter()
            if r.nit % 10 == 0:
                snaps.append((tr.elapsed(), r.nit, *acc(r.y)))
            tr.overhead += time.perf_counter() - s

        t0 = time.perf_counter()
        tr.t0 = t0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = bilevel.minimize(
                prob, np.zeros(ntr), method=method, maxiter=maxiter, tol=0.0, rng=0, callback=cb, check_every=1
            )
        total = time.perf_counter() - t0 - tr.overhead
        if method == "aid":
            beta = res.outer_step
        va, te = acc(res.y)
        rows.append(
            dict(
                name=f"optcore {method}",
                nit=res.nit,
                time=total,
                val=va,
                test=te,
                snaps=snaps,
                oracle_calls=res.oracle_calls,
                phase_times=res.phase_times,
            )
        )
        log(f"cleaning {method}: val {va:.3f} test {te:.3f} in {total:.1f} s")
    # JAXopt with AID's step and iteration count.
    vg, jnp = jax_cleaning(Xtr, noisy, Xv, yv, 10, reg)
    p = Xtr.shape[1]
    xj, Wj = jnp.zeros(ntr), jnp.zeros((p, 10))
    tc = time.perf_counter()
    (_, _), g = vg(xj, Wj)
    g.block_until_ready()
    compile_s = time.perf_counter() - tc
    n_it = CLEAN_RUNS[3][1] // (4 if args.quick else 1)
    snaps = []
    t0 = time.perf_counter()
    over = 0.0
    for k in range(1, n_it + 1):
        (_, Wj), g = vg(xj, Wj)
        xj = xj - beta * g
        xj.block_until_ready()
        if k % 10 == 0:
            s = time.perf_counter()
            snaps.append((s - t0 - over, k, *acc(np.asarray(Wj).reshape(-1))))
            over += time.perf_counter() - s
    total = time.perf_counter() - t0 - over
    va, te = acc(np.asarray(Wj).reshape(-1))
    rows.append(
        dict(name="JAXopt implicit diff", nit=n_it, time=total, val=va, test=te, snaps=snaps, compile_s=compile_s)
    )
    log(f"cleaning JAXopt: val {va:.3f} test {te:.3f} in {total:.1f} s")
    best = max(r["test"] for r in rows)
    for r in rows:
        r["time_to_within_1pt"] = next((s[0] for s in r["snaps"] if s[3] >= best - 0.01), None)
    bva, bte = acc(base.y)
    return dict(
        n_train=ntr,
        reg=reg,
        baseline=dict(val=bva, test=bte),
        best_test=best,
        step=beta,
        rows=rows,
        clean_fraction_of_flipped=float(np.mean(noisy == clean)),
    )


def bench_large(args) -> dict:
    n, p, k, nv = (args.large_n, 784, 10, 5000)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((p, k)) / np.sqrt(p) * 3
    X = rng.standard_normal((n, p)).astype(np.float64)
    Xv = rng.standard_normal((nv, p))
    lab, lv = (X @ W).argmax(1), (Xv @ W).argmax(1)
    noisy = lab.copy()
    flip = rng.random(n) < 0.5
    noisy[flip] = rng.integers(0, k, flip.sum())
    prob = problems.LogisticHyperCleaning(X, noisy, Xv, lv, reg=1e-3, classes=k)
    iters = 2 if args.quick else args.large_iters
    rows = []
    o = prob.oracles(np.zeros(n), np.zeros(p * k), np.ones(p * k))  # warm-up
    t = time.perf_counter()
    for _ in range(3):
        prob.oracles(np.zeros(n), np.zeros(p * k))
    per_eval = (time.perf_counter() - t) / 3
    del o
    for method in ("aid", "f2sa"):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = bilevel.minimize(
                prob,
                np.zeros(n),
                method=method,
                maxiter=iters,
                tol=0.0,
                rng=0,
                options={"refine_steps": 50, "outer_step": 1e3, "lipschitz_probes": 1},
            )
        total = time.perf_counter() - t
        loop = res.phase_times["lower"] + res.phase_times["linear"] + res.phase_times["upper"]
        rows.append(
            dict(
                name=f"optcore {method}",
                nit=res.nit,
                time=total,
                loop_time=loop,
                per_iter=loop / max(res.nit, 1),
                calls=total_calls(res.oracle_calls),
                oracle_calls=res.oracle_calls,
                phase_times=res.phase_times,
                val=prob.accuracy(res.y, Xv, lv),
            )
        )
        log(f"large {method}: {res.nit} it, {loop / max(res.nit, 1):.2f} s/it")
    vg, jnp = jax_cleaning(X, noisy, Xv, lv, k, 1e-3)
    xj, Wj = jnp.zeros(n), jnp.zeros((p, k))
    tc = time.perf_counter()
    (_, Wj), g = vg(xj, Wj)
    g.block_until_ready()
    first = time.perf_counter() - tc
    t = time.perf_counter()
    for _ in range(iters):
        (_, Wj), g = vg(xj, Wj)
        xj = xj - 1e3 * g
        xj.block_until_ready()
    total = time.perf_counter() - t
    rows.append(
        dict(
            name="JAXopt implicit diff",
            nit=iters,
            time=total,
            per_iter=total / iters,
            first_call=first,
            val=prob.accuracy(np.asarray(Wj).reshape(-1), Xv, lv),
        )
    )
    log(f"large JAXopt: {total / iters:.2f} s/it")
    return dict(n=n, p=p, classes=k, n_val=nv, iters=iters, grad_eval_s=per_eval, rows=rows)


# --------------------------------------------------------------------------- report


def report(args, info, end_info, res, elapsed) -> str:
    L = ["# optcore.bilevel benchmark\n"]
    L.append(
        f"`{shlex.join(['python', 'benches/bilevel.py', *sys.argv[1:]])}` — {info['date']}, "
        f"total runtime {elapsed / 60:.1f} min.\n"
    )
    L.append("## Machine\n")
    L += ot_cpu.machine_lines(info, end_info)
    v = info["versions"]
    L.append(
        f"- Python {info['python']}, numpy {v['numpy']} (BLAS: {info['blas']}), scipy {v['scipy']}, "
        f"jax {info['jax']}, jaxopt {info['jaxopt']}, scikit-learn {info['sklearn']}"
    )
    L.append(
        f"- optcore {v['optcore']} (extension sha256 {info['core_hash']}, repo `{info['git']}`); "
        "JAX on CPU with x64; every library on its default threads."
    )
    L.append(
        "- **The machine is shared (2 cores, other agents' jobs): absolute times are noisy; compare "
        "ratios within one run.**\n"
    )

    q = res["quadratic"]
    L.append("## 1. Quadratic bilevel, d_x = 10, d_y = 100 (closed form)\n")
    L.append(
        f"`Quadratic.random(10, 100, seed=0)`, F* = {q['F_star']:.10g}; default options, `x0 = 0`, "
        "`y0 = 0`. Gap = (F(x) − F*)/|F*| with F in closed form. 'calls' = grad_f + grad_g + hvp_yy + "
        "jvp_xy evaluations (setup included).\n"
    )
    L.append(
        "| method | iterations | final gap | to 1e-6: it / calls / time (s) | to 1e-10: it / calls / time (s) | total time (s) |"
    )
    L.append("|---|---|---|---|---|---|")
    for r in q["rows"]:
        cells = []
        for tgt in ("1e-06", "1e-10"):
            a = r["at"].get(tgt)
            cells.append("not reached" if a is None else f"{a['nit']} / {a['calls']} / {a['time']:.3f}")
        L.append(f"| {r['label']} | {r['nit']} | {r['final_gap']:.1e} | {cells[0]} | {cells[1]} | {r['time']:.3f} |")
    L.append("")
    get = {r["label"]: r for r in q["rows"]}
    ok = lambda lab, tgt: get[lab]["final_gap"] is not None and get[lab]["final_gap"] <= tgt  # noqa: E731
    L.append(
        f"- Targets: F2SA ≤ 1e-6: **{'met' if ok('f2sa', 1e-6) else 'missed'}** "
        f"({get['f2sa']['final_gap']:.1e}); penalty ≤ 1e-6: **{'met' if ok('penalty', 1e-6) else 'missed'}** "
        f"({get['penalty']['final_gap']:.1e}); AID-CG ≤ 1e-10: **{'met' if ok('aid (CG)', 1e-10) else 'missed'}** "
        f"({get['aid (CG)']['final_gap']:.1e})."
    )
    L.append(
        "- ITD differentiates the truncated unrolled map from a warm start (20 steps by default): its "
        "fixed point is biased by the neglected tail (I − αH)^T, so its gap stalls. BO-REP's normalised "
        "steps decay like 1/√k (a constant step stalls at its own length), so it converges slowly. "
        "F2SA's gap is limited by its O(1/λ) bias at λ ≤ 3000 after 3000 iterations; the STORM "
        "variant doubles the calls per step and changes little in a deterministic run.\n"
    )

    L.append("## 2. Ridge hyperparameters, one per feature (n_train = n_val = 1000)\n")
    L.append(
        "Gradient descent on λ with the same step for every method (optcore's estimate 1/L̂_F); time "
        "budget per method; gap = (F(λ) − F*)/|F*| with F* the best of an L-BFGS-B run on the closed "
        "form and all runs. Times to a gap in seconds ('–': not reached within the budget).\n"
    )
    for r in res["ridge"]:
        L.append(f"### d = {r['p']} (budget {r['budget']:.0f} s per method, step {r['step']:.3g})\n")
        L.append(
            f"F* = {r['F_star']:.10g} (L-BFGS-B: {r['F_lbfgs']:.10g} after {r['lbfgs_nit']} iterations, "
            f"{r['lbfgs_time']:.1f} s).\n"
        )
        L.append(
            "| method | iterations | ms / iteration | final gap | " + " | ".join(f"t({g:g})" for g in TARGETS) + " |"
        )
        L.append("|---|---|---|---|" + "---|" * len(TARGETS))
        for row in r["rows"]:
            L.append(
                f"| {row['name']} | {row['iterations']} | {row['per_iter_ms']:.2f} | {row['final_gap']:.1e} | "
                + " | ".join(fmt_t(row["reach"][f"{g:g}"]) for g in TARGETS)
                + " |"
            )
        by = {row["name"]: row for row in r["rows"]}
        o, j, npy = by["optcore aid"], by["JAXopt implicit diff"], by["NumPy exact GD"]
        common = [g for g in TARGETS if o["reach"][f"{g:g}"] and j["reach"][f"{g:g}"]]
        if common:
            g = common[-1]
            L.append(
                f"\n- Speed-up over JAXopt at the tightest gap both reached ({g:g}): "
                f"**{j['reach'][f'{g:g}'] / o['reach'][f'{g:g}']:.1f}×**; per iteration "
                f"{j['per_iter_ms'] / o['per_iter_ms']:.1f}×. Over NumPy exact GD per iteration: "
                f"{npy['per_iter_ms'] / o['per_iter_ms']:.2f}×. JAXopt compile time (excluded): {j['compile_s']:.1f} s."
            )
        L.append("")
    L.append(res["ridge_notes"] + "\n")

    c = res["cleaning"]
    L.append("## 3. Data hyper-cleaning, scikit-learn digits (50% of training labels replaced)\n")
    L.append(
        f"900 train / 450 validation / 447 test, reg = {c['reg']}; without cleaning (all weights "
        f"equal): validation {c['baseline']['val']:.3f}, test {c['baseline']['test']:.3f}. JAXopt runs "
        f"optcore aid's step ({c['step']:.3g}) for as many iterations as aid. 'to best−1pt': time until "
        f"test accuracy is within 1 point of the best final test accuracy ({c['best_test']:.3f}), checked "
        "every 10 iterations.\n"
    )
    L.append("| method | iterations | time (s) | validation acc | test acc | to best−1pt (s) |")
    L.append("|---|---|---|---|---|---|")
    for r in c["rows"]:
        L.append(
            f"| {r['name']} | {r['nit']} | {r['time']:.2f} | {r['val']:.3f} | {r['test']:.3f} | "
            f"{fmt_t(r['time_to_within_1pt'])} |"
        )
    L.append("")
    L.append(res["cleaning_notes"] + "\n")
    lg = res["large"]
    L.append(f"### Synthetic, {lg['n']} × {lg['p']}, {lg['classes']} classes ({lg['n_val']} validation rows)\n")
    L.append(
        f"A few outer iterations each (outer step 1e3, `refine_steps=50`), to compare cost per iteration "
        f"at scale. One full gradient of g (optcore, native): {lg['grad_eval_s']:.3f} s.\n"
    )
    L.append("| method | iterations | s / iteration | oracle calls | validation acc after |")
    L.append("|---|---|---|---|---|")
    for r in lg["rows"]:
        L.append(f"| {r['name']} | {r['nit']} | {r['per_iter']:.2f} | {r.get('calls', '–')} | {r['val']:.3f} |")
    L.append("")
    L.append(res["large_notes"] + "\n")
    return "\n".join(L)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per method for ridge d=500 (d=50: a quarter)")
    ap.add_argument("--ridge-dims", type=lambda s: [int(v) for v in s.split(",")], default=[50, 500])
    ap.add_argument("--large-n", type=int, default=20000)
    ap.add_argument("--large-iters", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--render", type=Path, default=None, help="re-render the report of a saved .json (current NOTES)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = args.out or HERE / "results" / ("bilevel_quick.md" if args.quick else "bilevel.md")
    if args.render:
        saved = json.loads(args.render.read_text())
        res = saved["results"]
        res.update(NOTES)
        sys.argv = saved["argv"]
        text = report(args, saved["info"], saved["end_info"], res, saved["elapsed"]) + _figure_link(args.render)
        out.write_text(text)
        print(text)
        _figure(args.render)
        return
    info = ot_cpu.machine_info()
    from importlib import metadata  # noqa: PLC0415

    for dist, key in (("jax", "jax"), ("jaxopt", "jaxopt"), ("scikit-learn", "sklearn")):
        try:
            info[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[key] = "not installed"
    t0 = time.perf_counter()
    res = {}
    with ot_cpu.ForeignLoad() as foreign:
        res["quadratic"] = bench_quadratic(args)
        res["ridge"] = bench_ridge(args)
        res["cleaning"] = bench_cleaning(args)
        res["large"] = bench_large(args)
    end_info = dict(load_end=os.getloadavg(), core_hash=ot_cpu.core_hash(), foreign=foreign.samples)
    res.update(NOTES)
    elapsed = time.perf_counter() - t0
    text = report(args, info, end_info, res, elapsed) + _figure_link(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps(
            dict(info=info, end_info=end_info, argv=sys.argv, results=res, elapsed=elapsed), indent=1, default=str
        )
    )
    print(text)
    _figure(out.with_suffix(".json"))


def _figure_link(path: Path) -> str:
    """The report's link to the figure drawn beside ``path``'s JSON."""
    return f"\n![gap and accuracy against iterations and time]({Path(path).with_suffix('.png').name})\n"


def _figure(json_path: Path) -> None:
    """The PNG beside the table (benches/plots.py; ``python benches/plots.py bilevel`` redraws it)."""
    from plots import plot_bilevel  # noqa: PLC0415

    png = plot_bilevel(json_path)
    if png is not None:
        print(f"wrote {png}")


#: Analysis written after looking at the numbers (kept here so that a rerun keeps it).
NOTES = dict(
    ridge_notes=(
        "- Plain gradient steps on λ (the same step for all three) do not reach 1e-6 within the "
        "budget (optcore gets to 2e-5 at d = 50 and 1e-2 at d = 500): the optimum is partly at "
        "infinity. Most features are best left unregularised, so their λ_j drift to −∞ while the "
        "gradient decays like exp(λ_j): at the L-BFGS-B point (d = 50) λ ranges from −51 to −0.06 "
        "and the Hessian's eigenvalues from 1e-2 down to 0 (finite differences). This table compares "
        "the cost of the same gradient step; time to 1e-6 is measured with optcore's L-BFGS outer "
        'loop (`outer="lbfgs"`) in `benches/bilevel_outer.py`, which reaches it at d = 50 and '
        "d = 500 (results in `bilevel_outer.md`).\n"
        "- At the tightest gap JAXopt reached (1e-2, d = 50) optcore is 57× faster; per outer "
        "iteration it is 76× (d = 50) and 42× (d = 500) faster than JAXopt and 5.2× / 3.2× faster "
        "than NumPy with exact Cholesky hypergradients (2026-12-03, AMD EPYC, quiet; the 2026-11-30 "
        "run on an Intel Xeon under load measured 41× / 22× and 2.8× / 8.8×: NumPy's d = 500 time "
        "per iteration moved by 2-3× between runs with the other tenants' load). Where the time goes: "
        "JAXopt re-solves the lower level by L-BFGS each outer step and its implicit differentiation "
        "uses normal-equation CG (HᵀH, squared condition number); optcore takes 10 warm-started "
        "gradient steps and warm-started plain CG on H, with O(p²) Gram-matrix products (the ridge "
        "problem precomputes XᵀX/n when p ≤ n)."
    ),
    cleaning_notes=(
        "- **Target (test accuracy within 1 point of the best at a fraction of JAXopt's time): met.** "
        "optcore `aid` reaches JAXopt's accuracy (same step, same iterations: 0.951 test) in 3.9 s vs "
        "23.9 s (6.2×), and is within 1 point of the best after 2.1 s vs 11.8 s; `f2sa` (first-order "
        "only) has the best test accuracy (0.957, within 1 point after 0.8 s) and `soba` gets within 1 "
        "point after 0.6 s. Times include optcore's step-size estimation and initial refinement; "
        "JAXopt was given optcore's step (it has no estimate of its own) and its compile time is "
        "excluded.\n"
        "- `penalty` (σ = 1e-4, up to 100 inner steps per outer step) is the slowest per iteration: the "
        "y-problem f + g/σ is solved by plain gradient steps of size ~σ/L_g. `borep` uses decaying "
        "normalised steps and is still climbing after 300 iterations (0.895)."
    ),
    large_notes=(
        "- At 20000 × 784 optcore `aid` costs 3.5 s per outer iteration and JAXopt 2.9 s: JAXopt is "
        "1.23× faster on this AMD EPYC (2026-12-03, quiet; one full gradient of g 0.19 s). The "
        "2026-11-30 run on an Intel Xeon measured 2.7 s against 3.4 s; an earlier one, before the "
        "dense logistic kernel processed four rows per pass over W, 6.5 s vs 3.6 s. optcore uses no "
        "BLAS, so at MNIST scale the kernel against XLA's GEMMs, not the method, decides, and the "
        "order flips with the CPU; not investigated further in this run. On the digits size "
        "(900 × 65) per-call overhead dominates and optcore is 6× faster.\n"
        "- The accuracies after 3 iterations only show that every run does the same work; the "
        "full-size run to convergence did not fit in this benchmark's time (about 20 minutes)."
    ),
)


if __name__ == "__main__":
    main()
