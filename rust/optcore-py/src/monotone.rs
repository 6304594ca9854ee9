//! Bindings of `optcore_core::monotone`: finite-sum problems as one opaque class
//! ([`FiniteSumProblem`]: a native matrix game or linear operator, or Python callables) and
//! the solver. Inputs are C-contiguous float64 arrays (the Python layer validates them).

use crate::bridge::{copy_array_into, core_err, run_detached, Pending, PyObserver, ResultDict};
use crate::fixed_point::NativeOperator;
use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use optcore_core::monotone::{
    csr_from_parts, solve, FiniteSum, GameSum, LinearSum, Method, Options, SaddleData, SampleSaddle,
};
use optcore_core::operators::SharedOp;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Arc;

/// A finite-sum monotone problem (see `optcore.monotone`).
#[pyclass(frozen, module = "optcore._core")]
pub struct FiniteSumProblem {
    inner: Arc<dyn FiniteSum>,
    py: Option<Arc<PyFiniteSum>>,
}

#[pymethods]
impl FiniteSumProblem {
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    #[getter]
    fn n(&self) -> usize {
        self.inner.n()
    }
    #[getter]
    fn lipschitz_ms(&self) -> f64 {
        self.inner.lipschitz_ms()
    }
    #[getter]
    fn lipschitz(&self) -> f64 {
        self.inner.lipschitz()
    }
}

#[pyfunction]
fn fs_game(a: PyReadonlyArray2<'_, f64>, lipschitz: f64) -> PyResult<FiniteSumProblem> {
    let (m, n) = (a.shape()[0], a.shape()[1]);
    let g = GameSum::new(a.as_slice()?, m, n, lipschitz).map_err(core_err)?;
    Ok(FiniteSumProblem { inner: Arc::new(g), py: None })
}

/// `saddle = (nx, ‖A‖₂)`: `M = [[H, −Aᵀ], [A, 0]]` with `x` the first `nx` coordinates.
#[pyfunction]
#[pyo3(signature = (mat, q, lipschitz, cocoercive, saddle=None))]
fn fs_linear(
    mat: PyReadonlyArray2<'_, f64>,
    q: PyReadonlyArray1<'_, f64>,
    lipschitz: f64,
    cocoercive: bool,
    saddle: Option<(usize, f64)>,
) -> PyResult<FiniteSumProblem> {
    let mut l = LinearSum::new(mat.as_slice()?, q.as_slice()?, lipschitz, cocoercive).map_err(core_err)?;
    if let Some((nx, norm_a)) = saddle {
        l = l.with_saddle(nx, norm_a).map_err(core_err)?;
    }
    Ok(FiniteSumProblem { inner: Arc::new(l), py: None })
}

/// A CSR matrix `(indptr, indices, data)` (int64, int64, float64) with its shape.
type CsrParts<'py> = (PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, f64>, usize, usize);

/// `p`, `q`: the CSR parts of `P` (`N x nx`) and `Q` (`N x ny`); `c`: the targets; `lipschitz`:
/// `‖M‖₂` if known (else estimated in the core by power iteration, with the GIL released).
#[pyfunction]
#[pyo3(signature = (p, q, c, alpha, beta, lipschitz=None))]
fn fs_sample_saddle(
    py: Python<'_>,
    p: CsrParts<'_>,
    q: CsrParts<'_>,
    c: PyReadonlyArray1<'_, f64>,
    alpha: f64,
    beta: f64,
    lipschitz: Option<f64>,
) -> PyResult<FiniteSumProblem> {
    let build = |parts: &CsrParts<'_>, what: &str| {
        csr_from_parts(parts.3, parts.4, parts.0.as_slice()?, parts.1.as_slice()?, parts.2.as_slice()?, what)
            .map_err(core_err)
    };
    let (pm, qm) = (build(&p, "P")?, build(&q, "Q")?);
    let c = c.as_slice()?;
    let s =
        py.detach(|| SampleSaddle::new(SaddleData { p: pm, q: qm, c, alpha, beta, lipschitz })).map_err(core_err)?;
    Ok(FiniteSumProblem { inner: Arc::new(s), py: None })
}

/// Python callables: `component(i, z)` returns `F_i(z)` for an int64 index array `i` as an
/// `(len(i), d)` float64 array; `full(z)` returns `F(z)`; `project(z)` returns `P_C(z)` (or a
/// `NativeOperator`; None: unconstrained). The Python layer wraps them with shape checks.
struct PyFiniteSum {
    component: Py<PyAny>,
    full: Py<PyAny>,
    project: Option<Py<PyAny>>,
    native_project: Option<SharedOp<f64>>,
    n: usize,
    d: usize,
    lip: f64,
    lip_ms: f64,
    cocoercive: bool,
    pending: Pending,
}

impl PyFiniteSum {
    fn call_vec(&self, f: &Py<PyAny>, arg: &[f64], out: &mut [f64], what: &str) -> optcore_core::error::Result<()> {
        self.pending.call(what, |py| -> PyResult<()> {
            let r = f.bind(py).call1((PyArray1::from_slice(py, arg),))?;
            copy_array_into(&r, out, what)
        })
    }
}

impl FiniteSum for PyFiniteSum {
    fn dim(&self) -> usize {
        self.d
    }
    fn n(&self) -> usize {
        self.n
    }
    fn add_component(&self, i: usize, z: &[f64], s: f64, out: &mut [f64]) -> optcore_core::error::Result<()> {
        let mut row = vec![0.0; self.d];
        self.pending.call("F", |py| -> PyResult<()> {
            let idx = PyArray1::from_slice(py, &[i as i64]);
            let r = self.component.bind(py).call1((idx, PyArray1::from_slice(py, z)))?;
            copy_array_into(&r, &mut row, "F")
        })?;
        for (o, r) in out.iter_mut().zip(&row) {
            *o += s * r;
        }
        Ok(())
    }
    fn full(&self, z: &[f64], out: &mut [f64]) -> optcore_core::error::Result<()> {
        self.call_vec(&self.full, z, out, "full operator")
    }
    fn project(&self, z: &mut [f64]) -> optcore_core::error::Result<()> {
        if let Some(op) = &self.native_project {
            let x = z.to_vec();
            return op.apply(&x, z);
        }
        if let Some(f) = &self.project {
            let x = z.to_vec();
            return self.call_vec(f, &x, z, "projection");
        }
        Ok(())
    }
    fn lipschitz(&self) -> f64 {
        self.lip
    }
    fn lipschitz_ms(&self) -> f64 {
        self.lip_ms
    }
    fn cocoercive(&self) -> bool {
        self.cocoercive
    }
}

#[pyfunction]
#[pyo3(signature = (component, full, n, d, lipschitz, lipschitz_ms, cocoercive, project=None))]
#[allow(clippy::too_many_arguments)] // a pyfunction's parameters are its Python keywords
fn fs_python(
    component: Py<PyAny>,
    full: Py<PyAny>,
    n: usize,
    d: usize,
    lipschitz: f64,
    lipschitz_ms: f64,
    cocoercive: bool,
    project: Option<Bound<'_, PyAny>>,
) -> PyResult<FiniteSumProblem> {
    let (mut py_proj, mut native) = (None, None);
    if let Some(p) = project {
        if let Ok(op) = p.cast::<NativeOperator>() {
            native = Some(op.get().op64.clone());
        } else {
            py_proj = Some(p.unbind());
        }
    }
    let inner = Arc::new(PyFiniteSum {
        component,
        full,
        project: py_proj,
        native_project: native,
        n,
        d,
        lip: lipschitz,
        lip_ms: lipschitz_ms,
        cocoercive,
        pending: Pending::default(),
    });
    Ok(FiniteSumProblem { inner: inner.clone(), py: Some(inner) })
}

/// Runs `method` ("eg", "eag", "halpern", "vr_halpern") on `problem` from `z0`. Returns a
/// dict; see `optcore.monotone.solve`.
#[pyfunction]
#[pyo3(signature = (problem, z0, method, tol, maxiter, max_epochs, step=None, resolvent=None, inner=None, batch=None, cocoercive=None, seed=0, check_every=1, restart=0.2, progress=None, workers=None))]
#[allow(clippy::too_many_arguments)] // a pyfunction's parameters are its Python keywords
fn monotone_solve<'py>(
    py: Python<'py>,
    problem: &Bound<'py, FiniteSumProblem>,
    z0: PyReadonlyArray1<'py, f64>,
    method: &str,
    tol: f64,
    maxiter: usize,
    max_epochs: f64,
    step: Option<f64>,
    resolvent: Option<f64>,
    inner: Option<usize>,
    batch: Option<usize>,
    cocoercive: Option<bool>,
    seed: u64,
    check_every: usize,
    restart: f64,
    progress: Option<Py<PyAny>>,
    workers: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let method = match method {
        "eg" => Method::Eg,
        "eag" => Method::Eag,
        "halpern" => Method::Halpern,
        "vr_halpern" => Method::VrHalpern,
        other => return Err(PyValueError::new_err(format!("unknown method {other:?}"))),
    };
    let mut opts = Options::new(method);
    opts.tol = tol;
    opts.maxiter = maxiter;
    opts.max_epochs = max_epochs;
    opts.step = step;
    opts.resolvent = resolvent;
    opts.inner = inner;
    opts.batch = batch;
    opts.cocoercive = cocoercive;
    opts.seed = seed;
    opts.check_every = check_every;
    opts.restart = restart;
    let prob = problem.get();
    let p = prob.inner.clone();
    let z0 = z0.as_slice()?.to_vec();
    // The core polls the observer every iteration; its cadence calls back at the checks.
    let mut obs = PyObserver::new(progress, check_every);
    let out = run_detached(py, workers, || solve(p.as_ref(), &z0, &opts, &mut obs))?;
    if let Some(pf) = &prob.py {
        pf.pending.raise()?;
    }
    obs.raise_pending()?;
    let out = out.map_err(core_err)?;
    let dim = out.z.len();
    Ok(ResultDict::new(py, &out.termination)?
        .array("z", out.z, &[dim])?
        .set("residual", out.residual)?
        .set("nit", out.nit)?
        .set("nfev", out.nfev)?
        .set("n_residual", out.n_residual)?
        .set("restarts", out.restarts)?
        .set("history", out.history)?
        .set("variant", out.variant)?
        .into_dict())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FiniteSumProblem>()?;
    m.add_function(wrap_pyfunction!(fs_game, m)?)?;
    m.add_function(wrap_pyfunction!(fs_linear, m)?)?;
    m.add_function(wrap_pyfunction!(fs_sample_saddle, m)?)?;
    m.add_function(wrap_pyfunction!(fs_python, m)?)?;
    m.add_function(wrap_pyfunction!(monotone_solve, m)?)?;
    Ok(())
}
