//! Dims arithmetic of the folding rules (and of the importer's view rules):
//! broadcasting, axes, Reshape targets, Slice ranges, Squeeze and Split.

use crate::engine::onnx::attrs::Attrs;
use crate::engine::onnx::proto::NodeProto;
use crate::engine::onnx::tensor::{Tensor, MAX_FOLDED};
use std::rc::Rc;

type R<T> = Result<T, String>;

/// Refuses a result of `dims` above the folding limit.
pub fn check_size(dims: &[usize], what: &str) -> R<usize> {
    let mut n: usize = 1;
    for &d in dims {
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_FOLDED)
            .ok_or_else(|| {
                format!(
                    "{what} would hold more than {MAX_FOLDED} elements (dims {dims:?}); refusing \
                     to compute it at import"
                )
            })?;
    }
    Ok(n)
}

/// NumPy broadcast of several dims.
pub fn broadcast_all(all: &[&[usize]]) -> R<Vec<usize>> {
    let r = all.iter().map(|d| d.len()).max().unwrap_or(0);
    let mut out = vec![1; r];
    for d in all {
        for (i, &x) in d.iter().enumerate() {
            let o = &mut out[r - d.len() + i];
            if *o == 1 {
                *o = x;
            } else if x != 1 && x != *o {
                return Err(format!("cannot broadcast {all:?}"));
            }
        }
    }
    Ok(out)
}

pub fn norm_axis(a: i64, r: usize) -> R<usize> {
    let ax = if a < 0 { a + r as i64 } else { a };
    usize::try_from(ax)
        .ok()
        .filter(|&x| x < r)
        .ok_or_else(|| format!("axis {a} is outside rank {r}"))
}

/// Reshape target dims for `dims` (0 copies unless `allowzero`, -1 infers).
pub fn resolve_shape(dims: &[usize], target: &[i64], allowzero: bool) -> R<Vec<usize>> {
    let n: usize = dims.iter().product();
    let mut out: Vec<i64> = target
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 && !allowzero {
                dims.get(i).map_or(-2, |&v| v as i64)
            } else {
                d
            }
        })
        .collect();
    let known: i64 = out.iter().filter(|&&d| d >= 0).product();
    if out.iter().filter(|&&d| d == -1).count() > 1 {
        return Err(format!("shape {target:?} has more than one -1"));
    }
    if let Some(p) = out.iter().position(|&d| d == -1) {
        if known == 0 || n as i64 % known != 0 {
            return Err(format!("cannot reshape {dims:?} to {target:?}"));
        }
        out[p] = n as i64 / known;
    }
    if out.iter().any(|&d| d < 0) || out.iter().product::<i64>() != n as i64 {
        return Err(format!("cannot reshape {dims:?} to {target:?}"));
    }
    Ok(out.iter().map(|&d| d as usize).collect())
}

/// Elements `start..` by `step`, `len` of them, per axis, from ONNX Slice
/// inputs (clamped as ONNX does).
pub fn slice_range(start: i64, end: i64, step: i64, d: usize) -> R<(usize, usize)> {
    if step == 0 {
        return Err("slice step 0".into());
    }
    let d = d as i64;
    let clamp = |v: i64, lo: i64, hi: i64| v.clamp(lo, hi);
    let norm = |v: i64| if v < 0 { v + d } else { v };
    let (s, e) = if step > 0 {
        (clamp(norm(start), 0, d), clamp(norm(end), 0, d))
    } else {
        (clamp(norm(start), -1, d - 1), clamp(norm(end), -1, d - 1))
    };
    let len = if step > 0 {
        ((e - s).max(0) + step - 1) / step
    } else {
        ((s - e).max(0) + (-step) - 1) / (-step)
    };
    Ok((s.max(0) as usize, len as usize))
}

/// Gathers elements of `t` by flat source indices into a tensor of `dims`.
pub fn slice_axes(
    dims: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> R<Vec<(usize, usize, usize, isize)>> {
    if starts.len() != ends.len() {
        return Err("starts and ends differ in length".into());
    }
    let mut out: Vec<(usize, usize, usize, isize)> = Vec::new();
    for i in 0..starts.len() {
        let a = norm_axis(axes.map_or(i as i64, |a| a[i]), dims.len())?;
        let st = steps.map_or(1, |s| s[i]);
        let (s, len) = slice_range(starts[i], ends[i], st, dims[a])?;
        if out.iter().any(|&(x, ..)| x == a) {
            return Err(format!("axis {a} is sliced twice"));
        }
        out.push((a, s, len, st as isize));
    }
    Ok(out)
}

pub fn squeeze_dims(dims: &[usize], axes: Option<&[i64]>, unsqueeze: bool) -> R<Vec<usize>> {
    if unsqueeze {
        let axes = axes.ok_or("axes are required")?;
        let r = dims.len() + axes.len();
        let mut at: Vec<usize> = axes.iter().map(|&x| norm_axis(x, r)).collect::<R<_>>()?;
        at.sort_unstable();
        if at.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("axes {axes:?} repeat"));
        }
        let mut src = dims.iter();
        Ok((0..r)
            .map(|i| {
                if at.contains(&i) {
                    1
                } else {
                    *src.next().unwrap_or(&1)
                }
            })
            .collect())
    } else {
        let r = dims.len();
        let at: Vec<usize> = match axes {
            Some(a) if !a.is_empty() => a.iter().map(|&x| norm_axis(x, r)).collect::<R<_>>()?,
            _ => (0..r).filter(|&i| dims[i] == 1).collect(),
        };
        if let Some(&bad) = at.iter().find(|&&i| dims[i] != 1) {
            return Err(format!("cannot squeeze axis {bad} of extent {}", dims[bad]));
        }
        Ok((0..r)
            .filter(|i| !at.contains(i))
            .map(|i| dims[i])
            .collect())
    }
}

/// Extents of ONNX Split's outputs along an axis of `d`.
pub fn split_sizes(
    node: &NodeProto,
    a: &Attrs,
    split: Option<Rc<Tensor>>,
    d: usize,
    opset: i64,
) -> R<Vec<usize>> {
    let given: Option<Vec<i64>> = if opset < 13 {
        a.ints("split")?
    } else {
        split.map(|t| t.int_values())
    };
    let k = node.output.len();
    let parts = match given {
        Some(s) => s
            .iter()
            .map(|&v| usize::try_from(v).map_err(|_| format!("split size {v} is negative")))
            .collect::<R<Vec<_>>>()?,
        None => {
            let n = if opset >= 18 && a.has("num_outputs") {
                usize::try_from(a.int("num_outputs", 0)?).map_err(|_| "num_outputs is negative")?
            } else {
                k
            };
            if n == 0 {
                return Err("splits into no outputs".into());
            }
            let per = d.div_ceil(n);
            (0..n).map(|i| per.min(d.saturating_sub(i * per))).collect()
        }
    };
    if parts.iter().sum::<usize>() != d || parts.len() != k {
        return Err(format!(
            "split sizes {parts:?} do not fit an axis of {d} into {k} outputs"
        ));
    }
    Ok(parts)
}
