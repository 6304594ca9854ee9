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
    /// `Z[r, :] = Σ_j a_{rows[r], j} W[j, :]` for `W` row-major `p × k` and `Z` row-major
    /// `rows.len() × k`. Dense data is processed four rows at a time, so that each row of `W`
    /// is loaded once per four data rows.
    pub fn rows_times(&self, rows: &[usize], w: &[T], k: usize, z: &mut [f64]) {
        z.iter_mut().for_each(|v| *v = 0.0);
        match self {
            Design::Dense { data, p, .. } => {
                let p = *p;
                for (q, zq) in rows.chunks(4).zip(z.chunks_mut(4 * k)) {
                    if q.len() == 4 {
                        let x: [&[T]; 4] = std::array::from_fn(|r| &data[q[r] * p..(q[r] + 1) * p]);
                        let (z0, rest) = zq.split_at_mut(k);
                        let (z1, rest) = rest.split_at_mut(k);
                        let (z2, z3) = rest.split_at_mut(k);
                        for (j, wj) in w.chunks_exact(k).enumerate().take(p) {
                            let (a0, a1, a2, a3) =
                                (x[0][j].as_f64(), x[1][j].as_f64(), x[2][j].as_f64(), x[3][j].as_f64());
                            for c in 0..k {
                                let wc = wj[c].as_f64();
                                z0[c] += a0 * wc;
                                z1[c] += a1 * wc;
                                z2[c] += a2 * wc;
                                z3[c] += a3 * wc;
                            }
                        }
                    } else {
                        for (&i, zr) in q.iter().zip(zq.chunks_mut(k)) {
                            self.row_times(i, w, k, zr);
                        }
                    }
                }
            }
            Design::Csr { .. } => {
                for (&i, zr) in rows.iter().zip(z.chunks_mut(k)) {
                    self.row_times(i, w, k, zr);
                }
            }
        }
    }

    /// `G[j, :] += Σ_r a_{rows[r], j} U[r, :]` for `G` row-major `p × k`, `U` row-major
    /// `rows.len() × k` (four dense rows at a time, as [`Design::rows_times`]).
    pub fn rows_outer(&self, rows: &[usize], u: &[f64], k: usize, g: &mut [f64]) {
        match self {
            Design::Dense { data, p, .. } => {
                let p = *p;
                for (q, uq) in rows.chunks(4).zip(u.chunks(4 * k)) {
                    if q.len() == 4 {
                        let x: [&[T]; 4] = std::array::from_fn(|r| &data[q[r] * p..(q[r] + 1) * p]);
                        let (u0, u1, u2, u3) = (&uq[..k], &uq[k..2 * k], &uq[2 * k..3 * k], &uq[3 * k..4 * k]);
                        for (j, gj) in g.chunks_exact_mut(k).enumerate().take(p) {
                            let (a0, a1, a2, a3) =
                                (x[0][j].as_f64(), x[1][j].as_f64(), x[2][j].as_f64(), x[3][j].as_f64());
                            for c in 0..k {
                                gj[c] += a0 * u0[c] + a1 * u1[c] + a2 * u2[c] + a3 * u3[c];
                            }
                        }
                    } else {
                        for (&i, ur) in q.iter().zip(uq.chunks(k)) {
                            self.row_outer(i, ur, g);
                        }
                    }
                }
            }
            Design::Csr { .. } => {
                for (&i, ur) in rows.iter().zip(u.chunks(k)) {
                    self.row_outer(i, ur, g);
                }
            }
        }
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
        // Blocked products (five rows: one block of four and a remainder) against per-row ones.
        let data: Vec<f64> = (0..15).map(|v| (v as f64 * 0.37).sin()).collect();
        let d5 = Design::dense(data, 5, 3).unwrap();
        let w2 = [0.5, -1.0, 2.0, 0.1, 0.3, -0.7];
        let rows = [4, 0, 2, 3, 1];
        let mut z = vec![0.0; 10];
        d5.rows_times(&rows, &w2, 2, &mut z);
        let mut g = vec![0.0; 6];
        d5.rows_outer(&rows, &z, 2, &mut g);
        let mut g_ref = vec![0.0; 6];
        for (r, &i) in rows.iter().enumerate() {
            let mut zr = [0.0; 2];
            d5.row_times(i, &w2, 2, &mut zr);
            assert!((zr[0] - z[2 * r]).abs() < 1e-14 && (zr[1] - z[2 * r + 1]).abs() < 1e-14);
            d5.row_outer(i, &zr, &mut g_ref);
        }
        assert!(g.iter().zip(&g_ref).all(|(a, b)| (a - b).abs() < 1e-13));
        assert!(Design::csr(vec![0, 2, 3], vec![0, 5, 1], vec![1.0, 2.0, 3.0], 2, 3).is_err());
    }
}
