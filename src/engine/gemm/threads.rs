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

/// A rayon pool of exactly `threads` workers, the calling thread among them
/// when it is not already a worker of another pool.
pub fn pool(threads: usize) -> Result<Arc<ThreadPool>, EngineError> {
    if threads == 0 {
        return Err(EngineError::param("threads", "must be at least 1"));
    }
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
