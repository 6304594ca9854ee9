"""Entropic optimal transport.

>>> import numpy as np, optcore
>>> rng = np.random.default_rng(0)
>>> x, y = rng.random((50, 2)), rng.random((60, 2))
>>> M = ((x[:, None] - y[None]) ** 2).sum(-1)
>>> a, b = np.full(50, 1 / 50), np.full(60, 1 / 60)
>>> res = optcore.ot.sinkhorn(a, b, M, reg=1e-2)
>>> bool(res.success), res.marginal_error <= 1e-9
(True, True)
"""

from __future__ import annotations

from .._backend import array_backend
from .._result import OTResult
from .._validation import check_options
from . import checks
from ._cpu import solve as _solve_cpu
from .barycenter import BarycenterResult, barycenter, grid_cost
from .divergence import DivergenceResult, sinkhorn_divergence
from .grid import Grid, solve_grid
from .mirror import MirrorResult, mirror_sinkhorn
from .options import METHODS, default_tol
from .sparse import SparseOTResult, smooth_ot, sparse_ot
from .unbalanced import reg_m_pair, solve_dense

__all__ = [
    "sinkhorn",
    "METHODS",
    "default_tol",
    "mirror_sinkhorn",
    "MirrorResult",
    "sparse_ot",
    "smooth_ot",
    "SparseOTResult",
    "Grid",
    "barycenter",
    "BarycenterResult",
    "grid_cost",
    "sinkhorn_divergence",
    "DivergenceResult",
]


def sinkhorn(
    a,
    b,
    M=None,
    reg=None,
    *,
    x=None,
    y=None,
    return_plan: bool | str = "auto",
    reg_m=None,
    method: str = "log",
    tol: float | None = None,
    maxiter: int = 10_000,
    x0=None,
    callback=None,
    check_every: int = 10,
    disp: bool = False,
    workers: int | None = None,
    warn: bool = True,
    options: dict | None = None,
) -> OTResult:
    r"""Entropic optimal transport by Sinkhorn iterations.

    Solves

    .. math::
        \min_{P \ge 0,\; P 1 = a,\; P^\top 1 = b} \langle P, M\rangle + \mathrm{reg} \sum_{ij} P_{ij} \log P_{ij}

    whose solution is :math:`P_{ij} = \exp((f_i + g_j - M_{ij}) / \mathrm{reg})` for dual
    potentials ``f``, ``g`` (returned, in the units of ``M``).

    Parameters
    ----------
    a : array_like, shape (n,)
        Source weights: non-negative, finite. ``None`` or ``[]``: uniform.
    b : array_like, shape (m,) or (m, k)
        Target weights, with the same total mass as ``a`` (relative 1e-6; within that, ``b`` is
        rescaled to ``sum(a)`` and the marginals are measured against it). A 2-D ``b`` holds
        ``k`` target histograms solved at once (natively by ``method="scaling"``, one after the
        other otherwise). ``None`` or ``[]``: uniform.
    M : array_like, shape (n, m) or (B, n, m)
        Cost matrix, finite (any sign). A 3-D ``M`` is a batch of ``B`` independent problems
        of the same size (``a``: (B, n) or (n,), ``b``: (B, m) or (m,)); results get a leading
        batch axis. Omit ``M`` and give ``x`` and ``y`` for point clouds. A :class:`Grid` in
        place of ``M``: the weights live on the grid (shape ``grid.shape`` or flat), the cost is
        its separable ``sum_k |x_k - y_k|^p`` and no ``n x n`` array is formed (see Notes).
    reg : float
        Entropic regularisation, > 0. ``"log"`` and ``"eps_scaling"`` are stable down to
        ``1e-4 * max(M)`` and below; ``"scaling"`` underflows once ``(M - min M) / reg`` exceeds about
        700 (float64) or 87 (float32) and then stops with status 4.
    x, y : array_like, shapes (n, d) and (m, d), optional
        Point clouds instead of ``M``: the cost is the squared Euclidean distance
        ``M_ij = ||x_i - y_j||^2``. On the GPU (CuPy arrays, ``d <= 128``, methods ``"log"``
        and ``"eps_scaling"``) it is computed on the fly and no ``n x m`` array is allocated
        unless ``return_plan=True``. On the CPU with ``method="log"``, ``return_plan=False``
        and one target histogram it is computed on the fly too (a log-domain iteration, one
        ``exp`` per pair per half-iteration, ``O((n + m) d)`` memory; ``marginal_error``,
        ``cost`` and ``fun`` are measured exactly on the implied plan, each entry evaluated in
        float64 from the returned potentials); otherwise the CPU forms ``M``.
    return_plan : bool or "auto"
        ``False``: do not form the plan (``plan`` and ``x`` are None); potentials, ``cost``,
        ``fun`` and ``marginal_error`` are still returned (measured on the implied plan).
        ``"auto"`` (default): True, except on a :class:`Grid` (there ``True`` forms the
        dense ``(n, n)`` plan once, eagerly, from the returned potentials).
    reg_m : float or (float, float), optional
        Unbalanced OT: the weight of the KL relaxation of the marginals, one for both or
        ``(reg_m_a, reg_m_b)``; ``inf`` keeps that marginal a constraint, and ``None`` or
        ``inf`` (the default) is the balanced problem, solved exactly as without ``reg_m``.
        With a finite ``reg_m`` (methods ``"log"`` and ``"eps_scaling"``, one problem, one
        histogram, dense ``M``, point clouds or a :class:`Grid`) the problem is POT's
        ``sinkhorn_unbalanced`` (``reg_type="kl"``) and OTT's ``tau = reg_m / (reg_m + reg)``:
        ``min <P, M> + reg KL(P | a b^T) + reg_m_a KL(P 1 | a) + reg_m_b KL(P^T 1 | b)`` with
        ``KL(p | q) = sum p log(p / q) - p + q``; ``a`` and ``b`` may have different masses.
        ``fun`` is that objective (POT's ``total_cost`` omits the ``- p + q`` mass terms of
        the three KLs), ``mass`` the plan's total mass, and ``marginal_error`` (what ``tol``
        bounds) the residual of the optimality conditions
        ``||P 1 - a~||_1 + ||P^T 1 - b~||_1`` with ``a~ = a exp(-(f - reg log a) / reg_m_a)``,
        ``b~`` alike (the balanced marginal error when ``reg_m`` is ``inf``), measured on the
        returned plan (or, without one, on the plan the returned potentials imply, in
        float64).
    method : {"log", "eps_scaling", "scaling", "sns"}
        ``"log"``: log-domain potentials, stable for any ``reg``. Iterations run in the
        stabilised scaling form: the current plan is kept as a kernel and updated by
        multiplicative row and column scalings (one fused pass over the kernel per
        iteration, no exponential); the scalings are absorbed into the potentials and the
        kernel rebuilt (one exponential per entry) only when they leave a safe range, and a
        row or column sum that under- or overflows triggers an exact max-shifted log-sum-exp
        iteration. Over-relaxed by default (see ``options``). ``"eps_scaling"``: log-domain
        with ``reg`` annealed geometrically from ``max(M) - min(M)`` down to ``reg``, each
        stage warm-starting the next; it helps mainly when ``reg`` is tiny relative to the
        cost range (on well-scaled problems the over-relaxed ``"log"`` is usually as fast).
        With ``x0`` it runs only the final stage. ``"scaling"``: the classic
        ``u / (K v)`` iteration on ``K = exp(-M/reg)``; fastest per iteration for large
        ``reg``, but it stops with status 4 once ``(M - min M) / reg`` exceeds about 700
        (float64) or 87 (float32). ``"sns"``: Sinkhorn–Newton–Sparse (Tang et al., 2024): a
        log-domain Sinkhorn stage, then Newton steps on the concave dual with the Hessian
        sparsified to its largest entries (exact diagonal, a damping shift proportional to the
        gradient norm, conjugate gradients on the Schur complement, backtracking line search,
        a Sinkhorn step as fallback). Reaches ``tol`` near machine precision in a few dozen
        iterations where plain Sinkhorn needs thousands (small ``reg``). The stage switch is
        automatic: after the first Sinkhorn iteration whose marginal error is below
        ``switch_tol * sum(a)``, or below three times that and less than 2× better than the one
        10 iterations earlier, or less than 2× better than 500 iterations earlier. In float32 it
        reaches about ``1e-5`` (the default ``tol``), like ``"log"``.
    tol : float, optional
        Bound on ``||P 1 - a||_1 + ||P^T 1 - b||_1`` **of the returned plan**;
        ``success`` is True exactly when it holds. Default :func:`default_tol` (1e-9 in
        float64, 1e-5 in float32).
    maxiter : int
        Maximum number of Sinkhorn iterations (each updates ``f`` and ``g`` once).
    x0 : tuple (f, g), optional
        Warm start: potentials in the units of ``M`` (e.g. ``(res.f, res.g)`` of an earlier
        solve; ``-inf`` entries are allowed). Shapes ``(n,)``, ``(m,)``, or ``(k, n)``,
        ``(k, m)`` with ``k`` histograms.
    callback : callable, optional
        ``callback(intermediate_result)`` every ``check_every`` iterations, with an
        :class:`~optcore.OTResult` holding ``nit``, ``marginal_error``, ``f``, ``g`` (and
        ``reg``, the current regularisation of ``eps_scaling``). Raising ``StopIteration``
        stops the solve: the current plan is returned with ``status=99``.
    check_every : int
        Iterations between callbacks and progress lines. The marginal error itself is
        measured every iteration at no extra cost; Ctrl-C is honoured within about 0.2 s.
    disp : bool
        Print one line per check (iteration, marginal error, elapsed time) and a summary.
    workers : int, optional
        Threads (``None`` or -1: all cores). Results are bit-identical for any value.
    warn : bool
        Warn :class:`~optcore.ConvergenceWarning` when the solve does not converge.
    options : dict, optional
        ``method="log"`` and ``"eps_scaling"``: ``overrelaxation``, ``"auto"`` (default: the
        plain iteration's observed linear rate ``kappa`` sets
        ``omega = 2 / (1 + sqrt(1 - kappa))``, reverting to plain iterations if the error
        grows), ``1.0`` (plain Sinkhorn) or a fixed ``omega`` in ``(1, 2)``.
        ``method="eps_scaling"`` also: ``eps0`` (initial regularisation, default
        ``max(M) - min(M)``), ``eps_decay`` (factor per stage, default 0.5), ``stage_tol``
        (marginal error that ends an intermediate stage, default 1e-3) and
        ``stage_maxiter`` (iterations per intermediate stage, default 100).
        ``method="sns"``: ``overrelaxation`` (of the Sinkhorn stage), ``density`` (fraction
        of the ``n*m`` plan entries kept in the sparsified Hessian; default: adaptive, at least
        the paper's ``2 / min(n, m)`` of the Hessian's ``(n+m)**2`` entries, i.e. ``3 / n`` of
        the plan's when ``n = m``, enough of the largest entries to hold all but 1e-5 of the
        plan's mass, and every entry at least 1e-3 of its row's or column's sum),
        ``warmup`` (a fixed number of Sinkhorn iterations before Newton, as in the paper,
        instead of the automatic switch; 0 starts with Newton), ``switch_tol`` (default
        1e-2), ``cg_maxiter`` (conjugate-gradient iterations per Newton step, default 1000)
        and ``eps_scaling`` (anneal ``reg`` in the Sinkhorn stage, default False: fewer Newton
        steps when ``reg`` is below about ``1e-3 * (max(M) - min(M))``, at the price of more
        Sinkhorn iterations).

    Returns
    -------
    OTResult
        ``plan`` (also ``x``), ``f``, ``g``, ``cost`` (``<P, M>``), ``fun`` (the objective
        above), ``marginal_error`` (measured on ``plan``), ``nit``, ``success``, ``status``
        (0 converged, 1 iteration limit, 4 numerical breakdown, 99 callback), ``message``,
        ``method``, ``reg``, ``tol``; ``method="sns"`` adds ``n_sinkhorn`` and ``n_newton``
        (``nit`` is their sum; fallback Sinkhorn steps of the Newton stage count as Sinkhorn),
        ``hessian_density`` (fraction of the plan's entries in the last sparsified Hessian),
        ``cg_iterations`` and ``line_search_evals`` (plan passes of the line search). With
        ``k`` histograms ``plan`` has shape ``(k, n, m)``
        and ``cost``, ``fun``, ``marginal_error`` shape ``(k,)``.
        A finite ``reg_m`` adds ``reg_m`` (the pair) and ``mass`` (the plan's total mass);
        on a :class:`Grid`, ``f`` and ``g`` have the grid's shape, ``grid`` is the grid,
        ``mass`` is set and ``plan`` is None unless ``return_plan=True``.

    Raises
    ------
    ValueError
        Negative or non-finite weights, unequal masses, non-finite ``M``, shape mismatches,
        ``reg <= 0``, unknown ``method`` or ``options``.
    TypeError
        Complex or non-numeric data; CuPy mixed with NumPy.

    Notes
    -----
    float32 inputs give float32 results; sums that decide convergence are accumulated in
    float64. Rows and columns with zero weight get zero plan entries and ``-inf`` potentials.

    **Grids.** With ``M=Grid(axes, p)`` each half-iteration applies the Gibbs kernel in the
    log domain as ``d`` 1-D max-shifted log-sum-exp passes (one per axis, threads over the
    other axes' lines): ``n * sum_k n_k`` exponentials instead of ``n**2``, stable at any
    ``reg``. Methods ``"log"`` (over-relaxed log-domain iterations) and ``"eps_scaling"``;
    ``f`` and ``g`` have the grid's shape; ``marginal_error``, ``cost`` and ``fun`` are
    measured in float64 on the implied plan through the same separable passes.

    **GPU.** With CuPy arrays the solve runs on the device and returns CuPy arrays (nothing
    goes through the host but the scalars of each check): ``"log"`` and ``"eps_scaling"`` run
    CUDA kernels (``kernels/ot_sinkhorn.cu``: one fused log-sum-exp pass over the cost per
    half-iteration, the marginal error accumulated on the device every iteration and read
    every ``check_every`` iterations); ``"scaling"`` uses cuBLAS products; ``"sns"`` forms the
    dense plan on the device, picks the kept entries from a histogram of their exponents (no
    sort), and runs conjugate gradients on a ``cupyx.scipy.sparse`` CSR Hessian (one problem
    per call). Grids and a finite ``reg_m`` run there too (``"log"``, ``"eps_scaling"``; one
    problem per call): the unbalanced update ``f = reg log a - tau reg LSE`` is a parameter of
    the same kernels, and a grid's half-iteration is the separable 1-D log-sum-exp passes
    written with CuPy operations (no ``n x n`` array); objective, residual, success rule and
    result fields are those of the CPU path. ``workers`` is ignored there. NumPy and CuPy
    arrays mixed in one call raise TypeError.

    Examples
    --------
    >>> import numpy as np, optcore
    >>> a = np.array([0.5, 0.5]); b = np.array([0.25, 0.75])
    >>> M = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> res = optcore.ot.sinkhorn(a, b, M, reg=0.1)
    >>> np.round(res.plan, 3)
    array([[0.25, 0.25],
           [0.  , 0.5 ]])
    """
    is_grid = isinstance(M, Grid)
    backend = array_backend(a, b, None if is_grid else M, x, y, names=("a", "b", "M", "x", "y"))
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}.")
    method = method.lower()
    opts = check_options(options, METHODS[method], method)
    if isinstance(return_plan, str) and return_plan == "auto":
        return_plan = not is_grid
    checks.arguments(M, reg, x, y, return_plan)
    pair = reg_m_pair(reg_m)
    kwargs = dict(
        method=method,
        tol=tol,
        maxiter=maxiter,
        x0=x0,
        callback=callback,
        check_every=check_every,
        disp=disp,
        warn=warn,
        return_plan=return_plan,
    )
    if backend == "cupy":
        import cupy  # noqa: PLC0415  (the inputs are CuPy arrays, so CuPy is there)

        from ._device import sinkhorn_device  # noqa: PLC0415
        from ._gpu.launch import CupyKernels  # noqa: PLC0415

        return sinkhorn_device(cupy, CupyKernels, a, b, M, reg, x=x, y=y, options=options, reg_m=pair, **kwargs)
    if is_grid:
        kwargs.pop("method")
        return solve_grid(a, b, M, reg, pair, method=method, opts=opts, workers=workers, **kwargs)
    if pair is not None:
        if x is not None:
            from ._cpu import _sq_euclidean  # noqa: PLC0415

            M = _sq_euclidean(x, y)
        kwargs.pop("method")
        return solve_dense(a, b, M, reg, pair, method=method, opts=opts, workers=workers, **kwargs)
    return _solve_cpu(a, b, M, reg, x=x, y=y, opts=opts, workers=workers, **kwargs)
