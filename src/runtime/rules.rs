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
use crate::acl::{Condition, SampleCtx, ServerState, eval};
use crate::config::ir::*;
use crate::http1::errors::ConnHeader;
use crate::http1::{Header, Request, Response};

/// The per-frontend data the rules need besides the IR.
#[derive(Default)]
pub struct FeRules {
    /// Conditional `use_backend` rules before the first unconditional one, with their targets.
    switching: Vec<(Condition, Option<Arc<Backend>>)>,
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
            match &ub.cond {
                Some(c) => switching.push((c.clone(), backends.get(&ub.backend).cloned())),
                None => break,
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
}

pub fn ctx<'a>(
    fe: &'a Frontend,
    acc: &Accepted,
    be: Option<&'a str>,
    req: Option<&'a Request>,
    res: Option<&'a Response>,
) -> SampleCtx<'a> {
    let r = &fe.rules;
    SampleCtx {
        src: Some(acc.client.sock_addr()),
        dst: acc.orig_dst.map(|o| o.sock_addr()),
        fe_name: &fe.name,
        fe_id: r.ids.get(&fe.name).copied().unwrap_or(0),
        be_name: be,
        be_id: be.and_then(|b| r.ids.get(b).copied()),
        req,
        res,
        servers: Some(r),
    }
}

fn applies(c: &Option<Condition>, ctx: &SampleCtx) -> bool {
    c.as_ref().is_none_or(|c| eval(c, ctx))
}

/// `tcp-request connection` / `session` rules (and `content` in TCP mode) at accept: `false`
/// when the connection must be closed at once.
pub fn accept_connection(fe: &Frontend, acc: &Accepted) -> bool {
    let p = &fe.proxy;
    if p.tcp_request.is_empty() {
        return true;
    }
    let be = fe.backend.as_ref().map(|b| b.name.as_str());
    let c = ctx(fe, acc, be, None, None);
    let phases: &[TcpRuleKind] = if fe.mode == Mode::Tcp {
        &[
            TcpRuleKind::Connection,
            TcpRuleKind::Session,
            TcpRuleKind::Content,
        ]
    } else {
        &[TcpRuleKind::Connection, TcpRuleKind::Session]
    };
    for kind in phases {
        for r in p.tcp_request.iter().filter(|r| r.action.0 == *kind) {
            if applies(&r.cond, &c) {
                match r.action.1 {
                    TcpAction::Accept => break,
                    TcpAction::Reject => return false,
                }
            }
        }
    }
    true
}

/// The backend of a TCP-mode session (`use_backend` on the connection).
pub fn tcp_backend(fe: &Frontend, acc: &Accepted) -> Option<Arc<Backend>> {
    let c = ctx(fe, acc, None, None, None);
    for (cond, be) in &fe.rules.switching {
        if eval(cond, &c) {
            return be.clone();
        }
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
    },
    /// Close without answering (`tcp-request content reject`).
    Close,
    /// `http-request use-service NAME`: the service answers.
    Service(String),
}

enum Step {
    Continue,
    Stop(ReqVerdict),
}

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
        _ => "Other",
    }
}

fn set_header(headers: &mut Vec<Header>, name: &str, value: Vec<u8>, replace: bool) {
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

/// Ends a generated response head: the connection header, then the blank line.
pub fn finish_reply(head: &mut Vec<u8>, conn: ConnHeader) {
    match conn {
        ConnHeader::None => {}
        ConnHeader::Close => head.extend_from_slice(b"connection: close\r\n"),
        ConnHeader::KeepAlive => head.extend_from_slice(b"connection: keep-alive\r\n"),
    }
    head.extend_from_slice(b"\r\n");
}

fn run_http_rules(
    rules: &[HttpRule],
    fe: &Frontend,
    acc: &Accepted,
    be: Option<&Arc<Backend>>,
    req: &mut Request,
) -> Step {
    let be_name = be.map(|b| b.name.as_str());
    for r in rules {
        let c = ctx(fe, acc, be_name, Some(req), None);
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
            HttpAction::Return {
                status,
                content_type,
                body,
                headers,
            } => {
                let body = body.as_ref().map(|b| b.render(&c)).unwrap_or_default();
                let mut hs: Vec<(Vec<u8>, Vec<u8>)> = headers
                    .iter()
                    .map(|(n, v)| (n.to_ascii_lowercase().into_bytes(), v.render(&c)))
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
                return Step::Stop(ReqVerdict::Reply {
                    status: *status,
                    head,
                    body,
                    be: be.cloned(),
                });
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
            HttpAction::DelHeader(n) => req.headers.retain(|h| !h.is(n)),
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
            HttpAction::UseService(name) => return Step::Stop(ReqVerdict::Service(name.clone())),
            HttpAction::SetStatus(..) => {}
        }
    }
    Step::Continue
}

/// `tcp-request content` rules on an HTTP request: `false` to close.
fn content_rules(p: &Proxy, c: &SampleCtx) -> bool {
    for r in p
        .tcp_request
        .iter()
        .filter(|r| r.action.0 == TcpRuleKind::Content)
    {
        if applies(&r.cond, c) {
            return r.action.1 == TcpAction::Accept;
        }
    }
    true
}

/// Runs the request-side rules of one HTTP transaction and chooses the backend.
pub fn on_request(fe: &Frontend, acc: &Accepted, req: &mut Request) -> ReqVerdict {
    if !fe.rules.any_http {
        return ReqVerdict::Forward(fe.backend.clone());
    }
    let p = &fe.proxy;
    let listen_be = fe
        .backend
        .as_ref()
        .filter(|b| std::ptr::eq(b.proxy.as_ref(), p.as_ref()));
    if !content_rules(p, &ctx(fe, acc, None, Some(req), None)) {
        return ReqVerdict::Close;
    }
    if let Step::Stop(v) = run_http_rules(&p.http_request, fe, acc, listen_be, req) {
        return v;
    }
    if let Step::Stop(v) = run_http_rules(&p.redirects, fe, acc, listen_be, req) {
        return v;
    }
    let be = {
        let c = ctx(fe, acc, None, Some(req), None);
        match fe.rules.switching.iter().find(|(cond, _)| eval(cond, &c)) {
            Some((_, b)) => b.clone(),
            None => fe.backend.clone(),
        }
    };
    if let Some(b) = &be {
        if !std::ptr::eq(b.proxy.as_ref(), p.as_ref()) {
            let bp = &b.proxy;
            if !content_rules(bp, &ctx(fe, acc, Some(&b.name), Some(req), None)) {
                return ReqVerdict::Close;
            }
            if let Step::Stop(v) = run_http_rules(&bp.http_request, fe, acc, Some(b), req) {
                return v;
            }
            if let Step::Stop(v) = run_http_rules(&bp.redirects, fe, acc, Some(b), req) {
                return v;
            }
        }
    }
    ReqVerdict::Forward(be)
}

fn response_rules(
    rules: &[HttpRule],
    fe: &Frontend,
    acc: &Accepted,
    be: &Backend,
    resp: &mut Response,
) -> Option<u16> {
    for r in rules {
        let c = ctx(fe, acc, Some(&be.name), None, Some(resp));
        if !applies(&r.cond, &c) {
            continue;
        }
        match &r.action {
            HttpAction::Allow => return None,
            HttpAction::Deny { status } => return Some(*status),
            HttpAction::SetHeader(n, v) => {
                let v = v.render(&c);
                set_header(&mut resp.headers, n, v, true);
            }
            HttpAction::AddHeader(n, v) => {
                let v = v.render(&c);
                set_header(&mut resp.headers, n, v, false);
            }
            HttpAction::DelHeader(n) => resp.headers.retain(|h| !h.is(n)),
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

/// Runs the `http-response` rules (backend first, then frontend). `Some(status)`: deny.
pub fn on_response(
    fe: &Frontend,
    be: &Backend,
    acc: &Accepted,
    resp: &mut Response,
) -> Option<u16> {
    if !fe.rules.any_http {
        return None;
    }
    let same = std::ptr::eq(be.proxy.as_ref(), fe.proxy.as_ref());
    if !same {
        if let Some(s) = response_rules(&be.proxy.http_response, fe, acc, be, resp) {
            return Some(s);
        }
    }
    response_rules(&fe.proxy.http_response, fe, acc, be, resp)
}
