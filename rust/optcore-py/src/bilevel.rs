//! Bindings of `optcore_core::bilevel`: native problems as one opaque class
//! ([`NativeBilevel`]), the Python oracle adaptor ([`PyOracle`], which takes the GIL only for
//! each call of the user's functions), and per-dtype entry points for `minimize`,
//! `hypergradient` and oracle evaluation. The Python layer validates everything first and
//! wraps the user's functions so that they take and return flat arrays of the exact dtype.

use crate::bridge::{
    copy_array_into, core_err, run_detached, to_array, OptionsDict, Pending, PyObserver, ResultDict, RunControl,
};
use crate::fixed_point::NativeOperator;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use optcore_core::bilevel::{
    self, Batch, HgMethod, LinSolve, Logistic, LowerSolve, Method, Options, Oracle, Outer, Probe, Quadratic, Ridge,
    PHASE_NAMES,
};
use optcore_core::linalg::Design;
use optcore_core::Real;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::sync::Arc;

/// A native bilevel problem (see `optcore.bilevel.problems`), in float64 and/or float32.
#[pyclass(frozen, module = "optcore._core")]
pub struct NativeBilevel {
    p64: Option<Arc<dyn Oracle<f64>>>,
    p32: Option<Arc<dyn Oracle<f32>>>,
    dims: (usize, usize),
    n_samples: (usize, usize),
}

impl NativeBilevel {
    fn of_f64(p: Arc<dyn Oracle<f64>>) -> Self {
        NativeBilevel { dims: p.dims(), n_samples: p.n_samples(), p64: Some(p), p32: None }
    }
    fn of_f32(p: Arc<dyn Oracle<f32>>) -> Self {
        NativeBilevel { dims: p.dims(), n_samples: p.n_samples(), p64: None, p32: Some(p) }
    }
}

#[pymethods]
impl NativeBilevel {
    /// `(d_x, d_y)`.
    #[getter]
    fn dims(&self) -> (usize, usize) {
        self.dims
    }
    /// `(n_f, n_g)`: numbers of samples minibatches index into (0: not a finite sum).
    #[getter]
    fn n_samples(&self) -> (usize, usize) {
        self.n_samples
    }
}

fn vec_of<T: numpy::Element + Copy>(a: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<T>> {
    let a = a
        .cast::<PyArray1<T>>()
        .map_err(|_| PyTypeError::new_err(format!("{what}: expected a 1-D array of {}", std::any::type_name::<T>())))?;
    Ok(a.readonly().as_slice()?.to_vec())
}

/// `("dense", data (flat), n, p)` or `("csr", indptr, indices, data, n, p)` (int64 indices).
fn design<T: Real + numpy::Element>(spec: &Bound<'_, PyTuple>) -> PyResult<Design<T>> {
    let kind: String = spec.get_item(0)?.extract()?;
    let r = match kind.as_str() {
        "dense" => {
            Design::dense(vec_of(&spec.get_item(1)?, "X")?, spec.get_item(2)?.extract()?, spec.get_item(3)?.extract()?)
        }
        "csr" => {
            let ip: Vec<i64> = vec_of(&spec.get_item(1)?, "indptr")?;
            let ix: Vec<i64> = vec_of(&spec.get_item(2)?, "indices")?;
            if ip.iter().chain(&ix).any(|&v| v < 0) {
                return Err(PyValueError::new_err("CSR indices must be non-negative"));
            }
            Design::csr(
                ip.iter().map(|&v| v as usize).collect(),
                ix.iter().map(|&v| v as usize).collect(),
                vec_of(&spec.get_item(3)?, "data")?,
                spec.get_item(4)?.extract()?,
                spec.get_item(5)?.extract()?,
            )
        }
        other => return Err(PyValueError::new_err(format!("unknown matrix kind {other:?}"))),
    };
    r.map_err(core_err)
}

/// The quadratic problem's dimensions and flat float64 matrices, a dict from
/// `optcore.bilevel.problems.Quadratic` (see `optcore_core::bilevel::Quadratic`).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct QuadraticSpec<'py> {
    dx: usize,
    dy: usize,
    a_mat: PyReadonlyArray1<'py, f64>,
    b_mat: PyReadonlyArray1<'py, f64>,
    a_vec: PyReadonlyArray1<'py, f64>,
    c_mat: PyReadonlyArray1<'py, f64>,
    q_mat: PyReadonlyArray1<'py, f64>,
    r_mat: PyReadonlyArray1<'py, f64>,
    p_mat: PyReadonlyArray1<'py, f64>,
    p_vec: PyReadonlyArray1<'py, f64>,
    q_vec: PyReadonlyArray1<'py, f64>,
}

/// The quadratic problem (float64 matrices; serves both dtypes).
#[pyfunction]
fn bilevel_quadratic(spec: QuadraticSpec<'_>) -> PyResult<NativeBilevel> {
    let v = |a: &PyReadonlyArray1<'_, f64>| -> PyResult<Vec<f64>> { Ok(a.as_slice()?.to_vec()) };
    let q = Quadratic {
        dx: spec.dx,
        dy: spec.dy,
        a_mat: v(&spec.a_mat)?,
        b_mat: v(&spec.b_mat)?,
        a_vec: v(&spec.a_vec)?,
        c_mat: v(&spec.c_mat)?,
        q_mat: v(&spec.q_mat)?,
        r_mat: v(&spec.r_mat)?,
        p_mat: v(&spec.p_mat)?,
        p_vec: v(&spec.p_vec)?,
        q_vec: v(&spec.q_vec)?,
    };
    q.validate().map_err(core_err)?;
    let q = Arc::new(q);
    let (dims, n_samples) = (Oracle::<f64>::dims(&*q), Oracle::<f64>::n_samples(&*q));
    Ok(NativeBilevel { p64: Some(q.clone()), p32: Some(q), dims, n_samples })
}

macro_rules! native_ctor {
    ($ridge:ident, $logistic:ident, $t:ty, $of:ident) => {
        /// Ridge hyperparameter problem on data of this dtype.
        #[pyfunction]
        fn $ridge(
            x_tr: Bound<'_, PyTuple>,
            t_tr: Bound<'_, PyAny>,
            x_val: Bound<'_, PyTuple>,
            t_val: Bound<'_, PyAny>,
            per_feature: bool,
        ) -> PyResult<NativeBilevel> {
            let p = Ridge::<$t>::new(
                design(&x_tr)?,
                vec_of(&t_tr, "y_tr")?,
                design(&x_val)?,
                vec_of(&t_val, "y_val")?,
                per_feature,
            )
            .map_err(core_err)?;
            Ok(NativeBilevel::$of(Arc::new(p)))
        }

        /// Logistic hyper-cleaning problem on data of this dtype.
        #[pyfunction]
        fn $logistic(
            x_tr: Bound<'_, PyTuple>,
            l_tr: Vec<usize>,
            x_val: Bound<'_, PyTuple>,
            l_val: Vec<usize>,
            classes: usize,
            reg: f64,
        ) -> PyResult<NativeBilevel> {
            let p =
                Logistic::<$t>::new(design(&x_tr)?, l_tr, design(&x_val)?, l_val, classes, reg).map_err(core_err)?;
            Ok(NativeBilevel::$of(Arc::new(p)))
        }
    };
}
native_ctor!(bilevel_ridge_f64, bilevel_logistic_f64, f64, of_f64);
native_ctor!(bilevel_ridge_f32, bilevel_logistic_f32, f32, of_f32);

/// The user's problem, called through the Python wrappers of `optcore.bilevel.Problem`
/// (flat arrays of the exact dtype in and out; shapes and finiteness checked there). Each
/// call takes the GIL; an exception is kept in `pending` and ends the run. Which
/// second-order products are analytic is declared (`has_h`, `has_j`); the core's policy
/// (`bilevel::second_policy`) computes the others by finite differences.
struct PyOracle {
    dx: usize,
    dy: usize,
    nf: usize,
    ng: usize,
    grad_f: Py<PyAny>,
    grad_g: Py<PyAny>,
    second: Option<Py<PyAny>>,
    has_h: bool,
    has_j: bool,
    value_f: Option<Py<PyAny>>,
    pending: Pending,
}

impl PyOracle {
    fn from_spec(spec: &Bound<'_, PyTuple>) -> PyResult<Self> {
        let opt = |i: usize| -> PyResult<Option<Py<PyAny>>> {
            let o = spec.get_item(i)?;
            Ok(if o.is_none() { None } else { Some(o.unbind()) })
        };
        Ok(PyOracle {
            dx: spec.get_item(0)?.extract()?,
            dy: spec.get_item(1)?.extract()?,
            nf: spec.get_item(2)?.extract()?,
            ng: spec.get_item(3)?.extract()?,
            grad_f: spec.get_item(4)?.unbind(),
            grad_g: spec.get_item(5)?.unbind(),
            second: opt(6)?,
            has_h: spec.get_item(7)?.extract()?,
            has_j: spec.get_item(8)?.extract()?,
            value_f: opt(9)?,
            pending: Pending::default(),
        })
    }

    /// Runs `f` with the GIL; an exception is stored and becomes an `OptError`.
    fn call<R>(&self, f: impl FnOnce(Python<'_>) -> PyResult<R>) -> optcore_core::error::Result<R> {
        self.pending.call("oracle", f)
    }
}

fn batch_obj<'py>(py: Python<'py>, b: Batch) -> Bound<'py, PyAny> {
    match b {
        Some(idx) => PyArray1::from_vec(py, idx.iter().map(|&i| i as i64).collect::<Vec<i64>>()).into_any(),
        None => py.None().into_bound(py),
    }
}

fn copy_out<T: numpy::Element + Copy>(o: &Bound<'_, PyAny>, out: &mut [T]) -> PyResult<()> {
    copy_array_into(o, out, "internal: the oracle wrapper")
}

impl<T: Real + numpy::Element> Oracle<T> for PyOracle {
    fn dims(&self) -> (usize, usize) {
        (self.dx, self.dy)
    }
    fn n_samples(&self) -> (usize, usize) {
        (self.nf, self.ng)
    }
    fn grad_f(&self, x: &[T], y: &[T], batch: Batch, gx: &mut [T], gy: &mut [T]) -> optcore_core::error::Result<()> {
        self.call(|py| {
            let r = self.grad_f.bind(py).call1((
                PyArray1::from_slice(py, x),
                PyArray1::from_slice(py, y),
                batch_obj(py, batch),
            ))?;
            let t = r.cast::<PyTuple>()?;
            copy_out(&t.get_item(0)?, gx)?;
            copy_out(&t.get_item(1)?, gy)
        })
    }
    fn grad_g(
        &self,
        x: &[T],
        ys: &[T],
        batch: Batch,
        gx: Option<&mut [T]>,
        gy: &mut [T],
    ) -> optcore_core::error::Result<()> {
        self.call(|py| {
            let want_x = gx.is_some();
            let r = self.grad_g.bind(py).call1((
                PyArray1::from_slice(py, x),
                PyArray1::from_slice(py, ys),
                batch_obj(py, batch),
                want_x,
            ))?;
            let t = r.cast::<PyTuple>()?;
            if let Some(gx) = gx {
                copy_out(&t.get_item(0)?, gx)?;
            }
            copy_out(&t.get_item(1)?, gy)
        })
    }
    fn analytic(&self) -> (bool, bool) {
        (self.has_h, self.has_j)
    }
    fn products(
        &self,
        at: Probe<'_, T>,
        hyy: Option<&mut [T]>,
        hxy: Option<&mut [T]>,
    ) -> optcore_core::error::Result<()> {
        let Probe { x, y, v, batch } = at;
        let f = self.second.as_ref().expect("has_h or has_j implies a second-order callable");
        let (ah, aj) = (hyy.is_some(), hxy.is_some());
        self.call(|py| {
            let r = f.bind(py).call1((
                PyArray1::from_slice(py, x),
                PyArray1::from_slice(py, y),
                PyArray1::from_slice(py, v),
                batch_obj(py, batch),
                ah,
                aj,
            ))?;
            let t = r.cast::<PyTuple>()?;
            if let Some(h) = hyy {
                copy_out(&t.get_item(0)?, h)?;
            }
            if let Some(j) = hxy {
                copy_out(&t.get_item(1)?, j)?;
            }
            Ok(())
        })
    }
    fn value_f(&self, x: &[T], y: &[T]) -> Option<optcore_core::error::Result<f64>> {
        let f = self.value_f.as_ref()?;
        Some(
            self.call(|py| {
                f.bind(py).call1((PyArray1::from_slice(py, x), PyArray1::from_slice(py, y)))?.extract::<f64>()
            }),
        )
    }
}

fn build_options<T: Real>(
    method: &str,
    d: &Bound<'_, PyDict>,
    proj: impl Fn(&Bound<'_, NativeOperator>) -> optcore_core::operators::SharedOp<T>,
) -> PyResult<Options<T>> {
    let m = match method {
        "f2sa" => Method::F2sa,
        "penalty" => Method::Penalty,
        "aid" => Method::Aid,
        "itd" => Method::Itd,
        "soba" => Method::Soba,
        "borep" => Method::Borep,
        "exact" => Method::Exact,
        other => return Err(PyValueError::new_err(format!("unknown method {other:?}"))),
    };
    let mut o = Options::<T>::new(m);
    let opts = OptionsDict(d);
    macro_rules! set {
        ($($k:ident),*) => { $( if let Some(v) = opts.get(stringify!($k))? { o.$k = v; } )* };
    }
    set!(
        maxiter,
        tol,
        inner_steps,
        decay,
        batch_f,
        batch_g,
        seed,
        cg_maxiter,
        cg_tol,
        neumann_terms,
        lam0,
        lam_delta,
        lam_power,
        lam_max,
        sigma,
        inner_tol,
        beta,
        period,
        radius,
        refine_steps,
        lipschitz_probes,
        memory
    );
    if let Some(s) = opts.get::<String>("outer")? {
        o.outer = match s.as_str() {
            "gd" => Outer::Gd,
            "lbfgs" => Outer::Lbfgs,
            other => return Err(PyValueError::new_err(format!("unknown outer loop {other:?}"))),
        };
    }
    if let Some(s) = opts.get::<String>("lower_solve")? {
        o.lower_solve = match s.as_str() {
            "auto" => LowerSolve::Auto,
            "direct" => LowerSolve::Direct,
            "iterative" => LowerSolve::Iterative,
            other => return Err(PyValueError::new_err(format!("unknown lower solve {other:?}"))),
        };
    }
    if let Some((lo, hi)) = opts.get::<(Vec<f64>, Vec<f64>)>("bounds")? {
        o.bounds = Some((lo, hi));
    }
    o.inner_step = opts.get("inner_step")?;
    o.outer_step = opts.get("outer_step")?;
    o.momentum = opts.get("momentum")?;
    if let Some(s) = opts.get::<String>("solver")? {
        o.lin_solve = match s.as_str() {
            "cg" => LinSolve::Cg,
            "neumann" => LinSolve::Neumann,
            other => return Err(PyValueError::new_err(format!("unknown linear solver {other:?}"))),
        };
    }
    for (key, slot) in [("project_x", &mut o.proj_x), ("project_y", &mut o.proj_y)] {
        if let Some(v) = d.get_item(key)? {
            if !v.is_none() {
                *slot = Some(proj(v.cast::<NativeOperator>()?));
            }
        }
    }
    Ok(o)
}

/// The hypergradient method and its constants, a dict from `optcore.bilevel.hypergradient`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct HgSpec {
    method: String,
    tol: f64,
    maxiter: usize,
    terms: usize,
    eta: f64,
}

impl HgSpec {
    fn method(&self) -> PyResult<HgMethod> {
        Ok(match self.method.as_str() {
            "exact" => HgMethod::Exact,
            "cg" => HgMethod::Cg { tol: self.tol, maxiter: self.maxiter },
            "neumann" => HgMethod::Neumann { terms: self.terms, eta: self.eta },
            other => return Err(PyValueError::new_err(format!("unknown hypergradient method {other:?}"))),
        })
    }
}

/// The problem: a `NativeBilevel` of the right dtype or a Python oracle spec tuple.
enum Prob<T: Real> {
    Native(Arc<dyn Oracle<T>>),
    Py(Arc<PyOracle>),
}

impl<T: Real + numpy::Element> Prob<T> {
    fn oracle(&self) -> &dyn Oracle<T> {
        match self {
            Prob::Native(p) => &**p,
            Prob::Py(p) => &**p,
        }
    }
    /// The user oracle's exception, if one ended the run (it takes precedence).
    fn pending(&self) -> Option<PyErr> {
        match self {
            Prob::Py(p) => p.pending.take(),
            Prob::Native(_) => None,
        }
    }
}

macro_rules! bilevel_fns {
    ($min:ident, $hg:ident, $eval:ident, $prob:ident, $t:ty, $field:ident, $opfield:ident) => {
        fn $prob(problem: &Bound<'_, PyAny>) -> PyResult<Prob<$t>> {
            if let Ok(n) = problem.cast::<NativeBilevel>() {
                return n.get().$field.clone().map(Prob::Native).ok_or_else(|| {
                    PyTypeError::new_err(concat!("this native problem holds no ", stringify!($t), " data"))
                });
            }
            Ok(Prob::Py(Arc::new(PyOracle::from_spec(problem.cast::<PyTuple>()?)?)))
        }

        /// Runs a bilevel method; returns a dict (see `optcore.bilevel.minimize`).
        #[pyfunction]
        fn $min<'py>(
            py: Python<'py>,
            problem: Bound<'py, PyAny>,
            x0: PyReadonlyArray1<'py, $t>,
            y0: PyReadonlyArray1<'py, $t>,
            method: &str,
            options: Bound<'py, PyDict>,
            run: RunControl,
        ) -> PyResult<Bound<'py, PyDict>> {
            let prob = $prob(&problem)?;
            let opts = build_options::<$t>(method, &options, |op| op.get().$opfield.clone())?;
            let (x0, y0) = (x0.as_slice()?, y0.as_slice()?);
            let mut obs = PyObserver::new(run.progress, run.check_every);
            let oracle = prob.oracle();
            let out = run_detached(py, run.workers, || bilevel::minimize(oracle, x0, y0, &opts, &mut obs))?;
            if let Some(e) = prob.pending() {
                return Err(e);
            }
            obs.raise_pending()?;
            let out = out.map_err(core_err)?;
            let (nx, ny) = (out.x.len(), out.y.len());
            let r = ResultDict::new(py, &out.termination)?
                .array("x", out.x, &[nx])?
                .array("y", out.y, &[ny])?
                .set("fun", out.fun)?
                .set("hypergrad_norm", out.hypergrad_norm)?
                .set("hypergrad_estimate", out.hypergrad_estimate)?
                .set("measured", out.measured)?
                .set("lower_solve", if out.direct { "direct" } else { "iterative" })?
                .set("lower_residual", out.lower_residual)?
                .set("nit", out.nit)?;
            let c = out.counts;
            let counts = PyDict::new(py);
            counts.set_item("grad_f", c.grad_f)?;
            counts.set_item("grad_g", c.grad_g)?;
            counts.set_item("hvp_yy", c.hvp_yy)?;
            counts.set_item("jvp_xy", c.jvp_xy)?;
            counts.set_item("fd_second", c.fd_second)?;
            counts.set_item("value_f", c.values)?;
            let times = PyDict::new(py);
            for (name, t) in PHASE_NAMES.iter().zip(out.times) {
                times.set_item(*name, t)?;
            }
            Ok(r.set("oracle_calls", counts)?
                .set("phase_times", times)?
                .set("inner_step", out.inner_step)?
                .set("outer_step", out.outer_step)?
                .set("lam", out.lam)?
                .into_dict())
        }

        /// Hypergradient at `(x, y)`: `spec["method"]` in "exact", "cg", "neumann".
        #[pyfunction]
        #[pyo3(signature = (problem, x, y, spec, workers=None))]
        fn $hg<'py>(
            py: Python<'py>,
            problem: Bound<'py, PyAny>,
            x: PyReadonlyArray1<'py, $t>,
            y: PyReadonlyArray1<'py, $t>,
            spec: HgSpec,
            workers: Option<usize>,
        ) -> PyResult<Bound<'py, PyDict>> {
            let prob = $prob(&problem)?;
            let m = spec.method()?;
            let (x, y) = (x.as_slice()?, y.as_slice()?);
            let oracle = prob.oracle();
            let out = run_detached(py, workers, || bilevel::hypergradient(oracle, x, y, m))?;
            if let Some(e) = prob.pending() {
                return Err(e);
            }
            let (g, v, _) = out.map_err(core_err)?;
            let d = PyDict::new(py);
            let (nx, ny) = (g.len(), v.len());
            d.set_item("hypergrad", to_array(py, g, &[nx])?)?;
            d.set_item("v", to_array(py, v, &[ny])?)?;
            Ok(d)
        }

        /// Oracles at one point: `grad_f`, `grad_g` (x and y parts), `f` and, with `v`, the
        /// second-order products.
        #[pyfunction]
        #[pyo3(signature = (problem, x, y, v=None))]
        fn $eval<'py>(
            py: Python<'py>,
            problem: Bound<'py, PyAny>,
            x: PyReadonlyArray1<'py, $t>,
            y: PyReadonlyArray1<'py, $t>,
            v: Option<PyReadonlyArray1<'py, $t>>,
        ) -> PyResult<Bound<'py, PyDict>> {
            let prob = $prob(&problem)?;
            let (x, y) = (x.as_slice()?, y.as_slice()?);
            let v = match &v {
                Some(v) => Some(v.as_slice()?),
                None => None,
            };
            let o = prob.oracle();
            let (dx, dy) = o.dims();
            if x.len() != dx || y.len() != dy || v.is_some_and(|v| v.len() != dy) {
                return Err(PyValueError::new_err(format!("expected x of length {dx} and y (and v) of length {dy}")));
            }
            type Vals = (Vec<$t>, Vec<$t>, Vec<$t>, Vec<$t>, Option<(Vec<$t>, Vec<$t>)>, f64, f64);
            let out = run_detached(py, None, || -> optcore_core::error::Result<Vals> {
                let (mut fx, mut fy, mut gx, mut gy) = (vec![0.0; dx], vec![0.0; dy], vec![0.0; dx], vec![0.0; dy]);
                o.grad_f(x, y, None, &mut fx, &mut fy)?;
                o.grad_g(x, y, None, Some(&mut gx), &mut gy)?;
                let sec = match v {
                    Some(v) => {
                        let (mut h, mut j) = (vec![0.0; dy], vec![0.0; dx]);
                        o.second(Probe { x, y, v, batch: None }, Some(&mut h), Some(&mut j))?;
                        Some((h, j))
                    }
                    None => None,
                };
                let f = o.value_f(x, y).transpose()?.unwrap_or(f64::NAN);
                let g = o.value_g(x, y).transpose()?.unwrap_or(f64::NAN);
                Ok((fx, fy, gx, gy, sec, f, g))
            })?;
            if let Some(e) = prob.pending() {
                return Err(e);
            }
            let (fx, fy, gx, gy, sec, f, g) = out.map_err(core_err)?;
            let d = PyDict::new(py);
            d.set_item("grad_f_x", to_array(py, fx, &[dx])?)?;
            d.set_item("grad_f_y", to_array(py, fy, &[dy])?)?;
            d.set_item("grad_g_x", to_array(py, gx, &[dx])?)?;
            d.set_item("grad_g_y", to_array(py, gy, &[dy])?)?;
            if let Some((h, j)) = sec {
                d.set_item("hvp_yy", to_array(py, h, &[dy])?)?;
                d.set_item("jvp_xy", to_array(py, j, &[dx])?)?;
            }
            d.set_item("f", f)?;
            d.set_item("g", g)?;
            Ok(d)
        }
    };
}

bilevel_fns!(bilevel_minimize_f64, bilevel_hypergradient_f64, bilevel_eval_f64, prob_f64, f64, p64, op64);
bilevel_fns!(bilevel_minimize_f32, bilevel_hypergradient_f32, bilevel_eval_f32, prob_f32, f32, p32, op32);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeBilevel>()?;
    m.add_function(wrap_pyfunction!(bilevel_quadratic, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_ridge_f64, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_ridge_f32, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_logistic_f64, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_logistic_f32, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_minimize_f64, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_minimize_f32, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_hypergradient_f64, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_hypergradient_f32, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_eval_f64, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_eval_f32, m)?)?;
    lvhba::register(m)
}

// Constrained lower levels: LV-HBA (`method="lvhba"`), in `bilevel/lvhba.rs`.
mod lvhba;
