//! Dims of a batch on the stack (no allocation at inference): a value's dims
//! for one item with the session's batch put in front as axis 0, and the
//! row-major strides and index arithmetic the layout operators share.

use crate::engine::graph::MAX_RANK;

/// The highest rank of a batched value: the item's rank plus the batch axis.
pub const RANK: usize = MAX_RANK + 1;

/// Dims of a row-major tensor, at most [`RANK`] of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nd {
    pub rank: usize,
    pub dims: [usize; RANK],
}

impl Nd {
    /// `dims` of one item with `batch` items in front.
    pub fn batched(batch: usize, dims: &[usize]) -> Nd {
        let mut d = [1; RANK];
        d[0] = batch;
        d[1..=dims.len()].copy_from_slice(dims);
        Nd {
            rank: dims.len() + 1,
            dims: d,
        }
    }

    pub fn new(dims: &[usize]) -> Nd {
        let mut d = [1; RANK];
        d[..dims.len()].copy_from_slice(dims);
        Nd {
            rank: dims.len(),
            dims: d,
        }
    }

    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    /// Row-major strides.
    pub fn strides(&self) -> [usize; RANK] {
        let mut s = [0; RANK];
        let mut acc = 1;
        for i in (0..self.rank).rev() {
            s[i] = acc;
            acc *= self.dims[i];
        }
        s
    }

    /// Product of the dims before `axis`, the dim, and the product after it.
    pub fn split(&self, axis: usize) -> (usize, usize, usize) {
        let d = self.dims();
        (
            d[..axis].iter().product(),
            d[axis],
            d[axis + 1..].iter().product(),
        )
    }
}

/// Decodes a flat index of the first `rank` axes of `dims` into an offset
/// with `strides` (row-major order, last axis fastest).
#[inline]
pub fn offset(mut flat: usize, dims: &[usize], strides: &[usize]) -> usize {
    let mut off = 0;
    for k in (0..dims.len()).rev() {
        let d = dims[k];
        off += (flat % d) * strides[k];
        flat /= d;
    }
    off
}
