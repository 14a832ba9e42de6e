//! `option clitcpka` / `srvtcpka` / `tcpka`: the proxy's client-side and server-side sockets have
//! kernel keep-alive on (seen with `ss -o` as a `keepalive` timer), and are off without them.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::io::{BufRead, BufReader};
use std::process::Command;

/// `ss` lines of established TCP sockets whose local or remote port is `port`.
fn ss_lines(port: u16) -> Vec<String> {
    let out = match Command::new("ss")
        .args(["-tnoH", "state", "established"])
        .output()
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(_) => return Vec::new(),
    };
    out.lines()
        .filter(|l| l.contains(&format!(":{port} ")))
        .map(String::from)
        .collect()
}

fn keepalive_seen(option: &str) -> (bool, bool) {
    let dir = TempDir::new("tcpka");
    let p = free_ports(2);
    let _b = Backend::start("e", p[1], Behavior::LineEcho);
    let cfg = format!(
        "defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
listen li
    bind 127.0.0.1:{}
    {option}
    server e 127.0.0.1:{}
",
        p[0], p[1]
    );
    let _px = ProxyProc::start(Impl::Rhaproxy, &dir, &cfg, &[p[0]]);
    let c = connect_from(None, p[0]).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    let mut l = String::new();
    BufReader::new(c.try_clone().unwrap())
        .read_line(&mut l)
        .unwrap();
    assert_eq!(l, "e\n");
    // The proxy's accepted socket has local port p[0]; its server socket has remote port p[1]
    // (the test's own sockets are the other ends: match on the proxy's side only).
    let client_side = ss_lines(p[0]).iter().any(|l| {
        l.split_whitespace()
            .nth(2)
            .is_some_and(|a| a.ends_with(&format!(":{}", p[0])))
            && l.contains("keepalive")
    });
    let server_side = ss_lines(p[1]).iter().any(|l| {
        l.split_whitespace()
            .nth(3)
            .is_some_and(|a| a.ends_with(&format!(":{}", p[1])))
            && l.contains("keepalive")
    });
    drop(c);
    (client_side, server_side)
}

#[test]
fn tcp_keepalive_options() {
    if Command::new("ss").arg("-V").output().is_err() {
        println!("SKIPPED: `ss` (iproute2) is not installed; .ci/run installs it");
        return;
    }
    assert_eq!(keepalive_seen("option tcpka"), (true, true), "option tcpka");
    assert_eq!(
        keepalive_seen("option clitcpka"),
        (true, false),
        "option clitcpka"
    );
    assert_eq!(
        keepalive_seen("option srvtcpka"),
        (false, true),
        "option srvtcpka"
    );
    assert_eq!(keepalive_seen("# none"), (false, false), "no option");
}
