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
    M,
    reg,
    *,
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
    M : array_like, shape (n, m)
        Cost matrix, finite (any sign).
    reg : float
        Entropic regularisation, > 0. ``"log"`` and ``"eps_scaling"`` are stable down to
        ``1e-4 * max(M)`` and below; ``"scaling"`` underflows once ``(M - min M) / reg`` exceeds about
        700 (float64) or 87 (float32) and then stops with status 4.
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
    NotImplementedError
        CuPy inputs (the GPU path is not available yet).

    Notes
    -----
    float32 inputs give float32 results; sums that decide convergence are accumulated in
    float64. Rows and columns with zero weight get zero plan entries and ``-inf`` potentials.

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
    backend = array_backend(a, b, M, names=("a", "b", "M"))
    if backend == "cupy":
        raise NotImplementedError(
            "optcore.ot.sinkhorn has no GPU implementation yet: pass NumPy arrays "
            "(cupy.asnumpy(x)) to solve on the CPU."
        )
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}.")
    method = method.lower()
    opts = check_options(options, METHODS[method], method)

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
        es = None
        relax = opts.get("overrelaxation", "auto")
        if isinstance(relax, str) and relax == "auto":
            omega = None
        else:
            omega = positive_scalar(relax, "options['overrelaxation']")
            if not 1.0 <= omega < 2.0:
                raise ValueError(f"options['overrelaxation'] must be 'auto' or a number in [1, 2); got {relax!r}.")
        if method == "eps_scaling":
            eps0 = opts.get("eps0")
            es = (
                None if eps0 is None else positive_scalar(eps0, "options['eps0']"),
                float(opts.get("eps_decay", 0.5)),
                positive_scalar(opts.get("stage_tol", 1e-3), "options['stage_tol']"),
                positive_int(opts.get("stage_maxiter", 100), "options['stage_maxiter']"),
            )
            if not 0 < es[1] < 1:
                raise ValueError(f"options['eps_decay'] must be in (0, 1); got {es[1]}.")
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
    worst_err = float(np.max(err))
    if status == 0:
        message = f"Converged: marginal error {worst_err:.3e} <= tol {tol:.1e}."
    elif status == 1:
        message = (
            f"Iteration limit reached: marginal error {worst_err:.3e} > tol {tol:.1e} after "
            f"{out['nit']} iterations. Increase maxiter, or try method='eps_scaling'"
            + (" or float64 data." if dtype == np.float32 else ".")
        )
    elif status == 99:
        message = STATUS_MESSAGES[99]
    else:
        message = f"{STATUS_MESSAGES.get(status, 'Stopped.')} {out['detail']}".strip()
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
