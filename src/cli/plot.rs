//! `joulebench plot`.

use anyhow::Result;
use joulebench::harness::plot::{self, PlotOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct PlotArgs {
    /// results.csv, or a run directory (results/<suite>/<timestamp>).
    input: PathBuf,
    /// Figure directory (default: figures/ in the run directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Image formats, comma-separated: png, svg.
    #[arg(long, default_value = "png")]
    format: String,
}

impl PlotArgs {
    pub fn run(self) -> Result<()> {
        let formats = plot::parse_formats(&self.format)?;
        let opts = PlotOptions {
            out: self.out,
            formats,
        };
        print!("{}", plot::plot(&self.input, &opts)?);
        Ok(())
    }
}
