//! The shared-memory pmap makes no heap allocation per record, in the
//! workers or in the caller. One test per binary: it counts this process's
//! allocations with its own global allocator.

mod fork_contract;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds GlobalAlloc::realloc's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn records_are_mapped_without_a_heap_allocation_each() {
    const RECORDS: usize = 200_000;
    let inputs: Vec<u64> = (0..RECORDS as u64).collect();
    let before = ALLOCS.load(Ordering::Relaxed);
    // Each output is the worker's allocation count when it ran the record
    // (a worker counts its own, from the fork on).
    let outputs =
        pprocess::pmap_records(|_: &u64| Ok(ALLOCS.load(Ordering::Relaxed)), &inputs, 2).unwrap();
    let in_caller = ALLOCS.load(Ordering::Relaxed) - before;
    let (min, max) = (outputs.iter().min().unwrap(), outputs.iter().max().unwrap());
    let in_workers = max - min;
    assert!(
        in_workers * 100 < RECORDS as u64,
        "{in_workers} allocations in the workers for {RECORDS} records"
    );
    assert!(
        in_caller * 100 < RECORDS as u64,
        "{in_caller} allocations in the caller for {RECORDS} records"
    );
}
