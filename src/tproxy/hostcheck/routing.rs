//! Reading `ip -j rule`, `ip -j route show table N` and `ip -j addr` output.

use std::net::IpAddr;

use crate::tproxy::addr::{Family, IpNet};
use crate::tproxy::json::{self, Json};

/// One policy-routing rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRule {
    pub priority: u32,
    pub fwmark: Option<u32>,
    pub fwmask: u32,
    pub table: String,
    /// The rule has other selectors (`from`, `iif`, `not`, ...) and does not apply to everything.
    pub narrowed: bool,
}

impl PolicyRule {
    /// Whether a packet carrying `mark` (and nothing else special) is sent to this rule's table.
    pub fn matches_mark(&self, mark: u32) -> bool {
        match self.fwmark {
            Some(m) => mark & self.fwmask == m & self.fwmask,
            None => false,
        }
    }
}

pub fn parse_rules(text: &str) -> Result<Vec<PolicyRule>, String> {
    let doc = json::parse(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for r in doc.as_array() {
        let Some(table) = r.get("table").as_str() else {
            continue; // goto / nop / blackhole rules
        };
        let narrowed = r.get("src").as_str().is_some_and(|s| s != "all")
            || !r.get("dst").is_null()
            || !r.get("iif").is_null()
            || !r.get("oif").is_null()
            || !r.get("not").is_null()
            || !r.get("ipproto").is_null()
            || !r.get("sport").is_null()
            || !r.get("dport").is_null();
        out.push(PolicyRule {
            priority: r.get("priority").as_int().unwrap_or(0) as u32,
            fwmark: r.get("fwmark").as_int().map(|v| v as u32),
            fwmask: r
                .get("fwmask")
                .as_int()
                .map(|v| v as u32)
                .unwrap_or(u32::MAX),
            table: table.to_string(),
            narrowed,
        });
    }
    out.sort_by_key(|r| r.priority);
    Ok(out)
}

/// The table a packet marked `mark` is looked up in first, if an fwmark rule catches it before
/// the `main` table rule.
pub fn table_for_mark(rules: &[PolicyRule], mark: u32) -> Option<&PolicyRule> {
    rules
        .iter()
        .take_while(|r| r.table != "main")
        .find(|r| !r.narrowed && r.matches_mark(mark))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub kind: String,
    pub dst: Option<IpNet>,
    pub default: bool,
    pub dev: Option<String>,
    pub scope: Option<String>,
    pub gateway: Option<IpAddr>,
}

pub fn parse_routes(text: &str) -> Result<Vec<Route>, String> {
    let doc = json::parse(text).map_err(|e| e.to_string())?;
    Ok(doc
        .as_array()
        .iter()
        .map(|r: &Json| {
            let dst = r.get("dst").as_str().unwrap_or("");
            Route {
                kind: r.get("type").as_str().unwrap_or("unicast").to_string(),
                default: dst == "default" || dst == "0.0.0.0/0" || dst == "::/0",
                dst: dst.parse().ok(),
                dev: r.get("dev").as_str().map(str::to_string),
                scope: r.get("scope").as_str().map(str::to_string),
                gateway: r.get("gateway").as_str().and_then(|g| g.parse().ok()),
            }
        })
        .collect())
}

/// `local default dev lo` (or `local 0.0.0.0/0` / `local ::/0`).
pub fn has_local_default(routes: &[Route]) -> bool {
    routes.iter().any(|r| r.kind == "local" && r.default)
}

/// An address configured on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    pub ifname: String,
    pub net: IpNet,
}

pub fn parse_addrs(text: &str) -> Result<Vec<IfAddr>, String> {
    let doc = json::parse(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for link in doc.as_array() {
        let ifname = link.get("ifname").as_str().unwrap_or("?").to_string();
        for a in link.get("addr_info").as_array() {
            let (Some(local), Some(len)) = (
                a.get("local")
                    .as_str()
                    .and_then(|s| s.parse::<IpAddr>().ok()),
                a.get("prefixlen").as_int(),
            ) else {
                continue;
            };
            out.push(IfAddr {
                ifname: ifname.clone(),
                net: IpNet::new(local, len as u8),
            });
        }
    }
    Ok(out)
}

/// Whether `ip` is a local address: on an interface, or inside a `local` route of the local
/// table (e.g. `127.0.0.0/8`, or an AnyIP route).
pub fn is_local(ip: IpAddr, addrs: &[IfAddr], local_table: &[Route]) -> bool {
    addrs.iter().any(|a| a.net.addr == ip)
        || local_table
            .iter()
            .any(|r| r.kind == "local" && (r.default || r.dst.is_some_and(|d| d.contains(ip))))
}

/// The proxy's own address on the subnet that contains `ip` (on-link), if any.
pub fn onlink_addr(ip: IpAddr, addrs: &[IfAddr]) -> Option<&IfAddr> {
    addrs
        .iter()
        .filter(|a| Family::of(&a.net.addr) == Family::of(&ip))
        .filter(|a| a.net.prefix < if ip.is_ipv4() { 32 } else { 128 })
        .find(|a| a.net.contains(ip) && a.net.addr != ip)
}
