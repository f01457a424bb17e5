//! An inference session: a graph compiled for one kernel, blocking, thread
//! count and batch size — the graph passes run (padding and the layers after a
//! GEMM folded in), weights packed, activation buffers planned — and run with
//! no allocation after the first inference.

mod compile;
mod conv;
mod exec;

use super::conv::{winograd, ConvAlgo, ConvChoice};
use super::gemm::{AlignedBuf, CacheConfig, Gemm, Kernel, KernelKind, ParallelLoop};
use super::graph::{passes, Graph, Op, Shape, ValueId};
use super::simd::Isa;
use super::{plan, EngineError};
use compile::{Kind, Step};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// How to build a session. Defaults: auto kernel and blocking, one thread,
/// batch 1, fusion on, algorithm chosen per layer.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub batch: usize,
    pub threads: usize,
    pub kernel: Option<KernelKind>,
    pub mc: Option<usize>,
    pub nc: Option<usize>,
    pub kc: Option<usize>,
    pub parallel: ParallelLoop,
    /// Run the graph passes (padding and following layers folded in).
    pub fusion: bool,
    pub conv: ConvChoice,
    /// Per-layer algorithm overrides by node name.
    pub conv_overrides: HashMap<String, ConvAlgo>,
    /// Per-layer GEMM blocking by node name (from tuning); other layers use
    /// the session's `mc`, `nc`, `kc`.
    pub layer_cache: HashMap<String, CacheConfig>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            batch: 1,
            threads: 1,
            kernel: None,
            mc: None,
            nc: None,
            kc: None,
            parallel: ParallelLoop::Auto,
            fusion: true,
            conv: ConvChoice::Auto,
            conv_overrides: HashMap::new(),
            layer_cache: HashMap::new(),
        }
    }
}

/// One layer as compiled, for profiles and listings.
#[derive(Clone, Debug, Serialize)]
pub struct LayerInfo {
    pub name: String,
    pub op: String,
    pub algorithm: String,
    pub output: String,
    pub gflop_per_image: f64,
    /// The layer's own GEMM blocking (`mc=.. nc=.. kc=..`), empty when it
    /// uses the session's.
    pub blocking: String,
}

/// A compiled, runnable model.
pub struct Session {
    graph_name: String,
    steps: Vec<Step>,
    /// Values per item of every storage id.
    sizes: Vec<usize>,
    input_dims: Vec<usize>,
    output_dims: Vec<Vec<usize>>,
    buf_of: Vec<usize>,
    buf_per_image: Vec<usize>,
    /// Activation buffers, 64-byte aligned so every 16-float C tile row of a
    /// GEMM writing into them is one cache line (one prefetch, no split stores).
    bufs: Vec<AlignedBuf>,
    /// Explicit im2col and transposed-convolution column scratch.
    scratch: Vec<f32>,
    scratch_per_image: usize,
    /// One single-threaded GEMM and scratch per thread, for Winograd layers.
    wino: Vec<Mutex<winograd::Worker>>,
    gemm: Gemm,
    isa: Isa,
    /// The session's blocking (layers without their own run with it).
    cache: CacheConfig,
    /// Items per run as the caller counts them.
    batch: usize,
    /// Items the graph runs per call: `batch`, or 1 when the graph fixes
    /// its batch inside its dims.
    repeat: usize,
    fixed_batch: Option<usize>,
    input: ValueId,
    outputs: Vec<ValueId>,
    /// Constant values and their data, copied into their buffers per item.
    constants: Vec<(ValueId, Vec<f32>)>,
    flops_per_image: f64,
    profile: Option<Vec<f64>>,
}

impl Session {
    /// Compiles `graph` with `opts`.
    pub fn new(graph: &Graph, opts: &SessionOptions) -> Result<Session, EngineError> {
        if opts.batch == 0 {
            return Err(EngineError::param("batch", "must be at least 1"));
        }
        let kernel = match opts.kernel {
            Some(k) => Kernel::get(k)?,
            None => Kernel::from_env()?,
        };
        let cache =
            CacheConfig::auto(kernel.mr, kernel.nr).with_overrides(opts.mc, opts.nc, opts.kc);
        let gemm = Gemm::new(kernel, cache, opts.threads, opts.parallel)?;
        let cache = gemm.cache();
        let named = opts
            .conv_overrides
            .keys()
            .map(|n| (n, "conv override"))
            .chain(opts.layer_cache.keys().map(|n| (n, "layer blocking")));
        for (name, what) in named {
            if !graph
                .nodes
                .iter()
                .any(|n| &n.name == name && matches!(n.op, Op::Conv(_)))
            {
                return Err(EngineError::param(
                    what,
                    format!("no convolution named `{name}` in model {}", graph.name),
                ));
            }
        }
        let flops_per_image = graph.flops_per_image()?;
        let optimized;
        let g = if opts.fusion {
            optimized = passes::optimize(graph)?;
            &optimized
        } else {
            graph
        };
        let compiled = compile::compile(g, opts, &gemm, cache)?;
        let wino_scratch = compiled
            .steps
            .iter()
            .filter_map(|s| match &s.kind {
                Kind::Conv(c) => c
                    .algo
                    .winograd()
                    .map(|v| winograd::scratch_len(v, s.in_dims[0][3], c.cout, kernel.mr)),
                _ => None,
            })
            .max();
        let mut wino = Vec::new();
        if let Some(len) = wino_scratch {
            for _ in 0..opts.threads {
                let g = Gemm::new(kernel, gemm.cache(), 1, ParallelLoop::Auto)?;
                wino.push(Mutex::new(winograd::Worker {
                    gemm: g,
                    buf: vec![0.0; len],
                }));
            }
        }
        let mut sess = Session {
            graph_name: graph.name.clone(),
            steps: compiled.steps,
            sizes: compiled.sizes,
            input_dims: compiled.input_dims,
            output_dims: compiled.output_dims,
            buf_of: compiled.buf_of,
            buf_per_image: compiled.buf_per_image,
            bufs: Vec::new(),
            scratch: Vec::new(),
            scratch_per_image: compiled.scratch_per_image,
            wino,
            isa: Isa::of(&kernel),
            gemm,
            cache,
            batch: 0,
            repeat: 0,
            fixed_batch: g.fixed_batch,
            input: 0,
            outputs: compiled.outputs,
            constants: compiled.constants,
            flops_per_image,
            profile: None,
        };
        sess.set_batch(opts.batch)?;
        Ok(sess)
    }

    /// Resizes the activation buffers for a new batch size (weights are kept).
    pub fn set_batch(&mut self, batch: usize) -> Result<(), EngineError> {
        if batch == 0 {
            return Err(EngineError::param("batch", "must be at least 1"));
        }
        let repeat = match self.fixed_batch {
            Some(b) if b != batch => {
                return Err(EngineError::param(
                    "batch",
                    format!(
                        "model {} fixes its batch to {b}, asked for {batch}",
                        self.graph_name
                    ),
                ))
            }
            Some(_) => 1,
            None => batch,
        };
        self.check_memory(batch, repeat)?;
        self.batch = batch;
        self.repeat = repeat;
        self.bufs = self
            .buf_per_image
            .iter()
            .map(|&l| {
                let mut b = AlignedBuf::default();
                b.ensure(l * repeat);
                b
            })
            .collect();
        for (v, data) in &self.constants {
            let buf = self.bufs[self.buf_of[*v]].as_mut_slice();
            for item in buf.chunks_exact_mut(data.len().max(1)).take(repeat) {
                item.copy_from_slice(data);
            }
        }
        self.scratch = vec![0.0; self.scratch_per_image * repeat];
        Ok(())
    }

    /// Refuses a batch whose activation buffers do not fit in memory, before
    /// allocating them (an allocation that fails aborts the process).
    fn check_memory(&self, batch: usize, repeat: usize) -> Result<(), EngineError> {
        let per_item: u128 = self.buf_per_image.iter().map(|&l| l as u128).sum::<u128>()
            + self.scratch_per_image as u128;
        let bytes = per_item
            .saturating_mul(repeat as u128)
            .saturating_mul(std::mem::size_of::<f32>() as u128);
        // Images are NHWC inside the engine; users know them as NCHW.
        let d = &self.input_dims;
        let (names, dims) = match d.as_slice() {
            [n, h, w, c] => ("NxCxHxW ", vec![*n, *c, *h, *w]),
            _ => ("", d.clone()),
        };
        let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
        crate::guard::memory::check_fits(
            &format!(
                "model {} with input {names}{} at batch {batch}",
                self.graph_name,
                dims.join("x")
            ),
            bytes,
            "use a smaller batch or a smaller input shape",
        )?;
        Ok(())
    }

    pub fn batch(&self) -> usize {
        self.batch
    }
    pub fn name(&self) -> &str {
        &self.graph_name
    }
    pub fn kernel(&self) -> &Kernel {
        self.gemm.kernel()
    }
    pub fn cache(&self) -> CacheConfig {
        self.cache
    }
    pub fn threads(&self) -> usize {
        self.gemm.threads()
    }
    pub fn flops_per_image(&self) -> f64 {
        self.flops_per_image
    }
    /// Dims of the input for one run (the batch in axis 0).
    pub fn input_dims(&self) -> Vec<usize> {
        self.run_dims(&self.input_dims)
    }
    /// Dims of output `i` for one run.
    pub fn output_dims(&self, i: usize) -> Vec<usize> {
        self.run_dims(&self.output_dims[i])
    }
    /// The input seen as an NHWC image of one item.
    pub fn input_shape(&self) -> Shape {
        Shape::of(&self.input_dims)
    }
    /// The first output seen as an NHWC image of one item.
    pub fn output_shape(&self) -> Shape {
        Shape::of(&self.output_dims[0])
    }
    /// Values a batch of input needs.
    pub fn input_len(&self) -> usize {
        self.len_of(self.input)
    }
    pub fn num_outputs(&self) -> usize {
        self.outputs.len()
    }

    fn run_dims(&self, dims: &[usize]) -> Vec<usize> {
        let mut d = dims.to_vec();
        if let Some(first) = d.first_mut() {
            *first *= self.repeat;
        }
        d
    }

    fn len_of(&self, v: ValueId) -> usize {
        self.sizes[v] * self.repeat
    }

    /// Turns per-layer timing on (cleared) or off.
    pub fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(|| vec![0.0; self.steps.len()]);
    }

    /// Seconds spent in each layer since profiling was turned on.
    pub fn profile(&self) -> Option<Vec<(LayerInfo, f64)>> {
        let p = self.profile.as_ref()?;
        Some(self.layers().into_iter().zip(p.iter().copied()).collect())
    }

    /// The compiled layers in execution order.
    pub fn layers(&self) -> Vec<LayerInfo> {
        self.steps
            .iter()
            .map(|s| {
                let (op, algorithm, blocking) = s.kind.describe();
                LayerInfo {
                    name: s.name.clone(),
                    op,
                    algorithm,
                    output: out_label(&s.out_dims),
                    gflop_per_image: s.flops / 1e9 / self.fixed_batch.unwrap_or(1) as f64,
                    blocking,
                }
            })
            .collect()
    }

    /// Runs one batch. `input` holds the input's values (an NHWC image batch
    /// for built-in models); returns the first output.
    pub fn run(&mut self, input: &[f32]) -> Result<&[f32], EngineError> {
        let want = self.input_len();
        if input.len() != want {
            return Err(EngineError::Shape(format!(
                "input has {} values; batch {} of {} needs {want}",
                input.len(),
                self.batch,
                super::graph::show_dims(&self.input_dims)
            )));
        }
        let ib = self.buf_of[self.input];
        self.bufs[ib].as_mut_slice()[..want].copy_from_slice(input);
        // Enter the pool once per inference: every layer's parallel loop then
        // starts from inside it. (When the caller is not one of the pool's
        // workers, each entry goes through rayon's global injector.)
        match self.gemm.shared_pool() {
            Some(pool) => pool.install(|| self.run_layers())?,
            None => self.run_layers()?,
        }
        Ok(self.output(0))
    }

    /// Output `i` of the last run.
    pub fn output(&self, i: usize) -> &[f32] {
        let v = self.outputs[i];
        &self.bufs[self.buf_of[v]].as_slice()[..self.len_of(v)]
    }

    fn run_layers(&mut self) -> Result<(), EngineError> {
        for s in 0..self.steps.len() {
            let t0 = self.profile.as_ref().map(|_| Instant::now());
            self.exec(s)?;
            if let (Some(p), Some(t0)) = (self.profile.as_mut(), t0) {
                p[s] += t0.elapsed().as_secs_f64();
            }
        }
        Ok(())
    }
}

/// A layer's output for profiles: `HxWxC` for an image of one item (as it
/// always was), the full dims otherwise.
fn out_label(d: &[usize]) -> String {
    if d.len() <= 4 && d.first() == Some(&1) {
        Shape::of(d).to_string()
    } else {
        super::graph::show_dims(d)
    }
}

/// Buffers for the values of `steps` and the pinned ones (`sizes` per item).
fn plan_buffers(sizes: &[usize], steps: &[Step], pinned: &[ValueId]) -> (Vec<usize>, Vec<usize>) {
    let mut used = vec![0usize; sizes.len()];
    for &p in pinned {
        used[p] = sizes[p];
    }
    for st in steps {
        used[st.output] = sizes[st.output];
    }
    let sizes = used;
    let usage: Vec<plan::Usage> = steps
        .iter()
        .map(|s| plan::Usage {
            inputs: &s.inputs,
            output: s.output,
        })
        .collect();
    plan::assign(&sizes, &usage, pinned)
}
