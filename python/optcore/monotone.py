"""Monotone variational inequalities: bilinear matrix games over simplices.

>>> import numpy as np, optcore
>>> rps = optcore.monotone.MatrixGame([[0, 1, -1], [-1, 0, 1], [1, -1, 0]])   # rock-paper-scissors
>>> res = optcore.monotone.solve(rps, ([1.0, 0, 0], [0, 1.0, 0]), method="eg", tol=1e-8)
>>> bool(res.success), abs(res.fun) < 1e-8, np.round(res.x, 6)
(True, True, array([0.333333, 0.333333, 0.333333]))

Only the deterministic methods ``"eg"`` (extragradient) and ``"eag"`` (extra-anchored gradient,
Halpern anchoring applied to extragradient) on :class:`MatrixGame` are implemented so far;
the variance-reduced Halpern methods of issue 5 are not.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import _core
from ._progress import Progress
from ._result import STATUS_MESSAGES, OptimizeResult
from ._validation import as_float_array, check_finite, check_options, nonnegative_scalar, positive_int, positive_scalar
from .exceptions import ConvergenceWarning

__all__ = ["MatrixGame", "GameResult", "solve", "METHODS"]

#: The methods of :func:`solve` and their ``options`` keys.
METHODS = {"eg": ("step",), "eag": ("step",)}


class MatrixGame:
    r"""The bilinear zero-sum game :math:`\min_{x \in \Delta_n} \max_{y \in \Delta_m} y^\top A x`.

    ``A`` is ``(m, n)``: the minimiser picks a mixed strategy ``x`` over the ``n`` columns, the
    maximiser ``y`` over the ``m`` rows. As a monotone inclusion: ``0 ∈ F(z) + N_C(z)`` with
    ``F(x, y) = (A^T y, -A x)`` (``||A||_2``-Lipschitz) and ``C`` the product of simplices.
    """

    def __init__(self, A):
        A = as_float_array(A, "A")
        if A.ndim != 2 or A.size == 0:
            raise ValueError(f"`A` must be a non-empty 2-D payoff matrix of shape (m, n); got shape {A.shape}.")
        check_finite(A, "A")
        self.A = np.ascontiguousarray(A, dtype=np.float64)
        self._lipschitz: float | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.A.shape

    @property
    def lipschitz(self) -> float:
        """``||A||_2``, the Lipschitz constant of ``F``."""
        if self._lipschitz is None:
            self._lipschitz = float(np.linalg.norm(self.A, 2))
        return self._lipschitz

    def gap(self, x, y) -> float:
        """Duality gap ``max_i (A x)_i - min_j (A^T y)_j`` of the strategies ``(x, y)`` (>= 0 on
        the simplices; 0 exactly at an equilibrium, and the game's value lies in between)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        return float((self.A @ x).max() - (self.A.T @ y).min())


class GameResult(OptimizeResult):
    """Result of :func:`optcore.monotone.solve` on a :class:`MatrixGame`.

    Attributes
    ----------
    x, y : ndarray
        The minimiser's (columns) and maximiser's (rows) mixed strategies.
    fun : float
        ``y^T A x``; within ``gap`` of the value of the game.
    gap : float
        ``max_i (A x)_i - min_j (A^T y)_j``: the game's value lies in
        ``[min_j (A^T y)_j, max_i (A x)_i]``.
    residual : float
        Natural residual ``||z - P_C(z - step F z)|| / step`` of ``z = (x, y)``.
    nit, nfev : int
        Iterations and evaluations of ``F`` (each one ``A x`` and one ``A^T y``: one epoch).
    """


def solve(
    problem: MatrixGame,
    x0=None,
    *,
    method: str = "eg",
    tol: float = 1e-6,
    maxiter: int = 100_000,
    callback=None,
    check_every: int = 10,
    disp: bool = False,
    warn: bool = True,
    options: dict | None = None,
) -> GameResult:
    """Solve a matrix game by extragradient (``"eg"``) or extra-anchored gradient (``"eag"``).

    Parameters
    ----------
    problem : MatrixGame
    x0 : tuple (x0, y0), optional
        Starting strategies (projected onto the simplices); default uniform. ``"eag"``
        anchors every step at them.
    method : {"eg", "eag"}
        ``"eg"``: ``z+ = P(z - s F(P(z - s F z)))``; converges linearly on matrix games
        (polyhedral). ``"eag"``: the same two steps taken from ``z + (z0 - z)/(k+2)``
        (Yoon & Ryu 2021), an O(1/k) rate on the residual for any monotone Lipschitz ``F``.
    tol : float
        Stop when the duality gap of the current strategies is ``<= tol`` (measured on what
        is returned).
    maxiter : int
    callback, check_every, disp, warn
        As in every optcore solver; the callback gets a :class:`GameResult` with ``x``, ``y``,
        ``gap`` and ``nit``.
    options : dict, optional
        ``step``: the step ``s`` (default ``0.5 / ||A||_2``; it must be below ``1 / ||A||_2``).

    Returns
    -------
    GameResult
    """
    if not isinstance(problem, MatrixGame):
        raise TypeError(f"`problem` must be an optcore.monotone.MatrixGame; got {type(problem).__name__}.")
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}.")
    method = method.lower()
    opts = check_options(options, METHODS[method], method)
    m, n = problem.shape
    if x0 is None:
        xs, ys = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    else:
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
    tol = nonnegative_scalar(tol, "tol")
    maxiter = positive_int(maxiter, "maxiter", minimum=0)
    check_every = positive_int(check_every, "check_every")
    L = problem.lipschitz
    if "step" in opts:
        step = positive_scalar(opts["step"], "options['step']")
        if L > 0 and step * L >= 1:
            raise ValueError(f"options['step'] must be below 1 / ||A||_2 = {1 / L:.4g}; got {step!r}.")
    else:
        step = 0.5 / L if L > 0 else 1.0

    def build(state: dict) -> GameResult:
        return GameResult(x=state["x"], y=state["y"], gap=state["error"], nit=state["nit"], method=method)

    progress = Progress(callback, disp, build, f"optcore.monotone.solve(method={method!r}, tol={tol:g}), A {m}x{n}")
    out = _core.matrix_game_f64(problem.A, np.ascontiguousarray(xs), np.ascontiguousarray(ys), method, step, tol,
                                maxiter, progress if progress.active else None, check_every)
    status = int(out["status"])
    gap = float(out["gap"])
    if status == 0:
        message = f"Converged: duality gap {gap:.3e} <= tol {tol:.1e}."
    elif status == 1:
        message = f"Iteration limit reached: duality gap {gap:.3e} > tol {tol:.1e} after {out['nit']} iterations."
    else:
        message = f"{STATUS_MESSAGES.get(status, 'Stopped.')} {out['detail']}".strip()
    res = GameResult(
        x=out["x"], y=out["y"], fun=float(out["value"]), gap=gap, residual=float(out["residual"]), nit=int(out["nit"]),
        nfev=int(out["nfev"]), status=status, success=status == 0, message=message, method=method, step=step,
    )
    progress.finish(res)
    if warn and status in (1, 4):
        warnings.warn(f"optcore.monotone.solve: {message}", ConvergenceWarning, stacklevel=2)
    return res
