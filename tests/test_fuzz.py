"""Fuzz suite: every public entry point over bad and extreme inputs (issue 17).

Each test puts one bad or extreme value (from :func:`optcore.testing.bad_arrays` /
:func:`optcore.testing.bad_scalars` or a slot's own catalogue) into one argument of a valid
call and asserts the outcome is either a named exception (``ValueError``, ``TypeError``,
``MemoryError``, ``optcore.NumericalError``) whose message names the argument, or a result
that keeps its own claims (:func:`optcore.testing.check_generic`, and
:func:`optcore.testing.check_result` where the kit can describe the problem). An in-process
watchdog turns a run past its limits into a failure (it also checks that the loop reaches
the observer: the alarm's exception surfaces through the observer's signal check). Cases that
may abort the process or exhaust memory run in a subprocess under an address-space limit.

Examples per argument: 6 in the ``deterministic`` profile (a few hundred per entry point),
the profile's ``max_examples`` with ``OPTCORE_HYPOTHESIS_PROFILE=fuzz``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optcore
from optcore import bilevel, fixed_point, monotone, ot, zo
from optcore import testing as kit
from optcore.bilevel import problems as bp
from optcore.fixed_point import operators as ops

PROFILE = os.environ.get("OPTCORE_HYPOTHESIS_PROFILE", "deterministic")
EXAMPLES = 6 if PROFILE == "deterministic" else settings.default.max_examples
WATCHDOG_S = 10
ERRORS = kit.named_errors()


#: A huge evaluation budget or batch drawn for a zo/bilevel solver with a Python objective is honest
#: work (a long run, or a batch of that many points): the 10 s in-process watchdog cannot tell it from
#: a hang. These pass in the deterministic CI profile; the subprocess suite checks that absurd sizes
#: raise instead of aborting.
HONEST_LONG = pytest.mark.xfail(
    strict=False, reason="a huge budget or batch is a long honest run the in-process watchdog cannot tell from a hang"
)


class Watchdog(BaseException):
    """Raised by the alarm: a call ran past the fuzz suite's limit (a hang)."""


def _alarm(signum, frame):
    raise Watchdog(f"call still running after {WATCHDOG_S} s")


def outcome(call, name: str | None):
    """Run ``call()``; return the result, or ``None`` after a named exception naming ``name``."""
    main = threading.current_thread() is threading.main_thread()
    if main:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(WATCHDOG_S)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()
    except ERRORS as exc:
        msg = str(exc)
        if name is not None and not isinstance(exc, MemoryError):
            assert name in msg, f"{type(exc).__name__} does not name `{name}`: {msg}"
        assert msg, f"{type(exc).__name__} with an empty message"
        return None
    finally:
        if main:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)


def consistent(res, maxiter=None, problem=None, **kw):
    """Assert that ``res`` keeps its generic claims (and the kit's, for ``problem``)."""
    if res is None:
        return
    bad = kit.check_generic(res, maxiter=maxiter)
    if problem is not None and not bad:
        bad = kit.check_result(res, problem, maxiter=maxiter, **kw)
    assert bad == [], bad


def finite_array(out, shape=None):
    if out is None:
        return
    arr = np.asarray(out)
    assert arr.dtype.kind == "f", arr.dtype
    assert np.all(np.isfinite(arr)), arr
    if shape is not None:
        assert arr.shape == shape


OPTION_VALUES = [{"no_such_option": 1}, "fast", [("a", 1)], {1: 2}, {"": None}]


def bad_for(kind: str, good=None):
    if kind == "array":
        return kit.bad_arrays(good)
    if kind == "int":
        return kit.bad_scalars(integer=True)
    if kind == "options":
        return st.sampled_from(OPTION_VALUES)
    if kind == "str":
        return st.sampled_from(["", "nope", None, 3, b"log", "LOG ", ["log"]])
    if kind == "bool":
        return st.sampled_from([None, "yes", 2, np.bool_(True), [True], 1.5])
    if kind == "callable":
        return st.sampled_from([None, 3, "f", np.zeros(3), [len]])
    if kind == "rng":
        return st.sampled_from([True, -1, 2**64, 2**65, "seed", 1.5, [1, 2], np.random.default_rng(0), object()])
    if kind == "workers":
        return st.sampled_from([0, -1, 1.5, True, "2", 2**64, 10**30, np.int64(1)])
    return kit.bad_scalars()


def fuzz(cases):
    """Parametrize a test over ``(slot, kind, good)`` rows; a row may carry marks."""
    params = []
    for row in cases:
        marks = row[3] if len(row) > 3 else ()
        params.append(pytest.param(*row[:3], marks=marks, id=row[0]))
    return pytest.mark.parametrize(("slot", "kind", "good"), params)


def draw_value(data, kind, good):
    return data.draw(bad_for(kind, good), label="value")


# --------------------------------------------------------------------------------------------
# optcore.ot.sinkhorn
# --------------------------------------------------------------------------------------------

A3 = np.array([0.2, 0.3, 0.5])
B4 = np.array([0.1, 0.2, 0.3, 0.4])
M34 = np.arange(12.0).reshape(3, 4) % 5 / 4
SK_BASE = dict(a=A3, b=B4, M=M34, reg=0.1, method="log", tol=1e-6, maxiter=500)


@settings(max_examples=EXAMPLES)
@fuzz(
    [
        ("a", "array", A3),
        ("b", "array", B4),
        ("M", "array", M34),
        ("reg", "scalar", None),
        ("tol", "scalar", None),
        ("maxiter", "int", None),
        ("method", "str", None),
        ("check_every", "int", None),
        ("workers", "workers", None),
        ("return_plan", "bool", None),
        ("options", "options", None),
        ("callback", "callable", None),
    ]
)
@given(data=st.data())
def test_sinkhorn(slot, kind, good, data):
    kw = dict(SK_BASE, warn=False)
    kw[slot] = draw_value(data, kind, good)
    a, b, M = kw.pop("a"), kw.pop("b"), kw.pop("M")
    res = outcome(lambda: ot.sinkhorn(a, b, M, **kw), slot)
    problem = None
    if res is not None and slot in ("a", "b", "M") and res.plan is not None and np.ndim(res.plan) == 2:
        arrs = [np.asarray(v) for v in (a, b, M)]
        # the kit describes same-dtype float problems; others are checked generically
        if len({v.dtype for v in arrs}) == 1 and arrs[0].dtype in (np.float32, np.float64):
            problem = kit.OTProblem(*arrs, float(kw["reg"]))
    maxiter = kw["maxiter"] if slot != "maxiter" else None
    consistent(res, maxiter, problem, tol=kw["tol"])


@settings(max_examples=EXAMPLES)
@fuzz([("x", "array", np.ones((3, 2))), ("y", "array", np.zeros((4, 2)))])
@given(data=st.data())
def test_sinkhorn_point_clouds(slot, kind, good, data):
    kw = dict(x=np.arange(6.0).reshape(3, 2) / 6, y=np.arange(8.0).reshape(4, 2) / 8, reg=0.5, warn=False)
    kw[slot] = draw_value(data, kind, good)
    consistent(outcome(lambda: ot.sinkhorn(None, None, **kw), slot))


@settings(max_examples=EXAMPLES)
@given(method=st.sampled_from(["log", "eps_scaling", "scaling", "sns"]), dt=st.sampled_from(["f4", "f8", ">f4"]))
def test_sinkhorn_methods_and_dtypes(method, dt):
    a, b, M = A3.astype(dt), B4.astype(dt), M34.astype(dt)
    res = outcome(lambda: ot.sinkhorn(a, b, M, reg=0.1, method=method, warn=False), None)
    assert np.asarray(res.plan).dtype == np.dtype(dt).newbyteorder("=")
    consistent(res, 10_000, kit.OTProblem(a, b, M, 0.1, method))


# --------------------------------------------------------------------------------------------
# optcore.fixed_point.halpern and the operators
# --------------------------------------------------------------------------------------------

X3 = np.array([2.0, -1.0, 0.5])
FP_BASE = dict(method="halpern", tol=1e-8, rtol=0.0, maxiter=300, check_every=10, options=None)


@settings(max_examples=EXAMPLES)
@fuzz(
    [
        ("x0", "array", X3),
        ("method", "str", None),
        ("tol", "scalar", None),
        ("rtol", "scalar", None),
        ("maxiter", "int", None),
        ("check_every", "int", None),
        ("anchoring", "scalar", None),
        ("restart", "str", None),
        ("workers", "workers", None),
        ("options", "options", None),
        ("T", "callable", None),
    ]
)
@given(data=st.data(), native=st.booleans())
def test_halpern(slot, kind, good, data, native):
    kw = dict(FP_BASE, x0=X3)
    if slot == "maxiter":
        # A huge maxiter runs honestly to tol: Halpern's residual falls as O(1/k) (2.3/k here),
        # so tol=1e-8 takes ~2e8 iterations of the Python T (~40 min; measured 1e5 in 1 s).
        # The claims under test are the clamp and the result's, so use a tol met in ~2000.
        kw["tol"] = 1e-3
    kw[slot] = draw_value(data, kind, good)
    T = ops.Box(-1.0, 1.0, dim=3) if native else (lambda x: 0.5 * x)
    T = kw.pop("T", T)
    res = outcome(lambda: fixed_point.halpern(T, warn=False, **kw), slot)
    consistent(res, kw["maxiter"] if slot != "maxiter" else None)


T_OUTPUTS = [None, np.zeros(2), np.full(3, np.nan), np.full(3, np.inf), np.ones(3) + 1j, "x", np.zeros((3, 1))]


@settings(max_examples=EXAMPLES)
@given(out=st.sampled_from(T_OUTPUTS))
def test_halpern_bad_operator_output(out):
    res = outcome(lambda: fixed_point.halpern(lambda x: out, X3, maxiter=50, warn=False), "T")
    consistent(res, 50)


OPERATOR_CASES = [
    ("Identity", lambda v: ops.Identity(v), "int", "dim"),
    ("Box.lower", lambda v: ops.Box(v, 1.0, dim=3), "array", "lower"),
    ("Box.upper", lambda v: ops.Box(-1.0, v, dim=3), "array", "upper"),
    ("Box.dim", lambda v: ops.Box(-1.0, 1.0, dim=v), "int", "dim"),
    ("Ball.center", lambda v: ops.Ball(v, 1.0), "array", "center"),
    ("Ball.radius", lambda v: ops.Ball(np.zeros(3), v), "scalar", "radius"),
    ("Simplex.dim", lambda v: ops.Simplex(v), "int", "dim"),
    ("Simplex.total", lambda v: ops.Simplex(3, v), "scalar", "total"),
    ("Affine.A", lambda v: ops.Affine(v, [1.0]), "array", "A"),
    ("Affine.b", lambda v: ops.Affine(np.ones((1, 3)), v), "array", "b"),
    ("LinearResolvent.L", lambda v: ops.LinearResolvent(v), "array", "L"),
    ("LinearResolvent.lam", lambda v: ops.LinearResolvent(np.eye(3), v), "scalar", "lam"),
    ("Compose", lambda v: ops.Compose(ops.Identity(3), v), "callable", None),
    ("Average.weights", lambda v: ops.Average([ops.Identity(3), ops.Box(0, 1, dim=3)], v), "array", "weights"),
    ("Average.ops", lambda v: ops.Average(v), "callable", None),
    ("Reflection", lambda v: ops.Reflection(v), "callable", "op"),
    ("reflect", lambda v: ops.reflect(v), "callable", "op"),
    ("DouglasRachford", lambda v: ops.DouglasRachford(ops.Ball(np.zeros(3), 1.0), v), "callable", None),
]
GOOD_FOR = {"lower": -np.ones(3), "upper": np.ones(3), "center": np.zeros(3), "A": np.ones((1, 3))}
GOOD_FOR |= {"b": np.ones(1), "L": np.eye(3), "weights": np.array([0.5, 0.5])}


@settings(max_examples=EXAMPLES)
@pytest.mark.parametrize(
    ("build", "kind", "name"),
    [pytest.param(*c[1:], id=c[0]) for c in OPERATOR_CASES],
)
@given(data=st.data())
def test_operator_constructors(build, kind, name, data):
    op = outcome(lambda: build(draw_value(data, kind, GOOD_FOR.get(name))), name)
    if op is not None:
        finite_array(outcome(lambda: op(np.linspace(-2, 2, op.dim)), None))


ALL_OPERATORS = [
    ops.Identity(3),
    ops.Box(-1.0, 1.0, dim=3),
    ops.Ball(np.zeros(3), 1.0),
    ops.Simplex(3),
    ops.Affine(np.ones((1, 3)), [1.0]),
    ops.LinearResolvent(np.eye(3)),
    ops.Compose(ops.Box(-1.0, 1.0, dim=3), ops.Ball(np.zeros(3), 1.0)),
    ops.Average([ops.Identity(3), ops.Simplex(3)]),
    ops.reflect(ops.Ball(np.zeros(3), 1.0)),
    ops.DouglasRachford(ops.Ball(np.zeros(3), 1.0), ops.Affine(np.ones((1, 3)), [1.0])),
]


@settings(max_examples=EXAMPLES * 4)
@pytest.mark.parametrize("op", ALL_OPERATORS, ids=lambda o: type(o).__name__)
@given(x=kit.bad_arrays(X3))
def test_operator_application(op, x):
    """Applying an operator: a named error naming ``x``, or a finite point of the input's
    kind; a projection returns a point of its set (Simplex: sums to its total)."""
    out = outcome(lambda: op(x), "x")
    if out is None:
        return
    xin = np.asarray(x, dtype=np.float64)
    if np.all(np.isfinite(xin)):
        finite_array(out, (3,))
    if isinstance(op, ops.Simplex) and np.all(np.isfinite(out)):
        assert abs(float(np.sum(out, dtype=np.float64)) - 1.0) <= 1e-5, out


def test_simplex_huge_entry_projects():
    """Issue 17 item 8's reproducer, asserted through the fuzz suite's lens."""
    out = ops.Simplex(3)(np.array([1e16, 0, 0]))
    assert np.allclose(out, [1.0, 0.0, 0.0]), out


# --------------------------------------------------------------------------------------------
# optcore.monotone
# --------------------------------------------------------------------------------------------

GAME = np.array([[1.0, -1.0], [-1.0, 1.0], [0.5, 0.0]])


def _game():
    return monotone.MatrixGame(GAME)


@settings(max_examples=EXAMPLES)
@fuzz(
    [
        ("method", "str", None),
        ("tol", "scalar", None),
        ("maxiter", "int", None),
        ("rng", "rng", None),
        ("check_every", "int", None),
        ("workers", "workers", None),
        ("options", "options", None),
        ("x0", "array", np.zeros(4)),
    ]
)
@given(data=st.data(), method=st.sampled_from(["eg", "eag", "halpern", "vr_halpern"]))
def test_monotone_solve(slot, kind, good, data, method):
    kw = dict(method=method, tol=1e-6, maxiter=300)
    kw[slot] = draw_value(data, kind, good)
    prob = monotone.QuadraticMinMax(np.eye(2), np.ones((2, 2)))
    res = outcome(lambda: monotone.solve(prob, warn=False, **kw), slot)
    consistent(res, kw["maxiter"] if slot != "maxiter" else None)


MONO_CASES = [
    ("MatrixGame.A", lambda v: monotone.MatrixGame(v), "array", GAME, "A"),
    ("QuadraticMinMax.H", lambda v: monotone.QuadraticMinMax(v, np.ones((2, 2))), "array", np.eye(2), "H"),
    ("QuadraticMinMax.A", lambda v: monotone.QuadraticMinMax(np.eye(2), v), "array", np.ones((2, 2)), "A"),
    ("QuadraticMinMax.h", lambda v: monotone.QuadraticMinMax(np.eye(2), np.ones((2, 2)), v), "array", np.ones(2), "h"),
    (
        "QuadraticMinMax.b",
        lambda v: monotone.QuadraticMinMax(np.eye(2), np.ones((2, 2)), None, v),
        "array",
        np.ones(2),
        "b",
    ),
    ("FiniteSum.F", lambda v: monotone.FiniteSum(v, 2, 2, lipschitz=1.0), "callable", None, "F"),
    (
        "FiniteSum.n",
        lambda v: monotone.FiniteSum(lambda i, z: np.tile(z, (len(i), 1)), v, 2, lipschitz=1.0),
        "int",
        None,
        "n",
    ),
    (
        "FiniteSum.dim",
        lambda v: monotone.FiniteSum(lambda i, z: np.tile(z, (len(i), 1)), 2, v, lipschitz=1.0),
        "int",
        None,
        "dim",
    ),
    (
        "FiniteSum.lipschitz",
        lambda v: monotone.FiniteSum(lambda i, z: np.tile(z, (len(i), 1)), 2, 2, lipschitz=v),
        "scalar",
        None,
        "lipschitz",
    ),
]


@settings(max_examples=EXAMPLES)
@pytest.mark.parametrize(("build", "kind", "good", "name"), [c[1:] for c in MONO_CASES], ids=[c[0] for c in MONO_CASES])
@given(data=st.data())
def test_monotone_problems(build, kind, good, name, data):
    prob = outcome(lambda: build(draw_value(data, kind, good)), name)
    if prob is not None:
        consistent(outcome(lambda: monotone.solve(prob, maxiter=100, warn=False), None), 100)


# --------------------------------------------------------------------------------------------
# optcore.linprog
# --------------------------------------------------------------------------------------------

LP = dict(c=np.array([-1.0, 4.0]), A_ub=np.array([[-3.0, 1.0], [1.0, 2.0]]), b_ub=np.array([6.0, 4.0]))
LP_BOUNDS = [(None, None), (-3, None)]


@settings(max_examples=EXAMPLES)
@fuzz(
    [
        ("c", "array", LP["c"]),
        ("A_ub", "array", LP["A_ub"]),
        ("b_ub", "array", LP["b_ub"]),
        ("A_eq", "array", np.ones((1, 2))),
        ("b_eq", "array", np.ones(1)),
        ("bounds", "array", np.array([[-3.0, 5.0], [-3.0, 5.0]])),
        ("x0", "array", np.zeros(2)),
        ("tol", "scalar", None),
        ("maxiter", "int", None),
        ("time_limit", "scalar", None),
        ("workers", "workers", None),
        ("method", "str", None),
        ("options", "options", None),
    ]
)
@given(data=st.data())
def test_linprog(slot, kind, good, data):
    kw = dict(LP, bounds=LP_BOUNDS, maxiter=20_000, time_limit=10.0)
    kw[slot] = draw_value(data, kind, good)
    res = outcome(lambda: optcore.linprog(warn=False, **kw), slot)
    problem = None
    if res is not None and slot not in ("x0", "tol", "maxiter", "time_limit", "workers", "method", "options"):
        args = {k: kw.get(k) for k in ("c", "A_ub", "b_ub", "A_eq", "b_eq")}
        try:
            problem = kit.LinearProgram(**args, bounds=kw["bounds"])
            problem.bounds_arrays()
        except Exception:
            problem = None
    consistent(res, kw["maxiter"] if slot != "maxiter" else None, problem)


@settings(max_examples=EXAMPLES * 4)
@given(problem=kit.linear_programs(max_vars=4, max_rows=3), dt=st.sampled_from([np.float32, np.int64, ">f8"]))
def test_linprog_known_status_in_other_dtypes(problem, dt):
    """The kit's LPs with the data in another dtype: same status, claims re-measured."""
    cast = {
        k: None if getattr(problem, k) is None else np.asarray(getattr(problem, k)).astype(dt)
        for k in ("c", "A_ub", "b_ub", "A_eq", "b_eq")
    }
    if dt is np.int64:
        return
    res = outcome(lambda: optcore.linprog(**cast, bounds=problem.bounds, warn=False, maxiter=50_000), None)
    # re-measured on the data as cast (float32 rounds c: fun is c32 @ x, not c @ x); the known
    # status and optimum hold only where the cast is exact (rounding can make an LP infeasible)
    data = {k: None if v is None else v.astype(np.float64) for k, v in cast.items()}
    exact = all(v is None or np.array_equal(v, np.asarray(getattr(problem, k), float)) for k, v in data.items())
    solved = (
        dataclasses.replace(problem, **data) if exact else dataclasses.replace(problem, **data, status=None, fun=None)
    )
    consistent(res, 50_000, solved)


# --------------------------------------------------------------------------------------------
# optcore.zo
# --------------------------------------------------------------------------------------------


def sphere(x):
    return float(np.sum(np.asarray(x, float) ** 2))


ZO_BASE = dict(method="gaussian", maxfev=400, rng=0)


@settings(max_examples=EXAMPLES)
@fuzz(
    [
        ("x0", "array", np.ones(3)),
        ("method", "str", None),
        ("bounds", "array", np.array([-2.0, 2.0])),
        ("maxfev", "int", None, HONEST_LONG),
        ("maxiter", "int", None),
        ("f_target", "scalar", None),
        ("xtol", "scalar", None, ()),
        ("lr", "scalar", None, ()),
        ("mu", "scalar", None, ()),
        ("q", "int", None, HONEST_LONG),
        ("rng", "rng", None),
        ("workers", "workers", None),
        ("options", "options", None),
        ("fun", "callable", None),
    ]
)
@given(
    data=st.data(),
    method=st.sampled_from(["gaussian", "sphere", "cge", "signsgd", "adamm", "perturbed", "cbo", "rank"]),
)
def test_zo_minimize(slot, kind, good, data, method):
    kw = dict(ZO_BASE, method=method, x0=np.ones(3), fun=sphere)
    kw[slot] = draw_value(data, kind, good)
    res = outcome(lambda: zo.minimize(warn=False, **kw), slot)
    consistent(res, kw.get("maxiter") if slot != "maxiter" else None)


FUN_OUTPUTS = [None, np.nan, np.inf, -np.inf, "1.0", 1j, np.ones(2), [1.0], 1e308, -1e308, True]


@settings(max_examples=EXAMPLES * 2)
@given(y=st.sampled_from(FUN_OUTPUTS), method=st.sampled_from(["gaussian", "cbo", "rank", "cge"]))
def test_zo_bad_objective_values(y, method):
    """An objective returning ``None``, NaN, strings, arrays: ``TypeError``/``ValueError``/
    ``NumericalError`` naming ``fun``, or a consistent result."""
    res = outcome(lambda: zo.minimize(lambda x: y, np.ones(2), method=method, maxfev=200, rng=0, warn=False), "fun")
    consistent(res)


@settings(max_examples=EXAMPLES)
@fuzz(
    [
        ("x0", "array", np.ones(3)),
        ("m", "int", None, HONEST_LONG),
        ("k", "int", None),
        ("maxiter", "int", None, HONEST_LONG),
        ("lr", "scalar", None, ()),
        ("mu", "scalar", None, ()),
        ("decay", "scalar", None, ()),
        ("bounds", "array", np.array([-2.0, 2.0])),
        ("xtol", "scalar", None, ()),
        ("rng", "rng", None),
        ("rank_oracle", "callable", None),
    ]
)
@given(data=st.data())
def test_zo_rank_minimize(slot, kind, good, data):
    kw = dict(rank_oracle=zo.ranking_oracle(sphere), x0=np.ones(3), maxiter=100, rng=0)
    kw[slot] = draw_value(data, kind, good)
    res = outcome(lambda: zo.rank_minimize(warn=False, **kw), slot)
    consistent(res, kw["maxiter"] if slot != "maxiter" else None)


RANKINGS = [None, [-1, 0], [0, 0, 0, 0, 0, 0, 0, 0], [100], [0.5, 1.5], "01", [[0, 1]], [], [2**64]]


@settings(max_examples=EXAMPLES * 2)
@given(r=st.sampled_from(RANKINGS))
def test_zo_bad_rankings(r):
    res = outcome(lambda: zo.rank_minimize(lambda X: r, np.ones(3), maxiter=20, rng=0, warn=False), None)
    consistent(res, 20)


@settings(max_examples=EXAMPLES)
@fuzz(
    [
        ("x", "array", np.ones(3)),
        ("method", "str", None),
        ("q", "int", None, HONEST_LONG),
        ("mu", "scalar", None, ()),
        ("scheme", "str", None),
        ("n_coords", "int", None),
        ("rng", "rng", None),
        ("workers", "workers", None),
        ("fun", "callable", None),
    ]
)
@given(data=st.data())
def test_zo_gradient(slot, kind, good, data):
    kw = dict(fun=sphere, x=np.ones(3), rng=0)
    kw[slot] = draw_value(data, kind, good)
    out = outcome(lambda: zo.gradient(**kw), slot)
    if out is not None and np.all(np.isfinite(np.asarray(kw["x"], dtype=np.float64))):
        assert np.asarray(out).shape == np.shape(kw["x"])


@settings(max_examples=EXAMPLES)
@fuzz(
    [
        ("method", "str", None),
        ("x0", "array", np.ones(3)),
        ("bounds", "array", np.array([-2.0, 2.0])),
        ("lr", "scalar", None, ()),
        ("mu", "scalar", None, ()),
        ("q", "int", None, HONEST_LONG),
        ("xtol", "scalar", None, ()),
        ("rng", "rng", None),
        ("options", "options", None),
        ("values", "array", np.ones(4)),
    ]
)
@given(data=st.data())
def test_zo_optimizer_ask_tell(slot, kind, good, data):
    kw = dict(method="sphere", x0=np.ones(3), rng=0)
    value = draw_value(data, kind, good)
    if slot != "values":
        kw[slot] = value
    opt = outcome(lambda: zo.Optimizer(**kw), slot)
    if opt is None:
        return
    for _ in range(3):
        X = opt.ask()
        vals = value if slot == "values" else (np.asarray(X, float) ** 2).sum(1)
        told = outcome(lambda X=X, vals=vals: opt.tell(X, vals) or True, "values")
        if told is None:
            return
    x, f = opt.best
    assert np.all(np.isfinite(x))


@settings(max_examples=EXAMPLES)
@given(k=kit.bad_scalars(integer=True), fun=st.sampled_from([sphere, None, "f", zo.functions.sphere]))
def test_zo_ranking_oracle(k, fun):
    oracle = outcome(lambda: zo.ranking_oracle(fun, k), None)
    if oracle is not None:
        order = outcome(lambda: oracle(np.eye(3)), None)
        if order is not None:
            assert np.asarray(order).dtype.kind in "iu"


# --------------------------------------------------------------------------------------------
# optcore.bilevel
# --------------------------------------------------------------------------------------------


def _quad():
    return bp.Quadratic.random(2, 3, seed=0)


@settings(max_examples=EXAMPLES)
@fuzz(
    [
        ("x0", "array", np.zeros(2)),
        ("y0", "array", np.zeros(3)),
        ("maxiter", "int", None, HONEST_LONG),
        ("tol", "scalar", None, ()),
        ("rng", "rng", None),
        ("method", "str", None),
        ("options", "options", None),
        ("workers", "workers", None),
    ]
)
@given(data=st.data(), method=st.sampled_from(["aid", "itd", "soba", "f2sa", "penalty", "borep"]))
def test_bilevel_minimize(slot, kind, good, data, method):
    kw = dict(x0=np.zeros(2), method=method, maxiter=50, tol=1e-6, rng=0)
    kw[slot] = draw_value(data, kind, good)
    res = outcome(lambda: bilevel.minimize(_quad(), warn=False, **kw), slot)
    consistent(res, kw["maxiter"] if slot != "maxiter" else None)


@settings(max_examples=EXAMPLES)
@fuzz(
    [
        ("x", "array", np.zeros(2)),
        ("y", "array", np.zeros(3)),
        ("method", "str", None),
        ("tol", "scalar", None, ()),
        ("maxiter", "int", None),
        ("terms", "int", None),
        ("eta", "scalar", None, ()),
        ("workers", "workers", None),
    ]
)
@given(data=st.data())
def test_bilevel_hypergradient(slot, kind, good, data):
    kw = dict(x=np.zeros(2))
    kw[slot] = draw_value(data, kind, good)
    out = outcome(lambda: bilevel.hypergradient(_quad(), **kw), slot)
    if out is not None and np.all(np.isfinite(np.asarray(kw["x"], dtype=np.float64))):
        finite_array(out)


def _gf(x, y):
    return np.zeros_like(x), y


def _gg(x, y):
    return np.zeros_like(x), y - 1.0


PROBLEM_CASES = [
    ("grad_f", "callable"),
    ("grad_g", "callable"),
    ("hvp_yy", "callable"),
    ("jvp_xy", "callable"),
    ("f", "callable"),
    ("batched", "bool"),
    ("n_samples", "int"),
    ("d_y", "int"),
]


@settings(max_examples=EXAMPLES)
@pytest.mark.parametrize(("slot", "kind"), PROBLEM_CASES, ids=[c[0] for c in PROBLEM_CASES])
@given(data=st.data())
def test_bilevel_problem(slot, kind, data):
    kw = dict(grad_f=_gf, grad_g=_gg, d_y=2)
    kw[slot] = draw_value(data, kind, None)
    prob = outcome(lambda: bilevel.Problem(**kw), slot)
    if prob is not None:
        consistent(outcome(lambda: bilevel.minimize(prob, np.zeros(2), maxiter=20, warn=False), None), 20)


GRAD_OUTPUTS = [None, (None, None), (np.zeros(2), np.full(2, np.nan)), (np.zeros(3), np.zeros(2)), "g", (1j, 1j)]


@settings(max_examples=EXAMPLES)
@given(out=st.sampled_from(GRAD_OUTPUTS))
def test_bilevel_bad_oracle_output(out):
    prob = bilevel.Problem(_gf, lambda x, y: out, d_y=2)
    res = outcome(lambda: bilevel.minimize(prob, np.zeros(2), maxiter=20, warn=False), "grad_g")
    consistent(res, 20)


QUAD_GOOD = {k: np.asarray(v) for k, v in _quad()._m.items()}
RIDGE = dict(X_tr=np.eye(4, 3), y_tr=np.ones(4), X_val=np.eye(4, 3)[::-1].copy(), y_val=np.ones(4))


@settings(max_examples=EXAMPLES)
@pytest.mark.parametrize(
    ("cls", "slot"),
    [(bp.Quadratic, k) for k in "A B a C Q R P p q".split()]
    + [(bp.RidgeHyperparameter, k) for k in RIDGE]
    + [(bp.LogisticHyperCleaning, k) for k in RIDGE],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
@given(data=st.data())
def test_bilevel_native_problems(cls, slot, data):
    base = QUAD_GOOD if cls is bp.Quadratic else dict(RIDGE)
    if cls is bp.LogisticHyperCleaning:
        base = dict(base, y_tr=np.array([0, 1, 0, 1]), y_val=np.array([1, 0, 1, 0]))
    kw = dict(base)
    kw[slot] = draw_value(data, "array", base[slot])
    prob = outcome(lambda: cls(**kw), slot)
    if prob is not None:
        res = outcome(lambda: bilevel.minimize(prob, np.zeros(prob.d_x), maxiter=20, warn=False), None)
        consistent(res, 20)
