//! An estimate for machines without a power sensor (e.g. Graviton on EC2):
//! idle watts over the window plus per-core active watts times the CPU time
//! used: joulebench's own, and a peer engine's program's (the followed
//! process, read from /proc/PID/stat, and once reaped from the children's
//! rusage). Every row it touches has `power_estimated = true`.
//!
//! Defaults are the Cloud Carbon Footprint project's coefficients for AWS
//! Graviton2 (0.47 W per vCPU idle, 1.69 W per vCPU busy): idle = 0.47 W per
//! logical CPU, active = 1.69 - 0.47 = 1.22 W per busy core. They are rough;
//! set `idle_watts` and `core_watts` from a measurement of your own machine.

use super::{PowerError, PowerSource, RailEnergy, RunClock, Window};
use std::path::PathBuf;

/// Default idle watts per logical CPU.
pub const DEFAULT_IDLE_WATTS_PER_CPU: f64 = 0.47;
/// Default watts per busy core above idle.
pub const DEFAULT_CORE_WATTS: f64 = 1.22;

/// CPU time used by this process (all threads), in seconds.
pub fn process_cpu_seconds() -> Result<f64, PowerError> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call;
    // CLOCK_PROCESS_CPUTIME_ID is a clock every Linux and macOS kernel has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Err(PowerError::Io {
            path: PathBuf::from("<clock_gettime(CLOCK_PROCESS_CPUTIME_ID)>"),
            reason: std::io::Error::last_os_error().to_string(),
        });
    }
    Ok(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

/// CPU seconds (user + system) of process `pid` from /proc/PID/stat, all
/// its threads and the children it reaped; also of a zombie that is not
/// reaped yet. `None` once it is gone.
pub fn pid_cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (field 3) ... utime (14), stime (15), cutime (16), cstime (17).
    let ticks = (11..15)
        .map(|i| f.get(i)?.parse::<f64>().ok())
        .sum::<Option<f64>>()?;
    let tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)? as f64;
    Some(ticks / tck)
}

/// CPU seconds of the children this process has reaped.
fn reaped_children_cpu_seconds() -> f64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 * 1e-6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// The estimate source.
pub struct Estimate {
    idle_w: f64,
    core_w: f64,
    start: Option<(f64, f64)>,
    /// A peer engine's program whose CPU time counts too.
    followed: Option<u32>,
}

impl Estimate {
    /// CPU seconds that count: this process, its reaped children, and the
    /// followed process while it is not reaped (after, it is in the second).
    fn cpu_seconds(&self) -> Result<f64, PowerError> {
        let live = self.followed.and_then(pid_cpu_seconds).unwrap_or(0.0);
        Ok(process_cpu_seconds()? + reaped_children_cpu_seconds() + live)
    }
}

impl Estimate {
    /// `idle_watts`: `None` for 0.47 W per logical CPU.
    pub fn new(idle_watts: Option<f64>, core_watts: f64) -> Result<Estimate, PowerError> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let idle_w = idle_watts.unwrap_or(DEFAULT_IDLE_WATTS_PER_CPU * cpus as f64);
        if !(idle_w.is_finite() && idle_w >= 0.0 && core_watts.is_finite() && core_watts >= 0.0) {
            return Err(PowerError::Config(format!(
                "estimate coefficients must be finite and non-negative (idle_watts = {idle_w}, core_watts = {core_watts})"
            )));
        }
        process_cpu_seconds()?;
        Ok(Estimate {
            idle_w,
            core_w: core_watts,
            start: None,
            followed: None,
        })
    }
}

impl PowerSource for Estimate {
    fn name(&self) -> &str {
        "estimate"
    }

    fn estimated(&self) -> bool {
        true
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "source": "estimate",
            "estimated": true,
            "idle_watts": self.idle_w,
            "core_watts": self.core_w,
            "model": "energy = idle_watts x window + core_watts x CPU seconds of joulebench and of the peer engine's program (an estimate, not a measurement)",
        })
    }

    fn known_idle_w(&self) -> Option<f64> {
        Some(self.idle_w)
    }

    fn follow(&mut self, pid: Option<u32>) {
        self.followed = pid;
    }

    fn start(&mut self, clock: &RunClock) -> Result<(), PowerError> {
        self.start = Some((clock.now_s(), self.cpu_seconds()?));
        Ok(())
    }

    fn stop(&mut self, clock: &RunClock) -> Result<Window, PowerError> {
        let cpu1 = self.cpu_seconds()?;
        let t1 = clock.now_s();
        let (t0, cpu0) = self
            .start
            .take()
            .ok_or_else(|| PowerError::Config("estimate stopped before it started".into()))?;
        let dur = (t1 - t0).max(0.0);
        let idle = self.idle_w * dur;
        let active = self.core_w * (cpu1 - cpu0).max(0.0);
        let e = idle + active;
        let mean = |x: f64| if dur > 0.0 { x / dur } else { 0.0 };
        Ok(Window {
            source: "estimate".into(),
            estimated: true,
            start_s: t0,
            end_s: t1,
            energy_j: Some(e),
            mean_w: (dur > 0.0).then(|| e / dur),
            samples: None,
            rails: vec![
                RailEnergy {
                    name: "idle".into(),
                    energy_j: idle,
                    mean_w: mean(idle),
                },
                RailEnergy {
                    name: "cpu".into(),
                    energy_j: active,
                    mean_w: mean(active),
                },
            ],
            raw: Vec::new(),
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_cpu_time_advances_with_work() {
        let a = process_cpu_seconds().unwrap();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed().as_millis() < 50 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let b = process_cpu_seconds().unwrap();
        assert!(b - a > 0.01, "{a} -> {b}");
    }

    #[test]
    fn the_estimate_is_idle_plus_core_watts_times_cpu_time_and_labelled() {
        let clock = RunClock::start();
        let mut e = Estimate::new(Some(2.0), 3.0).unwrap();
        assert!(e.estimated());
        e.start(&clock).unwrap();
        // The estimate also counts reaped children, and tests running beside
        // this one reap theirs, so the bound takes the same counters.
        let all_cpu = || process_cpu_seconds().unwrap() + reaped_children_cpu_seconds();
        let c0 = all_cpu();
        let t = std::time::Instant::now();
        let mut x = 1u64;
        while t.elapsed().as_millis() < 100 {
            x = x.wrapping_mul(3).wrapping_add(7);
        }
        std::hint::black_box(x);
        let w = e.stop(&clock).unwrap();
        let cpu = all_cpu() - c0;
        assert!(w.estimated);
        let idle = 2.0 * w.duration_s();
        let e_j = w.energy_j.unwrap();
        assert!(
            e_j >= idle && e_j <= idle + 3.0 * cpu + 1e-3,
            "{e_j} {idle} {cpu}"
        );
        assert!(Estimate::new(Some(-1.0), 1.0).is_err());
    }

    /// A child that burns about 0.3 s of CPU and exits.
    fn busy_child() -> std::process::Child {
        std::process::Command::new("sh")
            .args([
                "-c",
                "end=$(($(date +%s%N) + 300000000)); while [ $(date +%s%N) -lt $end ]; do :; done",
            ])
            .spawn()
            .unwrap()
    }

    fn zombie(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|t| t[t.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
    }

    #[test]
    fn a_followed_programs_cpu_time_counts_before_and_after_it_is_reaped() {
        let clock = RunClock::start();
        for reap_first in [false, true] {
            let mut e = Estimate::new(Some(0.0), 10.0).unwrap();
            let mut child = busy_child();
            e.follow(Some(child.id()));
            e.start(&clock).unwrap();
            while !zombie(child.id()) {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let child_cpu = pid_cpu_seconds(child.id()).unwrap();
            let w = if reap_first {
                child.wait().unwrap();
                assert_eq!(pid_cpu_seconds(child.id()), None);
                e.stop(&clock).unwrap()
            } else {
                let w = e.stop(&clock).unwrap();
                child.wait().unwrap();
                w
            };
            e.follow(None);
            let cpu = w.energy_j.unwrap() / 10.0;
            // The shell's CPU time, to the kernel's tick (10 ms).
            assert!(child_cpu > 0.1, "{child_cpu}");
            assert!(
                cpu >= child_cpu - 0.03,
                "reap_first {reap_first}: {cpu} < {child_cpu}"
            );
            assert!(
                cpu < child_cpu + 0.3,
                "reap_first {reap_first}: {cpu} vs {child_cpu}"
            );
        }
    }
}
