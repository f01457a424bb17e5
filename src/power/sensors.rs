//! `joulebench sensors`: every power source found, its rails and a live
//! reading, the total it would use, and why the others are absent.

use super::counters::{CounterStatus, Counters};
use super::{hwmon, PowerConfig, PowerSource, RunClock, SourceKind, Sysfs};
use serde::Serialize;
use std::fmt::Write;
use std::time::Duration;

/// One rail's live reading.
#[derive(Clone, Debug, Serialize)]
pub struct RailReading {
    pub name: String,
    pub watts: f64,
}

/// One source as found (or not) on this machine.
#[derive(Clone, Debug, Serialize)]
pub struct SourceReport {
    pub source: String,
    /// The suite setting that selects it.
    pub setting: String,
    pub found: bool,
    pub estimated: bool,
    pub rails: Vec<RailReading>,
    /// The rails the total is made of.
    pub total_rails: Vec<String>,
    pub total_w: Option<f64>,
    pub notes: Vec<String>,
    /// Why it is absent, or why it could not be read.
    pub reason: Option<String>,
}

/// Everything `sensors` reports.
#[derive(Clone, Debug, Serialize)]
pub struct SensorsReport {
    pub sysfs_root: String,
    pub sources: Vec<SourceReport>,
    pub counters: CounterStatus,
    /// The suite setting for the best source found.
    pub suggested: String,
    /// The source `power = "auto"` would use here (or why it would fail).
    pub auto_picks: String,
}

fn absent(source: &str, setting: &str, reason: String) -> SourceReport {
    SourceReport {
        source: source.into(),
        setting: setting.into(),
        found: false,
        estimated: false,
        rails: Vec::new(),
        total_rails: Vec::new(),
        total_w: None,
        notes: Vec::new(),
        reason: Some(reason),
    }
}

fn live(cfg: &PowerConfig, sysfs: &Sysfs, setting: String, seconds: f64) -> SourceReport {
    let name = cfg.source.name();
    let mut src: Box<dyn PowerSource> = match cfg.build(sysfs) {
        Ok(Some(s)) => s,
        Ok(None) => return absent(name, &setting, "no source".into()),
        Err(e) => return absent(name, &setting, e.to_string()),
    };
    let desc = src.describe();
    let notes: Vec<String> = desc["notes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let total_rails: Vec<String> = desc["total"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let clock = RunClock::start();
    let reading = src.start(&clock).and_then(|_| {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        src.stop(&clock)
    });
    match reading {
        // Readings that cannot be right: not a source to suggest.
        Ok(w) if w.mean_w.is_none() && !w.warnings.is_empty() => SourceReport {
            found: true,
            reason: Some(format!(
                "found but its readings cannot be right: {}",
                w.warnings.join("; ")
            )),
            ..absent(name, &setting, String::new())
        },
        Ok(w) => SourceReport {
            source: name.into(),
            setting,
            found: true,
            estimated: w.estimated,
            rails: w
                .rails
                .iter()
                .map(|r| RailReading {
                    name: r.name.clone(),
                    watts: r.mean_w,
                })
                .collect(),
            total_rails,
            total_w: w.mean_w,
            notes,
            reason: None,
        },
        Err(e) => SourceReport {
            found: true,
            reason: Some(format!("found but not readable: {e}")),
            ..absent(name, &setting, String::new())
        },
    }
}

/// Looks for every source below `sysfs` (pi5 through `vcgencmd`), reading
/// each for `seconds`.
pub fn discover(sysfs: &Sysfs, vcgencmd: &str, seconds: f64) -> SensorsReport {
    let mut sources = Vec::new();
    let cfg = |k: SourceKind| {
        let mut c = PowerConfig::named(k);
        c.rate_hz = Some(if k == SourceKind::Pi5 { 0.0 } else { 20.0 });
        c.min_samples = 1;
        c.command = vcgencmd.to_string();
        c
    };
    sources.push(live(
        &cfg(SourceKind::Rapl),
        sysfs,
        "power = \"rapl\"".into(),
        seconds,
    ));
    // hwmon: one entry per kind of device that reports power.
    let mut kinds: Vec<String> = hwmon::class_devices(sysfs)
        .into_iter()
        .filter(|d| !d.channels.is_empty())
        .map(|d| d.name)
        .collect();
    kinds.sort();
    kinds.dedup();
    if kinds.is_empty() {
        let c = cfg(SourceKind::Hwmon);
        sources.push(live(&c, sysfs, "power = \"hwmon\"".into(), seconds));
    }
    for k in kinds {
        let mut c = cfg(SourceKind::Hwmon);
        c.device = Some(k.clone());
        let setting = format!("power = {{ source = \"hwmon\", device = \"{k}\" }}");
        sources.push(live(&c, sysfs, setting, seconds));
    }
    sources.push(live(
        &cfg(SourceKind::Ina3221),
        sysfs,
        "power = \"ina3221\"".into(),
        seconds,
    ));
    let mut pi5 = live(
        &cfg(SourceKind::Pi5),
        sysfs,
        "power = \"pi5\"".into(),
        seconds,
    );
    if vcgencmd != "vcgencmd" {
        pi5.setting = format!("power = {{ source = \"pi5\", command = \"{vcgencmd}\" }}");
    }
    sources.push(pi5);
    sources.push(absent(
        "external",
        "power = { source = \"external\", log = \"meter.csv\", preset = \"...\" }",
        "not detected automatically: follow a meter's log live with source = \"external\", or attach it afterwards with `joulebench attach-power RESULTS_DIR METER_LOG`".into(),
    ));
    let mut est = live(
        &cfg(SourceKind::Estimate),
        sysfs,
        "power = \"estimate\"".into(),
        seconds,
    );
    est.notes.push(
        "an estimate, not a measurement: idle watts + per-core watts x CPU time (coefficients in the suite)".into(),
    );
    sources.push(est);
    let suggested = sources
        .iter()
        .find(|s| s.found && s.reason.is_none() && !s.estimated)
        .or_else(|| sources.iter().find(|s| s.source == "estimate"))
        .map_or_else(|| "power = \"none\"".into(), |s| s.setting.clone());
    let mut auto = cfg(SourceKind::Auto);
    auto.rate_hz = None;
    let auto_picks = match auto.build(sysfs) {
        Ok(Some(s)) => s.describe()["source"].as_str().unwrap_or("?").to_string(),
        Ok(None) => "nothing".into(),
        Err(e) => format!("nothing: {e}"),
    };
    SensorsReport {
        sysfs_root: sysfs.root().display().to_string(),
        sources,
        counters: Counters::probe().status().clone(),
        suggested,
        auto_picks,
    }
}

impl SensorsReport {
    /// The human table.
    pub fn table(&self) -> String {
        let mut s = format!("power sources (sysfs root {}):\n", self.sysfs_root);
        for src in &self.sources {
            let state = match (src.found, &src.reason, src.estimated) {
                (true, None, true) => "estimate",
                (true, None, false) => "found",
                (true, Some(_), _) => "unreadable",
                (false, _, _) => "absent",
            };
            let total = src
                .total_w
                .map_or(String::new(), |w| format!("total {w:.2} W"));
            let _ = write!(s, "  {:<9} {:<10} {}", src.source, state, total);
            if !src.total_rails.is_empty() && src.total_w.is_some() {
                let _ = write!(s, " ({})", src.total_rails.join(" + "));
            }
            if let Some(r) = &src.reason {
                let _ = write!(s, "{r}");
            }
            s.push('\n');
            for r in &src.rails {
                let _ = writeln!(s, "      {:<24} {:>9.3} W", r.name, r.watts);
            }
            for n in &src.notes {
                let _ = writeln!(s, "      note: {n}");
            }
            if src.found && src.reason.is_none() {
                let _ = writeln!(s, "      suite: {}", src.setting);
            }
        }
        let _ = writeln!(
            s,
            "counters (perf_event_paranoid {}): {}",
            self.counters
                .perf_event_paranoid
                .map_or("unknown".into(), |p| p.to_string()),
            self.counters.summary
        );
        // One line per distinct reason.
        let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
        for (n, why) in &self.counters.unavailable {
            match reasons.iter_mut().find(|(w, _)| w == why) {
                Some((_, names)) => names.push(n),
                None => reasons.push((why, vec![n])),
            }
        }
        for (why, names) in reasons {
            let _ = writeln!(s, "  not available: {}: {why}", names.join(", "));
        }
        let _ = writeln!(s, "suggested suite setting: {}", self.suggested);
        let _ = writeln!(s, "power = \"auto\" would use: {}", self.auto_picks);
        s
    }
}
