//! `log-format` strings: compiled once at configuration time into a node list, rendered per
//! log line from a [`LogRecord`] into a reusable buffer.
//!
//! The grammar and the error texts follow what HAProxy 2.6 accepts and prints (measured with
//! `haproxy -c`). [`compile`] returns the text that HAProxy prints after
//! `failed to parse log-format : `; see [`FormatError::alert`] for the complete alert line.

use std::fmt;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, Datelike, Local, Offset, TimeZone, Timelike, Utc};

use super::haproxy_names::{FETCH_NEEDS, HAPROXY_CONVERTERS, HAPROXY_FETCHES};
use super::record::LogRecord;

/// `option tcplog`.
pub const TCPLOG_FORMAT: &str =
    "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq";
/// `option httplog`.
pub const HTTPLOG_FORMAT: &str = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r";
/// `option httplog clf`.
pub const CLF_HTTPLOG_FORMAT: &str = "%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl";
/// `option httpslog`.
pub const HTTPSLOG_FORMAT: &str = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r %[fc_err]/%[ssl_fc_err,hex]/%[ssl_c_err]/%[ssl_c_ca_err]/%[ssl_fc_is_resumed] %[ssl_fc_sni]/%sslv/%sslc";
/// Default `log-format-sd`.
pub const DEFAULT_SD_FORMAT: &str = "- ";

/// Flag bits (`%{+Q}`, `%{+X}`, `%{+E}`).
pub const FLAG_QUOTE: u8 = 1;
pub const FLAG_HEX: u8 = 2;
pub const FLAG_ESCAPE: u8 = 4;

/// A compile error; `Display` gives the text HAProxy prints after `failed to parse log-format : `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

impl FormatError {
    /// The alert text HAProxy 2.6 prints (after `[ALERT] (pid) : config : `) for a bad format
    /// given by `keyword` (`log-format`, `log-format-sd`) at `file:line`.
    pub fn alert(&self, keyword: &str, file: &str, line: usize) -> String {
        format!(
            "Parsing [{file}:{line}]: failed to parse {keyword} : {}",
            self.0
        )
    }
}

/// Every log-format variable of HAProxy 2.6.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    o,
    B,
    U,
    CC,
    CS,
    H,
    HM,
    HP,
    HPO,
    HQ,
    HU,
    HV,
    ID,
    ST,
    T,
    Tl,
    Ts,
    t,
    tr,
    trg,
    trl,
    ms,
    Th,
    Ti,
    TR,
    Tq,
    Tw,
    Tc,
    Tr,
    Ta,
    Td,
    Tt,
    Tu,
    ac,
    fc,
    bc,
    sc,
    rc,
    sq,
    bq,
    b,
    f,
    ft,
    s,
    bi,
    bp,
    ci,
    cp,
    fi,
    fp,
    si,
    sp,
    hr,
    hs,
    hrl,
    hsl,
    lc,
    pid,
    r,
    rt,
    sslc,
    sslv,
    ts,
    tsc,
}

/// (name, variable, reserved for HTTP mode) — the HTTP-only set was measured with `haproxy -c`
/// on a `mode tcp` frontend.
const VARS: &[(&str, Var, bool)] = &[
    ("o", Var::o, false),
    ("B", Var::B, false),
    ("U", Var::U, false),
    ("CC", Var::CC, true),
    ("CS", Var::CS, true),
    ("H", Var::H, false),
    ("HM", Var::HM, true),
    ("HP", Var::HP, true),
    ("HPO", Var::HPO, true),
    ("HQ", Var::HQ, true),
    ("HU", Var::HU, true),
    ("HV", Var::HV, true),
    ("ID", Var::ID, false),
    ("ST", Var::ST, false),
    ("T", Var::T, false),
    ("Tl", Var::Tl, false),
    ("Ts", Var::Ts, false),
    ("t", Var::t, false),
    ("tr", Var::tr, true),
    ("trg", Var::trg, true),
    ("trl", Var::trl, true),
    ("ms", Var::ms, false),
    ("Th", Var::Th, false),
    ("Ti", Var::Ti, true),
    ("TR", Var::TR, true),
    ("Tq", Var::Tq, true),
    ("Tw", Var::Tw, false),
    ("Tc", Var::Tc, false),
    ("Tr", Var::Tr, true),
    ("Ta", Var::Ta, true),
    ("Td", Var::Td, false),
    ("Tt", Var::Tt, false),
    ("Tu", Var::Tu, false),
    ("ac", Var::ac, false),
    ("fc", Var::fc, false),
    ("bc", Var::bc, false),
    ("sc", Var::sc, false),
    ("rc", Var::rc, false),
    ("sq", Var::sq, false),
    ("bq", Var::bq, false),
    ("b", Var::b, false),
    ("f", Var::f, false),
    ("ft", Var::ft, false),
    ("s", Var::s, false),
    ("bi", Var::bi, false),
    ("bp", Var::bp, false),
    ("ci", Var::ci, false),
    ("cp", Var::cp, false),
    ("fi", Var::fi, false),
    ("fp", Var::fp, false),
    ("si", Var::si, false),
    ("sp", Var::sp, false),
    ("hr", Var::hr, false),
    ("hs", Var::hs, false),
    ("hrl", Var::hrl, false),
    ("hsl", Var::hsl, false),
    ("lc", Var::lc, false),
    ("pid", Var::pid, false),
    ("r", Var::r, true),
    ("rt", Var::rt, false),
    ("sslc", Var::sslc, false),
    ("sslv", Var::sslv, false),
    ("ts", Var::ts, false),
    ("tsc", Var::tsc, false),
];

/// Names of all variables, in documentation order.
pub fn variable_names() -> impl Iterator<Item = &'static str> {
    VARS.iter().map(|v| v.0)
}

/// Whether HAProxy 2.6 refuses variable `name` outside HTTP mode.
pub fn is_http_only(name: &str) -> bool {
    VARS.iter().any(|v| v.0 == name && v.2)
}

/// Sample fetches rhaproxy evaluates at log time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// `str(TEXT)`
    Str(String),
    /// `env(NAME)`, read at log time.
    Env(String),
    /// `hostname`
    Hostname,
    /// `var(SCOPE.NAME[,DEFAULT])`, looked up in [`LogRecord::vars`].
    Var(String, Option<String>),
    Src,
    Dst,
    SrcPort,
    DstPort,
    FeName,
    BeName,
    SrvName,
    CaptureReqHdr(usize),
    CaptureResHdr(usize),
    /// `fc_err`: front connection error code (0 = none).
    FcErr,
    /// `ssl_fc`: 1 when the front connection is SSL.
    SslFc,
    /// `ssl_fc_err`, `ssl_c_err`, `ssl_c_ca_err`: absent on non-SSL connections.
    SslFcErr,
    SslCErr,
    SslCCaErr,
    /// `ssl_fc_is_resumed`: 0 on non-SSL connections.
    SslFcIsResumed,
    /// `ssl_fc_sni`: absent on non-SSL connections or without SNI.
    SslFcSni,
}

/// Converters rhaproxy applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv {
    Lower,
    Upper,
    /// Bytes as uppercase hex; integers as their 8-byte big-endian form, addresses as their
    /// 4 or 16 bytes (measured).
    Hex,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleExpr {
    pub fetch: Fetch,
    pub convs: Vec<Conv>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Literal text (never contains a space).
    Text(String),
    /// A run of spaces: printed as one space unless the output already ends with one.
    Sep,
    Var {
        var: Var,
        flags: u8,
    },
    Sample {
        expr: SampleExpr,
        flags: u8,
    },
}

/// A compiled log-format.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogFormat {
    pub nodes: Vec<Node>,
}

fn is_fetch_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-'
}

fn parse_flags(args: &str, mut flags: u8) -> u8 {
    for item in args.split(',') {
        let (set, name) = match item.as_bytes().first() {
            Some(b'+') => (true, &item[1..]),
            Some(b'-') => (false, &item[1..]),
            _ => continue,
        };
        let bit = match name {
            "Q" => FLAG_QUOTE,
            "X" => FLAG_HEX,
            "E" => FLAG_ESCAPE,
            _ => continue,
        };
        if set {
            flags |= bit;
        } else {
            flags &= !bit;
        }
    }
    flags
}

/// Compile a log-format string. `http` says whether the proxy using it is in HTTP mode
/// (HTTP-only variables are refused otherwise, as HAProxy 2.6 does).
pub fn compile(fmt: &str, http: bool) -> Result<LogFormat, FormatError> {
    let s = fmt.as_bytes();
    let mut nodes: Vec<Node> = Vec::new();
    let mut text = String::new();
    let mut default_flags: u8 = 0;
    let mut i = 0;

    fn flush(text: &mut String, nodes: &mut Vec<Node>) {
        if !text.is_empty() {
            nodes.push(Node::Text(std::mem::take(text)));
        }
    }

    while i < s.len() {
        let c = s[i];
        if c == b' ' {
            flush(&mut text, &mut nodes);
            if nodes.last() != Some(&Node::Sep) {
                nodes.push(Node::Sep);
            }
            i += 1;
            continue;
        }
        if c != b'%' {
            // Copy one UTF-8 character.
            let ch = fmt[i..].chars().next().unwrap();
            text.push(ch);
            i += ch.len_utf8();
            continue;
        }
        // '%'
        let start = i;
        i += 1;
        let Some(&n) = s.get(i) else {
            return Err(FormatError("truncated line after '%'.".into()));
        };
        if n == b'%' {
            text.push('%');
            i += 1;
            continue;
        }
        let mut flags = default_flags;
        let mut had_args = false;
        if n == b'{' {
            let astart = i + 1;
            let Some(rel) = fmt[astart..].find('}') else {
                return Err(FormatError(format!(
                    "truncated line after '{}'.",
                    &fmt[astart..]
                )));
            };
            flags = parse_flags(&fmt[astart..astart + rel], flags);
            i = astart + rel + 1;
            had_args = true;
        } else if n != b'[' && !n.is_ascii_alphabetic() {
            let ch = fmt[i..].chars().next().unwrap();
            return Err(FormatError(format!(
                "unexpected variable name near '{ch}' at position {i} line : '{fmt}'. Maybe you want to write a single '%', use the syntax '%%'."
            )));
        }
        // variable name or expression
        let nstart = i;
        while i < s.len() && s[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let name = &fmt[nstart..i];
        if name.is_empty() {
            if s.get(i) == Some(&b'[') {
                flush(&mut text, &mut nodes);
                let (expr, end) = compile_sample(fmt, i + 1)?;
                nodes.push(Node::Sample { expr, flags });
                i = end;
                continue;
            }
            // only reachable after "%{...}"
            debug_assert!(had_args);
            return Err(FormatError(format!(
                "parse argument modifier without variable name near '{}'.",
                &fmt[start..i]
            )));
        }
        let Some(&(_, var, http_only)) = VARS.iter().find(|v| v.0 == name) else {
            return Err(FormatError(format!(
                "no such format variable '{name}'. If you wanted to emit the '%' character verbatim, you need to use '%%'."
            )));
        };
        if http_only && !http {
            return Err(FormatError(format!(
                "format variable '{name}' is reserved for HTTP mode."
            )));
        }
        if var == Var::o {
            default_flags = flags;
            continue;
        }
        flush(&mut text, &mut nodes);
        nodes.push(Node::Var { var, flags });
    }
    flush(&mut text, &mut nodes);
    Ok(LogFormat { nodes })
}

fn known(list: &[&str], name: &str) -> bool {
    list.binary_search(&name).is_ok()
}

/// Parse `fetch[(args)][,conv[(args)]]...]` starting at byte `pos` (just after `[`).
/// Returns the expression and the position after the closing `]`.
fn compile_sample(fmt: &str, pos: usize) -> Result<(SampleExpr, usize), FormatError> {
    let s = fmt.as_bytes();
    let rest = &fmt[pos..];
    let err = |m: String| FormatError(format!("failed to parse sample expression <{rest}> : {m}"));
    let mut i = pos;
    while i < s.len() && is_fetch_char(s[i]) {
        i += 1;
    }
    let name = &fmt[pos..i];
    if name.is_empty() {
        return Err(err("missing fetch method.".into()));
    }
    if !known(HAPROXY_FETCHES, name) {
        return Err(err(format!("unknown fetch method '{name}'.")));
    }
    let fetch = match name {
        "src" => Some(Fetch::Src),
        "dst" => Some(Fetch::Dst),
        "src_port" => Some(Fetch::SrcPort),
        "dst_port" => Some(Fetch::DstPort),
        "fe_name" => Some(Fetch::FeName),
        "be_name" => Some(Fetch::BeName),
        "srv_name" => Some(Fetch::SrvName),
        "fc_err" => Some(Fetch::FcErr),
        "ssl_fc" => Some(Fetch::SslFc),
        "ssl_fc_err" => Some(Fetch::SslFcErr),
        "ssl_c_err" => Some(Fetch::SslCErr),
        "ssl_c_ca_err" => Some(Fetch::SslCCaErr),
        "ssl_fc_is_resumed" => Some(Fetch::SslFcIsResumed),
        "ssl_fc_sni" => Some(Fetch::SslFcSni),
        "capture.req.hdr" | "capture.res.hdr" => None,
        "str" | "env" | "var" | "hostname" => {
            let max = match name {
                "hostname" => 0,
                "var" => 2,
                _ => 1,
            };
            let (args, end) = string_args(fmt, i).map_err(|at| {
                err(format!(
                    "fetch method '{name}' : expected ')' before '{}'.",
                    &fmt[at..]
                ))
            })?;
            if args.len() > max {
                let at = args[max].0 - 1;
                let m = if max == 0 {
                    format!(
                        "fetch method '{name}' : expected ')' before '{}'.",
                        &fmt[args[0].0..]
                    )
                } else {
                    format!(
                        "fetch method '{name}' : expected ')' before '{}'.",
                        &fmt[at..]
                    )
                };
                return Err(err(m));
            }
            let arg = |k: usize| args.get(k).map(|a| a.1.to_string());
            let f = match name {
                "str" => Fetch::Str(arg(0).unwrap_or_default()),
                "env" => Fetch::Env(arg(0).unwrap_or_default()),
                "hostname" => Fetch::Hostname,
                _ => {
                    let v = arg(0).unwrap_or_default();
                    check_var_name(&v)
                        .map_err(|m| err(format!("invalid args in fetch method 'var' : {m}")))?;
                    Fetch::Var(v, arg(1))
                }
            };
            i = end;
            Some(f)
        }
        _ => {
            if let Ok(k) = FETCH_NEEDS.binary_search_by(|e| e.0.cmp(name)) {
                return Err(FormatError(format!(
                    "sample fetch <{rest}> may not be reliably used here because it needs '{}' which is not available here.",
                    FETCH_NEEDS[k].1
                )));
            }
            return Err(FormatError(format!(
                "sample fetch '{name}' (in <{rest}>) is not supported by rhaproxy in log formats."
            )));
        }
    };
    let fetch = match fetch {
        Some(f @ (Fetch::Str(_) | Fetch::Env(_) | Fetch::Hostname | Fetch::Var(..))) => f,
        Some(f) => {
            i = no_args(fmt, i).map_err(|at| {
                err(format!(
                    "fetch method '{name}' : expected ')' before '{}'.",
                    &fmt[at..]
                ))
            })?;
            f
        }
        None => {
            // one mandatory integer argument
            let bad_nothing = || {
                err(format!(
                    "fetch method '{name}' : expected type 'integer' at position 1, but got nothing."
                ))
            };
            if s.get(i) != Some(&b'(') {
                return Err(bad_nothing());
            }
            let astart = i + 1;
            let Some(rel) = fmt[astart..].find(')') else {
                return Err(err(format!(
                    "fetch method '{name}' : expected ')' before '{}'.",
                    &fmt[astart..]
                )));
            };
            let arg = &fmt[astart..astart + rel];
            let arg = arg.split(',').next().unwrap_or("");
            if arg.is_empty() {
                return Err(bad_nothing());
            }
            let n: usize = arg.trim().parse().map_err(|_| {
                err(format!(
                    "fetch method '{name}' : failed to parse '{arg}' as type 'integer' at position 1."
                ))
            })?;
            i = astart + rel + 1;
            if name == "capture.req.hdr" {
                Fetch::CaptureReqHdr(n)
            } else {
                Fetch::CaptureResHdr(n)
            }
        }
    };
    let mut convs = Vec::new();
    while s.get(i) == Some(&b',') {
        i += 1;
        if i >= s.len() {
            break;
        }
        let cstart = i;
        while i < s.len() && is_fetch_char(s[i]) {
            i += 1;
        }
        let cname = &fmt[cstart..i];
        if !known(HAPROXY_CONVERTERS, cname) {
            return Err(err(format!("unknown converter '{cname}'.")));
        }
        let conv = match cname {
            "lower" => Conv::Lower,
            "upper" => Conv::Upper,
            "hex" => Conv::Hex,
            _ => {
                return Err(FormatError(format!(
                    "converter '{cname}' (in <{rest}>) is not supported by rhaproxy in log formats."
                )));
            }
        };
        i = no_args(fmt, i).map_err(|at| {
            err(format!(
                "invalid arg 1 in converter '{cname}' : expected ')' before '{}'.",
                &fmt[at..]
            ))
        })?;
        convs.push(conv);
    }
    let consumed = &fmt[pos..i];
    match s.get(i) {
        None => Err(FormatError(format!("missing ']' after '{consumed}'."))),
        Some(b']') => Ok((SampleExpr { fetch, convs }, i + 1)),
        Some(_) => {
            let ch = fmt[i..].chars().next().unwrap();
            Err(FormatError(format!(
                "expected ']' after '{consumed}', but found '{ch}'."
            )))
        }
    }
}

/// Accept an optional empty `()` after a keyword taking no argument. Err gives the position
/// of the unexpected argument text.
fn no_args(fmt: &str, i: usize) -> Result<usize, usize> {
    let s = fmt.as_bytes();
    if s.get(i) != Some(&b'(') {
        return Ok(i);
    }
    if s.get(i + 1) == Some(&b')') {
        return Ok(i + 2);
    }
    Err(i + 1)
}

/// Parse an optional `(a,b,...)` argument list at `i`: returns the arguments with their byte
/// positions and the position after `)`. Err gives the position of the unterminated text.
#[allow(clippy::type_complexity)]
fn string_args(fmt: &str, i: usize) -> Result<(Vec<(usize, &str)>, usize), usize> {
    if fmt.as_bytes().get(i) != Some(&b'(') {
        return Ok((Vec::new(), i));
    }
    let start = i + 1;
    let Some(rel) = fmt[start..].find(')') else {
        return Err(start);
    };
    let inner = &fmt[start..start + rel];
    let mut args = Vec::new();
    if !inner.is_empty() {
        let mut pos = start;
        for a in inner.split(',') {
            args.push((pos, a));
            pos += a.len() + 1;
        }
    }
    Ok((args, start + rel + 1))
}

/// HAProxy 2.6's checks on a `var()` name (texts measured with `haproxy -c`).
fn check_var_name(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("Empty variable name cannot be accepted.".into());
    }
    let rest = ["proc.", "sess.", "txn.", "req.", "res.", "check."]
        .iter()
        .find_map(|p| v.strip_prefix(p))
        .filter(|r| !r.is_empty());
    let Some(rest) = rest else {
        return Err(format!(
            "invalid variable name '{v}'. A variable name must be start by its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'."
        ));
    };
    if let Some(p) = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')) {
        return Err(format!("invalid syntax at char '{}'.", &rest[p..]));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Rendering
// ------------------------------------------------------------------------------------------

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Characters HAProxy replaces by `#XX` in captured headers.
fn hdr_needs_encoding(c: u8) -> bool {
    !(0x20..0x7f).contains(&c) || matches!(c, b'"' | b'#' | b'{' | b'|' | b'}')
}

/// Characters HAProxy replaces by `#XX` in the request line and its parts.
fn url_needs_encoding(c: u8) -> bool {
    !(0x20..0x7f).contains(&c) || matches!(c, b'"' | b'#')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Copy `src`, `#XX`-encoding the bytes selected by `enc` and backslash-escaping
/// `"` `\` `]` with the E flag.
fn put_encoded(out: &mut Vec<u8>, src: &[u8], enc: Option<fn(u8) -> bool>, flags: u8) {
    for &c in src {
        if enc.is_some_and(|f| f(c)) {
            out.extend_from_slice(&[b'#', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
        } else if flags & FLAG_ESCAPE != 0 && matches!(c, b'"' | b'\\' | b']') {
            out.push(b'\\');
            out.push(c);
        } else {
            out.push(c);
        }
    }
}

/// A string value: `-` (or `""` with Q) when absent or empty.
fn put_text(out: &mut Vec<u8>, v: Option<&[u8]>, flags: u8, enc: Option<fn(u8) -> bool>) {
    let q = flags & FLAG_QUOTE != 0;
    match v {
        Some(v) if !v.is_empty() => {
            if q {
                out.push(b'"');
            }
            put_encoded(out, v, enc, flags);
            if q {
                out.push(b'"');
            }
        }
        _ => out.extend_from_slice(if q { b"\"\"" } else { b"-" }),
    }
}

fn put_int(out: &mut Vec<u8>, v: i64) {
    let _ = write!(out, "{v}");
}

fn put_timer(out: &mut Vec<u8>, v: Option<i64>, plus: bool) {
    if plus {
        out.push(b'+');
    }
    put_int(out, v.unwrap_or(-1));
}

fn put_ip(out: &mut Vec<u8>, a: Option<SocketAddr>, flags: u8) {
    let Some(a) = a else {
        put_text(out, None, flags, None);
        return;
    };
    if flags & FLAG_HEX != 0 {
        match a.ip() {
            IpAddr::V4(v4) => {
                let _ = write!(out, "{:08X}", u32::from(v4));
            }
            IpAddr::V6(v6) => {
                for b in v6.octets() {
                    let _ = write!(out, "{b:02X}");
                }
            }
        }
        return;
    }
    let q = flags & FLAG_QUOTE != 0;
    if q {
        out.push(b'"');
    }
    let _ = write!(out, "{}", a.ip());
    if q {
        out.push(b'"');
    }
}

fn put_port(out: &mut Vec<u8>, a: Option<SocketAddr>, flags: u8) {
    let Some(a) = a else {
        put_text(out, None, flags, None);
        return;
    };
    if flags & FLAG_HEX != 0 {
        let _ = write!(out, "{:04X}", a.port());
    } else {
        let _ = write!(out, "{}", a.port());
    }
}

fn put_hex_or_dec(out: &mut Vec<u8>, v: u64, flags: u8) {
    if flags & FLAG_HEX != 0 {
        let _ = write!(out, "{v:04X}");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `dd/Mon/yyyy:HH:MM:SS` of a date in any zone.
fn put_clf_date<Tz: TimeZone>(out: &mut Vec<u8>, d: &DateTime<Tz>) {
    let _ = write!(
        out,
        "{:02}/{}/{:04}:{:02}:{:02}:{:02}",
        d.day(),
        MONTHS[d.month0() as usize],
        d.year(),
        d.hour(),
        d.minute(),
        d.second()
    );
}

/// `dd/Mon/yyyy:HH:MM:SS.mmm` (GMT).
fn put_date_ms(out: &mut Vec<u8>, d: &DateTime<Utc>) {
    put_clf_date(out, d);
    let _ = write!(out, ".{:03}", d.timestamp_subsec_millis().min(999));
}

/// `dd/Mon/yyyy:HH:MM:SS +0000`.
fn put_date_gmt(out: &mut Vec<u8>, d: &DateTime<Utc>) {
    put_clf_date(out, d);
    out.extend_from_slice(b" +0000");
}

/// `dd/Mon/yyyy:HH:MM:SS +hhmm` in local time.
fn put_date_local(out: &mut Vec<u8>, d: &DateTime<Utc>) {
    let l = d.with_timezone(&Local);
    put_clf_date(out, &l);
    let off = l.offset().fix().local_minus_utc();
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.abs();
    let _ = write!(out, " {sign}{:02}{:02}", off / 3600, (off / 60) % 60);
}

/// Split a request line into (method, uri, version).
fn split_request_line(l: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let mut it = l.splitn(3, |&c| c == b' ');
    let m = it.next().unwrap_or(b"");
    let u = it.next().unwrap_or(b"");
    let v = it.next().unwrap_or(b"");
    (m, u, v)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// URI up to the query string (`%HP`).
fn without_query(uri: &[u8]) -> &[u8] {
    match uri.iter().position(|&c| c == b'?') {
        Some(p) => &uri[..p],
        None => uri,
    }
}

/// Path without scheme and authority (`%HPO`): empty for `*` and authority-only forms.
fn path_only(uri: &[u8]) -> &[u8] {
    let p = without_query(uri);
    if p.starts_with(b"/") {
        return p;
    }
    if let Some(pos) = find(p, b"://") {
        let after = &p[pos + 3..];
        return match after.iter().position(|&c| c == b'/') {
            Some(sl) => &after[sl..],
            None => b"",
        };
    }
    b""
}

fn put_captures_braced(out: &mut Vec<u8>, caps: &[Option<Vec<u8>>], flags: u8) {
    let q = flags & FLAG_QUOTE != 0;
    if q {
        out.push(b'"');
    }
    out.push(b'{');
    for (k, c) in caps.iter().enumerate() {
        if k > 0 {
            out.push(b'|');
        }
        if let Some(c) = c {
            put_encoded(out, c, Some(hdr_needs_encoding), flags);
        }
    }
    out.push(b'}');
    if q {
        out.push(b'"');
    }
}

fn put_captures_clf(out: &mut Vec<u8>, caps: &[Option<Vec<u8>>], flags: u8) {
    let q = flags & FLAG_QUOTE != 0;
    for (k, c) in caps.iter().enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        if q {
            out.push(b'"');
        }
        match c {
            Some(c) => put_encoded(out, c, Some(hdr_needs_encoding), flags),
            None if !q => out.push(b'-'),
            None => {}
        }
        if q {
            out.push(b'"');
        }
    }
}

/// Render one variable. Returns false when it printed nothing *and* must not count as
/// output for space collapsing (captures lists without a capture area).
fn render_var(out: &mut Vec<u8>, var: Var, flags: u8, r: &LogRecord) -> bool {
    let q = flags & FLAG_QUOTE != 0;
    match var {
        Var::o => {}
        Var::B => {
            if r.logasap {
                out.push(b'+');
            }
            let _ = write!(out, "{}", r.bytes_out);
        }
        Var::U => {
            let _ = write!(out, "{}", r.bytes_in);
        }
        Var::CC => put_text(out, r.cookie_req.as_deref(), flags, None),
        Var::CS => put_text(out, r.cookie_res.as_deref(), flags, None),
        Var::H => put_text(out, Some(r.hostname.as_bytes()), flags, None),
        Var::HM | Var::HP | Var::HPO | Var::HQ | Var::HU | Var::HV | Var::r => {
            let Some(line) = r.request_line.as_deref() else {
                put_text(out, Some(b"<BADREQ>"), flags, None);
                return true;
            };
            let (m, u, v) = split_request_line(line);
            let part = match var {
                Var::HM => m,
                Var::HU => u,
                Var::HP => without_query(u),
                Var::HPO => path_only(u),
                Var::HQ => u
                    .iter()
                    .position(|&c| c == b'?')
                    .map_or(&b""[..], |p| &u[p..]),
                Var::HV => v,
                _ => line,
            };
            // These print nothing (not `-`) when empty.
            if q {
                out.push(b'"');
            }
            put_encoded(out, part, Some(url_needs_encoding), flags);
            if q {
                out.push(b'"');
            }
        }
        Var::ID => put_text(out, r.unique_id.as_deref().map(str::as_bytes), flags, None),
        Var::ST => put_int(out, r.status as i64),
        Var::T => put_date_gmt(out, &r.accept_date),
        Var::Tl => put_date_local(out, &r.accept_date),
        Var::Ts => {
            let ts = r.accept_date.timestamp();
            if flags & FLAG_HEX != 0 {
                let _ = write!(out, "{ts:08X}");
            } else {
                put_int(out, ts);
            }
        }
        Var::t => put_date_ms(out, &r.accept_date),
        Var::tr => put_date_ms(out, &r.request_date),
        Var::trg => put_date_gmt(out, &r.request_date),
        Var::trl => put_date_local(out, &r.request_date),
        Var::ms => {
            let ms = r.accept_date.timestamp_subsec_millis().min(999);
            if flags & FLAG_HEX != 0 {
                let _ = write!(out, "{ms:02X}");
            } else {
                let _ = write!(out, "{ms:03}");
            }
        }
        Var::Th => put_timer(out, r.t_handshake, false),
        Var::Ti => put_timer(out, r.t_idle, false),
        Var::TR => put_timer(out, r.t_request, false),
        Var::Tq => put_timer(out, r.t_q, false),
        Var::Tw => put_timer(out, r.t_queue, false),
        Var::Tc => put_timer(out, r.t_connect, false),
        Var::Tr => put_timer(out, r.t_response, false),
        Var::Ta => put_timer(out, r.t_active, r.logasap),
        Var::Td => put_timer(out, r.t_data, false),
        Var::Tt => put_timer(out, r.t_total, r.logasap),
        Var::Tu => put_timer(out, r.t_user, r.logasap),
        Var::ac => put_int(out, r.actconn as i64),
        Var::fc => put_int(out, r.feconn as i64),
        Var::bc => put_int(out, r.beconn as i64),
        Var::sc => put_int(out, r.srv_conn as i64),
        Var::rc => {
            if r.redispatched {
                out.push(b'+');
            }
            put_int(out, r.retries as i64);
        }
        Var::sq => put_int(out, r.srv_queue as i64),
        Var::bq => put_int(out, r.backend_queue as i64),
        Var::b => {
            let b = r.backend.as_deref().unwrap_or(&r.frontend);
            put_text(out, Some(b.as_bytes()), flags, None);
        }
        Var::f => put_text(out, Some(r.frontend.as_bytes()), flags, None),
        Var::ft => {
            if q {
                out.push(b'"');
            }
            put_encoded(out, r.frontend.as_bytes(), None, flags);
            if r.frontend_ssl {
                out.push(b'~');
            }
            if q {
                out.push(b'"');
            }
        }
        Var::s => {
            let s = r.server.as_deref().unwrap_or("<NOSRV>");
            put_text(out, Some(s.as_bytes()), flags, None);
        }
        Var::bi => put_ip(out, r.backend_src, flags),
        Var::bp => put_port(out, r.backend_src, flags),
        Var::ci => put_ip(out, r.client, flags),
        Var::cp => put_port(out, r.client, flags),
        Var::fi => put_ip(out, r.frontend_addr, flags),
        Var::fp => put_port(out, r.frontend_addr, flags),
        Var::si => put_ip(out, r.server_addr, flags),
        Var::sp => put_port(out, r.server_addr, flags),
        Var::hr | Var::hs | Var::hrl | Var::hsl => {
            let caps = if matches!(var, Var::hr | Var::hrl) {
                &r.req_captures
            } else {
                &r.res_captures
            };
            match caps {
                Some(c) if !c.is_empty() => {
                    if matches!(var, Var::hr | Var::hs) {
                        put_captures_braced(out, c, flags)
                    } else {
                        put_captures_clf(out, c, flags)
                    }
                }
                _ => return false,
            }
        }
        Var::lc => put_hex_or_dec(out, r.log_counter, flags),
        Var::pid => put_hex_or_dec(out, r.pid as u64, flags),
        Var::rt => put_hex_or_dec(out, r.req_counter, flags),
        Var::sslc => put_text(out, r.ssl_cipher.as_deref().map(str::as_bytes), flags, None),
        Var::sslv => put_text(
            out,
            r.ssl_version.as_deref().map(str::as_bytes),
            flags,
            None,
        ),
        Var::ts => out.extend_from_slice(&r.term_state[..2]),
        Var::tsc => out.extend_from_slice(&r.term_state),
    }
    true
}

/// A fetched sample before output: an integer, or text already written to the buffer.
enum Val {
    Absent,
    Int(i64),
    Ip(IpAddr),
    Written,
}

/// Hex-encode `out[from..]` in place (each byte becomes two uppercase hex digits).
fn hex_in_place(out: &mut Vec<u8>, from: usize) {
    let n = out.len() - from;
    out.resize(from + 2 * n, 0);
    for i in (0..n).rev() {
        let b = out[from + i];
        out[from + 2 * i] = HEX[(b >> 4) as usize];
        out[from + 2 * i + 1] = HEX[(b & 15) as usize];
    }
}

/// Backslash-escape `"` `\` `]` in `out[from..]` in place (E flag).
fn escape_in_place(out: &mut Vec<u8>, from: usize) {
    let is_special = |c: u8| matches!(c, b'"' | b'\\' | b']');
    let extra = out[from..].iter().filter(|&&c| is_special(c)).count();
    if extra == 0 {
        return;
    }
    let n = out.len() - from;
    out.resize(from + n + extra, 0);
    let mut w = from + n + extra;
    for i in (0..n).rev() {
        let c = out[from + i];
        w -= 1;
        out[w] = c;
        if is_special(c) {
            w -= 1;
            out[w] = b'\\';
        }
    }
}

fn fetch(out: &mut Vec<u8>, f: &Fetch, r: &LogRecord) -> Val {
    let text = |out: &mut Vec<u8>, v: Option<&[u8]>| match v {
        Some(v) => {
            out.extend_from_slice(v);
            Val::Written
        }
        None => Val::Absent,
    };
    let ssl = r.ssl_version.is_some();
    match f {
        Fetch::Str(v) => text(out, Some(v.as_bytes())),
        Fetch::Env(name) => match std::env::var_os(name) {
            Some(v) => {
                use std::os::unix::ffi::OsStrExt;
                text(out, Some(v.as_bytes()))
            }
            None => Val::Absent,
        },
        Fetch::Hostname => text(out, Some(r.hostname.as_bytes())),
        // measured: `req.`/`res.` scopes are gone at log time, `txn.` needs a stream; in
        // both cases even the default is not used
        Fetch::Var(name, _)
            if name.starts_with("req.")
                || name.starts_with("res.")
                || (r.session_only && name.starts_with("txn.")) =>
        {
            Val::Absent
        }
        Fetch::Var(name, default) => {
            let v = r
                .vars
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice());
            text(out, v.or(default.as_deref().map(str::as_bytes)))
        }
        Fetch::Src | Fetch::Dst => {
            let a = if *f == Fetch::Src {
                r.client
            } else {
                r.frontend_addr
            };
            a.map_or(Val::Absent, |a| Val::Ip(a.ip()))
        }
        Fetch::SrcPort | Fetch::DstPort => {
            let a = if *f == Fetch::SrcPort {
                r.client
            } else {
                r.frontend_addr
            };
            a.map_or(Val::Absent, |a| Val::Int(a.port() as i64))
        }
        Fetch::FeName => text(out, Some(r.frontend.as_bytes())),
        Fetch::BeName => text(out, r.backend.as_deref().map(str::as_bytes)),
        Fetch::SrvName => text(out, r.server.as_deref().map(str::as_bytes)),
        Fetch::CaptureReqHdr(n) | Fetch::CaptureResHdr(n) => {
            let caps = if matches!(f, Fetch::CaptureReqHdr(_)) {
                &r.req_captures
            } else {
                &r.res_captures
            };
            let v = caps
                .as_ref()
                .and_then(|c| c.get(*n))
                .and_then(|c| c.as_deref());
            text(out, v)
        }
        Fetch::FcErr => Val::Int(r.fc_err as i64),
        Fetch::SslFc => Val::Int(ssl as i64),
        Fetch::SslFcIsResumed => Val::Int((ssl && r.ssl_resumed) as i64),
        Fetch::SslFcErr | Fetch::SslCErr | Fetch::SslCCaErr => {
            let v = match f {
                Fetch::SslFcErr => r.ssl_fc_err,
                Fetch::SslCErr => r.ssl_c_err,
                _ => r.ssl_c_ca_err,
            };
            match v {
                Some(v) if ssl => Val::Int(v as i64),
                _ => Val::Absent,
            }
        }
        Fetch::SslFcSni => {
            if ssl {
                text(out, r.ssl_sni.as_deref().map(str::as_bytes))
            } else {
                Val::Absent
            }
        }
    }
}

fn render_sample(out: &mut Vec<u8>, e: &SampleExpr, flags: u8, r: &LogRecord) {
    let start = out.len();
    let q = flags & FLAG_QUOTE != 0;
    if q {
        out.push(b'"');
    }
    let vstart = out.len();
    let mut val = fetch(out, &e.fetch, r);
    for c in &e.convs {
        val = match (val, c) {
            (Val::Absent, _) => Val::Absent,
            (Val::Int(i), Conv::Hex) => {
                let _ = write!(out, "{:016X}", i as u64);
                Val::Written
            }
            (Val::Int(i), Conv::Lower | Conv::Upper) => {
                let _ = write!(out, "{i}");
                Val::Written
            }
            (Val::Ip(ip), Conv::Hex) => {
                match ip {
                    IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
                    IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
                }
                hex_in_place(out, vstart);
                Val::Written
            }
            (Val::Ip(ip), Conv::Lower | Conv::Upper) => {
                let _ = write!(out, "{ip}");
                Val::Written
            }
            (Val::Written, Conv::Lower) => {
                out[vstart..].make_ascii_lowercase();
                Val::Written
            }
            (Val::Written, Conv::Upper) => {
                out[vstart..].make_ascii_uppercase();
                Val::Written
            }
            (Val::Written, Conv::Hex) => {
                hex_in_place(out, vstart);
                Val::Written
            }
        };
    }
    match val {
        Val::Int(i) => {
            let _ = write!(out, "{i}");
            val = Val::Written;
        }
        Val::Ip(ip) => {
            let _ = write!(out, "{ip}");
            val = Val::Written;
        }
        _ => {}
    }
    if matches!(val, Val::Absent) || out.len() == vstart {
        out.truncate(start);
        out.extend_from_slice(if q { b"\"\"" } else { b"-" });
        return;
    }
    if flags & FLAG_ESCAPE != 0 {
        escape_in_place(out, vstart);
    }
    if q {
        out.push(b'"');
    }
}

impl LogFormat {
    /// Compile; same as [`compile`].
    pub fn compile(fmt: &str, http: bool) -> Result<LogFormat, FormatError> {
        compile(fmt, http)
    }

    /// Whether the format produces nothing at all (an empty `log-format ""`).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Append the rendered line to `out` (the caller clears and reuses the buffer).
    pub fn render(&self, r: &LogRecord, out: &mut Vec<u8>) {
        // Leading spaces are dropped; a run of spaces prints once.
        let mut last_isspace = true;
        for node in &self.nodes {
            match node {
                Node::Sep => {
                    if !last_isspace {
                        out.push(b' ');
                        last_isspace = true;
                    }
                }
                Node::Text(t) => {
                    out.extend_from_slice(t.as_bytes());
                    last_isspace = false;
                }
                Node::Var { var, flags } => {
                    if render_var(out, *var, *flags, r) {
                        last_isspace = false;
                    }
                }
                Node::Sample { expr, flags } => {
                    render_sample(out, expr, *flags, r);
                    last_isspace = false;
                }
            }
        }
    }

    /// Render into a new string (convenience for tests and rare paths).
    pub fn render_to_string(&self, r: &LogRecord) -> String {
        let mut v = Vec::with_capacity(256);
        self.render(r, &mut v);
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// The line HAProxy logs at connection time for a proxy without any log format option:
/// `Connect from IP:PORT to IP:PORT (PROXY/MODE)`.
pub fn render_connect_line(
    out: &mut Vec<u8>,
    client: SocketAddr,
    local: SocketAddr,
    proxy: &str,
    http: bool,
) {
    let _ = write!(
        out,
        "Connect from {}:{} to {}:{} ({}/{})",
        client.ip(),
        client.port(),
        local.ip(),
        local.port(),
        proxy,
        if http { "HTTP" } else { "TCP" }
    );
}

#[cfg(test)]
mod tests;
