"""Launchers of the ``kernels/ot_sinkhorn.cu`` kernels through CuPy.

:class:`CupyKernels` and :class:`optcore.ot._gpu.emulate.NumpyKernels` have the same methods
with the same arguments; :mod:`optcore.ot._gpu.sinkhorn` drives either. Every method writes
into arrays it is given (nothing is allocated per call).
"""

from __future__ import annotations

import numpy as np

from .kernels import compile_module

__all__ = [
    "CupyKernels",
    "MAX_SPLITS",
    "ONLINE_DIMS",
    "ONLINE_TARGET",
    "KERNEL_EXPRESSIONS",
    "online_rows",
    "padded_dim",
    "splits",
]

#: Point dimensions the online kernel is instantiated for; points are zero-padded up to one.
ONLINE_DIMS = (1, 2, 3, 4, 8, 16, 32, 64, 128)

_CNAME = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def padded_dim(d: int) -> int:
    """The smallest instantiated dimension >= d (ValueError above 128)."""
    for D in ONLINE_DIMS:
        if D >= d:
            return D
    raise ValueError(
        f"point clouds of dimension d = {d} > {ONLINE_DIMS[-1]} are not supported by the online "
        "form; pass the cost matrix M instead."
    )


def online_rows(D: int) -> int:
    """Own points per thread of ``sk_online`` (``online_rows`` in the kernel source)."""
    return 4 if D <= 16 else (2 if D <= 64 else 1)


def _base_expressions(t: str) -> tuple[str, ...]:
    return (
        f"sk_dense_rows<{t}, false>",
        f"sk_dense_rows<{t}, true>",
        f"sk_dense_cols<{t}, false>",
        f"sk_dense_cols<{t}, true>",
        f"sk_finalize<{t}>",
        f"sk_plan_dense<{t}>",
    )


def _online_expressions(t: str, D: int) -> tuple[str, ...]:
    return (f"sk_online<{t}, {D}, false>", f"sk_online<{t}, {D}, true>", f"sk_plan_online<{t}, {D}>")


#: Every template instantiation the GPU path may use (a CPU test compiles them all with NVRTC
#: and checks that every kernel of ot_sinkhorn.cu is among them).
KERNEL_EXPRESSIONS = {
    "ot_sinkhorn.cu": tuple(
        e
        for t in ("float", "double")
        for e in _base_expressions(t) + tuple(x for D in ONLINE_DIMS for x in _online_expressions(t, D))
    )
}


#: Blocks the online pass aims at (see :func:`splits`).
ONLINE_TARGET = 8192

#: Most slices a pass is cut into (the partial buffers hold MAX_SPLITS * B * max(n, m) entries).
MAX_SPLITS = 64


def splits(n_own_blocks: int, batch: int, n_other: int, granule: int, target: int = 2048) -> tuple[int, int]:
    """(nsplit, chunk): how many slices of the other side a pass is cut into so that about
    ``target`` blocks are launched; ``chunk`` is a multiple of ``granule``, ``nsplit <=
    MAX_SPLITS``.

    Measured on an H200 (benches/results/ot_gpu.md): the dense passes are fastest with about
    2048 blocks (8192 cost float64 10 points of the bandwidth roofline: shorter slices spend
    more on the per-thread merges); the online pass, which is arithmetic-bound, with 8192."""
    blocks = max(1, n_own_blocks * batch)
    nsplit = max(1, min(-(-target // blocks), -(-n_other // granule), MAX_SPLITS))
    chunk = -(-n_other // nsplit)
    chunk = -(-chunk // granule) * granule
    nsplit = -(-n_other // chunk)
    return nsplit, chunk


class CupyKernels:
    """The CUDA kernels for one dtype, compiled on first use (CuPy caches the binaries)."""

    def __init__(self, dtype):
        import cupy  # noqa: PLC0415  (lazy: CuPy is optional)

        self.xp = cupy
        self.dtype = np.dtype(dtype)
        self.t = _CNAME[self.dtype]
        self._mod = compile_module("ot_sinkhorn.cu", _base_expressions(self.t))

    def _fn(self, expr: str):
        return self._mod.get_function(expr)

    def _online_fn(self, kind: str, D: int, cost: bool = False):
        mod = compile_module("ot_sinkhorn.cu", _online_expressions(self.t, D))
        if kind == "plan":
            return mod.get_function(f"sk_plan_online<{self.t}, {D}>")
        return mod.get_function(f"sk_online<{self.t}, {D}, {'true' if cost else 'false'}>")

    def _s(self, x):
        return self.dtype.type(x)

    def dense_rows(self, M, h, pm, ps, pc, B, n, m, m_stride, inv_reg, cost):
        fn = self._fn(f"sk_dense_rows<{self.t}, {'true' if cost else 'false'}>")
        gx = -(-(B * n) // 8)  # 8 warps (rows) per block
        nsplit, chunk = splits(gx, 1, m, 128)
        fn(
            (gx, nsplit),
            (256,),
            (
                M,
                h,
                pm,
                ps,
                pc,
                np.int32(B),
                np.int32(n),
                np.int32(m),
                np.int64(m_stride),
                np.int32(chunk),
                self._s(inv_reg),
            ),
        )
        return nsplit

    def dense_cols(self, M, h, pm, ps, pc, B, n, m, m_stride, inv_reg, cost):
        fn = self._fn(f"sk_dense_cols<{self.t}, {'true' if cost else 'false'}>")
        gx = -(-m // 32)
        nsplit, chunk = splits(gx, B, n, 32)
        fn(
            (gx, nsplit, B),
            (32, 8),
            (
                M,
                h,
                pm,
                ps,
                pc,
                np.int32(B),
                np.int32(n),
                np.int32(m),
                np.int64(m_stride),
                np.int32(chunk),
                self._s(inv_reg),
            ),
        )
        return nsplit

    def online(self, X, Y, h, p_own, w_own, pm, ps, pc, D, inv_reg, cost):
        n_own, n_oth = X.shape[0], Y.shape[0]
        gx = -(-n_own // (128 * online_rows(D)))
        nsplit, chunk = splits(gx, 1, n_oth, 32, target=ONLINE_TARGET)
        fn = self._online_fn("half", D, cost)
        fn(
            (gx, nsplit),
            (128,),
            (X, Y, h, p_own, w_own, pm, ps, pc, np.int32(n_own), np.int32(n_oth), np.int32(chunk), self._s(inv_reg)),
        )
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
        """``sk_finalize``: ``tau``, ``rho`` the unbalanced update and target of this side
        (1, inf: balanced); ``marg`` (float64, ``B * length``) is written when ``flags & 8``."""
        R = B * length
        self._fn(f"sk_finalize<{self.t}>")(
            (-(-R // 256),),
            (256,),
            (
                pm,
                ps,
                pc,
                np.int32(nsplit),
                np.int32(B),
                np.int32(length),
                w,
                np.int64(w_stride),
                p_old,
                p_new,
                err,
                cost,
                dot,
                marg,
                bad,
                self._s(reg),
                self._s(omega),
                np.float64(tau),
                np.float64(rho),
                np.int32(flags),
            ),
        )

    def plan_dense(self, M, f, g, P, B, n, m, m_stride, inv_reg):
        total = B * n * m
        grid = (max(1, min(-(-total // 256), 65535 * 4)),)
        self._fn(f"sk_plan_dense<{self.t}>")(
            grid, (256,), (M, f, g, P, np.int32(B), np.int32(n), np.int32(m), np.int64(m_stride), self._s(inv_reg))
        )

    def plan_online(self, X, Y, f, g, P, D, inv_reg):
        n, m = X.shape[0], Y.shape[0]
        grid = (max(1, min(-(-(n * m) // 256), 65535 * 4)),)
        self._online_fn("plan", D)(grid, (256,), (X, Y, f, g, P, np.int32(n), np.int32(m), self._s(inv_reg)))
