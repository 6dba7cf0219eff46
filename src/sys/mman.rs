//! Shared memory: anonymous `MAP_SHARED` mappings that created processes
//! inherit, so what a child writes there its creator reads.

use core::ptr::NonNull;
use core::sync::atomic::AtomicU64;

use super::{Errno, Result};

/// An anonymous, shared, read-write mapping, unmapped on drop. Processes
/// forked while it exists share its pages with this one.
#[derive(Debug)]
pub struct SharedMap {
    ptr: NonNull<u8>,
    len: usize,
    /// The process that kept it from forks ([`SharedMap::keep_from_forks`]),
    /// 0 if none: only there is it mapped.
    kept_by: super::Pid,
}

// SAFETY: a SharedMap owns its mapping as a Box owns its allocation: no
// other value in this process aliases it, `bytes_mut` takes `&mut self`, and
// what other processes write is read through the same accessors whichever
// thread holds the value.
unsafe impl Send for SharedMap {}
// SAFETY: `&SharedMap` gives only shared reads (`bytes`) and atomics
// (`words`), which threads may use at once.
unsafe impl Sync for SharedMap {}

impl SharedMap {
    /// [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html) of `len`
    /// zeroed bytes with `MAP_SHARED | MAP_ANONYMOUS`. Zero bytes map
    /// nothing (an empty, dangling region).
    pub fn new(len: usize) -> Result<SharedMap> {
        if len == 0 {
            return Ok(SharedMap::empty());
        }
        // SAFETY: an anonymous mapping at an address the kernel picks touches
        // no existing memory; failure is MAP_FAILED, checked below.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(super::last_errno());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or(Errno::NOMEM)?;
        Ok(SharedMap {
            ptr,
            len,
            kept_by: 0,
        })
    }

    /// A mapping of nothing: an empty region that maps no memory.
    pub fn empty() -> SharedMap {
        SharedMap {
            ptr: NonNull::<AtomicU64>::dangling().cast(),
            len: 0,
            kept_by: 0,
        }
    }

    /// The mapping's bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` bytes while the mapping lives
        // (dangling and aligned for len 0). Other processes write here only
        // what the caller has not read yet: pmap reads a record once the
        // process that wrote it has reported it or ended.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The mapping's bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `bytes`; `&mut self` excludes other borrows in this
        // process, and each record is written by one process only.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// A second handle on the same pages, as a forked process has: for
    /// tests in one process. It must never be dropped (the pages would be
    /// unmapped twice); hence `ManuallyDrop`, which a test forgets.
    #[cfg(test)]
    pub fn alias(&self) -> core::mem::ManuallyDrop<SharedMap> {
        core::mem::ManuallyDrop::new(SharedMap {
            ptr: self.ptr,
            len: self.len,
            kept_by: self.kept_by,
        })
    }

    /// Processes forked from now on do not get this mapping
    /// (`MADV_DONTFORK`): for memory shared with one process only. A copy
    /// of this value in such a process (inherited in a copy of its owner)
    /// unmaps nothing when dropped: the address may hold that process's own
    /// memory by then. Failure changes nothing (they then inherit it).
    pub fn keep_from_forks(&mut self) {
        if self.len > 0 && advise(self.ptr.as_ptr() as usize, self.len, libc::MADV_DONTFORK) {
            self.kept_by = super::getpid();
        }
    }

    /// Copies the bytes at `at` into `dst` with volatile reads, for memory
    /// another process may be writing meanwhile (a peer that breaks the
    /// protocol): the caller validates what it read. False, copying
    /// nothing, for a range outside the mapping.
    pub fn read_racy(&self, at: usize, dst: &mut [u8]) -> bool {
        if at.checked_add(dst.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        let base = self.ptr.as_ptr();
        let mut i = 0;
        // Whole 8-byte words while the source is aligned for them (the
        // mapping is page-aligned), then bytes.
        while i < dst.len() && !(at + i).is_multiple_of(8) {
            // SAFETY: as below, for one byte.
            dst[i] = unsafe { core::ptr::read_volatile(base.add(at + i)) };
            i += 1;
        }
        let mut words = dst[i..].chunks_exact_mut(8);
        for chunk in &mut words {
            // SAFETY: `at + i .. at + i + 8` is inside the mapping (checked
            // above: `chunk` is inside `dst`) and 8-aligned; a u64 has no
            // invalid values.
            let word = unsafe { core::ptr::read_volatile(base.add(at + i).cast::<u64>()) };
            chunk.copy_from_slice(&word.to_ne_bytes());
            i += 8;
        }
        while i < dst.len() {
            // SAFETY: `at + i` is inside the mapping (checked above), which
            // lives as long as `self`; a byte has no invalid values, and a
            // volatile read of memory written concurrently yields some
            // value, which the caller validates.
            dst[i] = unsafe { core::ptr::read_volatile(base.add(at + i)) };
            i += 1;
        }
        true
    }

    /// Hints that the byte at `at` is about to be written: its cache line
    /// is fetched for writing ahead of time (x86's `prefetchw`, where the
    /// CPU has it), so that a store there later does not wait for another
    /// CPU to give the line up. Nothing happens outside the mapping, or
    /// where there is no such hint.
    #[inline]
    pub fn prefetch_for_write(&self, at: usize) {
        if at < self.len {
            prefetch_for_write(self.ptr.as_ptr().wrapping_add(at));
        }
    }

    /// The mapping as 64-bit atomic words (`len / 8` of them): shared
    /// counters that other processes update.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page-aligned (8-aligned for len 0), valid for
        // `len` bytes, and AtomicU64 has no invalid bit patterns; atomics are
        // the right type for memory that other processes write concurrently.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast(), self.len / 8) }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        if self.kept_by != 0 && self.kept_by != super::getpid() {
            return; // never mapped in this process (see keep_from_forks)
        }
        if self.len > 0 {
            // SAFETY: `ptr` and `len` describe a mapping this value made and
            // nothing borrows it any more.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}

/// Hints that the memory at `ptr` is about to be written by this CPU:
/// `prefetchw` of its cache line where the CPU has it (checked once, with
/// `cpuid`), nothing elsewhere. Any address will do: a prefetch never
/// faults and changes nothing a program sees.
#[inline]
pub fn prefetch_for_write(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::sync::atomic::{AtomicU8, Ordering};
        /// 0: not checked yet, 1: the CPU has `prefetchw`, 2: it has not.
        static HAS_PREFETCHW: AtomicU8 = AtomicU8::new(0);
        let has = match HAS_PREFETCHW.load(Ordering::Relaxed) {
            0 => {
                // Leaf 0x8000_0001's ECX bit 8 is PRFCHW (3DNowPrefetch).
                let extended = core::arch::x86_64::__cpuid(0x8000_0000).eax;
                let ecx = match extended >= 0x8000_0001 {
                    true => core::arch::x86_64::__cpuid(0x8000_0001).ecx,
                    false => 0,
                };
                let has = ecx & (1 << 8) != 0;
                HAS_PREFETCHW.store(if has { 1 } else { 2 }, Ordering::Relaxed);
                has
            }
            known => known == 1,
        };
        if has {
            // SAFETY: the CPU has PRFCHW (checked above); a prefetch only
            // hints the cache and never faults, whatever the address.
            unsafe { prefetchw(ptr) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// `prefetchw` itself, for a CPU that has it.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn prefetchw(ptr: *const u8) {
    // SAFETY: the caller checked the CPU has it; a prefetch reads and
    // writes nothing a program sees, and never faults.
    unsafe {
        core::arch::asm!(
            "prefetchw [{0}]",
            in(reg) ptr,
            options(nostack, preserves_flags, readonly)
        );
    }
}

/// Memory that processes forked meanwhile do not get: the whole pages
/// inside a region marked `MADV_DONTFORK`
/// ([madvise(2)](https://man7.org/linux/man-pages/man2/madvise.2.html)),
/// marked `MADV_DOFORK` again on drop. While it lives, this process writes
/// those pages without copy-on-write faults; a process forked meanwhile
/// must not touch them (they are not mapped there).
#[derive(Debug)]
pub struct NotInherited {
    start: usize,
    len: usize,
}

impl NotInherited {
    /// Marks the whole pages inside `region` (none if it spans no whole
    /// page). Failure marks nothing: the pages are then inherited as usual.
    pub fn new(region: &mut [u8]) -> NotInherited {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let first = region.as_ptr() as usize;
        let start = first.next_multiple_of(page);
        let end = (first + region.len()) / page * page;
        let mut marked = NotInherited { start, len: 0 };
        if end > start && advise(start, end - start, libc::MADV_DONTFORK) {
            marked.len = end - start;
        }
        marked
    }
}

impl Drop for NotInherited {
    fn drop(&mut self) {
        if self.len > 0 {
            advise(self.start, self.len, libc::MADV_DOFORK);
        }
    }
}

/// madvise(2) on whole pages; true on success.
fn advise(start: usize, len: usize, advice: i32) -> bool {
    // SAFETY: DONTFORK and DOFORK only change which pages a fork copies; the
    // range is whole pages of a live allocation of the caller's.
    unsafe { libc::madvise(start as *mut libc::c_void, len, advice) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn racy_reads_copy_every_offset_and_length_and_refuse_outside_the_map() {
        let mut map = SharedMap::new(256).unwrap();
        for (i, byte) in map.bytes_mut().iter_mut().enumerate() {
            *byte = i as u8;
        }
        for at in 0..20 {
            for len in 0..40 {
                let mut dst = [0xEEu8; 48];
                assert!(map.read_racy(at, &mut dst[..len]));
                let want: Vec<u8> = (at..at + len).map(|i| i as u8).collect();
                assert_eq!(&dst[..len], &want[..], "at {at} len {len}");
                assert!(dst[len..].iter().all(|&b| b == 0xEE));
            }
        }
        // A prefetch, anywhere, changes nothing.
        for at in [0, 100, 255, 256, usize::MAX] {
            map.prefetch_for_write(at);
        }
        assert!(map.bytes().iter().enumerate().all(|(i, &b)| b == i as u8));
        let mut dst = [0u8; 8];
        assert!(!map.read_racy(250, &mut dst), "past the end");
        assert!(!map.read_racy(usize::MAX, &mut dst), "overflowing");
    }
}
