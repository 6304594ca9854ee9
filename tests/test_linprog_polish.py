"""optcore.linprog's polish and singleton-row presolve (issue 19, "answers to the last digit").

After PDHG converges, the polish solves the guessed active set's reduced systems; it is kept only
when the measured relative KKT error drops, and never changes a status. Checked here against
HiGHS (``scipy.optimize.linprog(method="highs")``) to 1e-9: SciPy's documentation and tutorial
LPs, Hypothesis LPs built around a chosen nondegenerate vertex with strictly complementary duals
(unique primal and dual optimum), small Netlib problems; Hypothesis LPs of every status for
"never worse, never another status"; the option ``polish=False``; and singleton rows in presolve
(bounds, infeasibility naming the row, the row duals HiGHS reports).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog as scipy_linprog

import optcore
from optcore import _linprog_polish
from optcore import testing as kit

AGREE = 1e-9
NETLIB = os.path.join(os.path.dirname(__file__), "..", "data", "netlib")


def close(a, b, tol=AGREE):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= tol * (1.0 + np.abs(b))))


def assert_same_as_highs(res, ref, *, duals=True):
    """x, fun, slack, con and (with ``duals``) every marginal equal HiGHS's to 1e-9."""
    assert res.status == ref.status == 0, (res.message, ref.message)
    assert close(res.fun, ref.fun), (res.fun, ref.fun)
    assert close(res.x, ref.x), (res.x, ref.x)
    assert close(res.slack, ref.slack), (res.slack, ref.slack)
    assert close(res.con, ref.con), (res.con, ref.con)
    if duals:
        for part in ("ineqlin", "eqlin", "lower", "upper"):
            assert close(res[part].marginals, ref[part].marginals), (part, res[part].marginals, ref[part].marginals)


def both(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optcore.linprog(**kw), scipy_linprog(**kw, method="highs")


# --- SciPy's documentation and tutorial LPs ---------------------------------------------------

TEXTBOOK = {
    # linprog's docstring: x0 free, x1 >= -3
    "docstring": dict(c=[-1, 4], A_ub=[[-3, 1], [1, 2]], b_ub=[6, 4], bounds=[(None, None), (-3, None)]),
    # the optimization tutorial's linprog section, with its feasible bound x1 <= 6 (bounds of every kind)
    "tutorial": dict(
        c=[-29.0, -45.0, 0.0, 0.0],
        A_ub=[[1.0, -1.0, -3.0, 0.0], [-2.0, 3.0, 7.0, -3.0]],
        b_ub=[5.0, -10.0],
        A_eq=[[2.0, 8.0, 1.0, 0.0], [4.0, 4.0, 0.0, 1.0]],
        b_eq=[60.0, 60.0],
        bounds=[(0, None), (0, 6.0), (-np.inf, 0.5), (-3.0, None)],
    ),
    # the README's example
    "readme": dict(c=[-1, -1], A_ub=[[1, 2], [3, 1]], b_ub=[4, 6]),
    # SciPy's test suite's nontrivial problem (issue 19's reproducer), bounds=None is x >= 0
    "nontrivial": dict(
        c=[-1, 8, 4, -6],
        A_ub=[[-7, -7, 6, 9], [1, -1, -3, 0], [10, -10, -7, 7], [6, -1, 3, 4]],
        b_ub=[-3, 6, -6, 6],
        A_eq=[[-10, 1, 1, -8]],
        b_eq=[-4],
        bounds=None,
    ),
    # the textbook Wyndor Glass LP (two singleton rows among its three)
    "wyndor": dict(c=[-3, -5], A_ub=[[1, 0], [0, 2], [3, 2]], b_ub=[4, 12, 18]),
}


@pytest.mark.parametrize("name", list(TEXTBOOK))
def test_textbook_lps_equal_highs_to_the_last_digits(name):
    res, ref = both(**TEXTBOOK[name])
    assert res.polished, res.message
    assert "Polished" in res.message
    assert_same_as_highs(res, ref)
    assert max(res.rel_primal, res.rel_dual, res.rel_gap) <= 1e-12


def test_the_issue_example_reads_1_not_0_99999927():
    # issue 19: at tol=1e-6 a two-variable LP returned 0.99999927 where HiGHS returns 1.0
    kw = dict(c=[-1, -1], A_ub=[[1, 1], [1, -1]], b_ub=[1, 0.5])
    res, ref = both(**kw)
    assert res.fun == pytest.approx(ref.fun, rel=1e-12, abs=1e-14)
    unpolished = optcore.linprog(**kw, options={"polish": False})
    assert abs(res.fun - ref.fun) <= abs(unpolished.fun - ref.fun)


# --- Hypothesis: unique nondegenerate optima ----------------------------------------------------


@st.composite
def unique_vertex_lps(draw):
    """An LP with a chosen vertex x* (k variables strictly inside [0, 5], the rest at 0 or 5)
    whose k active rows (equalities and tight inequalities) have a nonsingular k x k block on
    the inner variables, and strictly complementary duals (tight rows' duals and the bound
    variables' reduced costs bounded away from 0): the primal and dual optima are unique."""
    ints = st.integers(-4, 4)
    n = draw(st.integers(1, 6))
    k = draw(st.integers(0, n))
    m_eq = draw(st.integers(0, k))
    m_act = k - m_eq
    m_free = draw(st.integers(0, 3))
    m_ub = m_act + m_free
    m = m_ub + m_eq
    A = np.array(draw(st.lists(ints, min_size=m * n, max_size=m * n)), float).reshape(m, n)
    perm = np.array(draw(st.permutations(range(n))))
    inner, outer = perm[:k], perm[k:]
    act = np.r_[np.arange(m_act), m_ub + np.arange(m_eq)]  # tight A_ub rows, then every A_eq row
    if k:
        block = A[np.ix_(act, inner)]
        # make the active block nonsingular: add a diagonal that dominates it
        A[np.ix_(act, inner)] = block + np.diag(np.where(np.diag(block) >= 0, 10.0, -10.0))
        if abs(np.linalg.det(A[np.ix_(act, inner)])) < 1.0:
            A[np.ix_(act, inner)] += 10.0 * np.eye(k)
    x = np.zeros(n)
    x[inner] = np.array(draw(st.lists(st.integers(1, 9), min_size=k, max_size=k)), float) / 2.0
    at_ub = np.array(draw(st.lists(st.booleans(), min_size=n - k, max_size=n - k)), bool)
    x[outer] = np.where(at_ub, 5.0, 0.0)
    slack = np.array(draw(st.lists(st.integers(1, 5), min_size=m_free, max_size=m_free)), float)
    b = A @ x
    b[m_act:m_ub] += slack
    y = np.zeros(m)
    y[:m_act] = -np.array(draw(st.lists(st.integers(1, 6), min_size=m_act, max_size=m_act)), float) / 2.0
    y_eq = np.array(draw(st.lists(st.integers(1, 6), min_size=m_eq, max_size=m_eq)), float) / 2.0
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=m_eq, max_size=m_eq)), float)
    y[m_ub:] = y_eq * signs
    r = np.zeros(n)
    mag = np.array(draw(st.lists(st.integers(1, 6), min_size=n - k, max_size=n - k)), float) / 2.0
    r[outer] = np.where(at_ub, -mag, mag)
    c = A.T @ y + r
    kw = dict(c=c, bounds=(0, 5))
    if m_ub:
        kw.update(A_ub=A[:m_ub], b_ub=b[:m_ub])
    if m_eq:
        kw.update(A_eq=A[m_ub:], b_eq=b[m_ub:])
    return kw, x, y


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(unique_vertex_lps())
def test_unique_optima_equal_highs_with_polish(case):
    kw, x_star, _ = case
    res, ref = both(**kw)
    assert ref.status == 0 and close(ref.x, x_star, 1e-9)
    assert res.polished or res.get("presolved") or "already" in res.message, res.message
    assert_same_as_highs(res, ref)


# --- Hypothesis: never worse, never another status ----------------------------------------------


def _err(problem, res) -> float:
    k = kit.lp_kkt(problem, res)
    return max(k["rel_primal"], k["rel_dual"], k["rel_gap"])


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(kit.linear_programs(statuses=(0, 2, 3)))
def test_polish_never_worsens_the_kkt_error_nor_changes_the_status(p):
    kw = dict(c=p.c, A_ub=p.A_ub, b_ub=p.b_ub, A_eq=p.A_eq, b_eq=p.b_eq, bounds=p.bounds, warn=False)
    on = optcore.linprog(**kw)
    off = optcore.linprog(**kw, options={"polish": False})
    assert on.status == off.status, (on.message, off.message)
    assert not off.polished
    if on.status != 0 or not on.polished:
        assert np.array_equal(on.x, off.x)
        assert "Polished" not in on.message
        return
    assert _err(p, on) <= _err(p, off) * (1 + 1e-9) + 1e-15
    assert max(on.rel_primal, on.rel_dual, on.rel_gap) < max(off.rel_primal, off.rel_dual, off.rel_gap)
    assert kit.check_result(on, p, tol=1e-6) == []


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("duplicate_row", [False, True])
def test_rank_deficient_degenerate_transport_lps_polish_to_machine_precision(seed, duplicate_row):
    # A transportation LP: m + n equality rows of rank m + n - 1 (one more, a copy, with
    # duplicate_row), a degenerate vertex; the least-norm systems need no basis to be picked.
    rng = np.random.default_rng(seed)
    m, n = 4, 5
    cost = rng.integers(1, 10, (m, n)).astype(float).ravel()
    a, b = rng.integers(1, 6, m).astype(float), rng.integers(1, 6, n).astype(float)
    b *= a.sum() / b.sum()
    A = sp.vstack([sp.kron(sp.eye_array(m), np.ones((1, n))), sp.kron(np.ones((1, m)), sp.eye_array(n))]).tocsr()
    rhs = np.r_[a, b]
    if duplicate_row:
        A, rhs = sp.vstack([A, A[:1]]).tocsr(), np.r_[rhs, a[:1]]
    res, ref = both(c=cost, A_eq=A, b_eq=rhs)
    assert res.status == 0 and res.polished, res.message
    assert max(res.rel_primal, res.rel_dual, res.rel_gap) <= 1e-14
    assert close(res.fun, ref.fun)
    assert _err_of(res, cost, A, rhs) <= 1e-14


def _err_of(res, c, A_eq, b_eq) -> float:
    p = kit.LinearProgram(c, None, None, A_eq.toarray(), b_eq, (0, None), 0, None)
    with np.errstate(invalid="ignore"):  # lp_kkt's inf * 0 on the infinite upper bounds, masked out
        return _err(p, res)


# --- the option, the size limit, the fields ---------------------------------------------------


def test_polish_false_is_honored():
    kw = dict(c=[-1, -1], A_ub=[[1, 2], [3, 1]], b_ub=[4, 6])
    off = optcore.linprog(**kw, options={"polish": False})
    assert off.status == 0 and off.polished is False
    assert "olished" not in off.message
    assert off.phase_times["polish"] == 0.0
    on = optcore.linprog(**kw)
    assert on.polished is True and on.phase_times["polish"] > 0.0
    assert max(on.rel_primal, on.rel_dual, on.rel_gap) < max(off.rel_primal, off.rel_dual, off.rel_gap)
    with pytest.raises(ValueError, match="polish"):
        optcore.linprog(**kw, options={"polish": "yes"})


def test_no_polish_on_a_limit_status():
    res = optcore.linprog([-1, -1], A_ub=[[1, 2], [3, 1]], b_ub=[4, 6], maxiter=3, warn=False)
    assert res.status == 1 and not res.polished and "olished" not in res.message


def test_a_system_over_the_size_limit_is_not_polished(monkeypatch):
    monkeypatch.setattr(_linprog_polish, "MAX_SIZE", 1)
    res = optcore.linprog([-1, -1], A_ub=[[1, 2], [3, 1]], b_ub=[4, 6])
    assert res.status == 0 and not res.polished
    assert "Not polished (the active system has" in res.message


# --- small Netlib problems ----------------------------------------------------------------------


def _netlib(name):
    d = np.load(os.path.join(NETLIB, name + ".npz"))

    def csr(p):
        return sp.csr_array((d[p + "_data"], d[p + "_indices"], d[p + "_indptr"]), shape=tuple(d[p + "_shape"]))

    return dict(
        c=d["c"], A_ub=csr("A_ub"), b_ub=d["b_ub"], A_eq=csr("A_eq"), b_eq=d["b_eq"], bounds=np.c_[d["lb"], d["ub"]]
    )


@pytest.mark.parametrize("name", ["AFIRO", "SC50A", "BLEND", "SC105"])
def test_small_netlib_objectives_equal_highs(name):
    res, ref = both(**_netlib(name))
    assert res.status == 0 and res.polished, res.message
    assert close(res.fun, ref.fun), (res.fun, ref.fun)


# --- singleton rows in presolve -------------------------------------------------------------------

SINGLETONS = {
    # x0 >= 1 (as -x0 <= -1) and x1 <= 3: both bounds from rows, both rows carry the duals
    "ub-rows": dict(c=[1, -2], A_ub=[[-1, 0], [0, 1]], b_ub=[-1, 3]),
    # an equality singleton with a negative coefficient fixes x2 = -0.5 (free bounds)
    "eq-row": dict(
        c=[1, -2, 0.5],
        A_ub=[[-1, 0, 0], [0, 2, 0]],
        b_ub=[-1, 3],
        A_eq=[[0, 0, -4]],
        b_eq=[2],
        bounds=[(0, None), (0, None), (None, None)],
    ),
    # a looser singleton than the variable's own bound: the bound keeps the marginal
    "looser-row": dict(c=[1, 1], A_ub=[[-1, 0], [0, -1]], b_ub=[-1, 5], bounds=[(0, None), (2, None)]),
    # a variable in no row next to singleton-bounded ones
    "no-row": dict(c=[-1, 2, 0], A_ub=[[3, 0, 0]], b_ub=[6], bounds=[(0, None), (1, 4), (0, 1)]),
}


@pytest.mark.parametrize("name", list(SINGLETONS))
def test_singleton_rows_settled_in_presolve_equal_highs(name):
    res, ref = both(**SINGLETONS[name])
    assert res.nit == 0 and res.presolved, res.message
    assert "solved in presolve" in res.message
    assert_same_as_highs(res, ref)


def test_an_infeasible_singleton_row_is_status_2_naming_the_row():
    kw = dict(c=[1, -2], A_ub=[[-1, 0], [0, 1], [1, 0]], b_ub=[-1, 3, 0.5])
    res, ref = both(**kw)
    assert res.status == ref.status == 2 and res.nit == 0
    assert "row 0 of `A_ub`" in res.message and "row 2 of `A_ub`" in res.message, res.message
    # against a variable's own bound: only the row is named
    res = optcore.linprog([1], A_eq=[[2]], b_eq=[-4])
    assert res.status == 2 and "row 0 of `A_eq`" in res.message and res.nit == 0


def test_singletons_beside_other_rows_are_solved_and_polished():
    res, ref = both(**TEXTBOOK["wyndor"])
    assert res.nit > 0 and not res.get("presolved")
    assert_same_as_highs(res, ref)


def test_a_singleton_unbounded_direction_is_status_3():
    res, ref = both(c=[-1, 1], A_ub=[[-1, 0], [0, 1]], b_ub=[2, 3], bounds=(None, None))
    assert res.status == ref.status == 3 and res.nit == 0


def test_continued_iterations_reach_the_callback_and_respect_maxiter():
    # SCAGR7: PDHG's 1e-6 point leaves slack a row that is tight at the optimum, so the polish
    # continues PDHG; the callback sees those iterations counted on, and nit stays <= maxiter.
    prob = _netlib("SCAGR7")
    seen = []
    res = optcore.linprog(**prob, callback=lambda r: seen.append(r.nit))
    assert res.status == 0 and res.polished and "more PDHG iterations" in res.message, res.message
    assert seen == sorted(seen) and res.nit >= seen[-1]
    first = optcore.linprog(**prob, options={"polish": False}).nit
    assert res.nit > first
    capped = optcore.linprog(**prob, maxiter=first + 100, warn=False)
    assert capped.status == 0 and capped.nit <= first + 100


def test_a_callback_stop_in_the_continued_iterations_is_status_99():
    prob = _netlib("SCAGR7")
    first = optcore.linprog(**prob, options={"polish": False}).nit

    def stop(r):
        if r.nit > first:
            raise StopIteration

    res = optcore.linprog(**prob, callback=stop)
    assert res.status == 99 and not res.success, res.message
    assert "callback" in res.message


@st.composite
def singleton_lps(draw):
    """LPs whose rows are all singletons (so presolve settles them): random bounds, rows of both
    kinds and coefficient signs, integer data (ties between bounds are exact)."""
    n = draw(st.integers(1, 4))
    bounds = draw(
        st.lists(st.sampled_from([(0, None), (None, None), (-2, 3), (1, 1), (None, 4)]), min_size=n, max_size=n)
    )
    c = np.array(draw(st.lists(st.sampled_from([-3, -2, -1, 0, 1, 2, 3, -1, 1]), min_size=n, max_size=n)), float)
    kind = st.sampled_from([False, False, False, True])  # an equality row one time in four
    rows = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.sampled_from([-3, -2, -1, 1, 2, 3]), st.integers(-6, 6), kind),
            min_size=1,
            max_size=5,
        )
    )
    A_ub, b_ub, A_eq, b_eq = [], [], [], []
    for j, a, b, eq in rows:
        row = np.zeros(n)
        row[j] = a
        (A_eq if eq else A_ub).append(row)
        (b_eq if eq else b_ub).append(float(b))
    kw = dict(c=c, bounds=bounds)
    if A_ub:
        kw.update(A_ub=np.array(A_ub), b_ub=np.array(b_ub))
    if A_eq:
        kw.update(A_eq=np.array(A_eq), b_eq=np.array(b_eq))
    return kw


def _bound_ties(kw) -> bool:
    """True when a variable's tightest lower or upper bound comes from two sources (its own bound
    and a row, or two rows): the duals are then not unique."""
    n = len(kw["c"])
    lo = [[-np.inf if b[0] is None else b[0]] for b in kw["bounds"]]
    hi = [[np.inf if b[1] is None else b[1]] for b in kw["bounds"]]
    for A, b, eq in ((kw.get("A_ub"), kw.get("b_ub"), False), (kw.get("A_eq"), kw.get("b_eq"), True)):
        for row, bi in zip(A if A is not None else [], b if b is not None else []):
            j = int(np.nonzero(row)[0][0])
            a = row[j]
            lo_i, hi_i = (bi / a if eq else -np.inf, bi / a) if a > 0 else (bi / a, bi / a if eq else np.inf)
            lo[j].append(lo_i)
            hi[j].append(hi_i)
    return any(lo[j].count(max(lo[j])) > 1 or hi[j].count(min(hi[j])) > 1 for j in range(n))


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(singleton_lps())
def test_singleton_row_lps_settled_in_presolve_agree_with_highs(kw):
    res, ref = both(**kw)
    assert res.nit == 0 and res.presolved, res.message
    assert res.status == ref.status, (res.message, ref.message)
    if ref.status != 0:
        return
    assert close(res.fun, ref.fun), (res.fun, ref.fun)
    unique_x = np.asarray(kw["c"]) != 0
    assert close(res.x[unique_x], ref.x[unique_x]), (res.x, ref.x)
    if not _bound_ties(kw) and np.all(unique_x):
        for part in ("ineqlin", "eqlin", "lower", "upper"):
            assert close(res[part].marginals, ref[part].marginals), (part, res[part].marginals, ref[part].marginals)
