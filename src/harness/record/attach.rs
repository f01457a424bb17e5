//! `joulebench attach-power`: fills the energy columns of a recorded run
//! from a power meter's log, by the windows the run recorded.

use crate::harness::record::io::{self as csvio};
use crate::harness::record::manifest::{AttachedPower, Manifest};
use crate::harness::record::rows::{PowerRow, ResultRow};
use crate::harness::HarnessError;
use crate::power::external::{integrate, LogReader, MeterFormat};
use crate::power::{self, PowerError};
use std::path::Path;

/// What `attach-power` did.
#[derive(Clone, Debug)]
pub struct AttachOutcome {
    pub rows: usize,
    pub attached: usize,
    /// Points whose window the log does not cover, with the reason.
    pub uncovered: Vec<(String, String)>,
    /// Points measured by another source, left alone.
    pub skipped: Vec<(String, String)>,
    pub idle_w: Option<f64>,
}

fn bad(path: &Path, reason: String) -> HarnessError {
    HarnessError::Records {
        path: path.to_path_buf(),
        reason,
    }
}

/// The meter format the run was set up with (`source = "external"` in the
/// suite), if any.
pub fn recorded_format(dir: &Path) -> Option<MeterFormat> {
    let m = Manifest::read(&dir.join("manifest.json")).ok()?;
    m.power.iter().find_map(|e| {
        if e.source() != Some("external") {
            return None;
        }
        format_from_json(e.config.get("meter")?)
    })
}

fn format_from_json(v: &serde_json::Value) -> Option<MeterFormat> {
    use crate::power::external::{Column, TimeFormat};
    let col = |c: &serde_json::Value| -> Option<Column> {
        match c {
            serde_json::Value::String(s) => Some(Column::Name(s.clone())),
            serde_json::Value::Number(n) => n.as_u64().map(|i| Column::Index(i as usize)),
            _ => None,
        }
    };
    let tf = match &v["time_format"] {
        serde_json::Value::String(s) => TimeFormat::parse(s)?,
        serde_json::Value::Object(o) => {
            TimeFormat::Pattern(o.get("pattern")?.as_str()?.to_string())
        }
        _ => return None,
    };
    Some(MeterFormat {
        preset: v["preset"].as_str()?.to_string(),
        delimiter: v["delimiter"].as_str()?.chars().next()?,
        header: v["header"].as_bool()?,
        time_column: col(&v["time_column"])?,
        time_format: tf,
        watts_column: col(&v["watts_column"]),
        volts_column: col(&v["volts_column"]),
        amps_column: col(&v["amps_column"]),
        amps_scale: v["amps_scale"].as_f64()?,
        clock_offset_s: v["clock_offset_s"].as_f64()?,
    })
}

/// Attaches the meter log `log` (read with `format`) to the run in `dir`.
pub fn attach_power(
    dir: &Path,
    log: &Path,
    format: MeterFormat,
    min_samples: usize,
) -> Result<AttachOutcome, HarnessError> {
    let manifest_path = dir.join("manifest.json");
    let mut manifest = Manifest::read(&manifest_path)?;
    let run_start = manifest.run_start_unix_s().ok_or_else(|| {
        bad(
            &manifest_path,
            "no clock.run_start_unix_s: this run was recorded before joulebench kept measured windows, so a meter log cannot be aligned to it".into(),
        )
    })?;
    let results_path = dir.join("results.csv");
    let mut rows: Vec<ResultRow> = csvio::read_rows(&results_path)?;
    let perr = |source: PowerError| HarnessError::Power {
        context: format!("meter log {}", log.display()),
        source,
    };
    let mut reader = LogReader::new(log, format.clone(), run_start).map_err(perr)?;
    reader.poll(true).map_err(perr)?;
    let samples = reader.samples.clone();

    // Idle power over the idle window the run recorded for an external source.
    let idle_w = manifest
        .external_idle_window()
        .and_then(|(a, b)| integrate("external", &samples, a, b, 1).mean_w);

    let mut out = AttachOutcome {
        rows: rows.len(),
        attached: 0,
        uncovered: Vec::new(),
        skipped: Vec::new(),
        idle_w,
    };
    let mut raw: Vec<PowerRow> = Vec::new();
    let mut attached_points = Vec::new();
    for r in &mut rows {
        let (Some(a), Some(b)) = (r.window_start_s, r.window_end_s) else {
            out.uncovered
                .push((r.point.clone(), "no recorded window".into()));
            continue;
        };
        if !matches!(r.power_source.as_str(), "" | "none" | "external") {
            out.skipped
                .push((r.point.clone(), format!("measured by {}", r.power_source)));
            continue;
        }
        let w = integrate("external", &samples, a, b, min_samples);
        if w.energy_j.is_none() {
            out.uncovered.push((r.point.clone(), w.warnings.join("; ")));
            continue;
        }
        let f = power::figures(&w, idle_w, r.iterations * r.batch);
        r.set_power("external", Some(false), w.samples, &f);
        for warn in &w.warnings {
            if !r.warnings.contains(warn.as_str()) {
                if !r.warnings.is_empty() {
                    r.warnings.push_str("; ");
                }
                r.warnings.push_str(warn);
            }
        }
        raw.extend(w.raw.iter().map(|s| PowerRow {
            point: r.point.clone(),
            repetition: r.repetition,
            t_s: s.t_s,
            rail: s.rail.clone(),
            watts: s.watts,
        }));
        attached_points.push(r.point.clone());
        out.attached += 1;
    }
    csvio::rewrite(&results_path, &rows)?;
    let power_path = dir.join("power.csv");
    let mut all: Vec<PowerRow> = if power_path.exists() {
        csvio::read_rows::<PowerRow>(&power_path)?
            .into_iter()
            .filter(|p| !(p.rail == "meter" && attached_points.contains(&p.point)))
            .collect()
    } else {
        Vec::new()
    };
    all.extend(raw);
    csvio::rewrite(&power_path, &all)?;
    manifest.attached_power = Some(AttachedPower {
        log: log.display().to_string(),
        format: serde_json::to_value(&format).unwrap_or_default(),
        idle_watts: idle_w,
        attached_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        rows_attached: out.attached,
    });
    manifest.write(&manifest_path)?;
    Ok(out)
}

/// A column argument: a number is a 0-based position, anything else a name.
pub fn column_arg(s: &str) -> crate::power::external::Column {
    use crate::power::external::Column;
    match s.parse::<usize>() {
        Ok(i) => Column::Index(i),
        Err(_) => Column::Name(s.to_string()),
    }
}
