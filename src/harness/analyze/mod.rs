//! Analysis of recorded runs: order statistics and the regression gate.

pub mod compare;
pub mod stats;
