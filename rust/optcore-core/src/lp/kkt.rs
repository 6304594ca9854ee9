//! KKT measurement on the unscaled problem: relative primal residual `‖Ax − Π(Ax)‖/(1 + ‖b‖)`,
//! dual `‖c − Aᵀy − λ‖/(1 + ‖c‖)` (λ the bound-feasible part of the reduced costs) and gap
//! `|p − d|/(1 + |p| + |d|)`, with the work vectors the checks fill.

use super::problem::{clamp, Lp, Norms, Output};
use super::scaling::diff_into;
use crate::parallel::chunked_sums;
use crate::solver::Termination;

/// The vectors the convergence checks fill, allocated once per solve: fresh vectors at every
/// check (a dozen of length m or n) make the allocator grow and trim its heap each time, and
/// faulting the pages back in costs a noticeable share of a large LP's run.
pub(super) struct Work {
    pub xu: Vec<f64>,
    pub yu: Vec<f64>,
    pub ax: Vec<f64>,
    pub at_y: Vec<f64>,
    pub reduced: Vec<f64>,
    pub dx: Vec<f64>,
    pub dy: Vec<f64>,
    pub dxu: Vec<f64>,
    pub dyu: Vec<f64>,
    pub at_dy: Vec<f64>,
    pub ray: Vec<f64>,
    pub a_ray: Vec<f64>,
}

impl Work {
    pub(super) fn new(m: usize, n: usize) -> Self {
        let (vn, vm) = (|| vec![0.0; n], || vec![0.0; m]);
        Work {
            xu: vn(),
            yu: vm(),
            ax: vm(),
            at_y: vn(),
            reduced: vn(),
            dx: vn(),
            dy: vm(),
            dxu: vn(),
            dyu: vm(),
            at_dy: vn(),
            ray: vn(),
            a_ray: vm(),
        }
    }
}

/// KKT quantities of an (unscaled) primal-dual pair.
#[derive(Clone, Copy)]
pub(super) struct Kkt {
    pub rel_primal: f64,
    pub rel_dual: f64,
    pub rel_gap: f64,
    pub pobj: f64,
    pub dobj: f64,
}

impl Kkt {
    /// All three relative errors are finite.
    pub(super) fn finite(&self) -> bool {
        self.rel_primal.is_finite() && self.rel_dual.is_finite() && self.rel_gap.is_finite()
    }

    /// All three relative errors are `<= tol`.
    pub(super) fn converged(&self, tol: f64) -> bool {
        self.rel_primal <= tol && self.rel_dual <= tol && self.rel_gap <= tol
    }

    /// The output at the unscaled `(x, y)` with reduced costs `reduced` and these errors, with
    /// its verdict `(termination, reason)` and counts `(nit, restarts)`.
    pub(super) fn output(
        self,
        (x, y, reduced): (Vec<f64>, Vec<f64>, Vec<f64>),
        (termination, reason): (Termination, String),
        (nit, restarts): (usize, usize),
    ) -> Output {
        Output {
            x,
            y,
            reduced,
            nit,
            termination,
            reason,
            rel_primal: self.rel_primal,
            rel_dual: self.rel_dual,
            rel_gap: self.rel_gap,
            primal_obj: self.pobj,
            dual_obj: self.dobj,
            restarts,
        }
    }
}

/// An unscaled primal-dual pair with its products `A x` and `Aᵀ y`.
pub(super) struct Pair<'a> {
    pub x: &'a [f64],
    pub y: &'a [f64],
    pub ax: &'a [f64],
    pub aty: &'a [f64],
}

/// The part of the reduced cost `r` of a variable at `x` that its bounds `[l, u]` carry (`λ`;
/// the rest is dual residual): `r > 0` needs a finite lower bound, `r < 0` an upper one, and
/// that bound must be near `x`, `|x − bound| ≤ |x|` (PDLP's rule). A bound far from `x` is
/// inactive: a reduced cost of rounding size (1e-16) on a bound of 1e12 would otherwise add
/// 1e-4 to the dual objective, a gap that no float64 iterate closes, and at an exact optimum
/// (complementary slackness: `r ≠ 0` only at its bound) both rules agree.
#[inline(always)]
pub(super) fn bound_part(r: f64, x: f64, l: f64, u: f64) -> f64 {
    let near = |b: f64| b.is_finite() && (x - b).abs() <= x.abs();
    if (r > 0.0 && near(l)) || (r < 0.0 && near(u)) {
        r
    } else {
        0.0
    }
}

/// The KKT errors of `p`, relative to `norms`; the reduced costs `c − Aᵀy` go to `reduced`.
pub(super) fn kkt(lp: &Lp, p: &Pair<'_>, norms: Norms, reduced: &mut [f64]) -> Kkt {
    let Pair { x, y, ax, aty } = *p;
    let mut pr = 0.0;
    for ((&v, &l), &u) in ax.iter().zip(&lp.lc).zip(&lp.uc) {
        let d = v - clamp(v, l, u);
        pr += d * d;
    }
    diff_into(reduced, &lp.c, aty);
    let reduced = &*reduced;
    let [mut du, mut dobj, pobj] = chunked_sums(reduced.len(), |range| {
        let (mut du, mut dobj, mut pobj) = (0.0, 0.0, 0.0);
        for j in range {
            let r = reduced[j];
            let (l, u) = (lp.lv[j], lp.uv[j]);
            let lam = bound_part(r, x[j], l, u);
            du += (r - lam) * (r - lam);
            if lam > 0.0 {
                dobj += l * lam;
            } else if lam < 0.0 {
                dobj += u * lam;
            }
            pobj += lp.c[j] * x[j];
        }
        [du, dobj, pobj]
    });
    for ((&yi, &l), &u) in y.iter().zip(&lp.lc).zip(&lp.uc) {
        if yi > 0.0 && l.is_finite() {
            dobj += l * yi;
        } else if yi < 0.0 && u.is_finite() {
            dobj += u * yi;
        } else if yi != 0.0 {
            // the sign the row cannot carry is dual infeasibility
            du += yi * yi;
        }
    }
    Kkt {
        rel_primal: pr.sqrt() / (1.0 + norms.b),
        rel_dual: du.sqrt() / (1.0 + norms.c),
        rel_gap: (pobj - dobj).abs() / (1.0 + pobj.abs() + dobj.abs()),
        pobj,
        dobj,
    }
}
