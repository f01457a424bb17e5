//! Reductions over any axes and softmax along any axis.

use super::super::attrs::Attrs;
use super::super::convert::{Importer, Val, View};
use super::super::fold::norm_axis;
use super::super::proto::NodeProto;
use super::R;
use crate::engine::graph::{Op, ReduceOp};

impl Importer<'_> {
    pub(super) fn reduce(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let (op, since) = match node.op_type.as_str() {
            "ReduceSum" => (ReduceOp::Sum, 13),
            "ReduceMean" => (ReduceOp::Mean, 18),
            "ReduceMax" => (ReduceOp::Max, 18),
            "ReduceMin" => (ReduceOp::Min, 18),
            "ReduceProd" => (ReduceOp::Prod, 18),
            "ReduceL1" => (ReduceOp::L1, 18),
            "ReduceL2" => (ReduceOp::L2, 18),
            "ReduceLogSum" => (ReduceOp::LogSum, 18),
            "ReduceLogSumExp" => (ReduceOp::LogSumExp, 18),
            "ReduceSumSquare" => (ReduceOp::SumSquare, 18),
            other => return Err(super::unsupported_op(other)),
        };
        let axes: Option<Vec<i64>> = if self.opset < since {
            a.ints("axes")?
        } else {
            self.opt_constant(node, 1)?.map(|t| t.int_values())
        };
        let keep = a.int("keepdims", 1)? != 0;
        let v = self.act(&node.input[0])?;
        let l = self.ldims(&v);
        let r = l.len();
        let axes: Vec<usize> = match axes {
            Some(ax) if !ax.is_empty() => ax.iter().map(|&x| norm_axis(x, r)).collect::<R<_>>()?,
            _ if a.int("noop_with_empty_axes", 0)? != 0 => return Ok(Val::Act(v)),
            _ => (0..r).collect(),
        };
        if self.batched && axes.contains(&0) {
            return Err("reducing over the batch dimension is not supported".into());
        }
        let phys: Vec<usize> = axes.iter().map(|&x| v.perm[x]).collect();
        let id = self.push(name, Op::Reduce { op, axes: phys }, &[v.id])?;
        let out = Importer::like(&v, id);
        if keep {
            return Ok(Val::Act(out));
        }
        let to: Vec<usize> = (0..r).filter(|i| !axes.contains(i)).map(|i| l[i]).collect();
        Ok(Val::Act(self.reshape_to(
            &out,
            &to,
            &format!("{name}.squeeze"),
        )?))
    }

    pub(super) fn softmax(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let log = node.op_type == "LogSoftmax";
        let v = self.act(&node.input[0])?;
        let l = self.ldims(&v);
        let r = l.len();
        if r == 0 {
            return Err("softmax of a scalar".into());
        }
        let default = if self.opset < 13 { 1 } else { -1 };
        let axis = norm_axis(a.int("axis", default)?, r)?;
        if self.batched && axis == 0 {
            return Err("softmax over the batch dimension is not supported".into());
        }
        if self.opset >= 13 || axis == r - 1 {
            let id = self.push(
                name,
                Op::Softmax {
                    axis: v.perm[axis],
                    log,
                },
                &[v.id],
            )?;
            return Ok(Val::Act(Importer::like(&v, id)));
        }
        // Before opset 13 the input is flattened to 2-D at `axis`.
        let outer: usize = l[..axis].iter().product();
        let flat = self.reshape_to(
            &v,
            &[outer, l[axis..].iter().product()],
            &format!("{name}.2d"),
        )?;
        let id = self.push(
            &format!("{name}.softmax"),
            Op::Softmax {
                axis: flat.perm[1],
                log,
            },
            &[flat.id],
        )?;
        let out = View {
            id,
            perm: flat.perm.clone(),
        };
        Ok(Val::Act(self.reshape_to(&out, &l, name)?))
    }
}
