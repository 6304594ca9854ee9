"""What a fixed-point result says about itself holds when re-measured (issue 17), for every
method, on :func:`optcore.testing.fixed_point_problems`; and the regressions of the issue's
fixed-point, operator and monotone reproducers (items 6, 7, 8, 11)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings

import optcore
from optcore import testing
from optcore.fixed_point import halpern
from optcore.fixed_point import operators as ops

MAXITER = 20_000

RUNS = {
    "halpern": {"method": "halpern"},
    "halpern+restart": {"method": "halpern", "restart": "adaptive"},
    "km": {"method": "km"},
    "picard": {"method": "picard"},
}


@pytest.mark.parametrize("run", sorted(RUNS))
@settings(max_examples=150)
@given(problem=testing.fixed_point_problems(max_dim=5))
def test_results_hold_their_claims(run, problem):
    res = problem.solve(maxiter=MAXITER, **RUNS[run])
    assert testing.check_result(res, problem, maxiter=MAXITER) == []
    if problem.consistent:
        assert res.status != 2


@pytest.mark.parametrize("rtol", [1e-3, 0.5])
@settings(max_examples=40)
@given(problem=testing.fixed_point_problems(max_dim=4, dtypes=(np.float64,)))
def test_relative_tolerance_claims(rtol, problem):
    res = problem.solve(maxiter=2000, rtol=rtol, method="km")
    assert testing.check_result(res, problem, maxiter=2000, rtol=rtol) == []


# ------------------------------------------------------------------------------------------
# Item 7: norms that decide anything are scaled
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["halpern", "km", "picard"])
@pytest.mark.parametrize("rtol", [0.0, 1e-3])
def test_huge_start_does_not_overflow_the_residual(method, rtol):
    x0 = np.array([1e200, 0.0])
    res = halpern(lambda x: 0.5 * x, x0, method=method, rtol=rtol, maxiter=5000, warn=False)
    assert np.isfinite(res.initial_residual) and res.initial_residual == pytest.approx(5e199)
    r = testing.fixed_point_norm(res.x - 0.5 * res.x)
    assert res.residual == pytest.approx(r, rel=1e-12, abs=0.0)
    if res.success:
        assert res.nit > 0 and r <= 1e-8 + rtol * 5e199
    if method == "picard" or rtol > 0:
        # Picard halves x: 1e200 -> below 1e-8 in ~700 iterations; rtol = 1e-3 is met by every
        # method in a few iterations.
        assert res.success, res.message
    assert "nan" not in res.message and "inf" not in res.message
    problem = testing.FixedPointProblem(lambda x: 0.5 * x, x0, np.zeros(2))
    assert testing.check_result(res, problem, maxiter=5000, rtol=rtol) == []


def test_nonfinite_threshold_never_passes():
    # ||x0 - T x0|| is inf in f64 (entries of opposite sign near the largest float).
    x0 = np.array([1.5e308, -1.5e308])
    res = halpern(lambda x: -x, x0, rtol=1.0, maxiter=5, warn=False)
    assert not res.success


def test_vectorized_residuals_are_scaled():
    x0 = np.array([[1e200, 0.0], [1.0, 2.0]])
    res = halpern(lambda X: 0.5 * X, x0, vectorized=True, method="picard", maxiter=2000)
    assert res.success and np.all(np.isfinite(res.residuals)) and np.all(res.residuals <= 1e-8)


# ------------------------------------------------------------------------------------------
# Item 8: projections at huge inputs
# ------------------------------------------------------------------------------------------


def test_simplex_of_huge_entries():
    s = ops.Simplex(3)
    np.testing.assert_array_equal(s(np.array([1e16, 0.0, 0.0])), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(s(np.array([1e200, -1e200, 5.0])), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(s(np.array([1e16, 0.0, 0.0], dtype=np.float32)), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s(np.array([1e16, 1e16, 0.0])), [0.5, 0.5, 0.0], atol=1e-15)
    np.testing.assert_allclose(ops.Simplex(2, total=3.0)(np.array([1e300, 1e300])), [1.5, 1.5])


def test_ball_box_affine_dr_at_huge_inputs():
    np.testing.assert_array_equal(ops.Ball(np.zeros(2), 2.0)(np.array([1e200, 0.0])), [2.0, 0.0])
    np.testing.assert_allclose(ops.Ball(np.zeros(2), 1.0)(np.array([3e200, 4e200])), [0.6, 0.8], rtol=1e-15)
    np.testing.assert_array_equal(ops.Box(-1.0, 1.0, dim=2)(np.array([1e200, -1e200])), [1.0, -1.0])
    plane = ops.Affine([[1.0, 1.0]], [1.0])
    p = plane(np.array([1e16, 0.0]))
    assert abs(p[0] - 5e15) <= 2.0 and abs(p[1] + 5e15) <= 2.0
    z = ops.DouglasRachford(ops.Ball(np.zeros(2), 2.0), plane)(np.array([1e200, 1e200]))
    assert np.all(np.isfinite(z))
    # Solving from 1e200: the iterates come back and meet the tolerance.
    T = ops.Compose(ops.Box(-1.0, 1.0, dim=2), ops.Ball(np.zeros(2), 1.0))
    res = halpern(T, np.array([1e200, -1e200]), method="picard")
    assert res.success and np.all(np.abs(res.x) <= 1.0)


# ------------------------------------------------------------------------------------------
# Items 6 and 11: sizes, huge integers, string options
# ------------------------------------------------------------------------------------------


def test_huge_integers_are_clamped_or_named():
    T = ops.Box(-1.0, 1.0, dim=2)
    res = halpern(T, np.array([3.0, 0.0]), maxiter=2**70, check_every=2**65, method="picard")
    assert res.success
    res = halpern(T, np.array([3.0, 0.0]), method="picard", options={"min_disp_iter": 2**80})
    assert res.success
    with pytest.raises(TypeError, match="min_disp_iter"):
        halpern(T, np.array([3.0, 0.0]), options={"min_disp_iter": "50"})
    with pytest.raises(TypeError, match="tol_disp"):
        halpern(T, np.array([3.0, 0.0]), options={"tol_disp": "1e-6"})
    with pytest.raises(TypeError, match="relaxation"):
        halpern(T, np.array([3.0, 0.0]), method="km", options={"relaxation": "0.5"})


def test_monotone_vr_halpern_respects_max_epochs_with_a_huge_batch():
    q = optcore.monotone.QuadraticMinMax(np.eye(4), np.zeros((0, 4)), h=np.ones(4))
    res = optcore.monotone.solve(
        q, method="vr_halpern", tol=0, rng=0, warn=False, options={"batch": 10**9, "max_epochs": 10}
    )
    assert res.status == 1 and res.epochs <= 10 + 2
    g = optcore.monotone.MatrixGame([[0, 1, -1], [-1, 0, 1], [1, -1, 0]])
    res = optcore.monotone.solve(
        g,
        ([1.0, 0, 0], [0, 1.0, 0]),
        method="vr_halpern",
        tol=0,
        rng=0,
        warn=False,
        options={"inner": 10**9, "max_epochs": 10},
    )
    assert res.status == 1 and res.epochs <= 10 + 2
    start = ([1.0, 0, 0], [0, 1.0, 0])
    res = optcore.monotone.solve(
        g, start, method="halpern", tol=0, warn=False, options={"inner": 2**70, "max_epochs": 10}
    )
    assert res.status == 1 and res.epochs <= 10 + 2


def test_monotone_huge_integers_and_string_options():
    g = optcore.monotone.MatrixGame([[0, 1, -1], [-1, 0, 1], [1, -1, 0]])
    res = optcore.monotone.solve(g, method="eg", tol=1e-6, maxiter=2**70, check_every=2**66)
    assert res.status in (0, 1) and res.nit <= 2**62
    res = optcore.monotone.solve(g, method="eg", tol=1e-6, options={"max_epochs": 10**400})
    assert res.success
    with pytest.raises(TypeError, match="max_epochs"):
        optcore.monotone.solve(g, options={"max_epochs": "10"})
    with pytest.raises(TypeError, match="step"):
        optcore.monotone.solve(g, options={"step": "0.1"})
    with pytest.raises(TypeError, match="batch"):
        optcore.monotone.solve(g, method="vr_halpern", options={"batch": "10"})
    with pytest.raises(ValueError, match="dim"):
        optcore.monotone.FiniteSum(lambda i, z: z, 1, 2**64, lipschitz=1.0)


def test_monotone_residual_is_scaled_and_claims_hold():
    q = optcore.monotone.QuadraticMinMax(np.eye(2), np.zeros((0, 2)))
    res = optcore.monotone.solve(q, [1e200, 0.0], method="eg", tol=1e-6, maxiter=20, warn=False)
    assert np.isfinite(res.history[0, 1]) and res.history[0, 1] == pytest.approx(1e200)
    assert _natural_residual(q, res.x) == pytest.approx(res.residual, rel=1e-9, abs=1e-300)
    assert res.success == (res.residual <= 1e-6)


def _natural_residual(problem, z):
    """``L ||z - P(z - F(z)/L)||`` for unconstrained problems, scaled."""
    L = problem.lipschitz
    return L * testing.fixed_point_norm(problem.operator(z) / L)


def test_monotone_ctrl_c_between_checks():
    # With check_every = 10**9 the observer used to be reached only at the checks: Ctrl-C was
    # ignored. The core now polls it every iteration.
    script = textwrap.dedent(
        """
        import numpy as np, optcore, time, signal, threading, os
        # A parent that ignores SIGINT (a background job) passes that on: restore Python's handler.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        g = optcore.monotone.MatrixGame(np.random.default_rng(0).standard_normal((50, 60)))
        def fire():
            time.sleep(0.5)
            globals()["t0"] = time.time()
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=fire, daemon=True).start()
        try:
            optcore.monotone.solve(g, method="eg", tol=0, maxiter=10**12, check_every=10**9)
        except KeyboardInterrupt:
            print("interrupted", time.time() - t0)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("interrupted"), out.stdout + out.stderr
    assert float(out.stdout.split()[1]) < 0.5
