//! Keywords of `defaults`, `frontend`, `backend` and `listen` (HAProxy 2.6 matrix, doc §4.1),
//! the `option` names and the `timeout` names.

use super::{DocRow, LineCtx, Status};
use crate::config::ir::*;
use crate::config::values::{AddrError, PortSpec, parse_addr, parse_uint};

pub type ProxyParse = fn(&mut LineCtx, &mut Proxy, &[String]);

/// Where a proxy keyword may appear: `D` defaults, `d` named defaults only, `F` frontend,
/// `L` listen, `B` backend.
pub struct ProxyKw {
    pub name: &'static str,
    pub allowed: &'static str,
    pub status: Status,
    pub parse: Option<ProxyParse>,
    /// What happens in a proxy lacking the capability.
    pub miss: Miss,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// `'KW' ignored because frontend 'f' has no backend capability.` (warning)
    Warn,
    /// Same text with "Maybe you want 'X' instead ?"
    WarnHint(&'static str),
    /// `'KW' will be ignored because ...` (warning, timeouts and a few tunables)
    WarnWill,
    /// `'KW' not allowed because frontend 'f' has no backend capability.` (fatal)
    Fatal,
    /// A fatal error with this exact text.
    FatalText(&'static str),
    /// The warning, then the line is parsed anyway (HAProxy's check rule parsers do so, and
    /// most then print an empty `(null)` warning).
    WarnParse,
}

const fn kw(
    name: &'static str,
    allowed: &'static str,
    status: Status,
    parse: Option<ProxyParse>,
) -> ProxyKw {
    ProxyKw {
        name,
        allowed,
        status,
        parse,
        miss: Miss::Warn,
    }
}

const fn kwm(
    name: &'static str,
    allowed: &'static str,
    status: Status,
    parse: Option<ProxyParse>,
    miss: Miss,
) -> ProxyKw {
    ProxyKw {
        name,
        allowed,
        status,
        parse,
        miss,
    }
}

use Status::{Implemented as I, NoEffect as N, Unsupported as U};

/// The proxy keyword table. Multi-word entries are matched before single-word ones.
pub static PROXY_KEYWORDS: &[ProxyKw] = &[
    kw("acl", "dFLB", I, Some(super::rules::p_acl)),
    kw("backlog", "DFL", I, Some(p_backlog)),
    kw("balance", "DLB", I, Some(p_balance)),
    kw("bind", "FL", I, Some(p_bind)),
    kw(
        "bind-process",
        "DFLB",
        N("deprecated, no effect in HAProxy 2.6 either"),
        None,
    ),
    kw("capture cookie", "FL", I, Some(p_capture_cookie)),
    kw("capture request", "FL", I, Some(p_capture)),
    kw("capture response", "FL", I, Some(p_capture)),
    kwm("clitcpka-cnt", "DFL", I, Some(p_tcpka), Miss::WarnWill),
    kwm("clitcpka-idle", "DFL", I, Some(p_tcpka), Miss::WarnWill),
    kwm("clitcpka-intvl", "DFL", I, Some(p_tcpka), Miss::WarnWill),
    kw("compression", "DFLB", U, None),
    kw("cookie", "DLB", I, Some(p_cookie)),
    kw("declare", "FL", I, Some(p_declare)),
    kwm(
        "default-server",
        "DLB",
        I,
        Some(super::server::p_default_server),
        Miss::Fatal,
    ),
    kw("default_backend", "DFL", I, Some(p_default_backend)),
    kw("description", "FLB", I, Some(p_description)),
    kw("disabled", "DFLB", I, Some(p_disabled)),
    kw("enabled", "DFLB", I, Some(p_enabled)),
    kw("dispatch", "LB", U, None),
    kw("email-alert", "DFLB", U, None),
    kw("errorfile", "DFLB", I, Some(p_errorfile)),
    kw("errorfiles", "DFLB", U, None),
    kw("errorloc", "DFLB", U, None),
    kw("errorloc302", "DFLB", U, None),
    kw("errorloc303", "DFLB", U, None),
    kw("error-log-format", "DFL", U, None),
    kw("force-persist", "LB", U, None),
    kw("filter", "FLB", U, None),
    kwm(
        "fullconn",
        "DLB",
        I,
        Some(p_fullconn),
        Miss::WarnHint("maxconn"),
    ),
    kw("hash-type", "DLB", I, Some(p_hash_type)),
    kw("hash-balance-factor", "DLB", I, Some(p_hash_balance_factor)),
    kw("http-after-response", "dFLB", U, None),
    kw(
        "http-request",
        "dFLB",
        I,
        Some(super::rules::p_http_request),
    ),
    kw(
        "http-response",
        "dFLB",
        I,
        Some(super::rules::p_http_response),
    ),
    kwm(
        "http-check",
        "DLB",
        I,
        Some(super::checks::p_http_check),
        Miss::WarnParse,
    ),
    kw("http-error", "DFLB", I, Some(super::checks::p_http_error)),
    kw("http-reuse", "DLB", I, Some(p_http_reuse)),
    kw("http-send-name-header", "LB", U, None),
    kw("id", "FLB", I, Some(p_id)),
    kw("ignore-persist", "LB", U, None),
    kw("load-server-state-from-file", "DLB", U, None),
    kw("log", "DFLB", I, Some(p_log)),
    kw("log-format", "DFL", I, Some(p_log_format)),
    kw("log-format-sd", "DFL", I, Some(p_log_format_sd)),
    kw("log-tag", "DFLB", I, Some(p_log_tag)),
    kwm(
        "max-keep-alive-queue",
        "DLB",
        N(
            "its limit is not applied: a request kept on its previous server waits in that server's queue, as with HAProxy's default of -1",
        ),
        None,
        Miss::WarnWill,
    ),
    kwm(
        "maxconn",
        "DFL",
        I,
        Some(p_maxconn),
        Miss::WarnHint("fullconn"),
    ),
    kw("mode", "DFLB", I, Some(p_mode)),
    kw("monitor", "FL", I, Some(super::rules::p_monitor)),
    kw("monitor-uri", "DFL", I, Some(p_monitor_uri)),
    kw("persist", "DLB", U, None),
    kwm("rate-limit", "DFL", U, None, Miss::WarnWill),
    kw("redirect", "FLB", I, Some(super::rules::p_redirect)),
    kw("retries", "DLB", I, Some(p_retries)),
    kwm(
        "retry-on",
        "DLB",
        U,
        None,
        Miss::FatalText("'retry-on' only available in backend or listen section"),
    ),
    kwm(
        "server",
        "LB",
        I,
        Some(super::server::p_server),
        Miss::Fatal,
    ),
    kwm("server-template", "LB", U, None, Miss::Fatal),
    kw("server-state-file-name", "DLB", U, None),
    kw("source", "DLB", I, Some(p_source)),
    kwm("srvtcpka-cnt", "DLB", I, Some(p_tcpka), Miss::WarnWill),
    kwm("srvtcpka-idle", "DLB", I, Some(p_tcpka), Miss::WarnWill),
    kwm("srvtcpka-intvl", "DLB", I, Some(p_tcpka), Miss::WarnWill),
    kw("stats", "DFLB", I, Some(p_stats)),
    kw("stick", "LB", I, Some(super::stick::p_stick)),
    kw("stick-table", "FLB", I, Some(super::stick::p_stick_table)),
    kwm(
        "tcp-check",
        "DLB",
        I,
        Some(super::checks::p_tcp_check),
        Miss::WarnParse,
    ),
    kw("tcp-request", "dFLB", I, Some(super::rules::p_tcp_request)),
    kw("tcp-response", "dLB", U, None),
    kw("timeout", "DFLB", I, Some(p_timeout)),
    kw("transparent", "DLB", U, None),
    kw("unique-id-format", "DFL", U, None),
    kw("unique-id-header", "DFL", U, None),
    kw("use_backend", "FL", I, Some(super::rules::p_use_backend)),
    kwm(
        "use-fcgi-app",
        "LB",
        U,
        None,
        Miss::FatalText("'use-fcgi-app' only available in backend or listen section"),
    ),
    kw("use-server", "LB", U, None),
    kw("usesrc", "DLB", I, Some(p_usesrc_alone)),
    kw("external-check", "DLB", U, None),
    kw("option", "DFLB", I, Some(p_option)),
];

/// Keywords removed from HAProxy, with the exact message 2.6 prints (fatal).
pub fn removed_keyword(w: &str) -> Option<String> {
    let m = match w {
        "contimeout" | "clitimeout" | "srvtimeout" => format!(
            "the '{w}' directive is not supported anymore since HAProxy 2.1. Use 'timeout {}'.",
            match w {
                "contimeout" => "connect",
                "clitimeout" => "client",
                _ => "server",
            }
        ),
        "reqadd" | "reqdel" | "reqrep" | "reqidel" | "reqirep" | "reqdeny" | "reqideny" | "reqallow"
        | "reqiallow" | "reqpass" | "reqipass" | "reqtarpit" | "reqitarpit" | "rspadd" | "rspdel"
        | "rsprep" | "rspidel" | "rspirep" | "rspdeny" | "rspideny" | "reqsetbe" | "reqisetbe" => {
            let (dir, act) = if w.starts_with("req") {
                ("request", "http-request")
            } else {
                ("response", "http-response")
            };
            let _ = dir;
            format!(
                "The '{w}' directive is not supported anymore since HAProxy 2.1. Use '{act} {}' instead.",
                match w.trim_start_matches("req").trim_start_matches("rsp").trim_start_matches('i') {
                    "add" => "add-header",
                    "del" => "del-header",
                    "rep" => "replace-header",
                    "deny" => "deny",
                    "allow" => "allow",
                    "tarpit" => "tarpit",
                    "setbe" => "use_backend",
                    _ => "...",
                }
            )
        }
        "block" => "The 'block' directive is not supported anymore since HAProxy 2.1. Use 'http-request deny' which uses the exact same syntax.".into(),
        "monitor-net" => "'monitor-net' doesn't exist anymore. Please use 'http-request return status 200 if { src 10.0.0.0/8 }' instead.".into(),
        _ => return None,
    };
    Some(m)
}

pub fn lookup(words: &[String]) -> Option<&'static ProxyKw> {
    if words.len() >= 2 {
        let two = format!("{} {}", words[0], words[1]);
        if let Some(k) = PROXY_KEYWORDS.iter().find(|k| k.name == two) {
            return Some(k);
        }
    }
    PROXY_KEYWORDS.iter().find(|k| k.name == words[0])
}

pub fn allowed_in(k: &ProxyKw, kind: ProxyKind, named_defaults: bool) -> bool {
    let c = match kind {
        ProxyKind::Defaults => {
            if k.allowed.contains('D') || (named_defaults && k.allowed.contains('d')) {
                return true;
            }
            return false;
        }
        ProxyKind::Frontend => 'F',
        ProxyKind::Backend => 'B',
        ProxyKind::Listen => 'L',
    };
    k.allowed.contains(c)
}

// ---------------------------------------------------------------------------------------------
// Parsers

fn no_extra(ctx: &mut LineCtx, args: &[String], max: usize, kw: &str) -> bool {
    if let Some(extra) = args.get(max + 1).filter(|a| !a.is_empty()) {
        ctx.alert(format!(
            "'{kw}' cannot handle unexpected argument '{extra}'."
        ));
        return false;
    }
    true
}

fn p_mode(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let m = match a.get(1).map(String::as_str) {
        Some("http") => Mode::Http,
        Some("tcp") => Mode::Tcp,
        Some("health") => {
            ctx.alert("'mode health' doesn't exist anymore. Please use 'http-request return' or 'tcp-request connection reject' instead.");
            return;
        }
        Some(m) => {
            ctx.alert(format!("unknown proxy mode '{m}'."));
            return;
        }
        None => {
            ctx.alert("'mode' expects one argument.");
            return;
        }
    };
    if !no_extra(ctx, a, 1, "mode") {
        return;
    }
    p.mode = Located::new(m, ctx.loc.clone());
}

fn p_maxconn(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if a.get(1).is_none_or(|s| s.is_empty()) {
        ctx.alert("'maxconn' expects an integer argument.");
        return;
    }
    if !no_extra(ctx, a, 1, "maxconn") {
        return;
    }
    // HAProxy reads it with atol(): garbage means 0 (no limit).
    let v = leading_int(&a[1]);
    p.maxconn = Some(Located::new(v, ctx.loc.clone()));
}

fn leading_int(s: &str) -> u32 {
    s.bytes()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u32, |acc, b| {
            acc.saturating_mul(10).saturating_add((b - b'0') as u32)
        })
}

fn p_fullconn(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if a.get(1).is_none_or(|s| s.is_empty()) {
        ctx.alert("'fullconn' expects an integer argument.");
        return;
    }
    p.fullconn = Some(leading_int(&a[1]));
}

fn p_backlog(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if a.get(1).is_none_or(|s| s.is_empty()) {
        ctx.alert("'backlog' expects an integer argument.");
        return;
    }
    p.backlog = Some(leading_int(&a[1]));
}

/// `clitcpka-cnt <n>`, `clitcpka-idle <time>`, `clitcpka-intvl <time>` and the `srvtcpka-`
/// ones; times in seconds unless a unit says otherwise (rounded up to seconds).
fn p_tcpka(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let kw = a[0].as_str();
    let Some(v) = a.get(1).filter(|s| !s.is_empty()) else {
        ctx.alert(format!("'{kw}' expects an integer value"));
        return;
    };
    let value = if kw.ends_with("-cnt") {
        // strtol with an end check: sign and digits, nothing after.
        let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
        if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
            ctx.alert(format!(
                "'{kw}' : unexpected character '{c}' in integer value '{v}'"
            ));
            return;
        }
        crate::config::values::atoi(v) as u32
    } else {
        let ms = match v.bytes().all(|b| b.is_ascii_digit()) {
            // A bare number is in seconds here.
            true => v
                .parse::<u64>()
                .map_or(u64::MAX, |s| s.saturating_mul(1000)),
            false => match crate::config::values::parse_time_ms(v) {
                Ok(ms) => ms,
                Err(c) => {
                    // HAProxy's text ends with a newline of its own (a blank line follows).
                    ctx.alert(format!(
                        "unexpected character '{c}' in argument to <{kw}>.\n"
                    ));
                    return;
                }
            },
        };
        let secs = ms.div_ceil(1000);
        if secs > i32::MAX as u64 {
            ctx.alert(format!("timer overflow in argument '{v}' to '{kw}' (maximum value is 2147483647 ms or ~24.8 days)"));
            return;
        }
        secs as u32
    };
    let probes = if kw.starts_with("cli") {
        &mut p.clitcpka
    } else {
        &mut p.srvtcpka
    };
    let slot = match kw.rsplit('-').next() {
        Some("cnt") => &mut probes.cnt,
        Some("idle") => &mut probes.idle,
        _ => &mut probes.intvl,
    };
    *slot = Some(value);
}

fn p_retries(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if a.get(1).is_none_or(|s| s.is_empty()) {
        ctx.alert("'retries' expects an integer argument.");
        return;
    }
    p.retries = Some(Located::new(leading_int(&a[1]), ctx.loc.clone()));
}

fn p_id(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    match a.get(1).and_then(|s| parse_uint(s)) {
        Some(v) if v > 0 && v <= i32::MAX as u64 => {
            p.id = Some(Located::new(v as u32, ctx.loc.clone()))
        }
        _ => ctx.alert_tight("custom id has to be > 0."),
    }
}

fn p_description(_ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    p.description = Some(a[1..].join(" "));
}

const STATS_EXPECTS: &str = "expects 'admin', 'uri', 'realm', 'auth', 'scope', 'enable', 'hide-version', 'show-node', 'show-desc' or 'show-legends'";

/// `stats ...` (the stats page; `stats socket` is a global keyword).
fn p_stats(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let sub = a.get(1).map(String::as_str).unwrap_or("");
    let arg = a.get(2).filter(|s| !s.is_empty());
    let defaults = p.kind == ProxyKind::Defaults;
    match sub {
        "" => {
            ctx.alert_tight(format!("missing keyword in 'stats', {STATS_EXPECTS}."));
            return;
        }
        "admin" if defaults => {
            ctx.alert_tight("'stats admin' not allowed in 'defaults' section.");
            return;
        }
        "http-request" if defaults => {
            ctx.alert_tight("'stats' not allowed in 'defaults' section.");
            return;
        }
        "http-request" => {
            ctx.alert(
                "'stats http-request' is valid in HAProxy 2.6 but not supported by rhaproxy yet.",
            );
            return;
        }
        "admin" | "uri" | "realm" | "auth" | "scope" | "enable" | "hide-version" | "show-node"
        | "show-desc" | "show-legends" | "refresh" => {}
        other => {
            ctx.alert_tight(format!(
                "unknown stats parameter '{other}', {STATS_EXPECTS}."
            ));
            return;
        }
    }
    if sub == "admin" {
        let unless = match arg.map(String::as_str) {
            Some("if") => false,
            Some("unless") => true,
            _ => {
                ctx.alert(
                    "'stats admin' requires either 'if' or 'unless' followed by a condition.",
                );
                return;
            }
        };
        const PREFIX: &str = "error detected while parsing a 'stats admin' rule";
        match crate::acl::cond::parse_condition(unless, &a[3..], &p.acls, &ctx.loc) {
            Ok((cond, warnings)) => {
                for w in warnings {
                    ctx.warning(w);
                }
                let st = p.stats.get_or_insert_with(StatsPage::default);
                st.admin
                    .push(Located::new(AdminRule { cond }, ctx.loc.clone()));
            }
            Err(crate::acl::AclError::Haproxy(m)) => ctx.alert(format!("{PREFIX} : {m}.")),
            Err(crate::acl::AclError::Unsupported(what)) => {
                ctx.unsupported += 1;
                ctx.alert(format!(
                    "{PREFIX} : {what} is valid for HAProxy 2.6 but is not supported by rhaproxy yet."
                ))
            }
        }
        return;
    }
    let st = p.stats.get_or_insert_with(StatsPage::default);
    match sub {
        "enable" => {}
        "uri" => match arg {
            Some(u) => st.uri = u.clone(),
            None => ctx.alert("'uri' needs an URI prefix."),
        },
        "realm" => match arg {
            Some(r) => st.realm = Some(r.clone()),
            None => ctx.alert("'realm' needs an realm name."),
        },
        "auth" => match arg {
            Some(ua) => {
                let (u, pw) = ua.split_once(':').unwrap_or((ua.as_str(), ""));
                st.auth.push((u.to_string(), pw.to_string()));
            }
            None => ctx.alert("'auth' needs a user:password account."),
        },
        "scope" => match arg {
            Some(s) => st.scope.push(s.clone()),
            None => ctx.alert("'scope' needs a proxy name."),
        },
        "refresh" => {
            let v = arg.map(String::as_str).unwrap_or("");
            let secs = if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
                // The default unit is the second.
                v.parse::<u64>().map_err(|_| ' ')
            } else {
                crate::config::values::parse_time_ms(v).map(|ms| ms.div_ceil(1000))
            };
            match secs {
                Ok(s) if !v.is_empty() => st.refresh = Some(s),
                _ => {
                    let bad = v
                        .trim_start_matches(|c: char| c.is_ascii_digit())
                        .chars()
                        .next()
                        .unwrap_or(' ');
                    ctx.alert_tight(format!(
                        "unexpected character '{bad}' in argument to stats refresh interval."
                    ));
                }
            }
        }
        "hide-version" => st.hide_version = true,
        "show-legends" => st.show_legends = true,
        "show-node" => st.show_node = Some(arg.cloned()),
        "show-desc" => {
            // Without a text, the global `description` is shown (HAProxy warns when none was
            // set before this line; the global section is not visible here).
            st.show_desc = Some((a.len() > 2).then(|| a[2..].join(" ")));
        }
        _ => {}
    }
}

fn p_disabled(_ctx: &mut LineCtx, p: &mut Proxy, _a: &[String]) {
    p.disabled = true;
}

fn p_enabled(_ctx: &mut LineCtx, p: &mut Proxy, _a: &[String]) {
    p.disabled = false;
}

fn p_balance(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let words: Vec<&str> = a[1..].iter().map(String::as_str).collect();
    match crate::lb::parse_balance(&words) {
        // A bare `balance` changes nothing in HAProxy.
        _ if words.is_empty() => {}
        Ok(crate::lb::Algorithm::RdpCookie { .. }) => ctx.unsupported_arg("balance", "rdp-cookie"),
        Ok(crate::lb::Algorithm::Hash { .. }) => ctx.unsupported_arg("balance", "hash"),
        Ok(_) => p.balance = Some(Located::new(a[1..].to_vec(), ctx.loc.clone())),
        Err(e) => ctx.alert(e),
    }
}

fn p_hash_type(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let words: Vec<&str> = a[1..].iter().map(String::as_str).collect();
    match crate::lb::parse_hash_type(&words) {
        Ok(_) => p.hash_type = Some(Located::new(a[1..].to_vec(), ctx.loc.clone())),
        Err(e) => ctx.alert(e),
    }
}

fn p_hash_balance_factor(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let words: Vec<&str> = a[1..].iter().map(String::as_str).collect();
    match crate::lb::parse_hash_balance_factor(&words) {
        Ok(v) => p.hash_balance_factor = Some(v),
        Err(e) => ctx.alert(e),
    }
}

/// `cookie NAME [options]` with HAProxy 2.6's messages. `maxidle`, `maxlife` and `dynamic`
/// are refused (no dated or dynamic cookies).
fn p_cookie(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let Some(name) = a.get(1).filter(|s| !s.is_empty()) else {
        ctx.alert("'cookie' expects <cookie_name> as argument.");
        return;
    };
    let mut c = CookieCfg {
        name: name.clone(),
        ..Default::default()
    };
    let (mut rw, mut ins, mut pfx) = (false, false, false);
    let mut i = 2;
    while let Some(w) = a.get(i).filter(|s| !s.is_empty()) {
        match w.as_str() {
            "rewrite" => rw = true,
            "insert" => ins = true,
            "prefix" => pfx = true,
            "indirect" => c.indirect = true,
            "nocache" => c.nocache = true,
            "postonly" => c.postonly = true,
            "preserve" => c.preserve = true,
            "httponly" => c.httponly = true,
            "secure" => c.secure = true,
            "domain" | "attr" => {
                let Some(v) = a.get(i + 1).filter(|s| !s.is_empty()) else {
                    let what = if w == "domain" { "<domain>" } else { "<value>" };
                    ctx.alert_tight(format!("'{w}' expects {what} as argument."));
                    return;
                };
                if w == "domain" {
                    if !v.starts_with('.') && !v.contains('.') {
                        ctx.warning_tight(format!(
                            "domain '{v}' contains no embedded dot, this configuration may not work properly (see RFC6265#5.2.3)."
                        ));
                    }
                    c.domains.push(v.clone());
                } else {
                    if let Some(b) = v.bytes().find(|b| b.is_ascii_control() || *b == b';') {
                        ctx.alert_tight(format!(
                            "character '%x{b:02X}' is not permitted in attribute value."
                        ));
                        return;
                    }
                    c.attrs.push(v.clone());
                }
                i += 1;
            }
            "maxidle" | "maxlife" | "dynamic" => {
                ctx.unsupported_arg("cookie", w);
                return;
            }
            _ => {
                ctx.alert("'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' and 'attr' options.");
                return;
            }
        }
        i += 1;
    }
    if rw && c.indirect {
        ctx.alert("cookie 'rewrite' and 'indirect' modes are incompatible.");
        return;
    }
    if [rw, ins, pfx].iter().filter(|&&b| b).count() > 1 {
        ctx.alert("cookie 'rewrite', 'insert' and 'prefix' modes are incompatible.");
        return;
    }
    if c.preserve && !ins && !c.indirect {
        ctx.alert("cookie 'preserve' requires at least 'insert' or 'indirect'.");
        return;
    }
    c.mode = if ins {
        CookieMode::Insert
    } else if rw {
        CookieMode::Rewrite
    } else if pfx {
        CookieMode::Prefix
    } else {
        CookieMode::Passive
    };
    p.cookie = Some(Located::new(c, ctx.loc.clone()));
}

fn p_http_reuse(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    match a.get(1).map(String::as_str) {
        Some(m @ ("never" | "safe" | "aggressive" | "always")) => {
            if no_extra(ctx, a, 1, &format!("http-reuse {m}")) {
                p.http_reuse = match m {
                    "never" => HttpReuse::Never,
                    "safe" => HttpReuse::Safe,
                    "aggressive" => HttpReuse::Aggressive,
                    _ => HttpReuse::Always,
                };
            }
        }
        _ => ctx.alert("'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'."),
    }
}

fn p_monitor_uri(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let Some(u) = a.get(1).filter(|s| !s.is_empty()) else {
        ctx.alert("'monitor-uri' expects an URI.");
        return;
    };
    if no_extra(ctx, a, 1, "monitor-uri") {
        p.monitor_uri = Some(Located::new(u.clone(), ctx.loc.clone()));
    }
}

fn p_default_backend(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    match a.get(1).filter(|s| !s.is_empty()) {
        Some(b) => {
            if no_extra(ctx, a, 1, "default_backend") {
                p.default_backend = Some(Located::new(b.clone(), ctx.loc.clone()));
            }
        }
        None => ctx.alert("'default_backend' expects a backend name."),
    }
}

fn p_timeout(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let name = a.get(1).map(String::as_str).unwrap_or("");
    let t = &mut p.timeouts;
    let slot = match name {
        "client" => &mut t.client,
        "client-fin" => &mut t.client_fin,
        "server" => &mut t.server,
        "server-fin" => &mut t.server_fin,
        "connect" => &mut t.connect,
        "queue" => &mut t.queue,
        "tunnel" => &mut t.tunnel,
        "tarpit" => &mut t.tarpit,
        "check" => &mut t.check,
        "http-request" => &mut t.http_request,
        "http-keep-alive" => &mut t.http_keep_alive,
        _ => {
            ctx.alert(format!("'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', 'http-request', 'tunnel', 'tarpit', 'client-fin' and 'server-fin' (got '{name}')"));
            return;
        }
    };
    let Some(v) = a.get(2).filter(|s| !s.is_empty()) else {
        ctx.alert(format!(
            "'timeout {name}' expects an integer value (in milliseconds)"
        ));
        return;
    };
    match crate::config::values::parse_time_ms_lenient(v) {
        Ok((ms, lenient)) => {
            if lenient {
                ctx.diags.warning(None, format!("unexpected character '{}' after the timer value '{v}', only (us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are supported. This will be reported as an error in next versions.", v.trim_start_matches(|c: char| c.is_ascii_digit()).chars().nth(1).unwrap_or('?')));
            }
            // HAProxy's timers are signed 32-bit milliseconds.
            if ms > i32::MAX as u64 {
                ctx.alert(format!("timer overflow in argument '{v}' to 'timeout {name}' (maximum value is 2147483647 ms or ~24.8 days)"));
                return;
            }
            if let Some(x) = a.get(3) {
                ctx.alert(format!(
                    "'timeout {name}' : unexpected extra argument '{x}' after value '{v}'."
                ));
                return;
            }
            *slot = Some(Located::new(ms, ctx.loc.clone()));
        }
        Err(c) => ctx.alert(format!("unexpected character '{c}' in 'timeout {name}'")),
    }
}

/// Which `timeout` names need which capability (for the "will be ignored" warning).
pub fn timeout_cap(name: &str) -> Option<Cap> {
    Some(match name {
        "client" | "client-fin" => Cap::FE,
        "server" | "server-fin" | "connect" | "queue" | "tunnel" | "check" => Cap::BE,
        "tarpit" | "http-request" | "http-keep-alive" => Cap::FE_BE,
        _ => return None,
    })
}

fn p_bind(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if let Some(b) = super::bind::parse_bind(ctx, &p.kind, &a[1..]) {
        p.binds.push(b);
    }
}

/// `capture cookie NAME len N` (one per proxy: a later line replaces it, as in HAProxy, which
/// reads the length as `atol` does).
fn p_capture_cookie(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if a.get(4).is_none_or(|s| s.is_empty()) {
        ctx.alert("'capture' expects 'cookie' <cookie_name> 'len' <len>.");
        return;
    }
    let len = a[4]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0usize, |n, b| {
            n.saturating_mul(10).saturating_add((b - b'0') as usize)
        });
    p.capture_cookie = Some(Located::new((a[2].clone(), len), ctx.loc.clone()));
}

fn p_capture(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    // capture request|response header NAME len N
    let dir = a[1].as_str();
    if a.get(2).map(String::as_str) != Some("header") || a.len() < 6 || a[4] != "len" {
        ctx.alert(format!(
            "'capture {dir} header' expects <header name> 'len' <len>."
        ));
        return;
    }
    let len = match parse_uint(&a[5]) {
        Some(l) if l > 0 => l as usize,
        _ => {
            ctx.alert(format!("'capture {dir} header' expects a positive length."));
            return;
        }
    };
    let c = Capture {
        header: a[3].clone(),
        len,
    };
    if dir == "request" {
        p.capture_request.push(c);
    } else {
        p.capture_response.push(c);
    }
}

/// `declare capture request|response len N`: a capture slot for `capture` rules.
fn p_declare(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let what = a.get(1).map(String::as_str).unwrap_or("");
    if what != "capture" {
        ctx.alert(format!(
            "unknown declaration type '{what}' (supports 'capture')"
        ));
        return;
    }
    let dir = a.get(2).map(String::as_str).unwrap_or("");
    if dir != "request" && dir != "response" {
        ctx.alert("'declare capture' requires a direction ('request' or 'response')");
        return;
    }
    match a.get(3).map(String::as_str) {
        Some("len") => {}
        None => {
            ctx.alert("'declare capture' requires a capture length ('len')");
            return;
        }
        Some(w) => {
            ctx.alert(format!("'declare capture': cannot parse the length '{w}'."));
            return;
        }
    }
    let Some(v) = a.get(4) else {
        ctx.alert(
            "'declare capture': 'len' requires a numeric value that represents the capture length",
        );
        return;
    };
    let len = crate::config::values::atoi(v);
    if len <= 0 {
        ctx.alert("length must be > 0");
        return;
    }
    let c = Capture {
        header: String::new(),
        len: len as usize,
    };
    if dir == "request" {
        p.capture_request.push(c);
    } else {
        p.capture_response.push(c);
    }
}

fn p_errorfile(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if a.len() < 3 {
        ctx.alert("errorfile : <errorfile> expects <status_code> and <file> as arguments.");
        return;
    }
    let Some(code) = parse_uint(&a[1]).filter(|c| *c < 1000) else {
        ctx.alert(format!("errorfile : status code '{}' not handled.", a[1]));
        return;
    };
    let path = &a[2];
    // HAProxy reads and validates the file at parse time; so do we.
    match std::fs::read(path) {
        Err(_) => ctx.alert(format!("errorfile : error opening file '{path}'.")),
        Ok(bytes) => {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut headers);
            match r.parse(&bytes) {
                Ok(httparse::Status::Complete(_)) => p
                    .errorfiles
                    .push(Located::new((code as u16, path.clone()), ctx.loc.clone())),
                _ => ctx.alert(format!(
                    "errorfile : '{path}': unable to parse headers (error offset: {})",
                    bytes.iter().position(|b| *b == b'\n').unwrap_or(0)
                )),
            }
        }
    }
}

fn p_log(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if ctx.negated {
        p.log.clear();
        return;
    }
    if a.len() < 2 {
        ctx.alert("'log' expects either <address[:port]> and <facility> or 'global' as arguments.");
        return;
    }
    let words: Vec<&str> = a[1..].iter().map(String::as_str).collect();
    match crate::log::target::parse_log_args(&words) {
        Ok(_) => p.log.push(Located::new(a[1..].to_vec(), ctx.loc.clone())),
        Err(e) => ctx.alert(e),
    }
}

fn p_log_format(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if a.len() < 2 {
        ctx.alert("'log-format' expects a format string.");
        return;
    }
    if a.len() > 2 {
        ctx.alert(
            "'log-format' expects only one argument, you have many. Please use quotes around the format string, or escape spaces with '\\ '.",
        );
        return;
    }
    p.log_format = Some(Located::new(
        LogFormatChoice::Custom(a[1].clone()),
        ctx.loc.clone(),
    ));
}

fn p_log_format_sd(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if a.len() != 2 {
        ctx.alert("'log-format-sd' expects a single format string.");
        return;
    }
    p.log_format_sd = Some(Located::new(a[1].clone(), ctx.loc.clone()));
}

fn p_log_tag(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    match a.get(1) {
        Some(t) => p.log_tag = Some(Located::new(t.clone(), ctx.loc.clone())),
        None => ctx.alert("'log-tag' expects a tag for use in syslog."),
    }
}

/// `source ADDR[:PORT] [usesrc ...] [interface NAME]`, shared with the server option.
pub fn parse_source(ctx: &mut LineCtx, a: &[String], server_level: bool) -> Option<Source> {
    let Some(addr_text) = a.get(1).filter(|s| !s.is_empty()) else {
        ctx.alert("'source' expects <addr>[:<port>] as argument.");
        return None;
    };
    let parsed = match parse_addr(addr_text, true) {
        Ok(p) => p,
        Err(e) => {
            addr_error(ctx, &format!("'source {addr_text}'"), addr_text, e);
            return None;
        }
    };
    if parsed.ip.is_none() {
        ctx.alert(format!(
            "'source {addr_text}' : invalid address: '{}' in '{addr_text}'",
            addr_text.trim_end_matches(':').trim_end_matches(':')
        ));
        return None;
    }
    let (lo, hi) = match parsed.port {
        None => (0, 0),
        Some(PortSpec::Range(l, h)) => {
            if l != h && !server_level {
                ctx.alert(format!(
                    "'source {addr_text}' : port range not permitted here in '{addr_text}'"
                ));
                return None;
            }
            (l, h)
        }
        Some(PortSpec::Offset(_)) => {
            ctx.alert(format!("'source {addr_text}' : invalid port '{addr_text}'"));
            return None;
        }
    };
    let mut src = Source {
        addr: parsed.ip.unwrap(),
        port_low: lo,
        port_high: hi,
        usesrc: None,
        interface: None,
    };
    let mut i = 2;
    while i < a.len() {
        match a[i].as_str() {
            "usesrc" => {
                let Some(v) = a.get(i + 1) else {
                    ctx.alert(
                        "'usesrc' expects <addr>[:<port>], 'client', or 'clientip' as argument.",
                    );
                    return None;
                };
                src.usesrc = Some(match v.as_str() {
                    "client" => UseSrc::Client,
                    "clientip" => UseSrc::ClientIp,
                    h if h.starts_with("hdr_ip(") => {
                        let inner = h.trim_start_matches("hdr_ip(");
                        let Some(inner) = inner.strip_suffix(')') else {
                            ctx.alert("invalid header name in 'usesrc hdr_ip' (missing ')').");
                            return None;
                        };
                        let (name, occ) = match inner.split_once(',') {
                            Some((n, o)) => (n, o.trim().parse::<i32>().unwrap_or(-1)),
                            None => (inner, -1),
                        };
                        UseSrc::HdrIp {
                            header: name.to_string(),
                            occ,
                        }
                    }
                    other => match parse_addr(other, true) {
                        Ok(ap) if ap.ip.is_some() => {
                            let port = match ap.port {
                                Some(PortSpec::Range(p, _)) => p,
                                _ => 0,
                            };
                            UseSrc::Addr(ap.ip.unwrap(), port)
                        }
                        Ok(_) => {
                            ctx.alert(format!(
                                "'usesrc {other}' : invalid address: '{other}' in '{other}'"
                            ));
                            return None;
                        }
                        Err(e) => {
                            addr_error(ctx, &format!("'usesrc {other}'"), other, e);
                            return None;
                        }
                    },
                });
                i += 2;
            }
            "interface" => {
                let Some(v) = a.get(i + 1).filter(|s| !s.is_empty()) else {
                    ctx.alert("'source' : missing interface name.");
                    return None;
                };
                src.interface = Some(v.clone());
                i += 2;
            }
            other => {
                ctx.alert(format!("'source' only supports optional keywords 'usesrc' and 'interface', got '{other}'."));
                return None;
            }
        }
    }
    Some(src)
}

pub fn addr_error(ctx: &mut LineCtx, prefix: &str, text: &str, e: AddrError) {
    match e {
        // HAProxy ends the source/usesrc variant with an empty line.
        AddrError::Invalid(h) if prefix.starts_with("'source") || prefix.starts_with("'usesrc") => {
            ctx.alert(format!("{prefix} : invalid address: '{h}' in '{text}'\n"))
        }
        AddrError::Invalid(h) => ctx.alert(format!("{prefix} : invalid address: '{h}' in '{text}'")),
        AddrError::Port(p) => ctx.alert(format!("{prefix} : invalid port '{p}'")),
        AddrError::MissingPort => ctx.alert(format!("{prefix} : missing port specification in '{text}'")),
        AddrError::Unsupported(what) => ctx.unsupported_arg(prefix.trim_matches('\''), &what),
        AddrError::Hostname(h) if prefix.starts_with("'source") || prefix.starts_with("'usesrc") => {
            ctx.alert(format!("{prefix} : invalid address: '{h}' in '{text}'\n"))
        }
        AddrError::Hostname(h) => ctx.alert(format!(
            "{prefix} : host name '{h}' in '{text}': rhaproxy only accepts IP addresses here (host names are not supported by rhaproxy yet)."
        )),
    }
}

fn p_usesrc_alone(ctx: &mut LineCtx, _p: &mut Proxy, _a: &[String]) {
    ctx.alert("'usesrc' only allowed after a 'source' statement.");
}

fn p_source(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if let Some(s) = parse_source(ctx, a, false) {
        p.source = Some(Located::new(s, ctx.loc.clone()));
    }
}

// ---------------------------------------------------------------------------------------------
// Options

pub struct OptionKw {
    pub name: &'static str,
    pub cap: Cap,
    pub http_only: bool,
    pub status: Status,
    /// Options with arguments have their own parser; plain ones are stored as on/off.
    pub parse: Option<ProxyParse>,
}

const fn opt(name: &'static str, cap: Cap, status: Status) -> OptionKw {
    OptionKw {
        name,
        cap,
        http_only: false,
        status,
        parse: None,
    }
}

const fn opth(name: &'static str, cap: Cap, status: Status) -> OptionKw {
    OptionKw {
        name,
        cap,
        http_only: true,
        status,
        parse: None,
    }
}

const fn optp(name: &'static str, cap: Cap, status: Status, parse: ProxyParse) -> OptionKw {
    OptionKw {
        name,
        cap,
        http_only: false,
        status,
        parse: Some(parse),
    }
}

const FE: Cap = Cap::FE;
const BE: Cap = Cap::BE;
const FB: Cap = Cap::FE_BE;

pub static OPTIONS: &[OptionKw] = &[
    opt("abortonclose", BE, I),
    opth("accept-invalid-http-request", FE, U),
    opth("accept-invalid-http-response", BE, U),
    opt("allbackups", BE, I),
    opth("checkcache", BE, U),
    opt("clitcpka", FE, I),
    opt(
        "contstats",
        FE,
        N("statistics are always updated continuously"),
    ),
    opth(
        "disable-h2-upgrade",
        FE,
        N("rhaproxy speaks HTTP/1 only, there is no upgrade to refuse"),
    ),
    opt("dontlog-normal", FE, I),
    opt("dontlognull", FE, I),
    opth("h1-case-adjust-bogus-client", FE, I),
    opth("h1-case-adjust-bogus-server", BE, I),
    opth("http-buffer-request", FB, I),
    opth("http-ignore-probes", FE, I),
    opth(
        "http-no-delay",
        FB,
        N("rhaproxy never delays HTTP data (TCP_NODELAY is always set)"),
    ),
    opth("http-pretend-keepalive", BE, U),
    opth("http-use-proxy-header", FE, U),
    opth("idle-close-on-response", FE, I),
    opt("independent-streams", FB, U),
    opt("log-health-checks", BE, I),
    opt("log-separate-errors", FE, I),
    opt("logasap", FE, I),
    opt("nolinger", FB, I),
    opt("persist", BE, I),
    opth("prefer-last-server", BE, I),
    opt(
        "socket-stats",
        FE,
        N("rhaproxy keeps no per-listener statistics"),
    ),
    opt(
        "splice-auto",
        FB,
        N("a kernel data-path optimisation; rhaproxy decides splicing itself"),
    ),
    opt(
        "splice-request",
        FB,
        N("a kernel data-path optimisation; rhaproxy decides splicing itself"),
    ),
    opt(
        "splice-response",
        FB,
        N("a kernel data-path optimisation; rhaproxy decides splicing itself"),
    ),
    opt("srvtcpka", BE, I),
    opt("tcp-smart-accept", FE, I),
    opt(
        "tcp-smart-connect",
        BE,
        N(
            "as in HAProxy 2.6.12, which sets no socket option for it on server connections in mode http or tcp (measured with strace)",
        ),
    ),
    opt("transparent", BE, I),
    optp("httpclose", FB, I, o_conn_mode),
    optp("http-server-close", FB, I, o_conn_mode),
    optp("http-keep-alive", FB, I, o_conn_mode),
    optp("redispatch", BE, I, o_redispatch),
    optp("httplog", FE, I, o_httplog),
    optp("httpslog", FE, U, o_unsupported),
    optp("tcplog", FE, I, o_tcplog),
    optp("tcpka", FB, I, o_plain),
    optp("httpchk", BE, I, o_httpchk),
    optp("ssl-hello-chk", BE, I, o_check_kind),
    optp("smtpchk", BE, I, o_check_kind),
    optp("pgsql-check", BE, I, o_check_kind),
    optp("redis-check", BE, I, o_check_kind),
    optp("mysql-check", BE, I, o_check_kind),
    optp("ldap-check", BE, I, o_check_kind),
    optp("spop-check", BE, U, o_unsupported),
    optp("tcp-check", BE, I, o_check_kind),
    optp("external-check", BE, U, o_unsupported),
    optp("forwardfor", FB, I, o_forwardfor),
    optp("originalto", FB, I, o_originalto),
    optp("http-restrict-req-hdr-names", FB, U, o_unsupported),
];

fn o_unsupported(ctx: &mut LineCtx, _p: &mut Proxy, a: &[String]) {
    ctx.unsupported(&format!("option {}", a[1]), "proxy");
}

fn o_plain(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    p.options
        .insert(a[1].clone(), Located::new(!ctx.negated, ctx.loc.clone()));
}

fn o_conn_mode(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let m = match a[1].as_str() {
        "httpclose" => ConnMode::Close,
        "http-server-close" => ConnMode::ServerClose,
        _ => ConnMode::KeepAlive,
    };
    if ctx.negated {
        // `no option X` clears X only if X is the mode in effect.
        if p.conn_mode.as_ref().is_some_and(|c| c.value == m) {
            p.conn_mode = None;
        }
    } else {
        p.conn_mode = Some(Located::new(m, ctx.loc.clone()));
    }
}

fn o_redispatch(ctx: &mut LineCtx, p: &mut Proxy, _a: &[String]) {
    p.redispatch = Some(Located::new(!ctx.negated, ctx.loc.clone()));
}

fn o_httplog(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if ctx.negated {
        p.log_format = None;
        return;
    }
    let choice = match a.get(2).map(String::as_str) {
        None => LogFormatChoice::HttpLog,
        Some("clf") => LogFormatChoice::HttpLogClf,
        Some(x) => {
            ctx.alert(format!(
                "'option httplog' only supports the 'clf' argument, got '{x}'."
            ));
            return;
        }
    };
    p.log_format = Some(Located::new(choice, ctx.loc.clone()));
}

fn o_tcplog(ctx: &mut LineCtx, p: &mut Proxy, _a: &[String]) {
    if ctx.negated {
        p.log_format = None;
        return;
    }
    p.log_format = Some(Located::new(LogFormatChoice::TcpLog, ctx.loc.clone()));
}

/// `option tcp-check` / `option redis-check` (no arguments) / `option smtpchk [HELO|EHLO d]`.
fn o_check_kind(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let kind = match a[1].as_str() {
        "tcp-check" => CheckOption::TcpCheck,
        "redis-check" => CheckOption::RedisCheck,
        "ssl-hello-chk" => CheckOption::SslHelloChk,
        "ldap-check" => CheckOption::LdapCheck,
        "mysql-check" => match (a.get(2).map(String::as_str), a.get(3), a.get(4)) {
            (None, _, _) => CheckOption::MysqlCheck {
                user: None,
                pre41: false,
            },
            (Some("user"), None, _) => {
                ctx.alert("'option mysql-check user' expects <username> as argument.");
                return;
            }
            (Some("user"), Some(u), v) => {
                let pre41 = match v.map(String::as_str) {
                    None | Some("post-41") => false,
                    Some("pre-41") => true,
                    Some(x) => {
                        ctx.alert(format!(
                            "keyword 'user' only supports 'post-41' and 'pre-41' (got '{x}')."
                        ));
                        return;
                    }
                };
                if let Some(x) = a.get(5) {
                    ctx.alert(format!(
                        "'option mysql-check' cannot handle unexpected argument '{x}'."
                    ));
                    return;
                }
                CheckOption::MysqlCheck {
                    user: Some(u.clone()),
                    pre41,
                }
            }
            (Some(x), _, _) => {
                ctx.alert(format!(
                    "'option mysql-check' only supports optional values: 'user' (got '{x}')."
                ));
                return;
            }
        },
        "pgsql-check" => match (a.get(2).map(String::as_str), a.get(3)) {
            (Some("user"), Some(u)) if !u.is_empty() => CheckOption::PgsqlCheck(u.clone()),
            (Some(x), _) if x != "user" => {
                ctx.alert("'option pgsql-check' only supports optional values: 'user'.");
                return;
            }
            _ => {
                ctx.alert("'option pgsql-check' expects 'user <username>' as argument.");
                return;
            }
        },
        _ => {
            // `option smtpchk [HELO|EHLO <domain>]`; anything else greets with HELO localhost.
            let cmd = match (a.get(2).map(String::as_str), a.get(3)) {
                (Some(v @ ("HELO" | "EHLO")), Some(d)) if !d.is_empty() => format!("{v} {d}"),
                _ => "HELO localhost".to_string(),
            };
            CheckOption::SmtpChk(cmd)
        }
    };
    let negated_match =
        |c: &CheckOption| std::mem::discriminant(c) == std::mem::discriminant(&kind);
    if ctx.negated {
        if p.check_option
            .as_ref()
            .is_some_and(|c| negated_match(&c.value))
        {
            p.check_option = None;
        }
        return;
    }
    let takes_args = matches!(
        kind,
        CheckOption::SmtpChk(_) | CheckOption::PgsqlCheck(_) | CheckOption::MysqlCheck { .. }
    );
    if let (false, Some(x)) = (takes_args, a.get(2)) {
        ctx.alert(format!(
            "'option {}' cannot handle unexpected argument '{x}'.",
            a[1]
        ));
        return;
    }
    p.httpchk = None;
    p.check_option = Some(Located::new(kind, ctx.loc.clone()));
}

fn o_httpchk(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if ctx.negated {
        p.httpchk = None;
        if p.check_option
            .as_ref()
            .is_some_and(|c| c.value == CheckOption::HttpChk)
        {
            p.check_option = None;
        }
        return;
    }
    if let Some(x) = a.get(5) {
        ctx.alert(format!(
            "'option httpchk' cannot handle unexpected argument '{x}'."
        ));
        return;
    }
    let (method, uri, version) = match a.len() {
        2 => ("OPTIONS", "/", "HTTP/1.0"),
        3 => ("OPTIONS", a[2].as_str(), "HTTP/1.0"),
        4 => (a[2].as_str(), a[3].as_str(), "HTTP/1.0"),
        _ => (a[2].as_str(), a[3].as_str(), a[4].as_str()),
    };
    // HAProxy lets headers follow the version: `HTTP/1.1\r\nHost:\ www`.
    if version.contains("\r\n") {
        ctx.warning_tight("'option httpchk' : hiding headers or body at the end of the version string is deprecated. Please, consider to use 'http-check send' directive instead.");
    }
    let mut parts = version.split("\r\n");
    let version = parts.next().unwrap_or("").to_string();
    let headers = parts
        .filter(|h| !h.is_empty())
        .filter_map(|h| h.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    p.httpchk = Some(Located::new(
        HttpChk {
            method: method.into(),
            uri: uri.into(),
            version,
            headers,
        },
        ctx.loc.clone(),
    ));
    p.check_option = Some(Located::new(CheckOption::HttpChk, ctx.loc.clone()));
    // The option starts this section's rule set with its request (inherited rules go).
    if !p.check_rules_own
        || p.check_rules
            .as_ref()
            .is_some_and(|r| r.kind == RulesKind::Tcp)
    {
        p.check_rules = None;
    }
    p.check_rules_own = true;
    p.httpchk_send = true;
}

fn o_forwardfor(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if ctx.negated {
        p.forwardfor = None;
        return;
    }
    let mut ff = Forwardfor {
        except: None,
        header: "X-Forwarded-For".into(),
        if_none: false,
    };
    let mut i = 2;
    while i < a.len() {
        match a[i].as_str() {
            "except" if i + 1 < a.len() => {
                ff.except = Some(a[i + 1].clone());
                i += 2;
            }
            "header" if i + 1 < a.len() => {
                ff.header = a[i + 1].clone();
                i += 2;
            }
            "if-none" => {
                ff.if_none = true;
                i += 1;
            }
            x => {
                ctx.alert(format!("'option forwardfor' only supports optional values: 'header', 'if-none' and 'except'. Got '{x}'."));
                return;
            }
        }
    }
    p.forwardfor = Some(Located::new(ff, ctx.loc.clone()));
}

/// `option originalto [except NET] [header NAME]`, HAProxy 2.6's messages (`except` takes an
/// IPv4 network: the header is only added for IPv4 destinations).
fn o_originalto(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if ctx.negated {
        p.originalto = None;
        return;
    }
    let mut ot = Forwardfor {
        except: None,
        header: "X-Original-To".into(),
        if_none: false,
    };
    let mut i = 2;
    while i < a.len() {
        match a[i].as_str() {
            "except" => {
                let net = a.get(i + 1).map(String::as_str).unwrap_or("");
                if !ipv4_net(net) {
                    ctx.alert("'option originalto except' expects <address>[/mask] as argument.");
                    return;
                }
                ot.except = Some(net.to_string());
                i += 2;
            }
            "header" => {
                let Some(h) = a.get(i + 1).filter(|h| !h.is_empty()) else {
                    ctx.alert("'option originalto header' expects <header_name> as argument.");
                    return;
                };
                ot.header = h.clone();
                i += 2;
            }
            "" => i += 1,
            _ => {
                ctx.alert(
                    "'option originalto' only supports optional values: 'except' and 'header'.",
                );
                return;
            }
        }
    }
    p.originalto = Some(Located::new(ot, ctx.loc.clone()));
}

/// `A.B.C.D`, `A.B.C.D/LEN` (LEN <= 32) or `A.B.C.D/M.M.M.M`.
fn ipv4_net(s: &str) -> bool {
    let (a, m) = s.split_once('/').unwrap_or((s, "32"));
    a.parse::<std::net::Ipv4Addr>().is_ok()
        && (m.parse::<u8>().is_ok_and(|l| l <= 32) || m.parse::<std::net::Ipv4Addr>().is_ok())
}

fn p_option(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let Some(name) = a.get(1) else {
        ctx.alert("'option' expects an option name.");
        return;
    };
    let removed = match name.as_str() {
        "forceclose" => Some(
            "option 'forceclose' is not supported any more since HAProxy 2.0, please just remove it, or use 'option httpclose' if absolutely needed.",
        ),
        "http-tunnel" => Some(
            "option 'http-tunnel' is not supported any more since HAProxy 2.1, please just remove it, it shouldn't be needed.",
        ),
        "http_proxy" => Some(
            "option 'http_proxy' is no longer supported since HAProxy 2.5, please use 'http-request set-dst' instead.",
        ),
        _ => None,
    };
    if let Some(m) = removed {
        ctx.alert_tight(m);
        return;
    }
    let Some(o) = OPTIONS.iter().find(|o| o.name == name) else {
        let dym = super::did_you_mean(name, OPTIONS.iter().map(|o| o.name));
        if dym.is_empty() {
            ctx.alert(format!("unknown option '{name}'."));
        } else {
            ctx.alert(format!("unknown option '{name}'{dym}"));
        }
        return;
    };
    // The health-check protocol options cannot be negated or reset (HAProxy 2.6).
    if (ctx.negated || ctx.defaulted)
        && matches!(
            o.name,
            "tcp-check"
                | "httpchk"
                | "redis-check"
                | "smtpchk"
                | "ssl-hello-chk"
                | "mysql-check"
                | "pgsql-check"
                | "ldap-check"
                | "spop-check"
                | "external-check"
        )
    {
        ctx.alert_tight(format!(
            "negation/default is not supported for option '{}'.",
            o.name
        ));
        return;
    }
    // Defaults sections accept every option; proxies without the capability ignore it.
    if p.kind != ProxyKind::Defaults && !p.cap().intersects(o.cap) {
        ctx.warning(format!(
            "'{}' ignored because {} '{}' has no {} capability.",
            o.name,
            p.kind.keyword(),
            p.name,
            if o.cap == Cap::FE {
                "frontend"
            } else {
                "backend"
            }
        ));
        return;
    }
    if matches!(o.name, "httplog" | "tcplog") && p.kind == ProxyKind::Backend {
        ctx.warning(format!(
            "backend '{}' : 'option {}' directive is ignored in backends.",
            p.name, o.name
        ));
        return;
    }
    match o.status {
        Status::Unsupported if !ctx.negated => {
            ctx.unsupported(&format!("option {}", o.name), p.kind.keyword());
            return;
        }
        _ => {}
    }
    match o.parse {
        Some(f) => f(ctx, p, a),
        None => {
            if let Some(x) = a.get(2) {
                ctx.alert(format!(
                    "'option {}' cannot handle unexpected argument '{x}'.",
                    o.name
                ));
                return;
            }
            o_plain(ctx, p, a)
        }
    }
}

pub fn doc_rows() -> Vec<DocRow> {
    let mut rows: Vec<DocRow> = PROXY_KEYWORDS
        .iter()
        .filter(|k| k.name != "option")
        .map(|k| DocRow {
            section: "proxies",
            keyword: k.name.to_string(),
            where_: where_letters(k.allowed),
            status: k.status,
        })
        .collect();
    for t in [
        "client",
        "client-fin",
        "server",
        "server-fin",
        "connect",
        "queue",
        "tunnel",
        "tarpit",
        "check",
        "http-request",
        "http-keep-alive",
    ] {
        rows.push(DocRow {
            section: "proxies",
            keyword: format!("timeout {t}"),
            where_: match timeout_cap(t) {
                Some(Cap::FE) => "defaults, frontend, listen".into(),
                Some(Cap::BE) => "defaults, backend, listen".into(),
                _ => "defaults, frontend, backend, listen".into(),
            },
            // `timeout tarpit` holds a tarpitted request (runtime_acl), `timeout check` bounds
            // a check after its connect (runtime_checks), both measured against HAProxy.
            status: Status::Implemented,
        });
    }
    for o in OPTIONS {
        rows.push(DocRow {
            section: "proxies",
            keyword: format!("option {}", o.name),
            where_: format!(
                "defaults, {}{}",
                match o.cap {
                    Cap::FE => "frontend, listen",
                    Cap::BE => "backend, listen",
                    _ => "frontend, backend, listen",
                },
                if o.http_only { " (HTTP)" } else { "" }
            ),
            status: o.status,
        });
    }
    rows
}

fn where_letters(s: &str) -> String {
    let mut v = Vec::new();
    if s.contains('D') {
        v.push("defaults");
    } else if s.contains('d') {
        v.push("named defaults");
    }
    if s.contains('F') {
        v.push("frontend");
    }
    if s.contains('B') {
        v.push("backend");
    }
    if s.contains('L') {
        v.push("listen");
    }
    v.join(", ")
}
