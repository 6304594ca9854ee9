"""The device path of :func:`optcore.ot.sinkhorn`: checks, then the GPU driver (:mod:`._gpu`).

Written once over the array module ``xp``: CuPy with :class:`~optcore.ot._gpu.launch.CupyKernels`,
or NumPy with the emulation :class:`~optcore.ot._gpu.emulate.NumpyKernels` (how CI runs it).
The inputs are checked by the same functions as on the CPU (:mod:`.checks`), and the
ε-schedule comes from the Rust core's controller, as every other decision of the driver.
Dense costs, point clouds and grids (:class:`~optcore.ot.Grid`: separable passes,
:mod:`._gpu.grid`), balanced or unbalanced (finite ``reg_m``: :mod:`._gpu.unbalanced`).
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._progress import Progress
from .._result import OTResult, finish
from .._validation import check_options, positive_scalar
from ..exceptions import NumericalError
from . import checks
from .grid import Grid
from .options import (
    METHODS,
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
from .unbalanced import check_method, reg_m_pair

__all__ = ["sinkhorn_device", "sinkhorn_emulated"]


def sinkhorn_device(
    xp,
    kernels,
    a,
    b,
    M,
    reg,
    *,
    x,
    y,
    method,
    tol,
    maxiter,
    x0,
    callback,
    check_every,
    disp,
    warn,
    options,
    return_plan,
    reg_m=None,
) -> OTResult:
    """The device solve of :func:`optcore.ot.sinkhorn` on the arrays of ``xp`` with the
    kernels ``kernels(dtype)``. ``reg_m``: ``(rho_a, rho_b)`` (see
    :func:`~optcore.ot.unbalanced.reg_m_pair`) or None (balanced); ``M`` may be a
    :class:`~optcore.ot.Grid`."""
    from ._gpu import sinkhorn as drv  # noqa: PLC0415
    from ._gpu.launch import padded_dim  # noqa: PLC0415

    opts = check_options(options, METHODS[method], method)
    reg = positive_scalar(reg, "reg")
    maxiter = integer_option(maxiter, "maxiter", minimum=0)
    check_every = integer_option(check_every, "check_every")
    online = x is not None
    grid = M if isinstance(M, Grid) else None
    if grid is not None or reg_m is not None:
        # What the CPU path accepts, with its messages.
        check_method(method, "a Grid" if grid is not None else "`reg_m`")
    if isinstance(return_plan, str):
        return_plan = grid is None  # "auto": no n x n plan on a grid
    if online and method in ("scaling", "sns"):
        raise ValueError(f"point clouds (x, y) on the GPU need method='log' or 'eps_scaling'; for {method!r} pass M.")
    if online:
        X, Y = checks.point_clouds(checks.device_float(x, "x", xp), checks.device_float(y, "y", xp))
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
        cost_lo, cost_hi = 0.0, cmax  # the squared distances lie in [0, cmax]
        crange = cmax
        B, shared_b = 1, False
        Mv = None
    elif grid is not None:
        n = m = grid.size
        dtype = np.dtype(np.float64)
        given = []
        for w, nm in ((a, "a"), (b, "b")):
            if w is not None:
                w = checks.device_float(w, nm, xp)
                if w.size != grid.size or w.ndim not in (1, grid.ndim):
                    raise ValueError(
                        f"`{nm}` must have the grid's shape {grid.shape} or {grid.size} entries; got shape {w.shape}."
                    )
                given.append(w)
        if given and all(w.dtype == np.float32 for w in given):
            dtype = np.dtype(np.float32)
        a = None if a is None else xp.asarray(a).reshape(-1)
        b = None if b is None else xp.asarray(b).reshape(-1)
        cost_lo, cost_hi = 0.0, grid.cost_max()
        crange = cost_hi
        B, shared_b = 1, False
        Mv = None
    else:
        Mv = checks.device_float(M, "M", xp)
        if Mv.ndim not in (2, 3):
            raise ValueError(f"`M` must be a 2-D cost matrix (n, m) or a 3-D batch (B, n, m); got shape {Mv.shape}.")
        n, m = Mv.shape[-2:]
        if Mv.size == 0:
            raise ValueError(f"`M` is empty (shape {Mv.shape}): there is nothing to transport.")
        dtype = Mv.dtype
        if not bool(xp.isfinite(Mv).all()):
            raise ValueError("`M` contains NaN or infinite values; costs must be finite.")
        cost_lo, cost_hi = float(Mv.min()), float(Mv.max())
        crange = cost_hi - cost_lo
        B = Mv.shape[0] if Mv.ndim == 3 else 1
        shared_b = False
        if reg_m is not None and Mv.ndim != 2:
            raise ValueError(f"`reg_m` supports one problem with a 2-D cost `M`; got shape {Mv.shape}.")
    if reg_m is not None and b is not None and getattr(b, "ndim", 1) == 2:
        raise ValueError("`reg_m` supports one target histogram (a 1-D `b`).")
    # Weights.
    aw = None if a is None else checks.device_float(a, "a", xp)
    bw = None if b is None else checks.device_float(b, "b", xp)
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
    aw = checks.batch_weights(aw, "a", B, n, xp)
    bw = checks.batch_weights(bw, "b", B, m, xp)
    aw = xp.ascontiguousarray(aw, dtype=dtype)
    bw = xp.ascontiguousarray(bw, dtype=dtype)
    checks.check_weights(aw, "a", xp)
    checks.check_weights(bw, "b", xp)
    mass_a = aw.sum(axis=1, dtype=np.float64)
    mass_b = bw.sum(axis=1, dtype=np.float64)
    ma, mb = (mass_a.get(), mass_b.get()) if hasattr(mass_a, "get") else (mass_a, mass_b)
    if reg_m is not None:
        scale = None
        if np.any(ma <= 0) or np.any(mb <= 0):
            raise ValueError("`a` and `b` must each have a positive total mass.")
    else:
        scale = checks.check_masses(ma, mb, lambda i: f"`b` (problem {i})")
    if scale is not None:
        bw = (bw.astype(np.float64) * xp.asarray(scale)[:, None]).astype(dtype)
    # The marginals the returned plans are measured against (as on the CPU), as float64.
    a_ref, b_ref = aw.astype(np.float64), bw.astype(np.float64)
    checks.check_overflow(cost_lo, cost_hi, reg, dtype)
    tol = default_tol(dtype) if tol is None else positive_scalar(tol, "tol")
    if Mv is not None:
        Mv = xp.ascontiguousarray(Mv, dtype=dtype)
        cost = drv.DenseCost(Mv, n, m, n * m if Mv.ndim == 3 else 0)
    elif grid is not None:
        from ._gpu.grid import GridCost  # noqa: PLC0415

        cost = GridCost(xp, grid, dtype)
    f0 = g0 = None
    if x0 is not None:
        f0, g0 = checks.warm_start(x0, (B, n), (B, m), dtype, xp, reshape=True)

    single = B == 1 and not shared_b and (Mv is None or Mv.ndim == 2)

    def build(state: dict) -> OTResult:
        if single:  # one problem's potentials are 1-D as on the CPU (the log loop keeps (1, n))
            state = {**state, **{k: state[k].reshape(-1) for k in ("f", "g") if state.get(k) is not None}}
        return intermediate_result(state, reg, method)

    where = "GPU" if xp is not np else "device emulation"
    title = (
        f"optcore.ot.sinkhorn(method={method!r}, reg={reg:g}, tol={tol:g}) on the {where}, n={n}, m={m}"
        + (f", batch={B}" if B > 1 else "")
        + (f", grid={grid.shape}" if grid is not None else "")
        + (f", reg_m={reg_m}" if reg_m is not None else "")
    )
    progress = Progress(callback, disp, build, title)
    prog = progress if progress.active else None

    if method == "sns" and (B > 1 or shared_b):
        raise ValueError(
            "method='sns' on the GPU solves one problem per call: pass a 2-D M and 1-D a, b "
            "(or use method='log' for batches and several histograms)."
        )
    common = dict(tol=tol, maxiter=maxiter, f0=f0, g0=g0, check_every=check_every, progress=prog)
    if method == "sns":
        from ._gpu.sns import solve_sns  # noqa: PLC0415

        extra = sns_options(opts)
        stages = None
        if extra["eps_scaling"] and x0 is None:
            stages = _core.SinkhornController.eps_schedule(reg, None, 0.5, crange)
        out = solve_sns(
            kernels(dtype),
            _sparse_module(xp),
            cost,
            aw,
            bw,
            reg,
            overrelaxation=overrelaxation(opts),
            switch_tol=extra["switch_tol"],
            warmup=extra.get("warmup"),
            density=extra.get("density"),
            cg_maxiter=extra["cg_maxiter"],
            eps_stages=stages,
            **common,
        )
    elif method == "scaling":
        out = drv.solve_scaling(xp, Mv, aw, bw, reg, **common)
    else:
        stages, stage_tol, stage_maxiter = None, 1e-3, 100
        if method == "eps_scaling":
            eps0, decay, stage_tol, stage_maxiter = eps_options(opts)
            # A warm start is already annealed: only the last stage runs (as on the CPU).
            stages = [reg] if x0 is not None else _core.SinkhornController.eps_schedule(reg, eps0, decay, crange)
        out = drv.solve_log(
            kernels(dtype),
            cost,
            aw,
            bw,
            reg,
            overrelaxation=overrelaxation(opts),
            eps_stages=stages,
            stage_tol=stage_tol,
            stage_maxiter=stage_maxiter,
            return_plan=return_plan,
            reg_m=reg_m,
            **common,
        )

    err = np.asarray(out["marginal_error"], dtype=np.float64)
    if out["plan"] is not None and reg_m is None:
        # The status is decided on the plans exactly as returned (as on the CPU).
        err = remeasure(xp, out["plan"], a_ref, b_ref)
    status, detail = final_status(int(out["status"]), err, tol, int(out["nit"]), maxiter)
    if detail is not None:
        out["detail"] = detail
    if not np.all(np.isfinite(err)) and status != 4:
        raise NumericalError(
            f"optcore.ot.sinkhorn: the plan has non-finite entries: the cost / reg overflows {dtype} "
            f"(reg = {reg:g}); rescale the cost and reg together."
        )
    plan = out["plan"]
    if single:
        plan = None if plan is None else plan[0]
        f, g = out["f"][0], out["g"][0]
        if grid is not None:
            f, g = f.reshape(grid.shape), g.reshape(grid.shape)
        cost_v, fun_v, err_v = float(out["cost"][0]), float(out["fun"][0]), float(err[0])
    else:
        f, g = out["f"], out["g"]
        cost_v, fun_v, err_v = np.asarray(out["cost"]), np.asarray(out["fun"]), err
    res = OTResult(
        x=plan,
        plan=plan,
        f=f,
        g=g,
        cost=cost_v,
        fun=fun_v,
        marginal_error=err_v,
        nit=int(out["nit"]),
        status=status,
        message=status_message(status, err, tol, out, dtype),
        method=method,
        reg=reg,
        tol=tol,
    )
    if grid is not None or reg_m is not None:
        # The fields of the CPU path's loop (:func:`.unbalanced.lse_result`).
        res["mass"] = float(out["mass"][0])
        if reg_m is not None:
            res["reg_m"] = reg_m
        if grid is not None:
            res["grid"] = grid
    if method == "eps_scaling":
        res["stages"] = int(out["stages"])
    if method == "sns":
        for key in SNS_FIELDS:
            res[key] = out[key]
    # stacklevel 4: warnings.warn <- finish <- sinkhorn_device <- sinkhorn <- the user's line.
    return finish(res, "optcore.ot.sinkhorn", progress=progress, warn=warn, stacklevel=4)


def sinkhorn_emulated(a, b, M=None, reg=None, **kwargs) -> OTResult:
    """:func:`optcore.ot.sinkhorn`'s device path on NumPy arrays, through the NumPy emulation of
    the kernels (:class:`~optcore.ot._gpu.emulate.NumpyKernels`): how CI and the hash check run
    the GPU driver without a GPU. Keywords as for :func:`sinkhorn_device` (defaults as
    :func:`~optcore.ot.sinkhorn`'s)."""
    from ._gpu.emulate import NumpyKernels  # noqa: PLC0415

    args = dict(
        method="log",
        x=None,
        y=None,
        tol=None,
        maxiter=10_000,
        x0=None,
        callback=None,
        check_every=10,
        disp=False,
        warn=True,
        options=None,
        return_plan=True,
    )
    kwargs = {**args, **kwargs}
    kwargs["reg_m"] = reg_m_pair(kwargs.get("reg_m"))  # as optcore.ot.sinkhorn takes it
    return sinkhorn_device(np, NumpyKernels, a, b, M, reg, **kwargs)


def _sparse_module(xp):
    """scipy.sparse for NumPy, cupyx.scipy.sparse for CuPy."""
    if xp is np:
        import scipy.sparse  # noqa: PLC0415

        return scipy.sparse
    import cupyx.scipy.sparse  # noqa: PLC0415

    return cupyx.scipy.sparse
