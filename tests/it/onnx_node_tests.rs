//! ONNX's own conformance data: every node test shipped in the onnx wheel
//! (onnx/backend/test/data/node/test_*) whose operators are all ones joulebench
//! imports must reproduce output_*.pb within 1e-4 * max(1, |reference|), or be
//! listed with a reason in tests/onnx_node_skips.txt. A listed case that now
//! passes, or a listed name that is not a case, fails the test too.

use crate::common;
use joulebench::engine::onnx::{self, proto, ImportOptions, Tensor, SUPPORTED_OPS};
use joulebench::engine::session::{Session, SessionOptions};
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

fn node_data_dir() -> PathBuf {
    let out = common::python::run(&[
        "-c",
        "import os, onnx.backend.test as t; print(os.path.join(os.path.dirname(t.__file__), 'data', 'node'))",
    ]);
    let d = PathBuf::from(out.trim());
    assert!(
        d.is_dir(),
        "{} is missing: install the onnx version in scripts/requirements-test.txt, which ships the node tests",
        d.display()
    );
    d
}

fn skips() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx_node_skips.txt");
    let text = std::fs::read_to_string(&path).expect("tests/onnx_node_skips.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("skip line `{l}` is not `test_name: reason`"));
            assert!(!reason.trim().is_empty(), "skip `{name}` gives no reason");
            (name.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

/// Runs one case over all its data sets.
fn run_case(dir: &Path, model: &proto::ModelProto, bytes: &[u8]) -> Result<(), String> {
    let graph = model.graph.as_ref().ok_or("no graph")?;
    let inits: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .filter(|n| !inits.contains(n))
        .collect();
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    sets.sort();
    if sets.is_empty() {
        return Err("no test_data_set".into());
    }
    for set in sets {
        let load = |f: String| onnx::load_tensor(&set.join(f)).map(|(_, t)| t);
        // The first input is the data; the engine takes the rest as constants.
        let mut bind = HashMap::new();
        for (k, name) in inputs.iter().enumerate().skip(1) {
            let t = load(format!("input_{k}.pb")).map_err(|e| e.to_string())?;
            bind.insert(name.to_string(), t);
        }
        let x = load("input_0.pb".into()).map_err(|e| e.to_string())?;
        let want: Tensor = load("output_0.pb".into()).map_err(|e| e.to_string())?;
        let opts = ImportOptions {
            bind,
            ..ImportOptions::default()
        };
        let m = onnx::import_bytes(bytes, &dir.display().to_string(), "node", Some(dir), &opts)
            .map_err(|e| e.to_string())?;
        let batch = *x.dims.first().ok_or("scalar input")?;
        if x.dims != m.input.layout.dims(batch) {
            return Err(format!(
                "input dims {:?} vs model {:?}",
                x.dims, m.input.layout
            ));
        }
        let mut sess = Session::new(
            &m.graph,
            &SessionOptions {
                batch,
                ..SessionOptions::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let xf = x.floats();
        let mut xe = vec![0.0f32; xf.len()];
        m.input.layout.to_engine(&xf, &mut xe);
        let y = sess.run(&xe).map_err(|e| e.to_string())?;
        let mut got = vec![0.0f32; y.len()];
        m.output().layout.from_engine(y, &mut got);
        let dims = m.output().layout.dims(batch);
        if dims != want.dims {
            return Err(format!("output dims {dims:?}, expected {:?}", want.dims));
        }
        for (i, (g, r)) in got.iter().zip(want.floats()).enumerate() {
            let tol = 1e-4 * r.abs().max(1.0);
            if (g - r).abs() > tol || g.is_nan() != r.is_nan() {
                return Err(format!(
                    "{}: element {i} is {g}, expected {r}",
                    set.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn onnx_node_tests_for_every_supported_operator_pass_or_are_listed() {
    let root = node_data_dir();
    let skip = skips();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    cases.sort();
    let mut per_op: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    for dir in cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(bytes) = std::fs::read(dir.join("model.onnx")) else {
            continue;
        };
        let model = proto::ModelProto::decode(bytes.as_slice())
            .unwrap_or_else(|e| panic!("{name}: ONNX's own model does not decode: {e}"));
        let ops: Vec<String> = model
            .graph
            .iter()
            .flat_map(|g| g.node.iter().map(|n| n.op_type.clone()))
            .collect();
        if ops.is_empty() || !ops.iter().all(|o| SUPPORTED_OPS.contains(&o.as_str())) {
            continue;
        }
        seen.push(name.clone());
        let op = ops
            .iter()
            .find(|o| *o != "Constant")
            .unwrap_or(&ops[0])
            .clone();
        let result = run_case(&dir, &model, &bytes);
        let entry = per_op.entry(op).or_default();
        match (result, skip.get(&name)) {
            (Ok(()), None) => entry.0 += 1,
            (Ok(()), Some(_)) => failures.push(format!(
                "{name} passes now: remove it from tests/onnx_node_skips.txt"
            )),
            (Err(_), Some(_)) => entry.1 += 1,
            (Err(e), None) => failures.push(format!("{name}: {e}")),
        }
    }
    for name in skip.keys() {
        if !seen.contains(name) {
            failures.push(format!(
                "tests/onnx_node_skips.txt lists {name}, which is not a node test of a supported operator"
            ));
        }
    }
    let (pass, skipped) = per_op
        .values()
        .fold((0, 0), |(p, s), (a, b)| (p + a, s + b));
    println!(
        "ONNX node tests: {pass} passed, {skipped} skipped (listed), {} cases",
        seen.len()
    );
    for (op, (p, s)) in &per_op {
        println!("  {op:<20} {p:>3} passed {s:>3} skipped");
    }
    // Add, Mul, Concat and Constant have no node test a one-input engine can
    // run (their second operand is a runtime input); the onnxruntime
    // comparisons in tests/onnx_vs_onnxruntime.rs cover them. The shape and
    // generator operators are evaluated at import only (their inputs are
    // constants in real models): the folding tests in src/engine/onnx/fold.rs
    // and the model-zoo models cover them. ReduceLogSumExp's node tests are
    // all float64.
    let covered_elsewhere = [
        "Add",
        "Mul",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Expand",
        "Gather",
        "Range",
        "Shape",
        "Size",
        "ReduceLogSumExp",
    ];
    for op in SUPPORTED_OPS {
        let covered_elsewhere = covered_elsewhere.contains(op);
        if !covered_elsewhere && per_op.get(*op).is_none_or(|(p, _)| *p == 0) {
            failures.push(format!("no node test of {op} passed"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
