//! Every instruction set this CPU runs (scalar always; AVX2 and AVX-512 on
//! x86-64 where present; NEON on aarch64, under QEMU in CI) against f64: exp
//! over the whole f32 range with its specials, every activation's vector form,
//! and the partial loads and stores (which must not touch past their count).

use super::act::map_slice;
use super::*;
use crate::engine::gemm::Activation;

/// |got - want| in units of the last place of `want` rounded to f32 (the
/// subnormal spacing below the smallest normal); 0 where both are the same
/// infinity or both NaN, infinite where only one is.
fn ulps(got: f32, want: f64) -> f64 {
    let w32 = want as f32;
    if got.is_nan() || want.is_nan() {
        return if got.is_nan() && want.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if got.is_infinite() || w32.is_infinite() {
        return if got == w32 { 0.0 } else { f64::INFINITY };
    }
    let field = (w32.abs().to_bits() >> 23) as i32;
    let ulp = 2f64.powi(field.max(1) - 127 - 23);
    (f64::from(got) - want).abs() / ulp
}

/// About a million f32 values spread over every exponent and both signs, and
/// the specials.
fn sweep() -> Vec<f32> {
    let mut v: Vec<f32> = (0..u32::MAX)
        .step_by(4093)
        .map(f32::from_bits)
        .filter(|x| !x.is_nan())
        .collect();
    v.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        1e-45,
        -1e-45,
        1.0,
        -1.0,
        0.5,
        88.72283,
        88.722_84,
        88.722_85,
        -87.336_54,
        -103.278_93,
        -103.972_08,
        -103.972_09,
        -104.0,
        1e30,
        -1e30,
    ]);
    v
}

/// `exp` over a slice on one instruction set.
fn exp_on(isa: Isa, x: &[f32]) -> Vec<f32> {
    struct Run<'a>(&'a [f32], &'a mut [f32]);
    #[derive(Clone, Copy)]
    struct Exp;
    impl<S: Simd> VecFn<S> for Exp {
        #[inline(always)]
        fn apply(self, s: S, v: S::V) -> S::V {
            math::exp(s, v)
        }
    }
    impl SimdFn for Run<'_> {
        type Out = ();
        #[inline(always)]
        fn call<S: Simd>(self, s: S) {
            map_slice(s, Exp, self.0, self.1)
        }
    }
    let mut y = vec![0.0; x.len()];
    dispatch(isa, Run(x, &mut y));
    y
}

#[test]
fn exp_is_within_one_ulp_over_the_whole_range() {
    let x = sweep();
    for isa in Isa::all_available() {
        let y = exp_on(isa, &x);
        let mut worst = (0.0f64, 0.0f32);
        for (&xi, &yi) in x.iter().zip(&y) {
            let e = ulps(yi, f64::from(xi).exp());
            if e > worst.0 {
                worst = (e, xi);
            }
        }
        eprintln!("{isa:?} exp: worst {:.3} ulp at {:e}", worst.0, worst.1);
        assert!(
            worst.0 <= 2.0,
            "{isa:?}: exp off by {} ulp at {:e}",
            worst.0,
            worst.1
        );
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            89.0,
            -104.0,
        ];
        let y = exp_on(isa, &specials);
        assert!(y[0].is_nan(), "{isa:?} exp(NaN) = {}", y[0]);
        assert_eq!(
            &y[1..],
            &[f32::INFINITY, 0.0, 1.0, f32::INFINITY, 0.0],
            "{isa:?}"
        );
    }
}

#[test]
fn every_activation_matches_its_scalar_definition() {
    // Finite inputs of moderate size (beyond 1e5 every activation is flat or
    // linear), the infinities, and NaN where the activation keeps it.
    let mut x: Vec<f32> = sweep()
        .into_iter()
        .filter(|v| v.abs() < 1e5 || v.is_infinite())
        .collect();
    // Odd length: the partial last vector runs too.
    x.truncate(x.len() / 2 * 2 - 1);
    for act in Activation::ONE_OF_EACH {
        // Few ulp for the transcendental ones, two roundings in hard-swish's
        // `x (x + 3) / 6`, one for the rest.
        let bound = match act {
            Activation::Sigmoid | Activation::Swish | Activation::Tanh | Activation::Elu { .. } => {
                4.0
            }
            Activation::HardSwish => 2.0,
            _ => 1.0,
        };
        for isa in Isa::all_available() {
            let mut y = vec![0.0; x.len()];
            activation(isa, act, &x, &mut y);
            let mut worst = (0.0f64, 0.0f32);
            for (&xi, &yi) in x.iter().zip(&y) {
                let want = act.apply(xi);
                // Below the normal range only the absolute error matters.
                let e = if want.abs() < 1e-30 && (yi - want).abs() < 1e-30 {
                    0.0
                } else {
                    ulps(yi, f64::from(want))
                };
                if e > worst.0 {
                    worst = (e, xi);
                }
            }
            eprintln!("{isa:?} {act:?}: worst {:.3} ulp at {:e}", worst.0, worst.1);
            assert!(
                worst.0 <= bound,
                "{isa:?} {act:?}: off by {} ulp at {:e}",
                worst.0,
                worst.1
            );
            let keeps_nan = matches!(
                act,
                Activation::Sigmoid
                    | Activation::Swish
                    | Activation::Tanh
                    | Activation::Elu { .. }
                    | Activation::LeakyRelu { .. }
                    | Activation::Gelu
                    | Activation::None
            );
            if keeps_nan {
                let mut y = [0.0];
                activation(isa, act, &[f32::NAN], &mut y);
                assert!(y[0].is_nan(), "{isa:?} {act:?}(NaN) = {}", y[0]);
            }
        }
    }
}

#[test]
fn partial_loads_and_stores_touch_only_their_lanes() {
    struct Run<'a>(&'a [f32], &'a mut [f32], usize);
    impl SimdFn for Run<'_> {
        type Out = ();
        #[inline(always)]
        fn call<S: Simd>(self, s: S) {
            let n = self.2;
            assert!(n <= S::LANES && self.0.len() >= n && self.1.len() >= n);
            // SAFETY: both slices hold n floats (asserted).
            unsafe {
                let v = s.load_part(self.0.as_ptr(), n);
                // Lanes past n must read as 0: doubling keeps them 0.
                s.store_part(self.1.as_mut_ptr(), s.add(v, v), n);
            }
        }
    }
    for isa in Isa::all_available() {
        for n in 0..=isa.lanes() {
            // Exactly n readable values, so a read past them would be caught
            // under a memory checker; the output's sentinels catch writes.
            let src: Vec<f32> = (0..n).map(|i| i as f32 + 1.0).collect();
            let mut dst = vec![-7.0f32; MAX_LANES + 1];
            dispatch(isa, Run(&src, &mut dst, n));
            for (i, &d) in dst.iter().enumerate() {
                let want = if i < n { 2.0 * (i as f32 + 1.0) } else { -7.0 };
                assert_eq!(d, want, "{isa:?} n={n} lane {i}");
            }
        }
    }
}
