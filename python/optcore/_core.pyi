"""Type stubs of the private extension module (see rust/optcore-py)."""

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

def kernel_names() -> list[str]: ...
def kernel_source(name: str) -> str: ...
def simd_level() -> str: ...

_Progress = Callable[[dict[str, Any]], bool | None] | None

def sinkhorn_log_f64(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], m: npt.NDArray[np.float64], reg: float, tol: float,
    maxiter: int, f0: npt.NDArray[np.float64] | None = None, g0: npt.NDArray[np.float64] | None = None,
    eps_scaling: tuple[float | None, float, float, int] | None = None, omega: float | None = None,
    progress: _Progress = None, check_every: int = 10, workers: int | None = None,
) -> dict[str, Any]: ...
def sinkhorn_log_f32(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], m: npt.NDArray[np.float32], reg: float, tol: float,
    maxiter: int, f0: npt.NDArray[np.float32] | None = None, g0: npt.NDArray[np.float32] | None = None,
    eps_scaling: tuple[float | None, float, float, int] | None = None, omega: float | None = None,
    progress: _Progress = None, check_every: int = 10, workers: int | None = None,
) -> dict[str, Any]: ...
def sinkhorn_scaling_f64(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], m: npt.NDArray[np.float64], reg: float, tol: float,
    maxiter: int, f0: npt.NDArray[np.float64] | None = None, g0: npt.NDArray[np.float64] | None = None,
    progress: _Progress = None, check_every: int = 10, workers: int | None = None,
) -> dict[str, Any]: ...
def sinkhorn_scaling_f32(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], m: npt.NDArray[np.float32], reg: float, tol: float,
    maxiter: int, f0: npt.NDArray[np.float32] | None = None, g0: npt.NDArray[np.float32] | None = None,
    progress: _Progress = None, check_every: int = 10, workers: int | None = None,
) -> dict[str, Any]: ...
def sinkhorn_sns_f64(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], m: npt.NDArray[np.float64], reg: float, tol: float,
    maxiter: int, f0: npt.NDArray[np.float64] | None = None, g0: npt.NDArray[np.float64] | None = None,
    density: float | None = None, warmup: int | None = None, switch_tol: float = 1e-2,
    omega: float | None = None, cg_maxiter: int = 1000, eps_scaling: bool = False,
    progress: _Progress = None, check_every: int = 10, workers: int | None = None,
) -> dict[str, Any]: ...
def sinkhorn_sns_f32(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], m: npt.NDArray[np.float32], reg: float, tol: float,
    maxiter: int, f0: npt.NDArray[np.float32] | None = None, g0: npt.NDArray[np.float32] | None = None,
    density: float | None = None, warmup: int | None = None, switch_tol: float = 1e-2,
    omega: float | None = None, cg_maxiter: int = 1000, eps_scaling: bool = False,
    progress: _Progress = None, check_every: int = 10, workers: int | None = None,
) -> dict[str, Any]: ...
def exp_floor_f64(m: npt.NDArray[np.float64], reg: float, reps: int, workers: int | None = None) -> float: ...
def exp_floor_f32(m: npt.NDArray[np.float32], reg: float, reps: int, workers: int | None = None) -> float: ...

# --- fixed points (rust/optcore-py/src/halpern.rs) -------------------------------------------

class NativeOperator:
    """A native nonexpansive operator holding its float64 and float32 instances."""

    @property
    def dim(self) -> int: ...
    def apply_f64(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
    def apply_f32(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...

def op_identity(d: int) -> NativeOperator: ...
def op_box(lo: npt.NDArray[np.float64], hi: npt.NDArray[np.float64]) -> NativeOperator: ...
def op_ball(center: npt.NDArray[np.float64], radius: float) -> NativeOperator: ...
def op_simplex(d: int, total: float) -> NativeOperator: ...
def op_affine(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> NativeOperator: ...
def op_linear_resolvent(l: npt.NDArray[np.float64], lam: float) -> NativeOperator: ...
def op_compose(ops: list[NativeOperator]) -> NativeOperator: ...
def op_average(ops: list[NativeOperator], weights: list[float]) -> NativeOperator: ...
def op_reflect(op: NativeOperator) -> NativeOperator: ...
def op_douglas_rachford(pa: NativeOperator, pb: NativeOperator) -> NativeOperator: ...

_FlatOp = NativeOperator | Callable[[npt.NDArray[Any]], npt.NDArray[Any]]

def halpern_f64(
    op: _FlatOp, x0: npt.NDArray[np.float64], method: str, param: float, tol: float, rtol: float, maxiter: int,
    restart: float | None = None, tol_disp: float = 1e-6, min_disp_iter: int = 50, progress: _Progress = None,
    check_every: int = 10,
) -> dict[str, Any]: ...
def halpern_f32(
    op: _FlatOp, x0: npt.NDArray[np.float32], method: str, param: float, tol: float, rtol: float, maxiter: int,
    restart: float | None = None, tol_disp: float = 1e-6, min_disp_iter: int = 50, progress: _Progress = None,
    check_every: int = 10,
) -> dict[str, Any]: ...

def matrix_game_f64(
    a: npt.NDArray[np.float64], x0: npt.NDArray[np.float64], y0: npt.NDArray[np.float64], method: str, eta: float,
    tol: float, maxiter: int, progress: _Progress = None, check_every: int = 10,
) -> dict[str, Any]: ...
