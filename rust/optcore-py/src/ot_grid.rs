//! Bindings of `optcore_core::ot::{grid, unbalanced}`: Sinkhorn on grids and unbalanced
//! Sinkhorn on dense costs, both through the core's log-domain loop `sinkhorn_lse`.
//! Conversion and dispatch only; inputs are C-contiguous arrays of the exact dtype.

use crate::bridge::{core_err, run_detached, PyObserver, ResultDict, RunControl};
use crate::ot::overrelax_of;
use numpy::{Element, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use optcore_core::ot::{sinkhorn_lse, DenseOperator, EpsScaling, Grid, GridOperator, LogKernel, LseOptions, LseOutput};
use optcore_core::Real;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Options of the log-domain loop (the `opts` dict): `reg_m = (rho_a, rho_b)` (inf: balanced
/// marginal), `eps_scaling` and `omega` as for the dense log-domain solver.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct LseArgs {
    reg: f64,
    reg_m: (f64, f64),
    tol: f64,
    maxiter: usize,
    #[pyo3(default)]
    eps_scaling: Option<(Option<f64>, f64, f64, usize)>,
    #[pyo3(default)]
    omega: Option<f64>,
    /// Dense costs: return the plan written by the final measurement (`"plan"`, n x m).
    #[pyo3(default)]
    plan: bool,
}

impl LseArgs {
    fn core(&self) -> LseOptions {
        LseOptions {
            reg: self.reg,
            reg_m: self.reg_m,
            tol: self.tol,
            maxiter: self.maxiter,
            eps_scaling: self.eps_scaling.map(|(eps0, decay, stage_tol, stage_maxiter)| EpsScaling {
                eps0,
                decay,
                stage_tol,
                stage_maxiter,
            }),
            overrelax: overrelax_of(self.omega),
        }
    }
}

type Warm<'py, T> = Option<(PyReadonlyArray1<'py, T>, PyReadonlyArray1<'py, T>)>;

/// Runs the loop on `op` with the GIL released; one dict (f, g flat; no plan).
fn solve<'py, T: Real + Element, K: LogKernel<T>>(
    py: Python<'py>,
    op: &mut K,
    (a, b): (PyReadonlyArray1<'py, T>, PyReadonlyArray1<'py, T>),
    opts: LseArgs,
    run: RunControl,
    x0: Warm<'py, T>,
) -> PyResult<Bound<'py, PyDict>> {
    let (a, b) = (a.as_slice()?, b.as_slice()?);
    let core = opts.core();
    let warm = match &x0 {
        Some((f, g)) => Some((f.as_slice()?, g.as_slice()?)),
        None => None,
    };
    let mut obs = PyObserver::new(run.progress, run.check_every);
    let out = run_detached(py, run.workers, || sinkhorn_lse(op, a, b, &core, warm, &mut obs))?;
    obs.raise_pending()?;
    let out: LseOutput<T> = out.map_err(core_err)?;
    let (n, m) = (out.f.len(), out.g.len());
    Ok(ResultDict::new(py, &out.termination)?
        .array("f", out.f, &[n])?
        .array("g", out.g, &[m])?
        .set("nit", out.nit)?
        .set("marginal_error", out.marginal_error)?
        .set("cost", out.cost)?
        .set("fun", out.fun)?
        .set("mass", out.mass)?
        .set("stages", out.stages)?
        .into_dict())
}

/// Sinkhorn on the grid of `axes` (float64 coordinates) with cost exponent `p`; `a`, `b` flat
/// in C order.
#[allow(clippy::too_many_arguments)] // the arrays and option dicts of one call, as is
fn grid<'py, T: Real + Element>(
    py: Python<'py>,
    a: PyReadonlyArray1<'py, T>,
    b: PyReadonlyArray1<'py, T>,
    axes: Vec<PyReadonlyArray1<'py, f64>>,
    p: f64,
    opts: LseArgs,
    run: RunControl,
    x0: Warm<'py, T>,
) -> PyResult<Bound<'py, PyDict>> {
    let axes = axes.iter().map(|ax| ax.as_slice().map(<[f64]>::to_vec)).collect::<Result<Vec<_>, _>>()?;
    let grid = Grid::new(axes, p).map_err(core_err)?;
    let mut op = GridOperator::<T>::new(&grid).map_err(core_err)?;
    solve(py, &mut op, (a, b), opts, run, x0)
}

/// Unbalanced (or balanced) log-domain Sinkhorn on a dense cost `m` (n, m); with `plan` in
/// `opts`, the returned plan is the one the core's final measurement wrote and measured.
fn dense<'py, T: Real + Element>(
    py: Python<'py>,
    a: PyReadonlyArray1<'py, T>,
    b: PyReadonlyArray1<'py, T>,
    m: PyReadonlyArray2<'py, T>,
    opts: LseArgs,
    run: RunControl,
    x0: Warm<'py, T>,
) -> PyResult<Bound<'py, PyDict>> {
    let (rows, cols) = (m.shape()[0], m.shape()[1]);
    let mut op = DenseOperator::new(m.as_slice()?, rows, cols).map_err(core_err)?;
    if opts.plan {
        op.keep_plan().map_err(core_err)?;
    }
    let out = solve(py, &mut op, (a, b), opts, run, x0)?;
    match op.take_plan() {
        Some(plan) => Ok(ResultDict(out).array("plan", plan, &[rows, cols])?.into_dict()),
        None => Ok(out),
    }
}

macro_rules! lse_fns {
    ($($gname:ident, $dname:ident => $t:ty;)*) => {$(
        #[pyfunction]
        #[pyo3(signature = (a, b, axes, p, opts, run, x0=None))]
        #[allow(clippy::too_many_arguments)]
        fn $gname<'py>(
            py: Python<'py>,
            a: PyReadonlyArray1<'py, $t>,
            b: PyReadonlyArray1<'py, $t>,
            axes: Vec<PyReadonlyArray1<'py, f64>>,
            p: f64,
            opts: LseArgs,
            run: RunControl,
            x0: Warm<'py, $t>,
        ) -> PyResult<Bound<'py, PyDict>> {
            grid(py, a, b, axes, p, opts, run, x0)
        }

        #[pyfunction]
        #[pyo3(signature = (a, b, m, opts, run, x0=None))]
        fn $dname<'py>(
            py: Python<'py>,
            a: PyReadonlyArray1<'py, $t>,
            b: PyReadonlyArray1<'py, $t>,
            m: PyReadonlyArray2<'py, $t>,
            opts: LseArgs,
            run: RunControl,
            x0: Warm<'py, $t>,
        ) -> PyResult<Bound<'py, PyDict>> {
            dense(py, a, b, m, opts, run, x0)
        }
    )*};
}

lse_fns! {
    sinkhorn_grid_f64, sinkhorn_unbalanced_f64 => f64;
    sinkhorn_grid_f32, sinkhorn_unbalanced_f32 => f32;
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sinkhorn_grid_f64, m)?)?;
    m.add_function(wrap_pyfunction!(sinkhorn_grid_f32, m)?)?;
    m.add_function(wrap_pyfunction!(sinkhorn_unbalanced_f64, m)?)?;
    m.add_function(wrap_pyfunction!(sinkhorn_unbalanced_f32, m)?)?;
    Ok(())
}
