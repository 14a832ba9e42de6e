//! Connection management: keep-alive vs close, and the header rewrites HAProxy 2.6 does.
//!
//! Measured against 2.6.12 (echo backend, see the compat test):
//! * The client side closes after a transaction when the *frontend* has `option httpclose`,
//!   when the client asked for it (HTTP/1.1 `Connection: close`, HTTP/1.0 without
//!   `Connection: keep-alive`), when the request had CL+TE, when the request body was not
//!   fully received before the answer, or when the response is close-delimited.
//!   `option httpclose` in the *backend* only closes the server side.
//! * The server side closes after each transaction when the frontend or the backend has
//!   `option http-server-close` or `option httpclose` (the more restrictive applies);
//!   the client's own `Connection: close` does not close the server side.
//! * Toward the server, `close`/`keep-alive` tokens are removed from `Connection` (other
//!   tokens such as `upgrade` stay), `X-Forwarded-For` is appended after the client's
//!   headers, then `connection: close` (HTTP/1.1 request, server side closing) or
//!   `connection: keep-alive` (HTTP/1.0 request, server side kept) is appended last.
//! * Toward the client, the same token removal on the response, then `connection: close`
//!   when closing and the response is HTTP/1.1, or `connection: keep-alive` when keeping
//!   the connection of an HTTP/1.0 client (or answering with an HTTP/1.0 response).
//!   A server's `Connection: close` does not close the client side.

use super::head::Header;
use super::message::{BodyKind, Request, Response, list_elements};
use std::net::IpAddr;

/// `option http-keep-alive` (default) / `option http-server-close` / `option httpclose`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum HttpMode {
    #[default]
    KeepAlive,
    ServerClose,
    Close,
}

/// The more restrictive of two modes.
pub fn effective_mode(frontend: HttpMode, backend: HttpMode) -> HttpMode {
    frontend.max(backend)
}

/// Whether the client side allows keep-alive after this request, from its version and
/// `Connection` header alone: HTTP/1.1+ unless `close`; HTTP/1.0 only with `keep-alive`
/// (and no `close`).
pub fn client_wants_keep_alive(req: &Request) -> bool {
    if req.conn.close {
        return false;
    }
    req.version.is_11() || req.conn.keep_alive
}

/// Keep-alive decisions for one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnPlan {
    /// Keep the client connection for another request (may still be turned off by the
    /// response, see [`finish_client_plan`]).
    pub client_keep_alive: bool,
    /// Keep the server connection after the response.
    pub server_keep_alive: bool,
}

/// Decisions known once the request head is parsed.
pub fn plan_request(req: &Request, frontend: HttpMode, backend: HttpMode) -> ConnPlan {
    ConnPlan {
        client_keep_alive: frontend != HttpMode::Close
            && client_wants_keep_alive(req)
            && !req.force_close,
        // An HTTP/1.0 chunked request is forwarded without `connection: keep-alive`
        // (measured), i.e. the server side closes; a 1.1 CL+TE request keeps it.
        server_keep_alive: effective_mode(frontend, backend) == HttpMode::KeepAlive
            && (req.version.is_11() || req.body != BodyKind::Chunked),
    }
}

/// Client-side decision once the response head is known: a close-delimited response (or
/// HTTP/1.0 chunked response, or a tunnel) ends the client connection too.
pub fn finish_client_plan(plan: ConnPlan, resp: &Response) -> ConnPlan {
    let ends = resp.force_close || matches!(resp.body, BodyKind::CloseDelimited | BodyKind::Tunnel);
    ConnPlan {
        client_keep_alive: plan.client_keep_alive && !ends,
        server_keep_alive: plan.server_keep_alive && !resp.force_close && !ends,
    }
}

/// Removes `close` and `keep-alive` tokens from every `Connection` header, dropping headers
/// left empty.
pub fn strip_connection_tokens(headers: &mut Vec<Header>) {
    let kept = |e: &&[u8]| {
        !e.is_empty() && !e.eq_ignore_ascii_case(b"close") && !e.eq_ignore_ascii_case(b"keep-alive")
    };
    for h in headers.iter_mut().filter(|h| h.is("connection")) {
        if !list_elements(&h.value).any(|e| kept(&e)) {
            h.value.clear();
            continue;
        }
        let kept: Vec<&[u8]> = list_elements(&h.value).filter(kept).collect();
        h.value = kept.join(&b", "[..]);
    }
    // Removed headers go back to the thread's stock (the usual `Connection: keep-alive`).
    let mut i = 0;
    while i < headers.len() {
        if headers[i].is("connection") && headers[i].value.is_empty() {
            let h = headers.remove(i);
            super::head::recycle::give_bytes(h.name);
            super::head::recycle::give_bytes(h.value);
        } else {
            i += 1;
        }
    }
}

/// `option forwardfor [except <net>] [header <name>] [if-none]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardFor {
    /// Do not add the header for clients in this network (address, prefix length).
    pub except: Option<(IpAddr, u8)>,
    /// Header name (default `X-Forwarded-For`).
    pub header: String,
    /// Only add the header when the request does not carry it already.
    pub if_none: bool,
}

impl Default for ForwardFor {
    fn default() -> Self {
        ForwardFor {
            except: None,
            header: "X-Forwarded-For".to_string(),
            if_none: false,
        }
    }
}

/// Whether `ip` is inside `net/prefix` (same family only).
pub fn ip_in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let p = prefix.min(32) as u32;
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let p = prefix.min(128) as u32;
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Appends the forwardfor header (after the existing headers) unless excluded. An existing
/// header is kept: HAProxy adds a second field rather than extending the first.
pub fn apply_forwardfor(headers: &mut Vec<Header>, client: IpAddr, cfg: &ForwardFor) {
    if let Some((net, prefix)) = cfg.except
        && ip_in_net(client, net, prefix)
    {
        return;
    }
    if cfg.if_none && headers.iter().any(|h| h.is(&cfg.header)) {
        return;
    }
    headers.push(Header::new(
        cfg.header.as_bytes(),
        client.to_string().as_bytes(),
    ));
}

/// Rewrites a request before it goes to the server: Connection tokens, forwardfor, originalto,
/// then the connection header for the server side.
pub fn rewrite_request_for_server(
    req: &mut Request,
    plan: ConnPlan,
    client: IpAddr,
    forwardfor: Option<&ForwardFor>,
    originalto: Option<(&ForwardFor, IpAddr)>,
) {
    strip_connection_tokens(&mut req.headers);
    if let Some(ff) = forwardfor {
        apply_forwardfor(&mut req.headers, client, ff);
    }
    // `option originalto`: the destination the client connected to, IPv4 only (as HAProxy).
    if let Some((ot, dst @ IpAddr::V4(_))) = originalto {
        apply_forwardfor(&mut req.headers, dst, ot);
    }
    // An upgrade request never gets `connection: close` (the connection may become a
    // tunnel; measured in server-close and httpclose modes).
    if req.version.is_11() && !plan.server_keep_alive && req.upgrade.is_none() {
        req.headers.push(Header::new(b"connection", b"close"));
    } else if !req.version.is_11() && plan.server_keep_alive {
        req.headers.push(Header::new(b"connection", b"keep-alive"));
    }
}

/// Rewrites a response before it goes to the client (use the plan from
/// [`finish_client_plan`]). Interim (1xx) and 101 responses are left alone apart from the
/// token removal (101 keeps `Connection: upgrade`).
pub fn rewrite_response_for_client(resp: &mut Response, req_version_11: bool, plan: ConnPlan) {
    strip_connection_tokens(&mut resp.headers);
    if resp.interim || resp.status == 101 {
        return;
    }
    if !plan.client_keep_alive {
        if resp.version.is_11() {
            resp.headers.push(Header::new(b"connection", b"close"));
        }
    } else if !req_version_11 || !resp.version.is_11() {
        resp.headers.push(Header::new(b"connection", b"keep-alive"));
    }
}

/// Timeouts that govern waiting for a request head (facts §7): `timeout http-request`
/// (falls back to `timeout client`), `timeout http-keep-alive` (falls back to http-request,
/// then client).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadTimeouts {
    pub client: Option<std::time::Duration>,
    pub http_request: Option<std::time::Duration>,
    pub http_keep_alive: Option<std::time::Duration>,
}

/// What to do when the head wait expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnHeadTimeout {
    /// Send the built-in 408 (mux flavour) and close.
    Send408,
    /// Close without a word.
    CloseSilently,
}

/// Which timer to arm while waiting for a request head, and what to do when it fires.
/// Measured (http-request 700ms, http-keep-alive 300ms): on the first request of a
/// connection the 408 is sent even if nothing at all was received; between keep-alive
/// requests an idle connection is closed silently after http-keep-alive, but as soon as
/// any byte of the next request arrived (even an empty line) it is the http-request timer
/// and a 408. `None` duration = wait forever.
pub fn head_wait(
    first_request: bool,
    pending_bytes: usize,
    t: &HeadTimeouts,
) -> (Option<std::time::Duration>, OnHeadTimeout) {
    if first_request || pending_bytes > 0 {
        (t.http_request.or(t.client), OnHeadTimeout::Send408)
    } else {
        (
            t.http_keep_alive.or(t.http_request).or(t.client),
            OnHeadTimeout::CloseSilently,
        )
    }
}
