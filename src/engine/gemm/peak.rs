//! Measured FMA peak: independent FMA chains in the kernel's vector width, so
//! GEMM figures can be given as a fraction of what this machine really does
//! (clock, turbo and SMT included), not of a datasheet number.

use super::arm_cores;
use super::kernels::Kernel;
use crate::engine::EngineError;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// Measured floating-point peak.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Peak {
    pub kernel: &'static str,
    pub threads: usize,
    /// GFLOP/s of one thread running alone.
    pub per_core_gflops: f64,
    /// GFLOP/s of all threads running at once.
    pub total_gflops: f64,
    /// What cpu0's core should reach, where the table knows it.
    pub expected: Option<ExpectedPeak>,
}

/// The FMA throughput cpu0's core is built for (ARM's optimization guides,
/// by the part number in /proc/cpuinfo), and at its highest clock.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ExpectedPeak {
    pub core: &'static str,
    pub flops_per_cycle: f64,
    /// cpufreq's `cpuinfo_max_freq` of cpu0 in GHz, where cpufreq exists.
    pub max_ghz: Option<f64>,
    /// `flops_per_cycle` at `max_ghz`.
    pub gflops_at_max: Option<f64>,
    /// The measured one-thread figure per cycle at `max_ghz`.
    pub measured_flops_per_cycle: Option<f64>,
}

impl ExpectedPeak {
    /// For the machine below `root` (`/` for this one), against a measured
    /// one-thread `per_core_gflops`; `None` where cpu0's core is not in the
    /// table (x86-64, unknown parts).
    pub fn at(root: &Path, per_core_gflops: f64) -> Option<ExpectedPeak> {
        let core = arm_cores::cpu0_core_at(root)?;
        let max_ghz = std::fs::read_to_string(
            root.join("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"),
        )
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&khz| khz > 0)
        .map(|khz| khz as f64 / 1e6);
        let fpc = core.flops_per_cycle();
        Some(ExpectedPeak {
            core: core.name(),
            flops_per_cycle: fpc,
            max_ghz,
            gflops_at_max: max_ghz.map(|g| g * fpc),
            measured_flops_per_cycle: max_ghz.map(|g| per_core_gflops / g),
        })
    }
}

/// Iterations between clock reads: long enough that timing overhead vanishes.
const CHUNK: u64 = 1 << 20;

/// Runs the FMA chains for about `dur`; returns (flops, seconds).
fn run_chains(kernel: &Kernel, dur: Duration) -> (f64, f64) {
    let start = Instant::now();
    let mut iters = 0u64;
    let mut sink = 0.0f32;
    while start.elapsed() < dur {
        // SAFETY: the kernel came from `Kernel::get`, which checked the CPU runs it.
        sink += unsafe { (kernel.fma_chains)(CHUNK) };
        iters += CHUNK;
    }
    std::hint::black_box(sink);
    let secs = start.elapsed().as_secs_f64();
    (iters as f64 * kernel.chain_flops_per_iter as f64, secs)
}

/// Best of `rounds` windows of one thread, then all `threads` threads at once.
pub fn measure_peak(kernel: &Kernel, threads: usize, dur: Duration) -> Result<Peak, EngineError> {
    if threads == 0 {
        return Err(EngineError::param("threads", "must be at least 1"));
    }
    let rounds = 3;
    let window = dur / (2 * rounds);
    let mut single: f64 = 0.0;
    for _ in 0..rounds {
        let (f, s) = run_chains(kernel, window);
        single = single.max(f / s / 1e9);
    }
    let mut total: f64 = 0.0;
    for _ in 0..rounds {
        let rates: Vec<f64> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..threads)
                .map(|_| sc.spawn(|| run_chains(kernel, window)))
                .collect();
            hs.into_iter()
                .map(|h| h.join().map(|(f, s)| f / s / 1e9).unwrap_or(0.0))
                .collect()
        });
        total = total.max(rates.iter().sum());
    }
    Ok(Peak {
        kernel: kernel.name(),
        threads,
        per_core_gflops: single,
        total_gflops: total,
        expected: ExpectedPeak::at(Path::new("/"), single),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/boards")
            .join(name)
    }

    #[test]
    fn expected_figures_of_the_boards() {
        // Pi 5: Cortex-A76, two 128-bit FMA pipes, 2.4 GHz.
        let e = ExpectedPeak::at(&board("pi5-cortex-a76"), 30.0).unwrap();
        assert_eq!(e.core, "cortex-a76");
        assert_eq!(e.flops_per_cycle, 16.0);
        assert_eq!(e.max_ghz, Some(2.4));
        assert!((e.gflops_at_max.unwrap() - 38.4).abs() < 1e-9);
        assert!((e.measured_flops_per_cycle.unwrap() - 12.5).abs() < 1e-9);
        // Pi 3: one FMA pipe at 1.2 GHz.
        let e = ExpectedPeak::at(&board("pi3-cortex-a53"), 9.6).unwrap();
        assert_eq!((e.core, e.flops_per_cycle), ("cortex-a53", 8.0));
        assert!((e.measured_flops_per_cycle.unwrap() - 8.0).abs() < 1e-9);
        // Graviton 3 guests have no cpufreq: the figure per cycle only.
        let e = ExpectedPeak::at(&board("graviton3-neoverse-v1"), 80.0).unwrap();
        assert_eq!((e.core, e.flops_per_cycle), ("neoverse-v1", 32.0));
        assert_eq!((e.max_ghz, e.measured_flops_per_cycle), (None, None));
        assert_eq!(ExpectedPeak::at(&board("x86-64"), 90.0), None);
    }
}
