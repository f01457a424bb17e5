//! `joulebench gemm`.

use super::{emit, Blocking, Format};
use anyhow::Result;
use joulebench::engine::EngineError;
use joulebench::guard;
use joulebench::harness::gemm_cmd::{self, GemmSpec};

#[derive(clap::Args)]
pub struct GemmArgs {
    #[arg(long)]
    m: usize,
    #[arg(long)]
    n: usize,
    #[arg(long)]
    k: usize,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[command(flatten)]
    blocking: Blocking,
    /// Minimum measuring time in seconds (at least 3 runs are timed).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Do not measure the FMA peak.
    #[arg(long)]
    no_peak: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl GemmArgs {
    pub fn run(self) -> Result<()> {
        // A, B and C in f32, refused before they are allocated.
        let (m, n, k) = (self.m, self.n, self.k);
        let f32s = |a, b| guard::memory::bytes_of(&[a, b], 4);
        let bytes = f32s(m, k)
            .saturating_add(f32s(k, n))
            .saturating_add(f32s(m, n));
        guard::memory::check_fits(
            &format!("gemm --m {m} --n {n} --k {k} (A, B and C in f32)"),
            bytes,
            "use smaller --m, --n and --k",
        )
        .map_err(EngineError::from)?;
        let spec = GemmSpec {
            m: self.m,
            n: self.n,
            k: self.k,
            threads: self.threads,
            mc: self.blocking.mc,
            nc: self.blocking.nc,
            kc: self.blocking.kc,
            parallel: self.blocking.parallel,
            seconds: self.seconds,
            skip_peak: self.no_peak,
        };
        let r = gemm_cmd::run_gemm(&spec)?;
        emit(self.format, &r, || r.to_string())
    }
}
