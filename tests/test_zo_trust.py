"""What a zeroth-order result says about itself holds, re-measured (issue 17, items 6, 9, 11):
bounds on every evaluated point and on the result, honest statuses, named errors, no abort."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optcore import zo
from optcore.testing import check_result, zo_problems

ALL_METHODS = ("gaussian", "sphere", "cge", "signsgd", "adamm", "perturbed", "cbo", "rank")


def _recording(f, lo, hi, log):
    def g(x):
        x = np.asarray(x)
        log.append(bool(np.all(x >= lo) and np.all(x <= hi)))
        return f(x)

    return g


@pytest.mark.parametrize("method", ALL_METHODS)
@settings(max_examples=12)
@given(problem=zo_problems(max_dim=5))
def test_claims_hold_on_zo_problems(method, problem):
    """check_result == [] (x in bounds, fun == f(x), status/success/nit consistent) and the
    objective is never called outside the bounds."""
    log = []
    f = problem.f
    if problem.bounds is not None:
        f = _recording(problem.f, *problem.bounds, log)
    opts = {"particles": 10} if method == "cbo" else None
    res = zo.minimize(f, problem.x0, method=method, bounds=problem.bounds, maxfev=300, rng=0, warn=False, options=opts)
    assert check_result(res, problem) == []
    assert all(log), f"{log.count(False)} of {len(log)} evaluations outside the bounds"
    assert res.nfev <= 300
    if problem.bounds is not None:
        lo, hi = problem.bounds
        assert np.all(res.x_last >= lo) and np.all(res.x_last <= hi)


def test_rank_probes_stay_in_bounds():
    """Issue 17 item 9: method='rank' from 50 with bounds (-1, 1) returned x[1] = -1.337."""
    log = []
    f = _recording(lambda x: float(np.sum(x**2)), -1.0, 1.0, log)
    res = zo.minimize(f, np.full(4, 50.0), method="rank", bounds=(-1, 1), rng=0, maxfev=3000, warn=False)
    assert all(log) and len(log) == res.nfev
    assert np.all(np.abs(res.x) <= 1) and np.all(np.abs(res.x_last) <= 1)
    assert res.fun == f(res.x)


@pytest.mark.parametrize("method", ["gaussian", "cge", "adamm", "perturbed"])
def test_one_sided_differences_at_the_bound_still_descend(method):
    """Starting on the bound, a forward probe that leaves the box is reflected: the run still
    moves inwards (here the minimum is at the center)."""
    log = []
    f = _recording(lambda x: float(np.sum((x - 0.5) ** 2)), 0.0, 1.0, log)
    res = zo.minimize(f, np.ones(3), method=method, bounds=(0, 1), rng=0, maxfev=600, warn=False)
    assert all(log)
    assert res.fun < 0.75 * 1e-2


def test_float32_bounds_not_representable_hold():
    log = []
    f = _recording(lambda x: float(np.sum((x - 1.0) ** 2)), -0.1, 0.1, log)
    res = zo.minimize(f, np.zeros(3, np.float32), bounds=(-0.1, 0.1), rng=0, maxfev=400, warn=False)
    assert all(log)
    assert res.x.dtype == np.float32 and np.all(res.x <= 0.1)


def test_rank_from_huge_start_is_not_success():
    """Issue 17 item 9: method='rank' from 1.7e308 reported success with fun = inf."""
    res = zo.minimize(lambda x: float(np.sum(x**2)), np.full(3, 1.7e308), method="rank", rng=0, warn=False)
    assert not res.success
    assert not (res.status == 0 and not np.isfinite(res.fun))


@pytest.mark.parametrize(
    "bounds", [(np.inf, np.inf), (-np.inf, -np.inf), (np.inf, None), (None, -np.inf), ([(0, 1), (np.inf, np.inf)])]
)
def test_infinite_bounds_on_the_wrong_side_are_refused(bounds):
    with pytest.raises(ValueError, match="bounds"):
        zo.minimize(lambda x: float(np.sum(x**2)), np.zeros(2), bounds=bounds)


def test_cbo_collapse_is_not_convergence():
    """Issue 17 item 9: cbo on a 20-d sphere reported status 0 "Converged" at f = 2.76."""
    res = zo.minimize(lambda x: float(np.sum(x**2)), np.full(20, 3.0), method="cbo", rng=0, warn=False)
    assert check_result(res, zo_problems_sphere(20)) == []
    if res.status == 0:
        assert "f_target" in res.message
    else:
        assert res.status == 1
        assert "collapsed" in res.message or "budget" in res.message
    res = zo.minimize(
        lambda x: float(np.sum(x**2)), np.full(2, 1.0), method="cbo", rng=0, f_target=1e-3, warn=False, maxfev=10**5
    )
    assert res.success and res.fun <= 1e-3 and "f_target" in res.message


def zo_problems_sphere(d):
    from optcore.testing import ZOProblem

    return ZOProblem(lambda x: float(np.sum(np.asarray(x, float) ** 2)), np.full(d, 3.0), np.zeros(d), 0.0)


def test_xtol_message_names_the_criterion():
    res = zo.minimize(lambda x: float(np.sum(x**2)), np.ones(2), method="cge", rng=0, xtol=1e-3, warn=False)
    if res.status == 0 and "f_target" not in res.message:
        assert "xtol" in res.message


def test_objective_returning_none_is_a_type_error():
    with pytest.raises(TypeError, match="real number"):
        zo.minimize(lambda x: None, np.zeros(2), rng=0)
    with pytest.raises(TypeError, match="real numbers"):
        zo.minimize(lambda X: [None] * len(X), np.zeros(2), rng=0, vectorized=True)
    with pytest.raises(TypeError, match="real number"):
        zo.minimize(lambda x: "1.0", np.zeros(2), rng=0)


def test_rank_oracle_negative_index_is_a_value_error():
    with pytest.raises(ValueError, match="rank_oracle.*-1"):
        zo.rank_minimize(lambda X: np.array([-1] + list(range(1, len(X)))), np.zeros(3), rng=0, maxiter=3)
    with pytest.raises(ValueError, match="rank_oracle.*range"):
        zo.rank_minimize(lambda X: np.arange(len(X)) + 1, np.zeros(3), rng=0, maxiter=3)
    opt = zo.Optimizer("rank", np.zeros(3), rng=0)
    X = opt.ask()
    with pytest.raises(ValueError, match="ranking"):
        opt.tell_ranking(X, [-1, 0, 1, 2, 3, 4, 5, 6])


def test_cbo_huge_dt_is_a_value_error():
    with pytest.raises(ValueError, match="dt"):
        zo.minimize(lambda x: float(np.sum(x**2)), np.zeros(2), method="cbo", options={"dt": 1e300})


@pytest.mark.parametrize("key", ["maxfev", "maxiter"])
def test_budgets_beyond_64_bits_are_clamped(key):
    res = zo.minimize(lambda x: float(np.sum(x**2)), np.ones(2), rng=0, f_target=1e-3, warn=False, **{key: 2**70})
    assert res.success


@pytest.mark.parametrize(
    "code",
    [
        "zo.minimize(f, np.zeros(4), q=10**9)",
        "zo.minimize(f, np.zeros(4), method='cbo', options={'particles': 10**9})",
        "zo.minimize(f, np.zeros(4), method='rank', options={'m': 10**9})",
        "zo.minimize(f, np.zeros(4), q=10**9, maxfev=2**62)",
        "zo.minimize(f, np.zeros(4), method='cbo', options={'particles': 10**9}, maxfev=2**62)",
        "zo.minimize(f, np.zeros(4), method='rank', options={'m': 10**9}, maxfev=2**62)",
        "zo.Optimizer('sphere', np.zeros(4), q=10**12).ask()",
        "zo.Optimizer('cbo', np.zeros(4), options={'particles': 10**12}).ask()",
    ],
)
def test_huge_batches_raise_instead_of_aborting(code):
    """Issue 17 item 6: these aborted the process. In a subprocess: an abort fails the test."""
    script = textwrap.dedent(
        f"""
        import numpy as np
        from optcore import zo
        f = lambda x: float(np.sum(x ** 2))
        try:
            {code}
        except (MemoryError, ValueError) as exc:
            print("RAISED", type(exc).__name__, exc)
        else:
            print("RETURNED")
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "RAISED" in r.stdout, r.stdout


@settings(max_examples=30)
@given(st.integers(0, 2**32), st.sampled_from(["gaussian", "cbo", "rank"]))
def test_determinism_across_workers(seed, method):
    f = zo.functions.sphere
    a = zo.minimize(f, np.full(3, 2.0), method=method, rng=seed, maxfev=200, workers=1, warn=False)
    b = zo.minimize(f, np.full(3, 2.0), method=method, rng=seed, maxfev=200, workers=4, warn=False)
    assert np.array_equal(a.x, b.x) and a.fun == b.fun and a.nfev == b.nfev


# Fuzz-found cases (issue 17 item 11): every bad argument is a named TypeError/ValueError.


@pytest.mark.parametrize("bad", ["abc", 1j, [1.0, 2.0], True])
def test_f_target_not_a_number_is_named(bad):
    with pytest.raises((TypeError, ValueError), match="f_target"):
        zo.minimize(lambda x: float(x @ x), np.ones(3), f_target=bad, maxfev=100, warn=False)


def test_f_target_huge_int_is_a_target_beyond_every_value():
    res = zo.minimize(lambda x: float(x @ x), np.ones(3), f_target=10**400, maxfev=100, rng=0, warn=False)
    assert res.status == 0 and res.nfev <= 100


@pytest.mark.parametrize("bad", ["abc", 3.0, [1.0]])
def test_bounds_not_a_pair_is_named(bad):
    with pytest.raises((TypeError, ValueError), match="bounds"):
        zo.rank_minimize(zo.ranking_oracle(lambda x: float(x @ x)), np.ones(3), bounds=bad, maxiter=5, warn=False)


def test_gradient_names_fun_and_x():
    with pytest.raises(TypeError, match="fun"):
        zo.gradient(None, np.ones(3))
    with pytest.raises(ValueError, match="`x`"):
        zo.gradient(lambda x: float(x @ x), np.array([np.nan, 1.0]))
    # Finite x where the objective overflows: the point is what to change.
    with pytest.raises(ValueError, match="`x`"):
        zo.gradient(lambda x: float(x @ x), np.full(3, 1e300), rng=0)


@pytest.mark.parametrize("bad", [None, "abc", np.ones(3), [[1.0] * 4]])
def test_tell_values_are_named(bad):
    opt = zo.Optimizer("sphere", np.ones(3), rng=0)
    X = opt.ask()
    with pytest.raises((TypeError, ValueError), match="values"):
        opt.tell(X, bad)


def test_cbo_in_a_zero_width_box_is_not_an_init_std_error():
    """bounds with lower == upper: the default init_std (a quarter of the box width) was 0 and
    raised a ValueError naming options['init_std'], an option the user never gave."""
    res = zo.minimize(
        lambda x: float(x @ x), np.ones(2), method="cbo", bounds=(0.0, 0.0), maxfev=500, rng=0, warn=False
    )
    assert np.array_equal(res.x, np.zeros(2)) and res.fun == 0.0


@pytest.mark.parametrize(("x0", "kw"), [(np.full(3, 1.09e308), {}), (np.ones(3), {"decay": 1e300})])
def test_rank_minimize_overflow_is_status_4_with_a_finite_x(x0, kw):
    """The iterate overflowed to inf and the run reported status 0 ("the step fell below xtol")."""
    oracle = zo.ranking_oracle(lambda x: float(np.sum(np.asarray(x) ** 2)))
    with np.errstate(over="ignore"):
        res = zo.rank_minimize(oracle, x0, maxiter=100, rng=0, warn=False, **kw)
    assert res.status in (1, 4) and not res.success
    assert np.all(np.isfinite(res.x))


def test_tell_nan_names_values():
    from optcore.exceptions import NumericalError

    opt = zo.Optimizer("sphere", np.ones(3), rng=0)
    X = opt.ask()
    with pytest.raises(NumericalError, match="values"):
        opt.tell(X, np.r_[np.nan, np.ones(X.shape[0] - 1)])
