//! GEMM micro-benchmarks: square problems, and the GEMMs a ResNet-50 v1.5
//! inference runs in NHWC orientation (M = output pixels, N = output channels,
//! K = kh*kw*Cin, weights packed once as B, the folded BatchNorm + ReLU fused
//! into the store).
//!
//! Throughput is given as `Elements(2*m*n*k)`, so criterion's "elem/s" figure is
//! FLOP/s. One thread; the kernel is the detected one unless `JOULEBENCH_KERNEL`
//! (scalar, avx2, neon) forces another.
//!
//! ```text
//! cargo bench --bench gemm                 # everything, a few minutes
//! cargo bench --bench gemm -- resnet50     # only the ResNet-50 shapes
//! ```

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use joulebench::engine::gemm::{
    Activation, Axis, BOperand, CacheConfig, Epilogue, Gemm, Kernel, MatMut, MatRef, ParallelLoop,
};
use joulebench::engine::rng::SplitMix64;
use std::hint::black_box;
use std::time::Duration;

/// Deterministic values in [-1, 1): the speed does not depend on them, but
/// constants could let a broken kernel look fast.
fn filled(len: usize, seed: u64) -> Vec<f32> {
    SplitMix64::new(seed).signed_vec(len)
}

fn kernel() -> Kernel {
    Kernel::from_env().unwrap_or_else(|e| panic!("JOULEBENCH_KERNEL: {e}"))
}

fn new_gemm(kernel: Kernel) -> Gemm {
    Gemm::new(
        kernel,
        CacheConfig::auto(kernel.mr, kernel.nr),
        1,
        ParallelLoop::Auto,
    )
    .expect("GEMM with automatic blocking")
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    g
}

/// `C = A*B` with square row-major operands, B packed on every call (as
/// `joulebench gemm` times it).
fn square(c: &mut Criterion) {
    let kernel = kernel();
    let mut g = configure(c, "gemm_square");
    for size in [256usize, 512, 1024] {
        let (m, n, k) = (size, size, size);
        let a = filled(m * k, 1);
        let b = filled(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        let mut gemm = new_gemm(kernel);
        let epi = Epilogue::none();
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        g.bench_function(BenchmarkId::new(kernel.name(), size), |bch| {
            let am = MatRef::row_major(&a, m, k).unwrap();
            let bm = MatRef::row_major(&b, k, n).unwrap();
            bch.iter(|| {
                let mut cm = MatMut::row_major(&mut out, m, n).unwrap();
                gemm.run(1.0, &am, BOperand::Matrix(bm), 0.0, &mut cm, &epi)
                    .unwrap();
                black_box(&mut cm);
            })
        });
    }
    g.finish();
}

/// One ResNet-50 v1.5 GEMM (batch 1, 224x224 input).
struct Layer {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    /// Folded BatchNorm (scale, bias) and ReLU; the FC has only a bias.
    bn_relu: bool,
}

const RESNET50: [Layer; 5] = [
    // 7x7/2 stem conv, 3 -> 64 channels, 112x112 output.
    Layer {
        name: "conv1_7x7",
        m: 112 * 112,
        n: 64,
        k: 7 * 7 * 3,
        bn_relu: true,
    },
    // layer1 3x3 conv, 64 -> 64 channels, 56x56.
    Layer {
        name: "layer1_3x3",
        m: 56 * 56,
        n: 64,
        k: 3 * 3 * 64,
        bn_relu: true,
    },
    // layer1 1x1 expand, 64 -> 256 channels, 56x56.
    Layer {
        name: "layer1_1x1_expand",
        m: 56 * 56,
        n: 256,
        k: 64,
        bn_relu: true,
    },
    // layer4 3x3 conv, 512 -> 512 channels, 7x7.
    Layer {
        name: "layer4_3x3",
        m: 7 * 7,
        n: 512,
        k: 3 * 3 * 512,
        bn_relu: true,
    },
    // Fully connected 2048 -> 1000 on one image.
    Layer {
        name: "fc",
        m: 1,
        n: 1000,
        k: 2048,
        bn_relu: false,
    },
];

/// The ResNet-50 shapes with A as the (im2col'd) activations and B as weights
/// packed once, as a model runs them.
fn resnet50(c: &mut Criterion) {
    let kernel = kernel();
    let mut g = configure(c, "gemm_resnet50");
    for layer in &RESNET50 {
        let (m, n, k) = (layer.m, layer.n, layer.k);
        let a = filled(m * k, 3);
        let w = filled(k * n, 4);
        let scale: Vec<f32> = filled(n, 5).iter().map(|v| 1.0 + 0.5 * v).collect();
        let bias = filled(n, 6);
        let mut out = vec![0.0f32; m * n];
        let mut gemm = new_gemm(kernel);
        let packed = gemm
            .pack_b(MatRef::row_major(&w, k, n).unwrap())
            .expect("packing the weights");
        let epi = Epilogue {
            axis: Axis::Col,
            scale: layer.bn_relu.then_some(&scale[..]),
            bias: Some(&bias[..]),
            residual: None,
            activation: if layer.bn_relu {
                Activation::Relu
            } else {
                Activation::None
            },
        };
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let id = format!("{}/{}_m{m}_n{n}_k{k}", kernel.name(), layer.name);
        g.bench_function(id, |bch| {
            let am = MatRef::row_major(&a, m, k).unwrap();
            bch.iter(|| {
                let mut cm = MatMut::row_major(&mut out, m, n).unwrap();
                gemm.run(1.0, &am, BOperand::Packed(&packed), 0.0, &mut cm, &epi)
                    .unwrap();
                black_box(&mut cm);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, square, resnet50);
criterion_main!(benches);
