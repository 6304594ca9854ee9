"""optcore.linprog as a drop-in for scipy.optimize.linprog (issue 19, first part).

SciPy's documented behaviours, one by one, each compared with ``scipy.optimize.linprog``
(method ``"highs"``): the forms of ``bounds``, ``options`` (names, tolerances, unknown names),
warnings, the callback's fields, the problems that presolve settles, the statuses of
inconsistent bounds, and ``integrality``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import OptimizeWarning
from scipy.optimize import linprog as scipy_linprog

import optcore
from optcore import testing as kit

# SciPy's documentation example (linprog's docstring): x0 free, x1 >= -3, fun = -22.
DOC = dict(c=[-1, 4], A_ub=[[-3, 1], [1, 2]], b_ub=[6, 4])
DOC_BOUNDS = [(None, None), (-3, None)]

# Issue 19's reproducer: bounds=None means (0, None), not free variables.
ISSUE19 = dict(
    c=[-1, 8, 4, -6],
    A_ub=[[-7, -7, 6, 9], [1, -1, -3, 0], [10, -10, -7, 7], [6, -1, 3, 4]],
    b_ub=[-3, 6, -6, 6],
    A_eq=[[-10, 1, 1, -8]],
    b_eq=[-4],
)


def _quiet(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizeWarning)
        return optcore.linprog(**kw)


def _agree(res, ref, rtol=1e-6):
    assert res.status == ref.status, (res.message, ref.message)
    if ref.status == 0:
        assert abs(res.fun - ref.fun) <= rtol * (1 + abs(ref.fun)), (res.fun, ref.fun)


def test_issue19_bounds_none_means_nonnegative():
    ref = scipy_linprog(**ISSUE19, bounds=None)
    res = _quiet(**ISSUE19, bounds=None, tol=1e-9)
    assert ref.status == 0 and abs(ref.fun - 5.0920) < 1e-3
    _agree(res, ref)
    assert np.all(res.x >= 0)


@pytest.mark.parametrize(
    "bounds",
    [None, [], [[]], np.empty((0, 2)), (0, None), [0, None], [(0, None)], [(0, None)] * 4, np.array([[0, np.inf]] * 4)],
    ids=["None", "[]", "[[]]", "empty-array", "pair", "list-pair", "one-pair", "n-pairs", "array"],
)
def test_default_bounds_forms(bounds):
    ref = scipy_linprog(**ISSUE19, bounds=(0, None))
    _agree(_quiet(**ISSUE19, bounds=bounds, tol=1e-9), ref)


@pytest.mark.parametrize(
    "bounds",
    [
        DOC_BOUNDS,
        [(-np.inf, np.inf), (-3, np.inf)],
        [(-1e20, 1e20), (-3, 1e30)],
        np.array([[-np.inf, np.inf], [-3, np.inf]]),
    ],
)
def test_none_inside_a_pair_is_infinite(bounds):
    ref = scipy_linprog(**DOC, bounds=DOC_BOUNDS)
    res = _quiet(**DOC, bounds=bounds, tol=1e-9)
    _agree(res, ref)
    assert abs(res.fun + 22.0) < 1e-7


def test_pair_as_column_and_2xn_like_scipy():
    ref = scipy_linprog(**DOC, bounds=[[-3], [5]])
    _agree(_quiet(**DOC, bounds=[[-3], [5]], tol=1e-9), ref)
    with pytest.raises(ValueError, match="bounds"):
        optcore.linprog([1, 2, 3], bounds=[(0, 1, 2)] * 3)


@pytest.mark.parametrize(
    "bounds, why",
    [
        ([(0, 1), (2, 1)], "variable 1 a lower bound 2 > its upper bound 1"),
        ([(0, 1), (np.inf, None)], "variable 1 a lower bound of +inf"),
        ([(None, -np.inf), (0, 1)], "variable 0 an upper bound of -inf"),
    ],
)
def test_inconsistent_bounds_are_status_2_not_errors(bounds, why):
    ref = scipy_linprog([1, 2], bounds=bounds)
    res = _quiet(c=[1, 2], bounds=bounds)
    assert ref.status == 2
    assert res.status == 2 and not res.success and res.nit == 0
    assert why in res.message and "`bounds`" in res.message
    assert kit.check_generic(res) == []


def test_nan_bounds_raise_naming_bounds():
    with pytest.raises(ValueError, match="`bounds`"):
        optcore.linprog([1, 2], bounds=[(0, np.nan), (0, 1)])


# ----------------------------------------------------------------------------------------------
# options
# ----------------------------------------------------------------------------------------------


def test_scipys_option_names_are_accepted_without_warning():
    opts = dict(
        maxiter=100_000,
        disp=False,
        time_limit=30.0,
        presolve=True,
        dual_feasibility_tolerance=1e-8,
        primal_feasibility_tolerance=1e-8,
        ipm_optimality_tolerance=1e-8,
        simplex_dual_edge_weight_strategy="steepest",
        mip_rel_gap=1e-4,
    )
    ref = scipy_linprog(**DOC, bounds=DOC_BOUNDS, options=opts)
    res = _quiet(**DOC, bounds=DOC_BOUNDS, options=opts)
    _agree(res, ref, rtol=1e-7)


def test_tolerance_options_set_tol():
    res = _quiet(**ISSUE19, options={"primal_feasibility_tolerance": 1e-9, "dual_feasibility_tolerance": 1e-7})
    assert res.status == 0 and max(res.rel_primal, res.rel_dual, res.rel_gap) <= 1e-9
    loose = _quiet(**ISSUE19, options={"primal_feasibility_tolerance": 1e-3})
    assert loose.status == 0 and loose.nit <= res.nit
    # the keyword wins over the options
    kw = _quiet(**ISSUE19, tol=1e-3, options={"primal_feasibility_tolerance": 1e-9})
    assert kw.nit == loose.nit and np.array_equal(kw.x, loose.x)
    with pytest.raises(ValueError, match="primal_feasibility_tolerance"):
        optcore.linprog(**ISSUE19, options={"primal_feasibility_tolerance": -1.0})


def test_maxiter_option_gives_status_1():
    ref = scipy_linprog(**ISSUE19, options={"maxiter": 1})
    res = optcore.linprog(**ISSUE19, options={"maxiter": 1, "check_every": 1}, warn=False)
    assert ref.status == 1 and res.status == 1 and res.nit <= 1


@pytest.mark.parametrize("options", [{"no_such_option": 1}, {"": None}, {"maxiter": 10**6, "autoscale": True}])
def test_unknown_options_warn_and_are_ignored(options):
    with pytest.warns(OptimizeWarning, match="Unrecognized options"):
        ref = scipy_linprog(**DOC, bounds=DOC_BOUNDS, options=options)
    with pytest.warns(OptimizeWarning, match="Unrecognized options detected"):
        res = optcore.linprog(**DOC, bounds=DOC_BOUNDS, options=options)
    base = optcore.linprog(**DOC, bounds=DOC_BOUNDS)
    _agree(res, ref)
    assert np.array_equal(res.x, base.x) and res.nit == base.nit


@pytest.mark.parametrize("options", ["fast", [("maxiter", 1)], 3, {1: 2}])
def test_options_not_a_dict_is_a_type_error(options):
    with pytest.raises(TypeError, match="`options`"):
        optcore.linprog(**DOC, options=options)


# ----------------------------------------------------------------------------------------------
# integrality
# ----------------------------------------------------------------------------------------------


def test_integrality_warns_and_solves_the_relaxation():
    c, A, b = [-1, -1], [[2, 1], [1, 2]], [3, 3]
    with pytest.warns(OptimizeWarning, match="Ignoring `integrality`"):
        ref = scipy_linprog(c, A, b, integrality=[1, 1], method="highs-ds")
    with pytest.warns(OptimizeWarning, match="Ignoring `integrality`"):
        res = optcore.linprog(c, A, b, integrality=[1, 1], tol=1e-9)
    _agree(res, ref)
    assert abs(res.fun + 2.0) < 1e-8  # the relaxation's optimum (the integer one is -2 too, at another x)
    assert "relaxation" in res.message
    assert scipy_linprog(c, A, b, integrality=1).status == 0  # HiGHS's MIP, for reference
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizeWarning)
        assert "relaxation" not in optcore.linprog(c, A, b, integrality=[0, 0]).message
    with pytest.raises(ValueError, match="integrality"):
        optcore.linprog(c, A, b, integrality=[1, 1, 1])


# ----------------------------------------------------------------------------------------------
# callback
# ----------------------------------------------------------------------------------------------


def test_callback_gets_scipys_intermediate_fields():
    seen = []
    optcore.linprog(**ISSUE19, callback=seen.append, options={"check_every": 16}, tol=1e-8)
    assert seen
    A, b = np.array(ISSUE19["A_ub"], float), np.array(ISSUE19["b_ub"], float)
    Aeq, beq = np.array(ISSUE19["A_eq"], float), np.array(ISSUE19["b_eq"], float)
    for r in seen:
        for key in ("x", "fun", "success", "slack", "con", "phase", "status", "nit", "message", "complete"):
            assert key in r, key
        for key in ("rel_primal", "rel_dual", "rel_gap"):
            assert key in r, key
        assert r.status == 0 and r.success is False and r.complete is False
        np.testing.assert_allclose(r.slack, b - A @ r.x, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(r.con, beq - Aeq @ r.x, rtol=1e-12, atol=1e-12)
        assert r.fun == float(np.asarray(ISSUE19["c"], float) @ r.x)


# ----------------------------------------------------------------------------------------------
# problems that presolve settles: answered before iterating, nit == 0
# ----------------------------------------------------------------------------------------------

PRESOLVED = {
    "all-fixed": dict(c=[1, 2], A_ub=[[1, 1]], b_ub=[5], bounds=[(1, 1), (2, 2)]),
    "all-fixed-infeasible": dict(c=[1, 2], A_ub=[[1, 1]], b_ub=[2], bounds=[(1, 1), (2, 2)]),
    "all-fixed-eq": dict(c=[1, -2], A_eq=[[1, 1]], b_eq=[3], bounds=[(1, 1), (2, 2)]),
    "no-rows": dict(c=[1, 2]),
    "no-rows-mixed-signs": dict(c=[1, -2, 0], bounds=[(-1, 4), (0, 3), (-5, 5)]),
    "no-rows-unbounded": dict(c=[1, -2]),
    "zero-row-infeasible": dict(c=[1, 1], A_ub=[[0, 0]], b_ub=[-1]),
    "zero-eq-row-infeasible": dict(c=[1, 1], A_eq=[[0, 0]], b_eq=[1]),
    "zero-row-in-a-real-problem": dict(c=[1, 1], A_ub=[[1, 2], [0, 0]], b_ub=[4, -1]),
    "zero-rows-feasible": dict(c=[1, -1], A_ub=[[0, 0]], b_ub=[1], A_eq=[[0, 0]], b_eq=[0], bounds=(0, 2)),
    "empty-column-unbounded": dict(c=[-1, 1], A_ub=[[0, 0]], b_ub=[1]),
    "empty-column-and-infeasible-zero-row": dict(c=[-1, 1], A_ub=[[0, 1], [0, 0]], b_ub=[1, -1]),
    "fixed-and-empty": dict(c=[-1, 3], A_ub=[[0, 2]], b_ub=[4], bounds=[(0, 7), (1, 1)]),
}


@pytest.mark.parametrize("name", list(PRESOLVED))
def test_presolve_settles(name):
    prob = PRESOLVED[name]
    ref = scipy_linprog(**prob)
    res = _quiet(**prob)
    assert res.nit == 0 and res.presolved, res.message
    _agree(res, ref, rtol=1e-12)
    assert kit.check_generic(res) == []
    if ref.status == 0:
        np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=0)
        assert res.rel_primal == res.rel_dual == res.rel_gap == 0.0
        problem = kit.LinearProgram(
            **{k: prob.get(k) for k in ("c", "A_ub", "b_ub", "A_eq", "b_eq")},
            bounds=prob.get("bounds", (0, None)),
            status=0,
            fun=ref.fun,
        )
        assert kit.check_result(res, problem) == []
        np.testing.assert_allclose(res.lower.marginals, ref.lower.marginals, atol=1e-12)
        np.testing.assert_allclose(res.upper.marginals, ref.upper.marginals, atol=1e-12)


def test_presolve_off_iterates():
    prob = PRESOLVED["all-fixed"]
    res = _quiet(**prob, options={"presolve": False})
    assert res.status == 0 and "presolved" not in res and abs(res.fun - 5.0) < 1e-5


# ----------------------------------------------------------------------------------------------
# errors name the argument at fault
# ----------------------------------------------------------------------------------------------


def test_size_mismatch_names_matrix_and_vector():
    with pytest.raises(ValueError, match=r"`b_ub`.*`A_ub`"):
        optcore.linprog([1, 2], b_ub=[1, 2])
    with pytest.raises(ValueError, match=r"`b_eq`.*`A_eq`"):
        optcore.linprog([1, 2], A_eq=[[1, 1]])
    with pytest.raises(ValueError, match=r"`b_ub`.*`A_ub`"):
        optcore.linprog([1, 2], A_ub=[[1, 1]], b_ub=[1, 2])


def test_huge_time_limit_is_no_limit():
    res = _quiet(**DOC, bounds=DOC_BOUNDS, time_limit=10**400)
    assert res.status == 0
    with pytest.raises(ValueError, match="time_limit"):
        optcore.linprog(**DOC, time_limit=-(10**400))


# ----------------------------------------------------------------------------------------------
# property: the kit's LPs, with some variables fixed and some columns emptied, against HiGHS
# ----------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    problem=kit.linear_programs(max_vars=4, max_rows=3, statuses=(0,), scales=(1.0,)),
    fix=st.lists(st.booleans(), min_size=4, max_size=4),
    empty=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_fixed_and_empty_columns_agree_with_highs(problem, fix, empty):
    n = len(problem.c)
    lb, ub = problem.bounds_arrays()
    bounds = [(lb[j], lb[j]) if fix[j] else (lb[j], ub[j]) for j in range(n)]
    mats = {}
    for k in ("A_ub", "A_eq"):
        A = getattr(problem, k)
        if A is not None and np.size(A):
            A = np.array(A, float)
            A[:, np.array(empty[:n])] = 0.0
            mats[k] = A
    args = dict(c=problem.c, A_ub=mats.get("A_ub"), b_ub=problem.b_ub if "A_ub" in mats else None)
    args.update(A_eq=mats.get("A_eq"), b_eq=problem.b_eq if "A_eq" in mats else None, bounds=bounds)
    ref = scipy_linprog(**args)
    res = optcore.linprog(**args, tol=1e-8, time_limit=20, warn=False)
    _agree(res, ref, rtol=1e-5)
    assert kit.check_generic(res) == []
    if res.get("presolved") and ref.status == 0:
        assert res.nit == 0 and abs(res.fun - ref.fun) <= 1e-12 * (1 + abs(ref.fun))
    if res.status == 0:
        p = kit.LinearProgram(**{k: args[k] for k in ("c", "A_ub", "b_ub", "A_eq", "b_eq")}, bounds=bounds, fun=ref.fun)
        assert kit.check_result(res, p, tol=1e-8) == []


@pytest.mark.parametrize("slot", ["c", "A_ub", "b_ub", "x0"])
def test_ragged_input_names_the_argument(slot):
    kw = dict(DOC, bounds=DOC_BOUNDS)
    kw[slot] = [[1.0, 2.0], [3.0]]
    with pytest.raises(ValueError, match=f"`{slot}`"):
        optcore.linprog(**kw)


def test_huge_integers_name_the_argument_or_are_capped():
    with pytest.raises(ValueError, match="`tol`"):
        optcore.linprog(**DOC, tol=10**400)
    with pytest.raises(ValueError, match="tol_infeasible"):
        optcore.linprog(**DOC, options={"tol_infeasible": 10**400})
    with pytest.raises(ValueError, match="`workers`"):  # the shared rule: absurd thread counts are named
        optcore.linprog(**DOC, bounds=DOC_BOUNDS, workers=2**64)
    a = _quiet(**DOC, bounds=DOC_BOUNDS, workers=2)
    b = _quiet(**DOC, bounds=DOC_BOUNDS, workers=1)
    assert a.status == 0 and np.array_equal(a.x, b.x)
