//! Applying an [`Activation`] to vectors: the choice is made once, and the
//! caller's loop is compiled once per activation with it inlined.

use super::math;
use super::Simd;
use crate::engine::gemm::Activation;

/// A function of one vector. Structs with `#[inline(always)]` methods rather
/// than closures: a closure that LLVM chose not to inline would be compiled
/// without the dispatcher's target features.
pub(crate) trait VecFn<S: Simd>: Copy {
    fn apply(self, s: S, v: S::V) -> S::V;
}

/// A loop over vectors that applies an activation `f` to each: [`with_act`]
/// calls `run` with `f` for the activation chosen.
pub(crate) trait ActMap<S: Simd> {
    type Out;
    /// Must be `#[inline(always)]`, like everything generic over `S`.
    fn run<F: VecFn<S>>(self, s: S, f: F) -> Self::Out;
}

/// `f` on `x` into `y` (equal lengths), vector by vector, the tail with a
/// partial vector.
#[inline(always)]
pub(crate) fn map_slice<S: Simd, F: VecFn<S>>(s: S, f: F, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    while i + S::LANES <= x.len() {
        // SAFETY: i + LANES <= len for both slices.
        unsafe { s.store(yp.add(i), f.apply(s, s.load(xp.add(i)))) };
        i += S::LANES;
    }
    if i < x.len() {
        let n = x.len() - i;
        // SAFETY: n values remain in both slices from i.
        unsafe { s.store_part(yp.add(i), f.apply(s, s.load_part(xp.add(i), n)), n) };
    }
}

/// Runs `m` with `act` as a vector function. Every activation has a vector
/// form except GELU, which goes lane by lane through [`Activation::apply`].
#[inline(always)]
pub(crate) fn with_act<S: Simd, M: ActMap<S>>(s: S, act: Activation, m: M) -> M::Out {
    match act {
        Activation::None => m.run(s, Identity),
        Activation::Relu => m.run(s, Relu),
        Activation::Relu6 => m.run(s, Clamp(0.0, 6.0)),
        Activation::Clip { min, max } => m.run(s, Clamp(min, max)),
        Activation::Sigmoid => m.run(s, Sigmoid),
        Activation::Swish => m.run(s, Swish),
        Activation::HardSigmoid { alpha, beta } => m.run(s, HardSigmoid(alpha, beta)),
        Activation::HardSwish => m.run(s, HardSwish),
        Activation::LeakyRelu { alpha } => m.run(s, LeakyRelu(alpha)),
        Activation::Tanh => m.run(s, Tanh),
        Activation::Elu { alpha } => m.run(s, Elu(alpha)),
        Activation::Gelu => m.run(s, Lanes(act)),
    }
}

#[derive(Clone, Copy)]
struct Identity;
impl<S: Simd> VecFn<S> for Identity {
    #[inline(always)]
    fn apply(self, _: S, v: S::V) -> S::V {
        v
    }
}

#[derive(Clone, Copy)]
struct Relu;
impl<S: Simd> VecFn<S> for Relu {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        s.max(v, s.splat(0.0))
    }
}

/// `min(max(v, lo), hi)`: max first, as `Activation::apply` (min > max gives max).
#[derive(Clone, Copy)]
struct Clamp(f32, f32);
impl<S: Simd> VecFn<S> for Clamp {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        s.min(s.max(v, s.splat(self.0)), s.splat(self.1))
    }
}

#[derive(Clone, Copy)]
struct Sigmoid;
impl<S: Simd> VecFn<S> for Sigmoid {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        math::sigmoid(s, v)
    }
}

#[derive(Clone, Copy)]
struct Swish;
impl<S: Simd> VecFn<S> for Swish {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        math::swish(s, v)
    }
}

#[derive(Clone, Copy)]
struct HardSigmoid(f32, f32);
impl<S: Simd> VecFn<S> for HardSigmoid {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        math::hard_sigmoid(s, v, self.0, self.1)
    }
}

#[derive(Clone, Copy)]
struct HardSwish;
impl<S: Simd> VecFn<S> for HardSwish {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        math::hard_swish(s, v)
    }
}

#[derive(Clone, Copy)]
struct LeakyRelu(f32);
impl<S: Simd> VecFn<S> for LeakyRelu {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        math::leaky_relu(s, v, self.0)
    }
}

#[derive(Clone, Copy)]
struct Tanh;
impl<S: Simd> VecFn<S> for Tanh {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        math::tanh(s, v)
    }
}

#[derive(Clone, Copy)]
struct Elu(f32);
impl<S: Simd> VecFn<S> for Elu {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        math::elu(s, v, self.0)
    }
}

/// Lane by lane through the scalar definition.
#[derive(Clone, Copy)]
struct Lanes(Activation);
impl<S: Simd> VecFn<S> for Lanes {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        s.map_lanes(v, |x| self.0.apply(x))
    }
}

/// `y = act(x)` on the instruction set `isa` (`Isa::of(kernel)`), vectorized:
/// for an element-wise activation operator, and what the tests check every
/// vector form with.
///
/// # Panics
/// If `x` and `y` differ in length.
pub fn activation(isa: super::Isa, act: Activation, x: &[f32], y: &mut [f32]) {
    struct Run<'a> {
        act: Activation,
        x: &'a [f32],
        y: &'a mut [f32],
    }
    impl<S: Simd> ActMap<S> for Run<'_> {
        type Out = ();
        #[inline(always)]
        fn run<F: VecFn<S>>(self, s: S, f: F) {
            map_slice(s, f, self.x, self.y)
        }
    }
    impl super::SimdFn for Run<'_> {
        type Out = ();
        #[inline(always)]
        fn call<S: Simd>(self, s: S) {
            with_act(s, self.act, self)
        }
    }
    super::dispatch(isa, Run { act, x, y })
}
