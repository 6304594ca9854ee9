//! The SVM experiment of LV-HBA's paper (Yao et al., ICLR 2024, Section 5) in its primal form,
//! a native problem for [`super::lvhba`]:
//!
//! * `x = c ∈ ℝⁿ`, one log-weight per training sample (the sample's weight is `e^{c_i}`);
//! * `y = (w, b, ξ) ∈ ℝ^{p+1+n}`: the weights, the intercept and the slacks;
//! * lower level `g(c, y) = ½‖w‖² + ½ Σᵢ e^{c_i} ξ_i²` subject to the margins
//!   `h_i(y) = 1 − ξ_i − t_i(z_iᵀw + b) ≤ 0` (a weighted squared-hinge SVM; the constraints do
//!   not involve `c`; `g` is strongly convex in `w` and `ξ`, and `b` is fixed by the margins);
//! * upper level `f(y) = Σ_j ℓ(t_j(z_jᵀw + b)/‖w‖)` over the validation set, with
//!   `ℓ(u) = lrelu(2σ(−5u) − 1)` (leaky slope 0.01): a smoothed 0-1 loss of the normalised margin
//!   (about 1 per misclassified sample, about −0.01 per well-classified one), the paper's choice.
//!
//! `f` depends on the direction of `(w, b)` only and is not defined at `w = 0`: the oracles
//! report a numerical error there.

use super::constrained::svm_data;
use super::lvhba::Constrained;
use super::problems::sigmoid;
use crate::error::{OptError, Result};
use crate::real::Real;

/// Slope of the leaky ReLU of the upper loss on its negative side.
const LEAK: f64 = 0.01;
/// Sharpness of the sigmoid of the upper loss.
const SHARP: f64 = 5.0;

/// The primal SVM hyperparameter problem (see the module docs); dense row-major data.
pub struct SvmPrimal<T> {
    z_tr: Vec<T>,
    t_tr: Vec<f64>,
    z_val: Vec<T>,
    t_val: Vec<f64>,
    n: usize,
    p: usize,
}

/// `ℓ(u)` and `ℓ'(u)` of the upper loss.
fn loss(u: f64) -> (f64, f64) {
    let s = sigmoid(-SHARP * u);
    let v = 2.0 * s - 1.0;
    let dv = -2.0 * SHARP * s * (1.0 - s);
    if v > 0.0 {
        (v, dv)
    } else {
        (LEAK * v, LEAK * dv)
    }
}

impl<T: Real> SvmPrimal<T> {
    /// `z_tr` is `n × p`, `z_val` is `n_val × p` (row-major, no intercept column: `b` is a
    /// variable of its own); labels `±1`.
    pub fn new(z_tr: Vec<T>, t_tr: Vec<f64>, z_val: Vec<T>, t_val: Vec<f64>, p: usize) -> Result<Self> {
        let (n, _) = svm_data(&z_tr, &t_tr, &z_val, &t_val, p)?;
        if !(z_tr.iter().chain(&z_val).all(|v| v.as_f64().is_finite())) {
            return Err(OptError::InvalidInput("SVM data: features must be finite".into()));
        }
        Ok(SvmPrimal { z_tr, t_tr, z_val, t_val, n, p })
    }

    /// `(w, b, ξ)` views of `y` as f64.
    fn split<'a>(&self, y: &'a [T]) -> (&'a [T], f64, &'a [T]) {
        (&y[..self.p], y[self.p].as_f64(), &y[self.p + 1..])
    }

    /// `t_i (z_iᵀw + b)` for the rows of `z` (training or validation).
    fn margin(&self, z: &[T], t: f64, w: &[T], b: f64) -> f64 {
        let s: f64 = z.iter().zip(w).map(|(a, c)| a.as_f64() * c.as_f64()).sum();
        t * (s + b)
    }

    /// `‖w‖`, or a numerical error at `w = 0` (where `f` is not defined).
    fn wnorm(&self, w: &[T]) -> Result<f64> {
        let r = crate::linalg::nrm2(w);
        if r > 0.0 && r.is_finite() {
            Ok(r)
        } else {
            Err(OptError::Numerical(format!(
                "the SVM's upper level divides the margins by ‖w‖ = {r}: start from w ≠ 0 (e.g. y0 = the problem's default start)"
            )))
        }
    }

    /// The validation rows: `(z_j, t_j)`.
    fn val_rows(&self) -> impl Iterator<Item = (&[T], f64)> {
        self.z_val.chunks_exact(self.p).zip(self.t_val.iter().copied())
    }
}

impl<T: Real> Constrained<T> for SvmPrimal<T> {
    fn dims(&self) -> (usize, usize, usize, usize) {
        (self.n, self.p + 1 + self.n, self.n, 0)
    }
    fn grad_f(&self, _x: &[T], y: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()> {
        gx.iter_mut().for_each(|e| *e = T::zero());
        gy.iter_mut().for_each(|e| *e = T::zero());
        let (w, b, _) = self.split(y);
        let r = self.wnorm(w)?;
        // ∇_w f = (1/r) Σ ℓ'_j t_j z_j − (Σ ℓ'_j m_j) w / r³, ∇_b f = (1/r) Σ ℓ'_j t_j.
        let mut u = vec![0.0; self.p];
        let (mut gb, mut gm) = (0.0, 0.0);
        for (z, t) in self.val_rows() {
            let m = self.margin(z, t, w, b);
            let d = loss(m / r).1;
            gb += d * t;
            gm += d * m;
            for (uk, zk) in u.iter_mut().zip(z) {
                *uk += d * t * zk.as_f64();
            }
        }
        let r3 = r * r * r;
        for k in 0..self.p {
            gy[k] = T::from_f64(u[k] / r - gm * w[k].as_f64() / r3);
        }
        gy[self.p] = T::from_f64(gb / r);
        Ok(())
    }
    fn grad_g(&self, x: &[T], y: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()> {
        let (w, _, xi) = self.split(y);
        for (k, v) in w.iter().enumerate() {
            gy[k] = *v;
        }
        gy[self.p] = T::zero();
        for i in 0..self.n {
            let (e, s) = (x[i].as_f64().exp(), xi[i].as_f64());
            gx[i] = T::from_f64(0.5 * e * s * s);
            gy[self.p + 1 + i] = T::from_f64(e * s);
        }
        Ok(())
    }
    fn h(&self, _x: &[T], y: &[T], out: &mut [T]) -> Result<()> {
        let (w, b, xi) = self.split(y);
        for (i, (z, o)) in self.z_tr.chunks_exact(self.p).zip(out.iter_mut()).enumerate() {
            *o = T::from_f64(1.0 - xi[i].as_f64() - self.margin(z, self.t_tr[i], w, b));
        }
        Ok(())
    }
    fn jac_t(&self, _x: &[T], _y: &[T], v: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()> {
        gx.iter_mut().for_each(|e| *e = T::zero());
        let mut u = vec![0.0; self.p];
        let mut gb = 0.0;
        for (i, z) in self.z_tr.chunks_exact(self.p).enumerate() {
            let c = -self.t_tr[i] * v[i].as_f64();
            gb += c;
            for (uk, zk) in u.iter_mut().zip(z) {
                *uk += c * zk.as_f64();
            }
            gy[self.p + 1 + i] = T::from_f64(-v[i].as_f64());
        }
        for (g, uk) in gy.iter_mut().zip(&u) {
            *g = T::from_f64(*uk);
        }
        gy[self.p] = T::from_f64(gb);
        Ok(())
    }
    fn value_f(&self, _x: &[T], y: &[T]) -> Option<Result<f64>> {
        let (w, b, _) = self.split(y);
        Some(self.wnorm(w).map(|r| self.val_rows().map(|(z, t)| loss(self.margin(z, t, w, b) / r).0).sum()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem() -> SvmPrimal<f64> {
        // 5 training and 4 validation samples in R².
        let z = vec![0.5, -1.0, 1.0, 0.3, -0.7, 0.2, 0.1, 0.9, -0.4, -0.6];
        let zv = vec![0.3, 0.4, -1.2, 0.5, 0.8, -0.1, -0.2, -0.9];
        SvmPrimal::new(z, vec![1.0, -1.0, 1.0, -1.0, 1.0], zv, vec![1.0, -1.0, 1.0, -1.0], 2).unwrap()
    }

    /// Central differences of `value` along every coordinate of `v`.
    fn fd(v: &[f64], value: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        (0..v.len())
            .map(|i| {
                let (mut a, mut b) = (v.to_vec(), v.to_vec());
                a[i] += 1e-6;
                b[i] -= 1e-6;
                (value(&a) - value(&b)) / 2e-6
            })
            .collect()
    }

    #[test]
    fn gradients_match_finite_differences() {
        let p = problem();
        let (dx, dy, m, _) = Constrained::<f64>::dims(&p);
        assert_eq!((dx, dy, m), (5, 8, 5));
        let x: Vec<f64> = (0..dx).map(|i| -0.3 + 0.2 * i as f64).collect();
        let y: Vec<f64> = (0..dy).map(|i| 0.4 - 0.15 * i as f64 + 0.05 * (i * i) as f64).collect();
        let (mut gx, mut gy) = (vec![0.0; dx], vec![0.0; dy]);
        p.grad_f(&x, &y, &mut gx, &mut gy).unwrap();
        let f = |y: &[f64]| p.value_f(&x, y).unwrap().unwrap();
        for (a, b) in gy.iter().zip(fd(&y, f)) {
            assert!((a - b).abs() < 1e-7, "grad_f {a} vs {b}");
        }
        assert!(gx.iter().all(|&v| v == 0.0));
        let g = |x: &[f64], y: &[f64]| {
            0.5 * y[..2].iter().map(|v| v * v).sum::<f64>()
                + 0.5 * x.iter().zip(&y[3..]).map(|(c, s)| c.exp() * s * s).sum::<f64>()
        };
        p.grad_g(&x, &y, &mut gx, &mut gy).unwrap();
        for (a, b) in gy.iter().zip(fd(&y, |y| g(&x, y))) {
            assert!((a - b).abs() < 1e-7, "grad_g y {a} vs {b}");
        }
        for (a, b) in gx.iter().zip(fd(&x, |x| g(x, &y))) {
            assert!((a - b).abs() < 1e-7, "grad_g x {a} vs {b}");
        }
        // J_yᵀv against the differences of vᵀh.
        let v = [0.3, -0.2, 0.5, 0.1, 0.7];
        p.jac_t(&x, &y, &v, &mut gx, &mut gy).unwrap();
        let vh = |y: &[f64]| {
            let mut h = vec![0.0; m];
            p.h(&x, y, &mut h).unwrap();
            h.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>()
        };
        for (a, b) in gy.iter().zip(fd(&y, vh)) {
            assert!((a - b).abs() < 1e-7, "jac {a} vs {b}");
        }
    }

    #[test]
    fn zero_weights_and_bad_data_are_errors() {
        let p = problem();
        let (mut gx, mut gy) = (vec![0.0; 5], vec![0.0; 8]);
        let y = vec![0.0; 8];
        assert!(matches!(p.grad_f(&[0.0; 5], &y, &mut gx, &mut gy), Err(OptError::Numerical(_))));
        assert!(matches!(p.value_f(&[0.0; 5], &y), Some(Err(OptError::Numerical(_)))));
        assert!(SvmPrimal::<f64>::new(vec![0.0; 3], vec![1.0; 2], vec![0.0; 2], vec![1.0], 2).is_err());
        assert!(SvmPrimal::<f64>::new(vec![0.0; 2], vec![2.0], vec![0.0; 2], vec![1.0], 2).is_err());
        assert!(SvmPrimal::<f64>::new(vec![f64::NAN; 2], vec![1.0], vec![0.0; 2], vec![1.0], 2).is_err());
    }
}
