//! Reading a run back for plots, reports and comparisons: results.csv by
//! column name (so files with or without the power and counter columns both
//! work), and the files beside it: samples.csv, power.csv, profile.csv and
//! manifest.json.

pub use crate::harness::record::rows::ProfileRow;
use crate::harness::record::rows::{self, SampleRow};
use crate::harness::HarnessError;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Columns every results.csv must have for plots, reports and `compare`.
pub const REQUIRED: &[&str] = &[
    "suite",
    "point",
    "model",
    "threads",
    "batch",
    "images_per_s",
];

/// Columns that hold numbers when present; a non-empty cell that is not a
/// number is a malformed file. Empty cells mean "not measured".
pub const NUMERIC: &[&str] = &[
    "repetition",
    "threads",
    "batch",
    "mc",
    "nc",
    "kc",
    "iterations",
    "duration_s",
    "images_per_s",
    "gflop_per_image",
    "gflops",
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p99",
    "latency_ms_mean",
    "latency_ms_min",
    "latency_ms_max",
    "latency_ms_stdev",
    "latency_ci95_low_ms",
    "latency_ci95_high_ms",
    "cv",
    "outliers",
    "samples",
    "avg_power_w",
    "idle_power_w",
    "energy_j",
    "joules_per_image",
    "dyn_joules_per_image",
    "images_per_joule",
    "cycles",
    "instructions",
    "ipc",
    "window_start_s",
    "window_end_s",
    "freq_min_khz",
    "freq_max_khz",
    "freq_mean_mhz",
    "temp_start_c",
    "temp_end_c",
];

/// The parameters that identify a configuration across runs (not the point
/// id, timestamp or host): what `compare` matches on and what plots group by.
pub const PARAMS: &[&str] = &[
    "experiment",
    "model",
    "engine",
    "conv",
    "fusion",
    "threads",
    "batch",
    "mc",
    "nc",
    "kc",
    "loop",
    "cpus",
    "power_mode",
];

/// One results.csv row, by column name.
#[derive(Clone, Debug, Default)]
pub struct Row {
    cells: HashMap<String, String>,
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
}

impl Row {
    /// Builds a row from (column, value) pairs (tests, synthetic data).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Row {
        Row {
            cells: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            line: 0,
        }
    }

    /// The trimmed cell, `None` when the column is absent or the cell empty.
    pub fn get(&self, col: &str) -> Option<&str> {
        self.cells
            .get(col)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    /// The cell as text, empty when absent.
    pub fn text(&self, col: &str) -> &str {
        self.get(col).unwrap_or("")
    }

    /// The cell as a finite number (validated on load for [`NUMERIC`]).
    pub fn num(&self, col: &str) -> Option<f64> {
        self.get(col)
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|v| v.is_finite())
    }

    /// The cell as a whole number.
    pub fn int(&self, col: &str) -> Option<usize> {
        self.num(col)
            .filter(|v| *v >= 0.0 && v.fract() == 0.0)
            .map(|v| v as usize)
    }

    /// The matching key: every [`PARAMS`] column present, as `name=value`.
    pub fn key(&self) -> Vec<(String, String)> {
        PARAMS
            .iter()
            .filter(|c| self.cells.contains_key(**c))
            .map(|c| (c.to_string(), self.text(c).to_string()))
            .collect()
    }

    /// 95% interval of the median batch latency in ms, when recorded and sane.
    pub fn latency_ci(&self) -> Option<(f64, f64)> {
        let lo = self.num("latency_ci95_low_ms")?;
        let hi = self.num("latency_ci95_high_ms")?;
        (lo > 0.0 && hi >= lo).then_some((lo, hi))
    }

    /// 95% interval for `images_per_s`: the interval of the median latency
    /// carried over relatively (images/s scales as 1/latency), so the
    /// interval is around the recorded value.
    pub fn images_per_s_ci(&self) -> Option<(f64, f64)> {
        let v = self.num("images_per_s")?;
        let p50 = self.num("latency_ms_p50").filter(|p| *p > 0.0)?;
        let (lo, hi) = self.latency_ci()?;
        Some((v * p50 / hi, v * p50 / lo))
    }

    /// Joules per image, from `joules_per_image` or `1 / images_per_joule`.
    pub fn joules_per_image(&self) -> Option<f64> {
        self.num("joules_per_image")
            .or_else(|| {
                self.num("images_per_joule")
                    .filter(|v| *v > 0.0)
                    .map(|v| 1.0 / v)
            })
            .filter(|v| *v > 0.0)
    }

    /// Images per joule, from `images_per_joule` or `1 / joules_per_image`.
    pub fn images_per_joule(&self) -> Option<f64> {
        self.num("images_per_joule")
            .or_else(|| {
                self.num("joules_per_image")
                    .filter(|v| *v > 0.0)
                    .map(|v| 1.0 / v)
            })
            .filter(|v| *v > 0.0)
    }
}

/// One row of power.csv: a power reading on the run's clock.
#[derive(Clone, Debug, Deserialize)]
pub struct PowerSample {
    #[serde(default)]
    pub point: String,
    #[serde(default)]
    pub repetition: Option<usize>,
    pub t_s: f64,
    #[serde(default)]
    pub rail: String,
    pub watts: f64,
}

/// A run as read back: results and whatever lies beside them.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The results.csv read.
    pub results_path: PathBuf,
    /// The run directory, when the input was one (or a file named results.csv).
    pub dir: Option<PathBuf>,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// Batch latencies (ms) by point id, from samples.csv.
    pub samples: Option<HashMap<String, Vec<f64>>>,
    pub power: Option<Vec<PowerSample>>,
    pub profile: Option<Vec<ProfileRow>>,
    pub manifest: Option<serde_json::Value>,
    /// Problems that did not stop the reading (a torn last row, an
    /// unreadable side file).
    pub notes: Vec<String>,
}

fn rec_err(path: &Path, reason: impl Into<String>) -> HarnessError {
    HarnessError::Records {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Where results.csv is for an input that is a file or a run directory.
pub fn resolve(input: &Path) -> Result<(PathBuf, Option<PathBuf>), HarnessError> {
    if input.is_dir() {
        let f = input.join("results.csv");
        if !f.is_file() {
            return Err(rec_err(
                input,
                "no results.csv in this directory; give a run directory (results/<suite>/<timestamp>) or a results.csv file",
            ));
        }
        return Ok((f, Some(input.to_path_buf())));
    }
    if !input.exists() {
        return Err(rec_err(input, "no such file or directory"));
    }
    // Side files are only trusted next to a file that is a run's own results.csv.
    let dir = (input.file_name().and_then(|n| n.to_str()) == Some("results.csv"))
        .then(|| input.parent().map(Path::to_path_buf))
        .flatten()
        .map(|d| {
            if d.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                d
            }
        });
    Ok((input.to_path_buf(), dir))
}

/// The columns, rows and reading notes of a results.csv.
pub type ResultsRead = (Vec<String>, Vec<Row>, Vec<String>);

/// Reads results.csv by column name. `strict`: any malformed row is an
/// error; otherwise rows after the first malformed one are dropped with a note.
pub fn read_results(path: &Path, strict: bool) -> Result<ResultsRead, HarnessError> {
    let mut rdr = csv::ReaderBuilder::new()
        .from_path(path)
        .map_err(|e| rec_err(path, format!("cannot read: {e}")))?;
    let columns: Vec<String> = rdr
        .headers()
        .map_err(|e| rec_err(path, format!("cannot read the header: {e}")))?
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| !columns.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(rec_err(
            path,
            format!(
                "line 1: missing column(s) {}; this is not a joulebench results.csv",
                missing.join(", ")
            ),
        ));
    }
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(i as u64 + 2, |p| p.line());
                let msg = format!(
                    "line {line}: {e}; the file is damaged or not a joulebench results.csv"
                );
                if strict {
                    return Err(rec_err(path, msg));
                }
                notes.push(format!(
                    "{}: {msg} (rows from there on ignored)",
                    path.display()
                ));
                break;
            }
        };
        let line = rec.position().map_or(i as u64 + 2, |p| p.line());
        let row = Row {
            cells: columns
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect(),
            line,
        };
        for c in NUMERIC {
            if let Some(v) = row.get(c) {
                if !v.parse::<f64>().is_ok_and(f64::is_finite) {
                    let msg = format!("line {line}: column `{c}` holds `{v}`, not a number");
                    if strict {
                        return Err(rec_err(path, msg));
                    }
                    notes.push(format!(
                        "{}: {msg} (rows from there on ignored)",
                        path.display()
                    ));
                    return Ok((columns, rows, notes));
                }
            }
        }
        for c in REQUIRED {
            if row.get(c).is_none() {
                let msg = format!("line {line}: column `{c}` is empty");
                if strict {
                    return Err(rec_err(path, msg));
                }
                notes.push(format!(
                    "{}: {msg} (rows from there on ignored)",
                    path.display()
                ));
                return Ok((columns, rows, notes));
            }
        }
        rows.push(row);
    }
    Ok((columns, rows, notes))
}

/// Reads a run: results.csv (file, or the one in a run directory) and the
/// side files of its directory when present.
pub fn load(input: &Path, strict: bool) -> Result<RunData, HarnessError> {
    let (results_path, dir) = resolve(input)?;
    let (columns, rows, mut notes) = read_results(&results_path, strict)?;
    if rows.is_empty() {
        return Err(rec_err(&results_path, "no result rows (an empty run?)"));
    }
    let mut data = RunData {
        results_path,
        dir: dir.clone(),
        columns,
        rows,
        samples: None,
        power: None,
        profile: None,
        manifest: None,
        notes: Vec::new(),
    };
    if let Some(d) = &dir {
        let samples = d.join("samples.csv");
        if samples.is_file() {
            match rows::read_rows_lenient::<SampleRow>(&samples) {
                Ok((rows, bad)) => {
                    if let Some(e) = bad {
                        if strict {
                            return Err(e);
                        }
                        notes.push(format!("{e} (samples from there on ignored)"));
                    }
                    let mut m: HashMap<String, Vec<f64>> = HashMap::new();
                    for s in rows {
                        if s.latency_ms.is_finite() {
                            m.entry(s.point).or_default().push(s.latency_ms);
                        }
                    }
                    data.samples = Some(m);
                }
                Err(e) if strict => return Err(e),
                Err(e) => notes.push(e.to_string()),
            }
        }
        let power = d.join("power.csv");
        if power.is_file() {
            match rows::read_rows_lenient::<PowerSample>(&power) {
                Ok((rows, bad)) => {
                    if let Some(e) = bad {
                        notes.push(format!("{e} (power readings from there on ignored)"));
                    }
                    data.power = Some(
                        rows.into_iter()
                            .filter(|p| p.t_s.is_finite() && p.watts.is_finite())
                            .collect(),
                    );
                }
                Err(e) => notes.push(e.to_string()),
            }
        }
        let profile = d.join("profile.csv");
        if profile.is_file() {
            match rows::read_rows_lenient::<ProfileRow>(&profile) {
                Ok((rows, bad)) => {
                    if let Some(e) = bad {
                        notes.push(format!("{e} (profile rows from there on ignored)"));
                    }
                    data.profile = Some(rows);
                }
                Err(e) => notes.push(e.to_string()),
            }
        }
        let manifest = d.join("manifest.json");
        if manifest.is_file() {
            match std::fs::read_to_string(&manifest)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            {
                Ok(v) => data.manifest = Some(v),
                Err(e) => notes.push(format!(
                    "{}: {e} (machine details left out)",
                    manifest.display()
                )),
            }
        }
    }
    data.notes = notes;
    Ok(data)
}

impl RunData {
    pub fn has_column(&self, col: &str) -> bool {
        self.columns.iter().any(|c| c == col)
    }

    /// Whether any row has a number in `col`.
    pub fn has_values(&self, col: &str) -> bool {
        self.rows.iter().any(|r| r.num(col).is_some())
    }

    /// Distinct values of a column, in first-seen order.
    pub fn distinct(&self, col: &str) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.rows
            .iter()
            .map(|r| r.text(col).to_string())
            .filter(|v| seen.insert(v.clone()))
            .collect()
    }

    /// The suite name(s).
    pub fn suite(&self) -> String {
        self.distinct("suite").join("+")
    }

    /// The machine, for titles: host and CPU model when known.
    pub fn machine(&self) -> String {
        let hosts = self
            .distinct("host")
            .into_iter()
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>();
        let host = if hosts.is_empty() {
            self.manifest
                .as_ref()
                .and_then(|m| m["machine"]["host"].as_str())
                .unwrap_or("unknown host")
                .to_string()
        } else {
            hosts.join("+")
        };
        match self
            .manifest
            .as_ref()
            .and_then(|m| m["machine"]["cpu_model"].as_str())
        {
            Some(cpu) if hosts.len() <= 1 => format!("{host} ({cpu})"),
            _ => host,
        }
    }

    /// The run's date (UTC), from the first row's timestamp or the manifest.
    pub fn date(&self) -> String {
        self.rows
            .iter()
            .find_map(|r| r.get("timestamp_utc"))
            .or_else(|| {
                self.manifest
                    .as_ref()
                    .and_then(|m| m["started_utc"].as_str())
            })
            .map(|t| t.chars().take(10).collect())
            .unwrap_or_else(|| "undated".into())
    }

    /// The power sources that measured something (not `none`).
    pub fn power_sources(&self) -> Vec<String> {
        self.distinct("power_source")
            .into_iter()
            .filter(|s| !s.is_empty() && s != "none")
            .collect()
    }

    /// The name of the micro-kernel(s) used.
    pub fn kernel(&self) -> String {
        self.distinct("kernel")
            .into_iter()
            .filter(|k| !k.is_empty())
            .collect::<Vec<_>>()
            .join("+")
    }
}
