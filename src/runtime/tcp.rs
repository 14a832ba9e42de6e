//! `mode tcp` sessions: choose a server, connect, forward both ways.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpStream;

use tokio::time::Instant;

use super::backend::{Backend, BeActive, ConnCtx, ConnStats, ConnectError, Slot};
use super::forward::{self, SideTimeouts, Timeouts};
use super::{Accepted, Frontend, clock, logging};
use crate::lb::RequestKey;
use crate::log::LogRecord;

/// The forwarding timeouts of a frontend/backend pair in a tunnel (TCP mode, or HTTP after an
/// upgrade): `timeout tunnel` replaces client and server when set.
pub fn tunnel_timeouts(fe: &Frontend, be: Option<&Backend>) -> Timeouts {
    let tunnel = be.and_then(|b| b.tunnel_timeout);
    Timeouts {
        client: SideTimeouts {
            normal: tunnel.or(fe.client_timeout),
            fin: fe.client_fin_timeout,
        },
        server: SideTimeouts {
            normal: tunnel.or(be.and_then(|b| b.server_timeout)),
            fin: be.and_then(|b| b.server_fin_timeout),
        },
    }
}

/// A `mode tcp` session. The task of a connection lives as long as the connection, and an idle
/// TCP pair keeps only what forwarding and the final log need: choosing a server and connecting
/// (rules, queue, retries: 1,720 bytes of future in the release build) run in a boxed future of
/// their own, freed once the server connection is made.
///
/// Not an `async fn`: an async fn keeps its arguments for its whole life; this future keeps the
/// box of the setup only.
pub fn session(
    fe: Arc<Frontend>,
    client: TcpStream,
    acc: Accepted,
    vars: Option<Box<crate::acl::Vars>>,
) -> impl Future<Output = ()> + Send {
    let setup = Box::pin(setup(fe, client, acc, vars));
    async move {
        let Some(Pair {
            client,
            server,
            early,
            tmo,
            mut kill,
            end,
            _server_fd,
        }) = setup.await
        else {
            return;
        };
        // `shutdown sessions server` ends the session (HAProxy's `K` termination).
        let stop = super::admin::killed(kill.as_mut());
        let fwd = forward::forward_until(client, server, tmo, &early, &[], stop);
        drop(early);
        let st = match end.be.nolinger {
            true => fwd.nolinger_server().await,
            false => fwd.await,
        };
        end.finish(st);
    }
}

/// A connected pair, ready to forward.
struct Pair {
    client: TcpStream,
    server: TcpStream,
    /// Client data read while the server connection was being made (to see the client's
    /// FIN), sent first.
    early: Vec<u8>,
    /// Counts the server socket in the process's (zero-sized).
    _server_fd: super::fds::ServerFd,
    tmo: Timeouts,
    kill: Option<tokio::sync::watch::Receiver<u64>>,
    end: PairEnd,
}

/// What the end of a forwarding session needs (counters, log line).
struct PairEnd {
    fe: Arc<Frontend>,
    be: Arc<Backend>,
    active: BeActive,
    slot: Option<Slot>,
    acc: Accepted,
    cs: ConnStats,
    /// The session's stick counters (boxed: most sessions have none).
    trk: Option<Box<super::stkctr::Trackers>>,
}

impl PairEnd {
    fn finish(self, st: forward::Stats) {
        let PairEnd {
            fe,
            be,
            active,
            slot,
            acc,
            cs,
            trk,
        } = self;
        if let Some(t) = trk {
            t.bytes(st.to_server, st.to_client);
        }
        let srv_idx = slot.as_ref().map(|s| s.srv);
        drop(slot);
        drop(active);
        super::counters::tcp_session(
            &fe,
            &be,
            &cs,
            Some((&st, st.end == forward::End::Killed)),
            [0; 4],
            &acc,
        );
        // Not logged again after `option logasap`.
        if fe.log().is_none_or(|l| l.logasap) {
            return;
        }
        let mut rec = base_record(&fe, &be, &acc, &cs);
        rec.beconn = be.active.load(Ordering::Relaxed) as u32;
        rec.srv_conn = srv_idx.map(|i| be.lb.served(i)).unwrap_or(0);
        rec.bytes_out = st.to_client;
        rec.bytes_in = st.to_server;
        rec.term_state = match st.end {
            forward::End::Done => *b"----",
            forward::End::Timeout { client: true } => logging::term(b'c', b'D'),
            forward::End::Timeout { client: false } => logging::term(b's', b'D'),
            forward::End::Error { client: true } => logging::term(b'C', b'D'),
            forward::End::Error { client: false } => logging::term(b'S', b'D'),
            // As HAProxy 2.6 logs it (measured `K-`, the bytes so far counted).
            forward::End::Killed => logging::term(b'K', b'-'),
        };
        finish(&fe, rec, &acc);
    }
}

/// Rules, server choice and connect: a pair ready to forward, or `None` when the session
/// ended there (logged).
async fn setup(
    fe: Arc<Frontend>,
    client: TcpStream,
    acc: Accepted,
    vars: Option<Box<crate::acl::Vars>>,
) -> Option<Pair> {
    let mut vars = vars;
    let mut scratch = crate::acl::Vars::default();
    let v: &mut crate::acl::Vars = vars.as_deref_mut().unwrap_or(&mut scratch);
    let started = super::rules::tcp_start(&fe, &client, &acc, v).await;
    // `tcp-request content set-src`: the client of the session from here on.
    let mut acc = acc;
    if let Some(a) = v.src {
        acc.client = crate::tproxy::addr::ClientAddr(a);
    }
    let trk = (!v.stk.is_empty()).then(|| Box::new(std::mem::take(&mut v.stk)));
    let be = (match started {
        Some(b) => b,
        None => {
            // `tcp-request content reject`: logged as `f f/<NOSRV> -1/-1/Tt 0 PR` (measured).
            if fe.log().is_some() {
                let rec = LogRecord {
                    accept_date: acc.accept_utc,
                    request_date: acc.accept_utc,
                    t_handshake: Some(0),
                    t_idle: Some(0),
                    t_queue: Some(-1),
                    t_connect: Some(-1),
                    actconn: super::ACTCONN.load(Ordering::Relaxed) as u32,
                    feconn: fe.feconn(),
                    frontend: Arc::from(fe.name.as_str()),
                    client: Some(acc.client.sock_addr()),
                    frontend_addr: acc.orig_dst.map(|o| o.sock_addr()),
                    term_state: logging::term(b'P', b'R'),
                    ..Default::default()
                };
                finish(&fe, rec, &acc);
            }
            close_gracefully(client);
            return None;
        }
    })?;
    be.cum_conns.fetch_add(1, Ordering::Relaxed);
    let active = BeActive::new(&be);
    // Hash the address as accepted (a v4v6 listener's `::ffff:a.b.c.d` is hashed as IPv6).
    let key = RequestKey::tcp(acc.client.ip());
    let ctx = ConnCtx {
        client: acc.client,
        orig_dst: acc.orig_dst,
    };
    let mut cs = ConnStats::default();
    // `stick match|on|store-request`.
    let sticky = (!be.proxy.stick_rules.is_empty()).then(|| {
        let c = super::rules::ctx(&fe, &acc, Some(&be.name), None, None, Some(&*v));
        super::stkctr::stick_request(&be, &c)
    });
    let direct = sticky.as_ref().and_then(|s| s.server);
    // What the client sends before its server connection is made, read to see its FIN.
    let mut early = Vec::new();
    let (r, gave_up) = connect(&be, &key, direct, ctx, &client, &mut early, &mut cs).await;
    if gave_up {
        // `CQ` while queued (no server yet), `CC` once the server is chosen.
        let mut rec = base_record(&fe, &be, &acc, &cs);
        let chosen = cs.server.is_some();
        rec.term_state = logging::term(b'C', if chosen { b'C' } else { b'Q' });
        rec.t_queue = Some(cs.queue_ms);
        end_unconnected(&fe, &be, active, &cs, rec, &acc, client);
        return None;
    }
    let Some(r) = r else {
        // HAProxy gives up the connection when the client resets meanwhile (measured: `CD`).
        let mut rec = base_record(&fe, &be, &acc, &cs);
        rec.term_state = logging::term(b'C', b'D');
        drop(active);
        rec.beconn = be.active.load(Ordering::Relaxed) as u32;
        finish(&fe, rec, &acc);
        return None;
    };
    super::counters::tcp_started(&be, &cs);
    let (server, slot) = match r {
        Ok(x) => x,
        Err(e) => {
            let mut rec = base_record(&fe, &be, &acc, &cs);
            rec.term_state = logging::term(
                match e {
                    ConnectError::Resource(_) => b'R',
                    ConnectError::QueueTimeout => b's',
                    ConnectError::ConnectFailed {
                        timed_out: true, ..
                    } => b's',
                    _ => b'S',
                },
                match e {
                    ConnectError::QueueTimeout => b'Q',
                    _ => b'C',
                },
            );
            if matches!(e, ConnectError::NoServer) {
                rec.server = None;
            }
            if matches!(e, ConnectError::QueueTimeout) {
                rec.t_queue = Some(cs.queue_ms);
            }
            end_unconnected(&fe, &be, active, &cs, rec, &acc, client);
            return None;
        }
    };
    if fe.log().is_some() {
        cs.local_addr = server.local_addr().ok();
    }
    if let Some(s) = &slot {
        super::admin::session_server(&be, s.server());
        if let Some(st) = &sticky {
            st.store(&be, s.srv);
        }
        if be.stores_response {
            let c = super::rules::ctx(&fe, &acc, Some(&be.name), None, None, None);
            super::stkctr::stick_response(&be, &c, s.srv);
        }
    }
    // `option logasap`: logged now, with `+` before `%B %Tt`, and not at the end.
    let asap = fe.log().is_some_and(|l| l.logasap);
    if asap {
        let mut rec = base_record(&fe, &be, &acc, &cs);
        rec.logasap = true;
        finish(&fe, rec, &acc);
    }
    // The log record is built when the session ends (an idle pair keeps no 768-byte record),
    // with the connection counts of then, as HAProxy samples them when it logs.
    let tmo = tunnel_timeouts(&fe, Some(&be));
    let kill = slot.as_ref().map(|s| s.server().admin.kill_watch());
    Some(Pair {
        client,
        server,
        early,
        _server_fd: super::fds::ServerFd::new(),
        tmo,
        kill,
        end: PairEnd {
            fe,
            be,
            active,
            slot,
            acc,
            cs,
            trk,
        },
    })
}

/// Ends a session that got no server connection: counted, logged (`rec`), the client closed.
fn end_unconnected(
    fe: &Frontend,
    be: &Arc<Backend>,
    active: BeActive,
    cs: &ConnStats,
    mut rec: LogRecord,
    acc: &Accepted,
    client: TcpStream,
) {
    drop(active);
    rec.beconn = be.active.load(Ordering::Relaxed) as u32;
    super::counters::tcp_session(fe, be, cs, None, rec.term_state, acc);
    finish(fe, rec, acc);
    close_gracefully(client);
}

/// The server connection of a session, watching the client meanwhile: `(None, false)` when
/// the client reset, `(None, true)` when it closed and HAProxy 2.6 gives it up (measured):
/// while queued if it sent nothing or with `option abortonclose`, at once if its FIN came
/// before the server was chosen (then logged with the server), and while connecting only with
/// `option abortonclose`. Otherwise its data (in `early`) and its FIN are forwarded once
/// connected.
async fn connect(
    be: &Arc<Backend>,
    key: &RequestKey<'_>,
    direct: Option<usize>,
    ctx: ConnCtx,
    client: &TcpStream,
    early: &mut Vec<u8>,
    cs: &mut ConnStats,
) -> (ConnResult, bool) {
    let mut watching = true;
    let mut first = None;
    cs.connect_ms = -1;
    if !be.servers.is_empty() {
        let t = clock::now();
        let r = {
            let assign = async {
                match direct {
                    Some(i) => be.assign_server(i, cs).await,
                    None => be.assign_with(key, None, cs).await,
                }
            };
            tokio::pin!(assign);
            loop {
                tokio::select! {
                    biased;
                    r = &mut assign => break Some(r),
                    _ = client_reset(client) => return (None, false),
                    _ = client_fin(client, early), if watching => {
                        if be.abortonclose || early.is_empty() {
                            break None;
                        }
                        watching = false;
                    }
                }
            }
        };
        cs.queue_ms += clock::now().saturating_duration_since(t).as_millis() as i64;
        match r {
            None => return (None, true),
            Some(Err(e)) => return (Some(Err(e)), false),
            Some(Ok(slot)) => {
                if watching && early.is_empty() && fin_already(client) {
                    cs.server = Some(slot.srv);
                    return (None, true);
                }
                first = Some(slot);
            }
        }
    }
    let connect = be.connect_with(key, ctx, None, first, cs);
    tokio::pin!(connect);
    let watch = watching && be.abortonclose;
    tokio::select! {
        r = &mut connect => (Some(r), false),
        _ = client_reset(client) => (None, false),
        _ = client_fin(client, early), if watch => (None, true),
    }
}

type ConnResult = Option<Result<(TcpStream, Option<Slot>), ConnectError>>;

/// Whether the client's FIN is already there with nothing before it (a peek, which the
/// runtime's readiness cache does not gate: the socket may not have been polled yet).
fn fin_already(c: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut b = [0u8; 1];
    // SAFETY: a one-byte peek into a local buffer on the client socket this session owns.
    let n = unsafe {
        nix::libc::recv(
            c.as_raw_fd(),
            b.as_mut_ptr().cast(),
            1,
            nix::libc::MSG_PEEK | nix::libc::MSG_DONTWAIT,
        )
    };
    n == 0
}

/// Resolves when the client closes (its FIN, or an error); its data meanwhile is kept in
/// `early` (up to a buffer's worth: then it is not read any more).
async fn client_fin(c: &TcpStream, early: &mut Vec<u8>) {
    let mut tmp = [0u8; 4096];
    loop {
        if early.len() >= super::bufpool::BUF_SIZE {
            std::future::pending::<()>().await;
        }
        if c.readable().await.is_err() {
            return;
        }
        match c.try_read(&mut tmp) {
            Ok(0) => return,
            Ok(n) => early.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Resolves when the client connection got an error (a reset).
async fn client_reset(c: &TcpStream) {
    loop {
        match c.ready(tokio::io::Interest::ERROR).await {
            Ok(r) if !r.is_error() => tokio::task::yield_now().await,
            _ => return,
        }
    }
}

/// The fields every session log shares.
pub fn base_record(fe: &Frontend, be: &Backend, acc: &Accepted, cs: &ConnStats) -> LogRecord {
    LogRecord {
        accept_date: acc.accept_utc,
        request_date: acc.accept_utc,
        status: 0,
        t_handshake: Some(0),
        t_idle: Some(0),
        t_queue: Some(if cs.server.is_some() { cs.queue_ms } else { -1 }),
        t_connect: Some(cs.connect_ms),
        actconn: super::ACTCONN.load(Ordering::Relaxed) as u32,
        feconn: fe.feconn(),
        beconn: be.active.load(Ordering::Relaxed) as u32,
        srv_conn: cs.server.map(|i| be.lb.served(i)).unwrap_or(0),
        retries: cs.retries,
        redispatched: cs.redispatched,
        srv_queue: cs.srv_queue_pos,
        backend_queue: cs.be_queue_pos,
        frontend: Arc::from(fe.name.as_str()),
        backend: Some(Arc::from(be.name.as_str())),
        server: cs.server.map(|i| Arc::from(be.servers[i].name.as_str())),
        client: Some(acc.client.sock_addr()),
        frontend_addr: acc.orig_dst.map(|o| o.sock_addr()),
        backend_src: cs.local_addr,
        server_addr: cs.server_addr,
        ..Default::default()
    }
}

fn finish(fe: &Frontend, mut rec: LogRecord, acc: &Accepted) {
    if let Some(l) = fe.log() {
        rec.t_total = Some(logging::ms_between(acc.accept_at, Instant::now()));
        l.record(rec);
    }
}

/// Connect errors are for the log (resource errors were already printed as alerts).
/// Closes a client connection with a FIN, as HAProxy does after a failed connect: Linux sends a
/// RST instead when the socket still holds unread bytes, so read (and discard) what is queued.
fn close_gracefully(client: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    for _ in 0..64 {
        match client.try_read(&mut buf) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
    drop(client);
}

pub fn report_connect_error(be: &Backend, e: &ConnectError) {
    let _ = (be, e);
}
