//! Convolution-layer benchmarks: ResNet-50 v1.5's distinct convolution shapes at
//! batch 1, each with every algorithm that applies, fused with BatchNorm and
//! ReLU as in the model; and MobileNetV2 / EfficientNet-B0 depthwise layers
//! with BatchNorm and ReLU6 or swish. Throughput is `Elements(flops)`, so "elem/s" reads as
//! FLOP/s; one thread, the detected kernel unless `JOULEBENCH_KERNEL` says.
//!
//! ```text
//! cargo bench --bench conv                     # every layer and algorithm
//! cargo bench --bench conv -- layer1_3x3       # one shape
//! ```

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use joulebench::engine::conv::ConvAlgo;
use joulebench::engine::gemm::Activation;
use joulebench::engine::graph::{BatchNorm, Conv, Graph, Op, Window};
use joulebench::engine::session::{Session, SessionOptions};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

/// (name, input h=w, cin, cout, kernel, stride, pad)
const LAYERS: [(&str, usize, usize, usize, usize, usize, usize); 8] = [
    ("conv1_7x7s2", 224, 3, 64, 7, 2, 3),
    ("layer1_1x1_expand", 56, 64, 256, 1, 1, 0),
    ("layer1_3x3", 56, 64, 64, 3, 1, 1),
    ("layer2_3x3s2", 56, 128, 128, 3, 2, 1),
    ("layer2_1x1_reduce", 28, 512, 128, 1, 1, 0),
    ("layer3_3x3", 14, 256, 256, 3, 1, 1),
    ("layer4_3x3", 7, 512, 512, 3, 1, 1),
    ("layer4_downsample_1x1s2", 14, 1024, 2048, 1, 2, 0),
];

/// MobileNetV2's and EfficientNet-B0's depthwise shapes (their time is in these
/// layers): (name, input h=w, channels, kernel, stride, activation).
const DEPTHWISE: [(&str, usize, usize, usize, usize, Activation); 4] = [
    ("mbv2_dw_112x96s2", 112, 96, 3, 2, Activation::Relu6),
    ("mbv2_dw_56x144", 56, 144, 3, 1, Activation::Relu6),
    ("mbv2_dw_14x576", 14, 576, 3, 1, Activation::Relu6),
    ("effb0_dw5x5_28x240", 28, 240, 5, 1, Activation::Swish),
];

#[allow(clippy::too_many_arguments)]
fn layer(
    hw: usize,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
    act: Activation,
) -> Graph {
    let mut g = Graph::new("bench", hw, hw, cin);
    let fill = |n: usize, s: f32| {
        (0..n)
            .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * s)
            .collect::<Vec<_>>()
    };
    let conv = Conv {
        cin,
        cout,
        groups,
        window: Window::square(k, stride, pad),
        weights: fill(cout * cin / groups * k * k, 0.1),
        bias: None,
    };
    let c = g.push("conv", Op::Conv(Box::new(conv)), &[0]);
    let bn = BatchNorm {
        gamma: vec![1.0; cout],
        beta: fill(cout, 0.2),
        mean: fill(cout, 0.2),
        var: vec![1.0; cout],
        eps: 1e-5,
    };
    let b = g.push("bn", Op::BatchNorm(bn), &[c]);
    g.push("act", Op::Activation(act), &[b]);
    g
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("resnet50_conv");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sampling_mode(SamplingMode::Flat);
    for (name, hw, cin, cout, k, stride, pad) in LAYERS {
        let g = layer(hw, cin, cout, k, stride, pad, 1, Activation::Relu);
        let Op::Conv(conv) = &g.nodes[1].op else {
            unreachable!()
        };
        let flops = g.flops_per_image().expect("shapes");
        group.throughput(Throughput::Elements(flops as u64));
        for algo in [
            ConvAlgo::ConvGemm,
            ConvAlgo::Im2col,
            ConvAlgo::Pointwise,
            ConvAlgo::Winograd,
            ConvAlgo::Winograd4,
        ] {
            if !algo.supports(conv) {
                continue;
            }
            let opts = SessionOptions {
                conv_overrides: HashMap::from([("conv".to_string(), algo)]),
                ..SessionOptions::default()
            };
            let mut s = Session::new(&g, &opts).expect("session");
            let input = vec![0.5f32; s.input_len()];
            group.bench_function(BenchmarkId::new(name, algo), |bch| {
                bch.iter(|| black_box(s.run(black_box(&input)).expect("run")[0]))
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("depthwise_conv");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sampling_mode(SamplingMode::Flat);
    for (name, hw, ch, k, stride, act) in DEPTHWISE {
        let g = layer(hw, ch, ch, k, stride, k / 2, ch, act);
        let flops = g.flops_per_image().expect("shapes");
        group.throughput(Throughput::Elements(flops as u64));
        let mut s = Session::new(&g, &SessionOptions::default()).expect("session");
        let input = vec![0.5f32; s.input_len()];
        group.bench_function(name, |bch| {
            bch.iter(|| black_box(s.run(black_box(&input)).expect("run")[0]))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
