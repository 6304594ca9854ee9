//! Entropic optimal transport.
//!
//! Conventions (shared with the Python API): a problem is `(a, b, M, reg)` with `a` of length
//! `n`, `b` of length `m`, `M` an `n x m` row-major cost matrix and `reg > 0`. The plan is
//! `P_ij = exp((f_i + g_j - M_ij) / reg)` with dual potentials `f`, `g` in the units of `M`
//! (`-inf` where a weight is zero). The objective is `<P, M> + reg * sum_ij P_ij ln P_ij`.

pub mod kernels;
pub mod sinkhorn;
pub mod sns;

pub use sinkhorn::{
    sinkhorn_log, sinkhorn_scaling, EpsScaling, LogOptions, Overrelax, Problem, ScalingOutput, SinkhornOutput,
};
pub use sns::{sinkhorn_sns, SnsOptions, SnsOutput};
