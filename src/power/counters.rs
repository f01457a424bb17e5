//! Hardware and software counters for a measured window, through
//! `perf_event_open` (the perf-event2 crate).
//!
//! Every thread of the process that exists when the window starts (the
//! engine's worker pools persist between points) gets its own groups; the
//! values are summed over threads. Each group is read with time_enabled and
//! time_running and scaled by enabled/running when the kernel multiplexed
//! it. Three groups, so each fits the PMU's counters and the ratios inside a
//! group are counted over the same time:
//! - cycles, instructions, branch misses (IPC from one group);
//! - cache references, cache misses, L1d read misses, LLC read misses;
//! - task clock and context switches (software events, which work without a
//!   PMU, e.g. in a virtual machine).
//!
//! Where the kernel has no PMU (most virtual machines) the hardware columns
//! stay empty and the manifest says why; where `perf_event_paranoid`
//! forbids counting, the message says how to allow it. With paranoid = 2
//! only user space is counted (`exclude_kernel`).
//!
//! On aarch64 (Arm PMUv3) the generic `cache-references` / `cache-misses`
//! events count L1 data cache accesses / refills (L1D_CACHE,
//! L1D_CACHE_REFILL), not the last level; `llc_misses` uses the generic LL
//! read-miss event, which the kernel maps only on cores it knows (empty
//! otherwise).

use perf_event::events::{Cache, CacheId, CacheOp, CacheResult, Event, Hardware, Software};
use perf_event::{Builder, Counter, Group};
use serde::Serialize;

/// The counter values of one window; `None` where not available.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CounterValues {
    pub cycles: Option<f64>,
    pub instructions: Option<f64>,
    pub cache_references: Option<f64>,
    pub cache_misses: Option<f64>,
    pub l1d_read_misses: Option<f64>,
    pub llc_misses: Option<f64>,
    pub branch_misses: Option<f64>,
    pub task_clock_ms: Option<f64>,
    pub context_switches: Option<f64>,
}

impl CounterValues {
    pub fn ipc(&self) -> Option<f64> {
        match (self.instructions, self.cycles) {
            (Some(i), Some(c)) if c > 0.0 => Some(i / c),
            _ => None,
        }
    }
}

/// The counters joulebench reads, in groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Cycles,
    Instructions,
    BranchMisses,
    CacheReferences,
    CacheMisses,
    L1dReadMisses,
    LlcMisses,
    TaskClock,
    ContextSwitches,
}

const GROUPS: &[&[Which]] = &[
    &[Which::Cycles, Which::Instructions, Which::BranchMisses],
    &[
        Which::CacheReferences,
        Which::CacheMisses,
        Which::L1dReadMisses,
        Which::LlcMisses,
    ],
    &[Which::TaskClock, Which::ContextSwitches],
];

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Cycles => "cycles",
            Which::Instructions => "instructions",
            Which::BranchMisses => "branch_misses",
            Which::CacheReferences => "cache_references",
            Which::CacheMisses => "cache_misses",
            Which::L1dReadMisses => "l1d_read_misses",
            Which::LlcMisses => "llc_misses",
            Which::TaskClock => "task_clock_ms",
            Which::ContextSwitches => "context_switches",
        }
    }

    fn builder(self) -> Builder<'static> {
        fn b(e: impl Event + 'static) -> Builder<'static> {
            Builder::new(e)
        }
        let cache = |which, result| Cache {
            which,
            operation: CacheOp::READ,
            result,
        };
        match self {
            Which::Cycles => b(Hardware::CPU_CYCLES),
            Which::Instructions => b(Hardware::INSTRUCTIONS),
            Which::BranchMisses => b(Hardware::BRANCH_MISSES),
            Which::CacheReferences => b(Hardware::CACHE_REFERENCES),
            Which::CacheMisses => b(Hardware::CACHE_MISSES),
            Which::L1dReadMisses => b(cache(CacheId::L1D, CacheResult::MISS)),
            Which::LlcMisses => b(cache(CacheId::LL, CacheResult::MISS)),
            Which::TaskClock => b(Software::TASK_CLOCK),
            Which::ContextSwitches => b(Software::CONTEXT_SWITCHES),
        }
    }

    fn slot(self, v: &mut CounterValues) -> &mut Option<f64> {
        match self {
            Which::Cycles => &mut v.cycles,
            Which::Instructions => &mut v.instructions,
            Which::BranchMisses => &mut v.branch_misses,
            Which::CacheReferences => &mut v.cache_references,
            Which::CacheMisses => &mut v.cache_misses,
            Which::L1dReadMisses => &mut v.l1d_read_misses,
            Which::LlcMisses => &mut v.llc_misses,
            Which::TaskClock => &mut v.task_clock_ms,
            Which::ContextSwitches => &mut v.context_switches,
        }
    }

    /// Adds a raw count (task clock: nanoseconds, recorded in ms).
    fn add(self, v: &mut CounterValues, raw: f64) {
        let x = if self == Which::TaskClock {
            raw / 1e6
        } else {
            raw
        };
        let slot = self.slot(v);
        *slot = Some(slot.unwrap_or(0.0) + x);
    }
}

/// What counting is possible here, for the manifest and `sensors`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CounterStatus {
    /// `kernel.perf_event_paranoid`, when readable.
    pub perf_event_paranoid: Option<i32>,
    /// Whether kernel time is excluded (paranoid >= 2 without privileges).
    pub user_space_only: bool,
    pub available: Vec<&'static str>,
    /// Counter name and why it is not available.
    pub unavailable: Vec<(&'static str, String)>,
    /// One sentence for the manifest.
    pub summary: String,
}

fn paranoid() -> Option<i32> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn reason(which: Which, e: &std::io::Error, paranoid: Option<i32>) -> String {
    let hardware = !matches!(which, Which::TaskClock | Which::ContextSwitches);
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "perf_event_paranoid = {} forbids counting ({e}); allow it with `sudo sysctl -w kernel.perf_event_paranoid=2` (own process, user space) or 1 (with kernel), or run with CAP_PERFMON",
            paranoid.map_or("?".into(), |p| p.to_string())
        ),
        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) | Some(libc::ENODEV) | Some(libc::EINVAL)
            if hardware =>
        {
            format!("no hardware PMU for this event: the kernel exposes none (a virtual machine without PMU passthrough?) or does not map it on this CPU ({e})")
        }
        _ => format!("perf_event_open failed: {e}"),
    }
}

/// A group open on one thread.
struct OpenGroup {
    group: Group,
    members: Vec<(Which, Counter)>,
}

/// Counts the window's events on every thread of the process.
pub struct Counters {
    status: CounterStatus,
    exclude_kernel: bool,
    /// Available counters by group.
    groups: Vec<Vec<Which>>,
    open: Vec<OpenGroup>,
}

fn thread_ids() -> Vec<libc::pid_t> {
    thread_ids_in("/proc/self/task")
}

fn thread_ids_in(task_dir: &str) -> Vec<libc::pid_t> {
    let mut v: Vec<libc::pid_t> = std::fs::read_dir(task_dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

fn open_group(
    tid: libc::pid_t,
    events: &[Which],
    exclude_kernel: bool,
) -> Result<(OpenGroup, Vec<(Which, std::io::Error)>), std::io::Error> {
    let mut gb = Group::builder();
    gb.observe_pid(tid)
        .any_cpu()
        .exclude_kernel(exclude_kernel)
        .exclude_hv(true);
    let mut group = gb.build_group()?;
    let mut members = Vec::new();
    let mut failed = Vec::new();
    for &w in events {
        let mut b = w.builder();
        b.observe_pid(tid)
            .any_cpu()
            .exclude_kernel(exclude_kernel)
            .exclude_hv(true);
        match group.add(&b) {
            Ok(c) => members.push((w, c)),
            Err(e) => failed.push((w, e)),
        }
    }
    Ok((OpenGroup { group, members }, failed))
}

impl Counters {
    /// Finds out which counters can be read here (opening each on this
    /// thread once).
    pub fn probe() -> Counters {
        let p = paranoid();
        // Root (or CAP_PERFMON) may count the kernel whatever the setting;
        // try with the kernel first, then user space only.
        let mut exclude_kernel = false;
        let mut status = CounterStatus {
            perf_event_paranoid: p,
            ..CounterStatus::default()
        };
        let try_all = |ek: bool| {
            let mut avail = Vec::new();
            let mut bad: Vec<(Which, std::io::Error)> = Vec::new();
            for g in GROUPS {
                match open_group(0, g, ek) {
                    Ok((og, failed)) => {
                        avail.push(og.members.iter().map(|(w, _)| *w).collect::<Vec<_>>());
                        bad.extend(failed);
                    }
                    Err(e) => {
                        avail.push(Vec::new());
                        for &w in g.iter() {
                            bad.push((
                                w,
                                std::io::Error::from_raw_os_error(
                                    e.raw_os_error().unwrap_or(libc::EINVAL),
                                ),
                            ));
                        }
                    }
                }
            }
            (avail, bad)
        };
        let (mut groups, mut bad) = try_all(false);
        let denied = |bad: &[(Which, std::io::Error)]| {
            bad.iter()
                .any(|(_, e)| matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)))
        };
        if denied(&bad) {
            let (g2, b2) = try_all(true);
            if g2.iter().map(Vec::len).sum::<usize>() > groups.iter().map(Vec::len).sum::<usize>() {
                groups = g2;
                bad = b2;
                exclude_kernel = true;
            }
        }
        status.user_space_only = exclude_kernel;
        status.available = groups.iter().flatten().map(|w| w.name()).collect();
        status.unavailable = bad
            .iter()
            .map(|(w, e)| (w.name(), reason(*w, e, p)))
            .collect();
        let hw_missing = bad
            .iter()
            .any(|(w, _)| !matches!(w, Which::TaskClock | Which::ContextSwitches));
        status.summary = if status.unavailable.is_empty() {
            format!(
                "all counters available{}",
                if exclude_kernel {
                    " (user space only)"
                } else {
                    ""
                }
            )
        } else if status.available.is_empty() {
            format!("no counters: {}", status.unavailable[0].1)
        } else if hw_missing {
            format!(
                "counting {} only; hardware counters not available (see unavailable)",
                status.available.join(", ")
            )
        } else {
            format!("counting {}", status.available.join(", "))
        };
        Counters {
            status,
            exclude_kernel,
            groups,
            open: Vec::new(),
        }
    }

    pub fn status(&self) -> &CounterStatus {
        &self.status
    }

    /// Opens and enables the groups on every current thread.
    pub fn start(&mut self) {
        self.start_on(thread_ids());
    }

    /// Opens and enables the groups on every thread another process (a peer
    /// engine's program) has now; threads it starts later are not counted.
    pub fn start_process(&mut self, pid: u32) {
        self.start_on(thread_ids_in(&format!("/proc/{pid}/task")));
    }

    fn start_on(&mut self, tids: Vec<libc::pid_t>) {
        self.open.clear();
        for tid in tids {
            for g in &self.groups {
                if g.is_empty() {
                    continue;
                }
                // A thread that exits meanwhile only fails to open.
                if let Ok((mut og, _)) = open_group(tid, g, self.exclude_kernel) {
                    if og.group.enable().is_ok() {
                        self.open.push(og);
                    }
                }
            }
        }
    }

    /// Disables, reads and closes the groups: values summed over threads,
    /// each scaled by time_enabled / time_running.
    pub fn stop(&mut self) -> CounterValues {
        let mut v = CounterValues::default();
        for mut og in self.open.drain(..) {
            let _ = og.group.disable();
            let Ok(data) = og.group.read() else { continue };
            let enabled = data.time_enabled().map_or(0.0, |d| d.as_secs_f64());
            let running = data.time_running().map_or(0.0, |d| d.as_secs_f64());
            for (w, c) in &og.members {
                let Some(entry) = data.get(c) else { continue };
                let raw = entry.value() as f64;
                let x = if running > 0.0 && enabled > running {
                    raw * enabled / running
                } else if running > 0.0 || raw == 0.0 {
                    raw
                } else {
                    continue; // never scheduled: unknown, not zero
                };
                w.add(&mut v, x);
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_report_what_they_can_and_why_not_the_rest() {
        let mut c = Counters::probe();
        let s = c.status().clone();
        assert_eq!(
            s.available.len() + s.unavailable.len(),
            GROUPS.iter().map(|g| g.len()).sum::<usize>(),
            "{s:?}"
        );
        assert!(!s.summary.is_empty());
        for (_, why) in &s.unavailable {
            assert!(!why.is_empty());
        }
        c.start();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let v = c.stop();
        // Whatever is available was counted; the rest is empty.
        if s.available.contains(&"task_clock_ms") {
            assert!(v.task_clock_ms.unwrap() > 0.0, "{v:?}");
        } else {
            assert_eq!(v.task_clock_ms, None);
        }
        if s.available.contains(&"instructions") {
            assert!(v.instructions.unwrap() > 1e6, "{v:?}");
        } else {
            assert_eq!(v.instructions, None);
            assert_eq!(v.ipc(), None);
        }
    }

    #[test]
    fn ipc_needs_both_counts() {
        let v = CounterValues {
            cycles: Some(2.0),
            instructions: Some(3.0),
            ..CounterValues::default()
        };
        assert_eq!(v.ipc(), Some(1.5));
        assert_eq!(CounterValues::default().ipc(), None);
    }
}
