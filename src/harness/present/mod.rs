//! Presenting recorded runs: figures and the report.

pub mod plot;
pub mod report;
