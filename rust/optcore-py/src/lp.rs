//! Binding of `optcore_core::lp`: the constraint matrix as CSR arrays, bounds as
//! float64 vectors (±inf for free sides); the Python layer (`optcore.linprog`) builds them from
//! SciPy's arguments and maps the result back to SciPy's fields.

use crate::bridge::{core_err, run_detached, PyObserver, ResultDict};
use numpy::{PyReadonlyArray1, PyUntypedArrayMethods};
use optcore_core::alloc::try_with_capacity;
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
    // Copies of the input, allocated fallibly (a copy that does not fit is a MemoryError).
    let to_usize = |v: &[i64], what: &str| -> PyResult<Vec<usize>> {
        let mut out = try_with_capacity(v.len(), what).map_err(core_err)?;
        out.extend(v.iter().map(|&x| x.max(0) as usize));
        Ok(out)
    };
    let copy = |v: &[f64], what: &str| -> PyResult<Vec<f64>> {
        let mut out = try_with_capacity(v.len(), what).map_err(core_err)?;
        out.extend_from_slice(v);
        Ok(out)
    };
    let a = Csr::new(
        m,
        n,
        to_usize(indptr.as_slice()?, "linprog: row pointers")?,
        to_usize(indices.as_slice()?, "linprog: column indices")?,
        copy(data.as_slice()?, "linprog: matrix values")?,
    )
    .map_err(core_err)?;
    let lp = Lp {
        a,
        c: copy(c.as_slice()?, "linprog: c")?,
        lc: copy(lc.as_slice()?, "linprog: row bounds")?,
        uc: copy(uc.as_slice()?, "linprog: row bounds")?,
        lv: copy(lv.as_slice()?, "linprog: bounds")?,
        uv: copy(uv.as_slice()?, "linprog: bounds")?,
    };
    let x0 = x0.map(|v| copy(v.as_slice()?, "linprog: x0")).transpose()?;
    let y0 = y0.map(|v| copy(v.as_slice()?, "linprog: y0")).transpose()?;
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
    let out = run_detached(py, workers, || solve(&lp, x0.as_deref(), y0.as_deref(), &opts, &mut obs))?;
    obs.raise_pending()?;
    let out = out.map_err(core_err)?;
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
