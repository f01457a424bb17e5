//! Deterministic seeded weights: splitmix64 streams and Box–Muller normals,
//! bit-identical across platforms.
//!
//! Every tensor draws from its own stream, keyed by the model seed, the node's
//! name and the tensor's role, so a layer's weights do not depend on the
//! layers built before it. Long tensors are cut into fixed chunks of
//! [`CHUNK`] values, each with its own sub-stream, and the chunks are filled
//! on several threads: the result is the same whatever the thread count.

/// Values per independently seeded chunk of a long tensor.
pub const CHUNK: usize = 1 << 16;

/// splitmix64 (Steele, Lea and Flood 2014): a tiny, well-mixed generator.
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

    /// Two independent standard normal values (Box–Muller): radius
    /// `sqrt(-2 ln u1)` and a uniform angle, drawn as an angle in `[0, pi/4)`
    /// mapped to one of the eight octants by three random bits (a swap and two
    /// signs), so that sine and cosine need only short polynomials. Only
    /// `+ - * /`, `sqrt` and bit operations are used, all exactly specified
    /// by IEEE 754, so the values are bit-identical on every platform (no
    /// platform `libm`, whose last bits differ between systems).
    #[inline]
    pub fn normal_pair(&mut self) -> (f64, f64) {
        const TWO_POW_53: f64 = (1u64 << 53) as f64;
        let a = self.next_u64();
        let b = self.next_u64();
        // u1 in (0, 1], so the logarithm is finite.
        let u1 = ((a >> 11) + 1) as f64 * (1.0 / TWO_POW_53);
        let r = (-2.0 * ln(u1)).sqrt();
        let x = (b >> 11) as f64 * (std::f64::consts::FRAC_PI_4 / TWO_POW_53);
        let (s, c) = sin_cos_octant(x);
        let (p, q) = if a & 1 != 0 { (s, c) } else { (c, s) };
        let sign = |v: f64, bit: u64| f64::from_bits(v.to_bits() ^ (((a >> bit) & 1) << 63));
        (sign(p * r, 1), sign(q * r, 2))
    }
}

/// Sine and cosine of `x` in `[0, pi/4]` (Taylor, error below 1e-11).
#[inline]
fn sin_cos_octant(x: f64) -> (f64, f64) {
    let z = x * x;
    let s = x
        * (1.0
            + z * (-1.0 / 6.0
                + z * (1.0 / 120.0
                    + z * (-1.0 / 5040.0 + z * (1.0 / 362_880.0 + z * (-1.0 / 39_916_800.0))))));
    let c = 1.0
        + z * (-0.5
            + z * (1.0 / 24.0
                + z * (-1.0 / 720.0
                    + z * (1.0 / 40_320.0
                        + z * (-1.0 / 3_628_800.0 + z * (1.0 / 479_001_600.0))))));
    (s, c)
}

/// Natural logarithm of a positive, finite, normal `x`, to about 1e-10
/// relative error, from arithmetic alone (no platform `libm`, whose last bits
/// differ between systems).
#[inline]
pub fn ln(x: f64) -> f64 {
    const LN2: f64 = std::f64::consts::LN_2;
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7FF) as i64 - 1023;
    // Mantissa in [1, 2), then folded into [sqrt(1/2), sqrt(2)).
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(s) with s = (m-1)/(m+1), |s| < 0.172.
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let series = 1.0
        + z * (1.0 / 3.0
            + z * (1.0 / 5.0
                + z * (1.0 / 7.0 + z * (1.0 / 9.0 + z * (1.0 / 11.0 + z * (1.0 / 13.0))))));
    e as f64 * LN2 + 2.0 * s * series
}

/// The splitmix64 output function: a bijective 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream key of one tensor: the model seed, the node's name and the
/// tensor's role (`"weight"`, `"bias"`, `"gamma"`, ...).
pub fn stream_key(seed: u64, node: &str, role: &str) -> u64 {
    // FNV-1a over "node\0role", then mixed with the seed.
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in node.as_bytes().iter().chain(&[0u8]).chain(role.as_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix64(mix64(seed ^ 0x6A6F_756C_6562_656E) ^ h)
}

/// Sub-stream of chunk `index` of the tensor keyed `key`.
fn chunk_rng(key: u64, index: usize) -> SplitMix64 {
    SplitMix64::new(mix64(key ^ mix64(index as u64 ^ 0xD1B5_4A32_D192_ED03)))
}

/// Fills `out` chunk by chunk with `fill(chunk_rng, chunk)`, on up to as many
/// threads as the machine has once the tensor is long enough to be worth it.
fn fill_chunked(out: &mut [f32], key: u64, fill: impl Fn(&mut SplitMix64, &mut [f32]) + Sync) {
    let chunks = out.len().div_ceil(CHUNK);
    let threads = if chunks >= 4 {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(chunks)
    } else {
        1
    };
    if threads <= 1 {
        for (i, c) in out.chunks_mut(CHUNK).enumerate() {
            fill(&mut chunk_rng(key, i), c);
        }
        return;
    }
    // Contiguous runs of whole chunks per thread; chunk i always gets stream i.
    let per_thread = chunks.div_ceil(threads);
    std::thread::scope(|s| {
        for (t, run) in out.chunks_mut(per_thread * CHUNK).enumerate() {
            let fill = &fill;
            s.spawn(move || {
                for (j, c) in run.chunks_mut(CHUNK).enumerate() {
                    fill(&mut chunk_rng(key, t * per_thread + j), c);
                }
            });
        }
    });
}

/// `n` values from a normal distribution with mean 0 and deviation `std`.
pub fn normal(n: usize, std: f64, key: u64) -> Vec<f32> {
    let mut v = vec![0.0f32; n];
    fill_chunked(&mut v, key, |rng, chunk| {
        for pair in chunk.chunks_mut(2) {
            let (a, b) = rng.normal_pair();
            pair[0] = (a * std) as f32;
            if let Some(p) = pair.get_mut(1) {
                *p = (b * std) as f32;
            }
        }
    });
    v
}

/// He-normal (Kaiming) initialization: deviation `sqrt(2 / fan_in)`.
pub fn he_normal(n: usize, fan_in: usize, key: u64) -> Vec<f32> {
    normal(n, (2.0 / fan_in.max(1) as f64).sqrt(), key)
}

/// `n` values uniform in `[lo, hi)`.
pub fn uniform(n: usize, lo: f32, hi: f32, key: u64) -> Vec<f32> {
    let mut v = vec![0.0f32; n];
    let (lo, hi) = (f64::from(lo), f64::from(hi));
    fill_chunked(&mut v, key, |rng, chunk| {
        for x in chunk {
            *x = rng.uniform(lo, hi) as f32;
        }
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_has_the_requested_moments() {
        let v = normal(200_001, 0.5, stream_key(1, "x", "weight"));
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.01, "std {}", var.sqrt());
    }

    #[test]
    fn sin_cos_match_the_platform_functions() {
        for i in 0..=1000 {
            let x = std::f64::consts::FRAC_PI_4 * f64::from(i) / 1000.0;
            let (s, c) = sin_cos_octant(x);
            assert!(
                (s - x.sin()).abs() < 1e-11 && (c - x.cos()).abs() < 1e-11,
                "{x}"
            );
        }
    }

    #[test]
    fn normal_pairs_are_uncorrelated_with_gaussian_kurtosis() {
        let mut rng = SplitMix64::new(2);
        let n = 500_000;
        let (mut xy, mut x4) = (0.0, 0.0);
        for _ in 0..n {
            let (x, y) = rng.normal_pair();
            xy += x * y;
            x4 += x.powi(4) + y.powi(4);
        }
        assert!((xy / f64::from(n)).abs() < 0.01);
        assert!((x4 / f64::from(2 * n) - 3.0).abs() < 0.05);
    }

    #[test]
    fn ln_matches_the_platform_logarithm() {
        let mut rng = SplitMix64::new(5);
        for _ in 0..100_000 {
            let x = rng.next_f64() * 2f64.powi(rng.uniform(-60.0, 60.0) as i32) + 1e-300;
            let rel = (ln(x) - x.ln()).abs() / x.ln().abs().max(1e-3);
            assert!(rel < 1e-9, "ln({x}) = {} vs {}", ln(x), x.ln());
        }
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn uniform_stays_in_range_and_streams_differ() {
        let a = uniform(1000, 0.5, 1.5, stream_key(3, "bn", "gamma"));
        assert!(a.iter().all(|&x| (0.5..1.5).contains(&x)));
        let b = uniform(1000, 0.5, 1.5, stream_key(3, "bn", "beta"));
        let c = uniform(1000, 0.5, 1.5, stream_key(4, "bn", "gamma"));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, uniform(1000, 0.5, 1.5, stream_key(3, "bn", "gamma")));
    }

    #[test]
    fn chunked_fill_matches_a_sequential_fill() {
        let key = stream_key(9, "big", "weight");
        let n = 5 * CHUNK + 123;
        let par = normal(n, 1.0, key);
        let mut seq = vec![0.0f32; n];
        for (i, c) in seq.chunks_mut(CHUNK).enumerate() {
            let mut rng = chunk_rng(key, i);
            for pair in c.chunks_mut(2) {
                let (a, b) = rng.normal_pair();
                pair[0] = a as f32;
                if let Some(p) = pair.get_mut(1) {
                    *p = b as f32;
                }
            }
        }
        assert!(par
            .iter()
            .zip(&seq)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
