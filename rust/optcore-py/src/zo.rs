//! Bindings of `optcore_core::zo`: the ask/tell state ([`ZoState`], float64 or float32 inside)
//! with a `run` that drives the core's loop on a native test function or on a Python callable
//! (a batched one: the Python layer wraps per-point and executor objectives into that, see
//! `optcore.zo._objective.batched`), and the native test functions on batches.

use crate::bridge::{
    copy_array_into, core_err, run_detached, to_array, OptionsDict, Pending, PyObserver, ResultDict, RunControl,
};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use optcore_core::zo::{
    functions::eval_rows, solve, Cbo, Directions, Estimator, Evaluation, Func, Limits, Method, Noise, Objective,
    Options, Scheme, Step, TestFunction, Update, Zo,
};
use optcore_core::Real;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A Python callable `f(X: (B, d) array of the run's dtype) -> (B,) float64 array`. It takes
/// the GIL for each batch; an exception is kept in `pending` and ends the run.
struct PyBatch {
    f: Py<PyAny>,
    d: usize,
    pending: Pending,
    /// `Batch` or `PerPoint` (a per-point Python objective: `f` gets one row at a time).
    mode: Evaluation,
}

impl<T: Real + numpy::Element> Objective<T> for PyBatch {
    fn dim(&self) -> usize {
        self.d
    }
    fn evaluation(&self) -> Evaluation {
        self.mode
    }
    fn eval(&self, x: &[T], out: &mut [f64]) -> optcore_core::error::Result<()> {
        self.pending.call("objective", |py| -> PyResult<()> {
            let arr = PyArray1::from_slice(py, x).reshape([out.len(), self.d])?;
            let r = self.f.bind(py).call1((arr,))?;
            let r = r
                .cast::<PyArray1<f64>>()
                .map_err(|_| PyValueError::new_err("objective wrapper must return float64"))?;
            let r = r.readonly();
            let s = r.as_slice()?;
            if s.len() != out.len() {
                return Err(PyValueError::new_err(format!(
                    "objective returned {} values; expected {}",
                    s.len(),
                    out.len()
                )));
            }
            out.copy_from_slice(s);
            Ok(())
        })
    }
    /// The point is generated straight into the `(1, d)` array handed to the callable (a
    /// fresh one per call: `f` may keep it), so the point exists once.
    fn eval_filled(
        &self,
        fill: &mut dyn FnMut(&mut [T]) -> optcore_core::error::Result<()>,
        _buf: &mut Vec<T>,
        out: &mut [f64],
    ) -> optcore_core::error::Result<()> {
        let mut filled = Ok(());
        self.pending.call("objective", |py| -> PyResult<()> {
            let arr = PyArray2::<T>::zeros(py, [1, self.d], false);
            filled = fill(arr.readwrite().as_slice_mut()?);
            if filled.is_err() {
                return Ok(());
            }
            let r = self.f.bind(py).call1((arr,))?;
            copy_array_into(&r, out, "objective wrapper")
        })?;
        filled
    }
}

/// The coordinator of the seed transport: a Python callable `f(nit, digest or None) -> (B,)
/// float64` that has replicas evaluate the batch of iteration `nit`; the state's digest is
/// passed every `sync_every` iterations (computing it reads every state vector).
struct PySeeds {
    f: Py<PyAny>,
    d: usize,
    sync_every: u64,
    pending: Pending,
}

impl<T: Real + numpy::Element> Objective<T> for PySeeds {
    fn dim(&self) -> usize {
        self.d
    }
    fn eval(&self, _x: &[T], _out: &mut [f64]) -> optcore_core::error::Result<()> {
        Err(optcore_core::error::OptError::InvalidInput("the seed transport evaluates iterations".into()))
    }
    fn evaluation(&self) -> Evaluation {
        Evaluation::Values
    }
    fn values(&self, nit: u64, digest: &dyn Fn() -> u64, out: &mut [f64]) -> optcore_core::error::Result<()> {
        let h = (nit % self.sync_every == 0).then(digest);
        self.pending.call("objective", |py| -> PyResult<()> {
            let r = self.f.bind(py).call1((nit, h))?;
            copy_array_into(&r, out, "the seed coordinator")
        })
    }
}

/// The core's options from the dict the Python layer builds (every default resolved there).
fn options(cfg: &Bound<'_, PyDict>) -> PyResult<Options> {
    let cfg = OptionsDict(cfg);
    let kind: String = cfg.require("kind")?;
    let method = match kind.as_str() {
        "gradient" => {
            let dirs = match cfg.require::<String>("directions")?.as_str() {
                "gaussian" => Directions::Gaussian,
                "sphere" => Directions::Sphere,
                "coordinates" => Directions::Coordinates { n: cfg.require("n_coords")? },
                o => return Err(PyValueError::new_err(format!("unknown directions {o:?}"))),
            };
            let scheme = if cfg.require::<String>("scheme")? == "central" { Scheme::Central } else { Scheme::Forward };
            let est = Estimator { dirs, scheme, q: cfg.require("q")?, mu: cfg.require("mu")? };
            let update = match cfg.require::<String>("update")?.as_str() {
                "plain" => Update::Plain,
                "momentum" => Update::Momentum { beta: cfg.require("momentum")? },
                "sign" => Update::Sign,
                "adamm" => Update::AdaMM {
                    beta1: cfg.require("beta1")?,
                    beta2: cfg.require("beta2")?,
                    eps: cfg.require("eps")?,
                },
                o => return Err(PyValueError::new_err(format!("unknown update {o:?}"))),
            };
            Method::Gradient { est, update, perturbation: cfg.get("perturbation")? }
        }
        "cbo" => Method::Cbo(Cbo {
            particles: cfg.require("particles")?,
            alpha: cfg.require("alpha")?,
            lambda: cfg.require("lambda")?,
            sigma: cfg.require("sigma")?,
            dt: cfg.require("dt")?,
            noise: if cfg.require::<String>("noise")? == "isotropic" { Noise::Isotropic } else { Noise::Anisotropic },
            hopping: cfg.require("hopping")?,
            sigma_decay: cfg.require("sigma_decay")?,
            init_std: cfg.require("init_std")?,
        }),
        "rank" => Method::Rank {
            m: cfg.require("m")?,
            k: cfg.require("k")?,
            mu: cfg.require("mu")?,
            decay: cfg.require("decay")?,
        },
        o => return Err(PyValueError::new_err(format!("unknown kind {o:?}"))),
    };
    let step = match cfg.get::<f64>("lr")? {
        Some(lr) => Step::Fixed(lr),
        None => {
            Step::Adaptive { step0: cfg.require("step0")?, grow: cfg.require("grow")?, shrink: cfg.require("shrink")? }
        }
    };
    Ok(Options {
        method,
        step,
        lower: cfg.require("lower")?,
        upper: cfg.require("upper")?,
        xtol: cfg.require("xtol")?,
        nan_as_inf: cfg.require("nan_as_inf")?,
        seed: cfg.require("seed")?,
    })
}

enum Inner {
    F64(Zo<f64>),
    F32(Zo<f32>),
}

/// The state of a zeroth-order run (see `optcore.zo.Optimizer`).
#[pyclass(module = "optcore._core")]
pub struct ZoState {
    inner: Inner,
}

macro_rules! with {
    ($s:expr, $z:ident => $e:expr) => {
        match &$s.inner {
            Inner::F64($z) => $e,
            Inner::F32($z) => $e,
        }
    };
    (mut $s:expr, $z:ident => $e:expr) => {
        match &mut $s.inner {
            Inner::F64($z) => $e,
            Inner::F32($z) => $e,
        }
    };
}

fn history_array<'py>(py: Python<'py>, h: &[(usize, f64)]) -> PyResult<Bound<'py, PyAny>> {
    let flat: Vec<f64> = h.iter().flat_map(|&(n, f)| [n as f64, f]).collect();
    to_array(py, flat, &[h.len(), 2])
}

/// What [`run_on`] minimises.
enum Target<'a, 'py> {
    /// A native test function `(name, cond)`.
    Native(String, f64),
    /// A Python callable on batches (`Batch`) or on one row at a time (`PerPoint`).
    Python(&'a Bound<'py, PyAny>, Evaluation),
    /// The seed transport's coordinator and its `sync_every`.
    Seeds(&'a Bound<'py, PyAny>, u64),
}

/// Runs the core's loop on `zo` (see [`ZoState::run`]).
fn run_on<'py, T: Real + numpy::Element>(
    py: Python<'py>,
    zo: &mut Zo<T>,
    target: Target<'_, 'py>,
    lim: Limits,
    run: RunControl,
) -> PyResult<Bound<'py, PyDict>> {
    let d = zo.dim();
    let (workers, mut obs) = (run.workers, PyObserver::new(run.progress, run.check_every));
    let out = match target {
        Target::Native(name, cond) => {
            let f = TestFunction { func: Func::from_name(&name, cond).map_err(core_err)?, d };
            run_detached(py, workers, || solve(zo, &f, &lim, &mut obs))?
        }
        Target::Python(objective, mode) => {
            let f = PyBatch { f: objective.clone().unbind(), d, pending: Pending::default(), mode };
            let out = run_detached(py, workers, || solve(zo, &f, &lim, &mut obs))?;
            f.pending.raise()?;
            out
        }
        Target::Seeds(coordinator, sync_every) => {
            let f = PySeeds {
                f: coordinator.clone().unbind(),
                d,
                sync_every: sync_every.max(1),
                pending: Pending::default(),
            };
            let out = run_detached(py, workers, || solve(zo, &f, &lim, &mut obs))?;
            f.pending.raise()?;
            out
        }
    };
    obs.raise_pending()?;
    let out = out.map_err(core_err)?;
    let history = history_array(py, &out.history)?;
    Ok(ResultDict::new(py, &out.termination)?
        .array("x", out.x, &[d])?
        .array("x_last", out.x_last, &[d])?
        .set("fun", out.fun)?
        .set("nit", out.nit)?
        .set("nfev", out.nfev)?
        .set("history", history)?
        .set("collapsed", out.collapsed)?
        .into_dict())
}

/// Point `i` of the current batch of `zo` as a new 1-D array, generated straight into it.
fn point_array<'py, T: Real + numpy::Element>(
    py: Python<'py>,
    zo: &mut Zo<T>,
    i: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let arr = PyArray1::<T>::zeros(py, zo.dim(), false);
    {
        let mut w = arr.readwrite();
        zo.point(i, w.as_slice_mut()?).map_err(core_err)?;
    }
    Ok(arr.into_any())
}

#[pymethods]
impl ZoState {
    /// A new state at `x0` (float64 or float32, 1-D) with the options of `config` (a dict the
    /// Python layer builds; see `optcore.zo._config._config`).
    #[new]
    fn new(x0: &Bound<'_, PyAny>, config: &Bound<'_, PyDict>) -> PyResult<Self> {
        let o = options(config)?;
        let inner = if let Ok(x) = x0.extract::<PyReadonlyArray1<'_, f64>>() {
            Inner::F64(Zo::new(x.as_slice()?, o).map_err(core_err)?)
        } else {
            let x = x0.extract::<PyReadonlyArray1<'_, f32>>()?;
            Inner::F32(Zo::new(x.as_slice()?, o).map_err(core_err)?)
        };
        Ok(ZoState { inner })
    }

    /// The batch to evaluate, `(batch_size, dim)` (the same batch until `tell`).
    fn ask<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        with!(mut self, z => {
            let b = z.batch_size();
            let d = z.dim();
            to_array(py, z.ask().map_err(core_err)?.to_vec(), &[b, d])
        })
    }

    /// The values of the asked batch, in order (float64).
    fn tell(&mut self, values: PyReadonlyArray1<'_, f64>) -> PyResult<()> {
        let v = values.as_slice()?;
        with!(mut self, z => z.tell(v).map_err(core_err))
    }

    /// ZO-RankSGD: the indices of the `k` best asked points, best first.
    fn tell_ranking(&mut self, top: Vec<usize>) -> PyResult<()> {
        with!(mut self, z => z.tell_ranking(&top).map_err(core_err))
    }

    /// Runs the core's loop on a native test function (`native = (name, cond)`) or on the
    /// Python callable `objective` (`per_point`: it takes one row at a time, each generated
    /// into the same buffer; else the whole batch), within `limits = (maxfev, maxiter,
    /// f_target)`; `run` is `{"progress", "check_every", "workers"}`. Returns a dict (x,
    /// x_last, fun, nit, nfev, status, detail, history).
    #[pyo3(signature = (objective, native, limits, run, per_point=false))]
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        objective: Bound<'py, PyAny>,
        native: Option<(String, f64)>,
        limits: (usize, u64, f64),
        run: RunControl,
        per_point: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (maxfev, maxiter, f_target) = limits;
        let lim = Limits { maxfev, maxiter, f_target, take: true };
        let mode = if per_point { Evaluation::PerPoint } else { Evaluation::Batch };
        with!(mut self, z => {
            let target = match &native {
                Some((name, cond)) => Target::Native(name.clone(), *cond),
                None => Target::Python(&objective, mode),
            };
            run_on(py, z, target, lim, run)
        })
    }

    /// Runs the core's loop with the seed transport's `coordinator(nit, digest or None) ->
    /// values` (see `optcore.zo._transport`), passing the state's digest every `sync_every`
    /// iterations. Same limits, run control and result as [`ZoState::run`].
    fn run_seeds<'py>(
        &mut self,
        py: Python<'py>,
        coordinator: Bound<'py, PyAny>,
        sync_every: u64,
        limits: (usize, u64, f64),
        run: RunControl,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (maxfev, maxiter, f_target) = limits;
        let lim = Limits { maxfev, maxiter, f_target, take: true };
        with!(mut self, z => run_on(py, z, Target::Seeds(&coordinator, sync_every), lim, run))
    }

    /// Point `i` of the current batch (the row `i` that `ask` would return), generated alone.
    fn point<'py>(&mut self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        with!(mut self, z => point_array(py, z, i))
    }

    /// Tells the values of the current batch without an `ask` (a replica whose points were
    /// evaluated elsewhere): the same update as `tell`.
    fn advance(&mut self, values: PyReadonlyArray1<'_, f64>) -> PyResult<()> {
        let v = values.as_slice()?;
        with!(mut self, z => { z.begin().map_err(core_err)?; z.tell(v).map_err(core_err) })
    }

    /// A 64-bit digest of the state (see `Zo::state_hash`): replicas that told the same values
    /// have the same digest.
    fn state_hash(&self) -> u64 {
        with!(self, z => z.state_hash())
    }

    #[getter]
    fn dim(&self) -> usize {
        with!(self, z => z.dim())
    }
    #[getter]
    fn batch_size(&self) -> usize {
        with!(self, z => z.batch_size())
    }
    #[getter]
    fn nit(&self) -> u64 {
        with!(self, z => z.nit())
    }
    #[getter]
    fn nfev(&self) -> usize {
        with!(self, z => z.nfev())
    }
    #[getter]
    fn lr(&self) -> f64 {
        with!(self, z => z.lr())
    }
    #[getter]
    fn failures(&self) -> usize {
        with!(self, z => z.failures())
    }
    #[getter]
    fn converged(&self) -> bool {
        with!(self, z => z.converged())
    }
    /// CBO: the particles collapsed (no progress possible; not convergence).
    #[getter]
    fn collapsed(&self) -> bool {
        with!(self, z => z.collapsed())
    }
    /// The current iterate (CBO: the consensus point).
    #[getter]
    fn x<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        with!(self, z => { let d = z.dim(); to_array(py, z.x(), &[d]) })
    }
    /// `(best point evaluated, its value)`.
    #[getter]
    fn best<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, f64)> {
        with!(self, z => { let (x, f) = z.best(); let d = z.dim(); Ok((to_array(py, x, &[d])?, f)) })
    }
    /// The last gradient estimate (float64).
    #[getter]
    fn gradient<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        with!(self, z => { let d = z.dim(); to_array(py, z.gradient(), &[d]) })
    }
    /// `(evaluations, value)` at every improvement of the best value.
    #[getter]
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        with!(self, z => history_array(py, z.history()))
    }
    /// CBO's particles, `(particles, dim)` (empty before the first ask and for other methods).
    #[getter]
    fn particles<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        with!(self, z => { let p = z.particles(); let d = z.dim(); let n = p.len() / d; to_array(py, p, &[n, d]) })
    }
}

macro_rules! eval_fn {
    ($name:ident, $t:ty) => {
        /// A native test function at the rows of `x` (`(B, d)`, C-contiguous); float64 values.
        #[pyfunction]
        #[pyo3(signature = (name, cond, x, workers=None))]
        fn $name<'py>(
            py: Python<'py>,
            name: &str,
            cond: f64,
            x: PyReadonlyArray2<'py, $t>,
            workers: Option<usize>,
        ) -> PyResult<Bound<'py, PyArray1<f64>>> {
            let func = Func::from_name(name, cond).map_err(core_err)?;
            let (b, d) = (x.shape()[0], x.shape()[1]);
            let xs = x.as_slice()?;
            let out = run_detached(py, workers, || {
                let mut out = vec![0.0; b];
                eval_rows(func, d, xs, &mut out);
                out
            })?;
            Ok(PyArray1::from_vec(py, out))
        }
    };
}

eval_fn!(zo_function_f64, f64);
eval_fn!(zo_function_f32, f32);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ZoState>()?;
    m.add_function(wrap_pyfunction!(zo_function_f64, m)?)?;
    m.add_function(wrap_pyfunction!(zo_function_f32, m)?)?;
    Ok(())
}
