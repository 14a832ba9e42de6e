//! The statistics page (`stats enable`, `stats uri`, `stats auth`, `stats admin if ...`).
//!
//! A request whose URI starts with the proxy's `stats uri` (default `/haproxy?stats`) is
//! answered here instead of going to a server. Options follow the prefix as HAProxy's do:
//! `;csv` (the `show stat` CSV, user level), `;up` (hide servers that are not up),
//! `;no-maint`, `;norefresh`, `;st=CODE` (the outcome of an admin action, shown as a banner).
//! `?scope=TEXT` shows only the proxies whose name contains TEXT.
//!
//! With `stats auth user:password` the page asks for Basic authentication (401 with
//! `www-authenticate: Basic realm="..."`, as HAProxy). With `stats admin if COND` granted, a
//! POST of the page's form (`s=SERVER`... `action=ready|drain|maint|shutdown`, `b=#IID` or
//! `b=NAME`) changes the servers through the runtime API's own commands, then redirects (303)
//! to the page with `;st=DONE|PART|NONE|ERRP|DENY|EXCD`.
//!
//! The HTML is rhaproxy's own: one table per proxy (frontend, servers, backend) with the
//! traffic counters and the server states in colour. It is rendered by [`render_html`], a pure
//! function of the `show stat` rows and the `show info` fields.

use std::fmt::Write as _;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Frontend;
use crate::config::ir::StatsPage;
use crate::http1::{self, BodyKind, Request};

/// Realm of the Basic authentication when `stats realm` is not given.
pub const DEFAULT_REALM: &str = "HAProxy Statistics";

/// Largest admin form accepted.
const MAX_FORM: usize = 64 * 1024;

// ------------------------------------------------------------------------------------------
// `stats admin` conditions.

/// Whether `stats admin` rules grant the administration to this request (any rule whose
/// condition matches, as HAProxy).
pub fn admin_allowed(page: &StatsPage, ctx: &crate::acl::SampleCtx) -> bool {
    page.admin
        .iter()
        .any(|r| crate::acl::cond::eval(&r.value.cond, ctx))
}

// ------------------------------------------------------------------------------------------
// Request side.

/// The stats page configured for this frontend (or the backend chosen for the request) when
/// the request URI starts with its `stats uri`.
pub fn target<'a>(
    fe: &'a Frontend,
    be: Option<&'a super::backend::Backend>,
    uri: &[u8],
) -> Option<&'a StatsPage> {
    let page = fe
        .proxy
        .stats
        .as_ref()
        .or_else(|| be.and_then(|b| b.proxy.stats.as_ref()))?;
    uri.starts_with(page.uri.as_bytes()).then_some(page)
}

/// Options found after the URI prefix.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PageOpts {
    pub csv: bool,
    pub up: bool,
    pub no_maint: bool,
    pub norefresh: bool,
    pub status: Option<String>,
    pub scope: Option<String>,
}

pub fn parse_opts(rest: &str) -> PageOpts {
    let mut o = PageOpts::default();
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    for part in path.split(';').skip(1).chain(
        // HAProxy scans the whole URI: `;csv` after a query string counts too.
        query.into_iter().flat_map(|q| q.split(';').skip(1)),
    ) {
        match part {
            "csv" => o.csv = true,
            "up" => o.up = true,
            "no-maint" => o.no_maint = true,
            "norefresh" => o.norefresh = true,
            p if p.starts_with("st=") => o.status = Some(p[3..].chars().take(4).collect()),
            _ => {}
        }
    }
    if let Some(q) = query {
        for kv in q.split(['&', ';']) {
            if let Some(v) = kv.strip_prefix("scope=") {
                let v = url_decode(v);
                if !v.is_empty() {
                    o.scope = Some(v.chars().take(64).collect());
                }
            }
        }
    }
    o
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space).
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Whether the request carries one of the `stats auth` accounts.
pub fn authorized(page: &StatsPage, authorization: Option<&[u8]>) -> bool {
    if page.auth.is_empty() {
        return true;
    }
    let Some(h) = authorization.and_then(|h| std::str::from_utf8(h).ok()) else {
        return false;
    };
    let h = h.trim();
    let Some((scheme, cred)) = h.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Some(dec) = b64_decode(cred.trim()) else {
        return false;
    };
    let Ok(dec) = String::from_utf8(dec) else {
        return false;
    };
    let Some((u, p)) = dec.split_once(':') else {
        return false;
    };
    page.auth.iter().any(|(au, ap)| au == u && ap == p)
}

/// What serving the page did, for the transaction's log and counters.
pub struct Served {
    pub status: u16,
    pub bytes_out: u64,
    pub keep_alive: bool,
}

/// Outcome codes of an admin POST (`;st=`).
fn status_text(code: &str) -> Option<(&'static str, &'static str)> {
    Some(match code {
        "DONE" => ("ok", "Action processed successfully."),
        "PART" => (
            "warn",
            "The action was applied to part of the servers only (unknown servers were skipped).",
        ),
        "NONE" => ("warn", "Nothing to do: no server was selected."),
        "ERRP" => ("err", "Action not processed: invalid parameters."),
        "EXCD" => ("err", "Action not processed: the request was too large."),
        "DENY" => ("err", "Action denied: administration is not allowed here."),
        "UNKN" => ("err", "Unexpected result."),
        _ => return None,
    })
}

/// The connection header of a generated answer: `close` when the connection ends,
/// `keep-alive` for an HTTP/1.0 client kept alive, none otherwise.
pub fn conn_header(req: &Request, keep: bool) -> http1::errors::ConnHeader {
    use http1::errors::ConnHeader;
    if !keep {
        ConnHeader::Close
    } else if !req.version.is_11() {
        ConnHeader::KeepAlive
    } else {
        ConnHeader::None
    }
}

/// A generated response head ending with the connection header and the blank line.
pub fn response_head(
    status: u16,
    reason: &str,
    headers: &[(&str, String)],
    conn: http1::errors::ConnHeader,
) -> String {
    let mut h = format!("HTTP/1.1 {status} {reason}\r\n");
    for (n, v) in headers {
        let _ = write!(h, "{n}: {v}\r\n");
    }
    match conn {
        http1::errors::ConnHeader::None => {}
        http1::errors::ConnHeader::Close => h.push_str("connection: close\r\n"),
        http1::errors::ConnHeader::KeepAlive => h.push_str("connection: keep-alive\r\n"),
    }
    h.push_str("\r\n");
    h
}

/// Reads a `Content-Length` body (part may already be in `cbuf`); `None` when too large,
/// chunked, or the client went away.
async fn read_body<R: AsyncRead + Unpin>(
    req: &Request,
    cbuf: &mut Vec<u8>,
    cr: &mut R,
    timeout: Option<std::time::Duration>,
) -> Result<Vec<u8>, &'static str> {
    let n = match req.body {
        BodyKind::None => 0,
        BodyKind::Length(n) => n as usize,
        _ => return Err("ERRP"),
    };
    if n > MAX_FORM {
        return Err("EXCD");
    }
    let mut tmp = [0u8; 4096];
    while cbuf.len() < n {
        let r = match timeout {
            Some(t) => tokio::time::timeout(t, cr.read(&mut tmp))
                .await
                .unwrap_or(Ok(0)),
            None => cr.read(&mut tmp).await,
        };
        match r {
            Ok(0) | Err(_) => return Err("ERRP"),
            Ok(k) => cbuf.extend_from_slice(&tmp[..k]),
        }
    }
    Ok(cbuf.drain(..n).collect())
}

/// Applies an admin form; returns the `;st=` code.
fn apply_form(body: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(body);
    let mut servers = Vec::new();
    let mut action = None;
    let mut backend = None;
    for kv in text.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = url_decode(v);
        match k {
            "s" => servers.push(v),
            "action" => action = Some(v),
            "b" => backend = Some(v),
            _ => {}
        }
    }
    let (Some(action), Some(backend)) = (action, backend) else {
        return "ERRP";
    };
    let cmd: &[&str] = match action.as_str() {
        "ready" => &["set", "server", "", "state", "ready"],
        "drain" => &["set", "server", "", "state", "drain"],
        "maint" => &["set", "server", "", "state", "maint"],
        "shutdown" => &["shutdown", "sessions", "server", ""],
        _ => return "ERRP",
    };
    if backend.is_empty() {
        return "ERRP";
    }
    if servers.is_empty() {
        return "NONE";
    }
    let mut done = 0;
    for s in &servers {
        let target = format!("{backend}/{s}");
        let words: Vec<&str> = cmd
            .iter()
            .map(|w| if w.is_empty() { target.as_str() } else { w })
            .collect();
        let out = super::admin::admin_command(&words);
        if out.trim().is_empty() {
            done += 1;
        } else if out.contains("No such backend") {
            return "ERRP";
        }
    }
    match done {
        0 => "ERRP",
        d if d == servers.len() => "DONE",
        _ => "PART",
    }
}

/// Answers a request for the stats page.
pub async fn serve<R, W>(
    page: &StatsPage,
    fe: &Frontend,
    req: &Request,
    (cbuf, cr, cw): (&mut Vec<u8>, &mut R, &mut W),
    (acc, be): (&super::Accepted, Option<&super::backend::Backend>),
) -> Served
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    fe.ctr
        .intercepted
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Evaluated at once: the sample context is not kept across awaits.
    let admin_ok = admin_allowed(
        page,
        &super::rules::ctx(fe, acc, be.map(|b| b.name.as_str()), Some(req), None, None),
    );
    let mut keep = http1::plan_request(req, fe.http.mode, fe.http.mode).client_keep_alive
        && !super::is_stopping();
    let uri = String::from_utf8_lossy(&req.uri).into_owned();
    let rest = &uri[page.uri.len().min(uri.len())..];
    let opts = parse_opts(rest);

    let out: (u16, Vec<u8>);
    if !authorized(page, req.header("authorization")) {
        let realm = page.realm.as_deref().unwrap_or(DEFAULT_REALM);
        // The body of a refused POST is not read: close after the answer.
        if !matches!(req.body, BodyKind::None | BodyKind::Length(0)) {
            keep = false;
        }
        let conn = conn_header(req, keep);
        // HAProxy 2.6 logs this challenge with status 400 (measured), though it sends 401.
        out = (400, http1::errors::auth_challenge(realm, conn));
    } else if req.method == b"POST" {
        let base = page.uri.clone();
        let code = match read_body(req, cbuf, cr, fe.client_timeout).await {
            Err(code) => {
                keep = false;
                code
            }
            Ok(_) if !admin_ok => "DENY",
            Ok(body) => apply_form(&body),
        };
        let head = response_head(
            303,
            "See Other",
            &[
                ("cache-control", "no-cache".into()),
                ("content-type", "text/plain".into()),
                ("content-length", "0".into()),
                ("location", format!("{base};st={code}")),
            ],
            conn_header(req, keep),
        );
        out = (303, head.into_bytes());
    } else if req.method != b"GET" && req.method != b"HEAD" {
        let conn = conn_header(req, keep);
        out = (
            405,
            http1::errors::stream_error_with(405, &[], conn).unwrap_or_default(),
        );
    } else {
        let mut cli_opts = Vec::new();
        if opts.up {
            cli_opts.push("up".to_string());
        }
        if opts.no_maint {
            cli_opts.push("no-maint".to_string());
        }
        let own = fe.name.clone();
        let scope = page.scope.clone();
        let search = opts.scope.clone();
        let keep_px = move |name: &str| {
            (scope.is_empty() || scope.iter().any(|s| s == name || (s == "." && name == own)))
                && search.as_ref().is_none_or(|s| name.contains(s.as_str()))
        };
        let refresh = page.refresh.filter(|_| !opts.norefresh);
        let mut headers = vec![("cache-control", "no-cache".to_string())];
        let body = if opts.csv {
            headers.push(("content-type", "text/plain".into()));
            super::admin::stats_csv(&cli_opts, Some(&keep_px))
        } else {
            headers.push(("content-type", "text/html; charset=utf-8".into()));
            let csv = super::admin::stats_csv(&cli_opts, Some(&keep_px));
            let (header, rows) = super::admin::parse_csv(&csv);
            let info = super::admin::info_fields();
            let descriptions = super::admin::proxy_descriptions();
            let view = PageView {
                descriptions: &descriptions,
                uri: &page.uri,
                header: &header,
                rows: &rows,
                info: &info,
                admin: admin_ok,
                hide_version: page.hide_version,
                show_legends: page.show_legends,
                node: page
                    .show_node
                    .as_ref()
                    .map(|n| n.clone().unwrap_or_else(node_name)),
                desc: page
                    .show_desc
                    .as_ref()
                    .and_then(|d| d.clone().or_else(|| globals().1.clone())),
                refresh,
                opts: &opts,
            };
            render_html(&view)
        };
        if let Some(r) = refresh {
            headers.push(("refresh", r.to_string()));
        }
        headers.push(("content-length", body.len().to_string()));
        let mut bytes = response_head(200, "OK", &headers, conn_header(req, keep)).into_bytes();
        if req.method != b"HEAD" {
            bytes.extend_from_slice(body.as_bytes());
        }
        out = (200, bytes);
    }
    let (status, bytes) = out;
    let ok = cw.write_all(&bytes).await.is_ok();
    if !keep || !ok {
        let _ = cw.shutdown().await;
        keep = false;
    }
    Served {
        status,
        bytes_out: super::http::error_htx(&bytes),
        keep_alive: keep,
    }
}

// ------------------------------------------------------------------------------------------
// The HTML page.

/// Everything the page shows.
pub struct PageView<'a> {
    pub uri: &'a str,
    pub header: &'a [String],
    pub rows: &'a [Vec<String>],
    pub info: &'a [(&'static str, String)],
    /// Proxy `description`s, by proxy name.
    pub descriptions: &'a [(String, String)],
    pub admin: bool,
    pub hide_version: bool,
    pub show_legends: bool,
    pub node: Option<String>,
    pub desc: Option<String>,
    pub refresh: Option<u64>,
    pub opts: &'a PageOpts,
}

pub fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `1234567` → `1 234 567` (thin spaces would not survive copy and paste into a shell).
fn group(v: &str) -> String {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return v.to_string();
    }
    let mut out = String::new();
    for (i, c) in v.chars().enumerate() {
        if i > 0 && (v.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn duration_text(secs: &str) -> String {
    let Ok(s) = secs.parse::<u64>() else {
        return secs.to_string();
    };
    if s >= 86400 {
        format!("{}d{}h", s / 86400, (s / 3600) % 24)
    } else if s >= 3600 {
        format!("{}h{}m", s / 3600, (s / 60) % 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The CSS class of a status text.
pub fn state_class(status: &str) -> &'static str {
    match status {
        "UP" | "OPEN" => "st-up",
        "no check" => "st-nocheck",
        "DOWN" | "STOP" => "st-down",
        "MAINT" => "st-maint",
        "DRAIN" => "st-drain",
        "PAUSED" => "st-maint",
        s if s.starts_with("UP ") => "st-goingdown",
        s if s.starts_with("DOWN ") => "st-goingup",
        s if s.starts_with("MAINT") => "st-maint",
        _ => "st-other",
    }
}

const CSS: &str = "
:root{--up:#2e7d32;--upbg:#e3f4e1;--down:#c62828;--downbg:#fde3e1;--maint:#455a9c;--maintbg:#e3e8f7;
--drain:#0277bd;--drainbg:#dff1fb;--warn:#b26a00;--warnbg:#fff1d6;--line:#d7dbe0;--head:#263238}
*{box-sizing:border-box}
body{margin:0;font:13px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1c2329;background:#f5f6f8}
header.top{background:var(--head);color:#fff;padding:14px 24px;display:flex;flex-wrap:wrap;gap:6px 24px;align-items:baseline}
header.top h1{margin:0;font-size:20px;font-weight:600}
header.top .meta{opacity:.8}
main{padding:16px 24px}
.banner{padding:8px 12px;border-radius:6px;margin:0 0 14px;border:1px solid}
.banner.ok{background:var(--upbg);border-color:var(--up)}
.banner.warn{background:var(--warnbg);border-color:var(--warn)}
.banner.err{background:var(--downbg);border-color:var(--down)}
.banner a{float:right;color:inherit}
.overview{display:flex;flex-wrap:wrap;gap:16px;margin-bottom:18px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 14px;max-width:520px}
.card h2{font-size:13px;margin:0 0 6px;text-transform:uppercase;letter-spacing:.04em;color:#56606a}
.kv{border-collapse:collapse}
.kv td{padding:1px 10px 1px 0}
.kv td:first-child{color:#56606a}
.legend span{display:inline-block;margin:2px 8px 2px 0;padding:1px 8px;border-radius:10px}
.nav a{display:block;margin:2px 0}
section.proxy{background:#fff;border:1px solid var(--line);border-radius:8px;margin:0 0 18px;overflow:auto}
section.proxy h2{margin:0;padding:8px 12px;font-size:15px;border-bottom:1px solid var(--line);display:flex;gap:12px;align-items:baseline}
section.proxy h2 a{color:inherit;text-decoration:none}
section.proxy h2 .mode{font-size:11px;font-weight:normal;color:#56606a;border:1px solid var(--line);border-radius:8px;padding:0 6px}
section.proxy h2 .desc{font-size:12px;font-weight:normal;color:#56606a}
table.px{border-collapse:collapse;width:100%;font-size:12px;font-variant-numeric:tabular-nums}
table.px th{background:#eef1f4;font-weight:600;padding:2px 4px;border:1px solid var(--line);white-space:nowrap}
table.px td{padding:2px 4px;border:1px solid var(--line);text-align:right;white-space:nowrap}
table.px td.name{text-align:left;font-weight:600}
table.px td.status{text-align:center;font-weight:600}
tr.fe td,tr.be td{background:#f7f8fa}
tr.be td{border-top:2px solid #9aa5b1}
tr.st-up td.status,tr.st-nocheck td.status{color:var(--up)}
tr.st-up td{background:var(--upbg)}
tr.st-nocheck td{background:#f1f8f0}
tr.st-down td{background:var(--downbg)} tr.st-down td.status{color:var(--down)}
tr.st-maint td{background:var(--maintbg)} tr.st-maint td.status{color:var(--maint)}
tr.st-drain td{background:var(--drainbg)} tr.st-drain td.status{color:var(--drain)}
tr.st-goingdown td{background:var(--warnbg)} tr.st-goingup td{background:#fbf6d9}
tr.fe.st-up td,tr.be.st-up td{background:#eef6ee}
.legend .st-up{background:var(--upbg);color:var(--up)}
.legend .st-nocheck{background:#f1f8f0;color:var(--up)}
.legend .st-down{background:var(--downbg);color:var(--down)}
.legend .st-maint{background:var(--maintbg);color:var(--maint)}
.legend .st-drain{background:var(--drainbg);color:var(--drain)}
.legend .st-goingdown{background:var(--warnbg);color:var(--warn)}
.legend .st-goingup{background:#fbf6d9;color:#7a6400}
.actions{padding:8px 12px;display:flex;gap:8px;align-items:center;border-top:1px solid var(--line)}
.actions button{padding:3px 12px}
footer{padding:8px 24px 24px;color:#56606a}
";

/// Columns of a proxy table: (group, title, csv column, formatter).
const COLS: &[(&str, &str, &str)] = &[
    ("Queue", "Cur", "qcur"),
    ("Queue", "Max", "qmax"),
    ("Queue", "Limit", "qlimit"),
    ("Session rate", "Cur", "rate"),
    ("Session rate", "Max", "rate_max"),
    ("Session rate", "Limit", "rate_lim"),
    ("Sessions", "Cur", "scur"),
    ("Sessions", "Max", "smax"),
    ("Sessions", "Limit", "slim"),
    ("Sessions", "Total", "stot"),
    ("Sessions", "LbTot", "lbtot"),
    ("Sessions", "Last", "lastsess"),
    ("Bytes", "In", "bin"),
    ("Bytes", "Out", "bout"),
    ("Denied", "Req", "dreq"),
    ("Denied", "Resp", "dresp"),
    ("Errors", "Req", "ereq"),
    ("Errors", "Conn", "econ"),
    ("Errors", "Resp", "eresp"),
    ("Warnings", "Retr", "wretr"),
    ("Warnings", "Redis", "wredis"),
    ("Server", "Status", "status"),
    ("Server", "LastChk", "check_status"),
    ("Server", "Wght", "weight"),
    ("Server", "Act", "act"),
    ("Server", "Bck", "bck"),
    ("Server", "Chk", "chkfail"),
    ("Server", "Dwn", "chkdown"),
    ("Server", "Dwntme", "downtime"),
];

/// Renders the page (a pure function of its inputs).
pub fn render_html(v: &PageView) -> String {
    let col = |name: &str| v.header.iter().position(|c| c == name);
    let get = |r: &Vec<String>, name: &str| -> String {
        col(name)
            .and_then(|i| r.get(i))
            .cloned()
            .unwrap_or_default()
    };
    let info = |k: &str| {
        v.info
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, val)| val.clone())
            .unwrap_or_default()
    };
    let e = html_escape;
    let mut h = String::with_capacity(16 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        h,
        "<title>Statistics{}</title>",
        v.node
            .as_ref()
            .map(|n| format!(" - {}", e(n)))
            .unwrap_or_default()
    );
    let _ = writeln!(h, "<style>{CSS}</style></head><body>");

    // Header: identity of the process.
    h.push_str("<header class=\"top\"><h1>rhaproxy statistics</h1>");
    if !v.hide_version {
        let _ = write!(
            h,
            "<span class=\"meta\">version {}</span>",
            e(&info("Version"))
        );
    }
    let _ = write!(
        h,
        "<span class=\"meta\">pid {} &middot; up {}</span>",
        e(&info("Pid")),
        e(&info("Uptime"))
    );
    if let Some(n) = &v.node {
        let _ = write!(h, "<span class=\"meta\" id=\"node\">node {}</span>", e(n));
    }
    if let Some(d) = &v.desc {
        let _ = write!(h, "<span class=\"meta\" id=\"desc\">{}</span>", e(d));
    }
    h.push_str("</header>\n<main>\n");

    // Outcome of an admin action.
    if let Some((class, text)) = v.opts.status.as_deref().and_then(status_text) {
        let _ = writeln!(
            h,
            "<div class=\"banner {class}\" id=\"action-status\">{text}<a href=\"{}\" title=\"Dismiss\">&times;</a></div>",
            e(v.uri)
        );
    }

    // Overview: process figures, legend, links.
    h.push_str(
        "<div class=\"overview\">\n<div class=\"card\"><h2>Process</h2><table class=\"kv\">",
    );
    for (label, key) in [
        ("Current connections", "CurrConns"),
        ("Connection limit", "Maxconn"),
        ("Total connections", "CumConns"),
        ("Total requests", "CumReq"),
        ("Connection rate", "ConnRate"),
        ("Max connection rate", "MaxConnRate"),
        ("Threads", "Nbthread"),
        ("Bytes sent", "TotalBytesOut"),
    ] {
        let _ = write!(
            h,
            "<tr><td>{label}</td><td>{}</td></tr>",
            e(&group(&info(key)))
        );
    }
    h.push_str("</table></div>\n<div class=\"card legend\"><h2>Server states</h2>");
    for (class, text, tip) in [
        ("st-up", "UP", "passing its health checks"),
        ("st-nocheck", "no check", "not checked, taking traffic"),
        ("st-goingdown", "UP, going down", "failing checks, still up"),
        ("st-goingup", "DOWN, going up", "passing checks, still down"),
        ("st-down", "DOWN", "failed its health checks"),
        (
            "st-drain",
            "DRAIN",
            "no new traffic, current sessions go on",
        ),
        ("st-maint", "MAINT", "in maintenance: no traffic"),
    ] {
        if v.show_legends {
            let _ = write!(h, "<span class=\"{class}\" title=\"{tip}\">{text}</span>");
        } else {
            let _ = write!(h, "<span class=\"{class}\">{text}</span>");
        }
    }
    if v.show_legends {
        h.push_str("<p>Sessions: Cur/Max/Limit now, Total since start, LbTot times chosen by the balancer, Last seconds since the last one. Errors: Req invalid requests, Conn failed connects, Resp bad responses. Warnings: Retr retries, Redis redispatches.</p>");
    }
    h.push_str("</div>\n<div class=\"card nav\"><h2>Display</h2>");
    let base = e(v.uri);
    let _ = write!(h, "<a id=\"link-csv\" href=\"{base};csv\">CSV export</a>");
    let mut flags = String::new();
    if v.opts.norefresh {
        flags.push_str(";norefresh");
    }
    if v.opts.up {
        let _ = write!(h, "<a href=\"{base}{flags}\">Show all servers</a>");
    } else {
        let _ = write!(
            h,
            "<a href=\"{base};up{flags}\">Hide servers that are not up</a>"
        );
    }
    if v.refresh.is_some() {
        let _ = write!(h, "<a href=\"{base};norefresh\">Stop refreshing</a>");
    } else if v.opts.norefresh {
        let _ = write!(h, "<a href=\"{base}\">Refresh automatically</a>");
    }
    let _ = write!(
        h,
        "<a href=\"{base}{}\">Refresh now</a>",
        if v.opts.up { ";up" } else { "" }
    );
    let _ = write!(
        h,
        "<form method=\"get\" action=\"{base}\"><input name=\"scope\" size=\"12\" placeholder=\"proxy name\" value=\"{}\"> <button type=\"submit\">Filter</button></form>",
        e(v.opts.scope.as_deref().unwrap_or(""))
    );
    h.push_str("</div>\n</div>\n");

    // One table per proxy, in `show stat` order.
    let mut i = 0;
    let rows = v.rows;
    while i < rows.len() {
        let px = rows[i].first().cloned().unwrap_or_default();
        let mut j = i;
        while j < rows.len() && rows[j].first() == Some(&px) {
            j += 1;
        }
        let group_rows = &rows[i..j];
        i = j;
        let mode = get(&group_rows[0], "mode");
        let iid = get(&group_rows[0], "iid");
        let has_servers = group_rows
            .iter()
            .any(|r| r.get(1).is_some_and(|s| s != "FRONTEND" && s != "BACKEND"));
        let admin = v.admin && has_servers;
        let desc = v
            .descriptions
            .iter()
            .find(|(n, _)| *n == px)
            .map(|(_, d)| format!("<span class=\"desc\">{}</span>", e(d)))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<section class=\"proxy\" id=\"px-{0}\" data-proxy=\"{0}\"><h2><a href=\"#px-{0}\">{0}</a><span class=\"mode\">{1}</span>{desc}</h2>",
            e(&px),
            e(&mode)
        );
        if admin {
            let _ = writeln!(
                h,
                "<form method=\"post\" action=\"{base}\" id=\"form-{}\">",
                e(&px)
            );
        }
        h.push_str("<table class=\"px\"><thead><tr>");
        if admin {
            h.push_str("<th rowspan=\"2\"></th>");
        }
        h.push_str("<th rowspan=\"2\">Name</th>");
        let mut k = 0;
        while k < COLS.len() {
            let g = COLS[k].0;
            let n = COLS[k..].iter().take_while(|c| c.0 == g).count();
            let _ = write!(h, "<th colspan=\"{n}\">{g}</th>");
            k += n;
        }
        h.push_str("</tr><tr>");
        for (_, t, _) in COLS {
            let _ = write!(h, "<th>{t}</th>");
        }
        h.push_str("</tr></thead><tbody>\n");
        for r in group_rows {
            let sv = r.get(1).cloned().unwrap_or_default();
            let status = get(r, "status");
            let kind = match sv.as_str() {
                "FRONTEND" => "fe",
                "BACKEND" => "be",
                _ => "srv",
            };
            let _ = write!(
                h,
                "<tr class=\"{kind} {}\" data-proxy=\"{}\" data-server=\"{}\" data-state=\"{}\">",
                state_class(&status),
                e(&px),
                e(&sv),
                e(&status)
            );
            if admin {
                if kind == "srv" {
                    let _ = write!(
                        h,
                        "<td><input type=\"checkbox\" name=\"s\" value=\"{}\" aria-label=\"select {}\"></td>",
                        e(&sv),
                        e(&sv)
                    );
                } else {
                    h.push_str("<td></td>");
                }
            }
            let title = if v.show_legends && kind == "srv" {
                let addr = get(r, "addr");
                let chk = get(r, "check_desc");
                format!(
                    " title=\"{}\"",
                    e(&[addr, chk]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(", "))
                )
            } else {
                String::new()
            };
            let label = match kind {
                "fe" => "Frontend".to_string(),
                "be" => "Backend".to_string(),
                _ => sv.clone(),
            };
            let _ = write!(h, "<td class=\"name\"{title}>{}</td>", e(&label));
            for (_, _, c) in COLS {
                let raw = get(r, c);
                let cell = match *c {
                    "status" => {
                        let _ = write!(h, "<td class=\"status\">{}</td>", e(&raw));
                        continue;
                    }
                    "check_status" => {
                        let code = get(r, "check_code");
                        let dur = get(r, "check_duration");
                        let mut t = raw.clone();
                        if !code.is_empty() {
                            let _ = write!(t, " {code}");
                        }
                        if !dur.is_empty() && !raw.is_empty() {
                            let _ = write!(t, " in {dur}ms");
                        }
                        t
                    }
                    "lastsess" if raw == "-1" => "-".to_string(),
                    "lastsess" | "downtime" if !raw.is_empty() => duration_text(&raw),
                    "act" | "bck" if kind == "srv" => {
                        if raw == "1" { "Y" } else { "-" }.to_string()
                    }
                    _ => group(&raw),
                };
                let _ = write!(h, "<td>{}</td>", e(&cell));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody></table>\n");
        if admin {
            let b = if iid.is_empty() {
                px.clone()
            } else {
                format!("#{iid}")
            };
            let _ = writeln!(
                h,
                "<div class=\"actions\"><label>Selected servers: <select name=\"action\"><option value=\"\">Choose an action</option><option value=\"ready\">Set state to READY</option><option value=\"drain\">Set state to DRAIN</option><option value=\"maint\">Set state to MAINT</option><option value=\"shutdown\">Kill sessions</option></select></label><input type=\"hidden\" name=\"b\" value=\"{}\"><button type=\"submit\">Apply</button></div></form>",
                e(&b)
            );
        }
        h.push_str("</section>\n");
    }
    let _ = writeln!(
        h,
        "</main><footer>Generated by rhaproxy{}.</footer></body></html>",
        if v.refresh.is_some() {
            format!(
                " &middot; refreshed every {}s",
                v.refresh.unwrap_or_default()
            )
        } else {
            String::new()
        }
    );
    h
}

static GLOBALS: std::sync::OnceLock<(Option<String>, Option<String>)> = std::sync::OnceLock::new();

/// The global `node` and `description` (set once at startup).
pub fn set_globals(node: Option<String>, desc: Option<String>) {
    let _ = GLOBALS.set((node, desc));
}

fn globals() -> &'static (Option<String>, Option<String>) {
    GLOBALS.get_or_init(|| (None, None))
}

/// The node name: the global `node`, else the host name.
pub fn node_name() -> String {
    globals().0.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_after_the_prefix() {
        let o = parse_opts(";csv;norefresh");
        assert!(o.csv && o.norefresh && !o.up);
        let o = parse_opts(";up;st=DONE");
        assert!(o.up);
        assert_eq!(o.status.as_deref(), Some("DONE"));
        let o = parse_opts("?scope=web+1");
        assert_eq!(o.scope.as_deref(), Some("web 1"));
        assert_eq!(parse_opts(""), PageOpts::default());
    }

    #[test]
    fn basic_authentication() {
        let page = StatsPage {
            auth: vec![("admin".into(), "s3cret".into())],
            ..Default::default()
        };
        // "admin:s3cret"
        assert!(authorized(&page, Some(b"Basic YWRtaW46czNjcmV0")));
        assert!(!authorized(&page, Some(b"Basic YWRtaW46d3Jvbmc=")));
        assert!(!authorized(&page, Some(b"Bearer x")));
        assert!(!authorized(&page, Some(b"Basic !!!")));
        assert!(!authorized(&page, None));
        assert!(authorized(&StatsPage::default(), None));
    }

    #[test]
    fn decoding() {
        assert_eq!(url_decode("a%20b+c%2"), "a b c%2");
        assert_eq!(url_decode("%23"), "#");
        assert_eq!(b64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(b64_decode("YQ==").unwrap(), b"a");
    }

    #[test]
    fn page_shows_every_row_with_its_state() {
        let header: Vec<String> = [
            "pxname",
            "svname",
            "status",
            "mode",
            "iid",
            "stot",
            "addr",
            "check_desc",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let rows: Vec<Vec<String>> = [
            ["web", "FRONTEND", "OPEN", "http", "2", "12", "", ""],
            ["web", "s<1>", "MAINT", "http", "2", "1234567", "", ""],
            ["web", "s2", "UP 1/3", "http", "2", "3", "", ""],
            ["web", "BACKEND", "UP", "http", "2", "5", "", ""],
        ]
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect();
        let opts = PageOpts {
            status: Some("DONE".into()),
            ..Default::default()
        };
        let v = PageView {
            uri: "/st",
            header: &header,
            rows: &rows,
            info: &[("Version", "2.6.12-x".into())],
            descriptions: &[("web".into(), "front <door>".into())],
            admin: true,
            hide_version: true,
            show_legends: false,
            node: Some("n1".into()),
            desc: None,
            refresh: Some(5),
            opts: &opts,
        };
        let h = render_html(&v);
        assert!(h.contains("data-server=\"s&lt;1&gt;\" data-state=\"MAINT\""));
        assert!(h.contains("class=\"srv st-maint\""));
        assert!(h.contains("class=\"srv st-goingdown\""));
        assert!(h.contains("1 234 567"));
        assert!(h.contains("name=\"b\" value=\"#2\""));
        assert!(h.contains("id=\"action-status\""));
        assert!(!h.contains("2.6.12-x"), "hide-version");
        assert!(h.contains("node n1"));
        assert!(h.contains("front &lt;door&gt;"));
        assert!(!h.contains("<s<1>"));
    }
}
