//! Each board's caches and the blocking they give, from the fixture trees in
//! `tests/fixtures/boards/<board>` (its /proc/cpuinfo, and its
//! /sys/devices/system/cpu/cpu0/cache where its kernel has one), rooted the way
//! the power sources read sysfs; and the same boards with the cache files gone.

use super::arm_cores::ArmCore;
use super::cache_config::{CacheConfig, CacheInfo, CacheSource};
use std::path::{Path, PathBuf};

fn board(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/boards")
        .join(name)
}

/// Every fixture board: the source its own tree gives, and its core.
const BOARDS: [(&str, CacheSource, Option<ArmCore>); 12] = [
    // No cache directory at all.
    (
        "pi3-cortex-a53",
        CacheSource::CpuinfoTable,
        Some(ArmCore::CortexA53),
    ),
    // cacheinfo directories from a device tree without sizes (6.x kernels).
    (
        "pi4-cortex-a72",
        CacheSource::CpuinfoTable,
        Some(ArmCore::CortexA72),
    ),
    (
        "pi5-cortex-a76",
        CacheSource::Sysfs,
        Some(ArmCore::CortexA76),
    ),
    (
        "jetson-nano-cortex-a57",
        CacheSource::Sysfs,
        Some(ArmCore::CortexA57),
    ),
    (
        "jetson-xavier-carmel",
        CacheSource::CpuinfoTable,
        Some(ArmCore::Carmel),
    ),
    (
        "jetson-orin-cortex-a78ae",
        CacheSource::Sysfs,
        Some(ArmCore::CortexA78Ae),
    ),
    (
        "graviton2-neoverse-n1",
        CacheSource::Sysfs,
        Some(ArmCore::NeoverseN1),
    ),
    (
        "graviton3-neoverse-v1",
        CacheSource::Sysfs,
        Some(ArmCore::NeoverseV1),
    ),
    (
        "graviton4-neoverse-v2",
        CacheSource::Sysfs,
        Some(ArmCore::NeoverseV2),
    ),
    (
        "radxa-zero3-cortex-a55",
        CacheSource::CpuinfoTable,
        Some(ArmCore::CortexA55),
    ),
    // cpu0 is a little A53; sysfs describes cpu0, so the table's A53 entry.
    (
        "rk3399-big-little",
        CacheSource::CpuinfoTable,
        Some(ArmCore::CortexA53),
    ),
    ("x86-64", CacheSource::Sysfs, None),
];

/// A copy of a board's /proc/cpuinfo alone: its kernel without cache files.
fn without_sysfs(name: &str, test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jb-board-{}-{test}-{name}", std::process::id()));
    std::fs::create_dir_all(dir.join("proc")).unwrap();
    std::fs::copy(board(name).join("proc/cpuinfo"), dir.join("proc/cpuinfo")).unwrap();
    dir
}

fn table(core: ArmCore) -> CacheInfo {
    let (l1d, l2, l3) = core.caches();
    CacheInfo { l1d, l2, l3 }
}

#[test]
fn each_board_tree_gives_its_source() {
    for (name, source, core) in BOARDS {
        let d = CacheInfo::detect_at(&board(name));
        assert_eq!(d.source, source, "{name}");
        match source {
            CacheSource::CpuinfoTable => {
                assert_eq!(d.core, core, "{name}");
                assert_eq!(d.caches, table(core.unwrap()), "{name}");
            }
            _ => assert_eq!(d.core, None, "{name}"),
        }
        assert!(d.caches.l1d.is_some() && d.caches.l2.is_some(), "{name}");
    }
}

#[test]
fn sysfs_and_table_agree_where_both_speak() {
    // The table holds what the boards' kernels report where they report it.
    for (name, source, core) in BOARDS {
        if let (CacheSource::Sysfs, Some(core)) = (source, core) {
            let sysfs = CacheInfo::from_sysfs(&board(name));
            assert_eq!(sysfs, table(core), "{name}");
        }
    }
}

#[test]
fn without_cache_files_the_table_gives_caches_and_blocking() {
    for (name, _, core) in BOARDS {
        let root = without_sysfs(name, "table");
        let d = CacheInfo::detect_at(&root);
        std::fs::remove_dir_all(&root).unwrap();
        match core {
            Some(core) => {
                assert_eq!(d.source, CacheSource::CpuinfoTable, "{name}");
                assert_eq!(d.core, Some(core), "{name}");
                assert_eq!(d.caches, table(core), "{name}");
            }
            None => {
                assert_eq!(d.source, CacheSource::Default, "{name}");
                assert_eq!((d.caches.l1d, d.caches.l2), (None, None), "{name}");
            }
        }
    }
}

#[test]
fn blocking_from_the_table_by_hand() {
    let cfg =
        |name: &str| CacheConfig::analytical(8, 12, &CacheInfo::detect_at(&board(name)).caches);
    // Pi 4 (A72: 32 KiB 2-way L1d, 1 MiB 16-way L2, no L3). kc: one 16 KiB
    // way for B, 16384 / 48 = 341 -> 336. mc: B's panel takes one 64 KiB L2
    // way, C one, A 14: 14 * 65536 / (336 * 4) = 682 -> 680. nc: 4080.
    // The defaults (32 KiB 8-way, 512 KiB 8-way) gave mc 192, kc 512.
    assert_eq!(
        cfg("pi4-cortex-a72"),
        CacheConfig {
            mc: 680,
            nc: 4080,
            kc: 336
        }
    );
    let silent = CacheInfo::from_sysfs(&board("pi4-cortex-a72"));
    assert_eq!(silent.l1d, None);
    assert_eq!(
        CacheConfig::analytical(8, 12, &silent),
        CacheConfig {
            mc: 192,
            nc: 4080,
            kc: 512
        }
    );
    // Pi 3 (A53: 32 KiB 4-way, 512 KiB 16-way): kc 2 * 8192 / 48 = 341 ->
    // 336; mc 14 * 32768 / 1344 = 341 -> 336.
    assert_eq!(
        cfg("pi3-cortex-a53"),
        CacheConfig {
            mc: 336,
            nc: 4080,
            kc: 336
        }
    );
    // Xavier (Carmel: 64 KiB 4-way, 2 MiB 16-way, 4 MiB 16-way L3): kc
    // 2 * 16384 / 48 = 682 -> 680; mc 14 * 131072 / 2720 = 674 -> 672; the A
    // block (1827840 B) takes 7 of the L3's 256 KiB ways, C one, B 8:
    // 8 * 262144 / 2720 = 771 -> 768.
    assert_eq!(
        cfg("jetson-xavier-carmel"),
        CacheConfig {
            mc: 672,
            nc: 768,
            kc: 680
        }
    );
}

#[test]
fn partial_sysfs_defers_to_the_table_and_unknown_parts_to_the_defaults() {
    // An L1d without an L2 is not enough for the model: the table fills it.
    let root = without_sysfs("pi4-cortex-a72", "partial");
    let idx = root.join("sys/devices/system/cpu/cpu0/cache/index0");
    std::fs::create_dir_all(&idx).unwrap();
    for (f, v) in [("level", "1"), ("type", "Data"), ("size", "32K")] {
        std::fs::write(idx.join(f), v).unwrap();
    }
    let d = CacheInfo::detect_at(&root);
    assert_eq!(d.source, CacheSource::CpuinfoTable);
    assert_eq!(d.caches, table(ArmCore::CortexA72));
    // A part the table does not know: the L1d sysfs gave, defaults after.
    std::fs::write(
        root.join("proc/cpuinfo"),
        "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xfff\n",
    )
    .unwrap();
    let d = CacheInfo::detect_at(&root);
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(d.source, CacheSource::Default);
    assert_eq!(d.caches.l1d.unwrap().size_bytes, 32 << 10);
    assert_eq!(d.caches.l2, None);
}

#[test]
fn the_manifest_names_the_source() {
    let d = CacheInfo::detect_at(&board("jetson-xavier-carmel"));
    let v = serde_json::to_value(d).unwrap();
    assert_eq!(v["source"], "cpuinfo-table");
    assert_eq!(v["core"], "carmel");
    assert_eq!(v["caches"]["l2"]["size_bytes"], 2 << 20);
    let v = serde_json::to_value(CacheInfo::detect_at(&board("pi5-cortex-a76"))).unwrap();
    assert_eq!(
        (v["source"].as_str(), v["core"].is_null()),
        (Some("sysfs"), true)
    );
}
