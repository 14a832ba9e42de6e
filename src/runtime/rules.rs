//! Run-time evaluation of `tcp-request`, `http-request`, `redirect`, `use_backend` and
//! `http-response` rules, in HAProxy 2.6's order:
//!
//! 1. at accept: `tcp-request connection`, then `tcp-request session` (and in TCP mode
//!    `tcp-request content`, which only sees the connection here);
//! 2. per HTTP request: the frontend's `tcp-request content`, `http-request`, `redirect`
//!    rules, then `use_backend` (first match, else `default_backend`), then the backend's
//!    `tcp-request content`, `http-request` and `redirect` rules (a `listen` runs its rules once);
//! 3. per response: the backend's `http-response` rules, then the frontend's.

use std::collections::HashMap;
use std::sync::Arc;

use super::backend::Backend;
use super::{Accepted, Frontend};
use crate::acl::fmt::Fmt;
use crate::acl::{Condition, Sample, SampleCtx, ServerState, Vars, eval};
use crate::config::ir::*;
use crate::http1::errors::ConnHeader;
use crate::http1::{Header, Request, Response};

enum Target {
    Static(Option<Arc<Backend>>),
    Dynamic(Fmt),
}

/// The per-frontend data the rules need besides the IR.
#[derive(Default)]
pub struct FeRules {
    /// `use_backend` rules before the first unconditional static one, with their targets.
    switching: Vec<(Option<Condition>, Target)>,
    /// Every backend by name (`nbsrv()`, `srv_is_up()`).
    backends: HashMap<String, Arc<Backend>>,
    /// Proxy ids by name (`fe_id`, `be_id`).
    ids: HashMap<String, u32>,
    /// Whether any rule must run on an HTTP request or response (fast path when not).
    pub any_http: bool,
}

impl FeRules {
    pub fn build(
        p: &Proxy,
        backends: &HashMap<String, Arc<Backend>>,
        ids: &HashMap<String, u32>,
    ) -> FeRules {
        let mut switching = Vec::new();
        for ub in &p.use_backends {
            match (&ub.cond, &ub.dynamic) {
                (None, None) => break,
                (c, Some(f)) => switching.push((c.clone(), Target::Dynamic(f.clone()))),
                (c, None) => switching.push((
                    c.clone(),
                    Target::Static(backends.get(&ub.backend).cloned()),
                )),
            }
        }
        let be_rules = |b: &Backend| {
            !std::ptr::eq(b.proxy.as_ref(), p)
                && (!b.proxy.http_request.is_empty()
                    || !b.proxy.http_response.is_empty()
                    || !b.proxy.redirects.is_empty()
                    || !b.proxy.tcp_request.is_empty())
        };
        let any_http = !switching.is_empty()
            || !p.http_request.is_empty()
            || !p.http_response.is_empty()
            || !p.redirects.is_empty()
            || p.tcp_request
                .iter()
                .any(|r| r.action.0 == TcpRuleKind::Content)
            || backends.values().any(|b| be_rules(b));
        FeRules {
            switching,
            backends: backends.clone(),
            ids: ids.clone(),
            any_http,
        }
    }
}

impl ServerState for FeRules {
    fn nbsrv(&self, be: &str) -> Option<u32> {
        let b = self.backends.get(be)?;
        let usable = |backup: bool| {
            b.servers
                .iter()
                .filter(|s| s.backup == backup && super::admin::usable(s))
                .count() as u32
        };
        let act = usable(false);
        Some(if act > 0 { act } else { usable(true) })
    }
    fn srv_is_up(&self, be: &str, srv: &str) -> Option<bool> {
        let b = self.backends.get(be)?;
        let s = b.servers.iter().find(|s| s.name == srv)?;
        Some(super::admin::usable(s))
    }
    fn be_conn(&self, be: &str) -> Option<u32> {
        let b = self.backends.get(be)?;
        Some(b.active.load(std::sync::atomic::Ordering::Relaxed) as u32)
    }
    fn stopping(&self) -> bool {
        super::is_stopping()
    }
}

pub fn ctx<'a>(
    fe: &'a Frontend,
    acc: &Accepted,
    be: Option<&'a str>,
    req: Option<&'a Request>,
    res: Option<&'a Response>,
    vars: Option<&'a Vars>,
) -> SampleCtx<'a> {
    let r = &fe.rules;
    SampleCtx {
        src: vars.and_then(|v| v.src).or(Some(acc.client.sock_addr())),
        dst: vars
            .and_then(|v| v.dst)
            .or(acc.orig_dst.map(|o| o.sock_addr())),
        fe_name: &fe.name,
        fe_id: r.ids.get(&fe.name).copied().unwrap_or(0),
        be_name: be,
        be_id: be.and_then(|b| r.ids.get(b).copied()),
        req,
        res,
        servers: Some(r),
        vars,
        payload: None,
        wait_end: None,
    }
}

/// `monitor fail`: whether a request to the monitor URI gets 503 (a condition holds).
pub fn monitor_fails(fe: &Frontend, acc: &Accepted, req: &Request) -> bool {
    let rules = &fe.proxy.monitor_fail;
    if rules.is_empty() {
        return false;
    }
    let be = fe.backend.as_ref().map(|b| b.name.as_str());
    let c = ctx(fe, acc, be, Some(req), None, None);
    rules.iter().any(|r| applies(&r.cond, &c))
}

fn applies(c: &Option<Condition>, ctx: &SampleCtx) -> bool {
    c.as_ref().is_none_or(|c| eval(c, ctx))
}

/// The outcome of the connection-level rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnVerdict {
    Accept,
    /// `tcp-request connection reject`: reset at once.
    Reset,
    /// `tcp-request session|content reject`: closed.
    Close,
}

/// `tcp-request connection` / `session` rules (and `content` in TCP mode) at accept.
/// Their stick counters go to `vars` (the session's).
pub fn accept_connection(fe: &Frontend, acc: &Accepted, vars: &mut Vars) -> ConnVerdict {
    let p = &fe.proxy;
    if p.tcp_request.is_empty() {
        return ConnVerdict::Accept;
    }
    let be = fe.backend.as_ref().map(|b| b.name.as_str());
    // `tcp-request content` runs later: per request in HTTP mode, after the inspection of
    // the first bytes in TCP mode (tcp_start).
    let phases = [TcpRuleKind::Connection, TcpRuleKind::Session];
    for kind in &phases {
        for r in p.tcp_request.iter().filter(|r| r.action.0 == *kind) {
            let c = ctx(fe, acc, be, None, None, Some(vars));
            if applies(&r.cond, &c) {
                match &r.action.1 {
                    TcpAction::Accept => break,
                    TcpAction::Reject if *kind == TcpRuleKind::Connection => {
                        return ConnVerdict::Reset;
                    }
                    TcpAction::Reject => return ConnVerdict::Close,
                    TcpAction::Stk(a) => {
                        let v = stk_value(a, &c);
                        stk_apply(a, v, &mut vars.stk, false, false);
                    }
                    TcpAction::SetSrc { expr, port_only } => {
                        let v = expr.value(&c);
                        if let Some(a) = new_address(v, c.src, *port_only) {
                            vars.src = Some(a);
                        }
                    }
                }
            }
        }
    }
    // The session exists from here on: counted on its trackers.
    vars.stk.sess();
    ConnVerdict::Accept
}

fn uses_payload(c: &Condition) -> bool {
    use crate::acl::fetch::Fetch;
    crate::acl::fetches(c).any(|e| {
        matches!(
            e.expr.fetch,
            Fetch::ReqLen
                | Fetch::ReqPayload(..)
                | Fetch::ReqSslHelloType
                | Fetch::ReqSslSni
                | Fetch::WaitEnd
        )
    })
}

/// Start of a TCP-mode session: waits (up to `tcp-request inspect-delay`) for the first client
/// bytes when a rule reads them (`req.ssl_sni`, `req.len`, ...), without consuming them, then
/// runs `tcp-request content` and `use_backend`. `None`: the connection is rejected.
pub async fn tcp_start(
    fe: &Frontend,
    client: &tokio::net::TcpStream,
    acc: &Accepted,
    vars: &mut Vars,
) -> Option<Option<Arc<Backend>>> {
    let mut stk_done = 0;
    let p = &fe.proxy;
    let content: Vec<&TcpRule> = p
        .tcp_request
        .iter()
        .filter(|r| r.action.0 == TcpRuleKind::Content)
        .collect();
    let wants = content
        .iter()
        .filter_map(|r| r.cond.as_ref())
        .any(uses_payload)
        || fe
            .rules
            .switching
            .iter()
            .filter_map(|(c, _)| c.as_ref())
            .any(uses_payload);
    let mut buf: Vec<u8> = Vec::new();
    let delay = p.inspect_delay.as_ref().map_or(0, |d| d.value);
    if content.is_empty() && fe.rules.switching.is_empty() {
        return Some(fe.backend.clone());
    }
    let switch_wants = fe
        .rules
        .switching
        .iter()
        .filter_map(|(c, _)| c.as_ref())
        .any(uses_payload);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(delay);
    let mut tmp = vec![0u8; if wants && delay > 0 { 16384 } else { 0 }];
    let mut eof = false;
    // Content rules are evaluated as data arrives, HAProxy's way: a rule whose answer may still
    // change with more data (MISS) waits, up to the inspection delay.
    loop {
        let fin = !wants
            || delay == 0
            || eof
            || tokio::time::Instant::now() >= deadline
            || buf.len() >= tmp.len();
        // Evaluated in a block: the sample context must not live across the await below.
        let decided: Option<Option<Option<Arc<Backend>>>> = {
            let ready = crate::acl::fetch::payload_ready(&buf);
            let incomplete = |f: &crate::acl::fetch::Fetch| {
                use crate::acl::fetch::Fetch;
                !fin && match f {
                    Fetch::WaitEnd | Fetch::ReqLen => true,
                    Fetch::ReqSslHelloType | Fetch::ReqSslSni => !ready,
                    Fetch::ReqPayload(off, len) => *len == 0 || buf.len() < off + len,
                    _ => false,
                }
            };
            let mut miss = false;
            let mut out = None;
            for (i, r) in content.iter().enumerate() {
                let c = content_ctx(fe, acc, vars, &buf, fin);
                let st = match &r.cond {
                    None => Some(true),
                    Some(cond) => crate::acl::cond::eval_partial(cond, &c, &incomplete),
                };
                match st {
                    Some(true) => match &r.action.1 {
                        TcpAction::Accept => {
                            out = Some(Some(switch(fe, &c)));
                            break;
                        }
                        TcpAction::Reject => {
                            out = Some(None);
                            break;
                        }
                        // Run once, even when the rules are evaluated again with more data.
                        TcpAction::Stk(a) if i >= stk_done => {
                            let v = stk_value(a, &c);
                            stk_apply(a, v, &mut vars.stk, true, false);
                            stk_done = i + 1;
                        }
                        TcpAction::Stk(_) => {}
                        TcpAction::SetSrc { expr, port_only } => {
                            let v = expr.value(&c);
                            if let Some(a) = new_address(v, c.src, *port_only) {
                                vars.src = Some(a);
                            }
                        }
                    },
                    Some(false) => {}
                    None => {
                        miss = true;
                        break;
                    }
                }
            }
            let c = content_ctx(fe, acc, vars, &buf, fin);
            // No rule decided: accept, once `use_backend` has the first bytes it reads.
            if out.is_none() && (fin || (!miss && (!switch_wants || ready))) {
                out = Some(Some(switch(fe, &c)));
            }
            out
        };
        if let Some(d) = decided {
            return d;
        }
        match tokio::time::timeout_at(deadline, client.peek(&mut tmp)).await {
            Ok(Ok(0)) | Ok(Err(_)) => eof = true,
            Ok(Ok(n)) => {
                if n == buf.len() {
                    // Nothing new yet: the rest of the record is on its way.
                    let _ = tokio::time::timeout_at(
                        deadline,
                        tokio::time::sleep(std::time::Duration::from_millis(2)),
                    )
                    .await;
                }
                buf.clear();
                buf.extend_from_slice(&tmp[..n]);
            }
            Err(_) => {}
        }
    }
}

/// The sample context of `tcp-request content` rules in TCP mode.
fn content_ctx<'a>(
    fe: &'a Frontend,
    acc: &Accepted,
    vars: &'a Vars,
    buf: &'a [u8],
    fin: bool,
) -> SampleCtx<'a> {
    let mut c = ctx(fe, acc, None, None, None, Some(vars));
    c.payload = Some(buf);
    c.wait_end = Some(fin);
    c
}

/// `use_backend` rules in order (dynamic names rendered now), else the default.
fn switch(fe: &Frontend, c: &SampleCtx) -> Option<Arc<Backend>> {
    for (cond, target) in &fe.rules.switching {
        if !applies(cond, c) {
            continue;
        }
        return match target {
            Target::Static(b) => b.clone(),
            // An unknown computed name ends the rules: the default backend is used.
            Target::Dynamic(f) => {
                let name = f.render(c);
                std::str::from_utf8(&name)
                    .ok()
                    .and_then(|n| fe.rules.backends.get(n).cloned())
                    .or_else(|| fe.backend.clone())
            }
        };
    }
    fe.backend.clone()
}

/// What to do with an HTTP request after the rules.
pub enum ReqVerdict {
    /// Forward to this backend (`None`: no backend, 503).
    Forward(Option<Arc<Backend>>),
    /// Answer with the error page of `status` (`deny`), termination `PR`.
    Deny {
        status: u16,
        be: Option<Arc<Backend>>,
    },
    /// Answer with a generated response (`return`, `redirect`), termination `LR`. `head` has
    /// no connection header yet (see [`finish_reply`]).
    Reply {
        status: u16,
        head: Vec<u8>,
        body: Vec<u8>,
        be: Option<Arc<Backend>>,
        /// A `deny` with its own answer (termination `PR`, not `LR`).
        deny: bool,
    },
    /// Close without answering (`tcp-request content reject`, `http-request reject`), with a
    /// reset for `silent-drop`.
    Close { reset: bool, tcp: bool },
    /// `use-service NAME`: a service of rhaproxy answers (see
    /// `config::keywords::rules::SERVICES`).
    Service {
        name: String,
        be: Option<Arc<Backend>>,
    },
    /// `tarpit`: wait, then answer with the error page of `status` and close.
    Tarpit {
        status: u16,
        be: Option<Arc<Backend>>,
    },
}

enum Step {
    Continue,
    Stop(ReqVerdict),
}

#[allow(clippy::match_overlapping_arm)]
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        100..=199 => "Informational",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        500..=599 => "Server Error",
        _ => "Other",
    }
}

/// Headers that frame the message: the body is already being forwarded by the framing read
/// from them, so rules never change them (a changed length would desynchronise the server).
fn framing(name: &str) -> bool {
    name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
}

fn set_header(headers: &mut Vec<Header>, name: &str, value: Vec<u8>, replace: bool) {
    if framing(name) {
        return;
    }
    if replace {
        headers.retain(|h| !h.is(name));
    }
    headers.push(Header {
        name: name.as_bytes().to_vec(),
        value,
    });
}

/// The `location` of a redirect, as HAProxy 2.6 builds it (measured).
fn redirect_location(r: &Redirect, req: &Request, c: &SampleCtx) -> Vec<u8> {
    let target = r.target.render(c);
    let uri = &req.uri;
    let path = crate::acl::fetch::uri_path(uri);
    let query_start = uri.iter().position(|&b| b == b'?');
    let mut path_and_query: Vec<u8> = match query_start {
        Some(q) if !r.drop_query => {
            let mut v = path.to_vec();
            v.extend_from_slice(&uri[q..]);
            v
        }
        _ => path.to_vec(),
    };
    if r.append_slash && !path.ends_with(b"/") {
        let plen = path.len();
        path_and_query.insert(plen, b'/');
    }
    match r.kind {
        RedirectKind::Location => target,
        RedirectKind::Prefix => {
            let mut out = if target == b"/" { Vec::new() } else { target };
            out.extend_from_slice(&path_and_query);
            out
        }
        RedirectKind::Scheme => {
            let mut out = target;
            out.extend_from_slice(b"://");
            if let Some(h) = req.header("host") {
                out.extend_from_slice(h);
            }
            out.extend_from_slice(&path_and_query);
            out
        }
    }
}

fn reply(status: u16, headers: &[(Vec<u8>, Vec<u8>)], body: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    for (n, v) in headers {
        head.extend_from_slice(n);
        head.extend_from_slice(b": ");
        head.extend_from_slice(v);
        head.extend_from_slice(b"\r\n");
    }
    (head, body)
}

/// `silent-drop`: close the client connection without telling the client (no FIN, no RST),
/// as HAProxy does: TCP_REPAIR when permitted, else a TTL of 1 so that the reset dies on the way.
pub fn silent_drop<F: std::os::fd::AsRawFd>(fd: &F) {
    let raw = fd.as_raw_fd();
    let one: nix::libc::c_int = 1;
    let p = &one as *const nix::libc::c_int as *const nix::libc::c_void;
    let len = std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t;
    // SAFETY: setsockopt on a socket we own with a valid int option value; dup2 puts an open
    // /dev/null descriptor in place of the socket (which closes it, silently in repair mode),
    // so the runtime's later shutdown()/close() on that number touch /dev/null, not the peer.
    unsafe {
        // First acknowledge everything the client sent (drained, then quick-ack on, as
        // HAProxy does): data left unacknowledged, which `option tcp-smart-accept` delays,
        // would be sent again to a socket that no longer exists and draw a reset.
        // Bounded: a client that keeps sending does not hold the thread here.
        let mut scratch = [0u8; 4096];
        for _ in 0..64 {
            let n = nix::libc::recv(
                raw,
                scratch.as_mut_ptr().cast(),
                scratch.len(),
                nix::libc::MSG_DONTWAIT,
            );
            if n <= 0 {
                break;
            }
        }
        let _ = nix::libc::setsockopt(raw, nix::libc::SOL_TCP, nix::libc::TCP_QUICKACK, p, len);
        if nix::libc::setsockopt(raw, nix::libc::SOL_TCP, nix::libc::TCP_REPAIR, p, len) != 0 {
            let _ = nix::libc::setsockopt(raw, nix::libc::IPPROTO_IP, nix::libc::IP_TTL, p, len);
            let _ = nix::libc::setsockopt(
                raw,
                nix::libc::IPPROTO_IPV6,
                nix::libc::IPV6_UNICAST_HOPS,
                p,
                len,
            );
        }
        let null = nix::libc::open(
            c"/dev/null".as_ptr(),
            nix::libc::O_RDWR | nix::libc::O_CLOEXEC,
        );
        if null >= 0 {
            nix::libc::dup2(null, raw);
            nix::libc::close(null);
        }
    }
}

/// Ends a generated response head: the connection header, then the blank line.
pub fn finish_reply(head: &mut Vec<u8>, conn: ConnHeader) {
    match conn {
        ConnHeader::None => {}
        ConnHeader::Close => head.extend_from_slice(b"connection: close\r\n"),
        ConnHeader::KeepAlive => head.extend_from_slice(b"connection: keep-alive\r\n"),
    }
    head.extend_from_slice(b"\r\n");
}

/// `\N` in a replacement: the N-th group of the match.
fn expand(fmt: &[u8], caps: &regex::bytes::Captures) -> Vec<u8> {
    let mut out = Vec::with_capacity(fmt.len());
    let mut i = 0;
    while i < fmt.len() {
        if fmt[i] == b'\\' && i + 1 < fmt.len() && fmt[i + 1].is_ascii_digit() {
            let n = (fmt[i + 1] - b'0') as usize;
            if let Some(m) = caps.get(n) {
                out.extend_from_slice(m.as_bytes());
            }
            i += 2;
            continue;
        }
        out.push(fmt[i]);
        i += 1;
    }
    out
}

/// The whole value replaced when the regex matches it.
fn replace_all(re: &crate::acl::matcher::Re, fmt: &[u8], v: &[u8]) -> Option<Vec<u8>> {
    re.re.captures(v).map(|caps| expand(fmt, &caps))
}

fn apply_var(vars: &mut Vars, name: &str, only: VarCond, v: Option<Sample>) {
    let Some(v) = v else {
        return;
    };
    let cur = vars.get(name);
    let go = match only {
        VarCond::Always => true,
        VarCond::IfExists => cur.is_some(),
        VarCond::IfNotExists => cur.is_none(),
        VarCond::IfEmpty => v.as_bytes().is_empty(),
        VarCond::IfNotEmpty => !v.as_bytes().is_empty(),
    };
    if go {
        vars.set(name, v);
    }
}

/// The response of a `return` action: status, head (no connection header), body.
fn build_return(a: &HttpAction, c: &SampleCtx) -> Option<(u16, Vec<u8>, Vec<u8>)> {
    let HttpAction::Return {
        status,
        content_type,
        body,
        headers,
        ..
    } = a
    else {
        return None;
    };
    let body = body.as_ref().map(|b| b.render(c)).unwrap_or_default();
    let mut hs: Vec<(Vec<u8>, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase().into_bytes(), v.render(c)))
        .collect();
    if !matches!(status, 204 | 304) {
        hs.push((
            b"content-length".to_vec(),
            body.len().to_string().into_bytes(),
        ));
    }
    if let Some(ct) = content_type {
        hs.push((b"content-type".to_vec(), ct.as_bytes().to_vec()));
    }
    let (head, body) = reply(*status, &hs, body);
    Some((*status, head, body))
}

fn run_http_rules(
    rules: &[HttpRule],
    fe: &Frontend,
    acc: &Accepted,
    be: Option<&Arc<Backend>>,
    req: &mut Request,
    vars: &mut Vars,
) -> Step {
    let be_name = be.map(|b| b.name.as_str());
    for r in rules {
        let c = ctx(fe, acc, be_name, Some(req), None, Some(vars));
        if !applies(&r.cond, &c) {
            continue;
        }
        match &r.action {
            HttpAction::Allow => return Step::Continue,
            HttpAction::Deny { status } => {
                return Step::Stop(ReqVerdict::Deny {
                    status: *status,
                    be: be.cloned(),
                });
            }
            HttpAction::Return { deny, .. } => {
                if let Some((status, head, body)) = build_return(&r.action, &c) {
                    return Step::Stop(ReqVerdict::Reply {
                        status,
                        head,
                        body,
                        be: be.cloned(),
                        deny: *deny,
                    });
                }
            }
            HttpAction::Redirect(rd) => {
                let loc = redirect_location(rd, req, &c);
                let mut hs = vec![
                    (b"content-length".to_vec(), b"0".to_vec()),
                    (b"location".to_vec(), loc),
                ];
                if matches!(rd.code, 302 | 303 | 307) {
                    hs.push((b"cache-control".to_vec(), b"no-cache".to_vec()));
                }
                let (head, body) = reply(rd.code, &hs, Vec::new());
                return Step::Stop(ReqVerdict::Reply {
                    status: rd.code,
                    head,
                    body,
                    be: be.cloned(),
                    deny: false,
                });
            }
            HttpAction::SetHeader(n, v) => {
                let v = v.render(&c);
                set_header(&mut req.headers, n, v, true);
            }
            HttpAction::AddHeader(n, v) => {
                let v = v.render(&c);
                set_header(&mut req.headers, n, v, false);
            }
            HttpAction::DelHeader(n) if !framing(n) => req.headers.retain(|h| !h.is(n)),
            HttpAction::DelHeader(_) => {}
            HttpAction::SetPath(f) => {
                let v = f.render(&c);
                let uri = &req.uri;
                let path = crate::acl::fetch::uri_path(uri);
                let start = path.as_ptr() as usize - uri.as_ptr() as usize;
                let mut u = uri[..start].to_vec();
                u.extend_from_slice(&v);
                u.extend_from_slice(&uri[start + path.len()..]);
                req.uri = u;
            }
            HttpAction::SetQuery(f) => {
                let v = f.render(&c);
                let q = req.uri.iter().position(|&b| b == b'?');
                let mut u = req.uri[..q.unwrap_or(req.uri.len())].to_vec();
                u.push(b'?');
                u.extend_from_slice(&v);
                req.uri = u;
            }
            HttpAction::SetUri(f) => req.uri = f.render(&c),
            HttpAction::SetMethod(f) => req.method = f.render(&c),
            HttpAction::SetVar { name, expr, only } => {
                let v = expr.value(&c);
                apply_var(vars, name, *only, v);
            }
            HttpAction::UnsetVar(name) => vars.unset(name),
            HttpAction::Stk(a) => {
                let v = stk_value(a, &c);
                stk_apply(a, v, &mut vars.stk, true, true);
            }
            HttpAction::Capture { expr, idx } => {
                let v = expr.value(&c);
                capture(vars, fe, false, *idx, v);
            }
            HttpAction::SetLogSilent => vars.silent = true,
            HttpAction::SetDst(e)
            | HttpAction::SetDstPort(e)
            | HttpAction::SetSrc(e)
            | HttpAction::SetSrcPort(e) => {
                let v = e.value(&c);
                let src = matches!(r.action, HttpAction::SetSrc(_) | HttpAction::SetSrcPort(_));
                let cur = if src { c.src } else { c.dst };
                let port_only = matches!(
                    r.action,
                    HttpAction::SetDstPort(_) | HttpAction::SetSrcPort(_)
                );
                let new = new_address(v, cur, port_only);
                match new {
                    Some(a) if src => vars.src = Some(a),
                    Some(a) => vars.dst = Some(a),
                    None => {}
                }
            }
            HttpAction::Replace { what, re, fmt } => {
                let f = fmt.render(&c);
                match what {
                    ReplaceWhat::Uri => {
                        if let Some(u) = replace_all(re, &f, &req.uri) {
                            req.uri = u;
                        }
                    }
                    ReplaceWhat::Path => {
                        let uri = &req.uri;
                        let path = crate::acl::fetch::uri_path(uri);
                        if let Some(np) = replace_all(re, &f, path) {
                            let start = path.as_ptr() as usize - uri.as_ptr() as usize;
                            let mut u = uri[..start].to_vec();
                            u.extend_from_slice(&np);
                            u.extend_from_slice(&uri[start + path.len()..]);
                            req.uri = u;
                        }
                    }
                    ReplaceWhat::Header(n) | ReplaceWhat::Value(n) => {
                        let per_value = matches!(what, ReplaceWhat::Value(_));
                        replace_headers(&mut req.headers, n, re, &f, per_value);
                    }
                }
            }
            HttpAction::Reject => {
                return Step::Stop(ReqVerdict::Close {
                    reset: false,
                    tcp: false,
                });
            }
            HttpAction::SilentDrop => {
                return Step::Stop(ReqVerdict::Close {
                    reset: true,
                    tcp: false,
                });
            }
            HttpAction::Tarpit { status } => {
                return Step::Stop(ReqVerdict::Tarpit {
                    status: *status,
                    be: be.cloned(),
                });
            }
            HttpAction::UseService(name) => {
                return Step::Stop(ReqVerdict::Service {
                    name: name.clone(),
                    be: be.cloned(),
                });
            }
            HttpAction::SetStatus(..) => {}
        }
    }
    Step::Continue
}

fn replace_headers(
    headers: &mut [Header],
    name: &str,
    re: &crate::acl::matcher::Re,
    fmt: &[u8],
    per_value: bool,
) {
    if framing(name) {
        return;
    }
    for h in headers.iter_mut().filter(|h| h.is(name)) {
        if per_value {
            // Each comma-separated value is replaced in place; separators and the spaces
            // around values are kept (measured).
            let mut out = Vec::with_capacity(h.value.len());
            for (i, part) in h.value.split(|&c| c == b',').enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let lead = part.len() - part.trim_ascii_start().len();
                let t = part.trim_ascii();
                let trail = part.len() - lead - t.len();
                out.extend_from_slice(&part[..lead]);
                match replace_all(re, fmt, t) {
                    Some(v) => out.extend_from_slice(&v),
                    None => out.extend_from_slice(t),
                }
                out.extend_from_slice(&part[part.len() - trail..]);
            }
            h.value = out;
        } else if let Some(v) = replace_all(re, fmt, &h.value) {
            h.value = v;
        }
    }
}

/// `tcp-request content` rules on an HTTP request: `false` to close.
fn content_rules(
    p: &Proxy,
    fe: &Frontend,
    acc: &Accepted,
    be: Option<&str>,
    req: &Request,
    vars: &mut Vars,
) -> bool {
    // (set-var in tcp-request rules is refused at parse time)
    for r in p
        .tcp_request
        .iter()
        .filter(|r| r.action.0 == TcpRuleKind::Content)
    {
        let c = ctx(fe, acc, be, Some(req), None, Some(vars));
        if applies(&r.cond, &c) {
            match &r.action.1 {
                TcpAction::Accept => return true,
                TcpAction::Reject => return false,
                TcpAction::Stk(a) => {
                    let v = stk_value(a, &c);
                    stk_apply(a, v, &mut vars.stk, true, true);
                }
                TcpAction::SetSrc { expr, port_only } => {
                    let v = expr.value(&c);
                    if let Some(a) = new_address(v, c.src, *port_only) {
                        vars.src = Some(a);
                    }
                }
            }
        }
    }
    true
}

/// The address `set-src`/`set-dst` (`port_only`: `-port`) make of a sample and the current
/// address: an address (kept port) or a port (kept address); `None` leaves it unchanged.
fn new_address(
    v: Option<Sample>,
    cur: Option<std::net::SocketAddr>,
    port_only: bool,
) -> Option<std::net::SocketAddr> {
    let v = v?;
    if port_only {
        let p = match v {
            Sample::Int(n) => u16::try_from(n).ok(),
            s => std::str::from_utf8(&s.as_bytes())
                .ok()
                .and_then(|t| t.trim().parse().ok()),
        };
        let mut a = cur?;
        a.set_port(p?);
        return Some(a);
    }
    let ip = match v {
        Sample::Ip(ip) => Some(ip),
        s => crate::acl::fetch::parse_ip_bytes(&s.as_bytes()),
    };
    ip.map(|ip| std::net::SocketAddr::new(ip, cur.map_or(0, |a| a.port())))
}

/// A `capture` rule's sample, cut to its slot's length (the frontend's slots, as in HAProxy).
fn capture(vars: &mut Vars, fe: &Frontend, res: bool, idx: usize, v: Option<Sample>) {
    let slots = if res {
        &fe.proxy.capture_response
    } else {
        &fe.proxy.capture_request
    };
    if let (Some(slot), Some(v)) = (slots.get(idx), v) {
        let mut b = v.into_bytes();
        b.truncate(slot.len);
        vars.captures.retain(|c| (c.0, c.1) != (res, idx));
        vars.captures.push((res, idx, b));
    }
}

/// The sample a stick-counter action needs (the key to track, the value to set).
fn stk_value(a: &StkAction, c: &SampleCtx) -> Option<Sample> {
    match a {
        StkAction::Track { key, .. } => key.value(c),
        StkAction::SetGpt0 { value, .. } | StkAction::SetGpt { value, .. } => value.value(c),
        _ => None,
    }
}

/// Runs a stick-counter action with the sample [`stk_value`] gave. `stream`: a stream
/// tracker (content and HTTP rules); `http_req`: on an HTTP request.
fn stk_apply(
    a: &StkAction,
    v: Option<Sample>,
    trk: &mut super::stkctr::Trackers,
    stream: bool,
    http_req: bool,
) {
    match a {
        StkAction::Track { slot, table, .. } => {
            let t = table.as_deref().and_then(super::stkctr::table);
            if let (Some(t), Some(v)) = (t, v) {
                trk.track(*slot, t, &v, stream, http_req);
            }
        }
        StkAction::IncGpc01 { slot, which } => trk.inc_gpc01(*slot, *which),
        StkAction::IncGpc { idx, slot } => trk.inc_gpc(*slot, *idx),
        StkAction::SetGpt0 { slot, .. } | StkAction::SetGpt { slot, .. } => {
            let n = match v {
                Some(Sample::Int(n)) => Some(n),
                Some(Sample::Bool(b)) => Some(b as i64),
                Some(Sample::Str(s)) => std::str::from_utf8(&s)
                    .ok()
                    .and_then(|x| x.trim().parse().ok()),
                _ => None,
            };
            if let Some(n) = n {
                match a {
                    StkAction::SetGpt { idx, .. } => trk.set_gpt(*slot, *idx, n),
                    _ => trk.set_gpt0(*slot, n),
                }
            }
        }
    }
}

/// Runs the request-side rules of one HTTP transaction and chooses the backend.
pub fn on_request(fe: &Frontend, acc: &Accepted, req: &mut Request, vars: &mut Vars) -> ReqVerdict {
    if !fe.rules.any_http {
        return ReqVerdict::Forward(fe.backend.clone());
    }
    let p = &fe.proxy;
    let listen_be = fe
        .backend
        .as_ref()
        .filter(|b| std::ptr::eq(b.proxy.as_ref(), p.as_ref()));
    if !content_rules(p, fe, acc, None, req, vars) {
        return ReqVerdict::Close {
            reset: false,
            tcp: true,
        };
    }
    if let Step::Stop(v) = run_http_rules(&p.http_request, fe, acc, listen_be, req, vars) {
        return v;
    }
    if let Step::Stop(v) = run_http_rules(&p.redirects, fe, acc, listen_be, req, vars) {
        return v;
    }
    let be = switch(fe, &ctx(fe, acc, None, Some(req), None, Some(vars)));
    if let Some(b) = &be {
        if !std::ptr::eq(b.proxy.as_ref(), p.as_ref()) {
            let bp = &b.proxy;
            if !content_rules(bp, fe, acc, Some(&b.name), req, vars) {
                return ReqVerdict::Close {
                    reset: false,
                    tcp: true,
                };
            }
            if let Step::Stop(v) = run_http_rules(&bp.http_request, fe, acc, Some(b), req, vars) {
                return v;
            }
            if let Step::Stop(v) = run_http_rules(&bp.redirects, fe, acc, Some(b), req, vars) {
                return v;
            }
        }
    }
    ReqVerdict::Forward(be)
}

/// What the response rules decided.
pub enum ResVerdict {
    /// `deny`: the error page of this status instead of the server's answer.
    Deny(u16),
    /// `return`: this response instead (head without connection header, body).
    Reply {
        status: u16,
        head: Vec<u8>,
        body: Vec<u8>,
        deny: bool,
    },
    /// `silent-drop`: reset the client connection.
    Drop,
}

fn response_rules(
    rules: &[HttpRule],
    fe: &Frontend,
    acc: &Accepted,
    be: &Backend,
    resp: &mut Response,
    vars: &mut Vars,
) -> Option<ResVerdict> {
    for r in rules {
        let c = ctx(fe, acc, Some(&be.name), None, Some(resp), Some(vars));
        if !applies(&r.cond, &c) {
            continue;
        }
        match &r.action {
            HttpAction::Allow => return None,
            HttpAction::Deny { status } => return Some(ResVerdict::Deny(*status)),
            HttpAction::Return { deny, .. } => {
                if let Some((status, head, body)) = build_return(&r.action, &c) {
                    return Some(ResVerdict::Reply {
                        status,
                        head,
                        body,
                        deny: *deny,
                    });
                }
            }
            HttpAction::SilentDrop => return Some(ResVerdict::Drop),
            HttpAction::SetVar { name, expr, only } => {
                let v = expr.value(&c);
                apply_var(vars, name, *only, v);
            }
            HttpAction::UnsetVar(name) => vars.unset(name),
            HttpAction::Capture { expr, idx } => {
                let v = expr.value(&c);
                capture(vars, fe, true, *idx, v);
            }
            HttpAction::Stk(a) => {
                let v = stk_value(a, &c);
                match a {
                    StkAction::Track { slot, table, .. } => {
                        let t = table.as_deref().and_then(super::stkctr::table);
                        if let (Some(t), Some(v)) = (t, v) {
                            vars.stk.track_res(*slot, t, &v, resp.status);
                        }
                    }
                    _ => stk_apply(a, v, &mut vars.stk, true, false),
                }
            }
            HttpAction::SetLogSilent => vars.silent = true,
            HttpAction::Replace { what, re, fmt } => {
                let f = fmt.render(&c);
                if let ReplaceWhat::Header(n) | ReplaceWhat::Value(n) = what {
                    let per_value = matches!(what, ReplaceWhat::Value(_));
                    replace_headers(&mut resp.headers, n, re, &f, per_value);
                }
            }
            HttpAction::SetHeader(n, v) => {
                let v = v.render(&c);
                set_header(&mut resp.headers, n, v, true);
            }
            HttpAction::AddHeader(n, v) => {
                let v = v.render(&c);
                set_header(&mut resp.headers, n, v, false);
            }
            HttpAction::DelHeader(n) if !framing(n) => resp.headers.retain(|h| !h.is(n)),
            HttpAction::SetStatus(code, rsn) => {
                resp.status = *code;
                resp.reason = rsn
                    .clone()
                    .unwrap_or_else(|| reason(*code).to_string())
                    .into_bytes();
            }
            _ => {}
        }
    }
    None
}

/// Runs the `http-response` rules (backend first, then frontend).
pub fn on_response(
    fe: &Frontend,
    be: &Backend,
    acc: &Accepted,
    resp: &mut Response,
    vars: &mut Vars,
) -> Option<ResVerdict> {
    if !fe.rules.any_http {
        return None;
    }
    let same = std::ptr::eq(be.proxy.as_ref(), fe.proxy.as_ref());
    if !same {
        if let Some(s) = response_rules(&be.proxy.http_response, fe, acc, be, resp, vars) {
            return Some(s);
        }
    }
    response_rules(&fe.proxy.http_response, fe, acc, be, resp, vars)
}
