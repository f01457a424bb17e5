//! The rows of the files a run writes: results.csv (one tidy row per
//! point), samples.csv (raw batch latencies), power.csv (raw power readings)
//! and profile.csv (per-layer times). These structs are the only definition
//! of the columns: the writer serializes them and every reader (resume,
//! merge, attach, figures, reports, compare) deserializes into them.

use crate::power::counters::CounterValues;
use crate::power::PowerFigures;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One row of results.csv: the only definition of its columns (names,
/// order, types), used to write the file and to read it back. Units are in
/// the column names. Every column but those [`REQUIRED`] may be absent from a
/// file (files of older versions lack the later ones) and reads back as its
/// [`Default`]; columns this version does not know are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResultRow {
    pub suite: String,
    pub suite_hash: String,
    pub experiment: String,
    pub point: String,
    pub repetition: usize,
    pub model: String,
    pub engine: String,
    pub kernel: String,
    pub conv: String,
    pub fusion: bool,
    pub threads: usize,
    pub batch: usize,
    pub mc: usize,
    pub nc: usize,
    pub kc: usize,
    #[serde(rename = "loop")]
    pub parallel: String,
    /// Pinned logical CPUs, space-separated; empty when not pinned.
    pub cpus: String,
    pub iterations: usize,
    pub duration_s: f64,
    pub images_per_s: f64,
    /// Convolution and dense floating-point work per image (multiply-add = 2).
    pub gflop_per_image: f64,
    /// `gflop_per_image` x `images_per_s`.
    pub gflops: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_mean: f64,
    pub latency_ms_min: f64,
    pub latency_ms_max: f64,
    pub latency_ms_stdev: f64,
    pub latency_ci95_low_ms: f64,
    pub latency_ci95_high_ms: f64,
    pub cv: f64,
    pub outliers: usize,
    /// Warnings about this point, `; `-separated.
    pub warnings: String,
    pub host: String,
    pub timestamp_utc: String,
    // Power and counters. Files written before these columns existed read
    // back with them empty.
    /// `none`, `rapl`, `hwmon`, `ina3221`, `pi5`, `external`, `estimate`.
    pub power_source: String,
    /// Whether the energy figures are an estimate; empty without a source.
    pub power_estimated: Option<bool>,
    /// Power readings inside the measured window.
    pub samples: Option<usize>,
    pub avg_power_w: Option<f64>,
    /// Idle power, measured once per suite.
    pub idle_power_w: Option<f64>,
    /// Energy of the measured window.
    pub energy_j: Option<f64>,
    pub joules_per_image: Option<f64>,
    /// (energy_j - idle_power_w x window) per image.
    pub dyn_joules_per_image: Option<f64>,
    pub images_per_joule: Option<f64>,
    pub cycles: Option<f64>,
    pub instructions: Option<f64>,
    pub ipc: Option<f64>,
    pub cache_references: Option<f64>,
    pub cache_misses: Option<f64>,
    pub l1d_read_misses: Option<f64>,
    pub llc_misses: Option<f64>,
    pub branch_misses: Option<f64>,
    pub task_clock_ms: Option<f64>,
    pub context_switches: Option<f64>,
    /// The measured window on the run's monotonic clock, in seconds since
    /// the run started (`clock.run_start_unix_s` in manifest.json).
    pub window_start_s: Option<f64>,
    pub window_end_s: Option<f64>,
    // Power mode and conditions of the window. Files written before these
    // columns existed read back with them empty.
    /// `none` or the suite's `[power_modes]` name.
    pub power_mode: String,
    /// The cpufreq governor of the used cpus' policies (`/`-joined when they
    /// differ); empty without cpufreq.
    pub governor: String,
    /// scaling_min_freq / scaling_max_freq in force (lowest min, highest
    /// max over the used policies).
    pub freq_min_khz: Option<u64>,
    pub freq_max_khz: Option<u64>,
    /// Mean scaling_cur_freq of the used cpus over the window.
    pub freq_mean_mhz: Option<f64>,
    /// Hottest SoC sensor at the start and the end of the window.
    pub temp_start_c: Option<f64>,
    pub temp_end_c: Option<f64>,
    /// A used cpu ran below freq_min_khz, or vcgencmd get_throttled bits 0-3.
    pub throttled: Option<bool>,
    /// `ok`; `skipped` (the engine is not available here) or `failed` (it
    /// ran and failed), with the reason in `warnings` and no measurements.
    /// Files written before this column existed read back as `ok`.
    pub status: String,
    /// A peer engine's settings as it reported them after loading
    /// (`key=value; ...`: threads, precision, streams, where its model came
    /// from); empty for joulebench, whose knobs have their own columns.
    /// Files written before this column existed read back with it empty.
    pub peer_settings: String,
}

/// The columns a results.csv must have (and hold a value in) to be read back
/// for figures, reports and `compare`.
pub const REQUIRED: &[&str] = &[
    "suite",
    "point",
    "model",
    "threads",
    "batch",
    "images_per_s",
];

impl Default for ResultRow {
    fn default() -> Self {
        ResultRow {
            suite: String::new(),
            suite_hash: String::new(),
            experiment: String::new(),
            point: String::new(),
            repetition: 0,
            model: String::new(),
            engine: String::new(),
            kernel: String::new(),
            conv: String::new(),
            fusion: false,
            threads: 0,
            batch: 0,
            mc: 0,
            nc: 0,
            kc: 0,
            parallel: String::new(),
            cpus: String::new(),
            iterations: 0,
            duration_s: 0.0,
            images_per_s: 0.0,
            gflop_per_image: 0.0,
            gflops: 0.0,
            latency_ms_p50: 0.0,
            latency_ms_p90: 0.0,
            latency_ms_p99: 0.0,
            latency_ms_mean: 0.0,
            latency_ms_min: 0.0,
            latency_ms_max: 0.0,
            latency_ms_stdev: 0.0,
            latency_ci95_low_ms: 0.0,
            latency_ci95_high_ms: 0.0,
            cv: 0.0,
            outliers: 0,
            warnings: String::new(),
            host: String::new(),
            timestamp_utc: String::new(),
            power_source: String::new(),
            power_estimated: None,
            samples: None,
            avg_power_w: None,
            idle_power_w: None,
            energy_j: None,
            joules_per_image: None,
            dyn_joules_per_image: None,
            images_per_joule: None,
            cycles: None,
            instructions: None,
            ipc: None,
            cache_references: None,
            cache_misses: None,
            l1d_read_misses: None,
            llc_misses: None,
            branch_misses: None,
            task_clock_ms: None,
            context_switches: None,
            window_start_s: None,
            window_end_s: None,
            power_mode: String::new(),
            governor: String::new(),
            freq_min_khz: None,
            freq_max_khz: None,
            freq_mean_mhz: None,
            temp_start_c: None,
            temp_end_c: None,
            throttled: None,
            // Files written before the status column existed hold measured points.
            status: "ok".into(),
            peer_settings: String::new(),
        }
    }
}

impl ResultRow {
    /// Fills the power columns from a source's window.
    pub fn set_power(
        &mut self,
        source: &str,
        estimated: Option<bool>,
        samples: Option<usize>,
        f: &PowerFigures,
    ) {
        self.power_source = source.to_string();
        self.power_estimated = estimated;
        self.samples = samples;
        self.avg_power_w = f.avg_power_w;
        self.idle_power_w = f.idle_power_w;
        self.energy_j = f.energy_j;
        self.joules_per_image = f.joules_per_image;
        self.dyn_joules_per_image = f.dyn_joules_per_image;
        self.images_per_joule = f.images_per_joule;
    }

    /// 95% interval of the median batch latency in ms, when recorded and sane.
    pub fn latency_ci(&self) -> Option<(f64, f64)> {
        let (lo, hi) = (self.latency_ci95_low_ms, self.latency_ci95_high_ms);
        (lo > 0.0 && hi >= lo && hi.is_finite()).then_some((lo, hi))
    }

    /// 95% interval for `images_per_s`: the interval of the median latency
    /// carried over relatively (images/s scales as 1/latency), so the
    /// interval is around the recorded value.
    pub fn images_per_s_ci(&self) -> Option<(f64, f64)> {
        let v = finite(self.images_per_s)?;
        let p50 = finite(self.latency_ms_p50).filter(|p| *p > 0.0)?;
        let (lo, hi) = self.latency_ci()?;
        Some((v * p50 / hi, v * p50 / lo))
    }

    /// Joules per image, from `joules_per_image` or `1 / images_per_joule`.
    pub fn energy_per_image(&self) -> Option<f64> {
        let inverse = |v: Option<f64>| v.and_then(finite).filter(|v| *v > 0.0).map(|v| 1.0 / v);
        self.joules_per_image
            .and_then(finite)
            .or_else(|| inverse(self.images_per_joule))
            .filter(|v| *v > 0.0)
    }

    /// Images per joule, from `images_per_joule` or `1 / joules_per_image`.
    pub fn efficiency(&self) -> Option<f64> {
        let inverse = |v: Option<f64>| v.and_then(finite).filter(|v| *v > 0.0).map(|v| 1.0 / v);
        self.images_per_joule
            .and_then(finite)
            .or_else(|| inverse(self.joules_per_image))
            .filter(|v| *v > 0.0)
    }

    /// Whether the point was measured (not `skipped` or `failed`).
    pub fn measured(&self) -> bool {
        matches!(self.status.as_str(), "" | "ok")
    }

    /// Fills the counter columns.
    pub fn set_counters(&mut self, c: &CounterValues) {
        self.cycles = c.cycles;
        self.instructions = c.instructions;
        self.ipc = c.ipc();
        self.cache_references = c.cache_references;
        self.cache_misses = c.cache_misses;
        self.l1d_read_misses = c.l1d_read_misses;
        self.llc_misses = c.llc_misses;
        self.branch_misses = c.branch_misses;
        self.task_clock_ms = c.task_clock_ms;
        self.context_switches = c.context_switches;
    }
}

/// A number that is one (files may hold `NaN` where a peer program did not
/// report a figure).
pub fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// One row of power.csv: a raw power reading. Readings between windows
/// (idle) name no point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerRow {
    #[serde(default)]
    pub point: String,
    #[serde(default)]
    pub repetition: usize,
    /// Seconds since the run started (the clock of `window_start_s`).
    pub t_s: f64,
    #[serde(default)]
    pub rail: String,
    pub watts: f64,
}

/// Whether `path`'s header names every column of the current results.csv
/// (files of older versions lack the power, counter, condition, status and
/// peer_settings columns).
pub fn has_current_header(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.split(',').any(|c| c == "peer_settings"))
        })
        .unwrap_or(true)
}

/// One row of samples.csv: one timed batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    pub point: String,
    pub batch_index: usize,
    pub latency_ms: f64,
    pub outlier: bool,
}

/// One row of profile.csv: a layer's time in a point of a suite with
/// `profile = true`, from batches timed per layer after the measured ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileRow {
    pub point: String,
    /// Position in execution order.
    pub layer_index: usize,
    pub name: String,
    /// The fused operation, e.g. `Conv+Bias+Add+Relu`.
    pub op: String,
    pub algorithm: String,
    /// Output shape HxWxC.
    pub output: String,
    pub ms_per_batch: f64,
    /// Fraction of the profiled time.
    pub share: f64,
    pub gflops: f64,
    /// The layer's own GEMM blocking from a tuning file (`mc=.. nc=.. kc=..`);
    /// empty when it ran with the point's (and in files from before tuning did).
    #[serde(default)]
    pub blocking: String,
}

/// A complete row with every column set, for tests of the readers and writers.
#[cfg(test)]
pub(crate) fn sample_row(point: &str, hash: &str) -> ResultRow {
    ResultRow {
        suite: "s".into(),
        suite_hash: hash.into(),
        experiment: "e".into(),
        point: point.into(),
        repetition: 0,
        model: "tiny".into(),
        engine: "joulebench".into(),
        kernel: "avx2".into(),
        conv: "auto".into(),
        fusion: true,
        threads: 2,
        batch: 4,
        mc: 48,
        nc: 256,
        kc: 64,
        parallel: "auto".into(),
        cpus: "0 1".into(),
        iterations: 10,
        duration_s: 0.5,
        images_per_s: 1234.5,
        gflop_per_image: 0.0123,
        gflops: 15.2,
        latency_ms_p50: 1.25,
        latency_ms_p90: 1.5,
        latency_ms_p99: 1.75,
        latency_ms_mean: 1.3,
        latency_ms_min: 1.0,
        latency_ms_max: 2.0,
        latency_ms_stdev: 0.1,
        latency_ci95_low_ms: 1.2,
        latency_ci95_high_ms: 1.3,
        cv: 0.077,
        outliers: 1,
        warnings: "a, b; c \"q\"".into(),
        host: "h".into(),
        timestamp_utc: "2026-01-01T00:00:00Z".into(),
        power_source: "rapl".into(),
        power_estimated: Some(false),
        samples: Some(12),
        avg_power_w: Some(15.5),
        idle_power_w: Some(4.25),
        energy_j: Some(7.75),
        joules_per_image: Some(0.0125),
        dyn_joules_per_image: None,
        images_per_joule: Some(80.0),
        cycles: None,
        instructions: None,
        ipc: None,
        cache_references: None,
        cache_misses: None,
        l1d_read_misses: None,
        llc_misses: None,
        branch_misses: None,
        task_clock_ms: Some(987.5),
        context_switches: Some(3.0),
        window_start_s: Some(1.5),
        window_end_s: Some(2.0),
        power_mode: "none".into(),
        governor: "schedutil".into(),
        freq_min_khz: Some(600000),
        freq_max_khz: Some(2400000),
        freq_mean_mhz: Some(1499.5),
        temp_start_c: Some(52.3),
        temp_end_c: None,
        throttled: Some(false),
        status: "ok".into(),
        peer_settings: String::new(),
    }
}

/// An empty directory of its own for a test of the record files.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("joulebench-rec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
