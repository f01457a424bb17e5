//! From a (fused) graph to the session's steps: one step per node that
//! computes something, weights packed for the GEMMs, and values that only
//! rename another's data (a Reshape, a Flatten read only by dense layers)
//! sharing its storage.

use super::super::conv::{self, ConvAlgo};
use super::super::gemm::{Activation, CacheConfig, Gemm, MatRef, PackedB};
use super::super::graph::{
    BinOp, Graph, Lrn, Op, PadMode, PoolKind, ReduceOp, Resize, SliceAxis, UnaryOp, ValueId, Window,
};
use super::super::EngineError;
use super::{plan_buffers, SessionOptions};

/// A GEMM-lowered convolution with its fused tail.
pub(super) struct ConvStep {
    pub algo: ConvAlgo,
    pub groups: usize,
    pub cout: usize,
    pub win: Window,
    pub packed: Vec<PackedB>,
    /// Depthwise weights `[kh][kw][c]` (depthwise only).
    pub dw: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub act: Activation,
    pub residual: bool,
    /// The blocking its weights were packed for and its GEMMs run with.
    pub cache: CacheConfig,
    /// Whether `cache` is the layer's own rather than the session's.
    pub own_cache: bool,
}

/// A transposed convolution: per group, a GEMM to columns then col2im.
pub(super) struct ConvTStep {
    pub groups: usize,
    pub cout: usize,
    pub win: Window,
    /// Per group: `[cin/g, kh*kw*cout/g]`.
    pub packed: Vec<PackedB>,
    pub bias: Option<Vec<f32>>,
    pub act: Activation,
}

pub(super) struct DenseStep {
    pub packed: PackedB,
    pub bias: Option<Vec<f32>>,
    pub act: Activation,
}

pub(super) enum Kind {
    Conv(Box<ConvStep>),
    ConvT(Box<ConvTStep>),
    Dense(Box<DenseStep>),
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
        act: Activation,
    },
    Act(Activation),
    Unary(UnaryOp),
    Pool {
        kind: PoolKind,
        win: Window,
    },
    Gap,
    Lrn(Lrn),
    Resize(Resize),
    Binary {
        op: BinOp,
        act: Activation,
    },
    BinaryConst {
        op: BinOp,
        value: Vec<f32>,
        dims: Vec<usize>,
        value_first: bool,
        act: Activation,
    },
    Concat {
        axis: usize,
    },
    /// `[n, h, w, c]` to NCHW order.
    Flatten,
    Transpose {
        perm: Vec<usize>,
    },
    Slice {
        axes: Vec<SliceAxis>,
    },
    Pad {
        pads: Vec<(usize, usize)>,
        mode: PadMode,
    },
    Reduce {
        op: ReduceOp,
        axes: Vec<usize>,
    },
    Softmax {
        axis: usize,
        log: bool,
    },
}

pub(super) struct Step {
    pub name: String,
    pub kind: Kind,
    /// Values read (storage ids); a fused residual is the second.
    pub inputs: Vec<ValueId>,
    /// Their dims for one item (a storage id may hold a value of other dims).
    pub in_dims: Vec<Vec<usize>>,
    pub output: ValueId,
    pub out_dims: Vec<usize>,
    /// Work per item.
    pub flops: f64,
}

pub(super) struct Compiled {
    pub steps: Vec<Step>,
    /// Values per item of each storage id.
    pub sizes: Vec<usize>,
    pub input_dims: Vec<usize>,
    pub output_dims: Vec<Vec<usize>>,
    pub buf_of: Vec<usize>,
    pub buf_per_image: Vec<usize>,
    pub scratch_per_image: usize,
    pub outputs: Vec<ValueId>,
    pub constants: Vec<(ValueId, Vec<f32>)>,
}

impl Kind {
    /// `(op label, algorithm, own blocking)` for profiles.
    pub fn describe(&self) -> (String, String, String) {
        let with_act = |base: &str, act: Activation| {
            if act == Activation::None {
                base.to_string()
            } else {
                format!("{base}+{}", act.name())
            }
        };
        let direct = |op: String| (op, "direct".to_string(), String::new());
        match self {
            Kind::Conv(c) => {
                let mut op = String::from("Conv");
                if c.bias.is_some() {
                    op.push_str("+Bias");
                }
                if c.residual {
                    op.push_str("+Add");
                }
                let blocking = if c.own_cache {
                    format!("mc={} nc={} kc={}", c.cache.mc, c.cache.nc, c.cache.kc)
                } else {
                    String::new()
                };
                (with_act(&op, c.act), c.algo.name().to_string(), blocking)
            }
            Kind::ConvT(c) => (
                with_act("ConvTranspose", c.act),
                "gemm".into(),
                String::new(),
            ),
            Kind::Dense(d) => (with_act("Dense", d.act), "gemm".into(), String::new()),
            Kind::Affine { act, .. } => direct(with_act("BatchNorm", *act)),
            Kind::Act(a) => direct(a.name().to_string()),
            Kind::Unary(u) => direct(u.name().to_string()),
            Kind::Pool {
                kind: PoolKind::Max,
                ..
            } => direct("MaxPool".into()),
            Kind::Pool { .. } => direct("AveragePool".into()),
            Kind::Gap => direct("GlobalAveragePool".into()),
            Kind::Lrn(_) => direct("LRN".into()),
            Kind::Resize(_) => direct("Resize".into()),
            Kind::Binary { op, act } | Kind::BinaryConst { op, act, .. } => {
                direct(with_act(op.name(), *act))
            }
            Kind::Concat { .. } => direct("Concat".into()),
            Kind::Flatten => direct("Flatten".into()),
            Kind::Transpose { .. } => direct("Transpose".into()),
            Kind::Slice { .. } => direct("Slice".into()),
            Kind::Pad { .. } => direct("Pad".into()),
            Kind::Reduce { op, .. } => direct(op.name().into()),
            Kind::Softmax { log, .. } => direct(if *log { "LogSoftmax" } else { "Softmax" }.into()),
        }
    }
}

/// Dense weights `B[k][o]` from `[out][in]`, with the input rows in `order`
/// (`order[k]` = the weight column the input feature `k` multiplies).
fn dense_b(w: &[f32], inputs: usize, outputs: usize, order: Option<&[usize]>) -> Vec<f32> {
    let mut b = vec![0.0f32; inputs * outputs];
    for k in 0..inputs {
        let kn = order.map_or(k, |o| o[k]);
        for o in 0..outputs {
            b[k * outputs + o] = w[o * inputs + kn];
        }
    }
    b
}

/// NCHW flattening index of each NHWC position of an `h x w x c` image.
fn nchw_order(h: usize, w: usize, c: usize) -> Vec<usize> {
    let mut order = vec![0; h * w * c];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                order[(y * w + x) * c + ch] = (ch * h + y) * w + x;
            }
        }
    }
    order
}

/// Whether value `v` is read only by dense layers, directly or through
/// reshapes (and is no output): a Flatten there need not move data.
fn feeds_dense_only(g: &Graph, readers: &[Vec<usize>], outputs: &[ValueId], v: ValueId) -> bool {
    !readers[v].is_empty()
        && !outputs.contains(&v)
        && readers[v].iter().all(|&r| match g.nodes[r].op {
            Op::Dense(_) => true,
            Op::Reshape { .. } => feeds_dense_only(g, readers, outputs, r),
            _ => false,
        })
}

pub(super) fn compile(
    g: &Graph,
    opts: &SessionOptions,
    gemm: &Gemm,
    cache: CacheConfig,
) -> Result<Compiled, EngineError> {
    let kernel = *gemm.kernel();
    let layer_cache = |name: &str| -> Result<Option<CacheConfig>, EngineError> {
        let Some(c) = opts.layer_cache.get(name) else {
            return Ok(None);
        };
        c.validate()
            .map_err(|e| EngineError::param("layer blocking", format!("layer `{name}`: {e}")))?;
        Ok(Some(c.resolved(kernel.nr)))
    };
    let dims = g.dims()?;
    let n = g.nodes.len();
    let outputs = g.output_ids();
    let readers = super::super::graph::passes::readers(g);
    let mut storage: Vec<ValueId> = (0..n).collect();
    // Flatten values stored as their NHWC input, for the dense layers reading them.
    let mut flat_of: Vec<Option<(usize, usize, usize)>> = vec![None; n];
    let mut steps = Vec::new();
    let mut constants = Vec::new();
    let mut scratch = 0usize;
    for (idx, node) in g.nodes.iter().enumerate() {
        let ins: Vec<ValueId> = node.inputs.iter().map(|&i| storage[i]).collect();
        let xd = node.inputs.first().map_or(&[][..], |&i| &dims[i][..]);
        let mut flops = 0.0;
        let kind = match &node.op {
            Op::Input => continue,
            Op::Constant(c) => {
                constants.push((idx, c.data.clone()));
                continue;
            }
            Op::Reshape { .. } => {
                storage[idx] = ins[0];
                flat_of[idx] = flat_of[node.inputs[0]];
                continue;
            }
            Op::Flatten => {
                if feeds_dense_only(g, &readers, &outputs, idx) {
                    if let [_, h, w, c] = xd[..] {
                        storage[idx] = ins[0];
                        flat_of[idx] = Some((h, w, c));
                        continue;
                    }
                }
                Kind::Flatten
            }
            Op::Conv(cv) => {
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
                    (Vec::new(), conv::depthwise::weights(cv, None))
                } else if let Some(wv) = algo.winograd() {
                    let mut v = Vec::with_capacity(wv.points());
                    for u in conv::winograd::filter_transform(wv, cv, None) {
                        v.push(gemm.pack_b_for(MatRef::row_major(&u, cv.cin, cv.cout)?, lc)?);
                    }
                    (v, Vec::new())
                } else {
                    let og = cv.cout / cv.groups;
                    let k = cv.window.kh * cv.window.kw * (cv.cin / cv.groups);
                    let mut v = Vec::with_capacity(cv.groups);
                    for gi in 0..cv.groups {
                        let b = conv::gemm_weights(cv, gi, None);
                        v.push(gemm.pack_b_for(MatRef::row_major(&b, k, og)?, lc)?);
                    }
                    (v, Vec::new())
                };
                if algo == ConvAlgo::Im2col {
                    let y = &dims[idx];
                    let per =
                        y[0] * y[1] * y[2] * cv.window.kh * cv.window.kw * (cv.cin / cv.groups);
                    scratch = scratch.max(per);
                }
                flops = super::super::graph::node_flops(&node.op, xd, &dims[idx]);
                Kind::Conv(Box::new(ConvStep {
                    algo,
                    groups: cv.groups,
                    cout: cv.cout,
                    win: cv.window,
                    packed,
                    dw,
                    bias: cv.bias.clone(),
                    act: node.act,
                    residual: ins.len() > 1,
                    cache: lc,
                    own_cache: own.is_some(),
                }))
            }
            Op::ConvTranspose(ct) => {
                let (cg, og) = (ct.cin / ct.groups, ct.cout / ct.groups);
                let taps = ct.window.kh * ct.window.kw;
                let mut packed = Vec::with_capacity(ct.groups);
                for gi in 0..ct.groups {
                    // B[ci][(ky*kw+kx)*og + o] = W[gi*cg + ci][o][ky][kx].
                    let mut b = vec![0.0f32; cg * taps * og];
                    for ci in 0..cg {
                        for o in 0..og {
                            for t in 0..taps {
                                b[ci * taps * og + t * og + o] =
                                    ct.weights[((gi * cg + ci) * og + o) * taps + t];
                            }
                        }
                    }
                    packed.push(gemm.pack_b(MatRef::row_major(&b, cg, taps * og)?)?);
                }
                let px: usize = xd[..3].iter().product();
                scratch = scratch.max(px * taps * og);
                flops = super::super::graph::node_flops(&node.op, xd, &dims[idx]);
                Kind::ConvT(Box::new(ConvTStep {
                    groups: ct.groups,
                    cout: ct.cout,
                    win: ct.window,
                    packed,
                    bias: ct.bias.clone(),
                    act: node.act,
                }))
            }
            Op::Dense(d) => {
                let src = node.inputs[0];
                let order = flat_of[src].map(|(h, w, c)| nchw_order(h, w, c));
                let b = dense_b(&d.weights, d.inputs, d.outputs, order.as_deref());
                flops = super::super::graph::node_flops(&node.op, xd, &dims[idx]);
                Kind::Dense(Box::new(DenseStep {
                    packed: gemm.pack_b(MatRef::row_major(&b, d.inputs, d.outputs)?)?,
                    bias: d.bias.clone(),
                    act: node.act,
                }))
            }
            Op::BatchNorm(bn) => {
                let (scale, shift) = bn.scale_shift();
                Kind::Affine {
                    scale,
                    shift,
                    act: node.act,
                }
            }
            Op::Activation(a) => Kind::Act(*a),
            Op::Unary(u) => Kind::Unary(*u),
            Op::Pool { kind, window } => Kind::Pool {
                kind: *kind,
                win: *window,
            },
            Op::GlobalAvgPool => Kind::Gap,
            Op::Lrn(l) => Kind::Lrn(*l),
            Op::Resize(r) => Kind::Resize(**r),
            Op::Add => Kind::Binary {
                op: BinOp::Add,
                act: node.act,
            },
            Op::Binary(op) => Kind::Binary {
                op: *op,
                act: node.act,
            },
            Op::BinaryConst {
                op,
                value,
                value_first,
            } => Kind::BinaryConst {
                op: *op,
                value: value.data.clone(),
                dims: value.dims.clone(),
                value_first: *value_first,
                act: node.act,
            },
            Op::Concat { axis } => Kind::Concat { axis: *axis },
            Op::Transpose { perm } => Kind::Transpose { perm: perm.clone() },
            Op::Slice { axes } => Kind::Slice { axes: axes.clone() },
            Op::Pad { pads, mode } => Kind::Pad {
                pads: pads.clone(),
                mode: *mode,
            },
            Op::Reduce { op, axes } => Kind::Reduce {
                op: *op,
                axes: axes.clone(),
            },
            Op::Softmax { axis, log } => Kind::Softmax {
                axis: *axis,
                log: *log,
            },
        };
        if node.act != Activation::None && !node.op.takes_activation() {
            return Err(EngineError::param(
                "graph",
                format!(
                    "node `{}` ({}) cannot apply an activation",
                    node.name,
                    node.op.kind()
                ),
            ));
        }
        steps.push(Step {
            name: node.name.clone(),
            kind,
            inputs: ins,
            in_dims: node.inputs.iter().map(|&i| dims[i].clone()).collect(),
            output: idx,
            out_dims: dims[idx].clone(),
            flops,
        });
    }
    let sizes: Vec<usize> = dims.iter().map(|d| d.iter().product()).collect();
    let output_dims = outputs.iter().map(|&o| dims[o].clone()).collect();
    let outputs: Vec<ValueId> = outputs.iter().map(|&o| storage[o]).collect();
    let mut pinned = vec![0];
    pinned.extend(&outputs);
    pinned.extend(constants.iter().map(|(v, _)| *v));
    let (buf_of, buf_per_image) = plan_buffers(&sizes, &steps, &pinned);
    Ok(Compiled {
        steps,
        sizes,
        input_dims: dims[0].clone(),
        output_dims,
        buf_of,
        buf_per_image,
        scratch_per_image: scratch,
        outputs,
        constants,
    })
}
