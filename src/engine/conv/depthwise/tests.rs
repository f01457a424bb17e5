//! The depthwise rows on every instruction set this CPU runs (scalar always;
//! AVX2, AVX-512 or NEON where present) against a direct f64 convolution:
//! strides 1 and 2, 3x3 and 5x5 windows, dilation, asymmetric padding,
//! channel counts that leave partial vectors, every activation, with and
//! without bias and residual.

use super::*;
use crate::engine::graph::Window;

/// Deterministic values in [-1, 1).
fn fill(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let v = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
            ((v >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `(h, w, c, window)`; batch 2 throughout.
fn cases() -> Vec<(usize, usize, usize, Window)> {
    let win = |k: (usize, usize), s: (usize, usize), pads: [usize; 4], d: (usize, usize)| Window {
        kh: k.0,
        kw: k.1,
        stride_h: s.0,
        stride_w: s.1,
        pad_top: pads[0],
        pad_left: pads[1],
        pad_bottom: pads[2],
        pad_right: pads[3],
        dilation_h: d.0,
        dilation_w: d.1,
    };
    vec![
        (9, 23, 13, win((3, 3), (1, 1), [1, 1, 1, 1], (1, 1))),
        // TensorFlow's "same" for stride 2: the extra pad at the bottom/right.
        (10, 11, 40, win((3, 3), (2, 2), [0, 0, 1, 1], (1, 1))),
        (8, 19, 17, win((5, 5), (1, 1), [2, 2, 2, 2], (1, 1))),
        (11, 12, 33, win((5, 5), (2, 2), [1, 2, 2, 1], (1, 1))),
        (12, 14, 8, win((3, 3), (1, 1), [2, 2, 2, 2], (2, 2))),
        (5, 3, 1, win((3, 3), (1, 1), [0, 0, 0, 0], (1, 1))),
        (1, 1, 5, win((3, 3), (1, 1), [1, 1, 1, 1], (1, 1))),
        (7, 30, 20, win((3, 5), (2, 1), [1, 0, 0, 3], (1, 2))),
    ]
}

#[test]
fn every_instruction_set_matches_a_direct_f64_convolution() {
    let mut worst = 0.0f64;
    for (ci, (h, wd, c, win)) in cases().into_iter().enumerate() {
        let n = 2;
        let oh = (h + win.pad_top + win.pad_bottom - (win.kh - 1) * win.dilation_h - 1)
            / win.stride_h
            + 1;
        let ow = (wd + win.pad_left + win.pad_right - (win.kw - 1) * win.dilation_w - 1)
            / win.stride_w
            + 1;
        let g = ConvGeom {
            n,
            h,
            w: wd,
            c,
            cg: 1,
            oh,
            ow,
            win,
        };
        let conv = Conv {
            cin: c,
            cout: c,
            groups: c,
            window: win,
            weights: fill(c * win.kh * win.kw, ci as u64),
            bias: None,
        };
        let scale: Vec<f32> = fill(c, 50 + ci as u64)
            .iter()
            .map(|v| 0.5 + v.abs())
            .collect();
        let wts = weights(&conv, Some(&scale));
        let x = fill(n * h * wd * c, 100 + ci as u64);
        let bias = fill(c, 200 + ci as u64);
        let res = fill(n * oh * ow * c, 300 + ci as u64);
        for (ai, act) in Activation::ONE_OF_EACH.into_iter().enumerate() {
            let with_bias = ai % 2 == 0;
            let with_res = ai % 3 != 1;
            // f64 reference.
            let mut want = vec![0.0f64; n * oh * ow * c];
            for img in 0..n {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for ch in 0..c {
                            let mut acc = if with_bias { f64::from(bias[ch]) } else { 0.0 };
                            for ky in 0..win.kh {
                                for kx in 0..win.kw {
                                    let hi = (oy * win.stride_h + ky * win.dilation_h) as isize
                                        - win.pad_top as isize;
                                    let wi = (ox * win.stride_w + kx * win.dilation_w) as isize
                                        - win.pad_left as isize;
                                    if hi < 0 || wi < 0 || hi >= h as isize || wi >= wd as isize {
                                        continue;
                                    }
                                    let xv =
                                        x[((img * h + hi as usize) * wd + wi as usize) * c + ch];
                                    let wv = conv.weights[(ch * win.kh + ky) * win.kw + kx];
                                    acc += f64::from(xv) * f64::from(wv) * f64::from(scale[ch]);
                                }
                            }
                            let p = ((img * oh + oy) * ow + ox) * c + ch;
                            if with_res {
                                acc += f64::from(res[p]);
                            }
                            want[p] = f64::from(act.apply(acc as f32));
                        }
                    }
                }
            }
            for isa in Isa::all_available() {
                let mut out = vec![f32::NAN; want.len()];
                let row_len = ow * c;
                for (r, dst) in out.chunks_mut(row_len).enumerate() {
                    let tail = Tail {
                        bias: with_bias.then_some(&bias[..]),
                        residual: with_res.then(|| &res[r * row_len..(r + 1) * row_len]),
                        act,
                    };
                    row(isa, &x, &wts, &g, r / oh, r % oh, &tail, dst);
                }
                let err = out
                    .iter()
                    .zip(&want)
                    .map(|(&a, &b)| (f64::from(a) - b).abs() / b.abs().max(1.0))
                    .fold(0.0, f64::max);
                worst = worst.max(err);
                assert!(
                    err < 1e-5,
                    "case {ci} {act:?} bias={with_bias} res={with_res} {isa:?}: rel err {err:e}"
                );
            }
        }
    }
    eprintln!("depthwise: max rel err {worst:e}");
}

#[test]
fn short_buffers_panic_before_any_access() {
    let win = Window::square(3, 1, 1);
    let g = ConvGeom {
        n: 1,
        h: 4,
        w: 4,
        c: 8,
        cg: 1,
        oh: 4,
        ow: 4,
        win,
    };
    let (x, w) = (vec![0.0; 4 * 4 * 8], vec![0.0; 9 * 8]);
    let isa = Isa::all_available()[0];
    let call = |x: &[f32], w: &[f32], out_len: usize, oy: usize, bias: Option<&[f32]>| {
        let (x, w) = (x.to_vec(), w.to_vec());
        let bias = bias.map(|b| b.to_vec());
        std::panic::catch_unwind(move || {
            let mut out = vec![0.0; out_len];
            let tail = Tail {
                bias: bias.as_deref(),
                ..Tail::default()
            };
            row(isa, &x, &w, &g, 0, oy, &tail, &mut out);
        })
        .is_err()
    };
    assert!(!call(&x, &w, 32, 3, None), "valid call");
    assert!(call(&x[1..], &w, 32, 0, None), "short input");
    assert!(call(&x, &w[1..], 32, 0, None), "short weights");
    assert!(call(&x, &w, 31, 0, None), "short output row");
    assert!(call(&x, &w, 32, 4, None), "row past the output");
    assert!(call(&x, &w, 32, 0, Some(&[0.0; 7])), "short bias");
}
