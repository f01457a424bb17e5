//! Command line: parses arguments and dispatches to the library.

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use joulebench::engine::conv::ConvChoice;
use joulebench::engine::gemm::ParallelLoop;
use joulebench::harness::compare::{self, CompareOptions};
use joulebench::harness::plot::{self, PlotOptions};
use joulebench::harness::runner::{self, RunOptions, Shard};
use joulebench::harness::suite::Suite;
use joulebench::harness::{
    self, attach, gemm_cmd, infer_cmd, inspect_cmd, models_cmd, records, report, tune_cmd,
};
use joulebench::power::external::{MeterFormat, TimeFormat, PRESETS};
use joulebench::power::{sensors, Sysfs};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "joulebench",
    version,
    about = "Throughput and energy of CNN inference on CPUs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Measured FMA peak, GFLOP/s per core and for all threads.
    Peak {
        #[arg(long, default_value_t = default_threads())]
        threads: usize,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Time C = A*B (row-major f32) and report GFLOP/s and fraction of peak.
    Gemm {
        #[arg(long)]
        m: usize,
        #[arg(long)]
        n: usize,
        #[arg(long)]
        k: usize,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[command(flatten)]
        blocking: Blocking,
        /// Minimum measuring time in seconds (at least 3 runs are timed).
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Do not measure the FMA peak.
        #[arg(long)]
        no_peak: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The built-in model zoo with parameters and GFLOP per image.
    Models {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Best-of algorithm per convolution layer, written as a tuning file.
    Tune {
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
    },
    /// An ONNX model's operators, shapes and GFLOP, and what is unsupported.
    Inspect {
        /// The .onnx file.
        model: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Time a model's inference: images/s, latency percentiles, GFLOP/s.
    Infer {
        /// Built-in model name (see `joulebench models`) or an ONNX file.
        #[arg(long)]
        model: String,
        /// Images per batch [default: 1, or the batch of --input].
        #[arg(long)]
        batch: Option<usize>,
        /// Input tensor: NCHW float32 .npy (random data when absent).
        #[arg(long, value_name = "X.npy")]
        input: Option<PathBuf>,
        /// Write the output of one inference on the input as .npy.
        #[arg(long, value_name = "Y.npy")]
        output: Option<PathBuf>,
        /// Per-layer algorithms and blockings from `joulebench tune` (--conv-layer wins; --mc/--nc/--kc apply to every layer)
        #[arg(long, value_name = "FILE")]
        tuning: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Minimum measuring time in seconds.
        #[arg(long, default_value_t = 5.0, conflicts_with = "iterations")]
        seconds: f64,
        /// Exact number of timed batches.
        #[arg(long)]
        iterations: Option<usize>,
        /// Untimed batches first.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Convolution lowering: auto, convgemm, im2col, winograd (F(2x2,3x3))
        /// or winograd4 (F(4x4,3x3)); Winograd applies to 3x3 stride-1 layers.
        #[arg(long, default_value = "auto")]
        conv: ConvChoice,
        /// Per-layer algorithm, NAME=ALGO (convgemm, im2col, pointwise,
        /// depthwise, winograd, winograd4); repeatable, overrides --conv for
        /// that layer.
        #[arg(long = "conv-layer", value_name = "NAME=ALGO")]
        conv_layer: Vec<String>,
        /// Run BatchNorm, Add and ReLU as separate layers.
        #[arg(long)]
        no_fusion: bool,
        #[command(flatten)]
        blocking: Blocking,
        /// Per-layer time table.
        #[arg(long)]
        profile: bool,
        /// Do not measure the FMA peak.
        #[arg(long)]
        no_peak: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Run an experiment suite (TOML) and record results.csv, samples.csv
    /// and manifest.json under results/<suite>/<UTC timestamp>/.
    Run {
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
    },
    /// Put back the power state (cpufreq, nvpmodel, jetson_clocks) a run with
    /// power modes saved in its directory, after a crash or kill.
    Restore {
        /// The run directory (results/<suite>/<timestamp>).
        run_dir: PathBuf,
        /// Root for sysfs writes (default: the root the run used).
        #[arg(long, value_name = "DIR")]
        sysfs_root: Option<PathBuf>,
    },
    /// Power sources found here: rails, a live reading, the total each would
    /// use, why the others are absent; and which perf counters work.
    Sensors {
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
    },
    /// Fill the energy columns of a recorded run from a power meter's log,
    /// by the measured windows the run recorded.
    AttachPower {
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
    },
    /// Join results.csv files of one suite (shards) into one file.
    Merge {
        /// results.csv files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The merged file (must not exist yet).
        #[arg(long)]
        out: PathBuf,
    },
    /// Draw the figures of a run (results.csv or its directory).
    Plot {
        /// results.csv, or a run directory (results/<suite>/<timestamp>).
        input: PathBuf,
        /// Figure directory (default: figures/ in the run directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Image formats, comma-separated: png, svg.
        #[arg(long, default_value = "png")]
        format: String,
    },
    /// Write report.md and report.html (machine, suite, tables, figures)
    /// into a run directory.
    Report {
        /// A run directory (or its results.csv).
        dir: PathBuf,
    },
    /// Compare a run against a baseline; exit 3 on a regression.
    Compare {
        /// Baseline results.csv or run directory.
        baseline: PathBuf,
        /// Current results.csv or run directory.
        current: PathBuf,
        /// The metric compared (images_per_s, gflops, latency_ms_p50, ...).
        #[arg(long, default_value = "images_per_s")]
        metric: String,
        /// Changes within this are not regressions: 5% (or 5).
        #[arg(long, default_value = "5%")]
        tolerance: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// Cache blocking and parallel-loop overrides shared by `gemm` and `infer`.
#[derive(clap::Args)]
struct Blocking {
    #[arg(long)]
    mc: Option<usize>,
    #[arg(long)]
    nc: Option<usize>,
    #[arg(long)]
    kc: Option<usize>,
    /// Loop spread over threads: jc, ic, jr or auto.
    #[arg(long = "loop", default_value = "auto")]
    parallel: ParallelLoop,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn emit<T: serde::Serialize>(
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

fn dispatch(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Peak { threads, format } => {
            let p = gemm_cmd::run_peak(threads)?;
            emit(format, &p, || gemm_cmd::format_peak(&p))
        }
        Cmd::Gemm {
            m,
            n,
            k,
            threads,
            blocking:
                Blocking {
                    mc,
                    nc,
                    kc,
                    parallel,
                },
            seconds,
            no_peak,
            format,
        } => {
            let spec = gemm_cmd::GemmSpec {
                m,
                n,
                k,
                threads,
                mc,
                nc,
                kc,
                parallel,
                seconds,
                skip_peak: no_peak,
            };
            let r = gemm_cmd::run_gemm(&spec)?;
            emit(format, &r, || r.to_string())
        }
        Cmd::Models { format } => {
            let list = models_cmd::list()?;
            emit(format, &list, || models_cmd::table(&list))
        }
        Cmd::Tune {
            model,
            threads,
            batch,
            rounds,
            iterations,
            out,
            format,
        } => {
            let spec = tune_cmd::TuneSpec {
                model,
                threads,
                batch,
                rounds,
                iterations,
            };
            let t = tune_cmd::tune(&spec)?;
            let out = out.unwrap_or_else(|| tune_cmd::default_file(&t));
            t.save(&out)?;
            emit(format, &t, || format!("{t}\nwrote {}\n", out.display()))
        }
        Cmd::Inspect { model, format } => {
            let r = inspect_cmd::inspect(&model)?;
            emit(format, &r, || r.to_string())
        }
        Cmd::Infer {
            model,
            batch,
            input,
            output,
            tuning,
            threads,
            seconds,
            iterations,
            warmup,
            conv,
            conv_layer,
            no_fusion,
            blocking:
                Blocking {
                    mc,
                    nc,
                    kc,
                    parallel,
                },
            profile,
            no_peak,
            format,
        } => {
            let spec = infer_cmd::InferSpec {
                model,
                batch,
                input,
                output,
                tuning,
                threads,
                seconds,
                iterations,
                warmup,
                conv,
                conv_layers: infer_cmd::parse_conv_layers(&conv_layer)?,
                layer_cache: Default::default(),
                fusion: !no_fusion,
                mc,
                nc,
                kc,
                parallel,
                profile,
                skip_peak: no_peak,
            };
            let r = infer_cmd::run_infer(&spec)?;
            emit(format, &r, || r.to_string())
        }
        Cmd::Run {
            suite,
            out,
            resume,
            shard,
            dry_run,
            sysfs_root,
            quiet,
            no_plot,
        } => run_cmd(
            suite, out, resume, shard, dry_run, quiet, sysfs_root, no_plot,
        ),
        Cmd::Restore {
            run_dir,
            sysfs_root,
        } => {
            let done = harness::modes::restore_run(&run_dir, sysfs_root)?;
            if done.is_empty() {
                println!(
                    "the power state saved in {} was already in place",
                    run_dir.display()
                );
            } else {
                println!("restored the power state saved in {}:", run_dir.display());
                for d in done {
                    println!("  {d}");
                }
            }
            Ok(())
        }
        Cmd::Sensors {
            sysfs_root,
            vcgencmd,
            seconds,
            format,
        } => {
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 60.0) {
                return Err(harness::HarnessError::Usage {
                    name: "seconds",
                    reason: format!("{seconds} is not between 0 and 60"),
                }
                .into());
            }
            let root = sysfs_root.unwrap_or_else(|| PathBuf::from("/"));
            let report = sensors::discover(&Sysfs::new(root), &vcgencmd, seconds);
            emit(format, &report, || report.table())
        }
        Cmd::AttachPower {
            results_dir,
            meter_log,
            preset,
            clock_offset,
            delimiter,
            no_header,
            time_column,
            time_format,
            watts_column,
            volts_column,
            amps_column,
            amps_scale,
            min_samples,
        } => {
            let usage = |name: &'static str, reason: String| -> anyhow::Error {
                harness::HarnessError::Usage { name, reason }.into()
            };
            let mut f = match &preset {
                Some(p) => MeterFormat::preset(p).ok_or_else(|| {
                    usage(
                        "preset",
                        format!("`{p}` is not known; use {}", PRESETS.join(", ")),
                    )
                })?,
                None => attach::recorded_format(&results_dir).unwrap_or_default(),
            };
            if let Some(x) = clock_offset {
                f.clock_offset_s = x;
            }
            if let Some(d) = delimiter {
                f.delimiter = d;
            }
            if no_header {
                f.header = false;
            }
            if let Some(c) = time_column {
                f.time_column = attach::column_arg(&c);
            }
            if let Some(t) = time_format {
                f.time_format = TimeFormat::parse(&t).ok_or_else(|| {
                    usage("time-format", format!("`{t}` is not unix, unix_ms, iso, elapsed, elapsed_ms or a strftime pattern"))
                })?;
            }
            if volts_column.is_some() || amps_column.is_some() {
                f.watts_column = None;
            }
            if let Some(c) = watts_column {
                f.watts_column = Some(attach::column_arg(&c));
            }
            if let Some(c) = volts_column {
                f.volts_column = Some(attach::column_arg(&c));
            }
            if let Some(c) = amps_column {
                f.amps_column = Some(attach::column_arg(&c));
            }
            if let Some(x) = amps_scale {
                f.amps_scale = x;
            }
            f.validate().map_err(|e| usage("meter format", e))?;
            let o = attach::attach_power(&results_dir, &meter_log, f, min_samples)?;
            println!(
                "attached {} of {} row(s) in {} from {}{}",
                o.attached,
                o.rows,
                results_dir.display(),
                meter_log.display(),
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
        Cmd::Merge { inputs, out } => {
            let n = records::merge(&inputs, &out)?;
            println!(
                "merged {n} row(s) from {} file(s) into {}",
                inputs.len(),
                out.display()
            );
            Ok(())
        }
        Cmd::Plot { input, out, format } => {
            let formats = plot::parse_formats(&format)?;
            let summary = plot::plot(&input, &PlotOptions { out, formats })?;
            print!("{summary}");
            Ok(())
        }
        Cmd::Report { dir } => {
            let r = report::report(&dir)?;
            print!("{}", r.plot);
            println!("wrote {} and {}", r.markdown.display(), r.html.display());
            Ok(())
        }
        Cmd::Compare {
            baseline,
            current,
            metric,
            tolerance,
            format,
        } => {
            let opts = CompareOptions {
                metric,
                tolerance: compare::parse_tolerance(&tolerance)?,
            };
            let c = compare::compare(&baseline, &current, &opts)?;
            emit(format, &c, || compare::table(&c))?;
            if c.exit_code != 0 {
                std::process::exit(c.exit_code);
            }
            Ok(())
        }
    }
}

fn run_cmd(
    suite: PathBuf,
    out: PathBuf,
    resume: Option<PathBuf>,
    shard: Option<String>,
    dry_run: bool,
    quiet: bool,
    sysfs_root: Option<PathBuf>,
    no_plot: bool,
) -> Result<()> {
    let shard = shard.map(|s| s.parse::<Shard>()).transpose()?;
    let suite = Suite::load(&suite)?;
    if dry_run {
        let sysfs = Sysfs::new(sysfs_root.unwrap_or_else(|| PathBuf::from("/")));
        print!("{}", runner::dry_run_on(&suite, shard, &sysfs));
        return Ok(());
    }
    runner::install_ctrlc_handler()?;
    let outcome = runner::run_suite(
        &suite,
        &RunOptions {
            out_root: out,
            resume,
            shard,
            quiet,
            sysfs_root,
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
    if !no_plot {
        // The CSVs are on disk already: a figure that fails costs nothing else.
        let opts = PlotOptions::default();
        match plot::plot(&outcome.dir, &opts) {
            Ok(s) if quiet => {
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

fn main() {
    let cli = Cli::parse();
    if let Err(e) = dispatch(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(harness::exit_code(&e));
    }
}
