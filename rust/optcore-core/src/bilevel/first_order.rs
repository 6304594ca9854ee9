//! The first-order methods: F2SA and the penalty method. Both step on the penalty gradient
//! `∇ₓf(x, y) + λ(∇ₓg(x, y) − ∇ₓg(x, z))`, with `y` solving `f + λg` and `z` solving `g`
//! approximately; no second-order products.

use super::methods::{at_start, decay, end_of_iteration, project, step_from, Ctx, Method, Run};
use super::oracle::{Batch, Phase};
use crate::error::Result;
use crate::linalg::{axpy, norm};
use crate::real::Real;
use crate::solver::{Observer, Termination};

/// F2SA's (and the penalty method's) pieces at one `x`: inner loops on `y` (for `f + λg`) and
/// `z` (for `g`), and the outer direction `∇ₓf(x, y) + λ(∇ₓg(x, y) − ∇ₓg(x, z))`.
struct Penalty {
    alpha_z: f64,
    lf: f64,
    lg: f64,
}

/// The minibatches of one step: of `f`'s samples and of `g`'s (`None`: the full objective).
#[derive(Clone, Copy)]
struct Minibatch<'b> {
    f: Batch<'b>,
    g: Batch<'b>,
}

/// How [`Penalty::inner`] runs: the penalty `λ`, the step decay `s`, at most `steps` steps,
/// stopping when both gradient mappings are `<= tol`; `accel` for Nesterov momentum, `storm`
/// for F2SA's STORM correction.
struct Inner<'s, T> {
    lam: f64,
    s: f64,
    steps: usize,
    tol: f64,
    accel: bool,
    storm: Option<&'s mut Storm<T>>,
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
    fn correct(&mut self, c: &mut Ctx<'_, T>, x: &[T], e: &[T], lam: f64, mb: Minibatch, d: &mut [T]) -> Result<()> {
        let (bf, bg) = (mb.f, mb.g);
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
    fn inner<T: Real>(
        &self,
        c: &mut Ctx<'_, T>,
        x: &[T],
        y: &mut [T],
        z: &mut [T],
        run: Inner<'_, T>,
    ) -> Result<(f64, f64)> {
        let Inner { lam, s, steps, tol, accel, mut storm } = run;
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
                st.correct(c, x, &e, lam, Minibatch { f: bf.as_deref(), g: bg.as_deref() }, &mut g)?;
            }
            for i in 0..dy {
                new[i] = T::from_f64(e[i].as_f64() - ay * g[i].as_f64());
                new[dy + i] = T::from_f64(e[dy + i].as_f64() - az * g[dy + i].as_f64());
            }
            project(&c.opts.proj_y, &mut new[..dy])?;
            project(&c.opts.proj_y, &mut new[dy..])?;
            let dist =
                |a: &[T], b: &[T]| a.iter().zip(b).map(|(u, v)| (u.as_f64() - v.as_f64()).powi(2)).sum::<f64>().sqrt();
            ry = dist(&e[..dy], &new[..dy]) / ay / (1.0 + lam);
            rz = dist(&e[dy..], &new[dy..]) / az;
            for (part, prev, t) in [(0..dy, &mut *y, &mut ty), (dy..2 * dy, &mut *z, &mut tz)] {
                let (gp, np) = (&g[part.clone()], &new[part.clone()]);
                let restart = !accel
                    || gp
                        .iter()
                        .zip(np.iter().zip(prev.iter()))
                        .map(|(gi, (a, b))| gi.as_f64() * (a.as_f64() - b.as_f64()))
                        .sum::<f64>()
                        > 0.0;
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
    fn direction<T: Real>(c: &mut Ctx<'_, T>, x: &[T], y: &[T], z: &[T], lam: f64, mb: Minibatch) -> Result<Vec<T>> {
        let (bf, bg) = (mb.f, mb.g);
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

/// F2SA (and, with `Method::Penalty`, the penalty method: `λ = 1/σ` fixed).
pub(super) fn run_f2sa<T: Real>(
    c: &mut Ctx<'_, T>,
    mut x: Vec<T>,
    mut y: Vec<T>,
    obs: &mut dyn Observer<T>,
) -> Result<Run<T>> {
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
            let l = c
                .lipschitz_hg(&x, |c, xp| {
                    let steps = c.opts.refine_steps.max(100);
                    let run = Inner { lam: lam_final, s: 1.0, steps, tol, accel: true, storm: None };
                    pen.inner(c, xp, &mut yw, &mut zw, run)?;
                    Penalty::direction(c, xp, &yw, &zw, lam_final, Minibatch { f: None, g: None })
                })
                .map_err(at_start)?;
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
        let run = Inner { lam, s, steps: opts.inner_steps.max(1), tol: inner_tol, accel: false, storm: storm.as_mut() };
        let (ry, rz) = pen.inner(c, &x, &mut y, &mut z, run)?;
        res = ry.max(rz);
        c.o.enter(Phase::Upper);
        let (bf, bg) = (c.bf(), c.bg());
        let mb = Minibatch { f: bf.as_deref(), g: bg.as_deref() };
        let d = Penalty::direction(c, &x, &y, &z, lam, mb)?;
        hg = norm(&d);
        let h = match (opts.momentum, prev.take()) {
            (Some(eta), Some((px, py, pz, plam, ph))) => {
                // STORM: h_k = d_k + (1 − η)(h_{k−1} − d(x_{k−1}; same sample)).
                let dp = Penalty::direction(c, &px, &py, &pz, plam, mb)?;
                (0..d.len())
                    .map(|i| T::from_f64(d[i].as_f64() + (1.0 - eta) * (ph[i].as_f64() - dp[i].as_f64())))
                    .collect()
            }
            _ => d.clone(),
        };
        if hg <= opts.tol && res <= opts.tol && lam >= lam_final && c.certify(k, &x, &y)? {
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
