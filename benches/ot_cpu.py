#!/usr/bin/env python
"""Entropic OT on the CPU: optcore vs POT vs OTT-JAX at an equal *measured* marginal error.

    python benches/ot_cpu.py            # full run (sizes 500..4000, three regs, memory table)
    python benches/ot_cpu.py --quick    # smoke run (n = 500, one reg)

Every solver is driven to the same target on ``err = |P 1 - a|_1 + |P^T 1 - b|_1``, measured
here in float64 on the plan each solver returns. optcore gets ``tol=target`` (its tolerance
bounds exactly that quantity); POT and OTT stop on their own criteria, so their stopping
threshold is searched (target, target/10, ...) until the returned plan meets the target.
See benches/README.md for the protocol.
"""

from __future__ import annotations

import os

# JAX reads these at import time, and POT imports JAX when it is installed, so they are set
# before anything else is imported. CPU only; no GPU preallocation (a no-op on a CPU machine,
# set so that a machine with a GPU does not change what is measured).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import argparse
import dataclasses
import datetime
import gc
import hashlib
import json
import math
import platform
import resource
import shlex
import subprocess
import sys
import threading
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy.spatial.distance import cdist

import optcore

HERE = Path(__file__).resolve().parent
DEFAULT_SIZES = (500, 1000, 2000, 4000)
DEFAULT_REGS = (0.05, 0.01, 0.002)
MAXITER = 100_000  # iteration cap handed to every solver (lowered by the time budget)
LONG_RUN_S = 10.0  # a run longer than this is not repeated
MAX_DECADES = 6  # peers' threshold search goes down to target * 10**-MAX_DECADES
CALIB_THR = 1e-300  # a stopping threshold no solver reaches: calibration runs hit their cap
# Worker processes: a fixed mmap threshold stops glibc from raising it dynamically (up to
# 32 MiB), so freed large arrays go back to the OS and RSS follows the live data.
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}


# --------------------------------------------------------------------------- problem


def make_problem(n: int, seed: int):
    """Points uniform in the unit square, squared Euclidean cost scaled to max 1, uniform
    weights. ``cdist`` writes M directly (no (n, m, 2) temporaries)."""
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    M = cdist(x, y, "sqeuclidean")
    M /= M.max()
    a = np.full(n, 1.0 / n)
    b = np.full(n, 1.0 / n)
    return a, b, M


def marginal_error(P, a, b) -> float:
    """``|P 1 - a|_1 + |P^T 1 - b|_1`` accumulated in float64 (NaN if P has NaN)."""
    P = np.asarray(P)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    rows = P.sum(axis=1, dtype=np.float64)
    cols = P.sum(axis=0, dtype=np.float64)
    return float(np.abs(rows - a).sum() + np.abs(cols - b).sum())


# --------------------------------------------------------------------------- solvers
#
# A solver turns float64 inputs into its own (setup), may compile for an iteration cap
# (prepare, returns the compile seconds), and solves with a stopping threshold and an
# iteration cap (solve, returns the plan, the iteration count and a note). Only `solve`
# is timed.


class OptcoreSolver:
    search = False  # tol=target bounds the measured error: no threshold search
    calib_iters = (2, 6)
    peer = False

    def __init__(self, method: str, dtype):
        self.method = method
        self.dtype = np.dtype(dtype)
        bits = "f32" if self.dtype == np.float32 else "f64"
        self.key = f"optcore-{method}-{bits}"
        self.label = f"optcore {method} {bits}"

    def setup(self, a, b, M, reg):
        t = self.dtype
        return a.astype(t), b.astype(t), M.astype(t, copy=False), reg

    def prepare(self, inputs, cap) -> float:
        return 0.0

    def solve(self, inputs, thr, cap):
        a, b, M, reg = inputs
        res = optcore.ot.sinkhorn(a, b, M, reg, method=self.method, tol=thr, maxiter=cap, warn=False)
        return res.plan, res.nit, "" if res.status == 0 else f"status {res.status}"


class PotSolver:
    search = True
    calib_iters = (2, 6)
    peer = True

    def __init__(self, method: str):
        self.method = method
        self.key = f"pot-{method}"
        self.label = f"POT {method}"

    def setup(self, a, b, M, reg):
        import ot

        # Import POT (which imports JAX) and let it pick its backend here, outside the timed
        # and memory-measured solve: the first backend lookup initialises JAX's CPU client.
        ot.backend.get_backend(a, b, M)
        self._sinkhorn = ot.sinkhorn
        return a, b, M, reg

    def prepare(self, inputs, cap) -> float:
        return 0.0

    def solve(self, inputs, thr, cap):
        a, b, M, reg = inputs
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            P, log = self._sinkhorn(a, b, M, reg, method=self.method, stopThr=thr, numItermax=cap, log=True, warn=False)
        # POT's own warnings (e.g. "numerical errors at iteration k") become the note
        note = "; ".join(sorted({str(w.message).replace("Warning: ", "") for w in caught}))
        return P, log["niter"] + 1, note  # log["niter"] is the 0-based index of the last iteration


class OttSolver:
    """OTT-JAX Sinkhorn (log-sum-exp mode, default options) in float64 on the CPU, jitted.

    ``reg`` and the threshold are traced arguments, so one compilation per (n, cap) serves
    every reg and every threshold of the search; compile time is reported separately and
    never included in solve times.
    """

    search = True
    calib_iters = (10, 30)  # OTT checks convergence every inner_iterations=10 iterations
    peer = True
    key = "ott-sinkhorn"
    label = "OTT Sinkhorn"

    def __init__(self):
        self._compiled = {}

    @staticmethod
    def _jax():
        import jax

        jax.config.update("jax_enable_x64", True)
        return jax

    def setup(self, a, b, M, reg):
        jnp = self._jax().numpy
        return jnp.asarray(a), jnp.asarray(b), jnp.asarray(M), reg

    def _solve_fn(self, cap):
        from ott.geometry import geometry
        from ott.problems.linear import linear_problem
        from ott.solvers.linear import sinkhorn

        def solve(a, b, M, reg, thr):
            geom = geometry.Geometry(cost_matrix=M, epsilon=reg)
            out = sinkhorn.Sinkhorn(threshold=thr, max_iterations=cap)(linear_problem.LinearProblem(geom, a, b))
            return out.matrix, out.n_iters

        return solve

    def prepare(self, inputs, cap) -> float:
        a, b, M, reg = inputs
        key = (M.shape, cap)
        if key in self._compiled:
            return 0.0
        t0 = time.perf_counter()
        self._compiled[key] = self._jax().jit(self._solve_fn(cap)).lower(a, b, M, reg, 1e-6).compile()
        return time.perf_counter() - t0

    def solve(self, inputs, thr, cap):
        a, b, M, reg = inputs
        plan, nit = self._jax().block_until_ready(self._compiled[(M.shape, cap)](a, b, M, reg, thr))
        return plan, nit, ""

    @staticmethod
    def round_cap(cap: int) -> int:
        return max(10, cap // 10 * 10)


def make_solvers():
    return [
        OptcoreSolver("log", np.float64),
        OptcoreSolver("eps_scaling", np.float64),
        OptcoreSolver("scaling", np.float64),
        OptcoreSolver("log", np.float32),
        PotSolver("sinkhorn"),
        PotSolver("sinkhorn_log"),
        OttSolver(),
    ]


def solver_by_key(key: str):
    return next(s for s in make_solvers() if s.key == key)


# --------------------------------------------------------------------------- timing


@dataclasses.dataclass
class Outcome:
    solver: str
    n: int
    reg: float
    status: str  # "ok" or a key of STATUS_TEXT
    time: float | None = None  # best solve time when status == "ok" (s)
    runs: int = 0
    nit: int | None = None  # iterations, measured error and threshold of the last run
    err: float | None = None
    thr: float | None = None
    cap: int | None = None
    compile_s: float = 0.0
    note: str = ""
    trials: list = dataclasses.field(default_factory=list)  # (thr, seconds, nit, err) per search step


def timed_solve(solver, inputs, thr, cap):
    gc.collect()
    t0 = time.perf_counter()
    plan, nit, note = solver.solve(inputs, thr, cap)
    dt = time.perf_counter() - t0
    return plan, int(nit), note, dt


def calibrate(solver, inputs):
    """Seconds per iteration and fixed overhead (setup, plan assembly) from two short runs."""
    (k1, k2), times = solver.calib_iters, []
    for k in (k1, k2):
        solver.prepare(inputs, k)
        plan, _, _, dt = timed_solve(solver, inputs, CALIB_THR, k)
        del plan
        times.append(dt)
    per_iter = (times[1] - times[0]) / (k2 - k1)
    if per_iter <= 0:  # timing noise: fall back to the plain average
        per_iter = times[1] / k2
    return per_iter, max(times[0] - k1 * per_iter, 0.0)


def run_config(solver, a, b, M, reg, calibs: dict, args) -> Outcome:
    """Time one solver on one problem (calibrating it first on a new size); an exception
    from the solver is reported in the outcome, not raised."""
    out = Outcome(solver.key, M.shape[0], reg, status="not reached")
    try:
        key = (solver.key, out.n)
        if key not in calibs:
            calibs[key] = calibrate(solver, solver.setup(a, b, M, reg))
        search(solver, solver.setup(a, b, M, reg), calibs[key], out, args)
    except Exception as e:
        out.status, out.time, out.runs = "error", None, 0
        out.note = "; ".join(filter(None, [out.note, f"{type(e).__name__}: {e}"[:200]]))
    return out


def search(solver, inputs, calib, out: Outcome, args):
    """Threshold search (peers) within the time budget, then best of `repeat` runs of the
    configuration that reached the target; fills `out`."""
    a64, b64 = np.asarray(inputs[0], np.float64), np.asarray(inputs[1], np.float64)
    per_iter, overhead = calib
    cap = min(MAXITER, max(solver.calib_iters[1], int((args.budget - overhead) / per_iter)))
    if hasattr(solver, "round_cap"):
        cap = solver.round_cap(cap)
    out.cap = cap
    out.compile_s = solver.prepare(inputs, cap)

    thresholds = [args.tol * 10.0**-k for k in range(MAX_DECADES + 1)] if solver.search else [args.tol]
    start = time.perf_counter()
    for thr in thresholds:
        if out.trials and time.perf_counter() - start + 1.2 * out.trials[-1][1] > args.budget:
            out.status = "budget"  # the next (longer) trial would not fit the budget
            break
        plan, nit, note, dt = timed_solve(solver, inputs, thr, cap)
        err = marginal_error(plan, a64, b64)
        del plan
        out.trials.append((thr, dt, nit, err))
        out.nit, out.err, out.thr = nit, err, thr
        if not note and not solver.search and err > args.tol:
            note = "solver reported convergence"  # its tol should bound this error
        if note and note not in out.note:
            out.note = "; ".join(filter(None, [out.note, note]))
        if err <= args.tol:
            out.status, out.time, out.runs = "ok", dt, 1
            break
        if not math.isfinite(err):
            out.status = "nan"
            break
        if nit >= cap:
            out.status = "budget" if cap < MAXITER else "iteration cap"
            break
        # Otherwise try the next threshold, even when this one gave the same run: a peer that
        # checks every 10 iterations can stop at the same check for two thresholds.

    if out.status == "ok" and out.time < LONG_RUN_S:
        for _ in range(args.repeat - 1):
            plan, _, _, dt = timed_solve(solver, inputs, out.thr, cap)
            del plan
            out.time = min(out.time, dt)
            out.runs += 1


def exp_floor(M, reg, bits: int, repeat: int) -> float:
    """Milliseconds per pass of optcore's bare exp loop over M (best of `repeat`)."""
    fn = optcore._core.exp_floor_f64 if bits == 64 else optcore._core.exp_floor_f32
    fn(M, reg, 1)  # warm-up (thread pool, page faults)
    t0 = time.perf_counter()
    fn(M, reg, 1)
    reps = max(3, math.ceil(0.3 / max(time.perf_counter() - t0, 1e-6)))  # ~0.3 s per sample
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(M, reg, reps)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best * 1e3


# --------------------------------------------------------------------------- memory


def rss_status() -> dict:
    """VmRSS and VmHWM (peak RSS) of this process, in bytes (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value, _unit = line.split()
                out[key[:-1]] = int(value) * 1024
    return out


def reset_peak_rss():
    """Start a fresh peak-RSS window. Returns (baseline bytes, how the peak will be read)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux >= 4.0: resets VmHWM to the current RSS
        return rss_status()["VmRSS"], "VmHWM"
    except OSError:
        # No reset possible: the lifetime peak (ru_maxrss, KiB on Linux) after the inputs
        # were built is the baseline; the increase then is a lower bound.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "ru_maxrss"


def memory_worker(spec: dict) -> dict:
    """Runs in a fresh process: build the inputs, compile (OTT), then record the peak RSS
    increase of one solve over that baseline."""
    solver = solver_by_key(spec["solver"])
    a, b, M = make_problem(spec["n"], spec["seed"])
    inputs = solver.setup(a, b, M, spec["reg"])
    del a, b, M  # only the solver's own copies of the inputs remain
    solver.prepare(inputs, spec["cap"])
    gc.collect()
    baseline, how = reset_peak_rss()
    plan, nit, _note, dt = timed_solve(solver, inputs, spec["thr"], spec["cap"])
    peak = rss_status()["VmHWM"] if how == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "peak_increase": peak - baseline,
        "baseline": baseline,
        "how": how,
        "nit": int(nit),
        "err": marginal_error(plan, inputs[0], inputs[1]),
        "time": dt,
        "core_hash": core_hash(),
    }


def run_memory(solver, n, reg, outcome: Outcome | None, args) -> dict:
    """Peak-memory run of one solver in a subprocess running this script with --worker.
    Uses the configuration that reached the target; a solver that did not reach it runs the
    short calibration length instead (peak memory is reached in the first iteration)."""
    if outcome is not None and outcome.status == "ok":
        thr, cap, kind = outcome.thr, outcome.cap, "converged"
    else:
        thr, cap, kind = CALIB_THR, solver.calib_iters[1], f"{solver.calib_iters[1]} it. only"
    spec = dict(solver=solver.key, n=n, reg=reg, thr=thr, cap=cap, seed=args.seed)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, **WORKER_ENV},
        timeout=2 * args.budget + 300,
    )
    if proc.returncode != 0:
        return dict(solver=solver.key, n=n, reg=reg, kind=kind, error=proc.stderr.strip().splitlines()[-1:])
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return dict(solver=solver.key, n=n, reg=reg, kind=kind, **res)


# --------------------------------------------------------------------------- machine info


class ForeignLoad:
    """Samples, in a background thread, the share of all CPUs used by *other* processes
    (busy time from /proc/stat minus this process's own CPU time), to flag distorted timings."""

    def __init__(self, period: float = 5.0):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)

    @staticmethod
    def _snapshot():
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]  # user .. steal
        own = os.times()
        return sum(ticks), sum(ticks) - ticks[3] - ticks[4], (own.user + own.system) * os.sysconf("SC_CLK_TCK")

    def _run(self, period):
        prev = self._snapshot()
        while not self._stop.wait(period):
            cur = self._snapshot()
            if cur[0] > prev[0]:
                self.samples.append(max(0.0, (cur[1] - prev[1] - (cur[2] - prev[2])) / (cur[0] - prev[0])))
            prev = cur

    def __enter__(self):
        try:
            self._snapshot()
        except OSError:  # not Linux: no sampling
            return self
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def core_hash() -> str:
    """Short hash of the loaded optcore extension (to notice a rebuild during the run)."""
    return hashlib.sha256(Path(optcore._core.__file__).read_bytes()).hexdigest()[:12]


def library_versions(dists) -> dict:
    """Installed versions of the distributions ``dists`` ("not installed" when absent)."""
    versions = {}
    for dist in dists:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def machine_info() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            ram = int(next(ln for ln in f if ln.startswith("MemTotal")).split()[1]) * 1024
    except (OSError, StopIteration):
        ram = 0
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # the layout of show_config is not a stable API
        blas = "unknown"
    try:
        git = (
            subprocess.run(
                ["git", "-C", str(HERE), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        git = "unknown"
    versions = library_versions(("optcore", "numpy", "scipy", "POT", "jax", "jaxlib", "ott-jax"))
    return dict(
        cpu=cpu,
        cores=os.cpu_count(),
        ram_gib=ram / 2**30,
        python=platform.python_version(),
        blas=blas,
        versions=versions,
        simd=optcore._core.simd_level(),
        core_hash=core_hash(),
        git=git,
        load_start=os.getloadavg(),
        date=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )


# --------------------------------------------------------------------------- report


def fmt_s(t) -> str:
    if t is None:
        return "–"
    return f"{t:.3g}" if t < 100 else f"{t:.0f}"


def fmt_e(x) -> str:
    return "–" if x is None else ("NaN" if not math.isfinite(x) else f"{x:.1e}")


STATUS_TEXT = {
    "budget": "skipped (budget)",
    "not reached": "not reached",
    "nan": "failed (NaN)",
    "iteration cap": "not reached (iteration cap)",
    "error": "failed (exception)",
}


def cell_time(o: Outcome) -> str:
    return fmt_s(o.time) if o.status == "ok" else f"**{STATUS_TEXT[o.status]}**"


def machine_lines(info, end_info) -> list[str]:
    """The CPU, load and foreign-load bullets of a report's Machine section (shared with ot_sns.py)."""
    L = [
        f"- CPU: {info['cpu']}, {info['cores']} logical cores, {info['ram_gib']:.1f} GiB RAM; "
        f"load average (1/5/15 min) at start {'/'.join(f'{x:.2f}' for x in info['load_start'])}, "
        f"at end {'/'.join(f'{x:.2f}' for x in end_info['load_end'])}"
    ]
    foreign = end_info["foreign"]
    if foreign:
        mean, peak = sum(foreign) / len(foreign), max(foreign)
        flag = "**" if mean > 0.05 else ""
        L.append(
            f"- {flag}CPU used by other processes during the timing runs: mean {mean:.0%}, max {peak:.0%} "
            f"of all cores (5 s samples){flag}" + (" — timings are distorted" if flag else "")
        )
    return L


def report(args, info, outcomes, floors, memory, elapsed, end_info) -> str:
    solvers = make_solvers()
    labels = {s.key: s.label for s in solvers}
    by = {(o.n, o.reg, o.solver): o for o in outcomes}
    L = []
    L.append("# optcore Sinkhorn CPU benchmark\n")
    command = shlex.join(["python", "benches/ot_cpu.py", *sys.argv[1:]])
    L.append(f"`{command}` — {info['date']}, total runtime {elapsed / 60:.1f} min.\n")
    v = info["versions"]
    L.append("## Machine\n")
    L += machine_lines(info, end_info)
    L.append(
        f"- Python {info['python']}, numpy {v['numpy']} (BLAS: {info['blas']}), scipy {v['scipy']}, "
        f"POT {v['POT']}, jax/jaxlib {v['jax']}/{v['jaxlib']}, ott-jax {v['ott-jax']}"
    )
    L.append(
        f"- optcore {v['optcore']} (SIMD {info['simd']}, extension sha256 {info['core_hash']}, repo `{info['git']}`)"
    )
    if end_info["core_hash"] != info["core_hash"] or end_info["worker_hashes"] - {info["core_hash"]}:
        L.append(
            "- **The optcore extension was rebuilt during the run**: timings used the build loaded "
            f"at start ({info['core_hash']}); memory workers loaded "
            f"{', '.join(sorted(end_info['worker_hashes']))}."
        )
    L.append(
        f"- Threads: every library uses its defaults on all {info['cores']} cores (optcore "
        "`workers=None`, OpenBLAS, XLA's CPU pool). JAX: `JAX_PLATFORMS=cpu`, "
        "`XLA_PYTHON_CLIENT_PREALLOCATE=false` (GPU-only, set so a GPU machine measures the same), "
        "`jax_enable_x64`; XLA flags left at their defaults.\n"
    )

    L.append("## Protocol\n")
    L.append(
        f"- Problems: n = m points uniform in the unit square (seed {args.seed}), squared Euclidean "
        "cost divided by its max, uniform weights; identical inputs for every solver."
    )
    L.append(
        f"- Target: L1 marginal error `|P 1 - a|_1 + |P^T 1 - b|_1 <= {args.tol:g}`, measured by this "
        "script in float64 on each returned plan. optcore: `tol=target`. POT (stopThr, a 2-norm checked "
        "every 10 iterations) and OTT (threshold on one marginal's 1-norm, every 10 iterations): "
        "threshold searched as target, target/10, ... until the measured error meets the target; the "
        "time is that of the configuration that met it."
    )
    L.append(
        f"- Time: `time.perf_counter` around the solve call (plan included), best of {args.repeat} "
        f"(one run when over {LONG_RUN_S:g} s). OTT is jitted with `reg` and the threshold as traced "
        "arguments; its compile time is excluded and listed separately."
    )
    L.append(
        f"- Budget: {args.budget:g} s of threshold search per solver and problem; the iteration cap is "
        f"min({MAXITER}, budget / seconds per iteration) from two short calibration runs per solver "
        "and size. A solver that cannot finish is reported as skipped, not timed.\n"
    )

    L.append(f"## Summary: seconds to reach err <= {args.tol:g}\n")
    L.append(
        "Speedup = fastest peer that reached the target / optcore log f64. f64/f32 = optcore log "
        "f64 time / optcore log f32 time.\n"
    )
    L.append("| n | reg | optcore log f64 | optcore log f32 | f64/f32 | fastest peer | peer time | speedup |")
    L.append("|---:|---:|---:|---:|---:|---|---:|---:|")
    for n in args.sizes:
        for reg in args.regs:
            o64, o32 = by[(n, reg, "optcore-log-f64")], by[(n, reg, "optcore-log-f32")]
            peers = [by[(n, reg, s.key)] for s in solvers if s.peer]
            done = [p for p in peers if p.status == "ok"]
            best = min(done, key=lambda p: p.time) if done else None
            ratio32 = f"{o64.time / o32.time:.2f}" if o64.status == o32.status == "ok" else "–"
            speed = f"**{best.time / o64.time:.1f}×**" if best and o64.status == "ok" else "–"
            L.append(
                f"| {n} | {reg:g} | {cell_time(o64)} | {cell_time(o32)} | {ratio32} | "
                f"{labels[best.solver] if best else 'none reached the target'} | "
                f"{fmt_s(best.time) if best else '–'} | {speed} |"
            )

    L.append("\n## All runs\n")
    L.append(
        "err: measured on the returned plan. thr: the stopping threshold that was passed "
        "(optcore `tol`, POT `stopThr`, OTT `threshold`). Search: measured error per threshold "
        "tried before the one used.\n"
    )
    L.append("| n | reg | solver | time (s) | iters | ms/iter | err | thr | runs | notes |")
    L.append("|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for n in args.sizes:
        for reg in args.regs:
            for s in solvers:
                o = by[(n, reg, s.key)]
                ms = f"{o.time / o.nit * 1e3:.3g}" if o.status == "ok" and o.nit else "–"
                notes = []
                if o.status != "ok" and o.trials:
                    notes.append(f"last try: {fmt_s(o.trials[-1][1])} s, {o.nit} it., cap {o.cap}")
                if len(o.trials) > 1:
                    notes.append("search: " + ", ".join(f"{t[0]:.0e}→{fmt_e(t[3])}" for t in o.trials[:-1]))
                if o.compile_s:
                    notes.append(f"compile {o.compile_s:.1f} s")
                if o.note:
                    notes.append(o.note)
                L.append(
                    f"| {n} | {reg:g} | {s.label} | {cell_time(o)} | {o.nit if o.nit is not None else '–'} | "
                    f"{ms} | {fmt_e(o.err)} | {fmt_e(o.thr)} | {o.runs} | {'; '.join(notes)} |"
                )

    L.append("\n## Per-iteration floor\n")
    L.append(
        "`optcore._core.exp_floor_*(M, reg, reps)`: one multi-threaded pass of exp over every entry "
        "of M, the least work of a log-domain iteration, in ms per pass, next to optcore log's "
        "time per iteration (solve time / nit, including setup and plan assembly). A ratio below 1 "
        "means an iteration costs less than one exp per entry of M.\n"
    )
    L.append(
        "| n | reg | log f64 ms/iter | floor f64 ms/pass | iter/floor | log f32 ms/iter | "
        "floor f32 ms/pass | iter/floor |"
    )
    L.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        for reg in args.regs:
            cells = []
            for bits in (64, 32):
                o, fl = by[(n, reg, f"optcore-log-f{bits}")], floors[(n, reg, bits)]
                per = o.time / o.nit * 1e3 if o.status == "ok" and o.nit else None
                cells += [f"{per:.3g}" if per else "–", f"{fl:.3g}", f"{per / fl:.2f}" if per else "–"]
            L.append(f"| {n} | {reg:g} | " + " | ".join(cells) + " |")

    if memory:
        L.append("\n## Peak memory\n")
        L.append(
            "Each solve runs once in a fresh process (`--worker`) that builds its inputs (and, for OTT, "
            "compiles), resets the peak-RSS counter, solves, and reports peak RSS minus the RSS before "
            "the solve: memory beyond the inputs, the returned plan included. Unit: an M-sized float64 "
            "array, n·m·8 bytes (a float32 plan is 0.5). Workers run with "
            f"`{' '.join(f'{k}={v}' for k, v in WORKER_ENV.items())}` so freed arrays leave RSS.\n"
        )
        L.append("| n | reg | solver | peak increase (MiB) | × M (n·m·8 B) | run | solve (s) | err |")
        L.append("|---:|---:|---|---:|---:|---|---:|---:|")
        for r in memory:
            unit = r["n"] * r["n"] * 8
            if "error" in r:
                L.append(
                    f"| {r['n']} | {r['reg']:g} | {labels[r['solver']]} | **worker failed** | – | "
                    f"{r['kind']} | – | {' '.join(r['error'])} |"
                )
                continue
            how = "" if r["how"] == "VmHWM" else " (ru_maxrss: lower bound)"
            L.append(
                f"| {r['n']} | {r['reg']:g} | {labels[r['solver']]} | {r['peak_increase'] / 2**20:.0f} | "
                f"{r['peak_increase'] / unit:.2f} | {r['kind']}{how} | {fmt_s(r['time'])} | {fmt_e(r['err'])} |"
            )
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    floats = lambda s: tuple(float(x) for x in s.split(","))  # noqa: E731
    ints = lambda s: tuple(int(x) for x in s.split(","))  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=ints, default=DEFAULT_SIZES, help="n = m values, comma separated")
    p.add_argument("--regs", type=floats, default=DEFAULT_REGS, help="reg values, comma separated")
    p.add_argument("--tol", type=float, default=1e-6, help="L1 marginal error target (default 1e-6)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per configuration, best kept")
    p.add_argument("--quick", action="store_true", help="smoke run: n = 500, reg = 0.01")
    p.add_argument(
        "--out",
        type=Path,
        help="Markdown output (default benches/results/ot_cpu.md, "
        "ot_cpu_quick.md with --quick); raw results go next to it as .json",
    )
    p.add_argument(
        "--budget", type=float, default=120.0, help="seconds of threshold search per solver and problem (default 120)"
    )
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure peak memory in subprocesses (default on)",
    )
    p.add_argument(
        "--memory-sizes", type=ints, help="sizes for the memory table (default: those >= 2000, else the largest)"
    )
    p.add_argument(
        "--memory-reg",
        type=float,
        help="reg of the memory runs (default: the largest of --regs, the fastest to converge)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.regs = (500,), (0.01,)
    if args.out is None:
        args.out = HERE / "results" / ("ot_cpu_quick.md" if args.quick else "ot_cpu.md")
    if args.memory_sizes is None:
        args.memory_sizes = tuple(n for n in args.sizes if n >= 2000) or (max(args.sizes),)
    if args.memory_reg is None:
        args.memory_reg = max(args.regs)
    if not set(args.memory_sizes) <= set(args.sizes) or args.memory_reg not in args.regs:
        p.error("--memory-sizes must be among --sizes and --memory-reg among --regs")
    return args


def log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(memory_worker(json.loads(args.worker))))
        return

    t_start = time.perf_counter()
    info = machine_info()
    solvers = make_solvers()
    outcomes, floors, calibs = [], {}, {}
    with ForeignLoad() as foreign:
        for n in args.sizes:
            a, b, M = make_problem(n, args.seed)
            M32 = M.astype(np.float32)
            for reg in args.regs:
                for bits, mat in ((64, M), (32, M32)):
                    floors[(n, reg, bits)] = exp_floor(mat, reg, bits, args.repeat)
                for s in solvers:
                    o = run_config(s, a, b, M, reg, calibs, args)
                    outcomes.append(o)
                    log(
                        f"n={n} reg={reg:g} {s.label:24s} {o.status:12s} time={fmt_s(o.time)} nit={o.nit} "
                        f"err={fmt_e(o.err)} thr={fmt_e(o.thr)} [{time.perf_counter() - t_start:.0f} s]"
                    )
            del a, b, M, M32

    memory = []
    if args.memory:
        by = {(o.n, o.reg, o.solver): o for o in outcomes}
        for n in args.memory_sizes:
            for s in solvers:
                r = run_memory(s, n, args.memory_reg, by.get((n, args.memory_reg, s.key)), args)
                memory.append(r)
                log(
                    f"memory n={n} {s.label:24s} "
                    + (
                        f"failed: {r['error']}"
                        if "error" in r
                        else f"+{r['peak_increase'] / 2**20:.0f} MiB ({r['kind']})"
                    )
                )

    end_info = dict(
        load_end=os.getloadavg(),
        core_hash=core_hash(),
        foreign=foreign.samples,
        worker_hashes={r["core_hash"] for r in memory if "core_hash" in r},
    )
    text = report(args, info, outcomes, floors, memory, time.perf_counter() - t_start, end_info)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    raw = dict(
        args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        machine=info,
        outcomes=[dataclasses.asdict(o) for o in outcomes],
        floors_ms=[dict(n=n, reg=reg, bits=bits, ms=ms) for (n, reg, bits), ms in floors.items()],
        memory=memory,
        foreign_cpu_samples=foreign.samples,
    )
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str))
    log(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    from plots import plot_ot_cpu  # benches/plots.py: the figure beside the table

    png = plot_ot_cpu(args.out.with_suffix(".json"))
    if png is not None:
        log(f"wrote {png}")


if __name__ == "__main__":
    main()
