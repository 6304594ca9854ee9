//! The primitives of [`super`] (products, panels, `ln`) against plain loops, and their rates.
use super::*;

#[test]
fn fast_ln_is_accurate() {
    // Either side of the mantissa split at sqrt(2) and its half.
    for &x in &[1e-280, 1e-200, 0.3, 0.707, 0.708, 1.0, 1.414, 1.415, 2.0, 3.7, 1e10, 1e300] {
        let got = fast_ln::<Unfused>(x);
        assert!((got - x.ln()).abs() <= 4.0 * f64::EPSILON * x.ln().abs().max(1.0), "{x}: {got}");
    }
}

#[test]
fn panels_give_the_same_bits() {
    if !panels_fit(8) {
        return;
    }
    for (r, p, c) in [(7, 5, 16), (64, 64, 64), (12, 33, 8)] {
        let a: Vec<f64> = (0..r * p).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..p * c).map(|i| (i as f64 * 0.11).cos()).collect();
        let w: Vec<f64> = (0..p).map(|i| 0.5 + i as f64 * 0.01).collect();
        let bw: Vec<f64> = b.chunks(c).zip(&w).flat_map(|(row, &wt)| row.iter().map(move |&v| v * wt)).collect();
        let (mut bp, mut want, mut got) = (vec![0.0; p * c], vec![0.0; r * c], vec![0.0; r * c]);
        pack_panels(&b, Some(&w), p, c, &mut bp);
        matmul(&a, &bw, &mut want, Dims::packed(r, p, c));
        matmul_panels(&a, &bp, &mut got, Dims::packed(r, p, c));
        assert!(want.iter().zip(&got).all(|(x, y)| x.to_bits() == y.to_bits()), "{r} {p} {c}");
    }
}

#[test]
fn gemm_matches_naive() {
    let (r, p, c) = (7, 5, 19);
    let a: Vec<f64> = (0..r * p).map(|i| (i as f64 * 0.37).sin()).collect();
    let b: Vec<f64> = (0..p * c).map(|i| (i as f64 * 0.11).cos()).collect();
    let mut out = vec![0.0; r * c];
    matmul(&a, &b, &mut out, Dims::packed(r, p, c));
    // b^T as a (c x p) matrix for the transposed product.
    let bt: Vec<f64> = (0..c).flat_map(|j| (0..p).map(|t| b[t * c + j]).collect::<Vec<_>>()).collect();
    let mut out_nt = vec![0.0; r * c];
    matmul_nt(&a, &bt, &mut out_nt, r, p, c);
    for i in 0..r {
        for j in 0..c {
            let s: f64 = (0..p).map(|t| a[i * p + t] * b[t * c + j]).sum();
            assert!((out[i * c + j] - s).abs() < 1e-13);
            assert!((out_nt[i * c + j] - s).abs() < 1e-13);
        }
    }
}

#[cfg(test)]
mod speed {
    use super::super::*;

    /// CPU seconds of this thread (the machine is shared: wall time measures the load).
    fn cpu() -> f64 {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    }

    #[test]
    #[ignore]
    fn gemm_rate() {
        let n = 64;
        let a: Vec<f64> = (0..n * n).map(|i| (i as f64).sin()).collect();
        let b: Vec<f64> = (0..n * n).map(|i| (i as f64).cos()).collect();
        let mut c = vec![0.0; n * n];
        let reps = 2000;
        let t0 = cpu();
        for _ in 0..reps {
            matmul(&a, &b, &mut c, Dims::packed(n, n, n));
        }
        let dt = cpu() - t0;
        println!("gemm 64: {:.2} GFMA/s ({})", (reps * n * n * n) as f64 / dt / 1e9, c[5]);
        let rows = 256;
        let e: Vec<f64> = (0..rows * n).map(|i| (i as f64).sin()).collect();
        let mut s = vec![0.0; rows * n];
        let mut o = vec![0.0; rows * n];
        let t0 = cpu();
        for _ in 0..reps {
            exp_shifted(&e, 0.5, &mut s);
            ln_added(&s, 0.1, &mut o);
        }
        let dt = cpu() - t0;
        println!("exp+ln: {:.2} ns/elem ({})", dt / (reps * rows * n) as f64 * 1e9, o[3]);
    }
}
