//! Deterministic seeded weights: splitmix64 streams and Box–Muller normals
//! ([`crate::engine::rng`]), bit-identical across platforms.
//!
//! Every tensor draws from its own stream, keyed by the model seed, the node's
//! name and the tensor's role, so a layer's weights do not depend on the
//! layers built before it. Long tensors are cut into fixed chunks of
//! [`CHUNK`] values, each with its own sub-stream, and the chunks are filled
//! on several threads: the result is the same whatever the thread count.

use crate::engine::rng::{mix64, SplitMix64};

/// Values per independently seeded chunk of a long tensor.
pub const CHUNK: usize = 1 << 16;

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
