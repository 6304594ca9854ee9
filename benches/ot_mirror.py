"""Mirror Sinkhorn benchmarks (issue 20, part 1).

1. The paper's synthetic experiment (Ballu & Berthet 2023): the linear objective ``<P, M>`` on
   random point clouds, suboptimality ``<P_T, M> - OT(a, b)`` (exact cost from POT's
   ``ot.emd2``) and marginal error against iterations, for the averaged plan and the last
   iterate, noiseless and with noisy online costs ``M + sigma * N(0, 1)``. PNG and JSON under
   ``benches/results/``.
2. Time per iteration against one log-domain Sinkhorn iteration on the same problem (optcore's
   ``sinkhorn(method="log")`` and POT's ``sinkhorn_log``).

Run: ``python benches/ot_mirror.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime

import numpy as np
import ot

import optcore

OUT = os.path.join(os.path.dirname(__file__), "results")


def cloud(n, m, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    return np.full(n, 1 / n), np.full(m, 1 / m), M


def rates(n, iters, sigma, seeds):
    """Suboptimality and marginal error after each T in ``iters`` (one run per T: the paper's
    average depends on the horizon only through the steps, which are the same)."""
    rows = []
    for seed in range(seeds):
        a, b, M = cloud(n, n, seed)
        exact = float(ot.emd2(a, b, M))

        def sampler(k, rng, M=M):
            return M + sigma * rng.standard_normal(M.shape)

        for output in ("average", "last"):
            for T in iters:
                kw = dict(cost_sampler=sampler, rng=seed) if sigma > 0 else {}
                r = optcore.ot.mirror_sinkhorn(a, b, M, maxiter=T, tol=1e-15, output=output, warn=False, **kw)
                rows.append(
                    dict(seed=seed, output=output, T=T, gap=r.cost - exact, err=r.marginal_error, sigma=sigma, n=n)
                )
    return rows


def per_iteration(n, reps, dtype=np.float64):
    """Seconds per iteration (median of ``reps``) of Mirror Sinkhorn and of log-domain Sinkhorn,
    the methods interleaved within each repeat so machine load affects all of them alike.
    Mirror runs ``K`` iterations (its per-run setup, the step factor rebuilt once per dyadic
    block of the step schedule, included); POT runs fewer (it is slow at these sizes)."""
    a, b, M = cloud(n, n, 0)
    a, b, M = a.astype(dtype), b.astype(dtype), M.astype(dtype)
    K, K_pot = 200, 10
    reg = 0.01 * float(M.max())
    runs = {
        f"mirror_{o}": (
            lambda o=o: (
                optcore.ot.mirror_sinkhorn(a, b, M, maxiter=K, tol=1e-15, output=o, check_every=K, warn=False).nit
            )
        )
        for o in ("average", "last")
    }
    runs["optcore_sinkhorn_log"] = lambda: (
        optcore.ot.sinkhorn(
            a, b, M, reg=reg, method="log", maxiter=K, tol=1e-300, warn=False, options={"overrelaxation": 1.0}
        ).nit
    )
    if dtype == np.float64:
        # the bare exp floor of one exact log-sum-exp iteration (two passes of one exp per entry)
        runs["exp_floor_iteration"] = lambda: optcore._core.exp_floor_f64(M, reg, 2 * K) and K
        runs["pot_sinkhorn_log"] = lambda: (
            ot.sinkhorn(a, b, M, reg, method="sinkhorn_log", numItermax=K_pot, stopThr=0, log=True)[1]["niter"] + 1
        )
    times = {name: [] for name in runs}
    for _ in range(reps):
        for name, f in runs.items():
            t0 = time.perf_counter()
            k = f()
            times[name].append((time.perf_counter() - t0) / k)
    return {name: float(np.median(ts)) for name, ts in times.items()}


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for sigma, ls in ((0.0, "-"), (max(r["sigma"] for r in rows), "--")):
        for output, color in (("average", "C0"), ("last", "C1")):
            sel = [r for r in rows if r["sigma"] == sigma and r["output"] == output]
            Ts = sorted({r["T"] for r in sel})
            gap = [np.mean([abs(r["gap"]) for r in sel if r["T"] == T]) for T in Ts]
            err = [np.mean([r["err"] for r in sel if r["T"] == T]) for T in Ts]
            label = f"{output}, sigma={sigma:g}"
            axes[0].loglog(Ts, gap, ls, color=color, marker="o", label=label)
            axes[1].loglog(Ts, err, ls, color=color, marker="o", label=label)
    Ts = np.array(sorted({r["T"] for r in rows}), float)
    for ax in axes:
        ax.loglog(Ts, 0.3 / np.sqrt(Ts), ":", color="gray", label="1/sqrt(T)")
        ax.set_xlabel("iterations T")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("|<P_T, M> - OT(a, b)|")
    axes[1].set_ylabel("||P 1 - a||_1 + ||P^T 1 - b||_1")
    fig.suptitle(f"Mirror Sinkhorn, linear objective, n = m = {rows[0]['n']} (mean of seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    iters = [10, 30, 100, 300, 1000, 3000] + ([] if args.quick else [10000])
    seeds = 2 if args.quick else 4
    rows = rates(100, iters, 0.0, seeds) + rates(100, iters, 0.1, seeds)
    sizes = [500] if args.quick else [500, 1000, 2000]
    timing = {f"{n}/{np.dtype(dt).name}": per_iteration(n, 5, dt) for n in sizes for dt in (np.float64, np.float32)}
    meta = dict(
        load=f"{os.getloadavg()[0]:.1f}",
        date=datetime.now(UTC).isoformat(timespec="minutes"),
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared)",
        optcore=optcore.__version__ if hasattr(optcore, "__version__") else "dev",
        pot=ot.__version__,
    )
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "ot_mirror.json"), "w") as f:
        json.dump(dict(meta=meta, rates=rows, timing=timing), f, indent=1)
    plot(rows, os.path.join(OUT, "ot_mirror_rates.png"))
    lines = [f"# Mirror Sinkhorn ({meta['date']}, {meta['machine']}, POT {meta['pot']})", ""]
    lines += [f"Load average {meta['load']} when the run started (other jobs share the cores).", ""]
    lines += [
        f"`python benches/ot_mirror.py{' --quick' if args.quick else ''}` (2-core x86_64 AVX2+FMA dev machine)",
        "",
    ]
    lines += ["## Suboptimality |<P_T, M> - OT| (mean of seeds), n = m = 100", ""]
    lines += ["| sigma | output | " + " | ".join(f"T={T}" for T in iters) + " |"]
    lines += ["|---|---|" + "---|" * len(iters)]
    for sigma in sorted({r["sigma"] for r in rows}):
        for output in ("average", "last"):
            sel = [r for r in rows if r["sigma"] == sigma and r["output"] == output]
            vals = [np.mean([abs(r["gap"]) for r in sel if r["T"] == T]) for T in iters]
            lines.append(f"| {sigma:g} | {output} | " + " | ".join(f"{v:.2e}" for v in vals) + " |")
    lines += ["", "## Seconds per iteration (median of 5 interleaved repeats; 200 iterations, POT 10)", ""]
    lines += [
        "The linear objective runs on mirror_sinkhorn's stored-plan form (`ot/mirror_mult.rs`: the plan "
        "updated by a stored `exp(-eta M)`, rebuilt once per dyadic block of the step schedule; no `exp` per "
        "entry and iteration). `avg/optcore` and `last/optcore` are the issue's ratio (target <= 1.5): one "
        "Mirror Sinkhorn iteration (one mirror step and one row or column scaling) against one optcore "
        "log-domain Sinkhorn iteration (`method='log'`, reg = 0.01 max M, both scalings) on the same problem.",
        "",
        "Bytes per entry and iteration (s = 8 f64, 4 f32): log-domain Sinkhorn reads its stored kernel once "
        "(s, ~4 flops); Mirror `last` reads the plan and the factor and writes the plan once per two "
        "iterations (1.5 s, ~5 flops, no exp); `average` adds the average's read and write (2.5 s, ~8 flops). "
        "The former potentials form read M once per two iterations (0.5 s; average 1.5 s) but paid one "
        "exp per entry and iteration (1.5 for the average). Where the ratio misses 1.5 it is bytes, not "
        "arithmetic: at n = 1000 in f64 the log-domain kernel (8 MB) stays in the 32 MB L3 (shared with other "
        "jobs) while Mirror's two or three 8 MB arrays stream from memory, and the averaged output moves 2.5 "
        "arrays per iteration where Sinkhorn moves one.",
        "",
    ]
    lines += [
        "| n = m | dtype | mirror average | mirror last | optcore sinkhorn log | exact LSE floor | POT sinkhorn_log "
        "| avg/optcore | last/optcore |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|---|"]
    for key, t in timing.items():
        n, dt = key.split("/")
        floor = f"{t['exp_floor_iteration']:.2e}" if "exp_floor_iteration" in t else "-"
        pot = f"{t['pot_sinkhorn_log']:.2e}" if "pot_sinkhorn_log" in t else "-"
        lines.append(
            f"| {n} | {dt} | {t['mirror_average']:.2e} | {t['mirror_last']:.2e} | {t['optcore_sinkhorn_log']:.2e} | "
            f"{floor} | {pot} | {t['mirror_average'] / t['optcore_sinkhorn_log']:.2f} | "
            f"{t['mirror_last'] / t['optcore_sinkhorn_log']:.2f} |"
        )
    with open(os.path.join(OUT, "ot_mirror.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
