"""Netlib LPs: optcore.linprog (restarted reflected Halpern PDHG) against OR-Tools PDLP and
SciPy's HiGHS, in one run.

    python benches/linprog.py                                   # tols 1e-4,1e-6,1e-8, 60 s limit
    python benches/linprog.py --tols 1e-4,1e-6 --time-limit 5   # what benches/results/linprog.md holds

For each feasible Netlib problem (data/netlib in this repository) and tolerance: every solver's status,
wall time and iterations, and — measured here, not taken from the solver — the relative KKT
error of what it returned (primal residual ||Ax - proj(Ax)|| / (1 + ||b||), dual residual
||c - A^T y - lambda|| / (1 + ||c||) with lambda the bound-feasible part of the reduced costs,
gap |p - d| / (1 + |p| + |d|)) and the objective's relative gap to HiGHS's reference value.
A problem counts as solved when the solver says optimal within the time limit and the measured
KKT error is <= 10 tol (the slack covers the solvers' slightly different norms). Summary: solved
count and shifted geometric mean time (shift 10 s; unsolved runs count at the limit). Then the
28 infeasible problems: status of each, and false "optimal" answers.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import glob
import json
import os
import platform
import sys
import time
import warnings

import numpy as np
import scipy
import scipy.sparse as sp
from scipy.optimize import linprog as scipy_linprog

import optcore

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "netlib")


def load(path):
    d = np.load(path)

    def csr(p):
        return sp.csr_array((d[p + "_data"], d[p + "_indices"], d[p + "_indptr"]), shape=tuple(d[p + "_shape"]))

    return dict(c=d["c"], A_ub=csr("A_ub"), b_ub=d["b_ub"], A_eq=csr("A_eq"), b_eq=d["b_eq"], lb=d["lb"], ub=d["ub"])


def kkt(p, x, y):
    """Relative primal, dual and gap errors of (x, y) (y: A_ub rows then A_eq rows, HiGHS signs)."""
    A = sp.vstack([p["A_ub"], p["A_eq"]], format="csr")
    lc = np.r_[np.full(p["A_ub"].shape[0], -np.inf), p["b_eq"]]
    uc = np.r_[p["b_ub"], p["b_eq"]]
    lb, ub, c = p["lb"], p["ub"], p["c"]
    ax = A @ x
    pr = np.linalg.norm(ax - np.clip(ax, lc, uc))
    r = c - A.T @ y
    # lambda: the part of r on a finite bound near x (|x - bound| <= |x|, PDLP's rule, as optcore)
    with np.errstate(invalid="ignore"):
        near_lb = np.isfinite(lb) & (np.abs(x - lb) <= np.abs(x))
        near_ub = np.isfinite(ub) & (np.abs(x - ub) <= np.abs(x))
    lam = np.where(((r > 0) & near_lb) | ((r < 0) & near_ub), r, 0.0)
    bad_y = np.where(y > 0, ~np.isfinite(lc), np.where(y < 0, ~np.isfinite(uc), False))
    du = np.sqrt(np.sum((r - lam) ** 2) + np.sum(y[bad_y] ** 2))
    yok = np.where(bad_y, 0.0, y)
    with np.errstate(invalid="ignore"):
        dobj = (
            np.sum(np.where(yok > 0, lc * yok, 0.0))
            + np.sum(np.where(yok < 0, uc * yok, 0.0))
            + np.sum(np.where(lam > 0, lb * lam, 0.0))
            + np.sum(np.where(lam < 0, ub * lam, 0.0))
        )
    pobj = float(c @ x)
    bn = np.linalg.norm(np.r_[lc, uc][np.isfinite(np.r_[lc, uc])])
    return max(pr / (1 + bn), du / (1 + np.linalg.norm(c)), abs(pobj - dobj) / (1 + abs(pobj) + abs(dobj))), pobj


def run_optcore(p, tol, limit):
    t = time.perf_counter()
    r = optcore.linprog(
        p["c"],
        A_ub=p["A_ub"],
        b_ub=p["b_ub"],
        A_eq=p["A_eq"],
        b_eq=p["b_eq"],
        bounds=np.c_[p["lb"], p["ub"]],
        tol=tol,
        time_limit=limit,
        warn=False,
    )
    t = time.perf_counter() - t
    status = {0: "optimal", 1: "limit", 2: "infeasible", 3: "unbounded", 4: "numerical"}.get(r.status, str(r.status))
    return status, t, r.nit, r.x, np.r_[r.ineqlin.marginals, r.eqlin.marginals]


def run_highs(p, tol, limit):
    t = time.perf_counter()
    r = scipy_linprog(
        p["c"],
        A_ub=p["A_ub"],
        b_ub=p["b_ub"],
        A_eq=p["A_eq"],
        b_eq=p["b_eq"],
        bounds=np.c_[p["lb"], p["ub"]],
        method="highs",
        options={"time_limit": limit},
    )
    t = time.perf_counter() - t
    status = {0: "optimal", 1: "limit", 2: "infeasible", 3: "unbounded", 4: "numerical"}.get(r.status, str(r.status))
    if r.status != 0 or r.x is None:
        return status, t, r.nit, None, None
    return status, t, r.nit, r.x, np.r_[r.ineqlin.marginals, r.eqlin.marginals]


def run_pdlp(p, tol, limit):
    from ortools.pdlp import solve_log_pb2, solvers_pb2
    from ortools.pdlp.python import pdlp

    A = sp.vstack([p["A_ub"], p["A_eq"]], format="csc")
    m, n = A.shape
    qp = pdlp.QuadraticProgram()
    qp.resize_and_initialize(n, m)
    qp.objective_vector = p["c"].astype(np.float64)
    qp.constraint_lower_bounds = np.r_[np.full(p["A_ub"].shape[0], -np.inf), p["b_eq"]]
    qp.constraint_upper_bounds = np.r_[p["b_ub"], p["b_eq"]]
    qp.variable_lower_bounds = p["lb"].astype(np.float64)
    qp.variable_upper_bounds = p["ub"].astype(np.float64)
    qp.constraint_matrix = sp.csc_matrix(A)
    params = solvers_pb2.PrimalDualHybridGradientParams()
    crit = params.termination_criteria.simple_optimality_criteria
    crit.eps_optimal_relative = tol
    crit.eps_optimal_absolute = tol
    params.termination_criteria.time_sec_limit = limit
    t = time.perf_counter()
    r = pdlp.primal_dual_hybrid_gradient(qp, params)
    t = time.perf_counter() - t
    reason = solve_log_pb2.TerminationReason.Name(r.solve_log.termination_reason)
    status = {
        "TERMINATION_REASON_OPTIMAL": "optimal",
        "TERMINATION_REASON_PRIMAL_INFEASIBLE": "infeasible",
        "TERMINATION_REASON_DUAL_INFEASIBLE": "unbounded",
        "TERMINATION_REASON_PRIMAL_OR_DUAL_INFEASIBLE": "infeasible-or-unbounded",
        "TERMINATION_REASON_TIME_LIMIT": "limit",
        "TERMINATION_REASON_ITERATION_LIMIT": "limit",
    }.get(reason, reason)
    return status, t, r.solve_log.iteration_count, np.asarray(r.primal_solution), np.asarray(r.dual_solution)


SOLVERS = {"optcore": run_optcore, "PDLP": run_pdlp, "HiGHS": run_highs}


def large_problems(n_ot: int, m_rand: int, n_rand: int, seed: int = 0):
    """Issue 6's large LPs: the exact OT LP between two point clouds of n_ot points (n_ot²
    variables, 2 n_ot equality rows), a random sparse equality LP with a planted strictly
    complementary optimum (known value), and QAP12 from Netlib."""
    rng = np.random.default_rng(seed)
    out = []
    x, y = rng.random((n_ot, 2)), rng.random((n_ot, 2))
    C = ((x[:, None] - y[None]) ** 2).sum(-1).ravel()
    rows = sp.kron(sp.eye_array(n_ot), np.ones((1, n_ot)), format="csr")
    cols = sp.kron(np.ones((1, n_ot)), sp.eye_array(n_ot), format="csr")
    A_eq = sp.vstack([rows, cols], format="csr")
    w = np.full(n_ot, 1.0 / n_ot)
    out.append(
        (
            f"OT LP {n_ot}x{n_ot} ({n_ot * n_ot} vars)",
            dict(
                c=C,
                A_ub=sp.csr_array((0, n_ot * n_ot)),
                b_ub=np.zeros(0),
                A_eq=A_eq,
                b_eq=np.r_[w, w],
                lb=np.zeros(n_ot * n_ot),
                ub=np.full(n_ot * n_ot, np.inf),
            ),
            None,
        )
    )
    A = sp.random_array((m_rand, n_rand), density=10 / m_rand, rng=rng, format="csr")
    A = (A + sp.eye_array(m_rand, n_rand, format="csr")).tocsr()
    xs = np.where(rng.random(n_rand) < 0.3, rng.uniform(0.5, 2.0, n_rand), 0.0)
    ys = rng.normal(size=m_rand)
    sred = np.where(xs > 0, 0.0, rng.uniform(0.1, 1.0, n_rand))
    c = A.T @ ys + sred
    out.append(
        (
            f"random sparse LP {m_rand}x{n_rand} ({A.nnz} nnz)",
            dict(
                c=c,
                A_ub=sp.csr_array((0, n_rand)),
                b_ub=np.zeros(0),
                A_eq=A,
                b_eq=A @ xs,
                lb=np.zeros(n_rand),
                ub=np.full(n_rand, np.inf),
            ),
            float(c @ xs),
        )
    )
    qap = os.path.join(DATA, "QAP12.npz")
    if os.path.exists(qap):
        out.append(("QAP12 (Netlib)", load(qap), None))
    return out


def sgm(times, shift=10.0):
    return float(np.exp(np.mean(np.log(np.asarray(times) + shift))) - shift)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tols", default="1e-4,1e-6,1e-8")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--solvers", default="optcore,PDLP,HiGHS")
    ap.add_argument("--problems", default="", help="comma list of names, feasible or infeasible (default: all)")
    ap.add_argument("--out", default=None, help="default benches/results/linprog.md, or linprog_large.md with --large")
    ap.add_argument("--large", action="store_true", help="the large LPs instead of Netlib (tol 1e-4)")
    ap.add_argument("--large-sizes", default="1000,50000,200000", help="n_ot, m, n of the random LP")
    args = ap.parse_args()
    if args.out is None:
        args.out = "benches/results/linprog_large.md" if args.large else "benches/results/linprog.md"
    if args.large:
        return main_large(args)
    tols = [float(t) for t in args.tols.split(",")]
    solvers = args.solvers.split(",")
    ref = json.load(open(os.path.join(DATA, "highs_reference.json")))
    files = sorted(glob.glob(os.path.join(DATA, "*.npz")))
    if args.problems:
        keep = set(args.problems.split(","))
        files = [f for f in files if os.path.basename(f)[:-4] in keep]
    t0 = time.perf_counter()
    rows = []
    for f in files:
        name = os.path.basename(f)[:-4]
        p = load(f)
        fref = ref.get(name + ".npz", {}).get("highs_fun")
        for tol in tols:
            for s in solvers:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        status, t, nit, x, y = SOLVERS[s](p, tol, args.time_limit)
                    err, fun = (
                        kkt(p, x, y)
                        if x is not None and y is not None and len(y) == p["A_ub"].shape[0] + p["A_eq"].shape[0]
                        else (np.inf, np.nan)
                    )
                except Exception as exc:  # noqa: BLE001
                    status, t, nit, err, fun = f"error: {type(exc).__name__}", args.time_limit, 0, np.inf, np.nan
                rel_obj = abs(fun - fref) / (1 + abs(fref)) if fref is not None and np.isfinite(fun) else np.nan
                solved = status == "optimal" and err <= 10 * tol and t <= args.time_limit * 1.05
                rows.append(
                    dict(
                        problem=name,
                        tol=tol,
                        solver=s,
                        status=status,
                        time=t,
                        nit=int(nit),
                        kkt=float(err),
                        rel_obj=float(rel_obj),
                        solved=bool(solved),
                    )
                )
                print(
                    f"{name:10s} {tol:.0e} {s:8s} {status:12s} {t:8.3f}s it {nit:8d} kkt {err:.1e} obj {rel_obj:.1e}",
                    file=sys.stderr,
                    flush=True,
                )
    inf_rows = []
    for f in sorted(glob.glob(os.path.join(DATA, "infeasible", "*.npz"))):
        name = os.path.basename(f)[:-4]
        if args.problems and name not in keep:
            continue
        p = load(f)
        for s in solvers:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    status, t, nit, x, y = SOLVERS[s](p, 1e-6, args.time_limit)
                # an "optimal" answer on an infeasible problem: its KKT error, measured here
                err = kkt(p, x, y)[0] if status == "optimal" and x is not None and y is not None else None
            except Exception as exc:  # noqa: BLE001
                status, t, nit, err = f"error: {type(exc).__name__}", args.time_limit, 0, None
            inf_rows.append(dict(problem=name, solver=s, status=status, time=t, nit=int(nit), kkt=err))
            print(f"{name:10s} infeasible {s:8s} {status:12s} {t:8.3f}s", file=sys.stderr, flush=True)
    date = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    L = [
        "# Netlib LPs: optcore.linprog vs OR-Tools PDLP vs HiGHS\n",
        f"`python benches/linprog.py --tols {args.tols} --time-limit {args.time_limit:g}` — {date}, "
        f"{(time.perf_counter() - t0) / 60:.1f} min.\n",
        "## Machine\n",
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores; Python "
        f"{platform.python_version()}, SciPy {scipy.__version__} (HiGHS), optcore {optcore.__version__}, "
        f"OR-Tools {__import__('ortools').__version__ if 'PDLP' in solvers else '-'}\n",
        f"## Feasible problems ({len(files)}), time limit {args.time_limit:g} s\n",
        "| tol | solver | solved | shifted geo. mean time (s, shift 10) | false infeasible/unbounded |",
        "|---|---|---|---|---|",
    ]
    for tol in tols:
        for s in solvers:
            rs = [r for r in rows if r["tol"] == tol and r["solver"] == s]
            times = [r["time"] if r["solved"] else args.time_limit for r in rs]
            false = sum(r["status"] in ("infeasible", "unbounded") for r in rs)
            L.append(f"| {tol:.0e} | {s} | {sum(r['solved'] for r in rs)} / {len(rs)} | {sgm(times):.3f} | {false} |")
    L += [
        "",
        f"## Infeasible problems ({len({r['problem'] for r in inf_rows})}), tol 1e-6\n",
        "| solver | detected infeasible | reported optimal (false) | other |",
        "|---|---|---|---|",
    ]
    for s in solvers:
        rs = [r for r in inf_rows if r["solver"] == s]
        det = sum(r["status"] in ("infeasible", "infeasible-or-unbounded") for r in rs)
        fo = [
            f"{r['problem']} (measured KKT {r['kkt']:.1e})" if r.get("kkt") is not None else r["problem"]
            for r in rs
            if r["status"] == "optimal"
        ]
        other = [
            f"{r['problem']} ({r['status']})"
            for r in rs
            if r["status"] not in ("infeasible", "infeasible-or-unbounded", "optimal")
        ]
        L.append(f"| {s} | {det} / {len(rs)} | {len(fo)} {', '.join(fo)} | {', '.join(other)} |")
    L += [
        "",
        "## Every run\n",
        "| problem | tol | solver | status | time (s) | iterations | measured KKT | obj. gap to HiGHS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        L.append(
            f"| {r['problem']} | {r['tol']:.0e} | {r['solver']} | {r['status']} | {r['time']:.3f} | {r['nit']} | "
            f"{r['kkt']:.1e} | {r['rel_obj']:.1e} |"
        )
    text = "\n".join(L) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as fh:
        json.dump({"date": date, "args": vars(args), "rows": rows, "infeasible": inf_rows}, fh, indent=1)
    print("\n".join(L[:30]))
    from plots import plot_linprog  # benches/plots.py: the figure beside the table

    png = plot_linprog(os.path.splitext(args.out)[0] + ".json")
    if png is not None:
        print(f"wrote {png}")


def main_large(args):
    n_ot, m_r, n_r = (int(v) for v in args.large_sizes.split(","))
    solvers = args.solvers.split(",")
    t0 = time.perf_counter()
    L = [
        "# Large LPs: optcore.linprog vs OR-Tools PDLP vs HiGHS (tol 1e-4)\n",
        f"`python benches/linprog.py --large --large-sizes {args.large_sizes} --time-limit {args.time_limit:g}` — "
        f"{_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')}\n",
        "## Machine\n",
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores; SciPy {scipy.__version__}, "
        f"optcore {optcore.__version__}, OR-Tools {__import__('ortools').__version__}\n",
        "| problem | solver | status | time (s) | iterations | measured KKT | objective | vs optcore |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = []

    def run(s, p):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                status, t, nit, x, y = SOLVERS[s](p, 1e-4, args.time_limit)
            err, fun = kkt(p, x, y) if x is not None and y is not None else (np.inf, np.nan)
        except Exception as exc:  # noqa: BLE001
            status, t, nit, err, fun = f"error: {type(exc).__name__}: {str(exc)[:60]}", np.nan, 0, np.inf, np.nan
        return status, t, nit, err, fun

    for name, p, known in large_problems(n_ot, m_r, n_r):
        res = {s: run(s, p) for s in solvers}
        # Runs under 2 s are noisy on a shared machine: 4 more rounds, solvers interleaved, and
        # the median time is reported.
        short = [s for s in solvers if res[s][1] < 2.0]
        times = {s: [res[s][1]] for s in short}
        for _ in range(4 if short else 0):
            for s in short:
                times[s].append(run(s, p)[1])
        base = None
        for s in solvers:
            status, t, nit, err, fun = res[s]
            if s in times:
                t = float(np.median(times[s]))
            base = t if s == "optcore" else base
            ratio = f"{t / base:.1f}×" if base and np.isfinite(t) else ""
            extra = f" (known {known:.6g})" if known is not None else ""
            med = f" (median of {len(times[s])})" if s in times else ""
            L.append(f"| {name} | {s} | {status} | {t:.2f}{med} | {nit} | {err:.1e} | {fun:.8g}{extra} | {ratio} |")
            rows.append(
                dict(
                    problem=name,
                    solver=s,
                    status=status,
                    time=t,
                    nit=int(nit),
                    kkt=float(err),
                    fun=float(fun),
                    times=times.get(s, [t]),
                )
            )
            print(L[-1], file=sys.stderr, flush=True)
    L.append(
        f"\nTotal {(time.perf_counter() - t0) / 60:.1f} min; time limit {args.time_limit:g} s per solver and problem."
    )
    text = "\n".join(L) + "\n"
    with open(args.out, "w") as fh:
        fh.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as fh:
        json.dump({"rows": rows, "args": vars(args)}, fh, indent=1)
    print(text)


if __name__ == "__main__":
    main()
