//! Element-wise operations of two tensors with NumPy broadcasting (equal
//! ranks, extent 1 broadcast), then an activation: `out = act(a op b)`.
//!
//! The dims are first reduced to as few axes as the broadcast pattern allows
//! (`[n, h, w, c] * [n, 1, 1, c]`, squeeze-and-excite's scaling, becomes
//! `[n, h*w, c] * [n, 1, c]`), then the output is walked row by row over its
//! last axis, where each operand is either contiguous or one repeated value;
//! rows are spread over the threads and vectorized.

use super::nd::{offset, Nd, RANK};
use super::par_rows;
use crate::engine::gemm::Activation;
use crate::engine::graph::BinOp;
use crate::engine::simd::{dispatch, Isa, Simd, SimdFn};
use rayon::ThreadPool;

/// The operands' broadcast pattern with merged axes.
struct Plan {
    rank: usize,
    dims: [usize; RANK],
    sa: [usize; RANK],
    sb: [usize; RANK],
}

fn plan(a: &Nd, b: &Nd, out: &Nd) -> Plan {
    let mut dims = [1; RANK];
    let mut fa = [false; RANK];
    let mut fb = [false; RANK];
    let mut rank = 0;
    for i in 0..out.rank {
        let d = out.dims[i];
        if d == 1 {
            continue;
        }
        let (xa, xb) = (a.dims[i] == d, b.dims[i] == d);
        if rank > 0 && fa[rank - 1] == xa && fb[rank - 1] == xb {
            dims[rank - 1] *= d;
        } else {
            dims[rank] = d;
            fa[rank] = xa;
            fb[rank] = xb;
            rank += 1;
        }
    }
    let strides = |full: &[bool; RANK]| {
        let mut s = [0; RANK];
        let mut acc = 1;
        for i in (0..rank).rev() {
            if full[i] {
                s[i] = acc;
                acc *= dims[i];
            }
        }
        s
    };
    Plan {
        rank,
        dims,
        sa: strides(&fa),
        sb: strides(&fb),
    }
}

/// `out = act(a op b)`, broadcasting `a` and `b` (dims `ad`, `bd`) to `od`.
#[allow(clippy::too_many_arguments)]
pub fn binary(
    isa: Isa,
    pool: Option<&ThreadPool>,
    op: BinOp,
    act: Activation,
    (a, ad): (&[f32], &Nd),
    (b, bd): (&[f32], &Nd),
    out: &mut [f32],
    od: &Nd,
) {
    let p = plan(ad, bd, od);
    if p.rank == 0 {
        if let Some(o) = out.first_mut() {
            *o = act.apply(op.apply(a[0], b[0]));
        }
        return;
    }
    let last = p.rank - 1;
    let inner = p.dims[last];
    let outer = &p.dims[..last];
    par_rows(pool, out, inner, |row, dst| {
        let oa = offset(row, outer, &p.sa[..last]);
        let ob = offset(row, outer, &p.sb[..last]);
        let xa = if p.sa[last] == 1 {
            Operand::Row(&a[oa..oa + inner])
        } else {
            Operand::One(a[oa])
        };
        let xb = if p.sb[last] == 1 {
            Operand::Row(&b[ob..ob + inner])
        } else {
            Operand::One(b[ob])
        };
        row_op(isa, op, xa, xb, dst);
        if act != Activation::None {
            super::act_in_place(isa, act, dst);
        }
    });
}

/// One operand of a row: contiguous values, or one value repeated.
#[derive(Clone, Copy)]
pub enum Operand<'a> {
    Row(&'a [f32]),
    One(f32),
}

/// `dst[i] = a[i] op b[i]` over one row.
pub fn row_op(isa: Isa, op: BinOp, a: Operand<'_>, b: Operand<'_>, dst: &mut [f32]) {
    match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
            dispatch(isa, Vector { op, a, b, dst });
        }
        _ => {
            for (i, o) in dst.iter_mut().enumerate() {
                let x = match a {
                    Operand::Row(r) => r[i],
                    Operand::One(v) => v,
                };
                let y = match b {
                    Operand::Row(r) => r[i],
                    Operand::One(v) => v,
                };
                *o = op.apply(x, y);
            }
        }
    }
}

struct Vector<'a> {
    op: BinOp,
    a: Operand<'a>,
    b: Operand<'a>,
    dst: &'a mut [f32],
}

/// One arithmetic operation on vectors.
trait Arith<S: Simd>: Copy {
    fn v(self, s: S, a: S::V, b: S::V) -> S::V;
}

macro_rules! arith {
    ($name:ident, $method:ident) => {
        #[derive(Clone, Copy)]
        struct $name;
        impl<S: Simd> Arith<S> for $name {
            #[inline(always)]
            fn v(self, s: S, a: S::V, b: S::V) -> S::V {
                s.$method(a, b)
            }
        }
    };
}
arith!(AddV, add);
arith!(SubV, sub);
arith!(MulV, mul);
arith!(DivV, div);

/// Loads lane block `i` of an operand.
///
/// # Safety
/// For a row, `i + n` must be within it.
#[inline(always)]
unsafe fn load<S: Simd>(s: S, x: Operand<'_>, i: usize, n: usize) -> S::V {
    match x {
        // SAFETY: the caller keeps i + n within the row.
        Operand::Row(r) if n == S::LANES => unsafe { s.load(r.as_ptr().add(i)) },
        // SAFETY: as above.
        Operand::Row(r) => unsafe { s.load_part(r.as_ptr().add(i), n) },
        Operand::One(v) => s.splat(v),
    }
}

#[inline(always)]
fn run<S: Simd, F: Arith<S>>(s: S, f: F, a: Operand<'_>, b: Operand<'_>, dst: &mut [f32]) {
    let n = dst.len();
    for x in [a, b] {
        if let Operand::Row(r) = x {
            assert!(r.len() >= n, "operand row shorter than the output");
        }
    }
    let p = dst.as_mut_ptr();
    let mut i = 0;
    while i + S::LANES <= n {
        // SAFETY: i + LANES <= n, and both rows hold at least n values.
        unsafe {
            s.store(
                p.add(i),
                f.v(s, load(s, a, i, S::LANES), load(s, b, i, S::LANES)),
            )
        };
        i += S::LANES;
    }
    if i < n {
        let k = n - i;
        // SAFETY: k values remain from i in the output and both rows.
        unsafe { s.store_part(p.add(i), f.v(s, load(s, a, i, k), load(s, b, i, k)), k) };
    }
}

impl SimdFn for Vector<'_> {
    type Out = ();
    #[inline(always)]
    fn call<S: Simd>(self, s: S) {
        match self.op {
            BinOp::Add => run(s, AddV, self.a, self.b, self.dst),
            BinOp::Sub => run(s, SubV, self.a, self.b, self.dst),
            BinOp::Mul => run(s, MulV, self.a, self.b, self.dst),
            _ => run(s, DivV, self.a, self.b, self.dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_merge_axes_and_match_the_scalar_definition() {
        let isa = Isa::all_available();
        // [2, 3, 4, 5] op [2, 1, 1, 5]; [1, 3, 1, 1] op [2, 3, 4, 5]; scalar op tensor.
        let cases: [(&[usize], &[usize]); 4] = [
            (&[2, 3, 4, 5], &[2, 1, 1, 5]),
            (&[1, 3, 1, 1], &[2, 3, 4, 5]),
            (&[1, 1, 1, 1], &[2, 3, 4, 5]),
            (&[2, 1, 4, 1], &[1, 3, 1, 5]),
        ];
        for (ad, bd) in cases {
            let (a, b) = (Nd::new(ad), Nd::new(bd));
            let od: Vec<usize> = ad.iter().zip(bd).map(|(x, y)| *x.max(y)).collect();
            let o = Nd::new(&od);
            let av: Vec<f32> = (0..a.numel()).map(|i| i as f32 * 0.5 - 3.0).collect();
            let bv: Vec<f32> = (0..b.numel()).map(|i| 1.0 + i as f32 * 0.25).collect();
            for &isa in &isa {
                for op in [
                    BinOp::Add,
                    BinOp::Sub,
                    BinOp::Mul,
                    BinOp::Div,
                    BinOp::Max,
                    BinOp::PRelu,
                ] {
                    let mut out = vec![0.0; o.numel()];
                    binary(
                        isa,
                        None,
                        op,
                        Activation::Relu,
                        (&av, &a),
                        (&bv, &b),
                        &mut out,
                        &o,
                    );
                    let (sa, sb, so) = (a.strides(), b.strides(), o.strides());
                    for (flat, &got) in out.iter().enumerate() {
                        let mut ia = 0;
                        let mut ib = 0;
                        for k in 0..4 {
                            let c = flat / so[k] % od[k];
                            ia += if ad[k] == 1 { 0 } else { c * sa[k] };
                            ib += if bd[k] == 1 { 0 } else { c * sb[k] };
                        }
                        let want = op.apply(av[ia], bv[ib]).max(0.0);
                        assert_eq!(got, want, "{op:?} {ad:?} {bd:?} at {flat}");
                    }
                }
            }
        }
    }
}
