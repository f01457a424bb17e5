//! The Winograd transform calls `scripts/neon-mca.sh` traces under QEMU: the
//! input and output transforms of both tile sizes, once over a block of tiles
//! of 32 channels, the output one plain and with bias and ReLU, so llvm-mca
//! times the instructions the compiled release transforms really execute.
//!
//! Ignored by default (a tool, run by the script). The transforms' results
//! are checked against direct convolution in `tests.rs`; here only that they
//! wrote what they should.

use super::transform::{input_block, output_block};
use super::{tiles, OutPtr, Tail, Variant};
use crate::engine::conv::ConvGeom;
use crate::engine::gemm::{Activation, Kernel, KernelKind};
use crate::engine::graph::Window;
use crate::engine::simd::Isa;

type InputFn = fn(Isa, Variant, &[f32], &ConvGeom, usize, usize, &[f32], &mut [f32]);
type OutputFn = unsafe fn(
    Isa,
    Variant,
    &[f32],
    &ConvGeom,
    usize,
    std::ops::Range<usize>,
    usize,
    usize,
    &Tail<'_>,
    OutPtr,
);

#[test]
#[ignore = "a tool: scripts/neon-mca.sh runs it under QEMU with tracing"]
fn trace_transforms() {
    // Where this function runs tells the script where the binary is loaded.
    println!("MCA-PROBE probe {:#x}", trace_transforms as fn() as usize);
    let isa = Isa::of(&Kernel::get(KernelKind::Neon).expect("NEON kernel"));
    // Called through pointers the optimiser cannot see through, so the
    // out-of-line transforms run (the script finds each call by its entry
    // address) rather than copies inlined here.
    let input: InputFn = std::hint::black_box(input_block);
    let output: OutputFn = std::hint::black_box(output_block);
    let (h, c, k) = (6, 32, 32);
    let g = ConvGeom {
        n: 1,
        h,
        w: h,
        c,
        cg: c,
        oh: h,
        ow: h,
        win: Window::square(3, 1, 1),
    };
    let x: Vec<f32> = (0..h * h * c)
        .map(|i| (i % 17) as f32 / 8.0 - 1.0)
        .collect();
    let bias: Vec<f32> = (0..k).map(|i| i as f32 / 64.0).collect();
    for v in [Variant::F23, Variant::F43] {
        let (_, _, n) = tiles(v, &g);
        let p = v.points();
        let zero = vec![0.0f32; c];
        let mut vb = vec![f32::NAN; p * n * c];
        println!("MCA-PROBE call input {v:?} {n} {c} -");
        input(isa, v, &x, &g, 0, n, &zero, &mut vb);
        assert!(
            vb.iter().all(|f| f.is_finite()),
            "{v:?} input transform left NaN"
        );
        let m: Vec<f32> = (0..p * n * k)
            .map(|i| (i % 13) as f32 / 4.0 - 1.5)
            .collect();
        for (name, act, b) in [
            ("none", Activation::None, None),
            ("relu", Activation::Relu, Some(&bias[..])),
        ] {
            let mut out = vec![f32::NAN; h * h * k];
            let tail = Tail {
                bias: b,
                residual: None,
                act,
            };
            println!("MCA-PROBE call output {v:?} {n} {k} {name}");
            // SAFETY: one thread; `out` holds the whole output (1 x 6 x 6 x k), the bias k values, and the channels 0..k are all of them.
            unsafe { output(isa, v, &m, &g, k, 0..k, 0, n, &tail, OutPtr::new(&mut out)) };
            assert!(
                out.iter().all(|f| f.is_finite()),
                "{v:?} output transform left NaN"
            );
        }
    }
}
