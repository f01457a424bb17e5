//! `joulebench compare`: the performance-regression gate. Matches the points
//! of two runs by their parameters and calls a change a regression only when
//! it is beyond the tolerance AND significant (Mann-Whitney U on the batch
//! latencies of samples.csv when both runs have them, else non-overlapping
//! 95% confidence intervals).

use crate::harness::analyze::stats::{mann_whitney, median};
use crate::harness::record::dataset::{self, RunData};
use crate::harness::record::params::{Param, PARAMS};
use crate::harness::record::rows::{finite, ResultRow};
use crate::harness::{exit, HarnessError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Significance level of the Mann-Whitney test.
pub const ALPHA: f64 = 0.05;

/// A metric `compare` knows: its column, whether higher is better, and its
/// value in a row.
pub struct Metric {
    pub name: &'static str,
    pub higher_is_better: bool,
    pub value: fn(&ResultRow) -> Option<f64>,
}

/// The metrics `compare` knows.
pub const METRICS: &[Metric] = &[
    Metric {
        name: "images_per_s",
        higher_is_better: true,
        value: |r| finite(r.images_per_s),
    },
    Metric {
        name: "gflops",
        higher_is_better: true,
        value: |r| finite(r.gflops),
    },
    Metric {
        name: "latency_ms_p50",
        higher_is_better: false,
        value: |r| finite(r.latency_ms_p50),
    },
    Metric {
        name: "latency_ms_p90",
        higher_is_better: false,
        value: |r| finite(r.latency_ms_p90),
    },
    Metric {
        name: "latency_ms_p99",
        higher_is_better: false,
        value: |r| finite(r.latency_ms_p99),
    },
    Metric {
        name: "latency_ms_mean",
        higher_is_better: false,
        value: |r| finite(r.latency_ms_mean),
    },
    Metric {
        name: "joules_per_image",
        higher_is_better: false,
        value: |r| r.joules_per_image.and_then(finite),
    },
    Metric {
        name: "dyn_joules_per_image",
        higher_is_better: false,
        value: |r| r.dyn_joules_per_image.and_then(finite),
    },
    Metric {
        name: "images_per_joule",
        higher_is_better: true,
        value: |r| r.images_per_joule.and_then(finite),
    },
    Metric {
        name: "avg_power_w",
        higher_is_better: false,
        value: |r| r.avg_power_w.and_then(finite),
    },
];

/// How the metric's batch-level evidence relates to samples.csv.
fn latency_based(metric: &str) -> bool {
    metric == "images_per_s" || metric == "gflops" || metric.starts_with("latency_ms_")
}

/// Parses `5%`, `5` (both 5 percent) or `0.5%`.
pub fn parse_tolerance(s: &str) -> Result<f64, HarnessError> {
    let t = s.trim();
    let num = t.strip_suffix('%').unwrap_or(t).trim();
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..1000.0).contains(&v) => Ok(v / 100.0),
        _ => Err(HarnessError::Usage {
            name: "tolerance",
            reason: format!(
                "`{s}` is not a percentage from 0 to 1000 (for example --tolerance 5%)"
            ),
        }),
    }
}

/// What `compare` was asked.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub metric: String,
    /// A fraction: 0.05 for 5%.
    pub tolerance: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            metric: "images_per_s".into(),
            tolerance: 0.05,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Worse beyond the tolerance, and significant.
    Regression,
    /// Better beyond the tolerance, and significant.
    Improvement,
    /// The change is within the tolerance.
    WithinTolerance,
    /// Beyond the tolerance but not significant: noise.
    NotSignificant,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::Improvement => "improvement",
            Verdict::WithinTolerance => "within tolerance",
            Verdict::NotSignificant => "not significant",
        }
    }
}

/// One matched configuration.
#[derive(Clone, Debug, Serialize)]
pub struct PointComparison {
    /// The baseline's point id (the first, with repetitions).
    pub point: String,
    pub params: BTreeMap<String, String>,
    pub baseline: f64,
    pub current: f64,
    /// (current - baseline) / baseline.
    pub change: f64,
    pub baseline_ci95: Option<(f64, f64)>,
    pub current_ci95: Option<(f64, f64)>,
    /// `mann-whitney`, `ci-overlap`, or `none` (no evidence: the tolerance
    /// alone decides).
    pub test: &'static str,
    pub p_value: Option<f64>,
    pub significant: bool,
    pub verdict: Verdict,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub metric: String,
    pub higher_is_better: bool,
    pub tolerance: f64,
    pub baseline: String,
    pub current: String,
    pub suite: String,
    pub points: Vec<PointComparison>,
    /// Configurations of the baseline the current run lacks, and the reverse.
    pub unmatched_baseline: Vec<String>,
    pub unmatched_current: Vec<String>,
    /// Matched configurations where one side has no value of the metric.
    pub missing_metric: Vec<String>,
    pub regressions: usize,
    pub improvements: usize,
    pub notes: Vec<String>,
    pub exit_code: i32,
}

type Key = Vec<(String, String)>;

/// Rows of one run grouped by configuration (repetitions together), in
/// first-seen order.
fn group<'a>(
    rows: &'a [ResultRow],
    params: &[Param],
) -> (Vec<Key>, BTreeMap<Key, Vec<&'a ResultRow>>) {
    let mut order = Vec::new();
    let mut map: BTreeMap<Key, Vec<&ResultRow>> = BTreeMap::new();
    for r in rows {
        let k: Key = params
            .iter()
            .map(|p| (p.name().to_string(), p.value(r)))
            .collect();
        let e = map.entry(k.clone()).or_default();
        if e.is_empty() {
            order.push(k);
        }
        e.push(r);
    }
    (order, map)
}

fn key_label(rows: &[&ResultRow], key: &Key) -> String {
    rows.first()
        .map(|r| r.point.clone())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| {
            key.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
}

/// The metric of a group (median over repetitions) and its 95% interval
/// (the envelope of the repetitions' intervals).
fn value_and_ci(rows: &[&ResultRow], metric: &Metric) -> (Option<f64>, Option<(f64, f64)>) {
    let vals: Vec<f64> = rows.iter().filter_map(|r| (metric.value)(r)).collect();
    if vals.len() != rows.len() {
        return (None, None);
    }
    let ci_of = |r: &ResultRow| -> Option<(f64, f64)> {
        match metric.name {
            "images_per_s" => r.images_per_s_ci(),
            "gflops" => {
                let g = finite(r.gflops)?;
                let ips = finite(r.images_per_s).filter(|v| *v > 0.0)?;
                let (lo, hi) = r.images_per_s_ci()?;
                Some((g * lo / ips, g * hi / ips))
            }
            "latency_ms_p50" => r.latency_ci(),
            _ => None,
        }
    };
    let cis: Option<Vec<(f64, f64)>> = rows.iter().map(|r| ci_of(r)).collect();
    let ci = cis.filter(|c| !c.is_empty()).map(|c| {
        c.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(l, h)| {
                (lo.min(l), hi.max(h))
            })
    });
    (median(&vals), ci)
}

/// Pooled batch latencies of a group, when samples.csv has every point.
fn pooled_samples(data: &RunData, rows: &[&ResultRow]) -> Option<Vec<f64>> {
    let s = data.samples.as_ref()?;
    let mut out = Vec::new();
    for r in rows {
        out.extend_from_slice(s.get(&r.point)?);
    }
    (!out.is_empty()).then_some(out)
}

fn check_suites(base: &RunData, cur: &RunData) -> Result<Vec<String>, HarnessError> {
    let (bs, cs) = (base.distinct(|r| &r.suite), cur.distinct(|r| &r.suite));
    if bs != cs {
        return Err(HarnessError::Records {
            path: cur.results_path.clone(),
            reason: format!(
                "this is suite `{}` but the baseline {} is suite `{}`; compare runs of the same suite",
                cs.join("`, `"),
                base.results_path.display(),
                bs.join("`, `")
            ),
        });
    }
    let mut notes = Vec::new();
    if base.has_column("suite_hash") && cur.has_column("suite_hash") {
        let (bh, ch) = (
            base.distinct(|r| &r.suite_hash),
            cur.distinct(|r| &r.suite_hash),
        );
        if bh != ch {
            notes.push(format!(
                "the suite files differ (hash {} vs {}); points are matched by their parameters",
                bh.iter()
                    .map(|h| crate::harness::record::merge::short(h))
                    .collect::<Vec<_>>()
                    .join("+"),
                ch.iter()
                    .map(|h| crate::harness::record::merge::short(h))
                    .collect::<Vec<_>>()
                    .join("+")
            ));
        }
    }
    let (bm, cm) = (base.machine(), cur.machine());
    if bm != cm {
        notes.push(format!(
            "different machines: baseline on {bm}, current on {cm}"
        ));
    }
    Ok(notes)
}

/// Compares CURRENT against BASELINE (each a results.csv or a run directory).
pub fn compare(
    baseline: &Path,
    current: &Path,
    opts: &CompareOptions,
) -> Result<Comparison, HarnessError> {
    let Some(metric) = METRICS.iter().find(|m| m.name == opts.metric) else {
        return Err(HarnessError::Usage {
            name: "metric",
            reason: format!(
                "unknown metric `{}`; one of {}",
                opts.metric,
                METRICS
                    .iter()
                    .map(|m| m.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    };
    let base = dataset::load(baseline, true)?;
    let cur = dataset::load(current, true)?;
    let mut notes = check_suites(&base, &cur)?;
    for (side, d) in [("baseline", &base), ("current", &cur)] {
        if !d.has_column(metric.name) || !d.rows.iter().any(|r| (metric.value)(r).is_some()) {
            return Err(HarnessError::Records {
                path: d.results_path.clone(),
                reason: format!(
                    "the {side} run has no values of `{}` (a column of runs with power data?); choose another --metric",
                    opts.metric
                ),
            });
        }
    }
    // Match on the parameter columns both files have.
    let params: Vec<Param> = PARAMS
        .iter()
        .copied()
        .filter(|p| base.has_column(p.name()) && cur.has_column(p.name()))
        .collect();
    let (border, bgroups) = group(&base.rows, &params);
    let (corder, cgroups) = group(&cur.rows, &params);
    let mut points = Vec::new();
    let mut unmatched_baseline = Vec::new();
    let mut missing_metric = Vec::new();
    let use_samples = latency_based(&opts.metric);
    for k in &border {
        let brows = &bgroups[k];
        let label = key_label(brows, k);
        let Some(crows) = cgroups.get(k) else {
            unmatched_baseline.push(label);
            continue;
        };
        let (Some(bv), bci) = value_and_ci(brows, metric) else {
            missing_metric.push(format!("{label} (baseline)"));
            continue;
        };
        let (Some(cv), cci) = value_and_ci(crows, metric) else {
            missing_metric.push(format!("{label} (current)"));
            continue;
        };
        let change = if bv != 0.0 { (cv - bv) / bv.abs() } else { 0.0 };
        let samples = if use_samples {
            pooled_samples(&base, brows).zip(pooled_samples(&cur, crows))
        } else {
            None
        };
        let (test, p_value, significant) = match samples.and_then(|(a, b)| mann_whitney(&a, &b)) {
            Some(mw) => ("mann-whitney", Some(mw.p), mw.p < ALPHA),
            None => match (bci, cci) {
                (Some((bl, bh)), Some((cl, ch))) => ("ci-overlap", None, bh < cl || ch < bl),
                _ => ("none", None, true),
            },
        };
        let worse = if metric.higher_is_better {
            -change
        } else {
            change
        };
        let verdict = if worse.abs() <= opts.tolerance {
            Verdict::WithinTolerance
        } else if !significant {
            Verdict::NotSignificant
        } else if worse > 0.0 {
            Verdict::Regression
        } else {
            Verdict::Improvement
        };
        points.push(PointComparison {
            point: label,
            params: k.iter().cloned().collect(),
            baseline: bv,
            current: cv,
            change,
            baseline_ci95: bci,
            current_ci95: cci,
            test,
            p_value,
            significant,
            verdict,
        });
    }
    let unmatched_current: Vec<String> = corder
        .iter()
        .filter(|k| !bgroups.contains_key(*k))
        .map(|k| key_label(&cgroups[k], k))
        .collect();
    if points.iter().any(|p| p.test == "none") {
        notes.push(format!(
            "no samples or confidence intervals for `{}`: the tolerance alone decides (test `none`)",
            opts.metric
        ));
    }
    if !unmatched_baseline.is_empty() || !unmatched_current.is_empty() {
        notes.push(format!(
            "configurations are matched on {}; a point whose resolved mc/nc/kc changed (\"auto\" blocking on another machine or a new cache model) does not match",
            params.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
        ));
    }
    let regressions = points
        .iter()
        .filter(|p| p.verdict == Verdict::Regression)
        .count();
    let improvements = points
        .iter()
        .filter(|p| p.verdict == Verdict::Improvement)
        .count();
    let exit_code = if points.is_empty()
        || !unmatched_baseline.is_empty()
        || !unmatched_current.is_empty()
        || !missing_metric.is_empty()
    {
        exit::BAD_INPUT
    } else if regressions > 0 {
        exit::REGRESSION
    } else {
        0
    };
    Ok(Comparison {
        metric: opts.metric.clone(),
        higher_is_better: metric.higher_is_better,
        tolerance: opts.tolerance,
        baseline: base.results_path.display().to_string(),
        current: cur.results_path.display().to_string(),
        suite: base.suite(),
        points,
        unmatched_baseline,
        unmatched_current,
        missing_metric,
        regressions,
        improvements,
        notes,
        exit_code,
    })
}

/// A number with about four significant digits.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else if a >= 0.1 || a == 0.0 {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// The human table.
pub fn table(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "compare `{}` ({} is better), tolerance {}%: suite {}",
        c.metric,
        if c.higher_is_better {
            "higher"
        } else {
            "lower"
        },
        (c.tolerance * 1e6).round() / 1e4,
        c.suite
    );
    let _ = writeln!(s, "  baseline {}\n  current  {}", c.baseline, c.current);
    let w = c
        .points
        .iter()
        .map(|p| p.point.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        s,
        "\n{:<w$}  {:>12}  {:>12}  {:>8}  {:<24}  verdict",
        "point", "baseline", "current", "change", "test"
    );
    for p in &c.points {
        let test = match p.p_value {
            Some(pv) if pv >= 1e-3 => format!("{} p={pv:.3}", p.test),
            Some(pv) => format!("{} p={pv:.1e}", p.test),
            None if p.test == "ci-overlap" => {
                format!("ci-{}", if p.significant { "disjoint" } else { "overlap" })
            }
            None => p.test.to_string(),
        };
        let _ = writeln!(
            s,
            "{:<w$}  {:>12}  {:>12}  {:>7.1}%  {:<24}  {}",
            p.point,
            fmt_num(p.baseline),
            fmt_num(p.current),
            p.change * 100.0,
            test,
            p.verdict.label()
        );
    }
    for (what, list) in [
        ("only in the baseline", &c.unmatched_baseline),
        ("only in the current run", &c.unmatched_current),
        ("metric missing", &c.missing_metric),
    ] {
        for p in list {
            let _ = writeln!(s, "{p:<w$}  {what}");
        }
    }
    let within = c
        .points
        .iter()
        .filter(|p| p.verdict == Verdict::WithinTolerance)
        .count();
    let noise = c
        .points
        .iter()
        .filter(|p| p.verdict == Verdict::NotSignificant)
        .count();
    let _ = writeln!(
        s,
        "\n{} matched: {} regression(s), {} improvement(s), {} within tolerance, {} not significant",
        c.points.len(),
        c.regressions,
        c.improvements,
        within,
        noise
    );
    let unmatched = c.unmatched_baseline.len() + c.unmatched_current.len() + c.missing_metric.len();
    if unmatched > 0 {
        let _ = writeln!(
            s,
            "{unmatched} configuration(s) unmatched or without the metric: the runs do not cover the same points"
        );
    }
    for n in &c.notes {
        let _ = writeln!(s, "note: {n}");
    }
    let _ = writeln!(
        s,
        "{}",
        match c.exit_code {
            0 => "result: no regression",
            3 => "result: REGRESSION",
            _ => "result: inputs do not match",
        }
    );
    s
}
