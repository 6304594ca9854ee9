//! Bindings of `optcore_core::fixed_point` and `optcore_core::operators`: native operators as one opaque class
//! ([`NativeOperator`], holding the f64 and f32 instances of the same operator), their
//! constructors, and the fixed-point solver per dtype. A Python callable is wrapped in
//! [`PyOperator`], which takes the GIL for each call. Inputs are C-contiguous arrays of the
//! exact dtype (the Python layer normalises and validates them).

use crate::bridge::{copy_array_into, core_err, run_detached, Pending, PyObserver, ResultDict};
use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use optcore_core::alloc::try_zeroed;
use optcore_core::fixed_point::{solve, Method, Options};
use optcore_core::operators::{
    apply_checked, douglas_rachford, Affine, AffineData, Average, Ball, BoxProj, Compose, Identity, LinearResolvent,
    LinearResolventData, Operator, Reflect, SharedOp, Simplex,
};
use optcore_core::Real;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Arc;

/// A native nonexpansive operator (see `optcore.fixed_point.operators`).
#[pyclass(frozen, module = "optcore._core")]
pub struct NativeOperator {
    pub(crate) op64: SharedOp<f64>,
    pub(crate) op32: SharedOp<f32>,
}

impl NativeOperator {
    fn new(op64: SharedOp<f64>, op32: SharedOp<f32>) -> Self {
        NativeOperator { op64, op32 }
    }
}

#[pymethods]
impl NativeOperator {
    /// The dimension `d` of `T: R^d -> R^d`.
    #[getter]
    fn dim(&self) -> usize {
        self.op64.dim()
    }

    /// `T x` in float64.
    fn apply_f64<'py>(&self, py: Python<'py>, x: PyReadonlyArray1<'py, f64>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = x.as_slice()?;
        let op = &*self.op64;
        let out = run_detached(py, None, || {
            // Sized by the caller's x: fallible (MemoryError), like every such buffer.
            let mut out = try_zeroed(x.len(), "operator output")?;
            apply_checked(op, x, &mut out).map(|_| out)
        })?
        .map_err(core_err)?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// `T x` in float32.
    fn apply_f32<'py>(&self, py: Python<'py>, x: PyReadonlyArray1<'py, f32>) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let x = x.as_slice()?;
        let op = &*self.op32;
        let out = run_detached(py, None, || {
            // Sized by the caller's x: fallible (MemoryError), like every such buffer.
            let mut out = try_zeroed(x.len(), "operator output")?;
            apply_checked(op, x, &mut out).map(|_| out)
        })?
        .map_err(core_err)?;
        Ok(PyArray1::from_vec(py, out))
    }
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// The identity on `R^d`.
#[pyfunction]
fn op_identity(d: usize) -> NativeOperator {
    NativeOperator::new(Arc::new(Identity { d }), Arc::new(Identity { d }))
}

/// Projection onto the box `lo <= x <= hi`.
#[pyfunction]
fn op_box(lo: PyReadonlyArray1<'_, f64>, hi: PyReadonlyArray1<'_, f64>) -> PyResult<NativeOperator> {
    let (lo, hi) = (lo.as_slice()?, hi.as_slice()?);
    let a = BoxProj::new(lo.to_vec(), hi.to_vec()).map_err(core_err)?;
    let b = BoxProj::new(to_f32(lo), to_f32(hi)).map_err(core_err)?;
    Ok(NativeOperator::new(Arc::new(a), Arc::new(b)))
}

/// Projection onto the ball `||x - center|| <= radius`.
#[pyfunction]
fn op_ball(center: PyReadonlyArray1<'_, f64>, radius: f64) -> PyResult<NativeOperator> {
    let c = center.as_slice()?;
    let a = Ball::new(c.to_vec(), radius).map_err(core_err)?;
    let b = Ball::new(to_f32(c), radius).map_err(core_err)?;
    Ok(NativeOperator::new(Arc::new(a), Arc::new(b)))
}

/// Projection onto `{x >= 0, sum x = total}` in `R^d`.
#[pyfunction]
fn op_simplex(d: usize, total: f64) -> PyResult<NativeOperator> {
    let a = Simplex::new(d, total).map_err(core_err)?;
    let b = Simplex::new(d, total).map_err(core_err)?;
    Ok(NativeOperator::new(Arc::new(a), Arc::new(b)))
}

/// Projection onto `{x : A x = b}` (`A` of full row rank).
#[pyfunction]
fn op_affine(py: Python<'_>, a: PyReadonlyArray2<'_, f64>, b: PyReadonlyArray1<'_, f64>) -> PyResult<NativeOperator> {
    let (m, d) = (a.shape()[0], a.shape()[1]);
    let (a, b) = (a.as_slice()?.to_vec(), b.as_slice()?.to_vec());
    let data = Arc::new(run_detached(py, None, || AffineData::new(a, b, m, d))?.map_err(core_err)?);
    Ok(NativeOperator::new(Arc::new(Affine(data.clone())), Arc::new(Affine(data))))
}

/// `x -> 2 (I + lam L)^{-1} x - x`.
#[pyfunction]
fn op_linear_resolvent(py: Python<'_>, l: PyReadonlyArray2<'_, f64>, lam: f64) -> PyResult<NativeOperator> {
    let d = l.shape()[0];
    let l = l.as_slice()?;
    let data = Arc::new(run_detached(py, None, || LinearResolventData::new(l, d, lam))?.map_err(core_err)?);
    Ok(NativeOperator::new(Arc::new(LinearResolvent(data.clone())), Arc::new(LinearResolvent(data))))
}

fn parts(ops: &[Bound<'_, NativeOperator>]) -> (Vec<SharedOp<f64>>, Vec<SharedOp<f32>>) {
    (ops.iter().map(|o| o.get().op64.clone()).collect(), ops.iter().map(|o| o.get().op32.clone()).collect())
}

/// `ops[-1] o ... o ops[0]` (`ops[0]` applied first).
#[pyfunction]
fn op_compose(ops: Vec<Bound<'_, NativeOperator>>) -> PyResult<NativeOperator> {
    let (a, b) = parts(&ops);
    Ok(NativeOperator::new(Arc::new(Compose::new(a).map_err(core_err)?), Arc::new(Compose::new(b).map_err(core_err)?)))
}

/// `sum_i w_i ops[i]` (weights positive, summing to 1).
#[pyfunction]
fn op_average(ops: Vec<Bound<'_, NativeOperator>>, weights: Vec<f64>) -> PyResult<NativeOperator> {
    let (a, b) = parts(&ops);
    Ok(NativeOperator::new(
        Arc::new(Average::new(a, weights.clone()).map_err(core_err)?),
        Arc::new(Average::new(b, weights).map_err(core_err)?),
    ))
}

/// `2 op - I`.
#[pyfunction]
fn op_reflect(op: Bound<'_, NativeOperator>) -> NativeOperator {
    let o = op.get();
    NativeOperator::new(Arc::new(Reflect::new(o.op64.clone())), Arc::new(Reflect::new(o.op32.clone())))
}

/// `(I + R_B R_A) / 2` for projections `pa`, `pb`.
#[pyfunction]
fn op_douglas_rachford(pa: Bound<'_, NativeOperator>, pb: Bound<'_, NativeOperator>) -> PyResult<NativeOperator> {
    let (a, b) = (pa.get(), pb.get());
    Ok(NativeOperator::new(
        Arc::new(douglas_rachford(a.op64.clone(), b.op64.clone()).map_err(core_err)?),
        Arc::new(douglas_rachford(a.op32.clone(), b.op32.clone()).map_err(core_err)?),
    ))
}

/// A Python callable `f(x) -> y` on flat arrays of the exact dtype (the Python layer reshapes
/// and checks what the user's function returns). Takes the GIL for each call; an exception is
/// kept in `pending` and ends the run.
struct PyOperator {
    f: Py<PyAny>,
    d: usize,
    pending: Pending,
}

impl<T: Real + numpy::Element> Operator<T> for PyOperator {
    fn dim(&self) -> usize {
        self.d
    }
    fn apply(&self, x: &[T], out: &mut [T]) -> optcore_core::error::Result<()> {
        self.pending.call("operator", |py| -> PyResult<()> {
            let arr = PyArray1::from_slice(py, x);
            let r = self.f.bind(py).call1((arr,))?;
            copy_array_into(&r, out, "T")
        })
    }
}

macro_rules! halpern_fn {
    ($name:ident, $t:ty, $field:ident) => {
        /// Fixed-point iteration (`method` in "halpern", "km", "picard"; `param` is the
        /// anchoring constant of "halpern" and the relaxation of "km") on a `NativeOperator`
        /// or a Python callable on flat arrays. Returns a dict; see
        /// `optcore.fixed_point.halpern`.
        #[pyfunction]
        #[pyo3(signature = (op, x0, method, param, tol, rtol, maxiter, restart=None, tol_disp=1e-6, min_disp_iter=50, progress=None, check_every=10, workers=None))]
        #[allow(clippy::too_many_arguments)] // a pyfunction's parameters are its Python keywords
        fn $name<'py>(
            py: Python<'py>,
            op: Bound<'py, PyAny>,
            x0: PyReadonlyArray1<'py, $t>,
            method: &str,
            param: f64,
            tol: f64,
            rtol: f64,
            maxiter: usize,
            restart: Option<f64>,
            tol_disp: f64,
            min_disp_iter: usize,
            progress: Option<Py<PyAny>>,
            check_every: usize,
            workers: Option<usize>,
        ) -> PyResult<Bound<'py, PyDict>> {
            let x0 = x0.as_slice()?;
            let method = match method {
                "halpern" => Method::Halpern { anchoring: param },
                "km" => Method::KrasnoselskiiMann { relaxation: param },
                "picard" => Method::Picard,
                other => return Err(PyValueError::new_err(format!("unknown method {other:?}"))),
            };
            let opts = Options { method, tol, rtol, maxiter, restart, tol_disp, min_disp_iter };
            let mut pyop: Option<Arc<PyOperator>> = None;
            let opref: SharedOp<$t> = match op.cast::<NativeOperator>() {
                Ok(native) => native.get().$field.clone(),
                Err(_) => {
                    let p = Arc::new(PyOperator { f: op.clone().unbind(), d: x0.len(), pending: Pending::default() });
                    pyop = Some(p.clone());
                    p
                }
            };
            let mut obs = PyObserver::new(progress, check_every);
            let out = run_detached(py, workers, || solve(&*opref, x0, &opts, &mut obs))?;
            if let Some(p) = &pyop {
                p.pending.raise()?;
            }
            obs.raise_pending()?;
            let out = out.map_err(core_err)?;
            let n = out.x.len();
            let r = ResultDict::new(py, &out.termination)?
                .array("x", out.x, &[n])?
                .set("residual", out.residual)?
                .set("initial_residual", out.initial_residual)?
                .set("threshold", out.threshold)?
                .set("nit", out.nit)?
                .set("nfev", out.nfev)?
                .set("restarts", out.restarts)?;
            let r = match out.displacement {
                Some(v) => r.array("displacement", v, &[n])?,
                None => r.set("displacement", py.None())?,
            };
            Ok(r.into_dict())
        }
    };
}

halpern_fn!(halpern_f64, f64, op64);
halpern_fn!(halpern_f32, f32, op32);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeOperator>()?;
    m.add_function(wrap_pyfunction!(op_identity, m)?)?;
    m.add_function(wrap_pyfunction!(op_box, m)?)?;
    m.add_function(wrap_pyfunction!(op_ball, m)?)?;
    m.add_function(wrap_pyfunction!(op_simplex, m)?)?;
    m.add_function(wrap_pyfunction!(op_affine, m)?)?;
    m.add_function(wrap_pyfunction!(op_linear_resolvent, m)?)?;
    m.add_function(wrap_pyfunction!(op_compose, m)?)?;
    m.add_function(wrap_pyfunction!(op_average, m)?)?;
    m.add_function(wrap_pyfunction!(op_reflect, m)?)?;
    m.add_function(wrap_pyfunction!(op_douglas_rachford, m)?)?;
    m.add_function(wrap_pyfunction!(halpern_f64, m)?)?;
    m.add_function(wrap_pyfunction!(halpern_f32, m)?)?;
    Ok(())
}
