//! Which model file a command engine runs for a point: the suite's ONNX file
//! (onnxruntime, OpenVINO), a ready file the suite names (`tflite_model`,
//! `armnn_model`, `ncnn_model`), or the ONNX file converted for the engine
//! (convert.rs: pnnx for ncnn, onnx2tf for LiteRT, TFLite and ArmNN).

use super::convert::{self, Request, Target};
use super::process::Limits;
use super::tract_engine::onnx_path;
use super::{Engine, PeerConfig, PeerFailure};
use std::path::{Path, PathBuf};

/// The file and what the row says about where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerModel {
    pub path: PathBuf,
    /// `model=...` and, for a conversion, its converter and check.
    pub settings: Vec<(String, String)>,
}

/// Where a point's model comes from.
pub struct Source<'a> {
    /// The suite's model as a path (ONNX) or a built-in name.
    pub spec: &'a str,
    /// The model as the suite names it, for messages.
    pub model: &'a str,
    /// The image input [C, H, W] joulebench read from the model, if any.
    pub chw: Option<(usize, usize, usize)>,
    /// Where conversions are cached (`<out>/<suite>/peer-models`).
    pub cache_root: &'a Path,
    pub python: &'a str,
    /// For a conversion.
    pub limits: Limits,
}

fn ready(engine: Engine, cfg: &PeerConfig) -> Option<PathBuf> {
    match engine {
        Engine::Litert | Engine::Tflite => cfg.tflite_model.clone(),
        Engine::Armnn => cfg.armnn_model().cloned(),
        Engine::Ncnn => cfg.ncnn_model.clone(),
        _ => None,
    }
}

/// The model `engine` runs; a conversion is announced through `announce`.
pub fn model_for(
    engine: Engine,
    cfg: &PeerConfig,
    src: &Source<'_>,
    announce: &dyn Fn(&str),
) -> Result<PeerModel, PeerFailure> {
    if let Some(p) = ready(engine, cfg) {
        return Ok(PeerModel {
            settings: vec![(
                "model".into(),
                format!(
                    "{} (named in the suite; not checked against onnxruntime)",
                    p.display()
                ),
            )],
            path: p,
        });
    }
    let onnx = onnx_path(src.spec, src.model)?;
    let target = match engine {
        Engine::Ncnn => Target::Ncnn,
        Engine::Litert | Engine::Tflite | Engine::Armnn => Target::Litert,
        _ => {
            return Ok(PeerModel {
                path: onnx.to_path_buf(),
                settings: vec![("model".into(), onnx.display().to_string())],
            })
        }
    };
    let chw = src.chw.ok_or_else(|| {
        PeerFailure::Failed(format!(
            "converting {} for {engine} needs its [N, C, H, W] image input, which joulebench could not read",
            onnx.display()
        ))
    })?;
    let c = convert::convert(
        &Request {
            target,
            onnx,
            cache_root: src.cache_root,
            chw,
            python: src.python,
            limits: src.limits,
        },
        announce,
    )?;
    Ok(PeerModel {
        settings: vec![
            ("model".into(), c.model.display().to_string()),
            ("conversion".into(), c.note),
        ],
        path: c.model,
    })
}
