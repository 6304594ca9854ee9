//! The core's error type. The binding maps each variant onto a Python exception.

/// Errors a core routine can return. Not converging is *not* an error: it is a
/// [`crate::solver::Termination`].
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum OptError {
    /// An argument violates the routine's contract (shapes, signs, finiteness).
    /// Python raises `ValueError`; the public API validates first, so reaching this is a
    /// second line of defence.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A breakdown the method cannot recover from (Python: `optcore.NumericalError`).
    #[error("numerical breakdown: {0}")]
    Numerical(String),
    /// A buffer sized by the input could not be allocated (Python: `MemoryError`). Buffers
    /// sized by user input are allocated fallibly ([`crate::alloc`]) so that a request too
    /// large for the machine is an exception, never an abort of the interpreter.
    #[error("out of memory: {0}")]
    Memory(String),
}

pub type Result<T> = std::result::Result<T, OptError>;
