//! Native bilevel problems with analytic gradients, Hessian–vector and mixed products.
//!
//! * [`Quadratic`]: `g = ½yᵀAy + xᵀBy + aᵀy + ½xᵀCx`, `f = ½yᵀQy + xᵀRy + ½xᵀPx + pᵀx + qᵀy`.
//! * [`Ridge`]: `g(λ, w) = ‖X_tr w − t_tr‖²/n_tr + Σ_j exp(λ_j) w_j²` (one `λ` per feature, or
//!   one scalar), `f(w) = ‖X_val w − t_val‖²/n_val`.
//! * [`Logistic`]: multinomial logistic regression, `W ∈ ℝ^{p×K}` (row-major), training losses
//!   weighted by `sigmoid(x_i)`: `g(x, W) = (1/n_tr) Σ_i σ(x_i) CE_i(W) + reg ‖W‖²/2`,
//!   `f(W) = (1/n_val) Σ_i CE_i(W)` on the validation set. Dense or CSR data.
//!
//! Minibatches average over the given rows instead of all of them (unbiased estimates).
//! Sums over rows run in fixed blocks combined in a fixed order (same result for any number
//! of threads).

use super::oracle::{Batch, Oracle, Probe};
use crate::error::{OptError, Result};
use crate::linalg::{add_scaled_rows, dot, to_f64, Design};
use crate::parallel::row_block;
use crate::real::Real;
use rayon::prelude::*;

/// Sums over blocks of rows: `f(block, acc)` adds a block's contribution into a
/// `width`-vector and returns one scalar per row of the block. Blocks are fixed by the number
/// of rows (`rows` is the batch or `0..n`), run in parallel, and are combined in order.
fn block_sum<F>(n: usize, batch: Batch, width: usize, f: F) -> (Vec<f64>, Vec<f64>)
where
    F: Fn(&[usize], &mut [f64]) -> Vec<f64> + Sync,
{
    let all: Vec<usize>;
    let rows: &[usize] = match batch {
        Some(b) => b,
        None => {
            all = (0..n).collect();
            &all
        }
    };
    let bs = row_block(rows.len());
    let parts: Vec<(Vec<f64>, Vec<f64>)> = rows
        .par_chunks(bs.max(1))
        .map(|chunk| {
            let mut acc = vec![0.0; width];
            let s = f(chunk, &mut acc);
            (acc, s)
        })
        .collect();
    let mut acc = vec![0.0; width];
    let mut scal = Vec::with_capacity(rows.len());
    for (a, s) in parts {
        acc.iter_mut().zip(&a).for_each(|(u, v)| *u += v);
        scal.extend(s);
    }
    (acc, scal)
}

/// [`block_sum`] one row at a time: `f(i, acc)` returns the row's scalar.
fn row_sum<F>(n: usize, batch: Batch, width: usize, f: F) -> (Vec<f64>, Vec<f64>)
where
    F: Fn(usize, &mut [f64]) -> f64 + Sync,
{
    block_sum(n, batch, width, |chunk, acc| chunk.iter().map(|&i| f(i, acc)).collect())
}

fn rows_of(n: usize, batch: Batch) -> Vec<usize> {
    match batch {
        Some(b) => b.to_vec(),
        None => (0..n).collect(),
    }
}

fn batch_len(n: usize, batch: Batch) -> usize {
    batch.map_or(n, |b| b.len()).max(1)
}

fn check_batch(n: usize, batch: Batch, what: &str) -> Result<()> {
    if let Some(b) = batch {
        if b.iter().any(|&i| i >= n) {
            return Err(OptError::InvalidInput(format!("{what} minibatch index out of range (n = {n})")));
        }
    }
    Ok(())
}

fn store<T: Real>(src: &[f64], dst: &mut [T]) {
    dst.iter_mut().zip(src).for_each(|(d, &s)| *d = T::from_f64(s));
}

// --- Quadratic -------------------------------------------------------------------------------

/// The quadratic bilevel problem (see the module docs); matrices row-major, `B` and `R` are
/// `d_x × d_y`, `A` is `d_y × d_y` (symmetric positive definite), `C`, `P` are `d_x × d_x`.
pub struct Quadratic {
    pub dx: usize,
    pub dy: usize,
    pub a_mat: Vec<f64>,
    pub b_mat: Vec<f64>,
    pub a_vec: Vec<f64>,
    pub c_mat: Vec<f64>,
    pub q_mat: Vec<f64>,
    pub r_mat: Vec<f64>,
    pub p_mat: Vec<f64>,
    pub p_vec: Vec<f64>,
    pub q_vec: Vec<f64>,
}

/// `out = M u` (`M` is `r × c`).
fn mv(m: &[f64], r: usize, c: usize, u: &[f64]) -> Vec<f64> {
    (0..r).map(|i| dot(&m[i * c..(i + 1) * c], u)).collect()
}

/// `out = Mᵀ u` (`M` is `r × c`).
fn mtv(m: &[f64], r: usize, c: usize, u: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; c];
    for i in 0..r {
        for (o, &a) in out.iter_mut().zip(&m[i * c..(i + 1) * c]) {
            *o += a * u[i];
        }
    }
    out
}

fn add(a: &mut [f64], b: &[f64]) {
    a.iter_mut().zip(b).for_each(|(u, v)| *u += v);
}

impl Quadratic {
    pub fn validate(&self) -> Result<()> {
        let (dx, dy) = (self.dx, self.dy);
        let shapes = [
            (self.a_mat.len(), dy * dy, "A"),
            (self.b_mat.len(), dx * dy, "B"),
            (self.a_vec.len(), dy, "a"),
            (self.c_mat.len(), dx * dx, "C"),
            (self.q_mat.len(), dy * dy, "Q"),
            (self.r_mat.len(), dx * dy, "R"),
            (self.p_mat.len(), dx * dx, "P"),
            (self.p_vec.len(), dx, "p"),
            (self.q_vec.len(), dy, "q"),
        ];
        for (got, want, name) in shapes {
            if got != want || dx == 0 || dy == 0 {
                return Err(OptError::InvalidInput(format!(
                    "quadratic problem: `{name}` has {got} values, expected {want}"
                )));
            }
        }
        Ok(())
    }
}

impl<T: Real> Oracle<T> for Quadratic {
    fn dims(&self) -> (usize, usize) {
        (self.dx, self.dy)
    }
    fn grad_f(&self, x: &[T], y: &[T], _b: Batch, gx: &mut [T], gy: &mut [T]) -> Result<()> {
        let (x, y) = (to_f64(x), to_f64(y));
        let (dx, dy) = (self.dx, self.dy);
        let mut vx = mv(&self.r_mat, dx, dy, &y);
        add(&mut vx, &mv(&self.p_mat, dx, dx, &x));
        add(&mut vx, &self.p_vec);
        let mut vy = mv(&self.q_mat, dy, dy, &y);
        add(&mut vy, &mtv(&self.r_mat, dx, dy, &x));
        add(&mut vy, &self.q_vec);
        store(&vx, gx);
        store(&vy, gy);
        Ok(())
    }
    fn grad_g(&self, x: &[T], ys: &[T], _b: Batch, mut gx: Option<&mut [T]>, gy: &mut [T]) -> Result<()> {
        let (dx, dy) = (self.dx, self.dy);
        let x = to_f64(x);
        let btx = mtv(&self.b_mat, dx, dy, &x);
        let cx = mv(&self.c_mat, dx, dx, &x);
        for (k, yk) in ys.chunks(dy).enumerate() {
            let y = to_f64(yk);
            let mut vy = mv(&self.a_mat, dy, dy, &y);
            add(&mut vy, &btx);
            add(&mut vy, &self.a_vec);
            store(&vy, &mut gy[k * dy..(k + 1) * dy]);
            if let Some(g) = gx.as_deref_mut() {
                let mut vx = mv(&self.b_mat, dx, dy, &y);
                add(&mut vx, &cx);
                store(&vx, &mut g[k * dx..(k + 1) * dx]);
            }
        }
        Ok(())
    }
    fn analytic(&self) -> (bool, bool) {
        (true, true)
    }
    fn products(&self, at: Probe<'_, T>, hyy: Option<&mut [T]>, hxy: Option<&mut [T]>) -> Result<()> {
        let v = to_f64(at.v);
        if let Some(h) = hyy {
            store(&mv(&self.a_mat, self.dy, self.dy, &v), h);
        }
        if let Some(h) = hxy {
            store(&mv(&self.b_mat, self.dx, self.dy, &v), h);
        }
        Ok(())
    }
    fn value_f(&self, x: &[T], y: &[T]) -> Option<Result<f64>> {
        let (x, y) = (to_f64(x), to_f64(y));
        let (dx, dy) = (self.dx, self.dy);
        let d = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
        let v = 0.5 * d(&y, &mv(&self.q_mat, dy, dy, &y))
            + d(&x, &mv(&self.r_mat, dx, dy, &y))
            + 0.5 * d(&x, &mv(&self.p_mat, dx, dx, &x))
            + d(&self.p_vec, &x)
            + d(&self.q_vec, &y);
        Some(Ok(v))
    }
    fn hessian_yy(&self, _x: &[T], _y: &[T], out: &mut [f64]) -> Option<Result<()>> {
        // `A`, symmetrised (the products use `A` as given).
        let dy = self.dy;
        for i in 0..dy {
            for j in 0..dy {
                out[i * dy + j] = 0.5 * (self.a_mat[i * dy + j] + self.a_mat[j * dy + i]);
            }
        }
        Some(Ok(()))
    }
    fn hessian_costs(&self) -> Option<(f64, f64)> {
        let d = self.dy as f64;
        Some((d * d, 2.0 * d * d))
    }
    fn quadratic_in_y(&self) -> bool {
        true
    }
    fn value_g(&self, x: &[T], y: &[T]) -> Option<Result<f64>> {
        let (x, y) = (to_f64(x), to_f64(y));
        let (dx, dy) = (self.dx, self.dy);
        let d = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
        let v = 0.5 * d(&y, &mv(&self.a_mat, dy, dy, &y))
            + d(&x, &mv(&self.b_mat, dx, dy, &y))
            + d(&self.a_vec, &y)
            + 0.5 * d(&x, &mv(&self.c_mat, dx, dx, &x));
        Some(Ok(v))
    }
}

// --- Ridge -----------------------------------------------------------------------------------

/// Ridge regression with one regularisation weight `exp(λ_j)` per feature (or one scalar).
pub struct Ridge<T> {
    pub x_tr: Design<T>,
    pub t_tr: Vec<T>,
    pub x_val: Design<T>,
    pub t_val: Vec<T>,
    pub per_feature: bool,
    /// Gram forms `(XᵀX/n, Xᵀt/n, tᵀt/n)` of the training and validation sets, used for
    /// full-batch oracles when `p ≤ n` (O(p²) per product instead of O(np)).
    gram_tr: Option<Gram>,
    gram_val: Option<Gram>,
}

/// `(XᵀX/n, Xᵀt/n, tᵀt/n)` of a least-squares term.
struct Gram {
    g: Vec<f64>,
    b: Vec<f64>,
    c: f64,
    p: usize,
}

impl Gram {
    fn new<T: Real>(x: &Design<T>, t: &[T]) -> Option<Self> {
        let (n, p) = (x.rows(), x.cols());
        if p > n || p > 2048 {
            return None;
        }
        // Serial accumulation of the upper triangle (one pass over the rows, contiguous
        // inner loops), then mirrored: O(n p²) once at construction.
        let mut g = vec![0.0; p * p];
        let mut b = vec![0.0; p];
        let mut c = 0.0;
        let mut row = vec![0.0; p];
        for (i, ti) in t.iter().enumerate().take(n) {
            row.iter_mut().for_each(|v| *v = 0.0);
            x.for_each(i, |j, a| row[j] = a);
            let ti = ti.as_f64();
            c += ti * ti;
            for j in 0..p {
                let aj = row[j];
                if aj != 0.0 {
                    for (gk, &ak) in g[j * p + j..(j + 1) * p].iter_mut().zip(&row[j..]) {
                        *gk += aj * ak;
                    }
                    b[j] += aj * ti;
                }
            }
        }
        let nf = n as f64;
        for j in 0..p {
            for k in j..p {
                let v = g[j * p + k] / nf;
                g[j * p + k] = v;
                g[k * p + j] = v;
            }
        }
        Some(Gram { g, b: b.iter().map(|v| v / nf).collect(), c: c / nf, p })
    }

    /// `(2(G w − c b), wᵀGw − 2c bᵀw + c² tᵀt/n)`.
    fn grad<T: Real>(&self, w: &[T], c: f64) -> (Vec<f64>, f64) {
        let p = self.p;
        let w: Vec<f64> = w.iter().map(|v| v.as_f64()).collect();
        // `(G w)_j = Σ_k G[j, k] w_k` in index order, accumulated over the rows `k` of G: G is
        // mirrored exactly at construction, so `G[k, j] w_k` is the same product, and adding
        // row after row keeps each entry's order (from the initial value `Iterator::sum`
        // starts from) while the inner loop runs along contiguous memory, vectorised across `j`.
        let mut gw = vec![std::iter::empty::<f64>().sum::<f64>(); p];
        add_scaled_rows(&self.g, &w, &mut gw);
        let wgw: f64 = gw.iter().zip(&w).map(|(a, b)| a * b).sum();
        let bw: f64 = self.b.iter().zip(&w).map(|(a, b)| a * b).sum();
        let grad = gw.iter().zip(&self.b).map(|(g, b)| 2.0 * (g - c * b)).collect();
        (grad, wgw - 2.0 * c * bw + c * c * self.c)
    }
}

impl<T: Real> Ridge<T> {
    pub fn new(x_tr: Design<T>, t_tr: Vec<T>, x_val: Design<T>, t_val: Vec<T>, per_feature: bool) -> Result<Self> {
        if t_tr.len() != x_tr.rows() || t_val.len() != x_val.rows() || x_tr.cols() != x_val.cols() {
            return Err(OptError::InvalidInput("ridge problem: inconsistent shapes of X and targets".into()));
        }
        let gram_tr = Gram::new(&x_tr, &t_tr);
        let gram_val = Gram::new(&x_val, &t_val);
        Ok(Ridge { x_tr, t_tr, x_val, t_val, per_feature, gram_tr, gram_val })
    }

    /// `(2/|S|) Σ_{i∈S} (a_iᵀw − c·t_i) a_i` and `(1/|S|) Σ_{i∈S} (a_iᵀw − c·t_i)²`
    /// (from the Gram form for the full batch when there is one).
    fn lsq_grad(x: &Design<T>, t: &[T], gram: &Option<Gram>, w: &[T], batch: Batch, c: f64) -> (Vec<f64>, f64) {
        if let (None, Some(gr)) = (batch, gram) {
            return gr.grad(w, c);
        }
        let m = batch_len(x.rows(), batch) as f64;
        let (mut g, r) = row_sum(x.rows(), batch, x.cols(), |i, acc| {
            let r = x.row_dot(i, w) - c * t[i].as_f64();
            x.row_axpy(i, r, acc);
            r
        });
        g.iter_mut().for_each(|v| *v *= 2.0 / m);
        (g, r.iter().map(|v| v * v).sum::<f64>() / m)
    }

    fn lsq_tr(&self, w: &[T], batch: Batch, c: f64) -> (Vec<f64>, f64) {
        Self::lsq_grad(&self.x_tr, &self.t_tr, &self.gram_tr, w, batch, c)
    }

    fn lsq_val(&self, w: &[T], batch: Batch) -> (Vec<f64>, f64) {
        Self::lsq_grad(&self.x_val, &self.t_val, &self.gram_val, w, batch, 1.0)
    }
}

impl<T: Real> Oracle<T> for Ridge<T> {
    fn dims(&self) -> (usize, usize) {
        (if self.per_feature { self.x_tr.cols() } else { 1 }, self.x_tr.cols())
    }
    fn n_samples(&self) -> (usize, usize) {
        (self.x_val.rows(), self.x_tr.rows())
    }
    fn grad_f(&self, _x: &[T], y: &[T], batch: Batch, gx: &mut [T], gy: &mut [T]) -> Result<()> {
        check_batch(self.x_val.rows(), batch, "upper-level")?;
        let (g, _) = self.lsq_val(y, batch);
        store(&g, gy);
        gx.iter_mut().for_each(|v| *v = T::zero());
        Ok(())
    }
    fn grad_g(&self, x: &[T], ys: &[T], batch: Batch, mut gx: Option<&mut [T]>, gy: &mut [T]) -> Result<()> {
        check_batch(self.x_tr.rows(), batch, "lower-level")?;
        let d = self.x_tr.cols();
        let dx = x.len();
        let el = |j: usize| x[if self.per_feature { j } else { 0 }].as_f64().exp();
        for (k, w) in ys.chunks(d).enumerate() {
            let (mut g, _) = self.lsq_tr(w, batch, 1.0);
            for (j, gj) in g.iter_mut().enumerate() {
                *gj += 2.0 * el(j) * w[j].as_f64();
            }
            store(&g, &mut gy[k * d..(k + 1) * d]);
            if let Some(gxs) = gx.as_deref_mut() {
                let out = &mut gxs[k * dx..(k + 1) * dx];
                if self.per_feature {
                    for j in 0..d {
                        out[j] = T::from_f64(el(j) * w[j].as_f64().powi(2));
                    }
                } else {
                    out[0] = T::from_f64(el(0) * w.iter().map(|v| v.as_f64().powi(2)).sum::<f64>());
                }
            }
        }
        Ok(())
    }
    fn analytic(&self) -> (bool, bool) {
        (true, true)
    }
    fn products(&self, at: Probe<'_, T>, hyy: Option<&mut [T]>, hxy: Option<&mut [T]>) -> Result<()> {
        let Probe { x, y, v, batch } = at;
        check_batch(self.x_tr.rows(), batch, "lower-level")?;
        let el = |j: usize| x[if self.per_feature { j } else { 0 }].as_f64().exp();
        if let Some(h) = hyy {
            let (mut g, _) = self.lsq_tr(v, batch, 0.0);
            for (j, gj) in g.iter_mut().enumerate() {
                *gj += 2.0 * el(j) * v[j].as_f64();
            }
            store(&g, h);
        }
        if let Some(h) = hxy {
            if self.per_feature {
                for (j, hj) in h.iter_mut().enumerate() {
                    *hj = T::from_f64(2.0 * el(j) * y[j].as_f64() * v[j].as_f64());
                }
            } else {
                let s: f64 = y.iter().zip(v).map(|(a, b)| a.as_f64() * b.as_f64()).sum();
                h[0] = T::from_f64(2.0 * el(0) * s);
            }
        }
        Ok(())
    }
    fn value_f(&self, _x: &[T], y: &[T]) -> Option<Result<f64>> {
        Some(Ok(self.lsq_val(y, None).1))
    }
    fn hessian_yy(&self, x: &[T], _y: &[T], out: &mut [f64]) -> Option<Result<()>> {
        // `2 XᵀX/n + 2 diag(exp(λ))` from the training Gram matrix (none when p > n).
        let gr = self.gram_tr.as_ref()?;
        let p = gr.p;
        for (o, g) in out.iter_mut().zip(&gr.g) {
            *o = 2.0 * g;
        }
        for j in 0..p {
            out[j * p + j] += 2.0 * x[if self.per_feature { j } else { 0 }].as_f64().exp();
        }
        Some(Ok(()))
    }
    fn hessian_costs(&self) -> Option<(f64, f64)> {
        let p = self.gram_tr.as_ref()?.p as f64;
        Some((p * p, 2.0 * p * p))
    }
    fn quadratic_in_y(&self) -> bool {
        true
    }
    fn value_g(&self, x: &[T], y: &[T]) -> Option<Result<f64>> {
        let loss = self.lsq_tr(y, None, 1.0).1;
        let pen: f64 = y
            .iter()
            .enumerate()
            .map(|(j, w)| x[if self.per_feature { j } else { 0 }].as_f64().exp() * w.as_f64().powi(2))
            .sum();
        Some(Ok(loss + pen))
    }
}

// --- Logistic hyper-cleaning -----------------------------------------------------------------

/// Multinomial logistic regression with one weight `sigmoid(x_i)` per training example.
pub struct Logistic<T> {
    pub x_tr: Design<T>,
    pub l_tr: Vec<usize>,
    pub x_val: Design<T>,
    pub l_val: Vec<usize>,
    pub classes: usize,
    pub reg: f64,
}

/// The logistic function `1 / (1 + e^-t)`, without overflow for large `|t|` (shared by the
/// logistic problems, the SVM losses and the constrained toys).
pub(super) fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// Softmax probabilities of logits `z` (in place) and `logsumexp(z)`.
fn softmax(z: &mut [f64]) -> f64 {
    let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let mut s = 0.0;
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    z.iter_mut().for_each(|v| *v /= s);
    m + s.ln()
}

impl<T: Real> Logistic<T> {
    pub fn new(
        x_tr: Design<T>,
        l_tr: Vec<usize>,
        x_val: Design<T>,
        l_val: Vec<usize>,
        classes: usize,
        reg: f64,
    ) -> Result<Self> {
        if l_tr.len() != x_tr.rows() || l_val.len() != x_val.rows() || x_tr.cols() != x_val.cols() {
            return Err(OptError::InvalidInput("logistic problem: inconsistent shapes of X and labels".into()));
        }
        if classes < 2 || l_tr.iter().chain(&l_val).any(|&l| l >= classes) {
            return Err(OptError::InvalidInput("logistic problem: labels must be in 0..classes (classes >= 2)".into()));
        }
        if !(reg >= 0.0 && reg.is_finite()) {
            return Err(OptError::InvalidInput("logistic problem: reg must be finite and >= 0".into()));
        }
        Ok(Logistic { x_tr, l_tr, x_val, l_val, classes, reg })
    }

    /// `Σ_i c_i a_i (p_i − e_{l_i})ᵀ` (scaled by `1/|S|`) and the per-row cross-entropies.
    fn ce_grad(
        &self,
        x: &Design<T>,
        labels: &[usize],
        w: &[T],
        batch: Batch,
        weight: &(dyn Fn(usize) -> f64 + Sync),
    ) -> (Vec<f64>, Vec<f64>) {
        let k = self.classes;
        let m = batch_len(x.rows(), batch) as f64;
        let (mut g, ce) = block_sum(x.rows(), batch, x.cols() * k, |chunk, acc| {
            let mut z = vec![0.0; chunk.len() * k];
            x.rows_times(chunk, w, k, &mut z);
            let ce = chunk
                .iter()
                .zip(z.chunks_mut(k))
                .map(|(&i, zr)| {
                    let zl = zr[labels[i]];
                    let lse = softmax(zr);
                    zr[labels[i]] -= 1.0;
                    let c = weight(i);
                    zr.iter_mut().for_each(|v| *v *= c);
                    lse - zl
                })
                .collect();
            x.rows_outer(chunk, &z, k, acc);
            ce
        });
        g.iter_mut().for_each(|v| *v /= m);
        (g, ce)
    }
}

impl<T: Real> Oracle<T> for Logistic<T> {
    fn dims(&self) -> (usize, usize) {
        (self.x_tr.rows(), self.x_tr.cols() * self.classes)
    }
    fn n_samples(&self) -> (usize, usize) {
        (self.x_val.rows(), self.x_tr.rows())
    }
    fn grad_f(&self, _x: &[T], y: &[T], batch: Batch, gx: &mut [T], gy: &mut [T]) -> Result<()> {
        check_batch(self.x_val.rows(), batch, "upper-level")?;
        let (g, _) = self.ce_grad(&self.x_val, &self.l_val, y, batch, &|_| 1.0);
        store(&g, gy);
        gx.iter_mut().for_each(|v| *v = T::zero());
        Ok(())
    }
    fn grad_g(&self, x: &[T], ys: &[T], batch: Batch, mut gx: Option<&mut [T]>, gy: &mut [T]) -> Result<()> {
        check_batch(self.x_tr.rows(), batch, "lower-level")?;
        let (n, dy) = (self.x_tr.rows(), self.x_tr.cols() * self.classes);
        let m = batch_len(n, batch) as f64;
        let rows = rows_of(n, batch);
        for (b, w) in ys.chunks(dy).enumerate() {
            let (mut g, ce) = self.ce_grad(&self.x_tr, &self.l_tr, w, batch, &|i| sigmoid(x[i].as_f64()));
            g.iter_mut().zip(w).for_each(|(gj, wj)| *gj += self.reg * wj.as_f64());
            store(&g, &mut gy[b * dy..(b + 1) * dy]);
            if let Some(gxs) = gx.as_deref_mut() {
                let out = &mut gxs[b * n..(b + 1) * n];
                let mut acc = vec![0.0; n];
                for (&i, c) in rows.iter().zip(&ce) {
                    let s = sigmoid(x[i].as_f64());
                    acc[i] += s * (1.0 - s) * c / m;
                }
                store(&acc, out);
            }
        }
        Ok(())
    }
    fn analytic(&self) -> (bool, bool) {
        (true, true)
    }
    fn products(&self, at: Probe<'_, T>, hyy: Option<&mut [T]>, hxy: Option<&mut [T]>) -> Result<()> {
        let Probe { x, y, v, batch } = at;
        check_batch(self.x_tr.rows(), batch, "lower-level")?;
        let (n, k, xs) = (self.x_tr.rows(), self.classes, &self.x_tr);
        let m = batch_len(n, batch) as f64;
        let want_h = hyy.is_some();
        let (mut h, mixed) = block_sum(n, batch, if want_h { xs.cols() * k } else { 0 }, |chunk, acc| {
            let mut z = vec![0.0; chunk.len() * k];
            let mut s = vec![0.0; chunk.len() * k];
            xs.rows_times(chunk, y, k, &mut z);
            xs.rows_times(chunk, v, k, &mut s);
            let mixed = chunk
                .iter()
                .zip(z.chunks_mut(k).zip(s.chunks_mut(k)))
                .map(|(&i, (zr, sr))| {
                    softmax(zr);
                    let ps: f64 = zr.iter().zip(sr.iter()).map(|(a, b)| a * b).sum();
                    let sig = sigmoid(x[i].as_f64());
                    // (p − e_l)ᵀ s, before s is overwritten by u = σ_i (p ⊙ s − p (pᵀs)).
                    let mixed = sig * (1.0 - sig) * (ps - sr[self.l_tr[i]]);
                    for (sv, p) in sr.iter_mut().zip(zr.iter()) {
                        *sv = sig * p * (*sv - ps);
                    }
                    mixed
                })
                .collect();
            if want_h {
                xs.rows_outer(chunk, &s, k, acc);
            }
            mixed
        });
        if let Some(out) = hyy {
            h.iter_mut().zip(v).for_each(|(hj, vj)| *hj = *hj / m + self.reg * vj.as_f64());
            store(&h, out);
        }
        if let Some(out) = hxy {
            let mut acc = vec![0.0; n];
            for (&i, c) in rows_of(n, batch).iter().zip(&mixed) {
                acc[i] += c / m;
            }
            store(&acc, out);
        }
        Ok(())
    }
    fn value_f(&self, _x: &[T], y: &[T]) -> Option<Result<f64>> {
        let (_, ce) = self.ce_grad(&self.x_val, &self.l_val, y, None, &|_| 0.0);
        Some(Ok(ce.iter().sum::<f64>() / self.x_val.rows() as f64))
    }
    fn value_g(&self, x: &[T], y: &[T]) -> Option<Result<f64>> {
        let (_, ce) = self.ce_grad(&self.x_tr, &self.l_tr, y, None, &|_| 0.0);
        let s: f64 =
            ce.iter().enumerate().map(|(i, c)| sigmoid(x[i].as_f64()) * c).sum::<f64>() / self.x_tr.rows() as f64;
        Some(Ok(s + 0.5 * self.reg * y.iter().map(|w| w.as_f64().powi(2)).sum::<f64>()))
    }
}
