//! LV-HBA (Yao, Yu, Zeng, Zhang, ICLR 2024): bilevel problems whose lower level has
//! constraints that couple `x` and `y`,
//!
//! `min_{x ∈ X, y ∈ Y} f(x, y)` s.t. `y ∈ argmin_{θ ∈ Y} {g(x, θ) : h(x, θ) ≤ 0}`,
//!
//! by the proximal Lagrangian value function
//! `v_γ(x, y, z) = min_θ max_λ g(x, θ) + λᵀh(x, θ) + ‖θ − y‖²/(2γ₁) − ‖λ − z‖²/(2γ₂)`:
//! the bilevel problem is `min f` s.t. `g(x, y) − v_γ(x, y, z) ≤ 0`, `h(x, y) ≤ 0`, and the
//! method is a single loop of first-order steps (no Hessians), iteration `k`:
//!
//! 1. one projected gradient descent–ascent step on the saddle problem that defines `v_γ`:
//!    `θ ← P_Y(θ − η(∇ᵧg(x, θ) + J_yh(x, θ)ᵀλ + (θ − y)/γ₁))`,
//!    `λ ← Π(λ + η(h(x, θ) − (λ − z)/γ₂))`;
//! 2. one projected gradient step on the penalised reformulation
//!    `f/c_k + g − v_γ` in `(x, y)`, with `c_k = c₀(k+1)^p` and
//!    `∇ₓv_γ = ∇ₓg(x, θ) + J_xh(x, θ)ᵀλ`, `∇ᵧv_γ = (y − θ)/γ₁`;
//! 3. `z ← Π(z + β(λ − z)/γ₂)` (ascent of `v_γ` in `z`).
//!
//! `Π` clips inequality multipliers to `[0, U]` and equality multipliers (the last `m_eq`
//! entries of `h`, constraints `h_i = 0`) to `[−U, U]`. The paper keeps `(x, y)` in
//! `{h(x, y) ≤ 0}` by a projection; a general coupled constraint has none, so step 2 adds the
//! linearised augmented-Lagrangian term `J h(x, y)ᵀ[μ + ρ h(x, y)]₊` and takes the dual step
//! `μ ← [μ + τ h(x, y)]₊` (for the problems the paper projects, this reaches the same points).
//!
//! The steps are per block ([`steps`]): `α` for the upper copy (the smaller of its blocks'
//! bounds, or for `x` its own when the constraints do not involve `x`, re-estimated every
//! [`steps::REFRESH`] iterations), `η_θ`, `η_λ` for the lower copy and its multipliers, `ρ` and `τ` for the
//! augmented-Lagrangian term, each from the curvature of its own block, so that one badly
//! scaled block (a coupled constraint summing hundreds of entries) does not set the step of
//! the others.
//!
//! What a run reports is measured on the returned point ([`measure`]).

use super::methods::project;
use crate::alloc::try_zeroed;
use crate::error::{OptError, Result};
use crate::linalg::all_finite;
use crate::operators::SharedOp;
use crate::real::Real;
use crate::solver::{Control, Observer, Report, Termination};

/// Oracles of a bilevel problem with a constrained lower level.
pub trait Constrained<T: Real>: Send + Sync {
    /// `(d_x, d_y, m, m_eq)`: `h` has `m` entries, the last `m_eq` of them equalities.
    fn dims(&self) -> (usize, usize, usize, usize);
    /// `∇ₓf(x, y)` into `gx`, `∇ᵧf(x, y)` into `gy`.
    fn grad_f(&self, x: &[T], y: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()>;
    /// `∇ₓg(x, y)` into `gx`, `∇ᵧg(x, y)` into `gy`.
    fn grad_g(&self, x: &[T], y: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()>;
    /// `h(x, y)` into `out` (length `m`).
    fn h(&self, x: &[T], y: &[T], out: &mut [T]) -> Result<()>;
    /// `J_xh(x, y)ᵀw` into `gx` and `J_yh(x, y)ᵀw` into `gy`.
    fn jac_t(&self, x: &[T], y: &[T], w: &[T], gx: &mut [T], gy: &mut [T]) -> Result<()>;
    /// `f(x, y)`, when the problem can evaluate it.
    fn value_f(&self, _x: &[T], _y: &[T]) -> Option<Result<f64>> {
        None
    }
}

/// The constants of a run (see `optcore.bilevel.minimize(method="lvhba")`).
#[derive(Clone)]
pub struct LvOptions<T: Real> {
    pub maxiter: usize,
    pub tol: f64,
    /// Every how many iterations the convergence criterion is measured.
    pub check_every: usize,
    /// Penalty schedule `c_k = c0 (k+1)^power`.
    pub c0: f64,
    pub power: f64,
    /// Step of `(x, y)`, both blocks (None: per block, [`steps::default_steps`]).
    pub alpha: Option<f64>,
    /// Step of `z`.
    pub beta: f64,
    /// Step of `(θ, λ)`, both blocks (None: per block, [`steps::default_steps`]).
    pub eta: Option<f64>,
    /// Seeds the power iterations of [`steps::default_steps`].
    pub seed: u64,
    pub gamma1: f64,
    pub gamma2: f64,
    /// Multipliers and `z` stay in `[0, U]` (equalities: `[−U, U]`).
    pub z_max: f64,
    /// Augmented-Lagrangian parameter of the upper copy's constraint `h(x, y) ≤ 0` (None:
    /// [`steps::default_steps`]).
    pub rho: Option<f64>,
    pub proj_x: Option<SharedOp<T>>,
    pub proj_y: Option<SharedOp<T>>,
}

impl<T: Real> Default for LvOptions<T> {
    fn default() -> Self {
        LvOptions {
            maxiter: 10_000,
            tol: 1e-6,
            check_every: 10,
            c0: 1.0,
            power: 0.3,
            alpha: None,
            beta: 0.1,
            eta: None,
            seed: 0,
            gamma1: 1.0,
            gamma2: 1.0,
            z_max: 1e4,
            rho: None,
            proj_x: None,
            proj_y: None,
        }
    }
}

/// Oracle call counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct LvCounts {
    pub grad_f: usize,
    pub grad_g: usize,
    pub h: usize,
    pub jac: usize,
    pub values: usize,
}

/// The measured state of a point: what `success` is decided on.
#[derive(Debug, Clone, Copy)]
pub struct Measures {
    /// `max(max_ineq h_i(x, y)⁺, max_eq |h_i(x, y)|)`.
    pub violation: f64,
    /// The lower level's KKT residual at `(x, y)` with the returned multipliers:
    /// `max(‖y − P_Y(y − ∇ᵧg − J_yhᵀλ)‖∞, max_ineq |λ_i h_i(x, y)|)`.
    pub lower: f64,
    /// The projected gradient (∞-norm) of the reformulation's penalised Lagrangian in `f`'s
    /// units, `c_k max_b ‖b − P(b − α_b d_b)‖∞ / α_b` over the blocks `b ∈ {x, y}`.
    pub stationarity: f64,
}

impl Measures {
    fn converged(&self, tol: f64) -> bool {
        self.violation <= tol && self.lower <= tol && self.stationarity <= tol
    }
}

/// What a run returns.
pub struct LvOutput<T> {
    pub x: Vec<T>,
    pub y: Vec<T>,
    pub theta: Vec<T>,
    pub multipliers: Vec<T>,
    pub z: Vec<T>,
    pub fun: f64,
    pub measures: Measures,
    pub nit: usize,
    pub penalty: f64,
    /// The steps used.
    pub steps: Steps,
    pub counts: LvCounts,
    pub termination: Termination,
}

/// The steps of a run, one per block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steps {
    /// `α_x`, `α_y`: the upper copy's blocks `x` and `y`.
    pub x: f64,
    pub y: f64,
    /// `η_θ`, `η_λ`: the lower copy `θ` and its multipliers `λ`.
    pub theta: f64,
    pub lam: f64,
    /// `ρ`, the augmented-Lagrangian parameter of `h(x, y) ≤ 0`, and `τ`, the step of its
    /// multipliers `μ`.
    pub rho: f64,
    pub dual: f64,
}

/// The iterate: upper copy `(x, y)`, lower copy `θ`, multipliers `λ`, their anchor `z`, and
/// the augmented-Lagrangian multipliers `μ` of `h(x, y) ≤ 0`.
struct State<T> {
    x: Vec<T>,
    y: Vec<T>,
    theta: Vec<T>,
    lam: Vec<T>,
    z: Vec<T>,
    mu: Vec<T>,
}

/// The run's work buffers and the counted oracle.
struct Run<'a, T: Real> {
    p: &'a dyn Constrained<T>,
    o: &'a LvOptions<T>,
    st: Steps,
    /// `x` has a step of its own (the constraints do not involve `x`), re-estimated along the
    /// run ([`steps::refresh_x_step`]).
    x_own: bool,
    m_ineq: usize,
    counts: LvCounts,
    gx: Vec<T>,
    gy: Vec<T>,
    jx: Vec<T>,
    jy: Vec<T>,
    hv: Vec<T>,
}

fn finite<T: Real>(what: &str, v: &[T]) -> Result<()> {
    if all_finite(v) {
        Ok(())
    } else {
        Err(OptError::Numerical(format!(
            "the oracle `{what}` returned non-finite values (NaN or inf); the iterates may have diverged: \
             reduce options['step'] / options['lower_step']"
        )))
    }
}

/// `a += s b`, accumulated in f64.
fn add_into<T: Real>(a: &mut [T], b: &[T], s: f64) {
    for (e, v) in a.iter_mut().zip(b) {
        *e = T::from_f64(e.as_f64() + s * v.as_f64());
    }
}

fn clip(v: f64, lo: f64, hi: f64) -> f64 {
    v.max(lo).min(hi)
}

impl<'a, T: Real> Run<'a, T> {
    fn grad_g(&mut self, x: &[T], y: &[T]) -> Result<()> {
        self.counts.grad_g += 1;
        self.p.grad_g(x, y, &mut self.gx, &mut self.gy)?;
        finite("grad_g", &self.gx)?;
        finite("grad_g", &self.gy)
    }
    fn h(&mut self, x: &[T], y: &[T]) -> Result<()> {
        self.counts.h += 1;
        self.p.h(x, y, &mut self.hv)?;
        finite("h", &self.hv)
    }
    fn jac(&mut self, x: &[T], y: &[T], w: &[T]) -> Result<()> {
        self.counts.jac += 1;
        self.p.jac_t(x, y, w, &mut self.jx, &mut self.jy)?;
        finite("jac_h", &self.jx)?;
        finite("jac_h", &self.jy)
    }
    /// The lower bound of multiplier `i` (inequalities: 0; equalities: −U).
    fn lo(&self, i: usize) -> f64 {
        if i < self.m_ineq {
            0.0
        } else {
            -self.o.z_max
        }
    }

    /// `Π(μ + t h(x, y))` (needs `hv` at `(x, y)`): with `t = ρ` the multipliers of the
    /// augmented-Lagrangian term of the direction, with `t = τ` the dual step of `μ`.
    fn al_mult(&self, mu: &[T], t: f64) -> Vec<T> {
        mu.iter()
            .zip(&self.hv)
            .enumerate()
            .map(|(i, (&m, &h))| {
                let v = m.as_f64() + t * h.as_f64();
                T::from_f64(clip(v, self.lo(i), self.o.z_max))
            })
            .collect()
    }

    /// The direction `d = (d_x, d_y)` of step 2 at `s` with penalty `c` (`s.theta`, `s.lam`
    /// already updated); returns it and the next `μ` (a dual step `τ h(x, y)`).
    fn direction(&mut self, s: &State<T>, c: f64) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
        let (dx, dy) = (s.x.len(), s.y.len());
        let mut d_x = try_zeroed::<T>(dx, "x")?;
        let mut d_y = try_zeroed::<T>(dy, "y")?;
        // ∇f/c.
        self.counts.grad_f += 1;
        self.p.grad_f(&s.x, &s.y, &mut d_x, &mut d_y)?;
        finite("grad_f", &d_x)?;
        finite("grad_f", &d_y)?;
        let ic = 1.0 / c;
        d_x.iter_mut().chain(d_y.iter_mut()).for_each(|e| *e = T::from_f64(e.as_f64() * ic));
        // + ∇g(x, y) − (y − θ)/γ₁.
        self.grad_g(&s.x, &s.y)?;
        let g1 = 1.0 / self.o.gamma1;
        add_into(&mut d_x, &self.gx, 1.0);
        add_into(&mut d_y, &self.gy, 1.0);
        for (d, (y, t)) in d_y.iter_mut().zip(s.y.iter().zip(&s.theta)) {
            *d = T::from_f64(d.as_f64() - g1 * (y.as_f64() - t.as_f64()));
        }
        // + J h(x, y)ᵀ[μ + ρ h(x, y)].
        self.h(&s.x, &s.y)?;
        let m = self.al_mult(&s.mu, self.st.rho);
        let mu = self.al_mult(&s.mu, self.st.dual);
        self.jac(&s.x, &s.y, &m)?;
        add_into(&mut d_x, &self.jx, 1.0);
        add_into(&mut d_y, &self.jy, 1.0);
        // − ∇ₓg(x, θ) − J_xh(x, θ)ᵀλ.
        self.grad_g(&s.x, &s.theta)?;
        let gxt = self.gx.clone();
        self.jac(&s.x, &s.theta, &s.lam)?;
        for i in 0..dx {
            d_x[i] = T::from_f64(d_x[i].as_f64() - gxt[i].as_f64() - self.jx[i].as_f64());
        }
        Ok((d_x, d_y, mu))
    }

    /// Step 1: one projected descent–ascent step on `(θ, λ)`.
    fn lower_step(&mut self, s: &mut State<T>) -> Result<()> {
        let (eta, eta_l) = (self.st.theta, self.st.lam);
        let g1 = 1.0 / self.o.gamma1;
        let g2 = 1.0 / self.o.gamma2;
        self.grad_g(&s.x, &s.theta)?;
        self.h(&s.x, &s.theta)?;
        self.jac(&s.x, &s.theta, &s.lam)?;
        for i in 0..s.theta.len() {
            let d = self.gy[i].as_f64() + self.jy[i].as_f64() + g1 * (s.theta[i].as_f64() - s.y[i].as_f64());
            s.theta[i] = T::from_f64(s.theta[i].as_f64() - eta * d);
        }
        project(&self.o.proj_y, &mut s.theta)?;
        for i in 0..s.lam.len() {
            let l = s.lam[i].as_f64();
            let v = l + eta_l * (self.hv[i].as_f64() - g2 * (l - s.z[i].as_f64()));
            s.lam[i] = T::from_f64(clip(v, self.lo(i), self.o.z_max));
        }
        Ok(())
    }

    /// Projected step `P_{X×Y}((x, y) − (α_x d_x, α_y d_y))` into new vectors.
    fn upper_point(&self, s: &State<T>, d_x: &[T], d_y: &[T]) -> Result<(Vec<T>, Vec<T>)> {
        let (ax, ay) = (self.st.x, self.st.y);
        let mut x: Vec<T> = s.x.iter().zip(d_x).map(|(&v, &d)| T::from_f64(v.as_f64() - ax * d.as_f64())).collect();
        let mut y: Vec<T> = s.y.iter().zip(d_y).map(|(&v, &d)| T::from_f64(v.as_f64() - ay * d.as_f64())).collect();
        project(&self.o.proj_x, &mut x)?;
        project(&self.o.proj_y, &mut y)?;
        Ok((x, y))
    }

    /// The [`Measures`] of `s` with penalty `c` (evaluates the oracles at `s`; changes nothing).
    fn measure(&mut self, s: &State<T>, c: f64) -> Result<Measures> {
        let m_ineq = self.m_ineq;
        self.h(&s.x, &s.y)?;
        let mut violation = 0.0f64;
        let mut comp = 0.0f64;
        for (i, h) in self.hv.iter().enumerate() {
            let h = h.as_f64();
            if i < m_ineq {
                violation = violation.max(h.max(0.0));
                comp = comp.max((s.lam[i].as_f64() * h).abs());
            } else {
                violation = violation.max(h.abs());
            }
        }
        self.grad_g(&s.x, &s.y)?;
        self.jac(&s.x, &s.y, &s.lam)?;
        let mut yl: Vec<T> =
            s.y.iter()
                .zip(self.gy.iter().zip(&self.jy))
                .map(|(&y, (&g, &j))| T::from_f64(y.as_f64() - g.as_f64() - j.as_f64()))
                .collect();
        project(&self.o.proj_y, &mut yl)?;
        let kkt = s.y.iter().zip(&yl).map(|(a, b)| (a.as_f64() - b.as_f64()).abs()).fold(0.0, f64::max);
        let (d_x, d_y, _) = self.direction(s, c)?;
        let (xn, yn) = self.upper_point(s, &d_x, &d_y)?;
        let moved = |a: &[T], b: &[T], step: f64| {
            a.iter().zip(b).map(|(a, b)| (a.as_f64() - b.as_f64()).abs()).fold(0.0, f64::max) / step
        };
        let stationarity = c * moved(&s.x, &xn, self.st.x).max(moved(&s.y, &yn, self.st.y));
        Ok(Measures { violation, lower: kkt.max(comp), stationarity })
    }
}

fn check_options<T: Real>(o: &LvOptions<T>) -> Result<()> {
    for (name, v) in [
        ("c0", o.c0),
        ("step", o.alpha.unwrap_or(1.0)),
        ("z_step", o.beta),
        ("lower_step", o.eta.unwrap_or(1.0)),
        ("gamma1", o.gamma1),
        ("gamma2", o.gamma2),
        ("z_max", o.z_max),
        ("rho", o.rho.unwrap_or(1.0)),
    ] {
        if !(v > 0.0 && v.is_finite()) {
            return Err(OptError::InvalidInput(format!("options[{name:?}] must be positive and finite; got {v}")));
        }
    }
    if !(o.power >= 0.0 && o.power.is_finite()) {
        return Err(OptError::InvalidInput(format!("options['power'] must be >= 0; got {}", o.power)));
    }
    Ok(())
}

/// One iteration (steps 1–3 of the module docs) with penalty `c`.
fn iterate<T: Real>(r: &mut Run<'_, T>, s: &mut State<T>, c: f64, g2: f64) -> Result<()> {
    r.lower_step(s)?;
    let (d_x, d_y, mu) = r.direction(s, c)?;
    let (xn, yn) = r.upper_point(s, &d_x, &d_y)?;
    s.x = xn;
    s.y = yn;
    s.mu = mu;
    for i in 0..s.z.len() {
        let zi = s.z[i].as_f64();
        let v = zi + r.o.beta * g2 * (s.lam[i].as_f64() - zi);
        s.z[i] = T::from_f64(clip(v, r.lo(i), r.o.z_max));
    }
    Ok(())
}

/// A non-finite oracle value after the start ends the run with status 4 (the iterates
/// diverged); other errors propagate.
fn breakdown(e: OptError) -> Result<Termination> {
    match e {
        OptError::Numerical(m) => Ok(Termination::Numerical(m)),
        other => Err(other),
    }
}

/// Runs LV-HBA from `(x0, y0)`: `θ` starts at `y0`, `λ`, `z`, `μ` at 0.
pub fn minimize_lvhba<T: Real>(
    p: &dyn Constrained<T>,
    x0: &[T],
    y0: &[T],
    o: &LvOptions<T>,
    obs: &mut dyn Observer<T>,
) -> Result<LvOutput<T>> {
    let (dx, dy, m, m_eq) = p.dims();
    if x0.len() != dx || y0.len() != dy {
        return Err(OptError::InvalidInput(format!(
            "x0 has {} entries and y0 {}; the problem has d_x = {dx}, d_y = {dy}",
            x0.len(),
            y0.len()
        )));
    }
    if m_eq > m {
        return Err(OptError::InvalidInput(format!("m_eq = {m_eq} exceeds the number of constraints m = {m}")));
    }
    check_options(o)?;
    let mut r = Run {
        p,
        o,
        st: Steps { x: f64::NAN, y: f64::NAN, theta: f64::NAN, lam: f64::NAN, rho: f64::NAN, dual: f64::NAN },
        x_own: false,
        m_ineq: m - m_eq,
        counts: LvCounts::default(),
        gx: try_zeroed(dx, "x")?,
        gy: try_zeroed(dy, "y")?,
        jx: try_zeroed(dx, "x")?,
        jy: try_zeroed(dy, "y")?,
        hv: try_zeroed(m, "h")?,
    };
    let mut s = State {
        x: x0.to_vec(),
        y: y0.to_vec(),
        theta: y0.to_vec(),
        lam: try_zeroed(m, "h")?,
        z: try_zeroed(m, "h")?,
        mu: try_zeroed(m, "h")?,
    };
    project(&o.proj_x, &mut s.x)?;
    project(&o.proj_y, &mut s.y)?;
    project(&o.proj_y, &mut s.theta)?;
    r.st = steps::default_steps(&mut r, &s)?;
    let penalty = |k: usize| o.c0 * ((k + 1) as f64).powf(o.power);
    let g2 = 1.0 / o.gamma2;
    let mut nit = 0;
    let mut last = None;
    let mut term = Termination::MaxIter;
    while nit < o.maxiter {
        let stepped = if r.x_own && nit > 0 && nit % steps::REFRESH == 0 {
            steps::refresh_x_step(&mut r, &s, nit)
        } else {
            Ok(())
        };
        if let Err(e) = stepped.and_then(|_| iterate(&mut r, &mut s, penalty(nit), g2)) {
            term = breakdown(e)?;
            break;
        }
        nit += 1;
        if !(all_finite(&s.x) && all_finite(&s.y) && all_finite(&s.theta) && all_finite(&s.lam)) {
            term = Termination::Numerical(
                "the iterates became non-finite: reduce options['step'] and options['lower_step']".into(),
            );
            break;
        }
        let mut err = f64::NAN;
        if nit % o.check_every.max(1) == 0 || nit == o.maxiter {
            let ms = match r.measure(&s, penalty(nit)) {
                Ok(ms) => ms,
                Err(e) => {
                    term = breakdown(e)?;
                    break;
                }
            };
            err = ms.violation.max(ms.lower).max(ms.stationarity);
            let done = ms.converged(o.tol);
            last = Some((nit, ms));
            if done {
                term = Termination::Converged;
                break;
            }
        }
        let report = || Report {
            nit,
            error: err,
            vectors: vec![("x", s.x.clone()), ("y", s.y.clone())],
            scalars: vec![("kkt", err), ("penalty", penalty(nit))],
        };
        match obs.observe(nit, &report) {
            Control::Continue => {}
            Control::Stop => {
                term = Termination::Stopped;
                break;
            }
            Control::Abort => {
                term = Termination::Aborted;
                break;
            }
        }
    }
    let c = penalty(nit);
    let measures = match (last, &term) {
        (Some((k, ms)), _) if k == nit => ms,
        (_, Termination::Numerical(_)) | (_, Termination::Aborted) => {
            Measures { violation: f64::NAN, lower: f64::NAN, stationarity: f64::NAN }
        }
        _ => r.measure(&s, c)?,
    };
    if matches!(term, Termination::Converged) && !measures.converged(o.tol) {
        term = Termination::MaxIter;
    }
    let fun = if matches!(term, Termination::Aborted | Termination::Numerical(_)) {
        f64::NAN
    } else {
        match p.value_f(&s.x, &s.y) {
            Some(v) => {
                r.counts.values += 1;
                v?
            }
            None => f64::NAN,
        }
    };
    Ok(LvOutput {
        x: s.x,
        y: s.y,
        theta: s.theta,
        multipliers: s.lam,
        z: s.z,
        fun,
        measures,
        nit,
        penalty: c,
        steps: r.st,
        counts: r.counts,
        termination: term,
    })
}

#[path = "lvhba_steps.rs"]
mod steps;
