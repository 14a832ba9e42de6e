//! Parsers of `acl`, `use_backend`, `http-request`, `http-response`, `tcp-request` and
//! `redirect` (HAProxy 2.6 manual §4.2 and §7), with HAProxy's error texts.

use super::LineCtx;
use crate::acl::cond::{self, Acl};
use crate::acl::{AclError, Condition};
use crate::config::ir::*;

pub fn ptype(p: &Proxy) -> &'static str {
    match p.kind {
        ProxyKind::Frontend => "frontend",
        ProxyKind::Backend => "backend",
        ProxyKind::Listen => "proxy",
        ProxyKind::Defaults => "defaults",
    }
}

/// Reports an ACL error after `prefix` (`error detected while parsing ACL 'x'`).
pub fn report(ctx: &mut LineCtx, prefix: &str, e: AclError, dot: bool) {
    match e {
        AclError::Haproxy(m) => ctx.alert(format!("{prefix} : {m}{}", if dot { "." } else { "" })),
        AclError::Unsupported(what) => {
            ctx.unsupported += 1;
            if what.ends_with('.') {
                ctx.alert(format!("{prefix} : {what}"))
            } else {
                ctx.alert(format!(
                    "{prefix} : {what} is valid for HAProxy 2.6 but is not supported by rhaproxy yet."
                ))
            }
        }
    }
}

/// Rules in a `defaults` section apply to the proxies built from it in HAProxy 2.6; rhaproxy
/// does not carry them over yet, so they are refused.
fn refuse_in_defaults(ctx: &mut LineCtx, p: &Proxy, kw: &str) -> bool {
    if p.kind == ProxyKind::Defaults {
        ctx.unsupported_arg(kw, "rules and ACLs in a 'defaults' section");
        return true;
    }
    false
}

pub fn p_acl(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if refuse_in_defaults(ctx, p, "acl") {
        return;
    }
    let Some(name) = a.get(1).filter(|s| !s.is_empty()) else {
        ctx.alert("'acl' expects an ACL name.");
        return;
    };
    if let Err(m) = cond::check_acl_name(name) {
        ctx.alert(m);
        return;
    }
    match cond::parse_acl_expr(&a[2..], &ctx.loc) {
        Ok((e, warn)) => {
            if let Some(w) = warn {
                let (f, l) = (ctx.loc.file.clone(), ctx.loc.line);
                ctx.diags.warning(Some((&f, l)), w);
            }
            p.acls
                .entry(name.clone())
                .or_insert_with(|| Acl {
                    name: Some(name.clone()),
                    exprs: Vec::new(),
                })
                .exprs
                .push(e);
        }
        Err(e) => {
            if matches!(e, AclError::Unsupported(_)) {
                // Refused already; later references to the name must not add a false
                // "no such ACL" error.
                p.acls.entry(name.clone()).or_insert_with(|| Acl {
                    name: Some(name.clone()),
                    exprs: Vec::new(),
                });
            }
            report(
                ctx,
                &format!("error detected while parsing ACL '{name}'"),
                e,
                true,
            )
        }
    }
}

/// The rule sets of a proxy, in HAProxy's processing order (for the misplaced-rule warnings
/// and the fetch compatibility checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Where {
    TcpConn,
    TcpSess,
    TcpCont,
    HttpReq,
    Redirect,
    UseBackend,
    HttpRes,
    /// `stick` rules (and `balance`, `use-server`).
    Stick,
}

fn has_rules(p: &Proxy, w: Where) -> bool {
    match w {
        Where::TcpConn | Where::TcpSess | Where::TcpCont => {
            let k = match w {
                Where::TcpConn => TcpRuleKind::Connection,
                Where::TcpSess => TcpRuleKind::Session,
                _ => TcpRuleKind::Content,
            };
            p.tcp_request.iter().any(|r| r.action.0 == k)
        }
        Where::HttpReq => !p.http_request.is_empty(),
        Where::Redirect => !p.redirects.is_empty(),
        Where::UseBackend => !p.use_backends.is_empty(),
        Where::HttpRes | Where::Stick => false,
    }
}

/// `a 'KW' rule placed after a 'X' rule will still be processed before.` for the first rule
/// set processed later than `w` that already has rules.
fn warn_misplaced(ctx: &mut LineCtx, p: &Proxy, w: Where, kw: &str) {
    let later = [
        (Where::TcpSess, "a 'tcp-request session'"),
        (Where::TcpCont, "a 'tcp-request content'"),
        (Where::HttpReq, "an 'http-request'"),
        (Where::Redirect, "a 'redirect'"),
        (Where::UseBackend, "a 'use_backend'"),
    ];
    if let Some((_, name)) = later.iter().find(|(l, _)| *l > w && has_rules(p, *l)) {
        ctx.warning(format!(
            "a '{kw}' rule placed after {name} rule will still be processed before."
        ));
    }
}

/// HAProxy's "acl will never match" warning for the first term using a fetch that this rule
/// set cannot provide.
fn warn_never_match(ctx: &mut LineCtx, p: &Proxy, w: Where, c: &Condition) {
    use crate::acl::fetch::Usable;
    let fe = p.cap().contains(Cap::FE);
    let be = p.cap().contains(Cap::BE);
    let ok = |e: &crate::acl::AclExpr| match e.expr.fetch.usable() {
        Usable::Everywhere => true,
        Usable::NotAtConnection => w != Where::TcpConn,
        Usable::Backend => match w {
            Where::HttpRes | Where::Stick => true,
            Where::TcpConn | Where::TcpSess | Where::UseBackend => false,
            _ => be,
        },
        Usable::RequestOrResponse => !matches!(w, Where::TcpConn | Where::TcpSess),
        Usable::Request => !matches!(w, Where::TcpConn | Where::TcpSess | Where::HttpRes),
        Usable::Response => w == Where::HttpRes,
    };
    let ok = |e: &crate::acl::AclExpr| match w {
        Where::Stick => e.expr.fetch.usable() != Usable::Response,
        _ => ok(e),
    };
    let side = |front: bool| if front { "frontend" } else { "backend" };
    let (ctx_name, tcp) = match w {
        Where::TcpConn => (
            "frontend tcp-request connection rule".to_string(),
            Some("tcp-request connection"),
        ),
        Where::TcpSess => (
            "frontend tcp-request session rule".to_string(),
            Some("tcp-request session"),
        ),
        Where::TcpCont => (
            format!("{} tcp-request content rule", side(fe)),
            Some("tcp-request content"),
        ),
        Where::HttpReq | Where::Redirect => {
            (format!("{} http-request header rule", side(fe)), None)
        }
        Where::UseBackend => ("frontend use-backend rule".to_string(), None),
        Where::HttpRes => (format!("{} http-response header rule", side(!be)), None),
        Where::Stick => (
            "backend use-server, balance or stick-match rule".to_string(),
            None,
        ),
    };
    let inn = tcp.map(|t| format!(" in '{t}'")).unwrap_or_default();
    for t in c.groups.iter().flatten() {
        match &t.acl.name {
            None => {
                if let Some(e) = t.acl.exprs.iter().find(|e| !ok(e)) {
                    ctx.warning(format!(
                        "anonymous acl will never match{inn} because it uses keyword '{}' which is incompatible with '{ctx_name}'",
                        e.expr.name
                    ));
                    return;
                }
            }
            Some(n) => {
                if !t.acl.exprs.is_empty() && t.acl.exprs.iter().all(|e| !ok(e)) {
                    ctx.warning(format!(
                        "acl '{n}' will never match{inn} because it only involves keywords that are incompatible with '{ctx_name}'"
                    ));
                    return;
                }
            }
        }
    }
}

/// The "will never match" warning of a `stick` rule's condition.
pub fn warn_never_match_stick(ctx: &mut LineCtx, p: &Proxy, c: &Condition) {
    warn_never_match(ctx, p, Where::Stick, c);
}

/// Services rhaproxy answers itself (`http-request use-service NAME`); the runtime dispatches
/// them in `runtime::http::answer_locally` (`ReqVerdict::Service`).
pub const SERVICES: &[&str] = &["prometheus-exporter"];

/// Splits `ARGS... [if|unless COND...]`.
fn split_cond(a: &[String]) -> (&[String], Option<(bool, &[String])>) {
    match a.iter().position(|w| w == "if" || w == "unless") {
        Some(i) => (&a[..i], Some((a[i] == "unless", &a[i + 1..]))),
        None => (a, None),
    }
}

/// Parses the condition of a rule; on error, reports it with `prefix` and returns `Err`.
fn rule_cond(
    ctx: &mut LineCtx,
    p: &Proxy,
    c: Option<(bool, &[String])>,
    report_err: &mut dyn FnMut(&mut LineCtx, AclError),
) -> Result<Option<Condition>, ()> {
    let Some((unless, ws)) = c else {
        return Ok(None);
    };
    match cond::parse_condition(unless, ws, &p.acls, &ctx.loc) {
        Ok((c, warns)) => {
            for w in warns {
                let (f, l) = (ctx.loc.file.clone(), ctx.loc.line);
                ctx.diags.warning(Some((&f, l)), w);
            }
            Ok(Some(c))
        }
        Err(e) => {
            report_err(ctx, e);
            Err(())
        }
    }
}

/// `monitor fail if|unless COND`.
pub fn p_monitor(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if a.get(1).map(String::as_str) != Some("fail") {
        ctx.alert("'monitor' only supports 'fail'.");
        return;
    }
    let ws = &a[2..];
    let c = match ws.first().map(String::as_str) {
        Some("if") => (false, &ws[1..]),
        Some("unless") => (true, &ws[1..]),
        _ => {
            ctx.alert("'monitor fail' requires either 'if' or 'unless' followed by a condition.");
            return;
        }
    };
    let prefix = "error detected while parsing a 'monitor fail' condition";
    let Ok(cond) = rule_cond(ctx, p, Some(c), &mut |ctx, e| report(ctx, prefix, e, true)) else {
        return;
    };
    p.monitor_fail.push(Rule {
        action: (),
        cond,
        loc: ctx.loc.clone(),
    });
}

pub fn p_use_backend(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let Some(b) = a.get(1).filter(|s| !s.is_empty()) else {
        ctx.alert("'use_backend' expects a backend name.");
        return;
    };
    let c = match a.get(2).map(String::as_str) {
        None => None,
        Some("if") | Some("unless") => Some((a[2] == "unless", &a[3..])),
        Some(_) => {
            ctx.alert("error detected while parsing switching rule : missing condition or unexpected keyword.");
            return;
        }
    };
    let Ok(cond) = rule_cond(ctx, p, c, &mut |ctx, e| {
        report(ctx, "error detected while parsing switching rule", e, true)
    }) else {
        return;
    };
    if let Some(c) = &cond {
        warn_never_match(ctx, p, Where::UseBackend, c);
    }
    // A name with `%[` is compiled after parsing (config::validate), as HAProxy does.
    p.use_backends.push(UseBackend {
        backend: b.clone(),
        dynamic: None,
        cond,
        loc: ctx.loc.clone(),
    });
}

const HTTP_REQUEST_ACTIONS: &str = "'wait-for-handshake', 'ot-group', 'set-log-level', 'set-nice', 'use-service', 'sc-inc-gpc(*)', 'sc-inc-gpc0(*)', 'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', 'send-spoe-group', 'do-resolve(*)', 'cache-use', 'add-acl(*)', 'add-header', 'allow', 'auth', 'capture', 'del-acl(*)', 'del-header', 'del-map(*)', 'deny', 'disable-l7-retry', 'early-hint', 'normalize-uri', 'redirect', 'reject', 'replace-header', 'replace-path', 'replace-pathq', 'replace-uri', 'replace-value', 'return', 'set-header', 'set-map(*)', 'set-method', 'set-path', 'set-pathq', 'set-query', 'set-uri', 'strict-mode', 'tarpit', 'track-sc(*)', 'set-timeout', 'wait-for-body', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', 'set-dst', 'set-dst-port', 'set-mark', 'set-src', 'set-src-port', 'set-tos', 'silent-drop', 'set-priority-class', 'set-priority-offset'";

const HTTP_RESPONSE_ACTIONS: &str = "'sc-inc-gpc(*)', 'sc-inc-gpc0(*)', 'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', 'send-spoe-group', 'cache-store', 'add-acl(*)', 'add-header', 'allow', 'capture', 'del-acl(*)', 'del-header', 'del-map(*)', 'deny', 'redirect', 'replace-header', 'replace-value', 'return', 'set-header', 'set-log-level', 'set-map(*)', 'set-nice', 'set-status', 'set-tos', 'set-mark', 'strict-mode', 'track-sc(*)', 'set-timeout', 'wait-for-body', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', 'set-mark', 'set-tos', 'silent-drop'";

fn known_action(list: &str, w: &str) -> bool {
    list.split(", ").any(|q| {
        let q = q.trim_matches('\'');
        match q.strip_suffix("(*)") {
            Some(pfx) => w.starts_with(pfx),
            None => q == w,
        }
    })
}

/// A rule's sample expression; errors reported with the rule prefix, an unknown fetch named
/// as HAProxy names it.
pub fn rule_expr(
    ctx: &mut LineCtx,
    prefix: &str,
    e: &str,
) -> Option<crate::acl::fetch::SampleExpr> {
    match crate::acl::fetch::parse_expr(e) {
        Ok(x) => Some(x),
        Err(crate::acl::fetch::FetchError::Haproxy(m)) if m.starts_with("unknown fetch method") => {
            let n = e.split(['(', ',']).next().unwrap_or("");
            ctx.alert(format!("{prefix} : unknown fetch method '{n}'."));
            None
        }
        Err(err) => {
            report(ctx, prefix, err.into(), true);
            None
        }
    }
}

/// Parses a log-format argument, reporting errors with the rule prefix.
fn fmt_arg(ctx: &mut LineCtx, prefix: &str, s: &str) -> Option<Fmt> {
    match Fmt::parse(s) {
        Ok(f) => Some(f),
        Err(e) => {
            report(ctx, prefix, e, true);
            None
        }
    }
}

fn parse_status_for_deny(ctx: &mut LineCtx, prefix: &str, kw: &str, s: &str) -> Option<u16> {
    match s.parse::<u16>() {
        Ok(n) if (200..=599).contains(&n) => {
            if crate::http1::errors::builtin(n).is_some() {
                Some(n)
            } else if kw == "status" {
                ctx.unsupported_arg(
                    "http-request deny",
                    &format!("status {n} (no built-in page)"),
                );
                None
            } else {
                ctx.alert(format!(
                    "{prefix} : status code '{n}' not handled by default with 'default-errorfiles' argument.."
                ));
                None
            }
        }
        _ => {
            ctx.alert(format!("{prefix} : Unexpected status code '{s}'."));
            None
        }
    }
}

/// `redirect location|prefix|scheme X [code N] [drop-query] [append-slash] ...`: `a` starts
/// at the kind word. Errors are reported with `prefix`.
fn parse_redirect(ctx: &mut LineCtx, prefix: &str, a: &[String]) -> Option<Redirect> {
    let mut kind = None;
    let mut target = None;
    let mut code = 302;
    let mut drop_query = false;
    let mut append_slash = false;
    let mut i = 0;
    while i < a.len() {
        let w = a[i].as_str();
        match w {
            "location" | "prefix" | "scheme" => {
                let Some(v) = a.get(i + 1) else {
                    ctx.alert(format!("{prefix} : missing argument for '{w}'."));
                    return None;
                };
                kind = Some(match w {
                    "location" => RedirectKind::Location,
                    "prefix" => RedirectKind::Prefix,
                    _ => RedirectKind::Scheme,
                });
                target = Some(v.clone());
                i += 1;
            }
            "code" => {
                let Some(v) = a.get(i + 1) else {
                    ctx.alert(format!("{prefix} : missing argument for '{w}'."));
                    return None;
                };
                code = match v.parse::<u16>() {
                    Ok(c @ (301 | 302 | 303 | 307 | 308)) => c,
                    _ => {
                        ctx.alert(format!("{prefix} : 'code': unsupported HTTP code '{v}' (must be one of 301, 302, 303, 307 or 308)."));
                        return None;
                    }
                };
                i += 1;
            }
            "drop-query" => drop_query = true,
            "append-slash" => append_slash = true,
            "set-cookie" | "clear-cookie" | "ignore-empty" => {
                ctx.unsupported += 1;
                ctx.alert(format!(
                    "{prefix} : '{w}' is valid for HAProxy 2.6 but is not supported by rhaproxy yet."
                ));
                return None;
            }
            _ => {
                ctx.alert(format!("{prefix} : expects 'code', 'prefix', 'location', 'scheme', 'set-cookie', 'clear-cookie', 'drop-query', 'ignore-empty' or 'append-slash' (was '{w}')."));
                return None;
            }
        }
        i += 1;
    }
    let (Some(kind), Some(t)) = (kind, target) else {
        ctx.alert(format!(
            "{prefix} : redirect type must be one of 'location', 'prefix' or 'scheme'."
        ));
        return None;
    };
    let target = fmt_arg(ctx, prefix, &t)?;
    Some(Redirect {
        kind,
        target,
        code,
        drop_query,
        append_slash,
    })
}

/// `http-request` (response: false) and `http-response` (response: true).
fn p_http_rule(ctx: &mut LineCtx, p: &mut Proxy, a: &[String], response: bool) {
    let kw = if response {
        "http-response"
    } else {
        "http-request"
    };
    if refuse_in_defaults(ctx, p, kw) {
        return;
    }
    let list = if response {
        HTTP_RESPONSE_ACTIONS
    } else {
        HTTP_REQUEST_ACTIONS
    };
    let act = a.get(1).map(String::as_str).unwrap_or("");
    if !known_action(list, act) {
        let tail = if act.is_empty() {
            "'' (missing argument)".to_string()
        } else {
            format!("'{act}'")
        };
        ctx.alert_tight(format!("'{kw}' expects {list}, but got {tail}."));
        return;
    }
    let (args, c) = split_cond(&a[2..]);
    let prefix = format!(
        "error detected in {} '{}' while parsing '{kw} {act}' rule",
        ptype(p),
        p.name
    );
    let exact2 = |ctx: &mut LineCtx| -> Option<(String, Fmt)> {
        if args.len() != 2 {
            ctx.alert(format!("{prefix} : expects exactly 2 arguments."));
            return None;
        }
        let f = fmt_arg(ctx, &prefix, &args[1])?;
        Some((args[0].clone(), f))
    };
    let exact1 = |ctx: &mut LineCtx| -> Option<Fmt> {
        if args.len() != 1 {
            ctx.alert(format!("{prefix} : expects exactly 1 argument."));
            return None;
        }
        fmt_arg(ctx, &prefix, &args[0])
    };
    let trailing = |ctx: &mut LineCtx, w: &String| {
        ctx.alert_tight(format!(
            "'{kw} {act}' expects either 'if' or 'unless' followed by a condition but found '{w}'."
        ));
    };
    let action = match act {
        "allow" => {
            if let Some(w) = args.first() {
                trailing(ctx, w);
                return;
            }
            HttpAction::Allow
        }
        "deny" | "return" => {
            let deny = act == "deny";
            let mut status = match (deny, response) {
                (true, true) => 502,
                (true, false) => 403,
                _ => 200,
            };
            let mut deny_status_kw = false;
            let mut content_type = None;
            let mut body = None;
            let mut headers = Vec::new();
            let mut i = 0;
            while i < args.len() {
                let w = args[i].as_str();
                let v = args.get(i + 1);
                match (w, v) {
                    ("status", Some(v)) | ("deny_status", Some(v)) if deny || w == "status" => {
                        status = match v.parse::<u16>() {
                            Ok(n) if (200..=599).contains(&n) => n,
                            _ => {
                                ctx.alert(format!("{prefix} : Unexpected status code '{v}'."));
                                return;
                            }
                        };
                        deny_status_kw = w == "deny_status";
                    }
                    ("content-type", Some(v)) => content_type = Some(v.clone()),
                    ("string" | "lf-string", Some(v)) if v.is_empty() => {
                        ctx.alert(format!(
                            "{prefix} : '{w}' expects <{}> as argument.",
                            if w == "string" { "str" } else { "fmt" }
                        ));
                        return;
                    }
                    ("string", Some(v)) => body = Some(Fmt::literal(v)),
                    ("lf-string", Some(v)) => {
                        let Some(f) = fmt_arg(ctx, &prefix, v) else {
                            return;
                        };
                        body = Some(f);
                    }
                    ("hdr", Some(n)) => {
                        let Some(v) = args.get(i + 2) else {
                            ctx.alert(format!(
                                "{prefix} : 'hdr' expects <name> and <value> as arguments."
                            ));
                            return;
                        };
                        let Some(f) = fmt_arg(ctx, &prefix, v) else {
                            return;
                        };
                        headers.push((n.clone(), f));
                        i += 1;
                    }
                    ("file" | "lf-file" | "errorfile" | "errorfiles" | "default-errorfiles", _) => {
                        ctx.unsupported_arg(&format!("{kw} {act}"), w);
                        return;
                    }
                    _ => {
                        trailing(ctx, &args[i]);
                        return;
                    }
                }
                i += 2;
            }
            if body.is_some() && content_type.is_none() {
                ctx.alert(format!("{prefix} : a content type must be defined when non-empty payload is configured."));
                return;
            }
            let plain = content_type.is_none() && body.is_none() && headers.is_empty();
            let builtin = crate::http1::errors::builtin(status).is_some();
            if deny && plain && deny_status_kw && !builtin {
                ctx.alert(format!(
                    "{prefix} : status code '{status}' not handled by default with 'default-errorfiles' argument.."
                ));
                return;
            }
            if deny && plain && builtin {
                // The proxy's error page for that status (errorfile or built-in).
                HttpAction::Deny { status }
            } else {
                HttpAction::Return {
                    status,
                    content_type,
                    body,
                    headers,
                    deny,
                }
            }
        }
        "redirect" if !response => {
            let Some(r) = parse_redirect(ctx, &prefix, args) else {
                return;
            };
            HttpAction::Redirect(r)
        }
        "set-header" | "add-header" => {
            let Some((n, f)) = exact2(ctx) else {
                return;
            };
            if act == "set-header" {
                HttpAction::SetHeader(n, f)
            } else {
                HttpAction::AddHeader(n, f)
            }
        }
        "del-header" => {
            if args.len() != 1 {
                if args.len() > 1 && args[1] == "-m" {
                    ctx.unsupported_arg(&format!("{kw} del-header"), "-m");
                } else {
                    ctx.alert(format!("{prefix} : expects exactly 1 argument."));
                }
                return;
            }
            HttpAction::DelHeader(args[0].clone())
        }
        "set-path" | "set-query" | "set-uri" | "set-method" if !response => {
            let Some(f) = exact1(ctx) else {
                return;
            };
            match act {
                "set-path" => HttpAction::SetPath(f),
                "set-query" => HttpAction::SetQuery(f),
                "set-uri" => HttpAction::SetUri(f),
                _ => HttpAction::SetMethod(f),
            }
        }
        "set-status" if response => {
            let Some(code) = args.first().and_then(|s| s.parse::<u16>().ok()) else {
                ctx.alert(format!("{prefix} : expects an HTTP status code."));
                return;
            };
            let reason = match (args.get(1).map(String::as_str), args.get(2)) {
                (Some("reason"), Some(r)) => Some(r.clone()),
                (None, _) => None,
                _ => {
                    trailing(ctx, &args[1]);
                    return;
                }
            };
            HttpAction::SetStatus(code, reason)
        }
        _ if act.starts_with("set-var(") || act.starts_with("unset-var(") => {
            let unset = act.starts_with("unset-var(");
            let inner = act
                .split_once('(')
                .map(|x| x.1)
                .and_then(|x| x.strip_suffix(')'))
                .unwrap_or("");
            let mut parts = inner.split(',');
            let name = parts.next().unwrap_or("").to_string();
            if let Err(m) = crate::acl::fetch::check_var_name(&name) {
                ctx.alert(format!("{prefix} : {m}."));
                return;
            }
            let mut only = VarCond::Always;
            for c in parts {
                only = match c {
                    "ifexists" => VarCond::IfExists,
                    "ifnotexists" => VarCond::IfNotExists,
                    "ifempty" => VarCond::IfEmpty,
                    "ifnotempty" => VarCond::IfNotEmpty,
                    _ => {
                        ctx.unsupported_arg(&format!("{kw} set-var"), &format!("condition '{c}'"));
                        return;
                    }
                };
            }
            if unset {
                if let Some(w) = args.first() {
                    trailing(ctx, w);
                    return;
                }
                HttpAction::UnsetVar(name)
            } else {
                let Some(e) = args.first() else {
                    ctx.alert(format!("{prefix} : missing fetch method."));
                    return;
                };
                let Some(expr) = rule_expr(ctx, &prefix, e) else {
                    return;
                };
                if let Some(w) = args.get(1) {
                    trailing(ctx, w);
                    return;
                }
                HttpAction::SetVar { name, expr, only }
            }
        }
        "replace-path" | "replace-uri" | "replace-header" | "replace-value"
            if !response || matches!(act, "replace-header" | "replace-value") =>
        {
            let hdr = matches!(act, "replace-header" | "replace-value");
            let want = if hdr { 3 } else { 2 };
            if args.len() != want {
                let what = if hdr {
                    ""
                } else {
                    " <match-regex> and <replace-format>"
                };
                ctx.alert(format!(
                    "{prefix} : expects exactly {want} arguments{what}."
                ));
                return;
            }
            let (re_s, fmt_s) = (&args[want - 2], &args[want - 1]);
            let re = match crate::acl::matcher::compile_regex(re_s, false) {
                Ok(r) => r,
                Err(m) => {
                    ctx.unsupported += 1;
                    ctx.alert(format!("{prefix} : {m}"));
                    return;
                }
            };
            let Some(fmt) = fmt_arg(ctx, &prefix, fmt_s) else {
                return;
            };
            let what = match act {
                "replace-path" => ReplaceWhat::Path,
                "replace-uri" => ReplaceWhat::Uri,
                "replace-header" => ReplaceWhat::Header(args[0].clone()),
                _ => ReplaceWhat::Value(args[0].clone()),
            };
            HttpAction::Replace { what, re, fmt }
        }
        "set-dst" | "set-dst-port" | "set-src" | "set-src-port" if !response => {
            let Some(e) = args.first() else {
                ctx.alert(format!("{prefix} : missing fetch method."));
                return;
            };
            let Some(expr) = rule_expr(ctx, &prefix, e) else {
                return;
            };
            if let Some(w) = args.get(1) {
                trailing(ctx, w);
                return;
            }
            match act {
                "set-dst" => HttpAction::SetDst(expr),
                "set-dst-port" => HttpAction::SetDstPort(expr),
                "set-src" => HttpAction::SetSrc(expr),
                _ => HttpAction::SetSrcPort(expr),
            }
        }
        "set-log-level" => {
            const LEVELS: [&str; 9] = [
                "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "silent",
            ];
            match args.first().map(String::as_str) {
                Some(l) if LEVELS.contains(&l) && args.len() == 1 => {
                    if l != "silent" {
                        ctx.unsupported_arg(&format!("{kw} set-log-level"), l);
                        return;
                    }
                    HttpAction::SetLogSilent
                }
                Some(l) if LEVELS.contains(&l) => {
                    trailing(ctx, &args[1]);
                    return;
                }
                _ => {
                    ctx.alert(format!(
                        "{prefix} : expects exactly 1 argument (log level name or 'silent')."
                    ));
                    return;
                }
            }
        }
        "reject" | "silent-drop" => {
            if let Some(w) = args.first() {
                trailing(ctx, w);
                return;
            }
            if act == "reject" {
                HttpAction::Reject
            } else {
                HttpAction::SilentDrop
            }
        }
        "tarpit" if !response => {
            let mut status = 500;
            match (args.first().map(String::as_str), args.get(1)) {
                (None, _) => {}
                (Some("deny_status"), Some(v)) => {
                    let Some(s) = parse_status_for_deny(ctx, &prefix, "deny_status", v) else {
                        return;
                    };
                    status = s;
                    if let Some(w) = args.get(2) {
                        trailing(ctx, w);
                        return;
                    }
                }
                _ => {
                    trailing(ctx, &args[0]);
                    return;
                }
            }
            HttpAction::Tarpit { status }
        }
        "capture" => {
            let usage = if response {
                "expects <expression> id <idx>."
            } else {
                "expects <expression> [ 'len' <length> | id <idx> ]."
            };
            if args.len() < 3 {
                ctx.alert(format!("{prefix} : {usage}"));
                return;
            }
            let e = &args[0];
            let Some(expr) = rule_expr(ctx, &prefix, e) else {
                return;
            };
            let wrong = match expr.fetch.needs() {
                crate::acl::fetch::Needs::Request if response => Some("HTTP request headers"),
                crate::acl::fetch::Needs::Response if !response => Some("HTTP response headers"),
                _ => None,
            };
            if let Some(w) = wrong {
                ctx.alert(format!(
                    "{prefix} : fetch method '{e}' extracts information from '{w}', none of which is available here."
                ));
                return;
            }
            let idx = match args[1].as_str() {
                "len" if !response => {
                    let len = crate::config::values::atoi(&args[2]);
                    if len <= 0 {
                        ctx.alert(format!("{prefix} : length must be > 0."));
                        return;
                    }
                    if !p.cap().contains(Cap::FE) {
                        ctx.alert(format!(
                            "{prefix} : proxy '{}' has no frontend capability.",
                            p.name
                        ));
                        return;
                    }
                    p.capture_request.push(Capture {
                        header: String::new(),
                        len: len as usize,
                    });
                    p.capture_request.len() - 1
                }
                "id" => match args[2].parse::<usize>() {
                    Ok(i) => i,
                    Err(_) => {
                        ctx.alert(format!("{prefix} : cannot parse id '{}'.", args[2]));
                        return;
                    }
                },
                w if response => {
                    ctx.alert(format!("{prefix} : expects 'id', found '{w}'."));
                    return;
                }
                w => {
                    ctx.alert(format!("{prefix} : expects 'len' or 'id', found '{w}'."));
                    return;
                }
            };
            if let Some(w) = args.get(3) {
                trailing(ctx, w);
                return;
            }
            HttpAction::Capture { expr, idx }
        }
        _ if super::stick::is_stk_action(act) => {
            match super::stick::parse_stk_action(ctx, &prefix, kw, act, args, false) {
                None => return,
                Some(Err(w)) => {
                    trailing(ctx, &w);
                    return;
                }
                Some(Ok(a)) => HttpAction::Stk(a),
            }
        }
        "use-service" if !response => {
            let Some(name) = args.first().cloned() else {
                ctx.alert(format!("{prefix} : 'use-service' expects a service name.."));
                return;
            };
            if name != "prometheus-exporter" && !name.starts_with("lua.") {
                ctx.alert(format!("{prefix} : '{name}' unknown service name.."));
                return;
            }
            if let Some(w) = args.get(1) {
                trailing(ctx, w);
                return;
            }
            HttpAction::UseService(name)
        }
        _ => {
            ctx.unsupported_arg(kw, act);
            return;
        }
    };
    let cond_prefix = format!("error detected while parsing an '{kw} {act}' condition");
    let Ok(cond) = rule_cond(ctx, p, c, &mut |ctx, e| report(ctx, &cond_prefix, e, true)) else {
        return;
    };
    let w = if response {
        Where::HttpRes
    } else {
        warn_misplaced(ctx, p, Where::HttpReq, kw);
        Where::HttpReq
    };
    if let Some(c) = &cond {
        warn_never_match(ctx, p, w, c);
    }
    // `use-service` is kept in the IR (with its condition) for the service implementations,
    // and refused until rhaproxy implements that service (`SERVICES`).
    let refused_service = match &action {
        HttpAction::UseService(n) if !SERVICES.contains(&n.as_str()) => Some(n.clone()),
        _ => None,
    };
    let rule = Rule {
        action,
        cond,
        loc: ctx.loc.clone(),
    };
    if let Some(n) = refused_service {
        p.http_request.push(rule);
        ctx.unsupported_arg("http-request use-service", &n);
        return;
    }
    if response {
        p.http_response.push(rule);
    } else {
        p.http_request.push(rule);
    }
}

/// HAProxy stops parsing at an `http-request`/`http-response` error (not at a form rhaproxy
/// merely lacks).
fn aborting(ctx: &mut LineCtx, f: impl FnOnce(&mut LineCtx)) {
    let before = ctx.diags.alerts;
    f(ctx);
    if ctx.diags.alerts > before && ctx.unsupported == 0 {
        ctx.abort = true;
    }
}

pub fn p_http_request(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    aborting(ctx, |ctx| p_http_rule(ctx, p, a, false))
}

pub fn p_http_response(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    aborting(ctx, |ctx| p_http_rule(ctx, p, a, true))
}

pub fn p_redirect(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let (args, c) = split_cond(&a[1..]);
    let prefix = format!(
        "error detected in {} '{}' while parsing redirect rule",
        ptype(p),
        p.name
    );
    let Some(r) = parse_redirect(ctx, &prefix, args) else {
        return;
    };
    let Ok(cond) = rule_cond(ctx, p, c, &mut |ctx, e| match e {
        AclError::Haproxy(m) => ctx.alert(format!("{prefix} : error in condition: {m}.")),
        e => report(ctx, &prefix, e, true),
    }) else {
        return;
    };
    warn_misplaced(ctx, p, Where::Redirect, "redirect");
    if let Some(c) = &cond {
        warn_never_match(ctx, p, Where::Redirect, c);
    }
    p.redirects.push(Rule {
        action: HttpAction::Redirect(r),
        cond,
        loc: ctx.loc.clone(),
    });
}

const TCP_CONN_ACTIONS: &str = "'accept', 'reject', 'capture', 'expect-proxy', 'expect-netscaler-cip', 'track-sc0' ... 'track-sc2', 'sc-inc-gpc(*)', 'sc-inc-gpc0(*)', 'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', 'set-dst', 'set-dst-port', 'set-mark', 'set-src', 'set-src-port', 'set-tos', 'silent-drop'";

const TCP_CONTENT_ACTIONS: &str = "'accept', 'reject', 'capture', 'do-resolve(*)', 'set-dst(*)', 'set-dst-port(*)', 'set-log-level', 'set-nice', 'set-priority-class', 'set-priority-offset', 'set-src(*)', 'set-src-port(*)', 'set-mark', 'set-tos', 'send-spoe-group', 'switch-mode', 'use-service', 'track-sc0' ... 'track-sc2', 'sc-inc-gpc(*)', 'sc-inc-gpc0(*)', 'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', 'silent-drop'";

pub fn p_tcp_request(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if refuse_in_defaults(ctx, p, "tcp-request") {
        return;
    }
    let sub = a.get(1).map(String::as_str).unwrap_or("");
    let kind = match sub {
        "inspect-delay" => {
            let Some(v) = a.get(2) else {
                ctx.alert(format!(
                    "'tcp-request inspect-delay' expects a positive delay in milliseconds, in {} '{}'",
                    ptype(p),
                    p.name
                ));
                return;
            };
            match crate::config::values::parse_time_ms(v) {
                Ok(ms) => p.inspect_delay = Some(Located::new(ms, ctx.loc.clone())),
                Err(_) => ctx.alert(format!(
                    "'tcp-request inspect-delay' expects a positive delay in milliseconds, in {} '{}'",
                    ptype(p),
                    p.name
                )),
            }
            return;
        }
        "connection" => TcpRuleKind::Connection,
        "session" => TcpRuleKind::Session,
        "content" => TcpRuleKind::Content,
        _ => {
            ctx.alert(format!(
                "'tcp-request' expects 'inspect-delay', 'connection', or 'content' in {} '{}' (got '{sub}')",
                ptype(p),
                p.name
            ));
            return;
        }
    };
    let act = a.get(2).map(String::as_str).unwrap_or("");
    let (args, c) = split_cond(a.get(3..).unwrap_or(&[]));
    let rule_prefix = format!(
        "'tcp-request {sub} {act}' : error detected in {} '{}' while parsing '{act}' rule",
        ptype(p),
        p.name
    );
    // A word left between the action's arguments and the condition.
    let only_conditions = |ctx: &mut LineCtx, w: &str| {
        ctx.alert(format!(
            "'tcp-request {sub} {act}' only accepts 'if' or 'unless', in {} '{}' (got '{w}')",
            ptype(p),
            p.name
        ));
    };
    let action = match act {
        "accept" => TcpAction::Accept,
        "reject" => TcpAction::Reject,
        "set-src" | "set-src-port" => {
            let Some(e) = args.first() else {
                ctx.alert(format!("{rule_prefix} : missing fetch method."));
                return;
            };
            let Some(expr) = rule_expr(ctx, &rule_prefix, e) else {
                return;
            };
            if let Some(w) = args.get(1) {
                only_conditions(ctx, w);
                return;
            }
            TcpAction::SetSrc {
                expr,
                port_only: act == "set-src-port",
            }
        }
        _ if super::stick::is_stk_action(act) => {
            let rule = format!("tcp-request {sub}");
            let at_l4 = kind != TcpRuleKind::Content;
            match super::stick::parse_stk_action(ctx, &rule_prefix, &rule, act, args, at_l4) {
                None => return,
                Some(Err(w)) => {
                    only_conditions(ctx, &w);
                    return;
                }
                Some(Ok(a)) => TcpAction::Stk(a),
            }
        }
        _ => {
            let list = if kind == TcpRuleKind::Content {
                TCP_CONTENT_ACTIONS
            } else {
                TCP_CONN_ACTIONS
            };
            let known = known_action(list, act)
                || (act.starts_with("track-sc") && act.len() == 9)
                || (kind != TcpRuleKind::Connection && known_action(TCP_CONN_ACTIONS, act));
            if known {
                ctx.unsupported_arg(&format!("tcp-request {sub}"), act);
            } else {
                ctx.alert(format!(
                    "'tcp-request {sub}' expects {list} in {} '{}' (got '{act}').\n",
                    ptype(p),
                    p.name
                ));
            }
            return;
        }
    };
    let own_args = matches!(action, TcpAction::Stk(_) | TcpAction::SetSrc { .. });
    if let (false, Some(w)) = (own_args, args.first()) {
        only_conditions(ctx, w);
        return;
    }
    let prefix = format!(
        "'tcp-request {sub} {act}' : error detected in {} '{}' while parsing '{}' condition",
        ptype(p),
        p.name,
        c.map(|x| if x.0 { "unless" } else { "if" }).unwrap_or("if")
    );
    let Ok(cond) = rule_cond(ctx, p, c, &mut |ctx, e| report(ctx, &prefix, e, false)) else {
        return;
    };
    let w = match kind {
        TcpRuleKind::Connection => Where::TcpConn,
        TcpRuleKind::Session => Where::TcpSess,
        TcpRuleKind::Content => Where::TcpCont,
    };
    warn_misplaced(ctx, p, w, "tcp-request");
    if let Some(c) = &cond {
        warn_never_match(ctx, p, w, c);
    }
    p.tcp_request.push(Rule {
        action: (kind, action),
        cond,
        loc: ctx.loc.clone(),
    });
}
