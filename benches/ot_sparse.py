"""Sparsity-constrained / quadratic OT: optcore.ot.sparse_ot against POT's ot.smooth.

Same problems (squared Euclidean cost between uniform point clouds in [0, 1]^2, uniform
weights), same objective: POT's ``smooth_ot_dual`` / ``smooth_ot_semi_dual`` with
``reg_type="l2"`` (k = n) or ``"sparsity_constrained", max_nz=k``. Both objectives are
evaluated by POT's own ``dual_obj_grad`` / ``semi_dual_obj_grad`` at each solver's variables;
the table reports their difference, each solver's marginal error (L1, on its plan), and the
wall time ratio POT / optcore.

Usage: python benches/ot_sparse.py [n] [k ...] [--pot DUAL:K ...] [--maxiter N] [--name NAME]
(writes benches/results/NAME.{json,md}, NAME defaulting to ot_sparse). ``--pot semi:4`` runs
POT only for that row (the others show optcore alone), for sizes where POT takes minutes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time

import numpy as np
import ot
import ot.smooth

import optcore


def problem(n, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    return np.full(n, 1 / n), np.full(n, 1 / n), M


def marginal_error(P, a, b):
    P = P.toarray() if hasattr(P, "toarray") else P
    return float(np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum())


def run(n, ks, reg=1e-2, pot_rows=None, maxiter=2000):
    a, b, M = problem(n)
    rows = []
    for dual in ("semi", "dual"):
        for k in ks:
            kk = min(k, n)
            if kk >= n:
                regul, kw = ot.smooth.SquaredL2(gamma=reg), dict(reg_type="l2")
            else:
                regul, kw = (
                    ot.smooth.SparsityConstrained(max_nz=kk, gamma=reg),
                    dict(reg_type="sparsity_constrained", max_nz=kk),
                )
            t = time.perf_counter()
            res = optcore.ot.sparse_ot(a, b, M, kk, reg, dual=dual, tol=1e-9, maxiter=maxiter, warn=False)
            t_ours = time.perf_counter() - t
            if pot_rows is not None and (dual, kk) not in pot_rows:
                row = dict(n=n, k=kk, dual=dual, reg=reg, err_optcore=res.marginal_error, success=bool(res.success))
                row.update(nit=res.nit, nfev=res.nfev, t_optcore=t_ours, nnz_max=int(np.diff(res.plan.indptr).max()))
                print(json.dumps(row), flush=True)
                rows.append(row)
                continue
            t = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # POT prints a shape per evaluation
                if dual == "dual":
                    P, log = ot.smooth.smooth_ot_dual(a, b, M, reg, log=True, **kw)
                    pot = ot.smooth.dual_obj_grad(log["alpha"], log["beta"], a, b, M, regul)[0]
                    ours = ot.smooth.dual_obj_grad(res.alpha, res.beta, a, b, M, regul)[0]
                else:
                    P, log = ot.smooth.smooth_ot_semi_dual(a, b, M, reg, log=True, **kw)
                    pot = ot.smooth.semi_dual_obj_grad(log["alpha"], a, b, M, regul)[0]
                    ours = ot.smooth.semi_dual_obj_grad(res.alpha, a, b, M, regul)[0]
            t_pot = time.perf_counter() - t
            row = dict(
                n=n,
                k=kk,
                dual=dual,
                reg=reg,
                obj_optcore=float(ours),
                obj_pot=float(pot),
                obj_diff=float(ours - pot),
                err_optcore=res.marginal_error,
                err_pot=marginal_error(P, a, b),
                success=bool(res.success),
                nit=res.nit,
                nfev=res.nfev,
                pot_nit=int(log["res"].nit),
                t_optcore=t_ours,
                t_pot=t_pot,
                ratio=t_pot / t_ours,
                nnz_max=int(np.diff(res.plan.indptr).max()),
            )
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main():
    args, pot_rows, maxiter, name = [], None, 2000, "ot_sparse"
    it = iter(sys.argv[1:])
    for v in it:
        if v == "--pot":
            dual, k = next(it).split(":")
            pot_rows = (pot_rows or set()) | {(dual, int(k))}
        elif v == "--maxiter":
            maxiter = int(next(it))
        elif v == "--name":
            name = next(it)
        else:
            args.append(int(v))
    n = args[0] if args else 2000
    ks = args[1:] or [1, 4, 16, n]
    rows = run(n, ks, pot_rows=pot_rows, maxiter=maxiter)
    here = os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(here, exist_ok=True)
    with open(os.path.join(here, f"{name}.json"), "w") as f:
        json.dump(dict(cpu_count=os.cpu_count(), maxiter=maxiter, rows=rows), f, indent=1)
    lines = [
        f"# sparse_ot vs POT ot.smooth (n = m = {n}, reg = 1e-2, squared Euclidean cost; {os.cpu_count()} cores, shared)",
        "",
        f"`python benches/ot_sparse.py {' '.join(sys.argv[1:])}` (2-core x86_64 AVX2+FMA dev machine; optcore "
        f"maxiter {maxiter}, tol 1e-9; POT's defaults, numItermax 500). Rows without POT numbers: optcore alone.",
        "",
        "| dual | k | obj optcore - POT | err optcore | err POT | optcore nit/nfev | POT nit | t optcore (s) | t POT (s) | POT/optcore |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "t_pot" not in r:
            lines.append(
                f"| {r['dual']} | {r['k']} | – | {r['err_optcore']:.1e} | – | {r['nit']}/{r['nfev']} | – | "
                f"{r['t_optcore']:.3f} | – | – |"
            )
            continue
        lines.append(
            f"| {r['dual']} | {r['k']} | {r['obj_diff']:.2e} | {r['err_optcore']:.1e} | {r['err_pot']:.1e} | "
            f"{r['nit']}/{r['nfev']} | {r['pot_nit']} | {r['t_optcore']:.3f} | {r['t_pot']:.2f} | {r['ratio']:.1f}x |"
        )
    with open(os.path.join(here, f"{name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
