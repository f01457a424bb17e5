//! Power sources against fixture trees built from the kernel's documented
//! layouts (tests/fixtures/README.md): RAPL with a wrap in the window, an
//! unreadable energy counter, both Jetson INA3221 layouts, generic hwmon, a
//! Raspberry Pi 5 PMIC reading, and every meter log preset with a clock
//! offset.

use crate::common::cli::{copy_tree, is_root, rerun_as_nobody, tmpdir};
use joulebench::power::external::{integrate, LogReader, MeterFormat, TimeFormat};
use joulebench::power::{PowerConfig, PowerError, PowerSource, RunClock, SourceKind, Sysfs};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A private copy of a fixture tree (tests write into it).
pub(crate) fn tree(fixture_name: &str, test: &str) -> PathBuf {
    let d = tmpdir(test);
    copy_tree(&fixture(fixture_name), &d);
    d
}

/// Replaces a sysfs value the way the kernel shows it: whole, never half
/// written.
pub(crate) fn write_atomic(path: &Path, value: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{value}\n")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub(crate) fn config(kind: SourceKind) -> PowerConfig {
    let mut c = PowerConfig::named(kind);
    c.rate_hz = Some(50.0);
    c.min_samples = 2;
    c
}

fn source(kind: SourceKind, root: &Path) -> Box<dyn PowerSource> {
    config(kind)
        .build(&Sysfs::new(root))
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("a source")
}

/// Starts, waits, stops.
pub(crate) fn window(src: &mut dyn PowerSource, ms: u64) -> joulebench::power::Window {
    let clock = RunClock::start();
    src.start(&clock).unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    src.stop(&clock).unwrap()
}

pub(crate) fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-12)
}

#[test]
fn rapl_a_wrap_inside_the_window_gives_the_hand_computed_energy() {
    let root = tree("rapl", "wrap");
    let mut src = source(SourceKind::Rapl, &root);
    assert_eq!(src.name(), "rapl");
    assert!(!src.estimated());
    let desc = src.describe();
    assert_eq!(desc["total"], serde_json::json!(["package-0"]), "{desc}");
    let clock = RunClock::start();
    src.start(&clock).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // package-0 started at 262143000000 of 262143328850 µJ; it wraps and
    // reaches 500000: 328850 + 500000 µJ = 0.82885 J.
    let zones = root.join("sys/class/powercap");
    write_atomic(&zones.join("intel-rapl:0/energy_uj"), "500000");
    write_atomic(&zones.join("intel-rapl:0:0/energy_uj"), "120000250000");
    std::thread::sleep(Duration::from_millis(100));
    let w = src.stop(&clock).unwrap();
    assert!(close(w.energy_j.unwrap(), 0.82885, 1e-12), "{w:?}");
    let core = w.rails.iter().find(|r| r.name == "package-0/core").unwrap();
    assert!(close(core.energy_j, 0.25, 1e-12), "{core:?}");
    let psys = w.rails.iter().find(|r| r.name == "psys").unwrap();
    assert_eq!(psys.energy_j, 0.0);
    assert!(w.rails.iter().any(|r| r.name == "mmio/package-0"));
    assert!(close(w.mean_w.unwrap(), 0.82885 / w.duration_s(), 1e-9));
    assert!(w.samples.unwrap() >= 3, "{w:?}");
    // counters need no minimum of samples
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
}

#[test]
fn rapl_polls_fast_enough_that_two_wraps_cannot_hide() {
    let root = tree("rapl", "fastpoll");
    let z = root.join("sys/class/powercap/intel-rapl:0");
    // a 1 J counter at up to 100 W wraps every 10 ms
    write_atomic(&z.join("max_energy_range_uj"), "1000000");
    write_atomic(&z.join("energy_uj"), "0");
    write_atomic(&z.join("constraint_0_max_power_uw"), "100000000");
    let s = joulebench::power::rapl::open(&Sysfs::new(&root), &[], 10.0, 5).unwrap();
    assert!(
        s.interval() <= Duration::from_millis(5),
        "{:?}",
        s.interval()
    );
}

#[test]
fn rapl_unreadable_energy_counter_says_how_to_grant_access() {
    use std::os::unix::fs::PermissionsExt;
    let rel = "sys/class/powercap/intel-rapl:0/energy_uj";
    let root = match std::env::var_os("JOULEBENCH_TEST_TREE") {
        Some(tree) => PathBuf::from(tree),
        None => {
            let root = tree("rapl", "denied");
            std::fs::set_permissions(root.join(rel), std::fs::Permissions::from_mode(0o000))
                .unwrap();
            root
        }
    };
    if is_root() {
        // Root (CAP_DAC_OVERRIDE) reads mode-000 files: the assertions run in a copy of
        // this test as nobody, on the same tree.
        rerun_as_nobody(&[("JOULEBENCH_TEST_TREE", &root)]);
        return;
    }
    assert!(
        std::fs::read(root.join(rel)).is_err(),
        "the counter is readable"
    );
    let err = config(SourceKind::Rapl)
        .build(&Sysfs::new(&root))
        .err()
        .expect("an error");
    assert!(matches!(err, PowerError::Permission { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("intel-rapl:0/energy_uj") && msg.contains("chmod a+r"),
        "{msg}"
    );
}

#[test]
fn rapl_absent_says_why() {
    let err = config(SourceKind::Rapl)
        .build(&Sysfs::new(fixture("hwmon")))
        .err()
        .unwrap();
    assert!(err.is_bad_input());
    assert!(err.to_string().contains("no RAPL on this machine"), "{err}");
}

#[test]
fn jetson_l4t34_hwmon_layout_uses_the_input_rail_alone() {
    let mut src = source(SourceKind::Ina3221, &fixture("jetson-orin-nx"));
    let w = window(src.as_mut(), 200);
    let names: Vec<&str> = w.rails.iter().map(|r| r.name.as_str()).collect();
    // shunt voltages and the unlabelled in7/curr4 sums are not rails
    assert_eq!(names, ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]);
    assert!(close(w.mean_w.unwrap(), 5.080 * 1.200, 1e-9), "{w:?}");
    assert!(close(w.rails[2].mean_w, 5.072 * 0.4, 1e-9));
    assert_eq!(src.describe()["total"], serde_json::json!(["VDD_IN"]));
}

#[test]
fn jetson_agx_orin_sums_its_rails_and_skips_not_connected_channels() {
    let mut src = source(SourceKind::Ina3221, &fixture("jetson-agx-orin"));
    let w = window(src.as_mut(), 200);
    let names: Vec<&str> = w.rails.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "VDD_GPU_SOC",
            "VDD_CPU_CV",
            "VIN_SYS_5V0",
            "VDDQ_VDD2_1V8AO"
        ]
    );
    assert!(
        close(w.mean_w.unwrap(), 4.0 + 2.0 + 3.0 + 1.0, 1e-9),
        "{w:?}"
    );
}

#[test]
fn jetson_older_l4t_iio_layout() {
    let mut src = source(SourceKind::Ina3221, &fixture("jetson-xavier-l4t32"));
    let w = window(src.as_mut(), 200);
    assert_eq!(w.rails.len(), 6);
    assert!(close(w.mean_w.unwrap(), 7.0, 1e-9), "{w:?}");
    // with an input rail, that rail alone is the total
    let mut src = source(SourceKind::Ina3221, &fixture("jetson-nano-l4t32"));
    let w = window(src.as_mut(), 200);
    assert_eq!(w.rails.len(), 3);
    assert!(close(w.mean_w.unwrap(), 3.6, 1e-9), "{w:?}");
    assert!(close(w.energy_j.unwrap(), 3.6 * w.duration_s(), 1e-9));
}

#[test]
fn ina3221_absent_names_both_layouts() {
    let err = config(SourceKind::Ina3221)
        .build(&Sysfs::new(fixture("rapl")))
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("drivers/ina3221 (L4T 34+)") && msg.contains("ina3221x (older L4T)"),
        "{msg}"
    );
}

#[test]
fn hwmon_devices_are_chosen_by_name_and_read_in_their_units() {
    let root = fixture("hwmon");
    let err = config(SourceKind::Hwmon)
        .build(&Sysfs::new(&root))
        .err()
        .unwrap();
    assert!(err.to_string().contains("ina219, zenergy"), "{err}");
    let mut c = config(SourceKind::Hwmon);
    c.device = Some("ina219".into());
    let mut src = c.build(&Sysfs::new(&root)).unwrap().unwrap();
    let w = window(src.as_mut(), 200);
    // power1 (µW) wins over the in1 x curr1 pair of the same channel
    assert_eq!(w.rails.len(), 1, "{w:?}");
    assert!(close(w.mean_w.unwrap(), 4.998, 1e-9));
    // an energy counter (µJ) that advances during the window
    let root = tree("hwmon", "energy");
    let mut c = config(SourceKind::Hwmon);
    c.device = Some("zenergy".into());
    let mut src = c.build(&Sysfs::new(&root)).unwrap().unwrap();
    let clock = RunClock::start();
    src.start(&clock).unwrap();
    write_atomic(
        &root.join("sys/class/hwmon/hwmon2/energy1_input"),
        "125456789",
    );
    std::thread::sleep(Duration::from_millis(100));
    let w = src.stop(&clock).unwrap();
    assert!(close(w.energy_j.unwrap(), 2.0, 1e-12), "{w:?}");
    assert_eq!(w.rails[0].name, "Esocket0");
    // a malformed sensor file names itself
    write_atomic(&root.join("sys/class/hwmon/hwmon2/energy1_input"), "n/a");
    let err = c.build(&Sysfs::new(&root)).err().unwrap();
    assert!(err.is_bad_input());
    assert!(err.to_string().contains("hwmon2/energy1_input"), "{err}");
}

#[test]
fn pi5_pmic_output_sums_v_times_i_over_rails_with_both() {
    let text = std::fs::read_to_string(fixture("pi5/pmic_read_adc.txt")).unwrap();
    let rails = joulebench::power::pi5::parse(&text, Path::new("pmic_read_adc.txt")).unwrap();
    assert_eq!(
        rails.len(),
        12,
        "EXT5V_V and BATT_V have no current: {rails:?}"
    );
    // by hand from the fixture
    let want = 0.00390372 * 3.70622
        + 0.05172240 * 3.304054
        + 0.17372880 * 1.79926
        + 0.01366560 * 1.111358
        + 0.0 * 0.6045766
        + 0.18641880 * 1.106358
        + 0.36509760 * 0.8001388
        + 0.68624520 * 0.720819
        + 0.00009162 * 3.305867
        + 0.00024420 * 3.307698
        + 0.00425538 * 0.800129
        + 0.02196000 * 5.1426;
    let total: f64 = rails.iter().map(|r| r.watts).sum();
    assert!(close(total, want, 1e-12), "{total} vs {want}");
    // through the command, via a stand-in script
    let mut c = config(SourceKind::Pi5);
    c.command = fixture("pi5/vcgencmd").display().to_string();
    let mut src = c.build(&Sysfs::system()).unwrap().unwrap();
    let desc = src.describe();
    assert!(
        desc["notes"][0]
            .as_str()
            .unwrap()
            .contains("underestimates"),
        "{desc}"
    );
    let w = window(src.as_mut(), 300);
    assert!(close(w.mean_w.unwrap(), want, 1e-9), "{w:?}");
    assert!(w.samples.unwrap() >= 2);
    // a missing command is an absent source
    c.command = "/nonexistent/vcgencmd".into();
    let err = c.build(&Sysfs::system()).err().unwrap();
    assert!(err.to_string().contains("not found"), "{err}");
}

/// The run of the meter fixtures starts at Unix 1700000000; P(t) = 10 + t.
const RUN_START: f64 = 1_700_000_000.0;

fn meter_energy(file: &str, format: MeterFormat) -> joulebench::power::Window {
    let mut r = LogReader::new(&fixture(file), format, RUN_START).unwrap();
    r.poll(true).unwrap();
    assert!(r.samples.len() >= 11, "{}", r.samples.len());
    integrate("external", &r.samples, 2.0, 6.0, 3)
}

#[test]
fn every_meter_preset_with_a_clock_offset_gives_the_window_energy() {
    // integral of 10 + t over [2, 6] = 40 + 16 = 56 J
    let mut f = MeterFormat::preset("unix-watts").unwrap();
    f.clock_offset_s = 2.5;
    let w = meter_energy("meters/unix-watts.csv", f);
    assert!(close(w.energy_j.unwrap(), 56.0, 1e-9), "{w:?}");
    assert!(matches!(w.samples, Some(8..=9)), "{w:?}");
    assert!(close(w.mean_w.unwrap(), 14.0, 1e-9));

    let mut f = MeterFormat::preset("pyummeter").unwrap();
    f.clock_offset_s = -7200.0;
    let w = meter_energy("meters/pyummeter.csv", f);
    assert!(close(w.energy_j.unwrap(), 56.0, 1e-6), "{w:?}");

    let mut f = MeterFormat::preset("ptdaemon").unwrap();
    f.clock_offset_s = -3600.0;
    let w = meter_energy("meters/ptdaemon-spl.txt", f);
    assert!(close(w.energy_j.unwrap(), 56.0, 1e-9), "{w:?}");
    assert!(matches!(w.samples, Some(4..=5)), "{w:?}");

    let f = MeterFormat {
        preset: "custom".into(),
        delimiter: '\t',
        header: true,
        time_column: joulebench::power::external::Column::Name("ms".into()),
        time_format: TimeFormat::ElapsedMs,
        watts_column: None,
        volts_column: Some(joulebench::power::external::Column::Name(
            "voltage_V".into(),
        )),
        amps_column: Some(joulebench::power::external::Column::Index(2)),
        amps_scale: 0.001,
        clock_offset_s: RUN_START - 1.0,
    };
    let w = meter_energy("meters/volts-milliamps.tsv", f);
    assert!(close(w.energy_j.unwrap(), 56.0, 1e-9), "{w:?}");

    // the wrong offset leaves the window uncovered, and says so
    let w = meter_energy(
        "meters/unix-watts.csv",
        MeterFormat::preset("unix-watts").unwrap(),
    );
    // read 2.5 s early, the curve is 2.5 W higher: 56 + 2.5 x 4 J
    assert!(close(w.energy_j.unwrap(), 66.0, 1e-9), "{w:?}");
    let mut f = MeterFormat::preset("ptdaemon").unwrap();
    f.clock_offset_s = 0.0;
    let w = meter_energy("meters/ptdaemon-spl.txt", f);
    assert_eq!(w.energy_j, None);
    assert!(w.warnings[0].contains("clock_offset_s"), "{:?}", w.warnings);
}

#[test]
fn a_malformed_meter_log_names_file_and_line() {
    let d = tmpdir("meter-bad");
    let p = d.join("m.csv");
    std::fs::write(&p, "timestamp,watts\n1700000000,10\n1700000001,ten\n").unwrap();
    let mut r = LogReader::new(&p, MeterFormat::default(), RUN_START).unwrap();
    let err = r.poll(true).unwrap_err();
    assert!(err.is_bad_input());
    let msg = err.to_string();
    assert!(
        msg.contains("m.csv:line 3") && msg.contains("\"ten\""),
        "{msg}"
    );
    std::fs::write(&p, "time,power\n1,2\n").unwrap();
    let mut r = LogReader::new(&p, MeterFormat::default(), RUN_START).unwrap();
    let msg = r.poll(true).unwrap_err().to_string();
    assert!(
        msg.contains("no column `timestamp` in the header (time, power)"),
        "{msg}"
    );
}

#[test]
fn auto_takes_the_first_measured_source_that_opens_else_the_labelled_estimate() {
    let name = |root: &Path, cmd: &str| {
        let mut c = config(SourceKind::Auto);
        c.command = cmd.to_string();
        let s = c
            .build(&Sysfs::new(root))
            .unwrap()
            .expect("auto always builds");
        s.describe()["source"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let no_pi = "/nonexistent/vcgencmd";
    assert_eq!(name(&fixture("rapl"), no_pi), "rapl");
    assert_eq!(name(&fixture("jetson-orin-nx"), no_pi), "ina3221");
    assert_eq!(name(&fixture("hwmon"), no_pi), "hwmon");
    // No sysfs source: the Pi 5 PMIC through its command, then the estimate.
    let empty = tmpdir("auto-empty");
    let pi5 = fixture("pi5/vcgencmd").display().to_string();
    assert_eq!(name(&empty, &pi5), "pi5");
    assert_eq!(name(&empty, no_pi), "estimate");
    let mut c = config(SourceKind::Auto);
    c.command = no_pi.into();
    let mut est = c.build(&Sysfs::new(&empty)).unwrap().unwrap();
    let w = window(est.as_mut(), 50);
    assert!(w.estimated && w.energy_j.is_some(), "{w:?}");
}
