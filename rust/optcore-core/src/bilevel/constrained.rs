//! Native problems with a constrained lower level (for [`super::lvhba`]).
//!
//! * [`LlcToy`]: the synthetic problem of LV-HBA's paper (Section 5, "LLC"), `x ∈ ℝⁿ`,
//!   `y = (y₁, y₂) ∈ ℝ²ⁿ`: `f = ½‖x − y₂‖² + ½‖y₁ − a𝟏‖²`, `g = ½‖y₁‖² − xᵀy₁ + 𝟏ᵀy₂`,
//!   the coupled equality `h = −(𝟏ᵀx + 𝟏ᵀy) = 0`. The lower level is linear in `y₂` (its
//!   solution set is not a singleton); the optimistic solution is `x* = (a − 4)/10 𝟏`,
//!   `y₁* = x* + 𝟏`, `y₂* = −2x* − 𝟏`, `λ* = 1` (the paper's `a = 1`: `x* = −0.3 𝟏`).
//! * [`SvmDual`]: hyperparameter selection of a linear soft-margin SVM with one box bound
//!   per training sample: `x = C ∈ ℝⁿ`, `y = α ∈ ℝⁿ`,
//!   `g = ½‖Zᵀ(t∘α)‖² − 𝟏ᵀα` s.t. `0 ≤ α ≤ C` (the SVM dual; `h = (−α, α − C)`), and `f`
//!   the mean logistic loss of `w = Zᵀ(t∘α)` on the validation set.

use super::lvhba::Constrained;
use super::problems::sigmoid;
use crate::error::{OptError, Result};
use crate::real::Real;

/// The LLC toy (see the module docs).
pub struct LlcToy {
    pub n: usize,
    pub a: f64,
}

impl LlcToy {
    /// `(x*, y*, λ*)` in closed form.
    pub fn solution(&self) -> (Vec<f64>, Vec<f64>, f64) {
        let xs = (self.a - 4.0) / 10.0;
        let mut y = vec![xs + 1.0; self.n];
        y.extend(std::iter::repeat_n(-2.0 * xs - 1.0, self.n));
        (vec![xs; self.n], y, 1.0)
    }
}

impl<T: Real> Constrained<T> for LlcToy {
    fn dims(&self) -> (usize, usize, usize, usize) {
        (self.n, 2 * self.n, 1, 1)
    }
    fn grad_f(&self, x: &[T], y: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()> {
        let n = self.n;
        for i in 0..n {
            let d = x[i].as_f64() - y[n + i].as_f64();
            gx[i] = T::from_f64(d);
            gy[i] = T::from_f64(y[i].as_f64() - self.a);
            gy[n + i] = T::from_f64(-d);
        }
        Ok(())
    }
    fn grad_g(&self, x: &[T], y: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()> {
        let n = self.n;
        for i in 0..n {
            gx[i] = T::from_f64(-y[i].as_f64());
            gy[i] = T::from_f64(y[i].as_f64() - x[i].as_f64());
            gy[n + i] = T::one();
        }
        Ok(())
    }
    fn h(&self, x: &[T], y: &[T], out: &mut [T]) -> Result<()> {
        let s: f64 = x.iter().chain(y).map(|v| v.as_f64()).sum();
        out[0] = T::from_f64(-s);
        Ok(())
    }
    fn jac_t(&self, _x: &[T], _y: &[T], w: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()> {
        let v = T::from_f64(-w[0].as_f64());
        gx.iter_mut().chain(gy.iter_mut()).for_each(|e| *e = v);
        Ok(())
    }
    fn value_f(&self, x: &[T], y: &[T]) -> Option<Result<f64>> {
        let n = self.n;
        let s: f64 = (0..n)
            .map(|i| {
                let d = x[i].as_f64() - y[n + i].as_f64();
                let e = y[i].as_f64() - self.a;
                0.5 * (d * d + e * e)
            })
            .sum();
        Some(Ok(s))
    }
}

/// The SVM hyperparameter problem (see the module docs); dense row-major data.
pub struct SvmDual<T> {
    z_tr: Vec<T>,
    t_tr: Vec<f64>,
    z_val: Vec<T>,
    t_val: Vec<f64>,
    n: usize,
    nv: usize,
    p: usize,
}

/// Checks the data of an SVM problem ([`SvmDual`], [`super::svm_primal::SvmPrimal`]): `z_tr` of
/// `n_tr × p` and `z_val` of `n_val × p` entries (row-major), labels `±1`; returns `(n_tr, n_val)`.
pub(super) fn svm_data<T>(z_tr: &[T], t_tr: &[f64], z_val: &[T], t_val: &[f64], p: usize) -> Result<(usize, usize)> {
    let (n, nv) = (t_tr.len(), t_val.len());
    if p == 0 || n == 0 || nv == 0 || z_tr.len() != n * p || z_val.len() != nv * p {
        return Err(OptError::InvalidInput(format!(
            "SVM data: expected z_tr of n_tr × p = {n} × {p} and z_val of {nv} × {p} entries"
        )));
    }
    for (t, what) in [(t_tr, "y_tr"), (t_val, "y_val")] {
        if !t.iter().all(|&v| v == 1.0 || v == -1.0) {
            return Err(OptError::InvalidInput(format!("{what}: labels must be +1 or -1")));
        }
    }
    Ok((n, nv))
}

impl<T: Real> SvmDual<T> {
    /// `z_tr` is `n × p`, `z_val` is `n_val × p` (row-major); labels `±1`.
    pub fn new(z_tr: Vec<T>, t_tr: Vec<f64>, z_val: Vec<T>, t_val: Vec<f64>, p: usize) -> Result<Self> {
        let (n, nv) = svm_data(&z_tr, &t_tr, &z_val, &t_val, p)?;
        Ok(SvmDual { z_tr, t_tr, z_val, t_val, n, nv, p })
    }

    /// `w = Zᵀ(t∘α)`.
    fn weights(&self, alpha: &[T]) -> Vec<f64> {
        let mut w = vec![0.0; self.p];
        for (i, (&t, a)) in self.t_tr.iter().zip(alpha).enumerate() {
            let c = t * a.as_f64();
            if c != 0.0 {
                for (wj, zj) in w.iter_mut().zip(&self.z_tr[i * self.p..(i + 1) * self.p]) {
                    *wj += c * zj.as_f64();
                }
            }
        }
        w
    }

    /// `t∘(Z u)` into `out`, plus `shift`.
    fn back(&self, u: &[f64], shift: f64, out: &mut [T]) {
        for (i, (o, &t)) in out.iter_mut().zip(&self.t_tr).enumerate() {
            let s: f64 = self.z_tr[i * self.p..(i + 1) * self.p].iter().zip(u).map(|(z, w)| z.as_f64() * w).sum();
            *o = T::from_f64(t * s + shift);
        }
    }

    /// Validation margins `t_j z_jᵀw`.
    fn margins(&self, w: &[f64]) -> Vec<f64> {
        (0..self.nv)
            .map(|j| {
                let s: f64 = self.z_val[j * self.p..(j + 1) * self.p].iter().zip(w).map(|(z, w)| z.as_f64() * w).sum();
                self.t_val[j] * s
            })
            .collect()
    }
}

fn softplus(v: f64) -> f64 {
    if v > 0.0 {
        v + (-v).exp().ln_1p()
    } else {
        v.exp().ln_1p()
    }
}

impl<T: Real> Constrained<T> for SvmDual<T> {
    fn dims(&self) -> (usize, usize, usize, usize) {
        (self.n, self.n, 2 * self.n, 0)
    }
    fn grad_f(&self, _x: &[T], y: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()> {
        gx.iter_mut().for_each(|e| *e = T::zero());
        let w = self.weights(y);
        let mg = self.margins(&w);
        let mut u = vec![0.0; self.p];
        for (j, m) in mg.iter().enumerate() {
            let c = -self.t_val[j] * sigmoid(-m) / self.nv as f64;
            for (uk, zk) in u.iter_mut().zip(&self.z_val[j * self.p..(j + 1) * self.p]) {
                *uk += c * zk.as_f64();
            }
        }
        self.back(&u, 0.0, gy);
        Ok(())
    }
    fn grad_g(&self, _x: &[T], y: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()> {
        gx.iter_mut().for_each(|e| *e = T::zero());
        let w = self.weights(y);
        self.back(&w, -1.0, gy);
        Ok(())
    }
    fn h(&self, x: &[T], y: &[T], out: &mut [T]) -> Result<()> {
        let n = self.n;
        for i in 0..n {
            out[i] = T::from_f64(-y[i].as_f64());
            out[n + i] = T::from_f64(y[i].as_f64() - x[i].as_f64());
        }
        Ok(())
    }
    fn jac_t(&self, _x: &[T], _y: &[T], w: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()> {
        let n = self.n;
        for i in 0..n {
            gx[i] = T::from_f64(-w[n + i].as_f64());
            gy[i] = T::from_f64(w[n + i].as_f64() - w[i].as_f64());
        }
        Ok(())
    }
    fn value_f(&self, _x: &[T], y: &[T]) -> Option<Result<f64>> {
        let w = self.weights(y);
        let s: f64 = self.margins(&w).iter().map(|&m| softplus(-m)).sum();
        Some(Ok(s / self.nv as f64))
    }
}
