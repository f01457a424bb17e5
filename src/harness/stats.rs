//! Order statistics of timing samples.

use crate::engine::rng::SplitMix64;

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
    let mut rng = SplitMix64::new(seed);
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

/// A two-sided Mann-Whitney U test (Wilcoxon rank-sum) of two samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: the number of (a, b) pairs with a > b, ties
    /// counting one half.
    pub u: f64,
    /// Standard deviation of U under the null hypothesis, tie-corrected.
    pub sigma: f64,
    /// Normal approximation with continuity correction.
    pub z: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// The smallest sample size on each side for which the normal approximation
/// of [`mann_whitney`] is used.
pub const MANN_WHITNEY_MIN_N: usize = 8;

/// Mann-Whitney U test of `a` against `b` with the normal approximation,
/// tie correction and continuity correction (as scipy's
/// `mannwhitneyu(method="asymptotic")`). `None` when a side has fewer than
/// [`MANN_WHITNEY_MIN_N`] finite values or every value is tied.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let a: Vec<f64> = a.iter().copied().filter(|v| v.is_finite()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|v| v.is_finite()).collect();
    if a.len() < MANN_WHITNEY_MIN_N || b.len() < MANN_WHITNEY_MIN_N {
        return None;
    }
    mann_whitney_unchecked(&a, &b)
}

/// [`mann_whitney`] without the minimum sample size (finite values only).
fn mann_whitney_unchecked(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    // (value, from a) sorted; tied runs share their average rank.
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&v| (v, true))
        .chain(b.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i) as f64;
        let avg_rank = (i + 1 + j) as f64 / 2.0; // ranks i+1 ..= j
        rank_sum_a += avg_rank * all[i..j].iter().filter(|x| x.1).count() as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u = rank_sum_a - n1f * (n1f + 1.0) / 2.0;
    let mu = n1f * n2f / 2.0;
    let var = n1f * n2f / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)));
    if var <= 0.0 {
        return None;
    }
    let sigma = var.sqrt();
    let d = u - mu;
    let z = (d - 0.5 * d.signum()) / sigma;
    let p = (2.0 * normal_sf(z.abs())).min(1.0);
    Some(MannWhitney { u, sigma, z, p })
}

/// The standard normal survival function, 1 - Phi(x).
pub fn normal_sf(x: f64) -> f64 {
    0.5 * libm::erfc(x / std::f64::consts::SQRT_2)
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
        let mut rng = SplitMix64::new(5);
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
    #[test]
    fn mann_whitney_matches_scipy_asymptotic() {
        // scipy.stats.mannwhitneyu(x, y, method="asymptotic") on the example
        // of its documentation (no ties): U = 17, p = 0.11134688653314041.
        // Sides are padded to the minimum size by repeating the data, which
        // keeps U/(n1 n2) and changes the numbers; so check the formula on the
        // documented example through the padding-free helper first.
        let x = [19.0, 22.0, 16.0, 29.0, 24.0];
        let y = [20.0, 11.0, 17.0, 12.0];
        let r = mann_whitney_unchecked(&x, &y).unwrap();
        assert_eq!(r.u, 17.0);
        assert!((r.p - 0.111_346_886_533_140_41).abs() < 1e-6, "{r:?}");
        // Too few samples for the normal approximation in the public test.
        assert_eq!(mann_whitney(&x, &y), None);
    }

    #[test]
    fn mann_whitney_tie_corrected_sigma_is_the_permutation_sigma() {
        // With ties, the variance of U over every split of the pooled data
        // into sides of n1 and n2 values is what the tie-corrected formula gives.
        let a = [1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0, 8.0];
        let b = [2.0, 3.0, 3.0, 5.0, 6.0, 7.0, 8.0, 8.0, 9.0];
        let r = mann_whitney(&a, &b).unwrap();
        let pooled: Vec<f64> = a.iter().chain(&b).copied().collect();
        let (n, n1) = (pooled.len(), a.len());
        let u_of = |mask: u32| {
            let mut u = 0.0;
            for i in (0..n).filter(|i| mask >> i & 1 == 1) {
                for j in (0..n).filter(|j| mask >> j & 1 == 0) {
                    u += match pooled[i].total_cmp(&pooled[j]) {
                        std::cmp::Ordering::Greater => 1.0,
                        std::cmp::Ordering::Equal => 0.5,
                        std::cmp::Ordering::Less => 0.0,
                    };
                }
            }
            u
        };
        let us: Vec<f64> = (0u32..1 << n)
            .filter(|m| m.count_ones() as usize == n1)
            .map(u_of)
            .collect();
        let mean = us.iter().sum::<f64>() / us.len() as f64;
        let var = us.iter().map(|u| (u - mean).powi(2)).sum::<f64>() / us.len() as f64;
        assert!(
            (r.sigma - var.sqrt()).abs() < 1e-9,
            "{} vs {}",
            r.sigma,
            var.sqrt()
        );
        assert_eq!(r.u, u_of((1 << n1) - 1));
        assert!((mean - (n1 * (n - n1)) as f64 / 2.0).abs() < 1e-9);
    }

    #[test]
    fn mann_whitney_separates_shifted_samples_only() {
        let mut rng = SplitMix64::new(7);
        let mut noise = |n: usize, shift: f64| -> Vec<f64> {
            (0..n)
                .map(|_| 1.0 + shift + (rng.next_u64() % 1000) as f64 * 1e-4)
                .collect()
        };
        let base = noise(200, 0.0);
        let same = noise(200, 0.0);
        let slow = noise(200, 0.05);
        assert!(mann_whitney(&base, &same).unwrap().p > 0.01);
        let r = mann_whitney(&base, &slow).unwrap();
        assert!(r.p < 1e-10 && r.z < 0.0, "{r:?}");
        assert_eq!(mann_whitney(&[1.0; 10], &[1.0; 10]), None);
        assert!((normal_sf(1.959_963_985) - 0.025).abs() < 1e-7);
        // 1 - Phi(-x) through erfc's negative branch: 0.5 * erfc(-0.5).
        let x = -0.5 * std::f64::consts::SQRT_2;
        assert!((normal_sf(x) - 0.760_249_938_906_523_3).abs() < 1e-12);
    }
}
