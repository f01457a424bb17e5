//! Records: results.csv (one tidy row per point), samples.csv (raw batch
//! latencies), appended and flushed row by row; reading them back for
//! `--resume` and `merge`.

use super::HarnessError;
use crate::power::counters::CounterValues;
use crate::power::PowerFigures;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One row of results.csv. Units are in the column names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    #[serde(default)]
    pub power_source: String,
    /// Whether the energy figures are an estimate; empty without a source.
    #[serde(default)]
    pub power_estimated: Option<bool>,
    /// Power readings inside the measured window.
    #[serde(default)]
    pub samples: Option<usize>,
    #[serde(default)]
    pub avg_power_w: Option<f64>,
    /// Idle power, measured once per suite.
    #[serde(default)]
    pub idle_power_w: Option<f64>,
    /// Energy of the measured window.
    #[serde(default)]
    pub energy_j: Option<f64>,
    #[serde(default)]
    pub joules_per_image: Option<f64>,
    /// (energy_j - idle_power_w x window) per image.
    #[serde(default)]
    pub dyn_joules_per_image: Option<f64>,
    #[serde(default)]
    pub images_per_joule: Option<f64>,
    #[serde(default)]
    pub cycles: Option<f64>,
    #[serde(default)]
    pub instructions: Option<f64>,
    #[serde(default)]
    pub ipc: Option<f64>,
    #[serde(default)]
    pub cache_references: Option<f64>,
    #[serde(default)]
    pub cache_misses: Option<f64>,
    #[serde(default)]
    pub l1d_read_misses: Option<f64>,
    #[serde(default)]
    pub llc_misses: Option<f64>,
    #[serde(default)]
    pub branch_misses: Option<f64>,
    #[serde(default)]
    pub task_clock_ms: Option<f64>,
    #[serde(default)]
    pub context_switches: Option<f64>,
    /// The measured window on the run's monotonic clock, in seconds since
    /// the run started (`clock.run_start_unix_s` in manifest.json).
    #[serde(default)]
    pub window_start_s: Option<f64>,
    #[serde(default)]
    pub window_end_s: Option<f64>,
    // Power mode and conditions of the window. Files written before these
    // columns existed read back with them empty.
    /// `none` or the suite's `[power_modes]` name.
    #[serde(default)]
    pub power_mode: String,
    /// The cpufreq governor of the used cpus' policies (`/`-joined when they
    /// differ); empty without cpufreq.
    #[serde(default)]
    pub governor: String,
    /// scaling_min_freq / scaling_max_freq in force (lowest min, highest
    /// max over the used policies).
    #[serde(default)]
    pub freq_min_khz: Option<u64>,
    #[serde(default)]
    pub freq_max_khz: Option<u64>,
    /// Mean scaling_cur_freq of the used cpus over the window.
    #[serde(default)]
    pub freq_mean_mhz: Option<f64>,
    /// Hottest SoC sensor at the start and the end of the window.
    #[serde(default)]
    pub temp_start_c: Option<f64>,
    #[serde(default)]
    pub temp_end_c: Option<f64>,
    /// A used cpu ran below freq_min_khz, or vcgencmd get_throttled bits 0-3.
    #[serde(default)]
    pub throttled: Option<bool>,
    /// `ok`; `skipped` (the engine is not available here) or `failed` (it
    /// ran and failed), with the reason in `warnings` and no measurements.
    /// Files written before this column existed read back as `ok`.
    #[serde(default = "status_ok")]
    pub status: String,
    /// A peer engine's settings as it reported them after loading
    /// (`key=value; ...`: threads, precision, streams, where its model came
    /// from); empty for joulebench, whose knobs have their own columns.
    /// Files written before this column existed read back with it empty.
    #[serde(default)]
    pub peer_settings: String,
}

fn status_ok() -> String {
    "ok".into()
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

/// One row of power.csv: a raw power reading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerRow {
    pub point: String,
    pub repetition: usize,
    /// Seconds since the run started (the clock of `window_start_s`).
    pub t_s: f64,
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

/// A CSV file opened for appending; the header is written when the file is new.
pub struct Appender {
    path: PathBuf,
    file: File,
    header_needed: bool,
}

impl Appender {
    pub fn open(path: &Path) -> Result<Appender, HarnessError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        let header_needed = file.metadata().map_err(|e| io_err(path, e))?.len() == 0;
        Ok(Appender {
            path: path.to_path_buf(),
            file,
            header_needed,
        })
    }

    /// Appends `rows` in one write and flushes it to the file (and the disk
    /// when `sync`), so a crash leaves whole rows behind.
    pub fn append<T: Serialize>(&mut self, rows: &[T], sync: bool) -> Result<(), HarnessError> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(self.header_needed)
            .from_writer(Vec::new());
        for r in rows {
            w.serialize(r).map_err(|e| rec_err(&self.path, e))?;
        }
        let buf = w.into_inner().map_err(|e| rec_err(&self.path, e))?;
        self.file
            .write_all(&buf)
            .and_then(|_| self.file.flush())
            .map_err(|e| io_err(&self.path, e))?;
        if sync {
            self.file.sync_data().map_err(|e| io_err(&self.path, e))?;
        }
        if !rows.is_empty() {
            self.header_needed = false;
        }
        Ok(())
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn rec_err(path: &Path, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Records {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Reads every row of a CSV file strictly: any malformed row is an error
/// naming its line.
pub fn read_rows<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, HarnessError> {
    let (rows, bad) = read_rows_lenient(path)?;
    match bad {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

/// Reads rows up to the first malformed one; returns the good rows and the
/// error of the first bad one (a row torn by a crash, at the end).
pub fn read_rows_lenient<T: for<'de> Deserialize<'de>>(
    path: &Path,
) -> Result<(Vec<T>, Option<HarnessError>), HarnessError> {
    let mut rdr = csv::ReaderBuilder::new()
        .from_path(path)
        .map_err(|e| rec_err(path, format!("cannot read: {e}")))?;
    let mut rows = Vec::new();
    for (i, r) in rdr.deserialize::<T>().enumerate() {
        match r {
            Ok(row) => rows.push(row),
            Err(e) => {
                let line = e.position().map_or(i as u64 + 2, |p| p.line());
                let err = HarnessError::Records {
                    path: path.to_path_buf(),
                    reason: format!("line {line}: {e}; the file is not a joulebench results/samples CSV or is damaged"),
                };
                return Ok((rows, Some(err)));
            }
        }
    }
    Ok((rows, None))
}

/// Rewrites `path` with exactly `rows` (via a temporary file and rename).
pub fn rewrite<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), HarnessError> {
    let tmp = path.with_extension("csv.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut a = Appender::open(&tmp)?;
    a.append(rows, true)?;
    drop(a);
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// `joulebench merge`: concatenates results files of one suite. Refuses
/// files of different suites (hash) and points recorded twice.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<usize, HarnessError> {
    if inputs.is_empty() {
        return Err(HarnessError::Usage {
            name: "inputs",
            reason: "give at least one results.csv to merge".into(),
        });
    }
    let mut all: Vec<ResultRow> = Vec::new();
    let mut hash: Option<(String, PathBuf)> = None;
    let mut seen = HashSet::new();
    for p in inputs {
        let rows: Vec<ResultRow> = read_rows(p)?;
        for r in rows {
            match &hash {
                None => hash = Some((r.suite_hash.clone(), p.clone())),
                Some((h, first)) if *h != r.suite_hash => {
                    return Err(HarnessError::Records {
                        path: p.clone(),
                        reason: format!(
                            "point `{}` comes from suite hash {}, but {} has {}; merge only shards of the same suite file",
                            r.point,
                            short(&r.suite_hash),
                            first.display(),
                            short(h)
                        ),
                    });
                }
                _ => {}
            }
            // The same point from two boards is a comparison; twice from one
            // host is an overlap.
            if !seen.insert((r.point.clone(), r.repetition, r.host.clone())) {
                return Err(HarnessError::Records {
                    path: p.clone(),
                    reason: format!(
                        "point `{}` is recorded twice for host {} (overlapping shards?); merge each shard once",
                        r.point, r.host
                    ),
                });
            }
            all.push(r);
        }
    }
    if out.exists() {
        return Err(HarnessError::Usage {
            name: "out",
            reason: format!(
                "{} exists; choose a new file (merge never overwrites)",
                out.display()
            ),
        });
    }
    rewrite(out, &all)?;
    Ok(all.len())
}

/// The first 12 characters of a hash (any text, as read from a file).
pub fn short(h: &str) -> String {
    h.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn row(point: &str, hash: &str) -> ResultRow {
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

    #[test]
    fn files_without_the_power_columns_read_back_with_them_empty() {
        let d = tmpdir("old");
        let p = d.join("results.csv");
        rewrite(&p, &[row("a", "h")]).unwrap();
        // Cut the header and row after timestamp_utc: the format before power.
        let text = std::fs::read_to_string(&p).unwrap();
        let cut: Vec<String> = text
            .lines()
            .map(|l| {
                let mut r = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .from_reader(l.as_bytes());
                let rec = r.records().next().unwrap().unwrap();
                let n = rec.len() - 31;
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record(rec.iter().take(n)).unwrap();
                String::from_utf8(w.into_inner().unwrap()).unwrap()
            })
            .collect();
        std::fs::write(&p, cut.concat()).unwrap();
        assert!(!has_current_header(&p));
        let back: Vec<ResultRow> = read_rows(&p).unwrap();
        assert_eq!(back[0].power_source, "");
        assert_eq!(back[0].energy_j, None);
        assert_eq!(back[0].window_end_s, None);
        assert_eq!(back[0].status, "ok");
        assert_eq!(back[0].timestamp_utc, "2026-01-01T00:00:00Z");
        // merging an old and a new file writes the new header
        let new = d.join("new.csv");
        rewrite(&new, &[row("b", "h")]).unwrap();
        assert!(has_current_header(&new));
        assert_eq!(merge(&[p, new], &d.join("m.csv")).unwrap(), 2);
        let merged: Vec<ResultRow> = read_rows(&d.join("m.csv")).unwrap();
        assert_eq!(merged[1], row("b", "h"));
        assert!(has_current_header(&d.join("m.csv")));
    }

    #[test]
    fn files_without_the_condition_columns_read_back_with_them_empty() {
        let d = tmpdir("old-cond");
        let p = d.join("results.csv");
        let mut r = row("a", "h");
        r.power_mode = "f1200".into();
        r.throttled = Some(true);
        rewrite(&p, &[r]).unwrap();
        // Cut the 8 condition columns, status and peer_settings: the format of the power version.
        let cut = drop_last_columns(&p, 10);
        assert!(cut.lines().next().unwrap().ends_with(",window_end_s"));
        std::fs::write(&p, cut).unwrap();
        assert!(!has_current_header(&p));
        let back: Vec<ResultRow> = read_rows(&p).unwrap();
        assert_eq!(back[0].power_mode, "");
        assert_eq!(back[0].throttled, None);
        assert_eq!(back[0].freq_mean_mhz, None);
        assert_eq!(back[0].status, "ok");
    }

    #[test]
    fn files_without_the_status_column_read_back_as_ok() {
        let d = tmpdir("old-status");
        let p = d.join("results.csv");
        let mut r = row("a", "h");
        r.status = "failed".into();
        r.throttled = Some(true);
        rewrite(&p, &[r]).unwrap();
        // Cut the status and peer_settings columns: the format of the power-modes version.
        let cut = drop_last_columns(&p, 2);
        assert!(cut.lines().next().unwrap().ends_with(",throttled"));
        std::fs::write(&p, cut).unwrap();
        assert!(!has_current_header(&p));
        let back: Vec<ResultRow> = read_rows(&p).unwrap();
        assert_eq!(back[0].status, "ok");
        assert_eq!(back[0].throttled, Some(true));
    }

    #[test]
    fn files_without_the_peer_settings_column_read_back_with_it_empty() {
        let d = tmpdir("old-peer-settings");
        let p = d.join("results.csv");
        let mut r = row("a", "h");
        r.status = "skipped".into();
        r.peer_settings = "num_threads=2".into();
        rewrite(&p, &[r]).unwrap();
        assert!(has_current_header(&p));
        let cut = drop_last_columns(&p, 1);
        assert!(cut.lines().next().unwrap().ends_with(",status"));
        std::fs::write(&p, cut).unwrap();
        assert!(!has_current_header(&p));
        let back: Vec<ResultRow> = read_rows(&p).unwrap();
        assert_eq!(back[0].status, "skipped");
        assert_eq!(back[0].peer_settings, "");
    }

    /// `path`'s text without its last `n` columns (no quoted commas in these rows).
    fn drop_last_columns(path: &Path, n: usize) -> String {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(',').collect();
                f.truncate(f.len() - n);
                f.join(",") + "\n"
            })
            .collect()
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("joulebench-rec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn csv_round_trip_keeps_every_value() {
        let d = tmpdir("rt");
        let p = d.join("results.csv");
        let rows = vec![row("a", "h1"), row("b", "h1")];
        let mut a = Appender::open(&p).unwrap();
        a.append(&rows[..1], false).unwrap();
        drop(a);
        // reopening appends without a second header
        Appender::open(&p)
            .unwrap()
            .append(&rows[1..], true)
            .unwrap();
        let back: Vec<ResultRow> = read_rows(&p).unwrap();
        assert_eq!(back, rows);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.starts_with("suite,suite_hash,experiment,point,"));
        assert!(text.lines().next().unwrap().contains(",loop,"));
        let header = text.lines().next().unwrap();
        assert!(header.ends_with(",timestamp_utc,power_source,power_estimated,samples,avg_power_w,idle_power_w,energy_j,joules_per_image,dyn_joules_per_image,images_per_joule,cycles,instructions,ipc,cache_references,cache_misses,l1d_read_misses,llc_misses,branch_misses,task_clock_ms,context_switches,window_start_s,window_end_s,power_mode,governor,freq_min_khz,freq_max_khz,freq_mean_mhz,temp_start_c,temp_end_c,throttled,status,peer_settings"), "{header}");
        // empty cells where not available
        assert!(
            text.lines().nth(1).unwrap().contains(",0.0125,,80.0,,,,,"),
            "{text}"
        );
    }

    #[test]
    fn a_torn_last_row_is_reported_and_the_rest_kept() {
        let d = tmpdir("torn");
        let p = d.join("results.csv");
        Appender::open(&p)
            .unwrap()
            .append(&[row("a", "h")], false)
            .unwrap();
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"s,h,e,b,0,tiny,joule").unwrap();
        let (rows, bad) = read_rows_lenient::<ResultRow>(&p).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(bad.unwrap().to_string().contains("line 3"));
    }

    #[test]
    fn merge_refuses_mixed_hashes_and_duplicates() {
        let d = tmpdir("merge");
        let (a, b, c) = (d.join("a.csv"), d.join("b.csv"), d.join("c.csv"));
        rewrite(&a, &[row("p1", "h1")]).unwrap();
        rewrite(&b, &[row("p2", "h1")]).unwrap();
        rewrite(&c, &[row("p3", "h2")]).unwrap();
        assert_eq!(merge(&[a.clone(), b.clone()], &d.join("m.csv")).unwrap(), 2);
        let e = merge(&[a.clone(), c], &d.join("m2.csv")).unwrap_err();
        assert!(
            e.is_bad_input() && e.to_string().contains("suite hash"),
            "{e}"
        );
        let e = merge(&[a.clone(), a.clone()], &d.join("m3.csv")).unwrap_err();
        assert!(e.to_string().contains("recorded twice"), "{e}");
        // The same suite run on another board merges: its rows name another host.
        let other = d.join("other-host.csv");
        let mut r = row("p1", "h1");
        r.host = "another-board".into();
        rewrite(&other, &[r]).unwrap();
        assert_eq!(merge(&[a, other], &d.join("m4.csv")).unwrap(), 2);
        assert!(!d.join("m2.csv").exists() && !d.join("m3.csv").exists());
    }
}
