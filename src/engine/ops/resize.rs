//! NHWC resize of height and width: nearest neighbour with ONNX's rounding
//! modes, or bilinear, under each coordinate transformation ONNX defines.
//! Coordinates outside the input take its edge (as ONNX's reference pads
//! with the edge value).

use crate::engine::graph::{Nearest, Resize, ResizeMode};

/// Input index and weight of the second tap for output coordinate `o`.
fn taps(r: &Resize, o: usize, len_in: usize, len_out: usize, scale: f32) -> (usize, usize, f32) {
    let x = r.source(o, len_in, len_out, scale);
    let last = len_in as isize - 1;
    match r.mode {
        ResizeMode::Nearest(mode) => {
            let f = x.floor();
            let frac = x - f;
            let i = match mode {
                Nearest::Floor => f,
                Nearest::Ceil => x.ceil(),
                Nearest::RoundPreferFloor if frac == 0.5 => f,
                Nearest::RoundPreferCeil if frac == 0.5 => f + 1.0,
                _ => x.round(),
            } as isize;
            let i = i.clamp(0, last) as usize;
            (i, i, 0.0)
        }
        ResizeMode::Linear => {
            let f = x.floor();
            let t = x - f;
            let i0 = (f as isize).clamp(0, last) as usize;
            let i1 = (f as isize + 1).clamp(0, last) as usize;
            (i0, i1, t)
        }
    }
}

/// Output row `oy` of image `img` (`ow * c` values) from an `h x w x c` input.
pub fn resize_row(
    x: &[f32],
    (h, w, c): (usize, usize, usize),
    r: &Resize,
    img: usize,
    oy: usize,
    out: &mut [f32],
) {
    let (y0, y1, ty) = taps(r, oy, h, r.out_h, r.scale_h);
    let base = img * h * w * c;
    let row0 = &x[base + y0 * w * c..][..w * c];
    let row1 = &x[base + y1 * w * c..][..w * c];
    for ox in 0..r.out_w {
        let (x0, x1, tx) = taps(r, ox, w, r.out_w, r.scale_w);
        let o = &mut out[ox * c..][..c];
        match r.mode {
            ResizeMode::Nearest(_) => o.copy_from_slice(&row0[x0 * c..][..c]),
            ResizeMode::Linear => {
                let (a, b) = (&row0[x0 * c..][..c], &row0[x1 * c..][..c]);
                let (p, q) = (&row1[x0 * c..][..c], &row1[x1 * c..][..c]);
                for ch in 0..c {
                    let top = a[ch] + (b[ch] - a[ch]) * tx;
                    let bot = p[ch] + (q[ch] - p[ch]) * tx;
                    o[ch] = top + (bot - top) * ty;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::graph::ResizeCoord;

    #[test]
    fn upsampling_by_two_by_hand() {
        // 1x2 image, one channel: [1, 3] -> width 4.
        let x = [1.0, 3.0];
        let mut r = Resize {
            mode: ResizeMode::Nearest(Nearest::Floor),
            coord: ResizeCoord::Asymmetric,
            out_h: 1,
            out_w: 4,
            scale_h: 1.0,
            scale_w: 2.0,
        };
        let mut out = [0.0; 4];
        resize_row(&x, (1, 2, 1), &r, 0, 0, &mut out);
        assert_eq!(out, [1.0, 1.0, 3.0, 3.0]);
        // Half-pixel bilinear: sources -0.25, 0.25, 0.75, 1.25 -> clamped at the edges.
        r.mode = ResizeMode::Linear;
        r.coord = ResizeCoord::HalfPixel;
        resize_row(&x, (1, 2, 1), &r, 0, 0, &mut out);
        assert_eq!(out, [1.0, 1.5, 2.5, 3.0]);
        r.coord = ResizeCoord::AlignCorners;
        resize_row(&x, (1, 2, 1), &r, 0, 0, &mut out);
        for (g, w) in out.iter().zip([1.0, 1.0 + 2.0 / 3.0, 1.0 + 4.0 / 3.0, 3.0]) {
            assert!((g - w).abs() < 1e-6);
        }
    }
}
