//! The BLIS five-loop GEMM: jc (nc columns of B) -> pc (kc deep) -> ic (mc rows
//! of A) -> jr (nr micro-panels) -> ir (mr micro-panels), with one of jc, ic or
//! jr spread over the run's threads.

use super::cache_config::CacheConfig;
use super::epilogue::{Axis, Epilogue, TileCtx};
use super::kernels::Kernel;
use super::matrix::MatMut;
use super::pack::{pack_b_panels, ASource, AlignedBuf, PackedB};
use super::threads;
use super::MatRef;
use crate::engine::EngineError;
use clap::ValueEnum;
use rayon::prelude::*;
use rayon::ThreadPool;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

/// Which loop of the five is spread over threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum ParallelLoop {
    /// Chosen per call from the shape: jr when splitting B's micro-panels
    /// balances the threads clearly better than splitting A's, else ic.
    #[default]
    Auto,
    Jc,
    Ic,
    Jr,
}

impl ParallelLoop {
    pub fn name(self) -> &'static str {
        match self {
            ParallelLoop::Auto => "auto",
            ParallelLoop::Jc => "jc",
            ParallelLoop::Ic => "ic",
            ParallelLoop::Jr => "jr",
        }
    }

    /// The loop actually used for an `m x n` problem with `mr x nr` tiles.
    pub fn resolve(self, m: usize, n: usize, mr: usize, nr: usize, threads: usize) -> ParallelLoop {
        match self {
            ParallelLoop::Auto => {
                // Share of the work the busiest thread gets, relative to an even
                // split: rows of micro-panels (ic) or columns of them (jr).
                let balance = |panels: usize| {
                    let per = panels.div_ceil(threads);
                    panels as f64 / (per * threads) as f64
                };
                let (ic, jr) = (balance(m.div_ceil(mr)), balance(n.div_ceil(nr)));
                // ic shares B's packing and forks once per k-block; jr forks per
                // A block, so it has to balance clearly better to be chosen.
                if jr > ic + 0.02 {
                    ParallelLoop::Jr
                } else {
                    ParallelLoop::Ic
                }
            }
            other => other,
        }
    }
}

impl fmt::Display for ParallelLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ParallelLoop {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as ValueEnum>::from_str(s.trim(), true).map_err(|_| {
            EngineError::param(
                "loop",
                format!(
                    "unknown parallel loop `{}`; use jc, ic, jr or auto",
                    s.trim()
                ),
            )
        })
    }
}

/// The B operand: a matrix packed on the fly, or weights packed once.
#[derive(Clone, Copy)]
pub enum BOperand<'a> {
    Matrix(MatRef<'a>),
    Packed(&'a PackedB),
}

impl BOperand<'_> {
    fn dims(&self) -> (usize, usize) {
        match self {
            BOperand::Matrix(b) => (b.rows(), b.cols()),
            BOperand::Packed(p) => (p.k(), p.n()),
        }
    }
}

/// A GEMM engine: kernel, blocking, threads and reusable packing buffers.
/// After the first call of a given size, `run` allocates nothing.
pub struct Gemm {
    kernel: Kernel,
    cache: CacheConfig,
    threads: usize,
    parallel: ParallelLoop,
    pool: Option<Arc<ThreadPool>>,
    /// One packed-A buffer per thread.
    a_bufs: Vec<AlignedBuf>,
    /// Packed-B buffers: one shared (ic/jr loops) or one per thread (jc loop).
    b_bufs: Vec<AlignedBuf>,
}

/// Everything the macro-kernel shares across threads: C and the epilogue's raw
/// pointers, which every thread writes through at disjoint tiles.
#[derive(Clone, Copy)]
struct Out {
    c: *mut f32,
    rs: usize,
    cs: usize,
    alpha: f32,
    beta: f32,
    axis: Axis,
    scale: *const f32,
    bias: *const f32,
    residual: *const f32,
    res_rs: usize,
    res_cs: usize,
    act: super::Activation,
}

// SAFETY: `Out` is only dereferenced by macro-kernels working on disjoint tiles
// of C (the loop partitioning guarantees it); the epilogue pointers are read-only.
unsafe impl Send for Out {}
// SAFETY: see Send.
unsafe impl Sync for Out {}

/// Where the macro-kernel finds one A block's micro-panels.
#[derive(Clone, Copy)]
struct APanels<'a> {
    /// Packed panels: all of them, or with `direct` only the partial last one.
    packed: &'a [f32],
    /// A read in place by a row kernel: (A's data, offset of the block's first
    /// row and column, row stride). Covers the block's whole panels.
    direct: Option<(&'a [f32], usize, usize)>,
}

impl APanels<'_> {
    /// Start and row stride of micro-panel `ip` of a block of `mcb` rows.
    fn panel(&self, ip: usize, mr: usize, kcb: usize, mcb: usize) -> (*const f32, usize) {
        match self.direct {
            Some((data, off, lda)) if ip < mcb / mr => (data[off + ip * mr * lda..].as_ptr(), lda),
            Some(_) => (self.packed.as_ptr(), kcb),
            None => (self.packed[ip * kcb * mr..].as_ptr(), kcb),
        }
    }
}

/// A as the kernel can read it in place, with its row stride: when the kernel
/// reads rows and A is row-major, except for rows a multiple of 4 KiB apart
/// (they all fall in one L1 set, so those are packed).
fn in_place<'s>(kernel: &Kernel, a: &'s dyn ASource) -> Option<(&'s [f32], usize)> {
    if !kernel.a_rows {
        return None;
    }
    a.direct().filter(|&(_, lda)| (lda * 4) % 4096 != 0)
}

/// Makes block (ic, mcb) x (p0, kcb) of A ready for `kernel`: read in place
/// when the kernel reads rows and A is row-major (only a partial last panel is
/// packed), else packed into `buf`, by `threads` threads together.
#[allow(clippy::too_many_arguments)]
fn prepare_a<'s>(
    kernel: &Kernel,
    a: &'s dyn ASource,
    buf: &'s mut [f32],
    ic: usize,
    mcb: usize,
    p0: usize,
    kcb: usize,
    threads: usize,
) -> APanels<'s> {
    let mr = kernel.mr;
    if let Some((data, lda)) = in_place(kernel, a) {
        let full = mcb / mr;
        if full * mr < mcb {
            a.pack_a_rows(
                &mut buf[..kcb * mr],
                mr,
                ic + full * mr,
                mcb - full * mr,
                p0,
                kcb,
            );
        }
        return APanels {
            packed: buf,
            direct: Some((data, ic * lda + p0, lda)),
        };
    }
    let pack = |dst: &mut [f32], i0: usize, rows: usize| {
        if kernel.a_rows {
            a.pack_a_rows(dst, mr, i0, rows, p0, kcb)
        } else {
            a.pack_a(dst, mr, i0, rows, p0, kcb)
        }
    };
    let dst = &mut buf[..mcb.div_ceil(mr) * mr * kcb];
    if threads > 1 {
        // One contiguous run of panels per thread: few, large jobs.
        let per = mcb.div_ceil(mr).div_ceil(threads);
        dst.par_chunks_mut(per * kcb * mr)
            .enumerate()
            .for_each(|(i, run)| {
                let r0 = ic + i * per * mr;
                pack(run, r0, (per * mr).min(ic + mcb - r0))
            });
    } else {
        pack(dst, ic, mcb);
    }
    APanels {
        packed: buf,
        direct: None,
    }
}

/// One block of work for the macro-kernel.
struct Block<'a> {
    a: APanels<'a>,
    b: &'a [f32],
    ic: usize,
    mcb: usize,
    jc: usize,
    ncb: usize,
    kcb: usize,
    first: bool,
    last: bool,
}

impl Gemm {
    /// A GEMM with `threads` workers (1 runs on the caller, no pool).
    pub fn new(
        kernel: Kernel,
        cache: CacheConfig,
        threads: usize,
        parallel: ParallelLoop,
    ) -> Result<Gemm, EngineError> {
        cache.validate()?;
        threads::check_threads(threads)?;
        let pool = if threads > 1 {
            Some(threads::pool(threads)?)
        } else {
            None
        };
        Ok(Gemm {
            kernel,
            cache: cache.resolved(kernel.nr),
            threads,
            parallel,
            pool,
            a_bufs: (0..threads).map(|_| AlignedBuf::default()).collect(),
            b_bufs: Vec::new(),
        })
    }

    /// Auto kernel (honouring `JOULEBENCH_KERNEL`), auto blocking, one thread.
    pub fn with_defaults() -> Result<Gemm, EngineError> {
        let k = Kernel::from_env()?;
        Gemm::new(k, CacheConfig::auto(k.mr, k.nr), 1, ParallelLoop::Auto)
    }

    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }
    pub fn cache(&self) -> CacheConfig {
        self.cache
    }
    pub fn threads(&self) -> usize {
        self.threads
    }
    pub fn parallel(&self) -> ParallelLoop {
        self.parallel
    }
    /// The pool this GEMM runs on (`None` with one thread), for the layers
    /// around it to use the same workers.
    pub fn pool(&self) -> Option<&ThreadPool> {
        self.pool.as_deref()
    }
    /// The pool as a shared handle (cloning it does not allocate).
    pub fn shared_pool(&self) -> Option<Arc<ThreadPool>> {
        self.pool.clone()
    }

    /// Packs weights once for this GEMM's kernel and kc.
    pub fn pack_b(&self, b: MatRef<'_>) -> Result<PackedB, EngineError> {
        self.pack_b_for(b, self.cache)
    }

    /// Packs weights for this GEMM's kernel with the kc of `cache` (a layer's
    /// own blocking; run them after [`Gemm::set_cache`] with the same config).
    pub fn pack_b_for(&self, b: MatRef<'_>, cache: CacheConfig) -> Result<PackedB, EngineError> {
        PackedB::new(b, &self.kernel, balanced_kc(b.rows(), cache.kc))
    }

    /// Blocking for the calls that follow, so each layer can run with its
    /// own (tuned) mc and nc; weights packed beforehand keep their kc.
    pub fn set_cache(&mut self, cache: CacheConfig) -> Result<(), EngineError> {
        cache.validate()?;
        self.cache = cache.resolved(self.kernel.nr);
        Ok(())
    }

    /// `C = epilogue(alpha * A * B + beta * C)`. `beta == 0` never reads C.
    pub fn run(
        &mut self,
        alpha: f32,
        a: &dyn ASource,
        b: BOperand<'_>,
        beta: f32,
        c: &mut MatMut<'_>,
        epi: &Epilogue<'_>,
    ) -> Result<(), EngineError> {
        let n = b.dims().1;
        self.run_cols(alpha, a, b, beta, c, epi, 0..n)
    }

    /// [`Gemm::run`] for columns `cols` of B and C only; the others are not
    /// touched. Lets threads that each own a share of a layer's output
    /// channels multiply with their single-threaded GEMMs. With B packed,
    /// `cols` must start at a micro-panel boundary (a multiple of nr).
    #[allow(clippy::too_many_arguments)]
    pub fn run_cols(
        &mut self,
        alpha: f32,
        a: &dyn ASource,
        b: BOperand<'_>,
        beta: f32,
        c: &mut MatMut<'_>,
        epi: &Epilogue<'_>,
        cols: Range<usize>,
    ) -> Result<(), EngineError> {
        let (m, k) = (a.rows(), a.depth());
        let (kb, n) = b.dims();
        if m == 0 || n == 0 || k == 0 {
            return Err(EngineError::param(
                "m, n, k",
                format!("all must be at least 1, got m={m} n={n} k={k}"),
            ));
        }
        if kb != k {
            return Err(EngineError::Shape(format!(
                "A is {m}x{k} but B is {kb}x{n}: inner dimensions differ"
            )));
        }
        if c.rows() != m || c.cols() != n {
            return Err(EngineError::Shape(format!(
                "C is {}x{} but A*B is {m}x{n}",
                c.rows(),
                c.cols()
            )));
        }
        epi.validate(m, n)?;
        let (n0, n1) = (cols.start, cols.end);
        if n0 >= n1 || n1 > n {
            return Err(EngineError::param(
                "cols",
                format!("columns {n0}..{n1} are not a non-empty range inside 0..{n}"),
            ));
        }
        if matches!(b, BOperand::Packed(_)) && n0 % self.kernel.nr != 0 {
            return Err(EngineError::param(
                "cols",
                format!(
                    "packed B's columns start at multiples of {}, not {n0}",
                    self.kernel.nr
                ),
            ));
        }
        if let BOperand::Packed(p) = b {
            if p.kernel_name() != self.kernel.name() {
                return Err(EngineError::Shape(format!(
                    "B was packed for the {} kernel but this GEMM runs {}",
                    p.kernel_name(),
                    self.kernel.name()
                )));
            }
        }
        let kc = match b {
            BOperand::Packed(p) => p.kc(),
            BOperand::Matrix(_) => balanced_kc(k, self.cache.kc),
        };
        let res = epi.residual;
        let out = Out {
            c: c.as_mut_ptr(),
            rs: c.row_stride(),
            cs: c.col_stride(),
            alpha,
            beta,
            axis: epi.axis,
            scale: epi.scale.map_or(std::ptr::null(), |s| s.as_ptr()),
            bias: epi.bias.map_or(std::ptr::null(), |s| s.as_ptr()),
            residual: res.map_or(std::ptr::null(), |r| r.data().as_ptr()),
            res_rs: res.map_or(0, |r| r.row_stride()),
            res_cs: res.map_or(0, |r| r.col_stride()),
            act: epi.activation,
        };
        let (mr, nr) = (self.kernel.mr, self.kernel.nr);
        let par = match self.pool {
            None => ParallelLoop::Ic,
            Some(_) => self.parallel.resolve(m, n1 - n0, mr, nr, self.threads),
        };
        let cfg = CacheConfig { kc, ..self.cache };
        let a_len = cfg.mc.min(m).div_ceil(mr) * mr * kc;
        let b_len = cfg.nc.min((n1 - n0).div_ceil(nr) * nr) * kc;
        for buf in &mut self.a_bufs {
            buf.ensure(a_len);
        }
        let reads_a_in_place = in_place(&self.kernel, a).is_some();
        let by_columns = par == ParallelLoop::Jc
            || (par == ParallelLoop::Jr && matches!(b, BOperand::Packed(_)) && reads_a_in_place);
        let n_bbufs = if by_columns { self.threads } else { 1 };
        if self.b_bufs.len() < n_bbufs {
            self.b_bufs.resize_with(n_bbufs, AlignedBuf::default);
        }
        if matches!(b, BOperand::Matrix(_)) {
            for buf in &mut self.b_bufs[..n_bbufs] {
                buf.ensure(b_len);
            }
        }
        let kernel = self.kernel;
        let (a_bufs, b_bufs) = (&mut self.a_bufs, &mut self.b_bufs);
        match &self.pool {
            None => serial(
                &kernel,
                cfg,
                a,
                b,
                &out,
                (n0, n1),
                (0, m),
                &mut a_bufs[0],
                &mut b_bufs[0],
            ),
            // With B packed once (weights), threads share nothing that is
            // packed per call, so each takes its share of rows (ic) or columns
            // (jc, jr) once and runs all loops on it: one fork per GEMM instead
            // of one per k-block, which at batch 1 is most of the cost of a
            // second thread.
            // (Split by columns, every thread would pack all of A, so jr keeps
            // its shared packing unless A is read in place.)
            Some(pool) => pool.install(|| match (par, b) {
                (ParallelLoop::Jc, _) => par_jc(&kernel, cfg, a, b, &out, cols, a_bufs, b_bufs),
                (ParallelLoop::Jr, BOperand::Packed(_)) if reads_a_in_place => {
                    par_jc(&kernel, cfg, a, b, &out, cols, a_bufs, b_bufs)
                }
                (ParallelLoop::Jr, _) => {
                    par_jr(&kernel, cfg, a, b, &out, cols, a_bufs, &mut b_bufs[0])
                }
                (_, BOperand::Packed(_)) => par_rows_packed(&kernel, cfg, a, b, &out, cols, a_bufs),
                _ => par_ic(&kernel, cfg, a, b, &out, cols, a_bufs, &mut b_bufs[0]),
            }),
        }
        Ok(())
    }
}

/// The k-block size for depth `k`: as many blocks as `kc` requires, of equal
/// size, so no thin last block pays a whole tile's load and store of C for a
/// few steps (K = 576 runs as 288 + 288 rather than 384 + 192).
pub fn balanced_kc(k: usize, kc: usize) -> usize {
    let blocks = k.div_ceil(kc.max(1)).max(1);
    k.div_ceil(blocks)
}

/// Splits `units` work units into `parts` contiguous ranges, as even as possible.
fn split(units: usize, parts: usize, part: usize) -> (usize, usize) {
    let base = units / parts;
    let extra = units % parts;
    let start = part * base + part.min(extra);
    (start, start + base + usize::from(part < extra))
}

/// Packs B's block for (p0, kcb, jc, ncb) into `buf` (in parallel when inside a
/// pool) or returns the pre-packed slice.
fn b_block<'b>(
    b: &'b BOperand<'_>,
    buf: &'b mut AlignedBuf,
    nr: usize,
    p0: usize,
    kcb: usize,
    jc: usize,
    ncb: usize,
    parallel: bool,
) -> &'b [f32] {
    match b {
        BOperand::Packed(p) => p.block(p0, kcb, jc, ncb),
        BOperand::Matrix(bm) => {
            let len = ncb.div_ceil(nr) * nr * kcb;
            let dst = &mut buf.as_mut_slice()[..len];
            if parallel {
                // One contiguous run of panels per thread: few, large jobs.
                let per = ncb.div_ceil(nr).div_ceil(rayon::current_num_threads());
                dst.par_chunks_mut(per * kcb * nr)
                    .enumerate()
                    .for_each(|(i, run)| pack_b_panels(bm, run, nr, jc, ncb, p0, kcb, i * per));
            } else {
                pack_b_panels(bm, dst, nr, jc, ncb, p0, kcb, 0);
            }
            &buf.as_slice()[..len]
        }
    }
}

/// All five loops on the caller's thread, over columns `n0..n1` and rows
/// `m0..m1` of C.
#[allow(clippy::too_many_arguments)]
fn serial(
    kernel: &Kernel,
    cfg: CacheConfig,
    a: &dyn ASource,
    b: BOperand<'_>,
    out: &Out,
    (n0, n1): (usize, usize),
    (m0, m1): (usize, usize),
    a_buf: &mut AlignedBuf,
    b_buf: &mut AlignedBuf,
) {
    let (k, nr) = (a.depth(), kernel.nr);
    for jc in (n0..n1).step_by(cfg.nc) {
        let ncb = cfg.nc.min(n1 - jc);
        for p0 in (0..k).step_by(cfg.kc) {
            let kcb = cfg.kc.min(k - p0);
            let bp = b_block(&b, b_buf, nr, p0, kcb, jc, ncb, false);
            for ic in (m0..m1).step_by(cfg.mc) {
                let mcb = cfg.mc.min(m1 - ic);
                let ap = prepare_a(kernel, a, a_buf.as_mut_slice(), ic, mcb, p0, kcb, 1);
                let blk = Block {
                    a: ap,
                    b: bp,
                    ic,
                    mcb,
                    jc,
                    ncb,
                    kcb,
                    first: p0 == 0,
                    last: p0 + kcb == k,
                };
                macro_kernel(kernel, out, &blk, 0, ncb.div_ceil(nr));
            }
        }
    }
}

/// jc loop in parallel: each thread owns a contiguous range of B's micro-panels
/// and runs the other loops on it with its own buffers.
#[allow(clippy::too_many_arguments)]
fn par_jc(
    kernel: &Kernel,
    cfg: CacheConfig,
    a: &dyn ASource,
    b: BOperand<'_>,
    out: &Out,
    cols: Range<usize>,
    a_bufs: &mut [AlignedBuf],
    b_bufs: &mut [AlignedBuf],
) {
    let t = a_bufs.len();
    let nr = kernel.nr;
    let panels = cols.len().div_ceil(nr);
    a_bufs
        .par_iter_mut()
        .zip(b_bufs.par_iter_mut())
        .enumerate()
        .for_each(|(tid, (ab, bb))| {
            let (p0, p1) = split(panels, t, tid);
            if p0 < p1 {
                serial(
                    kernel,
                    cfg,
                    a,
                    b,
                    out,
                    (cols.start + p0 * nr, (cols.start + p1 * nr).min(cols.end)),
                    (0, a.rows()),
                    ab,
                    bb,
                );
            }
        });
}

/// Rows in parallel with B packed beforehand: each thread runs every loop on a
/// contiguous share of A's micro-panel rows, with no synchronisation.
#[allow(clippy::too_many_arguments)]
fn par_rows_packed(
    kernel: &Kernel,
    cfg: CacheConfig,
    a: &dyn ASource,
    b: BOperand<'_>,
    out: &Out,
    cols: Range<usize>,
    a_bufs: &mut [AlignedBuf],
) {
    let (m, mr) = (a.rows(), kernel.mr);
    let t = a_bufs.len();
    let row_panels = m.div_ceil(mr);
    a_bufs.par_iter_mut().enumerate().for_each(|(tid, ab)| {
        let (r0, r1) = split(row_panels, t, tid);
        let rows = (r0 * mr, (r1 * mr).min(m));
        if rows.0 < rows.1 {
            // Packed B is never copied, so no B buffer is needed.
            serial(
                kernel,
                cfg,
                a,
                b,
                out,
                (cols.start, cols.end),
                rows,
                ab,
                &mut AlignedBuf::default(),
            );
        }
    });
}

/// ic loop in parallel: B's panel is packed by all threads together, then each
/// thread packs and multiplies its own contiguous share of A's rows.
#[allow(clippy::too_many_arguments)]
fn par_ic(
    kernel: &Kernel,
    cfg: CacheConfig,
    a: &dyn ASource,
    b: BOperand<'_>,
    out: &Out,
    cols: Range<usize>,
    a_bufs: &mut [AlignedBuf],
    b_buf: &mut AlignedBuf,
) {
    let (m, k, mr, nr) = (a.rows(), a.depth(), kernel.mr, kernel.nr);
    let t = a_bufs.len();
    let row_panels = m.div_ceil(mr);
    for jc in cols.clone().step_by(cfg.nc) {
        let ncb = cfg.nc.min(cols.end - jc);
        for p0 in (0..k).step_by(cfg.kc) {
            let kcb = cfg.kc.min(k - p0);
            let bp = b_block(&b, b_buf, nr, p0, kcb, jc, ncb, true);
            a_bufs.par_iter_mut().enumerate().for_each(|(tid, ab)| {
                let (r0, r1) = split(row_panels, t, tid);
                let (r0, r1) = (r0 * mr, (r1 * mr).min(m));
                let mut ic = r0;
                while ic < r1 {
                    let mcb = cfg.mc.min(r1 - ic);
                    let ap = prepare_a(kernel, a, ab.as_mut_slice(), ic, mcb, p0, kcb, 1);
                    let blk = Block {
                        a: ap,
                        b: bp,
                        ic,
                        mcb,
                        jc,
                        ncb,
                        kcb,
                        first: p0 == 0,
                        last: p0 + kcb == k,
                    };
                    macro_kernel(kernel, out, &blk, 0, ncb.div_ceil(nr));
                    ic += mcb;
                }
            });
        }
    }
}

/// jr loop in parallel: A's block and B's panel are packed by all threads
/// together; each thread then takes a contiguous share of B's micro-panels.
#[allow(clippy::too_many_arguments)]
fn par_jr(
    kernel: &Kernel,
    cfg: CacheConfig,
    a: &dyn ASource,
    b: BOperand<'_>,
    out: &Out,
    cols: Range<usize>,
    a_bufs: &mut [AlignedBuf],
    b_buf: &mut AlignedBuf,
) {
    let (m, k, nr) = (a.rows(), a.depth(), kernel.nr);
    let t = a_bufs.len();
    let a_buf = &mut a_bufs[0];
    for jc in cols.clone().step_by(cfg.nc) {
        let ncb = cfg.nc.min(cols.end - jc);
        for p0 in (0..k).step_by(cfg.kc) {
            let kcb = cfg.kc.min(k - p0);
            let bp = b_block(&b, b_buf, nr, p0, kcb, jc, ncb, true);
            for ic in (0..m).step_by(cfg.mc) {
                let mcb = cfg.mc.min(m - ic);
                let ap = prepare_a(kernel, a, a_buf.as_mut_slice(), ic, mcb, p0, kcb, t);
                let blk = Block {
                    a: ap,
                    b: bp,
                    ic,
                    mcb,
                    jc,
                    ncb,
                    kcb,
                    first: p0 == 0,
                    last: p0 + kcb == k,
                };
                let panels = ncb.div_ceil(nr);
                (0..t).into_par_iter().for_each(|tid| {
                    let (j0, j1) = split(panels, t, tid);
                    if j0 < j1 {
                        macro_kernel(kernel, out, &blk, j0, j1);
                    }
                });
            }
        }
    }
}

/// The jr and ir loops over one packed A block and one packed B panel, for B
/// micro-panels `jp0..jp1`, in the order the kernel prefers.
fn macro_kernel(kernel: &Kernel, out: &Out, blk: &Block<'_>, jp0: usize, jp1: usize) {
    let (mr, nr, kcb) = (kernel.mr, kernel.nr, blk.kcb);
    let beta = if blk.first { out.beta } else { 1.0 };
    // The epilogue context of the tile at C(i, j).
    let ctx_at = |i: usize, j: usize| {
        let ch = match out.axis {
            Axis::Row => i,
            Axis::Col => j,
        };
        // SAFETY: the epilogue vectors have one value per row (or column) of C
        // and the residual is m x n (validated in `run`), so offsetting to the
        // tile origin stays in bounds; null pointers stay null.
        unsafe {
            TileCtx {
                alpha: out.alpha,
                beta,
                last: blk.last,
                axis: out.axis,
                scale: if out.scale.is_null() {
                    out.scale
                } else {
                    out.scale.add(ch)
                },
                bias: if out.bias.is_null() {
                    out.bias
                } else {
                    out.bias.add(ch)
                },
                residual: if out.residual.is_null() {
                    out.residual
                } else {
                    out.residual.add(i * out.res_rs + j * out.res_cs)
                },
                res_rs: out.res_rs,
                res_cs: out.res_cs,
                act: out.act,
            }
        }
    };
    let tile = |ip: usize, jp: usize| {
        let jr = jp * nr;
        let n_eff = nr.min(blk.ncb - jr);
        let j = blk.jc + jr;
        let bpanel = &blk.b[jp * kcb * nr..(jp + 1) * kcb * nr];
        let (apanel, lda) = blk.a.panel(ip, mr, kcb, blk.mcb);
        let i = blk.ic + ip * mr;
        let m_eff = mr.min(blk.mcb - ip * mr);
        let ctx = ctx_at(i, j);
        // SAFETY: the A panel has mr rows of kcb values at stride lda (or
        // kcb*mr column-packed values); B's holds kcb*nr values; the tile
        // (i, j, m_eff, n_eff) lies inside C, which no other thread writes
        // (threads own disjoint row or column ranges); the kernel is one
        // the CPU supports (kernel selection checks).
        unsafe {
            (kernel.micro)(
                kcb,
                apanel,
                lda,
                bpanel.as_ptr(),
                out.c.add(i * out.rs + j * out.cs),
                out.rs,
                out.cs,
                m_eff,
                n_eff,
                &ctx,
            )
        };
    };
    let ipn = blk.mcb.div_ceil(mr);
    if kernel.ir_outer {
        // Full tiles of a row go to the row kernel in one call when it has
        // one and C (and the residual, if read) have unit column stride.
        let full_to = jp1.min(blk.ncb / nr);
        let row = kernel.micro_row.filter(|_| {
            full_to > jp0 && out.cs == 1 && (out.residual.is_null() || out.res_cs == 1)
        });
        for ip in 0..ipn {
            let mut jp = jp0;
            if let Some(row) = row.filter(|_| (ip + 1) * mr <= blk.mcb) {
                let (apanel, lda) = blk.a.panel(ip, mr, kcb, blk.mcb);
                let (i, j) = (blk.ic + ip * mr, blk.jc + jp0 * nr);
                let bpanels = &blk.b[jp0 * kcb * nr..full_to * kcb * nr];
                let ctx = ctx_at(i, j);
                // SAFETY: as for `tile`, for each of the full tiles jp0..full_to
                // of this row: mr rows of A, consecutive B micro-panels of
                // kcb*nr values (the slice above), and unit column strides
                // (checked when choosing `row`).
                unsafe {
                    row(
                        kcb,
                        apanel,
                        lda,
                        bpanels.as_ptr(),
                        full_to - jp0,
                        out.c.add(i * out.rs + j),
                        out.rs,
                        &ctx,
                    )
                };
                jp = full_to;
            }
            for jp in jp..jp1 {
                tile(ip, jp);
            }
        }
    } else {
        for jp in jp0..jp1 {
            for ip in 0..ipn {
                tile(ip, jp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_names_parse_back_and_unknown_ones_are_refused() {
        for &l in ParallelLoop::value_variants() {
            assert_eq!(l.name().parse::<ParallelLoop>().unwrap(), l);
            assert_eq!(
                l.to_string()
                    .to_uppercase()
                    .parse::<ParallelLoop>()
                    .unwrap(),
                l
            );
        }
        let e = "xx".parse::<ParallelLoop>().unwrap_err().to_string();
        assert!(
            e.contains("`xx`") && e.contains("jc, ic, jr or auto"),
            "{e}"
        );
    }
}
