//! Full-duplex forwarding between two sockets with HAProxy's inactivity timeouts and half-close.
//!
//! Each side (client, server) has an inactivity timeout. As in HAProxy, activity on a side is a
//! read from it *or* a write to it, so a long one-way transfer keeps both sides alive. When the
//! proxy has shut its write direction towards a side (the other side sent its FIN), that side's
//! timeout becomes its `-fin` variant. `timeout tunnel` replaces the client and server timeouts
//! (the `-fin` ones still apply once half-closed).
//!
//! A direction waits on the timeout of the side it waits for: a read on its source side's, a
//! write on its destination side's. A read timeout shuts that direction only (the destination
//! gets a FIN, the other direction goes on; the forwarding is reported as a timeout of that side
//! when it ends); a write timeout ends the forwarding.
//!
//! [`Forward`] is one hand-polled future for both directions, as small as it can be: an idle TCP
//! pair keeps it for its whole life. It owns both streams, holds a buffer (from
//! [`bufpool`]) only while data is on its way, and has a single timer, armed at the earliest
//! deadline that a wait depends on. Activity only pushes deadlines back, so the timer is not
//! touched on activity: when it fires early, it is re-armed at the new earliest deadline.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use super::bufpool;

/// Timeouts of one side.
#[derive(Debug, Clone, Copy, Default)]
pub struct SideTimeouts {
    pub normal: Option<Duration>,
    /// After the proxy shut its write direction towards this side.
    pub fin: Option<Duration>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    pub client: SideTimeouts,
    pub server: SideTimeouts,
}

/// What a forwarding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub end: End,
    /// Bytes sent to the server (from the client) and to the client (from the server),
    /// pending bytes included.
    pub to_server: u64,
    pub to_client: u64,
}

/// How a forwarding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both directions closed normally.
    Done,
    /// A side was inactive for too long (`true` = client side).
    Timeout { client: bool },
    /// A read or write error (reset) on a side.
    Error { client: bool },
    /// Ended from outside (`shutdown sessions server`).
    Killed,
}

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// No timeout (in the millisecond fields).
const NEVER: u32 = u32::MAX;

/// A timeout in ms. HAProxy takes no timeout longer than 2^31 - 1 ms (24.8 days); longer ones
/// are cut to 49.7 days.
fn ms(d: Option<Duration>) -> u32 {
    d.map_or(NEVER, |d| u32::try_from(d.as_millis()).unwrap_or(NEVER - 1))
}

/// Where a direction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Waiting for data from its source side (no buffer held).
    Read,
    /// Writing its data to its destination side.
    Write,
    /// Its source side ended (or timed out): shutting the write direction towards the
    /// destination side.
    Shut,
    Done,
}

/// One direction (index = source side).
struct Dir {
    /// Data read and not yet written (no capacity while none).
    buf: Vec<u8>,
    /// Bytes of `buf` already written (a buffer is a pool buffer or data read before the
    /// forwarding, an HTTP buffer: far below 4 GiB).
    pos: u32,
    step: Step,
}

impl Dir {
    /// A direction with `pending` (data read before the forwarding) to send first: copied, so
    /// that the forwarding borrows nothing.
    fn new(pending: &[u8]) -> Dir {
        if pending.is_empty() {
            return Dir {
                buf: Vec::new(),
                pos: 0,
                step: Step::Read,
            };
        }
        let mut buf = if pending.len() <= bufpool::BUF_SIZE {
            bufpool::take()
        } else {
            Vec::with_capacity(pending.len())
        };
        buf.extend_from_slice(pending);
        Dir {
            buf,
            pos: 0,
            step: Step::Write,
        }
    }
}

/// Everything but the streams, the timer and the stop future.
struct Core {
    dirs: [Dir; 2],
    /// Last activity on each side.
    last: [Instant; 2],
    /// Timeouts of each side in ms ([`NEVER`] if none): normal, then after the proxy shut its
    /// write direction towards the side.
    tmo: [[u32; 2]; 2],
    /// Whether the proxy shut its write direction towards each side.
    wshut: [bool; 2],
    /// Bytes forwarded from each side (index = source side).
    bytes: [u64; 2],
    /// Whether the timer is armed (at its deadline) and has not fired.
    armed: bool,
    /// The first side whose read timed out.
    timed_out: Option<bool>,
    /// Whether each side's FIN was read.
    eof: [bool; 2],
    /// `option nolinger` in the backend: the server socket, reset when the client closes
    /// (see [`Forward::nolinger_server`]).
    nolinger_server: Option<RawFd>,
    /// The server is read no more (its socket is to be reset).
    server_cut: bool,
}

/// A clock read at most once per poll (activity within a poll is stamped alike).
struct Clock(Option<Instant>);

impl Clock {
    fn now(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

impl Core {
    fn deadline(&self, side: usize) -> Option<Instant> {
        let [normal, fin] = self.tmo[side];
        let t = if self.wshut[side] && fin != NEVER {
            fin
        } else {
            normal
        };
        if t == NEVER {
            return None;
        }
        self.last[side].checked_add(Duration::from_millis(t.into()))
    }

    /// The deadline direction `from` waits on now, if any.
    fn waits_on(&self, from: usize) -> Option<Instant> {
        match self.dirs[from].step {
            Step::Read => self.deadline(from),
            Step::Write => self.deadline(1 - from),
            Step::Shut | Step::Done => None,
        }
    }

    /// Moves direction `from` (reading `r`, writing `w`) on as far as it goes without waiting.
    fn drive<R, W>(
        &mut self,
        from: usize,
        r: &mut R,
        w: &mut W,
        cx: &mut Context<'_>,
        clock: &mut Clock,
    ) -> Result<(), End>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let to = 1 - from;
        loop {
            let dir = &mut self.dirs[from];
            match dir.step {
                Step::Read => match bufpool::poll_read_pooled(r, cx) {
                    Poll::Pending => return Ok(()),
                    Poll::Ready(Err(_)) => {
                        return Err(End::Error {
                            client: from == CLIENT,
                        });
                    }
                    Poll::Ready(Ok(b)) if b.is_empty() => {
                        self.eof[from] = true;
                        dir.step = Step::Shut;
                        if from == CLIENT && !self.eof[SERVER] {
                            if let Some(fd) = self.nolinger_server {
                                self.cut_server(fd);
                            }
                        }
                    }
                    Poll::Ready(Ok(b)) => {
                        dir.buf = b;
                        dir.step = Step::Write;
                        self.last[from] = clock.now();
                    }
                },
                Step::Write => {
                    let len = dir.buf.len();
                    match Pin::new(&mut *w).poll_write(cx, &dir.buf[dir.pos as usize..]) {
                        Poll::Pending => return Ok(()),
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                            return Err(End::Error {
                                client: to == CLIENT,
                            });
                        }
                        Poll::Ready(Ok(n)) => {
                            dir.pos += n as u32;
                            if dir.pos as usize == len {
                                // The buffer goes back to the pool: none is held while idle.
                                bufpool::give(std::mem::take(&mut dir.buf));
                                dir.pos = 0;
                                dir.step = if from == SERVER && self.server_cut {
                                    Step::Shut
                                } else {
                                    Step::Read
                                };
                                self.bytes[from] += len as u64;
                            }
                            self.last[to] = clock.now();
                        }
                    }
                }
                Step::Shut => {
                    // No FIN once the destination's own FIN was read, as HAProxy: the close
                    // sends it then (or the RST of `option nolinger`).
                    if !self.eof[to] && Pin::new(&mut *w).poll_shutdown(cx).is_pending() {
                        return Ok(());
                    }
                    dir.step = Step::Done;
                    self.wshut[to] = true;
                    self.last[to] = clock.now();
                }
                Step::Done => return Ok(()),
            }
        }
    }

    /// Backend `option nolinger` on the client's FIN (HAProxy 2.6, measured): the server is
    /// not told with a FIN but reset when the forwarding ends (`SO_LINGER` 0 before the
    /// close), and what it already sent still reaches the client, which then gets its FIN.
    fn cut_server(&mut self, fd: RawFd) {
        // SAFETY: the server socket the forwarding owns, open as long as the forwarding is.
        let sock = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = socket2::SockRef::from(&sock).set_linger(Some(Duration::ZERO));
        self.dirs[CLIENT].step = Step::Done;
        self.server_cut = true;
        if self.dirs[SERVER].step == Step::Read {
            self.dirs[SERVER].step = Step::Shut;
        }
    }

    /// Acts on the first wait whose deadline is not after `now` (a client-side one first).
    fn expire(&mut self, now: Instant) -> Result<(), End> {
        for from in [CLIENT, SERVER] {
            if self.waits_on(from).is_none_or(|d| d > now) {
                continue;
            }
            if self.dirs[from].step == Step::Write {
                return Err(End::Timeout {
                    client: from != CLIENT,
                });
            }
            // A read timeout shuts this direction (as HAProxy does): the other side is told
            // with a FIN and whatever it still sends is forwarded.
            self.dirs[from].step = Step::Shut;
            self.timed_out.get_or_insert(from == CLIENT);
            return Ok(());
        }
        Ok(())
    }

    fn run<C, S>(
        &mut self,
        client: &mut C,
        server: &mut S,
        mut sleep: Pin<&mut Sleep>,
        cx: &mut Context<'_>,
    ) -> Poll<End>
    where
        C: AsyncRead + AsyncWrite + Unpin,
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut clock = Clock(None);
        // When the timer fired in this poll: the time it stands for.
        let mut fired: Option<Instant> = None;
        loop {
            let r = self
                .drive(CLIENT, client, server, cx, &mut clock)
                .and_then(|()| self.drive(SERVER, server, client, cx, &mut clock));
            if let Err(e) = r {
                return Poll::Ready(e);
            }
            if self.dirs.iter().all(|d| d.step == Step::Done) {
                return Poll::Ready(match self.timed_out {
                    Some(client) => End::Timeout { client },
                    None => End::Done,
                });
            }
            let Some(earliest) = [CLIENT, SERVER]
                .into_iter()
                .filter_map(|d| self.waits_on(d))
                .min()
            else {
                return Poll::Pending;
            };
            if fired.is_none_or(|f| earliest > f) {
                if !self.armed || sleep.deadline() > earliest {
                    sleep.as_mut().reset(earliest);
                    self.armed = true;
                }
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.armed = false;
                let at = sleep.deadline();
                // The timer never fires before its deadline; `max` keeps this loop going
                // forward whatever the clock says.
                fired = Some(Instant::now().max(at));
                if earliest > at {
                    // Fired early: activity pushed the deadlines back. Re-armed next turn.
                    continue;
                }
            }
            if let Err(e) = self.expire(fired.unwrap_or(earliest)) {
                return Poll::Ready(e);
            }
        }
    }
}

/// The forwarding future (see the module documentation).
pub struct Forward<C, S, F> {
    client: C,
    server: S,
    /// Pinned (never moved out of this future).
    sleep: Sleep,
    /// Pinned (never moved out of this future).
    stop: F,
    core: Core,
}

impl<C, S, F> Future for Forward<C, S, F>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
    F: Future<Output = ()>,
{
    type Output = Stats;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Stats> {
        // SAFETY: `sleep` and `stop` are pinned projections: they are only polled, reset and
        // dropped in place, never moved out of `self` (which has no `Drop` impl and is `Unpin`
        // only if they are). The other fields are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let sleep = unsafe { Pin::new_unchecked(&mut this.sleep) };
        let end = match this.core.run(&mut this.client, &mut this.server, sleep, cx) {
            Poll::Ready(end) => end,
            Poll::Pending => {
                // SAFETY: as above.
                let stop = unsafe { Pin::new_unchecked(&mut this.stop) };
                if stop.poll(cx).is_pending() {
                    return Poll::Pending;
                }
                End::Killed
            }
        };
        Poll::Ready(Stats {
            end,
            to_server: this.core.bytes[CLIENT],
            to_client: this.core.bytes[SERVER],
        })
    }
}

/// Forwards between `client` and `server` until both directions are closed, a side times out or
/// fails. `client_pending` is data already read from the client to send first; `server_pending`
/// data already read from the server for the client.
pub fn forward<C, S>(
    client: C,
    server: S,
    tmo: Timeouts,
    client_pending: &[u8],
    server_pending: &[u8],
) -> Forward<C, S, std::future::Pending<()>>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    forward_until(
        client,
        server,
        tmo,
        client_pending,
        server_pending,
        std::future::pending(),
    )
}

/// [`forward`], ended early ([`End::Killed`], byte counts kept) when `stop` resolves. Must be
/// called within a Tokio runtime (it makes its timer).
pub fn forward_until<C, S, F>(
    client: C,
    server: S,
    tmo: Timeouts,
    client_pending: &[u8],
    server_pending: &[u8],
    stop: F,
) -> Forward<C, S, F>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
    F: Future<Output = ()>,
{
    let now = Instant::now();
    Forward {
        client,
        server,
        sleep: tokio::time::sleep_until(now),
        stop,
        core: Core {
            dirs: [Dir::new(client_pending), Dir::new(server_pending)],
            last: [now; 2],
            tmo: [
                [ms(tmo.client.normal), ms(tmo.client.fin)],
                [ms(tmo.server.normal), ms(tmo.server.fin)],
            ],
            wshut: [false; 2],
            bytes: [0; 2],
            armed: false,
            timed_out: None,
            eof: [false; 2],
            nolinger_server: None,
            server_cut: false,
        },
    }
}

impl<C, S: AsRawFd, F> Forward<C, S, F> {
    /// `option nolinger` in the backend: the client's FIN resets the server connection,
    /// unless the server closed first (HAProxy 2.6 then closes it with a FIN, measured).
    pub fn nolinger_server(mut self) -> Self {
        self.core.nolinger_server = Some(self.server.as_raw_fd());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn tmo(ms: u64) -> Timeouts {
        let d = Some(Duration::from_millis(ms));
        Timeouts {
            client: SideTimeouts {
                normal: d,
                fin: None,
            },
            server: SideTimeouts {
                normal: d,
                fin: None,
            },
        }
    }

    #[tokio::test]
    async fn half_close_both_ways_and_byte_counts() {
        let (client_proxy, mut client) = tokio::io::duplex(1024);
        let (server_proxy, mut server) = tokio::io::duplex(1024);
        let fwd = tokio::spawn(forward(client_proxy, server_proxy, tmo(5000), b"pre", b""));
        client.write_all(b"hello").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"prehello");
        server.write_all(b"answer").await.unwrap();
        server.shutdown().await.unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"answer");
        let st = fwd.await.unwrap();
        assert_eq!(st.end, End::Done);
        assert_eq!((st.to_server, st.to_client), (8, 6));
    }

    #[tokio::test]
    async fn idle_client_times_out_and_half_closes() {
        let (client_proxy, _client) = tokio::io::duplex(1024);
        let (server_proxy, mut server) = tokio::io::duplex(1024);
        let mut t = tmo(5000);
        t.client.normal = Some(Duration::from_millis(300));
        let fwd = tokio::spawn(forward(client_proxy, server_proxy, t, b"", b""));
        // The server is told with a FIN once the client side timed out...
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        // ...and its own close ends the session, reported as a client timeout.
        drop(server);
        let st = fwd.await.unwrap();
        assert_eq!(st.end, End::Timeout { client: true });
    }

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    /// Reads whatever comes within `within` (paused clock: the time the runtime lets pass).
    async fn read_some<R: AsyncRead + Unpin>(r: &mut R, within: Duration) -> Option<Vec<u8>> {
        let mut b = vec![0u8; 65536];
        match tokio::time::timeout(within, r.read(&mut b)).await {
            Ok(Ok(n)) => Some(b[..n].to_vec()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn pending_data_is_sent_first_both_ways_and_counted() {
        let (client_proxy, mut client) = tokio::io::duplex(1024);
        let (server_proxy, mut server) = tokio::io::duplex(1024);
        let fwd = tokio::spawn(forward(
            client_proxy,
            server_proxy,
            Timeouts::default(),
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 101 Switching\r\n\r\n",
        ));
        let mut got = [0u8; 18];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n\r\n");
        let mut back = [0u8; 26];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"HTTP/1.1 101 Switching\r\n\r\n");
        client.write_all(b"ping").await.unwrap();
        server.read_exact(&mut got[..4]).await.unwrap();
        assert_eq!(&got[..4], b"ping");
        drop(client);
        drop(server);
        let st = fwd.await.unwrap();
        assert_eq!(st.end, End::Done);
        assert_eq!((st.to_server, st.to_client), (22, 26));
    }

    #[tokio::test]
    async fn large_transfer_is_complete_and_counted() {
        // Bigger than a pool buffer and than the pipes: partial writes and buffer reuse.
        let (client_proxy, mut client) = tokio::io::duplex(3000);
        let (server_proxy, mut server) = tokio::io::duplex(5000);
        let fwd = tokio::spawn(forward(client_proxy, server_proxy, tmo(5000), b"", b""));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let d2 = data.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&d2).await.unwrap();
            client.shutdown().await.unwrap();
            client
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert!(got == data, "{} bytes came", got.len());
        server.write_all(b"ok").await.unwrap();
        drop(server);
        let mut client = writer.await.unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"ok");
        let st = fwd.await.unwrap();
        assert_eq!(st.end, End::Done);
        assert_eq!((st.to_server, st.to_client), (300_000, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn one_way_traffic_keeps_both_sides_alive() {
        // Client and server timeouts of 1 s; for 5 s only the client talks (every 400 ms),
        // then only the server: reads refresh the side read, writes the side written.
        let (client_proxy, mut client) = tokio::io::duplex(1024);
        let (server_proxy, mut server) = tokio::io::duplex(1024);
        let fwd = tokio::spawn(forward(client_proxy, server_proxy, tmo(1000), b"", b""));
        let t0 = Instant::now();
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            client.write_all(b"up").await.unwrap();
            assert_eq!(
                read_some(&mut server, Duration::from_secs(1))
                    .await
                    .unwrap(),
                b"up"
            );
        }
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            server.write_all(b"down").await.unwrap();
            assert_eq!(
                read_some(&mut client, Duration::from_secs(1))
                    .await
                    .unwrap(),
                b"down"
            );
        }
        assert!(!fwd.is_finished());
        // Then silence: both sides time out 1 s after the last activity.
        let st = fwd.await.unwrap();
        let idle = t0.elapsed() - Duration::from_millis(24 * 400);
        assert!(
            idle >= Duration::from_millis(1000) && idle < Duration::from_millis(2100),
            "{idle:?}"
        );
        assert!(matches!(st.end, End::Timeout { .. }), "{st:?}");
        assert_eq!((st.to_server, st.to_client), (24, 48));
    }

    #[tokio::test(start_paused = true)]
    async fn equal_timeouts_client_side_first_and_fin_refreshes() {
        // Both sides idle with the same timeout: the client side times out first (1 s), the
        // server is told with a FIN, which counts as activity on the server side: its own
        // read timeout comes 1 s later, and the client gets its FIN then.
        let (client_proxy, mut client) = tokio::io::duplex(1024);
        let (server_proxy, mut server) = tokio::io::duplex(1024);
        let fwd = tokio::spawn(forward(client_proxy, server_proxy, tmo(1000), b"", b""));
        let t0 = Instant::now();
        let mut b = [0u8; 8];
        assert_eq!(server.read(&mut b).await.unwrap(), 0);
        assert_eq!(t0.elapsed().as_millis() / 100, 10);
        assert_eq!(client.read(&mut b).await.unwrap(), 0);
        assert_eq!(t0.elapsed().as_millis() / 100, 20);
        let st = fwd.await.unwrap();
        assert_eq!(st.end, End::Timeout { client: true });
    }

    #[tokio::test(start_paused = true)]
    async fn fin_timeout_applies_once_half_closed() {
        // `timeout server-fin 1s` (server timeout 30 s): once the client's FIN is passed on,
        // the server has 1 s to answer or close.
        let (client_proxy, mut client) = tokio::io::duplex(1024);
        let (server_proxy, mut server) = tokio::io::duplex(1024);
        let t = Timeouts {
            client: SideTimeouts {
                normal: secs(30),
                fin: secs(1),
            },
            server: SideTimeouts {
                normal: secs(30),
                fin: secs(1),
            },
        };
        let fwd = tokio::spawn(forward(client_proxy, server_proxy, t, b"", b""));
        tokio::time::sleep(Duration::from_secs(5)).await;
        client.write_all(b"q").await.unwrap();
        client.shutdown().await.unwrap();
        let t0 = Instant::now();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"q");
        // The server stays silent: its read times out after its `-fin` timeout, and the
        // client gets a FIN.
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(t0.elapsed().as_millis() / 100, 10);
        let st = fwd.await.unwrap();
        assert_eq!(st.end, End::Timeout { client: false });
        assert_eq!((st.to_server, st.to_client), (1, 0));
        drop(server);
    }

    #[tokio::test(start_paused = true)]
    async fn write_timeout_ends_the_forwarding() {
        // The server reads nothing: the data for it waits, and the server timeout (2 s; the
        // client's is 10 s) ends everything.
        let (client_proxy, mut client) = tokio::io::duplex(100_000);
        let (server_proxy, _server) = tokio::io::duplex(64);
        let mut t = tmo(10_000);
        t.server.normal = secs(2);
        let fwd = tokio::spawn(forward(client_proxy, server_proxy, t, b"", b""));
        let t0 = Instant::now();
        client.write_all(&[7u8; 50_000]).await.unwrap();
        let st = fwd.await.unwrap();
        assert_eq!(t0.elapsed().as_millis() / 100, 20);
        assert_eq!(st.end, End::Timeout { client: false });
    }

    #[tokio::test(start_paused = true)]
    async fn no_timeouts_wait_forever() {
        let (client_proxy, mut client) = tokio::io::duplex(1024);
        let (server_proxy, mut server) = tokio::io::duplex(1024);
        let fwd = tokio::spawn(forward(
            client_proxy,
            server_proxy,
            Timeouts::default(),
            b"",
            b"",
        ));
        tokio::time::sleep(Duration::from_secs(100_000)).await;
        assert!(!fwd.is_finished());
        client.write_all(b"late").await.unwrap();
        assert_eq!(
            read_some(&mut server, Duration::from_secs(1))
                .await
                .unwrap(),
            b"late"
        );
        drop(client);
        drop(server);
        assert_eq!(fwd.await.unwrap().end, End::Done);
    }

    #[tokio::test]
    async fn stop_ends_it_with_the_counts_so_far() {
        let (client_proxy, mut client) = tokio::io::duplex(1024);
        let (server_proxy, mut server) = tokio::io::duplex(1024);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let fwd = tokio::spawn(forward_until(
            client_proxy,
            server_proxy,
            tmo(5000),
            b"",
            b"",
            async move {
                let _ = rx.await;
            },
        ));
        client.write_all(b"abc").await.unwrap();
        let mut b = [0u8; 3];
        server.read_exact(&mut b).await.unwrap();
        tx.send(()).unwrap();
        let st = fwd.await.unwrap();
        assert_eq!(st.end, End::Killed);
        assert_eq!((st.to_server, st.to_client), (3, 0));
        // The forwarding's ends are closed.
        assert_eq!(server.read(&mut b).await.unwrap(), 0);
    }

    async fn tcp_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = tokio::net::TcpStream::connect(l.local_addr().unwrap());
        let (a, b) = tokio::join!(a, l.accept());
        (a.unwrap(), b.unwrap().0)
    }

    #[tokio::test]
    async fn a_reset_is_an_error_of_its_side() {
        for client_resets in [true, false] {
            let (client_proxy, client) = tcp_pair().await;
            let (server_proxy, mut server) = tcp_pair().await;
            let fwd = tokio::spawn(forward(client_proxy, server_proxy, tmo(5000), b"", b""));
            let victim = if client_resets {
                client
            } else {
                std::mem::replace(&mut server, tcp_pair().await.0)
            };
            victim.set_zero_linger().unwrap();
            drop(victim);
            let st = fwd.await.unwrap();
            assert_eq!(
                st.end,
                End::Error {
                    client: client_resets
                }
            );
        }
    }

    #[tokio::test]
    async fn an_idle_pair_is_small() {
        // An idle TCP pair keeps this future for its whole life.
        let (client_proxy, _client) = tcp_pair().await;
        let (server_proxy, _server) = tcp_pair().await;
        let f = forward(client_proxy, server_proxy, tmo(5000), b"", b"");
        let size = std::mem::size_of_val(&f);
        // Two streams (40 bytes each), the timer (112) and the state of both directions: 328
        // bytes on x86-64 with Tokio 1.54. (With `tcp::session`'s stop future it was 1,616
        // bytes when both directions were `pump` futures joined by a select.)
        assert!(size <= 336, "{size} bytes");
    }

    /// Polls `f` once (it must not end).
    async fn poll_once<F: Future>(mut f: Pin<&mut F>) {
        std::future::poll_fn(|cx| {
            assert!(f.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await
    }

    #[tokio::test]
    async fn an_idle_pair_holds_no_buffer() {
        let (client_proxy, mut client) = tokio::io::duplex(1024);
        let (server_proxy, mut server) = tokio::io::duplex(1024);
        let f = forward(client_proxy, server_proxy, tmo(5000), b"pre", b"");
        tokio::pin!(f);
        // Data read before the forwarding waits in a buffer until it is written.
        assert!(f.core.dirs[CLIENT].buf.capacity() > 0);
        poll_once(f.as_mut()).await;
        client.write_all(b"hello").await.unwrap();
        server.write_all(b"back").await.unwrap();
        poll_once(f.as_mut()).await;
        let mut got = [0u8; 8];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"prehello");
        client.read_exact(&mut got[..4]).await.unwrap();
        assert_eq!(&got[..4], b"back");
        poll_once(f.as_mut()).await;
        // All written: no buffer held by either direction, both wait for reads.
        for d in &f.core.dirs {
            assert_eq!(d.buf.capacity(), 0);
            assert_eq!(d.step, Step::Read);
        }
        assert_eq!(f.core.bytes, [8, 4]);
    }
}
