//! The cost model `--conv auto` uses to pick a 3x3 stride-1 layer's algorithm
//! (convGemm, Winograd F(2x2, 3x3) or F(4x4, 3x3)) from its shape and the
//! machine, so an untuned run gets what `joulebench tune` would pick.
//!
//! Each candidate's time is a roofline sum, in the units of one thread's
//! GEMM throughput: the micro-kernel FLOPs it issues (rows rounded up to the
//! kernel's `mr` per block, columns to `nr`) plus the bytes it streams times
//! the machine balance (the FLOPs a core could do while it loads one byte
//! from past L2). The bytes are the filters — once when they fit in L2, else once
//! per block of rows that sweeps them — and the transformed or gathered
//! input. Winograd's tile blocking and thread split are those of
//! [`winograd::run_tiles`](super::winograd) and the session, so the model
//! sees what the run does: F(4x4) at batch 1 on a 7x7 layer has 4 tiles,
//! rounds them up to a 6-row panel and streams 36 C K filters for them,
//! which F(2x2) (16 tiles, 16 C K) beats.
//!
//! Calibrated on ResNet-50 here (AVX2, Sapphire Rapids, `joulebench tune`
//! per layer at 1 and 2 threads, batch 1 and 8): one AVX2 thread does ~75
//! GFLOP/s in the GEMM and streams ~16 GB/s, so the balance is ~4.7 FLOP per
//! byte, 0.6 per f32 lane; a core with wider vectors does proportionally more
//! arithmetic per byte. The model ranks the candidates as tuning did on every
//! 3x3 stride-1 layer of those four points (see the tests).

use super::winograd::{self, Variant};
use super::{ConvAlgo, ConvGeom};
use crate::engine::gemm::Kernel;

/// FLOP per byte streamed past L2, per f32 lane of the kernel's vectors.
const BALANCE_PER_LANE: f64 = 0.6;

/// What the model knows of the machine.
#[derive(Clone, Copy, Debug)]
pub struct Machine {
    pub mr: usize,
    pub nr: usize,
    pub lanes: usize,
    pub threads: usize,
    /// L2 bytes per core.
    pub l2_bytes: usize,
    /// The GEMM's row block (`mc`).
    pub mc: usize,
}

impl Machine {
    pub fn new(kernel: &Kernel, threads: usize, l2_bytes: usize, mc: usize) -> Machine {
        Machine {
            mr: kernel.mr,
            nr: kernel.nr,
            lanes: kernel.lanes,
            threads: threads.max(1),
            l2_bytes,
            mc: mc.max(1),
        }
    }

    fn balance(&self) -> f64 {
        BALANCE_PER_LANE * self.lanes.max(1) as f64
    }

    /// Time of `flops` and `bytes` on one thread, in FLOP-equivalents.
    fn time(&self, flops: f64, bytes: f64) -> f64 {
        flops + bytes * self.balance()
    }

    /// Bytes of filters of `w` bytes read by `blocks` sweeps.
    fn filter_bytes(&self, w: f64, blocks: usize) -> f64 {
        if w <= self.l2_bytes as f64 {
            w
        } else {
            w * blocks.max(1) as f64
        }
    }
}

/// Rows the kernel computes for `tiles` rows in blocks of `block`.
fn padded_rows(tiles: usize, block: usize, mr: usize) -> usize {
    let full = tiles / block;
    full * block.next_multiple_of(mr) + (tiles % block).next_multiple_of(mr)
}

/// The modelled time of a Winograd layer: the slowest thread's share.
fn winograd_cost(v: Variant, cout: usize, g: &ConvGeom, m: &Machine) -> f64 {
    let (c, k) = (g.cg as f64, cout as f64);
    let pts = v.points() as f64;
    let tiles = g.n * g.oh.div_ceil(v.m()) * g.ow.div_ceil(v.m());
    let block = winograd::block_tiles(v, g.cg, cout, m.mr);
    let filters = pts * c * k * 4.0;
    // Transformed input and products, written and read back once each.
    let transform = |t: usize| 4.0 * pts * (c + k) * t as f64;
    let nk = cout.next_multiple_of(m.nr) as f64;
    // As the session splits: by output channels when tiles are too few for
    // two row panels per thread, else by tiles.
    if m.threads > 1 && tiles < 2 * m.threads * m.mr {
        let rows = padded_rows(tiles, block, m.mr) as f64;
        let flops = 2.0 * pts * rows * c * nk / m.threads as f64;
        let bytes = m.filter_bytes(filters, tiles.div_ceil(block)) / m.threads as f64
            + 4.0 * pts * c * tiles as f64
            + 4.0 * pts * k * tiles as f64 / m.threads as f64;
        return m.time(flops, bytes);
    }
    let per = tiles.div_ceil(m.threads.min(tiles).max(1));
    let rows = padded_rows(per, block, m.mr) as f64;
    let flops = 2.0 * pts * rows * c * nk;
    let bytes = m.filter_bytes(filters, per.div_ceil(block)) + transform(per);
    m.time(flops, bytes)
}

/// The modelled time of a convGemm layer (implicit im2col into the packed A).
fn convgemm_cost(cout: usize, g: &ConvGeom, m: &Machine) -> f64 {
    let depth = g.depth() as f64;
    let per = g.rows().div_ceil(m.threads);
    let rows = per.next_multiple_of(m.mr) as f64;
    let nk = cout.next_multiple_of(m.nr) as f64;
    let flops = 2.0 * rows * depth * nk;
    let filters = depth * cout as f64 * 4.0;
    let bytes = m.filter_bytes(filters, per.div_ceil(m.mc)) + 4.0 * per as f64 * depth;
    m.time(flops, bytes)
}

/// The modelled time of `algo` on a layer, in FLOP-equivalents of one
/// thread (only comparable with other estimates for the same machine), or
/// `None` for an algorithm the model does not cover.
pub fn estimate(algo: ConvAlgo, cout: usize, g: &ConvGeom, m: &Machine) -> Option<f64> {
    match algo {
        ConvAlgo::ConvGemm => Some(convgemm_cost(cout, g, m)),
        ConvAlgo::Winograd => Some(winograd_cost(Variant::F23, cout, g, m)),
        ConvAlgo::Winograd4 => Some(winograd_cost(Variant::F43, cout, g, m)),
        _ => None,
    }
}

/// The cheapest of convGemm and the two Winograd sizes for a 3x3 stride-1
/// layer; convGemm wins ties (it is exact to the f32 rounding of a dot
/// product).
pub fn cheapest(cout: usize, g: &ConvGeom, m: &Machine) -> ConvAlgo {
    let mut best = (ConvAlgo::ConvGemm, convgemm_cost(cout, g, m));
    for a in [ConvAlgo::Winograd, ConvAlgo::Winograd4] {
        if let Some(t) = estimate(a, cout, g, m).filter(|&t| t < best.1) {
            best = (a, t);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::graph::Window;

    /// ResNet-50's 3x3 stride-1 layers: (side, channels).
    const LAYERS: [(usize, usize); 4] = [(56, 64), (28, 128), (14, 256), (7, 512)];

    fn geom(n: usize, side: usize, c: usize) -> ConvGeom {
        ConvGeom {
            n,
            h: side,
            w: side,
            c,
            cg: c,
            oh: side,
            ow: side,
            win: Window {
                kh: 3,
                kw: 3,
                stride_h: 1,
                stride_w: 1,
                pad_top: 1,
                pad_left: 1,
                pad_bottom: 1,
                pad_right: 1,
                dilation_h: 1,
                dilation_w: 1,
            },
        }
    }

    /// AVX2's 6x16 kernel on this machine (2 MiB L2, mc 534).
    fn avx2(threads: usize) -> Machine {
        Machine {
            mr: 6,
            nr: 16,
            lanes: 8,
            threads,
            l2_bytes: 2 << 20,
            mc: 534,
        }
    }

    /// What `joulebench tune` picked here for each layer (Sapphire Rapids,
    /// AVX2 kernel), at 1 and 2 threads, batch 1 and 8.
    #[test]
    fn picks_what_tuning_picked_on_resnet50() {
        for threads in [1, 2] {
            for (side, c) in LAYERS {
                let want_b1 = if side == 7 {
                    ConvAlgo::Winograd
                } else {
                    ConvAlgo::Winograd4
                };
                let m = avx2(threads);
                assert_eq!(
                    cheapest(c, &geom(1, side, c), &m),
                    want_b1,
                    "t{threads} b1 {side}"
                );
                assert_eq!(
                    cheapest(c, &geom(8, side, c), &m),
                    ConvAlgo::Winograd4,
                    "t{threads} b8 {side}"
                );
            }
        }
    }

    /// The model's times track the measured per-layer times (ms per batch,
    /// one thread, batch 1) within a third, so its margins mean something.
    #[test]
    fn estimates_track_measured_layer_times() {
        // (side, channels, algorithm, measured ms).
        let measured = [
            (56, 64, ConvAlgo::Winograd4, 1.07),
            (56, 64, ConvAlgo::ConvGemm, 3.02),
            (14, 256, ConvAlgo::Winograd4, 1.77),
            (14, 256, ConvAlgo::ConvGemm, 2.88),
            (7, 512, ConvAlgo::Winograd, 3.19),
            (7, 512, ConvAlgo::Winograd4, 3.81),
            (7, 512, ConvAlgo::ConvGemm, 3.70),
        ];
        let m = avx2(1);
        // 75 GFLOP/s: FLOP-equivalents to ms.
        for (side, c, a, ms) in measured {
            let t = estimate(a, c, &geom(1, side, c), &m).unwrap() / 75e6;
            assert!(
                (t / ms - 1.0).abs() < 0.34,
                "{side} {a}: model {t:.2} ms, measured {ms}"
            );
        }
    }

    #[test]
    fn narrow_vectors_make_arithmetic_dearer_than_traffic() {
        // With scalar code, Winograd's 4x fewer multiplications win even where
        // AVX2 streams too many filters for them.
        let scalar = Machine {
            mr: 4,
            nr: 4,
            lanes: 1,
            ..avx2(1)
        };
        assert_eq!(
            cheapest(512, &geom(1, 7, 512), &scalar),
            ConvAlgo::Winograd4
        );
    }

    #[test]
    fn padded_rows_round_each_block() {
        assert_eq!(padded_rows(4, 240, 6), 6);
        assert_eq!(padded_rows(49, 24, 6), 24 + 24 + 6);
        assert_eq!(padded_rows(48, 24, 6), 48);
        assert_eq!(padded_rows(0, 24, 6), 0);
    }
}
