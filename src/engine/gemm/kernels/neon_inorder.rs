//! aarch64 NEON 8x12 micro-kernel scheduled for in-order cores (Cortex-A53,
//! A55: Raspberry Pi 3, Zero 2 W, the little cores of big.LITTLE boards).
//!
//! The compiler's schedule of [`super::neon`] loads a k-step's five operand
//! vectors and then issues its 24 FMLAs: an out-of-order core overlaps the
//! next step's loads with them, an in-order one waits for each load, so
//! llvm-mca gives the A53 39 cycles a k-step against 24 FMLA cycles. Here the
//! k-loop is written in assembly, software-pipelined: the next step's
//! operands are loaded in the middle of this step's FMLAs, into registers
//! whose last use has passed (or three spare registers, whose roles rotate
//! between even and odd steps), so each load lands long before its first use. The first step multiplies (`fmul`)
//! instead of zeroing the accumulators and adding.
//!
//! Registers: accumulators `v8..v31` (row `i`, vector `j` in `v(8 + 3i + j)`);
//! A in `v0` (rows 0-3) and `v1`/`v7` (rows 4-7); B in `v2`, `v3`/`v5`,
//! `v4`/`v6` (even/odd steps).

use super::neon::{finish, MR, NR};
use super::{Kernel, KernelKind};
use crate::engine::gemm::epilogue::TileCtx;
use std::arch::aarch64::*;
use std::arch::asm;

pub(super) const KERNEL: Kernel = Kernel {
    kind: KernelKind::NeonInOrder,
    mr: MR,
    nr: NR,
    lanes: 4,
    a_rows: false,
    ir_outer: false,
    micro: micro_8x12,
    micro_row: None,
    fma_chains: super::neon::fma_chains,
    chain_flops_per_iter: 2 * 4 * super::neon::CHAINS,
};

/// One k-step: `$op` (`fmla`, or `fmul` for the first) of the current
/// operands (A rows 4-7 in `$a1`, B in `v2`, `$b1`, `$b2`) into the 24
/// accumulators, with the five loads `$l*` of the next step (each a whole
/// instruction line, or "" for the last step). Rows 0-3 go first and row by
/// row, so `v0` is free after 12 FMLAs; rows 4-7 column by column, so `v2` is
/// free after 16: the loads go there, together, eight FMLAs before their
/// first use. Together, not spread one between each pair of FMLAs: LLVM's
/// A53 model retires in order, so a 4-cycle load after a 10-cycle FMLA waits
/// for it, and each spread load cost 6 cycles (61 a k-step against 38 for
/// the group; on the A55 model 17.5 against 18).
macro_rules! step {
    ($op:literal, $a1:literal, $b1:literal, $b2:literal,
     $l1:literal, $l2:literal, $l3:literal, $l4:literal, $l5:literal, $adv:literal, $ctl:literal) => {
        concat!(
            $op,
            " v8.4s, v2.4s, v0.s[0]\n",
            $op,
            " v9.4s, ",
            $b1,
            ".4s, v0.s[0]\n",
            $op,
            " v10.4s, ",
            $b2,
            ".4s, v0.s[0]\n",
            $op,
            " v11.4s, v2.4s, v0.s[1]\n",
            $op,
            " v12.4s, ",
            $b1,
            ".4s, v0.s[1]\n",
            $op,
            " v13.4s, ",
            $b2,
            ".4s, v0.s[1]\n",
            $op,
            " v14.4s, v2.4s, v0.s[2]\n",
            $op,
            " v15.4s, ",
            $b1,
            ".4s, v0.s[2]\n",
            $op,
            " v16.4s, ",
            $b2,
            ".4s, v0.s[2]\n",
            $op,
            " v17.4s, v2.4s, v0.s[3]\n",
            $op,
            " v18.4s, ",
            $b1,
            ".4s, v0.s[3]\n",
            $op,
            " v19.4s, ",
            $b2,
            ".4s, v0.s[3]\n",
            $op,
            " v20.4s, v2.4s, ",
            $a1,
            ".s[0]\n",
            $op,
            " v23.4s, v2.4s, ",
            $a1,
            ".s[1]\n",
            $op,
            " v26.4s, v2.4s, ",
            $a1,
            ".s[2]\n",
            $op,
            " v29.4s, v2.4s, ",
            $a1,
            ".s[3]\n",
            $l1,
            $l2,
            $l3,
            $l4,
            $l5,
            $adv,
            $ctl,
            $op,
            " v21.4s, ",
            $b1,
            ".4s, ",
            $a1,
            ".s[0]\n",
            $op,
            " v24.4s, ",
            $b1,
            ".4s, ",
            $a1,
            ".s[1]\n",
            $op,
            " v27.4s, ",
            $b1,
            ".4s, ",
            $a1,
            ".s[2]\n",
            $op,
            " v30.4s, ",
            $b1,
            ".4s, ",
            $a1,
            ".s[3]\n",
            $op,
            " v22.4s, ",
            $b2,
            ".4s, ",
            $a1,
            ".s[0]\n",
            $op,
            " v25.4s, ",
            $b2,
            ".4s, ",
            $a1,
            ".s[1]\n",
            $op,
            " v28.4s, ",
            $b2,
            ".4s, ",
            $a1,
            ".s[2]\n",
            $op,
            " v31.4s, ",
            $b2,
            ".4s, ",
            $a1,
            ".s[3]\n",
        )
    };
}

/// An even step (A rows 4-7 in v1, B in v2, v3, v4), loading the next
/// (odd) step into v5, v6, v7, v0, v2.
macro_rules! even {
    ($op:literal) => {
        step!(
            $op,
            "v1",
            "v3",
            "v4",
            "ldr q5, [{pb}, #16]\n",
            "ldr q6, [{pb}, #32]\n",
            "ldr q7, [{pa}, #16]\n",
            "ldr q0, [{pa}]\n",
            "ldr q2, [{pb}]\n",
            "add {pa}, {pa}, #32\nadd {pb}, {pb}, #48\n",
            ""
        )
    };
    ($op:literal, last) => {
        step!($op, "v1", "v3", "v4", "", "", "", "", "", "", "")
    };
}

/// An odd step (A rows 4-7 in v7, B in v2, v5, v6), loading the next (even)
/// step into v3, v4, v1, v0, v2.
macro_rules! odd {
    ($ctl:literal) => {
        step!(
            "fmla",
            "v7",
            "v5",
            "v6",
            "ldr q3, [{pb}, #16]\n",
            "ldr q4, [{pb}, #32]\n",
            "ldr q1, [{pa}, #16]\n",
            "ldr q0, [{pa}]\n",
            "ldr q2, [{pb}]\n",
            "add {pa}, {pa}, #32\nadd {pb}, {pb}, #48\n",
            $ctl
        )
    };
    (last) => {
        step!("fmla", "v7", "v5", "v6", "", "", "", "", "", "", "")
    };
}

/// # Safety
/// The CPU supports NEON (checked by kernel selection); `a` holds `kc*8` and
/// `b` `kc*12` readable floats; `c` is valid for the `m x n` tile at strides
/// `(rs, cs)`; `ctx` pointers as in [`TileCtx::finish`].
#[allow(clippy::too_many_arguments)]
unsafe fn micro_8x12(
    kc: usize,
    a: *const f32,
    _lda: usize,
    b: *const f32,
    c: *mut f32,
    rs: usize,
    cs: usize,
    m: usize,
    n: usize,
    ctx: &TileCtx,
) {
    let acc = if kc == 0 {
        [[vdupq_n_f32(0.0); 3]; MR]
    } else {
        // SAFETY: kc >= 1 and the panels hold kc steps (caller's guarantee).
        unsafe { product(kc, a, b) }
    };
    // SAFETY: forwarded caller guarantees on c and ctx.
    unsafe { finish(&acc, c, rs, cs, m, n, ctx) }
}

/// The 8x12 product of `kc >= 1` packed steps.
///
/// # Safety
/// `kc >= 1`; `a` holds `kc*8` and `b` `kc*12` readable floats.
#[inline(always)]
unsafe fn product(kc: usize, a: *const f32, b: *const f32) -> [[float32x4_t; 3]; MR] {
    let z = vdupq_n_f32(0.0);
    let mut r = [z; 24];
    // Steps after the first; the loop runs two while at least three remain,
    // so every load it issues is of a step that exists.
    let rest = kc - 1;
    // SAFETY: the loads read steps 0..kc of the panels only: step s at
    // a + 8s and b + 12s, each issued in step s - 1 and only when s < kc
    // (the `last` forms load nothing); the asm writes no memory and no stack,
    // and every vector register it changes is an output or clobbered.
    unsafe {
        asm!(
            "ldr q0, [{pa}]",
            "ldr q1, [{pa}, #16]",
            "ldr q2, [{pb}]",
            "ldr q3, [{pb}, #16]",
            "ldr q4, [{pb}, #32]",
            "add {pa}, {pa}, #32",
            "add {pb}, {pb}, #48",
            "cbz {rest}, 5f",
            even!("fmul"),
            "cmp {rest}, #3",
            "b.lo 2f",
            // The loop control goes with the odd step's loads: in LLVM's A53
            // model any short instruction after an FMLA waits for it.
            "1:",
            odd!("sub {rest}, {rest}, #2\ncmp {rest}, #3\n"),
            even!("fmla"),
            "b.hs 1b",
            "2:",
            "cmp {rest}, #1",
            "b.eq 3f",
            odd!(""),
            even!("fmla", last),
            "b 6f",
            "3:",
            odd!(last),
            "b 6f",
            "5:",
            even!("fmul", last),
            "6:",
            pa = inout(reg) a => _,
            pb = inout(reg) b => _,
            rest = inout(reg) rest => _,
            out("v0") _, out("v1") _, out("v2") _, out("v3") _,
            out("v4") _, out("v5") _, out("v6") _, out("v7") _,
            out("v8") r[0], out("v9") r[1], out("v10") r[2], out("v11") r[3],
            out("v12") r[4], out("v13") r[5], out("v14") r[6], out("v15") r[7],
            out("v16") r[8], out("v17") r[9], out("v18") r[10], out("v19") r[11],
            out("v20") r[12], out("v21") r[13], out("v22") r[14], out("v23") r[15],
            out("v24") r[16], out("v25") r[17], out("v26") r[18], out("v27") r[19],
            out("v28") r[20], out("v29") r[21], out("v30") r[22], out("v31") r[23],
            options(nostack, readonly),
        );
    }
    std::array::from_fn(|i| [r[3 * i], r[3 * i + 1], r[3 * i + 2]])
}
