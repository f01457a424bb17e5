//! F(4x4, 3x3): 6x6 input tiles, 36 transformed points, 4x4 output tiles.
//!
//! Lavin and Gray's matrices with interpolation points 0, 1, -1, 2, -2 (and
//! infinity), the fractions all in G so the input and output transforms have
//! small integer coefficients:
//!
//! ```text
//! B^T = [ 4  0 -5  0  1  0 ]   G = [  1/4     0     0  ]   A^T = [ 1  1  1  1  1  0 ]
//!       [ 0 -4 -4  1  1  0 ]       [ -1/6  -1/6  -1/6  ]         [ 0  1 -1  2 -2  0 ]
//!       [ 0  4 -4 -1  1  0 ]       [ -1/6   1/6  -1/6  ]         [ 0  1  1  4  4  0 ]
//!       [ 0 -2 -1  2  1  0 ]       [ 1/24  1/12   1/6  ]         [ 0  1 -1  8 -8  1 ]
//!       [ 0  2 -1 -2  1  0 ]       [ 1/24 -1/12   1/6  ]
//!       [ 0  4  0 -5  0  1 ]       [    0     0     1  ]
//! ```
//!
//! Points 0, ±1, ±1/2 are the alternative; they put 1/2, 1/4, 1/8 into A^T
//! (rounding in the output transform) and in an f32 simulation of one tile
//! (`scripts/winograd_f43_points.py`) gave a larger error (max 1.3e-5 against
//! 8.1e-6 over 300 random tiles), so ±2 it is. The per-instruction-set files
//! implement `B^T d B` and `A^T M A` with these coefficients.

use crate::engine::graph::Conv;

/// G, the filter transform (6x3).
const G: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// The 36 transformed filters `U[xi] = (G g G^T)[xi]` as row-major `C x K`
/// matrices, computed in f64 and rounded once, each output channel's weights
/// scaled by `scale[k]` (a folded BatchNorm) first.
pub fn filter_transform(conv: &Conv, scale: Option<&[f32]>) -> Vec<Vec<f32>> {
    let (c_in, k_out) = (conv.cin, conv.cout);
    let mut u = vec![vec![0.0f32; c_in * k_out]; 36];
    for k in 0..k_out {
        let s = scale.map_or(1.0, |s| s[k]) as f64;
        for c in 0..c_in {
            let w = &conv.weights[(k * c_in + c) * 9..][..9];
            let g = |i: usize, j: usize| w[i * 3 + j] as f64 * s;
            // G g: 6x3.
            let gg: [[f64; 3]; 6] = std::array::from_fn(|i| {
                std::array::from_fn(|j| (0..3).map(|l| G[i][l] * g(l, j)).sum())
            });
            // (G g) G^T: 6x6.
            for (i, row) in gg.iter().enumerate() {
                for (j, gj) in G.iter().enumerate() {
                    let v: f64 = (0..3).map(|l| row[l] * gj[l]).sum();
                    u[i * 6 + j][c * k_out + k] = v as f32;
                }
            }
        }
    }
    u
}
