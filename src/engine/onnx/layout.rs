//! Where ONNX's NCHW tensors meet the engine's NHWC buffers: the layout of the
//! model's input and output, and the conversions at the edges.

use serde::Serialize;

/// The logical (ONNX) layout of a value, per image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Layout {
    /// `[N, C, H, W]`, held NHWC by the engine.
    Image { c: usize, h: usize, w: usize },
    /// `[N, C, L]` (a 1-D signal), held as a `1 x L x C` image.
    Sequence { c: usize, l: usize },
    /// `[N, C]`.
    Vector { c: usize },
    /// `[N]`: one value per batch item.
    Scalar,
    /// `[N, C*H*W]` flattened from an image in NCHW order, held in the
    /// engine's NHWC order.
    Flattened { c: usize, h: usize, w: usize },
}

impl Layout {
    /// Values per image.
    pub fn per_image(&self) -> usize {
        match *self {
            Layout::Image { c, h, w } | Layout::Flattened { c, h, w } => c * h * w,
            Layout::Sequence { c, l } => c * l,
            Layout::Vector { c } => c,
            Layout::Scalar => 1,
        }
    }

    /// ONNX dims for a batch of `n`.
    pub fn dims(&self, n: usize) -> Vec<usize> {
        match *self {
            Layout::Image { c, h, w } => vec![n, c, h, w],
            Layout::Sequence { c, l } => vec![n, c, l],
            Layout::Vector { c } => vec![n, c],
            Layout::Scalar => vec![n],
            Layout::Flattened { c, h, w } => vec![n, c * h * w],
        }
    }

    /// ONNX dims with the batch shown as `N`.
    pub fn describe(&self) -> String {
        let d = self.dims(0);
        let rest: Vec<String> = d[1..].iter().map(|v| v.to_string()).collect();
        if rest.is_empty() {
            return "N".into();
        }
        format!("N x {}", rest.join(" x "))
    }

    /// (c, h, w) of an image or flattened image, whose engine order differs.
    fn spatial(&self) -> Option<(usize, usize, usize)> {
        match *self {
            Layout::Image { c, h, w } | Layout::Flattened { c, h, w } if h * w > 1 && c > 1 => {
                Some((c, h, w))
            }
            Layout::Sequence { c, l } if l > 1 && c > 1 => Some((c, 1, l)),
            _ => None,
        }
    }

    /// ONNX order to engine order, for a whole batch (`x.len()` a multiple of
    /// [`Layout::per_image`]).
    pub fn to_engine(&self, x: &[f32], out: &mut [f32]) {
        match self.spatial() {
            None => out.copy_from_slice(x),
            Some((c, h, w)) => {
                let per = c * h * w;
                for (src, dst) in x.chunks_exact(per).zip(out.chunks_exact_mut(per)) {
                    for ch in 0..c {
                        for p in 0..h * w {
                            dst[p * c + ch] = src[ch * h * w + p];
                        }
                    }
                }
            }
        }
    }

    /// Engine order to ONNX order, for a whole batch.
    pub fn from_engine(&self, x: &[f32], out: &mut [f32]) {
        match self.spatial() {
            None => out.copy_from_slice(x),
            Some((c, h, w)) => {
                let per = c * h * w;
                for (src, dst) in x.chunks_exact(per).zip(out.chunks_exact_mut(per)) {
                    for ch in 0..c {
                        for p in 0..h * w {
                            dst[ch * h * w + p] = src[p * c + ch];
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nchw_and_nhwc_round_trip_and_match_index_formulas() {
        let (c, h, w, n) = (3, 2, 4, 2);
        let x: Vec<f32> = (0..n * c * h * w).map(|v| v as f32).collect();
        let l = Layout::Image { c, h, w };
        let mut e = vec![0.0; x.len()];
        l.to_engine(&x, &mut e);
        for b in 0..n {
            for ch in 0..c {
                for y in 0..h {
                    for xx in 0..w {
                        let nchw = ((b * c + ch) * h + y) * w + xx;
                        let nhwc = ((b * h + y) * w + xx) * c + ch;
                        assert_eq!(e[nhwc], x[nchw]);
                    }
                }
            }
        }
        let mut back = vec![0.0; x.len()];
        l.from_engine(&e, &mut back);
        assert_eq!(back, x);
        let mut flat = vec![0.0; x.len()];
        Layout::Flattened { c, h, w }.from_engine(&e, &mut flat);
        assert_eq!(flat, x);
        assert_eq!(Layout::Flattened { c, h, w }.dims(n), vec![2, 24]);
        assert_eq!(l.describe(), "N x 3 x 2 x 4");
    }
}
