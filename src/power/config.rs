//! Power settings of a suite and building the source they name.

use super::external::{ExternalSource, MeterFormat};
use super::{estimate, hwmon, pi5, rapl, PowerError, PowerSource, Sysfs};
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Which power source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    None,
    Rapl,
    Hwmon,
    Ina3221,
    Pi5,
    External,
    Estimate,
    /// The first of [`AUTO_ORDER`] that opens here, else the estimate.
    Auto,
}

/// What `power = "auto"` tries, in order, before falling back to the
/// estimate: measured sources only (an external meter needs its log named).
pub const AUTO_ORDER: [SourceKind; 4] = [
    SourceKind::Rapl,
    SourceKind::Ina3221,
    SourceKind::Hwmon,
    SourceKind::Pi5,
];

impl SourceKind {
    pub const ALL: [SourceKind; 8] = [
        SourceKind::None,
        SourceKind::Rapl,
        SourceKind::Hwmon,
        SourceKind::Ina3221,
        SourceKind::Pi5,
        SourceKind::External,
        SourceKind::Estimate,
        SourceKind::Auto,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SourceKind::None => "none",
            SourceKind::Rapl => "rapl",
            SourceKind::Hwmon => "hwmon",
            SourceKind::Ina3221 => "ina3221",
            SourceKind::Pi5 => "pi5",
            SourceKind::External => "external",
            SourceKind::Estimate => "estimate",
            SourceKind::Auto => "auto",
        }
    }

    /// Settings that apply to this source (beyond the common ones).
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            SourceKind::None => &[],
            SourceKind::Rapl => &["zones"],
            SourceKind::Hwmon => &["device", "rails", "input_rails"],
            SourceKind::Ina3221 => &["rails", "input_rails"],
            SourceKind::Pi5 => &["command"],
            SourceKind::External => &[
                "log",
                "preset",
                "delimiter",
                "header",
                "time_column",
                "time_format",
                "watts_column",
                "volts_column",
                "amps_column",
                "amps_scale",
                "clock_offset_s",
                "follow_timeout_s",
            ],
            SourceKind::Estimate => &["idle_watts", "core_watts"],
            // The estimate's coefficients, for when it is the fallback.
            SourceKind::Auto => &["idle_watts", "core_watts"],
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SourceKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!(
                    "power source `{s}` is not known; use {}",
                    SourceKind::ALL.map(|k| k.name()).join(", ")
                )
            })
    }
}

/// Common settings every source has.
pub const COMMON_KEYS: &[&str] = &["source", "rate_hz", "idle_seconds", "min_samples"];

/// Default seconds of idle measurement per suite.
pub const DEFAULT_IDLE_SECONDS: f64 = 5.0;
/// Default fewest samples of an integrated window before it is flagged.
pub const DEFAULT_MIN_SAMPLES: usize = 5;
/// Input rails recognised by name on Jetson boards.
pub const DEFAULT_INPUT_RAILS: &[&str] = &["VDD_IN", "POM_5V_IN"];

/// A suite's power settings (`power = "rapl"` or a `[defaults.power]` table).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PowerConfig {
    pub source: SourceKind,
    /// Sampling rate; `None`: the source's default (10 Hz for sysfs, back to
    /// back for vcgencmd).
    pub rate_hz: Option<f64>,
    /// Idle power is measured this long once per suite (0: not measured).
    pub idle_seconds: f64,
    /// An integrated window with fewer samples is flagged in its row.
    pub min_samples: usize,
    /// rapl: zones by name (`package-0`, `package-0/dram`, `psys`); empty:
    /// every package zone plus dram zones.
    pub zones: Vec<String>,
    /// hwmon: the device's `name` (e.g. `ina3221`, `ina219`).
    pub device: Option<String>,
    /// hwmon/ina3221: only these rails (labels).
    pub rails: Vec<String>,
    /// hwmon/ina3221: rails that feed the whole board; when one is present
    /// it alone is the total.
    pub input_rails: Vec<String>,
    /// pi5: the vcgencmd program.
    pub command: String,
    /// external: the meter log followed live; `None`: attached afterwards
    /// with `joulebench attach-power`.
    pub log: Option<PathBuf>,
    pub meter: MeterFormat,
    /// external: how long to wait for the log to reach a window's end.
    pub follow_timeout_s: f64,
    /// estimate: watts of the idle machine (default: 0.47 W per logical CPU).
    pub idle_watts: Option<f64>,
    /// estimate: watts per fully busy core above idle.
    pub core_watts: f64,
}

impl Default for PowerConfig {
    fn default() -> Self {
        PowerConfig::named(SourceKind::None)
    }
}

impl PowerConfig {
    /// A source with every setting at its default.
    pub fn named(source: SourceKind) -> PowerConfig {
        PowerConfig {
            source,
            rate_hz: None,
            idle_seconds: if source == SourceKind::None {
                0.0
            } else {
                DEFAULT_IDLE_SECONDS
            },
            min_samples: DEFAULT_MIN_SAMPLES,
            zones: Vec::new(),
            device: None,
            rails: Vec::new(),
            input_rails: DEFAULT_INPUT_RAILS.iter().map(|s| s.to_string()).collect(),
            command: "vcgencmd".into(),
            log: None,
            meter: MeterFormat::default(),
            follow_timeout_s: 5.0,
            idle_watts: None,
            core_watts: estimate::DEFAULT_CORE_WATTS,
        }
    }

    /// The sampling rate in Hz (0: back to back).
    pub fn effective_rate_hz(&self) -> f64 {
        self.rate_hz.unwrap_or(match self.source {
            SourceKind::Pi5 => 0.0,
            _ => super::DEFAULT_SYSFS_HZ,
        })
    }

    /// Builds the source on this machine (below `sysfs`); `None` for `none`.
    pub fn build(&self, sysfs: &Sysfs) -> Result<Option<Box<dyn PowerSource>>, PowerError> {
        let rate = self.effective_rate_hz();
        Ok(Some(match self.source {
            SourceKind::None => return Ok(None),
            SourceKind::Rapl => Box::new(rapl::open(sysfs, &self.zones, rate, self.min_samples)?),
            SourceKind::Hwmon => Box::new(hwmon::open_hwmon(
                sysfs,
                self.device.as_deref(),
                &self.rails,
                &self.input_rails,
                rate,
                self.min_samples,
            )?),
            SourceKind::Ina3221 => Box::new(hwmon::open_ina3221(
                sysfs,
                &self.rails,
                &self.input_rails,
                rate,
                self.min_samples,
            )?),
            SourceKind::Pi5 => Box::new(pi5::open(&self.command, rate, self.min_samples)?),
            SourceKind::External => Box::new(ExternalSource::new(
                self.log.clone(),
                self.meter.clone(),
                self.follow_timeout_s,
                self.min_samples,
            )?),
            SourceKind::Estimate => {
                Box::new(estimate::Estimate::new(self.idle_watts, self.core_watts)?)
            }
            SourceKind::Auto => return self.build_auto(sysfs).map(Some),
        }))
    }

    /// `auto`: the first measured source that opens, each with its own
    /// default rate unless the suite set one, else the labelled estimate.
    fn build_auto(&self, sysfs: &Sysfs) -> Result<Box<dyn PowerSource>, PowerError> {
        for kind in AUTO_ORDER.into_iter().chain([SourceKind::Estimate]) {
            let mut c = self.clone();
            c.source = kind;
            // hwmon refuses to guess between several power devices; auto
            // takes them by name, in order, so the choice is repeatable.
            let devices = if kind == SourceKind::Hwmon {
                let mut names: Vec<String> = hwmon::class_devices(sysfs)
                    .into_iter()
                    .filter(|d| !d.channels.is_empty())
                    .map(|d| d.name)
                    .collect();
                names.sort();
                names.dedup();
                names.into_iter().map(Some).collect()
            } else {
                vec![None]
            };
            for device in devices {
                if device.is_some() {
                    c.device = device;
                }
                match c.build(sysfs) {
                    Ok(Some(s)) => return Ok(s),
                    Ok(None) => {}
                    Err(e) if kind == SourceKind::Estimate => return Err(e),
                    Err(_) => {}
                }
            }
        }
        Err(PowerError::Config(
            "no power source, not even the estimate".into(),
        ))
    }
}
