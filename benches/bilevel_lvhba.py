#!/usr/bin/env python
"""Constrained lower levels: optcore's LV-HBA against the paper's synthetic problem and against
a penalty baseline (issue 22, part 2).

    python benches/bilevel_lvhba.py     # -> benches/results/bilevel_lvhba.{md,json,png} (about 2 min on 2 cores, with scikit-learn)

1. The LLC toy of Yao et al. (ICLR 2024, Section 5): ``x ∈ R^100``, ``y ∈ R^200``, the coupled
   equality ``𝟏ᵀx + 𝟏ᵀy = 0``, known solution ``x* = −0.3·𝟏``; start ``x0 = y0 = 10·𝟏`` as in the
   paper's code. Relative error ``‖x − x*‖/‖x*‖`` against iterations for LV-HBA with optcore's
   defaults and with the paper's constants (``c_k = 0.025(k+1)^0.3``, ``α = 0.008``,
   ``β = 0.02``, ``η = 0.01``, ``γ₁ = γ₂ = 10``, ``U = 1000``), the consistent instance
   ``a = 2/3`` (where the penalised reformulation is exact), and the penalty baseline
   (``method="penalty"``, the lower level reparametrised onto the constraint's hyperplane,
   which a projection allows here: ``y = u − (𝟏ᵀu + 𝟏ᵀx)/(2n)·𝟏``).
2. SVM hyperparameters on scikit-learn's bundled ``load_breast_cancer`` (569 samples, 30
   features, standardised; 200 train / 150 validation / 219 test, seed 0): one box bound
   ``C_i ∈ [0, 10]`` per training sample, the lower level the SVM dual with ``0 ≤ α ≤ C``
   (``problems.SVMHyperparameter``), the upper level the validation logistic loss.
   Validation/test accuracy and time for LV-HBA, the penalty baseline (``α = C∘β``,
   ``β ∈ [0, 1]``: a projection independent of ``C``) and a grid search over one common ``C``
   (scikit-learn ``SVC(kernel="linear")``, chosen on validation accuracy).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from optcore import bilevel
from optcore.bilevel import problems
from optcore.fixed_point.operators import Box

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bilevel_lvhba_svm  # noqa: E402  (part 2b)
import ot_cpu  # noqa: E402  (machine_info)

N = 100
PAPER = {"c0": 0.025, "power": 0.3, "step": 0.008, "z_step": 0.02, "lower_step": 0.01, "gamma1": 10.0, "gamma2": 10.0}


def trace_lvhba(prob, x0, y0, maxiter, options=None, every=10):
    xs, ts = [], []
    t0 = time.perf_counter()
    spent = [0.0]

    def cb(r):
        s = time.perf_counter()
        xs.append((r.nit, np.array(r.x), s - t0 - spent[0]))
        spent[0] += time.perf_counter() - s

    res = bilevel.minimize(
        prob,
        x0,
        y0,
        method="lvhba",
        maxiter=maxiter,
        tol=0.0,
        warn=False,
        options=options,
        callback=cb,
        check_every=every,
        rng=0,
    )
    ts.append(time.perf_counter() - t0 - spent[0])
    return res, xs, ts[0]


def toy_penalty(n: int, a: float):
    """The toy with ``y = Pu − (𝟏ᵀx)/(2n)𝟏`` (``P`` the projection onto ``𝟏ᵀu = 0``): every ``y``
    satisfies ``𝟏ᵀx + 𝟏ᵀy = 0`` and the lower level in ``u`` is unconstrained."""
    m = 2 * n

    def y_of(x, u):
        return u - (u.sum() + x.sum()) / m

    def chain(x, gx, gy):
        gu = gy - gy.sum() / m
        return gx - gy.sum() / m, gu

    def grad_f(x, u):
        y = y_of(x, u)
        d = x - y[n:]
        return chain(x, d, np.concatenate([y[:n] - a, -d]))

    def grad_g(x, u):
        y = y_of(x, u)
        return chain(x, -y[:n], np.concatenate([y[:n] - x, np.ones(n)]))

    return bilevel.Problem(grad_f=grad_f, grad_g=grad_g), y_of


def part_toy():
    out = {}
    toy = problems.ConstrainedToy(n=N, a=1.0)
    xs_ = toy.optimal_x
    x0, y0 = np.full(N, 10.0), np.full(2 * N, 10.0)
    rel = lambda x: float(np.linalg.norm(x - xs_) / np.linalg.norm(xs_))  # noqa: E731
    for name, opts, iters in (
        ("LV-HBA, optcore defaults", None, 100_000),
        ("LV-HBA, power = 0.49", {"power": 0.49}, 100_000),
        ("LV-HBA, paper's constants", PAPER, 100_000),
    ):
        res, tr, t = trace_lvhba(toy, x0, y0, iters, opts, every=100)
        o = {"c0": 1.0, "power": 0.3, "gamma1": 1.0, **(opts or {})}
        # The penalised reformulation's stationary point at each check's penalty (closed form).
        path = [rel(toy.penalised_point(o["c0"] * (k + 1) ** o["power"], o["gamma1"])[0]) for k, _, _ in tr]
        out[name] = {
            "iters": [k for k, _, _ in tr],
            "rel_err": [rel(x) for _, x, _ in tr],
            "path_err": path,
            "times": [s for _, _, s in tr],
            "time_s": t,
            "steps": res.steps,
            "final": {
                "path_rel_err": rel(toy.penalised_point(res.penalty, o["gamma1"])[0]),
                "message": res.message,
                "rel_err": rel(res.x),
                "constraint_violation": res.constraint_violation,
                "lower_residual": res.lower_residual,
                "stationarity": res.stationarity,
                "penalty": res.penalty,
                "status": res.status,
                "multiplier": float(res.multipliers[0]),
            },
        }
    consistent = problems.ConstrainedToy(n=N, a=2 / 3)
    res, tr, t = trace_lvhba(consistent, x0, y0, 20_000, None, every=20)
    xc = consistent.optimal_x
    out["LV-HBA, consistent instance a = 2/3"] = {
        "iters": [k for k, _, _ in tr],
        "rel_err": [float(np.linalg.norm(x - xc) / np.linalg.norm(xc)) for _, x, _ in tr],
        "times": [s for _, _, s in tr],
        "time_s": t,
        "final": {
            "status": res.status,
            "nit": res.nit,
            "rel_err": float(np.linalg.norm(res.x - xc) / np.linalg.norm(xc)),
        },
    }
    # Penalty baseline (first order, inner loops of at most 100 steps per outer iteration).
    pen, _ = toy_penalty(N, 1.0)
    for sigma in (1e-2, 1e-3):
        tr = []
        t0 = time.perf_counter()

        def cb(r, tr=tr, t0=t0):
            tr.append((r.nit, np.array(r.x), time.perf_counter() - t0))

        res = bilevel.minimize(
            pen,
            x0,
            y0,
            method="penalty",
            maxiter=2000,
            tol=0.0,
            warn=False,
            callback=cb,
            options={"sigma": sigma},
            rng=0,
        )
        t = time.perf_counter() - t0
        out[f"penalty, sigma = {sigma:g}"] = {
            "iters": [k for k, _, _ in tr],
            "rel_err": [rel(x) for _, x, _ in tr],
            "times": [s for _, _, s in tr],
            "time_s": t,
            "grad_g_calls": res.oracle_calls["grad_g"],
            "final": {"rel_err": rel(res.x), "status": res.status},
        }
    return out


def svm_data(seed=0):
    from sklearn.datasets import load_breast_cancer  # noqa: PLC0415

    X, t = load_breast_cancer(return_X_y=True)
    t = np.where(t > 0, 1.0, -1.0)
    r = np.random.default_rng(seed)
    idx = r.permutation(len(t))
    tr, va, te = idx[:200], idx[200:350], idx[350:]
    mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-12
    X = (X - mu) / sd
    return (X[tr], t[tr]), (X[va], t[va]), (X[te], t[te])


def acc(w, X, t):
    Z = np.hstack([X, np.ones((X.shape[0], 1))])
    return float(np.mean(np.sign(Z @ w) == t))


def svm_dual_exact(X, t, C):
    """The SVM dual ``min ½‖Zᵀ(t∘α)‖² − 𝟏ᵀα`` s.t. ``0 ≤ α ≤ C`` (``Z = [X, 𝟏]``) to high
    accuracy by SciPy's L-BFGS-B (a reference, not timed)."""
    from scipy.optimize import minimize as sp_minimize  # noqa: PLC0415

    Z = np.hstack([X, np.ones((X.shape[0], 1))]) * t[:, None]
    Q = Z @ Z.T
    r = sp_minimize(
        lambda a: (0.5 * a @ Q @ a - a.sum(), Q @ a - 1.0),
        np.minimum(C, 0.5),
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(np.zeros_like(C), C)),
        options={"maxiter": 100_000, "ftol": 1e-15, "gtol": 1e-12},
    )
    return r.x


def val_loss(w, Xv, tv):
    Zv = np.hstack([Xv, np.ones((Xv.shape[0], 1))])
    return float(np.mean(np.logaddexp(0.0, -tv * (Zv @ w))))


def resolved_loss(X, t, Xv, tv, C):
    """The upper objective at the returned ``C`` itself: the validation loss of the SVM re-solved
    exactly with these box bounds (what the hyperparameters are worth)."""
    a = svm_dual_exact(X, t, np.maximum(np.asarray(C, float), 0.0))
    return val_loss(problems.SVMHyperparameter.weights(X, t, a), Xv, tv)


def svm_penalty_problem(X, t, Xv, tv):
    Z = np.hstack([X, np.ones((X.shape[0], 1))])
    Zv = np.hstack([Xv, np.ones((Xv.shape[0], 1))])
    nv = len(tv)

    def w_of(c, b):
        return Z.T @ (t * c * b)

    def grad_f(c, b):
        w = w_of(c, b)
        m = tv * (Zv @ w)
        u = Zv.T @ (-tv / (1.0 + np.exp(m)) / nv)
        ga = t * (Z @ u)
        return b * ga, c * ga

    def grad_g(c, b):
        w = w_of(c, b)
        ga = t * (Z @ w)
        return b * ga - b, c * ga - c

    def f(c, b):
        m = tv * (Zv @ w_of(c, b))
        return float(np.mean(np.logaddexp(0.0, -m)))

    return bilevel.Problem(grad_f=grad_f, grad_g=grad_g, f=f), w_of


def part_svm():
    (X, t), (Xv, tv), (Xt, tt) = svm_data()
    n = len(t)
    out = {}
    cmax = 10.0
    prob = problems.SVMHyperparameter(X, t, Xv, tv)
    for iters, c0 in ((500, 1.0), (2000, 1.0), (10_000, 1.0), (50_000, 1.0), (10_000, 0.1)):
        t0 = time.perf_counter()
        res = bilevel.minimize(
            prob,
            np.full(n, 1.0),
            method="lvhba",
            maxiter=iters,
            warn=False,
            options={"project_x": Box(0.0, cmax, dim=n), "c0": c0},
            rng=0,
        )
        el = time.perf_counter() - t0
        w = prob.weights(X, t, res.y)
        out[f"LV-HBA, c0 = {c0:g}, {iters} iterations"] = {
            "time_s": el,
            "val_acc": acc(w, Xv, tv),
            "test_acc": acc(w, Xt, tt),
            "val_loss": res.fun,
            "resolved_val_loss": resolved_loss(X, t, Xv, tv, res.x),
            "constraint_violation": res.constraint_violation,
            "lower_residual": res.lower_residual,
            "step": res.step,
        }
    pen, w_of = svm_penalty_problem(X, t, Xv, tv)
    for iters in (100, 500):
        t0 = time.perf_counter()
        res = bilevel.minimize(
            pen,
            np.full(n, 1.0),
            np.full(n, 0.5),
            method="penalty",
            maxiter=iters,
            warn=False,
            rng=0,
            options={"project_x": Box(1e-3, cmax, dim=n), "project_y": Box(0.0, 1.0, dim=n), "sigma": 1e-2},
        )
        el = time.perf_counter() - t0
        w = w_of(res.x, res.y)
        out[f"penalty (alpha = C*beta), {iters} iterations"] = {
            "time_s": el,
            "val_acc": acc(w, Xv, tv),
            "test_acc": acc(w, Xt, tt),
            "val_loss": res.fun,
            "resolved_val_loss": resolved_loss(X, t, Xv, tv, res.x),
        }
    a1 = svm_dual_exact(X, t, np.full(n, 1.0))
    w1 = problems.SVMHyperparameter.weights(X, t, a1)
    out["start: C = 1 everywhere, SVM dual solved exactly"] = {
        "time_s": float("nan"),
        "val_acc": acc(w1, Xv, tv),
        "test_acc": acc(w1, Xt, tt),
        "val_loss": val_loss(w1, Xv, tv),
        "resolved_val_loss": val_loss(w1, Xv, tv),
    }
    from sklearn.svm import SVC  # noqa: PLC0415

    t0 = time.perf_counter()
    best = None
    for C in np.logspace(-3, 1, 13):
        m = SVC(kernel="linear", C=C).fit(X, t)
        va = float(m.score(Xv, tv))
        if best is None or va > best[0]:
            best = (va, float(m.score(Xt, tt)), float(C))
    out["grid search over one C (sklearn SVC, 13 values)"] = {
        "time_s": time.perf_counter() - t0,
        "val_acc": best[0],
        "test_acc": best[1],
        "C": best[2],
    }
    return out


def thin(data, points: int = 150):
    """``data`` with every toy trace cut to about ``points`` log-spaced entries (the plot uses all)."""
    out = json.loads(json.dumps(data, default=float))
    for d in out["toy"].values():
        n = len(d["iters"])
        if n > points:
            keep = sorted(set(np.unique(np.geomspace(1, n, points).astype(int) - 1).tolist()) | {n - 1})
            for key in ("iters", "rel_err", "path_err", "times"):
                if key in d:
                    d[key] = [d[key][i] for i in keep]
    return out


def plot(toy, path):
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, d in toy.items():
        (line,) = ax.semilogy(np.maximum(d["iters"], 1), d["rel_err"], label=name)
        if "path_err" in d:
            ax.semilogy(np.maximum(d["iters"], 1), d["path_err"], ":", color=line.get_color(), lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("iteration (penalty: outer iteration)")
    ax.set_ylabel("‖x − x*‖ / ‖x*‖")
    ax.set_title("LLC toy (Yao et al. 2024), n = 100; dotted: penalised point at c_k")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    warnings.simplefilter("ignore")
    import os  # noqa: PLC0415

    info = ot_cpu.machine_info()
    load0 = os.getloadavg()[0]
    toy = part_toy()
    load1 = os.getloadavg()[0]
    svm = part_svm()
    primal = bilevel_lvhba_svm.part_svm_primal()
    primal_traces = bilevel_lvhba_svm.traces()
    load2 = os.getloadavg()[0]
    res_dir = HERE / "results"
    res_dir.mkdir(exist_ok=True)
    data = {
        "machine": info,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "toy": toy,
        "svm": svm,
        "svm_primal": primal,
        "svm_primal_traces": primal_traces,
    }
    (res_dir / "bilevel_lvhba.json").write_text(json.dumps(thin(data), indent=1, default=float))
    plot(toy, res_dir / "bilevel_lvhba.png")
    bilevel_lvhba_svm.plot(primal_traces, res_dir / "bilevel_lvhba_svm.png")
    L = [
        "# Constrained lower levels: LV-HBA",
        "",
        "Reproduce: `python benches/bilevel_lvhba.py`",
        "",
        f"Machine: {info['cpu']}, {info['cores']} logical cores (2-core x86_64 AVX2+FMA dev machine, shared); "
        f"date {data['date']}; load average (1 min) {load0:.1f} at the start, {load1:.1f} after part 1, "
        f"{load2:.1f} at the end (times under load are noisy; the ratios of interest are iterations and accuracy).",
        "",
        "## 1. LLC toy (n = 100, x ∈ R^100, y ∈ R^200, x* = −0.3·1), start x0 = y0 = 10·1",
        "",
        "| run | rel. error at 1e2 / 1e3 / 1e4 / last iteration | penalised point at the last c "
        "| largest rise after it. 1e3 | time to rel. error 3e-2 (s) | total time (s) | final status |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in toy.items():
        errs = dict(zip(d["iters"], d["rel_err"]))

        def at(k, errs=errs):
            keys = [i for i in errs if i <= k]
            return f"{errs[max(keys)]:.2e}" if keys else "–"

        last = f"{d['rel_err'][-1]:.2e} (it. {d['iters'][-1]})" if d["iters"] else "–"
        hit = [s for e, s in zip(d["rel_err"], d["times"]) if e <= 3e-2]
        tt = f"{hit[0]:.3f}" if hit else "never"
        pp = f"{d['final']['path_rel_err']:.2e}" if "path_rel_err" in d["final"] else "–"
        # rises of the error above round-off (1e-12) after iteration 1000
        tail = [e for k, e in zip(d["iters"], d["rel_err"]) if k >= 1000]
        rise = max([b / a for a, b in zip(tail, tail[1:]) if b > 1e-12], default=0.0)
        rs = f"x{rise:.3g}" if rise > 1.0 else "none"
        L.append(
            f"| {name} | {at(100)} / {at(1000)} / {at(10000)} / {last} | {pp} | {rs} | {tt} | {d['time_s']:.2f} | "
            f"{d['final']['status']} |"
        )
    L += ["", "Final measures of the a = 1 runs:", ""]
    for name, d in toy.items():
        f = d["final"]
        if "lower_residual" in f:
            L.append(
                f"- {name}: constraint violation {f['constraint_violation']:.1e}, lower KKT residual "
                f"{f['lower_residual']:.1e}, stationarity {f['stationarity']:.1e}, penalty c = {f['penalty']:.3g}, "
                f"multiplier {f['multiplier']:.4f} (λ* = 1); steps "
                + ", ".join(f"{k} {v:.3g}" for k, v in d["steps"].items())
            )
    L += [
        "",
        "## 2. SVM hyperparameters (breast_cancer, 200 train / 150 validation / 219 test, one C_i ∈ [0, 10] per sample)",
        "",
        "| method | val. acc. | test acc. | val. loss (returned y) | val. loss, SVM re-solved at the returned C "
        "| constraint violation / lower KKT residual | time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in svm.items():
        vl = f"{d['val_loss']:.4f}" if "val_loss" in d else "–"
        rl = f"{d['resolved_val_loss']:.4f}" if "resolved_val_loss" in d else "–"
        cv = f"{d['constraint_violation']:.1e} / {d['lower_residual']:.1e}" if "lower_residual" in d else "–"
        ts = f"{d['time_s']:.2f}" if np.isfinite(d["time_s"]) else "–"
        L.append(f"| {name} | {d['val_acc']:.3f} | {d['test_acc']:.3f} | {vl} | {rl} | {cv} | {ts} |")
    L += [
        "",
        "## 2b. SVM primal: the paper's experiment (one log-weight c_i per training sample, y = (w, b, ξ))",
        "",
        "Losses on the paper's scale, 10 f / n (f the smoothed 0-1 loss summed over the set; the paper's code",
        "prints f/15 for 150 validation and f/11.8 for 118 test samples); 're-solved' is the exact SVM",
        "(`SVMPrimalHyperparameter.lower_solution`) at the returned c: what the hyperparameters are worth.",
        "Loss against time on diabetes, seed 1: `bilevel_lvhba_svm.png`.",
    ]
    L += bilevel_lvhba_svm.table(primal)
    L += [
        "",
        "## Reading",
        "",
        "- Toy, a = 1 (the paper's instance): LV-HBA converges to the stationary point of the penalised",
        "  reformulation at the current c, known in closed form (`ConstrainedToy.penalised_point(c)`; for",
        "  γ₁ = 1 its relative error is 0.8/(c + 1.2), multiplier 1 + 0.2/(c + 1.2)): the column 'penalised",
        "  point at the last c' is the best any iterate can be at that c. With the per-block steps (ρ scaled",
        "  to the constraint, ρ‖J‖² no stiffer than f and g; before, ρ = 1 with ‖J‖² = 300 set every step",
        "  to 1.6e-3) the iterate is on that point from about 500 iterations on and its error falls",
        "  monotonically (largest rise after 1e3: none), 2.44e-2 at c = 31.6 after 1e5 iterations. The",
        "  former steps lagged behind it, crossed x* near 1e4 iterations (9.8e-3, below the penalised",
        "  point's 4.7e-2 at c = 15.8) and only then reached it (2.42e-2 at 1e5): the 'rise' was the",
        "  lagging iterate catching up, not a drift. 1e-6 is out of reach by the method's nature: it needs",
        "  c ≈ 8e5, k ≈ 5e19 iterations with c_k = (k+1)^0.3 and still ≈ 1e12 with power 0.49 (the",
        "  paper's theory needs power < 1/2); power = 0.49 reaches 2.8e-3 in 1e5 iterations, on its",
        "  penalised point too. The runs end with status 1 and say that the penalty bounds the accuracy.",
        "- The paper's own constants (c_k = 0.025 (k+1)^0.3, α = 0.008, η = 0.01, γ = 10) still diverge",
        "  here: their λ step η = 0.01 exceeds the dual-ascent bound ½/(γ₁‖J‖² + 1/γ₂) = 1.7e-4 (the",
        "  paper projects onto the hyperplane; optcore keeps it by multipliers). The paper reports curves",
        "  only (log relative error against time), no table to compare numbers with.",
        "- Toy, a = 2/3: the upper level is consistent with the lower one, the reformulation is exact, and",
        "  LV-HBA converges linearly: now to 1e-10 in 1000 iterations at n = 100 (before: 1.1 at 1e3,",
        "  3.3e-4 at 2e4, its step set by ‖J‖² = 300); the later 'rise' is round-off at 1e-15.",
        "- The penalty method (reparametrised onto the constraint, which only this toy allows, Python",
        "  oracles) reaches its O(σ) plateau within its first 100 outer iterations; LV-HBA with power 0.49",
        "  reaches 3e-2 first (time column, same run) and ends at 2.8e-3, about the penalty's σ = 1e-2 plateau (2.7e-3).",
        "- SVM: LV-HBA does not help. The hyperparameters it returns are worth what the start is worth",
        "  (validation loss of the SVM re-solved at the returned C: 0.0908 up to 1e4 iterations, 0.0888 at",
        "  5e4; the penalty baseline's C: 0.0769), and the returned y is not the SVM solution (lower KKT",
        "  residual 1.3-3, loss of y 0.30). Why: the lower level's Hessian ZZᵀ has ‖Z‖² = 2530 but rank",
        "  31 of 200 (smallest non-zero eigenvalue 0.019): y and θ take steps ½/(‖Z‖² + 1/γ₁) ≈ 2e-4,",
        "  and in the 169 directions g does not curve they move only through the proximal and box",
        "  terms, at a rate α/γ₁ ≈ 2e-4 per iteration; steps per block cannot separate span(Z) from its",
        "  complement (the same coordinates). Tried (numpy prototype, 1e4 iterations): x's own step",
        "  (0.31) and λ's (0.17): loss of y 0.08 but y infeasible by 0.18, |θ − α*(C)|∞ 0.35 and the",
        "  re-solved loss 0.104, worse than the start; γ₁ = 1/‖Z‖²: 0.095. The faster λ step is kept",
        "  at most η_θ for this reason. A 13-value grid search on one common C is as accurate as any in",
        "  under a second. The paper's own SVM experiment is primal, and well-posed for LV-HBA: 2b.",
        "- 2b, what the paper's code does (SUSTech-Optimization/LV-HBA, `Hyperparameter optimization/Linear",
        "  SVM/diabetes/LV-HBA.py`): 80 full-batch iterations, α = η = 0.01, β = 0.1, its γ = 0.1 multiplying",
        "  (θ − y) and (λ − z) (optcore divides: γ₁ = γ₂ = 10), c_k = (k+1)^−0.5 multiplying f, λ = z = 1 at the",
        "  start, and (w, b, ξ, c) projected onto the margins by ECOS every iteration. Its c step",
        "  (`model.C.data.add(d1, alpha=-alpha)`, not in place) is discarded: c stays at its start, and what it",
        "  reports is the returned (w, b), fitted to the validation loss under the SVM's pull. The same",
        "  constants in optcore (margins kept by multipliers): 80 iterations reproduce that (returned y: val.",
        "  loss 2.71 → 1.18, c unchanged, re-solved = start); 2000 diverge in every seed (status 4): η_λ = 0.01",
        "  is 300x the dual-ascent bound ½/(γ₁‖J‖² + 1/γ₂) = 3.1e-5 (‖J‖² = 1600, the [Z, 1] columns).",
        "- 2b, optcore's steps: x = c gets a step of its own (the margins do not involve c): with one α for x",
        "  and y (0.012, set by y's curvature) c moved 0.003 in 2000 iterations; its own is 69 at the start",
        "  and is re-estimated every 100 iterations, because g's curvature in c_i, ½e^{c_i}ξ_i², grows with c",
        "  (c0 = 30 without it: c → 1e100). c0 = 300 puts f (a sum over 150 samples, gradient in the",
        "  hundreds) on g's scale; with c0 = 1 y fits the validation set and c drifts. From the paper's",
        "  start the re-solved validation loss first falls (2.71 → 1.25 at 2000 iterations) and then drifts",
        "  back (1.60 at 5000, 2.33 at 20000), while the returned y stays the best on validation (0.64-0.72;",
        "  violation 0.1-0.25, it is not an SVM solution). Why (diabetes seed 1, measured): at c ≈ −5.5 g's",
        "  curvature in ξ_i is e^{c_i} = 0.0025-0.007, 150-400x below w's 1, so y's slacks approach the",
        "  hinge at α_y e^c ≈ 5e-4 per iteration and stay above it (‖ξ_y − ξ*(c)‖ = 4-6 over 500 samples from",
        "  1e3 to 2e4 iterations), and ∇_c(g − v_γ) = ½e^c(ξ_y² − ξ_θ²) > 0 on 54-95% of the samples lowers",
        "  c (mean −5.5 → −6.2): the excess slack is explained away by smaller weights. The lower level is",
        "  strongly convex in name, not in conditioning; scalar steps per block cannot separate w from ξ.",
        "  From c ~ U(−1, 0) (curvature 0.4-1; c kept in [−8, 1], without which 2 of 3 breast_cancer seeds",
        "  diverged) y reaches y*(c) (‖ξ_y − ξ*‖ = 0.11 at 2e4) and the re-solved validation loss falls",
        "  with iterations in every diabetes seed (mean 0.937 → 0.884 at 5000 → 0.829 at 20000).",
        "- 2b, baselines: the penalty method with ξ eliminated (ξ = max(0, 1 − t(Zw + b)), the projection",
        "  of ξ onto the margins; Python oracles) and a 13-value grid over one common c give better",
        "  hyperparameters from the paper's start than LV-HBA (re-solved 1.18 and 0.90 against 1.25 at best;",
        "  test accuracy 0.731 and 0.764 against 0.727). The paper's table of test accuracy and time (arXiv",
        "  2401.16164) is not in the reference corpus available here (searched): the comparison is with its",
        "  code's setup, reproduced above, not with its numbers.",
    ]
    (res_dir / "bilevel_lvhba.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
