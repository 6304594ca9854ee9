"""Grids (:class:`optcore.ot.Grid`) in the device driver: the separable log-domain passes.

On a grid the cost ``C(x, y) = sum_k |x_k - y_k|^p`` is separable, so ``LSE_j((h_j - C_ij) /
reg)`` over all grid points is ``d`` successive 1-D log-sum-exps, one per axis, each
max-shifted per output (as the CPU grid operator, ``rust/optcore-core/src/ot/grid.rs``):
``n * sum_k n_k`` exponentials per half-iteration and no ``n x n`` array. They are written
with ``xp`` operations (CuPy on the device, NumPy in CI: the same code), in the working
dtype, and leave ``sk_finalize``'s partials (one slice: ``m`` the log-sum-exp, ``s = 1``), so
the loop, the unbalanced update and the measurements are those of the dense path.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GridCost"]

#: Entries of the (lines, n_k, n_k) temporary of one chunk of a 1-D pass.
_CHUNK = {"numpy": 1 << 22, "cupy": 1 << 26}


class GridCost:
    """A :class:`~optcore.ot.Grid` as the cost of the device loop (``kind = "grid"``): the
    per-axis 1-D costs on the device, the 1-D log kernels cached per ``reg``."""

    kind = "grid"
    max_splits = 1  # the passes leave one slice of partials

    def __init__(self, xp, grid, dtype):
        self.xp, self.grid, self.dtype = xp, grid, np.dtype(dtype)
        self.shape = tuple(grid.shape)
        self.n = self.m = int(grid.size)
        # |x_i - x_j|^p per axis, float64 (computed on the host from the grid's float64 axes:
        # n_k^2 numbers each).
        self.costs = [xp.asarray(np.abs(ax[:, None] - ax[None, :]) ** grid.p) for ax in grid.axes]
        self._logk: dict = {}
        self._chunk = _CHUNK["numpy" if xp is np else "cupy"]

    def _kernels(self, inv_reg: float, weighted: int | None):
        """Per axis ``-C_k / reg`` in the working dtype; on axis ``weighted`` plus ``ln C_k``
        (the kernel weighted by that axis' cost, ``-inf`` where it is 0)."""
        key = (inv_reg, weighted)
        if key not in self._logk:
            xp = self.xp
            out = []
            for k, C in enumerate(self.costs):
                L = -C * inv_reg
                if k == weighted:
                    with np.errstate(divide="ignore"):
                        L = L + xp.log(C)
                out.append(L.astype(self.dtype))
            if len(self._logk) > 2 * (len(self.costs) + 1):
                self._logk.clear()  # a new ε stage: the old kernels are not used again
            self._logk[key] = out
        return self._logk[key]

    def _lse_axis(self, U, L, axis: int):
        """``out[.., i, ..] = LSE_j(U[.., j, ..] + L[i, j])`` along ``axis``, max-shifted per output."""
        xp = self.xp
        V = xp.moveaxis(U, axis, -1)
        lead, nk = V.shape[:-1], V.shape[-1]
        V = xp.ascontiguousarray(V).reshape(-1, nk)
        out = xp.empty_like(V)
        step = max(1, self._chunk // (nk * nk))
        for s in range(0, V.shape[0], step):
            X = V[s : s + step, None, :] + L[None, :, :]
            mx = X.max(axis=2)
            safe = xp.where(xp.isfinite(mx), mx, 0).astype(self.dtype)
            with np.errstate(invalid="ignore", over="ignore"):
                S = xp.exp(X - safe[:, :, None]).sum(axis=2)
                with np.errstate(divide="ignore"):
                    out[s : s + step] = xp.where(xp.isneginf(mx), mx, safe + xp.log(S))
        return xp.moveaxis(out.reshape(lead + (nk,)), -1, axis)

    def apply(self, h, inv_reg: float, weighted: int | None = None):
        """``LSE_j(h_j / reg - C_ij / reg)`` for every grid point ``i`` (``h``: (B, n)), in the
        working dtype, shape (B, n)."""
        B = h.shape[0]
        U = (h * self.dtype.type(inv_reg)).astype(self.dtype).reshape((B,) + self.shape)
        for k, L in enumerate(self._kernels(inv_reg, weighted)):
            U = self._lse_axis(U, L, k + 1)
        return U.reshape(B, self.n)

    def partials(self, h, pm, ps, pc, inv_reg: float, want_cost: bool) -> int:
        """``sk_finalize``'s partials of one half-iteration (the same for rows and columns: the
        cost is symmetric). The cost partial is ``sum_j exp(x_ij - m_i) C_ij = sum_k exp(LSE^k_i -
        m_i)`` with ``LSE^k`` the pass weighted by axis ``k``'s cost. Returns 1 (one slice)."""
        xp = self.xp
        R = h.size
        lse = self.apply(h, inv_reg).reshape(-1)
        pm[:R] = lse
        ps[:R] = 1.0
        if want_cost:
            c = xp.zeros(R, dtype=np.float64)
            base = lse.astype(np.float64)
            safe = xp.where(xp.isfinite(base), base, 0.0)
            for k in range(len(self.costs)):
                lk = self.apply(h, inv_reg, weighted=k).reshape(-1).astype(np.float64)
                with np.errstate(invalid="ignore", over="ignore"):
                    c += xp.where(xp.isneginf(lk), 0.0, xp.exp(lk - safe))
            pc[:R] = c
        return 1

    def plan(self, f, g, P, inv_reg: float) -> None:
        """The dense plan ``exp((f_i + g_j - C_ij) / reg)`` (``return_plan=True`` only: n x n)."""
        xp = self.xp
        C = xp.asarray(self.grid.cost_matrix()).astype(self.dtype)
        fb, gb = f.reshape(-1)[:, None], g.reshape(-1)[None, :]
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            val = xp.exp(((fb + gb - C) * self.dtype.type(inv_reg)).astype(self.dtype))
        P.reshape(self.n, self.m)[...] = xp.where(xp.isneginf(fb) | xp.isneginf(gb), 0, val)
