//! The host check: does this machine carry what the configuration's transparent parts need?
//!
//! Input: [`TransparencyNeeds`], filled by the configuration layer from the IR. The host is read
//! into a [`HostSnapshot`] ([`HostSnapshot::collect`]: sysctls, `ip -j rule/route/addr`,
//! `nft -j list ruleset`, `iptables-save`/`ip6tables-save` (and the legacy variants), the
//! effective capabilities); [`check`] turns both into a [`Report`] whose findings each name the
//! missing piece, the config lines that need it and the exact command that fixes it.
//! [`Report::exit_status`] is 0 when ready, 1 when not. Warnings and notes do not change it.
//!
//! What is checked (facts verified with HAProxy 2.6 in tproxy-topology.md):
//! * CAP_NET_ADMIN or CAP_NET_RAW in the effective set (IP_TRANSPARENT), and `user` without
//!   keeping the capability;
//! * per family that needs it: the socket-match rule (`-m socket` / nft `socket transparent 1`)
//!   setting a mark, the `ip rule fwmark M lookup T` policy rule and `local default dev lo`
//!   in table T; every mark set by a socket or TPROXY rule must be routed that way;
//! * a TPROXY target (`-j TPROXY --on-port P` / nft `tproxy to :P`) for every intercepting
//!   (wildcard `transparent`) listener port;
//! * forwarding (a warning unless interception is configured: the proxied paths themselves
//!   work with `ip_forward=0`, verified);
//! * `ip_nonlocal_bind=1` hiding a missing `transparent` on a non-local bind;
//! * clients on the servers' own subnet (replies bypass the proxy), with the backend fix;
//! * rp_filter (a note only: strict mode works on symmetric paths).

pub mod firewall;
pub mod routing;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::net::IpAddr;
use std::process::Command;

use crate::tproxy::addr::{Family, IpNet, ListenAddr, ServerAddr};
use firewall::{FwModel, FwSource};
use routing::{IfAddr, PolicyRule, Route};

/// A place in the configuration (`file:line`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    pub file: String,
    pub line: u32,
}

impl Origin {
    pub fn new(file: impl Into<String>, line: u32) -> Origin {
        Origin {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A backend (or server) with `source ... usesrc ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsesrcBackend {
    pub name: String,
    /// Family of the spoofed connections (the `source` address family).
    pub family: Family,
    pub origin: Origin,
    /// Its servers (used for the same-subnet check; `0.0.0.0` servers are ignored).
    pub servers: Vec<ServerAddr>,
}

/// A listener that receives connections diverted by a TPROXY target (`bind 0.0.0.0:P transparent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterceptPort {
    pub port: u16,
    pub family: Family,
    pub origin: Origin,
}

/// What the configuration's transparent parts need from the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransparencyNeeds {
    /// `bind ... transparent`. Wildcard ones (`0.0.0.0:P`, `[::]:P`) also count as
    /// intercepting ports.
    pub transparent_binds: Vec<(ListenAddr, Origin)>,
    /// `bind` lines **without** `transparent`; a non-local address there is reported.
    pub plain_binds: Vec<(ListenAddr, Origin)>,
    pub usesrc_backends: Vec<UsesrcBackend>,
    /// Explicit intercept ports (in addition to the wildcard transparent binds).
    pub intercept_ports: Vec<InterceptPort>,
    /// The servers' subnets, when known (otherwise derived from on-link routes to the servers).
    pub server_subnets: Vec<IpNet>,
    /// `user`/`uid` of the global section.
    pub runs_as_user: Option<String>,
    /// The configuration keeps CAP_NET_ADMIN/CAP_NET_RAW across the uid change.
    pub keeps_caps: bool,
}

impl TransparencyNeeds {
    pub fn is_empty(&self) -> bool {
        self.transparent_binds.is_empty()
            && self.usesrc_backends.is_empty()
            && self.intercept_ports.is_empty()
    }

    fn intercepts(&self) -> Vec<InterceptPort> {
        let mut v = self.intercept_ports.clone();
        for (a, o) in &self.transparent_binds {
            if a.ip().is_unspecified()
                && !v
                    .iter()
                    .any(|p| p.port == a.port() && p.family == a.family())
            {
                v.push(InterceptPort {
                    port: a.port(),
                    family: a.family(),
                    origin: o.clone(),
                });
            }
        }
        v
    }
}

/// Raw host state. Every field is the text a tool printed (None: could not be read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostSnapshot {
    /// `net.ipv4.ip_forward` -> "1", ... (also `net.ipv4.conf.<if>.rp_filter`).
    pub sysctls: BTreeMap<String, String>,
    /// CapEff of the checking thread.
    pub cap_eff: Option<u64>,
    pub rules_v4: Option<String>,
    pub rules_v6: Option<String>,
    /// `ip -j route show table N` per table named by an fwmark rule (and the default 100).
    pub tables_v4: BTreeMap<String, String>,
    pub tables_v6: BTreeMap<String, String>,
    pub local_table_v4: Option<String>,
    pub local_table_v6: Option<String>,
    pub addrs: Option<String>,
    pub nft: Option<String>,
    pub iptables_v4: Option<String>,
    pub iptables_v6: Option<String>,
    pub iptables_legacy_v4: Option<String>,
    pub iptables_legacy_v6: Option<String>,
    /// Tools or files that could not be read, with the reason.
    pub unavailable: Vec<String>,
}

/// The policy-routing table suggested when none is configured.
pub const DEFAULT_TABLE: &str = "100";
/// The mark suggested when none is configured.
pub const DEFAULT_MARK: u32 = 1;

fn run_tool(args: &[&str], unavailable: &mut Vec<String>) -> Option<String> {
    match Command::new(args[0]).args(&args[1..]).output() {
        Ok(o) if o.status.success() => {
            let mut out = String::from_utf8_lossy(&o.stdout).into_owned();
            // iptables-save prints "# Warning: iptables-legacy tables present" on stderr
            for l in String::from_utf8_lossy(&o.stderr).lines() {
                if l.starts_with("# Warning") {
                    out.push_str(l);
                    out.push('\n');
                }
            }
            Some(out)
        }
        Ok(o) => {
            unavailable.push(format!(
                "`{}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            None
        }
        Err(e) => {
            unavailable.push(format!("`{}`: {e}", args.join(" ")));
            None
        }
    }
}

fn tool_exists(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

impl HostSnapshot {
    /// Read the host as seen by the calling thread (its network namespace and capabilities).
    pub fn collect() -> HostSnapshot {
        let mut s = HostSnapshot::default();
        for key in [
            "net.ipv4.ip_forward",
            "net.ipv4.ip_nonlocal_bind",
            "net.ipv6.conf.all.forwarding",
            "net.ipv6.ip_nonlocal_bind",
        ] {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            match fs::read_to_string(&path) {
                Ok(v) => {
                    s.sysctls.insert(key.into(), v.trim().into());
                }
                Err(e) => s.unavailable.push(format!("{path}: {e}")),
            }
        }
        if let Ok(dir) = fs::read_dir("/proc/sys/net/ipv4/conf") {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Ok(v) = fs::read_to_string(e.path().join("rp_filter")) {
                    s.sysctls
                        .insert(format!("net.ipv4.conf.{name}.rp_filter"), v.trim().into());
                }
            }
        }
        let status = fs::read_to_string("/proc/thread-self/status")
            .or_else(|_| fs::read_to_string("/proc/self/status"))
            .unwrap_or_default();
        s.cap_eff = crate::tproxy::privs::caps_from_status(&status, "CapEff");
        let u = &mut s.unavailable;
        s.rules_v4 = run_tool(&["ip", "-j", "-4", "rule", "show"], u);
        s.rules_v6 = run_tool(&["ip", "-j", "-6", "rule", "show"], u);
        s.local_table_v4 = run_tool(&["ip", "-j", "-4", "route", "show", "table", "local"], u);
        s.local_table_v6 = run_tool(&["ip", "-j", "-6", "route", "show", "table", "local"], u);
        s.addrs = run_tool(&["ip", "-j", "addr", "show"], u);
        for (rules, fam, tables) in [
            (&s.rules_v4, "-4", &mut s.tables_v4),
            (&s.rules_v6, "-6", &mut s.tables_v6),
        ] {
            let mut names = vec![DEFAULT_TABLE.to_string()];
            if let Some(r) = rules.as_deref().and_then(|t| routing::parse_rules(t).ok()) {
                names.extend(
                    r.into_iter()
                        .filter(|r| r.fwmark.is_some())
                        .map(|r| r.table),
                );
            }
            names.sort();
            names.dedup();
            for t in names {
                let mut ignore = Vec::new();
                if let Some(out) = run_tool(
                    &["ip", "-j", fam, "route", "show", "table", &t],
                    &mut ignore,
                ) {
                    tables.insert(t, out);
                } else {
                    tables.insert(t, "[]".into());
                }
            }
        }
        let u = &mut s.unavailable;
        if tool_exists("nft") {
            s.nft = run_tool(&["nft", "-j", "list", "ruleset"], u);
        }
        // Without `-t mangle`: with the legacy backend, naming a table creates it.
        if tool_exists("iptables-save") {
            s.iptables_v4 = run_tool(&["iptables-save"], u);
        }
        if tool_exists("ip6tables-save") {
            s.iptables_v6 = run_tool(&["ip6tables-save"], u);
        }
        let nft_backend = s.iptables_v4.is_some()
            && Command::new("iptables-save")
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("nf_tables"))
                .unwrap_or(false);
        if nft_backend {
            let mut ignore = Vec::new();
            if tool_exists("iptables-legacy-save") {
                s.iptables_legacy_v4 = run_tool(&["iptables-legacy-save"], &mut ignore);
            }
            if tool_exists("ip6tables-legacy-save") {
                s.iptables_legacy_v6 = run_tool(&["ip6tables-legacy-save"], &mut ignore);
            }
        }
        if s.nft.is_none() && s.iptables_v4.is_none() {
            s.unavailable
                .push("neither nft nor iptables-save is available: firewall not checked".into());
        }
        s
    }

    fn sysctl(&self, key: &str) -> Option<&str> {
        self.sysctls.get(key).map(String::as_str)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A missing piece: transparent traffic will not flow. Makes the check fail.
    Error,
    /// Works in some setups only; read it.
    Warning,
    /// For information.
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "MISSING",
            Severity::Warning => "WARNING",
            Severity::Note => "NOTE",
        })
    }
}

/// One result of the host check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Stable identifier, e.g. `ipv4-fwmark-rule`, `capability`, `ipv4-tproxy-port-8080`.
    pub id: String,
    pub severity: Severity,
    pub message: String,
    /// The configuration lines that need this piece.
    pub needed_by: Vec<String>,
    /// Shell commands that fix it, in order.
    pub fix: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Pieces found in place (one line each).
    pub ok: Vec<String>,
}

impl Report {
    pub fn ready(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Error)
    }
    /// 0 ready, 1 not ready.
    pub fn exit_status(&self) -> i32 {
        if self.ready() { 0 } else { 1 }
    }
    pub fn find(&self, id: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.id == id)
    }
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        let warnings = self
            .findings
            .iter()
            .filter(|x| x.severity == Severity::Warning)
            .count();
        if errors == 0 {
            writeln!(
                f,
                "transparent proxying host check: READY ({warnings} warning(s))"
            )?;
        } else {
            writeln!(
                f,
                "transparent proxying host check: NOT READY ({errors} missing piece(s), {warnings} warning(s))"
            )?;
        }
        let mut sorted: Vec<&Finding> = self.findings.iter().collect();
        sorted.sort_by_key(|x| x.severity);
        for x in sorted {
            writeln!(f, "[{}] {}: {}", x.severity, x.id, x.message)?;
            if !x.needed_by.is_empty() {
                writeln!(f, "    needed by: {}", x.needed_by.join("; "))?;
            }
            for c in &x.fix {
                writeln!(f, "    fix: {c}")?;
            }
        }
        for o in &self.ok {
            writeln!(f, "[OK] {o}")?;
        }
        Ok(())
    }
}

/// Which syntax the fix commands use.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Style {
    Nft,
    Iptables,
}

struct Ctx<'a> {
    needs: &'a TransparencyNeeds,
    fw: FwModel,
    rules: [Option<Vec<PolicyRule>>; 2],
    tables: [BTreeMap<String, Vec<Route>>; 2],
    local_tables: [Vec<Route>; 2],
    addrs: Vec<IfAddr>,
    style: Style,
    fw_read: bool,
    report: Report,
}

fn fi(f: Family) -> usize {
    match f {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

fn fam_tag(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

fn ip_cmd(f: Family) -> &'static str {
    match f {
        Family::V4 => "ip",
        Family::V6 => "ip -6",
    }
}

impl Ctx<'_> {
    fn push(
        &mut self,
        id: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
        needed_by: Vec<String>,
        fix: Vec<String>,
    ) {
        self.report.findings.push(Finding {
            id: id.into(),
            severity,
            message: message.into(),
            needed_by,
            fix,
        });
    }

    /// Config lines that need the kernel plumbing of family `f`.
    fn plumbing_users(&self, f: Family) -> Vec<String> {
        let mut v = Vec::new();
        for (a, o) in &self.needs.transparent_binds {
            if a.family() == f && !a.ip().is_unspecified() && !self.is_local(a.ip()) {
                v.push(format!("bind {a} transparent ({o}): non-local address"));
            }
        }
        for b in &self.needs.usesrc_backends {
            if b.family == f {
                v.push(format!(
                    "backend {} source ... usesrc ({})",
                    b.name, b.origin
                ));
            }
        }
        for p in self.needs.intercepts() {
            if p.family == f {
                v.push(format!(
                    "intercepting listener port {} ({})",
                    p.port, p.origin
                ));
            }
        }
        v
    }

    fn is_local(&self, ip: IpAddr) -> bool {
        routing::is_local(ip, &self.addrs, &self.local_tables[fi(Family::of(&ip))])
    }

    /// The mark the fix commands should use for family `f`.
    fn chosen_mark(&self, f: Family) -> u32 {
        self.fw
            .socket_rules
            .iter()
            .filter(|r| r.fams.has(f))
            .find_map(|r| r.mark)
            .or_else(|| {
                self.fw
                    .tproxy_rules
                    .iter()
                    .filter(|r| r.fams.has(f))
                    .find_map(|r| r.mark)
            })
            .or_else(|| {
                self.rules[fi(f)].as_ref().and_then(|rs| {
                    rs.iter().filter(|r| !r.narrowed).find_map(|r| {
                        let routes = self.tables[fi(f)].get(&r.table)?;
                        if routing::has_local_default(routes) {
                            r.fwmark
                        } else {
                            None
                        }
                    })
                })
            })
            .unwrap_or(DEFAULT_MARK)
    }

    /// The iptables flavour whose rules are loaded: the legacy one only when its rules are the
    /// only iptables rules (with `iptables` = iptables-nft, both run side by side).
    fn ipt_source(&self) -> FwSource {
        if self.fw.legacy_rules_seen && !self.fw.iptables_rules_seen {
            FwSource::IptablesLegacy
        } else {
            FwSource::Iptables
        }
    }

    fn ipt(&self, f: Family) -> &'static str {
        match (self.ipt_source(), f) {
            (FwSource::IptablesLegacy, Family::V4) => "iptables-legacy",
            (FwSource::IptablesLegacy, Family::V6) => "ip6tables-legacy",
            (_, Family::V4) => "iptables",
            (_, Family::V6) => "ip6tables",
        }
    }

    fn socket_rule_fix(&self, f: Family, mark: u32) -> Vec<String> {
        match self.style {
            Style::Nft => vec![
                "nft add table inet rhaproxy".into(),
                "nft add chain inet rhaproxy prerouting '{ type filter hook prerouting priority mangle; policy accept; }'".into(),
                format!("nft add rule inet rhaproxy prerouting meta l4proto tcp socket transparent 1 meta mark set {mark} accept"),
            ],
            Style::Iptables => {
                let t = self.ipt(f);
                let src = self.ipt_source();
                let existing = self
                    .fw
                    .divert_chains
                    .iter()
                    .find(|(s, fams, _, m)| *s == src && fams.has(f) && m.is_some());
                match existing {
                    Some((_, _, chain, _)) => vec![format!(
                        "{t} -t mangle -I PREROUTING -p tcp -m socket --transparent -j {chain}"
                    )],
                    None => vec![
                        format!("{t} -t mangle -N DIVERT"),
                        format!("{t} -t mangle -A DIVERT -j MARK --set-mark {mark}"),
                        format!("{t} -t mangle -A DIVERT -j ACCEPT"),
                        format!("{t} -t mangle -I PREROUTING -p tcp -m socket --transparent -j DIVERT"),
                    ],
                }
            }
        }
    }

    fn tproxy_fix(&self, f: Family, port: u16, mark: u32) -> Vec<String> {
        match self.style {
            Style::Nft => {
                let fam = if f == Family::V4 { "ip" } else { "ip6" };
                vec![
                    "nft add table inet rhaproxy".into(),
                    "nft add chain inet rhaproxy prerouting '{ type filter hook prerouting priority mangle; policy accept; }'".into(),
                    format!("nft add rule inet rhaproxy prerouting meta nfproto {}v{} tcp dport <port-to-intercept> tproxy {fam} to :{port} meta mark set {mark} accept",
                        "ip", if f == Family::V4 { "4" } else { "6" }),
                ]
            }
            Style::Iptables => vec![format!(
                "{} -t mangle -A PREROUTING -p tcp --dport <port-to-intercept> -j TPROXY --on-port {port} --tproxy-mark {mark}",
                self.ipt(f)
            )],
        }
    }

    fn check_caps(&mut self, snap: &HostSnapshot) {
        let mut users: Vec<String> = self
            .needs
            .transparent_binds
            .iter()
            .map(|(a, o)| format!("bind {a} transparent ({o})"))
            .collect();
        users.extend(
            self.needs
                .usesrc_backends
                .iter()
                .map(|b| format!("backend {} usesrc ({})", b.name, b.origin)),
        );
        if users.is_empty() {
            return;
        }
        const NET: u64 = (1 << 12) | (1 << 13);
        match snap.cap_eff {
            Some(c) if c & NET != 0 => self
                .report
                .ok
                .push("capability: CAP_NET_ADMIN/CAP_NET_RAW effective".into()),
            Some(_) => self.push(
                "capability",
                Severity::Error,
                "the process has neither CAP_NET_ADMIN nor CAP_NET_RAW, so IP_TRANSPARENT is refused \
                 (rhaproxy will not start; HAProxy would fall back to IP_FREEBIND and hang)",
                users.clone(),
                vec![
                    "run rhaproxy as root (it can drop to `user` keeping the capability with `setcap cap_net_admin` in the global section)".into(),
                    "or give the binary the capability: setcap cap_net_admin,cap_net_bind_service+ep \"$(command -v rhaproxy)\"".into(),
                ],
            ),
            None => self.push(
                "capability-unknown",
                Severity::Warning,
                "could not read CapEff from /proc/self/status",
                users.clone(),
                vec![],
            ),
        }
        if let Some(user) = &self.needs.runs_as_user
            && !self.needs.keeps_caps
        {
            self.push(
                "user-drops-capability",
                Severity::Error,
                format!(
                    "`user {user}` drops every capability after startup, so transparent \
                     connections would fail (HAProxy 2.6 refuses to start: \"Some configuration \
                     options require full privileges, so global.uid cannot be changed.\")"
                ),
                users,
                vec![format!(
                    "add `setcap cap_net_admin` to the global section to keep CAP_NET_ADMIN as {user}, or remove `user {user}`"
                )],
            );
        }
    }

    fn check_family(&mut self, f: Family) {
        let users = self.plumbing_users(f);
        if users.is_empty() {
            return;
        }
        let tag = fam_tag(f);
        let mark = self.chosen_mark(f);
        // 1. socket-match rule
        if !self.fw_read {
            self.push(
                format!("{tag}-firewall-unknown"),
                Severity::Warning,
                "the firewall could not be read (nft / iptables-save missing or not permitted; run \
                 the check as root): the socket-match and TPROXY rules were not checked",
                users.clone(),
                vec![],
            );
        }
        if self.fw_read {
            let socket_rules: Vec<_> = self
                .fw
                .socket_rules
                .iter()
                .filter(|r| r.fams.has(f))
                .cloned()
                .collect();
            if socket_rules.is_empty() {
                self.push(
                    format!("{tag}-socket-rule"),
                    Severity::Error,
                    format!(
                        "no {f} socket-match rule in prerouting (`-m socket` / nft `socket transparent 1`): \
                         replies from the servers to spoofed client addresses are forwarded to the real \
                         client instead of the proxy, and connections hang"
                    ),
                    users.clone(),
                    self.socket_rule_fix(f, mark),
                );
            } else if socket_rules.iter().all(|r| r.mark.is_none()) {
                self.push(
                    format!("{tag}-socket-rule"),
                    Severity::Error,
                    format!(
                        "the {f} socket-match rule ({} {}) sets no mark, so policy routing never delivers the packets locally",
                        socket_rules[0].source, socket_rules[0].location
                    ),
                    users.clone(),
                    self.socket_rule_fix(f, mark),
                );
            } else {
                let r = socket_rules.iter().find(|r| r.mark.is_some()).unwrap();
                self.report.ok.push(format!(
                    "{tag} socket-match rule: {} {} sets mark {}",
                    r.source,
                    r.location,
                    r.mark.unwrap()
                ));
            }
        }
        // 2. every mark used must reach a table with a local default route
        let mut marks: Vec<u32> = self
            .fw
            .socket_rules
            .iter()
            .filter(|r| r.fams.has(f))
            .filter_map(|r| r.mark)
            .chain(
                self.fw
                    .tproxy_rules
                    .iter()
                    .filter(|r| r.fams.has(f))
                    .filter_map(|r| r.mark),
            )
            .collect();
        if marks.is_empty() {
            marks.push(mark);
        }
        marks.sort();
        marks.dedup();
        let Some(rules) = self.rules[fi(f)].clone() else {
            self.push(
                format!("{tag}-policy-routing-unknown"),
                Severity::Warning,
                format!("could not read `{} -j rule`", ip_cmd(f)),
                users.clone(),
                vec![],
            );
            return;
        };
        for m in marks {
            let mut via = String::new();
            let table = match routing::table_for_mark(&rules, m) {
                Some(r) => {
                    let sel = match (r.fwmark, r.fwmask) {
                        (Some(v), u32::MAX) => format!("fwmark {v:#x}"),
                        (Some(v), k) => format!("fwmark {v:#x}/{k:#x}"),
                        (None, _) => "?".into(),
                    };
                    via = format!(
                        " (chosen by rule priority {}: {sel} lookup {})",
                        r.priority, r.table
                    );
                    self.report.ok.push(format!(
                        "{tag} policy rule: mark {m} -> table {} (priority {}: {sel})",
                        r.table, r.priority
                    ));
                    r.table.clone()
                }
                None => {
                    self.push(
                        format!("{tag}-fwmark-rule"),
                        Severity::Error,
                        format!(
                            "no {f} policy rule sends packets marked {m} to a table with a local route: \
                             marked replies are routed normally and never reach the proxy"
                        ),
                        users.clone(),
                        vec![format!("{} rule add fwmark {m} lookup {DEFAULT_TABLE}", ip_cmd(f))],
                    );
                    DEFAULT_TABLE.to_string()
                }
            };
            let routes = self.tables[fi(f)].get(&table).cloned().unwrap_or_default();
            if routing::has_local_default(&routes) {
                self.report
                    .ok
                    .push(format!("{tag} table {table}: local default dev lo"));
            } else {
                let dst = if f == Family::V4 { "0.0.0.0/0" } else { "::/0" };
                self.push(
                    format!("{tag}-local-route"),
                    Severity::Error,
                    format!(
                        "{f} routing table {table}{via} has no `local default dev lo` route: packets with mark {m} \
                         are not delivered to the local socket"
                    ),
                    users.clone(),
                    vec![format!("{} route add local {dst} dev lo table {table}", ip_cmd(f))],
                );
            }
        }
        // 3. TPROXY target per intercepting port
        if self.fw_read {
            for p in self
                .needs
                .intercepts()
                .into_iter()
                .filter(|p| p.family == f)
            {
                let found = self
                    .fw
                    .tproxy_rules
                    .iter()
                    .find(|r| r.fams.has(f) && r.on_port == p.port);
                match found {
                    Some(r) => {
                        let r = r.clone();
                        self.report.ok.push(format!(
                            "{tag} TPROXY to port {} ({} {}{})",
                            p.port,
                            r.source,
                            r.location,
                            r.dport.map(|d| format!(", dport {d}")).unwrap_or_default()
                        ));
                        if r.mark.is_none() {
                            self.push(
                                format!("{tag}-tproxy-mark-{}", p.port),
                                Severity::Error,
                                format!("the {f} TPROXY rule to port {} sets no mark", p.port),
                                vec![format!("intercepting listener port {} ({})", p.port, p.origin)],
                                self.tproxy_fix(f, p.port, mark),
                            );
                        }
                    }
                    None => self.push(
                        format!("{tag}-tproxy-port-{}", p.port),
                        Severity::Error,
                        format!(
                            "no {f} TPROXY rule diverts connections to port {}: the intercepting listener \
                             receives nothing",
                            p.port
                        ),
                        vec![format!("intercepting listener port {} ({})", p.port, p.origin)],
                        self.tproxy_fix(f, p.port, mark),
                    ),
                }
            }
        }
    }

    fn check_forwarding(&mut self, snap: &HostSnapshot) {
        for (f, key) in [
            (Family::V4, "net.ipv4.ip_forward"),
            (Family::V6, "net.ipv6.conf.all.forwarding"),
        ] {
            let users = self.plumbing_users(f);
            if users.is_empty() {
                continue;
            }
            let intercept = self.needs.intercepts().iter().any(|p| p.family == f);
            match snap.sysctl(key) {
                Some("0") => self.push(
                    format!("{}-forwarding", fam_tag(f)),
                    if intercept {
                        Severity::Error
                    } else {
                        Severity::Warning
                    },
                    format!(
                        "{key} = 0: the proxied connections themselves work, but this host does not route \
                         anything else; with interception or as the servers' gateway, traffic that is not \
                         proxied (other ports, ICMP) is dropped"
                    ),
                    users,
                    vec![format!("sysctl -w {key}=1")],
                ),
                Some(v) => self.report.ok.push(format!("{key} = {v}")),
                None => {}
            }
        }
    }

    fn check_nonlocal_bind(&mut self, snap: &HostSnapshot) {
        for (a, o) in self.needs.plain_binds.clone() {
            if a.ip().is_unspecified() || self.is_local(a.ip()) {
                continue;
            }
            let key = match a.family() {
                Family::V4 => "net.ipv4.ip_nonlocal_bind",
                Family::V6 => "net.ipv6.ip_nonlocal_bind",
            };
            if snap.sysctl(key) == Some("1") {
                self.push(
                    "nonlocal-bind-hides-missing-transparent",
                    Severity::Error,
                    format!(
                        "bind {a} is not a local address and has no `transparent`: it starts only because \
                         {key} = 1, but the listener cannot answer from {} and every connection hangs",
                        a.ip()
                    ),
                    vec![format!("bind {a} ({o})")],
                    vec![
                        format!("add `transparent` to the bind line at {o}"),
                        format!("sysctl -w {key}=0   # not needed for TPROXY"),
                    ],
                );
            } else {
                self.push(
                    "nonlocal-bind-without-transparent",
                    Severity::Error,
                    format!(
                        "bind {a} is not a local address and has no `transparent`: binding fails (Cannot assign requested address)"
                    ),
                    vec![format!("bind {a} ({o})")],
                    vec![format!("add `transparent` to the bind line at {o}")],
                );
            }
        }
    }

    fn check_same_subnet(&mut self) {
        let mut seen: Vec<(String, IpNet)> = Vec::new();
        for b in self.needs.usesrc_backends.clone() {
            for s in &b.servers {
                if s.ip().is_unspecified() {
                    continue;
                }
                let (subnet, gw) = match routing::onlink_addr(s.ip(), &self.addrs) {
                    Some(a) => (a.net.network(), a.net.addr.to_string()),
                    None => match self
                        .needs
                        .server_subnets
                        .iter()
                        .find(|n| n.contains(s.ip()))
                    {
                        Some(n) => (n.network(), "<this proxy's address on that subnet>".into()),
                        None => continue,
                    },
                };
                if seen.iter().any(|(n, sn)| *n == b.name && *sn == subnet) {
                    continue;
                }
                seen.push((b.name.clone(), subnet));
                let ports: Vec<u16> = {
                    let mut p: Vec<u16> = b
                        .servers
                        .iter()
                        .filter(|x| subnet.contains(x.ip()))
                        .map(|x| x.port())
                        .collect();
                    p.sort();
                    p.dedup();
                    p
                };
                let servers: Vec<String> = b
                    .servers
                    .iter()
                    .filter(|x| subnet.contains(x.ip()))
                    .map(|x| x.ip().to_string())
                    .collect();
                let ipc = ip_cmd(Family::of(&s.ip()));
                let mut fix = vec![format!("{ipc} route add default via {gw} table 200")];
                for p in ports {
                    fix.push(format!(
                        "{ipc} rule add ipproto tcp sport {p} lookup 200 priority 100"
                    ));
                }
                self.push(
                    "same-subnet-clients",
                    Severity::Warning,
                    format!(
                        "clients inside {subnet} (the subnet of backend {}'s servers) will fail through \
                         usesrc: the server answers them directly, not through the proxy, and the client \
                         resets the unexpected SYN-ACK. Fix with source-port policy routing on each server \
                         of the backend ({}), which sends their replies through this proxy",
                        b.name,
                        servers.join(", ")
                    ),
                    vec![format!("backend {} usesrc ({})", b.name, b.origin)],
                    fix,
                );
            }
        }
    }

    fn check_notes(&mut self, snap: &HostSnapshot) {
        if self.needs.is_empty() {
            return;
        }
        let strict: Vec<String> = snap
            .sysctls
            .iter()
            .filter(|(k, v)| k.ends_with(".rp_filter") && v.as_str() == "1")
            .map(|(k, _)| k.clone())
            .collect();
        if !strict.is_empty() {
            self.push(
                "rp-filter-strict",
                Severity::Note,
                format!(
                    "strict reverse-path filtering on {}: fine when client traffic enters and leaves by \
                     the same interface; use loose mode if routes are asymmetric",
                    strict.join(", ")
                ),
                vec![],
                vec!["sysctl -w net.ipv4.conf.all.rp_filter=2".into()],
            );
        }
        if (!self.fw.native_nft_tables.is_empty() || self.fw.iptables_nft_seen)
            && (self.fw.legacy_tables_present
                || snap
                    .iptables_legacy_v4
                    .as_deref()
                    .is_some_and(|t| t.lines().any(|l| l.starts_with("-A "))))
        {
            self.push(
                "firewall-mixed",
                Severity::Note,
                "both iptables-legacy and nf_tables rules are loaded; both run, so check both when a rule seems missing",
                vec![],
                vec![],
            );
        }
        let nonlocal = snap.sysctl("net.ipv4.ip_nonlocal_bind") == Some("1");
        if nonlocal && !self.needs.transparent_binds.is_empty() {
            self.push(
                "nonlocal-bind-not-needed",
                Severity::Note,
                "net.ipv4.ip_nonlocal_bind = 1 is not needed for TPROXY and hides a missing `transparent`",
                vec![],
                vec!["sysctl -w net.ipv4.ip_nonlocal_bind=0".into()],
            );
        }
        for u in &snap.unavailable {
            self.push("host-read", Severity::Note, u.clone(), vec![], vec![]);
        }
    }
}

/// Compare what the configuration needs with what the host has.
pub fn check(needs: &TransparencyNeeds, snap: &HostSnapshot) -> Report {
    let mut fw = FwModel::default();
    let mut fw_read = false;
    let mut notes = Vec::new();
    if let Some(t) = &snap.nft {
        match firewall::parse_nft_json(t) {
            Ok(m) => {
                fw.merge(m);
                fw_read = true;
            }
            Err(e) => notes.push(format!("cannot parse `nft -j list ruleset`: {e}")),
        }
    }
    for (text, v6, src) in [
        (&snap.iptables_v4, false, FwSource::Iptables),
        (&snap.iptables_v6, true, FwSource::Iptables),
        (&snap.iptables_legacy_v4, false, FwSource::IptablesLegacy),
        (&snap.iptables_legacy_v6, true, FwSource::IptablesLegacy),
    ] {
        if let Some(t) = text {
            fw.merge(firewall::parse_iptables_save(t, v6, src));
            fw_read = true;
        }
    }
    let style = if !fw.native_nft_tables.is_empty() {
        Style::Nft
    } else if fw.iptables_rules_seen || fw.legacy_rules_seen || snap.nft.is_none() {
        Style::Iptables
    } else {
        Style::Nft
    };
    let parse_rules = |t: &Option<String>, notes: &mut Vec<String>| {
        t.as_deref()
            .and_then(|t| routing::parse_rules(t).map_err(|e| notes.push(e)).ok())
    };
    let parse_table = |t: &str| routing::parse_routes(t).unwrap_or_default();
    let tables = |m: &BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| (k.clone(), parse_table(v)))
            .collect::<BTreeMap<_, _>>()
    };
    let mut ctx = Ctx {
        needs,
        rules: [
            parse_rules(&snap.rules_v4, &mut notes),
            parse_rules(&snap.rules_v6, &mut notes),
        ],
        tables: [tables(&snap.tables_v4), tables(&snap.tables_v6)],
        local_tables: [
            snap.local_table_v4
                .as_deref()
                .map(parse_table)
                .unwrap_or_default(),
            snap.local_table_v6
                .as_deref()
                .map(parse_table)
                .unwrap_or_default(),
        ],
        addrs: snap
            .addrs
            .as_deref()
            .and_then(|t| routing::parse_addrs(t).ok())
            .unwrap_or_default(),
        fw,
        style,
        fw_read,
        report: Report::default(),
    };
    ctx.check_caps(snap);
    ctx.check_family(Family::V4);
    ctx.check_family(Family::V6);
    ctx.check_forwarding(snap);
    ctx.check_nonlocal_bind(snap);
    ctx.check_same_subnet();
    ctx.check_notes(snap);
    for n in notes {
        ctx.push("host-read", Severity::Note, n, vec![], vec![]);
    }
    ctx.report
}

/// Collect the host state and check it.
pub fn run(needs: &TransparencyNeeds) -> Report {
    check(needs, &HostSnapshot::collect())
}

#[cfg(test)]
mod tests;
