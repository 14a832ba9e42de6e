//! `mode http` sessions on top of [`crate::http1`]: request heads with HAProxy's verdicts,
//! bodies framed by [`BodyFramer`] (Content-Length, chunked, close-delimited, HEAD/204/304,
//! 1xx and 100-continue), `Upgrade`/101 to a tunnel, the three connection modes, server-side
//! connection reuse (`http-reuse`), `option forwardfor`, HAProxy's error responses and
//! `errorfile` overrides.
//!
//! Every request is load-balanced on its own (as HAProxy does); then it reuses a private idle
//! connection of its session (`http-reuse never`) or one of the chosen server's idle pool
//! ([`super::srvpool`]) when the mode allows, else connects. After the response, a reusable
//! connection goes back to its session (private) or to the server's pool.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use tokio::time::Instant;

use super::backend::{Backend, BeActive, ConnCtx, ConnStats, ConnectError, Slot};
use super::boxfut::BoxFuture;
use super::lazyio::LazyTcp;
use super::srvpool::{ConnKey, Key, Lists, ReuseMode, ServerConn};
use super::{Accepted, Frontend, bufpool, clock, forward, logging, tcp};
use crate::config::ir::{ConnMode, Proxy};
use crate::http1::{
    self, BodyFramer, BodyKind, Direction, ErrorFlavor, ForwardFor, HttpMode, Limits,
    OnHeadTimeout, Parsed, Request, Response, WriteOpts,
};
use crate::lb::{Headers, RequestKey};
use crate::log::LogRecord;
use crate::tproxy::addr::unmap;
use crate::tproxy::sockopt::UseSrc;

/// The two directions of the client connection within a transaction (shared references to
/// the session's one [`LazyTcp`]: registered with the event loop only once it must wait).
type ClientR<'a> = &'a LazyTcp;
type ClientW<'a> = &'a LazyTcp;

/// Private idle server connections a client session keeps (`http-reuse never`; HAProxy's
/// `max-session-srv-conns`).
const MAX_SESSION_SRV_CONNS: usize = 5;

/// HTTP settings of a frontend or backend.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    pub mode: HttpMode,
    pub forwardfor: Option<ForwardFor>,
    pub originalto: Option<ForwardFor>,
    /// `errorfile` contents by status.
    pub errorfiles: HashMap<u16, Vec<u8>>,
    /// `http-error` replies by status: like errorfiles, but HAProxy uses them only for the
    /// errors of request processing, not for the connection-level ones (a request it cannot
    /// parse gets the errorfile or built-in page).
    pub http_errors: HashMap<u16, Vec<u8>>,
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
        let originalto = p.originalto.as_ref().map(|f| ForwardFor {
            except: f.value.except.as_deref().and_then(parse_net),
            header: f.value.header.clone(),
            if_none: false,
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
        // `http-error` replies, built at parse time (`default-errorfiles` drops an earlier one).
        let mut http_errors = HashMap::new();
        for he in &p.http_errors {
            match &he.value.content {
                Some(c) => {
                    http_errors.insert(he.value.status, c.clone());
                }
                None => {
                    http_errors.remove(&he.value.status);
                }
            }
        }
        HttpSettings {
            mode,
            forwardfor,
            originalto,
            errorfiles,
            http_errors,
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

/// `option http-buffer-request`: waits until the request body is whole (or fills a buffer)
/// before the rules and the server choice, until `timeout http-request` (else `timeout
/// client`) from the request's start. `false`: the time ran out. A client that closes or fails
/// meanwhile is left to the body's forwarding to notice.
async fn buffer_body<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    kind: BodyKind,
    txn: &TxnLog,
    fe: &Frontend,
) -> bool {
    if matches!(kind, BodyKind::None | BodyKind::Length(0)) {
        return true;
    }
    let deadline = fe
        .http_request_timeout
        .or(fe.client_timeout)
        .map(|t| txn.first_byte.unwrap_or(txn.start) + t);
    loop {
        let whole = Codec::new(kind, Direction::Request)
            .feed(buf, &mut Vec::new())
            .map_or(true, |s| s.done);
        if whole || buf.len() >= bufpool::BUF_SIZE {
            return true;
        }
        let left = deadline.map(|d| d.saturating_duration_since(clock::now()));
        match read_more(r, buf, left).await {
            Ok(0) | Err(IoEnd::Io) => return true,
            Ok(_) => {}
            Err(IoEnd::Timeout) => return false,
        }
    }
}

/// The body did not come in time under `option http-buffer-request` (HAProxy 2.6, measured:
/// a 408, `cR`, no request time, no server).
async fn body_timeout(txn: &mut TxnLog, cw: &mut ClientW<'_>, fe: &Frontend) -> Flow {
    txn.status = 408;
    txn.head_done = None;
    txn.set_term(b'c', b'R');
    txn.bytes_out = send_error(cw, 408, ErrorFlavor::Stream { close: true }, fe, None).await;
    Flow::End
}

/// How response heads are written to the client (`option h1-case-adjust-bogus-client`).
fn client_wopts(fe: &Frontend) -> WriteOpts {
    WriteOpts {
        adjust_case: fe.adjust_case_client,
        ..Default::default()
    }
}

/// A body error cause that is not one: the client's FIN under `option abortonclose`.
const FIN_ABORT: u8 = 0;

/// Resolves when the client closes (its FIN, or an error); what it sends meanwhile (a
/// pipelined request, the body) is kept in `buf`, up to a buffer's worth, after which the
/// client is not read any more (as HAProxy stops reading a full buffer).
async fn client_fin<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) {
    loop {
        if buf.len() >= bufpool::BUF_SIZE {
            std::future::pending::<()>().await;
        }
        match read_more(r, buf, None).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
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
        Some(t) => match tokio::time::timeout_at(clock::now() + t, fut).await {
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
        Some(t) => match tokio::time::timeout_at(clock::now() + t, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(IoEnd::Io),
            Err(_) => Err(IoEnd::Timeout),
        },
        None => fut.await.map_err(|_| IoEnd::Io),
    }
}

/// The idle server connections of a session. Those still kept when the session ends are
/// closed with an RST ([`ServerConn::close_reset`]), as HAProxy does.
struct IdleConns(Vec<ServerConn>);

impl Drop for IdleConns {
    fn drop(&mut self) {
        for c in self.0.drain(..) {
            c.close_reset();
        }
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
    let reply = match flavor {
        ErrorFlavor::Mux => None,
        ErrorFlavor::Stream { .. } => be
            .and_then(|b| b.http.http_errors.get(&status))
            .or_else(|| fe.http.http_errors.get(&status)),
    };
    let file = reply.or_else(|| {
        be.and_then(|b| b.http.errorfiles.get(&status))
            .or_else(|| fe.http.errorfiles.get(&status))
    });
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
            // HAProxy's stored 400 and 408 carry `Connection: close`, which its internal
            // (HTX) copy keeps and the log counts (measured: 206 bytes for the stream-level
            // 400, where the wire's `connection: close` alone would not count).
            let stored_close = matches!(flavor, ErrorFlavor::Stream { .. })
                && http1::errors::builtin(status).is_some_and(|e| e.closes)
                && http1::builtin_error(status, flavor).as_deref() == Some(&bytes[..]);
            error_htx(&bytes) + if stored_close { 15 } else { 0 }
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
/// Both count the body's HTX size for the logs (see [`Codec::take_htx`]).
enum Codec {
    Raw(BodyFramer, u64),
    /// With the trailer line being read.
    Chunked(BodyFramer, u64, Vec<u8>),
}

impl Codec {
    fn new(kind: BodyKind, dir: Direction) -> Codec {
        match kind {
            BodyKind::Chunked => {
                Codec::Chunked(BodyFramer::new(BodyKind::Chunked, dir), 0, Vec::new())
            }
            k => Codec::Raw(BodyFramer::new(k, dir), 0),
        }
    }

    /// The body's size in HAProxy's internal form since the last call (`%B`/`%U` count it):
    /// the data bytes; for a chunked body also each trailer's name and value, and 1 for its
    /// end-of-trailers block.
    fn take_htx(&mut self) -> u64 {
        match self {
            Codec::Raw(_, n) | Codec::Chunked(_, n, _) => std::mem::take(n),
        }
    }

    /// Consumes body bytes of `input`, appending what is to be sent to `out`.
    fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<http1::body::Step, http1::HttpError> {
        match self {
            Codec::Raw(f, htx) => {
                let step = f.advance(input)?;
                out.extend_from_slice(&input[..step.consumed]);
                *htx += step.consumed as u64;
                Ok(step)
            }
            Codec::Chunked(f, htx, tline) => {
                use http1::body::BodyEvent;
                let mut data: Vec<u8> = Vec::new();
                let flush = |data: &mut Vec<u8>, out: &mut Vec<u8>| {
                    if !data.is_empty() {
                        http1::serialize::write_chunk(out, data);
                        data.clear();
                    }
                };
                let step = f.advance_events(input, |ev| match ev {
                    BodyEvent::Data(r) => {
                        *htx += r.len() as u64;
                        data.extend_from_slice(&input[r])
                    }
                    BodyEvent::LastChunk => {
                        flush(&mut data, out);
                        out.extend_from_slice(b"0\r\n");
                    }
                    BodyEvent::TrailerByte(b) => {
                        tline.push(b);
                        out.push(b)
                    }
                    BodyEvent::TrailerEol => {
                        *htx += trailer_htx(tline);
                        tline.clear();
                        out.extend_from_slice(b"\r\n")
                    }
                    BodyEvent::End => {
                        *htx += 1;
                        out.extend_from_slice(b"\r\n")
                    }
                })?;
                flush(&mut data, out);
                Ok(step)
            }
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Codec::Raw(f, _) => f.is_done(),
            Codec::Chunked(f, ..) => f.is_done(),
        }
    }

    /// The peer closed: fine for a close-delimited body (or a finished one).
    fn on_eof(&mut self) -> bool {
        match self {
            Codec::Raw(f, _) => f.on_eof().is_ok(),
            Codec::Chunked(f, ..) => f.is_done(),
        }
    }
}

/// A trailer line's HTX size: name and trimmed value.
fn trailer_htx(line: &[u8]) -> u64 {
    let Some(p) = line.iter().position(|&b| b == b':') else {
        return line.len() as u64;
    };
    let v = &line[p + 1..];
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    let s = v.iter().position(|b| !ws(b)).unwrap_or(v.len());
    let e = v.iter().rposition(|b| !ws(b)).map_or(s, |x| x + 1);
    (p + e - s) as u64
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
    /// The server a valid persistence cookie chose, and the request's method for the
    /// response-side cookie handling.
    ck_direct: Option<usize>,
    ck_method: &'static [u8],
    /// `capture cookie`: `%CC` and `%CS`.
    cookie_req: Option<Vec<u8>>,
    cookie_res: Option<Vec<u8>>,
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
            ck_direct: None,
            ck_method: b"",
            cookie_req: None,
            cookie_res: None,
            vars: None,
        }
    }

    fn set_term(&mut self, cause: u8, phase: u8) {
        // The last two characters are the persistence cookie's (set separately).
        if self.term[..2] == *b"--" {
            let t = logging::term(cause, phase);
            self.term[..2].copy_from_slice(&t[..2]);
        }
    }
}

/// `%B` of an error response HAProxy generates: the HTX size of the message (as for a
/// server's response; the `Connection` header it may add for the client does not count:
/// measured 217 for the built-in 503 whether the client was kept alive or not).
pub(super) fn error_htx(wire: &[u8]) -> u64 {
    let Some(end) = wire.windows(4).position(|x| x == b"\r\n\r\n") else {
        return wire.len() as u64;
    };
    let mut lines = wire[..end].split(|&c| c == b'\n');
    let first = lines.next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let mut parts = first.splitn(3, |&c| c == b' ');
    let (v, st, r) = (parts.next(), parts.next(), parts.next());
    let start = [v, st, r].map(|p| p.map_or(0, |p| p.len()));
    let headers: Vec<http1::Header> = lines
        .filter_map(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            let p = l.iter().position(|&c| c == b':')?;
            let v = &l[p + 1..];
            let ws = |c: &u8| *c == b' ' || *c == b'\t';
            let a = v.iter().position(|c| !ws(c)).unwrap_or(v.len());
            let b = v.iter().rposition(|c| !ws(c)).map_or(a, |x| x + 1);
            Some(http1::Header::new(&l[..p], &v[a..b.max(a)]))
        })
        .collect();
    htx_head(start, &headers) + (wire.len() - end - 4) as u64
}

/// HAProxy's internal (HTX) size of a received message head, which `%U`/`%B` count (measured
/// on 2.6.12): 20 bytes of start-line structure plus its three parts, each header's name and
/// value, and 1 for the end of headers. `Connection` loses its `close`/`keep-alive` tokens
/// (and disappears when none is left); later rewrites (`X-Forwarded-For`) do not count.
fn htx_head(parts: [usize; 3], headers: &[http1::Header]) -> u64 {
    let mut n = 21 + parts.iter().sum::<usize>();
    for h in headers {
        if h.is("connection") {
            let kept: Vec<&[u8]> = http1::message::list_elements(&h.value)
                .filter(|t| {
                    !t.is_empty()
                        && !t.eq_ignore_ascii_case(b"close")
                        && !t.eq_ignore_ascii_case(b"keep-alive")
                })
                .collect();
            if !kept.is_empty() {
                n += h.name.len() + kept.iter().map(|t| t.len()).sum::<usize>();
                n += 2 * (kept.len() - 1);
            }
        } else {
            n += h.name.len() + h.value.len();
        }
    }
    n as u64
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

/// What the `capture` rules of the transaction captured, into its logged captures.
fn merge_captures(
    vars: &Option<Arc<std::sync::Mutex<crate::acl::Vars>>>,
    res: bool,
    into: &mut Option<Vec<Option<Vec<u8>>>>,
) {
    let (Some(v), Some(caps)) = (vars, into.as_mut()) else {
        return;
    };
    let v = v.lock().unwrap_or_else(|e| e.into_inner());
    for (r, idx, b) in &v.captures {
        if *r == res {
            if let Some(slot) = caps.get_mut(*idx) {
                *slot = Some(b.clone());
            }
        }
    }
}

impl Drop for TxnLog {
    fn drop(&mut self) {
        self.emit(false);
    }
}

impl TxnLog {
    /// Logs the transaction (once: `first_byte` is taken). `asap` (`option logasap`): at
    /// response-head time, with `+` before `%B %Ta %Tt %Tu`, `%U` still 0 (measured).
    fn emit(&mut self, asap: bool) {
        let Some(first) = self.first_byte.take() else {
            return;
        };
        self.count();
        // The stick counters end the request; `set-log-level silent` is read in the same lock.
        let silent = self.vars.as_ref().is_some_and(|v| {
            let mut v = v.lock().unwrap_or_else(|e| e.into_inner());
            v.stk
                .end_request(self.status, self.bytes_in, self.bytes_out);
            v.silent
        });
        let Some(l) = self.fe.log() else {
            return;
        };
        if silent {
            return;
        }
        let end = clock::now();
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
            srv_queue: self.cs.srv_queue_pos,
            backend_queue: self.cs.be_queue_pos,
            frontend: Arc::from(self.fe.name.as_str()),
            backend: be
                .map(|b| Arc::from(b.name.as_str()))
                .or_else(|| self.cs.applet.map(|_| Arc::from(self.fe.name.as_str()))),
            server: match (be, self.cs.server) {
                (Some(b), Some(i)) => Some(Arc::from(b.servers[i].name.as_str())),
                _ => self.cs.applet.map(Arc::from),
            },
            client: Some(self.acc.client.sock_addr()),
            frontend_addr: self.acc.orig_dst.map(|o| o.sock_addr()),
            backend_src: self.cs.local_addr,
            server_addr: self.cs.server_addr,
            req_captures: self.captures.take(),
            // A request without a response head (a local answer, an error): HAProxy logs the
            // empty slots (none for a request that could not be parsed).
            res_captures: self.res_captures.take().or_else(|| {
                let n = self.fe.proxy.capture_response.len();
                (n > 0 && self.request_line.is_some()).then(|| vec![None; n])
            }),
            cookie_req: self.cookie_req.take(),
            cookie_res: self.cookie_res.take(),
            request_line: self.request_line.take(),
            term_state: self.term,
            logasap: asap,
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
    /// `option abortonclose`: the client closed before the response head came.
    ClientAbort,
}

/// The client side of a session, kept between transactions. An idle keep-alive connection
/// holds only this (in the small [`session`] future): each transaction runs in a boxed future
/// that is freed once its response is sent.
struct ClientConn {
    fe: Arc<Frontend>,
    acc: Accepted,
    client: LazyTcp,
    cbuf: Vec<u8>,
    /// Private idle server connections (`http-reuse never`) kept for this session's next
    /// requests, and their backend.
    idle: IdleConns,
    /// The backend and `set-dst` destination the private idle connections were made for
    /// (boxed: set only with private connections, and an idle session keeps this field).
    idle_for: Option<Box<(Arc<Backend>, Option<SocketAddr>)>>,
    /// Allocated only when the configuration has rules (they may set variables).
    vars: Option<Arc<std::sync::Mutex<crate::acl::Vars>>>,
    first: bool,
    /// The shard of the server pools this session uses ([`super::srvpool::session_shard`]).
    shard: u8,
    /// The end of the previous transaction (or the accept): the start of the next one. Its
    /// date is derived from the accept date ([`Accepted::utc_at`]).
    txn_start: Instant,
}

impl Drop for ClientConn {
    fn drop(&mut self) {
        // The input buffer goes back to the pool (a `Connection: close` session ends with it).
        bufpool::release_any(&mut self.cbuf);
    }
}

/// What comes after a transaction.
enum Flow {
    Next,
    End,
}

fn head_timeouts(fe: &Frontend) -> http1::HeadTimeouts {
    http1::HeadTimeouts {
        client: fe.client_timeout,
        http_request: fe.http_request_timeout,
        http_keep_alive: fe.http_keep_alive_timeout,
    }
}

/// The session of an accepted client connection. Not an `async fn`: the arguments are moved
/// into the [`ClientConn`] before the future is made, so the future does not keep them twice.
pub fn session(
    fe: Arc<Frontend>,
    client: LazyTcp,
    acc: Accepted,
    vars: Option<Box<crate::acl::Vars>>,
) -> impl Future<Output = ()> + Send {
    if let Some(be) = &fe.backend {
        be.cum_conns
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    // The connection rules' variables carry only their stick counters: kept when there are
    // some, or when request rules need the variables anyway.
    let vars = match vars {
        Some(v) if fe.rules.any_http || !v.stk.is_empty() => {
            Some(Arc::new(std::sync::Mutex::new(*v)))
        }
        _ => fe.rules.any_http.then(Arc::default),
    };
    let c = ClientConn {
        fe,
        acc,
        client,
        cbuf: Vec::new(),
        idle: IdleConns(Vec::new()),
        idle_for: None,
        vars,
        first: true,
        shard: super::srvpool::session_shard(),
        txn_start: acc.accept_at,
    };
    Serve {
        c: Some(c),
        st: ServeState::Next(None),
    }
}

/// The session's future, written by hand so that an idle connection holds no more than its
/// [`ClientConn`] and its timer: a transaction runs in a boxed future that owns the
/// `ClientConn` meanwhile (and the soft-stop watch it needs), freed once its response is sent.
pub(super) struct Serve {
    /// `None` while a transaction owns it.
    c: Option<ClientConn>,
    st: ServeState,
}

enum ServeState {
    /// A transaction when something is buffered, else a wait for the next request. With
    /// the time the wait read the first bytes of the request.
    Next(Option<Instant>),
    /// The wait for the first request and the keep-alive wait between requests, with their
    /// timeouts, soft stop (`idle_wait`: between requests) and logs, as the head reading loop
    /// of [`transaction`] would. The read is the one the transaction would do (no extra
    /// syscall), into a pooled buffer: an idle connection holds none. Soft stop wakes the
    /// task through its registry entry ([`super::admin::idle_poll`]).
    Wait {
        sleep: Option<tokio::time::Sleep>,
        idle_wait: bool,
    },
    /// A transaction (or a 408 answer), which gives the connection back.
    Busy(BoxFuture<'static, (ClientConn, Flow)>),
}

impl Future for Serve {
    type Output = ();
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        use std::pin::Pin;
        use std::task::Poll;
        let _now = clock::freeze();
        // SAFETY: only `st` is structurally pinned (its `Sleep`): it is never moved, only
        // replaced in place with `Pin::set`; `c` is not pinned; `Serve` has no `Drop`.
        let this = unsafe { self.get_unchecked_mut() };
        let mut st = unsafe { Pin::new_unchecked(&mut this.st) };
        loop {
            // SAFETY: as above (a projection of the pinned state, nothing moved out).
            match unsafe { st.as_mut().get_unchecked_mut() } {
                ServeState::Next(first_byte_at) => {
                    let first_byte_at = *first_byte_at;
                    let Some(c) = this.c.as_mut() else {
                        return Poll::Ready(());
                    };
                    if !c.cbuf.is_empty() {
                        // Read by the wait, or left by the previous request (pipelining).
                        let Some(mut c) = this.c.take() else {
                            return Poll::Ready(());
                        };
                        st.set(ServeState::Busy(BoxFuture::new_with(move || async move {
                            let mut stop = super::stop_watch();
                            let flow = transaction(&mut c, &mut stop, first_byte_at).await;
                            (c, flow)
                        })));
                        continue;
                    }
                    let (tmo, _) = http1::head_wait(c.first, 0, &head_timeouts(&c.fe));
                    let idle_wait = !c.first;
                    if idle_wait && super::is_stopping() && !c.fe.idle_close_on_response {
                        return Poll::Ready(());
                    }
                    bufpool::release(&mut c.cbuf);
                    st.set(ServeState::Wait {
                        sleep: tmo.map(|t| tokio::time::sleep_until(clock::now() + t)),
                        idle_wait,
                    });
                }
                ServeState::Wait { sleep, idle_wait } => {
                    let Some(c) = this.c.as_mut() else {
                        return Poll::Ready(());
                    };
                    match bufpool::poll_read_pooled(&mut &c.client, cx) {
                        Poll::Ready(Ok(b)) if !b.is_empty() => {
                            c.cbuf = b;
                            st.set(ServeState::Next(Some(clock::now())));
                            continue;
                        }
                        Poll::Ready(r) => {
                            // HAProxy answers and logs an empty connection too, but not a
                            // kept-alive one closed between requests.
                            if c.first && !c.fe.ignore_probes {
                                let Some(mut c) = this.c.take() else {
                                    return Poll::Ready(());
                                };
                                let now = Some(clock::now());
                                if r.is_err() {
                                    // Reset: logged, nothing to answer.
                                    drop(early_txn(&c, 400, b'C', now));
                                    return Poll::Ready(());
                                }
                                st.set(ServeState::Busy(BoxFuture::new_with(move || async move {
                                    answer_early(&mut c, 400, b'C', now).await;
                                    (c, Flow::End)
                                })));
                                continue;
                            }
                            return Poll::Ready(());
                        }
                        Poll::Pending => {}
                    }
                    if let Some(s) = sleep.as_mut() {
                        // SAFETY: `sleep` is part of the pinned state (see above).
                        if unsafe { Pin::new_unchecked(s) }.poll(cx).is_ready() {
                            // `timeout http-request` before a first request: a logged 408
                            // (none under `option http-ignore-probes`); a keep-alive wait
                            // ends silently.
                            if !c.first || c.fe.ignore_probes {
                                return Poll::Ready(());
                            }
                            let Some(mut c) = this.c.take() else {
                                return Poll::Ready(());
                            };
                            st.set(ServeState::Busy(BoxFuture::new_with(move || async move {
                                answer_early(&mut c, 408, b'c', None).await;
                                (c, Flow::End)
                            })));
                            continue;
                        }
                    }
                    if *idle_wait
                        && !c.fe.idle_close_on_response
                        && super::admin::idle_poll(cx).is_ready()
                    {
                        return Poll::Ready(());
                    }
                    return Poll::Pending;
                }
                ServeState::Busy(f) => {
                    let (c, flow) = std::task::ready!(Pin::new(f).poll(cx));
                    this.c = Some(c);
                    match flow {
                        Flow::Next => st.set(ServeState::Next(None)),
                        Flow::End => return Poll::Ready(()),
                    }
                }
            }
        }
    }
}

/// The log of a connection that ends before a request: `status`, termination `cause` then
/// `R`, its first byte at `first` (the start when `None`).
fn early_txn(c: &ClientConn, status: u16, cause: u8, first: Option<Instant>) -> TxnLog {
    let mut txn = TxnLog::new(&c.fe, &c.acc, c.txn_start, c.acc.utc_at(c.txn_start));
    txn.vars = c.vars.clone();
    txn.first_byte = Some(first.unwrap_or(txn.start));
    txn.status = status as i32;
    txn.set_term(cause, b'R');
    txn
}

/// [`early_txn`] with HAProxy's page for `status`, logged once sent: a 408 when `timeout
/// http-request` expired before a request; a 400 for a first connection closed before any
/// byte (HAProxy 2.6 logs `CR--` 400 `<BADREQ>` with 0 bytes and still sends the page, which a
/// client that only shut its side down reads; measured).
async fn answer_early(c: &mut ClientConn, status: u16, cause: u8, first: Option<Instant>) {
    let _txn = early_txn(c, status, cause, first);
    let mut cw: ClientW<'_> = &c.client;
    send_error(&mut cw, status, ErrorFlavor::Mux, &c.fe, None).await;
}

/// One request and its response (or the answer of the rules, the stats page or an error).
async fn transaction(
    c: &mut ClientConn,
    stop: &mut watch::Receiver<bool>,
    first_byte_at: Option<Instant>,
) -> Flow {
    let ClientConn {
        fe,
        acc: acc_slot,
        client,
        cbuf,
        idle,
        idle_for,
        vars,
        first,
        shard,
        txn_start,
    } = c;
    let shard = *shard as usize;
    let (mut client_r, mut client_w): (ClientR<'_>, ClientW<'_>) = (&*client, &*client);
    let (cr, cw) = (&mut client_r, &mut client_w);
    let fe: &Arc<Frontend> = fe;
    let vars = &*vars;
    let mut acc: Accepted = *acc_slot;
    let limits = fe.limits;
    let head_to = head_timeouts(fe);
    let mut client_ip = unmap(acc.client.ip());
    // `balance source` hashes the address as accepted: on a `:::port v4v6` listener an IPv4
    // client is `::ffff:a.b.c.d` and HAProxy hashes it as IPv6 (facts §3.4).
    let mut lb_ip = acc.client.ip();
    let mut txn = TxnLog::new(fe, &acc, *txn_start, acc.utc_at(*txn_start));
    txn.vars = vars.clone();
    if !cbuf.is_empty() {
        // Read by `wait_request`, or left by the previous request (pipelining).
        txn.first_byte = Some(first_byte_at.unwrap_or(*txn_start));
    }
    // ---- request head
    let mut req = loop {
        match http1::parse_request(cbuf, &limits) {
            Ok(Parsed::Complete(r)) => break r,
            Ok(Parsed::H2Preface) => return Flow::End,
            Err(e) => {
                txn.status = e.status as i32;
                txn.set_term(b'P', b'R');
                send_error(&mut *cw, e.status, ErrorFlavor::Mux, fe, None).await;
                return Flow::End;
            }
            Ok(Parsed::Partial) => {}
        }
        let (tmo, on_to) = http1::head_wait(*first, cbuf.len(), &head_to);
        // `option idle-close-on-response`: a soft stop does not end the wait.
        let idle_wait = cbuf.is_empty() && !*first && !fe.idle_close_on_response;
        if idle_wait && super::is_stopping() {
            return Flow::End;
        }
        let r = tokio::select! {
            r = read_more(&mut *cr, &mut *cbuf, tmo) => r,
            _ = stop.changed(), if idle_wait => return Flow::End,
        };
        match r {
            Ok(0) | Err(IoEnd::Io) => {
                if *first {
                    // HAProxy logs an empty connection too (`CR--` 400 `<BADREQ>`), but
                    // not a kept-alive one closed between requests.
                    txn.first_byte.get_or_insert_with(clock::now);
                }
                txn.status = 400;
                txn.set_term(b'C', b'R');
                txn.bytes_in = cbuf.len() as u64;
                // A client that only shut its side down still reads HAProxy's 400 page (the
                // log keeps 0 bytes, as HAProxy's).
                let quiet = fe.ignore_probes && cbuf.is_empty();
                if matches!(r, Ok(0)) && txn.first_byte.is_some() && !quiet {
                    send_error(&mut *cw, 400, ErrorFlavor::Mux, fe, None).await;
                }
                return Flow::End;
            }
            Ok(_) => {
                txn.first_byte.get_or_insert_with(clock::now);
            }
            Err(IoEnd::Timeout) => {
                if on_to == OnHeadTimeout::Send408 {
                    txn.first_byte.get_or_insert(txn.start);
                    txn.status = 408;
                    txn.set_term(b'c', b'R');
                    send_error(&mut *cw, 408, ErrorFlavor::Mux, fe, None).await;
                }
                return Flow::End;
            }
        }
    };
    // HAProxy's "not first" request of the client session (`http-reuse safe`).
    let first_of_session = std::mem::replace(first, false);
    txn.head_done = Some(clock::now());
    txn.bytes_in = htx_head([req.method.len(), req.uri.len(), 8], &req.headers);
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
        if let Some(c) = &fe.proxy.capture_cookie {
            let (name, len) = &c.value;
            txn.cookie_req = super::persist::capture_request(&req.headers, name, *len);
        }
    }
    cbuf.drain(..req.head_len);
    if fe.buffer_request && !matches!(req.body, BodyKind::None | BodyKind::Length(0)) {
        if !buffer_body(&mut *cr, &mut *cbuf, req.body, &txn, fe).await {
            return body_timeout(&mut txn, &mut *cw, fe).await;
        }
        // `%TR` runs until the body is in (measured).
        txn.head_done = Some(clock::now());
    }

    // `monitor-uri`: answered here (200, or 503 when a `monitor fail` condition holds),
    // before any rule, and not logged (as HAProxy).
    if fe
        .proxy
        .monitor_uri
        .as_ref()
        .is_some_and(|m| req.uri == m.value.as_bytes())
    {
        fe.ctr
            .intercepted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let status = if super::rules::monitor_fails(fe, &acc, &req) {
            503
        } else {
            200
        };
        let plan = http1::plan_request(&req, fe.http.mode, fe.http.mode);
        let no_body = matches!(req.body, BodyKind::None | BodyKind::Length(0));
        let keep = plan.client_keep_alive && no_body && !super::is_stopping();
        let flavor = ErrorFlavor::Stream { close: !keep };
        send_error(&mut *cw, status, flavor, fe, None).await;
        txn.first_byte = None;
        if !keep {
            return Flow::End;
        }
        *txn_start = clock::now();
        return Flow::Next;
    }

    let verdict = match &vars {
        Some(vars) => {
            let mut v = vars.lock().unwrap_or_else(|e| e.into_inner());
            v.new_transaction();
            v.stk.http_req();
            super::rules::on_request(fe, &acc, &mut req, &mut v)
        }
        None => super::rules::ReqVerdict::Forward(fe.backend.clone()),
    };
    merge_captures(vars, false, &mut txn.captures);
    let chosen = match verdict {
        super::rules::ReqVerdict::Forward(b) => b,
        v => {
            if Box::pin(answer_locally(fe, &mut *cw, &req, v, &mut txn)).await {
                drop(txn);
                *txn_start = clock::now();
                return Flow::Next;
            }
            return Flow::End;
        }
    };
    // The stats page (`stats uri`) answers here instead of a server.
    if let Some(page) = super::stats_page::target(fe, chosen.as_deref(), &req.uri) {
        let io = (&mut *cbuf, &mut *cr, &mut *cw);
        let at = (&acc, chosen.as_deref());
        let r = Box::pin(super::stats_page::serve(page, fe, &req, io, at)).await;
        (txn.status, txn.bytes_out) = (r.status as i32, r.bytes_out);
        applet_log(&mut txn, "<STATS>");
        if !r.keep_alive {
            return Flow::End;
        }
        *txn_start = clock::now();
        return Flow::Next;
    }

    let Some(be) = chosen else {
        txn.status = 503;
        txn.set_term(b'S', b'C');
        txn.bytes_out =
            send_error(&mut *cw, 503, ErrorFlavor::Stream { close: true }, fe, None).await;
        return Flow::End;
    };
    txn.be = Some(Arc::clone(&be));
    // Idle server connections belong to the backend of the previous request (server
    // indexes are per backend): a request switched elsewhere by `use_backend` drops them.
    // `http-request set-dst[-port]` changes where address-less servers connect (and makes
    // idle connections to the old destination unusable).
    let (set_dst, set_src) = vars.as_ref().map_or((None, None), |v| {
        let v = v.lock().unwrap_or_else(|e| e.into_inner());
        (v.dst, v.src)
    });
    // `http-request set-src[-port]`: the client address of the connection from now on (logs,
    // `X-Forwarded-For`, `balance source`, `usesrc clientip`).
    if let Some(a) = set_src {
        if a != acc.client.sock_addr() {
            acc.client = crate::tproxy::addr::ClientAddr(a);
            acc_slot.client = acc.client;
            txn.acc.client = acc.client;
            client_ip = unmap(a.ip());
            lb_ip = a.ip();
        }
    }
    let idle_matches = |f: &Option<Box<(Arc<Backend>, Option<SocketAddr>)>>| {
        f.as_ref()
            .is_some_and(|f| Arc::ptr_eq(&f.0, &be) && f.1 == set_dst)
    };
    if !idle.0.is_empty() && !idle_matches(idle_for) {
        for c in idle.0.drain(..) {
            c.close_reset();
        }
    }
    let be_active = BeActive::new(&be);
    let mut plan = http1::plan_request(&req, fe.http.mode, be.http.mode);
    if super::is_stopping() {
        plan.client_keep_alive = false;
    }
    let no_body = matches!(req.body, BodyKind::None | BodyKind::Length(0));
    if be.buffer_request && !fe.buffer_request && !no_body {
        if !buffer_body(&mut *cr, &mut *cbuf, req.body, &txn, fe).await {
            return body_timeout(&mut txn, &mut *cw, fe).await;
        }
        txn.head_done = Some(clock::now());
    }

    // ---- server choice and connection
    let ck = be.persist.as_ref().map(|p| {
        let c = p.on_request(&mut req, |i| {
            be.servers[i].up.load(std::sync::atomic::Ordering::Acquire)
        });
        if p.logged() {
            txn.term[2] = c.state;
            txn.term[3] = b'N';
        }
        txn.ck_method = match &req.method[..] {
            b"GET" | b"HEAD" => b"GET",
            b"POST" => b"POST",
            _ => b"",
        };
        txn.ck_direct = c.server;
        c
    });
    let hl = |name: &[u8]| first_header(&req, name);
    let key = RequestKey::http(Some(lb_ip), &req.uri, Headers::Lookup(&hl));
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
    let tq = clock::now();
    // `option prefer-last-server`: the server of an idle connection of this session; with a
    // private connection made so by NTLM (the only ones a session keeps unless `http-reuse
    // never`), even without the option.
    let last = if be.prefer_last || (be.reuse != ReuseMode::Never && be.last_ok) {
        idle.0
            .iter()
            .map(|c| c.srv)
            .find(|&i| super::admin::usable(&be.servers[i]))
    } else {
        None
    };
    // `stick match|on|store-request` (a persistence cookie comes first).
    let sticky = (!be.proxy.stick_rules.is_empty()).then(|| {
        let g = vars
            .as_ref()
            .map(|v| v.lock().unwrap_or_else(|e| e.into_inner()));
        let c = super::rules::ctx(fe, &acc, Some(&be.name), Some(&req), None, g.as_deref());
        super::stkctr::stick_request(&be, &c)
    });
    let direct = ck
        .and_then(|c| c.server)
        .or(sticky.as_ref().and_then(|s| s.server));
    let assign = async {
        match direct.or(last) {
            Some(i) => be.assign_server(i, &mut txn.cs).await,
            None => be.assign_with(&key, None, &mut txn.cs).await,
        }
    };
    let abortonclose = be.abortonclose && fe.abortonclose;
    let assigned = if abortonclose {
        tokio::select! {
            r = assign => Some(r),
            () = client_fin(&mut *cr, &mut *cbuf) => None,
        }
    } else {
        Some(assign.await)
    };
    txn.cs.queue_ms = logging::ms_between(tq, clock::now());
    let Some(assigned) = assigned else {
        // `option abortonclose`: the client closed while its request waited for a server
        // (HAProxy 2.6: no answer, logged `CQ` with status -1).
        txn.status = -1;
        txn.set_term(b'C', b'Q');
        return Flow::End;
    };
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
                    &mut *cw,
                    503,
                    ErrorFlavor::Stream { close: !keep },
                    fe,
                    Some(&be),
                )
                .await;
                if keep {
                    return Flow::Next;
                }
                return Flow::End;
            }
            None
        }
    };
    // The session's private connections first, then the server's pool.
    let mut reused = None;
    if let Some(s) = &slot {
        let k = conn_key(&be, s.srv, &ctx, hip);
        while let Some(pos) = idle.0.iter().position(|c| c.srv == s.srv && c.key == k) {
            let c = idle.0.remove(pos);
            if c.still_usable() {
                let mut c = c;
                s.server().pool.mark_used(&mut c);
                reused = Some(c);
                break;
            }
            c.close_reset();
        }
        if reused.is_none() {
            let lists = Lists::for_request(be.reuse, first_of_session);
            reused = s.server().pool.take(&k, lists, shard);
        }
        // Above `tune.pool-high-fd-ratio`: one idle connection of the server closes, reused
        // or not (HAProxy 2.6's connect).
        if super::fds::above_high() {
            s.server().pool.kill_one(shard);
        }
    }
    let conn = match reused {
        Some(c) => {
            txn.cs.connect_ms = 0;
            txn.cs.reused = true;
            txn.cs.server_addr = c.peer;
            txn.cs.local_addr = c.local;
            Ok((c, slot, true))
        }
        None => match BoxFuture::new_with(|| connect_for(&be, &key, ctx, hip, slot, &mut txn.cs))
            .await
        {
            Ok((s, sl)) => {
                let srv = sl.as_ref().map(|x| x.srv).unwrap_or(usize::MAX);
                // The local address (`%bi:%bp`) costs a getsockname: only when logged.
                if logged {
                    txn.cs.local_addr = s.local_addr().ok();
                }
                Ok((new_conn(&be, s, srv, &txn.cs, &ctx, hip), sl, false))
            }
            Err(status) => Err(status),
        },
    };
    let (sc0, mut slot, mut was_reused) = match conn {
        Ok(x) => {
            if let (Some(st), Some(s)) = (&sticky, &x.1) {
                st.store(&be, s.srv);
            }
            x
        }
        Err(status) => {
            let keep = plan.client_keep_alive && no_body;
            txn.status = status as i32;
            let cause = match status {
                500 => b'R',
                _ if txn.cs.connect_timed_out => b's',
                _ => b'S',
            };
            txn.set_term(cause, b'C');
            txn.bytes_out = send_error(
                &mut *cw,
                status,
                ErrorFlavor::Stream { close: !keep },
                fe,
                Some(&be),
            )
            .await;
            if keep {
                return Flow::Next;
            }
            return Flow::End;
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
    let xot = be
        .http
        .originalto
        .as_ref()
        .or(fe.http.originalto.as_ref())
        .zip(acc.orig_dst.map(|d| d.sock_addr().ip()));
    http1::rewrite_request_for_server(&mut req, plan, client_ip, ff, xot);
    let mut head = bufpool::Pooled::new();
    let wopts = WriteOpts {
        adjust_case: be.adjust_case_server,
        ..Default::default()
    };
    http1::write_request_head(&mut head, &req, wopts);
    let info = req.info();
    let req_11 = req.version.is_11();

    let outcome = loop {
        let mut rq_framer = Codec::new(req.body, Direction::Request);
        let mut out = bufpool::Pooled::new();
        out.extend_from_slice(&head);
        match rq_framer.feed(cbuf, &mut out) {
            Ok(step) => {
                cbuf.drain(..step.consumed);
                if !step.done && fe.smart_accept {
                    // The body is still to come: acknowledge it at once again (HAProxy
                    // 2.6), or a client waiting for the ACK of what it sent would wait for
                    // the kernel's delayed ACK.
                    let _ = socket2::SockRef::from(&*client).set_tcp_quickack(true);
                }
            }
            Err(e) => {
                txn.status = e.status as i32;
                txn.set_term(b'P', b'R');
                txn.bytes_out =
                    send_error(&mut *cw, e.status, ErrorFlavor::Mux, fe, Some(&be)).await;
                return Flow::End;
            }
        }
        txn.sent = Some(clock::now());
        let Some(conn) = sc.as_mut() else {
            break RespEnd::Error(503);
        };
        if !was_reused {
            conn.drain_ready();
        }
        let write_failed = write_all(&mut conn.w, &out, be.server_timeout)
            .await
            .is_err();
        let r = if write_failed && was_reused && no_body {
            // A reused connection closed under us: try a fresh one (below).
            RespEnd::RetryableEmpty
        } else {
            // After a failed write the server may have answered (and closed) before reading
            // the request: read what it sent; an empty answer becomes a 502 there.
            // `shutdown sessions server` ends the transaction (HAProxy's `K` termination).
            let mut kill = slot.as_ref().map(|s| s.server().admin.kill_watch());
            tokio::select! {
                // Not boxed: the transaction future is already on the heap.
                r = exchange(
                    fe, &be, &mut *cr, &mut *cw, &mut *cbuf, conn, rq_framer, info, req_11, plan,
                    was_reused, &mut txn,
                ) => r,
                _ = super::admin::killed(kill.as_mut()) => {
                    txn.set_term(b'K', if txn.resp_head.is_some() { b'D' } else { b'H' });
                    RespEnd::Abort
                }
            }
        };
        if matches!(r, RespEnd::RetryableEmpty) && no_body {
            was_reused = false;
            drop(sc.take());
            match Box::pin(fresh(
                &be,
                &req,
                lb_ip,
                ctx,
                hip,
                slot.take(),
                &mut txn.cs,
                logged,
            ))
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
        break r;
    };
    match outcome {
        RespEnd::Done {
            server_reusable,
            client_keep_alive,
        } => {
            drop(slot);
            let Some(mut sc) = sc else { return Flow::Next };
            if !client_keep_alive {
                // The client's FIN goes right behind the response, before the server
                // connection is dealt with, as HAProxy orders it: a later FIN lets a fast
                // client close first, and the TIME_WAIT then lands on the client's side,
                // where its next connect() has to step over it.
                let _ = cw.shutdown().await;
            }
            sc.served += 1;
            let queue = sc.srv != usize::MAX && be.has_waiters(sc.srv);
            let reusable = server_reusable
                && plan.server_keep_alive
                && sc.srv != usize::MAX
                && !queue
                && !super::is_stopping();
            if !reusable {
                sc.close_reset();
            } else if be.reuse != ReuseMode::Never && !sc.private {
                // A shared connection leaves the session for its server's pool.
                let pool = Arc::clone(&be.servers[sc.srv].pool);
                pool.release(sc, shard);
            } else if client_keep_alive {
                // Private (`http-reuse never`, NTLM): kept by the session for its next
                // requests.
                if idle.0.len() >= MAX_SESSION_SRV_CONNS {
                    idle.0.remove(0).close_reset();
                }
                bufpool::release(&mut sc.buf);
                sc.unmark_used();
                // Exactly the room needed: an idle session keeps this vector.
                idle.0.reserve_exact(1);
                idle.0.push(sc);
                if !idle_matches(idle_for) {
                    *idle_for = Some(Box::new((Arc::clone(&be), set_dst)));
                }
            } else {
                sc.close_reset();
            }
            if !client_keep_alive {
                // The head's vectors serve the next connection's heads.
                req.recycle();
                return Flow::End;
            }
        }
        RespEnd::Tunnel => {
            let _slot = slot;
            let Some(sc) = sc else { return Flow::End };
            let tmo = tcp::tunnel_timeouts(fe, Some(&be));
            let client = tokio::io::join(&mut *cr, &mut *cw);
            // Still counted as used by its server while the tunnel lasts.
            let ServerConn {
                r,
                w,
                buf,
                used,
                fd,
                ..
            } = sc;
            let (_used, _fd) = (used, fd);
            let server = tokio::io::join(r, w);
            let st = Box::pin(forward::forward(client, server, tmo, cbuf, &buf)).await;
            txn.bytes_out += st.to_client;
            txn.bytes_in += st.to_server;
            return Flow::End;
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
                503 if txn.cs.connect_timed_out => txn.set_term(b's', b'C'),
                503 => txn.set_term(b'S', b'C'),
                _ => txn.set_term(b'S', b'H'),
            }
            txn.bytes_out = send_error(
                &mut *cw,
                status,
                ErrorFlavor::Stream { close: !keep },
                fe,
                Some(&be),
            )
            .await;
            if !keep {
                return Flow::End;
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
                &mut *cw,
                status,
                ErrorFlavor::Stream { close: true },
                fe,
                Some(&be),
            )
            .await;
            return Flow::End;
        }
        RespEnd::ClientAbort => {
            drop(slot);
            txn.status = 400;
            txn.set_term(b'C', b'H');
            txn.bytes_out = send_error(
                &mut *cw,
                400,
                ErrorFlavor::Stream { close: true },
                fe,
                Some(&be),
            )
            .await;
            return Flow::End;
        }
        RespEnd::Abort => return Flow::End,
    }
    drop(be_active);
    drop(txn);
    req.recycle();
    *txn_start = clock::now();
    Flow::Next
}

/// Answers a request the rules handled (`deny`, `return`, `redirect`, `tcp-request content
/// reject`); `true` when the client connection stays open for another request.
async fn answer_locally(
    fe: &Frontend,
    cw: &mut ClientW<'_>,
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
                super::rules::silent_drop(&**cw);
            } else {
                let _ = cw.shutdown().await;
            }
            false
        }
        ReqVerdict::Service { name, be } => {
            // `prometheus-exporter` is the one service (`config::keywords::rules::SERVICES`).
            debug_assert_eq!(name, "prometheus-exporter");
            let _ = be;
            let r = super::prometheus::serve(fe, req, cw).await;
            (txn.status, txn.bytes_out) = (r.status as i32, r.bytes_out);
            applet_log(txn, "<PROMEX>");
            r.keep_alive
        }
        ReqVerdict::Tarpit { status, be } => {
            // Held for `timeout tarpit` (else `timeout connect`), then the error page.
            let t = &fe.proxy.timeouts;
            let wait = t
                .tarpit
                .as_ref()
                .or(t.connect.as_ref())
                .map_or(0, |x| x.value);
            let t0 = clock::now();
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            // HAProxy logs the tarpit wait as `%Tw`, with `%Tq` -1 (measured).
            txn.cs.queue_ms = logging::ms_between(t0, clock::now());
            txn.head_done = None;
            txn.status = status as i32;
            txn.set_term(b'P', b'T');
            txn.bytes_out = rule_error(cw, req, status, !keep, fe, be.as_deref()).await;
            keep
        }
        ReqVerdict::Deny { status, be } => {
            super::counters::denied_request(fe, be.as_deref());
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
            // No body in the answer to a HEAD request.
            if !req.is_head() {
                head.extend_from_slice(&body);
            }
            let _ = write_all(cw, &head, fe.client_timeout).await;
            txn.bytes_out = error_htx(&head);
            if !keep {
                let _ = cw.shutdown().await;
            }
            keep
        }
    }
}

/// The error page of a rule (`deny`, `tarpit`): without its body for a HEAD request.
async fn rule_error(
    cw: &mut ClientW<'_>,
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
    let _ = write_all(cw, &bytes, fe.client_timeout).await;
    if close {
        let _ = cw.shutdown().await;
    }
    error_htx(&bytes)
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
    // The time already queued stays counted; a re-assignment (redispatch) adds to it.
    cs.queue_ms = cs.queue_ms.max(0);
    be.connect_with(key, ctx, hip, slot, cs)
        .await
        .map_err(|e| connect_status(&e))
}

/// The value of the first `name` header (case-insensitive), for the balancing key.
fn first_header<'a>(req: &'a Request, name: &[u8]) -> Option<&'a [u8]> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| &h.value[..])
}

/// A fresh connection for a request whose reused connection died; the local address is
/// asked of the kernel only when the transaction is `logged`.
#[allow(clippy::too_many_arguments)]
async fn fresh(
    be: &Arc<Backend>,
    req: &Request,
    lb_ip: IpAddr,
    ctx: ConnCtx,
    hip: Option<IpAddr>,
    slot: Option<Slot>,
    cs: &mut ConnStats,
    logged: bool,
) -> Result<(ServerConn, Option<Slot>), u16> {
    let hl = |name: &[u8]| first_header(req, name);
    let key = RequestKey::http(Some(lb_ip), &req.uri, Headers::Lookup(&hl));
    let (s, sl) = connect_for(be, &key, ctx, hip, slot, cs).await?;
    let srv = sl.as_ref().map(|x| x.srv).unwrap_or(usize::MAX);
    if logged {
        cs.local_addr = s.local_addr().ok();
    }
    Ok((new_conn(be, s, srv, cs, &ctx, hip), sl))
}

/// A 401 with `WWW-Authenticate` (407: `Proxy-Authenticate`) starting with `NTLM` or `Nego`
/// (Negotiate): the authentication binds the server connection, which HAProxy then keeps
/// private to the client session, and the session prefers that server (measured).
fn auth_binds_connection(resp: &Response) -> bool {
    let name: &[u8] = match resp.status {
        401 => b"www-authenticate",
        407 => b"proxy-authenticate",
        _ => return false,
    };
    resp.headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(|v| v.trim_ascii_start())
        .any(|v| {
            v.len() >= 4
                && (v[..4].eq_ignore_ascii_case(b"ntlm") || v[..4].eq_ignore_ascii_case(b"nego"))
        })
}

/// What a connection to server `srv` for this request is made for.
fn conn_key(be: &Backend, srv: usize, ctx: &ConnCtx, hip: Option<IpAddr>) -> Key {
    let s = be.servers.get(srv)?;
    let dst = match s.target {
        crate::config::ir::ServerTarget::Addr(_) => None,
        _ => s.address(ctx.orig_dst),
    };
    let src = match s
        .source
        .as_ref()
        .or(be.source.as_ref())
        .and_then(|p| p.usesrc.as_ref())
    {
        Some(UseSrc::ClientIp) => Some(SocketAddr::new(ctx.client.sock_addr().ip(), 0)),
        Some(UseSrc::Client) => Some(ctx.client.sock_addr()),
        Some(UseSrc::HdrIp { .. }) => hip.map(|ip| SocketAddr::new(ip, 0)),
        _ => None,
    };
    ConnKey { dst, src }.boxed()
}

/// A new connection to server `srv` (`usize::MAX`: none, `option transparent`), counted as
/// used by the server's pool.
fn new_conn(
    be: &Backend,
    s: TcpStream,
    srv: usize,
    cs: &ConnStats,
    ctx: &ConnCtx,
    hip: Option<IpAddr>,
) -> ServerConn {
    let pool = be.servers.get(srv).map(|x| &x.pool);
    ServerConn::new(s, srv, cs, conn_key(be, srv, ctx, hip), pool)
}

/// Forwards the rest of the request body (client to server) while the response is read and
/// forwarded (server to client).
#[allow(clippy::too_many_arguments)]
async fn exchange(
    fe: &Frontend,
    be: &Backend,
    cr: &mut ClientR<'_>,
    cw: &mut ClientW<'_>,
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
        private,
        ..
    } = sc;
    let mut req_done = rq_framer.is_done();
    let req_done_flag = std::sync::atomic::AtomicBool::new(req_done);
    // `option abortonclose`: once the request is sent, the client's FIN before the response
    // head aborts the transaction (HAProxy 2.6, measured: a 400 to the client, `CH`).
    let watch_fin = be.abortonclose && fe.abortonclose;
    let mut watching = watch_fin;
    let head_seen = std::sync::atomic::AtomicBool::new(false);
    let client_to = fe.client_timeout;
    let server_to = be.server_timeout;
    // Errors give the termination cause. While the response is awaited, HAProxy lets the server
    // timeout catch a stalled request body (measured: `timeout client` does not end it; the
    // server timeout gives 504 `sH`).
    let _ = client_to;
    let send_body = async {
        loop {
            if rq_framer.is_done() {
                break;
            }
            let n = read_more(cr, cbuf, None).await.map_err(|_| b'C')?;
            if n == 0 {
                return Err(b'C');
            }
            let mut out = Vec::with_capacity(cbuf.len() + 16);
            let step = rq_framer.feed(cbuf, &mut out).map_err(|_| b'C')?;
            write_all(sw, &out, server_to).await.map_err(|e| match e {
                IoEnd::Timeout => b's',
                IoEnd::Io => b'S',
            })?;
            cbuf.drain(..step.consumed);
            if step.done {
                req_done_flag.store(true, std::sync::atomic::Ordering::Relaxed);
                break;
            }
        }
        if !watch_fin {
            return Ok::<(), u8>(());
        }
        client_fin(cr, cbuf).await;
        Err(FIN_ABORT)
    };
    let response = async {
        let mut sent_any = false;
        // Response heads (1xx interim ones are forwarded as they come).
        let mut resp: Response = loop {
            match http1::parse_response(sbuf, info, &Limits::default()) {
                Ok(Parsed::Complete(r)) => {
                    if r.interim {
                        txn.bytes_out += htx_head([8, 3, r.reason.len()], &r.headers);
                        let mut h = Vec::new();
                        http1::write_response_head(&mut h, &r, client_wopts(fe));
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
        head_seen.store(true, std::sync::atomic::Ordering::Relaxed);
        if auth_binds_connection(&resp) {
            *private = true;
        }
        txn.bytes_out += htx_head([8, 3, resp.reason.len()], &resp.headers);
        txn.resp_head = Some(clock::now());
        txn.status = resp.status as i32;
        txn.res_captures = capture(&resp.headers, &fe.proxy.capture_response);
        if let Some(c) = &fe.proxy.capture_cookie {
            let (name, len) = &c.value;
            txn.cookie_res = super::persist::capture_response(&resp.headers, name, *len);
        }
        // `stick store-response`, before the response rules (HAProxy's analyser order).
        if let (true, Some(srv)) = (be.stores_response, txn.cs.server) {
            let g = txn
                .vars
                .as_ref()
                .map(|v| v.lock().unwrap_or_else(|e| e.into_inner()));
            let c = super::rules::ctx(
                fe,
                &txn.acc,
                Some(&be.name),
                None,
                Some(&resp),
                g.as_deref(),
            );
            super::stkctr::stick_response(be, &c, srv);
        }
        let verdict = match txn.vars.clone() {
            Some(vars) => {
                let mut v = vars.lock().unwrap_or_else(|e| e.into_inner());
                super::rules::on_response(fe, be, &txn.acc, &mut resp, &mut v)
            }
            None => None,
        };
        merge_captures(&txn.vars, true, &mut txn.res_captures);
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
                    super::rules::silent_drop(&**cw);
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
        if let (Some(p), Some(srv)) = (&be.persist, txn.cs.server) {
            let direct = txn.ck_direct == Some(srv);
            let st = p.on_response(&mut resp, srv, direct, txn.ck_method);
            if p.logged() {
                txn.term[3] = st;
            }
        }
        if fe.log().is_some_and(|l| l.logasap) {
            // HAProxy counts what its buffer holds of the response: the head and the body
            // bytes that came with it.
            txn.bytes_out += buffered_htx(resp.body, sbuf);
            txn.bytes_in = 0;
            txn.emit(true);
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
        // The head goes out with the body bytes already read, in one write.
        let mut out = bufpool::Pooled::new();
        http1::write_response_head(&mut out, &resp, client_wopts(fe));
        resp.recycle();
        let mut head_len = out.len();
        if tunnel {
            if let Err(e) = write_all(cw, &out, client_to).await {
                txn.set_term(client_cause(e), b'D');
                txn.bytes_out += buffered_htx(resp_body, sbuf);
                return RespEnd::Abort;
            }
            return RespEnd::Tunnel;
        }
        let mut framer = Codec::new(resp_body, Direction::Response);
        loop {
            if !sbuf.is_empty() || framer.is_done() || head_len != 0 {
                out.truncate(head_len);
                let step = match framer.feed(sbuf, &mut out) {
                    Ok(s) => s,
                    Err(_) => {
                        // A bad body: the head still goes, then the connection is cut.
                        if head_len != 0 {
                            out.truncate(head_len);
                            if let Err(e) = write_all(cw, &out, client_to).await {
                                txn.set_term(client_cause(e), b'D');
                                txn.bytes_out += buffered_htx(resp_body, sbuf);
                            }
                        }
                        return RespEnd::Abort;
                    }
                };
                if !out.is_empty() {
                    if let Err(e) = write_all(cw, &out, client_to).await {
                        txn.set_term(client_cause(e), b'D');
                        if head_len != 0 {
                            // HAProxy had received the body bytes that came with the head.
                            framer.take_htx();
                            txn.bytes_out += buffered_htx(resp_body, sbuf);
                        }
                        return RespEnd::Abort;
                    }
                }
                head_len = 0;
                txn.bytes_out += framer.take_htx();
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
    let r = {
        tokio::pin!(send_body);
        tokio::pin!(response);
        loop {
            tokio::select! {
                r = &mut send_body, if !req_done || watching => match r {
                    Ok(()) => {
                        req_done = true;
                        watching = false;
                    }
                    Err(FIN_ABORT) => {
                        req_done = true;
                        watching = false;
                        if !head_seen.load(std::sync::atomic::Ordering::Relaxed) {
                            break Ok(RespEnd::ClientAbort);
                        }
                    }
                    Err(cause) => break Err(cause),
                },
                r = &mut response => {
                    let done_now = req_done_flag.load(std::sync::atomic::Ordering::Relaxed);
                    break Ok(match r {
                        RespEnd::Done { server_reusable, client_keep_alive } => RespEnd::Done {
                            server_reusable: server_reusable && done_now,
                            client_keep_alive: client_keep_alive && done_now,
                        },
                        RespEnd::Error(st) if !done_now => RespEnd::ErrorClose(st),
                        RespEnd::RetryableEmpty if !done_now => RespEnd::ErrorClose(502),
                        other => other,
                    });
                }
            }
        }
    };
    txn.bytes_in += rq_framer.take_htx();
    match r {
        Ok(r) => r,
        Err(cause) => {
            txn.set_term(cause, b'D');
            RespEnd::Abort
        }
    }
}

/// The HTX size of the body bytes of a `kind` body at the start of `buf`.
fn buffered_htx(kind: BodyKind, buf: &[u8]) -> u64 {
    let mut c = Codec::new(kind, Direction::Response);
    let _ = c.feed(buf, &mut Vec::new());
    c.take_htx()
}

fn client_cause(e: IoEnd) -> u8 {
    match e {
        IoEnd::Timeout => b'c',
        IoEnd::Io => b'C',
    }
}

/// A request answered by the stats page or a service: HAProxy logs `fe/<STATS>` (or
/// `<PROMEX>`), `LR` and zero timers.
fn applet_log(txn: &mut TxnLog, name: &'static str) {
    txn.cs.applet = Some(name);
    txn.set_term(b'L', b'R');
    (txn.cs.queue_ms, txn.cs.connect_ms) = (0, 0);
    let now = clock::now();
    (txn.sent, txn.resp_head) = (Some(now), Some(now));
}

impl TxnLog {
    /// Counts the finished transaction in the traffic counters (`show stat`).
    fn count(&self) {
        let end = clock::now();
        let ms = |a: Instant, b: Instant| logging::ms_between(a, b);
        super::counters::finished(
            &self.fe.ctr,
            self.be.as_deref(),
            &super::counters::Finished {
                http: true,
                status: self.status,
                from_server: self.resp_head.is_some(),
                bytes_in: self.bytes_in,
                bytes_out: self.bytes_out,
                backend: self.be.is_some(),
                server: self.cs.server,
                reused: self.cs.reused,
                retries: self.cs.retries,
                term: [self.term[0], self.term[1]],
                t_queue: self.cs.queue_ms,
                t_connect: self.cs.connect_ms,
                t_response: match (self.sent, self.resp_head) {
                    (Some(a), Some(b)) => ms(a, b),
                    _ => -1,
                },
                t_total: ms(self.start, end),
            },
        );
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
    fn error_sizes_as_haproxy_logs_them() {
        for close in [false, true] {
            let flavor = ErrorFlavor::Stream { close };
            let b503 = http1::builtin_error(503, flavor).unwrap();
            let b504 = http1::builtin_error(504, flavor).unwrap();
            assert_eq!(
                (error_htx(&b503), error_htx(&b504)),
                (217, 198),
                "close {close}"
            );
        }
    }

    /// Sizes HAProxy 2.6.12 logged (`%U`, `%B`) for these messages.
    #[test]
    fn htx_head_sizes_as_measured() {
        let r = req("GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(htx_head([3, 2, 8], &r.headers), 39);
        let r = req("GET /a HTTP/1.1\r\nHost:   t  \r\nConnection: close\r\n\r\n");
        assert_eq!(htx_head([3, 2, 8], &r.headers), 39);
        let r = req("GET /a HTTP/1.1\r\nHost: t\r\nConnection: foo, close\r\nFoo: 1\r\n\r\n");
        assert_eq!(htx_head([3, 2, 8], &r.headers), 56);
        let r = req(
            "GET /a HTTP/1.1\r\nHost: 127.0.0.1:47550\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
        );
        assert_eq!(htx_head([3, 2, 8], &r.headers), 83);
        // `HTTP/1.1 200 Fine Thanks` with two headers: 81.
        let h = [
            http1::Header::new(b"Content-Length", b"0"),
            http1::Header::new(b"X-Long-Header", b"0123456789"),
        ];
        assert_eq!(htx_head([8, 3, 11], &h), 81);
        // A chunked body `3 abc` with trailer `X-T: 1`: 3 + 4 + 1 (end of trailers).
        let mut c = Codec::new(BodyKind::Chunked, Direction::Response);
        c.feed(b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", &mut Vec::new())
            .unwrap();
        assert_eq!(c.take_htx(), 8);
        assert_eq!(c.take_htx(), 0);
    }
}
