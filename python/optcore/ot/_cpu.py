"""The CPU path of :func:`optcore.ot.sinkhorn`: checks, then one call into the Rust core.

A batch (3-D ``M``) and ``k`` histograms (2-D ``b``) are solved by one call that loops over
the problems in Rust (``optcore_core::ot::batch``); each problem is checked and normalised
exactly as on its own, so its result is bit-identical to a solve of that problem alone.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import _core
from .._progress import Progress
from .._result import OTResult, finish
from .._validation import (
    as_float_array,
    check_finite,
    normalize_workers,
    positive_scalar,
    working_dtype,
)
from ..exceptions import NumericalError
from . import checks
from .options import (
    SNS_FIELDS,
    default_tol,
    eps_options,
    final_status,
    integer_option,
    intermediate_result,
    overrelaxation,
    remeasure,
    sns_options,
    status_message,
)

__all__ = ["solve"]


def solve(a, b, M, reg, *, x, y, warn, return_plan, **kw) -> OTResult:
    """The CPU solve of :func:`optcore.ot.sinkhorn` (arguments checked there; ``kw``: method,
    opts, tol, maxiter, x0, callback, check_every, disp, workers)."""
    if x is not None:
        if not return_plan and kw["method"] == "log" and (b is None or np.ndim(b) <= 1):
            # The cost is computed on the fly: no n x m array at all.
            res, progress = _online(a, b, reg, x, y, **kw)
            finish(res, "optcore.ot.sinkhorn", progress=progress, warn=warn, stacklevel=4)
            res["plan"] = res["x"] = None
            return res
        M = _sq_euclidean(x, y)
    M = checks.native(as_float_array(M, "M"))
    res, progress = _batch(a, b, M, reg, **kw) if M.ndim == 3 else _single(a, b, M, reg, **kw)
    # stacklevel 4: warnings.warn <- finish <- solve <- sinkhorn <- the user's line.
    finish(res, "optcore.ot.sinkhorn", progress=progress, warn=warn, stacklevel=4)
    if not return_plan:
        res["plan"] = res["x"] = None
    return res


def _sq_euclidean(x, y) -> np.ndarray:
    """``||x_i - y_j||^2`` for point clouds x (n, d), y (m, d) (the CPU forms the matrix)."""
    xa, ya = checks.point_clouds(checks.native(as_float_array(x, "x")), checks.native(as_float_array(y, "y")))
    check_finite(xa, "x")
    check_finite(ya, "y")
    dtype = working_dtype(xa, ya)
    xa, ya = xa.astype(dtype, copy=False), ya.astype(dtype, copy=False)
    n, m = xa.shape[0], ya.shape[0]
    M = np.empty((n, m), dtype=dtype)
    # In row blocks of about 2**22 differences: the (n, m, d) array of all of them is never
    # formed, and Ctrl-C is honoured between blocks.
    rows = max(1, (1 << 22) // max(1, m * xa.shape[1]))
    for i in range(0, n, rows):
        diff = xa[i : i + rows, None, :] - ya[None, :, :]
        np.einsum("ijk,ijk->ij", diff, diff, out=M[i : i + rows])
    return M


def _prepare(a, b, Ma, reg, *, tol, x0):
    """One problem checked and normalised: contiguous arrays of the working dtype, ``b``
    rescaled onto ``a``'s mass, the warm start checked."""
    if Ma.ndim != 2:
        raise ValueError(f"`M` must be a 2-D cost matrix of shape (len(a), len(b)); got shape {Ma.shape}.")
    n, m = Ma.shape
    if n == 0 or m == 0:
        raise ValueError(f"`M` is empty (shape {Ma.shape}): there is nothing to transport.")
    # Uniform default weights take M's dtype (they do not make a float32 M float64).
    aa = checks.weights(a, "a", n, Ma.dtype)
    bb = checks.weights(b, "b", m, Ma.dtype)
    if aa.ndim != 1:
        raise ValueError(f"`a` must be 1-D; got shape {aa.shape}.")
    if bb.ndim not in (1, 2):
        raise ValueError(f"`b` must be 1-D, or 2-D of shape (m, k) for k histograms; got shape {bb.shape}.")
    if Ma.shape != (aa.shape[0], bb.shape[0]):
        raise ValueError(
            f"`M` has shape {Ma.shape} but len(a) = {aa.shape[0]} and len(b) = {bb.shape[0]}: "
            "M must have shape (len(a), len(b))."
        )
    if bb.ndim == 2 and bb.shape[1] == 0:
        raise ValueError(f"empty problem: M has shape {Ma.shape} and b has shape {bb.shape}.")
    checks.check_weights(aa, "a", np)
    checks.check_weights(bb, "b", np)
    check_finite(Ma, "M")
    reg = positive_scalar(reg, "reg")
    # The working dtype is decided once, and every input is cast to it before any rescaling.
    dtype = working_dtype(aa, bb, Ma)
    aa, bb = aa.astype(dtype, copy=False), bb.astype(dtype, copy=False)
    tol = default_tol(dtype) if tol is None else positive_scalar(tol, "tol")
    with np.errstate(over="ignore", invalid="ignore"):
        lo, hi = float(Ma.min()), float(Ma.max())
    checks.check_overflow(lo, hi, reg, dtype)
    # Below this reg the exponents (f + g - M) / reg carry rounding errors above 1: no plan
    # the dtype can represent is meaningful, and the run stops at once with status 4.
    resolution = float(np.finfo(dtype).eps) * max(abs(lo), abs(hi))
    mass_a = float(aa.sum(dtype=np.float64))
    masses_b = np.atleast_1d(bb.sum(axis=0, dtype=np.float64))
    scale = checks.check_masses(
        mass_a, masses_b, lambda h: "`b`" if bb.ndim == 1 else f"histogram {h} of `b` (column {h})"
    )
    if scale is not None:
        bb = (bb.astype(np.float64) * scale).astype(dtype)
    # The marginals the plan is measured against: a, and b rescaled onto a's mass in the
    # working dtype (what the iterations fit), as float64.
    a_ref, b_ref = aa.astype(np.float64), bb.astype(np.float64)
    k = 1 if bb.ndim == 1 else bb.shape[1]
    f0 = g0 = None
    if x0 is not None:
        want = ((n,), (m,)) if bb.ndim == 1 else ((k, n), (k, m))
        f0, g0 = checks.warm_start(x0, *want, dtype, np)
    return SimpleNamespace(
        a=np.ascontiguousarray(aa, dtype=dtype),
        b=bb,
        a_ref=a_ref,
        b_ref=b_ref if b_ref.ndim == 1 else b_ref.T,
        M=np.ascontiguousarray(Ma, dtype=dtype),
        dtype=dtype,
        reg=reg,
        tol=tol,
        f0=f0,
        g0=g0,
        n=n,
        m=m,
        k=k,
        resolution=resolution,
    )


def _core_call(method: str, dtype, opts: dict, common: dict, reg: float, tol: float, maxiter: int):
    """The core function of ``method`` and dtype, with its options bound: ``fn(a, b, M, x0)``
    returns one dict per problem."""
    suffix = "f32" if dtype == np.float32 else "f64"
    base = {"reg": reg, "tol": tol, "maxiter": maxiter}
    if method == "scaling":
        name, extra = "sinkhorn_scaling", {}
    elif method == "sns":
        name, extra = "sinkhorn_sns", {"omega": overrelaxation(opts), **sns_options(opts)}
    else:
        es = eps_options(opts) if method == "eps_scaling" else None
        name, extra = "sinkhorn_log", {"eps_scaling": es, "omega": overrelaxation(opts)}
    fn = getattr(_core, f"{name}_{suffix}")
    return lambda a, b, M, x0: fn(a, b, M, {**base, **extra}, common, x0)


def _scaling_b(p):
    """``b`` of one problem as (k, m) histograms."""
    return np.ascontiguousarray((p.b if p.b.ndim == 2 else p.b[:, None]).T, dtype=p.dtype)


def _outputs(p, outs: list, method: str) -> dict:
    """The core's dicts of one problem (one per histogram, or one with ``k`` histograms for
    ``"scaling"``) as one dict with the result's shapes."""
    if method == "scaling":
        out = outs[0]
        err = np.asarray(out["marginal_error"])
        if p.b.ndim == 1:
            out.update(plan=out["plan"][0], f=out["f"][0], g=out["g"][0])
            out.update(marginal_error=float(err[0]), cost=out["cost"][0], fun=out["fun"][0])
        else:
            out.update(marginal_error=err, cost=np.asarray(out["cost"]), fun=np.asarray(out["fun"]))
        return out
    if p.b.ndim == 1:
        return outs[0]
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
    for key in SNS_FIELDS:
        if key in outs[0]:
            out[key] = np.array([o[key] for o in outs])
    return out


def _result(p, out: dict, method: str, maxiter: int) -> OTResult:
    """The result of one problem from its core output; its marginal error and status are
    decided by re-measuring the plan exactly as returned (see :func:`.options.final_status`)."""
    err = remeasure(np, out["plan"], p.a_ref, p.b_ref)
    err = float(err) if err.ndim == 0 else err
    status, detail = final_status(int(out["status"]), err, p.tol, int(out["nit"]), maxiter)
    if detail is not None:
        out["detail"] = detail
    if not np.all(np.isfinite(err)):
        raise NumericalError(
            f"optcore.ot.sinkhorn: the plan has non-finite entries: M / reg overflows {p.dtype} "
            f"(reg = {p.reg:g}, max |M| = {float(np.abs(p.M).max()):g}); rescale M and reg together."
        )
    k = p.k
    res = OTResult(
        x=out["plan"],
        plan=out["plan"],
        f=out["f"],
        g=out["g"],
        cost=out["cost"] if k > 1 else float(out["cost"]),
        fun=out["fun"] if k > 1 else float(out["fun"]),
        marginal_error=err,
        nit=int(out["nit"]),
        status=status,
        message=status_message(status, err, p.tol, out, p.dtype),
        method=method,
        reg=p.reg,
        tol=p.tol,
    )
    res["success"] = status == 0
    if method == "eps_scaling":
        res["stages"] = int(out["stages"])
    if method == "sns":
        for key in SNS_FIELDS:
            res[key] = out[key] if k > 1 else out[key].item() if hasattr(out[key], "item") else out[key]
    return res


def _unresolvable(p, method: str, maxiter: int) -> OTResult:
    """Status 4 at once for a ``reg`` below the cost's rounding (see :func:`_prepare`): the
    empty plan (potentials ``-inf``), measured as any other."""
    k = p.k
    shape = (p.n, p.m) if p.b.ndim == 1 else (k, p.n, p.m)
    lead = shape[:-2]
    out = {
        "plan": np.zeros(shape, dtype=p.dtype),
        "f": np.full(lead + (p.n,), -np.inf, dtype=p.dtype),
        "g": np.full(lead + (p.m,), -np.inf, dtype=p.dtype),
        "nit": 0,
        "status": 4,
        "cost": np.zeros(lead) if lead else 0.0,
        "fun": np.zeros(lead) if lead else 0.0,
        "stages": 0,
        "detail": (
            f"reg = {p.reg:g} is below the rounding of the cost in {p.dtype} "
            f"(eps * max|M| = {p.resolution:.3g}): the plan's exponents (f + g - M) / reg cannot be "
            "computed; use a larger reg (or float64 data)."
        ),
    }
    for key in SNS_FIELDS:
        out[key] = np.zeros(lead, dtype=int) if lead else 0
    out["hessian_density"] = np.zeros(lead) if lead else 0.0
    return _result(p, out, method, maxiter)


def _progress(callback, disp, method, p, title_extra: str) -> Progress:
    def build(state: dict) -> OTResult:
        return intermediate_result(state, p.reg, method)

    title = f"optcore.ot.sinkhorn(method={method!r}, reg={p.reg:g}, tol={p.tol:g}), n={p.n}, m={p.m}" + title_extra
    return Progress(callback, disp, build, title)


def _common(progress: Progress, check_every, workers) -> dict:
    return {"progress": progress if progress.active else None, "check_every": check_every, "workers": workers}


def _single(a, b, Ma, reg, *, method, opts, tol, maxiter, x0, callback, check_every, disp, workers):
    """One problem (``k`` histograms: ``"scaling"`` natively, the others as a batch sharing
    ``a`` and ``M``)."""
    p = _prepare(a, b, Ma, reg, tol=tol, x0=x0)
    maxiter = integer_option(maxiter, "maxiter", minimum=0)
    check_every = integer_option(check_every, "check_every")
    workers = normalize_workers(workers)
    progress = _progress(callback, disp, method, p, f", k={p.k}" if p.k > 1 else "")
    if p.reg < p.resolution:
        return _unresolvable(p, method, maxiter), progress
    fn = _core_call(method, p.dtype, opts, _common(progress, check_every, workers), p.reg, p.tol, maxiter)
    if method == "scaling":
        x0k = None if p.f0 is None else (p.f0.reshape(p.k, p.n), p.g0.reshape(p.k, p.m))
        outs = fn(p.a[None], _scaling_b(p)[None], p.M, x0k)
    elif p.b.ndim == 1:
        x0k = None if p.f0 is None else (p.f0[None], p.g0[None])
        outs = fn(p.a[None], np.ascontiguousarray(p.b, dtype=p.dtype)[None], p.M, x0k)
    else:
        x0k = None if p.f0 is None else (p.f0, p.g0)
        outs = fn(p.a[None], np.ascontiguousarray(p.b.T, dtype=p.dtype), p.M, x0k)
    return _result(p, _outputs(p, outs, method), method, maxiter), progress


def _batch(a, b, Ma, reg, *, method, opts, tol, maxiter, x0, callback, check_every, disp, workers):
    """A batch (3-D ``M``): every problem checked as on its own, solved by one core call."""
    B, n, m = Ma.shape
    if B == 0:
        raise ValueError(f"`M` is an empty batch (shape {Ma.shape}).")
    aa = checks.batch_weights(None if a is None else as_float_array(a, "a"), "a", B, n, np)
    bb = checks.batch_weights(None if b is None else as_float_array(b, "b"), "b", B, m, np)
    f0 = g0 = None
    if x0 is not None:
        try:
            f0, g0 = x0
        except (TypeError, ValueError):
            raise ValueError("`x0` must be a pair (f, g) of potentials.") from None
        f0, g0 = np.asarray(f0), np.asarray(g0)
        if f0.shape != (B, n) or g0.shape != (B, m):
            raise ValueError(
                f"`x0` shapes must be ({B}, {n}) and ({B}, {m}) for a batch; got {f0.shape} and {g0.shape}."
            )
    if callback is not None:
        raise ValueError("`callback` is not supported for a batch on the CPU; solve the problems one by one.")
    probs = [
        _prepare(
            None if aa is None else aa[i],
            None if bb is None else bb[i],
            Ma[i],
            reg,
            tol=tol,
            x0=None if x0 is None else (f0[i], g0[i]),
        )
        for i in range(B)
    ]
    p0 = probs[0]
    maxiter = integer_option(maxiter, "maxiter", minimum=0)
    check_every = integer_option(check_every, "check_every")
    workers = normalize_workers(workers)
    progress = _progress(None, disp, method, p0, f", batch={B}")
    fn = _core_call(method, p0.dtype, opts, _common(progress, check_every, workers), p0.reg, p0.tol, maxiter)
    A = np.stack([p.a for p in probs])
    Mb = np.stack([p.M for p in probs])
    if method == "scaling":
        Bk = np.stack([_scaling_b(p) for p in probs])
    else:
        Bk = np.stack([np.ascontiguousarray(p.b, dtype=p.dtype) for p in probs])
    xb = None if x0 is None else (np.stack([p.f0 for p in probs]), np.stack([p.g0 for p in probs]))
    outs = fn(A, Bk, Mb, xb)
    results = [_result(p, _outputs(p, [o], method), method, maxiter) for p, o in zip(probs, outs)]
    worst = max(results, key=lambda o: (o.status != 0, o.status))
    res = OTResult(
        plan=np.stack([o.plan for o in results]),
        f=np.stack([o.f for o in results]),
        g=np.stack([o.g for o in results]),
        cost=np.array([o.cost for o in results]),
        fun=np.array([o.fun for o in results]),
        marginal_error=np.array([o.marginal_error for o in results]),
        nit=max(o.nit for o in results),
        success=all(o.success for o in results),
        status=worst.status,
        message=worst.message,
        method=worst.method,
        reg=worst.reg,
        tol=worst.tol,
    )
    res["x"] = res["plan"]
    return res, progress


def _online(a, b, reg, x, y, *, method, opts, tol, maxiter, x0, callback, check_every, disp, workers):
    """Point clouds, ``return_plan=False``, ``method="log"``, one histogram: log-domain Sinkhorn
    with the squared Euclidean cost computed on the fly in the core
    (``optcore_core::ot::online``), ``O((n + m) d)`` memory. Checked and normalised exactly as
    the dense path (:func:`_prepare`); the marginal error, cost and objective come from the
    core's exact f64 measurement of the plan the returned potentials imply."""
    xa, ya = checks.point_clouds(checks.native(as_float_array(x, "x")), checks.native(as_float_array(y, "y")))
    check_finite(xa, "x")
    check_finite(ya, "y")
    n, m = xa.shape[0], ya.shape[0]
    if n == 0 or m == 0:
        raise ValueError(
            f"the point clouds are empty (shapes {xa.shape} and {ya.shape}): there is nothing to transport."
        )
    xdtype = working_dtype(xa, ya)
    aa = checks.weights(a, "a", n, xdtype)
    bb = checks.weights(b, "b", m, xdtype)
    if aa.shape != (n,) or bb.shape != (m,):
        raise ValueError(
            f"`a` and `b` must have shapes ({n},) and ({m},) for point clouds of {n} and {m} points; "
            f"got {aa.shape} and {bb.shape}."
        )
    checks.check_weights(aa, "a", np)
    checks.check_weights(bb, "b", np)
    reg = positive_scalar(reg, "reg")
    dtype = working_dtype(aa, bb, xa.astype(xdtype, copy=False))
    aa, bb = aa.astype(dtype, copy=False), bb.astype(dtype, copy=False)
    xa = np.ascontiguousarray(xa, dtype=dtype)
    ya = np.ascontiguousarray(ya, dtype=dtype)
    tol = default_tol(dtype) if tol is None else positive_scalar(tol, "tol")
    # An upper bound of the largest cost (the bounding box's squared diagonal): no pass over
    # the n x m pairs is needed for the range checks.
    with np.errstate(over="ignore", invalid="ignore"):
        lo_pts = np.minimum(xa.min(axis=0), ya.min(axis=0)).astype(np.float64)
        hi_pts = np.maximum(xa.max(axis=0), ya.max(axis=0)).astype(np.float64)
        hi = float(((hi_pts - lo_pts) ** 2).sum())
    checks.check_overflow(0.0, hi, reg, dtype)
    mass_a = float(aa.sum(dtype=np.float64))
    scale = checks.check_masses(mass_a, np.atleast_1d(bb.sum(dtype=np.float64)), lambda h: "`b`")
    if scale is not None:
        bb = (bb.astype(np.float64) * scale[0] if np.ndim(scale) else bb.astype(np.float64) * scale).astype(dtype)
    aa, bb = np.ascontiguousarray(aa), np.ascontiguousarray(bb)
    f0 = g0 = None
    if x0 is not None:
        f0, g0 = checks.warm_start(x0, (n,), (m,), dtype, np)
    maxiter = integer_option(maxiter, "maxiter", minimum=0)
    check_every = integer_option(check_every, "check_every")
    workers = normalize_workers(workers)
    p = SimpleNamespace(reg=reg, tol=tol, n=n, m=m, dtype=dtype)
    progress = _progress(callback, disp, method, p, ", online")
    fn = getattr(_core, "sinkhorn_online_f32" if dtype == np.float32 else "sinkhorn_online_f64")
    core_opts = {"reg": reg, "tol": tol, "maxiter": maxiter, "omega": overrelaxation(opts)}
    out = fn(aa, bb, xa, ya, core_opts, _common(progress, check_every, workers), None if f0 is None else (f0, g0))
    err = float(out["marginal_error"])
    status, detail = final_status(int(out["status"]), err, tol, int(out["nit"]), maxiter)
    if detail is not None:
        out["detail"] = detail
    if not np.isfinite(err):
        raise NumericalError(
            f"optcore.ot.sinkhorn: the plan has non-finite entries: the cost / reg overflows {dtype} "
            f"(reg = {reg:g}); rescale x, y and reg together."
        )
    res = OTResult(
        x=None,
        plan=None,
        f=out["f"],
        g=out["g"],
        cost=float(out["cost"]),
        fun=float(out["fun"]),
        marginal_error=err,
        nit=int(out["nit"]),
        status=status,
        message=status_message(status, err, tol, out, dtype),
        method=method,
        reg=reg,
        tol=tol,
    )
    res["success"] = status == 0
    return res, progress
