//! Logging to bad targets must never hurt traffic: an unreachable UDP log server, a missing unix
//! socket, a unix socket whose reader is stopped (its queue fills up), and lines longer than
//! `len`. Requests through rhaproxy keep succeeding without stalls, nothing panics, and the
//! dropped lines are counted: `DroppedLogs` in `show info` (as HAProxy names it) grows, and the
//! stderr warning `N log message(s) dropped ...` (at most one every 10 s) appears.
//! (A UDP server that is not there cannot be detected: datagrams are sent and lost, as with
//! HAProxy.)

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::io::{Read, Write};
use std::net::UdpSocket;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::{Duration, Instant};

/// `DroppedLogs` from `show info` on the stats socket.
fn dropped_logs(sock: &std::path::Path) -> u64 {
    let mut s = UnixStream::connect(sock).unwrap();
    s.write_all(b"show info\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines()
        .find_map(|l| l.strip_prefix("DroppedLogs: "))
        .unwrap_or_else(|| panic!("no DroppedLogs in {out}"))
        .trim()
        .parse()
        .unwrap()
}

/// `count` keep-alive requests; returns the slowest one.
fn traffic(port: u16, count: usize, path_len: usize) -> Duration {
    let mut c = HttpConn::connect(port).unwrap();
    let path = format!("/{}", "x".repeat(path_len));
    let mut worst = Duration::ZERO;
    for _ in 0..count {
        let t = Instant::now();
        let r = c.get(&path).expect("request through rhaproxy");
        assert_eq!(r.status, 200);
        worst = worst.max(t.elapsed());
    }
    worst
}

#[test]
fn bad_log_targets_never_block_traffic_and_drops_are_counted() {
    let dir = TempDir::new("logbad");
    let p = free_ports(3);
    // A UDP port nobody listens on (bound then released).
    let dead_udp = {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.local_addr().unwrap().port()
    };
    // A unix socket that is never read: its queue fills after a few datagrams.
    let full_path = dir.0.join("full.sock");
    let _full = UnixDatagram::bind(&full_path).unwrap();
    let missing = dir.0.join("missing.sock");
    let admin = dir.0.join("admin.sock");
    // A good UDP receiver with `len 80`: long lines arrive cut to 80 bytes + LF.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let rx_port = rx.local_addr().unwrap().port();
    let _b = Backend::start("s1", p[1], Behavior::Http);
    let cfg = format!(
        "global
    stats socket {admin}
    log 127.0.0.1:{dead_udp} local0
    log {missing} local0
    log {full} local0
    log 127.0.0.1:{rx} len 80 local0
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    server s1 127.0.0.1:{be}
",
        admin = admin.display(),
        missing = missing.display(),
        full = full_path.display(),
        rx = rx_port,
        fe = p[0],
        be = p[1]
    );
    // Read the good target in a thread (its socket buffer holds only a few hundred datagrams).
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        let mut got = 0;
        // Until 3 s without a datagram once they flow (the proxy may be slow to start on a
        // loaded machine: up to 30 s for the first one).
        let start = Instant::now();
        let mut last: Option<Instant> = None;
        loop {
            match last {
                Some(t) if t.elapsed() >= Duration::from_secs(3) => break,
                None if start.elapsed() >= Duration::from_secs(30) => break,
                _ => {}
            }
            if let Ok(n) = rx.recv(&mut buf) {
                assert_eq!(n, 81, "{:?}", String::from_utf8_lossy(&buf[..n]));
                assert_eq!(buf[80], b'\n');
                assert!(buf.starts_with(b"<134>"));
                got += 1;
                last = Some(Instant::now());
            }
        }
        got
    });
    let mut proxy = ProxyProc::start(Impl::Rhaproxy, &dir, &cfg, &[p[0]]);

    // Phase 1: 2000 requests with 3 kB URLs (lines far beyond `len`).
    let t = Instant::now();
    let worst1 = traffic(p[0], 2000, 3000);
    let took1 = t.elapsed();
    // Every line to the missing socket is dropped, and the full socket takes at most its queue.
    let d1 = dropped_logs(&admin);
    assert!(d1 >= 2000, "DroppedLogs {d1} after 2000 requests");
    proxy.wait_stderr("log message(s) dropped", SOON);

    // `len 80`: each datagram is exactly 80 bytes + LF.
    let got = reader.join().unwrap();
    assert!(
        got > 1000,
        "only {got} truncated lines arrived at the good target"
    );

    // Phase 2: more traffic, the counter grows.
    let worst2 = traffic(p[0], 500, 10);
    let d2 = dropped_logs(&admin);
    assert!(d2 >= d1 + 500, "DroppedLogs did not grow: {d1} -> {d2}");
    println!(
        "2000 requests in {took1:?} (slowest {worst1:?}), 500 more (slowest {worst2:?}); dropped {d1} then {d2} in total"
    );
    assert!(
        worst1 < Duration::from_secs(2) && worst2 < Duration::from_secs(2),
        "a request stalled: {worst1:?} / {worst2:?}"
    );
    let err = proxy.stderr();
    assert!(!err.contains("panicked"), "{err}");
    assert!(proxy.child.try_wait().unwrap().is_none(), "rhaproxy exited");
}
