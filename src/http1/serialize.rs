//! Writes (possibly edited) heads to an output buffer, the way HAProxy 2.6 re-emits them:
//! version normalised to `HTTP/1.1` (any version >= 1.1, lower ones kept), header names
//! lower-cased, `name: value` with one space, CRLF endings, obs-folds already merged.

use super::head::{Header, Version};
use super::message::{Request, Response};

/// Output options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOpts {
    /// Lower-case header names (HAProxy always does; set false to keep the client's case).
    pub lowercase_names: bool,
    /// `option h1-case-adjust-bogus-client|server`: names in the `h1-case-adjust` map
    /// ([`set_case_map`]) are written as the map says.
    pub adjust_case: bool,
}

/// The global `h1-case-adjust` map: lower-case name to the name as it must go out.
static CASE_MAP: std::sync::OnceLock<std::collections::HashMap<Vec<u8>, Vec<u8>>> =
    std::sync::OnceLock::new();

/// Sets the `h1-case-adjust` map (once, at start-up; a later pair for a name wins).
pub fn set_case_map(pairs: &[(String, String)]) {
    let m = pairs
        .iter()
        .map(|(from, to)| (from.as_bytes().to_vec(), to.as_bytes().to_vec()))
        .collect();
    let _ = CASE_MAP.set(m);
}

impl Default for WriteOpts {
    fn default() -> Self {
        WriteOpts {
            lowercase_names: true,
            adjust_case: false,
        }
    }
}

/// Versions >= 1.1 are written `HTTP/1.1`; lower ones as received (measured: `HTTP/1.2` is
/// forwarded as `HTTP/1.1`, `HTTP/0.9` as `HTTP/0.9`).
fn version(v: Version) -> [u8; 8] {
    if v.is_11() {
        *b"HTTP/1.1"
    } else {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'0' + v.major,
            b'.',
            b'0' + v.minor,
        ]
    }
}

/// Appends header lines and the final empty line.
pub fn write_headers(out: &mut Vec<u8>, headers: &[Header], opts: WriteOpts) {
    let map = CASE_MAP.get().filter(|_| opts.adjust_case);
    for h in headers {
        if let Some(m) = map {
            let lower = h.name.to_ascii_lowercase();
            out.extend_from_slice(m.get(&lower).unwrap_or(&lower));
        } else if opts.lowercase_names {
            out.extend(h.name.iter().map(|b| b.to_ascii_lowercase()));
        } else {
            out.extend_from_slice(&h.name);
        }
        out.extend_from_slice(b": ");
        out.extend_from_slice(&h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `METHOD URI VERSION\r\n` + headers + `\r\n`.
pub fn write_request_head(out: &mut Vec<u8>, req: &Request, opts: WriteOpts) {
    out.reserve(
        req.method.len()
            + req.uri.len()
            + 16
            + req
                .headers
                .iter()
                .map(|h| h.name.len() + h.value.len() + 4)
                .sum::<usize>(),
    );
    out.extend_from_slice(&req.method);
    out.push(b' ');
    out.extend_from_slice(&req.uri);
    out.push(b' ');
    out.extend_from_slice(&version(req.version));
    out.extend_from_slice(b"\r\n");
    write_headers(out, &req.headers, opts);
}

/// Appends `VERSION STATUS REASON\r\n` + headers + `\r\n` (an empty reason still gets the
/// space after the status, as HAProxy writes it).
pub fn write_response_head(out: &mut Vec<u8>, resp: &Response, opts: WriteOpts) {
    out.extend_from_slice(&version(resp.version));
    let st = resp.status;
    if st <= 999 {
        out.extend_from_slice(&[
            b' ',
            b'0' + (st / 100) as u8,
            b'0' + (st / 10 % 10) as u8,
            b'0' + (st % 10) as u8,
            b' ',
        ]);
    } else {
        out.extend_from_slice(format!(" {st} ").as_bytes());
    }
    out.extend_from_slice(&resp.reason);
    out.extend_from_slice(b"\r\n");
    write_headers(out, &resp.headers, opts);
}

/// Appends one chunk in canonical form (`<hex>\r\n<data>\r\n`); empty data writes nothing.
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk with no trailers (`0\r\n\r\n`).
pub fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}
