//! What machine a run happened on, for the manifest.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;

/// The machine, as far as it is readable. Missing facts are `None` (and
/// read back so from manifests that lack them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MachineInfo {
    pub host: String,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub kernel: Option<String>,
    pub arch: String,
    pub cpu_model: Option<String>,
    pub logical_cores: usize,
    pub physical_cores: Option<usize>,
    /// Current frequency of each logical CPU in MHz, as sysinfo reads it.
    pub frequencies_mhz: Vec<u64>,
    /// cpufreq governor of cpu0.
    pub governor: Option<String>,
    pub scaling_min_mhz: Option<u64>,
    pub scaling_max_mhz: Option<u64>,
    pub memory_bytes: Option<u64>,
    /// Jetson: the nvpmodel power mode.
    pub nvpmodel: Option<String>,
    /// Raspberry Pi: `vcgencmd get_throttled`.
    pub throttled: Option<String>,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn command(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// The host name alone (cheap).
pub fn host_name() -> String {
    sysinfo::System::host_name()
        .ok()
        .or_else(|| read_trim("/proc/sys/kernel/hostname"))
        .unwrap_or_else(|| "unknown".into())
}

/// Collects what is readable about this machine.
pub fn collect() -> MachineInfo {
    use sysinfo::System;
    let (cpu_model, freqs, mem) = match System::new() {
        Ok(mut sys) => {
            sys.refresh_cpu_all();
            sys.refresh_memory();
            let model = sys
                .cpus()
                .first()
                .map(|c| c.brand().trim().to_string())
                .filter(|s| !s.is_empty());
            let f = sys.cpus().iter().map(|c| c.frequency()).collect();
            let m = Some(sys.total_memory()).filter(|&m| m > 0);
            (model, f, m)
        }
        Err(_) => (None, Vec::new(), None),
    };
    let khz = |p: &str| {
        read_trim(p)
            .and_then(|s| s.parse::<u64>().ok())
            .map(|k| k / 1000)
    };
    MachineInfo {
        host: host_name(),
        os: System::name().ok(),
        os_version: System::long_os_version().ok(),
        kernel: System::kernel_version().ok(),
        arch: std::env::consts::ARCH.to_string(),
        cpu_model,
        logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        physical_cores: System::physical_core_count().ok(),
        frequencies_mhz: freqs,
        governor: read_trim("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        scaling_min_mhz: khz("/sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq"),
        scaling_max_mhz: khz("/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq"),
        memory_bytes: mem,
        nvpmodel: if Path::new("/etc/nv_tegra_release").exists() {
            command("nvpmodel", &["-q"])
        } else {
            None
        },
        throttled: command("vcgencmd", &["get_throttled"]),
    }
}

/// The git revision of the source tree this binary was built from, when the
/// tree is still there and git is installed.
pub fn git_revision() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let rev = command("git", &["-C", dir, "rev-parse", "HEAD"])?;
    let dirty = command(
        "git",
        &["-C", dir, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{rev}-dirty") } else { rev })
}
