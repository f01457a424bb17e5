//! Where ONNX's tensors meet the engine's buffers: the layout of a model's
//! input and outputs, and the conversions at the edges.

use crate::engine::ops::layout::transpose;
use crate::engine::ops::nd::Nd;
use serde::Serialize;

/// The ONNX dims of a model input or output and how the engine stores them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// ONNX dims; with `batched`, `dims[0]` is the batch (1 here, the run's
    /// batch size at run time).
    pub dims: Vec<usize>,
    /// Whether axis 0 is a batch the caller chooses.
    pub batched: bool,
    /// ONNX axis `i` is stored as axis `perm[i]` of the engine's row-major
    /// buffer (an NCHW image is held NHWC: `[0, 3, 1, 2]`).
    pub perm: Vec<usize>,
}

impl Layout {
    /// Row-major ONNX dims (no reordering).
    pub fn plain(dims: Vec<usize>, batched: bool) -> Layout {
        let perm = (0..dims.len()).collect();
        Layout {
            dims,
            batched,
            perm,
        }
    }

    /// An NCHW image of `c x h x w` per item, held NHWC.
    pub fn image(c: usize, h: usize, w: usize) -> Layout {
        Layout {
            dims: vec![1, c, h, w],
            batched: true,
            perm: vec![0, 3, 1, 2],
        }
    }

    /// Values per item (the whole tensor when the batch is fixed).
    pub fn per_image(&self) -> usize {
        let all: usize = self.dims.iter().product();
        if self.batched {
            all / self.dims[0].max(1)
        } else {
            all
        }
    }

    /// ONNX dims for a batch of `n` (the fixed dims when not batched).
    pub fn dims(&self, n: usize) -> Vec<usize> {
        let mut d = self.dims.clone();
        if self.batched {
            d[0] = n;
        }
        d
    }

    /// ONNX dims with a free batch shown as `N`.
    pub fn describe(&self) -> String {
        if self.dims.is_empty() {
            return "scalar".into();
        }
        let mut parts: Vec<String> = self.dims.iter().map(|v| v.to_string()).collect();
        if self.batched {
            parts[0] = "N".into();
        }
        parts.join(" x ")
    }

    /// `(c, h, w)` of an NCHW image with a free batch.
    pub fn nchw(&self) -> Option<(usize, usize, usize)> {
        match self.dims[..] {
            [_, c, h, w] if self.batched => Some((c, h, w)),
            _ => None,
        }
    }

    fn batch_of(&self, len: usize) -> usize {
        if self.batched {
            len / self.per_image().max(1)
        } else {
            1
        }
    }

    /// ONNX order to engine order, for a whole batch (`x.len()` a multiple
    /// of [`Layout::per_image`]).
    pub fn to_engine(&self, x: &[f32], out: &mut [f32]) {
        let d = self.dims(self.batch_of(x.len()));
        // Engine axis j holds ONNX axis inv[j].
        let mut inv = vec![0; self.perm.len()];
        for (l, &p) in self.perm.iter().enumerate() {
            inv[p] = l;
        }
        transpose(None, x, &Nd::new(&d), &inv, out);
    }

    /// Engine order to ONNX order, for a whole batch.
    pub fn from_engine(&self, x: &[f32], out: &mut [f32]) {
        let d = self.dims(self.batch_of(x.len()));
        let phys: Vec<usize> = {
            let mut p = vec![0; d.len()];
            for (l, &a) in self.perm.iter().enumerate() {
                p[a] = d[l];
            }
            p
        };
        transpose(None, x, &Nd::new(&phys), &self.perm, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nchw_and_nhwc_round_trip_and_match_index_formulas() {
        let (c, h, w, n) = (3, 2, 4, 2);
        let x: Vec<f32> = (0..n * c * h * w).map(|v| v as f32).collect();
        let l = Layout::image(c, h, w);
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
        assert_eq!(l.dims(n), vec![2, 3, 2, 4]);
        assert_eq!(l.describe(), "N x 3 x 2 x 4");
        assert_eq!(l.nchw(), Some((3, 2, 4)));
        let fixed = Layout::plain(vec![2, 5], false);
        assert_eq!(fixed.describe(), "2 x 5");
        assert_eq!(fixed.per_image(), 10);
    }
}
