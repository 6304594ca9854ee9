"""The seed transport of :func:`optcore.zo.minimize` (``transport="seeds"``).

Every worker keeps a *replica* of the run's state (a ``ZoState`` built from ``fun``, ``x0`` and
the run's options, which it receives once). An iteration's points are functions of that state
and of counter-based random numbers keyed by ``(seed, iteration, direction)``, so a worker
regenerates its share of the batch itself (:meth:`ZoState.point`), evaluates ``fun`` there
and sends back scalars only. The coordinator (the state in :func:`minimize`) gathers the values
and tells them to its own state; the next messages carry those values, and every replica tells
them to its own state (:meth:`ZoState.advance`: the same Rust update as the coordinator's, so
the replicas stay bit-identical to it). No message carries a d-vector after the first.

Overlap: when the values of iteration ``k`` are in, the coordinator submits the tasks of
iteration ``k + 1`` (they carry those values) *before* its own state applies the update, so the
replicas' update and evaluations run while the coordinator's state updates (which would
otherwise be a serial phase of every iteration). Iterations whose message carries a digest, and
the last one the budget allows, are not submitted ahead; tasks of an iteration the run does not
reach (it stopped early) are cancelled or their answers ignored.

Faults: a replica that is missing (a new or restarted worker process, another thread) or
behind answers ``"need"`` and gets ``x0`` and the log of values to rebuild from; every
``sync_every`` iterations the message carries the digest of the coordinator's state
(:meth:`ZoState.state_hash`) and a replica that drifted answers ``"desync"`` and is rebuilt. A
task lost with its worker is resubmitted; when the executor cannot run it (a broken process
pool), the coordinator evaluates the share itself on a local replica.
"""

from __future__ import annotations

import concurrent.futures
import pickle
import threading
import uuid
import warnings

import numpy as np

from .. import _core
from ..exceptions import OptcoreWarning
from ._objective import scalar

__all__ = ["SeedCoordinator", "replicas"]

#: This process's replicas, keyed by ``(run id, thread id)``: a thread of an executor owns its
#: replica, so threads of one process evaluate in parallel without sharing a state.
_REPLICAS: dict = {}
_LOCK = threading.Lock()
#: Replicas a process keeps; the oldest (of finished runs, normally) are dropped first.
_KEEP = 16

#: Keys of ``transport_options`` and their defaults.
TRANSPORT_OPTIONS = {"sync_every": 10, "shares": None, "window": 8, "retries": 3}


class _Replica:
    """``fun`` and a state that follows the coordinator's."""

    def __init__(self, fun, x0, cfg):
        self.fun = fun
        self.state = _core.ZoState(x0, cfg)


def replicas() -> dict:
    """This process's replicas (for tests and diagnostics)."""
    return _REPLICAS


def _load(init):
    return pickle.loads(init) if isinstance(init, bytes) else init


def _replica(run_id, start: int, k: int, init):
    """The replica of this thread for ``run_id`` at an iteration in ``[start, k]``, built from
    ``init`` if needed (``start == 0``); ``None`` when it cannot be had from this message."""
    key = (run_id, threading.get_ident())
    with _LOCK:
        rep = _REPLICAS.get(key)
    if rep is not None and not start <= rep.state.nit <= k:
        rep = None
    if rep is None:
        if init is None or start != 0:
            return None
        rep = _Replica(*_load(init))
        with _LOCK:
            _REPLICAS[key] = rep
            while len(_REPLICAS) > _KEEP:
                del _REPLICAS[next(iter(_REPLICAS))]
    return rep


def _drop(run_id) -> None:
    with _LOCK:
        _REPLICAS.pop((run_id, threading.get_ident()), None)


def seed_task(msg):
    """A worker's part of one iteration: catch the replica up on the told values, check its
    digest, evaluate ``fun`` at points ``lo:hi`` of the batch. Returns ``("ok", values)``,
    ``("need", nit)`` (the replica is missing or at ``nit``: send the values from there),
    ``("desync", 0)`` (the digest differs: rebuild) or ``("error", exception of fun)``."""
    run_id, k, lo, hi, start, recent, digest, init = msg
    rep = _replica(run_id, start, k, init)
    if rep is None:
        with _LOCK:
            have = _REPLICAS.get((run_id, threading.get_ident()))
        return ("need", have.state.nit if have is not None and have.state.nit <= k else 0)
    try:
        for v in recent[rep.state.nit - start :]:
            # A copy: dask may hand small arrays back misaligned inside its message buffer.
            rep.state.advance(np.array(v, dtype=np.float64))
    except Exception as exc:  # the coordinator never sends values its own state refused
        _drop(run_id)
        return ("desync", f"{type(exc).__name__}: {exc}")
    if digest is not None and rep.state.state_hash() != digest:
        _drop(run_id)
        return ("desync", "the replica's digest differs from the coordinator's")
    out = np.empty(hi - lo)
    try:
        for j, i in enumerate(range(lo, hi)):
            out[j] = scalar(rep.fun(rep.state.point(i)))
    except Exception as exc:
        return ("error", exc)
    return ("ok", out)


def _dumps(obj) -> bytes:
    """``obj`` pickled, by cloudpickle where installed (it pickles lambdas and closures by
    value; ``pickle.loads`` reads its output wherever cloudpickle is installed too)."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _default_shares(executor) -> int:
    n = getattr(executor, "_max_workers", None)
    if n is None:
        client = getattr(executor, "_client", None)  # dask.distributed's ClientExecutor
        try:
            n = sum(client.nthreads().values())
        except Exception:
            n = 2
    return max(1, int(n))


class SeedCoordinator:
    """The callable the core's loop asks for the values of iteration ``nit``
    (``coordinator(nit, digest or None) -> (B,) float64``); see the module docs."""

    def __init__(self, fun, x0: np.ndarray, cfg: dict, executor, batch: int, opts: dict, last: int | None = None):
        self.run_id = uuid.uuid4().hex
        self.executor = executor
        self.batch = batch
        if isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            self.init = (fun, x0, cfg)  # same process: nothing to pickle
        else:
            try:
                self.init = _dumps((fun, x0, cfg))
            except Exception as exc:
                raise TypeError(
                    f"transport='seeds' sends `fun` to the workers once, by pickle, and it cannot be pickled "
                    f"({type(exc).__name__}: {exc}). Define it at module level (a lambda or a local function "
                    "cannot be pickled without cloudpickle), or use a thread pool, or transport='points'."
                ) from None
        self.init_bytes = len(self.init) if isinstance(self.init, bytes) else 0
        shares = opts["shares"] if opts["shares"] is not None else _default_shares(executor)
        shares = min(max(1, shares), batch)
        edges = np.linspace(0, batch, shares + 1).round().astype(int)
        self.ranges = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
        self.window, self.retries = opts["window"], opts["retries"]
        self.log: list[np.ndarray] = []
        self.bytes_sent: list[int] = []
        self.stats = {"desyncs": 0, "catch_ups": 0, "rebuilds": 0, "lost_tasks": 0, "local_shares": 0}
        self.local = None
        self.broken = False
        self.last_desync = None
        self.sync_every = opts["sync_every"]
        #: The last iteration the budget allows (none is submitted ahead past it).
        self.last = last
        #: ``(k, jobs, bytes)``: the tasks of iteration ``k``, submitted ahead.
        self.ahead = None

    def _message(self, k, lo, hi, start, digest, init):
        return (self.run_id, k, lo, hi, start, self.log[start:k], digest, init)

    def _size(self, msg) -> int:
        init = msg[-1]
        n = len(pickle.dumps(msg[:-1] + (None,), protocol=pickle.HIGHEST_PROTOCOL))
        return n + (self.init_bytes if init is not None else 0)

    def _submit(self, msg):
        if self.broken:
            return None
        try:
            return self.executor.submit(seed_task, msg)
        except Exception:  # a broken or shut-down executor
            self.broken = True
            return None

    def _evaluate_locally(self, k: int, lo: int, hi: int) -> np.ndarray:
        if self.local is None or self.local.state.nit > k:
            self.local = _Replica(*_load(self.init))
        for v in self.log[self.local.state.nit : k]:
            self.local.state.advance(v)
        self.stats["local_shares"] += 1
        return np.array([scalar(self.local.fun(self.local.state.point(i))) for i in range(lo, hi)])

    def __call__(self, nit: int, digest) -> np.ndarray:
        k = int(nit)
        if k != len(self.log):
            raise RuntimeError(f"seed transport: asked for iteration {k} with {len(self.log)} logged")
        ahead, self.ahead = self.ahead, None
        if ahead is not None and ahead[0] == k and digest is None:
            jobs, sent = ahead[1], ahead[2]
        else:
            self._cancel(ahead)
            jobs, sent = self._submit_all(k, digest)
        values = np.empty(self.batch)
        warned = False
        while jobs:
            (lo, hi), (fut, tries) = next(iter(jobs.items()))
            del jobs[(lo, hi)]
            answer = None
            if fut is not None:
                try:
                    answer = fut.result()
                except Exception:  # the task was lost with its worker (not an error of fun)
                    self.stats["lost_tasks"] += 1
            if answer is not None and answer[0] == "ok":
                values[lo:hi] = answer[1]
                continue
            if answer is not None and answer[0] == "error":
                raise answer[1]
            if fut is None or tries >= self.retries:
                if not warned:
                    warnings.warn(
                        "transport='seeds': the executor could not run a share of the batch "
                        f"(iteration {k}); the coordinator evaluates it on a local replica (same values).",
                        OptcoreWarning,
                        stacklevel=2,
                    )
                    warned = True
                values[lo:hi] = self._evaluate_locally(k, lo, hi)
                continue
            if answer is None:  # lost: resend as it was, with what rebuilds a replica
                msg = self._message(k, lo, hi, 0, digest, self.init)
            elif answer[0] == "need":
                s = int(answer[1])
                self.stats["rebuilds" if s == 0 else "catch_ups"] += 1
                msg = self._message(k, lo, hi, s, digest, self.init if s == 0 else None)
            else:  # "desync": rebuild from x0 and the log
                self.stats["desyncs"] += 1
                self.last_desync = answer[1]
                msg = self._message(k, lo, hi, 0, digest, self.init)
            sent += self._size(msg)
            jobs[(lo, hi)] = [self._submit(msg), tries + 1]
        self.bytes_sent.append(sent)
        self.log.append(values)
        nxt = k + 1
        if nxt % self.sync_every != 0 and (self.last is None or nxt <= self.last) and not self.broken:
            # Submitted before the coordinator's state applies the update of iteration k.
            self.ahead = (nxt, *self._submit_all(nxt, None))
        return values

    def _submit_all(self, k: int, digest):
        """Submits the shares of iteration ``k``; returns the jobs and the bytes sent."""
        first = k == 0
        start = max(0, k - self.window)
        sent = 0
        jobs = {}
        for lo, hi in self.ranges:
            msg = self._message(k, lo, hi, 0 if first else start, digest, self.init if first else None)
            sent += self._size(msg)
            jobs[(lo, hi)] = [self._submit(msg), 0]
        return jobs, sent

    @staticmethod
    def _cancel(ahead) -> None:
        if ahead is not None:
            for fut, _ in ahead[1].values():
                if fut is not None:
                    fut.cancel()

    def close(self) -> None:
        """Cancels the tasks submitted ahead for an iteration the run did not reach."""
        self._cancel(self.ahead)
        self.ahead = None

    def summary(self) -> dict:
        """Bytes sent (``bytes_per_iteration``: the pickled messages of each iteration, the
        first holding ``fun`` and ``x0``), shares, and the fault counters."""
        return {
            "shares": len(self.ranges),
            "last_desync": self.last_desync,
            "bytes_per_iteration": np.array(self.bytes_sent, dtype=np.int64),
            **self.stats,
        }
