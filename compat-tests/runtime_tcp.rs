//! `mode tcp` end to end: the built rhaproxy binary (and real HAProxy when installed, on the
//! same config and traffic) in front of std-thread backend servers on loopback.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

const DEFAULTS: &str = "defaults
    mode tcp
    timeout connect 2s
    timeout client 20s
    timeout server 20s
";

fn strip_pid(s: &str) -> String {
    // "[ALERT]    (1234) : text" -> "[ALERT] text"
    s.lines()
        .filter(|l| !l.starts_with("[NOTICE]"))
        .map(|l| match (l.find('('), l.find(") : ")) {
            (Some(a), Some(b)) if a < b => format!("{}{}", l[..a].trim_end(), &l[b + 3..]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn roundrobin_order_and_weights_match_haproxy() {
    let mut results = Vec::new();
    for imp in Impl::all("roundrobin_order_and_weights_match_haproxy") {
        let dir = TempDir::new("rr");
        let p = free_ports(5);
        let _b: Vec<Backend> = (0..3)
            .map(|i| Backend::start(&format!("s{}", i + 1), p[2 + i], Behavior::Name))
            .collect();
        let cfg = format!(
            "{DEFAULTS}
listen even
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{}
    server s2 127.0.0.1:{}
    server s3 127.0.0.1:{}
listen weighted
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{} weight 3
    server s2 127.0.0.1:{} weight 1
    server s3 127.0.0.1:{} weight 2
",
            p[0], p[2], p[3], p[4], p[1], p[2], p[3], p[4]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1]]);
        let even: Vec<String> = (0..6)
            .map(|_| tcp_read(p[0], None).unwrap().trim().to_string())
            .collect();
        let weighted: Vec<String> = (0..12)
            .map(|_| tcp_read(p[1], None).unwrap().trim().to_string())
            .collect();
        assert_eq!(even, ["s1", "s2", "s3", "s1", "s2", "s3"], "{imp:?}");
        let count = |n: &str| weighted.iter().filter(|s| *s == n).count();
        assert_eq!(
            (count("s1"), count("s2"), count("s3")),
            (6, 2, 4),
            "{imp:?} {weighted:?}"
        );
        results.push((imp, weighted));
    }
    if results.len() == 2 {
        assert_eq!(
            results[0].1, results[1].1,
            "weighted roundrobin order differs from HAProxy"
        );
    }
}

#[test]
fn half_close_is_forwarded_both_ways() {
    let dir = TempDir::new("hc");
    let p = free_ports(2);
    let _b = Backend::start("s1", p[1], Behavior::EchoAfterEof);
    let cfg = format!(
        "{DEFAULTS}
listen li
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{}
",
        p[0], p[1]
    );
    let _px = ProxyProc::start(Impl::Rhaproxy, &dir, &cfg, &[p[0]]);
    let big: String = "x".repeat(200_000);
    let out = tcp_exchange(p[0], None, big.as_bytes()).unwrap();
    assert_eq!(out.len(), 3 + big.len());
    assert!(out.starts_with("s1:xxx"));
}

#[test]
fn source_hash_stickiness_matches_haproxy() {
    source_hash_case("source_hash_stickiness_matches_haproxy", "127.0.0.1");
}

/// On a dual-stack listener IPv4 clients arrive as `::ffff:a.b.c.d`; HAProxy hashes that IPv6
/// form, so the chosen servers differ from the IPv4 listener's, and rhaproxy must follow.
#[test]
fn source_hash_on_v4v6_listener_matches_haproxy() {
    source_hash_case("source_hash_on_v4v6_listener_matches_haproxy", "[::]");
}

fn source_hash_case(name: &str, bind_host: &str) {
    let v4v6 = if bind_host == "[::]" { " v4v6" } else { "" };
    let mut maps = Vec::new();
    for imp in Impl::all(name) {
        let dir = TempDir::new("src");
        let p = free_ports(5);
        let _b: Vec<Backend> = (0..4)
            .map(|i| Backend::start(&format!("s{}", i + 1), p[1 + i], Behavior::Name))
            .collect();
        let cfg = format!(
            "{DEFAULTS}
listen li
    bind {bind_host}:{}{v4v6}
    balance source
    server s1 127.0.0.1:{}
    server s2 127.0.0.1:{} weight 2
    server s3 127.0.0.1:{}
    server s4 127.0.0.1:{}
",
            p[0], p[1], p[2], p[3], p[4]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let mut map = Vec::new();
        for k in 0..60u8 {
            let src = Ipv4Addr::new(127, 1 + k % 3, k, 10 + k);
            let a = tcp_read(p[0], Some(src)).unwrap().trim().to_string();
            let b = tcp_read(p[0], Some(src)).unwrap().trim().to_string();
            assert_eq!(a, b, "{imp:?}: source {src} moved");
            map.push(a);
        }
        let distinct: std::collections::HashSet<_> = map.iter().collect();
        assert!(distinct.len() >= 3, "{imp:?}: poor spread {map:?}");
        maps.push(map);
    }
    if maps.len() == 2 {
        assert_eq!(maps[0], maps[1], "balance source differs from HAProxy");
    }
}

#[test]
fn retries_redispatch_and_failure_match_haproxy() {
    for imp in Impl::all("retries_redispatch_and_failure_match_haproxy") {
        let dir = TempDir::new("retry");
        let p = free_ports(5);
        let dead = p[3];
        let _alive = Backend::start("alive", p[4], Behavior::Name);
        let cfg = format!(
            "defaults
    mode tcp
    timeout connect 300ms
    timeout client 20s
    timeout server 20s
listen redisp
    bind 127.0.0.1:{}
    retries 2
    option redispatch
    server dead 127.0.0.1:{dead}
    server alive 127.0.0.1:{}
listen noredisp
    bind 127.0.0.1:{}
    retries 1
    server dead 127.0.0.1:{dead}
listen noserver
    bind 127.0.0.1:{}
    server dead 127.0.0.1:{dead} disabled
",
            p[0], p[4], p[1], p[2]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1], p[2]]);
        // First connection goes to `dead` (roundrobin); with two active servers and a
        // non-hash algorithm HAProxy redispatches at once, without the turn-around delay.
        assert_eq!(tcp_read(p[0], None).unwrap().trim(), "alive", "{imp:?}");
        assert_eq!(tcp_read(p[0], None).unwrap().trim(), "alive", "{imp:?}");
        // Without redispatch and no other server: the client connection is closed, empty.
        let t = Instant::now();
        assert_eq!(tcp_read(p[1], None).unwrap_or_default(), "", "{imp:?}");
        assert!(t.elapsed() >= Duration::from_millis(250), "{imp:?}");
        // No usable server at all.
        assert_eq!(tcp_read(p[2], None).unwrap_or_default(), "", "{imp:?}");
    }
}

#[test]
fn client_and_server_timeouts() {
    for imp in Impl::all("client_and_server_timeouts") {
        let dir = TempDir::new("tmo");
        let p = free_ports(4);
        let _silent = Backend::start("silent", p[3], Behavior::Silent);
        let cfg = format!(
            "defaults
    mode tcp
    timeout connect 2s
listen cli
    bind 127.0.0.1:{}
    timeout client 400ms
    timeout server 30s
    server s 127.0.0.1:{}
listen srv
    bind 127.0.0.1:{}
    timeout client 30s
    timeout server 400ms
    server s 127.0.0.1:{}
listen tun
    bind 127.0.0.1:{}
    timeout client 400ms
    timeout server 400ms
    timeout tunnel 3s
    server s 127.0.0.1:{}
",
            p[0], p[3], p[1], p[3], p[2], p[3]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1], p[2]]);
        for (port, min, max) in [(p[0], 300, 6000), (p[1], 300, 6000), (p[2], 2500, 12000)] {
            let t = Instant::now();
            let out = tcp_read(port, None).unwrap_or_default();
            let el = t.elapsed().as_millis();
            assert_eq!(out, "");
            assert!(
                el >= min && el <= max,
                "{imp:?} port {port}: closed after {el}ms, expected {min}..{max}"
            );
        }
    }
}

#[test]
fn activity_keeps_connection_alive() {
    let dir = TempDir::new("alive");
    let p = free_ports(2);
    let _b = Backend::start("e", p[1], Behavior::LineEcho);
    let cfg = format!(
        "defaults
    mode tcp
    timeout connect 2s
    timeout client 600ms
    timeout server 600ms
listen li
    bind 127.0.0.1:{}
    server e 127.0.0.1:{}
",
        p[0], p[1]
    );
    let _px = ProxyProc::start(Impl::Rhaproxy, &dir, &cfg, &[p[0]]);
    let s = connect_from(None, p[0]).unwrap();
    s.set_read_timeout(Some(SOON)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "e\n");
    for i in 0..8 {
        thread::sleep(Duration::from_millis(200));
        w.write_all(format!("ping{i}\n").as_bytes()).unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, format!("e:ping{i}\n"));
    }
    // Then idle: closed by the client timeout.
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn server_maxconn_queues_then_times_out() {
    for imp in Impl::all("server_maxconn_queues_then_times_out") {
        let dir = TempDir::new("queue");
        let p = free_ports(2);
        let _b = Backend::start("e", p[1], Behavior::LineEcho);
        let cfg = format!(
            "defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout queue 1500ms
listen li
    bind 127.0.0.1:{}
    server e 127.0.0.1:{} maxconn 1
",
            p[0], p[1]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let greet = |s: &std::net::TcpStream, to: Duration| -> Option<String> {
            s.set_read_timeout(Some(to)).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut l = String::new();
            match r.read_line(&mut l) {
                Ok(n) if n > 0 => Some(l),
                _ => None,
            }
        };
        let a = connect_from(None, p[0]).unwrap();
        assert_eq!(greet(&a, SOON).as_deref(), Some("e\n"), "{imp:?}");
        // B waits in the queue while A holds the only slot...
        let bconn = connect_from(None, p[0]).unwrap();
        assert_eq!(
            greet(&bconn, Duration::from_millis(500)),
            None,
            "{imp:?}: not queued"
        );
        drop(a);
        // ...and gets the server when A leaves.
        assert_eq!(greet(&bconn, SOON).as_deref(), Some("e\n"), "{imp:?}");
        // (No assertion on the server's peak concurrency: A's server-side close and B's connect
        // race in the test server's own threads, for HAProxy as for rhaproxy. That B waited
        // while A held the slot is what the two greetings above prove.)
        // C waits longer than `timeout queue` and is dropped without reaching the server.
        let t = Instant::now();
        let c = connect_from(None, p[0]).unwrap();
        assert_eq!(greet(&c, SOON), None, "{imp:?}");
        let el = t.elapsed();
        assert!(
            el >= Duration::from_millis(1200) && el < Duration::from_secs(10),
            "{imp:?}: queue timeout after {el:?}"
        );
        drop(bconn);
    }
}

#[test]
fn health_checks_take_servers_down_and_up() {
    for imp in Impl::all("health_checks_take_servers_down_and_up") {
        let dir = TempDir::new("chk");
        let p = free_ports(3);
        let s1 = Backend::start("s1", p[1], Behavior::Name);
        let _s2 = Backend::start("s2", p[2], Behavior::Name);
        let cfg = format!(
            "{DEFAULTS}
listen li
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{} check inter 200 fall 2 rise 2
    server s2 127.0.0.1:{} check inter 200 fall 2 rise 2
",
            p[0], p[1], p[2]
        );
        let px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        // Let a few checks pass, then kill s1.
        thread::sleep(Duration::from_millis(600));
        drop(s1);
        let err = px.wait_stderr("Server li/s1 is DOWN", SOON);
        assert!(
            err.contains("Server li/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\""),
            "{imp:?}: {err}"
        );
        assert!(
            err.contains("1 active and 0 backup servers left."),
            "{imp:?}: {err}"
        );
        for _ in 0..4 {
            assert_eq!(tcp_read(p[0], None).unwrap().trim(), "s2", "{imp:?}");
        }
        let _s1 = Backend::start("s1", p[1], Behavior::Name);
        let err = px.wait_stderr("Server li/s1 is UP", SOON);
        assert!(
            err.contains("Server li/s1 is UP, reason: Layer4 check passed"),
            "{imp:?}: {err}"
        );
        assert!(
            err.contains("2 active and 0 backup servers online."),
            "{imp:?}: {err}"
        );
        let got: std::collections::HashSet<String> = (0..4)
            .map(|_| tcp_read(p[0], None).unwrap().trim().to_string())
            .collect();
        assert_eq!(got.len(), 2, "{imp:?}: {got:?}");
    }
}

#[test]
fn bind_failures_match_haproxy_messages() {
    let mut outs = Vec::new();
    for imp in Impl::all("bind_failures_match_haproxy_messages") {
        let dir = TempDir::new("bindfail");
        let p = free_ports(2);
        let _busy = std::net::TcpListener::bind(("127.0.0.1", p[0])).unwrap();
        let cfg = format!(
            "{DEFAULTS}
listen li
    bind 127.0.0.1:{}
    server s 127.0.0.1:{}
frontend fe
    bind 192.0.2.11:{}
    default_backend li
",
            p[0], p[1], p[1]
        );
        let mut px = ProxyProc::spawn(imp, &dir, &cfg);
        let code = px.wait_exit(SOON).expect("did not exit");
        assert_eq!(code, 1, "{imp:?}");
        let err = strip_pid(&px.stderr());
        // File names differ between runs; compare from "Binding [" after the file name.
        let norm: Vec<String> = err
            .lines()
            .map(|l| match (l.find("Binding ["), l.find("] for")) {
                (Some(a), Some(b)) => {
                    let line_no = l[a..b].rsplit(':').next().unwrap_or("");
                    format!("{}Binding [cfg:{line_no}{}", &l[..a], &l[b..])
                }
                _ => l.to_string(),
            })
            .collect();
        let norm = norm
            .join("\n")
            .replace(&p[0].to_string(), "P0")
            .replace(&p[1].to_string(), "P1");
        outs.push(norm);
    }
    assert_eq!(
        outs[0],
        "[ALERT] Binding [cfg:8] for proxy li: cannot bind socket (Address already in use) for [127.0.0.1:P0]
[ALERT] Binding [cfg:11] for frontend fe: cannot bind socket (Cannot assign requested address) for [192.0.2.11:P1]
[ALERT] [haproxy.main()] Some protocols failed to start their listeners! Exiting."
    );
    if outs.len() == 2 {
        assert_eq!(outs[0], outs[1]);
    }
}

#[test]
fn transparent_bind_of_foreign_address_works_as_root() {
    if !nix::unistd::Uid::effective().is_root() {
        println!("SKIPPED transparent_bind_of_foreign_address_works_as_root: needs root");
        return;
    }
    let dir = TempDir::new("tbind");
    let p = free_ports(2);
    let _b = Backend::start("s", p[1], Behavior::Name);
    let cfg = format!(
        "{DEFAULTS}
listen li
    bind 192.0.2.11:{} transparent
    bind 127.0.0.1:{}
    server s 127.0.0.1:{}
",
        p[0], p[0], p[1]
    );
    let _px = ProxyProc::start(Impl::Rhaproxy, &dir, &cfg, &[p[0]]);
    assert_eq!(tcp_read(p[0], None).unwrap().trim(), "s");
}

#[test]
fn usesrc_clientip_spoofs_the_source_on_loopback() {
    if !nix::unistd::Uid::effective().is_root() {
        println!("SKIPPED usesrc_clientip_and_client_spoof_the_source_on_loopback: needs root");
        return;
    }
    for imp in Impl::all("usesrc_clientip_and_client_spoof_the_source_on_loopback") {
        let dir = TempDir::new("usesrc");
        let p = free_ports(4);
        let b1 = Backend::start("s1", p[2], Behavior::Name);
        let b2 = Backend::start("s2", p[3], Behavior::Name);
        let cfg = format!(
            "{DEFAULTS}
listen ip
    bind 127.0.0.1:{}
    source 0.0.0.0 usesrc clientip
    server s1 127.0.0.1:{}
listen full
    bind 127.0.0.1:{}
    server s2 127.0.0.1:{} source 0.0.0.0 usesrc client
",
            p[0], p[2], p[1], p[3]
        );
        let px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1]]);
        let src = Ipv4Addr::new(127, 0, 0, 77);
        assert_eq!(tcp_read(p[0], Some(src)).unwrap().trim(), "s1");
        let peer = *b1.peers.lock().unwrap().last().unwrap();
        assert_eq!(peer.ip().to_string(), "127.0.0.77", "{imp:?}");

        // `usesrc client` reuses the client's port: impossible when the client is local (its
        // own socket holds the address), so both refuse, after the retries, with an alert.
        let out = tcp_read(p[1], Some(Ipv4Addr::new(127, 0, 0, 78))).unwrap_or_default();
        assert_eq!(out, "", "{imp:?}");
        let err = px.wait_stderr("Cannot bind to tproxy source address", SOON);
        assert!(
            err.contains(
                "Cannot bind to tproxy source address before connect() for backend full. Aborting."
            ),
            "{imp:?}: {err}"
        );
        assert_eq!(b2.accepted(), 0);
    }
}

#[test]
fn intercept_server_connects_to_original_destination() {
    let dir = TempDir::new("icpt");
    let p = free_ports(2);
    let _b = Backend::start("orig", p[1], Behavior::Name);
    let cfg = format!(
        "{DEFAULTS}
listen li
    bind 127.0.0.1:{}
    server s 0.0.0.0:{}
",
        p[0], p[1]
    );
    let _px = ProxyProc::start(Impl::Rhaproxy, &dir, &cfg, &[p[0]]);
    assert_eq!(tcp_read(p[0], None).unwrap().trim(), "orig");
}

#[test]
fn port_range_bind_and_many_parallel_connections() {
    let dir = TempDir::new("par");
    // Two consecutive free ports.
    let base = loop {
        let p = free_ports(1)[0];
        if p < 65000 && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            break p;
        }
    };
    let bp = free_ports(1)[0];
    let _b = Backend::start("s", bp, Behavior::EchoAfterEof);
    let cfg = format!(
        "global
    nbthread 2
    maxconn 500
{DEFAULTS}
listen li
    bind 127.0.0.1:{base}-{}
    server s 127.0.0.1:{bp}
",
        base + 1
    );
    let _px = ProxyProc::start(Impl::Rhaproxy, &dir, &cfg, &[base, base + 1]);
    let hs: Vec<_> = (0..100)
        .map(|i| {
            let port = base + (i % 2) as u16;
            thread::spawn(move || tcp_exchange(port, None, format!("m{i}").as_bytes()).unwrap())
        })
        .collect();
    for (i, h) in hs.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), format!("s:m{i}"));
    }
}

#[test]
fn sigusr1_soft_stop_and_sigterm_hard_stop() {
    for imp in Impl::all("sigusr1_soft_stop_and_sigterm_hard_stop") {
        let dir = TempDir::new("sig");
        let p = free_ports(2);
        let _b = Backend::start("e", p[1], Behavior::LineEcho);
        let cfg = format!(
            "{DEFAULTS}
listen li
    bind 127.0.0.1:{}
    server e 127.0.0.1:{}
",
            p[0], p[1]
        );
        let mut px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let s = connect_from(None, p[0]).unwrap();
        s.set_read_timeout(Some(SOON)).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        px.signal(SIGUSR1);
        px.wait_stderr("Proxy li stopped", SOON);
        wait_until("listener closed", SOON, || !is_listening(p[0]));
        // The established connection still works, and the process waits for it.
        w.write_all(b"still\n").unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "e:still\n", "{imp:?}");
        assert_eq!(
            px.wait_exit(Duration::from_millis(300)),
            None,
            "{imp:?} exited early"
        );
        drop(w);
        drop(r);
        assert_eq!(px.wait_exit(SOON), Some(0), "{imp:?}");

        let mut px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let _c = connect_from(None, p[0]).unwrap();
        px.signal(SIGTERM);
        assert_eq!(px.wait_exit(SOON), Some(128 + SIGTERM), "{imp:?}");
    }
}

#[test]
fn tcplog_lines_match_haproxy() {
    let mut all = Vec::new();
    for imp in Impl::all("tcplog_lines_match_haproxy") {
        let dir = TempDir::new("tcplog");
        let p = free_ports(5);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let lport = udp.local_addr().unwrap().port();
        let _b = Backend::start("s1", p[3], Behavior::EchoAfterEof);
        let cfg = format!(
            "global
    log 127.0.0.1:{lport} format raw local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 500ms
    timeout client 20s
    timeout server 20s
    retries 0
listen ok
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{}
listen refused
    bind 127.0.0.1:{}
    server dead 127.0.0.1:{}
listen idle
    bind 127.0.0.1:{}
    timeout client 300ms
    server s1 127.0.0.1:{}
",
            p[0], p[3], p[1], p[4], p[2], p[3]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1], p[2]]);
        assert_eq!(tcp_exchange(p[0], None, b"hello").unwrap(), "s1:hello");
        assert_eq!(tcp_read(p[1], None).unwrap_or_default(), "");
        // Client idle past `timeout client`: cD. Hold the connection open meanwhile.
        let s = connect_from(None, p[2]).unwrap();
        s.set_read_timeout(Some(SOON)).unwrap();
        let mut sink = Vec::new();
        let _ = (&s).read_to_end(&mut sink);
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        let end = Instant::now() + SOON;
        while lines.len() < 3 && Instant::now() < end {
            if let Ok(k) = udp.recv(&mut buf) {
                let line = String::from_utf8_lossy(&buf[..k]).trim_end().to_string();
                let mut m: Vec<String> = line.split(' ').map(|s| s.to_string()).collect();
                m[0] = m[0].split(':').next().unwrap_or("").to_string();
                m[1] = "[date]".into();
                m[4] = m[4]
                    .split('/')
                    .map(|t| if t.starts_with('-') { "-1" } else { "n" })
                    .collect::<Vec<_>>()
                    .join("/");
                if let Some((_, rest)) = m[7].split_once('/') {
                    m[7] = format!("ac/{rest}");
                }
                lines.push(m.join(" "));
            }
        }
        lines.sort();
        for l in &lines {
            println!("{imp:?}: {l}");
        }
        assert_eq!(lines.len(), 3, "{imp:?}");
        all.push(lines);
    }
    if all.len() == 2 {
        assert_eq!(all[0], all[1]);
    }
}

/// Kills a daemonized proxy (found through its pid file) on drop.
struct PidGuard(i32);

impl Drop for PidGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn daemon_mode_and_sf_reload() {
    for imp in Impl::all("daemon_mode_and_sf_reload") {
        let dir = TempDir::new("daemon");
        let p = free_ports(2);
        let _b = Backend::start("s", p[1], Behavior::Name);
        let pidfile = dir.0.join("proxy.pid");
        let cfg = format!(
            "global
    daemon
    pidfile {}
{DEFAULTS}
listen li
    bind 127.0.0.1:{}
    server s 127.0.0.1:{}
",
            pidfile.display(),
            p[0],
            p[1]
        );
        // Daemon: the launched process exits 0 and the pid file names the one serving.
        let mut launcher = ProxyProc::spawn_args(imp, &dir, &cfg, &[]);
        assert_eq!(launcher.wait_exit(SOON), Some(0), "{imp:?}");
        wait_until("pid file", SOON, || {
            std::fs::read_to_string(&pidfile).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
        });
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _guard = PidGuard(pid);
        wait_until("daemon listening", SOON, || is_listening(p[0]));
        assert_eq!(tcp_read(p[0], None).unwrap().trim(), "s", "{imp:?}");

        // A new foreground process takes over with -sf: the old one soft-stops and exits.
        let cfg2 = cfg.replace("    daemon\n", "");
        let _new = ProxyProc::spawn_args(imp, &dir, &cfg2, &["-db", "-sf", &pid.to_string()]);
        wait_until("old process gone", SOON, || {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
        });
        wait_until("new process listening", SOON, || is_listening(p[0]));
        assert_eq!(tcp_read(p[0], None).unwrap().trim(), "s", "{imp:?}");
    }
}

#[test]
fn global_maxconn_leaves_connections_in_the_backlog() {
    for imp in Impl::all("global_maxconn_leaves_connections_in_the_backlog") {
        let dir = TempDir::new("gmax");
        let p = free_ports(3);
        let _b = Backend::start("e", p[1], Behavior::LineEcho);
        let cfg = format!(
            "global
    maxconn 1
{DEFAULTS}
listen li
    bind 127.0.0.1:{}
    bind 127.0.0.1:{}
    server e 127.0.0.1:{}
",
            p[0], p[2], p[1]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[2]]);
        let greet = |s: &std::net::TcpStream, to: Duration| -> Option<String> {
            s.set_read_timeout(Some(to)).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut l = String::new();
            match r.read_line(&mut l) {
                Ok(n) if n > 0 => Some(l),
                _ => None,
            }
        };
        // An idle listener does not hold the only slot: the second bind is served.
        let z = connect_from(None, p[2]).unwrap();
        assert_eq!(greet(&z, SOON).as_deref(), Some("e\n"), "{imp:?}");
        drop(z);
        let a = connect_from(None, p[0]).unwrap();
        assert_eq!(greet(&a, SOON).as_deref(), Some("e\n"), "{imp:?}");
        // The kernel completes the handshake, but the proxy does not accept it yet.
        let b = connect_from(None, p[0]).unwrap();
        assert_eq!(greet(&b, Duration::from_millis(600)), None, "{imp:?}");
        drop(a);
        assert_eq!(greet(&b, SOON).as_deref(), Some("e\n"), "{imp:?}");
    }
}

/// The connection limits of a frontend and of its `bind` lines: a bind line with its own
/// `maxconn` is held to it, one without only to the frontend's.
#[test]
fn frontend_and_bind_maxconn() {
    for imp in Impl::all("frontend_and_bind_maxconn") {
        let dir = TempDir::new("bmax");
        let p = free_ports(3);
        let _b = Backend::start("e", p[1], Behavior::LineEcho);
        let cfg = format!(
            "{DEFAULTS}
listen li
    maxconn 2
    bind 127.0.0.1:{} maxconn 1
    bind 127.0.0.1:{}
    server e 127.0.0.1:{}
",
            p[0], p[2], p[1]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[2]]);
        let greet = |s: &std::net::TcpStream, to: Duration| -> Option<String> {
            s.set_read_timeout(Some(to)).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut l = String::new();
            match r.read_line(&mut l) {
                Ok(n) if n > 0 => Some(l),
                _ => None,
            }
        };
        let wait = Duration::from_millis(500);
        let a1 = connect_from(None, p[0]).unwrap();
        assert_eq!(greet(&a1, SOON).as_deref(), Some("e\n"), "{imp:?}");
        // The first bind line is full.
        let a2 = connect_from(None, p[0]).unwrap();
        assert_eq!(greet(&a2, wait), None, "{imp:?}: bind maxconn 1");
        // The second one is not, the frontend has room for one more.
        let b1 = connect_from(None, p[2]).unwrap();
        assert_eq!(greet(&b1, SOON).as_deref(), Some("e\n"), "{imp:?}");
        let b2 = connect_from(None, p[2]).unwrap();
        assert_eq!(greet(&b2, wait), None, "{imp:?}: frontend maxconn 2");
        // A slot of the frontend frees: the second bind line's connection gets it, the first
        // bind line is still full.
        drop(b1);
        assert_eq!(greet(&b2, SOON).as_deref(), Some("e\n"), "{imp:?}");
        assert_eq!(greet(&a2, wait), None, "{imp:?}: bind maxconn 1 still");
        drop(a1);
        assert_eq!(greet(&a2, SOON).as_deref(), Some("e\n"), "{imp:?}");
    }
}

#[test]
fn ipv6_binds_v4v6_and_v6only() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        println!("SKIPPED ipv6_binds_v4v6_and_v6only: no IPv6 loopback");
        return;
    }
    let mut all = Vec::new();
    for imp in Impl::all("ipv6_binds_v4v6_and_v6only") {
        let dir = TempDir::new("v6");
        let p = free_ports(3);
        let b = Backend::start("s", p[2], Behavior::Name);
        let cfg = format!(
            "{DEFAULTS}
listen dual
    bind :::{} v4v6
    server s 127.0.0.1:{}
listen only6
    bind :::{} v6only
    server s 127.0.0.1:{}
",
            p[0], p[2], p[1], p[2]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1]]);
        let via = |addr: &str| -> String {
            match std::net::TcpStream::connect(addr) {
                Ok(mut s) => {
                    s.set_read_timeout(Some(SOON)).unwrap();
                    let mut out = String::new();
                    let _ = s.read_to_string(&mut out);
                    out.trim().to_string()
                }
                Err(e) => format!("error {:?}", e.kind()),
            }
        };
        let out = vec![
            via(&format!("127.0.0.1:{}", p[0])),
            via(&format!("[::1]:{}", p[0])),
            via(&format!("127.0.0.1:{}", p[1])),
            via(&format!("[::1]:{}", p[1])),
        ];
        assert_eq!(out, ["s", "s", "error ConnectionRefused", "s"], "{imp:?}");
        assert_eq!(b.accepted(), 3);
        all.push(out);
    }
    if all.len() == 2 {
        assert_eq!(all[0], all[1]);
    }
}

#[test]
fn fin_timeouts_after_half_close() {
    for imp in Impl::all("fin_timeouts_after_half_close") {
        let dir = TempDir::new("fin");
        let p = free_ports(3);
        let _hold = Backend::start("hold", p[2], Behavior::Hold);
        let cfg = format!(
            "defaults
    mode tcp
    timeout connect 2s
    timeout client 20s
    timeout server 20s
listen sfin
    bind 127.0.0.1:{}
    timeout server-fin 400ms
    server s 127.0.0.1:{}
listen nofin
    bind 127.0.0.1:{}
    timeout server 1500ms
    server s 127.0.0.1:{}
",
            p[0], p[2], p[1], p[2]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1]]);
        // The client sends its FIN, the proxy passes it on, the server never closes: once
        // half-closed, `timeout server-fin` (not `timeout server`) bounds the wait.
        for (port, min, max) in [(p[0], 300u128, 1300u128), (p[1], 1300, 10000)] {
            let t = Instant::now();
            let out = tcp_exchange(port, None, b"x").unwrap_or_default();
            let el = t.elapsed().as_millis();
            assert_eq!(out, "", "{imp:?}");
            assert!(
                el >= min && el < max,
                "{imp:?} port {port}: {el}ms, expected {min}..{max}"
            );
        }
    }
}

#[test]
fn backend_queue_serves_every_waiter() {
    let dir = TempDir::new("qstress");
    let p = free_ports(3);
    let _a = Backend::start("a", p[1], Behavior::EchoAfterEof);
    let _b = Backend::start("b", p[2], Behavior::EchoAfterEof);
    let cfg = format!(
        "global
    nbthread 2
defaults
    mode tcp
    timeout connect 2s
    timeout client 20s
    timeout server 20s
    timeout queue 15s
listen li
    bind 127.0.0.1:{}
    balance leastconn
    server a 127.0.0.1:{} maxconn 1
    server b 127.0.0.1:{} maxconn 1
",
        p[0], p[1], p[2]
    );
    let _px = ProxyProc::start(Impl::Rhaproxy, &dir, &cfg, &[p[0]]);
    let port = p[0];
    let t = Instant::now();
    let hs: Vec<_> = (0..40)
        .map(|i| thread::spawn(move || tcp_exchange(port, None, format!("m{i}").as_bytes())))
        .collect();
    for (i, h) in hs.into_iter().enumerate() {
        let out = h.join().unwrap().unwrap();
        assert!(
            out == format!("a:m{i}") || out == format!("b:m{i}"),
            "{i}: {out:?}"
        );
    }
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
}

fn thread_names(pid: i32) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|t| {
            std::fs::read_to_string(t.unwrap().path().join("comm"))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

/// Waits until `pid` runs `n` threads, then checks that it stays so for a moment.
fn expect_threads(pid: i32, n: usize, what: &str) {
    let end = Instant::now() + SOON;
    while thread_names(pid).len() != n && Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(300));
    let names = thread_names(pid);
    assert_eq!(names.len(), n, "{what}: {names:?}");
}

/// `nbthread 1` is one thread, as in HAProxy: the event loop runs on the main thread and the
/// log sender's thread starts only with the first log line. `nbthread 2` adds two workers.
#[test]
fn nbthread_is_the_thread_count() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let lport = udp.local_addr().unwrap().port();
    // (nbthread, log lines, threads before traffic, threads after)
    for (nbthread, log, before, after) in [(1, false, 1, 1), (1, true, 1, 2), (2, false, 3, 3)] {
        let what = format!("nbthread {nbthread}, log {log}");
        let dir = TempDir::new("nbthread");
        let p = free_ports(2);
        let _b = Backend::start("s1", p[1], Behavior::Name);
        let log_line = if log {
            format!("    log 127.0.0.1:{lport} local0\n    option tcplog\n")
        } else {
            String::new()
        };
        let cfg = format!(
            "global
    nbthread {nbthread}
{DEFAULTS}
listen li
    bind 127.0.0.1:{}
{log_line}    server s1 127.0.0.1:{}
",
            p[0], p[1]
        );
        let px = ProxyProc::start(Impl::Rhaproxy, &dir, &cfg, &[p[0]]);
        expect_threads(px.pid(), before, &format!("{what}, before traffic"));
        let out = tcp_exchange(p[0], None, b"x").unwrap();
        assert_eq!(out, "s1\n");
        if log {
            let mut buf = [0u8; 2048];
            let n = udp.recv(&mut buf).expect("a log line");
            let line = String::from_utf8_lossy(&buf[..n]);
            assert!(line.contains(" li li/s1 "), "{line}");
        }
        expect_threads(px.pid(), after, &format!("{what}, after traffic"));
    }
}

/// `option tcplog`'s connection gauges (`%ac/%fc/%bc/%sc`) are those of the moment the line is
/// logged, when the session ends, not of its start (HAProxy 2.6, measured: three connections
/// opened one after the other, then closed first, third, second, log 3/3/2/2, 2/2/1/1 and
/// 1/1/0/0).
#[test]
fn tcplog_gauges_are_sampled_when_logging() {
    let mut results = Vec::new();
    for imp in Impl::all("tcplog_gauges_are_sampled_when_logging") {
        let dir = TempDir::new("gauges");
        let p = free_ports(2);
        let _b = Backend::start("s1", p[1], Behavior::Silent);
        let log = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        log.set_read_timeout(Some(SOON)).unwrap();
        let cfg = format!(
            "global
    log 127.0.0.1:{} format raw local0
{DEFAULTS}    log global
    log-format \"%ac/%fc/%bc/%sc\"
listen li
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{}
",
            log.local_addr().unwrap().port(),
            p[0],
            p[1]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let open = || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", p[0])).unwrap();
            s.write_all(b"x\n").unwrap();
            thread::sleep(Duration::from_millis(150));
            s
        };
        let (a, b, c) = (open(), open(), open());
        let mut lines = Vec::new();
        for s in [a, c, b] {
            drop(s);
            let mut buf = [0u8; 512];
            let n = log.recv(&mut buf).expect("a log line");
            lines.push(String::from_utf8_lossy(&buf[..n]).trim().to_string());
        }
        assert_eq!(lines, ["3/3/2/2", "2/2/1/1", "1/1/0/0"], "{imp:?}");
        results.push(lines);
    }
    if results.len() == 2 {
        assert_eq!(results[0], results[1]);
    }
}
