//! The methods of [`super`] (EG, EAG, inexact Halpern, variance-reduced Halpern: Algorithms 1
//! and 2 of Cai, Alacaoglu & Diakonikolas 2024), their options and output, and the outer loop
//! with its residual checks and adaptive restarts.

use super::pdhg::HalpernPdhg;
use super::problems::FiniteSum;
use crate::alloc::{try_with_capacity, try_zeroed};
use crate::error::{OptError, Result};
use crate::linalg::nrm2_diff;
use crate::rng::Rng;
use crate::solver::{Control, Observer, Report, Termination};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    Eg,
    Eag,
    Halpern,
    VrHalpern,
}

/// Options of [`solve`]; `None` fields take the documented defaults.
#[derive(Clone, Debug)]
pub struct Options {
    pub method: Method,
    /// Stop when the natural residual is `<= tol`.
    pub tol: f64,
    /// Outer iterations.
    pub maxiter: usize,
    /// Budget in epochs (`nfev / N`).
    pub max_epochs: f64,
    /// EG/EAG step (default `0.5 / L`); Algorithm 1's `η` (default `1 / L`).
    pub step: Option<f64>,
    /// Resolvent parameter `c` of `Halpern`/Algorithm 2 (default `1 / L` for `Halpern`,
    /// `sqrt(N) / L_ms` scaled... see [`solve`]).
    pub resolvent: Option<f64>,
    /// Inner steps per outer iteration (Algorithm 2 default `⌊0.05 N ln(k+2)⌋`, at least 1;
    /// `Halpern` default `⌈4 ln(k+2)⌉ + 2`).
    pub inner: Option<usize>,
    /// Algorithm 1's minibatch (default `⌊√N⌋`; at most `N`: a larger value is clamped).
    pub batch: Option<usize>,
    /// Use Algorithm 1 (cocoercive) rather than Algorithm 2; default: the problem's flag.
    pub cocoercive: Option<bool>,
    pub seed: u64,
    /// Residual checks (and observer calls) every this many iterations.
    pub check_every: usize,
    /// Anchored methods (`Eag`, `Halpern`, `VrHalpern`): re-anchor at the current point and
    /// restart the anchoring schedule when a check finds the residual below `restart` times its
    /// value at the last anchor (0: never). Under sharpness (matrix games, LPs) this turns
    /// the O(1/k) rate into a linear one.
    pub restart: f64,
}

impl Options {
    pub fn new(method: Method) -> Self {
        Options {
            method,
            tol: 1e-6,
            maxiter: usize::MAX,
            max_epochs: f64::INFINITY,
            step: None,
            resolvent: None,
            inner: None,
            batch: None,
            cocoercive: None,
            seed: 0,
            check_every: 1,
            restart: 0.2,
        }
    }
}

#[derive(Debug)]
pub struct Output {
    pub z: Vec<f64>,
    /// Natural residual of `z`.
    pub residual: f64,
    pub nit: usize,
    /// Component evaluations (a full evaluation counts `N`).
    pub nfev: u64,
    /// Full evaluations spent measuring the residual (not in `nfev`).
    pub n_residual: usize,
    /// `(epochs, residual)` at every check, at most [`HISTORY_CAP`] rows: when full, every
    /// other row is dropped, so a long run keeps a geometric thinning of its early checks.
    pub history: Vec<(f64, f64)>,
    pub termination: Termination,
    /// The variant that ran ("eg", "eag", "halpern", "vr_halpern (Algorithm 1)", ...).
    pub variant: &'static str,
    /// Adaptive restarts (re-anchorings).
    pub restarts: usize,
}

/// Algorithm 2's default minibatch (components per VR-FoRB step).
pub const VR_BATCH: usize = 16;
/// Algorithm 2's default step factor: `VR_STEP · sqrt(p) / (c L_b + 1)` (4x the analysis's
/// conservative 1/2, stable on the benchmark problems).
const VR_STEP: f64 = 2.0;

/// The most rows [`Output::history`] keeps (bounded memory for runs of any length).
pub const HISTORY_CAP: usize = 1 << 16;

struct Ctx<'a> {
    p: &'a dyn FiniteSum,
    nfev: u64,
    big: u64,
}

impl Ctx<'_> {
    fn full(&mut self, z: &[f64], out: &mut [f64]) -> Result<()> {
        self.nfev += self.big;
        self.p.full(z, out)
    }
    fn add(&mut self, i: usize, z: &[f64], s: f64, out: &mut [f64]) -> Result<()> {
        self.nfev += 1;
        self.p.add_component(i, z, s, out)
    }
    /// `out += s (F_i(u) − F_i(w))`: two component evaluations.
    fn add_diff(&mut self, i: usize, u: &[f64], w: &[f64], s: f64, out: &mut [f64]) -> Result<()> {
        self.nfev += 2;
        self.p.add_component_diff(i, u, w, s, out)
    }
    fn epochs(&self) -> f64 {
        self.nfev as f64 / self.big as f64
    }
    /// Whether the epoch budget is spent: inner loops stop there, so that no option (a huge
    /// `inner` or `batch`) carries a run past `max_epochs`.
    fn spent(&self, max_epochs: f64) -> bool {
        self.epochs() >= max_epochs
    }
}

/// The natural residual `‖z − P(z − F(z)/L)‖ · L` (one full evaluation, not counted; the
/// norm scaled, so that points of 1e200 do not overflow it).
pub fn natural_residual(p: &dyn FiniteSum, z: &[f64]) -> Result<f64> {
    let mut g = try_zeroed::<f64>(z.len(), "monotone residual")?;
    p.full(z, &mut g)?;
    residual_given(p, z, &mut g)
}

/// The natural residual of `z` given `g = F(z)` (overwritten).
fn residual_given(p: &dyn FiniteSum, z: &[f64], g: &mut [f64]) -> Result<f64> {
    let l = p.lipschitz().max(f64::MIN_POSITIVE);
    for (t, &a) in g.iter_mut().zip(z) {
        *t = a - *t / l;
    }
    p.project(g)?;
    Ok(nrm2_diff(z, g) * l)
}

/// A component drawn by the problem's sampler (uniformly without one) and its weight
/// `1/(N π_i)` (1 for uniform draws, which consume the generator as they always did).
#[inline]
fn draw(p: &dyn FiniteSum, big: usize, rng: &mut Rng) -> (usize, f64) {
    match p.sampler() {
        Some(s) => s.sample(rng),
        None => (rng.below(big), 1.0),
    }
}

fn axpy_into(out: &mut [f64], a: &[f64], s: f64, b: &[f64]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x + s * y;
    }
}

/// Runs `opts.method` from `z0` (projected first).
pub fn solve(p: &dyn FiniteSum, z0: &[f64], opts: &Options, obs: &mut dyn Observer<f64>) -> Result<Output> {
    let d = p.dim();
    let big = p.n();
    if z0.len() != d {
        return Err(OptError::InvalidInput(format!("z0 has length {}; the problem has dimension {d}", z0.len())));
    }
    if !z0.iter().all(|v| v.is_finite()) {
        return Err(OptError::InvalidInput("z0 must be finite".into()));
    }
    let l = p.lipschitz();
    if !(l > 0.0 && l.is_finite()) {
        return Err(OptError::InvalidInput(format!("the Lipschitz constant must be positive and finite; got {l}")));
    }
    if opts.tol.is_nan() || opts.tol < 0.0 || opts.check_every == 0 || big == 0 || opts.max_epochs.is_nan() {
        return Err(OptError::InvalidInput("tol must be >= 0, check_every >= 1, and the sum non-empty".into()));
    }
    let mut x0 = z0.to_vec();
    p.project(&mut x0)?;
    let mut ctx = Ctx { p, nfev: 0, big: big as u64 };
    let mut rng = Rng::new(opts.seed);
    let mut history: Vec<(f64, f64)> = Vec::new();
    let mut n_residual = 0usize;
    let cocoercive = opts.cocoercive.unwrap_or_else(|| p.cocoercive());
    let pdhg = opts.method == Method::Halpern && p.primal_dual().is_some();
    let variant = match opts.method {
        Method::Eg => "eg",
        Method::Eag => "eag",
        Method::Halpern if pdhg => "halpern (restarted reflected Halpern-PDHG)",
        Method::Halpern => "halpern (forward-reflected-backward resolvent)",
        Method::VrHalpern if cocoercive => "vr_halpern (Algorithm 1, cocoercive)",
        Method::VrHalpern => "vr_halpern (Algorithm 2, VR-FoRB)",
    };
    let mut st = State::new(opts.method, cocoercive, &x0, d)?;
    if let (true, Some(pd)) = (pdhg, p.primal_dual()) {
        let (hp, cost) = HalpernPdhg::new(pd, &x0, opts.restart, 1.0)?;
        // A factorisation of the primal proximal map is counted in epochs, rounded up.
        ctx.nfev += (cost * big as f64).ceil() as u64;
        st.pd = Some(hp);
    }
    let mut nit = 0usize;
    // Iterations since the last anchor, and the residual there.
    let (mut k, mut res_anchor) = (0usize, f64::INFINITY);
    // Halpern–PDHG restarts itself (on its fixed-point residual, see `pdhg`).
    let anchored = opts.method != Method::Eg && !pdhg && opts.restart > 0.0;
    let mut restarts = 0usize;
    loop {
        let check = nit % opts.check_every == 0 || nit >= opts.maxiter || ctx.epochs() >= opts.max_epochs;
        if !check {
            // Between checks the observer still sees every iteration (an interrupt poll: its
            // cadence calls back at the checks), so Ctrl-C is honoured however long the
            // iterations between checks take.
            let last = history.last().map_or(f64::NAN, |h| h.1);
            let control = obs.observe(nit, &|| Report {
                nit,
                error: last,
                vectors: vec![("x", st.point().to_vec())],
                scalars: vec![("epochs", ctx.epochs())],
            });
            let termination = match control {
                Control::Continue => None,
                Control::Stop => Some(Termination::Stopped),
                Control::Abort => Some(Termination::Aborted),
            };
            if let Some(termination) = termination {
                let res = natural_residual(p, st.point())?;
                n_residual += 1;
                return Ok(Output {
                    z: st.point().to_vec(),
                    residual: res,
                    nit,
                    nfev: ctx.nfev,
                    n_residual,
                    history,
                    termination,
                    variant,
                    restarts: restarts + st.pd_restarts(),
                });
            }
        } else {
            let z = st.point().to_vec();
            // Halpern–PDHG has F(z) from its own products (no evaluation); where that says the
            // run ends, the residual is re-measured with a full evaluation, so the one reported
            // is always the problem's own.
            let (mut res, mut fused) = match st.fused_residual(p)? {
                Some(r) => (r, true),
                None => {
                    n_residual += 1;
                    (natural_residual(p, &z)?, false)
                }
            };
            if fused && (res <= opts.tol || nit >= opts.maxiter || ctx.epochs() >= opts.max_epochs) {
                n_residual += 1;
                res = natural_residual(p, &z)?;
                fused = false;
            }
            if !res.is_finite() {
                return Err(OptError::Numerical(format!(
                    "the residual is not finite at iteration {nit}: the steps diverged; pass a smaller step or check \
                     the Lipschitz constant"
                )));
            }
            if history.len() >= HISTORY_CAP {
                let mut i = 0usize;
                history.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
            }
            history.push((ctx.epochs(), res));
            if anchored && res_anchor.is_infinite() {
                res_anchor = res;
            } else if anchored && res <= opts.restart * res_anchor {
                x0.copy_from_slice(&z);
                st.reanchor();
                k = 0;
                res_anchor = res;
                restarts += 1;
            }
            let term = if res.is_finite() && res <= opts.tol {
                Some(Termination::Converged)
            } else if nit >= opts.maxiter || ctx.epochs() >= opts.max_epochs {
                Some(Termination::MaxIter)
            } else if nit == 0 {
                None
            } else {
                match obs.observe(nit, &|| Report {
                    nit,
                    error: res,
                    vectors: vec![("x", z.to_vec())],
                    scalars: vec![("epochs", ctx.epochs())],
                }) {
                    Control::Continue => None,
                    Control::Stop => Some(Termination::Stopped),
                    Control::Abort => Some(Termination::Aborted),
                }
            };
            if let Some(termination) = term {
                if fused {
                    n_residual += 1;
                    res = natural_residual(p, &z)?;
                }
                return Ok(Output {
                    z: st.point().to_vec(),
                    residual: res,
                    nit,
                    nfev: ctx.nfev,
                    n_residual,
                    history,
                    termination,
                    variant,
                    restarts: restarts + st.pd_restarts(),
                });
            }
        }
        st.step(&mut ctx, &x0, k, opts, &mut rng)?;
        nit += 1;
        k += 1;
    }
}

/// The iterate and work vectors of every method.
struct State {
    method: Method,
    cocoercive: bool,
    z: Vec<f64>,
    g: Vec<f64>,
    h: Vec<f64>,
    b: Vec<f64>,
    t: Vec<f64>,
    // Algorithm 2 / Halpern: inner iterate, its previous value, snapshot and F(snapshot).
    u: Vec<f64>,
    u_prev: Vec<f64>,
    w: Vec<f64>,
    w_prev: Vec<f64>,
    fw: Vec<f64>,
    fu_prev: Vec<f64>,
    have_w: bool,
    /// `w_prev` still holds the snapshot before the last refresh.
    w_lag: bool,
    // Algorithm 1: previous point and estimate.
    est: Vec<f64>,
    z_prev: Vec<f64>,
    /// `Halpern` on a problem with a primal–dual split.
    pd: Option<HalpernPdhg>,
    /// Algorithm 2: the components (and weights) of the current minibatch.
    picks: Vec<(usize, f64)>,
}

impl State {
    /// Work vectors of the problem's dimension, allocated fallibly (a `FiniteSum` from
    /// Python chooses `d`).
    fn new(method: Method, cocoercive: bool, x0: &[f64], d: usize) -> Result<Self> {
        let zeros = || try_zeroed::<f64>(d, "monotone work vector");
        let copy = || -> Result<Vec<f64>> {
            let mut v = try_with_capacity(x0.len(), "monotone iterate")?;
            v.extend_from_slice(x0);
            Ok(v)
        };
        Ok(State {
            method,
            cocoercive,
            z: copy()?,
            g: zeros()?,
            h: zeros()?,
            b: zeros()?,
            t: zeros()?,
            u: copy()?,
            u_prev: copy()?,
            w: copy()?,
            w_prev: copy()?,
            fw: zeros()?,
            fu_prev: zeros()?,
            have_w: false,
            w_lag: false,
            est: zeros()?,
            z_prev: copy()?,
            pd: None,
            picks: Vec::new(),
        })
    }

    fn point(&self) -> &[f64] {
        match &self.pd {
            Some(pd) => pd.point(),
            None => &self.z,
        }
    }

    /// The natural residual of Halpern–PDHG's point from its own products (see
    /// [`HalpernPdhg::operator_at_point`]); `None` for the other methods and before the first step.
    fn fused_residual(&mut self, p: &dyn FiniteSum) -> Result<Option<f64>> {
        match &self.pd {
            Some(pd) if pd.operator_at_point(&mut self.g).is_some() => {
                Ok(Some(residual_given(p, pd.point(), &mut self.g)?))
            }
            _ => Ok(None),
        }
    }

    fn pd_restarts(&self) -> usize {
        self.pd.as_ref().map_or(0, |pd| pd.restarts)
    }

    /// A new anchor at the current point: Algorithm 1's estimator restarts from a full
    /// evaluation (its schedule restarts with k).
    fn reanchor(&mut self) {
        self.z_prev.copy_from_slice(&self.z);
    }

    fn step(&mut self, ctx: &mut Ctx<'_>, x0: &[f64], k: usize, opts: &Options, rng: &mut Rng) -> Result<()> {
        let p = ctx.p;
        let l = p.lipschitz();
        match self.method {
            Method::Eg | Method::Eag => {
                let s = opts.step.unwrap_or(0.5 / l);
                let beta = if self.method == Method::Eag { 1.0 / (k as f64 + 2.0) } else { 0.0 };
                for ((b, &z), &a) in self.b.iter_mut().zip(&self.z).zip(x0) {
                    *b = z + beta * (a - z);
                }
                ctx.full(&self.z, &mut self.g)?;
                axpy_into(&mut self.h, &self.b, -s, &self.g);
                p.project(&mut self.h)?;
                ctx.full(&self.h, &mut self.g)?;
                axpy_into(&mut self.z, &self.b, -s, &self.g);
                p.project(&mut self.z)?;
            }
            Method::Halpern => match (&mut self.pd, p.primal_dual()) {
                (Some(st), Some(pd)) => {
                    ctx.nfev += ctx.big;
                    st.step(pd)?;
                    // After a restart, a polished candidate (games: the equilibrium on the
                    // supports the iterate suggests) replaces the point when its residual,
                    // measured with a full evaluation, is smaller; every pass is counted.
                    let (cand, cost) = st.take_polish(pd)?;
                    ctx.nfev += (cost * ctx.big as f64).ceil() as u64;
                    if let Some(c) = cand {
                        ctx.full(&c, &mut self.h)?;
                        let rc = residual_given(p, &c, &mut self.h)?;
                        let r = match st.operator_at_point(&mut self.g) {
                            Some(()) => residual_given(p, st.point(), &mut self.g)?,
                            None => f64::INFINITY,
                        };
                        if rc < r {
                            ctx.nfev += ctx.big;
                            st.accept(pd, &c);
                        }
                    }
                }
                _ => self.halpern_step(ctx, x0, k, opts)?,
            },
            Method::VrHalpern if self.cocoercive => self.alg1_step(ctx, x0, k, opts, rng)?,
            Method::VrHalpern => self.alg2_step(ctx, x0, k, opts, rng)?,
        }
        Ok(())
    }

    /// `x_{k+1} = x₀/(k+2) + (1 − 1/(k+2)) ũ_k`.
    fn anchor(&mut self, x0: &[f64], k: usize) {
        let lam = 1.0 / (k as f64 + 2.0);
        for ((z, &a), &u) in self.z.iter_mut().zip(x0).zip(&self.u) {
            *z = lam * a + (1.0 - lam) * u;
        }
    }

    /// Deterministic inexact Halpern: FoRB on `F̂(u) = c F(u) + u − x_k`, warm started.
    fn halpern_step(&mut self, ctx: &mut Ctx<'_>, x0: &[f64], k: usize, opts: &Options) -> Result<()> {
        let p = ctx.p;
        let c = opts.resolvent.unwrap_or(1.0 / p.lipschitz());
        let lhat = c * p.lipschitz() + 1.0;
        let tau = 0.45 / lhat;
        let steps = opts.inner.unwrap_or_else(|| (4.0 * ((k + 2) as f64).ln()).ceil() as usize + 2);
        let xk = self.z.clone();
        // F̂(u_prev) for the reflection term (recomputed: x_k moved).
        ctx.full(&self.u_prev, &mut self.fu_prev)?;
        for ((f, &u), &x) in self.fu_prev.iter_mut().zip(&self.u_prev).zip(&xk) {
            *f = c * *f + u - x;
        }
        for _ in 0..steps {
            if ctx.spent(opts.max_epochs) {
                break;
            }
            ctx.full(&self.u, &mut self.g)?;
            for ((g, &u), &x) in self.g.iter_mut().zip(&self.u).zip(&xk) {
                *g = c * *g + u - x;
            }
            for (((t, &u), &g), &gp) in self.t.iter_mut().zip(&self.u).zip(&self.g).zip(&self.fu_prev) {
                *t = u - tau * (2.0 * g - gp);
            }
            p.project(&mut self.t)?;
            std::mem::swap(&mut self.u_prev, &mut self.u);
            std::mem::swap(&mut self.u, &mut self.t);
            std::mem::swap(&mut self.fu_prev, &mut self.g);
        }
        self.anchor(x0, k);
        Ok(())
    }

    /// Algorithm 2: VR-FoRB on `F̂_i(u) = c F_i(u) + u − x_k` (loopless snapshot), with
    /// minibatches of `b` components per step so that the `O(d)` vector work and projection of
    /// a step are shared by `b` components (on the 500 x 500 policeman–burglar game an epoch
    /// costs 2.2 EG epochs with `b = 16`, 18 with `b = 1`), and linear components
    /// evaluated once on the difference `u − w_prev`. The snapshot probability is `p = b/N`,
    /// the step `2 sqrt(p) / (c L_b + 1)`, `L_b² = L² + (L_ms² − L²)/b` the mean-square
    /// Lipschitz constant of a minibatch. Larger minibatches cost some progress per epoch
    /// (residual 0.16 against 0.09 after 3,000 epochs on that game with `b = 16`).
    fn alg2_step(&mut self, ctx: &mut Ctx<'_>, x0: &[f64], k: usize, opts: &Options, rng: &mut Rng) -> Result<()> {
        let p = ctx.p;
        let big = p.n();
        let nf = big as f64;
        let lip = p.lipschitz();
        let lms = p.lipschitz_ms().max(lip);
        // At most N/2: with the snapshot probability p = b/N near 1 the loopless estimator stalls
        // (a 12 x 9 game: b = 8 converges, b = 11 and 12 do not).
        let b = opts.batch.unwrap_or(VR_BATCH).clamp(1, (big / 2).max(1));
        let bf = b as f64;
        let prob = bf / nf;
        let alpha = 1.0 - prob;
        let lb = (lip * lip + (lms * lms - lip * lip).max(0.0) / bf).sqrt();
        // The paper's c = sqrt(N)/L_ms for single samples; sqrt(N/b)/L_b for minibatches keeps
        // c L_b = sqrt(1/p), so that the components to a given accuracy do not depend on b.
        let c = opts.resolvent.unwrap_or((nf / bf).sqrt() / lb);
        // Capped below the deterministic forward-reflected-backward bound 1/(2 L̂) as p → 1.
        let tau = opts.step.unwrap_or((VR_STEP * prob.sqrt()).min(0.45) / (c * lb + 1.0));
        let steps = opts.inner.unwrap_or_else(|| ((0.05 * nf * ((k + 2) as f64).ln() / bf).floor() as usize).max(1));
        self.b.copy_from_slice(&self.z);
        if !self.have_w {
            ctx.full(&self.w, &mut self.fw)?;
            self.w_prev.copy_from_slice(&self.w);
            self.have_w = true;
        }
        // base = c F(w) + w − x_k: fixed until the snapshot moves.
        for (((h, &f), &w), &x) in self.h.iter_mut().zip(&self.fw).zip(&self.w).zip(&self.b) {
            *h = c * f + w - x;
        }
        let s = c / bf;
        for _ in 0..steps {
            if ctx.spent(opts.max_epochs) {
                break;
            }
            // v = F̂(w) + (1/b) Σ_ξ [F̂_ξ(u) − F̂_ξ(w_prev)]
            for (((v, &h), &u), &wp) in self.g.iter_mut().zip(&self.h).zip(&self.u).zip(&self.w_prev) {
                *v = h + u - wp;
            }
            // The minibatch is drawn first (the generator is consumed in the same order), so
            // that the problem can fetch every drawn component before the first is evaluated.
            self.picks.clear();
            self.picks.try_reserve(b).map_err(|_| OptError::Memory(format!("minibatch of {b} components")))?;
            for _ in 0..b {
                self.picks.push(draw(p, big, rng));
            }
            for stage in 0..2 {
                self.picks.iter().for_each(|&(xi, _)| p.prefetch(xi, stage));
            }
            for &(xi, wt) in &self.picks {
                ctx.add_diff(xi, &self.u, &self.w_prev, s * wt, &mut self.g)?;
            }
            for (((t, &u), &w), &v) in self.t.iter_mut().zip(&self.u).zip(&self.w).zip(&self.g) {
                *t = alpha * u + (1.0 - alpha) * w - tau * v;
            }
            p.project(&mut self.t)?;
            std::mem::swap(&mut self.u, &mut self.t);
            // w_prev catches up with w (they differ only for the step after a refresh).
            if self.w_lag {
                self.w_prev.copy_from_slice(&self.w);
                self.w_lag = false;
            }
            if rng.uniform() < prob {
                self.w.copy_from_slice(&self.u);
                self.w_lag = true;
                ctx.full(&self.w, &mut self.fw)?;
                for (((h, &f), &w), &x) in self.h.iter_mut().zip(&self.fw).zip(&self.w).zip(&self.b) {
                    *h = c * f + w - x;
                }
            }
        }
        self.anchor(x0, k);
        Ok(())
    }

    /// Algorithm 1: one-step Halpern with the PAGE estimator.
    fn alg1_step(&mut self, ctx: &mut Ctx<'_>, x0: &[f64], k: usize, opts: &Options, rng: &mut Rng) -> Result<()> {
        let p = ctx.p;
        let big = p.n();
        let rn = (big as f64).sqrt();
        let bsz = opts.batch.unwrap_or((rn.floor() as usize).max(1)).clamp(1, big);
        let eta = opts.step.unwrap_or(1.0 / p.lipschitz());
        let pk = if k <= 1 {
            1.0
        } else if (k as f64) <= rn + 1.0 {
            4.0 / (k as f64 + 4.0)
        } else {
            4.0 / (rn + 5.0)
        };
        if k == 0 || rng.uniform() < pk {
            ctx.full(&self.z, &mut self.est)?;
        } else {
            let s = 1.0 / bsz as f64;
            for _ in 0..bsz {
                if ctx.spent(opts.max_epochs) {
                    break;
                }
                let (i, wt) = draw(p, big, rng);
                ctx.add(i, &self.z, s * wt, &mut self.est)?;
                ctx.add(i, &self.z_prev, -s * wt, &mut self.est)?;
            }
        }
        let lam = 2.0 / (k as f64 + 4.0);
        self.z_prev.copy_from_slice(&self.z);
        for (((t, &a), &z), &e) in self.t.iter_mut().zip(x0).zip(&self.z).zip(&self.est) {
            *t = lam * a + (1.0 - lam) * z - eta * e;
        }
        p.project(&mut self.t)?;
        std::mem::swap(&mut self.z, &mut self.t);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monotone::problems::{GameSum, LinearSum};
    use crate::rng::Rng;
    use crate::solver::NoObserver;

    #[test]
    fn every_method_solves_rock_paper_scissors() {
        let a = [0.0, 1.0, -1.0, -1.0, 0.0, 1.0, 1.0, -1.0, 0.0];
        let g = GameSum::new(&a, 3, 3, 3f64.sqrt()).unwrap();
        let z0 = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        for method in [Method::Eg, Method::Eag, Method::Halpern, Method::VrHalpern] {
            let mut o = Options::new(method);
            o.tol = 1e-4;
            o.max_epochs = 1e6;
            o.check_every = 10;
            let out = solve(&g, &z0, &o, &mut NoObserver).unwrap();
            assert_eq!(out.termination, Termination::Converged, "{method:?}: {}", out.residual);
            for v in &out.z {
                assert!((v - 1.0 / 3.0).abs() < 1e-2, "{method:?}: {:?}", out.z);
            }
        }
    }

    #[test]
    fn algorithm_1_on_a_cocoercive_quadratic() {
        let mut rng = Rng::new(9);
        let d = 20;
        let b: Vec<f64> = (0..d * d).map(|_| rng.normal() / d as f64).collect();
        // M = BᵀB + 0.1 I (symmetric positive definite), q random: the solution is -M⁻¹ q.
        let mut mat = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                mat[i * d + j] =
                    (0..d).map(|k| b[k * d + i] * b[k * d + j]).sum::<f64>() + if i == j { 0.1 } else { 0.0 };
            }
        }
        let q: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        let lip = (0..d).map(|i| (0..d).map(|j| mat[i * d + j].abs()).sum::<f64>()).fold(0.0, f64::max);
        let p = LinearSum::new(&mat, &q, lip, true).unwrap();
        let mut o = Options::new(Method::VrHalpern);
        o.tol = 1e-3;
        o.max_epochs = 1e5;
        o.check_every = 20;
        let out = solve(&p, &vec![0.0; d], &o, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Converged, "{}", out.residual);
        assert!(out.variant.contains("Algorithm 1"));
    }

    #[test]
    fn no_option_runs_past_the_epoch_budget() {
        // Issue 17 item 11: batch = 10^9 ran 6.7e8 epochs past max_epochs = 10.
        let a = [0.0, 1.0, -1.0, -1.0, 0.0, 1.0, 1.0, -1.0, 0.0];
        let g = GameSum::new(&a, 3, 3, 3f64.sqrt()).unwrap();
        let z0 = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        for (cocoercive, batch, inner) in [(true, Some(1_000_000_000), None), (false, None, Some(1_000_000_000))] {
            let mut o = Options::new(Method::VrHalpern);
            o.tol = 0.0;
            o.max_epochs = 10.0;
            o.cocoercive = Some(cocoercive);
            o.batch = batch;
            o.inner = inner;
            let out = solve(&g, &z0, &o, &mut NoObserver).unwrap();
            assert_eq!(out.termination, Termination::MaxIter);
            // One outer step may finish its last component pair or full evaluation.
            assert!((out.nfev as f64) / 3.0 <= 10.0 + 3.0, "{} epochs", out.nfev as f64 / 3.0);
        }
        let mut o = Options::new(Method::Halpern);
        o.tol = 0.0;
        o.max_epochs = 10.0;
        o.inner = Some(1_000_000_000);
        let out = solve(&g, &z0, &o, &mut NoObserver).unwrap();
        assert!((out.nfev as f64) / 3.0 <= 10.0 + 3.0, "{} epochs", out.nfev as f64 / 3.0);
    }

    #[test]
    fn halpern_pdhg_solves_a_saddle_quadratic_to_1e_8() {
        // min_x max_y x²/2 − x − (2x − 1) y: M = [[1, −2], [2, 0]], q = (−1, −1); z* = (1/2, −1/4).
        let p = LinearSum::new(&[1.0, -2.0, 2.0, 0.0], &[-1.0, -1.0], 2.3, false).unwrap().with_saddle(1, 2.0).unwrap();
        let mut o = Options::new(Method::Halpern);
        o.tol = 1e-8;
        o.max_epochs = 1e5;
        let out = solve(&p, &[0.0, 0.0], &o, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Converged, "{}", out.residual);
        assert!(out.variant.contains("PDHG"));
        assert!((out.z[0] - 0.5).abs() < 1e-7 && (out.z[1] + 0.25).abs() < 1e-7, "{:?}", out.z);
        // A matrix that is not [[H, −Aᵀ], [A, 0]] has no saddle split.
        assert!(LinearSum::new(&[1.0, 2.0, 2.0, 0.0], &[0.0, 0.0], 3.0, false).unwrap().with_saddle(1, 2.0).is_err());
    }

    #[test]
    fn the_residual_is_scaled() {
        // ‖(1e200, 0)‖ overflowed to inf in the plain sum of squares.
        let p = LinearSum::new(&[1.0, 0.0, 0.0, 1.0], &[0.0, 0.0], 1.0, true).unwrap();
        let r = natural_residual(&p, &[1e200, 0.0]).unwrap();
        assert_eq!(r, 1e200);
    }
}
