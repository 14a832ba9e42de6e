//! `server` and `default-server` lines and their options.

use super::{DocRow, LineCtx, Status};
use crate::config::ir::*;
use crate::config::values::{AddrError, PortSpec, parse_addr, parse_time_ms, parse_uint};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use Status::{Implemented as I, NoEffect as N, Unsupported as U};

/// (name, number of argument words, status). `no-X` forms of boolean options are accepted too.
pub static SERVER_OPTIONS: &[(&str, usize, Status)] = &[
    ("addr", 1, I),
    ("agent-addr", 1, U),
    ("agent-check", 0, U),
    ("agent-inter", 1, U),
    ("agent-port", 1, U),
    ("agent-send", 1, U),
    ("allow-0rtt", 0, U),
    ("alpn", 1, U),
    ("backup", 0, I),
    ("ca-file", 1, U),
    ("check", 0, I),
    ("check-alpn", 1, U),
    ("check-proto", 1, U),
    ("check-send-proxy", 0, I),
    ("check-sni", 1, U),
    ("check-ssl", 0, U),
    ("check-via-socks4", 0, U),
    ("ciphers", 1, U),
    ("ciphersuites", 1, U),
    ("cookie", 1, I),
    ("crl-file", 1, U),
    ("crt", 1, U),
    ("disabled", 0, I),
    ("downinter", 1, I),
    ("enabled", 0, I),
    ("error-limit", 1, U),
    ("fall", 1, I),
    ("fastinter", 1, I),
    ("force-sslv3", 0, U),
    ("force-tlsv10", 0, U),
    ("force-tlsv11", 0, U),
    ("force-tlsv12", 0, U),
    ("force-tlsv13", 0, U),
    ("id", 1, I),
    ("init-addr", 1, U),
    ("inter", 1, I),
    ("log-proto", 1, U),
    ("maxconn", 1, I),
    ("maxqueue", 1, I),
    (
        "max-reuse",
        1,
        N(
            "as in HAProxy 2.6 with HTTP/1 servers, which applies it to HTTP/2 server connections only (measured; runtime_reuse compares the reuse patterns)",
        ),
    ),
    ("minconn", 1, I),
    ("namespace", 1, U),
    ("no-ssl-reuse", 0, U),
    ("no-sslv3", 0, U),
    ("no-tls-tickets", 0, U),
    ("no-tlsv10", 0, U),
    ("no-tlsv11", 0, U),
    ("no-tlsv12", 0, U),
    ("no-tlsv13", 0, U),
    ("no-verifyhost", 0, U),
    ("non-stick", 0, U),
    ("npn", 1, U),
    ("observe", 1, U),
    ("on-error", 1, U),
    ("on-marked-down", 1, I),
    ("on-marked-up", 1, U),
    ("pool-low-conn", 1, I),
    ("pool-max-conn", 1, I),
    ("pool-purge-delay", 1, I),
    ("port", 1, I),
    ("proto", 1, U),
    ("proxy-v2-options", 1, U),
    ("redir", 1, U),
    ("resolve-net", 1, U),
    ("resolve-opts", 1, U),
    ("resolve-prefer", 1, U),
    ("resolvers", 1, U),
    ("rise", 1, I),
    ("send-proxy", 0, U),
    ("send-proxy-v2", 0, U),
    ("send-proxy-v2-ssl", 0, U),
    ("send-proxy-v2-ssl-cn", 0, U),
    ("set-proxy-v2-tlv-fmt", 1, U),
    ("shard", 1, U),
    ("slowstart", 1, U),
    ("sni", 1, U),
    ("socks4", 1, U),
    ("source", 1, I),
    ("ssl", 0, U),
    ("ssl-max-ver", 1, U),
    ("ssl-min-ver", 1, U),
    ("ssl-reuse", 0, U),
    ("stick", 0, U),
    ("tcp-ut", 1, N("a TCP tuning knob")),
    ("tfo", 0, N("a TCP tuning knob")),
    ("tls-tickets", 0, U),
    ("track", 1, U),
    ("verify", 1, U),
    ("verifyhost", 1, U),
    ("weight", 1, I),
    ("ws", 1, U),
];

/// Boolean options whose `no-` form HAProxy accepts on server lines.
const NEGATABLE: &[&str] = &[
    "backup",
    "check",
    "send-proxy",
    "ssl",
    "agent-check",
    "check-ssl",
    "tfo",
];

pub fn p_server(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if a.len() < 3 || a[1].is_empty() || a[2].is_empty() {
        ctx.alert_bare("'server' expects <name> and <addr>[:<port>] as arguments.");
        return;
    }
    let name = a[1].clone();
    let who = format!("'server {}/{}'", p.name, name);
    let target = match server_target(&a[2]) {
        Ok(t) => t,
        Err(e) => {
            match e {
                AddrError::Port(port) => ctx.alert_bare(format!("{who} : invalid port '{port}'")),
                AddrError::Unsupported(what) => ctx.alert_bare(format!(
                    "{who} : address '{}': {what} is valid for HAProxy 2.6 but is not supported by rhaproxy yet.",
                    a[2]
                )),
                AddrError::Invalid(h) | AddrError::Hostname(h) => {
                    ctx.alert_bare(format!("{who} : could not resolve address '{h}'."));
                    ctx.diags.alert(None, "Failed to initialize server(s) addr.");
                }
                AddrError::MissingPort => ctx.alert_bare(format!("{who} : missing port in '{}'", a[2])),
            }
            return;
        }
    };
    let mut params = p.default_server.clone();
    let mut id = None;
    if !apply_options(ctx, &who, &mut params, &mut id, &a[3..]) {
        return;
    }
    if let Some(id) = id {
        if let Some(prev) = p.servers.iter().find(|s| s.id == Some(id)) {
            let (pl, pn) = (prev.loc.clone(), prev.name.clone());
            ctx.alert_bare(format!(
                "{who} : 'id' : custom id {id} already used at {pl} ('server {pn}')."
            ));
            return;
        }
    }
    p.servers.push(Server {
        name,
        loc: ctx.loc.clone(),
        addr_text: a[2].clone(),
        target,
        id,
        puid: 0,
        params,
    });
}

pub fn p_default_server(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let who = format!("'default-server {}'", p.name);
    let mut params = p.default_server.clone();
    let mut id = None;
    if apply_options(ctx, &who, &mut params, &mut id, &a[1..]) {
        p.default_server = params;
    }
}

fn server_target(text: &str) -> Result<ServerTarget, AddrError> {
    // `ADDR:` with an empty port means "the client's destination port", as without a port.
    let text = text
        .strip_suffix(':')
        .filter(|t| !t.ends_with(':'))
        .unwrap_or(text);
    match parse_addr(text, true) {
        Ok(ap) => {
            let ip = ap.ip;
            let unspecified = ip.is_none_or(|i| i.is_unspecified());
            match (unspecified, ap.port) {
                (true, Some(PortSpec::Range(p, _))) if p > 0 => {
                    Ok(ServerTarget::Intercept { port: Some(p) })
                }
                (true, _) => Ok(ServerTarget::Intercept { port: None }),
                (false, Some(PortSpec::Range(p, _))) if p > 0 => {
                    Ok(ServerTarget::Addr(SocketAddr::new(ip.unwrap(), p)))
                }
                (false, Some(PortSpec::Range(_, _))) | (false, None) => {
                    Ok(ServerTarget::AddrPortFromClient(ip.unwrap(), 0))
                }
                (false, Some(PortSpec::Offset(o))) => {
                    Ok(ServerTarget::AddrPortFromClient(ip.unwrap(), o))
                }
            }
        }
        Err(AddrError::Hostname(h)) => {
            // Like HAProxy (libc resolution at start), resolve host names now.
            let port_text = text.rsplit_once(':').map(|(_, p)| p).unwrap_or("0");
            let port: u16 = port_text.parse().unwrap_or(0);
            match (h.as_str(), port).to_socket_addrs() {
                Ok(mut it) => match it.next() {
                    Some(sa) if port > 0 => Ok(ServerTarget::Addr(sa)),
                    Some(sa) => Ok(ServerTarget::AddrPortFromClient(sa.ip(), 0)),
                    None => Err(AddrError::Hostname(h)),
                },
                Err(_) => Err(AddrError::Hostname(h)),
            }
        }
        Err(e) => Err(e),
    }
}

fn apply_options(
    ctx: &mut LineCtx,
    who: &str,
    sp: &mut ServerParams,
    id: &mut Option<u32>,
    a: &[String],
) -> bool {
    let mut i = 0;
    while i < a.len() {
        let word = a[i].as_str();
        let (name, negated) = match word.strip_prefix("no-") {
            Some(base) if NEGATABLE.contains(&base) => (base, true),
            _ => (word, false),
        };
        let Some((_, nargs, status)) = SERVER_OPTIONS.iter().find(|(n, _, _)| *n == name) else {
            let dym = super::did_you_mean(word, SERVER_OPTIONS.iter().map(|(n, _, _)| *n));
            if dym.is_empty() {
                ctx.alert_bare(format!("{who} : unknown keyword '{word}'."));
            } else {
                ctx.alert_bare(format!("{who} : unknown keyword '{word}'{dym}"));
            }
            return false;
        };
        let nargs = if name == "source" {
            source_span(&a[i..])
        } else {
            *nargs
        };
        let arg = a.get(i + 1).map(String::as_str).unwrap_or("");
        if nargs >= 1 && arg.is_empty() {
            if matches!(name, "inter" | "fastinter" | "downinter") {
                ctx.alert_bare(format!("{who} : '{name}' expects a delay as argument.."));
            } else if name == "cookie" {
                ctx.alert_bare(format!("{who} : 'cookie' expects <value> as argument.."));
            } else if name == "on-marked-down" {
                ctx.alert_bare(format!(
                    "{who} : 'on-marked-down' expects 'shutdown-sessions' but got ''."
                ));
            } else {
                ctx.alert_bare(format!("{who} : '{name}' expects an argument."));
            }
            return false;
        }
        if *status == Status::Unsupported && !negated {
            ctx.alert_bare(format!(
                "{who} : '{name}' is a valid HAProxy 2.6 server option but is not supported by rhaproxy yet."
            ));
            return false;
        }
        let delay = |ctx: &mut LineCtx| -> Option<u64> {
            match parse_time_ms(arg) {
                Ok(v) if v > 0 => Some(v),
                Ok(_) => {
                    ctx.alert_bare(format!("{who} : '{name}' has to be > 0."));
                    None
                }
                Err(c) => {
                    ctx.alert_bare(format!(
                        "{who} : unexpected character '{c}' in '{name}' argument of server {}.",
                        who.trim_matches('\'')
                    ));
                    None
                }
            }
        };
        let count = || {
            arg.bytes()
                .take_while(u8::is_ascii_digit)
                .fold(0u32, |a, b| {
                    a.saturating_mul(10).saturating_add((b - b'0') as u32)
                })
        };
        match name {
            "backup" => sp.backup = !negated,
            "check" => sp.check = !negated,
            "check-send-proxy" => sp.check_send_proxy = true,
            "disabled" => sp.disabled = true,
            "enabled" => sp.disabled = false,
            "weight" => {
                let w = count();
                if w > 256 {
                    ctx.alert_bare(format!(
                        "{who} : weight of server {} is not within 0 and 256 ({w})..",
                        who.rsplit('/').next().unwrap_or("").trim_matches('\'')
                    ));
                    return false;
                }
                sp.weight = w;
            }
            "id" => match parse_uint(arg) {
                Some(v) if v > 0 && v <= i32::MAX as u64 => *id = Some(v as u32),
                _ => {
                    ctx.alert_bare(format!("{who} : 'id' : custom id has to be > 0."));
                    return false;
                }
            },
            "maxconn" => sp.maxconn = Some(count()),
            "cookie" => sp.cookie = Some(arg.to_string()),
            "on-marked-down" => {
                if arg != "shutdown-sessions" {
                    ctx.alert_bare(format!(
                        "{who} : 'on-marked-down' expects 'shutdown-sessions' but got '{arg}'."
                    ));
                    return false;
                }
                sp.on_marked_down_shutdown = true;
            }
            "maxqueue" => sp.maxqueue = Some(count()),
            "minconn" => sp.minconn = Some(count()),
            // Read as C's atoi (HAProxy accepts `abc` as 0; measured).
            "pool-max-conn" => {
                let v = atoi(arg);
                if v < -1 {
                    ctx.alert_bare(format!("{who} : 'pool-max-conn' must be >= -1."));
                    return false;
                }
                sp.pool_max_conn = v;
            }
            // A negative value behaves as 0 (measured).
            "pool-low-conn" => sp.pool_low_conn = atoi(arg).clamp(0, u32::MAX as i64) as u32,
            "pool-purge-delay" => match parse_time_ms(arg) {
                Ok(v) => sp.pool_purge_delay = v,
                Err(c) => {
                    ctx.alert_bare(format!(
                        "{who} : unexpected character '{c}' in argument to <pool-purge-delay>.."
                    ));
                    return false;
                }
            },
            "rise" | "fall" => {
                let v = count();
                if v == 0 {
                    ctx.alert_bare(format!("{who} : '{name}' has to be > 0."));
                    return false;
                }
                if name == "rise" {
                    sp.rise = v
                } else {
                    sp.fall = v
                }
            }
            "inter" | "fastinter" | "downinter" => {
                let Some(v) = delay(ctx) else { return false };
                match name {
                    "inter" => sp.inter = v,
                    "fastinter" => sp.fastinter = Some(v),
                    _ => sp.downinter = Some(v),
                }
            }
            "port" => match parse_uint(arg) {
                Some(v) if v > 0 && v <= 65535 => sp.check_port = Some(v as u16),
                _ => {
                    ctx.alert_bare(format!("{who} : invalid port '{arg}'"));
                    return false;
                }
            },
            "addr" => match arg.parse::<IpAddr>() {
                Ok(ip) => sp.check_addr = Some(ip),
                Err(_) => {
                    ctx.alert_bare(format!("{who} : invalid address '{arg}'"));
                    return false;
                }
            },
            "source" => {
                let words: Vec<String> = a[i..i + 1 + nargs].to_vec();
                // HAProxy nests the source parser's message under the server's, indented.
                let mut inner = crate::diag::Diags::captured();
                let mut ictx = LineCtx {
                    diags: &mut inner,
                    loc: ctx.loc.clone(),
                    negated: false,
                    defaulted: false,
                    abort: false,
                    unsupported: 0,
                };
                let parsed = super::proxy::parse_source(&mut ictx, &words, true);
                let prefix = format!("parsing [{}] : ", ctx.loc);
                for m in &inner.messages {
                    let msg = m.text.strip_prefix(&prefix).unwrap_or(&m.text);
                    let body: Vec<String> = msg.split('\n').map(|l| format!("  {l}")).collect();
                    ctx.alert_bare(format!("{who} : \n{}\n.", body.join("\n")));
                }
                match parsed {
                    Some(s) => sp.source = Some(Located::new(s, ctx.loc.clone())),
                    None => return false,
                }
            }
            _ => {}
        }
        i += 1 + nargs;
    }
    true
}

/// C's `atoi` as HAProxy's server keywords read their numbers (an `int`).
fn atoi(s: &str) -> i64 {
    let v = crate::config::values::atoi(s);
    v.signum() * v.abs().min(i32::MAX as i64)
}

/// How many words after `source` belong to it (its address plus `usesrc X` / `interface X`).
fn source_span(a: &[String]) -> usize {
    let mut n = 1;
    while let Some(w) = a.get(n + 1) {
        if w == "usesrc" || w == "interface" {
            n += 2;
        } else {
            break;
        }
    }
    // A trailing `usesrc`/`interface` without its value: its parser reports the missing word.
    n.min(a.len().saturating_sub(1))
}

pub fn doc_rows() -> Vec<DocRow> {
    SERVER_OPTIONS
        .iter()
        .map(|(n, _, s)| DocRow {
            section: "server options",
            keyword: n.to_string(),
            where_: "server, default-server".into(),
            status: *s,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::diag::Diags;

    /// Found by the config fuzzer: a server `source` ending in `interface` read past the line.
    #[test]
    fn server_source_with_trailing_keyword_is_an_error_not_a_panic() {
        for line in [
            "server s1 127.0.0.1:80 source 0.0.0.0 usesrc clientip interface",
            "server s1 127.0.0.1:80 source 0.0.0.0 usesrc",
            "server s1 127.0.0.1:80 source",
        ] {
            let text = format!("listen l\n    bind 127.0.0.1:8000\n    {line}\n");
            let mut d = Diags::captured();
            let _ = crate::config::parse_str("t.cfg", &text, &mut d);
            assert!(d.fatal, "{line}: expected an error");
        }
    }
}
