"""PNG figures of the benchmark results, written beside their tables under benches/results/.

Each benchmark script calls the function for its results at the end (``plot_ot_cpu``,
``plot_ot_sns``, ``plot_monotone``, ``plot_linprog``, ``plot_zo``); ``python benches/plots.py`` redraws every figure from the
.json files already there. Needs matplotlib (the ``docs`` or ``bench`` extra); without it the
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


PLOTS = {
    "ot_cpu": plot_ot_cpu,
    "ot_sns": plot_ot_sns,
    "monotone": plot_monotone,
    "linprog": plot_linprog,
    "zo": plot_zo,
}


def main() -> None:
    for name, fn in PLOTS.items():
        path = RESULTS / f"{name}.json"
        if path.exists():
            print(f"wrote {fn(path)}")


if __name__ == "__main__":
    main()
