//! Mirror Sinkhorn for the linear objective `F(P) = <P, M>` without an `n x m` state.
//!
//! With a constant gradient `M` the log-domain state of `mirror.rs` is
//! `ln P_t = r_i + c_j - S_t M_ij` with `S_t = Σ_{s<t} η_s`: only the potentials `r` (n), `c`
//! (m) and the step sum change. A row step is `r_i = ln a_i - LSE_j(c_j - S_{t+1} M_ij)` and a
//! column step `c_j = ln b_j - LSE_i(r_i - S_{t+1} M_ij)`: log-domain Sinkhorn half-steps at the
//! annealed regularisation `1 / S_t`. This module runs two iterations (a row step and a column
//! step) per read of `M`: for each row, the row sum at `S_{t+1}` gives the new `r_i`, then the
//! terms `exp(r_i + c_j - S_{t+2} M_ij)` are accumulated into the column sums of the next column
//! step, and (averaged output) the iterates of the two steps are added to the running average:
//! the column-scaled one one pass late, when its column scaling is known. Each sum is taken
//! with the current potentials as its shift (the terms stay near the marginals), and is redone
//! with the exact max-shifted log-sum-exp when it leaves the trusted range, as in `sinkhorn.rs`.
//! The iterates are the ones of the general loop up to rounding.

use super::kernels::run;
use super::mirror::{marginal_error, observe, tiny, MirrorOptions, MirrorOutput, Output, Step};
use super::mirror_gap::Certificate;
use super::mirror_mult::mirror_mult;
use super::mirror_step::{AverageWeights, Schedule};
use super::sinkhorn::reduce_blocks;
use crate::alloc::{try_filled, try_zeroed};
use crate::error::Result;
use crate::parallel::row_block;
use crate::real::Real;
use crate::solver::{Observer, Termination};
use rayon::prelude::*;

/// The problem and what `mirror_sinkhorn` has already derived from it.
pub(super) struct Linear<'p, T> {
    pub(super) a: &'p [T],
    pub(super) b: &'p [T],
    pub(super) cost: &'p [T],
    pub(super) ln_a: &'p [f64],
    pub(super) ln_b: &'p [f64],
    pub(super) ln_mass: f64,
    /// `δ` of the paper's first step.
    pub(super) delta: f64,
}

/// The state: potentials, step sum, the running average and its pending column iterate.
struct State<T> {
    r: Vec<f64>,
    c: Vec<f64>,
    s: f64,
    /// The column-scaled iterate `exp(r + c - s M)` at `(s, weight)` not yet in the average.
    pending: Option<(f64, f64)>,
    avg: Vec<T>,
}

/// One pass: what it does to each row.
#[derive(Clone, Copy)]
struct Pass {
    /// Add the pending iterate at this step sum with this weight first.
    pending: Option<(f64, f64)>,
    /// The row step's step sum.
    s1: f64,
    /// The weight of the row-scaled iterate in the average (`None`: last-iterate output).
    w1: Option<f64>,
    /// The next column step's step sum, when there is one.
    s2: Option<f64>,
}

/// Mirror Sinkhorn for `<P, M>`: the stored-plan form of `mirror_mult.rs` where its range
/// conditions hold, else the potentials form of this module.
pub(super) fn mirror_linear<T: Real>(
    p: &Linear<'_, T>,
    opts: &MirrorOptions,
    obs: &mut dyn Observer<T>,
) -> Result<MirrorOutput<T>> {
    let step0 = match opts.step {
        Step::Sqrt(Some(e)) | Step::Constant(e) => e,
        Step::Sqrt(None) => {
            let gmax = p.cost.par_iter().map(|v| v.abs().as_f64()).reduce(|| 0.0, f64::max);
            if gmax > 0.0 {
                p.delta.sqrt() / gmax
            } else {
                1.0
            }
        }
    };
    let mut sched = Schedule::new(opts.step, step0);
    if let Some(out) = mirror_mult(p, opts, &mut sched, obs)? {
        return Ok(out);
    }
    mirror_linear_exp(p, opts, sched, obs)
}

/// The potentials form: one `exp` per entry and iteration, any step.
pub(super) fn mirror_linear_exp<T: Real>(
    p: &Linear<'_, T>,
    opts: &MirrorOptions,
    mut sched: Schedule,
    obs: &mut dyn Observer<T>,
) -> Result<MirrorOutput<T>> {
    let (a, b) = (p.a, p.b);
    let (n, m) = (a.len(), b.len());
    let average = opts.output == Output::Average;
    let mut st = State {
        r: p.ln_a.to_vec(),
        c: p.ln_b.iter().map(|x| x - p.ln_mass).collect(),
        s: 0.0,
        pending: None,
        avg: if average { try_zeroed(n * m, "the averaged plan")? } else { Vec::new() },
    };
    let mut plan: Vec<T> = if average { Vec::new() } else { try_zeroed(n * m, "the plan")? };
    let nb = n.div_ceil(row_block(n));
    let mut partials: Vec<f64> = try_zeroed(nb * m, "the column sums")?;
    let mut colsum: Vec<f64> = try_filled(m, 0.0, "the column sums")?;
    let step0 = sched.step0();
    let mut eta = |t: usize| sched.eta(t);
    let mut weights = AverageWeights::default();
    let mut history = Vec::new();
    let (mut err, mut gap) = (f64::INFINITY, f64::NAN);
    let mut termination = Termination::MaxIter;
    let mut nit = 0;
    'outer: while nit < opts.maxiter {
        // The row step of iteration `nit` and the column sums of iteration `nit + 1`.
        let t = nit;
        // Only the iterates `mirror_step::AverageWeights` holds enter the average.
        let (e1, has_col) = (eta(t), t + 1 < opts.maxiter);
        let w1 = if average { weights.push(t + 1, e1) } else { None };
        let s1 = st.s + e1;
        let (s2, e2) = if has_col {
            let e2 = eta(t + 1);
            (Some(s1 + e2), e2)
        } else {
            (None, 0.0)
        };
        let pass = Pass { pending: st.pending.take(), s1, w1, s2 };
        let ok = row_pass(p, &pass, &mut st, &mut partials);
        st.s = s1;
        nit += 1;
        if !ok {
            termination = vanished(t, e1);
            break;
        }
        for half in 0..2 {
            if half == 1 {
                // The column step of iteration `nit` (its sums came with the row pass).
                let s2 = match s2 {
                    Some(s2) if nit < opts.maxiter => s2,
                    _ => break,
                };
                if !col_update(p, &mut st, s2, &mut partials, &mut colsum) {
                    termination = vanished(nit, s2 - st.s);
                    nit += 1;
                    break 'outer;
                }
                st.s = s2;
                if average {
                    st.pending = weights.push(nit + 1, e2).map(|w2| (s2, w2));
                }
                nit += 1;
            }
            if nit % opts.check_every.max(1) == 0 || nit == opts.maxiter {
                current(p, &mut st, &mut plan);
                let out: &[T] = if average { &st.avg } else { &plan };
                err = marginal_error(out, a, b);
                history.push((nit, err));
                if let (Some(gtol), true) = (opts.gap_tol, err <= opts.tol) {
                    gap = certificate(p, &st.r, st.s, out)?;
                    if gap <= gtol {
                        termination = Termination::Converged;
                        break 'outer;
                    }
                }
            }
            let step = if half == 0 { e1 } else { s2.unwrap_or(s1) - s1 };
            if let Some(end) = observe(obs, nit, err, step) {
                termination = end;
                break 'outer;
            }
        }
    }
    let plan = if average && nit > 0 {
        current(p, &mut st, &mut plan);
        std::mem::take(&mut st.avg)
    } else {
        let mut buf = if plan.is_empty() { try_zeroed(n * m, "the plan")? } else { plan };
        current_last(p, &st, &mut buf);
        buf
    };
    let run = Run { nit, termination, gap, step0, history };
    finish(p, opts, plan, run, &st.r, st.s)
}

/// How a run ended, before the final measurements.
pub(super) struct Run {
    pub(super) nit: usize,
    pub(super) termination: Termination,
    pub(super) gap: f64,
    pub(super) step0: f64,
    pub(super) history: Vec<(usize, f64)>,
}

/// The output: marginal error and gap re-measured on `plan` (row potentials `r` at step sum
/// `s`), the status fixed to what holds on it.
pub(super) fn finish<T: Real>(
    p: &Linear<'_, T>,
    opts: &MirrorOptions,
    plan: Vec<T>,
    run: Run,
    r: &[f64],
    s: f64,
) -> Result<MirrorOutput<T>> {
    let Run { nit, mut termination, mut gap, step0, history } = run;
    let marginal_error = marginal_error(&plan, p.a, p.b);
    if s > 0.0 && !matches!(termination, Termination::Numerical(_)) {
        gap = certificate(p, r, s, &plan)?;
    }
    let met = marginal_error <= opts.tol && opts.gap_tol.is_none_or(|t| gap <= t);
    if termination == Termination::Converged && !met {
        termination = Termination::MaxIter;
    }
    if termination == Termination::MaxIter && met {
        termination = Termination::Converged;
    }
    if !plan.par_iter().all(|x| x.is_finite()) && !matches!(termination, Termination::Aborted) {
        termination = Termination::Numerical("the plan has non-finite entries".into());
    }
    let cost = p.cost;
    let cost_v =
        crate::parallel::chunked_sums::<1>(plan.len(), |r| [r.map(|k| plan[k].as_f64() * cost[k].as_f64()).sum()])[0];
    Ok(MirrorOutput { plan, nit, termination, marginal_error, cost: cost_v, fun: cost_v, step0, history, gap })
}

pub(super) fn vanished(t: usize, eta: f64) -> Termination {
    Termination::Numerical(format!(
        "iteration {t}: a row or column of the plan vanished (the step {eta:.3e} is too large for the dtype); \
         lower `step`"
    ))
}

/// The plan the run would return now: the average (with the pending iterate added) or the
/// last iterate written into `plan`.
fn current<T: Real>(p: &Linear<'_, T>, st: &mut State<T>, plan: &mut [T]) {
    if st.avg.is_empty() {
        current_last(p, st, plan);
        return;
    }
    if let Some((s, w)) = st.pending.take() {
        let (n, m) = (p.a.len(), p.b.len());
        let rb = row_block(n);
        let cs: Vec<T> = st.c.iter().map(|&x| T::from_f64(x)).collect();
        let r = &st.r;
        st.avg.par_chunks_mut(rb * m).zip(p.cost.par_chunks(rb * m)).enumerate().for_each(|(blk, (ar, mr))| {
            let mut tmp = vec![T::zero(); m];
            for (k, (arow, mrow)) in ar.chunks_mut(m).zip(mr.chunks(m)).enumerate() {
                let i = blk * rb + k;
                if p.a[i] > T::zero() {
                    run::row_exp(mrow, &cs, T::from_f64(r[i]), T::from_f64(-s), &mut tmp);
                    blend(arow, &tmp, T::one(), w);
                }
            }
        });
    }
}

/// `plan = exp(r + c - s M)` (entries below the dtype's safe range stored as 0).
fn current_last<T: Real>(p: &Linear<'_, T>, st: &State<T>, plan: &mut [T]) {
    let (n, m) = (p.a.len(), p.b.len());
    let rb = row_block(n);
    let cs: Vec<T> = st.c.iter().map(|&x| T::from_f64(x)).collect();
    let small = T::from_f64(tiny::<T>());
    plan.par_chunks_mut(rb * m).zip(p.cost.par_chunks(rb * m)).enumerate().for_each(|(blk, (pr, mr))| {
        for (k, (prow, mrow)) in pr.chunks_mut(m).zip(mr.chunks(m)).enumerate() {
            let i = blk * rb + k;
            if p.a[i] > T::zero() {
                run::row_exp(mrow, &cs, T::from_f64(st.r[i]), T::from_f64(-st.s), prow);
                prow.iter_mut().for_each(|x| *x = if *x < small { T::zero() } else { *x });
            } else {
                prow.iter_mut().for_each(|x| *x = T::zero());
            }
        }
    });
}

/// `avg += w (scale * x - avg)`, entries below the safe range stored as 0.
#[inline]
fn blend<T: Real>(avg: &mut [T], x: &[T], scale: T, w: f64) {
    let (wt, small) = (T::from_f64(w), T::from_f64(tiny::<T>() / w));
    for (a, &y) in avg.iter_mut().zip(x) {
        let v = *a + wt * (y * scale - *a);
        *a = if v < small { T::zero() } else { v };
    }
}

/// The fused pass over `M`: the pending average term, the row step at `s1`, the next column
/// step's sums at `s2` (into per-block partials). False when a row with positive weight
/// vanished.
fn row_pass<T: Real>(p: &Linear<'_, T>, pass: &Pass, st: &mut State<T>, partials: &mut [f64]) -> bool {
    let (n, m) = (p.a.len(), p.b.len());
    let rb = row_block(n);
    let cs: Vec<T> = st.c.iter().map(|&x| T::from_f64(x)).collect();
    let cs = &cs[..];
    let State { r, avg, .. } = st;
    let avg_blocks: Vec<Option<&mut [T]>> = if avg.is_empty() {
        (0..n.div_ceil(rb)).map(|_| None).collect()
    } else {
        avg.chunks_mut(rb * m).map(Some).collect()
    };
    let thr = T::from_f64(tiny::<T>());
    p.cost
        .par_chunks(rb * m)
        .zip(r.par_chunks_mut(rb))
        .zip(partials.par_chunks_mut(m))
        .zip(avg_blocks.into_par_iter())
        .enumerate()
        .map(|(blk, (((mr, rr), cacc), mut avg))| {
            let (mut t0, mut t1) = (vec![T::zero(); m], vec![T::zero(); m]);
            cacc.iter_mut().for_each(|x| *x = 0.0);
            let mut ok = true;
            for (k, mrow) in mr.chunks(m).enumerate() {
                let i = blk * rb + k;
                let ai = p.a[i].as_f64();
                if ai == 0.0 {
                    continue;
                }
                let arow = avg.as_deref_mut().map(|x| &mut x[k * m..(k + 1) * m]);
                if let (Some((s0, w0)), Some(arow)) = (pass.pending, arow) {
                    run::row_exp(mrow, cs, T::from_f64(rr[k]), T::from_f64(-s0), &mut t0);
                    blend(arow, &t0, T::one(), w0);
                }
                // The row step: the row's sum with the current r_i as its shift.
                let mut s = run::row_exp(mrow, cs, T::from_f64(rr[k]), T::from_f64(-pass.s1), &mut t1);
                let mut shift = rr[k];
                if !(s >= T::SAFE_LO && s <= T::SAFE_HI) {
                    let mx = row_max(mrow, cs, pass.s1);
                    if !mx.is_finite() {
                        ok = false;
                        continue;
                    }
                    shift = -mx;
                    s = run::row_exp(mrow, cs, T::from_f64(shift), T::from_f64(-pass.s1), &mut t1);
                    if !(s > 0.0 && s.is_finite()) {
                        ok = false;
                        continue;
                    }
                }
                let scale = ai / s;
                rr[k] = shift + scale.ln();
                if let (Some(w1), Some(arow)) = (pass.w1, avg.as_deref_mut().map(|x| &mut x[k * m..(k + 1) * m])) {
                    let sc = T::from_f64(scale);
                    let small = T::from_f64(thr.as_f64() / scale);
                    t1.iter_mut().for_each(|x| *x = if *x < small { T::zero() } else { *x });
                    blend(arow, &t1, sc, w1);
                }
                if let Some(s2) = pass.s2 {
                    run::row_exp(mrow, cs, T::from_f64(rr[k]), T::from_f64(-s2), &mut t0);
                    for (acc, &x) in cacc.iter_mut().zip(&t0) {
                        *acc += x.as_f64();
                    }
                }
            }
            ok
        })
        .reduce(|| true, |x, y| x && y)
}

/// `max_j (cs_j - s M_ij)` in f64 (`-inf` when every term is).
fn row_max<T: Real>(mrow: &[T], cs: &[T], s: f64) -> f64 {
    mrow.iter().zip(cs).map(|(&mv, &cv)| cv.as_f64() - s * mv.as_f64()).fold(f64::NEG_INFINITY, f64::max)
}

/// The column step at `s2` from the sums the row pass left in `partials`; the exact column
/// log-sum-exp (two more passes) where a sum left the trusted range. False when a column with
/// positive weight vanished.
fn col_update<T: Real>(
    p: &Linear<'_, T>,
    st: &mut State<T>,
    s2: f64,
    partials: &mut [f64],
    colsum: &mut [f64],
) -> bool {
    let (n, m) = (p.a.len(), p.b.len());
    reduce_blocks(partials, m, colsum);
    let trusted = |x: f64| x >= T::SAFE_LO && x <= T::SAFE_HI;
    if (0..m).all(|j| p.b[j] == T::zero() || trusted(colsum[j])) {
        for ((cj, &bj), &sj) in st.c.iter_mut().zip(p.b).zip(colsum.iter()) {
            if bj > T::zero() {
                *cj += (bj.as_f64() / sj).ln();
            }
        }
        return true;
    }
    // Exact: c_j = ln b_j - LSE_i(r_i - s2 M_ij), max-shifted, block partials in order.
    let rb = row_block(n);
    let rs: Vec<T> = st.r.iter().map(|&x| T::from_f64(x)).collect();
    let ninv = T::from_f64(-s2);
    let nb = n.div_ceil(rb);
    let mut cm = vec![T::neg_infinity(); nb * m];
    p.cost
        .par_chunks(rb * m)
        .zip(rs.par_chunks(rb))
        .zip(cm.par_chunks_mut(m))
        .for_each(|((mr, fs), cmb)| run::col_max(mr, fs, ninv, cmb));
    let mut colmax = vec![f64::NEG_INFINITY; m];
    for blk in cm.chunks(m) {
        for (c, &x) in colmax.iter_mut().zip(blk) {
            *c = c.max(x.as_f64());
        }
    }
    let gs: Vec<T> = colmax.iter().map(|&x| T::from_f64(if x.is_finite() { -x } else { 0.0 })).collect();
    p.cost.par_chunks(rb * m).zip(rs.par_chunks(rb)).zip(partials.par_chunks_mut(m)).for_each(|((mr, fs), acc)| {
        let mut tmp = vec![T::zero(); m];
        run::col_sum(mr, fs, &gs, ninv, &mut tmp, acc)
    });
    reduce_blocks(partials, m, colsum);
    let mut ok = true;
    for j in 0..m {
        if p.b[j] == T::zero() {
            continue;
        }
        if !(colsum[j] > 0.0 && colsum[j].is_finite() && colmax[j].is_finite()) {
            ok = false;
            continue;
        }
        st.c[j] = p.ln_b[j] - (colmax[j] + colsum[j].ln());
    }
    ok
}

/// The gap at `plan`: the row potentials are `(r_i - ln a_i) / S` (the accumulated row shifts
/// over the step sum, as in `mirror.rs`).
pub(super) fn certificate<T: Real>(p: &Linear<'_, T>, r: &[f64], s: f64, plan: &[T]) -> Result<f64> {
    let f: Vec<f64> = r.iter().zip(p.ln_a).map(|(r, la)| if la.is_finite() { (r - la) / s } else { 0.0 }).collect();
    let cert = Certificate { a: p.a, b: p.b, cost: Some(p.cost), objective: super::mirror::Objective::Linear, f: &f };
    cert.gap(plan, &mut [], 0, None)
}
