//! Transparent proxying in network namespaces (topology of tproxy-topology.md §1).
//!
//! Proves the harness with real HAProxy 2.6 on the behaviours of §2 where HAProxy works, with
//! iptables (nft backend), iptables-legacy and native nftables rules, and tests the host check
//! by removing each plumbing piece in turn. `rhaproxy_paths_*` run rhaproxy through every
//! TCP-mode path and compare what the servers saw with HAProxy 2.6 on the same config. Needs root; otherwise every test prints
//! `SKIPPED (needs root and network namespaces): ...`.

#[path = "support/netns.rs"]
mod netns;

use netns::{Firewall, Lab, Role};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const HAPROXY: &str = "haproxy";
const T: Duration = Duration::from_secs(3);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn haproxy_available(test: &str) -> bool {
    if !netns::can_run(test) {
        return false;
    }
    if !netns::which(HAPROXY) {
        netns::skipped(&format!("SKIPPED (needs haproxy): {test}"));
        return false;
    }
    true
}

const HEAD: &str = "global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 5s
    timeout server 5s
    retries 1
";

/// One config carrying every path of §2 (one frontend per behaviour).
fn full_config() -> String {
    format!(
        "{HEAD}
frontend ft_web
    bind 10.10.1.1:80 transparent
    default_backend bk_web
frontend ft_vip
    bind 10.10.9.9:80 transparent
    default_backend bk_web
frontend ft_ctl
    bind 10.10.1.1:81
    default_backend bk_ctl
frontend ft_client
    bind 10.10.1.1:82
    option http-server-close
    default_backend bk_client
frontend ft_icpt
    bind 0.0.0.0:8080 transparent
    http-request set-header X-Orig-Dst %[dst]:%[dst_port]
    default_backend bk_web
frontend ft_orig
    bind 0.0.0.0:8081 transparent
    default_backend bk_orig
frontend ft_v6
    bind [fd00:1::1]:80 transparent
    default_backend bk_v6
frontend ft_hsc
    bind 10.10.1.1:84
    option http-server-close
    default_backend bk_web
frontend ft_fixed
    bind 10.10.1.1:85
    default_backend bk_fixed
listen ls_tcp
    mode tcp
    option tcplog
    bind 10.10.1.1:83
    source 0.0.0.0 usesrc clientip
    server srv1 10.10.2.2:80
backend bk_web
    balance source
    hash-type consistent
    source 0.0.0.0 usesrc clientip
    server srv1 10.10.2.2:80
    server srv2 10.10.2.3:80
backend bk_ctl
    source 0.0.0.0
    server srv1 10.10.2.2:80
backend bk_client
    option http-server-close
    source 0.0.0.0 usesrc client
    server srv2 10.10.2.3:80
backend bk_orig
    source 0.0.0.0 usesrc clientip
    server orig 0.0.0.0
backend bk_v6
    source [::] usesrc clientip
    server srv1 [fd00:2::2]:80
backend bk_fixed
    source 0.0.0.0 usesrc 10.10.1.200
    server srv2 10.10.2.3:80
"
    )
}

const FULL_PORTS: &[u16] = &[80, 81, 82, 83, 84, 85, 8080, 8081];

fn get(lab: &Lab, from: Role, src: Option<&str>, dst: &str) -> netns::Echo {
    let r = lab
        .http_get(from, src.map(ip), sa(dst), "/", T)
        .unwrap_or_else(|e| panic!("GET {dst} from {src:?}: {e}\n{}", lab.proxy_logs(8)));
    assert_eq!(
        r.status,
        200,
        "GET {dst} from {src:?}: {r:?}\n{}",
        lab.proxy_logs(8)
    );
    r.echo()
        .unwrap_or_else(|| panic!("no peer-echo body: {r:?}"))
}

/// T1, T1b, T2, T3, T4, T4a, T4b, T6b, T9 against a running proxy.
fn check_transparent_paths(lab: &Lab, fw: Firewall) {
    // T1: the server sees the client's IP (usesrc clientip).
    let e = get(lab, Role::Client, None, "10.10.1.1:80");
    assert_eq!(e.peer.ip(), ip("10.10.1.2"), "T1 {fw:?}: {e:?}");
    assert!(
        e.local.port() == 80 && e.local.ip().to_string().starts_with("10.10.2."),
        "{e:?}"
    );

    // T1b: 8 client IPs, each seen as itself, `balance source` sticky, both servers used.
    let mut per_server: HashMap<String, u32> = HashMap::new();
    for i in 2..=9 {
        let src = format!("10.10.1.{i}");
        let a = get(lab, Role::Client, Some(&src), "10.10.1.1:80");
        let b = get(lab, Role::Client, Some(&src), "10.10.1.1:80");
        assert_eq!(a.peer.ip(), ip(&src), "T1b {fw:?}");
        assert_eq!(b.peer.ip(), ip(&src), "T1b {fw:?}");
        assert_eq!(a.name, b.name, "T1b balance source not sticky for {src}");
        *per_server.entry(a.name).or_default() += 1;
    }
    assert_eq!(
        per_server.len(),
        2,
        "T1b: both servers take part: {per_server:?}"
    );
    println!("T1b {fw:?}: {per_server:?}");

    // T2 control: plain `source 0.0.0.0`: the server sees the proxy's address.
    let e = get(lab, Role::Client, None, "10.10.1.1:81");
    assert_eq!(e.peer.ip(), ip("10.10.2.1"), "T2 {fw:?}: {e:?}");

    // T3: VIP on no interface, reached through the socket match alone.
    let e = get(lab, Role::Client, None, "10.10.9.9:80");
    assert_eq!(e.peer.ip(), ip("10.10.1.2"), "T3 {fw:?}: {e:?}");

    // T4/T4a: TPROXY target, original destination seen by the proxy (`dst`).
    for dst in ["10.10.7.7:80", "10.10.7.200:80"] {
        let e = get(lab, Role::Client, None, dst);
        assert_eq!(e.peer.ip(), ip("10.10.1.2"), "T4 {fw:?}: {e:?}");
        assert_eq!(e.xod, dst, "T4 {fw:?} original destination: {e:?}");
    }

    // T4b: intercept traffic to the real server address; `server orig 0.0.0.0`.
    let e = get(lab, Role::Client, None, "10.10.2.3:8000");
    assert_eq!(e.peer.ip(), ip("10.10.1.2"), "T4b {fw:?}: {e:?}");
    assert_eq!(e.local, sa("10.10.2.3:8000"), "T4b {fw:?}: {e:?}");
    assert_eq!(e.name, "srv2");

    // T6b: `usesrc client` + http-server-close: client IP *and port*, 3 times on one connection.
    let src = sa("10.10.1.4:45001");
    let rs = lab
        .http_keepalive(Role::Client, Some(src), sa("10.10.1.1:82"), 3, T)
        .expect("T6b keep-alive");
    for r in &rs {
        let e = r.echo().expect("T6b echo");
        assert_eq!(e.peer, src, "T6b {fw:?}: {e:?}");
    }

    // T5: mode tcp.
    let e = get(lab, Role::Client, Some("10.10.1.3"), "10.10.1.1:83");
    assert_eq!(
        (e.peer.ip(), e.name.as_str()),
        (ip("10.10.1.3"), "srv1"),
        "T5 {fw:?}: {e:?}"
    );

    // T6a: http-server-close + usesrc clientip, 3 requests on one client connection.
    let rs = lab
        .http_keepalive(
            Role::Client,
            Some(sa("10.10.1.5:0")),
            sa("10.10.1.1:84"),
            3,
            T,
        )
        .expect("T6a keep-alive");
    assert_eq!(rs.len(), 3);
    for r in &rs {
        assert_eq!(
            r.echo().expect("T6a echo").peer.ip(),
            ip("10.10.1.5"),
            "T6a {fw:?}"
        );
    }

    // usesrc ADDR: a fixed, non-local source address.
    let e = get(lab, Role::Client, None, "10.10.1.1:85");
    assert_eq!(e.peer.ip(), ip("10.10.1.200"), "usesrc ADDR {fw:?}: {e:?}");

    // T9: IPv6.
    let e = get(lab, Role::Client, None, "[fd00:1::1]:80");
    assert_eq!(e.peer.ip(), ip("fd00:1::2"), "T9 {fw:?}: {e:?}");
    assert_eq!(e.local, sa("[fd00:2::2]:80"), "T9 {fw:?}: {e:?}");
}

/// Start `proxy` (HAProxy, or rhaproxy via `env!("CARGO_BIN_EXE_rhaproxy")`) with
/// `full_config()` in a fresh lab with firewall `fw`, and check every transparent path.
fn run_paths(proxy: &str, fw: Firewall, test: &str) {
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(fw, true, true).expect("firewall");
    lab.start_echo_servers().expect("echo servers");
    lab.start_proxy(proxy, "proxy", &full_config(), FULL_PORTS)
        .unwrap_or_else(|e| panic!("{proxy} start: {e}"));
    check_transparent_paths(&lab, fw);
}

fn run_haproxy_paths(fw: Firewall, test: &str) {
    if haproxy_available(test) {
        run_paths(HAPROXY, fw, test);
    }
}

/// A `mode tcp` configuration carrying every transparent path that TCP mode can show; valid
/// for HAProxy 2.6 and for rhaproxy alike, so both run the very same file.
pub fn tcp_config() -> String {
    "global
    log stdout format raw local0 info
defaults
    mode tcp
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    retries 1
frontend ft_web
    bind 10.10.1.1:80 transparent
    default_backend bk_web
frontend ft_vip
    bind 10.10.9.9:80 transparent
    default_backend bk_web
frontend ft_ctl
    bind 10.10.1.1:81
    default_backend bk_ctl
frontend ft_client
    bind 10.10.1.1:82
    default_backend bk_client
frontend ft_fixed
    bind 10.10.1.1:85
    default_backend bk_fixed
frontend ft_icpt
    bind 0.0.0.0:8080 transparent
    default_backend bk_orig_ctl
frontend ft_orig
    bind 0.0.0.0:8081 transparent
    default_backend bk_orig
frontend ft_orig6
    bind [::]:8082 transparent v6only
    default_backend bk_orig6
frontend ft_v6
    bind [fd00:1::1]:80 transparent
    default_backend bk_v6
backend bk_web
    balance source
    hash-type consistent
    source 0.0.0.0 usesrc clientip
    server srv1 10.10.2.2:80 check inter 2s
    server srv2 10.10.2.3:80 check inter 2s
backend bk_ctl
    source 0.0.0.0
    server srv1 10.10.2.2:80
backend bk_client
    source 0.0.0.0 usesrc client
    server srv2 10.10.2.3:80
backend bk_fixed
    source 0.0.0.0 usesrc 10.10.1.200
    server srv2 10.10.2.3:80
backend bk_orig_ctl
    server orig 0.0.0.0
backend bk_orig
    source 0.0.0.0 usesrc clientip
    server orig 0.0.0.0
backend bk_orig6
    source [::] usesrc clientip
    server orig [::]
backend bk_v6
    source [::] usesrc clientip
    server srv1 [fd00:2::2]:80
"
    .to_string()
}

pub const TCP_PORTS: &[u16] = &[80, 81, 82, 85, 8080, 8081, 8082];

/// What one proxy showed: (check, peer seen by the server, server's local address, server).
type Seen = Vec<(String, IpAddr, SocketAddr, String)>;

/// Every path of `tcp_config()` (needs `intercept_range_on_srv2`): asserts each behaviour and
/// returns the observations (ports left out) so that two proxies can be compared.
fn check_tcp_paths(lab: &Lab, what: &str) -> Seen {
    let mut seen: Seen = Vec::new();
    let mut obs = |label: &str, e: &netns::Echo| {
        seen.push((label.to_string(), e.peer.ip(), e.local, e.name.clone()));
    };
    // T1/T5: usesrc clientip, the server sees the client's IP.
    let e = get(lab, Role::Client, None, "10.10.1.1:80");
    assert_eq!(e.peer.ip(), ip("10.10.1.2"), "T1 {what}: {e:?}");
    obs("T1", &e);
    // T1b: 8 client IPs, each seen as itself, `balance source` sticky, both servers used.
    let mut per_server: HashMap<String, u32> = HashMap::new();
    for i in 2..=9 {
        let src = format!("10.10.1.{i}");
        let a = get(lab, Role::Client, Some(&src), "10.10.1.1:80");
        let b = get(lab, Role::Client, Some(&src), "10.10.9.9:80");
        assert_eq!(a.peer.ip(), ip(&src), "T1b {what}");
        assert_eq!(b.peer.ip(), ip(&src), "T1b {what}");
        assert_eq!(
            a.name, b.name,
            "T1b {what}: balance source not sticky for {src}"
        );
        *per_server.entry(a.name.clone()).or_default() += 1;
        obs(&format!("T1b {src}"), &a);
    }
    assert_eq!(per_server.len(), 2, "T1b {what}: {per_server:?}");
    println!("T1b {what}: {per_server:?}");
    // T2 control: no usesrc, the server sees the proxy.
    let e = get(lab, Role::Client, None, "10.10.1.1:81");
    assert_eq!(e.peer.ip(), ip("10.10.2.1"), "T2 {what}: {e:?}");
    obs("T2", &e);
    // T3: VIP on no interface.
    let e = get(lab, Role::Client, None, "10.10.9.9:80");
    assert_eq!(e.peer.ip(), ip("10.10.1.2"), "T3 {what}: {e:?}");
    obs("T3", &e);
    // T4/T4a: TPROXY target for 10.10.7.0/24; `server orig 0.0.0.0` connects to the original
    // destination (the server's local address), from the proxy (no usesrc: proves interception).
    for dst in ["10.10.7.7:80", "10.10.7.200:80"] {
        let e = get(lab, Role::Client, None, dst);
        assert_eq!(
            (e.peer.ip(), e.local),
            (ip("10.10.2.1"), sa(dst)),
            "T4 {what}: {e:?}"
        );
        obs(&format!("T4 {dst}"), &e);
    }
    // T4b: intercepting the real server address, fully transparent both ways.
    let e = get(lab, Role::Client, Some("10.10.1.7"), "10.10.2.3:8000");
    assert_eq!(
        (e.peer.ip(), e.local),
        (ip("10.10.1.7"), sa("10.10.2.3:8000")),
        "T4b {what}: {e:?}"
    );
    obs("T4b", &e);
    // usesrc client: client IP and port; 45001 again at once: the server connection of the
    // first one was closed with an RST, so the same 4-tuple is free.
    for port in [45001, 45002, 45001] {
        let src = SocketAddr::new(ip("10.10.1.4"), port);
        let rs = lab
            .http_keepalive(Role::Client, Some(src), sa("10.10.1.1:82"), 1, T)
            .unwrap_or_else(|e| panic!("usesrc client {what}: {e}\n{}", lab.proxy_logs(8)));
        let e = rs[0].echo().expect("echo");
        assert_eq!(e.peer, src, "usesrc client {what}: {e:?}");
        obs(&format!("client {port}"), &e);
    }
    // usesrc ADDR: a fixed non-local source.
    let e = get(lab, Role::Client, None, "10.10.1.1:85");
    assert_eq!(e.peer.ip(), ip("10.10.1.200"), "usesrc ADDR {what}: {e:?}");
    obs("fixed", &e);
    // T9: IPv6.
    let e = get(lab, Role::Client, None, "[fd00:1::1]:80");
    assert_eq!(
        (e.peer.ip(), e.local),
        (ip("fd00:1::2"), sa("[fd00:2::2]:80")),
        "T9 {what}: {e:?}"
    );
    obs("T9", &e);
    // IPv6 interception of the real server address, `server orig [::]`.
    let e = get(lab, Role::Client, None, "[fd00:2::3]:8000");
    assert_eq!(
        (e.peer.ip(), e.local),
        (ip("fd00:1::2"), sa("[fd00:2::3]:8000")),
        "T9 intercept {what}: {e:?}"
    );
    obs("T9 intercept", &e);
    seen
}

/// `tcp_config()` in `mode http`: the same paths through the HTTP runtime. (No `http-request`
/// or `option http-server-close`: `rhaproxy -c` refuses both in this setting.)
pub fn http_config() -> String {
    tcp_config().replace("    mode tcp\n", "    mode http\n    option httplog\n")
}

/// HTTP keep-alive on the client side: 3 requests on one client connection from 10.10.1.5,
/// each forwarded from the client's IP (`usesrc clientip`), to the same server (`balance
/// source`). (`usesrc client` with keep-alive: `rhaproxy_http_usesrc_client_keepalive`.)
fn check_http_keepalive(lab: &Lab, what: &str) -> Seen {
    let mut seen: Seen = Vec::new();
    let src = sa("10.10.1.5:0");
    let rs = lab
        .http_keepalive(Role::Client, Some(src), sa("10.10.1.1:80"), 3, T)
        .unwrap_or_else(|e| panic!("keep-alive {what}: {e}\n{}", lab.proxy_logs(8)));
    assert_eq!(rs.len(), 3);
    for (i, r) in rs.iter().enumerate() {
        let e = r
            .echo()
            .unwrap_or_else(|| panic!("keep-alive {what} #{i}: {rs:?}"));
        assert_eq!(e.peer.ip(), src.ip(), "keep-alive {what} #{i}: {e:?}");
        seen.push((format!("keep-alive #{i}"), e.peer.ip(), e.local, e.name));
    }
    seen
}

/// rhaproxy carries every path of `cfg` with `fw`; when HAProxy is installed, the same config
/// runs through HAProxy first in the same lab and both must show exactly the same things
/// (including which server `balance source` picks for each of the 8 client IPs).
fn rhaproxy_paths_with(fw: Firewall, test: &str, cfg: &str, http: bool) {
    if !netns::can_run(test) {
        return;
    }
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(fw, true, true).expect("firewall");
    lab.intercept_range_on_srv2().expect("10.10.7.0/24 on srv2");
    lab.start_echo_servers().expect("echo servers");
    let check = |lab: &Lab, what: &str| {
        let mut seen = check_tcp_paths(lab, what);
        if http {
            seen.extend(check_http_keepalive(lab, what));
        }
        seen
    };
    let reference = if netns::which(HAPROXY) {
        let id = lab
            .start_proxy(HAPROXY, "haproxy", cfg, TCP_PORTS)
            .unwrap_or_else(|e| panic!("haproxy start: {e}"));
        let seen = check(&lab, &format!("haproxy {fw:?}"));
        lab.stop(id);
        Some(seen)
    } else {
        netns::skipped(&format!("{test}: haproxy not installed, no comparison"));
        None
    };
    lab.start_proxy(env!("CARGO_BIN_EXE_rhaproxy"), "rhaproxy", cfg, TCP_PORTS)
        .unwrap_or_else(|e| panic!("rhaproxy start: {e}"));
    let seen = check(&lab, &format!("rhaproxy {fw:?}"));
    if let Some(reference) = reference {
        assert_eq!(seen, reference, "rhaproxy and HAProxy 2.6 differ");
    }
}

fn rhaproxy_paths(fw: Firewall, test: &str) {
    rhaproxy_paths_with(fw, test, &tcp_config(), false);
}

/// The same paths in `mode http` through the HTTP runtime, plus client-side keep-alive.
#[test]
fn rhaproxy_http_paths_nft() {
    rhaproxy_paths_with(
        Firewall::Nft,
        "rhaproxy_http_paths_nft",
        &http_config(),
        true,
    );
}

#[test]
fn rhaproxy_http_paths_iptables() {
    rhaproxy_paths_with(
        Firewall::Iptables,
        "rhaproxy_http_paths_iptables",
        &http_config(),
        true,
    );
}

/// HTTP mode, `usesrc client` (client IP *and port*): 20 client connections with 3 requests
/// each; the echo server closes after every response, so each request needs a new server
/// connection from the same client IP:port. HAProxy 2.6: 60/60. (Was a runtime bug: the
/// previous, server-closed connection stayed open until the next one was connected, so
/// connect() failed with EADDRNOTAVAIL; fixed in the runtime branch: a server `Connection:
/// close` is never reused and a dead connection is closed before its replacement.)
#[test]
fn rhaproxy_http_usesrc_client_keepalive() {
    let test = "rhaproxy_http_usesrc_client_keepalive";
    if !netns::can_run(test) {
        return;
    }
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(Firewall::Nft, true, true).unwrap();
    lab.intercept_range_on_srv2().unwrap();
    lab.start_echo_servers().unwrap();
    let cfg = http_config();
    let mut proxies = vec![env!("CARGO_BIN_EXE_rhaproxy")];
    if netns::which(HAPROXY) {
        proxies.insert(0, HAPROXY);
    }
    for proxy in proxies {
        let id = lab.start_proxy(proxy, "proxy", &cfg, TCP_PORTS).unwrap();
        let mut bad = Vec::new();
        for k in 0..20u16 {
            let src = SocketAddr::new(ip("10.10.1.4"), 46100 + k);
            let rs = lab
                .http_keepalive(Role::Client, Some(src), sa("10.10.1.1:82"), 3, T)
                .unwrap_or_else(|e| panic!("{proxy} {src}: {e}"));
            let ok = rs
                .iter()
                .filter(|r| r.echo().is_some_and(|e| e.peer == src))
                .count();
            if ok != 3 {
                let st: Vec<u16> = rs.iter().map(|r| r.status).collect();
                bad.push(format!("{src}: {st:?}"));
            }
        }
        assert!(bad.is_empty(), "{proxy}: {bad:?}\n{}", lab.proxy_logs(6));
        lab.stop(id);
    }
}

#[test]
fn rhaproxy_paths_nft() {
    rhaproxy_paths(Firewall::Nft, "rhaproxy_paths_nft");
}

#[test]
fn rhaproxy_paths_iptables() {
    rhaproxy_paths(Firewall::Iptables, "rhaproxy_paths_iptables");
}

#[test]
fn rhaproxy_paths_iptables_legacy() {
    if !netns::which("iptables-legacy-restore") {
        netns::skipped("SKIPPED (needs iptables-legacy): rhaproxy_paths_iptables_legacy");
        return;
    }
    rhaproxy_paths(Firewall::IptablesLegacy, "rhaproxy_paths_iptables_legacy");
}

#[test]
fn haproxy_paths_iptables() {
    run_haproxy_paths(Firewall::Iptables, "haproxy_paths_iptables");
}

#[test]
fn haproxy_paths_nft() {
    run_haproxy_paths(Firewall::Nft, "haproxy_paths_nft");
}

#[test]
fn haproxy_paths_iptables_legacy() {
    if !netns::which("iptables-legacy-restore") {
        netns::skipped("SKIPPED (needs iptables-legacy): haproxy_paths_iptables_legacy");
        return;
    }
    run_haproxy_paths(Firewall::IptablesLegacy, "haproxy_paths_iptables_legacy");
}

// ------------------------------------------------------------------ host check in the lab

use rhaproxy::tproxy::addr::{Family, ListenAddr, ServerAddr};
use rhaproxy::tproxy::hostcheck::{self, Origin, Report, TransparencyNeeds, UsesrcBackend};

/// `file:line` of the first config line containing `needle`.
fn origin(cfg: &str, needle: &str) -> Origin {
    let line = cfg
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in config"));
    Origin::new("lab.cfg", line as u32 + 1)
}

/// What the configuration layer would derive from `full_config()`.
fn full_needs(cfg: &str) -> TransparencyNeeds {
    let la = |s: &str| ListenAddr(s.parse().unwrap());
    let srv = |s: &str| ServerAddr(s.parse().unwrap());
    let mut n = TransparencyNeeds::default();
    for b in [
        "10.10.1.1:80",
        "10.10.9.9:80",
        "0.0.0.0:8080",
        "0.0.0.0:8081",
        "[fd00:1::1]:80",
    ] {
        n.transparent_binds
            .push((la(b), origin(cfg, &format!("bind {b} transparent"))));
    }
    for b in [
        "10.10.1.1:81",
        "10.10.1.1:82",
        "10.10.1.1:83",
        "10.10.1.1:84",
        "10.10.1.1:85",
    ] {
        n.plain_binds
            .push((la(b), origin(cfg, &format!("bind {b}"))));
    }
    let be = |name: &str, family, servers: &[&str], usesrc: &str| UsesrcBackend {
        name: name.into(),
        family,
        origin: origin(cfg, usesrc),
        servers: servers.iter().map(|s| srv(s)).collect(),
    };
    n.usesrc_backends = vec![
        be(
            "bk_web",
            Family::V4,
            &["10.10.2.2:80", "10.10.2.3:80"],
            "usesrc clientip",
        ),
        be("bk_client", Family::V4, &["10.10.2.3:80"], "usesrc client"),
        be("bk_orig", Family::V4, &["0.0.0.0:0"], "usesrc clientip"),
        be(
            "bk_v6",
            Family::V6,
            &["[fd00:2::2]:80"],
            "source [::] usesrc clientip",
        ),
        be("ls_tcp", Family::V4, &["10.10.2.2:80"], "usesrc clientip"),
        be(
            "bk_fixed",
            Family::V4,
            &["10.10.2.3:80"],
            "usesrc 10.10.1.200",
        ),
    ];
    n
}

/// The same, derived by rhaproxy's own config parser and `tproxy::from_ir`.
fn ir_needs(cfg: &str) -> TransparencyNeeds {
    // `http-request` (only used to expose %[dst] to the echo server) is not parsed by rhaproxy
    // yet; blank it out, keeping the line numbers.
    let cfg: String = cfg
        .lines()
        .map(|l| if l.contains("http-request") { "" } else { l })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut d = rhaproxy::diag::Diags::captured();
    let parsed = rhaproxy::config::parse_str("lab.cfg", &cfg, &mut d).expect("config parses");
    assert!(!d.fatal, "{:?}", d.messages);
    rhaproxy::tproxy::from_ir::needs(&parsed)
}

#[test]
fn ir_needs_match_hand_written() {
    let cfg = full_config();
    let (a, b) = (full_needs(&cfg), ir_needs(&cfg));
    let sorted = |v: &[(ListenAddr, Origin)]| {
        let mut v = v.to_vec();
        v.sort_by_key(|(_, o)| o.line);
        v
    };
    assert_eq!(sorted(&a.transparent_binds), sorted(&b.transparent_binds));
    assert_eq!(sorted(&a.plain_binds), sorted(&b.plain_binds));
    let key = |n: &TransparencyNeeds| {
        let mut v: Vec<(String, Family, Vec<ServerAddr>)> = n
            .usesrc_backends
            .iter()
            .map(|b| (b.name.clone(), b.family, b.servers.clone()))
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    let mut hand = key(&a);
    for h in &mut hand {
        h.2.retain(|s| !s.ip().is_unspecified());
    }
    assert_eq!(hand, key(&b));
}

fn host_check(lab: &Lab, needs: &TransparencyNeeds) -> Report {
    let needs = needs.clone();
    lab.in_ns(Role::Lb, move || hostcheck::run(&needs))
}

fn fails(lab: &Lab, from: Role, dst: &str) -> bool {
    match lab.http_get(from, None, sa(dst), "/", T) {
        Ok(r) => r.status != 200,
        Err(_) => true,
    }
}

/// Assert the report names `id` (as a missing piece) with exactly `fix`, and nothing else missing.
fn expect_missing(r: &Report, id: &str, fix: &[&str]) {
    let errs: Vec<&str> = r.errors().map(|f| f.id.as_str()).collect();
    assert_eq!(errs, vec![id], "{r}");
    let f = r.find(id).unwrap();
    assert_eq!(f.fix, fix, "{r}");
    assert_eq!(r.exit_status(), 1);
}

/// Apply a finding's fix commands in the proxy namespace.
fn apply(lab: &Lab, r: &Report, id: &str, subst: &[(&str, &str)]) {
    let mut script = r.find(id).unwrap().fix.join("\n");
    for (a, b) in subst {
        script = script.replace(a, b);
    }
    lab.sh(Role::Lb, &script)
        .unwrap_or_else(|e| panic!("fix for {id} failed: {e}"));
}

fn ready(lab: &Lab, needs: &TransparencyNeeds) {
    let r = host_check(lab, needs);
    assert!(r.ready(), "{r}");
    assert_eq!(r.exit_status(), 0);
}

#[test]
fn hostcheck_each_piece_iptables() {
    let test = "hostcheck_each_piece_iptables";
    if !haproxy_available(test) {
        return;
    }
    let cfg = full_config();
    let needs = full_needs(&cfg);
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(Firewall::Iptables, true, true).unwrap();
    lab.start_echo_servers().unwrap();
    lab.start_proxy(HAPROXY, "haproxy", &cfg, FULL_PORTS)
        .unwrap();
    let r = host_check(&lab, &needs);
    println!("{r}");
    assert!(r.ready(), "{r}");
    assert!(r.find("same-subnet-clients").is_some(), "{r}");
    get(&lab, Role::Client, None, "10.10.1.1:80");

    // T11a: the socket-match rule
    lab.sh(
        Role::Lb,
        "iptables -t mangle -D PREROUTING -p tcp -m socket -j DIVERT",
    )
    .unwrap();
    assert!(fails(&lab, Role::Client, "10.10.1.1:80"), "T11a must fail");
    let r = host_check(&lab, &needs);
    expect_missing(
        &r,
        "ipv4-socket-rule",
        &["iptables -t mangle -I PREROUTING -p tcp -m socket --transparent -j DIVERT"],
    );
    assert!(
        r.find("ipv4-socket-rule")
            .unwrap()
            .needed_by
            .iter()
            .any(|n| n.contains("bk_web")),
        "{r}"
    );
    apply(&lab, &r, "ipv4-socket-rule", &[]);
    get(&lab, Role::Client, None, "10.10.1.1:80");
    ready(&lab, &needs);

    // T11c: the fwmark policy rule
    lab.sh(Role::Lb, "ip rule del fwmark 111 lookup 100")
        .unwrap();
    assert!(fails(&lab, Role::Client, "10.10.1.1:80"), "T11c must fail");
    let r = host_check(&lab, &needs);
    expect_missing(
        &r,
        "ipv4-fwmark-rule",
        &["ip rule add fwmark 111 lookup 100"],
    );
    apply(&lab, &r, "ipv4-fwmark-rule", &[]);
    get(&lab, Role::Client, None, "10.10.1.1:80");
    ready(&lab, &needs);

    // T11b: the local route table
    lab.sh(Role::Lb, "ip route del local 0.0.0.0/0 dev lo table 100")
        .unwrap();
    assert!(fails(&lab, Role::Client, "10.10.1.1:80"), "T11b must fail");
    let r = host_check(&lab, &needs);
    expect_missing(
        &r,
        "ipv4-local-route",
        &["ip route add local 0.0.0.0/0 dev lo table 100"],
    );
    apply(&lab, &r, "ipv4-local-route", &[]);
    get(&lab, Role::Client, None, "10.10.1.1:80");
    ready(&lab, &needs);

    // IPv6 twins
    lab.sh(Role::Lb, "ip -6 rule del fwmark 111 lookup 100")
        .unwrap();
    assert!(
        fails(&lab, Role::Client, "[fd00:1::1]:80"),
        "IPv6 without rule must fail"
    );
    let r = host_check(&lab, &needs);
    expect_missing(
        &r,
        "ipv6-fwmark-rule",
        &["ip -6 rule add fwmark 111 lookup 100"],
    );
    apply(&lab, &r, "ipv6-fwmark-rule", &[]);
    get(&lab, Role::Client, None, "[fd00:1::1]:80");
    lab.sh(
        Role::Lb,
        "ip6tables -t mangle -D PREROUTING -p tcp -m socket -j DIVERT",
    )
    .unwrap();
    assert!(fails(&lab, Role::Client, "[fd00:1::1]:80"));
    let r = host_check(&lab, &needs);
    expect_missing(
        &r,
        "ipv6-socket-rule",
        &["ip6tables -t mangle -I PREROUTING -p tcp -m socket --transparent -j DIVERT"],
    );
    apply(&lab, &r, "ipv6-socket-rule", &[]);
    get(&lab, Role::Client, None, "[fd00:1::1]:80");
    ready(&lab, &needs);

    // ip_forward: the proxied paths work without it, but interception is configured
    lab.sysctl(Role::Lb, "net.ipv4.ip_forward", "0").unwrap();
    get(&lab, Role::Client, None, "10.10.1.1:80");
    let r = host_check(&lab, &needs);
    expect_missing(&r, "ipv4-forwarding", &["sysctl -w net.ipv4.ip_forward=1"]);
    apply(&lab, &r, "ipv4-forwarding", &[]);
    ready(&lab, &needs);

    // capability: the check run by a thread without CAP_NET_ADMIN/CAP_NET_RAW
    let n2 = needs.clone();
    let r = lab.in_ns(Role::Lb, move || {
        use rhaproxy::tproxy::privs::{Cap, CapState, set_thread_caps, thread_caps};
        let st = thread_caps().unwrap();
        let keep = !(Cap::NetAdmin.bit() | Cap::NetRaw.bit());
        set_thread_caps(&CapState {
            effective: st.effective & keep,
            permitted: st.permitted & keep,
            inheritable: 0,
        })
        .unwrap();
        hostcheck::run(&n2)
    });
    let errs: Vec<&str> = r.errors().map(|f| f.id.as_str()).collect();
    assert_eq!(errs, vec!["capability"], "{r}");

    // the TPROXY target of the intercepting listener 0.0.0.0:8080
    lab.sh(
        Role::Lb,
        "iptables -t mangle -D PREROUTING -i lb-c -d 10.10.7.0/24 -p tcp -m tcp --dport 80 -j TPROXY --on-port 8080 --tproxy-mark 0x6f/0xffffffff",
    )
    .unwrap();
    assert!(
        fails(&lab, Role::Client, "10.10.7.7:80"),
        "no TPROXY target must fail"
    );
    let r = host_check(&lab, &needs);
    expect_missing(
        &r,
        "ipv4-tproxy-port-8080",
        &[
            "iptables -t mangle -A PREROUTING -p tcp --dport <port-to-intercept> -j TPROXY --on-port 8080 --tproxy-mark 111",
        ],
    );
    apply(
        &lab,
        &r,
        "ipv4-tproxy-port-8080",
        &[("<port-to-intercept>", "80 -d 10.10.7.0/24")],
    );
    let e = get(&lab, Role::Client, None, "10.10.7.7:80");
    assert_eq!(
        (e.peer.ip(), e.xod.as_str()),
        (ip("10.10.1.2"), "10.10.7.7:80")
    );
    ready(&lab, &needs);
    check_transparent_paths(&lab, Firewall::Iptables);
}

#[test]
fn hostcheck_nft_fixes_applied() {
    let test = "hostcheck_nft_fixes_applied";
    if !haproxy_available(test) {
        return;
    }
    let cfg = full_config();
    let needs = ir_needs(&cfg);
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(Firewall::Nft, true, true).unwrap();
    lab.start_echo_servers().unwrap();
    lab.start_proxy(HAPROXY, "haproxy", &cfg, FULL_PORTS)
        .unwrap();
    ready(&lab, &needs);

    // no socket rule at all (IPv4 and IPv6): one inet rule fixes both
    lab.firewall(Firewall::Nft, false, true).unwrap();
    assert!(fails(&lab, Role::Client, "10.10.1.1:80"));
    let r = host_check(&lab, &needs);
    let errs: Vec<&str> = r.errors().map(|f| f.id.as_str()).collect();
    assert_eq!(errs, vec!["ipv4-socket-rule", "ipv6-socket-rule"], "{r}");
    let fix = &r.find("ipv4-socket-rule").unwrap().fix;
    assert_eq!(
        fix.last().unwrap(),
        "nft add rule inet rhaproxy prerouting meta l4proto tcp socket transparent 1 meta mark set 111 accept"
    );
    apply(&lab, &r, "ipv4-socket-rule", &[]);
    ready(&lab, &needs);
    get(&lab, Role::Client, None, "10.10.1.1:80");
    get(&lab, Role::Client, None, "[fd00:1::1]:80");

    // no TPROXY rules: both intercepting ports named
    lab.firewall(Firewall::Nft, true, false).unwrap();
    assert!(fails(&lab, Role::Client, "10.10.7.7:80"));
    let r = host_check(&lab, &needs);
    let errs: Vec<&str> = r.errors().map(|f| f.id.as_str()).collect();
    assert_eq!(
        errs,
        vec!["ipv4-tproxy-port-8080", "ipv4-tproxy-port-8081"],
        "{r}"
    );
    assert_eq!(
        r.find("ipv4-tproxy-port-8081").unwrap().fix.last().unwrap(),
        "nft add rule inet rhaproxy prerouting meta nfproto ipv4 tcp dport <port-to-intercept> tproxy ip to :8081 meta mark set 111 accept"
    );
    apply(
        &lab,
        &r,
        "ipv4-tproxy-port-8080",
        &[(
            "tcp dport <port-to-intercept>",
            "ip daddr 10.10.7.0/24 tcp dport 80",
        )],
    );
    apply(
        &lab,
        &r,
        "ipv4-tproxy-port-8081",
        &[("<port-to-intercept>", "8000")],
    );
    ready(&lab, &needs);
    check_transparent_paths(&lab, Firewall::Nft);
}

/// T7 / T7b: a client inside the servers' subnet fails; the check's backend fix repairs it.
#[test]
fn same_subnet_client_and_backend_fix() {
    let test = "same_subnet_client_and_backend_fix";
    if !haproxy_available(test) {
        return;
    }
    let cfg = full_config();
    let needs = full_needs(&cfg);
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(Firewall::Iptables, true, true).unwrap();
    lab.start_echo_servers().unwrap();
    lab.start_proxy(HAPROXY, "haproxy", &cfg, FULL_PORTS)
        .unwrap();
    assert!(fails(&lab, Role::Client2, "10.10.1.1:80"), "T7 must fail");
    let r = host_check(&lab, &needs);
    let w = r
        .findings
        .iter()
        .find(|f| f.id == "same-subnet-clients" && f.needed_by[0].contains("bk_web"))
        .unwrap_or_else(|| panic!("{r}"));
    assert!(w.message.contains("10.10.2.0/24"), "{}", w.message);
    assert_eq!(
        w.fix,
        vec![
            "ip route add default via 10.10.2.1 table 200",
            "ip rule add ipproto tcp sport 80 lookup 200 priority 100"
        ]
    );
    for srv in [Role::Srv1, Role::Srv2] {
        lab.sh(srv, &w.fix.join("\n")).unwrap();
    }
    let e = get(&lab, Role::Client2, None, "10.10.1.1:80");
    assert_eq!(e.peer.ip(), ip("10.10.2.50"), "T7b: {e:?}");
    let e = get(&lab, Role::Client, None, "10.10.1.1:80");
    assert_eq!(e.peer.ip(), ip("10.10.1.2"), "T7b normal client: {e:?}");
}

/// T3b / T3c / T8a: VIP without `transparent`, hidden by ip_nonlocal_bind=1; `user` without caps.
#[test]
fn nonlocal_bind_and_user() {
    let test = "nonlocal_bind_and_user";
    if !haproxy_available(test) {
        return;
    }
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(Firewall::Iptables, true, false).unwrap();
    lab.start_echo_servers().unwrap();
    let cfg = |bind: &str, global: &str| {
        format!(
            "global\n    log stdout format raw local0 info\n{global}\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    retries 1\n\
             frontend ft_vip\n    bind {bind}\n    default_backend bk_web\n\
             backend bk_web\n    source 0.0.0.0 usesrc clientip\n    server srv1 10.10.2.2:80\n"
        )
    };
    let plain = cfg("10.10.9.9:80", "");
    let needs = TransparencyNeeds {
        plain_binds: vec![(
            ListenAddr(sa("10.10.9.9:80")),
            origin(&plain, "bind 10.10.9.9:80"),
        )],
        usesrc_backends: vec![UsesrcBackend {
            name: "bk_web".into(),
            family: Family::V4,
            origin: origin(&plain, "usesrc clientip"),
            servers: vec![ServerAddr(sa("10.10.2.2:80"))],
        }],
        ..Default::default()
    };
    // T3b: HAProxy refuses to start
    let (rc, _, err) = lab.run_proxy(HAPROXY, "t3b", &plain, &["-db"], Duration::from_secs(5));
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("Cannot assign requested address"), "{err}");
    let r = host_check(&lab, &needs);
    let errs: Vec<&str> = r.errors().map(|f| f.id.as_str()).collect();
    assert_eq!(errs, vec!["nonlocal-bind-without-transparent"], "{r}");

    // T3c: with ip_nonlocal_bind=1 it starts, and connections hang
    lab.sysctl(Role::Lb, "net.ipv4.ip_nonlocal_bind", "1")
        .unwrap();
    let id = lab.start_proxy(HAPROXY, "t3c", &plain, &[80]).unwrap();
    assert!(fails(&lab, Role::Client, "10.10.9.9:80"), "T3c must hang");
    let r = host_check(&lab, &needs);
    let errs: Vec<&str> = r.errors().map(|f| f.id.as_str()).collect();
    assert_eq!(errs, vec!["nonlocal-bind-hides-missing-transparent"], "{r}");
    let line = origin(&plain, "bind 10.10.9.9:80");
    assert_eq!(
        r.find("nonlocal-bind-hides-missing-transparent")
            .unwrap()
            .fix[0],
        format!("add `transparent` to the bind line at {line}")
    );
    lab.stop(id);
    // applying the fix: add `transparent`
    let fixed = cfg("10.10.9.9:80 transparent", "");
    lab.start_proxy(HAPROXY, "t3-fixed", &fixed, &[80]).unwrap();
    let e = get(&lab, Role::Client, None, "10.10.9.9:80");
    assert_eq!(e.peer.ip(), ip("10.10.1.2"));

    // T8a: `user nobody` + usesrc: HAProxy refuses to start; the check names it
    let with_user = cfg(
        "10.10.9.9:81 transparent",
        "    user nobody\n    group nogroup",
    );
    let (rc, _, err) = lab.run_proxy(HAPROXY, "t8a", &with_user, &["-db"], Duration::from_secs(5));
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("global.uid cannot be changed"), "{err}");
    let mut needs_user = needs.clone();
    needs_user.plain_binds.clear();
    needs_user.transparent_binds = vec![(
        ListenAddr(sa("10.10.9.9:81")),
        origin(&with_user, "bind 10.10.9.9:81"),
    )];
    needs_user.runs_as_user = Some("nobody".into());
    let r = host_check(&lab, &needs_user);
    let errs: Vec<&str> = r.errors().map(|f| f.id.as_str()).collect();
    assert_eq!(errs, vec!["user-drops-capability"], "{r}");
    needs_user.keeps_caps = true;
    assert!(host_check(&lab, &needs_user).ready());
}

/// The guard removes namespaces and processes also when the test panics.
#[test]
fn lab_cleans_up_on_panic() {
    let test = "lab_cleans_up_on_panic";
    if !netns::can_run(test) {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let res = std::panic::catch_unwind(move || {
        let mut lab = Lab::up(test).expect("lab up");
        lab.start_echo_servers().unwrap();
        let pids: Vec<u32> = (0..4)
            .map(|i| lab.proc(netns::ProcId::nth(i)).pid)
            .collect();
        tx.send((lab.prefix.clone(), pids, lab.dir.clone()))
            .unwrap();
        panic!("deliberate panic inside a lab");
    });
    assert!(res.is_err());
    let (prefix, pids, dir) = rx.recv().unwrap();
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(!list.contains(&prefix), "namespaces left behind: {list}");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} left behind"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

// ------------------------------------------------------------------ rhaproxy's socket layer

/// A minimal transparent relay built only from `rhaproxy::tproxy::sockopt`, run in the proxy
/// namespace: proves the listener, original-destination and spoofing sockets on real TPROXY
/// plumbing (not just loopback) before the runtime uses them.
#[test]
fn sockopt_relay_in_lab_nft() {
    sockopt_relay_in_lab(Firewall::Nft, "sockopt_relay_in_lab_nft");
}

#[test]
fn sockopt_relay_in_lab_iptables() {
    sockopt_relay_in_lab(Firewall::Iptables, "sockopt_relay_in_lab_iptables");
}

fn sockopt_relay_in_lab(fw: Firewall, test: &str) {
    use rhaproxy::tproxy::addr::{ClientAddr, OrigDstAddr};
    use rhaproxy::tproxy::sockopt::{
        ListenOpts, SourceBind, original_destination, transparent_connect_socket,
        transparent_listener,
    };
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    if !netns::can_run(test) {
        return;
    }
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(fw, true, true).unwrap();
    lab.start_echo_servers().unwrap();

    #[derive(Clone, Copy)]
    enum Route {
        To(&'static str, bool),
        OrigDst,
    }
    // listen address -> (where to, usesrc client (true) or clientip (false))
    let plan: Vec<(&str, Route)> = vec![
        ("10.10.9.9:80", Route::To("10.10.2.2:80", false)), // VIP on no interface
        ("10.10.1.1:82", Route::To("10.10.2.3:80", true)),  // usesrc client
        ("0.0.0.0:8081", Route::OrigDst),                   // intercept, server = original dst
        ("[fd00:1::1]:80", Route::To("[fd00:2::2]:80", false)),
        ("[::]:8082", Route::OrigDst), // IPv6 intercept
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let stop2 = stop.clone();
    let ns = format!("/run/netns/{}", lab.ns(Role::Lb));
    let relay = std::thread::spawn(move || {
        let f = std::fs::File::open(&ns).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let opts = ListenOpts {
            transparent: true,
            ..Default::default()
        };
        let ls: Vec<(std::net::TcpListener, Route)> = plan
            .iter()
            .map(|(a, r)| {
                let s = transparent_listener(ListenAddr(sa(a)), &opts).unwrap();
                (std::net::TcpListener::from(s), *r)
            })
            .collect();
        ready_tx.send(()).unwrap();
        while !stop2.load(Ordering::Relaxed) {
            for (l, route) in &ls {
                let Ok((mut c, peer)) = l.accept() else {
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                let OrigDstAddr(orig) = original_destination(&c).unwrap();
                let (server, client_port) = match route {
                    Route::To(s, cp) => (ServerAddr(sa(s)), *cp),
                    Route::OrigDst => (ServerAddr(orig), false),
                };
                let client = ClientAddr(peer);
                let bind = if client_port {
                    SourceBind::client(client)
                } else {
                    SourceBind::client_ip(client)
                };
                let sock = transparent_connect_socket(server, &bind).unwrap();
                sock.set_nonblocking(false).unwrap();
                sock.connect(&server.sock_addr().into()).unwrap();
                let mut s: std::net::TcpStream = sock.into();
                let mut req = Vec::new();
                let mut b = [0u8; 2048];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = c.read(&mut b).unwrap();
                    if n == 0 {
                        break;
                    }
                    req.extend_from_slice(&b[..n]);
                }
                let hdr = format!("X-Orig-Dst: {orig}\r\n\r\n");
                let end = req.len() - 2;
                req.splice(end.., hdr.into_bytes());
                s.write_all(&req).unwrap();
                std::io::copy(&mut s, &mut c).unwrap();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let e = get(&lab, Role::Client, None, "10.10.9.9:80");
        assert_eq!(
            (e.peer.ip(), e.name.as_str()),
            (ip("10.10.1.2"), "srv1"),
            "{e:?}"
        );
        assert_eq!(e.xod, "10.10.9.9:80");
        let rs = lab
            .http_keepalive(
                Role::Client,
                Some(sa("10.10.1.6:46001")),
                sa("10.10.1.1:82"),
                1,
                T,
            )
            .unwrap();
        assert_eq!(
            rs[0].echo().unwrap().peer,
            sa("10.10.1.6:46001"),
            "usesrc client"
        );
        let e = get(&lab, Role::Client, Some("10.10.1.7"), "10.10.2.3:8000");
        assert_eq!(
            (e.peer.ip(), e.local),
            (ip("10.10.1.7"), sa("10.10.2.3:8000")),
            "{e:?}"
        );
        assert_eq!(e.xod, "10.10.2.3:8000", "original destination");
        let e = get(&lab, Role::Client, None, "[fd00:1::1]:80");
        assert_eq!(
            (e.peer.ip(), e.local),
            (ip("fd00:1::2"), sa("[fd00:2::2]:80")),
            "{e:?}"
        );
        let e = get(&lab, Role::Client, None, "[fd00:2::3]:8000");
        assert_eq!(
            (e.peer.ip(), e.local),
            (ip("fd00:1::2"), sa("[fd00:2::3]:8000")),
            "{e:?}"
        );
        assert_eq!(e.xod, "[fd00:2::3]:8000", "IPv6 original destination");

        // the host check sees the IPv6 TPROXY rule of the [::]:8082 listener, and misses it
        let o = Origin::new("relay", 1);
        let needs = TransparencyNeeds {
            transparent_binds: [
                "10.10.9.9:80",
                "0.0.0.0:8081",
                "[fd00:1::1]:80",
                "[::]:8082",
            ]
            .iter()
            .map(|a| (ListenAddr(sa(a)), o.clone()))
            .collect(),
            plain_binds: vec![(ListenAddr(sa("10.10.1.1:82")), o.clone())],
            usesrc_backends: vec![
                UsesrcBackend {
                    name: "v4".into(),
                    family: Family::V4,
                    origin: o.clone(),
                    servers: vec![ServerAddr(sa("10.10.2.2:80"))],
                },
                UsesrcBackend {
                    name: "v6".into(),
                    family: Family::V6,
                    origin: o.clone(),
                    servers: vec![ServerAddr(sa("[fd00:2::2]:80"))],
                },
            ],
            ..Default::default()
        };
        let r = host_check(&lab, &needs);
        assert!(r.ready(), "{r}");
        assert!(
            r.ok.iter()
                .any(|l| l.starts_with("ipv6 TPROXY to port 8082")),
            "{r}"
        );
        lab.firewall(fw, true, false).unwrap();
        let r = host_check(&lab, &needs);
        let errs: Vec<&str> = r.errors().map(|f| f.id.as_str()).collect();
        assert_eq!(
            errs,
            vec!["ipv4-tproxy-port-8081", "ipv6-tproxy-port-8082"],
            "{r}"
        );
    }));
    stop.store(true, Ordering::Relaxed);
    relay.join().unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

const CT_INVALID_DROP: &str = "table inet rhxct {
  chain input { type filter hook input priority filter; policy accept; ct state invalid counter drop; }
  chain forward { type filter hook forward priority filter; policy accept; ct state invalid counter drop; }
  chain output { type filter hook output priority filter; policy accept; ct state invalid counter drop; }
}
";

/// After the paths ran: conntrack saw the connections and dropped nothing as invalid.
fn assert_conntrack_clean(lab: &Lab) {
    let tracked = lab
        .sh(
            Role::Lb,
            "if [ -r /proc/net/nf_conntrack ]; then grep -c 'dport=80' /proc/net/nf_conntrack || true; else echo -; fi",
        )
        .unwrap();
    println!("conntrack entries with dport=80: {}", tracked.trim());
    if let Ok(n) = tracked.trim().parse::<u32>() {
        assert!(n > 0, "conntrack saw no connection");
    }
    let counters = lab.sh(Role::Lb, "nft list table inet rhxct").unwrap();
    assert!(
        counters
            .lines()
            .filter(|l| l.contains("counter"))
            .all(|l| l.contains("packets 0 ")),
        "packets dropped as invalid:\n{counters}"
    );
}

/// T12: with conntrack forced on and `ct state invalid drop` everywhere, every transparent mode
/// still works (the spoofed server connections are not seen as invalid).
#[test]
fn haproxy_paths_with_conntrack_invalid_drop() {
    let test = "haproxy_paths_with_conntrack_invalid_drop";
    if !haproxy_available(test) {
        return;
    }
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(Firewall::Nft, true, true).unwrap();
    lab.feed(Role::Lb, &["nft", "-f", "-"], CT_INVALID_DROP)
        .unwrap();
    lab.start_echo_servers().unwrap();
    lab.start_proxy(HAPROXY, "haproxy", &full_config(), FULL_PORTS)
        .unwrap();
    check_transparent_paths(&lab, Firewall::Nft);
    assert_conntrack_clean(&lab);
}

/// T12 with rhaproxy: every TCP-mode path (usesrc clientip, client, ADDR, interception, IPv6)
/// with conntrack on and invalid packets dropped in input, forward and output.
#[test]
fn rhaproxy_paths_with_conntrack_invalid_drop() {
    let test = "rhaproxy_paths_with_conntrack_invalid_drop";
    if !netns::can_run(test) {
        return;
    }
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(Firewall::Nft, true, true).unwrap();
    lab.feed(Role::Lb, &["nft", "-f", "-"], CT_INVALID_DROP)
        .unwrap();
    lab.intercept_range_on_srv2().unwrap();
    lab.start_echo_servers().unwrap();
    lab.start_proxy(
        env!("CARGO_BIN_EXE_rhaproxy"),
        "rhaproxy",
        &tcp_config(),
        TCP_PORTS,
    )
    .unwrap();
    check_tcp_paths(&lab, "rhaproxy conntrack");
    assert_conntrack_clean(&lab);
}

/// Rules loaded with iptables-legacy (read through iptables-legacy-save): the fix uses it too.
#[test]
fn hostcheck_iptables_legacy() {
    let test = "hostcheck_iptables_legacy";
    if !haproxy_available(test) {
        return;
    }
    if !netns::which("iptables-legacy-restore") {
        netns::skipped("SKIPPED (needs iptables-legacy): hostcheck_iptables_legacy");
        return;
    }
    let cfg = full_config();
    let needs = full_needs(&cfg);
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(Firewall::IptablesLegacy, true, true).unwrap();
    lab.start_echo_servers().unwrap();
    lab.start_proxy(HAPROXY, "haproxy", &cfg, FULL_PORTS)
        .unwrap();
    ready(&lab, &needs);
    lab.sh(
        Role::Lb,
        "iptables-legacy -t mangle -D PREROUTING -p tcp -m socket -j DIVERT",
    )
    .unwrap();
    assert!(fails(&lab, Role::Client, "10.10.1.1:80"));
    let r = host_check(&lab, &needs);
    expect_missing(
        &r,
        "ipv4-socket-rule",
        &["iptables-legacy -t mangle -I PREROUTING -p tcp -m socket --transparent -j DIVERT"],
    );
    apply(&lab, &r, "ipv4-socket-rule", &[]);
    get(&lab, Role::Client, None, "10.10.1.1:80");
    ready(&lab, &needs);
}

// ------------------------------------------------------------------ user + TPROXY (T8 fixed)

const RELAY_CHILD_ENV: &str = "RHX_RELAY_CHILD";

/// Body of the re-executed test binary (a no-op in a normal run): runs in the proxy namespace,
/// binds a transparent VIP listener as root, drops to `nobody` keeping CAP_NET_ADMIN (or
/// nothing), then relays one connection with `usesrc clientip` from a socket created *after*
/// the drop.
#[test]
fn relay_child() {
    use rhaproxy::tproxy::addr::ClientAddr;
    use rhaproxy::tproxy::privs::{Cap, PrivDrop, caps_from_status, drop_privileges, resolve_user};
    use rhaproxy::tproxy::sockopt::{
        ListenOpts, SourceBind, missing_capability, transparent_connect_socket,
        transparent_listener,
    };
    use std::io::{Read, Write};
    let Ok(mode) = std::env::var(RELAY_CHILD_ENV) else {
        return;
    };
    let l = transparent_listener(
        ListenAddr(sa("10.10.9.9:90")),
        &ListenOpts {
            transparent: true,
            ..Default::default()
        },
    )
    .unwrap();
    let (uid, gid) = resolve_user("nobody").unwrap();
    drop_privileges(&PrivDrop {
        uid: Some(uid),
        gid: Some(gid),
        keep: if mode == "keep" {
            vec![Cap::NetAdmin]
        } else {
            vec![]
        },
        drop_bounding: true,
        chroot: None,
    })
    .unwrap();
    let st = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    println!(
        "uid={} CapEff={:#x}",
        nix::unistd::getuid(),
        caps_from_status(&st, "CapEff").unwrap()
    );
    let l = std::net::TcpListener::from(l);
    l.set_nonblocking(false).unwrap();
    let (mut c, peer) = l.accept().unwrap();
    let server = ServerAddr(sa("10.10.2.2:80"));
    match transparent_connect_socket(server, &SourceBind::client_ip(ClientAddr(peer))) {
        Ok(sock) => {
            sock.set_nonblocking(false).unwrap();
            sock.connect(&server.sock_addr().into()).unwrap();
            let mut s: std::net::TcpStream = sock.into();
            let mut req = Vec::new();
            let mut b = [0u8; 2048];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = c.read(&mut b).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&b[..n]);
            }
            s.write_all(&req).unwrap();
            std::io::copy(&mut s, &mut c).unwrap();
            println!("RELAYED");
        }
        Err(e) => {
            assert!(missing_capability(&e).is_some(), "{e}");
            println!("REFUSED: {e}");
        }
    }
}

fn spawn_relay_child(lab: &mut Lab, mode: &str) -> netns::ProcId {
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap().to_string();
    let env = format!("{RELAY_CHILD_ENV}={mode}");
    let id = lab
        .spawn(
            Role::Lb,
            &format!("relay-{mode}"),
            &[
                "env",
                &env,
                &exe,
                "--exact",
                "relay_child",
                "--nocapture",
                "--test-threads=1",
            ],
        )
        .unwrap();
    lab.wait_listen(Role::Lb, id, &[90]).unwrap();
    id
}

fn wait_exit(lab: &mut Lab, id: netns::ProcId) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while lab.exited(id).is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = format!(
        "{}{}",
        lab.proc(id).stdout_text(),
        lab.proc(id).stderr_text()
    );
    lab.stop(id);
    out
}

/// HAProxy 2.6 refuses `user` with usesrc (T8a) and silently breaks without privileges (T8b);
/// rhaproxy's privilege drop keeps CAP_NET_ADMIN, so a process running as nobody still spoofs,
/// and without the capability the failure is a named error, not a hang.
#[test]
fn usesrc_as_nobody_keeping_cap_net_admin() {
    let test = "usesrc_as_nobody_keeping_cap_net_admin";
    if !netns::can_run(test) {
        return;
    }
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(Firewall::Iptables, true, false).unwrap();
    lab.start_echo_servers().unwrap();

    let id = spawn_relay_child(&mut lab, "keep");
    let e = get(&lab, Role::Client, Some("10.10.1.8"), "10.10.9.9:90");
    assert_eq!(e.peer.ip(), ip("10.10.1.8"), "{e:?}");
    let out = wait_exit(&mut lab, id);
    assert!(out.contains("uid=65534 CapEff=0x1000"), "{out}");
    assert!(out.contains("RELAYED"), "{out}");

    let id = spawn_relay_child(&mut lab, "nokeep");
    assert!(fails(&lab, Role::Client, "10.10.9.9:90"));
    let out = wait_exit(&mut lab, id);
    assert!(out.contains("uid=65534 CapEff=0x0"), "{out}");
    assert!(
        out.contains("REFUSED: cannot set IP_TRANSPARENT on the outgoing socket for [10.10.1.2:0]")
            && out.contains("CAP_NET_ADMIN"),
        "{out}"
    );
}

/// `rhaproxy -ct -f cfg` in the proxy namespace: exit 0 and READY on the lab, exit 1 naming the
/// missing piece and its fix once a piece is removed.
#[test]
fn rhaproxy_ct_in_lab() {
    let test = "rhaproxy_ct_in_lab";
    if !netns::can_run(test) {
        return;
    }
    let cfg = "global
    log stdout format raw local0 info
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend ft_vip
    bind 10.10.9.9:80 transparent
    bind 0.0.0.0:8080 transparent
    default_backend bk_web
backend bk_web
    source 0.0.0.0 usesrc clientip
    server srv1 10.10.2.2:80
    server srv2 10.10.2.3:80
";
    let bin = env!("CARGO_BIN_EXE_rhaproxy");
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(Firewall::Iptables, true, true).unwrap();
    let (rc, out, err) = lab.run_proxy(bin, "ct-ready", cfg, &["-ct"], Duration::from_secs(10));
    assert_eq!(rc, Some(0), "{out}{err}");
    assert!(
        out.starts_with("transparent proxying host check: READY"),
        "{out}"
    );
    assert!(out.contains("[WARNING] same-subnet-clients"), "{out}");

    lab.sh(Role::Lb, "ip rule del fwmark 111 lookup 100")
        .unwrap();
    let (rc, out, err) = lab.run_proxy(bin, "ct-norule", cfg, &["-ct"], Duration::from_secs(10));
    assert_eq!(rc, Some(1), "{out}{err}");
    assert!(out.contains("[MISSING] ipv4-fwmark-rule"), "{out}");
    assert!(
        out.contains("    fix: ip rule add fwmark 111 lookup 100\n"),
        "{out}"
    );
    assert!(
        out.contains("ct-norule.cfg:9"),
        "the VIP bind line is named: {out}"
    );
}
