//! The importer on models written here with the generated protobuf types:
//! numerics against the f64 reference, unsupported operators named before any
//! work, fixed and symbolic batches, and corrupt files that must give errors,
//! never panics (every truncation, and random byte mutations by proptest).

use crate::common;
use crate::common::reference::forward;
use crate::common::Rng;
use joulebench::engine::onnx::proto::{
    self, tensor_proto::DataType, tensor_shape_proto::dimension::Value as Dim,
    type_proto::Value as TypeValue, AttributeProto, NodeProto, TensorProto, ValueInfoProto,
};
use joulebench::engine::onnx::{self, ImportOptions, OnnxError};
use joulebench::engine::session::{Session, SessionOptions};
use proptest::prelude::*;
use prost::Message;

pub(crate) fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let shape = proto::TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| proto::tensor_shape_proto::Dimension {
                value: Some(match d {
                    Some(v) => Dim::DimValue(*v),
                    None => Dim::DimParam("N".into()),
                }),
                ..Default::default()
            })
            .collect(),
    };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(proto::TypeProto {
            value: Some(TypeValue::TensorType(proto::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(shape),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn tensor(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    // raw_data, as exporters write it.
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: proto::attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub(crate) fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

/// Conv 3x3 (asymmetric pads, stride 2) -> Relu -> GlobalAveragePool ->
/// Flatten -> Gemm, on a `batch x 4 x 9 x 8` input (`None`: symbolic batch).
pub(crate) fn small_model(
    batch: Option<i64>,
    extra: Option<NodeProto>,
) -> (Vec<u8>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(7);
    let w = rng.signed_vec(6 * 4 * 3 * 3);
    let fc = rng.signed_vec(5 * 6);
    let mut nodes = vec![
        node(
            "Conv",
            "conv",
            &["x", "w"],
            "c",
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("pads", &[1, 0, 2, 1]),
                ints("strides", &[2, 2]),
            ],
        ),
        node("Relu", "relu", &["c"], "r", vec![]),
        node("GlobalAveragePool", "gap", &["r"], "g", vec![]),
        node("Flatten", "flat", &["g"], "f", vec![]),
        node(
            "Gemm",
            "fc",
            &["f", "fcw"],
            "y",
            vec![AttributeProto {
                name: "transB".into(),
                r#type: proto::attribute_proto::AttributeType::Int as i32,
                i: 1,
                ..Default::default()
            }],
        ),
    ];
    if let Some(n) = extra {
        nodes.insert(2, n);
    }
    let graph = proto::GraphProto {
        name: "small".into(),
        node: nodes,
        initializer: vec![
            tensor("w", &[6, 4, 3, 3], w.clone()),
            tensor("fcw", &[5, 6], fc.clone()),
        ],
        input: vec![value_info("x", &[batch, Some(4), Some(9), Some(8)])],
        output: vec![value_info("y", &[batch, Some(5)])],
        ..Default::default()
    };
    let model = proto::ModelProto {
        ir_version: 8,
        opset_import: vec![proto::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    };
    (model.encode_to_vec(), w, fc)
}

fn import(bytes: &[u8]) -> Result<onnx::Model, OnnxError> {
    onnx::import_bytes(
        bytes,
        "small.onnx",
        "small",
        None,
        &ImportOptions::default(),
    )
}

#[test]
fn an_imported_model_matches_the_f64_reference_at_any_batch() {
    let (bytes, _, _) = small_model(None, None);
    let m = import(&bytes).unwrap();
    assert_eq!(m.input.batch, None);
    let mut rng = Rng::new(3);
    for batch in [1, 3] {
        let x = rng.signed_vec(batch * 4 * 9 * 8);
        let mut xe = vec![0.0; x.len()];
        m.input.layout.to_engine(&x, &mut xe);
        let want = forward(&m.graph, &xe, batch);
        let mut s = Session::new(
            &m.graph,
            &SessionOptions {
                batch,
                ..Default::default()
            },
        )
        .unwrap();
        let got = s.run(&xe).unwrap();
        assert_eq!(got.len(), batch * 5);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() <= 1e-4 * w.abs().max(1.0),
                "{g} vs {w}"
            );
        }
    }
}

#[test]
fn asymmetric_pads_are_read_in_onnx_order() {
    // ONNX pads are [top, left, bottom, right]. On 9x8 with a 3x3 window and
    // stride 2 they give (9+3-3)/2+1 = 5 rows and (8+1-3)/2+1 = 4 columns;
    // a misread order can give the same extent, so check the window itself.
    let (bytes, _, _) = small_model(None, None);
    let m = import(&bytes).unwrap();
    let conv = m
        .graph
        .nodes
        .iter()
        .find_map(|n| match &n.op {
            joulebench::engine::graph::Op::Conv(c) => Some(c.window),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (conv.pad_top, conv.pad_left, conv.pad_bottom, conv.pad_right),
        (1, 0, 2, 1)
    );
    assert_eq!(m.graph.shapes().unwrap()[1].to_string(), "5x4x6");
}

#[test]
fn a_fixed_batch_is_recorded() {
    let (bytes, _, _) = small_model(Some(2), None);
    assert_eq!(import(&bytes).unwrap().input.batch, Some(2));
}

#[test]
fn an_unsupported_operator_is_named_with_its_node_and_position() {
    let (bytes, _, _) = small_model(
        None,
        Some(node("Einsum", "the_einsum", &["r"], "r2", vec![])),
    );
    match import(&bytes) {
        Err(OnnxError::Nodes { problems, .. }) => {
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].index, 2);
            assert_eq!(problems[0].name, "the_einsum");
            assert_eq!(problems[0].op_type, "Einsum");
            let msg = import(&bytes).unwrap_err().to_string();
            assert!(
                msg.contains("small.onnx") && msg.contains("node 2 `the_einsum` (Einsum)"),
                "{msg}"
            );
        }
        other => panic!("expected an unsupported-node error, got {other:?}"),
    }
    // Lenient import (inspect) reports it and carries on.
    let m = onnx::import_bytes(
        &bytes,
        "small.onnx",
        "small",
        None,
        &ImportOptions {
            lenient: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(m.problems.len(), 1);
}

#[test]
fn the_cli_exits_2_on_unsupported_and_corrupt_models() {
    let dir = common::cli::tmpdir("onnx-import-cli");
    let (bytes, _, _) = small_model(
        None,
        Some(node("Einsum", "the_einsum", &["r"], "r2", vec![])),
    );
    let unsupported = dir.join("einsum.onnx");
    std::fs::write(&unsupported, &bytes).unwrap();
    let corrupt = dir.join("corrupt.onnx");
    std::fs::write(&corrupt, &bytes[..bytes.len() / 2]).unwrap();
    for (file, needle) in [(&unsupported, "Einsum"), (&corrupt, "corrupt.onnx")] {
        let out = common::cli::bin()
            .args(["infer", "--iterations", "1", "--no-peak", "--model"])
            .arg(file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", file.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
    }
    // inspect lists the unsupported node and still succeeds.
    let out = common::cli::bin()
        .arg("inspect")
        .arg(&unsupported)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("UNSUPPORTED: operator `Einsum`"));
    // Its JSON says the totals leave the node out.
    let json = |file: &std::path::Path| {
        let out = common::cli::bin()
            .args(["inspect", "--format", "json"])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = json(&unsupported);
    assert_eq!(v["totals_partial"], true);
    assert_eq!(v["unsupported"].as_array().map(Vec::len), Some(1));
    // A file that decodes but cannot be imported as a whole (a second data
    // input) still gets a report: its operators and why.
    let mut m = proto::ModelProto::decode(bytes.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let mut second = g.input[0].clone();
    second.name = "second".into();
    g.input.push(second);
    let two = dir.join("two_inputs.onnx");
    std::fs::write(&two, m.encode_to_vec()).unwrap();
    let v = json(&two);
    assert_eq!(v["supported"], false);
    assert!(v["error"].as_str().unwrap().contains("2 inputs"), "{v}");
    assert_eq!(v["ops"]["Conv"], 1);
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let (bytes, _, _) = small_model(None, None);
    for len in 0..bytes.len() {
        assert!(
            import(&bytes[..len]).is_err(),
            "truncated to {len} bytes imported"
        );
    }
}

#[test]
fn external_data_outside_the_model_directory_is_refused() {
    let dir = common::cli::tmpdir("onnx-external");
    let (bytes, _, _) = small_model(None, None);
    let mut m = proto::ModelProto::decode(bytes.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let t = &mut g.initializer[1];
    t.raw_data.clear();
    t.data_location = proto::tensor_proto::DataLocation::External as i32;
    t.external_data = vec![proto::StringStringEntryProto {
        key: "location".into(),
        value: "../outside.bin".into(),
    }];
    let path = dir.join("ext.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let e = onnx::load(&path, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("fcw") && e.contains("refused"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn mutated_bytes_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let (mut bytes, _, _) = small_model(None, None);
        for (pos, val) in flips {
            let i = pos % bytes.len();
            bytes[i] = val;
        }
        // Ok or Err are both fine; a panic fails the test. A model that still
        // imports must also compile or fail cleanly.
        if let Ok(m) = import(&bytes) {
            if let Ok(mut s) = Session::new(&m.graph, &SessionOptions::default()) {
                let x = vec![0.5f32; s.input_len()];
                let _ = s.run(&x);
            }
        }
    }
}
