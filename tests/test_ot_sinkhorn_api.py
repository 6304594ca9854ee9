"""Tests of :func:`optcore.ot.sinkhorn`'s API: input validation, memory layouts and dtypes,
non-convergence and warnings, callbacks and progress output, threads and interrupts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from itertools import pairwise

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from ot_reference import (
    METHODS,
    assert_valid_result,
    marginal_l1,
    plan_from_potentials,
    random_problem,
    weights,
)

import optcore
from optcore import ConvergenceWarning, OptcoreWarning
from optcore.ot import sinkhorn

# ------------------------------------------------------------------------------------------
# Input validation
# ------------------------------------------------------------------------------------------

A3 = np.array([0.2, 0.3, 0.5])
B4 = np.array([0.1, 0.2, 0.3, 0.4])
M34 = np.arange(12, dtype=np.float64).reshape(3, 4) / 12


def _with(arr, idx, value):
    out = np.array(arr, dtype=np.result_type(arr, type(value)))
    out[idx] = value
    return out


BAD_INPUTS = [
    # (id, overrides of the valid call, exception, regex the message must match)
    ("a-negative", dict(a=np.array([-0.2, 0.7, 0.5])), ValueError, r"`a`.*negative"),
    ("b-negative", dict(b=np.array([0.1, 0.2, -0.3, 1.0])), ValueError, r"`b`.*negative"),
    ("a-nan", dict(a=_with(A3, 0, np.nan)), ValueError, r"`a`"),
    ("a-inf", dict(a=_with(A3, 1, np.inf)), ValueError, r"`a`"),
    ("b-nan", dict(b=_with(B4, 2, np.nan)), ValueError, r"`b`"),
    ("b-inf", dict(b=_with(B4, 3, np.inf)), ValueError, r"`b`"),
    ("M-nan", dict(M=_with(M34, (1, 1), np.nan)), ValueError, r"`M`"),
    ("M-inf", dict(M=_with(M34, (0, 3), np.inf)), ValueError, r"`M`"),
    ("M-neg-inf", dict(M=_with(M34, (2, 0), -np.inf)), ValueError, r"`M`"),
    ("mass-mismatch", dict(b=B4 * 1.01), ValueError, r"mass"),
    ("a-zero-mass", dict(a=np.zeros(3), b=np.zeros(4)), ValueError, r"mass"),
    ("M-transposed", dict(M=M34.T), ValueError, r"`M`"),
    ("M-1d", dict(M=M34.ravel()), ValueError, r"`M`"),
    ("M-4d", dict(M=M34[None, None]), ValueError, r"`M`"),
    ("a-2d", dict(a=A3[:, None]), ValueError, r"`a`"),
    ("b-3d", dict(b=B4[:, None, None]), ValueError, r"`b`"),
    ("reg-zero", dict(reg=0.0), ValueError, r"`reg`"),
    ("reg-negative", dict(reg=-0.1), ValueError, r"`reg`"),
    ("reg-nan", dict(reg=float("nan")), ValueError, r"`reg`"),
    ("reg-inf", dict(reg=float("inf")), ValueError, r"`reg`"),
    ("reg-complex", dict(reg=0.1 + 0j), TypeError, r"`reg`"),
    ("reg-string", dict(reg="0.1"), TypeError, r"`reg`"),
    ("a-complex", dict(a=A3.astype(complex)), TypeError, r"`a`"),
    ("b-complex", dict(b=B4.astype(complex)), TypeError, r"`b`"),
    ("M-complex", dict(M=M34 + 0j), TypeError, r"`M`"),
    ("M-strings", dict(M=np.full((3, 4), "x")), TypeError, r"`M`"),
    ("M-ragged", dict(M=[[0.0, 1.0], [1.0]]), ValueError, r"`M`"),
    ("method-unknown", dict(method="sinkhorn_knopp"), ValueError, r"method"),
    ("method-none", dict(method=None), ValueError, r"method"),
    ("options-unknown", dict(options={"eps_decay_typo": 0.5}), ValueError, r"eps_decay_typo"),
    ("options-wrong-method", dict(method="scaling", options={"eps0": 1.0}), ValueError, r"eps0"),
    ("options-not-dict", dict(options=[("eps0", 1.0)]), TypeError, r"`options`"),
    ("eps-decay-out-of-range", dict(method="eps_scaling", options={"eps_decay": 1.5}), ValueError, r"eps_decay"),
    ("workers-zero", dict(workers=0), ValueError, r"`workers`"),
    ("workers-negative", dict(workers=-3), ValueError, r"`workers`"),
    ("workers-float", dict(workers=2.0), TypeError, r"`workers`"),
    ("maxiter-float", dict(maxiter=10.5), TypeError, r"`maxiter`"),
    ("maxiter-string", dict(maxiter="100"), TypeError, r"`maxiter`"),
    ("maxiter-negative", dict(maxiter=-1), ValueError, r"`maxiter`"),
    ("check-every-zero", dict(check_every=0), ValueError, r"`check_every`"),
    ("tol-zero", dict(tol=0.0), ValueError, r"`tol`"),
    ("tol-nan", dict(tol=float("nan")), ValueError, r"`tol`"),
    ("callback-not-callable", dict(callback=42), TypeError, r"`callback`"),
    ("x0-not-a-pair", dict(x0=np.zeros(3)), ValueError, r"`x0`"),
    ("x0-wrong-shapes", dict(x0=(np.zeros(4), np.zeros(3))), ValueError, r"`x0`"),
    ("x0-nan", dict(x0=(_with(np.zeros(3), 0, np.nan), np.zeros(4))), ValueError, r"`x0"),
    ("x0-plus-inf", dict(x0=(np.zeros(3), _with(np.zeros(4), 0, np.inf))), ValueError, r"`x0"),
    ("empty-arrays", dict(a=np.array([]), b=np.array([]), M=np.zeros((0, 0))), ValueError, r"`a`|empty"),
    ("empty-M-default-weights", dict(a=None, b=None, M=np.zeros((0, 0))), ValueError, r"`M`|`a`|empty"),
    ("empty-M-rows", dict(a=None, b=None, M=np.zeros((0, 4))), ValueError, r"`M`|`a`|empty"),
    ("empty-M-cols", dict(a=A3, b=None, M=np.zeros((3, 0))), ValueError, r"`M`|`b`|empty"),
    ("empty-histograms", dict(b=np.zeros((4, 0))), ValueError, r"`b`|empty"),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("overrides", "exc", "match"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_raises(overrides, exc, match, method):
    """Bad input raises the documented exception with a message naming the argument."""
    kwargs = dict(a=A3, b=B4, M=M34, reg=0.1, method=method)
    kwargs.update(overrides)
    with pytest.raises(exc, match=match):
        sinkhorn(**kwargs)


def test_valid_reference_call_succeeds():
    """The baseline of the bad-input table is itself valid (so each case tests one defect)."""
    for method in METHODS:
        res = sinkhorn(A3, B4, M34, 0.1, method=method)
        assert res.success
        assert_valid_result(res, A3, B4, M34, 0.1, res.tol)


def test_masses_within_relative_1e6_are_accepted():
    """Masses that agree to relative 1e-6 are accepted; the plan fits a and b within tol
    plus the mass difference."""
    b = B4 * (1 + 1e-8)
    res = sinkhorn(A3, b, M34, 0.1)
    assert marginal_l1(res.plan, A3, b) <= 1e-9 + 2e-8


# ------------------------------------------------------------------------------------------
# Memory layouts and dtypes
# ------------------------------------------------------------------------------------------


def _layout_cases():
    rng = np.random.default_rng(7)
    M_wide = rng.random((12, 30))
    a = weights(rng, 12, 0.2)
    b = weights(rng, 15, 0.2)
    a_wide = np.repeat(a, 2)  # a_wide[::2] == a
    b_rev = b[::-1].copy()  # b_rev[::-1] == b
    return {
        "M-column-stride": (a, b, M_wide[:, ::2]),
        "M-fortran": (a, b, np.asfortranarray(M_wide[:, :15])),
        "M-transposed-view": (a, b, np.ascontiguousarray(M_wide[:, :15].T).T),
        "weights-strided": (a_wide[::2], b_rev[::-1], M_wide[:, 1::2]),
    }


LAYOUTS = _layout_cases()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(LAYOUTS))
def test_noncontiguous_inputs_give_identical_results(case, method):
    """Strided, Fortran-ordered and reversed inputs give bit-identical results to
    contiguous float64 copies."""
    a, b, M = LAYOUTS[case]
    assert not (a.flags.c_contiguous and b.flags.c_contiguous and M.flags.c_contiguous)
    res = sinkhorn(a, b, M, 0.1, method=method)
    ref = sinkhorn(np.ascontiguousarray(a), np.ascontiguousarray(b), np.ascontiguousarray(M), 0.1, method=method)
    for name in ("plan", "f", "g"):
        assert_array_equal(res[name], ref[name])
    assert res.nit == ref.nit and res.marginal_error == ref.marginal_error
    assert_valid_result(res, a, b, M, 0.1, res.tol)


@pytest.mark.parametrize("method", METHODS)
def test_integer_inputs_equal_float64(method):
    """Integer weights and costs are accepted, solved in float64, and equal the float64 solve."""
    a = np.array([1, 2, 3, 0, 4])
    b = np.array([2, 2, 2, 2, 2])
    M = np.arange(25).reshape(5, 5) % 7
    res = sinkhorn(a, b, M, 2.0, method=method)
    ref = sinkhorn(a.astype(np.float64), b.astype(np.float64), M.astype(np.float64), 2.0, method=method)
    for name in ("plan", "f", "g"):
        assert res[name].dtype == np.float64
        assert_array_equal(res[name], ref[name])
    assert res.success
    assert_valid_result(res, a, b, M, 2.0, res.tol)


@pytest.mark.parametrize("method", METHODS)
def test_list_inputs(method):
    """Nested Python lists are accepted like arrays."""
    res = sinkhorn(A3.tolist(), B4.tolist(), M34.tolist(), 0.1, method=method)
    ref = sinkhorn(A3, B4, M34, 0.1, method=method)
    assert_array_equal(res.plan, ref.plan)


@pytest.mark.parametrize("method", METHODS)
def test_float32_in_float32_out(method):
    """float32 inputs give float32 plan, f and g (also with k histograms)."""
    p = random_problem(4, 10, 11, reg_factor=0.2).astype(np.float32)
    res = sinkhorn(p.a, p.b, p.M, p.reg, method=method)
    for name in ("plan", "x", "f", "g"):
        assert res[name].dtype == np.float32, name
    assert res.success
    assert_valid_result(res, p.a, p.b, p.M, p.reg, res.tol)
    B = np.stack([p.b, p.b[::-1]], axis=1)
    resk = sinkhorn(p.a, B, p.M, p.reg, method=method)
    for name in ("plan", "f", "g"):
        assert resk[name].dtype == np.float32, name


@pytest.mark.parametrize("method", METHODS)
def test_mixed_precision_promotes_to_float64(method):
    """One float64 input makes the solve float64."""
    a = np.array([0.25, 0.5, 0.25], dtype=np.float32)  # exactly representable: equal masses
    b = np.array([0.125, 0.375, 0.5], dtype=np.float32)
    M = np.random.default_rng(4).random((3, 3))
    res = sinkhorn(a, b, M, 0.2, method=method)
    assert res.plan.dtype == res.f.dtype == res.g.dtype == np.float64
    assert res.success and marginal_l1(res.plan, a, b) <= 1e-9


# ------------------------------------------------------------------------------------------
# Non-convergence and warnings
# ------------------------------------------------------------------------------------------


def hard_problem():
    rng = np.random.default_rng(8)
    return weights(rng, 20), weights(rng, 24), rng.random((20, 24)), 0.01


@pytest.mark.parametrize("method", METHODS)
def test_iteration_limit(method):
    """maxiter=3: success False, status 1, nit 3, the true error of the plan, and a
    ConvergenceWarning (an OptcoreWarning and a UserWarning) pointing at the caller."""
    a, b, M, reg = hard_problem()
    with pytest.warns(ConvergenceWarning) as record:
        res = sinkhorn(a, b, M, reg, method=method, maxiter=3)
    assert res.success is False and res.status == 1
    assert res.nit == 3
    assert "maxiter" in res.message or "teration" in res.message
    measured = marginal_l1(res.plan, a, b)
    assert measured > res.tol
    assert res.marginal_error == pytest.approx(measured, rel=1e-9)
    assert len(record) == 1
    w = record[0]
    assert issubclass(w.category, OptcoreWarning) and issubclass(w.category, UserWarning)
    assert os.path.samefile(w.filename, __file__)  # stacklevel points at the caller


@pytest.mark.parametrize("method", METHODS)
def test_warn_false_suppresses_warning(method):
    """warn=False: no warning at all, same result."""
    a, b, M, reg = hard_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sinkhorn(a, b, M, reg, method=method, maxiter=3, warn=False)
    assert res.status == 1 and not res.success


@pytest.mark.parametrize("method", METHODS)
def test_converged_solve_does_not_warn(method):
    """A converged solve emits no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sinkhorn(A3, B4, M34, 0.1, method=method)
    assert res.success


# ------------------------------------------------------------------------------------------
# Callbacks and progress output
# ------------------------------------------------------------------------------------------


def callback_problem():
    rng = np.random.default_rng(9)
    return weights(rng, 30, 0.1), weights(rng, 40, 0.1), rng.random((30, 40)), 0.05


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("check_every", [1, 7])
def test_callback_protocol(method, check_every):
    """callback(intermediate_result) every check_every iterations, with nit, f, g and the
    marginal error of the plan exp((f + g - M)/reg) those potentials define."""
    a, b, M, reg = callback_problem()
    seen = []

    def callback(intermediate):
        assert isinstance(intermediate, optcore.OptimizeResult)
        f, g = intermediate.f, intermediate.g
        seen.append(
            dict(
                nit=intermediate.nit,
                err=intermediate.marginal_error,
                f=f,
                g=g,
                f_copy=np.array(f),
                g_copy=np.array(g),
                reg=intermediate.get("reg", reg),
            )
        )

    res = sinkhorn(a, b, M, reg, method=method, callback=callback, check_every=check_every)
    assert res.success
    nits = [s["nit"] for s in seen]
    # consecutive multiples of check_every (a first call at nit=0, before any iteration, is allowed)
    first = nits[0] // check_every
    assert nits == [check_every * (first + i) for i in range(len(nits))], nits
    assert first in (0, 1) and nits[-1] <= res.nit and len(nits) >= res.nit // check_every - 1
    for s in seen:
        assert s["f"].shape == (30,) and s["g"].shape == (40,)
        P = plan_from_potentials(s["f"], s["g"], M, s["reg"])
        # the reported error is the error of the plan these potentials define
        assert s["err"] == pytest.approx(marginal_l1(P, a, b), rel=1e-6, abs=1e-12), s["nit"]
        # arrays handed to the callback are not overwritten by later iterations
        assert_array_equal(s["f"], s["f_copy"])
        assert_array_equal(s["g"], s["g_copy"])
    if method == "eps_scaling":
        regs = [s["reg"] for s in seen]
        assert regs[0] > reg and regs[-1] == reg
        assert all(r1 >= r2 for r1, r2 in pairwise(regs))


@pytest.mark.parametrize("method", METHODS)
def test_callback_stop_iteration(method):
    """StopIteration: status 99, success False, and the true error of the returned plan."""
    a, b, M, reg = callback_problem()
    # sns reaches 1e-14 in about 13 iterations: stop it in its Newton stage instead
    stop_at = 10 if method == "sns" else 20

    def callback(intermediate):
        if intermediate.nit >= stop_at:
            raise StopIteration

    res = sinkhorn(a, b, M, reg, method=method, callback=callback, check_every=5, tol=1e-14)
    assert res.status == 99 and res.success is False
    assert res.nit == stop_at
    if method == "sns":
        assert res.n_newton > 0
    assert "StopIteration" in res.message
    assert res.marginal_error == pytest.approx(marginal_l1(res.plan, a, b), rel=1e-9, abs=1e-15)
    assert np.all(res.plan >= 0) and np.all(np.isfinite(res.plan))


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("method", METHODS)
def test_callback_exception_propagates(method):
    """Any other exception from the callback propagates out of sinkhorn unchanged."""
    a, b, M, reg = callback_problem()
    boom = _Boom("boom from callback")

    def callback(intermediate):
        raise boom

    with pytest.raises(_Boom) as excinfo:
        sinkhorn(a, b, M, reg, method=method, callback=callback)
    assert excinfo.value is boom


@pytest.mark.parametrize("method", METHODS)
def test_disp_prints_progress(method, capsys):
    """disp=True: a title, a header, the checks the callback sees (paced: at most one line per
    second, plus the first and the last) and a summary line with the final message and count."""
    a, b, M, reg = callback_problem()
    seen = []
    res = sinkhorn(
        a, b, M, reg, method=method, disp=True, check_every=5, callback=lambda r: seen.append((r.nit, r.marginal_error))
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert "optcore.ot.sinkhorn" in out[0] and method in out[0]
    assert out[1].split() == ["iter", "error", "time", "(s)"]
    # disp paces its lines (the first check, then at most one per second, then the last):
    # every printed line is one of the checks the callback saw, the first and the last included.
    body = out[2:-1]
    checks = dict(seen)
    assert 0 < len(body) <= len(seen)
    for line in body:
        fields = line.split()
        assert float(fields[1]) == pytest.approx(checks[int(fields[0])], rel=1e-4)
        assert float(fields[2]) >= 0
    assert int(body[0].split()[0]) == seen[0][0] and int(body[-1].split()[0]) == seen[-1][0]
    assert out[-1].startswith(res.message) and f"{res.nit} iterations" in out[-1]


def test_no_output_without_disp(capsys):
    """disp=False prints nothing."""
    sinkhorn(A3, B4, M34, 0.1)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------------------------------
# Ctrl-C
# ------------------------------------------------------------------------------------------

INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import _thread, os, signal, sys, threading, time
    import numpy as np
    import optcore

    # A process started in the background by a non-interactive shell inherits SIGINT ignored,
    # and then Python installs no handler: install it, so the test does not depend on how the
    # test run itself was launched.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    method = sys.argv[1]
    # Solves that take seconds: slow convergence at small reg (scaling: as small as it can go).
    n, reg = (1000, 1.5e-3) if method == "scaling" else (400, 1e-4)
    rng = np.random.default_rng(0)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    M /= M.max()
    a = np.full(n, 1.0 / n)

    def run(callback, check_every):
        t0 = time.perf_counter()
        try:
            # sns reaches machine precision within a second and then stops (status 4): keep it
            # in its Sinkhorn stage so that the solve lasts
            options = {"warmup": 10**8} if method == "sns" else None
            res = optcore.ot.sinkhorn(a, a, M, reg, method=method, tol=1e-300, maxiter=10**9,
                                      callback=callback, check_every=check_every, warn=False, options=options)
        except KeyboardInterrupt:
            return "interrupted", time.perf_counter() - t0
        return f"returned(status={res.status},nit={res.nit})", time.perf_counter() - t0

    # 1. a real SIGINT from another thread while the Rust loop runs without callback and
    #    with checks at most every 10**6 iterations: the core must poll signals on its own.
    delay = 0.2
    threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT)).start()
    what, t = run(None, 10**6)
    print("timer", what, t - delay, flush=True)

    # 2. interrupt_main() from the callback.
    def cb(r):
        if r.nit >= 20:
            _thread.interrupt_main()
    what, t = run(cb, 10)
    print("callback", what, t, flush=True)

    # 3. the extension still works afterwards.
    res = optcore.ot.sinkhorn(None, None, M[:5, :5], 0.1, method=method)
    print("after", res.success, flush=True)
    """
)


@pytest.mark.parametrize("method", METHODS)
def test_keyboard_interrupt_is_prompt(method, tmp_path):
    """SIGINT during a long solve raises KeyboardInterrupt out of sinkhorn within ~1 s."""
    script = tmp_path / "interrupt.py"
    script.write_text(INTERRUPT_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), method], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line.split()[1:] for line in proc.stdout.strip().splitlines()}
    for case in ("timer", "callback"):
        what, delay = lines[case][0], float(lines[case][1])
        assert what == "interrupted", proc.stdout
        assert delay < 1.5, proc.stdout  # the core polls signals at least every 0.2 s
    assert lines["after"] == ["True"]


# ------------------------------------------------------------------------------------------
# Determinism and threads
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def determinism_problem():
    p = random_problem(10, 150, 170, zero_frac=0.1, reg_factor=0.02)
    rng = np.random.default_rng(10)
    B = np.stack([p.b, weights(rng, 170, 0.1)], axis=1)
    return p, B


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batched", [False, True], ids=["k=1", "k=2"])
def test_bit_identical_across_runs_and_workers(method, batched, determinism_problem):
    """The same call twice, and workers = None / 1 / 2 / -1, give bit-identical results."""
    p, B = determinism_problem
    b = B if batched else p.b
    runs = [sinkhorn(p.a, b, p.M, p.reg, method=method, workers=w) for w in (None, None, 1, 2, -1)]
    ref = runs[0]
    assert np.all(ref.success)
    for res in runs[1:]:
        for name in ("plan", "f", "g", "marginal_error", "cost", "fun"):
            assert_array_equal(res[name], ref[name], err_msg=name)
        assert res.nit == ref.nit and res.status == ref.status


# ------------------------------------------------------------------------------------------
# Warm start
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_warm_start_from_solution(method, dtype, tols):
    """x0 = (res.f, res.g) of a converged solve (with -inf entries for zero weights)
    re-converges in at most 2 iterations to the same plan."""
    p = random_problem(12, 30, 40, zero_frac=0.15, reg_factor=0.05).astype(dtype)
    assert (p.a == 0).any() and (p.b == 0).any()
    tol = tols.solve_tol
    res = sinkhorn(p.a, p.b, p.M, p.reg, method=method, tol=tol)
    assert res.success and np.isneginf(res.f).any() and np.isneginf(res.g).any()
    warm = sinkhorn(p.a, p.b, p.M, p.reg, method=method, tol=tol, x0=(res.f, res.g))
    assert warm.success
    assert warm.nit <= 2, warm.nit
    assert np.abs(warm.plan.astype(np.float64) - res.plan).sum() <= 2 * tol
    assert_valid_result(warm, p.a, p.b, p.M, p.reg, tol)


@pytest.mark.parametrize("method", METHODS)
def test_warm_start_batched(method):
    """x0 of shapes (k, n), (k, m) with k histograms."""
    rng = np.random.default_rng(13)
    a = weights(rng, 15, 0.2)
    B = np.stack([weights(rng, 18, 0.2) for _ in range(3)], axis=1)
    M = rng.random((15, 18))
    res = sinkhorn(a, B, M, 0.05, method=method)
    warm = sinkhorn(a, B, M, 0.05, method=method, x0=(res.f, res.g))
    assert warm.success and warm.nit <= 2, warm.nit
    assert_allclose(warm.plan, res.plan, atol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_warm_start_from_arbitrary_potentials(method):
    """Any finite x0 converges to the same solution as a cold start."""
    p = random_problem(14, 20, 25, zero_frac=0.0, reg_factor=0.1)
    rng = np.random.default_rng(14)
    cold = sinkhorn(p.a, p.b, p.M, p.reg, method=method)
    warm = sinkhorn(p.a, p.b, p.M, p.reg, method=method, x0=(rng.normal(size=20), rng.normal(size=25)))
    assert cold.success and warm.success
    assert np.abs(warm.plan - cold.plan).sum() <= 20 * cold.tol


# ------------------------------------------------------------------------------------------
# Default (uniform) weights
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("empty", [None, [], ()], ids=["None", "list", "tuple"])
def test_missing_weights_are_uniform(method, empty):
    """a or b None / [] means uniform weights 1/n, 1/m."""
    rng = np.random.default_rng(15)
    M = rng.random((8, 11))
    ref = sinkhorn(np.full(8, 1 / 8), np.full(11, 1 / 11), M, 0.1, method=method)
    for a, b in ((empty, np.full(11, 1 / 11)), (np.full(8, 1 / 8), empty), (empty, empty)):
        res = sinkhorn(a, b, M, 0.1, method=method)
        assert_array_equal(res.plan, ref.plan)
    assert_allclose(ref.plan.sum(axis=1), 1 / 8, atol=1e-9)
    assert_allclose(ref.plan.sum(axis=0), 1 / 11, atol=1e-9)


# ------------------------------------------------------------------------------------------
# CuPy dispatch (without CuPy: objects whose type lives in a module named "cupy")
# ------------------------------------------------------------------------------------------


class FakeCupyArray:
    """Stands in for cupy.ndarray: only ``type(x).__module__`` is looked at."""

    __module__ = "cupy"

    def __init__(self, data):
        self.data = np.asarray(data)
        self.shape = self.data.shape


class FakeCupyCoreArray(FakeCupyArray):
    __module__ = "cupy._core.core"  # where cupy.ndarray really lives


@pytest.mark.parametrize("which", ["a", "b", "M"])
def test_mixed_cupy_numpy_is_type_error(which):
    """One CuPy input among NumPy inputs: TypeError naming the arguments."""
    kwargs = dict(a=A3, b=B4, M=M34)
    kwargs[which] = FakeCupyArray(kwargs[which])
    with pytest.raises(TypeError, match=rf"CuPy.*{which}: cupy"):
        sinkhorn(reg=0.1, **kwargs)


def test_mixed_cupy_numpy_type_error_everywhere_else():
    """Two CuPy inputs with one NumPy input is also mixed."""
    with pytest.raises(TypeError, match="CuPy"):
        sinkhorn(FakeCupyArray(A3), B4, FakeCupyCoreArray(M34), 0.1)
