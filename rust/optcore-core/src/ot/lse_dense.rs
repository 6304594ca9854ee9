//! A dense cost as a [`LogKernel`]: the log-sum-exps of the log-domain loop computed by
//! scalings of a stored kernel (the stabilised form of [`super::sinkhorn`]).
//!
//! The operator stores `K_ij = exp(fb_i + gb_j - M_ij / reg)` for reference potentials
//! `(fb, gb)` (in units of `1/reg`). Then `LSE_j(h_j - M_ij / reg) = ln(sum_j K_ij v_j) - fb_i`
//! with `v_j = exp(h_j - gb_j)`: a multiply-add pass over `K` instead of one `exp` per entry.
//! When a scaling leaves `[lo, hi]` the kernel is rebuilt around the current potentials (the
//! last ones seen on each side: an absorption), so every stored number stays in range; a row or
//! column whose sum under- or overflows is computed exactly (max-shifted log-sum-exp over `M`).
//! Rows are independent and column sums are per-row-block partials added in block order, so
//! results do not depend on the number of threads.

use super::grid::{lse_dispatch, simd};
use super::sinkhorn::reduce_blocks;
use super::unbalanced::{LogKernel, Sums};
use crate::error::{OptError, Result};
use crate::parallel::row_block;
use crate::real::{Real, Unfused};
use rayon::prelude::*;

/// A dense row-major `n x m` cost as a [`LogKernel`] (see the module docs).
pub struct DenseOperator<'c, T> {
    cost: &'c [T],
    n: usize,
    m: usize,
    inv: f64,
    kern: Vec<T>,
    fb: Vec<f64>,
    gb: Vec<f64>,
    built: bool,
    /// The last potentials seen on each side, in the units of the cost (None: not yet).
    last_f: Option<Vec<f64>>,
    last_g: Option<Vec<f64>>,
    partials: Vec<f64>,
    scale: Vec<T>,
    /// Number of kernel rebuilds.
    pub rebuilds: usize,
}

impl<'c, T: Real> DenseOperator<'c, T> {
    pub fn new(cost: &'c [T], n: usize, m: usize) -> Result<Self> {
        let len = crate::alloc::checked_len(n, m, "the kernel")?;
        if cost.len() != len {
            return Err(OptError::InvalidInput("the cost has the wrong length".into()));
        }
        if !cost.iter().all(|x| x.is_finite()) {
            return Err(OptError::InvalidInput("M must be finite".into()));
        }
        let nb = n.div_ceil(row_block(n.max(1)));
        Ok(DenseOperator {
            cost,
            n,
            m,
            inv: 1.0,
            kern: crate::alloc::try_zeroed::<T>(len, "the kernel")?,
            fb: vec![0.0; n],
            gb: vec![0.0; m],
            built: false,
            last_f: None,
            last_g: None,
            partials: crate::alloc::try_zeroed::<f64>(
                crate::alloc::checked_len(nb, m, "the column sums")?,
                "the column sums",
            )?,
            scale: vec![T::zero(); n.max(m)],
            rebuilds: 0,
        })
    }

    /// The range the scalings must stay in (f32: narrower, as in the dense log solver).
    fn range() -> (f64, f64) {
        if T::SAFE_LO < 1e-100 {
            (1e-100, 1e100)
        } else {
            (1e-6, 1e6)
        }
    }

    /// Rebuilds `K` around the last potentials (in `1/reg` units; a side never seen, or a
    /// `-inf` entry, is normalised so that its row's or column's largest entry is 1).
    fn rebuild(&mut self) {
        let (n, m, inv) = (self.n, self.m, self.inv);
        let cost = self.cost;
        let gb: Vec<f64> = match &self.last_g {
            Some(g) => g.iter().map(|&x| x * inv).collect(),
            None => vec![0.0; m],
        };
        let mut fb: Vec<f64> = match &self.last_f {
            Some(f) => f.iter().map(|&x| x * inv).collect(),
            None => vec![f64::NEG_INFINITY; n],
        };
        let gfin: Vec<f64> = gb.iter().map(|&g| if g.is_finite() { g } else { 0.0 }).collect();
        fb.par_iter_mut().enumerate().for_each(|(i, f)| {
            if !f.is_finite() {
                let row = &cost[i * m..(i + 1) * m];
                let mx = row.iter().zip(&gfin).fold(f64::NEG_INFINITY, |acc, (&c, &g)| acc.max(g - c.as_f64() * inv));
                *f = -mx;
            }
        });
        let mut gb = gfin;
        for (j, g) in gb.iter_mut().enumerate() {
            if self.last_g.as_ref().is_none_or(|lg| !lg[j].is_finite()) {
                let mx = (0..n).fold(f64::NEG_INFINITY, |acc, i| acc.max(fb[i] - cost[i * m + j].as_f64() * inv));
                *g = -mx;
            }
        }
        let (fbr, gbr) = (&fb, &gb);
        self.kern.par_chunks_mut(m).zip(cost.par_chunks(m)).enumerate().for_each(|(i, (krow, crow))| {
            for ((k, &c), &g) in krow.iter_mut().zip(crow).zip(gbr) {
                *k = T::from_f64((fbr[i] + g - c.as_f64() * inv).fast_exp::<Unfused>());
            }
        });
        self.fb = fb;
        self.gb = gb;
        self.built = true;
        self.rebuilds += 1;
    }

    /// `scale = exp(h - base)` (0 where `h` is `-inf`); false when one leaves the range.
    fn scalings(h: &[T], base: &[f64], scale: &mut [T]) -> bool {
        let (lo, hi) = Self::range();
        let mut ok = true;
        for ((s, &x), &b) in scale.iter_mut().zip(h).zip(base) {
            let x = x.as_f64();
            if x == f64::NEG_INFINITY {
                *s = T::zero();
                continue;
            }
            let v = (x - b).exp();
            ok &= (lo..=hi).contains(&v);
            *s = T::from_f64(v);
        }
        ok
    }

    /// Exact `LSE_i(h_i - M_ij inv)` of column `j` (a fallback).
    fn exact_col(&self, h: &[T], j: usize) -> T {
        let col: Vec<T> = (0..self.n).map(|i| self.cost[i * self.m + j]).collect();
        let mut z = vec![T::zero(); self.n];
        lse_dispatch(simd(), h, &col, T::from_f64(-self.inv), &mut z)
    }
}

impl<T: Real> LogKernel<T> for DenseOperator<'_, T> {
    fn n(&self) -> usize {
        self.n
    }
    fn m(&self) -> usize {
        self.m
    }
    fn cost_range(&self) -> f64 {
        let (lo, hi) = self
            .cost
            .par_chunks(1 << 16)
            .map(|c| {
                c.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(x.as_f64()), h.max(x.as_f64())))
            })
            .reduce(|| (f64::INFINITY, f64::NEG_INFINITY), |(a, b), (c, d)| (a.min(c), b.max(d)));
        hi - lo
    }
    fn set_reg(&mut self, reg: f64) -> Result<()> {
        self.inv = 1.0 / reg;
        self.built = false;
        Ok(())
    }
    fn rows(&mut self, h: &[T], out: &mut [T]) {
        let reg = 1.0 / self.inv;
        self.last_g = Some(h.iter().map(|&x| x.as_f64() * reg).collect());
        let mut scale = std::mem::take(&mut self.scale);
        if !self.built || !Self::scalings(h, &self.gb, &mut scale[..self.m]) {
            self.rebuild();
            Self::scalings(h, &self.gb, &mut scale[..self.m]);
        }
        let (m, inv, fast) = (self.m, self.inv, simd());
        let v = &scale[..m];
        let (kern, cost, fb) = (&self.kern, self.cost, &self.fb);
        out.par_chunks_mut(32).enumerate().for_each_init(
            || vec![T::zero(); m],
            |z, (c, ob)| {
                for (l, o) in ob.iter_mut().enumerate() {
                    let i = c * 32 + l;
                    let s = dot(&kern[i * m..(i + 1) * m], v);
                    *o = if (T::SAFE_LO..=T::SAFE_HI).contains(&s) {
                        T::from_f64(s.ln() - fb[i])
                    } else {
                        lse_dispatch(fast, h, &cost[i * m..(i + 1) * m], T::from_f64(-inv), z)
                    };
                }
            },
        );
        self.scale = scale;
    }
    fn cols(&mut self, h: &[T], out: &mut [T]) {
        let reg = 1.0 / self.inv;
        self.last_f = Some(h.iter().map(|&x| x.as_f64() * reg).collect());
        let mut scale = std::mem::take(&mut self.scale);
        if !self.built || !Self::scalings(h, &self.fb, &mut scale[..self.n]) {
            self.rebuild();
            Self::scalings(h, &self.fb, &mut scale[..self.n]);
        }
        let (n, m) = (self.n, self.m);
        let rb = row_block(n);
        let u = &scale[..n];
        self.kern.par_chunks(rb * m).zip(u.par_chunks(rb)).zip(self.partials.par_chunks_mut(m)).for_each(
            |((kb, ub), acc)| {
                acc.iter_mut().for_each(|x| *x = 0.0);
                for (krow, &ui) in kb.chunks_exact(m).zip(ub) {
                    if ui == T::zero() {
                        continue;
                    }
                    let ui = ui.as_f64();
                    for (a, &k) in acc.iter_mut().zip(krow) {
                        *a += ui * k.as_f64();
                    }
                }
            },
        );
        let mut colsum = vec![0.0; m];
        reduce_blocks(&self.partials, m, &mut colsum);
        for (j, (o, &s)) in out.iter_mut().zip(&colsum).enumerate() {
            *o = if (T::SAFE_LO..=T::SAFE_HI).contains(&s) {
                T::from_f64(s.ln() - self.gb[j])
            } else {
                self.exact_col(h, j)
            };
        }
        self.scale = scale;
    }
    fn measure(&mut self, fs: &[f64], gs: &[f64], reg: f64) -> Result<Sums> {
        let (n, m) = (self.n, self.m);
        let rb = row_block(n);
        let inv = 1.0 / reg;
        let mut partials = vec![0.0; self.partials.len()];
        let mut rows = vec![0.0; n];
        let costs: Vec<f64> = self
            .cost
            .par_chunks(rb * m)
            .zip(fs.par_chunks(rb))
            .zip(rows.par_chunks_mut(rb))
            .zip(partials.par_chunks_mut(m))
            .map(|(((mr, fb), rsb), acc)| {
                let mut cost = 0.0;
                for ((row, &fi), rs) in mr.chunks_exact(m).zip(fb).zip(rsb.iter_mut()) {
                    if fi == f64::NEG_INFINITY {
                        continue;
                    }
                    for ((&c, &gj), a) in row.iter().zip(gs).zip(acc.iter_mut()) {
                        let c = c.as_f64();
                        let p = if gj == f64::NEG_INFINITY { 0.0 } else { (fi + gj - c * inv).fast_exp::<Unfused>() };
                        *rs += p;
                        *a += p;
                        cost += p * c;
                    }
                }
                cost
            })
            .collect();
        let mut cols = vec![0.0; m];
        reduce_blocks(&partials, m, &mut cols);
        Ok(Sums { rows, cols, cost: costs.iter().sum() })
    }
}

/// `sum_j k_j v_j` in f64 (8 partial sums, vectorisable).
#[inline]
fn dot<T: Real>(k: &[T], v: &[T]) -> f64 {
    const L: usize = 8;
    let mut acc = [0f64; L];
    let (mut kc, mut vc) = (k.chunks_exact(L), v.chunks_exact(L));
    for (kr, vr) in (&mut kc).zip(&mut vc) {
        for l in 0..L {
            acc[l] += (kr[l] * vr[l]).as_f64();
        }
    }
    for (&a, &b) in kc.remainder().iter().zip(vc.remainder()) {
        acc[0] += (a * b).as_f64();
    }
    acc.iter().sum()
}
