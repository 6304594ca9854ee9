//! The fused iteration of [`DenseOperator`] ([`LogKernel::rows_cols`]): one read of the stored
//! kernel per Sinkhorn iteration instead of two.
//!
//! Each block of `row_block(n)` rows (the column pass's blocks) is swept once: for each row, its
//! scaled sum against the column scalings (the row pass, two rows at a time as there), the
//! caller's update of that row's potential, its scaling `exp(f_i / reg - fb_i)`, and that row's
//! share of the block's column sums, added while the row is still in cache. Every number is
//! computed by the same operations in the same order as the unfused passes (rows, the update,
//! then the column pass over the same blocks), so the results are bit-identical; when a new
//! scaling leaves the range (the unfused column pass would rebuild the kernel first) the block
//! sums are dropped and the column pass runs unfused, as before.

use super::{pass, row_lse, DenseOperator, PAR_MIN};
use crate::ot::grid::simd;
use crate::ot::unbalanced::{LogKernel, RowUpdate};
use crate::parallel::row_block;
use crate::real::Real;
use rayon::prelude::*;

/// One block of the fused sweep: `(block index, ((((kernel rows, lse), f), f / reg), column
/// partials))`.
type Block<'a, T> = (usize, ((((&'a [T], &'a mut [T]), &'a mut [T]), &'a mut [T]), &'a mut [f64]));

impl<T: Real> DenseOperator<'_, T> {
    /// See the module docs and [`LogKernel::rows_cols`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fused(
        &mut self,
        hm: &[T],
        lse_n: &mut [T],
        upd: RowUpdate<'_, T>,
        reg: f64,
        f: &mut [T],
        hn: &mut [T],
        lse_m: &mut [T],
    ) {
        let scale = self.row_scalings(hm);
        let (n, m, inv, fast) = (self.n, self.m, self.inv, simd());
        let rb = row_block(n);
        // As `scaled` computes `f / reg`.
        let hinv = 1.0 / reg;
        let v = &scale[..m];
        let (kern, cost, fb) = (&self.kern, self.cost, &self.fb);
        let block = |z: &mut Vec<T>, (c, ((((kb, lb), fk), hk), acc)): Block<'_, T>| -> bool {
            acc.iter_mut().for_each(|x| *x = 0.0);
            let (i0, rows) = (c * rb, lb.len());
            let mut ok = true;
            let mut row = |z: &mut Vec<T>, r: usize, s: f64, acc: &mut [f64]| {
                let i = i0 + r;
                let l = row_lse(z, hm, &cost[i * m..(i + 1) * m], inv, fb[i], s);
                lb[r] = l;
                let fi = upd(i, l);
                fk[r] = fi;
                let h = T::from_f64(fi.as_f64() * hinv);
                hk[r] = h;
                let (u, in_range) = Self::scaling(h, fb[i]);
                ok &= in_range;
                if in_range && u != T::zero() {
                    pass::axpy(fast, acc, &kb[r * m..(r + 1) * m], u.as_f64());
                }
            };
            let mut r = 0;
            while r + 1 < rows {
                let (s0, s1) = pass::dot2(fast, &kb[r * m..(r + 1) * m], &kb[(r + 1) * m..(r + 2) * m], v);
                row(z, r, s0, acc);
                row(z, r + 1, s1, acc);
                r += 2;
            }
            if r < rows {
                row(z, r, pass::dot(fast, &kb[r * m..(r + 1) * m], v), acc);
            }
            ok
        };
        let par = n * m >= PAR_MIN;
        let partials = &mut self.partials;
        let ok = if par {
            kern.par_chunks(rb * m)
                .zip(lse_n.par_chunks_mut(rb))
                .zip(f.par_chunks_mut(rb))
                .zip(hn.par_chunks_mut(rb))
                .zip(partials.par_chunks_mut(m))
                .enumerate()
                .map_init(Vec::new, block)
                .collect::<Vec<bool>>()
                .iter()
                .all(|&x| x)
        } else {
            let mut z = Vec::new();
            let mut ok = true;
            for t in kern
                .chunks(rb * m)
                .zip(lse_n.chunks_mut(rb))
                .zip(f.chunks_mut(rb))
                .zip(hn.chunks_mut(rb))
                .zip(partials.chunks_mut(m))
                .enumerate()
            {
                ok &= block(&mut z, t);
            }
            ok
        };
        self.scale = scale;
        if !ok {
            // A scaling left the range: the column pass rebuilds the kernel around `f` first.
            return self.cols(hn, lse_m);
        }
        let kreg = 1.0 / self.inv;
        super::remember(&mut self.last_f, hn, kreg);
        self.col_lse(hn, lse_m, par);
    }
}
