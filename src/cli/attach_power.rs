//! `joulebench attach-power`: a meter's log into a recorded run.

use anyhow::Result;
use joulebench::harness::{attach, HarnessError};
use joulebench::power::external::{MeterFormat, TimeFormat, PRESETS};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AttachPowerArgs {
    /// The run directory (results/<suite>/<timestamp>).
    results_dir: PathBuf,
    /// The meter's log (CSV or delimited text).
    meter_log: PathBuf,
    /// Log format: unix-watts, pyummeter or ptdaemon (default: the
    /// suite's external settings, else unix-watts).
    #[arg(long)]
    preset: Option<String>,
    /// Seconds added to the meter's timestamps to get this host's UTC.
    #[arg(long, allow_hyphen_values = true)]
    clock_offset: Option<f64>,
    /// Field delimiter (one character).
    #[arg(long)]
    delimiter: Option<char>,
    /// The log has no header line (columns are then 0-based numbers).
    #[arg(long)]
    no_header: bool,
    /// Timestamp column: a header name or a 0-based number.
    #[arg(long)]
    time_column: Option<String>,
    /// unix, unix_ms, iso, elapsed, elapsed_ms or a strftime pattern.
    #[arg(long)]
    time_format: Option<String>,
    #[arg(long)]
    watts_column: Option<String>,
    #[arg(long)]
    volts_column: Option<String>,
    #[arg(long)]
    amps_column: Option<String>,
    /// Multiplies the amps column (0.001 for mA).
    #[arg(long)]
    amps_scale: Option<f64>,
    /// Windows with fewer meter readings are flagged.
    #[arg(long, default_value_t = 5)]
    min_samples: usize,
}

fn usage(name: &'static str, reason: String) -> anyhow::Error {
    HarnessError::Usage { name, reason }.into()
}

impl AttachPowerArgs {
    pub fn run(self) -> Result<()> {
        let f = self.meter_format()?;
        let (dir, log) = (&self.results_dir, &self.meter_log);
        let o = attach::attach_power(dir, log, f, self.min_samples)?;
        println!(
            "attached {} of {} row(s) in {} from {}{}",
            o.attached,
            o.rows,
            dir.display(),
            log.display(),
            o.idle_w
                .map_or(String::new(), |w| format!(" (idle {w:.2} W)"))
        );
        for (p, why) in &o.uncovered {
            eprintln!("warning: {p}: not attached: {why}");
        }
        for (p, why) in &o.skipped {
            eprintln!("warning: {p}: left alone: {why}");
        }
        Ok(())
    }

    /// The preset (or the format the run recorded) with the options' overrides.
    fn meter_format(&self) -> Result<MeterFormat> {
        let mut f = match &self.preset {
            Some(p) => MeterFormat::preset(p).ok_or_else(|| {
                usage(
                    "preset",
                    format!("`{p}` is not known; use {}", PRESETS.join(", ")),
                )
            })?,
            None => attach::recorded_format(&self.results_dir).unwrap_or_default(),
        };
        if let Some(x) = self.clock_offset {
            f.clock_offset_s = x;
        }
        if let Some(d) = self.delimiter {
            f.delimiter = d;
        }
        if self.no_header {
            f.header = false;
        }
        if let Some(c) = &self.time_column {
            f.time_column = attach::column_arg(c);
        }
        if let Some(t) = &self.time_format {
            f.time_format = TimeFormat::parse(t).ok_or_else(|| {
                usage("time-format", format!("`{t}` is not unix, unix_ms, iso, elapsed, elapsed_ms or a strftime pattern"))
            })?;
        }
        if self.volts_column.is_some() || self.amps_column.is_some() {
            f.watts_column = None;
        }
        if let Some(c) = &self.watts_column {
            f.watts_column = Some(attach::column_arg(c));
        }
        if let Some(c) = &self.volts_column {
            f.volts_column = Some(attach::column_arg(c));
        }
        if let Some(c) = &self.amps_column {
            f.amps_column = Some(attach::column_arg(c));
        }
        if let Some(x) = self.amps_scale {
            f.amps_scale = x;
        }
        f.validate().map_err(|e| usage("meter format", e))?;
        Ok(f)
    }
}
