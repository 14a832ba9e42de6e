//! A TCP stream registered with the event loop only once it has to wait.
//!
//! HAProxy reads an accepted connection at once (the request is usually already there) and
//! writes without polling first; it subscribes a socket to epoll only when a read or a write
//! would block. A `Connection: close` request answered at once is then never registered, which
//! saves an `EPOLL_CTL_ADD`, the `EPOLL_CTL_DEL` before `close` and a trip through the poller
//! before the first read. tokio registers a stream when it is made, so [`LazyTcp`] keeps the
//! plain non-blocking socket and makes the tokio stream on the first `WouldBlock`.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

enum State {
    /// Not registered yet: I/O goes straight to the socket.
    Raw(std::net::TcpStream),
    Reg(TcpStream),
    /// Only while switching from `Raw` to `Reg` (or after a failed registration).
    Gone,
}

/// A client connection, registered with tokio on its first `WouldBlock`.
pub struct LazyTcp {
    state: State,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection lost its socket")
}

impl LazyTcp {
    /// `s` must be in non-blocking mode (accepted with `SOCK_NONBLOCK`).
    pub fn new(s: std::net::TcpStream) -> LazyTcp {
        LazyTcp {
            state: State::Raw(s),
        }
    }

    /// Whether the socket is registered with the event loop yet.
    pub fn is_registered(&self) -> bool {
        matches!(self.state, State::Reg(_))
    }

    /// The tokio stream, registering the socket if it is not yet.
    pub fn registered(&mut self) -> io::Result<&mut TcpStream> {
        if let State::Raw(_) = self.state {
            let State::Raw(s) = std::mem::replace(&mut self.state, State::Gone) else {
                unreachable!()
            };
            self.state = State::Reg(TcpStream::from_std(s)?);
        }
        match &mut self.state {
            State::Reg(t) => Ok(t),
            _ => Err(gone()),
        }
    }

    /// A read that never waits (`WouldBlock` when nothing is there).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.state {
            State::Raw(s) => (&*s).read(buf),
            State::Reg(t) => t.try_read(buf),
            State::Gone => Err(gone()),
        }
    }

    /// Shuts the write direction (a FIN), at once.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match &self.state {
            State::Raw(s) => s.shutdown(std::net::Shutdown::Write),
            State::Reg(t) => socket2::SockRef::from(t).shutdown(std::net::Shutdown::Write),
            State::Gone => Err(gone()),
        }
    }
}

impl LazyTcp {
    /// The socket, for socket options (`None` only after a failed registration, when the
    /// session is ending on that error).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.state {
            State::Raw(s) => Some(s.as_fd()),
            State::Reg(t) => Some(t.as_fd()),
            State::Gone => None,
        }
    }

    /// The socket's descriptor number (-1 once lost), for logs and registries.
    pub fn raw_fd(&self) -> RawFd {
        self.fd().map(|f| f.as_raw_fd()).unwrap_or(-1)
    }
}

impl AsyncRead for LazyTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let State::Raw(s) = &this.state {
            // SAFETY: the bytes are only written by read(2), and `assume_init` covers only
            // what it wrote.
            let dst = unsafe {
                &mut *(buf.unfilled_mut() as *mut [std::mem::MaybeUninit<u8>] as *mut [u8])
            };
            match (&*s).read(dst) {
                Ok(n) => {
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        match this.registered() {
            Ok(t) => Pin::new(t).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for LazyTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let State::Raw(s) = &this.state {
            match (&*s).write(data) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        match this.registered() {
            Ok(t) => Pin::new(t).poll_write(cx, data),
            Err(e) => Poll::Ready(Err(e)),
        }
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
        let mut l = LazyTcp::new(s);
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
        let mut l = LazyTcp::new(s);
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            c.write_all(b"late").unwrap();
            c
        });
        let mut b = [0u8; 16];
        let n = l.read(&mut b).await.unwrap();
        assert_eq!(&b[..n], b"late");
        assert!(l.is_registered());
        let _c = t.join().unwrap();
    }

    #[tokio::test]
    async fn a_write_that_would_block_registers_and_completes() {
        let (s, c) = pair();
        socket2::SockRef::from(&s).set_send_buffer_size(4096).unwrap();
        let mut l = LazyTcp::new(s);
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
        l.shutdown().await.unwrap();
        drop(l);
        assert_eq!(reader.join().unwrap(), 1 << 20);
    }

    #[tokio::test]
    async fn try_read_before_and_after_registration() {
        let (s, mut c) = pair();
        let mut l = LazyTcp::new(s);
        let mut b = [0u8; 8];
        assert_eq!(
            l.try_read(&mut b).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        c.write_all(b"x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(l.try_read(&mut b).unwrap(), 1);
        l.registered().unwrap();
        c.write_all(b"yz").unwrap();
        let n = l.read(&mut b).await.unwrap();
        assert_eq!(&b[..n], b"yz");
    }
}
