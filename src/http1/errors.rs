//! HAProxy 2.6's built-in error responses (bytes captured from the 2.6.12 binary on the wire)
//! and `errorfile` loading/validation.
//!
//! HAProxy emits its error messages in two shapes:
//! * [`ErrorFlavor::Mux`]: sent by the HTTP/1 connection layer itself when a request cannot
//!   be parsed (400, 413, 422) or the head does not arrive in time (408). The stored message
//!   goes out verbatim: `Content-length`, `Cache-Control`, [`Connection: close`,]
//!   `Content-Type`, mixed case.
//! * [`ErrorFlavor::Stream`]: everything produced while processing a parsed request
//!   (`http-request deny`, 503 no server, 502 bad response, 504 server timeout, ...). The
//!   message is re-encoded: lower-case names, the `Connection` header removed and, when the
//!   client connection closes after it, `connection: close` appended last.

use super::head::{Limits, StartLine, scan_head};
use super::message::list_elements;

/// One built-in message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinError {
    pub status: u16,
    pub reason: &'static str,
    pub body: &'static str,
    /// The message carries `Connection: close` (400 and 408).
    pub closes: bool,
}

macro_rules! page {
    ($code:literal, $title:literal, $text:literal) => {
        concat!(
            "<html><body><h1>",
            $code,
            " ",
            $title,
            "</h1>\n",
            $text,
            "\n</body></html>\n"
        )
    };
}

/// The statuses HAProxy 2.6 has built-in pages for (also the ones `errorfile` accepts).
pub const BUILTIN_ERRORS: &[BuiltinError] = &[
    BuiltinError {
        status: 200,
        reason: "OK",
        body: page!("200", "OK", "Service ready."),
        closes: false,
    },
    BuiltinError {
        status: 400,
        reason: "Bad request",
        body: page!(
            "400",
            "Bad request",
            "Your browser sent an invalid request."
        ),
        closes: true,
    },
    BuiltinError {
        status: 401,
        reason: "Unauthorized",
        body: page!(
            "401",
            "Unauthorized",
            "You need a valid user and password to access this content."
        ),
        closes: false,
    },
    BuiltinError {
        status: 403,
        reason: "Forbidden",
        body: page!(
            "403",
            "Forbidden",
            "Request forbidden by administrative rules."
        ),
        closes: false,
    },
    BuiltinError {
        status: 404,
        reason: "Not Found",
        body: page!("404", "Not Found", "The resource could not be found."),
        closes: false,
    },
    BuiltinError {
        status: 405,
        reason: "Method Not Allowed",
        body: page!(
            "405",
            "Method Not Allowed",
            "A request was made of a resource using a request method not supported by that resource"
        ),
        closes: false,
    },
    BuiltinError {
        status: 407,
        reason: "Unauthorized",
        body: page!(
            "407",
            "Unauthorized",
            "You need a valid user and password to access this content."
        ),
        closes: false,
    },
    BuiltinError {
        status: 408,
        reason: "Request Time-out",
        body: page!(
            "408",
            "Request Time-out",
            "Your browser didn't send a complete request in time."
        ),
        closes: true,
    },
    BuiltinError {
        status: 410,
        reason: "Gone",
        body: page!(
            "410",
            "Gone",
            "The resource is no longer available and will not be available again."
        ),
        closes: false,
    },
    BuiltinError {
        status: 413,
        reason: "Payload Too Large",
        body: page!(
            "413",
            "Payload Too Large",
            "The request entity exceeds the maximum allowed."
        ),
        closes: false,
    },
    BuiltinError {
        status: 421,
        reason: "Misdirected Request",
        body: page!(
            "421",
            "Misdirected Request",
            "Request sent to a non-authoritative server."
        ),
        closes: false,
    },
    BuiltinError {
        status: 422,
        reason: "Unprocessable Content",
        body: page!(
            "422",
            "Unprocessable Content",
            "The server cannot process the contained instructions."
        ),
        closes: false,
    },
    BuiltinError {
        status: 425,
        reason: "Too Early",
        body: page!("425", "Too Early", "Your browser sent early data."),
        closes: false,
    },
    BuiltinError {
        status: 429,
        reason: "Too Many Requests",
        body: page!(
            "429",
            "Too Many Requests",
            "You have sent too many requests in a given amount of time."
        ),
        closes: false,
    },
    BuiltinError {
        status: 500,
        reason: "Internal Server Error",
        body: page!(
            "500",
            "Internal Server Error",
            "An internal server error occurred."
        ),
        closes: false,
    },
    BuiltinError {
        status: 501,
        reason: "Not Implemented",
        body: page!(
            "501",
            "Not Implemented",
            ".The server does not support the functionality required to fulfill the request."
        ),
        closes: false,
    },
    BuiltinError {
        status: 502,
        reason: "Bad Gateway",
        body: page!(
            "502",
            "Bad Gateway",
            "The server returned an invalid or incomplete response."
        ),
        closes: false,
    },
    BuiltinError {
        status: 503,
        reason: "Service Unavailable",
        body: page!(
            "503",
            "Service Unavailable",
            "No server is available to handle this request."
        ),
        closes: false,
    },
    BuiltinError {
        status: 504,
        reason: "Gateway Time-out",
        body: page!(
            "504",
            "Gateway Time-out",
            "The server didn't respond in time."
        ),
        closes: false,
    },
];

/// Looks up a built-in message.
pub fn builtin(status: u16) -> Option<&'static BuiltinError> {
    BUILTIN_ERRORS.iter().find(|e| e.status == status)
}

/// Which shape of message (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFlavor {
    /// Verbatim stored message (connection-level errors: 400/408/413/422 on bad requests).
    Mux,
    /// Re-encoded message from request processing; `close` says whether the client
    /// connection is closed after it (adds `connection: close`). HAProxy closes after
    /// messages that carry `Connection: close` (400, 408) whatever the client asked.
    Stream { close: bool },
}

/// Bytes of the built-in response for `status` (None if HAProxy has no page for it).
pub fn builtin_error(status: u16, flavor: ErrorFlavor) -> Option<Vec<u8>> {
    let e = builtin(status)?;
    let mut out = format!("HTTP/1.1 {} {}\r\n", e.status, e.reason);
    match flavor {
        ErrorFlavor::Mux => {
            out.push_str(&format!("Content-length: {}\r\n", e.body.len()));
            out.push_str("Cache-Control: no-cache\r\n");
            if e.closes {
                out.push_str("Connection: close\r\n");
            }
            out.push_str("Content-Type: text/html\r\n");
        }
        ErrorFlavor::Stream { close } => {
            out.push_str(&format!("content-length: {}\r\n", e.body.len()));
            out.push_str("cache-control: no-cache\r\n");
            out.push_str("content-type: text/html\r\n");
            if close || e.closes {
                out.push_str("connection: close\r\n");
            }
        }
    }
    out.push_str("\r\n");
    out.push_str(e.body);
    Some(out.into_bytes())
}

/// Connection header appended to a stream-flavour message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnHeader {
    /// Nothing (HTTP/1.1 client kept alive).
    None,
    /// `connection: close` (client connection closes after the message).
    Close,
    /// `connection: keep-alive` (HTTP/1.0 client that asked for keep-alive and keeps it).
    KeepAlive,
}

/// Stream-flavour built-in message with extra headers inserted after `content-type` (in
/// the given case; HAProxy emits them lower-case), then the connection header. 400 and 408
/// always close.
pub fn stream_error_with(status: u16, extra: &[(&str, &str)], conn: ConnHeader) -> Option<Vec<u8>> {
    let e = builtin(status)?;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
        e.status,
        e.reason,
        e.body.len()
    );
    for (n, v) in extra {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    let conn = if e.closes { ConnHeader::Close } else { conn };
    match conn {
        ConnHeader::None => {}
        ConnHeader::Close => out.push_str("connection: close\r\n"),
        ConnHeader::KeepAlive => out.push_str("connection: keep-alive\r\n"),
    }
    out.push_str("\r\n");
    out.push_str(e.body);
    Some(out.into_bytes())
}

/// `http-request auth [realm <realm>]` answer: 401 with `www-authenticate: Basic
/// realm="<realm>"` (the realm defaults to the proxy name). Measured on 2.6.12.
pub fn auth_challenge(realm: &str, conn: ConnHeader) -> Vec<u8> {
    let v = format!("Basic realm=\"{realm}\"");
    stream_error_with(401, &[("www-authenticate", &v)], conn).expect("401 is built in")
}

/// Message of `errorfile` with an unsupported status (`parsing [F:L] : errorfile : ` prefix
/// added by the config layer).
pub fn errorfile_status_error(status: &str) -> String {
    format!("status code '{status}' not handled.")
}

/// Loads and validates an `errorfile` with the default `tune.bufsize`. See
/// [`load_errorfile_with`].
pub fn load_errorfile(path: impl AsRef<std::path::Path>) -> Result<Vec<u8>, String> {
    load_errorfile_with(path, Limits::default().bufsize).map(|(c, _)| c)
}

/// Loads and validates an `errorfile` the way HAProxy 2.6 does (messages measured with
/// `haproxy -c`; the config layer prefixes them with `parsing [F:L] : errorfile : `):
///
/// * cannot open: `error opening file '<path>'.`; cannot read (directory): `error reading
///   file '<path>'.`
/// * larger than bufsize: truncated to bufsize, with the warning (second tuple member)
///   `custom error message file '<path>' larger than <bufsize> bytes. Truncating.`
/// * an empty file is valid (HAProxy then closes without answering);
/// * otherwise a response head must parse: `'<path>': unable to parse headers (error
///   offset: <n>)` (-2 when the head is incomplete; our offsets are the start of the bad
///   line, HAProxy's may point further into it);
/// * `Transfer-Encoding: chunked`: `'<path>': chunk-encoded payload not supported`;
/// * with a Content-Length, the payload must match it: `'<path>': payload size does not
///   match the announced content-length (<got> != <cl>)`.
///
/// The status line may carry any status. Returns the (possibly truncated) file content,
/// which HAProxy re-encodes before sending (see [`errorfile_wire`]).
pub fn load_errorfile_with(
    path: impl AsRef<std::path::Path>,
    bufsize: usize,
) -> Result<(Vec<u8>, Option<String>), String> {
    let path = path.as_ref();
    let shown = path.display();
    let mut f = std::fs::File::open(path).map_err(|_| format!("error opening file '{shown}'."))?;
    let mut content = Vec::new();
    use std::io::Read;
    f.read_to_end(&mut content)
        .map_err(|_| format!("error reading file '{shown}'."))?;
    let mut warning = None;
    if content.len() > bufsize {
        content.truncate(bufsize);
        warning = Some(format!(
            "custom error message file '{shown}' larger than {bufsize} bytes. Truncating."
        ));
    }
    if content.is_empty() {
        return Ok((content, warning));
    }
    let limits = Limits {
        bufsize: usize::MAX,
        maxrewrite: 0,
        ..Limits::default()
    };
    let head = match scan_head(&content, false, &limits) {
        Ok(super::head::Scan::Complete(h)) => h,
        Ok(super::head::Scan::Partial) => {
            return Err(format!(
                "'{shown}': unable to parse headers (error offset: -2)"
            ));
        }
        Err(_) => {
            let off = bad_line_offset(&content);
            return Err(format!(
                "'{shown}': unable to parse headers (error offset: {off})"
            ));
        }
    };
    debug_assert!(matches!(head.start, StartLine::Status { .. }));
    let mut cl = None;
    for h in &head.headers {
        if h.is("transfer-encoding")
            && list_elements(&h.value).any(|e| e.eq_ignore_ascii_case(b"chunked"))
        {
            return Err(format!("'{shown}': chunk-encoded payload not supported"));
        }
        if h.is("content-length") {
            for e in list_elements(&h.value) {
                match super::message::parse_cl_element(e) {
                    Some(v) if cl.is_none_or(|c| c == v) => cl = Some(v),
                    _ => {
                        return Err(format!(
                            "'{shown}': unable to parse headers (error offset: 0)"
                        ));
                    }
                }
            }
        }
    }
    let payload = content.len() - head.len;
    if let Some(cl) = cl
        && payload as u64 != cl
    {
        return Err(format!(
            "'{shown}': payload size does not match the announced content-length ({payload} != {cl})"
        ));
    }
    Ok((content, warning))
}

/// Offset of the first byte that makes the head invalid, found by re-scanning prefixes line
/// by line (start of the offending line, or of the offending byte in a header name).
fn bad_line_offset(content: &[u8]) -> usize {
    let limits = Limits {
        bufsize: usize::MAX,
        maxrewrite: 0,
        ..Limits::default()
    };
    let mut start = 0;
    for (i, &b) in content.iter().enumerate() {
        if b == b'\n' {
            let mut probe = content[..=i].to_vec();
            probe.extend_from_slice(b"\r\n");
            if scan_head(&probe, false, &limits).is_err() {
                if start == 0 {
                    return 0;
                }
                // Inside a header line: point at the first non-token byte of the name.
                let line = &content[start..i];
                let p = line
                    .iter()
                    .position(|&c| !super::head::is_tchar(c))
                    .unwrap_or(0);
                return start + p;
            }
            start = i + 1;
        }
    }
    start
}

/// The bytes HAProxy sends for an `errorfile` content: start line kept, header names
/// lower-cased, CRLF endings, `Connection` headers removed, `connection: close` appended
/// when `close` and the message is HTTP/1.1 (an HTTP/1.0 message closes by default).
/// An empty content sends nothing.
pub fn errorfile_wire(content: &[u8], close: bool) -> Vec<u8> {
    let limits = Limits {
        bufsize: usize::MAX,
        maxrewrite: 0,
        ..Limits::default()
    };
    let Ok(super::head::Scan::Complete(head)) = scan_head(content, false, &limits) else {
        return content.to_vec();
    };
    let StartLine::Status {
        version,
        status,
        reason,
    } = &head.start
    else {
        return content.to_vec();
    };
    let mut out = format!("HTTP/{}.{} {:03} ", version.major, version.minor, status).into_bytes();
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
    for h in head.headers.iter().filter(|h| !h.is("connection")) {
        out.extend(h.name.iter().map(|b| b.to_ascii_lowercase()));
        out.extend_from_slice(b": ");
        out.extend_from_slice(&h.value);
        out.extend_from_slice(b"\r\n");
    }
    if close && version.is_11() {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&content[head.len..]);
    out
}
