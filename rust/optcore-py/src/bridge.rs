//! What every solver binding shares: running core work with the GIL released on the chosen
//! thread pool, turning panics and core errors into Python exceptions, and the observer that
//! re-takes the GIL to honour Ctrl-C and run the Python-side progress function.

use numpy::{IntoPyArray, PyArray1, PyArrayMethods};
use optcore_core::solver::{Cadence, Control, Due, Observer, Report, Termination};
use optcore_core::{OptError, Real};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

pyo3::import_exception!(optcore.exceptions, NumericalError);

/// Maps a core error onto the Python exception the public API documents.
pub fn core_err(e: OptError) -> PyErr {
    match e {
        OptError::InvalidInput(s) => PyValueError::new_err(s),
        OptError::Numerical(s) => NumericalError::new_err(s),
        OptError::Memory(s) => PyMemoryError::new_err(s),
    }
}

/// Runs `f` without the GIL on `workers` threads; a panic becomes a `RuntimeError` (it is a
/// bug: the core validates its inputs), never a crash.
pub fn run_detached<R: Send>(py: Python<'_>, workers: Option<usize>, f: impl FnOnce() -> R + Send) -> PyResult<R> {
    py.detach(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| optcore_core::parallel::with_workers(workers, f)))
    })
    .map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        PyRuntimeError::new_err(format!("internal error in optcore's core (please report it): {msg}"))
    })
}

/// Bridges [`Observer`] to Python. Every `check_every` iterations it takes the GIL, checks for
/// signals (Ctrl-C) and calls `progress(state: dict)`; in between it only checks signals, at
/// most every 0.2 s. `progress` returning `False` stops the run (status 99: the Python side
/// turns the user's `StopIteration` into that); an exception aborts it and is re-raised.
pub struct PyObserver {
    progress: Option<Py<PyAny>>,
    cadence: Cadence,
    last_signal_check: std::time::Instant,
    pub pending: Option<PyErr>,
}

impl PyObserver {
    pub fn new(progress: Option<Py<PyAny>>, check_every: usize) -> Self {
        PyObserver {
            progress,
            cadence: Cadence::new(check_every),
            last_signal_check: std::time::Instant::now(),
            pending: None,
        }
    }

    /// Re-raises a pending error (interrupt or callback exception).
    pub fn raise_pending(&mut self) -> PyResult<()> {
        match self.pending.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn call<T: Real + numpy::Element>(&mut self, py: Python<'_>, report: &Report<T>) -> PyResult<bool> {
        py.check_signals()?;
        let Some(cb) = &self.progress else { return Ok(true) };
        let d = PyDict::new(py);
        d.set_item("nit", report.nit)?;
        d.set_item("error", report.error)?;
        for (name, v) in &report.vectors {
            d.set_item(*name, PyArray1::from_slice(py, v))?;
        }
        for (name, x) in &report.scalars {
            d.set_item(*name, *x)?;
        }
        let r = cb.bind(py).call1((d,))?;
        // Only an explicit False stops the run.
        Ok(!r.is_instance_of::<pyo3::types::PyBool>() || r.is_truthy()?)
    }
}

impl<T: Real + numpy::Element> Observer<T> for PyObserver {
    fn observe(&mut self, nit: usize, report: &dyn Fn() -> Report<T>) -> Control {
        let due = self.cadence.poll(nit);
        if due == Due::Nothing {
            return Control::Continue;
        }
        Python::attach(|py| {
            let r = if due == Due::Callback { self.call(py, &report()) } else { py.check_signals().map(|_| true) };
            match r {
                Ok(true) => Control::Continue,
                Ok(false) => Control::Stop,
                Err(e) => {
                    self.pending = Some(e);
                    Control::Abort
                }
            }
        })
    }

    fn interrupted(&mut self) -> bool {
        if self.pending.is_some() {
            return true;
        }
        if self.last_signal_check.elapsed() < std::time::Duration::from_millis(200) {
            return false;
        }
        self.last_signal_check = std::time::Instant::now();
        Python::attach(|py| match py.check_signals() {
            Ok(()) => false,
            Err(e) => {
                self.pending = Some(e);
                true
            }
        })
    }
}

/// The termination's (status, detail message) for the Python side's result.
pub fn status_of(t: &Termination) -> (i32, String) {
    let detail = match t {
        Termination::Numerical(s) => s.clone(),
        _ => String::new(),
    };
    (t.status(), detail)
}

/// A core vector as a NumPy array with `shape` (moved, not copied).
pub fn to_array<'py, T: numpy::Element>(py: Python<'py>, v: Vec<T>, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    let arr = v.into_pyarray(py);
    Ok(arr.reshape(shape.to_vec())?.into_any())
}

/// Copies a 1-D array returned by a Python function (`what` names it in errors) into `out`,
/// which fixes the expected length and dtype.
pub fn copy_array_into<T: numpy::Element + Copy>(o: &Bound<'_, PyAny>, out: &mut [T], what: &str) -> PyResult<()> {
    let a = o
        .cast::<PyArray1<T>>()
        .map_err(|_| PyValueError::new_err(format!("{what} must return a 1-D array of the iterate's dtype")))?;
    let r = a.readonly();
    let s = r.as_slice()?;
    if s.len() != out.len() {
        return Err(PyValueError::new_err(format!("{what} returned {} values; expected {}", s.len(), out.len())));
    }
    out.copy_from_slice(s);
    Ok(())
}

/// A Python exception raised inside a core computation (a user's operator, objective or
/// oracle), kept until the core has returned. The one way every binding surfaces such errors:
/// the solver's Python callbacks go through [`Pending::call`], and the binding calls
/// [`Pending::raise`] (then [`PyObserver::raise_pending`]) before it reads the core's output.
#[derive(Default)]
pub struct Pending(std::sync::Mutex<Option<PyErr>>);

impl Pending {
    /// Takes the GIL and runs `f`; an exception is kept (the first one wins) and the core gets
    /// an error that ends the run. `what` names the callable in the core's error message.
    pub fn call<R>(&self, what: &str, f: impl FnOnce(Python<'_>) -> PyResult<R>) -> optcore_core::error::Result<R> {
        Python::attach(f).map_err(|e| {
            self.keep(e);
            OptError::InvalidInput(format!("the Python {what} raised an exception"))
        })
    }

    /// Keeps `e` unless an earlier exception is already kept.
    pub fn keep(&self, e: PyErr) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    /// The kept exception, if any (emptying the slot).
    pub fn take(&self) -> Option<PyErr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Re-raises the kept exception, if any.
    pub fn raise(&self) -> PyResult<()> {
        self.take().map_or(Ok(()), Err)
    }
}

/// Reads the method-specific `options` dict that the Python layer builds (every default and
/// every check resolved there): the one way bindings read options. A missing or `None` key is
/// `None`; a value of the wrong type is a `TypeError` naming `options['key']`.
pub struct OptionsDict<'a, 'py>(pub &'a Bound<'py, PyDict>);

impl<'py> OptionsDict<'_, 'py> {
    /// `options[key]` converted to `V`, or `None` when absent or `None`.
    pub fn get<V>(&self, key: &str) -> PyResult<Option<V>>
    where
        V: for<'a> FromPyObject<'a, 'py>,
    {
        match self.0.get_item(key)? {
            Some(v) if !v.is_none() => v.extract::<V>().map(Some).map_err(|e| {
                pyo3::exceptions::PyTypeError::new_err(format!("options[{key:?}]: {}", Into::<PyErr>::into(e)))
            }),
            _ => Ok(None),
        }
    }

    /// `options[key]`, which the Python layer always sets (a `KeyError` names it otherwise).
    pub fn require<V>(&self, key: &str) -> PyResult<V>
    where
        V: for<'a> FromPyObject<'a, 'py>,
    {
        self.get(key)?.ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(format!("options[{key:?}] is missing")))
    }
}

/// The dict a binding returns to the Python layer: the one way bindings build results.
/// `status` and `detail` come from the core's [`Termination`]; the rest is set by name.
pub struct ResultDict<'py>(pub Bound<'py, PyDict>);

impl<'py> ResultDict<'py> {
    /// A result carrying `termination`'s status and detail message.
    pub fn new(py: Python<'py>, termination: &Termination) -> PyResult<Self> {
        let d = PyDict::new(py);
        let (status, detail) = status_of(termination);
        d.set_item("status", status)?;
        d.set_item("detail", detail)?;
        Ok(ResultDict(d))
    }

    /// Sets `key` (chainable).
    pub fn set<V: IntoPyObject<'py>>(self, key: &str, value: V) -> PyResult<Self> {
        self.0.set_item(key, value)?;
        Ok(self)
    }

    /// Sets `key` to `v` as a NumPy array of `shape` (moved, not copied).
    pub fn array<T: numpy::Element>(self, key: &str, v: Vec<T>, shape: &[usize]) -> PyResult<Self> {
        let arr = to_array(self.0.py(), v, shape)?;
        self.0.set_item(key, arr)?;
        Ok(self)
    }

    pub fn into_dict(self) -> Bound<'py, PyDict> {
        self.0
    }
}

/// How a run reports and how many threads it uses: a dict `{"progress": callable or None,
/// "check_every": int, "workers": int or None}` from the Python layer.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct RunControl {
    #[pyo3(default)]
    pub progress: Option<Py<PyAny>>,
    pub check_every: usize,
    #[pyo3(default)]
    pub workers: Option<usize>,
}
