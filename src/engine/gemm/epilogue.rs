//! The layer fused after a GEMM, applied while a tile is still in registers:
//! `C = act(scale * (alpha*A*B + beta*C) + bias + residual)`.

use super::matrix::MatRef;
use crate::engine::EngineError;
use serde::{Deserialize, Serialize};

/// Element-wise activation applied last, with ONNX's semantics. Serialized
/// (profiles, tuning files) in snake case: `"relu"`, `"hard_swish"`,
/// `{"leaky_relu": {"alpha": 0.01}}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    None,
    Relu,
    Relu6,
    /// `min(max(v, min), max)`: ONNX's general Clip.
    Clip {
        min: f32,
        max: f32,
    },
    /// `1 / (1 + e^-v)`.
    Sigmoid,
    /// `v * sigmoid(v)` (SiLU): EfficientNet's activation.
    Swish,
    /// `max(0, min(1, alpha * v + beta))` (ONNX HardSigmoid; its defaults are
    /// alpha 0.2, beta 0.5).
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `v * max(0, min(1, v / 6 + 1/2))` (ONNX HardSwish): MobileNetV3's.
    HardSwish,
    /// `v` where `v >= 0`, else `alpha * v`.
    LeakyRelu {
        alpha: f32,
    },
    Tanh,
    /// `v` where `v >= 0`, else `alpha * (e^v - 1)`.
    Elu {
        alpha: f32,
    },
    /// Exact GELU, `v/2 * (1 + erf(v / sqrt 2))`.
    Gelu,
}

impl Activation {
    /// One of each variant, parameters away from their defaults: what tests
    /// and benchmarks run through every code path that applies activations.
    pub const ONE_OF_EACH: [Activation; 12] = [
        Activation::None,
        Activation::Relu,
        Activation::Relu6,
        Activation::Clip {
            min: -0.25,
            max: 0.5,
        },
        Activation::Sigmoid,
        Activation::Swish,
        Activation::HardSigmoid {
            alpha: 0.3,
            beta: 0.4,
        },
        Activation::HardSwish,
        Activation::LeakyRelu { alpha: 0.1 },
        Activation::Tanh,
        Activation::Elu { alpha: 0.7 },
        Activation::Gelu,
    ];

    /// The activation of one value. The transcendental ones are evaluated in
    /// f64 and rounded once, so this is the correctly rounded value in all but
    /// rare ties; the vector code is tested against it.
    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        match self {
            Activation::None => v,
            Activation::Relu => v.max(0.0),
            Activation::Relu6 => v.clamp(0.0, 6.0),
            // Not `clamp`, which panics when min > max; ONNX then yields max.
            Activation::Clip { min, max } => v.max(min).min(max),
            // In f64 (alpha * v exact), rounded once: near the corners
            // `alpha * v + beta` cancels and an f32 product's rounding shows.
            Activation::HardSigmoid { alpha, beta } => {
                (f64::from(alpha) * f64::from(v) + f64::from(beta)).clamp(0.0, 1.0) as f32
            }
            Activation::HardSwish => {
                let x = f64::from(v);
                (x * ((x + 3.0) / 6.0).clamp(0.0, 1.0)) as f32
            }
            Activation::LeakyRelu { alpha } => {
                if v >= 0.0 {
                    v
                } else {
                    alpha * v
                }
            }
            _ => self.apply_transcendental(v),
        }
    }

    /// The activations that need exp, tanh or erf, out of line so that
    /// `apply` stays small where it is inlined.
    #[inline(never)]
    fn apply_transcendental(self, v: f32) -> f32 {
        let x = f64::from(v);
        let y = match self {
            // Written so that large |x| gives 0 or 1 (or -0, x), never inf/inf.
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Swish => x / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Elu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    f64::from(alpha) * x.exp_m1()
                }
            }
            // erfc(-z) = 1 + erf(z), without erf's cancellation for large
            // negative x (where GELU is tiny but not zero).
            Activation::Gelu => 0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2),
            other => return other.apply(v),
        };
        y as f32
    }

    /// The activation's name as a fused-operator label: the ONNX operator
    /// where there is one (`Identity` for none).
    pub fn name(self) -> &'static str {
        match self {
            Activation::None => "Identity",
            Activation::Relu => "Relu",
            Activation::Relu6 => "Relu6",
            Activation::Clip { .. } => "Clip",
            Activation::Sigmoid => "Sigmoid",
            Activation::Swish => "Swish",
            Activation::HardSigmoid { .. } => "HardSigmoid",
            Activation::HardSwish => "HardSwish",
            Activation::LeakyRelu { .. } => "LeakyRelu",
            Activation::Tanh => "Tanh",
            Activation::Elu { .. } => "Elu",
            Activation::Gelu => "Gelu",
        }
    }
}

/// Which index of C a per-channel vector (scale, bias) follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Axis {
    /// One value per row of C (length m).
    Row,
    /// One value per column of C (length n): output channels of an NHWC convolution.
    #[default]
    Col,
}

/// The fused epilogue. Any subset of its parts may be set.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    pub axis: Axis,
    pub scale: Option<&'a [f32]>,
    pub bias: Option<&'a [f32]>,
    pub residual: Option<MatRef<'a>>,
    pub activation: Activation,
}

impl<'a> Epilogue<'a> {
    /// No epilogue: plain `alpha*A*B + beta*C`.
    pub fn none() -> Self {
        Self::default()
    }

    pub(crate) fn validate(&self, m: usize, n: usize) -> Result<(), EngineError> {
        let want = match self.axis {
            Axis::Row => m,
            Axis::Col => n,
        };
        for (name, v) in [("epilogue.scale", self.scale), ("epilogue.bias", self.bias)] {
            if let Some(v) = v {
                if v.len() != want {
                    return Err(EngineError::Shape(format!(
                        "{name} has {} values but the {:?} axis of C has {want}",
                        v.len(),
                        self.axis
                    )));
                }
            }
        }
        if let Some(r) = &self.residual {
            if r.rows() != m || r.cols() != n {
                return Err(EngineError::Shape(format!(
                    "epilogue.residual is {}x{} but C is {m}x{n}",
                    r.rows(),
                    r.cols()
                )));
            }
        }
        Ok(())
    }
}

/// What a micro-kernel needs to finish one tile, with every pointer already
/// offset to the tile's origin. Built per tile by the macro-kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TileCtx {
    pub alpha: f32,
    /// Multiplier on the C already stored; exactly 0 means C is not read (it may be NaN).
    pub beta: f32,
    /// Apply scale, bias, residual and activation (only on the last k-block).
    pub last: bool,
    pub axis: Axis,
    pub scale: *const f32,
    pub bias: *const f32,
    pub residual: *const f32,
    pub res_rs: usize,
    pub res_cs: usize,
    pub act: Activation,
}

impl TileCtx {
    /// The context of the tile `cols` columns to the right of this one: the
    /// column-indexed pointers move, the row-indexed ones stay.
    ///
    /// # Safety
    /// Column `cols` must lie inside C, so the moved pointers stay inside the
    /// epilogue vectors and the residual.
    // Only the AVX2 row kernel walks tiles itself so far.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub unsafe fn right(&self, cols: usize) -> TileCtx {
        // SAFETY: by the caller's guarantee each offset stays in bounds; null
        // pointers (absent parts) are never offset.
        let col = |p: *const f32, step: usize| {
            if p.is_null() {
                p
            } else {
                unsafe { p.add(cols * step) }
            }
        };
        let per_col = match self.axis {
            Axis::Col => 1,
            Axis::Row => 0,
        };
        TileCtx {
            scale: col(self.scale, per_col),
            bias: col(self.bias, per_col),
            residual: col(self.residual, self.res_cs),
            ..*self
        }
    }

    /// Finish one value: `v` is the accumulated A*B for C(i, j) of this tile.
    ///
    /// # Safety
    /// `c` must be valid for reads and writes; when `last`, the non-null epilogue
    /// pointers must be valid at offsets `i`/`j` (per axis) and `(i, j)` (residual).
    #[inline(always)]
    pub unsafe fn finish(&self, v: f32, c: *mut f32, i: usize, j: usize) {
        let mut t = self.alpha * v;
        if self.beta != 0.0 {
            t += self.beta * *c;
        }
        if self.last {
            let ch = match self.axis {
                Axis::Row => i,
                Axis::Col => j,
            };
            if !self.scale.is_null() {
                t *= *self.scale.add(ch);
            }
            if !self.bias.is_null() {
                t += *self.bias.add(ch);
            }
            if !self.residual.is_null() {
                t += *self.residual.add(i * self.res_rs + j * self.res_cs);
            }
            t = self.act.apply(t);
        }
        *c = t;
    }
}

/// Stores the valid `m x n` corner of a register tile spilled to `tile`
/// (row-major, leading dimension `ld`) into C, element by element. Used for edge
/// tiles and non-unit column strides; full tiles take each kernel's vector path.
///
/// # Safety
/// `c` must be valid for `m x n` elements at strides `(rs, cs)`; see [`TileCtx::finish`].
pub(crate) unsafe fn store_tile_generic(
    tile: &[f32],
    ld: usize,
    m: usize,
    n: usize,
    c: *mut f32,
    rs: usize,
    cs: usize,
    ctx: &TileCtx,
) {
    for i in 0..m {
        for j in 0..n {
            // SAFETY: (i, j) is inside the caller's m x n tile of C.
            unsafe { ctx.finish(tile[i * ld + j], c.add(i * rs + j * cs), i, j) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Activation as A;

    #[test]
    fn activations_match_values_computed_elsewhere() {
        // (activation, x, ONNX's value to f64 precision, from Python's math).
        let cases = [
            (A::Sigmoid, 0.0, 0.5),
            (A::Sigmoid, 2.0, 0.8807970779778823),
            (A::Sigmoid, -100.0, 3.7200759760208356e-44),
            (A::Sigmoid, f32::INFINITY, 1.0),
            (A::Sigmoid, f32::NEG_INFINITY, 0.0),
            (A::Swish, 1.0, 0.7310585786300049),
            (A::Swish, -100.0, -3.720075976020836e-42),
            (A::Tanh, 0.5, 0.46211715726000974),
            (A::Tanh, f32::INFINITY, 1.0),
            (A::Gelu, 1.0, 0.8413447460685429),
            (A::Gelu, -6.0, -5.919525870226207e-09),
            (A::Elu { alpha: 0.7 }, -1.0, -0.44248439117999033),
            (A::Elu { alpha: 0.7 }, 2.0, 2.0),
            (A::HardSwish, 1.0, 2.0 / 3.0),
            (A::HardSwish, -4.0, 0.0),
            (A::HardSwish, 4.0, 4.0),
            (
                A::HardSigmoid {
                    alpha: 0.3,
                    beta: 0.4,
                },
                1.0,
                0.7,
            ),
            (
                A::HardSigmoid {
                    alpha: 0.2,
                    beta: 0.5,
                },
                -9.0,
                0.0,
            ),
            (A::LeakyRelu { alpha: 0.1 }, -2.0, -0.2),
            (A::LeakyRelu { alpha: 0.1 }, 3.0, 3.0),
        ];
        for (act, x, want) in cases {
            let want: f64 = want;
            let got = f64::from(act.apply(x));
            // Within one f32 ulp of the exact value (subnormals: absolute).
            let ulp = (want.abs() * f64::from(f32::EPSILON)).max(1.5e-45);
            assert!(
                (got - want).abs() <= ulp,
                "{act:?}({x}) = {got:e}, want {want:e}"
            );
        }
        assert!(A::Sigmoid.apply(f32::NAN).is_nan());
        assert!(A::Gelu.apply(f32::NAN).is_nan());
    }

    #[test]
    fn serialized_names_are_snake_case_and_round_trip() {
        let json = serde_json::to_string(&A::ONE_OF_EACH).unwrap();
        for name in [
            "\"hard_swish\"",
            "\"leaky_relu\":{\"alpha\":0.1}",
            "\"relu6\"",
        ] {
            assert!(json.contains(name), "{name} missing from {json}");
        }
        let back: Vec<A> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, A::ONE_OF_EACH);
        for a in A::ONE_OF_EACH {
            assert!(!a.name().is_empty());
        }
    }
}
