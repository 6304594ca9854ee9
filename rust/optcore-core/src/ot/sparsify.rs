//! Sparsification of the plan for the Newton steps of [`super::sns`]: which entries of `P` the
//! sparse Newton system keeps (an exponent histogram and a small selection, no sort), the CSR
//! matrix that holds them, and the row scans and sums those passes share.

use rayon::prelude::*;

use crate::real::Real;

/// A sparse `n x m` matrix in CSR form (the kept entries of the plan).
pub(super) struct Csr {
    pub(super) indptr: Vec<usize>,
    pub(super) indices: Vec<u32>,
    pub(super) data: Vec<f64>,
}

impl Csr {
    /// `y = A x`.
    pub(super) fn mul(&self, x: &[f64], y: &mut [f64]) {
        for (i, yi) in y.iter_mut().enumerate() {
            let (s, e) = (self.indptr[i], self.indptr[i + 1]);
            *yi = self.indices[s..e].iter().zip(&self.data[s..e]).map(|(&j, &v)| v * x[j as usize]).sum();
        }
    }
    /// `y = A^T x`.
    pub(super) fn mul_t(&self, x: &[f64], y: &mut [f64]) {
        y.iter_mut().for_each(|v| *v = 0.0);
        for (i, &xi) in x.iter().enumerate() {
            let (s, e) = (self.indptr[i], self.indptr[i + 1]);
            for (&j, &v) in self.indices[s..e].iter().zip(&self.data[s..e]) {
                y[j as usize] += v * xi;
            }
        }
    }
}

/// The default sparsification also keeps every plan entry at least this fraction of its row's
/// or its column's sum: a global threshold alone drops whole rows of small mass, whose
/// equations then converge only linearly.
pub(super) const RELATIVE: f64 = 1e-3;

/// Bins of the exponent histogram: the top 12 bits of an f64 (sign and exponent).
pub(super) const EXP_BINS: usize = 4096;

/// Which entries of the plan the sparsified Hessian keeps.
#[derive(Clone, Copy, Debug)]
pub(super) enum Select {
    /// Exactly the `k` largest (all positive ones if fewer).
    Exact(usize),
    /// Whole binades (factors of 2), from the top, until at least `min` entries holding at
    /// least `coverage` of the plan's mass are kept; and every entry that is at least
    /// `relative` times its row's or its column's sum.
    Covering { min: usize, coverage: f64, relative: f64 },
}

/// The entries of `plan` that `sel` keeps, as CSR. The histogram of the entries' exponents
/// ([`histogram`], one read) gives the binade that
/// contains the `keep`-th largest entry, one read collects the entries at or above it (at most
/// `keep` plus that binade's count), and a selection among those gives the exact cut. No sort
/// of the `n m` entries.
pub(super) fn sparsify<T: Real>(plan: &[T], m: usize, floor: f64, r: &[f64], c: &[f64], sel: Select) -> Csr {
    let (hist, hmass) = histogram(plan, floor);
    let total: f64 = hmass.iter().sum();
    let e_floor = (floor.to_bits() >> 52) as usize;
    let (keep, exact) = match sel {
        Select::Exact(k) => (k, true),
        Select::Covering { min, .. } => (min, false),
    };
    let mut need = keep;
    let mut e = EXP_BINS - 1;
    let mut mass = 0.0;
    loop {
        let count_ok = (hist[e] as usize) >= need;
        let mass_ok = match sel {
            Select::Exact(_) => true,
            Select::Covering { coverage, .. } => mass + hmass[e] >= coverage * total,
        };
        if e <= e_floor.max(1) || (count_ok && mass_ok) {
            break;
        }
        need = need.saturating_sub(hist[e] as usize);
        mass += hmass[e];
        e -= 1;
    }
    // Never below the floor (entries under it were not counted) nor subnormal.
    let lo = ((e.max(1) as u64) << 52).max(floor.to_bits());
    let rel = match sel {
        Select::Covering { relative, .. } => relative,
        Select::Exact(_) => f64::INFINITY,
    };
    let tc: Vec<f64> = c.iter().map(|&x| rel * x).collect();
    let mut rows: Vec<(Vec<u32>, Vec<f64>)> =
        plan.par_chunks(m).zip(r.par_iter()).map(|(row, &ri)| scan_row(row, lo, rel * ri, &tc)).collect();
    let count: usize = rows.iter().map(|r| r.0.len()).sum();
    if exact && count > keep {
        let mut all: Vec<f64> = rows.iter().flat_map(|r| r.1.iter().copied()).collect();
        let (_, &mut cut, _) = all.select_nth_unstable_by(count - keep, |x, y| x.total_cmp(y));
        rows.par_iter_mut().for_each(|(idx, val)| {
            let mut k = 0;
            for r in 0..val.len() {
                if val[r] >= cut {
                    idx[k] = idx[r];
                    val[k] = val[r];
                    k += 1;
                }
            }
            idx.truncate(k);
            val.truncate(k);
        });
    }
    let mut indptr = Vec::with_capacity(rows.len() + 1);
    indptr.push(0);
    let nnz: usize = rows.iter().map(|r| r.0.len()).sum();
    let (mut indices, mut data) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
    for (i, v) in rows {
        indices.extend(i);
        data.extend(v);
        indptr.push(indices.len());
    }
    Csr { indptr, indices, data }
}

/// The positive entries of one plan row whose bit pattern is at least `lo`, or that are at
/// least `tr` or their column's `tc`.
#[inline(never)]
fn scan_row<T: Real>(row: &[T], lo: u64, tr: f64, tc: &[f64]) -> (Vec<u32>, Vec<f64>) {
    let (mut idx, mut val) = (Vec::new(), Vec::new());
    for (j, (&x, &tcj)) in row.iter().zip(tc).enumerate() {
        let v = x.as_f64();
        if (v.to_bits() >= lo || v >= tr || v >= tcj) && v > 0.0 {
            idx.push(j as u32);
            val.push(v);
        }
    }
    (idx, val)
}

/// The sum of one plan row (eight lanes).
#[inline(always)]
pub(super) fn row_sum<T: Real>(row: &[T]) -> f64 {
    let mut lanes = [0f64; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            lanes[l] += c[l].as_f64();
        }
    }
    lanes.iter().sum::<f64>() + chunks.remainder().iter().map(|x| x.as_f64()).sum::<f64>()
}

/// Count and mass per exponent bin of the plan entries `>= floor` (entries below it hold
/// less than 1e-7 of the mass together; the branch is almost never taken on the sparse plans
/// SNS is for). Fixed chunks reduced in order: the same result for any number of threads.
fn histogram<T: Real>(plan: &[T], floor: f64) -> (Vec<u32>, Vec<f64>) {
    let parts: Vec<(Vec<u32>, Vec<f64>)> = plan
        .par_chunks(1 << 18)
        .map(|c| {
            let (mut h, mut hm) = (vec![0u32; EXP_BINS], vec![0f64; EXP_BINS]);
            for &x in c {
                let v = x.as_f64();
                if v >= floor {
                    let k = (v.to_bits() >> 52) as usize;
                    h[k] += 1;
                    hm[k] += v;
                }
            }
            (h, hm)
        })
        .collect();
    let (mut hist, mut hmass) = (vec![0u32; EXP_BINS], vec![0f64; EXP_BINS]);
    for (h, hm) in parts {
        hist.iter_mut().zip(&h).for_each(|(a, b)| *a += b);
        hmass.iter_mut().zip(&hm).for_each(|(a, b)| *a += b);
    }
    (hist, hmass)
}
