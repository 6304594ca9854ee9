"""What an OT result says about itself is true, re-measured on what is returned (issue 17).

A Hypothesis property over :func:`optcore.testing.ot_problems` (every CPU method, float32 and
float64, extreme weights) checked by :func:`optcore.testing.check_result`, and one regression
test per defect of the issue that belongs to ``optcore.ot``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings

import optcore
from optcore import testing as ot_testing

MAXITER = 2000


@settings(max_examples=150)
@given(ot_testing.ot_problems(methods=("log", "eps_scaling", "scaling", "sns")))
def test_results_hold_their_claims(problem):
    res = problem.solve(maxiter=MAXITER)
    assert ot_testing.check_result(res, problem, maxiter=MAXITER) == []


# --- 1. status decided on the measured error ------------------------------------------------


@pytest.mark.parametrize("method", ["log", "sns", "eps_scaling", "scaling"])
def test_tiny_weight_converges_without_running_to_maxiter(method):
    a, b, M = [1.0, 1e-300], [0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]]
    res = optcore.ot.sinkhorn(a, b, M, reg=0.1, tol=1e-6, method=method)
    problem = ot_testing.OTProblem(np.array(a), np.array(b), np.array(M), 0.1, method)
    assert ot_testing.check_result(res, problem, tol=1e-6, maxiter=10_000) == []
    assert res.status == 0 and res.success and res.nit < 100


def test_float32_zero_error_is_status_0():
    a = np.float32([1, 0])
    M = np.float32([[-2.7316568, 0], [0, 0]])
    res = optcore.ot.sinkhorn(a, a, M, reg=0.002731656789779663, tol=1e-12)
    assert res.marginal_error <= 1e-12 and res.status == 0 and res.success


@pytest.mark.parametrize("method", ["log", "sns", "eps_scaling", "scaling"])
def test_device_driver_decides_the_status_on_the_returned_plan(method):
    from optcore.ot._device import sinkhorn_emulated

    a, b, M = np.array([1.0, 1e-300]), np.array([0.5, 0.5]), np.array([[0.0, 1.0], [1.0, 0.0]])
    res = sinkhorn_emulated(a, b, M, reg=0.1, tol=1e-6, method=method, maxiter=500, warn=False)
    problem = ot_testing.OTProblem(a, b, M, 0.1, method)
    assert ot_testing.check_result(res, problem, tol=1e-6, maxiter=500) == []
    assert res.status == 0
    a32, M32 = np.float32([1, 0]), np.float32([[-2.7316568, 0], [0, 0]])
    res = sinkhorn_emulated(a32, a32, M32, reg=0.002731656789779663, tol=1e-12, warn=False)
    assert res.status == 0 and res.plan.dtype == np.float32


def test_float32_reported_error_is_measured_on_the_returned_plan():
    rng = np.random.default_rng(3)
    a = rng.random(40).astype(np.float32)
    b = rng.random(30).astype(np.float32)
    a /= a.sum()
    b *= np.float32(a.sum() / b.sum())
    M = rng.random((40, 30)).astype(np.float32)
    res = optcore.ot.sinkhorn(a, b, M, reg=0.05, warn=False)
    measured = ot_testing.marginal_error(res.plan, a, ot_testing._ot_target(a, b, np.float32))
    assert res.marginal_error == pytest.approx(measured, rel=1e-12, abs=0)
    assert res.success == (measured <= res.tol)


# --- 2. every path reaches the observer ------------------------------------------------------


def test_reg_1e_20_stops_at_once_with_status_4():
    calls = []
    a, b = np.full(6, 1 / 6), np.full(5, 1 / 5)
    M = np.random.default_rng(0).random((6, 5))
    res = optcore.ot.sinkhorn(a, b, M, reg=1e-20, callback=lambda r: calls.append(r.nit), maxiter=10**9, warn=False)
    assert res.status == 4 and res.nit == 0 and "reg" in res.message
    assert not np.any(res.f == np.inf) and not np.any(res.g == np.inf)
    assert np.isfinite(res.fun) and np.all(np.isfinite(res.plan))
    problem = ot_testing.OTProblem(a, b, M, 1e-20)
    assert ot_testing.check_result(res, problem) == []


def _recovering():
    """A reg just above the cost's rounding: every iteration takes the exact recovery path."""
    a, b = np.full(6, 1 / 6), np.full(5, 1 / 5)
    return a, b, np.random.default_rng(0).random((6, 5)), 1e-14


def test_recovery_iterations_reach_the_callback_and_count():
    a, b, M, reg = _recovering()
    calls = []
    res = optcore.ot.sinkhorn(a, b, M, reg=reg, callback=lambda r: calls.append(r.nit), maxiter=300, warn=False)
    assert res.nit <= 300
    assert res.status == 0 or len(calls) > 0
    assert not np.any(res.f == np.inf) and not np.any(res.g == np.inf) and not np.isnan(res.fun)
    assert ot_testing.check_result(res, ot_testing.OTProblem(a, b, M, reg), maxiter=300) == []


def test_recovery_iterations_can_be_stopped():
    def stop(r):
        raise StopIteration

    a, b, M, reg = _recovering()
    res = optcore.ot.sinkhorn(a, b, M, reg=reg, callback=stop, maxiter=10**9, tol=1e-300, warn=False)
    assert res.status == 99 and res.nit < 100


def test_every_recovery_iteration_reaches_the_observer():
    a, b, M, reg = _recovering()
    calls = []
    res = optcore.ot.sinkhorn(
        a, b, M, reg=reg, callback=lambda r: calls.append(r.nit), check_every=1, tol=1e-300, warn=False
    )
    assert res.nit <= 10_000 and len(calls) >= res.nit - 1
    assert calls == sorted(calls)


# --- 3. the working dtype ---------------------------------------------------------------------


def test_float32_weights_with_float64_cost_converge_in_float64():
    rng = np.random.default_rng(1)
    M = rng.random((20, 30))
    a = np.full(20, 1 / 20, dtype=np.float32)
    b = rng.random(30).astype(np.float32)
    b /= b.sum()
    res = optcore.ot.sinkhorn(a, b, M, reg=0.05)
    assert res.plan.dtype == np.float64
    assert res.success and res.status == 0 and res.marginal_error <= 1e-9


def test_big_endian_float32_stays_float32():
    rng = np.random.default_rng(2)
    M = rng.random((5, 4)).astype(">f4")
    a = np.full(5, 0.2, dtype=">f4")
    b = np.full(4, 0.25, dtype=">f4")
    res = optcore.ot.sinkhorn(a, b, M, reg=0.1)
    assert res.plan.dtype == np.float32 and res.f.dtype == np.float32


# --- 6. a failed allocation is a MemoryError -------------------------------------------------


def _run_limited(code: str, limit_gb: float) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter under an address-space limit: an abort is a non-zero
    exit status, a ``MemoryError`` prints its name."""
    body = textwrap.indent(textwrap.dedent(code).strip(), "    ")
    prog = "\n".join(
        [
            "import resource",
            f"lim = int({limit_gb} * 2**30)",
            "resource.setrlimit(resource.RLIMIT_AS, (lim, lim))",
            "import numpy as np, optcore",
            "try:",
            body,
            "except MemoryError as exc:",
            "    print('MemoryError', exc)",
        ]
    )
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120)


_BATCH = """
M = np.zeros((150, 1000, 1000), np.float32)
optcore.ot.sinkhorn(None, None, M, reg=1.0, maxiter=1, warn=False)
"""
_BIG = """
M = np.zeros((20000, 20000), np.float32)
optcore.ot.sinkhorn(None, None, M, reg=1.0, maxiter=1, warn=False)
"""


# The limits let the inputs fit and the plans not: a batch of 150 float32 1000^2 problems
# (600 MB of costs, as much again stacked, then the plans), one float32 20000^2 problem (1.6 GB
# of cost, then 1.6 GB of plan). The failing allocation is the core's: a MemoryError, no abort.
@pytest.mark.parametrize(("code", "limit_gb"), [(_BATCH, 1.9), (_BIG, 2.2)], ids=["batch", "float32-20000"])
def test_allocation_failure_is_memory_error(code, limit_gb):
    proc = _run_limited(code, limit_gb)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MemoryError" in proc.stdout and "cannot allocate" in proc.stdout


# --- 11. argument errors name the argument ----------------------------------------------------


def _small():
    return np.full(3, 1 / 3), np.full(3, 1 / 3), np.random.default_rng(0).random((3, 3))


def test_sparse_cost_is_named():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    a, b, M = _small()
    with pytest.raises(TypeError, match=r"sparse `M`.*toarray"):
        optcore.ot.sinkhorn(a, b, scipy_sparse.csr_matrix(M), reg=0.1)


def test_return_plan_must_be_bool():
    a, b, M = _small()
    with pytest.raises(TypeError, match="return_plan"):
        optcore.ot.sinkhorn(a, b, M, reg=0.1, return_plan=None)


@pytest.mark.parametrize("name", ["maxiter", "check_every"])
def test_huge_integers_are_named(name):
    a, b, M = _small()
    with pytest.raises(ValueError, match=name):
        optcore.ot.sinkhorn(a, b, M, reg=0.1, **{name: 2**64})


@pytest.mark.parametrize(
    ("method", "key", "value"),
    [
        ("eps_scaling", "eps_decay", "half"),
        ("eps_scaling", "eps_decay", "0.5"),
        ("eps_scaling", "stage_tol", "x"),
        ("sns", "switch_tol", "x"),
        ("log", "overrelaxation", "fast"),
        ("sns", "cg_maxiter", 2**64),
    ],
)
def test_bad_options_are_named(method, key, value):
    a, b, M = _small()
    with pytest.raises((TypeError, ValueError), match=key):
        optcore.ot.sinkhorn(a, b, M, reg=0.1, method=method, options={key: value})
