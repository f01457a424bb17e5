//! Power through the command line: a short suite on a fixture RAPL tree
//! whose counter a thread advances (with a wrap) while the suite runs,
//! checked down to J/image in results.csv; the estimate; a meter log
//! attached afterwards; `sensors` on fixture trees; a source the machine
//! lacks is bad input.

use crate::common::cli::{copy_tree, run, tmpdir};

use joulebench::harness::record::io::read_rows;
use joulebench::harness::record::rows::{PowerRow, ResultRow};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn run_dir(root: &Path, suite: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(suite))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-12)
}

const MEASURE: &str = "[defaults]\nwarmup_iterations = 1\nwarmup_seconds = 0\nmin_seconds = 0.5\nmin_batches = 2\nmax_seconds = 10\n";

/// A thread that advances package-0's energy_uj at `watts` (µJ per µs),
/// wrapping at max_energy_range_uj like the hardware, until dropped. It
/// keeps every value it wrote with the Unix time it was in place, so the
/// energy of any window is known exactly afterwards, however the writer was
/// scheduled on a loaded machine.
struct Counter {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    /// (Unix time after the write, energy written since the start in µJ)
    log: Arc<Mutex<Vec<(f64, u64)>>>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

impl Counter {
    fn start(zone: PathBuf, watts: f64) -> Counter {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(vec![(unix_now(), 0)]));
        let (s, l) = (stop.clone(), log.clone());
        let handle = std::thread::spawn(move || {
            let range: u64 = 262_143_328_850;
            let e0: u64 = 262_143_000_000;
            let t0 = Instant::now();
            let energy = zone.join("energy_uj");
            let tmp = zone.join("energy_uj.tmp");
            while !s.load(Ordering::SeqCst) {
                let uj = (t0.elapsed().as_secs_f64() * watts * 1e6) as u64;
                let v = (e0 + uj) % range;
                std::fs::write(&tmp, format!("{v}\n")).unwrap();
                let before = unix_now();
                std::fs::rename(&tmp, &energy).unwrap();
                l.lock().unwrap().push((0.5 * (before + unix_now()), uj));
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Counter {
            stop,
            handle: Some(handle),
            log,
        }
    }

    /// Joules the counter advanced between Unix times `a` and `b`: the
    /// smallest and largest values a reader could have seen. One reading
    /// covers every zone and carries the middle of their reads as its time;
    /// on a loaded machine those reads can be preempted for some
    /// milliseconds, so 20 ms (0.1 J at 5 W) are allowed at each edge.
    fn joules_between(&self, a: f64, b: f64) -> (f64, f64) {
        let log = self.log.lock().unwrap();
        let at = |t: f64| {
            log.iter()
                .take_while(|(w, _)| *w <= t)
                .last()
                .map_or(0, |x| x.1) as f64
        };
        let eps = 20e-3;
        let lo = at(b - eps) - at(a + eps);
        let hi = at(b + eps) - at(a - eps);
        (lo / 1e6, hi / 1e6)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn a_suite_on_an_advancing_rapl_counter_records_joules_per_image() {
    let d = tmpdir("rapl");
    let root = d.join("sysfs");
    copy_tree(&fixture("rapl"), &root);
    let suite = d.join("suite.toml");
    std::fs::write(
        &suite,
        format!("name = \"pw\"\n{MEASURE}[defaults.power]\nsource = \"rapl\"\nrate_hz = 50\nidle_seconds = 0.5\n[[experiment]]\nname = \"e\"\nmodels = \"tiny\"\nbatch = [1, 2]\n"),
    )
    .unwrap();
    let watts = 5.0;
    let counter = Counter::start(root.join("sys/class/powercap/intel-rapl:0"), watts);
    std::thread::sleep(Duration::from_millis(20));
    let out = run(&[
        "run",
        suite.to_str().unwrap(),
        "--out",
        d.join("out").to_str().unwrap(),
        "--sysfs-root",
        root.to_str().unwrap(),
    ]);
    counter.stop.store(true, Ordering::SeqCst);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("J/image"), "{stdout}");
    let dir = run_dir(&d.join("out"), "pw");
    let rows: Vec<ResultRow> = read_rows(&dir.join("results.csv")).unwrap();
    assert_eq!(rows.len(), 2);
    let m = manifest(&dir);
    let start = m["clock"]["run_start_unix_s"].as_f64().unwrap();
    assert!(start > 1.6e9);
    let within = |got: f64, (lo, hi): (f64, f64)| got >= lo - 1e-6 && got <= hi + 1e-6;
    let idle = m["power"][0]["idle"]["watts"].as_f64().unwrap();
    let iw = &m["power"][0]["idle"]["window_s"];
    let (ia, ib) = (iw[0].as_f64().unwrap(), iw[1].as_f64().unwrap());
    let (lo, hi) = counter.joules_between(start + ia, start + ib);
    assert!(
        within(idle * (ib - ia), (lo, hi)),
        "idle {idle} W: {lo}..{hi} J over {} s",
        ib - ia
    );
    assert!(m["counters"]["summary"].is_string(), "{}", m["counters"]);
    let available: Vec<&str> = m["counters"]["available"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let mut prev_end = 0.0;
    for r in &rows {
        assert_eq!(r.power_source, "rapl");
        assert_eq!(r.power_estimated, Some(false));
        let (a, b) = (r.window_start_s.unwrap(), r.window_end_s.unwrap());
        assert!(a > prev_end && b > a && b - a >= 0.5, "{a} {b}");
        prev_end = b;
        let images = (r.iterations * r.batch) as f64;
        let e = r.energy_j.unwrap();
        // what the counter advanced in the window, across its wrap
        let (lo, hi) = counter.joules_between(start + a, start + b);
        assert!(
            within(e, (lo, hi)),
            "{e} J, counter {lo}..{hi} J over {} s",
            b - a
        );
        assert!(close(r.avg_power_w.unwrap(), e / (b - a), 1e-9));
        assert!(close(r.joules_per_image.unwrap(), e / images, 1e-9));
        assert!(close(r.images_per_joule.unwrap(), images / e, 1e-9));
        assert!(
            close(r.idle_power_w.unwrap(), idle, 1e-9),
            "{:?} vs {idle}",
            r.idle_power_w
        );
        let dynamic = r.dyn_joules_per_image.unwrap();
        assert!((dynamic - (e - idle * (b - a)) / images).abs() < 1e-9);
        assert!(r.samples.unwrap() >= 3, "{:?}", r.samples);
        for (name, v) in [("cycles", r.cycles), ("task_clock_ms", r.task_clock_ms)] {
            assert_eq!(v.is_some(), available.contains(&name), "{name} {v:?}");
        }
        assert_eq!(r.ipc.is_some(), available.contains(&"instructions"));
    }
    let text = std::fs::read_to_string(dir.join("power.csv")).unwrap();
    assert!(
        text.starts_with("point,repetition,t_s,rail,watts\n"),
        "{text}"
    );
    let prows: Vec<PowerRow> = read_rows(&dir.join("power.csv")).unwrap();
    for r in &rows {
        let mine: Vec<&PowerRow> = prows.iter().filter(|p| p.point == r.point).collect();
        assert!(mine.iter().any(|p| p.rail == "package-0"));
        assert!(mine.iter().any(|p| p.rail == "package-0/core"));
        let totals: Vec<f64> = mine
            .iter()
            .filter(|p| p.rail == "total")
            .map(|p| p.watts)
            .collect();
        assert_eq!(totals.len() + 1, r.samples.unwrap());
        for p in mine {
            assert!(p.t_s > r.window_start_s.unwrap() && p.t_s <= r.window_end_s.unwrap() + 1e-9);
        }
    }
}

#[test]
fn the_estimate_labels_every_row() {
    let d = tmpdir("estimate");
    let suite = d.join("suite.toml");
    std::fs::write(
        &suite,
        format!("name = \"est\"\n{MEASURE}[[experiment]]\nmodels = \"tiny\"\nbatch = [1, 2]\npower = {{ source = \"estimate\", idle_watts = 2, core_watts = 3 }}\n"),
    )
    .unwrap();
    let out = run(&[
        "run",
        suite.to_str().unwrap(),
        "--out",
        d.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = run_dir(&d, "est");
    let rows: Vec<ResultRow> = read_rows(&dir.join("results.csv")).unwrap();
    for r in &rows {
        assert_eq!(r.power_source, "estimate");
        assert_eq!(r.power_estimated, Some(true));
        assert_eq!(r.idle_power_w, Some(2.0));
        let dur = r.window_end_s.unwrap() - r.window_start_s.unwrap();
        let e = r.energy_j.unwrap();
        // idle part plus at most 3 W per core of the 2 cores busy
        assert!(
            e >= 2.0 * dur - 1e-9 && e <= 2.0 * dur + 3.0 * 2.0 * dur * 1.1,
            "{e} {dur}"
        );
        assert_eq!(r.samples, None);
    }
    assert_eq!(manifest(&dir)["power"][0]["description"]["estimated"], true);
}

#[test]
fn a_meter_log_attached_afterwards_fills_the_energy_columns() {
    let d = tmpdir("attach");
    let suite = d.join("suite.toml");
    std::fs::write(
        &suite,
        format!("name = \"att\"\n{MEASURE}[defaults.power]\nsource = \"external\"\nidle_seconds = 0.3\n[[experiment]]\nmodels = \"tiny\"\nbatch = [1, 2]\n"),
    )
    .unwrap();
    let out = run(&[
        "run",
        suite.to_str().unwrap(),
        "--out",
        d.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = run_dir(&d, "att");
    let before: Vec<ResultRow> = read_rows(&dir.join("results.csv")).unwrap();
    assert!(before
        .iter()
        .all(|r| r.power_source == "external" && r.energy_j.is_none()));
    let start = manifest(&dir)["clock"]["run_start_unix_s"]
        .as_f64()
        .unwrap();
    let end = before.last().unwrap().window_end_s.unwrap() + 1.0;

    // a malformed log changes nothing and exits 2
    let bad = d.join("bad.csv");
    std::fs::write(&bad, "timestamp,watts\n1,2\nx,3\n").unwrap();
    let results_before = std::fs::read(dir.join("results.csv")).unwrap();
    let out = run(&["attach-power", dir.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.csv:line 3"));
    assert_eq!(
        std::fs::read(dir.join("results.csv")).unwrap(),
        results_before
    );

    // a meter whose clock is 30 s ahead, logging 12 W every 20 ms
    let log = d.join("meter.csv");
    let mut text = String::from("timestamp,watts\n");
    let mut t = -1.0;
    while t < end {
        text.push_str(&format!("{:.3},12.0\n", start + t + 30.0));
        t += 0.02;
    }
    std::fs::write(&log, text).unwrap();
    let out = run(&[
        "attach-power",
        dir.to_str().unwrap(),
        log.to_str().unwrap(),
        "--preset",
        "unix-watts",
        "--clock-offset",
        "-30",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("attached 2 of 2 row(s)"));
    let rows: Vec<ResultRow> = read_rows(&dir.join("results.csv")).unwrap();
    for r in &rows {
        let dur = r.window_end_s.unwrap() - r.window_start_s.unwrap();
        let images = (r.iterations * r.batch) as f64;
        assert!(close(r.energy_j.unwrap(), 12.0 * dur, 1e-9));
        assert!(close(
            r.joules_per_image.unwrap(),
            12.0 * dur / images,
            1e-9
        ));
        assert!(close(r.idle_power_w.unwrap(), 12.0, 1e-9));
        assert!(r.dyn_joules_per_image.unwrap().abs() < 1e-9);
        assert!(r.samples.unwrap() >= 20);
        assert_eq!(r.power_estimated, Some(false));
    }
    let prows: Vec<PowerRow> = read_rows(&dir.join("power.csv")).unwrap();
    assert!(prows.iter().all(|p| p.rail == "meter" && p.watts == 12.0));
    assert_eq!(manifest(&dir)["attached_power"]["rows_attached"], 2);
}

#[test]
fn sensors_lists_sources_on_fixture_trees() {
    let out = run(&[
        "sensors",
        "--sysfs-root",
        fixture("jetson-orin-nx").to_str().unwrap(),
        "--vcgencmd",
        fixture("pi5/vcgencmd").to_str().unwrap(),
        "--seconds",
        "0.2",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by = |name: &str| {
        v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["source"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by("rapl")["found"], false);
    assert!(by("rapl")["reason"].as_str().unwrap().contains("powercap"));
    let ina = by("ina3221");
    assert_eq!(ina["found"], true);
    assert!(
        close(ina["total_w"].as_f64().unwrap(), 6.096, 1e-9),
        "{ina}"
    );
    assert_eq!(ina["rails"].as_array().unwrap().len(), 3);
    assert_eq!(by("pi5")["found"], true);
    assert_eq!(by("estimate")["estimated"], true);
    assert_eq!(v["suggested"], "power = \"ina3221\"");
    assert!(v["counters"]["summary"].is_string());
    // the table
    let out = run(&[
        "sensors",
        "--sysfs-root",
        fixture("rapl").to_str().unwrap(),
        "--seconds",
        "0.1",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rapl      found"), "{text}");
    assert!(text.contains("package-0/core"), "{text}");
    assert!(
        text.contains("suggested suite setting: power = \"rapl\""),
        "{text}"
    );
}

#[test]
fn a_power_source_the_machine_lacks_is_bad_input_before_anything_runs() {
    let d = tmpdir("lacks");
    let suite = d.join("suite.toml");
    std::fs::write(
        &suite,
        format!(
            "name = \"lacks\"\n{MEASURE}[[experiment]]\nmodels = \"tiny\"\npower = \"ina3221\"\n"
        ),
    )
    .unwrap();
    let out = run(&[
        "run",
        suite.to_str().unwrap(),
        "--out",
        d.to_str().unwrap(),
        "--sysfs-root",
        fixture("rapl").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("power source `ina3221` is not available"),
        "{err}"
    );
    let dir = run_dir(&d, "lacks");
    assert!(
        !dir.join("results.csv").exists()
            || std::fs::read_to_string(dir.join("results.csv"))
                .unwrap()
                .is_empty()
    );
}
