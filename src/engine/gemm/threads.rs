//! Thread pools sized by the run, not by the machine. Pools are kept per size so
//! repeated runs (a sweep over threads, a model's many layers) do not respawn them.

use crate::engine::EngineError;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();

/// A rayon pool of exactly `threads` workers (`threads >= 2`).
pub fn pool(threads: usize) -> Result<Arc<ThreadPool>, EngineError> {
    if threads == 0 {
        return Err(EngineError::param("threads", "must be at least 1"));
    }
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    // A poisoned lock only means another thread panicked while inserting; the map
    // itself is still consistent.
    let mut map = pools.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = map.get(&threads) {
        return Ok(Arc::clone(p));
    }
    let p = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("joulebench-{i}"))
        .build()
        .map_err(|e| EngineError::ThreadPool {
            threads,
            reason: e.to_string(),
        })?;
    let p = Arc::new(p);
    map.insert(threads, Arc::clone(&p));
    Ok(p)
}
