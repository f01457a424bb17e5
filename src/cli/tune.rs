//! `joulebench tune`.

use super::{emit, Format};
use anyhow::Result;
use joulebench::harness::tune_cmd::{self, TuneSpec};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct TuneArgs {
    /// Built-in model name or an ONNX file.
    #[arg(long)]
    model: String,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Interleaved rounds over the candidate algorithms.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Timed inferences per candidate and round.
    #[arg(long, default_value_t = 3)]
    iterations: usize,
    /// The tuning file [default: tuning-<model>-t<threads>-b<batch>.json].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl TuneArgs {
    pub fn run(self) -> Result<()> {
        let t = tune_cmd::tune(&TuneSpec {
            model: self.model,
            threads: self.threads,
            batch: self.batch,
            rounds: self.rounds,
            iterations: self.iterations,
        })?;
        let out = self.out.unwrap_or_else(|| tune_cmd::default_file(&t));
        t.save(&out)?;
        emit(self.format, &t, || {
            format!("{t}\nwrote {}\n", out.display())
        })
    }
}
