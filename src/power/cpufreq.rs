//! Linux cpufreq through sysfs: the policies, their governor and frequency
//! limits (read, written and verified), and a sampling thread that averages
//! `scaling_cur_freq` over a measured window.
//!
//! Layout (Documentation/admin-guide/pm/cpufreq.rst):
//! `/sys/devices/system/cpu/cpufreq/policyN/` with `affected_cpus`,
//! `scaling_governor`, `scaling_min_freq`, `scaling_max_freq`,
//! `scaling_cur_freq`, `scaling_available_governors`, `cpuinfo_min_freq`,
//! `cpuinfo_max_freq` (frequencies in kHz).

use super::{io_error, PowerError, Sysfs};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Where the policies live.
pub const CPUFREQ_DIR: &str = "/sys/devices/system/cpu/cpufreq";

/// How to get write access, for error messages.
pub const WRITE_HINT: &str = "run joulebench as root (sudo joulebench run ...), or grant write access for this boot with `sudo chmod a+w /sys/devices/system/cpu/cpufreq/policy*/scaling_{governor,min_freq,max_freq}` (or a udev rule doing the same)";

/// One cpufreq policy: a group of CPUs that share a clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// The policy number (N of `policyN`).
    pub id: usize,
    pub dir: PathBuf,
    pub cpus: Vec<usize>,
    pub cpuinfo_min_khz: Option<u64>,
    pub cpuinfo_max_khz: Option<u64>,
    pub governors: Vec<String>,
}

/// The settable state of one policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyState {
    pub policy: usize,
    pub governor: String,
    pub min_khz: u64,
    pub max_khz: u64,
}

/// What a power mode sets on a policy; `None` leaves it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub governor: Option<String>,
    pub min_khz: Option<u64>,
    pub max_khz: Option<u64>,
}

impl Policy {
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn parse_cpus(text: &str) -> Vec<usize> {
    // affected_cpus is space-separated; related_cpus style ranges are accepted too.
    let mut out = Vec::new();
    for part in text.split([' ', ',']).filter(|s| !s.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<usize>().ok()),
        }
    }
    out
}

/// The policies below the sysfs root, in number order; empty when cpufreq
/// is absent (virtual machines, containers without /sys).
pub fn policies(sysfs: &Sysfs) -> Vec<Policy> {
    sysfs
        .list(&sysfs.path(CPUFREQ_DIR))
        .into_iter()
        .filter_map(|dir| {
            let name = dir.file_name()?.to_str()?.to_string();
            let id: usize = name.strip_prefix("policy")?.parse().ok()?;
            let num = |f: &str| sysfs.read(&dir.join(f)).ok()?.parse::<u64>().ok();
            Some(Policy {
                id,
                cpus: sysfs
                    .read(&dir.join("affected_cpus"))
                    .map(|t| parse_cpus(&t))
                    .unwrap_or_else(|_| vec![id]),
                cpuinfo_min_khz: num("cpuinfo_min_freq"),
                cpuinfo_max_khz: num("cpuinfo_max_freq"),
                governors: sysfs
                    .read(&dir.join("scaling_available_governors"))
                    .map(|t| t.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default(),
                dir,
            })
        })
        .collect()
}

/// Reads a policy's governor and limits.
pub fn read_state(sysfs: &Sysfs, p: &Policy) -> Result<PolicyState, PowerError> {
    let hint = "cpufreq attributes are world-readable; is the sysfs root right?";
    let governor = sysfs
        .read(&p.file("scaling_governor"))
        .map_err(|e| io_error(&p.file("scaling_governor"), e, hint))?;
    Ok(PolicyState {
        policy: p.id,
        governor,
        min_khz: sysfs.read_u64(&p.file("scaling_min_freq"), hint)?,
        max_khz: sysfs.read_u64(&p.file("scaling_max_freq"), hint)?,
    })
}

/// The files a setting writes.
pub fn files_written(p: &Policy, s: &Setting) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if s.governor.is_some() {
        v.push(p.file("scaling_governor"));
    }
    if s.min_khz.is_some() {
        v.push(p.file("scaling_min_freq"));
    }
    if s.max_khz.is_some() {
        v.push(p.file("scaling_max_freq"));
    }
    v
}

/// The writes `s` makes on a policy now in `now`, in a safe order (governor
/// first; then the limit that keeps min <= max at every step). Values equal
/// to the current ones are not written.
pub fn plan(p: &Policy, now: &PolicyState, s: &Setting) -> Vec<(PathBuf, String)> {
    let mut w = Vec::new();
    if let Some(g) = &s.governor {
        if *g != now.governor {
            w.push((p.file("scaling_governor"), g.clone()));
        }
    }
    let min = s.min_khz.filter(|&v| v != now.min_khz);
    let max = s.max_khz.filter(|&v| v != now.max_khz);
    let min_w = min.map(|v| (p.file("scaling_min_freq"), v.to_string()));
    let max_w = max.map(|v| (p.file("scaling_max_freq"), v.to_string()));
    match min {
        Some(v) if v > now.max_khz => w.extend(max_w.into_iter().chain(min_w)),
        _ => w.extend(min_w.into_iter().chain(max_w)),
    }
    w
}

/// Whether the policy offers the governor and the limits are inside its
/// hardware range.
pub fn validate(p: &Policy, s: &Setting) -> Result<(), PowerError> {
    if let Some(g) = &s.governor {
        if !p.governors.is_empty() && !p.governors.contains(g) {
            return Err(PowerError::Config(format!(
                "policy{} has no governor `{g}`; it offers: {} ({})",
                p.id,
                p.governors.join(", "),
                p.file("scaling_available_governors").display()
            )));
        }
    }
    for (what, v) in [("min", s.min_khz), ("max", s.max_khz)] {
        if let Some(v) = v {
            let lo = p.cpuinfo_min_khz.unwrap_or(0);
            let hi = p.cpuinfo_max_khz.unwrap_or(u64::MAX);
            if v < lo || v > hi {
                return Err(PowerError::Config(format!(
                    "{what} frequency {v} kHz is outside policy{}'s hardware range {lo}..{hi} kHz (cpuinfo_min_freq..cpuinfo_max_freq)",
                    p.id
                )));
            }
        }
    }
    Ok(())
}

/// Applies `s` to a policy and reads it back: an error names what the
/// kernel chose when it differs (a clamp to the hardware range, a thermal or
/// firmware limit, a governor it does not have).
pub fn apply(sysfs: &Sysfs, p: &Policy, s: &Setting) -> Result<PolicyState, PowerError> {
    validate(p, s)?;
    let now = read_state(sysfs, p)?;
    for (path, value) in plan(p, &now, s) {
        sysfs
            .write(&path, &value)
            .map_err(|e| io_error(&path, e, WRITE_HINT))?;
    }
    let got = read_state(sysfs, p)?;
    let mut wrong = Vec::new();
    if let Some(g) = &s.governor {
        if got.governor != *g {
            wrong.push(format!("scaling_governor is `{}`, not `{g}`", got.governor));
        }
    }
    if let Some(v) = s.min_khz {
        if got.min_khz != v {
            wrong.push(format!(
                "scaling_min_freq is {} kHz, not {v} kHz",
                got.min_khz
            ));
        }
    }
    if let Some(v) = s.max_khz {
        if got.max_khz != v {
            wrong.push(format!(
                "scaling_max_freq is {} kHz, not {v} kHz",
                got.max_khz
            ));
        }
    }
    if !wrong.is_empty() {
        return Err(PowerError::Config(format!(
            "the kernel did not take the setting of policy{} ({}): {}; choose values it accepts (see scaling_available_frequencies) or remove the limit",
            p.id,
            p.dir.display(),
            wrong.join("; ")
        )));
    }
    Ok(got)
}

/// Puts a policy back to `state` (only the values that differ are written).
pub fn restore(sysfs: &Sysfs, p: &Policy, state: &PolicyState) -> Result<(), PowerError> {
    let s = Setting {
        governor: Some(state.governor.clone()),
        min_khz: Some(state.min_khz),
        max_khz: Some(state.max_khz),
    };
    let now = read_state(sysfs, p)?;
    for (path, value) in plan(p, &now, &s) {
        sysfs
            .write(&path, &value)
            .map_err(|e| io_error(&path, e, WRITE_HINT))?;
    }
    Ok(())
}

/// The policies serving `cpus` (all when `None`).
pub fn used<'a>(all: &'a [Policy], cpus: Option<&[usize]>) -> Vec<&'a Policy> {
    all.iter()
        .filter(|p| cpus.is_none_or(|c| p.cpus.iter().any(|x| c.contains(x))))
        .collect()
}

/// What the frequency sampler measured over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FreqWindow {
    /// Mean of the used CPUs' frequency over the samples, MHz.
    pub mean_mhz: Option<f64>,
    /// Lowest frequency seen on a used CPU, kHz.
    pub min_khz: Option<u64>,
    pub samples: usize,
}

/// Reads `scaling_cur_freq` of each policy (weighted by its used CPUs).
fn read_cur(sysfs: &Sysfs, files: &[(PathBuf, usize)]) -> Option<(f64, u64)> {
    let mut sum = 0.0;
    let mut n = 0usize;
    let mut min = u64::MAX;
    for (f, w) in files {
        let v: u64 = sysfs.read(f).ok()?.parse().ok()?;
        sum += v as f64 * *w as f64;
        n += w;
        min = min.min(v);
    }
    (n > 0).then(|| (sum / n as f64, min))
}

/// A thread sampling the used CPUs' current frequency between `start` and
/// `stop`.
pub struct FreqSampler {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<FreqWindow>,
}

impl FreqSampler {
    /// Starts sampling the policies of `cpus` (all when `None`) every
    /// `interval`; `None` when no policy has `scaling_cur_freq`.
    pub fn start(
        sysfs: &Sysfs,
        policies: &[Policy],
        cpus: Option<&[usize]>,
        interval: Duration,
    ) -> Option<FreqSampler> {
        let files: Vec<(PathBuf, usize)> = used(policies, cpus)
            .into_iter()
            .map(|p| {
                let w = cpus.map_or(p.cpus.len(), |c| {
                    p.cpus.iter().filter(|x| c.contains(x)).count()
                });
                (p.file("scaling_cur_freq"), w.max(1))
            })
            .collect();
        let sysfs = sysfs.clone();
        read_cur(&sysfs, &files)?;
        let (tx, rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("cpufreq-sampler".into())
            .spawn(move || {
                let mut w = FreqWindow::default();
                let mut sum = 0.0;
                let mut min = u64::MAX;
                loop {
                    if let Some((mean, lo)) = read_cur(&sysfs, &files) {
                        sum += mean;
                        min = min.min(lo);
                        w.samples += 1;
                    }
                    if !matches!(
                        rx.recv_timeout(interval),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    ) {
                        break;
                    }
                }
                // One more reading closes the window.
                if let Some((mean, lo)) = read_cur(&sysfs, &files) {
                    sum += mean;
                    min = min.min(lo);
                    w.samples += 1;
                }
                if w.samples > 0 {
                    w.mean_mhz = Some(sum / w.samples as f64 / 1000.0);
                    w.min_khz = Some(min);
                }
                w
            })
            .ok()?;
        Some(FreqSampler { stop: tx, handle })
    }

    pub fn stop(self) -> FreqWindow {
        let _ = self.stop.send(());
        self.handle.join().unwrap_or_default()
    }
}

/// The governor and limits of the used policies, for a results row: one
/// value when they agree, else governors joined by `/`, the lowest minimum
/// and the highest maximum.
pub fn summary(states: &[PolicyState]) -> (String, Option<u64>, Option<u64>) {
    let mut govs: Vec<&str> = Vec::new();
    for s in states {
        if !govs.contains(&s.governor.as_str()) {
            govs.push(&s.governor);
        }
    }
    (
        govs.join("/"),
        states.iter().map(|s| s.min_khz).min(),
        states.iter().map(|s| s.max_khz).max(),
    )
}

/// Whether `path` is under the cpufreq directory of `sysfs`.
pub fn is_cpufreq_path(sysfs: &Sysfs, path: &Path) -> bool {
    path.starts_with(sysfs.path(CPUFREQ_DIR))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of the fixture cpufreq tree in a fresh directory.
    pub(crate) fn fixture(name: &str) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cpufreq");
        let dst =
            std::env::temp_dir().join(format!("joulebench-cpufreq-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dst);
        copy_dir(&src, &dst);
        dst
    }

    fn copy_dir(src: &Path, dst: &Path) {
        std::fs::create_dir_all(dst).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            let to = dst.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &to);
            } else {
                std::fs::copy(e.path(), &to).unwrap();
            }
        }
    }

    #[test]
    fn finds_policies_and_reads_state() {
        let root = fixture("read");
        let sysfs = Sysfs::new(&root);
        let ps = policies(&sysfs);
        assert_eq!(ps.iter().map(|p| p.id).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(ps[0].cpus, vec![0, 1]);
        assert_eq!(ps[1].cpus, vec![2, 3]);
        assert_eq!(ps[0].cpuinfo_max_khz, Some(2400000));
        assert!(ps[0].governors.contains(&"performance".to_string()));
        let st = read_state(&sysfs, &ps[0]).unwrap();
        assert_eq!(st.governor, "schedutil");
        assert_eq!((st.min_khz, st.max_khz), (600000, 2400000));
        assert_eq!(used(&ps, Some(&[3])).len(), 1);
        assert_eq!(used(&ps, None).len(), 2);
    }

    #[test]
    fn apply_verifies_and_restores() {
        let root = fixture("apply");
        let sysfs = Sysfs::new(&root);
        let ps = policies(&sysfs);
        let before = read_state(&sysfs, &ps[0]).unwrap();
        let s = Setting {
            governor: Some("userspace".into()),
            min_khz: Some(1200000),
            max_khz: Some(1200000),
        };
        let got = apply(&sysfs, &ps[0], &s).unwrap();
        assert_eq!(got.governor, "userspace");
        assert_eq!((got.min_khz, got.max_khz), (1200000, 1200000));
        restore(&sysfs, &ps[0], &before).unwrap();
        assert_eq!(read_state(&sysfs, &ps[0]).unwrap(), before);
    }

    #[test]
    fn a_clamped_setting_names_what_the_kernel_chose() {
        let root = fixture("clamp");
        let mut sysfs = Sysfs::new(&root);
        let ps = policies(&sysfs);
        sysfs.clamp(ps[0].file("scaling_max_freq"), "1800000");
        let s = Setting {
            max_khz: Some(2000000),
            ..Setting::default()
        };
        let e = apply(&sysfs, &ps[0], &s).unwrap_err().to_string();
        assert!(
            e.contains("scaling_max_freq is 1800000 kHz, not 2000000 kHz"),
            "{e}"
        );
        let e = apply(
            &sysfs,
            &ps[0],
            &Setting {
                max_khz: Some(9000000),
                ..Setting::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("outside policy0's hardware range"), "{e}");
        let e = apply(
            &sysfs,
            &ps[0],
            &Setting {
                governor: Some("turbo".into()),
                ..Setting::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no governor `turbo`"), "{e}");
    }

    #[test]
    fn writes_keep_min_below_max() {
        let p = Policy {
            id: 0,
            dir: PathBuf::from("/p"),
            cpus: vec![0],
            cpuinfo_min_khz: None,
            cpuinfo_max_khz: None,
            governors: vec![],
        };
        let now = PolicyState {
            policy: 0,
            governor: "g".into(),
            min_khz: 600,
            max_khz: 1000,
        };
        let up = plan(
            &p,
            &now,
            &Setting {
                governor: None,
                min_khz: Some(1500),
                max_khz: Some(2000),
            },
        );
        assert!(up[0].0.ends_with("scaling_max_freq"), "{up:?}");
        let down = plan(
            &p,
            &now,
            &Setting {
                governor: None,
                min_khz: Some(300),
                max_khz: Some(1000),
            },
        );
        assert_eq!(down.len(), 1, "equal values are not written: {down:?}");
        assert!(down[0].0.ends_with("scaling_min_freq"));
    }

    #[test]
    fn sampler_averages_cur_freq_of_used_cpus() {
        let root = fixture("sample");
        let sysfs = Sysfs::new(&root);
        let ps = policies(&sysfs);
        // policy0 runs at 1500000 kHz, policy2 at 1000000 kHz.
        let s = FreqSampler::start(&sysfs, &ps, Some(&[2, 3]), Duration::from_millis(5)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let w = s.stop();
        assert!(w.samples >= 2);
        assert_eq!(w.mean_mhz, Some(1000.0));
        let s = FreqSampler::start(&sysfs, &ps, None, Duration::from_millis(5)).unwrap();
        let w = s.stop();
        assert_eq!(w.mean_mhz, Some(1250.0));
        assert_eq!(w.min_khz, Some(1000000));
    }

    #[test]
    fn write_access_follows_the_kernel() {
        // access(2) and geteuid(2) through libc.
        let root = fixture("access");
        let f = root.join("sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq");
        assert_eq!(
            super::super::writable(&f),
            super::super::is_root() || {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(&f).unwrap().permissions().mode() & 0o200 != 0
            }
        );
        assert!(!super::super::writable(&root.join("missing")));
        let mut sysfs = Sysfs::new(&root);
        sysfs.deny(f.clone());
        assert!(!sysfs.writable(&f));
    }
}
