//! The call sequence `scripts/neon-mca.sh` traces under QEMU: every NEON
//! micro-kernel on one full 8x12 tile at k = 64, 256 and 576 with each fused
//! epilogue kind, so llvm-mca sees the instructions a whole tile really
//! executes (prologue, k-loop and the store of that epilogue), taken from the
//! compiled release code rather than from a hand copy.
//!
//! Ignored by default (it is a tool, run by the script); it still checks each
//! tile against an f64 reference, so a trace of a wrong kernel fails.

use super::{Kernel, KernelKind};
use crate::engine::gemm::epilogue::{Activation, Axis, TileCtx};

/// Depths the script reports whole-tile cycles for.
pub(crate) const DEPTHS: [usize; 3] = [64, 256, 576];

/// The fused epilogue kinds traced: the plain store, an inner k-block
/// (`beta = 1`, nothing fused), folded BatchNorm with ReLU, with ReLU6, with a
/// residual add and ReLU (ResNet), and with swish and hard-swish (vector exp
/// and a clamp-multiply).
pub(crate) const EPILOGUES: [&str; 7] = [
    "plain",
    "accumulate",
    "bn_relu",
    "bn_relu6",
    "bn_res_relu",
    "bn_swish",
    "bn_hardswish",
];

/// NEON kernel variants in the order the trace runs them.
pub(crate) fn neon_kernels() -> Vec<Kernel> {
    Kernel::all_available()
        .into_iter()
        .filter(|k| k.kind.is_neon())
        .collect()
}

struct Operands {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    scale: Vec<f32>,
    bias: Vec<f32>,
    res: Vec<f32>,
}

fn ctx_for(epi: &str, o: &Operands) -> TileCtx {
    let mut ctx = TileCtx {
        alpha: 1.0,
        beta: 0.0,
        last: true,
        axis: Axis::Col,
        scale: std::ptr::null(),
        bias: std::ptr::null(),
        residual: std::ptr::null(),
        res_rs: 12,
        res_cs: 1,
        act: Activation::None,
    };
    if epi == "accumulate" {
        ctx.beta = 1.0;
        ctx.last = false;
    }
    if epi.starts_with("bn_") {
        ctx.scale = o.scale.as_ptr();
        ctx.bias = o.bias.as_ptr();
    }
    if epi == "bn_res_relu" {
        ctx.residual = o.res.as_ptr();
    }
    ctx.act = match epi {
        "bn_relu" | "bn_res_relu" => Activation::Relu,
        "bn_relu6" => Activation::Relu6,
        "bn_swish" => Activation::Swish,
        "bn_hardswish" => Activation::HardSwish,
        _ => Activation::None,
    };
    ctx
}

/// The f64 value the epilogue `epi` gives at (i, j) for the product `ab`.
fn reference(epi: &str, o: &Operands, c0: f32, ab: f64, i: usize, j: usize) -> f64 {
    if epi == "accumulate" {
        return ab + c0 as f64;
    }
    if !epi.starts_with("bn_") {
        return ab;
    }
    let mut v = ab * o.scale[j] as f64 + o.bias[j] as f64;
    if epi == "bn_res_relu" {
        v += o.res[i * 12 + j] as f64;
    }
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    match epi {
        "bn_relu" | "bn_res_relu" => v.max(0.0),
        "bn_relu6" => v.clamp(0.0, 6.0),
        "bn_swish" => v * sig(v),
        "bn_hardswish" => v * (v / 6.0 + 0.5).clamp(0.0, 1.0),
        _ => v,
    }
}

#[test]
#[ignore = "a tool: scripts/neon-mca.sh runs it under QEMU with tracing"]
fn trace_tiles() {
    let kmax = DEPTHS[DEPTHS.len() - 1];
    let val = |s: usize| ((s * 7919 % 61) as f32 - 30.0) / 64.0;
    let mut o = Operands {
        a: (0..kmax * 8).map(val).collect(),
        b: (0..kmax * 12).map(|s| val(s + 5)).collect(),
        c: vec![0.0; 8 * 12],
        scale: (0..12).map(|j| 0.5 + j as f32 / 16.0).collect(),
        bias: (0..12).map(|j| j as f32 / 8.0 - 0.75).collect(),
        res: (0..96).map(|s| val(s + 11)).collect(),
    };
    // Where this function runs tells the script where the binary is loaded.
    println!("MCA-PROBE probe {:#x}", trace_tiles as fn() as usize);
    for kernel in neon_kernels() {
        println!(
            "MCA-PROBE kernel {} {:#x}",
            kernel.name(),
            kernel.micro as usize
        );
        for &k in &DEPTHS {
            // Every epilogue at the first depth; deeper tiles differ only
            // by the k-loop, so the plain store is enough there.
            let epis = if k == DEPTHS[0] {
                &EPILOGUES[..]
            } else {
                &EPILOGUES[..1]
            };
            for &epi in epis {
                let c0: Vec<f32> = (0..96).map(|s| val(s + 3)).collect();
                o.c.copy_from_slice(&c0);
                let ctx = ctx_for(epi, &o);
                println!("MCA-PROBE call {} {k} {epi}", kernel.name());
                // SAFETY: the kernel came from `Kernel::get` (this CPU runs
                // it); a holds k*8 and b k*12 floats (column-packed panels),
                // c is a full 8x12 tile at row stride 12, and the scale, bias
                // (12 columns) and residual (8x12, row stride 12) outlive the call.
                unsafe {
                    (kernel.micro)(
                        k,
                        o.a.as_ptr(),
                        8,
                        o.b.as_ptr(),
                        o.c.as_mut_ptr(),
                        12,
                        1,
                        8,
                        12,
                        &ctx,
                    )
                };
                for i in 0..8 {
                    for j in 0..12 {
                        let ab: f64 = (0..k)
                            .map(|p| o.a[p * 8 + i] as f64 * o.b[p * 12 + j] as f64)
                            .sum();
                        let want = reference(epi, &o, c0[i * 12 + j], ab, i, j);
                        let got = o.c[i * 12 + j] as f64;
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()) * (k as f64).sqrt(),
                            "{} k={k} {epi} ({i},{j}): {got} vs {want}",
                            kernel.name()
                        );
                    }
                }
            }
        }
    }
    assert!(!neon_kernels().is_empty(), "no NEON kernel on this CPU");
}

#[test]
fn every_neon_variant_is_traced() {
    // The script learns the variants from the probe's output; this keeps the
    // list of kinds and `is_neon` in step.
    let neon: Vec<KernelKind> = KernelKind::ALL
        .into_iter()
        .filter(|k| k.is_neon())
        .collect();
    assert!(neon.contains(&KernelKind::Neon));
    assert_eq!(neon.len(), neon_kernels().len());
}
