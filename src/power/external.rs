//! External power meters: a log file of timestamps and watts (or volts and
//! amps), followed live while a suite runs or attached afterwards
//! (`joulebench attach-power`), aligned to the run's windows by timestamp.
//!
//! A meter's timestamp plus `clock_offset_s` is taken as this host's UTC
//! time (timestamps without a zone are read as UTC: for a meter logging
//! local time, the offset is minus the zone's UTC offset, e.g. -7200 for
//! CEST). For elapsed-time formats the offset is the Unix time of the
//! meter's zero.
//!
//! Presets:
//! - `unix-watts`: `timestamp,watts` with a header and Unix seconds, as a
//!   script polling a lab meter (SCPI power analyzer, smart plug) writes;
//! - `pyummeter`: RDTech UM24C/UM25C/UM34C USB meters logged by pyummeter:
//!   `;`-separated, header, `Date` as ISO 8601 with a space, `Power (W)`;
//! - `ptdaemon`: SPEC PTDaemon's log (MLPerf Power's `spl.txt`, Yokogawa
//!   WT310 and the like): no header,
//!   `Time,MM-DD-YYYY HH:MM:SS.fff,Watts,W,Volts,V,Amps,A,PF,pf,Mark,m`.

use super::{PowerError, PowerSource, RawSample, RunClock, Window};
use serde::Serialize;
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A column by header name or by 0-based position.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Column {
    Name(String),
    Index(usize),
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Name(n) => write!(f, "`{n}`"),
            Column::Index(i) => write!(f, "#{i}"),
        }
    }
}

/// How the timestamp column reads.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Seconds since the Unix epoch (fractions allowed).
    Unix,
    /// Milliseconds since the Unix epoch.
    UnixMs,
    /// ISO 8601 / RFC 3339, with `T` or a space, optional fraction and zone.
    Iso,
    /// Seconds since the meter started (the offset is its start time).
    Elapsed,
    /// Milliseconds since the meter started.
    ElapsedMs,
    /// A chrono strftime pattern (no zone: UTC).
    Pattern(String),
}

impl TimeFormat {
    /// `unix`, `unix_ms`, `iso`, `elapsed`, `elapsed_ms`, or a pattern with `%`.
    pub fn parse(s: &str) -> Option<TimeFormat> {
        Some(match s {
            "unix" => TimeFormat::Unix,
            "unix_ms" => TimeFormat::UnixMs,
            "iso" => TimeFormat::Iso,
            "elapsed" => TimeFormat::Elapsed,
            "elapsed_ms" => TimeFormat::ElapsedMs,
            p if p.contains('%') => TimeFormat::Pattern(p.to_string()),
            _ => return None,
        })
    }

    /// Seconds (Unix time, or elapsed seconds) of one timestamp.
    pub fn seconds(&self, s: &str) -> Option<f64> {
        let num = || s.parse::<f64>().ok().filter(|x| x.is_finite());
        match self {
            TimeFormat::Unix | TimeFormat::Elapsed => num(),
            TimeFormat::UnixMs | TimeFormat::ElapsedMs => num().map(|x| x / 1e3),
            TimeFormat::Iso => {
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                    return Some(t.timestamp_micros() as f64 / 1e6);
                }
                let t = s.replacen(' ', "T", 1);
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&t) {
                    return Some(t.timestamp_micros() as f64 / 1e6);
                }
                ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"]
                    .iter()
                    .find_map(|f| chrono::NaiveDateTime::parse_from_str(&t, f).ok())
                    .map(|n| n.and_utc().timestamp_micros() as f64 / 1e6)
            }
            TimeFormat::Pattern(p) => chrono::NaiveDateTime::parse_from_str(s, p)
                .ok()
                .map(|n| n.and_utc().timestamp_micros() as f64 / 1e6)
                .or_else(|| {
                    chrono::DateTime::parse_from_str(s, p)
                        .ok()
                        .map(|t| t.timestamp_micros() as f64 / 1e6)
                }),
        }
    }

    fn name(&self) -> String {
        match self {
            TimeFormat::Unix => "unix".into(),
            TimeFormat::UnixMs => "unix_ms".into(),
            TimeFormat::Iso => "iso".into(),
            TimeFormat::Elapsed => "elapsed".into(),
            TimeFormat::ElapsedMs => "elapsed_ms".into(),
            TimeFormat::Pattern(p) => p.clone(),
        }
    }
}

/// The layout of a meter log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeterFormat {
    /// The preset this started from.
    pub preset: String,
    pub delimiter: char,
    /// Whether the first line names the columns.
    pub header: bool,
    pub time_column: Column,
    pub time_format: TimeFormat,
    /// Watts, or else volts x amps.
    pub watts_column: Option<Column>,
    pub volts_column: Option<Column>,
    pub amps_column: Option<Column>,
    /// Multiplies the amps column (0.001 for mA).
    pub amps_scale: f64,
    /// Seconds added to the meter's timestamps to get this host's UTC time.
    pub clock_offset_s: f64,
}

/// Preset names.
pub const PRESETS: &[&str] = &["unix-watts", "pyummeter", "ptdaemon"];

impl Default for MeterFormat {
    fn default() -> Self {
        MeterFormat::preset("unix-watts").expect("a known preset")
    }
}

impl MeterFormat {
    /// A preset by name.
    pub fn preset(name: &str) -> Option<MeterFormat> {
        let base = |delimiter, header, time_column, time_format, watts: Column| MeterFormat {
            preset: name.to_string(),
            delimiter,
            header,
            time_column,
            time_format,
            watts_column: Some(watts),
            volts_column: None,
            amps_column: None,
            amps_scale: 1.0,
            clock_offset_s: 0.0,
        };
        Some(match name {
            "unix-watts" => base(
                ',',
                true,
                Column::Name("timestamp".into()),
                TimeFormat::Unix,
                Column::Name("watts".into()),
            ),
            "pyummeter" => base(
                ';',
                true,
                Column::Name("Date".into()),
                TimeFormat::Iso,
                Column::Name("Power (W)".into()),
            ),
            "ptdaemon" => base(
                ',',
                false,
                Column::Index(1),
                TimeFormat::Pattern("%m-%d-%Y %H:%M:%S%.f".into()),
                Column::Index(3),
            ),
            _ => return None,
        })
    }

    /// Checks that the columns can be found: names need a header.
    pub fn validate(&self) -> Result<(), String> {
        if self.watts_column.is_none()
            && (self.volts_column.is_none() || self.amps_column.is_none())
        {
            return Err("the meter log needs watts_column, or volts_column and amps_column".into());
        }
        if !self.header {
            for c in [
                Some(&self.time_column),
                self.watts_column.as_ref(),
                self.volts_column.as_ref(),
                self.amps_column.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                if let Column::Name(n) = c {
                    return Err(format!(
                        "column `{n}` is a name but the log has no header (header = false): give 0-based column numbers"
                    ));
                }
            }
        }
        if !self.delimiter.is_ascii() {
            return Err(format!(
                "delimiter {:?} must be one ASCII character",
                self.delimiter
            ));
        }
        Ok(())
    }
}

/// One meter reading on the run's clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeterSample {
    pub t_s: f64,
    pub watts: f64,
}

/// Positions of the time, watts, volts and amps columns.
type Columns = (usize, Option<usize>, Option<usize>, Option<usize>);

/// Bytes of meter log read at once: hours of 1 kHz samples. A larger file is
/// not a meter's log (or /dev/zero behind a link) and is refused unread.
const MAX_LOG_CHUNK: u64 = 1 << 30;

/// Reads a meter log incrementally (complete lines only, until `finish`).
pub struct LogReader {
    path: PathBuf,
    format: MeterFormat,
    /// Run start in Unix seconds: meter time + offset - this = run seconds.
    run_start_unix_s: f64,
    offset: u64,
    lines_before: usize,
    columns: Option<Vec<String>>,
    resolved: Option<Columns>,
    pub samples: Vec<MeterSample>,
}

impl LogReader {
    pub fn new(
        path: &Path,
        format: MeterFormat,
        run_start_unix_s: f64,
    ) -> Result<LogReader, PowerError> {
        format.validate().map_err(PowerError::Config)?;
        Ok(LogReader {
            path: path.to_path_buf(),
            format,
            run_start_unix_s,
            offset: 0,
            lines_before: 0,
            columns: None,
            resolved: None,
            samples: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parses lines appended since the last call (the last line only when it
    /// is complete, or when `all`).
    pub fn poll(&mut self, all: bool) -> Result<usize, PowerError> {
        let io = |e: std::io::Error| PowerError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        // A FIFO or a device named as the log would block or never end.
        let (mut f, len) = crate::guard::open_regular(&self.path, "meter log").map_err(|e| {
            if e.is_missing() {
                PowerError::Unavailable {
                    source_name: "external".into(),
                    reason: format!(
                        "meter log {} does not exist (start the meter's logging first, or fix the path)",
                        self.path.display()
                    ),
                }
            } else {
                PowerError::malformed(&self.path, None, e.detail())
            }
        })?;
        if len < self.offset {
            return Err(PowerError::Io {
                path: self.path.clone(),
                reason: "the meter log shrank while it was followed (rotated or rewritten?)".into(),
            });
        }
        if len - self.offset > MAX_LOG_CHUNK {
            return Err(PowerError::malformed(
                &self.path,
                None,
                format!(
                    "{} new bytes since the last read, more than the {MAX_LOG_CHUNK} a meter \
                     writes in a run's window; is this the meter's log?",
                    len - self.offset
                ),
            ));
        }
        f.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        let mut buf = Vec::new();
        f.take(len - self.offset)
            .read_to_end(&mut buf)
            .map_err(io)?;
        let end = if all {
            buf.len()
        } else {
            buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
        };
        let chunk = &buf[..end];
        let before = self.samples.len();
        self.parse_chunk(chunk)?;
        self.offset += end as u64;
        self.lines_before += chunk.iter().filter(|&&b| b == b'\n').count();
        Ok(self.samples.len() - before)
    }

    fn parse_chunk(&mut self, chunk: &[u8]) -> Result<(), PowerError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .delimiter(self.format.delimiter as u8)
            .from_reader(chunk);
        let mut rec = csv::StringRecord::new();
        loop {
            let line = self.lines_before + rdr.position().line() as usize;
            match rdr.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    return Err(PowerError::malformed(
                        &self.path,
                        Some(format!("line {line}")),
                        format!("not delimited text: {e}"),
                    ))
                }
            }
            let line = self.lines_before + rec.position().map_or(line, |p| p.line() as usize);
            if rec.iter().all(|f| f.is_empty()) {
                continue;
            }
            if self.format.header && self.columns.is_none() {
                self.columns = Some(rec.iter().map(str::to_string).collect());
                continue;
            }
            let (ti, wi, vi, ai) = self.resolve(line)?;
            let field = |i: usize| rec.get(i).unwrap_or("");
            let bad = |what: &str, col: usize, hint: &str| {
                PowerError::malformed(
                    &self.path,
                    Some(format!("line {line}")),
                    format!("cannot read {what} {:?} (column {}){hint}", field(col), col),
                )
            };
            let t = self.format.time_format.seconds(field(ti)).ok_or_else(|| {
                bad(
                    "the time",
                    ti,
                    &format!(
                        " as time_format = {:?}; set time_format or the preset",
                        self.format.time_format.name()
                    ),
                )
            })?;
            let num = |i: usize, what: &str| {
                field(i)
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| bad(what, i, "; check the column settings"))
            };
            let watts = match wi {
                Some(w) => num(w, "watts")?,
                None => {
                    let v = num(vi.unwrap_or(0), "volts")?;
                    let a = num(ai.unwrap_or(0), "amps")?;
                    v * a * self.format.amps_scale
                }
            };
            if let Some(why) = super::plausible::implausible_watts(watts) {
                return Err(PowerError::malformed(
                    &self.path,
                    Some(format!("line {line}")),
                    format!("{why}; check the meter and the column settings"),
                ));
            }
            let t_s = t + self.format.clock_offset_s - self.run_start_unix_s;
            if let Some(last) = self.samples.last() {
                if t_s < last.t_s {
                    return Err(PowerError::malformed(
                        &self.path,
                        Some(format!("line {line}")),
                        "timestamps go backwards; a meter log must be in time order",
                    ));
                }
            }
            self.samples.push(MeterSample { t_s, watts });
        }
        Ok(())
    }

    fn resolve(&mut self, line: usize) -> Result<Columns, PowerError> {
        if let Some(r) = self.resolved {
            return Ok(r);
        }
        let find = |c: &Column| -> Result<usize, PowerError> {
            match c {
                Column::Index(i) => Ok(*i),
                Column::Name(n) => {
                    let cols = self.columns.as_deref().unwrap_or(&[]);
                    cols.iter().position(|h| h == n).ok_or_else(|| {
                        PowerError::malformed(
                            &self.path,
                            Some(format!("line {}", line.min(self.lines_before.max(1)))),
                            format!(
                                "no column {c} in the header ({}); choose the preset or set the columns",
                                cols.join(", ")
                            ),
                        )
                    })
                }
            }
        };
        let f = &self.format;
        let r = (
            find(&f.time_column)?,
            f.watts_column.as_ref().map(find).transpose()?,
            f.volts_column.as_ref().map(find).transpose()?,
            f.amps_column.as_ref().map(find).transpose()?,
        );
        self.resolved = Some(r);
        Ok(r)
    }

    /// Drops samples before `t_s` except the last one (kept for
    /// interpolation).
    pub fn forget_before(&mut self, t_s: f64) {
        let keep_from = self.samples.iter().rposition(|s| s.t_s <= t_s).unwrap_or(0);
        self.samples.drain(..keep_from);
    }
}

/// Energy of the window `[start_s, end_s]` from meter samples: trapezoids,
/// linearly interpolated at the edges. A window the log does not cover has
/// no energy and says why.
pub fn integrate(
    source: &str,
    samples: &[MeterSample],
    start_s: f64,
    end_s: f64,
    min_samples: usize,
) -> Window {
    let mut w = Window {
        source: source.to_string(),
        estimated: false,
        start_s,
        end_s,
        energy_j: None,
        mean_w: None,
        samples: Some(0),
        rails: Vec::new(),
        raw: Vec::new(),
        warnings: Vec::new(),
    };
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        w.warnings.push("the meter log has no readings".into());
        return w;
    };
    if first.t_s > start_s || last.t_s < end_s {
        w.warnings.push(format!(
            "the meter log covers {:.3}..{:.3} s of the run but the window is {start_s:.3}..{end_s:.3} s: no energy (check clock_offset_s, or that the meter ran the whole time)",
            first.t_s, last.t_s
        ));
        return w;
    }
    let at = |t: f64| -> f64 {
        let i = samples.partition_point(|s| s.t_s <= t);
        if i == 0 {
            return samples[0].watts;
        }
        if i >= samples.len() {
            return samples[samples.len() - 1].watts;
        }
        let (a, b) = (samples[i - 1], samples[i]);
        if b.t_s > a.t_s {
            a.watts + (b.watts - a.watts) * (t - a.t_s) / (b.t_s - a.t_s)
        } else {
            b.watts
        }
    };
    let inside: Vec<MeterSample> = samples
        .iter()
        .filter(|s| s.t_s >= start_s && s.t_s <= end_s)
        .copied()
        .collect();
    let mut pts = vec![(start_s, at(start_s))];
    pts.extend(inside.iter().map(|s| (s.t_s, s.watts)));
    pts.push((end_s, at(end_s)));
    let e = super::trapezoid(&pts);
    let dur = end_s - start_s;
    if !e.is_finite() {
        w.warnings.push(format!(
            "the meter's readings integrate to {e} J over the window: not recorded"
        ));
        return w;
    }
    w.energy_j = Some(e);
    w.mean_w = (dur > 0.0).then(|| e / dur);
    w.samples = Some(inside.len());
    w.rails = vec![super::RailEnergy {
        name: "meter".into(),
        energy_j: e,
        mean_w: w.mean_w.unwrap_or(0.0),
    }];
    w.raw = inside
        .iter()
        .map(|s| RawSample {
            t_s: s.t_s,
            rail: "meter".into(),
            watts: s.watts,
        })
        .collect();
    if inside.len() < min_samples {
        w.warnings.push(format!(
            "only {} meter reading(s) in the window (min_samples = {min_samples}): the energy is interpolated and uncertain; raise min_seconds or the meter's rate",
            inside.len()
        ));
    }
    w
}

/// The external source: follows a log live, or (no log) records only the
/// windows for `attach-power`.
pub struct ExternalSource {
    log: Option<PathBuf>,
    format: MeterFormat,
    follow_timeout: Duration,
    min_samples: usize,
    reader: Option<LogReader>,
    start_s: Option<f64>,
}

impl ExternalSource {
    pub fn new(
        log: Option<PathBuf>,
        format: MeterFormat,
        follow_timeout_s: f64,
        min_samples: usize,
    ) -> Result<ExternalSource, PowerError> {
        format.validate().map_err(PowerError::Config)?;
        if let Some(p) = &log {
            if !p.exists() {
                return Err(PowerError::Unavailable {
                    source_name: "external".into(),
                    reason: format!(
                        "meter log {} does not exist (start the meter's logging before the run, or fix `log`)",
                        p.display()
                    ),
                });
            }
        }
        Ok(ExternalSource {
            log,
            format,
            follow_timeout: Duration::from_secs_f64(follow_timeout_s.max(0.0)),
            min_samples,
            reader: None,
            start_s: None,
        })
    }
}

impl PowerSource for ExternalSource {
    fn name(&self) -> &str {
        "external"
    }

    fn estimated(&self) -> bool {
        false
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "source": "external",
            "estimated": false,
            "log": self.log.as_ref().map(|p| p.display().to_string()),
            "mode": if self.log.is_some() { "followed live" } else { "attach afterwards with joulebench attach-power" },
            "format": self.format,
            "rails": ["meter"],
            "total": ["meter"],
        })
    }

    fn start(&mut self, clock: &RunClock) -> Result<(), PowerError> {
        if let Some(p) = &self.log {
            if self.reader.is_none() {
                self.reader = Some(LogReader::new(
                    p,
                    self.format.clone(),
                    clock.run_start_unix_s(),
                )?);
            }
            if let Some(r) = &mut self.reader {
                r.poll(false)?;
            }
        }
        self.start_s = Some(clock.now_s());
        Ok(())
    }

    fn stop(&mut self, clock: &RunClock) -> Result<Window, PowerError> {
        let end_s = clock.now_s();
        let start_s = self.start_s.take().ok_or_else(|| {
            PowerError::Config("external power source stopped before it started".into())
        })?;
        let Some(reader) = &mut self.reader else {
            // Attached afterwards: the window alone is recorded.
            return Ok(Window {
                source: "external".into(),
                estimated: false,
                start_s,
                end_s,
                energy_j: None,
                mean_w: None,
                samples: None,
                rails: Vec::new(),
                raw: Vec::new(),
                warnings: Vec::new(),
            });
        };
        let waited = Instant::now();
        loop {
            reader.poll(false)?;
            if reader.samples.last().is_some_and(|s| s.t_s >= end_s)
                || waited.elapsed() >= self.follow_timeout
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let w = integrate(
            "external",
            &reader.samples,
            start_s,
            end_s,
            self.min_samples,
        );
        reader.forget_before(end_s);
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        assert_eq!(TimeFormat::Unix.seconds("12.5"), Some(12.5));
        assert_eq!(TimeFormat::UnixMs.seconds("12500"), Some(12.5));
        assert_eq!(
            TimeFormat::Iso.seconds("1970-01-01 00:00:10.250000"),
            Some(10.25)
        );
        assert_eq!(TimeFormat::Iso.seconds("1970-01-01T00:00:10"), Some(10.0));
        assert_eq!(
            TimeFormat::Iso.seconds("1970-01-01T01:00:10+01:00"),
            Some(10.0)
        );
        let p = TimeFormat::parse("%m-%d-%Y %H:%M:%S%.f").unwrap();
        assert_eq!(p.seconds("01-01-1970 00:00:02.500"), Some(2.5));
        assert_eq!(TimeFormat::Unix.seconds("soon"), None);
    }

    #[test]
    fn integration_interpolates_at_the_window_edges() {
        let s = |t, w| MeterSample { t_s: t, watts: w };
        let samples = vec![s(0.0, 0.0), s(10.0, 10.0)];
        // P = t on [2, 4]: 6 J
        let w = integrate("m", &samples, 2.0, 4.0, 1);
        assert!((w.energy_j.unwrap() - 6.0).abs() < 1e-12);
        assert_eq!(w.samples, Some(0));
        assert!(w.warnings[0].contains("only 0 meter reading"));
        let w = integrate("m", &samples, 5.0, 11.0, 1);
        assert_eq!(w.energy_j, None);
        assert!(
            w.warnings[0].contains("covers 0.000..10.000"),
            "{:?}",
            w.warnings
        );
    }
}
