//! Dense Cholesky factorisation `A = L Lᵀ` of a symmetric positive definite matrix, in f64,
//! for the direct lower-level solves of the bilevel outer loop (factor once per outer point,
//! solve twice). Factor once, solve many times.
//!
//! The factorisation is right-looking by blocks of `NB` columns (row-major storage, the lower
//! triangle): factor the diagonal block (short dot products in four-lane partial sums,
//! combined as `(l0 + l2) + (l1 + l3)`, then the tail), solve the panel below it and subtract
//! the panel's outer products from the trailing matrix (packed 4 × 8 register tiles,
//! [`super::chol_kernel`]). Every entry's arithmetic is fixed by the block size alone, so the
//! result is bit-identical whatever the CPU path or the number of threads: the AVX2 + FMA
//! kernels run the same fused operations in vector registers, the portable ones call
//! `f64::mul_add` (correctly rounded everywhere, slow without hardware FMA).

use super::chol_kernel::{panel_group, trailing_group, GR};
use crate::alloc::{checked_len, try_zeroed};
use crate::error::{OptError, Result};
use rayon::prelude::*;

/// Columns per block (the inner dimension of the trailing update).
const NB: usize = 64;
/// From this order on, the groups of rows of a panel run in parallel.
const PAR_MIN: usize = 192;

/// `L` of `A = L Lᵀ` (row-major `n × n`, the lower triangle; the strict upper triangle is
/// zero).
#[derive(Debug, Clone)]
pub struct Cholesky {
    n: usize,
    l: Vec<f64>,
}

/// `Σ_k a_k b_k` in four lanes (the module's fixed order), each lane a chain of fused
/// multiply-adds.
#[inline(always)]
fn dot4(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (u, v) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] = u[l].mul_add(v[l], acc[l]);
        }
    }
    finish(acc, ra, rb)
}

/// `(l0 + l2) + (l1 + l3)` plus the tail `Σ a_k b_k` (fused, in index order).
#[inline(always)]
fn finish(acc: [f64; 4], ra: &[f64], rb: &[f64]) -> f64 {
    let tail = ra.iter().zip(rb).fold(0.0f64, |s, (x, y)| x.mul_add(*y, s));
    ((acc[0] + acc[2]) + (acc[1] + acc[3])) + tail
}

/// [`dot4`] of four rows `a[r]` against one `b`: four independent chains of fused
/// multiply-adds instead of one (each entry's operations those of [`dot4`]).
#[inline(always)]
fn dot4_x4(a: [&[f64]; 4], b: &[f64]) -> [f64; 4] {
    let len = b.len();
    let m = len - len % 4;
    let mut acc = [[0.0f64; 4]; 4];
    for k in (0..m).step_by(4) {
        let v = &b[k..k + 4];
        for (ar, row) in acc.iter_mut().zip(&a) {
            let u = &row[k..k + 4];
            for l in 0..4 {
                ar[l] = u[l].mul_add(v[l], ar[l]);
            }
        }
    }
    std::array::from_fn(|r| finish(acc[r], &a[r][m..len], &b[m..]))
}

/// The in-block factorisation of the diagonal block (its products already subtracted):
/// `Err(j)` at a pivot that is not positive. Column by column: the pivot, then the entries
/// below it four rows at a time ([`dot4_x4`]); each entry is `(A[p, j] − dot4(L[p, ·],
/// L[j, ·])) / L[j, j]` over the block's earlier columns, whatever the order the entries are
/// computed in.
#[inline(always)]
fn diag_block(blk: &mut [f64], n: usize, i0: usize, nb: usize) -> std::result::Result<(), usize> {
    for q in 0..nb {
        let j = i0 + q;
        let (head, tail) = blk.split_at_mut((q + 1) * n);
        let rq = &mut head[q * n..];
        let s = rq[j] - dot4(&rq[i0..j], &rq[i0..j]);
        #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN-aware: a NaN pivot fails
        if !(s > 0.0) {
            return Err(j);
        }
        rq[j] = s.sqrt();
        let (lq, d) = (&rq[i0..j], rq[j]);
        for grp in tail[..(nb - q - 1) * n].chunks_mut(4 * n) {
            let m = grp.len() / n;
            if m == 4 {
                let s4 = dot4_x4(std::array::from_fn(|r| &grp[r * n + i0..r * n + j]), lq);
                for (r, sr) in s4.iter().enumerate() {
                    grp[r * n + j] = (grp[r * n + j] - sr) / d;
                }
            } else {
                for r in 0..m {
                    grp[r * n + j] = (grp[r * n + j] - dot4(&grp[r * n + i0..r * n + j], lq)) / d;
                }
            }
        }
    }
    Ok(())
}

/// [`diag_block`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn diag_block_avx2(blk: &mut [f64], n: usize, i0: usize, nb: usize) -> std::result::Result<(), usize> {
    diag_block(blk, n, i0, nb)
}

/// `L y = b` (rows of `L` against `y` in [`dot4`]'s order), then `Lᵀ x = y` (each `x_i`
/// subtracted from the entries above it, row `i` of `L` at a time), in place. Without
/// hardware FMA, [`dot4`]'s `mul_add` is a library call per product: the solve runs through
/// [`solve_avx2`] where the CPU has it (the same fused operations, so the same result).
#[inline(always)]
fn solve_lower_upper(n: usize, l: &[f64], b: &mut [f64]) {
    for i in 0..n {
        b[i] = (b[i] - dot4(&l[i * n..i * n + i], &b[..i])) / l[i * n + i];
    }
    for i in (0..n).rev() {
        let xi = b[i] / l[i * n + i];
        b[i] = xi;
        for (bk, &lik) in b[..i].iter_mut().zip(&l[i * n..i * n + i]) {
            *bk -= lik * xi;
        }
    }
}

/// [`solve_lower_upper`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn solve_avx2(n: usize, l: &[f64], b: &mut [f64]) {
    solve_lower_upper(n, l, b)
}

/// Why the factorisation stopped early.
#[derive(Debug, PartialEq)]
enum Stop {
    /// The `j`-th pivot is not positive.
    Pivot(usize),
    /// `stop()` answered true between two panels.
    Interrupted,
}

impl From<usize> for Stop {
    fn from(j: usize) -> Self {
        Stop::Pivot(j)
    }
}

/// The factorisation in place (module docs). `fast`: the AVX2 + FMA versions (the CPU has
/// both); `q`: the packed panel's storage (at least [`panel_len`] entries); `stop` is asked
/// after every panel (an order-8192 factorisation takes seconds). The groups of a panel are
/// independent in both phases: they run in parallel when `n ≥ PAR_MIN` (each entry computed
/// the same way on any thread).
fn factor_kernel(
    a: &mut [f64],
    n: usize,
    fast: bool,
    q: &mut [f64],
    stop: &mut dyn FnMut() -> bool,
) -> std::result::Result<(), Stop> {
    let par = n >= PAR_MIN;
    for k0 in (0..n).step_by(NB) {
        if k0 > 0 && stop() {
            return Err(Stop::Interrupted);
        }
        let k1 = (k0 + NB).min(n);
        let nb = k1 - k0;
        let (head, rest) = a.split_at_mut(k1 * n);
        let blk = &mut head[k0 * n..];
        #[cfg(target_arch = "x86_64")]
        if fast {
            // SAFETY: `fast` only where the CPU has AVX2 and FMA.
            unsafe { diag_block_avx2(blk, n, k0, nb)? };
        } else {
            diag_block(blk, n, k0, nb)?;
        }
        #[cfg(not(target_arch = "x86_64"))]
        diag_block(blk, n, k0, nb)?;
        if k1 == n {
            break;
        }
        let l11: &[f64] = blk;
        let q = &mut q[..(n - k1).div_ceil(GR) * GR * nb];
        if par {
            rest.par_chunks_mut(GR * n)
                .zip(q.par_chunks_mut(GR * nb))
                .for_each(|(rows, qg)| panel_group(fast, rows, n, k0, l11, qg));
            let q: &[f64] = q;
            rest.par_chunks_mut(GR * n).enumerate().for_each(|(gi, rows)| trailing_group(fast, rows, n, k1, gi, q, nb));
        } else {
            rest.chunks_mut(GR * n)
                .zip(q.chunks_mut(GR * nb))
                .for_each(|(rows, qg)| panel_group(fast, rows, n, k0, l11, qg));
            let q: &[f64] = q;
            rest.chunks_mut(GR * n).enumerate().for_each(|(gi, rows)| trailing_group(fast, rows, n, k1, gi, q, nb));
        }
    }
    Ok(())
}

/// The packed panel's length for order `n`.
fn panel_len(n: usize) -> usize {
    n.saturating_sub(NB).div_ceil(GR) * GR * NB
}

/// Whether the CPU has AVX2 and FMA (the fast paths of this module and of
/// [`super::add_scaled_rows`]).
pub(crate) fn simd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl Cholesky {
    /// Factors the row-major symmetric `n × n` matrix `a` (only its lower triangle is read),
    /// taking its storage. A pivot that is not positive (the matrix is not positive definite
    /// to working precision) or a non-finite entry is an [`OptError::Numerical`] naming `what`.
    pub fn factor(a: Vec<f64>, n: usize, what: &str) -> Result<Self> {
        Ok(Self::factor_checked(a, n, what, &mut || false)?.expect("never interrupted"))
    }

    /// [`Cholesky::factor`], asking `stop` between blocks of columns: `Ok(None)` when it
    /// answered true (Ctrl-C: the observer's [`crate::solver::Observer::interrupted`]).
    pub fn factor_checked(
        mut a: Vec<f64>,
        n: usize,
        what: &str,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Self>> {
        if a.len() != checked_len(n, n, what)? {
            return Err(OptError::InvalidInput(format!("{what}: expected {n}x{n} entries, got {}", a.len())));
        }
        if !(0..n).all(|i| a[i * n..i * n + i + 1].iter().all(|v| v.is_finite())) {
            return Err(OptError::Numerical(format!("{what} has non-finite entries")));
        }
        let mut q = try_zeroed::<f64>(panel_len(n), what)?;
        match factor_kernel(&mut a, n, simd(), &mut q, stop) {
            Ok(()) => {}
            Err(Stop::Interrupted) => return Ok(None),
            Err(Stop::Pivot(j)) => {
                return Err(OptError::Numerical(format!(
                    "{what} is not positive definite to working precision (pivot {j} of {n})"
                )))
            }
        }
        for i in 0..n {
            a[i * n + i + 1..(i + 1) * n].iter_mut().for_each(|v| *v = 0.0);
        }
        Ok(Some(Cholesky { n, l: a }))
    }

    /// A zeroed `n × n` buffer to build a matrix in (fallible: `n` is user-sized).
    pub fn buffer(n: usize, what: &str) -> Result<Vec<f64>> {
        try_zeroed::<f64>(checked_len(n, n, what)?, what)
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// The factor's `n × n` storage, to build the next matrix in ([`Cholesky::factor`]
    /// reads only the lower triangle).
    pub fn into_storage(self) -> Vec<f64> {
        self.l
    }

    /// Solves `A x = b` in place (`L y = b`, then `Lᵀ x = y`; [`solve_lower_upper`], in
    /// AVX2 + FMA registers where the CPU has them, with the same result).
    pub fn solve_in_place(&self, b: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if simd() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { solve_avx2(self.n, &self.l, b) };
        }
        solve_lower_upper(self.n, &self.l, b)
    }

    /// `log det A = 2 Σ log L_ii`.
    pub fn log_det(&self) -> f64 {
        2.0 * (0..self.n).map(|i| self.l[i * self.n + i].ln()).sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        let mut r = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let b: Vec<f64> = (0..n * n).map(|_| r()).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] =
                    (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>() + if i == j { 0.1 } else { 0.0 };
            }
        }
        a
    }

    #[test]
    fn solves_spd_systems_of_odd_sizes() {
        for &n in &[1usize, 2, 3, 5, 63, 64, 65, 130, 201] {
            let a = spd(n, n as u64);
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut b: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j] * x[j]).sum()).collect();
            let c = Cholesky::factor(a.clone(), n, "A").unwrap();
            c.solve_in_place(&mut b);
            let err = b.iter().zip(&x).map(|(u, v)| (u - v).abs()).fold(0.0, f64::max);
            assert!(err < 1e-8, "n = {n}: error {err}");
            // L Lᵀ reproduces A.
            for i in 0..n {
                for j in 0..=i {
                    let s: f64 = (0..=j).map(|k| c.l[i * n + k] * c.l[j * n + k]).sum();
                    assert!((s - a[i * n + j]).abs() < 1e-10 * (1.0 + a[i * n + j].abs()));
                }
            }
        }
    }

    #[test]
    fn the_simd_and_portable_paths_agree_bitwise() {
        for n in [150usize, 260, 333] {
            let a = spd(n, 7);
            let mut p = a.clone();
            factor_kernel(&mut p, n, false, &mut vec![0.0; panel_len(n)], &mut || false).unwrap();
            let mut q = a.clone();
            factor_kernel(&mut q, n, simd(), &mut vec![0.0; panel_len(n)], &mut || false).unwrap();
            assert_eq!(p, q, "n = {n}");
            // Bit-identical on one thread.
            let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
            let mut s = a;
            one.install(|| factor_kernel(&mut s, n, simd(), &mut vec![0.0; panel_len(n)], &mut || false)).unwrap();
            assert_eq!(p, s, "n = {n}, one thread");
        }
    }

    /// The diagonal block row by row (each entry after the entries left of it and the rows
    /// above): the reference order of [`diag_block`]'s entries.
    fn diag_block_by_rows(blk: &mut [f64], n: usize, i0: usize, nb: usize) {
        for p in 0..nb {
            for q in 0..=p {
                let (i, j) = (i0 + p, i0 + q);
                let s = blk[p * n + j] - dot4(&blk[p * n + i0..p * n + j], &blk[q * n + i0..q * n + j]);
                if p == q {
                    blk[p * n + i] = s.sqrt();
                } else {
                    blk[p * n + j] = s / blk[q * n + j];
                }
            }
        }
    }

    #[test]
    fn the_diagonal_block_equals_the_row_order_bitwise() {
        for (nb, i0) in [(1usize, 0usize), (3, 1), (5, 0), (9, 2), (64, 0), (64, 7), (37, 3)] {
            let n = nb + i0 + 2;
            let a = spd(n, nb as u64 + 100);
            let rows = &a[i0 * n..(i0 + nb) * n];
            let mut reference = rows.to_vec();
            diag_block_by_rows(&mut reference, n, i0, nb);
            let mut plain = rows.to_vec();
            diag_block(&mut plain, n, i0, nb).unwrap();
            assert_eq!(plain, reference, "nb = {nb}, i0 = {i0}");
            if simd() {
                let mut fast = rows.to_vec();
                unsafe { diag_block_avx2(&mut fast, n, i0, nb).unwrap() };
                assert_eq!(fast, reference, "nb = {nb}, i0 = {i0}, AVX2");
            }
        }
    }

    #[test]
    fn ill_conditioned_systems_have_small_residuals() {
        // `A = B Bᵀ + δ I` with `B` of half rank: condition numbers near 1e7 … 1e11, orders
        // that are not multiples of the block (and one that is). Cholesky is backward
        // stable: `‖A x − b‖ ≤ c ε ‖A‖ ‖x‖` whatever the conditioning.
        for (&n, &delta) in [65usize, 128, 333, 517].iter().zip(&[1e-6, 1e-8, 1e-9, 1e-10]) {
            let mut s = n as u64;
            let mut r = || {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            };
            let k = n / 2;
            let bm: Vec<f64> = (0..n * k).map(|_| r()).collect();
            let mut a = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..=i {
                    let v =
                        (0..k).map(|t| bm[i * k + t] * bm[j * k + t]).sum::<f64>() + if i == j { delta } else { 0.0 };
                    a[i * n + j] = v;
                    a[j * n + i] = v;
                }
            }
            let b: Vec<f64> = (0..n).map(|_| r()).collect();
            let c = Cholesky::factor(a.clone(), n, "A").unwrap();
            let mut x = b.clone();
            c.solve_in_place(&mut x);
            let res =
                (0..n).map(|i| ((0..n).map(|j| a[i * n + j] * x[j]).sum::<f64>() - b[i]).powi(2)).sum::<f64>().sqrt();
            let norm_a = a.iter().map(|v| v * v).sum::<f64>().sqrt();
            let norm_x = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let backward = res / (norm_a * norm_x);
            assert!(backward < 1e-14, "n = {n}, δ = {delta}: relative residual {backward:e}");
            assert!(norm_x > 1e3, "n = {n}: the system is not ill-conditioned ({norm_x})");
        }
    }

    #[test]
    fn the_simd_and_portable_solves_agree_bitwise() {
        for n in [1usize, 7, 64, 131, 300] {
            let c = Cholesky::factor(spd(n, 11), n, "A").unwrap();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.91).cos()).collect();
            let mut fast = b.clone();
            c.solve_in_place(&mut fast);
            let mut plain = b;
            solve_lower_upper(n, &c.l, &mut plain);
            assert_eq!(fast, plain, "n = {n}");
        }
    }

    #[test]
    #[ignore]
    fn timing_of_the_phases() {
        // One thread: the diagonal blocks, the panel solves and the trailing updates of one
        // order-500 factorisation, best of 20 each.
        let n = 500;
        let a = spd(n, 3);
        let fast = simd();
        let mut best = [f64::INFINITY; 3];
        for _ in 0..20 {
            let mut m = a.clone();
            let mut q = vec![0.0; panel_len(n)];
            let mut t = [0.0f64; 3];
            for k0 in (0..n).step_by(NB) {
                let k1 = (k0 + NB).min(n);
                let nb = k1 - k0;
                let (head, rest) = m.split_at_mut(k1 * n);
                let blk = &mut head[k0 * n..];
                let s = std::time::Instant::now();
                unsafe { diag_block_avx2(blk, n, k0, nb).unwrap() };
                t[0] += s.elapsed().as_secs_f64();
                if k1 == n {
                    break;
                }
                let q = &mut q[..(n - k1).div_ceil(GR) * GR * nb];
                let s = std::time::Instant::now();
                rest.chunks_mut(GR * n)
                    .zip(q.chunks_mut(GR * nb))
                    .for_each(|(r, qg)| panel_group(fast, r, n, k0, blk, qg));
                t[1] += s.elapsed().as_secs_f64();
                let q: &[f64] = q;
                let s = std::time::Instant::now();
                rest.chunks_mut(GR * n).enumerate().for_each(|(gi, r)| trailing_group(fast, r, n, k1, gi, q, nb));
                t[2] += s.elapsed().as_secs_f64();
            }
            for k in 0..3 {
                best[k] = best[k].min(t[k] * 1e3);
            }
        }
        eprintln!(
            "n = {n}, one thread: diagonal blocks {:.3} ms, panels {:.3} ms, trailing {:.3} ms",
            best[0], best[1], best[2]
        );
    }

    #[test]
    fn an_interrupt_stops_between_blocks() {
        let n = 200;
        let mut asked = 0;
        let r = Cholesky::factor_checked(spd(n, 5), n, "A", &mut || {
            asked += 1;
            true
        });
        assert!(r.unwrap().is_none());
        assert_eq!(asked, 1);
    }

    #[test]
    fn indefinite_and_non_finite_matrices_are_named_errors() {
        let e = Cholesky::factor(vec![1.0, 2.0, 2.0, 1.0], 2, "the test matrix").unwrap_err();
        assert!(format!("{e}").contains("not positive definite"));
        let e = Cholesky::factor(vec![f64::NAN, 0.0, 0.0, 1.0], 2, "the test matrix").unwrap_err();
        assert!(format!("{e}").contains("non-finite"));
    }

    #[test]
    #[ignore]
    fn timing() {
        // Best of 10 factorisations (the copy of the input excluded), on the global pool and
        // on one thread.
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for &n in &[200usize, 500, 1000] {
            let a = spd(n, 3);
            let mut best = [f64::INFINITY; 2];
            for _ in 0..10 {
                for (k, b) in best.iter_mut().enumerate() {
                    let m = a.clone();
                    let t = std::time::Instant::now();
                    if k == 0 {
                        Cholesky::factor(m, n, "A").unwrap();
                    } else {
                        one.install(|| Cholesky::factor(m, n, "A").unwrap());
                    }
                    *b = b.min(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            eprintln!("n = {n}: {:.2} ms (all threads), {:.2} ms (one thread)", best[0], best[1]);
        }
    }
}
