//! A data matrix `A` (`n × p`) stored dense (row-major) or in CSR form, read row by row.

use crate::error::{OptError, Result};
use crate::real::Real;

/// Dense row-major or CSR storage of an `n × p` matrix.
#[derive(Debug, Clone)]
pub enum Design<T> {
    Dense { data: Vec<T>, n: usize, p: usize },
    Csr { indptr: Vec<usize>, indices: Vec<usize>, data: Vec<T>, n: usize, p: usize },
}

impl<T: Real> Design<T> {
    pub fn dense(data: Vec<T>, n: usize, p: usize) -> Result<Self> {
        if data.len() != n * p || n == 0 || p == 0 {
            return Err(OptError::InvalidInput(format!("dense matrix: {} values for shape ({n}, {p})", data.len())));
        }
        if !data.iter().all(|v| v.is_finite()) {
            return Err(OptError::InvalidInput("data matrix contains non-finite values".into()));
        }
        Ok(Design::Dense { data, n, p })
    }

    pub fn csr(indptr: Vec<usize>, indices: Vec<usize>, data: Vec<T>, n: usize, p: usize) -> Result<Self> {
        let ok = n > 0
            && p > 0
            && indptr.len() == n + 1
            && indptr[0] == 0
            && indptr.windows(2).all(|w| w[0] <= w[1])
            && indptr[n] == data.len()
            && indices.len() == data.len()
            && indices.iter().all(|&j| j < p);
        if !ok {
            return Err(OptError::InvalidInput(format!("malformed CSR matrix of shape ({n}, {p})")));
        }
        if !data.iter().all(|v| v.is_finite()) {
            return Err(OptError::InvalidInput("data matrix contains non-finite values".into()));
        }
        Ok(Design::Csr { indptr, indices, data, n, p })
    }

    pub fn rows(&self) -> usize {
        match self {
            Design::Dense { n, .. } | Design::Csr { n, .. } => *n,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Design::Dense { p, .. } | Design::Csr { p, .. } => *p,
        }
    }

    /// Calls `f(j, a_ij)` for the stored entries of row `i`.
    #[inline]
    pub fn for_each(&self, i: usize, mut f: impl FnMut(usize, f64)) {
        match self {
            Design::Dense { data, p, .. } => {
                for (j, &a) in data[i * p..(i + 1) * p].iter().enumerate() {
                    f(j, a.as_f64());
                }
            }
            Design::Csr { indptr, indices, data, .. } => {
                for k in indptr[i]..indptr[i + 1] {
                    f(indices[k], data[k].as_f64());
                }
            }
        }
    }

    /// `Σ_j a_ij w_j`.
    #[inline]
    pub fn row_dot(&self, i: usize, w: &[T]) -> f64 {
        let mut s = 0.0;
        self.for_each(i, |j, a| s += a * w[j].as_f64());
        s
    }

    /// `out ← out + c a_i` (`out` of length `p`).
    #[inline]
    pub fn row_axpy(&self, i: usize, c: f64, out: &mut [f64]) {
        self.for_each(i, |j, a| out[j] += c * a);
    }

    /// `z_k = Σ_j a_ij W[j, k]` for `W` row-major `p × k`.
    #[inline]
    pub fn row_times(&self, i: usize, w: &[T], k: usize, z: &mut [f64]) {
        z.iter_mut().for_each(|v| *v = 0.0);
        self.for_each(i, |j, a| {
            for (zc, &wc) in z.iter_mut().zip(&w[j * k..(j + 1) * k]) {
                *zc += a * wc.as_f64();
            }
        });
    }

    /// `G[j, :] ← G[j, :] + a_ij u` for `G` row-major `p × k`.
    #[inline]
    pub fn row_outer(&self, i: usize, u: &[f64], g: &mut [f64]) {
        let k = u.len();
        self.for_each(i, |j, a| {
            for (gc, &uc) in g[j * k..(j + 1) * k].iter_mut().zip(u) {
                *gc += a * uc;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_csr_agree() {
        let dense = Design::dense(vec![1.0, 0.0, 2.0, 0.0, 3.0, 0.0], 2, 3).unwrap();
        let csr = Design::csr(vec![0, 2, 3], vec![0, 2, 1], vec![1.0, 2.0, 3.0], 2, 3).unwrap();
        let w = [0.5, -1.0, 2.0];
        for i in 0..2 {
            assert_eq!(dense.row_dot(i, &w), csr.row_dot(i, &w));
        }
        assert!(Design::csr(vec![0, 2, 3], vec![0, 5, 1], vec![1.0, 2.0, 3.0], 2, 3).is_err());
    }
}
