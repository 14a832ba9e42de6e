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
}

impl Default for WriteOpts {
    fn default() -> Self {
        WriteOpts {
            lowercase_names: true,
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
    for h in headers {
        if opts.lowercase_names {
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
