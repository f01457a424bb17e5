//! `joulebench gemm` and `joulebench peak`: GEMM throughput as a fraction of the
//! machine's measured FMA peak.

use super::analyze::stats::median;
use crate::engine::gemm::{
    gemm_flops, measure_peak, BOperand, CacheConfig, Epilogue, Gemm, Kernel, MatMut, MatRef,
    ParallelLoop, Peak,
};
use crate::engine::EngineError;
use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};

/// What `joulebench gemm` was asked to run.
#[derive(Clone, Debug)]
pub struct GemmSpec {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub threads: usize,
    pub mc: Option<usize>,
    pub nc: Option<usize>,
    pub kc: Option<usize>,
    pub parallel: ParallelLoop,
    /// Minimum measuring time; at least `MIN_RUNS` runs are taken regardless.
    pub seconds: f64,
    /// Skip measuring the FMA peak (saves about a second).
    pub skip_peak: bool,
}

/// What `joulebench gemm` measured.
#[derive(Clone, Debug, Serialize)]
pub struct GemmReport {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub kernel: &'static str,
    pub threads: usize,
    pub mc: usize,
    pub nc: usize,
    pub kc: usize,
    #[serde(rename = "loop")]
    pub parallel: ParallelLoop,
    pub runs: usize,
    pub median_s: f64,
    /// Median GFLOP/s.
    pub gflops: f64,
    pub best_gflops: f64,
    pub peak_gflops: Option<f64>,
    pub fraction_of_peak: Option<f64>,
}

const MIN_RUNS: usize = 3;

/// Inputs for timed runs: values in [-1, 1) from the one seeded generator.
pub use crate::engine::rng::fill_uniform;

/// Runs the GEMM benchmark.
pub fn run_gemm(spec: &GemmSpec) -> Result<GemmReport, EngineError> {
    let (m, n, k) = (spec.m, spec.n, spec.k);
    if m == 0 || n == 0 || k == 0 {
        return Err(EngineError::param("m, n, k", "all must be at least 1"));
    }
    if !(spec.seconds.is_finite() && spec.seconds >= 0.0) {
        return Err(EngineError::param(
            "seconds",
            "must be a non-negative number",
        ));
    }
    let kernel = Kernel::from_env()?;
    let cache = CacheConfig::auto(kernel.mr, kernel.nr).with_overrides(spec.mc, spec.nc, spec.kc);
    let mut gemm = Gemm::new(kernel, cache, spec.threads, spec.parallel)?;
    let mut a = vec![0.0f32; m * k];
    let mut b = vec![0.0f32; k * n];
    let mut c = vec![0.0f32; m * n];
    fill_uniform(&mut a, 1);
    fill_uniform(&mut b, 2);
    let am = MatRef::row_major(&a, m, k)?;
    let bm = MatRef::row_major(&b, k, n)?;
    let mut cm = MatMut::row_major(&mut c, m, n)?;
    let epi = Epilogue::none();

    gemm.run(1.0, &am, BOperand::Matrix(bm), 0.0, &mut cm, &epi)?; // warm-up
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < MIN_RUNS || start.elapsed().as_secs_f64() < spec.seconds {
        let t = Instant::now();
        gemm.run(1.0, &am, BOperand::Matrix(bm), 0.0, &mut cm, &epi)?;
        times.push(t.elapsed().as_secs_f64());
    }
    let med = median(&times).unwrap_or(f64::NAN);
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    let flops = gemm_flops(m, n, k);
    let peak = if spec.skip_peak {
        None
    } else {
        Some(measure_peak(&kernel, spec.threads, Duration::from_millis(900))?.total_gflops)
    };
    let gflops = flops / med / 1e9;
    let resolved = gemm.cache();
    Ok(GemmReport {
        m,
        n,
        k,
        kernel: kernel.name(),
        threads: spec.threads,
        mc: resolved.mc,
        nc: resolved.nc,
        kc: resolved.kc,
        parallel: if spec.threads == 1 {
            ParallelLoop::Ic
        } else {
            spec.parallel
                .resolve(m, n, kernel.mr, kernel.nr, spec.threads)
        },
        runs: times.len(),
        median_s: med,
        gflops,
        best_gflops: flops / best / 1e9,
        peak_gflops: peak,
        fraction_of_peak: peak.map(|p| gflops / p),
    })
}

impl fmt::Display for GemmReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "GEMM {}x{}x{} (m x n x k), f32", self.m, self.n, self.k)?;
        writeln!(f, "  kernel      {}", self.kernel)?;
        writeln!(
            f,
            "  threads     {} (parallel loop {})",
            self.threads, self.parallel
        )?;
        writeln!(
            f,
            "  blocking    mc={} nc={} kc={}",
            self.mc, self.nc, self.kc
        )?;
        writeln!(
            f,
            "  runs        {} (median {:.3} ms)",
            self.runs,
            self.median_s * 1e3
        )?;
        writeln!(
            f,
            "  GFLOP/s     {:.1} median, {:.1} best",
            self.gflops, self.best_gflops
        )?;
        match (self.peak_gflops, self.fraction_of_peak) {
            (Some(p), Some(fr)) => writeln!(
                f,
                "  peak        {p:.1} GFLOP/s -> {:.1}% of peak",
                fr * 100.0
            ),
            _ => writeln!(f, "  peak        not measured"),
        }
    }
}

/// Runs `joulebench peak`.
pub fn run_peak(threads: usize) -> Result<Peak, EngineError> {
    let kernel = Kernel::from_env()?;
    measure_peak(&kernel, threads, Duration::from_secs(2))
}

/// Human form of a [`Peak`].
pub fn format_peak(p: &Peak) -> String {
    let mut s = format!(
        "FMA peak ({} kernel)\n  per core    {:.1} GFLOP/s\n  {} threads   {:.1} GFLOP/s ({:.2}x one core)\n",
        p.kernel,
        p.per_core_gflops,
        p.threads,
        p.total_gflops,
        p.total_gflops / p.per_core_gflops
    );
    if let Some(e) = &p.expected {
        s += &match (e.measured_flops_per_cycle, e.max_ghz, e.gflops_at_max) {
            (Some(m), Some(g), Some(x)) => format!(
                "  expected    {} flop/cycle ({}), {x:.1} GFLOP/s at {g:.2} GHz; measured {m:.1} flop/cycle\n",
                e.flops_per_cycle, e.core
            ),
            _ => format!(
                "  expected    {} flop/cycle ({}); no cpufreq maximum to compare against\n",
                e.flops_per_cycle, e.core
            ),
        };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gemm::ExpectedPeak;
    use std::path::Path;

    #[test]
    fn peak_shows_the_expected_figure_beside_the_measured() {
        let board = |b: &str| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/boards")
                .join(b)
        };
        let mut p = Peak {
            kernel: "neon",
            threads: 4,
            per_core_gflops: 30.0,
            total_gflops: 120.0,
            expected: ExpectedPeak::at(&board("pi5-cortex-a76"), 30.0),
        };
        let s = format_peak(&p);
        assert!(
            s.contains("expected    16 flop/cycle (cortex-a76), 38.4 GFLOP/s at 2.40 GHz; measured 12.5 flop/cycle"),
            "{s}"
        );
        p.expected = ExpectedPeak::at(&board("graviton2-neoverse-n1"), 30.0);
        assert!(format_peak(&p).contains("16 flop/cycle (neoverse-n1); no cpufreq"));
        p.expected = None;
        assert!(!format_peak(&p).contains("expected"));
    }
}
