//! The two kernels of the right-looking blocked Cholesky factorisation ([`super::chol`]): the
//! panel solve `L₂₁ = A₂₁ L₁₁⁻ᵀ` and the trailing update `A₂₂ −= L₂₁ L₂₁ᵀ` (a SYRK).
//!
//! Both work on a packed copy of the panel: the rows below the diagonal block in groups of
//! [`GR`] = 8, each group stored column after column (`q[k·8 + r] = L[row₀ + r, k₀ + k]`), so
//! that one column of a group is two AVX2 registers. The panel solve runs down a group's
//! columns with eight rows per vector; the trailing update multiplies a 4-row slice of one
//! group by a whole group (a 4 × 8 register tile: eight accumulators, two loads and four
//! broadcasts per step) and subtracts the tile from `A₂₂`.
//!
//! Each entry's arithmetic is fixed by the block size alone, whatever the CPU path or the
//! thread that computes it: the panel entry `L[i, j]` is `A[i, j]` with the terms
//! `L[j, k] L[i, k]`, `k = k₀ … j−1`, subtracted one fused multiply-add at a time, then
//! divided by `L[j, j]`; a trailing entry subtracts, per panel, the sum of its `nb` products
//! accumulated by fused multiply-adds from zero in `k` order. The portable versions call
//! `f64::mul_add` (correctly rounded everywhere), so they are bit-identical to the AVX2 + FMA
//! ones.

/// Rows per packed group.
pub(super) const GR: usize = 8;
/// Rows of a trailing-update tile (half a group).
const MR: usize = 4;

/// The panel solve of one group: packs the group's `m ≤ 8` rows (`rows`, each of length `n`;
/// columns `k0 .. k0 + nb`) into `q` (`nb × 8`, padding rows zero), solves against the
/// factored diagonal block (`l11`: rows `k0 .. k0 + nb` of the matrix) and writes `L₂₁` back.
#[inline(always)]
fn panel(rows: &mut [f64], n: usize, k0: usize, l11: &[f64], q: &mut [f64]) {
    let m = rows.len() / n;
    let nb = q.len() / GR;
    for k in 0..nb {
        for r in 0..GR {
            q[k * GR + r] = if r < m { rows[r * n + k0 + k] } else { 0.0 };
        }
    }
    for j in 0..nb {
        let d = l11[j * n + k0 + j];
        let (head, tail) = q.split_at_mut((j + 1) * GR);
        let qj = &mut head[j * GR..];
        qj.iter_mut().for_each(|v| *v /= d);
        let qj: [f64; GR] = (&*qj).try_into().expect("a group is 8 wide");
        for (t, qt) in tail.chunks_exact_mut(GR).enumerate() {
            let l = -l11[(j + 1 + t) * n + k0 + j];
            for (e, &v) in qt.iter_mut().zip(&qj) {
                *e = l.mul_add(v, *e);
            }
        }
    }
    for r in 0..m {
        for k in 0..nb {
            rows[r * n + k0 + k] = q[k * GR + r];
        }
    }
}

/// [`panel`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn panel_avx2(rows: &mut [f64], n: usize, k0: usize, l11: &[f64], q: &mut [f64]) {
    panel(rows, n, k0, l11, q)
}

/// The panel solve of one group (module docs).
pub(super) fn panel_group(fast: bool, rows: &mut [f64], n: usize, k0: usize, l11: &[f64], q: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` only where the CPU has AVX2 and FMA.
        return unsafe { panel_avx2(rows, n, k0, l11, q) };
    }
    let _ = fast;
    panel(rows, n, k0, l11, q)
}

/// The 4 × 8 tile `Σ_k a[k·8 + r] b[k·8 + c]` (`k < nb`), each entry a chain of fused
/// multiply-adds from zero in `k` order (portable version).
#[inline(always)]
fn tile(a: &[f64], b: &[f64], nb: usize) -> [[f64; GR]; MR] {
    let mut acc = [[0.0f64; GR]; MR];
    for k in 0..nb {
        let bk = &b[k * GR..k * GR + GR];
        for (r, ar) in acc.iter_mut().enumerate() {
            let x = a[k * GR + r];
            for (e, &y) in ar.iter_mut().zip(bk) {
                *e = x.mul_add(y, *e);
            }
        }
    }
    acc
}

/// [`tile`] with AVX2 + FMA intrinsics: the same fused operations in the same order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(a: &[f64], b: &[f64], nb: usize) -> [[f64; GR]; MR] {
    use std::arch::x86_64::*;
    assert!(nb > 0 && a.len() >= (nb - 1) * GR + MR && b.len() >= nb * GR);
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let z = _mm256_setzero_pd();
    let mut acc = [[z; 2]; MR];
    for k in 0..nb {
        // SAFETY: within the lengths asserted above.
        let b0 = _mm256_loadu_pd(pb.add(k * GR));
        let b1 = _mm256_loadu_pd(pb.add(k * GR + 4));
        for (r, ar) in acc.iter_mut().enumerate() {
            let x = _mm256_broadcast_sd(&*pa.add(k * GR + r));
            ar[0] = _mm256_fmadd_pd(x, b0, ar[0]);
            ar[1] = _mm256_fmadd_pd(x, b1, ar[1]);
        }
    }
    let mut out = [[0.0f64; GR]; MR];
    for (o, ar) in out.iter_mut().zip(&acc) {
        _mm256_storeu_pd(o.as_mut_ptr(), ar[0]);
        _mm256_storeu_pd(o.as_mut_ptr().add(4), ar[1]);
    }
    out
}

/// The trailing update of one group of rows (`rows`: rows `k1 + 8 gi …` of the matrix, each
/// of length `n`): for every 4-row half and every group `g ≤ gi` of columns, the tile of
/// products of the packed panel `q` (groups of `nb × 8`) subtracted from the lower triangle.
#[inline(always)]
fn trailing(fast: bool, rows: &mut [f64], n: usize, k1: usize, gi: usize, q: &[f64], nb: usize) {
    let m = rows.len() / n;
    let w = GR * nb;
    for h in 0..GR / MR {
        if h * MR >= m {
            break;
        }
        let i0 = gi * GR + h * MR; // the first row of the half, relative to k1
        let a = &q[gi * w + h * MR..(gi + 1) * w];
        for g in 0..=gi {
            let j0 = g * GR; // the first column of the group, relative to k1
            if j0 > i0 + MR - 1 {
                break;
            }
            let b = &q[g * w..(g + 1) * w];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `fast` only where the CPU has AVX2 and FMA.
            let acc = if fast { unsafe { tile_avx2(a, b, nb) } } else { tile(a, b, nb) };
            #[cfg(not(target_arch = "x86_64"))]
            let acc = tile(a, b, nb);
            for (r, ar) in acc.iter().enumerate().take(m - h * MR) {
                let i = i0 + r;
                if i < j0 {
                    continue;
                }
                let cols = (i - j0 + 1).min(GR);
                let row = &mut rows[(h * MR + r) * n + k1 + j0..(h * MR + r) * n + k1 + j0 + cols];
                for (e, &s) in row.iter_mut().zip(ar) {
                    *e -= s;
                }
            }
        }
    }
}

/// [`trailing`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn trailing_avx2(rows: &mut [f64], n: usize, k1: usize, gi: usize, q: &[f64], nb: usize) {
    trailing(true, rows, n, k1, gi, q, nb)
}

/// The trailing update of one group (module docs).
pub(super) fn trailing_group(fast: bool, rows: &mut [f64], n: usize, k1: usize, gi: usize, q: &[f64], nb: usize) {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` only where the CPU has AVX2 and FMA.
        return unsafe { trailing_avx2(rows, n, k1, gi, q, nb) };
    }
    trailing(false, rows, n, k1, gi, q, nb)
}
