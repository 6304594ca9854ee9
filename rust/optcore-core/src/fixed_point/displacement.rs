//! Infeasibility detection for the fixed-point loop: estimates of the infimal displacement
//! vector `v` (the least-norm element of the closure of the range of `I − T`; `‖x − Tx‖ ≥ ‖v‖`
//! for every `x`, and `v ≠ 0` exactly when `T` has no fixed point in the limit) and the guard
//! that keeps a consistent problem from being called inconsistent.
//!
//! # Estimators
//!
//! The estimate is a drift between geometrically spaced checkpoints (`k_{j+1} = ⌈1.5 k_j⌉`,
//! counted over the whole run, the drift itself within one restart epoch):
//!
//! - Picard, KM and Halpern with `c ≠ 1`: `(x_{k_{j−1}} − x_{k_j}) / (s_{k_j} − s_{k_{j−1}})`
//!   with `s_k` the travel of a translation (Picard `k`, KM `α k`, Halpern the recursion
//!   `s_{k+1} = (1 − β_k)(s_k + 1)`): the normalised iterate of Park & Ryu (2023) with its
//!   transient offset cancelled, exact once `T` acts on the iterates as a translation.
//! - Halpern with `c = 1`: Park & Ryu's accelerated estimator is the fixed-point residual
//!   `u_k = x_k − T x_k`, with `‖u_k − v‖ ≤ (√(H_k + 12) + 1)/(k + 1) · ‖x_0 − x_v‖` (their
//!   Thm. 8; `x_v` a point where `v` is attained, `H_k` the harmonic number), the optimal
//!   `Õ(1/k)`. The anchor keeps an `O(‖x_0 − x_v‖/k)` pull in it, so it settles to a relative
//!   `tol_disp = 1e-6` only after millions of iterations. The estimate is therefore taken on
//!   the Picard orbit that Halpern's iterates average: by the recursion,
//!   `(k + 2) x_{k+1} − (k + 1) x_k = a − (k + 1) u_k =: p_{k+1}` (`a` the anchor), and for an
//!   affine `T` Halpern's iterate is the average of the Picard orbit from `a`, so the *Picard
//!   proxy* `p_{k+1}` is `T^{k+1} a` exactly (for a nonlinear `T`, a point near that orbit).
//!   At a checkpoint the detector takes [`PROBE_STEPS`] Picard steps from the proxy and
//!   uses the residual there, `q − T q` with `q = T^J p_{k+1}`: the Picard orbit reaches the
//!   regime where `T` acts as a translation at a linear rate, so its residual is as exact as
//!   Picard's own estimate (on the bench's ball and hyperplane, 5e-8 relative at iteration
//!   10 and 1e-10 at 50, where the proxy's drift, used before, kept an error decaying like
//!   `1/k³` and reached `1e-6` only at ~600 iterations; the drift of the probes `q` keeps a
//!   `1/k²` error: the proxy's position along the orbit is off by `O(1/k)`, which a residual
//!   does not see). It costs `J + 1` applications of `T` per checkpoint (counted in `nfev`),
//!   a few percent of a run since the checkpoints are geometric. The probe from `x_k` itself
//!   instead of the proxy stays on the plateaus of polyhedral problems for longer (on the
//!   bench's boxes, to ~320 iterations instead of ~190, where Picard's leaves at ~180).
//!
//! The estimate passes a checkpoint when it changed by at most `tol_disp · ‖v̂‖` since the
//! previous one, `tol + rtol · r_0 < ‖v̂‖` (the tolerance can never be met) and
//! `‖v̂‖ ≤ (1 + 10⁻³) ‖x_k − T x_k‖` (the bound `‖v‖ ≤ ‖x − Tx‖`). Infeasibility is declared
//! when it passed at two consecutive checkpoints, after `min_disp_iter` iterations, and once
//! the guard holds. (Picard's residual alone, its best estimate where it converges linearly,
//! is not a verdict: on polyhedral problems it rests on plateaus, wrong by 1e-3, for as long as
//! two checkpoints; its drift averages over the last third of the run. The probe's residual
//! sits on such plateaus no more often than the proxy's drift did: on 60 random pairs of
//! disjoint boxes, plain and restarted, 12 of 120 verdicts were off by more than 1e-3 against
//! 18 with the drift, at a median of 120 iterations against 270.)
//!
//! # The guard
//!
//! Stabilisation is evidence about the estimate, not about consistency: a far-away fixed point
//! can be approached at a constant velocity for a long time (Douglas–Rachford started far from
//! both sets), which no finite test tells apart from infeasibility. The guard proves that no
//! fixed point lies within `R = max(‖x_0‖, ‖T x_0‖)` of the origin. Suppose `x*` is a fixed
//! point with `‖x*‖ ≤ R`; then `‖x_0 − x*‖ ≤ B := ‖x_0‖ + R`, and
//!
//! - every method is Fejér monotone: `‖x_k − x*‖ ≤ ‖x_0 − x*‖` (Picard and KM by
//!   nonexpansiveness; a Halpern step is a convex combination of the anchor and `T x_k`, both
//!   within `‖a − x*‖`; a restart's anchor is an iterate, so the bound carries over). Hence
//!   `‖x_k − x_0‖ ≤ 2B`: an iterate **farther than `2B` from `x_0`** refutes `x*`;
//! - Halpern's iteration with `β_k = 1/(k+2)` from the anchor `a` has
//!   `‖x_k − T x_k‖ ≤ 2 ‖a − x*‖ / (k + 1)` (Lieder 2021) and `‖a − x*‖ ≤ ‖x_0 − x*‖ ≤ B`
//!   (Fejér, through the restarts), so **`(k + 1) ‖x_k − T x_k‖ / 2 > B`** (with `k` counted
//!   since the anchor) refutes `x*` too. On an inconsistent problem `‖x_k − T x_k‖ ≥ ‖v‖`, so
//!   this holds after about `2B / ‖v‖` iterations, when Halpern has travelled only `B`: the
//!   anchored method's guard passes twice as early as its travel would.
//!
//! Both tests run at the checkpoints, with a 2% margin and an allowance for rounding: each
//! computed step deviates from the exact one by a few `ε (‖x‖ + ‖T x‖)`, and the bounds above
//! (Fejér's and Lieder's, for inexact iterations) grow by the sum of the deviations, at most
//! `8 (k + 1) ε S` with `S` the largest `‖x‖ + ‖T x‖` seen at the checkpoints; the travel and
//! the residual are reduced by it before the comparison (negligible in float64; in float32 it
//! keeps a feasible run of millions of iterations, whose residual rests on its rounding floor
//! while `k` grows, from passing Lieder's test). This is the previous guard (travel beyond
//! `4R ≥ 2B` from the anchor) with the same guarantee, measured from `x_0` (valid through
//! restarts, where the anchor's own norm grew with the drift) and completed by Lieder's bound.

use crate::alloc::try_with_capacity;
use crate::error::Result;
use crate::linalg::{nrm2, nrm2_diff};
use crate::operators::Operator;
use crate::real::Real;

/// Margin on the guard's tests, for the rounding of the iterates.
const GUARD_MARGIN: f64 = 1.02;

/// Picard steps `J` from the Picard proxy before its residual is taken (module docs): on the
/// bench's ball and hyperplane the residual after 4 steps is within 1e-7 of `v` (relative) from
/// iteration 10 on, and the count hardly matters beyond 2 on its boxes.
pub const PROBE_STEPS: usize = 4;

/// One estimator's state between checkpoints.
#[derive(Default)]
struct Candidate {
    last: Option<Vec<f64>>,
    passes: usize,
}

impl Candidate {
    /// Records `v` and returns whether it passed (see the module docs).
    fn pass(&mut self, v: Vec<f64>, ok: impl Fn(&[f64], &[f64]) -> bool) -> bool {
        let passed = self.last.as_ref().is_some_and(|prev| ok(&v, prev));
        self.passes = if passed { self.passes + 1 } else { 0 };
        self.last = Some(v);
        self.passes >= 2
    }

    fn clear(&mut self) {
        self.last = None;
        self.passes = 0;
    }
}

/// What the iteration is, for the drift's scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Drift {
    /// Halpern with `β_k = 1/(k+2)`: the residual after Picard steps from the Picard proxy,
    /// and Lieder's bound in the guard.
    Proxy,
    /// Halpern with another schedule: `s_{k+1} = (1 − β_k)(s_k + 1)`.
    Anchored,
    /// KM (`α`) or Picard (`1`): `s_{k+1} = s_k + α`.
    Linear(f64),
}

/// Tracks the displacement estimates and the guard (see the module docs).
pub(super) struct Displacement<T> {
    enabled: bool,
    tol: f64,
    min_iter: usize,
    drift_kind: Drift,
    /// `s_k` since the anchor (for `Anchored` and `Linear`).
    scale: f64,
    next_check: usize,
    /// The iterate and its scale at the previous checkpoint (since the anchor; not for Proxy).
    snapshot: Option<(Vec<f64>, f64)>,
    /// Proxy: the Picard proxies of the last two checkpoints before the guard held.
    pending: Vec<Vec<T>>,
    drift: Candidate,
    /// `x_0` and `B = ‖x_0‖ + max(‖x_0‖, ‖T x_0‖)` for the guard, set at the first iteration.
    origin: Vec<T>,
    bound: f64,
    proven: bool,
    /// The largest `‖x‖ + ‖T x‖` seen (the scale of the rounding allowance).
    size: f64,
}

impl<T: Real> Displacement<T> {
    pub(super) fn new(tol: f64, min_iter: usize, drift_kind: Drift) -> Self {
        // The drift needs four checkpoints k0, 1.5 k0, 2.25 k0, 3.375 k0 for its verdict.
        let first_check = ((min_iter as f64 / 3.375).ceil() as usize).max(1);
        Displacement {
            enabled: tol > 0.0,
            tol,
            min_iter,
            drift_kind,
            scale: 0.0,
            next_check: first_check,
            snapshot: None,
            pending: Vec::new(),
            drift: Candidate::default(),
            origin: Vec::new(),
            bound: f64::INFINITY,
            proven: false,
            size: 0.0,
        }
    }

    /// At the first iteration: keeps `x_0` and the guard's `B` (fallible: `x_0` is the user's).
    pub(super) fn start(&mut self, x0: &[T], tx0: &[T]) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let mut origin = try_with_capacity(x0.len(), "fixed-point displacement origin")?;
        origin.extend_from_slice(x0);
        self.origin = origin;
        let (n0, nt0) = (nrm2(x0), nrm2(tx0));
        self.bound = n0 + n0.max(nt0);
        self.size = n0 + nt0;
        Ok(())
    }

    /// A restart: the drift starts over from the new anchor (the guard does not depend on it).
    /// The Proxy's estimates are residuals at points, valid whatever the anchor, so they carry
    /// over (a restarted run then detects as early as a plain one).
    pub(super) fn restart(&mut self) {
        self.scale = 0.0;
        self.snapshot = None;
        if self.drift_kind != Drift::Proxy {
            self.drift.clear();
        }
    }

    /// Advances `s_k` by one iteration (`beta`: Halpern's anchoring weight).
    pub(super) fn step(&mut self, beta: f64) {
        self.scale = match self.drift_kind {
            Drift::Proxy | Drift::Anchored => (1.0 - beta) * (self.scale + 1.0),
            Drift::Linear(alpha) => self.scale + alpha,
        };
    }

    /// At iteration `nit` (`k` since the anchor): at a checkpoint, updates the estimates and
    /// returns `Some(v)` when infeasibility is declared. `at.residual = ‖x − T x‖ ≥ ‖v‖`; `op`
    /// is applied for the Proxy's probe, whose applications are added to `nfev`.
    pub(super) fn check(
        &mut self,
        at: &At<'_, T>,
        threshold: f64,
        op: &dyn Operator<T>,
        nfev: &mut usize,
    ) -> Result<Option<Vec<T>>> {
        let (nit, k, x, tx, residual) = (at.nit, at.k, at.x, at.tx, at.residual);
        if !self.enabled || nit < self.next_check {
            return Ok(None);
        }
        self.next_check = ((nit as f64) * 1.5).ceil() as usize;
        if !self.proven {
            self.size = self.size.max(nrm2(x) + nrm2(tx));
            let allowance = 8.0 * (nit as f64 + 1.0) * T::epsilon().as_f64() * self.size;
            let travel = nrm2_diff(x, &self.origin) - allowance;
            let lieder = self.drift_kind == Drift::Proxy
                && (k as f64 + 1.0) * (residual - allowance) / 2.0 > GUARD_MARGIN * self.bound;
            self.proven = lieder || travel > 2.0 * GUARD_MARGIN * self.bound;
        }
        let (tol, proven, late) = (self.tol, self.proven, nit >= self.min_iter);
        let ok = |v: &[f64], prev: &[f64]| {
            let nv = nrm2(v);
            proven
                && late
                && nv.is_finite()
                && nv > threshold
                && nv > 0.0
                && nv <= residual * (1.0 + 1e-3)
                && nrm2_diff(v, prev) <= tol * nv
        };
        if self.drift_kind == Drift::Proxy {
            // The probe costs applications of `T`, so it runs only once the guard holds (no
            // verdict before): then also on the proxies of the two checkpoints before, kept for
            // that, whose estimates count toward the two passes. The guard's statement (no
            // fixed point within `R`) does not depend on when it was proved, so the verdict is
            // what it would be had every checkpoint been probed and passed from the start.
            let p = proxy(at)?;
            if !self.proven {
                if self.pending.len() == 2 {
                    self.pending.remove(0);
                }
                self.pending.push(p);
                return Ok(None);
            }
            for prev in std::mem::take(&mut self.pending) {
                let e = probe(prev, op, nfev)?;
                self.drift.pass(e, ok);
            }
            let e = probe(p, op, nfev)?;
            let verdict = if self.drift.pass(e, ok) { self.drift.last.as_deref() } else { None };
            return Ok(verdict.map(|v| v.iter().map(|&t| T::from_f64(t)).collect()));
        }
        // The drift of the iterates between checkpoints, over the travel `s` of a translation.
        let mut q: Vec<f64> = try_with_capacity(x.len(), "fixed-point displacement checkpoint")?;
        q.extend(x.iter().map(|v| v.as_f64()));
        let s = self.scale;
        let estimate = self.snapshot.as_ref().and_then(|(qs, ss)| {
            let ds = s - ss;
            (ds > 0.0).then(|| q.iter().zip(qs).map(|(a, b)| -(a - b) / ds).collect::<Vec<f64>>())
        });
        self.snapshot = Some((q, s));
        let Some(d) = estimate else { return Ok(None) };
        let verdict = if self.drift.pass(d, ok) { self.drift.last.as_deref() } else { None };
        Ok(verdict.map(|v| v.iter().map(|&t| T::from_f64(t)).collect()))
    }
}

/// The iterate at a checkpoint: `nit` overall, `k` since the anchor `a`, `x_k`, `T x_k` and
/// `‖x_k − T x_k‖`.
pub(super) struct At<'a, T> {
    pub nit: usize,
    pub k: usize,
    pub x: &'a [T],
    pub tx: &'a [T],
    pub anchor: &'a [T],
    pub residual: f64,
}

/// The Picard proxy `p_{k+1} = a − (k + 1)(x_k − T x_k)` (module docs).
fn proxy<T: Real>(at: &At<'_, T>) -> Result<Vec<T>> {
    let f = at.k as f64 + 1.0;
    let mut p: Vec<T> = try_with_capacity(at.x.len(), "fixed-point displacement proxy")?;
    p.extend(
        at.anchor
            .iter()
            .zip(at.x.iter().zip(at.tx))
            .map(|(a, (x, t))| T::from_f64(a.as_f64() - f * (x.as_f64() - t.as_f64()))),
    );
    Ok(p)
}

/// The Proxy's estimate `q − T q` with `q = T^J p` (module docs). A non-finite `T q` gives a
/// non-finite estimate, which never passes.
fn probe<T: Real>(mut p: Vec<T>, op: &dyn Operator<T>, nfev: &mut usize) -> Result<Vec<f64>> {
    let n = p.len();
    let mut q: Vec<T> = try_with_capacity(n, "fixed-point displacement probe")?;
    q.resize(n, T::zero());
    for _ in 0..PROBE_STEPS {
        op.apply(&p, &mut q)?;
        *nfev += 1;
        std::mem::swap(&mut p, &mut q);
    }
    op.apply(&p, &mut q)?;
    *nfev += 1;
    let mut v: Vec<f64> = try_with_capacity(n, "fixed-point displacement estimate")?;
    v.extend(p.iter().zip(&q).map(|(a, b)| a.as_f64() - b.as_f64()));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::PROBE_STEPS;
    use crate::error::Result;
    use crate::fixed_point::{solve, Method, Options};
    use crate::operators::Operator;
    use crate::solver::{NoObserver, Termination};

    /// `T x = D x + t` with `D = diag(1, 0.5, 0.5)`: no fixed point, `v = (−t_0, 0, 0)`.
    struct Affine3([f64; 3]);
    impl Operator<f64> for Affine3 {
        fn dim(&self) -> usize {
            3
        }
        fn apply(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
            out[0] = x[0] + self.0[0];
            out[1] = 0.5 * x[1] + self.0[1];
            out[2] = 0.5 * x[2] + self.0[2];
            Ok(())
        }
    }

    #[test]
    fn the_picard_proxy_is_exact_for_an_affine_map() {
        // Halpern's iterate is the average of the Picard orbit, so the proxy's drift is Picard's
        // drift: exact once the contracting part has died out, where the residual itself keeps
        // the anchor's pull 4 |x0_perp| / (k + 1) and the iterates' drift an O(1/k²) error.
        let op = Affine3([-1.0, 2.0, 3.0]);
        let x0 = [0.0, 40.0, -30.0];
        let o = solve(&op, &x0, &Options::default(), &mut NoObserver).unwrap();
        assert_eq!(o.termination, Termination::Infeasible);
        let v = o.displacement.unwrap();
        let err = ((v[0] - 1.0).powi(2) + v[1].powi(2) + v[2].powi(2)).sqrt();
        assert!(err < 1e-10, "{v:?}");
        let r = [o.x[0] - (o.x[0] - 1.0), 0.5 * o.x[1] - 2.0, 0.5 * o.x[2] - 3.0];
        assert!(r[1].abs() + r[2].abs() > 1e-3, "the residual itself is still far off: {r:?}");
        // The same run with anchoring c = 2 uses the iterates' drift, which settles later.
        let c2 = Options { method: Method::Halpern { anchoring: 2.0 }, maxiter: 1_000_000, ..Default::default() };
        let o2 = solve(&op, &x0, &c2, &mut NoObserver).unwrap();
        assert_eq!(o2.termination, Termination::Infeasible);
        assert!(o2.nit > o.nit, "{} vs {}", o2.nit, o.nit);
    }

    #[test]
    fn the_probe_runs_only_once_the_guard_holds_and_counts_in_nfev() {
        // Infeasible: 5 applications of T per probed checkpoint (4 Picard steps and the
        // residual), none before the guard; detection with the plain and restarted iterations
        // at the same checkpoint, the estimate exact.
        let op = Affine3([-1.0, 2.0, 3.0]);
        let x0 = [0.0, 40.0, -30.0];
        let plain = solve(&op, &x0, &Options::default(), &mut NoObserver).unwrap();
        let extra = plain.nfev - plain.nit - 1;
        assert!(extra > 0 && extra % (PROBE_STEPS + 1) == 0, "{} {}", plain.nfev, plain.nit);
        assert!(extra <= 4 * (PROBE_STEPS + 1), "{extra}");
        let rs = Options { restart: Some(0.2), ..Default::default() };
        let restarted = solve(&op, &x0, &rs, &mut NoObserver).unwrap();
        assert_eq!(restarted.termination, Termination::Infeasible);
        assert!(restarted.nit <= plain.nit, "{} vs {}", restarted.nit, plain.nit);
        // Consistent (T x = 0.5 x + 1 has the fixed point 2, within R of the origin): the guard
        // never holds, no probe, nfev = nit + 1 (at the iteration limit: the rate is O(1/k)).
        struct Half;
        impl Operator<f64> for Half {
            fn dim(&self) -> usize {
                1
            }
            fn apply(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
                out[0] = 0.5 * x[0] + 1.0;
                Ok(())
            }
        }
        let o = solve(&Half, &[1e3], &Options { tol: 1e-12, ..Default::default() }, &mut NoObserver).unwrap();
        assert_ne!(o.termination, Termination::Infeasible);
        assert_eq!(o.nfev, o.nit + 1);
    }

    #[test]
    fn lieders_bound_proves_no_nearby_fixed_point_before_the_travel_does() {
        // A translation by v from far away: Halpern's residual ‖v‖ exceeds 2 B / (k + 1) once
        // k + 1 > 2 B / ‖v‖, when its iterates have travelled only k ‖v‖ / 2 ≈ B < 2 B.
        struct Shift;
        impl Operator<f64> for Shift {
            fn dim(&self) -> usize {
                2
            }
            fn apply(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
                out[0] = x[0] - 1.0;
                out[1] = x[1];
                Ok(())
            }
        }
        let x0 = [0.0, 100.0];
        let halpern = solve(&Shift, &x0, &Options::default(), &mut NoObserver).unwrap();
        let picard = Options { method: Method::Picard, ..Default::default() };
        let p = solve(&Shift, &x0, &picard, &mut NoObserver).unwrap();
        assert_eq!(halpern.termination, Termination::Infeasible);
        // B = 200: Lieder's bound needs k + 1 > 408, Picard's travel k > 408 (speed 1), the
        // Halpern travel alone k / 2 > 408.
        // With the checkpoints (…, 405, 608, 912, …): both detect at 912, where Halpern's travel
        // alone would have proved it at 816 and passed at 1,368 and 2,052.
        assert_eq!(p.termination, Termination::Infeasible);
        assert!(halpern.nit <= p.nit && halpern.nit < 1368, "{} vs {}", halpern.nit, p.nit);
    }
}
