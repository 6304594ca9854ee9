//! The optimality certificate of Mirror Sinkhorn (see `mirror.rs`): for convex `F`, any plan
//! `P` and any `(f, g)` with `f_i + g_j <= G_ij`, `G = ∇F(P)`, on the support of `a` and `b`,
//! `F(P) - F* <= <G, P> - <f, a> - <g, b>`. The row potentials come from the iteration; two
//! c-transforms make the pair feasible and tighten it.

use super::mirror::{Objective, OracleFn};
use crate::error::Result;
use crate::parallel::row_block;
use crate::real::Real;
use rayon::prelude::*;

/// What the optimality certificate needs (see the module comment).
pub(super) struct Certificate<'c, T> {
    pub(super) a: &'c [T],
    pub(super) b: &'c [T],
    pub(super) cost: Option<&'c [T]>,
    pub(super) objective: Objective<'c, T>,
    /// Row potentials `f` (units of `F`): any values give a valid bound, good ones a tight one.
    pub(super) f: &'c [f64],
}

impl<T: Real> Certificate<'_, T> {
    /// `<G, P> - <f, a> - <g, b>` at `plan` with `G = ∇F(plan)`, a bound on `F(plan) - F*`.
    /// `scratch` holds the oracle's gradient when there is one (called once, at `plan`).
    pub(super) fn gap<'f>(
        &self,
        plan: &[T],
        scratch: &mut [T],
        t: usize,
        grad: Option<&mut OracleFn<'f, T>>,
    ) -> Result<f64> {
        let (a, b) = (self.a, self.b);
        let (n, m) = (a.len(), b.len());
        let oracle = match grad {
            Some(gr) => {
                gr(t, plan, scratch)?;
                if !scratch.par_iter().all(|x| x.is_finite()) {
                    return Ok(f64::NAN);
                }
                Some(&scratch[..])
            }
            None => None,
        };
        let grad_at = |k: usize| -> f64 {
            let mut v = self.cost.map_or(0.0, |c| c[k].as_f64()) + oracle.map_or(0.0, |g| g[k].as_f64());
            match self.objective {
                Objective::Linear => {}
                Objective::Quadratic(r) => v += 2.0 * (plan[k].as_f64() - r[k].as_f64()),
                Objective::Kl(r) => v += plan[k].as_f64().ln() - r[k].as_f64().ln(),
            }
            v
        };
        let rb = row_block(n);
        let f0 = self.f;
        // g_j = min over the rows with a_i > 0 of G_ij - f_i (partial minima per row block).
        let parts: Vec<Vec<f64>> = (0..n.div_ceil(rb))
            .into_par_iter()
            .map(|blk| {
                let mut cm = vec![f64::INFINITY; m];
                for i in blk * rb..((blk + 1) * rb).min(n) {
                    if a[i] > T::zero() {
                        for (j, c) in cm.iter_mut().enumerate() {
                            let v = grad_at(i * m + j) - f0[i];
                            *c = if v < *c { v } else { *c };
                        }
                    }
                }
                cm
            })
            .collect();
        let mut g = vec![f64::INFINITY; m];
        for cm in &parts {
            g.iter_mut().zip(cm).for_each(|(x, &y)| *x = if y < *x { y } else { *x });
        }
        // f_i = min over the columns with b_j > 0 of G_ij - g_j (never below f0: a better bound),
        // and the row's share of <f, a> and of <G, P>.
        let sums: Vec<(f64, f64)> = (0..n)
            .into_par_iter()
            .map(|i| {
                let (mut fi, mut gp) = (f64::INFINITY, 0.0);
                for j in 0..m {
                    let gij = grad_at(i * m + j);
                    let x = plan[i * m + j].as_f64();
                    if x != 0.0 {
                        gp += gij * x;
                    }
                    if b[j] > T::zero() {
                        let v = gij - g[j];
                        fi = if v < fi { v } else { fi };
                    }
                }
                let fa = if a[i] > T::zero() { fi * a[i].as_f64() } else { 0.0 };
                (fa, gp)
            })
            .collect();
        let (fa, gp) = sums.iter().fold((0.0, 0.0), |(s, t), &(x, y)| (s + x, t + y));
        let gb: f64 = g.iter().zip(b).filter(|(_, bj)| **bj > T::zero()).map(|(gj, bj)| gj * bj.as_f64()).sum();
        let gap = gp - fa - gb;
        // Rounding can make a tight bound slightly negative; it is a bound on a nonnegative number.
        Ok(if gap.is_nan() { gap } else { gap.max(0.0) })
    }
}
