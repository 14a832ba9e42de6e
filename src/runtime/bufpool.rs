//! Buffers only while data flows: a small per-thread pool of 16 KiB I/O buffers.
//!
//! As HAProxy and Sōzu do, a connection holds no buffer while it is idle: a read first waits for
//! the socket to be readable with no buffer, takes one from this pool only to read, and a buffer
//! that has been emptied (its data forwarded) goes back to the pool. The pool keeps at most
//! [`MAX_FREE`] buffers per thread; the rest are freed.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// The size of a buffer (HAProxy's default `tune.bufsize`).
pub const BUF_SIZE: usize = 16384;
/// Free buffers kept per thread: enough for a few hundred busy connections (each holds up to
/// three while a request and its response flow), as HAProxy's buffer pool keeps what its peak
/// used; with a smaller cap, `Connection: close` traffic at 50 concurrent connections freed
/// and reallocated one 16 KiB buffer per request.
const MAX_FREE: usize = 256;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with a capacity of [`BUF_SIZE`].
pub fn take() -> Vec<u8> {
    FREE.with(|f| f.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(BUF_SIZE))
}

/// Gives a buffer back (its content is dropped). Buffers that grew past [`BUF_SIZE`] are freed.
pub fn give(mut v: Vec<u8>) {
    if v.capacity() != BUF_SIZE {
        return;
    }
    v.clear();
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < MAX_FREE {
            f.push(v);
        }
    });
}

/// Gives `buf` back to the pool if it is empty (it then has no capacity).
pub fn release(buf: &mut Vec<u8>) {
    if buf.is_empty() && buf.capacity() != 0 {
        give(std::mem::take(buf));
    }
}

/// Gives `buf` back to the pool whatever it holds (its content is dropped): for a buffer
/// whose owner ends.
pub fn release_any(buf: &mut Vec<u8>) {
    if buf.capacity() != 0 {
        give(std::mem::take(buf));
    }
}

/// A pooled buffer that goes back to the pool when dropped.
pub struct Pooled(Vec<u8>);

impl Pooled {
    pub fn new() -> Pooled {
        Pooled(take())
    }
}

impl Default for Pooled {
    fn default() -> Self {
        Pooled::new()
    }
}

impl std::ops::Deref for Pooled {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

/// Polls one read from `r` into a pooled buffer taken only for the attempt: while `r` has
/// nothing to read, no buffer is held. An empty buffer means end of stream.
pub fn poll_read_pooled<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Vec<u8>>> {
    let mut b = take();
    let mut rb = ReadBuf::uninit(b.spare_capacity_mut());
    match Pin::new(r).poll_read(cx, &mut rb) {
        Poll::Ready(Ok(())) => {
            let n = rb.filled().len();
            if n == 0 {
                give(b);
                return Poll::Ready(Ok(Vec::new()));
            }
            // SAFETY: `poll_read` initialised and filled the first `n` bytes of the spare
            // capacity.
            unsafe { b.set_len(n) };
            Poll::Ready(Ok(b))
        }
        Poll::Ready(Err(e)) => {
            give(b);
            Poll::Ready(Err(e))
        }
        Poll::Pending => {
            give(b);
            Poll::Pending
        }
    }
}

/// Reads once from `r` into a pooled buffer (see [`poll_read_pooled`]).
pub async fn read_pooled<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> io::Result<Vec<u8>> {
    poll_fn(|cx| poll_read_pooled(r, cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn pool_reuses_and_bounds() {
        let a = take();
        assert_eq!(a.capacity(), BUF_SIZE);
        let p = a.as_ptr();
        give(a);
        let b = take();
        assert_eq!(b.as_ptr(), p);
        give(b);
        let mut grown = take();
        grown.reserve(BUF_SIZE * 2);
        give(grown); // freed, not pooled
        let mut empty = take();
        release(&mut empty);
        assert_eq!(empty.capacity(), 0);
    }

    #[tokio::test]
    async fn pooled_reads_and_eof() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"hello").await.unwrap();
        let got = read_pooled(&mut b).await.unwrap();
        assert_eq!(got, b"hello");
        give(got);
        drop(a);
        let got = read_pooled(&mut b).await.unwrap();
        assert!(got.is_empty() && got.capacity() == 0);
    }
}
