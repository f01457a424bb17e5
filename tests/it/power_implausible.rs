//! Readings that cannot be right are flagged or refused, never recorded as
//! joules: a dangling RAPL counter, a counter reset inside a window, negative
//! or absurd watts from hwmon, the INA3221, the Pi 5 PMIC and a meter log.
//! Each test also checks the same source gives the hand-computed energy once
//! the reading is sane again, so a flag cannot pass by losing every figure.

use crate::common::cli::{run, tmpdir};
use crate::power_sources::{close, config, tree, window, write_atomic};
use joulebench::power::external::{LogReader, MeterFormat};
use joulebench::power::{
    PowerConfig, PowerError, PowerSource, RunClock, SourceKind, Sysfs, Window,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn build(c: &PowerConfig, root: &Path) -> Box<dyn PowerSource> {
    c.build(&Sysfs::new(root))
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("a source")
}

fn assert_flagged(w: &Window, words: &[&str]) {
    assert_eq!(w.energy_j, None, "{w:?}");
    assert_eq!(w.mean_w, None, "{w:?}");
    let all = w.warnings.join("; ");
    for word in words {
        assert!(all.contains(word), "{word:?} not in {all}");
    }
    assert!(all.contains("not recorded"), "{all}");
}

#[test]
fn a_dangling_rapl_counter_is_refused_by_name_not_dropped() {
    let root = tree("rapl", "dangling");
    let energy = root.join("sys/class/powercap/intel-rapl:0/energy_uj");
    std::fs::remove_file(&energy).unwrap();
    std::os::unix::fs::symlink("/nonexistent/energy_uj", &energy).unwrap();
    let err = config(SourceKind::Rapl)
        .build(&Sysfs::new(&root))
        .err()
        .expect("a dangling package counter must not open");
    assert!(matches!(err, PowerError::Malformed { .. }), "{err}");
    assert!(err.is_bad_input());
    let msg = err.to_string();
    assert!(
        msg.contains("intel-rapl:0/energy_uj") && msg.contains("/nonexistent/energy_uj"),
        "{msg}"
    );

    // Through the command line: exit 2, the file named, nothing measured.
    let d = tmpdir("dangling-cli");
    let suite = d.join("suite.toml");
    std::fs::write(
        &suite,
        "name = \"dangle\"\n[defaults]\nmin_seconds = 0.1\n[defaults.power]\nsource = \"rapl\"\n[[experiment]]\nmodels = \"tiny\"\n",
    )
    .unwrap();
    let out = run(&[
        "run",
        suite.to_str().unwrap(),
        "--out",
        d.join("out").to_str().unwrap(),
        "--sysfs-root",
        root.to_str().unwrap(),
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("intel-rapl:0/energy_uj"), "{stderr}");
    let written: Vec<_> = walk(&d.join("out"))
        .into_iter()
        .filter(|p| p.ends_with("results.csv"))
        .collect();
    assert!(written.is_empty(), "{written:?}");
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_rapl_counter_reset_inside_a_window_is_flagged_then_the_next_window_is_exact() {
    let root = tree("rapl", "reset");
    let pkg = root.join("sys/class/powercap/intel-rapl:0/energy_uj");
    write_atomic(&pkg, "100000000000");
    let mut src = build(&config(SourceKind::Rapl), &root);
    let clock = RunClock::start();
    src.start(&clock).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    // Back to almost zero: read as a wrap it would be 162143 J in one
    // interval, far beyond the zone's 28 W.
    write_atomic(&pkg, "1000");
    std::thread::sleep(Duration::from_millis(60));
    let w = src.stop(&clock).unwrap();
    assert_flagged(&w, &["package-0", "counter reset"]);

    // The next window: 1000 -> 2001000 µJ is 2 J exactly.
    src.start(&clock).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    write_atomic(&pkg, "2001000");
    std::thread::sleep(Duration::from_millis(60));
    let w = src.stop(&clock).unwrap();
    assert!(close(w.energy_j.unwrap(), 2.0, 1e-12), "{w:?}");
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
}

#[test]
fn negative_or_absurd_hwmon_watts_leave_the_window_without_energy() {
    let root = tree("hwmon", "negative");
    let power = root.join("sys/class/hwmon/hwmon1/power1_input");
    let mut c = config(SourceKind::Hwmon);
    c.device = Some("ina219".into());
    let mut src = build(&c, &root);
    write_atomic(&power, "-5000000");
    let w = window(src.as_mut(), 100);
    assert_flagged(&w, &["-5 W is negative"]);
    write_atomic(&power, "9000000000000000000");
    let w = window(src.as_mut(), 100);
    assert_flagged(&w, &["more than the 100000 W"]);
    // Sane again: 3.5 W constant, so the trapezoid is exact.
    write_atomic(&power, "3500000");
    let w = window(src.as_mut(), 100);
    assert!(
        close(w.energy_j.unwrap(), 3.5 * w.duration_s(), 1e-9),
        "{w:?}"
    );
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
}

#[test]
fn a_negative_ina3221_input_rail_leaves_the_window_without_energy() {
    let root = tree("jetson-orin-nx", "ina-negative");
    let dir = root.join("sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1");
    let mut src = build(&config(SourceKind::Ina3221), &root);
    write_atomic(&dir.join("curr1_input"), "-1200");
    let w = window(src.as_mut(), 100);
    assert_flagged(&w, &["rail VDD_IN", "negative"]);
    // VDD_IN is 5.080 V x 1.2 A in the fixture.
    write_atomic(&dir.join("curr1_input"), "1200");
    let w = window(src.as_mut(), 100);
    assert!(
        close(w.energy_j.unwrap(), 5.080 * 1.2 * w.duration_s(), 1e-9),
        "{w:?}"
    );
}

#[test]
fn a_negative_pi5_pmic_rail_leaves_the_window_without_energy() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmpdir("pi5");
    let out = d.join("adc.txt");
    let script = d.join("vcgencmd");
    std::fs::write(&script, format!("#!/bin/sh\ncat {}\n", out.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let good = "  VDD_CORE_A current(7)=2.00000000A\n  VDD_CORE_V volt(15)=0.75000000V\n";
    std::fs::write(&out, good).unwrap();
    let mut c = config(SourceKind::Pi5);
    c.command = script.display().to_string();
    let mut src = build(&c, &d);
    std::fs::write(
        &out,
        "  VDD_CORE_A current(7)=-2.00000000A\n  VDD_CORE_V volt(15)=0.75000000V\n",
    )
    .unwrap();
    let w = window(src.as_mut(), 150);
    assert_flagged(&w, &["rail VDD_CORE", "-1.5 W is negative"]);
    std::fs::write(&out, good).unwrap();
    let w = window(src.as_mut(), 150);
    assert!(
        close(w.energy_j.unwrap(), 1.5 * w.duration_s(), 1e-9),
        "{w:?}"
    );
}

#[test]
fn negative_or_absurd_meter_watts_are_refused_with_the_line() {
    let d = tmpdir("meter");
    let p = d.join("m.csv");
    for (value, words) in [
        ("-4.5", "-4.5 W is negative"),
        ("1e308", "more than the 100000 W"),
    ] {
        std::fs::write(
            &p,
            format!("timestamp,watts\n1700000000,10\n1700000001,{value}\n1700000002,10\n"),
        )
        .unwrap();
        let mut r = LogReader::new(&p, MeterFormat::default(), 1_700_000_000.0).unwrap();
        let err = r.poll(true).unwrap_err();
        assert!(err.is_bad_input(), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("m.csv:line 3") && msg.contains(words), "{msg}");
    }
    // Zero-current noise of a few mW below zero is read as it is.
    std::fs::write(&p, "timestamp,watts\n1700000000,-0.01\n1700000001,-0.01\n").unwrap();
    let mut r = LogReader::new(&p, MeterFormat::default(), 1_700_000_000.0).unwrap();
    assert_eq!(r.poll(true).unwrap(), 2);
}
