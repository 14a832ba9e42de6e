//! `bind` addresses and options.

use super::proxy::addr_error;
use super::{DocRow, LineCtx, Status};
use crate::config::ir::{Bind, ListenSpec, ProxyKind};
use crate::config::values::{PortSpec, any_addr, parse_addr, parse_uint};
use std::net::SocketAddr;

use Status::{Implemented as I, NoEffect as N, Unsupported as U};

/// (name, number of argument words, status)
pub static BIND_OPTIONS: &[(&str, usize, Status)] = &[
    ("accept-netscaler-cip", 1, U),
    ("accept-proxy", 0, U),
    ("allow-0rtt", 0, U),
    ("alpn", 1, U),
    ("backlog", 1, I),
    ("ca-file", 1, U),
    ("ca-ignore-err", 1, U),
    ("ca-sign-file", 1, U),
    ("ca-sign-pass", 1, U),
    ("ca-verify-file", 1, U),
    ("ciphers", 1, U),
    ("ciphersuites", 1, U),
    ("crl-file", 1, U),
    ("crt", 1, U),
    ("crt-ignore-err", 1, U),
    ("crt-list", 1, U),
    ("curves", 1, U),
    ("defer-accept", 0, I),
    ("ecdhe", 1, U),
    ("expose-fd", 1, U),
    ("force-sslv3", 0, U),
    ("force-tlsv10", 0, U),
    ("force-tlsv11", 0, U),
    ("force-tlsv12", 0, U),
    ("force-tlsv13", 0, U),
    ("generate-certificates", 0, U),
    ("gid", 1, U),
    ("group", 1, U),
    ("id", 1, I),
    ("interface", 1, I),
    ("level", 1, U),
    ("maxconn", 1, I),
    ("mode", 1, U),
    ("mss", 1, N("a TCP tuning knob")),
    ("name", 1, I),
    ("namespace", 1, U),
    ("nice", 1, N("a scheduling hint")),
    ("no-ca-names", 0, U),
    ("no-sslv3", 0, U),
    ("no-tls-tickets", 0, U),
    ("no-tlsv10", 0, U),
    ("no-tlsv11", 0, U),
    ("no-tlsv12", 0, U),
    ("no-tlsv13", 0, U),
    ("npn", 1, U),
    ("prefer-client-ciphers", 0, U),
    ("process", 1, N("deprecated thread binding")),
    ("proto", 1, U),
    ("quic-force-retry", 0, U),
    ("severity-output", 1, U),
    ("shards", 1, N("a thread-distribution hint")),
    ("ssl", 0, U),
    ("ssl-max-ver", 1, U),
    ("ssl-min-ver", 1, U),
    ("strict-sni", 0, U),
    ("tcp-ut", 1, N("a TCP tuning knob")),
    ("tfo", 0, N("a TCP tuning knob")),
    ("thread", 1, N("a thread-binding hint")),
    ("tls-ticket-keys", 1, U),
    ("transparent", 0, I),
    ("uid", 1, U),
    ("user", 1, U),
    ("v4v6", 0, I),
    ("v6only", 0, I),
    ("verify", 1, U),
];

pub fn parse_bind(ctx: &mut LineCtx, kind: &ProxyKind, a: &[String]) -> Option<Bind> {
    let section = kind.keyword();
    let Some(first) = a.first().filter(|s| !s.is_empty()) else {
        ctx.alert(
            "'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}... as arguments.",
        );
        return None;
    };
    let mut bind = Bind {
        loc: ctx.loc.clone(),
        ..Default::default()
    };
    let mut ok = true;
    for text in first.split(',') {
        match parse_addr(text, true) {
            Ok(ap) => {
                let (lo, hi) = match ap.port {
                    Some(PortSpec::Range(l, h)) => (l, h),
                    Some(PortSpec::Offset(_)) | None => {
                        ctx.alert(format!("'bind' : missing port specification in '{text}'"));
                        ok = false;
                        continue;
                    }
                };
                if lo == 0 || hi < lo {
                    ctx.alert(format!(
                        "'bind' : invalid port '{}'",
                        if lo == 0 { lo } else { hi }
                    ));
                    ok = false;
                    continue;
                }
                let ip = ap.ip.unwrap_or_else(|| any_addr(ap.family));
                bind.addrs.push(ListenSpec {
                    text: text.to_string(),
                    addr: SocketAddr::new(ip, lo),
                    port_high: hi,
                });
            }
            Err(e) => {
                addr_error(ctx, "'bind'", text, e);
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    let prefix = format!("'bind {first}' in section '{section}'");
    let mut i = 1;
    while i < a.len() {
        let name = a[i].as_str();
        let Some((_, nargs, status)) = BIND_OPTIONS.iter().find(|(n, _, _)| *n == name) else {
            let dym = super::did_you_mean(name, BIND_OPTIONS.iter().map(|(n, _, _)| *n));
            if dym.is_empty() {
                ctx.alert(format!("{prefix}: unknown keyword '{name}'."));
            } else {
                ctx.alert(format!("{prefix}: unknown keyword '{name}'{dym}"));
            }
            return None;
        };
        let arg = a.get(i + 1).map(String::as_str);
        if *nargs == 1 && arg.is_none_or(str::is_empty) {
            ctx.alert(format!("{prefix} : '{name}' : missing value"));
            return None;
        }
        if *status == Status::Unsupported {
            ctx.alert(format!(
                "{prefix} : '{name}' is a valid HAProxy 2.6 bind option but is not supported by rhaproxy yet."
            ));
            return None;
        }
        let num = || {
            arg.and_then(parse_uint)
                .map(|v| v.min(u32::MAX as u64) as u32)
        };
        match name {
            "transparent" => bind.transparent = true,
            "v4v6" => bind.v4v6 = true,
            "v6only" => bind.v6only = true,
            "defer-accept" => bind.defer_accept = true,
            "maxconn" => bind.maxconn = num(),
            "backlog" => bind.backlog = num(),
            "id" => match num() {
                Some(v) if v > 0 => bind.id = Some(v),
                _ => {
                    ctx.alert(format!("{prefix} : 'id' : custom id has to be > 0"));
                    return None;
                }
            },
            "name" => bind.name = arg.map(String::from),
            "interface" => bind.interface = arg.map(String::from),
            _ => {}
        }
        i += 1 + nargs;
    }
    Some(bind)
}

pub fn doc_rows() -> Vec<DocRow> {
    BIND_OPTIONS
        .iter()
        .map(|(n, _, s)| DocRow {
            section: "bind options",
            keyword: n.to_string(),
            where_: "bind lines".into(),
            status: *s,
        })
        .collect()
}
