//! Vector exp and the activations built on it, written once over [`Simd`].
//!
//! exp: `x = n ln2 + r` with `n = round(x / ln2)` and `|r| <= ln2 / 2`
//! (Cody and Waite's two-part ln2, so `r` is nearly exact), `e^r` by a
//! degree-6 minimax polynomial summed as `1 + (r + r^2 q(r))`, and `2^n` applied as two powers of two so that results near the
//! overflow threshold and subnormal results come out right. Overflow gives
//! +inf, results below half the smallest subnormal 0, NaN stays NaN. The tests
//! bound the error against f64 over the whole f32 range (`tests.rs`).

use super::Simd;

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 in two parts: the first (0.693359375) has 9 significant bits, so `n * LN2_HI` is
/// exact for every `|n| <= 150`.
const LN2_HI: f32 = 355.0 / 512.0;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Above this, e^x overflows f32 (ln of the largest finite f32 is 88.7228391).
const EXP_HI: f32 = 88.722_84;
/// Below this, e^x is under half the smallest subnormal: ln(2^-150).
const EXP_LO: f32 = -103.972_08;

/// `e^r = 1 + r + r^2 q(r)` on `|r| <= ln2 / 2`: q of degree 4 fitted for
/// least maximum relative error of e^r (4e-9, a fifteenth of an ulp, with
/// these coefficients rounded to f32; fit by reweighted least squares).
const EXP_Q: [f32; 5] = [
    0.001_381_448_8,
    0.008_368_69,
    0.041_668_39,
    0.166_665_21,
    0.499_999_94,
];

/// `e^x`, lane by lane, within 1 ulp (0.95 measured over the f32 range).
#[inline(always)]
pub(crate) fn exp<S: Simd>(s: S, x: S::V) -> S::V {
    // n in [-150, 128]: clamping first keeps huge |x| (and the rounding's
    // input) in range; those lanes are replaced by 0 or inf below. A NaN
    // lane keeps NaN through r.
    let z = s.min(
        s.max(s.mul(x, s.splat(LOG2_E)), s.splat(-150.0)),
        s.splat(128.0),
    );
    let n = s.round(z);
    let r = s.fnma(n, s.splat(LN2_HI), x);
    let r = s.fnma(n, s.splat(LN2_LO), r);
    // e^r = 1 + (r + r^2 q(r)): the small correction is summed first so
    // that only the last addition rounds at the result's scale.
    let mut q = s.splat(EXP_Q[0]);
    for c in &EXP_Q[1..] {
        q = s.fma(q, r, s.splat(*c));
    }
    let p = s.add(s.splat(1.0), s.fma(s.mul(r, r), q, r));
    // 2^n = 2^n1 * 2^n2 with both halves in [-75, 64]: the first product is
    // exact, the second rounds once (into the subnormals, or to inf).
    let n1 = s.round(s.mul(n, s.splat(0.5)));
    let n2 = s.sub(n, n1);
    let y = s.mul(s.mul(p, s.pow2i(n1)), s.pow2i(n2));
    let y = s.select_lt(s.splat(EXP_HI), x, s.splat(f32::INFINITY), y);
    s.select_lt(x, s.splat(EXP_LO), s.splat(0.0), y)
}

/// Numerator and denominator of the sigmoid, from `e = e^-|x|` so that
/// nothing overflows: `1 / (1 + e)` for x >= 0, `e / (1 + e)` below.
#[inline(always)]
fn sigmoid_parts<S: Simd>(s: S, x: S::V) -> (S::V, S::V) {
    let e = exp(s, s.sub(s.splat(0.0), s.abs(x)));
    let one = s.splat(1.0);
    (s.select_lt(x, s.splat(0.0), e, one), s.add(one, e))
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub(crate) fn sigmoid<S: Simd>(s: S, x: S::V) -> S::V {
    let (num, den) = sigmoid_parts(s, x);
    s.div(num, den)
}

/// `x * sigmoid(x)`, as `x num / den` (one rounding fewer than the product).
#[inline(always)]
pub(crate) fn swish<S: Simd>(s: S, x: S::V) -> S::V {
    let (num, den) = sigmoid_parts(s, x);
    s.div(s.mul(x, num), den)
}

/// Below this |x|, tanh is the odd polynomial; above, `1 - 2 / (e^2|x| + 1)`
/// (which would lose digits to cancellation near 0).
const TANH_SMALL: f32 = 0.625;
/// `tanh(x) = x + x^3 P(x^2)` on `|x| <= 0.625`: P fitted for least maximum
/// relative error (about 1e-8 in f64; fit by reweighted least squares).
const TANH_P: [f32; 5] = [
    -0.005_705_742_6,
    0.020_639_753,
    -0.053_739_917,
    0.133_314_45,
    -0.333_332_8,
];

/// `tanh(x)`.
#[inline(always)]
pub(crate) fn tanh<S: Simd>(s: S, x: S::V) -> S::V {
    let a = s.abs(x);
    let z = s.mul(a, a);
    let mut p = s.splat(TANH_P[0]);
    for c in &TANH_P[1..] {
        p = s.fma(p, z, s.splat(*c));
    }
    let small = s.fma(s.mul(a, z), p, a);
    let e = exp(s, s.add(a, a));
    let one = s.splat(1.0);
    let big = s.sub(one, s.div(s.splat(2.0), s.add(e, one)));
    s.copysign(s.select_lt(a, s.splat(TANH_SMALL), small, big), x)
}

/// ELU: `x` for x >= 0, else `alpha (e^x - 1)`, with `e^x - 1 = 2t / (1 - t)`
/// for `t = tanh(x / 2)`, which keeps its digits near 0.
#[inline(always)]
pub(crate) fn elu<S: Simd>(s: S, x: S::V, alpha: f32) -> S::V {
    let t = tanh(s, s.mul(x, s.splat(0.5)));
    let em1 = s.div(s.add(t, t), s.sub(s.splat(1.0), t));
    s.select_lt(x, s.splat(0.0), s.mul(s.splat(alpha), em1), x)
}

/// `max(0, min(1, alpha x + beta))`.
#[inline(always)]
pub(crate) fn hard_sigmoid<S: Simd>(s: S, x: S::V, alpha: f32, beta: f32) -> S::V {
    let y = s.fma(s.splat(alpha), x, s.splat(beta));
    s.min(s.max(y, s.splat(0.0)), s.splat(1.0))
}

/// `x * max(0, min(1, x / 6 + 1/2))`, with the inner term as `(x + 3) / 6`:
/// near x = -3, `x / 6 + 1/2` cancels and 1/6's rounding would show.
#[inline(always)]
pub(crate) fn hard_swish<S: Simd>(s: S, x: S::V) -> S::V {
    let y = s.mul(s.add(x, s.splat(3.0)), s.splat(1.0 / 6.0));
    s.mul(x, s.min(s.max(y, s.splat(0.0)), s.splat(1.0)))
}

/// `x` for x >= 0, else `alpha x`.
#[inline(always)]
pub(crate) fn leaky_relu<S: Simd>(s: S, x: S::V, alpha: f32) -> S::V {
    s.select_lt(x, s.splat(0.0), s.mul(s.splat(alpha), x), x)
}
