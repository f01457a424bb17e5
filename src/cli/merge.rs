//! `joulebench merge`.

use anyhow::Result;
use joulebench::harness::record::merge;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct MergeArgs {
    /// results.csv files.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The merged file (must not exist yet).
    #[arg(long)]
    out: PathBuf,
}

impl MergeArgs {
    pub fn run(self) -> Result<()> {
        let n = merge::merge(&self.inputs, &self.out)?;
        println!(
            "merged {n} row(s) from {} file(s) into {}",
            self.inputs.len(),
            self.out.display()
        );
        Ok(())
    }
}
