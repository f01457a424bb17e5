//! `joulebench run`: measures every point of a suite and records it.

use crate::engine::conv::ConvChoice;
use crate::engine::gemm::{CacheConfig, Kernel, ParallelLoop};
use crate::engine::session::{Session, SessionOptions};
use crate::engine::EngineError;
use crate::harness::analyze::stats::{slow_start, summarize, Summary};
use crate::harness::gemm_cmd::fill_uniform;
use crate::harness::machine;
use crate::harness::model_source::{self, LoadedModel};
use crate::harness::modes::{self, Conditions, ModeControl, Monitor, Watching, NONE};
use crate::harness::peers::command;
use crate::harness::peers::model_file;
use crate::harness::peers::process::{self, Limits, WindowHooks};
use crate::harness::peers::python;
use crate::harness::peers::tract_engine::{self, TractModel};
use crate::harness::peers::{Engine, PeerFailure, ToolSummary};
use crate::harness::record::io::{self as csvio, Appender};
use crate::harness::record::manifest::{
    Blocking, Clock, Idle, Manifest, PointBlocking, PowerEntry, PowerModes,
};
use crate::harness::record::merge::short;
use crate::harness::record::rows::{self, PowerRow, ProfileRow, ResultRow, SampleRow};
use crate::harness::suite::tuning::{TuningCache, TuningChoice};
use crate::harness::suite::{estimate_seconds, CacheSpec, Measurement, Point, Suite};
use crate::harness::HarnessError;
use crate::power::counters::{CounterValues, Counters};
use crate::power::{
    self, PowerConfig, PowerError, PowerSource, RunClock, SourceKind, Sysfs, Window,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Runs `sess` on `input` batch after batch, timing each on the monotonic
/// clock, until `done(batches, elapsed_s)` says so (checked after each batch).
/// Returns the per-batch latencies in seconds and the wall time.
pub fn time_batches(
    sess: &mut Session,
    input: &[f32],
    done: impl FnMut(usize, f64) -> bool,
) -> Result<(Vec<f64>, f64), EngineError> {
    time_runs(|| sess.run(input).map(|_| ()), done)
}

/// [`time_batches`] for any engine: `run` runs one batch.
pub fn time_runs<E>(
    mut run: impl FnMut() -> Result<(), E>,
    mut done: impl FnMut(usize, f64) -> bool,
) -> Result<(Vec<f64>, f64), E> {
    let mut lat = Vec::new();
    let start = Instant::now();
    loop {
        let t = Instant::now();
        run()?;
        lat.push(t.elapsed().as_secs_f64());
        if done(lat.len(), start.elapsed().as_secs_f64()) {
            break;
        }
    }
    Ok((lat, start.elapsed().as_secs_f64()))
}

/// `--shard i/n`: the points whose index is `i - 1` modulo `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = HarnessError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || HarnessError::Usage {
            name: "shard",
            reason: format!("`{s}` is not i/n with 1 <= i <= n (for example --shard 2/4)"),
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    pub fn select(&self, points: Vec<Point>) -> Vec<Point> {
        points
            .into_iter()
            .filter(|p| p.index % self.count == self.index - 1)
            .collect()
    }
}

/// How `joulebench run` was asked to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Results root: records go to `<out_root>/<suite>/<UTC timestamp>/`.
    pub out_root: PathBuf,
    /// Continue the run recorded in this directory.
    pub resume: Option<PathBuf>,
    pub shard: Option<Shard>,
    pub quiet: bool,
    /// Root for sysfs reads (power sources); `None` for `/`.
    pub sysfs_root: Option<PathBuf>,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub recorded: usize,
    pub skipped: usize,
    pub warnings: usize,
}

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
static STOP: AtomicBool = AtomicBool::new(false);
/// The run directory whose saved power state a second Ctrl-C restores.
static RESTORE_ON_EXIT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Ctrl-C once: the point in progress is dropped and the run stops with its
/// finished rows on disk. Twice: exit at once (every finished row is already
/// flushed).
pub fn install_ctrlc_handler() -> Result<(), HarnessError> {
    ctrlc::set_handler(|| {
        STOP.store(true, Ordering::SeqCst);
        if INTERRUPTS.fetch_add(1, Ordering::SeqCst) >= 1 {
            if let Some(dir) = RESTORE_ON_EXIT.lock().ok().and_then(|g| g.clone()) {
                if let Err(e) = modes::restore_run(&dir, None) {
                    eprintln!(
                        "error: could not restore the power state: {e}; run `joulebench restore {}`",
                        dir.display()
                    );
                }
            }
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: dropping the point in progress (Ctrl-C again to quit at once)");
    })
    .map_err(|e| HarnessError::Io {
        path: PathBuf::from("<signal handler>"),
        reason: e.to_string(),
    })
}

fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Rough GFLOP/s per thread by kernel, for time estimates only.
fn nominal_gflops_per_thread() -> f64 {
    match Kernel::from_env().map(|k| k.name()) {
        Ok("avx2") => 40.0,
        Ok("avx512") => 80.0,
        Ok("neon") => 12.0,
        _ => 3.0,
    }
}

/// The points this invocation runs: the expansion, sharded, ordered so the
/// power mode changes least.
pub fn selected_points(suite: &Suite, shard: Option<Shard>) -> Vec<Point> {
    let pts = suite.points();
    let pts = match shard {
        Some(s) => s.select(pts),
        None => pts,
    };
    modes::order_by_mode(pts, |p| &p.power_mode)
}

/// The power modes of `points` in run order, each once.
fn mode_order(points: &[&Point]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for p in points {
        if v.last() != Some(&p.power_mode) {
            v.push(p.power_mode.clone());
        }
    }
    v
}

/// `--dry-run`: the expanded points and an estimated total time.
pub fn dry_run(suite: &Suite, shard: Option<Shard>) -> String {
    dry_run_on(suite, shard, &Sysfs::system())
}

/// `--dry-run` with the machine's state read below `sysfs`: the points, the
/// power mode changes and an estimated total time.
pub fn dry_run_on(suite: &Suite, shard: Option<Shard>, sysfs: &Sysfs) -> String {
    let pts = selected_points(suite, shard);
    let mut s = format!(
        "suite {} ({}), {} point(s){}\n",
        suite.name,
        &suite.hash[..12],
        pts.len(),
        shard.map_or(String::new(), |sh| format!(
            " in shard {}/{} of {}",
            sh.index,
            sh.count,
            suite.points().len()
        ))
    );
    for p in &pts {
        s.push_str(&format!("{:>5}  {}\n", p.index, p.id));
    }
    let order = mode_order(&pts.iter().collect::<Vec<_>>());
    let changes = modes::describe_changes(sysfs, &suite.modes, &order);
    if !changes.is_empty() {
        s.push_str("power mode changes, in run order:\n");
        for c in changes {
            s.push_str(&c);
            s.push('\n');
        }
        if let Err(e) = modes::check(sysfs, &suite.modes, &order) {
            s.push_str(&format!("the run would stop before its first point: {e}\n"));
        }
    }
    let mut est = estimate_seconds(suite, &pts, nominal_gflops_per_thread());
    est += order.iter().filter(|m| *m != NONE).count() as f64 * suite.modes.settle_seconds;
    s.push_str(&format!(
        "estimated total: {} (rough: warm-up, measuring and cool-down at a nominal speed)\n",
        human_duration(est)
    ));
    s
}

fn human_duration(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Progress output: bars on a terminal, one line per point otherwise,
/// nothing but warnings with `--quiet`.
enum Progress {
    Bars {
        _multi: MultiProgress,
        overall: ProgressBar,
        point: ProgressBar,
    },
    Lines,
    Quiet,
}

impl Progress {
    fn new(quiet: bool, total: usize) -> Progress {
        if quiet {
            return Progress::Quiet;
        }
        if !std::io::stdout().is_terminal() {
            return Progress::Lines;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "points {bar:30.cyan/blue} {pos}/{len} elapsed {elapsed} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let point = multi.add(ProgressBar::new(1000));
        point.set_style(
            ProgressStyle::with_template("{msg:50} {bar:20.green} {percent:>3}% ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress::Bars {
            _multi: multi,
            overall,
            point,
        }
    }

    fn start_point(&self, label: &str) {
        if let Progress::Bars { point, .. } = self {
            point.reset();
            point.set_message(label.to_string());
        }
    }

    /// Fraction of the current point's measurement done.
    fn measure(&self, frac: f64) {
        if let Progress::Bars { point, .. } = self {
            point.set_position((frac.clamp(0.0, 1.0) * 1000.0) as u64);
        }
    }

    fn finish_point(&self, line: &str) {
        match self {
            Progress::Bars { overall, .. } => overall.inc(1),
            Progress::Lines => println!("{line}"),
            Progress::Quiet => {}
        }
    }

    /// Something the run does besides measuring (tuning), on its own line.
    fn note(&self, msg: &str) {
        match self {
            Progress::Bars { point, .. } => point.set_message(msg.to_string()),
            Progress::Lines => println!("{msg}"),
            Progress::Quiet => {}
        }
    }

    fn warn(&self, msg: &str) {
        match self {
            Progress::Bars { overall, .. } => overall.suspend(|| eprintln!("warning: {msg}")),
            _ => eprintln!("warning: {msg}"),
        }
    }

    fn done(&self) {
        if let Progress::Bars { overall, point, .. } = self {
            point.finish_and_clear();
            overall.finish();
        }
    }
}

/// The options that need a new session when they change (batch does not).
#[derive(Clone, Debug, PartialEq)]
struct SessionKey {
    model: String,
    threads: usize,
    cache: CacheSpec,
    parallel: ParallelLoop,
    conv: ConvChoice,
    fusion: bool,
    cpus: Option<Vec<usize>>,
    /// The tuning file of the per-layer overrides, if any.
    tuning: Option<PathBuf>,
}

/// The results directory for a fresh run.
fn new_run_dir(root: &Path, suite: &Suite, shard: Option<Shard>) -> Result<PathBuf, HarnessError> {
    let ts = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let suffix = shard.map_or(String::new(), |s| format!("-shard{}of{}", s.index, s.count));
    let base = root.join(&suite.name);
    let mut dir = base.join(format!("{ts}{suffix}"));
    let mut k = 2;
    while dir.exists() {
        dir = base.join(format!("{ts}{suffix}-{k}"));
        k += 1;
    }
    std::fs::create_dir_all(&dir).map_err(|e| HarnessError::Io {
        path: dir.clone(),
        reason: e.to_string(),
    })?;
    Ok(dir)
}

/// Drops from the per-batch file `path` (if any) the rows of points not in
/// `done`: a dropped point runs again and writes them anew.
fn keep_done<T: serde::Serialize + serde::de::DeserializeOwned>(
    path: &Path,
    done: &HashSet<String>,
    point: impl Fn(&T) -> &String,
) -> Result<(), HarnessError> {
    if !path.exists() {
        return Ok(());
    }
    let (rows, _) = csvio::read_rows_lenient::<T>(path)?;
    let keep: Vec<T> = rows
        .into_iter()
        .filter(|r| done.contains(point(r)))
        .collect();
    csvio::rewrite(path, &keep)
}

/// Reads what a previous run in `dir` recorded; repairs a torn last row and
/// drops samples of points that have no results row. Returns the recorded
/// point ids.
fn prepare_resume(
    dir: &Path,
    suite: &Suite,
    shard: Option<Shard>,
) -> Result<HashSet<String>, HarnessError> {
    let bad = |reason: String| HarnessError::Usage {
        name: "resume",
        reason,
    };
    if !dir.is_dir() {
        return Err(bad(format!(
            "{} is not a directory; give the run directory (results/<suite>/<timestamp>)",
            dir.display()
        )));
    }
    if let Ok(m) = Manifest::read(&dir.join("manifest.json")) {
        let h = &m.suite_hash;
        if !h.is_empty() && *h != suite.hash {
            return Err(bad(format!(
                "{} was recorded from a different suite file (hash {} here, {} there); resume with the same file or start a new run",
                dir.display(),
                &suite.hash[..12],
                short(h)
            )));
        }
        let now = shard.map(|s| format!("{}/{}", s.index, s.count));
        if m.shard != now {
            return Err(bad(format!(
                "{} was run with --shard {}; resume it with the same shard (now: {})",
                dir.display(),
                m.shard.as_deref().unwrap_or("(none)"),
                now.as_deref().unwrap_or("(none)")
            )));
        }
    }
    let results = dir.join("results.csv");
    let mut done = HashSet::new();
    if results.exists() {
        let (rows, torn) = csvio::read_rows_lenient::<ResultRow>(&results)?;
        // Points of a peer engine that was skipped or failed run again.
        let total = rows.len();
        let rows: Vec<ResultRow> = rows.into_iter().filter(|r| r.status == "ok").collect();
        let retried = rows.len() != total;
        for r in &rows {
            if r.suite_hash != suite.hash {
                return Err(bad(format!(
                    "{} holds point `{}` of another suite version (hash {}); resume with the same suite file",
                    results.display(),
                    r.point,
                    short(&r.suite_hash)
                )));
            }
            done.insert(r.point.clone());
        }
        if torn.is_some() || retried || !rows::has_current_header(&results) {
            csvio::rewrite(&results, &rows)?;
        }
    }
    keep_done::<SampleRow>(&dir.join("samples.csv"), &done, |r| &r.point)?;
    keep_done::<PowerRow>(&dir.join("power.csv"), &done, |r| &r.point)?;
    keep_done::<ProfileRow>(&dir.join("profile.csv"), &done, |r| &r.point)?;
    Ok(done)
}

#[cfg(target_os = "linux")]
mod affinity {
    use super::HarnessError;
    use nix::errno::Errno;
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    use std::path::PathBuf;

    /// The affinity the process started with.
    pub fn current() -> Option<CpuSet> {
        sched_getaffinity(Pid::from_raw(0)).ok()
    }

    /// Pins every thread of the process (the engine keeps its worker pools
    /// between sessions) and the threads started later to `cpus`, or
    /// restores `original`.
    pub fn set(cpus: Option<&[usize]>, original: Option<&CpuSet>) -> Result<(), HarnessError> {
        let failed = |err: Errno| HarnessError::Io {
            path: PathBuf::from("<sched_setaffinity>"),
            reason: format!("could not pin to cpus {cpus:?}: {err}"),
        };
        let set = match (cpus, original) {
            (Some(list), _) => {
                let mut s = CpuSet::new();
                for &c in list {
                    s.set(c).map_err(failed)?;
                }
                s
            }
            (None, Some(o)) => *o,
            (None, None) => return Ok(()),
        };
        let mut tids: Vec<i32> = std::fs::read_dir("/proc/self/task")
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        tids.push(0); // the calling thread, also when /proc is not mounted
        for tid in tids {
            match sched_setaffinity(Pid::from_raw(tid), &set) {
                // A thread that exited meanwhile.
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => return Err(failed(e)),
            }
        }
        Ok(())
    }
}

/// FNV-1a of a point id: the bootstrap seed, so intervals are reproducible.
fn seed_of(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn sleep_interruptible(secs: f64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while !stopping() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

/// What one measured window produced.
struct Measured {
    lat: Vec<f64>,
    duration: f64,
    /// The window on the run's clock.
    start_s: f64,
    end_s: f64,
    power: Option<Window>,
    counters: Option<CounterValues>,
    conditions: Conditions,
}

/// Warms up and measures one point, with the power source and counters
/// running exactly around the timed batches; `None` when interrupted.
#[allow(clippy::too_many_arguments)]
fn measure<E>(
    mut run: impl FnMut() -> Result<(), E>,
    m: &Measurement,
    progress: &Progress,
    clock: &RunClock,
    mut source: Option<&mut Box<dyn PowerSource>>,
    mut counters: Option<&mut Counters>,
    monitor: &Monitor,
    ctx: &str,
    engine_err: impl Fn(E) -> HarnessError,
) -> Result<Option<Measured>, HarnessError> {
    let power_err = |source| HarnessError::Power {
        context: ctx.to_string(),
        source,
    };
    let w0 = Instant::now();
    let mut i = 0;
    while i < m.warmup_iterations || w0.elapsed().as_secs_f64() < m.warmup_seconds {
        if stopping() {
            return Ok(None);
        }
        run().map_err(&engine_err)?;
        i += 1;
    }
    let watching = monitor.begin(m.cpus.as_deref());
    if let Some(c) = counters.as_deref_mut() {
        c.start();
    }
    if let Some(p) = source.as_deref_mut() {
        p.start(clock).map_err(power_err)?;
    }
    let start_s = clock.now_s();
    let max = m.max_seconds;
    let timed = time_runs(&mut run, |n, el| {
        let frac = (n as f64 / m.min_batches as f64).min(if m.min_seconds > 0.0 {
            el / m.min_seconds
        } else {
            1.0
        });
        let frac = max.map_or(frac, |mx| frac.max(el / mx.max(1e-9)));
        progress.measure(frac);
        stopping() || (n >= m.min_batches && el >= m.min_seconds) || max.is_some_and(|mx| el >= mx)
    });
    let end_s = clock.now_s();
    // Stop the source whatever happened, so its thread ends here.
    let window = source.map(|p| p.stop(clock));
    let counted = counters.map(|c| c.stop());
    let conditions = monitor.end(watching);
    let (lat, duration) = timed.map_err(&engine_err)?;
    let window = window.transpose().map_err(power_err)?;
    if stopping() {
        return Ok(None);
    }
    Ok(Some(Measured {
        lat,
        duration,
        start_s: window.as_ref().map_or(start_s, |w| w.start_s),
        end_s: window.as_ref().map_or(end_s, |w| w.end_s),
        power: window,
        counters: counted,
        conditions,
    }))
}

/// A power source of the suite with its idle power.
struct PowerState {
    config: PowerConfig,
    source: Box<dyn PowerSource>,
    idle_w: Option<f64>,
}

/// Builds the source of every distinct power setting of `points` and
/// measures each one's idle power once (or takes it from the manifest of the
/// run being resumed). Returns `None` when interrupted.
fn prepare_power(
    suite: &Suite,
    points: &[&Point],
    sysfs: &Sysfs,
    clock: &RunClock,
    manifest: &mut Manifest,
    progress: &Progress,
) -> Result<Option<Vec<PowerState>>, HarnessError> {
    let mut configs: Vec<PowerConfig> = Vec::new();
    for p in points {
        let c = &suite.experiments[p.experiment_index].measurement.power;
        if c.source != SourceKind::None && !configs.contains(c) {
            configs.push(c.clone());
        }
    }
    let mut states = Vec::new();
    for config in configs {
        let ctx = format!("power source {}", config.source);
        let err = |source: PowerError| HarnessError::Power {
            context: ctx.clone(),
            source,
        };
        let Some(mut source) = config.build(sysfs).map_err(err)? else {
            continue;
        };
        let key = serde_json::to_value(&config).unwrap_or_default();
        let known = manifest.power_entry(&key).cloned();
        let idle_w = match known {
            Some(e) => e.idle.and_then(|i| i.watts),
            None => {
                let mut idle = None;
                let mut idle_w = source.known_idle_w();
                if idle_w.is_none() && config.idle_seconds > 0.0 {
                    progress.warn(&format!(
                        "measuring idle power ({}) for {} s",
                        config.source, config.idle_seconds
                    ));
                    source.start(clock).map_err(err)?;
                    sleep_interruptible(config.idle_seconds);
                    let w = source.stop(clock).map_err(err)?;
                    if stopping() {
                        return Ok(None);
                    }
                    idle_w = w.mean_w;
                    idle = Some(Idle {
                        watts: w.mean_w,
                        seconds: Some(w.duration_s()),
                        window_s: Some((w.start_s, w.end_s)),
                        samples: w.samples,
                        warnings: Some(w.warnings),
                        estimated: None,
                    });
                } else if let Some(w) = idle_w {
                    idle = Some(Idle {
                        watts: Some(w),
                        estimated: Some(true),
                        ..Idle::default()
                    });
                }
                manifest.power.push(PowerEntry {
                    config: key,
                    description: source.describe(),
                    idle,
                });
                idle_w
            }
        };
        states.push(PowerState {
            config,
            source,
            idle_w,
        });
    }
    Ok(Some(states))
}

/// Batches timed per layer for `profile = true`: at most this many, and no
/// more than the point measured.
pub const PROFILE_BATCHES: usize = 10;

/// Times up to [`PROFILE_BATCHES`] batches layer by layer (after the
/// measured batches, so the measurement carries no profiling overhead).
fn profile_point(
    sess: &mut Session,
    input: &[f32],
    point: &str,
    measured_batches: usize,
) -> Result<Vec<ProfileRow>, EngineError> {
    let n = measured_batches.clamp(1, PROFILE_BATCHES);
    sess.set_profiling(true);
    for _ in 0..n {
        sess.run(input)?;
    }
    let layers = sess.profile().unwrap_or_default();
    sess.set_profiling(false);
    let total: f64 = layers.iter().map(|(_, t)| t).sum();
    let batch = sess.batch() as f64;
    Ok(layers
        .into_iter()
        .enumerate()
        .map(|(i, (l, t))| ProfileRow {
            point: point.to_string(),
            layer_index: i,
            ms_per_batch: t / n as f64 * 1e3,
            share: if total > 0.0 { t / total } else { 0.0 },
            gflops: if t > 0.0 {
                l.gflop_per_image * batch * n as f64 / t
            } else {
                0.0
            },
            name: l.name,
            op: l.op,
            algorithm: l.algorithm,
            output: l.output,
            blocking: l.blocking,
        })
        .collect())
}

/// What a point's engine was, for its row.
struct EngineInfo {
    kernel: String,
    cache: (usize, usize, usize),
    gflop_per_image: f64,
    conv: String,
    parallel: String,
    fusion: bool,
    /// Latency figures of a tool that prints no per-batch times.
    summary: Option<ToolSummary>,
    warnings: Vec<String>,
    /// A peer's settings as it reported them (results.csv `peer_settings`).
    peer_settings: String,
}

impl EngineInfo {
    fn peer(kernel: String, model: Option<&LoadedModel>) -> EngineInfo {
        EngineInfo {
            kernel,
            cache: (0, 0, 0),
            gflop_per_image: model
                .and_then(|g| g.graph.flops_per_image().ok())
                .map_or(0.0, |f| f / 1e9),
            conv: String::new(),
            parallel: String::new(),
            fusion: false,
            summary: None,
            warnings: Vec::new(),
            peer_settings: String::new(),
        }
    }
}

/// Statistics from a tool's own summary: no per-batch samples, so the
/// percentiles and the interval are unknown (NaN) and the median is the
/// tool's median if it printed one, else its average.
fn summary_of_tool(t: &ToolSummary) -> Summary {
    Summary {
        n: t.count,
        total: t.count as f64 * t.mean,
        mean: t.mean,
        median: t.median.unwrap_or(t.mean),
        p90: f64::NAN,
        p99: f64::NAN,
        min: t.min,
        max: t.max,
        stdev: t.stdev,
        cv: if t.mean > 0.0 { t.stdev / t.mean } else { 0.0 },
        ci95_low: f64::NAN,
        ci95_high: f64::NAN,
        outliers: Vec::new(),
    }
}

fn cpus_label(cpus: &Option<Vec<usize>>) -> String {
    cpus.as_ref().map_or(String::new(), |c| {
        c.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The row of a point whose engine is unavailable or failed: no measurements,
/// `status` says which, `warnings` says why.
fn unmeasured_row(
    suite: &Suite,
    p: &Point,
    m: &Measurement,
    host: &str,
    fail: &PeerFailure,
) -> ResultRow {
    ResultRow {
        suite: suite.name.clone(),
        suite_hash: suite.hash.clone(),
        experiment: p.experiment.clone(),
        point: p.id.clone(),
        repetition: p.repetition,
        model: p.model.clone(),
        engine: p.engine.to_string(),
        threads: p.threads,
        batch: p.batch,
        cpus: cpus_label(&m.cpus),
        warnings: fail.reason().to_string(),
        host: host.to_string(),
        timestamp_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        power_source: m.power.source.name().into(),
        power_mode: p.power_mode.clone(),
        status: fail.status().into(),
        ..ResultRow::default()
    }
}

/// Starts and stops the power source and counters around a peer's program.
struct Hooks<'a> {
    source: Option<&'a mut Box<dyn PowerSource>>,
    counters: Option<&'a mut Counters>,
    clock: &'a RunClock,
    monitor: &'a Monitor,
    cpus: Option<&'a [usize]>,
    watching: Option<Watching>,
    start_s: f64,
    end_s: f64,
    window: Option<Window>,
    counted: Option<CounterValues>,
    conditions: Conditions,
}

impl WindowHooks for Hooks<'_> {
    fn start(&mut self, pid: u32) -> Result<(), String> {
        self.watching = Some(self.monitor.begin(self.cpus));
        if let Some(c) = self.counters.as_deref_mut() {
            c.start_process(pid);
        }
        if let Some(p) = self.source.as_deref_mut() {
            p.follow(Some(pid));
            p.start(self.clock)
                .map_err(|e| format!("power source: {e}"))?;
        }
        self.start_s = self.clock.now_s();
        Ok(())
    }

    fn stop(&mut self) -> Result<(), String> {
        self.end_s = self.clock.now_s();
        self.counted = self.counters.as_deref_mut().map(|c| c.stop());
        if let Some(w) = self.watching.take() {
            self.conditions = self.monitor.end(w);
        }
        self.window = self
            .source
            .as_deref_mut()
            .map(|p| {
                let w = p.stop(self.clock);
                p.follow(None);
                w
            })
            .transpose()
            .map_err(|e| format!("power source: {e}"))?;
        Ok(())
    }
}

/// One point of a peer engine.
struct PeerPoint<'a> {
    suite: &'a Suite,
    point: &'a Point,
    m: &'a Measurement,
    /// joulebench's reading of the model (input shape, work per image).
    model: Option<&'a LoadedModel>,
    progress: &'a Progress,
    clock: &'a RunClock,
    monitor: &'a Monitor,
    ctx: &'a str,
    /// Where converted peer models are cached: `<out>/<suite>/peer-models`.
    cache_root: &'a Path,
}

type PeerResult = Result<(Measured, EngineInfo), PeerFailure>;

impl PeerPoint<'_> {
    /// `None` when interrupted; `Some(Err)` for a point that could not be
    /// measured (recorded as skipped or failed, and the run goes on).
    fn run(
        &self,
        source: Option<&mut Box<dyn PowerSource>>,
        counters: Option<&mut Counters>,
    ) -> Result<Option<PeerResult>, HarnessError> {
        let r = match self.point.engine {
            Engine::Tract => self.tract(source, counters),
            _ => self.command(source, counters),
        };
        if stopping() {
            return Ok(None);
        }
        match r {
            Ok(x) => Ok(x.map(Ok)),
            Err(PeerOrHarness::Peer(f)) => Ok(Some(Err(f))),
            Err(PeerOrHarness::Harness(e)) => Err(e),
        }
    }

    fn image_chw(&self) -> Option<(usize, usize, usize)> {
        self.model.and_then(|g| g.input.nchw())
    }

    fn tract(
        &self,
        source: Option<&mut Box<dyn PowerSource>>,
        counters: Option<&mut Counters>,
    ) -> Result<Option<(Measured, EngineInfo)>, PeerOrHarness> {
        let p = self.point;
        if !tract_engine::AVAILABLE {
            // Say so before anything else (the model may be fine).
            TractModel::load(std::path::Path::new(""), &[], 1)?;
        }
        let spec = self.suite.model_spec(&p.model);
        let path = tract_engine::onnx_path(&spec, &p.model)?;
        let (c, h, w) = self.image_chw().ok_or_else(|| {
            PeerFailure::Failed(format!(
                "tract needs the model's [N, C, H, W] input shape, which joulebench could not read from {}",
                path.display()
            ))
        })?;
        let mut tm = TractModel::load(path, &[p.batch, c, h, w], p.threads)?;
        let mut x = vec![0.0; tm.input_len()];
        fill_uniform(&mut x, 42);
        tm.set_input(&x)?;
        let measured = measure(
            || tm.run_timed(),
            self.m,
            self.progress,
            self.clock,
            source,
            counters,
            self.monitor,
            self.ctx,
            |f: PeerFailure| HarnessError::PeerEngine(f.reason().to_string()),
        )
        .map_err(|e| match e {
            HarnessError::PeerEngine(r) => PeerOrHarness::Peer(PeerFailure::Failed(r)),
            e => PeerOrHarness::Harness(e),
        })?;
        let mut info = EngineInfo::peer(tract_engine::describe(p.threads), self.model);
        info.peer_settings = format!("threads={}; model={}", p.threads, path.display());
        Ok(measured.map(|m| (m, info)))
    }

    fn command(
        &self,
        source: Option<&mut Box<dyn PowerSource>>,
        counters: Option<&mut Counters>,
    ) -> Result<Option<(Measured, EngineInfo)>, PeerOrHarness> {
        let p = self.point;
        let m = self.m;
        let cfg = &self.suite.experiments[p.experiment_index].peers;
        let base = cfg.peer_timeout_seconds();
        let measuring = m.warmup_seconds + m.max_seconds.unwrap_or(0.0).max(m.min_seconds);
        let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX);
        let run_limits = Limits::new(secs(base + measuring), stopping);
        let spec = self.suite.model_spec(&p.model);
        let python = cfg.python();
        let src = model_file::Source {
            spec: &spec,
            model: &p.model,
            chw: self.image_chw(),
            cache_root: self.cache_root,
            python: &python,
            limits: Limits::new(secs(4.0 * base), stopping),
        };
        let pm = model_file::model_for(p.engine, cfg, &src, &|msg| self.progress.note(msg))?;
        let mut settings = pm.settings;
        let driver = python::Driver::of(p.engine);
        let whole_run = "the power and counter window spans the whole program run (start-up, model loading and warm-up included), so energy per image is overstated";
        let (program, args, handshake, hint) = match (p.engine, driver) {
            (_, Some(d)) => (
                python.clone(),
                d.args(&pm.path, p.threads, p.batch, self.image_chw(), m),
                true,
                d.hint(),
            ),
            (Engine::Tflite, _) => (
                cfg.benchmark_model(),
                command::tflite_args(cfg, &pm.path, p.threads, p.batch, self.image_chw(), m)?,
                false,
                "build TFLite's benchmark_model (tensorflow/lite/tools/benchmark) and put it on PATH, or set benchmark_model = \"/path/to/benchmark_model\" in the suite".into(),
            ),
            _ => (
                cfg.execute_network(),
                command::armnn_args(cfg, &pm.path, p.threads, p.batch, self.image_chw(), m)?,
                false,
                "install ArmNN (its tests/ExecuteNetwork) and put ExecuteNetwork on PATH, or set execute_network = \"/path/to/ExecuteNetwork\" in the suite".into(),
            ),
        };
        self.progress.measure(0.0);
        let mut hooks = Hooks {
            source,
            counters,
            clock: self.clock,
            monitor: self.monitor,
            cpus: m.cpus.as_deref(),
            watching: None,
            start_s: 0.0,
            end_s: 0.0,
            window: None,
            counted: None,
            conditions: Conditions::default(),
        };
        let out = process::run_program(&program, &args, handshake, &hint, run_limits, &mut hooks)?;
        self.progress.measure(1.0);
        let mut info = EngineInfo::peer(String::new(), self.model);
        let exit_note = |out: &process::ProgramOutput| {
            (out.code != Some(0)).then(|| {
                format!(
                    "{program} exited with {}",
                    out.code
                        .map_or("a signal".to_string(), |c| format!("code {c}"))
                )
            })
        };
        let (lat, duration) = match (p.engine, driver) {
            (_, Some(d)) => {
                let r = python::parse_report(p.engine, &out)?;
                info.kernel = d.kernel(&r.version);
                settings.extend(r.settings);
                if r.runs_per_batch > 1 {
                    settings.push((
                        "runs_per_batch".into(),
                        format!(
                            "{} (no batch dimension: one run per image)",
                            r.runs_per_batch
                        ),
                    ));
                }
                (r.latencies_s, r.duration_s)
            }
            (Engine::Tflite, _) => {
                let text = format!("{}\n{}", out.stdout, out.stderr);
                let t = command::parse_benchmark_model(&text)
                    .map_err(|f| with_exit(f, exit_note(&out)))?;
                info.kernel = "tflite benchmark_model".into();
                info.warnings.push("benchmark_model prints no per-batch latencies: latency_ms_p50 is its median if printed, else its average; p90, p99 and ci95 are NaN".into());
                info.warnings.push(whole_run.into());
                settings.push(("flags".into(), args.join(" ")));
                let d = t.count as f64 * t.mean;
                info.summary = Some(t);
                (Vec::new(), d)
            }
            _ => {
                let text = format!("{}\n{}", out.stdout, out.stderr);
                let mut lat = command::parse_execute_network(&text)
                    .map_err(|f| with_exit(f, exit_note(&out)))?;
                if lat.len() > m.warmup_iterations {
                    lat.drain(..m.warmup_iterations);
                }
                info.kernel = format!("armnn ExecuteNetwork {}", cfg.armnn_backend());
                info.warnings.push(whole_run.into());
                settings.push(("flags".into(), args.join(" ")));
                let d = lat.iter().sum();
                (lat, d)
            }
        };
        if let Some(note) = exit_note(&out) {
            info.warnings.push(note);
        }
        info.peer_settings = python::settings_text(&settings);
        let measured = Measured {
            lat,
            duration,
            start_s: hooks.window.as_ref().map_or(hooks.start_s, |w| w.start_s),
            end_s: hooks.window.as_ref().map_or(hooks.end_s, |w| w.end_s),
            power: hooks.window,
            counters: hooks.counted,
            conditions: hooks.conditions,
        };
        Ok(Some((measured, info)))
    }
}

fn with_exit(f: PeerFailure, note: Option<String>) -> PeerFailure {
    match (f, note) {
        (PeerFailure::Failed(r), Some(n)) => PeerFailure::Failed(format!("{n}; {r}")),
        (f, _) => f,
    }
}

/// A peer point's own failure, or one that stops the run.
enum PeerOrHarness {
    Peer(PeerFailure),
    Harness(HarnessError),
}

impl From<PeerFailure> for PeerOrHarness {
    fn from(f: PeerFailure) -> Self {
        PeerOrHarness::Peer(f)
    }
}

/// Runs `suite` (or its shard), recording into a new directory or the one
/// being resumed.
pub fn run_suite(suite: &Suite, opts: &RunOptions) -> Result<RunOutcome, HarnessError> {
    let engine_err = |context: String| move |source| HarnessError::Engine { context, source };
    let kernel = Kernel::from_env().map_err(engine_err("choosing the micro-kernel".into()))?;
    let points = selected_points(suite, opts.shard);
    // Tuning files named in the suite must fit this machine's kernel before anything runs.
    let mut files = TuningCache::new(Path::new(""), kernel.name());
    for p in points.iter().filter(|p| p.engine.is_joulebench()) {
        let exp = &suite.experiments[p.experiment_index];
        if let TuningChoice::Files { .. } = exp.tuning {
            let spec = suite.model_spec(&p.model);
            files.get(
                &exp.tuning,
                &p.model,
                &spec,
                p.threads,
                p.batch,
                &p.power_mode,
                |_| {},
            )?;
        }
    }
    let sysfs = Sysfs::new(
        opts.sysfs_root
            .clone()
            .unwrap_or_else(|| PathBuf::from("/")),
    );
    // Power modes: permissions and commands before anything starts.
    let used_modes = mode_order(&points.iter().collect::<Vec<_>>());
    let with_modes = used_modes.iter().any(|m| m != NONE);
    if with_modes {
        modes::check(&sysfs, &suite.modes, &used_modes)?;
    }
    let (dir, done) = match &opts.resume {
        Some(d) => (d.clone(), prepare_resume(d, suite, opts.shard)?),
        None => (
            new_run_dir(&opts.out_root, suite, opts.shard)?,
            HashSet::new(),
        ),
    };
    let manifest_path = dir.join("manifest.json");
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut manifest = match Manifest::read(&manifest_path) {
        Ok(mut m) if opts.resume.is_some() => {
            m.resumed_utc.push(started.clone());
            m
        }
        _ => {
            let auto = CacheConfig::auto(kernel.mr, kernel.nr);
            Manifest {
                suite: suite.name.clone(),
                suite_file: suite.path.display().to_string(),
                suite_hash: suite.hash.clone(),
                suite_text: suite.text.clone(),
                joulebench_version: env!("CARGO_PKG_VERSION").into(),
                git_revision: machine::git_revision(),
                kernel: kernel.name().into(),
                auto_cache_config: Some(Blocking {
                    mc: auto.mc,
                    nc: auto.nc,
                    kc: auto.kc,
                }),
                caches: serde_json::to_value(crate::engine::gemm::CacheDetection::detect())
                    .unwrap_or_default(),
                shard: opts.shard.map(|s| format!("{}/{}", s.index, s.count)),
                points_total: Some(suite.points().len()),
                points_selected: Some(points.len()),
                started_utc: Some(started),
                machine: Some(machine::collect()),
                ..Manifest::default()
            }
        }
    };
    // One time line for the whole run directory, also across resumes.
    let clock = match manifest.run_start_unix_s() {
        Some(t) if opts.resume.is_some() => RunClock::resume(t),
        _ => {
            let c = RunClock::start();
            manifest.clock = Some(Clock {
                run_start_unix_s: c.run_start_unix_s(),
                note: "window_start_s, window_end_s (results.csv) and t_s (power.csv) are seconds since this instant (Unix time, UTC), advanced by the monotonic clock".into(),
            });
            c
        }
    };
    manifest.write(&manifest_path)?;

    let host = machine::host_name();
    let todo: Vec<&Point> = points.iter().filter(|p| !done.contains(&p.id)).collect();
    let skipped = points.len() - todo.len();
    let progress = Progress::new(opts.quiet, todo.len());
    if skipped > 0 && !opts.quiet {
        progress.warn(&format!(
            "resuming {}: {skipped} point(s) already recorded, {} to run",
            dir.display(),
            todo.len()
        ));
    }
    let (monitor, conditions) = Monitor::new(&sysfs, &suite.modes);
    manifest.conditions = conditions;
    // The state found at start is on disk before anything changes.
    let mut mode_control = match with_modes {
        true => {
            let c = ModeControl::start(&sysfs, &suite.modes, &used_modes, &dir)?;
            if let Ok(mut g) = RESTORE_ON_EXIT.lock() {
                *g = Some(dir.clone());
            }
            manifest.power_modes = Some(PowerModes {
                settings: serde_json::to_value(&suite.modes).unwrap_or_default(),
                saved_state: modes::STATE_FILE.into(),
                note: format!("the state found at start is restored after the last point, on Ctrl-C and on error; after a crash run `joulebench restore {}`", dir.display()),
            });
            Some(c)
        }
        false => None,
    };
    manifest.write(&manifest_path)?;
    let Some(mut power_states) =
        prepare_power(suite, &todo, &sysfs, &clock, &mut manifest, &progress)?
    else {
        manifest.write(&manifest_path)?;
        return Err(HarnessError::Interrupted(format!(
            "while measuring idle power; nothing was measured; continue with --resume {}",
            dir.display()
        )));
    };
    let mut counters = todo
        .iter()
        .any(|p| suite.experiments[p.experiment_index].measurement.counters)
        .then(Counters::probe);
    manifest.counters = match &counters {
        Some(c) => serde_json::to_value(c.status()).unwrap_or_default(),
        None => serde_json::json!({ "summary": "counters = false in the suite" }),
    };
    manifest.write(&manifest_path)?;
    let mut results = Appender::open(&dir.join("results.csv"))?;
    let mut samples = Appender::open(&dir.join("samples.csv"))?;
    let mut power_csv = match power_states.is_empty() {
        true => None,
        false => Some(Appender::open(&dir.join("power.csv"))?),
    };
    let mut profiles: Option<Appender> = None;
    #[cfg(target_os = "linux")]
    let original_affinity = affinity::current();

    let mut tunings = TuningCache::new(&dir, kernel.name());
    let peer_models = dir.parent().unwrap_or(&dir).join("peer-models");
    let mut graph: Option<(String, LoadedModel)> = None;
    let mut current: Option<(SessionKey, Session)> = None;
    let mut input: Vec<f32> = Vec::new();
    let mut recorded = 0;
    let mut warnings = 0;
    let total = todo.len();
    let run_start = Instant::now();
    for (k, p) in todo.into_iter().enumerate() {
        if stopping() {
            break;
        }
        let m = &suite.experiments[p.experiment_index].measurement;
        progress.start_point(&format!("[{}/{}] {}", k + 1, total, p.id));
        if m.cooldown_seconds > 0.0 {
            sleep_interruptible(m.cooldown_seconds);
        }
        let ctx = format!("point {}", p.id);
        if let Some(mc) = &mut mode_control {
            if mc.switch(&p.power_mode)? && suite.modes.settle_seconds > 0.0 {
                sleep_interruptible(suite.modes.settle_seconds);
            }
            if stopping() {
                break;
            }
        }
        let state = power_states.iter_mut().find(|s| s.config == m.power);
        let idle_w = state.as_ref().and_then(|s| s.idle_w);
        let source = state.map(|s| &mut s.source);
        let ctrs = counters.as_mut().filter(|_| m.counters);
        let (measured, info) = if p.engine.is_joulebench() {
            let exp = &suite.experiments[p.experiment_index];
            let tuned = match exp.tuning {
                TuningChoice::None => None,
                _ => {
                    // `auto` tunes under the point's pinning and power mode.
                    #[cfg(target_os = "linux")]
                    affinity::set(m.cpus.as_deref(), original_affinity.as_ref())?;
                    tunings.get(
                        &exp.tuning,
                        &p.model,
                        &suite.model_spec(&p.model),
                        p.threads,
                        p.batch,
                        &p.power_mode,
                        |msg| progress.note(msg),
                    )?
                }
            };
            if stopping() {
                break;
            }
            let key = SessionKey {
                model: p.model.clone(),
                threads: p.threads,
                cache: p.cache,
                parallel: p.parallel,
                conv: p.conv,
                fusion: p.fusion,
                cpus: m.cpus.clone(),
                tuning: tuned.as_ref().map(|t| t.file.clone()),
            };
            if current.as_ref().is_none_or(|(k, _)| *k != key) {
                drop(current.take()); // free the old session (and its threads) first
                #[cfg(target_os = "linux")]
                affinity::set(m.cpus.as_deref(), original_affinity.as_ref())?;
                if graph.as_ref().is_none_or(|(name, _)| *name != p.model) {
                    drop(graph.take());
                    let spec = suite.model_spec(&p.model);
                    let g = model_source::load(&spec).map_err(engine_err(ctx.clone()))?;
                    graph = Some((p.model.clone(), g));
                }
                let (mc, nc, kc) = p.cache.overrides();
                let sopts = SessionOptions {
                    batch: p.batch,
                    threads: p.threads,
                    mc,
                    nc,
                    kc,
                    parallel: p.parallel,
                    fusion: p.fusion,
                    conv: p.conv,
                    conv_overrides: tuned
                        .as_ref()
                        .map(|t| t.layers.conv.clone())
                        .unwrap_or_default(),
                    // A point's own mc/nc/kc apply to every layer.
                    layer_cache: match (&tuned, p.cache.overrides()) {
                        (Some(t), (None, None, None)) => t.layers.cache.clone(),
                        _ => HashMap::new(),
                    },
                    ..SessionOptions::default()
                };
                let g = &graph.as_ref().expect("graph built above").1;
                g.check_batch(p.batch).map_err(engine_err(ctx.clone()))?;
                let s = Session::new(&g.graph, &sopts).map_err(engine_err(ctx.clone()))?;
                current = Some((key, s));
            }
            let sess = &mut current.as_mut().expect("session built above").1;
            if sess.batch() != p.batch {
                sess.set_batch(p.batch).map_err(engine_err(ctx.clone()))?;
            }
            if input.len() != sess.input_len() {
                input = vec![0.0; sess.input_len()];
                fill_uniform(&mut input, 42);
            }
            let cache = sess.cache();
            let info = EngineInfo {
                kernel: sess.kernel().name().into(),
                cache: (cache.mc, cache.nc, cache.kc),
                gflop_per_image: sess.flops_per_image() / 1e9,
                conv: match &tuned {
                    Some(_) => format!("{}+tuned", p.conv),
                    None => p.conv.to_string(),
                },
                parallel: p.parallel.to_string(),
                fusion: p.fusion,
                summary: None,
                warnings: Vec::new(),
                peer_settings: String::new(),
            };
            let Some(measured) = measure(
                || sess.run(&input).map(|_| ()),
                m,
                &progress,
                &clock,
                source,
                ctrs,
                &monitor,
                &ctx,
                |source| HarnessError::Engine {
                    context: ctx.clone(),
                    source,
                },
            )?
            else {
                break;
            };
            (measured, info)
        } else {
            drop(current.take()); // joulebench's worker threads would idle beside the peer
            #[cfg(target_os = "linux")]
            affinity::set(m.cpus.as_deref(), original_affinity.as_ref())?;
            if graph.as_ref().is_none_or(|(name, _)| *name != p.model) {
                drop(graph.take());
                // For the input shape and the work per image; a model only a
                // peer can read leaves both unknown.
                if let Ok(g) = model_source::load(&suite.model_spec(&p.model)) {
                    graph = Some((p.model.clone(), g));
                }
            }
            let loaded = graph
                .as_ref()
                .filter(|(name, _)| *name == p.model)
                .map(|(_, g)| g);
            let peer = PeerPoint {
                suite,
                point: p,
                m,
                model: loaded,
                progress: &progress,
                clock: &clock,
                monitor: &monitor,
                ctx: &ctx,
                cache_root: &peer_models,
            };
            match peer.run(source, ctrs)? {
                None => break,
                Some(Ok(x)) => x,
                Some(Err(fail)) => {
                    let msg = format!("{}: {} ({})", p.id, fail.status(), fail.reason());
                    progress.warn(&msg);
                    warnings += 1;
                    let row = unmeasured_row(suite, p, m, &host, &fail);
                    results.append(std::slice::from_ref(&row), true)?;
                    recorded += 1;
                    progress.finish_point(&format!(
                        "[{}/{}] {}  {}: {}",
                        k + 1,
                        total,
                        p.id,
                        fail.status(),
                        fail.reason()
                    ));
                    continue;
                }
            }
        };
        let Measured {
            lat,
            duration,
            start_s,
            end_s,
            power: window,
            counters: counted,
            conditions: cond,
        } = measured;
        let st = match &info.summary {
            Some(t) => summary_of_tool(t),
            None => summarize(&lat, seed_of(&p.id)).expect("at least one batch is timed"),
        };
        let mut warn = info.warnings.clone();
        if cond.throttled == Some(true) {
            warn.push("throttled during the window (frequency below the set minimum or vcgencmd get_throttled bits): the board is too hot or underpowered".to_string());
        }
        if st.cv > m.cv_warn {
            warn.push(format!(
                "cv {:.3} above {:.3}: noisy measurement (other load, frequency scaling, too few batches?)",
                st.cv, m.cv_warn
            ));
        }
        if let Some(r) = slow_start(&lat, 1.5) {
            warn.push(format!(
                "first batches {r:.1}x slower than the median: raise warmup_iterations or warmup_seconds"
            ));
        }
        if st.n < m.min_batches {
            warn.push(format!(
                "max_seconds reached after {} of min_batches = {} batches",
                st.n, m.min_batches
            ));
        }
        if let Some(w) = &window {
            warn.extend(w.warnings.iter().cloned());
        }
        for w in &warn {
            progress.warn(&format!("{}: {w}", p.id));
        }
        warnings += warn.len();
        let ms = 1e3;
        let images_per_s = (st.n * p.batch) as f64 / st.total;
        let gflop_per_image = info.gflop_per_image;
        let mut row = ResultRow {
            suite: suite.name.clone(),
            suite_hash: suite.hash.clone(),
            experiment: p.experiment.clone(),
            point: p.id.clone(),
            repetition: p.repetition,
            model: p.model.clone(),
            engine: p.engine.to_string(),
            kernel: info.kernel.clone(),
            conv: info.conv.clone(),
            fusion: info.fusion,
            threads: p.threads,
            batch: p.batch,
            mc: info.cache.0,
            nc: info.cache.1,
            kc: info.cache.2,
            parallel: info.parallel.clone(),
            cpus: cpus_label(&m.cpus),
            iterations: st.n,
            duration_s: duration,
            images_per_s,
            gflop_per_image,
            gflops: gflop_per_image * images_per_s,
            latency_ms_p50: st.median * ms,
            latency_ms_p90: st.p90 * ms,
            latency_ms_p99: st.p99 * ms,
            latency_ms_mean: st.mean * ms,
            latency_ms_min: st.min * ms,
            latency_ms_max: st.max * ms,
            latency_ms_stdev: st.stdev * ms,
            latency_ci95_low_ms: st.ci95_low * ms,
            latency_ci95_high_ms: st.ci95_high * ms,
            cv: st.cv,
            outliers: st.outliers.iter().filter(|&&o| o).count(),
            warnings: warn.join("; "),
            host: host.clone(),
            timestamp_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            power_source: m.power.source.name().into(),
            window_start_s: Some(start_s),
            window_end_s: Some(end_s),
            power_mode: p.power_mode.clone(),
            governor: cond.governor.clone(),
            freq_min_khz: cond.freq_min_khz,
            freq_max_khz: cond.freq_max_khz,
            freq_mean_mhz: cond.freq_mean_mhz,
            temp_start_c: cond.temp_start_c,
            temp_end_c: cond.temp_end_c,
            throttled: cond.throttled,
            status: "ok".into(),
            peer_settings: info.peer_settings.clone(),
            ..ResultRow::default()
        };
        if let Some(w) = &window {
            let f = power::figures(w, idle_w, st.n * p.batch);
            row.set_power(&w.source, Some(w.estimated), w.samples, &f);
        }
        if let Some(c) = &counted {
            row.set_counters(c);
        }
        let prows: Vec<PowerRow> = window
            .iter()
            .flat_map(|w| w.raw.iter())
            .map(|r| PowerRow {
                point: p.id.clone(),
                repetition: p.repetition,
                t_s: r.t_s,
                rail: r.rail.clone(),
                watts: r.watts,
            })
            .collect();
        let srows: Vec<SampleRow> = lat
            .iter()
            .zip(&st.outliers)
            .enumerate()
            .map(|(i, (&l, &o))| SampleRow {
                point: p.id.clone(),
                batch_index: i,
                latency_ms: l * ms,
                outlier: o,
            })
            .collect();
        // Samples (and the profile) first: a results row is only there when
        // they are.
        samples.append(&srows, false)?;
        if let Some(pc) = &mut power_csv {
            pc.append(&prows, false)?;
        }
        // Layer timings exist for joulebench's own sessions only.
        if let Some((_, sess)) = current
            .as_mut()
            .filter(|_| m.profile && p.engine.is_joulebench())
        {
            let rows = profile_point(sess, &input, &p.id, st.n).map_err(engine_err(ctx.clone()))?;
            if profiles.is_none() {
                profiles = Some(Appender::open(&dir.join("profile.csv"))?);
            }
            if let Some(a) = profiles.as_mut() {
                a.append(&rows, false)?;
            }
        }
        results.append(std::slice::from_ref(&row), true)?;
        recorded += 1;
        let per_point = run_start.elapsed().as_secs_f64() / (k + 1) as f64;
        progress.finish_point(&format!(
            "[{}/{}] {}  {:.1} images/s  p50 {:.3} ms  cv {:.3}{}  (ETA {})",
            k + 1,
            total,
            p.id,
            row.images_per_s,
            row.latency_ms_p50,
            row.cv,
            row.joules_per_image.map_or(String::new(), |j| format!(
                "  {j:.4} J/image{}",
                if row.power_estimated == Some(true) {
                    " (estimated)"
                } else {
                    ""
                }
            )),
            human_duration(per_point * (total - k - 1) as f64)
        ));
    }
    progress.done();
    drop(current);
    if let Some(mut mc) = mode_control.take() {
        mc.restore()?;
        if let Ok(mut g) = RESTORE_ON_EXIT.lock() {
            *g = None;
        }
    }
    #[cfg(target_os = "linux")]
    affinity::set(None, original_affinity.as_ref())?;

    let all: Vec<ResultRow> = csvio::read_rows(&dir.join("results.csv")).unwrap_or_default();
    manifest.resolved_cache_configs = all
        .iter()
        .map(|r| PointBlocking {
            point: r.point.clone(),
            mc: r.mc,
            nc: r.nc,
            kc: r.kc,
        })
        .collect();
    manifest.points_recorded = Some(all.len());
    manifest.finished_utc = (!stopping())
        .then(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    manifest.write(&manifest_path)?;
    if stopping() {
        return Err(HarnessError::Interrupted(format!(
            "{recorded} point(s) recorded in {} this time, the point in progress was dropped; continue with --resume {}",
            dir.display(),
            dir.display()
        )));
    }
    Ok(RunOutcome {
        dir,
        recorded,
        skipped,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_points() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["0/4", "5/4", "1/0", "x", "1-2"] {
            assert!(bad.parse::<Shard>().unwrap_err().is_bad_input(), "{bad}");
        }
        let text = "name = \"s\"\n[[experiment]]\nmodels = [\"tiny\"]\nbatch = [1, 2, 3, 4, 5]\nrepetitions = 2\n";
        let suite = Suite::parse(text, Path::new("s.toml")).unwrap();
        let all = suite.points();
        assert_eq!(all.len(), 10);
        let mut seen: Vec<String> = Vec::new();
        for i in 1..=3 {
            let part = selected_points(&suite, Some(Shard { index: i, count: 3 }));
            assert!(part.len() == 3 || part.len() == 4);
            seen.extend(part.into_iter().map(|p| p.id));
        }
        seen.sort();
        let mut ids: Vec<String> = all.into_iter().map(|p| p.id).collect();
        ids.sort();
        assert_eq!(seen, ids);
    }

    #[test]
    fn dry_run_lists_points_and_an_estimate() {
        let text = "name = \"s\"\n[[experiment]]\nname = \"e\"\nmodels = [\"tiny\"]\nbatch = [1, 2]\nmin_seconds = 2\nmax_seconds = 3\ncooldown_seconds = 1\n";
        let suite = Suite::parse(text, Path::new("s.toml")).unwrap();
        let out = dry_run(&suite, None);
        assert!(out.contains("2 point(s)"), "{out}");
        assert!(
            out.contains("e/tiny/t1-b2-auto-auto-auto-fused-r0"),
            "{out}"
        );
        // at least (2 s measuring + 1 s cool-down + 0.5 s warm-up) x 2
        assert!(out.contains("estimated total: 7s"), "{out}");
    }
}
