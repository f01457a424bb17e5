//! A naive f64 forward pass over a model graph, written independently of the
//! engine: direct loops over NHWC tensors with the batch dimension first, one
//! function per op, ONNX semantics throughout.
//!
//! - Conv: cross-correlation with groups, dilation, stride and asymmetric
//!   zero padding; weights OIHW (`[cout][cin/groups][kh][kw]`).
//! - BatchNorm: `(x - mean) / sqrt(var + eps) * gamma + beta`.
//! - MaxPool ignores padded positions; AveragePool divides by `kh*kw` with
//!   `count_include_pad`, else by the number of positions inside the input.
//! - Flatten keeps NHWC memory order; a Dense whose input is (possibly through
//!   activations) a Flatten of an `h x w x c` value reads its weights in NCHW
//!   flattening order, index `c*h*w + y*w + x`, as ONNX and PyTorch store them.
//!   A Dense applied directly to an `h x w x c` value reads them the same way.
//! - Softmax over channels, at every pixel.

use joulebench::engine::gemm::Activation;
use joulebench::engine::graph::{BatchNorm, Conv, Dense, Graph, Op, PoolKind, Shape, Window};

/// Output of the graph's last node for `batch` images (NHWC, batch first).
pub fn forward(g: &Graph, input_nhwc: &[f32], batch: usize) -> Vec<f64> {
    forward_all(g, input_nhwc, batch)
        .pop()
        .expect("a graph has at least its input node")
}

/// Every value of the graph, in node order, for `batch` images.
pub fn forward_all(g: &Graph, input_nhwc: &[f32], batch: usize) -> Vec<Vec<f64>> {
    let shapes = g.shapes().expect("the reference needs a valid graph");
    let mut vals: Vec<Vec<f64>> = Vec::with_capacity(g.nodes.len());
    for (i, node) in g.nodes.iter().enumerate() {
        let s = shapes[i];
        let arg = |k: usize| (&vals[node.inputs[k]][..], shapes[node.inputs[k]]);
        let out = match &node.op {
            Op::Input => {
                assert_eq!(
                    input_nhwc.len(),
                    batch * s.len(),
                    "input must hold {batch} images of {s}"
                );
                input_nhwc.iter().map(|&v| f64::from(v)).collect()
            }
            Op::Conv(c) => {
                let (x, xs) = arg(0);
                conv(x, xs, s, c, batch)
            }
            Op::BatchNorm(bn) => {
                let (x, xs) = arg(0);
                batch_norm(x, xs.c, bn)
            }
            Op::Activation(a) => {
                let (x, _) = arg(0);
                x.iter().map(|&v| activation(*a, v)).collect()
            }
            Op::Pool { kind, window } => {
                let (x, xs) = arg(0);
                pool(x, xs, s, *kind, window, batch)
            }
            Op::GlobalAvgPool => {
                let (x, xs) = arg(0);
                global_avg_pool(x, xs, batch)
            }
            Op::Dense(d) => {
                let (x, _) = arg(0);
                let layout = dense_layout(g, &shapes, node.inputs[0]);
                dense(x, layout, d, batch)
            }
            Op::Add => {
                let (a, _) = arg(0);
                let (b, _) = arg(1);
                a.iter().zip(b).map(|(x, y)| x + y).collect()
            }
            Op::Concat { axis: 3 } => {
                let parts: Vec<(&[f64], Shape)> = (0..node.inputs.len()).map(arg).collect();
                concat(&parts, s, batch)
            }
            // Both keep the values in memory order (only dims change).
            Op::Flatten | Op::Reshape { .. } => arg(0).0.to_vec(),
            Op::Softmax { log: false, .. } => {
                let (x, xs) = arg(0);
                softmax(x, xs.c)
            }
            other => panic!("the reference does not implement {}", other.kind()),
        };
        assert_eq!(
            out.len(),
            batch * s.len(),
            "node {i} `{}` produced the wrong number of values",
            node.name
        );
        vals.push(out);
    }
    vals
}

/// Element `(n, y, x, c)` of an NHWC tensor of per-image shape `s`.
#[inline]
fn at(s: Shape, n: usize, y: usize, x: usize, c: usize) -> usize {
    ((n * s.h + y) * s.w + x) * s.c + c
}

/// Input coordinate read by output coordinate `o` at kernel offset `k`, if it
/// falls inside an input of extent `len` (not in the padding).
#[inline]
fn source(
    o: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    len: usize,
) -> Option<usize> {
    let i = (o * stride + k * dilation) as isize - pad as isize;
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

fn conv(x: &[f64], xs: Shape, ys: Shape, c: &Conv, batch: usize) -> Vec<f64> {
    let w = &c.window;
    let cin_g = c.cin / c.groups;
    let cout_g = c.cout / c.groups;
    let mut y = vec![0.0; batch * ys.len()];
    for n in 0..batch {
        for oy in 0..ys.h {
            for ox in 0..ys.w {
                for oc in 0..c.cout {
                    let group = oc / cout_g;
                    let mut acc = c.bias.as_ref().map_or(0.0, |b| f64::from(b[oc]));
                    for ky in 0..w.kh {
                        let Some(iy) = source(oy, ky, w.stride_h, w.dilation_h, w.pad_top, xs.h)
                        else {
                            continue;
                        };
                        for kx in 0..w.kw {
                            let Some(ix) =
                                source(ox, kx, w.stride_w, w.dilation_w, w.pad_left, xs.w)
                            else {
                                continue;
                            };
                            for icg in 0..cin_g {
                                let ic = group * cin_g + icg;
                                let wi = ((oc * cin_g + icg) * w.kh + ky) * w.kw + kx;
                                acc += x[at(xs, n, iy, ix, ic)] * f64::from(c.weights[wi]);
                            }
                        }
                    }
                    y[at(ys, n, oy, ox, oc)] = acc;
                }
            }
        }
    }
    y
}

fn batch_norm(x: &[f64], channels: usize, bn: &BatchNorm) -> Vec<f64> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i % channels;
            let inv = 1.0 / (f64::from(bn.var[c]) + f64::from(bn.eps)).sqrt();
            (v - f64::from(bn.mean[c])) * inv * f64::from(bn.gamma[c]) + f64::from(bn.beta[c])
        })
        .collect()
}

/// Every activation in f64, written from ONNX's definitions (not from the
/// engine's formulas).
pub fn activation(a: Activation, v: f64) -> f64 {
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    let hard = |v: f64, alpha: f64, beta: f64| (alpha * v + beta).clamp(0.0, 1.0);
    match a {
        Activation::None => v,
        Activation::Relu => v.max(0.0),
        Activation::Relu6 => v.clamp(0.0, 6.0),
        Activation::Clip { min, max } => v.max(min as f64).min(max as f64),
        Activation::Sigmoid => sigmoid(v),
        Activation::Swish => v * sigmoid(v),
        Activation::HardSigmoid { alpha, beta } => hard(v, alpha.into(), beta.into()),
        Activation::HardSwish => v * hard(v, 1.0 / 6.0, 0.5),
        Activation::LeakyRelu { alpha } => {
            if v < 0.0 {
                f64::from(alpha) * v
            } else {
                v
            }
        }
        Activation::Tanh => v.tanh(),
        Activation::Elu { alpha } => {
            if v < 0.0 {
                f64::from(alpha) * (v.exp() - 1.0)
            } else {
                v
            }
        }
        Activation::Gelu => 0.5 * v * (1.0 + libm::erf(v / 2f64.sqrt())),
    }
}

/// One of each activation (the engine's list), for tests that run every one
/// through a code path.
pub const EVERY_ACTIVATION: [Activation; 12] = Activation::ONE_OF_EACH;

fn pool(x: &[f64], xs: Shape, ys: Shape, kind: PoolKind, w: &Window, batch: usize) -> Vec<f64> {
    let mut y = vec![0.0; batch * ys.len()];
    for n in 0..batch {
        for oy in 0..ys.h {
            for ox in 0..ys.w {
                for c in 0..xs.c {
                    let mut max = f64::NEG_INFINITY;
                    let mut sum = 0.0;
                    let mut inside = 0usize;
                    for ky in 0..w.kh {
                        let Some(iy) = source(oy, ky, w.stride_h, w.dilation_h, w.pad_top, xs.h)
                        else {
                            continue;
                        };
                        for kx in 0..w.kw {
                            let Some(ix) =
                                source(ox, kx, w.stride_w, w.dilation_w, w.pad_left, xs.w)
                            else {
                                continue;
                            };
                            let v = x[at(xs, n, iy, ix, c)];
                            max = max.max(v);
                            sum += v;
                            inside += 1;
                        }
                    }
                    assert!(inside > 0, "a pooling window lies entirely in the padding");
                    y[at(ys, n, oy, ox, c)] = match kind {
                        PoolKind::Max => max,
                        PoolKind::Avg {
                            count_include_pad: true,
                        } => sum / (w.kh * w.kw) as f64,
                        PoolKind::Avg {
                            count_include_pad: false,
                        } => sum / inside as f64,
                    };
                }
            }
        }
    }
    y
}

fn global_avg_pool(x: &[f64], xs: Shape, batch: usize) -> Vec<f64> {
    let mut y = vec![0.0; batch * xs.c];
    for n in 0..batch {
        for p in 0..xs.h * xs.w {
            for c in 0..xs.c {
                y[n * xs.c + c] += x[(n * xs.h * xs.w + p) * xs.c + c];
            }
        }
    }
    let area = (xs.h * xs.w) as f64;
    y.iter_mut().for_each(|v| *v /= area);
    y
}

/// The spatial layout a Dense layer's input features come from: the shape
/// before the Flatten that produced them (looking through activations), or
/// the input's own shape.
fn dense_layout(g: &Graph, shapes: &[Shape], mut v: usize) -> Shape {
    let own = shapes[v];
    loop {
        let node = &g.nodes[v];
        match node.op {
            Op::Flatten => return shapes[node.inputs[0]],
            Op::Activation(_) => v = node.inputs[0],
            _ => return own,
        }
    }
}

fn dense(x: &[f64], layout: Shape, d: &Dense, batch: usize) -> Vec<f64> {
    assert_eq!(layout.len(), d.inputs);
    let (h, w, c) = (layout.h, layout.w, layout.c);
    let mut y = vec![0.0; batch * d.outputs];
    for n in 0..batch {
        let xn = &x[n * d.inputs..(n + 1) * d.inputs];
        for o in 0..d.outputs {
            let row = &d.weights[o * d.inputs..(o + 1) * d.inputs];
            let mut acc = d.bias.as_ref().map_or(0.0, |b| f64::from(b[o]));
            for yy in 0..h {
                for xx in 0..w {
                    for ch in 0..c {
                        // Feature (ch, yy, xx): NHWC position vs NCHW weight index.
                        let v = xn[(yy * w + xx) * c + ch];
                        acc += v * f64::from(row[(ch * h + yy) * w + xx]);
                    }
                }
            }
            y[n * d.outputs + o] = acc;
        }
    }
    y
}

fn concat(parts: &[(&[f64], Shape)], ys: Shape, batch: usize) -> Vec<f64> {
    let mut y = Vec::with_capacity(batch * ys.len());
    for n in 0..batch {
        for p in 0..ys.h * ys.w {
            for (x, xs) in parts {
                let start = (n * ys.h * ys.w + p) * xs.c;
                y.extend_from_slice(&x[start..start + xs.c]);
            }
        }
    }
    y
}

fn softmax(x: &[f64], channels: usize) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len());
    for px in x.chunks(channels) {
        let max = px.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = px.iter().map(|&v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        y.extend(e.iter().map(|v| v / sum));
    }
    y
}
