//! The ARM cores joulebench's boards use, recognised by the implementer and
//! part number in /proc/cpuinfo: which NEON schedule suits them, their caches
//! (for kernels that expose no sysfs cache files, as many Raspberry Pi and
//! Jetson kernels do) and the FMA throughput `peak` should reach.

use super::cache_config::CacheLevel;
use std::path::Path;

/// A core of the table, by `CPU implementer` and `CPU part`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmCore {
    CortexA53,
    CortexA55,
    CortexA57,
    CortexA72,
    CortexA76,
    CortexA78Ae,
    Carmel,
    NeoverseN1,
    NeoverseV1,
    NeoverseV2,
}

const fn level(kib: usize, ways: usize) -> Option<CacheLevel> {
    Some(CacheLevel {
        size_bytes: kib << 10,
        ways,
        line_bytes: 64,
    })
}

/// Data caches from a core's table entry: `(l1d, l2, l3)`.
type Levels = (Option<CacheLevel>, Option<CacheLevel>, Option<CacheLevel>);

impl ArmCore {
    pub const ALL: [ArmCore; 10] = [
        ArmCore::CortexA53,
        ArmCore::CortexA55,
        ArmCore::CortexA57,
        ArmCore::CortexA72,
        ArmCore::CortexA76,
        ArmCore::CortexA78Ae,
        ArmCore::Carmel,
        ArmCore::NeoverseN1,
        ArmCore::NeoverseV1,
        ArmCore::NeoverseV2,
    ];

    /// The core with this implementer (0x41 Arm, 0x4e NVIDIA) and part.
    pub fn from_ids(implementer: u32, part: u32) -> Option<ArmCore> {
        Some(match (implementer, part) {
            (0x41, 0xd03) => ArmCore::CortexA53,
            (0x41, 0xd05) => ArmCore::CortexA55,
            (0x41, 0xd07) => ArmCore::CortexA57,
            (0x41, 0xd08) => ArmCore::CortexA72,
            (0x41, 0xd0b) => ArmCore::CortexA76,
            (0x41, 0xd42) => ArmCore::CortexA78Ae,
            (0x4e, 0x004) => ArmCore::Carmel,
            (0x41, 0xd0c) => ArmCore::NeoverseN1,
            (0x41, 0xd40) => ArmCore::NeoverseV1,
            (0x41, 0xd4f) => ArmCore::NeoverseV2,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ArmCore::CortexA53 => "cortex-a53",
            ArmCore::CortexA55 => "cortex-a55",
            ArmCore::CortexA57 => "cortex-a57",
            ArmCore::CortexA72 => "cortex-a72",
            ArmCore::CortexA76 => "cortex-a76",
            ArmCore::CortexA78Ae => "cortex-a78ae",
            ArmCore::Carmel => "carmel",
            ArmCore::NeoverseN1 => "neoverse-n1",
            ArmCore::NeoverseV1 => "neoverse-v1",
            ArmCore::NeoverseV2 => "neoverse-v2",
        }
    }

    /// Issues in order: wants the software-pipelined NEON kernel.
    pub fn in_order(self) -> bool {
        matches!(self, ArmCore::CortexA53 | ArmCore::CortexA55)
    }

    /// f32 flop per cycle of the core's FMA pipes: 8 per 128-bit FMLA it
    /// completes a cycle (ARM's software optimization guides; one on the
    /// A53, A55, A57 and A72, two on the A76, A78AE, Carmel and N1, four on
    /// V1 and V2).
    pub fn flops_per_cycle(self) -> f64 {
        match self {
            ArmCore::CortexA53 | ArmCore::CortexA55 | ArmCore::CortexA57 | ArmCore::CortexA72 => {
                8.0
            }
            ArmCore::CortexA76 | ArmCore::CortexA78Ae | ArmCore::Carmel | ArmCore::NeoverseN1 => {
                16.0
            }
            ArmCore::NeoverseV1 | ArmCore::NeoverseV2 => 32.0,
        }
    }

    /// The data caches of one core of this kind as the boards that carry it
    /// build them (the L2 and L3 sizes are the SoC's choice): A53 Pi 3 /
    /// Zero 2 W, A55 RK3566, A57 Jetson Nano, A72 Pi 4, A76 Pi 5, A78AE
    /// Jetson Orin, Carmel Jetson Xavier, N1 / V1 / V2 Graviton 2 / 3 / 4.
    pub fn caches(self) -> Levels {
        match self {
            ArmCore::CortexA53 => (level(32, 4), level(512, 16), None),
            ArmCore::CortexA55 => (level(32, 4), level(128, 4), level(512, 16)),
            ArmCore::CortexA57 => (level(32, 2), level(2048, 16), None),
            ArmCore::CortexA72 => (level(32, 2), level(1024, 16), None),
            ArmCore::CortexA76 => (level(64, 4), level(512, 8), level(2048, 16)),
            ArmCore::CortexA78Ae => (level(64, 4), level(256, 8), level(2048, 16)),
            ArmCore::Carmel => (level(64, 4), level(2048, 16), level(4096, 16)),
            ArmCore::NeoverseN1 => (level(64, 4), level(1024, 8), level(32 << 10, 16)),
            ArmCore::NeoverseV1 => (level(64, 4), level(1024, 8), level(32 << 10, 16)),
            ArmCore::NeoverseV2 => (level(64, 4), level(2048, 8), level(36 << 10, 16)),
        }
    }
}

/// `(implementer, part)` of every processor /proc/cpuinfo lists, in order;
/// empty where it has no such lines (x86-64) or they do not parse.
pub fn parse_cpuinfo(text: &str) -> Vec<(u32, u32)> {
    let hex = |v: &str| u32::from_str_radix(v.trim().trim_start_matches("0x"), 16).ok();
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut imp = None;
        let mut part = None;
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key.trim() {
                "CPU implementer" => imp = hex(value),
                "CPU part" => part = hex(value),
                _ => {}
            }
        }
        if let (Some(i), Some(p)) = (imp, part) {
            out.push((i, p));
        }
    }
    out
}

/// The cores /proc/cpuinfo below `root` lists (`None` for parts not in the
/// table), in processor order; empty when unreadable or not ARM.
pub fn cores_at(root: &Path) -> Vec<Option<ArmCore>> {
    std::fs::read_to_string(root.join("proc/cpuinfo"))
        .map(|t| {
            parse_cpuinfo(&t)
                .into_iter()
                .map(|(i, p)| ArmCore::from_ids(i, p))
                .collect()
        })
        .unwrap_or_default()
}

impl serde::Serialize for ArmCore {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The first processor's core (the one sysfs's cpu0 caches describe).
pub fn cpu0_core_at(root: &Path) -> Option<ArmCore> {
    cores_at(root).first().copied().flatten()
}

/// This machine's cpu0 core.
pub fn detect() -> Option<ArmCore> {
    cpu0_core_at(Path::new("/"))
}

/// Whether every core listed issues in order (a big.LITTLE board's threads
/// may land on its big cores, which the default schedule suits).
pub fn all_in_order(cores: &[Option<ArmCore>]) -> bool {
    !cores.is_empty() && cores.iter().all(|c| c.is_some_and(ArmCore::in_order))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured /proc/cpuinfo of each board (tests/fixtures/boards/*/proc/cpuinfo).
    pub(crate) const BOARDS: [(&str, &str, Option<ArmCore>); 12] = [
        (
            "pi3-cortex-a53",
            include_str!("../../../tests/fixtures/boards/pi3-cortex-a53/proc/cpuinfo"),
            Some(ArmCore::CortexA53),
        ),
        (
            "radxa-zero3-cortex-a55",
            include_str!("../../../tests/fixtures/boards/radxa-zero3-cortex-a55/proc/cpuinfo"),
            Some(ArmCore::CortexA55),
        ),
        (
            "jetson-nano-cortex-a57",
            include_str!("../../../tests/fixtures/boards/jetson-nano-cortex-a57/proc/cpuinfo"),
            Some(ArmCore::CortexA57),
        ),
        (
            "pi4-cortex-a72",
            include_str!("../../../tests/fixtures/boards/pi4-cortex-a72/proc/cpuinfo"),
            Some(ArmCore::CortexA72),
        ),
        (
            "pi5-cortex-a76",
            include_str!("../../../tests/fixtures/boards/pi5-cortex-a76/proc/cpuinfo"),
            Some(ArmCore::CortexA76),
        ),
        (
            "jetson-orin-cortex-a78ae",
            include_str!("../../../tests/fixtures/boards/jetson-orin-cortex-a78ae/proc/cpuinfo"),
            Some(ArmCore::CortexA78Ae),
        ),
        (
            "jetson-xavier-carmel",
            include_str!("../../../tests/fixtures/boards/jetson-xavier-carmel/proc/cpuinfo"),
            Some(ArmCore::Carmel),
        ),
        (
            "graviton2-neoverse-n1",
            include_str!("../../../tests/fixtures/boards/graviton2-neoverse-n1/proc/cpuinfo"),
            Some(ArmCore::NeoverseN1),
        ),
        (
            "graviton3-neoverse-v1",
            include_str!("../../../tests/fixtures/boards/graviton3-neoverse-v1/proc/cpuinfo"),
            Some(ArmCore::NeoverseV1),
        ),
        (
            "graviton4-neoverse-v2",
            include_str!("../../../tests/fixtures/boards/graviton4-neoverse-v2/proc/cpuinfo"),
            Some(ArmCore::NeoverseV2),
        ),
        (
            "rk3399-big-little",
            include_str!("../../../tests/fixtures/boards/rk3399-big-little/proc/cpuinfo"),
            Some(ArmCore::CortexA53),
        ),
        (
            "x86-64",
            include_str!("../../../tests/fixtures/boards/x86-64/proc/cpuinfo"),
            None,
        ),
    ];

    #[test]
    fn every_board_is_recognised() {
        for (name, text, want) in BOARDS {
            let cores: Vec<_> = parse_cpuinfo(text)
                .into_iter()
                .map(|(i, p)| ArmCore::from_ids(i, p))
                .collect();
            assert_eq!(cores.first().copied().flatten(), want, "{name}");
            assert_eq!(cores.is_empty(), want.is_none(), "{name}");
        }
        let rk = parse_cpuinfo(BOARDS[10].1);
        assert_eq!(rk.len(), 6);
        assert_eq!(rk[5], (0x41, 0xd08));
    }

    #[test]
    fn in_order_only_where_every_core_is() {
        let sel = |text: &str| {
            let cores: Vec<_> = parse_cpuinfo(text)
                .into_iter()
                .map(|(i, p)| ArmCore::from_ids(i, p))
                .collect();
            all_in_order(&cores)
        };
        for (name, text, _) in BOARDS {
            let want = name.contains("a53") || name.contains("a55");
            assert_eq!(sel(text), want, "{name}");
        }
        // An unknown part among in-order ones is not known to be in order.
        assert!(!all_in_order(&[Some(ArmCore::CortexA53), None]));
        assert!(!all_in_order(&[]));
    }

    #[test]
    fn kernel_selection_follows_the_part_numbers() {
        use crate::engine::gemm::{Kernel, KernelKind};
        for (name, text, _) in BOARDS {
            let cores: Vec<_> = parse_cpuinfo(text)
                .into_iter()
                .map(|(i, p)| ArmCore::from_ids(i, p))
                .collect();
            let want = if name.starts_with("pi3") || name.starts_with("radxa") {
                KernelKind::NeonInOrder
            } else {
                KernelKind::Neon
            };
            assert_eq!(Kernel::neon_for(&cores), want, "{name}");
        }
    }

    #[test]
    fn table_is_consistent() {
        for core in ArmCore::ALL {
            let (l1, l2, l3) = core.caches();
            let (l1, l2) = (l1.unwrap(), l2.unwrap());
            assert!(l1.size_bytes < l2.size_bytes, "{core:?}");
            if let Some(l3) = l3 {
                assert!(l2.size_bytes < l3.size_bytes, "{core:?}");
            }
            for l in [Some(l1), Some(l2), l3].into_iter().flatten() {
                assert_eq!(l.size_bytes % (l.ways * l.line_bytes), 0, "{core:?}");
            }
            assert!(core.flops_per_cycle() >= 8.0);
            assert_eq!(
                core.in_order(),
                core.name().ends_with("a53") || core.name().ends_with("a55")
            );
        }
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text =
            "processor : 0\nCPU implementer : zz\nCPU part : 0xd03\n\nprocessor : 1\nCPU part\n";
        assert!(parse_cpuinfo(text).is_empty());
        assert!(cores_at(Path::new("/nonexistent-root")).is_empty());
    }
}
