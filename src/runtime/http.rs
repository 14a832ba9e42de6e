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

use tokio::time::Instant;

use super::backend::{Backend, BeActive, ConnCtx, ConnStats, ConnectError, Slot};
use super::{Accepted, Frontend, bufpool, forward, logging, tcp};
use crate::config::ir::{ConnMode, Proxy};
use crate::http1::{
    self, BodyFramer, BodyKind, Direction, ErrorFlavor, ForwardFor, HttpMode, Limits,
    OnHeadTimeout, Parsed, Request, Response, WriteOpts,
};
use crate::lb::{Headers, RequestKey};
use crate::log::LogRecord;
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
    let fut = async {
        if buf.is_empty() {
            // Nothing buffered: wait for data without holding a buffer (an idle keep-alive
            // connection holds none), then read into one from the pool.
            bufpool::release(buf);
            let b = bufpool::read_pooled(r).await?;
            let n = b.len();
            if n != 0 {
                *buf = b;
            }
            Ok(n)
        } else {
            buf.reserve(bufpool::BUF_SIZE);
            r.read_buf(buf).await
        }
    };
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
            buf: Vec::new(),
            srv,
        }
    }
    /// Takes what a server that speaks first (or answers before reading) already sent:
    /// once our request reaches a server socket that is already closed, the kernel's RST
    /// may discard unread data.
    fn drain_ready(&mut self) {
        let mut tmp = [0u8; 16384];
        while let Ok(n) = self.r.try_read(&mut tmp) {
            if n == 0 {
                break;
            }
            self.buf.extend_from_slice(&tmp[..n]);
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

/// Boxed, as it is rare: the session future stays small.
fn send_error<'a, W: AsyncWrite + Unpin + Send>(
    w: &'a mut W,
    status: u16,
    flavor: ErrorFlavor,
    fe: &'a Frontend,
    be: Option<&'a Backend>,
) -> std::pin::Pin<Box<dyn Future<Output = u64> + Send + 'a>> {
    Box::pin(send_error_inner(w, status, flavor, fe, be))
}

async fn send_error_inner<W: AsyncWrite + Unpin>(
    w: &mut W,
    status: u16,
    flavor: ErrorFlavor,
    fe: &Frontend,
    be: Option<&Backend>,
) -> u64 {
    let close = !matches!(flavor, ErrorFlavor::Stream { close: false });
    let n = match error_bytes(status, flavor, fe, be) {
        Some(bytes) => {
            let _ = write_all(w, &bytes, fe.client_timeout).await;
            let headers = bytes
                .windows(4)
                .position(|x| x == b"\r\n\r\n")
                .map(|end| {
                    bytes[..end]
                        .split(|&c| c == b'\n')
                        .count()
                        .saturating_sub(1)
                })
                .unwrap_or(0);
            htx_size(bytes.len(), headers)
        }
        // An empty errorfile: HAProxy closes without a word.
        None => {
            let _ = w.shutdown().await;
            return 0;
        }
    };
    if close {
        let _ = w.shutdown().await;
    }
    n
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

/// A message body on its way through: forwarded as is, except chunked bodies, which are
/// re-encoded in canonical form as HAProxy does (extensions dropped, trailer names
/// lower-cased, and the data available at once sent as one chunk: measured, `1\r\ns\r\n1\r\n1`
/// read in one go goes out as `2\r\ns1`).
enum Codec {
    Raw(BodyFramer),
    Chunked(BodyFramer),
}

impl Codec {
    fn new(kind: BodyKind, dir: Direction) -> Codec {
        match kind {
            BodyKind::Chunked => Codec::Chunked(BodyFramer::new(BodyKind::Chunked, dir)),
            k => Codec::Raw(BodyFramer::new(k, dir)),
        }
    }

    /// Consumes body bytes of `input`, appending what is to be sent to `out`.
    fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<http1::body::Step, http1::HttpError> {
        match self {
            Codec::Raw(f) => {
                let step = f.advance(input)?;
                out.extend_from_slice(&input[..step.consumed]);
                Ok(step)
            }
            Codec::Chunked(f) => {
                use http1::body::BodyEvent;
                let mut data: Vec<u8> = Vec::new();
                let flush = |data: &mut Vec<u8>, out: &mut Vec<u8>| {
                    if !data.is_empty() {
                        http1::serialize::write_chunk(out, data);
                        data.clear();
                    }
                };
                let step = f.advance_events(input, |ev| match ev {
                    BodyEvent::Data(r) => data.extend_from_slice(&input[r]),
                    BodyEvent::LastChunk => {
                        flush(&mut data, out);
                        out.extend_from_slice(b"0\r\n");
                    }
                    BodyEvent::TrailerByte(b) => out.push(b),
                    BodyEvent::TrailerEol | BodyEvent::End => out.extend_from_slice(b"\r\n"),
                })?;
                flush(&mut data, out);
                Ok(step)
            }
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Codec::Raw(f) => f.is_done(),
            Codec::Chunked(f) => f.is_done(),
        }
    }

    /// The peer closed: fine for a close-delimited body (or a finished one).
    fn on_eof(&mut self) -> bool {
        match self {
            Codec::Raw(f) => f.on_eof().is_ok(),
            Codec::Chunked(f) => f.is_done(),
        }
    }
}

/// What one transaction did, logged when dropped (if any request byte was seen).
struct TxnLog {
    fe: Arc<Frontend>,
    be: Option<Arc<Backend>>,
    acc: Accepted,
    start: Instant,
    start_utc: chrono::DateTime<chrono::Utc>,
    first_byte: Option<Instant>,
    head_done: Option<Instant>,
    sent: Option<Instant>,
    resp_head: Option<Instant>,
    status: i32,
    bytes_in: u64,
    bytes_out: u64,
    request_line: Option<Vec<u8>>,
    captures: Option<Vec<Option<Vec<u8>>>>,
    res_captures: Option<Vec<Option<Vec<u8>>>>,
    cs: ConnStats,
    term: [u8; 4],
    /// `set-var` variables of the connection (shared by its transactions).
    vars: Option<Arc<std::sync::Mutex<crate::acl::Vars>>>,
}

impl TxnLog {
    fn new(
        fe: &Arc<Frontend>,
        acc: &Accepted,
        start: Instant,
        start_utc: chrono::DateTime<chrono::Utc>,
    ) -> TxnLog {
        TxnLog {
            fe: Arc::clone(fe),
            be: None,
            acc: *acc,
            start,
            start_utc,
            first_byte: None,
            head_done: None,
            sent: None,
            resp_head: None,
            status: -1,
            bytes_in: 0,
            bytes_out: 0,
            request_line: None,
            captures: None,
            res_captures: None,
            cs: ConnStats {
                connect_ms: -1,
                queue_ms: -1,
                ..Default::default()
            },
            term: *b"----",
            vars: None,
        }
    }

    fn set_term(&mut self, cause: u8, phase: u8) {
        if self.term == *b"----" {
            self.term = logging::term(cause, phase);
        }
    }
}

/// HAProxy counts message sizes in its internal form: the wire size minus 4 bytes per
/// header line (`": "` and CRLF).
fn htx_size(wire: usize, headers: usize) -> u64 {
    wire.saturating_sub(4 * headers) as u64
}

fn capture(
    headers: &[http1::Header],
    caps: &[crate::config::ir::Capture],
) -> Option<Vec<Option<Vec<u8>>>> {
    if caps.is_empty() {
        return None;
    }
    Some(
        caps.iter()
            .map(|c| {
                headers.iter().find(|h| h.is(&c.header)).map(|h| {
                    let mut v = h.value.clone();
                    v.truncate(c.len);
                    v
                })
            })
            .collect(),
    )
}

impl Drop for TxnLog {
    fn drop(&mut self) {
        let Some(first) = self.first_byte else {
            return;
        };
        let Some(l) = self.fe.log() else {
            return;
        };
        // `http-request/http-response set-log-level silent`.
        if self
            .vars
            .as_ref()
            .is_some_and(|v| v.lock().is_ok_and(|v| v.silent))
        {
            return;
        }
        let end = Instant::now();
        let ms = |a: Instant, b: Instant| logging::ms_between(a, b);
        let utc = |t: Instant| self.start_utc + chrono::Duration::milliseconds(ms(self.start, t));
        let be = self.be.as_deref();
        let rec = LogRecord {
            accept_date: self.start_utc,
            request_date: utc(first),
            status: self.status,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            t_handshake: Some(0),
            t_idle: Some(ms(self.start, first)),
            t_request: self.head_done.map(|h| ms(first, h)).or(Some(-1)),
            t_queue: Some(self.cs.queue_ms),
            t_connect: Some(self.cs.connect_ms),
            t_response: match (self.sent, self.resp_head) {
                (Some(a), Some(b)) => Some(ms(a, b)),
                _ => Some(-1),
            },
            t_active: Some(ms(first, end)),
            t_total: Some(ms(self.start, end)),
            actconn: super::ACTCONN.load(std::sync::atomic::Ordering::Relaxed) as u32,
            feconn: self.fe.feconn(),
            beconn: be
                .map(|b| b.active.load(std::sync::atomic::Ordering::Relaxed) as u32)
                .unwrap_or(0),
            srv_conn: match (be, self.cs.server) {
                (Some(b), Some(i)) => b.lb.served(i),
                _ => 0,
            },
            retries: self.cs.retries,
            redispatched: self.cs.redispatched,
            frontend: Arc::from(self.fe.name.as_str()),
            backend: be.map(|b| Arc::from(b.name.as_str())),
            server: match (be, self.cs.server) {
                (Some(b), Some(i)) => Some(Arc::from(b.servers[i].name.as_str())),
                _ => None,
            },
            client: Some(self.acc.client.sock_addr()),
            frontend_addr: self.acc.orig_dst.map(|o| o.sock_addr()),
            backend_src: self.cs.local_addr,
            server_addr: self.cs.server_addr,
            req_captures: self.captures.take(),
            res_captures: self.res_captures.take(),
            request_line: self.request_line.take(),
            term_state: self.term,
            vars: self
                .vars
                .as_ref()
                .and_then(|v| v.lock().ok().map(|v| v.for_log()))
                .unwrap_or_default(),
            ..Default::default()
        };
        l.record(rec);
    }
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
    let mut cbuf: Vec<u8> = Vec::new();
    let mut idle: Vec<ServerConn> = Vec::new();
    let mut idle_be: Option<Arc<Backend>> = None;
    let mut idle_dst: Option<std::net::SocketAddr> = None;
    // Allocated only when the configuration has rules (they may set variables).
    let vars: Option<Arc<std::sync::Mutex<crate::acl::Vars>>> =
        fe.rules.any_http.then(Arc::default);
    let limits = fe.limits;
    let head_to = http1::HeadTimeouts {
        client: fe.client_timeout,
        http_request: fe.http_request_timeout,
        http_keep_alive: fe.http_keep_alive_timeout,
    };
    let client_ip = unmap(acc.client.ip());
    // `balance source` hashes the address as accepted: on a `:::port v4v6` listener an IPv4
    // client is `::ffff:a.b.c.d` and HAProxy hashes it as IPv6 (facts §3.4).
    let lb_ip = acc.client.ip();
    let mut first = true;
    let mut txn_start = acc.accept_at;
    let mut txn_start_utc = acc.accept_utc;
    if let Some(be) = &fe.backend {
        be.cum_conns
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    loop {
        let mut txn = TxnLog::new(&fe, &acc, txn_start, txn_start_utc);
        txn.vars = vars.clone();
        if !cbuf.is_empty() {
            txn.first_byte = Some(txn_start);
        }
        // ---- request head
        let mut req = loop {
            match http1::parse_request(&cbuf, &limits) {
                Ok(Parsed::Complete(r)) => break r,
                Ok(Parsed::H2Preface) => return,
                Err(e) => {
                    txn.status = e.status as i32;
                    txn.set_term(b'P', b'R');
                    send_error(&mut cw, e.status, ErrorFlavor::Mux, &fe, None).await;
                    return;
                }
                Ok(Parsed::Partial) => {}
            }
            let (tmo, on_to) = http1::head_wait(first, cbuf.len(), &head_to);
            let idle_wait = cbuf.is_empty() && !first;
            if idle_wait && super::is_stopping() {
                return;
            }
            let r = tokio::select! {
                r = read_more(&mut cr, &mut cbuf, tmo) => r,
                _ = stop.changed(), if idle_wait => return,
            };
            match r {
                Ok(0) | Err(IoEnd::Io) => {
                    txn.status = 400;
                    txn.set_term(b'C', b'R');
                    txn.bytes_in = cbuf.len() as u64;
                    return;
                }
                Ok(_) => {
                    txn.first_byte.get_or_insert_with(Instant::now);
                }
                Err(IoEnd::Timeout) => {
                    if on_to == OnHeadTimeout::Send408 {
                        txn.first_byte.get_or_insert(txn.start);
                        txn.status = 408;
                        txn.set_term(b'c', b'R');
                        send_error(&mut cw, 408, ErrorFlavor::Mux, &fe, None).await;
                    }
                    return;
                }
            }
        };
        first = false;
        txn.head_done = Some(Instant::now());
        txn.bytes_in = htx_size(req.head_len, req.headers.len());
        let logged = fe.log().is_some();
        txn.request_line = logged.then(|| {
            format!(
                "{} {} HTTP/{}.{}",
                String::from_utf8_lossy(&req.method),
                String::from_utf8_lossy(&req.uri),
                req.version.major,
                req.version.minor
            )
            .into_bytes()
        });
        if logged {
            txn.captures = capture(&req.headers, &fe.proxy.capture_request);
        }
        cbuf.drain(..req.head_len);

        let verdict = match &vars {
            Some(vars) => {
                let mut v = vars.lock().unwrap_or_else(|e| e.into_inner());
                v.new_transaction();
                super::rules::on_request(&fe, &acc, &mut req, &mut v)
            }
            None => super::rules::ReqVerdict::Forward(fe.backend.clone()),
        };
        let chosen = match verdict {
            super::rules::ReqVerdict::Forward(b) => b,
            v => {
                if Box::pin(answer_locally(&fe, &mut cw, &req, v, &mut txn)).await {
                    drop(txn);
                    txn_start = Instant::now();
                    txn_start_utc = chrono::Utc::now();
                    continue;
                }
                return;
            }
        };
        let Some(be) = chosen else {
            txn.status = 503;
            txn.set_term(b'S', b'C');
            txn.bytes_out =
                send_error(&mut cw, 503, ErrorFlavor::Stream { close: true }, &fe, None).await;
            return;
        };
        txn.be = Some(Arc::clone(&be));
        // Idle server connections belong to the backend of the previous request (server
        // indexes are per backend): a request switched elsewhere by `use_backend` drops them.
        // `http-request set-dst[-port]` changes where address-less servers connect (and makes
        // idle connections to the old destination unusable).
        let set_dst = vars.as_ref().and_then(|v| v.lock().ok()?.dst);
        if !idle_be.as_ref().is_some_and(|b| Arc::ptr_eq(b, &be)) || idle_dst != set_dst {
            idle.clear();
            idle_be = Some(Arc::clone(&be));
            idle_dst = set_dst;
        }
        let be_active = BeActive::new(&be);
        let mut plan = http1::plan_request(&req, fe.http.mode, be.http.mode);
        if super::is_stopping() {
            plan.client_keep_alive = false;
        }
        let no_body = matches!(req.body, BodyKind::None | BodyKind::Length(0));

        // ---- server choice and connection
        let hl: Vec<(&[u8], &[u8])> = req
            .headers
            .iter()
            .map(|h| (&h.name[..], &h.value[..]))
            .collect();
        let key = RequestKey::http(Some(lb_ip), &req.uri, Headers::List(&hl));
        let ctx = ConnCtx {
            client: acc.client,
            orig_dst: set_dst
                .map(crate::tproxy::addr::OrigDstAddr)
                .or(acc.orig_dst),
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
        let tq = Instant::now();
        let assigned = be.assign(&key, None).await;
        txn.cs.queue_ms = logging::ms_between(tq, Instant::now());
        let slot = match assigned {
            Ok(s) => {
                txn.cs.server = Some(s.srv);
                Some(s)
            }
            Err(e) => {
                if matches!(e, ConnectError::NoServer | ConnectError::QueueTimeout)
                    && !(be.servers.is_empty() && be.transparent)
                {
                    let keep = plan.client_keep_alive && no_body;
                    txn.status = 503;
                    if matches!(e, ConnectError::QueueTimeout) {
                        txn.set_term(b's', b'Q');
                    } else {
                        txn.cs.queue_ms = -1;
                        txn.set_term(b'S', b'C');
                    }
                    txn.bytes_out = send_error(
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
            Some(c) => {
                txn.cs.connect_ms = 0;
                txn.cs.server_addr = c.r.peer_addr().ok();
                txn.cs.local_addr = c.r.local_addr().ok();
                Ok((c, slot, true))
            }
            None => match Box::pin(connect_for(&be, &key, ctx, hip, slot, &mut txn.cs)).await {
                Ok((s, sl)) => {
                    let srv = sl.as_ref().map(|x| x.srv).unwrap_or(usize::MAX);
                    Ok((ServerConn::new(s, srv), sl, false))
                }
                Err(status) => Err(status),
            },
        };
        drop(hl);
        let (sc0, mut slot, mut was_reused) = match conn {
            Ok(x) => x,
            Err(status) => {
                let keep = plan.client_keep_alive && no_body;
                txn.status = status as i32;
                txn.set_term(if status == 500 { b'R' } else { b'S' }, b'C');
                txn.bytes_out = send_error(
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
        if let Some(s) = &slot {
            super::admin::session_server(&be, s.server());
        }

        // An Option so that a dead connection can be closed before its replacement is
        // opened (with `usesrc client` both would need the same 4-tuple).
        let mut sc = Some(sc0);

        // ---- request head to the server
        let ff = be.http.forwardfor.as_ref().or(fe.http.forwardfor.as_ref());
        http1::rewrite_request_for_server(&mut req, plan, client_ip, ff);
        let mut head = Vec::with_capacity(1024);
        http1::write_request_head(&mut head, &req, WriteOpts::default());
        let info = req.info();
        let req_11 = req.version.is_11();

        let outcome = loop {
            let mut rq_framer = Codec::new(req.body, Direction::Request);
            let mut out = head.clone();
            match rq_framer.feed(&cbuf, &mut out) {
                Ok(step) => {
                    cbuf.drain(..step.consumed);
                }
                Err(e) => {
                    txn.status = e.status as i32;
                    txn.set_term(b'P', b'R');
                    txn.bytes_out =
                        send_error(&mut cw, e.status, ErrorFlavor::Mux, &fe, Some(&be)).await;
                    return;
                }
            }
            txn.sent = Some(Instant::now());
            let Some(conn) = sc.as_mut() else {
                break RespEnd::Error(503);
            };
            if !was_reused {
                conn.drain_ready();
            }
            if write_all(&mut conn.w, &out, be.server_timeout)
                .await
                .is_err()
            {
                if was_reused && no_body {
                    // A reused connection closed under us: try a fresh one.
                    was_reused = false;
                    drop(sc.take());
                    match Box::pin(fresh(&be, &req, lb_ip, ctx, hip, slot.take(), &mut txn.cs))
                        .await
                    {
                        Ok((c, sl)) => {
                            sc = Some(c);
                            slot = sl;
                            continue;
                        }
                        Err(st) => break RespEnd::Error(st),
                    }
                }
                // The server may have answered (and closed) before reading the request:
                // read what it sent; an empty answer becomes a 502 there.
            }
            // Boxed: the session future, which an idle keep-alive connection keeps, stays small.
            let r = Box::pin(exchange(
                &fe, &be, &mut cr, &mut cw, &mut cbuf, conn, rq_framer, info, req_11, plan,
                was_reused, &mut txn,
            ))
            .await;
            if matches!(r, RespEnd::RetryableEmpty) && no_body {
                was_reused = false;
                drop(sc.take());
                match Box::pin(fresh(&be, &req, lb_ip, ctx, hip, slot.take(), &mut txn.cs)).await {
                    Ok((c, sl)) => {
                        sc = Some(c);
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
                let Some(sc) = sc else { continue };
                let queue = sc.srv != usize::MAX && be.has_waiters(sc.srv);
                if queue {
                    // Requests wait for this server: free the connection at once (RST).
                    let _ = crate::tproxy::sockopt::set_reset_on_close(sc.w.as_ref());
                }
                if server_reusable && plan.server_keep_alive && sc.srv != usize::MAX && !queue {
                    if idle.len() >= MAX_SESSION_SRV_CONNS {
                        idle.remove(0);
                    }
                    let mut sc = sc;
                    bufpool::release(&mut sc.buf);
                    idle.push(sc);
                }
                if !client_keep_alive {
                    let _ = cw.shutdown().await;
                    return;
                }
            }
            RespEnd::Tunnel => {
                let _slot = slot;
                let Some(sc) = sc else { return };
                let tmo = tcp::tunnel_timeouts(&fe, Some(&be));
                let client = tokio::io::join(cr, cw);
                let server = tokio::io::join(sc.r, sc.w);
                let st = Box::pin(forward::forward(client, server, tmo, &cbuf, &sc.buf)).await;
                txn.bytes_out += st.to_client;
                txn.bytes_in += st.to_server;
                return;
            }
            RespEnd::Error(_) | RespEnd::RetryableEmpty => {
                let status = match outcome {
                    RespEnd::Error(st) => st,
                    _ => 502,
                };
                drop(slot);
                // The request was sent whole: HAProxy keeps the client connection.
                let keep = plan.client_keep_alive && !super::is_stopping();
                txn.status = status as i32;
                match status {
                    504 => txn.set_term(b's', b'H'),
                    503 => txn.set_term(b'S', b'C'),
                    _ => txn.set_term(b'S', b'H'),
                }
                txn.bytes_out = send_error(
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
                txn.status = status as i32;
                match status {
                    504 => txn.set_term(b's', b'H'),
                    _ => txn.set_term(b'S', b'H'),
                }
                txn.bytes_out = send_error(
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
        drop(be_active);
        drop(txn);
        txn_start = Instant::now();
        txn_start_utc = chrono::Utc::now();
    }
}

/// Answers a request the rules handled (`deny`, `return`, `redirect`, `tcp-request content
/// reject`); `true` when the client connection stays open for another request.
async fn answer_locally(
    fe: &Frontend,
    cw: &mut OwnedWriteHalf,
    req: &Request,
    v: super::rules::ReqVerdict,
    txn: &mut TxnLog,
) -> bool {
    use super::rules::ReqVerdict;
    let be_mode = match &v {
        ReqVerdict::Deny { be: Some(b), .. } | ReqVerdict::Reply { be: Some(b), .. } => b.http.mode,
        _ => fe.http.mode,
    };
    let plan = http1::plan_request(req, fe.http.mode, be_mode);
    let no_body = matches!(req.body, BodyKind::None | BodyKind::Length(0));
    let keep = plan.client_keep_alive && no_body && !super::is_stopping();
    match v {
        ReqVerdict::Forward(_) => true,
        ReqVerdict::Close { reset, tcp } => {
            // Logged with `%Tq` -1; a `tcp-request content` reject as a `<BADREQ>` with no
            // status (measured).
            txn.set_term(b'P', b'R');
            txn.head_done = None;
            if tcp {
                txn.request_line = None;
            }
            if reset {
                super::rules::silent_drop(cw.as_ref());
            } else {
                let _ = cw.shutdown().await;
            }
            false
        }
        ReqVerdict::Service { name, be } => {
            // Dispatch point of `http-request use-service`. No service is implemented in this
            // branch yet (the keyword is refused at -c for every name), so this answers 503.
            let _ = name;
            txn.status = 503;
            txn.set_term(b'P', b'R');
            txn.bytes_out = rule_error(cw, req, 503, !keep, fe, be.as_deref()).await;
            keep
        }
        ReqVerdict::Tarpit { status, be } => {
            // Held for `timeout tarpit` (else `timeout connect`), then the error page.
            let t = &fe.proxy.timeouts;
            let wait = t
                .tarpit
                .as_ref()
                .or(t.connect.as_ref())
                .map_or(0, |x| x.value);
            let t0 = Instant::now();
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            // HAProxy logs the tarpit wait as `%Tw`, with `%Tq` -1 (measured).
            txn.cs.queue_ms = logging::ms_between(t0, Instant::now());
            txn.head_done = None;
            txn.status = status as i32;
            txn.set_term(b'P', b'T');
            txn.bytes_out = rule_error(cw, req, status, !keep, fe, be.as_deref()).await;
            keep
        }
        ReqVerdict::Deny { status, be } => {
            txn.status = status as i32;
            txn.set_term(b'P', b'R');
            txn.bytes_out = rule_error(cw, req, status, !keep, fe, be.as_deref()).await;
            keep
        }
        ReqVerdict::Reply {
            status,
            mut head,
            body,
            deny,
            ..
        } => {
            txn.status = status as i32;
            txn.set_term(if deny { b'P' } else { b'L' }, b'R');
            let conn = if !keep {
                http1::errors::ConnHeader::Close
            } else if !req.version.is_11() {
                http1::errors::ConnHeader::KeepAlive
            } else {
                http1::errors::ConnHeader::None
            };
            super::rules::finish_reply(&mut head, conn);
            let headers = head
                .iter()
                .filter(|&&c| c == b'\n')
                .count()
                .saturating_sub(2);
            // No body in the answer to a HEAD request.
            if !req.is_head() {
                head.extend_from_slice(&body);
            }
            let _ = write_all(cw, &head, fe.client_timeout).await;
            txn.bytes_out = htx_size(head.len(), headers);
            if !keep {
                let _ = cw.shutdown().await;
            }
            keep
        }
    }
}

/// The error page of a rule (`deny`, `tarpit`): without its body for a HEAD request.
async fn rule_error(
    cw: &mut OwnedWriteHalf,
    req: &Request,
    status: u16,
    close: bool,
    fe: &Frontend,
    be: Option<&Backend>,
) -> u64 {
    if !req.is_head() {
        return send_error(cw, status, ErrorFlavor::Stream { close }, fe, be).await;
    }
    let Some(mut bytes) = error_bytes(status, ErrorFlavor::Stream { close }, fe, be) else {
        let _ = cw.shutdown().await;
        return 0;
    };
    let end = bytes
        .windows(4)
        .position(|x| x == b"\r\n\r\n")
        .map_or(bytes.len(), |i| i + 4);
    bytes.truncate(end);
    let headers = bytes
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        .saturating_sub(2);
    let _ = write_all(cw, &bytes, fe.client_timeout).await;
    if close {
        let _ = cw.shutdown().await;
    }
    htx_size(bytes.len(), headers)
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
    cs: &mut ConnStats,
) -> Result<(TcpStream, Option<Slot>), u16> {
    let q = cs.queue_ms.max(0);
    let r = be
        .connect_with(key, ctx, hip, slot, cs)
        .await
        .map_err(|e| connect_status(&e));
    cs.queue_ms += q;
    r
}

/// A fresh connection for a request whose reused connection died.
async fn fresh(
    be: &Arc<Backend>,
    req: &Request,
    lb_ip: IpAddr,
    ctx: ConnCtx,
    hip: Option<IpAddr>,
    slot: Option<Slot>,
    cs: &mut ConnStats,
) -> Result<(ServerConn, Option<Slot>), u16> {
    let hl: Vec<(&[u8], &[u8])> = req
        .headers
        .iter()
        .map(|h| (&h.name[..], &h.value[..]))
        .collect();
    let key = RequestKey::http(Some(lb_ip), &req.uri, Headers::List(&hl));
    let (s, sl) = connect_for(be, &key, ctx, hip, slot, cs).await?;
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
    mut rq_framer: Codec,
    info: http1::RequestInfo,
    req_11: bool,
    plan: http1::ConnPlan,
    was_reused: bool,
    txn: &mut TxnLog,
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
            let n = read_more(cr, cbuf, client_to).await?;
            if n == 0 {
                return Err(IoEnd::Io);
            }
            let mut out = Vec::with_capacity(cbuf.len() + 16);
            let step = rq_framer.feed(cbuf, &mut out).map_err(|_| IoEnd::Io)?;
            write_all(sw, &out, server_to).await?;
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
        txn.resp_head = Some(Instant::now());
        txn.status = resp.status as i32;
        txn.res_captures = capture(&resp.headers, &fe.proxy.capture_response);
        let verdict = match txn.vars.clone() {
            Some(vars) => {
                let mut v = vars.lock().unwrap_or_else(|e| e.into_inner());
                super::rules::on_response(fe, be, &txn.acc, &mut resp, &mut v)
            }
            None => None,
        };
        if let Some(v) = verdict {
            // The server's answer is dropped: `deny` (termination PH), `return`, `silent-drop`;
            // HAProxy then logs no response time (`%Tr` -1).
            txn.resp_head = None;
            use super::rules::ResVerdict;
            match v {
                ResVerdict::Deny(st) => {
                    txn.set_term(b'P', b'H');
                    return RespEnd::Error(st);
                }
                ResVerdict::Drop => {
                    txn.set_term(b'P', b'H');
                    super::rules::silent_drop(cw.as_ref());
                    return RespEnd::Abort;
                }
                ResVerdict::Reply {
                    status,
                    mut head,
                    body,
                    deny,
                } => {
                    let plan2 = http1::finish_client_plan(plan, &resp);
                    let keep = plan2.client_keep_alive
                        && req_done_flag.load(std::sync::atomic::Ordering::Relaxed);
                    let conn = if !keep {
                        http1::errors::ConnHeader::Close
                    } else if !req_11 {
                        http1::errors::ConnHeader::KeepAlive
                    } else {
                        http1::errors::ConnHeader::None
                    };
                    super::rules::finish_reply(&mut head, conn);
                    if !info.head {
                        head.extend_from_slice(&body);
                    }
                    txn.status = status as i32;
                    txn.set_term(if deny { b'P' } else { b'L' }, b'H');
                    if write_all(cw, &head, client_to).await.is_err() {
                        return RespEnd::Abort;
                    }
                    txn.bytes_out += head.len() as u64;
                    return RespEnd::Done {
                        server_reusable: false,
                        client_keep_alive: keep,
                    };
                }
            }
        }
        let mut plan2 = http1::finish_client_plan(plan, &resp);
        if super::is_stopping() {
            plan2.client_keep_alive = false;
        }
        if !req_done_flag.load(std::sync::atomic::Ordering::Relaxed) {
            // Answer before the whole request body: the connection cannot be drained safely.
            plan2.client_keep_alive = false;
            plan2.server_keep_alive = false;
        }
        let tunnel = resp.body == BodyKind::Tunnel;
        let resp_body = resp.body;
        // The server keeps its side open: HTTP/1.1 without `close`, HTTP/1.0 with keep-alive.
        let server_keeps = !resp.conn.close && (resp.version.is_11() || resp.conn.keep_alive);
        http1::rewrite_response_for_client(&mut resp, req_11, plan2);
        let mut h = Vec::with_capacity(512);
        http1::write_response_head(&mut h, &resp, WriteOpts::default());
        if write_all(cw, &h, client_to).await.is_err() {
            txn.set_term(b'C', b'D');
            return RespEnd::Abort;
        }
        txn.bytes_out += htx_size(h.len(), resp.headers.len());
        if tunnel {
            return RespEnd::Tunnel;
        }
        let mut framer = Codec::new(resp.body, Direction::Response);
        let mut out = bufpool::Pooled::new();
        loop {
            if !sbuf.is_empty() || framer.is_done() {
                out.clear();
                let step = match framer.feed(sbuf, &mut out) {
                    Ok(s) => s,
                    Err(_) => return RespEnd::Abort,
                };
                if !out.is_empty() {
                    if write_all(cw, &out, client_to).await.is_err() {
                        txn.set_term(b'C', b'D');
                        return RespEnd::Abort;
                    }
                    txn.bytes_out += out.len() as u64;
                }
                sbuf.drain(..step.consumed);
                if step.done {
                    let extra = !sbuf.is_empty();
                    return RespEnd::Done {
                        server_reusable: plan2.server_keep_alive && !extra && server_keeps,
                        client_keep_alive: plan2.client_keep_alive,
                    };
                }
            }
            match read_more(sr, sbuf, server_to).await {
                Ok(0) => {
                    if framer.on_eof() {
                        return RespEnd::Done {
                            server_reusable: false,
                            client_keep_alive: plan2.client_keep_alive
                                && resp_body != BodyKind::CloseDelimited,
                        };
                    }
                    txn.set_term(b'S', b'D');
                    return RespEnd::Abort;
                }
                Ok(_) => {}
                Err(IoEnd::Timeout) => {
                    txn.set_term(b's', b'D');
                    return RespEnd::Abort;
                }
                Err(IoEnd::Io) => {
                    txn.set_term(b'S', b'D');
                    return RespEnd::Abort;
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwardfor_except_networks() {
        assert_eq!(
            parse_net("10.0.0.0/8"),
            Some(("10.0.0.0".parse().unwrap(), 8))
        );
        assert_eq!(
            parse_net("10.0.0.0/255.255.0.0"),
            Some(("10.0.0.0".parse().unwrap(), 16))
        );
        assert_eq!(parse_net("::1"), Some(("::1".parse().unwrap(), 128)));
        assert_eq!(parse_net("nope"), None);
    }

    fn req(raw: &str) -> Request {
        match http1::parse_request(raw.as_bytes(), &Limits::default()) {
            Ok(Parsed::Complete(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hdr_ip_occurrences() {
        let r = req("GET / HTTP/1.1\r\nX-IP: 10.0.0.1, 10.0.0.2\r\nX-IP: 10.0.0.3\r\n\r\n");
        assert_eq!(hdr_ip(&r, "x-ip", -1), Some("10.0.0.3".parse().unwrap()));
        assert_eq!(hdr_ip(&r, "x-ip", -2), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(hdr_ip(&r, "x-ip", 1), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(hdr_ip(&r, "x-ip", 4), None);
        assert_eq!(hdr_ip(&r, "x-other", -1), None);
    }

    #[test]
    fn chunked_bodies_are_coalesced_per_read() {
        let mut c = Codec::new(BodyKind::Chunked, Direction::Response);
        let mut out = Vec::new();
        let input = b"1;ext=1\r\na\r\n2\r\nbc\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let step = c.feed(input, &mut out).unwrap();
        assert!(step.done);
        assert_eq!(&input[step.consumed..], b"NEXT");
        assert_eq!(out, b"3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n");
    }

    #[test]
    fn raw_bodies_pass_through() {
        let mut c = Codec::new(BodyKind::Length(3), Direction::Request);
        let mut out = Vec::new();
        let step = c.feed(b"abcdef", &mut out).unwrap();
        assert_eq!((step.consumed, step.done), (3, true));
        assert_eq!(out, b"abc");
    }

    #[test]
    fn htx_sizes() {
        assert_eq!(htx_size(100, 3), 88);
        assert_eq!(htx_size(2, 3), 0);
    }
}
