//! Convolution algorithms, each in its own file, and the per-layer chooser.
//! Activations are NHWC; a convolution is the GEMM `out[pixels, cout] =
//! patches[pixels, kh*kw*cin] * weights[kh*kw*cin, cout]` per group, with the
//! layer that follows fused into its epilogue.

pub mod convgemm;
pub mod depthwise;
pub mod im2col;
pub mod pointwise;
pub mod winograd;

use super::graph::{Conv, Window};
use crate::engine::EngineError;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How a convolution layer is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum ConvAlgo {
    /// Implicit im2col while packing the GEMM's A operand (the paper's convGemm).
    ConvGemm,
    /// Explicit im2col buffer, then GEMM.
    Im2col,
    /// 1x1 convolution straight to GEMM on the input.
    #[value(alias = "1x1")]
    Pointwise,
    /// Direct depthwise loops.
    Depthwise,
    /// Winograd F(2x2, 3x3) for 3x3 stride-1 layers.
    Winograd,
    /// Winograd F(4x4, 3x3) for 3x3 stride-1 layers.
    Winograd4,
}

/// A model-wide algorithm request; `Auto` picks per layer by shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum ConvChoice {
    #[default]
    Auto,
    ConvGemm,
    Im2col,
    /// Winograd F(2x2, 3x3) where it applies (3x3, stride 1), else as `Auto`.
    Winograd,
    /// Winograd F(4x4, 3x3) where it applies, else as `Auto`.
    Winograd4,
}

impl ConvAlgo {
    /// The Winograd tile size, for the Winograd algorithms.
    pub fn winograd(self) -> Option<winograd::Variant> {
        match self {
            ConvAlgo::Winograd => Some(winograd::Variant::F23),
            ConvAlgo::Winograd4 => Some(winograd::Variant::F43),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ConvAlgo::ConvGemm => "convgemm",
            ConvAlgo::Im2col => "im2col",
            ConvAlgo::Pointwise => "pointwise",
            ConvAlgo::Depthwise => "depthwise",
            ConvAlgo::Winograd => "winograd",
            ConvAlgo::Winograd4 => "winograd4",
        }
    }

    /// Whether this algorithm can compute `conv`.
    pub fn supports(self, conv: &Conv) -> bool {
        match self {
            ConvAlgo::ConvGemm | ConvAlgo::Im2col => true,
            ConvAlgo::Pointwise => is_pointwise(&conv.window),
            ConvAlgo::Depthwise => conv.is_depthwise(),
            ConvAlgo::Winograd | ConvAlgo::Winograd4 => winograd::supports(conv),
        }
    }
}

impl fmt::Display for ConvAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ConvAlgo {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as ValueEnum>::from_str(s.trim(), true).map_err(|_| {
            EngineError::param(
                "conv",
                format!("unknown convolution algorithm `{}`; use convgemm, im2col, pointwise, depthwise, winograd or winograd4", s.trim()),
            )
        })
    }
}

impl ConvChoice {
    /// The accepted spellings, for messages.
    pub const CHOICES: &'static str = "auto, convgemm, im2col, winograd or winograd4";
}

impl FromStr for ConvChoice {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as ValueEnum>::from_str(s.trim(), true).map_err(|_| {
            EngineError::param(
                "conv",
                format!(
                    "unknown convolution choice `{}`; use {}",
                    s.trim(),
                    ConvChoice::CHOICES
                ),
            )
        })
    }
}

impl fmt::Display for ConvChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every variant has a possible value: none is skipped.
        let v = self.to_possible_value().ok_or(fmt::Error)?;
        f.write_str(v.get_name())
    }
}

/// A 1x1 window with no padding: the input pixels are the GEMM rows as they are.
pub fn is_pointwise(w: &Window) -> bool {
    w.kh == 1 && w.kw == 1 && w.pad_top + w.pad_left + w.pad_bottom + w.pad_right == 0
}

/// The default algorithm for a layer: depthwise loops for depthwise layers,
/// pointwise GEMM for 1x1 layers, else the requested GEMM lowering.
pub fn choose(conv: &Conv, choice: ConvChoice) -> ConvAlgo {
    if conv.is_depthwise() {
        ConvAlgo::Depthwise
    } else if choice == ConvChoice::Winograd && winograd::supports(conv) {
        ConvAlgo::Winograd
    } else if choice == ConvChoice::Winograd4 && winograd::supports(conv) {
        ConvAlgo::Winograd4
    } else if is_pointwise(&conv.window) {
        ConvAlgo::Pointwise
    } else if choice == ConvChoice::Im2col {
        ConvAlgo::Im2col
    } else {
        ConvAlgo::ConvGemm
    }
}

/// Geometry of one convolution on a batch: input `n x h x w x c` (a group reads
/// channels `c_off..c_off+cg`), output `n x oh x ow`.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeom {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub cg: usize,
    pub oh: usize,
    pub ow: usize,
    pub win: Window,
}

impl ConvGeom {
    /// GEMM rows: output pixels of the batch.
    pub fn rows(&self) -> usize {
        self.n * self.oh * self.ow
    }
    /// GEMM depth: one patch.
    pub fn depth(&self) -> usize {
        self.win.kh * self.win.kw * self.cg
    }
}

/// The B matrix `[kh*kw*cg, cout_g]` (row-major) of group `g` from OIHW weights,
/// each output channel's weights multiplied by `scale[o]` (a folded BatchNorm).
pub fn gemm_weights(conv: &Conv, g: usize, scale: Option<&[f32]>) -> Vec<f32> {
    let (kh, kw) = (conv.window.kh, conv.window.kw);
    let cg = conv.cin / conv.groups;
    let og = conv.cout / conv.groups;
    let mut b = vec![0.0f32; kh * kw * cg * og];
    for o in 0..og {
        let oc = g * og + o;
        let s = scale.map_or(1.0, |s| s[oc]);
        for ci in 0..cg {
            for ky in 0..kh {
                for kx in 0..kw {
                    let wv = conv.weights[((oc * cg + ci) * kh + ky) * kw + kx];
                    b[((ky * kw + kx) * cg + ci) * og + o] = wv * s;
                }
            }
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_whatever_the_case_and_unknown_names_name_the_choices() {
        for &a in ConvAlgo::value_variants() {
            assert_eq!(a.name().parse::<ConvAlgo>().unwrap(), a);
            assert_eq!(
                format!(" {} ", a.name().to_uppercase())
                    .parse::<ConvAlgo>()
                    .unwrap(),
                a
            );
        }
        assert_eq!("1x1".parse::<ConvAlgo>().unwrap(), ConvAlgo::Pointwise);
        for &c in ConvChoice::value_variants() {
            assert_eq!(c.to_string().parse::<ConvChoice>().unwrap(), c);
        }
        assert_eq!(ConvChoice::Winograd4.to_string(), "winograd4");
        assert_eq!(ConvChoice::ConvGemm.to_string(), "convgemm");
        let e = "fft".parse::<ConvChoice>().unwrap_err().to_string();
        assert!(
            e.contains("`fft`") && e.contains(ConvChoice::CHOICES),
            "{e}"
        );
        assert!("pointwise".parse::<ConvChoice>().is_err());
    }
}
