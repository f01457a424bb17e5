//! The model graph: nodes in topological order, each producing one value. It is
//! what built-in models and the ONNX importer produce, what the passes
//! (`passes`) rewrite and what a session compiles.
//!
//! Every value is a dense row-major tensor whose dims the graph knows for one
//! batch item: axis 0 is the batch axis, of extent 1 (a session runs `batch`
//! items one after the other along it) unless the graph fixes its batch
//! (`fixed_batch`), in which case axis 0 holds it and sessions run exactly
//! that. Images are NHWC (`[n, h, w, c]`): the image operators (convolution,
//! pooling, LRN, resize) take rank-4 NHWC values, per-channel operators work on
//! the last axis. Weights keep ONNX's layouts (conv OIHW, dense `[out][in]`)
//! and are repacked when a session is built. How ONNX's NCHW tensors map onto
//! these values is the importer's business (`onnx::Layout`).

mod ops;
pub mod passes;
mod shape;

pub use ops::{
    BinOp, Constant, ConvTranspose, Lrn, Nearest, PadMode, ReduceOp, Resize, ResizeCoord,
    ResizeMode, SliceAxis, UnaryOp,
};
pub use shape::{broadcast, infer_node, node_flops, show as show_dims, Shape};

use super::gemm::Activation;
use serde::Serialize;

/// Index of a node, and of the value it produces.
pub type ValueId = usize;

/// The highest rank a value may have.
pub const MAX_RANK: usize = 8;

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
        if self.kh == 0 || self.kw == 0 {
            return None;
        }
        let eh = self.dilation_h * (self.kh - 1) + 1;
        let ew = self.dilation_w * (self.kw - 1) + 1;
        let ph = h + self.pad_top + self.pad_bottom;
        let pw = w + self.pad_left + self.pad_right;
        if self.stride_h == 0 || self.stride_w == 0 || ph < eh || pw < ew {
            return None;
        }
        Some(((ph - eh) / self.stride_h + 1, (pw - ew) / self.stride_w + 1))
    }

    pub fn has_padding(&self) -> bool {
        self.pad_top + self.pad_left + self.pad_bottom + self.pad_right > 0
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

/// Inference BatchNorm over the last axis (channels):
/// `y = (x - mean) / sqrt(var + eps) * gamma + beta`.
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

    /// `(scale, shift)` when every channel has the same one.
    pub fn uniform(&self) -> Option<(f32, f32)> {
        let (s, b) = self.scale_shift();
        let (s0, b0) = (*s.first()?, *b.first()?);
        (s.iter().all(|&v| v == s0) && b.iter().all(|&v| v == b0)).then_some((s0, b0))
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

/// Fully connected over the last axis: `y = x W^T + b` with `W` as `[out][in]`
/// (ONNX Gemm with transB); every other axis is a row.
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
    /// The graph input.
    Input,
    /// A computed-once value (the same for every batch item).
    Constant(Box<Constant>),
    /// NHWC convolution. After fusion a second input is a residual added
    /// before the node's activation.
    Conv(Box<Conv>),
    /// NHWC transposed convolution.
    ConvTranspose(Box<ConvTranspose>),
    BatchNorm(BatchNorm),
    Activation(Activation),
    Unary(UnaryOp),
    /// NHWC pooling.
    Pool {
        kind: PoolKind,
        window: Window,
    },
    /// NHWC `[n, h, w, c]` to `[n, 1, 1, c]`.
    GlobalAvgPool,
    /// Local response normalization across channels (the last axis).
    Lrn(Lrn),
    /// NHWC resize of height and width.
    Resize(Box<Resize>),
    Dense(Box<Dense>),
    /// Sum of two computed values (NumPy broadcasting between equal ranks).
    Add,
    /// Another element-wise operation of two computed values (broadcasting).
    Binary(BinOp),
    /// An element-wise operation with a constant, broadcast (`x op value`,
    /// or `value op x` when `value_first`).
    BinaryConst {
        op: BinOp,
        value: Box<Constant>,
        value_first: bool,
    },
    /// Concatenation along an axis.
    Concat {
        axis: usize,
    },
    /// NHWC `[n, h, w, c]` to `[n, 1, 1, c*h*w]` in NCHW order, as ONNX and
    /// PyTorch flatten (the order dense weights after it are stored in).
    Flatten,
    /// The same values with other dims (no data moves).
    Reshape {
        dims: Vec<usize>,
    },
    /// Output axis `i` is input axis `perm[i]`.
    Transpose {
        perm: Vec<usize>,
    },
    /// A strided window along some axes.
    Slice {
        axes: Vec<SliceAxis>,
    },
    /// Padding `(before, after)` of every axis.
    Pad {
        pads: Vec<(usize, usize)>,
        mode: PadMode,
    },
    /// Reduction over some axes, which keep extent 1.
    Reduce {
        op: ReduceOp,
        axes: Vec<usize>,
    },
    /// Softmax (or log-softmax) along one axis.
    Softmax {
        axis: usize,
        log: bool,
    },
}

impl Op {
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "Input",
            Op::Constant(_) => "Constant",
            Op::Conv(_) => "Conv",
            Op::ConvTranspose(_) => "ConvTranspose",
            Op::BatchNorm(_) => "BatchNorm",
            Op::Activation(a) => a.name(),
            Op::Unary(u) => u.name(),
            Op::Pool {
                kind: PoolKind::Max,
                ..
            } => "MaxPool",
            Op::Pool { .. } => "AveragePool",
            Op::GlobalAvgPool => "GlobalAveragePool",
            Op::Lrn(_) => "LRN",
            Op::Resize(_) => "Resize",
            Op::Dense(_) => "Dense",
            Op::Add => "Add",
            Op::Binary(b) | Op::BinaryConst { op: b, .. } => b.name(),
            Op::Concat { .. } => "Concat",
            Op::Flatten => "Flatten",
            Op::Reshape { .. } => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Slice { .. } => "Slice",
            Op::Pad { .. } => "Pad",
            Op::Reduce { op, .. } => op.name(),
            Op::Softmax { log: false, .. } => "Softmax",
            Op::Softmax { log: true, .. } => "LogSoftmax",
        }
    }

    /// Whether a following activation can be applied by this node as it
    /// writes its output (what the fusion pass may fold into it).
    pub fn takes_activation(&self) -> bool {
        matches!(
            self,
            Op::Conv(_)
                | Op::ConvTranspose(_)
                | Op::Dense(_)
                | Op::BatchNorm(_)
                | Op::Add
                | Op::Binary(_)
                | Op::BinaryConst { .. }
        )
    }
}

/// One node: an op applied to earlier values.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    /// Applied to the op's result as it is written (set by the fusion pass
    /// on ops where [`Op::takes_activation`]).
    pub act: Activation,
}

/// A model: node 0 is the input.
#[derive(Clone, Debug)]
pub struct Graph {
    pub name: String,
    /// Dims of the input for one batch item (see the module doc).
    pub input: Vec<usize>,
    /// The batch the graph fixes in axis 0, if any.
    pub fixed_batch: Option<usize>,
    pub nodes: Vec<Node>,
    /// The values the graph computes for its caller; empty means the last node.
    pub outputs: Vec<ValueId>,
}

impl Graph {
    /// A graph of NHWC images `h x w x c` with only its input node.
    pub fn new(name: impl Into<String>, h: usize, w: usize, c: usize) -> Graph {
        Graph::with_input(name, vec![1, h, w, c], None)
    }

    /// A graph whose input has `dims` per batch item (axis 0 the batch).
    pub fn with_input(
        name: impl Into<String>,
        dims: Vec<usize>,
        fixed_batch: Option<usize>,
    ) -> Graph {
        Graph {
            name: name.into(),
            input: dims,
            fixed_batch,
            nodes: vec![Node {
                name: "input".into(),
                op: Op::Input,
                inputs: vec![],
                act: Activation::None,
            }],
            outputs: Vec::new(),
        }
    }

    /// Appends a node and returns the value it produces.
    pub fn push(&mut self, name: impl Into<String>, op: Op, inputs: &[ValueId]) -> ValueId {
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
            act: Activation::None,
        });
        self.nodes.len() - 1
    }

    /// The first output.
    pub fn output(&self) -> ValueId {
        self.outputs
            .first()
            .copied()
            .unwrap_or(self.nodes.len() - 1)
    }

    /// Every output, in order.
    pub fn output_ids(&self) -> Vec<ValueId> {
        if self.outputs.is_empty() {
            vec![self.nodes.len() - 1]
        } else {
            self.outputs.clone()
        }
    }

    /// `(h, w, c)` of an NHWC image input of one item.
    pub fn image_input(&self) -> Option<(usize, usize, usize)> {
        match self.input[..] {
            [1, h, w, c] if self.fixed_batch.is_none() => Some((h, w, c)),
            _ => None,
        }
    }

    /// Number of nodes that read each value (outputs count as a reader).
    pub fn consumers(&self) -> Vec<usize> {
        let mut uses = vec![0; self.nodes.len()];
        for n in &self.nodes {
            for &i in &n.inputs {
                uses[i] += 1;
            }
        }
        for o in self.output_ids() {
            uses[o] += 1;
        }
        uses
    }

    /// Trainable parameters (weights and biases; BatchNorm's four vectors).
    pub fn parameters(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                Op::Conv(c) => c.weights.len() + c.bias.as_ref().map_or(0, Vec::len),
                Op::ConvTranspose(c) => c.weights.len() + c.bias.as_ref().map_or(0, Vec::len),
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
            .filter(|n| matches!(n.op, Op::Conv(_) | Op::ConvTranspose(_) | Op::Dense(_)))
            .count()
    }
}
