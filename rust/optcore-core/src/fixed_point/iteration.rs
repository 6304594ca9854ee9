//! The fixed-point loop: Halpern (anchored) iterations, optionally restarted, and the
//! Krasnosel'skii–Mann and Picard baselines, with infeasibility detection.
//!
//! # Iterations
//!
//! - Halpern: `x_{k+1} = β_k a + (1 − β_k) T x_k` with anchor `a = x_0` and
//!   `β_k = c / (k + c + 1)` (`c = 1`: `β_k = 1/(k+2)`, for which
//!   `‖x_k − T x_k‖ ≤ 2 ‖x_0 − x*‖ / (k + 1)`; Lieder 2021). With adaptive restarts the anchor
//!   moves to the current point, and `k` restarts from 0, whenever the residual has dropped
//!   below `factor` times its value at the last anchor.
//! - Krasnosel'skii–Mann: `x_{k+1} = (1 − α) x_k + α T x_k`; Picard: `x_{k+1} = T x_k`.
//!
//! # Stopping
//!
//! The residual `r_k = ‖x_k − T x_k‖₂` (f64, scaled: [`crate::linalg::nrm2_diff`], so that
//! iterates of 1e200 do not overflow it) is measured on every iterate before it is updated;
//! the run converges at the first `k` with `r_k ≤ tol + rtol · r_0` and returns that `x_k`, so
//! the tolerance holds on the returned point. A non-finite residual or threshold never passes
//! the test (the threshold is `tol` alone when `rtol = 0`, whatever `r_0`).
//!
//! # Infeasibility
//!
//! When `T` has no fixed point, `x_k` drifts away along the infimal displacement vector `v`;
//! [`super::displacement`] estimates `v` (Park & Ryu's accelerated residual estimator for the
//! anchored iterations, taken on the Picard orbit it averages; drifts for the others) and declares
//! infeasibility once an estimate has settled and a guard has proved that no fixed point lies
//! within `max(‖x_0‖, ‖T x_0‖)` of the origin.

use super::displacement::{At, Displacement, Drift};
use crate::alloc::try_with_capacity;
use crate::error::{OptError, Result};
use crate::linalg::nrm2_diff;
use crate::operators::Operator;
use crate::real::Real;
use crate::solver::{Control, Observer, Report, Termination};

/// The iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// Anchored iteration with `β_k = c/(k + c + 1)` (`anchoring = c`, default 1).
    Halpern { anchoring: f64 },
    /// Krasnosel'skii–Mann with relaxation `α ∈ (0, 1]`.
    KrasnoselskiiMann { relaxation: f64 },
    /// `x_{k+1} = T x_k`.
    Picard,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub method: Method,
    /// Absolute residual tolerance.
    pub tol: f64,
    /// Relative residual tolerance (times `‖x_0 − T x_0‖`).
    pub rtol: f64,
    pub maxiter: usize,
    /// Adaptive restart factor in `(0, 1)` (Halpern only), or none.
    pub restart: Option<f64>,
    /// Relative stabilisation of the displacement estimate that declares infeasibility;
    /// `0` turns detection off.
    pub tol_disp: f64,
    /// No infeasibility verdict before this many iterations (since the last anchor).
    pub min_disp_iter: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            method: Method::Halpern { anchoring: 1.0 },
            tol: 1e-8,
            rtol: 0.0,
            maxiter: 10_000,
            restart: None,
            tol_disp: 1e-6,
            min_disp_iter: 50,
        }
    }
}

#[derive(Debug)]
pub struct Output<T> {
    /// The returned iterate (empty when aborted).
    pub x: Vec<T>,
    /// `‖x − T x‖₂` of the returned `x` (NaN when `T x` was not finite).
    pub residual: f64,
    /// `‖x_0 − T x_0‖₂`.
    pub initial_residual: f64,
    /// The convergence threshold `tol + rtol · r_0` (`tol` when `rtol = 0`).
    pub threshold: f64,
    /// Iterations (updates of `x`) performed.
    pub nit: usize,
    /// Applications of `T`.
    pub nfev: usize,
    pub restarts: usize,
    pub termination: Termination,
    /// The estimate of the infimal displacement vector when infeasibility was declared.
    pub displacement: Option<Vec<T>>,
}

/// A copy of `v`, allocated fallibly (its length is the user's problem size).
fn try_copy<T: Copy>(v: &[T], what: &str) -> Result<Vec<T>> {
    let mut out = try_with_capacity(v.len(), what)?;
    out.extend_from_slice(v);
    Ok(out)
}

/// Runs the fixed-point iteration of `opts.method` on `op` from `x0`.
pub fn solve<T: Real>(op: &dyn Operator<T>, x0: &[T], opts: &Options, obs: &mut dyn Observer<T>) -> Result<Output<T>> {
    let bad = |s: &str| Err(OptError::InvalidInput(s.to_string()));
    let d = op.dim();
    if x0.len() != d || d == 0 {
        return Err(OptError::InvalidInput(format!("x0 has length {} but the operator has dimension {d}", x0.len())));
    }
    if !x0.iter().all(|v| v.is_finite()) {
        return bad("x0 must be finite");
    }
    if !(opts.tol >= 0.0 && opts.rtol >= 0.0 && opts.tol.is_finite() && opts.rtol.is_finite()) {
        return bad("tol and rtol must be finite and >= 0");
    }
    if !(opts.tol_disp >= 0.0 && opts.tol_disp.is_finite()) {
        return bad("tol_disp must be finite and >= 0");
    }
    match opts.method {
        Method::Halpern { anchoring } if !(anchoring > 0.0 && anchoring.is_finite()) => {
            return bad("anchoring must be > 0")
        }
        Method::KrasnoselskiiMann { relaxation } if !(relaxation > 0.0 && relaxation <= 1.0) => {
            return bad("relaxation must be in (0, 1]")
        }
        _ => {}
    }
    if let Some(f) = opts.restart {
        if !(f > 0.0 && f < 1.0) {
            return bad("the restart factor must be in (0, 1)");
        }
        if !matches!(opts.method, Method::Halpern { .. }) {
            return bad("restarts apply to Halpern iterations only");
        }
    }

    // Sized by the user's x0 (a vectorized batch B x d): fallible, MemoryError when too big.
    let mut anchor = try_copy(x0, "fixed-point anchor")?;
    let mut x = try_copy(x0, "fixed-point iterate")?;
    let mut tx = try_copy(x0, "fixed-point T(x)")?;
    let (mut k_local, mut nfev, mut restarts) = (0usize, 0usize, 0usize);
    let (mut threshold, mut r0, mut r_anchor) = (0.0, 0.0, 0.0);
    let drift = match opts.method {
        Method::Halpern { anchoring: 1.0 } => Drift::Proxy,
        Method::Halpern { .. } => Drift::Anchored,
        Method::KrasnoselskiiMann { relaxation } => Drift::Linear(relaxation),
        Method::Picard => Drift::Linear(1.0),
    };
    let mut disp = Displacement::new(opts.tol_disp, opts.min_disp_iter, drift);
    let out = |x: Vec<T>, residual, r0, threshold, nit, nfev, restarts, termination, displacement| Output {
        x,
        residual,
        initial_residual: r0,
        threshold,
        nit,
        nfev,
        restarts,
        termination,
        displacement,
    };

    for nit in 0.. {
        op.apply(&x, &mut tx)?;
        nfev += 1;
        if !tx.iter().all(|v| v.is_finite()) {
            let msg = format!(
                "T(x) has non-finite entries (NaN or inf) at iteration {nit}; x is the last iterate, \
                 whose residual is undefined"
            );
            return Ok(out(x, f64::NAN, r0, threshold, nit, nfev, restarts, Termination::Numerical(msg), None));
        }
        let r = nrm2_diff(&x, &tx);
        if nit == 0 {
            r0 = r;
            r_anchor = r;
            threshold = if opts.rtol > 0.0 { opts.tol + opts.rtol * r0 } else { opts.tol };
            disp.start(&x, &tx)?;
        }
        if r.is_finite() && threshold.is_finite() && r <= threshold {
            return Ok(out(x, r, r0, threshold, nit, nfev, restarts, Termination::Converged, None));
        }
        if nit >= opts.maxiter {
            return Ok(out(x, r, r0, threshold, nit, nfev, restarts, Termination::MaxIter, None));
        }
        let at = At { nit, k: k_local, x: &x, tx: &tx, anchor: &anchor, residual: r };
        if let Some(v) = disp.check(&at, threshold, op, &mut nfev)? {
            return Ok(out(x, r, r0, threshold, nit, nfev, restarts, Termination::Infeasible, Some(v)));
        }
        // No callback before the first iteration (as in the other solvers).
        let control = if nit == 0 {
            Control::Continue
        } else {
            obs.observe(nit, &|| Report {
                nit,
                error: r,
                vectors: vec![("x", x.clone())],
                scalars: vec![("restarts", restarts as f64)],
            })
        };
        match control {
            Control::Continue => {}
            Control::Stop => return Ok(out(x, r, r0, threshold, nit, nfev, restarts, Termination::Stopped, None)),
            Control::Abort => {
                return Ok(out(Vec::new(), f64::NAN, r0, threshold, nit, nfev, restarts, Termination::Aborted, None))
            }
        }
        if let Some(f) = opts.restart {
            if k_local > 0 && r <= f * r_anchor {
                anchor.copy_from_slice(&x);
                k_local = 0;
                r_anchor = r;
                restarts += 1;
                disp.restart();
            }
        }
        match opts.method {
            Method::Halpern { anchoring: c } => {
                let beta = c / (k_local as f64 + c + 1.0);
                for ((xi, &ai), &ti) in x.iter_mut().zip(&anchor).zip(&tx) {
                    *xi = T::from_f64(beta * ai.as_f64() + (1.0 - beta) * ti.as_f64());
                }
                disp.step(beta);
            }
            Method::KrasnoselskiiMann { relaxation: a } => {
                for (xi, &ti) in x.iter_mut().zip(&tx) {
                    *xi = T::from_f64((1.0 - a) * xi.as_f64() + a * ti.as_f64());
                }
                disp.step(0.0);
            }
            Method::Picard => {
                x.copy_from_slice(&tx);
                disp.step(0.0);
            }
        }
        k_local += 1;
    }
    unreachable!("the loop only ends by returning")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::{douglas_rachford, Affine, AffineData, Ball, BoxProj, SharedOp};
    use crate::solver::NoObserver;
    use std::sync::Arc;

    /// Rotation by `theta` in the plane about `c` (nonexpansive, unique fixed point `c`).
    struct Rotation {
        theta: f64,
        c: [f64; 2],
    }
    impl Operator<f64> for Rotation {
        fn dim(&self) -> usize {
            2
        }
        fn apply(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
            let (s, co) = self.theta.sin_cos();
            let (u, v) = (x[0] - self.c[0], x[1] - self.c[1]);
            out[0] = self.c[0] + co * u - s * v;
            out[1] = self.c[1] + s * u + co * v;
            Ok(())
        }
    }

    /// `x ↦ x − v`: no fixed point, displacement `v`.
    struct Translate(Vec<f64>);
    impl Operator<f64> for Translate {
        fn dim(&self) -> usize {
            self.0.len()
        }
        fn apply(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
            for ((o, a), b) in out.iter_mut().zip(x).zip(&self.0) {
                *o = a - b;
            }
            Ok(())
        }
    }

    fn run(op: &dyn Operator<f64>, x0: &[f64], opts: &Options) -> Output<f64> {
        solve(op, x0, opts, &mut NoObserver).unwrap()
    }

    #[test]
    fn halpern_meets_its_rate_on_a_rotation() {
        // Picard never converges on a rotation; Halpern does, within 2 D / (k + 1).
        let op = Rotation { theta: 1.0, c: [1.0, -1.0] };
        let x0 = [3.0, 2.0];
        let dist = ((x0[0] - 1.0f64).powi(2) + (x0[1] + 1.0f64).powi(2)).sqrt();
        for maxiter in [1usize, 5, 50, 500] {
            let o = run(&op, &x0, &Options { tol: 0.0, maxiter, ..Default::default() });
            assert_eq!(o.nit, maxiter);
            assert!(o.residual <= 2.0 * dist / (maxiter as f64 + 1.0) * (1.0 + 1e-12), "k={maxiter} r={}", o.residual);
        }
        // The bound guarantees tol = 1e-4 within 2 D / 1e-4 < 1e5 iterations; on a rotation by
        // one radian ||x - Tx|| = 2 sin(1/2) ||x - c||.
        let o = run(&op, &x0, &Options { tol: 1e-4, maxiter: 100_000, ..Default::default() });
        assert_eq!(o.termination, Termination::Converged);
        assert!((o.x[0] - 1.0).abs() < 1.1e-4 && (o.x[1] + 1.0).abs() < 1.1e-4);
        let p = run(&op, &x0, &Options { method: Method::Picard, maxiter: 1000, ..Default::default() });
        assert_eq!(p.termination, Termination::MaxIter);
    }

    #[test]
    fn translation_is_infeasible_with_exact_displacement() {
        let v = vec![0.5, -1.0, 2.0];
        for method in
            [Method::Halpern { anchoring: 1.0 }, Method::KrasnoselskiiMann { relaxation: 0.5 }, Method::Picard]
        {
            let o = run(&Translate(v.clone()), &[1.0, 2.0, 3.0], &Options { method, ..Default::default() });
            assert_eq!(o.termination, Termination::Infeasible, "{method:?}");
            let got = o.displacement.unwrap();
            for (a, b) in got.iter().zip(&v) {
                assert!((a - b).abs() < 1e-12, "{method:?}: {got:?}");
            }
            assert!(o.nit >= 50);
        }
    }

    #[test]
    fn douglas_rachford_feasible_and_infeasible() {
        let ball: SharedOp<f64> = Arc::new(Ball::new(vec![0.0, 0.0, 0.0], 1.0).unwrap());
        let plane = |b: f64| -> SharedOp<f64> {
            Arc::new(Affine(Arc::new(AffineData::new(vec![1.0, 1.0, 0.0], vec![b], 1, 3).unwrap())))
        };
        let dr = douglas_rachford(ball.clone(), plane(1.0)).unwrap();
        let o = run(&dr, &[5.0, -3.0, 2.0], &Options { restart: Some(0.2), ..Default::default() });
        assert_eq!(o.termination, Termination::Converged);
        let mut s = [0.0; 3];
        ball.apply(&o.x, &mut s).unwrap();
        assert!((s[0] + s[1] - 1.0).abs() < 1e-7 && s.iter().map(|t| t * t).sum::<f64>() <= 1.0 + 1e-12);

        // Two disjoint boxes: v = P_{A - B}(0) = (lo_A - hi_B)_+ - (lo_B - hi_A)_+ per entry.
        let a: SharedOp<f64> = Arc::new(BoxProj::new(vec![0.0, 0.0], vec![1.0, 1.0]).unwrap());
        let b: SharedOp<f64> = Arc::new(BoxProj::new(vec![3.0, -5.0], vec![4.0, 5.0]).unwrap());
        let dr = douglas_rachford(a, b).unwrap();
        let o = run(&dr, &[0.3, 0.2], &Options { tol_disp: 1e-9, maxiter: 100_000, ..Default::default() });
        assert_eq!(o.termination, Termination::Infeasible);
        let v = o.displacement.unwrap();
        assert!((v[0] + 2.0).abs() < 1e-7 && v[1].abs() < 1e-7, "{v:?}");
    }

    #[test]
    fn feasible_problems_are_never_infeasible() {
        // Slow rotation: the iterates travel far before converging.
        let op = Rotation { theta: 0.01, c: [100.0, 0.0] };
        for method in [Method::Halpern { anchoring: 1.0 }, Method::KrasnoselskiiMann { relaxation: 0.5 }] {
            let o = run(&op, &[0.0, 0.0], &Options { method, maxiter: 20_000, tol_disp: 1e-2, ..Default::default() });
            assert_ne!(o.termination, Termination::Infeasible, "{method:?}");
        }
    }

    #[test]
    fn douglas_rachford_started_far_away_is_not_infeasible() {
        // Far from a ball and a plane that intersect, DR moves toward them at a constant
        // velocity for ~100 iterations: locally a translation, and not a verdict.
        let ball: SharedOp<f64> = Arc::new(Ball::new(vec![0.0, 0.0], 1.4).unwrap());
        let plane: SharedOp<f64> =
            Arc::new(Affine(Arc::new(AffineData::new(vec![0.35, 0.82], vec![-0.95], 1, 2).unwrap())));
        let dr = douglas_rachford(ball, plane).unwrap();
        for method in
            [Method::Halpern { anchoring: 1.0 }, Method::KrasnoselskiiMann { relaxation: 0.5 }, Method::Picard]
        {
            let o = run(&dr, &[176.8, 110.9], &Options { method, maxiter: 3000, ..Default::default() });
            assert_ne!(o.termination, Termination::Infeasible, "{method:?}");
        }
    }

    #[test]
    fn restart_helps_on_an_averaged_linear_map() {
        // T = (I + D)/2 with D = diag(0.9 .. -0.9): linear convergence that Halpern's anchor
        // slows to O(1/k) and restarts recover.
        struct Diag(Vec<f64>);
        impl Operator<f64> for Diag {
            fn dim(&self) -> usize {
                self.0.len()
            }
            fn apply(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
                for ((o, a), d) in out.iter_mut().zip(x).zip(&self.0) {
                    *o = 0.5 * (a + d * a);
                }
                Ok(())
            }
        }
        let n = 20;
        let op = Diag((0..n).map(|i| 0.9 - 1.8 * i as f64 / (n - 1) as f64).collect());
        let x0 = vec![1.0; n];
        let plain = run(&op, &x0, &Options { maxiter: 20_000, ..Default::default() });
        let rest = run(&op, &x0, &Options { maxiter: 20_000, restart: Some(0.2), ..Default::default() });
        assert_eq!(rest.termination, Termination::Converged);
        assert!(rest.nit * 10 < plain.nit, "{} vs {}", rest.nit, plain.nit);
        assert!(rest.restarts > 0);
    }

    #[test]
    fn bad_options_and_nan_operator() {
        let op = Translate(vec![1.0]);
        let e = solve(&op, &[0.0, 1.0], &Options::default(), &mut NoObserver).unwrap_err();
        assert!(matches!(e, OptError::InvalidInput(_)));
        let o = Options { method: Method::Picard, restart: Some(0.5), ..Default::default() };
        assert!(solve(&op, &[0.0], &o, &mut NoObserver).is_err());
        let nan = Translate(vec![f64::NAN]);
        let o = run(&nan, &[0.0], &Options::default());
        assert!(matches!(o.termination, Termination::Numerical(_)));
        assert!(o.residual.is_nan());
    }

    #[test]
    fn f32_runs_in_f32() {
        let b = BoxProj::new(vec![0.0f32; 3], vec![1.0f32; 3]).unwrap();
        let opts = Options { method: Method::Picard, tol: 1e-6, ..Default::default() };
        let o = solve(&b, &[2.0f32, -1.0, 0.5], &opts, &mut NoObserver).unwrap();
        assert_eq!(o.termination, Termination::Converged);
        assert_eq!(o.x, vec![1.0f32, 0.0, 0.5]);
    }
}
