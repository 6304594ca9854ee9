"""Unbalanced OT (finite ``reg_m``) in the device driver: the scalars and vector steps that the
log-domain loop (:func:`optcore.ot._gpu.sinkhorn.solve_log`) adds to the balanced one.

The problem, the updates and the residual are those of the CPU loop
(``rust/optcore-core/src/ot/unbalanced.rs``, :mod:`optcore.ot.unbalanced`): with
``tau = rho / (rho + reg)`` the half-iteration is ``f = reg ln a - tau reg LSE_j((g_j - C_ij) /
reg)`` (``sk_finalize``'s ``tau``), each iteration is followed by the closed-form translation
``(f + l, g - l)`` (:func:`translate`), and the residual is the L1 distance of the plan's
marginals to the relaxed targets ``a exp(-(f - reg ln a) / rho_a)``, ``b exp(-(g - reg ln b) /
rho_b)`` of the same potentials (:func:`measure`). Everything here is element-wise or a
reduction over ``xp`` arrays (nothing goes through the host).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["tau", "log_weights", "translate", "measure"]


def tau(rho: float, reg: float) -> float:
    """``rho / (rho + reg)``; 1 for ``rho = inf`` (a balanced marginal)."""
    return 1.0 if math.isinf(rho) else rho / (rho + reg)


def log_weights(xp, w):
    """``ln w`` in float64 (``-inf`` at the zero weights), taken once per run."""
    with np.errstate(divide="ignore"):
        return xp.log(w.astype(np.float64))


def _targets(xp, w, lw, p, reg: float, rho: float):
    """The relaxed targets ``w exp(-(p - reg ln w) / rho)`` per entry (``w`` where ``w = 0``
    or ``rho = inf``), float64, shape of ``w``."""
    w = w.astype(np.float64)
    if math.isinf(rho):
        return w
    with np.errstate(invalid="ignore", over="ignore"):
        t = w * xp.exp(-(p.astype(np.float64) - reg * lw) / rho)
    return xp.where(w == 0, w, t)


def translate(xp, f, g, f_prev, a, b, ln_a, ln_b, reg: float, reg_m) -> None:
    """The translation-invariant step (Séjourné et al. 2022), in place and per problem:
    ``f += l``, ``g -= l`` with ``l = ln(A / B) / (1 / rho_a + 1 / rho_b)``, ``A = sum a exp(-(f -
    reg ln a) / rho_a)`` (``sum a`` when ``rho_a = inf``), ``B`` alike; ``l = 0`` where that is not
    finite. The plan is unchanged; ``f_prev`` (the potential paired with ``g`` in the plan
    the loop measured) moves with ``f`` so that ``(f_prev, g)`` keeps its plan."""
    ra, rb = reg_m
    sa = _targets(xp, a, ln_a, f, reg, ra).sum(axis=1)
    sb = _targets(xp, b, ln_b, g, reg, rb).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lam = xp.log(sa / sb) / (1.0 / ra + 1.0 / rb)
    lam = xp.where(xp.isfinite(lam) & (sa > 0) & (sb > 0), lam, 0.0)[:, None]
    for p, sign in ((f, 1.0), (g, -1.0)) + (() if f_prev is f else ((f_prev, 1.0),)):
        p[...] = (p.astype(np.float64) + sign * lam).astype(p.dtype)


def measure(xp, rows, cols, f, g, a, b, reg: float, reg_m):
    """(residual, objective, mass) per problem of the plan with float64 marginals ``rows``
    (B, n) and ``cols`` (B, m) and potentials ``f``, ``g``: the formulas of the CPU loop's
    measurement. ``reg_m = None`` is the balanced problem (objective ``<P, C> + reg sum P ln P
    = sum r f + sum c g``)."""
    ra, rb = (np.inf, np.inf) if reg_m is None else reg_m
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ln_a, ln_b = log_weights(xp, a), log_weights(xp, b)
    ta = _targets(xp, a, ln_a, f, reg, ra)
    tb = _targets(xp, b, ln_b, g, reg, rb)
    err = xp.abs(rows - ta).sum(axis=1) + xp.abs(cols - tb).sum(axis=1)
    mass = rows.sum(axis=1)

    def dot(r, p, lw, shift):  # sum_i r_i (p_i - reg ln w_i), 0 where r_i = 0
        with np.errstate(invalid="ignore"):
            v = p.astype(np.float64) - (reg * lw if shift else 0.0)
            return xp.where(r > 0, r * v, 0.0).sum(axis=1)

    if reg_m is None:
        return err, dot(rows, f, ln_a, False) + dot(cols, g, ln_b, False), mass

    def kl(p, q):  # sum p ln(p / q) - p + q
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.where(p > 0, p * xp.log(p / q) - p + q, q).sum(axis=1)

    fun = dot(rows, f, ln_a, True) + dot(cols, g, ln_b, True) - reg * (mass - a64.sum(axis=1) * b64.sum(axis=1))
    if not math.isinf(ra):
        fun = fun + ra * kl(rows, a64)
    if not math.isinf(rb):
        fun = fun + rb * kl(cols, b64)
    return err, fun, mass
