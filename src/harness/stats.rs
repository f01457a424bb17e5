//! Order statistics of timing samples.

/// The `q`-quantile (0..=1) of `sorted` by linear interpolation between order
/// statistics (type 7, the default of R and numpy). `None` when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// The median of unsorted samples (NaNs sort last).
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, 0.5)
}

/// Summary statistics of a point's batch latencies (seconds in, seconds out).
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub total: f64,
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation (n - 1); 0 for one sample.
    pub stdev: f64,
    /// Coefficient of variation, stdev / mean.
    pub cv: f64,
    /// 95% bootstrap percentile interval of the median.
    pub ci95_low: f64,
    pub ci95_high: f64,
    /// Per sample: modified z-score above [`OUTLIER_Z`].
    pub outliers: Vec<bool>,
}

/// Bootstrap resamples for the median's confidence interval.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Modified z-score beyond which a sample is flagged (Iglewicz and Hoaglin).
pub const OUTLIER_Z: f64 = 3.5;

/// Summarizes `samples`; `None` when empty. `seed` makes the bootstrap
/// deterministic.
pub fn summarize(samples: &[f64], seed: u64) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let n = samples.len();
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let total: f64 = samples.iter().sum();
    let mean = total / n as f64;
    let stdev = sample_stdev(samples);
    let q = |p| quantile_sorted(&sorted, p).unwrap_or(f64::NAN);
    let (ci95_low, ci95_high) = bootstrap_median_ci(samples, BOOTSTRAP_RESAMPLES, 0.95, seed);
    Some(Summary {
        n,
        total,
        mean,
        median: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        min: sorted[0],
        max: sorted[n - 1],
        stdev,
        cv: if mean > 0.0 { stdev / mean } else { 0.0 },
        ci95_low,
        ci95_high,
        outliers: modified_z_scores(samples)
            .iter()
            .map(|z| z.abs() > OUTLIER_Z)
            .collect(),
    })
}

/// Sample standard deviation (divisor n - 1); 0 for fewer than two samples.
pub fn sample_stdev(samples: &[f64]) -> f64 {
    let n = samples.len();
    if n < 2 {
        return 0.0;
    }
    let mean = samples.iter().sum::<f64>() / n as f64;
    let ss: f64 = samples.iter().map(|x| (x - mean) * (x - mean)).sum();
    (ss / (n - 1) as f64).sqrt()
}

/// Modified z-scores 0.6745 (x - median) / MAD. When the MAD is 0 (more than
/// half the samples equal), every score is 0: nothing is flagged.
pub fn modified_z_scores(samples: &[f64]) -> Vec<f64> {
    let Some(med) = median(samples) else {
        return Vec::new();
    };
    let dev: Vec<f64> = samples.iter().map(|x| (x - med).abs()).collect();
    let mad = median(&dev).unwrap_or(0.0);
    samples
        .iter()
        .map(|x| {
            if mad > 0.0 {
                0.6745 * (x - med) / mad
            } else {
                0.0
            }
        })
        .collect()
}

/// splitmix64: small, seedable, good enough for resampling.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0), by Lemire's multiply-shift.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// The median of a non-empty buffer in linear time (reorders it); equal to
/// [`median`] (the mean of the two middle values when the length is even).
pub fn median_in_place(buf: &mut [f64]) -> f64 {
    let n = buf.len();
    let (left, mid, _) = buf.select_nth_unstable_by(n / 2, f64::total_cmp);
    let hi = *mid;
    if n % 2 == 1 {
        hi
    } else {
        let lo = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        lo + (hi - lo) * 0.5
    }
}

/// Percentile bootstrap interval at `level` for the median of `samples`.
pub fn bootstrap_median_ci(samples: &[f64], resamples: usize, level: f64, seed: u64) -> (f64, f64) {
    let n = samples.len();
    if n == 0 || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = SplitMix64(seed);
    let mut buf = vec![0.0; n];
    let mut meds = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for b in buf.iter_mut() {
            *b = samples[rng.below(n)];
        }
        meds.push(median_in_place(&mut buf));
    }
    meds.sort_by(f64::total_cmp);
    let a = (1.0 - level) / 2.0;
    (
        quantile_sorted(&meds, a).unwrap_or(f64::NAN),
        quantile_sorted(&meds, 1.0 - a).unwrap_or(f64::NAN),
    )
}

/// Whether the first batches ran much slower than the rest: the mean of the
/// first `max(1, n/10)` (at most 5) samples above `factor` x the median.
/// Returns that ratio when it does.
pub fn slow_start(samples: &[f64], factor: f64) -> Option<f64> {
    if samples.len() < 5 {
        return None;
    }
    let k = (samples.len() / 10).clamp(1, 5);
    let head = samples[..k].iter().sum::<f64>() / k as f64;
    let med = median(samples)?;
    let ratio = head / med;
    (med > 0.0 && ratio > factor).then_some(ratio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_hand_computation() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&s, 0.5), Some(2.5));
        assert_eq!(quantile_sorted(&s, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&s, 1.0), Some(4.0));
        // numpy.quantile([1,2,3,4], 0.9) == 3.7
        assert!((quantile_sorted(&s, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn stdev_and_summary_match_hand_computation() {
        let s = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        // mean 5, squared deviations sum to 32, 32/7
        assert!((sample_stdev(&s) - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        let m = summarize(&s, 1).unwrap();
        assert_eq!(m.n, 8);
        assert_eq!(m.mean, 5.0);
        assert_eq!(m.median, 4.5);
        assert_eq!(m.min, 2.0);
        assert_eq!(m.max, 9.0);
        assert!((m.cv - (32.0f64 / 7.0).sqrt() / 5.0).abs() < 1e-12);
        // numpy.quantile(s, 0.9) == 7.6
        assert!((m.p90 - 7.6).abs() < 1e-12);
        assert!(m.ci95_low <= m.median && m.median <= m.ci95_high);
        assert!(m.ci95_low >= 2.0 && m.ci95_high <= 9.0, "{m:?}");
        // median 4.5, MAD 0.5: z(9) = 0.6745 * 4.5 / 0.5 = 6.07 (flagged),
        // z(2) = 0.6745 * 2.5 / 0.5 = 3.37 (kept)
        assert_eq!(
            m.outliers,
            vec![false, false, false, false, false, false, false, true]
        );
        assert_eq!(summarize(&[], 1), None);
    }

    #[test]
    fn modified_z_score_flags_the_far_sample_only() {
        // median 3, |dev| = [2,1,0,1,97], MAD = 1
        let z = modified_z_scores(&[1.0, 2.0, 3.0, 4.0, 100.0]);
        assert!((z[0] + 2.0 * 0.6745).abs() < 1e-12);
        assert!((z[4] - 97.0 * 0.6745).abs() < 1e-9);
        let m = summarize(&[1.0, 2.0, 3.0, 4.0, 100.0], 7).unwrap();
        assert_eq!(m.outliers, vec![false, false, false, false, true]);
        // MAD 0: nothing flagged
        assert!(modified_z_scores(&[1.0, 1.0, 1.0, 5.0])
            .iter()
            .all(|&z| z == 0.0));
    }

    #[test]
    fn bootstrap_is_deterministic_per_seed() {
        let s: Vec<f64> = (0..50).map(|i| ((i * 37) % 17) as f64 + 1.0).collect();
        let a = bootstrap_median_ci(&s, 500, 0.95, 42);
        assert_eq!(a, bootstrap_median_ci(&s, 500, 0.95, 42));
        assert_ne!(a, bootstrap_median_ci(&s, 500, 0.95, 43));
        let med = median(&s).unwrap();
        assert!(a.0 <= med && med <= a.1, "{a:?} {med}");
        // constant samples: a degenerate interval
        assert_eq!(bootstrap_median_ci(&[3.0; 9], 100, 0.95, 1), (3.0, 3.0));
    }

    #[test]
    fn median_in_place_matches_the_sorted_median() {
        let mut rng = SplitMix64(5);
        for n in 1..40 {
            let v: Vec<f64> = (0..n).map(|_| rng.below(10) as f64).collect();
            assert_eq!(
                median_in_place(&mut v.clone()),
                median(&v).unwrap(),
                "{v:?}"
            );
        }
    }

    #[test]
    fn slow_start_is_detected() {
        let mut s = vec![1.0; 20];
        s[0] = 5.0;
        s[1] = 5.0;
        assert_eq!(slow_start(&s, 2.0), Some(5.0));
        assert_eq!(slow_start(&[1.0; 20], 2.0), None);
    }
}
