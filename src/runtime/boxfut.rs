//! A boxed future built in its allocation: the transaction future (about 4 KiB) and its
//! connect future (about 1.2 KiB) are boxed so that an idle session holds neither, and a
//! `Box::pin(async { .. })` builds the future on the stack then copies its whole size into
//! the box, most of it not yet initialised. [`BoxFuture::new_with`] writes it through a
//! `noalias` reference instead, which lowered the simulated D1 misses of a `Connection: close`
//! request from 328 to 280 (docs/performance.md). It does not remove the copy: callgrind with
//! line tables still finds two `memcpy` calls from `init` per such request, about 17 of its
//! 135 D1 write misses.
//!
//! Tried and dropped (docs/performance.md), twice: per-thread free lists of these blocks. They
//! saved glibc's slow path for blocks above 1 KiB (570 to 1,000 instructions per request) but
//! raised the RSS per idle connection of the 5,000-connection benchmark above HAProxy's, even
//! bounded to 8 blocks per size (1.20 KiB against 1.08 without lists and HAProxy's 1.12).

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// Writes `make()` into `dst`. A separate function so that `dst` is a `noalias`,
/// dereferenceable reference, which lets the compiler write less of the value through the
/// stack (see the module documentation: it still copies).
#[inline(never)]
fn init<F, M: FnOnce() -> F>(dst: &mut std::mem::MaybeUninit<F>, make: M) {
    dst.write(make());
}

/// A boxed future (see the module documentation).
pub struct BoxFuture<'a, O> {
    fut: NonNull<dyn Future<Output = O> + Send + 'a>,
    layout: Layout,
    _owns: PhantomData<Box<dyn Future<Output = O> + Send + 'a>>,
}

// SAFETY: the future it owns is `Send`, and it is its only owner.
unsafe impl<O> Send for BoxFuture<'_, O> {}

impl<'a, O> BoxFuture<'a, O> {
    /// The future `make` returns, built in its allocation.
    #[inline]
    pub fn new_with<F: Future<Output = O> + Send + 'a, M: FnOnce() -> F>(make: M) -> Self {
        let layout = Layout::new::<F>();
        let p: NonNull<F> = if layout.size() == 0 {
            NonNull::dangling()
        } else {
            // SAFETY: the layout has a non-zero size.
            NonNull::new(unsafe { alloc(layout) })
                .unwrap_or_else(|| handle_alloc_error(layout))
                .cast()
        };
        // SAFETY: `p` is an allocation of `F`'s layout, not in use.
        init(
            unsafe { &mut *p.as_ptr().cast::<std::mem::MaybeUninit<F>>() },
            make,
        );
        let fut: NonNull<dyn Future<Output = O> + Send + 'a> = p;
        BoxFuture {
            fut,
            layout,
            _owns: PhantomData,
        }
    }
}

impl<O> Future for BoxFuture<'_, O> {
    type Output = O;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        // SAFETY: the future lives in its allocation until this drops it, and never moves.
        unsafe { Pin::new_unchecked(&mut *self.get_mut().fut.as_ptr()) }.poll(cx)
    }
}

impl<O> Drop for BoxFuture<'_, O> {
    fn drop(&mut self) {
        // SAFETY: the future was written by `new_with` and is dropped once, here; then its
        // allocation is freed with the layout it was made with.
        unsafe {
            std::ptr::drop_in_place(self.fut.as_ptr());
            if self.layout.size() != 0 {
                dealloc(self.fut.cast::<u8>().as_ptr(), self.layout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Holds a drop counter and `N` bytes.
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
    async fn runs_and_drops_its_future() {
        let drops = Arc::new(AtomicUsize::new(0));
        let a = BoxFuture::new_with(|| probe_future::<3000>(&drops, 7));
        assert_eq!(a.await, 7);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "completed future dropped");
        // Dropped before completion: its captures are dropped too.
        let b = BoxFuture::new_with(|| probe_future::<20000>(&drops, 9));
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        // Zero-sized.
        assert_eq!(BoxFuture::new_with(|| async { 5u8 }).await, 5);
    }

    #[test]
    fn borrowed_captures() {
        let mut n = 1u32;
        let f = BoxFuture::new_with(|| async {
            n += 1;
            n
        });
        let got = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f);
        assert_eq!(got, 2);
        assert_eq!(n, 2);
    }
}
