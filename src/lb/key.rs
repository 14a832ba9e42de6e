//! Extraction of the hash input for each hashing algorithm, exactly as
//! HAProxy 2.6 computes it.

use std::net::IpAddr;

/// `balance source` key: IPv4 = the address as a big-endian u32; IPv6 = XOR
/// of its four big-endian 32-bit words. IPv4-mapped IPv6 addresses are *not*
/// canonicalised (`::ffff:a.b.c.d` hashes as IPv6: `0x0000ffff ^ ipv4`),
/// as HAProxy does on a dual-stack listener.
pub fn source_key(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from_be_bytes(a.octets()),
        IpAddr::V6(a) => {
            let o = a.octets();
            (0..4).fold(0u32, |h, i| {
                h ^ u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

/// The path part of a request-line URI as HAProxy's path parser sees it:
/// origin form is returned as is; absolute form (`scheme://authority/...`)
/// loses scheme and authority; `*` and authority form have no path (empty).
/// The query string is kept.
pub fn uri_path(uri: &[u8]) -> &[u8] {
    if uri.first() == Some(&b'/') {
        return uri;
    }
    if uri == b"*" {
        return &[];
    }
    // absolute form: look for "://"
    if let Some(pos) = find(uri, b"://") {
        let after = &uri[pos + 3..];
        return match after.iter().position(|&c| c == b'/') {
            Some(p) => &after[p..],
            None => &[],
        };
    }
    &[]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The bytes `balance uri` hashes: the URI truncated to `len` bytes, ending
/// before the first `?` (unless `whole`) and, with `depth N`, before the
/// (N+1)-th `/`.
pub fn uri_hash_input(uri: &[u8], whole: bool, len: Option<u32>, depth: Option<u32>) -> &[u8] {
    let mut uri = uri;
    if let Some(l) = len
        && (l as usize) < uri.len()
    {
        uri = &uri[..l as usize];
    }
    let stop_at_slash = depth.map(|d| d as u64 + 1);
    let mut slashes = 0u64;
    let mut end = 0;
    while end < uri.len() {
        let c = uri[end];
        if c == b'/' {
            slashes += 1;
            if Some(slashes) == stop_at_slash {
                break;
            }
        } else if c == b'?' && !whole {
            break;
        }
        end += 1;
    }
    &uri[..end]
}

/// The value `balance url_param NAME` hashes: scans the `&`-separated pairs
/// after the first `?` for `NAME=` (exact, case-sensitive) and returns the
/// value up to the next `&`. `None` when absent (round-robin fallback).
pub fn url_param_value<'a>(uri: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let q = uri.iter().position(|&c| c == b'?')?;
    let mut params = &uri[q + 1..];
    let plen = name.len();
    while params.len() > plen {
        if params[plen] == b'=' && &params[..plen] == name {
            let val = &params[plen + 1..];
            let end = val.iter().position(|&c| c == b'&').unwrap_or(val.len());
            return Some(&val[..end]);
        }
        let amp = params.iter().position(|&c| c == b'&')?;
        params = &params[amp + 1..];
    }
    None
}

/// `url_param NAME check_post`: the value of `NAME=` in a POST body
/// (`application/x-www-form-urlencoded` style), used when the query string
/// does not have it. `body` is the request body buffered so far. As in
/// HAProxy, the value runs to the next `&` or the end of the data, but only
/// the value's *first* byte is checked: a blank there gives an empty value,
/// any other non-token byte means "no parameter" (binary body).
pub fn url_param_body_value<'a>(body: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let plen = name.len();
    let mut params = body;
    while params.len() > plen {
        if params[plen] == b'=' && &params[..plen] == name {
            let val = &params[plen + 1..];
            let end = val.iter().position(|&c| c == b'&').unwrap_or(val.len());
            if let Some(&first) = val.first()
                && end > 0
                && !is_token(first)
            {
                if matches!(first, b' ' | b'\t' | b'\r' | b'\n') {
                    return Some(&val[..0]);
                }
                return None;
            }
            return Some(&val[..end]);
        }
        let amp = params.iter().position(|&c| c == b'&')?;
        params = &params[amp + 1..];
    }
    None
}

/// RFC 7230 `tchar`.
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// First value of a header as HAProxy's header lookup returns it: the first
/// comma-separated element of the first occurrence (commas inside
/// double-quoted strings do not separate), with surrounding blanks removed.
/// An empty element yields `None` (HAProxy then falls back to round robin).
pub fn first_header_value(raw: &[u8]) -> Option<&[u8]> {
    let (mut quoted, mut qdpair) = (false, false);
    let mut end = raw.len();
    for (i, &c) in raw.iter().enumerate() {
        if qdpair {
            qdpair = false;
        } else if quoted {
            if c == b'\\' {
                qdpair = true;
            } else if c == b'"' {
                quoted = false;
            }
        } else if c == b'"' {
            quoted = true;
        } else if c == b',' {
            end = i;
            break;
        }
    }
    let v = trim_lws(&raw[..end]);
    if v.is_empty() { None } else { Some(v) }
}

fn trim_lws(v: &[u8]) -> &[u8] {
    let is_ws = |c: &u8| *c == b' ' || *c == b'\t';
    let start = v.iter().position(|c| !is_ws(c)).unwrap_or(v.len());
    let end = v.iter().rposition(|c| !is_ws(c)).map_or(start, |e| e + 1);
    &v[start..end]
}

/// `use_domain_only`: hash only the label before the last dot
/// (`www.example.com` -> `example`); a value without dots is used whole.
/// Mirrors HAProxy's backward scan, including its handling of odd inputs.
///
/// HAProxy 2.6 quirk not modelled: its scan also looks at the byte just
/// *after* the value (whatever is in the buffer there); when that byte is a
/// `.` the TLD is hashed instead (`www.example.com` -> `com`). Observed on
/// ~2% of requests of a keep-alive connection whose previous request had a
/// longer `Host`; not reproducible from the request alone.
pub fn domain_only(v: &[u8]) -> &[u8] {
    let len = v.len();
    let mut end = len;
    let mut dohash = false;
    let mut i = len;
    while i > 0 {
        if dohash {
            if v[i - 1] == b'.' {
                break;
            }
        } else if i < len && v[i] == b'.' {
            end = i;
            dohash = true;
        }
        i -= 1;
    }
    &v[i..end]
}

/// Result of looking for the RDP cookie in a TCP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdpCookie<'a> {
    /// The cookie value (may be empty; `balance rdp-cookie` then falls back
    /// to round robin).
    Found(&'a [u8]),
    /// Not enough data yet: wait for more (within `tcp-request
    /// inspect-delay`).
    NeedMore,
    /// The payload does not carry the cookie.
    Absent,
}

/// Extract the RDP routing cookie (`Cookie: <name>=<value>\r\n` right after
/// the 11 bytes of TPKT + X.224 headers of an RDP connection request), as
/// `req.rdp_cookie(<name>)` / `balance rdp-cookie(<name>)` do. The `Cookie:`
/// prefix and `<name>` are matched case-insensitively, spaces after the
/// colon are skipped; an empty `name` accepts any cookie name.
pub fn rdp_cookie<'a>(payload: &'a [u8], name: &[u8]) -> RdpCookie<'a> {
    use RdpCookie::*;
    if payload.len() <= 11 {
        return NeedMore;
    }
    let mut d = &payload[11..];
    if d.len() <= 7 {
        return NeedMore;
    }
    if !d[..7].eq_ignore_ascii_case(b"Cookie:") {
        return Absent;
    }
    d = &d[7..];
    while let Some((b' ', rest)) = d.split_first() {
        d = rest;
    }
    if !name.is_empty() {
        if d.len() <= name.len() {
            return NeedMore;
        }
        if d[name.len()] != b'=' || !d[..name.len()].eq_ignore_ascii_case(name) {
            return Absent;
        }
        d = &d[name.len() + 1..];
    } else {
        let mut i = 0;
        while i < d.len() && d[i] != b'=' {
            if d[i] == b'\r' || d[i] == b'\n' {
                return Absent;
            }
            i += 1;
        }
        if i == d.len() {
            return NeedMore;
        }
        d = &d[i + 1..];
    }
    let end = d.iter().position(|&c| c == b'\r').unwrap_or(d.len());
    if d.len() - end < 2 {
        return NeedMore;
    }
    if d[end + 1] != b'\n' {
        return Absent;
    }
    Found(&d[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lb_source_keys() {
        let k = |s: &str| source_key(s.parse().unwrap());
        assert_eq!(k("10.0.0.1"), 0x0a00_0001);
        assert_eq!(k("2001:db8::1"), 0x2001_0db9);
        assert_eq!(k("::ffff:10.0.0.1"), 0x0a00_fffe);
    }

    #[test]
    fn lb_uri_inputs() {
        let u = b"/a/b/c?x=1/2";
        assert_eq!(uri_hash_input(u, false, None, None), b"/a/b/c");
        assert_eq!(uri_hash_input(u, true, None, None), b"/a/b/c?x=1/2");
        assert_eq!(uri_hash_input(u, false, Some(5), None), b"/a/b/");
        assert_eq!(uri_hash_input(u, false, None, Some(2)), b"/a/b");
        assert_eq!(uri_hash_input(u, false, None, Some(1)), b"/a");
        assert_eq!(uri_path(b"http://h:80/p?q"), b"/p?q");
        assert_eq!(uri_path(b"http://h"), b"");
        assert_eq!(uri_path(b"*"), b"");
        assert_eq!(uri_path(b"/x"), b"/x");
    }

    #[test]
    fn lb_url_param() {
        assert_eq!(
            url_param_value(b"/p?a=1&userid=42&b", b"userid"),
            Some(&b"42"[..])
        );
        assert_eq!(url_param_value(b"/p?userid=", b"userid"), Some(&b""[..]));
        assert_eq!(url_param_value(b"/p?userid", b"userid"), None);
        assert_eq!(url_param_value(b"/p?userid=&x", b"userid"), Some(&b""[..]));
        assert_eq!(url_param_value(b"/p?xuserid=1", b"userid"), None);
        assert_eq!(url_param_value(b"/p", b"userid"), None);
    }

    #[test]
    fn lb_rdp_cookie() {
        let mut p = b"\x03\x00\x00\x2c\x27\xe0\x00\x00\x00\x00\x00".to_vec();
        p.extend_from_slice(b"Cookie: mstshash=alice\r\n\x01\x00\x08\x00");
        assert_eq!(rdp_cookie(&p, b"mstshash"), RdpCookie::Found(b"alice"));
        assert_eq!(rdp_cookie(&p, b"MSTSHASH"), RdpCookie::Found(b"alice"));
        assert_eq!(rdp_cookie(&p, b""), RdpCookie::Found(b"alice"));
        assert_eq!(rdp_cookie(&p, b"other"), RdpCookie::Absent);
        assert_eq!(rdp_cookie(&p[..30], b"mstshash"), RdpCookie::NeedMore);
        assert_eq!(rdp_cookie(&p[..8], b"mstshash"), RdpCookie::NeedMore);
        let mut q = p[..11].to_vec();
        q.extend_from_slice(b"Hello: x\r\n");
        assert_eq!(rdp_cookie(&q, b"mstshash"), RdpCookie::Absent);
    }

    #[test]
    fn lb_url_param_body() {
        assert_eq!(
            url_param_body_value(b"a=1&userid=42&b=2", b"userid"),
            Some(&b"42"[..])
        );
        assert_eq!(
            url_param_body_value(b"userid=42", b"userid"),
            Some(&b"42"[..])
        );
        assert_eq!(
            url_param_body_value(b"userid= 42", b"userid"),
            Some(&b""[..])
        );
        assert_eq!(url_param_body_value(b"userid=\x0142", b"userid"), None);
        assert_eq!(
            url_param_body_value(b"userid=4\x012", b"userid"),
            Some(&b"4\x012"[..])
        );
        assert_eq!(url_param_body_value(b"xuserid=1", b"userid"), None);
    }

    #[test]
    fn lb_domain_only() {
        assert_eq!(domain_only(b"www.example.com"), b"example");
        assert_eq!(domain_only(b"example.com"), b"example");
        assert_eq!(domain_only(b"localhost"), b"localhost");
        assert_eq!(domain_only(b"a.b.c.d"), b"c");
        assert_eq!(domain_only(b"example.com:8080"), b"example");
        assert_eq!(first_header_value(b"  a , b"), Some(&b"a"[..]));
        assert_eq!(first_header_value(b"\"a,b\", c"), Some(&b"\"a,b\""[..]));
        assert_eq!(first_header_value(b" , c"), None);
        assert_eq!(first_header_value(b""), None);
    }
}
