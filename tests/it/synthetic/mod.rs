//! Synthetic run directories for the plot, report and compare tests:
//! results.csv with (optionally) the power and counter columns, samples.csv,
//! power.csv, profile.csv and manifest.json, all deterministic.
#![allow(dead_code)]

use joulebench::engine::rng::SplitMix64;
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

const BASE_COLS: &[&str] = &[
    "suite",
    "suite_hash",
    "experiment",
    "point",
    "repetition",
    "model",
    "engine",
    "kernel",
    "conv",
    "fusion",
    "threads",
    "batch",
    "mc",
    "nc",
    "kc",
    "loop",
    "cpus",
    "iterations",
    "duration_s",
    "images_per_s",
    "gflop_per_image",
    "gflops",
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p99",
    "latency_ms_mean",
    "latency_ms_min",
    "latency_ms_max",
    "latency_ms_stdev",
    "latency_ci95_low_ms",
    "latency_ci95_high_ms",
    "cv",
    "outliers",
    "warnings",
    "host",
    "timestamp_utc",
];

const POWER_COLS: &[&str] = &[
    "power_source",
    "power_estimated",
    "samples",
    "avg_power_w",
    "idle_power_w",
    "energy_j",
    "joules_per_image",
    "dyn_joules_per_image",
    "images_per_joule",
    "cycles",
    "instructions",
    "ipc",
    "window_start_s",
    "window_end_s",
    "power_mode",
    "governor",
    "freq_min_khz",
    "freq_max_khz",
    "freq_mean_mhz",
    "temp_start_c",
    "temp_end_c",
    "throttled",
];

/// Writes results.csv; with `power_columns` the power and counter columns
/// are there (empty for points without `power_w`).
pub fn write_results(dir: &Path, suite: &str, points: &[Point], power_columns: bool) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("results.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    let mut header: Vec<&str> = BASE_COLS.to_vec();
    if power_columns {
        header.extend_from_slice(POWER_COLS);
    }
    w.write_record(&header).unwrap();
    let gflop = 8.178;
    for (i, p) in points.iter().enumerate() {
        let p50 = p.p50_ms();
        let iterations = 64;
        let duration = WINDOW_S;
        let mut rec: Vec<String> = vec![
            suite.into(),
            format!("{:064x}", suite.len() as u64 * 0x9E37),
            p.experiment.clone(),
            p.id(),
            p.repetition.to_string(),
            p.model.clone(),
            "joulebench".into(),
            "neon".into(),
            p.conv.clone(),
            p.fusion.to_string(),
            p.threads.to_string(),
            p.batch.to_string(),
            p.mc.to_string(),
            p.nc.to_string(),
            p.kc.to_string(),
            "auto".into(),
            String::new(),
            iterations.to_string(),
            duration.to_string(),
            p.images_per_s.to_string(),
            gflop.to_string(),
            (gflop * p.images_per_s).to_string(),
            p50.to_string(),
            (p50 * 1.06).to_string(),
            (p50 * 1.15).to_string(),
            (p50 * 1.01).to_string(),
            (p50 * 0.97).to_string(),
            (p50 * 1.3).to_string(),
            (p50 * 0.03).to_string(),
            (p50 * (1.0 - p.ci_rel)).to_string(),
            (p50 * (1.0 + p.ci_rel)).to_string(),
            "0.03".into(),
            "1".into(),
            if i == 1 {
                "cv 0.130 above 0.100: noisy".into()
            } else {
                String::new()
            },
            "xavier".into(),
            format!("2026-03-14T12:{:02}:00.000Z", i % 60),
        ];
        if power_columns {
            let start = i as f64 * (WINDOW_S + GAP_S) + GAP_S;
            match p.power_w {
                Some(w) => {
                    let energy = w * duration;
                    let images = p.images_per_s * duration;
                    rec.extend([
                        "hwmon:ina3221".to_string(),
                        "false".into(),
                        "40".into(),
                        w.to_string(),
                        IDLE_W.to_string(),
                        energy.to_string(),
                        (energy / images).to_string(),
                        ((w - IDLE_W) * duration / images).to_string(),
                        (images / energy).to_string(),
                        "123456789".into(),
                        "234567890".into(),
                        "1.9".into(),
                        start.to_string(),
                        (start + WINDOW_S).to_string(),
                    ]);
                }
                None => rec.extend(std::iter::repeat_n(String::new(), 14)),
            }
            let f = p.freq_mean_mhz.map_or(String::new(), |f| f.to_string());
            rec.extend([
                p.power_mode.clone(),
                "schedutil".into(),
                "115200".into(),
                "2265600".into(),
                f,
                "41.5".into(),
                "44.0".into(),
                p.throttled.to_string(),
            ]);
        }
        w.write_record(&rec).unwrap();
    }
    w.flush().unwrap();
    path
}

/// samples.csv: `n` batch latencies per point, around its median with a
/// relative spread of `spread`.
pub fn write_samples(dir: &Path, points: &[Point], n: usize, spread: f64, seed: u64) {
    let mut w = csv::Writer::from_path(dir.join("samples.csv")).unwrap();
    w.write_record(["point", "batch_index", "latency_ms", "outlier"])
        .unwrap();
    let mut rng = SplitMix64::new(seed);
    for p in points {
        for i in 0..n {
            let l = p.p50_ms() * (1.0 + spread * (rng.next_f64() - 0.5) * 2.0);
            w.write_record([p.id(), i.to_string(), l.to_string(), "false".into()])
                .unwrap();
        }
    }
    w.flush().unwrap();
}

/// power.csv on the run clock: idle between windows, the point's power in
/// its window, on two rails.
pub fn write_power(dir: &Path, points: &[Point]) {
    let mut w = csv::Writer::from_path(dir.join("power.csv")).unwrap();
    w.write_record(["point", "repetition", "t_s", "rail", "watts"])
        .unwrap();
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
            w.write_record([
                point.clone(),
                "0".into(),
                format!("{t:.3}"),
                rail.into(),
                format!("{watts:.4}"),
            ])
            .unwrap();
        }
        t += 0.1;
    }
    w.flush().unwrap();
}

/// profile.csv for `points`: a ResNet-like list of layers.
pub fn write_profile(dir: &Path, points: &[Point]) {
    let mut w = csv::Writer::from_path(dir.join("profile.csv")).unwrap();
    w.write_record([
        "point",
        "layer_index",
        "name",
        "op",
        "algorithm",
        "output",
        "ms_per_batch",
        "share",
        "gflops",
    ])
    .unwrap();
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
            w.write_record([
                p.id(),
                i.to_string(),
                name.to_string(),
                op.to_string(),
                algo.to_string(),
                "56x56x64".into(),
                (total * share).to_string(),
                share.to_string(),
                "12.5".into(),
            ])
            .unwrap();
        }
    }
    w.flush().unwrap();
}

pub fn write_manifest(dir: &Path, suite: &str) {
    let m = serde_json::json!({
        "suite": suite,
        "suite_file": format!("experiments/{suite}.toml"),
        "suite_hash": format!("{:064x}", suite.len() as u64 * 0x9E37),
        "suite_text": format!("name = \"{suite}\"\n\n[[experiment]]\nname = \"scaling\"\nmodels = [\"resnet50\"]\n"),
        "joulebench_version": "0.1.0",
        "git_revision": "0123456789abcdef",
        "kernel": "neon",
        "started_utc": "2026-03-14T12:00:00Z",
        "finished_utc": "2026-03-14T13:00:00Z",
        "machine": {
            "host": "xavier",
            "os": "Ubuntu",
            "os_version": "Linux (Ubuntu 20.04)",
            "kernel": "5.10.104-tegra",
            "arch": "aarch64",
            "cpu_model": "ARMv8 Processor rev 0 (v8l)",
            "logical_cores": 8,
            "physical_cores": 8,
            "frequencies_mhz": [2265, 2265],
            "governor": "schedutil",
            "scaling_min_mhz": 115,
            "scaling_max_mhz": 2265,
            "memory_bytes": 33_554_432_000u64,
            "nvpmodel": "MAXN",
            "throttled": null
        }
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
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
