//! Reading the TPROXY-relevant part of a firewall: `nft -j list ruleset` and
//! `iptables-save` / `ip6tables-save` (nft or legacy backend) output.
//!
//! Only the prerouting path matters: the socket-match rule that marks packets of existing
//! (transparent) sockets, and TPROXY targets that divert new connections to a local port.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use crate::tproxy::json::{Json, parse_int};

/// Which families a rule applies to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Fams {
    pub v4: bool,
    pub v6: bool,
}

impl Fams {
    pub const V4: Fams = Fams {
        v4: true,
        v6: false,
    };
    pub const V6: Fams = Fams {
        v4: false,
        v6: true,
    };
    pub const BOTH: Fams = Fams { v4: true, v6: true };
    pub const NONE: Fams = Fams {
        v4: false,
        v6: false,
    };
    fn and(self, o: Fams) -> Fams {
        Fams {
            v4: self.v4 && o.v4,
            v6: self.v6 && o.v6,
        }
    }
    pub fn has(self, f: crate::tproxy::addr::Family) -> bool {
        match f {
            crate::tproxy::addr::Family::V4 => self.v4,
            crate::tproxy::addr::Family::V6 => self.v6,
        }
    }
}

/// Where a rule was found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FwSource {
    Nft,
    Iptables,
    IptablesLegacy,
}

impl fmt::Display for FwSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FwSource::Nft => "nftables",
            FwSource::Iptables => "iptables",
            FwSource::IptablesLegacy => "iptables-legacy",
        })
    }
}

/// `-m socket [--transparent] ... MARK` / nft `socket transparent 1 ... meta mark set`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketRule {
    pub fams: Fams,
    /// The mark the packet gets (`None`: the rule sets no mark, which is useless for TPROXY).
    pub mark: Option<u32>,
    pub transparent_only: bool,
    pub source: FwSource,
    /// e.g. `table inet rhx chain prerouting` or `mangle PREROUTING -> DIVERT`.
    pub location: String,
}

/// `-j TPROXY --on-port P` / nft `tproxy to :P`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TproxyRule {
    pub fams: Fams,
    pub on_port: u16,
    pub on_ip: Option<IpAddr>,
    /// The mark given to diverted packets (`--tproxy-mark`, or nft `meta mark set` in the rule).
    pub mark: Option<u32>,
    /// The intercepted destination port(s) as written (`80`, `8000`), if any.
    pub dport: Option<String>,
    pub source: FwSource,
    pub location: String,
}

/// What a ruleset means for TPROXY.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwModel {
    pub socket_rules: Vec<SocketRule>,
    pub tproxy_rules: Vec<TproxyRule>,
    /// Native nft tables exist (not iptables-nft compatibility tables).
    pub native_nft_tables: Vec<String>,
    /// Rules written by iptables-nft were seen in the nft ruleset.
    pub iptables_nft_seen: bool,
    /// iptables-save printed "iptables-legacy tables present".
    pub legacy_tables_present: bool,
    /// User chains of the mangle table per family source, with the mark their MARK rule sets.
    pub divert_chains: Vec<(FwSource, Fams, String, Option<u32>)>,
    /// Whether any rule was seen in `iptables-save`/`ip6tables-save` output (default backend).
    pub iptables_rules_seen: bool,
    /// Whether any rule was seen in `iptables-legacy-save`/`ip6tables-legacy-save` output.
    pub legacy_rules_seen: bool,
}

impl FwModel {
    pub fn merge(&mut self, o: FwModel) {
        self.socket_rules.extend(o.socket_rules);
        self.tproxy_rules.extend(o.tproxy_rules);
        self.native_nft_tables.extend(o.native_nft_tables);
        self.iptables_nft_seen |= o.iptables_nft_seen;
        self.legacy_tables_present |= o.legacy_tables_present;
        self.divert_chains.extend(o.divert_chains);
        self.iptables_rules_seen |= o.iptables_rules_seen;
        self.legacy_rules_seen |= o.legacy_rules_seen;
    }
}

// ---------------------------------------------------------------- nftables JSON

struct NftChain {
    hook: Option<String>,
    rules: Vec<Vec<Json>>,
}

fn table_fams(family: &str) -> Fams {
    match family {
        "ip" => Fams::V4,
        "ip6" => Fams::V6,
        "inet" | "bridge" | "netdev" => Fams::BOTH,
        _ => Fams::NONE,
    }
}

fn mark_set(expr: &Json) -> Option<u32> {
    let m = expr.get("mangle");
    if m.get("key").get("meta").get("key").as_str() == Some("mark") {
        m.get("value").as_int().map(|v| v as u32)
    } else {
        None
    }
}

fn render(v: &Json) -> String {
    match v {
        Json::Num(_) | Json::Str(_) => v
            .as_int()
            .map(|n| n.to_string())
            .or_else(|| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        Json::Obj(_) => {
            if let Some(r) = v.get("range").as_array().get(0..2) {
                format!("{}-{}", render(&r[0]), render(&r[1]))
            } else if !v.get("set").is_null() {
                let items: Vec<String> = v.get("set").as_array().iter().map(render).collect();
                format!("{{ {} }}", items.join(", "))
            } else {
                "?".into()
            }
        }
        Json::Arr(a) => a.iter().map(render).collect::<Vec<_>>().join(","),
        _ => "?".into(),
    }
}

/// Per-rule facts.
#[derive(Default)]
struct RuleFacts {
    fams: Fams,
    socket_transparent: bool,
    socket_any: bool,
    mark: Option<u32>,
    tproxy: Option<(u16, Option<IpAddr>, Fams)>,
    dport: Option<String>,
    jump: Option<String>,
    xt: bool,
}

fn rule_facts(exprs: &[Json], table: Fams) -> RuleFacts {
    let mut f = RuleFacts {
        fams: table,
        ..Default::default()
    };
    for e in exprs {
        let m = e.get("match");
        if !m.is_null() {
            let left = m.get("left");
            let right = m.get("right");
            let op = m.get("op").as_str().unwrap_or("==");
            if let Some(key) = left.get("socket").get("key").as_str() {
                f.socket_any = true;
                if key == "transparent" && right.as_int() == Some(1) && op == "==" {
                    f.socket_transparent = true;
                }
            }
            if left.get("meta").get("key").as_str() == Some("nfproto") && op == "==" {
                match right.as_str() {
                    Some("ipv4") => f.fams = f.fams.and(Fams::V4),
                    Some("ipv6") => f.fams = f.fams.and(Fams::V6),
                    _ => {}
                }
            }
            let p = left.get("payload");
            match p.get("protocol").as_str() {
                Some("ip") => f.fams = f.fams.and(Fams::V4),
                Some("ip6") => f.fams = f.fams.and(Fams::V6),
                Some("tcp") if p.get("field").as_str() == Some("dport") && op == "==" => {
                    f.dport = Some(render(right));
                }
                _ => {}
            }
        }
        if let Some(v) = mark_set(e) {
            f.mark = Some(v);
        }
        let t = e.get("tproxy");
        if !t.is_null() {
            let port = t.get("port").as_int().unwrap_or(0) as u16;
            let on_ip: Option<IpAddr> = t.get("addr").as_str().and_then(|a| a.parse().ok());
            let fams = match (t.get("family").as_str(), on_ip) {
                (Some("ip"), _) | (None, Some(IpAddr::V4(_))) => Fams::V4,
                (Some("ip6"), _) | (None, Some(IpAddr::V6(_))) => Fams::V6,
                _ => Fams::BOTH,
            };
            f.tproxy = Some((port, on_ip, fams));
        }
        for verdict in ["jump", "goto"] {
            if let Some(target) = e.get(verdict).get("target").as_str() {
                f.jump = Some(target.to_string());
            }
        }
        if !e.get("xt").is_null() {
            f.xt = true;
        }
    }
    f
}

/// Parse `nft -j list ruleset`.
pub fn parse_nft_json(text: &str) -> Result<FwModel, String> {
    let doc = crate::tproxy::json::parse(text).map_err(|e| e.to_string())?;
    let mut model = FwModel::default();
    // (family, table) -> chain name -> chain
    let mut chains: HashMap<(String, String), HashMap<String, NftChain>> = HashMap::new();
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut tables_xt: HashSet<(String, String)> = HashSet::new();
    let mut tables: Vec<(String, String)> = Vec::new();
    for item in doc.get("nftables").as_array() {
        let t = item.get("table");
        if let (Some(fam), Some(name)) = (t.get("family").as_str(), t.get("name").as_str()) {
            tables.push((fam.into(), name.into()));
        }
        let c = item.get("chain");
        if let (Some(fam), Some(tab), Some(name)) = (
            c.get("family").as_str(),
            c.get("table").as_str(),
            c.get("name").as_str(),
        ) {
            chains.entry((fam.into(), tab.into())).or_default().insert(
                name.into(),
                NftChain {
                    hook: c.get("hook").as_str().map(str::to_string),
                    rules: Vec::new(),
                },
            );
            order.push((fam.into(), tab.into(), name.into()));
        }
        let r = item.get("rule");
        if let (Some(fam), Some(tab), Some(ch)) = (
            r.get("family").as_str(),
            r.get("table").as_str(),
            r.get("chain").as_str(),
        ) {
            let exprs = r.get("expr").as_array().to_vec();
            if exprs.iter().any(|e| !e.get("xt").is_null()) {
                tables_xt.insert((fam.into(), tab.into()));
            }
            if let Some(chain) = chains
                .get_mut(&(fam.to_string(), tab.to_string()))
                .and_then(|m| m.get_mut(ch))
            {
                chain.rules.push(exprs);
            }
        }
    }
    model.iptables_nft_seen = !tables_xt.is_empty();
    for (fam, name) in &tables {
        if !tables_xt.contains(&(fam.clone(), name.clone())) {
            model.native_nft_tables.push(format!("{fam} {name}"));
        }
    }
    // Walk from every prerouting base chain, following jump/goto (bounded).
    for (fam, tab, name) in &order {
        let key = (fam.clone(), tab.clone());
        if tables_xt.contains(&key) {
            continue; // iptables-nft: read through iptables-save instead
        }
        let Some(tchains) = chains.get(&key) else {
            continue;
        };
        if tchains.get(name).and_then(|c| c.hook.as_deref()) != Some("prerouting") {
            continue;
        }
        let tf = table_fams(fam);
        let mut stack = vec![(name.clone(), tf, 0usize)];
        let mut seen = HashSet::new();
        while let Some((cname, fams, depth)) = stack.pop() {
            if depth > 8 || !seen.insert((cname.clone(), fams)) {
                continue;
            }
            let Some(chain) = tchains.get(&cname) else {
                continue;
            };
            for exprs in &chain.rules {
                let f = rule_facts(exprs, fams);
                let location = format!("table {fam} {tab} chain {cname}");
                if f.socket_any {
                    let mut mark = f.mark;
                    if mark.is_none()
                        && let Some(target) = &f.jump
                    {
                        mark = tchains
                            .get(target)
                            .and_then(|c| c.rules.iter().find_map(|r| r.iter().find_map(mark_set)));
                    }
                    model.socket_rules.push(SocketRule {
                        fams: f.fams,
                        mark,
                        transparent_only: f.socket_transparent,
                        source: FwSource::Nft,
                        location: location.clone(),
                    });
                }
                if let Some((port, on_ip, tf2)) = f.tproxy {
                    model.tproxy_rules.push(TproxyRule {
                        fams: f.fams.and(tf2),
                        on_port: port,
                        on_ip,
                        mark: f.mark,
                        dport: f.dport.clone(),
                        source: FwSource::Nft,
                        location: location.clone(),
                    });
                }
                if !f.socket_any
                    && let Some(target) = f.jump
                {
                    stack.push((target, f.fams, depth + 1));
                }
            }
        }
    }
    Ok(model)
}

// ---------------------------------------------------------------- iptables-save

#[derive(Debug, Default)]
struct IptRule {
    chain: String,
    socket: bool,
    transparent: bool,
    target: Option<String>,
    mark: Option<u32>,
    on_port: Option<u16>,
    on_ip: Option<IpAddr>,
    tproxy_mark: Option<u32>,
    dport: Option<String>,
}

fn mark_value(s: &str) -> Option<u32> {
    let v = s.split('/').next()?;
    parse_int(v).map(|v| v as u32)
}

fn parse_ipt_rule(line: &str) -> Option<IptRule> {
    let rest = line.strip_prefix("-A ")?;
    let toks: Vec<&str> = rest
        .split_whitespace()
        .map(|t| t.trim_matches('"'))
        .collect();
    let mut r = IptRule {
        chain: toks.first()?.to_string(),
        ..Default::default()
    };
    let mut i = 1;
    while i < toks.len() {
        let next = toks.get(i + 1).copied();
        match toks[i] {
            "-m" | "--match" if next == Some("socket") => r.socket = true,
            "--transparent" => r.transparent = true,
            "-j" | "--jump" | "-g" | "--goto" => r.target = next.map(str::to_string),
            "--set-xmark" | "--set-mark" => r.mark = next.and_then(mark_value),
            "--on-port" => r.on_port = next.and_then(|p| p.parse().ok()),
            "--on-ip" => r.on_ip = next.and_then(|a| a.parse().ok()),
            "--tproxy-mark" => r.tproxy_mark = next.and_then(mark_value),
            "--dport" | "--destination-port" | "--dports" => r.dport = next.map(str::to_string),
            _ => {}
        }
        i += 1;
    }
    Some(r)
}

/// Parse `iptables-save` (`v6 == false`) or `ip6tables-save` output (either backend).
pub fn parse_iptables_save(text: &str, v6: bool, source: FwSource) -> FwModel {
    let fams = if v6 { Fams::V6 } else { Fams::V4 };
    let mut model = FwModel::default();
    let mut table = String::new();
    let mut rules: Vec<IptRule> = Vec::new();
    let mut user_chains: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("# Warning: iptables-legacy tables present") {
            model.legacy_tables_present = true;
        }
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
        } else if table == "mangle" {
            if let Some(c) = line.strip_prefix(':') {
                let mut it = c.split_whitespace();
                let name = it.next().unwrap_or_default();
                if it.next() == Some("-") {
                    user_chains.push(name.to_string());
                }
            } else if let Some(r) = parse_ipt_rule(line) {
                rules.push(r);
            }
        }
        if line.starts_with("-A ") {
            match source {
                FwSource::IptablesLegacy => model.legacy_rules_seen = true,
                _ => model.iptables_rules_seen = true,
            }
        }
    }
    let chain_mark = |c: &str| -> Option<u32> {
        rules
            .iter()
            .filter(|r| r.chain == c && r.target.as_deref() == Some("MARK"))
            .find_map(|r| r.mark)
    };
    for c in &user_chains {
        model
            .divert_chains
            .push((source, fams, c.clone(), chain_mark(c)));
    }
    // chains reachable from PREROUTING
    let mut reach: Vec<String> = vec!["PREROUTING".into()];
    let mut i = 0;
    while i < reach.len() && i < 16 {
        let c = reach[i].clone();
        for r in rules.iter().filter(|r| r.chain == c && !r.socket) {
            if let Some(t) = &r.target
                && user_chains.contains(t)
                && !reach.contains(t)
            {
                reach.push(t.clone());
            }
        }
        i += 1;
    }
    for r in rules.iter().filter(|r| reach.contains(&r.chain)) {
        let location = format!("mangle {}", r.chain);
        if r.socket {
            let (mark, location) = match r.target.as_deref() {
                Some("MARK") => (r.mark, location.clone()),
                Some(t) if user_chains.iter().any(|c| c == t) => {
                    (chain_mark(t), format!("{location} -> {t}"))
                }
                _ => (None, location.clone()),
            };
            model.socket_rules.push(SocketRule {
                fams,
                mark,
                transparent_only: r.transparent,
                source,
                location,
            });
        }
        if r.target.as_deref() == Some("TPROXY") {
            model.tproxy_rules.push(TproxyRule {
                fams,
                on_port: r.on_port.unwrap_or(0),
                on_ip: r.on_ip.filter(|ip| !ip.is_unspecified()),
                mark: r.tproxy_mark,
                dport: r.dport.clone(),
                source,
                location,
            });
        }
    }
    model
}
