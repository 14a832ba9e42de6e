//! A TCP stream registered with the event loop only once it has to wait.
//!
//! HAProxy reads an accepted connection at once (the request is usually already there) and
//! writes without polling first; it subscribes a socket to epoll only when a read or a write
//! would block. A `Connection: close` request answered at once is then never registered, which
//! saves an `EPOLL_CTL_ADD`, the `EPOLL_CTL_DEL` before `close` and a trip through the poller
//! before the first read. tokio registers a stream when it is made, so [`LazyTcp`] keeps the
//! plain non-blocking socket and registers it on the first `WouldBlock`. Once registered, it
//! waits for readiness before reading, as tokio does (no `EAGAIN` read per wait).
//!
//! Reads and writes take `&self` (the registration is made once, under a `OnceLock`), so the
//! two directions can be driven at the same time through `&LazyTcp`.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// The descriptor of the socket a [`LazyTcp`] owns, as registered (not owned: the socket
/// closes it after the registration is dropped).
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A connection, registered with tokio on its first `WouldBlock`.
pub struct LazyTcp {
    // Declared first: dropped (deregistered) before the socket is closed.
    // `None` once a registration failed (every wait then fails): an `io::Error` kept here
    // would make every session future larger.
    reg: OnceLock<Option<AsyncFd<Fd>>>,
    sock: std::net::TcpStream,
    /// The peer's FIN was read, or ours was sent: no `shutdown` is due any more.
    no_fin_due: AtomicBool,
}

impl LazyTcp {
    /// `s` must be in non-blocking mode (accepted with `SOCK_NONBLOCK`).
    pub fn new(s: std::net::TcpStream) -> LazyTcp {
        LazyTcp {
            reg: OnceLock::new(),
            sock: s,
            no_fin_due: AtomicBool::new(false),
        }
    }

    /// Whether the socket is registered with the event loop yet.
    pub fn is_registered(&self) -> bool {
        matches!(self.reg.get(), Some(Some(_)))
    }

    fn registration(&self) -> io::Result<&AsyncFd<Fd>> {
        let r = self.reg.get_or_init(|| {
            // SAFETY: the descriptor is the socket's, which stays open and the same for the
            // registration's whole life (the registration is dropped first).
            unsafe {
                AsyncFd::register_with_interest(
                    Fd(self.sock.as_raw_fd()),
                    Interest::READABLE | Interest::WRITABLE,
                )
            }
            .ok()
        });
        r.as_ref()
            .ok_or_else(|| io::Error::other("cannot register the connection with the event loop"))
    }

    /// Shuts the write direction (a FIN), at once; not once the peer's FIN was read, as
    /// HAProxy: the close that follows sends the FIN then, or the RST of `option nolinger`
    /// (a FIN before it would tell the peer the close was clean).
    fn shutdown_write(&self) -> io::Result<()> {
        if self.no_fin_due.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        self.sock.shutdown(std::net::Shutdown::Write)
    }

    fn read_done(&self, n: usize, asked: usize) {
        if n == 0 && asked > 0 {
            self.no_fin_due.store(true, Ordering::Relaxed);
        }
    }

    fn poll_read_ref(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        // SAFETY: the bytes are only written by read(2), and `assume_init` covers only what it
        // wrote.
        let dst =
            unsafe { &mut *(buf.unfilled_mut() as *mut [std::mem::MaybeUninit<u8>] as *mut [u8]) };
        if self.reg.get().is_none() {
            match (&self.sock).read(dst) {
                Ok(n) => {
                    self.read_done(n, dst.len());
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let reg = self.registration()?;
        loop {
            let mut guard = ready!(reg.poll_read_ready(cx))?;
            match guard.try_io(|_| (&self.sock).read(dst)) {
                Ok(Ok(n)) => {
                    self.read_done(n, dst.len());
                    // A short read emptied the socket's queue: wait for the next edge rather
                    // than find out with an `EAGAIN` read (tokio's own streams do the same;
                    // an event that came after the read keeps the readiness).
                    if n > 0 && n < dst.len() {
                        guard.clear_ready();
                    }
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_write_ref(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.reg.get().is_none() {
            match (&self.sock).write(data) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let reg = self.registration()?;
        loop {
            let mut guard = ready!(reg.poll_write_ready(cx))?;
            match guard.try_io(|_| (&self.sock).write(data)) {
                Ok(Ok(n)) => {
                    // A short write filled the send buffer (as for reads above).
                    if n > 0 && n < data.len() {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(n));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl Drop for LazyTcp {
    /// Every end of a client connection shuts it before the close, as HAProxy does (a
    /// keep-alive timeout, a stop, an error answered): with `option nolinger` the client then
    /// gets a FIN and the RST, where a bare close would send the RST alone.
    fn drop(&mut self) {
        let _ = self.shutdown_write();
    }
}

impl AsFd for LazyTcp {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsRawFd for LazyTcp {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsyncRead for &LazyTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_read_ref(cx, buf)
    }
}

impl AsyncWrite for &LazyTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_ref(cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown_write())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        (s, c)
    }

    #[tokio::test]
    async fn data_already_there_is_read_without_registering() {
        let (s, mut c) = pair();
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let l = LazyTcp::new(s);
        let mut l = &l;
        let mut b = [0u8; 64];
        let n = l.read(&mut b).await.unwrap();
        assert_eq!(&b[..n], b"GET / HTTP/1.0\r\n\r\n");
        l.write_all(b"answer").await.unwrap();
        assert!(!l.is_registered(), "nothing had to wait");
        l.shutdown().await.unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"answer");
    }

    #[tokio::test]
    async fn a_read_that_would_block_registers_and_waits() {
        let (s, mut c) = pair();
        let l = LazyTcp::new(s);
        let mut l = &l;
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            c.write_all(b"late").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            c.write_all(b"later").unwrap();
            c
        });
        let mut b = [0u8; 16];
        let n = l.read(&mut b).await.unwrap();
        assert_eq!(&b[..n], b"late");
        assert!(l.is_registered());
        let n = l.read(&mut b).await.unwrap();
        assert_eq!(&b[..n], b"later");
        let _c = t.join().unwrap();
    }

    #[tokio::test]
    async fn a_write_that_would_block_registers_and_completes() {
        let (s, c) = pair();
        socket2::SockRef::from(&s)
            .set_send_buffer_size(4096)
            .unwrap();
        let l = LazyTcp::new(s);
        let mut l = &l;
        // More than the socket buffers hold, and a reader that starts late: the write must
        // wait for it.
        let big = vec![7u8; 1 << 20];
        let reader = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let mut c = c;
            let mut n = 0usize;
            let mut b = vec![0u8; 1 << 16];
            loop {
                match c.read(&mut b).unwrap() {
                    0 => break,
                    k => n += k,
                }
            }
            n
        });
        l.write_all(&big).await.unwrap();
        assert!(l.is_registered());
        // The FIN ends the reader's loop.
        l.shutdown().await.unwrap();
        assert_eq!(reader.join().unwrap(), 1 << 20);
    }

    #[tokio::test]
    async fn both_directions_at_once_through_shared_references() {
        let (s, mut c) = pair();
        let l = LazyTcp::new(s);
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            c.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            c.read_exact(&mut b).unwrap();
            b
        });
        let (mut r, mut w) = (&l, &l);
        let mut b = [0u8; 4];
        let (n, wrote) = tokio::join!(r.read(&mut b), w.write_all(b"pong"));
        assert_eq!(&b[..n.unwrap()], b"ping");
        wrote.unwrap();
        assert_eq!(&t.join().unwrap(), b"pong");
    }
}
