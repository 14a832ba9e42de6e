//! The runtime API (`stats socket`): every command as `socat` sends it (write the line, close the
//! write side, read until the proxy closes), compared with HAProxy 2.6 on the same
//! configuration where the answer is deterministic; server state changes must change which
//! server answers; bad input must not hurt the process.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// One exchange the way `echo "CMD" | socat stdio UNIX:path` does it.
fn cli(sock: &Path, input: &str) -> String {
    let mut s = UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {sock:?}: {e}"));
    s.set_read_timeout(Some(SOON)).unwrap();
    // The proxy may close early (huge input): keep what it answered.
    let _ = s.write_all(input.as_bytes());
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn cmd(sock: &Path, c: &str) -> String {
    cli(sock, &format!("{c}\n"))
}

struct Setup {
    dir: TempDir,
    _proxy: ProxyProc,
    fe: u16,
    li: u16,
    _backends: Vec<Backend>,
}

impl Setup {
    fn sock(&self, name: &str) -> std::path::PathBuf {
        self.dir.0.join(name)
    }
}

/// The same configuration for both implementations: a frontend to a 4-server backend (one
/// checked and down, one backup and disabled) and a listen section.
fn setup(imp: Impl) -> Setup {
    let dir = TempDir::new("ops-stats");
    let p = free_ports(7);
    let backends = vec![
        Backend::start("s1", p[2], Behavior::Name),
        Backend::start("s2", p[3], Behavior::Name),
        Backend::start("a", p[5], Behavior::Name),
    ];
    let d = dir.0.display();
    let cfg = format!(
        "global
    stats socket {d}/admin.sock mode 600 level admin expose-fd listeners
    stats socket {d}/oper.sock level operator
    stats socket {d}/user.sock level user
    stats timeout 5s
defaults
    mode tcp
    timeout connect 2s
    timeout client 20s
    timeout server 20s
frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    server s1 127.0.0.1:{s1} weight 3
    server s2 127.0.0.1:{s2}
    server dn 127.0.0.1:{dn} check inter 300ms
    server s3 127.0.0.1:{s3} backup disabled
listen li
    bind 127.0.0.1:{li}
    balance leastconn
    server a 127.0.0.1:{a}
",
        fe = p[0],
        li = p[1],
        s1 = p[2],
        s2 = p[3],
        dn = p[4],
        a = p[5],
        s3 = p[6],
    );
    let proxy = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1]]);
    let s = Setup {
        dir,
        _proxy: proxy,
        fe: p[0],
        li: p[1],
        _backends: backends,
    };
    let admin = s.sock("admin.sock");
    wait_until("the checked server is DOWN", SOON, || {
        cmd(&admin, "show stat").contains(",dn,")
            && stat_field(&admin, "be", "dn", "status") == "DOWN"
    });
    s
}

fn stat_rows(sock: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let out = cmd(sock, "show stat");
    let mut lines = out.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or("")
        .trim_start_matches("# ")
        .split(',')
        .map(String::from)
        .collect();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

fn stat_field(sock: &Path, px: &str, sv: &str, col: &str) -> String {
    let (h, rows) = stat_rows(sock);
    let Some(i) = h.iter().position(|c| c == col) else {
        return String::new();
    };
    rows.iter()
        .find(|r| r[0] == px && r[1] == sv)
        .map(|r| r[i].clone())
        .unwrap_or_default()
}

/// Columns whose values depend on timing or on counters rhaproxy does not keep yet.
const VOLATILE: &[&str] = &[
    "slim",
    "lastchg",
    "downtime",
    "chkfail",
    "chkdown",
    "check_duration",
    "need_conn_est",
];

/// What both implementations answer, per command.
struct Answers {
    stat_header: String,
    /// Per row: `(pxname, svname)` and every stable column, with empty/non-empty shape.
    stat: Vec<Vec<(String, String)>>,
    servers_state: Vec<String>,
    texts: Vec<(String, String)>,
}

fn servers_state(sock: &Path, arg: &str) -> Vec<String> {
    cmd(sock, &format!("show servers state {arg}"))
        .lines()
        .map(|l| {
            let mut w: Vec<&str> = l.split(' ').collect();
            if w.len() > 10 && !l.starts_with('#') {
                w[9] = "T"; // srv_time_since_last_change
                w[18] = "P"; // srv_port
            }
            w.join(" ")
        })
        .collect()
}

fn stat_summary(sock: &Path) -> (String, Vec<Vec<(String, String)>>) {
    let out = cmd(sock, "show stat");
    let header = out.lines().next().unwrap_or("").to_string();
    let (h, rows) = stat_rows(sock);
    let rows = rows
        .iter()
        .map(|r| {
            h.iter()
                .zip(r.iter())
                .filter(|(c, _)| !c.is_empty())
                .map(|(c, v)| {
                    let v = if VOLATILE.contains(&c.as_str()) {
                        if v.is_empty() { "" } else { "<n>" }.to_string()
                    } else if c == "addr" {
                        // Ports differ between the two runs; the shape must not.
                        v.split(':').next().unwrap_or("").to_string()
                    } else {
                        v.clone()
                    };
                    (c.clone(), v)
                })
                .collect()
        })
        .collect();
    (header, rows)
}

fn collect(imp: Impl) -> Answers {
    let s = setup(imp);
    let admin = s.sock("admin.sock");
    let oper = s.sock("oper.sock");
    let user = s.sock("user.sock");
    let mut texts = Vec::new();
    let mut t = |label: &str, out: String| texts.push((label.to_string(), out));
    // Deterministic answers, byte for byte.
    t("show backend", cmd(&admin, "show backend"));
    if which("socat") {
        // The real client, as operators use it.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo 'show backend' | socat stdio UNIX-CONNECT:{}",
                admin.display()
            ))
            .output()
            .unwrap();
        t("socat", String::from_utf8_lossy(&out.stdout).into_owned());
    }
    t("get weight", cmd(&admin, "get weight be/s1"));
    t("get weight no backend", cmd(&admin, "get weight zz/s1"));
    t("get weight no server", cmd(&admin, "get weight be/zz"));
    t("get weight no slash", cmd(&admin, "get weight be"));
    t("set server usage", cmd(&admin, "set server be/s1"));
    t(
        "set server bad state",
        cmd(&admin, "set server be/s1 state bogus"),
    );
    t(
        "set server weight range",
        cmd(&admin, "set server be/s1 weight 300"),
    );
    t(
        "set server weight garbage",
        cmd(&admin, "set server be/s1 weight abc"),
    );
    t("disable no server", cmd(&admin, "disable server be/zz"));
    t("disable no slash", cmd(&admin, "disable server be"));
    t(
        "shutdown no server",
        cmd(&admin, "shutdown sessions server be/zz"),
    );
    t(
        "servers state unknown",
        cmd(&admin, "show servers state zz"),
    );
    t("user set weight", cmd(&user, "set weight be/s1 2"));
    t("user disable", cmd(&user, "disable server be/s1"));
    t("user show sess", cmd(&user, "show sess"));
    t("user show errors", cmd(&user, "show errors"));
    t(
        "user shutdown",
        cmd(&user, "shutdown sessions server be/s1"),
    );
    t("oper set weight", cmd(&oper, "set weight be/s1 2"));
    t("oper get weight", cmd(&oper, "get weight be/s1"));
    t("cli level", cmd(&oper, "show cli level"));
    t(
        "semicolons",
        cmd(&admin, "show backend;get weight li/a; get weight be/s1"),
    );
    t("two lines", cli(&admin, "show backend\nget weight li/a\n"));
    t("no final newline", cli(&admin, "get weight li/a"));
    t(
        "prompt",
        cli(
            &oper,
            "prompt\nshow cli level\nget weight be/s1\nuser\nshow cli level\nquit\n",
        ),
    );
    t("set weight", cmd(&admin, "set weight be/s1 5"));
    t("get weight after set", cmd(&admin, "get weight be/s1"));
    t(
        "set weight percent",
        cmd(&admin, "set server be/s1 weight 50%"),
    );
    t("get weight after percent", cmd(&admin, "get weight be/s1"));
    t("set weight back", cmd(&admin, "set weight be/s1 3"));
    let errors = cmd(&admin, "show errors");
    t(
        "show errors shape",
        errors.split('[').next().unwrap_or("").to_string()
            + errors.rsplit(']').next().unwrap_or(""),
    );
    t(
        "unknown first line",
        cmd(&admin, "foo").lines().next().unwrap_or("").to_string(),
    );
    t(
        "help first line",
        cmd(&user, "help").lines().next().unwrap_or("").to_string(),
    );
    t(
        "empty line first line",
        cli(&admin, "\n").lines().next().unwrap_or("").to_string(),
    );
    let info = cmd(&user, "show info");
    t(
        "show info keys",
        info.lines()
            .map(|l| l.split(':').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("|"),
    );
    // HAProxy's socket budget (`maxsock`), which the idle-connection limits are ratios of.
    t(
        "show info Maxsock",
        info.lines()
            .find(|l| l.starts_with("Maxsock:"))
            .unwrap_or("")
            .to_string(),
    );
    // Initial states.
    let (stat_header, mut stat) = stat_summary(&admin);
    let mut ss = servers_state(&admin, "");
    let user_stat = stat_summary(&user).1;
    stat.extend(user_stat);
    // State changes.
    for c in [
        "disable server be/s1",
        "set server be/s2 state drain",
        "set server be/dn state maint",
        "enable server be/s3",
        "set weight li/a 0",
    ] {
        texts.push((c.to_string(), cmd(&admin, c)));
    }
    stat.extend(stat_summary(&admin).1);
    ss.extend(servers_state(&admin, "be"));
    for c in [
        "enable server be/s1",
        "set server be/s2 state ready",
        "set server be/s3 state maint",
        "set weight li/a 1",
    ] {
        texts.push((c.to_string(), cmd(&admin, c)));
    }
    stat.extend(stat_summary(&admin).1);
    ss.extend(servers_state(&admin, ""));
    // `show stat` filters: names and statuses of the rows.
    let names = |c: &str| -> String {
        cmd(&admin, c)
            .lines()
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
            .join("|")
    };
    for c in [
        "show stat -1 4 -1",
        "show stat 3 2 -1",
        "show stat 3 -1 2",
        "show stat li 1 -1",
        "show stat be",
        "show stat up",
        "show stat no-maint",
    ] {
        texts.push((c.to_string(), names(c)));
    }
    // Frontends.
    let status = |px: &str| stat_field(&admin, px, "FRONTEND", "status");
    for c in [
        "disable frontend fe",
        "disable frontend fe",
        "status fe",
        "enable frontend fe",
        "enable frontend fe",
        "status fe",
        "disable frontend zz",
        "disable frontend",
        "disable frontend be",
        "shutdown frontend li",
        "status li",
        "enable frontend li",
        "disable frontend li",
    ] {
        let out = match c.strip_prefix("status ") {
            Some(px) => status(px),
            None => cmd(&admin, c),
        };
        texts.push((c.to_string(), out));
    }
    texts.push((
        "oper disable frontend".into(),
        cmd(&oper, "disable frontend fe"),
    ));
    let _ = (s.fe, s.li);
    drop(s);
    Answers {
        stat_header,
        stat,
        servers_state: ss,
        texts,
    }
}

#[test]
fn stats_socket_answers_match_haproxy() {
    let impls = Impl::all("stats_socket_answers_match_haproxy");
    let answers: Vec<(Impl, Answers)> = impls.iter().map(|&i| (i, collect(i))).collect();
    let (_, r) = &answers[0];
    // rhaproxy's own expectations (hold without HAProxy installed too).
    assert!(
        r.stat_header
            .starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,")
    );
    assert_eq!(
        r.texts.iter().find(|t| t.0 == "user disable").unwrap().1,
        "Permission denied\n\n"
    );
    assert_eq!(
        r.texts
            .iter()
            .find(|t| t.0 == "get weight after set")
            .unwrap()
            .1,
        "5 (initial 3)\n\n"
    );
    let socat = r.texts.iter().find(|t| t.0 == "socat");
    assert!(
        socat.is_some_and(|t| t.1 == "# name\nbe\nli\n\n") || !which("socat"),
        "socat: {socat:?}"
    );
    let Some((_, h)) = answers.get(1) else {
        return;
    };
    assert_eq!(r.stat_header, h.stat_header, "show stat header");
    for ((l1, a1), (l2, a2)) in r.texts.iter().zip(h.texts.iter()) {
        assert_eq!(l1, l2);
        assert_eq!(a1, a2, "answer to {l1:?} (left rhaproxy, right HAProxy)");
    }
    assert_eq!(r.stat.len(), h.stat.len(), "show stat rows");
    for (a, b) in r.stat.iter().zip(h.stat.iter()) {
        for (x, y) in a.iter().zip(b.iter()) {
            assert_eq!(
                x, y,
                "show stat row {}/{} (left rhaproxy, right HAProxy)",
                a[0].1, a[1].1
            );
        }
    }
    assert_eq!(r.servers_state, h.servers_state, "show servers state");
}

fn thread_sleep(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn who(port: u16) -> String {
    tcp_read(port, None).unwrap_or_default().trim().to_string()
}

/// The set of servers answering `n` connections.
fn answering(port: u16, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|_| who(port)).collect();
    v.sort();
    v.dedup();
    v
}

fn who_http(port: u16) -> String {
    let mut c = HttpConn::connect(port).unwrap();
    c.request("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .map(|r| r.body_str().trim().to_string())
        .unwrap_or_default()
}

#[test]
fn server_state_changes_move_http_traffic() {
    for imp in Impl::all("server_state_changes_move_http_traffic") {
        let dir = TempDir::new("ops-traffic-http");
        let p = free_ports(3);
        let _b: Vec<Backend> = (0..2)
            .map(|i| Backend::start(&format!("s{}", i + 1), p[1 + i], Behavior::Http))
            .collect();
        let d = dir.0.display();
        let cfg = format!(
            "global
    stats socket {d}/admin.sock level admin
defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s
listen li
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{}
    server s2 127.0.0.1:{}
",
            p[0], p[1], p[2]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let sock = dir.0.join("admin.sock");
        let set = |n: usize| {
            let mut v: Vec<String> = (0..n).map(|_| who_http(p[0])).collect();
            v.sort();
            v.dedup();
            v
        };
        assert_eq!(set(4), vec!["s1", "s2"], "{imp:?}");
        // One keep-alive connection: requests follow the server states too.
        let mut ka = HttpConn::connect(p[0]).unwrap();
        assert_eq!(cmd(&sock, "set server li/s1 state maint"), "\n");
        assert_eq!(set(4), vec!["s2"], "{imp:?}");
        for _ in 0..3 {
            assert_eq!(
                ka.get("/").unwrap().body_str().trim(),
                "s2",
                "{imp:?} keep-alive"
            );
        }
        assert_eq!(cmd(&sock, "set server li/s1 state ready"), "\n");
        assert_eq!(cmd(&sock, "set server li/s2 state drain"), "\n");
        assert_eq!(set(4), vec!["s1"], "{imp:?}");
        assert_eq!(cmd(&sock, "set server li/s2 state ready"), "\n");
        // (FWRR may hand a returning server several picks in a row.)
        assert_eq!(set(10), vec!["s1", "s2"], "{imp:?}");
        // A request in progress on s1 is cut by `shutdown sessions server`.
        let _ = cmd(&sock, "set server li/s2 state maint");
        let mut slow = HttpConn::connect(p[0]).unwrap();
        slow.send("GET /slow/8000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        wait_until("the slow request reached s1", SOON, || {
            _b[0].inflight.load(std::sync::atomic::Ordering::Acquire) > 0
        });
        if imp == Impl::Rhaproxy {
            let sess = cmd(&sock, "show sess");
            assert!(sess.contains("fe=li be=li srv=s1"), "show sess: {sess}");
        }
        let t = Instant::now();
        assert_eq!(cmd(&sock, "shutdown sessions server li/s1"), "\n");
        slow.w
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let r = slow.read_response(false);
        let cut = r.is_err() || r.as_ref().is_ok_and(|r| r.status != 200);
        if imp == Impl::Haproxy && !(cut && t.elapsed() < Duration::from_secs(5)) {
            // Seen once in CI under heavy load: HAProxy let the request finish. The reference
            // is not what is under test here; say so and keep checking rhaproxy strictly.
            println!("note: HAProxy did not cut the slow session this time ({r:?})");
            continue;
        }
        assert!(cut, "{imp:?}: {r:?}");
        assert!(t.elapsed() < Duration::from_secs(5), "{imp:?}: not cut");
    }
}

#[test]
fn server_state_changes_move_traffic() {
    for imp in Impl::all("server_state_changes_move_traffic") {
        let dir = TempDir::new("ops-traffic");
        let p = free_ports(4);
        let _b: Vec<Backend> = (0..3)
            .map(|i| Backend::start(&format!("s{}", i + 1), p[1 + i], Behavior::Name))
            .collect();
        let d = dir.0.display();
        let cfg = format!(
            "global
    stats socket {d}/admin.sock level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 20s
    timeout server 20s
listen li
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{}
    server s2 127.0.0.1:{}
    server s3 127.0.0.1:{}
",
            p[0], p[1], p[2], p[3]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let sock = dir.0.join("admin.sock");
        let all = vec!["s1", "s2", "s3"];
        assert_eq!(answering(p[0], 6), all, "{imp:?} start");
        let steps: &[(&str, &[&str])] = &[
            ("disable server li/s1", &["s2", "s3"]),
            ("enable server li/s1", &["s1", "s2", "s3"]),
            ("set server li/s2 state drain", &["s1", "s3"]),
            ("set server li/s2 state ready", &["s1", "s2", "s3"]),
            ("set server li/s3 state maint", &["s1", "s2"]),
            ("set server li/s3 state ready", &["s1", "s2", "s3"]),
            ("set weight li/s1 0", &["s2", "s3"]),
            ("set server li/s1 weight 1", &["s1", "s2", "s3"]),
            ("set server li/s2 weight 0%", &["s1", "s3"]),
            ("set server li/s2 weight 100%", &["s1", "s2", "s3"]),
        ];
        for (c, want) in steps {
            assert_eq!(cmd(&sock, c), "\n", "{imp:?} {c}");
            assert_eq!(answering(p[0], 9), *want, "{imp:?} after {c}");
        }
        // disable frontend: refused (the socket stops listening); enable: served again.
        assert_eq!(cmd(&sock, "disable frontend li"), "\n");
        let r = std::net::TcpStream::connect(("127.0.0.1", p[0]));
        assert!(r.is_err(), "{imp:?}: accepted while disabled");
        assert_eq!(cmd(&sock, "enable frontend li"), "\n");
        assert_eq!(answering(p[0], 3), vec!["s1", "s2", "s3"], "{imp:?}");
        // shutdown frontend: refused from now on.
        assert_eq!(cmd(&sock, "shutdown frontend li"), "\n");
        wait_until("refused after shutdown frontend", SOON, || {
            std::net::TcpStream::connect(("127.0.0.1", p[0])).is_err()
        });
    }
}

/// Server counts over `n` connections.
fn counts(port: u16, n: usize) -> Vec<(String, usize)> {
    let mut m = std::collections::BTreeMap::new();
    for _ in 0..n {
        *m.entry(who(port)).or_insert(0) += 1;
    }
    m.into_iter().collect()
}

#[test]
fn weight_changes_shift_the_share_like_haproxy() {
    let mut all = Vec::new();
    for imp in Impl::all("weight_changes_shift_the_share_like_haproxy") {
        let dir = TempDir::new("ops-weight");
        let p = free_ports(4);
        let _b: Vec<Backend> = (0..3)
            .map(|i| Backend::start(&format!("s{}", i + 1), p[1 + i], Behavior::Name))
            .collect();
        let d = dir.0.display();
        let cfg = format!(
            "global
    stats socket {d}/admin.sock level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 20s
    timeout server 20s
listen li
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{}
    server s2 127.0.0.1:{}
    server s3 127.0.0.1:{}
",
            p[0], p[1], p[2], p[3]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let sock = dir.0.join("admin.sock");
        let mut seen = vec![counts(p[0], 30)];
        assert_eq!(cmd(&sock, "set weight li/s1 3"), "\n");
        seen.push(counts(p[0], 50));
        assert_eq!(cmd(&sock, "set server li/s2 weight 300%"), "\n");
        seen.push(counts(p[0], 60));
        assert_eq!(cmd(&sock, "get weight li/s2"), "3 (initial 1)\n\n");
        all.push(seen);
    }
    let want = |v: &[(&str, usize)]| -> Vec<(String, usize)> {
        v.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    };
    assert_eq!(all[0][0], want(&[("s1", 10), ("s2", 10), ("s3", 10)]));
    assert_eq!(all[0][1], want(&[("s1", 30), ("s2", 10), ("s3", 10)]));
    assert_eq!(all[0][2], want(&[("s1", 26), ("s2", 26), ("s3", 8)]));
    if let Some(h) = all.get(1) {
        assert_eq!(&all[0], h, "left rhaproxy, right HAProxy");
    }
}

#[test]
fn shutdown_sessions_server_closes_its_connections() {
    for imp in Impl::all("shutdown_sessions_server_closes_its_connections") {
        let dir = TempDir::new("ops-kill");
        let p = free_ports(3);
        let _b1 = Backend::start("s1", p[1], Behavior::Silent);
        let _b2 = Backend::start("s2", p[2], Behavior::Silent);
        let d = dir.0.display();
        let cfg = format!(
            "global
    stats socket {d}/admin.sock level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
listen li
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{}
    server s2 127.0.0.1:{}
",
            p[0], p[1], p[2]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let sock = dir.0.join("admin.sock");
        // Two connections: round robin puts one on each server.
        let mut c1 = std::net::TcpStream::connect(("127.0.0.1", p[0])).unwrap();
        let mut c2 = std::net::TcpStream::connect(("127.0.0.1", p[0])).unwrap();
        wait_until("both servers have a connection", SOON, || {
            _b1.accepted() == 1 && _b2.accepted() == 1
        });
        assert_eq!(cmd(&sock, "shutdown sessions server li/s1"), "\n");
        // Exactly one of the two client connections (the one on s1) is closed.
        let closed = |c: &mut std::net::TcpStream| {
            c.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut b = [0u8; 16];
            matches!(c.read(&mut b), Ok(0))
                || matches!(c.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
        };
        let t = Instant::now();
        let mut n = 0;
        while t.elapsed() < Duration::from_secs(10) {
            n = closed(&mut c1) as u8 + closed(&mut c2) as u8;
            if n > 0 {
                break;
            }
        }
        thread_sleep(300);
        n = n.max(closed(&mut c1) as u8 + closed(&mut c2) as u8);
        assert_eq!(
            n, 1,
            "{imp:?}: one session (on s1) must be closed, the other kept"
        );
    }
}

#[test]
fn bad_input_never_hurts_the_process() {
    let dir = TempDir::new("ops-bad");
    let p = free_ports(2);
    let _b = Backend::start("s1", p[1], Behavior::Name);
    let d = dir.0.display();
    let cfg = format!(
        "global
    stats socket {d}/admin.sock level admin
    stats socket {d}/user.sock level user
    stats timeout 2s
defaults
    mode tcp
    timeout connect 2s
    timeout client 20s
    timeout server 20s
listen li
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{}
",
        p[0], p[1]
    );
    let mut px = ProxyProc::start(Impl::Rhaproxy, &dir, &cfg, &[p[0]]);
    let admin = dir.0.join("admin.sock");
    let user = dir.0.join("user.sock");
    // A huge line without newline, then one with.
    let huge = "x".repeat(1 << 20);
    let _ = cli(&admin, &huge);
    let _ = cli(&admin, &format!("{huge}\n"));
    // Binary garbage, NULs, invalid UTF-8, lone CRs, many separators.
    let garbage: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    {
        let mut s = UnixStream::connect(&admin).unwrap();
        let _ = s.write_all(&garbage);
    }
    let _ = cli(&admin, &";".repeat(10_000));
    let _ = cli(&admin, &"show stat;".repeat(2_000));
    let _ = cli(&admin, "set weight li/s1 99999999999999999999999\n");
    let _ = cli(&admin, "set server li/s1 weight -5\n");
    let _ = cli(&admin, "set server li/s1 state\n");
    let _ = cli(&admin, "get weight /\n");
    let _ = cli(&admin, "get weight li/\n");
    // No `expose-fd listeners` on these sockets: no descriptors handed out.
    assert_eq!(cli(&user, "_getsocks\n"), "Permission denied\n\n");
    assert_eq!(cli(&admin, "_getsocks\n"), "Permission denied\n\n");
    // Clients going away mid-answer.
    for _ in 0..50 {
        let mut s = UnixStream::connect(&admin).unwrap();
        let _ = s.write_all(&"show stat\n".repeat(200).into_bytes());
        drop(s);
    }
    // Idle clients: closed at `stats timeout`.
    let mut idle = UnixStream::connect(&admin).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut b = [0u8; 8];
    let t = Instant::now();
    assert!(matches!(idle.read(&mut b), Ok(0)));
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "closed too early"
    );
    // Many clients at once.
    let many: Vec<UnixStream> = (0..200)
        .filter_map(|_| UnixStream::connect(&admin).ok())
        .collect();
    drop(many);
    // Still alive and answering.
    assert_eq!(
        px.wait_exit(Duration::from_millis(10)),
        None,
        "process died"
    );
    assert_eq!(cmd(&admin, "get weight li/s1"), "1 (initial 1)\n\n");
    assert_eq!(who(p[0]), "s1");
}

/// The warnings a state change prints (stderr), as HAProxy prints them.
#[test]
fn state_change_messages_match_haproxy() {
    let mut logs = Vec::new();
    for imp in Impl::all("state_change_messages_match_haproxy") {
        let dir = TempDir::new("ops-msgs");
        let p = free_ports(5);
        let _b: Vec<Backend> = (0..3)
            .map(|i| Backend::start(&format!("s{}", i + 1), p[1 + i], Behavior::Name))
            .collect();
        let d = dir.0.display();
        let cfg = format!(
            "global
    stats socket {d}/admin.sock level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 20s
    timeout server 20s
listen li
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{}
    server s2 127.0.0.1:{} check inter 300ms
    server s3 127.0.0.1:{} backup
    server dn 127.0.0.1:{} check inter 300ms
",
            p[0], p[1], p[2], p[3], p[4]
        );
        let px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let sock = dir.0.join("admin.sock");
        px.wait_stderr("Server li/dn is DOWN", SOON);
        for c in [
            "set server li/s1 state drain",
            "set server li/s1 state maint",
            "set server li/s1 state ready",
            "set server li/s2 state drain",
            "set server li/s2 state ready",
            "set server li/dn state maint",
            "set server li/s2 state maint",
            "disable server li/s1",
            "set server li/s3 state maint",
            "set server li/s3 state ready",
            "enable server li/s1",
            "set server li/s1 state maint",
            "set server li/s1 state drain",
            "set server li/s1 state ready",
            "set server li/s2 state ready",
            "set weight li/s1 0",
        ] {
            assert_eq!(cmd(&sock, c), "\n", "{imp:?} {c}");
        }
        thread_sleep(200);
        let text: Vec<String> = px
            .stderr()
            .lines()
            .filter(|l| !l.starts_with("[NOTICE]") && !l.contains("li/dn is DOWN, reason"))
            .filter(|l| !l.contains("li/s2 is DOWN") && !l.contains("li/s2 is UP, reason"))
            .map(|l| match (l.find('('), l.find(") : ")) {
                (Some(a), Some(b)) if a < b => format!("{}{}", &l[..a], &l[b + 3..]),
                _ => l.to_string(),
            })
            .collect();
        logs.push(text);
    }
    assert!(
        logs[0]
            .iter()
            .any(|l| l.contains("Server li/s1 enters drain state.")),
        "{:#?}",
        logs[0]
    );
    if let Some(h) = logs.get(1) {
        assert_eq!(&logs[0], h, "left rhaproxy, right HAProxy");
    }
}

/// True when the proxy closed `c` (end of stream or reset) within `timeout`; false when the
/// wait timed out.
fn eof_within(c: &mut HttpConn, timeout: Duration) -> bool {
    c.w.set_read_timeout(Some(timeout)).unwrap();
    let mut b = [0u8; 1];
    match c.r.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Idle HTTP keep-alive sessions (one request done, waiting for the next): `show sess` lists
/// them with the server they last used; `shutdown sessions server` leaves them alone (as
/// HAProxy: an idle client connection has no stream on the server), soft stop closes them at
/// once (the registry wakes their task; they hold no future for it).
#[test]
fn idle_http_sessions_show_shutdown_and_soft_stop() {
    for imp in Impl::all("idle_http_sessions_show_shutdown_and_soft_stop") {
        for mode in ["", "    option http-server-close\n"] {
            let dir = TempDir::new("ops-idle-http");
            let p = free_ports(3);
            let _b: Vec<Backend> = (0..2)
                .map(|i| Backend::start(&format!("s{}", i + 1), p[1 + i], Behavior::Http))
                .collect();
            let d = dir.0.display();
            let cfg = format!(
                "global
    stats socket {d}/admin.sock level admin
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
listen li
    bind 127.0.0.1:{}
{mode}    server s1 127.0.0.1:{}
    server s2 127.0.0.1:{}
",
                p[0], p[1], p[2]
            );
            let mut px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
            let sock = dir.0.join("admin.sock");
            // Round robin: the first connection's request goes to s1, the second's to s2.
            let mut c1 = HttpConn::connect(p[0]).unwrap();
            assert_eq!(c1.get("/").unwrap().body_str().trim(), "s1", "{imp:?}");
            let mut c2 = HttpConn::connect(p[0]).unwrap();
            assert_eq!(c2.get("/").unwrap().body_str().trim(), "s2", "{imp:?}");
            let mut c3 = HttpConn::connect(p[0]).unwrap();
            if imp == Impl::Rhaproxy {
                // (The third connection may not be accepted yet.)
                let count = || {
                    let sess = cmd(&sock, "show sess");
                    sess.lines().filter(|l| l.contains("fe=li")).count()
                };
                wait_until("three sessions", SOON, || count() == 3);
                let sess = cmd(&sock, "show sess");
                let lines: Vec<&str> = sess.lines().filter(|l| l.contains("fe=li")).collect();
                assert_eq!(lines.len(), 3, "{mode:?} show sess: {sess}");
                assert!(sess.contains("fe=li be=li srv=s1 "), "{mode:?} {sess}");
                assert!(sess.contains("fe=li be=li srv=s2 "), "{mode:?} {sess}");
                // The connection without a request yet has no server.
                assert!(sess.contains("fe=li be=li srv=<none> "), "{mode:?} {sess}");
                assert!(
                    lines
                        .iter()
                        .all(|l| l.contains("proto=tcpv4 src=127.0.0.1:"))
                );
            }
            assert_eq!(cmd(&sock, "shutdown sessions server li/s1"), "\n");
            let c1_closed = eof_within(&mut c1, Duration::from_millis(1000));
            let c2_closed = eof_within(&mut c2, Duration::from_millis(200));
            assert!(!c1_closed, "{imp:?} {mode:?}: the idle session on s1 stays");
            assert!(!c2_closed, "{imp:?} {mode:?}: the session on s2 stays");
            for c in [&mut c1, &mut c2] {
                let r = c.get("/").unwrap();
                assert_eq!(r.status, 200, "{imp:?} {mode:?}");
            }
            // Soft stop: idle keep-alive sessions close at once and the process leaves;
            // a connection still waiting for its first request is not an idle keep-alive one.
            let t = Instant::now();
            px.signal(10);
            assert!(
                eof_within(&mut c2, Duration::from_secs(3)),
                "{imp:?} {mode:?}: the idle keep-alive session is closed on soft stop"
            );
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "{imp:?} {mode:?}: soft stop took {:?}",
                t.elapsed()
            );
            drop(c3.get("/"));
            assert!(
                px.wait_exit(Duration::from_secs(5)).is_some(),
                "{imp:?} {mode:?}: the process left"
            );
        }
    }
}
