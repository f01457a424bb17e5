//! The command line: clap types, one file per subcommand. Each subcommand's
//! option struct turns itself into the library's request and prints the answer.

mod attach_power;
mod compare;
mod gemm;
mod infer;
mod inspect;
mod merge;
mod models;
mod peak;
mod plot;
mod report;
mod restore;
mod run;
mod sensors;
mod tune;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use joulebench::engine::gemm::ParallelLoop;
use joulebench::harness;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "joulebench",
    version,
    about = "Throughput and energy of CNN inference on CPUs"
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Measured FMA peak, GFLOP/s per core and for all threads.
    Peak(peak::PeakArgs),
    /// Time C = A*B (row-major f32) and report GFLOP/s and fraction of peak.
    Gemm(gemm::GemmArgs),
    /// The built-in model zoo with parameters and GFLOP per image.
    Models(models::ModelsArgs),
    /// Best-of algorithm per convolution layer, written as a tuning file.
    Tune(tune::TuneArgs),
    /// An ONNX model's operators, shapes and GFLOP, and what is unsupported.
    Inspect(inspect::InspectArgs),
    /// Time a model's inference: images/s, latency percentiles, GFLOP/s.
    Infer(infer::InferArgs),
    /// Run an experiment suite (TOML) and record results.csv, samples.csv
    /// and manifest.json under results/<suite>/<UTC timestamp>/.
    Run(run::RunArgs),
    /// Put back the power state (cpufreq, nvpmodel, jetson_clocks) a run with
    /// power modes saved in its directory, after a crash or kill.
    Restore(restore::RestoreArgs),
    /// Power sources found here: rails, a live reading, the total each would
    /// use, why the others are absent; and which perf counters work.
    Sensors(sensors::SensorsArgs),
    /// Fill the energy columns of a recorded run from a power meter's log,
    /// by the measured windows the run recorded.
    AttachPower(attach_power::AttachPowerArgs),
    /// Join results.csv files of one suite (shards) into one file.
    Merge(merge::MergeArgs),
    /// Draw the figures of a run (results.csv or its directory).
    Plot(plot::PlotArgs),
    /// Write report.md and report.html (machine, suite, tables, figures)
    /// into a run directory.
    Report(report::ReportArgs),
    /// Compare a run against a baseline; exit 3 on a regression.
    Compare(compare::CompareArgs),
}

impl Cli {
    /// Runs the subcommand; errors are printed here and become exit code 2
    /// (bad input) or 1 (runtime failure), see README "Exit codes".
    pub fn run(self) -> ExitCode {
        let code = match self.cmd.run() {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                harness::exit_code(&e)
            }
        };
        ExitCode::from(u8::try_from(code).unwrap_or(1))
    }
}

impl Cmd {
    /// The subcommand's exit code when it did not fail: 0, or `compare`'s verdict.
    fn run(self) -> Result<i32> {
        match self {
            Cmd::Compare(a) => return a.run(),
            Cmd::Peak(a) => a.run(),
            Cmd::Gemm(a) => a.run(),
            Cmd::Models(a) => a.run(),
            Cmd::Tune(a) => a.run(),
            Cmd::Inspect(a) => a.run(),
            Cmd::Infer(a) => a.run(),
            Cmd::Run(a) => a.run(),
            Cmd::Restore(a) => a.run(),
            Cmd::Sensors(a) => a.run(),
            Cmd::AttachPower(a) => a.run(),
            Cmd::Merge(a) => a.run(),
            Cmd::Plot(a) => a.run(),
            Cmd::Report(a) => a.run(),
        }?;
        Ok(0)
    }
}

/// `--format`: a human table, or one JSON object for scripts.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// Prints `value` as JSON or as the table `table` draws.
pub fn emit<T: serde::Serialize>(
    format: Format,
    value: &T,
    table: impl FnOnce() -> String,
) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string(value)?),
        Format::Table => print!("{}", table()),
    }
    Ok(())
}

/// Cache blocking and parallel-loop overrides shared by `gemm` and `infer`.
#[derive(clap::Args)]
pub struct Blocking {
    #[arg(long)]
    pub mc: Option<usize>,
    #[arg(long)]
    pub nc: Option<usize>,
    #[arg(long)]
    pub kc: Option<usize>,
    /// Loop spread over threads: jc, ic, jr or auto.
    #[arg(long = "loop", value_enum, ignore_case = true, default_value_t = ParallelLoop::Auto)]
    pub parallel: ParallelLoop,
}

/// A `--sysfs-root` or `/`.
pub fn root_or_slash(root: Option<std::path::PathBuf>) -> std::path::PathBuf {
    root.unwrap_or_else(|| std::path::PathBuf::from("/"))
}
