//! The model graph: nodes in topological order, each producing one value. It is
//! what built-in models and the ONNX importer produce and what a session compiles.
//! Activations are NHWC inside the engine; weights keep ONNX's layouts (conv
//! OIHW, fully connected [out][in]) and are repacked when a session is built.

mod shape;

pub use shape::Shape;

use super::gemm::Activation;
use serde::Serialize;

/// Index of a node, and of the value it produces.
pub type ValueId = usize;

/// Geometry of a 2-D convolution or pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub pad_bottom: usize,
    pub pad_right: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
}

impl Window {
    /// Square window with symmetric padding and no dilation.
    pub fn square(k: usize, stride: usize, pad: usize) -> Window {
        Window {
            kh: k,
            kw: k,
            stride_h: stride,
            stride_w: stride,
            pad_top: pad,
            pad_left: pad,
            pad_bottom: pad,
            pad_right: pad,
            dilation_h: 1,
            dilation_w: 1,
        }
    }

    /// Output extent for an input of `h x w`; `None` if the window does not fit.
    pub fn output(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let eh = self.dilation_h * (self.kh - 1) + 1;
        let ew = self.dilation_w * (self.kw - 1) + 1;
        let ph = h + self.pad_top + self.pad_bottom;
        let pw = w + self.pad_left + self.pad_right;
        if self.stride_h == 0 || self.stride_w == 0 || ph < eh || pw < ew {
            return None;
        }
        Some(((ph - eh) / self.stride_h + 1, (pw - ew) / self.stride_w + 1))
    }
}

/// A convolution layer with its weights (OIHW: `[cout][cin/groups][kh][kw]`).
#[derive(Clone, Debug)]
pub struct Conv {
    pub cin: usize,
    pub cout: usize,
    pub groups: usize,
    pub window: Window,
    pub weights: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl Conv {
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.cin && self.groups == self.cout
    }
}

/// Inference BatchNorm: `y = (x - mean) / sqrt(var + eps) * gamma + beta` per channel.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub eps: f32,
}

impl BatchNorm {
    /// The BatchNorm that computes `x * scale + shift` exactly (mean 0,
    /// variance 1, epsilon 0): how imported per-channel Mul and Add by a
    /// constant join the graph, so the fusion pass folds them like any BN.
    pub fn affine(scale: Vec<f32>, shift: Vec<f32>) -> BatchNorm {
        let c = scale.len();
        BatchNorm {
            gamma: scale,
            beta: shift,
            mean: vec![0.0; c],
            var: vec![1.0; c],
            eps: 0.0,
        }
    }

    /// The equivalent per-channel `(scale, shift)`: `y = x * scale + shift`.
    pub fn scale_shift(&self) -> (Vec<f32>, Vec<f32>) {
        let scale: Vec<f32> = self
            .gamma
            .iter()
            .zip(&self.var)
            .map(|(g, v)| g / (v + self.eps).sqrt())
            .collect();
        let shift = self
            .beta
            .iter()
            .zip(&self.mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        (scale, shift)
    }
}

/// Max or average pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PoolKind {
    Max,
    /// Average; `count_include_pad` divides by the full window even at borders.
    Avg {
        count_include_pad: bool,
    },
}

/// Fully connected: `y = x W^T + b` with `W` as `[out][in]` (ONNX Gemm with transB).
#[derive(Clone, Debug)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub weights: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

/// What a node computes.
#[derive(Clone, Debug)]
pub enum Op {
    /// The graph input (NHWC with the batch left open).
    Input,
    Conv(Box<Conv>),
    BatchNorm(BatchNorm),
    Activation(Activation),
    Pool {
        kind: PoolKind,
        window: Window,
    },
    GlobalAvgPool,
    Dense(Box<Dense>),
    /// Element-wise sum of two values of one shape.
    Add,
    /// Concatenation along channels.
    Concat,
    /// `[n, h, w, c]` to `[n, 1, 1, h*w*c]`. Dense layers after it take their
    /// weights in NCHW flattening order (as ONNX and PyTorch store them).
    Flatten,
    /// Softmax over channels.
    Softmax,
}

impl Op {
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "Input",
            Op::Conv(_) => "Conv",
            Op::BatchNorm(_) => "BatchNorm",
            Op::Activation(a) => a.name(),
            Op::Pool {
                kind: PoolKind::Max,
                ..
            } => "MaxPool",
            Op::Pool { .. } => "AveragePool",
            Op::GlobalAvgPool => "GlobalAveragePool",
            Op::Dense(_) => "Dense",
            Op::Add => "Add",
            Op::Concat => "Concat",
            Op::Flatten => "Flatten",
            Op::Softmax => "Softmax",
        }
    }
}

/// One node: an op applied to earlier values.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
}

/// A model: node 0 is the input; the last node is the output.
#[derive(Clone, Debug)]
pub struct Graph {
    pub name: String,
    /// Input `(h, w, c)`.
    pub input: (usize, usize, usize),
    pub nodes: Vec<Node>,
}

impl Graph {
    /// A graph with only its input node.
    pub fn new(name: impl Into<String>, h: usize, w: usize, c: usize) -> Graph {
        Graph {
            name: name.into(),
            input: (h, w, c),
            nodes: vec![Node {
                name: "input".into(),
                op: Op::Input,
                inputs: vec![],
            }],
        }
    }

    /// Appends a node and returns the value it produces.
    pub fn push(&mut self, name: impl Into<String>, op: Op, inputs: &[ValueId]) -> ValueId {
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
        });
        self.nodes.len() - 1
    }

    pub fn output(&self) -> ValueId {
        self.nodes.len() - 1
    }

    /// Number of nodes that read each value.
    pub fn consumers(&self) -> Vec<usize> {
        let mut uses = vec![0; self.nodes.len()];
        for n in &self.nodes {
            for &i in &n.inputs {
                uses[i] += 1;
            }
        }
        uses
    }

    /// Trainable parameters (weights and biases; BatchNorm's four vectors).
    pub fn parameters(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                Op::Conv(c) => c.weights.len() + c.bias.as_ref().map_or(0, Vec::len),
                Op::Dense(d) => d.weights.len() + d.bias.as_ref().map_or(0, Vec::len),
                Op::BatchNorm(b) => 4 * b.gamma.len(),
                _ => 0,
            })
            .sum()
    }

    /// Layers with weights (convolutions and dense layers).
    pub fn weighted_layers(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Conv(_) | Op::Dense(_)))
            .count()
    }
}
