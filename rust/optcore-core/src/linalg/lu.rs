//! Dense LU factorisation with partial pivoting, in f64, for the small linear systems of the
//! native operators (the Gram matrix `A Aᵀ` of an affine set, `I + λL` of a linear resolvent).
//! Factor once, solve many times.

use crate::error::{OptError, Result};

/// `P A = L U` of a square matrix, stored compactly (unit-diagonal `L` below, `U` on and above
/// the diagonal), with the row permutation.
#[derive(Debug, Clone)]
pub struct Lu {
    n: usize,
    lu: Vec<f64>,
    perm: Vec<usize>,
}

impl Lu {
    /// Factors the row-major `n x n` matrix `a`. A pivot below `rel_tol * max|a_ij|` (the matrix
    /// is singular to working precision) is an [`OptError::InvalidInput`] naming `what`.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN-aware: a NaN pivot is rejected
    pub fn factor(a: &[f64], n: usize, rel_tol: f64, what: &str) -> Result<Self> {
        if a.len() != n * n {
            return Err(OptError::InvalidInput(format!("{what}: expected {n}x{n} entries, got {}", a.len())));
        }
        if !a.iter().all(|v| v.is_finite()) {
            return Err(OptError::InvalidInput(format!("{what} has non-finite entries")));
        }
        let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut lu = a.to_vec();
        let mut perm: Vec<usize> = (0..n).collect();
        for k in 0..n {
            // Partial pivoting: the largest entry of column k on or below the diagonal.
            let (p, pv) =
                (k..n).map(|i| (i, lu[i * n + k].abs())).fold((k, -1.0), |b, c| if c.1 > b.1 { c } else { b });
            if !(pv > rel_tol * scale) || scale == 0.0 {
                return Err(OptError::InvalidInput(format!("{what} is singular to working precision")));
            }
            if p != k {
                for j in 0..n {
                    lu.swap(k * n + j, p * n + j);
                }
                perm.swap(k, p);
            }
            let d = lu[k * n + k];
            for i in k + 1..n {
                let l = lu[i * n + k] / d;
                lu[i * n + k] = l;
                if l != 0.0 {
                    for j in k + 1..n {
                        lu[i * n + j] -= l * lu[k * n + j];
                    }
                }
            }
        }
        Ok(Lu { n, lu, perm })
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// Solves `A x = b`; `b` is overwritten by `x`.
    pub fn solve_in_place(&self, b: &mut [f64]) {
        let n = self.n;
        let mut y: Vec<f64> = self.perm.iter().map(|&p| b[p]).collect();
        for i in 0..n {
            let s = super::dot_lanes8(&self.lu[i * n..i * n + i], &y[..i]);
            y[i] -= s;
        }
        for i in (0..n).rev() {
            let s = super::dot_lanes8(&self.lu[i * n + i + 1..(i + 1) * n], &y[i + 1..]);
            y[i] = (y[i] - s) / self.lu[i * n + i];
        }
        b.copy_from_slice(&y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matvec(a: &[f64], x: &[f64]) -> Vec<f64> {
        let n = x.len();
        (0..n).map(|i| (0..n).map(|j| a[i * n + j] * x[j]).sum()).collect()
    }

    #[test]
    fn solves_a_system_that_needs_pivoting() {
        // a_00 = 0: without pivoting the first step divides by zero.
        let a = [0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 0.0, 1.0];
        let x = [1.0, -2.0, 0.5];
        let mut b = matvec(&a, &x);
        Lu::factor(&a, 3, 1e-14, "A").unwrap().solve_in_place(&mut b);
        for (u, v) in b.iter().zip(&x) {
            assert!((u - v).abs() < 1e-14, "{b:?}");
        }
    }

    #[test]
    fn random_systems_have_small_residuals() {
        let mut s = 12345u64;
        let mut rnd = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        for n in [1usize, 2, 7, 40] {
            let a: Vec<f64> = (0..n * n).map(|_| rnd()).collect();
            let x: Vec<f64> = (0..n).map(|_| rnd()).collect();
            let mut b = matvec(&a, &x);
            Lu::factor(&a, n, 1e-14, "A").unwrap().solve_in_place(&mut b);
            let r = matvec(&a, &b);
            let bb = matvec(&a, &x);
            let err = r.iter().zip(&bb).map(|(u, v)| (u - v).abs()).fold(0.0, f64::max);
            assert!(err < 1e-12, "n={n} err={err}");
        }
    }

    #[test]
    fn singular_matrix_is_an_error() {
        let a = [1.0, 2.0, 2.0, 4.0];
        assert!(matches!(Lu::factor(&a, 2, 1e-12, "A").unwrap_err(), OptError::InvalidInput(_)));
        assert!(Lu::factor(&[0.0; 4], 2, 1e-12, "A").is_err());
        assert!(Lu::factor(&[f64::NAN, 0.0, 0.0, 1.0], 2, 1e-12, "A").is_err());
    }
}
