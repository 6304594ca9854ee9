//! The oracle interface every bilevel method is generic over, the finite-difference
//! second-order fallback, and the counting / timing wrapper the methods call through.
//!
//! Notation: upper level `f(x, y)`, lower level `g(x, y)`, `x ∈ ℝ^{d_x}`, `y ∈ ℝ^{d_y}`.

use crate::error::{OptError, Result};
use crate::linalg::{axpy, norm};
use crate::real::Real;
use std::time::Instant;

/// Indices of the samples of a minibatch (`None`: the full objective).
pub type Batch<'a> = Option<&'a [usize]>;

/// Where a second-order product is taken: at `(x, y)`, along `v` (length `d_y`), on the
/// minibatch `batch`.
#[derive(Clone, Copy)]
pub struct Probe<'a, T> {
    pub x: &'a [T],
    pub y: &'a [T],
    pub v: &'a [T],
    pub batch: Batch<'a>,
}

/// First- and second-order oracles of a bilevel problem.
///
/// `grad_g` is batched: `ys` stacks `B` lower-level points (`B · d_y` values) that share the
/// same `x`, so that one call (one Python call for a user problem) serves several points
/// (F2SA's `y` and `z`, the two points of a central difference).
pub trait Oracle<T: Real>: Send + Sync {
    /// `(d_x, d_y)`.
    fn dims(&self) -> (usize, usize);

    /// Numbers of samples `(n_f, n_g)` that minibatches index into; `(0, 0)` when the
    /// oracles are not finite sums (then minibatch options are refused).
    fn n_samples(&self) -> (usize, usize) {
        (0, 0)
    }

    /// `∇ₓf(x, y)` into `gx` and `∇ᵧf(x, y)` into `gy`.
    fn grad_f(&self, x: &[T], y: &[T], batch: Batch, gx: &mut [T], gy: &mut [T]) -> Result<()>;

    /// `∇ᵧg(x, y_b)` into `gy` (`B · d_y`) and, when asked, `∇ₓg(x, y_b)` into `gx`
    /// (`B · d_x`), for the `B` points stacked in `ys`.
    fn grad_g(&self, x: &[T], ys: &[T], batch: Batch, gx: Option<&mut [T]>, gy: &mut [T]) -> Result<()>;

    /// Which second-order products [`Oracle::products`] computes analytically:
    /// `(∇²ᵧᵧg v, ∇²ₓᵧg v)`. The others come from central differences of `grad_g`
    /// ([`fd_second`]); that policy is [`second_policy`].
    fn analytic(&self) -> (bool, bool) {
        (false, false)
    }

    /// Whether [`Oracle::second`] is fully analytic (otherwise at least one product costs two
    /// gradient evaluations per call).
    fn has_second(&self) -> bool {
        self.analytic() == (true, true)
    }

    /// The analytic products into `hyy` and `hxy`, whichever are asked for; only products that
    /// [`Oracle::analytic`] declares are ever asked for.
    fn products(&self, _at: Probe<'_, T>, _hyy: Option<&mut [T]>, _hxy: Option<&mut [T]>) -> Result<()> {
        Err(OptError::InvalidInput("this oracle has no analytic second-order products".into()))
    }

    /// `∇²ᵧᵧg(x, y) v` into `hyy` and the mixed product `∇²ₓᵧg(x, y) v` (the `x`-gradient of
    /// `⟨∇ᵧg(x, y), v⟩`, length `d_x`) into `hxy`, whichever are asked for: analytic where the
    /// oracle has the product, finite differences for the rest ([`second_policy`]).
    fn second(&self, at: Probe<'_, T>, hyy: Option<&mut [T]>, hxy: Option<&mut [T]>) -> Result<()> {
        second_policy(self, at, hyy, hxy)
    }

    /// `f(x, y)`, when the problem can evaluate it.
    fn value_f(&self, _x: &[T], _y: &[T]) -> Option<Result<f64>> {
        None
    }

    /// `g(x, y)`, when the problem can evaluate it.
    fn value_g(&self, _x: &[T], _y: &[T]) -> Option<Result<f64>> {
        None
    }

    /// The dense lower Hessian `∇²ᵧᵧg(x, y)` (row-major `d_y × d_y`, f64) into `out`, when the
    /// problem builds it more cheaply than from `d_y` products (`None` otherwise): the direct
    /// lower solve of the L-BFGS outer loop factors it.
    fn hessian_yy(&self, _x: &[T], _y: &[T], _out: &mut [f64]) -> Option<Result<()>> {
        None
    }

    /// Flop estimates `(building ∇²ᵧᵧg by [`Oracle::hessian_yy`], one product ∇²ᵧᵧg v)`, for
    /// choosing between the direct and the iterative lower solve; `None` without
    /// [`Oracle::hessian_yy`].
    fn hessian_costs(&self) -> Option<(f64, f64)> {
        None
    }

    /// Whether `g` is quadratic in `y` (`∇²ᵧᵧg` does not depend on `y`): one Newton step
    /// solves the lower level exactly.
    fn quadratic_in_y(&self) -> bool {
        false
    }
}

/// The second-order policy: the products the oracle declares [`Oracle::analytic`] come from
/// one call of [`Oracle::products`], the others from one call of [`fd_second`].
pub fn second_policy<T: Real, O: Oracle<T> + ?Sized>(
    o: &O,
    at: Probe<'_, T>,
    hyy: Option<&mut [T]>,
    hxy: Option<&mut [T]>,
) -> Result<()> {
    let (has_h, has_j) = o.analytic();
    let (ah, aj) = (hyy.is_some() && has_h, hxy.is_some() && has_j);
    let (mut hyy, mut hxy) = (hyy, hxy);
    if ah || aj {
        let h = if ah { hyy.as_deref_mut() } else { None };
        let j = if aj { hxy.as_deref_mut() } else { None };
        o.products(at, h, j)?;
    }
    let fh = if ah { None } else { hyy };
    let fj = if aj { None } else { hxy };
    if fh.is_some() || fj.is_some() {
        fd_second(o, at, fh, fj)?;
    }
    Ok(())
}

/// Central differences of `∇g` along `v`: `[∇g(x, y + εv) − ∇g(x, y − εv)] / (2ε)` gives
/// both second-order products from one batched call of two points (Betty's `darts` trick).
/// `ε = r / ‖v‖` with `r = ε_mach^{1/3} (1 + ‖y‖)`, the step that balances truncation and
/// rounding errors of a central difference.
pub fn fd_second<T: Real, O: Oracle<T> + ?Sized>(
    o: &O,
    at: Probe<'_, T>,
    hyy: Option<&mut [T]>,
    hxy: Option<&mut [T]>,
) -> Result<()> {
    let Probe { x, y, v, batch } = at;
    let (dx, dy) = o.dims();
    let vn = norm(v);
    if vn == 0.0 {
        for h in [hyy, hxy].into_iter().flatten() {
            h.iter_mut().for_each(|e| *e = T::zero());
        }
        return Ok(());
    }
    let r = T::epsilon().as_f64().cbrt() * (1.0 + norm(y));
    let eps = r / vn;
    let mut ys = Vec::with_capacity(2 * dy);
    ys.extend_from_slice(y);
    ys.extend_from_slice(y);
    axpy(eps, v, &mut ys[..dy]);
    axpy(-eps, v, &mut ys[dy..]);
    let mut gy = vec![T::zero(); 2 * dy];
    let want_x = hxy.is_some();
    let mut gx = vec![T::zero(); if want_x { 2 * dx } else { 0 }];
    o.grad_g(x, &ys, batch, if want_x { Some(&mut gx) } else { None }, &mut gy)?;
    // A non-finite `grad_g` is named as such (not as the products differenced from it).
    check_finite("grad_g", &gy)?;
    check_finite("grad_g", &gx)?;
    let c = 0.5 / eps;
    if let Some(h) = hyy {
        for (i, e) in h.iter_mut().enumerate() {
            *e = T::from_f64(c * (gy[i].as_f64() - gy[dy + i].as_f64()));
        }
    }
    if let Some(h) = hxy {
        for (i, e) in h.iter_mut().enumerate() {
            *e = T::from_f64(c * (gx[i].as_f64() - gx[dx + i].as_f64()));
        }
    }
    Ok(())
}

/// The phases a method's wall time is split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Start-up: step-size estimation, initialisation refinement.
    Setup = 0,
    /// Lower-level updates of `y` (and F2SA's `z`).
    Lower = 1,
    /// The linear-system variable `v` (CG, Neumann, SOBA/BO-REP's `v` steps), ITD's adjoint pass.
    Linear = 2,
    /// Upper-level gradient assembly and the `x` step.
    Upper = 3,
}

pub const PHASE_NAMES: [&str; 4] = ["setup", "lower", "linear", "upper"];

/// Oracle call counts (points evaluated; a batched call of `B` points counts `B`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub grad_f: usize,
    pub grad_g: usize,
    /// Analytic Hessian–vector products (finite differences are counted as `grad_g`).
    pub hvp_yy: usize,
    /// Analytic mixed products.
    pub jvp_xy: usize,
    /// Second-order products computed by finite differences (each also counts 2 `grad_g`).
    pub fd_second: usize,
    pub values: usize,
    /// Dense lower Hessians built by the problem ([`Oracle::hessian_yy`]).
    pub hessians: usize,
}

/// Wraps an oracle: checks the finiteness of what it returns (naming the oracle), counts the
/// calls and splits wall time into [`Phase`]s.
pub struct Counted<'a, T: Real> {
    pub oracle: &'a dyn Oracle<T>,
    pub counts: Counts,
    pub times: [f64; 4],
    phase: Phase,
    since: Instant,
    pub dx: usize,
    pub dy: usize,
}

fn check_finite<T: Real>(what: &str, v: &[T]) -> Result<()> {
    if v.iter().all(|e| e.is_finite()) {
        Ok(())
    } else {
        Err(OptError::Numerical(format!(
            "the oracle `{what}` returned non-finite values (NaN or inf); the iterates may have diverged: \
             reduce the step sizes (options['outer_step'], options['inner_step'])"
        )))
    }
}

impl<'a, T: Real> Counted<'a, T> {
    pub fn new(oracle: &'a dyn Oracle<T>) -> Self {
        let (dx, dy) = oracle.dims();
        Counted {
            oracle,
            counts: Counts::default(),
            times: [0.0; 4],
            phase: Phase::Setup,
            since: Instant::now(),
            dx,
            dy,
        }
    }

    /// Charges the time since the last switch to the current phase and enters `p`.
    pub fn enter(&mut self, p: Phase) {
        let now = Instant::now();
        self.times[self.phase as usize] += now.duration_since(self.since).as_secs_f64();
        self.since = now;
        self.phase = p;
    }

    /// Final phase times (charges the running phase).
    pub fn finish(&mut self) -> [f64; 4] {
        self.enter(self.phase);
        self.times
    }

    pub fn grad_f(&mut self, x: &[T], y: &[T], batch: Batch, gx: &mut [T], gy: &mut [T]) -> Result<()> {
        self.counts.grad_f += 1;
        self.oracle.grad_f(x, y, batch, gx, gy)?;
        check_finite("grad_f", gx)?;
        check_finite("grad_f", gy)
    }

    pub fn grad_g(&mut self, x: &[T], ys: &[T], batch: Batch, gx: Option<&mut [T]>, gy: &mut [T]) -> Result<()> {
        self.counts.grad_g += ys.len() / self.dy.max(1);
        match gx {
            Some(gx) => {
                self.oracle.grad_g(x, ys, batch, Some(&mut *gx), gy)?;
                check_finite("grad_g", gx)?;
            }
            None => self.oracle.grad_g(x, ys, batch, None, gy)?,
        }
        check_finite("grad_g", gy)
    }

    pub fn second(&mut self, at: Probe<'_, T>, hyy: Option<&mut [T]>, hxy: Option<&mut [T]>) -> Result<()> {
        if self.oracle.has_second() {
            self.counts.hvp_yy += hyy.is_some() as usize;
            self.counts.jvp_xy += hxy.is_some() as usize;
        } else {
            self.counts.fd_second += 1;
            self.counts.grad_g += 2;
        }
        let (a, b) = (hyy.is_some(), hxy.is_some());
        let mut hyy = hyy;
        let mut hxy = hxy;
        self.oracle.second(at, hyy.as_deref_mut(), hxy.as_deref_mut())?;
        if a {
            check_finite("hvp_yy", hyy.as_deref().unwrap_or(&[]))?;
        }
        if b {
            check_finite("jvp_xy", hxy.as_deref().unwrap_or(&[]))?;
        }
        Ok(())
    }

    /// `H v` only.
    pub fn hvp(&mut self, x: &[T], y: &[T], v: &[T], batch: Batch, out: &mut [T]) -> Result<()> {
        self.second(Probe { x, y, v, batch }, Some(out), None)
    }

    /// `H v` by central differences of `grad_g` even when the oracle has analytic products
    /// (first-order methods stay first order).
    pub fn hvp_fd(&mut self, x: &[T], y: &[T], v: &[T], out: &mut [T]) -> Result<()> {
        self.counts.fd_second += 1;
        self.counts.grad_g += 2;
        fd_second(self.oracle, Probe { x, y, v, batch: None }, Some(&mut *out), None)?;
        check_finite("grad_g", out)
    }

    /// `∇²ₓᵧg v` only.
    pub fn jvp(&mut self, x: &[T], y: &[T], v: &[T], batch: Batch, out: &mut [T]) -> Result<()> {
        self.second(Probe { x, y, v, batch }, None, Some(out))
    }

    /// The dense `∇²ᵧᵧg(x, y)` from [`Oracle::hessian_yy`] (counted as `hessians`), or, when
    /// the oracle has none, built column by column from `d_y` products; checked finite.
    pub fn hessian(&mut self, x: &[T], y: &[T], out: &mut [f64]) -> Result<()> {
        match self.oracle.hessian_yy(x, y, out) {
            Some(r) => {
                self.counts.hessians += 1;
                r?;
            }
            None => {
                let dy = y.len();
                let mut e = vec![T::zero(); dy];
                let mut col = vec![T::zero(); dy];
                for j in 0..dy {
                    e[j] = T::one();
                    self.hvp(x, y, &e, None, &mut col)?;
                    e[j] = T::zero();
                    for i in 0..dy {
                        out[i * dy + j] = col[i].as_f64();
                    }
                }
                // Symmetrised (finite differences are symmetric only up to their error).
                for i in 0..dy {
                    for j in 0..i {
                        let m = 0.5 * (out[i * dy + j] + out[j * dy + i]);
                        out[i * dy + j] = m;
                        out[j * dy + i] = m;
                    }
                }
            }
        }
        if out.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(OptError::Numerical("the lower-level Hessian ∇²ᵧᵧg has non-finite entries".into()))
        }
    }

    pub fn value_f(&mut self, x: &[T], y: &[T]) -> Result<f64> {
        match self.oracle.value_f(x, y) {
            Some(r) => {
                self.counts.values += 1;
                r
            }
            None => Ok(f64::NAN),
        }
    }
}
