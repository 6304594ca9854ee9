//! Fixed-support entropic Wasserstein barycenters by iterative Bregman projections (Benamou et
//! al. 2015) in the log domain, over any [`BatchLogKernel`] (a dense cost, or a separable grid cost:
//! the convolutional barycenters of Solomon et al. 2015).
//!
//! Given `k` histograms `a_h` on `n` source points, weights `w_h` (summing to 1) and a cost
//! `C` (n x m), the barycenter `q` on the `m` target points minimises
//! `sum_h w_h OT_reg(a_h, q)`. Each histogram has a plan `P_h = exp((f_h + g_h - C) / reg)`;
//! one iteration fits every plan's source marginal to `a_h` (`f_h = reg (ln a_h - LSE(g_h - C))`),
//! takes the weighted geometric mean of the target marginals `c_h` as `q`, and fits every
//! target marginal to `q` (`g_h += reg (ln q - ln c_h)`). The run stops after the source update
//! (the source marginals then hold by construction, up to rounding) when
//! `||P_h 1 - a_h||_1 + ||P_h^T 1 - q||_1 <= tol` for every `h`, measured on the returned `q`
//! (rounded to the data's dtype) and the potentials returned; so `marginal_error` is what the
//! returned state has, not an estimate.
//!
//! On a 2-D grid each histogram's applies pass their results on in the scaling form where it
//! holds to full accuracy ([`super::gibbs::Scaled`]): the next apply's shifted exponentials are
//! ratios (`a / s`, `q / s`) instead of `exp` of differences of logarithms, so an iteration takes
//! one `ln` and one `exp` per grid point and histogram (the target terms) instead of five.

use super::controller::Stall;
use super::gibbs::{BatchLogKernel, Scaled, Workspace};
use super::gibbs_ops::{exp_all, exp_sum, ln_added};
use crate::alloc::{checked_len, try_zeroed};
use crate::error::{OptError, Result};
use crate::real::{Real, Unfused};
use crate::solver::{Control, Observer, Report, Termination};
use rayon::prelude::*;

#[derive(Clone, Debug)]
pub struct BarycenterOptions {
    pub reg: f64,
    /// Bound on every histogram's `||P_h 1 - a_h||_1 + ||P_h^T 1 - q||_1`.
    pub tol: f64,
    pub maxiter: usize,
}

/// Result of [`barycenter`]. `barycenter` is empty when the run was aborted.
#[derive(Debug)]
pub struct BarycenterOutput<T> {
    pub barycenter: Vec<T>,
    /// Potentials in the units of the cost (float64): `f` is `k x n`, `g` is `k x m`.
    pub f: Vec<f64>,
    pub g: Vec<f64>,
    pub nit: usize,
    pub termination: Termination,
    /// Per histogram: `||P_h 1 - a_h||_1 + ||P_h^T 1 - q||_1` on the returned state.
    pub marginal_error: Vec<f64>,
}

/// The state of a run: potentials over `reg` (histogram-major) and the last applies.
struct State {
    k: usize,
    n: usize,
    m: usize,
    /// `ln a` (`-inf` at zero weights).
    log_a: Vec<f64>,
    /// `f / reg` (k x n), `g / reg` (k x m).
    fs: Vec<f64>,
    gs: Vec<f64>,
    /// `LSE_j(g_j / reg - C_ij / reg)` (k x n) from the last source update.
    to_src: Vec<f64>,
    /// `LSE_i(f_i / reg - C_ij / reg)` (k x m) after it.
    to_tgt: Vec<f64>,
    /// `ln q` (m).
    log_q: Vec<f64>,
    /// Per histogram (k x m): its term `w_h (g_h + to_tgt_h)` of `ln q`, and its target
    /// marginal `exp(g_h + to_tgt_h)` (for the error check), computed where its target apply
    /// ran (in its task, in parallel) and combined in histogram order on the calling thread.
    terms: Vec<f64>,
    marg: Vec<f64>,
    /// The kernel's scratch space (allocated once): for all histograms, or one per histogram
    /// where they are applied one at a time.
    ws: Workspace,
    ws_each: Vec<Workspace>,
    /// `a` in float64 (k x n) and `q = exp(ln q)` (m): the numerators of the scaling form.
    a: Vec<f64>,
    q: Vec<f64>,
    /// Per histogram, where its last apply each way ran in the scaling form
    /// ([`BatchLogKernel::to_target_scaled`]): its sums `s` (k x n, k x m) and `Some(t)`, the
    /// apply being `t + ln s` (`to_src` and `fs` are then only computed when the state is
    /// returned, by [`State::settle`]).
    s_src: Vec<f64>,
    s_tgt: Vec<f64>,
    t_src: Vec<Option<f64>>,
    t_tgt: Vec<Option<f64>>,
}

/// One histogram's part of the [`State`] in the per-histogram tasks of [`State::half_steps`].
struct Hist<'a> {
    fs: &'a mut [f64],
    gs: &'a mut [f64],
    to_src: &'a mut [f64],
    to_tgt: &'a mut [f64],
    s_src: &'a mut [f64],
    s_tgt: &'a mut [f64],
    t_src: &'a mut Option<f64>,
    t_tgt: &'a mut Option<f64>,
    terms: &'a mut [f64],
    marg: &'a mut [f64],
    la: &'a [f64],
    a: &'a [f64],
    ws: &'a mut Workspace,
    wh: f64,
}

impl Hist<'_> {
    /// One histogram's target update (`fit`), source update and target terms. Each apply takes
    /// its input in the scaling form of the previous one where that ran in it: the source
    /// update's input `g = ln q - (t + ln s_tgt)` as `-t + ln(q / s_tgt)`, the target update's
    /// `f = ln a - (t + ln s_src)` as `-t + ln(a / s_src)`, so that neither takes an `exp` or
    /// `ln` per entry and `f` is not formed (the same values up to rounding); else (the first
    /// iteration, or where the scaling form does not hold to full accuracy) from the
    /// log-domain potentials, as the general path.
    /// `q`: `exp(ln q)` where the source update may take it as numerator.
    fn steps<K: BatchLogKernel + ?Sized>(&mut self, kern: &K, fit: bool, log_q: &[f64], q: Option<&[f64]>) {
        if fit {
            fit_one(self.gs, self.to_tgt, log_q);
        }
        let ys = match (*self.t_tgt, q) {
            (Some(t), Some(q)) if fit => Scaled::Ratio { num: q, den: self.s_tgt, c: -t },
            _ => Scaled::Logs(self.gs),
        };
        *self.t_src = kern.to_source_scaled(ys, self.s_src, self.ws);
        if self.t_src.is_none() {
            kern.to_source(self.gs, 1, self.to_src, self.ws);
            source_update(self.fs, self.la, self.to_src);
        }
        let xs = match *self.t_src {
            Some(t) => Scaled::Ratio { num: self.a, den: self.s_src, c: -t },
            None => Scaled::Logs(self.fs),
        };
        *self.t_tgt = kern.to_target_scaled(xs, self.s_tgt, self.ws);
        match *self.t_tgt {
            // Every sum is trusted (checked by the apply).
            Some(t) => {
                ln_added(self.s_tgt, t, self.to_tgt);
            }
            None => {
                if let Some(t) = *self.t_src {
                    // The log-domain input of the general path.
                    ln_added(self.s_src, t, self.to_src);
                    source_update(self.fs, self.la, self.to_src);
                    *self.t_src = None;
                }
                kern.to_target(self.fs, 1, self.to_tgt, self.ws);
            }
        }
        target_terms(self.gs, self.to_tgt, self.wh, self.terms, self.marg);
    }
}

impl State {
    /// The target update of the previous iteration (`fit`: not on the first), the source
    /// update, then the target marginals and the geometric mean `ln q`. Where the kernel applies
    /// one histogram at a time as fast as all ([`BatchLogKernel::per_vector`]), each histogram's
    /// three steps are one task (one hand-over to the thread pool per iteration instead of two,
    /// and the element-wise updates in parallel too), and its applies run in the scaling form
    /// where it holds ([`Hist::steps`]).
    fn half_steps<K: BatchLogKernel + ?Sized>(&mut self, kern: &K, w: &[f64], fit: bool) {
        let (n, m) = (self.n, self.m);
        match kern.per_vector() {
            Some(per) if self.ws_each.len() >= self.k => {
                // The source updates take `q` as numerator only where it holds `ln q` to
                // rounding: no entry underflowed to a subnormal or 0 (an unreached point,
                // `ln q = -inf`, is an exact 0).
                let q_ok = fit
                    && self.q.iter().zip(&self.log_q).all(|(&v, &l)| v >= f64::MIN_POSITIVE || l == f64::NEG_INFINITY);
                let (log_q, q) = (&self.log_q, &self.q);
                let hists: Vec<Hist<'_>> = self
                    .fs
                    .chunks_mut(n)
                    .zip(self.gs.chunks_mut(m))
                    .zip(self.to_src.chunks_mut(n).zip(self.to_tgt.chunks_mut(m)))
                    .zip(self.s_src.chunks_mut(n).zip(self.s_tgt.chunks_mut(m)))
                    .zip(self.t_src.iter_mut().zip(self.t_tgt.iter_mut()))
                    .zip(self.log_a.chunks(n).zip(self.a.chunks(n)))
                    .zip(self.ws_each.iter_mut())
                    .zip(self.terms.chunks_mut(m).zip(self.marg.chunks_mut(m)).zip(w))
                    .map(
                        |(
                            ((((((fs, gs), (to_src, to_tgt)), (s_src, s_tgt)), (t_src, t_tgt)), (la, a)), ws),
                            ((terms, marg), &wh),
                        )| Hist {
                            fs,
                            gs,
                            to_src,
                            to_tgt,
                            s_src,
                            s_tgt,
                            t_src,
                            t_tgt,
                            terms,
                            marg,
                            la,
                            a,
                            ws,
                            wh,
                        },
                    )
                    .collect();
                let task = |mut h: Hist<'_>| h.steps(kern, fit, log_q, q_ok.then_some(q));
                if self.k <= per {
                    hists.into_iter().for_each(task);
                } else {
                    hists.into_par_iter().with_min_len(per).for_each(task);
                }
            }
            _ => {
                if fit {
                    self.fit_targets();
                }
                kern.to_source(&self.gs, self.k, &mut self.to_src, &mut self.ws);
                source_update(&mut self.fs, &self.log_a, &self.to_src);
                kern.to_target(&self.fs, self.k, &mut self.to_tgt, &mut self.ws);
                for (((g, t), (terms, marg)), &wh) in self
                    .gs
                    .chunks(m)
                    .zip(self.to_tgt.chunks(m))
                    .zip(self.terms.chunks_mut(m).zip(self.marg.chunks_mut(m)))
                    .zip(w)
                {
                    target_terms(g, t, wh, terms, marg);
                }
            }
        }
        // ln q: the terms added in histogram order (each as `q += w_h (g + t)`).
        self.log_q.iter_mut().for_each(|v| *v = 0.0);
        for (h, &wh) in w.iter().enumerate() {
            if wh == 0.0 {
                continue;
            }
            for (q, &tv) in self.log_q.iter_mut().zip(&self.terms[h * m..(h + 1) * m]) {
                *q += tv;
            }
        }
    }

    /// Per histogram, the L1 error of the target marginal against `q` (as given), from the
    /// marginals of [`target_terms`].
    fn col_errors(&self, q: &[f64]) -> Vec<f64> {
        self.marg.chunks_exact(self.m).map(|mh| l1_dist(mh, q)).collect()
    }

    /// Per histogram, the L1 error of the source marginal against `a`.
    fn row_errors<T: Real>(&self, a: &[T]) -> Vec<f64> {
        (0..self.k)
            .map(|h| {
                let r = h * self.n..(h + 1) * self.n;
                self.fs[r.clone()]
                    .iter()
                    .zip(&self.to_src[r.clone()])
                    .zip(&a[r])
                    .map(|((&f, &t), &av)| (exp(f + t) - av.as_f64()).abs())
                    .sum()
            })
            .collect()
    }

    /// `to_src` and `f` of the histograms whose last source update ran in the scaling form
    /// (before the state is returned or measured).
    fn settle(&mut self) {
        let n = self.n;
        for (h, t) in self.t_src.iter().enumerate() {
            if let Some(t) = *t {
                let r = h * n..(h + 1) * n;
                ln_added(&self.s_src[r.clone()], t, &mut self.to_src[r.clone()]);
                source_update(&mut self.fs[r.clone()], &self.log_a[r.clone()], &self.to_src[r]);
            }
        }
    }

    /// The target update: every target marginal becomes `q`.
    fn fit_targets(&mut self) {
        let m = self.m;
        for (g, t) in self.gs.chunks_mut(m).zip(self.to_tgt.chunks(m)) {
            fit_one(g, t, &self.log_q);
        }
    }
}

/// One histogram's term `w_h (g + t)` of `ln q` and its target marginal `exp(g + t)` (the
/// vectorised exponential, as the error check [`l1_dist`] had it in one pass before).
fn target_terms(g: &[f64], t: &[f64], wh: f64, terms: &mut [f64], marg: &mut [f64]) {
    for ((o, &gv), &tv) in terms.iter_mut().zip(g).zip(t) {
        *o = wh * (gv + tv);
    }
    exp_sum(g, t, marg);
}

/// `sum_j |e_j - q_j|` in the order of `exp_l1_dist` (four lanes, the tail first): with
/// `e = exp(x + y)` from [`exp_sum`], the same sum bit for bit (a test checks it).
fn l1_dist(e: &[f64], q: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (ec, qc) = (e.chunks_exact(4), q.chunks_exact(4));
    let tail: f64 = ec.remainder().iter().zip(qc.remainder()).map(|(&a, &c)| (a - c).abs()).sum();
    for (ev, qv) in ec.zip(qc) {
        for l in 0..4 {
            acc[l] += (ev[l] - qv[l]).abs();
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// The source update of one or more histograms: `f = ln a - LSE(g - C)` (`-inf` at zero weights).
fn source_update(fs: &mut [f64], log_a: &[f64], to_src: &[f64]) {
    for ((f, &la), &t) in fs.iter_mut().zip(log_a).zip(to_src) {
        *f = if la == f64::NEG_INFINITY { f64::NEG_INFINITY } else { la - t };
    }
}

/// The target update of one histogram: its target marginal becomes `q`.
fn fit_one(gs: &mut [f64], to_tgt: &[f64], log_q: &[f64]) {
    for ((g, &t), &lq) in gs.iter_mut().zip(to_tgt).zip(log_q) {
        // A target point no plan reaches stays unreached.
        *g = if t == f64::NEG_INFINITY { f64::NEG_INFINITY } else { lq - t };
    }
}

/// `exp` with `exp(-inf) = 0` (and no NaN from `-inf + inf`).
fn exp(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.fast_exp::<Unfused>()
    }
}

/// The entropic barycenter of the `k` histograms `a` (histogram-major, `k x n`) with weights `w`
/// (non-negative, summing to 1) for the cost of `kern` at `opts.reg` (the kernel's own).
pub fn barycenter<T: Real, K: BatchLogKernel + ?Sized>(
    kern: &K,
    a: &[T],
    w: &[f64],
    opts: &BarycenterOptions,
    obs: &mut dyn Observer<T>,
) -> Result<BarycenterOutput<T>> {
    let (n, m, k) = (kern.n(), kern.m(), w.len());
    let bad = |s: &str| Err(OptError::InvalidInput(s.to_string()));
    if k == 0 || n == 0 || m == 0 || a.len() != checked_len(k, n, "the histograms")? {
        return bad("the histograms must be k x n with k >= 1 for the kernel's n source points");
    }
    if !a.iter().all(|v| v.is_finite() && *v >= T::zero()) {
        return bad("the histograms must be finite and non-negative");
    }
    if !w.iter().all(|v| v.is_finite() && *v >= 0.0) || (w.iter().sum::<f64>() - 1.0).abs() > 1e-9 {
        return bad("the weights must be non-negative and sum to 1");
    }
    let masses: Vec<f64> = a.chunks_exact(n).map(|h| h.iter().map(|v| v.as_f64()).sum()).collect();
    if masses.iter().any(|&s| s.is_nan() || s <= 0.0 || (s - masses[0]).abs() > 1e-6 * masses[0]) {
        return bad("the histograms must have the same positive total mass");
    }
    let (kn, km) = (checked_len(k, n, "the potentials")?, checked_len(k, m, "the potentials")?);
    let mut st = State {
        k,
        n,
        m,
        log_a: a.iter().map(|v| if *v > T::zero() { v.as_f64().ln() } else { f64::NEG_INFINITY }).collect(),
        fs: try_zeroed(kn, "the potentials")?,
        gs: try_zeroed(km, "the potentials")?,
        to_src: try_zeroed(kn, "the potentials")?,
        to_tgt: try_zeroed(km, "the potentials")?,
        log_q: try_zeroed(m, "the barycenter")?,
        terms: try_zeroed(km, "the potentials")?,
        marg: try_zeroed(km, "the potentials")?,
        ws: Workspace::default(),
        ws_each: Vec::new(),
        a: try_zeroed(kn, "the histograms")?,
        q: try_zeroed(m, "the barycenter")?,
        s_src: Vec::new(),
        s_tgt: Vec::new(),
        t_src: vec![None; k],
        t_tgt: vec![None; k],
    };
    st.a.iter_mut().zip(a).for_each(|(d, &v)| *d = v.as_f64());
    if kern.per_vector().is_some() {
        st.ws_each = crate::alloc::try_with_capacity(k, "the kernel's work buffers")?;
        for _ in 0..k {
            st.ws_each.push(kern.workspace(1)?);
        }
        st.s_src = try_zeroed(kn, "the potentials")?;
        st.s_tgt = try_zeroed(km, "the potentials")?;
    } else {
        st.ws = kern.workspace(k)?;
    }
    let mut stall = Stall::new();
    let mut confirm = opts.tol;
    let mut nit = 0usize;
    loop {
        st.half_steps(kern, w, nit > 0);
        nit += 1;
        exp_all(&st.log_q, &mut st.q);
        let col = st.col_errors(&st.q);
        let err = col.iter().fold(0.0f64, |x, &y| x.max(y));
        if !err.is_finite() {
            return Err(OptError::Numerical(format!(
                "the barycenter iterations produced non-finite marginals at iteration {nit} \
                 (reg = {:e}); rescale the cost and reg together",
                opts.reg
            )));
        }
        let end = if err <= confirm {
            st.settle();
            let out = output(&st, a, opts.reg, nit, Termination::Converged);
            if out.marginal_error.iter().all(|&e| e <= opts.tol) {
                return Ok(out);
            }
            // Rounding of the returned barycenter keeps the measured error above the estimate.
            confirm = err * 0.5;
            None
        } else if nit >= opts.maxiter {
            Some(Termination::MaxIter)
        } else if stall.stalled(nit, err) {
            Some(stall.termination::<f64>(opts.tol))
        } else {
            None
        };
        if let Some(t) = end {
            st.settle();
            return Ok(output(&st, a, opts.reg, nit, t));
        }
        let control = obs.observe(nit, &|| Report {
            nit,
            error: err,
            vectors: vec![("barycenter", st.q.iter().map(|&v| T::from_f64(v)).collect())],
            scalars: vec![],
        });
        match control {
            Control::Continue => {}
            Control::Stop => {
                st.settle();
                return Ok(output(&st, a, opts.reg, nit, Termination::Stopped));
            }
            Control::Abort => {
                return Ok(BarycenterOutput {
                    barycenter: Vec::new(),
                    f: Vec::new(),
                    g: Vec::new(),
                    nit,
                    termination: Termination::Aborted,
                    marginal_error: Vec::new(),
                })
            }
        }
        // The target update (every target marginal becomes q) opens the next iteration.
    }
}

/// The returned state after a source update: `q` rounded to `T`, both marginal errors
/// measured against the rounded `q` and `a`.
fn output<T: Real>(st: &State, a: &[T], reg: f64, nit: usize, termination: Termination) -> BarycenterOutput<T> {
    let bary: Vec<T> = st.log_q.iter().map(|&v| T::from_f64(exp(v))).collect();
    let qr: Vec<f64> = bary.iter().map(|v| v.as_f64()).collect();
    let col = st.col_errors(&qr);
    let row = st.row_errors(a);
    BarycenterOutput {
        barycenter: bary,
        f: st.fs.iter().map(|&v| v * reg).collect(),
        g: st.gs.iter().map(|&v| v * reg).collect(),
        nit,
        termination,
        marginal_error: col.iter().zip(&row).map(|(c, r)| c + r).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ot::gibbs::{DenseKernel, SeparableKernel};
    use crate::solver::NoObserver;

    /// A reference: the scaling-form iterative Bregman projections, many iterations.
    fn reference(a: &[f64], cost: &[f64], n: usize, w: &[f64], reg: f64) -> Vec<f64> {
        let k = w.len();
        let kmat: Vec<f64> = cost.iter().map(|c| (-c / reg).exp()).collect();
        let mut v = vec![1.0; k * n];
        let mut q = vec![0.0; n];
        for _ in 0..20000 {
            let mut kv_all = vec![0.0; k * n];
            for h in 0..k {
                // u = a / (K v); then K^T u.
                let u: Vec<f64> = (0..n)
                    .map(|i| a[h * n + i] / (0..n).map(|j| kmat[i * n + j] * v[h * n + j]).sum::<f64>())
                    .collect();
                for j in 0..n {
                    kv_all[h * n + j] = (0..n).map(|i| kmat[i * n + j] * u[i]).sum::<f64>();
                }
            }
            for j in 0..n {
                q[j] = (0..k).map(|h| w[h] * (v[h * n + j] * kv_all[h * n + j]).ln()).sum::<f64>().exp();
            }
            for h in 0..k {
                for j in 0..n {
                    v[h * n + j] = q[j] / kv_all[h * n + j];
                }
            }
        }
        q
    }

    #[test]
    fn dense_matches_scaling_reference() {
        let n = 12;
        let x: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
        let cost: Vec<f64> = x.iter().flat_map(|&u| x.iter().map(move |&v| (u - v) * (u - v))).collect();
        let mut a = vec![0.0; 2 * n];
        a[1] = 0.5;
        a[2] = 0.5;
        a[n + 9] = 0.7;
        a[n + 10] = 0.3;
        let w = [0.3, 0.7];
        let reg = 0.05;
        let kern = DenseKernel::new(&cost, n, n, reg).unwrap();
        let opts = BarycenterOptions { reg, tol: 1e-12, maxiter: 100_000 };
        let out = barycenter(&kern, &a, &w, &opts, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Converged);
        assert!(out.marginal_error.iter().all(|&e| e <= 1e-12));
        let r = reference(&a, &cost, n, &w, reg);
        for (u, v) in out.barycenter.iter().zip(&r) {
            assert!((u - v).abs() < 1e-10, "{u} vs {v}");
        }
    }

    #[test]
    fn grid_matches_dense_and_small_reg_is_stable() {
        let (h, wd) = (5, 4);
        let t = |len: usize| -> Vec<f64> { (0..len).map(|i| i as f64 / (len - 1) as f64).collect() };
        let sq =
            |p: &[f64]| -> Vec<f64> { p.iter().flat_map(|&u| p.iter().map(move |&v| (u - v) * (u - v))).collect() };
        let (ch, cw) = (sq(&t(h)), sq(&t(wd)));
        let n = h * wd;
        let full: Vec<f64> = (0..n * n)
            .map(|pq| ch[(pq / n / wd) * h + (pq % n) / wd] + cw[(pq / n % wd) * wd + (pq % n) % wd])
            .collect();
        let mut a = vec![0.0f64; 2 * n];
        a[0] = 1.0;
        a[2 * n - 1] = 1.0;
        let w = [0.5, 0.5];
        for &reg in &[0.1, 2e-3] {
            let opts = BarycenterOptions { reg, tol: 1e-10, maxiter: 100_000 };
            let sep = SeparableKernel::new(&[&ch, &cw], &[(h, h), (wd, wd)], reg).unwrap();
            let dense = DenseKernel::new(&full, n, n, reg).unwrap();
            let o1 = barycenter(&sep, &a, &w, &opts, &mut NoObserver).unwrap();
            let o2 = barycenter(&dense, &a, &w, &opts, &mut NoObserver).unwrap();
            assert_eq!(o1.termination, Termination::Converged, "{reg}");
            assert!(o1.barycenter.iter().all(|v| v.is_finite()));
            for (u, v) in o1.barycenter.iter().zip(&o2.barycenter) {
                assert!((u - v).abs() < 1e-9, "{reg}: {u} vs {v}");
            }
        }
    }

    /// A kernel that hides [`BatchLogKernel::per_vector`]: the stacked path.
    struct Stacked<'a>(&'a SeparableKernel);

    impl BatchLogKernel for Stacked<'_> {
        fn n(&self) -> usize {
            self.0.n()
        }
        fn m(&self) -> usize {
            self.0.m()
        }
        fn workspace(&self, k: usize) -> Result<Workspace> {
            self.0.workspace(k)
        }
        fn to_target(&self, x: &[f64], k: usize, out: &mut [f64], ws: &mut Workspace) {
            self.0.to_target(x, k, out, ws)
        }
        fn to_source(&self, y: &[f64], k: usize, out: &mut [f64], ws: &mut Workspace) {
            self.0.to_source(y, k, out, ws)
        }
    }

    #[test]
    fn per_histogram_tasks_match_the_stacked_path() {
        let s = 12;
        let t: Vec<f64> = (0..s).map(|i| i as f64 / (s - 1) as f64).collect();
        let c: Vec<f64> = t.iter().flat_map(|&u| t.iter().map(move |&v| (u - v) * (u - v))).collect();
        let k = 3;
        let mut a = vec![0.0f64; k * s * s];
        for (idx, v) in a.iter_mut().enumerate() {
            let (h, p) = (idx / (s * s), idx % (s * s));
            *v = if (p * (h + 3)) % 7 == 0 { 0.0 } else { 1.0 + ((p * 31 + h) % 5) as f64 };
        }
        for h in 0..k {
            let tot: f64 = a[h * s * s..(h + 1) * s * s].iter().sum();
            a[h * s * s..(h + 1) * s * s].iter_mut().for_each(|v| *v /= tot);
        }
        let kern = SeparableKernel::new(&[&c, &c], &[(s, s), (s, s)], 0.01).unwrap();
        assert!(kern.per_vector().is_some());
        let opts = BarycenterOptions { reg: 0.01, tol: 1e-11, maxiter: 5000 };
        let w = [0.2, 0.3, 0.5];
        let o1 = barycenter(&kern, &a, &w, &opts, &mut NoObserver).unwrap();
        let o2 = barycenter(&Stacked(&kern), &a, &w, &opts, &mut NoObserver).unwrap();
        // The per-histogram tasks run their applies in the scaling form (ratios instead of
        // exponentials of differences of logarithms): the same iterates up to rounding.
        assert!(o1.nit.abs_diff(o2.nit) <= 1, "{} vs {}", o1.nit, o2.nit);
        let close = |u: &[f64], v: &[f64], tol: f64| {
            u.iter().zip(v).all(|(x, y)| (x - y).abs() <= tol * y.abs().max(1.0) || (x.is_infinite() && x == y))
        };
        assert!(close(&o1.barycenter, &o2.barycenter, 1e-11));
        assert!(close(&o1.f, &o2.f, 1e-10) && close(&o1.g, &o2.g, 1e-10));
        assert!(o1.marginal_error.iter().all(|&e| e <= 1e-11) && o2.marginal_error.iter().all(|&e| e <= 1e-11));
    }

    #[test]
    fn split_error_check_is_bit_identical_to_the_fused_one() {
        use crate::ot::gibbs_ops::exp_l1_dist;
        for len in [0usize, 3, 4, 37, 4096] {
            let x: Vec<f64> = (0..len)
                .map(|j| if j % 11 == 5 { f64::NEG_INFINITY } else { -(j as f64 * 0.37).sin().abs() * 30.0 })
                .collect();
            let y: Vec<f64> = (0..len).map(|j| (j as f64 * 0.11).cos() * 3.0 - 2.0).collect();
            let q: Vec<f64> = (0..len).map(|j| 1e-3 * (1.0 + (j % 7) as f64)).collect();
            let mut e = vec![0.0; len];
            exp_sum(&x, &y, &mut e);
            assert_eq!(l1_dist(&e, &q).to_bits(), exp_l1_dist(&x, &y, &q).to_bits(), "{len}");
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let cost = vec![0.0, 1.0, 1.0, 0.0];
        let kern = DenseKernel::new(&cost, 2, 2, 0.1).unwrap();
        let opts = BarycenterOptions { reg: 0.1, tol: 1e-9, maxiter: 10 };
        assert!(barycenter(&kern, &[0.5, 0.5, 1.0, 0.0], &[0.5, 0.6], &opts, &mut NoObserver).is_err());
        assert!(barycenter(&kern, &[0.5, 0.5, 2.0, 0.0], &[0.5, 0.5], &opts, &mut NoObserver).is_err());
        assert!(barycenter(&kern, &[0.5, -0.5], &[1.0], &opts, &mut NoObserver).is_err());
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    use crate::ot::gibbs::{SeparableKernel, FALLBACKS};
    use crate::solver::NoObserver;

    #[test]
    #[ignore]
    fn shapes_64() {
        let s = 64;
        let t: Vec<f64> = (0..s).map(|i| i as f64 / (s - 1) as f64).collect();
        let c: Vec<f64> = t.iter().flat_map(|&u| t.iter().map(move |&v| (u - v) * (u - v))).collect();
        let mut a = vec![0.0f64; 4 * s * s];
        for h in 0..4 {
            for i in 0..s {
                for j in 0..s {
                    let (x, y) = (2.0 * t[i] - 1.0, 2.0 * t[j] - 1.0);
                    let r = (x * x + y * y).sqrt();
                    let on = match h {
                        0 => x.abs() < 0.55 && y.abs() < 0.55,
                        1 => r < 0.65,
                        2 => r > 0.45 && r < 0.8,
                        _ => (x.abs() < 0.2 || y.abs() < 0.2) && r < 0.85,
                    };
                    a[h * s * s + i * s + j] = if on { 1.0 } else { 0.0 };
                }
            }
            let tot: f64 = a[h * s * s..(h + 1) * s * s].iter().sum();
            a[h * s * s..(h + 1) * s * s].iter_mut().for_each(|v| *v /= tot);
        }
        let kern = SeparableKernel::new(&[&c, &c], &[(s, s), (s, s)], 4e-3).unwrap();
        let opts = BarycenterOptions { reg: 4e-3, tol: 1e-300, maxiter: 200 };
        let t0 = std::time::Instant::now();
        let out = barycenter(&kern, &a, &[0.25; 4], &opts, &mut NoObserver).unwrap();
        let dt = t0.elapsed().as_secs_f64();
        println!(
            "{} its, {:.3} ms/it, fallbacks {}",
            out.nit,
            dt * 1e3 / out.nit as f64,
            FALLBACKS.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}

#[cfg(test)]
mod speed_dense {
    use super::*;
    use crate::ot::gibbs::{DenseKernel, FALLBACKS};
    use crate::solver::NoObserver;

    #[test]
    #[ignore]
    fn line_200() {
        let n: usize = std::env::var("BARY_N").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
        let reg: f64 = std::env::var("BARY_REG").ok().and_then(|v| v.parse().ok()).unwrap_or(1e-2);
        let x: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
        let cost: Vec<f64> = x.iter().flat_map(|&u| x.iter().map(move |&v| (u - v) * (u - v))).collect();
        let mut a = vec![0.0; 3 * n];
        for (h, c) in [0.2, 0.5, 0.8].iter().enumerate() {
            for i in 0..n {
                a[h * n + i] = (-(x[i] - c) * (x[i] - c) / 0.002).exp() + 1e-3;
            }
            let s: f64 = a[h * n..(h + 1) * n].iter().sum();
            a[h * n..(h + 1) * n].iter_mut().for_each(|v| *v /= s);
        }
        let kern = DenseKernel::new(&cost, n, n, reg).unwrap();
        let opts = BarycenterOptions { reg, tol: 1e-300, maxiter: 200 };
        let t0 = std::time::Instant::now();
        let out = barycenter(&kern, &a, &[1.0 / 3.0; 3], &opts, &mut NoObserver).unwrap();
        let dt = t0.elapsed().as_secs_f64();
        println!(
            "{} its, {:.3} ms/it, fallbacks {}",
            out.nit,
            dt * 1e3 / out.nit as f64,
            FALLBACKS.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}
