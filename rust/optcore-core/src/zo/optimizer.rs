//! The zeroth-order methods as one ask/tell state machine ([`Zo`], Python's
//! `optcore.zo.Optimizer`); [`super::minimize`] has the loop that drives it.
//!
//! An iteration asks for a batch of points, gets their values (or, for ZO-RankSGD, a
//! ranking), and updates its state. Everything random is a function of
//! `(seed, iteration, index)` ([`super::rng`]), so a run depends on the seed and the values
//! only: not on how, where or in which order the batch was evaluated.
//!
//! Iterates are held in f64 and rounded to `T` after every update, so a float32 run
//! evaluates exactly the float32 points it reports.

pub use super::boxes::project;
use super::boxes::{inward, side};
use super::estimate::{rank_gradient, Directions, Estimator, Scheme};
use super::rng::{Counter, Stream};
use crate::alloc::{checked_len, try_filled, try_with_capacity};
use crate::error::{OptError, Result};
use crate::real::Real;

/// How a gradient method turns an estimate `g` into a step direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Update {
    /// `x ← P(x - lr g)`.
    Plain,
    /// Heavy ball: `v ← beta v + g`, `x ← P(x - lr v)`; `v` restarts from 0 whenever the
    /// adaptive rule takes a step back (function-value restart, as for accelerated methods).
    Momentum { beta: f64 },
    /// ZO-signSGD: `x ← P(x - lr sign(g))`.
    Sign,
    /// ZO-AdaMM (AMSGrad moments, no bias correction): `m ← β1 m + (1-β1) g`,
    /// `v ← β2 v + (1-β2) g²`, `v̂ ← max(v̂, v)`, `x ← P(x - lr m / (sqrt(v̂) + eps))`. The
    /// projection in the norm induced by `sqrt(v̂)` onto a box is the coordinate-wise clip,
    /// i.e. the Euclidean one, because that norm is diagonal.
    AdaMM { beta1: f64, beta2: f64, eps: f64 },
}

/// CBO's diffusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noise {
    /// `σ sqrt(dt) |X_i - v|₂ ξ_i`.
    Isotropic,
    /// `σ sqrt(dt) (X_i - v) ⊙ ξ_i` (scales better with the dimension).
    Anisotropic,
}

/// The constants of consensus-based optimisation (see [`Method::Cbo`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cbo {
    pub particles: usize,
    pub alpha: f64,
    pub lambda: f64,
    pub sigma: f64,
    pub dt: f64,
    pub noise: Noise,
    pub hopping: bool,
    pub sigma_decay: f64,
    pub init_std: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Two-point / coordinate estimators with a plain, sign or AdaMM update. `perturbation`:
    /// `Some(r)` adds an isotropic `Y ~ N(0, r²/d I)` to every estimate (Ren, Tang & Li 2023,
    /// for escaping saddles); `Some(0)` means `r = 1e-3 ‖g_0‖` from the first estimate (when
    /// that is 0: `1e-3 max(1, |f(x0)|) / max(1, ‖x0‖∞)`).
    Gradient { est: Estimator, update: Update, perturbation: Option<f64> },
    /// Consensus-based optimisation with `particles` particles started at
    /// `x0 + init_std N(0, I)`: consensus `v = Σ X_i e^{-α f_i} / Σ e^{-α f_i}` (shifted by the
    /// smallest value, i.e. log-sum-exp), then Euler–Maruyama
    /// `X_i ← X_i - λ dt (X_i - v) + noise`; with `hopping`, consensus hopping
    /// `X_i ← v + σ_k ξ_i`, `σ_k = sigma · sigma_decay^k`.
    Cbo(Cbo),
    /// ZO-RankSGD: `m` points `x + μ ξ_i`, a ranking of the best `k`, the step
    /// `x ← P(x - lr ĝ / ‖ĝ‖)` with `lr ← lr · decay` after each iteration.
    Rank { m: usize, k: usize, mu: f64, decay: f64 },
}

/// Step-size rule of the gradient methods.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// A fixed `lr` (ZO-RankSGD: the initial step length).
    Fixed(f64),
    /// Success-based: the first step has length `step0`; then `lr ← grow · lr` after a step that
    /// decreased `f` at the center (evaluated in every batch), and after one that increased it
    /// the step is taken back, `lr ← shrink · lr`, and the next batch is drawn at the previous
    /// point.
    Adaptive { step0: f64, grow: f64, shrink: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub method: Method,
    pub step: Step,
    /// Box bounds (may be infinite; both empty: none): every point asked for, every iterate and the best point
    /// lie in them (see [`Estimator::points`] for the perturbed points near the boundary).
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// Converged when the iterate moved by at most `xtol · max(1, ‖x‖∞)` (∞-norm) in three
    /// consecutive iterations. CBO: the particles collapsed (spread around the consensus below
    /// that for three iterations), which ends the run but is not convergence (see
    /// [`Zo::collapsed`]).
    pub xtol: f64,
    /// Treat NaN values as `+inf` (otherwise a NaN ends the run: status 4).
    pub nan_as_inf: bool,
    pub seed: u64,
}

/// The state of a zeroth-order run (see the module docs).
///
/// Memory is O(d) whatever the batch size, and for the gradient methods no more than the
/// iterate and one more vector in `T` (the anchor: the center of the best point's batch, from
/// which the best point and the adaptive step's previous iterate are regenerated, see `lazy`;
/// heavy ball, AdaMM and CGE may hold the best point and the previous iterate instead) and the
/// vectors the update keeps: the points of an iteration are
/// generated one at a time by [`Zo::point`] and the step is applied chunk by chunk of
/// coordinates, regenerating the directions from the seed (see `stream`), so neither a
/// direction nor the estimate is held as a d-vector. Heavy ball keeps `m1`, AdaMM `m1`, `v2`
/// and `vhat` (f64); ZO-RankSGD holds its estimate, a direction and its step direction (it
/// needs the estimate's norm before the step). [`Zo::ask`] still materialises the whole batch
/// for the ask/tell interface and for objectives that take batches; CBO holds its particles.
pub struct Zo<T> {
    o: Options,
    d: usize,
    rng: Counter,
    /// Some bound is finite (otherwise no point needs an inside test).
    bounded: bool,
    x: Vec<T>,
    nit: u64,
    nfev: usize,
    batch: Vec<T>,
    /// The batch of the current iteration is materialised in `batch`.
    asked: bool,
    /// The current iteration's coordinates and signs are set up (by `ask`, `point`, `begin`).
    begun: bool,
    coords: Vec<usize>,
    /// Signs of the one-sided differences of the current iteration (NaN: not computed yet).
    signs: Vec<f64>,
    /// ZO-RankSGD's scratch for one direction (the gradient methods generate in chunks).
    u: Vec<f64>,
    /// Two chunks of scratch (a direction's and the estimate's, see `stream`).
    scratch: Vec<f64>,
    /// Per point of the current batch: how it is perturbed (0: not decided yet; see `decide`).
    decided: Vec<u8>,
    /// Sphere directions: each one's norm in the current iteration (NaN: not computed yet).
    norms: Vec<f64>,
    // gradient methods
    /// The last estimate, as the scalars it is regenerated from (`None`: zero).
    last: Option<stream::Estimate>,
    /// ZO-RankSGD's estimate and step direction.
    g: Vec<f64>,
    dir: Vec<f64>,
    /// The iterate before the last step, when kept as a vector (see `lazy`).
    prev: Vec<T>,
    /// The previous iterate is the iterate (no step since the last step back).
    prev_is_x: bool,
    /// An older iterate: the center of the best point's batch (see `lazy`; empty: none).
    anchor: Vec<T>,
    /// The accepted steps from the anchor to the iterate (adaptive step only).
    chain: Vec<lazy::Replay>,
    /// Replay passes the budget still pays for (see `lazy::REPLAY_RATE`).
    credit: f64,
    /// The step size of the last step.
    last_lr: f64,
    f_prev: f64,
    lr: f64,
    m1: Vec<f64>,
    v2: Vec<f64>,
    vhat: Vec<f64>,
    radius: Option<f64>,
    // CBO
    parts: Vec<f64>,
    sigma_now: f64,
    // bookkeeping
    best: lazy::Best<T>,
    best_f: f64,
    history: Vec<(usize, f64)>,
    small_moves: usize,
    failures: usize,
}

fn round<T: Real>(v: &mut [f64]) {
    v.iter_mut().for_each(|x| *x = T::from_f64(*x).as_f64());
}

fn inf_norm<T: Real>(v: &[T]) -> f64 {
    v.iter().fold(0.0f64, |a, b| a.max(b.as_f64().abs()))
}

impl<T: Real> Zo<T> {
    pub fn new(x0: &[T], o: Options) -> Result<Self> {
        let d = x0.len();
        let bad = |s: &str| Err(OptError::InvalidInput(s.into()));
        if d == 0 {
            return bad("x0 must not be empty");
        }
        let free = o.lower.is_empty() && o.upper.is_empty();
        if !free && (o.lower.len() != d || o.upper.len() != d) {
            return bad("bounds must have the length of x0 (or both be empty: no bounds)");
        }
        if o.lower.iter().zip(&o.upper).any(|(l, u)| l.is_nan() || u.is_nan() || l > u) {
            return bad("bounds must satisfy lower <= upper");
        }
        if o.lower.iter().zip(&o.upper).any(|(&l, &u)| l == f64::INFINITY || u == f64::NEG_INFINITY) {
            return bad("bounds: every lower bound must be < +inf and every upper bound > -inf");
        }
        // Bounds rounded inwards to T, so that a point projected then rounded to T stays in them.
        let mut o = o;
        for (l, u) in o.lower.iter_mut().zip(o.upper.iter_mut()) {
            (*l, *u) = (inward::<T>(*l, true), inward::<T>(*u, false));
            if l > u {
                return bad("bounds: a box side contains no point of x0's dtype");
            }
        }
        if !x0.iter().all(|v| v.is_finite()) {
            return bad("x0 must be finite");
        }
        let positive = |v: f64| v > 0.0; // false for NaN
        match &o.method {
            Method::Gradient { est, .. } if est.count(d) == 0 || !positive(est.mu) => {
                return bad("the estimator needs q >= 1 directions and mu > 0")
            }
            Method::Cbo(c) if c.particles < 1 => return bad("cbo needs at least one particle"),
            Method::Rank { m, k, mu, .. } if *m < 2 || *k < 1 || k > m || !positive(*mu) => {
                return bad("rank needs m >= 2, 1 <= k <= m and mu > 0")
            }
            _ => {}
        }
        let lr = match o.step {
            Step::Fixed(lr) => lr,
            Step::Adaptive { .. } => f64::NAN,
        };
        let sigma_now = match o.method {
            Method::Cbo(c) => c.sigma,
            _ => 0.0,
        };
        let radius = match o.method {
            Method::Gradient { perturbation, .. } => perturbation,
            _ => None,
        };
        let moments = match o.method {
            Method::Gradient { update: Update::Momentum { .. }, .. } => 1,
            Method::Gradient { update: Update::AdaMM { .. }, .. } => 3,
            _ => 0,
        };
        let rank = matches!(o.method, Method::Rank { .. });
        // Zero-filled serially, not by the shared thread pool: replicas live in worker
        // processes that a process pool may have forked from a parent whose pool threads do
        // not exist in the child (a parallel fill there never returns).
        let vec = |n: usize, what: &str| try_filled::<f64>(n, 0.0, what);
        let dn = |on: bool| if on { d } else { 0 };
        let bounded = o.lower.iter().chain(&o.upper).any(|b| b.is_finite());
        if !bounded {
            // No finite side: no d-vectors of infinities (empty bounds mean none).
            o.lower = Vec::new();
            o.upper = Vec::new();
        }
        // x0 projected onto the box (in f64) and rounded to T, entry by entry.
        let mut x: Vec<T> = try_with_capacity(d, "the iterate")?;
        x.extend(x0.iter().enumerate().map(|(j, v)| {
            let (l, u) = (side(&o.lower, j, f64::NEG_INFINITY), side(&o.upper, j, f64::INFINITY));
            T::from_f64(v.as_f64().max(l).min(u))
        }));
        let rng = Counter { seed: o.seed };
        // The best point starts as x0: the center of the first batch (kept as a vector by
        // the methods whose points are not regenerated from the iterate).
        let best = match o.method {
            Method::Gradient { .. } => {
                let dir = stream::Dir { it: 0, i: 0, coord: 0, norm: f64::NAN };
                lazy::Best::AtX(lazy::Seed { dir, h: 0.0, clip: false, centre: true })
            }
            _ => {
                let mut b = try_with_capacity(d, "the best point")?;
                b.extend_from_slice(&x);
                lazy::Best::Dense(b)
            }
        };
        Ok(Zo {
            d,
            rng,
            bounded,
            best,
            prev: Vec::new(),
            prev_is_x: true,
            anchor: Vec::new(),
            chain: Vec::new(),
            credit: lazy::REPLAY_SAVINGS,
            last_lr: f64::NAN,
            x,
            nit: 0,
            nfev: 0,
            batch: Vec::new(),
            asked: false,
            begun: false,
            coords: Vec::new(),
            signs: Vec::new(),
            u: vec(dn(rank), "a search direction")?,
            scratch: vec(2 * stream::CHUNK, "a chunk of a direction")?,
            decided: Vec::new(),
            norms: Vec::new(),
            last: None,
            g: vec(dn(rank), "the gradient estimate")?,
            dir: vec(dn(rank), "the step direction")?,
            f_prev: f64::NAN,
            lr,
            m1: vec(dn(moments >= 1), "the first moment")?,
            v2: vec(dn(moments >= 3), "the second moment")?,
            vhat: vec(dn(moments >= 3), "the second moment")?,
            radius,
            parts: Vec::new(),
            sigma_now,
            best_f: f64::INFINITY,
            history: Vec::new(),
            small_moves: 0,
            failures: 0,
            o,
        })
    }

    pub fn dim(&self) -> usize {
        self.d
    }
    /// Points per batch.
    pub fn batch_size(&self) -> usize {
        match &self.o.method {
            Method::Gradient { est, .. } => est.batch_size(self.d),
            Method::Cbo(c) => c.particles,
            Method::Rank { m, .. } => *m,
        }
    }
    /// Iterations completed (answered batches).
    pub fn nit(&self) -> u64 {
        self.nit
    }
    /// Evaluations (points told) so far.
    pub fn nfev(&self) -> usize {
        self.nfev
    }
    /// The current iterate (CBO: the last consensus point).
    pub fn x(&self) -> Vec<T> {
        self.x.clone()
    }
    /// The best point evaluated so far and its value (`+inf` before any value was told),
    /// regenerated when it is not kept as a vector (see `lazy`).
    pub fn best(&self) -> (Vec<T>, f64) {
        (self.best_point().expect("memory for a copy of the best point"), self.best_f)
    }
    /// The best value so far (`+inf` before any value was told).
    pub fn best_value(&self) -> f64 {
        self.best_f
    }
    /// Moves the best point and the iterate out (for [`super::solve`]'s output): the state
    /// is finished, and `x()`/`best()` are empty afterwards. The best point is generated in
    /// place where it is kept as the anchor and the seed of a point.
    pub fn take_points(&mut self) -> Result<(Vec<T>, Vec<T>)> {
        let best = self.take_best()?;
        Ok((best, std::mem::take(&mut self.x)))
    }
    /// The best-so-far trace: `(evaluations, value)` at every improvement.
    pub fn history(&self) -> &[(usize, f64)] {
        &self.history
    }
    /// The last gradient estimate (gradient methods and ZO-RankSGD; zero before the first and
    /// for CBO), regenerated from the seed for the gradient methods.
    pub fn gradient(&self) -> Vec<f64> {
        match self.o.method {
            Method::Gradient { .. } => self.estimate_vector(),
            Method::Rank { .. } => self.g.clone(),
            Method::Cbo(_) => vec![0.0; self.d],
        }
    }
    /// The current step size (NaN before an adaptive rule took its first step).
    pub fn lr(&self) -> f64 {
        self.lr
    }
    /// Steps taken back by the adaptive rule.
    pub fn failures(&self) -> usize {
        self.failures
    }
    /// The current CBO particles (row-major), empty for the other methods.
    pub fn particles(&self) -> Vec<T> {
        self.parts.iter().map(|&v| T::from_f64(v)).collect()
    }
    /// Whether the `xtol` criterion holds (see [`Options::xtol`]); never for CBO, whose
    /// particles collapsing is [`Zo::collapsed`].
    pub fn converged(&self) -> bool {
        self.small_moves >= 3 && !matches!(self.o.method, Method::Cbo(_))
    }

    /// CBO: the particles' spread around the consensus stayed below `xtol · max(1, ‖v‖∞)` for
    /// three iterations. The run can make no more progress, but nothing says the consensus is
    /// a minimiser (it may collapse anywhere), so this is not convergence.
    pub fn collapsed(&self) -> bool {
        self.small_moves >= 3 && matches!(self.o.method, Method::Cbo(_))
    }

    fn note_move(&mut self, moved: f64) {
        self.note_move_scaled(moved, inf_norm(&self.x));
    }

    /// [`Zo::note_move`] with `‖x‖∞` already known.
    fn note_move_scaled(&mut self, moved: f64, x_inf: f64) {
        let scale = x_inf.max(1.0);
        if moved <= self.o.xtol * scale {
            self.small_moves += 1;
        } else {
            self.small_moves = 0;
        }
    }

    /// Sets up the current iteration (CGE's coordinates, the signs, CBO's first particles);
    /// [`Zo::ask`] and [`Zo::point`] call it, and a caller that gets the values elsewhere
    /// (replicas that evaluate the points, see `optcore.zo`'s seed transport) calls it before
    /// [`Zo::tell`]. Idempotent within an iteration.
    pub fn begin(&mut self) -> Result<()> {
        if self.begun {
            return Ok(());
        }
        let d = self.d;
        match &self.o.method {
            Method::Gradient { est, .. } => {
                self.coords = est.coordinates(&self.rng, self.nit, d);
                // Central differences and unbounded forward ones never reflect a point.
                let known = est.scheme == Scheme::Central || !self.bounded;
                let n = est.count(d);
                if self.signs.len() != n {
                    self.signs = try_with_capacity(n, "the signs of a batch")?;
                }
                self.signs.clear();
                self.signs.resize(n, if known { 1.0 } else { f64::NAN });
                let b = est.batch_size(d);
                if self.decided.len() != b {
                    self.decided = try_with_capacity(b, "the points of a batch")?;
                }
                self.decided.clear();
                self.decided.resize(b, 0);
                if est.dirs == Directions::Sphere {
                    self.norms.clear();
                    self.norms.resize(n, f64::NAN);
                }
            }
            Method::Cbo(c) => {
                if self.parts.is_empty() {
                    let len = checked_len(c.particles, d, "the CBO particles")?;
                    self.parts = try_with_capacity(len, "the CBO particles")?;
                    let mut z = vec![0.0; d];
                    for i in 0..c.particles {
                        self.rng.normals(0, i as u64, Stream::Init, &mut z);
                        let mut p: Vec<f64> = self.x.iter().zip(&z).map(|(a, b)| a.as_f64() + c.init_std * b).collect();
                        project(&mut p, &self.o.lower, &self.o.upper);
                        self.parts.extend(p);
                    }
                }
            }
            Method::Rank { .. } => {}
        }
        self.begun = true;
        Ok(())
    }

    /// Writes point `i` of the current batch (`0 <= i < batch_size()`, the order of
    /// [`Zo::ask`]) into `out` (length `dim()`): the same values `ask` returns, generated
    /// without the rest of the batch.
    pub fn point(&mut self, i: usize, out: &mut [T]) -> Result<()> {
        if i >= self.batch_size() || out.len() != self.d {
            return Err(OptError::InvalidInput(format!(
                "point {i} of a batch of {} (buffer of {} for dimension {})",
                self.batch_size(),
                out.len(),
                self.d
            )));
        }
        self.begin()?;
        let d = self.d;
        match self.o.method {
            Method::Gradient { est, .. } => {
                if i == 0 {
                    out.copy_from_slice(&self.x);
                    return Ok(());
                }
                self.write_point(&est, i, out);
            }
            Method::Cbo(_) => {
                out.iter_mut().zip(&self.parts[i * d..(i + 1) * d]).for_each(|(o, p)| *o = T::from_f64(*p));
            }
            Method::Rank { mu, .. } => {
                self.rng.normals(self.nit, i as u64, Stream::Directions, &mut self.u);
                for (j, o) in out.iter_mut().enumerate() {
                    let p = self.x[j].as_f64() + mu * self.u[j];
                    *o = T::from_f64(p.max(side(&self.o.lower, j, f64::NEG_INFINITY)).min(side(
                        &self.o.upper,
                        j,
                        f64::INFINITY,
                    )));
                }
            }
        }
        Ok(())
    }

    /// The batch to evaluate next (row-major `batch_size() × dim()`), every point inside the
    /// bounds. Asking again before telling returns the same batch. A batch too large for
    /// memory is [`OptError::Memory`].
    pub fn ask(&mut self) -> Result<&[T]> {
        if self.asked {
            return Ok(&self.batch);
        }
        self.begin()?;
        let d = self.d;
        let b = self.batch_size();
        let len = checked_len(b, d, "the batch of points")?;
        let mut batch = std::mem::take(&mut self.batch);
        if batch.len() != len {
            batch.clear();
            batch.shrink_to_fit();
            batch = try_with_capacity(len, "the batch of points")?;
            batch.resize(len, T::zero());
        }
        for (i, row) in batch.chunks_mut(d).enumerate() {
            self.point(i, row)?;
        }
        self.batch = batch;
        self.asked = true;
        Ok(&self.batch)
    }

    /// Records values (NaN policy, best point, history, evaluation count).
    fn record(&mut self, values: &[f64]) -> Result<Vec<f64>> {
        if !self.begun {
            return Err(OptError::InvalidInput("tell() without a pending ask()".into()));
        }
        let b = self.batch_size();
        if values.len() != b {
            return Err(OptError::InvalidInput(format!(
                "expected {b} values (one per asked point), got {}",
                values.len()
            )));
        }
        let mut v = values.to_vec();
        if let Some(i) = v.iter().position(|x| x.is_nan()) {
            if !self.o.nan_as_inf {
                return Err(OptError::Numerical(format!(
                    "the objective returned NaN at point {i} of the batch of iteration {} (evaluation {}); \
                     pass nan_as_inf=True to treat NaN as +inf",
                    self.nit,
                    self.nfev + i + 1
                )));
            }
            v.iter_mut().filter(|x| x.is_nan()).for_each(|x| *x = f64::INFINITY);
        }
        let mut best = None;
        for (i, &fi) in v.iter().enumerate() {
            if fi < self.best_f {
                self.best_f = fi;
                best = Some(i);
                self.history.push((self.nfev + i + 1, fi));
            }
        }
        if let Some(i) = best {
            let d = self.d;
            if let Method::Gradient { est, .. } = self.o.method {
                // Kept as the seed of point i on the iterate (see `lazy`).
                self.note_best(&est, i);
            } else if let lazy::Best::Dense(bx) = &mut self.best {
                if self.asked {
                    bx.copy_from_slice(&self.batch[i * d..(i + 1) * d]);
                } else {
                    let mut bx = std::mem::take(bx);
                    let r = self.point(i, &mut bx);
                    self.best = lazy::Best::Dense(bx);
                    r?;
                }
            }
        }
        self.nfev += b;
        Ok(v)
    }

    /// Ends the current iteration.
    fn next_iteration(&mut self) {
        self.asked = false;
        self.begun = false;
        self.nit += 1;
    }

    /// Tells the values of the asked batch (in batch order) and updates the state. A NaN
    /// (without `nan_as_inf`) or a non-finite gradient estimate is a `Numerical` error, after
    /// which the best point so far is still available.
    pub fn tell(&mut self, values: &[f64]) -> Result<()> {
        let v = self.record(values)?;
        match self.o.method.clone() {
            Method::Gradient { est, update, .. } => self.step_gradient(&est, update, &v)?,
            Method::Cbo(c) => self.step_cbo(&v, &c)?,
            Method::Rank { m, k, .. } => {
                let mut order: Vec<usize> = (0..m).collect();
                order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
                self.step_rank(&order[..k])?;
            }
        }
        self.next_iteration();
        Ok(())
    }

    /// ZO-RankSGD: tells the indices of the `k` best points of the asked batch, best first.
    pub fn tell_ranking(&mut self, top: &[usize]) -> Result<()> {
        let Method::Rank { m, k, .. } = self.o.method else {
            return Err(OptError::InvalidInput("tell_ranking() is for method 'rank'".into()));
        };
        if !self.begun {
            return Err(OptError::InvalidInput("tell_ranking() without a pending ask()".into()));
        }
        if top.len() != k {
            return Err(OptError::InvalidInput(format!(
                "the ranking must list the k = {k} best points; got {}",
                top.len()
            )));
        }
        let mut seen = vec![false; m];
        for &i in top {
            if i >= m || seen[i] {
                return Err(OptError::InvalidInput(format!(
                    "the ranking must hold {k} distinct indices in 0..{m}; got {top:?}"
                )));
            }
            seen[i] = true;
        }
        self.nfev += m;
        self.step_rank(top)?;
        self.next_iteration();
        Ok(())
    }

    fn step_cbo(&mut self, v: &[f64], c: &Cbo) -> Result<()> {
        let d = self.d;
        let fmin = v.iter().copied().fold(f64::INFINITY, f64::min);
        if !fmin.is_finite() {
            return Err(OptError::Numerical(format!(
                "every particle has an infinite value at iteration {}; start closer to the feasible region",
                self.nit
            )));
        }
        // Log-sum-exp weights: exp(-alpha (f_i - fmin)) is 1 at the best particle.
        let w: Vec<f64> =
            v.iter().map(|&fi| if fi.is_finite() { (-c.alpha * (fi - fmin)).exp() } else { 0.0 }).collect();
        let wsum: f64 = w.iter().sum();
        let mut cons = vec![0.0; d];
        for (p, &wi) in self.parts.chunks(d).zip(&w) {
            if wi > 0.0 {
                cons.iter_mut().zip(p).for_each(|(v, x)| *v += wi / wsum * x);
            }
        }
        let mut spread = 0.0f64;
        let mut z = vec![0.0; d];
        let sq = c.dt.sqrt();
        for (i, p) in self.parts.chunks_mut(d).enumerate() {
            self.rng.normals(self.nit, i as u64, Stream::Noise, &mut z);
            spread = spread.max(p.iter().zip(&cons).fold(0.0f64, |a, (x, v)| a.max((x - v).abs())));
            if c.hopping {
                p.iter_mut().zip(&cons).zip(&z).for_each(|((x, v), zj)| *x = v + self.sigma_now * zj);
            } else {
                let norm = p.iter().zip(&cons).map(|(x, v)| (x - v) * (x - v)).sum::<f64>().sqrt();
                for ((x, v), zj) in p.iter_mut().zip(&cons).zip(&z) {
                    let diff = *x - v;
                    let diffusion = match c.noise {
                        Noise::Isotropic => norm,
                        Noise::Anisotropic => diff.abs(),
                    };
                    *x += -c.lambda * c.dt * diff + c.sigma * sq * diffusion * zj;
                }
            }
            project(p, &self.o.lower, &self.o.upper);
            round::<T>(p);
        }
        if c.hopping {
            self.sigma_now *= c.sigma_decay;
        }
        project(&mut cons, &self.o.lower, &self.o.upper);
        self.x = cons.into_iter().map(T::from_f64).collect();
        self.note_move(spread);
        Ok(())
    }

    fn step_rank(&mut self, top: &[usize]) -> Result<()> {
        let Method::Rank { m, decay, .. } = self.o.method else { unreachable!() };
        let (rng, it) = (self.rng, self.nit);
        rank_gradient(top, m, |i, u| rng.normals(it, i as u64, Stream::Directions, u), &mut self.g);
        let n = self.g.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 0.0 {
            self.dir.iter_mut().zip(&self.g).for_each(|(dv, gv)| *dv = gv / n);
        } else {
            self.dir.iter_mut().for_each(|dv| *dv = 0.0);
        }
        // x ← T(P(x − lr dir)), entry by entry, in place.
        let (lower, upper, lr) = (&self.o.lower, &self.o.upper, self.lr);
        let mut moved = 0.0f64;
        for (j, x) in self.x.iter_mut().enumerate() {
            let p = x.as_f64();
            let (l, u) = (side(lower, j, f64::NEG_INFINITY), side(upper, j, f64::INFINITY));
            let t = T::from_f64((p - lr * self.dir[j]).max(l).min(u));
            moved = moved.max((t.as_f64() - p).abs());
            *x = t;
        }
        self.note_move(moved);
        self.lr *= decay;
        Ok(())
    }
}

mod digest;
mod lazy;
#[cfg(test)]
mod lazy_tests;
mod stream;
#[cfg(test)]
mod tests;
