//! The headline, end to end: rhaproxy (and real HAProxy 2.6 on the same config) in the
//! network-namespace TPROXY lab of `support/netns.rs` (topology of tproxy-topology.md §1),
//! with nftables and iptables plumbing: client IP spoofing (`usesrc clientip`, `client`,
//! fixed address), VIPs on no interface, TPROXY interception with `server x 0.0.0.0` and with
//! `option transparent`, IPv6,
//! `mode tcp`. The config is the lab's full path config without the `http-request` line
//! (not supported by rhaproxy) and without `http-server-close` next to spoofing (a
//! combination rhaproxy rejects on purpose). Needs root; otherwise prints SKIPPED.

#[path = "support/netns.rs"]
mod netns;

use netns::{Firewall, Lab, Role};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const CONFIG: &str = "global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
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
frontend ft_icpt
    bind 0.0.0.0:8080 transparent
    default_backend bk_web
frontend ft_orig
    bind 0.0.0.0:8081 transparent
    use_backend bk_transp if { src 10.10.1.3 }
    default_backend bk_orig
frontend ft_v6
    bind [fd00:1::1]:80 transparent
    default_backend bk_v6
frontend ft_ka
    bind 10.10.1.1:84
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
    source 0.0.0.0 usesrc client
    server srv2 10.10.2.3:80
backend bk_orig
    source 0.0.0.0 usesrc clientip
    server orig 0.0.0.0
backend bk_transp
    option transparent
    source 0.0.0.0 usesrc clientip
backend bk_v6
    source [::] usesrc clientip
    server srv1 [fd00:2::2]:80
backend bk_fixed
    source 0.0.0.0 usesrc 10.10.1.200
    server srv2 10.10.2.3:80
";

const PORTS: &[u16] = &[80, 81, 82, 83, 84, 85, 8080, 8081];

fn get(lab: &Lab, src: Option<&str>, dst: &str) -> netns::Echo {
    let r = lab
        .http_get(Role::Client, src.map(ip), sa(dst), "/", T)
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

/// Every path; returns what the servers saw, for the comparison with HAProxy.
fn paths(lab: &Lab, who: &str) -> Vec<String> {
    let mut seen = Vec::new();
    // Client IP spoofed (usesrc clientip) on a transparent bind of a local address.
    let e = get(lab, None, "10.10.1.1:80");
    assert_eq!(e.peer.ip(), ip("10.10.1.2"), "{who}: {e:?}");
    seen.push(format!("T1 {} {}", e.peer.ip(), e.name));
    // Eight client addresses, each seen as itself, balance source sticky.
    let mut per_server: HashMap<String, u32> = HashMap::new();
    for i in 2..=9 {
        let src = format!("10.10.1.{i}");
        let a = get(lab, Some(&src), "10.10.1.1:80");
        let b = get(lab, Some(&src), "10.10.1.1:80");
        assert_eq!((a.peer.ip(), b.peer.ip()), (ip(&src), ip(&src)), "{who}");
        assert_eq!(a.name, b.name, "{who}: balance source not sticky for {src}");
        seen.push(format!("T1b {src} {}", a.name));
        *per_server.entry(a.name).or_default() += 1;
    }
    assert_eq!(per_server.len(), 2, "{who}: {per_server:?}");
    // Control: plain source, the server sees the proxy.
    let e = get(lab, None, "10.10.1.1:81");
    assert_eq!(e.peer.ip(), ip("10.10.2.1"), "{who}: {e:?}");
    seen.push(format!("T2 {}", e.peer.ip()));
    // VIP on no interface.
    let e = get(lab, None, "10.10.9.9:80");
    assert_eq!(e.peer.ip(), ip("10.10.1.2"), "{who}: {e:?}");
    seen.push(format!("T3 {} {}", e.peer.ip(), e.name));
    // TPROXY target: addresses that exist nowhere, caught and proxied.
    for dst in ["10.10.7.7:80", "10.10.7.200:80"] {
        let e = get(lab, None, dst);
        assert_eq!(e.peer.ip(), ip("10.10.1.2"), "{who}: {e:?}");
        seen.push(format!("T4 {dst} {} {}", e.peer.ip(), e.name));
    }
    // Interception of the real server address, `server orig 0.0.0.0`: original destination.
    let e = get(lab, None, "10.10.2.3:8000");
    assert_eq!(e.peer.ip(), ip("10.10.1.2"), "{who}: {e:?}");
    assert_eq!(e.local, sa("10.10.2.3:8000"), "{who}: {e:?}");
    seen.push(format!("T4b {} {} {}", e.peer.ip(), e.local, e.name));
    // The same through a backend with no server and `option transparent`.
    let e = get(lab, Some("10.10.1.3"), "10.10.2.3:8000");
    assert_eq!(e.peer.ip(), ip("10.10.1.3"), "{who}: {e:?}");
    assert_eq!(e.local, sa("10.10.2.3:8000"), "{who}: {e:?}");
    seen.push(format!("T4c {} {} {}", e.peer.ip(), e.local, e.name));
    // usesrc client: client IP and port, 3 requests on one keep-alive connection (the
    // server connection is reused, so the 4-tuple is never needed twice at once).
    let src = sa("10.10.1.4:45001");
    let rs = lab
        .http_keepalive(Role::Client, Some(src), sa("10.10.1.1:82"), 3, T)
        .expect("keep-alive usesrc client");
    for r in &rs {
        let e = r
            .echo()
            .unwrap_or_else(|| panic!("{who}: {r:?}\n{}", lab.proxy_logs(12)));
        assert_eq!(e.peer, src, "{who}: {e:?}");
        seen.push(format!("T6b {}", e.peer));
    }
    // mode tcp.
    let e = get(lab, Some("10.10.1.3"), "10.10.1.1:83");
    assert_eq!(
        (e.peer.ip(), e.name.as_str()),
        (ip("10.10.1.3"), "srv1"),
        "{who}"
    );
    seen.push(format!("T5 {} {}", e.peer.ip(), e.name));
    // Keep-alive + clientip.
    let rs = lab
        .http_keepalive(
            Role::Client,
            Some(sa("10.10.1.5:0")),
            sa("10.10.1.1:84"),
            3,
            T,
        )
        .expect("keep-alive clientip");
    for r in &rs {
        let e = r.echo().expect("echo");
        assert_eq!(e.peer.ip(), ip("10.10.1.5"), "{who}");
        seen.push(format!("T6a {} {}", e.peer.ip(), e.name));
    }
    // usesrc ADDR: fixed non-local source.
    let e = get(lab, None, "10.10.1.1:85");
    assert_eq!(e.peer.ip(), ip("10.10.1.200"), "{who}: {e:?}");
    seen.push(format!("fixed {}", e.peer.ip()));
    // IPv6.
    let e = get(lab, None, "[fd00:1::1]:80");
    assert_eq!(e.peer.ip(), ip("fd00:1::2"), "{who}: {e:?}");
    assert_eq!(e.local, sa("[fd00:2::2]:80"), "{who}: {e:?}");
    seen.push(format!("T9 {} {}", e.peer.ip(), e.local));
    seen
}

fn run(proxy: &str, fw: Firewall, test: &str) -> Vec<String> {
    let mut lab = Lab::up(test).expect("lab up");
    lab.firewall(fw, true, true).expect("firewall");
    lab.start_echo_servers().expect("echo servers");
    lab.start_proxy(proxy, "proxy", CONFIG, PORTS)
        .unwrap_or_else(|e| panic!("{proxy} start: {e}"));
    paths(&lab, proxy)
}

fn both(fw: Firewall, test: &str) {
    if !netns::can_run(test) {
        return;
    }
    let ours = run(env!("CARGO_BIN_EXE_rhaproxy"), fw, test);
    println!("{test}: rhaproxy: {} paths checked: {ours:?}", ours.len());
    if netns::which("haproxy") {
        let theirs = run("haproxy", fw, test);
        assert_eq!(
            ours, theirs,
            "{test}: rhaproxy (left) and HAProxy (right) differ"
        );
    } else {
        println!("SKIPPED the HAProxy half of {test}: haproxy is not installed");
    }
}

#[test]
fn tproxy_paths_nft_match_haproxy() {
    both(Firewall::Nft, "tproxy_paths_nft_match_haproxy");
}

#[test]
fn tproxy_paths_iptables_match_haproxy() {
    both(Firewall::Iptables, "tproxy_paths_iptables_match_haproxy");
}
