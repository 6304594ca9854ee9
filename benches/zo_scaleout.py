#!/usr/bin/env python
"""Zeroth order past one process: ``transport="seeds"`` against ``transport="points"`` (issue 26).

    python benches/zo_scaleout.py            # -> benches/results/zo_scaleout.{md,json,png}
    python benches/zo_scaleout.py --quick    # d in {1e4, 1e5}: a smoke run
    python benches/zo_scaleout.py --huge     # adds the d = 1e8 memory point (about 5 GB free needed)

Needs ``dask[distributed]``.

1. Bytes sent and wall time per iteration of ``zo.minimize(method="gaussian", q=10)`` on a
   regularised least-squares loss in NumPy (``0.5 |A x[:m] - b|^2 + 0.5e-3 |x|^2``, A 128 x
   1024: a few milliseconds per evaluation at d = 1e6), float32, for d = 1e4, 1e6, 1e7: one
   process (``transport="points"`` without executor, points generated one at a time), and
   ``"points"`` / ``"seeds"`` on a ``ProcessPoolExecutor(2)`` and a dask ``LocalCluster``
   (2 worker processes, 1 thread each) through ``Client.get_executor()``. Bytes: seeds, the
   pickled messages (``res.transport``); points, the pickled points sent (``d`` floats each)
   and the values returned. Each configuration's result is checked bit-identical to the
   single-process run. The objective's own cost (one evaluation, times the batch) is beside.
2. Peak resident memory of one process against d for q = 10 and 64 (3 iterations, 2 at q = 64
   and d = 1e8; per-point objective ``dot(x, x)``, which allocates nothing, and a rugged
   variant whose best point stays behind for many steps), in copies of ``x`` beyond the memory
   before the call, each point in a fresh process, with the adaptive step (the default) and a
   fixed ``lr``; and 40 iterations at d = 1e6. Part 1 also reads the CPU seconds of the coordinator and of each pool worker
   (from /proc), which the machine's load does not change.
3. A fault: a dask worker process is killed mid-run (d = 1e6); the nanny restarts it, the
   task is resubmitted, the new process rebuilds its replica; the result must be the same.

Timings are wall clock on a shared 2-core machine (other jobs ran meanwhile): ratios are
measured within one configuration's repeats, interleaved.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import pickle
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from optcore import zo

RESULTS = Path(__file__).resolve().parent / "results"


class LeastSquares:
    """``0.5 |A x[:m] - b|^2 + 0.5 lam |x|^2`` (float64 value); picklable, small state."""

    def __init__(self, m: int = 1024, rows: int = 128, lam: float = 1e-3, seed: int = 0):
        g = np.random.default_rng(seed)
        self.A = g.standard_normal((rows, m)).astype(np.float32) / np.sqrt(m)
        self.b = g.standard_normal(rows).astype(np.float32)
        self.m, self.lam = m, lam

    def __call__(self, x) -> float:
        r = self.A[:, : min(self.m, x.size)] @ x[: self.m] - self.b
        return float(0.5 * np.dot(r, r) + 0.5 * self.lam * np.dot(x, x))


def _cpu(pids) -> list[float]:
    """CPU seconds (user + system) of the processes ``pids`` so far, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = []
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        out.append((int(fields[11]) + int(fields[12])) / tick)
    return out


def timed_run(f, d, executor, transport, iters, cpu: dict | None = None):
    """Runs ``iters`` iterations; returns the result and the wall seconds per iteration. With
    ``cpu`` (a dict), also fills in the CPU seconds per iteration of this process and, for a
    process pool, of each worker process."""
    x0 = np.zeros(d, np.float32)
    pids = list(getattr(executor, "_processes", None) or {})
    c0, w0 = time.process_time(), _cpu(pids)
    t = time.perf_counter()
    res = zo.minimize(
        f,
        x0,
        method="gaussian",
        q=10,
        lr=1e-3,
        rng=0,
        maxiter=iters,
        executor=executor,
        transport=transport,
        warn=False,
    )
    wall = (time.perf_counter() - t) / res.nit
    if cpu is not None:
        cpu["coordinator"] = (time.process_time() - c0) / res.nit
        cpu["workers"] = [(b - a) / res.nit for a, b in zip(w0, _cpu(pids))]
    return res, wall


def points_bytes(d: int, batch: int) -> int:
    """Bytes of the pickled points of one batch and of the values coming back."""
    p = np.zeros(d, np.float32)
    return batch * (len(pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL)) + len(pickle.dumps(1.0)))


def scaleout(ds, iters_for, client, pool):
    f = LeastSquares()
    rows = []
    for d in ds:
        iters = iters_for(d)
        x = np.zeros(d, np.float32)
        t = time.perf_counter()
        for _ in range(5):
            f(x)
        cost = (time.perf_counter() - t) / 5
        cpu_single = {}
        ref, t_single = timed_run(f, d, None, "points", iters, cpu_single)
        row = {"d": d, "iters": iters, "f_cost_s": cost, "batch": 11, "single_s": t_single}
        row["single_cpu_s"] = cpu_single["coordinator"]
        for name, ex in (("pool", pool), ("dask", client.get_executor())):
            for transport in ("points", "seeds"):
                cpu = {}
                res, t_it = timed_run(f, d, ex, transport, iters, cpu)
                if name == "pool" and transport == "seeds":
                    row["pool_seeds_cpu_coordinator_s"] = cpu["coordinator"]
                    row["pool_seeds_cpu_workers_s"] = cpu["workers"]
                assert res.x.tobytes() == ref.x.tobytes() and res.history.tobytes() == ref.history.tobytes(), (
                    name,
                    transport,
                    d,
                )
                if transport == "seeds":
                    sent = res.transport["bytes_per_iteration"]
                    b_first, b_iter = int(sent[0]), float(np.median(sent[1:])) if len(sent) > 1 else float(sent[0])
                else:
                    b_first = b_iter = points_bytes(d, 11)
                row[f"{name}_{transport}_s"] = t_it
                row[f"{name}_{transport}_bytes"] = b_iter
                row[f"{name}_{transport}_bytes_first"] = b_first
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


# The peak resident memory is read from /proc/self/status (VmHWM): getrusage's ru_maxrss
# survives exec on Linux, so a child started by this (large) process would report ours.
MEMORY_SCRIPT = """
import sys, numpy as np
from optcore import zo
def hwm():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM"))
d, q, lr, iters, rugged = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5] == "rugged"
x0 = np.ones(d, np.float32)  # touched: resident before the run
w = np.arange(d, dtype=np.float32)  # in place below: no temporary raises the peak before the run
w /= d
w += 1
if rugged:  # a fine ripple: lucky points stay best for many steps (the previous iterate is replayed)
    f = lambda v: float(np.dot(v, v)) * (1 + 1e-3 * np.sin(1e4 * float(np.dot(v, w[: v.size]))))
else:
    f = lambda v: float(np.dot(v, v))
zo.minimize(f, x0[:10], q=2, maxfev=6, warn=False)
base = hwm()
kw = {} if lr == "adaptive" else {"lr": float(lr)}
res = zo.minimize(f, x0, method="gaussian", q=q, maxiter=iters, rng=0, warn=False, **kw)
print((hwm() - base) / x0.nbytes, res.nit)
"""


def copies(d, q, lr, iters, rugged=False):
    """Peak memory of one run in a fresh process, in copies of x (and the iterations run)."""
    args = [str(d), str(q), lr, str(iters), "rugged" if rugged else "smooth"]
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, *args], capture_output=True, text=True, check=True)
    c, nit = out.stdout.split()[-2:]
    return float(c), int(nit)


def memory(ds, qs):
    """Copies of x at each (d, q): 3 iterations at q = 10 (2 at q = 64 and d = 1e8), so that the
    adaptive step has a step to take back; the rugged objective only at q = 10, d <= 1e7."""
    rows = []
    for d in ds:
        for q in qs:
            iters = 3 if q <= 10 and d < 10**8 else 2
            row = {"d": d, "q": q, "iters": iters}
            row["copies"], _ = copies(d, q, "adaptive", iters)
            row["copies_fixed_lr"], _ = copies(d, q, "1e-3", iters)
            if q <= 10 and d <= 10**7:
                row["copies_rugged"], _ = copies(d, q, "adaptive", iters, rugged=True)
            rows.append(row)
            print(json.dumps(rows[-1]), flush=True)
    return rows


def memory_long(d=10**6, iters=40):
    """Copies of x over a longer run (step backs, the best point left behind for many steps)."""
    rows = []
    for rugged in (False, True):
        c, nit = copies(d, 10, "adaptive", iters, rugged=rugged)
        rows.append({"d": d, "q": 10, "iters": nit, "objective": "rugged" if rugged else "smooth", "copies": c})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def fault(client, d):
    import distributed

    f = LeastSquares()
    ref, _ = timed_run(f, d, None, "points", 8)
    pids = list(client.run(os.getpid).values())
    killed = []

    def kill(r):
        if r.nit >= 3 and not killed:
            os.kill(pids[0], 9)
            killed.append(r.nit)

    t = time.perf_counter()
    res = zo.minimize(
        f,
        np.zeros(d, np.float32),
        method="gaussian",
        q=10,
        lr=1e-3,
        rng=0,
        maxiter=8,
        executor=client.get_executor(),
        transport="seeds",
        warn=False,
        callback=kill,
        check_every=1,
    )
    wall = time.perf_counter() - t
    del distributed
    return {
        "d": d,
        "killed_at_iteration": killed[0] if killed else None,
        "same_result": bool(res.x.tobytes() == ref.x.tobytes() and res.history.tobytes() == ref.history.tobytes()),
        "wall_s": wall,
        **{k: v for k, v in res.transport.items() if k != "bytes_per_iteration"},
    }


def plot(data, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    rows = data["scaleout"]
    ds = [r["d"] for r in rows]
    for name in ("pool", "dask"):
        for transport, style in (("points", "--"), ("seeds", "-")):
            ax[0].loglog(
                ds, [r[f"{name}_{transport}_bytes"] for r in rows], style, marker="o", label=f"{name} {transport}"
            )
            ax[1].loglog(ds, [r[f"{name}_{transport}_s"] for r in rows], style, marker="o", label=f"{name} {transport}")
    ax[1].loglog(ds, [r["single_s"] for r in rows], "k-", marker="s", label="one process")
    ax[1].loglog(ds, [11 * r["f_cost_s"] for r in rows], "k:", label="objective alone (11 evaluations)")
    ax[0].set(xlabel="d", ylabel="bytes sent per iteration", title="communication (q = 10)")
    ax[1].set(xlabel="d", ylabel="s per iteration", title="time per iteration (2 workers)")
    for q in sorted({r["q"] for r in data["memory"]}):
        m = [r for r in data["memory"] if r["q"] == q]
        ax[2].semilogx([r["d"] for r in m], [r["copies"] for r in m], marker="o", label=f"q = {q}, adaptive step")
        if all("copies_fixed_lr" in r for r in m):
            ax[2].semilogx(
                [r["d"] for r in m], [r["copies_fixed_lr"] for r in m], "--", marker="s", label=f"q = {q}, fixed lr"
            )
    ax[2].axhline(3, color="k", lw=0.8, ls=":")
    ax[2].set(xlabel="d", ylabel="peak memory, copies of x (float32)", title="peak memory of one run")
    for a in ax:
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    fig.suptitle(f"optcore.zo transport='seeds' vs 'points' — {data['machine']}, {data['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(data) -> str:
    out = [
        "# optcore.zo: shared-seed transport against sending points (issue 26)",
        "",
        "    python benches/zo_scaleout.py"
        + (" --quick" if data["quick"] else "")
        + (" --huge" if data["huge"] else ""),
        "",
        f"Machine: {data['machine']}. Date: {data['date']}. {data['note']}",
        "",
        "## Communication and time per iteration (gaussian, q = 10, float32, 2 workers)",
        "",
        "Bytes: seeds, the median pickled messages of an iteration after the first (the first carries "
        "`fun` and `x0`: column *first*); points, the pickled points and values. Every configuration's "
        "result is bit-identical to the one-process run (asserted).",
        "",
        "| d | f cost (ms) | one process (s/it) | pool points (s/it, bytes) | pool seeds (s/it, bytes, first) "
        "| dask points (s/it, bytes) | dask seeds (s/it, bytes, first) | seeds / one process (pool, dask) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows_cpu = []
    for r in data["scaleout"]:
        if "pool_seeds_cpu_workers_s" in r:
            cw = r["pool_seeds_cpu_workers_s"]
            cc = r["pool_seeds_cpu_coordinator_s"]
            rows_cpu.append(
                f"| {r['d']:.0e} | {r['single_cpu_s']:.3f} | {cc:.3f} | {', '.join(f'{c:.3f}' for c in cw)} "
                f"| {max([cc, *cw]) / r['single_cpu_s']:.2f} | {(cc + sum(cw)) / r['single_cpu_s']:.2f} |"
            )
        out.append(
            f"| {r['d']:.0e} | {1e3 * r['f_cost_s']:.2f} | {r['single_s']:.3f} "
            f"| {r['pool_points_s']:.3f}, {r['pool_points_bytes']:.3g} "
            f"| {r['pool_seeds_s']:.3f}, {r['pool_seeds_bytes']:.0f}, {r['pool_seeds_bytes_first']:.3g} "
            f"| {r['dask_points_s']:.3f}, {r['dask_points_bytes']:.3g} "
            f"| {r['dask_seeds_s']:.3f}, {r['dask_seeds_bytes']:.0f}, {r['dask_seeds_bytes_first']:.3g} "
            f"| {r['pool_seeds_s'] / r['single_s']:.2f}, {r['dask_seeds_s'] / r['single_s']:.2f} |"
        )
    if rows_cpu:
        out += [
            "",
            "CPU seconds per iteration (process pool, seeds; from /proc, so independent of the other jobs' "
            "load): the busiest process against the one-process run (the wall ratio on an idle machine with a "
            "core per process) and the total (the work: replicas each apply every update, the coordinator too).",
            "",
            "| d | one process | pool seeds: coordinator | workers | busiest / one process | total / one process |",
            "|---|---|---|---|---|---|",
            *rows_cpu,
        ]
    out += [
        "",
        "## Peak memory of one run (per-point objective), copies of x beyond the memory before",
        "",
        "The iterate, the anchor (an older iterate: the center of the best point's batch, from which the best "
        "point and the adaptive step's previous iterate are regenerated) and the point handed to `fun`. "
        "Objective `dot(x, x)` (allocates nothing); *rugged*: the same times `1 + 1e-3 sin(1e4 w.x)`, where "
        "lucky points stay best for many steps. "
        + (f"Measured {data['memory_date']}, load average {data['memory_load']:.1f}." if "memory_date" in data else ""),
        "",
        "| d | q | iterations | copies of x (adaptive step) | adaptive, rugged objective | fixed lr |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r['d']:.0e} | {r['q']} | {r.get('iters', 1)} | {r['copies']:.1f} "
        f"| {r['copies_rugged']:.1f} | {r.get('copies_fixed_lr', float('nan')):.1f} |".replace("nan", "-")
        if "copies_rugged" in r
        else f"| {r['d']:.0e} | {r['q']} | {r.get('iters', 1)} | {r['copies']:.1f} | - "
        f"| {r.get('copies_fixed_lr', float('nan')):.1f} |"
        for r in data["memory"]
    ]
    if data.get("memory_long"):
        out += ["", "Longer runs (adaptive step, q = 10):", "", "| d | objective | iterations | copies of x |"]
        out += ["|---|---|---|---|"]
        out += [f"| {r['d']:.0e} | {r['objective']} | {r['iters']} | {r['copies']:.2f} |" for r in data["memory_long"]]
    if data.get("fault"):
        fl = data["fault"]
        out += [
            "",
            "## A dask worker killed mid-run",
            "",
            f"d = {fl['d']:.0e}: worker killed after iteration {fl['killed_at_iteration']}; same result as without "
            f"the fault: **{fl['same_result']}**; wall {fl['wall_s']:.2f} s; rebuilds {fl['rebuilds']}, lost tasks "
            f"{fl['lost_tasks']}, catch-ups {fl['catch_ups']}, local shares {fl['local_shares']}.",
        ]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--huge", action="store_true", help="add the d = 1e8 memory point (q = 10)")
    ap.add_argument("--memory-only", action="store_true", help="rerun the memory part into the existing results")
    ap.add_argument("--scaleout-from", help="take part 1's rows from the JSON lines this script printed to a log")
    ap.add_argument("--keep-memory", action="store_true", help="keep the memory part of the existing results")
    args = ap.parse_args()
    if args.memory_only:
        name = "zo_scaleout_quick" if args.quick else "zo_scaleout"
        data = json.loads((RESULTS / f"{name}.json").read_text())
        # Without --huge, the d = 1e8 rows of the existing results are kept.
        huge = memory([10**8], [10]) if args.huge else [r for r in data["memory"] if r["d"] >= 10**8]
        data["memory"] = memory([10**4, 10**5, 10**6, 10**7], [10, 64]) + huge
        data["memory_long"] = memory_long()
        data["huge"] = bool(huge)
        data["memory_date"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        data["memory_load"] = os.getloadavg()[0]
        (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1))
        (RESULTS / f"{name}.md").write_text(markdown(data))
        plot(data, RESULTS / f"{name}.png")
        print(markdown(data))
        return
    import distributed

    ds = [10**4, 10**5] if args.quick else [10**4, 10**6, 10**7]
    iters_for = lambda d: 20 if d <= 10**4 else (4 if d <= 10**6 else 3)  # noqa: E731
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client, concurrent.futures.ProcessPoolExecutor(2) as pool:
            if args.scaleout_from:
                lines = Path(args.scaleout_from).read_text().splitlines()
                rows = [json.loads(x) for x in lines if x.startswith("{") and '"single_s"' in x]
            else:
                rows = scaleout(ds, iters_for, client, pool)
            flt = fault(client, 10**5 if args.quick else 10**6)
            print(json.dumps(flt), flush=True)
    name = "zo_scaleout_quick" if args.quick else "zo_scaleout"
    if args.keep_memory:
        old = json.loads((RESULTS / f"{name}.json").read_text())
        mem, args.huge = old["memory"], old["huge"]
    else:
        mem = memory([10**4, 10**5, 10**6] if args.quick else [10**4, 10**5, 10**6, 10**7], [10, 64])
        if args.huge:
            mem += memory([10**8], [10])
    data = {
        "machine": "2-core x86_64 AVX2+FMA dev machine, shared with other jobs "
        f"({platform.python_version()}, numpy {np.__version__}, dask {distributed.__version__})",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "note": f"Load average at the end: {os.getloadavg()[0]:.1f} (the machine is shared: times are noisy).",
        "quick": args.quick,
        "huge": args.huge,
        "scaleout": rows,
        "memory": mem,
        "fault": flt,
    }
    RESULTS.mkdir(exist_ok=True)
    name = "zo_scaleout_quick" if args.quick else "zo_scaleout"
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1))
    (RESULTS / f"{name}.md").write_text(markdown(data))
    plot(data, RESULTS / f"{name}.png")
    print(markdown(data))


if __name__ == "__main__":
    main()
