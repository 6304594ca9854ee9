"""optcore.linprog: SciPy's interface, results against HiGHS, infeasibility and unboundedness,
warm starts, bad input, and a few Netlib problems."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog as scipy_linprog

import optcore
from optcore import linprog

NETLIB = Path(__file__).resolve().parents[1] / "data" / "netlib"


def small():
    return dict(c=[-1.0, -1.0], A_ub=[[1.0, 2.0], [3.0, 1.0]], b_ub=[4.0, 6.0])


def test_small_lp_matches_highs_with_duals():
    res = linprog(**small(), tol=1e-9)
    ref = scipy_linprog(**small())
    assert res.success and res.status == 0
    assert res.fun == pytest.approx(ref.fun, abs=1e-7)
    assert np.allclose(res.x, ref.x, atol=1e-6)
    assert np.allclose(res.ineqlin.marginals, ref.ineqlin.marginals, atol=1e-6)  # HiGHS's signs
    assert np.allclose(res.slack, ref.slack, atol=1e-6)
    assert np.allclose(res.lower.marginals, ref.lower.marginals, atol=1e-6)
    assert np.allclose(res.upper.marginals, 0) and res.eqlin.marginals.shape == (0,)
    for key in (
        "x",
        "fun",
        "slack",
        "con",
        "status",
        "success",
        "message",
        "nit",
        "ineqlin",
        "eqlin",
        "lower",
        "upper",
    ):
        assert key in res
    assert "KKT" in res.message


def random_lp(rng, m, n, kind="feasible"):
    """Feasible and bounded by construction (box bounds), or infeasible/unbounded."""
    A = rng.normal(size=(m, n))
    x = rng.uniform(0.2, 1.0, size=n)
    b = A @ x + rng.uniform(0.0, 1.0, size=m)
    c = rng.normal(size=n)
    bounds = [(0, 5)] * n
    if kind == "infeasible":
        # a row and its negation that cannot both hold
        A = np.vstack([A, A[:1], -A[:1]])
        b = np.r_[b, b[0] - 50.0, -(b[0] + 50.0)]
    if kind == "unbounded":
        A = np.abs(A)
        b = A @ x + 1.0
        c = -np.abs(c) - 0.1
        A = -A  # -|A| x <= b holds for every x >= 0
        bounds = [(0, None)] * n
        b = np.abs(b)
    return dict(c=c, A_ub=A, b_ub=b, bounds=bounds)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), m=st.integers(1, 12), n=st.integers(1, 10))
def test_random_feasible_lps_match_highs(seed, m, n):
    prob = random_lp(np.random.default_rng(seed), m, n)
    ref = scipy_linprog(**prob)
    res = linprog(**prob, tol=1e-8, maxiter=2_000_000, warn=False)
    assert ref.status == 0
    assert res.status == 0, res.message
    scale = 1 + abs(ref.fun)
    assert abs(res.fun - ref.fun) <= 1e-5 * scale
    A, b = np.asarray(prob["A_ub"]), np.asarray(prob["b_ub"])
    assert np.all(A @ res.x <= b + 1e-5 * (1 + np.abs(b)))
    assert np.all(res.x >= -1e-7) and np.all(res.x <= 5 + 1e-7)
    # complementary slackness: a row with slack carries (almost) no dual
    assert np.all(np.abs(res.ineqlin.marginals * res.slack) <= 1e-4 * scale)


@pytest.mark.parametrize("kind, status", [("infeasible", 2), ("unbounded", 3)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_infeasible_and_unbounded_match_highs(kind, status, seed):
    prob = random_lp(np.random.default_rng(seed), 6, 5, kind)
    assert scipy_linprog(**prob).status == status
    res = linprog(**prob, time_limit=30, warn=False)
    assert res.status == status, res.message
    assert not res.success


def test_argument_conventions_like_scipy():
    rng = np.random.default_rng(3)
    n = 4
    A = rng.uniform(0.5, 1.5, size=(3, n))
    b = A @ np.full(n, 0.5) + 0.3
    Aeq = np.ones((1, n))
    beq = [2.0]
    c = rng.normal(size=n)
    ref = scipy_linprog(c, A_ub=A, b_ub=b, A_eq=Aeq, b_eq=beq, bounds=(0, 1))
    forms = [
        dict(bounds=(0, 1)),
        dict(bounds=[(0, 1)] * n),
        dict(bounds=np.tile([0.0, 1.0], (n, 1))),
        dict(bounds=[[0, 1]]),
    ]
    mats = [A, sp.csr_array(A), sp.csc_matrix(A), sp.coo_array(A), A.tolist()]
    for form in forms:
        for M in mats:
            res = linprog(c, A_ub=M, b_ub=b, A_eq=Aeq, b_eq=beq, tol=1e-9, **form)
            assert res.success and res.fun == pytest.approx(ref.fun, abs=1e-6), (form, type(M))
    # only equalities; free variables (None); fixed variables (lb = ub); bounds at 1e20 are infinite
    res = linprog(
        [1.0, 1.0, 0.0], A_eq=[[1.0, -1.0, 0.0]], b_eq=[0.0], bounds=[(0, None), (None, 1e20), (2, 2)], tol=1e-9
    )
    assert res.success and np.allclose(res.x, [0.0, 0.0, 2.0], atol=1e-6)
    assert res.ineqlin.marginals.shape == (0,) and res.con.shape == (1,)
    res = linprog([1.0, -1.0], bounds=[(-1e20, 3), (None, 4)])  # no rows at all, free below
    assert res.status == 3  # x0 -> -inf
    res = linprog([1.0, -1.0], bounds=[(0, 3), (None, 4)], tol=1e-9)
    assert res.success and np.allclose(res.x, [0, 4], atol=1e-6)


def test_warm_start_from_the_optimum_stops_early():
    prob = random_lp(np.random.default_rng(5), 30, 20)
    cold = linprog(**prob, tol=1e-7)
    y0 = np.r_[cold.ineqlin.marginals, cold.eqlin.marginals]
    warm = linprog(**prob, tol=1e-7, x0=cold.x, y0=y0)
    assert warm.success and warm.nit <= 128 < cold.nit
    assert warm.fun == pytest.approx(cold.fun, abs=1e-5)


def test_limits_callback_and_disp(capsys):
    prob = random_lp(np.random.default_rng(6), 40, 30)
    with pytest.warns(optcore.ConvergenceWarning):
        res = linprog(**prob, tol=1e-12, maxiter=128)
    assert res.status == 1 and res.nit == 128 and "iteration limit" in res.message
    seen = []

    def cb(r):
        seen.append((r.nit, r.rel_primal))
        if len(seen) == 2:
            raise StopIteration

    res = linprog(**prob, tol=1e-12, callback=cb, disp=True)
    assert res.status == 99 and [s[0] for s in seen] == [64, 128]
    assert "optcore.linprog" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(c=[1, 2], A_ub=[[1, 2, 3]], b_ub=[1]), ValueError, "A_ub"),
        (dict(c=[1, 2], A_ub=[[1, 2]], b_ub=[1, 2]), ValueError, "b_ub"),
        (dict(c=[1, np.nan]), ValueError, "`c`"),
        (dict(c=[1, 2], A_eq=[[1, np.inf]], b_eq=[1]), ValueError, "A_eq"),
        (dict(c=[1, 2], bounds=[(0, 1)] * 3), ValueError, "bounds"),
        (dict(c=["a", "b"]), TypeError, "`c`"),
        (dict(c=[1j, 2]), TypeError, "complex"),
        (dict(c=[1, 2], method="highs"), ValueError, "halpern-pdhg"),
        (dict(c=[1, 2], options={"presolve": "yes"}), ValueError, "presolve"),
        (dict(c=[1, 2], options="scaling"), TypeError, "options"),
        (dict(c=[1, 2], integrality=[1, 0, 1]), ValueError, "integrality"),
        (dict(c=[1, 2], x0=[1.0]), ValueError, "x0"),
    ],
)
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        linprog(**kwargs)


def _netlib(name, folder="."):
    path = NETLIB / folder / f"{name}.npz"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the repository's data/netlib folder is incomplete")
    d = np.load(path)

    def csr(p):
        return sp.csr_array((d[p + "_data"], d[p + "_indices"], d[p + "_indptr"]), shape=tuple(d[p + "_shape"]))

    return dict(
        c=d["c"], A_ub=csr("A_ub"), b_ub=d["b_ub"], A_eq=csr("A_eq"), b_eq=d["b_eq"], bounds=np.c_[d["lb"], d["ub"]]
    )


@pytest.mark.parametrize("name", ["AFIRO", "SC50A", "BLEND", "KB2", "SC105", "STOCFOR1"])
def test_netlib_problems_at_1e6(name):
    prob = _netlib(name)
    ref = json.loads((NETLIB / "highs_reference.json").read_text())[f"{name}.npz"]
    res = linprog(**prob, tol=1e-6, time_limit=60)
    assert res.success, res.message
    assert abs(res.fun - ref["highs_fun"]) <= 1e-5 * (1 + abs(ref["highs_fun"]))


def test_all_boxed_problem_adapts_its_primal_weight():
    # FIT1D: every variable boxed, so the dual residual is zero by structure. The primal-weight
    # guard once read that as a degenerate ratio and pinned the weight for good (no solve in
    # 150 000 iterations); it now solves in about 22 000.
    prob = _netlib("FIT1D")
    ref = json.loads((NETLIB / "highs_reference.json").read_text())["FIT1D.npz"]
    res = linprog(**prob, tol=1e-6, maxiter=60_000)
    assert res.success, res.message
    assert abs(res.fun - ref["highs_fun"]) <= 1e-4 * (1 + abs(ref["highs_fun"]))
    assert res.restarts > 5


@pytest.mark.parametrize(
    "name, presolve, found_by",
    [
        # found before iterating: a row's activity range misses its bounds (HiGHS's presolve
        # finds gran and pilot4i the same way; the Farkas ray took 55 s on pilot4i, never on gran)
        ("gran", True, "singleton rows"),  # two singleton rows cross (issue 19's presolve)
        ("pilot4i", True, "bound propagation"),
        ("bgdbg1", True, "singleton rows"),
        # by a Farkas ray: klein2/klein3 by the dual iterate itself (weighed by the primal one)
        ("klein2", True, "Farkas"),
        ("klein3", True, "Farkas"),
        ("ex72a", True, "Farkas"),
        ("bgdbg1", False, "Farkas"),
        ("galenet", False, "Farkas"),
        ("itest6", False, "Farkas"),
        ("woodinfe", False, "Farkas"),
        ("cplex1", False, "Farkas"),
    ],
)
def test_netlib_infeasible_detected(name, presolve, found_by):
    prob = _netlib(name, "infeasible")
    res = linprog(**prob, time_limit=60, options={"presolve": presolve})
    assert res.status == 2, res.message
    assert found_by in res.message
    if found_by in ("bound propagation", "singleton rows"):
        assert res.nit == 0


@pytest.mark.parametrize("tol", [1e-4, 1e-6])
def test_infeasible_by_less_than_the_tolerance_is_not_called_optimal(tol):
    # cplex2 is infeasible by 3.7e-10 (relative): an infeasible LP is never called optimal.
    # At 1e-6 the certificate decides (iteration 30 784) before the KKT test passes. At 1e-4
    # the KKT test passes at iteration 14 720, while ‖y‖ grows fast (11% then 7% over the last
    # two eighths of the run) but not yet at a steady rate; the growth test counts that as
    # growing, the run goes on past twice that count while ‖y‖ keeps growing, and the
    # certificate turns up at 30 784. The message says the KKT test had passed and why the run
    # went on.
    prob = _netlib("cplex2", "infeasible")
    res = linprog(**prob, tol=tol, time_limit=60)
    assert res.status == 2, res.message
    if "KKT test had passed at iteration" in res.message:
        assert "less than the tolerance" in res.message


@pytest.mark.parametrize("name, tol", [("BEACONFD", 1e-6), ("D6CUBE", 1e-4), ("AGG", 1e-8)])
def test_feasible_lps_stop_when_the_kkt_test_passes(name, tol):
    # The test for a steadily growing dual iterate stays quiet on feasible LPs: the run stops at
    # the first check that passes the KKT test (the callback sees every check but that one, so
    # none it sees passes; a run that went on would show it the passing one).
    # BEACONFD's duals still move by 30% over the last eighth of its run, D6CUBE's grow at
    # every check of the last quarter (by 2.4%, at an uneven rate), AGG's take 224 000
    # iterations to settle at 1e-8.
    prob = _netlib(name)
    seen = []
    res = linprog(
        **prob,
        tol=tol,
        time_limit=60,
        callback=lambda r: seen.append((r.nit, max(r.rel_primal, r.rel_dual, r.rel_gap))),
    )
    assert res.status == 0 and "still growing" not in res.message, res.message
    assert res.nit == seen[-1][0] + 64 and max(res.rel_primal, res.rel_dual, res.rel_gap) <= tol
    assert all(err > tol for _, err in seen)


def test_callback_sees_the_current_duals():
    prob = random_lp(np.random.default_rng(3), 20, 15)
    seen = []
    res = linprog(**prob, tol=1e-8, callback=lambda r: seen.append(np.r_[r.ineqlin.marginals, r.eqlin.marginals]))
    assert res.success and len(seen) >= 2 and all(y.shape == (20,) for y in seen)
    # the duals passed along converge to the returned ones
    assert np.linalg.norm(seen[-1] - res.ineqlin.marginals) <= np.linalg.norm(seen[0] - res.ineqlin.marginals)


def test_docstring_example():
    import doctest  # noqa: PLC0415

    from optcore import _linprog  # noqa: PLC0415

    assert doctest.testmod(_linprog).failed == 0


def test_numeric_bounds_array_matches_pairs_and_is_validated():
    rng = np.random.default_rng(3)
    A = rng.random((5, 8))
    c = rng.normal(size=8)
    pairs = [(0, 2)] * 4 + [(None, 1), (-1, None), (0.5, 0.5), (-3, 3)]
    arr = np.array([(-np.inf if lo is None else lo, np.inf if u is None else u) for lo, u in pairs])
    a = optcore.linprog(c, A_ub=A, b_ub=np.ones(5), bounds=pairs, tol=1e-8)
    b = optcore.linprog(c, A_ub=A, b_ub=np.ones(5), bounds=arr, tol=1e-8)
    assert a.status == b.status == 0 and np.array_equal(a.x, b.x)
    bad = arr.copy()
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        optcore.linprog(c, A_ub=A, b_ub=np.ones(5), bounds=bad)
    bad = arr.copy()
    bad[1] = (3.0, 2.0)
    r = optcore.linprog(c, A_ub=A, b_ub=np.ones(5), bounds=bad)  # SciPy's status 2, not an error
    assert r.status == 2 and "variable 1 a lower bound 3 > its upper bound 2" in r.message
    big = arr.copy()
    big[0, 1] = 1e20  # infinite, as in SciPy
    r = optcore.linprog(c, A_ub=A, b_ub=np.ones(5), bounds=big, tol=1e-8)
    assert r.upper.marginals[0] == 0.0


def test_result_is_an_optcore_optimize_result():
    res = linprog(**small())
    assert isinstance(res, optcore.OptimizeResult)
    for key in ("ineqlin", "eqlin", "lower", "upper"):
        assert isinstance(res[key], optcore.OptimizeResult)
        assert "marginals" in res[key] and "residual" in res[key]


def test_workers_give_bit_identical_results():
    # Large enough for the parallel row passes and the chunked convergence checks.
    m, n = 8000, 40000
    A = sp.random_array((m, n), density=20 / n, rng=1, format="csr") + sp.eye_array(m, n)
    kw = dict(A_ub=A, b_ub=np.ones(m), bounds=(0, 2), maxiter=640, warn=False)
    c = -np.ones(n)
    one, two = linprog(c, workers=1, **kw), linprog(c, workers=2, **kw)
    assert one.nit == two.nit and one.status == two.status
    assert one.x.tobytes() == two.x.tobytes()
    assert one.ineqlin.marginals.tobytes() == two.ineqlin.marginals.tobytes()
    assert one.rel_gap == two.rel_gap


@pytest.mark.parametrize("workers, exc", [(0, ValueError), (2.0, TypeError)])
def test_bad_workers(workers, exc):
    with pytest.raises(exc, match="`workers`"):
        linprog(**small(), workers=workers)
