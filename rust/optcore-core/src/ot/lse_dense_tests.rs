//! The dense operator's passes and measurement against plain loops.

use super::*;

/// The measurement as one plain loop per row block (the order the interleaved one keeps).
fn plain_measure(cost: &[f64], n: usize, m: usize, fs: &[f64], gs: &[f64], inv: f64) -> Sums {
    let rb = row_block(n);
    let mut rows = vec![0.0; n];
    let mut cols = vec![0.0; m];
    let mut costs = Vec::new();
    let mut partials = Vec::new();
    for b0 in (0..n).step_by(rb) {
        let (mut acc, mut c) = (vec![0.0; m], 0.0);
        for i in b0..(b0 + rb).min(n) {
            if fs[i] == f64::NEG_INFINITY {
                continue;
            }
            for j in 0..m {
                let p = if gs[j] == f64::NEG_INFINITY {
                    0.0
                } else {
                    (fs[i] + gs[j] - cost[i * m + j] * inv).fast_exp::<crate::real::Unfused>()
                };
                rows[i] += p;
                acc[j] += p;
                c += p * cost[i * m + j];
            }
        }
        costs.push(c);
        partials.push(acc);
    }
    for (j, o) in cols.iter_mut().enumerate() {
        *o = partials.iter().fold(0.0, |s, acc| s + acc[j]);
    }
    Sums { rows, cols, cost: costs.iter().sum() }
}

#[test]
fn paired_dot_products_are_bit_identical_to_single_ones() {
    for len in [0usize, 5, 8, 37, 500] {
        let k0: Vec<f64> = (0..len).map(|j| (j as f64 * 0.37).sin().abs()).collect();
        let k1: Vec<f64> = (0..len).map(|j| (j as f64 * 0.11).cos().abs()).collect();
        let v: Vec<f64> = (0..len).map(|j| 1.0 + (j % 7) as f64 * 1e-3).collect();
        for fast in [false, simd()] {
            let (s0, s1) = pass::dot2(fast, &k0, &k1, &v);
            assert_eq!(s0.to_bits(), pass::dot(fast, &k0, &v).to_bits());
            assert_eq!(s1.to_bits(), pass::dot(fast, &k1, &v).to_bits());
        }
    }
}

#[test]
fn wide_passes_are_bit_identical_to_the_generic_ones() {
    // `fast` runs the AVX2 or AVX-512 version where the CPU has it.
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for len in [1usize, 7, 16, 37, 500] {
        let c: Vec<f64> = (0..len).map(|j| ((j * 7919) % 101) as f64 / 50.0).collect();
        let g: Vec<f64> = (0..len).map(|j| (j as f64 * 0.91).cos() * 40.0).collect();
        let (mut k0, mut k1) = (vec![0.0; len], vec![0.0; len]);
        pass::exp_row(false, &mut k0, &c, &g, -3.5, 37.0);
        pass::exp_row(simd(), &mut k1, &c, &g, -3.5, 37.0);
        assert_eq!(bits(&k0), bits(&k1));
        assert_eq!(pass::dot(false, &k0, &c).to_bits(), pass::dot(simd(), &k0, &c).to_bits());
        assert_eq!(pass::row_max(false, &c, &g, 3.0).to_bits(), pass::row_max(simd(), &c, &g, 3.0).to_bits());
        let (mut a0, mut a1) = (vec![0.0; len], vec![0.0; len]);
        let u = [0.5, 0.0, 2.0];
        let kb: Vec<f64> = k0.iter().chain(&c).chain(&g).copied().collect();
        pass::col_sums(false, &kb, &u, &mut a0);
        pass::col_sums(simd(), &kb, &u, &mut a1);
        assert_eq!(bits(&a0), bits(&a1));
    }
}

#[test]
fn interleaved_measurement_is_bit_identical_to_one_loop() {
    // 150 rows: blocks of 32, the last one short; rows and columns with -inf potentials.
    for &(n, m) in &[(150usize, 37usize), (7, 5), (600, 3)] {
        let cost: Vec<f64> = (0..n * m).map(|k| ((k * 7919) % 101) as f64 / 50.0).collect();
        let fs: Vec<f64> =
            (0..n).map(|i| if i % 17 == 3 { f64::NEG_INFINITY } else { (i as f64 * 0.37).sin() }).collect();
        let gs: Vec<f64> =
            (0..m).map(|j| if j % 11 == 4 { f64::NEG_INFINITY } else { (j as f64 * 0.91).cos() }).collect();
        let mut op = DenseOperator::new(&cost, n, m).unwrap();
        let got = op.measure(&fs, &gs, 0.3).unwrap();
        let want = plain_measure(&cost, n, m, &fs, &gs, 1.0 / 0.3);
        assert_eq!(
            got.rows.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want.rows.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(
            got.cols.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want.cols.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(got.cost.to_bits(), want.cost.to_bits(), "{n} x {m}");
    }
}

/// The unfused iteration (the [`LogKernel::rows_cols`] default): rows, the update, cols.
#[allow(clippy::too_many_arguments)]
fn unfused<T: Real>(
    op: &mut DenseOperator<'_, T>,
    hm: &[T],
    upd: RowUpdate<'_, T>,
    reg: f64,
    lse_n: &mut [T],
    f: &mut [T],
    hn: &mut [T],
    lse_m: &mut [T],
) {
    op.rows(hm, lse_n);
    for (i, x) in f.iter_mut().enumerate() {
        *x = upd(i, lse_n[i]);
    }
    crate::ot::unbalanced::scaled(f, reg, hn);
    op.cols(hn, lse_m);
}

/// The fused pass against the unfused one, bit for bit, over iterations that rebuild the
/// kernel (a jump of the potentials puts a scaling out of range: the fallback) and with a
/// zero weight (a `-inf` potential); rows in a block of 32 and an odd remainder.
fn fused_matches<T: Real>(n: usize, m: usize) {
    let cost: Vec<T> = (0..n * m).map(|k| T::from_f64(((k * 37 + 11) % 53) as f64 / 53.0)).collect();
    let reg = 0.05;
    let (mut op1, mut op2) = (DenseOperator::new(&cost, n, m).unwrap(), DenseOperator::new(&cost, n, m).unwrap());
    op1.set_reg(reg).unwrap();
    op2.set_reg(reg).unwrap();
    let ln_a: Vec<f64> =
        (0..n).map(|i| if i == 3 { f64::NEG_INFINITY } else { -(1.0 + (i % 7) as f64 * 0.1).ln() }).collect();
    let mut g = vec![T::zero(); m];
    let z = || vec![T::zero(); n];
    let (mut l1, mut f1, mut h1, mut l2, mut f2, mut h2) = (z(), z(), z(), z(), z(), z());
    let (mut c1, mut c2) = (vec![T::zero(); m], vec![T::zero(); m]);
    for it in 0..6 {
        // A jump at iteration 3: exp(400) leaves the scalings' range.
        let jump = if it == 3 { 400.0 * reg } else { 0.0 };
        let upd = |i: usize, l: T| {
            if ln_a[i] == f64::NEG_INFINITY {
                T::neg_infinity()
            } else {
                T::from_f64(reg * ln_a[i] - 0.9 * reg * l.as_f64() + jump)
            }
        };
        let hm: Vec<T> = g.iter().map(|&x| T::from_f64(x.as_f64() / reg)).collect();
        op1.rows_cols(&hm, &mut l1, &upd, reg, &mut f1, &mut h1, &mut c1);
        unfused(&mut op2, &hm, &upd, reg, &mut l2, &mut f2, &mut h2, &mut c2);
        let bits = |u: &[T], v: &[T]| u.iter().zip(v).all(|(x, y)| x.as_f64().to_bits() == y.as_f64().to_bits());
        assert!(bits(&l1, &l2) && bits(&f1, &f2) && bits(&h1, &h2) && bits(&c1, &c2), "iteration {it}");
        assert_eq!(op1.rebuilds, op2.rebuilds);
        g = c1.iter().map(|&l| T::from_f64(-0.9 * reg * l.as_f64())).collect();
    }
    assert!(op1.rebuilds >= 2, "the jump rebuilds the kernel");
}

#[test]
fn fused_pass_is_bit_identical_to_the_unfused_one() {
    fused_matches::<f64>(37, 23);
    fused_matches::<f32>(37, 23);
    // Large enough to run in parallel.
    fused_matches::<f64>(600, 500);
}

#[test]
fn measurement_from_the_stored_kernel_matches_the_exponentials() {
    // After a pass the f64 kernel is built at reg: the measurement scales it (blocks of 32
    // rows, a short group; -inf potentials give zero rows and columns).
    let (n, m, reg) = (150usize, 37usize, 0.3);
    let cost: Vec<f64> = (0..n * m).map(|k| ((k * 7919) % 101) as f64 / 50.0).collect();
    let fs: Vec<f64> = (0..n).map(|i| if i % 17 == 3 { f64::NEG_INFINITY } else { (i as f64 * 0.37).sin() }).collect();
    let gs: Vec<f64> = (0..m).map(|j| if j % 11 == 4 { f64::NEG_INFINITY } else { (j as f64 * 0.91).cos() }).collect();
    let mut op = DenseOperator::new(&cost, n, m).unwrap();
    op.set_reg(reg).unwrap();
    op.keep_plan().unwrap();
    let mut out = vec![0.0; n];
    op.rows(&vec![0.5; m], &mut out);
    assert!(op.plan_scalings(&fs, &gs, reg).unwrap().is_some(), "the kernel path is taken");
    let got = op.measure(&fs, &gs, reg).unwrap();
    let plan = op.take_plan().unwrap();
    let want = plain_measure(&cost, n, m, &fs, &gs, 1.0 / reg);
    let close = |u: &[f64], v: &[f64]| u.iter().zip(v).all(|(x, y)| (x - y).abs() <= 1e-14 * y.abs());
    assert!(close(&got.rows, &want.rows) && close(&got.cols, &want.cols));
    assert!((got.cost - want.cost).abs() <= 1e-14 * want.cost);
    // Not bit-identical (the measurement really took the other path), and the plan returned
    // is the one measured: its row sums are the measured ones.
    assert!(got.rows.iter().zip(&want.rows).any(|(x, y)| x != y));
    for (i, &r) in got.rows.iter().enumerate() {
        let s: f64 = plan[i * m..(i + 1) * m].iter().sum();
        assert!((s - r).abs() <= 1e-15 * r.max(1e-300) * m as f64, "row {i}");
        assert_eq!(s == 0.0, fs[i] == f64::NEG_INFINITY);
    }
    // A reg the kernel was not built at, or float32: the exponentials.
    assert!(op.plan_scalings(&fs, &gs, 0.2).unwrap().is_none());
}
