//! Cookie persistence (`cookie NAME insert|rewrite|prefix ...`, server `cookie VALUE`) end to
//! end, differential against HAProxy 2.6: the same config and the same requests through both.
//! Observed per request: status, the server that answered, the `Set-Cookie` and
//! `Cache-Control` headers the client got, the `Cookie` headers the server received, and the
//! backend/server, termination state (`%tsc`, whose last two characters are the cookie's) and
//! captured cookies (`capture cookie`: `%CC`, `%CS`) of the log line.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// One request: method, extra request header lines (`Cookie`, `X-Reply-Header`).
struct Req(&'static str, &'static [&'static str]);

struct Scenario {
    name: &'static str,
    cookie: &'static str,
    /// The third server is `disabled` when true.
    s3_disabled: bool,
    reqs: &'static [Req],
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "ins",
        cookie: "cookie SRV insert indirect nocache\n    capture cookie SRV len 8",
        s3_disabled: true,
        reqs: &[
            Req("GET", &[]),
            Req("GET", &[]),
            Req("GET", &["Cookie: SRV=c2"]),
            Req("GET", &["Cookie: a=b; SRV=c1; d=e"]),
            Req("GET", &["Cookie: SRV=c3"]),
            Req("GET", &["Cookie: SRV=zz"]),
            Req("GET", &["Cookie: SRV="]),
            Req("GET", &["Cookie: x=1;SRV=c2 ; y=2", "Cookie: SRV=c1"]),
            Req("GET", &["Cookie: SRV=c1, x=1"]),
            Req("GET", &["X-Reply-Header: Set-Cookie: SRV=abc; path=/"]),
            Req(
                "GET",
                &["Cookie: SRV=c2", "X-Reply-Header: Set-Cookie: SRV=abc"],
            ),
            Req("GET", &["X-Reply-Header: ETag: \"x\""]),
            Req("POST", &["X-Reply-Header: ETag: \"x\""]),
            Req(
                "HEAD",
                &["X-Reply-Header: Expires: Thu, 01 Dec 2039 16:00:00 GMT"],
            ),
            Req(
                "GET",
                &[
                    "X-Reply-Header: Cache-Control: max-age=60",
                    "X-Reply-Header: Pragma: no-cache",
                ],
            ),
            Req("GET", &["X-Reply-Header: Cache-Control: public"]),
            Req("GET", &["X-Reply-Header: Cache-Control: s-maxage=10"]),
            Req(
                "GET",
                &["X-Reply-Header: Last-Modified: Thu, 01 Dec 2020 16:00:00 GMT"],
            ),
        ],
    },
    Scenario {
        name: "ins2",
        cookie: "cookie SRV insert preserve postonly httponly secure domain .a.com domain .b.com attr SameSite=Lax",
        s3_disabled: false,
        reqs: &[
            Req("GET", &[]),
            Req("POST", &[]),
            Req("POST", &["X-Reply-Header: Set-Cookie: SRV=abc"]),
            Req("POST", &["Cookie: SRV=c3"]),
            Req(
                "GET",
                &[
                    "Cookie: SRV=c3",
                    "X-Reply-Header: Set-Cookie: SRV=x; path=/p",
                ],
            ),
        ],
    },
    Scenario {
        name: "rw",
        cookie: "cookie SRV rewrite\n    capture cookie S len 100",
        s3_disabled: false,
        reqs: &[
            Req("GET", &["X-Reply-Header: Set-Cookie: SRV=abc; path=/x"]),
            Req(
                "GET",
                &[
                    "Cookie: SRV=c1",
                    "X-Reply-Header: Set-Cookie: SRV=abc; path=/x",
                ],
            ),
            Req(
                "GET",
                &[
                    "Cookie: SRV=zz",
                    "X-Reply-Header: Set-Cookie: SRV = abc ;path=/",
                ],
            ),
            Req("GET", &["Cookie: SRV=c2"]),
            Req("GET", &["X-Reply-Header: Set-Cookie: OTHER=1"]),
        ],
    },
    Scenario {
        name: "pfx",
        cookie: "cookie SRV prefix indirect",
        s3_disabled: false,
        reqs: &[
            Req("GET", &["X-Reply-Header: Set-Cookie: SRV=abc; path=/x"]),
            Req("GET", &["Cookie: SRV=c1~abc; x=1"]),
            Req(
                "GET",
                &["Cookie: SRV=c3~abc", "X-Reply-Header: Set-Cookie: SRV=abc"],
            ),
            Req("GET", &["Cookie: SRV=abc"]),
            Req("GET", &["Cookie: SRV=c2"]),
        ],
    },
    Scenario {
        name: "passive",
        cookie: "cookie SRV",
        s3_disabled: false,
        reqs: &[
            Req("GET", &["Cookie: SRV=c3"]),
            Req("GET", &["Cookie: SRV=c3"]),
            Req(
                "GET",
                &["Cookie: SRV=c1", "X-Reply-Header: Set-Cookie: SRV=zz"],
            ),
            Req("GET", &[]),
        ],
    },
];

/// The observation of one request.
fn observe(port: u16, backends: &[&Backend], r: &Req) -> String {
    let before: Vec<usize> = backends
        .iter()
        .map(|b| b.heads.lock().unwrap().len())
        .collect();
    let mut raw = format!("{} / HTTP/1.1\r\nHost: t\r\n", r.0);
    if r.0 == "POST" {
        raw.push_str("Content-Length: 0\r\n");
    }
    for h in r.1 {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("Connection: close\r\n\r\n");
    let mut c = HttpConn::connect(port).expect("connect");
    c.send(&raw).unwrap();
    let resp = c.read_response(r.0 == "HEAD").expect("response");
    let got: Vec<String> = resp
        .head
        .lines()
        .skip(1)
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("set-cookie:") || l.starts_with("cache-control:")
        })
        .map(|l| l.to_ascii_lowercase())
        .collect();
    // The `Cookie` lines the server that answered received.
    let mut seen = Vec::new();
    for (b, n) in backends.iter().zip(&before) {
        let heads = b.heads.lock().unwrap();
        for h in &heads[*n..] {
            seen.extend(
                h.lines()
                    .filter(|l| l.to_ascii_lowercase().starts_with("cookie:"))
                    .map(String::from),
            );
        }
    }
    format!(
        "{} {} {:?} srv-saw {:?}",
        resp.status,
        resp.server(),
        got,
        seen
    )
}

fn run(imp: Impl, ports: &[u16], srv_ports: &[u16], backends: &[&Backend]) -> Vec<String> {
    let dir = TempDir::new("cookie");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let lport = udp.local_addr().unwrap().port();
    let mut cfg = format!(
        "defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    log 127.0.0.1:{lport} local0
    log-format \"%b/%s %ST %tsc %CC %CS\"
"
    );
    for (i, s) in SCENARIOS.iter().enumerate() {
        cfg.push_str(&format!(
            "listen {}
    bind 127.0.0.1:{}
    balance roundrobin
    {}
    server s1 127.0.0.1:{} cookie c1
    server s2 127.0.0.1:{} cookie c2
    server s3 127.0.0.1:{} cookie c3{}
",
            s.name,
            ports[i],
            s.cookie,
            srv_ports[0],
            srv_ports[1],
            srv_ports[2],
            if s.s3_disabled { " disabled" } else { "" }
        ));
    }
    // Every server disabled: the cookie is still read (`SCDN`).
    cfg.push_str(&format!(
        "listen none
    bind 127.0.0.1:{}
    cookie SRV insert indirect
    server s1 127.0.0.1:{} cookie c1 disabled
",
        ports[SCENARIOS.len()],
        srv_ports[0]
    ));
    let _p = ProxyProc::start(imp, &dir, &cfg, ports);
    let mut out = Vec::new();
    for (i, s) in SCENARIOS.iter().enumerate() {
        for r in s.reqs {
            out.push(format!("{} {}", s.name, observe(ports[i], backends, r)));
        }
    }
    for hs in [&[][..], &["Cookie: SRV=c1"][..], &["Cookie: SRV=zz"][..]] {
        out.push(format!(
            "none {}",
            observe(ports[SCENARIOS.len()], backends, &Req("GET", hs))
        ));
    }
    // The log lines, in order (one per request; UDP on loopback keeps the order).
    let want = out.len();
    let mut logs = Vec::new();
    let end = Instant::now() + SOON;
    let mut buf = [0u8; 2048];
    while logs.len() < want && Instant::now() < end {
        if let Ok(n) = udp.recv(&mut buf) {
            let s = String::from_utf8_lossy(&buf[..n]).to_string();
            if let Some(i) = s.find("]: ") {
                logs.push(s[i + 3..].trim_end().to_string());
            }
        }
    }
    assert_eq!(logs.len(), want, "{imp:?}: log lines {logs:#?}");
    out.into_iter()
        .zip(logs)
        .map(|(o, l)| format!("{o} | log {l}"))
        .collect()
}

#[test]
fn cookie_persistence_matches_haproxy() {
    let srv_ports = free_ports(3);
    let b1 = Backend::start("s1", srv_ports[0], Behavior::Http);
    let b2 = Backend::start("s2", srv_ports[1], Behavior::Http);
    let b3 = Backend::start("s3", srv_ports[2], Behavior::Http);
    let backends = [&b1, &b2, &b3];
    let mut results = Vec::new();
    for imp in Impl::all("cookie_persistence_matches_haproxy") {
        let ports = free_ports(SCENARIOS.len() + 1);
        let r = run(imp, &ports, &srv_ports, &backends);
        println!("{imp:?}:\n{}", r.join("\n"));
        results.push(r);
    }
    let rh = &results[0];
    // What persistence must do whatever HAProxy says (also when it is not installed).
    let line = |prefix: &str, n: usize| -> &String {
        rh.iter()
            .filter(|l| l.starts_with(prefix))
            .nth(n)
            .unwrap_or_else(|| panic!("no line {n} for {prefix}"))
    };
    assert!(
        line("ins ", 0).contains("set-cookie: srv=c1; path=/"),
        "{}",
        line("ins ", 0)
    );
    assert!(
        line("ins ", 2).starts_with("ins 200 s2 [] srv-saw []"),
        "{}",
        line("ins ", 2)
    );
    assert!(
        line("ins ", 2).ends_with("ins/s2 200 --VN SRV=c2 -"),
        "{}",
        line("ins ", 2)
    );
    assert!(
        line("ins ", 3).contains("srv-saw [\"cookie: a=b; d=e\"]"),
        "{}",
        line("ins ", 3)
    );
    assert!(
        line("ins ", 4).ends_with("--DI SRV=c3 -"),
        "{}",
        line("ins ", 4)
    );
    assert!(
        line("ins ", 11).contains("\"cache-control: private\""),
        "{}",
        line("ins ", 11)
    );
    assert!(
        line("rw ", 1).contains("set-cookie: srv=c1; path=/x"),
        "{}",
        line("rw ", 1)
    );
    assert!(
        line("pfx ", 1).contains("cookie: SRV=abc; x=1"),
        "{}",
        line("pfx ", 1)
    );
    for n in 0..2 {
        assert!(
            line("passive ", n).starts_with("passive 200 s3"),
            "{}",
            line("passive ", n)
        );
        assert!(
            line("passive ", n).ends_with("passive/s3 200 ---- - -"),
            "{}",
            line("passive ", n)
        );
    }
    assert!(
        line("none ", 1).ends_with("SCDN - -"),
        "{}",
        line("none ", 1)
    );
    if results.len() == 2 {
        let diffs: Vec<String> = results[0]
            .iter()
            .zip(&results[1])
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("rhaproxy: {a}\nhaproxy:  {b}"))
            .collect();
        assert!(diffs.is_empty(), "differences:\n{}", diffs.join("\n"));
        assert_eq!(results[0].len(), results[1].len());
    }
}

/// `option persist` (a cookie naming a stopped server still goes there first; with
/// `option redispatch` a dead one hands over) and `option prefer-last-server` (with
/// `http-reuse never`, keep-alive requests stay on the server of the session's idle
/// connection; otherwise nothing changes), against HAProxy 2.6.
#[test]
fn persist_and_prefer_last_server_match_haproxy() {
    let srv_ports = free_ports(3);
    let b1 = Backend::start("s1", srv_ports[0], Behavior::Http);
    let b2 = Backend::start("s2", srv_ports[1], Behavior::Http);
    // srv_ports[2]: nothing listens (a dead server).
    let mut results = Vec::new();
    for imp in Impl::all("persist_and_prefer_last_server_match_haproxy") {
        let dir = TempDir::new("persist");
        let p = free_ports(3);
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let lport = udp.local_addr().unwrap().port();
        let cfg = format!(
            "defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    log 127.0.0.1:{lport} local0
    log-format \"%b/%s %ST %tsc %rc\"
listen pl
    bind 127.0.0.1:{}
    balance roundrobin
    option prefer-last-server
    http-reuse never
    server s1 127.0.0.1:{s1} cookie c1
    server s2 127.0.0.1:{s2} cookie c2
listen nopl
    bind 127.0.0.1:{}
    balance roundrobin
    # without private connections the option changes nothing (measured)
    option prefer-last-server
    server s1 127.0.0.1:{s1}
    server s2 127.0.0.1:{s2}
listen ps
    bind 127.0.0.1:{}
    retries 1
    option redispatch
    option persist
    cookie SRV insert indirect
    server s1 127.0.0.1:{s1} cookie c1
    server s2 127.0.0.1:{s2} cookie c2 disabled
    server s3 127.0.0.1:{s3} cookie c3 disabled
",
            p[0],
            p[1],
            p[2],
            s1 = srv_ports[0],
            s2 = srv_ports[1],
            s3 = srv_ports[2]
        );
        let _proxy = ProxyProc::start(imp, &dir, &cfg, &p);
        let mut out = Vec::new();
        for port in [p[0], p[1]] {
            let mut c = HttpConn::connect(port).unwrap();
            let mut seen = Vec::new();
            for _ in 0..4 {
                seen.push(c.get("/").unwrap().server());
            }
            out.push(format!(
                "{port_name} {seen:?}",
                port_name = if port == p[0] { "pl" } else { "nopl" }
            ));
        }
        let backends = [&b1, &b2];
        for hs in [
            &["Cookie: SRV=c2"][..],
            &["Cookie: SRV=c3"][..],
            &["Cookie: SRV=c1"][..],
            &[][..],
        ] {
            out.push(format!("ps {}", observe(p[2], &backends, &Req("GET", hs))));
        }
        let mut logs = Vec::new();
        let end = Instant::now() + SOON;
        let mut buf = [0u8; 2048];
        while logs.len() < 12 && Instant::now() < end {
            if let Ok(n) = udp.recv(&mut buf) {
                let s = String::from_utf8_lossy(&buf[..n]).to_string();
                if let Some(i) = s.find("]: ") {
                    logs.push(s[i + 3..].trim_end().to_string());
                }
            }
        }
        logs.sort();
        out.push(format!("logs {logs:?}"));
        println!("{imp:?}:\n{}", out.join("\n"));
        results.push(out);
    }
    let r = &results[0];
    assert_eq!(r[0], "pl [\"s1\", \"s1\", \"s1\", \"s1\"]");
    assert_eq!(r[1], "nopl [\"s1\", \"s2\", \"s1\", \"s2\"]");
    assert!(r[2].starts_with("ps 200 s2 []"), "{}", r[2]);
    assert!(r[3].starts_with("ps 200 s1"), "{}", r[3]);
    if results.len() == 2 {
        assert_eq!(results[0], results[1], "rhaproxy vs HAProxy");
    }
}
