//! `optcore._core`: the private extension module. Thin by design: it converts arguments,
//! releases the GIL around the core's work, maps errors, and bridges the core's observers to
//! Python (Ctrl-C and callbacks). The public API, validation and documentation live in the
//! Python package.

use pyo3::prelude::*;

mod bilevel;
mod bridge;
mod fixed_point;
mod lp;
mod monotone;
mod ot;
mod ot_barycenter;
mod ot_grid;
mod zo;

mod kernels {
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

/// Names of the embedded CUDA kernel files (`kernels/*.cu`).
#[pyfunction]
fn kernel_names() -> Vec<&'static str> {
    kernels::KERNELS.iter().map(|(n, _)| *n).collect()
}

/// Source of an embedded CUDA kernel file, by file name (`"ot_sinkhorn.cu"`).
#[pyfunction]
fn kernel_source(name: &str) -> PyResult<&'static str> {
    kernels::KERNELS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).ok_or_else(|| {
        pyo3::exceptions::PyKeyError::new_err(format!(
            "no embedded kernel named {name:?}; available: {:?}",
            kernels::KERNELS.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        ))
    })
}

/// The SIMD level the CPU kernels run with on this machine ("avx2+fma" or "baseline").
#[pyfunction]
fn simd_level() -> &'static str {
    optcore_core::ot::kernels::simd_level()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(kernel_names, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_source, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    ot::register(m)?;
    ot_barycenter::register(m)?;
    fixed_point::register(m)?;
    monotone::register(m)?;
    lp::register(m)?;
    zo::register(m)?;
    bilevel::register(m)?;
    Ok(())
}
