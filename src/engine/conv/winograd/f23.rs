//! F(2x2, 3x3): 4x4 input tiles, 16 transformed points, 2x2 output tiles.
//! The filter transform, once at build time; the input and output
//! transforms are in `transform`.

use crate::engine::graph::Conv;

/// The 16 transformed filters `U[xi] = (G g G^T)[xi]` as row-major `C x K`
/// matrices, computed in f64, each output channel scaled by `scale[k]` first.
pub fn filter_transform(conv: &Conv, scale: Option<&[f32]>) -> Vec<Vec<f32>> {
    let (c_in, k_out) = (conv.cin, conv.cout);
    let mut u = vec![vec![0.0f32; c_in * k_out]; 16];
    for k in 0..k_out {
        let s = scale.map_or(1.0, |s| s[k]) as f64;
        for c in 0..c_in {
            let g = |i: usize, j: usize| conv.weights[((k * c_in + c) * 3 + i) * 3 + j] as f64 * s;
            // G g: 4x3, with G = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]].
            let col = |j: usize| {
                let (a, b, c) = (g(0, j), g(1, j), g(2, j));
                [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]
            };
            let cols = [col(0), col(1), col(2)];
            let gg: [[f64; 3]; 4] = std::array::from_fn(|i| [cols[0][i], cols[1][i], cols[2][i]]);
            // (G g) G^T: 4x4.
            for (i, row) in gg.iter().enumerate() {
                let t = [
                    row[0],
                    0.5 * (row[0] + row[1] + row[2]),
                    0.5 * (row[0] - row[1] + row[2]),
                    row[2],
                ];
                for (j, v) in t.iter().enumerate() {
                    u[i * 4 + j][c * k_out + k] = *v as f32;
                }
            }
        }
    }
    u
}
