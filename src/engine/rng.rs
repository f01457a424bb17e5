//! The one seeded generator of joulebench: splitmix64 (Steele, Lea and Flood
//! 2014), a tiny, well-mixed generator whose streams are bit-identical on
//! every platform. Model weights, random inputs, bootstrap resampling, the
//! benchmarks and the tests all draw from it.
//!
//! Normal values come from Box–Muller with the `libm` crate's `log`, `sin`
//! and `cos`: pure Rust, so unlike the platform's maths library they give
//! the same last bits everywhere, and seeded weights are the same on x86-64
//! and aarch64.

/// splitmix64: the state advances by the golden-ratio increment and the output
/// is the state through [`mix64`].
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    #[inline]
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[-1, 1)` with 24 random bits: exact in f32.
    #[inline]
    pub fn signed_f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// `n` values uniform in `[-1, 1)`.
    pub fn signed_vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.signed_f32()).collect()
    }

    /// Two independent standard normal values (Box–Muller): radius
    /// `sqrt(-2 ln u1)` and an angle uniform in `[0, 2 pi)`.
    #[inline]
    pub fn normal_pair(&mut self) -> (f64, f64) {
        const TWO_POW_53: f64 = (1u64 << 53) as f64;
        let a = self.next_u64();
        let b = self.next_u64();
        // u1 in (0, 1], so the logarithm is finite.
        let u1 = ((a >> 11) + 1) as f64 * (1.0 / TWO_POW_53);
        let r = (-2.0 * libm::log(u1)).sqrt();
        let angle = (b >> 11) as f64 * (std::f64::consts::TAU / TWO_POW_53);
        (r * libm::cos(angle), r * libm::sin(angle))
    }
}

/// Fills `buf` with values uniform in `[-1, 1)` from the stream of `seed`:
/// inputs whose values do not change speed, where zeros or constants could
/// hide a broken kernel.
pub fn fill_uniform(buf: &mut [f32], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for v in buf {
        *v = rng.signed_f32();
    }
}

/// The splitmix64 output function: a bijective 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_splitmix64() {
        // The first outputs of splitmix64 seeded with 1234567, from the
        // reference C implementation (Vigna, prng.di.unimi.it/splitmix64.c).
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn normal_pairs_are_uncorrelated_with_gaussian_moments() {
        let mut rng = SplitMix64::new(2);
        let n = 500_000;
        let (mut s, mut s2, mut xy, mut x4) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..n {
            let (x, y) = rng.normal_pair();
            s += x + y;
            s2 += x * x + y * y;
            xy += x * y;
            x4 += x.powi(4) + y.powi(4);
        }
        let m = f64::from(2 * n);
        assert!((s / m).abs() < 0.01, "mean {}", s / m);
        assert!((s2 / m - 1.0).abs() < 0.01, "variance {}", s2 / m);
        assert!((xy / f64::from(n)).abs() < 0.01);
        assert!((x4 / m - 3.0).abs() < 0.05);
    }

    #[test]
    fn bounded_draws_stay_in_range_and_cover_it() {
        let mut rng = SplitMix64::new(9);
        let mut seen = [0usize; 7];
        for _ in 0..7000 {
            seen[rng.below(7)] += 1;
            let x = rng.signed_f32();
            assert!((-1.0..1.0).contains(&x), "{x}");
            let u = rng.uniform(2.0, 3.0);
            assert!((2.0..3.0).contains(&u), "{u}");
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
        let mut a = vec![0.0f32; 64];
        fill_uniform(&mut a, 5);
        assert_eq!(a, SplitMix64::new(5).signed_vec(64));
        assert_ne!(a, SplitMix64::new(6).signed_vec(64));
    }
}
