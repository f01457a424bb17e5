//! Explicit padding folded into the windows of the convolutions and pools
//! that read it, where that gives the same values: exporters write
//! TensorFlow's asymmetric SAME padding as a Pad before the layer.
//!
//! - Convolution: constant 0 padding of height and width is the window's own.
//! - Average pool: constant 0 padding counts in the divisor, which is the
//!   window's own padding with `count_include_pad` (allowed when the pool has
//!   no padding of its own, or counts it too).
//! - Max pool: the pool ignores its padding, so constant padding is the same
//!   only where it cannot win: `-inf`, or any value no greater than the input
//!   can be (0 after a ReLU), as long as every window keeps a real pixel.

use super::{readers, rebuild};
use crate::engine::gemm::Activation;
use crate::engine::graph::{Graph, Node, Op, PadMode, PoolKind, ValueId, Window};
use crate::engine::EngineError;

/// The lowest value node `v` can produce, where an activation bounds it.
fn lower_bound(g: &Graph, v: ValueId) -> f32 {
    let act = match &g.nodes[v].op {
        Op::Activation(a) if g.nodes[v].act == Activation::None => *a,
        _ => g.nodes[v].act,
    };
    match act {
        Activation::Relu | Activation::Relu6 => 0.0,
        Activation::Clip { min, .. } => min,
        Activation::Sigmoid | Activation::HardSigmoid { .. } => 0.0,
        Activation::Tanh => -1.0,
        _ => f32::NEG_INFINITY,
    }
}

/// The window with `(top, left, bottom, right)` more padding, if every
/// window position still reads at least one real pixel.
fn widen(w: &Window, p: [usize; 4]) -> Window {
    Window {
        pad_top: w.pad_top + p[0],
        pad_left: w.pad_left + p[1],
        pad_bottom: w.pad_bottom + p[2],
        pad_right: w.pad_right + p[3],
        ..*w
    }
}

fn keeps_real_pixels(w: &Window) -> bool {
    let eh = w.dilation_h * (w.kh - 1) + 1;
    let ew = w.dilation_w * (w.kw - 1) + 1;
    w.pad_top < eh && w.pad_bottom < eh && w.pad_left < ew && w.pad_right < ew
}

/// The folding pass.
pub fn fold_pads(g: &Graph) -> Result<Graph, EngineError> {
    let readers = readers(g);
    let outputs = g.output_ids();
    let mut nodes: Vec<Option<Node>> = g.nodes.iter().cloned().map(Some).collect();
    let alias: Vec<ValueId> = (0..g.nodes.len()).collect();
    let mut changed = false;
    for (p, node) in g.nodes.iter().enumerate() {
        let Op::Pad { pads, mode } = &node.op else {
            continue;
        };
        let PadMode::Constant(value) = *mode else {
            continue;
        };
        // Only height and width of an NHWC image.
        let [(0, 0), (t, b), (l, r), (0, 0)] = pads[..] else {
            continue;
        };
        if node.act != Activation::None {
            continue;
        }
        let x = node.inputs[0];
        let mut folded_all = !outputs.contains(&p);
        for &j in &readers[p] {
            let Some(reader) = nodes[j].as_mut() else {
                continue;
            };
            let extra = [t, l, b, r];
            let ok = match &mut reader.op {
                Op::Conv(c) if value == 0.0 => {
                    c.window = widen(&c.window, extra);
                    true
                }
                Op::Pool {
                    kind: PoolKind::Avg { count_include_pad },
                    window,
                } if value == 0.0 && (*count_include_pad || !window.has_padding()) => {
                    *window = widen(window, extra);
                    *count_include_pad = true;
                    true
                }
                Op::Pool {
                    kind: PoolKind::Max,
                    window,
                } => {
                    let w = widen(window, extra);
                    let ok = value <= lower_bound(g, x) && keeps_real_pixels(&w);
                    if ok {
                        *window = w;
                    }
                    ok
                }
                _ => false,
            };
            if ok {
                for i in reader.inputs.iter_mut() {
                    if *i == p {
                        *i = x;
                    }
                }
                changed = true;
            } else {
                folded_all = false;
            }
        }
        if folded_all {
            nodes[p] = None;
        }
    }
    if !changed {
        return Ok(g.clone());
    }
    let out = rebuild(g, nodes, &alias);
    out.dims()?;
    Ok(out)
}
