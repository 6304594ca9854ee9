"""Type stubs of the private extension module (see rust/optcore-py)."""

from collections.abc import Callable
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

__version__: str

def kernel_names() -> list[str]: ...
def kernel_source(name: str) -> str: ...
def simd_level() -> str: ...

_Progress = Callable[[dict[str, Any]], bool | None] | None

# --- optimal transport (rust/optcore-py/src/ot.rs) --------------------------------------------
# A call solves a batch of problems of one size: a (count or 1, n), b (count, m) or, for the
# scaling solver, (count, k, m), m (n, m) or (count, n, m); x0 = (f0, g0) per problem. `opts`
# holds reg, tol, maxiter and the method's options; `run` holds progress, check_every, workers.
# Returns one dict per problem.

class _Run(TypedDict, total=False):
    progress: _Progress
    check_every: int
    workers: int | None

_X0 = tuple[npt.NDArray[Any], npt.NDArray[Any]] | None

def sinkhorn_log_f64(
    a: npt.NDArray[np.float64],
    b: npt.NDArray[np.float64],
    m: npt.NDArray[np.float64],
    opts: dict[str, Any],
    run: _Run,
    x0: _X0 = None,
) -> list[dict[str, Any]]: ...
def sinkhorn_log_f32(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32],
    m: npt.NDArray[np.float32],
    opts: dict[str, Any],
    run: _Run,
    x0: _X0 = None,
) -> list[dict[str, Any]]: ...
def sinkhorn_scaling_f64(
    a: npt.NDArray[np.float64],
    b: npt.NDArray[np.float64],
    m: npt.NDArray[np.float64],
    opts: dict[str, Any],
    run: _Run,
    x0: _X0 = None,
) -> list[dict[str, Any]]: ...
def sinkhorn_scaling_f32(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32],
    m: npt.NDArray[np.float32],
    opts: dict[str, Any],
    run: _Run,
    x0: _X0 = None,
) -> list[dict[str, Any]]: ...
def sinkhorn_sns_f64(
    a: npt.NDArray[np.float64],
    b: npt.NDArray[np.float64],
    m: npt.NDArray[np.float64],
    opts: dict[str, Any],
    run: _Run,
    x0: _X0 = None,
) -> list[dict[str, Any]]: ...
def sinkhorn_sns_f32(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32],
    m: npt.NDArray[np.float32],
    opts: dict[str, Any],
    run: _Run,
    x0: _X0 = None,
) -> list[dict[str, Any]]: ...

class SinkhornController:
    """The core's Sinkhorn controller (over-relaxation, ε-schedule, stall test) for the GPU driver."""

    def __init__(
        self,
        reg: float,
        omega: float | None = None,
        stages: list[float] | None = None,
        stage_tol: float = 0.0,
        stage_maxiter: int = ...,
    ) -> None: ...
    @staticmethod
    def eps_schedule(reg: float, eps0: float | None, decay: float, cost_range: float) -> list[float]: ...
    @property
    def omega(self) -> float: ...
    @property
    def stages(self) -> list[float]: ...
    @property
    def stage_maxiter(self) -> int: ...
    @property
    def best(self) -> float: ...
    def begin_stage(self) -> None: ...
    def observe(self, errors: list[float]) -> None: ...
    def back_off(self) -> None: ...
    def stalled(self, nit: int, err: float) -> bool: ...
    def stage_over(self, err: float, stage_it: int) -> bool: ...
    def stall_detail(self, tol: float, dtype: str) -> str: ...

class NewtonController:
    """The core's decisions of the SNS Newton stage (damping, stall test, CG tolerance)."""

    def __init__(self) -> None: ...
    @property
    def mu(self) -> float: ...
    def stalled(self, nit: int, err: float) -> bool: ...
    def stall_detail(self, tol: float, dtype: str) -> str: ...
    @staticmethod
    def cg_rtol(err: float, mass: float) -> float: ...
    def accepted(self, alpha: float, actual: float, pred: float) -> None: ...
    def rejected(self) -> None: ...

class LineSearch:
    """The core's backtracking line search of one Newton step."""

    def __init__(self, reg: float, slope: float, d0: float, scale: float, err: float) -> None: ...
    def steps(self) -> list[float]: ...
    def accepts(self, alpha: float, d1: float, err_trial: float) -> bool: ...

# Grids and unbalanced OT (rust/optcore-py/src/ot_grid.rs): one problem; a, b flat; opts holds
# reg, reg_m = (rho_a, rho_b), tol, maxiter, eps_scaling, omega. One dict (f, g flat; no plan).
def sinkhorn_grid_f64(
    a: npt.NDArray[np.float64],
    b: npt.NDArray[np.float64],
    axes: list[npt.NDArray[np.float64]],
    p: float,
    opts: dict[str, Any],
    run: _Run,
    x0: _X0 = None,
) -> dict[str, Any]: ...
def sinkhorn_grid_f32(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32],
    axes: list[npt.NDArray[np.float64]],
    p: float,
    opts: dict[str, Any],
    run: _Run,
    x0: _X0 = None,
) -> dict[str, Any]: ...
def sinkhorn_unbalanced_f64(
    a: npt.NDArray[np.float64],
    b: npt.NDArray[np.float64],
    m: npt.NDArray[np.float64],
    opts: dict[str, Any],
    run: _Run,
    x0: _X0 = None,
) -> dict[str, Any]: ...
def sinkhorn_unbalanced_f32(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32],
    m: npt.NDArray[np.float32],
    opts: dict[str, Any],
    run: _Run,
    x0: _X0 = None,
) -> dict[str, Any]: ...
def exp_floor_f64(m: npt.NDArray[np.float64], reg: float, reps: int, workers: int | None = None) -> float: ...
def exp_floor_f32(m: npt.NDArray[np.float32], reg: float, reps: int, workers: int | None = None) -> float: ...

# --- barycenters (rust/optcore-py/src/ot_barycenter.rs) ------------------------------------------
# a (k, n) histograms, weights (k,) summing to 1, and either a dense cost m (n, m) or the
# per-axis float64 costs `axes` of a separable grid cost; opts: reg, tol, maxiter. Returns
# barycenter, f (k, n), g (k, m) (float64), marginal_error (k,), nit, status, detail.
def barycenter_f64(
    a: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    m: npt.NDArray[np.float64] | None,
    axes: list[npt.NDArray[np.float64]] | None,
    opts: dict[str, Any],
    run: _Run,
) -> dict[str, Any]: ...
def barycenter_f32(
    a: npt.NDArray[np.float32],
    weights: npt.NDArray[np.float64],
    m: npt.NDArray[np.float32] | None,
    axes: list[npt.NDArray[np.float64]] | None,
    opts: dict[str, Any],
    run: _Run,
) -> dict[str, Any]: ...

# --- fixed points (rust/optcore-py/src/fixed_point.rs) ---------------------------------------

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
    op: _FlatOp,
    x0: npt.NDArray[np.float64],
    method: str,
    param: float,
    tol: float,
    rtol: float,
    maxiter: int,
    restart: float | None = None,
    tol_disp: float = 1e-6,
    min_disp_iter: int = 50,
    progress: _Progress = None,
    check_every: int = 10,
    workers: int | None = None,
) -> dict[str, Any]: ...
def halpern_f32(
    op: _FlatOp,
    x0: npt.NDArray[np.float32],
    method: str,
    param: float,
    tol: float,
    rtol: float,
    maxiter: int,
    restart: float | None = None,
    tol_disp: float = 1e-6,
    min_disp_iter: int = 50,
    progress: _Progress = None,
    check_every: int = 10,
    workers: int | None = None,
) -> dict[str, Any]: ...

# --- finite-sum monotone inclusions (rust/optcore-py/src/monotone.rs) -------------------------

class FiniteSumProblem:
    """A finite-sum monotone problem (native game, native linear operator, or Python callables)."""

    @property
    def dim(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def lipschitz_ms(self) -> float: ...
    @property
    def lipschitz(self) -> float: ...

def fs_game(a: npt.NDArray[np.float64], lipschitz: float) -> FiniteSumProblem: ...
def fs_linear(
    mat: npt.NDArray[np.float64],
    q: npt.NDArray[np.float64],
    lipschitz: float,
    cocoercive: bool,
    saddle: tuple[int, float] | None = None,
) -> FiniteSumProblem: ...
def fs_sample_saddle(
    p: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], int, int],
    q: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], int, int],
    c: npt.NDArray[np.float64],
    alpha: float,
    beta: float,
    lipschitz: float | None = None,
) -> FiniteSumProblem: ...
def fs_python(
    component: Callable[[npt.NDArray[np.int64], npt.NDArray[np.float64]], npt.NDArray[np.float64]],
    full: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
    n: int,
    d: int,
    lipschitz: float,
    lipschitz_ms: float,
    cocoercive: bool,
    project: Any = None,
) -> FiniteSumProblem: ...
def monotone_solve(
    problem: FiniteSumProblem,
    z0: npt.NDArray[np.float64],
    method: str,
    tol: float,
    maxiter: int,
    max_epochs: float,
    step: float | None = None,
    resolvent: float | None = None,
    inner: int | None = None,
    batch: int | None = None,
    cocoercive: bool | None = None,
    seed: int = 0,
    check_every: int = 1,
    restart: float = 0.2,
    progress: _Progress = None,
    workers: int | None = None,
) -> dict[str, Any]: ...

# --- linear programs (rust/optcore-py/src/lp.rs) ----------------------------------------------

def linprog_pdhg(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    data: npt.NDArray[np.float64],
    m: int,
    n: int,
    c: npt.NDArray[np.float64],
    lc: npt.NDArray[np.float64],
    uc: npt.NDArray[np.float64],
    lv: npt.NDArray[np.float64],
    uv: npt.NDArray[np.float64],
    x0: npt.NDArray[np.float64] | None = None,
    y0: npt.NDArray[np.float64] | None = None,
    tol: float = 1e-6,
    maxiter: int = ...,
    time_limit: float = ...,
    check_every: int = 64,
    tol_infeasible: float = 1e-6,
    presolve: bool = True,
    progress: _Progress = None,
    workers: int | None = None,
) -> dict[str, Any]: ...

# --- zeroth-order (rust/optcore-py/src/zo.rs) ------------------------------------------------

# {"progress": _Progress, "check_every": int, "workers": int | None} (zo's run and bilevel's minimize)
_RunControl = dict[str, Any]

class ZoState:
    """The ask/tell state of a zeroth-order run (float64 or float32, from x0's dtype)."""

    def __init__(self, x0: npt.NDArray[np.float64] | npt.NDArray[np.float32], config: dict[str, Any]) -> None: ...
    def ask(self) -> npt.NDArray[Any]: ...
    def tell(self, values: npt.NDArray[np.float64]) -> None: ...
    def tell_ranking(self, top: list[int]) -> None: ...
    def run(
        self,
        objective: Callable[[npt.NDArray[Any]], npt.NDArray[np.float64]] | None,
        native: tuple[str, float] | None,
        limits: tuple[int, int, float],
        run: _RunControl,
        per_point: bool = False,
    ) -> dict[str, Any]: ...
    def run_seeds(
        self,
        coordinator: Callable[[int, int | None], npt.NDArray[np.float64]],
        sync_every: int,
        limits: tuple[int, int, float],
        run: _RunControl,
    ) -> dict[str, Any]: ...
    def point(self, i: int) -> npt.NDArray[Any]: ...
    def advance(self, values: npt.NDArray[np.float64]) -> None: ...
    def state_hash(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def nit(self) -> int: ...
    @property
    def nfev(self) -> int: ...
    @property
    def lr(self) -> float: ...
    @property
    def failures(self) -> int: ...
    @property
    def converged(self) -> bool: ...
    @property
    def x(self) -> npt.NDArray[Any]: ...
    @property
    def best(self) -> tuple[npt.NDArray[Any], float]: ...
    @property
    def gradient(self) -> npt.NDArray[np.float64]: ...
    @property
    def history(self) -> npt.NDArray[np.float64]: ...
    @property
    def particles(self) -> npt.NDArray[Any]: ...

def zo_function_f64(
    name: str, cond: float, x: npt.NDArray[np.float64], workers: int | None = None
) -> npt.NDArray[np.float64]: ...
def zo_function_f32(
    name: str, cond: float, x: npt.NDArray[np.float32], workers: int | None = None
) -> npt.NDArray[np.float64]: ...

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

# {"dx": int, "dy": int, and the flat float64 "a_mat", "b_mat", "a_vec", "c_mat", "q_mat", "r_mat", "p_mat",
#  "p_vec", "q_vec"}
def bilevel_quadratic(spec: dict[str, Any]) -> NativeBilevel: ...
def bilevel_ridge_f64(x_tr: _Design, t_tr: _F64, x_val: _Design, t_val: _F64, per_feature: bool) -> NativeBilevel: ...
def bilevel_ridge_f32(x_tr: _Design, t_tr: _F32, x_val: _Design, t_val: _F32, per_feature: bool) -> NativeBilevel: ...
def bilevel_logistic_f64(
    x_tr: _Design, l_tr: list[int], x_val: _Design, l_val: list[int], classes: int, reg: float
) -> NativeBilevel: ...
def bilevel_logistic_f32(
    x_tr: _Design, l_tr: list[int], x_val: _Design, l_val: list[int], classes: int, reg: float
) -> NativeBilevel: ...
def bilevel_minimize_f64(
    problem: _BilevelProblem, x0: _F64, y0: _F64, method: str, options: dict[str, Any], run: _RunControl
) -> dict[str, Any]: ...
def bilevel_minimize_f32(
    problem: _BilevelProblem, x0: _F32, y0: _F32, method: str, options: dict[str, Any], run: _RunControl
) -> dict[str, Any]: ...

# spec: {"method": "exact" | "cg" | "neumann", "tol": float, "maxiter": int, "terms": int, "eta": float}
def bilevel_hypergradient_f64(
    problem: _BilevelProblem, x: _F64, y: _F64, spec: dict[str, Any], workers: int | None = None
) -> dict[str, Any]: ...

# spec: {"method": "exact" | "cg" | "neumann", "tol": float, "maxiter": int, "terms": int, "eta": float}
def bilevel_hypergradient_f32(
    problem: _BilevelProblem, x: _F32, y: _F32, spec: dict[str, Any], workers: int | None = None
) -> dict[str, Any]: ...
def bilevel_eval_f64(problem: _BilevelProblem, x: _F64, y: _F64, v: _F64 | None = None) -> dict[str, Any]: ...
def bilevel_eval_f32(problem: _BilevelProblem, x: _F32, y: _F32, v: _F32 | None = None) -> dict[str, Any]: ...

# --- bilevel, constrained lower levels (LV-HBA) ------------------------------------------------

class NativeConstrained:
    """A native bilevel problem with a constrained lower level."""

    @property
    def dims(self) -> tuple[int, int, int, int]: ...

# (d_x, d_y, m, m_eq, grad_f, grad_g, h, jac_t, value_f | None): see bilevel/_lvhba.py
_ConstrainedSpec = tuple[Any, ...]

def bilevel_llc_toy(n: int, a: float) -> NativeConstrained: ...
def bilevel_svm_f64(z_tr: _F64, t_tr: list[float], z_val: _F64, t_val: list[float], p: int) -> NativeConstrained: ...
def bilevel_svm_f32(z_tr: _F32, t_tr: list[float], z_val: _F32, t_val: list[float], p: int) -> NativeConstrained: ...
def bilevel_lvhba_f64(
    problem: NativeConstrained | _ConstrainedSpec, x0: _F64, y0: _F64, options: dict[str, Any], run: _RunControl
) -> dict[str, Any]: ...
def bilevel_lvhba_f32(
    problem: NativeConstrained | _ConstrainedSpec, x0: _F32, y0: _F32, options: dict[str, Any], run: _RunControl
) -> dict[str, Any]: ...
