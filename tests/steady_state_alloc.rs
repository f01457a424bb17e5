//! After its first inference a session allocates nothing: counted by a global
//! allocator wrapper around the system allocator, on the threads that run the
//! inference (the caller and its pool's workers) — libtest's own threads may
//! allocate at any time and must not count against the engine.

use joulebench::engine::conv::ConvChoice;
use joulebench::engine::gemm::threads;
use joulebench::engine::models;
use joulebench::engine::session::{Session, SessionOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    /// Whether this thread's allocations are counted.
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if WATCHED.with(Cell::get) {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
    }
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
    for (model, batch, threads, fusion, conv) in [
        ("tiny", 1, 1, true, ConvChoice::Auto),
        ("tiny", 3, 2, false, ConvChoice::Auto),
        ("tiny", 2, 3, true, ConvChoice::Auto),
        ("mobilenet_v1", 2, 2, true, ConvChoice::Auto),
        ("resnet18", 1, 2, true, ConvChoice::Auto),
        ("resnet18", 2, 2, true, ConvChoice::Winograd),
        ("tiny", 1, 1, true, ConvChoice::Winograd),
        ("tiny", 2, 2, true, ConvChoice::Winograd4),
    ] {
        // A thread of its own per configuration, so the calling thread is
        // worker 0 of the pool (see engine::gemm::threads).
        std::thread::spawn(move || check(model, batch, threads, fusion, conv))
            .join()
            .unwrap();
    }
}

fn check(model: &str, batch: usize, threads: usize, fusion: bool, conv: ConvChoice) {
    WATCHED.with(|w| w.set(true));
    {
        let g = models::build(model, 1).unwrap();
        let opts = SessionOptions {
            batch,
            threads,
            fusion,
            conv,
            ..SessionOptions::default()
        };
        let mut s = Session::new(&g, &opts).unwrap();
        if threads > 1 {
            // The session runs on this thread's cached pool of that size: watch its workers.
            threads::pool(threads)
                .unwrap()
                .broadcast(|_| WATCHED.with(|w| w.set(true)));
        }
        let input = vec![0.25f32; s.input_len()];
        s.run(&input).unwrap();
        let before = ALLOCS.load(Ordering::SeqCst);
        for _ in 0..10 {
            s.run(&input).unwrap();
        }
        let after = ALLOCS.load(Ordering::SeqCst);
        assert_eq!(
            after - before,
            0,
            "{model} batch {batch} threads {threads} fusion {fusion} conv {conv}: allocations in steady state"
        );
        // The counter itself works: an allocation on this thread is seen.
        let v = std::hint::black_box(vec![1u8; 64]);
        assert!(ALLOCS.load(Ordering::SeqCst) > after, "{}", v.len());
    }
}
