//! Binding of `optcore_core::lp`: the constraint matrix as CSR arrays, bounds as
//! float64 vectors (±inf for free sides); the Python layer (`optcore.linprog`) builds them from
//! SciPy's arguments and maps the result back to SciPy's fields.

use crate::bridge::{core_err, run_detached, PyObserver, ResultDict};
use numpy::{PyReadonlyArray1, PyUntypedArrayMethods};
use optcore_core::lp::{solve, Csr, Lp, Options};
use pyo3::prelude::*;
use pyo3::types::PyDict;

#[pyfunction]
#[pyo3(signature = (indptr, indices, data, m, n, c, lc, uc, lv, uv, x0=None, y0=None, tol=1e-6, maxiter=usize::MAX, time_limit=f64::INFINITY, check_every=64, tol_infeasible=1e-6, presolve=true, progress=None, workers=None))]
#[allow(clippy::too_many_arguments)] // a pyfunction's parameters are its Python keywords
fn linprog_pdhg<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, f64>,
    m: usize,
    n: usize,
    c: PyReadonlyArray1<'py, f64>,
    lc: PyReadonlyArray1<'py, f64>,
    uc: PyReadonlyArray1<'py, f64>,
    lv: PyReadonlyArray1<'py, f64>,
    uv: PyReadonlyArray1<'py, f64>,
    x0: Option<PyReadonlyArray1<'py, f64>>,
    y0: Option<PyReadonlyArray1<'py, f64>>,
    tol: f64,
    maxiter: usize,
    time_limit: f64,
    check_every: usize,
    tol_infeasible: f64,
    presolve: bool,
    progress: Option<Py<PyAny>>,
    workers: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let to_usize = |v: &[i64]| -> Vec<usize> { v.iter().map(|&x| x.max(0) as usize).collect() };
    let a = Csr::new(m, n, to_usize(indptr.as_slice()?), to_usize(indices.as_slice()?), data.as_slice()?.to_vec())
        .map_err(core_err)?;
    let lp = Lp {
        a,
        c: c.as_slice()?.to_vec(),
        lc: lc.as_slice()?.to_vec(),
        uc: uc.as_slice()?.to_vec(),
        lv: lv.as_slice()?.to_vec(),
        uv: uv.as_slice()?.to_vec(),
    };
    let x0 = x0.map(|v| v.as_slice().map(|s| s.to_vec())).transpose()?;
    let y0 = y0.map(|v| v.as_slice().map(|s| s.to_vec())).transpose()?;
    let _ = (indptr.len(), indices.len());
    let opts = Options {
        tol,
        maxiter,
        time_limit,
        check_every: check_every.max(1),
        tol_infeasible,
        propagation_rounds: if presolve { Options::default().propagation_rounds } else { 0 },
    };
    let mut obs = PyObserver::new(progress, 1);
    let out =
        run_detached(py, workers, || solve(&lp, x0.as_deref(), y0.as_deref(), &opts, &mut obs))?.map_err(core_err)?;
    obs.raise_pending()?;
    Ok(ResultDict::new(py, &out.termination)?
        .array("x", out.x, &[n])?
        .array("y", out.y, &[m])?
        .array("reduced", out.reduced, &[n])?
        .set("nit", out.nit)?
        .set("reason", out.reason)?
        .set("rel_primal", out.rel_primal)?
        .set("rel_dual", out.rel_dual)?
        .set("rel_gap", out.rel_gap)?
        .set("primal_obj", out.primal_obj)?
        .set("dual_obj", out.dual_obj)?
        .set("restarts", out.restarts)?
        .into_dict())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(linprog_pdhg, m)?)?;
    Ok(())
}
