//! Log lines through the running proxy for `option httplog clf` and a custom `log-format`
//! using most HAProxy 2.6 variables, compared field by field with real HAProxy 2.6 on the same
//! config and requests (both logging over UDP). Masked: clocks, timers (kept: -1 or not),
//! ports (each proxy runs on its own free ports) and the concurrency counters, which
//! legitimately differ. Byte counts (`%B %U`, HAProxy's internal HTX sizes) are compared.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::time::{Duration, Instant};

/// Every `|`-separated field is kept unless its name is in `masks` (`t` = timer: -1 or n).
const FORMAT: &[(&str, &str)] = &[
    ("%ci", ""),
    ("%cp", "x"),
    ("%fi", ""),
    ("%fp", "x"),
    ("%si", ""),
    ("%sp", "x"),
    ("%bi", ""),
    ("%bp", "x"),
    ("%f", ""),
    ("%ft", ""),
    ("%b", ""),
    ("%s", ""),
    ("%ST", ""),
    ("%HM", ""),
    ("%HU", ""),
    ("%HP", ""),
    ("%HPO", ""),
    ("%HQ", ""),
    ("%HV", ""),
    ("%r", ""),
    ("%{+Q}r", ""),
    ("%ts", ""),
    ("%tsc", ""),
    ("%rc", ""),
    ("%sq", ""),
    ("%bq", ""),
    ("%hr", ""),
    ("%hrl", ""),
    ("%hs", ""),
    ("%CC", ""),
    ("%CS", ""),
    ("%{+X}ci", ""),
    ("%{+X}fp", "x"),
    ("%{+Q}b", ""),
    ("%Th", "t"),
    ("%Ti", "t"),
    ("%TR", "t"),
    ("%Tq", "t"),
    ("%Tw", "t"),
    ("%Tc", "t"),
    ("%Tr", "t"),
    ("%Ta", "t"),
    ("%Tt", "t"),
    ("%t", "x"),
    ("%tr", "x"),
    ("%T", "x"),
    ("%ms", "x"),
    ("%B", ""),
    ("%U", ""),
    ("%ac", "x"),
    ("%fc", "x"),
    ("%bc", "x"),
    ("%sc", "x"),
    ("%[src]", ""),
    ("%[dst_port]", "x"),
    ("%[capture.req.hdr(0)]", ""),
];

fn log_format() -> String {
    FORMAT.iter().map(|(v, _)| *v).collect::<Vec<_>>().join("|")
}

fn mask_custom(line: &str) -> String {
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(fields.len(), FORMAT.len(), "field count: {line}");
    fields
        .iter()
        .zip(FORMAT)
        .map(|(f, (name, m))| match *m {
            "x" => format!("{name}=*"),
            "t" => format!("{name}={}", if f.starts_with('-') { "-1" } else { "n" }),
            _ => format!("{name}={f}"),
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// `option httplog clf` with well-formed requests: fixed positions, date, port, gauges masked.
fn mask_clf(line: &str) -> String {
    let mut t: Vec<String> = line.split(' ').map(String::from).collect();
    // 0 ci, 1 -, 2 -, 3-4 [date], 5-7 "METHOD URI VERSION", 8 ST, 9 B, 10-11 "" "", 12 cp,
    // 13 ms, 14 ft, 15 b, 16 s, 17-21 TR Tw Tc Tr Ta, 22 tsc, 23-26 ac fc bc sc, 27 rc, 28 sq,
    // 29 bq, 30 CC, 31 CS, then hrl hsl.
    assert!(t.len() >= 32, "clf line: {line}");
    for i in [3, 4, 12, 13, 23, 24, 25, 26] {
        t[i] = "*".into();
    }
    for v in &mut t[17..22] {
        *v = if v.starts_with('-') {
            "-1".into()
        } else {
            "n".into()
        };
    }
    t.join(" ")
}

fn recv_lines(sock: &std::net::UdpSocket, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let end = Instant::now() + SOON;
    while out.len() < n && Instant::now() < end {
        if let Ok(k) = sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..k]).trim_end().to_string());
        }
    }
    out
}

#[test]
fn clf_and_custom_log_format_lines_match_haproxy() {
    let mut outs: Vec<(Impl, Vec<String>)> = Vec::new();
    for imp in Impl::all("clf_and_custom_log_format_lines_match_haproxy") {
        let dir = TempDir::new("logfmt");
        let p = free_ports(4);
        let clf = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let custom = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&clf, &custom] {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
        }
        let _s1 = Backend::start("s1", p[2], Behavior::Http);
        let cfg = format!(
            "defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 5s
frontend clf
    bind 127.0.0.1:{}
    log 127.0.0.1:{} format raw local0
    option httplog clf
    default_backend servers
frontend custom
    bind 127.0.0.1:{}
    log 127.0.0.1:{} format raw local0
    capture request header Host len 20
    capture response header Content-Length len 10
    log-format \"{}\"
    default_backend servers
backend servers
    server s1 127.0.0.1:{}
",
            p[0],
            clf.local_addr().unwrap().port(),
            p[1],
            custom.local_addr().unwrap().port(),
            log_format(),
            p[2]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1]]);
        let mut lines = Vec::new();
        for port in [p[0], p[1]] {
            let mut c = HttpConn::connect(port).unwrap();
            c.get("/a").unwrap();
            c.get("/b/c?x=1&y=2").unwrap();
            drop(c);
        }
        // A malformed request on the custom frontend: <BADREQ>, PR-- and no server.
        let _ = http_once(p[1], "GET /a b HTTP/1.1\r\nHost: z\r\n\r\n");
        let got_clf = recv_lines(&clf, 2);
        let got_custom = recv_lines(&custom, 3);
        assert_eq!(got_clf.len(), 2, "{imp:?}: clf lines {got_clf:?}");
        assert_eq!(got_custom.len(), 3, "{imp:?}: custom lines {got_custom:?}");
        for l in got_clf.iter().chain(&got_custom) {
            println!("{imp:?}: {l}");
        }
        let mut masked_clf: Vec<String> = got_clf.iter().map(|l| mask_clf(l)).collect();
        let mut masked_custom: Vec<String> = got_custom.iter().map(|l| mask_custom(l)).collect();
        // Arrival order of lines from different connections is not significant.
        masked_clf.sort();
        masked_custom.sort();
        lines.extend(masked_clf);
        lines.extend(masked_custom);
        outs.push((imp, lines));
    }
    if outs.len() == 2 {
        let (a, b) = (&outs[0].1, &outs[1].1);
        for (x, y) in a.iter().zip(b.iter()) {
            assert_eq!(x, y, "rhaproxy (left) and HAProxy (right) log lines differ");
        }
    } else {
        println!("haproxy not installed: only rhaproxy's lines were checked for shape");
    }
}
