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
///
/// Left-looking by [`PW`] columns at a time ([`panel_cols`]): each column's eight entries stay
/// in registers while the earlier columns' terms are subtracted, so a term costs loads but
/// no store (the right-looking order, one column's terms scattered to all later columns,
/// stored every entry once per term and ran at half the speed). Each entry's operations
/// and their order are those of the module docs.
#[inline(always)]
fn panel(rows: &mut [f64], n: usize, k0: usize, l11: &[f64], q: &mut [f64]) {
    let m = rows.len() / n;
    let nb = q.len() / GR;
    for k in 0..nb {
        for r in 0..GR {
            q[k * GR + r] = if r < m { rows[r * n + k0 + k] } else { 0.0 };
        }
    }
    let mut t = 0;
    while t < nb {
        let w = (nb - t).min(PW);
        match w {
            6 => panel_cols::<6>(q, n, k0, l11, t),
            5 => panel_cols::<5>(q, n, k0, l11, t),
            4 => panel_cols::<4>(q, n, k0, l11, t),
            3 => panel_cols::<3>(q, n, k0, l11, t),
            2 => panel_cols::<2>(q, n, k0, l11, t),
            _ => panel_cols::<1>(q, n, k0, l11, t),
        }
        t += w;
    }
    for r in 0..m {
        for k in 0..nb {
            rows[r * n + k0 + k] = q[k * GR + r];
        }
    }
}

/// Columns solved together by [`panel`] (`2 PW` accumulator registers).
const PW: usize = 6;

/// Columns `t .. t + W` of a packed group `q`: from their values, subtract the terms
/// `L[t + c, j] q_j` of the finished columns `j < t` (one fused multiply-add each, `j`
/// ascending), then among themselves: column `t + c` divided by its pivot and its terms
/// subtracted from the columns after it.
#[inline(always)]
fn panel_cols<const W: usize>(q: &mut [f64], n: usize, k0: usize, l11: &[f64], t: usize) {
    let mut acc = [[0.0f64; GR]; W];
    for (c, a) in acc.iter_mut().enumerate() {
        a.copy_from_slice(&q[(t + c) * GR..(t + c + 1) * GR]);
    }
    let lrow = |c: usize| &l11[(t + c) * n + k0..(t + c) * n + k0 + t];
    let ls: [&[f64]; W] = std::array::from_fn(lrow);
    for (j, qj) in q[..t * GR].chunks_exact(GR).enumerate() {
        for (a, lr) in acc.iter_mut().zip(&ls) {
            let l = -lr[j];
            for (e, &v) in a.iter_mut().zip(qj) {
                *e = l.mul_add(v, *e);
            }
        }
    }
    for c in 0..W {
        let d = l11[(t + c) * n + k0 + t + c];
        acc[c].iter_mut().for_each(|v| *v /= d);
        let done = acc[c];
        for (c2, a) in acc.iter_mut().enumerate().skip(c + 1) {
            let l = -l11[(t + c2) * n + k0 + t + c];
            for (e, &v) in a.iter_mut().zip(&done) {
                *e = l.mul_add(v, *e);
            }
        }
        q[(t + c) * GR..(t + c + 1) * GR].copy_from_slice(&done);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The right-looking panel solve (each finished column's terms subtracted from all later
    /// columns at once): the reference order of the module docs.
    fn panel_right_looking(q: &mut [f64], n: usize, k0: usize, l11: &[f64]) {
        let nb = q.len() / GR;
        for j in 0..nb {
            let d = l11[j * n + k0 + j];
            let (head, tail) = q.split_at_mut((j + 1) * GR);
            let qj = &mut head[j * GR..];
            qj.iter_mut().for_each(|v| *v /= d);
            for (t, qt) in tail.chunks_exact_mut(GR).enumerate() {
                let l = -l11[(j + 1 + t) * n + k0 + j];
                for (e, &v) in qt.iter_mut().zip(qj.iter()) {
                    *e = l.mul_add(v, *e);
                }
            }
        }
    }

    #[test]
    fn the_left_looking_panel_equals_the_right_looking_order_bitwise() {
        let mut s = 17u64;
        let mut r = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        // Blocks of every width up to 2 PW + 1 and a full one, rows of the group 1 … 8.
        for nb in (1..=2 * PW + 1).chain([64]) {
            let (n, k0) = (nb + 3, 2);
            let mut l11 = vec![0.0; nb * n];
            for p in 0..nb {
                for c in 0..=p {
                    l11[p * n + k0 + c] = if c == p { 1.0 + r().abs() } else { r() };
                }
            }
            for m in [1usize, 5, 8] {
                let rows: Vec<f64> = (0..m * n).map(|_| r()).collect();
                let mut q = vec![0.0; nb * GR];
                let mut reference = vec![0.0; nb * GR];
                for k in 0..nb {
                    for i in 0..m {
                        reference[k * GR + i] = rows[i * n + k0 + k];
                    }
                }
                panel_right_looking(&mut reference, n, k0, &l11);
                for fast in [false, true] {
                    let mut rw = rows.clone();
                    panel_group(fast && crate::linalg::chol::simd(), &mut rw, n, k0, &l11, &mut q);
                    for k in 0..nb {
                        for i in 0..m {
                            assert_eq!(rw[i * n + k0 + k].to_bits(), reference[k * GR + i].to_bits(), "nb {nb}, m {m}");
                        }
                    }
                }
            }
        }
    }
}
