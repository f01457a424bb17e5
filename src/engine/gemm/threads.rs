//! Thread pools sized by the run, not by the machine. The calling thread is
//! worker 0 of its pools (so a run of T threads uses the caller plus T-1
//! workers, and work it forks stays on rayon's per-worker deques instead of the
//! global injector, whose queue allocates as it grows). Pools are kept per
//! calling thread and size, so repeated runs (a sweep over threads, a model's
//! many layers) do not respawn them.
//!
//! A thread can be worker 0 of one pool only: the first size it asks for. Its
//! pools of other sizes are ordinary rayon pools, entered through rayon's
//! global injector, whose queue allocates a block every 63 entries; a caller
//! that wants allocation-free runs at several sizes runs each size on a thread
//! of its own.

use crate::engine::EngineError;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

thread_local! {
    static POOLS: RefCell<HashMap<usize, Arc<ThreadPool>>> = RefCell::new(HashMap::new());
}

/// Threads a run may ask for: oversubscribing the cores is a legitimate
/// experiment, tens of thousands of threads are a typo.
pub fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (8 * cores).max(256)
}

/// Refuses 0 threads and more than [`max_threads`].
pub fn check_threads(threads: usize) -> Result<(), EngineError> {
    if threads == 0 {
        return Err(EngineError::param("threads", "must be at least 1"));
    }
    let max = max_threads();
    if threads > max {
        return Err(EngineError::param(
            "threads",
            format!(
                "{threads} is more than the {max} this machine allows (8 per logical CPU, at \
                 least 256); use at most {max}"
            ),
        ));
    }
    Ok(())
}

/// A rayon pool of exactly `threads` workers, the calling thread among them
/// when it is not already a worker of another pool.
pub fn pool(threads: usize) -> Result<Arc<ThreadPool>, EngineError> {
    check_threads(threads)?;
    if let Some(p) = POOLS.with(|m| m.borrow().get(&threads).cloned()) {
        return Ok(p);
    }
    let named = || {
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("joulebench-{i}"))
    };
    // Rayon leaks a pool that adopts its creator (it cannot un-register the
    // thread), which the per-thread cache bounds to one pool per size.
    let p = named()
        .use_current_thread()
        .build()
        .or_else(|_| named().build())
        .map_err(|e| EngineError::ThreadPool {
            threads,
            reason: e.to_string(),
        })?;
    let p = Arc::new(p);
    POOLS.with(|m| m.borrow_mut().insert(threads, Arc::clone(&p)));
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_thread_counts_are_refused_before_any_thread_starts() {
        assert!(check_threads(1).is_ok());
        assert!(check_threads(max_threads()).is_ok());
        for bad in [0, max_threads() + 1, 100_000] {
            let e = pool(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    EngineError::InvalidParameter {
                        name: "threads",
                        ..
                    }
                ),
                "{e}"
            );
        }
        assert!(pool(100_000).unwrap_err().to_string().contains("100000"));
    }
}
