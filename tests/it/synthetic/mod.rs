//! Synthetic run directories for the plot, report and compare tests:
//! results.csv with (optionally) the power and counter columns, samples.csv,
//! power.csv, profile.csv and manifest.json, all deterministic.
#![allow(dead_code)]

use joulebench::engine::rng::SplitMix64;
use joulebench::harness::machine::MachineInfo;
use joulebench::harness::record::manifest::Manifest;
use joulebench::harness::record::rows::{PowerRow, ProfileRow, ResultRow, SampleRow};
use std::path::{Path, PathBuf};

/// One configuration of a synthetic run.
#[derive(Clone, Debug)]
pub struct Point {
    pub experiment: String,
    pub model: String,
    pub threads: usize,
    pub batch: usize,
    pub conv: String,
    pub fusion: bool,
    pub mc: usize,
    pub nc: usize,
    pub kc: usize,
    pub repetition: usize,
    pub images_per_s: f64,
    /// Half-width of the 95% interval of the median latency, relative.
    pub ci_rel: f64,
    /// Average power while measuring, W (None: no power data for this row).
    pub power_w: Option<f64>,
    /// The suite's power mode (`none` unless swept).
    pub power_mode: String,
    pub freq_mean_mhz: Option<f64>,
    pub throttled: bool,
}

impl Point {
    pub fn new(experiment: &str, threads: usize, batch: usize, images_per_s: f64) -> Point {
        Point {
            experiment: experiment.into(),
            model: "resnet50".into(),
            threads,
            batch,
            conv: "convgemm".into(),
            fusion: true,
            mc: 96,
            nc: 4080,
            kc: 256,
            repetition: 0,
            images_per_s,
            ci_rel: 0.01,
            power_w: None,
            power_mode: "none".into(),
            freq_mean_mhz: None,
            throttled: false,
        }
    }

    pub fn id(&self) -> String {
        let mode = if self.power_mode == "none" {
            String::new()
        } else {
            format!("{}-", self.power_mode)
        };
        format!(
            "{}/{}/{mode}t{}-b{}-mc{}_nc{}_kc{}-auto-{}-{}-r{}",
            self.experiment,
            self.model,
            self.threads,
            self.batch,
            self.mc,
            self.nc,
            self.kc,
            self.conv,
            if self.fusion { "fused" } else { "unfused" },
            self.repetition
        )
    }

    /// Median batch latency in ms.
    pub fn p50_ms(&self) -> f64 {
        self.batch as f64 * 1e3 / self.images_per_s
    }
}

pub const IDLE_W: f64 = 3.0;
/// Seconds per measured window and between windows in power.csv.
pub const WINDOW_S: f64 = 4.0;
pub const GAP_S: f64 = 1.0;

/// The row of results.csv for point `i` of a synthetic run; with
/// `power_columns` its power, counter and condition columns are filled
/// (the power ones empty for points without `power_w`).
fn result_row(suite: &str, i: usize, p: &Point, power_columns: bool) -> ResultRow {
    let gflop = 8.178;
    let p50 = p.p50_ms();
    let duration = WINDOW_S;
    let mut r = ResultRow {
        suite: suite.into(),
        suite_hash: format!("{:064x}", suite.len() as u64 * 0x9E37),
        experiment: p.experiment.clone(),
        point: p.id(),
        repetition: p.repetition,
        model: p.model.clone(),
        engine: "joulebench".into(),
        kernel: "neon".into(),
        conv: p.conv.clone(),
        fusion: p.fusion,
        threads: p.threads,
        batch: p.batch,
        mc: p.mc,
        nc: p.nc,
        kc: p.kc,
        parallel: "auto".into(),
        cpus: String::new(),
        iterations: 64,
        duration_s: duration,
        images_per_s: p.images_per_s,
        gflop_per_image: gflop,
        gflops: gflop * p.images_per_s,
        latency_ms_p50: p50,
        latency_ms_p90: p50 * 1.06,
        latency_ms_p99: p50 * 1.15,
        latency_ms_mean: p50 * 1.01,
        latency_ms_min: p50 * 0.97,
        latency_ms_max: p50 * 1.3,
        latency_ms_stdev: p50 * 0.03,
        latency_ci95_low_ms: p50 * (1.0 - p.ci_rel),
        latency_ci95_high_ms: p50 * (1.0 + p.ci_rel),
        cv: 0.03,
        outliers: 1,
        warnings: if i == 1 {
            "cv 0.130 above 0.100: noisy".into()
        } else {
            String::new()
        },
        host: "xavier".into(),
        timestamp_utc: format!("2026-03-14T12:{:02}:00.000Z", i % 60),
        ..ResultRow::default()
    };
    if !power_columns {
        return r;
    }
    let start = i as f64 * (WINDOW_S + GAP_S) + GAP_S;
    if let Some(w) = p.power_w {
        let energy = w * duration;
        let images = p.images_per_s * duration;
        r.power_source = "hwmon:ina3221".into();
        r.power_estimated = Some(false);
        r.samples = Some(40);
        r.avg_power_w = Some(w);
        r.idle_power_w = Some(IDLE_W);
        r.energy_j = Some(energy);
        r.joules_per_image = Some(energy / images);
        r.dyn_joules_per_image = Some((w - IDLE_W) * duration / images);
        r.images_per_joule = Some(images / energy);
        r.cycles = Some(123456789.0);
        r.instructions = Some(234567890.0);
        r.ipc = Some(1.9);
        r.window_start_s = Some(start);
        r.window_end_s = Some(start + WINDOW_S);
    }
    r.power_mode = p.power_mode.clone();
    r.governor = "schedutil".into();
    r.freq_min_khz = Some(115200);
    r.freq_max_khz = Some(2265600);
    r.freq_mean_mhz = p.freq_mean_mhz;
    r.temp_start_c = Some(41.5);
    r.temp_end_c = Some(44.0);
    r.throttled = Some(p.throttled);
    r
}

/// Writes results.csv through [`ResultRow`], the schema joulebench writes
/// and reads. Without `power_columns` the file ends at `timestamp_utc`, as
/// files of versions before power measurement did.
pub fn write_results(dir: &Path, suite: &str, points: &[Point], power_columns: bool) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("results.csv");
    let mut w = csv::Writer::from_writer(Vec::new());
    for (i, p) in points.iter().enumerate() {
        w.serialize(result_row(suite, i, p, power_columns)).unwrap();
    }
    let full = w.into_inner().unwrap();
    if power_columns {
        std::fs::write(&path, full).unwrap();
        return path;
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&full[..]);
    let records: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let keep = 1 + records[0]
        .iter()
        .position(|c| c == "timestamp_utc")
        .unwrap();
    let mut out = csv::Writer::from_path(&path).unwrap();
    for rec in &records {
        out.write_record(rec.iter().take(keep)).unwrap();
    }
    out.flush().unwrap();
    path
}

/// samples.csv: `n` batch latencies per point, around its median with a
/// relative spread of `spread`.
pub fn write_samples(dir: &Path, points: &[Point], n: usize, spread: f64, seed: u64) {
    let mut w = csv::Writer::from_path(dir.join("samples.csv")).unwrap();
    let mut rng = SplitMix64::new(seed);
    for p in points {
        for i in 0..n {
            let l = p.p50_ms() * (1.0 + spread * (rng.next_f64() - 0.5) * 2.0);
            w.serialize(SampleRow {
                point: p.id(),
                batch_index: i,
                latency_ms: l,
                outlier: false,
            })
            .unwrap();
        }
    }
    w.flush().unwrap();
}

/// power.csv on the run clock: idle between windows, the point's power in
/// its window, on two rails.
pub fn write_power(dir: &Path, points: &[Point]) {
    let mut w = csv::Writer::from_path(dir.join("power.csv")).unwrap();
    // Readings with the resolution a meter log has.
    let round = |v: f64, digits: usize| format!("{v:.digits$}").parse::<f64>().unwrap();
    let mut rng = SplitMix64::new(99);
    let end = points.len() as f64 * (WINDOW_S + GAP_S) + GAP_S;
    let mut t = 0.0;
    while t <= end {
        let slot = (t / (WINDOW_S + GAP_S)).floor() as usize;
        let inside = t - slot as f64 * (WINDOW_S + GAP_S) >= GAP_S;
        let (point, total) = match points.get(slot) {
            Some(p) if inside => (p.id(), p.power_w.unwrap_or(IDLE_W)),
            _ => (String::new(), IDLE_W),
        };
        let cpu = (total - 1.2) * (0.97 + 0.06 * rng.next_f64());
        let soc = 1.2 * (0.97 + 0.06 * rng.next_f64());
        for (rail, watts) in [("CPU", cpu), ("SOC", soc)] {
            w.serialize(PowerRow {
                point: point.clone(),
                repetition: 0,
                t_s: round(t, 3),
                rail: rail.into(),
                watts: round(watts, 4),
            })
            .unwrap();
        }
        t += 0.1;
    }
    w.flush().unwrap();
}

/// profile.csv for `points`: a ResNet-like list of layers.
pub fn write_profile(dir: &Path, points: &[Point]) {
    let mut w = csv::Writer::from_path(dir.join("profile.csv")).unwrap();
    let layers = [
        ("conv1", "Conv+Bias+Relu", "convgemm", 0.12),
        ("maxpool", "MaxPool", "direct", 0.02),
        ("layer1.0.conv1", "Conv+Bias+Relu", "pointwise", 0.05),
        ("layer1.0.conv2", "Conv+Bias+Relu", "convgemm", 0.11),
        ("layer1.0.conv3", "Conv+Bias+Add+Relu", "pointwise", 0.07),
        ("layer2.0.conv2", "Conv+Bias+Relu", "convgemm", 0.10),
        ("layer3.0.conv2", "Conv+Bias+Relu", "convgemm", 0.16),
        ("layer4.0.conv2", "Conv+Bias+Relu", "convgemm", 0.21),
        ("avgpool", "GlobalAvgPool", "direct", 0.01),
        ("fc", "Dense", "gemm", 0.15),
    ];
    for p in points {
        let total = p.p50_ms();
        for (i, (name, op, algo, share)) in layers.iter().enumerate() {
            w.serialize(ProfileRow {
                point: p.id(),
                layer_index: i,
                name: name.to_string(),
                op: op.to_string(),
                algorithm: algo.to_string(),
                output: "56x56x64".into(),
                ms_per_batch: total * share,
                share: *share,
                gflops: 12.5,
                blocking: String::new(),
            })
            .unwrap();
        }
    }
    w.flush().unwrap();
}

pub fn write_manifest(dir: &Path, suite: &str) {
    let m = Manifest {
        suite: suite.into(),
        suite_file: format!("experiments/{suite}.toml"),
        suite_hash: format!("{:064x}", suite.len() as u64 * 0x9E37),
        suite_text: format!(
            "name = \"{suite}\"\n\n[[experiment]]\nname = \"scaling\"\nmodels = [\"resnet50\"]\n"
        ),
        joulebench_version: "0.1.0".into(),
        git_revision: Some("0123456789abcdef".into()),
        kernel: "neon".into(),
        started_utc: Some("2026-03-14T12:00:00Z".into()),
        finished_utc: Some("2026-03-14T13:00:00Z".into()),
        machine: Some(MachineInfo {
            host: "xavier".into(),
            os: Some("Ubuntu".into()),
            os_version: Some("Linux (Ubuntu 20.04)".into()),
            kernel: Some("5.10.104-tegra".into()),
            arch: "aarch64".into(),
            cpu_model: Some("ARMv8 Processor rev 0 (v8l)".into()),
            logical_cores: 8,
            physical_cores: Some(8),
            frequencies_mhz: vec![2265, 2265],
            governor: Some("schedutil".into()),
            scaling_min_mhz: Some(115),
            scaling_max_mhz: Some(2265),
            memory_bytes: Some(33_554_432_000),
            nvpmodel: Some("MAXN".into()),
            throttled: None,
        }),
        ..Manifest::default()
    };
    m.write(&dir.join("manifest.json")).unwrap();
}

/// A paper-like study: threads x batch scaling with power, lowering x
/// fusion against threads (two panels), a cache grid (mc x kc), and two
/// profiled points.
pub fn paper_like_points() -> Vec<Point> {
    let mut pts = Vec::new();
    for batch in [1, 8, 32] {
        for threads in [1, 2, 4, 8] {
            let base = match batch {
                1 => 9.0,
                8 => 11.0,
                _ => 11.5,
            };
            let ips = base * (threads as f64).powf(0.85);
            let mut p = Point::new("scaling", threads, batch, ips);
            p.ci_rel = 0.01 + 0.004 * threads as f64;
            p.power_w = Some(IDLE_W + 2.6 * (threads as f64).powf(0.9) + 0.1 * batch as f64);
            pts.push(p);
        }
    }
    for conv in ["convgemm", "im2col"] {
        for fusion in [true, false] {
            for threads in [1, 2, 4] {
                let mut ips = 10.0 * (threads as f64).powf(0.9);
                if conv == "im2col" {
                    ips *= 0.85;
                }
                if !fusion {
                    ips *= 0.9;
                }
                let mut p = Point::new("lowering", threads, 8, ips);
                p.conv = conv.into();
                p.fusion = fusion;
                p.power_w = Some(IDLE_W + 2.6 * (threads as f64).powf(0.9));
                pts.push(p);
            }
        }
    }
    for (mode, mhz) in [("none", 2265.0), ("f1200", 1200.0), ("f800", 800.0)] {
        for threads in [1, 2, 4] {
            let ips = 10.0 * (threads as f64).powf(0.9) * mhz / 2265.0;
            let mut p = Point::new("modes", threads, 8, ips);
            p.power_mode = mode.into();
            p.freq_mean_mhz = Some(mhz - 3.0 * threads as f64);
            p.power_w = Some(IDLE_W + 2.6 * (threads as f64).powf(0.9) * (mhz / 2265.0).powi(2));
            p.throttled = mode == "none" && threads == 4;
            pts.push(p);
        }
    }
    for mc in [48, 96, 192] {
        for kc in [128, 256, 512] {
            let g = 60.0
                - ((mc as f64).log2() - 6.5).powi(2) * 6.0
                - ((kc as f64).log2() - 8.0).powi(2) * 4.0;
            let mut p = Point::new("blocking", 4, 8, g / 8.178);
            p.mc = mc;
            p.kc = kc;
            p.power_w = Some(11.0);
            pts.push(p);
        }
    }
    pts
}

/// Writes the paper-like study (every file) into `dir`.
pub fn write_paper_like(dir: &Path) -> Vec<Point> {
    let pts = paper_like_points();
    write_results(dir, "synthetic", &pts, true);
    write_samples(dir, &pts, 30, 0.02, 1);
    write_power(dir, &pts);
    let profiled: Vec<Point> = pts
        .iter()
        .filter(|p| p.experiment == "scaling" && p.batch == 8 && (p.threads == 1 || p.threads == 8))
        .cloned()
        .collect();
    write_profile(dir, &profiled);
    write_manifest(dir, "synthetic");
    pts
}
