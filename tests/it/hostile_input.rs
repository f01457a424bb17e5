//! Hostile input at the command line: sizes that do not fit in memory, FIFOs,
//! devices and symlinks where a file is expected, external data that leaves the
//! model's folder. Each must end with exit 2 and a message naming the file or
//! the size and the limit, quickly, without aborting or blocking.

use crate::common::cli;
use crate::onnx_import::{node, small_model, value_info};
use joulebench::engine::onnx::proto::{self, tensor_proto::DataLocation, StringStringEntryProto};
use prost::Message;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

/// Runs joulebench, killing it after 60 s (a FIFO read would block forever).
fn run_limited(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = cli::bin()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running joulebench");
    while child.try_wait().expect("waiting").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("joulebench {args:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().expect("output"), start.elapsed())
}

/// Exit 2 with every `needles` on stderr.
fn assert_bad_input(args: &[&str], needles: &[&str]) {
    let (out, _) = run_limited(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: `{n}` not in: {err}");
    }
}

fn relu_model(dims: &[i64]) -> Vec<u8> {
    let d: Vec<Option<i64>> = dims.iter().map(|&v| Some(v)).collect();
    let graph = proto::GraphProto {
        name: "relu".into(),
        node: vec![node("Relu", "relu", &["x"], "y", vec![])],
        input: vec![value_info("x", &d)],
        output: vec![value_info("y", &d)],
        ..Default::default()
    };
    proto::ModelProto {
        ir_version: 8,
        opset_import: vec![proto::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

const QUICK: [&str; 4] = ["--iterations", "1", "--no-peak", "--warmup=0"];

fn infer(model: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        "infer".to_string(),
        "--model".into(),
        model.display().to_string(),
    ];
    a.extend(QUICK.iter().map(|s| s.to_string()));
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn an_input_shape_that_cannot_fit_in_memory_is_refused_not_aborted() {
    let d = cli::tmpdir("huge");
    let model = d.join("huge.onnx");
    std::fs::write(&model, relu_model(&[1, 3, 1 << 20, 1 << 20])).unwrap();
    let args = infer(&model, &[]);
    assert_bad_input(
        &strs(&args),
        &["1x3x1048576x1048576", "more than", "available"],
    );
}

#[test]
fn a_batch_that_cannot_fit_in_memory_is_refused() {
    let d = cli::tmpdir("batch");
    let model = d.join("small.onnx");
    std::fs::write(&model, small_model(None, None).0).unwrap();
    let args = infer(&model, &["--batch", "1000000000000"]);
    assert_bad_input(&strs(&args), &["batch 1000000000000", "more than"]);
    // A sane batch still runs.
    let (ok, _) = run_limited(&strs(&infer(&model, &["--batch", "2"])));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn gemm_sizes_and_thread_counts_beyond_the_machine_are_refused() {
    let big = [
        "gemm",
        "--m",
        "1000000",
        "--n",
        "1000000",
        "--k",
        "1000000",
        "--no-peak",
    ];
    assert_bad_input(&big, &["gemm --m 1000000", "more than", "smaller"]);
    let threads = [
        "gemm",
        "--m",
        "8",
        "--n",
        "8",
        "--k",
        "8",
        "--threads",
        "100000",
        "--no-peak",
    ];
    assert_bad_input(&threads, &["100000", "threads"]);
}

#[test]
fn fifos_devices_and_links_to_them_are_refused_as_models_without_blocking() {
    let d = cli::tmpdir("fifo");
    let fifo = d.join("model.onnx");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let (out, took) = run_limited(&strs(&infer(&fifo, &[])));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("FIFO") && err.contains("model.onnx"), "{err}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    let zero = d.join("zero.onnx");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    assert_bad_input(
        &strs(&infer(&zero, &[])),
        &["character device", "zero.onnx"],
    );
    assert_bad_input(&strs(&infer(&d, &[])), &["directory"]);
}

#[test]
fn external_data_behind_a_symlink_out_of_the_models_folder_is_refused() {
    let d = cli::tmpdir("ext");
    let folder = d.join("model");
    std::fs::create_dir_all(&folder).unwrap();
    // 5x6 weights would be read from the secret file through the link.
    let secret = d.join("secret.bin");
    std::fs::write(&secret, vec![0u8; 4 * 6 * 4 * 3 * 3]).unwrap();
    std::os::unix::fs::symlink(&secret, folder.join("link_out")).unwrap();
    let (bytes, _, _) = small_model(Some(1), None);
    let mut m = proto::ModelProto::decode(bytes.as_slice()).unwrap();
    let graph = m.graph.as_mut().unwrap();
    let w = graph
        .initializer
        .iter_mut()
        .find(|t| t.name == "w")
        .unwrap();
    w.raw_data.clear();
    w.data_location = DataLocation::External as i32;
    w.external_data = vec![StringStringEntryProto {
        key: "location".into(),
        value: "link_out".into(),
    }];
    let model = folder.join("m.onnx");
    std::fs::write(&model, m.encode_to_vec()).unwrap();
    assert_bad_input(&strs(&infer(&model, &[])), &["link_out", "outside"]);
    // The same data inside the folder is read.
    std::fs::remove_file(folder.join("link_out")).unwrap();
    std::fs::copy(&secret, folder.join("link_out")).unwrap();
    let (ok, _) = run_limited(&strs(&infer(&model, &[])));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn infer_output_never_replaces_a_fifo_a_symlink_or_a_device() {
    use std::os::unix::fs::FileTypeExt;
    let d = cli::tmpdir("output");
    let model = Path::new("tiny").to_path_buf();
    let fifo = d.join("out.npy");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let out = fifo.display().to_string();
    assert_bad_input(
        &strs(&infer(&model, &["--output", &out])),
        &["FIFO", "out.npy"],
    );
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    // A symlink to a file of the user's: neither it nor its target changes.
    let kept = d.join("kept.txt");
    std::fs::write(&kept, "mine").unwrap();
    let link = d.join("link.npy");
    std::os::unix::fs::symlink(&kept, &link).unwrap();
    let out = link.display().to_string();
    assert_bad_input(&strs(&infer(&model, &["--output", &out])), &["symlink"]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "mine");
    assert_bad_input(
        &strs(&infer(&model, &["--output", "/dev/full"])),
        &["character device"],
    );
    assert!(std::fs::symlink_metadata("/dev/full")
        .unwrap()
        .file_type()
        .is_char_device());
    let out = d.join("no-such-dir/out.npy").display().to_string();
    assert_bad_input(
        &strs(&infer(&model, &["--output", &out])),
        &["does not exist"],
    );
    // A regular file or a new path is written.
    let good = d.join("good.npy");
    let out = good.display().to_string();
    let (o, _) = run_limited(&strs(&infer(&model, &["--output", &out])));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::metadata(&good).unwrap().len() > 0);
}
