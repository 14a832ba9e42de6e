//! Per-thread recycling of the large blocks a transaction allocates: its future (about 4 KiB)
//! and its connect future (about 1.2 KiB), as HAProxy takes its streams and buffers from
//! per-thread pool caches.
//!
//! Both are boxed so that an idle session holds neither. glibc's allocator serves blocks
//! above 1 KiB from its shared bins (no per-thread cache): with `Connection: close` traffic
//! their malloc/free, with the bin sorting and consolidation they cause, were about 2 % of
//! the proxy's CPU. Freed blocks go to a free list of the thread that frees them, by size
//! class, up to [`MAX_FREE`] per class; any thread may take from its list a block another
//! thread allocated (they all come from the global allocator).

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// Size classes are multiples of this.
const GRAIN: usize = 512;
/// The alignment of every block: what `malloc` gives anyway (a larger one would go through
/// `posix_memalign`, which leaves fragments in the heap).
const ALIGN: usize = 16;
/// Classes cover blocks up to `CLASSES * GRAIN` bytes; larger ones are not pooled.
const CLASSES: usize = 16;
/// Free blocks kept per class and thread: the peak of transactions a thread runs at once is
/// what it keeps, up to this.
const MAX_FREE: usize = 16;

struct Lists([Vec<NonNull<u8>>; CLASSES]);

impl Drop for Lists {
    fn drop(&mut self) {
        for (i, list) in self.0.iter_mut().enumerate() {
            for p in list.drain(..) {
                // SAFETY: every pooled block of class `i` was allocated with `class_layout(i)`.
                unsafe { dealloc(p.as_ptr(), class_layout(i)) };
            }
        }
    }
}

thread_local! {
    static FREE: RefCell<Lists> = const { RefCell::new(Lists([const { Vec::new() }; CLASSES])) };
}

fn class_layout(class: usize) -> Layout {
    // Cannot fail: the size is a multiple of the alignment, far below isize::MAX.
    Layout::from_size_align((class + 1) * GRAIN, ALIGN).unwrap_or_else(|_| Layout::new::<u8>())
}

/// The class of a layout, `None` when it is not pooled.
fn class_of(l: Layout) -> Option<usize> {
    if l.size() == 0 || l.align() > ALIGN {
        return None;
    }
    let c = l.size().div_ceil(GRAIN) - 1;
    (c < CLASSES).then_some(c)
}

fn take(l: Layout) -> NonNull<u8> {
    let layout = match class_of(l) {
        Some(c) => {
            let got = FREE
                .try_with(|f| f.try_borrow_mut().ok().and_then(|mut f| f.0[c].pop()))
                .ok()
                .flatten();
            if let Some(p) = got {
                return p;
            }
            class_layout(c)
        }
        None => l,
    };
    if layout.size() == 0 {
        return NonNull::dangling();
    }
    // SAFETY: the layout has a non-zero size.
    NonNull::new(unsafe { alloc(layout) }).unwrap_or_else(|| handle_alloc_error(layout))
}

fn give(p: NonNull<u8>, l: Layout) {
    let Some(c) = class_of(l) else {
        if l.size() != 0 {
            // SAFETY: allocated by `take` with this very layout (not pooled).
            unsafe { dealloc(p.as_ptr(), l) };
        }
        return;
    };
    let kept = FREE
        .try_with(|f| match f.try_borrow_mut() {
            Ok(mut f) if f.0[c].len() < MAX_FREE => {
                f.0[c].push(p);
                true
            }
            _ => false,
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: a block of class `c` (from the pool or allocated by `take`).
        unsafe { dealloc(p.as_ptr(), class_layout(c)) };
    }
}

/// A boxed future whose block comes from, and goes back to, the thread's pool.
pub struct PoolFuture<'a, O> {
    fut: NonNull<dyn Future<Output = O> + Send + 'a>,
    layout: Layout,
    _owns: PhantomData<Box<dyn Future<Output = O> + Send + 'a>>,
}

// SAFETY: the future it owns is `Send`, and it is its only owner.
unsafe impl<O> Send for PoolFuture<'_, O> {}

/// Writes `make()` into `dst`. A separate function so that `dst` is a `noalias`,
/// dereferenceable reference: the compiler can then build the value in place, where a move
/// from the stack would copy the future's whole size (4 KiB for a transaction, most of it
/// not yet initialised), writing 64 cold cache lines.
#[inline(never)]
fn init<F, M: FnOnce() -> F>(dst: &mut std::mem::MaybeUninit<F>, make: M) {
    dst.write(make());
}

impl<'a, O> PoolFuture<'a, O> {
    #[inline]
    pub fn new<F: Future<Output = O> + Send + 'a>(f: F) -> Self {
        Self::new_with(move || f)
    }

    /// The future `make` returns, built in its block (see [`init`]).
    #[inline]
    pub fn new_with<F: Future<Output = O> + Send + 'a, M: FnOnce() -> F>(make: M) -> Self {
        let layout = Layout::new::<F>();
        let p = take(layout).cast::<F>();
        // SAFETY: `p` is a block of at least `layout`'s size and alignment, not in use.
        init(
            unsafe { &mut *p.as_ptr().cast::<std::mem::MaybeUninit<F>>() },
            make,
        );
        let fut: NonNull<dyn Future<Output = O> + Send + 'a> = p;
        PoolFuture {
            fut,
            layout,
            _owns: PhantomData,
        }
    }
}

impl<O> Future for PoolFuture<'_, O> {
    type Output = O;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        // SAFETY: the future lives in its block until this drops it, and is never moved.
        unsafe { Pin::new_unchecked(&mut *self.get_mut().fut.as_ptr()) }.poll(cx)
    }
}

impl<O> Drop for PoolFuture<'_, O> {
    fn drop(&mut self) {
        // SAFETY: the future was written by `new` and is dropped once, here; then its block
        // is given back with the layout it was taken with.
        unsafe { std::ptr::drop_in_place(self.fut.as_ptr()) };
        give(self.fut.cast::<u8>(), self.layout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn classes() {
        assert_eq!(class_of(Layout::from_size_align(1, 1).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(512, 8).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(513, 8).unwrap()), Some(1));
        assert_eq!(
            class_of(Layout::from_size_align(4016, 16).unwrap()),
            Some(7)
        );
        assert_eq!(
            class_of(Layout::from_size_align(8192, 8).unwrap()),
            Some(15)
        );
        assert_eq!(class_of(Layout::from_size_align(8193, 8).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(64, 32).unwrap()), None);
        assert_eq!(class_of(Layout::new::<()>()), None);
    }

    /// Holds a drop counter and `N` bytes, to fill a class.
    struct Probe<const N: usize>(Arc<AtomicUsize>, [u8; N]);
    impl<const N: usize> Drop for Probe<N> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn probe_future<const N: usize>(d: &Arc<AtomicUsize>, v: u8) -> impl Future<Output = u8> {
        let p = Probe::<N>(Arc::clone(d), [v; N]);
        async move {
            tokio::task::yield_now().await;
            p.1[N - 1]
        }
    }

    #[tokio::test]
    async fn blocks_are_reused_and_futures_dropped() {
        let drops = Arc::new(AtomicUsize::new(0));
        let a = PoolFuture::new(probe_future::<3000>(&drops, 7));
        let addr = a.fut.cast::<u8>().as_ptr() as usize;
        assert_eq!(a.await, 7);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "completed future dropped");
        // The same class gets the same block back.
        let b = PoolFuture::new(probe_future::<2900>(&drops, 9));
        assert_eq!(b.fut.cast::<u8>().as_ptr() as usize, addr);
        // Dropped before completion: its captures are dropped too.
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        // Larger than the classes: allocated and freed directly, still correct.
        let big = PoolFuture::new(probe_future::<20000>(&drops, 3));
        assert_eq!(big.await, 3);
        assert_eq!(drops.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn free_lists_are_bounded() {
        let many: Vec<NonNull<u8>> = (0..MAX_FREE + 10)
            .map(|_| take(Layout::from_size_align(1500, 8).unwrap()))
            .collect();
        for p in many {
            give(p, Layout::from_size_align(1500, 8).unwrap());
        }
        let kept = FREE.with(|f| f.borrow().0[2].len());
        assert_eq!(kept, MAX_FREE);
    }

    #[test]
    fn borrowed_captures() {
        let mut n = 1u32;
        let f = PoolFuture::new(async {
            n += 1;
            n
        });
        let got = block_on(f);
        assert_eq!(got, 2);
        assert_eq!(n, 2);
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }
}
