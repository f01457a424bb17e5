//! hwmon power sensors, and the Jetson INA3221 in both of its layouts.
//!
//! - Any `/sys/class/hwmon/hwmon*` device with `power*_input` or
//!   `power*_average` (µW), `energy*_input` (µJ), or labelled `in*_input`
//!   (mV) and `curr*_input` (mA) pairs (P = V·I). Devices are matched by
//!   their `name` and channels by their labels, never by the hwmonN number
//!   (it changes between boots). A V·I pair needs a label: unlabelled
//!   indexes need not belong together (the INA3221's in4..in7 are shunt
//!   voltages).
//! - Jetson INA3221, L4T 34 and later:
//!   `/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/` with `in*_label` such as
//!   `VDD_IN`, `VDD_CPU_GPU_CV`, `VDD_SOC` (AGX Orin has no `VDD_IN`).
//! - Jetson INA3221, older L4T (iio):
//!   `/sys/bus/i2c/drivers/ina3221x/*/iio:device*/` with `rail_name_k` and
//!   `in_power{k}_input` in mW.
//!
//! The total is the input rail (`VDD_IN`, `POM_5V_IN`, configurable) when one
//! exists, otherwise the sum of the rails, never both. `NC` channels (not
//! connected) are skipped.

use super::{PowerError, Probe, Rail, RailKind, Sampled, Sysfs};
use std::path::{Path, PathBuf};

/// How a channel is read.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// µW.
    PowerMicrowatts(PathBuf),
    /// mW (iio).
    PowerMilliwatts(PathBuf),
    /// µJ, cumulative.
    EnergyMicrojoules(PathBuf),
    /// mV and mA.
    VoltsAmps(PathBuf, PathBuf),
}

/// One channel of a device.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    pub label: String,
    pub reading: Reading,
}

/// A sensor device and its power-capable channels.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    /// The driver's `name` (`ina3221`, `ina219`, `amdgpu`, ...).
    pub name: String,
    pub dir: PathBuf,
    pub channels: Vec<Channel>,
}

const HINT: &str =
    "make the sensor readable (some hwmon files are root-only: run as root or chmod a+r the file)";

fn read_opt(sysfs: &Sysfs, p: &Path) -> Option<String> {
    sysfs.read(p).ok().filter(|s| !s.is_empty())
}

/// The channel indexes of files `<prefix><N>_<suffix>` in `dir`.
fn indexes(files: &[String], prefix: &str, suffix: &str) -> Vec<u32> {
    let mut v: Vec<u32> = files
        .iter()
        .filter_map(|f| {
            f.strip_prefix(prefix)?
                .strip_suffix(suffix)?
                .parse::<u32>()
                .ok()
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn file_names(sysfs: &Sysfs, dir: &Path) -> Vec<String> {
    sysfs
        .list(dir)
        .into_iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect()
}

fn usable(label: &str) -> bool {
    !label.eq_ignore_ascii_case("NC")
}

/// The power channels of one hwmon directory (attributes in `dir`, or in
/// `dir/device` for old drivers).
pub fn hwmon_device(sysfs: &Sysfs, dir: &Path) -> Option<Device> {
    let dir = if dir.join("name").exists() {
        dir.to_path_buf()
    } else if dir.join("device/name").exists() {
        dir.join("device")
    } else {
        return None;
    };
    let name = read_opt(sysfs, &dir.join("name"))?;
    let files = file_names(sysfs, &dir);
    let label = |kind: &str, n: u32| read_opt(sysfs, &dir.join(format!("{kind}{n}_label")));
    let enabled = |kind: &str, n: u32| {
        read_opt(sysfs, &dir.join(format!("{kind}{n}_enable"))).is_none_or(|v| v != "0")
    };
    let mut channels = Vec::new();
    let mut power_idx = Vec::new();
    for n in indexes(&files, "power", "_input")
        .into_iter()
        .chain(indexes(&files, "power", "_average"))
    {
        if power_idx.contains(&n) {
            continue;
        }
        let input = dir.join(format!("power{n}_input"));
        let path = if input.exists() {
            input
        } else {
            dir.join(format!("power{n}_average"))
        };
        let l = label("power", n).unwrap_or_else(|| format!("{name}:power{n}"));
        if usable(&l) && enabled("power", n) {
            channels.push(Channel {
                label: l,
                reading: Reading::PowerMicrowatts(path),
            });
        }
        power_idx.push(n);
    }
    for n in indexes(&files, "energy", "_input") {
        let l = label("energy", n).unwrap_or_else(|| format!("{name}:energy{n}"));
        if usable(&l) && enabled("energy", n) {
            channels.push(Channel {
                label: l,
                reading: Reading::EnergyMicrojoules(dir.join(format!("energy{n}_input"))),
            });
        }
    }
    let currents = indexes(&files, "curr", "_input");
    for n in indexes(&files, "in", "_input") {
        if !currents.contains(&n) || power_idx.contains(&n) {
            continue;
        }
        let Some(l) = label("in", n).or_else(|| label("curr", n)) else {
            continue;
        };
        if usable(&l) && enabled("in", n) {
            channels.push(Channel {
                label: l,
                reading: Reading::VoltsAmps(
                    dir.join(format!("in{n}_input")),
                    dir.join(format!("curr{n}_input")),
                ),
            });
        }
    }
    Some(Device {
        name,
        dir,
        channels,
    })
}

/// Every device under `/sys/class/hwmon` (with or without power channels).
pub fn class_devices(sysfs: &Sysfs) -> Vec<Device> {
    sysfs
        .list(&sysfs.path("/sys/class/hwmon"))
        .iter()
        .filter_map(|d| hwmon_device(sysfs, d))
        .collect()
}

/// Jetson INA3221, L4T 34+: `/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*`.
pub fn ina3221_hwmon_devices(sysfs: &Sysfs) -> Vec<Device> {
    let mut out = Vec::new();
    for i2c in sysfs.list(&sysfs.path("/sys/bus/i2c/drivers/ina3221")) {
        for h in sysfs.list(&i2c.join("hwmon")) {
            if let Some(d) = hwmon_device(sysfs, &h) {
                out.push(d);
            }
        }
    }
    out
}

/// Jetson INA3221, older L4T: `/sys/bus/i2c/drivers/ina3221x/*/iio:device*`.
pub fn ina3221_iio_devices(sysfs: &Sysfs) -> Vec<Device> {
    let mut out = Vec::new();
    for i2c in sysfs.list(&sysfs.path("/sys/bus/i2c/drivers/ina3221x")) {
        for dev in sysfs.list(&i2c) {
            let is_iio = dev
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("iio:device"));
            if !is_iio {
                continue;
            }
            let files = file_names(sysfs, &dev);
            let mut channels = Vec::new();
            for k in indexes(&files, "rail_name_", "") {
                let Some(l) = read_opt(sysfs, &dev.join(format!("rail_name_{k}"))) else {
                    continue;
                };
                let p = dev.join(format!("in_power{k}_input"));
                if usable(&l) && p.exists() {
                    channels.push(Channel {
                        label: l,
                        reading: Reading::PowerMilliwatts(p),
                    });
                }
            }
            out.push(Device {
                name: "ina3221x".into(),
                dir: dev,
                channels,
            });
        }
    }
    out
}

/// Reads channels of one or more devices.
pub struct HwmonProbe {
    sysfs: Sysfs,
    channels: Vec<Channel>,
    rails: Vec<Rail>,
    total: Vec<usize>,
}

fn parse_num(sysfs: &Sysfs, p: &Path) -> Result<f64, PowerError> {
    Ok(sysfs.read_i64(p, HINT)? as f64)
}

impl HwmonProbe {
    /// Channels of `devices` (restricted to `only` labels when given); the
    /// total is the `input` rail when present, else every rail.
    pub fn new(
        sysfs: &Sysfs,
        devices: &[Device],
        only: &[String],
        input: &[String],
    ) -> Result<HwmonProbe, PowerError> {
        let mut channels: Vec<Channel> = devices
            .iter()
            .flat_map(|d| d.channels.iter().cloned())
            .filter(|c| only.is_empty() || only.contains(&c.label))
            .collect();
        for want in only {
            if !channels.iter().any(|c| &c.label == want) {
                let have: Vec<&str> = devices
                    .iter()
                    .flat_map(|d| d.channels.iter().map(|c| c.label.as_str()))
                    .collect();
                return Err(PowerError::Config(format!(
                    "rail `{want}` does not exist here; rails: {}",
                    have.join(", ")
                )));
            }
        }
        // Two devices may use the same label: keep rail names distinct.
        let mut names: Vec<String> = Vec::new();
        for c in &mut channels {
            let mut name = c.label.clone();
            let mut k = 2;
            while names.contains(&name) {
                name = format!("{} ({k})", c.label);
                k += 1;
            }
            names.push(name.clone());
            c.label = name;
        }
        let rails: Vec<Rail> = channels
            .iter()
            .map(|c| Rail {
                name: c.label.clone(),
                kind: match c.reading {
                    Reading::EnergyMicrojoules(_) => RailKind::Energy,
                    _ => RailKind::Power,
                },
            })
            .collect();
        let inputs: Vec<usize> = (0..channels.len())
            .filter(|&i| input.iter().any(|n| *n == channels[i].label))
            .collect();
        let total = if inputs.is_empty() {
            (0..channels.len()).collect()
        } else {
            inputs
        };
        Ok(HwmonProbe {
            sysfs: sysfs.clone(),
            channels,
            rails,
            total,
        })
    }
}

impl Probe for HwmonProbe {
    fn rails(&self) -> &[Rail] {
        &self.rails
    }

    fn total(&self) -> &[usize] {
        &self.total
    }

    fn read(&mut self) -> Result<Vec<f64>, PowerError> {
        self.channels
            .iter()
            .map(|c| {
                Ok(match &c.reading {
                    Reading::PowerMicrowatts(p) => parse_num(&self.sysfs, p)? / 1e6,
                    Reading::PowerMilliwatts(p) => parse_num(&self.sysfs, p)? / 1e3,
                    Reading::EnergyMicrojoules(p) => parse_num(&self.sysfs, p)? / 1e6,
                    Reading::VoltsAmps(v, a) => {
                        parse_num(&self.sysfs, v)? * parse_num(&self.sysfs, a)? / 1e6
                    }
                })
            })
            .collect()
    }
}

#[allow(clippy::too_many_arguments)]
fn sampled(
    name: &str,
    sysfs: &Sysfs,
    devices: &[Device],
    only: &[String],
    input: &[String],
    rate_hz: f64,
    min_samples: usize,
    note: String,
) -> Result<Sampled, PowerError> {
    let mut probe = HwmonProbe::new(sysfs, devices, only, input)?;
    if probe.channels.is_empty() {
        return Err(PowerError::Unavailable {
            source_name: name.into(),
            reason: "no usable channels (all not connected or disabled)".into(),
        });
    }
    probe.read()?;
    let total_rule = if probe.total.len() == 1 && input.contains(&probe.rails[probe.total[0]].name)
    {
        format!("total = input rail {}", probe.rails[probe.total[0]].name)
    } else {
        "total = sum of the rails (no input rail)".into()
    };
    Ok(Sampled::new(
        name,
        Box::new(probe),
        rate_hz,
        min_samples,
        vec![note, total_rule],
    ))
}

/// The generic hwmon source: devices named `device` (or the only kind of
/// device that reports power).
pub fn open_hwmon(
    sysfs: &Sysfs,
    device: Option<&str>,
    only: &[String],
    input: &[String],
    rate_hz: f64,
    min_samples: usize,
) -> Result<Sampled, PowerError> {
    let class = sysfs.path("/sys/class/hwmon");
    let all = class_devices(sysfs);
    let with_power: Vec<Device> = all
        .iter()
        .filter(|d| !d.channels.is_empty())
        .cloned()
        .collect();
    let seen = || {
        let v: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    if with_power.is_empty() {
        return Err(PowerError::Unavailable {
            source_name: "hwmon".into(),
            reason: format!(
                "no device under {} reports power*_input, power*_average, energy*_input or labelled in*/curr* pairs (devices seen: {})",
                class.display(),
                seen()
            ),
        });
    }
    let chosen: Vec<Device> = match device {
        Some(name) => {
            let v: Vec<Device> = with_power
                .iter()
                .filter(|d| d.name == name)
                .cloned()
                .collect();
            if v.is_empty() {
                return Err(PowerError::Unavailable {
                    source_name: "hwmon".into(),
                    reason: format!(
                        "no hwmon device named `{name}` reports power; devices that do: {}",
                        names(&with_power)
                    ),
                });
            }
            v
        }
        None => {
            let first = &with_power[0].name;
            if with_power.iter().any(|d| &d.name != first) {
                return Err(PowerError::Config(format!(
                    "several kinds of hwmon device report power ({}); choose one with device = \"NAME\" in the power settings",
                    names(&with_power)
                )));
            }
            with_power
        }
    };
    let note = format!(
        "hwmon device(s) {} at {}",
        chosen[0].name,
        chosen
            .iter()
            .map(|d| d.dir.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    sampled(
        "hwmon",
        sysfs,
        &chosen,
        only,
        input,
        rate_hz,
        min_samples,
        note,
    )
}

fn names(devs: &[Device]) -> String {
    let mut v: Vec<&str> = devs.iter().map(|d| d.name.as_str()).collect();
    v.dedup();
    v.join(", ")
}

/// Why no INA3221 was found.
pub fn ina3221_absent_reason(sysfs: &Sysfs) -> String {
    format!(
        "neither {} (L4T 34+) nor {} (older L4T) has a device: not a Jetson, or the INA3221 driver is not loaded",
        sysfs.path("/sys/bus/i2c/drivers/ina3221").display(),
        sysfs.path("/sys/bus/i2c/drivers/ina3221x").display()
    )
}

/// The Jetson INA3221 source: the L4T 34+ hwmon layout, else the older iio
/// layout.
pub fn open_ina3221(
    sysfs: &Sysfs,
    only: &[String],
    input: &[String],
    rate_hz: f64,
    min_samples: usize,
) -> Result<Sampled, PowerError> {
    let (devices, layout) = {
        let h = ina3221_hwmon_devices(sysfs);
        if h.iter().any(|d| !d.channels.is_empty()) {
            (h, "L4T 34+ hwmon layout")
        } else {
            (ina3221_iio_devices(sysfs), "older L4T iio layout")
        }
    };
    let devices: Vec<Device> = devices
        .into_iter()
        .filter(|d| !d.channels.is_empty())
        .collect();
    if devices.is_empty() {
        return Err(PowerError::Unavailable {
            source_name: "ina3221".into(),
            reason: ina3221_absent_reason(sysfs),
        });
    }
    let note = format!(
        "INA3221 ({layout}) at {}",
        devices
            .iter()
            .map(|d| d.dir.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    sampled(
        "ina3221",
        sysfs,
        &devices,
        only,
        input,
        rate_hz,
        min_samples,
        note,
    )
}
