//! A small dense bounded-variable primal simplex (full tableau), for the certificate polish's
//! restricted Farkas problem ([`super::farkas`]): a few hundred rows at most, so a dense
//! tableau is simpler and faster than a sparse LU, and it is deterministic (no hashing, no
//! threads, a fixed pivot order). Its buffers are allocated fallibly
//! ([`crate::alloc::try_zeroed`]).
//!
//! The problem is `min cᵀz  s.t.  T z = β₀ (canonical for a given feasible basis),
//! lo ≤ z ≤ hi`. The caller hands in the tableau already in canonical form for its starting
//! basis (the basic column of row `r` is the unit vector `e_r`) with a feasible basic solution.
//! Pricing is Dantzig's rule (largest reduced cost), switching to Bland's rule (smallest
//! index) after a run of degenerate pivots so that the method cannot cycle; the ratio test is
//! Harris's two-pass test (a feasibility tolerance buys the largest pivot among near-ties).

use crate::alloc::try_zeroed;
use crate::error::Result;

/// Reduced costs below `-D_TOL` (above it, for a variable that can decrease) are improving.
const D_TOL: f64 = 1e-9;
/// Pivots smaller than this in magnitude are not taken.
const PIV_TOL: f64 = 1e-9;
/// Primal feasibility tolerance of Harris's ratio test.
const P_TOL: f64 = 1e-9;
/// Degenerate pivots in a row after which pricing uses Bland's rule.
const BLAND_AFTER: usize = 50;

/// How a solve ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Optimal,
    /// The pivot limit.
    Limit,
    /// The caller's stop test (an interrupt or the time limit).
    Stopped,
    /// A ray of decrease (cannot happen on a problem bounded below, except by rounding).
    Unbounded,
}

/// The tableau and the state of the basis.
pub(super) struct Tableau {
    m: usize,
    n: usize,
    /// `B⁻¹ A`, row-major `m × n`.
    t: Vec<f64>,
    /// Values of the basic variables, by row.
    beta: Vec<f64>,
    /// The basic variable of each row.
    basis: Vec<usize>,
    /// `usize::MAX` for a nonbasic variable, else its row.
    row_of: Vec<usize>,
    /// The value of each nonbasic variable (a bound, or 0 for a free one).
    at: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// Reduced costs `c − c_Bᵀ B⁻¹ A`.
    d: Vec<f64>,
    /// Scratch: the pivot row.
    prow: Vec<f64>,
    pivots: usize,
    /// Tableau entries updated so far (rows that the pivot changes times `n`): the work
    /// measure that the caller's budget caps, the same on every machine and at any load.
    work: f64,
}

/// The starting point of [`Tableau::new`]: the canonical tableau, costs, bounds, the basis and
/// the basic values, and the nonbasic variables' values.
pub(super) struct Start {
    pub m: usize,
    pub n: usize,
    pub t: Vec<f64>,
    pub cost: Vec<f64>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    pub basis: Vec<usize>,
    pub beta: Vec<f64>,
    pub at: Vec<f64>,
}

impl Tableau {
    /// The tableau of `s`, with its reduced costs.
    pub(super) fn new(s: Start) -> Result<Self> {
        let Start { m, n, t, cost, lo, hi, basis, beta, at } = s;
        debug_assert!(t.len() == m * n && basis.len() == m && beta.len() == m && at.len() == n);
        let mut row_of = vec![usize::MAX; n];
        for (r, &b) in basis.iter().enumerate() {
            row_of[b] = r;
        }
        let mut d = cost.clone();
        for (r, &b) in basis.iter().enumerate() {
            let cb = cost[b];
            if cb != 0.0 {
                for (dj, &tj) in d.iter_mut().zip(&t[r * n..(r + 1) * n]) {
                    *dj -= cb * tj;
                }
            }
        }
        let prow = try_zeroed(n, "linprog: the certificate polish's pivot row")?;
        Ok(Tableau { m, n, t, beta, basis, row_of, at, lo, hi, d, prow, pivots: 0, work: 0.0 })
    }

    /// The reduced costs `c − c_Bᵀ B⁻¹ A`.
    pub(super) fn reduced_costs(&self) -> &[f64] {
        &self.d
    }

    /// Pivots (and bound flips) made so far.
    pub(super) fn pivots(&self) -> usize {
        self.pivots
    }

    /// Tableau entries updated so far.
    pub(super) fn work(&self) -> f64 {
        self.work
    }

    /// The entering variable and its direction (+1 up, −1 down), by Dantzig's rule or, with
    /// `bland`, the smallest eligible index.
    fn price(&self, bland: bool) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        let mut score = 0.0;
        for j in 0..self.n {
            if self.row_of[j] != usize::MAX {
                continue;
            }
            let dj = self.d[j];
            let dir = if dj < -D_TOL && self.at[j] < self.hi[j] {
                1.0
            } else if dj > D_TOL && self.at[j] > self.lo[j] {
                -1.0
            } else {
                continue;
            };
            if bland {
                return Some((j, dir));
            }
            if dj.abs() > score {
                score = dj.abs();
                best = Some((j, dir));
            }
        }
        best
    }

    /// Harris's ratio test for entering column `q` moving in direction `dir`: the leaving row
    /// and the step, or `None` for no blocking row.
    fn ratio(&self, q: usize, dir: f64) -> Option<(usize, f64)> {
        let (n, t) = (self.n, &self.t);
        let bound_of = |r: usize, g: f64| {
            let b = self.basis[r];
            if g > 0.0 {
                (self.beta[r] - self.lo[b], self.lo[b])
            } else {
                (self.hi[b] - self.beta[r], self.hi[b])
            }
        };
        // Pass 1: the largest step that keeps every basic variable within P_TOL of its bounds.
        let mut theta_max = f64::INFINITY;
        for r in 0..self.m {
            let g = dir * t[r * n + q];
            if g.abs() <= PIV_TOL {
                continue;
            }
            let (room, bound) = bound_of(r, g);
            if bound.is_finite() {
                theta_max = theta_max.min((room + P_TOL) / g.abs());
            }
        }
        if !theta_max.is_finite() {
            return None;
        }
        // Pass 2: among the rows that block within it, the largest pivot (ties: lowest row).
        let mut pick: Option<(usize, f64)> = None;
        let mut size = 0.0;
        for r in 0..self.m {
            let g = dir * t[r * n + q];
            if g.abs() <= PIV_TOL {
                continue;
            }
            let (room, bound) = bound_of(r, g);
            if bound.is_finite() && room / g.abs() <= theta_max && g.abs() > size {
                size = g.abs();
                pick = Some((r, (room / g.abs()).max(0.0)));
            }
        }
        pick
    }

    /// Runs the simplex method for at most `max_pivots` more pivots, and while its work
    /// ([`Tableau::work`]) is below `max_work`; `stop` is asked every 16 pivots.
    pub(super) fn solve(&mut self, (max_pivots, max_work): (usize, f64), stop: &mut dyn FnMut() -> bool) -> Outcome {
        let n = self.n;
        let mut degenerate = 0usize;
        for step in 0..max_pivots {
            if step % 16 == 15 && stop() {
                return Outcome::Stopped;
            }
            if self.work >= max_work {
                return Outcome::Limit;
            }
            let Some((q, dir)) = self.price(degenerate >= BLAND_AFTER) else {
                return Outcome::Optimal;
            };
            let flip = self.hi[q] - self.lo[q];
            let block = self.ratio(q, dir);
            let (theta, leave) = match block {
                Some((r, th)) if th < flip => (th, Some(r)),
                _ if flip.is_finite() => (flip, None),
                _ => return Outcome::Unbounded,
            };
            degenerate = if theta <= P_TOL { degenerate + 1 } else { 0 };
            self.pivots += 1;
            // Move: basic values change by −dir θ α, the entering variable by dir θ.
            if theta != 0.0 {
                for r in 0..self.m {
                    let a = self.t[r * n + q];
                    if a != 0.0 {
                        self.beta[r] -= dir * theta * a;
                    }
                }
            }
            let value = self.at[q] + dir * theta;
            let Some(r) = leave else {
                // A bound flip: no change of basis.
                self.at[q] = if dir > 0.0 { self.hi[q] } else { self.lo[q] };
                continue;
            };
            let b = self.basis[r];
            let g = dir * self.t[r * n + q];
            self.at[b] = if g > 0.0 { self.lo[b] } else { self.hi[b] };
            self.row_of[b] = usize::MAX;
            self.basis[r] = q;
            self.row_of[q] = r;
            self.beta[r] = value;
            self.pivot(r, q);
        }
        Outcome::Limit
    }

    /// Eliminates column `q` from every row but `r` (and from the reduced costs).
    fn pivot(&mut self, r: usize, q: usize) {
        let n = self.n;
        let p = self.t[r * n + q];
        let inv = 1.0 / p;
        for (dst, &v) in self.prow.iter_mut().zip(&self.t[r * n..(r + 1) * n]) {
            *dst = v * inv;
        }
        self.prow[q] = 1.0;
        self.t[r * n..(r + 1) * n].copy_from_slice(&self.prow);
        let prow = &self.prow;
        let mut touched = 1usize;
        for (i, row) in self.t.chunks_exact_mut(n).enumerate() {
            let f = row[q];
            if i == r || f == 0.0 {
                continue;
            }
            touched += 1;
            for (x, &v) in row.iter_mut().zip(prow) {
                *x -= f * v;
            }
            row[q] = 0.0;
        }
        self.work += (touched * n) as f64;
        let f = self.d[q];
        if f != 0.0 {
            for (x, &v) in self.d.iter_mut().zip(prow) {
                *x -= f * v;
            }
            self.d[q] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_bounded_lp() {
        // min -x1 - 2 x2  s.t.  x1 + x2 + s = 3 (s >= 0 the slack), 0 <= x1 <= 2, 0 <= x2 <= 2.
        // Optimum x = (1, 2), value -5; the dual of the row is y = -1 (reduced cost of s = 1).
        let inf = f64::INFINITY;
        let start = Start {
            m: 1,
            n: 3,
            t: vec![1.0, 1.0, 1.0],
            cost: vec![-1.0, -2.0, 0.0],
            lo: vec![0.0, 0.0, 0.0],
            hi: vec![2.0, 2.0, inf],
            basis: vec![2],
            beta: vec![3.0],
            at: vec![0.0, 0.0, 0.0],
        };
        let mut t = Tableau::new(start).unwrap();
        assert_eq!(t.solve((100, f64::INFINITY), &mut || false), Outcome::Optimal);
        let x1 = if t.row_of[0] == usize::MAX { t.at[0] } else { t.beta[t.row_of[0]] };
        let x2 = if t.row_of[1] == usize::MAX { t.at[1] } else { t.beta[t.row_of[1]] };
        assert!((x1 - 1.0).abs() < 1e-12 && (x2 - 2.0).abs() < 1e-12, "{x1} {x2}");
        // y = c_s - d_s = 0 - 1: d_s = 1.
        assert!((t.reduced_costs()[2] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn stops_when_asked() {
        let start = Start {
            m: 1,
            n: 2,
            t: vec![1.0, 1.0],
            cost: vec![-1.0, 0.0],
            lo: vec![0.0, 0.0],
            hi: vec![f64::INFINITY; 2],
            basis: vec![1],
            beta: vec![1.0],
            at: vec![0.0, 0.0],
        };
        let mut t = Tableau::new(start).unwrap();
        assert_eq!(t.solve((0, f64::INFINITY), &mut || false), Outcome::Limit);
        assert_eq!(t.solve((100, f64::INFINITY), &mut || false), Outcome::Optimal);
        assert!(t.work() > 0.0);
    }
}
