//! Sizes checked against the machine's memory before they are allocated: an
//! allocation that cannot be satisfied aborts the process ("memory allocation
//! of N bytes failed", exit 134) instead of failing with a message.

use std::sync::OnceLock;
use thiserror::Error;

/// A size that does not fit in memory.
#[derive(Debug, Error, Clone, PartialEq)]
#[error(
    "{what} needs {} ({bytes} bytes), more than the {} ({limit} bytes) of memory available \
     on this machine; {fix}",
    human(*bytes),
    human(*limit as u128)
)]
pub struct SizeError {
    pub what: String,
    pub bytes: u128,
    pub limit: u64,
    pub fix: String,
}

/// Bytes as "3.2 GiB".
pub fn human(bytes: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// The memory this process may plan to use: what the kernel reports as
/// available (MemAvailable on Linux), else the total; read once.
pub fn memory_limit() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        // Without a reading nothing is refused here; the allocator then
        // stays the last word, as before.
        let Ok(mut sys) = sysinfo::System::new() else {
            return u64::MAX;
        };
        sys.refresh_memory();
        match sys.available_memory() {
            0 => sys.total_memory(),
            a => a,
        }
        .max(1 << 20)
    })
}

/// Bytes of `count` elements of `elem` bytes each, exact (no overflow).
pub fn bytes_of(dims: &[usize], elem: usize) -> u128 {
    dims.iter()
        .fold(elem as u128, |acc, &d| acc.saturating_mul(d as u128))
}

/// Refuses `bytes` above `limit`; `what` says what needs them and `fix` how to
/// need fewer.
pub fn check_within(what: &str, bytes: u128, limit: u64, fix: &str) -> Result<(), SizeError> {
    if bytes > limit as u128 {
        return Err(SizeError {
            what: what.into(),
            bytes,
            limit,
            fix: fix.into(),
        });
    }
    Ok(())
}

/// [`check_within`] against [`memory_limit`].
pub fn check_fits(what: &str, bytes: u128, fix: &str) -> Result<(), SizeError> {
    check_within(what, bytes, memory_limit(), fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_above_the_limit_are_refused_with_both_figures() {
        assert!(check_within("a", 1000, 1000, "x").is_ok());
        let e = check_within(
            "the input 1x3x1048576x1048576",
            1001,
            1000,
            "use a smaller input",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("1001 bytes") && msg.contains("1000 bytes"),
            "{msg}"
        );
        assert!(
            msg.contains("1x3x1048576x1048576") && msg.contains("smaller input"),
            "{msg}"
        );
    }

    #[test]
    fn products_do_not_overflow() {
        assert_eq!(bytes_of(&[2, 3], 4), 24);
        let huge = bytes_of(&[usize::MAX, usize::MAX, usize::MAX], 4);
        assert_eq!(huge, u128::MAX);
        assert!(check_fits("x", huge, "y").is_err());
    }

    #[test]
    fn the_machine_limit_is_plausible() {
        let l = memory_limit();
        assert!(l >= 1 << 20, "{l}");
        // Not more than the machine has in total.
        let mut sys = sysinfo::System::new().unwrap();
        sys.refresh_memory();
        assert!(l <= sys.total_memory().max(1 << 20), "{l}");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }
}
