//! Bound propagation on an LP, run before the first PDHG iteration to prove infeasibility
//! that the row activity ranges already show (what a presolve's first pass catches: HiGHS
//! finds Netlib's gran and pilot4i infeasible this way, where a first-order method's Farkas
//! ray takes a minute or never settles).
//!
//! For a row `l_i ≤ a_iᵀx ≤ u_i` the bounds of `x` give an activity range `[m_i, M_i]`; the
//! LP is infeasible when `m_i > u_i` or `M_i < l_i` by more than rounding, and every entry
//! implies a bound on its variable (`a_ij x_j ≤ u_i − (m_i − a_ij lb_j)` for `a_ij > 0`, …).
//! Implied bounds are applied row after row (Gauss–Seidel) for a few rounds; crossing column
//! bounds also prove infeasibility. Nothing is removed or changed in the problem the solver
//! then solves: the tightened bounds serve only this proof (using them in the iteration would
//! need a postsolve of the duals).

use super::problem::Lp;

/// Relative slack, against the magnitude of the terms involved, that a violation must exceed:
/// far above the rounding error of the activity sums (~1e-16 · terms · rows of propagation).
const FTOL: f64 = 1e-9;
/// An implied bound is applied only when it tightens the current one by this much (relative),
/// so that rounds stop once the changes are tiny, and only below `BIG` in magnitude.
const MIN_GAIN: f64 = 1e-6;
const BIG: f64 = 1e10;
/// How far beyond its row's reach (in multiples of the terms' magnitude) a bound is redundant.
const FAR: f64 = 100.0;

/// What proved the LP infeasible.
#[derive(Clone, Debug, PartialEq)]
pub enum Proof {
    /// Row `row`'s activity range `[min, max]` misses `[lower, upper]`.
    Row { row: usize, min: f64, max: f64, lower: f64, upper: f64, round: usize },
    /// Column `col`'s implied bounds cross.
    Column { col: usize, lower: f64, upper: f64, round: usize },
    /// Row `row` has an upper bound of −∞ or a lower bound of +∞: no value satisfies it.
    InfiniteBound { row: usize, value: f64 },
}

impl std::fmt::Display for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Proof::Row { row, min, max, lower, upper, round } => write!(
                f,
                "bound propagation ({} round{}): row {row} of [A_ub; A_eq] can only take values in \
                 [{min:.9e}, {max:.9e}], which misses its bounds [{lower:.9e}, {upper:.9e}]",
                round + 1,
                if round == 0 { "" } else { "s" }
            ),
            Proof::Column { col, lower, upper, round } => write!(
                f,
                "bound propagation ({} round{}): the rows imply {lower:.9e} <= x[{col}] <= {upper:.9e}",
                round + 1,
                if round == 0 { "" } else { "s" }
            ),
            Proof::InfiniteBound { row, value } => write!(
                f,
                "row {row} of [A_ub; A_eq] has {} bound {value}, which no value satisfies",
                if value < 0.0 { "the upper" } else { "the lower" }
            ),
        }
    }
}

/// A row whose upper bound is −∞ or lower bound +∞ (checked before anything else, with or
/// without bound propagation: such a row makes the LP infeasible whatever `x`).
pub fn infinite_row_bound(lp: &Lp) -> Option<Proof> {
    let bad = |(i, (&l, &u)): (usize, (&f64, &f64))| {
        if u == f64::NEG_INFINITY {
            Some(Proof::InfiniteBound { row: i, value: u })
        } else if l == f64::INFINITY {
            Some(Proof::InfiniteBound { row: i, value: l })
        } else {
            None
        }
    };
    lp.lc.iter().zip(&lp.uc).enumerate().find_map(bad)
}

/// One side of a row's activity: the sum of the finite terms, their absolute sum, how many
/// terms are infinite, and which one (when it is the only one).
#[derive(Clone, Copy)]
struct Side {
    sum: f64,
    mag: f64,
    ninf: usize,
    inf_at: usize,
}

impl Side {
    fn new() -> Self {
        Side { sum: 0.0, mag: 0.0, ninf: 0, inf_at: usize::MAX }
    }
    fn add(&mut self, term: f64, k: usize) {
        if term.is_finite() {
            self.sum += term;
            self.mag += term.abs();
        } else {
            self.ninf += 1;
            self.inf_at = k;
        }
    }
    fn value(&self, neg: bool) -> f64 {
        if self.ninf > 0 {
            if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        } else {
            self.sum
        }
    }
    /// The side without entry `k` (whose term is `term`); infinite when another term is.
    fn without(&self, k: usize, term: f64, neg: bool) -> f64 {
        let inf = if neg { f64::NEG_INFINITY } else { f64::INFINITY };
        match self.ninf {
            0 => self.sum - term,
            1 if self.inf_at == k => self.sum,
            _ => inf,
        }
    }
}

/// The row bounds that the activity range `[min, max]` under the variable bounds `[lb, ub]`
/// stays clear of by far (`max` below `u` by over `FAR` times the magnitude of the row's
/// terms, or `min` above `l` likewise): bit 1 for the lower bound, bit 2 for the upper. Such a bound is
/// never active at a feasible point.
pub fn redundant_bounds(lp: &Lp, lb: &[f64], ub: &[f64]) -> Vec<u8> {
    let a = &lp.a;
    (0..a.nrows)
        .map(|i| {
            let (mut lo, mut hi) = (Side::new(), Side::new());
            for k in a.indptr[i]..a.indptr[i + 1] {
                let (v, j) = (a.data[k], a.indices[k] as usize);
                if v > 0.0 {
                    lo.add(v * lb[j], k);
                    hi.add(v * ub[j], k);
                } else if v < 0.0 {
                    lo.add(v * ub[j], k);
                    hi.add(v * lb[j], k);
                }
            }
            let (min, max) = (lo.value(true), hi.value(false));
            let (l, u) = (lp.lc[i], lp.uc[i]);
            let mut bits = 0;
            if l.is_finite() && min.is_finite() && min - l > FAR * lo.mag {
                bits |= 1;
            }
            if u.is_finite() && max.is_finite() && u - max > FAR * hi.mag {
                bits |= 2;
            }
            bits
        })
        .collect()
}

/// Runs at most `rounds` rounds of bound propagation; `Some(proof)` when the LP is infeasible.
pub fn prove_infeasible(lp: &Lp, rounds: usize) -> Option<Proof> {
    propagate(lp, rounds).err()
}

/// Bound propagation: the variable bounds that the rows imply (every feasible point lies within
/// them), or the proof that the LP is infeasible.
pub fn propagate(lp: &Lp, rounds: usize) -> Result<(Vec<f64>, Vec<f64>), Proof> {
    let a = &lp.a;
    let mut lb = lp.lv.clone();
    let mut ub = lp.uv.clone();
    for round in 0..rounds {
        let mut changed = false;
        for i in 0..a.nrows {
            let (s, e) = (a.indptr[i], a.indptr[i + 1]);
            let (lo_row, hi_row) = (lp.lc[i], lp.uc[i]);
            let (mut lo, mut hi) = (Side::new(), Side::new());
            for k in s..e {
                let (v, j) = (a.data[k], a.indices[k] as usize);
                if v > 0.0 {
                    lo.add(v * lb[j], k);
                    hi.add(v * ub[j], k);
                } else if v < 0.0 {
                    lo.add(v * ub[j], k);
                    hi.add(v * lb[j], k);
                }
            }
            let (min, max) = (lo.value(true), hi.value(false));
            let slack = |bound: f64, side: &Side| FTOL * (bound.abs() + side.mag);
            if (hi_row.is_finite() && min - hi_row > slack(hi_row, &lo))
                || (lo_row.is_finite() && lo_row - max > slack(lo_row, &hi))
            {
                return Err(Proof::Row { row: i, min, max, lower: lo_row, upper: hi_row, round });
            }
            for k in s..e {
                let (v, j) = (a.data[k], a.indices[k] as usize);
                if v == 0.0 {
                    continue;
                }
                // v x_j <= u_i − (min without j), v x_j >= l_i − (max without j). A column stored
                // twice in the row may have been tightened by its first entry since the sums were
                // taken; its term then only grows `min` / shrinks `max` less than it should, which
                // loosens the implied bound: still valid.
                let (lo_term, hi_term) = if v > 0.0 { (v * lb[j], v * ub[j]) } else { (v * ub[j], v * lb[j]) };
                let upper_vx = if hi_row.is_finite() { hi_row - lo.without(k, lo_term, true) } else { f64::INFINITY };
                let lower_vx =
                    if lo_row.is_finite() { lo_row - hi.without(k, hi_term, false) } else { f64::NEG_INFINITY };
                let (new_lo, new_hi) =
                    if v > 0.0 { (lower_vx / v, upper_vx / v) } else { (upper_vx / v, lower_vx / v) };
                if new_hi.is_finite() && new_hi.abs() < BIG && new_hi < ub[j] - MIN_GAIN * (1.0 + new_hi.abs()) {
                    ub[j] = new_hi;
                    changed = true;
                }
                if new_lo.is_finite() && new_lo.abs() < BIG && new_lo > lb[j] + MIN_GAIN * (1.0 + new_lo.abs()) {
                    lb[j] = new_lo;
                    changed = true;
                }
                if lb[j] > ub[j] {
                    let scale = lb[j].abs().max(ub[j].abs());
                    if lb[j] - ub[j] > FTOL * (scale + lo.mag.max(hi.mag)) {
                        return Err(Proof::Column { col: j, lower: lb[j], upper: ub[j], round });
                    }
                    // Within rounding of each other: the variable is fixed.
                    let mid = 0.5 * (lb[j] + ub[j]);
                    lb[j] = mid;
                    ub[j] = mid;
                }
            }
        }
        if !changed {
            break;
        }
    }
    Ok((lb, ub))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::csr::Csr;

    fn lp(rows: &[&[f64]], lc: &[f64], uc: &[f64], lv: &[f64], uv: &[f64]) -> Lp {
        Lp {
            a: Csr::from_dense(rows),
            c: vec![0.0; rows[0].len()],
            lc: lc.to_vec(),
            uc: uc.to_vec(),
            lv: lv.to_vec(),
            uv: uv.to_vec(),
        }
    }

    const INF: f64 = f64::INFINITY;

    #[test]
    fn a_row_whose_activity_range_misses_its_bounds() {
        // x + y <= 1 with x, y >= 1: the activity is at least 2.
        let p = lp(&[&[1.0, 1.0]], &[-INF], &[1.0], &[1.0, 1.0], &[INF, INF]);
        assert!(matches!(prove_infeasible(&p, 10), Some(Proof::Row { row: 0, min, .. }) if min == 2.0));
    }

    #[test]
    fn a_chain_of_implied_bounds() {
        // x − y = 0, y − z = 0, x >= 2, z <= 1: x = y = z is impossible; needs propagation.
        let p =
            lp(&[&[1.0, -1.0, 0.0], &[0.0, 1.0, -1.0]], &[0.0, 0.0], &[0.0, 0.0], &[2.0, -INF, -INF], &[INF, INF, 1.0]);
        // Row 0 gives y >= 2 (applied at once), then row 1's activity y − z is at least 1.
        let proof = prove_infeasible(&p, 10).expect("infeasible");
        assert!(matches!(proof, Proof::Row { row: 1, min, .. } if min == 1.0), "{proof}");
        // Without its first row the LP is feasible.
        let q = lp(&[&[0.0, 1.0, -1.0]], &[0.0], &[0.0], &[2.0, -INF, -INF], &[INF, INF, 1.0]);
        assert_eq!(prove_infeasible(&q, 10), None);
    }

    #[test]
    fn feasible_and_boundary_cases_are_not_flagged() {
        // x + y = 2 with 0 <= x, y <= 1: feasible only at x = y = 1 (the range touches the bound).
        let p = lp(&[&[1.0, 1.0]], &[2.0], &[2.0], &[0.0, 0.0], &[1.0, 1.0]);
        assert_eq!(prove_infeasible(&p, 20), None);
        // A violation at rounding level (0.1 + 0.2 vs 0.3) is not a proof.
        let p = lp(&[&[1.0, 1.0]], &[-INF], &[0.3], &[0.1, 0.2], &[INF, INF]);
        assert_eq!(prove_infeasible(&p, 20), None);
        // Free variables and an empty row with zero bounds.
        let p = lp(&[&[1.0, -1.0], &[0.0, 0.0]], &[-1.0, 0.0], &[1.0, 0.0], &[-INF, -INF], &[INF, INF]);
        assert_eq!(prove_infeasible(&p, 20), None);
        // An empty row with a nonzero right-hand side is infeasible.
        let p = lp(&[&[1.0, -1.0], &[0.0, 0.0]], &[-1.0, 1.0], &[1.0, 1.0], &[-INF, -INF], &[INF, INF]);
        assert!(matches!(prove_infeasible(&p, 20), Some(Proof::Row { row: 1, .. })));
    }

    #[test]
    fn a_column_stored_twice_in_a_row() {
        // x + x = 2 (stored as two entries) with 0 <= x <= 5: feasible at x = 1. The first entry
        // tightens x <= 2 before the second is read (see the note in `prove_infeasible`).
        let p = Lp {
            a: Csr::new(1, 1, vec![0, 2], vec![0, 0], vec![1.0, 1.0]).unwrap(),
            c: vec![0.0],
            lc: vec![2.0],
            uc: vec![2.0],
            lv: vec![0.0],
            uv: vec![5.0],
        };
        assert_eq!(prove_infeasible(&p, 20), None);
    }

    #[test]
    fn a_row_with_an_infinite_bound_of_the_wrong_sign() {
        let p = lp(&[&[1.0], &[1.0]], &[-INF, -INF], &[1.0, -INF], &[0.0], &[10.0]);
        let proof = infinite_row_bound(&p).expect("infeasible");
        assert_eq!(proof, Proof::InfiniteBound { row: 1, value: -INF });
        assert!(proof.to_string().contains("row 1"), "{proof}");
    }

    #[test]
    fn far_unreachable_row_bounds_are_redundant() {
        // x + 2y <= 1e12 and 3x + y <= 6 with x, y >= 0: the first row reaches at most 14.
        let p = lp(&[&[1.0, 2.0], &[3.0, 1.0]], &[-INF, -INF], &[1e12, 6.0], &[0.0, 0.0], &[INF, INF]);
        let (lb, ub) = propagate(&p, 20).unwrap();
        assert_eq!(redundant_bounds(&p, &lb, &ub), vec![2, 0]);
    }

    #[test]
    fn crossing_implied_column_bounds() {
        // x >= 3 from the first row, x <= 1 from the second; x in [0, 10].
        let p = lp(&[&[1.0], &[1.0]], &[3.0, -INF], &[INF, 1.0], &[0.0], &[10.0]);
        assert!(prove_infeasible(&p, 10).is_some());
    }
}
