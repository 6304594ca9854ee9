//! Linear programs by restarted reflected Halpern PDHG (r²HPDHG; Lu & Yang 2024, cuPDLPx).
//!
//! Problem: `min cᵀx  s.t.  l_c ≤ A x ≤ u_c,  l_v ≤ x ≤ u_v` (infinite bounds allowed), with
//! duals `y` (`y_i > 0` where the lower row bound is active, `< 0` where the upper is) and
//! reduced costs `λ = c − Aᵀy`.
//!
//! 0. Before iterating, a few rounds of bound propagation ([`super::propagate`]) look for a row
//!    whose activity range misses its bounds (infeasibility proven without iterating).
//! 1. Scaling: 10 Ruiz passes (∞-norms), one Pock–Chambolle pass (α = 1), then bounds divided by
//!    `1 + ‖b‖₂` (finite row bounds) and `c` by `1 + ‖c‖₂`; everything is reported unscaled.
//! 2. Steps `τ = η/ω`, `σ = ηω`, `η = 0.998 / ‖Â‖₂` (Lanczos, with a margin), primal weight `ω`.
//! 3. PDHG operator `T(x, y)`: `x̄ = Π_X(x − τ(c − Aᵀy))`, `x̃ = 2x̄ − x`,
//!    `ȳ = y − σ(A x̃ − Π_[l_c,u_c](A x̃ − y/σ))`; reflected Halpern step
//!    `z⁺ = (k+1)/(k+2) (2 T z − z) + z₀/(k+2)`, `k` counted since the last restart.
//! 4. Every `check_every` iterations, on the PDHG output `(x̄, ȳ)` of the **unscaled** problem:
//!    relative primal residual `‖Ax − Π(Ax)‖/(1 + ‖b‖)`, dual `‖c − Aᵀy − λ‖/(1 + ‖c‖)` (λ the
//!    bound-feasible part of the reduced costs), gap `|p − d|/(1 + |p| + |d|)`; converged when
//!    all three are `≤ tol`. Restarts (cuPDLPx's rule on the fixed-point residual in the PDHG
//!    metric: sufficient 0.2, necessary 0.5 and growing, artificial after 36% of all
//!    iterations) re-anchor at `T z` and update `ω` (cuPDLPx's PID control in log space, with
//!    a reset to the best-balancing weight, then a residual-balancing factor
//!    `(rel_primal / max(rel_dual, rel_gap))^(1/4)` within [0.1, 10]).
//! 5. Infeasibility: the iterate difference over the last check interval, the one since the
//!    last restart, and the dual iterate itself are tested as Farkas rays, scale-invariantly
//!    (the violation of the ray's sign conditions relative to its objective, and that
//!    violation weighed by the current primal iterate), and must pass at two consecutive checks.
//!    When the KKT test passes while ‖y‖ is still growing steadily ([`dual_growing`]: the
//!    signature of an LP infeasible by less than the tolerance), the iterations go on to twice
//!    the count looking for such a certificate before the converged point is returned.

pub use crate::linalg::csr::Csr;
use crate::error::{OptError, Result};
use crate::solver::{Control, Observer, Report, Termination};

/// The LP in the solver's form.
#[derive(Clone, Debug)]
pub struct Lp {
    pub a: Csr,
    pub c: Vec<f64>,
    pub lc: Vec<f64>,
    pub uc: Vec<f64>,
    pub lv: Vec<f64>,
    pub uv: Vec<f64>,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub tol: f64,
    pub maxiter: usize,
    pub time_limit: f64,
    pub check_every: usize,
    /// Tolerance of the infeasibility (Farkas ray) tests.
    pub tol_infeasible: f64,
    /// Rounds of bound propagation before the first iteration, to prove infeasibility early
    /// ([`super::propagate`]); 0 turns it off.
    pub propagation_rounds: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { tol: 1e-6, maxiter: usize::MAX, time_limit: f64::INFINITY, check_every: 64, tol_infeasible: 1e-6, propagation_rounds: 20 }
    }
}

#[derive(Debug)]
pub struct Output {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// Reduced costs `c − Aᵀy` (unscaled).
    pub reduced: Vec<f64>,
    pub nit: usize,
    pub termination: Termination,
    /// Which test decided (for the message).
    pub reason: String,
    pub rel_primal: f64,
    pub rel_dual: f64,
    pub rel_gap: f64,
    pub primal_obj: f64,
    pub dual_obj: f64,
    pub restarts: usize,
}

#[inline(always)]
fn clamp(v: f64, lo: f64, hi: f64) -> f64 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Scaled problem and the maps back.
struct Scaled {
    a: Csr,
    at: Csr,
    c: Vec<f64>,
    lc: Vec<f64>,
    uc: Vec<f64>,
    lv: Vec<f64>,
    uv: Vec<f64>,
    dr: Vec<f64>,
    dc: Vec<f64>,
    beta: f64,
    gamma: f64,
    /// `Some((l, u))` when every scaled variable bound pair is the same (as `[0, ∞)` stays under
    /// any column scaling): the primal pass then reads neither `lv` nor `uv` (16 of about 120
    /// bytes per column on the 10⁶-variable OT LP).
    uniform_box: Option<(f64, f64)>,
}

fn scale(lp: &Lp) -> Scaled {
    let (m, n) = (lp.a.nrows, lp.a.ncols);
    let mut a = lp.a.clone();
    let mut dr = vec![1.0; m];
    let mut dc = vec![1.0; n];
    let inv_sqrt = |v: f64| if v > 0.0 { 1.0 / v.sqrt() } else { 1.0 };
    for _ in 0..10 {
        let r: Vec<f64> = a.row_norms(f64::INFINITY).into_iter().map(inv_sqrt).collect();
        let cn: Vec<f64> = a.col_norms(f64::INFINITY).into_iter().map(inv_sqrt).collect();
        a.scale(&r, &cn);
        dr.iter_mut().zip(&r).for_each(|(d, s)| *d *= s);
        dc.iter_mut().zip(&cn).for_each(|(d, s)| *d *= s);
    }
    // Pock–Chambolle, α = 1: rows by Σ_j |a_ij|, columns by Σ_i |a_ij|.
    let r: Vec<f64> = a.row_norms(1.0).into_iter().map(inv_sqrt).collect();
    let cn: Vec<f64> = a.col_norms(1.0).into_iter().map(inv_sqrt).collect();
    a.scale(&r, &cn);
    dr.iter_mut().zip(&r).for_each(|(d, s)| *d *= s);
    dc.iter_mut().zip(&cn).for_each(|(d, s)| *d *= s);
    // x = D_c x̂, rows D_r; then bounds / β and c / γ.
    let lc: Vec<f64> = lp.lc.iter().zip(&dr).map(|(v, d)| v * d).collect();
    let uc: Vec<f64> = lp.uc.iter().zip(&dr).map(|(v, d)| v * d).collect();
    let lv: Vec<f64> = lp.lv.iter().zip(&dc).map(|(v, d)| v / d).collect();
    let uv: Vec<f64> = lp.uv.iter().zip(&dc).map(|(v, d)| v / d).collect();
    let c: Vec<f64> = lp.c.iter().zip(&dc).map(|(v, d)| v * d).collect();
    let finite_b: f64 = lc.iter().chain(&uc).filter(|v| v.is_finite()).map(|v| v * v).sum::<f64>().sqrt();
    let beta = 1.0 + finite_b;
    let gamma = 1.0 + norm2(&c);
    let div = |v: Vec<f64>, s: f64| v.into_iter().map(|x| x / s).collect::<Vec<f64>>();
    let at = a.transpose();
    let (lv, uv) = (div(lv, beta), div(uv, beta));
    let uniform_box = match (lv.first(), uv.first()) {
        (Some(&l), Some(&u)) if lv.iter().all(|&v| v == l) && uv.iter().all(|&v| v == u) => Some((l, u)),
        _ => None,
    };
    Scaled {
        a,
        at,
        c: div(c, gamma),
        lc: div(lc, beta),
        uc: div(uc, beta),
        lv,
        uv,
        dr,
        dc,
        beta,
        gamma,
        uniform_box,
    }
}

/// An estimate of `‖A‖₂` that is never below it: Lanczos on `AᵀA` (its largest Ritz value
/// approaches `‖A‖₂²` from below, far faster than the power iteration, which once plateaued at
/// 0.982 for a norm near 1 — steps 1.8% too long, and PDHG diverged on BANDM — and cost up to
/// 5000 products, more than many solves) with a 1% margin, capped by the Schur bound
/// `sqrt(max row sum · max column sum)` of `|A|`, which always holds (and is about 1 after the
/// Pock–Chambolle pass).
fn spectral_norm(a: &Csr, at: &Csr) -> f64 {
    let n = a.ncols;
    if n == 0 || a.nrows == 0 || a.data.is_empty() {
        return 0.0;
    }
    let schur = (a.row_norms(1.0).into_iter().fold(0.0f64, f64::max) * a.col_norms(1.0).into_iter().fold(0.0f64, f64::max))
        .sqrt();
    (lanczos_max_eig(a, at).max(0.0).sqrt() * 1.01).min(schur)
}

/// The largest eigenvalue of `AᵀA` by Lanczos without reorthogonalisation (enough for the
/// extreme Ritz value, which converges from below), until it has not moved for 10 steps.
fn lanczos_max_eig(a: &Csr, at: &Csr) -> f64 {
    let n = a.ncols;
    let mut q: Vec<f64> = (0..n).map(|j| 1.0 + ((j * 7919) % 97) as f64 / 97.0).collect();
    let nq = norm2(&q);
    q.iter_mut().for_each(|v| *v /= nq);
    let mut q_prev = vec![0.0; n];
    let (mut aq, mut w) = (vec![0.0; a.nrows], vec![0.0; n]);
    let (mut alpha, mut beta) = (Vec::new(), Vec::new());
    let mut history: Vec<f64> = Vec::new();
    let mut theta = 0.0;
    for _ in 0..n.min(1000) {
        a.matvec(&q, &mut aq);
        at.matvec(&aq, &mut w);
        let al: f64 = q.iter().zip(&w).map(|(a, b)| a * b).sum();
        let bp = beta.last().copied().unwrap_or(0.0);
        for ((wj, qj), pj) in w.iter_mut().zip(&q).zip(&q_prev) {
            *wj -= al * qj + bp * pj;
        }
        alpha.push(al);
        theta = tridiagonal_max_eig(&alpha, &beta);
        let b = norm2(&w);
        history.push(theta);
        let k = history.len();
        // converged: no change over the last 10 steps, or an invariant subspace (exact)
        if b <= 1e-13 * theta.max(f64::MIN_POSITIVE) || (k > 10 && theta - history[k - 11] <= 1e-10 * theta) {
            break;
        }
        beta.push(b);
        std::mem::swap(&mut q_prev, &mut q);
        q.iter_mut().zip(&w).for_each(|(qj, wj)| *qj = wj / b);
    }
    theta
}

/// The largest eigenvalue of the symmetric tridiagonal matrix with diagonal `alpha` and
/// off-diagonal `beta`, by Sturm-sequence bisection.
fn tridiagonal_max_eig(alpha: &[f64], beta: &[f64]) -> f64 {
    let k = alpha.len();
    let off = |i: usize| if i < beta.len() { beta[i].abs() } else { 0.0 };
    let mut hi = (0..k).map(|i| alpha[i] + off(i) + if i > 0 { off(i - 1) } else { 0.0 }).fold(f64::MIN, f64::max);
    let mut lo = (0..k).map(|i| alpha[i] - off(i) - if i > 0 { off(i - 1) } else { 0.0 }).fold(f64::MAX, f64::min);
    // eigenvalues below x
    let below = |x: f64| -> usize {
        let mut count = 0;
        let mut d = 1.0;
        for (i, &a) in alpha.iter().enumerate() {
            let b2 = if i > 0 { off(i - 1).powi(2) } else { 0.0 };
            d = a - x - if i > 0 { b2 / d } else { 0.0 };
            if d == 0.0 {
                d = -1e-300;
            }
            if d < 0.0 {
                count += 1;
            }
        }
        count
    };
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi || hi - lo <= 1e-15 * hi.abs() {
            break;
        }
        if below(mid) == k { hi = mid } else { lo = mid }
    }
    hi
}

/// `f` on fixed chunks of `0..n` (in parallel when long), the results in chunk order: callers
/// combine them in that order, so that no result depends on the number of threads (a plain
/// rayon reduce would, and with it the iterations at which a run stops).
fn chunked<R: Send>(n: usize, f: impl Fn(std::ops::Range<usize>) -> R + Sync) -> Vec<R> {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 14;
    if n <= 2 * CHUNK {
        vec![f(0..n)]
    } else {
        (0..n.div_ceil(CHUNK)).into_par_iter().map(|c| f(c * CHUNK..((c + 1) * CHUNK).min(n))).collect()
    }
}

/// [`chunked`] partial sums, added in chunk order.
fn chunked_sums<const K: usize>(n: usize, f: impl Fn(std::ops::Range<usize>) -> [f64; K] + Sync) -> [f64; K] {
    let mut out = [0.0; K];
    for p in chunked(n, f) {
        for k in 0..K {
            out[k] += p[k];
        }
    }
    out
}

/// `out_i = f(a_i, b_i)`, in parallel for long vectors.
fn map2_into(out: &mut [f64], a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64 + Sync + Send) {
    use rayon::prelude::*;
    assert!(out.len() == a.len() && b.len() == a.len());
    let g = |(o, (x, y)): (&mut f64, (&f64, &f64))| *o = f(*x, *y);
    if a.len() > 1 << 15 {
        out.par_iter_mut().zip(a.par_iter().zip(b)).for_each(g);
    } else {
        out.iter_mut().zip(a.iter().zip(b)).for_each(g);
    }
}

/// `out = a ⊙ b · s` (or with `a / b`) element-wise.
fn scale_into(out: &mut [f64], a: &[f64], b: &[f64], s: f64, divide: bool) {
    map2_into(out, a, b, |x, d| if divide { x / d * s } else { x * d * s });
}

/// `out = a − b`.
fn diff_into(out: &mut [f64], a: &[f64], b: &[f64]) {
    map2_into(out, a, b, |x, y| x - y);
}

/// The vectors the convergence checks fill, allocated once per solve. Fresh vectors at every
/// check (a dozen of length m or n) made glibc grow and trim its heap each time, and faulting
/// the pages back in cost 2–4 ms per check on STOCFOR3 (16k × 16k; a tenth to a fifth of its
/// run) and a tenth to a quarter of the 10⁶-variable OT LP's (alternating builds).
struct Work {
    xu: Vec<f64>,
    yu: Vec<f64>,
    ax: Vec<f64>,
    at_y: Vec<f64>,
    reduced: Vec<f64>,
    dx: Vec<f64>,
    dy: Vec<f64>,
    dxu: Vec<f64>,
    dyu: Vec<f64>,
    at_dy: Vec<f64>,
    ray: Vec<f64>,
    a_ray: Vec<f64>,
}

impl Work {
    fn new(m: usize, n: usize) -> Self {
        let (vn, vm) = (|| vec![0.0; n], || vec![0.0; m]);
        Work {
            xu: vn(),
            yu: vm(),
            ax: vm(),
            at_y: vn(),
            reduced: vn(),
            dx: vn(),
            dy: vm(),
            dxu: vn(),
            dyu: vm(),
            at_dy: vn(),
            ray: vn(),
            a_ray: vm(),
        }
    }
}

/// KKT quantities of an (unscaled) primal-dual pair.
#[derive(Clone, Copy)]
struct Kkt {
    rel_primal: f64,
    rel_dual: f64,
    rel_gap: f64,
    pobj: f64,
    dobj: f64,
}

/// The KKT errors of `(x, y)` given `ax = A x` and `aty = Aᵀ y`; the reduced costs `c − Aᵀy`
/// go to `reduced`.
#[allow(clippy::too_many_arguments)]
fn kkt(lp: &Lp, x: &[f64], y: &[f64], ax: &[f64], aty: &[f64], bnorm: f64, cnorm: f64, reduced: &mut [f64]) -> Kkt {
    let mut pr = 0.0;
    for ((&v, &l), &u) in ax.iter().zip(&lp.lc).zip(&lp.uc) {
        let d = v - clamp(v, l, u);
        pr += d * d;
    }
    diff_into(reduced, &lp.c, aty);
    let reduced = &*reduced;
    let [mut du, mut dobj, pobj] = chunked_sums(reduced.len(), |range| {
        let (mut du, mut dobj, mut pobj) = (0.0, 0.0, 0.0);
        for j in range {
            let r = reduced[j];
            let (l, u) = (lp.lv[j], lp.uv[j]);
            // the part of r that the bounds can carry: ≥ 0 needs a finite lower bound, ≤ 0 an upper
            let lam = if r > 0.0 {
                if l.is_finite() { r } else { 0.0 }
            } else if u.is_finite() {
                r
            } else {
                0.0
            };
            du += (r - lam) * (r - lam);
            if lam > 0.0 {
                dobj += l * lam;
            } else if lam < 0.0 {
                dobj += u * lam;
            }
            pobj += lp.c[j] * x[j];
        }
        [du, dobj, pobj]
    });
    for ((&yi, &l), &u) in y.iter().zip(&lp.lc).zip(&lp.uc) {
        if yi > 0.0 && l.is_finite() {
            dobj += l * yi;
        } else if yi < 0.0 && u.is_finite() {
            dobj += u * yi;
        } else if yi != 0.0 {
            // the sign the row cannot carry is dual infeasibility
            du += yi * yi;
        }
    }
    Kkt {
        rel_primal: pr.sqrt() / (1.0 + bnorm),
        rel_dual: du.sqrt() / (1.0 + cnorm),
        rel_gap: (pobj - dobj).abs() / (1.0 + pobj.abs() + dobj.abs()),
        pobj,
        dobj,
    }
}

/// Whether a dual value `v` has a sign its row cannot carry: `v > 0` needs a finite lower bound
/// `l`, `v < 0` a finite upper bound `u`.
fn forbidden_sign(v: f64, l: f64, u: f64) -> bool {
    (v > 0.0 && !l.is_finite()) || (v < 0.0 && !u.is_finite())
}

/// The dual ray `dy` (unscaled) without its entries of a sign their rows cannot carry, into
/// `v`, and its product `Aᵀv` (unscaled, through the scaled `Aᵀ`) into `at_v`; `tmp_m`, `tmp_n`
/// are work space.
fn clip_to_cone(lp: &Lp, s: &Scaled, dy: &[f64], v: &mut [f64], at_v: &mut [f64], tmp_m: &mut [f64], tmp_n: &mut [f64]) {
    for i in 0..dy.len() {
        v[i] = if forbidden_sign(dy[i], lp.lc[i], lp.uc[i]) { 0.0 } else { dy[i] };
        // y = γ D_r ŷ
        tmp_m[i] = v[i] / (s.dr[i] * s.gamma);
    }
    s.at.matvec(tmp_m, tmp_n);
    scale_into(at_v, tmp_n, &s.dc, s.gamma, true);
}

/// Outcome of [`primal_infeasible`].
#[derive(Clone, Copy, Debug, PartialEq)]
enum Farkas {
    No,
    Yes,
    Recheck,
}

/// Primal infeasibility certificate test on a dual ray `dy` (unscaled): `φ = Σ l_i [dy]₊ −
/// u_i [dy]₋ + Σ l_j [λ]₊ − u_j [λ]₋ > 0` with `λ = −Aᵀdy` (the row sums taken over the
/// entries of `dy` whose sign the row bounds allow), `v_j` the part of `λ_j` whose sign an
/// infinite column bound forbids and `w_i` the entries of `dy` whose sign an infinite row bound
/// forbids. Weak duality: every feasible `x` has `φ ≤ Σ_j v_j |x_j| + Σ_i w_i |(Ax)_i|`, so the
/// ray proves infeasibility up to its violations. Two ways to pass:
/// - `plain`: `max v_j ≤ tol · φ`. It is a proof only for a ray that carries no entry of a
///   sign its row cannot take (`w = 0`: those entries are in `λ` but not in `φ`); when it
///   passes on one that does, the answer is [`Farkas::Recheck`]: test the ray with those
///   entries zeroed and its own `λ` ([`clip_to_cone`]).
/// - `guarded`: `max v_j ≤ 100 tol · φ` and `Σ_j v_j |x_j| + Σ_i w_i |(Ax)_i| ≤ φ / 100` at
///   the current primal iterate `x`: then every feasible point is over 100× larger than `x`
///   where the ray is violated (a statement invariant under scaling the ray and the columns).
///   On the 92 feasible Netlib LPs that ratio never fell below 0.24 at two consecutive checks
///   (a 24× margin); it finds klein2 and klein3 within 400 iterations, where the plain test
///   never does, and refinery 4× sooner.
#[allow(clippy::too_many_arguments)]
fn primal_infeasible(
    lp: &Lp,
    dy: &[f64],
    at_dy: &[f64],
    x: &[f64],
    ax: &[f64],
    tol: f64,
    (plain, guarded): (bool, bool),
) -> Farkas {
    let mut phi = 0.0;
    let mut scale: f64 = 0.0;
    // Σ_i w_i |(Ax)_i| over the entries of dy of a sign the row's infinite bound forbids
    // (λ = −Aᵀdy includes them, so the weak-duality bound below must too).
    let mut wrong_ax = 0.0f64;
    let mut clipped = false;
    for (((&v, &l), &u), &axi) in dy.iter().zip(&lp.lc).zip(&lp.uc).zip(ax) {
        // clip to the cone: a row without a lower bound cannot carry y > 0, etc.
        let v = if forbidden_sign(v, l, u) {
            wrong_ax += v.abs() * axi.abs();
            clipped = true;
            0.0
        } else {
            v
        };
        scale = scale.max(v.abs());
        if v > 0.0 {
            phi += l * v;
        } else if v < 0.0 {
            phi += u * v;
        }
    }
    if scale == 0.0 {
        return Farkas::No;
    }
    let parts = chunked(at_dy.len(), |range| {
        let (mut phi, mut viol, mut viol_x) = (0.0f64, 0.0f64, 0.0f64);
        for j in range {
            let lam = -at_dy[j];
            let (l, u) = (lp.lv[j], lp.uv[j]);
            let v = if lam > 0.0 {
                if l.is_finite() { phi += l * lam; 0.0 } else { lam }
            } else if lam < 0.0 {
                if u.is_finite() { phi += u * lam; 0.0 } else { -lam }
            } else {
                0.0
            };
            viol = viol.max(v);
            viol_x += v * x[j].abs();
        }
        (phi, viol, viol_x)
    });
    let (mut viol, mut viol_x) = (0.0f64, wrong_ax);
    for (p, v, vx) in parts {
        phi += p;
        viol = viol.max(v);
        viol_x += vx;
    }
    if !(phi > 0.0 && phi > tol * scale) {
        return Farkas::No;
    }
    if guarded && viol <= 100.0 * tol * phi && viol_x <= 0.01 * phi {
        Farkas::Yes
    } else if plain && viol <= tol * phi {
        if clipped { Farkas::Recheck } else { Farkas::Yes }
    } else {
        Farkas::No
    }
}

/// Dual infeasibility (unboundedness) test on a primal ray `dx`: projected onto the recession
/// cone of the bounds, `cᵀdx < 0` and `A dx` in the recession cone of the row bounds up to
/// `tol · (−cᵀdx)`, with `‖dx‖_∞ = 1`.
/// `d` and `ad` are work space of lengths n and m.
fn dual_infeasible(lp: &Lp, dx: &[f64], a: &Csr, tol: f64, d: &mut [f64], ad: &mut [f64]) -> bool {
    let proj = |j: usize| {
        let (v, l, u) = (dx[j], lp.lv[j], lp.uv[j]);
        if (v < 0.0 && l.is_finite()) || (v > 0.0 && u.is_finite()) { 0.0 } else { v }
    };
    // cᵀd and ‖d‖_∞ first: most candidate rays fail cᵀd < 0 and need no product.
    let (mut cd, mut s) = (0.0f64, 0.0f64);
    for (c, m) in chunked(dx.len(), |range| {
        let (mut cd, mut s) = (0.0f64, 0.0f64);
        for j in range {
            let v = proj(j);
            cd += lp.c[j] * v;
            s = s.max(v.abs());
        }
        (cd, s)
    }) {
        cd += c;
        s = s.max(m);
    }
    if s == 0.0 || cd.is_nan() || cd >= 0.0 {
        return false;
    }
    let cd = cd / s;
    for (j, dj) in d.iter_mut().enumerate() {
        *dj = proj(j) / s;
    }
    a.matvec(d, ad);
    let mut viol: f64 = 0.0;
    for ((&v, &l), &u) in ad.iter().zip(&lp.lc).zip(&lp.uc) {
        if l.is_finite() {
            viol = viol.max(-v);
        }
        if u.is_finite() {
            viol = viol.max(v);
        }
    }
    viol <= tol * (-cd)
}

/// Whether the dual iterate is growing steadily at the last check (`norms`: ‖y‖ at every check
/// so far): it grew at every check of the last quarter of the run, by at least 1% over the last
/// eighth, at a rate within 30% of the eighth before. That is what PDHG's dual iterate does on
/// an infeasible LP (it drifts along a Farkas ray at a constant rate), and a feasible LP's does
/// not for long, as its iterates are bounded. On Netlib's 92 feasible LPs at tol 1e-4, 1e-6 and
/// 1e-8 it never held at convergence (closest: D6CUBE at 1e-4, growth 2.4% but the rates 52%
/// apart; 80BAU3B at 1e-4, rates 5% apart but growth 0.4%); on cplex2 (infeasible by 3.7e-10
/// relative, converged at 1e-4 and 1e-6) it does: growth 10–11%, rates 7–10% apart. A false
/// alarm costs iterations, never the answer: the verdict still needs a Farkas certificate.
fn dual_growing(norms: &[f64]) -> bool {
    let c = norms.len();
    if c < 16 {
        return false;
    }
    let e = c / 8;
    let (n0, n1, n2) = (norms[c - 1], norms[c - 1 - e], norms[c - 1 - 2 * e]);
    let (g2, g1) = (n0 - n1, n1 - n2);
    norms[c - 1 - 2 * e..].windows(2).all(|p| p[1] > p[0]) && g2 >= 0.01 * n0 && (g2 - g1).abs() <= 0.3 * g2
}

/// Solves `lp` from the (unscaled) start `(x0, y0)`.
pub fn solve(lp: &Lp, x0: Option<&[f64]>, y0: Option<&[f64]>, opts: &Options, obs: &mut dyn Observer<f64>) -> Result<Output> {
    let (m, n) = (lp.a.nrows, lp.a.ncols);
    if lp.c.len() != n || lp.lc.len() != m || lp.uc.len() != m || lp.lv.len() != n || lp.uv.len() != n {
        return Err(OptError::InvalidInput("LP arrays have inconsistent sizes".into()));
    }
    if x0.is_some_and(|v| v.len() != n) || y0.is_some_and(|v| v.len() != m) {
        return Err(OptError::InvalidInput(format!("the warm start needs {n} values of x and {m} of y")));
    }
    if lp.lc.iter().zip(&lp.uc).any(|(l, u)| l > u || l.is_nan() || u.is_nan())
        || lp.lv.iter().zip(&lp.uv).any(|(l, u)| l > u || l.is_nan() || u.is_nan())
    {
        return Err(OptError::InvalidInput("a lower bound exceeds its upper bound, or is NaN".into()));
    }
    let start = std::time::Instant::now();
    let bnorm = lp.lc.iter().chain(&lp.uc).filter(|v| v.is_finite()).map(|v| v * v).sum::<f64>().sqrt();
    let cnorm = norm2(&lp.c);
    if let Some(proof) = super::propagate::prove_infeasible(lp, opts.propagation_rounds) {
        // Returned point: the start (clipped to the bounds) with zero duals, as no iteration ran.
        let x: Vec<f64> = (0..n).map(|j| clamp(x0.map_or(0.0, |v| v[j]), lp.lv[j], lp.uv[j])).collect();
        let y = vec![0.0; m];
        let mut ax = vec![0.0; m];
        lp.a.matvec(&x, &mut ax);
        let mut reduced = vec![0.0; n];
        let k = kkt(lp, &x, &y, &ax, &vec![0.0; n], bnorm, cnorm, &mut reduced);
        return Ok(Output {
            x,
            y,
            reduced,
            nit: 0,
            termination: Termination::Infeasible,
            reason: proof.to_string(),
            rel_primal: k.rel_primal,
            rel_dual: k.rel_dual,
            rel_gap: k.rel_gap,
            primal_obj: k.pobj,
            dual_obj: k.dobj,
            restarts: 0,
        });
    }
    let s = scale(lp);
    let anorm = spectral_norm(&s.a, &s.at);
    let eta = if anorm > 0.0 { 0.998 / anorm } else { 1.0 };
    let mut omega = 1.0f64;
    // Unscale maps: x = β D_c x̃, y = γ D_r ỹ; and their inverses for the warm start.
    let unscale_x = |out: &mut [f64], xs: &[f64]| scale_into(out, xs, &s.dc, s.beta, false);
    let unscale_y = |out: &mut [f64], ys: &[f64]| scale_into(out, ys, &s.dr, s.gamma, false);
    let mut w = Work::new(m, n);
    let mut x: Vec<f64> = match x0 {
        Some(x0) => x0.iter().zip(&s.dc).map(|(v, d)| v / (d * s.beta)).collect(),
        None => vec![0.0; n],
    };
    let mut y: Vec<f64> = match y0 {
        Some(y0) => y0.iter().zip(&s.dr).map(|(v, d)| v / (d * s.gamma)).collect(),
        None => vec![0.0; m],
    };
    for (j, xj) in x.iter_mut().enumerate() {
        *xj = clamp(*xj, s.lv[j], s.uv[j]);
    }
    let (mut x_anchor, mut y_anchor) = (x.clone(), y.clone());
    let (mut xb, mut yb) = (vec![0.0; n], vec![0.0; m]);
    let (mut xt, mut tmp_m, mut tmp_n) = (vec![0.0; n], vec![0.0; m], vec![0.0; n]);
    let (mut last_xb, mut last_yb) = (x.clone(), y.clone());
    let mut inner = 0usize;
    let mut nit = 0usize;
    let (mut r0, mut r_prev) = (f64::INFINITY, f64::INFINITY);
    let mut restarts = 0usize;
    let mut first = true;
    let (mut pinf_hits, mut dinf_hits) = (0usize, 0usize);
    let mut since_restart_check = 0usize;
    let (mut integ, mut omega_best, mut best_balance) = (0.0f64, 1.0f64, f64::INFINITY);
    // ‖y‖ (unscaled) at every check, for the test of a steadily growing dual iterate.
    let mut y_norms: Vec<f64> = Vec::new();
    // Set when the KKT test passed while the dual iterate kept growing: the converged result,
    // returned unless an infeasibility certificate turns up by iteration `until`.
    let mut held: Option<(Output, usize)> = None;
    loop {
        // T(z): x̄, then ȳ from x̃ = 2x̄ − x; fused with the reflected Halpern step
        // z⁺ = (k+1)/(k+2) (2 T z − z) + z₀/(k+2) (note 2x̄ − x = x̃) except at a check, which
        // needs z and T z both.
        let tau = eta / omega;
        let sigma = eta * omega;
        let check = (nit + 1) % opts.check_every == 0 || nit + 1 >= opts.maxiter;
        let kf = inner as f64;
        let (wa, wt) = (1.0 / (kf + 2.0), (kf + 1.0) / (kf + 2.0));
        pdhg_step(&s, tau, sigma, (wa, wt), !check, &mut x, &mut y, &x_anchor, &y_anchor, &mut xb, &mut xt, &mut yb);
        nit += 1;
        inner += 1;
        if check {
            // Termination on the unscaled PDHG output.
            unscale_x(&mut w.xu, &xb);
            unscale_y(&mut w.yu, &yb);
            s.a.matvec(&xb, &mut tmp_m);
            scale_into(&mut w.ax, &tmp_m, &s.dr, s.beta, true);
            s.at.matvec(&yb, &mut tmp_n);
            scale_into(&mut w.at_y, &tmp_n, &s.dc, s.gamma, true);
            let k = kkt(lp, &w.xu, &w.yu, &w.ax, &w.at_y, bnorm, cnorm, &mut w.reduced);
            let finite = k.rel_primal.is_finite() && k.rel_dual.is_finite() && k.rel_gap.is_finite();
            let done = k.rel_primal <= opts.tol && k.rel_dual <= opts.tol && k.rel_gap <= opts.tol;
            let make = |termination: Termination, reason: String, k: Kkt, w: &Work| Output {
                x: w.xu.clone(),
                y: w.yu.clone(),
                reduced: w.reduced.clone(),
                nit,
                termination,
                reason,
                rel_primal: k.rel_primal,
                rel_dual: k.rel_dual,
                rel_gap: k.rel_gap,
                primal_obj: k.pobj,
                dual_obj: k.dobj,
                restarts,
            };
            if !finite {
                let msg = format!(
                    "the iterates are no longer finite at iteration {nit} (the problem may be badly scaled, or \
                     infeasible/unbounded without a certificate found in time)"
                );
                return Ok(make(Termination::Numerical(msg.clone()), msg, k, &w));
            }
            y_norms.push(norm2(&w.yu));
            if done && held.is_none() {
                let reason = format!(
                    "relative KKT error <= {:.1e} (primal {:.1e}, dual {:.1e}, gap {:.1e})",
                    opts.tol, k.rel_primal, k.rel_dual, k.rel_gap
                );
                let out = make(Termination::Converged, reason, k, &w);
                if !dual_growing(&y_norms) {
                    return Ok(out);
                }
                // An LP infeasible by less than the tolerance (Netlib's cplex2: by 3.7e-10
                // relative) can pass the KKT test while PDHG's dual iterate grows along a
                // Farkas ray at a constant rate, where a feasible LP's iterates stay bounded
                // (Halpern's iterates stay within the anchor's distance of a saddle point, in
                // the metric of the current primal weight). Before calling it optimal, go on
                // as long again looking for a certificate.
                held = Some((out, 2 * nit));
            }
            // Infeasibility: the drift of the PDHG outputs over the last interval.
            if since_restart_check > 0 {
                // Two candidate rays: the drift over the last check interval, and since the
                // last anchor (which averages out the Halpern iterates' oscillation).
                let mut p_inf = false;
                let mut d_inf = false;
                // (Which tests each candidate gets was chosen on the Netlib sets: the guarded
                // test on the drift since the anchor called AGG and CAPRI infeasible.)
                for (ry, rx, tests) in [(&last_yb, &last_xb, (true, true)), (&y_anchor, &x_anchor, (true, false))] {
                    let w = &mut w;
                    diff_into(&mut w.dy, &yb, ry);
                    unscale_y(&mut w.dyu, &w.dy);
                    s.at.matvec(&w.dy, &mut tmp_n);
                    scale_into(&mut w.at_dy, &tmp_n, &s.dc, s.gamma, true);
                    p_inf |= match primal_infeasible(lp, &w.dyu, &w.at_dy, &w.xu, &w.ax, opts.tol_infeasible, tests) {
                        Farkas::Yes => true,
                        Farkas::No => false,
                        Farkas::Recheck => {
                            clip_to_cone(lp, &s, &w.dyu, &mut w.a_ray, &mut w.ray, &mut tmp_m, &mut tmp_n);
                            primal_infeasible(lp, &w.a_ray, &w.ray, &w.xu, &w.ax, opts.tol_infeasible, tests) == Farkas::Yes
                        }
                    };
                    diff_into(&mut w.dx, &xb, rx);
                    unscale_x(&mut w.dxu, &w.dx);
                    d_inf |= dual_infeasible(lp, &w.dxu, &lp.a, opts.tol_infeasible, &mut w.ray, &mut w.a_ray);
                }
                // Third candidate: the dual iterate itself, which grows along the ray when the
                // LP is infeasible (y/‖y‖ → ray at rate 1/k). A feasible LP's optimal y can
                // look like a ray by the first test (MAROS-R7: violation 6.7e-7 of φ), never
                // by the second, since Σ v_j |x_j| ≥ φ at any feasible x.
                if !p_inf {
                    p_inf = primal_infeasible(lp, &w.yu, &w.at_y, &w.xu, &w.ax, opts.tol_infeasible, (false, true)) == Farkas::Yes;
                }
                pinf_hits = if p_inf { pinf_hits + 1 } else { 0 };
                // A recession ray with cᵀd < 0 proves unboundedness only for a feasible problem:
                // require the primal residual to be small too (else primal infeasibility is
                // the answer, found by the test above).
                dinf_hits = if d_inf && k.rel_primal <= 1e-3 { dinf_hits + 1 } else { 0 };
                if pinf_hits >= 2 {
                    let mut reason = "a Farkas certificate (dual ray) held at two consecutive checks".to_string();
                    if let Some((out, _)) = &held {
                        reason += &format!(
                            " (the KKT test had passed at iteration {}, but the dual iterates kept growing at a \
                             steady rate, so the iterations went on to look for one: the LP is infeasible by \
                             less than the tolerance)",
                            out.nit
                        );
                    }
                    return Ok(make(Termination::Infeasible, reason, k, &w));
                }
                // (A converged run looks only for a Farkas ray: it has an approximate optimum.)
                if dinf_hits >= 2 && held.is_none() {
                    let reason = "an unbounded primal ray held at two consecutive checks".to_string();
                    return Ok(make(Termination::Unbounded, reason, k, &w));
                }
            }
            last_xb.copy_from_slice(&xb);
            last_yb.copy_from_slice(&yb);
            since_restart_check += 1;
            let elapsed = start.elapsed().as_secs_f64();
            if let Some(until) = held.as_ref().map(|h| h.1) {
                if nit >= until || nit >= opts.maxiter || elapsed >= opts.time_limit {
                    let (mut out, _) = held.take().unwrap();
                    out.reason += &format!(
                        " at iteration {}; the dual iterates were still growing steadily, but the {} iterations \
                         after found no infeasibility certificate",
                        out.nit,
                        nit - out.nit
                    );
                    out.nit = nit;
                    return Ok(out);
                }
            }
            if nit >= opts.maxiter || elapsed >= opts.time_limit {
                let reason = if nit >= opts.maxiter { "iteration limit" } else { "time limit" };
                let reason = format!(
                    "{reason} reached (primal {:.1e}, dual {:.1e}, gap {:.1e} > tol {:.1e})",
                    k.rel_primal, k.rel_dual, k.rel_gap, opts.tol
                );
                return Ok(make(Termination::MaxIter, reason, k, &w));
            }
            let err = k.rel_primal.max(k.rel_dual).max(k.rel_gap);
            match obs.observe(nit, &|| Report {
                nit,
                error: err,
                vectors: vec![("x", w.xu.clone()), ("y", w.yu.clone())],
                scalars: vec![("rel_primal", k.rel_primal), ("rel_dual", k.rel_dual), ("rel_gap", k.rel_gap),
                              ("primal_obj", k.pobj), ("dual_obj", k.dobj), ("primal_weight", omega),
                              ("restarts", restarts as f64)],
            }) {
                Control::Continue => {}
                Control::Stop => {
                    // After the KKT test passed, the converged point is the answer.
                    if let Some((mut out, _)) = held.take() {
                        out.reason += &format!(" at iteration {} (the callback stopped the search for an infeasibility certificate)", out.nit);
                        out.nit = nit;
                        return Ok(out);
                    }
                    return Ok(make(Termination::Stopped, "stopped by the callback".into(), k, &w));
                }
                Control::Abort => return Ok(make(Termination::Aborted, String::new(), k, &w)),
            }
            // Restart test on the fixed-point residual ‖z − T z‖ in the PDHG metric.
            let (dx, dy) = (&mut w.dx, &mut w.dy);
            diff_into(dx, &x, &xb);
            diff_into(dy, &y, &yb);
            s.a.matvec(dx, &mut tmp_m);
            let cross: f64 = tmp_m.iter().zip(dy.iter()).map(|(a, b)| a * b).sum();
            let r2 = omega * dx.iter().map(|v| v * v).sum::<f64>() + dy.iter().map(|v| v * v).sum::<f64>() / omega
                - 2.0 * eta * cross;
            let r = r2.max(0.0).sqrt();
            let restart = first
                || r <= 0.2 * r0
                || (r <= 0.5 * r0 && r > r_prev)
                || inner as f64 >= 0.36 * nit as f64;
            r_prev = r;
            if restart {
                // Primal weight from the movement since the last anchor (PDLP's smoothing).
                diff_into(&mut w.dx, &xb, &x_anchor);
                diff_into(&mut w.dy, &yb, &y_anchor);
                let (mx, my) = (norm2(&w.dx), norm2(&w.dy));
                // cuPDLPx: PID control of log ω toward log(Δy/Δx); when the movements or the
                // residual ratio are degenerate, back to the weight that best balanced the
                // relative primal and dual residuals so far. (PDLP's plain log-space smoothing,
                // ω ← sqrt(ω Δy/Δx), solved 8 of 15 hard Netlib problems in 5 s where this solves 12.)
                let ratio = k.rel_dual / k.rel_primal.max(f64::MIN_POSITIVE);
                let bal = ratio.log10().abs();
                if bal.is_finite() && bal < best_balance {
                    best_balance = bal;
                    omega_best = omega;
                }
                // A residual that is exactly zero by structure (the dual one of an LP whose
                // variables are all boxed, where every reduced cost is carried by a bound) says
                // nothing about the balance: the ratio guard then would pin ω to its first value
                // for good (FIT1D: no progress in 150 000 iterations).
                let informative = k.rel_dual > 1e-14 && k.rel_primal > 1e-14;
                let ok = mx > 1e-16
                    && my > 1e-16
                    && mx < 1e12
                    && my < 1e12
                    && (!informative || (ratio > 1e-8 && ratio < 1e8));
                if !first && ok {
                    let e = my.ln() - mx.ln() - omega.ln();
                    integ = 0.3 * integ + e;
                    omega = clamp(omega * (0.99 * e + 0.01 * integ).exp(), 1e-5, 1e5);
                    // Then a residual-balancing nudge (as ADMM's penalty update): a larger ω
                    // (longer dual steps) while the primal residual lags the dual side (dual
                    // residual or gap), smaller while it leads; (ratio)^(1/4), within [0.1, 10].
                    // Measured side by side against PID alone: OT LP (10⁶ variables) 2752
                    // iterations instead of 5248, QAP12 1920 instead of 2176, Netlib at 1e-4
                    // and 3 s 80 solved instead of 77, at 1e-6 70 instead of 71.
                    let dual_side = k.rel_dual.max(k.rel_gap).max(f64::MIN_POSITIVE);
                    let corr = (k.rel_primal.max(f64::MIN_POSITIVE) / dual_side).powf(0.25);
                    omega = clamp(omega * clamp(corr, 0.1, 10.0), 1e-5, 1e5);
                } else if !first {
                    omega = omega_best;
                    integ = 0.0;
                }
                x.copy_from_slice(&xb);
                y.copy_from_slice(&yb);
                x_anchor.copy_from_slice(&xb);
                y_anchor.copy_from_slice(&yb);
                inner = 0;
                r0 = r;
                r_prev = f64::INFINITY;
                restarts += usize::from(!first);
                first = false;
                since_restart_check = 0;
                continue;
            }
            // No restart: the Halpern step the fused pass left out.
            for j in 0..n {
                x[j] = wt * xt[j] + wa * x_anchor[j];
            }
            for i in 0..m {
                y[i] = wt * (2.0 * yb[i] - y[i]) + wa * y_anchor[i];
            }
        }
    }
}

/// One PDHG evaluation `T(x, y)` on the scaled problem, as two fused row passes: over the rows
/// of Aᵀ (`aty_j`, then `x̄_j` and `x̃_j = 2x̄_j − x_j` at once) and over the rows of A (`(A x̃)_i`,
/// then `ȳ_i`). With `fused`, the reflected Halpern step is applied in the same passes
/// (`x ← wt·x̃ + wa·x₀`, `y ← wt·(2ȳ − y) + wa·y₀`) and `xb`/`yb` are not written; without,
/// `x`, `y` stay and `xb`, `xt`, `yb` hold `T z` and `x̃`.
#[allow(clippy::too_many_arguments)]
fn pdhg_step(
    s: &Scaled,
    tau: f64,
    sigma: f64,
    w: (f64, f64),
    fused: bool,
    x: &mut [f64],
    y: &mut [f64],
    xa: &[f64],
    ya: &[f64],
    xb: &mut [f64],
    xt: &mut [f64],
    yb: &mut [f64],
) {
    use crate::linalg::csr::SharedMut;
    let (m, n) = (s.a.nrows, s.a.ncols);
    assert!(x.len() == n && xa.len() == n && xb.len() == n && xt.len() == n && s.c.len() == n);
    assert!(y.len() == m && ya.len() == m && yb.len() == m && s.lc.len() == m && s.uc.len() == m);
    assert!(s.lv.len() == n && s.uv.len() == n && s.at.nrows == n && s.at.ncols == m);
    let (xs, xts, xbs) = (SharedMut::new(x), SharedMut::new(xt), SharedMut::new(xb));
    let yr: &[f64] = y;
    // Each range of rows gets its own disjoint output slices: as function arguments they are
    // known not to alias the inputs, so the compiler keeps every pointer in a register
    // (through the captured SharedMut pointers it reloaded them at each row: a fifth to a
    // third of the time of a QAP12 iteration, whose Aᵀ rows hold 4.3 entries on average).
    s.at.for_rows(|r| {
        // SAFETY: for_rows hands out disjoint ranges within 0..n; every slice has length n.
        let (x, xt, xb) = unsafe { (xs.slice(r.clone()), xts.slice(r.clone()), xbs.slice(r.clone())) };
        let (c, xa) = (&s.c[r.clone()], &xa[r.clone()]);
        match (s.uniform_box, fused) {
            (Some((l, u)), true) => primal_rows::<true>(&s.at, r.start, yr, c, move |_| (l, u), tau, w, xa, x, xt, xb),
            (Some((l, u)), false) => primal_rows::<false>(&s.at, r.start, yr, c, move |_| (l, u), tau, w, xa, x, xt, xb),
            (None, f) => {
                let (lv, uv) = (&s.lv[r.clone()], &s.uv[r.clone()]);
                let b = move |k: usize| (lv[k], uv[k]);
                if f {
                    primal_rows::<true>(&s.at, r.start, yr, c, b, tau, w, xa, x, xt, xb)
                } else {
                    primal_rows::<false>(&s.at, r.start, yr, c, b, tau, w, xa, x, xt, xb)
                }
            }
        }
    });
    let (ys, ybs) = (SharedMut::new(y), SharedMut::new(yb));
    let xtr: &[f64] = xt;
    s.a.for_rows(|r| {
        // SAFETY: as above, within 0..m.
        let (y, yb) = unsafe { (ys.slice(r.clone()), ybs.slice(r.clone())) };
        let (lc, uc, ya) = (&s.lc[r.clone()], &s.uc[r.clone()], &ya[r.clone()]);
        if fused {
            dual_rows::<true>(&s.a, r.start, xtr, lc, uc, sigma, w, ya, y, yb)
        } else {
            dual_rows::<false>(&s.a, r.start, xtr, lc, uc, sigma, w, ya, y, yb)
        }
    });
}

/// The primal half of [`pdhg_step`] on the columns `first..first + x.len()` (rows of `at`);
/// `c`, `bounds`, `xa` and the outputs are indexed from `first`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn primal_rows<const FUSED: bool>(
    at: &Csr,
    first: usize,
    y: &[f64],
    c: &[f64],
    bounds: impl Fn(usize) -> (f64, f64),
    tau: f64,
    (wa, wt): (f64, f64),
    xa: &[f64],
    x: &mut [f64],
    xt: &mut [f64],
    xb: &mut [f64],
) {
    let len = x.len();
    assert!(c.len() == len && xa.len() == len && xt.len() == len && xb.len() == len);
    assert!(first + len <= at.nrows && y.len() >= at.ncols);
    for k in 0..len {
        // SAFETY: first + k < nrows, checked above; row_dot_unchecked's own conditions hold
        // by construction of `at` and y.len() >= ncols.
        let aty = unsafe { at.row_dot_unchecked(first + k, y) };
        let (l, u) = bounds(k);
        let xj = x[k];
        let xbj = clamp(xj - tau * (c[k] - aty), l, u);
        let xtj = 2.0 * xbj - xj;
        xt[k] = xtj;
        if FUSED {
            x[k] = wt * xtj + wa * xa[k];
        } else {
            xb[k] = xbj;
        }
    }
}

/// The dual half of [`pdhg_step`] on the rows `first..first + y.len()` of `a`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dual_rows<const FUSED: bool>(
    a: &Csr,
    first: usize,
    xt: &[f64],
    lc: &[f64],
    uc: &[f64],
    sigma: f64,
    (wa, wt): (f64, f64),
    ya: &[f64],
    y: &mut [f64],
    yb: &mut [f64],
) {
    let len = y.len();
    assert!(lc.len() == len && uc.len() == len && ya.len() == len && yb.len() == len);
    assert!(first + len <= a.nrows && xt.len() >= a.ncols);
    for k in 0..len {
        // SAFETY: as in primal_rows.
        let ax = unsafe { a.row_dot_unchecked(first + k, xt) };
        let yi = y[k];
        let v = ax - yi / sigma;
        let ybi = yi - sigma * (ax - clamp(v, lc[k], uc[k]));
        if FUSED {
            y[k] = wt * (2.0 * ybi - yi) + wa * ya[k];
        } else {
            yb[k] = ybi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::NoObserver;

    fn dense(rows: &[&[f64]]) -> Csr {
        Csr::from_dense(rows)
    }

    #[test]
    fn small_lp_optimum_and_duals() {
        // min -x - y  s.t. x + 2y <= 4, 3x + y <= 6, x, y >= 0: optimum (1.6, 1.2), value -2.8.
        let lp = Lp {
            a: dense(&[&[1.0, 2.0], &[3.0, 1.0]]),
            c: vec![-1.0, -1.0],
            lc: vec![f64::NEG_INFINITY; 2],
            uc: vec![4.0, 6.0],
            lv: vec![0.0; 2],
            uv: vec![f64::INFINITY; 2],
        };
        let mut o = Options::default();
        o.tol = 1e-9;
        let out = solve(&lp, None, None, &o, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Converged, "{}", out.reason);
        assert!((out.x[0] - 1.6).abs() < 1e-6 && (out.x[1] - 1.2).abs() < 1e-6, "{:?}", out.x);
        assert!((out.primal_obj + 2.8).abs() < 1e-7);
        // duals of <= rows are <= 0: (-0.4, -0.2)
        assert!((out.y[0] + 0.4).abs() < 1e-6 && (out.y[1] + 0.2).abs() < 1e-6, "{:?}", out.y);
    }

    /// Uniform [0, 1) numbers from a fixed seed (a plain LCG: test data only).
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64) / ((1u64 << 53) as f64)
        }
    }

    #[test]
    fn results_do_not_depend_on_the_number_of_threads() {
        // Large enough for the parallel passes (over 150 000 entries plus rows) and the chunked
        // convergence checks.
        let (m, n) = (8000usize, 40_000usize);
        let mut rnd = uniform(99);
        let (mut indptr, mut indices, mut data) = (vec![0], vec![], vec![]);
        for i in 0..m {
            let mut cols: Vec<usize> = (0..20).map(|_| (rnd() * n as f64) as usize % n).collect();
            cols.push(i);
            cols.sort_unstable();
            cols.dedup();
            for j in cols {
                indices.push(j);
                data.push(rnd() + 0.1);
            }
            indptr.push(data.len());
        }
        let a = Csr::new(m, n, indptr, indices, data).unwrap();
        let c: Vec<f64> = (0..n).map(|_| rnd() - 0.3).collect();
        let lp = Lp {
            a,
            c,
            lc: vec![f64::NEG_INFINITY; m],
            uc: vec![1.0; m],
            lv: vec![0.0; n],
            uv: (0..n).map(|j| if j % 3 == 0 { f64::INFINITY } else { 2.0 }).collect(),
        };
        let opts = Options { maxiter: 640, ..Options::default() };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| solve(&lp, None, None, &opts, &mut NoObserver).unwrap())
        };
        let (one, two) = (run(1), run(3));
        assert_eq!(one.nit, two.nit);
        assert_eq!(one.restarts, two.restarts);
        assert!(one.x == two.x && one.y == two.y, "iterates differ between 1 and 3 threads");
        assert_eq!(one.rel_gap.to_bits(), two.rel_gap.to_bits());
    }

    #[test]
    fn lanczos_matches_a_long_power_iteration() {
        // a random sparse 300 × 200 matrix with a nearly repeated top singular value
        let (m, n) = (300usize, 200usize);
        let mut rnd = uniform(12345);
        let (mut indptr, mut indices, mut data) = (vec![0], vec![], vec![]);
        for i in 0..m {
            for j in 0..n {
                if rnd() < 0.05 || i == j {
                    indices.push(j);
                    data.push(if i == j && i < 2 { 5.0 - 1e-4 * i as f64 } else { rnd() - 0.5 });
                }
            }
            indptr.push(data.len());
        }
        let a = Csr::new(m, n, indptr, indices, data).unwrap();
        let at = a.transpose();
        let theta = lanczos_max_eig(&a, &at);
        let mut v = vec![1.0; n];
        let (mut av, mut w, mut lam) = (vec![0.0; m], vec![0.0; n], 0.0);
        for _ in 0..200_000 {
            a.matvec(&v, &mut av);
            at.matvec(&av, &mut w);
            lam = norm2(&w) / norm2(&v);
            let s = norm2(&w);
            v.iter_mut().zip(&w).for_each(|(x, y)| *x = y / s);
        }
        assert!((theta - lam).abs() <= 1e-9 * lam && theta <= lam * (1.0 + 1e-12), "{theta} vs {lam}");
        let est = spectral_norm(&a, &at);
        assert!(est >= lam.sqrt() && est <= 1.0101 * lam.sqrt(), "{est} vs {}", lam.sqrt());
    }

    #[test]
    fn infeasible_and_unbounded_are_detected() {
        // x + y <= 1 and x + y >= 3 with x, y >= 0: infeasible.
        let lp = Lp {
            a: dense(&[&[1.0, 1.0], &[1.0, 1.0]]),
            c: vec![1.0, 1.0],
            lc: vec![f64::NEG_INFINITY, 3.0],
            uc: vec![1.0, f64::INFINITY],
            lv: vec![0.0; 2],
            uv: vec![f64::INFINITY; 2],
        };
        // Bound propagation proves it before iterating (row 1 can reach at most 1 once row 0
        // gives x, y <= 1); without it, a Farkas ray does.
        let out = solve(&lp, None, None, &Options::default(), &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Infeasible, "{}", out.reason);
        assert!(out.nit == 0 && out.reason.contains("bound propagation"), "{}", out.reason);
        let no_propagation = Options { propagation_rounds: 0, ..Options::default() };
        let out = solve(&lp, None, None, &no_propagation, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Infeasible, "{}", out.reason);
        assert!(out.nit > 0 && out.reason.contains("Farkas"), "{}", out.reason);
        // min -x s.t. x - y <= 1, x, y >= 0: unbounded along (1, 1).
        let lp = Lp {
            a: dense(&[&[1.0, -1.0]]),
            c: vec![-1.0, 0.0],
            lc: vec![f64::NEG_INFINITY],
            uc: vec![1.0],
            lv: vec![0.0; 2],
            uv: vec![f64::INFINITY; 2],
        };
        let out = solve(&lp, None, None, &Options::default(), &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Unbounded, "{}", out.reason);
    }

    #[test]
    fn a_ray_with_entries_of_a_forbidden_sign_is_rechecked_without_them() {
        // x <= 10 and x >= 0 with 4 <= x <= 5: feasible. The ray dy = (-1, -5) carries -5 on
        // the row without an upper bound; with it, λ = -Aᵀdy = 6 and φ = 10·(-1) + 4·6 = 14 > 0
        // with no violation, so the plain test alone would call the LP infeasible.
        let p = Lp {
            a: Csr::from_dense(&[&[1.0], &[1.0]]),
            c: vec![0.0],
            lc: vec![f64::NEG_INFINITY, 0.0],
            uc: vec![10.0, f64::INFINITY],
            lv: vec![4.0],
            uv: vec![5.0],
        };
        let (x, ax) = ([4.5], [4.5, 4.5]);
        assert_eq!(primal_infeasible(&p, &[-1.0, -5.0], &[-6.0], &x, &ax, 1e-6, (true, false)), Farkas::Recheck);
        // Without it: λ = 1, φ = -10 + 4 = -6: no certificate.
        assert_eq!(primal_infeasible(&p, &[-1.0, 0.0], &[-1.0], &x, &ax, 1e-6, (true, false)), Farkas::No);
        // The guarded test counts that entry against x (5·4.5 > φ/100).
        assert_eq!(primal_infeasible(&p, &[-1.0, -5.0], &[-6.0], &x, &ax, 1e-6, (false, true)), Farkas::No);
        // A ray within the cone passes outright: x >= 6 added as a third row makes it infeasible.
        let mut q = p.clone();
        q.a = Csr::from_dense(&[&[1.0], &[1.0], &[1.0]]);
        q.lc.push(6.0);
        q.uc.push(f64::INFINITY);
        // dy = (0, 0, 1): φ = 6 + 5·(-1) = 1 > 0 (λ = -1 at the upper bound 5).
        assert_eq!(primal_infeasible(&q, &[0.0, 0.0, 1.0], &[1.0], &x, &[4.5; 3], 1e-6, (true, false)), Farkas::Yes);
    }

    #[test]
    fn clipping_a_ray_to_the_cone_and_its_product() {
        // Rows: (-inf, 1], [0, inf), [2, 3], (-inf, inf); the product goes through the scaling.
        let rows: [&[f64]; 4] = [&[1.0, 2.0, 0.0], &[0.0, -3.0, 0.5], &[4.0, 0.0, -1.0], &[1.0, 1.0, 1.0]];
        let p = Lp {
            a: Csr::from_dense(&rows),
            c: vec![1.0, -2.0, 0.5],
            lc: vec![f64::NEG_INFINITY, 0.0, 2.0, f64::NEG_INFINITY],
            uc: vec![1.0, f64::INFINITY, 3.0, f64::INFINITY],
            lv: vec![0.0, -1.0, f64::NEG_INFINITY],
            uv: vec![5.0, f64::INFINITY, 2.0],
        };
        let s = scale(&p);
        let dy = [2.0, -1.5, -0.7, 0.3];
        let (mut v, mut at_v, mut tm, mut tn) = ([0.0; 4], [0.0; 3], [0.0; 4], [0.0; 3]);
        clip_to_cone(&p, &s, &dy, &mut v, &mut at_v, &mut tm, &mut tn);
        // y > 0 needs a lower bound, y < 0 an upper one; a free row takes neither.
        assert_eq!(v, [0.0, 0.0, -0.7, 0.0]);
        for j in 0..3 {
            let want: f64 = (0..4).map(|i| rows[i][j] * v[i]).sum();
            assert!((at_v[j] - want).abs() <= 1e-12 * (1.0 + want.abs()), "{j}: {} vs {want}", at_v[j]);
        }
    }

    #[test]
    fn a_steadily_growing_dual_iterate() {
        // Linear growth (an infeasible LP's drift along a Farkas ray): yes, from 16 checks on.
        let line: Vec<f64> = (0..40).map(|k| 5.0 + 0.3 * k as f64).collect();
        assert!(dual_growing(&line));
        assert!(!dual_growing(&line[..15]));
        // Converging to a limit (a feasible LP): growth shrinks geometrically, rates far apart.
        let conv: Vec<f64> = (0..40).map(|k| 10.0 - 5.0 * 0.8f64.powi(k)).collect();
        assert!(!dual_growing(&conv));
        // Steady but slow (under 1% of ‖y‖ over the last eighth), or not at every check.
        let slow: Vec<f64> = (0..40).map(|k| 100.0 + 0.01 * k as f64).collect();
        assert!(!dual_growing(&slow));
        let mut dip = line.clone();
        dip[37] = dip[36] - 0.1;
        assert!(!dual_growing(&dip));
        // Accelerating growth: the last eighth's rate is not within 30% of the one before.
        let fast: Vec<f64> = (0..40).map(|k| 1.1f64.powi(k)).collect();
        assert!(!dual_growing(&fast));
    }

    #[test]
    fn a_warm_start_of_the_wrong_length_is_an_error() {
        let lp = Lp {
            a: dense(&[&[1.0, 1.0]]),
            c: vec![1.0, 1.0],
            lc: vec![1.0],
            uc: vec![f64::INFINITY],
            lv: vec![0.0; 2],
            uv: vec![f64::INFINITY; 2],
        };
        for (x0, y0) in [(Some(&[1.0][..]), None), (None, Some(&[1.0, 2.0][..]))] {
            let err = solve(&lp, x0, y0, &Options::default(), &mut NoObserver).unwrap_err();
            assert!(err.to_string().contains("warm start"), "{err}");
        }
    }
}
