//! RAPL through the powercap sysfs (`/sys/class/powercap`): Intel
//! `intel-rapl:N` zones and their `intel-rapl:N:M` subzones (package, core,
//! uncore, dram, psys), `intel-rapl-mmio:N`, and AMD (Zen) through the same
//! interface.
//!
//! Each zone's `energy_uj` counts up and wraps to zero after
//! `max_energy_range_uj`; an interval that wrapped is corrected (`end +
//! range - start`), not dropped, and the sampling interval is shortened so
//! that two wraps cannot fall between two reads.

use super::{PowerError, Probe, Rail, RailKind, Sampled, Sysfs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Power assumed when a zone does not state its maximum, for the wrap bound.
const ASSUMED_MAX_WATTS: f64 = 1000.0;

/// One powercap zone.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    /// `package-0`, `package-0/core`, `psys`, `mmio/package-0`.
    pub name: String,
    pub dir: PathBuf,
    pub range_uj: u64,
    pub max_watts: Option<f64>,
    pub top_level: bool,
    pub mmio: bool,
}

/// The hint printed when `energy_uj` is not readable.
pub fn denied_hint(path: &Path) -> String {
    let class = path
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| "/sys/class/powercap".into(), |p| p.display().to_string());
    format!(
        "RAPL energy counters are readable only by root since Linux 5.10 (CVE-2020-8694). Run joulebench as root, or grant read access until the next boot with `sudo chmod a+r {class}/intel-rapl:*/energy_uj {class}/intel-rapl:*:*/energy_uj` (a udev rule or tmpfiles.d entry makes it permanent)"
    )
}

/// The zones under `<root>/sys/class/powercap`.
pub fn zones(sysfs: &Sysfs) -> Result<Vec<Zone>, PowerError> {
    let class = sysfs.path("/sys/class/powercap");
    if !class.is_dir() {
        return Err(PowerError::Unavailable {
            source_name: "rapl".into(),
            reason: format!(
                "{} does not exist: no RAPL on this machine (a virtual machine, a CPU without RAPL, or the intel_rapl driver not loaded)",
                class.display()
            ),
        });
    }
    let mut out = Vec::new();
    let entries = sysfs.list(&class);
    let name_of = |dir: &Path| -> Result<String, PowerError> {
        let p = dir.join("name");
        sysfs
            .read(&p)
            .map_err(|e| super::io_error(&p, e, "make the powercap sysfs readable"))
    };
    for dir in &entries {
        let Some(base) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (prefix, idx) = match base.split_once(':') {
            Some((p, rest)) if p == "intel-rapl" || p == "intel-rapl-mmio" => (p, rest),
            _ => continue,
        };
        let energy = dir.join("energy_uj");
        // A zone without a counter is a control-only zone; one whose counter
        // is a dangling link or a FIFO is kept, so the first read refuses it
        // by name instead of the total silently losing the zone.
        if energy.symlink_metadata().is_err() {
            continue;
        }
        let own = name_of(dir)?;
        let top_level = !idx.contains(':');
        let mmio = prefix == "intel-rapl-mmio";
        let mut name = if top_level {
            own
        } else {
            let parent_id = idx.split(':').next().unwrap_or("0");
            let parent = class.join(format!("{prefix}:{parent_id}"));
            format!("{}/{own}", name_of(&parent)?)
        };
        if mmio {
            name = format!("mmio/{name}");
        }
        let range_path = dir.join("max_energy_range_uj");
        let range_uj = sysfs.read_u64(&range_path, &denied_hint(&energy))?;
        if range_uj == 0 {
            return Err(PowerError::malformed(
                &range_path,
                None,
                "max_energy_range_uj is 0; a counter range must be positive",
            ));
        }
        let max_watts = sysfs
            .read(&dir.join("constraint_0_max_power_uw"))
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|&w| w > 0.0)
            .map(|uw| uw / 1e6);
        out.push(Zone {
            name,
            dir: dir.clone(),
            range_uj,
            max_watts,
            top_level,
            mmio,
        });
    }
    if out.is_empty() {
        return Err(PowerError::Unavailable {
            source_name: "rapl".into(),
            reason: format!("{} has no intel-rapl zones with energy_uj", class.display()),
        });
    }
    Ok(out)
}

impl Zone {
    /// The most power the zone can draw, for judging one interval's energy:
    /// its stated maximum with headroom for turbo bursts above the long-term
    /// limit, else [`ASSUMED_MAX_WATTS`].
    pub fn ceiling_w(&self) -> f64 {
        self.max_watts.map_or(ASSUMED_MAX_WATTS, |w| 4.0 * w)
    }

    /// Why the step `delta_uj` read `dt_s` seconds after the last read cannot
    /// be trusted, or `None`. With the zone's maximum power the counter can
    /// move `max_watts x dt_s` in the interval; once that reaches the step
    /// plus a whole range, a second wrap could hide in it.
    pub fn judge_step(&self, delta_uj: u64, dt_s: f64) -> Option<String> {
        let delta_j = delta_uj as f64 / 1e6;
        let range_j = self.range_uj as f64 / 1e6;
        let max_w = self.max_watts.unwrap_or(ASSUMED_MAX_WATTS);
        if max_w * dt_s >= delta_j + range_j {
            return Some(format!(
                "{dt_s:.3} s passed between two reads of its energy counter, long enough at {max_w} W \
                 to wrap its {range_j} J range more than once: the step cannot be resolved \
                 (the sampling thread was held up; lower the load or the sampling rate's competition)"
            ));
        }
        super::plausible::implausible_energy(delta_j, dt_s, self.ceiling_w())
    }
}

/// The default total: every package zone plus dram zones (outside the
/// package domain), else psys; never the mmio copy of a package.
pub fn default_total(zones: &[Zone]) -> Vec<usize> {
    let pick: Vec<usize> = zones
        .iter()
        .enumerate()
        .filter(|(_, z)| {
            !z.mmio
                && ((z.top_level && z.name.starts_with("package"))
                    || z.name.rsplit('/').next() == Some("dram"))
        })
        .map(|(i, _)| i)
        .collect();
    if pick.iter().any(|&i| zones[i].top_level) {
        return pick;
    }
    zones
        .iter()
        .enumerate()
        .filter(|(_, z)| z.top_level && !z.mmio)
        .map(|(i, _)| i)
        .collect()
}

/// Wrap-corrected reads of every zone.
pub struct RaplProbe {
    sysfs: Sysfs,
    zones: Vec<Zone>,
    rails: Vec<Rail>,
    total: Vec<usize>,
    last: Vec<Option<(u64, Instant)>>,
    acc_uj: Vec<u128>,
    flags: Vec<(usize, String)>,
}

/// The energy counted between two readings of a counter that wraps after
/// `range` (one wrap at most).
pub fn counter_delta(prev: u64, now: u64, range: u64) -> u64 {
    if now >= prev {
        now - prev
    } else {
        range.saturating_sub(prev) + now
    }
}

impl RaplProbe {
    /// Reads `zones`, summing `total` (indexes into `zones`) for the total.
    pub fn new(sysfs: &Sysfs, zones: Vec<Zone>, total: Vec<usize>) -> RaplProbe {
        let rails = zones
            .iter()
            .map(|z| Rail {
                name: z.name.clone(),
                kind: RailKind::Energy,
            })
            .collect();
        let n = zones.len();
        RaplProbe {
            sysfs: sysfs.clone(),
            zones,
            rails,
            total,
            last: vec![None; n],
            acc_uj: vec![0; n],
            flags: Vec::new(),
        }
    }

    /// Reads every counter as if at `now` (tests pass their own times).
    pub fn read_at(&mut self, now_at: Instant) -> Result<Vec<f64>, PowerError> {
        let mut out = Vec::with_capacity(self.zones.len());
        for (i, z) in self.zones.iter().enumerate() {
            let path = z.dir.join("energy_uj");
            let now = self.sysfs.read_u64(&path, &denied_hint(&path))?;
            if now > z.range_uj {
                return Err(PowerError::malformed(
                    &path,
                    None,
                    format!(
                        "energy_uj = {now} is above max_energy_range_uj = {}",
                        z.range_uj
                    ),
                ));
            }
            if let Some((prev, at)) = self.last[i] {
                let delta = counter_delta(prev, now, z.range_uj);
                let dt = now_at.saturating_duration_since(at).as_secs_f64();
                if let Some(why) = z.judge_step(delta, dt) {
                    self.flags.push((i, why));
                }
                self.acc_uj[i] += delta as u128;
            }
            self.last[i] = Some((now, now_at));
            out.push(self.acc_uj[i] as f64 / 1e6);
        }
        Ok(out)
    }
}

impl Probe for RaplProbe {
    fn rails(&self) -> &[Rail] {
        &self.rails
    }

    fn total(&self) -> &[usize] {
        &self.total
    }

    fn read(&mut self) -> Result<Vec<f64>, PowerError> {
        self.read_at(Instant::now())
    }

    fn take_flags(&mut self) -> Vec<(usize, String)> {
        std::mem::take(&mut self.flags)
    }

    fn max_interval(&self) -> Option<Duration> {
        self.zones
            .iter()
            .map(|z| {
                let joules = z.range_uj as f64 / 1e6;
                let watts = z.max_watts.unwrap_or(ASSUMED_MAX_WATTS);
                // Half the time the counter needs to wrap at full power.
                Duration::from_secs_f64((joules / watts / 2.0).max(1e-3))
            })
            .min()
    }
}

/// Opens RAPL: every zone is a rail; the total is `wanted` zones by name or
/// [`default_total`]. Reads every counter once, so an unreadable
/// `energy_uj` fails here, before anything is measured.
pub fn open(
    sysfs: &Sysfs,
    wanted: &[String],
    rate_hz: f64,
    min_samples: usize,
) -> Result<Sampled, PowerError> {
    let zones = zones(sysfs)?;
    let total = if wanted.is_empty() {
        default_total(&zones)
    } else {
        let mut t = Vec::new();
        for w in wanted {
            match zones.iter().position(|z| &z.name == w) {
                Some(i) => t.push(i),
                None => {
                    return Err(PowerError::Config(format!(
                        "RAPL zone `{w}` does not exist here; zones: {}",
                        zones
                            .iter()
                            .map(|z| z.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
        t
    };
    if total.is_empty() {
        return Err(PowerError::Unavailable {
            source_name: "rapl".into(),
            reason: format!(
                "no package, dram or top-level zone to total among {}; name the zones with `zones`",
                zones
                    .iter()
                    .map(|z| z.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let mut probe = RaplProbe::new(sysfs, zones, total);
    probe.read()?;
    Ok(Sampled::new(
        "rapl",
        Box::new(probe),
        rate_hz,
        min_samples,
        vec!["package zones cover cores, caches and the memory controller; dram zones are added as they lie outside the package domain".into()],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::{PowerSource, RunClock};

    fn tree(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("joulebench-rapl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let z = |rel: &str, files: &[(&str, &str)]| {
            let dir = d.join("sys/class/powercap").join(rel);
            std::fs::create_dir_all(&dir).unwrap();
            for (f, v) in files {
                std::fs::write(dir.join(f), format!("{v}\n")).unwrap();
            }
        };
        z("intel-rapl", &[("enabled", "1")]);
        z(
            "intel-rapl:0",
            &[
                ("name", "package-0"),
                ("energy_uj", "1000"),
                ("max_energy_range_uj", "262143328850"),
            ],
        );
        z(
            "intel-rapl:0:0",
            &[
                ("name", "core"),
                ("energy_uj", "500"),
                ("max_energy_range_uj", "262143328850"),
            ],
        );
        z(
            "intel-rapl:1",
            &[
                ("name", "psys"),
                ("energy_uj", "9000"),
                ("max_energy_range_uj", "262143328850"),
            ],
        );
        d
    }

    #[test]
    fn zones_are_named_by_parent_and_the_total_is_the_package() {
        let d = tree("names");
        let zs = zones(&Sysfs::new(&d)).unwrap();
        let names: Vec<&str> = zs.iter().map(|z| z.name.as_str()).collect();
        assert_eq!(names, ["package-0", "package-0/core", "psys"]);
        assert_eq!(default_total(&zs), vec![0]);
    }

    #[test]
    fn a_wrapped_interval_is_corrected() {
        assert_eq!(counter_delta(100, 150, 1000), 50);
        assert_eq!(counter_delta(900, 50, 1000), 150);
    }

    #[test]
    fn an_unreadable_energy_counter_says_how_to_grant_access() {
        // Injected at the read itself, so this holds when the tests run as
        // root too (permission bits do not stop root's reads).
        let d = tree("denied");
        let mut sysfs = Sysfs::new(&d);
        let energy = d.join("sys/class/powercap/intel-rapl:0/energy_uj");
        sysfs.deny(energy.clone());
        let err = open(&sysfs, &[], 10.0, 5).err().expect("an error");
        assert!(matches!(err, PowerError::Permission { .. }), "{err}");
        assert!(!err.is_bad_input());
        let msg = err.to_string();
        assert!(msg.contains(&energy.display().to_string()), "{msg}");
        assert!(msg.contains("permission denied"), "{msg}");
        assert!(msg.contains("chmod a+r"), "{msg}");
    }

    #[test]
    fn a_denied_read_during_the_window_stops_with_the_same_error() {
        let d = tree("denied-late");
        let mut sysfs = Sysfs::new(&d);
        let mut src = open(&sysfs, &[], 10.0, 5).unwrap();
        let clock = RunClock::start();
        src.start(&clock).unwrap();
        let _ = src.stop(&clock).unwrap();
        sysfs.deny(d.join("sys/class/powercap/intel-rapl:1/energy_uj"));
        let mut probe = RaplProbe::new(&sysfs, zones(&Sysfs::new(&d)).unwrap(), vec![0]);
        let err = probe.read().unwrap_err();
        assert!(err.to_string().contains("CVE-2020-8694"), "{err}");
    }

    #[test]
    fn a_counter_above_its_range_is_malformed() {
        let d = tree("bad");
        std::fs::write(
            d.join("sys/class/powercap/intel-rapl:0/energy_uj"),
            "999999999999999\n",
        )
        .unwrap();
        let err = open(&Sysfs::new(&d), &[], 10.0, 5).err().unwrap();
        assert!(
            err.is_bad_input() && err.to_string().contains("above max_energy_range_uj"),
            "{err}"
        );
        std::fs::write(
            d.join("sys/class/powercap/intel-rapl:0/energy_uj"),
            "lots\n",
        )
        .unwrap();
        let err = open(&Sysfs::new(&d), &[], 10.0, 5).err().unwrap();
        assert!(err.to_string().contains("intel-rapl:0/energy_uj"), "{err}");
        assert!(
            err.to_string().contains("expected a non-negative integer"),
            "{err}"
        );
    }

    #[test]
    fn two_wraps_in_one_interval_are_flagged_and_one_is_exact() {
        use crate::power::{summarize_samples, Sample};
        let d = tree("twowraps");
        let pkg = d.join("sys/class/powercap/intel-rapl:0");
        // A 1 J counter on a 100 W zone wraps every 10 ms at full power.
        std::fs::write(pkg.join("max_energy_range_uj"), "1000000\n").unwrap();
        std::fs::write(pkg.join("constraint_0_max_power_uw"), "100000000\n").unwrap();
        std::fs::write(pkg.join("energy_uj"), "900000\n").unwrap();
        let sysfs = Sysfs::new(&d);
        let zs = zones(&sysfs).unwrap();
        let mut probe = RaplProbe::new(&sysfs, zs.clone(), vec![0]);
        let rails = probe.rails().to_vec();
        let t0 = Instant::now();
        let sample = |probe: &mut RaplProbe, ms: u64| {
            let values = probe.read_at(t0 + Duration::from_millis(ms)).unwrap();
            Sample {
                t_s: ms as f64 / 1e3,
                values,
                flags: probe.take_flags(),
            }
        };
        let first = sample(&mut probe, 0);
        // 5 ms later the counter reads 100000 µJ: one wrap, 0.2 J, and at
        // 100 W no second wrap fits in 5 ms.
        std::fs::write(pkg.join("energy_uj"), "100000\n").unwrap();
        let one = sample(&mut probe, 5);
        let w = summarize_samples("rapl", &rails, &[0], &[first.clone(), one], 2);
        assert!((w.energy_j.unwrap() - 0.2).abs() < 1e-12, "{w:?}");
        assert!(w.warnings.is_empty(), "{:?}", w.warnings);
        // 25 ms later it reads 300000 µJ: 0.2 J, or 1.2 J (48 W) or 2.2 J
        // (88 W) with wraps hidden in it, which the zone can draw: unresolvable.
        std::fs::write(pkg.join("energy_uj"), "300000\n").unwrap();
        let two = sample(&mut probe, 30);
        let w = summarize_samples("rapl", &rails, &[0], &[first, two], 2);
        assert_eq!(w.energy_j, None, "{w:?}");
        let msg = w.warnings.join("; ");
        assert!(
            msg.contains("package-0") && msg.contains("more than once"),
            "{msg}"
        );
    }

    #[test]
    fn an_unknown_zone_lists_the_zones() {
        let d = tree("unknown");
        let err = open(&Sysfs::new(&d), &["dram".into()], 10.0, 5)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("package-0, package-0/core, psys"),
            "{err}"
        );
    }
}
