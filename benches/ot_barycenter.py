"""Entropic barycenters: optcore.ot.barycenter against POT, side by side in one run (issue 21, part 3).

1. Grids (the convolutional form): k images of shapes on an s x s grid, squared Euclidean cost on
   [0, 1] per axis, POT's ``ot.bregman.convolutional_barycenter2d`` (scaling form, ``method="sinkhorn"``)
   against ``optcore.ot.barycenter(A, None, reg)`` (log domain). Both run to their stopping rule
   (POT: ``sum(std(marginals)) < stopThr`` every 10 iterations; optcore: the L1 marginal error of
   every plan below ``tol``, measured on the returned state); the table gives times (best of the
   interleaved repeats), iterations, seconds per iteration and each result's L1 distance to a
   reference (optcore at tol 1e-12), so that the ratio compares equal accuracy. POT's log-domain
   form (``method="sinkhorn_log"``) is timed per iteration only (it is ~100x slower per iteration).
2. Dense costs: k histograms on n points of a line, POT's ``ot.bregman.barycenter`` (scaling and
   ``sinkhorn_log``) against optcore.
3. A picture: barycenters of four shapes with bilinear weights (``ot_barycenter.png``).

Run: ``python benches/ot_barycenter.py [--quick]``.
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
CMD = "python benches/ot_barycenter.py"


def shapes(s: int) -> np.ndarray:
    """Four shapes on an s x s grid (masses 1): a square, a disc, a ring, a cross."""
    t = np.linspace(-1, 1, s)
    X, Y = np.meshgrid(t, t, indexing="ij")
    R = np.hypot(X, Y)
    masks = [
        (np.abs(X) < 0.55) & (np.abs(Y) < 0.55),
        R < 0.65,
        (R > 0.45) & (R < 0.8),
        ((np.abs(X) < 0.2) | (np.abs(Y) < 0.2)) & (R < 0.85),
    ]
    A = np.stack([m.astype(float) for m in masks])
    return A / A.sum(axis=(1, 2), keepdims=True)


def best_of(fns: dict, reps: int) -> dict:
    """Each function's best time over ``reps`` interleaved rounds, and its last output."""
    times = {k: [] for k in fns}
    outs = {}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = time.perf_counter()
            outs[k] = f()
            times[k].append(time.perf_counter() - t0)
    return {k: (min(v), outs[k]) for k, v in times.items()}


def grid_case(s: int, k: int, reg: float, tol: float, reps: int) -> dict:
    A = shapes(s)[:k]
    w = np.full(k, 1.0 / k)
    ref = optcore.ot.barycenter(A, None, reg, w, tol=1e-12, maxiter=100_000, warn=False).barycenter

    def pot():
        bar, log = ot.bregman.convolutional_barycenter2d(
            A, reg, w, stopThr=tol, numItermax=100_000, log=True, warn=False
        )
        return bar, log["niter"] + 1

    def opt():
        r = optcore.ot.barycenter(A, None, reg, w, tol=tol, maxiter=100_000, warn=False)
        return r.barycenter, r.nit

    load = os.getloadavg()[0]
    res = best_of({"pot": pot, "optcore": opt}, reps)
    # POT's log-domain form: seconds per iteration over a few iterations.
    K = 3
    t0 = time.perf_counter()
    ot.bregman.convolutional_barycenter2d(A, reg, w, method="sinkhorn_log", numItermax=K, stopThr=0, warn=False)
    pot_log_it = (time.perf_counter() - t0) / K
    row = dict(kind="grid", size=f"{s}x{s}", k=k, reg=reg, tol=tol, pot_log_s_per_it=pot_log_it, load=load)
    for name, (t, (bar, nit)) in res.items():
        row[f"{name}_s"] = t
        row[f"{name}_nit"] = int(nit)
        row[f"{name}_s_per_it"] = t / nit
        row[f"{name}_l1_to_ref"] = float(np.abs(bar - ref).sum())
    row["ratio"] = row["pot_s"] / row["optcore_s"]
    row["ratio_per_it"] = row["pot_s_per_it"] / row["optcore_s_per_it"]
    return row


def dense_case(n: int, k: int, reg: float, tol: float, reps: int) -> dict:
    x = np.linspace(0, 1, n)
    M = (x[:, None] - x[None, :]) ** 2
    rng = np.random.default_rng(0)
    centers = rng.random(k) * 0.8 + 0.1
    A = np.exp(-((x[:, None] - centers[None, :]) ** 2) / 0.002) + 1e-3
    A /= A.sum(0)
    w = np.full(k, 1.0 / k)
    ref = optcore.ot.barycenter(A, M, reg, w, tol=1e-12, maxiter=200_000, warn=False).barycenter

    def pot(method):
        def f():
            bar, log = ot.bregman.barycenter(
                A, M, reg, w, method=method, stopThr=tol, numItermax=200_000, log=True, warn=False
            )
            return bar, log["niter"] + 1

        return f

    def opt():
        r = optcore.ot.barycenter(A, M, reg, w, tol=tol, maxiter=200_000, warn=False)
        return r.barycenter, r.nit

    res = best_of({"pot": pot("sinkhorn"), "pot_log": pot("sinkhorn_log"), "optcore": opt}, reps)
    row = dict(kind="dense", size=f"n={n}", k=k, reg=reg, tol=tol)
    for name, (t, (bar, nit)) in res.items():
        row[f"{name}_s"] = t
        row[f"{name}_nit"] = int(nit)
        row[f"{name}_s_per_it"] = t / nit
        row[f"{name}_l1_to_ref"] = float(np.abs(bar - ref).sum()) if np.all(np.isfinite(bar)) else float("nan")
    row["ratio"] = row["pot_s"] / row["optcore_s"]
    row["ratio_log"] = row["pot_log_s"] / row["optcore_s"]
    return row


def picture(path: str, s: int = 64, reg: float = 2e-3) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    A = shapes(s)
    nb = 5
    fig, axes = plt.subplots(nb, nb, figsize=(7, 7))
    for i in range(nb):
        for j in range(nb):
            tx, ty = i / (nb - 1), j / (nb - 1)
            w = np.array([(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty])
            keep = w > 0
            if keep.sum() == 1:
                img = A[np.argmax(w)]
            else:
                img = optcore.ot.barycenter(A[keep], None, reg, w[keep], tol=1e-6, warn=False).barycenter
            axes[i, j].imshow(img, cmap="Blues")
            axes[i, j].axis("off")
    fig.suptitle(f"optcore.ot.barycenter: shapes on a {s}x{s} grid, reg = {reg:g} (bilinear weights)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    reps = 2 if args.quick else 9
    load = os.getloadavg()[0]
    rows = []
    for s, k, reg in [(64, 4, 4e-3), (64, 4, 1e-3), (32, 3, 4e-3)] + ([] if args.quick else [(128, 3, 2e-3)]):
        rows.append(grid_case(s, k, reg, 1e-8, reps))
        print(rows[-1], flush=True)
    # POT's log-domain dense form takes about a minute at n = 400: two repeats.
    for n, k, reg in [(200, 3, 1e-2), (400, 3, 3e-3)]:
        rows.append(dense_case(n, k, reg, 1e-8, 2))
        print(rows[-1], flush=True)
    os.makedirs(OUT, exist_ok=True)
    picture(os.path.join(OUT, "ot_barycenter.png"))
    meta = dict(
        command=CMD,
        date=datetime.now(UTC).isoformat(timespec="minutes"),
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared; AVX2+FMA)",
        simd=optcore._core.simd_level(),
        pot=ot.__version__,
        load_average_at_start=load,
    )
    with open(os.path.join(OUT, "ot_barycenter.json"), "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)
    lines = [
        "# Entropic barycenters: optcore against POT",
        "",
        f"Reproduce: `{CMD}` ({meta['date']}, {meta['machine']}, POT {meta['pot']}; load average "
        f"{load:.1f} at the start: other jobs share the cores).",
        "",
        "Best of interleaved repeats. POT stops on `sum(std(marginals)) < tol` (checked every 10 iterations),",
        "optcore on the L1 marginal error of every plan `<= tol` on the returned state; `L1 to ref` is each",
        "result's distance to optcore's result at tol 1e-12 (equal accuracy: both columns small).",
        "",
        "## Grids (convolutional form; POT `convolutional_barycenter2d`)",
        "",
        "| grid | k | reg | tol | POT s (nit) | optcore s (nit) | ratio | per-iteration ratio | POT L1 to ref |"
        " optcore L1 to ref | POT log-domain s/it | optcore s/it | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["kind"] == "grid":
            lines.append(
                f"| {r['size']} | {r['k']} | {r['reg']:g} | {r['tol']:g} | {r['pot_s']:.3f} ({r['pot_nit']}) | "
                f"{r['optcore_s']:.3f} ({r['optcore_nit']}) | **{r['ratio']:.1f}x** | {r['ratio_per_it']:.1f}x | "
                f"{r['pot_l1_to_ref']:.1e} | {r['optcore_l1_to_ref']:.1e} | {r['pot_log_s_per_it']:.3f} | "
                f"{r['optcore_s_per_it']:.2e} | {r['load']:.1f} |"
            )
    lines += [
        "",
        "## Dense costs (POT `ot.bregman.barycenter`)",
        "",
        "| n | k | reg | tol | POT sinkhorn s (nit) | POT sinkhorn_log s (nit) | optcore s (nit) | ratio |"
        " ratio vs log | POT L1 to ref | POT log L1 to ref | optcore L1 to ref |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["kind"] == "dense":
            lines.append(
                f"| {r['size']} | {r['k']} | {r['reg']:g} | {r['tol']:g} | {r['pot_s']:.3f} ({r['pot_nit']}) | "
                f"{r['pot_log_s']:.3f} ({r['pot_log_nit']}) | {r['optcore_s']:.3f} ({r['optcore_nit']}) | "
                f"{r['ratio']:.1f}x | {r['ratio_log']:.1f}x | {r['pot_l1_to_ref']:.1e} | {r['pot_log_l1_to_ref']:.1e} | "
                f"{r['optcore_l1_to_ref']:.1e} |"
            )
    lines += ["", "![barycenters of shapes](ot_barycenter.png)", ""]
    with open(os.path.join(OUT, "ot_barycenter.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
