"""Fuzz suite, risky cases: inputs that could abort the process (a failed allocation), exhaust
memory or hang run in a subprocess under an address-space limit and a timeout, so that an abort or a
hang is a test failure, not a dead test run (issue 17). The in-process cases are in test_fuzz.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# --------------------------------------------------------------------------------------------
# Risky cases: in a subprocess with an address-space limit, so an abort or a hang fails a test
# --------------------------------------------------------------------------------------------

RISKY_PRELUDE = """
import resource, warnings
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
warnings.simplefilter("ignore")
import numpy as np, optcore
from optcore import ot, zo, bilevel, monotone, fixed_point
from optcore.testing import check_generic, named_errors
def sphere(x):
    return float(np.sum(np.asarray(x, float) ** 2))
try:
    res = {call}
except named_errors() as exc:
    print("NAMED", type(exc).__name__, exc)
else:
    bad = check_generic(res) if hasattr(res, "status") else []
    print("RESULT", bad)
    assert bad == [], bad
"""

RISKY = [
    ("zo_q_1e9", "zo.minimize(sphere, np.zeros(4), q=10**9, maxfev=100, warn=False)", ()),
    (
        "zo_cbo_particles_1e9",
        "zo.minimize(sphere, np.zeros(4), method='cbo', options={'particles': 10**9}, warn=False)",
        (),
    ),
    (
        "zo_rank_m_1e9",
        "zo.rank_minimize(zo.ranking_oracle(sphere), np.zeros(4), m=10**9, maxiter=2, warn=False)",
        (),
    ),
    (
        "zo_cbo_dt_1e300",
        "zo.minimize(sphere, np.zeros(4), method='cbo', options={'dt': 1e300}, maxfev=200, warn=False)",
        (),
    ),
    (
        "bilevel_itd_inner_1e9",
        "bilevel.minimize(bilevel.problems.Quadratic.random(2, 3), np.zeros(2), method='itd', options={'inner_steps': 10**9}, maxiter=2, warn=False)",
        (),
    ),
    ("sinkhorn_batch_huge", "ot.sinkhorn(None, None, np.zeros((1000, 1000, 1000)), reg=1.0, warn=False)", ()),
    (
        "sinkhorn_f32_20000",
        "ot.sinkhorn(None, None, np.zeros((20000, 20000), np.float32), reg=1.0, maxiter=2, warn=False)",
        (),
    ),
    (
        "sinkhorn_clouds_no_plan",
        "ot.sinkhorn(None, None, x=np.zeros((20000, 2)), y=np.ones((20000, 2)), reg=1.0, return_plan=False, maxiter=2, warn=False)",
        (),
    ),
    (
        "sinkhorn_reg_1e-20",
        "ot.sinkhorn(np.full(6, 1/6), np.full(5, 1/5), np.random.default_rng(0).random((6, 5)), reg=1e-20, maxiter=10**7, warn=False)",
        (),
    ),
    (
        "linprog_huge_rhs",
        "optcore.linprog([-1, 4], [[-3, 1], [1, 2]], [1e12, 6], bounds=(-1e12, 1e12), warn=False)",
        (),  # no mark: passes (issue 17 item 4 fixed for linprog)
    ),
    (
        "linprog_x0_1e150",
        "optcore.linprog([-1, 4], [[-3, 1], [1, 2]], [6, 4], bounds=[(None, None), (-3, None)], x0=[1e150, -1e150], warn=False)",
        (),  # no mark: passes (issue 17 item 4 fixed for linprog)
    ),
    (
        "linprog_A_1e300",
        "optcore.linprog([-1, 4], [[-3, 1e300], [1, 2]], [6, 4], bounds=[(None, None), (-3, None)], warn=False)",
        (),  # no mark: passes (issue 17 item 4 fixed for linprog)
    ),
    (
        "vr_halpern_batch_1e9",
        "monotone.solve(monotone.MatrixGame(np.eye(3)), method='vr_halpern', options={'batch': 10**9, 'max_epochs': 10}, warn=False)",
        (),
    ),
    ("workers_20000", "ot.sinkhorn(None, None, np.eye(3), reg=1.0, workers=20000, warn=False)", ()),
    (
        "halpern_dim_huge",
        "fixed_point.halpern(fixed_point.operators.Box(-1.0, 1.0, dim=10**12), np.zeros(1), maxiter=2, warn=False)",
        (),
    ),
    ("simplex_dim_huge", "fixed_point.operators.Simplex(10**15)", ()),
]


@pytest.mark.parametrize("call", [pytest.param(c, marks=m, id=i) for i, c, m in RISKY])
def test_risky_in_subprocess(call):
    """No abort, no hang: a named exception or a consistent result within 20 s and 3 GiB."""
    code = RISKY_PRELUDE.format(limit=3 * 2**30, call=call)
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after 20 s: {call}")
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.startswith(("NAMED", "RESULT")), proc.stdout
