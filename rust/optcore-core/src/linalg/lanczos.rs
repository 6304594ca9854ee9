//! The spectral norm of a sparse matrix (the LP solver's step sizes): Lanczos on `AᵀA` for
//! its largest eigenvalue, with a tridiagonal eigenvalue by Sturm bisection.

use super::csr::Csr;
use super::{dot, norm};

/// An estimate of `‖A‖₂` that is never below it: Lanczos on `AᵀA` (its largest Ritz value
/// approaches `‖A‖₂²` from below, far faster than the power iteration, whose slow plateau a
/// little below the norm makes PDHG's steps too long, and in fewer products) with a 1% margin,
/// capped by the Schur bound
/// `sqrt(max row sum · max column sum)` of `|A|`, which always holds (and is about 1 after the
/// Pock–Chambolle pass).
pub fn spectral_norm(a: &Csr, at: &Csr) -> f64 {
    let n = a.ncols;
    if n == 0 || a.nrows == 0 || a.data.is_empty() {
        return 0.0;
    }
    let schur = (a.row_norms(1.0).into_iter().fold(0.0f64, f64::max)
        * a.col_norms(1.0).into_iter().fold(0.0f64, f64::max))
    .sqrt();
    (lanczos_max_eig(a, at).max(0.0).sqrt() * 1.01).min(schur)
}

/// The largest eigenvalue of `AᵀA` by Lanczos without reorthogonalisation (enough for the
/// extreme Ritz value, which converges from below), until it has not moved for 10 steps.
pub fn lanczos_max_eig(a: &Csr, at: &Csr) -> f64 {
    let n = a.ncols;
    let mut q: Vec<f64> = (0..n).map(|j| 1.0 + ((j * 7919) % 97) as f64 / 97.0).collect();
    let nq = norm(&q);
    q.iter_mut().for_each(|v| *v /= nq);
    let mut q_prev = vec![0.0; n];
    let (mut aq, mut w) = (vec![0.0; a.nrows], vec![0.0; n]);
    let (mut alpha, mut beta) = (Vec::new(), Vec::new());
    let mut history: Vec<f64> = Vec::new();
    let mut theta = 0.0;
    for _ in 0..n.min(1000) {
        a.matvec(&q, &mut aq);
        at.matvec(&aq, &mut w);
        let al = dot(&q, &w);
        let bp = beta.last().copied().unwrap_or(0.0);
        for ((wj, qj), pj) in w.iter_mut().zip(&q).zip(&q_prev) {
            *wj -= al * qj + bp * pj;
        }
        alpha.push(al);
        theta = tridiagonal_max_eig(&alpha, &beta);
        let b = norm(&w);
        history.push(theta);
        let k = history.len();
        // converged: no change over the last 10 steps, or an invariant subspace (exact)
        if b <= 1e-13 * theta.max(f64::MIN_POSITIVE) || (k > 10 && theta - history[k - 11] <= 1e-10 * theta) {
            break;
        }
        beta.push(b);
        std::mem::swap(&mut q_prev, &mut q);
        q.iter_mut().zip(&w).for_each(|(qj, wj)| *qj = wj / b);
    }
    theta
}

/// The largest eigenvalue of the symmetric tridiagonal matrix with diagonal `alpha` and
/// off-diagonal `beta`, by Sturm-sequence bisection.
pub fn tridiagonal_max_eig(alpha: &[f64], beta: &[f64]) -> f64 {
    let k = alpha.len();
    let off = |i: usize| if i < beta.len() { beta[i].abs() } else { 0.0 };
    let mut hi = (0..k).map(|i| alpha[i] + off(i) + if i > 0 { off(i - 1) } else { 0.0 }).fold(f64::MIN, f64::max);
    let mut lo = (0..k).map(|i| alpha[i] - off(i) - if i > 0 { off(i - 1) } else { 0.0 }).fold(f64::MAX, f64::min);
    // eigenvalues below x
    let below = |x: f64| -> usize {
        let mut count = 0;
        let mut d = 1.0;
        for (i, &a) in alpha.iter().enumerate() {
            let b2 = if i > 0 { off(i - 1).powi(2) } else { 0.0 };
            d = a - x - if i > 0 { b2 / d } else { 0.0 };
            if d == 0.0 {
                d = -1e-300;
            }
            if d < 0.0 {
                count += 1;
            }
        }
        count
    };
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi || hi - lo <= 1e-15 * hi.abs() {
            break;
        }
        if below(mid) == k {
            hi = mid
        } else {
            lo = mid
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_uniform as uniform;

    #[test]
    fn lanczos_matches_a_long_power_iteration() {
        // a random sparse 300 × 200 matrix with a nearly repeated top singular value
        let (m, n) = (300usize, 200usize);
        let mut rnd = uniform(12345);
        let (mut indptr, mut indices, mut data) = (vec![0], vec![], vec![]);
        for i in 0..m {
            for j in 0..n {
                if rnd() < 0.05 || i == j {
                    indices.push(j);
                    data.push(if i == j && i < 2 { 5.0 - 1e-4 * i as f64 } else { rnd() - 0.5 });
                }
            }
            indptr.push(data.len());
        }
        let a = Csr::new(m, n, indptr, indices, data).unwrap();
        let at = a.transpose();
        let theta = lanczos_max_eig(&a, &at);
        let mut v = vec![1.0; n];
        let (mut av, mut w, mut lam) = (vec![0.0; m], vec![0.0; n], 0.0);
        for _ in 0..200_000 {
            a.matvec(&v, &mut av);
            at.matvec(&av, &mut w);
            lam = norm(&w) / norm(&v);
            let s = norm(&w);
            v.iter_mut().zip(&w).for_each(|(x, y)| *x = y / s);
        }
        assert!((theta - lam).abs() <= 1e-9 * lam && theta <= lam * (1.0 + 1e-12), "{theta} vs {lam}");
        let est = spectral_norm(&a, &at);
        assert!(est >= lam.sqrt() && est <= 1.0101 * lam.sqrt(), "{est} vs {}", lam.sqrt());
    }
}
