//! Compressed sparse rows (f64 values, u32 column indices): validated construction, transpose,
//! a row-parallel product, fused row passes, diagonal scaling and row norms (the LP solver's
//! matrix; `design.rs` holds the bilevel problems' data matrices, generic over the float type
//! and dense or sparse).

use std::ops::Range;

use rayon::prelude::*;

use crate::error::{OptError, Result};
use crate::parallel::balanced_bounds;

/// A CSR matrix (f64). Column indices are `u32` (half the index traffic of `usize` in the
/// memory-bound products; at most 2³² − 1 columns).
#[derive(Clone, Debug)]
pub struct Csr {
    pub nrows: usize,
    pub ncols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub data: Vec<f64>,
}

/// Work (stored entries plus rows) below which a pass runs on the calling thread: waking the
/// rayon workers for each pass costs more than it saves on mid-size matrices.
const PARALLEL_WORK: usize = 150_000;

impl Csr {
    /// The nonzeros of a dense row-major matrix (small problems, tests).
    pub fn from_dense(rows: &[&[f64]]) -> Self {
        let (m, n) = (rows.len(), rows.first().map_or(0, |r| r.len()));
        let (mut indptr, mut indices, mut data) = (vec![0], vec![], vec![]);
        for r in rows {
            for (j, &v) in r.iter().enumerate() {
                if v != 0.0 {
                    indices.push(j as u32);
                    data.push(v);
                }
            }
            indptr.push(data.len());
        }
        Csr { nrows: m, ncols: n, indptr, indices, data }
    }

    pub fn new(nrows: usize, ncols: usize, indptr: Vec<usize>, indices: Vec<usize>, data: Vec<f64>) -> Result<Self> {
        if indptr.len() != nrows + 1 || indptr[0] != 0 || indptr[nrows] != data.len() || indices.len() != data.len() {
            return Err(OptError::InvalidInput("CSR arrays are inconsistent".into()));
        }
        if indptr.windows(2).any(|w| w[0] > w[1]) || indices.iter().any(|&j| j >= ncols) {
            return Err(OptError::InvalidInput("CSR indices out of range or indptr not non-decreasing".into()));
        }
        if ncols > u32::MAX as usize {
            return Err(OptError::InvalidInput(format!(
                "the matrix has {ncols} columns; at most 2^32 - 1 are supported"
            )));
        }
        if !data.iter().all(|v| v.is_finite()) {
            return Err(OptError::InvalidInput("the constraint matrix has NaN or infinite entries".into()));
        }
        let indices = indices.into_iter().map(|j| j as u32).collect();
        Ok(Csr { nrows, ncols, indptr, indices, data })
    }

    pub fn transpose(&self) -> Csr {
        let mut counts = vec![0usize; self.ncols + 1];
        for &j in &self.indices {
            counts[j as usize + 1] += 1;
        }
        for j in 0..self.ncols {
            counts[j + 1] += counts[j];
        }
        let mut next = counts.clone();
        let mut indices = vec![0u32; self.data.len()];
        let mut data = vec![0.0; self.data.len()];
        for i in 0..self.nrows {
            for k in self.indptr[i]..self.indptr[i + 1] {
                let j = self.indices[k] as usize;
                indices[next[j]] = i as u32;
                data[next[j]] = self.data[k];
                next[j] += 1;
            }
        }
        Csr { nrows: self.ncols, ncols: self.nrows, indptr: counts, indices, data }
    }

    /// `row_i · x`.
    #[inline(always)]
    pub fn row_dot(&self, i: usize, x: &[f64]) -> f64 {
        assert!(x.len() >= self.ncols && i < self.nrows);
        // SAFETY: just checked.
        unsafe { self.row_dot_unchecked(i, x) }
    }

    /// `row_i · x` without the bounds check (for loops that check once for all rows).
    ///
    /// # Safety
    /// `i < nrows` and `x.len() >= ncols`.
    #[inline(always)]
    pub unsafe fn row_dot_unchecked(&self, i: usize, x: &[f64]) -> f64 {
        // SAFETY: `new`/`transpose`/`from_dense` guarantee indptr is non-decreasing within
        // data's length and every index < ncols <= x.len(); the caller, i < nrows.
        unsafe {
            let (lo, hi) = (*self.indptr.get_unchecked(i), *self.indptr.get_unchecked(i + 1));
            let (mut s0, mut s1) = (0.0, 0.0);
            let mut k = lo;
            while k + 1 < hi {
                s0 += self.data.get_unchecked(k) * x.get_unchecked(*self.indices.get_unchecked(k) as usize);
                s1 += self.data.get_unchecked(k + 1) * x.get_unchecked(*self.indices.get_unchecked(k + 1) as usize);
                k += 2;
            }
            if k < hi {
                s0 += self.data.get_unchecked(k) * x.get_unchecked(*self.indices.get_unchecked(k) as usize);
            }
            s0 + s1
        }
    }

    /// Calls `f` on ranges of rows covering `0..nrows`: in parallel, in chunks of about equal
    /// stored entries, when the work is large enough; else once, on the calling thread.
    pub fn for_rows(&self, f: impl Fn(Range<usize>) + Sync) {
        let work = self.data.len() + self.nrows;
        let threads = rayon::current_num_threads();
        if work < PARALLEL_WORK || threads < 2 {
            f(0..self.nrows);
            return;
        }
        let chunks = (4 * threads).min(work / (PARALLEL_WORK / 4)).max(2);
        // chunks of about equal (entries + rows)
        let bounds = balanced_bounds(self.nrows, work, chunks, |i| self.indptr[i] + i);
        bounds.par_windows(2).for_each(|w| {
            if w[0] < w[1] {
                f(w[0]..w[1])
            }
        });
    }

    /// `out = self · x` (rows in parallel for large matrices).
    pub fn matvec(&self, x: &[f64], out: &mut [f64]) {
        assert!(x.len() >= self.ncols && out.len() >= self.nrows);
        let o = SharedMut::new(out);
        self.for_rows(|rows| {
            for i in rows {
                // SAFETY: for_rows hands out disjoint row ranges.
                unsafe { o.set(i, self.row_dot(i, x)) };
            }
        });
    }

    /// `A ← diag(dr) A diag(dc)`.
    pub fn scale(&mut self, dr: &[f64], dc: &[f64]) {
        for (i, &r) in dr.iter().enumerate().take(self.nrows) {
            for k in self.indptr[i]..self.indptr[i + 1] {
                self.data[k] *= r * dc[self.indices[k] as usize];
            }
        }
    }

    /// Per column: `max_i |a_ij|` for `p = ∞`, else `Σ_i |a_ij|^p` (without a transpose).
    pub fn col_norms(&self, p: f64) -> Vec<f64> {
        let mut out = vec![0.0f64; self.ncols];
        for (&j, &v) in self.indices.iter().zip(&self.data) {
            let o = &mut out[j as usize];
            if p.is_infinite() {
                *o = o.max(v.abs());
            } else if p == 1.0 {
                *o += v.abs();
            } else {
                *o += v.abs().powf(p);
            }
        }
        out
    }

    /// Per row: `max |a_ij|` for `p = ∞`, else `Σ_j |a_ij|^p`.
    pub fn row_norms(&self, p: f64) -> Vec<f64> {
        (0..self.nrows)
            .map(|i| {
                let v = &self.data[self.indptr[i]..self.indptr[i + 1]];
                if p.is_infinite() {
                    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
                } else if p == 1.0 {
                    v.iter().map(|x| x.abs()).sum::<f64>()
                } else {
                    v.iter().map(|x| x.abs().powf(p)).sum::<f64>()
                }
            })
            .collect()
    }
}

/// A mutable slice shared by the disjoint row ranges of [`Csr::for_rows`]: each range writes
/// only its own indices.
#[derive(Clone, Copy)]
pub struct SharedMut {
    ptr: *mut f64,
    len: usize,
}

// SAFETY: used only through `set`/`get` on indices owned by one row range at a time.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    pub fn new(v: &mut [f64]) -> Self {
        SharedMut { ptr: v.as_mut_ptr(), len: v.len() }
    }

    /// # Safety
    /// `i < len`, the slice outlives the pass, and no other range touches index `i`.
    #[inline(always)]
    pub unsafe fn set(&self, i: usize, v: f64) {
        debug_assert!(i < self.len);
        *self.ptr.add(i) = v;
    }

    /// The elements `r` as a mutable slice.
    ///
    /// # Safety
    /// `r` lies within `0..len`, the slice outlives the use, and no other range overlapping `r`
    /// is in use at the same time.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, r: Range<usize>) -> &mut [f64] {
        assert!(r.start <= r.end && r.end <= self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start)
    }
}
