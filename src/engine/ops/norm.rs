//! Local response normalization across channels (the last axis).

use crate::engine::graph::Lrn;

/// LRN of every run of `c` channels of `x` into `out`: ONNX's window is
/// `floor((size-1)/2)` channels below and `ceil((size-1)/2)` above.
pub fn lrn(x: &[f32], c: usize, l: &Lrn, out: &mut [f32]) {
    let below = (l.size - 1) / 2;
    let above = l.size - 1 - below;
    let k = l.alpha / l.size as f32;
    for (o, xs) in out.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        for ch in 0..c {
            let lo = ch.saturating_sub(below);
            let hi = (ch + above).min(c - 1);
            let sq: f32 = xs[lo..=hi].iter().map(|v| v * v).sum();
            o[ch] = xs[ch] / (l.bias + k * sq).powf(l.beta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lrn_by_hand() {
        // size 3: channel 0 sees 0..=1, channel 1 sees 0..=2, channel 2 sees 1..=2.
        let l = Lrn {
            size: 3,
            alpha: 3.0,
            beta: 0.5,
            bias: 1.0,
        };
        let x = [1.0, 2.0, 3.0];
        let mut out = [0.0; 3];
        lrn(&x, 3, &l, &mut out);
        let want = [1.0 / 6f32.sqrt(), 2.0 / 15f32.sqrt(), 3.0 / 14f32.sqrt()];
        for (g, w) in out.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{out:?}");
        }
    }
}
