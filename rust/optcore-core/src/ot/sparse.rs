//! Sparsity-constrained and quadratically regularized optimal transport (Liu, Puigcerver &
//! Blondel, AISTATS 2023) by L-BFGS on the smooth dual or semi-dual.
//!
//! # The problem
//!
//! Over plans `T` with marginals `a` (rows, length `n`) and `b` (columns, length `m`):
//! `min Σ_j <t_j, c_j> + (γ/2) ||t_j||²` subject to `||t_j||_0 <= k` for every column `t_j`.
//! `k >= n` is quadratically regularized OT; `k = 1` recovers unregularized OT on problems whose
//! optimum is a map. The constraint makes the primal non-convex; its two smooth relaxations
//! below are concave and are maximized here.
//!
//! - **Dual** over `(α, β)`: `D = <α, a> + <β, b> - Σ_j δ_k(α + β_j - c_j)` with
//!   `δ_k(s) = (1/2γ) Σ_{top k of s} [s_i]_+²`; the plan column is `t_j = [s]_+ / γ` on the
//!   top-`k` support, and `∇D = (a - T 1, b - T^T 1)`: the gradient is the marginal residual.
//! - **Semi-dual** over `α`: `S = <α, a> - Σ_j b_j max_{y ∈ Δ, ||y||_0 <= k} (y^T x_j -
//!   (γ b_j / 2) ||y||²)` with `x_j = α - c_j`; the maximizer `y_j` is the top-`k` simplex
//!   projection of `x_j / (γ b_j)` (Kyrillidis et al., 2013), `t_j = b_j y_j` (so column sums
//!   are exact) and `∇S = a - T 1`.
//!
//! - **`max_β D(α, β) = S(α)` exactly**, also where `k` binds: for fixed `α` the dual's
//!   column term in `β_j` keeps one top-`k` set (a shift does not reorder `α - c_j`), on which
//!   it is the quadratic-regularized term, and its maximizer is the semi-dual's simplex
//!   threshold on the same top-`k` support (see `Columns::beta_star`). [`Dual::Full`] therefore
//!   maximizes `D` by partial maximization: L-BFGS on `α ↦ max_β D(α, β)` (which is `S`, with
//!   gradient `∇_α D(α, β*(α)) = a - T 1` by Danskin), then returns `(α, β*(α))`, the plan
//!   `[α + β*_j - c_j]_+ / γ` on each column's top `k` and `D` evaluated there. L-BFGS on `(α,
//!   β)` jointly needed 2 to 3 times the iterations (it has to learn the `α`–`β` coupling that
//!   the elimination solves exactly).
//!
//! One evaluation is one pass over the cost, column by column (the cost is transposed once):
//! only the entries that can be nonzero are kept (`s_i > 0` for the dual; `x_i / (γ b_j) >
//! max - 1` for the semi-dual, since the simplex threshold is at least `max - 1`), the top `k`
//! of those are found by partial selection (`select_nth_unstable`, O(n) per column) and only
//! they are sorted (O(k log k)). Columns run in parallel in fixed blocks whose outputs are
//! combined in column order, so results are bit-identical for any number of threads.
//!
//! # L-BFGS
//!
//! The concave objective is maximized by minimizing its negative with the two-loop recursion
//! (memory [`SparseOptions::memory`], initial scaling `s^T y / y^T y`) and a weak-Wolfe line
//! search by bracketing and bisection (Lewis & Overton): Armijo `c1 = 1e-4`, curvature
//! `c2 = 0.9`, which keeps `s^T y > 0` on these piecewise-quadratic objectives. A failed search
//! restarts once from the steepest-descent direction before the run ends with status 4. Dual
//! variables are kept in f64 whatever the dtype of the cost.
//!
//! # What the tolerance means
//!
//! `tol` bounds `||T 1 - a||_1 + ||T^T 1 - b||_1`, which for both objectives is the L1 norm of
//! the residual the gradient is made of; the run stops when it holds and it is re-measured, in
//! f64, on the returned plan (of the dtype), which alone decides `Converged`.

use crate::alloc::{checked_len, try_zeroed};
use crate::error::{OptError, Result};
use crate::real::Real;
use crate::solver::{Control, Observer, Report, Termination};
use rayon::prelude::*;
use std::cmp::Ordering;

/// Which concave relaxation is maximized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dual {
    /// The semi-dual over `α` (n variables; column sums of the plan exact).
    Semi,
    /// The dual over `(α, β)`, maximized with `β = β*(α)` eliminated exactly (the iterates
    /// in `α` are the semi-dual's; the result carries `β*` and the dual's plan and value).
    Full,
}

/// Options of [`sparse_ot`].
#[derive(Debug, Clone)]
pub struct SparseOptions {
    /// Nonzeros allowed per column (`>= 1`; `>= n` means no constraint).
    pub k: usize,
    /// The quadratic regularization `γ > 0`.
    pub reg: f64,
    pub dual: Dual,
    /// Bound on the L1 marginal error of the returned plan.
    pub tol: f64,
    /// L-BFGS iterations.
    pub maxiter: usize,
    /// L-BFGS memory (pairs kept).
    pub memory: usize,
}

/// The result: the plan in compressed sparse column form (`indptr` of length `m + 1`, row
/// `indices` sorted within each column), the dual variables and what was measured on the plan.
pub struct SparseOutput<T> {
    pub indptr: Vec<usize>,
    pub indices: Vec<usize>,
    pub data: Vec<T>,
    pub alpha: Vec<f64>,
    /// `β` of the dual (empty for the semi-dual).
    pub beta: Vec<f64>,
    /// The maximized dual or semi-dual objective at `(alpha, beta)`.
    pub dual_value: f64,
    /// `<T, M>` of the returned plan.
    pub cost: f64,
    /// `<T, M> + (γ/2) ||T||²` of the returned plan.
    pub primal: f64,
    pub marginal_error: f64,
    pub nit: usize,
    /// Objective evaluations (passes over the cost).
    pub nfev: usize,
    pub termination: Termination,
}

/// Columns per parallel block (fixed, so the combination order never depends on threads).
const COL_BLOCK: usize = 16;

/// The problem as the evaluations see it: the cost transposed to column-major (`m x n`).
struct Columns<'a, T> {
    ct: Vec<T>,
    a: &'a [T],
    b: &'a [T],
    n: usize,
    m: usize,
    k: usize,
    reg: f64,
    dual: Dual,
}

/// One evaluation: `-objective`, its gradient, the plan it implies (CSC, f64) and the plan's
/// L1 marginal error.
#[derive(Clone, Default)]
struct Eval {
    f: f64,
    grad: Vec<f64>,
    err: f64,
    ptr: Vec<usize>,
    idx: Vec<usize>,
    val: Vec<f64>,
}

/// A block of columns as evaluated: its objective term, the end of each column's entries in
/// the list, and the (row, value) entries.
type Block = (f64, Vec<usize>, Vec<(usize, f64)>);

/// Keeps the `k` largest of `cand` (by value, ties by index), sorted decreasingly.
fn top_k(cand: &mut Vec<(f64, usize)>, k: usize) {
    let desc =
        |x: &(f64, usize), y: &(f64, usize)| y.0.partial_cmp(&x.0).unwrap_or(Ordering::Equal).then(x.1.cmp(&y.1));
    if cand.len() > k {
        cand.select_nth_unstable_by(k - 1, desc);
        cand.truncate(k);
    }
    cand.sort_unstable_by(desc);
}

/// The semi-dual's column at `x` (`z = (x - c) * scale`, `scale = 1 / (γ b_j)`): leaves in
/// `cand` the top-`k` candidates `(z_i, i)` sorted decreasingly and returns the threshold `τ`
/// of their simplex projection (`y = [z - τ]_+` sums to 1).
///
/// Only entries with `z > max z - 1` can be positive (`τ >= max z - 1`). One pass keeps the
/// entries within 1 of the running maximum, blocks of 8 at a time (a block whose largest entry
/// is not within 1 is skipped after one vectorizable comparison); the final filter against the
/// overall maximum leaves exactly the set, in index order, that two passes (maximum, then
/// filter) would, so the arithmetic and the selection are those of the two-pass form.
fn semi_support<T: Real>(x: &[f64], c: &[T], scale: f64, k: usize, cand: &mut Vec<(f64, usize)>) -> f64 {
    cand.clear();
    let mut zmax = f64::NEG_INFINITY;
    let keep = |z: f64, zmax: f64| z > zmax - 1.0 || z >= zmax;
    for (blk, (xb, cb)) in x.chunks(8).zip(c.chunks(8)).enumerate() {
        let mut zs = [0.0f64; 8];
        let mut bmax = f64::NEG_INFINITY;
        for (q, (xi, ci)) in xb.iter().zip(cb).enumerate() {
            let z = (xi - ci.as_f64()) * scale;
            zs[q] = z;
            bmax = if z > bmax { z } else { bmax };
        }
        if !keep(bmax, zmax) {
            continue;
        }
        for (q, &z) in zs[..xb.len()].iter().enumerate() {
            if keep(z, zmax) {
                zmax = zmax.max(z);
                cand.push((z, blk * 8 + q));
            }
        }
    }
    cand.retain(|&(z, _)| z > zmax - 1.0 || z == zmax);
    top_k(cand, k);
    // Simplex projection of the sorted candidates: the threshold τ of the largest r with
    // z_(r) > (Σ_{q<=r} z_(q) - 1) / r.
    let (mut cum, mut tau) = (0.0, 0.0);
    for (r, &(z, _)) in cand.iter().enumerate() {
        cum += z;
        let t = (cum - 1.0) / (r + 1) as f64;
        if z > t {
            tau = t;
        }
    }
    tau
}

impl<T: Real> Columns<'_, T> {
    /// Column `j` at the variables `x`: appends its plan entries (row, value) to `out` and
    /// returns its term of the objective (to be subtracted).
    fn column(&self, x: &[f64], j: usize, cand: &mut Vec<(f64, usize)>, out: &mut Vec<(usize, f64)>) -> f64 {
        let (n, reg) = (self.n, self.reg);
        let c = &self.ct[j * n..(j + 1) * n];
        cand.clear();
        match self.dual {
            Dual::Full => {
                let bj = x[n + j];
                for i in 0..n {
                    let s = x[i] + bj - c[i].as_f64();
                    if s > 0.0 {
                        cand.push((s, i));
                    }
                }
                top_k(cand, self.k);
                let mut term = 0.0;
                for &(s, i) in cand.iter() {
                    term += s * s;
                    out.push((i, s / reg));
                }
                term / (2.0 * reg)
            }
            Dual::Semi => {
                let bj = self.b[j].as_f64();
                if bj <= 0.0 {
                    return 0.0;
                }
                let scale = 1.0 / (reg * bj);
                let tau = semi_support(x, c, scale, self.k, cand);
                let (mut lin, mut sq) = (0.0, 0.0);
                for &(z, i) in cand.iter() {
                    let y = z - tau;
                    if y > 0.0 {
                        lin += y * (x[i] - c[i].as_f64());
                        sq += y * y;
                        out.push((i, bj * y));
                    }
                }
                bj * (lin - 0.5 * reg * bj * sq)
            }
        }
    }

    /// `β*_j(α)`: the maximizer of the dual over `β_j` at fixed `α` (`x`), for every column.
    ///
    /// The dual's column term `β b_j - δ_k(x + β 1)` with `x = α - c_j` keeps the same top-`k`
    /// set `K` of `x` for every `β` (adding `β` to every entry does not reorder them), so it is
    /// quadratic-regularized OT's term restricted to `K`: concave in `β`, with derivative
    /// `b_j - Σ_{i∈K} [x_i + β]_+ / γ`. Its zero `β* = -ν`, `Σ_{i∈K} [x_i - ν]_+ = γ b_j`, is
    /// the semi-dual's simplex threshold (`ν = γ b_j τ`), and `K` is the support the semi-dual's
    /// top-`k` simplex projection takes (Kyrillidis et al., 2013): the two columns' values are
    /// equal, `max_β D(α, β) = S(α)`. `ν` is solved here in the units of `x` (not of `z = x /
    /// (γ b_j)`) so that the plan `[x + β*]_+ / γ` sums to `b_j` to rounding. A column with
    /// `b_j = 0` has its supremum 0 only as `β → -∞`; `β_j = -max_i x_i` attains it.
    fn beta_star(&self, alpha: &[f64]) -> Vec<f64> {
        let (n, m, reg) = (self.n, self.m, self.reg);
        let blocks: Vec<Vec<f64>> = (0..m.div_ceil(COL_BLOCK))
            .into_par_iter()
            .map(|blk| {
                let mut cand = Vec::new();
                (blk * COL_BLOCK..((blk + 1) * COL_BLOCK).min(m))
                    .map(|j| {
                        let c = &self.ct[j * n..(j + 1) * n];
                        let bj = self.b[j].as_f64();
                        if bj <= 0.0 {
                            let xmax = (0..n).map(|i| alpha[i] - c[i].as_f64()).fold(f64::NEG_INFINITY, f64::max);
                            return -xmax;
                        }
                        let scale = 1.0 / (reg * bj);
                        let tau = semi_support(alpha, c, scale, self.k, &mut cand);
                        // The support of the projection, and ν from its entries in x units.
                        let (mut cum, mut r) = (0.0, 0usize);
                        for &(z, i) in cand.iter() {
                            if z - tau > 0.0 {
                                cum += alpha[i] - c[i].as_f64();
                                r += 1;
                            }
                        }
                        -(cum - reg * bj) / r.max(1) as f64
                    })
                    .collect()
            })
            .collect();
        blocks.concat()
    }

    /// `-objective` and everything else of [`Eval`] at `x`.
    fn eval(&self, x: &[f64]) -> Eval {
        let (n, m) = (self.n, self.m);
        let blocks: Vec<Block> = (0..m.div_ceil(COL_BLOCK))
            .into_par_iter()
            .map(|blk| {
                let (mut cand, mut out, mut ends) = (Vec::new(), Vec::new(), Vec::new());
                let mut term = 0.0;
                for j in blk * COL_BLOCK..((blk + 1) * COL_BLOCK).min(m) {
                    term += self.column(x, j, &mut cand, &mut out);
                    ends.push(out.len());
                }
                (term, ends, out)
            })
            .collect();
        let mut e = Eval { ptr: Vec::with_capacity(m + 1), ..Eval::default() };
        e.ptr.push(0);
        let mut rows = vec![0.0; n];
        let mut cols = vec![0.0; m];
        let mut penalty = 0.0;
        for (term, ends, out) in blocks {
            penalty += term;
            let mut start = 0;
            for end in ends {
                let j = e.ptr.len() - 1;
                let col = &mut out[start..end].to_vec();
                col.sort_unstable_by_key(|p| p.0);
                for &(i, v) in col.iter() {
                    rows[i] += v;
                    cols[j] += v;
                    e.idx.push(i);
                    e.val.push(v);
                }
                e.ptr.push(e.idx.len());
                start = end;
            }
        }
        let mut value = -penalty;
        e.grad = Vec::with_capacity(x.len());
        for i in 0..n {
            let ai = self.a[i].as_f64();
            value += x[i] * ai;
            e.grad.push(rows[i] - ai);
        }
        let col_err: f64 = (0..m).map(|j| (cols[j] - self.b[j].as_f64()).abs()).sum();
        if self.dual == Dual::Full {
            for j in 0..m {
                let bj = self.b[j].as_f64();
                value += x[n + j] * bj;
                e.grad.push(cols[j] - bj);
            }
        }
        e.f = -value;
        e.err = e.grad[..n].iter().map(|g| g.abs()).sum::<f64>() + col_err;
        e
    }
}

/// `x^T y`.
fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// The L-BFGS direction `-H g` by the two-loop recursion over the pairs `(s, y, 1 / y^T s)`.
fn direction(g: &[f64], pairs: &[(Vec<f64>, Vec<f64>, f64)]) -> Vec<f64> {
    let mut q: Vec<f64> = g.iter().map(|v| -v).collect();
    let mut alphas = Vec::with_capacity(pairs.len());
    for (s, y, rho) in pairs.iter().rev() {
        let al = rho * dot(s, &q);
        q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= al * yi);
        alphas.push(al);
    }
    if let Some((s, y, _)) = pairs.last() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|qi| *qi *= gamma);
    }
    for ((s, y, rho), al) in pairs.iter().zip(alphas.into_iter().rev()) {
        let be = rho * dot(y, &q);
        q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (al - be) * si);
    }
    q
}

/// Weak-Wolfe line search along `d` from `x` (value and gradient in `cur`): bracketing with
/// bisection and doubling, at most 40 evaluations (Armijo relaxed as in Hager & Zhang's
/// approximate Wolfe conditions where the objective's rounding hides the decrease). Returns the accepted point and evaluation.
fn line_search<T: Real>(
    cols: &Columns<'_, T>,
    x: &[f64],
    cur: &Eval,
    d: &[f64],
    t0: f64,
    nfev: &mut usize,
) -> Option<(Vec<f64>, Eval)> {
    let slope = dot(&cur.grad, d);
    if slope >= 0.0 || slope.is_nan() {
        return None;
    }
    let (mut lo, mut hi, mut t) = (0.0, f64::INFINITY, t0);
    for _ in 0..40 {
        let xt: Vec<f64> = x.iter().zip(d).map(|(xi, di)| xi + t * di).collect();
        let e = cols.eval(&xt);
        *nfev += 1;
        // Armijo, or Hager & Zhang's approximate Armijo once the decrease is below the
        // rounding of the objective (near the optimum, where the values stop resolving it).
        let dt = dot(&e.grad, d);
        let approx = e.f <= cur.f + 1e-12 * cur.f.abs().max(1e-300) && dt <= (2.0 * 1e-4 - 1.0) * slope;
        if !(e.f <= cur.f + 1e-4 * t * slope || approx) {
            hi = t;
        } else if dt < 0.9 * slope {
            lo = t;
        } else {
            return Some((xt, e));
        }
        t = if hi.is_finite() { 0.5 * (lo + hi) } else { 2.0 * lo };
        if hi - lo <= 1e-16 * hi.max(1.0) {
            break;
        }
    }
    None
}

/// Sparsity-constrained (or, with `k >= n`, quadratically regularized) OT on `a` (n), `b` (m)
/// and the row-major cost `cost` (n x m). Weights finite, non-negative, equal positive masses.
pub fn sparse_ot<T: Real>(
    a: &[T],
    b: &[T],
    cost: &[T],
    opts: &SparseOptions,
    obs: &mut dyn Observer<T>,
) -> Result<SparseOutput<T>> {
    let (n, m) = (a.len(), b.len());
    let bad = |s: &str| Err(OptError::InvalidInput(s.to_string()));
    if n == 0 || m == 0 {
        return bad("empty problem");
    }
    let nm = checked_len(n, m, "the cost")?;
    if cost.len() != nm {
        return bad("M must have shape (len(a), len(b))");
    }
    if opts.k == 0 {
        return bad("k must be at least 1");
    }
    if !(opts.reg > 0.0 && opts.reg.is_finite()) {
        return bad("reg must be positive and finite");
    }
    if !a.iter().chain(b).all(|&x| x.is_finite() && x >= T::zero()) {
        return bad("weights must be finite and non-negative");
    }
    if !cost.par_iter().all(|x| x.is_finite()) {
        return bad("M must be finite");
    }
    let mass: f64 = a.iter().map(|x| x.as_f64()).sum();
    let mass_b: f64 = b.iter().map(|x| x.as_f64()).sum();
    if mass <= 0.0 || ((mass - mass_b) / mass).abs() > 1e-6 {
        return bad("a and b must have the same positive total mass");
    }
    let mut ct: Vec<T> = try_zeroed(nm, "the transposed cost")?;
    ct.par_chunks_mut(COL_BLOCK * n).enumerate().for_each(|(blk, chunk)| {
        let j0 = blk * COL_BLOCK;
        let w = chunk.len() / n;
        for i in 0..n {
            let row = &cost[i * m + j0..i * m + j0 + w];
            for (jj, &v) in row.iter().enumerate() {
                chunk[jj * n + i] = v;
            }
        }
    });
    // Both duals run L-BFGS on the semi-dual: for `Dual::Full` it is the dual with `β`
    // eliminated exactly (`S(α) = max_β D(α, β)`, see `Columns::beta_star`), and its gradient
    // `a - T 1` is `∇_α D(α, β*(α))` (Danskin).
    let mut cols = Columns { ct, a, b, n, m, k: opts.k.min(n), reg: opts.reg, dual: Dual::Semi };

    let mut x = vec![0.0; n];
    let mut cur = cols.eval(&x);
    let mut nfev = 1;
    let mut pairs: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::new();
    let mut nit = 0;
    let mut termination = Termination::MaxIter;
    loop {
        if cur.err <= opts.tol {
            termination = Termination::Converged;
            break;
        }
        if !cur.f.is_finite() {
            termination = Termination::Numerical("the objective is not finite".into());
            break;
        }
        if nit >= opts.maxiter {
            break;
        }
        let gmax = cur.grad.iter().fold(0.0f64, |acc, g| acc.max(g.abs()));
        let steepest = |g: &[f64]| g.iter().map(|v| -v / gmax.max(f64::MIN_POSITIVE)).collect::<Vec<f64>>();
        let mut d = if pairs.is_empty() { steepest(&cur.grad) } else { direction(&cur.grad, &pairs) };
        let mut step = line_search(&cols, &x, &cur, &d, 1.0, &mut nfev);
        if step.is_none() && !pairs.is_empty() {
            pairs.clear();
            d = steepest(&cur.grad);
            step = line_search(&cols, &x, &cur, &d, 1.0, &mut nfev);
        }
        let Some((xn, en)) = step else {
            termination = Termination::Numerical(format!(
                "the line search found no decrease at marginal error {:.3e} (the precision limit of the objective)",
                cur.err
            ));
            break;
        };
        let s: Vec<f64> = xn.iter().zip(&x).map(|(p, q)| p - q).collect();
        let y: Vec<f64> = en.grad.iter().zip(&cur.grad).map(|(p, q)| p - q).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() && sy > 0.0 {
            if pairs.len() >= opts.memory.max(1) {
                pairs.remove(0);
            }
            pairs.push((s, y, 1.0 / sy));
        }
        x = xn;
        cur = en;
        nit += 1;
        let (e, value) = (cur.err, -cur.f);
        let xs = &x;
        let report = || Report {
            nit,
            error: e,
            vectors: vec![("alpha", xs[..n].iter().map(|&v| T::from_f64(v)).collect())],
            scalars: vec![("fun", value)],
        };
        match obs.observe(nit, &report) {
            Control::Continue => {}
            Control::Stop => {
                termination = Termination::Stopped;
                break;
            }
            Control::Abort => {
                termination = Termination::Aborted;
                break;
            }
        }
    }

    // The full dual's point: `(α, β*(α))`, its plan `[α + β* - c]_+ / γ` on each column's top
    // `k` and `D(α, β*)` evaluated there (equal to `S(α)` up to rounding).
    let mut beta = Vec::new();
    if opts.dual == Dual::Full {
        beta = cols.beta_star(&x);
        cols.dual = Dual::Full;
        let xb: Vec<f64> = x.iter().chain(&beta).copied().collect();
        cur = cols.eval(&xb);
        nfev += 1;
    }
    // The returned plan, in the dtype, and what is measured on it (f64).
    let data: Vec<T> = cur.val.iter().map(|&v| T::from_f64(v)).collect();
    let (mut rows, mut colsum) = (vec![0.0; n], vec![0.0; m]);
    let (mut cost_v, mut sq) = (0.0, 0.0);
    for j in 0..m {
        let span = cur.ptr[j]..cur.ptr[j + 1];
        for (&i, v) in cur.idx[span.clone()].iter().zip(&data[span]) {
            let v = v.as_f64();
            rows[i] += v;
            colsum[j] += v;
            cost_v += v * cost[i * m + j].as_f64();
            sq += v * v;
        }
    }
    let marginal_error = rows.iter().zip(a).map(|(r, ai)| (r - ai.as_f64()).abs()).sum::<f64>()
        + colsum.iter().zip(b).map(|(c, bj)| (c - bj.as_f64()).abs()).sum::<f64>();
    if !data.iter().all(|v| v.is_finite()) && termination != Termination::Aborted {
        termination = Termination::Numerical("the plan has non-finite entries".into());
    } else if marginal_error <= opts.tol && !matches!(termination, Termination::Stopped | Termination::Aborted) {
        termination = Termination::Converged;
    } else if termination == Termination::Converged {
        termination = Termination::MaxIter;
    }
    Ok(SparseOutput {
        indptr: cur.ptr,
        indices: cur.idx,
        data,
        alpha: x,
        beta,
        dual_value: -cur.f,
        cost: cost_v,
        primal: cost_v + 0.5 * opts.reg * sq,
        marginal_error,
        nit,
        nfev,
        termination,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::NoObserver;

    fn problem(n: usize, m: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let a = vec![1.0 / n as f64; n];
        let b = vec![1.0 / m as f64; m];
        // Distinct costs: ties at the top-k boundary are kinks of the objective.
        let c = (0..n * m).map(|q| (q as f64 * 0.618_033_988_7).fract()).collect();
        (a, b, c)
    }

    #[test]
    fn columns_have_at_most_k_nonzeros_and_marginals_hold() {
        let (a, b, c) = problem(30, 20);
        for dual in [Dual::Semi, Dual::Full] {
            // k = 3: the sparse plan (the relaxation need not meet the marginals exactly).
            let o = SparseOptions { k: 3, reg: 0.1, dual, tol: 1e-8, maxiter: 2000, memory: 10 };
            let r = sparse_ot(&a, &b, &c, &o, &mut NoObserver).unwrap();
            assert!(r.indptr.windows(2).all(|w| w[1] - w[0] <= 3));
            assert_eq!(r.termination == Termination::Converged, r.marginal_error <= 1e-8);
            // k = n: quadratically regularized OT, smooth, converges.
            let o = SparseOptions { k: 30, ..o };
            let r = sparse_ot(&a, &b, &c, &o, &mut NoObserver).unwrap();
            assert_eq!(r.termination, Termination::Converged, "{dual:?} err {}", r.marginal_error);
            assert!(r.marginal_error <= 1e-8);
            assert!((r.primal - r.dual_value).abs() < 1e-7, "{dual:?} gap {} {}", r.primal, r.dual_value);
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (a, b, c) = problem(8, 6);
        for dual in [Dual::Semi, Dual::Full] {
            let cols = Columns { ct: transpose(&c, 8, 6), a: &a, b: &b, n: 8, m: 6, k: 2, reg: 0.3, dual };
            let dim = if dual == Dual::Full { 14 } else { 8 };
            let x: Vec<f64> = (0..dim).map(|q| 0.05 * ((q * 37 % 11) as f64)).collect();
            let e = cols.eval(&x);
            for q in 0..dim {
                let h = 1e-6;
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[q] += h;
                xm[q] -= h;
                let fd = (cols.eval(&xp).f - cols.eval(&xm).f) / (2.0 * h);
                assert!((fd - e.grad[q]).abs() < 1e-6, "{dual:?} {q}: {fd} vs {}", e.grad[q]);
            }
        }
    }

    #[test]
    fn eliminating_beta_gives_the_semi_dual_also_where_k_binds() {
        let (n, m) = (40, 30);
        let (a, b, c) = problem(n, m);
        for k in [1, 4, 16, n] {
            let mut cols = Columns { ct: transpose(&c, n, m), a: &a, b: &b, n, m, k, reg: 0.05, dual: Dual::Semi };
            let alpha: Vec<f64> = (0..n).map(|q| 0.4 * ((q * 37 % 11) as f64) / 11.0).collect();
            let s = -cols.eval(&alpha).f;
            let beta = cols.beta_star(&alpha);
            cols.dual = Dual::Full;
            let xb: Vec<f64> = alpha.iter().chain(&beta).copied().collect();
            let e = cols.eval(&xb);
            assert!((-e.f - s).abs() <= 1e-12 * s.abs().max(1.0), "k {k}: D {} S {s}", -e.f);
            // β* maximizes D over β: the β-gradient (column residual) vanishes ...
            assert!(e.grad[n..].iter().all(|g| g.abs() < 1e-14), "k {k}");
            // ... and moving any β_j either way lowers D.
            for j in [0, 7, m - 1] {
                for h in [1e-5, -1e-5] {
                    let mut xp = xb.clone();
                    xp[n + j] += h;
                    assert!(-cols.eval(&xp).f < -e.f, "k {k} j {j} h {h}");
                }
            }
        }
    }

    fn transpose(c: &[f64], n: usize, m: usize) -> Vec<f64> {
        (0..n * m).map(|q| c[(q % n) * m + q / n]).collect()
    }

    #[test]
    fn bad_k_and_reg_are_rejected() {
        let (a, b, c) = problem(4, 4);
        let o = SparseOptions { k: 0, reg: 0.1, dual: Dual::Semi, tol: 1e-8, maxiter: 10, memory: 10 };
        assert!(sparse_ot(&a, &b, &c, &o, &mut NoObserver).is_err());
        let o = SparseOptions { k: 2, reg: -1.0, ..o };
        assert!(sparse_ot(&a, &b, &c, &o, &mut NoObserver).is_err());
    }
}
