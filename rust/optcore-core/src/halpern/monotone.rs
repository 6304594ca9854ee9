//! Monotone variational inequalities over products of simplices: bilinear matrix games
//! `min_{x ∈ Δ_n} max_{y ∈ Δ_m} yᵀ A x`, i.e. `0 ∈ F(z) + N_C(z)` with the monotone,
//! `‖A‖₂`-Lipschitz operator `F(x, y) = (Aᵀ y, −A x)` and `C = Δ_n × Δ_m`.
//!
//! Deterministic methods (f64):
//! - `Eg`: extragradient (Korpelevich), `z_{k+½} = P(z_k − η F z_k)`,
//!   `z_{k+1} = P(z_k − η F z_{k+½})`.
//! - `Eag`: extra-anchored gradient (Yoon & Ryu 2021; constrained form), the same two steps
//!   taken from `z_k + β_k (z_0 − z_k)` with `β_k = 1/(k+2)`: Halpern anchoring applied to
//!   extragradient, O(1/k) on the natural residual.
//!
//! The run stops when the duality gap `max_i (A x)_i − min_j (Aᵀ y)_j` (≥ 0, zero exactly at
//! an equilibrium, computable for matrix games) of the current point is `≤ tol`.

use super::operator::{dot, Operator, Simplex};
use crate::error::{OptError, Result};
use crate::solver::{Control, Observer, Report, Termination};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GameMethod {
    Eg,
    Eag,
}

/// `A` is `m x n`, row-major: `x ∈ Δ_n` (minimiser, columns), `y ∈ Δ_m` (maximiser, rows).
pub struct MatrixGame<'a> {
    pub a: &'a [f64],
    pub m: usize,
    pub n: usize,
}

#[derive(Debug)]
pub struct GameOutput {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub gap: f64,
    /// `‖z − P(z − η F z)‖ / η` at the returned point.
    pub residual: f64,
    pub value: f64,
    pub nit: usize,
    /// Evaluations of `F` (each one `A x` and `Aᵀ y`).
    pub nfev: usize,
    pub termination: Termination,
}

impl MatrixGame<'_> {
    fn ax(&self, x: &[f64], out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(&self.a[i * self.n..(i + 1) * self.n], x);
        }
    }
    fn aty(&self, y: &[f64], out: &mut [f64]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        for (i, &yi) in y.iter().enumerate() {
            if yi != 0.0 {
                for (o, &aij) in out.iter_mut().zip(&self.a[i * self.n..(i + 1) * self.n]) {
                    *o += aij * yi;
                }
            }
        }
    }
    /// `F(z) = (Aᵀ y, −A x)` into `(gx, gy)`; returns `(max_i (A x)_i, min_j (Aᵀ y)_j)`.
    fn f(&self, x: &[f64], y: &[f64], gx: &mut [f64], gy: &mut [f64]) -> (f64, f64) {
        self.ax(x, gy);
        self.aty(y, gx);
        let hi = gy.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let lo = gx.iter().fold(f64::INFINITY, |m, &v| m.min(v));
        gy.iter_mut().for_each(|v| *v = -*v);
        (hi, lo)
    }
}

/// Runs `method` with step `eta` from `(x0, y0)` (projected onto the simplices first).
#[allow(clippy::too_many_arguments)]
pub fn solve_game(
    g: &MatrixGame<'_>,
    x0: &[f64],
    y0: &[f64],
    method: GameMethod,
    eta: f64,
    tol: f64,
    maxiter: usize,
    obs: &mut dyn Observer<f64>,
) -> Result<GameOutput> {
    let (m, n) = (g.m, g.n);
    if m == 0 || n == 0 || g.a.len() != m * n || x0.len() != n || y0.len() != m {
        return Err(OptError::InvalidInput("matrix game: A must be m x n, x0 of length n, y0 of length m".into()));
    }
    if !g.a.iter().chain(x0).chain(y0).all(|v| v.is_finite()) {
        return Err(OptError::InvalidInput("matrix game: A, x0 and y0 must be finite".into()));
    }
    if !(eta > 0.0 && eta.is_finite() && tol >= 0.0) {
        return Err(OptError::InvalidInput("matrix game: eta must be positive and tol >= 0".into()));
    }
    let (px, py) = (Simplex::new(n, 1.0)?, Simplex::new(m, 1.0)?);
    let proj = |v: &[f64], out: &mut [f64], p: &Simplex| Operator::<f64>::apply(p, v, out);
    let (mut x, mut y) = (vec![0.0; n], vec![0.0; m]);
    proj(x0, &mut x, &px)?;
    proj(y0, &mut y, &py)?;
    let (ax0, ay0) = (x.clone(), y.clone());
    let (mut gx, mut gy) = (vec![0.0; n], vec![0.0; m]);
    let (mut hx, mut hy) = (vec![0.0; n], vec![0.0; m]);
    let (mut bx, mut by) = (vec![0.0; n], vec![0.0; m]);
    let (mut tx, mut ty) = (vec![0.0; n], vec![0.0; m]);
    let mut nfev = 0usize;
    // Natural residual ‖z − P(z − η F z)‖ / η from F z already in (gx, gy).
    let natural = |x: &[f64], y: &[f64], gx: &[f64], gy: &[f64], tx: &mut [f64], ty: &mut [f64]| -> Result<f64> {
        let sx: Vec<f64> = x.iter().zip(gx).map(|(a, b)| a - eta * b).collect();
        let sy: Vec<f64> = y.iter().zip(gy).map(|(a, b)| a - eta * b).collect();
        proj(&sx, tx, &px)?;
        proj(&sy, ty, &py)?;
        let s: f64 = x.iter().zip(tx.iter()).chain(y.iter().zip(ty.iter())).map(|(a, b)| (a - b).powi(2)).sum();
        Ok(s.sqrt() / eta)
    };
    for nit in 0.. {
        let (hi, lo) = g.f(&x, &y, &mut gx, &mut gy);
        nfev += 1;
        let gap = hi - lo;
        if !gap.is_finite() {
            let msg = format!("the duality gap is not finite at iteration {nit}");
            return Err(OptError::Numerical(msg));
        }
        let term = if gap <= tol {
            Some(Termination::Converged)
        } else if nit >= maxiter {
            Some(Termination::MaxIter)
        } else {
            None
        };
        let control = if term.is_some() || nit == 0 {
            Control::Continue
        } else {
            obs.observe(nit, &|| Report {
                nit,
                error: gap,
                vectors: vec![("x", x.clone()), ("y", y.clone())],
                scalars: vec![],
            })
        };
        let term = match (term, control) {
            (Some(t), _) => Some(t),
            (None, Control::Stop) => Some(Termination::Stopped),
            (None, Control::Abort) => Some(Termination::Aborted),
            (None, Control::Continue) => None,
        };
        if let Some(termination) = term {
            let residual = natural(&x, &y, &gx, &gy, &mut tx, &mut ty)?;
            let value = dot(&y, &{
                let mut v = vec![0.0; m];
                g.ax(&x, &mut v);
                v
            });
            return Ok(GameOutput { x, y, gap, residual, value, nit, nfev, termination });
        }
        // Base point: z_k (EG) or z_k + β_k (z_0 − z_k) (EAG).
        let beta = if method == GameMethod::Eag { 1.0 / (nit as f64 + 2.0) } else { 0.0 };
        for ((b, &v), &a) in bx.iter_mut().zip(&x).zip(&ax0) {
            *b = v + beta * (a - v);
        }
        for ((b, &v), &a) in by.iter_mut().zip(&y).zip(&ay0) {
            *b = v + beta * (a - v);
        }
        // Half step from the base point with F(z_k), then the full step with F(z_{k+½}).
        let sx: Vec<f64> = bx.iter().zip(&gx).map(|(a, b)| a - eta * b).collect();
        let sy: Vec<f64> = by.iter().zip(&gy).map(|(a, b)| a - eta * b).collect();
        proj(&sx, &mut hx, &px)?;
        proj(&sy, &mut hy, &py)?;
        g.f(&hx, &hy, &mut gx, &mut gy);
        nfev += 1;
        let sx: Vec<f64> = bx.iter().zip(&gx).map(|(a, b)| a - eta * b).collect();
        let sy: Vec<f64> = by.iter().zip(&gy).map(|(a, b)| a - eta * b).collect();
        proj(&sx, &mut x, &px)?;
        proj(&sy, &mut y, &py)?;
    }
    unreachable!("the loop only ends by returning")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::NoObserver;

    #[test]
    fn rock_paper_scissors_has_value_zero_and_uniform_equilibrium() {
        let a = [0.0, 1.0, -1.0, -1.0, 0.0, 1.0, 1.0, -1.0, 0.0];
        let g = MatrixGame { a: &a, m: 3, n: 3 };
        // EG converges linearly on polyhedral games; EAG like 1/k.
        for (method, tol) in [(GameMethod::Eg, 1e-8), (GameMethod::Eag, 1e-4)] {
            let o = solve_game(&g, &[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0], method, 0.3, tol, 100_000, &mut NoObserver)
                .unwrap();
            assert_eq!(o.termination, Termination::Converged, "{method:?}");
            assert!(o.value.abs() <= tol && o.gap <= tol);
            for v in o.x.iter().chain(&o.y) {
                assert!((v - 1.0 / 3.0).abs() < 10.0 * tol, "{method:?}: {:?}", o.x);
            }
        }
    }

    #[test]
    fn pure_saddle_point_and_bad_shapes() {
        // A pure saddle point: row 0 dominates, column 1 dominates for the minimiser.
        let a = [3.0, 1.0, 2.0, 0.0];
        let g = MatrixGame { a: &a, m: 2, n: 2 };
        let o = solve_game(&g, &[0.5, 0.5], &[0.5, 0.5], GameMethod::Eg, 0.2, 1e-10, 100_000, &mut NoObserver).unwrap();
        assert_eq!(o.termination, Termination::Converged);
        assert!((o.value - 1.0).abs() < 1e-9, "{}", o.value);
        assert!(solve_game(&g, &[0.5], &[0.5, 0.5], GameMethod::Eg, 0.2, 1e-9, 10, &mut NoObserver).is_err());
    }
}
