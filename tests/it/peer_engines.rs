//! OpenVINO, LiteRT and ncnn in suites. For real through the test venv
//! (scripts/requirements-test.txt has openvino, ncnn, ai-edge-litert and
//! pnnx): OpenVINO and ncnn on the suite's ONNX file (ncnn's converted by
//! pnnx and checked against onnxruntime), LiteRT on a ready .tflite fixture.
//! On captured driver output (tests/fixtures/peers/*.jsonl, from the real
//! engines) through a stand-in Python: LiteRT on a model converted by onnx2tf
//! (tensorflow is too big for CI). And the failure paths: missing packages
//! skip, a conversion that changes the numbers fails, a hung program is
//! killed at peer_timeout_seconds.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

type Row = HashMap<String, String>;

const MEASURE: &str = "[defaults]\nwarmup_iterations = 1\nwarmup_seconds = 0\nmin_seconds = 0\nmin_batches = 3\npower = \"none\"\n";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peers")
}

/// MobileNet (64x64 input) from scripts/make_onnx_models.py: the ONNX file
/// the .tflite fixture was converted from.
fn mobilenet() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = common::cli::tmpdir("engines-models");
        common::python::run(&[
            "scripts/make_onnx_models.py",
            dir.to_str().unwrap(),
            "--only",
            "mobilenet",
            "--batch",
            "1",
        ]);
        dir.join("mobilenet.onnx")
    })
}

/// Writes `s.toml` with one experiment and runs it into `out`; returns the
/// exit code, stderr and the rows of results.csv.
fn run(dir: &Path, experiment: &str) -> (Option<i32>, String, Vec<Row>) {
    let suite = dir.join("s.toml");
    std::fs::write(
        &suite,
        format!("name = \"engines\"\n{MEASURE}\n[[experiment]]\nname = \"e\"\n{experiment}"),
    )
    .unwrap();
    let o = common::cli::bin()
        .arg("run")
        .arg(&suite)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--quiet")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let csv = run_dirs(&dir.join("out"))
        .last()
        .map(|d| d.join("results.csv"));
    let rows = csv
        .filter(|p| p.exists())
        .map(|p| {
            let mut r = csv::Reader::from_path(&p).unwrap();
            let h = r.headers().unwrap().clone();
            r.records()
                .map(|rec| {
                    let rec = rec.unwrap();
                    h.iter()
                        .zip(rec.iter())
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    (o.status.code(), err, rows)
}

/// The run directories under `out/engines`, oldest first.
fn run_dirs(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join("engines"))
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("results.csv").exists())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn num(r: &Row, k: &str) -> f64 {
    r[k].parse()
        .unwrap_or_else(|_| panic!("{k} = {:?} in {r:?}", r[k]))
}

fn row<'a>(rows: &'a [Row], engine: &str, threads: usize, batch: usize) -> &'a Row {
    rows.iter()
        .find(|r| {
            r["engine"] == engine
                && r["threads"] == threads.to_string()
                && r["batch"] == batch.to_string()
        })
        .unwrap_or_else(|| panic!("no {engine} t{threads} b{batch} row in {rows:?}"))
}

#[test]
fn openvino_ncnn_and_litert_measure_the_same_model_with_their_settings_recorded() {
    let dir = common::cli::tmpdir("engines-real");
    let tflite = fixtures().join("mobilenet.tflite");
    let exp = format!(
        "models = [\"{}\"]\nengine = [\"openvino\", \"ncnn\", \"litert\"]\nthreads = [1, 2]\nbatch = [1, 2]\n\
         allow_oversubscribe = true\npython = \"{}\"\n\
         [[experiment]]\nname = \"ready\"\nmodels = [\"{0}\"]\nengine = \"litert\"\ntflite_model = \"{}\"\npython = \"{1}\"\n",
        mobilenet().display(),
        common::python::python().display(),
        tflite.display()
    );
    let (code, err, rows) = run(&dir, &exp);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(rows.len(), 13, "{rows:?}");
    for r in &rows {
        let e = r["engine"].as_str();
        let (t, b) = (num(r, "threads"), num(r, "batch"));
        if e == "litert" && r["experiment"] == "e" {
            // No onnx2tf in the test venv: skipped with the install command.
            assert_eq!(r["status"], "skipped", "{r:?}");
            assert!(r["warnings"].contains("onnx2tf"), "{r:?}");
            assert!(r["warnings"].contains("pip install"), "{r:?}");
            continue;
        }
        assert_eq!(r["status"], "ok", "{r:?}");
        assert!(num(r, "iterations") >= 3.0, "{r:?}");
        assert!(num(r, "images_per_s") > 0.0, "{r:?}");
        assert!(num(r, "window_end_s") > num(r, "window_start_s"), "{r:?}");
        let s = &r["peer_settings"];
        match e {
            "openvino" => {
                assert!(r["kernel"].starts_with("openvino 2026."), "{r:?}");
                assert!(s.contains(&format!("INFERENCE_NUM_THREADS={t}")), "{s}");
                assert!(s.contains("NUM_STREAMS=1"), "{s}");
                assert!(s.contains("PERFORMANCE_HINT=LATENCY"), "{s}");
                assert!(s.contains("INFERENCE_PRECISION_HINT=f32"), "{s}");
                assert!(s.contains("runtime_precision=f32:"), "{s}");
                assert!(!s.contains("bf16") && !s.contains("f16:"), "{s}");
                assert!(s.contains(&format!("input=input [{b}, 3, 64, 64]")), "{s}");
            }
            "ncnn" => {
                assert!(r["kernel"].starts_with("ncnn 1.0."), "{r:?}");
                assert!(s.contains(&format!("num_threads={t}")), "{s}");
                assert!(s.contains("use_fp16_storage=false"), "{s}");
                assert!(s.contains("use_fp16_arithmetic=false"), "{s}");
                assert!(s.contains("use_bf16_storage=false"), "{s}");
                assert!(s.contains("conversion=converted by pnnx 2026"), "{s}");
                assert!(s.contains("checked against onnxruntime"), "{s}");
                assert_eq!(
                    s.contains("runs_per_batch=2 (no batch dimension"),
                    b == 2.0,
                    "{s}"
                );
            }
            _ => {
                assert!(r["kernel"].starts_with("litert 2.3.0 XNNPACK"), "{r:?}");
                assert!(s.contains("xnnpack=whole graph"), "{s}");
                assert!(s.contains("tensor_types=float32:"), "{s}");
                assert!(!s.contains("float16"), "{s}");
                assert!(s.contains("named in the suite; not checked"), "{s}");
            }
        }
    }
    // ncnn's model was converted once, into the cache beside the results.
    let cache = dir.join("out/engines/peer-models");
    let conv: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("ncnn/conversion.json"))
        .collect();
    assert_eq!(conv.len(), 1, "{conv:?}");
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&conv[0]).unwrap()).unwrap();
    assert_eq!(rec["ok"], true, "{rec}");
    assert_eq!(rec["converter"], "pnnx", "{rec}");
    assert!(rec["max_rel_diff"].as_f64().unwrap() < 1e-4, "{rec}");
    let made = std::fs::metadata(&conv[0]).unwrap().modified().unwrap();
    // A second run reuses it.
    let (code, err, rows) = run(&dir, &exp);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(row(&rows, "ncnn", 2, 2)["status"], "ok");
    assert_eq!(
        std::fs::metadata(&conv[0]).unwrap().modified().unwrap(),
        made
    );
    assert_eq!(run_dirs(&dir.join("out")).len(), 2);
}

/// A stand-in for Python: a conversion (`-c PROGRAM TARGET ONNX OUTDIR ...`,
/// TARGET ncnn or litert) touches the model files in OUTDIR and prints
/// `convert`; a measurement (`-c PROGRAM MODEL ...`) prints `driver`.
fn fake_python(dir: &Path, convert: &str, files: &[&str], driver: &str) -> PathBuf {
    let p = dir.join("python");
    let touch: String = files
        .iter()
        .map(|f| format!("touch \"$5/{f}\"; "))
        .collect();
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\ncase \"$3\" in\n  ncnn|litert) {touch}cat '{1}' ;;\n  *) cat '{0}' ;;\nesac\n",
            fixtures().join(driver).display(),
            fixtures().join(convert).display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn captured_driver_output_becomes_rows_for_each_engine() {
    let dir = common::cli::tmpdir("engines-captured");
    let onnx = dir.join("net.onnx");
    std::fs::copy(mobilenet(), &onnx).unwrap();
    for (engine, convert, files, driver) in [
        (
            "litert",
            "convert_litert.jsonl",
            &["model.tflite"][..],
            "litert_driver.jsonl",
        ),
        (
            "ncnn",
            "convert_ncnn.jsonl",
            &["model.ncnn.param", "model.ncnn.bin"][..],
            "ncnn_driver.jsonl",
        ),
        (
            "openvino",
            "convert_ncnn.jsonl",
            &[][..],
            "openvino_driver.jsonl",
        ),
    ] {
        let d = dir.join(engine);
        std::fs::create_dir_all(&d).unwrap();
        let py = fake_python(&d, convert, files, driver);
        let (code, err, rows) = run(
            &d,
            &format!(
                "models = [\"{}\"]\nengine = \"{engine}\"\nthreads = 2\nbatch = 2\nallow_oversubscribe = true\npython = \"{}\"\n",
                onnx.display(),
                py.display()
            ),
        );
        assert_eq!(code, Some(0), "{err}");
        let r = row(&rows, engine, 2, 2);
        assert_eq!(r["status"], "ok", "{r:?}");
        assert_eq!(num(r, "iterations"), 3.0, "{r:?}");
        let s = &r["peer_settings"];
        match engine {
            "litert" => {
                assert_eq!(r["kernel"], "litert 2.3.0 XNNPACK");
                assert!(s.contains("conversion=converted by onnx2tf 1.29.24, checked against onnxruntime 1.32.0: max |diff| 9.54e-7 = 2.75e-7"), "{s}");
                assert!(s.contains("xnnpack=whole graph"), "{s}");
                // Three batches of 2 images in the captured latencies.
                let lat = [
                    0.00020421699991857167,
                    0.00016058599976531696,
                    0.00015764800082251895,
                ];
                let want = 6.0 / lat.iter().sum::<f64>();
                assert!((num(r, "images_per_s") - want).abs() < 1e-6 * want, "{r:?}");
            }
            "ncnn" => {
                assert_eq!(r["kernel"], "ncnn 1.0.20261020");
                assert!(s.contains("runs_per_batch=2 (no batch dimension"), "{s}");
                assert!(s.contains("use_fp16_storage=false"), "{s}");
            }
            _ => {
                assert_eq!(r["kernel"], "openvino 2026.4.1 CPU");
                assert!(s.contains("INFERENCE_PRECISION_HINT=f32"), "{s}");
                assert!(s.starts_with(&format!("model={}", onnx.display())), "{s}");
            }
        }
    }
}

#[test]
fn a_conversion_that_changes_the_numbers_fails_its_points() {
    let dir = common::cli::tmpdir("engines-diff");
    let bad = dir.join("convert_bad.jsonl");
    std::fs::write(
        &bad,
        std::fs::read_to_string(fixtures().join("convert_ncnn.jsonl"))
            .unwrap()
            .replace(
                "\"max_rel_diff\": 3.431881409553315e-07",
                "\"max_rel_diff\": 0.031",
            ),
    )
    .unwrap();
    let py = fake_python(
        &dir,
        bad.to_str().unwrap(),
        &["model.ncnn.param", "model.ncnn.bin"],
        "ncnn_driver.jsonl",
    );
    let (code, err, rows) = run(
        &dir,
        &format!(
            "models = [\"{}\"]\nengine = [\"joulebench\", \"ncnn\"]\nbatch = [1, 2]\npython = \"{}\"\n",
            mobilenet().display(),
            py.display()
        ),
    );
    assert_eq!(code, Some(0), "{err}");
    for b in [1, 2] {
        let r = row(&rows, "ncnn", 1, b);
        assert_eq!(r["status"], "failed", "{r:?}");
        assert!(
            r["warnings"].contains("differs from onnxruntime's by 3.100e-2"),
            "{r:?}"
        );
        assert_eq!(row(&rows, "joulebench", 1, b)["status"], "ok");
    }
    // The second point reads the cached verdict.
    assert!(rows
        .iter()
        .any(|r| r["engine"] == "ncnn" && r["warnings"].contains("delete that folder")));
}

#[test]
fn missing_packages_skip_their_points_with_the_install_command() {
    let dir = common::cli::tmpdir("engines-missing");
    // Python without its site-packages: none of the engines' modules import.
    let py = dir.join("python");
    std::fs::write(
        &py,
        format!(
            "#!/bin/sh\nexec '{}' -S \"$@\"\n",
            common::python::python().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&py, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, err, rows) = run(
        &dir,
        &format!(
            "models = [\"{}\"]\nengine = [\"joulebench\", \"onnxruntime\", \"openvino\", \"litert\", \"ncnn\"]\npython = \"{}\"\n",
            mobilenet().display(),
            py.display()
        ),
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(row(&rows, "joulebench", 1, 1)["status"], "ok");
    for (e, install) in [
        ("onnxruntime", "pip install onnxruntime numpy"),
        ("openvino", "pip install openvino numpy"),
        // The converters also need onnx, for their private copy of the model.
        ("litert", "pip install onnx onnxruntime numpy"),
        ("ncnn", "pip install onnx onnxruntime numpy"),
    ] {
        let r = row(&rows, e, 1, 1);
        assert_eq!(r["status"], "skipped", "{r:?}");
        assert!(r["warnings"].contains(install), "{e}: {r:?}");
        assert!(r["warnings"].contains("package is missing"), "{e}: {r:?}");
    }
    // Figures leave the unmeasured points out (they were drawn at zero).
    let run_dir = run_dirs(&dir.join("out")).pop().unwrap();
    let o = common::cli::run(&[
        "plot",
        run_dir.to_str().unwrap(),
        "--out",
        dir.join("fig").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("skipped: 4 point(s) not measured"), "{text}");
    // Nothing is cached for a conversion that could not run.
    let cached = std::fs::read_dir(dir.join("out/engines/peer-models"))
        .map(|d| {
            d.flatten()
                .flat_map(|e| std::fs::read_dir(e.path()).unwrap())
                .count()
        })
        .unwrap_or(0);
    assert_eq!(cached, 0);
}

#[test]
fn a_peer_program_that_hangs_is_killed_at_its_time_limit() {
    let dir = common::cli::tmpdir("engines-hang");
    let py = dir.join("python");
    std::fs::write(&py, "#!/bin/sh\necho loading >&2\nsleep 60\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&py, std::fs::Permissions::from_mode(0o755)).unwrap();
    let t = std::time::Instant::now();
    let (code, err, rows) = run(
        &dir,
        &format!(
            "models = [\"{}\"]\nengine = \"openvino\"\npeer_timeout_seconds = 1\nmax_seconds = 0.5\npython = \"{}\"\n",
            mobilenet().display(),
            py.display()
        ),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(t.elapsed().as_secs() < 30, "{:?}", t.elapsed());
    let r = row(&rows, "openvino", 1, 1);
    assert_eq!(r["status"], "failed", "{r:?}");
    assert!(r["warnings"].contains("time limit of 1.5 s"), "{r:?}");
    assert!(r["warnings"].contains("loading"), "{r:?}");
}

#[test]
fn the_estimate_counts_the_peer_programs_cpu_time() {
    let dir = common::cli::tmpdir("engines-estimate");
    // 1 W per busy core and no idle watts: energy_j is the CPU seconds in the window.
    let (code, err, rows) = run(
        &dir,
        &format!(
            "models = [\"{}\"]\nengine = \"openvino\"\nmin_seconds = 0.5\npython = \"{}\"\n\
             power = {{ source = \"estimate\", idle_watts = 0, core_watts = 1, idle_seconds = 0 }}\n",
            mobilenet().display(),
            common::python::python().display()
        ),
    );
    assert_eq!(code, Some(0), "{err}");
    let r = row(&rows, "openvino", 1, 1);
    assert_eq!(r["status"], "ok", "{r:?}");
    assert_eq!(r["power_estimated"], "true", "{r:?}");
    let window = num(r, "window_end_s") - num(r, "window_start_s");
    let busy = num(r, "energy_j") / window;
    // One inference thread busy through the window (two cores at most).
    assert!((0.6..=2.2).contains(&busy), "{busy} cores busy: {r:?}");
}

#[test]
fn a_missing_converter_skips_with_its_install_commands() {
    let dir = common::cli::tmpdir("engines-no-onnx2tf");
    let py = fake_python(
        &dir,
        "convert_litert_missing.jsonl",
        &[],
        "litert_driver.jsonl",
    );
    let (code, err, rows) = run(
        &dir,
        &format!(
            "models = [\"{}\"]\nengine = [\"litert\", \"tflite\"]\npython = \"{}\"\n",
            mobilenet().display(),
            py.display()
        ),
    );
    assert_eq!(code, Some(0), "{err}");
    // TFLite's benchmark_model without a tflite_model runs the same conversion.
    for e in ["litert", "tflite"] {
        let r = row(&rows, e, 1, 1);
        assert_eq!(r["status"], "skipped", "{r:?}");
        assert!(
            r["warnings"].contains("pip install --no-deps onnx2tf==1.29.24"),
            "{r:?}"
        );
    }
}

/// onnx2tf overwrites the file it is given with its simplified model; the
/// converters must work on a private copy and leave the user's folder as it
/// was. A stand-in onnx2tf that does exactly that clobbering proves it.
#[test]
fn converters_leave_the_users_model_untouched() {
    let dir = common::cli::tmpdir("engines-private-copy");
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    let model = models.join("m.onnx");
    std::fs::copy(mobilenet(), &model).unwrap();
    let before = std::fs::read(&model).unwrap();
    let fake = dir.join("fake/onnx2tf");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(
        fake.join("__init__.py"),
        "import sys\n\
         def main():\n    \
             path = sys.argv[sys.argv.index('-i') + 1]\n    \
             open(path, 'wb').write(b'clobbered by the stand-in onnx2tf')\n    \
             open(path + '.beside', 'w').write('x')\n    \
             sys.exit(1)\n",
    )
    .unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = std::process::Command::new(common::python::python())
        .args(["scripts/peers/convert_model.py", "litert"])
        .arg(&model)
        .arg(&out)
        .args(["--chw", "3,64,64"])
        .env("PYTHONPATH", dir.join("fake"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The stand-in fails, so the conversion is reported as failed ...
    assert!(stdout.contains("onnx2tf exited with 1"), "{stdout}");
    // ... but the user's model and its folder are as they were.
    assert!(
        std::fs::read(&model).unwrap() == before,
        "the model was modified"
    );
    let names: Vec<_> = std::fs::read_dir(&models)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("m.onnx")]);
    // The private copy is gone too.
    assert!(!out.join("source.onnx").exists());
}
