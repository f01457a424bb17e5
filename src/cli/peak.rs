//! `joulebench peak`.

use super::{emit, Format};
use anyhow::Result;
use joulebench::harness::gemm_cmd;

#[derive(clap::Args)]
pub struct PeakArgs {
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl PeakArgs {
    pub fn run(self) -> Result<()> {
        let p = gemm_cmd::run_peak(self.threads)?;
        emit(self.format, &p, || gemm_cmd::format_peak(&p))
    }
}
