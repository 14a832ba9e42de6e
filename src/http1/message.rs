//! Semantic layer: HAProxy 2.6's message rules on top of [`super::head`] (framing headers,
//! Host checks, version rules), producing either a parsed message or the exact status HAProxy
//! answers (400/413/422 for requests, 502 for responses).

use super::head::{Header, Limits, RawHead, Scan, StartLine, SyntaxError, Version, scan_head};

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all.
    None,
    /// Exactly this many bytes (a `Content-Length: 0` message is `Length(0)`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Response body running until the server closes.
    CloseDelimited,
    /// After `101 Switching Protocols` or a 2xx answer to CONNECT: raw bidirectional bytes.
    Tunnel,
}

/// A refusal: the status code HAProxy answers (requests) or reports to the client
/// (502 for bad responses), plus a short internal reason for logs/tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub reason: &'static str,
}

impl HttpError {
    pub const fn new(status: u16, reason: &'static str) -> Self {
        HttpError { status, reason }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.status, self.reason)
    }
}

impl std::error::Error for HttpError {}

fn syntax_reason(e: SyntaxError) -> &'static str {
    match e {
        SyntaxError::BadMethod => "invalid method",
        SyntaxError::BadUri => "invalid URI",
        SyntaxError::BadVersion => "invalid version",
        SyntaxError::BadStatus => "invalid status",
        SyntaxError::BadHeaderName => "invalid header name",
        SyntaxError::HeaderNameTooLong => "header name too long",
        SyntaxError::MissingColon => "header line without colon",
        SyntaxError::BareCr => "bare CR",
        SyntaxError::FoldWithoutHeader => "continuation line without header",
        SyntaxError::TooManyHeaders => "too many headers",
        SyntaxError::HeadTooLarge => "head too large",
    }
}

/// Parse outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    Complete(T),
    /// Need more bytes.
    Partial,
    /// The buffer starts with the HTTP/2 connection preface (`PRI * HTTP/2.0`); HAProxy
    /// switches such a connection to its H2 mux. The runtime decides what to do.
    H2Preface,
}

/// Tokens found in `Connection` headers (case-insensitive, comma lists, all headers merged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnTokens {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Vec<u8>,
    pub uri: Vec<u8>,
    pub version: Version,
    /// Header fields in order. When both Content-Length and Transfer-Encoding were present,
    /// the Content-Length fields have been removed (HAProxy drops them).
    pub headers: Vec<Header>,
    /// Bytes of the input buffer taken by the head; the body starts here.
    pub head_len: usize,
    pub body: BodyKind,
    /// The connection must be closed after this transaction whatever the mode
    /// (CL+TE, or Transfer-Encoding on an HTTP/1.0 message).
    pub force_close: bool,
    pub conn: ConnTokens,
    /// `Expect: 100-continue` present (HTTP/1.1 only).
    pub expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` header: the protocols asked for.
    pub upgrade: Option<Vec<u8>>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find(&self.headers, name)
    }
    /// Gives the request's vectors to this thread's stock for the next heads
    /// ([`super::head::recycle`]).
    pub fn recycle(self) {
        use super::head::recycle;
        recycle::give_bytes(self.method);
        recycle::give_bytes(self.uri);
        recycle::give_list(self.headers);
    }
    pub fn is_head(&self) -> bool {
        self.method == b"HEAD"
    }
    pub fn is_connect(&self) -> bool {
        self.method == b"CONNECT"
    }
    /// What the response parser needs to know about the request.
    pub fn info(&self) -> RequestInfo {
        RequestInfo {
            head: self.is_head(),
            connect: self.is_connect(),
            upgrade: self.upgrade.is_some(),
        }
    }
}

/// What a response's framing depends on from its request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub head: bool,
    pub connect: bool,
    /// The request asked for a protocol upgrade (`Connection: upgrade` + `Upgrade`).
    pub upgrade: bool,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub version: Version,
    pub status: u16,
    pub reason: Vec<u8>,
    pub headers: Vec<Header>,
    pub head_len: usize,
    pub body: BodyKind,
    /// Interim 1xx response (not 101): forward it and parse the next response.
    pub interim: bool,
    pub force_close: bool,
    pub conn: ConnTokens,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find(&self.headers, name)
    }
    /// Gives the response's vectors to this thread's stock for the next heads
    /// ([`super::head::recycle`]).
    pub fn recycle(self) {
        use super::head::recycle;
        recycle::give_bytes(self.reason);
        recycle::give_list(self.headers);
    }
}

fn find<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.is(name))
        .map(|h| h.value.as_slice())
}

/// Splits a header value on commas, trimming SP/HTAB around each element.
pub fn list_elements(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(|e| {
        let s = e
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .unwrap_or(e.len());
        let t = e
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(s, |p| p + 1);
        &e[s..t.max(s)]
    })
}

/// Parses one Content-Length element the way HAProxy 2.6 does: digits only (no sign, no
/// hex, not empty); leading zeros allowed. Overflow deviation: HAProxy 2.6.12 only checks the
/// multiplication, so values in 2^64..2^64+5 wrap to 0..5 (measured: 18446744073709551616 is
/// accepted as 0). That is a request-smuggling hazard, so we reject every value >= 2^64.
pub fn parse_cl_element(e: &[u8]) -> Option<u64> {
    if e.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in e {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(v)
}

/// Content-Length from all CL headers: every element of every header must be valid and all
/// values equal (`5` + `5`, `5, 5` and `5` + `05` are merged; `5` + `6` is an error).
fn content_length(headers: &[Header]) -> Result<Option<u64>, &'static str> {
    let mut cl: Option<u64> = None;
    for h in headers.iter().filter(|h| h.is("content-length")) {
        for e in list_elements(&h.value) {
            let v = parse_cl_element(e).ok_or("invalid content-length")?;
            match cl {
                Some(old) if old != v => return Err("conflicting content-length"),
                _ => cl = Some(v),
            }
        }
    }
    Ok(cl)
}

/// Several identical Content-Length values (`5` + `5`, `5, 5`) are merged into one
/// `Content-Length` field at the place of the first one (measured on responses: HAProxy
/// forwards a single `content-length: 2` for two `Content-Length: 2` fields).
fn merge_content_length(headers: &mut Vec<Header>, cl: u64) {
    let elems: usize = headers
        .iter()
        .filter(|h| h.is("content-length"))
        .map(|h| list_elements(&h.value).count())
        .sum();
    if elems <= 1 {
        return;
    }
    let mut first = true;
    headers.retain_mut(|h| {
        if !h.is("content-length") {
            return true;
        }
        if first {
            first = false;
            h.value = cl.to_string().into_bytes();
            return true;
        }
        false
    });
}

/// Verdict on the Transfer-Encoding list (all TE headers concatenated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeVerdict {
    /// No Transfer-Encoding header.
    Absent,
    /// Exactly one `chunked`, last.
    Chunked,
    /// Valid framing (`chunked` last, once) but other codings before it: 422 for requests.
    UnsupportedCoding,
    /// `chunked` missing, repeated or not last: 400.
    Invalid,
}

/// Measured rules: elements are case-insensitive and trimmed; one trailing empty element
/// (`chunked,`) is ignored, other empty elements count as unknown codings (`,chunked` -> 422,
/// `chunked,,` -> 400); any non-`chunked` element (`identity`, `gzip`, `\x0bchunked`) is an
/// unknown coding.
pub fn transfer_encoding(headers: &[Header]) -> TeVerdict {
    let mut any = false;
    let mut elems: Vec<&[u8]> = Vec::new();
    for h in headers.iter().filter(|h| h.is("transfer-encoding")) {
        any = true;
        let mut v: Vec<&[u8]> = list_elements(&h.value).collect();
        if v.len() > 1 && v.last().is_some_and(|e| e.is_empty()) {
            v.pop();
        }
        elems.extend(v);
    }
    if !any {
        return TeVerdict::Absent;
    }
    let is_chunked = |e: &[u8]| e.eq_ignore_ascii_case(b"chunked");
    let n_chunked = elems.iter().filter(|e| is_chunked(e)).count();
    if n_chunked != 1 || !elems.last().is_some_and(|e| is_chunked(e)) {
        return TeVerdict::Invalid;
    }
    if elems.len() > 1 {
        TeVerdict::UnsupportedCoding
    } else {
        TeVerdict::Chunked
    }
}

fn conn_tokens(headers: &[Header]) -> ConnTokens {
    let mut t = ConnTokens::default();
    for h in headers.iter().filter(|h| h.is("connection")) {
        for e in list_elements(&h.value) {
            if e.eq_ignore_ascii_case(b"close") {
                t.close = true;
            } else if e.eq_ignore_ascii_case(b"keep-alive") {
                t.keep_alive = true;
            } else if e.eq_ignore_ascii_case(b"upgrade") {
                t.upgrade = true;
            }
        }
    }
    t
}

/// Authority of a request URI as HAProxy compares it with Host, with the scheme when known.
/// Origin-form (`/...`) and `*` have none. Absolute-form `scheme://auth/...` gives the part
/// between `://` and the first `/` (so `http://a?x` gives `a?x`, which then mismatches Host
/// `a`, as measured); any other form is authority-form up to the first `/`. Userinfo is
/// dropped. An empty authority (`http:///`) is not compared.
fn uri_authority(uri: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    if uri.first() == Some(&b'/') || uri == b"*" {
        return None;
    }
    let (scheme, rest) = match uri.windows(3).position(|w| w == b"://") {
        Some(p) => (Some(&uri[..p]), &uri[p + 3..]),
        None => (None, uri),
    };
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let mut auth = &rest[..end];
    if let Some(at) = auth.iter().rposition(|&b| b == b'@') {
        auth = &auth[at + 1..];
    }
    Some((scheme, auth))
}

/// Removes the scheme's default port (`:80` for http, `:443` for https) or an empty port
/// (`x:`), for http/https only.
fn strip_default_port<'a>(scheme: Option<&[u8]>, auth: &'a [u8]) -> &'a [u8] {
    let port: &[u8] = match scheme {
        Some(s) if s.eq_ignore_ascii_case(b"http") => b":80",
        Some(s) if s.eq_ignore_ascii_case(b"https") => b":443",
        _ => return auth,
    };
    auth.strip_suffix(port)
        .or_else(|| auth.strip_suffix(b":"))
        .unwrap_or(auth)
}

/// Scheme-based normalisation HAProxy 2.6 applies to absolute-form http/https requests
/// (measured): the default or empty port is removed from the URI authority and from the
/// Host header values (`GET http://x:80/p` + `Host: x:80` is forwarded as
/// `GET http://x/p` + `host: x`). Origin-form requests and other schemes are untouched.
fn normalize_absolute(uri: &mut Vec<u8>, headers: &mut [Header]) {
    let Some(p) = uri.windows(3).position(|w| w == b"://") else {
        return;
    };
    let scheme = uri[..p].to_vec();
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return;
    }
    let a0 = p + 3;
    let a1 = uri[a0..]
        .iter()
        .position(|&b| b == b'/')
        .map_or(uri.len(), |e| a0 + e);
    let kept = strip_default_port(Some(&scheme), &uri[a0..a1]).len();
    uri.drain(a0 + kept..a1);
    for h in headers.iter_mut().filter(|h| h.is("host")) {
        let kept = strip_default_port(Some(&scheme), &h.value).len();
        h.value.truncate(kept);
    }
}

fn is_h2_preface_prefix(buf: &[u8]) -> bool {
    const PRI: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let n = buf.len().min(PRI.len());
    n >= 4 && buf[..n] == PRI[..n]
}

/// Parses a request head at the start of `buf` and applies HAProxy 2.6's rules.
///
/// `Ok(Parsed::Partial)` means "read more" (an incomplete head already filling
/// `limits.bufsize` bytes is a 400 instead). Errors carry the status HAProxy answers.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Parsed<Request>, HttpError> {
    if is_h2_preface_prefix(buf) {
        return Ok(if buf.len() >= 24 {
            Parsed::H2Preface
        } else {
            Parsed::Partial
        });
    }
    let head = match scan_head(buf, true, limits) {
        Ok(Scan::Partial) => return Ok(Parsed::Partial),
        Ok(Scan::Complete(h)) => h,
        Err(e) => return Err(HttpError::new(400, syntax_reason(e))),
    };
    request_rules(head).map(Parsed::Complete)
}

fn bad(reason: &'static str) -> HttpError {
    HttpError::new(400, reason)
}

fn request_rules(head: RawHead) -> Result<Request, HttpError> {
    let RawHead {
        start,
        mut headers,
        len,
    } = head;
    let StartLine::Request {
        method,
        uri,
        version,
    } = start
    else {
        unreachable!("request scan yields a request line")
    };

    let cl = content_length(&headers).map_err(bad)?;
    let te = transfer_encoding(&headers);
    let mut force_close = false;
    let body = match te {
        TeVerdict::Invalid => return Err(bad("invalid transfer-encoding")),
        TeVerdict::UnsupportedCoding => {
            return Err(HttpError::new(422, "unsupported transfer-coding"));
        }
        TeVerdict::Chunked => {
            if cl.is_some() {
                // RFC 9112 §6.1: chunked wins, CL removed, connection closed afterwards.
                headers.retain(|h| !h.is("content-length"));
                force_close = true;
            }
            if !version.is_11() {
                force_close = true;
            }
            BodyKind::Chunked
        }
        TeVerdict::Absent => match cl {
            Some(n) => {
                merge_content_length(&mut headers, n);
                BodyKind::Length(n)
            }
            None => BodyKind::None,
        },
    };

    // Host: several Host headers must agree (case-insensitive, no port normalisation).
    let mut host: Option<&[u8]> = None;
    for h in headers.iter().filter(|h| h.is("host")) {
        match host {
            Some(prev) if !prev.eq_ignore_ascii_case(&h.value) => {
                return Err(bad("conflicting host headers"));
            }
            _ => host = Some(&h.value),
        }
    }
    let is_connect = method == b"CONNECT";
    let auth = uri_authority(&uri);
    if is_connect && auth.is_none() {
        return Err(bad("CONNECT without authority"));
    }
    if let (Some(host), Some((scheme, auth))) = (host, auth)
        && !auth.is_empty()
        && !strip_default_port(scheme, auth).eq_ignore_ascii_case(strip_default_port(scheme, host))
    {
        return Err(bad("URI authority differs from Host"));
    }

    let mut uri = uri;
    normalize_absolute(&mut uri, &mut headers);

    let conn = conn_tokens(&headers);
    let upgrade_hdr = find(&headers, "upgrade");
    // WebSocket upgrade without Sec-WebSocket-Key is refused (measured, any version).
    if conn.upgrade
        && let Some(u) = upgrade_hdr
        && list_elements(u).any(|p| p.eq_ignore_ascii_case(b"websocket"))
        && find(&headers, "sec-websocket-key").is_none()
    {
        return Err(bad("websocket upgrade without key"));
    }
    let upgrade = if conn.upgrade {
        upgrade_hdr.map(|u| u.to_vec())
    } else {
        None
    };

    // HTTP/1.0 GET/HEAD/DELETE with a payload: 413 (measured; methods case-sensitive).
    if !version.is_11()
        && matches!(method.as_slice(), b"GET" | b"HEAD" | b"DELETE")
        && matches!(body, BodyKind::Chunked | BodyKind::Length(1..))
    {
        return Err(HttpError::new(413, "HTTP/1.0 GET/HEAD/DELETE with payload"));
    }

    let expect_continue = version.is_11()
        && find(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));

    Ok(Request {
        method,
        uri,
        version,
        headers,
        head_len: len,
        body,
        force_close,
        conn,
        expect_continue,
        upgrade,
    })
}

/// Parses a response head at the start of `buf`, for a request described by `req`.
/// Every refusal is a 502 for the client.
pub fn parse_response(
    buf: &[u8],
    req: RequestInfo,
    limits: &Limits,
) -> Result<Parsed<Response>, HttpError> {
    let head = match scan_head(buf, false, limits) {
        Ok(Scan::Partial) => return Ok(Parsed::Partial),
        Ok(Scan::Complete(h)) => h,
        Err(e) => return Err(HttpError::new(502, syntax_reason(e))),
    };
    response_rules(head, req).map(Parsed::Complete)
}

fn response_rules(head: RawHead, req: RequestInfo) -> Result<Response, HttpError> {
    let bad = |r| HttpError::new(502, r);
    let RawHead {
        start,
        mut headers,
        len,
    } = head;
    let StartLine::Status {
        version,
        status,
        reason,
    } = start
    else {
        unreachable!("response scan yields a status line")
    };
    let cl = content_length(&headers).map_err(bad)?;
    let te = transfer_encoding(&headers);
    let conn = conn_tokens(&headers);
    let mut force_close = false;
    // Any Transfer-Encoding other than a single `chunked` is refused in responses (measured,
    // including `gzip, chunked`).
    match te {
        TeVerdict::Invalid | TeVerdict::UnsupportedCoding => {
            return Err(bad("invalid transfer-encoding"));
        }
        TeVerdict::Chunked => {
            if cl.is_some() {
                headers.retain(|h| !h.is("content-length"));
            }
            if !version.is_11() {
                force_close = true;
            }
        }
        TeVerdict::Absent => {
            if let Some(n) = cl {
                merge_content_length(&mut headers, n);
            }
        }
    }
    let mut interim = false;
    let body = if status == 101 {
        if !req.upgrade {
            // CVE-2026-2833 class: never switch to tunnel without a requested upgrade.
            return Err(bad("101 without upgrade request"));
        }
        BodyKind::Tunnel
    } else if (100..200).contains(&status) {
        interim = true;
        BodyKind::None
    } else if req.connect && (200..300).contains(&status) {
        BodyKind::Tunnel
    } else if status == 204 {
        // HAProxy strips Content-Length from 204 responses (measured).
        headers.retain(|h| !h.is("content-length"));
        BodyKind::None
    } else if req.head || status == 304 {
        BodyKind::None
    } else if te == TeVerdict::Chunked {
        BodyKind::Chunked
    } else if let Some(n) = cl {
        BodyKind::Length(n)
    } else {
        force_close = true;
        BodyKind::CloseDelimited
    };
    Ok(Response {
        version,
        status,
        reason,
        headers,
        head_len: len,
        body,
        interim,
        force_close,
        conn,
    })
}
