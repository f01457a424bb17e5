//! An inference session: a graph compiled for one kernel, blocking, thread
//! count and batch size — layers fused, weights packed, activation buffers
//! planned — and run with no allocation after the first inference.

use super::conv::{self, convgemm::PatchSource, winograd, ConvAlgo, ConvChoice, ConvGeom};
use super::gemm::{
    Activation, AlignedBuf, Axis, BOperand, CacheConfig, Epilogue, Gemm, Kernel, KernelKind,
    MatMut, MatRef, PackedB, ParallelLoop,
};
use super::graph::{Graph, Op, PoolKind, Shape, ValueId, Window};
use super::{ops, plan, EngineError};
use rayon::prelude::*;
use rayon::ThreadPool;
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

/// A GEMM-lowered convolution with its fused tail.
struct ConvStep {
    algo: ConvAlgo,
    groups: usize,
    cout: usize,
    win: Window,
    packed: Vec<PackedB>,
    /// Depthwise weights `[kh][kw][c]` (depthwise only).
    dw: Vec<f32>,
    bias: Option<Vec<f32>>,
    act: Activation,
    residual: bool,
    /// The blocking its weights were packed for and its GEMMs run with.
    cache: CacheConfig,
    /// Whether `cache` is the layer's own rather than the session's.
    own_cache: bool,
}

struct DenseStep {
    packed: PackedB,
    bias: Option<Vec<f32>>,
    act: Activation,
}

enum Kind {
    Conv(Box<ConvStep>),
    Dense(Box<DenseStep>),
    Affine { scale: Vec<f32>, shift: Vec<f32> },
    Act(Activation),
    Pool { kind: PoolKind, win: Window },
    Gap,
    Add(Activation),
    Concat,
    Softmax,
}

struct Step {
    name: String,
    kind: Kind,
    /// Values read (storage ids); a fused residual is the second.
    inputs: Vec<ValueId>,
    output: ValueId,
    out_shape: Shape,
    flops: f64,
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
    shapes: Vec<Shape>,
    buf_of: Vec<usize>,
    buf_per_image: Vec<usize>,
    /// Activation buffers, 64-byte aligned so every 16-float C tile row of a
    /// GEMM writing into them is one cache line (one prefetch, no split stores).
    bufs: Vec<AlignedBuf>,
    im2col: Vec<f32>,
    im2col_per_image: usize,
    /// One single-threaded GEMM and scratch per thread, for Winograd layers.
    wino: Vec<Mutex<winograd::Worker>>,
    gemm: Gemm,
    /// The session's blocking (layers without their own run with it).
    cache: CacheConfig,
    batch: usize,
    input: ValueId,
    output: ValueId,
    flops_per_image: f64,
    profile: Option<Vec<f64>>,
}

/// Each node's consumer, if it has exactly one.
fn sole_consumer(g: &Graph) -> Vec<Option<usize>> {
    let uses = g.consumers();
    let mut sole = vec![None; g.nodes.len()];
    for (j, n) in g.nodes.iter().enumerate() {
        for &i in &n.inputs {
            if uses[i] == 1 {
                sole[i] = Some(j);
            }
        }
    }
    sole
}

/// Folds the activation that is `tail`'s only consumer into it: returns the
/// activation (or none) and the new tail of the chain.
fn absorb_activation(
    graph: &Graph,
    sole: &[Option<usize>],
    absorbed: &mut [bool],
    tail: usize,
) -> (Activation, usize) {
    match sole[tail] {
        Some(j) if !absorbed[j] => match graph.nodes[j].op {
            Op::Activation(a) => {
                absorbed[j] = true;
                (a, j)
            }
            _ => (Activation::None, tail),
        },
        _ => (Activation::None, tail),
    }
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
        let layer_cache = |name: &str| -> Result<Option<CacheConfig>, EngineError> {
            let Some(c) = opts.layer_cache.get(name) else {
                return Ok(None);
            };
            c.validate().map_err(|e| {
                EngineError::param("layer blocking", format!("layer `{name}`: {e}"))
            })?;
            Ok(Some(c.resolved(kernel.nr)))
        };
        let shapes = graph.shapes()?;
        let flops_per_image = graph.flops_per_image()?;
        let n = graph.nodes.len();
        let sole = sole_consumer(graph);
        let mut storage: Vec<ValueId> = (0..n).collect();
        let mut absorbed = vec![false; n];
        let mut steps = Vec::new();

        let mut pending: HashMap<ValueId, Step> = HashMap::new();
        for (idx, node) in graph.nodes.iter().enumerate() {
            if let Some(step) = pending.remove(&idx) {
                steps.push(step);
                continue;
            }
            if absorbed[idx] {
                continue;
            }
            let ins: Vec<ValueId> = node.inputs.iter().map(|&i| storage[i]).collect();
            let (kind, output, flops) = match &node.op {
                Op::Input => continue,
                Op::Flatten => {
                    storage[idx] = ins[0];
                    continue;
                }
                Op::Conv(cv) => {
                    // Fold what follows into the epilogue: BN, then Add, then ReLU.
                    let mut tail = idx;
                    let mut scale: Option<Vec<f32>> = None;
                    let mut bias = cv.bias.clone();
                    let mut act = Activation::None;
                    let mut residual = None;
                    if opts.fusion {
                        if let Some(j) = sole[tail] {
                            if let Op::BatchNorm(bn) = &graph.nodes[j].op {
                                let (s, sh) = bn.scale_shift();
                                let b: Vec<f32> = sh
                                    .iter()
                                    .enumerate()
                                    .map(|(o, &t)| t + s[o] * bias.as_ref().map_or(0.0, |b| b[o]))
                                    .collect();
                                scale = Some(s);
                                bias = Some(b);
                                absorbed[j] = true;
                                tail = j;
                            }
                        }
                        if let Some(j) = sole[tail] {
                            let nj = &graph.nodes[j];
                            if matches!(nj.op, Op::Add) && !absorbed[j] {
                                let other = if nj.inputs[0] == tail {
                                    nj.inputs[1]
                                } else {
                                    nj.inputs[0]
                                };
                                if other != tail {
                                    residual = Some(storage[other]);
                                    absorbed[j] = true;
                                    tail = j;
                                }
                            }
                        }
                        (act, tail) = absorb_activation(graph, &sole, &mut absorbed, tail);
                    }
                    let algo = opts
                        .conv_overrides
                        .get(&node.name)
                        .copied()
                        .unwrap_or_else(|| conv::choose(cv, opts.conv));
                    if !algo.supports(cv) {
                        return Err(EngineError::param(
                            "conv override",
                            format!("{} cannot compute layer `{}`", algo, node.name),
                        ));
                    }
                    let own = layer_cache(&node.name)?;
                    let lc = own.unwrap_or(cache);
                    let (packed, dw) = if algo == ConvAlgo::Depthwise {
                        (Vec::new(), conv::depthwise::weights(cv, scale.as_deref()))
                    } else if let Some(wv) = algo.winograd() {
                        let mut v = Vec::with_capacity(wv.points());
                        for u in conv::winograd::filter_transform(wv, cv, scale.as_deref()) {
                            v.push(gemm.pack_b_for(MatRef::row_major(&u, cv.cin, cv.cout)?, lc)?);
                        }
                        (v, Vec::new())
                    } else {
                        let og = cv.cout / cv.groups;
                        let k = cv.window.kh * cv.window.kw * (cv.cin / cv.groups);
                        let mut v = Vec::with_capacity(cv.groups);
                        for g in 0..cv.groups {
                            let b = conv::gemm_weights(cv, g, scale.as_deref());
                            v.push(gemm.pack_b_for(MatRef::row_major(&b, k, og)?, lc)?);
                        }
                        (v, Vec::new())
                    };
                    let mut inputs = ins.clone();
                    inputs.extend(residual);
                    let step = ConvStep {
                        algo,
                        groups: cv.groups,
                        cout: cv.cout,
                        win: cv.window,
                        packed,
                        dw,
                        bias,
                        act,
                        residual: residual.is_some(),
                        cache: lc,
                        own_cache: own.is_some(),
                    };
                    let f = 2.0
                        * (shapes[idx].len() * (cv.cin / cv.groups) * cv.window.kh * cv.window.kw)
                            as f64;
                    // Run where the chain ends: a residual may be computed after the conv.
                    pending.insert(
                        tail,
                        Step {
                            name: node.name.clone(),
                            kind: Kind::Conv(Box::new(step)),
                            inputs,
                            output: tail,
                            out_shape: shapes[tail],
                            flops: f,
                        },
                    );
                    if tail == idx {
                        steps.extend(pending.remove(&idx));
                    }
                    continue;
                }
                Op::Dense(d) => {
                    let (act, tail) = if opts.fusion {
                        absorb_activation(graph, &sole, &mut absorbed, idx)
                    } else {
                        (Activation::None, idx)
                    };
                    // B[k][o] = W[o][k'], with k' the NCHW flattening index of NHWC index k
                    // of the value before any Flatten.
                    let xs = shapes[ins[0]];
                    let mut b = vec![0.0f32; d.inputs * d.outputs];
                    for y in 0..xs.h {
                        for xx in 0..xs.w {
                            for ch in 0..xs.c {
                                let k = (y * xs.w + xx) * xs.c + ch;
                                let kn = (ch * xs.h + y) * xs.w + xx;
                                for o in 0..d.outputs {
                                    b[k * d.outputs + o] = d.weights[o * d.inputs + kn];
                                }
                            }
                        }
                    }
                    let packed = gemm.pack_b(MatRef::row_major(&b, d.inputs, d.outputs)?)?;
                    let st = DenseStep {
                        packed,
                        bias: d.bias.clone(),
                        act,
                    };
                    steps.push(Step {
                        name: node.name.clone(),
                        kind: Kind::Dense(Box::new(st)),
                        inputs: ins,
                        output: tail,
                        out_shape: shapes[tail],
                        flops: 2.0 * (d.inputs * d.outputs) as f64,
                    });
                    continue;
                }
                Op::BatchNorm(bn) => {
                    let (scale, shift) = bn.scale_shift();
                    (Kind::Affine { scale, shift }, idx, 0.0)
                }
                Op::Activation(a) => (Kind::Act(*a), idx, 0.0),
                Op::Pool { kind, window } => (
                    Kind::Pool {
                        kind: *kind,
                        win: *window,
                    },
                    idx,
                    0.0,
                ),
                Op::GlobalAvgPool => (Kind::Gap, idx, 0.0),
                Op::Add => {
                    let (act, tail) = if opts.fusion {
                        absorb_activation(graph, &sole, &mut absorbed, idx)
                    } else {
                        (Activation::None, idx)
                    };
                    (Kind::Add(act), tail, 0.0)
                }
                Op::Concat => (Kind::Concat, idx, 0.0),
                Op::Softmax => (Kind::Softmax, idx, 0.0),
            };
            steps.push(Step {
                name: node.name.clone(),
                kind,
                inputs: ins,
                output,
                out_shape: shapes[output],
                flops,
            });
        }

        let output = storage[graph.output()];
        let mut sizes = vec![0usize; n];
        sizes[0] = shapes[0].len();
        for st in &steps {
            sizes[st.output] = st.out_shape.len();
        }
        let usage: Vec<plan::Usage> = steps
            .iter()
            .map(|s| plan::Usage {
                inputs: &s.inputs,
                output: s.output,
            })
            .collect();
        let (buf_of, buf_per_image) = plan::assign(&sizes, &usage, &[0, output]);
        drop(usage);
        let im2col_per_image = steps
            .iter()
            .filter_map(|s| match &s.kind {
                Kind::Conv(c) if c.algo == ConvAlgo::Im2col => Some(
                    s.out_shape.h
                        * s.out_shape.w
                        * c.win.kh
                        * c.win.kw
                        * (shapes[s.inputs[0]].c / c.groups),
                ),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let wino_scratch = steps
            .iter()
            .filter_map(|s| match &s.kind {
                Kind::Conv(c) => c
                    .algo
                    .winograd()
                    .map(|v| winograd::scratch_len(v, shapes[s.inputs[0]].c, c.cout, kernel.mr)),
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
            steps,
            shapes,
            buf_of,
            buf_per_image,
            bufs: Vec::new(),
            im2col: Vec::new(),
            im2col_per_image,
            wino,
            gemm,
            cache,
            batch: 0,
            input: 0,
            output,
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
        self.batch = batch;
        self.bufs = self
            .buf_per_image
            .iter()
            .map(|&l| {
                let mut b = AlignedBuf::default();
                b.ensure(l * batch);
                b
            })
            .collect();
        self.im2col = vec![0.0; self.im2col_per_image * batch];
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
    /// Per-image input shape (NHWC).
    pub fn input_shape(&self) -> Shape {
        self.shapes[0]
    }
    /// Per-image output shape (NHWC).
    pub fn output_shape(&self) -> Shape {
        self.shapes[self.output]
    }
    /// Values a batch of input needs.
    pub fn input_len(&self) -> usize {
        self.shapes[0].len() * self.batch
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
                let blocking = match &s.kind {
                    Kind::Conv(c) if c.own_cache => {
                        format!("mc={} nc={} kc={}", c.cache.mc, c.cache.nc, c.cache.kc)
                    }
                    _ => String::new(),
                };
                let (op, algo) = match &s.kind {
                    Kind::Conv(c) => {
                        let mut op = String::from("Conv");
                        if c.bias.is_some() {
                            op.push_str("+Bias");
                        }
                        if c.residual {
                            op.push_str("+Add");
                        }
                        if c.act != Activation::None {
                            op.push('+');
                            op.push_str(c.act.name());
                        }
                        (op, c.algo.name().to_string())
                    }
                    Kind::Dense(d) => (
                        if d.act == Activation::None {
                            "Dense"
                        } else {
                            "Dense+Act"
                        }
                        .to_string(),
                        "gemm".to_string(),
                    ),
                    Kind::Affine { .. } => ("BatchNorm".into(), "direct".into()),
                    Kind::Act(_) => ("Activation".into(), "direct".into()),
                    Kind::Pool {
                        kind: PoolKind::Max,
                        ..
                    } => ("MaxPool".into(), "direct".into()),
                    Kind::Pool { .. } => ("AveragePool".into(), "direct".into()),
                    Kind::Gap => ("GlobalAveragePool".into(), "direct".into()),
                    Kind::Add(_) => ("Add".into(), "direct".into()),
                    Kind::Concat => ("Concat".into(), "direct".into()),
                    Kind::Softmax => ("Softmax".into(), "direct".into()),
                };
                LayerInfo {
                    name: s.name.clone(),
                    op,
                    algorithm: algo,
                    output: s.out_shape.to_string(),
                    gflop_per_image: s.flops / 1e9,
                    blocking,
                }
            })
            .collect()
    }

    /// Runs one batch. `input` is NHWC, `batch * input_shape` values; returns
    /// the NHWC output.
    pub fn run(&mut self, input: &[f32]) -> Result<&[f32], EngineError> {
        let want = self.input_len();
        if input.len() != want {
            return Err(EngineError::Shape(format!(
                "input has {} values; batch {} of {} needs {want}",
                input.len(),
                self.batch,
                self.shapes[0]
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
        let ob = self.buf_of[self.output];
        let len = self.shapes[self.output].len() * self.batch;
        Ok(&self.bufs[ob].as_slice()[..len])
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

    fn exec(&mut self, s: usize) -> Result<(), EngineError> {
        let step = &self.steps[s];
        let batch = self.batch;
        let ob = self.buf_of[step.output];
        let out_len = step.out_shape.len() * batch;
        let mut out = std::mem::take(&mut self.bufs[ob]);
        let res = {
            let bufs = &self.bufs;
            let shapes = &self.shapes;
            let buf_of = &self.buf_of;
            let input = |i: usize| -> &[f32] {
                let v = step.inputs[i];
                &bufs[buf_of[v]].as_slice()[..shapes[v].len() * batch]
            };
            let ishape = |i: usize| shapes[step.inputs[i]];
            let o = &mut out.as_mut_slice()[..out_len];
            let pool = self.gemm.pool();
            match &step.kind {
                Kind::Conv(c) => self.gemm.set_cache(c.cache).and_then(|()| {
                    run_conv(
                        &mut self.gemm,
                        &mut self.im2col,
                        &self.wino,
                        c,
                        input(0),
                        ishape(0),
                        c.residual.then(|| input(1)),
                        step.out_shape,
                        batch,
                        o,
                    )
                }),
                Kind::Dense(d) => {
                    self.gemm.set_cache(self.cache)?;
                    let k = ishape(0).len();
                    let a = MatRef::row_major(input(0), batch, k)?;
                    let n = step.out_shape.c;
                    let epi = Epilogue {
                        axis: Axis::Col,
                        bias: d.bias.as_deref(),
                        activation: d.act,
                        ..Epilogue::none()
                    };
                    self.gemm.run(
                        1.0,
                        &a,
                        BOperand::Packed(&d.packed),
                        0.0,
                        &mut MatMut::row_major(o, batch, n)?,
                        &epi,
                    )
                }
                Kind::Affine { scale, shift } => {
                    let c = scale.len();
                    par_rows(pool, o, c * 64, |r, dst| {
                        let x = &input(0)[r * c * 64..][..dst.len()];
                        ops::affine(x, scale, shift, dst)
                    });
                    Ok(())
                }
                Kind::Act(a) => {
                    par_rows(pool, o, 4096, |r, dst| {
                        ops::activation(&input(0)[r * 4096..][..dst.len()], *a, dst)
                    });
                    Ok(())
                }
                Kind::Add(a) => {
                    par_rows(pool, o, 4096, |r, dst| {
                        let off = r * 4096;
                        ops::add(
                            &input(0)[off..][..dst.len()],
                            &input(1)[off..][..dst.len()],
                            *a,
                            dst,
                        )
                    });
                    Ok(())
                }
                Kind::Pool { kind, win } => {
                    let x = ishape(0);
                    let os = step.out_shape;
                    par_rows(pool, o, os.w * os.c, |r, dst| {
                        ops::pool_row(
                            input(0),
                            (x.h, x.w, x.c),
                            *kind,
                            win,
                            os.w,
                            r / os.h,
                            r % os.h,
                            dst,
                        )
                    });
                    Ok(())
                }
                Kind::Gap => {
                    let x = ishape(0);
                    par_rows(pool, o, x.c, |img, dst| {
                        ops::global_avg(&input(0)[img * x.len()..][..x.len()], x.c, dst)
                    });
                    Ok(())
                }
                Kind::Concat => {
                    let c_out = step.out_shape.c;
                    let px = step.out_shape.h * step.out_shape.w * batch;
                    let mut off = 0;
                    for i in 0..step.inputs.len() {
                        let ci = ishape(i).c;
                        let x = input(i);
                        for p in 0..px {
                            o[p * c_out + off..p * c_out + off + ci]
                                .copy_from_slice(&x[p * ci..(p + 1) * ci]);
                        }
                        off += ci;
                    }
                    Ok(())
                }
                Kind::Softmax => {
                    ops::softmax(input(0), step.out_shape.c, o);
                    Ok(())
                }
            }
        };
        self.bufs[ob] = out;
        res
    }
}

/// Runs `f(row, chunk)` over `row_len`-sized chunks of `out`, on the pool if any.
fn par_rows<F>(pool: Option<&ThreadPool>, out: &mut [f32], row_len: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let row_len = row_len.max(1);
    match pool {
        // One contiguous run of rows per thread: few, large jobs (hundreds of
        // tiny ones made rayon's deques grow and shrink, allocating).
        Some(p) => p.install(|| {
            let rows = out.len().div_ceil(row_len);
            let per = rows.div_ceil(p.current_num_threads()).max(1);
            out.par_chunks_mut(per * row_len)
                .enumerate()
                .for_each(|(i, run)| {
                    for (r, c) in run.chunks_mut(row_len).enumerate() {
                        f(i * per + r, c);
                    }
                });
        }),
        None => out
            .chunks_mut(row_len)
            .enumerate()
            .for_each(|(r, c)| f(r, c)),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_conv(
    gemm: &mut Gemm,
    im2col_buf: &mut [f32],
    wino: &[Mutex<winograd::Worker>],
    c: &ConvStep,
    x: &[f32],
    xs: Shape,
    residual: Option<&[f32]>,
    os: Shape,
    batch: usize,
    out: &mut [f32],
) -> Result<(), EngineError> {
    let cg = xs.c / c.groups;
    let og = c.cout / c.groups;
    let geom = ConvGeom {
        n: batch,
        h: xs.h,
        w: xs.w,
        c: xs.c,
        cg,
        oh: os.h,
        ow: os.w,
        win: c.win,
    };
    if c.algo == ConvAlgo::Depthwise {
        let pool = gemm.pool();
        let row = os.w * os.c;
        let isa = crate::engine::simd::Isa::of(gemm.kernel());
        par_rows(pool, out, row, |r, dst| {
            let tail = conv::depthwise::Tail {
                bias: c.bias.as_deref(),
                residual: residual.map(|rv| &rv[r * row..(r + 1) * row]),
                act: c.act,
            };
            conv::depthwise::row(isa, x, &c.dw, &geom, r / os.h, r % os.h, &tail, dst);
        });
        return Ok(());
    }
    if let Some(v) = c.algo.winograd() {
        let (_, _, total) = winograd::tiles(v, &geom);
        let tail = winograd::Tail {
            bias: c.bias.as_deref(),
            residual,
            act: c.act,
        };
        let lock = |j: usize| {
            wino[j].lock().map_err(|_| EngineError::ThreadPool {
                threads: wino.len(),
                reason: "a Winograd worker panicked earlier".into(),
            })
        };
        let outp = winograd::OutPtr::new(out);
        let nr = gemm.kernel().nr;
        let panels = c.cout.div_ceil(nr);
        // Fewer than two row panels of tiles per thread (ResNet-50's layer4
        // at batch 1 has 4): split by tiles, every thread would stream all
        // the filters for a handful of tiles. Split by output channels
        // instead: each thread transforms all tiles' input (a few tiles:
        // cheap), multiplies with its share of the filters and transforms
        // its channels' output, so a layer forks once and each thread reads
        // only its share of the filters.
        let by_chans = gemm.threads() > 1 && total < 2 * gemm.threads() * gemm.kernel().mr;
        let jobs = if by_chans {
            wino.len().min(panels)
        } else {
            wino.len().min(total)
        }
        .max(1);
        let per = total.div_ceil(jobs);
        let job = |j: usize| -> Result<(), EngineError> {
            let mut w = lock(j)?;
            let w = &mut *w;
            w.gemm.set_cache(c.cache)?;
            let (range, cols) = if by_chans {
                let (p0, p1) = (j * panels / jobs, (j + 1) * panels / jobs);
                (0..total, p0 * nr..(p1 * nr).min(c.cout))
            } else {
                (j * per..((j + 1) * per).min(total), 0..c.cout)
            };
            winograd::run_tiles(
                v,
                &mut w.gemm,
                &mut w.buf,
                x,
                &geom,
                &c.packed,
                c.cout,
                &tail,
                outp,
                range,
                cols,
            )
        };
        return match gemm.pool() {
            Some(p) if jobs > 1 => p.install(|| (0..jobs).into_par_iter().try_for_each(job)),
            _ => (0..jobs).try_for_each(job),
        };
    }
    let m = geom.rows();
    for (g, packed) in c.packed.iter().enumerate() {
        let col = g * og;
        let mut cm = MatMut::new(&mut out[col..], m, og, c.cout, 1)?;
        let res = match residual {
            Some(r) => Some(MatRef::new(&r[col..], m, og, c.cout, 1)?),
            None => None,
        };
        let epi = Epilogue {
            axis: Axis::Col,
            scale: None,
            bias: c.bias.as_ref().map(|b| &b[col..col + og]),
            residual: res,
            activation: c.act,
        };
        let src = PatchSource {
            x,
            geom,
            c_off: g * cg,
        };
        let b = BOperand::Packed(packed);
        match c.algo {
            ConvAlgo::Pointwise if conv::pointwise::is_direct(&geom) => {
                let a = conv::pointwise::input_matrix(x, &geom, g * cg)?;
                gemm.run(1.0, &a, b, 0.0, &mut cm, &epi)?;
            }
            ConvAlgo::Im2col => {
                let depth = geom.depth();
                let buf = &mut im2col_buf[..m * depth];
                conv::im2col::im2col(&src, buf);
                let a = MatRef::row_major(buf, m, depth)?;
                gemm.run(1.0, &a, b, 0.0, &mut cm, &epi)?;
            }
            _ => gemm.run(1.0, &src, b, 0.0, &mut cm, &epi)?,
        }
    }
    Ok(())
}
