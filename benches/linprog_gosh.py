#!/usr/bin/env python
"""What optcore.linprog's PDHG iterates do on Netlib's infeasible gosh, and how the certificate polish certifies it.

    python benches/linprog_gosh.py                    # -> benches/results/linprog_gosh.{md,json,png}
    python benches/linprog_gosh.py --time-limit 20    # shorter

Runs ``optcore.linprog`` (tol 1e-6, as ``benches/linprog.py``'s infeasible set) with a callback at
every check and records ||y||, the relative KKT residuals, the primal weight and the restarts.
At checks 1, 2, 4, 8, ... it keeps the dual iterate ``y_k`` and measures two candidate Farkas rays,
``y_k`` itself and the drift ``y_k - y_{k/2}``, with the certificate test of
``rust/optcore-core/src/lp/certificates.rs`` (``phi > 0`` and largest violation ``<= tol_inf phi``,
tol_inf = 1e-6): ``phi / ||w||_inf`` and ``viol / phi``; and (with ``highspy`` installed) the
cosine between the candidate and HiGHS's dual ray (presolve off), and the share of the
candidate's norm on the rows that ray uses, and the largest rank of those rows in ``|drift|``
(the rows the certificate polish of ``rust/optcore-core/src/lp/farkas.rs`` picks are the top 16,
64 or 256, plus the singleton rows of their columns).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import optcore

HERE = Path(__file__).resolve().parent
LOAD = " / ".join(f"{v:.1f}" for v in os.getloadavg())
DATA = HERE.parent / "data" / "netlib" / "infeasible" / "gosh.npz"


def load():
    d = np.load(DATA)

    def csr(p):
        return sp.csr_array((d[p + "_data"], d[p + "_indices"], d[p + "_indptr"]), shape=tuple(d[p + "_shape"]))

    return dict(c=d["c"], A_ub=csr("A_ub"), b_ub=d["b_ub"], A_eq=csr("A_eq"), b_eq=d["b_eq"], lb=d["lb"], ub=d["ub"])


def farkas(p, w):
    """``phi``, the largest violation and ``||w||_inf`` of the dual ray ``w`` (A_ub rows then A_eq
    rows, SciPy's signs: ``w <= 0`` on A_ub rows, clipped to that cone)."""
    A = sp.vstack([p["A_ub"], p["A_eq"]]).tocsr()
    m_ub = p["A_ub"].shape[0]
    w = w.copy()
    w[:m_ub] = np.minimum(w[:m_ub], 0.0)
    lam = -(A.T @ w)
    phi = float(np.r_[p["b_ub"], p["b_eq"]] @ w)
    lb, ub = p["lb"], p["ub"]
    pos, neg = lam > 0, lam < 0
    phi += float(np.sum(np.where(pos & np.isfinite(lb), np.nan_to_num(lb, neginf=0.0) * lam, 0.0)))
    phi += float(np.sum(np.where(neg & np.isfinite(ub), np.nan_to_num(ub, posinf=0.0) * lam, 0.0)))
    viol = float(np.max(np.r_[0.0, lam[pos & ~np.isfinite(lb)], -lam[neg & ~np.isfinite(ub)]]))
    return phi, viol, float(np.max(np.abs(w)))


def highs_ray(p):
    """HiGHS's dual ray (presolve off), signed so that it is a certificate, or None."""
    try:
        import highspy
    except ImportError:
        return None
    A = sp.vstack([p["A_ub"], p["A_eq"]]).tocsc()
    inf = highspy.kHighsInf
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", "off")
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
    lp.col_cost_ = p["c"]
    lp.col_lower_ = np.where(np.isfinite(p["lb"]), p["lb"], -inf)
    lp.col_upper_ = np.where(np.isfinite(p["ub"]), p["ub"], inf)
    lp.row_lower_ = np.r_[np.full(p["A_ub"].shape[0], -inf), p["b_eq"]]
    lp.row_upper_ = np.r_[p["b_ub"], p["b_eq"]]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = A.shape[1], A.shape[0]
    h.passModel(lp)
    h.run()
    _, has, ray = h.getDualRay()
    if not has:
        return None
    ray = np.asarray(ray, dtype=float)
    return ray if farkas(p, ray)[0] > 0 else -ray


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--out", default=str(HERE / "results" / "linprog_gosh.md"))
    args = ap.parse_args(argv)
    p = load()
    rec, ys = [], {}

    def cb(r):
        y = np.r_[r.ineqlin.marginals, r.eqlin.marginals]
        rec.append(
            dict(
                nit=int(r.nit),
                ynorm=float(np.linalg.norm(y)),
                rel_primal=float(r.rel_primal),
                rel_dual=float(r.rel_dual),
                rel_gap=float(r.rel_gap),
                omega=float(r.primal_weight),
                restarts=int(r.restarts),
            )
        )
        if len(rec) & (len(rec) - 1) == 0:
            ys[int(r.nit)] = y

    t = time.perf_counter()
    res = optcore.linprog(
        p["c"],
        A_ub=p["A_ub"],
        b_ub=p["b_ub"],
        A_eq=p["A_eq"],
        b_eq=p["b_eq"],
        bounds=np.c_[p["lb"], p["ub"]],
        tol=1e-6,
        time_limit=args.time_limit,
        warn=False,
        callback=cb,
    )
    elapsed = time.perf_counter() - t
    ray = highs_ray(p)
    support = None if ray is None else np.abs(ray) > 1e-12 * np.abs(ray).max()
    its = sorted(ys)
    rays = []
    for k in its[1:]:
        h = max(i for i in its if i <= k // 2) if its[0] <= k // 2 else its[0]
        for name, w in (("y", ys[k]), ("drift", ys[k] - ys[h])):
            phi, viol, size = farkas(p, w)
            row = dict(nit=k, candidate=name, phi_rel=phi / size, viol_over_phi=viol / phi if phi > 0 else None)
            if ray is not None:
                row["cos_highs"] = float(w @ ray / np.linalg.norm(w) / np.linalg.norm(ray))
                row["share_on_support"] = float(np.linalg.norm(w[support]) / np.linalg.norm(w))
                rank = np.empty(w.size, dtype=int)
                rank[np.argsort(-np.abs(w), kind="stable")] = np.arange(w.size)
                row["worst_rank"] = int(rank[support].max())
                single = np.diff(sp.vstack([p["A_ub"], p["A_eq"]]).tocsr().indptr) == 1
                row["worst_rank_not_singleton"] = int(rank[support & ~single].max())
            rays.append(row)
    write(args, res, elapsed, rec, rays, ray, support)


NOTES = """
## Notes

- **The certificate polish certifies gosh** (issue 23). HiGHS's 9-row ray includes two
  singleton rows (rows 2223 and 2224: `x_j <= 1e-3`, bounds written as rows) on which PDHG's dual
  drift is exactly 0 at every check: the iterates never make those rows active, so they rank at
  the bottom of `|drift|` (column "worst rank") and no drift-based candidate ray nor a Farkas LP on
  the drift's top rows alone can certify (the earlier run of this bench: no certificate up to
  341,312 iterations; the restricted LP on the top 16 to 256 rows is feasible at every sampled
  check). The other 7 rows rank 0-83 from 16,384 iterations on (column "worst rank, other
  rows"). The polish (`rust/optcore-core/src/lp/farkas.rs`) adds to the drift's top rows the
  singleton rows of their columns, so that the restricted problem holds every bound of its
  columns, solves its elastic feasibility LP exactly with a dense simplex, and tests the dual
  ray on the full problem with the solver's own certificate test: at check 512 (32,768
  iterations; the first check whose drift has cosine >= 0.8 with the one before) the top 64 rows
  plus 22 singleton rows give a ray with phi / max|y| = 0.04, HiGHS's value.
- The polish's work is counted in the time (the message gives it: a few hundredths of a second here for 2 runs
  and 5 restricted LPs); it changes no iterate, so `nit` is that of the check where it ran.
"""


def write(args, res, elapsed, rec, rays, ray, support):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    cmd = "python benches/linprog_gosh.py" + ("" if args.time_limit == 60 else f" --time-limit {args.time_limit:g}")
    lines = [
        "# gosh: what optcore.linprog's PDHG iterates do",
        "",
        f"`{cmd}` — {now}; {platform.machine()}, 2-core x86_64 AVX2+FMA dev machine, optcore "
        f"{optcore.__version__}. gosh: 3,792 rows (2,722 inequalities, 1,070 equations), 10,733 columns. "
        f"tol 1e-6, time limit {args.time_limit:g} s. Load average before the run: {LOAD} (other jobs on "
        "the 2 cores; iteration counts do not depend on it).",
        "",
        f"Result: status {res.status} after {res.nit} iterations ({elapsed:.1f} s): {res.message}",
        "",
    ]
    if ray is not None:
        lines.append(
            f"HiGHS's dual ray (presolve off) uses {int(support.sum())} of {support.size} rows; phi / ||w||_inf = "
            f"{farkas(load(), ray)[0] / np.abs(ray).max():.2e}."
        )
        lines.append("")
    lines += [
        "| iteration | candidate | phi / ‖w‖∞ | viol / phi (certificate: <= 1e-6) | cos to HiGHS's ray | "
        "share of ‖w‖ on its rows | worst rank of its rows in abs(w) | worst rank, other rows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rays:
        vp = "phi <= 0" if r["viol_over_phi"] is None else f"{r['viol_over_phi']:.1e}"
        lines.append(
            f"| {r['nit']} | {r['candidate']} | {r['phi_rel']:+.2e} | {vp} | {r.get('cos_highs', float('nan')):.3f} | "
            f"{r.get('share_on_support', float('nan')):.3f} | {r.get('worst_rank', '')} | "
            f"{r.get('worst_rank_not_singleton', '')} |"
        )
    lines += ["", "| iteration | ‖y‖ | rel. primal | rel. dual | rel. gap | primal weight | restarts |"]
    lines.append("|---|---|---|---|---|---|---|")
    for i in np.unique(np.linspace(0, len(rec) - 1, 16).astype(int)):
        q = rec[i]
        lines.append(
            f"| {q['nit']} | {q['ynorm']:.3e} | {q['rel_primal']:.1e} | {q['rel_dual']:.1e} | {q['rel_gap']:.1e} | "
            f"{q['omega']:.2e} | {q['restarts']} |"
        )
    lines.append(NOTES)
    out.write_text("\n".join(lines))
    out.with_suffix(".json").write_text(
        json.dumps(dict(date=now, command=cmd, status=int(res.status), nit=int(res.nit), rays=rays, checks=rec))
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    nit = [q["nit"] for q in rec]
    axes[0].semilogy(nit, [q["ynorm"] for q in rec], label="‖y‖")
    axes[0].semilogy(nit, [q["omega"] for q in rec], label="primal weight")
    axes[0].semilogy(nit, [q["rel_primal"] for q in rec], label="rel. primal residual")
    axes[0].set_xlabel("iteration")
    axes[0].legend(fontsize=8)
    dr = [r for r in rays if r["candidate"] == "drift"]
    if dr and "cos_highs" in dr[0]:
        axes[1].semilogx([r["nit"] for r in dr], [r["cos_highs"] for r in dr], "o-", label="cos(drift, HiGHS ray)")
    axes[1].semilogx(
        [r["nit"] for r in dr],
        [min(1.0, r["viol_over_phi"]) if r["viol_over_phi"] else np.nan for r in dr],
        "s-",
        label="viol / phi of the drift (needs 1e-6)",
    )
    axes[1].set_xlabel("iteration")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"gosh: PDHG iterates, {now[:10]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=100)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
