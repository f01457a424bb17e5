//! Measured FMA peak: independent FMA chains in the kernel's vector width, so
//! GEMM figures can be given as a fraction of what this machine really does
//! (clock, turbo and SMT included), not of a datasheet number.

use super::kernels::Kernel;
use crate::engine::EngineError;
use serde::Serialize;
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
    })
}
