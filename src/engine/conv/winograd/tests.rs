//! Every transform code path this CPU runs (scalar always; AVX2, AVX-512 or
//! NEON where present) against a direct f64 convolution, so each `unsafe`
//! block of the transforms runs under test on its own architecture.

use super::*;
use crate::engine::gemm::Gemm;
use crate::engine::graph::Window;

/// A single-threaded GEMM as the session gives each Winograd worker.
fn gemm1() -> Gemm {
    let k = crate::engine::gemm::Kernel::detect();
    let cache = crate::engine::gemm::CacheConfig::auto(k.mr, k.nr);
    Gemm::new(k, cache, 1, Default::default()).unwrap()
}

/// Deterministic values in [-1, 1).
fn fill(n: usize, seed: u64) -> Vec<f32> {
    crate::engine::rng::SplitMix64::new(seed).signed_vec(n)
}

/// Direct convolution in f64, NHWC, OIHW weights, then bias, residual, act.
fn direct(x: &[f32], g: &ConvGeom, conv: &Conv, tail: &Tail<'_>) -> Vec<f64> {
    let k = conv.cout;
    let mut out = vec![0.0f64; g.n * g.oh * g.ow * k];
    for img in 0..g.n {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                for o in 0..k {
                    let mut acc = tail.bias.map_or(0.0, |b| b[o] as f64);
                    for i in 0..3 {
                        for j in 0..3 {
                            let yy = (oy + i) as isize - g.win.pad_top as isize;
                            let xx = (ox + j) as isize - g.win.pad_left as isize;
                            if yy < 0 || xx < 0 || yy >= g.h as isize || xx >= g.w as isize {
                                continue;
                            }
                            let px = ((img * g.h + yy as usize) * g.w + xx as usize) * g.c;
                            for c in 0..g.c {
                                acc += x[px + c] as f64
                                    * conv.weights[((o * g.c + c) * 3 + i) * 3 + j] as f64;
                            }
                        }
                    }
                    let p = ((img * g.oh + oy) * g.ow + ox) * k + o;
                    acc += tail.residual.map_or(0.0, |r| r[p] as f64);
                    out[p] = tail.act.apply(acc as f32) as f64;
                }
            }
        }
    }
    out
}

#[test]
fn every_transform_path_matches_direct_convolution() {
    // (n, h, w, c, k, pad): odd output sizes (7x7, 5x9, 1x1, 2x3), channel
    // counts below, at and past the vector widths, padding 0 and 1. Each is
    // run as two threads would: split by tiles, and split by output channels
    // (the second share starting past the first vectors, ending in a tail).
    let cases = [
        (2, 7, 7, 3, 13, 1),
        (1, 7, 11, 13, 5, 0),
        (3, 3, 3, 8, 16, 0),
        (1, 1, 1, 17, 9, 1),
        (2, 4, 5, 12, 20, 0),
        (1, 10, 9, 33, 40, 1),
        (1, 6, 6, 10, 45, 1),
    ];
    let acts = Activation::ONE_OF_EACH;
    let kernel = crate::engine::gemm::Kernel::detect();
    let mut worst = 0.0f64;
    for (ci, &(n, h, w, c, k, pad)) in cases.iter().enumerate() {
        let win = Window::square(3, 1, pad);
        let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
        let g = ConvGeom {
            n,
            h,
            w,
            c,
            cg: c,
            oh,
            ow,
            win,
        };
        let conv = Conv {
            cin: c,
            cout: k,
            groups: 1,
            window: win,
            weights: fill(k * c * 9, ci as u64),
            bias: None,
        };
        let x = fill(n * h * w * c, 100 + ci as u64);
        let bias = fill(k, 200 + ci as u64);
        let res = fill(n * oh * ow * k, 300 + ci as u64);
        for (ai, &act) in acts.iter().enumerate() {
            let tail = Tail {
                bias: (ai % 3 != 1).then_some(&bias[..]),
                residual: (ai % 3 != 0).then_some(&res[..]),
                act,
            };
            let want = direct(&x, &g, &conv, &tail);
            for v in [Variant::F23, Variant::F43] {
                let gemm = gemm1();
                let packed: Vec<_> = filter_transform(v, &conv, None)
                    .iter()
                    .map(|u| gemm.pack_b(MatRef::row_major(u, c, k).unwrap()).unwrap())
                    .collect();
                let mut wk = Worker {
                    buf: vec![0.0; scratch_len(v, c, k, kernel.mr)],
                    gemm,
                };
                let (_, _, total) = tiles(v, &g);
                let nr = kernel.nr;
                let (mid, mid_c) = (total / 2, (k / 2 / nr * nr).max(nr).min(k));
                let by_tiles = vec![(0..mid, 0..k), (mid..total, 0..k)];
                let mut by_chans = vec![(0..total, 0..mid_c)];
                if mid_c < k {
                    by_chans.push((0..total, mid_c..k));
                }
                for (isa, calls) in Isa::all_available()
                    .into_iter()
                    .flat_map(|i| [(i, by_tiles.clone()), (i, by_chans.clone())])
                {
                    let mut out = vec![f32::NAN; want.len()];
                    let op = OutPtr::new(&mut out);
                    for (r, cols) in calls.clone() {
                        run_tiles_on(
                            isa,
                            v,
                            &mut wk.gemm,
                            &mut wk.buf,
                            &x,
                            &g,
                            &packed,
                            k,
                            &tail,
                            op,
                            r,
                            cols,
                        )
                        .unwrap();
                    }
                    let err = out
                        .iter()
                        .zip(&want)
                        .map(|(&a, &b)| (a as f64 - b).abs() / b.abs().max(1.0))
                        .fold(0.0, f64::max);
                    // F(4x4, 3x3)'s larger transform coefficients cost
                    // about a decimal digit against F(2x2, 3x3) (values here reach
                    // about 6, from sums of up to 297 products).
                    let tol = if v == Variant::F23 { 1e-5 } else { 2e-4 };
                    worst = worst.max(err);
                    assert!(
                        err < tol,
                        "case {ci} act {act:?} {v:?} {isa:?} {calls:?}: rel err {err:e}"
                    );
                }
            }
        }
    }
    eprintln!("winograd transform paths: max rel err {worst:e}");
}

#[test]
fn short_buffers_are_errors_not_overruns() {
    let kernel = crate::engine::gemm::Kernel::detect();
    let win = Window::square(3, 1, 1);
    let g = ConvGeom {
        n: 1,
        h: 4,
        w: 4,
        c: 8,
        cg: 8,
        oh: 4,
        ow: 4,
        win,
    };
    let conv = Conv {
        cin: 8,
        cout: 8,
        groups: 1,
        window: win,
        weights: fill(8 * 8 * 9, 1),
        bias: None,
    };
    let gemm = gemm1();
    let packed: Vec<_> = filter_transform(Variant::F43, &conv, None)
        .iter()
        .map(|u| gemm.pack_b(MatRef::row_major(u, 8, 8).unwrap()).unwrap())
        .collect();
    let mut wk = Worker {
        buf: vec![0.0; scratch_len(Variant::F43, 8, 8, kernel.mr)],
        gemm,
    };
    let x = fill(4 * 4 * 8, 2);
    let tail = Tail {
        bias: None,
        residual: None,
        act: Activation::None,
    };
    // (output length, filter matrices, tiles, output channels, what is wrong)
    let full = 4 * 4 * 8;
    let bad = [
        (full - 1, 36, 0..1, 0..8, "short output"),
        (full, 16, 0..1, 0..8, "F(2,3) filters for F(4,3)"),
        (full, 36, 0..2, 0..8, "tiles past the end"),
        (full, 36, 0..1, 0..9, "channels past the end"),
        (full, 36, 0..1, 4..8, "cols off a panel"),
        (full, 36, 0..1, 8..8, "no cols"),
    ];
    for (len, mats, range, cols, why) in bad {
        let mut out = vec![0.0; len];
        let r = run_tiles(
            Variant::F43,
            &mut wk.gemm,
            &mut wk.buf,
            &x,
            &g,
            &packed[..mats],
            8,
            &tail,
            OutPtr::new(&mut out),
            range,
            cols,
        );
        assert!(r.is_err(), "{why}");
    }
}
