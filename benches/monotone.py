"""Finite-sum monotone inclusions: variance-reduced Halpern against its deterministic baselines
(issue 5, evidence item 2; the experiments of Cai, Alacaoglu & Diakonikolas, ICLR 2024).

    python benches/monotone.py                      # about 3 min on 2 cores
    python benches/monotone.py --quick              # smaller sizes and budgets

Problems: the 500 x 500 "policeman and burglar" matrix game over simplices and the
200-dimensional quadratic min-max of the lower-bound construction (z in R^400). Methods:
optcore.monotone.solve with "vr_halpern", "halpern", "eag", "eg" (defaults, seed 0), each run
once to a budget of epochs (N component evaluations = one full evaluation of F). Reported:
the natural residual L ||z - P(z - F(z)/L)|| after given numbers of epochs (from the solver's
history, which checks it every iteration with an extra full evaluation that is not counted in
the epochs), the epochs to reach given residuals, and the wall time per epoch against one dense
evaluation of F (the matrix-vector products of one epoch) timed in the same run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time

import numpy as np

import optcore
from optcore.monotone import MatrixGame, QuadraticMinMax, solve

METHODS = ("vr_halpern", "halpern", "eag", "eg")


def residual_at(history: np.ndarray, epochs: float) -> float:
    """Smallest residual seen by ``epochs`` (the history is checked every iteration)."""
    h = history[history[:, 0] <= epochs]
    return float(h[:, 1].min()) if len(h) else float("nan")


def epochs_to(history: np.ndarray, level: float) -> float:
    hit = history[history[:, 1] <= level]
    return float(hit[0, 0]) if len(hit) else float("inf")


def matvec_time(problem, repeat: int = 200) -> float:
    """Seconds for one dense evaluation of F (NumPy BLAS), median of ``repeat``."""
    z = np.random.default_rng(0).random(problem.dim)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        problem.operator(z)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def run(problem, name: str, budget: float, marks, levels, check_every: dict) -> list[dict]:
    rows = []
    mv = matvec_time(problem)
    print(f"== {name}: one dense F evaluation {mv * 1e3:.3f} ms", file=sys.stderr)
    for method in METHODS:
        t = time.perf_counter()
        res = solve(
            problem,
            method=method,
            tol=1e-6,
            maxiter=10**9,
            rng=0,
            warn=False,
            check_every=check_every.get(method, 1),
            options={"max_epochs": budget},
        )
        wall = time.perf_counter() - t
        hist = res.history
        # time per epoch of the method itself: remove the residual checks (one F each)
        own = max(wall - res.n_residual * mv, 0.0)
        row = dict(
            problem=name,
            method=method,
            variant=res.variant,
            epochs=float(res.epochs),
            wall=wall,
            per_epoch=own / max(res.epochs, 1e-12),
            matvec=mv,
            final=float(res.residual),
            restarts=res.restarts,
            at={str(m): residual_at(hist, m) for m in marks},
            to={str(lv): epochs_to(hist, lv) for lv in levels},
        )
        rows.append(row)
        print(
            f"   {method:10s} final {res.residual:.2e} after {res.epochs:.0f} epochs, {wall:.1f} s, "
            f"{row['per_epoch'] / mv:.1f}x a dense F per epoch, restarts {res.restarts}",
            file=sys.stderr,
        )
    return rows


def table(rows, marks, levels) -> list[str]:
    L = [
        "| method | "
        + " | ".join(f"residual at {m:g} epochs" for m in marks)
        + " | "
        + " | ".join(f"epochs to {lv:g}" for lv in levels)
        + " | time / epoch (× dense F) |",
        "|---|" + "---|" * (len(marks) + len(levels) + 1),
    ]
    for r in rows:
        at = " | ".join(f"{r['at'][str(m)]:.2e}" for m in marks)
        to = " | ".join("—" if not np.isfinite(r["to"][str(lv)]) else f"{r['to'][str(lv)]:.0f}" for lv in levels)
        L.append(
            f"| `{r['method']}` | {at} | {to} | {r['per_epoch'] * 1e3:.2f} ms ({r['per_epoch'] / r['matvec']:.1f}×) |"
        )
    return L


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="benches/results/monotone.md")
    args = p.parse_args()
    t0 = time.perf_counter()
    if args.quick:
        game, quad = MatrixGame.policeman_burglar(100, rng=0), QuadraticMinMax.lower_bound(50)
        gb, qb = 500.0, 2000.0
    else:
        game, quad = MatrixGame.policeman_burglar(500, rng=0), QuadraticMinMax.lower_bound(200)
        gb, qb = 5000.0, 20000.0
    gmarks, glevels = (gb / 50, gb / 10, gb / 2, gb), (1.0, 0.1, 0.01, 1e-6)
    qmarks, qlevels = (qb / 100, qb / 10, qb / 2, qb), (1e-2, 1e-4, 1e-6)
    every = {"eg": 5, "eag": 5}
    rows_g = run(game, f"policeman-burglar {game.shape[0]}x{game.shape[1]}", gb, gmarks, glevels, every)
    rows_q = run(quad, f"quadratic min-max, dim {quad.dim}", qb, qmarks, qlevels, every)
    date = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    L = [
        "# Finite-sum monotone inclusions: variance-reduced Halpern vs deterministic baselines\n",
        f"`python benches/monotone.py{' --quick' if args.quick else ''}` — {date}, "
        f"{(time.perf_counter() - t0) / 60:.1f} min.\n",
        "## Machine\n",
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores; Python "
        f"{platform.python_version()}, numpy {np.__version__}, optcore {optcore.__version__}\n",
        "Natural residual `L ||z - P(z - F(z)/L)||` (the smallest seen by that many epochs), epochs "
        "(component evaluations / N) to reach a residual, and wall time per epoch of the method "
        "(residual checks removed) against one dense evaluation of `F` (NumPy) on this machine. "
        "Defaults of every method, seed 0, one run each.\n",
        f"## {rows_g[0]['problem']} (budget {gb:g} epochs)\n",
        *table(rows_g, gmarks, glevels),
        "",
        f"## {rows_q[0]['problem']} (budget {qb:g} epochs)\n",
        *table(rows_q, qmarks, qlevels),
        "",
    ]
    text = "\n".join(L) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as fh:
        json.dump({"date": date, "rows": rows_g + rows_q}, fh, indent=1)
    print(text)
    from plots import plot_monotone  # benches/plots.py: the figure beside the table

    png = plot_monotone(os.path.splitext(args.out)[0] + ".json")
    if png is not None:
        print(f"wrote {png}")


if __name__ == "__main__":
    main()
