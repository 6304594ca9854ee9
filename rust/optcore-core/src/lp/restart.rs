//! Restarts and the primal weight. Restarts follow cuPDLPx's rule on the fixed-point residual
//! `‖z − T z‖` in the PDHG metric (sufficient decay 0.2, necessary 0.5 and growing, artificial
//! after 36% of all iterations) and re-anchor at `T z`; at each restart the primal weight `ω`
//! is updated by cuPDLPx's PID control in log space (with a reset to the best-balancing weight
//! when the movements or the residual ratio are degenerate), then a residual-balancing factor
//! `(rel_primal / max(rel_dual, rel_gap))^(1/4)` within [0.1, 10].

use super::kkt::{Kkt, Work};
use super::problem::clamp;
use super::scaling::{diff_into, Scaled};
use super::step::Iterates;
use crate::linalg::{dot, norm};

/// Where the run stands between restarts.
pub(super) struct Restarts {
    /// Iterations since the last restart (`k` of the Halpern weights).
    inner: usize,
    /// The fixed-point residual at the last restart, and at the last check.
    r0: f64,
    r_prev: f64,
    /// Restarts so far (the initial anchoring at the first check not counted).
    pub count: usize,
    /// No check has run yet (the first one always re-anchors).
    pub first: bool,
    /// Checks since the last restart.
    pub checks: usize,
}

impl Restarts {
    pub(super) fn new() -> Self {
        Restarts { inner: 0, r0: f64::INFINITY, r_prev: f64::INFINITY, count: 0, first: true, checks: 0 }
    }

    /// The Halpern weights `(1/(k+2), (k+1)/(k+2))` of the next step.
    pub(super) fn weights(&self) -> (f64, f64) {
        let kf = self.inner as f64;
        (1.0 / (kf + 2.0), (kf + 1.0) / (kf + 2.0))
    }

    /// One more iteration since the last restart.
    pub(super) fn advance(&mut self) {
        self.inner += 1;
    }

    /// Whether the residual `r` at iteration `nit` calls for a restart (and `r` becomes the
    /// last check's residual).
    pub(super) fn due(&mut self, r: f64, nit: usize) -> bool {
        let restart = self.first
            || r <= 0.2 * self.r0
            || (r <= 0.5 * self.r0 && r > self.r_prev)
            || self.inner as f64 >= 0.36 * nit as f64;
        self.r_prev = r;
        restart
    }

    /// Records a restart at residual `r`.
    pub(super) fn restarted(&mut self, r: f64) {
        self.inner = 0;
        self.r0 = r;
        self.r_prev = f64::INFINITY;
        self.count += usize::from(!self.first);
        self.first = false;
        self.checks = 0;
    }
}

/// The fixed-point residual `‖z − T z‖` in the PDHG metric of weight `omega` and step `eta`;
/// `w.dx`, `w.dy` and `tmp_m` are work space.
pub(super) fn fixed_point_residual(
    s: &Scaled,
    it: &Iterates,
    (eta, omega): (f64, f64),
    w: &mut Work,
    tmp_m: &mut [f64],
) -> f64 {
    let (dx, dy) = (&mut w.dx, &mut w.dy);
    diff_into(dx, &it.x, &it.xb);
    diff_into(dy, &it.y, &it.yb);
    s.a.matvec(dx, tmp_m);
    let (dx, dy): (&[f64], &[f64]) = (dx, dy);
    let cross = dot(tmp_m, dy);
    let r2 = omega * dot(dx, dx) + dot(dy, dy) / omega - 2.0 * eta * cross;
    r2.max(0.0).sqrt()
}

/// The primal weight `ω` and its PID controller's state.
pub(super) struct PrimalWeight {
    pub omega: f64,
    /// Integral term of the PID control.
    integ: f64,
    /// The weight that best balanced the relative primal and dual residuals so far, and that
    /// balance `|log₁₀(rel_dual / rel_primal)|`.
    omega_best: f64,
    best_balance: f64,
}

impl PrimalWeight {
    pub(super) fn new() -> Self {
        PrimalWeight { omega: 1.0, integ: 0.0, omega_best: 1.0, best_balance: f64::INFINITY }
    }

    /// Updates `ω` at a restart from the movement since the last anchor (`T z − z₀`, into
    /// `w.dx`, `w.dy`) and the KKT errors `k` (`first`: the first check, which only records).
    pub(super) fn update(&mut self, it: &Iterates, k: &Kkt, first: bool, w: &mut Work) {
        diff_into(&mut w.dx, &it.xb, &it.x_anchor);
        diff_into(&mut w.dy, &it.yb, &it.y_anchor);
        let (mx, my) = (norm(&w.dx), norm(&w.dy));
        // PID control of log ω toward log(Δy/Δx); when the movements or the residual ratio
        // are degenerate, back to the weight that best balanced the relative primal and dual
        // residuals so far.
        let ratio = k.rel_dual / k.rel_primal.max(f64::MIN_POSITIVE);
        let bal = ratio.log10().abs();
        if bal.is_finite() && bal < self.best_balance {
            self.best_balance = bal;
            self.omega_best = self.omega;
        }
        // A residual that is exactly zero by structure (the dual one of an LP whose variables
        // are all boxed, where every reduced cost is carried by a bound) says nothing about
        // the balance: the ratio guard would then pin ω to its first value for good.
        let informative = k.rel_dual > 1e-14 && k.rel_primal > 1e-14;
        let ok = mx > 1e-16 && my > 1e-16 && mx < 1e12 && my < 1e12 && (!informative || (ratio > 1e-8 && ratio < 1e8));
        if !first && ok {
            let e = my.ln() - mx.ln() - self.omega.ln();
            self.integ = 0.3 * self.integ + e;
            self.omega = clamp(self.omega * (0.99 * e + 0.01 * self.integ).exp(), 1e-5, 1e5);
            // Then a residual-balancing nudge (as ADMM's penalty update): a larger ω (longer
            // dual steps) while the primal residual lags the dual side (dual residual or gap),
            // smaller while it leads; (ratio)^(1/4), within [0.1, 10].
            let dual_side = k.rel_dual.max(k.rel_gap).max(f64::MIN_POSITIVE);
            let corr = (k.rel_primal.max(f64::MIN_POSITIVE) / dual_side).powf(0.25);
            self.omega = clamp(self.omega * clamp(corr, 0.1, 10.0), 1e-5, 1e5);
        } else if !first {
            self.omega = self.omega_best;
            self.integ = 0.0;
        }
    }
}
