//! The L-BFGS outer loop of the hypergradient methods (`outer="lbfgs"` with `aid`, `itd`,
//! `exact`), and `exact` with gradient steps.
//!
//! ITD's estimate is biased by `(I − αH)^T` (`T` unrolled steps); when that bias stops the line
//! search, `T` doubles (up to 64 times `inner_steps`) and the point is re-evaluated.
//!
//! Each outer point `x` is evaluated by [`Evaluator::at`]: the lower level solved by
//! Newton–CG warm-started at the last accepted `y`, then the method's hypergradient (`aid`:
//! `∇²ᵧᵧg v = ∇ᵧf` by CG warm-started at the last accepted `v`; `exact`: dense LU; `itd`:
//! `inner_steps` unrolled steps from the solved `y` and the adjoint pass), and, when the problem
//! evaluates `f`, the value `F̂ = f(x, y) − vᵀ∇ᵧg(x, y)`: the first-order correction for the
//! lower level's residual (`y* − y ≈ −H⁻¹∇ᵧg`), so that the value's error is quadratic in
//! the residuals.
//!
//! With the direct lower solve ([`super::direct`], `c.direct`), [`Evaluator::at`] factors the
//! dense lower Hessian instead: Newton steps with it, the adjoint `v` from the same factor
//! (exact to rounding), the same `F̂`.
//!
//! Inexactness rule (a "norm condition" on the hypergradient error): at outer iteration `k`
//! the lower level is solved to `‖∇ᵧg‖ ≤ η_k R` (`R` the lower residual at the start point
//! before refinement) and the linear system to `‖Hv − ∇ᵧf‖ ≤ η_k ‖∇ᵧf‖`, with
//! `η_k = η₀ min(1, ‖ĝ_{k−1}‖ / ‖ĝ₀‖)`, `η₀ = 1e-6`, floored at `10 ε_mach` (with bounds, the
//! norms are of the projected gradient `x − clip(x − ĝ)`). For a strongly
//! convex lower level with Lipschitz derivatives the error of `ĝ` is `O(η_k)`, so it shrinks
//! in proportion to the hypergradient itself: the relative error stays bounded, `ĝ` stays a
//! descent direction, and the line search compares values accurate to `O(η_k²)`.
//!
//! Bounds `lo ≤ x ≤ hi` use the two-metric projection scheme (Bertsekas 1982): variables at a
//! bound whose gradient pushes outwards are fixed (the ε-active set, `ε = min(1e-8,
//! ‖x − clip(x − ĝ)‖)`), the L-BFGS two-loop recursion runs on the free ones (pairs restricted
//! to them), and the line search follows the projected arc `clip(x + t d)`. A direction that
//! is not a descent direction on the arc resets the memory (steepest descent).
//!
//! Line search where the problem evaluates `f`, `x` has no bounds and the method is `aid` or
//! `exact`: L-BFGS-B's strong-Wolfe search ([`wolfe`], Moré–Thuente), its first trial on the
//! first iteration the step to `x − ĝ/‖ĝ‖`, falling back to the backtracking below when no
//! trial passes. Otherwise: backtracking from `t = 1` (first iteration: `t = min(1, 1/‖ĝ‖)`) with
//! quadratic interpolation, safeguarded to `[0.1 t, 0.5 t]`; a full step that passes while
//! the slope at its end is still below `0.9` times the initial slope (Wolfe's curvature
//! condition fails: the step is too short) along the first iteration's steepest-descent
//! direction is extended by `t ← 4t` while `F̂` keeps
//! decreasing ([`extrapolate`]). With `f`: Armijo on `F̂`,
//! `F̂(x(t)) ≤ F̂(x) + 1e-4 ĝᵀ(x(t) − x)`, so no accepted step increases `F̂` (beyond its
//! rounding error: when `|ΔF̂|` is below `100 ε_mach |F̂|` the values cannot rank the points
//! and the derivative test below decides). Without `f`: the
//! same test with the decrease estimated by the trapezoid rule on the directional derivatives
//! at both ends, `ΔF ≈ (ĝ(x) + ĝ(x(t)))ᵀ(x(t) − x)/2` (exact on quadratics).

use super::direct::{self, LowerSolve, AUTO_MAX_DY};
use super::hypergrad::exact_solve;
use super::implicit::{itd_hypergrad, run_hgd};
use super::methods::{end_of_iteration, Ctx, Method, Run};
use super::oracle::Phase;
use crate::error::{OptError, Result};
use crate::linalg::{all_finite, axpy, cg, norm};
use crate::real::Real;
use crate::solver::{NoObserver, Observer, Termination};
use std::cell::RefCell;
use std::collections::VecDeque;

mod wolfe;

/// `η₀` of the inexactness rule (module docs).
const ETA0: f64 = 1e-6;
/// Armijo's sufficient-decrease constant.
const C1: f64 = 1e-4;
/// Trial points per line search.
const MAX_TRIALS: usize = 30;
/// Wolfe's curvature constant: a full step whose end slope is below `CURV` times the initial
/// one is extended ([`extrapolate`]).
const CURV: f64 = 0.9;
/// Extrapolation steps (`t ← 4t`) per line search.
const MAX_EXTRAP: usize = 8;

/// One evaluated outer point.
#[derive(Clone)]
struct Point<T> {
    x: Vec<T>,
    y: Vec<T>,
    v: Vec<T>,
    /// The hypergradient estimate.
    g: Vec<f64>,
    /// `F̂` (NaN when the problem has no `f`).
    fval: f64,
    /// `‖∇ᵧg(x, y)‖`.
    res: f64,
}

/// Evaluates outer points for one method (see the module docs).
struct Evaluator<'o, T> {
    method: Method,
    has_f: bool,
    /// `R`: the scale of the lower-level tolerance.
    r_scale: f64,
    /// CG iterations allowed per solve.
    cg_cap: usize,
    floor: f64,
    /// ITD's unrolled steps (doubled when its bias stops the line search).
    itd_steps: usize,
    /// The lower-solve option; with `Auto`, `direct_flops` (the cost of one direct
    /// evaluation, `None` when the problem has no dense Hessian or `d_y` is too large) is
    /// compared with the Hessian–vector products (`hvp_flops` each) an iterative evaluation
    /// spent ([`super::direct`]).
    mode: LowerSolve,
    direct_flops: Option<f64>,
    hvp_flops: f64,
    /// The run's observer: asked between the blocks of a factorisation (Ctrl-C) and at the
    /// end of every outer iteration.
    obs: RefCell<&'o mut dyn Observer<T>>,
}

/// ITD's unrolled steps grow to at most this multiple of `inner_steps`.
const ITD_GROWTH: usize = 64;

impl<T: Real> Evaluator<'_, T> {
    /// Newton–CG on `∇ᵧg(x, ·) = 0` from `y` until `‖∇ᵧg‖ ≤ atol`: CG to a forcing tolerance
    /// `max(min(0.1, √(r/r₀)) r, atol/2)`, the step halved (at most 8 times) until the residual
    /// decreases; when it cannot, accelerated gradient descent ([`Ctx::solve_lower_checked`])
    /// takes over. Returns `∇ᵧg` at the returned `y`.
    fn solve_lower(&self, c: &mut Ctx<'_, T>, x: &[T], y: &mut [T], atol: f64) -> Result<Vec<T>> {
        c.o.enter(Phase::Lower);
        let dy = y.len();
        let mut g = vec![T::zero(); dy];
        c.o.grad_g(x, y, None, None, &mut g)?;
        let mut r = norm(&g);
        let r0 = r;
        let mut p = vec![T::zero(); dy];
        let mut yt = vec![T::zero(); dy];
        let mut gt = vec![T::zero(); dy];
        for _ in 0..50 {
            if r <= atol {
                return Ok(g);
            }
            let forcing = (r / r0.max(f64::MIN_POSITIVE)).sqrt().min(0.1);
            p.iter_mut().for_each(|e| *e = T::zero());
            let o = &mut c.o;
            cg(|u, out| o.hvp(x, y, u, None, out), &g, &mut p, (forcing * r).max(0.5 * atol), self.cg_cap)?;
            let improved = c.damped_lower_step(x, (y, &mut g, &mut r), (&mut yt, &mut gt), |step, y, yt| {
                yt.copy_from_slice(y);
                axpy(-step, &p, yt);
            })?;
            if !improved {
                break;
            }
        }
        if r > atol {
            c.retune(x, y)?;
            // Checked: the retuned step comes from one power-iteration step and may be too long
            // where the curvature has moved to other directions.
            let (ys, gs, _) = c.solve_lower_checked(x, y, atol / r.max(c.r_ref).max(f64::MIN_POSITIVE), 10_000)?;
            y.copy_from_slice(&ys);
            g = gs;
        }
        Ok(g)
    }

    /// The largest lower-level residual at which a trial point's `F̂` and `ĝ` are trusted:
    /// ten times the evaluation's tolerance `η R` (or its rounding floor), or ten times the
    /// `reference` point's own residual.
    fn trusted_residual(&self, eta: f64, reference: f64) -> f64 {
        10.0 * (eta.max(self.floor) * self.r_scale).max(reference)
    }

    /// The point `x` evaluated with tolerance factor `eta`, warm-started from `from`: directly
    /// when the run solves directly (`c.direct`), else iteratively; with `lower_solve="auto"`
    /// an iterative evaluation that cost more than a direct one switches the run to direct.
    fn at(&self, c: &mut Ctx<'_, T>, x: Vec<T>, from: &Point<T>, eta: f64) -> Result<Point<T>> {
        if c.aborted {
            return Err(OptError::Numerical("interrupted".into()));
        }
        if c.direct {
            match self.at_direct(c, &x, from, eta) {
                Ok(p) => return Ok(p),
                // Auto: where the Hessian is not positive definite to working precision, the
                // iterative path decides (CG reports its own breakdown).
                Err(OptError::Numerical(_)) if self.mode == LowerSolve::Auto && !c.aborted => {}
                Err(e) => return Err(e),
            }
        }
        let before = c.o.counts.hvp_yy + c.o.counts.fd_second;
        let p = self.at_iterative(c, x, from, eta)?;
        if let (LowerSolve::Auto, false, Some(df)) = (self.mode, c.direct, self.direct_flops) {
            let spent = (c.o.counts.hvp_yy + c.o.counts.fd_second - before) as f64 * self.hvp_flops;
            if spent > df && self.method != Method::Itd {
                c.direct = true;
            }
        }
        Ok(p)
    }

    /// [`Evaluator::at`] by the direct solve: Newton with the factored lower Hessian to
    /// `‖∇ᵧg‖ ≤ η R` (or its rounding floor), the adjoint from the same factor.
    fn at_direct(&self, c: &mut Ctx<'_, T>, x: &[T], from: &Point<T>, eta: f64) -> Result<Point<T>> {
        let eta = eta.max(self.floor);
        c.o.enter(Phase::Lower);
        let mut y = from.y.clone();
        let (gyg, ch) =
            direct::newton(c, x, &mut y, (eta * self.r_scale, 0.0), &mut || self.obs.borrow_mut().interrupted())?;
        c.o.enter(Phase::Linear);
        let mut gx = vec![T::zero(); x.len()];
        let mut gy = vec![T::zero(); y.len()];
        c.o.grad_f(x, &y, None, &mut gx, &mut gy)?;
        let v = direct::solve(&ch, &gy);
        c.spare = ch.into_storage();
        let mut jv = vec![T::zero(); x.len()];
        c.o.jvp(x, &y, &v, None, &mut jv)?;
        axpy(-1.0, &jv, &mut gx);
        self.assemble(c, x.to_vec(), y, v, gx, &gyg)
    }

    /// The point's value `F̂ = f − vᵀ∇ᵧg` (module docs) and the assembled [`Point`].
    fn assemble(&self, c: &mut Ctx<'_, T>, x: Vec<T>, y: Vec<T>, v: Vec<T>, g: Vec<T>, gyg: &[T]) -> Result<Point<T>> {
        c.o.enter(Phase::Upper);
        let fval = if self.has_f {
            let corr: f64 = v.iter().zip(gyg).map(|(a, b)| a.as_f64() * b.as_f64()).sum();
            c.o.value_f(&x, &y)? - corr
        } else {
            f64::NAN
        };
        let res = norm(gyg);
        Ok(Point { x, y, v, g: g.iter().map(|e| e.as_f64()).collect(), fval, res })
    }

    /// [`Evaluator::at`] by Newton–CG and CG (module docs).
    fn at_iterative(&self, c: &mut Ctx<'_, T>, x: Vec<T>, from: &Point<T>, eta: f64) -> Result<Point<T>> {
        let eta = eta.max(self.floor);
        let (dx, dy) = (x.len(), from.y.len());
        let mut y = from.y.clone();
        let mut v = from.v.clone();
        let gyg = self.solve_lower(c, &x, &mut y, eta * self.r_scale)?;
        c.o.enter(Phase::Linear);
        let mut gx = vec![T::zero(); dx];
        let mut gy = vec![T::zero(); dy];
        let g: Vec<T> = match self.method {
            Method::Itd => {
                let alpha = c.retune(&x, &y)?;
                let mut yi = y.clone();
                let (g, _) = itd_hypergrad(c, &x, &mut yi, alpha, self.itd_steps)?;
                v.iter_mut().for_each(|e| *e = T::zero());
                g
            }
            _ => {
                c.o.grad_f(&x, &y, None, &mut gx, &mut gy)?;
                if self.method == Method::Exact {
                    v = exact_solve(&mut c.o, &x, &y, &gy)?;
                } else {
                    let tol = eta * norm(&gy);
                    let o = &mut c.o;
                    let info = cg(|u, out| o.hvp(&x, &y, u, None, out), &gy, &mut v, tol, self.cg_cap)?;
                    if info.breakdown && !all_finite(&v) {
                        return Err(OptError::Numerical(
                            "CG broke down: the lower-level Hessian is not positive definite".into(),
                        ));
                    }
                }
                let mut jv = vec![T::zero(); dx];
                c.o.jvp(&x, &y, &v, None, &mut jv)?;
                axpy(-1.0, &jv, &mut gx);
                gx
            }
        };
        self.assemble(c, x, y, v, g, &gyg)
    }
}

/// L-BFGS pairs `(s, y)` and the two-loop recursion on a subset of coordinates.
struct Memory {
    m: usize,
    pairs: VecDeque<(Vec<f64>, Vec<f64>)>,
}

fn dot_on(a: &[f64], b: &[f64], free: &[bool]) -> f64 {
    a.iter().zip(b).zip(free).filter(|(_, &f)| f).map(|((u, v), _)| u * v).sum()
}

impl Memory {
    fn push(&mut self, s: Vec<f64>, y: Vec<f64>) {
        let sy: f64 = s.iter().zip(&y).map(|(a, b)| a * b).sum();
        let yy: f64 = y.iter().map(|a| a * a).sum();
        // Curvature condition: pairs with sᵀy ≤ ε‖y‖² (non-convex regions, noise) are skipped.
        if sy > 1e-10 * yy && sy.is_finite() && self.m > 0 {
            if self.pairs.len() == self.m {
                self.pairs.pop_front();
            }
            self.pairs.push_back((s, y));
        }
    }

    /// `−H g` on the free coordinates (zero on the others); `None` without usable pairs.
    fn direction(&self, g: &[f64], free: &[bool]) -> Option<Vec<f64>> {
        let mut q: Vec<f64> = g.iter().zip(free).map(|(&v, &f)| if f { v } else { 0.0 }).collect();
        let mut alphas = Vec::with_capacity(self.pairs.len());
        let mut gamma = None;
        for (s, y) in self.pairs.iter().rev() {
            let sy = dot_on(s, y, free);
            if sy <= 1e-10 * dot_on(y, y, free) || sy <= 0.0 {
                alphas.push(None);
                continue;
            }
            if gamma.is_none() {
                gamma = Some(sy / dot_on(y, y, free));
            }
            let a = dot_on(s, &q, free) / sy;
            q.iter_mut().zip(y).zip(free).filter(|(_, &f)| f).for_each(|((qi, yi), _)| *qi -= a * yi);
            alphas.push(Some((a, sy)));
        }
        let gamma = gamma?;
        q.iter_mut().for_each(|e| *e *= gamma);
        for ((s, y), a) in self.pairs.iter().zip(alphas.iter().rev()) {
            if let Some((a, sy)) = a {
                let b = dot_on(y, &q, free) / sy;
                q.iter_mut().zip(s).zip(free).filter(|(_, &f)| f).for_each(|((qi, si), _)| *qi += (a - b) * si);
            }
        }
        Some(q.iter().map(|e| -e).collect())
    }
}

/// `clip(v)` into the bounds (no-op without bounds).
fn clip<T: Real>(b: &Option<(Vec<f64>, Vec<f64>)>, v: &mut [T]) {
    if let Some((lo, hi)) = b {
        for (i, e) in v.iter_mut().enumerate() {
            *e = T::from_f64(e.as_f64().clamp(lo[i], hi[i]));
        }
    }
}

/// The free variables: not at a bound (within `eps`) with the gradient pushing outwards.
fn free_set<T: Real>(b: &Option<(Vec<f64>, Vec<f64>)>, x: &[T], g: &[f64], eps: f64) -> Vec<bool> {
    match b {
        None => vec![true; x.len()],
        Some((lo, hi)) => x
            .iter()
            .zip(g)
            .enumerate()
            .map(|(i, (xi, &gi))| {
                let xi = xi.as_f64();
                !((xi <= lo[i] + eps && gi > 0.0) || (xi >= hi[i] - eps && gi < 0.0))
            })
            .collect(),
    }
}

/// Ends the run with status 4 (keeping the last accepted point) when `$e` is a numerical
/// breakdown (e.g. the oracle overflowing while a solve at an accepted point re-runs);
/// other errors propagate.
macro_rules! or_breakdown {
    ($e:expr, $term:ident) => {
        match $e {
            Ok(v) => v,
            Err(OptError::Numerical(m)) => {
                $term = Termination::Numerical(m);
                break;
            }
            Err(e) => return Err(e),
        }
    };
}

/// The L-BFGS outer loop (module docs). A Ctrl-C inside a factorisation ends the run as
/// aborted (nothing is returned: the binding re-raises the interrupt).
pub(super) fn run_lbfgs<T: Real>(
    c: &mut Ctx<'_, T>,
    x: Vec<T>,
    y: Vec<T>,
    obs: &mut dyn Observer<T>,
) -> Result<Run<T>> {
    let (x0, y0) = (x.clone(), y.clone());
    let run = lbfgs_loop(c, x, y, obs);
    if c.aborted {
        return Ok((x0, y0, f64::NAN, 0, f64::NAN, f64::NAN, Termination::Aborted, f64::NAN));
    }
    run
}

fn lbfgs_loop<T: Real>(c: &mut Ctx<'_, T>, mut x: Vec<T>, y: Vec<T>, obs: &mut dyn Observer<T>) -> Result<Run<T>> {
    let opts = c.opts;
    let bounds = opts.bounds.clone();
    clip(&bounds, &mut x);
    let dy = y.len();
    let has_f = c.o.oracle.value_f(&x, &y).is_some();
    let floor = 10.0 * T::epsilon().as_f64();
    let direct_flops = if dy <= AUTO_MAX_DY { direct::direct_flops(c, dy) } else { None };
    let mut ev = Evaluator {
        method: opts.method,
        has_f,
        r_scale: 1.0,
        cg_cap: opts.cg_maxiter.max((2 * dy).min(2000)),
        floor,
        itd_steps: opts.inner_steps.max(1),
        mode: opts.lower_solve,
        direct_flops,
        hvp_flops: c.o.oracle.hessian_costs().map_or(f64::NAN, |(_, h)| h),
        obs: RefCell::new(obs),
    };
    c.direct = opts.method != Method::Itd
        && match opts.lower_solve {
            LowerSolve::Direct => true,
            LowerSolve::Iterative => false,
            LowerSolve::Auto => opts.method == Method::Exact && direct_flops.is_some(),
        };
    // The lower-level scale R: the residual at the start point before refinement, or now.
    let mut gy0 = vec![T::zero(); dy];
    c.o.grad_g(&x, &y, None, None, &mut gy0)?;
    ev.r_scale = c.r_ref.max(norm(&gy0)).max(f64::MIN_POSITIVE);
    let start = Point { x: x.clone(), y, v: vec![T::zero(); dy], g: Vec::new(), fval: f64::NAN, res: f64::NAN };
    let mut cur = ev.at(c, x, &start, ETA0)?;
    if has_f && !cur.fval.is_finite() {
        // Trial points where `f` overflows are failed trials (line search); at the start
        // point there is nothing to backtrack to.
        return Err(OptError::Numerical(format!(
            "the oracle `f` returned a non-finite value ({}) at the start point x0",
            cur.fval
        )));
    }
    let g0 = c.stationarity(&cur.x, &cur.g).max(f64::MIN_POSITIVE);
    let mut mem = Memory { m: opts.memory, pairs: VecDeque::new() };
    let mut term = Termination::MaxIter;
    let mut nit = 0;
    let mut last_t = f64::NAN;
    let mut k = 0;
    // Tightenings left: when the estimate meets `tol` but the measurement does not, ITD
    // unrolls further and the others solve more accurately (`boost`), then re-evaluate.
    let mut retries = 8;
    let mut boost = 1.0;
    loop {
        let pg = c.stationarity(&cur.x, &cur.g);
        if pg <= opts.tol && cur.res <= opts.tol && (retries > 0 || or_breakdown!(c.certify(k, &cur.x, &cur.y), term)) {
            if retries > 0 {
                let (g, _, _) = or_breakdown!(c.measure(&cur.x, &cur.y), term);
                if g <= opts.tol {
                    term = Termination::Converged;
                    break;
                }
                retries -= 1;
                if ev.method == Method::Itd && ev.itd_steps < ITD_GROWTH * opts.inner_steps.max(1) {
                    ev.itd_steps *= 2;
                } else {
                    boost *= 1e-2;
                }
                let from = cur.clone();
                cur = or_breakdown!(ev.at(c, from.x.clone(), &from, ETA0 * boost * (pg / g0).min(1.0)), term);
                mem.pairs.clear();
                continue;
            }
            term = Termination::Converged;
            break;
        }
        if k >= opts.maxiter {
            break;
        }
        let eta = ETA0 * boost * (pg / g0).min(1.0);
        let free = free_set(&bounds, &cur.x, &cur.g, pg.min(1e-8));
        let mut d = mem.direction(&cur.g, &free);
        let mut accepted = None;
        for attempt in 0..2 {
            let steepest = d.is_none();
            let dir = d.take().unwrap_or_else(|| {
                let gn = norm(&cur.g).max(f64::MIN_POSITIVE);
                let sc = if mem.pairs.is_empty() { (1.0 / gn).min(1.0) } else { 1.0 };
                cur.g.iter().zip(&free).map(|(&v, &f)| if f { -sc * v } else { 0.0 }).collect()
            });
            // Strong Wolfe where `F̂` is available, `ĝ` is its gradient (not ITD's: the
            // unrolled estimate's bias makes the slopes disagree with the values, and the
            // interpolations of the search collapse to ever shorter steps) and `x` unbounded;
            // backtracking otherwise, and where the Wolfe search finds no acceptable trial.
            // The first trial step: 1, or on the first iteration's steepest-descent direction
            // (scaled by `min(1, 1/‖ĝ‖)` above) the step to `x − ĝ/‖ĝ‖` (L-BFGS-B's).
            let t0 = if steepest && k == 0 { (1.0 / norm(&cur.g)).max(1.0) } else { 1.0 };
            let wolfe = if ev.has_f && bounds.is_none() && ev.method != Method::Itd {
                wolfe::wolfe_search(c, &ev, &cur, &dir, eta, t0)?
            } else {
                None
            };
            let found = match wolfe {
                Some(w) => Some(w),
                None => line_search(c, &ev, &cur, &dir, eta, &bounds, steepest && k == 0)?,
            };
            match found {
                Some(found) => {
                    accepted = Some(found);
                    break;
                }
                None if !steepest && attempt == 0 => mem.pairs.clear(),
                None => break,
            }
        }
        if accepted.is_none() && retries > 0 {
            // No decrease even along steepest descent: the estimate is not accurate enough
            // here. ITD unrolls twice as far (its bias is `(I − αH)^T`), the others solve
            // 100 times more accurately; then the point is re-evaluated.
            retries -= 1;
            if ev.method == Method::Itd && ev.itd_steps < ITD_GROWTH * opts.inner_steps.max(1) {
                ev.itd_steps *= 2;
            } else {
                boost *= 1e-2;
            }
            let from = cur.clone();
            cur = or_breakdown!(ev.at(c, from.x.clone(), &from, ETA0 * boost * (pg / g0).min(1.0)), term);
            mem.pairs.clear();
            continue;
        }
        let Some((next, t)) = accepted else {
            // No decrease along steepest descent either: the hypergradient's accuracy limit.
            let converged = c.stationarity(&cur.x, &cur.g) <= opts.tol && {
                let (g, _, _) = or_breakdown!(c.measure(&cur.x, &cur.y), term);
                g <= opts.tol
            };
            if converged {
                term = Termination::Converged;
            } else {
                term = Termination::Numerical(
                    "the L-BFGS line search found no decrease along the steepest-descent direction: \
                     the hypergradient is not accurate enough at this tol (loosen tol, or use float64)"
                        .into(),
                );
            }
            break;
        };
        last_t = t;
        let itd_stalls = ev.method == Method::Itd && t < 1e-3;
        let s: Vec<f64> = next.x.iter().zip(&cur.x).map(|(a, b)| a.as_f64() - b.as_f64()).collect();
        let yv: Vec<f64> = next.g.iter().zip(&cur.g).map(|(a, b)| a - b).collect();
        mem.push(s, yv);
        cur = next;
        if itd_stalls && ev.itd_steps < ITD_GROWTH * opts.inner_steps.max(1) {
            // Short steps along ITD's direction: its bias dominates; unroll further.
            ev.itd_steps *= 2;
            let from = cur.clone();
            cur = or_breakdown!(ev.at(c, from.x.clone(), &from, eta), term);
            mem.pairs.clear();
        }
        k += 1;
        nit = k;
        let hg = c.stationarity(&cur.x, &cur.g);
        if let Some(t) = end_of_iteration(&mut **ev.obs.borrow_mut(), nit, &cur.x, &cur.y, hg, f64::NAN) {
            term = t;
            break;
        }
    }
    let hg = c.stationarity(&cur.x, &cur.g);
    Ok((cur.x, cur.y, hg, nit, last_t, f64::NAN, term, cur.res))
}

/// Extrapolation along the first iteration's steepest-descent direction (where the step's
/// scale `1/‖ĝ‖` is a guess; later steps take L-BFGS's `sᵀy/yᵀy` scaling, and after a memory
/// reset far steps along the gradient have led into regions where the lower level cannot be
/// solved accurately and `F̂` ranks points wrongly): a full step `t = 1` that
/// passed the test with the slope along the arc still below `CURV` times the initial one (the
/// curvature condition of Wolfe's test fails: the step is short) is followed by `t ← 4t` while the new point passes the sufficient-decrease test from `x`
/// and decreases `F̂` below the last accepted trial (without `f`: the trapezoid estimate
/// between the two is negative), at most `MAX_EXTRAP` times; the last accepted trial is
/// returned.
fn extrapolate<T: Real>(
    c: &mut Ctx<'_, T>,
    ev: &Evaluator<'_, T>,
    cur: &Point<T>,
    d: &[f64],
    eta: f64,
    bounds: &Option<(Vec<f64>, Vec<f64>)>,
    first: Point<T>,
) -> Result<Option<(Point<T>, f64)>> {
    let mut best = (first, 1.0f64);
    for _ in 0..MAX_EXTRAP {
        let t = 4.0 * best.1;
        let (xt, p, d0) = arc_point(cur, d, t, bounds);
        let q: Vec<f64> = xt.iter().zip(&best.0.x).map(|(a, b)| a.as_f64() - b.as_f64()).collect();
        if q.iter().all(|&e| e == 0.0) {
            break; // the projected arc has stopped moving
        }
        let kept = (c.alpha, c.track.clone());
        let next = match ev.at(c, xt, &best.0, eta) {
            Ok(n) if n.g.iter().all(|e| e.is_finite()) && (n.fval.is_finite() || !ev.has_f) => n,
            Ok(_) | Err(OptError::Numerical(_)) => {
                (c.alpha, c.track) = kept;
                break;
            }
            Err(e) => return Err(e),
        };
        let dt: f64 = next.g.iter().zip(&p).map(|(a, b)| a * b).sum();
        let between: f64 = next.g.iter().zip(&best.0.g).zip(&q).map(|((a, b), s)| 0.5 * (a + b) * s).sum();
        // A trial whose lower solve missed its tolerance (its `F̂` and `ĝ` are unreliable)
        // ends the extrapolation.
        let solved = next.res <= ev.trusted_residual(eta, best.0.res);
        let ok = solved
            && if ev.has_f {
                next.fval - cur.fval <= C1 * d0 && next.fval < best.0.fval
            } else {
                between < 0.0 && 0.5 * (d0 + dt) <= C1 * d0
            };
        if !ok {
            (c.alpha, c.track) = kept;
            break;
        }
        best = (next, t);
        if dt >= CURV * d0 {
            break;
        }
    }
    Ok(Some(best))
}

/// The point `clip(x + t d)` of the projected arc from `cur`, its displacement `p` from `cur.x`
/// and the slope `ĝᵀp` there.
fn arc_point<T: Real>(
    cur: &Point<T>,
    d: &[f64],
    t: f64,
    bounds: &Option<(Vec<f64>, Vec<f64>)>,
) -> (Vec<T>, Vec<f64>, f64) {
    let mut xt: Vec<T> = cur.x.iter().zip(d).map(|(xi, di)| T::from_f64(xi.as_f64() + t * di)).collect();
    clip(bounds, &mut xt);
    let p: Vec<f64> = xt.iter().zip(&cur.x).map(|(a, b)| a.as_f64() - b.as_f64()).collect();
    let d0: f64 = cur.g.iter().zip(&p).map(|(a, b)| a * b).sum();
    (xt, p, d0)
}

/// Backtracking along the projected arc `clip(x + t d)` (module docs); `None` when no trial
/// point satisfies the test (or `d` is not a descent direction on the arc).
fn line_search<T: Real>(
    c: &mut Ctx<'_, T>,
    ev: &Evaluator<'_, T>,
    cur: &Point<T>,
    d: &[f64],
    eta: f64,
    bounds: &Option<(Vec<f64>, Vec<f64>)>,
    extend: bool,
) -> Result<Option<(Point<T>, f64)>> {
    let mut t = 1.0f64;
    for _ in 0..MAX_TRIALS {
        let (xt, p, d0) = arc_point(cur, d, t, bounds);
        if d0 >= 0.0 || d0.is_nan() {
            return Ok(None);
        }
        // The lower-level step as retuned at the current point: a rejected trial point (where
        // the evaluator's fallback may have retuned it to that point's curvature, e.g. ridge's
        // `exp(λ)` at a far trial λ) leaves it as it was.
        let kept = (c.alpha, c.track.clone());
        // Failed trials (a shorter step; the last accepted point stays the run's point): a
        // point where the problem overflows (e.g. ridge's `exp(λ)`); finite oracle outputs that
        // combine to a non-finite estimate; a lower solve that missed its tolerance, whose `F̂`
        // and `ĝ` are unreliable (accepting those let runs wander where the lower level cannot
        // be solved: at ridge's λ → +∞ `F̂` ranked a point with F = 22 below x0's 11.7, and the
        // run ended there with status 4; the rule is `extrapolate`'s).
        let next = match ev.at(c, xt, cur, eta) {
            Ok(n)
                if n.g.iter().all(|e| e.is_finite())
                    && (n.fval.is_finite() || !ev.has_f)
                    && (n.res <= ev.trusted_residual(eta, cur.res) || n.res.is_nan()) =>
            {
                n
            }
            Ok(_) | Err(OptError::Numerical(_)) => {
                (c.alpha, c.track) = kept;
                t *= 0.1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let dt: f64 = next.g.iter().zip(&p).map(|(a, b)| a * b).sum();
        // The decrease estimated from the directional derivatives (trapezoid rule).
        let trapezoid = 0.5 * (d0 + dt) <= C1 * d0;
        let (ok, t_new) = if ev.has_f {
            let df = next.fval - cur.fval;
            let curv = df - d0;
            // Below F's rounding error the values cannot rank the points: the derivatives decide.
            let rounding = 100.0 * f64::EPSILON * (cur.fval.abs() + next.fval.abs());
            let ok = df <= C1 * d0 || (df.abs() <= rounding && trapezoid);
            (ok, if curv > 0.0 { -d0 * t / (2.0 * curv) } else { 0.5 * t })
        } else {
            (trapezoid, if dt > d0 { t * d0 / (d0 - dt) } else { 0.5 * t })
        };
        if ok {
            if extend && t == 1.0 && dt < CURV * d0 {
                return extrapolate(c, ev, cur, d, eta, bounds, next);
            }
            return Ok(Some((next, t)));
        }
        (c.alpha, c.track) = kept;
        let t_new = if t_new.is_finite() { t_new.clamp(0.1 * t, 0.5 * t) } else { 0.5 * t };
        t = t_new;
        if t < 1e-20 {
            break;
        }
    }
    Ok(None)
}

/// `exact` with gradient steps: the lower level solved as by L-BFGS's evaluator, the exact
/// hypergradient, `x ← P(x − β ĝ)`.
pub(super) fn run_exact_gd<T: Real>(
    c: &mut Ctx<'_, T>,
    x: Vec<T>,
    y: Vec<T>,
    obs: &mut dyn Observer<T>,
) -> Result<Run<T>> {
    let dy = y.len();
    let mut silent = NoObserver;
    let ev = Evaluator {
        method: Method::Exact,
        has_f: false,
        r_scale: c.r_ref.max(f64::MIN_POSITIVE),
        cg_cap: c.opts.cg_maxiter.max((2 * dy).min(2000)),
        floor: 10.0 * T::epsilon().as_f64(),
        itd_steps: c.opts.inner_steps.max(1),
        mode: LowerSolve::Iterative,
        direct_flops: None,
        hvp_flops: f64::NAN,
        obs: RefCell::new(&mut silent),
    };
    run_hgd(c, x, y, obs, |c, x, y, _alpha, _s| {
        let from =
            Point { x: Vec::new(), y: y.clone(), v: vec![T::zero(); y.len()], g: Vec::new(), fval: 0.0, res: 0.0 };
        let p = ev.at(c, x.to_vec(), &from, 1e-12)?;
        y.copy_from_slice(&p.y);
        Ok((p.g.iter().map(|&e| T::from_f64(e)).collect(), p.res))
    })
}
