//! `joulebench compare`: the regression gate.

use super::{emit, Format};
use anyhow::Result;
use joulebench::harness::compare::{self, CompareOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Baseline results.csv or run directory.
    baseline: PathBuf,
    /// Current results.csv or run directory.
    current: PathBuf,
    /// The metric compared (images_per_s, gflops, latency_ms_p50, ...).
    #[arg(long, default_value = "images_per_s")]
    metric: String,
    /// Changes within this are not regressions: 5% (or 5).
    #[arg(long, default_value = "5%")]
    tolerance: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl CompareArgs {
    /// The verdict's exit code: 0, or 3 on a regression.
    pub fn run(self) -> Result<i32> {
        let opts = CompareOptions {
            metric: self.metric,
            tolerance: compare::parse_tolerance(&self.tolerance)?,
        };
        let c = compare::compare(&self.baseline, &self.current, &opts)?;
        emit(self.format, &c, || compare::table(&c))?;
        Ok(c.exit_code)
    }
}
