//! Compressed sparse rows (f64): validated construction, transpose, a row-parallel product,
//! diagonal scaling and row norms (the LP solver's matrix; `design.rs` holds the bilevel
//! problems' data matrices, generic over the float type and dense or sparse).

use rayon::prelude::*;

use crate::error::{OptError, Result};

/// A CSR matrix (f64).
#[derive(Clone, Debug)]
pub struct Csr {
    pub nrows: usize,
    pub ncols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<usize>,
    pub data: Vec<f64>,
}

impl Csr {
    pub fn new(nrows: usize, ncols: usize, indptr: Vec<usize>, indices: Vec<usize>, data: Vec<f64>) -> Result<Self> {
        if indptr.len() != nrows + 1 || indptr[0] != 0 || indptr[nrows] != data.len() || indices.len() != data.len() {
            return Err(OptError::InvalidInput("CSR arrays are inconsistent".into()));
        }
        if indptr.windows(2).any(|w| w[0] > w[1]) || indices.iter().any(|&j| j >= ncols) {
            return Err(OptError::InvalidInput("CSR indices out of range or indptr not non-decreasing".into()));
        }
        if !data.iter().all(|v| v.is_finite()) {
            return Err(OptError::InvalidInput("the constraint matrix has NaN or infinite entries".into()));
        }
        Ok(Csr { nrows, ncols, indptr, indices, data })
    }

    pub fn transpose(&self) -> Csr {
        let mut counts = vec![0usize; self.ncols + 1];
        for &j in &self.indices {
            counts[j + 1] += 1;
        }
        for j in 0..self.ncols {
            counts[j + 1] += counts[j];
        }
        let mut next = counts.clone();
        let mut indices = vec![0usize; self.data.len()];
        let mut data = vec![0.0; self.data.len()];
        for i in 0..self.nrows {
            for k in self.indptr[i]..self.indptr[i + 1] {
                let j = self.indices[k];
                indices[next[j]] = i;
                data[next[j]] = self.data[k];
                next[j] += 1;
            }
        }
        Csr { nrows: self.ncols, ncols: self.nrows, indptr: counts, indices, data }
    }

    /// `out = self · x` (rows in parallel).
    pub fn matvec(&self, x: &[f64], out: &mut [f64]) {
        let f = |(i, o): (usize, &mut f64)| {
            let mut s = 0.0;
            for k in self.indptr[i]..self.indptr[i + 1] {
                s += self.data[k] * x[self.indices[k]];
            }
            *o = s;
        };
        if self.data.len() > 50_000 {
            out.par_iter_mut().enumerate().with_min_len(256).for_each(f);
        } else {
            out.iter_mut().enumerate().for_each(f);
        }
    }

    /// `A ← diag(dr) A diag(dc)`.
    pub fn scale(&mut self, dr: &[f64], dc: &[f64]) {
        for (i, &r) in dr.iter().enumerate().take(self.nrows) {
            for k in self.indptr[i]..self.indptr[i + 1] {
                self.data[k] *= r * dc[self.indices[k]];
            }
        }
    }

    /// Per row: `max |a_ij|` for `p = ∞`, else `Σ_j |a_ij|^p`.
    pub fn row_norms(&self, p: f64) -> Vec<f64> {
        (0..self.nrows)
            .map(|i| {
                let v = &self.data[self.indptr[i]..self.indptr[i + 1]];
                if p.is_infinite() {
                    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
                } else {
                    v.iter().map(|x| x.abs().powf(p)).sum::<f64>()
                }
            })
            .collect()
    }
}

