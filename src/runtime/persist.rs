//! Cookie-based server persistence: `cookie NAME [insert|rewrite|prefix] ...` on a backend and
//! `cookie VALUE` on its servers, with HAProxy 2.6's behaviour (measured against 2.6.12).
//!
//! Request side: the first `NAME` cookie whose value names a running server sends the request
//! there directly (state `V`); a value naming only stopped servers is `D`, an unknown or empty
//! one `I`, no cookie `N`. In `prefix` mode the value is `SRV~APP` and `SRV~` is removed before
//! the server sees it; `insert indirect` removes the cookie from the request altogether.
//!
//! Response side: the server's own `NAME` cookie is kept (`preserve`, state `P`), deleted
//! (`insert`, or `indirect` on a direct request: `D`), or given the server's value (`rewrite`)
//! or prefix (`prefix`: `R`). In `insert` mode a request that did not come directly gets
//! `Set-Cookie: NAME=VALUE; path=/[; domain=D]...[; HttpOnly][; Secure][; ATTR]...` (`I`),
//! only on POST with `postonly`, plus `Cache-control: private` with `nocache` when the response
//! would be cacheable.
//!
//! The two characters are the third and fourth of the termination state (`%tsc`) when a mode
//! is set; a passive `cookie NAME` persists but logs `--`, as HAProxy does.

use crate::config::ir::{CookieCfg, CookieMode, Mode, Proxy};
use crate::http1::{Header, Request, Response};

/// The persistence settings of one backend.
#[derive(Debug)]
pub struct Persist {
    cfg: CookieCfg,
    /// `option persist`: a cookie naming a stopped server still sends the request there.
    force: bool,
    /// Each server's `cookie` value, by server index.
    srv: Vec<Option<Vec<u8>>>,
}

/// What the request's cookies decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReqCookie {
    /// The server to use directly (a `V` cookie).
    pub server: Option<usize>,
    /// `N`, `I`, `D` or `V`.
    pub state: u8,
}

/// One `name=value` item of a `Cookie` header: byte ranges in the header value.
struct Item {
    /// Start of the name.
    start: usize,
    name_end: usize,
    /// The value (empty range when there is no `=`).
    val: Option<(usize, usize)>,
    /// End of the value (before trailing blanks).
    end: usize,
    /// The `;` or `,` after it (or the end of the header).
    delim: usize,
}

/// Splits a `Cookie` header value on `;` and `,` (HAProxy accepts both).
fn items(v: &[u8]) -> Vec<Item> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        while i < v.len() && (v[i] == b' ' || v[i] == b'\t') {
            i += 1;
        }
        let start = i;
        while i < v.len() && v[i] != b';' && v[i] != b',' {
            i += 1;
        }
        let mut end = i;
        while end > start && (v[end - 1] == b' ' || v[end - 1] == b'\t') {
            end -= 1;
        }
        if end > start {
            let item = &v[start..end];
            let (name_end, val) = match item.iter().position(|&b| b == b'=') {
                Some(eq) => {
                    let mut ne = start + eq;
                    while ne > start && (v[ne - 1] == b' ' || v[ne - 1] == b'\t') {
                        ne -= 1;
                    }
                    let mut vs = start + eq + 1;
                    while vs < end && (v[vs] == b' ' || v[vs] == b'\t') {
                        vs += 1;
                    }
                    (ne, Some((vs, end)))
                }
                None => (end, None),
            };
            out.push(Item {
                start,
                name_end,
                val,
                end,
                delim: i,
            });
        }
        i += 1;
    }
    out
}

/// `name=value` of a cookie item, blanks around `=` dropped (as HAProxy logs it).
fn normalized(v: &[u8], it: &Item) -> Vec<u8> {
    let mut out = v[it.start..it.name_end].to_vec();
    if let Some((a, b)) = it.val {
        out.push(b'=');
        out.extend_from_slice(&v[a..b]);
    }
    out
}

/// `capture cookie NAME len N` on the request: the first cookie of the `Cookie` headers
/// whose `name=value` starts with NAME, cut to N bytes (at most 63).
pub fn capture_request(headers: &[Header], name: &str, len: usize) -> Option<Vec<u8>> {
    for h in headers.iter().filter(|h| h.is("cookie")) {
        for it in items(&h.value) {
            let mut c = normalized(&h.value, &it);
            if c.starts_with(name.as_bytes()) {
                c.truncate(len.min(63));
                return Some(c);
            }
        }
    }
    None
}

/// The same on the response's `Set-Cookie` headers (their attributes aside).
pub fn capture_response(headers: &[Header], name: &str, len: usize) -> Option<Vec<u8>> {
    for h in headers.iter().filter(|h| h.is("set-cookie")) {
        let end = h
            .value
            .iter()
            .position(|&b| b == b';')
            .unwrap_or(h.value.len());
        if let Some(it) = items(&h.value[..end]).into_iter().next() {
            let mut c = normalized(&h.value[..end], &it);
            if c.starts_with(name.as_bytes()) {
                c.truncate(len.min(63));
                return Some(c);
            }
        }
    }
    None
}

/// HAProxy's status codes that are cacheable by default (RFC 7231 §6.1).
fn cacheable_status(st: u16) -> bool {
    matches!(
        st,
        200 | 203 | 204 | 206 | 300 | 301 | 404 | 405 | 410 | 414 | 501
    )
}

/// Comma-separated values of every header `name`.
fn values<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers.iter().filter(move |h| h.is(name)).flat_map(|h| {
        h.value
            .split(|&b| b == b',')
            .map(|v| v.trim_ascii())
            .filter(|v| !v.is_empty())
    })
}

/// Whether a shared cache could keep this response (HAProxy's test before `nocache` adds
/// `Cache-control: private`): a cacheable method and status, no `Pragma: no-cache`, no
/// `Cache-Control` forbidding it, and either freshness (`max-age`, `s-maxage`, `Expires`) or
/// a validator (`Last-Modified`, `ETag`).
pub fn response_cacheable(get_or_head: bool, resp: &Response) -> bool {
    if !get_or_head || !cacheable_status(resp.status) {
        return false;
    }
    if values(&resp.headers, "pragma").any(|v| v.eq_ignore_ascii_case(b"no-cache")) {
        return false;
    }
    let mut fresh = false;
    for v in values(&resp.headers, "cache-control") {
        let lower = v.to_ascii_lowercase();
        if matches!(
            &lower[..],
            b"private" | b"no-cache" | b"no-store" | b"max-age=0" | b"s-maxage=0"
        ) {
            return false;
        }
        if lower.starts_with(b"max-age") || lower.starts_with(b"s-maxage") {
            fresh = true;
        }
    }
    let has = |n: &str| resp.headers.iter().any(|h| h.is(n));
    fresh || has("expires") || has("last-modified") || has("etag")
}

impl Persist {
    /// `None` when the backend has no `cookie` or is not in `mode http`.
    pub fn build(p: &Proxy) -> Option<Persist> {
        if p.mode.value != Mode::Http {
            return None;
        }
        let cfg = p.cookie.as_ref()?.value.clone();
        Some(Persist {
            cfg,
            force: p.option("persist"),
            srv: p
                .servers
                .iter()
                .map(|s| s.params.cookie.as_ref().map(|c| c.as_bytes().to_vec()))
                .collect(),
        })
    }

    /// The states appear in the log (a mode is set).
    pub fn logged(&self) -> bool {
        self.cfg.mode != CookieMode::Passive
    }

    /// Reads (and rewrites) the request's `Cookie` headers. `running(i)`: server `i` is not
    /// stopped (up, possibly draining).
    pub fn on_request(&self, req: &mut Request, running: impl Fn(usize) -> bool) -> ReqCookie {
        let name = self.cfg.name.as_bytes();
        let prefix = self.cfg.mode == CookieMode::Prefix;
        let remove = self.cfg.mode == CookieMode::Insert && self.cfg.indirect;
        let mut out = ReqCookie {
            server: None,
            state: b'N',
        };
        let mut drop_headers = Vec::new();
        for (hi, h) in req.headers.iter_mut().enumerate() {
            if !h.is("cookie") {
                continue;
            }
            let its = items(&h.value);
            // Byte ranges to cut from this header's value, in order.
            let mut cuts: Vec<(usize, usize)> = Vec::new();
            for (k, it) in its.iter().enumerate() {
                if &h.value[it.start..it.name_end] != name {
                    continue;
                }
                let Some((vs, ve)) = it.val else {
                    continue;
                };
                let val = &h.value[vs..ve];
                let delim = if prefix {
                    val.iter().position(|&b| b == b'~')
                } else {
                    None
                };
                let id = &val[..delim.unwrap_or(val.len())];
                if out.server.is_none() {
                    let mut found = None;
                    if !id.is_empty() {
                        for (i, c) in self.srv.iter().enumerate() {
                            if c.as_deref() == Some(id) {
                                let up = running(i);
                                if up || self.force {
                                    found = Some((i, up));
                                    break;
                                }
                                out.state = b'D';
                            }
                        }
                    }
                    match found {
                        Some((i, up)) => {
                            out.server = Some(i);
                            out.state = if up { b'V' } else { b'D' };
                        }
                        None if out.state != b'D' => out.state = b'I',
                        None => {}
                    }
                }
                if let Some(d) = delim {
                    cuts.push((vs, vs + d + 1));
                } else if remove {
                    // From the delimiter before this item (or its start when first) to the
                    // delimiter after it (or to the next item when first).
                    let (a, b) = if k == 0 {
                        (
                            it.start,
                            its.get(1).map(|n| n.start).unwrap_or(h.value.len()),
                        )
                    } else {
                        (its[k - 1].end, it.delim)
                    };
                    cuts.push((a, b));
                }
            }
            for &(a, b) in cuts.iter().rev() {
                h.value.drain(a..b);
            }
            if remove && items(&h.value).is_empty() {
                drop_headers.push(hi);
            }
        }
        for hi in drop_headers.into_iter().rev() {
            req.headers.remove(hi);
        }
        out
    }

    /// Handles the server's `Set-Cookie` headers and inserts the persistence cookie; returns
    /// the server-side state (`N`, `P`, `D`, `R` or `I`). `direct`: the request came with a
    /// valid cookie for `srv`; `method`: the request's.
    pub fn on_response(&self, resp: &mut Response, srv: usize, direct: bool, method: &[u8]) -> u8 {
        let c = &self.cfg;
        let name = c.name.as_bytes();
        let own = self.srv.get(srv).and_then(|v| v.as_deref());
        let mut state = b'N';
        let mut i = 0;
        while i < resp.headers.len() {
            let h = &mut resp.headers[i];
            let matches = h.is("set-cookie") && {
                let v = &h.value;
                let eq = v.iter().position(|&b| b == b'=').unwrap_or(v.len());
                v[..eq].trim_ascii() == name
            };
            if !matches {
                i += 1;
                continue;
            }
            state = b'P';
            if c.preserve {
            } else if c.mode == CookieMode::Insert || (direct && c.indirect) {
                resp.headers.remove(i);
                state = b'D';
                continue;
            } else if let (Some(own), CookieMode::Rewrite | CookieMode::Prefix) = (own, c.mode) {
                // HAProxy drops the blanks around `=` when it rewrites the value; the ones
                // after the value stay.
                let v = &h.value;
                let eq = v.iter().position(|&b| b == b'=').unwrap_or(v.len());
                let mut ne = eq;
                while ne > 0 && matches!(v[ne - 1], b' ' | b'\t') {
                    ne -= 1;
                }
                let mut vs = (eq + 1).min(v.len());
                while vs < v.len() && matches!(v[vs], b' ' | b'\t') {
                    vs += 1;
                }
                let mut ve = v[vs..]
                    .iter()
                    .position(|&b| b == b';')
                    .map(|p| vs + p)
                    .unwrap_or(v.len());
                while ve > vs && matches!(v[ve - 1], b' ' | b'\t') {
                    ve -= 1;
                }
                let mut repl = vec![b'='];
                repl.extend_from_slice(own);
                if c.mode == CookieMode::Prefix {
                    repl.push(b'~');
                    repl.extend_from_slice(&v[vs..ve]);
                }
                h.value.splice(ne..ve, repl);
                state = b'R';
            }
            i += 1;
        }
        if c.mode == CookieMode::Insert
            && state != b'P'
            && !direct
            && (!c.postonly || method == b"POST")
        {
            if let Some(own) = own {
                let mut v = Vec::with_capacity(64);
                v.extend_from_slice(name);
                v.push(b'=');
                v.extend_from_slice(own);
                v.extend_from_slice(b"; path=/");
                for d in &c.domains {
                    v.extend_from_slice(b"; domain=");
                    v.extend_from_slice(d.as_bytes());
                }
                if c.httponly {
                    v.extend_from_slice(b"; HttpOnly");
                }
                if c.secure {
                    v.extend_from_slice(b"; Secure");
                }
                for a in &c.attrs {
                    v.extend_from_slice(b"; ");
                    v.extend_from_slice(a.as_bytes());
                }
                let cacheable =
                    c.nocache && response_cacheable(method == b"GET" || method == b"HEAD", resp);
                resp.headers.push(Header {
                    name: b"set-cookie".to_vec(),
                    value: v,
                });
                if cacheable {
                    resp.headers.push(Header {
                        name: b"cache-control".to_vec(),
                        value: b"private".to_vec(),
                    });
                }
                state = b'I';
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ir::CookieCfg;

    fn persist(mode: CookieMode, indirect: bool) -> Persist {
        Persist {
            cfg: CookieCfg {
                name: "SRV".into(),
                mode,
                indirect,
                ..Default::default()
            },
            srv: vec![Some(b"c1".to_vec()), Some(b"c2".to_vec()), None],
            force: false,
        }
    }

    fn req(cookies: &[&str]) -> Request {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for c in cookies {
            raw.push_str(&format!("Cookie: {c}\r\n"));
        }
        raw.push_str("\r\n");
        match crate::http1::parse_request(raw.as_bytes(), &Default::default()) {
            Ok(crate::http1::Parsed::Complete(r)) => r,
            _ => panic!("bad test request"),
        }
    }

    fn cookies(r: &Request) -> Vec<String> {
        r.headers
            .iter()
            .filter(|h| h.is("cookie"))
            .map(|h| String::from_utf8_lossy(&h.value).to_string())
            .collect()
    }

    #[test]
    fn request_states_and_rewrites_as_haproxy() {
        let up = |i: usize| i != 1;
        let ins_ind = persist(CookieMode::Insert, true);
        type Case<'a> = (&'a [&'a str], Option<usize>, u8, &'a [&'a str]);
        let cases: &[Case] = &[
            (&[], None, b'N', &[]),
            (&["SRV=c1"], Some(0), b'V', &[]),
            (&["a=b; SRV=c1; d=e"], Some(0), b'V', &["a=b; d=e"]),
            (&["SRV=c1, x=1"], Some(0), b'V', &["x=1"]),
            (
                &["x=1;SRV=c1 ; y=2", "SRV=c2"],
                Some(0),
                b'V',
                &["x=1; y=2"],
            ),
            (&["SRV=c2"], None, b'D', &[]),
            (&["SRV=zz"], None, b'I', &[]),
            (&["SRV="], None, b'I', &[]),
            (&["SRV"], None, b'N', &["SRV"]),
        ];
        for (c, srv, st, left) in cases {
            let mut r = req(c);
            let got = ins_ind.on_request(&mut r, up);
            assert_eq!((got.server, got.state), (*srv, *st), "{c:?}");
            assert_eq!(cookies(&r), *left, "{c:?}");
        }
        // Without `indirect` the cookie reaches the server untouched.
        let ins = persist(CookieMode::Insert, false);
        let mut r = req(&["SRV=c2; SRV=c1"]);
        let got = ins.on_request(&mut r, |_| true);
        assert_eq!((got.server, got.state), (Some(1), b'V'));
        assert_eq!(cookies(&r), ["SRV=c2; SRV=c1"]);
        // Prefix: `SRV~` is removed, a value without `~` is compared whole.
        let pfx = persist(CookieMode::Prefix, false);
        for (c, srv, st, left) in [
            ("SRV=c1~abc; x=1", Some(0), b'V', "SRV=abc; x=1"),
            ("SRV=abc", None, b'I', "SRV=abc"),
            ("SRV=c1", Some(0), b'V', "SRV=c1"),
        ] {
            let mut r = req(&[c]);
            let got = pfx.on_request(&mut r, |_| true);
            assert_eq!((got.server, got.state), (srv, st), "{c}");
            assert_eq!(cookies(&r), [left], "{c}");
        }
    }

    fn resp(extra: &[(&str, &str)], status: u16) -> Response {
        let mut raw = format!("HTTP/1.1 {status} X\r\n");
        for (n, v) in extra {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("Content-Length: 0\r\n\r\n");
        let info = crate::http1::RequestInfo {
            head: false,
            connect: false,
            upgrade: false,
        };
        match crate::http1::parse_response(raw.as_bytes(), info, &Default::default()) {
            Ok(crate::http1::Parsed::Complete(r)) => r,
            _ => panic!("bad test response"),
        }
    }

    fn set_cookies(r: &Response) -> Vec<String> {
        r.headers
            .iter()
            .filter(|h| h.is("set-cookie") || h.is("cache-control"))
            .map(|h| {
                format!(
                    "{}: {}",
                    String::from_utf8_lossy(&h.name).to_lowercase(),
                    String::from_utf8_lossy(&h.value)
                )
            })
            .collect()
    }

    #[test]
    fn response_cookies_as_haproxy() {
        let mut ins = persist(CookieMode::Insert, true);
        ins.cfg.nocache = true;
        let mut r = resp(&[("Set-Cookie", "SRV=abc; path=/")], 200);
        assert_eq!(ins.on_response(&mut r, 0, false, b"GET"), b'I');
        assert_eq!(set_cookies(&r), ["set-cookie: SRV=c1; path=/"]);
        let mut r = resp(&[("Set-Cookie", "SRV=abc")], 200);
        assert_eq!(ins.on_response(&mut r, 0, true, b"GET"), b'D');
        assert!(set_cookies(&r).is_empty());
        let mut r = resp(&[("ETag", "\"x\"")], 200);
        assert_eq!(ins.on_response(&mut r, 0, false, b"GET"), b'I');
        assert_eq!(
            set_cookies(&r),
            ["set-cookie: SRV=c1; path=/", "cache-control: private"]
        );
        let mut r = resp(&[("ETag", "\"x\""), ("Pragma", "no-cache")], 200);
        ins.on_response(&mut r, 0, false, b"GET");
        assert_eq!(set_cookies(&r), ["set-cookie: SRV=c1; path=/"]);
        let mut r = resp(&[("Cache-Control", "public")], 200);
        ins.on_response(&mut r, 0, false, b"GET");
        assert_eq!(
            set_cookies(&r),
            ["cache-control: public", "set-cookie: SRV=c1; path=/"]
        );
        let mut r = resp(&[("ETag", "\"x\"")], 200);
        ins.on_response(&mut r, 0, false, b"POST");
        assert_eq!(set_cookies(&r), ["set-cookie: SRV=c1; path=/"]);
        // A server without a cookie value gets nothing inserted.
        let mut r = resp(&[], 200);
        assert_eq!(ins.on_response(&mut r, 2, false, b"GET"), b'N');

        ins.cfg.preserve = true;
        let mut r = resp(&[("Set-Cookie", "SRV=abc")], 200);
        assert_eq!(ins.on_response(&mut r, 0, false, b"GET"), b'P');
        assert_eq!(set_cookies(&r), ["set-cookie: SRV=abc"]);

        let mut all = persist(CookieMode::Insert, false);
        all.cfg.httponly = true;
        all.cfg.secure = true;
        all.cfg.domains = vec![".a.com".into(), ".b.com".into()];
        all.cfg.attrs = vec!["SameSite=Lax".into()];
        let mut r = resp(&[], 200);
        all.on_response(&mut r, 1, false, b"GET");
        assert_eq!(
            set_cookies(&r),
            [
                "set-cookie: SRV=c2; path=/; domain=.a.com; domain=.b.com; HttpOnly; Secure; SameSite=Lax"
            ]
        );
        all.cfg.postonly = true;
        let mut r = resp(&[], 200);
        assert_eq!(all.on_response(&mut r, 1, false, b"GET"), b'N');

        let rw = persist(CookieMode::Rewrite, false);
        let mut r = resp(&[("Set-Cookie", "SRV=abc; path=/x")], 200);
        assert_eq!(rw.on_response(&mut r, 0, true, b"GET"), b'R');
        assert_eq!(set_cookies(&r), ["set-cookie: SRV=c1; path=/x"]);
        let mut r = resp(&[], 200);
        assert_eq!(rw.on_response(&mut r, 0, true, b"GET"), b'N');

        let pfx = persist(CookieMode::Prefix, true);
        let mut r = resp(&[("Set-Cookie", "SRV=abc; path=/x")], 200);
        assert_eq!(pfx.on_response(&mut r, 0, false, b"GET"), b'R');
        assert_eq!(set_cookies(&r), ["set-cookie: SRV=c1~abc; path=/x"]);
        let mut r = resp(&[("Set-Cookie", "SRV=abc")], 200);
        assert_eq!(pfx.on_response(&mut r, 0, true, b"GET"), b'D');
    }
}
