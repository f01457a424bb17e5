//! 1x1 convolutions: with stride 1 the NHWC input already is the GEMM's A
//! matrix (pixels x channels, leading dimension = all channels), so it is
//! passed as a strided view with no copy. Strided 1x1 layers gather their rows
//! while packing, through the convGemm source.

use super::ConvGeom;
use crate::engine::gemm::MatRef;
use crate::engine::EngineError;

/// The input of a stride-1 1x1 convolution group as a matrix view.
pub fn input_matrix<'a>(
    x: &'a [f32],
    geom: &ConvGeom,
    c_off: usize,
) -> Result<MatRef<'a>, EngineError> {
    MatRef::new(&x[c_off..], geom.n * geom.h * geom.w, geom.cg, geom.c, 1)
}

/// Whether the input can be viewed directly (stride 1, so rows are pixels).
pub fn is_direct(geom: &ConvGeom) -> bool {
    geom.win.stride_h == 1 && geom.win.stride_w == 1
}
