//! The built-in model zoo against published architecture figures, its seeded
//! weights, and the naive reference forward pass (checked by hand first, so
//! that it can be trusted as the engine's oracle).

use crate::common::reference;
use crate::common::Rng;
use joulebench::engine::gemm::Activation;
use joulebench::engine::graph::{BatchNorm, Conv, Dense, Graph, Node, Op, PoolKind, Shape, Window};
use joulebench::engine::models::{self, ModelInfo};
use joulebench::engine::EngineError;
use std::sync::OnceLock;
use std::time::Instant;

/// Published figures: torchvision's parameter counts (BatchNorm as gamma and
/// beta) and GMACs; MobileNet v1 from its paper (4.2M, 569M mult-adds).
/// VGG-16 here has a BatchNorm after every bias-free convolution:
/// torchvision's vgg16 (138,357,544) minus 4,224 conv biases plus 8,448 BN
/// gamma/beta values.
const PUBLISHED: &[(&str, usize, f64)] = &[
    ("resnet18", 11_689_512, 1.814),
    ("resnet34", 21_797_672, 3.664),
    ("resnet50", 25_557_032, 4.089),
    ("resnet101", 44_549_160, 7.801),
    ("resnet152", 60_192_808, 11.514),
    ("vgg16", 138_361_768, 15.47),
    ("alexnet", 61_100_840, 0.714),
    ("mobilenet_v1", 4_231_976, 0.569),
];

/// Rounded figures as usually quoted (millions of parameters, GMACs).
const QUOTED: &[(&str, f64, Option<f64>)] = &[
    ("resnet18", 11.69, Some(1.82)),
    ("resnet34", 21.80, None),
    ("resnet50", 25.557, Some(4.1)),
    ("resnet101", 44.55, None),
    ("resnet152", 60.19, None),
    ("vgg16", 138.36, Some(15.5)),
    ("alexnet", 61.10, None),
    ("mobilenet_v1", 4.23, Some(0.57)),
];

fn within(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs()
}

fn conv(n: &Op) -> Option<&Conv> {
    match n {
        Op::Conv(c) => Some(c),
        _ => None,
    }
}

/// Every weight-like tensor of a graph, in node order, with its node's name.
fn tensors(g: &Graph) -> Vec<(String, &[f32])> {
    let mut out: Vec<(String, &[f32])> = Vec::new();
    for n in &g.nodes {
        match &n.op {
            Op::Conv(c) => {
                out.push((n.name.clone(), &c.weights));
                if let Some(b) = &c.bias {
                    out.push((n.name.clone(), b));
                }
            }
            Op::Dense(d) => {
                out.push((n.name.clone(), &d.weights));
                if let Some(b) = &d.bias {
                    out.push((n.name.clone(), b));
                }
            }
            Op::BatchNorm(b) => {
                for v in [&b.gamma, &b.beta, &b.mean, &b.var] {
                    out.push((n.name.clone(), v));
                }
            }
            _ => {}
        }
    }
    out
}

/// ResNet-50 with seed 7, shared by the tests that only inspect it.
fn resnet50() -> &'static Graph {
    static G: OnceLock<Graph> = OnceLock::new();
    G.get_or_init(|| models::build("resnet50", 7).unwrap())
}

fn node<'g>(g: &'g Graph, name: &str) -> &'g Node {
    g.nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("{}: no node `{name}`", g.name))
}

#[test]
fn the_zoo_lists_every_model() {
    let names = models::names();
    for want in [
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "vgg16",
        "alexnet",
        "mobilenet_v1",
        "tiny",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
}

#[test]
fn unknown_models_are_invalid_parameters_listing_the_valid_names() {
    for bad in ["resnet", "ResNet-50", ""] {
        let e = models::build(bad, 0).unwrap_err();
        assert!(matches!(e, EngineError::InvalidParameter { .. }), "{e:?}");
        assert!(e.is_bad_input());
        let msg = e.to_string();
        for n in models::names() {
            assert!(msg.contains(n), "`{msg}` does not list {n}");
        }
        assert!(models::info(bad).is_err());
    }
}

/// Builds every model with seeded weights (one at a time: VGG-16 alone is
/// over half a gigabyte), checks its shapes and that `info` agrees.
#[test]
fn every_model_builds_and_infers_its_shapes() {
    for &name in models::names() {
        let t = Instant::now();
        let g = models::build(name, 1).unwrap();
        let built = t.elapsed();
        let shapes = g.shapes().unwrap();
        let out = shapes[g.output()];
        let info = models::info(name).unwrap();
        println!(
            "{name:>13}: {:>11} params, {:>7.3} GFLOP/image, {:>3} weighted layers, {:>4} nodes, built in {built:.2?}",
            info.parameters,
            info.gflops_per_image,
            info.weighted_layers,
            g.nodes.len()
        );
        assert_eq!(g.name, name);
        assert_eq!(info.name, name);
        assert_eq!(Some(info.input), g.image_input());
        assert_eq!(info.parameters, models::trainable_parameters(&g));
        assert_eq!(info.weighted_layers, g.weighted_layers());
        assert_eq!(info.gflops_per_image, g.flops_per_image().unwrap() / 1e9);
        if name == "tiny" {
            assert_eq!(out, Shape { h: 1, w: 1, c: 10 });
            assert!(matches!(g.nodes[g.output()].op, Op::Softmax { .. }));
        } else {
            assert_eq!(g.image_input(), Some((224, 224, 3)));
            assert_eq!(
                out,
                Shape {
                    h: 1,
                    w: 1,
                    c: 1000
                },
                "{name}"
            );
            assert!(
                matches!(g.nodes[g.output()].op, Op::Dense(_)),
                "{name} ends in logits"
            );
        }
        check_conv_followers(&g);
        // Node names are unique (profiles and errors refer to them).
        let mut seen = std::collections::HashSet::new();
        for n in &g.nodes {
            assert!(
                seen.insert(n.name.as_str()),
                "{name}: duplicate node name {}",
                n.name
            );
        }
        // Every tensor is finite, and no weight tensor is constant.
        for (node, t) in tensors(&g) {
            assert!(t.iter().all(|v| v.is_finite()), "{name}.{node}");
            if t.len() > 1 {
                assert!(t.iter().any(|&v| v != t[0]), "{name}.{node} is constant");
            }
        }
    }
}

/// Each convolution of ResNet, VGG-16 and MobileNet v1 has no bias and feeds
/// exactly one BatchNorm; AlexNet's have biases and feed a ReLU.
fn check_conv_followers(g: &Graph) {
    let name = g.name.as_str();
    if name == "tiny" {
        return;
    }
    let uses = g.consumers();
    for (i, n) in g.nodes.iter().enumerate() {
        let Some(c) = conv(&n.op) else { continue };
        assert_eq!(uses[i], 1, "{name}.{}", n.name);
        let reader = &g.nodes.iter().find(|m| m.inputs.contains(&i)).unwrap().op;
        if name == "alexnet" {
            assert!(c.bias.is_some(), "{name}.{}", n.name);
            assert!(matches!(reader, Op::Activation(Activation::Relu)));
        } else {
            assert!(c.bias.is_none(), "{name}.{} has a bias", n.name);
            assert!(matches!(reader, Op::BatchNorm(_)), "{name}.{}", n.name);
        }
    }
}

#[test]
fn sizes_and_costs_match_published_figures() {
    for &(name, params, gmacs) in PUBLISHED {
        let info: ModelInfo = models::info(name).unwrap();
        assert_eq!(info.parameters, params, "{name} parameters");
        let got_gmacs = info.gflops_per_image / 2.0;
        assert!(
            within(got_gmacs, gmacs, 0.01),
            "{name}: {got_gmacs:.4} GMACs, published {gmacs}"
        );
    }
    for &(name, mparams, gmacs) in QUOTED {
        let info = models::info(name).unwrap();
        let m = info.parameters as f64 / 1e6;
        assert!(
            within(m, mparams, 0.01),
            "{name}: {m:.3}M params, quoted {mparams}M"
        );
        if let Some(gmacs) = gmacs {
            let got = info.gflops_per_image / 2.0;
            assert!(
                within(got, gmacs, 0.01),
                "{name}: {got:.3} GMACs, quoted {gmacs}"
            );
        }
    }
    // ResNet-50: Graph::parameters also counts BatchNorm's running statistics.
    let g = resnet50();
    let bn_channels: usize = g
        .nodes
        .iter()
        .map(|n| match &n.op {
            Op::BatchNorm(b) => b.gamma.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(bn_channels, 26_560);
    assert_eq!(g.parameters(), 25_557_032 + 2 * bn_channels);
    assert_eq!(g.weighted_layers(), 54);
}

#[test]
fn resnet50_is_torchvision_v1_5() {
    let g = resnet50();
    let shapes = g.shapes().unwrap();
    let shape_of = |name: &str| shapes[g.nodes.iter().position(|n| n.name == name).unwrap()];
    let c = |name: &str| conv(&node(g, name).op).unwrap().clone();

    let conv1 = c("conv1");
    assert_eq!(conv1.window, Window::square(7, 2, 3));
    assert_eq!((conv1.cin, conv1.cout), (3, 64));
    assert_eq!(
        shape_of("maxpool"),
        Shape {
            h: 56,
            w: 56,
            c: 64
        }
    );
    // v1.5: the stride sits on the 3x3 convolution, not on the first 1x1.
    for layer in 2..=4 {
        let p = format!("layer{layer}.0");
        assert_eq!(c(&format!("{p}.conv1")).window, Window::square(1, 1, 0));
        assert_eq!(c(&format!("{p}.conv2")).window, Window::square(3, 2, 1));
        assert_eq!(
            c(&format!("{p}.downsample.0")).window,
            Window::square(1, 2, 0)
        );
    }
    // layer1.0 projects 64 -> 256 channels without striding.
    assert_eq!(c("layer1.0.downsample.0").window, Window::square(1, 1, 0));
    assert!(g.nodes.iter().all(|n| n.name != "layer1.1.downsample.0"));
    for (name, s) in [
        ("layer1.2.relu3", (56, 256)),
        ("layer2.3.relu3", (28, 512)),
        ("layer3.5.relu3", (14, 1024)),
        ("layer4.2.relu3", (7, 2048)),
    ] {
        assert_eq!(
            shape_of(name),
            Shape {
                h: s.0,
                w: s.0,
                c: s.1
            },
            "{name}"
        );
    }
    let convs = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Conv(_)))
        .count();
    assert_eq!(convs, 53);
    // Block tail: conv3 -> bn3 -> add(shortcut) -> relu.
    let find = |name: &str| g.nodes.iter().position(|n| n.name == name).unwrap();
    for p in ["layer1.0", "layer3.4"] {
        let bn3 = find(&format!("{p}.bn3"));
        assert_eq!(g.nodes[bn3].inputs, vec![find(&format!("{p}.conv3"))]);
        let add = find(&format!("{p}.add"));
        assert!(matches!(g.nodes[add].op, Op::Add));
        assert_eq!(g.nodes[add].inputs[0], bn3);
        let relu = find(&format!("{p}.relu3"));
        assert_eq!(g.nodes[relu].inputs, vec![add]);
        assert!(matches!(g.nodes[relu].op, Op::Activation(Activation::Relu)));
    }
    let fc = match &node(g, "fc").op {
        Op::Dense(d) => d.clone(),
        _ => panic!("fc is not dense"),
    };
    assert_eq!((fc.inputs, fc.outputs), (2048, 1000));
}

#[test]
fn mobilenet_v1_has_thirteen_depthwise_separable_blocks() {
    let g = models::build("mobilenet_v1", 2).unwrap();
    let dw: Vec<&Conv> = g
        .nodes
        .iter()
        .filter_map(|n| conv(&n.op))
        .filter(|c| c.is_depthwise())
        .collect();
    assert_eq!(dw.len(), 13);
    assert!(dw.iter().all(|c| c.window.kh == 3 && c.window.kw == 3));
    let relu6 = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Activation(Activation::Relu6)))
        .count();
    assert_eq!(relu6, 27);
    let shapes = g.shapes().unwrap();
    let gap = g
        .nodes
        .iter()
        .position(|n| matches!(n.op, Op::GlobalAvgPool))
        .unwrap();
    assert_eq!(
        shapes[g.nodes[gap].inputs[0]],
        Shape {
            h: 7,
            w: 7,
            c: 1024
        }
    );
}

#[test]
fn same_seed_same_weights_other_seed_other_weights() {
    for name in ["tiny", "resnet18", "mobilenet_v1"] {
        let a = models::build(name, 42).unwrap();
        let b = models::build(name, 42).unwrap();
        let c = models::build(name, 43).unwrap();
        let (ta, tb, tc) = (tensors(&a), tensors(&b), tensors(&c));
        assert_eq!(ta.len(), tb.len());
        for (((na, xa), (_, xb)), (_, xc)) in ta.iter().zip(&tb).zip(&tc) {
            assert_eq!(xa.len(), xb.len());
            assert!(
                xa.iter()
                    .zip(xb.iter())
                    .all(|(p, q)| p.to_bits() == q.to_bits()),
                "{name}.{na}: same seed, different weights"
            );
            assert!(xa != xc, "{name}.{na}: another seed gives the same values");
        }
    }
}

#[test]
fn weights_follow_the_documented_distributions() {
    let g = resnet50();
    for n in &g.nodes {
        match &n.op {
            Op::Conv(c) if c.weights.len() >= 10_000 => {
                let fan_in = c.cin / c.groups * c.window.kh * c.window.kw;
                let want = (2.0 / fan_in as f64).sqrt();
                let (mean, std) = moments(&c.weights);
                assert!(mean.abs() < 0.05 * want, "{}: mean {mean}", n.name);
                assert!(
                    within(std, want, 0.03),
                    "{}: std {std}, He-normal {want}",
                    n.name
                );
            }
            Op::BatchNorm(b) => {
                let residual_tail = n.name.ends_with(".bn3");
                let (lo, hi) = if residual_tail {
                    (0.1, 0.3)
                } else {
                    (0.5, 1.5)
                };
                assert!(
                    b.gamma.iter().all(|&v| (lo..hi).contains(&v)),
                    "{} gamma",
                    n.name
                );
                assert!(
                    b.beta.iter().all(|&v| (-0.2..0.2).contains(&v)),
                    "{} beta",
                    n.name
                );
                assert!(
                    b.mean.iter().all(|&v| (-0.2..0.2).contains(&v)),
                    "{} mean",
                    n.name
                );
                assert!(
                    b.var.iter().all(|&v| (0.5..1.5).contains(&v)),
                    "{} var",
                    n.name
                );
                assert_eq!(b.eps, 1e-5);
            }
            Op::Dense(d) => {
                let bias = d.bias.as_ref().unwrap();
                assert!(bias.iter().all(|v| v.abs() <= 0.05), "{} bias", n.name);
            }
            _ => {}
        }
    }
    let basic = models::build("resnet18", 7).unwrap();
    for n in &basic.nodes {
        if let Op::BatchNorm(b) = &n.op {
            let small = n.name.ends_with(".bn2");
            assert_eq!(b.gamma.iter().all(|&v| v < 0.3), small, "{}", n.name);
        }
    }
}

fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// Generation must stay quick: the harness builds models before every run.
/// (Release builds take well under a second; this bound leaves room for a
/// loaded CI machine.)
#[test]
fn resnet50_weights_generate_quickly() {
    let t = Instant::now();
    let g = models::build("resnet50", 11).unwrap();
    let took = t.elapsed();
    println!("resnet50 built in {took:.2?}");
    assert_eq!(models::trainable_parameters(&g), 25_557_032);
    assert!(took.as_secs_f64() < 5.0, "resnet50 took {took:?} to build");
}

#[test]
fn tiny_exercises_every_op_kind() {
    let g = models::build("tiny", 0).unwrap();
    let shapes = g.shapes().unwrap();
    let kinds: std::collections::HashSet<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    for k in [
        "Input",
        "Conv",
        "BatchNorm",
        "Relu",
        "Relu6",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "Dense",
        "Add",
        "Concat",
        "Flatten",
        "Softmax",
    ] {
        assert!(kinds.contains(k), "tiny has no {k}");
    }
    let reads = |i: usize| g.nodes.iter().filter(move |m| m.inputs.contains(&i));
    let convs: Vec<(usize, &Conv)> = g
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| conv(&n.op).map(|c| (i, c)))
        .collect();
    let feeds_bn = |i: usize| reads(i).any(|m| matches!(m.op, Op::BatchNorm(_)));
    assert!(
        convs.iter().any(|&(i, c)| c.bias.is_some() && !feeds_bn(i)),
        "conv with bias, no BN"
    );
    let conv_bn_relu = g.nodes.iter().enumerate().any(|(b, bn)| {
        matches!(bn.op, Op::BatchNorm(_))
            && conv(&g.nodes[bn.inputs[0]].op).is_some_and(|c| c.bias.is_none())
            && reads(b).any(|r| matches!(r.op, Op::Activation(Activation::Relu)))
    });
    assert!(conv_bn_relu, "conv + BN + ReLU");
    assert!(convs.iter().any(|(_, c)| c.is_depthwise()), "depthwise");
    assert!(
        convs.iter().any(|(_, c)| c.groups > 1 && !c.is_depthwise()),
        "grouped"
    );
    assert!(convs.iter().any(|(_, c)| c.window.stride_h > 1), "strided");
    assert!(
        convs
            .iter()
            .any(|(_, c)| c.window.pad_top != c.window.pad_bottom
                && c.window.pad_left != c.window.pad_right),
        "asymmetric padding"
    );
    assert!(
        convs.iter().any(|(_, c)| c.window.dilation_h > 1),
        "dilated"
    );
    assert!(
        convs.iter().any(|(_, c)| c.window.kh != c.window.kw),
        "rectangular kernel"
    );
    let pools: Vec<PoolKind> = g
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::Pool { kind, .. } => Some(kind),
            _ => None,
        })
        .collect();
    assert!(pools.contains(&PoolKind::Avg {
        count_include_pad: false
    }));
    assert!(pools.contains(&PoolKind::Avg {
        count_include_pad: true
    }));
    // A residual Add followed by a ReLU.
    let add = g
        .nodes
        .iter()
        .position(|n| matches!(n.op, Op::Add))
        .unwrap();
    assert!(reads(add).all(|m| matches!(m.op, Op::Activation(Activation::Relu))));
    // Flatten of a spatial map feeding a Dense (tests the NCHW weight order).
    let flat = g
        .nodes
        .iter()
        .position(|n| matches!(n.op, Op::Flatten))
        .unwrap();
    let before = shapes[g.nodes[flat].inputs[0]];
    assert!(
        before.h > 1 && before.w > 1 && before.h != before.w,
        "{before}"
    );
    assert!(reads(flat).all(|m| matches!(m.op, Op::Dense(_))));
    // Small enough for the naive reference.
    assert!(g.flops_per_image().unwrap() < 5e6);
}

#[test]
fn tiny_reference_output_is_a_sane_distribution() {
    let g = models::build("tiny", 3).unwrap();
    let (h, w, c) = g.image_input().expect("an image model");
    let batch = 3;
    let mut rng = Rng::new(17);
    let input = rng.signed_vec(batch * h * w * c);
    let t = Instant::now();
    let all = reference::forward_all(&g, &input, batch);
    println!("tiny reference, batch {batch}: {:.2?}", t.elapsed());
    let out = all.last().unwrap();
    assert_eq!(out, &reference::forward(&g, &input, batch));
    assert_eq!(out.len(), batch * 10);
    for (v, node) in all.iter().zip(&g.nodes) {
        assert!(v.iter().all(|x| x.is_finite()), "{} not finite", node.name);
        assert!(v.iter().any(|&x| x != v[0]), "{} constant", node.name);
        let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(max < 100.0, "{}: |x| up to {max}", node.name);
    }
    for img in out.chunks(10) {
        let sum: f64 = img.iter().sum();
        assert!((sum - 1.0).abs() < 1e-12, "softmax sums to {sum}");
        assert!(img.iter().all(|&p| p > 0.0 && p < 1.0));
    }
    assert_ne!(out[..10], out[10..20], "different images, same output");
    // Each image is computed on its own.
    let one = reference::forward(&g, &input[h * w * c..2 * h * w * c], 1);
    assert_eq!(one, out[10..20]);
    // The logits are spread out, not all equal.
    let fc = g.nodes.iter().position(|n| n.name == "fc").unwrap();
    let (lo, hi) = all[fc][..10]
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    assert!(hi - lo > 0.1, "logits span only {lo}..{hi}");
}

// ---- the reference itself, by hand ----

/// Graph of one op on an `h x w x c` input.
fn single(h: usize, w: usize, c: usize, op: Op) -> Graph {
    let mut g = Graph::new("t", h, w, c);
    g.push("op", op, &[0]);
    g
}

fn conv_op(
    cin: usize,
    cout: usize,
    groups: usize,
    window: Window,
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
) -> Op {
    Op::Conv(Box::new(Conv {
        cin,
        cout,
        groups,
        window,
        weights,
        bias,
    }))
}

/// 1..=n as f32.
fn iota(n: usize) -> Vec<f32> {
    (1..=n).map(|v| v as f32).collect()
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() < 1e-9,
            "element {i}: {g} vs {w}\n{got:?}\n{want:?}"
        );
    }
}

#[test]
fn reference_conv_3x3_pad_1_by_hand() {
    // Input 1..16 in a 4x4 single channel, all-ones kernel: neighbourhood sums.
    let g = single(
        4,
        4,
        1,
        conv_op(1, 1, 1, Window::square(3, 1, 1), vec![1.0; 9], None),
    );
    let want = [
        14.0, 24.0, 30.0, 22.0, //
        33.0, 54.0, 63.0, 45.0, //
        57.0, 90.0, 99.0, 69.0, //
        46.0, 72.0, 78.0, 54.0,
    ];
    assert_close(&reference::forward(&g, &iota(16), 1), &want);

    // Cross-correlation, not convolution: weight (ky=1, kx=2) reads the right
    // neighbour; plus a bias.
    let mut k = vec![0.0; 9];
    k[5] = 2.0;
    let g = single(
        4,
        4,
        1,
        conv_op(1, 1, 1, Window::square(3, 1, 1), k, Some(vec![0.5])),
    );
    let want = [
        4.5, 6.5, 8.5, 0.5, //
        12.5, 14.5, 16.5, 0.5, //
        20.5, 22.5, 24.5, 0.5, //
        28.5, 30.5, 32.5, 0.5,
    ];
    assert_close(&reference::forward(&g, &iota(16), 1), &want);
}

#[test]
fn reference_conv_asymmetric_padding_stride_and_dilation_by_hand() {
    // 3x3 input 1..9, 2x2 ones kernel, pads top 1, right 1: out(y, x) sums
    // rows {y-1, y} and columns {x, x+1} inside the input.
    let w = Window {
        kh: 2,
        kw: 2,
        stride_h: 1,
        stride_w: 1,
        pad_top: 1,
        pad_left: 0,
        pad_bottom: 0,
        pad_right: 1,
        dilation_h: 1,
        dilation_w: 1,
    };
    let g = single(3, 3, 1, conv_op(1, 1, 1, w, vec![1.0; 4], None));
    let want = [3.0, 5.0, 3.0, 12.0, 16.0, 9.0, 24.0, 28.0, 15.0];
    assert_close(&reference::forward(&g, &iota(9), 1), &want);

    // Stride 2 over a 4x4 input with a 2x2 ones kernel: block sums.
    let g = single(
        4,
        4,
        1,
        conv_op(1, 1, 1, Window::square(2, 2, 0), vec![1.0; 4], None),
    );
    assert_close(
        &reference::forward(&g, &iota(16), 1),
        &[14.0, 22.0, 46.0, 54.0],
    );

    // Dilation 2: a 3x3 ones kernel on a 5x5 input reads rows and columns 0, 2, 4.
    let dil = Window {
        dilation_h: 2,
        dilation_w: 2,
        ..Window::square(3, 1, 0)
    };
    let g = single(5, 5, 1, conv_op(1, 1, 1, dil, vec![1.0; 9], None));
    let want = (1.0 + 3.0 + 5.0) + (11.0 + 13.0 + 15.0) + (21.0 + 23.0 + 25.0);
    assert_close(&reference::forward(&g, &iota(25), 1), &[want]);
}

#[test]
fn reference_grouped_and_multichannel_conv_by_hand() {
    // 1x1 input, 4 channels [1, 2, 3, 4], groups 2, 1x1 kernels, 2 outputs:
    // output 0 sees channels 0-1, output 1 sees channels 2-3.
    let g = single(
        1,
        1,
        4,
        conv_op(
            4,
            2,
            2,
            Window::square(1, 1, 0),
            vec![1.0, 10.0, 100.0, 1000.0],
            None,
        ),
    );
    assert_close(&reference::forward(&g, &iota(4), 1), &[21.0, 4300.0]);

    // Depthwise 1x1 scaling of 2 channels, batch 2.
    let g = single(
        1,
        2,
        2,
        conv_op(2, 2, 2, Window::square(1, 1, 0), vec![2.0, 3.0], None),
    );
    let want = [2.0, 6.0, 6.0, 12.0, 10.0, 18.0, 14.0, 24.0];
    assert_close(&reference::forward(&g, &iota(8), 2), &want);

    // OIHW indexing with two input channels: out = sum_c sum_k w[o][c][k] x.
    // 1x2 input, channels (a, b) per pixel: [(1, 2), (3, 4)]; 1x2 kernel.
    // weights[o=0][c=0] = [1, 10], weights[0][1] = [100, 1000]
    // out = 1*1 + 10*3 + 100*2 + 1000*4 = 4231.
    let w = Window {
        kw: 2,
        ..Window::square(1, 1, 0)
    };
    let g = single(
        1,
        2,
        2,
        conv_op(2, 1, 1, w, vec![1.0, 10.0, 100.0, 1000.0], None),
    );
    assert_close(&reference::forward(&g, &iota(4), 1), &[4231.0]);
}

#[test]
fn reference_pools_by_hand() {
    let max = Op::Pool {
        kind: PoolKind::Max,
        window: Window::square(2, 2, 0),
    };
    let g = single(4, 4, 1, max);
    assert_close(
        &reference::forward(&g, &iota(16), 1),
        &[6.0, 8.0, 14.0, 16.0],
    );

    // Max pool with padding ignores the padded positions even when all the
    // inputs are negative.
    let neg: Vec<f32> = iota(4).iter().map(|v| -v).collect();
    let g = single(
        2,
        2,
        1,
        Op::Pool {
            kind: PoolKind::Max,
            window: Window::square(3, 1, 1),
        },
    );
    assert_close(&reference::forward(&g, &neg, 1), &[-1.0; 4]);

    // 3x3 average, pad 1, on the 4x4 ramp: the border divides by 9 or by the
    // number of inside positions (4 at corners, 6 on edges); the centre agrees.
    let avg = |count_include_pad| {
        single(
            4,
            4,
            1,
            Op::Pool {
                kind: PoolKind::Avg { count_include_pad },
                window: Window::square(3, 1, 1),
            },
        )
    };
    let sums = [
        14.0, 24.0, 30.0, 22.0, 33.0, 54.0, 63.0, 45.0, 57.0, 90.0, 99.0, 69.0, 46.0, 72.0, 78.0,
        54.0,
    ];
    let inside = [
        4.0, 6.0, 6.0, 4.0, 6.0, 9.0, 9.0, 6.0, 6.0, 9.0, 9.0, 6.0, 4.0, 6.0, 6.0, 4.0,
    ];
    let with_pad: Vec<f64> = sums.iter().map(|s| s / 9.0).collect();
    let without: Vec<f64> = sums.iter().zip(&inside).map(|(s, n)| s / n).collect();
    let a = reference::forward(&avg(true), &iota(16), 1);
    let b = reference::forward(&avg(false), &iota(16), 1);
    assert_close(&a, &with_pad);
    assert_close(&b, &without);
    assert_eq!(a[0], 14.0 / 9.0);
    assert_eq!(b[0], 3.5);
    assert_eq!(a[5], b[5]);

    // Global average per channel, batch 2.
    let g = single(2, 2, 2, Op::GlobalAvgPool);
    assert_close(
        &reference::forward(&g, &iota(16), 2),
        &[4.0, 5.0, 12.0, 13.0],
    );
}

#[test]
fn reference_flatten_dense_uses_nchw_weight_order() {
    // 2x2x2 NHWC: channel 0 holds 1, 2, 3, 4 and channel 1 holds 10, 20, 30, 40
    // (pixels in row-major order), so memory is [1, 10, 2, 20, 3, 30, 4, 40].
    let input = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
    let dense = |weights: Vec<f32>, bias: Option<Vec<f32>>| {
        let mut g = Graph::new("t", 2, 2, 2);
        let f = g.push("flatten", Op::Flatten, &[0]);
        let outputs = weights.len() / 8;
        g.push(
            "fc",
            Op::Dense(Box::new(Dense {
                inputs: 8,
                outputs,
                weights,
                bias,
            })),
            &[f],
        );
        g
    };
    // NCHW index 5 = channel 1, y 0, x 1 -> 20.
    let mut one_hot = vec![0.0; 8];
    one_hot[5] = 1.0;
    assert_close(
        &reference::forward(&dense(one_hot, None), &input, 1),
        &[20.0],
    );
    // Weights 1..8 in NCHW order: 1*1 + 2*2 + 3*3 + 4*4 + 5*10 + 6*20 + 7*30 + 8*40.
    let mut w = iota(8);
    w.extend(vec![1.0; 8]);
    let out = reference::forward(&dense(w, Some(vec![0.5, -1.0])), &input, 1);
    assert_close(&out, &[730.5, 109.0]);
    // Flatten alone keeps the NHWC memory order.
    let g = single(2, 2, 2, Op::Flatten);
    let flat = reference::forward(&g, &input, 1);
    assert_close(&flat, &input.map(f64::from));
}

#[test]
fn reference_elementwise_ops_by_hand() {
    let bn = BatchNorm {
        gamma: vec![2.0, 1.0],
        beta: vec![1.0, -1.0],
        mean: vec![1.0, 0.0],
        var: vec![4.0 - 1e-5, 0.25 - 1e-5],
        eps: 1e-5,
    };
    let g = single(1, 2, 2, Op::BatchNorm(bn));
    // Channel 0: (x - 1) / 2 * 2 + 1 = x; channel 1: x / 0.5 - 1 = 2x - 1.
    let out = reference::forward(&g, &[5.0, 3.0, -1.0, 0.5], 1);
    for (g, w) in out.iter().zip([5.0, 5.0, -1.0, 0.0]) {
        assert!((g - w).abs() < 1e-6, "{out:?}");
    }

    let x = [-3.0, 0.5, 7.0, 6.0];
    for (act, want) in [
        (Activation::Relu, [0.0, 0.5, 7.0, 6.0]),
        (Activation::Relu6, [0.0, 0.5, 6.0, 6.0]),
        (Activation::None, [-3.0, 0.5, 7.0, 6.0]),
    ] {
        let g = single(1, 1, 4, Op::Activation(act));
        assert_close(&reference::forward(&g, &x, 1), &want);
    }

    // Softmax over channels at each pixel.
    let g = single(
        1,
        2,
        3,
        Op::Softmax {
            axis: 3,
            log: false,
        },
    );
    let x = [0.0, 2f32.ln(), 3f32.ln(), 5.0, 5.0, 5.0];
    let out = reference::forward(&g, &x, 1);
    let third = 1.0 / 3.0;
    for (g, w) in out
        .iter()
        .zip([1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0, third, third, third])
    {
        assert!((g - w).abs() < 1e-7, "{out:?}");
    }

    // Add and Concat (channels), batch 2 of 1x2 pixels.
    let mut g = Graph::new("t", 1, 2, 2);
    let a = g.push("relu", Op::Activation(Activation::Relu), &[0]);
    let s = g.push("add", Op::Add, &[0, a]);
    g.push("concat", Op::Concat { axis: 3 }, &[s, 0]);
    let x = [1.0, -2.0, 3.0, -4.0, 5.0, 6.0, -7.0, 8.0];
    let out = reference::forward(&g, &x, 2);
    let want = [
        2.0, -2.0, 1.0, -2.0, 6.0, -4.0, 3.0, -4.0, //
        10.0, 12.0, 5.0, 6.0, -7.0, 16.0, -7.0, 8.0,
    ];
    assert_close(&out, &want);
}

/// Activations stay moderate through ResNet-50's depth with the seeded
/// weights (the small gamma on each block's last BatchNorm keeps the residual
/// sums in check). Slow with the naive reference: `cargo test -- --ignored`.
#[test]
#[ignore]
fn resnet50_reference_activations_stay_moderate() {
    let g = models::build("resnet50", 1).unwrap();
    let (h, w, c) = g.image_input().expect("an image model");
    let input = Rng::new(3).signed_vec(h * w * c);
    let all = reference::forward_all(&g, &input, 1);
    for (v, n) in all.iter().zip(&g.nodes) {
        let rms = (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
        let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        if n.name.ends_with("relu3") || n.name == "maxpool" || n.name == "fc" {
            println!("{:>16}: rms {rms:8.3}, max {max:8.3}", n.name);
        }
        assert!(v.iter().all(|x| x.is_finite()), "{}", n.name);
        assert!(max < 1e3, "{}: |x| up to {max}", n.name);
    }
    let logits = all.last().unwrap();
    let spread = logits.iter().cloned().fold(f64::MIN, f64::max)
        - logits.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 1.0, "logits span {spread}");
}
