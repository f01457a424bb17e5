//! Explicit im2col: the patch matrix is written out, then multiplied. Kept as
//! the classic baseline the paper compares convGemm against.

use super::convgemm::PatchSource;

/// Fills `buf` (rows x depth, row-major) with the patch matrix of `src`.
pub fn im2col(src: &PatchSource<'_>, buf: &mut [f32]) {
    let depth = src.geom.depth();
    for (row, out) in buf
        .chunks_exact_mut(depth)
        .take(src.geom.rows())
        .enumerate()
    {
        src.gather_row(row, 0, depth, out, 1);
    }
}
