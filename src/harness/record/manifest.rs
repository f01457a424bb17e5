//! manifest.json: what a run was — the suite and its text, the build, the
//! machine, the clock of its windows, its power sources with their idle
//! power, the counters and conditions it could read, and what was recorded.
//! [`Manifest`] is the only definition of the file: `run` writes it (and
//! rewrites it as the run goes), `--resume`, `attach-power`, `report` and the
//! figures read it back. Every field may be missing (files of older versions
//! lack the later ones) and fields this version does not know are kept as
//! they were when the file is rewritten.
//!
//! Parts that other modules describe in their own terms (detected caches,
//! a power source's description, counter and condition availability, the
//! suite's power settings) stay JSON values: they are written for people and
//! only shown again, never interpreted.

use crate::harness::machine::MachineInfo;
use crate::harness::HarnessError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// The contents of manifest.json.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    pub suite: String,
    pub suite_file: String,
    /// SHA-256 of the suite file: `--resume` and `merge` refuse another suite.
    pub suite_hash: String,
    /// The suite file's text.
    pub suite_text: String,
    pub joulebench_version: String,
    pub git_revision: Option<String>,
    /// The micro-kernel the run used.
    pub kernel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_cache_config: Option<Blocking>,
    /// The caches as the engine detected them.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub caches: Value,
    /// `i/n` when run with `--shard i/n`.
    pub shard: Option<String>,
    pub points_total: Option<usize>,
    pub points_selected: Option<usize>,
    pub started_utc: Option<String>,
    /// When the run was continued with `--resume`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resumed_utc: Vec<String>,
    pub machine: Option<MachineInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock: Option<Clock>,
    /// Which conditions (frequency, temperature, throttling) could be read.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub conditions: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_modes: Option<PowerModes>,
    /// One entry per distinct power setting of the suite.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub power: Vec<PowerEntry>,
    /// What counting was possible.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub counters: Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolved_cache_configs: Vec<PointBlocking>,
    pub points_recorded: Option<usize>,
    /// `null` while running and when interrupted.
    pub finished_utc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_power: Option<AttachedPower>,
    /// Fields this version does not know, kept as they were.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// GEMM cache blocking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Blocking {
    pub mc: usize,
    pub nc: usize,
    pub kc: usize,
}

/// The blocking a point ran with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PointBlocking {
    pub point: String,
    pub mc: usize,
    pub nc: usize,
    pub kc: usize,
}

/// The run's clock: `window_start_s`, `window_end_s` (results.csv) and `t_s`
/// (power.csv) are seconds since `run_start_unix_s`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Clock {
    pub run_start_unix_s: f64,
    pub note: String,
}

/// The suite's `[power_modes]` and how they are restored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PowerModes {
    pub settings: Value,
    /// The file (in the run directory) holding the state found at start.
    pub saved_state: String,
    pub note: String,
}

/// A power setting of the suite, its source and its idle power.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PowerEntry {
    /// The suite's power settings (`source`, `rate_hz`, `meter`, ...).
    pub config: Value,
    /// The source's rails and how the total is formed.
    pub description: Value,
    /// `null` when idle power was neither measured nor known.
    pub idle: Option<Idle>,
}

/// Idle power: measured over a window, or the source's own figure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Idle {
    pub watts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The measured window on the run's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_s: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
    /// The source's figure, not a measurement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated: Option<bool>,
}

/// What `attach-power` did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachedPower {
    pub log: String,
    /// The meter log's layout.
    pub format: Value,
    pub idle_watts: Option<f64>,
    pub attached_utc: String,
    pub rows_attached: usize,
}

impl PowerEntry {
    /// The source named in the settings (`rapl`, `external`, ...).
    pub fn source(&self) -> Option<&str> {
        self.config.get("source").and_then(Value::as_str)
    }
}

impl Manifest {
    /// Reads `path`; a file that is not a manifest is an error naming it.
    pub fn read(path: &Path) -> Result<Manifest, HarnessError> {
        let bad = |reason: String| HarnessError::Records {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad(format!(
                "cannot read: {e}; give a run directory (results/<suite>/<timestamp>)"
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| bad(format!("not a joulebench manifest: {e}")))
    }

    /// Writes `path` whole (via a temporary file and rename), so a crash
    /// leaves the old or the new manifest, never half of one.
    pub fn write(&self, path: &Path) -> Result<(), HarnessError> {
        let io = |e: String| HarnessError::Io {
            path: path.to_path_buf(),
            reason: e,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| io(e.to_string()))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n")
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| io(e.to_string()))
    }

    /// The start of the run's clock, when it kept one.
    pub fn run_start_unix_s(&self) -> Option<f64> {
        self.clock
            .as_ref()
            .map(|c| c.run_start_unix_s)
            .filter(|t| t.is_finite())
    }

    /// The entry of a power setting (compared as written).
    pub fn power_entry(&self, config: &Value) -> Option<&PowerEntry> {
        self.power.iter().find(|e| e.config == *config)
    }

    /// The idle window measured for an external meter, if any.
    pub fn external_idle_window(&self) -> Option<(f64, f64)> {
        self.power.iter().find_map(|e| {
            (e.source() == Some("external"))
                .then(|| e.idle.as_ref()?.window_s)
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_rewrite_and_missing_ones_default() {
        let text = r#"{"suite": "s", "suite_hash": "abc", "from_the_future": {"x": 1},
            "power": [{"config": {"source": "external"}, "description": {},
                       "idle": {"watts": 2.5, "window_s": [1.0, 3.0], "samples": 20, "warnings": []}}],
            "machine": {"host": "h", "logical_cores": 4, "brand_new": true}}"#;
        let m: Manifest = serde_json::from_str(text).unwrap();
        assert_eq!(m.suite_hash, "abc");
        assert_eq!(m.clock, None);
        assert_eq!(m.run_start_unix_s(), None);
        assert_eq!(m.external_idle_window(), Some((1.0, 3.0)));
        assert_eq!(m.machine.as_ref().unwrap().logical_cores, 4);
        assert_eq!(m.other["from_the_future"]["x"], 1);
        let back: Value = serde_json::to_value(&m).unwrap();
        assert_eq!(back["from_the_future"]["x"], 1);
        assert_eq!(back["power"][0]["idle"]["samples"], 20);
        let again: Manifest = serde_json::from_value(back).unwrap();
        assert_eq!(again, m);
    }
}
