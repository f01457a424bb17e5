//! The built-in model zoo: well-known CNNs with deterministic seeded weights,
//! for benchmarking without model files.
//!
//! Architectures follow torchvision (ResNet v1.5 with the stride on the 3x3
//! convolution of the bottleneck, AlexNet) or the original papers (MobileNet
//! v1), with torchvision-style node names (`conv1`, `layer1.0.bn1`, `fc`).
//! Every convolution of ResNet, VGG-16 and MobileNet v1 is followed by a
//! BatchNorm and has no bias. Weights are He-normal, BatchNorm statistics are
//! random but moderate, so activations stay finite and non-trivial through the
//! whole depth; the same seed always gives bit-identical weights.
//!
//! Models end with their classifier's logits (no softmax), as torchvision's
//! do, except `tiny`, a small test network that exercises every op kind.

mod alexnet;
mod mobilenet;
mod resnet;
mod tiny;
mod vgg;
pub mod weights;

use super::gemm::Activation;
use super::graph::{BatchNorm, Conv, Dense, Graph, Op, PoolKind, Shape, ValueId, Window};
use super::EngineError;
use serde::Serialize;

/// BatchNorm epsilon of every built-in model (PyTorch's default).
pub const BN_EPS: f32 = 1e-5;

const NAMES: &[&str] = &[
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg16",
    "alexnet",
    "mobilenet_v1",
    "tiny",
];

/// Names of the built-in models.
pub fn names() -> &'static [&'static str] {
    NAMES
}

/// Builds model `name` with weights drawn from `seed`.
pub fn build(name: &str, seed: u64) -> Result<Graph, EngineError> {
    build_with(name, Init::Seeded(seed))
}

/// What `joulebench models` shows about a model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelInfo {
    pub name: &'static str,
    /// Trainable parameters as usually published: convolution and dense
    /// weights and biases, and BatchNorm's gamma and beta (not its running
    /// mean and variance, which [`Graph::parameters`] also counts).
    pub parameters: usize,
    /// Floating-point operations per image (a multiply-add counts two) over
    /// convolutions and dense layers.
    pub gflops_per_image: f64,
    /// Convolutions and dense layers.
    pub weighted_layers: usize,
    /// Input `(h, w, c)`.
    pub input: (usize, usize, usize),
}

/// Size and cost of model `name`, without drawing its weights.
pub fn info(name: &str) -> Result<ModelInfo, EngineError> {
    let canonical = canonical(name)?;
    let g = build_with(canonical, Init::Structure)?;
    Ok(ModelInfo {
        name: canonical,
        parameters: trainable_parameters(&g),
        gflops_per_image: g.flops_per_image()? / 1e9,
        weighted_layers: g.weighted_layers(),
        input: g.image_input().unwrap_or((0, 0, 0)),
    })
}

/// Parameters counted as published (BatchNorm contributes gamma and beta only).
pub fn trainable_parameters(g: &Graph) -> usize {
    let bn_stats: usize = g
        .nodes
        .iter()
        .map(|n| match &n.op {
            Op::BatchNorm(b) => b.mean.len() + b.var.len(),
            _ => 0,
        })
        .sum();
    g.parameters() - bn_stats
}

fn canonical(name: &str) -> Result<&'static str, EngineError> {
    NAMES.iter().copied().find(|&n| n == name).ok_or_else(|| {
        EngineError::param(
            "model",
            format!(
                "unknown model `{name}`; built-in models are: {}",
                NAMES.join(", ")
            ),
        )
    })
}

fn build_with(name: &str, init: Init) -> Result<Graph, EngineError> {
    let name = canonical(name)?;
    let g = match name {
        "resnet18" => resnet::build(name, 18, init),
        "resnet34" => resnet::build(name, 34, init),
        "resnet50" => resnet::build(name, 50, init),
        "resnet101" => resnet::build(name, 101, init),
        "resnet152" => resnet::build(name, 152, init),
        "vgg16" => vgg::build(name, init),
        "alexnet" => alexnet::build(name, init),
        "mobilenet_v1" => mobilenet::build(name, init),
        "tiny" => tiny::build(name, init),
        _ => unreachable!("every name in NAMES has a builder"),
    };
    // The builders track shapes themselves; this re-checks the whole graph.
    g.shapes()?;
    Ok(g)
}

/// How a builder fills its tensors.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Init {
    /// Seeded random weights.
    Seeded(u64),
    /// Zeros, without touching memory: for counting sizes only, not for running.
    Structure,
}

/// Gamma range of an ordinary BatchNorm.
pub(crate) const GAMMA: (f32, f32) = (0.5, 1.5);
/// Gamma range of the last BatchNorm of a residual branch, so that the sum
/// over many blocks stays moderate.
pub(crate) const GAMMA_RESIDUAL: (f32, f32) = (0.1, 0.3);
/// Range of dense and convolution biases.
const BIAS: (f32, f32) = (-0.05, 0.05);

/// Appends layers to a graph, drawing their weights and tracking shapes.
pub(crate) struct Builder {
    g: Graph,
    shapes: Vec<Shape>,
    init: Init,
}

impl Builder {
    pub fn new(name: &str, input: (usize, usize, usize), init: Init) -> Builder {
        let (h, w, c) = input;
        Builder {
            g: Graph::new(name, h, w, c),
            shapes: vec![Shape { h, w, c }],
            init,
        }
    }

    /// The input value.
    pub fn input(&self) -> ValueId {
        0
    }

    pub fn shape(&self, v: ValueId) -> Shape {
        self.shapes[v]
    }

    pub fn finish(self) -> Graph {
        self.g
    }

    fn push(&mut self, name: &str, op: Op, inputs: &[ValueId], shape: Shape) -> ValueId {
        self.shapes.push(shape);
        self.g.push(name, op, inputs)
    }

    fn he_normal(&self, node: &str, n: usize, fan_in: usize) -> Vec<f32> {
        match self.init {
            Init::Seeded(seed) => {
                weights::he_normal(n, fan_in, weights::stream_key(seed, node, "weight"))
            }
            Init::Structure => vec![0.0; n],
        }
    }

    fn uniform(&self, node: &str, role: &str, n: usize, (lo, hi): (f32, f32)) -> Vec<f32> {
        match self.init {
            Init::Seeded(seed) => {
                weights::uniform(n, lo, hi, weights::stream_key(seed, node, role))
            }
            Init::Structure => vec![0.0; n],
        }
    }

    /// A convolution of `x` to `cout` channels (OIHW He-normal weights).
    pub fn conv(
        &mut self,
        name: &str,
        x: ValueId,
        cout: usize,
        window: Window,
        groups: usize,
        bias: bool,
    ) -> ValueId {
        let s = self.shape(x);
        let cin = s.c;
        assert!(
            groups > 0 && cin.is_multiple_of(groups) && cout.is_multiple_of(groups),
            "{name}: groups {groups} must divide {cin} and {cout}"
        );
        let fan_in = cin / groups * window.kh * window.kw;
        let (oh, ow) = window
            .output(s.h, s.w)
            .unwrap_or_else(|| panic!("{name}: window does not fit {s}"));
        let conv = Conv {
            cin,
            cout,
            groups,
            window,
            weights: self.he_normal(name, cout * fan_in, fan_in),
            bias: bias.then(|| self.uniform(name, "bias", cout, BIAS)),
        };
        self.push(
            name,
            Op::Conv(Box::new(conv)),
            &[x],
            Shape {
                h: oh,
                w: ow,
                c: cout,
            },
        )
    }

    /// Inference BatchNorm with gamma drawn from `gamma`, the rest moderate.
    pub fn batch_norm(&mut self, name: &str, x: ValueId, gamma: (f32, f32)) -> ValueId {
        let s = self.shape(x);
        let bn = BatchNorm {
            gamma: self.uniform(name, "gamma", s.c, gamma),
            beta: self.uniform(name, "beta", s.c, (-0.2, 0.2)),
            mean: self.uniform(name, "mean", s.c, (-0.2, 0.2)),
            var: self.uniform(name, "var", s.c, (0.5, 1.5)),
            eps: BN_EPS,
        };
        self.push(name, Op::BatchNorm(bn), &[x], s)
    }

    pub fn activation(&mut self, name: &str, x: ValueId, act: Activation) -> ValueId {
        let s = self.shape(x);
        self.push(name, Op::Activation(act), &[x], s)
    }

    pub fn relu(&mut self, name: &str, x: ValueId) -> ValueId {
        self.activation(name, x, Activation::Relu)
    }

    /// Convolution without bias followed by BatchNorm (ordinary gamma range).
    pub fn conv_bn(
        &mut self,
        conv: &str,
        bn: &str,
        x: ValueId,
        cout: usize,
        window: Window,
        groups: usize,
    ) -> ValueId {
        let y = self.conv(conv, x, cout, window, groups, false);
        self.batch_norm(bn, y, GAMMA)
    }

    pub fn pool(&mut self, name: &str, x: ValueId, kind: PoolKind, window: Window) -> ValueId {
        let s = self.shape(x);
        let (oh, ow) = window
            .output(s.h, s.w)
            .unwrap_or_else(|| panic!("{name}: window does not fit {s}"));
        self.push(
            name,
            Op::Pool { kind, window },
            &[x],
            Shape {
                h: oh,
                w: ow,
                c: s.c,
            },
        )
    }

    pub fn max_pool(&mut self, name: &str, x: ValueId, window: Window) -> ValueId {
        self.pool(name, x, PoolKind::Max, window)
    }

    pub fn global_avg_pool(&mut self, name: &str, x: ValueId) -> ValueId {
        let c = self.shape(x).c;
        self.push(name, Op::GlobalAvgPool, &[x], Shape { h: 1, w: 1, c })
    }

    pub fn flatten(&mut self, name: &str, x: ValueId) -> ValueId {
        let c = self.shape(x).len();
        self.push(name, Op::Flatten, &[x], Shape { h: 1, w: 1, c })
    }

    /// Fully connected layer with He-normal weights and a small bias.
    pub fn dense(&mut self, name: &str, x: ValueId, outputs: usize) -> ValueId {
        let inputs = self.shape(x).len();
        let d = Dense {
            inputs,
            outputs,
            weights: self.he_normal(name, inputs * outputs, inputs),
            bias: Some(self.uniform(name, "bias", outputs, BIAS)),
        };
        self.push(
            name,
            Op::Dense(Box::new(d)),
            &[x],
            Shape {
                h: 1,
                w: 1,
                c: outputs,
            },
        )
    }

    pub fn add(&mut self, name: &str, a: ValueId, b: ValueId) -> ValueId {
        let s = self.shape(a);
        assert_eq!(s, self.shape(b), "{name}: adds values of different shapes");
        self.push(name, Op::Add, &[a, b], s)
    }

    pub fn concat(&mut self, name: &str, xs: &[ValueId]) -> ValueId {
        let first = self.shape(xs[0]);
        let mut c = 0;
        for &x in xs {
            let s = self.shape(x);
            assert_eq!(
                (s.h, s.w),
                (first.h, first.w),
                "{name}: concatenates {first} with {s}"
            );
            c += s.c;
        }
        self.push(
            name,
            Op::Concat { axis: 3 },
            xs,
            Shape {
                h: first.h,
                w: first.w,
                c,
            },
        )
    }

    pub fn softmax(&mut self, name: &str, x: ValueId) -> ValueId {
        let s = self.shape(x);
        self.push(
            name,
            Op::Softmax {
                axis: 3,
                log: false,
            },
            &[x],
            s,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let e = build("resnet51", 0).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(
            e,
            EngineError::InvalidParameter { name: "model", .. }
        ));
        for n in names() {
            assert!(msg.contains(n), "{msg}");
        }
        assert!(info("nope").is_err());
    }

    #[test]
    fn structure_only_info_matches_a_seeded_build() {
        let g = build("tiny", 3).unwrap();
        let i = info("tiny").unwrap();
        assert_eq!(i.parameters, trainable_parameters(&g));
        assert_eq!(i.weighted_layers, g.weighted_layers());
        assert_eq!(i.gflops_per_image, g.flops_per_image().unwrap() / 1e9);
        assert_eq!(Some(i.input), g.image_input());
    }
}
