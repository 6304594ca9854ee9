"""One Sinkhorn controller for the CPU solver and the GPU driver.

The decisions of a run (over-relaxation factor, ε-schedule, stall test; the Newton stage's
damping and line search) live in the Rust core (``optcore_core::ot::controller``). The CPU
loop runs it directly; the GPU driver (here on the NumPy emulation of the kernels) runs it
through ``optcore._core.SinkhornController``. Replaying the errors that each path measured
through a fresh controller must reproduce the decisions that path reported.
"""

from __future__ import annotations

import numpy as np
import pytest

from optcore import _core
from optcore.ot import sinkhorn
from optcore.ot._device import sinkhorn_emulated

DEFAULTS = dict(maxiter=20_000, check_every=1, warn=False)


def problem(n=60, m=45, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    return np.full(n, 1 / n), rng.dirichlet(np.ones(m)), M


def record(run):
    """Runs ``run(callback)`` with a callback that records (error, omega) of every check."""
    seen = []
    res = run(lambda r: seen.append((float(r.marginal_error), float(r.omega))))
    return res, seen


def test_gpu_driver_omega_is_the_controllers():
    """Every check of the emulated driver (check_every=1: one error per check) reports the omega
    that the core's controller gives after the errors measured so far."""
    a, b, M = problem()
    res, seen = record(lambda cb: sinkhorn_emulated(a, b, M, 1e-2, **{**DEFAULTS, "callback": cb}))
    assert res.success and len(seen) == res.nit
    ctl = _core.SinkhornController(1e-2)
    for err, omega in seen:
        ctl.observe([err])
        assert ctl.omega == omega
    assert max(w for _, w in seen) > 1.0  # the automatic over-relaxation did switch on


def test_cpu_omega_is_the_controllers():
    """The CPU solver reports, at iteration k, the omega the controller gives after the errors of
    iterations 0..k-1 (the error of iteration 0 is observed before the first callback)."""
    a, b, M = problem()
    res, seen = record(lambda cb: sinkhorn(a, b, M, 1e-2, callback=cb, check_every=1))
    assert res.success and len(seen) >= res.nit - 1
    ctl = _core.SinkhornController(1e-2)
    ctl.observe([1.0])  # iteration 0's error is not reported; it only fills the window
    for err, omega in seen:
        assert ctl.omega == omega
        ctl.observe([err])
    assert max(w for _, w in seen) > 1.0


def test_same_errors_same_decisions():
    """Both paths measure nearly the same errors on the same problem, and the one controller
    turns them into the same decisions: over-relaxation switches on after the same 20-error
    window, with the same factor up to the errors' rounding differences."""
    a, b, M = problem()
    _, cpu = record(lambda cb: sinkhorn(a, b, M, 1e-2, callback=cb, check_every=1))
    _, gpu = record(lambda cb: sinkhorn_emulated(a, b, M, 1e-2, **{**DEFAULTS, "callback": cb}))
    first_cpu = next(i for i, (_, w) in enumerate(cpu) if w > 1.0)
    first_gpu = next(i for i, (_, w) in enumerate(gpu) if w > 1.0)
    assert first_cpu == first_gpu
    assert cpu[first_cpu][1] == pytest.approx(gpu[first_gpu][1], rel=1e-3)


@pytest.mark.parametrize("eps0,decay", [(None, 0.5), (1.0, 0.3)])
def test_eps_schedule_is_shared(eps0, decay):
    """The ε-schedule: the CPU's and the emulated driver's stage counts equal the core's."""
    a, b, M = problem(30, 20, seed=1)
    reg = 1e-3
    stages = _core.SinkhornController.eps_schedule(reg, eps0, decay, float(M.max() - M.min()))
    assert stages[-1] == reg and all(s > reg for s in stages[:-1])
    options = {"eps_decay": decay, **({} if eps0 is None else {"eps0": eps0})}
    cpu = sinkhorn(a, b, M, reg, method="eps_scaling", options=options, warn=False)
    gpu = sinkhorn_emulated(
        a, b, M, reg, **{**DEFAULTS, "method": "eps_scaling", "options": options, "check_every": 10}
    )
    assert cpu.stages == gpu.stages == len(stages)


def test_stall_and_stage_decisions():
    ctl = _core.SinkhornController(1e-2, 1.0, [1.0, 0.1, 1e-2], 1e-3, 100)
    assert ctl.stages == [1.0, 0.1, 1e-2] and ctl.omega == 1.0
    assert ctl.stage_over(1e-4, 5) and ctl.stage_over(1.0, 100) and not ctl.stage_over(1.0, 99)
    ctl.begin_stage()
    assert not ctl.stalled(1, 1.0)
    assert not any(ctl.stalled(k, 1.0) for k in range(2, 502))
    assert ctl.stalled(502, 1.0) and ctl.best == 1.0
    assert "stalled at 1.000e0" in ctl.stall_detail(1e-9, "float64")


def test_newton_decisions():
    nc = _core.NewtonController()
    assert nc.mu == 1e-2
    nc.accepted(1.0, 0.9, 1.0)  # good model: mu halves
    assert nc.mu == 5e-3
    nc.accepted(0.5, 0.9, 1.0)  # a shortened step: mu grows 4x
    assert nc.mu == 2e-2
    nc.rejected()
    assert nc.mu == 0.16
    assert _core.NewtonController.cg_rtol(1e-4, 1.0) == 1e-2 and _core.NewtonController.cg_rtol(1.0, 1.0) == 0.1
    assert not nc.stalled(0, 1.0) and not nc.stalled(50, 1.0) and nc.stalled(51, 1.0)
    ls = _core.LineSearch(0.1, 1.0, 0.0, 1.0, 1.0)
    assert ls.steps() == [1.0, 0.5, 0.25, 0.1, 0.03, 0.01]
    assert ls.accepts(1.0, 1.0, 2.0) and not ls.accepts(1.0, -1.0, 0.5) and not ls.accepts(1.0, np.inf, 0.5)
    assert _core.LineSearch(0.1, -1.0, 0.0, 1.0, 1.0).steps() == []
