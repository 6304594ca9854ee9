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

import warnings

import numpy as np

from . import _core
from ._backend import array_backend
from ._progress import Progress
from ._result import STATUS_MESSAGES, OTResult
from ._validation import (
    as_float_array,
    check_finite,
    check_nonnegative,
    check_options,
    normalize_workers,
    positive_int,
    positive_scalar,
    working_dtype,
)
from .exceptions import ConvergenceWarning, NumericalError

__all__ = ["sinkhorn", "METHODS", "default_tol"]

#: The methods of :func:`sinkhorn` and their ``options`` keys.
METHODS = {
    "log": ("overrelaxation",),
    "eps_scaling": ("overrelaxation", "eps0", "eps_decay", "stage_tol", "stage_maxiter"),
    "scaling": (),
    "sns": ("overrelaxation", "density", "warmup", "switch_tol", "cg_maxiter", "eps_scaling"),
}


def default_tol(dtype) -> float:
    """The default ``tol`` of :func:`sinkhorn`: 1e-9 in float64, 1e-5 in float32 (about what
    float32 potentials can reach: plan entries carry a relative error of
    ``eps32 * |f| / reg``)."""
    return 1e-9 if np.dtype(dtype) == np.float64 else 1e-5


#: Extra result fields of ``method="sns"``.
_SNS_FIELDS = ("n_sinkhorn", "n_newton", "hessian_density", "cg_iterations", "line_search_evals")


def _sns_options(opts: dict, n: int, m: int) -> dict:
    """The ``options`` of ``method="sns"``, validated, as keyword arguments of the core."""
    out = {}
    density = opts.get("density")
    if density is not None:
        density = positive_scalar(density, "options['density']")
        if density > 1:
            raise ValueError(f"options['density'] is the fraction of plan entries kept, in (0, 1]; got {density}.")
        out["density"] = density
    warmup = opts.get("warmup")
    if warmup is not None:
        out["warmup"] = positive_int(warmup, "options['warmup']", minimum=0)
    out["switch_tol"] = positive_scalar(opts.get("switch_tol", 1e-2), "options['switch_tol']")
    out["cg_maxiter"] = positive_int(opts.get("cg_maxiter", 1000), "options['cg_maxiter']")
    eps = opts.get("eps_scaling", False)
    if not isinstance(eps, (bool, np.bool_)):
        raise TypeError(f"options['eps_scaling'] must be True or False; got {eps!r}.")
    out["eps_scaling"] = bool(eps)
    return out


def _overrelaxation(opts: dict):
    """``options['overrelaxation']``: None for "auto", else a float in [1, 2)."""
    relax = opts.get("overrelaxation", "auto")
    if isinstance(relax, str) and relax == "auto":
        return None
    omega = positive_scalar(relax, "options['overrelaxation']")
    if not 1.0 <= omega < 2.0:
        raise ValueError(f"options['overrelaxation'] must be 'auto' or a number in [1, 2); got {relax!r}.")
    return omega


def _eps_options(opts: dict) -> tuple:
    """(eps0 or None, eps_decay, stage_tol, stage_maxiter) of ``method="eps_scaling"``."""
    eps0 = opts.get("eps0")
    es = (
        None if eps0 is None else positive_scalar(eps0, "options['eps0']"),
        float(opts.get("eps_decay", 0.5)),
        positive_scalar(opts.get("stage_tol", 1e-3), "options['stage_tol']"),
        positive_int(opts.get("stage_maxiter", 100), "options['stage_maxiter']"),
    )
    if not 0 < es[1] < 1:
        raise ValueError(f"options['eps_decay'] must be in (0, 1); got {es[1]}.")
    return es


def _status_message(status: int, err, tol: float, out: dict, dtype) -> str:
    """The result message of :func:`sinkhorn` (CPU and device paths)."""
    worst_err = float(np.max(err))
    if status == 0:
        return f"Converged: marginal error {worst_err:.3e} <= tol {tol:.1e}."
    if status == 1:
        return (f"Iteration limit reached: marginal error {worst_err:.3e} > tol {tol:.1e} after "
                f"{out['nit']} iterations. Increase maxiter, or try method='eps_scaling'"
                + (" or float64 data." if dtype == np.float32 else "."))
    if status == 99:
        return STATUS_MESSAGES[99]
    return f"{STATUS_MESSAGES.get(status, 'Stopped.')} {out['detail']}".strip()


def _weights(w, name: str, size_hint: int | None) -> np.ndarray:
    if w is None or (not hasattr(w, "shape") and isinstance(w, (list, tuple)) and len(w) == 0):
        if size_hint is None:
            raise ValueError(f"`{name}` is empty and the size of M gives no default.")
        return np.full(size_hint, 1.0 / size_hint)
    arr = as_float_array(w, name)
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array of weights; got shape {arr.shape}.")
    return arr


def sinkhorn(
    a,
    b,
    M=None,
    reg=None,
    *,
    x=None,
    y=None,
    return_plan: bool = True,
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
        batch axis. Omit ``M`` and give ``x`` and ``y`` for point clouds.
    reg : float
        Entropic regularisation, > 0. ``"log"`` and ``"eps_scaling"`` are stable down to
        ``1e-4 * max(M)`` and below; ``"scaling"`` underflows once ``(M - min M) / reg`` exceeds about
        700 (float64) or 87 (float32) and then stops with status 4.
    x, y : array_like, shapes (n, d) and (m, d), optional
        Point clouds instead of ``M``: the cost is the squared Euclidean distance
        ``M_ij = ||x_i - y_j||^2``. On the GPU (CuPy arrays, ``d <= 128``, methods ``"log"``
        and ``"eps_scaling"``) it is computed on the fly and no ``n x m`` array is allocated
        unless ``return_plan=True``; on the CPU ``M`` is formed.
    return_plan : bool
        ``False``: do not form the plan (``plan`` and ``x`` are None); potentials, ``cost``,
        ``fun`` and ``marginal_error`` are still returned (measured on the implied plan).
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
        10 iterations earlier, or less than 2× better than 500 iterations earlier. In float32 it reaches about ``1e-5`` (the default ``tol``),
        like ``"log"``.
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

    **GPU.** With CuPy arrays the solve runs on the device and returns CuPy arrays (nothing
    goes through the host but the scalars of each check): ``"log"`` and ``"eps_scaling"`` run
    CUDA kernels (``kernels/ot_sinkhorn.cu``: one fused log-sum-exp pass over the cost per
    half-iteration, the marginal error accumulated on the device every iteration and read
    every ``check_every`` iterations); ``"scaling"`` uses cuBLAS products; ``"sns"`` forms the
    dense plan on the device, picks the kept entries from a histogram of their exponents (no
    sort), and runs conjugate gradients on a ``cupyx.scipy.sparse`` CSR Hessian (one problem
    per call). ``workers`` is ignored there. NumPy and CuPy arrays mixed in one call raise TypeError.

    Examples
    --------
    >>> import numpy as np, optcore
    >>> a = np.array([0.5, 0.5]); b = np.array([0.25, 0.75])
    >>> M = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> res = optcore.ot.sinkhorn(a, b, M, reg=0.1)
    >>> np.round(res.plan, 3)
    array([[0.25 , 0.25 ],
           [0.   , 0.5  ]])
    """
    backend = array_backend(a, b, M, x, y, names=("a", "b", "M", "x", "y"))
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}.")
    method = method.lower()
    opts = check_options(options, METHODS[method], method)
    if reg is None:
        raise ValueError("`reg` (the entropic regularisation, > 0) is required.")
    if (x is None) != (y is None):
        raise ValueError("give both point clouds `x` and `y`, or neither.")
    if x is not None and M is not None:
        raise ValueError("give either the cost matrix `M` or the point clouds `x` and `y`, not both.")
    if x is None and M is None:
        raise ValueError("`M` (the cost matrix) is required, or point clouds `x` and `y`.")
    kwargs = dict(method=method, tol=tol, maxiter=maxiter, x0=x0, callback=callback, check_every=check_every,
                  disp=disp, warn=warn, options=options, return_plan=return_plan)
    if backend == "cupy":
        import cupy  # noqa: PLC0415  (the inputs are CuPy arrays, so CuPy is there)

        from ._gpu.launch import CupyKernels  # noqa: PLC0415

        return _sinkhorn_device(cupy, CupyKernels, a, b, M, reg, x=x, y=y, **kwargs)
    if x is not None:
        M = _sq_euclidean(x, y)
    if not return_plan:
        res = sinkhorn(a, b, M, reg, workers=workers, **{**kwargs, "return_plan": True})
        res["plan"] = res["x"] = None
        return res
    M = as_float_array(M, "M")
    if M.ndim == 3:
        return _sinkhorn_batch_cpu(a, b, M, reg, workers=workers, **kwargs)

    Ma = as_float_array(M, "M")
    if Ma.ndim != 2:
        raise ValueError(f"`M` must be a 2-D cost matrix of shape (len(a), len(b)); got shape {Ma.shape}.")
    n, m = Ma.shape
    if n == 0 or m == 0:
        raise ValueError(f"`M` is empty (shape {Ma.shape}): there is nothing to transport.")
    aa = _weights(a, "a", n)
    bb = _weights(b, "b", m)
    if aa.ndim != 1:
        raise ValueError(f"`a` must be 1-D; got shape {aa.shape}.")
    if bb.ndim not in (1, 2):
        raise ValueError(f"`b` must be 1-D, or 2-D of shape (m, k) for k histograms; got shape {bb.shape}.")
    if Ma.shape != (aa.shape[0], bb.shape[0]):
        raise ValueError(
            f"`M` has shape {Ma.shape} but len(a) = {aa.shape[0]} and len(b) = {bb.shape[0]}: "
            "M must have shape (len(a), len(b))."
        )
    if n == 0 or m == 0 or (bb.ndim == 2 and bb.shape[1] == 0):
        raise ValueError(f"empty problem: M has shape {Ma.shape} and b has shape {bb.shape}.")
    check_nonnegative(aa, "a")
    check_nonnegative(bb, "b")
    check_finite(Ma, "M")
    reg = positive_scalar(reg, "reg")

    maxiter = positive_int(maxiter, "maxiter", minimum=0)
    check_every = positive_int(check_every, "check_every")
    workers = normalize_workers(workers)
    dtype = working_dtype(aa, bb, Ma)
    tol = default_tol(dtype) if tol is None else positive_scalar(tol, "tol")
    # Potentials and exponents are sums of terms of size |M| / reg: beyond sqrt(max) of the
    # dtype the arithmetic overflows or means nothing.
    limit = float(np.sqrt(np.finfo(dtype).max))
    with np.errstate(over="ignore", invalid="ignore"):
        lo, hi = float(Ma.min()), float(Ma.max())
        spread = max(hi - lo, abs(lo), abs(hi)) / reg
    if not spread <= limit:
        raise ValueError(
            f"`M` / `reg` is too large for {dtype} (max |M| / reg = {spread:.3g} > {limit:.3g}): "
            "rescale the cost, e.g. M = M / M.max(), and reg with it."
        )

    mass_a = float(aa.sum(dtype=np.float64))
    masses_b = np.atleast_1d(bb.sum(axis=0, dtype=np.float64))
    if mass_a <= 0:
        raise ValueError("`a` has zero total mass; at least one weight must be positive.")
    for h, mb in enumerate(masses_b):
        if abs(mb - mass_a) > 1e-6 * mass_a:
            which = "`b`" if bb.ndim == 1 else f"histogram {h} of `b` (column {h})"
            raise ValueError(
                f"`a` and {which} must have the same total mass: sum(a) = {mass_a:.10g}, "
                f"sum(b) = {mb:.10g}. Normalise them, e.g. b = b * a.sum() / b.sum()."
            )
    if np.any(masses_b != mass_a):
        # Within the accepted 1e-6: scale b onto a's mass, so that tol (far below 1e-6) is
        # attainable; the plan's marginals are then a and the rescaled b.
        scale = mass_a / masses_b if bb.ndim == 2 else mass_a / masses_b[0]
        bb = (bb.astype(np.float64) * scale).astype(bb.dtype)

    k = 1 if bb.ndim == 1 else bb.shape[1]
    f0 = g0 = None
    if x0 is not None:
        try:
            f0, g0 = x0
        except (TypeError, ValueError):
            raise ValueError("`x0` must be a pair (f, g) of potentials.") from None
        f0 = np.ascontiguousarray(as_float_array(f0, "x0[0]"), dtype=dtype)
        g0 = np.ascontiguousarray(as_float_array(g0, "x0[1]"), dtype=dtype)
        want_f, want_g = ((n,), (m,)) if bb.ndim == 1 else ((k, n), (k, m))
        if f0.shape != want_f or g0.shape != want_g:
            raise ValueError(f"`x0` shapes must be {want_f} and {want_g}; got {f0.shape} and {g0.shape}.")
        for v, nm in ((f0, "x0[0]"), (g0, "x0[1]")):
            if np.any(np.isnan(v) | (v == np.inf)):
                raise ValueError(f"`{nm}` contains NaN or +inf; potentials must be finite or -inf.")

    aa = np.ascontiguousarray(aa, dtype=dtype)
    Ma = np.ascontiguousarray(Ma, dtype=dtype)
    suffix = "f32" if dtype == np.float32 else "f64"

    def build(state: dict) -> OTResult:
        return OTResult(
            nit=state["nit"], marginal_error=state["error"], f=state.get("f"), g=state.get("g"),
            reg=state.get("reg", reg), method=method,
            **{key: state[key] for key in ("omega", "hessian_density") if key in state},
            **({"n_newton": int(state["n_newton"])} if "n_newton" in state else {}),
        )

    title = f"optcore.ot.sinkhorn(method={method!r}, reg={reg:g}, tol={tol:g}), n={n}, m={m}" + (f", k={k}" if k > 1 else "")
    progress = Progress(callback, disp, build, title)
    prog = progress if progress.active else None
    common = dict(progress=prog, check_every=check_every, workers=workers)

    if method == "scaling":
        bk = np.ascontiguousarray((bb if bb.ndim == 2 else bb[:, None]).T, dtype=dtype)
        fk = None if f0 is None else f0.reshape(k, n)
        gk = None if g0 is None else g0.reshape(k, m)
        out = getattr(_core, f"sinkhorn_scaling_{suffix}")(aa, bk, Ma, reg, tol, maxiter, fk, gk, **common)
        err = np.asarray(out["marginal_error"])
        if bb.ndim == 1:
            out.update(plan=out["plan"][0], f=out["f"][0], g=out["g"][0])
            out.update(marginal_error=float(err[0]), cost=out["cost"][0], fun=out["fun"][0])
        else:
            out.update(marginal_error=err, cost=np.asarray(out["cost"]), fun=np.asarray(out["fun"]))
    else:
        omega = _overrelaxation(opts)
        es = _eps_options(opts) if method == "eps_scaling" else None
        if method == "sns":
            extra = _sns_options(opts, n, m)
            log_fn = getattr(_core, f"sinkhorn_sns_{suffix}")

            def fn(a_, b_, M_, reg_, tol_, maxiter_, f_, g_):
                return log_fn(a_, b_, M_, reg_, tol_, maxiter_, f_, g_, omega=omega, **extra, **common)
        else:
            log_fn = getattr(_core, f"sinkhorn_log_{suffix}")

            def fn(a_, b_, M_, reg_, tol_, maxiter_, f_, g_):
                return log_fn(a_, b_, M_, reg_, tol_, maxiter_, f_, g_, es, omega, **common)

        if bb.ndim == 1:
            out = fn(aa, np.ascontiguousarray(bb, dtype=dtype), Ma, reg, tol, maxiter, f0, g0)
        else:
            outs = [
                fn(aa, np.ascontiguousarray(bb[:, h], dtype=dtype), Ma, reg, tol, maxiter,
                   None if f0 is None else np.ascontiguousarray(f0[h]),
                   None if g0 is None else np.ascontiguousarray(g0[h]))
                for h in range(k)
            ]
            worst = max(outs, key=lambda o: (o["status"] != 0, o["status"]))
            out = {
                "plan": np.stack([o["plan"] for o in outs]),
                "f": np.stack([o["f"] for o in outs]),
                "g": np.stack([o["g"] for o in outs]),
                "nit": max(o["nit"] for o in outs),
                "status": worst["status"],
                "detail": worst["detail"],
                "marginal_error": np.array([o["marginal_error"] for o in outs]),
                "cost": np.array([o["cost"] for o in outs]),
                "fun": np.array([o["fun"] for o in outs]),
                "stages": max(o["stages"] for o in outs),
            }
            for key in _SNS_FIELDS:
                if key in outs[0]:
                    out[key] = np.array([o[key] for o in outs])

    status = int(out["status"])
    err = out["marginal_error"]
    if not np.all(np.isfinite(err)):
        raise NumericalError(
            f"optcore.ot.sinkhorn: the plan has non-finite entries: M / reg overflows {dtype} "
            f"(reg = {reg:g}, max |M| = {float(np.abs(Ma).max()):g}); rescale M and reg together."
        )
    message = _status_message(status, err, tol, out, dtype)
    res = OTResult(
        x=out["plan"], plan=out["plan"], f=out["f"], g=out["g"],
        cost=out["cost"] if k > 1 else float(out["cost"]),
        fun=out["fun"] if k > 1 else float(out["fun"]),
        marginal_error=err, nit=int(out["nit"]), success=status == 0, status=status,
        message=message, method=method, reg=reg, tol=tol,
    )
    if method == "eps_scaling":
        res["stages"] = int(out["stages"])
    if method == "sns":
        for key in _SNS_FIELDS:
            res[key] = out[key] if k > 1 else out[key].item() if hasattr(out[key], "item") else out[key]
    progress.finish(res)
    if warn and status in (1, 4):
        warnings.warn(f"optcore.ot.sinkhorn: {message}", ConvergenceWarning, stacklevel=2)
    return res


def _point_clouds(X, Y):
    """Point clouds as 2-D arrays (a 1-D cloud is n points in dimension 1), same dimension."""
    X = X[:, None] if X.ndim == 1 else X
    Y = Y[:, None] if Y.ndim == 1 else Y
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"`x` and `y` must be point clouds of shapes (n, d) and (m, d); got {X.shape} and {Y.shape}.")
    return X, Y


def _sq_euclidean(x, y) -> np.ndarray:
    """``||x_i - y_j||^2`` for point clouds x (n, d), y (m, d) (the CPU forms the matrix)."""
    xa, ya = _point_clouds(as_float_array(x, "x"), as_float_array(y, "y"))
    check_finite(xa, "x")
    check_finite(ya, "y")
    dtype = working_dtype(xa, ya)
    diff = xa.astype(dtype)[:, None, :] - ya.astype(dtype)[None, :, :]
    return np.einsum("ijk,ijk->ij", diff, diff)


def _batch_weights(w, name: str, B: int, size: int, xp):
    """Weights of a batch as a (B, size) array (uniform for None; a 1-D array is shared)."""
    if w is None:
        return None
    w = xp.asarray(w)
    if w.ndim == 1 and w.shape[0] == size:
        return xp.broadcast_to(w, (B, size))
    if w.shape == (B, size):
        return w
    raise ValueError(f"`{name}` must have shape ({size},) or ({B}, {size}) for a batch of {B} problems; got {w.shape}.")


def _sinkhorn_batch_cpu(a, b, M, reg, *, workers, x0, callback, **kwargs) -> OTResult:
    """A batch (3-D ``M``) on the CPU: one solve per problem, results stacked."""
    Ma = as_float_array(M, "M")
    B, n, m = Ma.shape
    if B == 0:
        raise ValueError(f"`M` is an empty batch (shape {Ma.shape}).")
    aa = _batch_weights(None if a is None else as_float_array(a, "a"), "a", B, n, np)
    bb = _batch_weights(None if b is None else as_float_array(b, "b"), "b", B, m, np)
    if x0 is not None:
        try:
            f0, g0 = x0
        except (TypeError, ValueError):
            raise ValueError("`x0` must be a pair (f, g) of potentials.") from None
        f0, g0 = np.asarray(f0), np.asarray(g0)
        if f0.shape != (B, n) or g0.shape != (B, m):
            raise ValueError(f"`x0` shapes must be ({B}, {n}) and ({B}, {m}) for a batch; got {f0.shape} and {g0.shape}.")
    if callback is not None:
        raise ValueError("`callback` is not supported for a batch on the CPU; solve the problems one by one.")
    outs = [
        sinkhorn(None if aa is None else aa[i], None if bb is None else bb[i], Ma[i], reg, workers=workers,
                 x0=None if x0 is None else (f0[i], g0[i]), **kwargs)
        for i in range(B)
    ]
    worst = max(outs, key=lambda o: (o.status != 0, o.status))
    res = OTResult(
        plan=np.stack([o.plan for o in outs]), f=np.stack([o.f for o in outs]), g=np.stack([o.g for o in outs]),
        cost=np.array([o.cost for o in outs]), fun=np.array([o.fun for o in outs]),
        marginal_error=np.array([o.marginal_error for o in outs]), nit=max(o.nit for o in outs),
        success=all(o.success for o in outs), status=worst.status, message=worst.message,
        method=worst.method, reg=worst.reg, tol=worst.tol,
    )
    res["x"] = res["plan"]
    return res


def _device_float(arr, name: str, xp):
    """A float32/float64 device array (integers and bools become float64)."""
    arr = xp.asarray(arr)
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"`{name}` is complex; optimal transport needs real data.")
    if kind not in "biuf":
        raise TypeError(f"`{name}` must be numeric; got dtype {arr.dtype}.")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def _sinkhorn_device(xp, kernels, a, b, M, reg, *, x, y, method, tol, maxiter, x0, callback, check_every,
                     disp, warn, options, return_plan) -> OTResult:
    """The device path of :func:`sinkhorn`, written once over the array module ``xp``
    (CuPy with :class:`~optcore._gpu.launch.CupyKernels`; NumPy with the emulation
    :class:`~optcore._gpu.emulate.NumpyKernels`, which is how CI tests it)."""
    from ._gpu import sinkhorn as drv  # noqa: PLC0415
    from ._gpu.launch import padded_dim  # noqa: PLC0415

    opts = check_options(options, METHODS[method], method)
    reg = positive_scalar(reg, "reg")
    maxiter = positive_int(maxiter, "maxiter", minimum=0)
    check_every = positive_int(check_every, "check_every")
    online = x is not None
    if online and method in ("scaling", "sns"):
        raise ValueError(f"point clouds (x, y) on the GPU need method='log' or 'eps_scaling'; "
                         f"for {method!r} pass M.")
    if online:
        X, Y = _point_clouds(_device_float(x, "x", xp), _device_float(y, "y", xp))
        (n, d), m = X.shape, Y.shape[0]
        if n == 0 or m == 0 or d == 0:
            raise ValueError(f"empty point clouds: x has shape {X.shape}, y has shape {Y.shape}.")
        dtype = np.result_type(X.dtype, Y.dtype)
        for arr, nm in ((X, "x"), (Y, "y")):
            if not bool(xp.isfinite(arr).all()):
                raise ValueError(f"`{nm}` contains NaN or infinite values.")
        D = padded_dim(d)
        Xp = xp.zeros((n, D), dtype=dtype)
        Xp[:, :d] = X
        Yp = xp.zeros((m, D), dtype=dtype)
        Yp[:, :d] = Y
        cost = drv.OnlineCost(Xp, Yp, D)
        lo = xp.minimum(X.min(axis=0), Y.min(axis=0)).astype(np.float64)
        hi = xp.maximum(X.max(axis=0), Y.max(axis=0)).astype(np.float64)
        cmax = float(((hi - lo) ** 2).sum())
        crange, cabs = cmax, cmax
        B, shared_b = 1, False
        Mv = None
    else:
        Mv = _device_float(M, "M", xp)
        if Mv.ndim not in (2, 3):
            raise ValueError(f"`M` must be a 2-D cost matrix (n, m) or a 3-D batch (B, n, m); got shape {Mv.shape}.")
        n, m = Mv.shape[-2:]
        if Mv.size == 0:
            raise ValueError(f"`M` is empty (shape {Mv.shape}): there is nothing to transport.")
        dtype = Mv.dtype
        if not bool(xp.isfinite(Mv).all()):
            raise ValueError("`M` contains NaN or infinite values; costs must be finite.")
        lo, hi = float(Mv.min()), float(Mv.max())
        crange, cabs = hi - lo, max(abs(lo), abs(hi))
        B = Mv.shape[0] if Mv.ndim == 3 else 1
        shared_b = False
    # Weights.
    aw = None if a is None else _device_float(a, "a", xp)
    bw = None if b is None else _device_float(b, "b", xp)
    if bw is not None and Mv is not None and Mv.ndim == 2 and bw.ndim == 2 and bw.shape[0] == m:
        shared_b = True  # k target histograms (m, k) against one M: a batch sharing M
        B = bw.shape[1]
        bw = bw.T
    for w in (aw, bw):
        if w is not None:
            dtype = np.result_type(dtype, w.dtype) if w.dtype != dtype and w.dtype == np.float64 else dtype
    if aw is None:
        aw = xp.full((B, n), 1.0 / n, dtype=dtype)
    if bw is None:
        bw = xp.full((B, m), 1.0 / m, dtype=dtype)
    aw = _batch_weights(aw, "a", B, n, xp)
    bw = _batch_weights(bw, "b", B, m, xp)
    aw = xp.ascontiguousarray(aw, dtype=dtype)
    bw = xp.ascontiguousarray(bw, dtype=dtype)
    for w, nm in ((aw, "a"), (bw, "b")):
        if not bool(xp.isfinite(w).all()):
            raise ValueError(f"`{nm}` contains NaN or infinite values.")
        if bool((w < 0).any()):
            raise ValueError(f"`{nm}` has negative weights; weights must be non-negative.")
    mass_a = aw.sum(axis=1, dtype=np.float64)
    mass_b = bw.sum(axis=1, dtype=np.float64)
    ma, mb = (mass_a.get(), mass_b.get()) if hasattr(mass_a, "get") else (mass_a, mass_b)
    if np.any(ma <= 0):
        raise ValueError("`a` has zero total mass; at least one weight must be positive.")
    bad = np.abs(mb - ma) > 1e-6 * ma
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(
            f"`a` and `b` must have the same total mass (problem {i}: sum(a) = {ma[i]:.10g}, "
            f"sum(b) = {mb[i]:.10g}). Normalise them, e.g. b = b * a.sum() / b.sum()."
        )
    if np.any(mb != ma):
        bw = (bw.astype(np.float64) * xp.asarray(ma / mb)[:, None]).astype(dtype)
    limit = float(np.sqrt(np.finfo(dtype).max))
    if not cabs / reg <= limit:
        raise ValueError(
            f"the cost / `reg` is too large for {dtype} (max |M| / reg = {cabs / reg:.3g} > {limit:.3g}): "
            "rescale the cost, e.g. M = M / M.max(), and reg with it."
        )
    tol = default_tol(dtype) if tol is None else positive_scalar(tol, "tol")
    if Mv is not None:
        Mv = xp.ascontiguousarray(Mv, dtype=dtype)
        cost = drv.DenseCost(Mv, n, m, n * m if Mv.ndim == 3 else 0)
    f0 = g0 = None
    if x0 is not None:
        try:
            f0, g0 = x0
        except (TypeError, ValueError):
            raise ValueError("`x0` must be a pair (f, g) of potentials.") from None
        f0 = xp.asarray(f0, dtype=dtype).reshape(-1, n) if xp.asarray(f0).size == B * n else None
        g0 = xp.asarray(g0, dtype=dtype).reshape(-1, m) if xp.asarray(g0).size == B * m else None
        if f0 is None or g0 is None:
            raise ValueError(f"`x0` shapes must hold {B} x {n} and {B} x {m} potentials.")
        for v, nm in ((f0, "x0[0]"), (g0, "x0[1]")):
            if bool(xp.any(xp.isnan(v) | (v == np.inf))):
                raise ValueError(f"`{nm}` contains NaN or +inf; potentials must be finite or -inf.")
        f0, g0 = xp.ascontiguousarray(f0), xp.ascontiguousarray(g0)

    def build(state: dict) -> OTResult:
        return OTResult(nit=state["nit"], marginal_error=state["error"], f=state.get("f"), g=state.get("g"),
                        reg=state.get("reg", reg), method=method,
                        **({"omega": state["omega"]} if "omega" in state else {}))

    where = "GPU" if xp is not np else "device emulation"
    title = (f"optcore.ot.sinkhorn(method={method!r}, reg={reg:g}, tol={tol:g}) on the {where}, n={n}, m={m}"
             + (f", batch={B}" if B > 1 else ""))
    progress = Progress(callback, disp, build, title)
    prog = progress if progress.active else None

    if method == "sns" and (B > 1 or shared_b):
        raise ValueError("method='sns' on the GPU solves one problem per call: pass a 2-D M and 1-D a, b "
                         "(or use method='log' for batches and several histograms).")
    if method == "sns":
        from ._gpu.sns import solve_sns  # noqa: PLC0415

        sparse = _sparse_module(xp)
        extra = _sns_options(opts, n, m)
        stages = None
        if extra["eps_scaling"] and x0 is None:
            stages, e = [], crange
            while e > reg and len(stages) < 200:
                stages.append(e)
                e *= 0.5
            stages.append(reg)
        out = solve_sns(kernels(dtype), sparse, cost, aw, bw, reg, tol=tol, maxiter=maxiter, f0=f0, g0=g0,
                        overrelaxation=_overrelaxation(opts), switch_tol=extra["switch_tol"],
                        warmup=extra.get("warmup"), density=extra.get("density"), cg_maxiter=extra["cg_maxiter"],
                        eps_stages=stages, check_every=check_every, progress=prog)
    elif method == "scaling":
        out = drv.solve_scaling(xp, Mv, aw, bw, reg, tol=tol, maxiter=maxiter, f0=f0, g0=g0,
                                check_every=check_every, progress=prog)
    else:
        omega = _overrelaxation(opts)
        stages, stage_tol, stage_maxiter = None, 1e-3, 100
        if method == "eps_scaling":
            eps0, decay, stage_tol, stage_maxiter = _eps_options(opts)
            eps0 = crange if eps0 is None else eps0
            stages = []
            e = eps0
            if x0 is None:
                while e > reg and len(stages) < 200:
                    stages.append(e)
                    e *= decay
            stages.append(reg)
        out = drv.solve_log(kernels(dtype), cost, aw, bw, reg, tol=tol, maxiter=maxiter, f0=f0, g0=g0,
                            overrelaxation=omega, eps_stages=stages, stage_tol=stage_tol,
                            stage_maxiter=stage_maxiter, check_every=check_every, progress=prog,
                            return_plan=return_plan)

    status = int(out["status"])
    err = np.asarray(out["marginal_error"], dtype=np.float64)
    if not np.all(np.isfinite(err)) and status != 4:
        raise NumericalError(
            f"optcore.ot.sinkhorn: the plan has non-finite entries: the cost / reg overflows {dtype} "
            f"(reg = {reg:g}); rescale the cost and reg together."
        )
    message = _status_message(status, err, tol, out, dtype)
    single = B == 1 and not shared_b and (Mv is None or Mv.ndim == 2)
    plan = out["plan"]
    if single:
        plan = None if plan is None else plan[0]
        f, g = out["f"][0], out["g"][0]
        cost_v, fun_v, err_v = float(out["cost"][0]), float(out["fun"][0]), float(err[0])
    else:
        f, g = out["f"], out["g"]
        cost_v, fun_v, err_v = np.asarray(out["cost"]), np.asarray(out["fun"]), err
    res = OTResult(
        x=plan, plan=plan, f=f, g=g, cost=cost_v, fun=fun_v, marginal_error=err_v, nit=int(out["nit"]),
        success=status == 0, status=status, message=message, method=method, reg=reg, tol=tol,
    )
    if method == "eps_scaling":
        res["stages"] = int(out["stages"])
    if method == "sns":
        for key in _SNS_FIELDS:
            res[key] = out[key]
    progress.finish(res)
    if warn and status in (1, 4):
        warnings.warn(f"optcore.ot.sinkhorn: {message}", ConvergenceWarning, stacklevel=3)
    return res


def _sparse_module(xp):
    """scipy.sparse for NumPy, cupyx.scipy.sparse for CuPy."""
    if xp is np:
        import scipy.sparse  # noqa: PLC0415

        return scipy.sparse
    import cupyx.scipy.sparse  # noqa: PLC0415

    return cupyx.scipy.sparse
