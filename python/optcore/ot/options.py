"""The methods of :func:`optcore.ot.sinkhorn`, their ``options`` and the result message."""

from __future__ import annotations

import numpy as np

from .._result import STATUS_MESSAGES, OTResult
from .._validation import positive_int, positive_scalar

__all__ = [
    "METHODS",
    "SNS_FIELDS",
    "default_tol",
    "eps_options",
    "final_status",
    "integer_option",
    "intermediate_result",
    "overrelaxation",
    "remeasure",
    "sns_options",
    "status_message",
]

#: The methods of :func:`sinkhorn` and their ``options`` keys.
METHODS = {
    "log": ("overrelaxation",),
    "eps_scaling": ("overrelaxation", "eps0", "eps_decay", "stage_tol", "stage_maxiter"),
    "scaling": (),
    "sns": ("overrelaxation", "density", "warmup", "switch_tol", "cg_maxiter", "eps_scaling"),
}

#: Extra result fields of ``method="sns"``.
SNS_FIELDS = ("n_sinkhorn", "n_newton", "hessian_density", "cg_iterations", "line_search_evals")


def default_tol(dtype) -> float:
    """The default ``tol`` of :func:`sinkhorn`: 1e-9 in float64, 1e-5 in float32 (about what
    float32 potentials can reach: plan entries carry a relative error of
    ``eps32 * |f| / reg``).

    Parameters
    ----------
    dtype : numpy dtype or type
        The working dtype (that of the cost matrix or points).

    Returns
    -------
    float
        The tolerance on the plan's L1 marginal error that :func:`sinkhorn` (and the solvers
        built on it: ``barycenter``, ``sinkhorn_divergence``, ...) use when ``tol`` is None.

    Examples
    --------
    >>> import numpy as np, optcore
    >>> optcore.ot.default_tol(np.float64), optcore.ot.default_tol(np.float32)
    (1e-09, 1e-05)
    """
    return 1e-9 if np.dtype(dtype) == np.float64 else 1e-5


def sns_options(opts: dict) -> dict:
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
        out["warmup"] = integer_option(warmup, "options['warmup']", minimum=0)
    out["switch_tol"] = positive_scalar(opts.get("switch_tol", 1e-2), "options['switch_tol']")
    out["cg_maxiter"] = integer_option(opts.get("cg_maxiter", 1000), "options['cg_maxiter']")
    eps = opts.get("eps_scaling", False)
    if not isinstance(eps, (bool, np.bool_)):
        raise TypeError(f"options['eps_scaling'] must be True or False; got {eps!r}.")
    out["eps_scaling"] = bool(eps)
    return out


def overrelaxation(opts: dict):
    """``options['overrelaxation']``: None for "auto", else a float in [1, 2)."""
    relax = opts.get("overrelaxation", "auto")
    if isinstance(relax, str) and relax == "auto":
        return None
    omega = positive_scalar(relax, "options['overrelaxation']")
    if not 1.0 <= omega < 2.0:
        raise ValueError(f"options['overrelaxation'] must be 'auto' or a number in [1, 2); got {relax!r}.")
    return omega


def eps_options(opts: dict) -> tuple:
    """(eps0 or None, eps_decay, stage_tol, stage_maxiter) of ``method="eps_scaling"``."""
    eps0 = opts.get("eps0")
    es = (
        None if eps0 is None else positive_scalar(eps0, "options['eps0']"),
        positive_scalar(opts.get("eps_decay", 0.5), "options['eps_decay']"),
        positive_scalar(opts.get("stage_tol", 1e-3), "options['stage_tol']"),
        integer_option(opts.get("stage_maxiter", 100), "options['stage_maxiter']"),
    )
    if not 0 < es[1] < 1:
        raise ValueError(f"options['eps_decay'] must be in (0, 1); got {es[1]}.")
    return es


#: Integer options travel to the core as 64-bit integers.
_INT_MAX = 2**63 - 1


def integer_option(value, name: str, *, minimum: int = 1) -> int:
    """An integer argument (``maxiter``, ``check_every``, an integer option) of at least
    ``minimum`` that the core can hold: ``ValueError`` naming it beyond 2**63 - 1."""
    v = positive_int(value, name, minimum=minimum, clamp=False)
    if v > _INT_MAX:
        raise ValueError(f"`{name}` = {v} is too large (at most 2**63 - 1); give a smaller integer.")
    return v


def remeasure(xp, plan, a_ref, b_ref) -> np.ndarray:
    """The L1 marginal errors ``||P 1 - a||_1 + ||P^T 1 - b||_1`` of the plans as returned
    (``plan``: (..., n, m) in the result's dtype), summed in float64 against the float64
    reference marginals (``b`` after its rescaling onto ``a``'s mass), one per problem."""
    rows = plan.sum(axis=-1, dtype=np.float64)
    cols = plan.sum(axis=-2, dtype=np.float64)
    err = xp.abs(rows - a_ref).sum(axis=-1) + xp.abs(cols - b_ref).sum(axis=-1)
    return np.asarray(err.get() if hasattr(err, "get") else err, dtype=np.float64)


def final_status(status: int, err, tol: float, nit: int, maxiter: int) -> tuple[int, str | None]:
    """The status of a result, decided on ``err``, the marginal error re-measured on the
    returned plan (CPU and device): 0 exactly when it meets ``tol``, whatever the loop
    concluded (a stall or the iteration limit); a loop that claimed convergence the plan does
    not bear out is 1 at the iteration limit, else 4. A callback stop stays 99. Returns the
    status and, where the status changes to 4, the detail of its message."""
    err = np.asarray(err, dtype=np.float64)
    if status == 99:
        return 99, None
    if np.all(np.isfinite(err)) and np.all(err <= tol):
        return 0, None
    if status == 0:
        if nit >= maxiter:
            return 1, None
        worst = float(np.max(err))
        return 4, f"the marginal error measured on the returned plan, {worst:.3e}, exceeds tol = {tol:.1e}."
    return status, None


def status_message(status: int, err, tol: float, out: dict, dtype) -> str:
    """The result message of :func:`sinkhorn` (CPU and device paths)."""
    worst_err = float(np.max(err))
    if status == 0:
        return f"Converged: marginal error {worst_err:.3e} <= tol {tol:.1e}."
    if status == 1:
        return (
            f"Iteration limit reached: marginal error {worst_err:.3e} > tol {tol:.1e} after "
            f"{out['nit']} iterations. Increase maxiter, or try method='eps_scaling'"
            + (" or float64 data." if dtype == np.float32 else ".")
        )
    if status == 99:
        return STATUS_MESSAGES[99]
    return f"{STATUS_MESSAGES.get(status, 'Stopped.')} {out['detail']}".strip()


def intermediate_result(state: dict, reg: float, method: str) -> OTResult:
    """What ``callback`` receives (CPU and device): the solver's progress ``state`` as an
    :class:`~optcore.OTResult`."""
    return OTResult(
        nit=state["nit"],
        marginal_error=state["error"],
        f=state.get("f"),
        g=state.get("g"),
        reg=state.get("reg", reg),
        method=method,
        **{key: state[key] for key in ("omega", "hessian_density") if key in state},
        **({"n_newton": int(state["n_newton"])} if "n_newton" in state else {}),
    )
