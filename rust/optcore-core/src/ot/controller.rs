//! The decisions of a Sinkhorn run, in one place for the CPU loop and the GPU driver.
//!
//! A [`Controller`] holds what decides a log-domain (or scaling) Sinkhorn run apart from the
//! passes over the cost: the over-relaxation factor ([`Relax`]: `omega` from the observed rate,
//! back to plain iterations when the error grows), the stall test ([`Stall`]), the ε-schedule
//! ([`eps_schedule`]) and the end of an intermediate stage. The CPU loop
//! ([`super::sinkhorn_log`]) owns one; the GPU driver (`optcore.ot._gpu`) owns one through the
//! binding's `SinkhornController`, feeds it the errors it measured on the device, and asks it
//! for `omega`, the next stage and whether the run has stalled. [`NewtonControl`] does the same
//! for the Newton stage of Sinkhorn–Newton–Sparse (damping, stall test, CG tolerance, line
//! search).

use crate::real::Real;
use crate::solver::Termination;

/// Over-relaxation of the log-domain solver's updates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Overrelax {
    /// Plain Sinkhorn (`omega = 1`).
    Off,
    /// A fixed `omega` in `[1, 2)`.
    Fixed(f64),
    /// `omega` from the observed rate of the plain iteration (see [`Relax`]).
    Auto,
}

/// ε-scaling: solve at `eps0, eps0*decay, eps0*decay^2, ...` down to `reg`, each stage
/// warm-started from the previous one's potentials and run until its marginal error is below
/// `stage_tol` or for `stage_maxiter` iterations.
#[derive(Clone, Debug)]
pub struct EpsScaling {
    /// Initial regularisation (`None`: the range `max(M) - min(M)`).
    pub eps0: Option<f64>,
    pub decay: f64,
    pub stage_tol: f64,
    pub stage_maxiter: usize,
}

impl Default for EpsScaling {
    fn default() -> Self {
        EpsScaling { eps0: None, decay: 0.5, stage_tol: 1e-3, stage_maxiter: 100 }
    }
}

/// The regularisations of an ε-scaling schedule, ending with `reg` (`range`: the cost range
/// `max(M) - min(M)`, the default `eps0`).
pub fn eps_schedule(reg: f64, es: &EpsScaling, range: f64) -> Vec<f64> {
    let eps0 = es.eps0.unwrap_or(range);
    let mut out = Vec::new();
    if es.decay > 0.0 && es.decay < 1.0 {
        let mut e = eps0;
        while e > reg && out.len() < 200 {
            out.push(e);
            e *= es.decay;
        }
    }
    out.push(reg);
    out
}

/// The over-relaxation controller.
///
/// With `Overrelax::Auto` the plain iteration runs first; its observed linear rate `kappa`
/// gives `omega = 2 / (1 + sqrt(1 - kappa))`, and the plain iteration is restored if the
/// error grows. SOR theory (Young) links the plain iteration's rate `kappa = mu^2` to the
/// over-relaxed one, `lambda`: `(lambda + omega - 1)^2 = lambda omega^2 mu^2`, with the best
/// factor `omega* = 2 / (1 + sqrt(1 - kappa))`. The controller estimates `kappa` from the plain
/// iteration's error decay, then keeps refining it from the over-relaxed decay by inverting
/// that relation (a rate estimated early, before the slowest mode dominates, is too small).
#[derive(Clone, Debug)]
pub struct Relax {
    mode: Overrelax,
    omega: f64,
    hist: Vec<f64>,
    start: usize,
    best: f64,
    since: usize,
}

impl Relax {
    const WINDOW: usize = 10;
    const MAX_OMEGA: f64 = 1.95;

    pub fn new(mode: Overrelax) -> Self {
        let omega = match mode {
            Overrelax::Fixed(w) => w,
            _ => 1.0,
        };
        Relax { mode, omega, hist: Vec::new(), start: 2 * Self::WINDOW, best: f64::INFINITY, since: 0 }
    }

    /// The factor of the next iteration.
    pub fn omega(&self) -> f64 {
        self.omega
    }

    /// Restarts the rate estimate at a new ε stage.
    pub fn restart(&mut self) {
        self.hist.clear();
        if self.mode == Overrelax::Auto {
            self.omega = 1.0;
        }
    }

    /// After a numerical recovery: plain iterations, and a longer wait before over-relaxing.
    pub fn back_off(&mut self) {
        if self.mode == Overrelax::Auto && self.omega != 1.0 {
            self.omega = 1.0;
            self.start *= 2;
        }
        self.hist.clear();
    }

    fn rate(&self) -> Option<f64> {
        let h = &self.hist;
        if h.len() <= Self::WINDOW {
            return None;
        }
        let (e1, e0) = (h[h.len() - 1], h[h.len() - 1 - Self::WINDOW]);
        let r = (e1 / e0).powf(1.0 / Self::WINDOW as f64);
        (r.is_finite() && r > 0.0 && r < 1.0).then_some(r)
    }

    fn set_kappa(&mut self, kappa: f64) {
        let w = 2.0 / (1.0 + (1.0 - kappa.min(0.9999)).sqrt());
        self.omega = w.clamp(1.0, Self::MAX_OMEGA);
        self.since = 0;
    }

    /// Takes the marginal error of one iteration (in iteration order).
    pub fn observe(&mut self, err: f64) {
        if self.mode != Overrelax::Auto || !err.is_finite() {
            return;
        }
        self.hist.push(err);
        if self.omega == 1.0 {
            if self.hist.len() >= self.start {
                if let Some(kappa) = self.rate() {
                    self.set_kappa(kappa);
                    self.best = err;
                }
            }
            return;
        }
        self.best = self.best.min(err);
        self.since += 1;
        if err > 100.0 * self.best {
            // Diverging (far from the solution the linear model fails): back to plain
            // iterations, and wait longer before trying again.
            self.back_off();
        } else if self.since >= 2 * Self::WINDOW {
            if let Some(lambda) = self.rate() {
                let w = self.omega;
                let mu = (lambda + w - 1.0) / (w * lambda.sqrt());
                if mu.is_finite() && mu > 0.0 {
                    self.set_kappa((mu * mu).min(1.0));
                }
            } else {
                self.since = 0;
            }
        }
    }
}

/// Detects a run whose error has stopped decreasing (a precision floor: float32 potentials,
/// or a `tol` below what rounding allows): no 1% improvement of the best error in the last
/// `max(500, nit / 2)` iterations.
#[derive(Clone, Debug)]
pub struct Stall {
    /// The best error seen (reported in the stall message).
    pub best: f64,
    at: usize,
}

impl Default for Stall {
    fn default() -> Self {
        Stall { best: f64::INFINITY, at: 0 }
    }
}

impl Stall {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the error at iteration `nit`; true when the run has stalled.
    pub fn stalled(&mut self, nit: usize, err: f64) -> bool {
        if err < 0.99 * self.best {
            self.best = err;
            self.at = nit;
        }
        nit - self.at > 500.max(nit / 2)
    }

    /// Why the run stopped, for data of the type named `dtype` ("float32" or "float64").
    pub fn detail(&self, tol: f64, dtype: &str) -> String {
        let advice = if dtype == "float32" {
            "float32 potentials carry a relative error of about 1e-7 * |f| / reg; use float64 \
             data or a larger tol"
        } else {
            "float64 potentials carry a relative error of about 1e-16 * |f| / reg; use a larger \
             tol"
        };
        format!(
            "the marginal error stalled at {:.3e} above tol = {tol:.1e}: rounding limits the \
             attainable accuracy ({advice})",
            self.best
        )
    }

    pub fn termination<T: Real>(&self, tol: f64) -> Termination {
        Termination::Numerical(self.detail(tol, T::NAME))
    }
}

/// The decisions of one Sinkhorn run: over-relaxation, stall test, ε-schedule and the end of
/// each stage. The caller runs the iterations and reports what it measured.
#[derive(Clone, Debug)]
pub struct Controller {
    relax: Relax,
    /// The stall test of the current stage (a new one per stage).
    pub stall: Stall,
    stages: Vec<f64>,
    stage_tol: f64,
    stage_maxiter: usize,
}

impl Controller {
    /// `stages`: the regularisations to run, the last one the target (see [`eps_schedule`]);
    /// an intermediate stage ends once its error is below `stage_tol` or after
    /// `stage_maxiter` iterations.
    pub fn new(overrelax: Overrelax, stages: Vec<f64>, stage_tol: f64, stage_maxiter: usize) -> Self {
        Controller { relax: Relax::new(overrelax), stall: Stall::new(), stages, stage_tol, stage_maxiter }
    }

    /// The regularisations of the run, in order.
    pub fn stages(&self) -> &[f64] {
        &self.stages
    }

    pub fn stage_tol(&self) -> f64 {
        self.stage_tol
    }

    pub fn stage_maxiter(&self) -> usize {
        self.stage_maxiter
    }

    /// The over-relaxation factor of the next iteration.
    pub fn omega(&self) -> f64 {
        self.relax.omega()
    }

    /// Starts a stage: a new rate estimate and a new stall test.
    pub fn begin_stage(&mut self) {
        self.stall = Stall::new();
        self.relax.restart();
    }

    /// Takes the marginal error of one iteration (in iteration order).
    pub fn observe(&mut self, err: f64) {
        self.relax.observe(err);
    }

    /// After a numerical recovery: plain iterations for a while.
    pub fn back_off(&mut self) {
        self.relax.back_off();
    }

    /// Takes the error at iteration `nit` of the last stage; true when the run has stalled.
    pub fn stalled(&mut self, nit: usize, err: f64) -> bool {
        self.stall.stalled(nit, err)
    }

    /// Whether an intermediate stage is over after `stage_it` iterations with error `err`.
    pub fn stage_over(&self, err: f64, stage_it: usize) -> bool {
        err <= self.stage_tol || stage_it >= self.stage_maxiter
    }
}

/// The acceptance test of one backtracking line search along a Newton direction.
#[derive(Clone, Copy, Debug)]
pub struct LineSearch {
    pub reg: f64,
    /// Directional derivative of the dual along the (unscaled) direction.
    pub slope: f64,
    /// The dual before the step.
    pub d0: f64,
    /// Magnitude of the dual's terms (the rounding level is relative to it).
    pub scale: f64,
    /// The marginal error before the step.
    pub err: f64,
}

impl LineSearch {
    /// Step lengths, tried in order.
    pub const STEPS: [f64; 6] = [1.0, 0.5, 0.25, 0.1, 0.03, 0.01];

    /// Whether the search runs at all: an ascent direction.
    pub fn ascent(&self) -> bool {
        self.slope > 0.0 && self.slope.is_finite()
    }

    /// Whether the step of length `alpha` (dual `d1`, marginal error `err_trial` after it) is
    /// accepted: the Armijo test on the dual or, at rounding level where the dual cannot rank
    /// the points, a smaller marginal error.
    pub fn accepts(&self, alpha: f64, d1: f64, err_trial: f64) -> bool {
        let armijo = d1 >= self.d0 + 1e-4 * alpha * self.reg * self.slope;
        let rounding = (d1 - self.d0).abs() <= 64.0 * f64::EPSILON * self.scale && err_trial < self.err;
        d1.is_finite() && err_trial.is_finite() && (armijo || rounding)
    }
}

/// The decisions of the Newton stage of Sinkhorn–Newton–Sparse, shared by the CPU solver and
/// the GPU driver: the damping `mu` of the shift `mu * ||grad||` (SSNS: from the ratio of the
/// actual to the predicted increase of the dual), the stall test (no 1% decrease in 50
/// iterations), the inexact-Newton CG tolerance and the backtracking line search.
#[derive(Clone, Debug)]
pub struct NewtonControl {
    /// The damping factor of the next step.
    pub mu: f64,
    /// The best error of the stage (reported in the stall message).
    pub best: f64,
    best_at: usize,
}

impl Default for NewtonControl {
    fn default() -> Self {
        NewtonControl { mu: 1e-2, best: f64::INFINITY, best_at: 0 }
    }
}

impl NewtonControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the error at iteration `nit`; true when it has not decreased by 1% in 50
    /// iterations.
    pub fn stalled(&mut self, nit: usize, err: f64) -> bool {
        if err < 0.99 * self.best {
            self.best = err;
            self.best_at = nit;
            false
        } else {
            nit - self.best_at > 50
        }
    }

    /// Why the Newton stage stopped, for data of the type named `dtype`.
    pub fn detail(&self, tol: f64, dtype: &str) -> String {
        format!(
            "the marginal error stalled at {:.3e} above tol = {tol:.1e} in the Newton stage (no \
             1% decrease in 50 iterations): rounding in {dtype} limits the attainable accuracy, or the \
             sparsified Hessian is too sparse (options['density']); use a larger tol{}",
            self.best,
            if dtype == "float32" { " or float64 data" } else { "" }
        )
    }

    /// Relative tolerance of the CG solve (inexact Newton): `min(0.1, sqrt(err / mass))`.
    pub fn cg_rtol(err: f64, mass: f64) -> f64 {
        (err / mass).sqrt().min(0.1)
    }

    /// Updates `mu` after an accepted step of length `alpha` whose actual increase of the dual
    /// is `actual` where the model predicted `pred`.
    pub fn accepted(&mut self, alpha: f64, actual: f64, pred: f64) {
        let ratio = if pred > 0.0 { actual / pred } else { 0.0 };
        if alpha < 1.0 || ratio < 0.25 {
            self.mu *= 4.0;
        } else if ratio > 0.75 {
            self.mu = (self.mu * 0.5).max(1e-3);
        }
    }

    /// Updates `mu` when no step length increased the dual (a Sinkhorn step is taken instead).
    pub fn rejected(&mut self) {
        self.mu *= 8.0;
    }
}
