//! The layer fused after a GEMM, applied while a tile is still in registers:
//! `C = act(scale * (alpha*A*B + beta*C) + bias + residual)`.

use super::matrix::MatRef;
use crate::engine::EngineError;
use serde::{Deserialize, Serialize};

/// Element-wise activation applied last.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    None,
    Relu,
    Relu6,
    /// `min(max(v, min), max)`: ONNX's general Clip.
    Clip {
        min: f32,
        max: f32,
    },
}

impl Activation {
    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        match self {
            Activation::None => v,
            Activation::Relu => v.max(0.0),
            Activation::Relu6 => v.clamp(0.0, 6.0),
            // Not `clamp`, which panics when min > max; ONNX then yields max.
            Activation::Clip { min, max } => v.max(min).min(max),
        }
    }
}

/// Which index of C a per-channel vector (scale, bias) follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Axis {
    /// One value per row of C (length m).
    Row,
    /// One value per column of C (length n): output channels of an NHWC convolution.
    #[default]
    Col,
}

/// The fused epilogue. Any subset of its parts may be set.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    pub axis: Axis,
    pub scale: Option<&'a [f32]>,
    pub bias: Option<&'a [f32]>,
    pub residual: Option<MatRef<'a>>,
    pub activation: Activation,
}

impl<'a> Epilogue<'a> {
    /// No epilogue: plain `alpha*A*B + beta*C`.
    pub fn none() -> Self {
        Self::default()
    }

    pub(crate) fn validate(&self, m: usize, n: usize) -> Result<(), EngineError> {
        let want = match self.axis {
            Axis::Row => m,
            Axis::Col => n,
        };
        for (name, v) in [("epilogue.scale", self.scale), ("epilogue.bias", self.bias)] {
            if let Some(v) = v {
                if v.len() != want {
                    return Err(EngineError::Shape(format!(
                        "{name} has {} values but the {:?} axis of C has {want}",
                        v.len(),
                        self.axis
                    )));
                }
            }
        }
        if let Some(r) = &self.residual {
            if r.rows() != m || r.cols() != n {
                return Err(EngineError::Shape(format!(
                    "epilogue.residual is {}x{} but C is {m}x{n}",
                    r.rows(),
                    r.cols()
                )));
            }
        }
        Ok(())
    }
}

/// What a micro-kernel needs to finish one tile, with every pointer already
/// offset to the tile's origin. Built per tile by the macro-kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TileCtx {
    pub alpha: f32,
    /// Multiplier on the C already stored; exactly 0 means C is not read (it may be NaN).
    pub beta: f32,
    /// Apply scale, bias, residual and activation (only on the last k-block).
    pub last: bool,
    pub axis: Axis,
    pub scale: *const f32,
    pub bias: *const f32,
    pub residual: *const f32,
    pub res_rs: usize,
    pub res_cs: usize,
    pub act: Activation,
}

impl TileCtx {
    /// The context of the tile `cols` columns to the right of this one: the
    /// column-indexed pointers move, the row-indexed ones stay.
    ///
    /// # Safety
    /// Column `cols` must lie inside C, so the moved pointers stay inside the
    /// epilogue vectors and the residual.
    // Only the AVX2 row kernel walks tiles itself so far.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub unsafe fn right(&self, cols: usize) -> TileCtx {
        // SAFETY: by the caller's guarantee each offset stays in bounds; null
        // pointers (absent parts) are never offset.
        let col = |p: *const f32, step: usize| {
            if p.is_null() {
                p
            } else {
                unsafe { p.add(cols * step) }
            }
        };
        let per_col = match self.axis {
            Axis::Col => 1,
            Axis::Row => 0,
        };
        TileCtx {
            scale: col(self.scale, per_col),
            bias: col(self.bias, per_col),
            residual: col(self.residual, self.res_cs),
            ..*self
        }
    }

    /// Finish one value: `v` is the accumulated A*B for C(i, j) of this tile.
    ///
    /// # Safety
    /// `c` must be valid for reads and writes; when `last`, the non-null epilogue
    /// pointers must be valid at offsets `i`/`j` (per axis) and `(i, j)` (residual).
    #[inline(always)]
    pub unsafe fn finish(&self, v: f32, c: *mut f32, i: usize, j: usize) {
        let mut t = self.alpha * v;
        if self.beta != 0.0 {
            t += self.beta * *c;
        }
        if self.last {
            let ch = match self.axis {
                Axis::Row => i,
                Axis::Col => j,
            };
            if !self.scale.is_null() {
                t *= *self.scale.add(ch);
            }
            if !self.bias.is_null() {
                t += *self.bias.add(ch);
            }
            if !self.residual.is_null() {
                t += *self.residual.add(i * self.res_rs + j * self.res_cs);
            }
            t = self.act.apply(t);
        }
        *c = t;
    }
}

/// Stores the valid `m x n` corner of a register tile spilled to `tile`
/// (row-major, leading dimension `ld`) into C, element by element. Used for edge
/// tiles and non-unit column strides; full tiles take each kernel's vector path.
///
/// # Safety
/// `c` must be valid for `m x n` elements at strides `(rs, cs)`; see [`TileCtx::finish`].
pub(crate) unsafe fn store_tile_generic(
    tile: &[f32],
    ld: usize,
    m: usize,
    n: usize,
    c: *mut f32,
    rs: usize,
    cs: usize,
    ctx: &TileCtx,
) {
    for i in 0..m {
        for j in 0..n {
            // SAFETY: (i, j) is inside the caller's m x n tile of C.
            unsafe { ctx.finish(tile[i * ld + j], c.add(i * rs + j * cs), i, j) };
        }
    }
}
