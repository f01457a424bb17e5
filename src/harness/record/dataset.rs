//! Reading a run back for plots, reports and comparisons: results.csv
//! deserialized into [`ResultRow`] (so files with or without the later
//! columns both read), and the files beside it: samples.csv, power.csv,
//! profile.csv and manifest.json.

use crate::harness::record::io;
use crate::harness::record::manifest::Manifest;
pub use crate::harness::record::rows::ProfileRow;
use crate::harness::record::rows::{PowerRow, ResultRow, SampleRow, REQUIRED};
use crate::harness::HarnessError;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// A run as read back: results and whatever lies beside them.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The results.csv read.
    pub results_path: PathBuf,
    /// The run directory, when the input was one (or a file named results.csv).
    pub dir: Option<PathBuf>,
    /// The columns of the file's header: files of older versions lack
    /// later ones, whose fields read back as their defaults.
    pub columns: Vec<String>,
    pub rows: Vec<ResultRow>,
    /// Batch latencies (ms) by point id, from samples.csv.
    pub samples: Option<HashMap<String, Vec<f64>>>,
    pub power: Option<Vec<PowerRow>>,
    pub profile: Option<Vec<ProfileRow>>,
    pub manifest: Option<Manifest>,
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
pub type ResultsRead = (Vec<String>, Vec<ResultRow>, Vec<String>);

/// Reads results.csv into [`ResultRow`]s by its header. `strict`: any
/// malformed row is an error; otherwise rows from the first malformed one on
/// are dropped with a note.
pub fn read_results(path: &Path, strict: bool) -> Result<ResultsRead, HarnessError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| rec_err(path, format!("cannot read: {e}")))?;
    let header = rdr
        .headers()
        .map_err(|e| rec_err(path, format!("cannot read the header: {e}")))?
        .clone();
    let columns: Vec<String> = header.iter().map(str::to_string).collect();
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
        let row = rec
            .map_err(|e| {
                let line = e.position().map_or(i as u64 + 2, |p| p.line());
                format!("line {line}: {e}; the file is damaged or not a joulebench results.csv")
            })
            .and_then(|rec| parse_row(&header, &rec, i as u64 + 2));
        match row {
            Ok(r) => rows.push(r),
            Err(msg) if strict => return Err(rec_err(path, msg)),
            Err(msg) => {
                notes.push(format!(
                    "{}: {msg} (rows from there on ignored)",
                    path.display()
                ));
                break;
            }
        }
    }
    Ok((columns, rows, notes))
}

/// One record as a row: the required cells filled, every cell of the type
/// its column holds; the error names the line, the column and the value.
fn parse_row(
    header: &csv::StringRecord,
    rec: &csv::StringRecord,
    fallback_line: u64,
) -> Result<ResultRow, String> {
    let line = rec.position().map_or(fallback_line, |p| p.line());
    for c in REQUIRED {
        let empty = header
            .iter()
            .position(|h| h == *c)
            .and_then(|i| rec.get(i))
            .is_none_or(str::is_empty);
        if empty {
            return Err(format!("line {line}: column `{c}` is empty"));
        }
    }
    rec.deserialize::<ResultRow>(Some(header)).map_err(|e| {
        let detail = match e.kind() {
            csv::ErrorKind::Deserialize { err, .. } => err.field().map(|f| {
                let col = header.get(f as usize).unwrap_or("?");
                let val = rec.get(f as usize).unwrap_or("");
                match err.kind() {
                    csv::DeserializeErrorKind::ParseInt(_)
                    | csv::DeserializeErrorKind::ParseFloat(_) => {
                        format!("column `{col}` holds `{val}`, not a number")
                    }
                    csv::DeserializeErrorKind::ParseBool(_) => {
                        format!("column `{col}` holds `{val}`, not true or false")
                    }
                    _ => format!("column `{col}` holds `{val}`: {err}"),
                }
            }),
            _ => None,
        };
        format!("line {line}: {}", detail.unwrap_or_else(|| e.to_string()))
    })
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
            match io::read_rows_lenient::<SampleRow>(&samples) {
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
            match io::read_rows_lenient::<PowerRow>(&power) {
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
            match io::read_rows_lenient::<ProfileRow>(&profile) {
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
            match Manifest::read(&manifest) {
                Ok(m) => data.manifest = Some(m),
                Err(e) => notes.push(format!("{e} (machine details left out)")),
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

    /// Distinct values of a field, in first-seen order.
    pub fn distinct(&self, field: impl Fn(&ResultRow) -> &str) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.rows
            .iter()
            .map(|r| field(r).to_string())
            .filter(|v| seen.insert(v.clone()))
            .collect()
    }

    /// The suite name(s).
    pub fn suite(&self) -> String {
        self.distinct(|r| &r.suite).join("+")
    }

    /// The machine, for titles: host and CPU model when known.
    pub fn machine(&self) -> String {
        let hosts = self
            .distinct(|r| &r.host)
            .into_iter()
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>();
        let machine = self.manifest.as_ref().and_then(|m| m.machine.as_ref());
        let host = if hosts.is_empty() {
            machine
                .map(|m| m.host.clone())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "unknown host".into())
        } else {
            hosts.join("+")
        };
        match machine.and_then(|m| m.cpu_model.as_deref()) {
            Some(cpu) if hosts.len() <= 1 => format!("{host} ({cpu})"),
            _ => host,
        }
    }

    /// The run's date (UTC), from the first row's timestamp or the manifest.
    pub fn date(&self) -> String {
        self.rows
            .iter()
            .map(|r| r.timestamp_utc.as_str())
            .find(|t| !t.is_empty())
            .or_else(|| self.manifest.as_ref()?.started_utc.as_deref())
            .map(|t| t.chars().take(10).collect())
            .unwrap_or_else(|| "undated".into())
    }

    /// The power sources that measured something (not `none`).
    pub fn power_sources(&self) -> Vec<String> {
        self.distinct(|r| &r.power_source)
            .into_iter()
            .filter(|s| !s.is_empty() && s != "none")
            .collect()
    }

    /// Whether any row's energy figures are an estimate.
    pub fn estimated(&self) -> bool {
        self.rows.iter().any(|r| r.power_estimated == Some(true))
    }

    /// The name of the micro-kernel(s) used.
    pub fn kernel(&self) -> String {
        self.distinct(|r| &r.kernel)
            .into_iter()
            .filter(|k| !k.is_empty())
            .collect::<Vec<_>>()
            .join("+")
    }
}
