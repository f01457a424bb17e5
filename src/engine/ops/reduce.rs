//! Reductions over any set of axes, and softmax along any axis.

use super::nd::{Nd, RANK};
use super::par_rows;
use crate::engine::graph::ReduceOp;
use rayon::ThreadPool;

/// `out` = `x` (dims `xd`) reduced over `axes` (which keep extent 1).
///
/// The axes are merged into alternating kept and reduced runs; blocks of the
/// first kept run (the batch, usually) go to separate threads, and within a
/// block the input is read once, in order: rows of the last axis are folded
/// into the output row they belong to (a kept last axis, as when averaging
/// an NHWC image over height and width), or each into one value.
pub fn reduce(
    pool: Option<&ThreadPool>,
    op: ReduceOp,
    x: &[f32],
    xd: &Nd,
    axes: &[usize],
    out: &mut [f32],
) {
    let mut dims = [1; RANK];
    let mut red = [false; RANK];
    let mut r = 0;
    for k in 0..xd.rank {
        let d = xd.dims[k];
        if d == 1 {
            continue;
        }
        let rk = axes.contains(&k);
        if r > 0 && red[r - 1] == rk {
            dims[r - 1] *= d;
        } else {
            dims[r] = d;
            red[r] = rk;
            r += 1;
        }
    }
    let count: usize = (0..r).filter(|&k| red[k]).map(|k| dims[k]).product();
    if r == 0 {
        if let Some(o) = out.first_mut() {
            *o = op.finish(op.step(op.init(), x[0]), 1);
        }
        return;
    }
    // Independent blocks along a leading kept run.
    let (blocks, first) = if red[0] { (1, 0) } else { (dims[0], 1) };
    let in_block = x.len() / blocks;
    let out_block = out.len() / blocks;
    let dims = &dims[first..r];
    let red = &red[first..r];
    par_rows(pool, out, out_block, |b, o| {
        reduce_block(op, &x[b * in_block..(b + 1) * in_block], dims, red, o);
        o.iter_mut().for_each(|v| *v = op.finish(*v, count));
    });
}

fn reduce_block(op: ReduceOp, x: &[f32], dims: &[usize], red: &[bool], out: &mut [f32]) {
    out.fill(op.init());
    let r = dims.len();
    if r == 0 {
        out[0] = op.step(out[0], x[0]);
        return;
    }
    // Output strides of the kept axes (0 for reduced ones).
    let mut ost = [0; RANK];
    let mut acc = 1;
    for k in (0..r).rev() {
        if !red[k] {
            ost[k] = acc;
            acc *= dims[k];
        }
    }
    let inner = dims[r - 1];
    let rows = x.len() / inner;
    for row in 0..rows {
        let mut rem = row;
        let mut off = 0;
        for k in (0..r - 1).rev() {
            off += (rem % dims[k]) * ost[k];
            rem /= dims[k];
        }
        let xs = &x[row * inner..(row + 1) * inner];
        if red[r - 1] {
            let o = &mut out[off];
            *o = xs.iter().fold(*o, |a, &v| op.step(a, v));
        } else {
            for (o, &v) in out[off..off + inner].iter_mut().zip(xs) {
                *o = op.step(*o, v);
            }
        }
    }
}

/// Softmax (or log-softmax) of `x` (dims `xd`) along `axis`.
pub fn softmax(
    pool: Option<&ThreadPool>,
    x: &[f32],
    xd: &Nd,
    axis: usize,
    log: bool,
    out: &mut [f32],
) {
    let (_, n, inner) = xd.split(axis);
    let row = n * inner;
    if row == 0 {
        return;
    }
    par_rows(pool, out, row, |o, dst| {
        let xs = &x[o * row..(o + 1) * row];
        for j in 0..inner {
            let at = |k: usize| k * inner + j;
            let m = (0..n).map(|k| xs[at(k)]).fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for k in 0..n {
                let e = (xs[at(k)] - m).exp();
                dst[at(k)] = e;
                sum += e;
            }
            if log {
                let ls = sum.ln();
                for k in 0..n {
                    dst[at(k)] = xs[at(k)] - m - ls;
                }
            } else {
                let inv = 1.0 / sum;
                for k in 0..n {
                    dst[at(k)] *= inv;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_over_any_axes_match_a_naive_loop() {
        let d = [2, 3, 4, 5];
        let x: Vec<f32> = (0..120).map(|v| ((v * 7) % 11) as f32 - 5.0).collect();
        let xd = Nd::new(&d);
        for axes in [
            vec![1, 2],
            vec![3],
            vec![0],
            vec![0, 3],
            vec![0, 1, 2, 3],
            vec![2],
        ] {
            for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::L2] {
                let od: Vec<usize> = (0..4)
                    .map(|k| if axes.contains(&k) { 1 } else { d[k] })
                    .collect();
                let o = Nd::new(&od);
                let mut out = vec![0.0; o.numel()];
                reduce(None, op, &x, &xd, &axes, &mut out);
                let (xs, os) = (xd.strides(), o.strides());
                let mut want = vec![op.init(); o.numel()];
                let mut n = vec![0usize; o.numel()];
                for (f, &v) in x.iter().enumerate() {
                    let t: usize = (0..4)
                        .map(|k| {
                            if axes.contains(&k) {
                                0
                            } else {
                                (f / xs[k] % d[k]) * os[k]
                            }
                        })
                        .sum();
                    want[t] = op.step(want[t], v);
                    n[t] += 1;
                }
                for ((w, c), g) in want.iter().zip(&n).zip(&out) {
                    let w = op.finish(*w, *c);
                    assert!(
                        (w - g).abs() <= 1e-5 * w.abs().max(1.0),
                        "{op:?} {axes:?}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn softmax_along_a_middle_axis_sums_to_one() {
        let xd = Nd::new(&[2, 3, 4]);
        let x: Vec<f32> = (0..24).map(|v| (v as f32 * 0.37).sin() * 4.0).collect();
        let mut out = vec![0.0; 24];
        softmax(None, &x, &xd, 1, false, &mut out);
        for o in 0..2 {
            for j in 0..4 {
                let s: f32 = (0..3).map(|k| out[o * 12 + k * 4 + j]).sum();
                assert!((s - 1.0).abs() < 1e-6);
                let e: Vec<f64> = (0..3)
                    .map(|k| f64::from(x[o * 12 + k * 4 + j]).exp())
                    .collect();
                let tot: f64 = e.iter().sum();
                for k in 0..3 {
                    assert!((f64::from(out[o * 12 + k * 4 + j]) - e[k] / tot).abs() < 1e-6);
                }
            }
        }
        let mut lg = vec![0.0; 24];
        softmax(None, &x, &xd, 1, true, &mut lg);
        for (l, p) in lg.iter().zip(&out) {
            assert!((l - p.ln()).abs() < 1e-5);
        }
    }
}
