//! `joulebench report`.

use anyhow::Result;
use joulebench::harness::report;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// A run directory (or its results.csv).
    dir: PathBuf,
}

impl ReportArgs {
    pub fn run(self) -> Result<()> {
        let r = report::report(&self.dir)?;
        print!("{}", r.plot);
        println!("wrote {} and {}", r.markdown.display(), r.html.display());
        Ok(())
    }
}
