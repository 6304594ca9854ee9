"""The problems and Hypothesis strategies of :mod:`optcore.testing` (re-exported there; import
them from ``optcore.testing``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._testing_generic import _st

# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OTProblem:
    """An entropic OT problem ``min <P, M> + reg sum P log P`` over ``U(a, b)``.

    Parameters
    ----------
    a, b : ndarray
        Source and target weights (equal masses).
    M : ndarray
        Cost matrix, shape ``(len(a), len(b))``.
    reg : float
        Entropic regularization.
    method : str
        The :func:`optcore.ot.sinkhorn` method that :meth:`solve` uses.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.testing import OTProblem, check_result
    >>> p = OTProblem(np.full(3, 1 / 3), np.full(2, 0.5), np.arange(6.0).reshape(3, 2), reg=1.0)
    >>> check_result(p.solve(), p)
    []
    """

    a: np.ndarray
    b: np.ndarray
    M: np.ndarray
    reg: float
    method: str = "log"

    def solve(self, **kwargs):
        import optcore

        kwargs.setdefault("method", self.method)
        kwargs.setdefault("warn", False)
        return optcore.ot.sinkhorn(self.a, self.b, self.M, reg=self.reg, **kwargs)


@dataclass(frozen=True)
class LinearProgram:
    """A linear program in ``scipy.optimize.linprog``'s form with its known status
    (0 optimal, 2 infeasible, 3 unbounded) and, when optimal, its optimal value.

    Parameters
    ----------
    c, A_ub, b_ub, A_eq, b_eq, bounds
        As :func:`scipy.optimize.linprog` takes them.
    status : int, optional
        The known status (checked by :func:`check_result`).
    fun : float, optional
        The known optimal value.

    Examples
    --------
    >>> from optcore.testing import LinearProgram, check_result
    >>> lp = LinearProgram([-1.0, -2.0], A_ub=[[1.0, 1.0]], b_ub=[4.0], bounds=(0, 3), status=0, fun=-7.0)
    >>> res = lp.solve()
    >>> res.status, round(res.fun, 4), check_result(res, lp)
    (0, -7.0, [])
    """

    c: np.ndarray
    A_ub: np.ndarray | None = None
    b_ub: np.ndarray | None = None
    A_eq: np.ndarray | None = None
    b_eq: np.ndarray | None = None
    bounds: Any = (0, None)
    status: int | None = None
    fun: float | None = None

    def solve(self, **kwargs):
        import optcore

        return optcore.linprog(self.c, self.A_ub, self.b_ub, self.A_eq, self.b_eq, bounds=self.bounds, **kwargs)

    def bounds_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of every variable as float arrays (``None`` -> infinite)."""
        n = len(self.c)
        bnd = self.bounds
        try:
            empty = bnd is None or np.size(bnd) == 0
        except ValueError:  # ragged: not empty
            empty = False
        if empty:
            bnd = (0, None)  # SciPy: None, [], [[]] (and an empty array) mean the default
        arr = np.array(bnd, dtype=object)
        if arr.ndim == 1:
            arr = np.tile(arr, (n, 1))
        lb = np.array([-np.inf if v is None else float(v) for v in arr[:, 0]])
        ub = np.array([np.inf if v is None else float(v) for v in arr[:, 1]])
        return lb, ub


@dataclass(frozen=True)
class FixedPointProblem:
    """A nonexpansive map ``T`` and a start ``x0``. ``displacement`` is the known infimal
    displacement vector (zero when ``T`` has a fixed point).

    Parameters
    ----------
    T : callable or Operator
        The map, as :func:`optcore.fixed_point.halpern` takes it.
    x0 : ndarray
        The start.
    displacement : ndarray, optional
        The infimal displacement vector; ``None`` or zeros for a consistent problem.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> from optcore.testing import FixedPointProblem, check_result
    >>> p = FixedPointProblem(ops.Box(-1.0, 1.0, dim=3), np.array([3.0, 0.5, -2.0]))
    >>> check_result(p.solve(), p), p.consistent
    ([], True)
    """

    T: Callable
    x0: np.ndarray
    displacement: np.ndarray | None = None

    @property
    def consistent(self) -> bool:
        return self.displacement is None or not np.any(self.displacement)

    def solve(self, **kwargs):
        import optcore

        kwargs.setdefault("warn", False)
        return optcore.fixed_point.halpern(self.T, self.x0, **kwargs)


@dataclass(frozen=True)
class BilevelQuadratic:
    """A bilevel quadratic with a closed-form hyper-objective (:class:`optcore.bilevel.problems.Quadratic`).

    Parameters
    ----------
    d_x, d_y : int
        Upper- and lower-level dimensions.
    seed : int
        Seed of :meth:`optcore.bilevel.problems.Quadratic.random`.

    Examples
    --------
    >>> from optcore.testing import BilevelQuadratic, check_result
    >>> p = BilevelQuadratic(d_x=2, d_y=3, seed=0)
    >>> check_result(p.solve(method="aid", tol=1e-6), p, tol=1e-6)
    []
    """

    d_x: int
    d_y: int
    seed: int
    problem: Any = field(repr=False, compare=False, default=None)

    def __post_init__(self):
        if self.problem is None:
            from optcore.bilevel.problems import Quadratic

            object.__setattr__(self, "problem", Quadratic.random(self.d_x, self.d_y, seed=self.seed))

    def solve(self, **kwargs):
        """``bilevel.minimize`` from ``x = 0`` (``warn=False`` and ``rng=0`` unless given: the
        same example gives the same result, as property-based tests need)."""
        from optcore import bilevel

        kwargs.setdefault("warn", False)
        kwargs.setdefault("rng", 0)
        return bilevel.minimize(self.problem, np.zeros(self.d_x), **kwargs)


@dataclass(frozen=True)
class ZOProblem:
    """A black-box objective with its known minimiser ``xopt`` and minimum ``fopt``.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``.
    x0, xopt : ndarray
        The start and the known minimiser.
    fopt : float
        The known minimum.
    bounds : tuple, optional
        ``(lower, upper)`` passed to :func:`optcore.zo.minimize`.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.testing import ZOProblem, check_result
    >>> p = ZOProblem(lambda x: float(np.sum((x - 1.0) ** 2)), np.zeros(2), np.ones(2), 0.0)
    >>> check_result(p.solve(rng=0, maxiter=2000), p)
    []
    """

    f: Callable
    x0: np.ndarray
    xopt: np.ndarray
    fopt: float
    bounds: tuple | None = None

    def solve(self, **kwargs):
        from optcore import zo

        kwargs.setdefault("warn", False)
        return zo.minimize(self.f, self.x0, bounds=self.bounds, **kwargs)


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


def ot_problems(*, max_size: int = 8, dtypes=(np.float64, np.float32), extreme: bool = True, methods=("log",)):
    """Entropic OT problems: sizes 1..``max_size``, weights with equal masses (not always 1),
    including zeros and, with ``extreme``, weights down to 1e-300 (1e-30 in float32); costs of
    scale 1e-3..1e3, possibly negative; ``reg`` from 1e-3 to 10 times the cost's range.

    Parameters
    ----------
    max_size : int
        Largest ``n`` and ``m``.
    dtypes : tuple of dtype
        The dtypes drawn (all arrays of a problem share one).
    extreme : bool
        Also draw tiny weights and cost scales 1e-3 and 1e3.
    methods : tuple of str
        The sinkhorn methods drawn for :meth:`OTProblem.solve`.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of :class:`OTProblem`.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from optcore.testing import check_result, ot_problems
    >>> @settings(max_examples=5, deadline=None, database=None)
    ... @given(ot_problems(max_size=4, extreme=False))
    ... def test(p):
    ...     assert check_result(p.solve(), p) == []
    >>> test()
    """
    st = _st()

    @st.composite
    def build(draw):
        dt = np.dtype(draw(st.sampled_from(dtypes)))
        n = draw(st.integers(1, max_size))
        m = draw(st.integers(1, max_size))
        tiny = 1e-300 if dt == np.float64 else 1e-30
        w_el = st.one_of(
            st.floats(1e-3, 1.0),
            st.just(0.0),
            st.floats(tiny, 1e-8) if extreme else st.floats(1e-3, 1.0),
        )
        a = np.array(draw(st.lists(w_el, min_size=n, max_size=n)), dtype=np.float64)
        b = np.array(draw(st.lists(w_el, min_size=m, max_size=m)), dtype=np.float64)
        if a.sum() <= 0:
            a[0] = 1.0
        if b.sum() <= 0:
            b[0] = 1.0
        mass = draw(st.sampled_from([1.0, 1.0, 0.25, 3.0]))
        a = a / a.sum() * mass
        b = b / b.sum() * mass
        scale = draw(st.sampled_from([1e-3, 1.0, 1e3] if extreme else [1.0]))
        lo = draw(st.sampled_from([0.0, -1.0]))
        M = np.array(draw(st.lists(st.floats(lo, 1.0), min_size=n * m, max_size=n * m))).reshape(n, m) * scale
        spread = float(M.max() - M.min()) or scale
        reg = draw(st.sampled_from([1e-3, 1e-2, 1e-1, 1.0, 10.0])) * spread
        method = draw(st.sampled_from(methods))
        return OTProblem(a.astype(dt), b.astype(dt), M.astype(dt), float(reg), method)

    return build()


def linear_programs(*, max_vars: int = 6, max_rows: int = 5, statuses=(0, 2, 3), scales=(1.0, 1e-4, 1e4)):
    """Small LPs with a known status. Optimal ones are boxed (every variable has finite
    bounds, so a feasible point makes the LP bounded) around a known feasible point;
    infeasible ones hold two rows ``a x <= beta`` and ``-a x <= -beta - delta``; unbounded ones
    have a variable with cost < 0, no upper bound and no constraint. Data is integer, then
    multiplied by one of ``scales`` (scaling must not change the status).

    Parameters
    ----------
    max_vars, max_rows : int
        Largest number of variables and of constraint rows.
    statuses : tuple of int
        The statuses drawn (0 optimal, 2 infeasible, 3 unbounded).
    scales : tuple of float
        Factors applied to all the data.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of :class:`LinearProgram` (optimal ones with HiGHS's optimal value in ``fun``).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from optcore.testing import check_result, linear_programs
    >>> @settings(max_examples=5, deadline=None, database=None)
    ... @given(linear_programs(max_vars=3, max_rows=2, scales=(1.0,)))
    ... def test(lp):
    ...     assert check_result(lp.solve(), lp) == []
    >>> test()
    """
    st = _st()
    ints = st.integers(-9, 9)

    @st.composite
    def build(draw):
        n = draw(st.integers(1, max_vars))
        m_ub = draw(st.integers(0, max_rows))
        m_eq = draw(st.integers(0, max(0, min(max_rows - m_ub, n - 1))))
        status = draw(st.sampled_from(statuses))
        s = draw(st.sampled_from(scales))
        x_feas = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), float)
        c = np.array(draw(st.lists(ints, min_size=n, max_size=n)), float)
        A_ub = np.array(draw(st.lists(ints, min_size=m_ub * n, max_size=m_ub * n)), float).reshape(m_ub, n)
        slack = np.array(draw(st.lists(st.integers(0, 3), min_size=m_ub, max_size=m_ub)), float)
        b_ub = A_ub @ x_feas + slack
        A_eq = np.array(draw(st.lists(ints, min_size=m_eq * n, max_size=m_eq * n)), float).reshape(m_eq, n)
        b_eq = A_eq @ x_feas
        bounds = [(0.0, 5.0)] * n
        if status == 2:
            a = np.array(draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), float)
            if not a.any():
                a[0] = 1.0
            beta = float(a @ x_feas)
            delta = float(draw(st.integers(1, 4)))
            A_ub = np.vstack([A_ub, a, -a])
            b_ub = np.r_[b_ub, beta, -beta - delta]
        elif status == 3:
            c = np.r_[c, -float(draw(st.integers(1, 5)))]
            A_ub = np.hstack([A_ub, np.zeros((A_ub.shape[0], 1))])
            A_eq = np.hstack([A_eq, np.zeros((A_eq.shape[0], 1))])
            bounds = bounds + [(0.0, None)]
        fun = None
        if status == 0:
            fun = _highs_fun(c * s, A_ub * s, b_ub * s, A_eq * s, b_eq * s, bounds)
        return LinearProgram(
            c * s,
            A_ub * s if A_ub.size else None,
            b_ub * s if A_ub.size else None,
            A_eq * s if A_eq.size else None,
            b_eq * s if A_eq.size else None,
            bounds,
            status,
            fun,
        )

    return build()


def _highs_fun(c, A_ub, b_ub, A_eq, b_eq, bounds):
    from scipy.optimize import linprog

    r = linprog(
        c,
        A_ub if A_ub.size else None,
        b_ub if A_ub.size else None,
        A_eq if A_eq.size else None,
        b_eq if A_eq.size else None,
        bounds=bounds,
        method="highs",
    )
    return float(r.fun) if r.status == 0 else None


def fixed_point_problems(*, max_dim: int = 6, dtypes=(np.float64, np.float32), extreme: bool = True):
    """Nonexpansive maps with known answers: projections composed onto a box and a ball that
    intersect (consistent: every fixed point lies in both sets), Douglas–Rachford on a
    ball and a hyperplane that misses it (inconsistent: the displacement is the gap vector),
    and the averaged linear map ``x -> c + s (x - c)`` (a Python callable, ``0 <= s <= 1``;
    its fixed point is ``c``). With ``extreme``, ``x0`` is sometimes scaled to 1e200 (1e30 in
    float32), where unscaled norms overflow.

    Parameters
    ----------
    max_dim : int
        Largest dimension.
    dtypes : tuple of dtype
        The dtypes of ``x0`` drawn.
    extreme : bool
        Sometimes start consistent problems at 1e200 (1e30 in float32).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of :class:`FixedPointProblem`.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from optcore.testing import check_result, fixed_point_problems
    >>> @settings(max_examples=5, deadline=None, database=None)
    ... @given(fixed_point_problems(max_dim=3, extreme=False))
    ... def test(p):
    ...     assert check_result(p.solve(), p) == []
    >>> test()
    """
    st = _st()

    @st.composite
    def build(draw):
        from optcore.fixed_point import operators as ops

        d = draw(st.integers(1, max_dim))
        dt = np.dtype(draw(st.sampled_from(dtypes)))
        x0 = np.array(draw(st.lists(st.floats(-10, 10), min_size=d, max_size=d)), dtype=dt)
        kind = draw(st.integers(0, 2))
        # Only consistent problems start far out: at 1e200 a gap of order 1 is below the
        # spacing of the floats, and the computed DR map has fixed points there.
        if extreme and kind != 1 and draw(st.integers(0, 3)) == 0:
            x0 = (x0.astype(np.float64) * (1e200 if dt == np.float64 else 1e30)).astype(dt)
        if kind == 2:
            c = np.array(draw(st.lists(st.floats(-5, 5), min_size=d, max_size=d)), dtype=dt)
            s = dt.type(draw(st.sampled_from([0.0, 0.5, 0.9, 1.0])))

            def T(x, c=c, s=s):
                return (c + s * (x - c)).astype(x.dtype)

            # s = 1 is the identity: every point is fixed.
            return FixedPointProblem(T, x0, np.zeros(d))
        if kind == 0:
            r = draw(st.floats(0.5, 3.0))
            T = ops.Compose(ops.Box(-1.0, 1.0, dim=d), ops.Ball(np.zeros(d), r))
            return FixedPointProblem(T, x0, np.zeros(d))
        r = draw(st.floats(0.5, 2.0))
        gap = draw(st.floats(0.5, 5.0))
        u = np.zeros(d)
        u[draw(st.integers(0, d - 1))] = 1.0
        ball = ops.Ball(np.zeros(d), r)
        plane = ops.Affine(u[None, :], [r + gap])
        # DR's iterates drift by the gap between the sets: from the ball to the plane.
        return FixedPointProblem(ops.DouglasRachford(ball, plane), x0, gap * u)

    return build()


def bilevel_quadratics(*, max_dx: int = 5, max_dy: int = 12):
    """Bilevel quadratics with closed-form hypergradients and optima.

    Parameters
    ----------
    max_dx, max_dy : int
        Largest upper- and lower-level dimensions.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of :class:`BilevelQuadratic`.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from optcore.testing import bilevel_quadratics, check_result
    >>> @settings(max_examples=3, deadline=None, database=None)
    ... @given(bilevel_quadratics(max_dx=2, max_dy=3))
    ... def test(p):
    ...     assert check_result(p.solve(), p) == []
    >>> test()
    """
    st = _st()
    return st.builds(
        BilevelQuadratic,
        d_x=st.integers(1, max_dx),
        d_y=st.integers(1, max_dy),
        seed=st.integers(0, 2**31 - 1),
    )


def zo_problems(*, max_dim: int = 8, bounded=(False, True)):
    """Shifted ellipsoids ``f(x) = sum_i w_i (x_i - s_i)^2`` (conditioning up to 100) with the
    minimiser inside the optional bounds.

    Parameters
    ----------
    max_dim : int
        Largest dimension.
    bounded : tuple of bool
        Whether problems with bounds ``(-3, 3)`` are drawn, without, or both.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of :class:`ZOProblem`.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from optcore.testing import check_result, zo_problems
    >>> @settings(max_examples=3, deadline=None, database=None)
    ... @given(zo_problems(max_dim=3))
    ... def test(p):
    ...     assert check_result(p.solve(rng=0), p) == []
    >>> test()
    """
    st = _st()

    @st.composite
    def build(draw):
        d = draw(st.integers(1, max_dim))
        s = np.array(draw(st.lists(st.floats(-2, 2), min_size=d, max_size=d)))
        w = np.logspace(0, draw(st.floats(0, 2)), d)
        x0 = np.array(draw(st.lists(st.floats(-4, 4), min_size=d, max_size=d)))
        bounds = (-3.0, 3.0) if draw(st.sampled_from(bounded)) else None

        def f(x, s=s, w=w):
            return float(np.sum(w * (np.asarray(x, float) - s) ** 2))

        return ZOProblem(f, x0, s, 0.0, bounds)

    return build()
