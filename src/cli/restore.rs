//! `joulebench restore`.

use anyhow::Result;
use joulebench::harness::modes;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The run directory (results/<suite>/<timestamp>).
    run_dir: PathBuf,
    /// Root for sysfs writes (default: the root the run used).
    #[arg(long, value_name = "DIR")]
    sysfs_root: Option<PathBuf>,
}

impl RestoreArgs {
    pub fn run(self) -> Result<()> {
        let done = modes::restore_run(&self.run_dir, self.sysfs_root)?;
        let dir = self.run_dir.display();
        if done.is_empty() {
            println!("the power state saved in {dir} was already in place");
        } else {
            println!("restored the power state saved in {dir}:");
            for d in done {
                println!("  {d}");
            }
        }
        Ok(())
    }
}
