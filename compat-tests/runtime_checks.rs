//! Health-check rule sets against real HAProxy 2.6: `option tcp-check` with `tcp-check` rules,
//! `option httpchk` with `http-check` rules, `option redis-check`, `option smtpchk`. The same configuration runs
//! under rhaproxy and haproxy against the same small check servers (answer right, answer wrong,
//! reset, stall, refuse, come up late); the "Server be/s is UP/DOWN, reason: ..." lines each
//! prints on stderr must be the same set, and so must the requests the servers received.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Clone, Copy)]
enum Mode {
    /// Read a request, answer these bytes, keep the socket 2 s, close.
    Reply(&'static [u8]),
    /// Read a request, answer these bytes, close at once.
    ReplyClose(&'static [u8]),
    /// Read a request, then reset the connection.
    Reset,
    /// Read a request, never answer.
    Stall,
    /// A dialogue: send the first item at once (when not empty), then read a request and send
    /// the next item, and so on; afterwards hold the socket 2 s (`true`) or close at once.
    Script(&'static [&'static [u8]], bool),
}

/// A check server on `port`; while `up` is false it is not listening (connections refused).
struct CheckServer {
    up: Arc<AtomicBool>,
    /// First bytes of every request received.
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl CheckServer {
    fn start(port: u16, mode: Mode, up_now: bool) -> CheckServer {
        let up = Arc::new(AtomicBool::new(up_now));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (u, s) = (Arc::clone(&up), Arc::clone(&seen));
        thread::spawn(move || {
            loop {
                while !u.load(Ordering::Acquire) {
                    thread::sleep(Duration::from_millis(10));
                }
                let l = TcpListener::bind(("127.0.0.1", port)).expect("bind check server");
                l.set_nonblocking(true).unwrap();
                while u.load(Ordering::Acquire) {
                    match l.accept() {
                        Ok((c, _)) => {
                            let s = Arc::clone(&s);
                            thread::spawn(move || serve(c, mode, s));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            }
        });
        CheckServer { up, seen }
    }
}

fn serve(mut c: TcpStream, mode: Mode, seen: Arc<Mutex<Vec<Vec<u8>>>>) {
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    if let Mode::Script(items, hold) = mode {
        let mut buf = [0u8; 4096];
        for (k, item) in items.iter().enumerate() {
            if k > 0 {
                match c.read(&mut buf) {
                    Ok(n) if n > 0 => seen.lock().unwrap().push(buf[..n].to_vec()),
                    _ => return,
                }
            }
            if !item.is_empty() && c.write_all(item).is_err() {
                return;
            }
        }
        if hold {
            thread::sleep(Duration::from_secs(2));
        }
        return;
    }
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).unwrap_or(0);
    if n > 0 {
        seen.lock().unwrap().push(buf[..n].to_vec());
    }
    match mode {
        Mode::Reply(b) => {
            let _ = c.write_all(b);
            thread::sleep(Duration::from_secs(2));
        }
        Mode::ReplyClose(b) => {
            let _ = c.write_all(b);
        }
        Mode::Reset => {
            let s = socket2::SockRef::from(&c);
            let _ = s.set_linger(Some(Duration::ZERO));
        }
        Mode::Stall => thread::sleep(Duration::from_secs(3)),
        Mode::Script(..) => {}
    }
}

const HTTP200: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";
const HTTP503: &[u8] = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy";

/// The state-change lines, without the timing-dependent tail.
fn state_lines(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter(|l| l.contains(" is UP, reason") || l.contains(" is DOWN, reason"))
        .map(|l| {
            let l = l.split(" : ").skip(1).collect::<Vec<_>>().join(" : ");
            l.split(", check duration").next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn check_messages_match_haproxy() {
    let impls = Impl::all("runtime_checks");
    let p = free_ports(20);
    let late_ports = [p[6], p[7], p[8], p[9], p[10], p[11]];
    let servers = [
        CheckServer::start(p[1], Mode::Reply(b"+PONG\r\n"), true),
        CheckServer::start(p[2], Mode::Reply(b"-ERR wrong\r\n"), true),
        CheckServer::start(p[3], Mode::Reset, true),
        CheckServer::start(p[4], Mode::Stall, true),
        CheckServer::start(p[5], Mode::ReplyClose(b"-ERR unknown command\r\n"), true),
        CheckServer::start(p[12], Mode::Reply(HTTP200), true),
        CheckServer::start(p[13], Mode::Reply(HTTP503), true),
        CheckServer::start(
            p[15],
            Mode::Script(&[b"220 mail.example ready\r\n", b"550 go away\r\n"], false),
            true,
        ),
        CheckServer::start(
            p[16],
            Mode::Script(&[b"554 no service here\r\n"], true),
            true,
        ),
        CheckServer::start(
            p[17],
            Mode::Script(
                &[b"220-mail.example first\r\n220 mail.example ready\r\n"],
                true,
            ),
            true,
        ),
        CheckServer::start(
            p[18],
            Mode::Script(&[b"220 ready\r\n", b"250 hello\r\n", b""], false),
            true,
        ),
    ];
    let smtp_good = CheckServer::start(
        p[19],
        Mode::Script(
            &[
                b"220 ready\r\n",
                b"250 mail.example hi\r\n",
                b"221 bye now\r\n",
            ],
            true,
        ),
        false,
    );
    let late: Vec<CheckServer> = vec![
        CheckServer::start(late_ports[0], Mode::Reply(b"+PONG\r\n"), false),
        CheckServer::start(late_ports[1], Mode::Reply(b"+PONG\r\n"), false),
        CheckServer::start(late_ports[2], Mode::Reply(b"+PONG\r\n"), false),
        CheckServer::start(late_ports[3], Mode::Reply(b"+PONG\r\n"), false),
        CheckServer::start(late_ports[4], Mode::Reply(b"+PONG\r\n"), false),
        CheckServer::start(late_ports[5], Mode::Reply(HTTP200), false),
    ];
    let refused = p[14];
    let cfg = format!(
        r#"defaults
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 700
    default-server inter 300 rise 1 fall 1
frontend fe
    bind 127.0.0.1:{fe}
    default_backend tcp
backend tcp
    option tcp-check
    tcp-check send PING\r\n
    tcp-check expect string +PONG
    server ok 127.0.0.1:{ok} check
    server wrong 127.0.0.1:{wrong} check
    server reset 127.0.0.1:{reset} check
    server stall 127.0.0.1:{stall} check
    server refused 127.0.0.1:{refused} check
    server late 127.0.0.1:{l0} check
backend steps
    option tcp-check
    tcp-check comment hello
    tcp-check connect port {l1} comment "my conn"
    tcp-check send-binary 50494e470d0a
    tcp-check expect binary 2b504f4e47 comment "want pong"
    server late 127.0.0.1:{refused} check
backend steps2
    option tcp-check
    tcp-check send PING\r\n comment sending
    tcp-check expect string +PONG comment "pong wanted"
    tcp-check expect rstring ^\+Q comment "regex c"
    server wrong 127.0.0.1:{wrong} check
    server ok 127.0.0.1:{ok} check
backend opts
    option tcp-check
    tcp-check send PING\r\n
    tcp-check expect error-status L7STS on-error "bad thing" tout-status L6TOUT ! string -ERR
    server wrong 127.0.0.1:{wrong} check
    server stall 127.0.0.1:{stall} check
backend okst
    option tcp-check
    tcp-check send PING\r\n
    tcp-check expect ok-status L4OK on-success "all good" rstring ^\+P
    server late 127.0.0.1:{l2} check
backend l4
    option tcp-check
    server late 127.0.0.1:{l3} check
backend redis
    option redis-check
    server late 127.0.0.1:{l4} check
    server err 127.0.0.1:{rerr} check
    server stall 127.0.0.1:{stall} check
    server refused 127.0.0.1:{refused} check
backend hstr
    option httpchk
    http-check expect string nothere
    server s 127.0.0.1:{h200} check
backend hnot
    option httpchk
    http-check expect ! string hello
    server s 127.0.0.1:{h200} check
backend hsts
    option httpchk GET /health
    http-check expect status 200
    server s 127.0.0.1:{h503} check
backend hhdr
    option httpchk
    http-check expect hdr name content-length value 4
    server s 127.0.0.1:{h200} check
backend hsend
    option httpchk
    http-check send meth POST uri /p ver HTTP/1.1 hdr Host example.com hdr X-A b body abc
    http-check expect rstatus ^2
    server late 127.0.0.1:{l5} check
backend hdef
    option httpchk
    server late 127.0.0.1:{l5} check
backend smtp
    option smtpchk EHLO me.example
    server late 127.0.0.1:{smtp_good} check
    server helo550 127.0.0.1:{s550} check
    server banner554 127.0.0.1:{s554} check
    server multi 127.0.0.1:{smulti} check
    server quitclose 127.0.0.1:{squit} check
    server wrong 127.0.0.1:{wrong} check
    server refused 127.0.0.1:{refused} check
backend hbad
    option httpchk
    server wrong 127.0.0.1:{wrong} check
    server reset 127.0.0.1:{reset} check
    server stall 127.0.0.1:{stall} check
"#,
        fe = p[0],
        ok = p[1],
        wrong = p[2],
        reset = p[3],
        stall = p[4],
        rerr = p[5],
        h200 = p[12],
        h503 = p[13],
        l0 = late_ports[0],
        l1 = late_ports[1],
        l2 = late_ports[2],
        l3 = late_ports[3],
        l4 = late_ports[4],
        l5 = late_ports[5],
        s550 = p[15],
        s554 = p[16],
        smulti = p[17],
        squit = p[18],
        smtp_good = p[19],
    );
    let dir = TempDir::new("checks");
    let mut results = Vec::new();
    for which in &impls {
        for l in late.iter().chain([&smtp_good]) {
            l.up.store(false, Ordering::Release);
            l.seen.lock().unwrap().clear();
        }
        thread::sleep(Duration::from_millis(100));
        let proc = ProxyProc::start(*which, &dir, &cfg, &[p[0]]);
        thread::sleep(Duration::from_millis(1500));
        for l in late.iter().chain([&smtp_good]) {
            l.up.store(true, Ordering::Release);
        }
        // Every late server comes up, then the rest settles.
        proc.wait_stderr("Server hsend/late is UP", SOON);
        proc.wait_stderr("Server hdef/late is UP", SOON);
        proc.wait_stderr("Server smtp/late is UP", SOON);
        thread::sleep(Duration::from_millis(1500));
        let lines = state_lines(&proc.stderr());
        let hsend_req = late[5]
            .seen
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.starts_with(b"POST"))
            .cloned();
        let smtp_reqs: BTreeSet<Vec<u8>> = smtp_good.seen.lock().unwrap().iter().cloned().collect();
        let redis_req = late[4].seen.lock().unwrap().first().cloned();
        drop(proc);
        results.push((*which, lines, hsend_req, redis_req, smtp_reqs));
    }
    let _ = &servers;
    let (_, ours, our_http, our_redis, our_smtp) = &results[0];
    // What rhaproxy must say whatever HAProxy does (measured on 2.6.12).
    for want in [
        "Server tcp/wrong is DOWN, reason: Layer7 timeout, info: \" at step 2 of tcp-check (expect string '+PONG')\"",
        "Server tcp/reset is DOWN, reason: Socket error, info: \"Connection reset by peer at step 2 of tcp-check (expect string '+PONG')\"",
        "Server tcp/refused is DOWN, reason: Layer4 connection problem, info: \"Connection refused at initial connection step of tcp-check\"",
        "Server tcp/late is UP, reason: Layer7 check passed, code: 0, info: \"(tcp-check)\"",
        "Server steps/late is DOWN, reason: Layer4 connection problem, info: \"Connection refused at step 2 of tcp-check (connect port PORT1) comment: 'my conn'\"",
        "Server opts/wrong is DOWN, reason: Layer7 wrong status, code: 0, info: \"bad thing\"",
        "Server okst/late is UP, reason: Layer4 check passed, info: \"all good\"",
        "Server l4/late is UP, reason: Layer4 check passed",
        "Server redis/late is UP, reason: Layer7 check passed, code: 0, info: \"Redis server is ok\"",
        "Server hstr/s is DOWN, reason: Layer7 invalid response, info: \"HTTP content check did not match\"",
        "Server hsts/s is DOWN, reason: Layer7 wrong status, code: 503, info: \"Service Unavailable\"",
        "Server hdef/late is UP, reason: Layer7 check passed, code: 200",
        "Server smtp/late is UP, reason: Layer7 check passed, code: 221, info: \"bye now\"",
        "Server smtp/helo550 is DOWN, reason: Layer7 wrong status, code: 550, info: \"go away\"",
        "Server smtp/banner554 is DOWN, reason: Layer7 wrong status, code: 554, info: \"no service here\"",
        "Server smtp/multi is DOWN, reason: Layer7 invalid response, info: \"220-mail.example first\"",
        "Server smtp/quitclose is DOWN, reason: Layer7 wrong status, code: 0, info: \"TCPCHK got an empty response at step 7\"",
        "Server smtp/refused is DOWN, reason: Layer4 connection problem, info: \"Connection refused\"",
    ] {
        let want = want.replace("PORT1", &late_ports[1].to_string());
        assert!(
            ours.contains(&want),
            "rhaproxy lacks {want:?}; it printed:\n{}",
            ours.iter().cloned().collect::<Vec<_>>().join("\n")
        );
    }
    assert_eq!(
        our_http.as_deref(),
        Some(&b"POST /p HTTP/1.1\r\nhost: example.com\r\nx-a: b\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc"[..])
    );
    assert_eq!(our_redis.as_deref(), Some(&b"*1\r\n$4\r\nPING\r\n"[..]));
    let want_smtp: BTreeSet<Vec<u8>> =
        [b"EHLO me.example\r\n".to_vec(), b"QUIT\r\n".to_vec()].into();
    assert_eq!(our_smtp, &want_smtp);
    if let Some((_, theirs, their_http, their_redis, their_smtp)) = results.get(1) {
        let only_ours: Vec<_> = ours.difference(theirs).collect();
        let only_theirs: Vec<_> = theirs.difference(ours).collect();
        assert!(
            only_ours.is_empty() && only_theirs.is_empty(),
            "state messages differ\nonly rhaproxy:\n{only_ours:#?}\nonly haproxy:\n{only_theirs:#?}"
        );
        assert_eq!(our_http, their_http, "http-check request bytes differ");
        assert_eq!(our_redis, their_redis, "redis-check request bytes differ");
        assert_eq!(our_smtp, their_smtp, "smtpchk requests differ");
        println!(
            "{} state-change messages identical to HAProxy's",
            ours.len()
        );
    }
}

/// Reads everything the peer sends until it closes or stays quiet for 8 s.
fn read_all(mut c: TcpStream) -> Vec<u8> {
    c.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = c.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        // One response is enough: stop once its announced body is in.
        if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
            let cl = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if out.len() >= end + 4 + cl {
                break;
            }
        }
    }
    out
}

#[test]
fn http_error_replies_match_haproxy() {
    let impls = Impl::all("runtime_checks http-error");
    let p = free_ports(4);
    let dead = p[3];
    let cfg = format!(
        r#"defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    retries 0
frontend fe1
    bind 127.0.0.1:{a}
    http-error status 503 content-type "text/plain; charset=utf-8" string "sorry, later" hdr X-Why busy hdr Retry-After 5
    default_backend be
frontend fe2
    bind 127.0.0.1:{b}
    http-error status 503
    http-error status 400 content-type text/html string "<p>bad request</p>"
    default_backend be
frontend fe3
    bind 127.0.0.1:{c}
    default_backend be3
backend be
    server s 127.0.0.1:{dead}
backend be3
    http-error status 503 hdr X-A b
    server s 127.0.0.1:{dead}
"#,
        a = p[0],
        b = p[1],
        c = p[2],
    );
    let dir = TempDir::new("http-error");
    let mut all = Vec::new();
    for which in &impls {
        let proc = ProxyProc::start(*which, &dir, &cfg, &p[..3]);
        let mut got = Vec::new();
        for (port, req) in [
            (p[0], &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]),
            (p[1], &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]),
            (
                p[1],
                &b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: z\r\n\r\n"[..],
            ),
            (p[2], &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]),
        ] {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(req).unwrap();
            got.push(String::from_utf8_lossy(&read_all(c)).into_owned());
        }
        drop(proc);
        all.push(got);
    }
    let ours = &all[0];
    assert_eq!(
        ours[0],
        "HTTP/1.1 503 Service Unavailable\r\nx-why: busy\r\nretry-after: 5\r\ncontent-length: 12\r\ncontent-type: text/plain; charset=utf-8\r\n\r\nsorry, later"
    );
    assert_eq!(
        ours[1],
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
    );
    // A request the connection layer refuses gets the built-in page: http-error replies are
    // for the errors of request processing only (measured on 2.6.12).
    assert!(
        ours[2].starts_with("HTTP/1.1 400 Bad request\r\nContent-length: 90\r\n"),
        "{}",
        ours[2]
    );
    assert_eq!(
        ours[3],
        "HTTP/1.1 503 Service Unavailable\r\nx-a: b\r\ncontent-length: 0\r\n\r\n"
    );
    if let Some(theirs) = all.get(1) {
        assert_eq!(ours, theirs, "http-error replies differ from HAProxy's");
        println!(
            "{} http-error replies byte-identical to HAProxy's",
            ours.len()
        );
    }
}
