//! Transparent proxying in network namespaces (topology of tproxy-topology.md §1).
//!
//! Proves the harness with real HAProxy 2.6 on the behaviours of §2 where HAProxy works, with
//! iptables (nft backend), iptables-legacy and native nftables rules, and tests the host check
//! by removing each plumbing piece in turn. Needs root; otherwise every test prints
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
        println!("SKIPPED (needs haproxy): {test}");
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
    timeout connect 1s
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
"
    )
}

const FULL_PORTS: &[u16] = &[80, 81, 82, 8080, 8081];

fn get(lab: &Lab, from: Role, src: Option<&str>, dst: &str) -> netns::Echo {
    let r = lab
        .http_get(from, src.map(ip), sa(dst), "/", T)
        .unwrap_or_else(|e| panic!("GET {dst} from {src:?}: {e}"));
    assert_eq!(r.status, 200, "GET {dst} from {src:?}: {r:?}");
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

    // T9: IPv6.
    let e = get(lab, Role::Client, None, "[fd00:1::1]:80");
    assert_eq!(e.peer.ip(), ip("fd00:1::2"), "T9 {fw:?}: {e:?}");
    assert_eq!(e.local, sa("[fd00:2::2]:80"), "T9 {fw:?}: {e:?}");
}

fn run_haproxy_paths(fw: Firewall, test: &str) {
    if !haproxy_available(test) {
        return;
    }
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(fw, true, true).expect("firewall");
    lab.start_echo_servers().expect("echo servers");
    lab.start_proxy(HAPROXY, "haproxy", &full_config(), FULL_PORTS)
        .expect("haproxy start");
    check_transparent_paths(&lab, fw);
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
        println!("SKIPPED (needs iptables-legacy): haproxy_paths_iptables_legacy");
        return;
    }
    run_haproxy_paths(Firewall::IptablesLegacy, "haproxy_paths_iptables_legacy");
}
