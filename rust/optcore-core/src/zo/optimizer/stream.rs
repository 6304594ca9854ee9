//! The gradient methods' points and steps, generated in chunks of coordinates.
//!
//! A direction is a function of `(seed, iteration, direction, index)` ([`Counter::normals_at`]),
//! so a point `x + μ u_i` is written chunk by chunk straight into the caller's buffer, and the
//! step `x ← P(x − lr dir(g))` regenerates the `q` directions one chunk at a time, accumulates
//! that chunk of `g = Σ_i s c_i u_i` in f64 (per coordinate in the order `i = 0, 1, …`, as a
//! whole-vector accumulation would) and applies it. Neither a direction nor the estimate is
//! ever held as a d-vector: a gradient method's memory is the iterate, the best point, the
//! previous iterate (only for the adaptive step's step back) and the vectors its update keeps
//! (heavy ball's velocity, AdaMM's moments). The last estimate is kept as the scalars it is
//! regenerated from ([`Estimate`]).

use super::lazy::{Replay, Seed};
use super::{Method, Step, Update, Zo};
use crate::error::{OptError, Result};
use crate::real::Real;
use crate::zo::boxes::side;
use crate::zo::estimate::{Directions, Estimator, Scheme};
use crate::zo::rng::{Counter, Stream};

/// Coordinates per chunk (even: a chunk starts at an even index of the generator's pairs).
pub(super) const CHUNK: usize = 4096;

/// The largest `|u_j|` a Gaussian direction can have: Box–Muller's radius at the smallest
/// uniform `2^-54`, `sqrt(2 · 54 ln 2) ≈ 8.65` (a sphere direction's entries are at most 1).
const MAX_NORMAL: f64 = 8.7;

/// A gradient estimate as the scalars it is regenerated from:
/// `g = Σ_i scale c_i u_i (+ pert z)` with the directions `u_i` (and the perturbation `z`) of
/// iteration `it`, or `g_j = c_j` on CGE's coordinates.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Estimate {
    pub it: u64,
    pub c: Vec<f64>,
    pub coords: Vec<usize>,
    /// Sphere: the norm of each direction (the directions are `u_i / norm_i`).
    pub norms: Vec<f64>,
    pub scale: f64,
    /// The isotropic perturbation's scale `r / sqrt(d)` of `"perturbed"`.
    pub pert: Option<f64>,
}

/// Which direction a chunk is taken from: direction `i` of iteration `it`, with CGE's
/// coordinate and a sphere direction's norm (unused otherwise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Dir {
    pub it: u64,
    pub i: usize,
    pub coord: usize,
    pub norm: f64,
}

impl Dir {
    /// Direction `i` of iteration `it` with that iteration's coordinates and norms.
    pub fn of(it: u64, i: usize, coords: &[usize], norms: &[f64]) -> Dir {
        Dir { it, i, coord: coords.get(i).copied().unwrap_or(0), norm: norms.get(i).copied().unwrap_or(f64::NAN) }
    }
}

/// Writes entries `start..start + u.len()` of direction `dir`.
pub(super) fn dir_chunk(est: &Estimator, rng: &Counter, dir: Dir, start: usize, u: &mut [f64]) {
    match est.dirs {
        Directions::Coordinates { .. } => {
            u.iter_mut().for_each(|v| *v = 0.0);
            let j = dir.coord;
            if (start..start + u.len()).contains(&j) {
                u[j - start] = 1.0;
            }
        }
        _ => {
            rng.normals_at(dir.it, dir.i as u64, Stream::Directions, start, u);
            if est.dirs == Directions::Sphere {
                let n = dir.norm;
                if n > 0.0 {
                    u.iter_mut().for_each(|v| *v /= n);
                }
            }
        }
    }
}

impl Estimate {
    /// Entries `start..start + g.len()` of the estimate; `u` is scratch of at least `g.len()`.
    pub(super) fn chunk(&self, est: &Estimator, rng: &Counter, start: usize, g: &mut [f64], u: &mut [f64]) {
        g.iter_mut().for_each(|v| *v = 0.0);
        let u = &mut u[..g.len()];
        match est.dirs {
            Directions::Coordinates { .. } => {
                // The coordinates are sorted: the chunk's ones are a contiguous run.
                let a = self.coords.partition_point(|&j| j < start);
                let b = self.coords.partition_point(|&j| j < start + g.len());
                for (&j, &cj) in self.coords[a..b].iter().zip(&self.c[a..b]) {
                    g[j - start] = cj;
                }
            }
            _ => {
                for (i, &ci) in self.c.iter().enumerate() {
                    dir_chunk(est, rng, Dir::of(self.it, i, &self.coords, &self.norms), start, u);
                    g.iter_mut().zip(u.iter()).for_each(|(gv, uv)| *gv += self.scale * ci * uv);
                }
            }
        }
        if let Some(s) = self.pert {
            rng.normals_at(self.it, 0, Stream::Perturbation, start, u);
            g.iter_mut().zip(u.iter()).for_each(|(gv, zv)| *gv += s * zv);
        }
    }

    /// Whether every entry is finite, without generating when the scalars bound it.
    fn surely_finite(&self, est: &Estimator) -> bool {
        if !self.c.iter().all(|c| c.is_finite()) {
            return false;
        }
        if let Directions::Coordinates { .. } = est.dirs {
            return true;
        }
        let bound: f64 = self.c.iter().map(|c| (self.scale * c).abs()).sum::<f64>() * MAX_NORMAL;
        bound < 1e300
    }
}

/// The step direction's entry from the estimate's (and the update's kept vectors; `commit`
/// writes their new values).
#[inline(always)]
fn update_entry(
    update: Update,
    gj: f64,
    (m1, v2, vhat): (Option<&mut f64>, Option<&mut f64>, Option<&mut f64>),
    commit: bool,
) -> f64 {
    match update {
        Update::Plain => gj,
        Update::Momentum { beta } => {
            let m1 = m1.expect("momentum keeps m1");
            let m = beta * *m1 + gj;
            if commit {
                *m1 = m;
            }
            m
        }
        Update::Sign => {
            if gj > 0.0 {
                1.0
            } else if gj < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        Update::AdaMM { beta1, beta2, eps } => {
            let (m1, v2, vhat) = (m1.expect("adamm"), v2.expect("adamm"), vhat.expect("adamm"));
            let m = beta1 * *m1 + (1.0 - beta1) * gj;
            let v = beta2 * *v2 + (1.0 - beta2) * gj * gj;
            let vh = vhat.max(v);
            if commit {
                (*m1, *v2, *vhat) = (m, v, vh);
            }
            m / (vh.sqrt() + eps)
        }
    }
}

/// Writes the point `seed` of a batch centred at `src` into `dst` (in place: `src` None, the
/// center read from `dst`), chunk by chunk: the arithmetic of every point a batch asks for.
pub(super) fn gen_point<T: Real>(
    est: &Estimator,
    rng: &Counter,
    (lower, upper): (&[f64], &[f64]),
    seed: &Seed,
    src: Option<&[T]>,
    dst: &mut [T],
    u: &mut [f64],
) {
    if seed.centre {
        if let Some(x) = src {
            dst.copy_from_slice(x);
        }
        return;
    }
    for start in (0..dst.len()).step_by(CHUNK) {
        let n = CHUNK.min(dst.len() - start);
        let ch = &mut u[..n];
        dir_chunk(est, rng, seed.dir, start, ch);
        for (k, b) in ch.iter().enumerate() {
            let j = start + k;
            let a = match src {
                Some(x) => x[j],
                None => dst[j],
            };
            let v = a.as_f64() + seed.h * b;
            // `clip` implies bounded, i.e. non-empty sides.
            dst[j] = T::from_f64(if seed.clip { v.max(lower[j]).min(upper[j]) } else { v });
        }
    }
}

/// Applies the step `r` to `x` in place, `x ← T(P(x − lr dir))`, with the arithmetic of
/// [`Pass::Step`]: a plain or sign update, which keeps no vectors (`buf`: two chunks).
pub(super) fn replay<T: Real>(
    est: &Estimator,
    rng: &Counter,
    update: Update,
    (lower, upper): (&[f64], &[f64]),
    r: &Replay,
    x: &mut [T],
    buf: &mut [f64],
) {
    let (gbuf, u) = buf.split_at_mut(CHUNK);
    for start in (0..x.len()).step_by(CHUNK) {
        let n = CHUNK.min(x.len() - start);
        let g = &mut gbuf[..n];
        r.e.chunk(est, rng, start, g, u);
        for (k, &gj) in g.iter().enumerate() {
            let j = start + k;
            let dj = update_entry(update, gj, (None, None, None), false);
            let (l, up) = (side(lower, j, f64::NEG_INFINITY), side(upper, j, f64::INFINITY));
            x[j] = T::from_f64((x[j].as_f64() - r.lr * dj).max(l).min(up));
        }
    }
}

/// What a pass over the chunks of the estimate does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// `Σ g_j²` of the estimate (before the update's vectors).
    EstimateNorm,
    /// Whether every entry of the estimate is finite (1.0) or not (0.0).
    Finite,
    /// `Σ dir_j²` of the step direction (the update's vectors untouched).
    DirNorm,
    /// Apply the update and the step.
    Step,
}

impl<T: Real> Zo<T> {
    /// The norm of direction `i` of the current iteration (sphere directions are normalised),
    /// generated once per iteration.
    fn sphere_norm(&mut self, i: usize) -> f64 {
        if self.norms[i].is_nan() {
            let mut acc = 0.0f64;
            let mut u = std::mem::take(&mut self.scratch);
            for start in (0..self.d).step_by(CHUNK) {
                let ch = &mut u[..CHUNK.min(self.d - start)];
                self.rng.normals_at(self.nit, i as u64, Stream::Directions, start, ch);
                acc = ch.iter().fold(acc, |a, v| a + v * v);
            }
            self.scratch = u;
            self.norms[i] = acc.sqrt();
        }
        self.norms[i]
    }

    /// How point `i >= 1` of the current batch is perturbed: the step `h` along its direction
    /// and whether it is clipped onto the box (see [`Estimator::perturb`]); records the sign of
    /// a forward difference. Decided once per point and iteration.
    pub(super) fn decide(&mut self, est: &Estimator, i: usize) -> (f64, bool) {
        let (j, s) = est.slot(i);
        if est.dirs == Directions::Sphere {
            self.sphere_norm(j);
        }
        let h = s * est.mu;
        if !self.bounded {
            return (h, false);
        }
        let (sign, clip) = match self.decided[i] {
            1 => (1.0, false),
            2 => (-1.0, false),
            3 => (1.0, true),
            _ => {
                let r = if self.inside(est, j, h) {
                    (1.0, false)
                } else if est.scheme == Scheme::Forward && self.inside(est, j, -h) {
                    (-1.0, false)
                } else {
                    (1.0, true)
                };
                self.decided[i] = if r.1 {
                    3
                } else if r.0 < 0.0 {
                    2
                } else {
                    1
                };
                r
            }
        };
        if s > 0.0 {
            self.signs[j] = sign;
        }
        (sign * h, clip)
    }

    /// Whether `x + h u_j` lies in the box.
    fn inside(&mut self, est: &Estimator, j: usize, h: f64) -> bool {
        let mut u = std::mem::take(&mut self.scratch);
        let (lower, upper) = (&self.o.lower, &self.o.upper);
        let mut ok = true;
        for start in (0..self.d).step_by(CHUNK) {
            let ch = &mut u[..CHUNK.min(self.d - start)];
            dir_chunk(est, &self.rng, Dir::of(self.nit, j, &self.coords, &self.norms), start, ch);
            let x = &self.x[start..start + ch.len()];
            ok = x.iter().zip(ch.iter()).enumerate().all(|(k, (a, b))| {
                let v = a.as_f64() + h * b;
                v >= lower[start + k] && v <= upper[start + k]
            });
            if !ok {
                break;
            }
        }
        self.scratch = u;
        ok
    }

    /// Writes point `i >= 1` of the current batch into `out`, chunk by chunk.
    pub(super) fn write_point(&mut self, est: &Estimator, i: usize, out: &mut [T]) {
        let seed = self.seed(est, i);
        let mut u = std::mem::take(&mut self.scratch);
        gen_point(est, &self.rng, (&self.o.lower, &self.o.upper), &seed, Some(&self.x), out, &mut u);
        self.scratch = u;
    }

    /// The signs of the forward differences that no [`Zo::point`] call computed (a state
    /// told values that were evaluated elsewhere).
    fn fill_signs(&mut self, est: &Estimator) {
        for j in 0..self.signs.len() {
            if self.signs[j].is_nan() {
                self.decide(est, j + 1);
            }
        }
    }

    /// One pass over the chunks of `e` (see [`Pass`]); returns the sum, the flag, or for
    /// [`Pass::Step`] the largest move and the largest `|x_j|` after it, copying the iterate
    /// before the step into `keep` (when not empty).
    fn pass(&mut self, est: &Estimator, update: Update, e: &Estimate, pass: Pass, keep: &mut [T]) -> (f64, f64) {
        let mut buf = std::mem::take(&mut self.scratch);
        let (gbuf, u) = buf.split_at_mut(CHUNK);
        let (mut acc, mut top) = (0.0f64, 0.0f64);
        let (lr, keep_prev) = (self.lr, !keep.is_empty());
        for start in (0..self.d).step_by(CHUNK) {
            let n = CHUNK.min(self.d - start);
            let g = &mut gbuf[..n];
            e.chunk(est, &self.rng, start, g, u);
            match pass {
                Pass::EstimateNorm => acc = g.iter().fold(acc, |a, v| a + v * v),
                Pass::Finite => {
                    if !g.iter().all(|v| v.is_finite()) {
                        self.scratch = buf;
                        return (0.0, 0.0);
                    }
                }
                Pass::DirNorm | Pass::Step => {
                    let commit = pass == Pass::Step;
                    for (k, &gj) in g.iter().enumerate() {
                        let j = start + k;
                        let dj = update_entry(
                            update,
                            gj,
                            (self.m1.get_mut(j), self.v2.get_mut(j), self.vhat.get_mut(j)),
                            commit,
                        );
                        if !commit {
                            acc += dj * dj;
                            continue;
                        }
                        // x ← T(P(x_prev − lr dir)), x_prev the iterate before the step.
                        let p = self.x[j].as_f64();
                        if keep_prev {
                            keep[j] = self.x[j];
                        }
                        let (l, up) =
                            (side(&self.o.lower, j, f64::NEG_INFINITY), side(&self.o.upper, j, f64::INFINITY));
                        let t = T::from_f64((p - lr * dj).max(l).min(up));
                        acc = acc.max((t.as_f64() - p).abs());
                        top = top.max(t.as_f64().abs());
                        self.x[j] = t;
                    }
                }
            }
        }
        self.scratch = buf;
        (if pass == Pass::Finite { 1.0 } else { acc }, top)
    }

    /// The gradient methods' tell: the adaptive rule's step back, or the estimate and the step.
    pub(super) fn step_gradient(&mut self, est: &Estimator, update: Update, v: &[f64]) -> Result<()> {
        let f0 = v[0];
        if let Step::Adaptive { shrink, grow, .. } = self.o.step {
            if !self.f_prev.is_nan() {
                if f0 > self.f_prev || f0.is_nan() {
                    // Take the step back; the next batch estimates afresh at the previous
                    // point with a shorter step. (Retrying the same direction shorter would
                    // shrink the step without end when the estimate is not a descent
                    // direction, e.g. dominated by the O(mu) bias of forward differences.)
                    self.failures += 1;
                    self.lr *= shrink;
                    if let Update::Momentum { .. } = update {
                        self.m1.iter_mut().for_each(|v| *v = 0.0);
                    }
                    self.step_back()?;
                    self.small_moves = 0;
                    return Ok(());
                }
                // A step that left f unchanged (e.g. projected back onto the bounds) says
                // nothing about the step size.
                if f0 < self.f_prev {
                    self.lr *= grow;
                }
            } else {
                self.lr = f64::NAN; // set from step0 below
            }
        }
        self.earn_replays();
        self.fill_signs(est);
        let d = self.d;
        if est.dirs == Directions::Sphere {
            (0..self.norms.len()).for_each(|i| {
                self.sphere_norm(i);
            });
        }
        let c = est.differences(v, &self.signs, d);
        let scale = if est.dirs == Directions::Sphere { d as f64 } else { 1.0 } / c.len() as f64;
        let coords = if let Directions::Coordinates { .. } = est.dirs { self.coords.clone() } else { Vec::new() };
        let mut e = Estimate { it: self.nit, c, coords, norms: self.norms.clone(), scale, pert: None };
        if !e.surely_finite(est) && self.pass(est, update, &e, Pass::Finite, &mut []).0 == 0.0 {
            if !f0.is_finite() {
                return Err(OptError::Numerical(format!(
                    "the objective is not finite at the iterate (f = {f0:e}, iteration {}); start from a point \
                     where it is finite",
                    self.nit
                )));
            }
            // A perturbed point had an infinite value (e.g. a failed evaluation with
            // nan_as_inf): stay, and draw fresh directions next iteration.
            self.stay();
            self.f_prev = f0;
            self.last = None;
            return Ok(());
        }
        if let Method::Gradient { perturbation: Some(_), .. } = self.o.method {
            let r = match self.radius {
                Some(r) if r > 0.0 => r,
                _ => {
                    // 1e-3 |g_0|; at an exact critical point (g_0 = 0, e.g. central differences
                    // of a quadratic saddle) a guess of the gradient's units, |f| / |x|.
                    let g0 = self.pass(est, update, &e, Pass::EstimateNorm, &mut []).0.sqrt();
                    let r =
                        if g0 > 0.0 { 1e-3 * g0 } else { 1e-3 * f0.abs().max(1.0) / super::inf_norm(&self.x).max(1.0) };
                    self.radius = Some(r);
                    r
                }
            };
            e.pert = Some(r / (d as f64).sqrt());
        }
        if let Step::Adaptive { step0, .. } = self.o.step {
            if self.lr.is_nan() {
                let n = self.pass(est, update, &e, Pass::DirNorm, &mut []).0.sqrt();
                self.lr = if n > 0.0 { step0 / n } else { step0 };
            }
        }
        self.f_prev = f0;
        let keep = self.before_step()?;
        let mut kept = self.kept(keep);
        let (moved, top) = self.pass(est, update, &e, Pass::Step, &mut kept);
        self.after_step(keep, kept);
        self.last = Some(e);
        self.last_lr = self.lr;
        self.note_move_scaled(moved, top);
        Ok(())
    }

    /// The last estimate as a d-vector (zero before the first), regenerated from its scalars.
    pub(super) fn estimate_vector(&self) -> Vec<f64> {
        let mut g = vec![0.0; self.d];
        if let (Some(e), Method::Gradient { est, .. }) = (&self.last, &self.o.method) {
            let mut u = vec![0.0; CHUNK];
            for (k, ch) in g.chunks_mut(CHUNK).enumerate() {
                e.chunk(est, &self.rng, k * CHUNK, ch, &mut u);
            }
        }
        g
    }
}
