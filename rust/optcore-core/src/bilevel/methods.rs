//! The bilevel methods, generic over [`Oracle`]: `f2sa` and `penalty` (first order),
//! `aid` (CG or Neumann), `itd`, `soba`, `borep`. See `optcore.bilevel.minimize` for the
//! user-facing description of each update and option.

use super::oracle::{Batch, Counted, Counts, Oracle, Phase};
use crate::error::{OptError, Result};
use crate::operators::SharedOp;
use crate::linalg::{axpy, cg, norm};
use crate::real::Real;
use crate::rng::Rng;
use crate::solver::{Control, Observer, Report, Termination};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    F2sa,
    Penalty,
    Aid,
    Itd,
    Soba,
    Borep,
}

/// How AID solves `∇²ᵧᵧg v = ∇ᵧf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinSolve {
    Cg,
    Neumann,
}

/// Every constant of every method (each method reads its own; see the Python docs).
#[derive(Clone)]
pub struct Options<T: Real> {
    pub method: Method,
    pub maxiter: usize,
    /// Converged when the method's hypergradient estimate and the lower-level residual are
    /// both `≤ tol` (F2SA: once `λ` has reached `lam_max`).
    pub tol: f64,
    /// Lower-level steps per outer iteration (F2SA, penalty: max inner steps; ITD: unrolled
    /// steps; BO-REP: steps per periodic update).
    pub inner_steps: usize,
    /// Lower-level step `α` (None: `1/L̂_g` from a power iteration on `∇²ᵧᵧg`).
    pub inner_step: Option<f64>,
    /// Upper-level step `β` (None: `1/L̂_F` from a power iteration on finite differences of
    /// the method's hypergradient at `x0`).
    pub outer_step: Option<f64>,
    /// Steps decay as `1/(k+1)^decay`.
    pub decay: f64,
    /// Minibatch sizes of the upper / lower level (0: full objective).
    pub batch_f: usize,
    pub batch_g: usize,
    pub seed: u64,
    pub lin_solve: LinSolve,
    pub cg_maxiter: usize,
    /// CG stops at `‖r‖ ≤ cg_tol ‖∇ᵧf‖`.
    pub cg_tol: f64,
    pub neumann_terms: usize,
    pub lam0: f64,
    pub lam_delta: f64,
    pub lam_power: f64,
    pub lam_max: f64,
    /// F2SA's STORM momentum parameter `η ∈ (0, 1]` (None: plain F2SA).
    pub momentum: Option<f64>,
    /// The penalty method's `σ` (`λ = 1/σ`).
    pub sigma: f64,
    /// Penalty / F2SA inner loops stop early when both gradient mappings are `≤ inner_tol`.
    pub inner_tol: f64,
    /// BO-REP: momentum `β`, period `I` of the lower-level updates, radius of `z`'s ball.
    pub beta: f64,
    pub period: usize,
    pub radius: f64,
    /// Initial lower-level refinement: at most this many steps of gradient descent on
    /// `g(x0, ·)` to `‖∇ᵧg‖ ≤ 1e-8 ‖∇ᵧg(x0, y0)‖` (0: none).
    pub refine_steps: usize,
    pub lipschitz_probes: usize,
    pub proj_x: Option<SharedOp<T>>,
    pub proj_y: Option<SharedOp<T>>,
}

impl<T: Real> Options<T> {
    pub fn new(method: Method) -> Self {
        Options {
            method,
            maxiter: 1000,
            tol: 1e-6,
            inner_steps: 10,
            inner_step: None,
            outer_step: None,
            decay: 0.0,
            batch_f: 0,
            batch_g: 0,
            seed: 0,
            lin_solve: LinSolve::Cg,
            cg_maxiter: 20,
            cg_tol: 1e-6,
            neumann_terms: 10,
            lam0: 1.0,
            lam_delta: 1.0,
            lam_power: 0.0,
            lam_max: 1e4,
            momentum: None,
            sigma: 1e-4,
            inner_tol: 0.0,
            beta: 0.9,
            period: 2,
            radius: f64::INFINITY,
            refine_steps: 1000,
            lipschitz_probes: 3,
            proj_x: None,
            proj_y: None,
        }
    }
}

/// What a run returns.
pub struct Output<T> {
    pub x: Vec<T>,
    pub y: Vec<T>,
    /// `f(x, y)` when the problem evaluates values, NaN otherwise.
    pub fun: f64,
    /// Norm of the method's hypergradient estimate at the returned `x` (F2SA/penalty: of the
    /// penalty gradient).
    pub hypergrad_norm: f64,
    /// `‖∇ᵧg‖` at the last lower-level step.
    pub lower_residual: f64,
    pub nit: usize,
    pub counts: Counts,
    /// Wall time per [`super::oracle::PHASE_NAMES`].
    pub times: [f64; 4],
    pub inner_step: f64,
    pub outer_step: f64,
    /// F2SA's final `λ` (penalty: `1/σ`; NaN for the others).
    pub lam: f64,
    pub termination: Termination,
}

/// Shared state of a run: the counted oracle, the PRNG and the steps.
pub struct Ctx<'a, T: Real> {
    pub o: Counted<'a, T>,
    pub opts: &'a Options<T>,
    rng: Rng,
    nf: usize,
    ng: usize,
    /// `‖∇ᵧg‖` at the start of the first lower-level solve: the scale relative tolerances of
    /// later solves refer to (a warm start near the solution cannot reach `rtol` times its
    /// own, already tiny, residual).
    r_ref: f64,
    /// The lower-level step `1/L̂_g`, retuned every outer iteration by one power-iteration
    /// step from `track` (the last estimate of the top eigenvector of `∇²ᵧᵧg`), because the
    /// curvature moves with `x` (ridge: `exp(λ)`); fixed when `inner_step` is given.
    pub alpha: f64,
    track: Vec<T>,
    /// CG's relative tolerance for the next solve (AID tightens it as the hypergradient
    /// shrinks).
    cg_rel: f64,
}

fn sample(rng: &mut Rng, n: usize, b: usize) -> Option<Vec<usize>> {
    if b == 0 || b >= n {
        None
    } else {
        Some((0..b).map(|_| rng.below(n)).collect())
    }
}

fn project<T: Real>(p: &Option<SharedOp<T>>, v: &mut [T]) -> Result<()> {
    if let Some(op) = p {
        let src = v.to_vec();
        op.apply(&src, v)?;
    }
    Ok(())
}

impl<'a, T: Real> Ctx<'a, T> {
    pub fn new(oracle: &'a dyn Oracle<T>, opts: &'a Options<T>) -> Result<Self> {
        let (nf, ng) = oracle.n_samples();
        if (opts.batch_f > 0 && nf == 0) || (opts.batch_g > 0 && ng == 0) {
            return Err(OptError::InvalidInput(
                "minibatches (batch_size) need a problem that declares its numbers of samples".into(),
            ));
        }
        let (dx, dy) = oracle.dims();
        for (p, d, name) in [(&opts.proj_x, dx, "x"), (&opts.proj_y, dy, "y")] {
            if let Some(op) = p {
                if op.dim() != d {
                    return Err(OptError::InvalidInput(format!(
                        "the projection for {name} has dimension {}, but {name} has {d} entries",
                        op.dim()
                    )));
                }
            }
        }
        Ok(Ctx { o: Counted::new(oracle), opts, rng: Rng::new(opts.seed), nf, ng, r_ref: 0.0, alpha: f64::NAN, track: Vec::new(), cg_rel: opts.cg_tol })
    }

    pub fn bf(&mut self) -> Option<Vec<usize>> {
        sample(&mut self.rng, self.nf, self.opts.batch_f)
    }

    pub fn bg(&mut self) -> Option<Vec<usize>> {
        sample(&mut self.rng, self.ng, self.opts.batch_g)
    }

    /// One projected gradient step `y ← P(y − α ∇ᵧg(x, y))`; returns `‖∇ᵧg(x, y)‖` before it.
    pub fn lower_step(&mut self, x: &[T], y: &mut [T], alpha: f64, batch: Batch) -> Result<f64> {
        let mut g = vec![T::zero(); y.len()];
        self.o.grad_g(x, y, batch, None, &mut g)?;
        axpy(-alpha, &g, y);
        project(&self.opts.proj_y, y)?;
        Ok(norm(&g))
    }

    /// Full-batch accelerated projected gradient descent on `g(x, ·)` (Nesterov momentum with
    /// the gradient restart of O'Donoghue & Candès) until `‖∇ᵧg‖ ≤ rtol max(‖∇ᵧg(x, y_start)‖,
    /// r_ref)` at the extrapolated point, or `max_steps`; returns the last residual. Used for
    /// the initial refinement and the step-size probes, not inside the methods' iterations.
    pub fn solve_lower(&mut self, x: &[T], y: &mut [T], alpha: f64, rtol: f64, max_steps: usize) -> Result<f64> {
        let mut r0 = f64::NAN;
        let mut r = f64::INFINITY;
        let mut z = y.to_vec();
        let mut g = vec![T::zero(); y.len()];
        let mut t = 1.0f64;
        for k in 0..max_steps {
            self.o.grad_g(x, &z, None, None, &mut g)?;
            r = norm(&g);
            if k == 0 {
                r0 = r.max(self.r_ref);
                if self.r_ref == 0.0 {
                    self.r_ref = r;
                }
            }
            let mut ynew = z.clone();
            axpy(-alpha, &g, &mut ynew);
            project(&self.opts.proj_y, &mut ynew)?;
            let restart = g.iter().zip(ynew.iter().zip(y.iter())).map(|(gi, (a, b))| gi.as_f64() * (a.as_f64() - b.as_f64())).sum::<f64>() > 0.0;
            let tn = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
            let mom = if restart { 0.0 } else { (t - 1.0) / tn };
            for ((zi, &yn), yi) in z.iter_mut().zip(&ynew).zip(y.iter()) {
                *zi = T::from_f64(yn.as_f64() + mom * (yn.as_f64() - yi.as_f64()));
            }
            y.copy_from_slice(&ynew);
            t = if restart { 1.0 } else { tn };
            if r <= rtol * r0 || r == 0.0 {
                break;
            }
        }
        Ok(r)
    }

    /// `L̂` of a symmetric linear map `u ↦ apply(u)` by `probes` power iterations from a
    /// random start (the largest |eigenvalue|, from below).
    fn power(&mut self, n: usize, probes: usize, mut apply: impl FnMut(&mut Self, &[T]) -> Result<Vec<T>>) -> Result<f64> {
        let mut u: Vec<T> = (0..n).map(|_| T::from_f64(self.rng.normal())).collect();
        let un = norm(&u).max(f64::MIN_POSITIVE);
        u.iter_mut().for_each(|e| *e = T::from_f64(e.as_f64() / un));
        let mut l = 0.0;
        for _ in 0..probes.max(1) {
            let w = apply(self, &u)?;
            l = norm(&w);
            if !(l > 0.0 && l.is_finite()) {
                break;
            }
            u = w.iter().map(|e| T::from_f64(e.as_f64() / l)).collect();
        }
        Ok(l)
    }

    /// `∇²ᵧᵧg(x, y) u` (the first-order methods use finite differences of `∇ᵧg`).
    fn curvature(&mut self, x: &[T], y: &[T], u: &[T]) -> Result<Vec<T>> {
        let mut h = vec![T::zero(); u.len()];
        if matches!(self.opts.method, Method::F2sa | Method::Penalty) {
            self.o.hvp_fd(x, y, u, &mut h)?;
        } else {
            self.o.hvp(x, y, u, None, &mut h)?;
        }
        Ok(h)
    }

    /// `L̂_g`, the largest eigenvalue of `∇²ᵧᵧg(x, y)` (10 power iterations); keeps the
    /// eigenvector estimate for [`Ctx::retune`].
    pub fn lipschitz_g(&mut self, x: &[T], y: &[T]) -> Result<f64> {
        let mut last = Vec::new();
        let l = self.power(y.len(), 10, |c, u| {
            last = u.to_vec();
            c.curvature(x, y, u)
        })?;
        self.track = last;
        Ok(l)
    }

    /// One power-iteration step from the tracked eigenvector: the lower-level step for this
    /// outer iteration (unchanged when `inner_step` was given or the estimate fails).
    pub fn retune(&mut self, x: &[T], y: &[T]) -> Result<f64> {
        if self.opts.inner_step.is_none() && !self.track.is_empty() {
            let u = std::mem::take(&mut self.track);
            let h = self.curvature(x, y, &u)?;
            let l = norm(&h);
            if l > 0.0 && l.is_finite() {
                self.alpha = 1.0 / l;
                self.track = h.iter().map(|e| T::from_f64(e.as_f64() / l)).collect();
            } else {
                self.track = u;
            }
        }
        Ok(self.alpha)
    }

    /// `L̂_f` in `y`: power iteration on finite differences of `∇ᵧf(x, ·)`.
    pub fn lipschitz_fy(&mut self, x: &[T], y: &[T]) -> Result<f64> {
        let (dx, dy) = (x.len(), y.len());
        let mut gx = vec![T::zero(); dx];
        let mut g0 = vec![T::zero(); dy];
        self.o.grad_f(x, y, None, &mut gx, &mut g0)?;
        let h = T::epsilon().as_f64().sqrt() * (1.0 + norm(y));
        self.power(dy, 10, |c, u| {
            let mut yp = y.to_vec();
            axpy(h, u, &mut yp);
            let mut g1 = vec![T::zero(); dy];
            c.o.grad_f(x, &yp, None, &mut gx, &mut g1)?;
            Ok(g1.iter().zip(&g0).map(|(a, b)| T::from_f64((a.as_f64() - b.as_f64()) / h)).collect())
        })
    }

    /// `L̂` of a hypergradient map `hg`: power iteration on `(hg(x + εu) − hg(x))/ε`.
    pub fn lipschitz_hg(
        &mut self,
        x: &[T],
        mut hg: impl FnMut(&mut Self, &[T]) -> Result<Vec<T>>,
    ) -> Result<f64> {
        let g0 = hg(self, x)?;
        let eps = 1e-3 * (1.0 + norm(x) / (x.len() as f64).sqrt());
        let probes = self.opts.lipschitz_probes;
        self.power(x.len(), probes, |c, u| {
            let mut xp = x.to_vec();
            axpy(eps, u, &mut xp);
            let g1 = hg(c, &xp)?;
            Ok(g1.iter().zip(&g0).map(|(a, b)| T::from_f64((a.as_f64() - b.as_f64()) / eps)).collect())
        })
    }

    /// Solves `∇²ᵧᵧg(x, y) v = b` approximately, warm-started at `v`: CG, or `neumann_terms`
    /// Richardson steps `v ← v + η (b − H v)` (the truncated Neumann series when `v = 0`).
    pub fn linear_solve(&mut self, x: &[T], y: &[T], b: &[T], v: &mut [T], eta: f64, batch: Batch) -> Result<()> {
        match self.opts.lin_solve {
            LinSolve::Cg => {
                let tol = self.cg_rel * norm(b);
                let maxit = self.opts.cg_maxiter;
                let o = &mut self.o;
                let info = cg(|p, out| o.hvp(x, y, p, batch, out), b, v, tol, maxit)?;
                if info.breakdown && !all_finite_vec(v) {
                    return Err(OptError::Numerical("CG broke down: the lower-level Hessian is not positive definite".into()));
                }
            }
            LinSolve::Neumann => {
                let mut h = vec![T::zero(); v.len()];
                for _ in 0..self.opts.neumann_terms {
                    self.o.hvp(x, y, v, batch, &mut h)?;
                    for ((vi, &bi), &hi) in v.iter_mut().zip(b).zip(&h) {
                        *vi = T::from_f64(vi.as_f64() + eta * (bi.as_f64() - hi.as_f64()));
                    }
                }
            }
        }
        Ok(())
    }

    /// AID's hypergradient `∇ₓf − ∇²ₓᵧg v` with `v` solving `H v = ∇ᵧf` (warm-started).
    pub fn aid_hypergrad(&mut self, x: &[T], y: &[T], v: &mut [T], eta: f64, bf: Batch, bg: Batch) -> Result<Vec<T>> {
        let (dx, dy) = (x.len(), y.len());
        let mut gx = vec![T::zero(); dx];
        let mut gy = vec![T::zero(); dy];
        self.o.grad_f(x, y, bf, &mut gx, &mut gy)?;
        self.linear_solve(x, y, &gy, v, eta, bg)?;
        let mut jv = vec![T::zero(); dx];
        self.o.jvp(x, y, v, bg, &mut jv)?;
        axpy(-1.0, &jv, &mut gx);
        Ok(gx)
    }
}

fn all_finite_vec<T: Real>(v: &[T]) -> bool {
    v.iter().all(|e| e.is_finite())
}

/// After an outer step: non-finite iterates end the run (status 4); then the observer is
/// called (it may stop or abort the run).
fn end_of_iteration<T: Real>(obs: &mut dyn Observer<T>, nit: usize, x: &[T], y: &[T], err: f64, lam: f64) -> Option<Termination> {
    if !(all_finite_vec(x) && all_finite_vec(y)) {
        return Some(Termination::Numerical(
            "the iterates became non-finite (the steps are too large for this problem): reduce outer_step / inner_step".into(),
        ));
    }
    let report = || Report {
        nit,
        error: err,
        vectors: vec![("x", x.to_vec()), ("y", y.to_vec())],
        scalars: vec![("hypergrad_norm", err), ("lam", lam)],
    };
    match obs.observe(nit, &report) {
        Control::Continue => None,
        Control::Stop => Some(Termination::Stopped),
        Control::Abort => Some(Termination::Aborted),
    }
}

/// Runs `opts.method` from `(x0, y0)`.
pub fn minimize<T: Real>(
    oracle: &dyn Oracle<T>,
    x0: &[T],
    y0: &[T],
    opts: &Options<T>,
    obs: &mut dyn Observer<T>,
) -> Result<Output<T>> {
    let (dx, dy) = oracle.dims();
    if x0.len() != dx || y0.len() != dy {
        return Err(OptError::InvalidInput(format!(
            "x0 has {} entries and y0 {}; the problem has d_x = {dx}, d_y = {dy}",
            x0.len(),
            y0.len()
        )));
    }
    if opts.proj_y.is_some() && !matches!(opts.method, Method::F2sa | Method::Penalty) {
        return Err(OptError::InvalidInput(
            "a constrained lower level (project_y) is only supported by the first-order methods 'penalty' and 'f2sa'".into(),
        ));
    }
    let mut c = Ctx::new(oracle, opts)?;
    let mut x = x0.to_vec();
    let mut y = y0.to_vec();
    project(&opts.proj_x, &mut x)?;
    project(&opts.proj_y, &mut y)?;
    c.o.enter(Phase::Setup);
    let lg = match opts.inner_step {
        Some(a) => 1.0 / a,
        None => c.lipschitz_g(&x, &y)?,
    };
    if !(lg > 0.0 && lg.is_finite()) {
        return Err(OptError::Numerical(format!(
            "could not estimate the lower-level smoothness (‖∇²ᵧᵧg‖ estimate {lg}); pass options['inner_step']"
        )));
    }
    let alpha = 1.0 / lg;
    c.alpha = alpha;
    let mut lower_res = f64::NAN;
    if opts.refine_steps > 0 {
        lower_res = c.solve_lower(&x, &mut y, alpha, 1e-8, opts.refine_steps)?;
    }
    let run = match opts.method {
        Method::F2sa | Method::Penalty => run_f2sa(&mut c, x, y, obs)?,
        Method::Aid => run_aid(&mut c, x, y, obs)?,
        Method::Itd => run_itd(&mut c, x, y, obs)?,
        Method::Soba => run_soba(&mut c, x, y, obs)?,
        Method::Borep => run_borep(&mut c, x, y, obs)?,
    };
    let (x, y, hg, nit, beta, lam, term, res) = run;
    let _ = alpha;
    let lower_residual = if res.is_nan() { lower_res } else { res };
    let fun = if matches!(term, Termination::Aborted) { f64::NAN } else { c.o.value_f(&x, &y).unwrap_or(f64::NAN) };
    let times = c.o.finish();
    Ok(Output {
        x,
        y,
        fun,
        hypergrad_norm: hg,
        lower_residual,
        nit,
        counts: c.o.counts,
        times,
        inner_step: c.alpha,
        outer_step: beta,
        lam,
        termination: term,
    })
}

type Run<T> = (Vec<T>, Vec<T>, f64, usize, f64, f64, Termination, f64);

/// The outer step: `opts.outer_step`, or `1/L̂` of the AID hypergradient (lower level solved
/// to 1e-8 relative from the current `y`, `H v = ∇ᵧf` by CG).
fn outer_step_aid<T: Real>(c: &mut Ctx<'_, T>, x: &[T], y: &[T]) -> Result<f64> {
    if let Some(b) = c.opts.outer_step {
        return Ok(b);
    }
    if c.opts.maxiter == 0 {
        return Ok(f64::NAN);
    }
    let mut yw = y.to_vec();
    let l = c.lipschitz_hg(x, |c, xp| {
        let alpha = c.alpha;
        c.solve_lower(xp, &mut yw, alpha, 1e-6, c.opts.refine_steps.max(100))?;
        let mut v = vec![T::zero(); yw.len()];
        let yy = yw.clone();
        let (dx, dy) = (xp.len(), yy.len());
        let mut gx = vec![T::zero(); dx];
        let mut gy = vec![T::zero(); dy];
        c.o.grad_f(xp, &yy, None, &mut gx, &mut gy)?;
        let t = 1e-10 * norm(&gy);
        let o = &mut c.o;
        cg(|p, out| o.hvp(xp, &yy, p, None, out), &gy, &mut v, t, 10 * dy.min(100))?;
        let mut jv = vec![T::zero(); dx];
        c.o.jvp(xp, &yy, &v, None, &mut jv)?;
        axpy(-1.0, &jv, &mut gx);
        Ok(gx)
    })?;
    step_from(l)
}

fn step_from(l: f64) -> Result<f64> {
    if l > 0.0 && l.is_finite() {
        Ok(1.0 / l)
    } else if l == 0.0 {
        Ok(1.0)
    } else {
        Err(OptError::Numerical(format!(
            "could not estimate the hypergradient's Lipschitz constant (got {l}); pass options['outer_step']"
        )))
    }
}

fn decay(k: usize, p: f64) -> f64 {
    if p == 0.0 {
        1.0
    } else {
        1.0 / ((k + 1) as f64).powf(p)
    }
}

/// Hypergradient descent: each iteration, `step(c, x, y, α, s)` updates the lower level and
/// returns a hypergradient estimate and the last lower-level residual; then
/// `x ← P(x − β s ĝ)` with `s` the step decay.
fn run_hgd<T: Real>(
    c: &mut Ctx<'_, T>,
    mut x: Vec<T>,
    mut y: Vec<T>,
    obs: &mut dyn Observer<T>,
    mut step: impl FnMut(&mut Ctx<'_, T>, &[T], &mut Vec<T>, f64, f64) -> Result<(Vec<T>, f64)>,
) -> Result<Run<T>> {
    let beta = outer_step_aid(c, &x, &y)?;
    let opts = c.opts;
    let (mut hg, mut res) = (f64::NAN, f64::NAN);
    let mut term = Termination::MaxIter;
    let mut nit = 0;
    for k in 0..opts.maxiter {
        let s = decay(k, opts.decay);
        let alpha = c.retune(&x, &y)?;
        let (g, r) = step(c, &x, &mut y, alpha, s)?;
        res = r;
        c.o.enter(Phase::Upper);
        hg = norm(&g);
        if hg <= opts.tol && res <= opts.tol {
            term = Termination::Converged;
            break;
        }
        axpy(-beta * s, &g, &mut x);
        project(&opts.proj_x, &mut x)?;
        nit = k + 1;
        if let Some(t) = end_of_iteration(obs, nit, &x, &y, hg, f64::NAN) {
            term = t;
            break;
        }
    }
    Ok((x, y, hg, nit, beta, f64::NAN, term, res))
}

/// AID: `inner_steps` lower-level steps, then `H v = ∇ᵧf` by warm-started CG or Neumann.
///
/// CG's relative tolerance is `min(cg_tol, 1e-2 ‖ĝ_{k−1}‖/‖ĝ_0‖)` (an inexact-Newton forcing
/// term): the error of the hypergradient estimate stays a small fraction of it, so the
/// convergence test `‖ĝ‖ ≤ tol` is meaningful.
fn run_aid<T: Real>(c: &mut Ctx<'_, T>, x: Vec<T>, y: Vec<T>, obs: &mut dyn Observer<T>) -> Result<Run<T>> {
    let mut v = vec![T::zero(); y.len()];
    let (mut g0, mut gprev) = (f64::NAN, f64::NAN);
    run_hgd(c, x, y, obs, |c, x, y, alpha, s| {
        if g0 > 0.0 {
            c.cg_rel = c.opts.cg_tol.min(1e-2 * gprev / g0);
        }
        c.o.enter(Phase::Lower);
        let mut res = f64::NAN;
        for _ in 0..c.opts.inner_steps {
            let bg = c.bg();
            res = c.lower_step(x, y, alpha * s, bg.as_deref())?;
        }
        c.o.enter(Phase::Linear);
        let (bf, bg) = (c.bf(), c.bg());
        let g = c.aid_hypergrad(x, y, &mut v, alpha, bf.as_deref(), bg.as_deref())?;
        gprev = norm(&g);
        if g0.is_nan() {
            g0 = gprev;
        }
        Ok((g, res))
    })
}

/// ITD: unroll `inner_steps` lower-level steps from the previous `y`, then the adjoint pass
/// `gₓ −= α ∇²ₓᵧg(yₜ) p`, `p −= α ∇²ᵧᵧg(yₜ) p` backwards over the stored trajectory.
fn run_itd<T: Real>(c: &mut Ctx<'_, T>, x: Vec<T>, y: Vec<T>, obs: &mut dyn Observer<T>) -> Result<Run<T>> {
    let (dx, dy) = (x.len(), y.len());
    run_hgd(c, x, y, obs, |c, x, y, alpha, s| {
        c.o.enter(Phase::Lower);
        let t_steps = c.opts.inner_steps.max(1);
        let mut res = f64::NAN;
        let mut traj: Vec<(Vec<T>, Option<Vec<usize>>)> = Vec::with_capacity(t_steps);
        for _ in 0..t_steps {
            let bg = c.bg();
            traj.push((y.clone(), bg.clone()));
            res = c.lower_step(x, y, alpha * s, bg.as_deref())?;
        }
        c.o.enter(Phase::Linear);
        let bf = c.bf();
        let mut gx = vec![T::zero(); dx];
        let mut p = vec![T::zero(); dy];
        c.o.grad_f(x, y, bf.as_deref(), &mut gx, &mut p)?;
        let mut hyy = vec![T::zero(); dy];
        let mut hxy = vec![T::zero(); dx];
        for (yt, bg) in traj.iter().rev() {
            c.o.second(x, yt, &p, bg.as_deref(), Some(&mut hyy), Some(&mut hxy))?;
            axpy(-alpha * s, &hxy, &mut gx);
            axpy(-alpha * s, &hyy, &mut p);
        }
        Ok((gx, res))
    })
}

fn run_soba<T: Real>(c: &mut Ctx<'_, T>, mut x: Vec<T>, mut y: Vec<T>, obs: &mut dyn Observer<T>) -> Result<Run<T>> {
    let beta = outer_step_aid(c, &x, &y)?;
    let opts = c.opts;
    let (dx, dy) = (x.len(), y.len());
    let mut v = vec![T::zero(); dy];
    let (mut hg, mut res) = (f64::NAN, f64::NAN);
    let mut term = Termination::MaxIter;
    let mut nit = 0;
    let (mut gyg, mut gx, mut gy, mut hv, mut jv) =
        (vec![T::zero(); dy], vec![T::zero(); dx], vec![T::zero(); dy], vec![T::zero(); dy], vec![T::zero(); dx]);
    for k in 0..opts.maxiter {
        let s = decay(k, opts.decay);
        let alpha = c.retune(&x, &y)?;
        let (bf, bg) = (c.bf(), c.bg());
        c.o.enter(Phase::Lower);
        c.o.grad_g(&x, &y, bg.as_deref(), None, &mut gyg)?;
        res = norm(&gyg);
        c.o.enter(Phase::Linear);
        c.o.grad_f(&x, &y, bf.as_deref(), &mut gx, &mut gy)?;
        c.o.second(&x, &y, &v, bg.as_deref(), Some(&mut hv), Some(&mut jv))?;
        let vres: f64 = hv.iter().zip(&gy).map(|(a, b)| (a.as_f64() - b.as_f64()).powi(2)).sum::<f64>().sqrt();
        c.o.enter(Phase::Upper);
        axpy(-1.0, &jv, &mut gx);
        hg = norm(&gx);
        if hg <= opts.tol && res <= opts.tol && vres <= opts.tol {
            term = Termination::Converged;
            break;
        }
        axpy(-alpha * s, &gyg, &mut y);
        for ((vi, &h), &b) in v.iter_mut().zip(&hv).zip(&gy) {
            *vi = T::from_f64(vi.as_f64() - alpha * s * (h.as_f64() - b.as_f64()));
        }
        axpy(-beta * s, &gx, &mut x);
        project(&opts.proj_x, &mut x)?;
        nit = k + 1;
        if let Some(t) = end_of_iteration(obs, nit, &x, &y, hg, f64::NAN) {
            term = t;
            break;
        }
    }
    Ok((x, y, hg, nit, beta, f64::NAN, term, res))
}

fn run_borep<T: Real>(c: &mut Ctx<'_, T>, mut x: Vec<T>, mut y: Vec<T>, obs: &mut dyn Observer<T>) -> Result<Run<T>> {
    let beta = outer_step_aid(c, &x, &y)?;
    let opts = c.opts;
    let (dx, dy) = (x.len(), y.len());
    let mut z = vec![T::zero(); dy];
    if opts.maxiter > 0 {
        // z₀ ≈ H⁻¹∇ᵧf (CG): from z = 0 the first hypergradient would ignore the lower level.
        let mut gx = vec![T::zero(); dx];
        let mut gy = vec![T::zero(); dy];
        c.o.grad_f(&x, &y, None, &mut gx, &mut gy)?;
        let alpha = c.alpha;
        c.linear_solve(&x, &y, &gy, &mut z, alpha, None)?;
    }
    let mut m = vec![0.0f64; dx];
    let (mut hg, mut res) = (f64::NAN, f64::NAN);
    let mut term = Termination::MaxIter;
    let mut nit = 0;
    let mut eta0 = f64::NAN;
    let (mut gx, mut gy, mut hz, mut jz) = (vec![T::zero(); dx], vec![T::zero(); dy], vec![T::zero(); dy], vec![T::zero(); dx]);
    for k in 0..opts.maxiter {
        let alpha = c.retune(&x, &y)?;
        if k % opts.period.max(1) == 0 {
            c.o.enter(Phase::Lower);
            for _ in 0..opts.inner_steps {
                let bg = c.bg();
                res = c.lower_step(&x, &mut y, alpha, bg.as_deref())?;
            }
        }
        let (bf, bg) = (c.bf(), c.bg());
        c.o.enter(Phase::Linear);
        c.o.grad_f(&x, &y, bf.as_deref(), &mut gx, &mut gy)?;
        c.o.second(&x, &y, &z, bg.as_deref(), Some(&mut hz), Some(&mut jz))?;
        c.o.enter(Phase::Upper);
        axpy(-1.0, &jz, &mut gx);
        hg = norm(&gx);
        if hg <= opts.tol && res <= opts.tol {
            term = Termination::Converged;
            break;
        }
        for ((zi, &h), &b) in z.iter_mut().zip(&hz).zip(&gy) {
            *zi = T::from_f64(zi.as_f64() - alpha * (h.as_f64() - b.as_f64()));
        }
        let zn = norm(&z);
        if zn > opts.radius {
            let sc = opts.radius / zn;
            z.iter_mut().for_each(|e| *e = T::from_f64(e.as_f64() * sc));
        }
        for (mi, &g) in m.iter_mut().zip(&gx) {
            *mi = opts.beta * *mi + (1.0 - opts.beta) * g.as_f64();
        }
        let mn = m.iter().map(|v| v * v).sum::<f64>().sqrt();
        if eta0.is_nan() && hg > 0.0 {
            // The first normalised step has the length of a gradient step of size β.
            eta0 = beta * hg;
        }
        let eta = eta0 * decay(k, opts.decay);
        if mn > 0.0 && eta > 0.0 {
            for (xi, &mi) in x.iter_mut().zip(&m) {
                *xi = T::from_f64(xi.as_f64() - eta * mi / mn);
            }
        }
        project(&opts.proj_x, &mut x)?;
        nit = k + 1;
        if let Some(t) = end_of_iteration(obs, nit, &x, &y, hg, f64::NAN) {
            term = t;
            break;
        }
    }
    Ok((x, y, hg, nit, beta, f64::NAN, term, res))
}

/// F2SA's (and the penalty method's) pieces at one `x`: inner loops on `y` (for `f + λg`) and
/// `z` (for `g`), and the outer direction `∇ₓf(x, y) + λ(∇ₓg(x, y) − ∇ₓg(x, z))`.
struct Penalty {
    alpha_z: f64,
    lf: f64,
    lg: f64,
}

/// F2SA's STORM correction of the inner steps: the step direction of `(y, z)` is
/// `h_t = d_t + (1 − η)(h_{t−1} − d(previous point; same sample))`, the previous point being
/// the last one a step was taken from (possibly at the previous `x`).
struct Storm<T> {
    eta: f64,
    last: Option<(Vec<T>, Vec<T>)>,
    h: Vec<T>,
}

impl<T: Real> Storm<T> {
    /// Replaces the stacked directions `d` (`y`: `∇ᵧf + λ∇ᵧg`, then `z`: `∇ᵧg`) at `(x, e)` by
    /// the corrected ones.
    #[allow(clippy::too_many_arguments)]
    fn correct(&mut self, c: &mut Ctx<'_, T>, x: &[T], e: &[T], lam: f64, bf: Batch, bg: Batch, d: &mut [T]) -> Result<()> {
        let dy = e.len() / 2;
        match self.last.take() {
            Some((xl, el)) => {
                let mut gl = vec![T::zero(); 2 * dy];
                let mut fxl = vec![T::zero(); xl.len()];
                let mut fyl = vec![T::zero(); dy];
                c.o.grad_g(&xl, &el, bg, None, &mut gl)?;
                c.o.grad_f(&xl, &el[..dy], bf, &mut fxl, &mut fyl)?;
                for i in 0..2 * dy {
                    let old = if i < dy { fyl[i].as_f64() + lam * gl[i].as_f64() } else { gl[i].as_f64() };
                    let hi = d[i].as_f64() + (1.0 - self.eta) * (self.h[i].as_f64() - old);
                    self.h[i] = T::from_f64(hi);
                }
            }
            None => self.h = d.to_vec(),
        }
        d.copy_from_slice(&self.h);
        self.last = Some((x.to_vec(), e.to_vec()));
        Ok(())
    }
}

impl Penalty {
    fn alpha_y(&self, lam: f64) -> f64 {
        1.0 / (self.lf + lam * self.lg)
    }

    /// Up to `steps` projected steps on `y` and `z` (one batched `grad_g` call per step for
    /// both points); returns the last gradient-mapping norms of `y` and `z`. With `accel`,
    /// Nesterov momentum with gradient restarts: used for the accurate solves of the step-size
    /// probes (the `y`-problem `f + λg` has a condition number growing with `λ`). The methods'
    /// own iterations take plain steps: from a common warm start, plain steps keep the errors
    /// of `y` and `z` correlated, and they cancel in `λ(∇ₓg(x, y) − ∇ₓg(x, z))`; separately
    /// restarted momentum decorrelates them (seen on hyper-cleaning: the penalty direction
    /// became noise).
    #[allow(clippy::too_many_arguments)]
    fn inner<T: Real>(
        &self,
        c: &mut Ctx<'_, T>,
        x: &[T],
        y: &mut [T],
        z: &mut [T],
        lam: f64,
        s: f64,
        steps: usize,
        tol: f64,
        accel: bool,
        mut storm: Option<&mut Storm<T>>,
    ) -> Result<(f64, f64)> {
        let (dx, dy) = (x.len(), y.len());
        let (ay, az) = (self.alpha_y(lam) * s, self.alpha_z * s);
        // Extrapolated points (where gradients are taken) of y and z, stacked.
        let mut e = vec![T::zero(); 2 * dy];
        e[..dy].copy_from_slice(y);
        e[dy..].copy_from_slice(z);
        let mut g = vec![T::zero(); 2 * dy];
        let mut fx = vec![T::zero(); dx];
        let mut fy = vec![T::zero(); dy];
        let mut new = vec![T::zero(); 2 * dy];
        let (mut ty, mut tz) = (1.0f64, 1.0f64);
        let (mut ry, mut rz) = (f64::NAN, f64::NAN);
        for _ in 0..steps {
            let (bf, bg) = (c.bf(), c.bg());
            c.o.grad_g(x, &e, bg.as_deref(), None, &mut g)?;
            c.o.grad_f(x, &e[..dy], bf.as_deref(), &mut fx, &mut fy)?;
            for i in 0..dy {
                g[i] = T::from_f64(fy[i].as_f64() + lam * g[i].as_f64());
            }
            if let Some(st) = storm.as_deref_mut() {
                st.correct(c, x, &e, lam, bf.as_deref(), bg.as_deref(), &mut g)?;
            }
            for i in 0..dy {
                new[i] = T::from_f64(e[i].as_f64() - ay * g[i].as_f64());
                new[dy + i] = T::from_f64(e[dy + i].as_f64() - az * g[dy + i].as_f64());
            }
            project(&c.opts.proj_y, &mut new[..dy])?;
            project(&c.opts.proj_y, &mut new[dy..])?;
            let dist = |a: &[T], b: &[T]| a.iter().zip(b).map(|(u, v)| (u.as_f64() - v.as_f64()).powi(2)).sum::<f64>().sqrt();
            ry = dist(&e[..dy], &new[..dy]) / ay / (1.0 + lam);
            rz = dist(&e[dy..], &new[dy..]) / az;
            for (part, prev, t) in [(0..dy, &mut *y, &mut ty), (dy..2 * dy, &mut *z, &mut tz)] {
                let (gp, np) = (&g[part.clone()], &new[part.clone()]);
                let restart = !accel || gp.iter().zip(np.iter().zip(prev.iter())).map(|(gi, (a, b))| gi.as_f64() * (a.as_f64() - b.as_f64())).sum::<f64>() > 0.0;
                let tn = 0.5 * (1.0 + (1.0 + 4.0 * *t * *t).sqrt());
                let mom = if restart { 0.0 } else { (*t - 1.0) / tn };
                for ((ei, &ni), pi) in e[part].iter_mut().zip(np).zip(prev.iter_mut()) {
                    *ei = T::from_f64(ni.as_f64() + mom * (ni.as_f64() - pi.as_f64()));
                    *pi = ni;
                }
                *t = if restart { 1.0 } else { tn };
            }
            if ry <= tol && rz <= tol {
                break;
            }
        }
        Ok((ry, rz))
    }

    /// The outer direction at `(x, y, z)`.
    fn direction<T: Real>(c: &mut Ctx<'_, T>, x: &[T], y: &[T], z: &[T], lam: f64, bf: Batch, bg: Batch) -> Result<Vec<T>> {
        let (dx, dy) = (x.len(), y.len());
        let mut fx = vec![T::zero(); dx];
        let mut fy = vec![T::zero(); dy];
        c.o.grad_f(x, y, bf, &mut fx, &mut fy)?;
        let mut yz = Vec::with_capacity(2 * dy);
        yz.extend_from_slice(y);
        yz.extend_from_slice(z);
        let mut g = vec![T::zero(); 2 * dy];
        let mut gx = vec![T::zero(); 2 * dx];
        c.o.grad_g(x, &yz, bg, Some(&mut gx), &mut g)?;
        Ok((0..dx).map(|i| T::from_f64(fx[i].as_f64() + lam * (gx[i].as_f64() - gx[dx + i].as_f64()))).collect())
    }
}

fn run_f2sa<T: Real>(c: &mut Ctx<'_, T>, mut x: Vec<T>, mut y: Vec<T>, obs: &mut dyn Observer<T>) -> Result<Run<T>> {
    let opts = c.opts;
    let penalty = opts.method == Method::Penalty;
    let lf = if opts.maxiter == 0 { 0.0 } else { c.lipschitz_fy(&x, &y)? };
    let mut pen = Penalty { alpha_z: c.alpha, lf, lg: 1.0 / c.alpha };
    let mut z = y.clone();
    let mut lam = if penalty { 1.0 / opts.sigma } else { opts.lam0 };
    let lam_final = if penalty { lam } else { opts.lam_max.max(opts.lam0) };
    // Outer step: 1/L̂ of the penalty gradient at λ = lam_final, the inner problems solved
    // accurately (first-order oracles only).
    let beta = match opts.outer_step {
        Some(b) => b,
        None if opts.maxiter == 0 => f64::NAN,
        None => {
            let (mut yw, mut zw) = (y.clone(), z.clone());
            let tol = 1e-9 * (1.0 + norm(&y));
            let l = c.lipschitz_hg(&x, |c, xp| {
                pen.inner(c, xp, &mut yw, &mut zw, lam_final, 1.0, c.opts.refine_steps.max(100), tol, true, None)?;
                Penalty::direction(c, xp, &yw, &zw, lam_final, None, None)
            })?;
            step_from(l)?
        }
    };
    let (mut hg, mut res) = (f64::NAN, f64::NAN);
    let mut term = Termination::MaxIter;
    let mut nit = 0;
    let inner_tol = opts.inner_tol;
    let mut storm = opts.momentum.map(|eta| Storm { eta, last: None, h: Vec::new() });
    // The previous (x, y, z, λ, h) for the STORM correction of the x step.
    type Prev<T> = (Vec<T>, Vec<T>, Vec<T>, f64, Vec<T>);
    let mut prev: Option<Prev<T>> = None;
    for k in 0..opts.maxiter {
        let s = decay(k, opts.decay);
        let alpha = c.retune(&x, &y)?;
        pen.alpha_z = alpha;
        pen.lg = 1.0 / alpha;
        c.o.enter(Phase::Lower);
        let (ry, rz) = pen.inner(c, &x, &mut y, &mut z, lam, s, opts.inner_steps.max(1), inner_tol, false, storm.as_mut())?;
        res = ry.max(rz);
        c.o.enter(Phase::Upper);
        let (bf, bg) = (c.bf(), c.bg());
        let d = Penalty::direction(c, &x, &y, &z, lam, bf.as_deref(), bg.as_deref())?;
        hg = norm(&d);
        let h = match (opts.momentum, prev.take()) {
            (Some(eta), Some((px, py, pz, plam, ph))) => {
                // STORM: h_k = d_k + (1 − η)(h_{k−1} − d(x_{k−1}; same sample)).
                let dp = Penalty::direction(c, &px, &py, &pz, plam, bf.as_deref(), bg.as_deref())?;
                (0..d.len()).map(|i| T::from_f64(d[i].as_f64() + (1.0 - eta) * (ph[i].as_f64() - dp[i].as_f64()))).collect()
            }
            _ => d.clone(),
        };
        if hg <= opts.tol && res <= opts.tol && lam >= lam_final {
            term = Termination::Converged;
            break;
        }
        if opts.momentum.is_some() {
            prev = Some((x.clone(), y.clone(), z.clone(), lam, h.clone()));
        }
        axpy(-beta * s, &h, &mut x);
        project(&opts.proj_x, &mut x)?;
        if !penalty {
            lam = (lam + opts.lam_delta * decay(k, opts.lam_power)).min(lam_final);
        }
        nit = k + 1;
        if let Some(t) = end_of_iteration(obs, nit, &x, &y, hg, lam) {
            term = t;
            break;
        }
    }
    Ok((x, y, hg, nit, beta, lam, term, res))
}
