"""PNG figures of the benchmark results, written beside their tables under benches/results/.

Each benchmark script calls the function for its results at the end (``plot_ot_cpu``,
``plot_ot_sns``, ``plot_monotone``, ``plot_linprog``, ``plot_zo``, ``plot_bilevel``,
``plot_ot_gpu``, ``plot_halpern``); ``python benches/plots.py`` redraws every figure from the
.json files already there, ``python benches/plots.py bilevel ot_gpu`` only the ones named (no
benchmark is rerun). Needs matplotlib (the ``docs`` or ``bench`` extra); without it the
scripts skip the figures and say so.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no PNG figures (pip install matplotlib)", file=sys.stderr)
        return None
    return plt


def plot_ot_cpu(json_path: Path) -> Path | None:
    """Seconds to the target marginal error against n, one panel per reg, one line per solver."""
    plt = _pyplot()
    if plt is None:
        return None
    raw = json.loads(Path(json_path).read_text())
    ok = [o for o in raw["outcomes"] if o.get("status") == "ok" and o.get("time")]
    regs = sorted({o["reg"] for o in ok}, reverse=True)
    solvers = sorted({o["solver"] for o in ok})
    fig, axes = plt.subplots(1, len(regs), figsize=(4.2 * len(regs), 3.8), sharey=True, squeeze=False)
    for ax, reg in zip(axes[0], regs):
        for solver in solvers:
            pts = sorted((o["n"], o["time"]) for o in ok if o["solver"] == solver and o["reg"] == reg)
            if pts:
                n, t = zip(*pts)
                ax.loglog(n, t, "o-", ms=3, label=solver)
        ax.set_title(f"reg = {reg:g}")
        ax.set_xlabel("n = m")
    axes[0][0].set_ylabel(f"seconds to marginal error <= {raw['args']['tol']:g}")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    out = Path(json_path).with_suffix(".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_ot_sns(json_path: Path) -> Path | None:
    """Seconds to the target per problem (bars, log scale), one bar per solver."""
    plt = _pyplot()
    if plt is None:
        return None
    raw = json.loads(Path(json_path).read_text())
    problems = [p["key"] for p in raw["problems"]]
    ok = [o for o in raw["outcomes"] if o.get("status") == "ok" and o.get("time")]
    solvers = sorted({o["solver"] for o in ok})
    fig, ax = plt.subplots(figsize=(1.3 * len(problems) + 3, 4))
    width = 0.8 / max(1, len(solvers))
    for i, solver in enumerate(solvers):
        xs, ts = [], []
        for j, key in enumerate(problems):
            t = [o["time"] for o in ok if o["solver"] == solver and o.get("problem") == key]
            if t:
                xs.append(j + i * width)
                ts.append(min(t))
        ax.bar(xs, ts, width, label=solver)
    ax.set_yscale("log")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(problems))], problems, rotation=20)
    ax.set_ylabel(f"seconds to marginal error <= {raw['args']['tol']:g}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(json_path).with_suffix(".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_monotone(json_path: Path) -> Path | None:
    """Residual at each epoch budget per method, one panel per problem."""
    plt = _pyplot()
    if plt is None:
        return None
    rows = json.loads(Path(json_path).read_text())["rows"]
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    fig, axes = plt.subplots(1, len(problems), figsize=(5 * len(problems), 3.8), squeeze=False)
    for ax, problem in zip(axes[0], problems):
        for r in rows:
            if r["problem"] != problem:
                continue
            pts = sorted((float(k), v) for k, v in r["at"].items() if v is not None and math.isfinite(v))
            if pts:
                e, res = zip(*pts)
                ax.loglog(e, res, "o-", ms=3, label=r["method"])
        ax.set_title(problem)
        ax.set_xlabel("epochs")
        ax.set_ylabel("natural residual")
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(json_path).with_suffix(".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_linprog(json_path: Path) -> Path | None:
    """Fraction of the problems solved within a time (a performance profile), one panel per tol."""
    plt = _pyplot()
    if plt is None:
        return None
    rows = json.loads(Path(json_path).read_text())["rows"]
    if not rows:  # a run of infeasible problems only: nothing to profile (its verdicts are in the .md)
        return None
    tols = sorted({r["tol"] for r in rows}, reverse=True)
    fig, axes = plt.subplots(1, len(tols), figsize=(4.2 * len(tols), 3.8), sharey=True, squeeze=False)
    for ax, tol in zip(axes[0], tols):
        for solver in dict.fromkeys(r["solver"] for r in rows):
            mine = [r for r in rows if r["solver"] == solver and r["tol"] == tol]
            times = sorted(r["time"] for r in mine if r.get("solved"))
            if mine:
                ax.step([1e-4, *times], [i / len(mine) for i in range(len(times) + 1)], where="post", label=solver)
        ax.set_xscale("log")
        ax.set_title(f"tol = {tol:g}")
        ax.set_xlabel("time (s)")
    axes[0][0].set_ylabel("fraction of problems solved")
    axes[0][-1].legend()
    fig.tight_layout()
    out = Path(json_path).with_suffix(".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_zo(json_path: Path) -> Path | None:
    """Item 1 as a heat map: log10 of the final gap per solver and problem, with the evaluations
    to 1e-6 written where the target was reached."""
    plt = _pyplot()
    if plt is None:
        return None
    rows = json.loads(Path(json_path).read_text())["data"].get("item1", [])
    if not rows:
        return None
    import numpy as np

    problems = list(dict.fromkeys((r["fn"], r["d"]) for r in rows))
    solvers = list(dict.fromkeys(r["solver"] for r in rows))
    gap = np.full((len(solvers), len(problems)), np.nan)
    fig, ax = plt.subplots(figsize=(0.75 * len(problems) + 3, 0.35 * len(solvers) + 2))
    for r in rows:
        i, j = solvers.index(r["solver"]), problems.index((r["fn"], r["d"]))
        g = r.get("gap")
        gap[i, j] = np.log10(max(float(g), 1e-12)) if g is not None and np.isfinite(float(g)) else np.nan
        if r.get("hit"):
            ax.text(j, i, str(r["hit"]), ha="center", va="center", fontsize=6)
    im = ax.imshow(gap, cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(len(problems)), [f"{f} d={d}" for f, d in problems], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(solvers)), solvers, fontsize=7)
    fig.colorbar(im, label="log10 final gap (numbers: evaluations to 1e-6)")
    fig.tight_layout()
    out = Path(json_path).with_suffix(".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _stamp(fig, what: str, machine: str, date: str) -> None:
    """Title the figure with what it shows and the machine and date of its data."""
    fig.suptitle(f"{what}\n{machine}; data of {date}", fontsize=9)


def _save(fig, json_path: Path) -> Path:
    fig.tight_layout()
    out = Path(json_path).with_suffix(".png")
    fig.savefig(out, dpi=110)
    return out


def plot_bilevel(json_path: Path) -> Path | None:
    """benches/bilevel.py: the quadratic's gap per iteration, the ridge problems' gap against
    time, and hyper-cleaning's test accuracy against time, one line per method."""
    plt = _pyplot()
    if plt is None:
        return None
    raw = json.loads(Path(json_path).read_text())
    info, res = raw["info"], raw["results"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0][0]
    for r in res["quadratic"]["rows"]:
        if r.get("curve"):
            k, gap = zip(*r["curve"])
            ax.loglog(k, [max(g, 1e-16) for g in gap], "o-", ms=2, label=r["label"])
    ax.set(
        title="1. quadratic, d_x = 10, d_y = 100",
        xlabel="outer iterations",
        ylabel="(F(x_k) - F*) / |F*|  (0 drawn at 1e-16)",
    )
    ax.legend(fontsize=7)
    for ax, case in zip((axes[0][1], axes[1][0]), res["ridge"]):
        for r in case["rows"]:
            if r.get("curve"):
                _, t, gap = zip(*r["curve"])
                ax.loglog(t, [max(g, 1e-16) for g in gap], "-", label=r["name"])
        ax.set(
            title=f"2. ridge hyperparameters, d = {case['p']}, n = {case['n']}",
            xlabel="seconds",
            ylabel="(F(λ_k) - F*) / |F*|",
        )
        ax.legend(fontsize=7)
    ax = axes[1][1]
    clean = res["cleaning"]
    for r in clean["rows"]:
        if r.get("snaps"):
            t, _, _, test = zip(*r["snaps"])
            ax.plot(t, test, "o-", ms=2, label=r["name"])
    ax.axhline(clean["baseline"]["test"], color="gray", ls=":", label="no cleaning")
    ax.set_xscale("log")
    ax.set(title=f"3. hyper-cleaning, digits, n_train = {clean['n_train']}", xlabel="seconds", ylabel="test accuracy")
    ax.legend(fontsize=7)
    machine = f"{info.get('cpu', '?')}, {info.get('cores', '?')} cores, {info.get('simd', '?')}"
    _stamp(fig, "optcore.bilevel vs JAXopt / NumPy (benches/bilevel.py)", machine, info.get("date", "?"))
    out = _save(fig, json_path)
    plt.close(fig)
    return out


def _gpu_machine(raw: dict, json_path: Path) -> str:
    """The GPU line of the run: in the JSON (``machine``) or, for runs that predate it, the
    report's ``- GPU:`` line beside it."""
    if raw.get("machine"):
        return raw["machine"]
    md = Path(json_path).with_suffix(".md")
    if md.exists():
        for line in md.read_text().splitlines():
            if line.startswith("- GPU:"):
                return line[len("- GPU:") :].strip().split(" (")[0] + " GPU"
    return "unknown GPU"


def plot_ot_gpu(json_path: Path) -> Path | None:
    """benches/ot_gpu.py: dense Sinkhorn's ms per iteration against the bandwidth roofline,
    end-to-end seconds per solver, and SNS against log-domain Sinkhorn on the GPU."""
    plt = _pyplot()
    if plt is None:
        return None
    import numpy as np

    raw = json.loads(Path(json_path).read_text())
    panels = [k for k in ("dense_per_iter", "dense_e2e", "sns") if raw.get(k)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False)
    for ax, key in zip(axes[0], panels):
        rows = raw[key]
        if key == "dense_per_iter":
            labels = [f"n={r['n']}\n{r['dtype']}" for r in rows]
            x = np.arange(len(rows))
            ax.bar(x - 0.2, [1e3 * r["per_iter"] for r in rows], 0.4, label="optcore log")
            ax.bar(x + 0.2, [1e3 * r["roofline"] for r in rows], 0.4, label="roofline (copy bandwidth)")
            ax.set_xticks(x, labels, fontsize=8)
            ax.set(title="dense log-domain Sinkhorn, per iteration", ylabel="ms per iteration")
        else:
            group = "problem" if key == "sns" else None
            cases = list(dict.fromkeys(r[group] if group else (r["n"], r["dtype"]) for r in rows))
            solvers = list(dict.fromkeys(r["solver"] for r in rows))
            width = 0.8 / len(solvers)
            for i, solver in enumerate(solvers):
                xs, ts = [], []
                for j, case in enumerate(cases):
                    for r in rows:
                        if r["solver"] == solver and (r[group] if group else (r["n"], r["dtype"])) == case:
                            xs.append(j + (i - (len(solvers) - 1) / 2) * width)
                            ts.append(r["time"])
                ax.bar(xs, ts, width, label=solver)
            names = [c if group else f"n={c[0]}\n{c[1]}" for c in cases]
            ax.set_xticks(range(len(cases)), names, fontsize=8, rotation=20 if group else 0)
            ax.set_yscale("log")
            if key == "sns":
                ax.set(title=f"SNS vs log, to marginal error {raw['args']['sns_tol']:g}", ylabel="seconds")
            else:
                tols = f"{raw['args']['tol32']:g} (float32) / {raw['args']['tol64']:g} (float64)"
                ax.set(title=f"end to end, to marginal error {tols}", ylabel="seconds")
        ax.legend(fontsize=7)
    _stamp(fig, "optcore Sinkhorn on the GPU (benches/ot_gpu.py)", _gpu_machine(raw, json_path), raw.get("date", "?"))
    out = _save(fig, json_path)
    plt.close(fig)
    return out


def plot_halpern(json_path: Path) -> Path | None:
    """benches/halpern.py: ||x_k - T(x_k)|| against k for optcore's methods, one panel per
    problem, with Halpern's bound 2 ||x0 - x*|| / (k + 1) and SciPy's final residuals (at the
    number of T evaluations they used) as markers."""
    plt = _pyplot()
    if plt is None:
        return None
    raw = json.loads(Path(json_path).read_text())
    problems = raw["problems"]
    fig, axes = plt.subplots(1, len(problems), figsize=(5.2 * len(problems), 4.4), squeeze=False)
    for ax, prob in zip(axes[0], problems):
        for r in prob["rows"]:
            if r.get("trace"):
                k, res = zip(*[(i, v) for i, v in r["trace"] if i >= 1])  # k = 0 (x0) is off the log axis
                ax.loglog(k, [max(v, 1e-17) for v in res], "-", label=r["label"])
            elif r.get("residual") is not None and math.isfinite(r["residual"]):
                ax.loglog([r["nfev"]], [max(r["residual"], 1e-17)], "x", ms=7, label=f"{r['label']} (final)")
        if prob.get("distance"):
            k = [1, max(max(i for i, _ in r["trace"]) for r in prob["rows"] if r.get("trace"))]
            ax.loglog(k, [2 * prob["distance"] / (i + 1) for i in k], "k:", label="bound 2||x0 - x*|| / (k+1)")
        ax.axhline(raw["tol"], color="gray", lw=0.8, ls="--")
        ax.set(title=f"{prob['title']}, d = {prob['d']}", xlabel="iteration k (SciPy: T evaluations)")
        ax.title.set_fontsize(8)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("||x_k - T(x_k)||_2")
    _stamp(fig, "Fixed-point iterations (benches/halpern.py)", raw["machine"], raw["date"])
    out = _save(fig, json_path)
    plt.close(fig)
    return out


PLOTS = {
    "ot_cpu": plot_ot_cpu,
    "ot_sns": plot_ot_sns,
    "monotone": plot_monotone,
    "linprog": plot_linprog,
    "zo": plot_zo,
    "bilevel": plot_bilevel,
    "ot_gpu": plot_ot_gpu,
    "halpern": plot_halpern,
}


def main(argv=None) -> None:
    names = list(sys.argv[1:] if argv is None else argv) or list(PLOTS)
    unknown = [n for n in names if n not in PLOTS]
    if unknown:
        raise SystemExit(f"unknown figure(s) {unknown}; choose from {list(PLOTS)}")
    for name in names:
        path = RESULTS / f"{name}.json"
        if path.exists():
            print(f"wrote {PLOTS[name](path)}")
        else:
            print(f"no {path}: run benches/{name}.py first", file=sys.stderr)


if __name__ == "__main__":
    main()
