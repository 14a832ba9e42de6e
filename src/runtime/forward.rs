//! Full-duplex forwarding between two sockets with HAProxy's inactivity timeouts and half-close.
//!
//! Each side (client, server) has an inactivity timeout. As in HAProxy, activity on a side is a
//! read from it *or* a write to it, so a long one-way transfer keeps both sides alive. When the
//! proxy has shut its write direction towards a side (the other side sent its FIN), that side's
//! timeout becomes its `-fin` variant. `timeout tunnel` replaces the client and server timeouts
//! (the `-fin` ones still apply once half-closed).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

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

struct Side {
    last: AtomicU64,
    wshut: AtomicBool,
    tmo: SideTimeouts,
}

struct State {
    base: Instant,
    sides: [Side; 2],
    /// Bytes forwarded from each side (index = source side).
    bytes: [AtomicU64; 2],
    /// The first side whose read timed out (`NONE` if none).
    timed_out: std::sync::atomic::AtomicU8,
    /// Signalled when a direction is shut (timeouts may change).
    changed: tokio::sync::Notify,
}

const NONE: u8 = 255;

impl State {
    fn touch(&self, side: usize) {
        self.sides[side]
            .last
            .store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn deadline(&self, side: usize) -> Option<Instant> {
        let s = &self.sides[side];
        let t = if s.wshut.load(Ordering::Relaxed) {
            s.tmo.fin.or(s.tmo.normal)
        } else {
            s.tmo.normal
        }?;
        Some(self.base + Duration::from_millis(s.last.load(Ordering::Relaxed)) + t)
    }
}

enum PumpErr {
    Timeout(usize),
    Io(usize),
}

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// Runs `fut` until the inactivity deadline of `side` passes (re-reading the deadline, which
/// activity elsewhere may push back).
async fn with_deadline<T>(
    st: &State,
    side: usize,
    fut: impl Future<Output = io::Result<T>>,
) -> Result<T, PumpErr> {
    tokio::pin!(fut);
    loop {
        // A half-close elsewhere may shorten this side's timeout (`-fin`): re-evaluate then.
        let changed = st.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        match st.deadline(side) {
            None => tokio::select! {
                r = &mut fut => return r.map_err(|_| PumpErr::Io(side)),
                _ = &mut changed => continue,
            },
            Some(dl) => tokio::select! {
                r = tokio::time::timeout_at(dl, &mut fut) => match r {
                    Ok(r) => return r.map_err(|_| PumpErr::Io(side)),
                    Err(_) => {
                        if st.deadline(side).is_some_and(|d| d > Instant::now()) {
                            continue;
                        }
                        return Err(PumpErr::Timeout(side));
                    }
                },
                _ = &mut changed => continue,
            },
        }
    }
}

async fn pump<R, W>(st: &State, from: usize, mut r: R, mut w: W) -> Result<(), PumpErr>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let to = 1 - from;
    loop {
        // No buffer is held while the side is idle: one is taken from the pool for a read
        // that returns data, and given back once the data is written.
        let buf = match with_deadline(st, from, bufpool::read_pooled(&mut r)).await {
            Ok(b) => b,
            Err(PumpErr::Timeout(side)) if side == from => {
                // A read timeout shuts this direction (as HAProxy does): the other side is
                // told with a FIN and whatever it still sends is forwarded.
                let _ = w.shutdown().await;
                st.sides[to].wshut.store(true, Ordering::Relaxed);
                st.touch(to);
                st.changed.notify_waiters();
                let first = st.timed_out.compare_exchange(
                    NONE,
                    from as u8,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                let _ = first;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let n = buf.len();
        if n == 0 {
            let _ = w.shutdown().await;
            st.sides[to].wshut.store(true, Ordering::Relaxed);
            st.touch(to);
            st.changed.notify_waiters();
            return Ok(());
        }
        st.touch(from);
        with_deadline(st, to, w.write_all(&buf)).await?;
        bufpool::give(buf);
        st.bytes[from].fetch_add(n as u64, Ordering::Relaxed);
        st.touch(to);
    }
}

/// Forwards between `client` and `server` until both directions are closed, a side times out or
/// fails. `client_pending` is data already read from the client to send first; `server_pending`
/// data already read from the server for the client.
pub async fn forward<C, S>(
    client: C,
    server: S,
    tmo: Timeouts,
    client_pending: &[u8],
    server_pending: &[u8],
) -> Stats
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
    .await
}

/// [`forward`], ended early ([`End::Killed`], byte counts kept) when `stop` resolves.
pub async fn forward_until<C, S>(
    client: C,
    server: S,
    tmo: Timeouts,
    client_pending: &[u8],
    server_pending: &[u8],
    stop: impl Future<Output = ()>,
) -> Stats
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let st = State {
        base: Instant::now(),
        sides: [
            Side {
                last: AtomicU64::new(0),
                wshut: AtomicBool::new(false),
                tmo: tmo.client,
            },
            Side {
                last: AtomicU64::new(0),
                wshut: AtomicBool::new(false),
                tmo: tmo.server,
            },
        ],
        bytes: [AtomicU64::new(0), AtomicU64::new(0)],
        timed_out: std::sync::atomic::AtomicU8::new(NONE),
        changed: tokio::sync::Notify::new(),
    };
    let mut end = tokio::select! {
        e = run(&st, client, server, client_pending, server_pending) => e,
        _ = stop => End::Killed,
    };
    if end == End::Done {
        match st.timed_out.load(Ordering::Acquire) {
            0 => end = End::Timeout { client: true },
            1 => end = End::Timeout { client: false },
            _ => {}
        }
    }
    Stats {
        end,
        to_server: st.bytes[CLIENT].load(Ordering::Relaxed),
        to_client: st.bytes[SERVER].load(Ordering::Relaxed),
    }
}

async fn run<C, S>(
    st: &State,
    client: C,
    server: S,
    client_pending: &[u8],
    server_pending: &[u8],
) -> End
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(server);
    if !client_pending.is_empty() {
        if let Err(e) = with_deadline(st, SERVER, sw.write_all(client_pending)).await {
            return end_of(e);
        }
        st.bytes[CLIENT].fetch_add(client_pending.len() as u64, Ordering::Relaxed);
    }
    if !server_pending.is_empty() {
        if let Err(e) = with_deadline(st, CLIENT, cw.write_all(server_pending)).await {
            return end_of(e);
        }
        st.bytes[SERVER].fetch_add(server_pending.len() as u64, Ordering::Relaxed);
    }
    let c2s = pump(st, CLIENT, &mut cr, &mut sw);
    let s2c = pump(st, SERVER, &mut sr, &mut cw);
    tokio::pin!(c2s);
    tokio::pin!(s2c);
    let (mut c_done, mut s_done) = (false, false);
    while !(c_done && s_done) {
        tokio::select! {
            r = &mut c2s, if !c_done => match r {
                Ok(()) => c_done = true,
                Err(e) => return end_of(e),
            },
            r = &mut s2c, if !s_done => match r {
                Ok(()) => s_done = true,
                Err(e) => return end_of(e),
            },
        }
    }
    End::Done
}

fn end_of(e: PumpErr) -> End {
    match e {
        PumpErr::Timeout(s) => End::Timeout {
            client: s == CLIENT,
        },
        PumpErr::Io(s) => End::Error {
            client: s == CLIENT,
        },
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
}
