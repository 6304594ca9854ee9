//! Support polishing of a matrix game's equilibrium (a crossover step of `"halpern"` on games).
//!
//! Halpern–PDHG identifies the supports of an equilibrium late when it is nearly degenerate: on
//! the random 1000 x 1000 game the iterate sits for ~2,000 epochs at residual 1.0e-6 with one
//! row (margin 2.5e-5 at the equilibrium) still in the support of `y`. Given supports `S_x`,
//! `S_y` of equal size `s` (an equilibrium of a nondegenerate game has equal support sizes), the
//! equilibrium on them solves two bordered linear systems,
//! `[A_{S_y S_x}, −1; 1ᵀ, 0] (x_S, v) = (0, 1)` and `[A_{S_y S_x}ᵀ, −1; 1ᵀ, 0] (y_S, v) = (0, 1)`.
//! The supports are the `s` coordinates of each player with the largest complementarity score
//! (weight minus reduced cost: `x_j − ((Aᵀy)_j − min Aᵀy)`, `y_i − (max A x − (A x)_i)`), `s`
//! the smaller count of positive weights. The candidate is kept by the solver only when its
//! natural residual, measured with a full evaluation, is below the iterate's.

use crate::alloc::try_zeroed;
use crate::error::Result;
use crate::linalg::lu::Lu;

/// The `s` indices of the largest `score`, ascending.
fn top(score: &[f64], s: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    if s < idx.len() {
        idx.select_nth_unstable_by(s, |&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
        idx.truncate(s);
    }
    idx.sort_unstable();
    idx
}

/// Solves `[B, −1; 1ᵀ, 0] (w, v) = (0, 1)` for the `s x s` block `B` (`b(r, c)`); `None` when
/// the system is singular or a weight is negative (not the equilibrium's support).
fn bordered(s: usize, b: impl Fn(usize, usize) -> f64) -> Result<Option<Vec<f64>>> {
    let n = s + 1;
    let mut k = try_zeroed::<f64>(n * n, "polish system")?;
    for r in 0..s {
        for c in 0..s {
            k[r * n + c] = b(r, c);
        }
        k[r * n + s] = -1.0;
        k[s * n + r] = 1.0;
    }
    let Ok(lu) = Lu::factor(&k, n, 1e-13, "polish system") else {
        return Ok(None);
    };
    let mut w = vec![0.0; n];
    w[s] = 1.0;
    lu.solve_in_place(&mut w);
    w.truncate(s);
    Ok(if w.iter().all(|v| *v >= 0.0 && v.is_finite()) { Some(w) } else { None })
}

/// A candidate equilibrium of the `m x n` game `a` (row-major) from `z = (x, y)` with
/// `kty = Aᵀy`, `kx = A x`, and its cost in dense evaluations of `F` (two factorisations of
/// `(s+1)²` systems, `(4/3)(s+1)³` flops, against `2mn`). `None` (cost still spent when a
/// system was solved) when the supports are those of the last attempt, empty, or give no
/// equilibrium, and when `cost` would exceed `allowed`. `last` holds the last attempt's supports.
pub(super) fn game_polish(
    a: &[f64],
    (m, n): (usize, usize),
    z: &[f64],
    (kty, kx): (&[f64], &[f64]),
    allowed: f64,
    last: &mut Vec<usize>,
) -> Result<(Option<Vec<f64>>, f64)> {
    let (x, y) = z.split_at(n);
    let s = x.iter().filter(|v| **v > 0.0).count().min(y.iter().filter(|v| **v > 0.0).count());
    let cost = (4.0 / 3.0) * ((s + 1) as f64).powi(3) / (2.0 * m as f64 * n as f64);
    if s == 0 || cost > allowed {
        return Ok((None, 0.0));
    }
    let lo = kty.iter().fold(f64::INFINITY, |a, &b| a.min(b));
    let hi = kx.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let sx: Vec<f64> = x.iter().zip(kty).map(|(&w, &g)| w - (g - lo)).collect();
    let sy: Vec<f64> = y.iter().zip(kx).map(|(&w, &g)| w - (hi - g)).collect();
    let (cx, cy) = (top(&sx, s), top(&sy, s));
    let mut key = cx.clone();
    key.push(usize::MAX);
    key.extend_from_slice(&cy);
    if *last == key {
        return Ok((None, 0.0));
    }
    *last = key;
    let at = |i: usize, j: usize| a[i * n + j];
    let Some(xs) = bordered(s, |r, c| at(cy[r], cx[c]))? else {
        return Ok((None, cost / 2.0));
    };
    let Some(ys) = bordered(s, |r, c| at(cy[c], cx[r]))? else {
        return Ok((None, cost));
    };
    let mut out = try_zeroed::<f64>(m + n, "polished point")?;
    for (&j, &v) in cx.iter().zip(&xs) {
        out[j] = v;
    }
    for (&i, &v) in cy.iter().zip(&ys) {
        out[n + i] = v;
    }
    Ok((Some(out), cost))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polishes_a_2x2_game_to_its_equilibrium_once_per_support() {
        // min_x max_y yᵀAx with A = [[2, −1], [−1, 1]]: x* = y* = (2/5, 3/5), value 1/5.
        let a = [2.0, -1.0, -1.0, 1.0];
        let z = [0.41, 0.59, 0.39, 0.61];
        let kty = [2.0 * 0.39 - 0.61, -0.39 + 0.61];
        let kx = [2.0 * 0.41 - 0.59, -0.41 + 0.59];
        let mut last = Vec::new();
        let (c, cost) = game_polish(&a, (2, 2), &z, (&kty, &kx), 10.0, &mut last).unwrap();
        let c = c.unwrap();
        for (v, w) in c.iter().zip([0.4, 0.6, 0.4, 0.6]) {
            assert!((v - w).abs() < 1e-15, "{c:?}");
        }
        assert!(cost > 0.0);
        // the same supports again: skipped at no cost
        let (c, cost) = game_polish(&a, (2, 2), &z, (&kty, &kx), 10.0, &mut last).unwrap();
        assert!(c.is_none() && cost == 0.0);
    }
}
