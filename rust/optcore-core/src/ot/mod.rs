//! Entropic optimal transport.
//!
//! Conventions (shared with the Python API): a problem is `(a, b, M, reg)` with `a` of length
//! `n`, `b` of length `m`, `M` an `n x m` row-major cost matrix and `reg > 0`. The plan is
//! `P_ij = exp((f_i + g_j - M_ij) / reg)` with dual potentials `f`, `g` in the units of `M`
//! (`-inf` where a weight is zero). The objective is `<P, M> + reg * sum_ij P_ij ln P_ij`.
//!
//! - [`controller`] — the decisions of a run (over-relaxation, stall test, ε-schedule, stage
//!   ends; the Newton stage's damping and line search), shared with the GPU driver.
//! - [`sinkhorn`] — the log-domain (stabilised scaling) solver.
//! - [`scaling`] — the classic scaling solver and the fused scaling pass.
//! - [`sns`] — Sinkhorn–Newton–Sparse.
//! - [`batch`] — many problems of one size in one call.
//! - [`online`] — log-domain Sinkhorn on point clouds, the cost computed on the fly.
//! - [`mirror`] — Mirror Sinkhorn: convex objectives over the transport polytope.
//! - [`kernels`] — the inner loops over rows of the cost, and the bare `exp` floor of a pass.
//! - [`grid`] — grids: the separable cost's Gibbs kernel applied in the log domain by 1-D passes.
//! - [`unbalanced`] — log-domain Sinkhorn over any log-domain kernel (grids, dense costs),
//!   balanced or with KL-relaxed marginals; [`lse_dense`] — a dense cost as such a kernel.
//! - [`barycenter`] — fixed-support entropic barycenters (iterative Bregman projections, log domain)
//!   over [`gibbs`], the Gibbs kernel applied in the log domain (dense, or separable on grids) to a
//!   batch of histograms ([`BatchLogKernel`]; [`LogKernel`] is the one-at-a-time map of `sinkhorn_lse`
//!   with a changing `reg` — the two are not yet one trait).

pub mod barycenter;
pub mod batch;
pub mod controller;
pub mod gibbs;
mod gibbs_ops;
pub mod grid;
pub mod kernels;
pub mod lse_dense;
pub mod mirror;
mod mirror_gap;
mod mirror_linear;
mod mirror_mult;
mod mirror_step;
pub mod online;
pub mod scaling;
pub mod sinkhorn;
pub mod sns;
pub mod sparse;
mod sparsify;
pub mod unbalanced;

pub use barycenter::{barycenter, BarycenterOptions, BarycenterOutput};
pub use batch::{sinkhorn_log_batch, sinkhorn_scaling_batch, sinkhorn_sns_batch, Batch, ScalingOptions, WarmStart};
pub use controller::{eps_schedule, Controller, EpsScaling, LineSearch, NewtonControl, Overrelax, Relax, Stall};
pub use gibbs::{BatchLogKernel, DenseKernel, SeparableKernel};
pub use grid::{Grid, GridKernel, GridOperator};
pub use lse_dense::DenseOperator;
pub use mirror::{mirror_sinkhorn, MirrorOptions, MirrorOutput, Objective, Output, Step};
pub use online::{sinkhorn_online, Clouds, OnlineOptions, OnlineOutput};
pub use scaling::{sinkhorn_scaling, ScalingOutput};
pub use sinkhorn::{sinkhorn_log, LogOptions, Problem, SinkhornOutput};
pub use sns::{sinkhorn_sns, SnsOptions, SnsOutput};
pub use unbalanced::{sinkhorn_lse, LogKernel, LseOptions, LseOutput, Sums};
