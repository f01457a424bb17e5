//! Power sources and hardware counters.
//!
//! A [`PowerSource`] is started right before a measured window and stopped
//! right after it; it returns a [`Window`]: energy in joules, mean watts, the
//! number of samples, a per-rail breakdown, its name and whether the figure is
//! measured or estimated. Sources read real interfaces only, every sysfs path
//! below a movable root ([`Sysfs`]), so tests run against fixture trees:
//!
//! - [`rapl`]: powercap energy counters (Intel and AMD), with wraparound;
//! - [`hwmon`]: hwmon power, energy or voltage x current channels, and the
//!   Jetson INA3221 in both the L4T 34+ hwmon and the older iio layout;
//! - [`pi5`]: `vcgencmd pmic_read_adc` on a Raspberry Pi 5;
//! - [`external`]: a power meter's log, followed live or attached afterwards;
//! - [`estimate`]: idle watts + per-core watts x CPU time, labelled estimated.
//!
//! Sampled sources run a thread that reads at a fixed rate on the run's
//! monotonic clock ([`RunClock`]); energy comes from energy counters where a
//! rail has one, else from trapezoid integration of power readings.
//! [`counters`] reads perf counters for the same window. This module knows
//! nothing of the engine.

pub mod config;
pub mod counters;
pub mod cpufreq;
pub mod estimate;
pub mod external;
pub mod hwmon;
pub mod pi5;
pub mod plausible;
pub mod rapl;
pub mod sensors;
pub mod thermal;

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

pub use config::{PowerConfig, SourceKind};

/// Errors of power sources and counters.
#[derive(Debug, Error)]
pub enum PowerError {
    /// The source does not exist on this machine (or under the sysfs root).
    #[error("power source `{source_name}` is not available: {reason}")]
    Unavailable { source_name: String, reason: String },
    /// A sensor file exists but may not be read.
    #[error("cannot read {}: permission denied. {hint}", path.display())]
    Permission { path: PathBuf, hint: String },
    /// A sensor file, command output or meter log does not have the expected
    /// form.
    #[error("{}{}: {reason}", path.display(), place.as_ref().map_or(String::new(), |p| format!(":{p}")))]
    Malformed {
        path: PathBuf,
        place: Option<String>,
        reason: String,
    },
    /// Reading failed for another reason (an I/O error, a command that
    /// failed).
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    /// Power settings that cannot work.
    #[error("{0}")]
    Config(String),
}

impl PowerError {
    /// Whether the user's input (sensor files, logs, settings, a source the
    /// machine lacks) is at fault: exit code 2.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            PowerError::Unavailable { .. } | PowerError::Malformed { .. } | PowerError::Config(_)
        )
    }

    pub(crate) fn malformed(path: &Path, place: Option<String>, reason: impl Into<String>) -> Self {
        PowerError::Malformed {
            path: path.to_path_buf(),
            place,
            reason: reason.into(),
        }
    }
}

/// The run's clock: seconds since the run started, advanced by the
/// monotonic clock. A resumed run continues the original run's seconds (the
/// offset comes from the wall clock once, at resume), so every window of a
/// run directory is on one time line, which `attach-power` maps to a meter's
/// timestamps through `run_start_unix_s`.
#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    origin: Instant,
    offset_s: f64,
    run_start_unix_s: f64,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl RunClock {
    /// A run starting now.
    pub fn start() -> RunClock {
        RunClock {
            origin: Instant::now(),
            offset_s: 0.0,
            run_start_unix_s: unix_now(),
        }
    }

    /// Continues a run that started at `run_start_unix_s` (seconds since the
    /// Unix epoch, UTC).
    pub fn resume(run_start_unix_s: f64) -> RunClock {
        RunClock {
            origin: Instant::now(),
            offset_s: (unix_now() - run_start_unix_s).max(0.0),
            run_start_unix_s,
        }
    }

    /// Seconds since the run started.
    pub fn now_s(&self) -> f64 {
        self.offset_s + self.origin.elapsed().as_secs_f64()
    }

    /// When the run started, in seconds since the Unix epoch (UTC).
    pub fn run_start_unix_s(&self) -> f64 {
        self.run_start_unix_s
    }
}

/// Every sysfs read goes through this: paths are taken below `root`
/// (`/` normally, a fixture tree in tests).
#[derive(Clone, Debug)]
pub struct Sysfs {
    root: PathBuf,
    /// Paths whose reads fail with "permission denied" (tests only: as root,
    /// permission bits do not stop reads).
    #[cfg(test)]
    deny: Vec<PathBuf>,
    /// Writes replaced by another value, as a kernel that clamps a setting
    /// would (tests only).
    #[cfg(test)]
    clamp: Vec<(PathBuf, String)>,
}

impl Sysfs {
    pub fn new(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs {
            root: root.into(),
            #[cfg(test)]
            deny: Vec::new(),
            #[cfg(test)]
            clamp: Vec::new(),
        }
    }

    /// The root of the real file system.
    pub fn system() -> Sysfs {
        Sysfs::new("/")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `rel` (an absolute-looking path such as `/sys/class/powercap`) below
    /// the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    #[cfg(test)]
    pub(crate) fn deny(&mut self, path: PathBuf) {
        self.deny.push(path);
    }

    #[cfg(test)]
    pub(crate) fn clamp(&mut self, path: PathBuf, value: &str) {
        self.clamp.push((path, value.to_string()));
    }

    /// Writes `value` to a sysfs attribute (no truncation or creation: the
    /// kernel's attributes exist; fixtures are rewritten whole).
    pub fn write(&self, path: &Path, value: &str) -> std::io::Result<()> {
        #[cfg(test)]
        if self.deny.iter().any(|d| d == path) {
            return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        }
        #[cfg(test)]
        let value = self
            .clamp
            .iter()
            .find(|(p, _)| p == path)
            .map_or(value, |(_, v)| v.as_str());
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.set_len(0).or_else(|e| {
            // sysfs attributes cannot be truncated and need not be.
            if e.kind() == std::io::ErrorKind::InvalidInput
                || e.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32)
            {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        f.write_all(format!("{value}\n").as_bytes())
    }

    /// Whether the process may write `path` (the kernel's answer: root and
    /// read-only mounts included).
    pub fn writable(&self, path: &Path) -> bool {
        #[cfg(test)]
        if self.deny.iter().any(|d| d == path) {
            return false;
        }
        writable(path)
    }

    /// Reads a whole small file, trimmed.
    pub fn read(&self, path: &Path) -> std::io::Result<String> {
        #[cfg(test)]
        if self.deny.iter().any(|d| d == path) {
            return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        }
        // A sysfs attribute is a page at most; a FIFO or /dev/zero planted in a
        // fixture tree must neither block nor fill memory.
        crate::guard::read_capped_string(
            path,
            "sensor file",
            SYSFS_CAP,
            "a sysfs attribute holds (one page); is the sysfs root right?",
        )
        .map(|s| s.trim().to_string())
        .map_err(std::io::Error::from)
    }

    /// Reads a file holding one integer (sysfs attributes); errors name the
    /// file. `denied_hint` says how to get read access.
    pub fn read_u64(&self, path: &Path, denied_hint: &str) -> Result<u64, PowerError> {
        let text = self
            .read(path)
            .map_err(|e| io_error(path, e, denied_hint))?;
        text.parse::<u64>().map_err(|_| {
            PowerError::malformed(
                path,
                None,
                format!(
                    "expected a non-negative integer, found {text:?}; is the sysfs root right?"
                ),
            )
        })
    }

    /// Like [`Sysfs::read_u64`] for attributes that may be negative.
    pub fn read_i64(&self, path: &Path, denied_hint: &str) -> Result<i64, PowerError> {
        let text = self
            .read(path)
            .map_err(|e| io_error(path, e, denied_hint))?;
        text.parse::<i64>().map_err(|_| {
            PowerError::malformed(
                path,
                None,
                format!("expected an integer, found {text:?}; is the sysfs root right?"),
            )
        })
    }

    /// The entries of a directory, sorted by name; empty when absent.
    pub fn list(&self, dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        v.sort_by_cached_key(|p| natural_key(p));
        v
    }
}

/// access(2) with W_OK.
pub fn writable(path: &Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The effective user id is root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Natural order: `hwmon10` after `hwmon9`, `intel-rapl:0:0` after
/// `intel-rapl:0` and before `intel-rapl:1`.
fn natural_key(p: &Path) -> Vec<(String, u64)> {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut key = Vec::new();
    let mut text = String::new();
    let mut num = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            if !num.is_empty() {
                key.push((std::mem::take(&mut text), num.parse().unwrap_or(u64::MAX)));
                num.clear();
            }
            text.push(c);
        }
    }
    key.push((text, num.parse().unwrap_or(0)));
    key
}

/// Bytes a sysfs attribute can hold (the kernel's page).
const SYSFS_CAP: u64 = 64 << 10;

pub(crate) fn io_error(path: &Path, e: std::io::Error, denied_hint: &str) -> PowerError {
    // Not a file to read at all (a FIFO, a device, too large, a symlink loop):
    // the sysfs root or the named file is wrong, which is bad input.
    if let Some(fe) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::guard::FileError>())
    {
        if !fe.is_permission() {
            return PowerError::malformed(path, None, fe.detail());
        }
    }
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        PowerError::Permission {
            path: path.to_path_buf(),
            hint: denied_hint.to_string(),
        }
    } else {
        PowerError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

/// What one rail's readings are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RailKind {
    /// A cumulative energy counter (read in joules).
    Energy,
    /// Instantaneous power (read in watts).
    Power,
}

/// One rail of a sampled source.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rail {
    pub name: String,
    pub kind: RailKind,
}

/// Something a sampling thread reads: a set of rails, each an energy counter
/// or a power reading.
pub trait Probe: Send {
    fn rails(&self) -> &[Rail];
    /// Indexes of the rails whose sum is the source's total (never an input
    /// rail and the rails behind it together).
    fn total(&self) -> &[usize];
    /// One reading per rail: cumulative joules (wrap-corrected) for energy
    /// rails, watts for power rails.
    fn read(&mut self) -> Result<Vec<f64>, PowerError>;
    /// The longest safe time between two reads (energy counters that wrap).
    fn max_interval(&self) -> Option<Duration> {
        None
    }
    /// Rails (by index) whose step up to the last reading cannot be trusted,
    /// and why (a wrap the sampling could not resolve); cleared by the call.
    fn take_flags(&mut self) -> Vec<(usize, String)> {
        Vec::new()
    }
}

/// One reading of every rail at run time `t_s` (seconds since the run
/// started; the middle of the read).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub t_s: f64,
    pub values: Vec<f64>,
    /// Rails whose step from the previous reading the probe could not
    /// resolve, and why.
    pub flags: Vec<(usize, String)>,
}

/// Energy of one rail over a window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RailEnergy {
    pub name: String,
    pub energy_j: f64,
    pub mean_w: f64,
}

/// One raw sample for power.csv: watts of `rail` at run time `t_s`
/// (energy counters: the mean over the interval ending at `t_s`). Sampled
/// sources add a rail `total`: the source's total at each reading after the
/// first.
#[derive(Clone, Debug, PartialEq)]
pub struct RawSample {
    pub t_s: f64,
    pub rail: String,
    pub watts: f64,
}

/// What a source measured over one window.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub source: String,
    pub estimated: bool,
    /// The window on the run's clock (seconds since the run started).
    pub start_s: f64,
    pub end_s: f64,
    /// `None` when the source could not cover the window (see `warnings`).
    pub energy_j: Option<f64>,
    pub mean_w: Option<f64>,
    /// Readings taken inside the window (`None` for an estimate).
    pub samples: Option<usize>,
    pub rails: Vec<RailEnergy>,
    pub raw: Vec<RawSample>,
    /// Problems to note in the row (too few samples, partial coverage).
    pub warnings: Vec<String>,
}

impl Window {
    pub fn duration_s(&self) -> f64 {
        (self.end_s - self.start_s).max(0.0)
    }
}

/// A power source: started before a measured window, stopped after it.
pub trait PowerSource: Send {
    /// The name recorded in results.csv's `power_source`.
    fn name(&self) -> &str;
    /// Whether figures are estimated rather than measured.
    fn estimated(&self) -> bool;
    /// Rails and how the total is formed, notes (for the manifest).
    fn describe(&self) -> serde_json::Value;
    fn start(&mut self, clock: &RunClock) -> Result<(), PowerError>;
    fn stop(&mut self, clock: &RunClock) -> Result<Window, PowerError>;
    /// Idle power the source knows without measuring (an estimate's
    /// coefficient).
    fn known_idle_w(&self) -> Option<f64> {
        None
    }
    /// The process a window is about besides joulebench itself (a peer
    /// engine's program), or `None` after it. Sources that measure the
    /// machine ignore it; the estimate adds its CPU time.
    fn follow(&mut self, _pid: Option<u32>) {}
}

/// Trapezoid integral of `(t, watts)` points, in joules.
pub fn trapezoid(points: &[(f64, f64)]) -> f64 {
    points
        .windows(2)
        .map(|w| 0.5 * (w[0].1 + w[1].1) * (w[1].0 - w[0].0))
        .sum()
}

/// The energy of a window from the samples of a probe's rails: counter
/// differences for energy rails, trapezoids for power rails. A window with
/// power rails and fewer than `min_samples` readings is flagged.
pub fn summarize_samples(
    source: &str,
    rails: &[Rail],
    total: &[usize],
    samples: &[Sample],
    min_samples: usize,
) -> Window {
    let (start_s, end_s) = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => (a.t_s, b.t_s),
        _ => (0.0, 0.0),
    };
    let dur = end_s - start_s;
    let mut per_rail = Vec::with_capacity(rails.len());
    let mut raw = Vec::new();
    for (i, rail) in rails.iter().enumerate() {
        let e = match rail.kind {
            RailKind::Energy => {
                for w in samples.windows(2) {
                    let dt = w[1].t_s - w[0].t_s;
                    if dt > 0.0 {
                        raw.push(RawSample {
                            t_s: w[1].t_s,
                            rail: rail.name.clone(),
                            watts: (w[1].values[i] - w[0].values[i]) / dt,
                        });
                    }
                }
                match (samples.first(), samples.last()) {
                    (Some(a), Some(b)) => b.values[i] - a.values[i],
                    _ => 0.0,
                }
            }
            RailKind::Power => {
                let pts: Vec<(f64, f64)> = samples.iter().map(|s| (s.t_s, s.values[i])).collect();
                raw.extend(pts.iter().map(|&(t_s, watts)| RawSample {
                    t_s,
                    rail: rail.name.clone(),
                    watts,
                }));
                trapezoid(&pts)
            }
        };
        per_rail.push(RailEnergy {
            name: rail.name.clone(),
            energy_j: e,
            mean_w: if dur > 0.0 { e / dur } else { 0.0 },
        });
    }
    // The total's watts over each interval (energy rails) or at each reading
    // (power rails), as the rail `total`.
    for w in samples.windows(2) {
        let dt = w[1].t_s - w[0].t_s;
        if dt <= 0.0 {
            continue;
        }
        let watts = total
            .iter()
            .map(|&i| match rails[i].kind {
                RailKind::Energy => (w[1].values[i] - w[0].values[i]) / dt,
                RailKind::Power => w[1].values[i],
            })
            .sum();
        raw.push(RawSample {
            t_s: w[1].t_s,
            rail: "total".into(),
            watts,
        });
    }
    let energy: f64 = total.iter().map(|&i| per_rail[i].energy_j).sum();
    let (mut warnings, implausible) = plausible::check_window(rails, total, samples);
    let integrated = total.iter().any(|&i| rails[i].kind == RailKind::Power);
    if integrated && samples.len() < min_samples {
        warnings.push(format!(
            "only {} power sample(s) in the window (min_samples = {min_samples}): the energy is uncertain; raise min_seconds or the sampling rate",
            samples.len()
        ));
    }
    if samples.len() < 2 || dur <= 0.0 {
        warnings.push("the power window holds fewer than two readings: no energy".into());
    }
    if total.is_empty() {
        warnings.push("the source has no rail in its total: no energy".into());
    }
    if !energy.is_finite() && !implausible {
        warnings.push(format!("the window's energy is {energy}: not recorded"));
    }
    let ok = samples.len() >= 2 && dur > 0.0 && !total.is_empty() && !implausible;
    let ok = ok && energy.is_finite();
    Window {
        source: source.to_string(),
        estimated: false,
        start_s,
        end_s,
        energy_j: ok.then_some(energy),
        mean_w: ok.then_some(energy / dur),
        samples: Some(samples.len()),
        rails: per_rail,
        raw,
        warnings,
    }
}

/// Default sampling rate of sysfs sources.
pub const DEFAULT_SYSFS_HZ: f64 = 10.0;

/// A probe read by its own thread at a fixed rate between `start` and `stop`.
pub struct Sampled {
    name: String,
    probe: Option<Box<dyn Probe>>,
    rails: Vec<Rail>,
    total: Vec<usize>,
    /// Zero: as fast as the probe allows.
    interval: Duration,
    min_samples: usize,
    notes: Vec<String>,
    running: Option<Running>,
}

type SamplerResult = (Box<dyn Probe>, Vec<Sample>, Option<PowerError>);

struct Running {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<SamplerResult>,
}

fn read_timed(probe: &mut dyn Probe, clock: &RunClock) -> Result<Sample, PowerError> {
    let a = clock.now_s();
    let values = probe.read()?;
    let b = clock.now_s();
    Ok(Sample {
        t_s: 0.5 * (a + b),
        values,
        flags: probe.take_flags(),
    })
}

impl Sampled {
    /// `rate_hz` of 0 (or `None` with `default_hz` 0) samples back to back.
    /// The interval is shortened when the probe's counters could wrap twice.
    pub fn new(
        name: &str,
        probe: Box<dyn Probe>,
        rate_hz: f64,
        min_samples: usize,
        notes: Vec<String>,
    ) -> Sampled {
        let mut interval = if rate_hz > 0.0 {
            Duration::from_secs_f64(1.0 / rate_hz)
        } else {
            Duration::ZERO
        };
        if let Some(max) = probe.max_interval() {
            if interval.is_zero() || interval > max {
                interval = interval.max(Duration::from_millis(1)).min(max);
            }
        }
        Sampled {
            name: name.to_string(),
            rails: probe.rails().to_vec(),
            total: probe.total().to_vec(),
            probe: Some(probe),
            interval,
            min_samples,
            notes,
            running: None,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn rails(&self) -> &[Rail] {
        &self.rails
    }

    pub fn total(&self) -> &[usize] {
        &self.total
    }
}

impl PowerSource for Sampled {
    fn name(&self) -> &str {
        &self.name
    }

    fn estimated(&self) -> bool {
        false
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "source": self.name,
            "estimated": false,
            "rails": self.rails,
            "total": self.total.iter().map(|&i| self.rails[i].name.clone()).collect::<Vec<_>>(),
            "sampling_interval_s": self.interval.as_secs_f64(),
            "min_samples": self.min_samples,
            "notes": self.notes,
        })
    }

    fn start(&mut self, clock: &RunClock) -> Result<(), PowerError> {
        if self.running.is_some() {
            return Err(PowerError::Config(format!(
                "power source {} started twice",
                self.name
            )));
        }
        let mut probe = self.probe.take().ok_or_else(|| {
            PowerError::Config(format!("power source {} lost its probe", self.name))
        })?;
        let first = match read_timed(probe.as_mut(), clock) {
            Ok(s) => s,
            Err(e) => {
                self.probe = Some(probe);
                return Err(e);
            }
        };
        let (tx, rx) = mpsc::channel::<()>();
        let clock = *clock;
        let interval = self.interval;
        let handle = std::thread::Builder::new()
            .name(format!("power-{}", self.name))
            .spawn(move || {
                let mut samples = vec![first];
                let t0 = Instant::now();
                let mut k: u32 = 1;
                loop {
                    let stop = if interval.is_zero() {
                        !matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty))
                    } else {
                        let next = t0 + interval * k;
                        let wait = next.saturating_duration_since(Instant::now());
                        !matches!(rx.recv_timeout(wait), Err(mpsc::RecvTimeoutError::Timeout))
                    };
                    // The last reading closes the window, also on stop.
                    match read_timed(probe.as_mut(), &clock) {
                        Ok(s) => samples.push(s),
                        Err(e) => return (probe, samples, Some(e)),
                    }
                    if stop {
                        return (probe, samples, None);
                    }
                    k = k.saturating_add(1);
                    // Skip ticks missed by a slow read instead of bunching up.
                    if !interval.is_zero() {
                        let behind = (t0.elapsed().as_secs_f64() / interval.as_secs_f64()) as u32;
                        k = k.max(behind.saturating_add(1));
                    }
                }
            })
            .map_err(|e| PowerError::Io {
                path: PathBuf::from("<power sampling thread>"),
                reason: e.to_string(),
            })?;
        self.running = Some(Running { stop: tx, handle });
        Ok(())
    }

    fn stop(&mut self, _clock: &RunClock) -> Result<Window, PowerError> {
        let run = self.running.take().ok_or_else(|| {
            PowerError::Config(format!(
                "power source {} stopped before it started",
                self.name
            ))
        })?;
        let _ = run.stop.send(());
        let (probe, samples, err) = run.handle.join().map_err(|_| PowerError::Io {
            path: PathBuf::from("<power sampling thread>"),
            reason: "the sampling thread panicked".into(),
        })?;
        self.probe = Some(probe);
        if let Some(e) = err {
            return Err(e);
        }
        Ok(summarize_samples(
            &self.name,
            &self.rails,
            &self.total,
            &samples,
            self.min_samples,
        ))
    }
}

/// The power figures of one results row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PowerFigures {
    pub avg_power_w: Option<f64>,
    pub idle_power_w: Option<f64>,
    pub energy_j: Option<f64>,
    pub joules_per_image: Option<f64>,
    /// Energy above idle (`energy_j - idle_power_w x window`) per image.
    pub dyn_joules_per_image: Option<f64>,
    pub images_per_joule: Option<f64>,
}

/// Per-image figures of a window in which `images` images were processed,
/// with idle power `idle_w` subtracted for the dynamic energy.
pub fn figures(window: &Window, idle_w: Option<f64>, images: usize) -> PowerFigures {
    let n = images as f64;
    let e = window.energy_j.filter(|e| e.is_finite());
    PowerFigures {
        avg_power_w: window.mean_w.filter(|w| w.is_finite()),
        idle_power_w: idle_w,
        energy_j: e,
        joules_per_image: e.filter(|_| n > 0.0).map(|e| e / n),
        dyn_joules_per_image: match (e, idle_w) {
            (Some(e), Some(idle)) if n > 0.0 => Some((e - idle * window.duration_s()) / n),
            _ => None,
        },
        images_per_joule: e.filter(|&e| e > 0.0).map(|e| n / e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_device_as_a_sensor_file_is_bad_input_not_a_hang() {
        let d = std::env::temp_dir().join(format!("jb-sysfs-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let fifo = d.join("energy_uj");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let zero = d.join("power1_input");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let sysfs = Sysfs::new(&d);
        for (p, kind) in [(&fifo, "FIFO"), (&zero, "character device")] {
            let e = sysfs.read_u64(p, "hint").unwrap_err();
            assert!(e.is_bad_input(), "{e}");
            assert!(matches!(e, PowerError::Malformed { .. }), "{e}");
            assert!(e.to_string().contains(kind), "{e}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn trapezoid_matches_an_analytic_power_curve_within_half_a_percent() {
        // P(t) = 10 + 5 sin(2 pi 0.5 t) W for 3 s sampled at 10 Hz.
        let p = |t: f64| 10.0 + 5.0 * (std::f64::consts::PI * t).sin();
        let exact =
            |t: f64| 10.0 * t - 5.0 / std::f64::consts::PI * (std::f64::consts::PI * t).cos();
        let pts: Vec<(f64, f64)> = (0..=30)
            .map(|i| i as f64 * 0.1)
            .map(|t| (t, p(t)))
            .collect();
        let got = trapezoid(&pts);
        let want = exact(3.0) - exact(0.0);
        assert!(((got - want) / want).abs() < 0.005, "{got} vs {want}");
    }

    #[test]
    fn idle_power_is_subtracted_for_the_dynamic_energy() {
        let w = Window {
            source: "x".into(),
            estimated: false,
            start_s: 10.0,
            end_s: 12.0,
            energy_j: Some(30.0),
            mean_w: Some(15.0),
            samples: Some(21),
            rails: vec![],
            raw: vec![],
            warnings: vec![],
        };
        let f = figures(&w, Some(5.0), 100);
        assert_eq!(f.joules_per_image, Some(0.3));
        // (30 J - 5 W x 2 s) / 100 images
        assert!((f.dyn_joules_per_image.unwrap() - 0.2).abs() < 1e-12);
        assert!((f.images_per_joule.unwrap() - 100.0 / 30.0).abs() < 1e-12);
        assert_eq!(figures(&w, None, 100).dyn_joules_per_image, None);
    }

    #[test]
    fn energy_rails_use_counter_differences_and_power_rails_trapezoids() {
        let rails = vec![
            Rail {
                name: "e".into(),
                kind: RailKind::Energy,
            },
            Rail {
                name: "p".into(),
                kind: RailKind::Power,
            },
        ];
        let s = |t: f64, e: f64, p: f64| Sample {
            t_s: t,
            values: vec![e, p],
            flags: Vec::new(),
        };
        let samples = vec![s(1.0, 100.0, 2.0), s(2.0, 103.0, 4.0), s(3.0, 110.0, 4.0)];
        let w = summarize_samples("t", &rails, &[0, 1], &samples, 5);
        assert_eq!(w.rails[0].energy_j, 10.0);
        assert_eq!(w.rails[1].energy_j, 3.0 + 4.0);
        assert_eq!(w.energy_j, Some(17.0));
        assert_eq!(w.samples, Some(3));
        assert!(
            w.warnings[0].contains("only 3 power sample(s)"),
            "{:?}",
            w.warnings
        );
        // energy rail: interval means; power rail: every reading
        assert_eq!(w.raw.iter().filter(|r| r.rail == "e").count(), 2);
        assert_eq!(w.raw.iter().filter(|r| r.rail == "p").count(), 3);
        // counters alone are exact with two readings: no flag
        let w = summarize_samples("t", &rails, &[0], &samples, 5);
        assert!(w.warnings.is_empty());
    }

    /// An analytic power curve read by the real sampling thread.
    struct Curve {
        rails: Vec<Rail>,
        clock: RunClock,
    }

    impl Probe for Curve {
        fn rails(&self) -> &[Rail] {
            &self.rails
        }
        fn total(&self) -> &[usize] {
            &[0]
        }
        fn read(&mut self) -> Result<Vec<f64>, PowerError> {
            let t = self.clock.now_s();
            Ok(vec![10.0 + 5.0 * (std::f64::consts::PI * t).sin()])
        }
    }

    #[test]
    fn the_sampling_thread_integrates_an_analytic_curve_within_half_a_percent() {
        let clock = RunClock::start();
        let probe = Curve {
            rails: vec![Rail {
                name: "curve".into(),
                kind: RailKind::Power,
            }],
            clock,
        };
        let mut s = Sampled::new("curve", Box::new(probe), 50.0, 5, vec![]);
        s.start(&clock).unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        let w = s.stop(&clock).unwrap();
        let exact =
            |t: f64| 10.0 * t - 5.0 / std::f64::consts::PI * (std::f64::consts::PI * t).cos();
        let want = exact(w.end_s) - exact(w.start_s);
        let got = w.energy_j.unwrap();
        assert!(((got - want) / want).abs() < 0.005, "{got} vs {want}");
        assert!(w.samples.unwrap() >= 10, "{:?}", w.samples);
        assert!(w.warnings.is_empty(), "{:?}", w.warnings);
        // restartable
        s.start(&clock).unwrap();
        assert!(s.stop(&clock).unwrap().samples.unwrap() >= 2);
    }

    #[test]
    fn a_resumed_clock_continues_the_run_seconds() {
        let c = RunClock::resume(unix_now() - 100.0);
        assert!((c.now_s() - 100.0).abs() < 1.0, "{}", c.now_s());
        let c = RunClock::start();
        assert!(c.now_s() < 1.0);
    }
}
