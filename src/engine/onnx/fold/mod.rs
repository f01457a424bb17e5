//! Constant folding: a node whose inputs are all constants is evaluated when
//! the model is loaded, so exporters' shape arithmetic (`Shape` → `Gather` →
//! `Unsqueeze` → `Concat` → `Reshape`) and generated weights
//! (`ConstantOfShape`) become plain constants. Every result is size-checked
//! before it is allocated ([`MAX_FOLDED`] elements).

mod dims;

pub use dims::{
    broadcast_all, check_size, norm_axis, resolve_shape, slice_axes, split_sizes, squeeze_dims,
};

use super::attrs::Attrs;
use super::proto::{tensor_proto::DataType, NodeProto};
use super::tensor::{checked_numel, Data, Tensor};
use std::rc::Rc;

type R<T> = Result<T, String>;

/// For each flat index of `out`, the flat index of `d` it reads (broadcast).
fn source_index(out: &[usize], d: &[usize]) -> impl Fn(usize) -> usize {
    let r = out.len();
    let mut pad = vec![1; r - d.len()];
    pad.extend_from_slice(d);
    let mut stride = vec![0; r];
    let mut acc = 1;
    for k in (0..r).rev() {
        if pad[k] != 1 {
            stride[k] = acc;
        }
        acc *= pad[k];
    }
    let out = out.to_vec();
    move |mut f: usize| {
        let mut idx = 0;
        for k in (0..r).rev() {
            idx += (f % out[k]) * stride[k];
            f /= out[k];
        }
        idx
    }
}

/// `f` element-wise over broadcast operands (all f32 or all i64).
fn nary<T: Copy>(
    dims: &[&[usize]],
    vals: &[&[T]],
    mut f: impl FnMut(&[T]) -> T,
) -> R<(Vec<usize>, Vec<T>)> {
    let out = broadcast_all(dims)?;
    let n = check_size(&out, "the result")?;
    let maps: Vec<_> = dims.iter().map(|d| source_index(&out, d)).collect();
    let mut buf: Vec<T> = Vec::with_capacity(vals.len());
    let mut res = Vec::with_capacity(n);
    for i in 0..n {
        buf.clear();
        for (m, v) in maps.iter().zip(vals) {
            buf.push(v[m(i)]);
        }
        res.push(f(&buf));
    }
    Ok((out, res))
}

fn float_binary(op: &str, a: f32, b: f32) -> f32 {
    match op {
        "Add" | "Sum" | "Mean" => a + b,
        "Sub" => a - b,
        "Mul" => a * b,
        "Div" => a / b,
        "Pow" => a.powf(b),
        "Max" => a.max(b),
        "Min" => a.min(b),
        "Mod" => a % b,
        _ => f32::NAN,
    }
}

fn int_binary(op: &str, a: i64, b: i64) -> R<i64> {
    Ok(match op {
        "Add" | "Sum" => a.wrapping_add(b),
        "Sub" => a.wrapping_sub(b),
        "Mul" => a.wrapping_mul(b),
        "Div" => a.checked_div(b).ok_or("integer division by zero")?,
        "Mod" => a.checked_rem(b).ok_or("integer modulo by zero")?,
        "Pow" => a.wrapping_pow(u32::try_from(b).map_err(|_| "negative integer power")?),
        "Max" => a.max(b),
        "Min" => a.min(b),
        _ => return Err(format!("{op} of integers")),
    })
}

/// Arithmetic over any number of broadcast operands, left to right.
fn arith(op: &str, ts: &[Rc<Tensor>]) -> R<Tensor> {
    let dims: Vec<&[usize]> = ts.iter().map(|t| &t.dims[..]).collect();
    if ts.iter().all(|t| t.is_int()) && op != "Mean" {
        let vals: Vec<&[i64]> = ts.iter().filter_map(|t| t.ints()).collect();
        let mut err = None;
        let (d, v) = nary(&dims, &vals, |xs| {
            xs[1..].iter().fold(xs[0], |a, &b| {
                int_binary(op, a, b).unwrap_or_else(|e| {
                    err = Some(e);
                    0
                })
            })
        })?;
        return match err {
            Some(e) => Err(e),
            None => Ok(Tensor::i64s(d, v)),
        };
    }
    let fl: Vec<Vec<f32>> = ts.iter().map(|t| t.floats()).collect();
    let vals: Vec<&[f32]> = fl.iter().map(Vec::as_slice).collect();
    let k = ts.len() as f32;
    let (d, v) = nary(&dims, &vals, |xs| {
        let s = xs[1..].iter().fold(xs[0], |a, &b| float_binary(op, a, b));
        if op == "Mean" {
            s / k
        } else {
            s
        }
    })?;
    Ok(Tensor::f32s(d, v))
}

fn compare(op: &str, a: &Tensor, b: &Tensor) -> R<Tensor> {
    let out = broadcast_all(&[&a.dims, &b.dims])?;
    let n = check_size(&out, "the comparison")?;
    let (ma, mb) = (source_index(&out, &a.dims), source_index(&out, &b.dims));
    let ints = a.is_int() && b.is_int();
    let (ia, ib) = (a.int_values(), b.int_values());
    let (fa, fb) = (a.floats(), b.floats());
    use std::cmp::Ordering::*;
    let v = (0..n)
        .map(|i| {
            let ord = if ints {
                ia[ma(i)].partial_cmp(&ib[mb(i)])
            } else {
                fa[ma(i)].partial_cmp(&fb[mb(i)])
            };
            i64::from(matches!(
                (op, ord),
                ("Equal", Some(Equal))
                    | ("Less", Some(Less))
                    | ("Greater", Some(Greater))
                    | ("LessOrEqual", Some(Less | Equal))
                    | ("GreaterOrEqual", Some(Greater | Equal))
            ))
        })
        .collect();
    Ok(Tensor::i64s(out, v))
}

fn unary(op: &str, t: &Tensor) -> Option<Tensor> {
    if let (Data::I64(v), "Neg" | "Abs" | "Relu" | "Sign") = (&t.data, op) {
        let f = |x: i64| match op {
            "Neg" => x.wrapping_neg(),
            "Abs" => x.wrapping_abs(),
            "Relu" => x.max(0),
            _ => x.signum(),
        };
        return Some(Tensor::i64s(
            t.dims.clone(),
            v.iter().map(|&x| f(x)).collect(),
        ));
    }
    let f: fn(f32) -> f32 = match op {
        "Neg" => |x| -x,
        "Abs" => f32::abs,
        "Sqrt" => f32::sqrt,
        "Exp" => f32::exp,
        "Log" => f32::ln,
        "Reciprocal" => |x| 1.0 / x,
        "Floor" => f32::floor,
        "Ceil" => f32::ceil,
        "Round" => f32::round_ties_even,
        "Relu" => |x| x.max(0.0),
        "Sigmoid" => |x| 1.0 / (1.0 + (-x).exp()),
        "Tanh" => f32::tanh,
        "Sign" => |x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        },
        "Erf" => |x| libm::erf(f64::from(x)) as f32,
        _ => return None,
    };
    Some(Tensor::f32s(
        t.dims.clone(),
        t.floats().iter().map(|&x| f(x)).collect(),
    ))
}

/// An axis of rank `r` (negative counts from the end).
fn pick(t: &Tensor, dims: Vec<usize>, idx: impl Iterator<Item = usize>) -> Tensor {
    match &t.data {
        Data::F32(v) => Tensor::f32s(dims, idx.map(|i| v[i]).collect()),
        Data::I64(v) => Tensor::i64s(dims, idx.map(|i| v[i]).collect()),
    }
}

fn strides(d: &[usize]) -> Vec<usize> {
    let mut s = vec![1; d.len()];
    for k in (0..d.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * d[k + 1];
    }
    s
}

/// Flat source index of each output element, for an output of `od` whose
/// coordinate `c` along axis `k` reads `map(k, c)` of an input of strides `is`.
fn remap(
    od: &[usize],
    is: &[usize],
    map: impl Fn(usize, usize) -> usize,
) -> impl Iterator<Item = usize> {
    let n: usize = od.iter().product();
    let od = od.to_vec();
    let is = is.to_vec();
    (0..n).map(move |mut f| {
        let mut idx = 0;
        for k in (0..od.len()).rev() {
            idx += map(k, f % od[k]) * is[k];
            f /= od[k];
        }
        idx
    })
}

pub fn transpose(t: &Tensor, perm: &[usize]) -> Tensor {
    let is = strides(&t.dims);
    let od: Vec<usize> = perm.iter().map(|&p| t.dims[p]).collect();
    let ps: Vec<usize> = perm.iter().map(|&p| is[p]).collect();
    let idx = remap(&od, &ps, |_, c| c);
    pick(t, od, idx)
}

pub fn concat(ts: &[&Tensor], axis: usize) -> R<Tensor> {
    let first = ts.first().ok_or("has no inputs")?;
    for t in ts {
        let same = t.dims.len() == first.dims.len()
            && t.dims
                .iter()
                .zip(&first.dims)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if !same {
            return Err("inputs differ outside the concatenation axis".into());
        }
    }
    let outer: usize = first.dims[..axis].iter().product();
    let mut dims = first.dims.clone();
    dims[axis] = ts.iter().map(|t| t.dims[axis]).sum();
    check_size(&dims, "the concatenation")?;
    let chunk = |t: &Tensor| t.numel() / outer.max(1);
    if ts.iter().all(|t| t.is_int()) {
        let mut out = Vec::new();
        for o in 0..outer {
            for t in ts {
                let c = chunk(t);
                out.extend_from_slice(&t.ints().unwrap_or(&[])[o * c..(o + 1) * c]);
            }
        }
        return Ok(Tensor::i64s(dims, out));
    }
    let fs: Vec<Vec<f32>> = ts.iter().map(|t| t.floats()).collect();
    let mut out = Vec::new();
    for o in 0..outer {
        for (t, f) in ts.iter().zip(&fs) {
            let c = chunk(t);
            out.extend_from_slice(&f[o * c..(o + 1) * c]);
        }
    }
    Ok(Tensor::f32s(dims, out))
}

/// Per-axis `(start, len, step)` of an ONNX Slice of `dims`.
fn slice(t: &Tensor, axes: &[(usize, usize, usize, isize)]) -> Tensor {
    let mut od = t.dims.clone();
    let mut start = vec![0usize; od.len()];
    let mut step = vec![1isize; od.len()];
    for &(a, s, len, st) in axes {
        od[a] = len;
        start[a] = s;
        step[a] = st;
    }
    let is = strides(&t.dims);
    let idx = remap(&od, &is, |k, c| {
        (start[k] as isize + c as isize * step[k]) as usize
    });
    pick(t, od, idx)
}

fn gather(t: &Tensor, idx: &Tensor, axis: usize) -> R<Tensor> {
    let d = t.dims[axis] as i64;
    let ids: Vec<usize> = idx
        .int_values()
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + d } else { i };
            usize::try_from(j)
                .ok()
                .filter(|&j| (j as i64) < d)
                .ok_or_else(|| format!("index {i} is outside an axis of {d}"))
        })
        .collect::<R<_>>()?;
    let mut od = t.dims[..axis].to_vec();
    od.extend_from_slice(&idx.dims);
    od.extend_from_slice(&t.dims[axis + 1..]);
    check_size(&od, "the gather")?;
    let outer: usize = t.dims[..axis].iter().product();
    let inner: usize = t.dims[axis + 1..].iter().product();
    let src = (0..outer).flat_map(|o| {
        ids.iter()
            .flat_map(move |&i| (0..inner).map(move |j| (o * t.dims[axis] + i) * inner + j))
    });
    Ok(pick(t, od, src))
}

fn dims_of(t: &Tensor) -> R<Vec<usize>> {
    let (d, _) = checked_numel(&t.int_values())?;
    Ok(d)
}

/// Axes from an attribute (old opsets) or an input (new ones).
fn axes_input(
    a: &Attrs,
    ins: &[Option<Rc<Tensor>>],
    i: usize,
    attr_until: i64,
    opset: i64,
) -> R<Option<Vec<i64>>> {
    if opset < attr_until {
        a.ints("axes")
    } else {
        Ok(ins.get(i).cloned().flatten().map(|t| t.int_values()))
    }
}

/// Evaluates `node` on constant inputs (`None`: an absent optional input);
/// `Ok(None)` when the operator is not one that folds.
pub fn fold(
    node: &NodeProto,
    a: &Attrs,
    ins: &[Option<Rc<Tensor>>],
    opset: i64,
) -> R<Option<Vec<Tensor>>> {
    let op = node.op_type.as_str();
    let x = || {
        ins.first()
            .cloned()
            .flatten()
            .ok_or("a required input is missing".to_string())
    };
    let need = |i: usize| -> R<Rc<Tensor>> {
        ins.get(i)
            .cloned()
            .flatten()
            .ok_or_else(|| format!("input {i} is missing"))
    };
    let one = |t: Tensor| Ok(Some(vec![t]));
    match op {
        "Identity" | "Dropout" => {
            let t = (*x()?).clone();
            if op == "Dropout" && node.output.get(1).is_some_and(|m| !m.is_empty()) {
                let mask = Tensor::i64s(t.dims.clone(), vec![1; t.numel()]);
                return Ok(Some(vec![t, mask]));
            }
            one(t)
        }
        "Cast" | "CastLike" => {
            let t = x()?;
            let to = if op == "Cast" {
                a.int("to", DataType::Float as i64)?
            } else if need(1)?.is_int() {
                DataType::Int64 as i64
            } else {
                DataType::Float as i64
            };
            let float = [
                DataType::Float,
                DataType::Double,
                DataType::Float16,
                DataType::Bfloat16,
            ]
            .iter()
            .any(|d| *d as i64 == to);
            if float {
                one(Tensor::f32s(t.dims.clone(), t.floats()))
            } else if to == DataType::Bool as i64 {
                let v = t.floats().iter().map(|&f| i64::from(f != 0.0)).collect();
                one(Tensor::i64s(t.dims.clone(), v))
            } else {
                one(Tensor::i64s(t.dims.clone(), t.int_values()))
            }
        }
        "Shape" => {
            let t = x()?;
            let r = t.dims.len() as i64;
            let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let s = clampi(a.int("start", 0)?);
            let e = clampi(a.int("end", r)?);
            let v: Vec<i64> = t.dims[s..e.max(s)].iter().map(|&d| d as i64).collect();
            one(Tensor::i64s(vec![v.len()], v))
        }
        "Size" => one(Tensor::i64s(vec![], vec![x()?.numel() as i64])),
        "Reshape" => {
            let t = x()?;
            let target = if opset < 5 {
                a.ints("shape")?.ok_or("the shape attribute is required")?
            } else {
                need(1)?.int_values()
            };
            let dims = resolve_shape(&t.dims, &target, a.int("allowzero", 0)? != 0)?;
            one(Tensor {
                dims,
                data: t.data.clone(),
            })
        }
        "Flatten" => {
            let t = x()?;
            let r = t.dims.len();
            let axis = a.int("axis", 1)?;
            let ax = if axis < 0 { axis + r as i64 } else { axis };
            if !(0..=r as i64).contains(&ax) {
                return Err(format!("axis {axis} is outside rank {r}"));
            }
            let outer: usize = t.dims[..ax as usize].iter().product();
            let dims = vec![outer, t.numel() / outer.max(1)];
            one(Tensor {
                dims,
                data: t.data.clone(),
            })
        }
        "Squeeze" | "Unsqueeze" => {
            let t = x()?;
            let axes = axes_input(a, ins, 1, 13, opset)?;
            let dims = squeeze_dims(&t.dims, axes.as_deref(), op == "Unsqueeze")?;
            one(Tensor {
                dims,
                data: t.data.clone(),
            })
        }
        "Transpose" => {
            let t = x()?;
            let r = t.dims.len();
            let perm = match a.ints("perm")? {
                Some(p) => p.iter().map(|&v| norm_axis(v, r)).collect::<R<Vec<_>>>()?,
                None => (0..r).rev().collect(),
            };
            one(transpose(&t, &perm))
        }
        "Concat" => {
            let ts: Vec<Rc<Tensor>> = ins.iter().flatten().cloned().collect();
            let r = ts.first().map_or(0, |t| t.dims.len());
            let axis = norm_axis(a.int("axis", 0)?, r)?;
            let refs: Vec<&Tensor> = ts.iter().map(|t| t.as_ref()).collect();
            one(concat(&refs, axis)?)
        }
        "Slice" => {
            let t = x()?;
            let (starts, ends, axes, steps) = if opset < 10 {
                (
                    a.ints("starts")?.ok_or("starts is required")?,
                    a.ints("ends")?.ok_or("ends is required")?,
                    a.ints("axes")?,
                    None,
                )
            } else {
                (
                    need(1)?.int_values(),
                    need(2)?.int_values(),
                    ins.get(3).cloned().flatten().map(|t| t.int_values()),
                    ins.get(4).cloned().flatten().map(|t| t.int_values()),
                )
            };
            let ax = slice_axes(&t.dims, &starts, &ends, axes.as_deref(), steps.as_deref())?;
            one(slice(&t, &ax))
        }
        "Gather" => {
            let t = x()?;
            let axis = norm_axis(a.int("axis", 0)?, t.dims.len())?;
            one(gather(&t, &*need(1)?, axis)?)
        }
        "Split" => {
            let t = x()?;
            let axis = norm_axis(a.int("axis", 0)?, t.dims.len())?;
            let parts = split_sizes(node, a, ins.get(1).cloned().flatten(), t.dims[axis], opset)?;
            let mut start = 0;
            let mut out = Vec::new();
            for len in parts {
                out.push(slice(&t, &[(axis, start, len, 1)]));
                start += len;
            }
            Ok(Some(out))
        }
        "ConstantOfShape" => {
            let dims = dims_of(&*x()?)?;
            check_size(&dims, "ConstantOfShape")?;
            let n: usize = dims.iter().product();
            let value = a.tensor("value", None)?;
            match value {
                Some(v) if v.numel() != 1 => Err("value must hold one element".into()),
                Some(v) if v.is_int() => one(Tensor::i64s(dims, vec![v.int_values()[0]; n])),
                Some(v) => one(Tensor::f32s(dims, vec![v.floats()[0]; n])),
                None => one(Tensor::f32s(dims, vec![0.0; n])),
            }
        }
        "Range" => {
            let (s, l, d) = (x()?, need(1)?, need(2)?);
            if s.is_int() && l.is_int() && d.is_int() {
                let (s, l, d) = (s.int_values()[0], l.int_values()[0], d.int_values()[0]);
                if d == 0 {
                    return Err("Range with delta 0".into());
                }
                let n = ((l - s) as f64 / d as f64).ceil().max(0.0) as usize;
                check_size(&[n], "Range")?;
                one(Tensor::i64s(
                    vec![n],
                    (0..n as i64).map(|i| s + i * d).collect(),
                ))
            } else {
                let (s, l, d) = (s.floats()[0], l.floats()[0], d.floats()[0]);
                let n = ((l - s) / d).ceil();
                if !n.is_finite() {
                    return Err("Range with delta 0".into());
                }
                let n = n.max(0.0) as usize;
                check_size(&[n], "Range")?;
                one(Tensor::f32s(
                    vec![n],
                    (0..n).map(|i| s + i as f32 * d).collect(),
                ))
            }
        }
        "Expand" => {
            let t = x()?;
            let shape = dims_of(&*need(1)?)?;
            let out = broadcast_all(&[&t.dims, &shape])?;
            check_size(&out, "Expand")?;
            let m = source_index(&out, &t.dims);
            let n: usize = out.iter().product();
            one(pick(&t, out, (0..n).map(m)))
        }
        "Tile" => {
            let t = x()?;
            let reps = need(1)?.int_values();
            if reps.len() != t.dims.len() || reps.iter().any(|&r| r < 0) {
                return Err(format!("repeats {reps:?} do not fit rank {}", t.dims.len()));
            }
            let od: Vec<usize> = t
                .dims
                .iter()
                .zip(&reps)
                .map(|(&d, &r)| d * r as usize)
                .collect();
            check_size(&od, "Tile")?;
            let dims = t.dims.clone();
            let idx = remap(&od, &strides(&t.dims), move |k, c| c % dims[k]);
            one(pick(&t, od, idx))
        }
        "Where" => {
            let (c, p, q) = (x()?, need(1)?, need(2)?);
            let cv = c.int_values();
            if p.is_int() && q.is_int() {
                let (pv, qv) = (p.int_values(), q.int_values());
                let ci: Vec<i64> = cv.clone();
                let (d, v) = nary(
                    &[&c.dims, &p.dims, &q.dims],
                    &[&ci[..], &pv[..], &qv[..]],
                    |xs| {
                        if xs[0] != 0 {
                            xs[1]
                        } else {
                            xs[2]
                        }
                    },
                )?;
                one(Tensor::i64s(d, v))
            } else {
                let cf: Vec<f32> = cv.iter().map(|&v| v as f32).collect();
                let (pf, qf) = (p.floats(), q.floats());
                let (d, v) = nary(
                    &[&c.dims, &p.dims, &q.dims],
                    &[&cf[..], &pf[..], &qf[..]],
                    |xs| {
                        if xs[0] != 0.0 {
                            xs[1]
                        } else {
                            xs[2]
                        }
                    },
                )?;
                one(Tensor::f32s(d, v))
            }
        }
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" => {
            one(compare(op, &*x()?, &*need(1)?)?)
        }
        "Not" => {
            let t = x()?;
            one(Tensor::i64s(
                t.dims.clone(),
                t.int_values().iter().map(|&v| i64::from(v == 0)).collect(),
            ))
        }
        "And" | "Or" | "Xor" => {
            let (p, q) = (x()?, need(1)?);
            let (pv, qv) = (p.int_values(), q.int_values());
            let (d, v) = nary(&[&p.dims, &q.dims], &[&pv[..], &qv[..]], |xs| {
                let (u, w) = (xs[0] != 0, xs[1] != 0);
                i64::from(match op {
                    "And" => u && w,
                    "Or" => u || w,
                    _ => u != w,
                })
            })?;
            one(Tensor::i64s(d, v))
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Mod" | "Max" | "Min" | "Sum" | "Mean" => {
            let ts: Vec<Rc<Tensor>> = ins.iter().flatten().cloned().collect();
            if ts.is_empty() {
                return Err("has no inputs".into());
            }
            one(arith(op, &ts)?)
        }
        "Clip" => {
            let t = x()?;
            let (lo, hi) = if opset < 11 {
                (a.float("min", f32::MIN)?, a.float("max", f32::MAX)?)
            } else {
                (
                    ins.get(1)
                        .cloned()
                        .flatten()
                        .and_then(|t| t.scalar())
                        .unwrap_or(f32::MIN),
                    ins.get(2)
                        .cloned()
                        .flatten()
                        .and_then(|t| t.scalar())
                        .unwrap_or(f32::MAX),
                )
            };
            let v = t.floats().iter().map(|&x| x.max(lo).min(hi)).collect();
            if t.is_int() {
                let v: Vec<f32> = v;
                return one(Tensor::i64s(
                    t.dims.clone(),
                    v.iter().map(|&f| f as i64).collect(),
                ));
            }
            one(Tensor::f32s(t.dims.clone(), v))
        }
        "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd" => {
            let t = x()?;
            let until = if op == "ReduceSum" { 13 } else { 18 };
            let axes = axes_input(a, ins, 1, until, opset)?;
            one(reduce(
                op,
                &t,
                axes.as_deref(),
                a.int("keepdims", 1)? != 0,
                a.int("noop_with_empty_axes", 0)? != 0,
            )?)
        }
        "MatMul" => {
            let (p, q) = (x()?, need(1)?);
            let (&[m, k], &[k2, n]) = (&p.dims[..], &q.dims[..]) else {
                return Err("MatMul of constants needs 2-D operands".into());
            };
            if k != k2 {
                return Err(format!("cannot multiply {:?} by {:?}", p.dims, q.dims));
            }
            check_size(&[m, n], "MatMul")?;
            let (pf, qf) = (p.floats(), q.floats());
            let mut out = vec![0.0f32; m * n];
            for i in 0..m {
                for t in 0..k {
                    let av = pf[i * k + t];
                    for j in 0..n {
                        out[i * n + j] += av * qf[t * n + j];
                    }
                }
            }
            one(Tensor::f32s(vec![m, n], out))
        }
        other => Ok(unary(other, &*x()?).map(|t| vec![t])),
    }
}

/// Dims after ONNX Squeeze (`unsqueeze = false`) or Unsqueeze of `axes`.
fn reduce(op: &str, t: &Tensor, axes: Option<&[i64]>, keep: bool, noop: bool) -> R<Tensor> {
    let r = t.dims.len();
    let axes: Vec<usize> = match axes {
        Some(a) if !a.is_empty() => a.iter().map(|&x| norm_axis(x, r)).collect::<R<_>>()?,
        _ if noop => return Ok(t.clone()),
        _ => (0..r).collect(),
    };
    let od: Vec<usize> = (0..r)
        .map(|i| if axes.contains(&i) { 1 } else { t.dims[i] })
        .collect();
    let n: usize = od.iter().product();
    let (init, f): (f32, fn(f32, f32) -> f32) = match op {
        "ReduceSum" | "ReduceMean" => (0.0, |a, b| a + b),
        "ReduceMax" => (f32::NEG_INFINITY, f32::max),
        "ReduceMin" => (f32::INFINITY, f32::min),
        _ => (1.0, |a, b| a * b),
    };
    let mut acc = vec![init; n];
    let m = source_index(&t.dims, &od);
    for (i, &v) in t.floats().iter().enumerate() {
        acc[m(i)] = f(acc[m(i)], v);
    }
    if op == "ReduceMean" {
        let c = (t.numel() / n.max(1)) as f32;
        acc.iter_mut().for_each(|v| *v /= c);
    }
    let dims = if keep {
        od
    } else {
        (0..r)
            .filter(|i| !axes.contains(i))
            .map(|i| t.dims[i])
            .collect()
    };
    if t.is_int() {
        return Ok(Tensor::i64s(dims, acc.iter().map(|&v| v as i64).collect()));
    }
    Ok(Tensor::f32s(dims, acc))
}

#[cfg(test)]
mod tests;
