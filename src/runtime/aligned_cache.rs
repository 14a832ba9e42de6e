//! The global allocator: the system allocator, with a per-thread cache of small over-aligned
//! blocks on the runtime's threads.
//!
//! tokio allocates two such blocks for every connection: its task cell and its socket's
//! readiness slot, both aligned to 128 bytes (a cache line pair). glibc has no per-thread cache
//! for aligned requests: each goes through `posix_memalign`'s slow path, which carves an
//! aligned chunk out of a larger one and frees the remainders (about 700 instructions and a
//! few cache misses each, per callgrind). HAProxy takes its sessions and connections from
//! per-thread pools; this does the same for these blocks: a freed block goes to a small LIFO
//! list of its size class on the freeing thread, and the next allocation of that class on the
//! thread takes it back. Everything else goes straight to the system allocator (mimalloc as
//! the global allocator was measured: less CPU, but more memory per idle connection than
//! HAProxy; see docs/performance.md).
//!
//! Blocks of these classes are always allocated with their size rounded up to the class size,
//! whether the cache is on or not, so any cached block fits any request of its class. The
//! cache is on only on threads that [`enable`] it (the runtime's, from `on_thread_start`), and
//! [`disable`] (`on_thread_stop`) frees what the thread holds: nothing leaks when a thread ends.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;

/// The alignments cached: 64 and 128 bytes.
const MIN_ALIGN_LOG2: usize = 6;
const ALIGNS: usize = 2;
/// Sizes are rounded up to a multiple of [`UNIT`], up to [`UNITS`] units.
const UNIT: usize = 64;
const UNITS: usize = 16;
/// Free blocks kept per class and thread.
const DEPTH: usize = 32;

struct Cache {
    on: bool,
    len: [[u8; UNITS]; ALIGNS],
    blocks: [[[*mut u8; DEPTH]; UNITS]; ALIGNS],
}

thread_local! {
    // Const-initialised and without `Drop`: accessing it never allocates nor fails.
    static CACHE: UnsafeCell<Cache> = const {
        UnsafeCell::new(Cache {
            on: false,
            len: [[0; UNITS]; ALIGNS],
            blocks: [[[std::ptr::null_mut(); DEPTH]; UNITS]; ALIGNS],
        })
    };
}

/// The class of a layout: (alignment index, size units), with the layout the system
/// allocator gets for it; `None` for layouts not cached.
#[inline]
fn class(l: Layout) -> Option<(usize, usize, Layout)> {
    let a = l.align().trailing_zeros() as usize;
    if !(MIN_ALIGN_LOG2..MIN_ALIGN_LOG2 + ALIGNS).contains(&a) || l.size() > UNIT * UNITS {
        return None;
    }
    let units = l.size().div_ceil(UNIT).max(1);
    let sys = Layout::from_size_align(units * UNIT, l.align()).ok()?;
    Some((a - MIN_ALIGN_LOG2, units - 1, sys))
}

/// The global allocator (see the module documentation).
pub struct Allocator;

unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let Some((a, u, sys)) = class(l) else {
            // SAFETY: forwarded as is.
            return unsafe { System.alloc(l) };
        };
        let got = CACHE
            .try_with(|c| {
                // SAFETY: only this thread touches its cache, and nothing in here allocates
                // or re-enters the allocator.
                let c = unsafe { &mut *c.get() };
                let n = c.len[a][u] as usize;
                if c.on && n > 0 {
                    c.len[a][u] -= 1;
                    c.blocks[a][u][n - 1]
                } else {
                    std::ptr::null_mut()
                }
            })
            .unwrap_or(std::ptr::null_mut());
        if !got.is_null() {
            return got;
        }
        // SAFETY: `sys` has a non-zero size.
        unsafe { System.alloc(sys) }
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let Some((a, u, sys)) = class(l) else {
            // SAFETY: allocated by `System` with this layout (see `alloc`).
            return unsafe { System.dealloc(p, l) };
        };
        let kept = CACHE
            .try_with(|c| {
                // SAFETY: as in `alloc`.
                let c = unsafe { &mut *c.get() };
                let n = c.len[a][u] as usize;
                if c.on && n < DEPTH {
                    c.blocks[a][u][n] = p;
                    c.len[a][u] += 1;
                    true
                } else {
                    false
                }
            })
            .unwrap_or(false);
        if !kept {
            // SAFETY: blocks of this class are always allocated with `sys`.
            unsafe { System.dealloc(p, sys) };
        }
    }
}

/// Turns the cache on for the calling thread.
pub fn enable() {
    let _ = CACHE.try_with(|c| {
        // SAFETY: as in `alloc`.
        unsafe { (*c.get()).on = true };
    });
}

/// Turns the cache off for the calling thread and frees the blocks it holds.
pub fn disable() {
    let _ = CACHE.try_with(|c| {
        // SAFETY: as in `alloc`; the blocks are taken out before being freed.
        let c = unsafe { &mut *c.get() };
        c.on = false;
        for a in 0..ALIGNS {
            for u in 0..UNITS {
                let n = std::mem::take(&mut c.len[a][u]) as usize;
                let sys = Layout::from_size_align((u + 1) * UNIT, 1 << (a + MIN_ALIGN_LOG2));
                for &p in &c.blocks[a][u][..n] {
                    if let Ok(sys) = sys {
                        // SAFETY: a cached block of this class, allocated with `sys`.
                        unsafe { System.dealloc(p, sys) };
                    }
                }
            }
        }
    });
}

/// Free blocks the calling thread holds.
#[cfg(test)]
fn cached() -> usize {
    CACHE
        .try_with(|c| {
            // SAFETY: as in `alloc`.
            let c = unsafe { &*c.get() };
            c.len.iter().flatten().map(|&n| n as usize).sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(align(128))]
    struct Line([u8; 300]);

    #[test]
    fn classes() {
        let l = |s, a| Layout::from_size_align(s, a).unwrap();
        assert!(
            class(l(64, 16)).is_none(),
            "ordinary alignment: glibc's own cache"
        );
        assert!(class(l(64, 256)).is_none());
        assert!(class(l(1025, 128)).is_none());
        let (a, u, sys) = class(l(300, 128)).unwrap();
        assert_eq!((a, u, sys.size(), sys.align()), (1, 4, 320, 128));
        let (a, u, sys) = class(l(0, 64)).unwrap();
        assert_eq!((a, u, sys.size()), (0, 0, 64));
    }

    #[test]
    fn blocks_come_back_on_an_enabled_thread_only() {
        std::thread::spawn(|| {
            // Off: nothing kept.
            drop(Box::new(Line([1; 300])));
            assert_eq!(cached(), 0);
            enable();
            let a = Box::new(Line([2; 300]));
            let pa = &*a as *const Line as usize;
            assert_eq!(pa % 128, 0);
            drop(a);
            assert_eq!(cached(), 1);
            let b = Box::new(Line([3; 300]));
            assert_eq!(&*b as *const Line as usize, pa, "the freed block is reused");
            assert_eq!(b.0[299], 3);
            assert_eq!(cached(), 0);
            // Bounded: a burst frees at most DEPTH into the cache.
            let many: Vec<Box<Line>> = (0..DEPTH + 5).map(|_| Box::new(Line([4; 300]))).collect();
            drop(many);
            assert_eq!(cached(), DEPTH);
            drop(b);
            disable();
            assert_eq!(cached(), 0, "disable frees the cached blocks");
        })
        .join()
        .unwrap();
    }
}
