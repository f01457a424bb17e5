//! tract (the tract-onnx crate) as an in-process peer engine, behind the
//! cargo feature `tract`. Threads above 1 use tract's multithreaded executor
//! (tract-linalg's `multithread-mm`: a rayon pool that splits matrix
//! multiplications; the rest of the graph runs on the calling thread).

use super::PeerFailure;
use std::path::Path;

/// What the row's `kernel` column says for tract.
pub fn describe(threads: usize) -> String {
    if threads > 1 {
        format!("tract-onnx 0.22 (multithread-mm executor, {threads} threads)")
    } else {
        "tract-onnx 0.22 (single thread)".into()
    }
}

/// Whether this build has the tract engine.
pub const AVAILABLE: bool = cfg!(feature = "tract");

#[cfg(feature = "tract")]
mod imp {
    use super::PeerFailure;
    use std::path::Path;
    use tract_onnx::prelude::*;

    type Plan = TypedSimplePlan<TypedModel>;
    type State = SimpleState<TypedFact, Box<dyn TypedOp>, TypedModel, Arc<Plan>>;

    /// An optimized, runnable tract model for one batch size and thread
    /// count, with its state kept between runs (as an application would).
    pub struct TractModel {
        state: State,
        shape: Vec<usize>,
        input: Arc<Tensor>,
    }

    impl TractModel {
        /// Loads `path` with input `[batch, c, h, w]` (NCHW, as in ONNX).
        pub fn load(path: &Path, shape: &[usize], threads: usize) -> Result<Self, PeerFailure> {
            let fail = |what: &str, e: anyhow::Error| {
                PeerFailure::Failed(format!("tract {what} {}: {e:#}", path.display()))
            };
            let model = tract_onnx::onnx()
                .model_for_path(path)
                .map_err(|e| fail("could not read", e))?
                .with_input_fact(0, f32::fact(shape.iter().copied()).into())
                .map_err(|e| fail("could not set the input shape of", e))?
                .into_optimized()
                .map_err(|e| fail("could not optimize", e))?;
            let options = PlanOptions {
                executor: (threads > 1).then(|| multithread::Executor::multithread(threads)),
                ..PlanOptions::default()
            };
            let plan = SimplePlan::new_with_options(model, &options)
                .map_err(|e| fail("could not plan", e))?;
            let state = SimpleState::new(Arc::new(plan)).map_err(|e| fail("could not start", e))?;
            Ok(TractModel {
                state,
                shape: shape.to_vec(),
                input: Arc::new(Tensor::zero::<f32>(shape).map_err(|e| fail("input for", e))?),
            })
        }

        /// Number of input values (NCHW).
        pub fn input_len(&self) -> usize {
            self.shape.iter().product()
        }

        /// Sets the input used by [`TractModel::run_timed`].
        pub fn set_input(&mut self, x: &[f32]) -> Result<(), PeerFailure> {
            self.input = Arc::new(
                Tensor::from_shape(&self.shape, x)
                    .map_err(|e| PeerFailure::Failed(format!("tract input: {e:#}")))?,
            );
            Ok(())
        }

        /// One inference on the input set before.
        pub fn run_timed(&mut self) -> Result<(), PeerFailure> {
            self.state
                .run(tvec!(self.input.clone().into_tvalue()))
                .map(|_| ())
                .map_err(|e| PeerFailure::Failed(format!("tract inference: {e:#}")))
        }

        /// One inference on `x` (NCHW); the first output, flattened.
        pub fn run(&mut self, x: &[f32]) -> Result<Vec<f32>, PeerFailure> {
            self.set_input(x)?;
            let out = self
                .state
                .run(tvec!(self.input.clone().into_tvalue()))
                .map_err(|e| PeerFailure::Failed(format!("tract inference: {e:#}")))?;
            let view = out[0]
                .to_array_view::<f32>()
                .map_err(|e| PeerFailure::Failed(format!("tract output: {e:#}")))?;
            Ok(view.iter().copied().collect())
        }
    }
}

/// Compiled with and without the feature (unused with it), so that one clippy pass
/// with `--features tract` checks both implementations.
#[cfg_attr(feature = "tract", allow(dead_code))]
mod unavailable {
    use super::PeerFailure;
    use std::path::Path;

    /// Stand-in when the `tract` feature is off: loading says so.
    pub struct TractModel(());

    impl TractModel {
        pub fn load(_path: &Path, _shape: &[usize], _threads: usize) -> Result<Self, PeerFailure> {
            Err(PeerFailure::Unavailable(
                "the tract engine is not compiled in; build joulebench with `--features tract`"
                    .into(),
            ))
        }
        pub fn input_len(&self) -> usize {
            0
        }
        pub fn set_input(&mut self, _x: &[f32]) -> Result<(), PeerFailure> {
            Ok(())
        }
        pub fn run_timed(&mut self) -> Result<(), PeerFailure> {
            Ok(())
        }
        pub fn run(&mut self, _x: &[f32]) -> Result<Vec<f32>, PeerFailure> {
            Ok(Vec::new())
        }
    }
}

#[cfg(feature = "tract")]
pub use imp::TractModel;
#[cfg(not(feature = "tract"))]
pub use unavailable::TractModel;

/// The model file tract reads: only ONNX files.
pub fn onnx_path<'a>(spec: &'a str, model: &str) -> Result<&'a Path, PeerFailure> {
    if crate::harness::model_source::is_onnx(spec) {
        Ok(Path::new(spec))
    } else {
        Err(PeerFailure::Unavailable(format!(
            "the peer engines run ONNX files (or converted ones); `{model}` is a built-in model (export it, e.g. with scripts/make_onnx_models.py)"
        )))
    }
}
