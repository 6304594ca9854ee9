//! Fixed points of nonexpansive maps by Halpern (anchored) iterations.
//!
//! [`iteration`] runs Halpern, restarted Halpern, Krasnosel'skii–Mann or Picard iterations on
//! any [`crate::operators::Operator`] (the native projections and combinators live in
//! [`crate::operators`], shared with the monotone and bilevel families), with the residual
//! tolerance checked on the returned point and infeasibility (no fixed point) detected from the
//! drift of the iterates ([`displacement`]: Park & Ryu's accelerated estimator and the guard).

pub mod displacement;
pub mod iteration;

pub use iteration::{solve, Method, Options, Output};
