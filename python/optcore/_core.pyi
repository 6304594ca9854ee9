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

# --- bilevel (rust/optcore-py/src/bilevel.rs) ------------------------------------------------

class NativeBilevel:
    """A native bilevel problem (float64 and/or float32 instance)."""

    @property
    def dims(self) -> tuple[int, int]: ...
    @property
    def n_samples(self) -> tuple[int, int]: ...

_F64 = npt.NDArray[np.float64]
_F32 = npt.NDArray[np.float32]
# ("dense", flat, n, p) or ("csr", indptr, indices, data, n, p)
_Design = tuple[Any, ...]
# (d_x, d_y, n_f, n_g, grad_f, grad_g, second | None, has_hvp, has_jvp, value_f | None)
_OracleSpec = tuple[Any, ...]
_BilevelProblem = NativeBilevel | _OracleSpec

def bilevel_quadratic(
    dx: int, dy: int, a_mat: _F64, b_mat: _F64, a_vec: _F64, c_mat: _F64, q_mat: _F64, r_mat: _F64, p_mat: _F64,
    p_vec: _F64, q_vec: _F64,
) -> NativeBilevel: ...
def bilevel_ridge_f64(x_tr: _Design, t_tr: _F64, x_val: _Design, t_val: _F64, per_feature: bool) -> NativeBilevel: ...
def bilevel_ridge_f32(x_tr: _Design, t_tr: _F32, x_val: _Design, t_val: _F32, per_feature: bool) -> NativeBilevel: ...
def bilevel_logistic_f64(
    x_tr: _Design, l_tr: list[int], x_val: _Design, l_val: list[int], classes: int, reg: float
) -> NativeBilevel: ...
def bilevel_logistic_f32(
    x_tr: _Design, l_tr: list[int], x_val: _Design, l_val: list[int], classes: int, reg: float
) -> NativeBilevel: ...
def bilevel_minimize_f64(
    problem: _BilevelProblem, x0: _F64, y0: _F64, method: str, options: dict[str, Any], progress: _Progress = None,
    check_every: int = 10, workers: int | None = None,
) -> dict[str, Any]: ...
def bilevel_minimize_f32(
    problem: _BilevelProblem, x0: _F32, y0: _F32, method: str, options: dict[str, Any], progress: _Progress = None,
    check_every: int = 10, workers: int | None = None,
) -> dict[str, Any]: ...
def bilevel_hypergradient_f64(
    problem: _BilevelProblem, x: _F64, y: _F64, method: str, tol: float = 1e-12, maxiter: int = 1000, terms: int = 100,
    eta: float = 1.0,
) -> dict[str, Any]: ...
def bilevel_hypergradient_f32(
    problem: _BilevelProblem, x: _F32, y: _F32, method: str, tol: float = 1e-12, maxiter: int = 1000, terms: int = 100,
    eta: float = 1.0,
) -> dict[str, Any]: ...
def bilevel_eval_f64(problem: _BilevelProblem, x: _F64, y: _F64, v: _F64 | None = None) -> dict[str, Any]: ...
def bilevel_eval_f32(problem: _BilevelProblem, x: _F32, y: _F32, v: _F32 | None = None) -> dict[str, Any]: ...
