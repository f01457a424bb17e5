//! Parameters of the graph's operators beyond convolution and dense layers,
//! with the scalar definition of each element-wise one (ONNX semantics).

use super::Window;
use serde::Serialize;

/// A constant tensor held by the graph (row-major `dims`).
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

/// Element-wise operations of two operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    Pow,
    /// `x` where `x >= 0`, else `slope * x` (ONNX PRelu; `slope` second).
    PRelu,
}

impl BinOp {
    #[inline(always)]
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            // ONNX Max/Min propagate NaN.
            BinOp::Max => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else if a >= b {
                    a
                } else {
                    b
                }
            }
            BinOp::Min => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else if a <= b {
                    a
                } else {
                    b
                }
            }
            BinOp::Pow => a.powf(b),
            BinOp::PRelu => {
                if a < 0.0 {
                    a * b
                } else {
                    a
                }
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BinOp::Add => "Add",
            BinOp::Sub => "Sub",
            BinOp::Mul => "Mul",
            BinOp::Div => "Div",
            BinOp::Max => "Max",
            BinOp::Min => "Min",
            BinOp::Pow => "Pow",
            BinOp::PRelu => "PRelu",
        }
    }
}

/// Element-wise functions of one operand that are not fused activations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum UnaryOp {
    Abs,
    Neg,
    Exp,
    Log,
    Sqrt,
    Reciprocal,
    Erf,
    Floor,
    Ceil,
    /// Round half to even.
    Round,
    Sign,
    Sin,
    Cos,
    Softplus,
    Softsign,
    /// `x * tanh(softplus(x))`.
    Mish,
    /// GELU with the tanh approximation.
    GeluTanh,
    Selu {
        alpha: f32,
        gamma: f32,
    },
    Celu {
        alpha: f32,
    },
    ThresholdedRelu {
        alpha: f32,
    },
}

impl UnaryOp {
    pub fn apply(self, x: f32) -> f32 {
        match self {
            UnaryOp::Abs => x.abs(),
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Reciprocal => 1.0 / x,
            UnaryOp::Erf => libm::erf(f64::from(x)) as f32,
            UnaryOp::Floor => x.floor(),
            UnaryOp::Ceil => x.ceil(),
            UnaryOp::Round => x.round_ties_even(),
            UnaryOp::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            // ln(1 + e^x) without overflow for large x.
            UnaryOp::Softplus => {
                let v = f64::from(x);
                (v.max(0.0) + (-v.abs()).exp().ln_1p()) as f32
            }
            UnaryOp::Softsign => x / (1.0 + x.abs()),
            UnaryOp::Mish => {
                let v = f64::from(x);
                (v * (v.max(0.0) + (-v.abs()).exp().ln_1p()).tanh()) as f32
            }
            UnaryOp::GeluTanh => {
                let v = f64::from(x);
                let k = (2.0 / std::f64::consts::PI).sqrt();
                (0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())) as f32
            }
            UnaryOp::Selu { alpha, gamma } => {
                if x > 0.0 {
                    gamma * x
                } else {
                    (f64::from(gamma) * f64::from(alpha) * f64::from(x).exp_m1()) as f32
                }
            }
            UnaryOp::Celu { alpha } => {
                let a = f64::from(alpha);
                (f64::from(x).max(0.0) + (a * (f64::from(x) / a).exp_m1()).min(0.0)) as f32
            }
            UnaryOp::ThresholdedRelu { alpha } => {
                if x > alpha {
                    x
                } else {
                    0.0
                }
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Abs => "Abs",
            UnaryOp::Neg => "Neg",
            UnaryOp::Exp => "Exp",
            UnaryOp::Log => "Log",
            UnaryOp::Sqrt => "Sqrt",
            UnaryOp::Reciprocal => "Reciprocal",
            UnaryOp::Erf => "Erf",
            UnaryOp::Floor => "Floor",
            UnaryOp::Ceil => "Ceil",
            UnaryOp::Round => "Round",
            UnaryOp::Sign => "Sign",
            UnaryOp::Sin => "Sin",
            UnaryOp::Cos => "Cos",
            UnaryOp::Softplus => "Softplus",
            UnaryOp::Softsign => "Softsign",
            UnaryOp::Mish => "Mish",
            UnaryOp::GeluTanh => "Gelu",
            UnaryOp::Selu { .. } => "Selu",
            UnaryOp::Celu { .. } => "Celu",
            UnaryOp::ThresholdedRelu { .. } => "ThresholdedRelu",
        }
    }
}

/// Reductions (ONNX's Reduce* operators).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSum,
    LogSumExp,
    SumSquare,
}

impl ReduceOp {
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "ReduceSum",
            ReduceOp::Mean => "ReduceMean",
            ReduceOp::Max => "ReduceMax",
            ReduceOp::Min => "ReduceMin",
            ReduceOp::Prod => "ReduceProd",
            ReduceOp::L1 => "ReduceL1",
            ReduceOp::L2 => "ReduceL2",
            ReduceOp::LogSum => "ReduceLogSum",
            ReduceOp::LogSumExp => "ReduceLogSumExp",
            ReduceOp::SumSquare => "ReduceSumSquare",
        }
    }

    /// The accumulator's start.
    pub fn init(self) -> f32 {
        match self {
            ReduceOp::Max => f32::NEG_INFINITY,
            ReduceOp::Min => f32::INFINITY,
            ReduceOp::Prod => 1.0,
            _ => 0.0,
        }
    }

    /// Folds one value into the accumulator.
    #[inline(always)]
    pub fn step(self, acc: f32, x: f32) -> f32 {
        match self {
            ReduceOp::Sum | ReduceOp::Mean | ReduceOp::LogSum => acc + x,
            ReduceOp::Max => {
                if x > acc || x.is_nan() {
                    x
                } else {
                    acc
                }
            }
            ReduceOp::Min => {
                if x < acc || x.is_nan() {
                    x
                } else {
                    acc
                }
            }
            ReduceOp::Prod => acc * x,
            ReduceOp::L1 => acc + x.abs(),
            ReduceOp::L2 | ReduceOp::SumSquare => acc + x * x,
            ReduceOp::LogSumExp => acc + x.exp(),
        }
    }

    /// The result from the accumulator over `n` values.
    pub fn finish(self, acc: f32, n: usize) -> f32 {
        match self {
            ReduceOp::Mean => acc / n as f32,
            ReduceOp::L2 => acc.sqrt(),
            ReduceOp::LogSum | ReduceOp::LogSumExp => acc.ln(),
            _ => acc,
        }
    }
}

/// One sliced axis: `len` elements from `start`, `step` apart (negative
/// steps walk backwards).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SliceAxis {
    pub axis: usize,
    pub start: usize,
    pub step: isize,
    pub len: usize,
}

/// What fills the padding.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum PadMode {
    Constant(f32),
    /// Mirrored without repeating the edge (`dcb|abcd|cba`).
    Reflect,
    /// The edge value repeated.
    Edge,
    /// The other end of the axis (`bcd|abcd|abc`).
    Wrap,
}

/// Local response normalization: `x / (bias + alpha/size * sum(x^2))^beta`
/// over `size` neighbouring channels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Lrn {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

/// How output coordinates map to input coordinates (ONNX
/// `coordinate_transformation_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ResizeCoord {
    HalfPixel,
    /// Half pixel, except that an output extent of 1 maps to 0.
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    /// Half pixel centred on the input (opset 19).
    HalfPixelSymmetric,
    TfHalfPixelForNn,
}

/// Interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ResizeMode {
    /// Nearest neighbour with ONNX's `nearest_mode` rounding: `round_prefer_floor`,
    /// `round_prefer_ceil`, `floor`, `ceil`.
    Nearest(Nearest),
    /// Bilinear.
    Linear,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// NHWC resize of height and width to `out_h x out_w`; `scale_h`, `scale_w`
/// are the output/input ratios the coordinate transform uses.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Resize {
    pub mode: ResizeMode,
    pub coord: ResizeCoord,
    pub out_h: usize,
    pub out_w: usize,
    pub scale_h: f32,
    pub scale_w: f32,
}

impl Resize {
    /// The input coordinate of output coordinate `o` along an axis of input
    /// extent `len_in`, output extent `len_out` and scale `scale`.
    pub fn source(&self, o: usize, len_in: usize, len_out: usize, scale: f32) -> f32 {
        let (o, li, lo, s) = (o as f32, len_in as f32, len_out as f32, scale);
        match self.coord {
            ResizeCoord::HalfPixel => (o + 0.5) / s - 0.5,
            // ONNX takes the resized length as `scale * len_in`, unrounded
            // (it differs from the output extent when a scale is given).
            ResizeCoord::PytorchHalfPixel => {
                if li * s > 1.0 {
                    (o + 0.5) / s - 0.5
                } else {
                    0.0
                }
            }
            ResizeCoord::AlignCorners => {
                if li * s > 1.0 {
                    o * (li - 1.0) / (li * s - 1.0)
                } else {
                    0.0
                }
            }
            ResizeCoord::Asymmetric => o / s,
            ResizeCoord::HalfPixelSymmetric => {
                let adj = lo / (s * li);
                let centre = li / 2.0;
                let offset = centre * (1.0 - adj);
                offset + (o + 0.5) / s - 0.5
            }
            ResizeCoord::TfHalfPixelForNn => (o + 0.5) / s,
        }
    }
}

/// A transposed convolution (NHWC) with weights `[cin][cout/groups][kh][kw]`
/// (ONNX's layout). The window's pads are cropped from the full output;
/// `output_padding` adds rows and columns at the bottom and right.
#[derive(Clone, Debug)]
pub struct ConvTranspose {
    pub cin: usize,
    pub cout: usize,
    pub groups: usize,
    pub window: Window,
    pub output_padding: (usize, usize),
    pub weights: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl ConvTranspose {
    /// Output extent for an `h x w` input, `None` if the pads eat it all.
    pub fn output(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let win = &self.window;
        let full = |i: usize, s: usize, k: usize, d: usize, op: usize| {
            Some(s * i.checked_sub(1)? + op + d * k.checked_sub(1)? + 1)
        };
        let oh = full(
            h,
            win.stride_h,
            win.kh,
            win.dilation_h,
            self.output_padding.0,
        )?
        .checked_sub(win.pad_top + win.pad_bottom)?;
        let ow = full(
            w,
            win.stride_w,
            win.kw,
            win.dilation_w,
            self.output_padding.1,
        )?
        .checked_sub(win.pad_left + win.pad_right)?;
        (oh > 0 && ow > 0).then_some((oh, ow))
    }
}
