//! `tcp-check`, `http-check` and `http-error` lines (HAProxy 2.6 doc §4.2), parsed into the
//! rules of [`crate::config::ir::CheckRules`] and [`crate::config::ir::HttpErrorReply`].
//!
//! The messages are the ones `haproxy -c` 2.6.12 prints (measured). Forms rhaproxy does not run
//! (log-format variants, sample expressions, variables, SSL/ALPN/SOCKS4 connects) are refused
//! with "not supported by rhaproxy", never ignored.

use super::LineCtx;
use crate::config::ir::*;
use crate::config::values::atoi;

const TCP_EXPECT_ONLY: &str = "'only supports min-recv, '[!]binary', '[!]string', '[!]rstring', '[!]string-lf''[!]rbinary', '[!]binary-lf' or comment";
const HTTP_EXPECT_ONLY: &str = "'only supports min-recv, [!]string', '[!]rstring', '[!]string-lf', '[!]status', '[!]rstatus', [!]hdr, [!]fhdr or comment";

fn is_var_action(w: &str) -> bool {
    w.starts_with("set-var(") || w.starts_with("set-var-fmt(") || w.starts_with("unset-var(")
}

/// Appends a rule, starting the list over when it holds the other kind or inherited rules.
fn push_rule(p: &mut Proxy, kind: RulesKind, rule: Located<CheckRule>) {
    if !p.check_rules_own {
        // The inherited rule set (and the inherited `option httpchk` request) is replaced.
        p.check_rules = None;
        p.httpchk_send = false;
        p.check_rules_own = true;
    }
    let fresh = match &p.check_rules {
        Some(r) => r.kind != kind || r.inherited,
        None => true,
    };
    if fresh {
        if kind == RulesKind::Tcp {
            p.httpchk_send = false;
        }
        p.check_rules = Some(CheckRules {
            kind,
            rules: Vec::new(),
            inherited: false,
        });
    }
    p.check_rules.as_mut().unwrap().rules.push(rule);
}

/// The rules of this kind the proxy would append to (empty when a new list would start).
fn current_rules(p: &Proxy, kind: RulesKind) -> &[Located<CheckRule>] {
    match &p.check_rules {
        Some(r) if r.kind == kind && !r.inherited && p.check_rules_own => &r.rules,
        _ => &[],
    }
}

pub fn p_tcp_check(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    p_check(ctx, p, a, RulesKind::Tcp)
}

pub fn p_http_check(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    p_check(ctx, p, a, RulesKind::Http)
}

fn p_check(ctx: &mut LineCtx, p: &mut Proxy, a: &[String], kind: RulesKind) {
    let kw = if kind == RulesKind::Tcp {
        "tcp-check"
    } else {
        "http-check"
    };
    let action = a.get(1).map(String::as_str).unwrap_or("");
    let rule = match action {
        "comment" => match a.get(2).filter(|s| !s.is_empty()) {
            Some(c) => CheckRule::Comment(c.clone()),
            None => {
                ctx.alert(format!("'{kw} comment' : expects a string as argument."));
                return;
            }
        },
        "connect" => {
            let Some(c) = parse_connect(ctx, kw, &a[2..]) else {
                return;
            };
            // A connect anywhere needs one first (after comments and variables only).
            let rules = current_rules(p, kind);
            if let Some(first) = rules
                .iter()
                .find(|r| !matches!(r.value, CheckRule::Comment(_)))
            {
                if !matches!(first.value, CheckRule::Connect(_)) {
                    ctx.alert(format!("'{kw} connect' : first step MUST also be a 'connect', optionally preceded by a 'set-var', an 'unset-var' or a 'comment', when there is a 'connect' step in the tcp-check ruleset."));
                    return;
                }
            }
            CheckRule::Connect(c)
        }
        "send" | "send-binary" if kind == RulesKind::Tcp => {
            let Some(r) = parse_tcp_send(ctx, action, &a[2..]) else {
                return;
            };
            r
        }
        "send-lf" | "send-binary-lf" if kind == RulesKind::Tcp => {
            // Log-format strings are supported when they are literal (no `%` tag).
            let Some(data) = a.get(2).filter(|s| !s.is_empty()) else {
                ctx.alert(format!(
                    "'tcp-check {action}' : 'string' expects a {action} as argument."
                ));
                return;
            };
            let bytes = if data.contains('%') {
                None
            } else if action == "send-lf" {
                Some(data.as_bytes().to_vec())
            } else {
                parse_hex(data).ok()
            };
            let Some(bytes) = bytes else {
                ctx.unsupported_arg(
                    &format!("tcp-check {action}"),
                    &format!("{data} (log-format)"),
                );
                return;
            };
            let mut rest = vec![data.clone()];
            rest.extend_from_slice(a.get(3..).unwrap_or(&[]));
            let Some(CheckRule::Send { comment, .. }) = parse_tcp_send(ctx, "send", &rest) else {
                return;
            };
            CheckRule::Send {
                data: bytes,
                binary: action == "send-binary-lf",
                comment,
            }
        }
        "send" if kind == RulesKind::Http => {
            let Some(s) = parse_http_send(ctx, &a[2..]) else {
                return;
            };
            let rules = current_rules(p, kind);
            // A second request needs its own connection.
            let last_send = rules
                .iter()
                .rposition(|r| matches!(r.value, CheckRule::HttpSend(_)));
            if let Some(ls) = last_send {
                if !rules[ls..]
                    .iter()
                    .any(|r| matches!(r.value, CheckRule::Connect(_)))
                {
                    ctx.alert(format!("'http-check send' : unable to add http-check send rule at step {} (missing connect rule)..", rules.len() + 1));
                    return;
                }
            }
            CheckRule::HttpSend(s)
        }
        "expect" => {
            let Some(e) = parse_expect(ctx, kind, &a[2..]) else {
                return;
            };
            CheckRule::Expect(e)
        }
        "disable-on-404" | "send-state" if kind == RulesKind::Http => {
            if let Some(x) = a.get(2) {
                ctx.alert(format!(
                    "'http-check' cannot handle unexpected argument '{x}'."
                ));
            } else if action == "disable-on-404" {
                p.http_check_disable_on_404 = true;
            } else {
                p.http_check_send_state = true;
            }
            return;
        }
        w if is_var_action(w) => {
            ctx.unsupported_arg(kw, w);
            return;
        }
        other => {
            let extra = if kind == RulesKind::Http {
                "'disable-on-404', 'send-state', "
            } else {
                ""
            };
            let send = if kind == RulesKind::Tcp {
                "'send', 'send-binary'"
            } else {
                "'send'"
            };
            ctx.alert(format!("'{kw}' only supports {extra}'comment', 'connect', {send}, 'expect', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)'. but got '{other}'"));
            return;
        }
    };
    push_rule(p, kind, Located::new(rule, ctx.loc.clone()));
}

fn parse_connect(ctx: &mut LineCtx, kw: &str, a: &[String]) -> Option<ConnectRule> {
    let who = format!("'{kw} connect'");
    let mut c = ConnectRule::default();
    let mut i = 0;
    while i < a.len() {
        let w = a[i].as_str();
        let arg = a.get(i + 1).map(String::as_str).unwrap_or("");
        match w {
            "" => {}
            "default" | "linger" | "send-proxy" => {
                match w {
                    "linger" => c.linger = true,
                    "send-proxy" => c.send_proxy = true,
                    _ => c.default = true,
                }
                i += 1;
                continue;
            }
            "comment" => {
                if arg.is_empty() {
                    ctx.alert(format!("{who} : 'comment' expects a string as argument."));
                    return None;
                }
                c.comment = Some(arg.to_string());
            }
            "port" => {
                if arg.is_empty() {
                    ctx.alert(format!(
                        "{who} : 'port' expects a port number or a sample expression as argument.."
                    ));
                    return None;
                }
                if arg.bytes().all(|b| b.is_ascii_digit()) {
                    match arg.parse::<u32>() {
                        Ok(p) if (1..=65535).contains(&p) => c.port = Some(p as u16),
                        _ => {
                            ctx.alert(format!("{who} : expects a valid TCP port (from range 1 to 65535) or a sample expression, got {}..", arg.parse::<i64>().unwrap_or(-1)));
                            return None;
                        }
                    }
                } else if arg.contains('(') {
                    ctx.unsupported_arg(&format!("{kw} connect port"), arg);
                    return None;
                } else {
                    ctx.alert(format!("{who} : error detected while parsing port expression : unknown fetch method '{arg}'."));
                    return None;
                }
            }
            "addr" => {
                if arg.is_empty() {
                    ctx.alert(format!("{who} : 'addr' expects <ipv4|ipv6> as argument.."));
                    return None;
                }
                match arg.parse::<std::net::IpAddr>() {
                    Ok(ip) => c.addr = Some(ip),
                    Err(_) => {
                        ctx.alert(format!(
                            "{who} : 'addr' : invalid address: '{arg}' in '{arg}'\n.."
                        ));
                        return None;
                    }
                }
            }
            "ssl" | "via-socks4" => {
                ctx.unsupported_arg(&format!("{kw} connect"), w);
                return None;
            }
            "sni" | "alpn" | "proto" => {
                ctx.unsupported_arg(&format!("{kw} connect"), w);
                return None;
            }
            other => {
                ctx.alert(format!("{who} : expects 'comment', 'port', 'addr', 'send-proxy', 'ssl', 'sni', 'alpn' or 'via-socks4', 'linger', 'default' but got '{other}' as argument.."));
                return None;
            }
        }
        i += 2;
    }
    Some(c)
}

/// Decodes a hex string the way HAProxy's parse_binary does, with its messages.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("invalid binary string (an even number of hex digit is expected)".into());
    }
    let mut out = Vec::with_capacity(s.len() / 2);
    let b = s.as_bytes();
    for pair in b.chunks(2) {
        let mut v = 0u8;
        for &c in pair {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => {
                    return Err(format!(
                        "invalid binary string (an hex digit is expected (found '{}'))",
                        c as char
                    ));
                }
            };
            v = v * 16 + d;
        }
        out.push(v);
    }
    Ok(out)
}

fn parse_tcp_send(ctx: &mut LineCtx, action: &str, a: &[String]) -> Option<CheckRule> {
    let who = format!("'tcp-check {action}'");
    let binary = action == "send-binary";
    let Some(data) = a.first().filter(|s| !s.is_empty()) else {
        let noun = if binary { "binary string" } else { "string" };
        ctx.alert(format!("{who} : '{noun}' expects a {action} as argument."));
        return None;
    };
    let mut comment = None;
    let mut i = 1;
    while i < a.len() {
        match a[i].as_str() {
            "comment" => match a.get(i + 1).filter(|s| !s.is_empty()) {
                Some(c) => comment = Some(c.clone()),
                None => {
                    ctx.alert(format!("{who} : 'comment' expects a string as argument.."));
                    return None;
                }
            },
            other => {
                ctx.alert(format!(
                    "{who} : expects 'comment' but got '{other}' as argument.."
                ));
                return None;
            }
        }
        i += 2;
    }
    let bytes = if binary {
        match parse_hex(data) {
            Ok(b) => b,
            Err(e) => {
                ctx.alert(format!("{who} : '{data}' {e}.\n."));
                return None;
            }
        }
    } else {
        data.as_bytes().to_vec()
    };
    Some(CheckRule::Send {
        data: bytes,
        binary,
        comment,
    })
}

fn parse_http_send(ctx: &mut LineCtx, a: &[String]) -> Option<HttpSendRule> {
    let who = "'http-check send'";
    let mut s = HttpSendRule::default();
    let mut i = 0;
    while i < a.len() {
        let w = a[i].as_str();
        let arg = a.get(i + 1).filter(|s| !s.is_empty()).cloned();
        match w {
            "meth" | "uri" | "ver" | "body" | "comment" => {
                let Some(v) = arg else {
                    ctx.alert(format!("{who} : '{w}' expects a string as argument.."));
                    return None;
                };
                match w {
                    "meth" => s.meth = Some(v),
                    "uri" => s.uri = Some(v),
                    "ver" => s.ver = Some(v),
                    "body" => s.body = Some(v),
                    _ => s.comment = Some(v),
                }
                i += 2;
            }
            "hdr" => {
                let (Some(n), Some(v)) = (
                    a.get(i + 1).filter(|s| !s.is_empty()),
                    a.get(i + 2).filter(|s| !s.is_empty()),
                ) else {
                    ctx.alert(format!(
                        "{who} : 'hdr' expects <name> and <value> as arguments."
                    ));
                    return None;
                };
                s.hdrs.push((n.clone(), v.clone()));
                i += 3;
            }
            "uri-lf" | "body-lf" => {
                let Some(v) = arg else {
                    ctx.alert(format!("{who} : '{w}' expects a string as argument.."));
                    return None;
                };
                if v.contains('%') {
                    ctx.unsupported_arg(
                        &format!("http-check send {w}"),
                        &format!("{v} (log-format)"),
                    );
                    return None;
                }
                if w == "uri-lf" {
                    s.uri = Some(v);
                } else {
                    s.body = Some(v);
                }
                i += 2;
            }
            other => {
                ctx.alert(format!("{who} : expects 'comment', 'meth', 'uri', 'uri-lf', 'ver', 'hdr', 'body' or 'body-lf' but got '{other}' as argument.."));
                return None;
            }
        }
    }
    Some(s)
}

fn parse_status(w: &str, which: &str) -> Result<CheckStatus, String> {
    let st = match w {
        "L4OK" => CheckStatus::L4Ok,
        "L6OK" => CheckStatus::L6Ok,
        "L7OK" => CheckStatus::L7Ok,
        "L7OKC" => CheckStatus::L7OkC,
        "L7RSP" => CheckStatus::L7Rsp,
        "L7STS" => CheckStatus::L7Sts,
        "L6RSP" => CheckStatus::L6Rsp,
        "L4CON" => CheckStatus::L4Con,
        "L4TOUT" => CheckStatus::L4Tout,
        "L6TOUT" => CheckStatus::L6Tout,
        "L7TOUT" => CheckStatus::L7Tout,
        _ => CheckStatus::SockErr,
    };
    let ok = match which {
        "ok-status" => matches!(
            st,
            CheckStatus::L4Ok | CheckStatus::L6Ok | CheckStatus::L7Ok | CheckStatus::L7OkC
        ),
        "error-status" => matches!(
            st,
            CheckStatus::L7Rsp | CheckStatus::L7Sts | CheckStatus::L6Rsp | CheckStatus::L4Con
        ),
        _ => matches!(
            st,
            CheckStatus::L4Tout | CheckStatus::L6Tout | CheckStatus::L7Tout
        ),
    };
    if ok {
        return Ok(st);
    }
    let list = match which {
        "ok-status" => "'L4OK', 'L6OK', 'L7OK' or 'L7OKC'",
        "error-status" => "'L4CON', 'L6RSP', 'L7RSP' or 'L7STS'",
        _ => "'L4TOUT', 'L6TOUT' or 'L7TOUT'",
    };
    Err(format!(
        "'{which}' only supports {list} status (got '{w}').."
    ))
}

/// `200`, `200-299`, `200,301-302`.
fn parse_status_codes(s: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut v = Vec::new();
    for part in s.split(',') {
        let num = |t: &str| -> Option<u16> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                t.parse::<u32>().ok().map(|n| n.min(65535) as u16)
            }
        };
        match part.split_once('-') {
            Some((lo, hi)) => match (num(lo), num(hi)) {
                (Some(l), Some(h)) => v.push((l, h)),
                _ => return Err(format!("invalid range of status codes '{part}'.")),
            },
            None => match num(part) {
                Some(n) => v.push((n, n)),
                None => {
                    let bad = part.chars().find(|c| !c.is_ascii_digit()).unwrap_or(',');
                    return Err(format!(
                        "invalid character '{bad}' in the list of status codes."
                    ));
                }
            },
        }
    }
    Ok(v)
}

fn check_regex(src: &str) -> Result<(), String> {
    regex::bytes::Regex::new(src).map(|_| ()).map_err(|e| {
        format!(
            "regex '{src}' is invalid (error={}).",
            first_line(&e.to_string())
        )
    })
}

fn first_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
        .unwrap_or_else(|| s.lines().next().unwrap_or("").to_string())
}

fn parse_expect(ctx: &mut LineCtx, kind: RulesKind, a: &[String]) -> Option<ExpectRule> {
    let (kw, only) = match kind {
        RulesKind::Tcp => ("tcp-check", TCP_EXPECT_ONLY),
        RulesKind::Http => ("http-check", HTTP_EXPECT_ONLY),
    };
    let who = format!("'{kw} expect'");
    if a.first().is_none_or(|s| s.is_empty()) {
        ctx.alert(format!(
            "{who} : expects at least a matching pattern as arguments."
        ));
        return None;
    }
    let mut e = ExpectRule {
        inverse: false,
        what: ExpectMatch::Status(Vec::new()),
        min_recv: -1,
        ok_status: None,
        error_status: None,
        tout_status: None,
        on_success: None,
        on_error: None,
        comment: None,
    };
    let mut what: Option<ExpectMatch> = None;
    let mut i = 0;
    while i < a.len() {
        let mut w = a[i].as_str();
        let mut after_bang = false;
        if w == "!" {
            e.inverse = true;
            i += 1;
            w = a.get(i).map(String::as_str).unwrap_or("");
            after_bang = true;
        }
        let arg = a.get(i + 1).map(String::as_str).unwrap_or("");
        let is_match = match kind {
            RulesKind::Tcp => matches!(
                w,
                "string" | "rstring" | "binary" | "rbinary" | "string-lf" | "binary-lf"
            ),
            RulesKind::Http => matches!(
                w,
                "string" | "rstring" | "string-lf" | "status" | "rstatus" | "hdr" | "fhdr"
            ),
        };
        if is_match {
            if what.is_some() {
                ctx.alert(format!("{who} : {only} but got '{w}' as argument.."));
                return None;
            }
            if w == "hdr" || w == "fhdr" {
                let (m, used) = parse_hdr_expect(ctx, &who, w, &a[i + 1..])?;
                what = Some(m);
                i += 1 + used;
                continue;
            }
            if arg.is_empty() {
                ctx.alert(format!("{who} : '{w}' expects a <pattern> as argument."));
                return None;
            }
            let m = match w {
                "string" => ExpectMatch::String(arg.as_bytes().to_vec()),
                "binary" => match parse_hex(arg) {
                    Ok(b) => ExpectMatch::Binary(b),
                    Err(err) => {
                        ctx.alert(format!("{who} : {err}."));
                        return None;
                    }
                },
                "rstring" | "rbinary" | "rstatus" => {
                    if let Err(err) = check_regex(arg) {
                        ctx.alert(format!("{who} : {err}"));
                        return None;
                    }
                    match w {
                        "rstring" => ExpectMatch::Rstring(arg.to_string()),
                        "rbinary" => ExpectMatch::Rbinary(arg.to_string()),
                        _ => ExpectMatch::Rstatus(arg.to_string()),
                    }
                }
                "status" => match parse_status_codes(arg) {
                    Ok(v) => ExpectMatch::Status(v),
                    Err(err) => {
                        ctx.alert(format!("{who} : {err}"));
                        return None;
                    }
                },
                _ => {
                    // string-lf / binary-lf: literal formats only.
                    let lit = if arg.contains('%') {
                        None
                    } else if w == "string-lf" {
                        Some(ExpectMatch::StringLf(arg.as_bytes().to_vec()))
                    } else {
                        parse_hex(arg).ok().map(ExpectMatch::BinaryLf)
                    };
                    match lit {
                        Some(m) => m,
                        None => {
                            ctx.unsupported_arg(
                                &format!("{kw} expect {w}"),
                                &format!("{arg} (log-format)"),
                            );
                            return None;
                        }
                    }
                }
            };
            what = Some(m);
            i += 2;
            continue;
        }
        if after_bang {
            ctx.alert(format!("{who} : {only} but got '{w}' as argument.."));
            return None;
        }
        match w {
            "min-recv" => {
                if arg.is_empty() {
                    ctx.alert(format!("{who} : 'min-recv' expects a integer as argument."));
                    return None;
                }
                e.min_recv = atoi(arg);
            }
            "comment" | "on-success" | "on-error" => {
                if arg.is_empty() {
                    ctx.alert(format!("{who} : '{w}' expects a string as argument."));
                    return None;
                }
                if w != "comment" && arg.contains('%') {
                    ctx.unsupported_arg(
                        &format!("{kw} expect {w}"),
                        &format!("{arg} (log-format)"),
                    );
                    return None;
                }
                let v = Some(arg.to_string());
                match w {
                    "comment" => e.comment = v,
                    "on-success" => e.on_success = v,
                    _ => e.on_error = v,
                }
            }
            "ok-status" | "error-status" | "tout-status" => match parse_status(arg, w) {
                Ok(st) => match w {
                    "ok-status" => e.ok_status = Some(st),
                    "error-status" => e.error_status = Some(st),
                    _ => e.tout_status = Some(st),
                },
                Err(err) => {
                    ctx.alert(format!("{who} : {err}"));
                    return None;
                }
            },
            "status-code" => {
                ctx.unsupported_arg(&format!("{kw} expect"), "status-code");
                return None;
            }
            other => {
                ctx.alert(format!("{who} : {only} but got '{other}' as argument.."));
                return None;
            }
        }
        i += 2;
    }
    match what {
        Some(m) => {
            e.what = m;
            Some(e)
        }
        None => {
            ctx.alert(format!(
                "{who} : expects at least a matching pattern as arguments."
            ));
            None
        }
    }
}

/// `hdr name [-m M] NAME [value [-m M] VALUE]`: the match and the words used after `hdr`.
fn parse_hdr_expect(
    ctx: &mut LineCtx,
    who: &str,
    kw: &str,
    a: &[String],
) -> Option<(ExpectMatch, usize)> {
    let mut i = 0;
    let pat = |i: &mut usize, ctx: &mut LineCtx| -> Option<Option<HdrPattern>> {
        let mut method = HdrMatchMethod::Str;
        if a.get(*i).map(String::as_str) == Some("-m") {
            method = match a.get(*i + 1).map(String::as_str) {
                Some("str") => HdrMatchMethod::Str,
                Some("beg") => HdrMatchMethod::Beg,
                Some("end") => HdrMatchMethod::End,
                Some("sub") => HdrMatchMethod::Sub,
                Some("reg") => HdrMatchMethod::Reg,
                other => {
                    ctx.alert(format!(
                        "{who} : '{kw}' : unsupported match method '{}'.",
                        other.unwrap_or("")
                    ));
                    return None;
                }
            };
            *i += 2;
        }
        match a.get(*i).filter(|s| !s.is_empty()) {
            Some(p) => {
                if method == HdrMatchMethod::Reg {
                    if let Err(err) = check_regex(p) {
                        ctx.alert(format!("{who} : {err}"));
                        return None;
                    }
                }
                *i += 1;
                Some(Some(HdrPattern {
                    method,
                    pattern: p.clone(),
                }))
            }
            None => Some(None),
        }
    };
    if a.first().map(String::as_str) != Some("name") {
        ctx.alert(format!(
            "{who} : '{kw}' expects at the name keyword as first argument followed by a pattern."
        ));
        return None;
    }
    i += 1;
    let Some(name) = pat(&mut i, ctx)? else {
        ctx.alert(format!(
            "{who} : '{kw}' expects at the name keyword as first argument followed by a pattern."
        ));
        return None;
    };
    let mut value = None;
    if a.get(i).map(String::as_str) == Some("value") {
        i += 1;
        match pat(&mut i, ctx)? {
            Some(v) => value = Some(v),
            None => {
                ctx.alert(format!(
                    "{who} : '{kw}' expect a pattern with the value keyword."
                ));
                return None;
            }
        }
    }
    Some((
        ExpectMatch::Hdr {
            name,
            value,
            full: kw == "fhdr",
        },
        i,
    ))
}

// ---------------------------------------------------------------------------------------------
// http-error

/// `http-error status N [content-type T] [default-errorfiles | errorfile F | file F | lf-file F
/// | string S | lf-string S] [hdr N V]*` (log-format forms only without `%`).
pub fn p_http_error(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let who = "http-error";
    if a.get(1).map(String::as_str) != Some("status") {
        ctx.alert(format!(
            "{who} : expects at least a <status> as arguments.\n"
        ));
        return;
    }
    let mut status: u16 = 200;
    let mut ctype: Option<String> = None;
    let mut body: Option<Vec<u8>> = None;
    let mut errorfile: Option<Vec<u8>> = None;
    let mut default = false;
    // The payload keyword given (`string`, `file`, `errorfile`, ...), for duplicates.
    let mut payload_kw: Option<String> = None;
    let mut hdrs: Vec<(String, String)> = Vec::new();
    let mut i = 1;
    while i < a.len() {
        let w = a[i].as_str();
        let arg = a.get(i + 1).filter(|s| !s.is_empty());
        match w {
            "status" => {
                let Some(v) = arg else {
                    ctx.alert(format!(
                        "{who} : 'status' expects <status_code> as argument"
                    ));
                    return;
                };
                let code = atoi(v);
                if !(200..=599).contains(&code) {
                    ctx.alert(format!("{who} : Unexpected status code '{code}'"));
                    return;
                }
                status = code as u16;
                i += 2;
            }
            "content-type" => {
                let Some(v) = arg else {
                    ctx.alert(format!(
                        "{who} : 'content-type' expects <ctype> as argument"
                    ));
                    return;
                };
                ctype = Some(v.clone());
                i += 2;
            }
            "default-errorfiles" | "errorfile" | "errorfiles" | "file" | "lf-file" | "string"
            | "lf-string" => {
                if let Some(prev) = &payload_kw {
                    ctx.alert(format!(
                        "{who} : unexpected '{w}' argument, '{prev}' already defined"
                    ));
                    return;
                }
                payload_kw = Some(w.to_string());
                if w == "default-errorfiles" {
                    default = true;
                    i += 1;
                    continue;
                }
                let Some(v) = arg else {
                    let what = match w {
                        "string" | "lf-string" => "<str>",
                        "errorfiles" => "<name>",
                        _ => "<file>",
                    };
                    ctx.alert(format!("{who} : '{w}' expects {what} as argument"));
                    return;
                };
                match w {
                    "errorfiles" => {
                        ctx.unsupported_arg("http-error", "errorfiles");
                        return;
                    }
                    "errorfile" => match crate::http1::load_errorfile(v) {
                        Ok(c) => errorfile = Some(c),
                        Err(e) => {
                            ctx.alert(format!("{who} : {e}"));
                            return;
                        }
                    },
                    "string" | "lf-string" => body = Some(v.as_bytes().to_vec()),
                    _ => match std::fs::read(v) {
                        Ok(c) => body = Some(c),
                        Err(_) => {
                            ctx.alert(format!("{who} : error opening file '{v}'"));
                            return;
                        }
                    },
                }
                if w.starts_with("lf-") && body.as_ref().is_some_and(|b| b.contains(&b'%')) {
                    ctx.unsupported_arg("http-error", &format!("{w} with log-format tags"));
                    return;
                }
                i += 2;
            }
            "hdr" => {
                let (Some(n), Some(v)) = (
                    a.get(i + 1).filter(|s| !s.is_empty()),
                    a.get(i + 2).filter(|s| !s.is_empty()),
                ) else {
                    ctx.alert(format!(
                        "{who} : 'hdr' expects <name> and <value> as arguments"
                    ));
                    return;
                };
                if v.contains('%') {
                    ctx.unsupported_arg("http-error", &format!("hdr {n} with log-format tags"));
                    return;
                }
                hdrs.push((n.clone(), v.clone()));
                i += 3;
            }
            other => {
                ctx.alert(format!("{who} : unknown keyword '{other}'."));
                return;
            }
        }
    }
    if errorfile.is_some() || default {
        if !hdrs.is_empty() {
            ctx.warning("hdr parameters ignored by the http reply when used with an erorrfile.");
        }
    } else if body.as_ref().is_some_and(|b| !b.is_empty()) {
        if ctype.is_none() {
            ctx.alert(format!(
                "{who} : a content type must be defined when non-empty payload is configured"
            ));
            return;
        }
    } else if let Some(t) = ctype.take() {
        ctx.warning(format!(
            "content-type '{t}' ignored by the http reply because neither errorfile nor payload defined."
        ));
    }
    if crate::http1::errors::builtin(status).is_none() {
        ctx.alert(format!("{who}: status code '{status}' not handled."));
        return;
    }
    let content = if default {
        None
    } else if let Some(ef) = errorfile {
        Some(ef)
    } else {
        Some(build_reply(
            status,
            ctype.as_deref(),
            body.as_deref(),
            &hdrs,
        ))
    };
    p.http_errors.push(Located::new(
        HttpErrorReply { status, content },
        ctx.loc.clone(),
    ));
}

/// The response of an `http-error` line, in `errorfile` form.
pub fn build_reply(
    status: u16,
    ctype: Option<&str>,
    body: Option<&[u8]>,
    hdrs: &[(String, String)],
) -> Vec<u8> {
    let reason = crate::http1::errors::builtin(status)
        .map(|b| b.reason)
        .unwrap_or("");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    for (n, v) in hdrs {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    let body = body.unwrap_or(b"");
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    if let Some(t) = ctype.filter(|_| !body.is_empty()) {
        out.extend_from_slice(format!("content-type: {t}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use crate::config::ir::*;
    use crate::diag::Diags;

    fn parse(lines: &str) -> (Option<Proxy>, Vec<String>) {
        let text = format!(
            "defaults\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\nlisten l\n    bind 127.0.0.1:8000\n{lines}    server s 127.0.0.1:80 check\n"
        );
        let mut d = Diags::captured();
        let cfg = crate::config::parse_str("t.cfg", &text, &mut d);
        let msgs = d.messages.iter().map(|m| m.text.clone()).collect();
        (cfg.ok().and_then(|c| c.proxies.into_iter().next()), msgs)
    }

    fn rules(lines: &str) -> Vec<CheckRule> {
        let (p, msgs) = parse(lines);
        assert!(msgs.is_empty(), "{msgs:?}");
        p.unwrap()
            .check_rules
            .map(|r| r.rules.into_iter().map(|l| l.value).collect())
            .unwrap_or_default()
    }

    #[test]
    fn tcp_rules_parse_in_order() {
        let r = rules(
            "    option tcp-check\n    tcp-check connect port 6379 linger comment c1\n    tcp-check send PING\\r\\n\n    tcp-check send-binary 0a0B\n    tcp-check expect min-recv 3 ! string -ERR\n    tcp-check expect rstring ^\\+PO ok-status L4OK on-success ok\n",
        );
        assert_eq!(r.len(), 5);
        assert_eq!(
            r[0],
            CheckRule::Connect(ConnectRule {
                port: Some(6379),
                linger: true,
                comment: Some("c1".into()),
                ..Default::default()
            })
        );
        assert!(
            matches!(&r[1], CheckRule::Send { data, binary: false, .. } if data == b"PING\r\n")
        );
        assert!(matches!(&r[2], CheckRule::Send { data, binary: true, .. } if data == &[10, 11]));
        match &r[3] {
            CheckRule::Expect(e) => {
                assert!(e.inverse);
                assert_eq!(e.min_recv, 3);
                assert_eq!(e.what, ExpectMatch::String(b"-ERR".to_vec()));
            }
            other => panic!("{other:?}"),
        }
        match &r[4] {
            CheckRule::Expect(e) => {
                assert_eq!(e.ok_status, Some(CheckStatus::L4Ok));
                assert_eq!(e.on_success.as_deref(), Some("ok"));
                assert_eq!(e.what, ExpectMatch::Rstring("^\\+PO".into()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn http_rules_parse() {
        let r = rules(
            "    mode http\n    option httpchk\n    http-check send meth GET uri /h ver HTTP/1.1 hdr Host a body x\n    http-check expect status 200-299,301\n    http-check expect ! hdr name -m beg x-bad\n    http-check expect string ok\n",
        );
        assert_eq!(r.len(), 4);
        assert!(
            matches!(&r[0], CheckRule::HttpSend(s) if s.hdrs == [("Host".to_string(), "a".to_string())])
        );
        assert!(
            matches!(&r[1], CheckRule::Expect(e) if e.what == ExpectMatch::Status(vec![(200, 299), (301, 301)]))
        );
        assert!(
            matches!(&r[2], CheckRule::Expect(e) if e.inverse && matches!(&e.what, ExpectMatch::Hdr { name, value: None, .. } if name.method == HdrMatchMethod::Beg))
        );
    }

    #[test]
    fn errors_carry_haproxy_messages() {
        for (line, want) in [
            (
                "tcp-check foo",
                "'tcp-check' only supports 'comment', 'connect', 'send', 'send-binary', 'expect', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)'. but got 'foo'",
            ),
            (
                "tcp-check expect",
                "'tcp-check expect' : expects at least a matching pattern as arguments.",
            ),
            (
                "tcp-check expect binary 414",
                "'tcp-check expect' : invalid binary string (an even number of hex digit is expected).",
            ),
            (
                "tcp-check expect ok-status FOO string a",
                "'tcp-check expect' : 'ok-status' only supports 'L4OK', 'L6OK', 'L7OK' or 'L7OKC' status (got 'FOO')..",
            ),
            (
                "tcp-check connect port 0",
                "'tcp-check connect' : expects a valid TCP port (from range 1 to 65535) or a sample expression, got 0..",
            ),
            (
                "http-check expect status 200-x",
                "'http-check expect' : invalid range of status codes '200-x'.",
            ),
            ("tcp-check send-lf %[src]", "not supported by rhaproxy"),
            (
                "tcp-check set-var(check.x) int(1)",
                "not supported by rhaproxy",
            ),
        ] {
            let (_, msgs) = parse(&format!("    {line}\n"));
            assert!(msgs.iter().any(|m| m.contains(want)), "{line}: {msgs:?}");
        }
    }

    #[test]
    fn connect_must_come_first() {
        let (_, msgs) = parse("    tcp-check send a\n    tcp-check connect\n");
        assert!(
            msgs.iter()
                .any(|m| m.contains("first step MUST also be a 'connect'"))
        );
        assert!(rules("    tcp-check comment x\n    tcp-check connect\n    tcp-check send a\n    tcp-check connect port 81\n").len() == 4);
    }

    #[test]
    fn other_kind_starts_over() {
        let r = rules("    tcp-check send a\n    http-check expect status 200\n");
        assert_eq!(r.len(), 1);
        assert!(matches!(&r[0], CheckRule::Expect(_)));
    }

    #[test]
    fn check_options_carry_their_arguments() {
        let opt = |line: &str| {
            let (p, msgs) = parse(&format!("    {line}\n"));
            assert!(msgs.is_empty(), "{line}: {msgs:?}");
            p.unwrap().check_option.map(|o| o.value)
        };
        assert_eq!(
            opt("option smtpchk EHLO me.example"),
            Some(CheckOption::SmtpChk("EHLO me.example".into()))
        );
        assert_eq!(
            opt("option smtpchk"),
            Some(CheckOption::SmtpChk("HELO localhost".into()))
        );
        assert_eq!(
            opt("option pgsql-check user john"),
            Some(CheckOption::PgsqlCheck("john".into()))
        );
        assert_eq!(
            opt("option mysql-check user hap pre-41"),
            Some(CheckOption::MysqlCheck {
                user: Some("hap".into()),
                pre41: true
            })
        );
        assert_eq!(opt("option ssl-hello-chk"), Some(CheckOption::SslHelloChk));
        // The last check option wins.
        assert_eq!(
            opt("option redis-check\n    option tcp-check"),
            Some(CheckOption::TcpCheck)
        );
        let (_, msgs) = parse("    no option httpchk\n");
        assert!(msgs[0].contains("negation/default is not supported for option 'httpchk'."));
    }

    #[test]
    fn own_rules_replace_inherited_ones() {
        let text = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n    option httpchk GET /d\n    http-check expect string a\nbackend inherit\n    server s 127.0.0.1:80 check\nbackend own\n    http-check expect status 200\n    server s 127.0.0.1:80 check\nbackend opt\n    option httpchk GET /z\n    server s 127.0.0.1:80 check\n";
        let mut d = Diags::captured();
        let cfg = crate::config::parse_str("t.cfg", text, &mut d).unwrap();
        let by = |n: &str| cfg.proxies.iter().find(|p| p.name == n).unwrap();
        let inherit = by("inherit");
        assert!(inherit.httpchk_send);
        assert_eq!(inherit.check_rules.as_ref().unwrap().rules.len(), 1);
        let own = by("own");
        assert!(
            !own.httpchk_send,
            "an own rule set drops the inherited request"
        );
        assert!(matches!(
            &own.check_rules.as_ref().unwrap().rules[0].value,
            CheckRule::Expect(e) if e.what == ExpectMatch::Status(vec![(200, 200)])
        ));
        let opt = by("opt");
        assert!(opt.httpchk_send);
        assert!(
            opt.check_rules.is_none(),
            "an own option drops inherited rules"
        );
        assert_eq!(opt.httpchk.as_ref().unwrap().value.uri, "/z");
    }

    /// Random lines made of the check keywords never panic the parser.
    #[test]
    fn random_check_lines_never_panic() {
        const WORDS: &[&str] = &[
            "tcp-check",
            "http-check",
            "http-error",
            "expect",
            "send",
            "send-binary",
            "connect",
            "comment",
            "string",
            "rstring",
            "binary",
            "rbinary",
            "status",
            "rstatus",
            "hdr",
            "fhdr",
            "name",
            "value",
            "-m",
            "reg",
            "beg",
            "!",
            "min-recv",
            "ok-status",
            "error-status",
            "tout-status",
            "L7OK",
            "port",
            "addr",
            "0",
            "65536",
            "200-x",
            "(",
            "zz",
            "0a",
            "meth",
            "uri",
            "ver",
            "body",
            "content-type",
            "file",
            "errorfile",
            "default-errorfiles",
            "503",
            "599",
            "x",
            "",
            "option",
            "mysql-check",
            "user",
            "pgsql-check",
            "smtpchk",
            "EHLO",
            "disable-on-404",
            "send-state",
            "linger",
            "default",
            "set-var(check.x)",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..500 {
            let n = 1 + (next() % 7) as usize;
            let line: Vec<String> = (0..n)
                .map(|_| {
                    let w = WORDS[(next() % WORDS.len() as u64) as usize];
                    if w.is_empty() {
                        "\"\"".to_string()
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            let _ = parse(&format!("    {}\n", line.join(" ")));
        }
    }

    #[test]
    fn http_check_flags() {
        let (p, msgs) = parse(
            "    mode http\n    option httpchk\n    http-check disable-on-404\n    http-check send-state\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let p = p.unwrap();
        assert!(p.http_check_disable_on_404 && p.http_check_send_state);
    }

    #[test]
    fn http_error_builds_a_reply() {
        let (p, msgs) = parse(
            "    mode http\n    http-error status 503 content-type text/plain string sorry hdr X-A b\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let p = p.unwrap();
        let c = p.http_errors[0].value.content.clone().unwrap();
        let text = String::from_utf8(c).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\nsorry"), "{text}");
        assert!(text.contains("X-A: b\r\n"));
    }
}
