//! How an ONNX tensor sits on an engine value: a view.
//!
//! An engine value is a row-major tensor (its physical dims); an ONNX value is
//! that tensor with its axes permuted: logical axis `i` is physical axis
//! `perm[i]`. So a Transpose is free (a new permutation of the same data),
//! an NCHW image is held NHWC (`perm = [0, 3, 1, 2]`), and Keras's NHWC input
//! feeds the convolutions as it is. Axes of extent 1 can sit anywhere without
//! changing the data, so two arrangements hold the same values when their
//! non-unit axes come in the same order (`order`).
//!
//! A Reshape is free when it only splits axes, or merges axes that are
//! neighbours in the data in the right order; otherwise the data must first
//! be put in an order where it is (`reshape_order`), which for a channel
//! shuffle (`[N, g, C/g, H, W]` transposed, merged back) is one copy.

/// Logical axes (ascending) whose extent is not 1, in the order the data
/// holds them (outermost first).
pub fn order(ldims: &[usize], perm: &[usize]) -> Vec<usize> {
    let mut by_phys: Vec<usize> = (0..ldims.len()).collect();
    by_phys.sort_by_key(|&i| perm[i]);
    by_phys.retain(|&i| ldims[i] != 1);
    by_phys
}

/// The permutation that stores `ldims` with unit axes first (in logical
/// order: the batch axis stays outermost) and the others in `nonunit` order.
pub fn perm_from_order(ldims: &[usize], nonunit: &[usize]) -> Vec<usize> {
    let mut phys: Vec<usize> = (0..ldims.len()).filter(|&i| ldims[i] == 1).collect();
    phys.extend_from_slice(nonunit);
    let mut perm = vec![0; ldims.len()];
    for (p, &l) in phys.iter().enumerate() {
        perm[l] = p;
    }
    perm
}

/// Physical dims of a view.
pub fn physical(ldims: &[usize], perm: &[usize]) -> Vec<usize> {
    let mut p = vec![0; ldims.len()];
    for (i, &d) in ldims.iter().enumerate() {
        p[perm[i]] = d;
    }
    p
}

/// Groups the non-unit axes of `from` and `to` (equal element counts) into
/// blocks of equal products: `(from axes, to axes)` per block.
fn blocks(from: &[usize], to: &[usize]) -> Option<Vec<(Vec<usize>, Vec<usize>)>> {
    let fa: Vec<usize> = (0..from.len()).filter(|&i| from[i] != 1).collect();
    let ta: Vec<usize> = (0..to.len()).filter(|&i| to[i] != 1).collect();
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < fa.len() || j < ta.len() {
        let (mut bf, mut bt) = (vec![], vec![]);
        let (mut pf, mut pt) = (1usize, 1usize);
        loop {
            let take_from = i < fa.len() && (bf.is_empty() || (!bt.is_empty() && pf < pt));
            let take_to = j < ta.len() && (bt.is_empty() || (!bf.is_empty() && pt < pf));
            if take_from {
                pf = pf.checked_mul(from[fa[i]])?;
                bf.push(fa[i]);
                i += 1;
            } else if take_to {
                pt = pt.checked_mul(to[ta[j]])?;
                bt.push(ta[j]);
                j += 1;
            } else {
                break;
            }
        }
        if pf != pt {
            return None;
        }
        out.push((bf, bt));
    }
    Some(out)
}

/// How the data of a view (logical dims `from`, non-unit axes stored in
/// `ord`) reads as logical dims `to`: `Ok(order of to's non-unit axes)` when
/// no data has to move, else `Err(an order of from's axes that makes it so)`.
pub fn reshape_order(
    from: &[usize],
    ord: &[usize],
    to: &[usize],
) -> Result<Result<Vec<usize>, Vec<usize>>, String> {
    let bl = blocks(from, to)
        .ok_or_else(|| format!("cannot reshape {from:?} to {to:?}: element counts differ"))?;
    let pos = |a: usize| ord.iter().position(|&x| x == a);
    // A block's axes must be stored next to each other, in logical order.
    let fits = |bf: &[usize]| {
        let p: Vec<Option<usize>> = bf.iter().map(|&a| pos(a)).collect();
        p.windows(2)
            .all(|w| matches!((w[0], w[1]), (Some(a), Some(b)) if b == a + 1))
    };
    if bl.iter().all(|(bf, _)| fits(bf)) {
        let mut new = Vec::new();
        for &a in ord {
            if let Some((bf, bt)) = bl.iter().find(|(bf, _)| bf.first() == Some(&a)) {
                let _ = bf;
                new.extend_from_slice(bt);
            }
        }
        return Ok(Ok(new));
    }
    // Gather each block's axes, in logical order, where its first one is stored.
    let mut target = Vec::new();
    for &a in ord {
        let (bf, _) = bl
            .iter()
            .find(|(bf, _)| bf.contains(&a))
            .ok_or_else(|| format!("axis {a} is in no block"))?;
        let first_stored = ord.iter().find(|x| bf.contains(x)) == Some(&a);
        if first_stored {
            target.extend_from_slice(bf);
        }
    }
    Ok(Err(target))
}

/// Whether two arrangements of `ldims` hold the same data.
pub fn same_data(ldims: &[usize], a: &[usize], b: &[usize]) -> bool {
    order(ldims, a) == order(ldims, b)
}

/// Physical transpose taking data arranged by `from` to `to` (both
/// permutations of the same logical dims): output axis `j` is input axis
/// `t[j]`.
pub fn transpose_between(from: &[usize], to: &[usize]) -> Vec<usize> {
    let mut t = vec![0; to.len()];
    for (l, &p) in to.iter().enumerate() {
        t[p] = from[l];
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_nchw_image_held_nhwc_is_a_permutation() {
        let l = [1, 8, 5, 7];
        let perm = [0, 3, 1, 2];
        assert_eq!(physical(&l, &perm), vec![1, 5, 7, 8]);
        assert_eq!(order(&l, &perm), vec![2, 3, 1]);
        // Keras's NHWC input, transposed to NCHW, is the same data.
        let nhwc = [1, 5, 7, 8];
        let t = [0, 3, 1, 2];
        let l2: Vec<usize> = t.iter().map(|&i| nhwc[i]).collect();
        let perm2: Vec<usize> = t.iter().map(|&i| [0, 1, 2, 3][i]).collect();
        assert_eq!(l2, l);
        assert!(same_data(&l, &perm, &perm2));
    }

    #[test]
    fn squeeze_and_flatten_of_row_major_data_are_free() {
        // [N, C, 1, 1] stored NHWC -> [N, C].
        let r = reshape_order(&[1, 16, 1, 1], &[1], &[1, 16]).unwrap();
        assert_eq!(r, Ok(vec![1]));
        // [N, C, H, W] held NHWC -> [N, C*H*W] needs NCHW order first.
        let r = reshape_order(&[1, 4, 3, 3], &[2, 3, 1], &[1, 36]).unwrap();
        assert_eq!(r, Err(vec![1, 2, 3]));
    }

    #[test]
    fn a_channel_shuffle_costs_one_reorder() {
        // [1, 6, 4, 4] held NHWC; split channels into (2, 3): free.
        let r = reshape_order(&[1, 6, 4, 4], &[2, 3, 1], &[1, 2, 3, 4, 4]).unwrap();
        let split = r.unwrap();
        assert_eq!(split, vec![3, 4, 1, 2]);
        // Transpose (0, 2, 1, 3, 4): logical [1, 3, 2, 4, 4]; the data holds
        // the new axes in order 3, 4, 2, 1 (old 1 = new 2, old 2 = new 1).
        let ord = vec![3, 4, 2, 1];
        // Merging (3, 2) back to 6 needs axes 1, 2 together in order.
        let r = reshape_order(&[1, 3, 2, 4, 4], &ord, &[1, 6, 4, 4]).unwrap();
        let target = r.unwrap_err();
        assert_eq!(target, vec![3, 4, 1, 2]);
        let r = reshape_order(&[1, 3, 2, 4, 4], &target, &[1, 6, 4, 4]).unwrap();
        assert_eq!(r, Ok(vec![2, 3, 1]));
    }

    #[test]
    fn blocks_of_mixed_splits_and_merges() {
        assert!(reshape_order(&[6, 4], &[0, 1], &[4, 6]).unwrap().is_ok());
        assert!(reshape_order(&[6, 4], &[1, 0], &[4, 6]).unwrap().is_err());
        assert!(reshape_order(&[6, 4], &[0, 1], &[5, 5]).is_err());
        let t = transpose_between(&[0, 3, 1, 2], &[0, 1, 2, 3]);
        assert_eq!(t, vec![0, 3, 1, 2]);
    }
}
