//! Bindings of `optcore_core::ot::barycenter` (and its Gibbs kernels): conversion and dispatch
//! only. Kept apart from `ot.rs` so that each file stays short.

use crate::bridge::{core_err, run_detached, PyObserver, ResultDict, RunControl};
use numpy::{Element, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use optcore_core::ot::{barycenter, BarycenterOptions, DenseKernel, SeparableKernel};
use optcore_core::Real;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Options of the barycenter (the `opts` dict the Python layer builds).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct BaryArgs {
    reg: f64,
    tol: f64,
    maxiter: usize,
}

/// The barycenter of the histograms `a` (k, n) with `weights` (k,), for a dense cost `m`
/// (n, m) or a separable one given by its 1-D costs per axis `axes` (float64, (n_a, m_a)).
fn bary<'py, T: Real + Element>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, T>,
    weights: PyReadonlyArray1<'py, f64>,
    m: Option<PyReadonlyArray2<'py, T>>,
    axes: Option<Vec<PyReadonlyArray2<'py, f64>>>,
    opts: BaryArgs,
    run: RunControl,
) -> PyResult<Bound<'py, PyDict>> {
    let (k, n) = (a.shape()[0], a.shape()[1]);
    let (a, w) = (a.as_slice()?, weights.as_slice()?);
    let core = BarycenterOptions { reg: opts.reg, tol: opts.tol, maxiter: opts.maxiter };
    let mut obs = PyObserver::new(run.progress, run.check_every);
    let out = match (&m, &axes) {
        (Some(cost), None) => {
            let (rows, cols) = (cost.shape()[0], cost.shape()[1]);
            if rows != n {
                return Err(PyValueError::new_err("M must have one row per histogram entry"));
            }
            let cost = cost.as_slice()?;
            run_detached(py, run.workers, || {
                let kern = DenseKernel::new(cost, rows, cols, opts.reg)?;
                barycenter(&kern, a, w, &core, &mut obs)
            })?
        }
        (None, Some(axes)) => {
            let shapes: Vec<(usize, usize)> = axes.iter().map(|c| (c.shape()[0], c.shape()[1])).collect();
            let costs: Vec<&[f64]> = axes.iter().map(|c| c.as_slice()).collect::<Result<_, _>>()?;
            run_detached(py, run.workers, || {
                let kern = SeparableKernel::new(&costs, &shapes, opts.reg)?;
                barycenter(&kern, a, w, &core, &mut obs)
            })?
        }
        _ => return Err(PyValueError::new_err("give either a dense cost or the per-axis costs")),
    };
    obs.raise_pending()?;
    let out = out.map_err(core_err)?;
    let mm = out.barycenter.len();
    Ok(ResultDict::new(py, &out.termination)?
        .array("barycenter", out.barycenter, &[mm])?
        .array("f", out.f, &[k, n])?
        .array("g", out.g, &[k, mm])?
        .array("marginal_error", out.marginal_error, &[k])?
        .set("nit", out.nit)?
        .into_dict())
}

/// `barycenter_<dtype>(a, weights, m, axes, opts, run) -> dict`.
macro_rules! bary_fns {
    ($($name:ident, $t:ty;)*) => {$(
        #[pyfunction]
        #[pyo3(signature = (a, weights, m, axes, opts, run))]
        fn $name<'py>(
            py: Python<'py>,
            a: PyReadonlyArray2<'py, $t>,
            weights: PyReadonlyArray1<'py, f64>,
            m: Option<PyReadonlyArray2<'py, $t>>,
            axes: Option<Vec<PyReadonlyArray2<'py, f64>>>,
            opts: BaryArgs,
            run: RunControl,
        ) -> PyResult<Bound<'py, PyDict>> {
            bary(py, a, weights, m, axes, opts, run)
        }
    )*};
}

bary_fns! {
    barycenter_f64, f64;
    barycenter_f32, f32;
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(barycenter_f64, m)?)?;
    m.add_function(wrap_pyfunction!(barycenter_f32, m)?)?;
    Ok(())
}
