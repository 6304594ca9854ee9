"""Finite-sum monotone inclusions: ``0 ∈ (1/N) Σ_i F_i(z) + N_C(z)``.

>>> import numpy as np, optcore
>>> rps = optcore.monotone.MatrixGame([[0, 1, -1], [-1, 0, 1], [1, -1, 0]])   # rock-paper-scissors
>>> res = optcore.monotone.solve(rps, ([1.0, 0, 0], [0, 1.0, 0]), method="eg", tol=1e-8)
>>> bool(res.success), abs(res.fun) < 1e-8, np.round(res.x, 6)
(True, True, array([0.333333, 0.333333, 0.333333]))

Problems: :class:`MatrixGame` (bilinear games over simplices), :class:`QuadraticMinMax`
(unconstrained convex-concave quadratics), :class:`SampleSaddle` (a saddle averaged over the
samples of sparse data, components drawn by importance: where ``"vr_halpern"`` saves epochs),
:class:`FiniteSum` (any ``F_i`` given as a Python callable, with an optional projection). Methods of :func:`solve`: ``"vr_halpern"`` (Cai,
Alacaoglu & Diakonikolas, ICLR 2024: Algorithm 2 with VR-FoRB for monotone Lipschitz sums,
Algorithm 1 with the PAGE estimator for cocoercive ones) and the deterministic ``"halpern"``,
``"eag"`` and ``"eg"``. All run in the Rust core.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import _core
from ._progress import Progress
from ._result import STATUS_MESSAGES, OptimizeResult, finish
from ._validation import (
    as_float_array,
    check_finite,
    check_options,
    nonnegative_scalar,
    normalize_workers,
    positive_int,
    positive_scalar,
    seed_from_rng,
)
from .monotone_sampled import SampleSaddle

__all__ = [
    "MatrixGame",
    "QuadraticMinMax",
    "SampleSaddle",
    "FiniteSum",
    "MonotoneResult",
    "GameResult",
    "solve",
    "METHODS",
]

#: The methods of :func:`solve` and their ``options`` keys.
METHODS = {
    "eg": ("step", "max_epochs"),
    "eag": ("step", "max_epochs", "restart"),
    "halpern": ("resolvent", "inner", "max_epochs", "restart"),
    "vr_halpern": ("step", "resolvent", "inner", "batch", "cocoercive", "max_epochs", "restart"),
}


#: Counts (``maxiter``, ``check_every``, ``inner``, ``batch``) above this are clamped to it: the
#: core counts in 64 bits, and no run gets near it.
_COUNT_MAX = 2**62


def _count(value, name: str, *, minimum: int = 1) -> int:
    """An integer option of any size, clamped to ``_COUNT_MAX`` (``TypeError`` naming ``name``
    for bools, floats and strings)."""
    return positive_int(value, name, minimum=minimum, maximum=_COUNT_MAX, clamp=True)


def _size(value, name: str) -> int:
    """A problem size: a positive integer below ``_COUNT_MAX`` (``ValueError`` beyond)."""
    v = positive_int(value, name)
    if v > _COUNT_MAX:
        raise ValueError(f"`{name}` = {v} is too large (at most 2**62).")
    return v


def _epochs(value) -> float:
    """``options['max_epochs']``: a positive number, ``inf`` for no limit."""
    name = "options['max_epochs']"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a positive number (inf for no limit); got {type(value).__name__}.")
    try:
        v = float(value)
    except OverflowError:  # an int beyond the float range
        v = math.inf
    if not v > 0:
        raise ValueError(f"`{name}` must be positive; got {value!r}.")
    return v


def _vector_start(x0, dim: int) -> np.ndarray:
    """``x0`` as a float64 vector of length ``dim`` (zeros for None)."""
    if x0 is None:
        return np.zeros(dim)
    z = np.asarray(as_float_array(x0, "x0"), dtype=np.float64).reshape(-1)
    if z.shape != (dim,):
        raise ValueError(f"`x0` must have shape ({dim},); got {np.shape(x0)}.")
    check_finite(z, "x0")
    return z


def _spectral_norm(M: np.ndarray) -> float:
    return float(np.linalg.norm(M, 2)) if M.size else 0.0


class MatrixGame:
    r"""The bilinear zero-sum game :math:`\min_{x \in \Delta_n} \max_{y \in \Delta_m} y^\top A x`.

    ``A`` is ``(m, n)``: the minimiser picks a mixed strategy ``x`` over the ``n`` columns, the
    maximiser ``y`` over the ``m`` rows. As a monotone inclusion: ``0 ∈ F(z) + N_C(z)`` with
    ``z = (x, y)``, ``F(x, y) = (A^T y, -A x)`` (``||A||_2``-Lipschitz) and ``C`` the product of
    simplices. The finite sum has ``N = max(m, n)`` components, component ``k`` being ``N``
    times row ``k``'s and column ``k``'s contributions: one epoch (``N`` component evaluations)
    costs one ``A x`` and one ``A^T y``.

    Parameters
    ----------
    A : array_like, shape (m, n)
        The payoff matrix, finite (float32 and integer matrices are used in float64).

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.monotone import MatrixGame, solve
    >>> game = MatrixGame([[2.0, -1.0], [-1.0, 1.0]])
    >>> res = solve(game, method="eag", tol=1e-8)
    >>> res.success, np.round(res.x, 4), round(res.fun, 4)  # value 1/5 at x = (2/5, 3/5)
    (True, array([0.4, 0.6]), 0.2)
    """

    def __init__(self, A):
        A = as_float_array(A, "A")
        if A.ndim != 2 or A.size == 0:
            raise ValueError(f"`A` must be a non-empty 2-D payoff matrix of shape (m, n); got shape {A.shape}.")
        check_finite(A, "A")
        self.dtype = A.dtype
        self.A = np.ascontiguousarray(A, dtype=np.float64)
        self._lipschitz: float | None = None
        self._native = None

    @classmethod
    def policeman_burglar(cls, n: int = 500, rng=None, theta: float = 0.8) -> MatrixGame:
        """The "policeman and burglar" game of Nemirovski's tutorial, as in Cai et al.'s
        experiments: ``A_ij = w_i (1 - exp(-theta |i - j|))``, ``w_i = |N(0, 1)|``."""
        n = positive_int(n, "n")
        w = np.abs(np.random.default_rng(rng).standard_normal(n))
        idx = np.arange(n)
        return cls(w[:, None] * (1.0 - np.exp(-theta * np.abs(idx[:, None] - idx[None, :]))))

    @property
    def shape(self) -> tuple[int, int]:
        return self.A.shape

    @property
    def dim(self) -> int:
        return self.A.shape[0] + self.A.shape[1]

    @property
    def lipschitz(self) -> float:
        """``||A||_2``, the Lipschitz constant of ``F``."""
        if self._lipschitz is None:
            self._lipschitz = _spectral_norm(self.A)
        return self._lipschitz

    def gap(self, x, y) -> float:
        """Duality gap ``max_i (A x)_i - min_j (A^T y)_j`` of the strategies ``(x, y)`` (>= 0 on
        the simplices; 0 exactly at an equilibrium, and the game's value lies in between)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        return float((self.A @ x).max() - (self.A.T @ y).min())

    def operator(self, z) -> np.ndarray:
        """``F(z)`` (for checks)."""
        z = np.asarray(z, dtype=np.float64)
        n = self.A.shape[1]
        return np.concatenate([self.A.T @ z[n:], -(self.A @ z[:n])])

    def _problem(self):
        if self._native is None:
            L = self.lipschitz
            self._native = _core.fs_game(self.A, L if L > 0 else 1.0)
        return self._native

    def _start(self, x0):
        m, n = self.A.shape
        if x0 is None:
            return np.concatenate([np.full(n, 1.0 / n), np.full(m, 1.0 / m)])
        try:
            xs, ys = x0
        except (TypeError, ValueError):
            raise ValueError("`x0` must be a pair (x0, y0) of strategies.") from None
        xs = as_float_array(xs, "x0[0]").astype(np.float64)
        ys = as_float_array(ys, "x0[1]").astype(np.float64)
        if xs.shape != (n,) or ys.shape != (m,):
            raise ValueError(f"`x0` must be strategies of shapes ({n},) and ({m},); got {xs.shape} and {ys.shape}.")
        check_finite(xs, "x0[0]")
        check_finite(ys, "x0[1]")
        return np.concatenate([xs, ys])


class QuadraticMinMax:
    r"""``min_x max_y  x^T H x / 2 - h^T x - <A x - b, y>`` (unconstrained; ``H`` symmetric
    positive semidefinite), i.e. ``F(x, y) = (H x - h - A^T y, A x - b)``, monotone and
    ``||M||_2``-Lipschitz with ``M = [[H, -A^T], [A, 0]]``. The finite sum splits ``F`` by the
    rows of ``M`` (``N = dim`` components). With no ``A`` (``A`` of shape ``(0, d_x)``) it is the
    gradient of a convex quadratic, which is cocoercive: ``"vr_halpern"`` then runs Algorithm 1.

    ``z = (x, y)``; the solution solves ``M z = (h, b)``.

    Parameters
    ----------
    H : array_like, shape (d_x, d_x)
        The symmetric positive semidefinite Hessian of the ``x`` part (``ValueError`` when not
        symmetric).
    A : array_like, shape (d_y, d_x)
        The coupling matrix; ``d_y = 0`` (shape ``(0, d_x)``) for a plain convex quadratic.
    h : array_like, shape (d_x,), optional
        The linear term of ``x`` (default 0).
    b : array_like, shape (d_y,), optional
        The right-hand side of the coupling (default 0).

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.monotone import QuadraticMinMax, solve
    >>> q = QuadraticMinMax.lower_bound(20)
    >>> res = solve(q, method="eag", tol=1e-6, options={"max_epochs": 20_000})
    >>> res.success, bool(np.linalg.norm(res.x - q.solution()) < 1e-3)
    (True, True)
    """

    def __init__(self, H, A, h=None, b=None):
        H = as_float_array(H, "H")
        A = as_float_array(A, "A")
        if H.ndim != 2 or H.shape[0] != H.shape[1] or H.size == 0:
            raise ValueError(f"`H` must be a square (d_x, d_x) matrix; got shape {H.shape}.")
        dx = H.shape[0]
        if A.ndim != 2 or A.shape[1] != dx:
            raise ValueError(f"`A` must have shape (d_y, {dx}); got {A.shape}.")
        dy = A.shape[0]
        check_finite(H, "H")
        check_finite(A, "A")
        if not np.allclose(H, H.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(H).max()))):
            raise ValueError("`H` must be symmetric (positive semidefinite).")
        self.dtype = np.result_type(H.dtype, A.dtype)
        self.H = np.asarray(H, dtype=np.float64)
        self.A = np.asarray(A, dtype=np.float64)
        self.h = np.zeros(dx) if h is None else np.asarray(as_float_array(h, "h"), dtype=np.float64)
        self.b = np.zeros(dy) if b is None else np.asarray(as_float_array(b, "b"), dtype=np.float64)
        if self.h.shape != (dx,) or self.b.shape != (dy,):
            raise ValueError(f"`h` must have shape ({dx},) and `b` ({dy},); got {self.h.shape} and {self.b.shape}.")
        check_finite(self.h, "h")
        check_finite(self.b, "b")
        self.M = np.block([[self.H, -self.A.T], [self.A, np.zeros((dy, dy))]])
        self.q = np.concatenate([-self.h, -self.b])
        self._native = None
        self._lipschitz: float | None = None

    @classmethod
    def lower_bound(cls, n: int = 200) -> QuadraticMinMax:
        """The instance of Cai et al.'s second experiment (after Ouyang & Xu's lower-bound
        construction): ``A`` bidiagonal / 4 (1 on the diagonal, -1 above it), ``H = 2 A^T A``,
        ``h = A^T e_n / 4``, ``b = e_n / 4``; ``x`` and ``y`` in ``R^n``."""
        n = positive_int(n, "n")
        A = (np.eye(n) - np.eye(n, k=1)) / 4.0
        e = np.zeros(n)
        e[-1] = 1.0
        return cls(2.0 * A.T @ A, A, h=A.T @ e / 4.0, b=e / 4.0)

    @property
    def dim(self) -> int:
        return self.M.shape[0]

    @property
    def lipschitz(self) -> float:
        if self._lipschitz is None:
            self._lipschitz = _spectral_norm(self.M)
        return self._lipschitz

    def operator(self, z) -> np.ndarray:
        return self.M @ np.asarray(z, dtype=np.float64) + self.q

    def solution(self) -> np.ndarray:
        """A solution of ``M z = -q`` (least squares when ``M`` is singular)."""
        return np.linalg.lstsq(self.M, -self.q, rcond=None)[0]

    def _problem(self):
        if self._native is None:
            L = self.lipschitz
            norm_a = _spectral_norm(self.A)
            # The saddle split lets "halpern" run on the PDHG operator (exact resolvent in its metric).
            saddle = (self.H.shape[0], norm_a) if self.A.shape[0] > 0 and norm_a > 0 else None
            self._native = _core.fs_linear(
                np.ascontiguousarray(self.M),
                np.ascontiguousarray(self.q),
                L if L > 0 else 1.0,
                self.A.shape[0] == 0,
                saddle,
            )
        return self._native

    def _start(self, x0):
        return _vector_start(x0, self.dim)


class FiniteSum:
    r"""``F = (1/n) Σ_i F_i`` given by Python callables.

    Parameters
    ----------
    F : callable
        ``F(i, z)`` with ``i`` an int64 array of component indices and ``z`` a float64 array
        of shape ``(dim,)``: returns ``F_i(z)`` for every ``i``, shape ``(len(i), dim)``
        (batched: one call serves many components).
    n, dim : int
        Number of components and dimension of ``z``.
    lipschitz : float
        A bound on the Lipschitz constant of ``F`` (steps are set from it).
    lipschitz_ms : float, optional
        Mean-square Lipschitz constant of the components under uniform sampling,
        ``sqrt(E_i ||F_i(u) - F_i(v)||^2) / ||u - v||`` at worst; default ``sqrt(n) * lipschitz``.
    full : callable, optional
        ``full(z) -> F(z)``; default: the mean of ``F(arange(n), z)``.
    project : callable or optcore.fixed_point.operators projection, optional
        The projection onto ``C`` (``z -> P_C(z)``); a native one (``operators.Box``,
        ``operators.Simplex``, ...) runs without Python in the loop; default: unconstrained.
    cocoercive : bool
        ``F`` is ``1/lipschitz``-cocoercive (e.g. the gradient of a convex smooth sum):
        ``"vr_halpern"`` then runs Algorithm 1.

    Examples
    --------
    ``F_i(z) = z - c_i``: the mean of the ``c_i`` solves ``F(z) = 0``.

    >>> import numpy as np
    >>> from optcore.monotone import FiniteSum, solve
    >>> c = np.array([[1.0, 0.0], [3.0, 2.0]])
    >>> fs = FiniteSum(lambda i, z: z - c[i], n=2, dim=2, lipschitz=1.0, cocoercive=True)
    >>> res = solve(fs, method="eg", tol=1e-8)
    >>> bool(res.success), np.round(res.x, 6).tolist()
    (True, [2.0, 1.0])
    """

    def __init__(
        self,
        F,
        n: int,
        dim: int,
        *,
        lipschitz: float,
        lipschitz_ms: float | None = None,
        full=None,
        project=None,
        cocoercive: bool = False,
    ):
        if not callable(F):
            raise TypeError(f"`F` must be callable F(i, z); got {type(F).__name__}.")
        if full is not None and not callable(full):
            raise TypeError(f"`full` must be callable full(z) or None; got {type(full).__name__}.")
        from .fixed_point.operators import Operator  # noqa: PLC0415

        if isinstance(project, Operator):
            if project.dim != dim:
                raise ValueError(f"`project` acts on dimension {project.dim}; the problem has dim = {dim}.")
            project = project._handle
        if project is not None and not (callable(project) or isinstance(project, _core.NativeOperator)):
            raise TypeError(
                "`project` must be a callable z -> P(z), an optcore.fixed_point.operators projection, or None."
            )
        self.n = _size(n, "n")
        self.dim = _size(dim, "dim")
        self.lipschitz = positive_scalar(lipschitz, "lipschitz")
        self.lipschitz_ms = (
            np.sqrt(self.n) * self.lipschitz if lipschitz_ms is None else positive_scalar(lipschitz_ms, "lipschitz_ms")
        )
        self.F, self.full, self.project, self.cocoercive = F, full, project, bool(cocoercive)
        self.dtype = np.dtype(np.float64)
        self._native = None

    def _component(self, i, z):
        out = np.asarray(self.F(i, z))
        if out.dtype.kind not in "fiu":
            raise TypeError(f"F(i, z) must return real numbers; got dtype {out.dtype}.")
        out = out.astype(np.float64, copy=False)
        if out.shape not in ((len(i), self.dim),) and not (len(i) == 1 and out.shape == (self.dim,)):
            raise ValueError(f"F(i, z) returned shape {out.shape}; expected ({len(i)}, {self.dim}).")
        if not np.all(np.isfinite(out)):
            raise ValueError(f"F(i, z) returned NaN or infinite values (components {i[:5].tolist()}).")
        return np.ascontiguousarray(out.reshape(len(i), self.dim))

    def operator(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if self.full is not None:
            out = np.asarray(self.full(z), dtype=np.float64).reshape(-1)
            if out.shape != (self.dim,):
                raise ValueError(f"full(z) returned shape {out.shape}; expected ({self.dim},).")
            if not np.all(np.isfinite(out)):
                raise ValueError("full(z) returned NaN or infinite values.")
            return out
        total = np.zeros(self.dim)
        for s in range(0, self.n, 4096):
            idx = np.arange(s, min(self.n, s + 4096), dtype=np.int64)
            total += self._component(idx, z).sum(axis=0)
        return total / self.n

    def _problem(self):
        if self._native is None:
            proj = self.project
            if proj is not None and not isinstance(proj, _core.NativeOperator):
                user = proj

                def proj(z):
                    out = np.asarray(user(z), dtype=np.float64).reshape(-1)
                    if out.shape != (self.dim,) or not np.all(np.isfinite(out)):
                        raise ValueError(f"project(z) must return {self.dim} finite values; got shape {out.shape}.")
                    return np.ascontiguousarray(out)

            self._native = _core.fs_python(
                lambda i, z: self._component(i, z)[0],
                lambda z: self.operator(z),
                self.n,
                self.dim,
                self.lipschitz,
                self.lipschitz_ms,
                self.cocoercive,
                proj,
            )
        return self._native

    def _start(self, x0):
        return _vector_start(x0, self.dim)


class MonotoneResult(OptimizeResult):
    """Result of :func:`optcore.monotone.solve`.

    Attributes
    ----------
    x : ndarray
        The solution ``z`` (for a :class:`MatrixGame`: the minimiser's strategy; ``y`` holds
        the maximiser's, and ``z`` both).
    residual : float
        Natural (operator-norm) residual ``L ||z - P_C(z - F(z) / L)||`` of the returned point
        (``L``: the problem's Lipschitz constant); 0 exactly at a solution.
    nit : int
        Iterations (outer iterations of ``"halpern"`` and ``"vr_halpern"``).
    nfev : int
        Component evaluations by the method (a full ``F`` counts ``N``); ``epochs = nfev / N``.
    n_residual : int
        Full evaluations spent checking the residual (not in ``nfev``; ``"halpern"`` on a game or
        a quadratic min-max checks from its own products and spends 2: the start and the end).
    history : ndarray, shape (checks, 2)
        ``(epochs, residual)`` at every check.
    restarts : int
        Adaptive re-anchorings (``options['restart']``).
    variant : str
        What ran (``"vr_halpern"`` says which algorithm).
    gap, fun, y
        :class:`MatrixGame` only: duality gap, ``y^T A x``, the maximiser's strategy
        (:class:`SampleSaddle`: ``fun`` is the saddle function's value; others: None).
    success, status, message
        ``success`` is True exactly when ``residual <= tol``; ``status`` 0 converged, 1
        iteration or epoch limit, 4 numerical breakdown, 99 stopped by the callback.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.monotone import QuadraticMinMax, solve
    >>> q = QuadraticMinMax(np.eye(2), np.array([[1.0, 1.0]]), h=np.ones(2), b=[1.0])
    >>> res = solve(q, method="eag", tol=1e-8)
    >>> type(res).__name__, bool(res.success), bool(res.residual <= 1e-8), res.history.shape[1]
    ('MonotoneResult', True, True, 2)
    """


#: Kept for code written against the first API (a matrix game's result is a MonotoneResult).
GameResult = MonotoneResult


def solve(
    problem,
    x0=None,
    *,
    method: str = "eg",
    tol: float = 1e-6,
    maxiter: int = 100_000,
    rng=None,
    callback=None,
    check_every: int = 10,
    disp: bool = False,
    warn: bool = True,
    workers: int | None = None,
    options: dict | None = None,
) -> MonotoneResult:
    """Solve a finite-sum monotone inclusion ``0 ∈ F(z) + N_C(z)``.

    Parameters
    ----------
    problem : MatrixGame, QuadraticMinMax, SampleSaddle or FiniteSum
    x0 : optional
        Start (projected onto ``C``): a pair ``(x0, y0)`` of strategies for a
        :class:`MatrixGame` (default uniform), a vector of length ``dim`` otherwise (default 0).
        The anchored methods anchor at it.
    method : {"eg", "eag", "halpern", "vr_halpern"}
        ``"eg"``: extragradient. ``"eag"``: extra-anchored gradient (Yoon & Ryu 2021),
        ``O(1/k)`` on the residual. ``"halpern"``: on a :class:`MatrixGame` or a
        :class:`QuadraticMinMax`, restarted reflected Halpern on the PDHG operator (the
        resolvent of ``F + N_C`` in the PDHG metric, computed exactly at one epoch per
        iteration, plus one for the first products; a quadratic's ``I + τH`` is factored once,
        counted in the epochs), restarted
        on its fixed-point residual as in cuPDLPx (games also adapt the primal weight, as PDLP
        does): linear convergence on these sharp problems, the method to reach 1e-6. On games,
        after restarts (and each time the residual halves) it also tries the equilibrium on
        the supports the iterate suggests (two linear solves, counted in the epochs) and moves
        there when that point's residual, measured with a full ``F``, is smaller: a nearly
        degenerate game then ends at its equilibrium to rounding instead of creeping through
        the identification of its supports; on a :class:`FiniteSum`, inexact Halpern on the resolvent
        ``J_{c(F + N_C)}`` computed by forward-reflected-backward steps on the full ``F``.
        ``"vr_halpern"``: the variance-reduced Halpern methods of Cai, Alacaoglu & Diakonikolas
        (2024): Algorithm 2 (monotone Lipschitz sums: the same outer loop, the resolvent by
        VR-FoRB with minibatches of ``options['batch']`` components (default 16) and a snapshot
        refreshed with probability ``batch/N``, ``⌊0.05 N ln(k+2)⌋`` components per outer
        iteration) or, for cocoercive problems, Algorithm 1 (one-step Halpern with the PAGE
        estimator, minibatches of ``⌊√N⌋``). Components are drawn uniformly, except on a
        :class:`SampleSaddle`, which draws them by importance (probability proportional to
        their Lipschitz constants, each weighted by ``1/(N π_i)``).
    tol : float
        Stop when the natural residual of the current point is ``<= tol``.
    maxiter : int
        Iterations (outer iterations for the Halpern methods).
    rng : int or numpy.random.Generator, optional
        Seeds the sampling of ``"vr_halpern"`` (same seed, same run).
    callback, check_every, disp, warn
        As in every optcore solver; the residual is checked (one full evaluation of ``F``,
        counted in ``n_residual``, not in ``nfev``) every ``check_every`` iterations. Halpern on
        the PDHG operator has ``F`` at its point from its own products, so its checks cost no
        evaluation; the residual it stops with is re-measured with a full one.
    workers : int, optional
        Threads for the run (``None`` or ``-1``: all cores; ``1``: serial). The result does
        not depend on it.
    options : dict, optional
        ``max_epochs`` (budget in component evaluations / N); ``step`` (EG/EAG step, default
        ``0.5 / L``; Algorithm 1's ``η``, default ``1 / L``; VR-FoRB's step, default
        ``2 sqrt(p) / (c L_b + 1)`` with ``p = batch/N`` and ``L_b² = L² + (L_ms² - L²)/batch``);
        ``resolvent`` (``c``: default ``1 / L`` for ``"halpern"`` on a :class:`FiniteSum`,
        ``sqrt(N / batch) / L_b`` for Algorithm 2, ``L_ms`` the mean-square Lipschitz constant of
        the components under the problem's sampling); ``inner`` (inner steps per outer
        iteration); ``batch`` (Algorithm 1's
        and Algorithm 2's minibatch, at most ``N``, resp. ``N / 2``: larger values are clamped). No option
        carries a run past ``max_epochs``: the inner loops stop when the budget is spent.
        ``cocoercive`` (force Algorithm 1 or 2); ``restart`` (anchored methods: re-anchor when
        a check finds the residual below ``restart`` times its value at the last anchor; for
        ``"halpern"`` on the PDHG operator, the sufficient-decrease factor of its restarts;
        default 0.2, 0 never).

    Returns
    -------
    MonotoneResult

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.monotone import MatrixGame, solve
    >>> game = MatrixGame(np.array([[0.0, 1.0], [1.0, 0.0]]))  # value 1/2, both play (1/2, 1/2)
    >>> res = solve(game, method="eag", tol=1e-8)
    >>> res.success, np.round(res.x, 4), np.round(res.y, 4), round(res.fun, 6)
    (True, array([0.5, 0.5]), array([0.5, 0.5]), 0.5)
    """
    if not isinstance(problem, (MatrixGame, QuadraticMinMax, SampleSaddle, FiniteSum)):
        raise TypeError(
            "`problem` must be an optcore.monotone MatrixGame, QuadraticMinMax, SampleSaddle or FiniteSum; "
            f"got {type(problem).__name__}."
        )
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}.")
    method = method.lower()
    opts = check_options(options, METHODS[method], method)
    z0 = problem._start(x0)
    tol = nonnegative_scalar(tol, "tol")
    maxiter = _count(maxiter, "maxiter", minimum=0)
    check_every = _count(check_every, "check_every")
    workers = normalize_workers(workers)
    L = problem.lipschitz
    kw = {}
    if "step" in opts:
        kw["step"] = positive_scalar(opts["step"], "options['step']")
        if method in ("eg", "eag") and L > 0 and kw["step"] * L >= 1:
            raise ValueError(f"options['step'] must be below 1 / L = {1 / L:.4g}; got {opts['step']!r}.")
    if "resolvent" in opts:
        kw["resolvent"] = positive_scalar(opts["resolvent"], "options['resolvent']")
    if "inner" in opts:
        kw["inner"] = _count(opts["inner"], "options['inner']")
    if "batch" in opts:
        # A minibatch larger than N is clamped to N (in the core).
        kw["batch"] = _count(opts["batch"], "options['batch']")
    if "cocoercive" in opts:
        if not isinstance(opts["cocoercive"], (bool, np.bool_)):
            raise TypeError(f"options['cocoercive'] must be True or False; got {opts['cocoercive']!r}.")
        kw["cocoercive"] = bool(opts["cocoercive"])
    restart = nonnegative_scalar(opts.get("restart", 0.2), "options['restart']")
    if restart >= 1:
        raise ValueError(f"options['restart'] must be in [0, 1); got {restart}.")
    max_epochs = _epochs(opts["max_epochs"]) if "max_epochs" in opts else math.inf
    seed = seed_from_rng(rng, high=2**63 - 1)
    is_game = isinstance(problem, MatrixGame)

    def build(state: dict) -> MonotoneResult:
        z = state["x"]
        r = MonotoneResult(x=z, residual=state["error"], nit=state["nit"], epochs=state.get("epochs"), method=method)
        if is_game:
            n = problem.shape[1]
            r.update(x=z[:n], y=z[n:], gap=problem.gap(z[:n], z[n:]))
        return r

    shape = f"A {problem.shape[0]}x{problem.shape[1]}" if is_game else f"dim {problem.dim}"
    progress = Progress(callback, disp, build, f"optcore.monotone.solve(method={method!r}, tol={tol:g}), {shape}")
    native = problem._problem()
    out = _core.monotone_solve(
        native,
        np.ascontiguousarray(z0),
        method,
        tol,
        maxiter,
        max_epochs,
        seed=seed,
        check_every=check_every,
        restart=restart,
        progress=progress if progress.active else None,
        workers=workers,
        **kw,
    )
    status = int(out["status"])
    resid = float(out["residual"])
    N = native.n
    epochs = out["nfev"] / N
    if status == 0:
        message = f"Converged: residual {resid:.3e} <= tol {tol:.1e}."
    elif status == 1:
        message = (
            f"Iteration or epoch limit reached: residual {resid:.3e} > tol {tol:.1e} after {out['nit']} "
            f"iterations ({epochs:.4g} epochs)."
        )
    else:
        message = f"{STATUS_MESSAGES.get(status, 'Stopped.')} {out['detail']}".strip()
    z = np.asarray(out["z"]).astype(problem.dtype if problem.dtype in (np.float32, np.float64) else np.float64)
    res = MonotoneResult(
        x=z,
        residual=resid,
        nit=int(out["nit"]),
        nfev=int(out["nfev"]),
        epochs=epochs,
        n_residual=int(out["n_residual"]),
        history=np.asarray(out["history"], dtype=np.float64).reshape(-1, 2),
        restarts=int(out["restarts"]),
        variant=out["variant"],
        status=status,
        success=status == 0,
        message=message,
        method=method,
    )
    if is_game:
        n = problem.shape[1]
        x, y = z[:n], z[n:]
        res.update(x=x, y=y, z=z, gap=problem.gap(x, y), fun=float(y.astype(np.float64) @ problem.A @ x))
    elif isinstance(problem, SampleSaddle):
        res["fun"] = problem.objective(z)
    else:
        res["fun"] = None
    return finish(res, "optcore.monotone.solve", progress=progress, warn=warn)


def problem_is_cocoercive(problem) -> bool:
    """Whether ``"vr_halpern"`` runs Algorithm 1 on ``problem`` by default."""
    if isinstance(problem, QuadraticMinMax):
        return problem.A.shape[0] == 0
    return bool(getattr(problem, "cocoercive", False))
