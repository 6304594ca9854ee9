//! What every method shares: the options of every method, what a run returns, and the run's
//! context (counted oracle, PRNG, step sizes, lower-level solves, power iterations, the end of
//! an outer iteration). The methods are in [`super::implicit`] (`aid`, `itd`, `soba`, `borep`)
//! and [`super::first_order`] (`f2sa`, `penalty`); [`super::minimize`] dispatches. See
//! `optcore.bilevel.minimize` for the user-facing description of each update and option.

use super::direct::{self, LowerSolve};
use super::oracle::{Batch, Counted, Counts, Oracle};
use crate::error::{OptError, Result};
use crate::linalg::{all_finite, axpy, cg, norm};
use crate::operators::SharedOp;
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
    /// The exact hypergradient: `∇²ᵧᵧg` built from `d_y` products and factorised (small
    /// problems).
    Exact,
}

/// The outer loop of the hypergradient methods (`aid`, `itd`, `exact`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outer {
    /// The method's own update (gradient steps `x ← P(x − β ĝ)` for `aid` / `itd` / `exact`).
    Gd,
    /// L-BFGS with bounds ([`super::outer`]).
    Lbfgs,
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
    pub outer: Outer,
    /// L-BFGS memory (pairs kept).
    pub memory: usize,
    /// Bounds `lo ≤ x ≤ hi` of the L-BFGS outer loop (entries may be infinite).
    pub bounds: Option<(Vec<f64>, Vec<f64>)>,
    /// The L-BFGS outer loop's lower solve (`aid`, `exact`; [`super::direct`]).
    pub lower_solve: LowerSolve,
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
            outer: Outer::Gd,
            memory: 10,
            bounds: None,
            lower_solve: LowerSolve::Auto,
        }
    }
}

/// What a run returns.
pub struct Output<T> {
    pub x: Vec<T>,
    pub y: Vec<T>,
    /// `f(x, y)` when the problem evaluates values, NaN otherwise.
    pub fun: f64,
    /// `‖∇F‖` measured at the returned `x` ([`Ctx::measure`]; `measured`), or, when it cannot
    /// be measured (a constrained lower level), the method's estimate.
    pub hypergrad_norm: f64,
    /// Norm of the method's last hypergradient estimate (F2SA/penalty: of the penalty
    /// gradient); NaN when no iteration ran.
    pub hypergrad_estimate: f64,
    /// Whether `hypergrad_norm` was measured (see [`Ctx::measure`]); then `y` is the re-solved
    /// lower level it was measured at, `fun = f(x, y) ≈ F(x)` and `lower_residual` is there.
    pub measured: bool,
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
    /// Whether the lower level and the adjoint system were last solved directly (dense
    /// Cholesky, [`super::direct`]); the final measurement used the same path.
    pub direct: bool,
}

/// Shared state of a run: the counted oracle, the PRNG and the steps.
pub struct Ctx<'a, T: Real> {
    pub o: Counted<'a, T>,
    pub opts: &'a Options<T>,
    pub(super) rng: Rng,
    pub(super) nf: usize,
    pub(super) ng: usize,
    /// `‖∇ᵧg‖` at the start of the first lower-level solve: the scale relative tolerances of
    /// later solves refer to (a warm start near the solution cannot reach `rtol` times its
    /// own, already tiny, residual).
    pub(super) r_ref: f64,
    /// The lower-level step `1/L̂_g`, retuned every outer iteration by one power-iteration
    /// step from `track` (the last estimate of the top eigenvector of `∇²ᵧᵧg`), because the
    /// curvature moves with `x` (ridge: `exp(λ)`); fixed when `inner_step` is given.
    pub alpha: f64,
    pub(super) track: Vec<T>,
    /// CG's relative tolerance for the next solve (AID tightens it as the hypergradient
    /// shrinks).
    pub(super) cg_rel: f64,
    /// The first outer iteration at which [`Ctx::certify`] measures again after a failed
    /// measurement (measuring costs a lower-level solve).
    next_check: usize,
    /// Whether the L-BFGS outer loop solves directly ([`super::direct`]); then
    /// [`Ctx::measure`] does too.
    pub(super) direct: bool,
    /// Set when the observer interrupted a factorisation (Ctrl-C): the L-BFGS outer loop then
    /// ends as aborted ([`super::outer::run_lbfgs`]).
    pub(super) aborted: bool,
    /// The storage of the last factored lower Hessian, reused by the next factorisation
    /// ([`super::direct`]: a `d_y²` buffer allocated and zeroed per outer point cost as much
    /// as building the Hessian).
    pub(super) spare: Vec<f64>,
}

pub(super) fn sample(rng: &mut Rng, n: usize, b: usize) -> Option<Vec<usize>> {
    if b == 0 || b >= n {
        None
    } else {
        Some((0..b).map(|_| rng.below(n)).collect())
    }
}

pub(super) fn project<T: Real>(p: &Option<SharedOp<T>>, v: &mut [T]) -> Result<()> {
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
        Ok(Ctx {
            o: Counted::new(oracle),
            opts,
            rng: Rng::new(opts.seed),
            nf,
            ng,
            r_ref: 0.0,
            alpha: f64::NAN,
            track: Vec::new(),
            cg_rel: opts.cg_tol,
            next_check: 0,
            direct: false,
            aborted: false,
            spare: Vec::new(),
        })
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
        Ok(self.agd(x, y, alpha, rtol, max_steps)?.1)
    }

    /// [`Ctx::solve_lower`], returning also `‖∇ᵧg(x, y)‖` at the start (0 steps: NaN).
    fn agd(&mut self, x: &[T], y: &mut [T], alpha: f64, rtol: f64, max_steps: usize) -> Result<(f64, f64)> {
        let mut first = f64::NAN;
        let mut r0 = f64::NAN;
        let mut r = f64::INFINITY;
        let mut z = y.to_vec();
        let mut g = vec![T::zero(); y.len()];
        let mut t = 1.0f64;
        for k in 0..max_steps {
            self.o.grad_g(x, &z, None, None, &mut g)?;
            r = norm(&g);
            if k == 0 {
                first = r;
                r0 = r.max(self.r_ref);
                if self.r_ref == 0.0 {
                    self.r_ref = r;
                }
            }
            let mut ynew = z.clone();
            axpy(-alpha, &g, &mut ynew);
            project(&self.opts.proj_y, &mut ynew)?;
            let restart = g
                .iter()
                .zip(ynew.iter().zip(y.iter()))
                .map(|(gi, (a, b))| gi.as_f64() * (a.as_f64() - b.as_f64()))
                .sum::<f64>()
                > 0.0;
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
        Ok((first, r))
    }

    /// One damped step of a Newton-type lower solve: `trial(t, y, yt)` forms the trial point
    /// for step length `t` (1, then halved at most 7 times) and the first trial that decreases
    /// the residual `‖∇ᵧg‖ = *r` (with finite entries) replaces `y`, `g` and `r`. A trial where
    /// the oracle overflows is a failed trial (a shorter step). Returns whether a step was taken
    /// (`false`: the rounding floor). `yt` and `gt` are scratch of `y`'s length.
    pub(super) fn damped_lower_step(
        &mut self,
        x: &[T],
        (y, g, r): (&mut [T], &mut Vec<T>, &mut f64),
        (yt, gt): (&mut [T], &mut Vec<T>),
        mut trial: impl FnMut(f64, &[T], &mut [T]),
    ) -> Result<bool> {
        let mut step = 1.0;
        for _ in 0..8 {
            trial(step, y, yt);
            let rt = match self.o.grad_g(x, yt, None, None, gt) {
                Ok(()) => norm(gt),
                Err(OptError::Numerical(_)) => f64::INFINITY,
                Err(e) => return Err(e),
            };
            if all_finite(yt) && rt < *r {
                y.copy_from_slice(yt);
                std::mem::swap(g, gt);
                *r = rt;
                return Ok(true);
            }
            step *= 0.5;
        }
        Ok(false)
    }

    /// The lower level at `x` solved from `y` by [`Ctx::solve_lower`] for a measurement or a
    /// fallback: returns the solved `y`, `∇ᵧg` there and its norm. The step `self.alpha` was
    /// estimated at another point (`x0`, or an earlier retune); where the lower level is
    /// stiffer at `x` (ridge's `exp(λ)` has grown since), accelerated gradient descent with
    /// it diverges. A solve that ends more than 1000 times above its start residual (or
    /// overflows) is such a divergence: `L̂_g` is re-estimated at `(x, y)` (10 power
    /// iterations) and the solve restarts from `y`, the step halved while it still diverges
    /// (at most 5 times; then `y` itself is returned). The step that converged becomes
    /// `self.alpha` (unless `inner_step` was given).
    pub fn solve_lower_checked(
        &mut self,
        x: &[T],
        y: &[T],
        rtol: f64,
        max_steps: usize,
    ) -> Result<(Vec<T>, Vec<T>, f64)> {
        let mut yw = y.to_vec();
        let mut gyg = vec![T::zero(); y.len()];
        let mut alpha = self.alpha;
        for attempt in 0..7 {
            let lower = match self.agd(x, &mut yw, alpha, rtol, max_steps) {
                Ok((first, _)) => match self.o.grad_g(x, &yw, None, None, &mut gyg) {
                    Ok(()) if all_finite(&yw) => Some((norm(&gyg), first)),
                    Ok(()) | Err(OptError::Numerical(_)) => None,
                    Err(e) => return Err(e),
                },
                Err(OptError::Numerical(_)) => None,
                Err(e) => return Err(e),
            };
            if let Some((r, first)) = lower {
                // `first` is NaN only without steps: nothing can have diverged.
                if first.is_nan() || r <= 1e3 * first.max(1e-10 * self.r_ref).max(f64::MIN_POSITIVE) {
                    if self.opts.inner_step.is_none() {
                        self.alpha = alpha;
                    }
                    return Ok((yw, gyg, r));
                }
            }
            yw.copy_from_slice(y);
            alpha = if attempt == 0 && self.opts.inner_step.is_none() {
                let l = self.lipschitz_g(x, y)?;
                if l > 0.0 && l.is_finite() {
                    1.0 / l
                } else {
                    0.5 * alpha
                }
            } else {
                0.5 * alpha
            };
        }
        self.o.grad_g(x, y, None, None, &mut gyg)?;
        let r = norm(&gyg);
        Ok((yw, gyg, r))
    }

    /// `L̂` of a symmetric linear map `u ↦ apply(u)` by `probes` power iterations from a
    /// random start (the largest |eigenvalue|, from below), then up to `more` further ones
    /// while the estimate still grows by more than 1% per iteration (a start nearly
    /// orthogonal to the top eigenvector: after 10 iterations the estimate can still be far
    /// below, e.g. 0.59 for 0.87, and a lower-level step `1/L̂` that long diverges).
    fn power(
        &mut self,
        n: usize,
        probes: usize,
        more: usize,
        mut apply: impl FnMut(&mut Self, &[T]) -> Result<Vec<T>>,
    ) -> Result<f64> {
        let mut u: Vec<T> = (0..n).map(|_| T::from_f64(self.rng.normal())).collect();
        let un = norm(&u).max(f64::MIN_POSITIVE);
        u.iter_mut().for_each(|e| *e = T::from_f64(e.as_f64() / un));
        let mut l = 0.0;
        for k in 0..probes.max(1) + more {
            let prev = l;
            let w = apply(self, &u)?;
            l = norm(&w);
            if !(l > 0.0 && l.is_finite()) {
                break;
            }
            u = w.iter().map(|e| T::from_f64(e.as_f64() / l)).collect();
            if k + 1 >= probes.max(1) && l <= 1.01 * prev {
                break;
            }
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

    /// `L̂_g`, the largest eigenvalue of `∇²ᵧᵧg(x, y)` (10 power iterations, up to 100 while
    /// the estimate still grows); keeps the eigenvector estimate for [`Ctx::retune`].
    pub fn lipschitz_g(&mut self, x: &[T], y: &[T]) -> Result<f64> {
        let mut last = Vec::new();
        let l = self.power(y.len(), 10, 90, |c, u| {
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
        self.power(dy, 10, 0, |c, u| {
            let mut yp = y.to_vec();
            axpy(h, u, &mut yp);
            let mut g1 = vec![T::zero(); dy];
            c.o.grad_f(x, &yp, None, &mut gx, &mut g1)?;
            Ok(g1.iter().zip(&g0).map(|(a, b)| T::from_f64((a.as_f64() - b.as_f64()) / h)).collect())
        })
    }

    /// `L̂` of a hypergradient map `hg`: power iteration on `(hg(x + εu) − hg(x))/ε`.
    pub fn lipschitz_hg(&mut self, x: &[T], mut hg: impl FnMut(&mut Self, &[T]) -> Result<Vec<T>>) -> Result<f64> {
        let g0 = hg(self, x)?;
        let eps = 1e-3 * (1.0 + norm(x) / (x.len() as f64).sqrt());
        let probes = self.opts.lipschitz_probes;
        self.power(x.len(), probes, 0, |c, u| {
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
                if info.breakdown && !all_finite(v) {
                    return Err(OptError::Numerical(
                        "CG broke down: the lower-level Hessian is not positive definite".into(),
                    ));
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

    /// Whether `‖∇F‖` can be measured: not with a constrained lower level (`project_y`),
    /// where `y*(x)` need not be unique nor differentiable.
    pub fn measurable(&self) -> bool {
        self.opts.proj_y.is_none()
    }

    /// `‖∇F(x)‖` measured independently of the method's estimate: the lower level re-solved
    /// from `y` (accelerated gradient descent to `‖∇ᵧg‖ ≤ 1e-12` relative, at least 1000
    /// steps allowed), `∇²ᵧᵧg v = ∇ᵧf` by CG to `1e-12 ‖∇ᵧf‖`, then `∇ₓf − ∇²ₓᵧg v` (full
    /// batches). Returns its norm ([`Ctx::stationarity`]: projected with bounds), the
    /// re-solved `y` and `‖∇ᵧg‖` there.
    pub fn measure(&mut self, x: &[T], y: &[T]) -> Result<(f64, Vec<T>, f64)> {
        if self.direct {
            match self.measure_direct(x, y) {
                Err(OptError::Numerical(_)) => {}
                other => return other,
            }
        }
        let (yw, _, lower) = self.solve_lower_checked(x, y, 1e-12, self.opts.refine_steps.max(1000))?;
        let (dx, dy) = (x.len(), yw.len());
        let mut gx = vec![T::zero(); dx];
        let mut gy = vec![T::zero(); dy];
        self.o.grad_f(x, &yw, None, &mut gx, &mut gy)?;
        let mut v = vec![T::zero(); dy];
        let t = 1e-12 * norm(&gy);
        let o = &mut self.o;
        cg(|p, out| o.hvp(x, &yw, p, None, out), &gy, &mut v, t, (10 * dy).clamp(100, 1000))?;
        let mut jv = vec![T::zero(); dx];
        self.o.jvp(x, &yw, &v, None, &mut jv)?;
        axpy(-1.0, &jv, &mut gx);
        Ok((self.stationarity(x, &gx), yw, lower))
    }

    /// [`Ctx::measure`] with the direct solve: Newton with the factored Hessian to
    /// `‖∇ᵧg‖ ≤ 1e-12` relative (or its rounding floor), `v` from the same factor.
    fn measure_direct(&mut self, x: &[T], y: &[T]) -> Result<(f64, Vec<T>, f64)> {
        let mut yw = y.to_vec();
        let (gyg, ch) = direct::newton(self, x, &mut yw, (0.0, 1e-12), &mut || false)?;
        let mut gx = vec![T::zero(); x.len()];
        let mut gy = vec![T::zero(); yw.len()];
        self.o.grad_f(x, &yw, None, &mut gx, &mut gy)?;
        let v = direct::solve(&ch, &gy);
        self.spare = ch.into_storage();
        let mut jv = vec![T::zero(); x.len()];
        self.o.jvp(x, &yw, &v, None, &mut jv)?;
        axpy(-1.0, &jv, &mut gx);
        Ok((self.stationarity(x, &gx), yw, norm(&gyg)))
    }

    /// The stationarity measure of `x` for the hypergradient `g`: `‖g‖`, or with bounds the
    /// norm of the projected gradient `x − clip(x − g)` (zero exactly at a KKT point).
    pub fn stationarity<U: Real>(&self, x: &[T], g: &[U]) -> f64 {
        match &self.opts.bounds {
            None => norm(g),
            Some((lo, hi)) => x
                .iter()
                .zip(g)
                .enumerate()
                .map(|(i, (xi, gi))| {
                    let (xi, gi) = (xi.as_f64(), gi.as_f64());
                    (xi - (xi - gi).clamp(lo[i], hi[i])).powi(2)
                })
                .sum::<f64>()
                .sqrt(),
        }
    }

    /// Called at outer iteration `k` when the method's own criterion holds: whether the
    /// measured `‖∇F(x)‖` ([`Ctx::measure`]) is `≤ tol` too (always true when it cannot be
    /// measured; the result says so). After a failure the next measurement waits
    /// `max(10, k/2)` iterations.
    pub fn certify(&mut self, k: usize, x: &[T], y: &[T]) -> Result<bool> {
        if !self.measurable() {
            return Ok(true);
        }
        if k < self.next_check {
            return Ok(false);
        }
        let (g, _, _) = self.measure(x, y)?;
        if g <= self.opts.tol {
            return Ok(true);
        }
        self.next_check = k + (k / 2).max(10);
        Ok(false)
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

/// After an outer step: non-finite iterates end the run (status 4); then the observer is
/// called (it may stop or abort the run).
pub(super) fn end_of_iteration<T: Real>(
    obs: &mut dyn Observer<T>,
    nit: usize,
    x: &[T],
    y: &[T],
    err: f64,
    lam: f64,
) -> Option<Termination> {
    if !(all_finite(x) && all_finite(y)) {
        return Some(Termination::Numerical(
            "the iterates became non-finite (the steps are too large for this problem): reduce outer_step / inner_step"
                .into(),
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

/// What a method's loop returns: `(x, y, ‖ĝ‖, nit, outer step, λ, termination, lower residual)`.
pub(super) type Run<T> = (Vec<T>, Vec<T>, f64, usize, f64, f64, Termination, f64);

/// The outer step: `opts.outer_step`, or `1/L̂` of the AID hypergradient (lower level solved
/// to 1e-8 relative from the current `y`, `H v = ∇ᵧf` by CG).
pub(super) fn outer_step_aid<T: Real>(c: &mut Ctx<'_, T>, x: &[T], y: &[T]) -> Result<f64> {
    if let Some(b) = c.opts.outer_step {
        return Ok(b);
    }
    if c.opts.maxiter == 0 {
        return Ok(f64::NAN);
    }
    let mut yw = y.to_vec();
    let l = c
        .lipschitz_hg(x, |c, xp| {
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
        })
        .map_err(at_start)?;
    step_from(l)
}

pub(super) fn step_from(l: f64) -> Result<f64> {
    if l > 0.0 && l.is_finite() {
        Ok(1.0 / l)
    } else if l == 0.0 {
        Ok(1.0)
    } else {
        Err(OptError::Numerical(format!(
            "could not estimate the hypergradient's Lipschitz constant at the start point x0, y0 (got {l}); \
             pass options['outer_step'], or start from a smaller x0 / y0"
        )))
    }
}

pub(super) fn decay(k: usize, p: f64) -> f64 {
    if p == 0.0 {
        1.0
    } else {
        1.0 / ((k + 1) as f64).powf(p)
    }
}

/// A breakdown before the first iteration happened at the start point: say so (the input to
/// change is `x0` / `y0`).
pub(super) fn at_start(e: OptError) -> OptError {
    match e {
        OptError::Numerical(m) => OptError::Numerical(format!(
            "{m} (at the start point x0, y0: start from a smaller x0 / y0, or pass the step options)"
        )),
        other => other,
    }
}
