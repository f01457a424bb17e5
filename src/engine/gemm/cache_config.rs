//! Cache blocking: `CacheConfig { mc, nc, kc }` from an analytical model of the
//! detected caches (Low, Igual, Smith, Quintana-Ortí, "Analytical modeling is
//! enough for high-performance BLIS", TOMS 2016), every value overridable.

use super::arm_cores::{self, ArmCore};
use crate::engine::EngineError;
use serde::{Deserialize, Serialize};
use std::path::Path;

const F32: usize = std::mem::size_of::<f32>();

/// Blocking of the five-loop GEMM: the packed A block is `mc x kc`, the packed B
/// panel `kc x nc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheConfig {
    pub mc: usize,
    pub nc: usize,
    pub kc: usize,
}

/// One cache level as the kernel describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLevel {
    pub size_bytes: usize,
    pub ways: usize,
    pub line_bytes: usize,
}

impl CacheLevel {
    fn sets(&self) -> usize {
        (self.size_bytes / (self.ways.max(1) * self.line_bytes.max(1))).max(1)
    }
    /// Bytes one way of the cache holds.
    fn way_bytes(&self) -> usize {
        self.sets() * self.line_bytes
    }
}

/// The data caches of cpu0; `None` where the level is absent or unreadable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheInfo {
    pub l1d: Option<CacheLevel>,
    pub l2: Option<CacheLevel>,
    pub l3: Option<CacheLevel>,
}

/// Used when sysfs says nothing: a typical modern core (32 KiB 8-way L1d,
/// 512 KiB 8-way L2, no L3 assumed).
const DEFAULT_L1: CacheLevel = CacheLevel {
    size_bytes: 32 << 10,
    ways: 8,
    line_bytes: 64,
};
const DEFAULT_L2: CacheLevel = CacheLevel {
    size_bytes: 512 << 10,
    ways: 8,
    line_bytes: 64,
};
/// nc when there is no L3 to size it by (BLIS's usual value).
const DEFAULT_NC: usize = 4080;

/// Parses sysfs cache sizes such as `32K`, `8192K`, `1M`.
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1usize << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<usize>().ok()?.checked_mul(mult)
}

impl CacheInfo {
    /// Reads `/sys/devices/system/cpu/cpu0/cache/index*` below `root`.
    pub fn from_sysfs(root: &Path) -> CacheInfo {
        let dir = root.join("sys/devices/system/cpu/cpu0/cache");
        let mut info = CacheInfo {
            l1d: None,
            l2: None,
            l3: None,
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return info;
        };
        for e in entries.flatten() {
            let p = e.path();
            if !p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("index"))
            {
                continue;
            }
            let read = |f: &str| std::fs::read_to_string(p.join(f)).ok();
            let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size"))
            else {
                continue;
            };
            let Some(size_bytes) = parse_size(&size) else {
                continue;
            };
            let ways = read("ways_of_associativity")
                .and_then(|s| s.trim().parse().ok())
                .filter(|&w: &usize| w > 0)
                .unwrap_or(8);
            let line_bytes = read("coherency_line_size")
                .and_then(|s| s.trim().parse().ok())
                .filter(|&l: &usize| l > 0)
                .unwrap_or(64);
            let lvl = CacheLevel {
                size_bytes,
                ways,
                line_bytes,
            };
            match (level.trim(), kind.trim()) {
                ("1", "Data") | ("1", "Unified") => info.l1d = Some(lvl),
                ("2", "Data") | ("2", "Unified") => info.l2 = Some(lvl),
                ("3", "Data") | ("3", "Unified") => info.l3 = Some(lvl),
                _ => {}
            }
        }
        info
    }

    /// The caches of the machine whose `/sys` and `/proc` are below `root`
    /// (`/` for this one; a fixture tree in tests): sysfs when it gives the L1d
    /// and L2 the model needs, else cpu0's core from the table by its part in
    /// /proc/cpuinfo (many Raspberry Pi and Jetson kernels expose no cache
    /// sizes), else what sysfs gave with the model's defaults for the rest.
    pub fn detect_at(root: &Path) -> CacheDetection {
        let sysfs = Self::from_sysfs(root);
        if sysfs.l1d.is_some() && sysfs.l2.is_some() {
            return CacheDetection {
                caches: sysfs,
                source: CacheSource::Sysfs,
                core: None,
            };
        }
        match arm_cores::cpu0_core_at(root) {
            Some(core) => {
                let (l1d, l2, l3) = core.caches();
                CacheDetection {
                    caches: CacheInfo { l1d, l2, l3 },
                    source: CacheSource::CpuinfoTable,
                    core: Some(core),
                }
            }
            None => CacheDetection {
                caches: sysfs,
                source: CacheSource::Default,
                core: None,
            },
        }
    }

    /// The caches of this machine.
    pub fn detect() -> CacheInfo {
        Self::detect_at(Path::new("/")).caches
    }
}

/// Which source gave a machine's cache sizes (recorded in the manifest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheSource {
    /// The kernel's cacheinfo files (`/sys/devices/system/cpu/cpu0/cache`).
    Sysfs,
    /// sysfs was silent: the table of ARM cores, by cpu0's `CPU part`.
    CpuinfoTable,
    /// Neither: the model's defaults for whatever sysfs did not give.
    Default,
}

impl CacheSource {
    pub fn name(self) -> &'static str {
        match self {
            CacheSource::Sysfs => "sysfs",
            CacheSource::CpuinfoTable => "cpuinfo-table",
            CacheSource::Default => "default",
        }
    }
}

/// [`CacheInfo::detect_at`]'s answer: the caches and where they came from
/// (the run manifest's `caches`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CacheDetection {
    pub caches: CacheInfo,
    pub source: CacheSource,
    /// The table's core, when the table gave them.
    pub core: Option<ArmCore>,
}

impl CacheDetection {
    /// This machine's.
    pub fn detect() -> CacheDetection {
        CacheInfo::detect_at(Path::new("/"))
    }
}

fn round_down(x: usize, m: usize) -> usize {
    (x / m * m).max(m)
}

impl CacheConfig {
    /// The analytical model for an `mr x nr` micro-kernel, after Low et al.:
    /// - kc: the B micro-panel (kc x nr) stays in L1 while A micro-panels (mr x kc)
    ///   stream through it. Of the W1 ways, one is kept for C and one for the
    ///   streaming A micro-panel; B gets the rest. (Low et al. size kc so A fills
    ///   `floor((W1-1)/(1+nr/mr))` ways; with the wide 6x16 tile on an 8-way L1
    ///   that leaves B three idle ways, and measurement here shows kc twice as
    ///   large amortises each tile's C traffic better: 36 vs 34 GFLOP/s on Zen.)
    /// - mc: the packed A block (mc x kc) fills the L2 ways not needed by one B
    ///   micro-panel, less one way for C.
    /// - nc: the packed B panel (kc x nc) fills the L3 ways not needed by the A block.
    pub fn analytical(mr: usize, nr: usize, caches: &CacheInfo) -> CacheConfig {
        let l1 = caches.l1d.unwrap_or(DEFAULT_L1);
        let l2 = caches.l2.unwrap_or(DEFAULT_L2);

        let ways_b = l1.ways.saturating_sub(2).max(1);
        let kc = round_down(ways_b * l1.way_bytes() / (nr * F32), 8);

        let b_ways_l2 = (kc * nr * F32).div_ceil(l2.way_bytes());
        let a_ways_l2 = l2.ways.saturating_sub(1 + b_ways_l2).max(1);
        let mc = round_down(a_ways_l2 * l2.way_bytes() / (kc * F32), mr);

        let nc = match caches.l3 {
            Some(l3) => {
                let a_ways_l3 = (mc * kc * F32).div_ceil(l3.way_bytes());
                let b_ways = l3.ways.saturating_sub(1 + a_ways_l3).max(1);
                round_down(b_ways * l3.way_bytes() / (kc * F32), nr)
            }
            None => round_down(DEFAULT_NC, nr),
        };
        CacheConfig { mc, nc, kc }
    }

    /// The model applied to this machine's caches.
    pub fn auto(mr: usize, nr: usize) -> CacheConfig {
        Self::analytical(mr, nr, &CacheInfo::detect())
    }

    /// Replaces the values given.
    pub fn with_overrides(
        self,
        mc: Option<usize>,
        nc: Option<usize>,
        kc: Option<usize>,
    ) -> CacheConfig {
        CacheConfig {
            mc: mc.unwrap_or(self.mc),
            nc: nc.unwrap_or(self.nc),
            kc: kc.unwrap_or(self.kc),
        }
    }

    /// Every block size must be at least 1.
    pub fn validate(&self) -> Result<(), EngineError> {
        for (name, v) in [("mc", self.mc), ("nc", self.nc), ("kc", self.kc)] {
            if v == 0 {
                return Err(EngineError::param(
                    name,
                    "cache block sizes must be at least 1",
                ));
            }
        }
        Ok(())
    }

    /// nc rounded up to whole B micro-panels, as the driver uses it.
    pub fn resolved(&self, nr: usize) -> CacheConfig {
        CacheConfig {
            nc: self.nc.div_ceil(nr) * nr,
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysfs_sizes() {
        assert_eq!(parse_size("32K\n"), Some(32768));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn model_on_a_zen_like_hierarchy() {
        // 32 KiB 8-way L1d, 512 KiB 8-way L2, 8 MiB 16-way L3, 64 B lines.
        let caches = CacheInfo {
            l1d: Some(DEFAULT_L1),
            l2: Some(DEFAULT_L2),
            l3: Some(CacheLevel {
                size_bytes: 8 << 20,
                ways: 16,
                line_bytes: 64,
            }),
        };
        let c = CacheConfig::analytical(6, 16, &caches);
        // B gets 8-2 = 6 ways of 4 KiB: kc = 24576 / 64 = 384.
        assert_eq!(c.kc, 384);
        // L2 way = 64 KiB; B micro-panel 384*16*4 = 24 KiB takes 1 way; A gets 6:
        // 393216 / 1536 = 256 -> 252 (whole micro-panels of 6).
        assert_eq!(c.mc, 252);
        assert_eq!(c.nc % 16, 0);
        // The blocks really fit where the model puts them.
        assert!(c.kc * 16 * 4 <= 32 << 10);
        assert!(c.mc * c.kc * 4 <= 512 << 10);
        assert!(c.nc * c.kc * 4 <= 8 << 20);
    }

    #[test]
    fn reads_a_fixture_tree_and_falls_back_when_absent() {
        let dir = std::env::temp_dir().join(format!("jb-cache-{}", std::process::id()));
        let idx = dir.join("sys/devices/system/cpu/cpu0/cache/index0");
        std::fs::create_dir_all(&idx).unwrap();
        for (f, v) in [
            ("level", "1"),
            ("type", "Data"),
            ("size", "64K"),
            ("ways_of_associativity", "4"),
            ("coherency_line_size", "64"),
        ] {
            std::fs::write(idx.join(f), v).unwrap();
        }
        let info = CacheInfo::from_sysfs(&dir);
        assert_eq!(info.l1d.unwrap().size_bytes, 64 << 10);
        assert_eq!(info.l1d.unwrap().ways, 4);
        assert!(info.l2.is_none());
        let c = CacheConfig::analytical(8, 12, &info);
        assert!(c.kc >= 8 && c.mc >= 8 && c.nc >= 12);
        std::fs::remove_dir_all(&dir).unwrap();

        let none = CacheInfo::from_sysfs(Path::new("/nonexistent-root"));
        assert_eq!(none.l1d, None);
        let d = CacheConfig::analytical(6, 16, &none);
        assert!(d.validate().is_ok());
    }

    #[test]
    fn zero_blocks_are_rejected() {
        let c = CacheConfig {
            mc: 0,
            nc: 16,
            kc: 16,
        };
        assert!(c.validate().is_err());
    }
}
