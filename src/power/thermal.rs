//! SoC temperature and throttling: thermal zones
//! (`/sys/class/thermal/thermal_zone*/type` + `temp`, millidegrees C), hwmon
//! temperature channels (`temp*_input` with `temp*_label` or the device
//! `name`), and a Raspberry Pi's `vcgencmd get_throttled` bits.

use super::Sysfs;
use serde::Serialize;
use std::path::PathBuf;

/// Words in a zone type, hwmon name or label that mark a CPU/SoC sensor
/// (Raspberry Pi `cpu-thermal`, Jetson `CPU-therm`/`SOC-therm`, x86
/// `x86_pkg_temp`, coretemp `Package id 0`, k10temp `Tctl`/`Tdie`).
pub const SOC_WORDS: &[&str] = &["cpu", "soc", "pkg", "package", "tctl", "tdie", "core"];

/// One temperature sensor that counts as the SoC's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TempSensor {
    pub path: PathBuf,
    /// Zone type, or `hwmon name/label`.
    pub label: String,
}

fn is_soc(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    SOC_WORDS.iter().any(|w| l.contains(w))
}

/// The SoC sensors below the sysfs root: thermal zones whose type matches
/// [`SOC_WORDS`], else hwmon channels whose device name or label does. The
/// second value lists what was found but not taken (for the manifest).
pub fn soc_sensors(sysfs: &Sysfs) -> (Vec<TempSensor>, Vec<String>) {
    let mut taken = Vec::new();
    let mut other = Vec::new();
    for z in sysfs.list(&sysfs.path("/sys/class/thermal")) {
        let is_zone = z
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("thermal_zone"));
        if !is_zone {
            continue;
        }
        let Ok(ty) = sysfs.read(&z.join("type")) else {
            continue;
        };
        let path = z.join("temp");
        if !path.exists() {
            continue;
        }
        if is_soc(&ty) {
            taken.push(TempSensor { path, label: ty });
        } else {
            other.push(ty);
        }
    }
    if !taken.is_empty() {
        return (taken, other);
    }
    for h in sysfs.list(&sysfs.path("/sys/class/hwmon")) {
        let name = sysfs.read(&h.join("name")).unwrap_or_default();
        for f in sysfs.list(&h) {
            let Some(fname) = f.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            let Some(ch) = fname
                .strip_prefix("temp")
                .and_then(|r| r.strip_suffix("_input"))
            else {
                continue;
            };
            let label = sysfs
                .read(&h.join(format!("temp{ch}_label")))
                .unwrap_or_default();
            let full = format!("{name}/{}", if label.is_empty() { &fname } else { &label });
            if is_soc(&name) || is_soc(&label) {
                taken.push(TempSensor {
                    path: f,
                    label: full,
                });
            } else {
                other.push(full);
            }
        }
    }
    (taken, other)
}

/// The hottest of `sensors` now, in degrees C; `None` when none reads.
pub fn read_max_c(sysfs: &Sysfs, sensors: &[TempSensor]) -> Option<f64> {
    sensors
        .iter()
        .filter_map(|s| sysfs.read(&s.path).ok()?.parse::<i64>().ok())
        .map(|m| m as f64 / 1000.0)
        .reduce(f64::max)
}

/// Bits of `vcgencmd get_throttled` that mean "now": under-voltage, ARM
/// frequency capped, currently throttled, soft temperature limit.
pub const THROTTLED_NOW_BITS: u32 = 0xF;

/// Runs `<command> get_throttled` and parses `throttled=0x...`; the command
/// is killed after 5 s or 1 MiB of output.
pub fn vc_throttled(command: &str) -> Result<u32, String> {
    let out = crate::guard::run_bounded(
        command,
        &["get_throttled"],
        super::pi5::COMMAND_TIMEOUT,
        super::pi5::COMMAND_OUTPUT_CAP,
    )
    .map_err(|e| e.to_string())?;
    parse_throttled(&out.stdout)
}

pub fn parse_throttled(text: &str) -> Result<u32, String> {
    let t = text.trim();
    t.strip_prefix("throttled=")
        .and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .ok_or_else(|| {
            format!("expected `throttled=0x...` from vcgencmd get_throttled, found {t:?}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn zones_matched_by_type_hottest_wins() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cpufreq");
        let sysfs = Sysfs::new(&root);
        let (s, other) = soc_sensors(&sysfs);
        let labels: Vec<&str> = s.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, vec!["cpu-thermal", "soc-thermal"]);
        assert_eq!(other, vec!["gpu-thermal".to_string()]);
        assert_eq!(read_max_c(&sysfs, &s), Some(54.8));
    }

    #[test]
    fn hwmon_labels_when_there_are_no_zones() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hwmon");
        let sysfs = Sysfs::new(&root);
        let (s, _) = soc_sensors(&sysfs);
        assert!(!s.is_empty(), "coretemp's labelled channel");
        assert!(read_max_c(&sysfs, &s).is_some());
    }

    #[test]
    fn throttled_output_parses() {
        assert_eq!(parse_throttled("throttled=0x50005\n"), Ok(0x50005));
        assert_eq!(parse_throttled("throttled=0x0"), Ok(0));
        assert!(parse_throttled("error=1").is_err());
    }
}
