//! The integration tests as one binary (one link instead of one per file), one module per
//! area. `steady_state_alloc` stays a binary of its own: it installs a counting global
//! allocator. A new test file goes here as a module: with `autotests = false` cargo
//! builds nothing else under tests/, and `no_stray_test_files` fails on one left there.

mod common;
mod synthetic;

mod cli_compare;
mod cli_gemm;
mod cli_infer;
mod cli_modes;
mod cli_plot;
mod cli_power;
mod cli_run;
mod cli_tune;
mod engine_layers;
mod gemm_reference;
mod hostile_input;
mod models_zoo;
mod old_runs;
mod onnx_import;
mod onnx_node_tests;
mod onnx_vs_onnxruntime;
mod onnx_zoo_light;
mod peer_engines;
mod peers;
mod power_implausible;
mod power_sources;
mod suite_tuning;
mod suites_shipped;

/// With `autotests = false` a test file dropped into tests/ would never be built: the only
/// files there are this binary's directory and the allocation test.
#[test]
fn no_stray_test_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let stray: Vec<String> = std::fs::read_dir(&dir)
        .expect("reading tests/")
        .map(|e| {
            e.expect("a tests/ entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".rs") && n != "steady_state_alloc.rs")
        .collect();
    assert!(
        stray.is_empty(),
        "{stray:?} in tests/ would not be built: move them to tests/it/ and add a `mod` line to \
         tests/it/main.rs"
    );
}
