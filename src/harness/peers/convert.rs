//! The suite's ONNX file converted once for ncnn (pnnx) and LiteRT (onnx2tf)
//! into a cache beside the results (`<out>/<suite>/peer-models/`), checked
//! against onnxruntime on one seeded input before any point runs on it. A
//! conversion whose output differs from onnxruntime's by more than
//! [`TOLERANCE`] of its largest value fails every point that needs it, with
//! the difference in the message; that verdict is cached too (delete the
//! folder to convert again). The cache is keyed by the ONNX file's SHA-256;
//! `conversion.json` (written by joulebench) records the converter and its version.

use super::process::{run_program, Limits, NoWindow};
use super::python::{self, error_event};
use super::PeerFailure;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest |converted - onnxruntime| allowed, relative to the largest
/// |onnxruntime output|: fp32 conversions agree to about 1e-6; a wrong layout
/// or a dropped layer differs by order 1.
pub const TOLERANCE: f64 = 1e-3;

/// Which engine's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Ncnn,
    Litert,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Ncnn => "ncnn",
            Target::Litert => "litert",
        }
    }

    /// The files the converter leaves; the first is the one the engine opens.
    fn files(self) -> &'static [&'static str] {
        match self {
            Target::Ncnn => &["model.ncnn.param", "model.ncnn.bin"],
            Target::Litert => &["model.tflite"],
        }
    }
}

/// A converted model, ready to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Converted {
    /// The file the engine opens.
    pub model: PathBuf,
    /// Converter, version and the check's result, for the row's settings.
    pub note: String,
}

/// conversion.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    target: String,
    source: String,
    source_sha256: String,
    converter: String,
    converter_version: String,
    reference: String,
    max_abs_diff: f64,
    max_rel_diff: f64,
    outputs: u64,
    ok: bool,
    message: String,
}

impl Record {
    fn note(&self) -> String {
        format!(
            "converted by {} {}, checked against {}: max |diff| {:.2e} = {:.2e} of the largest output",
            self.converter,
            self.converter_version,
            self.reference,
            self.max_abs_diff,
            self.max_rel_diff
        )
    }
}

/// One conversion to make or find.
pub struct Request<'a> {
    pub target: Target,
    pub onnx: &'a Path,
    /// `<out>/<suite>/peer-models`.
    pub cache_root: &'a Path,
    pub chw: (usize, usize, usize),
    pub python: &'a str,
    pub limits: Limits,
}

fn failed(what: impl std::fmt::Display) -> PeerFailure {
    PeerFailure::Failed(what.to_string())
}

/// SHA-256 of a regular file, streamed.
fn sha256_file(path: &Path) -> Result<String, PeerFailure> {
    let meta = std::fs::metadata(path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(failed(format!(
            "{} is not a regular file; name an ONNX file",
            path.display()
        )));
    }
    let mut f =
        std::fs::File::open(path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| failed(format!("reading {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A folder name from the model's file name: letters, digits, `-`, `_`, `.`.
fn stem(path: &Path) -> String {
    let s: String = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() {
        "model".into()
    } else {
        s
    }
}

/// The files of `dir` the record names, each a regular file (not a symlink).
fn model_in(dir: &Path, target: Target) -> Option<PathBuf> {
    target
        .files()
        .iter()
        .all(|f| std::fs::symlink_metadata(dir.join(f)).is_ok_and(|m| m.file_type().is_file()))
        .then(|| dir.join(target.files()[0]))
}

/// conversion.json of `dir`, if it is one joulebench wrote for this source.
fn read_record(dir: &Path, target: Target, sha: &str) -> Option<Record> {
    let p = dir.join("conversion.json");
    let meta = std::fs::symlink_metadata(&p).ok()?;
    if !meta.file_type().is_file() || meta.len() > 1 << 20 {
        return None;
    }
    let r: Record = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
    (r.source_sha256 == sha && r.target == target.name()).then_some(r)
}

fn cached(dir: &Path, target: Target, sha: &str) -> Option<Result<Converted, PeerFailure>> {
    let r = read_record(dir, target, sha)?;
    if !r.ok {
        return Some(Err(failed(format!(
            "{} (cached in {}; delete that folder to convert again)",
            r.message,
            dir.display()
        ))));
    }
    let model = model_in(dir, target)?;
    Some(Ok(Converted {
        model,
        note: r.note(),
    }))
}

/// The converted model for `req`, from the cache or made now (`announce` is
/// told before a conversion starts: it can take minutes).
pub fn convert(req: &Request<'_>, announce: &dyn Fn(&str)) -> Result<Converted, PeerFailure> {
    let sha = sha256_file(req.onnx)?;
    let dir = req
        .cache_root
        .join(format!("{}-{}", stem(req.onnx), &sha[..16]))
        .join(req.target.name());
    if let Some(r) = cached(&dir, req.target, &sha) {
        return r;
    }
    let io = |p: &Path, e: std::io::Error| failed(format!("{}: {e}", p.display()));
    let parent = dir.parent().unwrap_or(req.cache_root);
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let tmp = parent.join(format!("{}.tmp-{}", req.target.name(), std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
    announce(&format!(
        "converting {} for {} into {}",
        req.onnx.display(),
        req.target.name(),
        dir.display()
    ));
    let made = run_converter(req, &tmp, &sha);
    let record = match made {
        Ok(r) => r,
        Err(f @ PeerFailure::Unavailable(_)) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(f);
        }
        Err(PeerFailure::Failed(msg)) => Record {
            target: req.target.name().into(),
            source: req.onnx.display().to_string(),
            source_sha256: sha.clone(),
            converter: String::new(),
            converter_version: String::new(),
            reference: String::new(),
            max_abs_diff: f64::NAN,
            max_rel_diff: f64::NAN,
            outputs: 0,
            ok: false,
            message: msg,
        },
    };
    let text = serde_json::to_string_pretty(&record).map_err(failed)?;
    std::fs::write(tmp.join("conversion.json"), text + "\n").map_err(|e| io(&tmp, e))?;
    if dir.exists() {
        // A stale or foreign folder (no valid record for this source): replace it.
        std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| io(&dir, e))?;
    cached(&dir, req.target, &sha).unwrap_or_else(|| {
        Err(failed(format!(
            "the conversion in {} left no usable model",
            dir.display()
        )))
    })
}

/// Runs convert_model.py into `out` and judges its check.
fn run_converter(req: &Request<'_>, out: &Path, sha: &str) -> Result<Record, PeerFailure> {
    let (c, h, w) = req.chw;
    let args = vec![
        "-c".to_string(),
        python::program(python::CONVERT),
        req.target.name().into(),
        req.onnx.display().to_string(),
        out.display().to_string(),
        "--chw".into(),
        format!("{c},{h},{w}"),
        "--timeout".into(),
        format!("{:.0}", req.limits.timeout.as_secs_f64()),
    ];
    let hint = "install Python 3 with the peers' packages (scripts/requirements-peers.txt), and set python = \"/path/to/python\" in the suite or JOULEBENCH_PYTHON";
    let o = run_program(req.python, &args, false, hint, req.limits, &mut NoWindow)?;
    let what = format!("converting for {}", req.target.name());
    let mut event = None;
    for line in o.stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            continue;
        };
        if let Some(f) = error_event(&what, &v) {
            return Err(f);
        }
        if v["event"] == "converted" {
            event = Some(v);
        }
    }
    let v = event.ok_or_else(|| {
        failed(format!(
            "{what}: the converter exited with {} without a result: {}",
            o.code.map_or("a signal".into(), |c| c.to_string()),
            super::process::tail(&o.stderr, 3)
        ))
    })?;
    let text = |k: &str| {
        v[k].as_str()
            .unwrap_or("?")
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect::<String>()
    };
    let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let mut r = Record {
        target: req.target.name().into(),
        source: req.onnx.display().to_string(),
        source_sha256: sha.to_string(),
        converter: text("converter"),
        converter_version: text("converter_version"),
        reference: text("reference"),
        max_abs_diff: num("max_abs_diff"),
        max_rel_diff: num("max_rel_diff"),
        outputs: v["outputs"].as_u64().unwrap_or(0),
        ok: true,
        message: String::new(),
    };
    let problem = if model_in(out, req.target).is_none() {
        Some(format!(
            "the converter did not leave {}",
            req.target.files().join(" and ")
        ))
    } else if v["all_finite"] != true {
        Some("the converted model gives non-finite outputs".to_string())
    } else if r.max_rel_diff.is_nan() || r.max_rel_diff > TOLERANCE {
        Some(format!(
            "the converted model's output differs from onnxruntime's by {:.3e} (max |diff| {:.3e}), more than {TOLERANCE:e} of the largest output",
            r.max_rel_diff, r.max_abs_diff
        ))
    } else if r.outputs == 0 {
        Some("the check compared no outputs".to_string())
    } else {
        None
    };
    if let Some(p) = problem {
        r.ok = false;
        r.message = format!("{what} with {} {}: {p}", r.converter, r.converter_version);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn never() -> bool {
        false
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("jb-convert-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A stand-in Python that prints `event` and writes the model files.
    fn fake_python(dir: &Path, event: &str, files: &[&str]) -> PathBuf {
        let p = dir.join("python");
        let touch: String = files
            .iter()
            .map(|f| format!("touch \"$out/{f}\"\n"))
            .collect();
        // Arguments: -c PROGRAM TARGET ONNX OUT ...
        std::fs::write(
            &p,
            format!("#!/bin/sh\nout=\"$5\"\necho \"$@\" | tail -c 300 > '{}/args'\n{touch}echo '{event}'\n", dir.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn request<'a>(onnx: &'a Path, root: &'a Path, py: &'a str) -> Request<'a> {
        Request {
            target: Target::Ncnn,
            onnx,
            cache_root: root,
            chw: (3, 8, 8),
            python: py,
            limits: Limits::new(Duration::from_secs(20), never),
        }
    }

    #[test]
    fn a_checked_conversion_is_cached_and_reused() {
        let d = tmpdir("ok");
        let onnx = d.join("net.onnx");
        std::fs::write(&onnx, b"onnx bytes").unwrap();
        let py = fake_python(
            &d,
            r#"{"event": "converted", "converter": "pnnx", "converter_version": "2026", "reference": "onnxruntime 1.32", "max_abs_diff": 1e-6, "max_rel_diff": 2e-7, "outputs": 10, "all_finite": true}"#,
            &["model.ncnn.param", "model.ncnn.bin"],
        );
        let root = d.join("peer-models");
        let req = request(&onnx, &root, py.to_str().unwrap());
        let announced = std::cell::Cell::new(0);
        let c = convert(&req, &|_| announced.set(announced.get() + 1)).unwrap();
        assert_eq!(announced.get(), 1);
        assert!(c.model.ends_with("ncnn/model.ncnn.param"), "{c:?}");
        assert!(
            c.model.to_string_lossy().contains("/peer-models/net-"),
            "{c:?}"
        );
        assert!(
            c.note.contains("pnnx 2026") && c.note.contains("2.00e-7"),
            "{c:?}"
        );
        let args = std::fs::read_to_string(d.join("args")).unwrap();
        assert!(args.contains("--chw 3,8,8"), "{args}");
        // The second time nothing runs.
        std::fs::remove_file(&py).unwrap();
        let again = convert(&req, &|_| panic!("converted twice")).unwrap();
        assert_eq!(again, c);
        // A changed source is a new conversion.
        std::fs::write(&onnx, b"other onnx bytes").unwrap();
        let e = convert(&req, &|_| {}).unwrap_err();
        assert!(matches!(e, PeerFailure::Unavailable(_)), "{e}");
    }

    #[test]
    fn a_conversion_that_changes_the_numbers_fails_once_and_stays_failed() {
        let d = tmpdir("diff");
        let onnx = d.join("net.onnx");
        std::fs::write(&onnx, b"onnx").unwrap();
        let py = fake_python(
            &d,
            r#"{"event": "converted", "converter": "pnnx", "converter_version": "1", "reference": "onnxruntime", "max_abs_diff": 0.5, "max_rel_diff": 0.25, "outputs": 10, "all_finite": true}"#,
            &["model.ncnn.param", "model.ncnn.bin"],
        );
        let root = d.join("cache");
        let req = request(&onnx, &root, py.to_str().unwrap());
        let e = convert(&req, &|_| {}).unwrap_err();
        assert!(matches!(e, PeerFailure::Failed(_)), "{e}");
        assert!(e.reason().contains("2.500e-1"), "{e}");
        let e2 = convert(&req, &|_| panic!("converted twice")).unwrap_err();
        assert!(
            e2.reason().contains("2.500e-1") && e2.reason().contains("delete"),
            "{e2}"
        );
    }

    #[test]
    fn missing_files_errors_and_missing_converters_are_told_apart() {
        let d = tmpdir("bad");
        let onnx = d.join("net.onnx");
        std::fs::write(&onnx, b"onnx").unwrap();
        let root = d.join("cache");
        // Claims success but leaves no .bin.
        let py = fake_python(
            &d,
            r#"{"event": "converted", "converter": "pnnx", "max_abs_diff": 0, "max_rel_diff": 0, "outputs": 3, "all_finite": true}"#,
            &["model.ncnn.param"],
        );
        let e = convert(&request(&onnx, &root, py.to_str().unwrap()), &|_| {}).unwrap_err();
        assert!(e.reason().contains("model.ncnn.bin"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
        let py = fake_python(
            &d,
            r#"{"event": "error", "kind": "missing-module", "message": "no pnnx; install with `pip install --no-deps pnnx`"}"#,
            &[],
        );
        let e = convert(&request(&onnx, &root, py.to_str().unwrap()), &|_| {}).unwrap_err();
        assert!(matches!(e, PeerFailure::Unavailable(_)), "{e}");
        assert!(e.reason().contains("pip install --no-deps pnnx"), "{e}");
        // Not cached: nothing is left but the (empty) model folder's parent.
        let left: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .flat_map(|e| std::fs::read_dir(e.unwrap().path()).unwrap())
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // A FIFO is not a model.
        let fifo = d.join("fifo.onnx");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = convert(&request(&fifo, &root, py.to_str().unwrap()), &|_| {}).unwrap_err();
        assert!(e.reason().contains("not a regular file"), "{e}");
    }
}
