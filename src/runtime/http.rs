//! `mode http` sessions on top of [`crate::http1`]: request heads with HAProxy's verdicts,
//! bodies framed by [`BodyFramer`] (Content-Length, chunked, close-delimited, HEAD/204/304,
//! 1xx and 100-continue), `Upgrade`/101 to a tunnel, the three connection modes, server-side
//! connection reuse within a client session, `option forwardfor`, HAProxy's error responses and
//! `errorfile` overrides.
//!
//! Every request is load-balanced on its own (as HAProxy does); an idle server connection of
//! this client session to the chosen server is reused when there is one.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use super::backend::{Backend, ConnCtx, ConnectError, Slot};
use super::{Accepted, Frontend, forward, tcp};
use crate::config::ir::{ConnMode, Proxy};
use crate::http1::{
    self, BodyFramer, BodyKind, Direction, ErrorFlavor, ForwardFor, HttpMode, Limits,
    OnHeadTimeout, Parsed, Request, Response, WriteOpts,
};
use crate::lb::{Headers, RequestKey};
use crate::tproxy::addr::unmap;
use crate::tproxy::sockopt::UseSrc;

/// Idle server connections a client session keeps (HAProxy's `max-session-srv-conns`).
const MAX_SESSION_SRV_CONNS: usize = 5;

/// HTTP settings of a frontend or backend.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    pub mode: HttpMode,
    pub forwardfor: Option<ForwardFor>,
    /// `errorfile` contents by status.
    pub errorfiles: HashMap<u16, Vec<u8>>,
}

impl HttpSettings {
    pub fn build(p: &Proxy, warn: &mut dyn FnMut(String)) -> HttpSettings {
        let mode = match p.conn_mode.as_ref().map(|c| c.value) {
            None | Some(ConnMode::KeepAlive) => HttpMode::KeepAlive,
            Some(ConnMode::ServerClose) => HttpMode::ServerClose,
            Some(ConnMode::Close) => HttpMode::Close,
        };
        let forwardfor = p.forwardfor.as_ref().map(|f| ForwardFor {
            except: f.value.except.as_deref().and_then(parse_net),
            header: f.value.header.clone(),
            if_none: f.value.if_none,
        });
        let mut errorfiles = HashMap::new();
        for ef in &p.errorfiles {
            let (status, path) = &ef.value;
            match http1::load_errorfile(path) {
                Ok(c) => {
                    errorfiles.insert(*status, c);
                }
                Err(e) => warn(format!("parsing [{}] : errorfile : {e}", ef.loc)),
            }
        }
        HttpSettings {
            mode,
            forwardfor,
            errorfiles,
        }
    }
}

/// `10.0.0.0/8`, `10.0.0.0/255.0.0.0` or a single address.
fn parse_net(s: &str) -> Option<(IpAddr, u8)> {
    match s.split_once('/') {
        None => {
            let ip: IpAddr = s.parse().ok()?;
            Some((ip, if ip.is_ipv4() { 32 } else { 128 }))
        }
        Some((a, m)) => {
            let ip: IpAddr = a.parse().ok()?;
            if let Ok(n) = m.parse::<u8>() {
                return Some((ip, n));
            }
            let mask: std::net::Ipv4Addr = m.parse().ok()?;
            Some((ip, u32::from(mask).count_ones() as u8))
        }
    }
}

#[derive(Debug)]
enum IoEnd {
    Timeout,
    Io,
}

async fn read_more<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    tmo: Option<Duration>,
) -> Result<usize, IoEnd> {
    buf.reserve(16384);
    let fut = r.read_buf(buf);
    match tmo {
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(_)) => Err(IoEnd::Io),
            Err(_) => Err(IoEnd::Timeout),
        },
        None => fut.await.map_err(|_| IoEnd::Io),
    }
}

async fn write_all<W: AsyncWrite + Unpin>(
    w: &mut W,
    data: &[u8],
    tmo: Option<Duration>,
) -> Result<(), IoEnd> {
    let fut = w.write_all(data);
    match tmo {
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(IoEnd::Io),
            Err(_) => Err(IoEnd::Timeout),
        },
        None => fut.await.map_err(|_| IoEnd::Io),
    }
}

/// A server connection of this session.
struct ServerConn {
    r: OwnedReadHalf,
    w: OwnedWriteHalf,
    buf: Vec<u8>,
    srv: usize,
}

impl ServerConn {
    fn new(s: TcpStream, srv: usize) -> ServerConn {
        let (r, w) = s.into_split();
        ServerConn {
            r,
            w,
            buf: Vec::with_capacity(16384),
            srv,
        }
    }
    /// An idle connection the server has closed (or that has unexpected bytes) is unusable.
    fn still_usable(&self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.try_read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// The bytes of an error response: the `errorfile` of the backend or frontend, else the
/// built-in page.
fn error_bytes(
    status: u16,
    flavor: ErrorFlavor,
    fe: &Frontend,
    be: Option<&Backend>,
) -> Option<Vec<u8>> {
    let close = match flavor {
        ErrorFlavor::Mux => true,
        ErrorFlavor::Stream { close } => close,
    };
    let file = be
        .and_then(|b| b.http.errorfiles.get(&status))
        .or_else(|| fe.http.errorfiles.get(&status));
    match file {
        Some(c) if c.is_empty() => None,
        Some(c) => Some(http1::errors::errorfile_wire(c, close)),
        None => http1::builtin_error(status, flavor),
    }
}

async fn send_error<W: AsyncWrite + Unpin>(
    w: &mut W,
    status: u16,
    flavor: ErrorFlavor,
    fe: &Frontend,
    be: Option<&Backend>,
) {
    let close = !matches!(flavor, ErrorFlavor::Stream { close: false });
    match error_bytes(status, flavor, fe, be) {
        Some(bytes) => {
            let _ = write_all(w, &bytes, fe.client_timeout).await;
        }
        // An empty errorfile: HAProxy closes without a word.
        None => {
            let _ = w.shutdown().await;
            return;
        }
    }
    if close {
        let _ = w.shutdown().await;
    }
}

/// The address `usesrc hdr_ip(name[,occ])` names: the occ-th value (negative: from the end)
/// of the comma-separated list across all `name` headers.
fn hdr_ip(req: &Request, name: &str, occ: i32) -> Option<IpAddr> {
    let vals: Vec<&[u8]> = req
        .headers
        .iter()
        .filter(|h| h.is(name))
        .flat_map(|h| http1::message::list_elements(&h.value))
        .collect();
    let v = if occ < 0 {
        let k = (-occ) as usize;
        *vals.get(vals.len().checked_sub(k)?)?
    } else if occ > 0 {
        *vals.get(occ as usize - 1)?
    } else {
        *vals.last()?
    };
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// How the response side of one transaction ended.
enum RespEnd {
    /// Complete response forwarded.
    Done {
        server_reusable: bool,
        client_keep_alive: bool,
    },
    /// 101 or CONNECT: switch to a tunnel.
    Tunnel,
    /// Nothing sent to the client yet: answer with this status.
    Error(u16),
    /// Same, but the request body was not fully received: close after the answer.
    ErrorClose(u16),
    /// The server connection died before any response byte on a reused connection: the
    /// request may be retried on a fresh connection.
    RetryableEmpty,
    /// Part of the response was sent: close the client connection.
    Abort,
}

pub async fn session(
    fe: Arc<Frontend>,
    client: TcpStream,
    acc: Accepted,
    mut stop: watch::Receiver<bool>,
) {
    let (mut cr, mut cw) = client.into_split();
    let mut cbuf: Vec<u8> = Vec::with_capacity(16384);
    let mut idle: Vec<ServerConn> = Vec::new();
    let limits = fe.limits;
    let head_to = http1::HeadTimeouts {
        client: fe.client_timeout,
        http_request: fe.http_request_timeout,
        http_keep_alive: fe.http_keep_alive_timeout,
    };
    let client_ip = unmap(acc.client.ip());
    let mut first = true;
    if let Some(be) = &fe.backend {
        be.cum_conns
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    loop {
        // ---- request head
        let mut req = loop {
            match http1::parse_request(&cbuf, &limits) {
                Ok(Parsed::Complete(r)) => break r,
                Ok(Parsed::H2Preface) => return,
                Err(e) => {
                    send_error(&mut cw, e.status, ErrorFlavor::Mux, &fe, None).await;
                    return;
                }
                Ok(Parsed::Partial) => {}
            }
            let (tmo, on_to) = http1::head_wait(first, cbuf.len(), &head_to);
            let idle_wait = cbuf.is_empty() && !first;
            if idle_wait && *stop.borrow() {
                return;
            }
            let r = tokio::select! {
                r = read_more(&mut cr, &mut cbuf, tmo) => r,
                _ = stop.changed(), if idle_wait => return,
            };
            match r {
                Ok(0) => return,
                Ok(_) => {}
                Err(IoEnd::Timeout) => {
                    if on_to == OnHeadTimeout::Send408 {
                        send_error(&mut cw, 408, ErrorFlavor::Mux, &fe, None).await;
                    }
                    return;
                }
                Err(IoEnd::Io) => return,
            }
        };
        first = false;
        cbuf.drain(..req.head_len);

        let Some(be) = fe.backend.clone() else {
            send_error(&mut cw, 503, ErrorFlavor::Stream { close: true }, &fe, None).await;
            return;
        };
        let mut plan = http1::plan_request(&req, fe.http.mode, be.http.mode);
        if *stop.borrow() {
            plan.client_keep_alive = false;
        }
        let no_body = matches!(req.body, BodyKind::None | BodyKind::Length(0));

        // ---- server choice and connection
        let hl: Vec<(&[u8], &[u8])> = req
            .headers
            .iter()
            .map(|h| (&h.name[..], &h.value[..]))
            .collect();
        let key = RequestKey::http(Some(client_ip), &req.uri, Headers::List(&hl));
        let ctx = ConnCtx {
            client: acc.client,
            orig_dst: acc.orig_dst,
        };
        let want_hdr = be
            .servers
            .first()
            .and_then(|s| s.source.as_ref())
            .or(be.source.as_ref())
            .and_then(|p| match &p.usesrc {
                Some(UseSrc::HdrIp { header, occ }) => Some((header.clone(), *occ)),
                _ => None,
            });
        let hip = want_hdr.and_then(|(h, o)| hdr_ip(&req, &h, o));
        let slot = match be.assign(&key, None).await {
            Ok(s) => Some(s),
            Err(e) => {
                if matches!(e, ConnectError::NoServer | ConnectError::QueueTimeout)
                    && !(be.servers.is_empty() && be.transparent)
                {
                    let keep = plan.client_keep_alive && no_body;
                    send_error(
                        &mut cw,
                        503,
                        ErrorFlavor::Stream { close: !keep },
                        &fe,
                        Some(&be),
                    )
                    .await;
                    if keep {
                        continue;
                    }
                    return;
                }
                None
            }
        };
        let mut reused = None;
        if let Some(s) = &slot {
            while let Some(pos) = idle.iter().position(|c| c.srv == s.srv) {
                let c = idle.remove(pos);
                if c.still_usable() {
                    reused = Some(c);
                    break;
                }
            }
        }
        let conn = match reused {
            Some(c) => Ok((c, slot, true)),
            None => match connect_for(&be, &key, ctx, hip, slot).await {
                Ok((s, sl)) => {
                    let srv = sl.as_ref().map(|x| x.srv).unwrap_or(usize::MAX);
                    Ok((ServerConn::new(s, srv), sl, false))
                }
                Err(status) => Err(status),
            },
        };
        drop(hl);
        let (mut sc, mut slot, mut was_reused) = match conn {
            Ok(x) => x,
            Err(status) => {
                let keep = plan.client_keep_alive && no_body;
                send_error(
                    &mut cw,
                    status,
                    ErrorFlavor::Stream { close: !keep },
                    &fe,
                    Some(&be),
                )
                .await;
                if keep {
                    continue;
                }
                return;
            }
        };

        // ---- request head to the server
        let ff = be.http.forwardfor.as_ref().or(fe.http.forwardfor.as_ref());
        http1::rewrite_request_for_server(&mut req, plan, client_ip, ff);
        let mut head = Vec::with_capacity(1024);
        http1::write_request_head(&mut head, &req, WriteOpts::default());
        let info = req.info();
        let req_11 = req.version.is_11();

        let outcome = loop {
            let mut rq_framer = BodyFramer::new(req.body, Direction::Request);
            let mut out = head.clone();
            match rq_framer.advance(&cbuf) {
                Ok(step) => {
                    out.extend_from_slice(&cbuf[..step.consumed]);
                    cbuf.drain(..step.consumed);
                }
                Err(e) => {
                    send_error(&mut cw, e.status, ErrorFlavor::Mux, &fe, Some(&be)).await;
                    return;
                }
            }
            if write_all(&mut sc.w, &out, be.server_timeout).await.is_err() {
                if was_reused && no_body {
                    // A reused connection closed under us: try a fresh one.
                    was_reused = false;
                    match fresh(&be, &req, client_ip, ctx, hip, slot.take()).await {
                        Ok((c, sl)) => {
                            sc = c;
                            slot = sl;
                            continue;
                        }
                        Err(st) => break RespEnd::Error(st),
                    }
                }
                break RespEnd::Error(502);
            }
            let r = exchange(
                &fe, &be, &mut cr, &mut cw, &mut cbuf, &mut sc, rq_framer, info, req_11, plan,
                was_reused, &stop,
            )
            .await;
            if matches!(r, RespEnd::RetryableEmpty) && no_body {
                was_reused = false;
                match fresh(&be, &req, client_ip, ctx, hip, slot.take()).await {
                    Ok((c, sl)) => {
                        sc = c;
                        slot = sl;
                        continue;
                    }
                    Err(st) => break RespEnd::Error(st),
                }
            }
            break r;
        };
        match outcome {
            RespEnd::Done {
                server_reusable,
                client_keep_alive,
            } => {
                drop(slot);
                let queue = sc.srv != usize::MAX && be.has_waiters(sc.srv);
                if queue {
                    // Requests wait for this server: free the connection at once (RST).
                    let _ = crate::tproxy::sockopt::set_reset_on_close(sc.w.as_ref());
                }
                if server_reusable && plan.server_keep_alive && sc.srv != usize::MAX && !queue {
                    if idle.len() >= MAX_SESSION_SRV_CONNS {
                        idle.remove(0);
                    }
                    idle.push(sc);
                }
                if !client_keep_alive {
                    let _ = cw.shutdown().await;
                    return;
                }
            }
            RespEnd::Tunnel => {
                let _slot = slot;
                let tmo = tcp::tunnel_timeouts(&fe, Some(&be));
                let client = tokio::io::join(cr, cw);
                let server = tokio::io::join(sc.r, sc.w);
                forward::forward(client, server, tmo, &cbuf, &sc.buf).await;
                return;
            }
            RespEnd::Error(_) | RespEnd::RetryableEmpty => {
                let status = match outcome {
                    RespEnd::Error(st) => st,
                    _ => 502,
                };
                drop(slot);
                // The request was sent whole: HAProxy keeps the client connection.
                let keep = plan.client_keep_alive && !*stop.borrow();
                send_error(
                    &mut cw,
                    status,
                    ErrorFlavor::Stream { close: !keep },
                    &fe,
                    Some(&be),
                )
                .await;
                if !keep {
                    return;
                }
            }
            RespEnd::ErrorClose(status) => {
                drop(slot);
                send_error(
                    &mut cw,
                    status,
                    ErrorFlavor::Stream { close: true },
                    &fe,
                    Some(&be),
                )
                .await;
                return;
            }
            RespEnd::Abort => return,
        }
    }
}

fn connect_status(e: &ConnectError) -> u16 {
    match e {
        ConnectError::Resource(m) if m.contains("hdr_ip") => 500,
        _ => 503,
    }
}

async fn connect_for(
    be: &Arc<Backend>,
    key: &RequestKey<'_>,
    ctx: ConnCtx,
    hip: Option<IpAddr>,
    slot: Option<Slot>,
) -> Result<(TcpStream, Option<Slot>), u16> {
    be.connect_with(key, ctx, hip, slot)
        .await
        .map_err(|e| connect_status(&e))
}

/// A fresh connection for a request whose reused connection died.
async fn fresh(
    be: &Arc<Backend>,
    req: &Request,
    client_ip: IpAddr,
    ctx: ConnCtx,
    hip: Option<IpAddr>,
    slot: Option<Slot>,
) -> Result<(ServerConn, Option<Slot>), u16> {
    let hl: Vec<(&[u8], &[u8])> = req
        .headers
        .iter()
        .map(|h| (&h.name[..], &h.value[..]))
        .collect();
    let key = RequestKey::http(Some(client_ip), &req.uri, Headers::List(&hl));
    let (s, sl) = connect_for(be, &key, ctx, hip, slot).await?;
    let srv = sl.as_ref().map(|x| x.srv).unwrap_or(usize::MAX);
    Ok((ServerConn::new(s, srv), sl))
}

/// Forwards the rest of the request body (client to server) while the response is read and
/// forwarded (server to client).
#[allow(clippy::too_many_arguments)]
async fn exchange(
    fe: &Frontend,
    be: &Backend,
    cr: &mut OwnedReadHalf,
    cw: &mut OwnedWriteHalf,
    cbuf: &mut Vec<u8>,
    sc: &mut ServerConn,
    mut rq_framer: BodyFramer,
    info: http1::RequestInfo,
    req_11: bool,
    plan: http1::ConnPlan,
    was_reused: bool,
    stop: &watch::Receiver<bool>,
) -> RespEnd {
    let ServerConn {
        r: sr,
        w: sw,
        buf: sbuf,
        ..
    } = sc;
    let mut req_done = rq_framer.is_done();
    let req_done_flag = std::sync::atomic::AtomicBool::new(req_done);
    let client_to = fe.client_timeout;
    let server_to = be.server_timeout;
    let send_body = async {
        loop {
            if rq_framer.is_done() {
                return Ok::<(), IoEnd>(());
            }
            let before = cbuf.len();
            let n = read_more(cr, cbuf, client_to).await?;
            if n == 0 {
                return Err(IoEnd::Io);
            }
            let _ = before;
            let step = rq_framer.advance(cbuf).map_err(|_| IoEnd::Io)?;
            write_all(sw, &cbuf[..step.consumed], server_to).await?;
            cbuf.drain(..step.consumed);
            if step.done {
                req_done_flag.store(true, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
        }
    };
    let response = async {
        let mut sent_any = false;
        // Response heads (1xx interim ones are forwarded as they come).
        let mut resp: Response = loop {
            match http1::parse_response(sbuf, info, &Limits::default()) {
                Ok(Parsed::Complete(r)) => {
                    if r.interim {
                        let mut h = Vec::new();
                        http1::write_response_head(&mut h, &r, WriteOpts::default());
                        sbuf.drain(..r.head_len);
                        if write_all(cw, &h, client_to).await.is_err() {
                            return RespEnd::Abort;
                        }
                        sent_any = true;
                        continue;
                    }
                    break r;
                }
                Ok(Parsed::H2Preface) | Err(_) => {
                    return if sent_any {
                        RespEnd::Abort
                    } else {
                        RespEnd::Error(502)
                    };
                }
                Ok(Parsed::Partial) => {}
            }
            match read_more(sr, sbuf, server_to).await {
                Ok(0) | Err(IoEnd::Io) => {
                    return if sent_any {
                        RespEnd::Abort
                    } else if sbuf.is_empty() && was_reused {
                        RespEnd::RetryableEmpty
                    } else {
                        RespEnd::Error(502)
                    };
                }
                Ok(_) => {}
                Err(IoEnd::Timeout) => {
                    return if sent_any {
                        RespEnd::Abort
                    } else {
                        RespEnd::Error(504)
                    };
                }
            }
        };
        sbuf.drain(..resp.head_len);
        let mut plan2 = http1::finish_client_plan(plan, &resp);
        if *stop.borrow() {
            plan2.client_keep_alive = false;
        }
        if !req_done_flag.load(std::sync::atomic::Ordering::Relaxed) {
            // Answer before the whole request body: the connection cannot be drained safely.
            plan2.client_keep_alive = false;
            plan2.server_keep_alive = false;
        }
        let tunnel = resp.body == BodyKind::Tunnel;
        http1::rewrite_response_for_client(&mut resp, req_11, plan2);
        let mut h = Vec::with_capacity(512);
        http1::write_response_head(&mut h, &resp, WriteOpts::default());
        if write_all(cw, &h, client_to).await.is_err() {
            return RespEnd::Abort;
        }
        if tunnel {
            return RespEnd::Tunnel;
        }
        let mut framer = BodyFramer::new(resp.body, Direction::Response);
        loop {
            if !sbuf.is_empty() || framer.is_done() {
                let step = match framer.advance(sbuf) {
                    Ok(s) => s,
                    Err(_) => return RespEnd::Abort,
                };
                if step.consumed > 0 {
                    if write_all(cw, &sbuf[..step.consumed], client_to)
                        .await
                        .is_err()
                    {
                        return RespEnd::Abort;
                    }
                    sbuf.drain(..step.consumed);
                }
                if step.done {
                    let extra = !sbuf.is_empty();
                    return RespEnd::Done {
                        server_reusable: plan2.server_keep_alive && !extra,
                        client_keep_alive: plan2.client_keep_alive,
                    };
                }
            }
            match read_more(sr, sbuf, server_to).await {
                Ok(0) => {
                    if framer.on_eof().is_ok() {
                        return RespEnd::Done {
                            server_reusable: false,
                            client_keep_alive: plan2.client_keep_alive && !framer.ends_at_close(),
                        };
                    }
                    return RespEnd::Abort;
                }
                Ok(_) => {}
                Err(_) => return RespEnd::Abort,
            }
        }
    };
    tokio::pin!(send_body);
    tokio::pin!(response);
    loop {
        tokio::select! {
            r = &mut send_body, if !req_done => match r {
                Ok(()) => req_done = true,
                Err(_) => return RespEnd::Abort,
            },
            r = &mut response => {
                let done_now = req_done_flag.load(std::sync::atomic::Ordering::Relaxed);
                return match r {
                    RespEnd::Done { server_reusable, client_keep_alive } => RespEnd::Done {
                        server_reusable: server_reusable && done_now,
                        client_keep_alive: client_keep_alive && done_now,
                    },
                    RespEnd::Error(st) if !done_now => RespEnd::ErrorClose(st),
                    RespEnd::RetryableEmpty if !done_now => RespEnd::ErrorClose(502),
                    other => other,
                };
            }
        }
    }
}
