//! The thread pool behind `workers=`.
//!
//! Work is always split into chunks whose boundaries depend on the problem size only, never
//! on the number of threads, and partial results are combined in a fixed order: the same
//! call gives bit-identical results whatever `workers` is.

/// Runs `f` on a pool of `workers` threads (`None`: rayon's global pool, one thread per core).
pub fn with_workers<R: Send>(workers: Option<usize>, f: impl FnOnce() -> R + Send) -> R {
    match workers {
        None => f(),
        Some(w) => match rayon::ThreadPoolBuilder::new().num_threads(w.max(1)).build() {
            Ok(pool) => pool.install(f),
            // A pool that cannot be built (thread limits) falls back to the global one:
            // the result is the same by construction, only the speed differs.
            Err(_) => f(),
        },
    }
}

/// Number of rows per block for a row-blocked pass over an `n`-row matrix: at least 32 rows,
/// at most 64 blocks. Depends on `n` alone (see the module docs).
pub fn row_block(n: usize) -> usize {
    n.div_ceil(64).max(32).min(n.max(1))
}
