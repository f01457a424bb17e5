//! `joulebench run`.

use super::root_or_slash;
use anyhow::Result;
use joulebench::harness::plot::{self, PlotOptions};
use joulebench::harness::runner::{self, RunOptions, Shard};
use joulebench::harness::suite::Suite;
use joulebench::power::Sysfs;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The suite file.
    suite: PathBuf,
    /// Results root instead of ./results.
    #[arg(long, default_value = "results", conflicts_with = "resume")]
    out: PathBuf,
    /// Continue the run recorded in this directory (same suite file).
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Run only the points i-1, i-1+n, ... of the expansion (1 <= i <= n).
    #[arg(long, value_name = "i/n")]
    shard: Option<String>,
    /// Print the expanded points and the estimated time; run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Root for sysfs reads and writes: power sources, cpufreq, thermal
    /// (default /).
    #[arg(long, value_name = "DIR")]
    sysfs_root: Option<PathBuf>,
    /// No progress output (warnings and errors still go to stderr).
    #[arg(long)]
    quiet: bool,
    /// Do not draw the figures into the run directory at the end.
    #[arg(long)]
    no_plot: bool,
}

impl RunArgs {
    pub fn run(self) -> Result<()> {
        let shard = self.shard.map(|s| s.parse::<Shard>()).transpose()?;
        let suite = Suite::load(&self.suite)?;
        if self.dry_run {
            let sysfs = Sysfs::new(root_or_slash(self.sysfs_root));
            print!("{}", runner::dry_run_on(&suite, shard, &sysfs));
            return Ok(());
        }
        runner::install_ctrlc_handler()?;
        let outcome = runner::run_suite(
            &suite,
            &RunOptions {
                out_root: self.out,
                resume: self.resume,
                shard,
                quiet: self.quiet,
                sysfs_root: self.sysfs_root,
            },
        )?;
        println!(
            "recorded {} point(s){} in {} ({} warning(s))",
            outcome.recorded,
            if outcome.skipped > 0 {
                format!(", {} already there", outcome.skipped)
            } else {
                String::new()
            },
            outcome.dir.display(),
            outcome.warnings
        );
        if !self.no_plot {
            // The CSVs are on disk already: a figure that fails costs nothing else.
            match plot::plot(&outcome.dir, &PlotOptions::default()) {
                Ok(s) if self.quiet => {
                    println!("{} figure(s) in {}", s.figures.len(), s.out_dir.display())
                }
                Ok(s) => print!("{s}"),
                Err(e) => eprintln!(
                    "warning: drawing the figures failed ({e}); the results are in {}: draw them with `joulebench plot {}`",
                    outcome.dir.display(),
                    outcome.dir.display()
                ),
            }
        }
        Ok(())
    }
}
