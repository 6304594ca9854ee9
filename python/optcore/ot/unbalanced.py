"""Unbalanced OT (``reg_m``) on dense costs, and the result of the core's log-domain loop.

:func:`optcore.ot.sinkhorn` with a finite ``reg_m`` solves

.. math::
    \\min_{P \\ge 0} \\langle P, M\\rangle + \\mathrm{reg}\\,\\mathrm{KL}(P \\,|\\, a b^\\top)
    + \\rho_a \\mathrm{KL}(P 1 \\,|\\, a) + \\rho_b \\mathrm{KL}(P^\\top 1 \\,|\\, b)

(POT's ``sinkhorn_unbalanced`` with its default ``reg_type="kl"``, OTT's ``tau = rho / (rho +
reg)``) with the generalised ``KL(p | q) = sum p log(p / q) - p + q``, by log-domain Sinkhorn
in the Rust core (``optcore_core::ot::unbalanced``). The same loop solves grids
(:mod:`.grid`), balanced or not; this module builds both results.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import _core
from .._result import OTResult, finish
from .._validation import _real_scalar, as_float_array, check_finite, normalize_workers, positive_scalar, working_dtype
from ..exceptions import NumericalError
from . import checks
from .options import default_tol, eps_options, final_status, integer_option, overrelaxation, status_message

__all__ = ["reg_m_pair", "solve_dense", "lse_call", "lse_result"]

#: The methods of the log-domain loop (grids and unbalanced problems).
LSE_METHODS = ("log", "eps_scaling")


def reg_m_pair(reg_m) -> tuple[float, float] | None:
    """``reg_m`` as ``(rho_a, rho_b)``, or None for the balanced problem (None, ``inf`` or
    ``(inf, inf)``). Each must be positive (``inf`` allowed); NaN, zero or negative values raise
    ``ValueError`` naming ``reg_m``."""
    if reg_m is None:
        return None
    if isinstance(reg_m, (tuple, list, np.ndarray)):
        vals = list(np.asarray(reg_m, dtype=object).ravel()) if isinstance(reg_m, np.ndarray) else list(reg_m)
        if len(vals) == 1:
            vals = vals * 2
        if len(vals) != 2:
            raise ValueError(f"`reg_m` must be a number or a pair (reg_m_a, reg_m_b); got {len(vals)} values.")
    else:
        vals = [reg_m, reg_m]
    pair = tuple(_real_scalar(v, "reg_m") for v in vals)
    for v in pair:
        if not v > 0:  # NaN, zero, negative
            raise ValueError(
                f"`reg_m` (the marginal relaxation) must be positive, or inf for a balanced marginal; got {reg_m!r}."
            )
    if np.isinf(pair[0]) and np.isinf(pair[1]):
        return None
    return pair


def lse_call(dtype, kind: str, method: str, opts: dict, reg: float, reg_m, tol: float, maxiter: int):
    """The core function of the log-domain loop (``kind``: "grid" or "unbalanced") and its
    option dict."""
    suffix = "f32" if dtype == np.float32 else "f64"
    core = {
        "reg": reg,
        "reg_m": reg_m or (np.inf, np.inf),
        "tol": tol,
        "maxiter": maxiter,
        "eps_scaling": eps_options(opts) if method == "eps_scaling" else None,
        "omega": overrelaxation(opts),
    }
    return getattr(_core, f"sinkhorn_{kind}_{suffix}"), core


def lse_result(out: dict, p, method: str, maxiter: int, err=None) -> OTResult:
    """The result of one run of the loop. ``err``: the residual re-measured on a returned
    plan (dense path); else the core's f64 measurement on the returned potentials."""
    err = float(out["marginal_error"] if err is None else err)
    status, detail = final_status(int(out["status"]), err, p.tol, int(out["nit"]), maxiter)
    if detail is not None:
        out["detail"] = detail
    if not np.isfinite(err):
        raise NumericalError(
            f"optcore.ot.sinkhorn: the plan has non-finite entries: the cost / reg overflows {p.dtype} "
            f"(reg = {p.reg:g}); rescale the cost and reg together."
        )
    res = OTResult(
        x=None,
        plan=None,
        f=out["f"].reshape(p.shape_a),
        g=out["g"].reshape(p.shape_b),
        cost=float(out["cost"]),
        fun=float(out["fun"]),
        marginal_error=err,
        mass=float(out["mass"]),
        nit=int(out["nit"]),
        status=status,
        message=status_message(status, err, p.tol, out, p.dtype),
        method=method,
        reg=p.reg,
        tol=p.tol,
    )
    if p.reg_m is not None:
        res["reg_m"] = p.reg_m
    if method == "eps_scaling":
        res["stages"] = int(out["stages"])
    res["success"] = status == 0
    return res


def check_method(method: str, what: str) -> None:
    if method not in LSE_METHODS:
        raise ValueError(f"{what} supports method 'log' or 'eps_scaling'; got {method!r}.")


def prepare_weights(a, b, n: int, m: int, cost_dtype, reg_m, *, tol, x0, reg):
    """Weights of the loop: checked, of the working dtype, ``b`` rescaled onto ``a``'s mass
    when balanced; the warm start checked. ``a``, ``b`` may have any shape with ``n``, ``m``
    entries (a grid's shape)."""
    aa = checks.weights(a, "a", n, cost_dtype)
    bb = checks.weights(b, "b", m, cost_dtype)
    if aa.size != n or bb.size != m:
        raise ValueError(f"`a` and `b` must have {n} and {m} entries; got shapes {aa.shape} and {bb.shape}.")
    checks.check_weights(aa, "a", np)
    checks.check_weights(bb, "b", np)
    reg = positive_scalar(reg, "reg")
    dtype = working_dtype(aa, bb, np.empty(0, dtype=cost_dtype))
    aa, bb = aa.astype(dtype, copy=False).ravel(), bb.astype(dtype, copy=False).ravel()
    tol = default_tol(dtype) if tol is None else positive_scalar(tol, "tol")
    mass_a, mass_b = float(aa.sum(dtype=np.float64)), float(bb.sum(dtype=np.float64))
    if reg_m is None:
        scale = checks.check_masses(mass_a, np.atleast_1d(mass_b), lambda h: "`b`")
        if scale is not None:
            bb = (bb.astype(np.float64) * scale[0]).astype(dtype)
    elif mass_a <= 0 or mass_b <= 0:
        raise ValueError("`a` and `b` must each have a positive total mass.")
    f0 = g0 = None
    if x0 is not None:
        f0, g0 = x0
        f0, g0 = checks.warm_start((np.ravel(f0), np.ravel(g0)), (n,), (m,), dtype, np)
    return SimpleNamespace(
        a=np.ascontiguousarray(aa), b=np.ascontiguousarray(bb), dtype=dtype, reg=reg, tol=tol, f0=f0, g0=g0, reg_m=reg_m
    )


def solve_dense(
    a, b, M, reg, reg_m, *, method, opts, tol, maxiter, x0, callback, check_every, disp, workers, warn, return_plan
):
    """Unbalanced Sinkhorn on a dense cost (``reg_m`` finite on at least one side)."""
    from ._cpu import _common, _progress  # noqa: PLC0415  (_cpu imports this module's users)

    check_method(method, "`reg_m`")
    M = checks.native(as_float_array(M, "M"))
    if M.ndim != 2:
        raise ValueError(f"`reg_m` supports one problem with a 2-D cost `M`; got shape {M.shape}.")
    n, m = M.shape
    if n == 0 or m == 0:
        raise ValueError(f"`M` is empty (shape {M.shape}): there is nothing to transport.")
    if b is not None and np.ndim(b) == 2:
        raise ValueError("`reg_m` supports one target histogram (a 1-D `b`).")
    p = prepare_weights(a, b, n, m, M.dtype, reg_m, tol=tol, x0=x0, reg=reg)
    if p.a.shape != (n,) or p.b.shape != (m,) or np.ndim(a if a is not None else p.a) != 1:
        raise ValueError(f"`M` has shape {M.shape}: `a` and `b` must be 1-D of lengths {n} and {m}.")
    # No copy of a C-contiguous cost of the working dtype.
    Mc = np.ascontiguousarray(M, dtype=p.dtype)
    # Two reductions check both finiteness (NaN and inf propagate to the extremes) and range.
    with np.errstate(over="ignore", invalid="ignore"):
        lo, hi = float(Mc.min()), float(Mc.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        check_finite(Mc, "M")
    checks.check_overflow(lo, hi, p.reg, p.dtype)
    p.shape_a, p.shape_b, p.n, p.m = (n,), (m,), n, m
    maxiter = integer_option(maxiter, "maxiter", minimum=0)
    check_every = integer_option(check_every, "check_every")
    workers = normalize_workers(workers)
    progress = _progress(callback, disp, method, p, f", reg_m={reg_m}")
    fn, core = lse_call(p.dtype, "unbalanced", method, opts, p.reg, reg_m, p.tol, maxiter)
    # The plan P = exp((f + g - M) / reg) of the returned potentials is written by the core's
    # final measurement, which takes the residual (against the targets of the returned
    # potentials), the cost and the objective on it as written in the working dtype: the
    # returned plan is the one measured, and no further pass over the cost runs here.
    core["plan"] = bool(return_plan)
    x0c = None if p.f0 is None else (p.f0, p.g0)
    out = fn(p.a, p.b, Mc, core, _common(progress, check_every, workers), x0c)
    res = lse_result(out, p, method, maxiter)
    res["plan"] = res["x"] = out.get("plan")
    finish(res, "optcore.ot.sinkhorn", progress=progress, warn=warn, stacklevel=4)
    return res
