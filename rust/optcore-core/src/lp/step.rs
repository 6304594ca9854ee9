//! The PDHG step on the scaled problem: `T(x, y)` as two fused row passes, with the reflected
//! Halpern step `z⁺ = (k+1)/(k+2) (2 T z − z) + z₀/(k+2)` applied in the same passes when no
//! check needs `T z` itself.

use super::problem::{clamp, Csr};
use super::scaling::Scaled;
use crate::linalg::csr::SharedMut;

/// The iterate `z = (x, y)`, the Halpern anchor `z₀`, and the last PDHG output `T z = (x̄, ȳ)`
/// with `x̃ = 2x̄ − x` (scaled).
pub(super) struct Iterates {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub x_anchor: Vec<f64>,
    pub y_anchor: Vec<f64>,
    pub xb: Vec<f64>,
    pub xt: Vec<f64>,
    pub yb: Vec<f64>,
}

impl Iterates {
    /// Starts at `(x, y)`, which is also the anchor.
    pub(super) fn new(x: Vec<f64>, y: Vec<f64>) -> Self {
        let (n, m) = (x.len(), y.len());
        Iterates {
            x_anchor: x.clone(),
            y_anchor: y.clone(),
            x,
            y,
            xb: vec![0.0; n],
            xt: vec![0.0; n],
            yb: vec![0.0; m],
        }
    }

    /// The Halpern step that a pass without `fused` left out, from `x̃` and `ȳ`.
    pub(super) fn halpern_step(&mut self, (wa, wt): (f64, f64)) {
        for j in 0..self.x.len() {
            self.x[j] = wt * self.xt[j] + wa * self.x_anchor[j];
        }
        for i in 0..self.y.len() {
            self.y[i] = wt * (2.0 * self.yb[i] - self.y[i]) + wa * self.y_anchor[i];
        }
    }

    /// Restarts at `T z`: the iterate and the anchor both move there.
    pub(super) fn restart_at_output(&mut self) {
        self.x.copy_from_slice(&self.xb);
        self.y.copy_from_slice(&self.yb);
        self.x_anchor.copy_from_slice(&self.xb);
        self.y_anchor.copy_from_slice(&self.yb);
    }
}

/// Step sizes `τ = η/ω`, `σ = ηω`, the Halpern weights `(wa, wt) = (1/(k+2), (k+1)/(k+2))`, and
/// whether the Halpern step is fused into the passes.
#[derive(Clone, Copy)]
pub(super) struct Step {
    pub tau: f64,
    pub sigma: f64,
    pub wa: f64,
    pub wt: f64,
    pub fused: bool,
}

/// One PDHG evaluation `T(x, y)` on the scaled problem, as two fused row passes: over the rows
/// of Aᵀ (`aty_j`, then `x̄_j` and `x̃_j = 2x̄_j − x_j` at once) and over the rows of A (`(A x̃)_i`,
/// then `ȳ_i`). With `fused`, the reflected Halpern step is applied in the same passes
/// (`x ← wt·x̃ + wa·x₀`, `y ← wt·(2ȳ − y) + wa·y₀`) and `xb`/`yb` are not written; without,
/// `x`, `y` stay and `xb`, `xt`, `yb` hold `T z` and `x̃`.
pub(super) fn pdhg_step(s: &Scaled, step: Step, it: &mut Iterates) {
    let Step { tau, sigma, wa, wt, fused } = step;
    let w = (wa, wt);
    let Iterates { x, y, x_anchor: xa, y_anchor: ya, xb, xt, yb } = it;
    let (xa, ya): (&[f64], &[f64]) = (xa, ya);
    let (m, n) = (s.a.nrows, s.a.ncols);
    assert!(x.len() == n && xa.len() == n && xb.len() == n && xt.len() == n && s.c.len() == n);
    assert!(y.len() == m && ya.len() == m && yb.len() == m && s.lc.len() == m && s.uc.len() == m);
    assert!(s.lv.len() == n && s.uv.len() == n && s.at.nrows == n && s.at.ncols == m);
    let (xs, xts, xbs) = (SharedMut::new(x), SharedMut::new(xt), SharedMut::new(xb));
    let yr: &[f64] = y;
    // Each range of rows gets its own disjoint output slices: as function arguments they are
    // known not to alias the inputs, so the compiler keeps every pointer in a register rather
    // than reloading it through the captured SharedMut pointers at each row.
    s.at.for_rows(|r| {
        // SAFETY: for_rows hands out disjoint ranges within 0..n; every slice has length n.
        let (x, xt, xb) = unsafe { (xs.slice(r.clone()), xts.slice(r.clone()), xbs.slice(r.clone())) };
        let (c, xa) = (&s.c[r.clone()], &xa[r.clone()]);
        macro_rules! pass {
            ($bounds:expr) => {
                PrimalPass { at: &s.at, first: r.start, y: yr, c, bounds: $bounds, tau, w, xa }
            };
        }
        match (s.uniform_box, fused) {
            (Some((l, u)), true) => primal_rows::<true, _>(pass!(move |_| (l, u)), x, xt, xb),
            (Some((l, u)), false) => primal_rows::<false, _>(pass!(move |_| (l, u)), x, xt, xb),
            (None, f) => {
                let (lv, uv) = (&s.lv[r.clone()], &s.uv[r.clone()]);
                let b = move |k: usize| (lv[k], uv[k]);
                if f {
                    primal_rows::<true, _>(pass!(b), x, xt, xb)
                } else {
                    primal_rows::<false, _>(pass!(b), x, xt, xb)
                }
            }
        }
    });
    let (ys, ybs) = (SharedMut::new(y), SharedMut::new(yb));
    let xtr: &[f64] = xt;
    s.a.for_rows(|r| {
        // SAFETY: as above, within 0..m.
        let (y, yb) = unsafe { (ys.slice(r.clone()), ybs.slice(r.clone())) };
        let (lc, uc, ya) = (&s.lc[r.clone()], &s.uc[r.clone()], &ya[r.clone()]);
        let pass = DualPass { a: &s.a, first: r.start, xt: xtr, lc, uc, sigma, w, ya };
        if fused {
            dual_rows::<true>(pass, y, yb)
        } else {
            dual_rows::<false>(pass, y, yb)
        }
    });
}

/// The inputs of [`primal_rows`]: the columns `first..first + c.len()` (rows of `at`), with
/// `c`, `bounds` and `xa` indexed from `first`.
struct PrimalPass<'a, B> {
    at: &'a Csr,
    first: usize,
    y: &'a [f64],
    c: &'a [f64],
    bounds: B,
    tau: f64,
    w: (f64, f64),
    xa: &'a [f64],
}

/// The primal half of [`pdhg_step`] on the columns of `p`; the outputs are indexed from
/// `p.first`.
#[inline(always)]
fn primal_rows<const FUSED: bool, B: Fn(usize) -> (f64, f64)>(
    p: PrimalPass<'_, B>,
    x: &mut [f64],
    xt: &mut [f64],
    xb: &mut [f64],
) {
    let PrimalPass { at, first, y, c, bounds, tau, w: (wa, wt), xa } = p;
    let len = x.len();
    assert!(c.len() == len && xa.len() == len && xt.len() == len && xb.len() == len);
    assert!(first + len <= at.nrows && y.len() >= at.ncols);
    for k in 0..len {
        // SAFETY: first + k < nrows, checked above; row_dot_unchecked's own conditions hold
        // by construction of `at` and y.len() >= ncols.
        let aty = unsafe { at.row_dot_unchecked(first + k, y) };
        let (l, u) = bounds(k);
        let xj = x[k];
        let xbj = clamp(xj - tau * (c[k] - aty), l, u);
        let xtj = 2.0 * xbj - xj;
        xt[k] = xtj;
        if FUSED {
            x[k] = wt * xtj + wa * xa[k];
        } else {
            xb[k] = xbj;
        }
    }
}

/// The inputs of [`dual_rows`]: the rows `first..first + lc.len()` of `a`, with `lc`, `uc`
/// and `ya` indexed from `first`.
struct DualPass<'a> {
    a: &'a Csr,
    first: usize,
    xt: &'a [f64],
    lc: &'a [f64],
    uc: &'a [f64],
    sigma: f64,
    w: (f64, f64),
    ya: &'a [f64],
}

/// The dual half of [`pdhg_step`] on the rows of `p`; the outputs are indexed from `p.first`.
#[inline(always)]
fn dual_rows<const FUSED: bool>(p: DualPass<'_>, y: &mut [f64], yb: &mut [f64]) {
    let DualPass { a, first, xt, lc, uc, sigma, w: (wa, wt), ya } = p;
    let len = y.len();
    assert!(lc.len() == len && uc.len() == len && ya.len() == len && yb.len() == len);
    assert!(first + len <= a.nrows && xt.len() >= a.ncols);
    for k in 0..len {
        // SAFETY: as in primal_rows.
        let ax = unsafe { a.row_dot_unchecked(first + k, xt) };
        let yi = y[k];
        let v = ax - yi / sigma;
        let ybi = yi - sigma * (ax - clamp(v, lc[k], uc[k]));
        if FUSED {
            y[k] = wt * (2.0 * ybi - yi) + wa * ya[k];
        } else {
            yb[k] = ybi;
        }
    }
}
