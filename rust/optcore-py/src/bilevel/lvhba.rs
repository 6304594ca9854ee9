//! Constrained lower levels: LV-HBA (`method="lvhba"`), its native problems and the Python
//! oracle of `Problem(h=..., jac_h=...)`.

use super::{copy_out, vec_of};
use crate::bridge::{core_err, run_detached, OptionsDict, Pending, PyObserver, ResultDict, RunControl};
use crate::fixed_point::NativeOperator;
use numpy::{PyArray1, PyReadonlyArray1};
use optcore_core::bilevel::{minimize_lvhba, Constrained, LlcToy, LvOptions, SvmDual, SvmPrimal};
use optcore_core::Real;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::sync::Arc;

/// A native problem with a constrained lower level, in float64 and/or float32.
#[pyclass(frozen, module = "optcore._core")]
pub struct NativeConstrained {
    p64: Option<Arc<dyn Constrained<f64>>>,
    p32: Option<Arc<dyn Constrained<f32>>>,
    dims: (usize, usize, usize, usize),
}

#[pymethods]
impl NativeConstrained {
    /// `(d_x, d_y, m, m_eq)`.
    #[getter]
    fn dims(&self) -> (usize, usize, usize, usize) {
        self.dims
    }
}

/// The LLC toy of the LV-HBA paper (both dtypes).
#[pyfunction]
fn bilevel_llc_toy(n: usize, a: f64) -> PyResult<NativeConstrained> {
    if n == 0 || !a.is_finite() {
        return Err(PyValueError::new_err("the toy needs n >= 1 and a finite a"));
    }
    let p = Arc::new(LlcToy { n, a });
    let dims = Constrained::<f64>::dims(&*p);
    Ok(NativeConstrained { p64: Some(p.clone()), p32: Some(p), dims })
}

macro_rules! svm_ctor {
    ($name:ident, $ty:ident, $t:ty, $field:ident, $other:ident) => {
        /// An SVM hyperparameter problem (`SvmDual` or `SvmPrimal`) on dense data of this dtype.
        #[pyfunction]
        fn $name(
            z_tr: Bound<'_, PyAny>,
            t_tr: Vec<f64>,
            z_val: Bound<'_, PyAny>,
            t_val: Vec<f64>,
            p: usize,
        ) -> PyResult<NativeConstrained> {
            let prob =
                $ty::<$t>::new(vec_of(&z_tr, "z_tr")?, t_tr, vec_of(&z_val, "z_val")?, t_val, p).map_err(core_err)?;
            let prob: Arc<dyn Constrained<$t>> = Arc::new(prob);
            let dims = prob.dims();
            Ok(NativeConstrained { $field: Some(prob), $other: None, dims })
        }
    };
}
svm_ctor!(bilevel_svm_f64, SvmDual, f64, p64, p32);
svm_ctor!(bilevel_svm_f32, SvmDual, f32, p32, p64);
svm_ctor!(bilevel_svm_primal_f64, SvmPrimal, f64, p64, p32);
svm_ctor!(bilevel_svm_primal_f32, SvmPrimal, f32, p32, p64);

/// The user's constrained problem through the wrappers of `optcore.bilevel.Problem`
/// (`_constrained_spec`: flat arrays of the exact dtype in and out, shapes and finiteness
/// checked there); each call takes the GIL, an exception is kept and ends the run.
struct PyConstrained {
    dims: (usize, usize, usize, usize),
    grad_f: Py<PyAny>,
    grad_g: Py<PyAny>,
    h: Py<PyAny>,
    jac_t: Py<PyAny>,
    value_f: Option<Py<PyAny>>,
    pending: Pending,
}

impl PyConstrained {
    fn from_spec(spec: &Bound<'_, PyTuple>) -> PyResult<Self> {
        let vf = spec.get_item(8)?;
        Ok(PyConstrained {
            dims: (
                spec.get_item(0)?.extract()?,
                spec.get_item(1)?.extract()?,
                spec.get_item(2)?.extract()?,
                spec.get_item(3)?.extract()?,
            ),
            grad_f: spec.get_item(4)?.unbind(),
            grad_g: spec.get_item(5)?.unbind(),
            h: spec.get_item(6)?.unbind(),
            jac_t: spec.get_item(7)?.unbind(),
            value_f: if vf.is_none() { None } else { Some(vf.unbind()) },
            pending: Pending::default(),
        })
    }

    /// Calls `f(x, y[, w])` and copies the returned pair into `a`, `b`.
    fn pair<T: Real + numpy::Element>(
        &self,
        f: &Py<PyAny>,
        x: &[T],
        y: &[T],
        w: Option<&[T]>,
        a: &mut [T],
        b: &mut [T],
    ) -> optcore_core::error::Result<()> {
        self.pending.call("oracle", |py| {
            let (px, py_) = (PyArray1::from_slice(py, x), PyArray1::from_slice(py, y));
            let r = match w {
                Some(w) => f.bind(py).call1((px, py_, PyArray1::from_slice(py, w)))?,
                None => f.bind(py).call1((px, py_))?,
            };
            let t = r.cast::<PyTuple>()?;
            copy_out(&t.get_item(0)?, a)?;
            copy_out(&t.get_item(1)?, b)
        })
    }
}

impl<T: Real + numpy::Element> Constrained<T> for PyConstrained {
    fn dims(&self) -> (usize, usize, usize, usize) {
        self.dims
    }
    fn grad_f(&self, x: &[T], y: &[T], gx: &mut [T], gy: &mut [T]) -> optcore_core::error::Result<()> {
        self.pair(&self.grad_f, x, y, None, gx, gy)
    }
    fn grad_g(&self, x: &[T], y: &[T], gx: &mut [T], gy: &mut [T]) -> optcore_core::error::Result<()> {
        self.pair(&self.grad_g, x, y, None, gx, gy)
    }
    fn h(&self, x: &[T], y: &[T], out: &mut [T]) -> optcore_core::error::Result<()> {
        self.pending.call("oracle", |py| {
            let r = self.h.bind(py).call1((PyArray1::from_slice(py, x), PyArray1::from_slice(py, y)))?;
            copy_out(&r, out)
        })
    }
    fn jac_t(&self, x: &[T], y: &[T], w: &[T], gx: &mut [T], gy: &mut [T]) -> optcore_core::error::Result<()> {
        self.pair(&self.jac_t, x, y, Some(w), gx, gy)
    }
    fn value_f(&self, x: &[T], y: &[T]) -> Option<optcore_core::error::Result<f64>> {
        let f = self.value_f.as_ref()?;
        Some(self.pending.call("oracle", |py| {
            f.bind(py).call1((PyArray1::from_slice(py, x), PyArray1::from_slice(py, y)))?.extract::<f64>()
        }))
    }
}

fn lv_options<T: Real>(
    d: &Bound<'_, PyDict>,
    proj: impl Fn(&Bound<'_, NativeOperator>) -> optcore_core::operators::SharedOp<T>,
) -> PyResult<LvOptions<T>> {
    let mut o = LvOptions::<T>::default();
    let opts = OptionsDict(d);
    macro_rules! set {
        ($($k:ident = $key:literal),*) => { $( if let Some(v) = opts.get($key)? { o.$k = v; } )* };
    }
    set!(
        maxiter = "maxiter",
        tol = "tol",
        check_every = "check_every",
        c0 = "c0",
        power = "power",
        beta = "z_step",
        seed = "seed",
        gamma1 = "gamma1",
        gamma2 = "gamma2",
        z_max = "z_max"
    );
    o.rho = opts.get("rho")?;
    o.alpha = opts.get("step")?;
    o.eta = opts.get("lower_step")?;
    for (key, slot) in [("project_x", &mut o.proj_x), ("project_y", &mut o.proj_y)] {
        if let Some(v) = d.get_item(key)? {
            if !v.is_none() {
                *slot = Some(proj(v.cast::<NativeOperator>()?));
            }
        }
    }
    Ok(o)
}

/// The constrained problem: a `NativeConstrained` of the right dtype or a Python spec tuple.
enum CProb<T: Real> {
    Native(Arc<dyn Constrained<T>>),
    Py(Arc<PyConstrained>),
}

impl<T: Real + numpy::Element> CProb<T> {
    fn problem(&self) -> &dyn Constrained<T> {
        match self {
            CProb::Native(p) => &**p,
            CProb::Py(p) => &**p,
        }
    }
    fn pending(&self) -> Option<PyErr> {
        match self {
            CProb::Py(p) => p.pending.take(),
            CProb::Native(_) => None,
        }
    }
}

macro_rules! lvhba_fn {
    ($name:ident, $t:ty, $field:ident, $opfield:ident) => {
        /// Runs LV-HBA; returns a dict (see `optcore.bilevel.minimize(method="lvhba")`).
        #[pyfunction]
        fn $name<'py>(
            py: Python<'py>,
            problem: Bound<'py, PyAny>,
            x0: PyReadonlyArray1<'py, $t>,
            y0: PyReadonlyArray1<'py, $t>,
            options: Bound<'py, PyDict>,
            run: RunControl,
        ) -> PyResult<Bound<'py, PyDict>> {
            let prob: CProb<$t> = if let Ok(n) = problem.cast::<NativeConstrained>() {
                CProb::Native(n.get().$field.clone().ok_or_else(|| {
                    PyTypeError::new_err(concat!("this native problem holds no ", stringify!($t), " data"))
                })?)
            } else {
                CProb::Py(Arc::new(PyConstrained::from_spec(problem.cast::<PyTuple>()?)?))
            };
            let opts = lv_options::<$t>(&options, |op| op.get().$opfield.clone())?;
            let (x0, y0) = (x0.as_slice()?, y0.as_slice()?);
            let mut obs = PyObserver::new(run.progress, run.check_every);
            let p = prob.problem();
            let out = run_detached(py, run.workers, || minimize_lvhba(p, x0, y0, &opts, &mut obs))?;
            if let Some(e) = prob.pending() {
                return Err(e);
            }
            obs.raise_pending()?;
            let out = out.map_err(core_err)?;
            let (nx, ny, nm) = (out.x.len(), out.y.len(), out.multipliers.len());
            let c = out.counts;
            let st = out.steps;
            let steps = PyDict::new(py);
            for (k, v) in
                [("x", st.x), ("y", st.y), ("theta", st.theta), ("lambda", st.lam), ("rho", st.rho), ("dual", st.dual)]
            {
                steps.set_item(k, v)?;
            }
            let counts = PyDict::new(py);
            counts.set_item("grad_f", c.grad_f)?;
            counts.set_item("grad_g", c.grad_g)?;
            counts.set_item("h", c.h)?;
            counts.set_item("jac_h", c.jac)?;
            counts.set_item("value_f", c.values)?;
            Ok(ResultDict::new(py, &out.termination)?
                .array("x", out.x, &[nx])?
                .array("y", out.y, &[ny])?
                .array("theta", out.theta, &[ny])?
                .array("multipliers", out.multipliers, &[nm])?
                .array("z", out.z, &[nm])?
                .set("fun", out.fun)?
                .set("constraint_violation", out.measures.violation)?
                .set("lower_residual", out.measures.lower)?
                .set("stationarity", out.measures.stationarity)?
                .set("penalty", out.penalty)?
                .set("step", out.steps.y)?
                .set("lower_step", out.steps.theta)?
                .set("steps", steps)?
                .set("nit", out.nit)?
                .set("oracle_calls", counts)?
                .into_dict())
        }
    };
}
lvhba_fn!(bilevel_lvhba_f64, f64, p64, op64);
lvhba_fn!(bilevel_lvhba_f32, f32, p32, op32);

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeConstrained>()?;
    m.add_function(wrap_pyfunction!(bilevel_llc_toy, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_svm_f64, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_svm_f32, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_svm_primal_f64, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_svm_primal_f32, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_lvhba_f64, m)?)?;
    m.add_function(wrap_pyfunction!(bilevel_lvhba_f32, m)?)?;
    Ok(())
}
