"""The Sinkhorn divergence: optcore.ot.sinkhorn_divergence against POT, side by side in one run
(issue 21, part 4).

POT's ``ot.bregman.empirical_sinkhorn_divergence`` computes the transport-cost form
(``<P_ab, M> - <P_aa, M_a>/2 - <P_bb, M_b>/2``, squared Euclidean cost); optcore computes the same
with ``objective="transport"`` and the entropic (GeomLoss) form by default, with gradients from
the potentials (``return_grad=True``). Both run three Sinkhorn solves to ``tol`` (POT: the 2-norm
of one marginal every 10 iterations; optcore: the L1 error of both marginals of each returned
plan). The table gives the best time of interleaved repeats, the ratio, and the two values.

Run: ``python benches/ot_divergence.py [--quick]``.
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
CMD = "python benches/ot_divergence.py"


def clouds(n: int, d: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * 0.3
    y = rng.standard_normal((n, d)) * 0.2 + 0.5
    return np.full(n, 1 / n), x, np.full(n, 1 / n), y


def case(n: int, reg: float, tol: float, reps: int) -> dict:
    a, x, b, y = clouds(n)
    fns = {
        "pot": lambda: float(
            ot.bregman.empirical_sinkhorn_divergence(x, y, reg, a, b, numIterMax=100_000, stopThr=tol)
        ),
        "optcore": lambda: (
            optcore.ot.sinkhorn_divergence(a, x, b, y, reg, objective="transport", tol=tol, warn=False).fun
        ),
        "optcore_entropic": lambda: optcore.ot.sinkhorn_divergence(a, x, b, y, reg, tol=tol, warn=False).fun,
        "optcore_grad": lambda: (
            optcore.ot.sinkhorn_divergence(a, x, b, y, reg, tol=tol, return_grad=True, warn=False).fun
        ),
    }
    times = {k: [] for k in fns}
    vals = {}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = time.perf_counter()
            vals[k] = f()
            times[k].append(time.perf_counter() - t0)
    row = dict(n=n, reg=reg, tol=tol)
    for k in fns:
        row[f"{k}_s"] = min(times[k])
        row[f"{k}_value"] = vals[k]
    row["ratio"] = row["pot_s"] / row["optcore_s"]
    return row


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for reg, ls in sorted({(r["reg"], None) for r in rows}):
        sel = [r for r in rows if r["reg"] == reg]
        ns = [r["n"] for r in sel]
        for key, color, label in (
            ("pot_s", "C1", "POT (transport form)"),
            ("optcore_s", "C0", "optcore (transport form)"),
            ("optcore_grad_s", "C2", "optcore entropic + gradients"),
        ):
            ax.loglog(
                ns,
                [r[key] for r in sel],
                marker="o",
                color=color,
                ls="-" if reg == rows[0]["reg"] else "--",
                label=f"{label}, reg={reg:g}",
            )
    ax.set_xlabel("points per cloud (n = m, d = 2)")
    ax.set_ylabel("seconds (best of repeats)")
    ax.legend(fontsize=7)
    ax.set_title("Sinkhorn divergence, three solves to tol")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = [200, 500] if args.quick else [200, 500, 1000, 2000]
    reps = 2 if args.quick else 3
    rows = []
    for reg in (0.05, 0.01):
        for n in sizes:
            rows.append(case(n, reg, 1e-6, reps))
            print(rows[-1], flush=True)
    meta = dict(
        command=CMD,
        date=datetime.now(UTC).isoformat(timespec="minutes"),
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared; AVX2+FMA)",
        pot=ot.__version__,
    )
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "ot_divergence.json"), "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)
    plot(rows, os.path.join(OUT, "ot_divergence.png"))
    lines = [
        "# Sinkhorn divergence: optcore against POT",
        "",
        f"Reproduce: `{CMD}` ({meta['date']}, {meta['machine']}, POT {meta['pot']}).",
        "",
        "Point clouds of n points in 2-D (Gaussian blobs), uniform weights, squared Euclidean cost, tol 1e-6.",
        "Best of interleaved repeats. `ratio` = POT / optcore on the same (transport-cost) value.",
        "",
        "| n | reg | POT s | optcore s | ratio | optcore entropic s | entropic + gradients s | POT value |"
        " optcore value | entropic value |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['reg']:g} | {r['pot_s']:.3f} | {r['optcore_s']:.3f} | **{r['ratio']:.1f}x** | "
            f"{r['optcore_entropic_s']:.3f} | {r['optcore_grad_s']:.3f} | {r['pot_value']:.8f} | "
            f"{r['optcore_value']:.8f} | {r['optcore_entropic_value']:.8f} |"
        )
    lines += ["", "![timings](ot_divergence.png)", ""]
    with open(os.path.join(OUT, "ot_divergence.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
