"""Variance-reduced Halpern in its regime (issue 23, section 2): a finite sum of many cheap
components, the samples of a sparse instrumental-variable regression (optcore.monotone.SampleSaddle).

    python benches/monotone_finite_sum.py            # about 8 min on 2 cores
    python benches/monotone_finite_sum.py --quick    # N = 2,000 and 20,000, small budgets

Problems: ``SampleSaddle.iv_regression(N, 50, rng=0)`` (x, y in R^50: an intercept and 4 sparse
features of 49 per instrument row, regressors = instruments + 4 sparse noise entries, alpha = 1,
beta = 1) for N = 10^4 and 10^5 samples. A component is one sample (two sparse rows); one
epoch is N component evaluations = one full F. ``"vr_halpern"`` draws samples with probability
proportional to their Lipschitz constants, so L_ms = mean L_i; the factor variance reduction
can save over the deterministic O(N L / eps) is sqrt(N) L / L_ms (printed).

Methods: optcore.monotone.solve with "vr_halpern" (Algorithm 2, VR-FoRB, default minibatch 16),
"halpern" (inexact Halpern, deterministic FoRB resolvent), "eag" (restarted by default), "eg"; seed
0, tol 1e-6, every method single-threaded (workers=1) so that wall times compare, one run each.
Epochs are counted honestly: the method's component evaluations / N plus one full F for every
residual check (n_residual), reported apart and together. Times to 1e-4 / 1e-6 are the run's
wall time scaled by the share of its work (epochs with checks) done when the level was first
checked. The load average is recorded before and after.
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

from optcore.monotone import SampleSaddle, solve

LEVELS = (1e-4, 1e-6)
CHECK_EVERY = {"vr_halpern": 10, "halpern": 10, "eag": 5, "eg": 5}
METHODS = ("vr_halpern", "halpern", "eag", "eg")


def work_to(history: np.ndarray, level: float) -> float:
    """Epochs including the residual checks (one full F each) when ``level`` was first seen."""
    hit = np.nonzero(history[:, 1] <= level)[0]
    return float(history[hit[0], 0] + hit[0] + 1) if len(hit) else float("inf")


def run(N: int, budget: float) -> dict:
    t = time.perf_counter()
    prob = SampleSaddle.iv_regression(N, 50, rng=0)
    build = time.perf_counter() - t
    t = time.perf_counter()
    L, Lms = prob.lipschitz, prob.lipschitz_ms
    setup = time.perf_counter() - t
    gain = np.sqrt(N) * L / Lms
    info = dict(
        N=N,
        dim=prob.dim,
        nnz_P=int(prob.P.nnz),
        nnz_Q=int(prob.Q.nnz),
        L=L,
        L_ms=Lms,
        gain=float(gain),
        build=build,
        lanczos=setup,
    )
    print(
        f"== N = {N}: dim {prob.dim}, nnz P {prob.P.nnz}, Q {prob.Q.nnz}; L = {L:.4g}, L_ms = {Lms:.4g}, "
        f"sqrt(N) L / L_ms = {gain:.1f}; Lanczos {setup:.2f} s",
        file=sys.stderr,
    )
    rows = []
    for method in METHODS:
        t, c = time.perf_counter(), time.process_time()
        res = solve(
            prob,
            method=method,
            tol=LEVELS[-1],
            maxiter=10**9,
            rng=0,
            warn=False,
            workers=1,
            check_every=CHECK_EVERY[method],
            options={"max_epochs": budget},
        )
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        h = res.history
        total = res.epochs + res.n_residual
        # re-measured on the returned point with SciPy: the natural residual of an
        # unconstrained problem is ||F(z)||
        remeasured = float(np.linalg.norm(prob.operator(res.x)))
        row = dict(
            method=method,
            variant=res.variant,
            success=bool(res.success),
            final=float(res.residual),
            remeasured=remeasured,
            epochs=float(res.epochs),
            checks=int(res.n_residual),
            total=float(total),
            wall=wall,
            cpu=cpu,
            per_epoch=wall / total,
            restarts=int(res.restarts),
            work_to={str(lv): work_to(h, lv) for lv in LEVELS},
            time_to={str(lv): wall * work_to(h, lv) / total for lv in LEVELS},
            history=np.c_[h[:, 0] + np.arange(1, len(h) + 1), h[:, 1]][:: max(1, len(h) // 400)].tolist(),
        )
        rows.append(row)
        print(
            f"   {method:10s} {'reached' if res.success else 'final'} {res.residual:.2e} (re-measured {remeasured:.2e}) "
            f"after {res.epochs:.0f} epochs + {res.n_residual} checks, {wall:.1f} s wall ({cpu:.1f} s CPU), "
            f"to 1e-4: {row['work_to']['0.0001']:.0f} epochs {row['time_to']['0.0001']:.2f} s, "
            f"to 1e-6: {row['work_to']['1e-06']:.0f} epochs {row['time_to']['1e-06']:.2f} s",
            file=sys.stderr,
        )
    rows.append(gmres_row(prob, budget))
    return dict(info=info, rows=rows)


def gmres_row(prob: SampleSaddle, budget: float) -> dict:
    """SciPy's GMRES (restart 100) on ``M z = -F(0)``, the affine problem's linear system: not a
    monotone-inclusion method (it needs F affine and no constraint), the yardstick a user of this
    particular problem would also try. One product with M (SciPy sparse, one thread) is one epoch;
    its residual ``||F(z)||`` is measured at every restart cycle's end through the callback."""
    from scipy.sparse.linalg import LinearOperator, gmres  # noqa: PLC0415

    P, Q, n, a, b = prob.P, prob.Q, prob.n, prob.alpha, prob.beta
    PT, QT = P.T.tocsr(), Q.T.tocsr()
    nx = P.shape[1]
    count = [0]

    def mv(z):
        count[0] += 1
        u, v = P @ z[:nx], Q @ z[nx:]
        return np.concatenate([PT @ (a * u + v), QT @ (b * v - u)]) / n

    f0 = prob.operator(np.zeros(prob.dim))
    op = LinearOperator((prob.dim, prob.dim), matvec=mv, dtype=np.float64)
    hist = []
    t0 = time.perf_counter()

    def cb(xk):
        r = float(np.linalg.norm(mv(xk) + f0))
        count[0] -= 1  # the measurement is not the method's
        hist.append((count[0], r, time.perf_counter() - t0))

    t, c = time.perf_counter(), time.process_time()
    z, _ = gmres(
        op,
        -f0,
        rtol=1e-12,
        atol=LEVELS[-1] / 10,
        restart=100,
        maxiter=int(budget // 100),
        callback=cb,
        callback_type="x",
    )
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    final = float(np.linalg.norm(prob.operator(z)))
    h = np.asarray(hist) if hist else np.zeros((0, 3))
    work, times = {}, {}
    for lv in LEVELS:
        hit = np.nonzero(h[:, 1] <= lv)[0] if len(h) else []
        work[str(lv)] = float(h[hit[0], 0]) if len(hit) else float("inf")
        times[str(lv)] = float(h[hit[0], 2]) if len(hit) else float("inf")
    print(
        f"   gmres      final {final:.2e} after {count[0]} products, {wall:.1f} s; to 1e-6: {work['1e-06']:.0f} epochs",
        file=sys.stderr,
    )
    return dict(
        method="scipy gmres(100)",
        variant="GMRES on M z = -F(0) (a linear solver, not a monotone method)",
        success=final <= LEVELS[-1],
        final=final,
        remeasured=final,
        epochs=float(count[0]),
        checks=0,
        total=float(count[0]),
        wall=wall,
        cpu=cpu,
        per_epoch=wall / max(count[0], 1),
        restarts=0,
        work_to=work,
        time_to=times,
        history=[[e, r] for e, r, _ in hist],
    )


def fmt(v: float, spec: str) -> str:
    return "not reached" if not np.isfinite(v) else format(v, spec)


def write(results: list[dict], out: str, args, load0, load1, date: str | None = None) -> None:
    now = date or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cmd = "python benches/monotone_finite_sum.py" + (" --quick" if args.quick else "")
    lines = [
        "# vr_halpern in its regime: a sparse finite sum of cheap samples",
        "",
        f"`{cmd}`",
        "",
        f"Machine: 2-core x86_64 AVX2+FMA dev machine ({platform.processor() or platform.machine()}), "
        f"{now}; load average {load0:.1f} before, {load1:.1f} after (other jobs share the cores). "
        "Every method single-threaded (`workers=1`), one run each, seed 0, tol 1e-6.",
        "",
        "Problem: `SampleSaddle.iv_regression(N, 50, rng=0)`: x, y in R^50, one component per sample",
        "(two sparse rows), one epoch = N component evaluations = one full F. `vr_halpern` draws samples",
        "by importance (probability proportional to L_i), so L_ms is the mean L_i; sqrt(N) L / L_ms is",
        "the most variance reduction can save over the deterministic methods' O(N L / eps).",
        "",
        "| N | nnz(P) + nnz(Q) | L | L_ms | sqrt(N) L / L_ms | Lanczos for L (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        i = r["info"]
        lines.append(
            f"| {i['N']:,} | {i['nnz_P'] + i['nnz_Q']:,} | {i['L']:.4g} | {i['L_ms']:.4g} | {i['gain']:.1f} | "
            f"{i['lanczos']:.2f} |"
        )
    lines += [
        "",
        "Epochs with checks = the method's component evaluations / N + one full F per residual check.",
        "Times to a level: the run's wall time times the share of its work done when the level was",
        "first checked.",
        "",
        "| N | method | final residual (re-measured) | epochs + checks | to 1e-4: epochs, s | to 1e-6: epochs, s "
        "| wall s per epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for row in r["rows"]:
            w4, w6 = row["work_to"]["0.0001"], row["work_to"]["1e-06"]
            t4, t6 = row["time_to"]["0.0001"], row["time_to"]["1e-06"]
            lines.append(
                f"| {r['info']['N']:,} | {row['method']} | {row['final']:.2e} ({row['remeasured']:.2e}) | "
                f"{row['epochs']:.0f} + {row['checks']} | {fmt(w4, ',.0f')}, {fmt(t4, '.2f')} | "
                f"{fmt(w6, ',.0f')}, {fmt(t6, '.2f')} | {row['per_epoch'] * 1e3:.2f} ms |"
            )
    lines += [
        "",
        "`scipy gmres(100)` solves the affine problem's linear system `M z = -F(0)` (SciPy sparse products,",
        "one per epoch, residual measured at the end of each restart cycle): not a monotone-inclusion",
        "method (no constraints, F affine only), the yardstick for this particular problem.",
        "",
        "Ratios (other / vr_halpern; a lower bound where the other run missed the level):",
        "",
    ]
    lines += ["| N | method | epochs to 1e-4 | epochs to 1e-6 | time to 1e-6 |", "|---|---|---|---|---|"]
    for r in results:
        vr = r["rows"][0]
        for row in r["rows"][1:]:
            cells = []
            for key, lv in (("work_to", "0.0001"), ("work_to", "1e-06"), ("time_to", "1e-06")):
                a, b = row[key][lv], vr[key][lv]
                if np.isfinite(a):
                    cells.append(f"{a / b:.2g}x")
                else:
                    budget = row["total"] if key == "work_to" else row["wall"]
                    cells.append(f"> {budget / b:.2g}x")
            lines.append(f"| {r['info']['N']:,} | {row['method']} | " + " | ".join(cells) + " |")
    lines.append("")
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines))
    with open(out + ".json", "w") as f:
        json.dump(dict(date=now, load=[load0, load1], command=cmd, results=results), f, indent=1)

    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, r in zip(axes[0], results):
        for row in r["rows"]:
            h = np.asarray(row["history"])
            ax.semilogy(h[:, 0], h[:, 1], marker="o" if len(h) < 5 else None, label=row["method"])
        ax.axhline(1e-6, color="gray", lw=0.5)
        i = r["info"]
        ax.set_title(f"N = {i['N']:,}, sqrt(N) L / L_ms = {i['gain']:.0f}")
        ax.set_xlabel("epochs (component evaluations / N + residual checks)")
        ax.set_ylabel("natural residual")
        ax.legend()
    fig.suptitle(f"SampleSaddle.iv_regression(N, 50): {now}, load {load0:.1f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out + ".png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rewrite", action="store_true", help="rewrite the .md and .png from the stored .json")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    if args.rewrite:
        name = os.path.join(here, "results", "monotone_finite_sum" + ("_quick" if args.quick else ""))
        stored = json.load(open(name + ".json"))
        write(stored["results"], name, args, *stored["load"], date=stored["date"])
        return
    sizes = [(2_000, 2_000.0), (20_000, 2_000.0)] if args.quick else [(10_000, 10_000.0), (100_000, 4_000.0)]
    load0 = os.getloadavg()[0]
    results = [run(N, budget) for N, budget in sizes]
    load1 = os.getloadavg()[0]
    name = "monotone_finite_sum" + ("_quick" if args.quick else "")
    write(results, os.path.join(here, "results", name), args, load0, load1)
    print(open(os.path.join(here, "results", name + ".md")).read())


if __name__ == "__main__":
    main()
