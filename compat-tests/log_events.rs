//! Event logs (server DOWN/UP, `backend X has no server available!`, `Proxy X stopped` on soft
//! stop) sent to the proxies' `log` targets: rhaproxy's UDP datagrams compared with real
//! HAProxy 2.6's on the same config and the same check history (PRI, tag and text; the date,
//! the pid and the check duration are masked).

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

/// `<PRI>Mmm dd HH:MM:SS tag[PID]: text\n` -> `<PRI> tag: text` with the check duration masked.
fn mask(d: &[u8]) -> String {
    let s = String::from_utf8_lossy(d).to_string();
    assert!(s.ends_with('\n'), "datagram without LF: {s:?}");
    let s = s.trim_end_matches('\n');
    let pri_end = s.find('>').expect("PRI") + 1;
    let rest = &s[pri_end..];
    // the legacy date is 15 characters plus a space
    let rest = &rest[16..];
    let tag_end = rest.find('[').expect("tag[pid]");
    let text_start = rest.find("]: ").expect("]: ") + 3;
    let text = &rest[text_start..];
    let text = match text.find("check duration: ") {
        Some(a) => match text[a..].find("ms") {
            Some(b) => format!("{}N{}", &text[..a + 16], &text[a + b..]),
            None => text.to_string(),
        },
        None => text.to_string(),
    };
    format!("{} {}: {}", &s[..pri_end], &rest[..tag_end], text)
}

struct Rx(UdpSocket, Vec<String>);

impl Rx {
    fn drain(&mut self) {
        let mut buf = [0u8; 65536];
        while let Ok(n) = self.0.recv(&mut buf) {
            let m = mask(&buf[..n]);
            // HAProxy's internal HTTP client proxy has no counterpart in rhaproxy.
            if !m.contains("<HTTPCLIENT>") {
                self.1.push(m);
            }
        }
    }
    fn wait_for(&mut self, needle: &str, count: usize) {
        let end = Instant::now() + SOON;
        while Instant::now() < end {
            self.drain();
            if self.1.iter().filter(|l| l.contains(needle)).count() >= count {
                return;
            }
        }
        panic!("no {count}x {needle:?} in {:#?}", self.1);
    }
}

fn run(imp: Impl) -> Vec<String> {
    let dir = TempDir::new("events");
    let p = free_ports(7);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let lport = udp.local_addr().unwrap().port();
    let cfg = format!(
        "global
    log 127.0.0.1:{lport} local0
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{}
    default_backend be
backend be
    server s1 127.0.0.1:{} check inter 200 fall 1 rise 1
    server s2 127.0.0.1:{} check inter 200 fall 1 rise 1
    server s3 127.0.0.1:{} check inter 200 fall 1 rise 1 backup
listen li
    bind 127.0.0.1:{}
    server s9 127.0.0.1:{} check inter 200 fall 1 rise 1
    server b9 127.0.0.1:{} check inter 200 fall 1 rise 1 backup
",
        p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    );
    let mut rx = Rx(udp, Vec::new());
    let mut proxy = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
    rx.wait_for("backend be has no server available!", 1);
    rx.wait_for("proxy li has no server available!", 1);
    let l = TcpListener::bind(("127.0.0.1", p[1])).unwrap();
    let l9 = TcpListener::bind(("127.0.0.1", p[6])).unwrap();
    rx.wait_for("be/s1 is UP", 1);
    rx.wait_for("li/b9 is UP", 1);
    drop(l);
    drop(l9);
    rx.wait_for("backend be has no server available!", 2);
    rx.wait_for("proxy li has no server available!", 2);
    proxy.signal(libc_sigusr1());
    assert!(
        proxy.wait_exit(SOON).is_some(),
        "{imp:?} did not exit on SIGUSR1"
    );
    rx.wait_for("Proxy be stopped", 1);
    rx.wait_for("Proxy li stopped", 1);
    rx.drain();
    rx.1
}

fn libc_sigusr1() -> i32 {
    nix::sys::signal::Signal::SIGUSR1 as i32
}

#[test]
fn event_logs_match_haproxy() {
    let mut got = Vec::new();
    for imp in Impl::all("event_logs_match_haproxy") {
        let lines = run(imp);
        println!("{imp:?}:\n{}", lines.join("\n"));
        // The two proxies' events interleave by timing: compare each proxy's sequence.
        let (li, be): (Vec<String>, Vec<String>) = lines
            .into_iter()
            .partition(|l| l.contains(" li/") || l.contains(" li "));
        got.push((be, li));
    }
    let want_rh = [
        "<129> haproxy: Server be/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms. 1 active and 1 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<129> haproxy: Server be/s2 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms. 0 active and 1 backup servers left. Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<129> haproxy: Backup Server be/s3 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<128> haproxy: backend be has no server available!",
        "<133> haproxy: Server be/s1 is UP, reason: Layer4 check passed, check duration: Nms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
        "<129> haproxy: Server be/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<128> haproxy: backend be has no server available!",
        "<132> haproxy: Proxy fe stopped (cumulated conns: FE: 0, BE: 0).",
        "<132> haproxy: Proxy be stopped (cumulated conns: FE: 0, BE: 0).",
    ];
    let want_li = [
        "<129> haproxy: Server li/s9 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms. 0 active and 1 backup servers left. Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<129> haproxy: Backup Server li/b9 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<128> haproxy: proxy li has no server available!",
        "<133> haproxy: Backup Server li/b9 is UP, reason: Layer4 check passed, check duration: Nms. 0 active and 1 backup servers online. Running on backup. 0 sessions requeued, 0 total in queue.",
        "<129> haproxy: Backup Server li/b9 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<128> haproxy: proxy li has no server available!",
        "<132> haproxy: Proxy li stopped (cumulated conns: FE: 0, BE: 0).",
    ];
    assert_eq!(got[0].0, want_rh, "rhaproxy's event datagrams (be)");
    assert_eq!(got[0].1, want_li, "rhaproxy's event datagrams (li)");
    if got.len() == 2 {
        assert_eq!(got[0], got[1], "rhaproxy vs HAProxy event datagrams");
    }
}

/// `option log-health-checks`: a line for every check whose status or health counter changed
/// (HAProxy 2.6's text, notice level), and state changes without the reason.
fn run_health_checks(imp: Impl) -> Vec<String> {
    let dir = TempDir::new("hchk");
    let p = free_ports(4);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let lport = udp.local_addr().unwrap().port();
    let cfg = format!(
        "global
    log 127.0.0.1:{lport} local0
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{}
    default_backend l4
backend l4
    option log-health-checks
    server s1 127.0.0.1:{} check inter 200 rise 2 fall 2
    server b1 127.0.0.1:{} check inter 200 rise 2 fall 2 backup
backend l7
    option log-health-checks
    option httpchk GET /
    server w1 127.0.0.1:{} check inter 200 rise 2 fall 2
",
        p[0], p[1], p[2], p[3]
    );
    let mut rx = Rx(udp, Vec::new());
    let l = TcpListener::bind(("127.0.0.1", p[1])).unwrap();
    let web = Backend::start("w1", p[3], Behavior::Http);
    let proxy = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
    rx.wait_for("l4/s1 succeeded", 1);
    rx.wait_for("l7/w1 succeeded", 1);
    rx.wait_for("l4/b1 is DOWN", 1);
    drop(l);
    drop(web);
    rx.wait_for("backend l4 has no server available!", 1);
    rx.wait_for("backend l7 has no server available!", 1);
    let _l = TcpListener::bind(("127.0.0.1", p[1])).unwrap();
    let _web = Backend::start("w1", p[3], Behavior::Http);
    rx.wait_for("l4/s1 is UP", 1);
    rx.wait_for("l7/w1 is UP", 1);
    drop(proxy);
    rx.drain();
    rx.1
}

#[test]
fn health_check_logs_match_haproxy() {
    let mut got = Vec::new();
    for imp in Impl::all("health_check_logs_match_haproxy") {
        let lines = run_health_checks(imp);
        println!("{imp:?}:\n{}", lines.join("\n"));
        // The three servers' checks interleave by timing: compare each one's sequence.
        let of =
            |k: &str| -> Vec<String> { lines.iter().filter(|l| l.contains(k)).cloned().collect() };
        // The two backends' "no server" alerts too: compare them as a set.
        let mut none = of("no server");
        none.sort();
        got.push((of("l4/s1"), of("l4/b1"), of("l7/w1"), none));
    }
    let s1 = [
        "<133> haproxy: Health check for server l4/s1 succeeded, reason: Layer4 check passed, check duration: Nms, status: 2/2 UP.",
        "<133> haproxy: Health check for server l4/s1 failed, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms, status: 1/2 UP.",
        "<133> haproxy: Health check for server l4/s1 failed, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms, status: 0/2 DOWN.",
        "<129> haproxy: Server l4/s1 is DOWN. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<133> haproxy: Health check for server l4/s1 succeeded, reason: Layer4 check passed, check duration: Nms, status: 1/2 DOWN.",
        "<133> haproxy: Health check for server l4/s1 succeeded, reason: Layer4 check passed, check duration: Nms, status: 2/2 UP.",
        "<133> haproxy: Server l4/s1 is UP. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
    ];
    let b1 = [
        "<133> haproxy: Health check for backup server l4/b1 failed, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms, status: 0/2 DOWN.",
        "<129> haproxy: Backup Server l4/b1 is DOWN. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
    ];
    let w1_first = "<133> haproxy: Health check for server l7/w1 succeeded, reason: Layer7 check passed, code: 200, check duration: Nms, status: 2/2 UP.";
    assert_eq!(got[0].0, s1, "rhaproxy's l4/s1 lines");
    assert_eq!(got[0].1, b1, "rhaproxy's l4/b1 lines");
    assert_eq!(got[0].2.first().map(String::as_str), Some(w1_first));
    if got.len() == 2 {
        assert_eq!(got[0], got[1], "rhaproxy vs HAProxy health-check lines");
    }
}

/// Server state changes made through the stats socket are logged as HAProxy logs them (levels
/// and texts), and a soft stop logs `Proxy X stopped` for the proxies with listeners first,
/// then the backends, each group in configuration order.
fn run_cli(imp: Impl) -> Vec<String> {
    use std::io::{Read, Write};
    let dir = TempDir::new("clilog");
    let p = free_ports(4);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let lport = udp.local_addr().unwrap().port();
    let sock = dir.0.join("admin.sock");
    let cfg = format!(
        "global
    log 127.0.0.1:{lport} local0
    stats socket {} level admin
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
backend zb
    server s1 127.0.0.1:{srv}
    server s2 127.0.0.1:{srv}
    server s3 127.0.0.1:{srv} backup
frontend af
    bind 127.0.0.1:{}
    default_backend zb
listen ml
    bind 127.0.0.1:{}
    server m1 127.0.0.1:{srv}
backend db
    server d1 127.0.0.1:{} check inter 200
",
        sock.display(),
        p[0],
        p[1],
        p[2],
        srv = p[3]
    );
    let mut rx = Rx(udp, Vec::new());
    let mut proxy = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1]]);
    rx.wait_for("backend db has no server available!", 1);
    let cmds = [
        "disable server zb/s1",
        "disable server zb/s1",
        "enable server zb/s1",
        "set server zb/s2 state maint",
        "set server zb/s1 state maint",
        "set server zb/s3 state maint",
        "set server zb/s3 state ready",
        "set server zb/s1 state drain",
        "set server zb/s1 state ready",
        "set server zb/s2 state ready",
        "disable server ml/m1",
        "enable server ml/m1",
        "set server zb/s2 state drain",
        "set server zb/s2 state ready",
        "disable server db/d1",
    ];
    for c in cmds {
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        s.write_all(format!("{c}\n").as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
    }
    proxy.signal(libc_sigusr1());
    assert!(
        proxy.wait_exit(SOON).is_some(),
        "{imp:?} did not exit on SIGUSR1"
    );
    rx.wait_for("Proxy db stopped", 1);
    rx.drain();
    rx.1
}

#[test]
fn cli_state_changes_and_stop_order_match_haproxy() {
    let mut got = Vec::new();
    for imp in Impl::all("cli_state_changes_and_stop_order_match_haproxy") {
        let lines = run_cli(imp);
        println!("{imp:?}:\n{}", lines.join("\n"));
        got.push(lines);
    }
    let want = [
        "<129> haproxy: Server db/d1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<128> haproxy: backend db has no server available!",
        "<129> haproxy: Server zb/s1 is going DOWN for maintenance. 1 active and 1 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<133> haproxy: Server zb/s1 is UP/READY (leaving forced maintenance).",
        "<129> haproxy: Server zb/s2 is going DOWN for maintenance. 1 active and 1 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<129> haproxy: Server zb/s1 is going DOWN for maintenance. 0 active and 1 backup servers left. Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<129> haproxy: Backup Server zb/s3 is going DOWN for maintenance. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<128> haproxy: backend zb has no server available!",
        "<133> haproxy: Backup Server zb/s3 is UP/READY (leaving forced maintenance).",
        "<133> haproxy: Server zb/s1 is UP/DRAIN (leaving forced maintenance).",
        "<133> haproxy: Server zb/s1 remains in forced drain mode.",
        "<133> haproxy: Server zb/s1 is UP (leaving forced drain).",
        "<133> haproxy: Server zb/s2 is UP/READY (leaving forced maintenance).",
        "<129> haproxy: Server ml/m1 is going DOWN for maintenance. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<128> haproxy: proxy ml has no server available!",
        "<133> haproxy: Server ml/m1 is UP/READY (leaving forced maintenance).",
        "<133> haproxy: Server zb/s2 enters drain state. 1 active and 1 backup servers online. 0 sessions requeued, 0 total in queue.",
        "<133> haproxy: Server zb/s2 is UP (leaving forced drain).",
        "<133> haproxy: Server db/d1 was DOWN and now enters maintenance.",
        "<132> haproxy: Proxy af stopped (cumulated conns: FE: 0, BE: 0).",
        "<132> haproxy: Proxy ml stopped (cumulated conns: FE: 0, BE: 0).",
        "<132> haproxy: Proxy zb stopped (cumulated conns: FE: 0, BE: 0).",
        "<132> haproxy: Proxy db stopped (cumulated conns: FE: 0, BE: 0).",
    ];
    assert_eq!(got[0], want, "rhaproxy's datagrams");
    if got.len() == 2 {
        assert_eq!(got[0], got[1], "rhaproxy vs HAProxy datagrams");
    }
}
