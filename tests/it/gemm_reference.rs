//! Every micro-kernel this CPU runs (scalar and AVX2 on x86-64; scalar and NEON
//! on aarch64, under QEMU in CI) against a naive f64 triple loop: shapes with
//! 1s, primes and tile edges, every epilogue combination, strided operands,
//! threads 1..4 with every parallel loop, and odd cache configurations.

use crate::common::reference::{self, EVERY_ACTIVATION};
use crate::common::Rng;
use joulebench::engine::gemm::{
    Activation, Axis, BOperand, CacheConfig, Epilogue, Gemm, Kernel, MatMut, MatRef, ParallelLoop,
};

/// A dense matrix in a strided buffer: element (i, j) at `i*rs + j*cs`.
struct Strided {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl Strided {
    /// Row-major with `pad` unused columns per row, or column-major (a
    /// transposed view) when `col_major`.
    fn random(rng: &mut Rng, rows: usize, cols: usize, pad: usize, col_major: bool) -> Strided {
        let (rs, cs, len) = if col_major {
            (1, rows + pad, (rows + pad) * cols)
        } else {
            (cols + pad, 1, (cols + pad) * rows)
        };
        Strided {
            data: rng.signed_vec(len),
            rows,
            cols,
            rs,
            cs,
        }
    }
    fn get(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
    fn view(&self) -> MatRef<'_> {
        MatRef::new(&self.data, self.rows, self.cols, self.rs, self.cs).unwrap()
    }
}

#[derive(Clone, Copy, Debug)]
struct EpiSpec {
    axis: Axis,
    scale: bool,
    bias: bool,
    residual: bool,
    act: Activation,
}

const PLAIN: EpiSpec = EpiSpec {
    axis: Axis::Col,
    scale: false,
    bias: false,
    residual: false,
    act: Activation::None,
};

/// Scale, bias, residual and ReLU per column.
const EVERY_PART: EpiSpec = EpiSpec {
    axis: Axis::Col,
    scale: true,
    bias: true,
    residual: true,
    act: Activation::Relu,
};

struct Case<'a> {
    kernel: Kernel,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    beta: f32,
    epi: EpiSpec,
    threads: usize,
    parallel: ParallelLoop,
    cache: Option<CacheConfig>,
    a_col_major: bool,
    b_col_major: bool,
    c_col_major: bool,
    packed_b: bool,
    /// Run only these columns ([`Gemm::run_cols`]); the others must stay as they were.
    cols: Option<std::ops::Range<usize>>,
    label: &'a str,
}

impl Case<'_> {
    fn new(kernel: Kernel, m: usize, n: usize, k: usize) -> Self {
        Case {
            kernel,
            m,
            n,
            k,
            alpha: 1.0,
            beta: 0.0,
            epi: PLAIN,
            threads: 1,
            parallel: ParallelLoop::Auto,
            cache: None,
            a_col_major: false,
            b_col_major: false,
            c_col_major: false,
            packed_b: false,
            cols: None,
            label: "",
        }
    }

    fn check(&self, seed: u64) {
        let (m, n, k) = (self.m, self.n, self.k);
        let mut rng = Rng::new(seed);
        let a = Strided::random(&mut rng, m, k, 3, self.a_col_major);
        let b = Strided::random(&mut rng, k, n, 5, self.b_col_major);
        let mut c = Strided::random(&mut rng, m, n, 2, self.c_col_major);
        if self.beta == 0.0 {
            // beta == 0 must not read C: NaNs there must not leak into the result.
            c.data.fill(f32::NAN);
        }
        let c0 = c.data.clone();
        let chans = match self.epi.axis {
            Axis::Row => m,
            Axis::Col => n,
        };
        let scale: Vec<f32> = (0..chans).map(|_| 0.5 + rng.signed_f32().abs()).collect();
        let bias = rng.signed_vec(chans);
        let res = Strided::random(&mut rng, m, n, 1, false);

        let cache = self
            .cache
            .unwrap_or_else(|| CacheConfig::auto(self.kernel.mr, self.kernel.nr));
        let mut g = Gemm::new(self.kernel, cache, self.threads, self.parallel).unwrap();
        let epi = Epilogue {
            axis: self.epi.axis,
            scale: self.epi.scale.then_some(&scale[..]),
            bias: self.epi.bias.then_some(&bias[..]),
            residual: self.epi.residual.then(|| res.view()),
            activation: self.epi.act,
        };
        let packed;
        let bop = if self.packed_b {
            packed = g.pack_b(b.view()).unwrap();
            BOperand::Packed(&packed)
        } else {
            BOperand::Matrix(b.view())
        };
        {
            let mut cv = MatMut::new(&mut c.data, m, n, c.rs, c.cs).unwrap();
            match &self.cols {
                Some(cols) => g.run_cols(
                    self.alpha,
                    &a.view(),
                    bop,
                    self.beta,
                    &mut cv,
                    &epi,
                    cols.clone(),
                ),
                None => g.run(self.alpha, &a.view(), bop, self.beta, &mut cv, &epi),
            }
            .unwrap();
        }

        let cols = self.cols.clone().unwrap_or(0..n);
        for i in 0..m {
            for j in 0..n {
                if !cols.contains(&j) {
                    let before = c0[i * c.rs + j * c.cs];
                    assert!(
                        c.get(i, j).to_bits() == before.to_bits(),
                        "{} kernel {} threads={} loop={} cols={cols:?}: C[{i},{j}] outside the \
                         columns was written",
                        self.label,
                        self.kernel.name(),
                        self.threads,
                        self.parallel,
                    );
                    continue;
                }
                let (mut dot, mut mag) = (0.0f64, 0.0f64);
                for p in 0..k {
                    let t = a.get(i, p) as f64 * b.get(p, j) as f64;
                    dot += t;
                    mag += t.abs();
                }
                // beta == 0: C was NaN and must be ignored, not multiplied.
                let old_term = if self.beta == 0.0 {
                    0.0
                } else {
                    self.beta as f64 * c0[i * c.rs + j * c.cs] as f64
                };
                let v = self.alpha as f64 * dot + old_term;
                let ch = if self.epi.axis == Axis::Row { i } else { j };
                let s = if self.epi.scale {
                    scale[ch] as f64
                } else {
                    1.0
                };
                let mut v = v * s;
                if self.epi.bias {
                    v += bias[ch] as f64;
                }
                if self.epi.residual {
                    v += res.get(i, j) as f64;
                }
                let v = reference::activation(self.epi.act, v);
                // The activations' slopes reach 1.5 (hard-swish at 3): the
                // product's rounding may grow by that much.
                let bound = 1.5
                    * (k as f64 + 4.0)
                    * f32::EPSILON as f64
                    * s
                    * (self.alpha.abs() as f64 * mag + old_term.abs())
                    + 4.0 * f32::EPSILON as f64 * (v.abs() + 8.0);
                let got = c.get(i, j) as f64;
                assert!(
                    (got - v).abs() <= bound,
                    "{} kernel {} m={m} n={n} k={k} threads={} loop={} cache={:?} epi={:?}: \
                     C[{i},{j}] = {got}, reference {v} (bound {bound:e})",
                    self.label,
                    self.kernel.name(),
                    self.threads,
                    self.parallel,
                    self.cache,
                    self.epi,
                );
            }
        }
        // Elements outside the view (padding) are untouched.
        for (idx, (&now, &before)) in c.data.iter().zip(&c0).enumerate() {
            let (i, j) = if c.cs == 1 {
                (idx / c.rs, idx % c.rs)
            } else {
                (idx % c.cs, idx / c.cs)
            };
            if i >= m || j >= n {
                assert!(
                    now.to_bits() == before.to_bits(),
                    "padding of C at {idx} was written"
                );
            }
        }
    }
}

/// Every loop a GEMM can spread over threads.
const LOOPS: [ParallelLoop; 4] = [
    ParallelLoop::Auto,
    ParallelLoop::Jc,
    ParallelLoop::Ic,
    ParallelLoop::Jr,
];

fn kernels() -> Vec<Kernel> {
    let ks = Kernel::all_available();
    assert!(ks.iter().any(|k| k.name() == "scalar"));
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        assert!(
            ks.iter().any(|k| k.name() == "avx2"),
            "avx2 must be tested here"
        );
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        assert!(
            ks.iter().any(|k| k.name() == "avx512"),
            "avx512 must be tested here"
        );
    }
    #[cfg(target_arch = "aarch64")]
    for neon in ["neon", "neon-inorder"] {
        assert!(
            ks.iter().any(|k| k.name() == neon),
            "{neon} must be tested here"
        );
    }
    ks
}

#[test]
fn reference_itself_is_right_on_a_hand_computed_product() {
    // [[1,2],[3,4]] * [[5,6],[7,8]] = [[19,22],[43,50]], ReLU6 then clamps.
    for kernel in kernels() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut c = [0.0f32; 4];
        let mut g = Gemm::new(
            kernel,
            CacheConfig::auto(kernel.mr, kernel.nr),
            1,
            ParallelLoop::Auto,
        )
        .unwrap();
        let bm = MatRef::row_major(&b, 2, 2).unwrap();
        g.run(
            1.0,
            &MatRef::row_major(&a, 2, 2).unwrap(),
            BOperand::Matrix(bm),
            0.0,
            &mut MatMut::row_major(&mut c, 2, 2).unwrap(),
            &Epilogue::none(),
        )
        .unwrap();
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0], "{}", kernel.name());
        let bias = [-20.0, -45.0];
        let epi = Epilogue {
            axis: Axis::Row,
            bias: Some(&bias),
            activation: Activation::Relu6,
            ..Epilogue::none()
        };
        g.run(
            1.0,
            &MatRef::row_major(&a, 2, 2).unwrap(),
            BOperand::Matrix(bm),
            0.0,
            &mut MatMut::row_major(&mut c, 2, 2).unwrap(),
            &epi,
        )
        .unwrap();
        assert_eq!(c, [0.0, 2.0, 0.0, 5.0], "{}", kernel.name());
    }
}

#[test]
fn shapes_with_ones_primes_and_tile_edges() {
    let dims = [1, 2, 5, 7, 8, 12, 13, 16, 17, 31, 67];
    let mut seed = 1;
    for kernel in kernels() {
        let (mr, nr) = (kernel.mr, kernel.nr);
        let mut shapes = vec![(mr, nr, 1), (mr + 1, nr + 1, 3), (mr - 1, nr - 1, 2)];
        for (x, &m) in dims.iter().enumerate() {
            // Pair each m with a rotating n and k so the loop stays small.
            let n = dims[(x * 3 + 1) % dims.len()];
            let k = dims[(x * 5 + 2) % dims.len()];
            shapes.push((m, n, k));
        }
        for (m, n, k) in shapes {
            seed += 1;
            Case::new(kernel, m, n, k).check(seed);
        }
    }
}

#[test]
fn large_sizes_cross_every_cache_block() {
    for kernel in kernels() {
        // Default blocking on a shape bigger than one k-block.
        let mut c = Case::new(kernel, 97, 131, 433);
        c.label = "default blocking";
        c.check(11);
        // Bigger than every default block in m and k.
        let mut c = Case::new(kernel, 530, 272, 805);
        c.label = "large";
        c.check(13);
        // Small blocks so all five loops take several trips, with ragged ends.
        let mut c = Case::new(kernel, 203, 157, 211);
        c.cache = Some(CacheConfig {
            mc: 37,
            nc: 41,
            kc: 29,
        });
        c.label = "small blocks";
        c.check(12);
    }
}

#[test]
fn every_epilogue_combination_on_both_axes() {
    let mut seed = 100;
    for kernel in kernels() {
        for axis in [Axis::Row, Axis::Col] {
            for bits in 0..8u32 {
                for act in EVERY_ACTIVATION {
                    let epi = EpiSpec {
                        axis,
                        scale: bits & 1 != 0,
                        bias: bits & 2 != 0,
                        residual: bits & 4 != 0,
                        act,
                    };
                    seed += 1;
                    // k larger than kc: the epilogue must apply once, after the last k-block.
                    let mut c = Case::new(kernel, 2 * kernel.mr + 3, 2 * kernel.nr + 5, 23);
                    c.cache = Some(CacheConfig {
                        mc: 64,
                        nc: 64,
                        kc: 7,
                    });
                    c.epi = epi;
                    c.beta = if bits & 1 != 0 { 0.5 } else { 0.0 };
                    c.alpha = if bits & 2 != 0 { -1.5 } else { 1.0 };
                    c.label = "epilogue";
                    c.check(seed);
                    // Full tiles only, so the vector store path runs.
                    let mut c = Case::new(kernel, 2 * kernel.mr, 2 * kernel.nr, 9);
                    c.epi = epi;
                    c.beta = if bits & 1 != 0 { 0.5 } else { 0.0 };
                    c.label = "epilogue full tiles";
                    c.check(seed + 1000);
                }
            }
        }
    }
}

#[test]
fn strided_operands_and_transposed_views() {
    let mut seed = 300;
    for kernel in kernels() {
        for flags in 0..8u32 {
            seed += 1;
            let mut c = Case::new(kernel, 3 * kernel.mr + 1, 2 * kernel.nr + 3, 19);
            c.a_col_major = flags & 1 != 0;
            c.b_col_major = flags & 2 != 0;
            c.c_col_major = flags & 4 != 0;
            c.beta = 0.75;
            c.epi = EVERY_PART;
            c.label = "strided";
            c.check(seed);
        }
    }
}

#[test]
fn threads_one_to_four_with_every_parallel_loop() {
    let mut seed = 400;
    for kernel in kernels() {
        for threads in 1..=4 {
            for parallel in LOOPS {
                for packed_b in [false, true] {
                    seed += 1;
                    // Small blocks: several ic/jc blocks per thread, ragged shares.
                    let mut c = Case::new(kernel, 71, 89, 47);
                    c.threads = threads;
                    c.parallel = parallel;
                    c.packed_b = packed_b;
                    c.cache = Some(CacheConfig {
                        mc: 19,
                        nc: 2 * kernel.nr,
                        kc: 16,
                    });
                    c.beta = 1.0;
                    c.epi = EpiSpec {
                        axis: Axis::Row,
                        scale: true,
                        bias: true,
                        residual: false,
                        act: Activation::Relu6,
                    };
                    c.label = "threads";
                    c.check(seed);
                    // A shape with fewer rows than threads*mr and one column panel.
                    let mut c = Case::new(kernel, 2, 5, 33);
                    c.threads = threads;
                    c.parallel = parallel;
                    c.packed_b = packed_b;
                    c.label = "tiny threaded";
                    c.check(seed + 1000);
                }
            }
        }
    }
}

#[test]
fn column_ranges_write_only_their_columns() {
    let mut seed = 450;
    for kernel in kernels() {
        let nr = kernel.nr;
        let n = 4 * nr + 5;
        for threads in 1..=3 {
            for parallel in LOOPS {
                for packed_b in [false, true] {
                    // Panel-aligned starts (what packed B needs), ragged ends,
                    // a single column, and an unaligned start for unpacked B.
                    let mut ranges = vec![nr..n, 0..nr + 3, 2 * nr..2 * nr + 1, nr..3 * nr];
                    if !packed_b {
                        ranges.push(5..n - 3);
                    }
                    for cols in ranges {
                        seed += 1;
                        let mut c = Case::new(kernel, 23, n, 37);
                        c.threads = threads;
                        c.parallel = parallel;
                        c.packed_b = packed_b;
                        c.cache = Some(CacheConfig {
                            mc: 13,
                            nc: 2 * nr,
                            kc: 16,
                        });
                        c.epi = EVERY_PART;
                        c.cols = Some(cols);
                        c.label = "cols";
                        c.check(seed);
                    }
                }
            }
        }
    }
}

#[test]
fn odd_cache_configurations() {
    let mut seed = 500;
    for kernel in kernels() {
        let (mr, nr) = (kernel.mr, kernel.nr);
        let configs = [
            CacheConfig {
                mc: 1,
                nc: 1,
                kc: 1,
            },
            CacheConfig {
                mc: mr - 1,
                nc: nr + 1,
                kc: 1,
            },
            CacheConfig {
                mc: mr + 1,
                nc: 3 * nr - 1,
                kc: 2,
            },
            CacheConfig {
                mc: 1000,
                nc: 1000,
                kc: 1000,
            },
        ];
        for cache in configs {
            for threads in [1, 3] {
                seed += 1;
                let mut c = Case::new(kernel, 2 * mr + 1, 2 * nr + 1, 11);
                c.cache = Some(cache);
                c.threads = threads;
                c.beta = -0.5;
                c.epi = EpiSpec {
                    axis: Axis::Col,
                    scale: true,
                    bias: false,
                    residual: true,
                    act: Activation::None,
                };
                c.label = "odd cache";
                c.check(seed);
            }
        }
    }
}

#[test]
fn packed_weights_are_reused_across_calls() {
    for kernel in kernels() {
        let mut rng = Rng::new(7);
        let (m, n, k) = (29, 45, 37);
        let b = rng.signed_vec(k * n);
        let cache = CacheConfig {
            mc: 12,
            nc: 32,
            kc: 10,
        };
        let mut g = Gemm::new(kernel, cache, 2, ParallelLoop::Ic).unwrap();
        let packed = g.pack_b(MatRef::row_major(&b, k, n).unwrap()).unwrap();
        for round in 0..3 {
            let a = rng.signed_vec(m * k);
            let av = MatRef::row_major(&a, m, k).unwrap();
            let mut c1 = vec![0.0f32; m * n];
            let mut c2 = vec![0.0f32; m * n];
            let epi = Epilogue::none();
            g.run(
                1.0,
                &av,
                BOperand::Packed(&packed),
                0.0,
                &mut MatMut::row_major(&mut c1, m, n).unwrap(),
                &epi,
            )
            .unwrap();
            let bm = MatRef::row_major(&b, k, n).unwrap();
            g.run(
                1.0,
                &av,
                BOperand::Matrix(bm),
                0.0,
                &mut MatMut::row_major(&mut c2, m, n).unwrap(),
                &epi,
            )
            .unwrap();
            // Same blocking and kernel: identical arithmetic, bit for bit.
            assert_eq!(c1, c2, "{} round {round}", kernel.name());
        }
    }
}

#[test]
fn nonsense_parameters_are_errors_not_panics() {
    let k = Kernel::detect();
    let ok = CacheConfig {
        mc: 8,
        nc: 8,
        kc: 8,
    };
    assert!(
        Gemm::new(k, ok, 0, ParallelLoop::Auto).is_err(),
        "threads=0"
    );
    for bad in [
        CacheConfig { mc: 0, ..ok },
        CacheConfig { nc: 0, ..ok },
        CacheConfig { kc: 0, ..ok },
    ] {
        assert!(Gemm::new(k, bad, 1, ParallelLoop::Auto).is_err(), "{bad:?}");
    }
    let data = [0.0f32; 16];
    assert!(MatRef::row_major(&data, 0, 4).is_err(), "m=0");
    assert!(MatRef::row_major(&data, 4, 0).is_err(), "n=0");
    assert!(MatRef::row_major(&data, 5, 4).is_err(), "too short");
    assert!(
        MatRef::new(&data, 4, 4, usize::MAX, 1).is_err(),
        "overflowing stride"
    );
    let mut out = [0.0f32; 16];
    assert!(
        MatMut::new(&mut out, 4, 4, 0, 1).is_err(),
        "overlapping rows"
    );

    let mut g = Gemm::new(k, ok, 1, ParallelLoop::Auto).unwrap();
    let a = MatRef::row_major(&data, 4, 4).unwrap();
    let b = MatRef::row_major(&data[..12], 3, 4).unwrap();
    let mut c = [0.0f32; 16];
    let mut cv = MatMut::row_major(&mut c, 4, 4).unwrap();
    assert!(
        g.run(
            1.0,
            &a,
            BOperand::Matrix(b),
            0.0,
            &mut cv,
            &Epilogue::none()
        )
        .is_err(),
        "k mismatch"
    );
    let short = [1.0f32; 3];
    let epi = Epilogue {
        bias: Some(&short),
        ..Epilogue::none()
    };
    let b4 = MatRef::row_major(&data, 4, 4).unwrap();
    assert!(
        g.run(1.0, &a, BOperand::Matrix(b4), 0.0, &mut cv, &epi)
            .is_err(),
        "short bias"
    );
    let mut c3 = [0.0f32; 12];
    let mut c3v = MatMut::row_major(&mut c3, 3, 4).unwrap();
    assert!(
        g.run(
            1.0,
            &a,
            BOperand::Matrix(b4),
            0.0,
            &mut c3v,
            &Epilogue::none()
        )
        .is_err(),
        "C shape"
    );
    let packed = g.pack_b(b4).unwrap();
    for (b, cols, why) in [
        (BOperand::Matrix(b4), 2..2, "empty cols"),
        (BOperand::Matrix(b4), 3..5, "cols past n"),
        (BOperand::Packed(&packed), 1..4, "packed cols off a panel"),
    ] {
        assert!(
            g.run_cols(1.0, &a, b, 0.0, &mut cv, &Epilogue::none(), cols)
                .is_err(),
            "{why}"
        );
    }
    // A kernel that is not this CPU's is refused by name.
    #[cfg(target_arch = "x86_64")]
    assert!(Kernel::get("neon".parse().unwrap()).is_err());
    #[cfg(target_arch = "aarch64")]
    assert!(Kernel::get("avx2".parse().unwrap()).is_err());
    assert!("sse9"
        .parse::<joulebench::engine::gemm::KernelKind>()
        .is_err());
}
