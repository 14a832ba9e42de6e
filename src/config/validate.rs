//! The validity pass run after all files are parsed, with HAProxy 2.6's post-parse messages,
//! followed by rhaproxy's own transparency rules.

use crate::config::ir::*;
use crate::diag::Diags;

/// What `-c` concludes besides errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// At least one enabled proxy has a listener.
    pub has_listener: bool,
}

const MISSING_TIMEOUTS: &str = "   | While not properly invalid, you will certainly encounter various problems\n   | with such a configuration. To fix this, please ensure that all following\n   | timeouts are set to a non-zero value: 'client', 'connect', 'server'.";

fn proxy_type(p: &Proxy) -> &'static str {
    match p.kind {
        ProxyKind::Frontend => "frontend",
        ProxyKind::Backend => "backend",
        _ => "proxy",
    }
}

fn is_l7_balance(p: &Proxy) -> bool {
    p.balance.as_ref().is_some_and(|b| {
        let n = b.value[0].split('(').next().unwrap_or("");
        matches!(n, "uri" | "url_param" | "hdr")
    })
}

pub fn check(cfg: &mut Config, diags: &mut Diags) -> Verdict {
    check_acl_references(cfg, diags);
    // Backends by name, built once: a lookup per routing rule must not scan every proxy.
    let mut backends: std::collections::HashMap<String, (Mode, Loc)> = Default::default();
    for b in cfg.proxies.iter().filter(|b| b.cap().contains(Cap::BE)) {
        backends
            .entry(b.name.clone())
            .or_insert_with(|| (b.mode.value, b.loc.clone()));
    }
    let mode_of =
        |_cfg: &Config, name: &str| -> Option<(Mode, Loc)> { backends.get(name).cloned() };
    let n = cfg.proxies.len();
    for i in 0..n {
        let p = &cfg.proxies[i];
        if p.disabled {
            continue;
        }
        let is_fe = p.cap().contains(Cap::FE);
        let is_be = p.cap().contains(Cap::BE);
        if is_fe {
            if let Some(db) = &p.default_backend {
                match mode_of(cfg, &db.value) {
                    None => diags.alert(
                        None,
                        format!("Proxy '{}': unable to find required default_backend: '{}'.", p.name, db.value),
                    ),
                    // A TCP frontend may hand over to an HTTP backend (HAProxy upgrades the
                    // stream); only HTTP to TCP is refused.
                    Some((m, bloc)) if m == Mode::Tcp && p.mode.value == Mode::Http => diags.alert(
                        None,
                        format!(
                            "{} frontend '{}' ({}) tries to use incompatible {} backend '{}' ({}) as its default backend (see 'mode').",
                            mode_word(p.mode.value),
                            p.name,
                            p.loc,
                            mode_word(m),
                            db.value,
                            bloc
                        ),
                    ),
                    _ => {}
                }
            }
            for ub in p.use_backends.iter().filter(|u| !u.backend.contains("%[")) {
                match mode_of(cfg, &ub.backend) {
                    None => diags.alert(
                        None,
                        format!("Proxy '{}': unable to find required use_backend: '{}'.", p.name, ub.backend),
                    ),
                    Some((m, bloc)) if m == Mode::Tcp && p.mode.value == Mode::Http => diags.alert(
                        None,
                        format!(
                            "{} frontend '{}' ({}) tries to use incompatible {} backend '{}' ({}) in a 'use_backend' rule (see 'mode').",
                            mode_word(p.mode.value),
                            p.name,
                            p.loc,
                            mode_word(m),
                            ub.backend,
                            bloc
                        ),
                    ),
                    _ => {}
                }
            }
            if p.binds.is_empty() && p.kind == ProxyKind::Frontend {
                diags.warning(
                    None,
                    format!(
                        "frontend '{}' has no 'bind' directive. Please declare it as a backend if this was intended.",
                        p.name
                    ),
                );
            }
        }
        // What a TCP proxy ignores, first (HAProxy's order).
        if p.mode.value != Mode::Http {
            if is_be && p.cookie.is_some() {
                diags.warning(
                    None,
                    format!(
                        "cookie will be ignored for {} '{}' (needs 'mode http').",
                        proxy_type(p),
                        p.name
                    ),
                );
            }
            if is_fe && p.monitor_uri.is_some() {
                diags.warning(
                    None,
                    format!(
                        "monitor-uri will be ignored for {} '{}' (needs 'mode http').",
                        proxy_type(p),
                        p.name
                    ),
                );
            }
            if is_be && is_l7_balance(p) {
                diags.warning(
                    None,
                    format!(
                        "Layer 7 hash not possible for {} '{}' (needs 'mode http'). Falling back to round robin.",
                        proxy_type(p),
                        p.name
                    ),
                );
            }
            if is_fe {
                if let Some(lf) = p.log_format.as_ref().filter(|_| !p.log.is_empty()) {
                    if lf.value == LogFormatChoice::HttpLog {
                        diags.warning(
                            None,
                            format!(
                                "parsing [{}] : 'option httplog' not usable with {} '{}' (needs 'mode http'). Falling back to 'option tcplog'.",
                                lf.loc,
                                proxy_type(p),
                                p.name
                            ),
                        );
                    }
                }
            }
        }
        if is_fe {
            if p.capture_cookie.as_ref().is_some_and(|c| c.value.1 >= 64) {
                diags.warning(
                    None,
                    format!(
                        "truncating capture length to 63 bytes for {} '{}'.",
                        proxy_type(p),
                        p.name
                    ),
                );
            }
            // Formats are compiled once, here, as HAProxy does after parsing.
            let http = p.mode.value == Mode::Http;
            if let Some(Located {
                value: LogFormatChoice::Custom(f),
                loc,
            }) = &p.log_format
            {
                if let Err(e) = crate::log::format::compile(f, http) {
                    diags.alert(
                        Some((&loc.file, loc.line)),
                        e.alert("log-format", &loc.file, loc.line),
                    );
                }
            }
            if let Some(sd) = &p.log_format_sd {
                if let Err(e) = crate::log::format::compile(&sd.value, http) {
                    diags.alert(
                        Some((&sd.loc.file, sd.loc.line)),
                        e.alert("log-format-sd", &sd.loc.file, sd.loc.line),
                    );
                }
            }
        }
        // disable-on-404 needs the HTTP rule set (checked before the timeouts, as HAProxy).
        if p.http_check_disable_on_404 {
            let http_rules = p.check_option.as_ref().map(|o| &o.value)
                == Some(&CheckOption::HttpChk)
                && p.check_rules
                    .as_ref()
                    .is_none_or(|r| r.kind == RulesKind::Http);
            if p.check_option.is_some() && !http_rules {
                diags.warning(
                    None,
                    format!(
                        "'disable-on-404' will be ignored for {} '{}' (requires 'option httpchk').",
                        proxy_type(p),
                        p.name
                    ),
                );
            }
        }
        let t = &p.timeouts;
        let tcp_tunnel = p.mode.value == Mode::Tcp && t.tunnel.is_some();
        let missing = (is_fe && t.client.is_none())
            || (is_be
                && !p.servers.is_empty()
                && (t.connect.is_none() || (t.server.is_none() && !tcp_tunnel)));
        if missing {
            diags.warning(
                None,
                format!(
                    "missing timeouts for {} '{}'.\n{MISSING_TIMEOUTS}",
                    proxy_type(p),
                    p.name
                ),
            );
        }
        if is_fe && p.log_format.is_some() && p.log.is_empty() {
            diags.warning(
                None,
                format!(
                    "log format ignored for {} '{}' since it has no log address.",
                    proxy_type(p),
                    p.name
                ),
            );
        }
        // Rules of the kind the check option does not run are dropped with a warning.
        if let (true, Some(r)) = (is_be, &p.check_rules) {
            let opt = p.check_option.as_ref().map(|o| &o.value);
            let (wanted, kw, opt_name) = match r.kind {
                RulesKind::Tcp => (CheckOption::TcpCheck, "tcp-check", "tcp-check"),
                RulesKind::Http => (CheckOption::HttpChk, "http-check", "httpchk"),
            };
            if !r.rules.is_empty() && opt != Some(&wanted) {
                diags.warning(
                    None,
                    format!(
                        "{} '{}' uses {kw} rules without 'option {opt_name}', so the rules are ignored.",
                        proxy_type(p),
                        p.name
                    ),
                );
            }
        }
        // After the log formats and timeouts, in HAProxy's order.
        if p.kind != ProxyKind::Defaults && p.stats.is_some() && p.mode.value != Mode::Http {
            diags.warning(
                None,
                format!(
                    "'stats' statement ignored for proxy '{}' as it requires HTTP mode.",
                    p.name
                ),
            );
        }
        if p.forwardfor.is_some() && p.mode.value != Mode::Http {
            diags.warning(
                None,
                format!(
                    "'option forwardfor' ignored for {} '{}' as it requires HTTP mode.",
                    proxy_type(p),
                    p.name
                ),
            );
        }
        if p.originalto.is_some() && p.mode.value != Mode::Http {
            diags.warning(
                None,
                format!(
                    "'option originalto' ignored for {} '{}' as it requires HTTP mode.",
                    proxy_type(p),
                    p.name
                ),
            );
        }
        if is_be && p.mode.value != Mode::Http {
            for srv in p.servers.iter().filter(|s| s.params.cookie.is_some()) {
                diags.warning(
                    None,
                    format!(
                        "proxy '{}' : ignoring cookie for server '{}' as HTTP mode is disabled.",
                        p.name, srv.name
                    ),
                );
            }
        }
    }
    for p in cfg.proxies.iter_mut() {
        if p.kind != ProxyKind::Defaults && p.stats.is_some() && p.mode.value != Mode::Http {
            // (warned above)
            p.stats = None;
        }
        // Duplicate server names are found after parsing, as in HAProxy.
        for j in 0..p.servers.len() {
            if let Some(prev) = p.servers[..j].iter().find(|s| s.name == p.servers[j].name) {
                let s = &p.servers[j];
                diags.alert(
                    None,
                    format!(
                        "parsing [{}] : proxy '{}', another server named '{}' was already defined at line {}, please use distinct names.",
                        s.loc, p.name, s.name, prev.loc.line
                    ),
                );
            }
        }
        let ids: Vec<Option<u32>> = p.servers.iter().map(|s| s.id).collect();
        for (s, puid) in p.servers.iter_mut().zip(crate::lb::assign_puids(&ids)) {
            s.puid = puid;
        }
    }
    crate::config::transparency::check(cfg, diags);
    check_peers(cfg, diags);
    Verdict {
        has_listener: cfg
            .proxies
            .iter()
            .any(|p| !p.disabled && !p.binds.is_empty() && p.cap().contains(Cap::FE))
            // A stats socket is a listener too, and so is the local peer of a peers section.
            || !cfg.global.stats_sockets.is_empty()
            || cfg.peers.iter().any(|s| !s.disabled && has_local_peer(s)),
    }
}

static CLI_LOCALPEER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `-L NAME`: this process's peer name, before `localpeer` and the host name.
pub fn set_cli_localpeer(name: &str) {
    let _ = CLI_LOCALPEER.set(name.to_string());
}

fn local_peer_name(g: &Global) -> String {
    CLI_LOCALPEER
        .get()
        .cloned()
        .or_else(|| g.localpeer.as_ref().map(|l| l.value.clone()))
        .unwrap_or_else(crate::log::syslog::system_hostname)
}

fn has_local_peer(s: &PeersSection) -> bool {
    let local = LOCAL_PEER.get().cloned().unwrap_or_default();
    s.peers.iter().any(|p| p.value.0 == local)
}

static LOCAL_PEER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `peers` sections: one without this process among its peers is removed (its tables stay),
/// as HAProxy does; one that has it and another peer would need the peer protocol.
fn check_peers(cfg: &Config, diags: &mut Diags) {
    let local = local_peer_name(&cfg.global);
    let _ = LOCAL_PEER.set(local.clone());
    // HAProxy keeps its peers sections most recent first.
    for s in cfg.peers.iter().rev().filter(|s| !s.disabled) {
        if !s.peers.iter().any(|p| p.value.0 == local) {
            diags.warning(
                None,
                format!(
                    "Removing incomplete section 'peers {}' (no peer named '{local}').",
                    s.name
                ),
            );
            continue;
        }
        for p in s.peers.iter().filter(|p| p.value.0 != local) {
            diags.alert(
                Some((&p.loc.file, p.loc.line)),
                format!(
                    "parsing [{}] : peer '{}' of 'peers {}': synchronising stick tables with another peer is valid in HAProxy 2.6 but is not supported by rhaproxy yet.",
                    p.loc, p.value.0, s.name
                ),
            );
        }
    }
}

/// Copies named ACLs into the conditions, then checks the backends and servers named by
/// `nbsrv()` and `srv_is_up()` (HAProxy resolves these arguments after parsing).
fn check_acl_references(cfg: &mut Config, diags: &mut Diags) {
    for p in cfg.proxies.iter_mut() {
        crate::acl::resolve_proxy(p);
        default_tables(p);
        for ub in p.use_backends.iter_mut() {
            if !ub.backend.contains("%[") || ub.dynamic.is_some() {
                continue;
            }
            match crate::acl::fmt::Fmt::parse(&ub.backend) {
                Ok(f) => ub.dynamic = Some(f),
                Err(crate::acl::AclError::Haproxy(m)) => diags.alert(
                    Some((&ub.loc.file, ub.loc.line)),
                    format!(
                        "Parsing [{}]: failed to parse use_backend rule '{}' : {m}.",
                        ub.loc, ub.backend
                    ),
                ),
                Err(crate::acl::AclError::Unsupported(m)) => diags.alert(
                    Some((&ub.loc.file, ub.loc.line)),
                    format!(
                        "Parsing [{}]: use_backend rule '{}' : {m} is valid for HAProxy 2.6 but is not supported by rhaproxy yet.",
                        ub.loc, ub.backend
                    ),
                ),
            }
        }
    }
    // HTTP proxies never see L6 data: rules reading it get a warning each.
    for p in cfg
        .proxies
        .iter()
        .filter(|p| p.mode.value == Mode::Http && !p.disabled)
    {
        use crate::acl::fetch::Fetch;
        let l6 = |c: &crate::acl::Condition| {
            crate::acl::fetches(c).any(|e| {
                matches!(
                    e.expr.fetch,
                    Fetch::ReqLen
                        | Fetch::ReqPayload(..)
                        | Fetch::ReqSslHelloType
                        | Fetch::ReqSslSni
                )
            })
        };
        let mut locs: Vec<&Loc> = Vec::new();
        locs.extend(
            p.use_backends
                .iter()
                .filter(|u| u.cond.as_ref().is_some_and(l6))
                .map(|u| &u.loc),
        );
        locs.extend(
            p.tcp_request
                .iter()
                .filter(|r| r.action.0 == TcpRuleKind::Content && r.cond.as_ref().is_some_and(l6))
                .map(|r| &r.loc),
        );
        for list in [&p.http_request, &p.redirects, &p.http_response] {
            locs.extend(
                list.iter()
                    .filter(|r| r.cond.as_ref().is_some_and(l6))
                    .map(|r| &r.loc),
            );
        }
        for l in locs {
            diags.warning(
                Some((&l.file, l.line)),
                format!(
                    "Proxy '{}': L6 sample fetches ignored on HTTP proxies (declared at {l}).",
                    p.name
                ),
            );
        }
    }
    // Tables that `stick` rules use keep the server of each entry (HAProxy adds these
    // data types to them).
    let sticky: Vec<String> = cfg
        .proxies
        .iter()
        .flat_map(|p| p.stick_rules.iter())
        .filter_map(|r| r.table.clone())
        .collect();
    for p in cfg.proxies.iter_mut() {
        if let Some(t) = p.stick_table.as_mut().filter(|_| sticky.contains(&p.name)) {
            for d in [StickData::ServerId, StickData::ServerKey] {
                if !t.value.store.iter().any(|s| s.data == d) {
                    t.value.store.push(StickStore {
                        data: d,
                        period_ms: 0,
                        n: 1,
                    });
                }
            }
        }
    }
    let tables: std::collections::HashSet<&str> = cfg
        .proxies
        .iter()
        .filter(|p| p.stick_table.is_some())
        .map(|p| p.name.as_str())
        .chain(
            cfg.peers
                .iter()
                .flat_map(|s| s.tables.iter().map(|t| t.0.as_str())),
        )
        .collect();
    for p in &cfg.proxies {
        for r in &p.stick_rules {
            let t = r.table.as_deref().unwrap_or_default();
            if !tables.contains(t) {
                let what = match r.kind {
                    StickKind::StoreResponse => "store table",
                    _ => "stick-table",
                };
                diags.alert(
                    None,
                    format!("Proxy '{}': unable to find {what} '{t}'.", p.name),
                );
            }
        }
        if let Some(t) = &p.stick_table {
            if let Some(peers) = t
                .value
                .peers
                .as_ref()
                .filter(|n| !cfg.peers.iter().any(|s| &s.name == *n))
            {
                diags.alert(
                    None,
                    format!("Proxy '{}': unable to find sync peers '{peers}'.", p.name),
                );
            }
        }
        let (mut warned_l4, mut warned_delay) = (false, false);
        let fe_http = p.cap().contains(Cap::FE) && p.mode.value == Mode::Http;
        for r in &p.tcp_request {
            let (TcpRuleKind::Content, TcpAction::Stk(StkAction::Track { key, .. })) =
                (&r.action.0, &r.action.1)
            else {
                continue;
            };
            let l4 = key.fetch.needs() == crate::acl::fetch::Needs::L4;
            if l4 && fe_http && !warned_l4 {
                warned_l4 = true;
                diags.warning(None, format!("{} '{}' : a 'tcp-request content track-sc*' rule not depending on request contents for an HTTP frontend should be executed at the session level, using a 'tcp-request session' rule (mandatory to track invalid HTTP requests).", proxy_type(p), p.name));
            }
            if !l4 && p.inspect_delay.is_none() && p.cap().contains(Cap::FE) && !warned_delay {
                warned_delay = true;
                diags.warning(None, format!("{} '{}' : a 'tcp-request content track-sc*' rule explicitly depending on request contents without any 'tcp-request inspect-delay' setting. This means that this rule will randomly find its contents. This can be fixed by setting the tcp-request inspect-delay.", proxy_type(p), p.name));
            }
        }
        for (list, slots, kw) in [
            (&p.http_request, &p.capture_request, "http-request"),
            (&p.http_response, &p.capture_response, "http-response"),
        ] {
            for r in list {
                if let HttpAction::Capture { idx, .. } = &r.action {
                    if *idx >= slots.len() {
                        diags.alert(
                            None,
                            format!(
                                "Proxy '{}': unable to find capture id '{idx}' referenced by {kw} capture rule.",
                                p.name
                            ),
                        );
                    }
                }
            }
        }
        let tcp = p.tcp_request.iter().filter_map(|r| match &r.action.1 {
            TcpAction::Stk(a) => Some(a),
            _ => None,
        });
        let http = p.http_request.iter().filter_map(|r| match &r.action {
            HttpAction::Stk(a) => Some(a),
            _ => None,
        });
        for a in tcp.chain(http) {
            if let StkAction::Track {
                slot,
                table: Some(t),
                ..
            } = a
            {
                if !tables.contains(t.as_str()) {
                    diags.alert(
                        None,
                        format!(
                            "Proxy '{}': unable to find table '{t}' referenced by track-sc{slot}.",
                            p.name
                        ),
                    );
                }
            }
        }
    }
    for p in &cfg.proxies {
        let mut seen = std::collections::HashSet::new();
        let mut msgs: Vec<(Loc, String)> = Vec::new();
        let named = p.acls.values().flat_map(|a| a.exprs.iter());
        let anon = p.conditions().flat_map(|c| {
            c.groups
                .iter()
                .flatten()
                .filter(|t| t.acl.name.is_none())
                .flat_map(|t| t.acl.exprs.iter())
        });
        for e in named.chain(anon) {
            let kw = e.expr.name.as_str();
            let table_missing = crate::acl::stk_fetch::named_table(&e.expr.fetch)
                .filter(|(t, _)| !tables.contains(t));
            let conv_missing = e.expr.convs.iter().find_map(|c| {
                let (n, t) = crate::acl::stk_fetch::conv_table(c)?;
                (!tables.contains(t)).then_some((n, t))
            });
            let msg = match &e.expr.fetch {
                _ if table_missing.is_none() && conv_missing.is_some() => {
                    conv_missing.map(|(n, t)| {
                        format!(
                            "parsing [{}]: unable to find table '{t}' referenced in arg 1 of conversion keyword '{n}' for ACL keyword '{kw}' in proxy '{}'.",
                            e.loc, p.name
                        )
                    })
                }
                _ if table_missing.is_some() => table_missing.map(|(t, pos)| {
                    format!(
                        "parsing [{}]: unable to find table '{t}' referenced in arg {pos} of ACL keyword '{kw}' in proxy '{}'.",
                        e.loc, p.name
                    )
                }),
                crate::acl::fetch::Fetch::NbSrv(None) if !p.cap().contains(Cap::BE) => {
                    Some(format!(
                        "parsing [{}]: proxy '{}', referenced in arg 1 of ACL keyword '{kw}' in proxy '{}', has not backend capability.",
                        e.loc, p.name, p.name
                    ))
                }
                _ => match crate::acl::cond::referenced_proxy(e) {
                    Some((b, srv)) => {
                        let be = cfg
                            .proxies
                            .iter()
                            .find(|x| x.name == b && x.cap().contains(Cap::BE));
                        match (be, srv) {
                            (None, _) => Some(format!(
                                "parsing [{}]: unable to find backend '{b}' referenced in arg 1 of ACL keyword '{kw}' in proxy '{}'.",
                                e.loc, p.name
                            )),
                            (Some(be), Some(s)) if !be.servers.iter().any(|x| x.name == s) => {
                                Some(format!(
                                    "parsing [{}]: unable to find server '{s}' in proxy '{b}', referenced in arg 1 of ACL keyword '{kw}' in proxy '{}'.",
                                    e.loc, p.name
                                ))
                            }
                            _ => None,
                        }
                    }
                    None => None,
                },
            };
            if let Some(m) = msg {
                if seen.insert(m.clone()) {
                    msgs.push((e.loc.clone(), m));
                }
            }
        }
        // HAProxy resolves a proxy's arguments together: several errors make one alert.
        msgs.sort_by(|a, b| a.0.cmp(&b.0));
        match msgs.len() {
            0 => {}
            1 => diags.alert(Some((&msgs[0].0.file, msgs[0].0.line)), msgs[0].1.clone()),
            _ => {
                let mut t = String::from("multiple argument resolution errors:");
                for (_, m) in &msgs {
                    t.push_str("\n        ");
                    t.push_str(m);
                }
                diags.alert(None, t);
            }
        }
    }
}

/// Stick-counter actions and fetches without a table name use their proxy's table.
fn default_tables(p: &mut Proxy) {
    use crate::acl::fetch::Fetch;
    use crate::acl::stk_fetch::StkFrom;
    let name = p.name.clone();
    for r in p.tcp_request.iter_mut() {
        if let TcpAction::Stk(StkAction::Track {
            table: t @ None, ..
        }) = &mut r.action.1
        {
            *t = Some(name.clone());
        }
    }
    for r in p.http_request.iter_mut() {
        if let HttpAction::Stk(StkAction::Track {
            table: t @ None, ..
        }) = &mut r.action
        {
            *t = Some(name.clone());
        }
    }
    for r in p.stick_rules.iter_mut() {
        r.table.get_or_insert_with(|| name.clone());
    }
    let fill_conv = |c: &mut crate::acl::fetch::Conv| match c {
        crate::acl::fetch::Conv::InTable(t @ None)
        | crate::acl::fetch::Conv::Table {
            table: t @ None, ..
        }
        | crate::acl::fetch::Conv::TableTime {
            table: t @ None, ..
        } => *t = Some(name.clone()),
        _ => {}
    };
    let fill = |f: &mut Fetch| match f {
        Fetch::Stk {
            from: StkFrom::Src,
            table: t @ None,
            ..
        } => *t = Some((name.clone(), 1)),
        Fetch::TableCnt(t @ None) | Fetch::TableAvl(t @ None) => *t = Some(name.clone()),
        _ => {}
    };
    for a in p.acls.values_mut() {
        for e in a.exprs.iter_mut() {
            fill(&mut e.expr.fetch);
            e.expr.convs.iter_mut().for_each(fill_conv);
        }
    }
    for c in p.conditions_mut() {
        for t in c.groups.iter_mut().flatten() {
            for e in t.acl.exprs.iter_mut() {
                fill(&mut e.expr.fetch);
                e.expr.convs.iter_mut().for_each(fill_conv);
            }
        }
    }
}

fn mode_word(m: Mode) -> &'static str {
    match m {
        Mode::Http => "http",
        Mode::Tcp => "tcp",
    }
}
