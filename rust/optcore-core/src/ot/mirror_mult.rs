//! Mirror Sinkhorn for the linear objective `F(P) = <P, M>` with the plan itself as state,
//! updated multiplicatively: no `exp` per entry and iteration.
//!
//! With the gradient constant, a mirror step multiplies the plan by `exp(-η M)`, or equally by
//! `E = exp(-η (M - min M))` (a constant factor cancels in the scaling that follows). Over a
//! block of constant step (`mirror_step.rs`: the whole run for a constant step, dyadic blocks
//! for the decreasing one) `E` is stored, rebuilt once per block by the block's first pass
//! (each row of `E` computed from the cost's row just before the pass uses it: one read of `E`
//! less per block than a separate rebuild; the `exp` work stays), and the plan is kept as
//! `P_t = Q diag(β)`:
//!
//! - row step: `α = a / ((Q ⊙ E) β)`, `Q ← diag(α) (Q ⊙ E) diag(β)`, `β ← 1`;
//! - column step: `Q ← (Q ⊙ E) diag(β)`, `β = b / (Q^T 1)`.
//!
//! (`β` is absorbed into `Q` on every pass: kept apart, it would carry the growing column
//! potential and `Q` would underflow.) One pass over the rows does a row step and the next
//! column step: per row, the sum `Σ_j Q_ij E_ij β_j` gives `α_i`, then
//! `Q_ij ← α_i Q_ij E_ij² β_j` is written and added into the column sums that give the new
//! `β`. A pass reads `Q` and `E` and writes `Q` for two
//! iterations: 1.5 streams of `n m` numbers per iteration and a few multiplications per entry,
//! where a log-domain Sinkhorn iteration reads its kernel once. The averaged output adds the
//! average's read and write on the passes that hold an averaged pair of iterates, one pass in
//! [`AVERAGE_EVERY`](super::mirror_step::AVERAGE_EVERY) after the first 32 iterations
//! (`mirror_step::AverageWeights` gives the rule and why it keeps the rate): `1.5 + 1 /
//! AVERAGE_EVERY` streams per iteration, where averaging every iterate took 2.5. Every other
//! pass takes the row blocks last to first: from n ≈ 1000 in f64 `Q` and `E` (16 MB) outgrow
//! the share of the L3 cache a pass keeps, and a pass that starts where the previous one ended
//! could find those rows still in cache. Measured (`benches/results/ot_mirror_stream.md`) the
//! gain is within the noise at low load: this L3 does not keep a streamed array as an LRU cache
//! would. The sums do not depend on the direction (each block's rows in order, the blocks'
//! column sums combined in block order), so neither does any bit of the result, nor on the
//! number of threads. The row potentials are kept in f64 (`ρ_i += ln α_i + η min M` per factor
//! `E`), so `ln Q_ij = ρ_i + c_j - S M_ij` as in the
//! potentials form (`mirror_linear.rs`), and the certificate uses them the same way.
//!
//! Each row is read twice: its sum brings it into the cache, and the update then works from
//! the cache while the memory would idle, so the update prefetches the next row (and its
//! average), one cache line per line it updates. Measured in one process against the build
//! without the prefetches and the f64 intrinsics (`benches/results/ot_mirror.md`): 3-19% less
//! time per iteration, every bit the same.
//!
//! Rounding: the iteration is the exact one for the cost `-ln(fl(E)) / η`, within a few ulp
//! of `exp` divided by `η` of `M` in each block (f64: far below anything the rate resolves);
//! the roundings of each pass's products are relative, and the next scalings remove their
//! effect on the marginals. Entries of `Q` below the dtype's safe range are stored as 0, as
//! the potentials form does on its plan.
//!
//! The form runs when the factors stay in range: `η_max (max M - min M)` at most
//! [`MAX_SPREAD_F64`] (f64) or [`MAX_SPREAD_F32`] (f32), the smallest positive weights far
//! enough above the underflow that a row or column sum times `exp(-2 spread)` stays in the
//! trusted range, and the two extra `n x m` buffers allocatable. Otherwise the potentials
//! form runs.

use super::kernels::gibbs;
use super::mirror::{marginal_error, observe, tiny, MirrorOptions, MirrorOutput, Output};
use super::mirror_linear::{certificate, finish, vanished, Linear, Run};
use super::mirror_step::{AverageWeights, Schedule};
use super::sinkhorn::reduce_blocks;
use crate::alloc::try_zeroed;
use crate::error::Result;
use crate::parallel::row_block;
use crate::real::{Madd, Real, Unfused};
use crate::solver::{Observer, Termination};
use rayon::prelude::*;

/// Largest `η (max M - min M)` of the stored-plan form in f64.
pub(super) const MAX_SPREAD_F64: f64 = 150.0;
/// Largest `η (max M - min M)` of the stored-plan form in f32.
pub(super) const MAX_SPREAD_F32: f64 = 15.0;

const LANES: usize = 8;

/// What one pass does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A row step only.
    Row,
    /// A column step only.
    Col,
    /// A row step and the next column step.
    RowCol,
}

/// Blend weights of a pass (0: none), the thresholds below which stored numbers are 0, and
/// the factor's parameters when the pass rebuilds it.
#[derive(Clone, Copy)]
struct Weights<T> {
    /// The pending iterate `Q β` (before the pass) into the average.
    w0: T,
    small0: T,
    /// The row-scaled iterate into the average.
    w1: T,
    small1: T,
    /// `Q`'s entries.
    small: T,
    /// `(-η, η min M)` when the pass is the first of a block of constant step: it writes each
    /// row of `E = exp(-η (M - min M))` from the cost's row before using it.
    rebuild: Option<(T, T)>,
}

/// One block of rows of a pass.
struct Block<'a, T> {
    q: &'a mut [T],
    e: &'a mut [T],
    /// The cost's rows (read when the pass rebuilds `E`).
    cost: &'a [T],
    /// Empty without the average.
    avg: &'a mut [T],
    a: &'a [T],
    /// `ln α_i` of the row step.
    ln_alpha: &'a mut [f64],
    /// The block's column sums of the new `Q` (column steps).
    colacc: &'a mut [f64],
}

/// The two loops over a row of a pass: the row's sum and the update (with the average's
/// blend on the passes that hold an averaged iterate). [`Lanes`] is the portable form; on
/// x86-64 with AVX2+FMA, f64 passes use the intrinsics of `mirror_mult_avx2.rs`, which give the
/// same bits (the same operations on each entry, the same eight partial sums added in the same
/// order).
///
/// # Safety
///
/// An implementation may need CPU features: its methods run only where the CPU has them.
unsafe trait Rows<T: Real> {
    /// The multiply-add of the pass's other loops (`E`'s rebuild).
    type M: Madd;
    /// `sum_j (q_j e_j) b_j` in f64, in eight lanes (lane `j % 8`, the tail in lane 0).
    fn sum(q: &[T], e: &[T], b: &[T]) -> f64;
    /// The row's update (see [`Row`] and [`pass_block`]): `AVG` blends the pending and the
    /// row-scaled iterates into the average, then `q_j <- x_j e_j b_j` (`ROW && COL`) or
    /// `x_j b_j`, with `x_j = q_j e_j al` (`ROW`) or `q_j e_j`; stored values below their
    /// thresholds are 0; `COL`: `colacc_j += q_j`.
    fn update<const ROW: bool, const COL: bool, const AVG: bool>(row: Row<'_, T>, w: &Weights<T>);
}

/// One row of a pass, as [`Rows::update`] takes it.
struct Row<'r, T> {
    q: &'r mut [T],
    e: &'r [T],
    b: &'r [T],
    /// The row of the average (empty without it).
    avg: &'r mut [T],
    /// The block's column sums (empty for a row step alone).
    colacc: &'r mut [f64],
    al: T,
    /// The next row's `Q`, `E` and average, fetched line by line during this row's update
    /// (the row sum has brought this row into the cache: the memory would idle meanwhile).
    ahead: Option<[*const T; 3]>,
}

/// The portable loops (the compiler vectorises what it can).
struct Lanes<M>(std::marker::PhantomData<M>);

// SAFETY: plain Rust, no CPU feature needed beyond what `M` is compiled for by its caller.
unsafe impl<T: Real, M: Madd> Rows<T> for Lanes<M> {
    type M = M;
    #[inline(always)]
    fn sum(q: &[T], e: &[T], b: &[T]) -> f64 {
        let mut acc = [0f64; LANES];
        let (mut qc, mut ec, mut bc) = (q.chunks_exact(LANES), e.chunks_exact(LANES), b.chunks_exact(LANES));
        for ((qr, er), br) in (&mut qc).zip(&mut ec).zip(&mut bc) {
            for l in 0..LANES {
                acc[l] = M::madd((qr[l] * er[l]).as_f64(), br[l].as_f64(), acc[l]);
            }
        }
        for ((&x, &y), &z) in qc.remainder().iter().zip(ec.remainder()).zip(bc.remainder()) {
            acc[0] = M::madd((x * y).as_f64(), z.as_f64(), acc[0]);
        }
        acc.iter().sum()
    }

    #[inline(always)]
    fn update<const ROW: bool, const COL: bool, const AVG: bool>(row: Row<'_, T>, w: &Weights<T>) {
        let Row { q, e, b, avg, colacc, al, ahead } = row;
        // Stretches of eight cache lines: the next row's lines asked for first, then a loop
        // long enough for the compiler to vectorise.
        let (line, n, small) = (line::<T>(), q.len(), w.small);
        for start in (0..n).step_by(8 * line) {
            let end = (start + 8 * line).min(n);
            if let Some(next) = ahead {
                for at in (start..end).step_by(line) {
                    prefetch(next[0].wrapping_add(at));
                    prefetch(next[1].wrapping_add(at));
                    if AVG {
                        prefetch(next[2].wrapping_add(at));
                    }
                }
            }
            let (qs, es, bs) = (&mut q[start..end], &e[start..end], &b[start..end]);
            if AVG {
                blend::<T, ROW>(&mut avg[start..end], qs, es, bs, al, w);
            }
            if COL {
                let cs = &mut colacc[start..end];
                for (((qv, &ev), &bv), cv) in qs.iter_mut().zip(es).zip(bs).zip(cs) {
                    let y = entry::<T, ROW, COL>(*qv, ev, bv, al, small);
                    *qv = y;
                    *cv += y.as_f64();
                }
            } else {
                for ((qv, &ev), &bv) in qs.iter_mut().zip(es).zip(bs) {
                    *qv = entry::<T, ROW, COL>(*qv, ev, bv, al, small);
                }
            }
        }
    }
}

/// The average's blend on a stretch of a row: the pending iterate `q b` with weight `w0`, then
/// (`ROW`) the row-scaled iterate `q e al b` with weight `w1`; values below the thresholds 0.
#[inline(always)]
fn blend<T: Real, const ROW: bool>(avg: &mut [T], q: &[T], e: &[T], b: &[T], al: T, w: &Weights<T>) {
    let zero = T::zero();
    for (((v, &qj), &ej), &bj) in avg.iter_mut().zip(q).zip(e).zip(b) {
        let mut x = *v;
        x = x + w.w0 * (qj * bj - x);
        x = if x < w.small0 { zero } else { x };
        if ROW {
            let r = qj * ej * al;
            x = x + w.w1 * (r * bj - x);
            x = if x < w.small1 { zero } else { x };
        }
        *v = x;
    }
}

/// Entries of `T` in a 64-byte cache line.
const fn line<T>() -> usize {
    64 / std::mem::size_of::<T>()
}

/// Asks for the cache line at `p` (a hint: never faults, changes no value).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86-64 baseline; a prefetch does not dereference `p`.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// One entry of [`Rows::update`].
#[inline(always)]
fn entry<T: Real, const ROW: bool, const COL: bool>(qj: T, ej: T, bj: T, al: T, small: T) -> T {
    let x = if ROW { qj * ej * al } else { qj * ej };
    let y = if ROW && COL { x * ej * bj } else { x * bj };
    if y < small {
        T::zero()
    } else {
        y
    }
}

/// The pass over one block of rows (see the module docs). False when a row sum of positive
/// mass left the trusted range.
#[inline(always)]
fn pass_block<T: Real, R: Rows<T>, const ROW: bool, const COL: bool, const AVG: bool>(
    blk: Block<'_, T>,
    beta: &[T],
    w: &Weights<T>,
) -> bool {
    let m = beta.len();
    if COL {
        blk.colacc.iter_mut().for_each(|x| *x = 0.0);
    }
    let mut ok = true;
    let rows = blk.q.len() / m.max(1);
    let (qbase, ebase, abase) = (blk.q.as_ptr(), blk.e.as_ptr(), blk.avg.as_ptr());
    for (k, q) in blk.q.chunks_exact_mut(m).enumerate() {
        let e = &mut blk.e[k * m..(k + 1) * m];
        if let Some((ninv, shift)) = w.rebuild {
            // The kernel `run::gibbs` dispatches to on this CPU (the same multiply-add as this
            // pass): `E` has the same bits whichever pass computes it.
            gibbs::<T, R::M>(&blk.cost[k * m..(k + 1) * m], ninv, shift, e);
        }
        let e = &*e;
        let ai = blk.a[k].as_f64();
        blk.ln_alpha[k] = 0.0;
        if ai == 0.0 {
            continue;
        }
        let alpha = if ROW {
            let s = R::sum(q, e, beta);
            if !(s >= T::SAFE_LO && s <= T::SAFE_HI) {
                ok = false;
                continue;
            }
            ai / s
        } else {
            1.0
        };
        blk.ln_alpha[k] = alpha.ln();
        let al = T::from_f64(alpha);
        let colacc = if COL { &mut blk.colacc[..m] } else { &mut blk.colacc[..0] };
        let ahead = (k + 1 < rows).then(|| [qbase, ebase, abase].map(|p| p.wrapping_add((k + 1) * m)));
        let avg = if AVG { &mut blk.avg[k * m..(k + 1) * m] } else { &mut blk.avg[..0] };
        R::update::<ROW, COL, AVG>(Row { q, e, b: beta, avg, colacc, al, ahead }, w);
    }
    ok
}

#[cfg(target_arch = "x86_64")]
#[path = "mirror_mult_avx2.rs"]
mod avx2;

fn run_block<T: Real, const ROW: bool, const COL: bool, const AVG: bool>(
    blk: Block<'_, T>,
    beta: &[T],
    w: &Weights<T>,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the functions are compiled for.
            return unsafe {
                match blk.into_f64() {
                    Ok(b64) => avx2::pass_block_f64::<ROW, COL, AVG>(b64, avx2::as_f64(beta), &w.to_f64()),
                    Err(blk) => avx2::pass_block::<T, ROW, COL, AVG>(blk, beta, w),
                }
            };
        }
    }
    pass_block::<T, Lanes<Unfused>, ROW, COL, AVG>(blk, beta, w)
}

fn dispatch<T: Real>(kind: Kind, average: bool, blk: Block<'_, T>, beta: &[T], w: &Weights<T>) -> bool {
    match (kind, average) {
        (Kind::Row, false) => run_block::<T, true, false, false>(blk, beta, w),
        (Kind::Row, true) => run_block::<T, true, false, true>(blk, beta, w),
        (Kind::Col, false) => run_block::<T, false, true, false>(blk, beta, w),
        (Kind::Col, true) => run_block::<T, false, true, true>(blk, beta, w),
        (Kind::RowCol, false) => run_block::<T, true, true, false>(blk, beta, w),
        (Kind::RowCol, true) => run_block::<T, true, true, true>(blk, beta, w),
    }
}

/// Whether the stored-plan form keeps every factor in range for the largest step's `spread`
/// (`η (max M - min M)`).
fn applies<T: Real>(p: &Linear<'_, T>, spread: f64) -> bool {
    let max_spread = if T::NAME == "float32" { MAX_SPREAD_F32 } else { MAX_SPREAD_F64 };
    if spread.is_nan() || spread > max_spread {
        return false;
    }
    let min_ln = |v: &[f64]| v.iter().filter(|x| x.is_finite()).fold(f64::INFINITY, |acc, &x| acc.min(x));
    let low = min_ln(p.ln_a).min(min_ln(p.ln_b)) - p.ln_mass - 2.0 * spread;
    low >= T::SAFE_LO.ln() + 14.0
}

/// The state besides the buffers.
struct Scalars<T> {
    beta: Vec<T>,
    rho: Vec<f64>,
    s: f64,
    /// The averaged output's weights.
    weights: AverageWeights,
    /// The weight of the iterate `Q β` in the average, when it is one the average holds and
    /// not in yet.
    pending: Option<f64>,
}

/// Runs the stored-plan form, or returns `None` (having done nothing observable) when it does
/// not apply; the potentials form then runs.
pub(super) fn mirror_mult<T: Real>(
    p: &Linear<'_, T>,
    opts: &MirrorOptions,
    sched: &mut Schedule,
    obs: &mut dyn Observer<T>,
) -> Result<Option<MirrorOutput<T>>> {
    mirror_mult_sweeps(p, opts, sched, obs, true)
}

/// [`mirror_mult`], its passes all first block to last when `alternate` is false (the tests
/// check that the direction changes no bit).
fn mirror_mult_sweeps<T: Real>(
    p: &Linear<'_, T>,
    opts: &MirrorOptions,
    sched: &mut Schedule,
    obs: &mut dyn Observer<T>,
    alternate: bool,
) -> Result<Option<MirrorOutput<T>>> {
    let (a, b, cost) = (p.a, p.b, p.cost);
    let (n, m) = (a.len(), b.len());
    let (lo, hi) = cost
        .par_iter()
        .map(|&x| (x.as_f64(), x.as_f64()))
        .reduce(|| (f64::INFINITY, f64::NEG_INFINITY), |x, y| (x.0.min(y.0), x.1.max(y.1)));
    if !applies(p, sched.max_eta() * (hi - lo)) {
        return Ok(None);
    }
    let average = opts.output == Output::Average;
    let (Ok(mut q), Ok(mut e)) = (try_zeroed::<T>(n * m, "the plan"), try_zeroed::<T>(n * m, "the step's factor"))
    else {
        return Ok(None);
    };
    let mut avg: Vec<T> = if average { try_zeroed(n * m, "the averaged plan")? } else { Vec::new() };
    let rb = row_block(n);
    let nb = n.div_ceil(rb);
    let inv_mass = (-p.ln_mass).exp();
    q.par_chunks_mut(rb * m).enumerate().for_each(|(blk, qr)| {
        for (k, row) in qr.chunks_mut(m).enumerate() {
            let ai = a[blk * rb + k].as_f64() * inv_mass;
            row.iter_mut().zip(b).for_each(|(x, &bj)| *x = T::from_f64(ai * bj.as_f64()));
        }
    });
    let mut sc = Scalars {
        beta: vec![T::one(); m],
        rho: p.ln_a.to_vec(),
        s: 0.0,
        weights: AverageWeights::default(),
        pending: None,
    };
    let mut ln_alpha: Vec<f64> = try_zeroed(n, "the row scalings")?;
    let mut partials: Vec<f64> = try_zeroed(nb * m, "the column sums")?;
    let mut colsum: Vec<f64> = try_zeroed(m, "the column sums")?;
    let small = T::from_f64(tiny::<T>());
    let ce = opts.check_every.max(1);
    let mut history = Vec::new();
    let (mut err, mut gap) = (f64::INFINITY, f64::NAN);
    let mut termination = Termination::MaxIter;
    let (mut nit, mut block_end, mut eta) = (0usize, 0usize, 0.0);
    let mut passes = 0usize;
    'outer: while nit < opts.maxiter {
        let t = nit;
        let mut rebuild = None;
        if t >= block_end {
            let (_, end, step) = sched.block(t);
            (block_end, eta) = (end, step);
            let (ninv, shift) = (T::from_f64(-eta), T::from_f64(eta * lo));
            rebuild = Some((ninv, shift));
        }
        let kind = if t % 2 == 1 {
            Kind::Col
        } else if t + 2 <= opts.maxiter && (t + 1) % ce != 0 && t + 1 < block_end {
            Kind::RowCol
        } else {
            Kind::Row
        };
        let steps = if kind == Kind::RowCol { 2 } else { 1 };
        // Average weights (`mirror_step::AverageWeights`): the iterates the average holds
        // enter the running mean; the others only add their step to the next one's weight.
        let mut w = Weights { w0: T::zero(), small0: T::zero(), w1: T::zero(), small1: T::zero(), small, rebuild };
        if let Some(w0) = sc.pending.take() {
            (w.w0, w.small0) = (T::from_f64(w0), T::from_f64(tiny::<T>() / w0));
        }
        if average && kind != Kind::Col {
            if let Some(w1) = sc.weights.push(t + 1, eta) {
                (w.w1, w.small1) = (T::from_f64(w1), T::from_f64(tiny::<T>() / w1));
            }
        }
        let col_w = if average && kind != Kind::Row { sc.weights.push(t + steps, eta) } else { None };
        // Passes without an averaged iterate leave the average's n x m buffer alone.
        let touch = average && (w.w0 != T::zero() || w.w1 != T::zero());
        let avg_blocks: Vec<&mut [T]> =
            if touch { avg.chunks_mut(rb * m).collect() } else { (0..nb).map(|_| <&mut [T]>::default()).collect() };
        let beta = &sc.beta[..];
        let cost_blocks: Vec<&[T]> = if rebuild.is_some() {
            cost.chunks(rb * m).collect()
        } else {
            (0..nb).map(|_| <&[T]>::default()).collect()
        };
        let blocks = q
            .par_chunks_mut(rb * m)
            .zip(e.par_chunks_mut(rb * m))
            .zip(cost_blocks.into_par_iter())
            .zip(avg_blocks.into_par_iter())
            .zip(a.par_chunks(rb))
            .zip(ln_alpha.par_chunks_mut(rb))
            .zip(partials.par_chunks_mut(m))
            .map(|((((((q, e), cost), avg), a), ln_alpha), colacc)| {
                dispatch(kind, touch, Block { q, e, cost, avg, a, ln_alpha, colacc }, beta, &w)
            });
        // Every other pass takes the row blocks last to first (see the module docs): it starts
        // on the rows the previous pass left in cache. Each block's sums are the same either
        // way (its rows in order, the blocks' column sums combined in block order).
        let backward = alternate && passes % 2 == 1;
        passes += 1;
        let ok =
            if backward { blocks.rev().reduce(|| true, |x, y| x && y) } else { blocks.reduce(|| true, |x, y| x && y) };
        let ok = ok && update_scalars(p, &mut sc, kind, (eta, lo), &ln_alpha, &partials, &mut colsum);
        if !ok {
            termination = vanished(t, eta);
            nit += 1;
            break;
        }
        sc.pending = col_w;
        for _ in 0..steps {
            nit += 1;
            if nit % ce == 0 || nit == opts.maxiter {
                let out = materialize(&mut q, &mut avg, &mut sc, rb, m);
                err = marginal_error(out, a, b);
                history.push((nit, err));
                if let (Some(gtol), true) = (opts.gap_tol, err <= opts.tol) {
                    gap = certificate(p, &sc.rho, sc.s, out)?;
                    if gap <= gtol {
                        termination = Termination::Converged;
                        break 'outer;
                    }
                }
            }
            if let Some(end) = observe(obs, nit, err, eta) {
                termination = end;
                break 'outer;
            }
        }
    }
    let plan = if average && nit > 0 {
        materialize(&mut q, &mut avg, &mut sc, rb, m);
        avg
    } else {
        absorb(&mut q, &mut sc.beta, rb, m);
        q
    };
    let run = Run { nit, termination, gap, step0: sched.step0(), history };
    finish(p, opts, plan, run, &sc.rho, sc.s).map(Some)
}

/// After a pass: the row potentials, the step sum and (column steps) `β`. False when a column
/// of positive weight vanished.
fn update_scalars<T: Real>(
    p: &Linear<'_, T>,
    sc: &mut Scalars<T>,
    kind: Kind,
    (eta, lo): (f64, f64),
    ln_alpha: &[f64],
    partials: &[f64],
    colsum: &mut [f64],
) -> bool {
    let factors = if kind == Kind::RowCol { 2.0 } else { 1.0 };
    sc.s += factors * eta;
    let shift = factors * eta * lo;
    for (r, &la) in sc.rho.iter_mut().zip(ln_alpha) {
        *r += la + shift;
    }
    if kind == Kind::Row {
        sc.beta.iter_mut().for_each(|x| *x = T::one());
        return true;
    }
    reduce_blocks(partials, p.b.len(), colsum);
    let mut ok = true;
    for ((bt, &bj), &cj) in sc.beta.iter_mut().zip(p.b).zip(colsum.iter()) {
        if bj == T::zero() {
            *bt = T::zero();
        } else if cj >= T::SAFE_LO && cj <= T::SAFE_HI {
            *bt = T::from_f64(bj.as_f64() / cj);
        } else {
            ok = false;
        }
    }
    ok
}

/// The plan the run would return now: the average with the pending iterate added, or the
/// last iterate `Q diag(β)` (absorbed into `Q`, `β = 1`).
fn materialize<'b, T: Real>(q: &'b mut [T], avg: &'b mut [T], sc: &mut Scalars<T>, rb: usize, m: usize) -> &'b [T] {
    if avg.is_empty() {
        absorb(q, &mut sc.beta, rb, m);
        return q;
    }
    if let Some(w) = sc.pending.take() {
        let (wt, small) = (T::from_f64(w), T::from_f64(tiny::<T>() / w));
        let beta = &sc.beta;
        avg.par_chunks_mut(rb * m).zip(q.par_chunks(rb * m)).for_each(|(ar, qr)| {
            for (arow, qrow) in ar.chunks_mut(m).zip(qr.chunks(m)) {
                for ((x, &qv), &bv) in arow.iter_mut().zip(qrow).zip(beta) {
                    let v = *x + wt * (qv * bv - *x);
                    *x = if v < small { T::zero() } else { v };
                }
            }
        });
    }
    avg
}

/// `Q ← Q diag(β)`, `β ← 1` (entries below the safe range stored as 0).
fn absorb<T: Real>(q: &mut [T], beta: &mut [T], rb: usize, m: usize) {
    let small = T::from_f64(tiny::<T>());
    let bref = &*beta;
    q.par_chunks_mut(rb * m).for_each(|qr| {
        for row in qr.chunks_mut(m) {
            for (x, &bv) in row.iter_mut().zip(bref) {
                let v = *x * bv;
                *x = if v < small { T::zero() } else { v };
            }
        }
    });
    beta.iter_mut().for_each(|x| *x = T::one());
}

#[cfg(test)]
#[path = "mirror_mult_tests.rs"]
mod tests;
