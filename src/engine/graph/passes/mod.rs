//! Graph rewrites a session runs before it compiles a graph: padding folded
//! into the convolutions and pools that follow it (`pad`), then the layers
//! that follow a GEMM, or any op that can apply an activation, folded into it
//! (`fuse`), then dead nodes dropped (`prune`). Each pass maps a valid graph
//! to a valid graph computing the same outputs.

mod fuse;
mod pad;

pub use fuse::fuse;
pub use pad::fold_pads;

use super::{Graph, Node, ValueId};
use crate::engine::EngineError;

/// The passes a session runs with fusion on.
pub fn optimize(g: &Graph) -> Result<Graph, EngineError> {
    let g = fold_pads(g)?;
    let g = fuse(&g)?;
    Ok(prune(g))
}

/// Keeps only the nodes the outputs depend on (and the input), renumbered.
pub fn prune(g: Graph) -> Graph {
    let outputs = g.output_ids();
    let mut live = vec![false; g.nodes.len()];
    live[0] = true;
    for &o in &outputs {
        live[o] = true;
    }
    for i in (0..g.nodes.len()).rev() {
        if live[i] {
            for &j in &g.nodes[i].inputs {
                live[j] = true;
            }
        }
    }
    let mut new_id = vec![usize::MAX; g.nodes.len()];
    let mut nodes: Vec<Node> = Vec::new();
    for (i, n) in g.nodes.into_iter().enumerate() {
        if live[i] {
            new_id[i] = nodes.len();
            let inputs = n.inputs.iter().map(|&j| new_id[j]).collect();
            nodes.push(Node { inputs, ..n });
        }
    }
    let outputs: Vec<ValueId> = if g.outputs.is_empty() {
        Vec::new()
    } else {
        outputs.iter().map(|&o| new_id[o]).collect()
    };
    Graph {
        nodes,
        outputs,
        ..g
    }
}

/// Each value's consumers (node indices), outputs not included.
pub(crate) fn readers(g: &Graph) -> Vec<Vec<usize>> {
    let mut r = vec![Vec::new(); g.nodes.len()];
    for (j, n) in g.nodes.iter().enumerate() {
        for &i in &n.inputs {
            if !r[i].contains(&j) {
                r[i].push(j);
            }
        }
    }
    r
}

/// Rebuilds `g` keeping the nodes where `keep` is true, with inputs renamed
/// by `alias` (a value replaced by another); outputs follow the renaming.
pub(crate) fn rebuild(g: &Graph, nodes: Vec<Option<Node>>, alias: &[ValueId]) -> Graph {
    let resolve = |mut v: ValueId| {
        while alias[v] != v {
            v = alias[v];
        }
        v
    };
    let mut new_id = vec![usize::MAX; nodes.len()];
    let mut out: Vec<Node> = Vec::new();
    for (i, n) in nodes.into_iter().enumerate() {
        if let Some(mut n) = n {
            n.inputs = n.inputs.iter().map(|&j| new_id[resolve(j)]).collect();
            new_id[i] = out.len();
            out.push(n);
        }
    }
    let outputs = g.output_ids().iter().map(|&o| new_id[resolve(o)]).collect();
    Graph {
        name: g.name.clone(),
        input: g.input.clone(),
        fixed_batch: g.fixed_batch,
        nodes: out,
        outputs,
    }
}

#[cfg(test)]
mod tests;
