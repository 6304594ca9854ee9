"""``transport="seeds"`` submits iteration ``k + 1`` before the coordinator's own update of
iteration ``k`` (issue 26): the run stays bit-identical, including runs that stop early, and
tasks submitted for an iteration the run never reaches are dropped."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest

from optcore import zo
from optcore.zo import _transport


def wavy(x):
    return float(np.sum((x - 0.3) ** 2) + 0.5 * np.sin(3 * x).sum())


def same(a, b):
    assert a.x.tobytes() == b.x.tobytes() and a.x_last.tobytes() == b.x_last.tobytes()
    assert a.history.tobytes() == b.history.tobytes()
    assert (a.fun, a.nit, a.nfev, a.status) == (b.fun, b.nit, b.nfev, b.status)


@pytest.fixture
def submissions(monkeypatch):
    """The iterations each coordinator submitted tasks for, and whether ahead of its update."""
    log = []
    real = _transport.SeedCoordinator._submit_all

    def spy(self, k, digest):
        log.append((k, len(self.log)))  # len(log) == k: submitted ahead, right after k - 1's values
        return real(self, k, digest)

    monkeypatch.setattr(_transport.SeedCoordinator, "_submit_all", spy)
    return log


@pytest.mark.parametrize("stop", [{"maxiter": 23}, {"f_target": -3.0}, {"maxfev": 10 * 17 + 5}])
def test_overlapped_runs_are_bit_identical_and_stop_where_one_process_stops(stop, submissions):
    x0 = np.linspace(-1, 1, 9)
    kw = dict(method="gaussian", rng=3, warn=False, **stop)
    ref = zo.minimize(wavy, x0, **kw)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        res = zo.minimize(wavy, x0, executor=pool, transport="seeds", transport_options={"sync_every": 5}, **kw)
    same(ref, res)
    assert res.nit >= 3
    # Every iteration but those whose message carries a digest (k % 5 == 0) was submitted ahead,
    # and nothing past the budget's last iteration.
    ahead = {k for k, logged in submissions if logged == k and k % 5 != 0}
    assert ahead >= {k for k in range(1, res.nit) if k % 5 != 0}
    batch = res.nfev // res.nit
    last = min(stop.get("maxiter", 10**9), stop.get("maxfev", 10**9) // batch) - 1
    assert max(k for k, _ in submissions) <= last
    assert len(res.transport["bytes_per_iteration"]) == res.nit


def test_the_callback_stopping_the_run_drops_the_tasks_submitted_ahead():
    x0 = np.linspace(-1, 1, 9)

    def stop_at_4(r):
        if r.nit >= 4:
            raise StopIteration

    ref = zo.minimize(wavy, x0, rng=1, callback=stop_at_4, check_every=1, warn=False)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        res = zo.minimize(
            wavy, x0, rng=1, callback=stop_at_4, check_every=1, warn=False, executor=pool, transport="seeds"
        )
    same(ref, res)
    assert res.status == 99 and res.nit == 4
