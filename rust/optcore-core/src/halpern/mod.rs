//! Fixed points of nonexpansive maps by Halpern (anchored) iterations.
//!
//! [`operator`] defines the [`Operator`] trait and the native operators (projections onto
//! boxes, balls, simplices and affine sets, the reflected resolvent of a linear monotone
//! operator, and composition / convex averaging / reflection, hence alternating projections
//! and Douglas–Rachford). [`iteration`] runs Halpern, restarted Halpern, Krasnosel'skii–Mann
//! or Picard iterations on any operator, with the residual tolerance checked on the returned
//! point and infeasibility (no fixed point) detected from the drift of the iterates.
//! [`monotone`] solves finite-sum monotone inclusions (matrix games, quadratic min-max, user
//! sums) by variance-reduced Halpern (Cai, Alacaoglu & Diakonikolas 2024) and its baselines.
//! [`lp`] solves LPs by restarted reflected Halpern PDHG, after [`propagate`] (bound
//! propagation) has looked for a proof of infeasibility in the row activity ranges.

pub mod iteration;
pub mod lp;
pub mod propagate;
pub mod lu;
pub mod monotone;
pub mod operator;

pub use iteration::{solve, Method, Options, Output};
pub use operator::{
    apply_checked, douglas_rachford, Affine, AffineData, Average, Ball, BoxProj, Compose, Identity, LinearResolvent,
    LinearResolventData, Operator, Reflect, SharedOp, Simplex,
};
