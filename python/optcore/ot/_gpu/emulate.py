"""A NumPy emulation of the ``kernels/ot_sinkhorn.cu`` kernels, tile for tile.

:class:`NumpyKernels` has the methods of :class:`optcore.ot._gpu.launch.CupyKernels` and computes
what each kernel computes with the same decomposition: the row pass split over 32 lanes by
``j % 32`` and merged, the column pass cut into the same row slices (``splits``) and, inside
a slice, 8 row groups by ``(i - i0) % 8``; the online pass cut into the same slices of the other
side; the partials merged by ``sk_finalize``'s formulas. Within one lane or group the kernel's
streaming log-sum-exp is replaced by a max-shifted sum (the same value up to rounding).

It lets CI, which has no GPU, run the GPU driver (:mod:`optcore.ot._gpu.sinkhorn`) end to end and
check it against the Rust solver; it is not a fast path.
"""

from __future__ import annotations

import numpy as np

from .launch import ONLINE_TARGET, online_rows, splits

__all__ = ["NumpyKernels"]

_NEG = -np.inf


def _lse_parts(x: np.ndarray, c: np.ndarray | None, axis: int):
    """(max, sum exp(x - max), sum exp(x - max) * c) along ``axis``; (-inf, 0, 0) when all -inf."""
    mx = np.max(x, axis=axis, keepdims=True)
    safe = np.where(np.isfinite(mx), mx, 0)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(x - safe)
    e = np.where(np.isneginf(x), 0, e)
    s = e.sum(axis=axis, dtype=np.float64)
    cs = None if c is None else (e * c).sum(axis=axis, dtype=np.float64)
    return np.squeeze(mx, axis), s, cs


def _merge(m1, s1, c1, m2, s2, c2):
    """Vectorised ``lse_merge``."""
    m = np.maximum(m1, m2)
    safe = np.where(np.isfinite(m), m, 0).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        r1 = np.where(np.isneginf(m1), 0.0, np.exp(m1.astype(np.float64) - safe))
        r2 = np.where(np.isneginf(m2), 0.0, np.exp(m2.astype(np.float64) - safe))
    return m, s1 * r1 + s2 * r2, c1 * r1 + c2 * r2


def _merge_axis(mx, s, c, axis):
    """Merges partial triples along ``axis`` (the tree or loop of the kernel)."""
    M = np.max(mx, axis=axis)
    safe = np.where(np.isfinite(M), M, 0).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.where(np.isneginf(mx), 0.0, np.exp(mx.astype(np.float64) - np.expand_dims(safe, axis)))
    return M, (s * r).sum(axis=axis), (c * r).sum(axis=axis)


class NumpyKernels:
    """NumPy stand-in for :class:`~optcore.ot._gpu.launch.CupyKernels` (same methods)."""

    xp = np

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def _x(self, h, C, inv_reg):
        T = self.dtype.type
        return ((h - C) * T(inv_reg)).astype(self.dtype)

    def dense_rows(self, M, h, pm, ps, pc, B, n, m, m_stride, inv_reg, cost):
        Mb = M.reshape(-1, n, m) if m_stride else M.reshape(1, n, m)
        Mb = np.broadcast_to(Mb, (B, n, m))
        x = self._x(h.reshape(B, 1, m), Mb, inv_reg)
        nsplit, chunk = splits(-(-(B * n) // 8), 1, m, 128)
        R = B * n
        for k in range(nsplit):
            j0, j1 = k * chunk, min(m, (k + 1) * chunk)
            width = j1 - j0
            lanes = -(-width // 32) * 32
            xp_ = np.full((B, n, lanes), _NEG, dtype=self.dtype)
            xp_[..., :width] = x[..., j0:j1]
            cp_ = np.zeros((B, n, lanes), dtype=self.dtype)
            cp_[..., :width] = Mb[..., j0:j1]
            # j = j0 + lane + 32 t: the lane is the last axis after the reshape.
            xl = xp_.reshape(B, n, lanes // 32, 32)
            cl = cp_.reshape(B, n, lanes // 32, 32)
            mx, s, c = _lse_parts(xl, cl if cost else None, axis=2)
            if c is None:
                c = np.zeros_like(s)
            mx, s, c = _merge_axis(mx, s, c, axis=2)
            pm[k * R : (k + 1) * R] = mx.reshape(-1)
            ps[k * R : (k + 1) * R] = s.reshape(-1)
            if cost:
                pc[k * R : (k + 1) * R] = c.reshape(-1)
        return nsplit

    def dense_cols(self, M, h, pm, ps, pc, B, n, m, m_stride, inv_reg, cost):
        Mb = M.reshape(-1, n, m) if m_stride else M.reshape(1, n, m)
        Mb = np.broadcast_to(Mb, (B, n, m))
        x = self._x(h.reshape(B, n, 1), Mb, inv_reg)
        nsplit, chunk = splits(-(-m // 32), B, n, 32)
        R = B * m
        for k in range(nsplit):
            i0, i1 = k * chunk, min(n, (k + 1) * chunk)
            parts = []
            for grp in range(8):
                rows = np.arange(i0 + grp, i1, 8)
                if rows.size == 0:
                    z = np.zeros((B, m))
                    parts.append((np.full((B, m), _NEG, dtype=self.dtype), z, z))
                    continue
                mx, s, c = _lse_parts(x[:, rows, :], Mb[:, rows, :] if cost else None, axis=1)
                parts.append((mx, s, np.zeros_like(s) if c is None else c))
            mx, s, c = parts[0]
            for p in parts[1:]:
                mx, s, c = _merge(mx, s, c, *p)
            pm[k * R : (k + 1) * R] = mx.reshape(-1)
            ps[k * R : (k + 1) * R] = s.reshape(-1)
            if cost:
                pc[k * R : (k + 1) * R] = c.reshape(-1)
        return nsplit

    def online(self, X, Y, h, p_own, w_own, pm, ps, pc, D, inv_reg, cost):
        # The kernel's fixed shift log(w) - p / reg (with its fallback) changes how (m, s) split
        # the log-sum-exp, not its value; the emulation uses the max.
        n_own, n_oth = X.shape[0], Y.shape[0]
        nsplit, chunk = splits(-(-n_own // (128 * online_rows(D))), 1, n_oth, 32, target=ONLINE_TARGET)
        for k in range(nsplit):
            j0, j1 = k * chunk, min(n_oth, (k + 1) * chunk)
            diff = X[:, None, :] - Y[None, j0:j1, :]
            C = np.einsum("ijk,ijk->ij", diff, diff).astype(self.dtype)
            x = self._x(h.reshape(-1)[None, j0:j1], C, inv_reg)
            mx, s, c = _lse_parts(x, C if cost else None, axis=1)
            pm[k * n_own : (k + 1) * n_own] = mx
            ps[k * n_own : (k + 1) * n_own] = s
            if cost:
                pc[k * n_own : (k + 1) * n_own] = c
        return nsplit

    def finalize(
        self,
        pm,
        ps,
        pc,
        nsplit,
        B,
        length,
        w,
        w_stride,
        p_old,
        p_new,
        err,
        cost,
        dot,
        marg,
        bad,
        reg,
        omega,
        flags,
        tau=1.0,
        rho=np.inf,
    ):
        R = B * length
        hc = bool(flags & 4)
        mx = pm[:R].copy()
        s = ps[:R].astype(np.float64)
        c = pc[:R].astype(np.float64) if hc else np.zeros(R)
        for k in range(1, nsplit):
            sl = slice(k * R, (k + 1) * R)
            mx, s, c = _merge(mx, s, c, pm[sl], ps[sl], pc[sl] if hc else np.zeros(R))
        ww = w.reshape(-1, length) if w_stride else w.reshape(1, length)
        wr = np.broadcast_to(ww, (B, length)).reshape(-1).astype(np.float64)
        regd = float(reg)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            L = np.where(np.isneginf(mx) | (s <= 0), -np.inf, regd * (mx.astype(np.float64) + np.log(s)))
            po = p_old.reshape(-1)[:R]
            pn = po
            if flags & 1:
                psk = regd * np.log(wr) - L if tau == 1.0 else regd * np.log(wr) - tau * L
                if omega == 1.0:
                    relaxed = psk
                else:
                    relaxed = np.where(np.isneginf(po), psk, (1.0 - omega) * po.astype(np.float64) + omega * psk)
                pn = np.where(wr <= 0, -np.inf, relaxed).astype(self.dtype)
                bad[0] += int(np.count_nonzero((wr > 0) & ~np.isfinite(pn)))
                p_new.reshape(-1)[:R] = pn
            pe = (pn if flags & 2 else po).astype(np.float64)
            live = ~np.isneginf(pe) & ~np.isneginf(L)
            sums = np.where(live, np.exp((pe + L) / regd), 0.0)
            cr = np.where(live, np.exp(pe / regd + mx.astype(np.float64)) * c, 0.0)
            dt = np.where(live, pe * sums, 0.0)
            if np.isinf(rho):
                target = wr
            else:
                target = np.where(wr <= 0, wr, wr * np.exp(-(pe - regd * np.log(wr)) / rho))
        bad[0] += int(np.count_nonzero(~np.isfinite(sums)))
        if flags & 8:
            marg.reshape(-1)[:R] = sums
        e = np.abs(sums - target)
        err[:B] += e.reshape(B, length).sum(axis=1)
        cost[:B] += cr.reshape(B, length).sum(axis=1)
        dot[:B] += dt.reshape(B, length).sum(axis=1)

    def plan_dense(self, M, f, g, P, B, n, m, m_stride, inv_reg):
        Mb = np.broadcast_to(M.reshape(-1, n, m) if m_stride else M.reshape(1, n, m), (B, n, m))
        fb, gb = f.reshape(B, n, 1), g.reshape(B, 1, m)
        with np.errstate(invalid="ignore", over="ignore"):
            val = np.exp(((fb + gb - Mb) * self.dtype.type(inv_reg)).astype(self.dtype))
        P.reshape(B, n, m)[...] = np.where(np.isneginf(fb) | np.isneginf(gb), 0, val)

    def plan_online(self, X, Y, f, g, P, D, inv_reg):
        diff = X[:, None, :] - Y[None, :, :]
        C = np.einsum("ijk,ijk->ij", diff, diff).astype(self.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            val = np.exp(((f[:, None] + g[None, :] - C) * self.dtype.type(inv_reg)).astype(self.dtype))
        P[...] = np.where(np.isneginf(f)[:, None] | np.isneginf(g)[None, :], 0, val)
