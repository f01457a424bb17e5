//! `joulebench sensors`.

use super::{emit, root_or_slash, Format};
use anyhow::Result;
use joulebench::harness::HarnessError;
use joulebench::power::{sensors, Sysfs};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SensorsArgs {
    /// Root for sysfs reads (default /).
    #[arg(long, value_name = "DIR")]
    sysfs_root: Option<PathBuf>,
    /// The vcgencmd program (Raspberry Pi 5 PMIC).
    #[arg(long, default_value = "vcgencmd")]
    vcgencmd: String,
    /// Seconds each source is sampled for its live reading.
    #[arg(long, default_value_t = 0.5)]
    seconds: f64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl SensorsArgs {
    pub fn run(self) -> Result<()> {
        let seconds = self.seconds;
        if !(seconds.is_finite() && seconds > 0.0 && seconds <= 60.0) {
            return Err(HarnessError::Usage {
                name: "seconds",
                reason: format!("{seconds} is not between 0 and 60"),
            }
            .into());
        }
        let sysfs = Sysfs::new(root_or_slash(self.sysfs_root));
        let report = sensors::discover(&sysfs, &self.vcgencmd, seconds);
        emit(self.format, &report, || report.table())
    }
}
