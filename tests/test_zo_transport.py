"""``zo.minimize(..., transport="seeds")``: replicas on workers that receive only scalars, and
the O(d) memory of per-point evaluation."""

import concurrent.futures
import functools
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

from optcore import OptcoreWarning, _core, zo
from optcore.zo._config import _config
from optcore.zo._transport import TRANSPORT_OPTIONS, SeedCoordinator, replicas


def wavy(x):
    """A smooth nonconvex objective, defined at module level so that worker processes can unpickle it."""
    return float(np.sum((x - 0.3) ** 2) + 0.5 * np.sin(3 * x).sum())


def dies_once(marker, parent, x):
    """``wavy``, but the first call in a worker process after ``marker`` appears kills that process."""
    if os.getpid() != parent:
        try:
            os.remove(marker)  # atomic claim: of two workers that see the marker, one dies
        except FileNotFoundError:
            return wavy(x)
        os._exit(1)
    return wavy(x)


def same(a, b):
    """Bit-identical results: points, values, counts and the best-so-far trace."""
    assert a.x.dtype == b.x.dtype
    assert a.x.tobytes() == b.x.tobytes()
    assert a.x_last.tobytes() == b.x_last.tobytes()
    assert a.history.tobytes() == b.history.tobytes()
    assert (a.fun, a.nit, a.nfev, a.status) == (b.fun, b.nit, b.nfev, b.status)


CASES = [
    ("gaussian", np.float64, None, {}),
    ("gaussian", np.float32, (-0.5, 0.4), {}),
    ("sphere", np.float64, None, {"scheme": "central", "momentum": 0.9}),
    ("cge", np.float64, (-1.0, 0.25), {"n_coords": 3}),
    ("signsgd", np.float32, None, {}),
    ("adamm", np.float64, (-0.5, 0.4), {}),
    ("perturbed", np.float64, None, {}),
    ("rank", np.float64, None, {}),
]


def run(method, dtype, bounds, opts, **kw):
    x0 = np.linspace(-1, 1, 9).astype(dtype)
    lr = 0.05 if method in ("signsgd", "cge") else None
    return zo.minimize(wavy, x0, method=method, bounds=bounds, options=opts, lr=lr, rng=7, maxfev=400, warn=False, **kw)


@pytest.fixture(scope="module")
def processes():
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        yield pool


@pytest.mark.parametrize("method, dtype, bounds, opts", CASES, ids=[c[0] for c in CASES])
def test_seeds_on_threads_are_bit_identical_to_one_process(method, dtype, bounds, opts):
    ref = run(method, dtype, bounds, opts)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        res = run(method, dtype, bounds, opts, executor=pool, transport="seeds", transport_options={"sync_every": 2})
    same(ref, res)
    t = res.transport
    assert t["shares"] == 3 and t["desyncs"] == 0 and t["lost_tasks"] == 0
    # The points transport through the same kind of executor gives the same run too.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        same(ref, run(method, dtype, bounds, opts, executor=pool))


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[5], CASES[7]], ids=lambda c: c[0])
def test_seeds_on_processes_are_bit_identical_and_send_no_vectors(case, processes):
    method, dtype, bounds, opts = case
    ref = run(method, dtype, bounds, opts)
    res = run(method, dtype, bounds, opts, executor=processes, transport="seeds")
    same(ref, res)
    sent = res.transport["bytes_per_iteration"]
    assert len(sent) == res.nit
    # After the first iteration (fun and x0), a message holds scalars only (the window of told
    # values, every sync_every iterations a digest): it does not grow with the run.
    # (A process that missed more than `window` iterations is sent the values it lacks: an
    # occasional larger iteration.)
    steady = sent[10:]
    assert np.median(steady) - steady.min() <= 32


def test_seed_messages_do_not_grow_with_d(processes):
    sizes = {}
    # (d = 2e5 also checks that replicas are built in forked workers: the state's buffers are
    # zero-filled without the parent's thread pool, which a forked child does not have.)
    for d in (10, 200_000):
        res = zo.minimize(wavy, np.zeros(d), q=4, rng=1, maxiter=24, executor=processes, transport="seeds", warn=False)
        sizes[d] = res.transport["bytes_per_iteration"]
    assert sizes[200_000][0] > 8 * 200_000  # x0 travels once
    # The typical message is the same at d = 10 and d = 2e5 (up to the digest's size).
    assert abs(np.median(sizes[10][12:]) - np.median(sizes[200_000][12:])) <= 16


def test_seeds_on_a_dask_cluster_are_bit_identical():
    distributed = pytest.importorskip("distributed")
    cloudpickle = pytest.importorskip("cloudpickle")
    # The workers (and the one restarted below) cannot import this test module: send wavy by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ref = run(*CASES[0])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            res = run(*CASES[0], executor=client.get_executor(), transport="seeds")
            same(ref, res)
            assert res.transport["shares"] == 2 and res.transport["desyncs"] == 0, res.transport
            # A worker killed mid-run: the nanny restarts it, dask resubmits its task, the new
            # process has no replica and is rebuilt from x0 and the log of values.
            pids = list(client.run(os.getpid).values())
            killed = []

            def kill(r):
                if r.nit >= 10 and not killed:
                    os.kill(pids[0], 9)
                    killed.append(r.nit)

            res = run(*CASES[0], executor=client.get_executor(), transport="seeds", callback=kill, check_every=1)
            assert killed
            same(ref, res)


def test_a_killed_worker_process_is_recovered(tmp_path):
    ref = run(*CASES[0])
    marker = tmp_path / "kill"
    fun = functools.partial(dies_once, str(marker), os.getpid())
    started = []

    def arm(r):  # kill a worker after some iterations, once
        if r.nit >= 8 and not started:
            marker.touch()
            started.append(r.nit)

    x0 = np.linspace(-1, 1, 9)
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        with pytest.warns(OptcoreWarning, match="local replica"):
            res = zo.minimize(
                fun, x0, rng=7, maxfev=400, warn=False, executor=pool, transport="seeds", callback=arm, check_every=1
            )
    assert started and not marker.exists()
    same(ref, res)
    # The process pool breaks with its process: the rest of the run is evaluated locally.
    assert res.transport["local_shares"] > 0


def test_replicas_detect_a_desynchronized_worker():
    x = np.linspace(-1, 1, 6)
    cfg = _config("gaussian", x, bounds=None, rng=3, lr=None, mu=None, q=4, xtol=None, nan_as_inf=False, options=None)
    coordinator_state = _core.ZoState(x, cfg)
    reference = _core.ZoState(x, cfg)
    opts = {**TRANSPORT_OPTIONS, "shares": 1}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        coord = SeedCoordinator(wavy, x, cfg, pool, coordinator_state.batch_size, opts)
        for k in range(12):
            if k == 6:
                # Corrupt the worker's replica: the same iteration count, one told value off.
                (key,) = [key for key in replicas() if key[0] == coord.run_id]
                bad = _core.ZoState(x, cfg)
                for j, v in enumerate(coord.log):
                    v = v.copy()
                    v[1] += 1e-6 if j == 3 else 0.0  # one finite difference of iteration 3 off
                    bad.advance(v)
                replicas()[key].state = bad
            v = coord(k, coordinator_state.state_hash() if k % 2 == 0 else None)
            coordinator_state.advance(v)
            X = reference.ask()
            reference.tell(np.array([wavy(p) for p in X]))
        (key,) = [key for key in replicas() if key[0] == coord.run_id]
        assert replicas()[key].state.nit == 11  # rebuilt, and it followed to the last iteration
    assert coord.stats["desyncs"] == 1
    assert coordinator_state.state_hash() == reference.state_hash()
    assert np.array_equal(coordinator_state.x, reference.x)


def test_unpicklable_objectives_and_bad_options(processes):
    lock = threading.Lock()

    def locked(x):  # a closure over a lock: neither pickle nor cloudpickle can send it
        with lock:
            return float(x @ x)

    with pytest.raises(TypeError, match="cannot be pickled"):
        zo.minimize(locked, np.ones(3), executor=processes, transport="seeds", maxiter=2)
    with pytest.raises(ValueError, match="cbo"):
        zo.minimize(wavy, np.ones(3), method="cbo", executor=processes, transport="seeds")
    with pytest.raises(ValueError, match="transport"):
        zo.minimize(wavy, np.ones(3), transport="bytes")
    with pytest.raises(ValueError, match="needs an `executor`"):
        zo.minimize(wavy, np.ones(3), transport="seeds")
    with pytest.raises(ValueError, match="unknown transport_options"):
        zo.minimize(wavy, np.ones(3), workers=2, transport="seeds", transport_options={"k": 1})
    # A thread pool needs no pickling; an exception of fun propagates unchanged.
    with pytest.raises(ZeroDivisionError):
        zo.minimize(lambda x: 1 / 0, np.ones(3), workers=2, transport="seeds", maxiter=2)


def test_fun_exceptions_cross_processes(processes):
    # float() of a 2-vector raises TypeError in the worker; the coordinator re-raises it.
    with pytest.raises(TypeError, match="only"):
        zo.minimize(float, np.zeros(2), executor=processes, transport="seeds", maxiter=2)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc")
def test_per_point_memory_is_o_of_d():
    # In a fresh process: the peak resident memory of a run (Rust's allocations included)
    # and the peak traced by tracemalloc (the arrays handed to fun), in copies of x0.
    script = textwrap.dedent(
        """
        import tracemalloc, numpy as np
        from optcore import zo
        def hwm():  # peak resident memory (getrusage's ru_maxrss survives exec: it could be pytest's)
            with open("/proc/self/status") as fh:
                return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM"))
        d = 500_000
        x0 = np.ones(d, np.float32)
        f = lambda v: float(np.dot(v, v))
        zo.minimize(f, x0[:10], method="gaussian", q=2, maxfev=6, warn=False)
        base = hwm()
        tracemalloc.start()
        res = zo.minimize(f, x0, method="gaussian", q=32, maxfev=100, rng=0, warn=False)
        traced = tracemalloc.get_traced_memory()[1]
        peak = hwm()
        print((peak - base) / x0.nbytes, traced / x0.nbytes, res.nfev)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    rss, traced, nfev = (float(v) for v in out.split())
    assert nfev == 99
    assert traced <= 3.5, traced  # the point handed to fun (the rest is in Rust)
    assert rss <= 12, rss  # was 166 copies (the whole batch, in f64 and float32, and its copies); now about 10


def test_replica_threads_do_not_share_states():
    seen = set()

    def f(x):
        seen.add(threading.get_ident())
        return wavy(x)

    ref = zo.minimize(wavy, np.ones(5), rng=2, maxfev=300, warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = zo.minimize(f, np.ones(5), rng=2, maxfev=300, warn=False, workers=2, transport="seeds")
    same(ref, res)
    assert len(seen) >= 1
