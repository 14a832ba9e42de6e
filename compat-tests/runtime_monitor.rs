//! `monitor-uri` and `monitor fail`, differential against HAProxy 2.6: the monitor URI is
//! answered by the proxy (HAProxy's 200 page, or its 503 page while a `monitor fail`
//! condition holds), before any `http-request` rule, on a kept-alive connection, and is not
//! logged; any other URI (even with a query string added) goes to the backend.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

fn raw(port: u16, req: &str) -> String {
    let mut c = HttpConn::connect(port).expect("connect");
    c.send(req).unwrap();
    // Every request set ends with a closing one; no half-close (HAProxy may drop a pipelined
    // request once it has seen the client's FIN).
    let _ = c.w.set_read_timeout(Some(Duration::from_secs(10)));
    let mut out = String::new();
    let _ = c.r.read_to_string(&mut out);
    out
}

fn run(imp: Impl, srv_port: u16) -> Vec<String> {
    let dir = TempDir::new("monitor");
    let p = free_ports(2);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let lport = udp.local_addr().unwrap().port();
    let cfg = format!(
        "defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    log 127.0.0.1:{lport} local0
    log-format \"%ft %b/%s %ST %{{+Q}}r\"
    monitor-uri /alive
frontend f
    bind 127.0.0.1:{}
    monitor-uri /health
    monitor fail if {{ nbsrv(b) lt 1 }}
    http-request deny if {{ path_beg /health }}
    default_backend b
frontend g
    bind 127.0.0.1:{}
    monitor fail unless TRUE
    default_backend b
backend b
    server s1 127.0.0.1:{srv_port} check inter 100 fall 1 rise 1
",
        p[0], p[1]
    );
    let mut out = Vec::new();
    let _proxy = ProxyProc::start(imp, &dir, &cfg, &p);
    // The server is down: the monitor fails.
    wait_until("server down", SOON, || {
        raw(
            p[0],
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .starts_with("HTTP/1.1 503")
    });
    out.push(raw(
        p[0],
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ));
    let l = TcpListener::bind(("127.0.0.1", srv_port)).unwrap();
    let _srv = Backend::from_listener("s1", l, Behavior::Http);
    wait_until("server up", SOON, || {
        raw(
            p[0],
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .starts_with("HTTP/1.1 200")
    });
    for req in [
        // Two on one connection (kept alive), then one closing.
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /health HTTP/1.0\r\n\r\n",
        "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        // Not the monitor URI: the deny rule answers.
        "GET /health?x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        // Inherited from defaults by frontend g, whose `monitor fail unless TRUE` never fails.
        "GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let port = if req.contains("/alive") || req.contains("/other") {
            p[1]
        } else {
            p[0]
        };
        out.push(raw(port, req));
    }
    // Only the two requests that were not monitor requests are logged.
    let mut logs = Vec::new();
    let end = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok(n) = udp.recv(&mut buf) {
            let s = String::from_utf8_lossy(&buf[..n]).to_string();
            if let Some(i) = s.find("]: ") {
                let line = s[i + 3..].trim_end().to_string();
                // Traffic lines only (the server's state changes are logged too).
                if line.starts_with("f ") || line.starts_with("g ") {
                    logs.push(line);
                }
            }
        }
    }
    out.push(format!("logs: {logs:?}"));
    out
}

#[test]
fn monitor_uri_matches_haproxy() {
    let srv_port = free_ports(1)[0];
    let mut results = Vec::new();
    for imp in Impl::all("monitor_uri_matches_haproxy") {
        let r = run(imp, srv_port);
        println!("{imp:?}:\n{}", r.join("\n----\n"));
        results.push(r);
    }
    let r = &results[0];
    assert!(
        r[0].starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{}",
        r[0]
    );
    let ok = "HTTP/1.1 200 OK\r\ncontent-length: 58\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n";
    assert!(r[1].starts_with(ok), "{}", r[1]);
    assert_eq!(r[1].matches("HTTP/1.1 200 OK").count(), 2, "{}", r[1]);
    assert!(r[4].starts_with("HTTP/1.1 403"), "{}", r[4]);
    assert!(r[5].starts_with("HTTP/1.1 200 OK"), "{}", r[5]);
    assert_eq!(
        r[7],
        "logs: [\"f f/<NOSRV> 403 \\\"GET /health?x HTTP/1.1\\\"\", \"g b/s1 200 \\\"GET /other HTTP/1.1\\\"\"]"
    );
    if results.len() == 2 {
        assert_eq!(results[0], results[1], "rhaproxy vs HAProxy");
    }
}
