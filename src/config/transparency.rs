//! rhaproxy's own checks for transparent (TPROXY) deployments. HAProxy 2.6 accepts all of these
//! at `-c` time and then fails at start or, worse, hangs traffic; rhaproxy refuses them with the
//! fix in the message. docs/compatibility.md lists them as deliberate differences.

use crate::config::ir::*;
use crate::diag::Diags;
use std::net::IpAddr;

fn describe_source(s: &Source) -> String {
    let u = match &s.usesrc {
        None => String::new(),
        Some(UseSrc::Client) => " usesrc client".into(),
        Some(UseSrc::ClientIp) => " usesrc clientip".into(),
        Some(UseSrc::Addr(a, p)) => format!(
            " usesrc {a}{}",
            if *p > 0 {
                format!(":{p}")
            } else {
                String::new()
            }
        ),
        Some(UseSrc::HdrIp { header, .. }) => format!(" usesrc hdr_ip({header})"),
    };
    format!("source {}{u}", s.addr)
}

fn where_set(p: &Proxy, loc: &Loc, cfg: &Config) -> String {
    match cfg.defaults.iter().find(|d| {
        d.loc.file == loc.file
            && d.loc.line <= loc.line
            && Some(&d.name) == p.defaults_from.as_ref().map(|x| &x.value)
    }) {
        Some(d) if loc.line < p.loc.line || loc.file != p.loc.file => {
            if d.name.is_empty() {
                format!("at {loc}, inherited from the defaults section at {}", d.loc)
            } else {
                format!("at {loc}, inherited from defaults section '{}'", d.name)
            }
        }
        _ => format!("at {loc}"),
    }
}

fn inherited(p: &Proxy, loc: &Loc) -> bool {
    loc.file != p.loc.file || loc.line < p.loc.line
}

pub fn check(cfg: &Config, diags: &mut Diags) {
    check_server_close(cfg, diags);
    check_privileges(cfg, diags);
    check_families(cfg, diags);
}

/// `option http-server-close` closes the server connection after every response, so each request
/// opens a new connection bound to the client's address; the previous one sits in TIME_WAIT on
/// the same address (and, with `usesrc client`, the same port), and new connects fail or stall.
fn check_server_close(cfg: &Config, diags: &mut Diags) {
    for be in cfg
        .proxies
        .iter()
        .filter(|p| p.cap().contains(Cap::BE) && !p.disabled)
    {
        let Some(src) = be.uses_usesrc() else {
            continue;
        };
        if be.mode.value != Mode::Http {
            continue;
        }
        let src_desc = format!("'{}' at {}", describe_source(&src.value), src.loc);
        // The backend's own mode.
        if let Some(cm) = &be.conn_mode {
            if cm.value == ConnMode::ServerClose {
                let fix = if inherited(be, &cm.loc) {
                    format!(
                        "add 'no option http-server-close' to {} '{}', or remove the option from the defaults section ({})",
                        be.kind.keyword(),
                        be.name,
                        cm.loc
                    )
                } else {
                    format!(
                        "remove 'option http-server-close' from {} '{}' ({})",
                        be.kind.keyword(),
                        be.name,
                        cm.loc
                    )
                };
                diags.alert(
                    Some((&cm.loc.file, cm.loc.line)),
                    format!(
                        "parsing [{}] : {} '{}' spoofs the client address with {src_desc}, but 'option http-server-close' is in effect for it ({}): every request would open a new server connection from the client's address while the previous one is still in TIME_WAIT. Fix: {fix}. (rhaproxy rejects this; HAProxy 2.6 accepts it.)",
                        cm.loc,
                        be.kind.keyword(),
                        be.name,
                        where_set(be, &cm.loc, cfg),
                    ),
                );
            }
        }
        // Frontends routing to it: the more restrictive mode of the two applies.
        for fe in cfg.proxies.iter().filter(|p| {
            p.cap().contains(Cap::FE)
                && p.kind == ProxyKind::Frontend
                && !p.disabled
                && p.mode.value == Mode::Http
                && (p
                    .default_backend
                    .as_ref()
                    .is_some_and(|d| d.value == be.name)
                    || p.use_backends.iter().any(|u| u.backend == be.name))
        }) {
            if let Some(cm) = &fe.conn_mode {
                if cm.value == ConnMode::ServerClose {
                    let fix = if inherited(fe, &cm.loc) {
                        format!(
                            "add 'no option http-server-close' to frontend '{}', or remove the option from the defaults section ({})",
                            fe.name, cm.loc
                        )
                    } else {
                        format!(
                            "remove 'option http-server-close' from frontend '{}' ({})",
                            fe.name, cm.loc
                        )
                    };
                    diags.alert(
                        Some((&cm.loc.file, cm.loc.line)),
                        format!(
                            "parsing [{}] : frontend '{}' routes to {} '{}', which spoofs the client address with {src_desc}, but 'option http-server-close' is in effect on the frontend ({}) and HAProxy applies the more restrictive mode of both: every request would open a new server connection from the client's address while the previous one is still in TIME_WAIT. Fix: {fix}. (rhaproxy rejects this; HAProxy 2.6 accepts it.)",
                            cm.loc,
                            fe.name,
                            be.kind.keyword(),
                            be.name,
                            where_set(fe, &cm.loc, cfg),
                        ),
                    );
                }
            }
        }
    }
}

/// Dropping root loses CAP_NET_ADMIN, which IP_TRANSPARENT needs on every spoofed connect and
/// on transparent listeners. HAProxy 2.6 only notices at start; `setcap` (as in HAProxy 2.9+)
/// keeps the capability and lifts the rule.
fn check_privileges(cfg: &Config, diags: &mut Diags) {
    let g = &cfg.global;
    let drop: Option<(String, &Loc)> = g
        .user
        .as_ref()
        .map(|u| (format!("user {}", u.value), &u.loc))
        .or_else(|| g.uid.as_ref().map(|u| (format!("uid {}", u.value), &u.loc)));
    let Some((what, uloc)) = drop else { return };
    if g.setcap.as_ref().is_some_and(|c| {
        c.value
            .iter()
            .any(|x| x.contains("cap_net_admin") || x.contains("cap_net_raw"))
    }) {
        return;
    }
    let mut needs: Vec<String> = Vec::new();
    for p in cfg.proxies.iter().filter(|p| !p.disabled) {
        if let Some(s) = p.uses_usesrc() {
            needs.push(format!(
                "'{}' in {} '{}' at {}",
                describe_source(&s.value),
                p.kind.keyword(),
                p.name,
                s.loc
            ));
        }
        for b in p.binds.iter().filter(|b| b.transparent) {
            needs.push(format!(
                "'bind ... transparent' in {} '{}' at {}",
                p.kind.keyword(),
                p.name,
                b.loc
            ));
        }
    }
    if needs.is_empty() {
        return;
    }
    diags.alert(
        Some((&uloc.file, uloc.line)),
        format!(
            "parsing [{uloc}] : global '{what}' drops root, but {} need{} CAP_NET_ADMIN after the switch (IP_TRANSPARENT). Fix: add 'setcap cap_net_admin' to the global section to keep that capability, or remove '{what}' and run as root. (HAProxy 2.6 accepts this at -c time and fails at start.)",
            needs.join(", "),
            if needs.len() == 1 { "s" } else { "" }
        ),
    );
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// The transparency socket option follows the `source` address family, but the address bound is
/// the client's or the `usesrc` one: all must match the server's family.
fn check_families(cfg: &Config, diags: &mut Diags) {
    for p in cfg.proxies.iter().filter(|p| p.cap().contains(Cap::BE)) {
        for s in &p.servers {
            let Some(src) = p.effective_source(s) else {
                continue;
            };
            let Some(us) = &src.value.usesrc else {
                continue;
            };
            let sip = match &s.target {
                ServerTarget::Addr(a) => a.ip(),
                ServerTarget::AddrPortFromClient(ip, _) => *ip,
                ServerTarget::Intercept { .. } => continue,
            };
            let bad = match us {
                UseSrc::Addr(a, _) if a.is_ipv4() != sip.is_ipv4() => {
                    Some(format!("usesrc address {a} is {}", family(a)))
                }
                _ if src.value.addr.is_ipv4() != sip.is_ipv4() => Some(format!(
                    "source address {} is {}",
                    src.value.addr,
                    family(&src.value.addr)
                )),
                _ => None,
            };
            if let Some(why) = bad {
                let fix = if sip.is_ipv4() {
                    "source 0.0.0.0 usesrc clientip"
                } else {
                    "source [::] usesrc clientip"
                };
                diags.alert(
                    Some((&s.loc.file, s.loc.line)),
                    format!(
                        "parsing [{}] : server '{}/{}' is {} but its {} (from {}): a spoofed connection cannot change address family. Fix: use '{fix}' for this server.",
                        s.loc,
                        p.name,
                        s.name,
                        family(&sip),
                        why,
                        src.loc
                    ),
                );
            }
        }
    }
}
