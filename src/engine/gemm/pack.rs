//! Packing A and B into the micro-panel layouts the micro-kernels stream through:
//! an A micro-panel is `kc` steps of `mr` values (column of the tile per step), a
//! B micro-panel `kc` steps of `nr` values. Edges are zero-padded so kernels
//! always compute whole tiles.

use super::kernels::Kernel;
use super::matrix::MatRef;
use crate::engine::EngineError;

/// 64-byte aligned storage for packed panels (one cache line, one AVX-512 vector).
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A growable, 64-byte aligned f32 buffer that never shrinks, so steady-state
/// GEMMs reuse it without allocating.
#[derive(Default)]
pub(crate) struct AlignedBuf {
    lines: Vec<Line>,
}

impl AlignedBuf {
    pub fn ensure(&mut self, len: usize) {
        let need = len.div_ceil(16);
        if self.lines.len() < need {
            self.lines.resize(need, Line::default());
        }
    }
    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: `Line` is repr(C) of 16 f32 with no padding, so the Vec's memory
        // is `16 * len` initialised, properly aligned f32 values.
        unsafe {
            std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.lines.len() * 16)
        }
    }
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`; the borrow of self is exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.lines.as_mut_ptr().cast::<f32>(),
                self.lines.len() * 16,
            )
        }
    }
}

/// Where the A operand comes from. A plain matrix packs by copying; a
/// convolution packs by gathering its input patches (implicit im2col), so no
/// im2col buffer ever exists.
pub trait ASource: Sync {
    /// Rows of A (m).
    fn rows(&self) -> usize;
    /// Columns of A (k).
    fn depth(&self) -> usize;
    /// Writes columns `p0..p0+len` of row `row` to `dst[t * step]`, t = 0..len.
    fn pack_row(&self, row: usize, p0: usize, len: usize, dst: &mut [f32], step: usize);
    /// Packs rows `i0..i0+mcb` and columns `p0..p0+kcb` into `ceil(mcb/mr)`
    /// consecutive micro-panels of `kcb*mr` values, zero-padding missing rows.
    /// Column layout: step p of a panel holds its `mr` rows' values.
    fn pack_a(&self, dst: &mut [f32], mr: usize, i0: usize, mcb: usize, p0: usize, kcb: usize) {
        for_each_panel(dst, mr, kcb, i0, mcb, |out, r0, rows| {
            for i in 0..rows {
                self.pack_row(r0 + i, p0, kcb, &mut out[i..], mr);
            }
            for i in rows..mr {
                out[i..]
                    .iter_mut()
                    .step_by(mr)
                    .take(kcb)
                    .for_each(|v| *v = 0.0);
            }
        });
    }
    /// As [`ASource::pack_a`] in row layout: row i of a panel is `kcb`
    /// consecutive values (for kernels that read A by rows).
    fn pack_a_rows(
        &self,
        dst: &mut [f32],
        mr: usize,
        i0: usize,
        mcb: usize,
        p0: usize,
        kcb: usize,
    ) {
        for_each_panel(dst, mr, kcb, i0, mcb, |out, r0, rows| {
            for (i, o) in out.chunks_exact_mut(kcb).take(rows).enumerate() {
                self.pack_row(r0 + i, p0, kcb, o, 1);
            }
            out[rows * kcb..].fill(0.0);
        });
    }
    /// A itself as a row-major buffer and its row stride, when it is one, so
    /// row-reading kernels can skip packing.
    fn direct(&self) -> Option<(&[f32], usize)> {
        None
    }
}

/// Calls `f(panel, first_row, rows)` for each of the `ceil(mcb/mr)` micro-panels
/// (of `kcb*mr` values) of rows `i0..i0+mcb`; `rows < mr` only for the last.
fn for_each_panel(
    dst: &mut [f32],
    mr: usize,
    kcb: usize,
    i0: usize,
    mcb: usize,
    mut f: impl FnMut(&mut [f32], usize, usize),
) {
    for (panel, out) in dst
        .chunks_exact_mut(kcb * mr)
        .take(mcb.div_ceil(mr))
        .enumerate()
    {
        let r0 = i0 + panel * mr;
        f(out, r0, mr.min(i0 + mcb - r0));
    }
}

impl ASource for MatRef<'_> {
    fn rows(&self) -> usize {
        MatRef::rows(self)
    }
    fn depth(&self) -> usize {
        self.cols()
    }
    fn pack_row(&self, row: usize, p0: usize, len: usize, dst: &mut [f32], step: usize) {
        let (data, cs) = (self.data(), self.col_stride());
        let base = row * self.row_stride() + p0 * cs;
        if cs == 1 && step == 1 {
            dst[..len].copy_from_slice(&data[base..base + len]);
        } else {
            for (t, o) in dst.iter_mut().step_by(step).take(len).enumerate() {
                *o = data[base + t * cs];
            }
        }
    }
    fn direct(&self) -> Option<(&[f32], usize)> {
        (self.col_stride() == 1).then(|| (self.data(), self.row_stride()))
    }
}

/// Packs columns `j0..j0+ncb` and rows `p0..p0+kcb` of `b` into `ceil(ncb/nr)`
/// consecutive micro-panels of `kcb*nr` values, zero-padding missing columns.
pub(crate) fn pack_b_panels(
    b: &MatRef<'_>,
    dst: &mut [f32],
    nr: usize,
    j0: usize,
    ncb: usize,
    p0: usize,
    kcb: usize,
    first_panel: usize,
) {
    let (data, rs, cs) = (b.data(), b.row_stride(), b.col_stride());
    for (idx, out) in dst.chunks_exact_mut(kcb * nr).enumerate() {
        let c0 = j0 + (first_panel + idx) * nr;
        if c0 >= j0 + ncb {
            break;
        }
        let cols = nr.min(j0 + ncb - c0);
        for p in 0..kcb {
            let row = (p0 + p) * rs + c0 * cs;
            let o = &mut out[p * nr..(p + 1) * nr];
            if cs == 1 {
                o[..cols].copy_from_slice(&data[row..row + cols]);
            } else {
                for (j, v) in o[..cols].iter_mut().enumerate() {
                    *v = data[row + j * cs];
                }
            }
            o[cols..].fill(0.0);
        }
    }
}

/// B packed once for reuse across calls (a layer's weights). Laid out per k-block
/// of `kc` rows, each block holding all of B's columns as `nr`-wide micro-panels,
/// so any `nc` slice of a block is contiguous.
pub struct PackedB {
    data: AlignedBuf,
    k: usize,
    n: usize,
    kc: usize,
    nr: usize,
    kernel: &'static str,
}

impl PackedB {
    /// Packs `b` (k x n) for `kernel` with k-blocks of `kc`.
    pub fn new(b: MatRef<'_>, kernel: &Kernel, kc: usize) -> Result<PackedB, EngineError> {
        if kc == 0 {
            return Err(EngineError::param("kc", "must be at least 1"));
        }
        let (k, n, nr) = (b.rows(), b.cols(), kernel.nr);
        let n_pad = n.div_ceil(nr) * nr;
        let mut data = AlignedBuf::default();
        data.ensure(k * n_pad);
        let buf = data.as_mut_slice();
        let mut p0 = 0;
        while p0 < k {
            let kcb = kc.min(k - p0);
            let block = &mut buf[p0 * n_pad..(p0 + kcb) * n_pad];
            pack_b_panels(&b, block, nr, 0, n, p0, kcb, 0);
            p0 += kcb;
        }
        Ok(PackedB {
            data,
            k,
            n,
            kc,
            nr,
            kernel: kernel.name(),
        })
    }

    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    /// The k-block size this B was packed with; GEMMs on it use this kc.
    pub fn kc(&self) -> usize {
        self.kc
    }
    pub fn kernel_name(&self) -> &'static str {
        self.kernel
    }

    /// The micro-panels for rows `p0..p0+kcb`, columns `jc..jc+ncb` (`p0` a
    /// multiple of kc, `jc` a multiple of nr).
    pub(crate) fn block(&self, p0: usize, kcb: usize, jc: usize, ncb: usize) -> &[f32] {
        let n_pad = self.n.div_ceil(self.nr) * self.nr;
        let start = p0 * n_pad + (jc / self.nr) * kcb * self.nr;
        let len = ncb.div_ceil(self.nr) * kcb * self.nr;
        &self.data.as_slice()[start..start + len]
    }
}
