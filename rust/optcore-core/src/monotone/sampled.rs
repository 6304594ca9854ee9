//! Finite sums over the samples of a sparse data set ([`SampleSaddle`]), and the importance
//! sampler ([`Sampler`]) the variance-reduced methods draw their components with.
//!
//! This is the regime of Cai, Alacaoglu & Diakonikolas's complexity `O(N + √N L_ms/ε)` against
//! the deterministic `O(N L/ε)`: every component is a full-dimensional operator of one sample,
//! cheap (it reads one sparse row of each data matrix), and, drawn with probability
//! proportional to its Lipschitz constant `L_i`, the components' mean-square Lipschitz
//! constant is their mean, `L_ms = (1/N) Σ_i L_i`. When the samples share directions (an
//! intercept, frequent features), `F`'s own constant `L` is of the order of `L_ms`, so that
//! `√N L / L_ms`, the factor the variance reduction can save, grows like `√N`. Splitting a
//! dense operator by rows or columns ([`super::LinearSum`], [`super::GameSum`]) gives instead
//! `L_ms = √N L` or close to it: nothing to save.

use super::problems::FiniteSum;
use crate::alloc::{try_filled, try_with_capacity, try_zeroed};
use crate::error::{OptError, Result};
use crate::linalg::csr::Csr;
use crate::linalg::lanczos::tridiagonal_max_eig;
use crate::linalg::{dot, nrm2};
use crate::rng::Rng;

/// Draws component `i` with probability `π_i ∝ w_i` in `O(1)` (Walker's alias method, Vose's
/// construction) and gives its weight `1/(N π_i)`, so that `w_ξ F_ξ` is unbiased for
/// `F = (1/N) Σ_i F_i`. Components of weight 0 are never drawn.
pub struct Sampler {
    /// Per slot `i`: the probability of keeping `i`, its alias, and component `i`'s weight
    /// `1/(N π_i)` (one record, so that a draw reads one or two cache lines).
    slots: Vec<Slot>,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    prob: f64,
    weight: f64,
    alias: usize,
}

impl Sampler {
    /// From non-negative finite weights with a positive sum; all zero gives uniform sampling.
    pub fn new(w: &[f64]) -> Result<Self> {
        let n = w.len();
        if n == 0 || !w.iter().all(|v| v.is_finite() && *v >= 0.0) {
            return Err(OptError::InvalidInput("sampling weights must be finite and non-negative".into()));
        }
        let total: f64 = w.iter().sum();
        let uniform = !(total > 0.0 && total.is_finite());
        let nf = n as f64;
        let mut slots = try_filled(n, Slot::default(), "sampler")?;
        for (i, sl) in slots.iter_mut().enumerate() {
            sl.prob = if uniform { 1.0 } else { w[i] * nf / total };
            sl.weight = if uniform {
                1.0
            } else if w[i] > 0.0 {
                total / (nf * w[i])
            } else {
                0.0
            };
        }
        let mut small = try_with_capacity::<usize>(n, "sampler")?;
        let mut large = try_with_capacity::<usize>(n, "sampler")?;
        for (i, sl) in slots.iter().enumerate() {
            if sl.prob < 1.0 {
                small.push(i)
            } else {
                large.push(i)
            }
        }
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            slots[s].alias = l;
            slots[l].prob -= 1.0 - slots[s].prob;
            if slots[l].prob < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left is 1 up to rounding.
        for i in small.into_iter().chain(large) {
            slots[i].prob = 1.0;
            slots[i].alias = i;
        }
        Ok(Sampler { slots })
    }

    /// A component and its weight `1/(N π_i)`.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> (usize, f64) {
        let i = rng.below(self.slots.len());
        let sl = &self.slots[i];
        let j = if rng.uniform() < sl.prob { i } else { sl.alias };
        (j, self.slots[j].weight)
    }

    /// The probability of drawing component `i`.
    pub fn probability(&self, i: usize) -> f64 {
        let w = self.slots[i].weight;
        if w > 0.0 {
            1.0 / (w * self.slots.len() as f64)
        } else {
            0.0
        }
    }
}

/// A CSR matrix from user arrays (int64 indices), validated, allocated fallibly: `indptr`
/// non-decreasing from 0 to `nnz`, column indices in range and strictly increasing within each
/// row (no duplicates, so that row norms are those of the rows), finite values.
pub fn csr_from_parts(
    nrows: usize,
    ncols: usize,
    indptr: &[i64],
    indices: &[i64],
    data: &[f64],
    what: &str,
) -> Result<Csr> {
    let bad = |msg: String| Err(OptError::InvalidInput(format!("{what}: {msg}")));
    if indptr.len() != nrows + 1 || indices.len() != data.len() || indptr[0] != 0 || indptr[nrows] != data.len() as i64
    {
        return bad("the CSR arrays are inconsistent (indptr of length rows + 1 from 0 to nnz)".into());
    }
    if ncols > u32::MAX as usize {
        return bad(format!("{ncols} columns; at most 2^32 - 1 are supported"));
    }
    if !data.iter().all(|v| v.is_finite()) {
        return bad("NaN or infinite entries".into());
    }
    let mut ptr = try_with_capacity::<usize>(nrows + 1, what)?;
    let mut idx = try_with_capacity::<u32>(indices.len(), what)?;
    ptr.push(0);
    for i in 0..nrows {
        let (lo, hi) = (indptr[i], indptr[i + 1]);
        if lo > hi || hi > data.len() as i64 {
            return bad("indptr is not non-decreasing".into());
        }
        let mut prev = -1i64;
        for &j in &indices[lo as usize..hi as usize] {
            if j <= prev || j >= ncols as i64 {
                return bad(format!(
                    "row {i}: column indices must be in [0, {ncols}) and strictly increasing (sum duplicates first)"
                ));
            }
            prev = j;
            idx.push(j as u32);
        }
        ptr.push(hi as usize);
    }
    let mut val = try_with_capacity::<f64>(data.len(), what)?;
    val.extend_from_slice(data);
    Ok(Csr { nrows, ncols, indptr: ptr, indices: idx, data: val })
}

/// The transpose of `a`, allocated fallibly (rows of the result sorted by column of `a`).
fn transpose(a: &Csr, what: &str) -> Result<Csr> {
    if a.nrows > u32::MAX as usize {
        return Err(OptError::InvalidInput(format!("{what}: at most 2^32 - 1 rows are supported")));
    }
    let mut ptr = try_filled(a.ncols + 1, 0usize, what)?;
    for &j in &a.indices {
        ptr[j as usize + 1] += 1;
    }
    for j in 0..a.ncols {
        ptr[j + 1] += ptr[j];
    }
    let mut next = try_with_capacity::<usize>(a.ncols, what)?;
    next.extend_from_slice(&ptr[..a.ncols]);
    let mut idx = try_filled(a.data.len(), 0u32, what)?;
    let mut val = try_zeroed::<f64>(a.data.len(), what)?;
    for i in 0..a.nrows {
        for k in a.indptr[i]..a.indptr[i + 1] {
            let j = a.indices[k] as usize;
            idx[next[j]] = i as u32;
            val[next[j]] = a.data[k];
            next[j] += 1;
        }
    }
    Ok(Csr { nrows: a.ncols, ncols: a.nrows, indptr: ptr, indices: idx, data: val })
}

/// `out[j] += s Σ_k a_ik` over row `i`'s entries (`out` indexed by column).
#[inline]
fn row_axpy(a: &Csr, i: usize, s: f64, out: &mut [f64]) {
    let r = a.indptr[i]..a.indptr[i + 1];
    for (&j, &v) in a.indices[r.clone()].iter().zip(&a.data[r]) {
        out[j as usize] += s * v;
    }
}

/// The data of a [`SampleSaddle`]: rows `p_i` (regressors, `N x nx`), `q_i` (instruments or
/// test functions, `N x ny`), targets `c_i`, and the weights `α, β ≥ 0`.
pub struct SaddleData<'a> {
    pub p: Csr,
    pub q: Csr,
    pub c: &'a [f64],
    pub alpha: f64,
    pub beta: f64,
    /// `‖M‖₂` when known; else estimated by power iteration.
    pub lipschitz: Option<f64>,
}

/// `min_x max_y (1/N) Σ_i [ (α/2) u_i² + v_i u_i − (β/2) v_i² ]`, `u_i = p_iᵀx − c_i`,
/// `v_i = q_iᵀy`: the saddle form of linear instrumental-variable regression (GMM; `α = 0`,
/// `β = 1`, which is also policy evaluation's MSPBE with `q_i` the features and `p_i` their
/// discounted differences), with least squares blended in by `α`. Component `i` is the sample's
/// operator `F_i(x, y) = (p_i (α u_i + v_i), q_i (β v_i − u_i))`, monotone (its symmetric part
/// is `diag(α p_i p_iᵀ, β q_i q_iᵀ)`), affine, and reads two sparse rows; its Lipschitz
/// constant is exactly `‖[[α a², a b], [−a b, β b²]]‖₂` with `a = ‖p_i‖`, `b = ‖q_i‖`.
/// Components are drawn with probability `∝ L_i` ([`Sampler`]), so `L_ms = (1/N) Σ L_i`.
pub struct SampleSaddle {
    p: Csr,
    pt: Csr,
    q: Csr,
    qt: Csr,
    c: Vec<f64>,
    alpha: f64,
    beta: f64,
    lip: f64,
    lip_ms: f64,
    sampler: Sampler,
    /// Sample `i`'s rows `p_i` then `q_i`, stored together (`rows[seg_i.0..]`, `seg_i.1`
    /// entries of `p_i`, `seg_i.2` of `q_i`): a drawn component reads one record and a few
    /// adjacent cache lines instead of six arrays (the CSR matrices serve the full passes).
    rows: Vec<Entry>,
    seg: Vec<Segment>,
    /// `F(0) = (−α Pᵀc, Qᵀc)/N`.
    f0: Vec<f64>,
    /// `(P x, Q y)` of the last full evaluation (length `N` each).
    scratch: std::sync::Mutex<(Vec<f64>, Vec<f64>)>,
}

/// Asks the processor to bring the cache line at `ptr` in (a hint: no access is made, so any
/// address is allowed).
#[inline(always)]
fn prefetch(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unused_unsafe)]
    // SAFETY: a prefetch never faults and reads nothing observable, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// A stored entry of a packed row: column and value.
#[derive(Clone, Copy, Default)]
struct Entry {
    j: u32,
    v: f64,
}

/// Where sample `i`'s packed rows start, and how many entries `p_i` and `q_i` have.
type Segment = (usize, u32, u32);

/// The packed rows of the samples (see [`SampleSaddle`]'s `rows`).
fn pack(p: &Csr, q: &Csr) -> Result<(Vec<Entry>, Vec<Segment>)> {
    let n = p.nrows;
    let mut rows = try_with_capacity::<Entry>(p.data.len() + q.data.len(), "sample saddle rows")?;
    let mut seg = try_with_capacity::<Segment>(n, "sample saddle rows")?;
    for i in 0..n {
        let (rp, rq) = (p.indptr[i]..p.indptr[i + 1], q.indptr[i]..q.indptr[i + 1]);
        if rp.len() > u32::MAX as usize || rq.len() > u32::MAX as usize {
            return Err(OptError::InvalidInput("sample saddle: a row has 2^32 or more entries".into()));
        }
        seg.push((rows.len(), rp.len() as u32, rq.len() as u32));
        rows.extend(p.indices[rp.clone()].iter().zip(&p.data[rp]).map(|(&j, &v)| Entry { j, v }));
        rows.extend(q.indices[rq.clone()].iter().zip(&q.data[rq]).map(|(&j, &v)| Entry { j, v }));
    }
    Ok((rows, seg))
}

/// The spectral norm of the 2 x 2 matrix `[[a, b], [c, d]]`.
fn norm2x2(a: f64, b: f64, c: f64, d: f64) -> f64 {
    let f2 = a * a + b * b + c * c + d * d;
    let det = a * d - b * c;
    ((f2 + (f2 * f2 - 4.0 * det * det).max(0.0).sqrt()) / 2.0).sqrt()
}

/// Lanczos steps at most for `‖M‖₂`.
const LANCZOS_MAX: usize = 1000;
/// The estimate (from below) is raised by this factor, so that steps set from it stay safe.
const NORM_MARGIN: f64 = 1.01;

impl SampleSaddle {
    pub fn new(data: SaddleData<'_>) -> Result<Self> {
        let SaddleData { p, q, c, alpha, beta, lipschitz } = data;
        let n = p.nrows;
        if n == 0 || q.nrows != n || c.len() != n {
            return Err(OptError::InvalidInput(format!(
                "sample saddle: P and Q must have the same number N >= 1 of rows (samples) and c length N; got {}, {} \
                 and {}",
                p.nrows,
                q.nrows,
                c.len()
            )));
        }
        if p.ncols == 0 || q.ncols == 0 {
            return Err(OptError::InvalidInput("sample saddle: P and Q need at least one column each".into()));
        }
        let finite = c.iter().all(|v| v.is_finite());
        if !(alpha >= 0.0 && alpha.is_finite() && beta >= 0.0 && beta.is_finite() && finite) {
            return Err(OptError::InvalidInput("sample saddle: alpha, beta must be finite and >= 0, c finite".into()));
        }
        let pt = transpose(&p, "sample saddle P^T")?;
        let qt = transpose(&q, "sample saddle Q^T")?;
        let mut li = try_zeroed::<f64>(n, "sample saddle")?;
        for (i, l) in li.iter_mut().enumerate() {
            let a = nrm2(&p.data[p.indptr[i]..p.indptr[i + 1]]);
            let b = nrm2(&q.data[q.indptr[i]..q.indptr[i + 1]]);
            *l = norm2x2(alpha * a * a, a * b, -a * b, beta * b * b);
        }
        if !li.iter().all(|v| v.is_finite()) {
            return Err(OptError::InvalidInput("sample saddle: the rows' norms overflow".into()));
        }
        let lip_ms = li.iter().sum::<f64>() / n as f64;
        let sampler = Sampler::new(&li)?;
        let scratch = std::sync::Mutex::new((try_zeroed(n, "sample saddle")?, try_zeroed(n, "sample saddle")?));
        let c = {
            let mut v = try_with_capacity(n, "sample saddle")?;
            v.extend_from_slice(c);
            v
        };
        let mut f0 = try_zeroed::<f64>(p.ncols + q.ncols, "sample saddle")?;
        {
            let inv = 1.0 / n as f64;
            let (fx, fy) = f0.split_at_mut(p.ncols);
            for (i, &ci) in c.iter().enumerate() {
                if ci != 0.0 {
                    row_axpy(&p, i, -alpha * ci * inv, fx);
                    row_axpy(&q, i, ci * inv, fy);
                }
            }
        }
        let (rows, seg) = pack(&p, &q)?;
        let mut s = SampleSaddle { p, pt, q, qt, c, alpha, beta, lip: 0.0, lip_ms, sampler, rows, seg, f0, scratch };
        s.lip = match lipschitz {
            Some(l) if l > 0.0 && l.is_finite() => l,
            Some(l) => return Err(OptError::InvalidInput(format!("sample saddle: lipschitz must be > 0; got {l}"))),
            None => s.lanczos_norm()?,
        };
        Ok(s)
    }

    pub fn nx(&self) -> usize {
        self.p.ncols
    }

    /// Sample `i`'s packed rows `(p_i, q_i)`.
    #[inline]
    fn sample_rows(&self, i: usize) -> (&[Entry], &[Entry]) {
        let (start, np, nq) = self.seg[i];
        self.rows[start..start + np as usize + nq as usize].split_at(np as usize)
    }

    /// `out += (a p_i, b q_i)`.
    #[inline]
    fn scatter(&self, (ep, eq): (&[Entry], &[Entry]), a: f64, b: f64, out: &mut [f64]) {
        let (ox, oy) = out.split_at_mut(self.nx());
        for e in ep {
            ox[e.j as usize] += a * e.v;
        }
        for e in eq {
            oy[e.j as usize] += b * e.v;
        }
    }

    /// The Lipschitz constants' sampler.
    pub fn sampler_ref(&self) -> &Sampler {
        &self.sampler
    }

    /// `out = M z` (`transpose`: `Mᵀ z`), `M` the linear part of `F`.
    fn apply(&self, z: &[f64], out: &mut [f64], transpose: bool) {
        let nx = self.nx();
        let (x, y) = z.split_at(nx);
        let (ox, oy) = out.split_at_mut(nx);
        let mut g = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let (u, v) = &mut *g;
        self.p.matvec(x, u);
        self.q.matvec(y, v);
        let sgn = if transpose { -1.0 } else { 1.0 };
        for (a, b) in u.iter_mut().zip(v.iter_mut()) {
            let (uu, vv) = (*a, *b);
            *a = self.alpha * uu + sgn * vv;
            *b = self.beta * vv - sgn * uu;
        }
        self.pt.matvec(u, ox);
        self.qt.matvec(v, oy);
        let inv = 1.0 / self.p.nrows as f64;
        out.iter_mut().for_each(|o| *o *= inv);
    }

    /// `‖M‖₂` from Lanczos on `MᵀM` (no reorthogonalisation: its largest Ritz value converges
    /// from below, in far fewer products than the power iteration), stopped when it has not
    /// moved by 1e-10 relatively over 10 steps, raised by [`NORM_MARGIN`] (as the LP solver's
    /// `spectral_norm`).
    fn lanczos_norm(&self) -> Result<f64> {
        let d = self.dim();
        let mut q = try_zeroed::<f64>(d, "Lanczos")?;
        let mut q_prev = try_zeroed::<f64>(d, "Lanczos")?;
        let mut w = try_zeroed::<f64>(d, "Lanczos")?;
        let mut mq = try_zeroed::<f64>(d, "Lanczos")?;
        q.iter_mut().enumerate().for_each(|(j, v)| *v = 1.0 + ((j * 7919) % 97) as f64 / 97.0);
        let nq = nrm2(&q);
        q.iter_mut().for_each(|v| *v /= nq);
        let (mut alpha, mut beta, mut history) = (Vec::new(), Vec::new(), Vec::new());
        let mut theta = 0.0f64;
        for _ in 0..d.min(LANCZOS_MAX) {
            self.apply(&q, &mut mq, false);
            self.apply(&mq, &mut w, true);
            let al = dot(&q, &w);
            let bp = beta.last().copied().unwrap_or(0.0);
            for ((wj, qj), pj) in w.iter_mut().zip(&q).zip(&q_prev) {
                *wj -= al * qj + bp * pj;
            }
            alpha.push(al);
            theta = tridiagonal_max_eig(&alpha, &beta);
            let b = nrm2(&w);
            history.push(theta);
            let k = history.len();
            if !theta.is_finite()
                || b <= 1e-13 * theta.max(f64::MIN_POSITIVE)
                || (k > 10 && theta - history[k - 11] <= 1e-10 * theta)
            {
                break;
            }
            beta.push(b);
            std::mem::swap(&mut q_prev, &mut q);
            q.iter_mut().zip(&w).for_each(|(qj, wj)| *qj = wj / b);
        }
        let est = theta.max(0.0).sqrt();
        if !(est > 0.0 && est.is_finite()) {
            return Err(OptError::InvalidInput(
                "sample saddle: the operator is zero or not finite (every row of P and Q empty?)".into(),
            ));
        }
        Ok(est * NORM_MARGIN)
    }
}

impl FiniteSum for SampleSaddle {
    fn dim(&self) -> usize {
        self.p.ncols + self.q.ncols
    }
    fn n(&self) -> usize {
        self.p.nrows
    }
    fn add_component(&self, i: usize, z: &[f64], s: f64, out: &mut [f64]) -> Result<()> {
        let (ep, eq) = self.sample_rows(i);
        let nx = self.nx();
        let (x, y) = z.split_at(nx);
        let u = ep.iter().map(|e| e.v * x[e.j as usize]).sum::<f64>() - self.c[i];
        let v = eq.iter().map(|e| e.v * y[e.j as usize]).sum::<f64>();
        self.scatter((ep, eq), s * (self.alpha * u + v), s * (self.beta * v - u), out);
        Ok(())
    }
    fn add_component_diff(&self, i: usize, u: &[f64], w: &[f64], s: f64, out: &mut [f64]) -> Result<()> {
        let (ep, eq) = self.sample_rows(i);
        let nx = self.nx();
        let (ux, uy) = u.split_at(nx);
        let (wx, wy) = w.split_at(nx);
        let du = ep.iter().map(|e| e.v * (ux[e.j as usize] - wx[e.j as usize])).sum::<f64>();
        let dv = eq.iter().map(|e| e.v * (uy[e.j as usize] - wy[e.j as usize])).sum::<f64>();
        self.scatter((ep, eq), s * (self.alpha * du + dv), s * (self.beta * dv - du), out);
        Ok(())
    }
    fn full(&self, z: &[f64], out: &mut [f64]) -> Result<()> {
        self.apply(z, out, false);
        out.iter_mut().zip(&self.f0).for_each(|(o, &f)| *o += f);
        Ok(())
    }
    fn project(&self, _z: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn lipschitz(&self) -> f64 {
        self.lip
    }
    fn lipschitz_ms(&self) -> f64 {
        self.lip_ms
    }
    fn sampler(&self) -> Option<&Sampler> {
        Some(&self.sampler)
    }
    fn prefetch(&self, i: usize, stage: usize) {
        if stage == 0 {
            prefetch(self.seg.as_ptr().wrapping_add(i) as *const u8);
        } else if let Some(&(start, np, nq)) = self.seg.get(i) {
            // a cache line holds 4 entries
            for k in (start..start + np as usize + nq as usize).step_by(4) {
                prefetch(self.rows.as_ptr().wrapping_add(k) as *const u8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_csr(rng: &mut Rng, n: usize, d: usize, k: usize) -> Csr {
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                let mut r = vec![0.0; d];
                for _ in 0..k {
                    r[rng.below(d)] = rng.normal();
                }
                r
            })
            .collect();
        let refs: Vec<&[f64]> = rows.iter().map(|r| r.as_slice()).collect();
        Csr::from_dense(&refs)
    }

    #[test]
    fn components_average_to_the_full_operator_and_the_constants_bound_them() {
        let mut rng = Rng::new(11);
        let (n, nx, ny) = (40, 7, 5);
        let p = random_csr(&mut rng, n, nx, 3);
        let q = random_csr(&mut rng, n, ny, 2);
        let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let s = SampleSaddle::new(SaddleData { p, q, c: &c, alpha: 0.7, beta: 1.3, lipschitz: None }).unwrap();
        let z: Vec<f64> = (0..nx + ny).map(|_| rng.normal()).collect();
        let w: Vec<f64> = (0..nx + ny).map(|_| rng.normal()).collect();
        let mut full = vec![0.0; nx + ny];
        s.full(&z, &mut full).unwrap();
        let mut avg = vec![0.0; nx + ny];
        for i in 0..n {
            s.add_component(i, &z, 1.0 / n as f64, &mut avg).unwrap();
        }
        for (a, b) in full.iter().zip(&avg) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        // Importance-weighted differences: E ‖w_ξ (F_ξ(z) − F_ξ(w))‖² ≤ L_ms² ‖z − w‖².
        let mut second = 0.0;
        for i in 0..n {
            let pi = s.sampler.probability(i);
            if pi == 0.0 {
                continue;
            }
            let mut d = vec![0.0; nx + ny];
            s.add_component_diff(i, &z, &w, 1.0 / (n as f64 * pi), &mut d).unwrap();
            second += pi * d.iter().map(|v| v * v).sum::<f64>();
        }
        let dz2: f64 = z.iter().zip(&w).map(|(a, b)| (a - b) * (a - b)).sum();
        assert!(second <= s.lipschitz_ms().powi(2) * dz2 * (1.0 + 1e-12));
        // ‖F(z) − F(w)‖ ≤ L ‖z − w‖, and L is within the margin of the largest ratio seen.
        let mut fw = vec![0.0; nx + ny];
        s.full(&w, &mut fw).unwrap();
        let df: f64 = full.iter().zip(&fw).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
        assert!(df <= s.lipschitz() * dz2.sqrt());
    }

    #[test]
    fn the_alias_sampler_draws_in_proportion() {
        let w = [0.0, 1.0, 3.0, 0.5, 0.0, 5.5];
        let s = Sampler::new(&w).unwrap();
        let mut rng = Rng::new(1);
        let mut count = [0usize; 6];
        let draws = 200_000;
        for _ in 0..draws {
            let (i, wt) = s.sample(&mut rng);
            count[i] += 1;
            assert!((wt - 10.0 / (6.0 * w[i])).abs() < 1e-12);
        }
        for i in 0..6 {
            let f = count[i] as f64 / draws as f64;
            assert!((f - w[i] / 10.0).abs() < 0.005, "{i}: {f}");
        }
        assert!(Sampler::new(&[1.0, f64::NAN]).is_err());
    }

    #[test]
    fn bad_csr_parts_are_errors() {
        assert!(csr_from_parts(2, 3, &[0, 1, 2], &[0, 3], &[1.0, 1.0], "P").is_err());
        assert!(csr_from_parts(1, 3, &[0, 2], &[1, 1], &[1.0, 1.0], "P").is_err());
        assert!(csr_from_parts(1, 3, &[0, 2], &[2, 1], &[1.0, 1.0], "P").is_err());
        assert!(csr_from_parts(1, 3, &[0, 1], &[1], &[f64::NAN], "P").is_err());
        assert!(csr_from_parts(2, 3, &[0, 2, 1], &[0, 1], &[1.0, 1.0], "P").is_err());
        assert!(csr_from_parts(1, 3, &[0, 2], &[0, 2], &[1.0, 1.0], "P").is_ok());
    }
}
