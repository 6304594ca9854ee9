"""Netlib (feasible) at tol 1e-6: does optcore.linprog's polish give HiGHS's optimum to the last digits, and
what does it cost?

    python benches/linprog_polish.py                      # all 92 feasible problems, 5 s limit
    python benches/linprog_polish.py --problems AFIRO,SC50A --out /tmp/polish.md

Each problem runs with ``options={"polish": True}`` (the default) and, when that run converged, again with
``options={"polish": False}`` (the PDHG part is the same deterministic iteration; a run that hit the time
limit is not polished either way). Per run: status, PDHG seconds and polish seconds (``res.phase_times``),
whether the polished point was kept, the relative KKT error measured here (benches/linprog.py's ``kkt``),
and the objective's relative gap to HiGHS's optimum, ``|fun - f_HiGHS| / (1 + |f_HiGHS|)``, with
``f_HiGHS`` from data/netlib/highs_reference.json. Summary: of the problems optcore solves, how many agree
with HiGHS to 1e-9 with polish on and off, and the polish's share of the solve time (median over solved
problems). Writes benches/results/linprog_polish.{md,json,png}.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from linprog import DATA, kkt, load  # noqa: E402  (benches/linprog.py: the Netlib loader and KKT measure)

import optcore  # noqa: E402

AGREE = 1e-9


def run(p, tol, limit, polish):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
            options={"polish": polish},
        )
    wall = time.perf_counter() - t
    err, fun = kkt(p, r.x, np.r_[r.ineqlin.marginals, r.eqlin.marginals])
    pt = r.get("phase_times", {})
    return dict(
        status=int(r.status),
        wall=wall,
        pdhg=float(pt.get("pdhg", wall)),
        polish_time=float(pt.get("polish", 0.0)),
        polished=bool(r.get("polished", False)),
        nit=int(r.nit),
        kkt=float(err),
        fun=float(fun),
        message=str(r.message)[-160:],
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--time-limit", type=float, default=5.0)
    ap.add_argument("--problems", default="", help="comma list of Netlib names (default: all feasible)")
    ap.add_argument("--out", default="benches/results/linprog_polish.md")
    args = ap.parse_args()
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
        on = run(p, args.tol, args.time_limit, True)
        off = run(p, args.tol, args.time_limit, False) if on["status"] == 0 else None
        row = dict(problem=name, highs_fun=fref, on=on, off=off)
        for k, r in (("on", on), ("off", off)):
            if r is not None:
                r["rel_obj"] = abs(r["fun"] - fref) / (1 + abs(fref)) if fref is not None else float("nan")
                r["solved"] = r["status"] == 0 and r["kkt"] <= 10 * args.tol
        rows.append(row)
        print(
            f"{name:10s} st {on['status']} pdhg {on['pdhg']:7.3f}s polish {on['polish_time']:6.3f}s "
            f"kept {on['polished']!s:5s} kkt {on['kkt']:.1e} obj on {on.get('rel_obj', np.nan):.1e} "
            f"off {off['rel_obj'] if off else np.nan:.1e}",
            file=sys.stderr,
            flush=True,
        )
    write(args, rows, time.perf_counter() - t0)


def write(args, rows, seconds):
    date = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    solved = [r for r in rows if r["on"]["solved"]]
    agree_on = [r for r in solved if r["on"]["rel_obj"] <= AGREE]
    agree_off = [r for r in solved if r["off"] is not None and r["off"]["rel_obj"] <= AGREE]
    kept = [r for r in solved if r["on"]["polished"]]
    share = [r["on"]["polish_time"] / (r["on"]["pdhg"] + r["on"]["polish_time"]) for r in solved]
    med_share = float(np.median(share)) if share else float("nan")
    med_polish = float(np.median([r["on"]["polish_time"] for r in solved])) if solved else float("nan")
    med_pdhg = float(np.median([r["on"]["pdhg"] for r in solved])) if solved else float("nan")
    n = len(solved)
    cmd = "python benches/linprog_polish.py" + (f" --problems {args.problems}" if args.problems else "")
    L = [
        "# linprog polish on Netlib: agreement with HiGHS to 1e-9 with polish on and off\n",
        f"`{cmd}` (tol {args.tol:g}, time limit {args.time_limit:g} s) — {date}, {seconds / 60:.1f} min.\n",
        "## Machine\n",
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores (2-core x86_64 AVX2+FMA "
        f"dev machine, shared); Python {platform.python_version()}, SciPy {scipy.__version__}, "
        f"optcore {optcore.__version__}\n",
        "## Summary\n",
        f"- problems: {len(rows)} feasible Netlib LPs; optcore solves {n} (status 0 and measured KKT <= 10 tol)",
        f"- agree with HiGHS's optimum to {AGREE:g} (|fun - f| / (1 + |f|)): **{len(agree_on)} / {n}"
        f" ({100 * len(agree_on) / max(n, 1):.0f}%) with polish**, {len(agree_off)} / {n}"
        f" ({100 * len(agree_off) / max(n, 1):.0f}%) without",
        f"- polished point kept (smaller measured KKT error) on {len(kept)} / {n}",
        f"- polish time: median {med_polish * 1e3:.1f} ms against a median PDHG time of {med_pdhg:.3f} s; "
        f"median share of the solve time **{100 * med_share:.1f}%**",
        "",
        "## Every problem\n",
        "| problem | status | PDHG (s) | polish (s) | kept | KKT on | KKT off | obj. gap on | obj. gap off | why not |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        on, off = r["on"], r["off"]
        why = ""
        if on["status"] == 0 and not on["polished"] and "not polished" in on["message"]:
            why = on["message"].split("Not polished")[-1].strip(" ().")[:90]
        L.append(
            f"| {r['problem']} | {on['status']} | {on['pdhg']:.3f} | {on['polish_time']:.3f} | "
            f"{'yes' if on['polished'] else 'no'} | {on['kkt']:.1e} | {off['kkt'] if off else float('nan'):.1e} | "
            f"{on.get('rel_obj', float('nan')):.1e} | {off['rel_obj'] if off else float('nan'):.1e} | {why} |"
        )
    text = "\n".join(L) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text)
    base = os.path.splitext(args.out)[0]
    with open(base + ".json", "w") as fh:
        json.dump({"date": date, "args": vars(args), "rows": rows}, fh, indent=1)
    print("\n".join(L[:12]))
    plot(base + ".png", solved)


def plot(path, solved):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure", file=sys.stderr)
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    floor = 1e-17
    for key, lab in (("off", "polish off"), ("on", "polish on")):
        v = sorted(max(r[key]["rel_obj"], floor) for r in solved if r[key] is not None)
        a1.step(v, np.arange(1, len(v) + 1) / max(len(v), 1), where="post", label=lab)
    a1.axvline(AGREE, color="k", ls=":", lw=1)
    a1.set_xscale("log")
    a1.set_xlabel("|fun - f_HiGHS| / (1 + |f_HiGHS|)")
    a1.set_ylabel("fraction of solved problems")
    a1.set_title("agreement with HiGHS (tol 1e-6)")
    a1.legend()
    x = [r["on"]["pdhg"] for r in solved]
    y = [max(r["on"]["polish_time"], 1e-5) for r in solved]
    a2.loglog(x, y, "o", ms=3)
    lim = [min(x + y), max(x + y)]
    a2.plot(lim, [0.2 * v for v in lim], "k:", lw=1, label="20% of PDHG time")
    a2.set_xlabel("PDHG time (s)")
    a2.set_ylabel("polish time (s)")
    a2.set_title("what the polish costs")
    a2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
