//! The inference engine against a naive f64 reference forward pass: every layer
//! and convolution algorithm on odd shapes, the whole tiny CNN fused and
//! unfused, per-image identical batches, and ResNet-50 fused vs unfused.

use crate::common::{reference, Rng};
use joulebench::engine::conv::{ConvAlgo, ConvChoice};
use joulebench::engine::gemm::{Activation, CacheConfig, Kernel, ParallelLoop};
use joulebench::engine::graph::{BatchNorm, Conv, Dense, Graph, Op, PoolKind, Window};
use joulebench::engine::models;
use joulebench::engine::session::{Session, SessionOptions};
use std::collections::HashMap;

/// Max |got - want| / max(1, |want|) over all values.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "output length");
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            assert!(g.is_finite(), "non-finite output");
            (g as f64 - w).abs() / w.abs().max(1.0)
        })
        .fold(0.0, f64::max)
}

fn run(g: &Graph, opts: &SessionOptions, input: &[f32]) -> Vec<f32> {
    let mut s = Session::new(g, opts).unwrap();
    s.run(input).unwrap().to_vec()
}

fn bn(rng: &mut Rng, c: usize) -> BatchNorm {
    BatchNorm {
        gamma: (0..c).map(|_| 0.5 + rng.signed_f32().abs()).collect(),
        beta: rng.signed_vec(c),
        mean: rng.signed_vec(c),
        var: (0..c).map(|_| 0.5 + rng.signed_f32().abs()).collect(),
        eps: 1e-5,
    }
}

#[allow(clippy::too_many_arguments)]
fn conv_graph(
    rng: &mut Rng,
    (h, w, cin): (usize, usize, usize),
    cout: usize,
    groups: usize,
    window: Window,
    bias: bool,
    tail: &str,
) -> Graph {
    let mut g = Graph::new("conv-test", h, w, cin);
    let wl = cout * (cin / groups) * window.kh * window.kw;
    let cv = Conv {
        cin,
        cout,
        groups,
        window,
        weights: rng.signed_vec(wl),
        bias: bias.then(|| rng.signed_vec(cout)),
    };
    let mut v = g.push("conv", Op::Conv(Box::new(cv)), &[0]);
    if tail.contains("bn") {
        v = g.push("bn", Op::BatchNorm(bn(rng, cout)), &[v]);
    }
    if tail.contains("add") {
        // A residual of the conv's output shape, computed from the input by a second conv.
        let cv2 = Conv {
            cin,
            cout,
            groups: 1,
            window,
            weights: rng.signed_vec(cout * cin * window.kh * window.kw),
            bias: None,
        };
        let r = g.push("shortcut", Op::Conv(Box::new(cv2)), &[0]);
        v = g.push("add", Op::Add, &[v, r]);
    }
    // An activation named in the tail, by its name (`relu6`, `hardswish`, ...).
    let named = |tok: &str| {
        reference::EVERY_ACTIVATION
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(tok))
    };
    if let Some(act) = tail.split_whitespace().find_map(named) {
        g.push("act", Op::Activation(act), &[v]);
    }
    g
}

fn window(kh: usize, kw: usize, s: (usize, usize), pads: [usize; 4], d: (usize, usize)) -> Window {
    Window {
        kh,
        kw,
        stride_h: s.0,
        stride_w: s.1,
        pad_top: pads[0],
        pad_left: pads[1],
        pad_bottom: pads[2],
        pad_right: pads[3],
        dilation_h: d.0,
        dilation_w: d.1,
    }
}

#[test]
fn every_convolution_algorithm_on_odd_shapes() {
    let mut rng = Rng::new(3);
    // (input h, w, cin), cout, groups, window
    let cases = [
        ((9, 7, 5), 11, 1, window(3, 3, (1, 1), [1, 1, 1, 1], (1, 1))),
        (
            (10, 13, 3),
            17,
            1,
            window(3, 3, (2, 2), [1, 1, 1, 1], (1, 1)),
        ),
        ((11, 8, 6), 9, 1, window(5, 3, (2, 1), [2, 0, 1, 1], (1, 1))),
        (
            (12, 12, 4),
            8,
            1,
            window(3, 3, (1, 1), [2, 2, 2, 2], (2, 2)),
        ),
        (
            (7, 9, 13),
            19,
            1,
            window(1, 1, (1, 1), [0, 0, 0, 0], (1, 1)),
        ),
        (
            (8, 11, 12),
            20,
            1,
            window(1, 1, (2, 2), [0, 0, 0, 0], (1, 1)),
        ),
        ((9, 9, 12), 8, 4, window(3, 3, (1, 1), [1, 1, 1, 1], (1, 1))),
        ((15, 5, 1), 3, 1, window(7, 2, (3, 2), [3, 0, 3, 1], (1, 1))),
        // Winograd: asymmetric padding, a one-pixel-wide image, and enough
        // tiles and channels for several tile blocks.
        (
            (6, 10, 16),
            24,
            1,
            window(3, 3, (1, 1), [0, 2, 1, 0], (1, 1)),
        ),
        ((5, 1, 7), 10, 1, window(3, 3, (1, 1), [1, 1, 1, 1], (1, 1))),
        (
            (14, 13, 64),
            70,
            1,
            window(3, 3, (1, 1), [1, 1, 1, 1], (1, 1)),
        ),
        // Winograd F(4x4, 3x3) edges: outputs 7x7, 5x9, 1x1 (twice) and an
        // exact 12x12; channel counts 3, 13, 9 and 16 against the vector
        // widths (8 on AVX2, 4 on NEON); padding 1 and 0.
        ((7, 7, 3), 13, 1, window(3, 3, (1, 1), [1, 1, 1, 1], (1, 1))),
        (
            (7, 11, 13),
            5,
            1,
            window(3, 3, (1, 1), [0, 0, 0, 0], (1, 1)),
        ),
        (
            (3, 3, 13),
            20,
            1,
            window(3, 3, (1, 1), [0, 0, 0, 0], (1, 1)),
        ),
        ((1, 1, 9), 16, 1, window(3, 3, (1, 1), [1, 1, 1, 1], (1, 1))),
        (
            (12, 12, 16),
            24,
            1,
            window(3, 3, (1, 1), [1, 1, 1, 1], (1, 1)),
        ),
    ];
    let tails = ["", "bn relu", "bn add relu", "relu6"];
    let mut worst4 = 0.0f64;
    for (i, &(shape, cout, groups, win)) in cases.iter().enumerate() {
        for (t, tail) in tails.iter().enumerate() {
            let g = conv_graph(&mut rng, shape, cout, groups, win, i % 2 == 0, tail);
            let batch = 1 + (i + t) % 3;
            let input = rng.signed_vec(batch * shape.0 * shape.1 * shape.2);
            let want = reference::forward(&g, &input, batch);
            let conv = match &g.nodes[1].op {
                Op::Conv(c) => c.clone(),
                _ => unreachable!(),
            };
            for algo in [
                ConvAlgo::ConvGemm,
                ConvAlgo::Im2col,
                ConvAlgo::Pointwise,
                ConvAlgo::Winograd,
                ConvAlgo::Winograd4,
            ] {
                if !algo.supports(&conv) {
                    continue;
                }
                // F(4x4, 3x3)'s transforms have coefficients up to 8 (A^T)
                // and 5 (B^T), costing about a decimal digit of f32.
                let tol = if algo == ConvAlgo::Winograd4 {
                    5e-4
                } else {
                    1e-4
                };
                // The layer's own blocking (as tuning sets it): k-blocks of 7
                // and A blocks of 12 rows, unlike the session's, for packing
                // and running.
                let own = CacheConfig {
                    mc: 12,
                    nc: 32,
                    kc: 7,
                };
                for (fusion, blocking) in [(true, None), (false, None), (true, Some(own))] {
                    for threads in [1, 3] {
                        let opts = SessionOptions {
                            batch,
                            threads,
                            fusion,
                            conv_overrides: HashMap::from([("conv".to_string(), algo)]),
                            layer_cache: blocking
                                .map(|c| HashMap::from([("conv".to_string(), c)]))
                                .unwrap_or_default(),
                            ..SessionOptions::default()
                        };
                        let got = run(&g, &opts, &input);
                        let e = rel_err(&got, &want);
                        if algo == ConvAlgo::Winograd4 {
                            worst4 = worst4.max(e);
                        }
                        assert!(
                            e < tol,
                            "case {i} tail `{tail}` {algo} fusion={fusion} threads={threads} blocking {blocking:?}: rel err {e:e}"
                        );
                    }
                }
            }
        }
    }
    eprintln!("winograd4 on odd shapes: max rel err {worst4:e}");
}

#[test]
fn depthwise_convolutions() {
    let mut rng = Rng::new(5);
    let cases = [
        ((9, 7, 8), window(3, 3, (1, 1), [1, 1, 1, 1], (1, 1))),
        ((10, 11, 13), window(3, 3, (2, 2), [1, 0, 1, 1], (1, 1))),
        ((12, 12, 5), window(5, 5, (1, 2), [2, 2, 2, 2], (2, 1))),
    ];
    for (i, &(shape, win)) in cases.iter().enumerate() {
        for tail in ["", "bn relu6", "bn relu"] {
            let g = conv_graph(&mut rng, shape, shape.2, shape.2, win, i == 1, tail);
            let input = rng.signed_vec(2 * shape.0 * shape.1 * shape.2);
            let want = reference::forward(&g, &input, 2);
            for algo in [ConvAlgo::Depthwise, ConvAlgo::ConvGemm] {
                for threads in [1, 2] {
                    let opts = SessionOptions {
                        batch: 2,
                        threads,
                        conv_overrides: HashMap::from([("conv".to_string(), algo)]),
                        ..SessionOptions::default()
                    };
                    let e = rel_err(&run(&g, &opts, &input), &want);
                    assert!(
                        e < 1e-4,
                        "depthwise case {i} `{tail}` {algo}: rel err {e:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_activation_fused_into_every_algorithm() {
    let mut rng = Rng::new(21);
    // A 3x3 layer (every algorithm, Winograd included) with channel counts
    // past the vector widths, a 1x1 layer, and a depthwise one.
    let cases = [
        (
            (7, 6, 11),
            19,
            1,
            window(3, 3, (1, 1), [1, 1, 1, 1], (1, 1)),
        ),
        ((5, 7, 9), 21, 1, window(1, 1, (1, 1), [0, 0, 0, 0], (1, 1))),
        (
            (9, 8, 13),
            13,
            13,
            window(3, 3, (2, 1), [1, 1, 0, 1], (1, 1)),
        ),
    ];
    for (i, &(shape, cout, groups, win)) in cases.iter().enumerate() {
        for act in reference::EVERY_ACTIVATION {
            // A residual only where the second conv can make one (not depthwise).
            let extra = if groups == 1 { "bn add" } else { "bn" };
            let tail = format!("{extra} {}", act.name());
            let g = conv_graph(&mut rng, shape, cout, groups, win, true, &tail);
            let input = rng.signed_vec(2 * shape.0 * shape.1 * shape.2);
            let want = reference::forward(&g, &input, 2);
            let conv = match &g.nodes[1].op {
                Op::Conv(c) => c.clone(),
                _ => unreachable!(),
            };
            for algo in [
                ConvAlgo::ConvGemm,
                ConvAlgo::Im2col,
                ConvAlgo::Pointwise,
                ConvAlgo::Depthwise,
                ConvAlgo::Winograd,
                ConvAlgo::Winograd4,
            ] {
                if !algo.supports(&conv) {
                    continue;
                }
                let tol = if algo == ConvAlgo::Winograd4 {
                    5e-4
                } else {
                    1e-4
                };
                for (kernel, threads) in Kernel::all_available()
                    .into_iter()
                    .flat_map(|k| [(k, 1), (k, 2)])
                {
                    let opts = SessionOptions {
                        batch: 2,
                        threads,
                        kernel: Some(kernel.kind),
                        conv_overrides: HashMap::from([("conv".to_string(), algo)]),
                        ..SessionOptions::default()
                    };
                    let e = rel_err(&run(&g, &opts, &input), &want);
                    assert!(
                        e < tol,
                        "case {i} `{tail}` {algo} {kernel:?} threads={threads}: rel err {e:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn pools_dense_concat_softmax() {
    let mut rng = Rng::new(9);
    let mut g = Graph::new("misc", 9, 10, 6);
    let mp = g.push(
        "max",
        Op::Pool {
            kind: PoolKind::Max,
            window: window(3, 3, (2, 2), [1, 1, 1, 1], (1, 1)),
        },
        &[0],
    );
    let ap = g.push(
        "avg",
        Op::Pool {
            kind: PoolKind::Avg {
                count_include_pad: true,
            },
            window: window(3, 3, (2, 2), [1, 1, 1, 1], (1, 1)),
        },
        &[0],
    );
    let ap2 = g.push(
        "avg2",
        Op::Pool {
            kind: PoolKind::Avg {
                count_include_pad: false,
            },
            window: window(3, 2, (2, 2), [1, 0, 1, 1], (1, 1)),
        },
        &[0],
    );
    let cat = g.push("cat", Op::Concat { axis: 3 }, &[mp, ap, ap2]);
    let fl = g.push("flat", Op::Flatten, &[cat]);
    let shapes = g.shapes().unwrap();
    let inputs = shapes[fl].c;
    let d = g.push(
        "fc",
        Op::Dense(Box::new(Dense {
            inputs,
            outputs: 7,
            weights: rng.signed_vec(inputs * 7),
            bias: Some(rng.signed_vec(7)),
        })),
        &[fl],
    );
    let r = g.push("relu", Op::Activation(Activation::Relu), &[d]);
    g.push(
        "softmax",
        Op::Softmax {
            axis: 3,
            log: false,
        },
        &[r],
    );
    for batch in [1, 3] {
        let input = rng.signed_vec(batch * 9 * 10 * 6);
        let want = reference::forward(&g, &input, batch);
        for threads in [1, 2] {
            for fusion in [true, false] {
                let opts = SessionOptions {
                    batch,
                    threads,
                    fusion,
                    ..SessionOptions::default()
                };
                let e = rel_err(&run(&g, &opts, &input), &want);
                assert!(
                    e < 1e-5,
                    "batch {batch} threads {threads} fusion {fusion}: {e:e}"
                );
            }
        }
    }
}

#[test]
fn tiny_cnn_matches_the_reference_in_every_configuration() {
    let g = models::build("tiny", 1).unwrap();
    let (h, w, c) = g.image_input().expect("an image model");
    let mut rng = Rng::new(21);
    for batch in [1, 4] {
        let input = rng.signed_vec(batch * h * w * c);
        let want = reference::forward(&g, &input, batch);
        for conv in [ConvChoice::Auto, ConvChoice::ConvGemm, ConvChoice::Im2col] {
            for fusion in [true, false] {
                for threads in [1, 2, 3] {
                    let opts = SessionOptions {
                        batch,
                        threads,
                        fusion,
                        conv,
                        ..SessionOptions::default()
                    };
                    let e = rel_err(&run(&g, &opts, &input), &want);
                    assert!(
                        e < 1e-4,
                        "batch {batch} {conv} fusion={fusion} threads={threads}: {e:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn batch_of_eight_gives_each_image_the_batch_of_one_result() {
    for name in ["tiny", "mobilenet_v1"] {
        let g = models::build(name, 2).unwrap();
        let (h, w, c) = g.image_input().expect("an image model");
        let img = h * w * c;
        let input = Rng::new(8).signed_vec(8 * img);
        let opts8 = SessionOptions {
            batch: 8,
            threads: 2,
            ..SessionOptions::default()
        };
        let out8 = run(&g, &opts8, &input);
        let per = out8.len() / 8;
        let mut one = Session::new(
            &g,
            &SessionOptions {
                threads: 2,
                ..SessionOptions::default()
            },
        )
        .unwrap();
        for i in 0..8 {
            let o = one.run(&input[i * img..(i + 1) * img]).unwrap();
            assert_eq!(o, &out8[i * per..(i + 1) * per], "{name} image {i}");
        }
    }
}

#[test]
fn resnet50_fused_and_unfused_agree() {
    let g = models::build("resnet50", 3).unwrap();
    let input = Rng::new(4).signed_vec(224 * 224 * 3);
    let fused = run(
        &g,
        &SessionOptions {
            threads: 2,
            ..SessionOptions::default()
        },
        &input,
    );
    let unfused = run(
        &g,
        &SessionOptions {
            threads: 2,
            fusion: false,
            ..SessionOptions::default()
        },
        &input,
    );
    let scale = unfused.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
    let worst = fused
        .iter()
        .zip(&unfused)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst / scale < 1e-4,
        "max |fused - unfused| = {worst} at output scale {scale}"
    );
    assert!(
        fused.iter().any(|&v| v != fused[0]),
        "output must not be constant"
    );
}

/// Max |got - want| over the largest |want|: error at the output's scale.
fn scale_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "output length");
    let scale = want.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
    let worst = got
        .iter()
        .zip(want)
        .map(|(&a, &b)| {
            assert!(a.is_finite(), "non-finite output");
            (a as f64 - b as f64).abs()
        })
        .fold(0.0, f64::max);
    worst / scale.max(f64::MIN_POSITIVE)
}

/// Each 3x3 stride-1 layer of ResNet-50 (its real shape and seeded weights,
/// on a non-negative input as after a ReLU) with both Winograd tile sizes
/// against the f64 reference, then the whole model with every such layer on
/// F(4x4, 3x3) against direct convolution (convGemm): within 1e-3.
#[test]
fn resnet50_winograd4_per_layer_and_whole_model() {
    let g = models::build("resnet50", 3).unwrap();
    let shapes = g.shapes().unwrap();
    let mut rng = Rng::new(11);
    let mut layers = 0;
    let (mut worst2, mut worst4) = (0.0f64, 0.0f64);
    for node in &g.nodes {
        let Op::Conv(cv) = &node.op else { continue };
        if !ConvAlgo::Winograd4.supports(cv) {
            continue;
        }
        layers += 1;
        let s = shapes[node.inputs[0]];
        let mut one = Graph::new("layer", s.h, s.w, s.c);
        one.push("conv", Op::Conv(cv.clone()), &[0]);
        let input: Vec<f32> = rng
            .signed_vec(s.h * s.w * s.c)
            .iter()
            .map(|v| v.abs())
            .collect();
        let want: Vec<f32> = reference::forward(&one, &input, 1)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let mut errs = [0.0; 2];
        for (e, algo) in errs
            .iter_mut()
            .zip([ConvAlgo::Winograd, ConvAlgo::Winograd4])
        {
            let opts = SessionOptions {
                threads: 2,
                conv_overrides: HashMap::from([("conv".to_string(), algo)]),
                ..SessionOptions::default()
            };
            *e = scale_err(&run(&one, &opts, &input), &want);
        }
        eprintln!(
            "resnet50 {:<24} {:>3}x{:<3} {:>4}->{:<4} rel err winograd {:.2e} winograd4 {:.2e}",
            node.name, s.h, s.w, s.c, cv.cout, errs[0], errs[1]
        );
        worst2 = worst2.max(errs[0]);
        worst4 = worst4.max(errs[1]);
    }
    assert!(
        layers >= 13,
        "ResNet-50 v1.5 has 13 3x3 stride-1 convolutions, found {layers}"
    );
    assert!(worst4 < 1e-4, "per-layer winograd4 rel err {worst4:e}");
    assert!(worst2 < 1e-5, "per-layer winograd rel err {worst2:e}");

    let input = Rng::new(4).signed_vec(224 * 224 * 3);
    let whole = |conv: ConvChoice| {
        run(
            &g,
            &SessionOptions {
                threads: 2,
                conv,
                ..SessionOptions::default()
            },
            &input,
        )
    };
    let direct = whole(ConvChoice::ConvGemm);
    let w4 = whole(ConvChoice::Winograd4);
    let e = scale_err(&w4, &direct);
    // Also against the logits' spread, in case a common offset dominates the scale.
    let (lo, hi) = direct
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let worst = w4
        .iter()
        .zip(&direct)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!(
        "resnet50 whole model, every eligible layer on winograd4 vs convgemm: rel err {e:.2e} \
         (max |diff| {worst:.2e} over logit range {:.3e})",
        hi - lo
    );
    assert!(e < 1e-3, "winograd4 vs convgemm rel err {e:e}");
    assert!(
        w4.iter().any(|&v| v != w4[0]),
        "output must not be constant"
    );
}

#[test]
fn bad_run_parameters_are_errors() {
    let g = models::build("tiny", 1).unwrap();
    assert!(Session::new(
        &g,
        &SessionOptions {
            batch: 0,
            ..SessionOptions::default()
        }
    )
    .is_err());
    assert!(Session::new(
        &g,
        &SessionOptions {
            threads: 0,
            ..SessionOptions::default()
        }
    )
    .is_err());
    assert!(Session::new(
        &g,
        &SessionOptions {
            kc: Some(0),
            ..SessionOptions::default()
        }
    )
    .is_err());
    let bad_override = SessionOptions {
        conv_overrides: HashMap::from([("no-such-layer".to_string(), ConvAlgo::Im2col)]),
        ..SessionOptions::default()
    };
    assert!(Session::new(&g, &bad_override).is_err());
    let blocking = |name: &str, mc: usize| SessionOptions {
        layer_cache: HashMap::from([(name.to_string(), CacheConfig { mc, nc: 96, kc: 32 })]),
        ..SessionOptions::default()
    };
    let e = Session::new(&g, &blocking("no-such-layer", 12))
        .err()
        .unwrap();
    assert!(e.to_string().contains("no-such-layer"), "{e}");
    let e = Session::new(&g, &blocking("pw.conv", 0)).err().unwrap();
    assert!(
        e.to_string().contains("`pw.conv`") && e.to_string().contains("mc"),
        "{e}"
    );
    // The layer list shows a layer's own blocking, and only there.
    let s = Session::new(&g, &blocking("pw.conv", 12)).unwrap();
    for l in s.layers() {
        let want = if l.name == "pw.conv" {
            "mc=12 nc=96 kc=32"
        } else {
            ""
        };
        assert_eq!(l.blocking, want, "{l:?}");
    }
    let mut s = Session::new(&g, &SessionOptions::default()).unwrap();
    assert!(s.run(&[0.0; 5]).is_err(), "wrong input length");
    let _ = ParallelLoop::Auto;
}
