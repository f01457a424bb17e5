//! Operators that only move data: transpose, slice, concatenation and
//! padding of row-major tensors of any rank. Each walks its output row by row
//! (the last axis), copying whole rows where the source is contiguous.

use super::nd::{Nd, RANK};
use super::par_rows;
use crate::engine::graph::{PadMode, SliceAxis};
use rayon::ThreadPool;

/// Output coordinates of row `row` (all axes but the last) into `coord`.
#[inline]
fn coords(mut row: usize, dims: &[usize], coord: &mut [usize]) {
    for k in (0..dims.len()).rev() {
        coord[k] = row % dims[k];
        row /= dims[k];
    }
}

/// `out` = `x` (dims `xd`) with its axes permuted: output axis `i` is input
/// axis `perm[i]`.
pub fn transpose(pool: Option<&ThreadPool>, x: &[f32], xd: &Nd, perm: &[usize], out: &mut [f32]) {
    let xs = xd.strides();
    // Output dims and the input stride of each, without unit axes, with
    // axes that stay neighbours merged.
    let mut dims = [1; RANK];
    let mut st = [0; RANK];
    let mut r = 0;
    for &p in &perm[..xd.rank] {
        let d = xd.dims[p];
        if d == 1 {
            continue;
        }
        if r > 0 && st[r - 1] == xs[p] * d {
            dims[r - 1] *= d;
            st[r - 1] = xs[p];
        } else {
            dims[r] = d;
            st[r] = xs[p];
            r += 1;
        }
    }
    if r == 0 {
        out.copy_from_slice(&x[..out.len()]);
        return;
    }
    let inner = dims[r - 1];
    let step = st[r - 1];
    par_rows(pool, out, inner, |row, dst| {
        let mut c = [0; RANK];
        coords(row, &dims[..r - 1], &mut c);
        let base: usize = (0..r - 1).map(|k| c[k] * st[k]).sum();
        if step == 1 {
            dst.copy_from_slice(&x[base..base + inner]);
        } else {
            for (i, o) in dst.iter_mut().enumerate() {
                *o = x[base + i * step];
            }
        }
    });
}

/// `out` = the window `axes` of `x` (dims `xd`, output dims `od`).
pub fn slice(
    pool: Option<&ThreadPool>,
    x: &[f32],
    xd: &Nd,
    axes: &[SliceAxis],
    out: &mut [f32],
    od: &Nd,
) {
    let xs = xd.strides();
    let mut start = 0isize;
    let mut step = [0isize; RANK];
    for k in 0..xd.rank {
        step[k] = xs[k] as isize;
    }
    for a in axes {
        start += (a.start * xs[a.axis]) as isize;
        step[a.axis] = a.step * xs[a.axis] as isize;
    }
    let r = od.rank;
    if r == 0 || od.numel() == 0 {
        if let (Some(o), 0) = (out.first_mut(), r) {
            *o = x[start as usize];
        }
        return;
    }
    let inner = od.dims[r - 1];
    let last = step[r - 1];
    par_rows(pool, out, inner, |row, dst| {
        let mut c = [0; RANK];
        coords(row, &od.dims[..r - 1], &mut c);
        let base = start + (0..r - 1).map(|k| c[k] as isize * step[k]).sum::<isize>();
        if last == 1 {
            let b = base as usize;
            dst.copy_from_slice(&x[b..b + inner]);
        } else {
            for (i, o) in dst.iter_mut().enumerate() {
                *o = x[(base + i as isize * last) as usize];
            }
        }
    });
}

/// `out` = the inputs `(data, dims)` joined along `axis` (dims `od`).
pub fn concat(
    pool: Option<&ThreadPool>,
    xs: &[(&[f32], Nd)],
    axis: usize,
    out: &mut [f32],
    od: &Nd,
) {
    let (outer, _, inner) = od.split(axis);
    let row = out.len() / outer.max(1);
    if row == 0 {
        return;
    }
    let _ = inner;
    par_rows(pool, out, row, |o, dst| {
        let mut off = 0;
        for (x, d) in xs {
            let n = d.dims[axis] * d.split(axis).2;
            dst[off..off + n].copy_from_slice(&x[o * n..(o + 1) * n]);
            off += n;
        }
    });
}

/// The input index read by output index `c` of an axis of extent `d` with
/// `before` values of padding, or `None` for the constant.
#[inline]
fn source(c: usize, d: usize, before: usize, mode: PadMode) -> Option<usize> {
    let i = c as isize - before as isize;
    let d = d as isize;
    if (0..d).contains(&i) {
        return Some(i as usize);
    }
    let j = match mode {
        PadMode::Constant(_) => return None,
        PadMode::Edge => i.clamp(0, d - 1),
        // Mirrored about the edges, periodically when the padding is wider
        // than the axis (as NumPy's reflect).
        PadMode::Reflect if d == 1 => 0,
        PadMode::Reflect => {
            let m = i.rem_euclid(2 * (d - 1));
            if m < d {
                m
            } else {
                2 * (d - 1) - m
            }
        }
        PadMode::Wrap => i.rem_euclid(d),
    };
    Some(j as usize)
}

/// `out` = `x` (dims `xd`) padded by `pads` (`(before, after)` per axis).
pub fn pad(
    pool: Option<&ThreadPool>,
    x: &[f32],
    xd: &Nd,
    pads: &[(usize, usize)],
    mode: PadMode,
    out: &mut [f32],
    od: &Nd,
) {
    let fill = match mode {
        PadMode::Constant(v) => v,
        _ => 0.0,
    };
    let r = od.rank;
    if r == 0 || od.numel() == 0 {
        return;
    }
    let xs = xd.strides();
    let inner = od.dims[r - 1];
    let (b, d) = (pads[r - 1].0, xd.dims[r - 1]);
    par_rows(pool, out, inner, |row, dst| {
        let mut c = [0; RANK];
        coords(row, &od.dims[..r - 1], &mut c);
        let mut base = 0;
        for k in 0..r - 1 {
            match source(c[k], xd.dims[k], pads[k].0, mode) {
                Some(i) => base += i * xs[k],
                None => {
                    dst.fill(fill);
                    return;
                }
            }
        }
        let src = &x[base..base + d];
        dst[b..b + d].copy_from_slice(src);
        for (i, o) in dst.iter_mut().enumerate() {
            if i < b || i >= b + d {
                *o = source(i, d, b, mode).map_or(fill, |j| src[j]);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive transpose by coordinates.
    fn naive_transpose(x: &[f32], d: &[usize], perm: &[usize]) -> Vec<f32> {
        let xd = Nd::new(d);
        let xs = xd.strides();
        let od: Vec<usize> = perm.iter().map(|&p| d[p]).collect();
        let o = Nd::new(&od);
        let os = o.strides();
        (0..o.numel())
            .map(|f| {
                let src: usize = (0..od.len())
                    .map(|k| (f / os[k] % od[k]) * xs[perm[k]])
                    .sum();
                x[src]
            })
            .collect()
    }

    #[test]
    fn transposes_match_coordinates() {
        let d = [2, 3, 1, 4, 5];
        let x: Vec<f32> = (0..120).map(|v| v as f32).collect();
        for perm in [
            [0, 1, 2, 3, 4],
            [0, 3, 4, 1, 2],
            [4, 3, 2, 1, 0],
            [0, 2, 1, 4, 3],
            [1, 0, 2, 3, 4],
        ] {
            let mut out = vec![0.0; 120];
            transpose(None, &x, &Nd::new(&d), &perm, &mut out);
            assert_eq!(out, naive_transpose(&x, &d, &perm), "{perm:?}");
        }
    }

    #[test]
    fn slices_pads_and_concats_by_hand() {
        // 2x5: rows 0..5 and 5..10.
        let x: Vec<f32> = (0..10).map(|v| v as f32).collect();
        let xd = Nd::new(&[2, 5]);
        let axes = [SliceAxis {
            axis: 1,
            start: 4,
            step: -2,
            len: 3,
        }];
        let mut out = vec![0.0; 6];
        slice(None, &x, &xd, &axes, &mut out, &Nd::new(&[2, 3]));
        assert_eq!(out, [4.0, 2.0, 0.0, 9.0, 7.0, 5.0]);

        let row = [1.0, 2.0, 3.0];
        let rd = Nd::new(&[1, 3]);
        let od = Nd::new(&[1, 8]);
        for (mode, want) in [
            (
                PadMode::Constant(-1.0),
                [-1.0, -1.0, 1.0, 2.0, 3.0, -1.0, -1.0, -1.0],
            ),
            (PadMode::Reflect, [3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0]),
            (PadMode::Edge, [1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0]),
            (PadMode::Wrap, [2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0]),
        ] {
            let mut out = vec![0.0; 8];
            pad(None, &row, &rd, &[(0, 0), (2, 3)], mode, &mut out, &od);
            assert_eq!(out, want, "{mode:?}");
        }
        // Padding a leading axis: the constant fills whole rows.
        let mut out = vec![0.0; 9];
        pad(
            None,
            &row,
            &rd,
            &[(1, 1), (0, 0)],
            PadMode::Constant(0.5),
            &mut out,
            &Nd::new(&[3, 3]),
        );
        assert_eq!(out, [0.5, 0.5, 0.5, 1.0, 2.0, 3.0, 0.5, 0.5, 0.5]);

        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [9.0, 8.0];
        let mut out = vec![0.0; 6];
        concat(
            None,
            &[(&a, Nd::new(&[2, 2])), (&b, Nd::new(&[2, 1]))],
            1,
            &mut out,
            &Nd::new(&[2, 3]),
        );
        assert_eq!(out, [1.0, 2.0, 9.0, 3.0, 4.0, 8.0]);
    }
}
