//! The thread pool behind `workers=`, and the rules that split parallel loops.
//!
//! Work that combines partial results (sums, maxima) is always split into chunks whose
//! boundaries depend on the problem size only, never on the number of threads, and the
//! partial results are combined in a fixed order: the same call gives bit-identical results
//! whatever `workers` is. [`row_block`] (row-blocked passes) and [`chunked`] (fixed chunks of
//! an index range) are those rules. [`balanced_bounds`] splits rows by work and may depend on
//! the thread count: it is for passes whose rows are independent (each output written by one
//! row), where the split changes the speed only.

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

/// Length of the fixed chunks of [`chunked`].
const CHUNK: usize = 1 << 14;

/// `f` on fixed chunks of `0..n` (in parallel when long), the results in chunk order: callers
/// combine them in that order, so that no result depends on the number of threads (a plain
/// rayon reduce would, and with it the iterations at which a run stops).
pub fn chunked<R: Send>(n: usize, f: impl Fn(std::ops::Range<usize>) -> R + Sync) -> Vec<R> {
    use rayon::prelude::*;
    if n <= 2 * CHUNK {
        vec![f(0..n)]
    } else {
        (0..n.div_ceil(CHUNK)).into_par_iter().map(|c| f(c * CHUNK..((c + 1) * CHUNK).min(n))).collect()
    }
}

/// [`chunked`] partial sums, added in chunk order.
pub fn chunked_sums<const K: usize>(n: usize, f: impl Fn(std::ops::Range<usize>) -> [f64; K] + Sync) -> [f64; K] {
    let mut out = [0.0; K];
    for p in chunked(n, f) {
        for k in 0..K {
            out[k] += p[k];
        }
    }
    out
}

/// `chunks + 1` boundaries splitting `0..n` into ranges of about equal work, where
/// `work_before(i)` is the (non-decreasing) work of the items before `i` and `total` that of
/// all: boundary `c` is the first item whose work before it reaches `total · c / chunks`.
pub fn balanced_bounds(n: usize, total: usize, chunks: usize, work_before: impl Fn(usize) -> usize) -> Vec<usize> {
    (0..=chunks)
        .map(|c| {
            let target = total * c / chunks;
            let (mut lo, mut hi) = (0usize, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if work_before(mid) < target {
                    lo = mid + 1
                } else {
                    hi = mid
                }
            }
            lo
        })
        .collect()
}
