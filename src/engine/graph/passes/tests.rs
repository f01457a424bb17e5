//! The passes keep a graph's values (session with fusion on against off) and
//! fold what they claim to fold.

use super::optimize;
use crate::engine::gemm::Activation;
use crate::engine::graph::{BatchNorm, BinOp, Conv, Graph, Op, PadMode, ValueId, Window};
use crate::engine::session::{Session, SessionOptions};

fn conv(cin: usize, cout: usize, window: Window) -> Op {
    let n = cout * cin * window.kh * window.kw;
    Op::Conv(Box::new(Conv {
        cin,
        cout,
        groups: 1,
        window,
        weights: (0..n)
            .map(|i| ((i * 7919) % 23) as f32 / 23.0 - 0.5)
            .collect(),
        bias: Some((0..cout).map(|o| o as f32 * 0.1 - 0.2).collect()),
    }))
}

fn uniform(c: usize, s: f32, b: f32) -> Op {
    Op::BatchNorm(BatchNorm::affine(vec![s; c], vec![b; c]))
}

/// Output of `g` on a fixed input, with fusion on or off.
fn run(g: &Graph, fusion: bool) -> Vec<f32> {
    let opts = SessionOptions {
        fusion,
        ..SessionOptions::default()
    };
    let mut s = Session::new(g, &opts).expect("the graph compiles");
    let x: Vec<f32> = (0..s.input_len())
        .map(|i| ((i * 37) % 101) as f32 / 101.0 * 8.0 - 4.0)
        .collect();
    s.run(&x).expect("runs").to_vec()
}

fn assert_same(g: &Graph) {
    let (a, b) = (run(g, true), run(g, false));
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * y.abs().max(1.0),
            "value {i}: {x} vs {y}"
        );
    }
}

fn only_conv_act(g: &Graph) -> Activation {
    let o = optimize(g).expect("optimizes");
    let convs: Vec<_> = o
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Conv(_)))
        .collect();
    assert_eq!(o.nodes.len(), 2, "one conv after the input: {:?}", o.nodes);
    convs[0].act
}

#[test]
fn swish_after_a_conv_is_its_epilogue() {
    let mut g = Graph::new("swish", 6, 6, 3);
    let c = g.push("conv", conv(3, 8, Window::square(3, 1, 1)), &[0]);
    let s = g.push("sig", Op::Activation(Activation::Sigmoid), &[c]);
    g.push("mul", Op::Binary(BinOp::Mul), &[s, c]);
    assert_eq!(only_conv_act(&g), Activation::Swish);
    assert_same(&g);
}

#[test]
fn keras_hard_swish_spelling_is_fused() {
    // x * (relu6(x + 3) * (1/6)): MobileNetV3 as tf2onnx writes it.
    let mut g = Graph::new("hswish", 5, 5, 2);
    let c = g.push("conv", conv(2, 4, Window::square(1, 1, 0)), &[0]);
    let a = g.push("add3", uniform(4, 1.0, 3.0), &[c]);
    let r = g.push("relu6", Op::Activation(Activation::Relu6), &[a]);
    let d = g.push("div6", uniform(4, 1.0 / 6.0, 0.0), &[r]);
    g.push("mul", Op::Binary(BinOp::Mul), &[c, d]);
    assert_eq!(only_conv_act(&g), Activation::HardSwish);
    assert_same(&g);
}

#[test]
fn sigmoid_and_leaky_relu_fold_into_the_conv() {
    for act in [
        Activation::Sigmoid,
        Activation::LeakyRelu { alpha: 0.1 },
        Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
    ] {
        let mut g = Graph::new("act", 4, 4, 3);
        let c = g.push("conv", conv(3, 5, Window::square(3, 2, 1)), &[0]);
        g.push("act", Op::Activation(act), &[c]);
        assert_eq!(only_conv_act(&g), act);
        assert_same(&g);
    }
}

#[test]
fn zero_padding_before_a_conv_becomes_its_window_padding() {
    let mut g = Graph::new("pad", 7, 7, 3);
    let p: ValueId = g.push(
        "pad",
        Op::Pad {
            pads: vec![(0, 0), (0, 1), (0, 1), (0, 0)],
            mode: PadMode::Constant(0.0),
        },
        &[0],
    );
    g.push("conv", conv(3, 4, Window::square(3, 2, 0)), &[p]);
    let o = optimize(&g).expect("optimizes");
    assert_eq!(o.nodes.len(), 2);
    let Op::Conv(cv) = &o.nodes[1].op else {
        panic!("expected a conv, got {:?}", o.nodes[1].op);
    };
    assert_eq!((cv.window.pad_bottom, cv.window.pad_right), (1, 1));
    assert_eq!((cv.window.pad_top, cv.window.pad_left), (0, 0));
    assert_same(&g);
}

#[test]
fn reflect_padding_stays_a_real_op() {
    let mut g = Graph::new("reflect", 5, 5, 2);
    let p = g.push(
        "pad",
        Op::Pad {
            pads: vec![(0, 0), (1, 1), (1, 1), (0, 0)],
            mode: PadMode::Reflect,
        },
        &[0],
    );
    g.push("conv", conv(2, 3, Window::square(3, 1, 0)), &[p]);
    let o = optimize(&g).expect("optimizes");
    assert!(o.nodes.iter().any(|n| matches!(n.op, Op::Pad { .. })));
    assert_same(&g);
}
