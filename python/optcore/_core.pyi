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
