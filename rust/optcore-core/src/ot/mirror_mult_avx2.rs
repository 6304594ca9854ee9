//! The stored-plan pass compiled with AVX2 and FMA; f64 rows in intrinsics.
//!
//! The compiler vectorises the portable row loops (`Lanes`) only in part (scalar fused
//! multiply-adds beside the packed ones). [`Avx2F64`] writes the two loops of a row (its sum
//! and its update, with the average's blend) in 256-bit intrinsics with the same operations on each entry as `Lanes<Fused>`: the same products in
//! the same order, one fused multiply-add per term of the sum into the same eight partial sums
//! (lanes 0-3 and 4-7 of two registers, the tail in lane 0), added in the same order, and the
//! same comparison for the stored zeros. Every bit of the result is the one of the portable
//! loops (`tests::avx2_rows_match_the_portable_rows` checks it on random rows, tails and
//! zeros included, and the iterate hashes of `benches/iterate_hashes.py` are unchanged).
//! f32 passes keep the portable loops.

use super::*;
use crate::real::Fused;
use std::any::TypeId;
use std::arch::x86_64::*;

/// `x` as f64 (`T` is f64: the caller checked).
pub(super) fn as_f64<T: Real>(x: &[T]) -> &[f64] {
    assert!(TypeId::of::<T>() == TypeId::of::<f64>());
    // SAFETY: `T` is `f64` (checked above): same layout, same length.
    unsafe { &*(x as *const [T] as *const [f64]) }
}

fn as_f64_mut<T: Real>(x: &mut [T]) -> &mut [f64] {
    assert!(TypeId::of::<T>() == TypeId::of::<f64>());
    // SAFETY: as in `as_f64`.
    unsafe { &mut *(x as *mut [T] as *mut [f64]) }
}

impl<'a, T: Real> Block<'a, T> {
    /// The same block typed as f64 when `T` is f64, else itself back.
    pub(super) fn into_f64(self) -> std::result::Result<Block<'a, f64>, Self> {
        if TypeId::of::<T>() != TypeId::of::<f64>() {
            return Err(self);
        }
        let Block { q, e, cost, avg, a, ln_alpha, colacc } = self;
        Ok(Block {
            q: as_f64_mut(q),
            e: as_f64_mut(e),
            cost: as_f64(cost),
            avg: as_f64_mut(avg),
            a: as_f64(a),
            ln_alpha,
            colacc,
        })
    }
}

impl<T: Real> Weights<T> {
    /// The same weights in f64 (exact when `T` is f64, the only use).
    pub(super) fn to_f64(self) -> Weights<f64> {
        let f = |x: T| x.as_f64();
        Weights {
            w0: f(self.w0),
            small0: f(self.small0),
            w1: f(self.w1),
            small1: f(self.small1),
            small: f(self.small),
            rebuild: self.rebuild.map(|(x, y)| (f(x), f(y))),
        }
    }
}

/// The portable pass with fused multiply-adds (f32).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn pass_block<T: Real, const ROW: bool, const COL: bool, const AVG: bool>(
    blk: Block<'_, T>,
    beta: &[T],
    w: &Weights<T>,
) -> bool {
    super::pass_block::<T, Lanes<Fused>, ROW, COL, AVG>(blk, beta, w)
}

/// The f64 pass, its rows in intrinsics.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn pass_block_f64<const ROW: bool, const COL: bool, const AVG: bool>(
    blk: Block<'_, f64>,
    beta: &[f64],
    w: &Weights<f64>,
) -> bool {
    super::pass_block::<f64, Avx2F64, ROW, COL, AVG>(blk, beta, w)
}

/// The f64 row loops in AVX2+FMA intrinsics (module docs).
pub(super) struct Avx2F64;

// SAFETY: used only from `pass_block_f64`, which runs where the CPU has AVX2 and FMA.
unsafe impl Rows<f64> for Avx2F64 {
    type M = Fused;

    #[inline(always)]
    fn sum(q: &[f64], e: &[f64], b: &[f64]) -> f64 {
        // SAFETY: see the impl.
        unsafe { sum(q, e, b) }
    }

    #[inline(always)]
    fn update<const ROW: bool, const COL: bool, const AVG: bool>(row: Row<'_, f64>, w: &Weights<f64>) {
        // SAFETY: see the impl.
        unsafe { update::<ROW, COL, AVG>(row, w) }
    }
}

#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn sum(q: &[f64], e: &[f64], b: &[f64]) -> f64 {
    let n = q.len().min(e.len()).min(b.len());
    let body = n - n % 8;
    let (qp, ep, bp) = (q.as_ptr(), e.as_ptr(), b.as_ptr());
    let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let mut j = 0;
    while j < body {
        let x0 = _mm256_mul_pd(_mm256_loadu_pd(qp.add(j)), _mm256_loadu_pd(ep.add(j)));
        let x1 = _mm256_mul_pd(_mm256_loadu_pd(qp.add(j + 4)), _mm256_loadu_pd(ep.add(j + 4)));
        lo = _mm256_fmadd_pd(x0, _mm256_loadu_pd(bp.add(j)), lo);
        hi = _mm256_fmadd_pd(x1, _mm256_loadu_pd(bp.add(j + 4)), hi);
        j += 8;
    }
    let mut acc = [0f64; 8];
    _mm256_storeu_pd(acc.as_mut_ptr(), lo);
    _mm256_storeu_pd(acc.as_mut_ptr().add(4), hi);
    for k in body..n {
        acc[0] = (q[k] * e[k]).mul_add(b[k], acc[0]);
    }
    acc.iter().sum()
}

/// `v < small ? +0 : v` (ordered: a NaN stays).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn zero_below(v: __m256d, small: __m256d) -> __m256d {
    _mm256_andnot_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(v, small), v)
}

#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn update<const ROW: bool, const COL: bool, const AVG: bool>(row: Row<'_, f64>, w: &Weights<f64>) {
    let Row { q, e, b, avg, colacc, al, ahead } = row;
    let n = q.len();
    assert!(e.len() >= n && b.len() >= n && (!COL || colacc.len() >= n) && (!AVG || avg.len() >= n));
    let body = n - n % 4;
    let (qp, ep, bp, cp, ap) = (q.as_mut_ptr(), e.as_ptr(), b.as_ptr(), colacc.as_mut_ptr(), avg.as_mut_ptr());
    let (alv, small) = (_mm256_set1_pd(al), _mm256_set1_pd(w.small));
    let (w0, small0, w1, small1) =
        (_mm256_set1_pd(w.w0), _mm256_set1_pd(w.small0), _mm256_set1_pd(w.w1), _mm256_set1_pd(w.small1));
    let mut j = 0;
    while j < body {
        if let (Some(next), 0) = (ahead, j % 8) {
            prefetch(next[0].wrapping_add(j));
            prefetch(next[1].wrapping_add(j));
            if AVG {
                prefetch(next[2].wrapping_add(j));
            }
        }
        let (qv, ev, bv) = (_mm256_loadu_pd(qp.add(j)), _mm256_loadu_pd(ep.add(j)), _mm256_loadu_pd(bp.add(j)));
        let x = _mm256_mul_pd(qv, ev);
        let x = if ROW { _mm256_mul_pd(x, alv) } else { x };
        if AVG {
            // v + w0 (q b - v), then v + w1 (x b - v): the portable loop's operations.
            let mut v = _mm256_loadu_pd(ap.add(j));
            v = _mm256_add_pd(v, _mm256_mul_pd(w0, _mm256_sub_pd(_mm256_mul_pd(qv, bv), v)));
            v = zero_below(v, small0);
            if ROW {
                v = _mm256_add_pd(v, _mm256_mul_pd(w1, _mm256_sub_pd(_mm256_mul_pd(x, bv), v)));
                v = zero_below(v, small1);
            }
            _mm256_storeu_pd(ap.add(j), v);
        }
        let y = if ROW && COL { _mm256_mul_pd(_mm256_mul_pd(x, ev), bv) } else { _mm256_mul_pd(x, bv) };
        let y = zero_below(y, small);
        _mm256_storeu_pd(qp.add(j), y);
        if COL {
            _mm256_storeu_pd(cp.add(j), _mm256_add_pd(_mm256_loadu_pd(cp.add(j)), y));
        }
        j += 4;
    }
    // The tail: the portable loop on the last entries (no prefetch left to issue).
    let tail = Row {
        q: &mut q[body..],
        e: &e[body..n],
        b: &b[body..n],
        avg: if AVG { &mut avg[body..n] } else { &mut avg[..0] },
        colacc: if COL { &mut colacc[body..n] } else { &mut colacc[..0] },
        al,
        ahead: None,
    };
    <Lanes<Fused> as Rows<f64>>::update::<ROW, COL, AVG>(tail, w);
}
