//! `option nolinger`, seen from the peers, against HAProxy 2.6 when installed.
//!
//! In a frontend, the client connections close with an RST (`SO_LINGER` 0): a client the
//! proxy closes first gets the FIN, then the RST; a client that closed its side first gets the
//! RST alone (no FIN goes out once the peer's FIN was read). In a backend, in `mode tcp`, the
//! client's FIN reaches a server that has not closed as an RST; a server that closed first
//! gets a FIN. `mode http` with the option in the backend changes none of these cases.
//! Without the option, every case ends with FINs.
//!
//! A peer tells a FIN from an RST by its read (end of stream against `ECONNRESET`) and by its
//! socket's state (`TCP_INFO`): after the proxy's FIN a client that has not closed is in
//! CLOSE_WAIT, and in CLOSE once an RST followed.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

/// The TCP state of `s`, by its Linux name.
fn state(s: &TcpStream) -> &'static str {
    match tcp_info(s).tcpi_state {
        1 => "ESTABLISHED",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        11 => "CLOSING",
        _ => "other",
    }
}

/// Reads `s` to its end: "EOF" (a FIN), "RST", or "open" when nothing came for 3 s.
fn drain(s: &mut TcpStream) -> &'static str {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return "EOF",
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return "RST",
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                return "open";
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Reads one HTTP response head and its 2-byte body.
fn read_response(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(SOON)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\r\n\r\nok") {
        let n = s.read(&mut buf).expect("a response");
        assert!(
            n > 0,
            "closed before the response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn pause(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[derive(Clone, Copy, Debug)]
enum Case {
    /// `mode http`: a `Connection: close` request, answered; the proxy closes.
    HttpClose,
    /// `mode http`: a keep-alive request, answered; the proxy closes at
    /// `timeout http-keep-alive`.
    HttpKeepAliveTimeout,
    /// `mode http`: a keep-alive request, answered; the client shuts its side.
    HttpClientShuts,
    /// `mode tcp`: the client sends a line and shuts its side; the server closes 300 ms later.
    TcpClientFirst,
    /// `mode tcp`: the server sends a line and shuts its side; the client closes 300 ms later.
    TcpServerFirst,
}

impl Case {
    fn mode(self) -> &'static str {
        match self {
            Case::TcpClientFirst | Case::TcpServerFirst => "tcp",
            _ => "http",
        }
    }
}

/// The server's side of one connection: what it saw of the proxy's close ("-" in the HTTP
/// cases, where the proxy may keep the connection).
fn serve(l: TcpListener, case: Case) -> JoinHandle<&'static str> {
    std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        match case {
            Case::TcpClientFirst => {
                let seen = drain(&mut c);
                pause(300);
                drop(c);
                seen
            }
            Case::TcpServerFirst => {
                c.write_all(b"hello\n").unwrap();
                pause(50);
                c.shutdown(Shutdown::Write).unwrap();
                drain(&mut c)
            }
            _ => {
                c.set_read_timeout(Some(SOON)).unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = c.read(&mut buf).unwrap();
                    assert!(n > 0, "request");
                    got.extend_from_slice(&buf[..n]);
                }
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .unwrap();
                // Held open until the proxy is gone.
                let _ = drain(&mut c);
                "-"
            }
        }
    })
}

/// The client's side: what it saw.
fn client(port: u16, case: Case) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    match case {
        Case::HttpClose | Case::HttpKeepAliveTimeout => {
            let conn = match case {
                Case::HttpClose => "Connection: close\r\n",
                _ => "",
            };
            let req = format!("GET / HTTP/1.1\r\nHost: t\r\n{conn}\r\n");
            s.write_all(req.as_bytes()).unwrap();
            let status = read_response(&mut s);
            assert_eq!(status, "HTTP/1.1 200 OK");
            let end = drain(&mut s);
            pause(100);
            format!("{end} then {}", state(&s))
        }
        Case::HttpClientShuts => {
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            read_response(&mut s);
            s.shutdown(Shutdown::Write).unwrap();
            drain(&mut s).to_string()
        }
        Case::TcpClientFirst => {
            s.write_all(b"x\n").unwrap();
            pause(100);
            s.shutdown(Shutdown::Write).unwrap();
            drain(&mut s).to_string()
        }
        Case::TcpServerFirst => {
            let end = drain(&mut s);
            pause(100);
            let st = state(&s);
            pause(200);
            drop(s);
            format!("{end} then {st}")
        }
    }
}

/// Where the option is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    Nowhere,
    Frontend,
    Backend,
}

fn cfg(case: Case, at: Where, fe_port: u16, be_port: u16) -> String {
    let line = |w: Where| if w == at { "    option nolinger\n" } else { "" };
    format!(
        "defaults
    mode {mode}
    timeout connect 2s
    timeout client 5s
    timeout server 5s
    timeout http-keep-alive 300ms
frontend f
    bind 127.0.0.1:{fe_port}
{fe}    default_backend b
backend b
{be}    server s 127.0.0.1:{be_port}
",
        mode = case.mode(),
        fe = line(Where::Frontend),
        be = line(Where::Backend),
    )
}

/// Runs `case` with the option `at` through each proxy: (client, server) observations.
fn run(case: Case, at: Where, expect: (&str, &str)) {
    for which in Impl::all(&format!("nolinger {case:?} {at:?}")) {
        let dir = TempDir::new("nolinger");
        // A port free when chosen can be taken before the bind (CI saw it once): new ports.
        let (p, l) = loop {
            let p = free_ports(2);
            match TcpListener::bind(("127.0.0.1", p[1])) {
                Ok(l) => break (p, l),
                Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
                Err(e) => panic!("bind {}: {e}", p[1]),
            }
        };
        let srv = serve(l, case);
        let px = ProxyProc::start(which, &dir, &cfg(case, at, p[0], p[1]), &[p[0]]);
        let seen_client = client(p[0], case);
        let seen_server = match case.mode() {
            "tcp" => srv.join().unwrap(),
            // The proxy may keep the server connection: ended by stopping the proxy.
            _ => {
                drop(px);
                srv.join().unwrap()
            }
        };
        assert_eq!(
            (seen_client.as_str(), seen_server),
            expect,
            "{which:?}: {case:?} with option nolinger in the {at:?}"
        );
    }
}

#[test]
fn without_the_option_every_close_is_a_fin() {
    run(
        Case::HttpClose,
        Where::Nowhere,
        ("EOF then CLOSE_WAIT", "-"),
    );
    run(
        Case::HttpKeepAliveTimeout,
        Where::Nowhere,
        ("EOF then CLOSE_WAIT", "-"),
    );
    run(Case::HttpClientShuts, Where::Nowhere, ("EOF", "-"));
    run(Case::TcpClientFirst, Where::Nowhere, ("EOF", "EOF"));
    run(
        Case::TcpServerFirst,
        Where::Nowhere,
        ("EOF then CLOSE_WAIT", "EOF"),
    );
}

#[test]
fn in_a_frontend_client_connections_close_with_a_reset() {
    // The proxy closes first: its FIN, then the RST.
    run(Case::HttpClose, Where::Frontend, ("EOF then CLOSE", "-"));
    run(
        Case::HttpKeepAliveTimeout,
        Where::Frontend,
        ("EOF then CLOSE", "-"),
    );
    // The client closed its side first: the RST alone.
    run(Case::HttpClientShuts, Where::Frontend, ("RST", "-"));
    run(Case::TcpClientFirst, Where::Frontend, ("RST", "EOF"));
    // The server's FIN is passed on; the client has not closed yet.
    run(
        Case::TcpServerFirst,
        Where::Frontend,
        ("EOF then CLOSE_WAIT", "EOF"),
    );
}

#[test]
fn in_a_backend_the_clients_close_resets_an_open_server() {
    run(Case::TcpClientFirst, Where::Backend, ("EOF", "RST"));
    // A server that closed first gets a FIN.
    run(
        Case::TcpServerFirst,
        Where::Backend,
        ("EOF then CLOSE_WAIT", "EOF"),
    );
    // `mode http`: no change.
    run(
        Case::HttpClose,
        Where::Backend,
        ("EOF then CLOSE_WAIT", "-"),
    );
    run(
        Case::HttpKeepAliveTimeout,
        Where::Backend,
        ("EOF then CLOSE_WAIT", "-"),
    );
    run(Case::HttpClientShuts, Where::Backend, ("EOF", "-"));
}
