//! After its first inference a session allocates nothing: counted by a global
//! allocator wrapper around the system allocator.

use joulebench::engine::models;
use joulebench::engine::session::{Session, SessionOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    /// Allocations by this thread alone: libtest's own threads may allocate
    /// while a test runs, which must not count against the engine.
    static MINE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count() {
    ALLOCS.fetch_add(1, Ordering::SeqCst);
    MINE.with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn inference_allocates_nothing_after_the_first_run() {
    for (model, batch, threads, fusion) in [
        ("tiny", 1, 1, true),
        ("tiny", 3, 2, false),
        ("mobilenet_v1", 2, 2, true),
        ("resnet18", 1, 2, true),
    ] {
        let g = models::build(model, 1).unwrap();
        let opts = SessionOptions {
            batch,
            threads,
            fusion,
            ..SessionOptions::default()
        };
        let mut s = Session::new(&g, &opts).unwrap();
        let input = vec![0.25f32; s.input_len()];
        s.run(&input).unwrap();
        let before = ALLOCS.load(Ordering::SeqCst);
        let mine_before = MINE.with(|c| c.get());
        let runs = 10;
        for _ in 0..runs {
            s.run(&input).unwrap();
        }
        let mine = MINE.with(|c| c.get()) - mine_before;
        let allocs = ALLOCS.load(Ordering::SeqCst) - before;
        let after = ALLOCS.load(Ordering::SeqCst);
        if threads == 1 {
            assert_eq!(
                mine, 0,
                "{model} batch {batch} fusion {fusion}: allocations in steady state"
            );
        } else {
            // joulebench's own buffers are reused; what remains is rayon's
            // work-stealing deque (crossbeam) occasionally resizing when a
            // steal races a pop: rare, bounded, and never per layer.
            assert!(
                allocs <= runs,
                "{model} batch {batch} threads {threads} fusion {fusion}: {allocs} allocations in {runs} runs"
            );
        }
        // The counter itself works: an allocation is seen.
        let v = std::hint::black_box(vec![1u8; 64]);
        assert!(ALLOCS.load(Ordering::SeqCst) > after, "{}", v.len());
    }
}
