"""The Sinkhorn divergence (debiased entropic OT) and its gradients from the potentials.

>>> import numpy as np, optcore
>>> rng = np.random.default_rng(0)
>>> x, y = rng.random((20, 2)), rng.random((30, 2)) + 0.5
>>> res = optcore.ot.sinkhorn_divergence(None, x, None, y, reg=0.05, return_grad=True)
>>> bool(res.success), res.fun > 0, res.grad_x.shape
(True, True, (20, 2))
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .._result import OptimizeResult, finish
from .._validation import as_float_array, check_finite, positive_scalar
from . import checks

__all__ = ["DivergenceResult", "sinkhorn_divergence"]

_OBJECTIVES = ("entropic", "transport")


class DivergenceResult(OptimizeResult):
    """Result of :func:`sinkhorn_divergence`.

    Attributes
    ----------
    fun : float
        The divergence ``S = OT(a, b) - OT(a, a) / 2 - OT(b, b) / 2``.
    x : None
        Nothing is optimised (SciPy's field, kept for the common result interface).
    ot_ab, ot_aa, ot_bb : float
        The three terms.
    marginal_error : ndarray, shape (3,)
        The measured marginal errors of the three solves (``ab``, ``aa``, ``bb``).
    nit : int
        The largest iteration count of the three solves (each at most ``maxiter``).
    grad_a, grad_b : ndarray
        (``return_grad=True``) Gradients with respect to the weights (see Notes).
    grad_x, grad_y : ndarray
        (``return_grad=True``, point clouds) Gradients with respect to the positions.
    grad_M, grad_Ma, grad_Mb : ndarray
        (``return_grad=True``, dense costs) Gradients with respect to the cost matrices:
        ``P_ab``, ``-P_aa / 2``, ``-P_bb / 2``.
    success, status, message
        ``success`` is True exactly when all three solves met ``tol`` on their returned plans.

    Examples
    --------
    >>> import numpy as np, optcore
    >>> x = np.array([[0.0], [1.0]])
    >>> res = optcore.ot.sinkhorn_divergence(None, x, None, x, reg=0.1)   # a measure against itself
    >>> type(res).__name__, bool(res.success), abs(res.fun) < 1e-9, res.marginal_error.shape
    ('DivergenceResult', True, True, (3,))
    """

    ot_ab: float
    ot_aa: float
    ot_bb: float
    marginal_error: np.ndarray


def sinkhorn_divergence(
    a,
    x=None,
    b=None,
    y=None,
    reg=None,
    *,
    M=None,
    Ma=None,
    Mb=None,
    objective: str = "entropic",
    return_grad: bool = False,
    tol: float | None = None,
    maxiter: int = 10_000,
    method: str = "log",
    workers: int | None = None,
    warn: bool = True,
    options: dict | None = None,
) -> DivergenceResult:
    r"""Sinkhorn divergence ``OT(a, b) - OT(a, a)/2 - OT(b, b)/2``, with gradients.

    With ``objective="entropic"`` (default; Feydy et al. 2019, GeomLoss) ``OT`` is the entropic
    transport value :math:`\mathrm{OT}_\varepsilon(a, b) = \min_P \langle P, C\rangle +
    \varepsilon\,\mathrm{KL}(P \,|\, a \otimes b)`, computed from the dual potentials as
    :math:`\langle a, f\rangle + \langle b, g\rangle` (GeomLoss's formula). The divergence is
    then non-negative, zero exactly when the two measures are equal (for the squared Euclidean
    cost), and its gradients come from the potentials by the envelope theorem: no
    differentiation through the iterations. With ``objective="transport"`` ``OT`` is the
    transport cost ``<P, C>`` of the entropic plan, as POT's
    ``ot.bregman.empirical_sinkhorn_divergence`` computes it (no gradients).

    The three problems are solved by :func:`optcore.ot.sinkhorn` (``method``, ``tol``,
    ``maxiter``, ``options`` passed on); the symmetric ones by the same alternating solver, their
    two potentials averaged into the symmetric one where the gradients need it (GeomLoss uses
    averaged symmetric updates instead; both reach the same fixed point).

    Parameters
    ----------
    a, b : array_like, shapes (n,) and (m,)
        Weights: non-negative, finite, the same total mass. ``None``: uniform.
    x, y : array_like, shapes (n, d) and (m, d), optional
        Point clouds; the cost is the squared Euclidean distance ``|x_i - y_j|^2`` (as in
        :func:`optcore.ot.sinkhorn`). The three costs and plans are formed (the fast dense
        solver) with gradients or up to ``2**24`` pairs per problem; beyond, without gradients,
        the cost is computed on the fly (``O((n + m) d)`` memory).
    reg : float
        Entropic regularisation :math:`\varepsilon`, > 0.
    M, Ma, Mb : array_like, shapes (n, m), (n, n), (m, m), optional
        The dense form, instead of ``x`` and ``y``: the costs between the supports of ``a`` and
        ``b``, of ``a`` with itself and of ``b`` with itself (all three needed; ``Ma`` and ``Mb``
        symmetric for the divergence to be meaningful). Or ``M`` an :class:`optcore.ot.Grid`
        (``Ma``, ``Mb`` not given): ``a`` and ``b`` live on the grid (its shape, or flat), the
        three problems are solved by the separable grid solver (no ``n x n`` array), and the
        gradients are ``grad_a`` and ``grad_b`` (in the grid's shape; they need positive weights).
    objective : {"entropic", "transport"}
        The value of each ``OT`` term (see above).
    return_grad : bool
        Also return the gradients (``objective="entropic"`` only).
    tol, maxiter, method, workers, warn, options
        Passed to each :func:`optcore.ot.sinkhorn` solve (``tol``: bound on each returned
        plan's L1 marginal error).

    Returns
    -------
    DivergenceResult
        ``fun`` (the divergence), ``ot_ab``, ``ot_aa``, ``ot_bb``, ``marginal_error`` (3,),
        ``nit``, ``success``, ``status``, ``message``; the gradients with ``return_grad=True``.

    Raises
    ------
    ValueError
        Missing or inconsistent costs (``x`` without ``y``, ``M`` without ``Ma``/``Mb``, both
        forms), bad shapes, weights, ``reg``, ``objective``, or ``return_grad`` with
        ``objective="transport"``; anything :func:`optcore.ot.sinkhorn` rejects.
    TypeError
        Non-boolean ``return_grad``, complex data.

    Notes
    -----
    ``grad_a = f_ab - (f_aa + g_aa) / 2`` and ``grad_b = g_ab - (f_bb + g_bb) / 2`` in the
    normalisation of GeomLoss (potentials of :math:`\mathrm{KL}(P \,|\, a \otimes b)`, i.e. ``f - reg
    log a`` in :func:`optcore.ot.sinkhorn`'s units; at zero weights the c-transform extends
    them). The weights live on the simplex, so these gradients are defined up to a constant
    (``+c`` for ``a``, ``-c`` for ``b``); the one returned makes
    ``<a, grad_a> = <b, grad_b> = fun / 2``, so that ``fun = <a, grad_a> + <b, grad_b>``.
    On a grid the weight gradients use ``f - reg log a`` itself (equal to the c-transform up to
    the marginal error ``tol``).
    ``grad_x[i] = 2 sum_j P_ab[i, j] (x_i - y_j) - sum_k (P_aa + P_aa^T)[i, k] (x_i - x_k)``
    (and likewise ``grad_y``): the derivative of ``fun`` with respect to the positions.
    Values and gradients are float64 computations; gradients have the data's dtype.

    Examples
    --------
    >>> import numpy as np, optcore
    >>> x = np.array([[0.0], [1.0]]); y = x + 0.5  # a translation by 0.5: S = 0.5 ** 2
    >>> res = optcore.ot.sinkhorn_divergence(None, x, None, y, reg=0.1, return_grad=True)
    >>> round(res.fun, 6), res.grad_x.ravel().round(6)
    (0.25, array([-0.5, -0.5]))
    """
    if objective not in _OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {list(_OBJECTIVES)}.")
    if not isinstance(return_grad, (bool, np.bool_)):
        raise TypeError(f"`return_grad` must be True or False; got {return_grad!r}.")
    if return_grad and objective == "transport":
        raise ValueError(
            "`return_grad` needs objective='entropic': the gradients of the transport-cost form are not "
            "given by the potentials."
        )
    if reg is None:
        raise ValueError("`reg` (the entropic regularisation, > 0) is required.")
    reg = positive_scalar(reg, "reg")
    from .grid import Grid  # noqa: PLC0415

    if isinstance(M, Grid):
        if x is not None or y is not None or Ma is not None or Mb is not None:
            raise ValueError("with a Grid `M`, give neither `x`, `y` nor `Ma`, `Mb`: the grid is every support.")
        return _grid_divergence(a, b, M, reg, objective, return_grad, tol, maxiter, method, workers, warn, options)
    clouds = x is not None or y is not None
    dense = M is not None or Ma is not None or Mb is not None
    if clouds and dense:
        raise ValueError("give either the point clouds `x` and `y` or the costs `M`, `Ma`, `Mb`, not both.")
    if clouds:
        if x is None or y is None:
            raise ValueError("give both point clouds `x` and `y`.")
        xa, ya = checks.point_clouds(checks.native(as_float_array(x, "x")), checks.native(as_float_array(y, "y")))
        check_finite(xa, "x")
        check_finite(ya, "y")
        sizes = (xa.shape[0], ya.shape[0])
    elif dense:
        if M is None or Ma is None or Mb is None:
            raise ValueError("the dense form needs all three costs `M` (n, m), `Ma` (n, n) and `Mb` (m, m).")
        Mc, Mac, Mbc = (checks.native(as_float_array(v, nm)) for v, nm in ((M, "M"), (Ma, "Ma"), (Mb, "Mb")))
        if Mc.ndim != 2:
            raise ValueError(f"`M` must be a 2-D cost matrix (n, m); got shape {Mc.shape}.")
        n, m = Mc.shape
        for arr, nm, want in ((Mac, "Ma", (n, n)), (Mbc, "Mb", (m, m))):
            if arr.shape != want:
                raise ValueError(f"`{nm}` must have shape {want} for `M` of shape {Mc.shape}; got {arr.shape}.")
        sizes = (n, m)
    else:
        raise ValueError("give the point clouds `x` and `y`, or the costs `M`, `Ma` and `Mb`.")
    aa = _weights(a, "a", sizes[0])
    bb = _weights(b, "b", sizes[1])

    from . import sinkhorn  # noqa: PLC0415  (the package imports this module)

    kw = dict(tol=tol, maxiter=maxiter, method=method, workers=workers, warn=False, options=options)
    if clouds:
        # The dense solver (the cost and plan formed) is several times faster per iteration than
        # the on-the-fly one: it is used up to 2**24 pairs per problem, or whenever the plans are
        # needed (gradients); beyond, the cost is computed on the fly (O((n + m) d) memory).
        n, m = sizes
        dense_ok = return_grad or max(n, m) ** 2 <= 2**24
        pairs = ((aa, bb, xa, ya), (aa, aa, xa, xa), (bb, bb, ya, ya))
        sols = [sinkhorn(p, q, reg=reg, x=u, y=v, return_plan=dense_ok, **kw) for p, q, u, v in pairs]
    else:
        pairs = ((aa, bb, Mc), (aa, aa, Mac), (bb, bb, Mbc))
        sols = [sinkhorn(p, q, C, reg, return_plan=return_grad, **kw) for p, q, C in pairs]
    ab, sa, sb = sols
    if objective == "entropic":
        vals = [_dual_value(s, p, q, reg) for s, (p, q) in zip(sols, ((aa, bb), (aa, aa), (bb, bb)))]
    else:
        vals = [float(s.cost) for s in sols]
    res = _assemble(sols, vals, objective, reg)
    if return_grad:
        costs = (_sq(xa, ya), _sq(xa, xa), _sq(ya, ya)) if clouds else (Mc, Mac, Mbc)
        _gradients(res, sols, costs, reg, (aa, bb), (xa, ya) if clouds else None)
    finish(res, "optcore.ot.sinkhorn_divergence", warn=warn, stacklevel=3)
    return res


def _grid_divergence(a, b, grid, reg, objective, return_grad, tol, maxiter, method, workers, warn, options):
    """:func:`sinkhorn_divergence` on a grid (its ``M`` a :class:`optcore.ot.Grid`)."""
    from . import sinkhorn  # noqa: PLC0415  (the package imports this module)

    shape = tuple(grid.shape)
    aa = _weights(None if a is None else np.reshape(as_float_array(a, "a"), -1), "a", grid.size)
    bb = _weights(None if b is None else np.reshape(as_float_array(b, "b"), -1), "b", grid.size)
    if return_grad and (np.any(aa <= 0) or np.any(bb <= 0)):
        raise ValueError("`return_grad` on a grid needs positive weights `a` and `b` (a zero weight has no potential).")
    kw = dict(tol=tol, maxiter=maxiter, method=method, workers=workers, warn=False, options=options)
    pairs = ((aa, bb), (aa, aa), (bb, bb))
    sols = [sinkhorn(p.reshape(shape), q.reshape(shape), grid, reg, **kw) for p, q in pairs]
    flat = [(np.ravel(s.f), np.ravel(s.g)) for s in sols]
    if objective == "entropic":
        vals = [_dual_value(_Pot(f, g), p, q, reg) for (f, g), (p, q) in zip(flat, pairs)]
    else:
        vals = [float(s.cost) for s in sols]
    res = _assemble(sols, vals, objective, reg)
    if return_grad:
        la = reg * np.log(aa.astype(np.float64))
        lb = reg * np.log(bb.astype(np.float64))
        (fab, gab), (faa, gaa), (fbb, gbb) = ((f.astype(np.float64), g.astype(np.float64)) for f, g in flat)
        ga = (fab - la) - 0.5 * ((faa - la) + (gaa - la))
        gb = (gab - lb) - 0.5 * ((fbb - lb) + (gbb - lb))
        _set_weight_gradients(res, ga.reshape(shape), gb.reshape(shape), aa.reshape(shape), bb.reshape(shape), sols[0])
    finish(res, "optcore.ot.sinkhorn_divergence", warn=warn, stacklevel=4)
    return res


class _Pot:
    """Potentials ``f``, ``g`` for :func:`_dual_value`."""

    def __init__(self, f, g):
        self.f, self.g = f, g


def _weights(w, name: str, size: int) -> np.ndarray:
    arr = checks.weights(w, name, size)
    if arr.shape != (size,):
        raise ValueError(f"`{name}` must have shape ({size},); got {arr.shape}.")
    checks.check_weights(arr, name, np)
    return arr


def _sq(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``|u_i - v_j|^2`` in float64."""
    u, v = u.astype(np.float64), v.astype(np.float64)
    return np.maximum((u * u).sum(1)[:, None] + (v * v).sum(1)[None, :] - 2.0 * u @ v.T, 0.0)


def _dual_value(sol, a, b, reg: float) -> float:
    """``<a, f - reg log a> + <b, g - reg log b>`` over the positive weights (float64)."""
    total = 0.0
    for w, pot in ((a, sol.f), (b, sol.g)):
        w = np.asarray(w, dtype=np.float64)
        pos = w > 0
        total += float(np.sum(w[pos] * (np.asarray(pot, dtype=np.float64)[pos] - reg * np.log(w[pos]))))
    return total


def _geo(sol, C: np.ndarray, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """The potentials of ``KL(P | a x b)`` (``f - reg log a``), extended by the c-transform to
    every point (also where a weight is zero)."""
    f = np.asarray(sol.f, dtype=np.float64)
    g = np.asarray(sol.g, dtype=np.float64)
    fg = -reg * logsumexp((g[None, :] - C) / reg, axis=1)
    gg = -reg * logsumexp((f[:, None] - C) / reg, axis=0)
    return fg, gg


def _assemble(sols, vals, objective, reg) -> DivergenceResult:
    """The result of the three solves ``sols`` (ab, aa, bb) with their ``OT`` values ``vals``."""
    worst = max(sols, key=lambda s: (s.status != 0, s.status))
    return DivergenceResult(
        x=None,
        fun=vals[0] - 0.5 * vals[1] - 0.5 * vals[2],
        ot_ab=vals[0],
        ot_aa=vals[1],
        ot_bb=vals[2],
        marginal_error=np.array([float(s.marginal_error) for s in sols]),
        nit=max(int(s.nit) for s in sols),
        status=int(worst.status),
        message=worst.message if worst.status != 0 else "Converged: all three solves met tol on their plans.",
        objective=objective,
        reg=reg,
        tol=sols[0].tol,
    )


def _set_weight_gradients(res, ga, gb, wa, wb, ab) -> None:
    """``grad_a``, ``grad_b`` shifted so that ``<a, grad_a> = <b, grad_b> = fun / 2``."""
    wa, wb = (np.asarray(w, dtype=np.float64) for w in (wa, wb))
    c = (float(wb.ravel() @ np.ravel(gb)) - float(wa.ravel() @ np.ravel(ga))) / (2.0 * float(wa.sum()))
    dtype = np.asarray(ab.f).dtype
    res["grad_a"] = (ga + c).astype(dtype)
    res["grad_b"] = (gb - c).astype(dtype)


def _gradients(res, sols, costs, reg, weights, clouds) -> None:
    """Sets the gradients in ``res`` (see :func:`sinkhorn_divergence`'s Notes)."""
    ab, sa, sb = sols
    Cab, Caa, Cbb = (np.asarray(c, dtype=np.float64) for c in costs)
    fab, gab = _geo(ab, Cab, reg)
    faa, gaa = _geo(sa, Caa, reg)
    fbb, gbb = _geo(sb, Cbb, reg)
    _set_weight_gradients(res, fab - 0.5 * (faa + gaa), gab - 0.5 * (fbb + gbb), weights[0], weights[1], ab)
    dtype = np.asarray(ab.f).dtype
    Pab, Paa, Pbb = (np.asarray(s.plan, dtype=np.float64) for s in sols)
    if clouds is None:
        res["grad_M"] = Pab.astype(dtype)
        res["grad_Ma"] = (-0.5 * Paa).astype(dtype)
        res["grad_Mb"] = (-0.5 * Pbb).astype(dtype)
        return
    x, y = (np.asarray(v, dtype=np.float64) for v in clouds)
    Sa, Sb = Paa + Paa.T, Pbb + Pbb.T
    gx = 2.0 * (Pab.sum(1)[:, None] * x - Pab @ y) - (Sa.sum(1)[:, None] * x - Sa @ x)
    gy = 2.0 * (Pab.sum(0)[:, None] * y - Pab.T @ x) - (Sb.sum(1)[:, None] * y - Sb @ y)
    res["grad_x"] = gx.astype(dtype)
    res["grad_y"] = gy.astype(dtype)
