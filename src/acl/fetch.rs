//! Sample fetches: parsing `name[(args)][,conv[(args)]]...` and evaluating it against a
//! [`SampleCtx`].
//!
//! Names HAProxy 2.6 knows but rhaproxy does not evaluate are refused with a "not supported by
//! rhaproxy" error; names HAProxy does not know get HAProxy's own error text.

use std::net::IpAddr;

pub use super::converters::Conv;
use super::{Sample, SampleCtx};
use crate::log::haproxy_names::{HAPROXY_CONVERTERS, HAPROXY_FETCHES};

/// What a fetch needs to give a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Needs {
    /// The connection alone (addresses, proxies, constants).
    L4,
    /// The HTTP request head.
    Request,
    /// The HTTP response head.
    Response,
}

/// The sample's type, which gives the default match method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmpType {
    Bool,
    Int,
    Ip,
    Str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    AlwaysTrue,
    AlwaysFalse,
    Int(i64),
    Str(String),
    Bool(bool),
    Src,
    SrcPort,
    Dst,
    DstPort,
    FeId,
    FeName,
    BeId,
    BeName,
    /// `nbsrv([BACKEND])`: usable servers of that backend (the current one without argument).
    NbSrv(Option<String>),
    SrvIsUp(String, String),
    /// `ssl_fc`: rhaproxy has no TLS, always false.
    SslFc,
    /// Another TLS fetch (`ssl_fc_sni`, `ssl_c_used`, ...): false for booleans, else no sample,
    /// as on HAProxy's plain connections.
    Tls(&'static str, SmpType),
    /// `req.hdr_names([DELIM])`
    HdrNames(Option<String>),
    /// `env(NAME)`
    Env(String),
    Hostname,
    /// `date([OFFSET])`: seconds since the epoch.
    Date(i64),
    /// `rand([RANGE])`
    Rand(Option<u64>),
    /// `stopping`: a soft stop is in progress.
    Stopping,
    /// `be_conn([BACKEND])`: connections in progress on the backend.
    BeConn(Option<String>),
    /// `req.proto_http`: the request is HTTP (true once an HTTP request head was parsed).
    ProtoHttp,
    Method,
    Path,
    /// `pathq`: path and query.
    PathQ,
    /// `var(SCOPE.NAME[,DEFAULT])`
    Var(String, Option<String>),
    Url,
    /// `url_ip`, `url_port`: the address and port of an absolute-form request target.
    UrlIp,
    UrlPort,
    Base,
    Query,
    /// `req.ver`: `1.0`, `1.1`.
    ReqVer,
    /// `req.hdr(NAME[,OCC])`: values split on commas.
    ReqHdr(Option<String>, Option<i32>),
    /// `req.fhdr(NAME[,OCC])`: full values.
    ReqFhdr(String, Option<i32>),
    /// `req.hdr_cnt([NAME])` (comma-split values).
    ReqHdrCnt(Option<String>),
    ReqFhdrCnt(Option<String>),
    /// `req.hdr_val(NAME[,OCC])`: the value as an integer.
    ReqHdrVal(String, Option<i32>),
    /// `req.hdr_ip(NAME[,OCC])`: the value as an address.
    ReqHdrIp(String, Option<i32>),
    /// `url_param(NAME[,DELIM])`
    UrlParam(Option<String>, Option<u8>),
    /// `req.cook(NAME)`
    ReqCook(Option<String>),
    /// `res.cook(NAME)`: the value of cookie NAME in the response's `Set-Cookie` headers.
    ResCook(Option<String>),
    ReqCookCnt(Option<String>),
    ReqCookVal(Option<String>),
    /// `req.len`: bytes waiting in the request buffer (TCP content inspection).
    ReqLen,
    /// `req.payload(OFFSET,LENGTH)`: LENGTH 0 means up to the end of the buffer.
    ReqPayload(usize, usize),
    /// `req.ssl_hello_type`: the TLS handshake message type of the first record.
    ReqSslHelloType,
    /// `req.ssl_sni`: the server name of a TLS ClientHello.
    ReqSslSni,
    /// `wait_end`: true once the inspection delay is over.
    WaitEnd,
    Status,
    ResVer,
    /// `res.hdr(NAME[,OCC])`
    ResHdr(Option<String>, Option<i32>),
    ResFhdr(String, Option<i32>),
    ResHdrCnt(Option<String>),
    ResHdrVal(String, Option<i32>),
    ResHdrIp(String, Option<i32>),
    /// Stick counters (`sc_X(N[,T])`, `scN_X([T])`, `src_X([T])`); `table`: the table
    /// named and the argument position naming it.
    Stk {
        from: super::stk_fetch::StkFrom,
        what: super::stk_fetch::StkWhat,
        table: Option<(String, u8)>,
    },
    /// `table_cnt([T])`, `table_avl([T])`: entries used and free.
    TableCnt(Option<String>),
    TableAvl(Option<String>),
}

/// A fetch with its converters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleExpr {
    pub fetch: Fetch,
    pub convs: Vec<Conv>,
    /// The fetch name as written (for messages).
    pub name: String,
}

/// Where HAProxy 2.6 lets a fetch be used (`haproxy -dKsmp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usable {
    /// Every rule.
    Everywhere,
    /// Everywhere but `tcp-request connection` (`ssl_fc`).
    NotAtConnection,
    /// Rules of a proxy with the backend capability, and response rules (`be_name`, `be_id`).
    Backend,
    /// Request and response rules, not `tcp-request connection/session` (`method`).
    RequestOrResponse,
    /// Request rules only (`path`, `req.hdr`).
    Request,
    /// Response rules only (`status`, `res.hdr`).
    Response,
}

impl Fetch {
    pub fn usable(&self) -> Usable {
        use Fetch::*;
        match self {
            SslFc | Tls(..) => Usable::NotAtConnection,
            Var(..) => Usable::Everywhere,
            BeId | BeName => Usable::Backend,
            Method | ProtoHttp => Usable::RequestOrResponse,
            _ => match self.needs() {
                Needs::L4 => Usable::Everywhere,
                Needs::Request => Usable::Request,
                Needs::Response => Usable::Response,
            },
        }
    }

    pub fn needs(&self) -> Needs {
        use Fetch::*;
        match self {
            AlwaysTrue
            | AlwaysFalse
            | Int(_)
            | Str(_)
            | Bool(_)
            | Var(..)
            | Src
            | SrcPort
            | Dst
            | DstPort
            | Tls(..)
            | Env(_)
            | Hostname
            | Date(_)
            | Rand(_)
            | Stopping
            | BeConn(_)
            | FeId
            | FeName
            | BeId
            | BeName
            | NbSrv(_)
            | SrvIsUp(..)
            | SslFc
            | Stk { .. }
            | TableCnt(_)
            | TableAvl(_) => Needs::L4,
            Status | ResVer | ResHdr(..) | ResFhdr(..) | ResHdrCnt(_) | ResHdrVal(..)
            | ResHdrIp(..) | ResCook(_) => Needs::Response,
            _ => Needs::Request,
        }
    }

    pub fn smp_type(&self) -> SmpType {
        use Fetch::*;
        match self {
            AlwaysTrue | AlwaysFalse | Bool(_) | SrvIsUp(..) | SslFc | ProtoHttp | Stopping
            | WaitEnd => SmpType::Bool,
            Tls(_, t) => *t,
            Int(_) | Date(_) | Rand(_) | BeConn(_) | ReqLen | ReqSslHelloType | UrlPort
            | SrcPort | DstPort | FeId | BeId | NbSrv(_) | Status | ReqHdrCnt(_)
            | ReqFhdrCnt(_) | ReqHdrVal(..) | ReqCookCnt(_) | ReqCookVal(_) | ResHdrCnt(_)
            | ResHdrVal(..) | TableCnt(_) | TableAvl(_) => SmpType::Int,
            Stk { what, .. } => {
                if *what == super::stk_fetch::StkWhat::Tracked {
                    SmpType::Bool
                } else {
                    SmpType::Int
                }
            }
            Src | Dst | UrlIp | ReqHdrIp(..) | ResHdrIp(..) => SmpType::Ip,
            _ => SmpType::Str,
        }
    }
}

/// Parse error: `Unknown` is HAProxy's error, `Unsupported` a valid HAProxy form rhaproxy lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// HAProxy's text (after "error detected while parsing ACL 'x' : ").
    Haproxy(String),
    /// What rhaproxy lacks, for "... is not supported by rhaproxy".
    Unsupported(String),
}

/// Splits `name(args)` into the name and its comma-separated arguments.
fn split_call(s: &str) -> Result<(&str, Option<Vec<String>>, &str), FetchError> {
    match s.find('(') {
        None => {
            let end = s.find(',').unwrap_or(s.len());
            Ok((&s[..end], None, &s[end..]))
        }
        Some(i) if s[..i].contains(',') => {
            let end = s.find(',').unwrap_or(s.len());
            Ok((&s[..end], None, &s[end..]))
        }
        Some(i) => {
            let name = &s[..i];
            // Arguments end at the first `)` not escaped by a backslash; `\,` and `\)` are
            // literal.
            let b = s.as_bytes();
            let mut args = Vec::new();
            let mut cur = Vec::new();
            let mut k = i + 1;
            let end = loop {
                match b.get(k) {
                    None => {
                        return Err(FetchError::Haproxy(format!(
                            "missing closing ')' after arguments to fetch keyword '{name}'"
                        )));
                    }
                    Some(b'\\') if matches!(b.get(k + 1), Some(b',' | b')' | b'\\')) => {
                        cur.push(b[k + 1]);
                        k += 2;
                    }
                    Some(b')') => break k,
                    Some(b',') => {
                        args.push(String::from_utf8_lossy(&cur).into_owned());
                        cur.clear();
                        k += 1;
                    }
                    Some(&c) => {
                        cur.push(c);
                        k += 1;
                    }
                }
            };
            if !(args.is_empty() && cur.is_empty()) {
                args.push(String::from_utf8_lossy(&cur).into_owned());
            }
            Ok((name, Some(args), &s[end + 1..]))
        }
    }
}

fn occ(a: Option<&String>) -> Result<Option<i32>, FetchError> {
    match a {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s.trim().parse::<i32>().map(Some).map_err(|_| {
            FetchError::Haproxy(format!("failed to parse '{s}' as type signed integer"))
        }),
    }
}

fn name_arg(args: &Option<Vec<String>>) -> Option<String> {
    args.as_ref()
        .and_then(|a| a.first().cloned())
        .filter(|s| !s.is_empty())
}

fn need_name(fetch: &str, args: &Option<Vec<String>>) -> Result<String, FetchError> {
    name_arg(args).ok_or_else(|| {
        FetchError::Haproxy(format!(
            "fetch method '{fetch}' : missing arguments (got 0/1)"
        ))
    })
}

/// Does HAProxy 2.6 know this fetch name (as a sample fetch)?
pub fn haproxy_knows_fetch(name: &str) -> bool {
    HAPROXY_FETCHES.binary_search(&name).is_ok()
}

/// Parses a fetch name and its arguments (no converters).
pub fn parse_fetch(name: &str, args: &Option<Vec<String>>) -> Result<Fetch, FetchError> {
    use Fetch::*;
    let a1 = || args.as_ref().and_then(|a| a.get(1));
    if let Some(f) = super::stk_fetch::parse(name, args)? {
        return Ok(f);
    }
    let f = match name {
        "always_true" => AlwaysTrue,
        "always_false" => AlwaysFalse,
        "int" => {
            let s = need_name(name, args)?;
            Int(s.trim().parse::<i64>().map_err(|_| {
                FetchError::Haproxy(format!(
                    "fetch method 'int' : failed to parse '{s}' as type signed integer at position 1"
                ))
            })?)
        }
        "str" => Str(args.as_ref().map(|a| a.join(",")).unwrap_or_default()),
        "bool" => {
            let s = need_name(name, args)?;
            Bool(s.trim().parse::<i64>().map(|v| v != 0).map_err(|_| {
                FetchError::Haproxy(format!(
                    "fetch method 'bool' : failed to parse '{s}' as type signed integer at position 1"
                ))
            })?)
        }
        "src" => Src,
        "src_port" => SrcPort,
        "dst" => Dst,
        "dst_port" => DstPort,
        "fe_id" => FeId,
        "fe_name" => FeName,
        "be_id" => BeId,
        "be_name" => BeName,
        "nbsrv" => NbSrv(name_arg(args)),
        "srv_is_up" => {
            let s = need_name(name, args)?;
            match s.split_once('/') {
                Some((b, sv)) => SrvIsUp(b.to_string(), sv.to_string()),
                None => SrvIsUp(String::new(), s),
            }
        }
        "ssl_fc" => SslFc,
        _ if name.starts_with("ssl_") && TLS_FETCHES.iter().any(|(n, _)| *n == name) => {
            let (n, t) = TLS_FETCHES
                .iter()
                .find(|(n, _)| *n == name)
                .copied()
                .unwrap_or(("ssl_fc", SmpType::Bool));
            Tls(n, t)
        }
        "req.hdr_names" => HdrNames(name_arg(args)),
        "env" => Env(need_name(name, args)?),
        "hostname" => Hostname,
        "date" => Date(occ(args.as_ref().and_then(|a| a.first()))?.unwrap_or(0) as i64),
        "rand" => Rand(
            args.as_ref()
                .and_then(|a| a.first())
                .and_then(|v| v.trim().parse::<u64>().ok()),
        ),
        "stopping" => Stopping,
        "be_conn" => BeConn(name_arg(args)),
        "req.proto_http" | "req_proto_http" => ProtoHttp,
        "method" => Method,
        "path" => Path,
        "pathq" => PathQ,
        "var" => {
            let n = need_name(name, args)?;
            check_var_name(&n).map_err(|m| FetchError::Haproxy(format!("\u{1}{m}")))?;
            Var(n, a1().cloned())
        }
        "url" => Url,
        "url_ip" => UrlIp,
        "url_port" => UrlPort,
        "base" => Base,
        "query" => Query,
        "req.ver" | "req_ver" => ReqVer,
        "req.hdr" | "hdr" => ReqHdr(name_arg(args), occ(a1())?),
        "req.fhdr" => ReqFhdr(need_name(name, args)?, occ(a1())?),
        "req.hdr_cnt" | "hdr_cnt" => ReqHdrCnt(name_arg(args)),
        "req.fhdr_cnt" => ReqFhdrCnt(name_arg(args)),
        "req.hdr_val" | "hdr_val" => ReqHdrVal(need_name(name, args)?, occ(a1())?),
        "req.hdr_ip" | "hdr_ip" => ReqHdrIp(need_name(name, args)?, occ(a1())?),
        "url_param" | "urlp" => UrlParam(name_arg(args), a1().and_then(|d| d.bytes().next())),
        "req.cook" | "cook" => ReqCook(name_arg(args)),
        "res.cook" | "scook" => ResCook(name_arg(args)),
        "req.cook_cnt" | "cook_cnt" => ReqCookCnt(name_arg(args)),
        "req.cook_val" | "cook_val" => ReqCookVal(name_arg(args)),
        "req.len" | "req_len" => ReqLen,
        "req.payload" => {
            let a = args.as_ref().map(Vec::as_slice).unwrap_or(&[]);
            let num = |i: usize| -> Result<usize, FetchError> {
                let v = a.get(i).map(String::as_str).unwrap_or("");
                v.trim().parse::<usize>().map_err(|_| {
                    FetchError::Haproxy(format!(
                        "fetch method 'req.payload' : failed to parse '{v}' as type unsigned integer at position {}",
                        i + 1
                    ))
                })
            };
            ReqPayload(num(0)?, num(1)?)
        }
        "req.ssl_hello_type" | "req_ssl_hello_type" => ReqSslHelloType,
        "req.ssl_sni" | "req_ssl_sni" => ReqSslSni,
        "wait_end" => WaitEnd,
        "status" => Status,
        "res.ver" | "resp_ver" => ResVer,
        "res.hdr" | "shdr" => ResHdr(name_arg(args), occ(a1())?),
        "res.fhdr" => ResFhdr(need_name(name, args)?, occ(a1())?),
        "res.hdr_cnt" | "shdr_cnt" => ResHdrCnt(name_arg(args)),
        "res.hdr_val" | "shdr_val" => ResHdrVal(need_name(name, args)?, occ(a1())?),
        "res.hdr_ip" | "shdr_ip" => ResHdrIp(need_name(name, args)?, occ(a1())?),
        _ => {
            return Err(
                if haproxy_knows_fetch(name) || acl_only_keyword(name).is_some() {
                    FetchError::Unsupported(format!("sample fetch '{name}'"))
                } else {
                    FetchError::Haproxy(String::new())
                },
            );
        }
    };
    Ok(f)
}

/// `proc.x`, `sess.x`, `txn.x`, `req.x`, `res.x`, `check.x`.
pub fn check_var_name(n: &str) -> Result<(), String> {
    let ok = n.split_once('.').is_some_and(|(scope, rest)| {
        !rest.is_empty() && matches!(scope, "proc" | "sess" | "txn" | "req" | "res" | "check")
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid variable name '{n}'. A variable name must be start by its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'"
        ))
    }
}

/// HAProxy's ACL-only keywords (`haproxy -dKacl`): the fetch they stand for and their match
/// method.
pub fn acl_only_keyword(name: &str) -> Option<(&'static str, &'static str)> {
    const SUFFIXES: [&str; 7] = ["beg", "dir", "dom", "end", "len", "reg", "sub"];
    const BASES: [(&str, &str); 9] = [
        ("base", "base"),
        ("cook", "req.cook"),
        ("hdr", "req.hdr"),
        ("path", "path"),
        ("scook", "res.cook"),
        ("shdr", "res.hdr"),
        ("url", "url"),
        ("urlp", "urlp"),
        ("ssl_fc_sni", "ssl_fc_sni"),
    ];
    for (b, f) in BASES {
        if let Some(rest) = name.strip_prefix(b).and_then(|r| r.strip_prefix('_')) {
            if let Some(m) = SUFFIXES.iter().find(|s| **s == rest) {
                if b == "ssl_fc_sni" && !matches!(rest, "end" | "reg") {
                    return None;
                }
                return Some((f, m));
            }
        }
        if name == b && b != "ssl_fc_sni" {
            return Some((f, "str"));
        }
    }
    match name {
        "method" => Some(("method", "str")),
        "req_ver" => Some(("req.ver", "str")),
        "resp_ver" => Some(("res.ver", "str")),
        "payload" => Some(("req.payload", "bin")),
        "payload_lv" => Some(("req.payload_lv", "bin")),
        "req_ssl_sni" => Some(("req.ssl_sni", "str")),
        "req_ssl_ver" | "req.ssl_ver" => Some(("req.ssl_ver", "int")),
        "req_rdp_cookie" => Some(("req.rdp_cookie", "str")),
        "req_rdp_cookie_cnt" => Some(("req.rdp_cookie_cnt", "int")),
        "http_auth_group" => Some(("http_auth_group", "str")),
        _ => None,
    }
}

/// Parses `fetch[(args)][,conv]...`. The error for an unknown fetch is HAProxy's ACL wording;
/// callers outside ACLs reword it.
pub fn parse_expr(text: &str) -> Result<SampleExpr, FetchError> {
    let (name, args, mut rest) = split_call(text)?;
    if name.is_empty() {
        return Err(FetchError::Haproxy(format!(
            "missing fetch method in ACL expression '{text}'"
        )));
    }
    let fetch = match parse_fetch(name, &args) {
        Err(FetchError::Haproxy(m)) if m.is_empty() => {
            return Err(FetchError::Haproxy(format!(
                "unknown fetch method '{name}' in ACL expression '{text}'"
            )));
        }
        Err(FetchError::Haproxy(m)) if m.starts_with('\u{1}') => {
            return Err(FetchError::Haproxy(format!(
                "invalid args in fetch method '{name}' : {} in ACL expression '{text}'",
                &m[1..]
            )));
        }
        // An argument of the wrong type.
        Err(FetchError::Haproxy(m)) if m.starts_with("fetch method '") => {
            return Err(FetchError::Haproxy(format!(
                "{m} in ACL expression '{text}'"
            )));
        }
        r => r?,
    };
    let mut convs = Vec::new();
    while let Some(r) = rest.strip_prefix(',') {
        let (cname, cargs, r2) = split_call(r)?;
        rest = r2;
        let cargs = cargs.unwrap_or_default();
        let c = match super::converters::parse(cname, &cargs, name) {
            Ok(Some(c)) => c,
            Ok(None) if HAPROXY_CONVERTERS.binary_search(&cname).is_ok() => {
                return Err(FetchError::Unsupported(format!("converter '{cname}'")));
            }
            Ok(None) => {
                return Err(FetchError::Haproxy(format!(
                    "ACL keyword '{name}' : unknown converter '{cname}'."
                )));
            }
            Err(FetchError::Haproxy(m)) if m.starts_with('\u{1}') => {
                return Err(FetchError::Haproxy(format!(
                    "{} in ACL expression '{text}'",
                    &m[1..]
                )));
            }
            Err(e) => return Err(e),
        };
        convs.push(c);
    }
    if !rest.is_empty() {
        return Err(FetchError::Haproxy(format!(
            "ACL keyword '{name}' : missing comma after fetch keyword."
        )));
    }
    Ok(SampleExpr {
        fetch,
        convs,
        name: name.to_string(),
    })
}

impl SampleExpr {
    pub fn smp_type(&self) -> SmpType {
        match self.convs.last().and_then(|c| c.out_type()) {
            None => self.fetch.smp_type(),
            Some(t) => t,
        }
    }

    /// Every value the fetch yields (an ACL matches if any of them matches), converted.
    pub fn values(&self, ctx: &SampleCtx) -> Vec<Sample> {
        let mut v = fetch_all(&self.fetch, ctx);
        for c in &self.convs {
            v = v.into_iter().filter_map(|s| c.apply(s, ctx)).collect();
        }
        v
    }

    /// The single value used in a sample expression (`%[...]`): the last occurrence for
    /// headers, as HAProxy does.
    pub fn value(&self, ctx: &SampleCtx) -> Option<Sample> {
        let mut v = fetch_all(&self.fetch, ctx);
        let s = match &self.fetch {
            Fetch::ReqHdr(..)
            | Fetch::ResHdr(..)
            | Fetch::ReqFhdr(..)
            | Fetch::ResFhdr(..)
            | Fetch::ResCook(_) => v.pop(),
            _ => v.into_iter().next(),
        }?;
        self.convs.iter().try_fold(s, |s, c| c.apply(s, ctx))
    }
}

/// The headers named `name` (all when `None`), in order.
fn hdr_values<'a>(
    headers: &'a [crate::http1::Header],
    name: Option<&str>,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    let name = name.map(str::to_string);
    headers
        .iter()
        .filter(move |h| name.as_deref().is_none_or(|n| h.is(n)))
        .map(|h| h.value.as_slice())
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &b[s..e.max(s)]
}

/// Comma-split values (`hdr()`), or whole values (`fhdr()`).
fn split_values(values: impl Iterator<Item = Vec<u8>>, split: bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for v in values {
        if split {
            for part in v.split(|&c| c == b',') {
                out.push(trim(part).to_vec());
            }
        } else {
            out.push(trim(&v).to_vec());
        }
    }
    out
}

fn pick_occ(mut v: Vec<Vec<u8>>, occ: Option<i32>) -> Vec<Vec<u8>> {
    match occ {
        None | Some(0) => v,
        Some(n) if n > 0 => {
            let i = (n - 1) as usize;
            if i < v.len() {
                vec![v.swap_remove(i)]
            } else {
                Vec::new()
            }
        }
        Some(n) => {
            let back = (-n) as usize;
            if back <= v.len() {
                let i = v.len() - back;
                vec![v.swap_remove(i)]
            } else {
                Vec::new()
            }
        }
    }
}

fn headers_of<'a>(ctx: &SampleCtx<'a>, resp: bool) -> Option<&'a [crate::http1::Header]> {
    if resp {
        ctx.res.map(|r| r.headers.as_slice())
    } else {
        ctx.req.map(|r| r.headers.as_slice())
    }
}

fn hdr_fetch(
    ctx: &SampleCtx,
    resp: bool,
    name: Option<&str>,
    occ: Option<i32>,
    split: bool,
) -> Option<Vec<Vec<u8>>> {
    let h = headers_of(ctx, resp)?;
    let v = split_values(hdr_values(h, name).map(<[u8]>::to_vec), split);
    Some(pick_occ(v, occ))
}

/// Leading decimal integer as HAProxy's `strl2ic` reads it (0 when none).
pub fn leading_int(b: &[u8]) -> i64 {
    let b = trim(b);
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    if neg { -v } else { v }
}

/// The path part of a request target (no query), as HAProxy's `path` fetch.
pub fn uri_path(uri: &[u8]) -> &[u8] {
    let mut u = uri;
    // Absolute form: skip scheme://authority.
    if let Some(i) = find(u, b"://") {
        if !u[..i].contains(&b'/') {
            let rest = &u[i + 3..];
            // Always a sub-slice of `uri` (callers locate it by address).
            u = match rest.iter().position(|&c| c == b'/' || c == b'?') {
                Some(j) => &rest[j..],
                None => &rest[rest.len()..],
            };
        }
    }
    let end = u.iter().position(|&c| c == b'?').unwrap_or(u.len());
    &u[..end]
}

/// Host and port of an absolute-form target (`http://HOST[:PORT]/...`); port 80 by default.
fn url_authority(uri: &[u8]) -> Option<(String, u16)> {
    let s = std::str::from_utf8(uri).ok()?;
    let rest = s.strip_prefix("http://")?;
    let auth = rest.split(['/', '?']).next()?;
    let auth = auth.rsplit('@').next()?;
    if let Some(v6) = auth.strip_prefix('[') {
        let (h, p) = v6.split_once(']')?;
        let port = p.strip_prefix(':').map_or(Some(80), |p| p.parse().ok())?;
        return Some((h.to_string(), port));
    }
    match auth.split_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((auth.to_string(), 80)),
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn query_of(uri: &[u8]) -> Option<&[u8]> {
    let i = uri.iter().position(|&c| c == b'?')?;
    let q = &uri[i + 1..];
    let end = q.iter().position(|&c| c == b'#').unwrap_or(q.len());
    Some(&q[..end])
}

/// `name=value` cookies of the `Cookie` request headers.
fn cookies(ctx: &SampleCtx, name: Option<&str>) -> Option<Vec<Vec<u8>>> {
    let h = headers_of(ctx, false)?;
    let mut out = Vec::new();
    for v in hdr_values(h, Some("cookie")) {
        for part in v.split(|&c| c == b';') {
            let part = trim(part);
            let (n, val) = match part.iter().position(|&c| c == b'=') {
                Some(i) => (trim(&part[..i]), trim(&part[i + 1..])),
                None => continue,
            };
            if name.is_none_or(|want| n == want.as_bytes()) {
                out.push(val.to_vec());
            }
        }
    }
    Some(out)
}

/// The values of cookie `name` (every cookie without a name) set by the response: each
/// `Set-Cookie` header sets one, its attributes after the first `;`.
fn set_cookies(ctx: &SampleCtx, name: Option<&str>) -> Option<Vec<Vec<u8>>> {
    let h = headers_of(ctx, true)?;
    let mut out = Vec::new();
    for v in hdr_values(h, Some("set-cookie")) {
        let first = v.split(|&c| c == b';').next().unwrap_or(&[]);
        let Some(i) = first.iter().position(|&c| c == b'=') else {
            continue;
        };
        let (n, val) = (trim(&first[..i]), trim(&first[i + 1..]));
        if name.is_none_or(|want| n == want.as_bytes()) {
            out.push(val.to_vec());
        }
    }
    Some(out)
}

fn fetch_all(f: &Fetch, ctx: &SampleCtx) -> Vec<Sample> {
    use Fetch::*;
    let strs = |v: Option<Vec<Vec<u8>>>| -> Vec<Sample> {
        v.unwrap_or_default().into_iter().map(Sample::Str).collect()
    };
    let one = |s: Option<Sample>| -> Vec<Sample> { s.into_iter().collect() };
    match f {
        AlwaysTrue => vec![Sample::Bool(true)],
        AlwaysFalse => vec![Sample::Bool(false)],
        Int(n) => vec![Sample::Int(*n)],
        Str(s) => vec![Sample::Str(s.as_bytes().to_vec())],
        Bool(b) => vec![Sample::Bool(*b)],
        Src => one(ctx.src.map(|a| Sample::Ip(unmap(a.ip())))),
        SrcPort => one(ctx.src.map(|a| Sample::Int(a.port() as i64))),
        Dst => one(ctx.dst.map(|a| Sample::Ip(unmap(a.ip())))),
        DstPort => one(ctx.dst.map(|a| Sample::Int(a.port() as i64))),
        FeId => vec![Sample::Int(ctx.fe_id as i64)],
        FeName => vec![Sample::Str(ctx.fe_name.as_bytes().to_vec())],
        BeId => one(ctx.be_id.map(|i| Sample::Int(i as i64))),
        BeName => one(ctx.be_name.map(|n| Sample::Str(n.as_bytes().to_vec()))),
        NbSrv(b) => {
            let b = b.as_deref().or(ctx.be_name);
            one(b
                .and_then(|b| ctx.servers.and_then(|s| s.nbsrv(b)))
                .map(|n| Sample::Int(n as i64)))
        }
        SrvIsUp(b, s) => one(ctx
            .servers
            .and_then(|st| st.srv_is_up(b, s))
            .map(Sample::Bool)),
        SslFc => vec![Sample::Bool(false)],
        Tls(_, t) => {
            if *t == SmpType::Bool {
                vec![Sample::Bool(false)]
            } else {
                Vec::new()
            }
        }
        HdrNames(d) => one(ctx.req.map(|r| {
            let d = d.as_deref().unwrap_or(",");
            // Lower case, as HAProxy stores header names.
            let names: Vec<Vec<u8>> = r
                .headers
                .iter()
                .map(|h| h.name.to_ascii_lowercase())
                .collect();
            Sample::Str(names.join(d.as_bytes()))
        })),
        Env(n) => one(std::env::var_os(n).map(|v| Sample::Str(v.into_encoded_bytes()))),
        Hostname => one(std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| Sample::Str(h.trim().as_bytes().to_vec()))),
        Date(off) => vec![Sample::Int(chrono::Utc::now().timestamp() + off)],
        Rand(range) => {
            let r = rand_u32() as u64;
            vec![Sample::Int(match range {
                Some(n) => ((r as u128 * *n as u128) >> 32) as i64,
                None => r as i64,
            })]
        }
        Stopping => vec![Sample::Bool(ctx.servers.is_some_and(|s| s.stopping()))],
        Stk { from, what, table } => one(crate::runtime::stkctr::fetch(
            ctx,
            *from,
            *what,
            table.as_ref().map(|t| t.0.as_str()),
        )),
        TableCnt(t) => one(crate::runtime::stkctr::table_count(
            ctx,
            t.as_deref(),
            false,
        )),
        TableAvl(t) => one(crate::runtime::stkctr::table_count(ctx, t.as_deref(), true)),
        BeConn(b) => {
            let b = b.as_deref().or(ctx.be_name);
            one(b
                .and_then(|b| ctx.servers.and_then(|s| s.be_conn(b)))
                .map(|n| Sample::Int(n as i64)))
        }
        ProtoHttp => vec![Sample::Bool(ctx.req.is_some())],
        Method => one(ctx.req.map(|r| Sample::Str(r.method.clone()))),
        Path => one(ctx.req.map(|r| Sample::Str(uri_path(&r.uri).to_vec()))),
        PathQ => one(ctx.req.map(|r| {
            let p = uri_path(&r.uri);
            let start = p.as_ptr() as usize - r.uri.as_ptr() as usize;
            Sample::Str(r.uri[start..].to_vec())
        })),
        Var(n, default) => one(ctx
            .vars
            .and_then(|v| v.get(n))
            .or_else(|| default.as_ref().map(|d| Sample::Str(d.as_bytes().to_vec())))),
        Url => one(ctx.req.map(|r| Sample::Str(r.uri.clone()))),
        UrlIp => one(ctx.req.and_then(|r| {
            let (h, _) = url_authority(&r.uri)?;
            h.parse::<IpAddr>().ok().map(|ip| Sample::Ip(unmap(ip)))
        })),
        UrlPort => one(ctx.req.and_then(|r| {
            let (_, port) = url_authority(&r.uri)?;
            Some(Sample::Int(port as i64))
        })),
        Base => one(ctx.req.and_then(|r| {
            let path = uri_path(&r.uri);
            let host = r.header("host").map(trim)?;
            let mut b = host.to_vec();
            b.extend_from_slice(path);
            Some(Sample::Str(b))
        })),
        Query => one(ctx
            .req
            .and_then(|r| query_of(&r.uri).map(|q| Sample::Str(q.to_vec())))),
        ReqVer => one(ctx
            .req
            .map(|r| Sample::Str(format!("{}.{}", r.version.major, r.version.minor).into()))),
        ReqHdr(n, o) => strs(hdr_fetch(ctx, false, n.as_deref(), *o, true)),
        ReqFhdr(n, o) => strs(hdr_fetch(ctx, false, Some(n), *o, false)),
        ReqHdrCnt(n) => {
            one(hdr_fetch(ctx, false, n.as_deref(), None, true)
                .map(|v| Sample::Int(v.len() as i64)))
        }
        ReqFhdrCnt(n) => {
            one(hdr_fetch(ctx, false, n.as_deref(), None, false)
                .map(|v| Sample::Int(v.len() as i64)))
        }
        ReqHdrVal(n, o) => hdr_fetch(ctx, false, Some(n), *o, true)
            .unwrap_or_default()
            .into_iter()
            .map(|v| Sample::Int(leading_int(&v)))
            .collect(),
        ReqHdrIp(n, o) => hdr_fetch(ctx, false, Some(n), *o, true)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| parse_ip_bytes(&v).map(Sample::Ip))
            .collect(),
        UrlParam(name, delim) => one(ctx.req.and_then(|r| {
            let q = query_of(&r.uri)?;
            let d = delim.unwrap_or(b'&');
            q.split(|&c| c == d || (delim.is_none() && c == b';'))
                .find_map(|kv| {
                    let (k, v) = match kv.iter().position(|&c| c == b'=') {
                        Some(i) => (&kv[..i], &kv[i + 1..]),
                        None => (kv, &b""[..]),
                    };
                    name.as_deref()
                        .is_none_or(|n| n.as_bytes() == k)
                        .then(|| Sample::Str(v.to_vec()))
                })
        })),
        ReqCook(n) => strs(cookies(ctx, n.as_deref())),
        ResCook(n) => strs(set_cookies(ctx, n.as_deref())),
        ReqCookCnt(n) => one(cookies(ctx, n.as_deref()).map(|v| Sample::Int(v.len() as i64))),
        ReqCookVal(n) => cookies(ctx, n.as_deref())
            .unwrap_or_default()
            .into_iter()
            .map(|v| Sample::Int(leading_int(&v)))
            .collect(),
        ReqLen => one(ctx.payload.map(|p| Sample::Int(p.len() as i64))),
        ReqPayload(off, len) => one(ctx.payload.and_then(|p| {
            let end = if *len == 0 {
                p.len()
            } else {
                off.checked_add(*len)?
            };
            p.get(*off..end).map(|b| Sample::Str(b.to_vec()))
        })),
        ReqSslHelloType => one(ctx.payload.and_then(tls_hello_type).map(Sample::Int)),
        ReqSslSni => one(ctx.payload.and_then(tls_sni).map(Sample::Str)),
        WaitEnd => vec![Sample::Bool(ctx.wait_end.unwrap_or(true))],
        Status => one(ctx.res.map(|r| Sample::Int(r.status as i64))),
        ResVer => one(ctx
            .res
            .map(|r| Sample::Str(format!("{}.{}", r.version.major, r.version.minor).into()))),
        ResHdr(n, o) => strs(hdr_fetch(ctx, true, n.as_deref(), *o, true)),
        ResFhdr(n, o) => strs(hdr_fetch(ctx, true, Some(n), *o, false)),
        ResHdrCnt(n) => {
            one(hdr_fetch(ctx, true, n.as_deref(), None, true).map(|v| Sample::Int(v.len() as i64)))
        }
        ResHdrVal(n, o) => hdr_fetch(ctx, true, Some(n), *o, true)
            .unwrap_or_default()
            .into_iter()
            .map(|v| Sample::Int(leading_int(&v)))
            .collect(),
        ResHdrIp(n, o) => hdr_fetch(ctx, true, Some(n), *o, true)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| parse_ip_bytes(&v).map(Sample::Ip))
            .collect(),
    }
}

/// The handshake type of a TLS record at the start of `p` (1: ClientHello), once the whole
/// handshake message is there (as HAProxy's `req.ssl_hello_type`).
pub fn tls_hello_type(p: &[u8]) -> Option<i64> {
    if p.len() < 9 || !matches!(p[0], 0x14..=0x17 | 0xFF) || p[1] < 3 {
        return None;
    }
    if u16::from_be_bytes([p[3], p[4]]) < 4 {
        return None;
    }
    let hs_len = ((p[6] as usize) << 16) | ((p[7] as usize) << 8) | p[8] as usize;
    if p.len() < hs_len + 9 {
        return None;
    }
    Some(p[5] as i64)
}

/// The SNI host name of a complete TLS ClientHello record at the start of `p`.
pub fn tls_sni(p: &[u8]) -> Option<Vec<u8>> {
    if tls_hello_type(p)? != 1 {
        return None;
    }
    let rec_len = u16::from_be_bytes([p[3], p[4]]) as usize;
    let rec = p.get(5..5 + rec_len)?;
    // Handshake header (4), client_version (2), random (32).
    let mut i = 4 + 2 + 32;
    let sid = *rec.get(i)? as usize;
    i += 1 + sid;
    let cs = u16::from_be_bytes([*rec.get(i)?, *rec.get(i + 1)?]) as usize;
    i += 2 + cs;
    let comp = *rec.get(i)? as usize;
    i += 1 + comp;
    let ext_len = u16::from_be_bytes([*rec.get(i)?, *rec.get(i + 1)?]) as usize;
    i += 2;
    let exts = rec.get(i..i + ext_len)?;
    let mut j = 0;
    while j + 4 <= exts.len() {
        let ty = u16::from_be_bytes([exts[j], exts[j + 1]]);
        let len = u16::from_be_bytes([exts[j + 2], exts[j + 3]]) as usize;
        let data = exts.get(j + 4..j + 4 + len)?;
        if ty == 0 {
            // server_name_list: length (2), then entries type (1) + length (2) + name.
            let mut k = 2;
            while k + 3 <= data.len() {
                let nt = data[k];
                let nl = u16::from_be_bytes([data[k + 1], data[k + 2]]) as usize;
                let name = data.get(k + 3..k + 3 + nl)?;
                if nt == 0 {
                    return Some(name.to_vec());
                }
                k += 3 + nl;
            }
            return None;
        }
        j += 4 + len;
    }
    None
}

/// Is the inspected payload complete enough to decide (a whole TLS record, or not TLS)?
pub fn payload_ready(p: &[u8]) -> bool {
    if p.is_empty() {
        return false;
    }
    if p[0] != 0x16 {
        return true;
    }
    if p.len() < 5 {
        return false;
    }
    let rec_len = u16::from_be_bytes([p[3], p[4]]) as usize;
    p.len() >= 5 + rec_len
}

/// A small per-thread xorshift generator for `rand()` (not for secrets).
fn rand_u32() -> u32 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
                | 1,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 32) as u32
    })
}

pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

pub fn parse_ip_bytes(b: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(trim(b)).ok()?.parse().ok()
}
/// HAProxy 2.6's TLS fetches (`haproxy -dKsmp`) and their types. rhaproxy has no TLS: on its
/// plain connections they behave as HAProxy's do on a non-TLS connection (booleans false, the
/// others without a sample).
pub(crate) const TLS_FETCHES: &[(&str, SmpType)] = &[
    ("ssl_bc", SmpType::Bool),
    ("ssl_bc_alg_keysize", SmpType::Int),
    ("ssl_bc_alpn", SmpType::Str),
    ("ssl_bc_cipher", SmpType::Str),
    ("ssl_bc_client_random", SmpType::Str),
    ("ssl_bc_err", SmpType::Int),
    ("ssl_bc_err_str", SmpType::Str),
    ("ssl_bc_is_resumed", SmpType::Bool),
    ("ssl_bc_npn", SmpType::Str),
    ("ssl_bc_protocol", SmpType::Str),
    ("ssl_bc_server_random", SmpType::Str),
    ("ssl_bc_session_id", SmpType::Str),
    ("ssl_bc_session_key", SmpType::Str),
    ("ssl_bc_unique_id", SmpType::Str),
    ("ssl_bc_use_keysize", SmpType::Int),
    ("ssl_c_ca_err", SmpType::Int),
    ("ssl_c_ca_err_depth", SmpType::Int),
    ("ssl_c_chain_der", SmpType::Str),
    ("ssl_c_der", SmpType::Str),
    ("ssl_c_err", SmpType::Int),
    ("ssl_c_i_dn", SmpType::Str),
    ("ssl_c_key_alg", SmpType::Str),
    ("ssl_c_notafter", SmpType::Str),
    ("ssl_c_notbefore", SmpType::Str),
    ("ssl_c_s_dn", SmpType::Str),
    ("ssl_c_serial", SmpType::Str),
    ("ssl_c_sha1", SmpType::Str),
    ("ssl_c_sig_alg", SmpType::Str),
    ("ssl_c_used", SmpType::Bool),
    ("ssl_c_verify", SmpType::Int),
    ("ssl_c_version", SmpType::Int),
    ("ssl_f_der", SmpType::Str),
    ("ssl_f_i_dn", SmpType::Str),
    ("ssl_f_key_alg", SmpType::Str),
    ("ssl_f_notafter", SmpType::Str),
    ("ssl_f_notbefore", SmpType::Str),
    ("ssl_f_s_dn", SmpType::Str),
    ("ssl_f_serial", SmpType::Str),
    ("ssl_f_sha1", SmpType::Str),
    ("ssl_f_sig_alg", SmpType::Str),
    ("ssl_f_version", SmpType::Int),
    ("ssl_fc", SmpType::Bool),
    ("ssl_fc_alg_keysize", SmpType::Int),
    ("ssl_fc_alpn", SmpType::Str),
    ("ssl_fc_cipher", SmpType::Str),
    ("ssl_fc_cipherlist_bin", SmpType::Str),
    ("ssl_fc_cipherlist_hex", SmpType::Str),
    ("ssl_fc_cipherlist_str", SmpType::Str),
    ("ssl_fc_cipherlist_xxh", SmpType::Int),
    ("ssl_fc_client_early_traffic_secret", SmpType::Str),
    ("ssl_fc_client_handshake_traffic_secret", SmpType::Str),
    ("ssl_fc_client_random", SmpType::Str),
    ("ssl_fc_client_traffic_secret_0", SmpType::Str),
    ("ssl_fc_early_exporter_secret", SmpType::Str),
    ("ssl_fc_ecformats_bin", SmpType::Str),
    ("ssl_fc_eclist_bin", SmpType::Str),
    ("ssl_fc_err", SmpType::Int),
    ("ssl_fc_err_str", SmpType::Str),
    ("ssl_fc_exporter_secret", SmpType::Str),
    ("ssl_fc_extlist_bin", SmpType::Str),
    ("ssl_fc_has_crt", SmpType::Bool),
    ("ssl_fc_has_early", SmpType::Bool),
    ("ssl_fc_has_sni", SmpType::Bool),
    ("ssl_fc_is_resumed", SmpType::Bool),
    ("ssl_fc_npn", SmpType::Str),
    ("ssl_fc_protocol", SmpType::Str),
    ("ssl_fc_protocol_hello_id", SmpType::Int),
    ("ssl_fc_server_handshake_traffic_secret", SmpType::Str),
    ("ssl_fc_server_random", SmpType::Str),
    ("ssl_fc_server_traffic_secret_0", SmpType::Str),
    ("ssl_fc_session_id", SmpType::Str),
    ("ssl_fc_session_key", SmpType::Str),
    ("ssl_fc_sni", SmpType::Str),
    ("ssl_fc_unique_id", SmpType::Str),
    ("ssl_fc_use_keysize", SmpType::Int),
    ("ssl_s_chain_der", SmpType::Str),
    ("ssl_s_der", SmpType::Str),
    ("ssl_s_i_dn", SmpType::Str),
    ("ssl_s_key_alg", SmpType::Str),
    ("ssl_s_notafter", SmpType::Str),
    ("ssl_s_notbefore", SmpType::Str),
    ("ssl_s_s_dn", SmpType::Str),
    ("ssl_s_serial", SmpType::Str),
    ("ssl_s_sha1", SmpType::Str),
    ("ssl_s_sig_alg", SmpType::Str),
    ("ssl_s_version", SmpType::Int),
];
