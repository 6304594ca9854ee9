"""Finite-sum monotone inclusions to residual 1e-6 (issue 23, section 2): variance-reduced Halpern,
restarted Halpern (on the PDHG operator where the problem has a primal-dual split), EAG and EG,
and LP solves of the games (optcore.linprog, HiGHS through scipy.optimize.linprog).

    python benches/monotone.py                      # about 6 min on 2 cores
    python benches/monotone.py --quick              # smaller sizes and budgets

Problems: the 500 x 500 "policeman and burglar" matrix game over simplices (Cai, Alacaoglu &
Diakonikolas's experiment), the 200-dimensional quadratic min-max of the lower-bound construction
(z in R^400), and a random 1000 x 1000 game (standard normal payoffs, seed 0). Methods:
optcore.monotone.solve with "vr_halpern", "halpern", "eag", "eg" (defaults, seed 0), each run once
with tol 1e-6 and a budget of 5,000 epochs (N component evaluations = one full evaluation of F).
Reported: the natural residual L ||z - P(z - F(z)/L)|| at given numbers of epochs (from the
solver's history; the residual checks are extra full evaluations, not counted in the epochs),
the epochs and the wall time to 1e-6 (the run stops there), and the wall time per epoch of the
method (residual checks removed) against one dense evaluation of F timed in the same run. The LP
solves report their wall time and the natural residual and duality gap of the strategies they
return (y from the duals of A x <= t), measured the same way.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time

# NumPy's dense F, the per-epoch yardstick, single-threaded like the core's loops.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
from scipy.optimize import linprog as scipy_linprog  # noqa: E402

import optcore  # noqa: E402
from optcore.monotone import MatrixGame, QuadraticMinMax, solve  # noqa: E402

METHODS = ("vr_halpern", "halpern", "eag", "eg")
TOL = 1e-6
#: Residual checks every this many iterations (one extra full F each, not counted in epochs).
CHECK_EVERY = {"eg": 5, "eag": 5, "halpern": 10, "vr_halpern": 1}


def residual_at(history: np.ndarray, epochs: float) -> float:
    """Smallest residual seen by ``epochs``."""
    h = history[history[:, 0] <= epochs]
    return float(h[:, 1].min()) if len(h) else float("nan")


def epochs_to(history: np.ndarray, level: float) -> float:
    hit = history[history[:, 1] <= level]
    return float(hit[0, 0]) if len(hit) else float("inf")


def matvec_time(problem, repeat: int = 200) -> float:
    """CPU seconds for one dense evaluation of F (NumPy BLAS, one thread), median of ``repeat``."""
    z = np.random.default_rng(0).random(problem.dim)
    times = []
    for _ in range(repeat):
        t = time.process_time()
        problem.operator(z)
        times.append(time.process_time() - t)
    return float(np.median(times))


def epoch_cost(problem, method: str, extra: dict, epochs: float = 200.0, repeats: int = 3) -> float:
    """CPU time of one epoch of ``method`` over one dense NumPy evaluation of F, side by side:
    ``repeats`` interleaved rounds of (NumPy F, a run of ``epochs`` epochs with tol 0 and no
    residual checks but the first and the last), the best ratio of the rounds. CPU time (not
    wall time), so that other jobs on the shared cores do not inflate either side."""
    best = np.inf
    for _ in range(repeats):
        mv = matvec_time(problem, 50)
        t = time.process_time()
        res = solve(
            problem,
            method=method,
            tol=0.0,
            maxiter=10**9,
            rng=0,
            warn=False,
            check_every=10**9,
            options={"max_epochs": epochs, **extra},
        )
        cpu = time.process_time() - t - res.n_residual * mv
        best = min(best, cpu / res.epochs / mv)
    return float(best)


def _simplex(v: np.ndarray) -> np.ndarray:
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    r = np.nonzero(u - css / np.arange(1, len(v) + 1) > 0)[0][-1]
    return np.maximum(v - css[r] / (r + 1), 0.0)


def game_residual(game: MatrixGame, x: np.ndarray, y: np.ndarray) -> float:
    """The solver's natural residual ``L ||z - P(z - F(z)/L)||`` of ``(x, y)`` (NumPy)."""
    L = game.lipschitz
    z = np.r_[x, y]
    t = z - game.operator(z) / L
    n = game.shape[1]
    return float(L * np.linalg.norm(z - np.r_[_simplex(t[:n]), _simplex(t[n:])]))


def lp_rows(game: MatrixGame, name: str) -> list[dict]:
    """The game as the LP ``min t  s.t.  A x <= t 1, 1^T x = 1, x >= 0``; ``y`` = the duals."""
    A = game.A
    m, n = A.shape
    c = np.r_[np.zeros(n), 1.0]
    args = dict(
        A_ub=np.c_[A, -np.ones(m)],
        b_ub=np.zeros(m),
        A_eq=np.r_[np.ones(n), 0.0][None],
        b_eq=[1.0],
        bounds=[(0, None)] * n + [(None, None)],
    )
    rows = []
    for solver, call in (
        ("HiGHS (scipy)", lambda: scipy_linprog(c, method="highs", **args)),
        ("optcore.linprog tol 1e-6", lambda: optcore.linprog(c, tol=1e-6, time_limit=120, warn=False, **args)),
        ("optcore.linprog tol 1e-8", lambda: optcore.linprog(c, tol=1e-8, time_limit=120, warn=False, **args)),
    ):
        t = time.perf_counter()
        res = call()
        wall = time.perf_counter() - t
        x = np.clip(res.x[:n], 0, None)
        x /= x.sum()
        y = np.clip(-res.ineqlin.marginals, 0, None)
        y /= y.sum()
        row = dict(
            problem=name,
            solver=solver,
            status=int(res.status),
            wall=wall,
            residual=game_residual(game, x, y),
            gap=game.gap(x, y),
            nit=int(getattr(res, "nit", 0)),
        )
        rows.append(row)
        print(
            f"   {solver:26s} status {res.status}, {wall:.2f} s, residual {row['residual']:.2e}, gap {row['gap']:.2e}",
            file=sys.stderr,
        )
    return rows


def run(problem, name: str, budget: float, marks, single: bool) -> list[dict]:
    """Every method; ``single`` adds ``vr_halpern`` with single-component steps (``batch=1``,
    the paper's setting: fewer epochs, several times the time per epoch)."""
    rows = []
    mv = matvec_time(problem)
    print(f"== {name}: one dense F evaluation {mv * 1e3:.3f} ms", file=sys.stderr)
    runs = [(m, {}) for m in METHODS]
    if single:
        runs.insert(1, ("vr_halpern", {"batch": 1}))
    for method, extra in runs:
        t = time.process_time()
        res = solve(
            problem,
            method=method,
            tol=TOL,
            maxiter=10**9,
            rng=0,
            warn=False,
            check_every=CHECK_EVERY[method],
            options={"max_epochs": budget, **extra},
        )
        wall = time.process_time() - t
        hist = res.history
        # the method's own time: remove the residual checks (one F each; halpern-PDHG's checks
        # come from its own products, and only its first and last are full evaluations)
        own = max(wall - res.n_residual * mv, 0.0)
        ratio = epoch_cost(problem, method, extra)
        row = dict(
            problem=name,
            method=method + (" batch=1" if extra else ""),
            variant=res.variant,
            success=bool(res.success),
            epochs=float(res.epochs),
            wall=wall,
            own=own,
            per_epoch=own / max(res.epochs, 1e-12),
            epoch_ratio=ratio,
            n_residual=int(res.n_residual),
            matvec=mv,
            final=float(res.residual),
            restarts=res.restarts,
            at={str(m): residual_at(hist, m) for m in marks},
            history=hist[:: max(1, len(hist) // 400)].tolist() + [hist[-1].tolist()],
        )
        rows.append(row)
        print(
            f"   {row['method']:18s} {'reached' if res.success else 'final'} {res.residual:.2e} after {res.epochs:.0f} "
            f"epochs, {wall:.1f} s ({own:.1f} s without checks), {ratio:.2f}x a dense F per epoch, "
            f"restarts {res.restarts}",
            file=sys.stderr,
        )
    return rows


def table(rows, marks) -> list[str]:
    L = [
        "| method | variant | "
        + " | ".join(f"residual at {m:g} epochs" for m in marks)
        + " | epochs to 1e-6 | CPU time to 1e-6 (checks removed) | epoch / dense F (CPU, side by side) | full F for checks | restarts |",
        "|---|---|" + "---|" * (len(marks) + 5),
    ]
    for r in rows:
        at = " | ".join(f"{r['at'][str(m)]:.2e}" for m in marks)
        if r["success"]:
            to, tt = f"**{r['epochs']:.0f}**", f"{r['wall']:.2f} s ({r['own']:.2f} s)"
        else:
            to, tt = f"— ({r['final']:.1e} at {r['epochs']:.0f})", "—"
        L.append(
            f"| `{r['method']}` | {r['variant']} | {at} | {to} | {tt} | "
            f"{r['epoch_ratio']:.2f}× | {r['n_residual']} | {r['restarts']} |"
        )
    return L


def lp_table(rows) -> list[str]:
    L = ["| LP solver | status | wall time | natural residual | duality gap |", "|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['solver']} | {r['status']} | {r['wall']:.2f} s | {r['residual']:.2e} | {r['gap']:.2e} |")
    return L


def plot(rows, path: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    labels = list(dict.fromkeys(r["method"] for r in rows))
    colors = {m: f"C{i}" for i, m in enumerate(labels)}  # one colour per method in every panel
    fig, axes = plt.subplots(1, len(problems), figsize=(5 * len(problems), 3.8), squeeze=False)
    for ax, problem in zip(axes[0], problems):
        for r in rows:
            if r["problem"] == problem:
                h = np.asarray(r["history"])
                ax.semilogy(h[:, 0], h[:, 1], label=r["method"], lw=1.2, color=colors[r["method"]])
        ax.axhline(TOL, color="k", lw=0.6, ls=":")
        ax.set_title(problem, fontsize=10)
        ax.set_xlabel("epochs")
        ax.set_ylabel("natural residual")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="benches/results/monotone.md")
    args = p.parse_args()
    t0 = time.perf_counter()
    if args.quick:
        game, quad = MatrixGame.policeman_burglar(100, rng=0), QuadraticMinMax.lower_bound(50)
        rand = MatrixGame(np.random.default_rng(0).standard_normal((200, 200)))
        budget = 2000.0
    else:
        game, quad = MatrixGame.policeman_burglar(500, rng=0), QuadraticMinMax.lower_bound(200)
        rand = MatrixGame(np.random.default_rng(0).standard_normal((1000, 1000)))
        budget = 5000.0
    marks = (budget / 50, budget / 10, budget / 2, budget)
    names = (
        f"policeman-burglar {game.shape[0]}x{game.shape[1]}",
        f"quadratic min-max, dim {quad.dim}",
        f"random game {rand.shape[0]}x{rand.shape[1]}",
    )
    sections, all_rows, all_lp = [], [], []
    for prob, name in zip((game, quad, rand), names):
        # single-sample vr_halpern on the random game would take ~20 min here
        rows = run(prob, name, budget, marks, single=prob is not rand)
        lps = lp_rows(prob, name) if isinstance(prob, MatrixGame) else []
        all_rows += rows
        all_lp += lps
        sections += [f"## {name} (budget {budget:g} epochs)\n", *table(rows, marks), ""]
        if lps:
            sections += ["The game as an LP (`min t  s.t.  A x <= t 1`, `x` in the simplex):\n", *lp_table(lps), ""]
    date = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    L = [
        "# Finite-sum monotone inclusions to residual 1e-6\n",
        f"`python benches/monotone.py{' --quick' if args.quick else ''}` — {date}, "
        f"{(time.perf_counter() - t0) / 60:.1f} min.\n",
        "## Machine\n",
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores (2-core x86_64 AVX2+FMA "
        f"dev machine shared with other jobs); Python {platform.python_version()}, numpy {np.__version__}, "
        f"optcore {optcore.__version__}\n",
        "Natural residual `L ||z - P(z - F(z)/L)||` (the smallest seen by that many epochs), epochs "
        "and CPU time to 1e-6 (tol 1e-6, the run stops there; in parentheses the time without the full "
        "evaluations spent on residual checks, which are not part of the method), and the CPU time of an "
        "epoch against one dense evaluation of `F` by NumPy (OpenBLAS, one thread), measured side by side "
        "(3 interleaved rounds of NumPy's `F` and a 200-epoch run without checks, best ratio). CPU time, not "
        "wall time: the 2 cores are shared with other jobs. Defaults of every method, seed 0, one run each "
        "(`vr_halpern batch=1`: single-component steps, the paper's setting; not run on the random game, "
        "where it would take about 20 min).\n",
        "**Epoch**: `N` component evaluations, i.e. one pass over `A` and one over `Aᵀ` (games; for the "
        "quadratic one pass over `M`): the cost of one dense `F`. EG and EAG spend 2 epochs per iteration; "
        "`halpern` (PDHG) 1 per iteration (`K(2x̄ − x)` and `Kᵀȳ`; `F` at its point and the residual checks "
        "follow from these products by linearity, no extra pass), plus 1 at the start (`Kᵀy₀`, `K x₀`) and, "
        "on the quadratic, the factorisation of `I + τH` counted as `nx³/(3d²)` = 17 epochs (the per-iteration "
        "solve with it, `nx²` flops, is in the time but not in the epochs); on games, each polishing attempt "
        "counts its two LU factorisations as `(4/3)(s+1)³/(2mn)` epochs, its candidate's `F` as 1 and, when "
        "the candidate is taken, its products as 1; `vr_halpern` counts each "
        "component difference as 2 evaluations and each snapshot as `N`. The full evaluations of the "
        "residual checks (column *full F for checks*) are not epochs.\n",
        *sections,
    ]
    text = "\n".join(L) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    notes = os.path.splitext(args.out)[0] + "_notes.md"
    if os.path.exists(notes):
        text += "\n" + open(notes).read()
    with open(args.out, "w") as fh:
        fh.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as fh:
        json.dump({"date": date, "rows": all_rows, "lp": all_lp}, fh, indent=1)
    print(text)
    png = plot(all_rows, os.path.splitext(args.out)[0] + ".png")
    if png is not None:
        print(f"wrote {png}")


if __name__ == "__main__":
    main()
