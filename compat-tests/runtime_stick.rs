//! Stick tables and stick counters, against HAProxy 2.6 when installed: the same config and
//! the same traffic through both, comparing the status of every request, which connections
//! were refused, and the table as `show table` prints it on the stats socket (the entry
//! addresses and the milliseconds left before expiry masked).

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

fn cli(sock: &Path, input: &str) -> String {
    let mut s = UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {sock:?}: {e}"));
    s.set_read_timeout(Some(SOON)).unwrap();
    s.write_all(input.as_bytes()).unwrap();
    s.write_all(b"\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// One run per implementation: rhaproxy, then HAProxy when installed. `run` gets which one, a
/// fresh directory and the path of a stats socket in it; each result is printed for the log.
fn each_impl<T: std::fmt::Debug>(
    test: &str,
    tag: &str,
    run: impl Fn(Impl, &TempDir, &Path) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    for which in Impl::all(test) {
        let dir = TempDir::new(tag);
        let sock = dir.0.join("admin.sock");
        let r = run(which, &dir, &sock);
        println!("{which:?}:\n{r:#?}");
        out.push(r);
    }
    out
}

/// `show table` output with the entry addresses and the expiry countdowns masked.
fn masked(out: &str) -> String {
    out.lines()
        .map(|l| {
            l.split(' ')
                .map(|w| {
                    if w.starts_with("0x") && w.ends_with(':') {
                        "PTR:".to_string()
                    } else if let Some(v) = w.strip_prefix("exp=") {
                        // Milliseconds left: only whether it counts down from the `expire`.
                        let ms: i64 = v.parse().unwrap_or(-1);
                        format!("exp={}", if ms > 20_000 { "SOON" } else { "LOW" })
                    } else {
                        w.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn status_of(port: u16, src: Ipv4Addr, paths: &[&str]) -> Vec<u16> {
    let mut c = HttpConn::connect_from(Some(src), port).expect("connect");
    paths
        .iter()
        .map(|p| {
            c.get(p)
                .map(|r| r.status)
                .unwrap_or_else(|e| panic!("GET {p}: {e}"))
        })
        .collect()
}

/// HTTP rate limiting the documented way: `http-request track-sc0 src`, a deny over a rate,
/// a general-purpose counter bumped on one path, a second table keyed by a header.
#[test]
fn http_tracking_counts_and_limits_as_haproxy_does() {
    let results = each_impl(
        "http_tracking_counts_and_limits_as_haproxy_does",
        "stick-http",
        |which, dir, sock| {
            let ports = free_ports(2);
            let (fport, bport) = (ports[0], ports[1]);
            let _srv = Backend::start("s1", bport, Behavior::Http);
            let cfg = format!(
                r#"
global
    stats socket {sock} level admin
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:{fport}
    stick-table type ip size 100 expire 30s store conn_cnt,conn_cur,conn_rate(10s),http_req_cnt,http_req_rate(10s),http_err_cnt,gpc0,gpc0_rate(10s)
    http-request track-sc0 src
    http-request track-sc1 req.hdr(x-user) table users if {{ req.hdr(x-user) -m found }}
    http-request sc-inc-gpc0(0) if {{ path_beg /inc }}
    http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt 6 }}
    http-request return status 200 content-type text/plain lf-string "r=%[sc_http_req_rate(0)] g=%[sc0_get_gpc0] t=%[sc1_tracked] s=%[src_http_req_cnt] c=%[src,table_http_req_rate(fe)] i=%[src,in_table(fe)] u=%[req.hdr(x-user),in_table(users)] k=%[src,table_kbytes_in(fe)]" if {{ path_beg /show }}
    http-request deny deny_status 403 if {{ src,table_gpc0(fe) gt 100 }} || {{ req.hdr(x-user),table_http_req_cnt(users) gt 100 }}
    default_backend be
backend users
    stick-table type string len 8 size 10 store http_req_cnt
backend be
    server s1 127.0.0.1:{bport}
"#,
                sock = sock.display()
            );
            let _p = ProxyProc::start(which, dir, &cfg, &[fport]);
            let a = Ipv4Addr::new(127, 0, 0, 1);
            let b = Ipv4Addr::new(127, 0, 0, 2);
            let mut seen = Vec::new();
            // One keep-alive connection: three requests, one of them a 404 from the server.
            seen.push(format!(
                "{:?}",
                status_of(fport, a, &["/", "/inc", "/status/404"])
            ));
            // Then new connections until the rate is over the limit.
            for _ in 0..5 {
                seen.push(format!("{:?}", status_of(fport, a, &["/inc"])));
            }
            seen.push(format!("{:?}", status_of(fport, b, &["/", "/"])));
            let mut c = HttpConn::connect_from(Some(b), fport).unwrap();
            let r = c
                .request("GET /show HTTP/1.1\r\nHost: x\r\nX-User: alice-in-wonderland\r\n\r\n")
                .unwrap();
            seen.push(format!("{} {}", r.status, r.body_str()));
            drop(c);
            // Give the proxy a moment to end the connections it was told about.
            std::thread::sleep(Duration::from_millis(200));
            let all = cli(sock, "show table");
            let fe = masked(&cli(sock, "show table fe"));
            let users = masked(&cli(sock, "show table users"));
            let one = masked(&cli(sock, "show table fe key 127.0.0.2"));
            let filtered = masked(&cli(sock, "show table fe data.gpc0 gt 3"));
            let unknown = cli(sock, "show table nope");
            let cleared = cli(sock, "clear table fe key 127.0.0.2");
            let after = masked(&cli(sock, "show table fe"));
            (
                which, seen, all, fe, users, one, filtered, unknown, cleared, after,
            )
        },
    );
    let rh = &results[0];
    // rhaproxy alone: the limit answers 429 once the rate is over 6.
    assert!(
        rh.1.iter().any(|s| s.contains("429")),
        "no request was limited: {:?}",
        rh.1
    );
    assert!(rh.3.contains("key=127.0.0.1"), "{}", rh.3);
    if let Some(ha) = results.get(1) {
        assert_eq!(rh.1, ha.1, "statuses and bodies differ from HAProxy's");
        assert_eq!(rh.2, ha.2, "`show table` differs");
        assert_eq!(rh.3, ha.3, "`show table fe` differs");
        assert_eq!(rh.4, ha.4, "`show table users` differs");
        assert_eq!(rh.5, ha.5, "`show table fe key` differs");
        assert_eq!(rh.6, ha.6, "`show table fe data.gpc0 gt 3` differs");
        assert_eq!(rh.7, ha.7, "unknown table message differs");
        assert_eq!(rh.8, ha.8, "`clear table` answer differs");
        assert_eq!(rh.9, ha.9, "`show table fe` after `clear table` differs");
    }
}

/// Connection-rate limiting in `mode tcp`: `tcp-request connection track-sc0 src` and a
/// reject over a rate; the held connections show in `conn_cur`.
#[test]
fn tcp_connection_tracking_rejects_over_the_rate() {
    let results = each_impl(
        "tcp_connection_tracking_rejects_over_the_rate",
        "stick-tcp",
        |which, dir, sock| {
            let ports = free_ports(2);
            let (fport, bport) = (ports[0], ports[1]);
            let _srv = Backend::start("s1", bport, Behavior::LineEcho);
            let cfg = format!(
                r#"
global
    stats socket {sock} level admin
defaults
    mode tcp
    timeout client 5s
    timeout server 5s
    timeout connect 5s
listen li
    bind 127.0.0.1:{fport}
    stick-table type ip size 100 expire 30s store conn_cnt,conn_cur,conn_rate(10s),sess_cnt,bytes_in_cnt,bytes_out_cnt
    tcp-request connection track-sc0 src
    tcp-request connection reject if {{ sc0_conn_rate gt 3 }}
    server s1 127.0.0.1:{bport}
"#,
                sock = sock.display()
            );
            let _p = ProxyProc::start(which, dir, &cfg, &[fport]);
            let mut held = Vec::new();
            let mut seen = Vec::new();
            for _ in 0..5 {
                let mut s = connect_from(Some(Ipv4Addr::new(127, 0, 0, 3)), fport).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 64];
                let got = match s.read(&mut buf) {
                    Ok(n) if n > 0 => String::from_utf8_lossy(&buf[..n]).trim().to_string(),
                    Ok(_) => "EOF".to_string(),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => "RST".into(),
                    Err(e) => format!("{:?}", e.kind()),
                };
                seen.push(got);
                held.push(s);
            }
            // Two connections closed, the others held open.
            held.truncate(2);
            std::thread::sleep(Duration::from_millis(300));
            let table = masked(&cli(sock, "show table li"));
            drop(held);
            std::thread::sleep(Duration::from_millis(300));
            let after = masked(&cli(sock, "show table li"));
            (which, seen, table, after)
        },
    );
    let rh = &results[0];
    assert_eq!(rh.1.iter().filter(|s| *s == "s1").count(), 3, "{:?}", rh.1);
    assert!(rh.3.contains("conn_cur=0"), "{}", rh.3);
    if let Some(ha) = results.get(1) {
        assert_eq!(
            rh.1, ha.1,
            "accepted/refused connections differ from HAProxy's"
        );
        assert_eq!(rh.2, ha.2, "`show table` with connections held differs");
        assert_eq!(rh.3, ha.3, "`show table` after the close differs");
    }
}

/// Session and stream trackers together: a connection tracker, a session tracker and a
/// content tracker per request, an `http-request` tracker on the session's counter, a
/// general-purpose tag, 4xx and 5xx answers and the bytes, read while the connection is
/// open and after it closed.
#[test]
fn session_and_stream_trackers_count_as_haproxy_does() {
    let results = each_impl(
        "session_and_stream_trackers_count_as_haproxy_does",
        "stick-sess",
        |which, dir, sock| {
            let ports = free_ports(2);
            let (fport, bport) = (ports[0], ports[1]);
            let _srv = Backend::start("s1", bport, Behavior::Http);
            let cfg = format!(
                r#"
global
    stats socket {sock} level admin
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:{fport}
    stick-table type ip size 100 expire 30s store conn_cnt,conn_cur,sess_cnt,http_req_cnt,http_err_cnt,http_fail_cnt,gpt0,bytes_in_cnt,bytes_out_cnt
    tcp-request connection track-sc0 src
    tcp-request session track-sc1 src table t2
    tcp-request content track-sc2 src table t3
    http-request track-sc0 src
    http-request sc-set-gpt0(0) 7 if {{ path_beg /gpt }}
    http-request return status 200 content-type text/plain lf-string "c=%[sc0_conn_cur] t=%[sc0_trackers] r=%[sc1_http_req_cnt] g=%[sc0_get_gpt0] k=%[sc2_tracked]" if {{ path_beg /show }}
    default_backend be
backend t2
    stick-table type ip size 10 store sess_cnt,http_req_cnt,conn_cur
backend t3
    stick-table type ip size 10 store http_req_cnt,conn_cnt,conn_cur
backend be
    server s1 127.0.0.1:{bport}
"#,
                sock = sock.display()
            );
            let _p = ProxyProc::start(which, dir, &cfg, &[fport]);
            let mut c = HttpConn::connect_from(Some(Ipv4Addr::new(127, 0, 0, 4)), fport).unwrap();
            let mut seen = Vec::new();
            for p in ["/", "/gpt", "/status/500", "/status/404", "/show"] {
                let r = c.get(p).unwrap();
                seen.push(format!("{} {}", r.status, r.body_str()));
            }
            std::thread::sleep(Duration::from_millis(200));
            let open: Vec<String> = ["fe", "t2", "t3"]
                .iter()
                .map(|t| masked(&cli(sock, &format!("show table {t}"))))
                .collect();
            drop(c);
            std::thread::sleep(Duration::from_millis(300));
            let closed: Vec<String> = ["fe", "t2", "t3"]
                .iter()
                .map(|t| masked(&cli(sock, &format!("show table {t}"))))
                .collect();
            (which, seen, open, closed)
        },
    );
    let rh = &results[0];
    assert!(rh.2[0].contains("gpt0=7"), "{}", rh.2[0]);
    assert!(rh.3[0].contains("conn_cur=0"), "{}", rh.3[0]);
    if let Some(ha) = results.get(1) {
        assert_eq!(rh.1, ha.1, "answers differ from HAProxy's");
        assert_eq!(rh.2, ha.2, "tables with the connection open differ");
        assert_eq!(rh.3, ha.3, "tables after the close differ");
    }
}

/// Persistence on the client's address in `mode tcp` (`stick on src`) and in `mode http`
/// (`stick match` + `stick store-request` on a header, in another table): the same server
/// for each client as HAProxy, and the same table contents (`server_id`, `server_key`).
#[test]
fn stick_rules_keep_each_client_on_its_server() {
    let results = each_impl(
        "stick_rules_keep_each_client_on_its_server",
        "stick-on",
        |which, dir, sock| {
            let ports = free_ports(6);
            let (tport, hport) = (ports[0], ports[1]);
            let _t1 = Backend::start("t1", ports[2], Behavior::LineEcho);
            let _t2 = Backend::start("t2", ports[3], Behavior::LineEcho);
            let _h1 = Backend::start("h1", ports[4], Behavior::Http);
            let _h2 = Backend::start("h2", ports[5], Behavior::Http);
            let cfg = format!(
                r#"
global
    stats socket {sock} level admin
defaults
    timeout client 5s
    timeout server 5s
    timeout connect 5s
listen tcp_in
    mode tcp
    bind 127.0.0.1:{tport}
    balance roundrobin
    stick-table type ip size 100 expire 30m
    stick on src
    server t1 127.0.0.1:{t1}
    server t2 127.0.0.1:{t2} id 7
listen http_in
    mode http
    bind 127.0.0.1:{hport}
    balance roundrobin
    stick match req.hdr(x-user) table users
    stick store-request req.hdr(x-user) table users if {{ req.hdr(x-user) -m found }}
    server h1 127.0.0.1:{h1}
    server h2 127.0.0.1:{h2}
backend users
    stick-table type string len 16 size 100 expire 30m store http_req_cnt
"#,
                sock = sock.display(),
                t1 = ports[2],
                t2 = ports[3],
                h1 = ports[4],
                h2 = ports[5],
            );
            let _p = ProxyProc::start(which, dir, &cfg, &[tport, hport]);
            let mut seen = Vec::new();
            // Three clients, then each again twice: round robin first, then their server.
            for round in 0..3 {
                for c in [5u8, 6, 7] {
                    let mut s = connect_from(Some(Ipv4Addr::new(127, 0, 0, c)), tport).unwrap();
                    s.set_read_timeout(Some(SOON)).unwrap();
                    let mut buf = [0u8; 64];
                    let n = s.read(&mut buf).unwrap_or(0);
                    seen.push(format!(
                        "tcp r{round} .{c} {}",
                        String::from_utf8_lossy(&buf[..n]).trim()
                    ));
                }
            }
            for round in 0..3 {
                for u in ["ann", "bob", "cyd"] {
                    let raw = format!("GET / HTTP/1.1\r\nHost: x\r\nX-User: {u}\r\n\r\n");
                    let r = http_once(hport, &raw).unwrap();
                    seen.push(format!("http r{round} {u} {} {}", r.status, r.body_str()));
                }
                let r = http_once(hport, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                seen.push(format!("http r{round} anon {} {}", r.status, r.body_str()));
            }
            std::thread::sleep(Duration::from_millis(200));
            let tables = (
                masked(&cli(sock, "show table tcp_in")),
                masked(&cli(sock, "show table users")),
            );
            (which, seen, tables)
        },
    );
    let rh = &results[0];
    // rhaproxy alone: each TCP client stays on the server of its first connection.
    for c in [".5", ".6", ".7"] {
        let servers: Vec<&String> =
            rh.1.iter()
                .filter(|l| l.starts_with("tcp") && l.contains(&format!(" {c} ")))
                .collect();
        let first = servers[0].rsplit(' ').next().unwrap();
        assert!(
            servers.iter().all(|l| l.ends_with(first)),
            "{c} moved: {servers:?}"
        );
    }
    assert!(rh.2.0.contains("server_id=7 server_key=t2"), "{}", rh.2.0);
    if let Some(ha) = results.get(1) {
        assert_eq!(rh.1, ha.1, "servers chosen differ from HAProxy's");
        assert_eq!(rh.2, ha.2, "tables differ");
    }
}

/// `http-response` stick-counter actions: a counter bumped on 404 answers and a tracker
/// started on the response, which counts the request and its status at once.
#[test]
fn response_rules_count_as_haproxy_does() {
    let results = each_impl(
        "response_rules_count_as_haproxy_does",
        "stick-res",
        |which, dir, sock| {
            let ports = free_ports(2);
            let (fport, bport) = (ports[0], ports[1]);
            let _srv = Backend::start("s1", bport, Behavior::Http);
            let cfg = format!(
                r#"
global
    stats socket {sock} level admin
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:{fport}
    stick-table type ip size 100 expire 30s store http_req_cnt,gpc0,http_err_cnt,http_fail_cnt
    http-request track-sc0 src
    http-response sc-inc-gpc0(0) if {{ status 404 }}
    http-response track-sc1 src table t4 if {{ status ge 400 }}
    default_backend be
backend t4
    stick-table type ip size 10 store http_req_cnt,http_err_cnt,http_fail_cnt,conn_cnt
backend be
    server s1 127.0.0.1:{bport}
"#,
                sock = sock.display()
            );
            let _p = ProxyProc::start(which, dir, &cfg, &[fport]);
            let mut c = HttpConn::connect_from(Some(Ipv4Addr::new(127, 0, 0, 8)), fport).unwrap();
            let mut seen = Vec::new();
            for p in [
                "/",
                "/status/404",
                "/status/404",
                "/status/503",
                "/status/501",
                "/",
            ] {
                seen.push(c.get(p).unwrap().status);
            }
            drop(c);
            std::thread::sleep(Duration::from_millis(200));
            let tables = (
                masked(&cli(sock, "show table fe")),
                masked(&cli(sock, "show table t4")),
            );
            (which, seen, tables)
        },
    );
    let rh = &results[0];
    assert!(rh.2.0.contains("gpc0=2"), "{}", rh.2.0);
    if let Some(ha) = results.get(1) {
        assert_eq!(rh.1, ha.1, "statuses differ from HAProxy's");
        assert_eq!(rh.2, ha.2, "tables differ");
    }
}

/// The table commands of the stats socket, their answers and their errors, at admin and user
/// levels: `set table`, `show table` with filters and keys, `clear table`.
#[test]
fn table_commands_answer_as_haproxy_does() {
    let cmds: &[(&str, &str)] = &[
        ("admin", "set table f key 1.2.3.4 data.gpc0 5"),
        (
            "admin",
            "set table f key 1.2.3.5 data.gpt0 2 data.http_req_cnt 3",
        ),
        ("admin", "set table f key 1.2.3.6 data.conn_rate 7"),
        ("admin", "set table f key 1.2.3.7 data.server_id 3"),
        ("admin", "set table g key abc data.gpc 4"),
        ("admin", "set table g key a\\ b data.gpt 1"),
        ("admin", "show table f"),
        ("admin", "show table g"),
        ("admin", "show table"),
        ("admin", "show table f data.gpc0 gt 1"),
        (
            "admin",
            "show table f data.gpc0 eq 0 data.http_req_cnt ge 3",
        ),
        ("admin", "show table f data.nope gt 1"),
        ("admin", "show table f data.gpc1 gt 1"),
        ("admin", "show table f data.gpc0 zz 1"),
        ("admin", "show table f data.gpc0 gt x"),
        ("admin", "show table f key 1.2.3.4"),
        ("admin", "show table f key 9.9.9.9"),
        ("admin", "show table f key"),
        ("admin", "show table f junk"),
        ("admin", "show table nope"),
        ("admin", "set table f key 1.2.3.8 data.nope 1"),
        ("admin", "set table f key 1.2.3.8 data.gpc1 1"),
        ("admin", "set table f key 1.2.3.8 data.gpc0 x"),
        ("admin", "set table f key"),
        ("admin", "set table f junk 1"),
        ("admin", "set table nope key 1"),
        ("user", "show table f"),
        ("user", "show table f key 1.2.3.4"),
        ("user", "set table f key 1.2.3.9 data.gpc0 1"),
        ("user", "clear table f key 1.2.3.4"),
        ("admin", "clear table f key 1.2.3.4"),
        ("admin", "clear table f data.gpt0 eq 2"),
        ("admin", "clear table"),
        ("admin", "clear table f junk"),
        ("admin", "show table f"),
        ("admin", "clear table f"),
        ("admin", "show table f"),
    ];
    let results = each_impl(
        "table_commands_answer_as_haproxy_does",
        "stick-cli",
        |which, dir, admin| {
            let port = free_ports(1)[0];
            let user = dir.0.join("user.sock");
            let cfg = format!(
                r#"
global
    stats socket {admin} level admin
    stats socket {user} level user
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f
    bind 127.0.0.1:{port}
    stick-table type ip size 10 expire 30s store gpc0,conn_rate(10s),server_id,gpt0,http_req_cnt
    http-request return status 200
backend g
    stick-table type string len 8 size 10 store gpc(2),gpt(2)
"#,
                admin = admin.display(),
                user = user.display()
            );
            let _p = ProxyProc::start(which, dir, &cfg, &[port]);
            let out: Vec<String> = cmds
                .iter()
                .map(|(lvl, c)| {
                    let s: &Path = if *lvl == "admin" { admin } else { &user };
                    format!("{lvl}> {c}\n{}", masked(&cli(s, c)))
                })
                .collect();
            (which, out)
        },
    );
    let rh = &results[0];
    assert!(
        rh.1[6].contains("key=1.2.3.4") && rh.1[6].contains("gpc0=5"),
        "{}",
        rh.1[6]
    );
    if let Some(ha) = results.get(1) {
        for (a, b) in rh.1.iter().zip(&ha.1) {
            assert_eq!(a, b, "answers differ");
        }
    }
}

/// A table declared in a `peers` section whose only peer is this process (`localpeer`):
/// tracked as `SECTION/TABLE`, listed by `show table` among the proxies' tables.
#[test]
fn local_peers_section_tables_work_as_in_haproxy() {
    let results = each_impl(
        "local_peers_section_tables_work_as_in_haproxy",
        "stick-peers",
        |which, dir, sock| {
            let ports = free_ports(2);
            let (fport, peer_port) = (ports[0], ports[1]);
            let cfg = format!(
                r#"
global
    stats socket {sock} level admin
    localpeer me
peers p
    peer me 127.0.0.1:{peer_port}
    table t type ip size 10 expire 1m store http_req_cnt,conn_cnt
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f
    bind 127.0.0.1:{fport}
    stick-table type ip size 10 peers p store gpc0
    http-request track-sc0 src table p/t
    http-request track-sc1 src
    http-request sc-inc-gpc0(1)
    http-request return status 200 content-type text/plain lf-string "n=%[sc0_http_req_cnt] g=%[sc1_get_gpc0] c=%[src,table_conn_cnt(p/t)]"
"#,
                sock = sock.display()
            );
            let _p = ProxyProc::start(which, dir, &cfg, &[fport]);
            let mut seen = Vec::new();
            for _ in 0..3 {
                let r = http_once(fport, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                seen.push(format!("{} {}", r.status, r.body_str()));
            }
            std::thread::sleep(Duration::from_millis(200));
            let tables = (
                cli(sock, "show table"),
                masked(&cli(sock, "show table p/t")),
                masked(&cli(sock, "show table f")),
            );
            (which, seen, tables)
        },
    );
    let rh = &results[0];
    assert_eq!(
        rh.1.last().map(String::as_str),
        Some("200 n=3 g=3 c=3"),
        "{:?}",
        rh.1
    );
    if let Some(ha) = results.get(1) {
        assert_eq!(rh.1, ha.1, "answers differ from HAProxy's");
        assert_eq!(rh.2, ha.2, "tables differ");
    }
}

/// Requests that end before the rules (malformed, cut by the client, an empty connection)
/// count as requests and errors on the connection's trackers, as in HAProxy (the reason for
/// its advice to track at the session level).
#[test]
fn failed_requests_count_on_session_trackers() {
    let results = each_impl(
        "failed_requests_count_on_session_trackers",
        "stick-bad",
        |which, dir, sock| {
            let fport = free_ports(1)[0];
            let cfg = format!(
                r#"
global
    stats socket {sock} level admin
defaults
    mode http
    timeout client 2s
    timeout server 2s
    timeout connect 2s
    timeout http-request 500
frontend f
    bind 127.0.0.1:{fport}
    stick-table type ip size 10 store http_req_cnt,http_err_cnt,conn_cnt
    tcp-request session track-sc0 src
    http-request return status 200
"#,
                sock = sock.display()
            );
            let _p = ProxyProc::start(which, dir, &cfg, &[fport]);
            let send = |data: &[u8], shut: bool| {
                let mut s = connect_from(None, fport).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                s.write_all(data).unwrap();
                if shut {
                    s.shutdown(std::net::Shutdown::Write).unwrap();
                }
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
                String::from_utf8_lossy(&out)
                    .lines()
                    .filter(|l| l.starts_with("HTTP/"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let seen = vec![
                send(
                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /a b c HTTP/1.1\r\n\r\n",
                    false,
                ),
                send(b"GET / HT", true),
                send(b"", true),
            ];
            std::thread::sleep(Duration::from_millis(300));
            let table = masked(&cli(sock, "show table f"));
            (which, seen, table)
        },
    );
    let rh = &results[0];
    assert!(rh.2.contains("http_req_cnt=4 http_err_cnt=3"), "{}", rh.2);
    if let Some(ha) = results.get(1) {
        assert_eq!(rh.1, ha.1, "answers differ from HAProxy's");
        assert_eq!(rh.2, ha.2, "tables differ");
    }
}

/// The array data types (`gpc(N)`, `gpc_rate(N,P)`, `gpt(N)`): `sc-inc-gpc`, `sc-set-gpt`,
/// `sc-set-gpt0` falling back to `gpt[0]`, and the array fetches and converters.
#[test]
fn array_counters_work_as_in_haproxy() {
    let results = each_impl(
        "array_counters_work_as_in_haproxy",
        "stick-arr",
        |which, dir, sock| {
            let fport = free_ports(1)[0];
            let cfg = format!(
                r#"
global
    stats socket {sock} level admin
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f
    bind 127.0.0.1:{fport}
    stick-table type ip size 10 expire 1m store gpc(3),gpc_rate(3,10s),gpt(2)
    http-request track-sc0 src
    http-request sc-inc-gpc(1,0)
    http-request sc-inc-gpc0(0) if {{ path /zero }}
    http-request sc-set-gpt(1,0) 42
    http-request sc-set-gpt0(0) -1 if {{ path /zero }}
    http-request return status 200 content-type text/plain lf-string "g1=%[sc_get_gpc(1,0)] r1=%[sc_gpc_rate(1,0)] t1=%[sc_get_gpt(1,0)] t0=%[sc0_get_gpt0] s1=%[src_get_gpc(1,f)] c1=%[src,table_gpc(1,f)] cr=%[src,table_gpc_rate(1,f)] i2=%[sc_inc_gpc(2,0)] x2=%[sc_clr_gpc(2,0)] g0=%[sc_get_gpc0(0)] o=%[sc_get_gpc(5,0)]"
"#,
                sock = sock.display()
            );
            let _p = ProxyProc::start(which, dir, &cfg, &[fport]);
            let mut seen = Vec::new();
            for p in ["/", "/zero", "/"] {
                let r = http_once(fport, &format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n")).unwrap();
                seen.push(format!("{} {}", r.status, r.body_str()));
            }
            std::thread::sleep(Duration::from_millis(200));
            let table = masked(&cli(sock, "show table f"));
            (which, seen, table)
        },
    );
    let rh = &results[0];
    assert!(rh.1[2].contains("g1=3"), "{:?}", rh.1);
    if let Some(ha) = results.get(1) {
        assert_eq!(rh.1, ha.1, "answers differ from HAProxy's");
        assert_eq!(rh.2, ha.2, "tables differ");
    }
}

/// Application-cookie persistence, the pattern that replaced `appsession`: the server's
/// session cookie is learnt from the response (`stick store-response res.cook(NAME)`) and
/// followed in later requests (`stick match req.cook(NAME)`).
#[test]
fn store_response_learns_the_application_cookie() {
    let ports = free_ports(2);
    let _s1 = Backend::start("s1", ports[0], Behavior::Http);
    let _s2 = Backend::start("s2", ports[1], Behavior::Http);
    let results = each_impl(
        "store_response_learns_the_application_cookie",
        "stick-app",
        |which, dir, sock| {
            let fport = free_ports(1)[0];
            let cfg = format!(
                r#"
global
    stats socket {sock} level admin
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
listen app
    bind 127.0.0.1:{fport}
    balance roundrobin
    stick-table type string len 32 size 1k expire 30m
    stick store-response res.cook(JSESSIONID)
    stick match req.cook(JSESSIONID)
    server s1 127.0.0.1:{p1}
    server s2 127.0.0.1:{p2}
"#,
                sock = sock.display(),
                p1 = ports[0],
                p2 = ports[1],
            );
            let _p = ProxyProc::start(which, dir, &cfg, &[fport]);
            let get = |extra: &str| {
                let r = http_once(
                    fport,
                    &format!("GET / HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"),
                )
                .unwrap();
                format!("{} {}", r.status, r.body_str())
            };
            let mut seen = vec![
                get("X-Reply-Header: Set-Cookie: JSESSIONID=aaa; path=/\r\n"),
                get("X-Reply-Header: Set-Cookie: JSESSIONID=bbb; path=/\r\n"),
            ];
            for c in ["aaa", "bbb", "aaa", "bbb", "ccc"] {
                seen.push(get(&format!("Cookie: JSESSIONID={c}\r\n")));
            }
            seen.push(get(""));
            std::thread::sleep(Duration::from_millis(200));
            (which, seen, masked(&cli(sock, "show table app")))
        },
    );
    let rh = &results[0];
    assert_eq!(
        rh.1[2..6],
        [&rh.1[0], &rh.1[1], &rh.1[0], &rh.1[1]].map(|s| s.clone())
    );
    if let Some(ha) = results.get(1) {
        assert_eq!(rh.1, ha.1, "servers differ from HAProxy's");
        assert_eq!(rh.2, ha.2, "tables differ");
    }
}

/// `table_expire` and `table_idle`: the time left and the time since the last update of the
/// sample's entry, the default without one, 0 in a table without `expire`. Times are compared
/// in buckets (near the full `expire`, near 0), the rest exactly.
#[test]
fn table_expire_and_idle_work_as_in_haproxy() {
    let results = each_impl(
        "table_expire_and_idle_work_as_in_haproxy",
        "stick-exp",
        |which, dir, _| {
            let fport = free_ports(1)[0];
            let cfg = format!(
                r#"
defaults
    mode http
    timeout client 2s
    timeout server 2s
    timeout connect 2s
frontend f
    bind 127.0.0.1:{fport}
    stick-table type ip size 10 expire 30s store http_req_cnt
    http-request track-sc0 src if {{ path /track }}
    http-request track-sc1 src table g if {{ path /track }}
    http-request return status 200 content-type text/plain lf-string "e=%[src,table_expire(f)] i=%[src,table_idle(f)] ed=%[src,table_expire(f,-7)] id=%[src,table_idle(f,-9)] ne=%[src,table_expire(g)] ni=%[src,table_idle(g,5)]"
backend g
    stick-table type ip size 10 store http_req_cnt
"#
            );
            let _p = ProxyProc::start(which, dir, &cfg, &[fport]);
            let bucket = |w: &str| -> String {
                let (k, v) = w.split_once('=').unwrap_or((w, ""));
                let b = match v.parse::<i64>() {
                    Ok(n) if (29_000..=30_000).contains(&n) => "FULL".to_string(),
                    Ok(n) if (1..1_000).contains(&n) && !k.starts_with('n') => "SOON".to_string(),
                    _ => v.to_string(),
                };
                format!("{k}={b}")
            };
            let mut seen = Vec::new();
            for p in ["/", "/track", "/"] {
                let r = http_once(fport, &format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n")).unwrap();
                let body = r.body_str();
                seen.push(body.split(' ').map(bucket).collect::<Vec<_>>().join(" "));
                std::thread::sleep(Duration::from_millis(100));
            }
            (which, seen)
        },
    );
    let rh = &results[0];
    assert_eq!(rh.1[0], "e= i= ed=-7 id=-9 ne= ni=5", "{:?}", rh.1);
    if let Some(ha) = results.get(1) {
        assert_eq!(rh.1, ha.1, "answers differ from HAProxy's");
    }
}
