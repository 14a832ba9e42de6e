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
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
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
                // The port can be briefly busy (the previous listener's sockets going away):
                // retry for a while before giving up.
                let mut tries = 0;
                let l = loop {
                    match TcpListener::bind(("127.0.0.1", port)) {
                        Ok(l) => break l,
                        Err(e) if tries < 100 => {
                            tries += 1;
                            let _ = e;
                            thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => panic!("bind check server on {port}: {e}"),
                    }
                };
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

/// A MySQL packet (3-byte length, sequence number, payload), leaked for `Mode::Script`.
fn my_pkt(seq: u8, payload: &[u8]) -> &'static [u8] {
    let mut v = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    v.push(seq);
    v.extend_from_slice(payload);
    Box::leak(v.into_boxed_slice())
}

/// A MySQL 5.7 server greeting.
fn my_greeting() -> &'static [u8] {
    let mut p = vec![0x0a];
    p.extend_from_slice(b"5.7.33-log\0");
    p.extend_from_slice(&42u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&[0xff, 0xf7, 0x21, 0x02, 0x00, 0xff, 0x81, 0x15]);
    p.extend_from_slice(&[0u8; 10]);
    p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    my_pkt(0, &p)
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
    let p = free_ports(36);
    let late_ports = [p[6], p[7], p[8], p[9], p[10], p[11]];
    // Answers a client hello with a TLS alert record.
    let _chunked = [
        CheckServer::start(
            p[21],
            Mode::Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"),
            true,
        ),
        CheckServer::start(
            p[22],
            Mode::Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"),
            true,
        ),
        CheckServer::start(p[23], Mode::Reply(b"HTTP/1.1 204 No Content\r\n\r\n"), true),
    ];
    let _pg = [
        CheckServer::start(
            p[24],
            Mode::ReplyClose(b"E\x00\x00\x00\x50SFATAL\x00C28000\x00Mno pg_hba.conf entry\x00\x00"),
            true,
        ),
        CheckServer::start(
            p[25],
            Mode::Reply(b"R\x00\x00\x00\x0c\x00\x00\x00\x05abcd"),
            true,
        ),
    ];
    let pg_good = CheckServer::start(
        p[26],
        Mode::Reply(b"R\x00\x00\x00\x08\x00\x00\x00\x00"),
        false,
    );
    let my_err: &'static [u8] = my_pkt(
        2,
        b"\xff\x15\x04#28000Access denied for user 'haproxy'@'localhost'",
    );
    let my_ok: &'static [u8] = my_pkt(2, b"\x00\x00\x00\x02\x00\x00\x00");
    let my_errhs: &'static [u8] = my_pkt(
        0,
        b"\xff\x6a\x04Host 'x' is not allowed to connect to this MySQL server",
    );
    let script = |items: Vec<&'static [u8]>| -> &'static [&'static [u8]] {
        Box::leak(items.into_boxed_slice())
    };
    let my_good = CheckServer::start(
        p[27],
        Mode::Script(script(vec![my_greeting(), my_ok]), true),
        false,
    );
    let _my = [
        CheckServer::start(
            p[28],
            Mode::Script(script(vec![my_greeting(), my_err]), true),
            true,
        ),
        CheckServer::start(p[29], Mode::Script(script(vec![my_errhs]), true), true),
        CheckServer::start(p[30], Mode::Script(script(vec![my_greeting()]), true), true),
    ];
    const BIND_OK: &[u8] = b"0\x0c\x02\x01\x01a\x07\x0a\x01\x00\x04\x00\x04\x00";
    let ldap_good = CheckServer::start(p[31], Mode::Reply(BIND_OK), false);
    let _ldap = [
        CheckServer::start(
            p[32],
            Mode::Reply(b"0\x0c\x02\x01\x01a\x07\x0a\x01\x31\x04\x00\x04\x00"),
            true,
        ),
        CheckServer::start(
            p[33],
            Mode::Reply(b"0\x0c\x02\x01\x01b\x07\x0a\x01\x00\x04\x00\x04\x00"),
            true,
        ),
    ];
    // Two requests on two connections (http-check connect).
    let multi = [
        CheckServer::start(p[34], Mode::Reply(HTTP200), true),
        CheckServer::start(
            p[35],
            Mode::Reply(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            true,
        ),
    ];
    let tls = CheckServer::start(p[20], Mode::Reply(b"\x15\x03\x00\x00\x02\x02\x28"), true);
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
backend hchunk
    option httpchk
    http-check expect string bc
    server split 127.0.0.1:{ch1} check
backend hchunk2
    option httpchk
    http-check expect string nothere
    server s 127.0.0.1:{ch1} check
backend hchunk3
    option httpchk
    http-check expect ! string abc
    server partial 127.0.0.1:{ch2} check
    server nobody 127.0.0.1:{ch3} check
backend pgsql
    option pgsql-check user john
    server late 127.0.0.1:{pg_good} check
    server err 127.0.0.1:{pg_err} check
    server md5 127.0.0.1:{pg_md5} check
    server wrong 127.0.0.1:{wrong} check
    server stall 127.0.0.1:{stall} check
backend mysql
    option mysql-check user haproxy
    server late 127.0.0.1:{my_good} check
    server err 127.0.0.1:{my_err} check
    server errhs 127.0.0.1:{my_errhs} check
    server wrong 127.0.0.1:{wrong} check
backend mysql_nouser
    option mysql-check
    server hs 127.0.0.1:{my_hs} check
    server errhs 127.0.0.1:{my_errhs} check
backend ldap
    option ldap-check
    server late 127.0.0.1:{ldap_good} check
    server err 127.0.0.1:{ldap_err} check
    server notbind 127.0.0.1:{ldap_notbind} check
    server wrong 127.0.0.1:{wrong} check
backend lf1
    option tcp-check
    tcp-check send-lf PING\r\n
    tcp-check expect string-lf +PONG
    server stall 127.0.0.1:{stall} check
    server closed 127.0.0.1:{rerr} check
backend lf2
    option tcp-check
    tcp-check send-binary-lf 50494e470d0a
    tcp-check expect binary-lf 2b504f4e47
    server stall 127.0.0.1:{stall} check
    server closed 127.0.0.1:{rerr} check
backend hmulti
    option httpchk GET /opt HTTP/1.1
    http-check comment first
    http-check connect
    http-check send uri /a
    http-check expect status 200
    http-check connect port {m404} linger
    http-check send meth HEAD uri /x hdr Host example.com
    http-check expect status 404
    server s 127.0.0.1:{m200} check
backend sslhello
    option ssl-hello-chk
    server tls 127.0.0.1:{tls} check
    server wrong 127.0.0.1:{wrong} check
    server stall 127.0.0.1:{stall} check
    server reset 127.0.0.1:{reset} check
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
        tls = p[20],
        ch1 = p[21],
        ch2 = p[22],
        ch3 = p[23],
        pg_err = p[24],
        pg_md5 = p[25],
        pg_good = p[26],
        my_good = p[27],
        my_err = p[28],
        my_errhs = p[29],
        my_hs = p[30],
        ldap_good = p[31],
        ldap_err = p[32],
        ldap_notbind = p[33],
        m200 = p[34],
        m404 = p[35],
    );
    let dir = TempDir::new("checks");
    let mut results = Vec::new();
    for which in &impls {
        for l in late
            .iter()
            .chain([&smtp_good, &pg_good, &my_good, &ldap_good])
        {
            l.up.store(false, Ordering::Release);
            l.seen.lock().unwrap().clear();
        }
        tls.seen.lock().unwrap().clear();
        for m in &multi {
            m.seen.lock().unwrap().clear();
        }
        thread::sleep(Duration::from_millis(100));
        let proc = ProxyProc::start(*which, &dir, &cfg, &[p[0]]);
        thread::sleep(Duration::from_millis(1500));
        for l in late
            .iter()
            .chain([&smtp_good, &pg_good, &my_good, &ldap_good])
        {
            l.up.store(true, Ordering::Release);
        }
        // Every late server comes up, then the rest settles.
        proc.wait_stderr("Server hsend/late is UP", SOON);
        proc.wait_stderr("Server hdef/late is UP", SOON);
        proc.wait_stderr("Server smtp/late is UP", SOON);
        proc.wait_stderr("Server pgsql/late is UP", SOON);
        proc.wait_stderr("Server mysql/late is UP", SOON);
        proc.wait_stderr("Server ldap/late is UP", SOON);
        thread::sleep(Duration::from_millis(1500));
        let lines = state_lines(&proc.stderr());
        let hsend_req = late[5]
            .seen
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.starts_with(b"POST"))
            .cloned();
        // The client hello with its 4 time bytes masked.
        let hello = tls.seen.lock().unwrap().first().cloned().map(|mut h| {
            for b in h.iter_mut().skip(11).take(4) {
                *b = 0;
            }
            h
        });
        let pg_req = pg_good.seen.lock().unwrap().first().cloned();
        let my_req = my_good.seen.lock().unwrap().first().cloned();
        let multi_reqs: Vec<Option<Vec<u8>>> = multi
            .iter()
            .map(|m| m.seen.lock().unwrap().first().cloned())
            .collect();
        let smtp_reqs: BTreeSet<Vec<u8>> = smtp_good.seen.lock().unwrap().iter().cloned().collect();
        let redis_req = late[4].seen.lock().unwrap().first().cloned();
        drop(proc);
        results.push((
            *which,
            lines,
            hsend_req,
            redis_req,
            (smtp_reqs, hello, pg_req, my_req, multi_reqs),
        ));
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
        "Server sslhello/wrong is DOWN, reason: Layer6 invalid response",
        "Server pgsql/late is UP, reason: Layer7 check passed, code: 0, info: \"PostgreSQL server is ok\"",
        "Server pgsql/err is DOWN, reason: Layer7 invalid response, info: \"FATAL\"",
        "Server pgsql/wrong is DOWN, reason: Layer7 wrong status, code: 0, info: \"PostgreSQL unknown error\"",
        "Server pgsql/stall is DOWN, reason: Layer7 timeout",
        "Server mysql/late is UP, reason: Layer7 check passed, code: 0",
        "Server mysql/err is DOWN, reason: Layer7 wrong status, code: 1045, info: \"#28000Access denied for user 'haproxy'@'localhost'\"",
        "Server mysql/errhs is DOWN, reason: Layer7 wrong status, code: 1130, info: \"Host 'x' is not allowed to connect to this MySQL server\"",
        "Server mysql/wrong is DOWN, reason: Layer7 timeout",
        "Server ldap/late is UP, reason: Layer7 check passed, code: 0",
        "Server ldap/err is DOWN, reason: Layer7 wrong status, code: 49, info: \"See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9\"",
        "Server ldap/notbind is DOWN, reason: Layer7 invalid response, info: \"Not LDAPv3 protocol\"",
        "Server ldap/wrong is DOWN, reason: Layer7 timeout",
        "Server lf1/stall is DOWN, reason: Layer7 timeout, info: \" at step 2 of tcp-check (expect log-format string)\"",
        "Server lf1/closed is DOWN, reason: Layer7 invalid response, info: \"TCPCHK did not match content (log-format string) at step 2\"",
        "Server lf2/closed is DOWN, reason: Layer7 invalid response, info: \"TCPCHK did not match content (log-format binary) at step 2\"",
        "Server hchunk2/s is DOWN, reason: Layer7 invalid response, info: \"HTTP content check did not match\"",
        "Server hchunk3/partial is DOWN, reason: Layer7 invalid response, info: \"HTTP check matched unwanted content\"",
        "Server hchunk3/nobody is DOWN, reason: Layer7 invalid response, info: \"HTTP content check could not find a response body\"",
        "Server sslhello/stall is DOWN, reason: Layer6 timeout",
        "Server sslhello/reset is DOWN, reason: Socket error, info: \"Connection reset by peer\"",
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
    assert_eq!(&our_smtp.0, &want_smtp);
    // The first send completes `option httpchk`; a later one starts from HTTP/1.0 defaults.
    assert_eq!(
        our_smtp.4,
        vec![
            Some(b"GET /a HTTP/1.1\r\nconnection: close\r\n\r\n".to_vec()),
            Some(b"HEAD /x HTTP/1.0\r\nhost: example.com\r\n\r\n".to_vec())
        ]
    );
    assert!(
        !ours.iter().any(|l| l.starts_with("Server hmulti/")),
        "{ours:#?}"
    );
    let login = our_smtp.3.as_ref().expect("the MySQL server got a login");
    assert_eq!(&login[..4], b")\x00\x00\x01");
    assert!(
        login.ends_with(b"haproxy\x00\x00\x01\x00\x00\x00\x01"),
        "{login:?}"
    );
    assert_eq!(
        our_smtp.2.as_deref(),
        Some(&b"\x00\x00\x00\x13\x00\x03\x00\x00user\x00john\x00\x00"[..])
    );
    let hello = our_smtp
        .1
        .as_ref()
        .expect("the TLS server saw a client hello");
    assert_eq!(hello.len(), 126);
    assert_eq!(&hello[..5], b"\x16\x03\x00\x00\x79");
    assert!(
        !ours.iter().any(|l| l.starts_with("Server sslhello/tls ")),
        "{ours:#?}"
    );
    // A body split in chunks matches once decoded.
    assert!(
        !ours.iter().any(|l| l.starts_with("Server hchunk/split ")),
        "{ours:#?}"
    );
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

/// An HTTP check server answering the status the test sets; records the
/// `x-haproxy-server-state` headers it receives.
fn status_server(port: u16, status: Arc<AtomicU16>, states: Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind(("127.0.0.1", port)).expect("bind status server");
    thread::spawn(move || {
        for c in l.incoming().flatten() {
            let status = Arc::clone(&status);
            let states = Arc::clone(&states);
            thread::spawn(move || {
                let mut c = c;
                c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let mut buf = [0u8; 2048];
                let n = c.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                if let Some(l) = req
                    .split("\r\n")
                    .find(|l| l.starts_with("x-haproxy-server-state: "))
                {
                    states.lock().unwrap().push(l.to_string());
                }
                let st = status.load(Ordering::Acquire);
                let reason = match st {
                    200 => "OK",
                    404 => "Not Found",
                    _ => "Service Unavailable",
                };
                let _ = write!(c, "HTTP/1.0 {st} {reason}\r\nContent-Length: 0\r\n\r\n");
            });
        }
    });
}

/// `show servers state` / `show stat` through the stats socket.
fn cli(path: &std::path::Path, cmd: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("stats socket");
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The lines after `since` bytes of stderr that mention the backend, without timings.
fn events(stderr: &str, since: usize) -> Vec<String> {
    stderr[since.min(stderr.len())..]
        .lines()
        .filter(|l| l.contains("d404"))
        .map(|l| {
            let l = l.split(" : ").skip(1).collect::<Vec<_>>().join(" : ");
            match l.split_once(", check duration: ") {
                Some((a, b)) => format!("{a}{}", b.split_once("ms.").map(|x| x.1).unwrap_or("")),
                None => l,
            }
        })
        .collect()
}

#[test]
fn disable_on_404_stops_servers_like_haproxy() {
    let impls = Impl::all("runtime_checks disable-on-404");
    let p = free_ports(3);
    let status = Arc::new(AtomicU16::new(200));
    let s_states = Arc::new(Mutex::new(Vec::new()));
    let t_states = Arc::new(Mutex::new(Vec::new()));
    status_server(p[1], Arc::clone(&status), Arc::clone(&s_states));
    status_server(p[2], Arc::new(AtomicU16::new(200)), Arc::clone(&t_states));
    let dir = TempDir::new("d404");
    let sock = dir.0.join("admin.sock");
    let cfg = format!(
        r#"global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 1s
frontend fe
    bind 127.0.0.1:{fe}
    default_backend d404
backend d404
    option httpchk GET /ready
    http-check disable-on-404
    http-check send-state
    server s 127.0.0.1:{s} check inter 200 rise 1 fall 1
    server t 127.0.0.1:{t} check inter 200
"#,
        sock = sock.display(),
        fe = p[0],
        s = p[1],
        t = p[2],
    );
    let mut all = Vec::new();
    for which in &impls {
        status.store(200, Ordering::Release);
        s_states.lock().unwrap().clear();
        t_states.lock().unwrap().clear();
        let _ = std::fs::remove_file(&sock);
        let proc = ProxyProc::start(*which, &dir, &cfg, &[p[0]]);
        let mut seen = Vec::new();
        let mut states = Vec::new();
        let mut at = proc.stderr().len();
        for (st, wait_for) in [
            (404, "Server d404/s is stopping"),
            (200, "Server d404/s is UP"),
            (404, "Server d404/s is stopping"),
            (503, "Server d404/s is DOWN"),
            (404, ""),
            (200, "Server d404/s is UP"),
        ] {
            status.store(st, Ordering::Release);
            if wait_for.is_empty() {
                // Down: a 404 is a plain failure, nothing changes.
                thread::sleep(Duration::from_millis(800));
            } else {
                let text = wait_for_after(&proc, wait_for, at);
                let _ = text;
            }
            let err = proc.stderr();
            seen.extend(events(&err, at));
            at = err.len();
            let state: Vec<String> = cli(&sock, "show servers state d404")
                .lines()
                .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(" s "))
                .map(|l| l.split(' ').skip(5).take(1).collect::<Vec<_>>().join(" "))
                .collect();
            let stat: Vec<String> = cli(&sock, "show stat")
                .lines()
                .filter(|l| l.starts_with("d404,s,"))
                .map(|l| {
                    let f: Vec<&str> = l.split(',').collect();
                    if wait_for.is_empty() {
                        // Checked every 200 ms while down: HAProxy may show the check in
                        // progress (`* L7STS`, code 0) or done; only the status is stable.
                        f[17].to_string()
                    } else {
                        format!("{} {} {}", f[17], f[36], f[37])
                    }
                })
                .collect();
            states.push(format!("{st}: op_state {state:?} stat {stat:?}"));
        }
        drop(proc);
        // The state words each server was told about (`UP 1/3`, `NOLB`, `DOWN`...).
        let words = |v: &Arc<Mutex<Vec<String>>>| -> BTreeSet<String> {
            v.lock()
                .unwrap()
                .iter()
                .map(|l| l.split(';').next().unwrap_or("").to_string())
                .collect()
        };
        let sent = (words(&s_states), words(&t_states));
        let sample = s_states.lock().unwrap().first().cloned();
        all.push((seen, states, sent, sample));
    }
    let (ours, our_states, our_sent, our_sample) = &all[0];
    let port = p[1];
    let node = std::process::Command::new("hostname")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert_eq!(
        our_sample.as_deref(),
        Some(format!("x-haproxy-server-state: UP; address=127.0.0.1; port={port}; name=d404/s; node={node}; weight=1/2; scur=0/0; qcur=0").as_str())
    );
    for w in [
        "x-haproxy-server-state: UP",
        "x-haproxy-server-state: NOLB",
        "x-haproxy-server-state: DOWN",
    ] {
        assert!(
            our_sent.0.contains(w),
            "s was never told {w:?}: {:?}",
            our_sent.0
        );
    }
    assert!(
        our_sent.1.contains("x-haproxy-server-state: UP 1/3"),
        "{:?}",
        our_sent.1
    );
    for want in [
        "Server d404/s is stopping, reason: Layer7 check conditionally passed, code: 404 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
        "Server d404/s is UP, reason: Layer7 check passed, code: 200 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
        "Server d404/s is DOWN, reason: Layer7 wrong status, code: 503, info: \"Service Unavailable\" 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
    ] {
        assert!(
            ours.iter().any(|l| l == want),
            "missing {want:?} in {ours:#?}"
        );
    }
    assert!(
        our_states[0].contains("[\"3\"]") && our_states[0].contains("NOLB L7OKC 404"),
        "{our_states:?}"
    );
    if let Some((theirs, their_states, their_sent, their_sample)) = all.get(1) {
        assert_eq!(
            our_sent, their_sent,
            "send-state headers differ from HAProxy's"
        );
        assert_eq!(
            our_sample, their_sample,
            "send-state header differs from HAProxy's"
        );
        assert_eq!(
            ours, theirs,
            "disable-on-404 messages differ from HAProxy's"
        );
        assert_eq!(
            our_states, their_states,
            "server states differ from HAProxy's"
        );
        println!(
            "disable-on-404: {} messages and {} state snapshots identical to HAProxy's",
            ours.len(),
            our_states.len()
        );
    }
}

/// Waits until stderr, after byte `at`, contains `needle`.
fn wait_for_after(proc: &ProxyProc, needle: &str, at: usize) -> String {
    let mut last = String::new();
    let end = std::time::Instant::now() + SOON;
    while std::time::Instant::now() < end {
        last = proc.stderr();
        if last.get(at..).is_some_and(|t| t.contains(needle)) {
            return last;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("{:?} never printed {needle:?}; stderr:\n{last}", proc.which);
}

/// `check-send-proxy`: the plain check, the implicit connect and `connect default` send the
/// PROXY line; a `connect` without `default` does not.
#[test]
fn check_send_proxy_like_haproxy() {
    let impls = Impl::all("runtime_checks check-send-proxy");
    let p = free_ports(5);
    let servers: Vec<CheckServer> = (1..5)
        .map(|k| CheckServer::start(p[k], Mode::Reply(b"+PONG\r\n"), true))
        .collect();
    let cfg = format!(
        r#"defaults
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 1s
frontend fe
    bind 127.0.0.1:{fe}
    default_backend b0
backend b0
    server s 127.0.0.1:{a} check inter 300 check-send-proxy
backend b1
    option tcp-check
    tcp-check send PING\r\n
    server s 127.0.0.1:{b} check inter 300 check-send-proxy
backend b2
    option tcp-check
    tcp-check connect
    tcp-check send PING\r\n
    server s 127.0.0.1:{c} check inter 300 check-send-proxy
backend b3
    option tcp-check
    tcp-check connect default
    tcp-check send PING\r\n
    server s 127.0.0.1:{d} check inter 300 check-send-proxy
"#,
        fe = p[0],
        a = p[1],
        b = p[2],
        c = p[3],
        d = p[4],
    );
    let dir = TempDir::new("check-send-proxy");
    let mut all = Vec::new();
    for which in &impls {
        for s in &servers {
            s.seen.lock().unwrap().clear();
        }
        let proc = ProxyProc::start(*which, &dir, &cfg, &[p[0]]);
        wait_until("every check server saw a check", SOON, || {
            servers.iter().all(|s| !s.seen.lock().unwrap().is_empty())
        });
        drop(proc);
        // What the first check sent, with the check's own source port masked.
        let firsts: Vec<String> = servers
            .iter()
            .map(|s| {
                let first = s.seen.lock().unwrap()[0].clone();
                let text = String::from_utf8_lossy(&first).into_owned();
                match text.strip_prefix("PROXY TCP4 127.0.0.1 127.0.0.1 ") {
                    Some(rest) => {
                        let (_, after) = rest.split_once(' ').unwrap_or(("", rest));
                        format!("PROXY TCP4 127.0.0.1 127.0.0.1 SPORT {after}")
                    }
                    None => text,
                }
            })
            .collect();
        all.push(firsts);
    }
    let ours = &all[0];
    assert_eq!(
        ours[0],
        format!("PROXY TCP4 127.0.0.1 127.0.0.1 SPORT {}\r\n", p[1])
    );
    assert!(ours[1].starts_with("PROXY TCP4 "), "{:?}", ours[1]);
    assert_eq!(ours[2], "PING\r\n");
    assert!(ours[3].starts_with("PROXY TCP4 "), "{:?}", ours[3]);
    if let Some(theirs) = all.get(1) {
        // HAProxy may send the PROXY line and the first data in one segment or two.
        let heads = |v: &Vec<String>| -> Vec<String> {
            v.iter()
                .map(|s| s.split_inclusive("\r\n").next().unwrap_or("").to_string())
                .collect()
        };
        assert_eq!(
            heads(ours),
            heads(theirs),
            "check-send-proxy differs from HAProxy"
        );
        println!("check-send-proxy: the first bytes of 4 check kinds are identical to HAProxy's");
    }
}

/// Rule sets and `option httpchk` across a defaults section: a proxy's own http-check rules
/// replace the inherited rule set *and* the inherited option's request (so an own
/// `expect` alone sends nothing and times out, as in HAProxy 2.6); an own `option httpchk`
/// drops inherited rules; tcp-check rules are inherited until a proxy has its own.
#[test]
fn rule_sets_inherit_like_haproxy() {
    let impls = Impl::all("runtime_checks inheritance");
    let p = free_ports(8);
    let srv: Vec<CheckServer> = (1..7)
        .map(|k| CheckServer::start(p[k], Mode::Reply(HTTP200), true))
        .collect();
    let pong = CheckServer::start(p[7], Mode::Reply(b"+PONG\r\n"), true);
    let cfg = format!(
        r#"defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 600
    option httpchk GET /d
    http-check expect string hello
    default-server inter 250 rise 1 fall 1
frontend fe
    bind 127.0.0.1:{fe}
    default_backend inherit
backend inherit
    server s 127.0.0.1:{a} check
backend own_expect
    http-check expect status 200
    server s 127.0.0.1:{b} check
backend own_send
    http-check send hdr X-A b
    server s 127.0.0.1:{c} check
backend own_option
    option httpchk GET /z
    server s 127.0.0.1:{d} check
backend own_both
    http-check expect string nothere
    option httpchk HEAD /both
    server s 127.0.0.1:{e} check
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 600
    option tcp-check
    tcp-check send PING\r\n
    tcp-check expect string +PONG
    default-server inter 250 rise 1 fall 1
backend tcp_inherit
    server s 127.0.0.1:{pong} check
backend tcp_own
    tcp-check send PING\r\n
    tcp-check expect string -ERR
    server s 127.0.0.1:{f} check
"#,
        fe = p[0],
        a = p[1],
        b = p[2],
        c = p[3],
        d = p[4],
        e = p[5],
        f = p[6],
        pong = p[7],
    );
    let dir = TempDir::new("check-inherit");
    let mut all = Vec::new();
    for which in &impls {
        for s in srv.iter().chain([&pong]) {
            s.seen.lock().unwrap().clear();
        }
        let proc = ProxyProc::start(*which, &dir, &cfg, &[p[0]]);
        proc.wait_stderr("Server own_both/s is DOWN", SOON);
        proc.wait_stderr("Server own_expect/s is DOWN", SOON);
        proc.wait_stderr("Server tcp_own/s is DOWN", SOON);
        thread::sleep(Duration::from_millis(500));
        let lines = state_lines(&proc.stderr());
        drop(proc);
        let reqs: Vec<Option<Vec<u8>>> = srv
            .iter()
            .chain([&pong])
            .map(|s| s.seen.lock().unwrap().first().cloned())
            .collect();
        all.push((lines, reqs));
    }
    let (ours, our_reqs) = &all[0];
    for want in [
        "Server own_expect/s is DOWN, reason: Layer7 timeout",
        "Server own_both/s is DOWN, reason: Layer7 invalid response, info: \"HTTP content check could not find a response body\"",
        "Server tcp_own/s is DOWN, reason: Layer7 timeout, info: \" at step 2 of tcp-check (expect string '-ERR')\"",
    ] {
        assert!(ours.contains(want), "missing {want:?} in {ours:#?}");
    }
    assert_eq!(ours.len(), 3, "{ours:#?}");
    let req = |k: usize| {
        our_reqs[k]
            .clone()
            .map(|r| String::from_utf8_lossy(&r).into_owned())
    };
    assert_eq!(req(0).as_deref(), Some("GET /d HTTP/1.0\r\n\r\n"));
    assert_eq!(req(1), None, "an own expect alone sends no request");
    assert_eq!(
        req(2).as_deref(),
        Some("OPTIONS / HTTP/1.0\r\nx-a: b\r\n\r\n")
    );
    assert_eq!(req(3).as_deref(), Some("GET /z HTTP/1.0\r\n\r\n"));
    assert_eq!(req(4).as_deref(), Some("HEAD /both HTTP/1.0\r\n\r\n"));
    assert_eq!(req(6).as_deref(), Some("PING\r\n"));
    if let Some((theirs, their_reqs)) = all.get(1) {
        assert_eq!(ours, theirs, "state messages differ from HAProxy's");
        assert_eq!(our_reqs, their_reqs, "check requests differ from HAProxy's");
        println!("inheritance: messages and 7 check requests identical to HAProxy's");
    }
}

/// `on-marked-down shutdown-sessions`: when the check takes the server down, the sessions still
/// on it end at once; without the option they stay. Same behaviour as HAProxy 2.6.
#[test]
fn on_marked_down_shutdown_sessions_matches_haproxy() {
    let mut seen = Vec::new();
    for imp in Impl::all("on_marked_down_shutdown_sessions_matches_haproxy") {
        let p = free_ports(4);
        let cfg = format!(
            "defaults
    mode tcp
    timeout connect 1s
    timeout client 20s
    timeout server 20s
listen kill
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{} check inter 100 fall 1 rise 1 on-marked-down shutdown-sessions
listen keep
    bind 127.0.0.1:{}
    server s1 127.0.0.1:{} check inter 100 fall 1 rise 1
",
            p[0], p[2], p[1], p[3]
        );
        let dir = TempDir::new("omd");
        let l1 = TcpListener::bind(("127.0.0.1", p[2])).unwrap();
        let l2 = TcpListener::bind(("127.0.0.1", p[3])).unwrap();
        let b1 = Backend::from_listener("a", l1, Behavior::LineEcho);
        let b2 = Backend::from_listener("b", l2, Behavior::LineEcho);
        let proxy = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1]]);
        let mut conns = Vec::new();
        for port in [p[0], p[1]] {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            conns.push(s);
        }
        // The listeners close (the established sessions stay): the next checks fail.
        drop(b1);
        drop(b2);
        proxy.wait_stderr("Server kill/s1 is DOWN", SOON);
        proxy.wait_stderr("Server keep/s1 is DOWN", SOON);
        let mut out = Vec::new();
        for s in conns.iter_mut() {
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let _ = s.write_all(b"ping\n");
            let mut buf = [0u8; 64];
            out.push(match s.read(&mut buf) {
                Ok(0) | Err(_) => "closed".to_string(),
                Ok(n) => String::from_utf8_lossy(&buf[..n]).trim().to_string(),
            });
        }
        println!("{imp:?}: {out:?}");
        seen.push(out);
    }
    assert_eq!(seen[0], ["closed", "b:ping"], "rhaproxy");
    if seen.len() == 2 {
        assert_eq!(seen[0], seen[1], "rhaproxy vs HAProxy");
    }
}
