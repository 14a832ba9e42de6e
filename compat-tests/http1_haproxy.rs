//! Compatibility test: replays the HTTP/1 request vectors (rhaproxy::http1::vectors) against
//! the real `haproxy` binary and checks that our parser gives the same verdict (status and
//! whether the connection is closed), then compares built-in error responses and errorfile
//! handling byte for byte. Skips (with a message) when `haproxy` is not installed.

use rhaproxy::http1::errors::{
    ConnHeader, ErrorFlavor, auth_challenge, builtin_error, errorfile_wire, load_errorfile_with,
};
use rhaproxy::http1::head::Limits;
use rhaproxy::http1::vectors::{request_vectors, response_vectors};
use rhaproxy::http1::verdict::request_verdict;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn haproxy_available() -> bool {
    Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

macro_rules! require_haproxy {
    () => {
        if !haproxy_available() {
            eprintln!(
                "SKIPPED: `haproxy` is not installed (not found in PATH or `haproxy -v` \
                 failed); the HTTP/1 compatibility vectors need the real binary"
            );
            return;
        }
    };
}

/// Temp dir removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "rhaproxy-http1-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The haproxy we started; killed by PID on drop.
struct Haproxy {
    child: Child,
    _dir: TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `haproxy -db -f <cfg>` where `cfg` is produced from the ports; waits until the
/// first port accepts connections.
fn start(
    tag: &str,
    nports: usize,
    cfg: impl Fn(&[u16], &std::path::Path) -> String,
) -> (Haproxy, Vec<u16>) {
    let dir = TempDir::new(tag);
    let ports: Vec<u16> = (0..nports).map(|_| free_port()).collect();
    let text = cfg(&ports, &dir.0);
    let path = dir.0.join("haproxy.cfg");
    std::fs::write(&path, text).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn haproxy");
    let h = Haproxy { child, _dir: dir };
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", ports[0])).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "haproxy did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (h, ports)
}

/// Sends `req` on a fresh connection and reads one response: until the head and its
/// Content-Length body are in, EOF, or the timeout.
fn exchange(port: u16, req: &[u8], timeout: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let _ = s.write_all(req);
    let mut out = Vec::new();
    let t0 = Instant::now();
    let mut buf = [0u8; 65536];
    while t0.elapsed() < timeout {
        if response_complete(&out) {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    out
}

fn head_end(r: &[u8]) -> Option<usize> {
    r.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn header<'a>(r: &'a [u8], name: &str) -> Option<&'a str> {
    let end = head_end(r)?;
    let head = std::str::from_utf8(&r[..end]).ok()?;
    head.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn response_complete(r: &[u8]) -> bool {
    let Some(end) = head_end(r) else { return false };
    let cl: usize = header(r, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    r.len() >= end + cl
}

fn status(r: &[u8]) -> u16 {
    if r.len() >= 12 && r.starts_with(b"HTTP/1.") {
        std::str::from_utf8(&r[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    } else {
        0
    }
}

fn verdict_cfg(ports: &[u16], _: &std::path::Path) -> String {
    format!(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n  \
         timeout http-request 1s\nfrontend fe\n  bind 127.0.0.1:{}\n  http-request return status 200\n",
        ports[0]
    )
}

#[test]
fn request_verdicts_match_haproxy() {
    require_haproxy!();
    let (_h, ports) = start("verdicts", 1, verdict_cfg);
    let limits = Limits::default();
    let vectors = request_vectors();
    let mut mismatches = Vec::new();
    let mut matched = 0;
    let mut deviations = 0;
    for v in &vectors {
        let resp = exchange(ports[0], &v.bytes, Duration::from_secs(3));
        let hst = status(&resp);
        // HAProxy closes after every error; on a 200 it says `connection: close` when it does.
        let hclose = hst != 200
            || header(&resp, "connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let ours = request_verdict(&v.bytes, &limits);
        if let Some(why) = v.deviation {
            deviations += 1;
            eprintln!(
                "deviation {}: haproxy {hst} close={hclose}, rhaproxy {} close={} ({why})",
                v.name, ours.status, ours.close
            );
            assert_eq!((ours.status, ours.close), (v.status, v.close), "{}", v.name);
            continue;
        }
        if (hst, hclose) == (ours.status, ours.close) && (hst, hclose) == (v.status, v.close) {
            matched += 1;
        } else {
            mismatches.push(format!(
                "{}: haproxy {hst} close={hclose}; rhaproxy {} close={}; table {} close={}",
                v.name, ours.status, ours.close, v.status, v.close
            ));
        }
    }
    eprintln!(
        "http1 vectors: {matched}/{} matched HAProxy, {deviations} documented deviation(s)",
        vectors.len() - deviations
    );
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}

fn error_cfg(ports: &[u16], _: &std::path::Path) -> String {
    let mut c = String::from(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n  \
         timeout http-request 300ms\n",
    );
    c.push_str(&format!("frontend deny\n  bind 127.0.0.1:{}\n", ports[0]));
    for st in [
        200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429, 500, 501, 502, 503,
        504,
    ] {
        c.push_str(&format!(
            "  http-request deny deny_status {st} if {{ path /{st} }}\n"
        ));
    }
    c.push_str("  http-request auth realm \"my realm\" if { path /auth }\n");
    c.push_str("  http-request auth if { path /auth-default }\n");
    c.push_str(&format!(
        "frontend nobackend\n  bind 127.0.0.1:{}\n",
        ports[1]
    ));
    c.push_str(&format!(
        "frontend deadserver\n  bind 127.0.0.1:{}\n  default_backend dead\nbackend dead\n  server s 127.0.0.1:{}\n",
        ports[2], ports[3]
    ));
    c
}

/// Response bytes of the built-in errors, against the binary: the stream flavour through
/// `http-request deny deny_status N` and the no-backend 503, the mux flavour through bad
/// requests (400, 413, 422) and `timeout http-request` (408).
#[test]
fn builtin_error_bytes_match_haproxy() {
    require_haproxy!();
    let (_h, ports) = start("errors", 4, error_cfg);
    let mut checked = 0;
    for st in [
        200u16, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429, 500, 501, 502,
        503, 504,
    ] {
        let req = format!("GET /{st} HTTP/1.1\r\nHost: x\r\n\r\n");
        let got = exchange(ports[0], req.as_bytes(), Duration::from_secs(3));
        let want = builtin_error(st, ErrorFlavor::Stream { close: false }).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "deny {st}"
        );
        checked += 1;
    }
    for (path, realm, req_version, conn) in [
        ("auth", "my realm", "1.1", ConnHeader::None),
        ("auth-default", "deny", "1.1", ConnHeader::None),
        ("auth", "my realm", "1.0", ConnHeader::Close),
    ] {
        let req = format!("GET /{path} HTTP/{req_version}\r\nHost: x\r\n\r\n");
        let got = exchange(ports[0], req.as_bytes(), Duration::from_secs(3));
        let want = auth_challenge(realm, conn);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{path}"
        );
        checked += 1;
    }
    let got = exchange(
        ports[1],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(3),
    );
    let want = builtin_error(503, ErrorFlavor::Stream { close: false }).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "no backend 503"
    );
    // Server refusing connections: 503 after the connect retries.
    let got = exchange(
        ports[2],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(8),
    );
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "dead server 503"
    );
    checked += 2;
    for (st, req) in [
        (400u16, &b"GET / HTTP/1.1\r\nX-A : b\r\n\r\n"[..]),
        (413, b"GET / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"),
        (
            422,
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        ),
        (408, b"GET / HTTP/1.1\r\n"),
    ] {
        let got = exchange(ports[0], req, Duration::from_secs(3));
        let want = builtin_error(st, ErrorFlavor::Mux).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "mux {st}"
        );
        checked += 1;
    }
    eprintln!("builtin error responses: {checked} compared byte for byte");
}

/// `haproxy -c` verdicts on errorfiles against `load_errorfile_with`, and the bytes sent.
#[test]
fn errorfiles_match_haproxy() {
    require_haproxy!();
    let dir = TempDir::new("errorfiles");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("good", b"HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html>custom</html>\n".to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"hello world\n".to_vec()),
        ("badhdr", b"HTTP/1.1 503 X\r\nX-A : b\r\n\r\n".to_vec()),
        ("nohdrend", b"HTTP/1.1 503 X\r\nContent-Length: 5\r\n".to_vec()),
        ("lf", b"HTTP/1.1 503 X\nContent-Length: 5\n\nhello".to_vec()),
        ("shortbody", b"HTTP/1.1 503 X\r\nContent-Length: 10\r\n\r\nhello".to_vec()),
        ("longbody", b"HTTP/1.1 503 X\r\nContent-Length: 2\r\n\r\nhello".to_vec()),
        ("chunked", b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec()),
        ("other_status", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ("big", [b"HTTP/1.1 503 X\r\nContent-Length: 20000\r\n\r\n".as_slice(), &[b'a'; 20000]].concat()),
        ("big_ok", [b"HTTP/1.1 503 X\r\nContent-Length: 15200\r\n\r\n".as_slice(), &[b'a'; 15200]].concat()),
    ];
    for (name, content) in &files {
        std::fs::write(dir.0.join(format!("{name}.http")), content).unwrap();
    }
    std::fs::create_dir_all(dir.0.join("dir.http")).unwrap();
    let mut names: Vec<&str> = files.iter().map(|f| f.0).collect();
    names.extend(["dir", "missing"]);
    let mut compared = 0;
    for name in names {
        let path = dir.0.join(format!("{name}.http"));
        let cfg = dir.0.join(format!("{name}.cfg"));
        std::fs::write(
            &cfg,
            format!(
                "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
                 frontend f\n  bind 127.0.0.1:{}\n  errorfile 503 {}\n",
                free_port(),
                path.display()
            ),
        )
        .unwrap();
        let out = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let ours = load_errorfile_with(&path, 16384);
        match &ours {
            Ok((_, warn)) => {
                assert!(out.status.success(), "{name}: haproxy rejected: {text}");
                if let Some(w) = warn {
                    assert!(
                        text.contains(w.as_str()),
                        "{name}: warning {w:?} not in {text}"
                    );
                }
            }
            Err(msg) => {
                assert!(
                    !out.status.success(),
                    "{name}: haproxy accepted, we said {msg}"
                );
                let line = format!("errorfile : {msg}");
                assert!(text.contains(&line), "{name}: {line:?} not in:\n{text}");
            }
        }
        compared += 1;
    }
    // Bytes on the wire for accepted files.
    let (_h, ports) = start("errorfile-wire", 3, |p, _| {
        format!(
            "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             frontend a\n  bind 127.0.0.1:{}\n  errorfile 503 {}\n\
             frontend b\n  bind 127.0.0.1:{}\n  errorfile 503 {}\n\
             frontend c\n  bind 127.0.0.1:{}\n  errorfile 503 {}\n",
            p[0],
            dir.0.join("good.http").display(),
            p[1],
            dir.0.join("lf.http").display(),
            p[2],
            dir.0.join("empty.http").display()
        )
    });
    for (port, name) in [(ports[0], "good"), (ports[1], "lf"), (ports[2], "empty")] {
        let got = exchange(
            port,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            Duration::from_secs(3),
        );
        let content = load_errorfile_with(dir.0.join(format!("{name}.http")), 16384)
            .unwrap()
            .0;
        let want = if content.is_empty() {
            Vec::new()
        } else {
            errorfile_wire(&content, false)
        };
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{name}"
        );
        compared += 1;
    }
    eprintln!("errorfiles: {compared} cases compared");
}

// ------------------------------------------------------------------ response side

use rhaproxy::http1::body::{BodyFramer, Direction};
use rhaproxy::http1::conn::{
    HttpMode, finish_client_plan, plan_request, rewrite_response_for_client,
};
use rhaproxy::http1::message::{Parsed, parse_request, parse_response};
use rhaproxy::http1::serialize::{WriteOpts, write_response_head};

/// Our view of a response: the status the client gets and the head we would send.
fn our_response(resp_bytes: &[u8], req_bytes: &[u8]) -> (u16, Vec<u8>) {
    let limits = Limits::default();
    let Ok(Parsed::Complete(req)) = parse_request(req_bytes, &limits) else {
        panic!("request")
    };
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        match parse_response(&resp_bytes[at..], req.info(), &limits) {
            Ok(Parsed::Complete(mut r)) => {
                let mut body = BodyFramer::new(r.body, Direction::Response);
                let step = body.advance(&resp_bytes[at + r.head_len..]);
                if let Err(e) = step {
                    return (e.status, Vec::new());
                }
                let plan = finish_client_plan(
                    plan_request(&req, HttpMode::KeepAlive, HttpMode::KeepAlive),
                    &r,
                );
                rewrite_response_for_client(&mut r, req.version.is_11(), plan);
                write_response_head(&mut out, &r, WriteOpts::default());
                if r.interim {
                    at += r.head_len;
                    continue;
                }
                return (r.status, out);
            }
            // Server closed before a complete head.
            Ok(_) => return (502, Vec::new()),
            Err(e) => return (e.status, Vec::new()),
        }
    }
}

#[test]
fn response_verdicts_match_haproxy() {
    require_haproxy!();
    let vectors = response_vectors();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let srv_port = listener.local_addr().unwrap().port();
    let table: Vec<(String, Vec<u8>)> = vectors
        .iter()
        .map(|v| (v.name.to_string(), v.bytes.clone()))
        .collect();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let table = table.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while head_end(&got).is_none() {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&got);
                let path = line
                    .split(' ')
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/');
                if let Some((_, resp)) = table.iter().find(|(n, _)| n == path) {
                    let _ = c.write_all(resp);
                }
                std::thread::sleep(Duration::from_millis(200));
            });
        }
    });
    let (_h, ports) = start("responses", 1, |p, _| {
        format!(
            "defaults\n  mode http\n  timeout client 3s\n  timeout server 2s\n  timeout connect 2s\n  \
             timeout http-request 2s\n  timeout http-keep-alive 200ms\n\
             frontend fe\n  bind 127.0.0.1:{}\n  default_backend be\nbackend be\n  server s 127.0.0.1:{srv_port}\n",
            p[0]
        )
    });
    let mut matched = 0;
    let mut mismatches = Vec::new();
    let mut deviations = 0;
    for rv in &vectors {
        let (name, bytes, deviation) = (rv.name, &rv.bytes, rv.deviation);
        let req = format!("GET /{name} HTTP/1.1\r\nHost: x\r\n\r\n");
        // Read until HAProxy closes (keep-alive timeout 200ms, or close after the response).
        let mut s = TcpStream::connect(("127.0.0.1", ports[0])).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        let (ours_status, ours_head) = our_response(bytes, req.as_bytes());
        // HAProxy's final response: skip interim 1xx heads.
        let mut at = 0;
        let mut their_heads = Vec::new();
        while let Some(end) = head_end(&got[at..]) {
            their_heads.extend_from_slice(&got[at..at + end]);
            let st = status(&got[at..]);
            if !(100..200).contains(&st) {
                break;
            }
            at += end;
        }
        let their_status = status(&got[at..]);
        if let Some(why) = deviation {
            deviations += 1;
            eprintln!("deviation {name}: haproxy {their_status}, rhaproxy {ours_status} ({why})");
            assert_eq!(ours_status, 502);
            continue;
        }
        let heads_match =
            their_status != ours_status || ours_status == 502 || their_heads == ours_head;
        if their_status == ours_status && their_status == rv.status && heads_match {
            matched += 1;
        } else {
            mismatches.push(format!(
                "{name}: haproxy {their_status} {:?}\n   rhaproxy {ours_status} {:?}",
                String::from_utf8_lossy(&their_heads),
                String::from_utf8_lossy(&ours_head)
            ));
        }
    }
    eprintln!(
        "response vectors: {matched}/{} matched HAProxy (status and forwarded head), {deviations} documented deviation(s)",
        vectors.len() - deviations
    );
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}

// ------------------------------------------------------------------ forwarding rewrites

use rhaproxy::http1::conn::{ForwardFor, rewrite_request_for_server};
use rhaproxy::http1::serialize::write_request_head;

/// Echo server: answers each request with its head as the body (framing with our parser).
fn spawn_echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let big = Limits {
                    bufsize: 1 << 20,
                    ..Limits::default()
                };
                let mut buf = Vec::new();
                let mut tmp = [0u8; 8192];
                loop {
                    let req = loop {
                        match parse_request(&buf, &big) {
                            Ok(Parsed::Complete(r)) => break r,
                            Ok(Parsed::Partial) => match c.read(&mut tmp) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&tmp[..n]),
                            },
                            _ => return,
                        }
                    };
                    let head = buf[..req.head_len].to_vec();
                    buf.drain(..req.head_len);
                    let mut f = BodyFramer::new(req.body, Direction::Request);
                    loop {
                        let s = f.advance(&buf).unwrap();
                        buf.drain(..s.consumed);
                        if s.done {
                            break;
                        }
                        match c.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    let mut out =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", head.len())
                            .into_bytes();
                    out.extend_from_slice(&head);
                    if c.write_all(&out).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn our_forwarded_head(raw: &[u8], fe: HttpMode, be: HttpMode, ff: Option<&ForwardFor>) -> Vec<u8> {
    let Ok(Parsed::Complete(mut req)) = parse_request(raw, &Limits::default()) else {
        panic!("request {:?}", String::from_utf8_lossy(raw))
    };
    let plan = plan_request(&req, fe, be);
    rewrite_request_for_server(&mut req, plan, "127.0.0.1".parse().unwrap(), ff, None);
    let mut out = Vec::new();
    write_request_head(&mut out, &req, WriteOpts::default());
    out
}

/// What the server receives through HAProxy vs our rewrite + serializer, in each
/// connection mode and with `option forwardfor` variants; and the connection header the
/// client gets back.
#[test]
fn forwarded_heads_match_haproxy() {
    require_haproxy!();
    let echo = spawn_echo_server();
    use HttpMode::*;
    let except = ForwardFor {
        except: Some(("127.0.0.0".parse().unwrap(), 8)),
        ..ForwardFor::default()
    };
    let named = ForwardFor {
        header: "X-Client".into(),
        ..ForwardFor::default()
    };
    let ifnone = ForwardFor {
        if_none: true,
        ..ForwardFor::default()
    };
    let plain = ForwardFor::default();
    // (frontend option lines, backend option lines, fe mode, be mode, forwardfor)
    let setups: Vec<(&str, &str, HttpMode, HttpMode, Option<&ForwardFor>)> = vec![
        ("", "", KeepAlive, KeepAlive, None),
        (
            "  option http-server-close\n",
            "",
            ServerClose,
            KeepAlive,
            None,
        ),
        ("  option httpclose\n", "", Close, KeepAlive, None),
        ("", "  option httpclose\n", KeepAlive, Close, None),
        (
            "",
            "  option http-server-close\n",
            KeepAlive,
            ServerClose,
            None,
        ),
        (
            "  option forwardfor\n",
            "",
            KeepAlive,
            KeepAlive,
            Some(&plain),
        ),
        (
            "  option forwardfor if-none\n",
            "",
            KeepAlive,
            KeepAlive,
            Some(&ifnone),
        ),
        (
            "  option forwardfor except 127.0.0.0/8\n",
            "",
            KeepAlive,
            KeepAlive,
            Some(&except),
        ),
        (
            "  option forwardfor header X-Client\n",
            "",
            KeepAlive,
            KeepAlive,
            Some(&named),
        ),
        (
            "  option http-server-close\n",
            "  option forwardfor\n",
            ServerClose,
            KeepAlive,
            Some(&plain),
        ),
    ];
    let requests: Vec<&[u8]> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
        b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
        b"GET / HTTP/0.9\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\nX-B: 1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a  \r\n b\r\nX-B:   c   \r\n\r\n",
        b"GET  /x  HTTP/1.1\r\nhOsT: x\r\n\r\n",
        b"GET http://x:80/p HTTP/1.1\r\nHost: x:80\r\n\r\n",
        b"GET https://x:443/p HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://a:80:/p HTTP/1.1\r\nHost: a:80:\r\n\r\n",
        b"GET http://[::1]:/ HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    ];
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for (fe_opts, be_opts, fe, be, ff) in &setups {
        let (_h, ports) = start("forward", 1, |p, _| {
            format!(
                "defaults\n  mode http\n  timeout client 3s\n  timeout server 3s\n  timeout connect 3s\n  \
                 timeout http-request 2s\n  timeout http-keep-alive 200ms\n\
                 frontend fe\n  bind 127.0.0.1:{}\n{fe_opts}  default_backend be\n\
                 backend be\n{be_opts}  server s 127.0.0.1:{echo}\n",
                p[0]
            )
        });
        for raw in &requests {
            let got = exchange(ports[0], raw, Duration::from_secs(3));
            let Some(end) = head_end(&got) else {
                mismatches.push(format!(
                    "{fe_opts}{be_opts}: no response to {:?}",
                    String::from_utf8_lossy(raw)
                ));
                continue;
            };
            let seen_by_server = &got[end..];
            let ours = our_forwarded_head(raw, *fe, *be, *ff);
            // Connection header the client got.
            let their_conn = header(&got, "connection").map(|s| s.to_string());
            let Ok(Parsed::Complete(req)) = parse_request(raw, &Limits::default()) else {
                unreachable!()
            };
            let resp_head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                seen_by_server.len()
            );
            let Ok(Parsed::Complete(mut resp)) =
                parse_response(resp_head.as_bytes(), req.info(), &Limits::default())
            else {
                unreachable!()
            };
            let mut body = BodyFramer::new(req.body, Direction::Request);
            let body_done = body
                .advance(&raw[req.head_len..])
                .map(|s| s.done)
                .unwrap_or(false);
            let mut plan = finish_client_plan(plan_request(&req, *fe, *be), &resp);
            plan.client_keep_alive &= body_done;
            rewrite_response_for_client(&mut resp, req.version.is_11(), plan);
            let our_conn = resp
                .headers
                .iter()
                .find(|h| h.is("connection"))
                .map(|h| String::from_utf8_lossy(&h.value).to_string());
            if seen_by_server != ours.as_slice() || their_conn != our_conn {
                mismatches.push(format!(
                    "[{}{}] {:?}\n  haproxy: {:?} client conn {:?}\n  ours:    {:?} client conn {:?}",
                    fe_opts.trim(),
                    be_opts.trim(),
                    String::from_utf8_lossy(raw),
                    String::from_utf8_lossy(seen_by_server),
                    their_conn,
                    String::from_utf8_lossy(&ours),
                    our_conn
                ));
            } else {
                compared += 1;
            }
        }
    }
    eprintln!(
        "forwarding: {compared}/{} (setup, request) pairs matched HAProxy (server-side head and client connection header)",
        setups.len() * requests.len()
    );
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}
