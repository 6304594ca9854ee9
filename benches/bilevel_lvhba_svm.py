"""Part 2b of ``benches/bilevel_lvhba.py``: the SVM experiment of LV-HBA's paper (Yao et al.,
ICLR 2024) in its primal form, ``problems.SVMPrimalHyperparameter``.

``x = c`` (one log-weight per training sample), ``y = (w, b, ξ)``; lower level the weighted
squared-hinge SVM ``½‖w‖² + ½ Σ e^{c_i} ξ_i²`` s.t. ``1 − ξ_i − t_i(z_iᵀw + b) ≤ 0``; upper level
the smoothed 0-1 loss of the normalised validation margins. Data: LIBSVM's scaled ``diabetes``
(``benches/data/diabetes_scale.txt``), shuffled as the paper's code does
(``np.random.seed(seed); np.random.shuffle``), 500 train / 150 validation / 118 test, seeds 1-5
(the paper: 1-39); ``c0 ~ U(−6, −5)``, ``y0 = (𝟏, 0, 𝟏)`` as there. Second data set:
scikit-learn's ``breast_cancer`` (standardised, 200 / 150 / 219, seeds 0-2).

Losses are shown on the paper's scale, ``10 f / n`` (its code prints ``f/15`` for 150
validation and ``f/11.8`` for 118 test samples): about 10 × the misclassified fraction.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from optcore import bilevel
from optcore.bilevel import problems
from optcore.fixed_point.operators import Box

HERE = Path(__file__).resolve().parent
#: The paper's code: α = 0.01, β = 0.1, η = 0.01, its γ = 0.1 multiplies (θ − y) and (λ − z)
#: (optcore divides by γ: 10), c_k = (k+1)^−0.5 multiplies f (optcore divides f by c0 (k+1)^0.5).
PAPER = {"c0": 1.0, "power": 0.5, "step": 0.01, "lower_step": 0.01, "z_step": 0.1, "gamma1": 10.0, "gamma2": 10.0}
#: optcore's steps; c0 puts f (a sum over 150 samples, gradient in the hundreds) on g's scale.
OURS = {"c0": 300.0}
#: ... with c kept in [−8, 1] (``project_x``): the curvature of g in c_i, ½e^{c_i}ξ_i², grows
#: with c, and from c ~ U(−1, 0) two breast_cancer seeds diverged (c → 1e43) without the bound.
OURS_BOX = {"c0": 300.0, "c_range": (-8.0, 1.0)}


def load_libsvm(path: Path, p: int) -> np.ndarray:
    """Rows ``(features..., label)`` of a dense LIBSVM file with ``p`` features."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts:
            x = np.zeros(p + 1)
            for tok in parts[1:]:
                k, v = tok.split(":")
                x[int(k) - 1] = float(v)
            x[p] = float(parts[0])
            rows.append(x)
    return np.array(rows)


def diabetes(seed: int):
    d = load_libsvm(HERE / "data" / "diabetes_scale.txt", 8)
    np.random.RandomState(seed).shuffle(d)  # the paper's split
    return (d[:500, :-1], d[:500, -1]), (d[500:650, :-1], d[500:650, -1]), (d[650:, :-1], d[650:, -1])


def cancer(seed: int):
    from sklearn.datasets import load_breast_cancer  # noqa: PLC0415

    X, t = load_breast_cancer(return_X_y=True)
    t = np.where(t > 0, 1.0, -1.0)
    idx = np.random.default_rng(seed).permutation(len(t))
    tr, va, te = idx[:200], idx[200:350], idx[350:]
    X = (X - X[tr].mean(0)) / (X[tr].std(0) + 1e-12)
    return (X[tr], t[tr]), (X[va], t[va]), (X[te], t[te])


def metrics(prob, y, c, val, test) -> dict:
    """Accuracy and loss (paper's scale) of the returned ``y`` and of the SVM re-solved at ``c``."""
    ok = np.all(np.isfinite(c)) and np.max(c) < 700 and np.all(np.isfinite(y))
    ys = prob.lower_solution(c) if ok else None
    out = {}
    for tag, yy in (("", y), ("resolved_", ys)):
        for name, (X, t) in (("val", val), ("test", test)):
            out[f"{tag}{name}_acc"] = prob.accuracy(yy, X, t) if ok else np.nan  # nan: the run diverged
            out[f"{tag}{name}_loss"] = 10.0 * prob.upper_loss(yy, X, t) / len(t) if ok else np.nan
    return out


def penalty_problem(prob, X, t, Xv, tv):
    """The lower level with ``ξ`` eliminated (``ξ = max(0, 1 − t(Xw + b))``, the projection of
    ``ξ`` onto the margins at fixed ``(w, b)``): ``y = (w, b)``, unconstrained, for
    ``method="penalty"`` (Python oracles)."""
    p = X.shape[1]
    A = np.hstack([X, np.ones((len(t), 1))]) * t[:, None]
    Av = np.hstack([Xv, np.ones((len(tv), 1))]) * tv[:, None]

    def full(y):
        return np.concatenate([y, np.maximum(0.0, 1.0 - A @ y)])

    def grad_f(c, y):
        w = y[:p]
        r = np.linalg.norm(w)
        m = Av @ y
        s = 1.0 / (1.0 + np.exp(np.clip(5.0 * m / r, -700, 700)))
        v = 2.0 * s - 1.0
        d = -10.0 * s * (1.0 - s) * np.where(v > 0, 1.0, 0.01)
        g = Av.T @ d / r
        g[:p] -= (d @ m) * w / r**3
        return np.zeros_like(c), g

    def grad_g(c, y):
        e, s = np.exp(c), np.maximum(0.0, 1.0 - A @ y)
        g = -A.T @ (e * s)
        g[:p] += y[:p]
        return 0.5 * e * s * s, g

    def f(c, y):
        return prob.upper_loss(full(y), Xv, tv)

    return bilevel.Problem(grad_f=grad_f, grad_g=grad_g, f=f), full


def run(prob, data, c0, method: str, opts: dict, iters: int, trace: list | None = None) -> dict:
    """One run; ``trace`` (if given) collects ``(time, c, y)`` every 10 iterations (LV-HBA) or
    outer iteration (penalty), the callback's own time excluded."""
    (X, t), val, test = data
    spent, t0 = [0.0], time.perf_counter()
    full = None

    def cb(r):
        s = time.perf_counter()
        yy = np.array(r.y) if full is None else full(np.array(r.y))
        trace.append((s - t0 - spent[0], np.array(r.x), yy))
        spent[0] += time.perf_counter() - s

    kw = {"callback": cb} if trace is not None else {}
    if "c_range" in opts:
        lo, hi = opts["c_range"]
        opts = {k: v for k, v in opts.items() if k != "c_range"} | {"project_x": Box(lo, hi, dim=len(c0))}
    if method == "lvhba":
        res = bilevel.minimize(prob, c0, method="lvhba", maxiter=iters, warn=False, rng=0, options=opts, **kw)
        y = res.y
        extra = {"violation": res.constraint_violation, "lower_residual": res.lower_residual, "status": res.status}
    else:
        pen, full = penalty_problem(prob, X, t, *val)
        y0 = prob.start[: prob.n_features + 1]
        res = bilevel.minimize(pen, c0, y0, method="penalty", maxiter=iters, warn=False, rng=0, options=opts, **kw)
        y = full(res.y)
        extra = {"status": res.status}
    el = time.perf_counter() - t0 - spent[0]
    return {"time_s": el, **metrics(prob, y, res.x, val, test), **extra}


def start_metrics(prob, data, c0) -> dict:
    ys = prob.lower_solution(c0)
    return {"time_s": float("nan"), **metrics(prob, ys, c0, data[1], data[2])}


def grid(prob, data) -> dict:
    """One common ``c`` chosen among 13 values on the validation loss of the exact SVM."""
    t0 = time.perf_counter()
    best = None
    for s in np.linspace(-8, 4, 13):
        c = np.full(prob.d_x, s)
        v = prob.upper_loss(prob.lower_solution(c), *data[1])
        if best is None or v < best[0]:
            best = (v, c)
    el = time.perf_counter() - t0
    ys = prob.lower_solution(best[1])
    return {"time_s": el, **metrics(prob, ys, best[1], data[1], data[2])}


#: (row, method, options, iterations, start range of c: the paper's U(−6, −5) or U(−1, 0), where
#: the lower level's curvature in ξ, e^c, is 0.4-1 instead of 0.0025-0.007).
METHODS = (
    ("start: c ~ U(−6, −5), SVM solved exactly", None, None, 0, -6.0),
    ("LV-HBA, paper's constants, 80 iterations (its epochs)", "lvhba", PAPER, 80, -6.0),
    ("LV-HBA, paper's constants, 2000 iterations", "lvhba", PAPER, 2000, -6.0),
    ("LV-HBA, optcore steps, c0 = 300, 2000 iterations", "lvhba", OURS, 2000, -6.0),
    ("LV-HBA, optcore steps, c0 = 300, 5000 iterations", "lvhba", OURS, 5000, -6.0),
    ("LV-HBA, optcore steps, c0 = 300, 20000 iterations", "lvhba", OURS, 20000, -6.0),
    ("penalty (ξ eliminated), 100 iterations", "penalty", {"sigma": 1e-2}, 100, -6.0),
    ("grid search over one common c (13 values, exact SVM)", "grid", None, 0, -6.0),
    ("start: c ~ U(−1, 0), SVM solved exactly", None, None, 0, -1.0),
    ("LV-HBA from c ~ U(−1, 0), c0 = 300, c ∈ [−8, 1], 5000 iterations", "lvhba", OURS_BOX, 5000, -1.0),
    ("LV-HBA from c ~ U(−1, 0), c0 = 300, c ∈ [−8, 1], 20000 iterations", "lvhba", OURS_BOX, 20000, -1.0),
)


def part_svm_primal() -> dict:
    out = {}
    for dname, loader, seeds in (("diabetes", diabetes, (1, 2, 3, 4, 5)), ("breast_cancer", cancer, (0, 1, 2))):
        rows = {name: [] for name, *_ in METHODS}
        for seed in seeds:
            data = loader(seed)
            (X, t), (Xv, tv), _ = data
            prob = problems.SVMPrimalHyperparameter(X, t, Xv, tv)
            for name, method, opts, iters, lo in METHODS:
                c0 = np.random.default_rng(seed).uniform(lo, lo + 1.0, size=len(t))
                if method is None:
                    rows[name].append(start_metrics(prob, data, c0))
                elif method == "grid":
                    rows[name].append(grid(prob, data))
                else:
                    rows[name].append(run(prob, data, c0, method, opts, iters))
        out[dname] = {"seeds": list(seeds), "rows": rows}
    return out


def traces() -> dict:
    """Loss against time on diabetes, seed 1: the returned ``y`` and the SVM re-solved at ``c``."""
    data = diabetes(1)
    (X, t), (Xv, tv), _ = data
    prob = problems.SVMPrimalHyperparameter(X, t, Xv, tv)
    out = {}
    for name, method, opts, iters, lo in (
        ("LV-HBA, optcore steps, c0 = 300", "lvhba", OURS, 20000, -6.0),
        ("LV-HBA, paper's constants", "lvhba", PAPER, 80, -6.0),
        ("penalty (ξ eliminated)", "penalty", {"sigma": 1e-2}, 100, -6.0),
        ("LV-HBA, c0 = 300, c ∈ [−8, 1], from c ~ U(−1, 0)", "lvhba", OURS_BOX, 20000, -1.0),
    ):
        c0 = np.random.default_rng(1).uniform(lo, lo + 1.0, size=len(t))
        tr = []
        run(prob, data, c0, method, opts, iters, trace=tr)
        keep = tr[:: max(1, len(tr) // 60)]
        out[name] = {
            "time": [s for s, _, _ in keep],
            "val_loss": [10 * prob.upper_loss(y, Xv, tv) / len(tv) for _, _, y in keep],
            "resolved_val_loss": [10 * prob.upper_loss(prob.lower_solution(c), Xv, tv) / len(tv) for _, c, _ in keep],
        }
    return out


def plot(tr: dict, path: Path):
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, d in tr.items():
        (line,) = ax.plot(d["time"], d["resolved_val_loss"], label=f"{name}: SVM re-solved at c")
        ax.plot(d["time"], d["val_loss"], ":", color=line.get_color(), label=f"{name}: returned y")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("validation loss (paper's scale, 10 f / n_val)")
    ax.set_title("SVM primal, diabetes seed 1 (LV-HBA paper's experiment)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(out: dict) -> list[str]:
    L = []
    keys = ("val_acc", "test_acc", "val_loss", "test_loss", "resolved_val_loss", "resolved_test_acc", "time_s")
    for dname, d in out.items():
        L += [
            "",
            f"**{dname}** (seeds {', '.join(map(str, d['seeds']))}; mean ± sd over seeds)",
            "",
            "| method | val. acc. | test acc. | val. loss | test loss | val. loss, SVM re-solved at c "
            "| test acc., re-solved | time (s) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, rows in d["rows"].items():
            cells = []
            for k in keys:
                v = np.array([r[k] for r in rows], float)
                cells.append("–" if not np.any(np.isfinite(v)) else f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}")
            bad = sum(r.get("status") == 4 for r in rows)
            note = f" (diverged, status 4, in {bad} of {len(rows)} seeds)" if bad else ""
            L.append(f"| {name}{note} | " + " | ".join(cells) + " |")
    return L
