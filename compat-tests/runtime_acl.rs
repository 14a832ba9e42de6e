//! ACL-driven rules end to end, differential against HAProxy 2.6 (same config, same traffic):
//! `use_backend ... if` (named ACLs over several lines, `||`, `!`, anonymous ACLs, predefined
//! ACLs), `http-request deny/return/redirect/set-header/add-header/del-header/set-path`, the
//! `redirect` keyword, `tcp-request connection reject`, `tcp-request content reject` and
//! `http-response set-header/add-header/del-header/deny`. Observed per request: status, the
//! server that answered, the response headers the rules touch, local bodies, whether the
//! connection stayed open, and the request head the chosen server received.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::net::Ipv4Addr;
use std::time::Duration;

const DEFAULTS: &str = "defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s
";

/// Runs `f` for rhaproxy and (when installed) HAProxy; asserts both observed the same.
fn differential(test: &str, f: impl Fn(Impl) -> Vec<String>) -> Vec<String> {
    let mut outs: Vec<(Impl, Vec<String>)> = Vec::new();
    for imp in Impl::all(test) {
        outs.push((imp, f(imp)));
    }
    if outs.len() == 2 {
        let (a, b) = (&outs[0].1, &outs[1].1);
        if a != b {
            println!("rhaproxy:\n{}\n\nHAProxy:\n{}", a.join("\n"), b.join("\n"));
        }
        for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            assert_eq!(
                x, y,
                "{test}: observation {i}: rhaproxy (left) and HAProxy (right) differ"
            );
        }
        assert_eq!(a.len(), b.len(), "{test}: observation counts differ");
    }
    outs.remove(0).1
}

/// The request head a server saw, minus what varies between proxies (`x-forwarded-for` is
/// not configured, so nothing is expected to vary).
fn seen_by(backends: &[&Backend], before: &[usize]) -> String {
    for (b, n) in backends.iter().zip(before) {
        let heads = b.heads.lock().unwrap();
        if heads.len() > *n {
            let h = heads.last().unwrap().replace("\r\n", "|");
            return format!("{} got {}", b.name, h.trim_end());
        }
    }
    "no server".into()
}

/// EOF from the proxy within 250 ms (a read timeout means the connection is still open).
/// Stray bytes after a response (a body after a HEAD answer) fail the test.
fn closed(c: &mut HttpConn) -> bool {
    let _ = c.w.set_read_timeout(Some(Duration::from_millis(250)));
    let mut b = [0u8; 1];
    let r = c.w.peek(&mut b);
    let _ = c.w.set_read_timeout(Some(Duration::from_secs(30)));
    assert!(
        c.r.buffer().is_empty() && !matches!(r, Ok(n) if n > 0),
        "unexpected bytes after a response"
    );
    match r {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn counts(backends: &[&Backend]) -> Vec<usize> {
    backends
        .iter()
        .map(|b| b.heads.lock().unwrap().len())
        .collect()
}

fn resp_obs(r: &Resp) -> String {
    let h = |n: &str| r.header(n).unwrap_or_default();
    format!(
        "{} srv={} location={} ctype={} x-ret={} x-resp={} x-fe={} x-be-resp={} x-server-kept={} conn={} body={}",
        r.status,
        r.server(),
        h("location"),
        h("content-type"),
        h("x-ret"),
        h("x-resp"),
        h("x-fe"),
        h("x-be-resp"),
        r.header("x-server").is_some(),
        h("connection"),
        if r.server() == "-" {
            r.body_str().lines().next().unwrap_or("").to_string()
        } else {
            r.body_str()
        }
    )
}

#[test]
fn acl_rules_match_haproxy() {
    let got = differential("acl_rules_match_haproxy", |imp| {
        let dir = TempDir::new("acl");
        let p = free_ports(4);
        let api = Backend::start("api", p[1], Behavior::Http);
        let bb = Backend::start("b", p[2], Behavior::Http);
        let def = Backend::start("d", p[3], Behavior::Http);
        let cfg = format!(
            "{DEFAULTS}
frontend fe
    bind 127.0.0.1:{}
    acl is_api path_beg /api
    acl is_api path_beg /v2
    acl host_b hdr(host) -i b.example
    acl blocked src 127.0.0.3
    tcp-request connection reject if blocked
    tcp-request content reject if {{ path /tcprej }}
    http-request deny if {{ path_beg /admin }} !{{ src 127.0.0.2 }}
    http-request deny deny_status 503 if {{ path /unavail }}
    http-request deny status 418 if {{ path /teapot }}
    http-request deny deny_status 429 content-type text/plain string nope hdr X-Ret no if {{ path /nope }}
    http-request return status 200 content-type text/plain string pong if {{ path /ping }}
    http-request return status 201 content-type text/plain lf-string \"from %[src] %[path]\" hdr X-Ret yes if {{ path /lf }}
    http-request redirect location /new code 301 if {{ path /old }}
    http-request redirect prefix /pfx if {{ path_beg /pre/ }}
    http-request redirect scheme https if {{ path /secure }}
    http-request redirect prefix / drop-query append-slash if {{ path_beg /dq }}
    http-request set-header X-Client %[src]
    http-request add-header X-Added one
    http-request add-header X-Added two if {{ method GET }}
    http-request del-header X-Remove
    http-request set-header X-Path %[path] unless {{ path_len gt 10 }}
    http-request set-path /rewritten%[path] if {{ path_beg /rw/ }}
    http-request allow if {{ path /allowed }}
    http-request set-header X-After-Allow 1
    redirect location /kw if {{ path /kw }}
    http-response set-header X-Resp got-%[status]
    http-response add-header X-Fe fe
    http-response del-header X-Server if {{ status 404 }}
    http-response deny if {{ res.hdr(x-server) -m str b }} {{ status 201 }}
    use_backend be_api if is_api
    use_backend be_b if host_b || {{ url_param(to) -m str b }}
    use_backend be_b if METH_POST !{{ hdr_cnt(x-no-b) gt 0 }}
    default_backend be_default

backend be_api
    http-request set-header X-Be api
    http-request deny if {{ path_end .secret }}
    http-response set-header X-Be-Resp api
    server api 127.0.0.1:{}

backend be_b
    server b 127.0.0.1:{}

backend be_default
    server d 127.0.0.1:{}
",
            p[0], p[1], p[2], p[3]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let bes = [&api, &bb, &def];
        let mut out = Vec::new();
        let mut c = HttpConn::connect(p[0]).unwrap();
        let reqs: &[&str] = &[
            "GET /api/x HTTP/1.1\r\nHost: a\r\nX-Remove: r\r\n\r\n",
            "GET /v2/y?z=1 HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /api/k.secret HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: B.Example\r\n\r\n",
            "GET /q?to=b HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: a\r\nX-No-B: 1\r\nContent-Length: 0\r\n\r\n",
            "GET /plain HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /a-very-long-path HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /unavail HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /ping HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /lf HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /old HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /pre/x?a=1 HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /secure?q=2 HTTP/1.1\r\nHost: h.example\r\n\r\n",
            "GET /dq/z?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /kw HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /rw/a?b=c HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /allowed HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /status/404 HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /status/201 HTTP/1.1\r\nHost: b.example\r\n\r\n",
            "GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n",
            "HEAD /ping HTTP/1.1\r\nHost: a\r\n\r\n",
            "HEAD /admin/x HTTP/1.1\r\nHost: a\r\n\r\n",
            "HEAD /old HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            "GET /old HTTP/1.0\r\n\r\n",
        ];
        for raw in reqs {
            let before = counts(&bes);
            let first = raw.lines().next().unwrap_or("").to_string();
            match c.request(raw) {
                Ok(r) => {
                    out.push(format!("{first} => {}", resp_obs(&r)));
                    out.push(format!("  {}", seen_by(&bes, &before)));
                }
                Err(e) => out.push(format!("{first} => error {:?}", e.kind())),
            }
            if closed(&mut c) {
                out.push("  connection closed".into());
                c = HttpConn::connect(p[0]).unwrap();
            }
        }
        // tcp-request content reject: closed without an answer.
        let mut t = HttpConn::connect(p[0]).unwrap();
        let r = t.request("GET /tcprej HTTP/1.1\r\nHost: a\r\n\r\n");
        out.push(format!(
            "tcprej => {}",
            r.map(|r| r.status.to_string())
                .unwrap_or_else(|_| "closed".into())
        ));
        // tcp-request connection reject: from 127.0.0.3, closed at once.
        match HttpConn::connect_from(Some(Ipv4Addr::new(127, 0, 0, 3)), p[0]) {
            Ok(mut b) => {
                let r = b.request("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
                out.push(format!(
                    "blocked src => {}",
                    r.map(|r| r.status.to_string())
                        .unwrap_or_else(|_| "closed".into())
                ));
            }
            Err(e) => out.push(format!("blocked src => connect error {:?}", e.kind())),
        }
        // An allowed source reaches /admin.
        let mut a = HttpConn::connect_from(Some(Ipv4Addr::new(127, 0, 0, 2)), p[0]).unwrap();
        let before = counts(&bes);
        let r = a.get("/admin/x").unwrap();
        out.push(format!("admin from 127.0.0.2 => {}", resp_obs(&r)));
        out.push(format!("  {}", seen_by(&bes, &before)));
        out
    });
    let text = got.join("\n");
    // Independent expectations (HAProxy's behaviour as measured), so the test fails even
    // without HAProxy installed.
    for needle in [
        "GET /api/x HTTP/1.1 => 200 srv=api",
        "api got GET /api/x HTTP/1.1|host: a|x-client: 127.0.0.1|x-added: one|x-added: two|x-path: /api/x|x-after-allow: 1|x-be: api|",
        "GET /api/k.secret HTTP/1.1 => 403 srv=-",
        "GET / HTTP/1.1 => 200 srv=b",
        "GET /q?to=b HTTP/1.1 => 200 srv=b",
        "GET /admin/x HTTP/1.1 => 403 srv=-",
        "GET /unavail HTTP/1.1 => 503 srv=-",
        "GET /teapot HTTP/1.1 => 418 srv=- location= ctype= x-ret=",
        "GET /nope HTTP/1.1 => 429 srv=- location= ctype=text/plain x-ret=no",
        "body=nope",
        "GET /ping HTTP/1.1 => 200 srv=- location= ctype=text/plain",
        "body=pong",
        "GET /lf HTTP/1.1 => 201 srv=- location= ctype=text/plain x-ret=yes",
        "body=from 127.0.0.1 /lf",
        "GET /old HTTP/1.1 => 301 srv=- location=/new",
        "GET /pre/x?a=1 HTTP/1.1 => 302 srv=- location=/pfx/pre/x?a=1",
        "GET /secure?q=2 HTTP/1.1 => 302 srv=- location=https://h.example/secure?q=2",
        "GET /dq/z?x=1 HTTP/1.1 => 302 srv=- location=/dq/z/",
        "GET /kw HTTP/1.1 => 302 srv=- location=/kw",
        "d got GET /rewritten/rw/a?b=c HTTP/1.1",
        "x-resp=got-200 x-fe=fe",
        "GET /status/404 HTTP/1.1 => 404 srv=-",
        "GET /status/201 HTTP/1.1 => 502 srv=-",
        "GET /status/201 HTTP/1.1 => 201 srv=d",
        "tcprej => closed",
        "blocked src => closed",
        "admin from 127.0.0.2 => 200 srv=d",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(
        !text.contains("d got GET /allowed HTTP/1.1|host: a|x-client: 127.0.0.1|x-added: one|x-added: two|x-path: /allowed|x-after-allow"),
        "allow must stop the http-request rules:\n{text}"
    );
}

#[test]
fn variables_rewrites_and_drops_match_haproxy() {
    let got = differential("variables_rewrites_and_drops_match_haproxy", |imp| {
        let dir = TempDir::new("aclvars");
        let p = free_ports(3);
        let a = Backend::start("a", p[1], Behavior::Http);
        let d = Backend::start("d", p[2], Behavior::Http);
        let cfg = format!(
            "{DEFAULTS}
frontend fe
    bind 127.0.0.1:{}
    timeout tarpit 1200ms
    http-request set-var(txn.route) req.hdr(x-route),lower
    http-request set-var(sess.first) path if !{{ var(sess.first) -m found }}
    http-request set-var(txn.n) int(7)
    http-request set-var(txn.n,ifnotexists) int(8)
    http-request set-header X-First %[var(sess.first)]
    http-request set-header X-N %[var(txn.n)]
    http-request set-header X-Pathq %[pathq]
    http-request replace-path /old/(.*) /new/\\1
    http-request replace-header X-Rep (.*)-(.*) \\2-\\1
    http-request replace-value X-Vals ^a(.*) A\\1
    http-request reject if {{ path /reject }}
    http-request silent-drop if {{ path /drop }}
    http-request tarpit if {{ path /tarpit }}
    http-request tarpit deny_status 403 if {{ path /tarpit403 }}
    http-response return status 200 content-type text/plain string replaced if {{ status 418 }}
    http-response set-status 299 if {{ status 202 }}
    http-response set-status 298 reason Custom if {{ status 203 }}
    http-response set-header X-Route %[var(txn.route)]
    use_backend %[var(txn.route)] if {{ var(txn.route) -m found }}
    default_backend d

backend a
    server a 127.0.0.1:{}

backend d
    server d 127.0.0.1:{}
",
            p[0], p[1], p[2]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let bes = [&a, &d];
        let mut out = Vec::new();
        let mut c = HttpConn::connect(p[0]).unwrap();
        let reqs: &[&str] = &[
            "GET /x HTTP/1.1\r\nHost: h\r\nX-Route: A\r\n\r\n",
            "GET /old/z?q=1 HTTP/1.1\r\nHost: h\r\nX-Rep: one-two\r\nX-Vals: ab, cd,ax\r\n\r\n",
            "GET /y HTTP/1.1\r\nHost: h\r\nX-Route: zz\r\n\r\n",
            "GET /status/418 HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /status/202 HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /status/203 HTTP/1.1\r\nHost: h\r\nX-Route: a\r\n\r\n",
            "GET /reject HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /tarpit HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /tarpit403 HTTP/1.1\r\nHost: h\r\n\r\n",
        ];
        for raw in reqs {
            let before = counts(&bes);
            let first = raw.lines().next().unwrap_or("").to_string();
            let t0 = std::time::Instant::now();
            match c.request(raw) {
                Ok(r) => {
                    let slow = t0.elapsed() >= Duration::from_millis(900);
                    let reason = r.head.lines().next().unwrap_or("").to_string();
                    out.push(format!(
                        "{first} => [{reason}] {} x-route={} held={slow}",
                        resp_obs(&r),
                        r.header("x-route").unwrap_or_default()
                    ));
                    out.push(format!("  {}", seen_by(&bes, &before)));
                }
                Err(e) => out.push(format!(
                    "{first} => no response ({})",
                    if e.kind() == std::io::ErrorKind::ConnectionReset {
                        "reset"
                    } else {
                        "closed"
                    }
                )),
            }
            if closed(&mut c) {
                out.push("  connection closed".into());
                c = HttpConn::connect(p[0]).unwrap();
            }
        }
        // silent-drop: the client hears nothing at all (no answer, no FIN, no reset).
        let mut s = HttpConn::connect(p[0]).unwrap();
        let _ = s.w.set_read_timeout(Some(Duration::from_millis(1500)));
        let r = s.request("GET /drop HTTP/1.1\r\nHost: h\r\n\r\n");
        out.push(format!(
            "drop => {}",
            match r {
                Ok(r) => format!("status {}", r.status),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                    "silence".into(),
                Err(e) => format!("{:?}", e.kind()),
            }
        ));
        out
    });
    let text = got.join("\n");
    for needle in [
        "drop => silence",
        "GET /x HTTP/1.1 => [HTTP/1.1 200 X] 200 srv=a",
        "x-route=a held=false",
        "a got GET /x HTTP/1.1|host: h|x-route: A|x-first: /x|x-n: 7|x-pathq: /x|",
        "d got GET /new/z?q=1 HTTP/1.1|host: h|x-rep: two-one|",
        "x-first: /x|x-n: 7|x-pathq: /old/z?q=1|",
        "GET /y HTTP/1.1 => [HTTP/1.1 200 X] 200 srv=d",
        "x-vals: Ab, cd,Ax|",
        "GET /status/202 HTTP/1.1 => [HTTP/1.1 299 Success]",
        "GET /status/418 HTTP/1.1 => [HTTP/1.1 200 OK] 200 srv=- location= ctype=text/plain",
        "body=replaced",
        "GET /status/202 HTTP/1.1 => [HTTP/1.1 299 ",
        "GET /status/203 HTTP/1.1 => [HTTP/1.1 298 Custom] 298 srv=a",
        "GET /reject HTTP/1.1 => no response",
        "GET /tarpit HTTP/1.1 => [HTTP/1.1 500 Internal Server Error] 500 srv=-",
        "held=true",
        "GET /tarpit403 HTTP/1.1 => [HTTP/1.1 403 Forbidden] 403 srv=-",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

/// Log lines of rule outcomes: backend/server, status, termination state, and which timers
/// are -1 (`%Tq/%Tw/%Tc/%Tr`), against HAProxy's.
#[test]
fn rule_outcomes_are_logged_like_haproxy() {
    let got = differential("rule_outcomes_are_logged_like_haproxy", |imp| {
        let dir = TempDir::new("acllog");
        let p = free_ports(2);
        let logs = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        logs.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let _s = Backend::start("s", p[1], Behavior::Http);
        let cfg = format!(
            "{DEFAULTS}
frontend fe
    bind 127.0.0.1:{}
    log 127.0.0.1:{} format raw local0
    log-format \"%f %b/%s %ST %tsc %Tq/%Tw/%Tc/%Tr %{{+Q}}r\"
    timeout tarpit 100ms
    tcp-request content reject if {{ path /tcprej }}
    http-request deny if {{ path /deny }}
    http-request deny status 418 content-type text/plain string t if {{ path /teapot }}
    http-request set-log-level silent if {{ path /quiet }}
    http-response set-log-level silent if {{ status 204 }}
    http-request return status 200 content-type text/plain string x if {{ path /ret }}
    http-request redirect location /n if {{ path /redir }}
    http-request reject if {{ path /rej }}
    http-request tarpit if {{ path /tarpit }}
    http-response deny if {{ status 404 }}
    http-response return status 202 if {{ status 203 }}
    default_backend be

backend be
    server s 127.0.0.1:{}
",
            p[0],
            logs.local_addr().unwrap().port(),
            p[1]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        for path in [
            "/ok",
            "/deny",
            "/ret",
            "/redir",
            "/status/404",
            "/status/203",
            "/rej",
            "/tcprej",
            "/tarpit",
            "/quiet",
            "/status/204",
            "/teapot",
        ] {
            let mut c = HttpConn::connect(p[0]).unwrap();
            let _ = c.get(path);
        }
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while lines.len() < 10 && std::time::Instant::now() < end {
            if let Ok(k) = logs.recv(&mut buf) {
                let l = String::from_utf8_lossy(&buf[..k]).trim_end().to_string();
                // Mask timer values, keep whether they are -1.
                let masked: Vec<String> = l
                    .split(' ')
                    .map(|w| {
                        if w.contains('/') && w.split('/').all(|t| t.parse::<i64>().is_ok()) {
                            w.split('/')
                                .map(|t| if t == "-1" { "-1" } else { "n" })
                                .collect::<Vec<_>>()
                                .join("/")
                        } else {
                            w.to_string()
                        }
                    })
                    .collect();
                lines.push(masked.join(" "));
            }
        }
        lines.sort();
        lines
    });
    let text = got.join("\n");
    assert!(
        !text.contains("/quiet") && !text.contains("/status/204"),
        "set-log-level silent must suppress the line:\n{text}"
    );
    for needle in [
        "fe be/s 200 ---- n/n/n/n \"GET /ok HTTP/1.1\"",
        "fe fe/<NOSRV> 403 PR-- n/-1/-1/-1 \"GET /deny HTTP/1.1\"",
        "fe fe/<NOSRV> 200 LR-- n/-1/-1/-1 \"GET /ret HTTP/1.1\"",
        "fe fe/<NOSRV> 302 LR-- n/-1/-1/-1 \"GET /redir HTTP/1.1\"",
        "fe be/s 502 PH-- n/n/n/-1 \"GET /status/404 HTTP/1.1\"",
        "fe be/s 202 LH-- n/n/n/-1 \"GET /status/203 HTTP/1.1\"",
        "fe fe/<NOSRV> -1 PR-- -1/-1/-1/-1 \"GET /rej HTTP/1.1\"",
        "fe fe/<NOSRV> -1 PR-- -1/-1/-1/-1 \"<BADREQ>\"",
        "fe fe/<NOSRV> 500 PT-- -1/n/-1/-1 \"GET /tarpit HTTP/1.1\"",
        "fe fe/<NOSRV> 418 PR-- n/-1/-1/-1 \"GET /teapot HTTP/1.1\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

/// `mode tcp`: `tcp-request connection reject`, `tcp-request content reject` (connection-level
/// fetches only) and `use_backend` on the destination port and the source address.
#[test]
fn tcp_mode_rules_match_haproxy() {
    let got = differential("tcp_mode_rules_match_haproxy", |imp| {
        let dir = TempDir::new("acltcp");
        let p = free_ports(5);
        let logs = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        logs.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let _b1 = Backend::start("b1", p[2], Behavior::Name);
        let _b2 = Backend::start("b2", p[3], Behavior::Name);
        let _b3 = Backend::start("b3", p[4], Behavior::Name);
        let cfg = format!(
            "defaults
    mode tcp
    timeout connect 2s
    timeout client 5s
    timeout server 5s

frontend ft
    bind 127.0.0.1:{p0}
    bind 127.0.0.1:{p1}
    log 127.0.0.1:{lp} format raw local0
    log-format \"%ci %f %b/%s %Tw/%Tc %ts\"
    acl second_port dst_port {p1}
    tcp-request connection reject if {{ src 127.0.0.3 }}
    tcp-request content reject if {{ src 127.0.0.4 }}
    use_backend b2 if second_port
    use_backend b3 if {{ src 127.0.0.2 }} || {{ src 127.0.0.5 }}
    default_backend b1

backend b1
    server b1 127.0.0.1:{}

backend b2
    server b2 127.0.0.1:{}

backend b3
    server b3 127.0.0.1:{}
",
            p[2],
            p[3],
            p[4],
            p0 = p[0],
            p1 = p[1],
            lp = logs.local_addr().unwrap().port(),
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1]]);
        let mut out = Vec::new();
        for (port, src) in [
            (p[0], None),
            (p[1], None),
            (p[0], Some(Ipv4Addr::new(127, 0, 0, 2))),
            (p[1], Some(Ipv4Addr::new(127, 0, 0, 2))),
            (p[0], Some(Ipv4Addr::new(127, 0, 0, 3))),
            (p[0], Some(Ipv4Addr::new(127, 0, 0, 4))),
            (p[0], Some(Ipv4Addr::new(127, 0, 0, 5))),
        ] {
            let which = if port == p[0] { "port0" } else { "port1" };
            let r = tcp_read(port, src)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|e| format!("error {:?}", e.kind()));
            out.push(format!("{which} from {src:?} => {r:?}"));
        }
        // Session logs (a connection-level reject is not logged, a content reject is).
        let mut lines = Vec::new();
        let mut buf = [0u8; 2048];
        let end = std::time::Instant::now() + Duration::from_secs(3);
        while lines.len() < 6 && std::time::Instant::now() < end {
            if let Ok(k) = logs.recv(&mut buf) {
                let l = String::from_utf8_lossy(&buf[..k]).trim_end().to_string();
                let masked: Vec<String> = l
                    .split(' ')
                    .map(|w| {
                        if w.contains('/') && w.split('/').all(|t| t.parse::<i64>().is_ok()) {
                            w.split('/')
                                .map(|t| if t == "-1" { "-1" } else { "n" })
                                .collect::<Vec<_>>()
                                .join("/")
                        } else {
                            w.to_string()
                        }
                    })
                    .collect();
                lines.push(masked.join(" "));
            }
        }
        lines.sort();
        out.extend(lines);
        out
    });
    assert_eq!(
        got,
        [
            "port0 from None => \"b1\"",
            "port1 from None => \"b2\"",
            "port0 from Some(127.0.0.2) => \"b3\"",
            "port1 from Some(127.0.0.2) => \"b2\"",
            "port0 from Some(127.0.0.3) => \"error ConnectionReset\"",
            "port0 from Some(127.0.0.4) => \"\"",
            "port0 from Some(127.0.0.5) => \"b3\"",
            "127.0.0.1 ft b1/b1 n/n --",
            "127.0.0.1 ft b2/b2 n/n --",
            "127.0.0.2 ft b2/b2 n/n --",
            "127.0.0.2 ft b3/b3 n/n --",
            "127.0.0.4 ft ft/<NOSRV> -1/-1 PR",
            "127.0.0.5 ft b3/b3 n/n --",
        ]
    );
}

/// Converters in rule arguments and ACLs: `field`, `word`, `regsub`, `url_dec`, `lower`,
/// `map`/`map_beg` (map files), `length`, and a map-driven dynamic `use_backend`.
#[test]
fn converters_match_haproxy() {
    let got = differential("converters_match_haproxy", |imp| {
        let dir = TempDir::new("aclconv");
        let p = free_ports(3);
        let a = Backend::start("a", p[1], Behavior::Http);
        let d = Backend::start("d", p[2], Behavior::Http);
        let hosts = dir.write(
            "hosts.map",
            "# host -> tag\na.example tag-a\nb.example tag-b\n",
        );
        let routes = dir.write("routes.map", "/api be_a\n/static be_d\n");
        let cfg = format!(
            "{DEFAULTS}
frontend fe
    bind 127.0.0.1:{}
    acl long_path path,length gt 12
    acl known_host req.hdr(host),lower,map({}) -m found
    http-request set-header X-Field %[path,field(2,/)]
    http-request set-header X-Field2 %[path,field(2,/,2)]
    http-request set-header X-Word %[path,word(-1,/)]
    http-request set-header X-Regsub %[path,regsub(/,_,g)]
    http-request set-header X-Dec %[query,url_dec]
    http-request set-header X-Tag %[req.hdr(host),lower,map({},none)]
    http-request set-header X-Long yes if long_path
    http-request set-header X-Known yes if known_host
    http-request set-header X-Names %[req.hdr_names(;)]
    http-request set-header X-Plain yes if !{{ ssl_fc_sni -m found }} !{{ ssl_c_used }} !{{ ssl_fc }} {{ date gt 1000000000 }} {{ rand(10) lt 10 }} !{{ stopping }}
    use_backend %[path,map_beg({})]
    default_backend be_d

backend be_a
    server a 127.0.0.1:{}

backend be_d
    server d 127.0.0.1:{}
",
            p[0],
            hosts.display(),
            hosts.display(),
            routes.display(),
            p[1],
            p[2]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let bes = [&a, &d];
        let mut out = Vec::new();
        let mut c = HttpConn::connect(p[0]).unwrap();
        for raw in [
            "GET /api/v1/users?q=a%20b%3Dc HTTP/1.1\r\nHost: A.Example\r\n\r\n",
            "GET //static//x.png HTTP/1.1\r\nHost: other\r\n\r\n",
            "GET /nothing HTTP/1.1\r\nHost: b.example\r\n\r\n",
        ] {
            let before = counts(&bes);
            let first = raw.lines().next().unwrap_or("").to_string();
            let r = c.request(raw).unwrap();
            out.push(format!("{first} => {} {}", r.status, r.server()));
            out.push(format!("  {}", seen_by(&bes, &before)));
        }
        out
    });
    let text = got.join("\n");
    for needle in [
        "a got GET /api/v1/users?q=a%20b%3Dc HTTP/1.1|host: A.Example|x-field: api|x-field2: api/v1|x-word: users|x-regsub: _api_v1_users|x-dec: q=a b=c|x-tag: tag-a|x-long: yes|x-known: yes|",
        "GET /nothing HTTP/1.1 => 200 d",
        "x-tag: tag-b|x-known: yes|",
        "x-tag: none|",
        "x-names: host;x-field;x-field2;x-word;x-regsub;x-dec;x-tag;x-long;x-known|x-plain: yes|",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

/// A TLS ClientHello with the server name `sni` (enough for SNI routing; never completed).
fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut sni_ext = Vec::new();
    let list_len = (3 + name.len()) as u16;
    sni_ext.extend_from_slice(&list_len.to_be_bytes());
    sni_ext.push(0);
    sni_ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni_ext.extend_from_slice(name);
    let mut exts = vec![0, 0];
    exts.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
    exts.extend_from_slice(&sni_ext);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// `mode tcp` content inspection: `tcp-request inspect-delay`, `req_ssl_hello_type`,
/// `req_ssl_sni` / `req.ssl_sni` routing, `req.len` and `req.payload` rejects.
#[test]
fn tls_sni_routing_matches_haproxy() {
    let got = differential("tls_sni_routing_matches_haproxy", |imp| {
        let dir = TempDir::new("aclsni");
        let p = free_ports(5);
        let _b1 = Backend::start("b1", p[1], Behavior::Name);
        let _b2 = Backend::start("b2", p[2], Behavior::Name);
        let _b3 = Backend::start("b3", p[3], Behavior::Name);
        let cfg = format!(
            "defaults
    mode tcp
    timeout connect 2s
    timeout client 5s
    timeout server 5s

frontend ft
    bind 127.0.0.1:{}
    tcp-request inspect-delay 2s
    tcp-request content accept if {{ req_ssl_hello_type 1 }}
    tcp-request content reject if {{ req.len gt 0 }} {{ req.payload(0,4) -m bin 51554954 }}
    use_backend b2 if {{ req_ssl_sni -i a.example }}
    use_backend b3 if {{ req.ssl_sni -m end .b.example }}
    default_backend b1

frontend ft2
    bind 127.0.0.1:{}
    tcp-request inspect-delay 1500ms
    tcp-request content accept if {{ req_ssl_hello_type 1 }}
    tcp-request content reject if WAIT_END
    use_backend b2 if {{ req_ssl_sni -i a.example }}
    default_backend b1

backend b1
    server b1 127.0.0.1:{}

backend b2
    server b2 127.0.0.1:{}

backend b3
    server b3 127.0.0.1:{}
",
            p[0], p[4], p[1], p[2], p[3]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[4]]);
        let mut out = Vec::new();
        let cases: Vec<(&str, u16, Vec<u8>)> = vec![
            ("sni A.example", p[0], client_hello("A.example")),
            ("sni x.b.example", p[0], client_hello("x.b.example")),
            ("sni other.example", p[0], client_hello("other.example")),
            ("plain hello", p[0], b"hello\n".to_vec()),
            ("QUIT", p[0], b"QUIT\n".to_vec()),
            ("wait_end: sni A.example", p[4], client_hello("A.example")),
            ("wait_end: plain hello", p[4], b"hello\n".to_vec()),
            ("wait_end: nothing", p[4], Vec::new()),
            (
                "wait_end: half a hello",
                p[4],
                client_hello("A.example")[..20].to_vec(),
            ),
        ];
        for (what, port, data) in cases {
            use std::io::{Read, Write};
            let t0 = std::time::Instant::now();
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
            s.write_all(&data).unwrap();
            let mut got = Vec::new();
            let r = s.read_to_end(&mut got);
            // Loose bounds: the machine may be busy; only "held for the delay" matters.
            let held = t0.elapsed() >= Duration::from_millis(1000);
            out.push(format!(
                "{what} => {:?}{}{}",
                String::from_utf8_lossy(&got).trim(),
                if r.is_err() { " (error)" } else { "" },
                if held { " (held)" } else { "" }
            ));
        }
        out
    });
    assert_eq!(
        got,
        [
            "sni A.example => \"b2\"",
            "sni x.b.example => \"b3\"",
            "sni other.example => \"b1\"",
            "plain hello => \"b1\"",
            "QUIT => \"\"",
            "wait_end: sni A.example => \"b2\"",
            "wait_end: plain hello => \"\" (held)",
            "wait_end: nothing => \"\" (held)",
            "wait_end: half a hello => \"\" (held)",
        ]
    );
}

/// HAProxy's `option http_proxy` replacement (examples/option-http_proxy.cfg): the destination
/// comes from the absolute URI (`set-dst url_ip`, `set-dst-port url_port`), the URI is reduced to
/// its path (`set-uri %[pathq]`), and an address-less server connects there.
#[test]
fn set_dst_http_proxy_matches_haproxy() {
    let got = differential("set_dst_http_proxy_matches_haproxy", |imp| {
        let dir = TempDir::new("acldst");
        let p = free_ports(3);
        let a = Backend::start("a", p[1], Behavior::Http);
        let b = Backend::start("b", p[2], Behavior::Http);
        let cfg = format!(
            "{DEFAULTS}
frontend fe
    bind 127.0.0.1:{}
    acl forbidden_dst url_ip 192.168.0.0/16
    http-request deny if forbidden_dst
    default_backend next

backend next
    http-request deny if !METH_GET
    http-request set-dst url_ip
    http-request set-dst-port url_port
    http-request set-uri %[pathq]
    http-request set-header X-Dst %[dst]:%[dst_port]
    server next-hop 0.0.0.0
",
            p[0]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let bes = [&a, &b];
        let mut out = Vec::new();
        let mut c = HttpConn::connect(p[0]).unwrap();
        for raw in [
            format!(
                "GET http://127.0.0.1:{0}/one?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\n\r\n",
                p[1]
            ),
            format!(
                "GET http://127.0.0.1:{0}/two HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\n\r\n",
                p[2]
            ),
            "GET http://192.168.1.1/ HTTP/1.1\r\nHost: 192.168.1.1\r\n\r\n".to_string(),
            format!(
                "POST http://127.0.0.1:{0}/p HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\nContent-Length: 0\r\n\r\n",
                p[1]
            ),
        ] {
            let before = counts(&bes);
            let first = raw
                .lines()
                .next()
                .unwrap_or("")
                .replace(&p[1].to_string(), "P1")
                .replace(&p[2].to_string(), "P2");
            match c.request(&raw) {
                Ok(r) => {
                    out.push(format!("{first} => {} {}", r.status, r.server()));
                    out.push(format!(
                        "  {}",
                        seen_by(&bes, &before)
                            .replace(&p[1].to_string(), "P1")
                            .replace(&p[2].to_string(), "P2")
                    ));
                }
                Err(e) => out.push(format!("{first} => error {:?}", e.kind())),
            }
            if closed(&mut c) {
                out.push("  connection closed".into());
                c = HttpConn::connect(p[0]).unwrap();
            }
        }
        out
    });
    let text = got.join("\n");
    for needle in [
        "GET http://127.0.0.1:P1/one?x=1 HTTP/1.1 => 200 a",
        "a got GET /one?x=1 HTTP/1.1|host: 127.0.0.1:P1|x-dst: 127.0.0.1:P1|",
        "GET http://127.0.0.1:P2/two HTTP/1.1 => 200 b",
        "GET http://192.168.1.1/ HTTP/1.1 => 403 -",
        "POST http://127.0.0.1:P1/p HTTP/1.1 => 403 -",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

/// `http-request set-src` behind another proxy: the address in `X-Real-IP` becomes the
/// client's for the rest of the connection: `src`, the log's `%ci:%cp`, `X-Forwarded-For`,
/// `balance source`, a stick table keyed on `src`; `set-src-port` changes the port only.
#[test]
fn set_src_changes_the_client_address_as_in_haproxy() {
    let got = differential("set_src_changes_the_client_address_as_in_haproxy", |imp| {
        let dir = TempDir::new("aclsrc");
        let p = free_ports(3);
        let a = Backend::start("a", p[1], Behavior::Http);
        let b = Backend::start("b", p[2], Behavior::Http);
        let cfg = format!(
            "{DEFAULTS}
frontend fe
    bind 127.0.0.1:{}
    log stdout format raw local0
    log-format \"%ci:%cp %ST %b/%s\"
    option forwardfor
    stick-table type ip size 10 store http_req_cnt
    http-request set-src hdr(x-real-ip) if {{ hdr(x-real-ip) -m found }}
    http-request set-src-port int(4242) if {{ path /port }}
    http-request track-sc0 src
    http-request set-header X-Seen %[src]:%[src_port]/%[sc0_http_req_cnt]
    default_backend be

backend be
    balance source
    server a 127.0.0.1:{}
    server b 127.0.0.1:{}
",
            p[0], p[1], p[2]
        );
        let px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let bes = [&a, &b];
        let mut out = Vec::new();
        for (ip, path) in [
            ("10.1.2.3", "/"),
            ("10.1.2.3", "/"),
            ("10.9.9.9", "/"),
            ("10.0.0.7", "/"),
            ("192.168.3.4", "/"),
            ("10.1.2.3", "/port"),
            ("not-an-address", "/"),
        ] {
            let before = counts(&bes);
            let r = http_once(
                p[0],
                &format!(
                    "GET {path} HTTP/1.1\r\nHost: x\r\nX-Real-IP: {ip}\r\nConnection: close\r\n\r\n"
                ),
            )
            .unwrap();
            let seen = seen_by(&bes, &before);
            let keep = |h: &str| {
                seen.split('|')
                    .find(|l| l.to_ascii_lowercase().starts_with(h))
                    .map(|l| {
                        // The client's own port varies: masked when it is the real one.
                        let l = l.to_string();
                        if h != "x-seen" {
                            return l;
                        }
                        match l.rsplit_once(':') {
                            Some((x, port)) if port.split('/').next() != Some("4242") => {
                                let tail = port.split_once('/').map(|t| t.1).unwrap_or("");
                                format!("{x}:PORT/{tail}")
                            }
                            _ => l,
                        }
                    })
                    .unwrap_or_default()
            };
            out.push(format!(
                "{ip} {path} => {} {} [{}] [{}]",
                r.status,
                r.server(),
                keep("x-forwarded-for"),
                keep("x-seen")
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        for l in px.stdout().lines().filter(|l| l.contains('/')) {
            let (addr, rest) = l.split_once(' ').unwrap_or((l, ""));
            let (ip, port) = addr.rsplit_once(':').unwrap_or((addr, ""));
            let port = if port == "4242" { port } else { "PORT" };
            out.push(format!("log {ip}:{port} {rest}"));
        }
        out
    });
    println!("{}", got.join("\n"));
    assert!(got[0].contains("[x-seen: 10.1.2.3:PORT/1]"), "{got:?}");
}

/// `declare capture` slots, `http-request capture EXPR len N|id N` and `http-response capture
/// EXPR id N` beside header captures: the log's `%hr` and `%hs` as HAProxy writes them.
#[test]
fn capture_rules_fill_the_logged_captures_as_haproxy() {
    let p = free_ports(2);
    let _b = Backend::start("s1", p[1], Behavior::Http);
    let got = differential("capture_rules_fill_the_logged_captures_as_haproxy", |imp| {
        let dir = TempDir::new("aclcap");
        let cfg = format!(
            "{DEFAULTS}
frontend fe
    bind 127.0.0.1:{}
    log stdout format raw local0
    log-format \"%hr %hs %ST\"
    capture request header Host len 5
    declare capture request len 4
    http-request capture req.hdr(x-a) len 3
    http-request capture path id 1
    declare capture response len 6
    http-response capture res.hdr(x-r) id 0
    capture response header Server len 8
    http-request return status 200 if {{ path /local }}
    default_backend be

backend be
    server s1 127.0.0.1:{}
",
            p[0], p[1]
        );
        let px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        for raw in [
            "GET /some/path HTTP/1.1\r\nHost: hostname.example\r\nX-A: abcdef\r\nX-Reply-Header: X-R: resp-value-long\r\nX-Reply-Header: Server: nginx-test-9\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            "GET /local HTTP/1.1\r\nHost: loc\r\nX-A: zz\r\nConnection: close\r\n\r\n",
        ] {
            let _ = http_once(p[0], raw).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        px.stdout().lines().map(String::from).collect()
    });
    println!("{}", got.join("\n"));
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].starts_with("{hostn|/som|abc}"), "{got:?}");
}

/// `tcp-request connection|session|content set-src[-port]` in `mode tcp`: the whole session
/// sees the new client (log `%ci:%cp`, `balance source`, a stick table keyed on `src`).
#[test]
fn tcp_set_src_changes_the_session_client_as_in_haproxy() {
    let p = free_ports(3);
    let a = Backend::start("a", p[1], Behavior::LineEcho);
    let b = Backend::start("b", p[2], Behavior::LineEcho);
    let _ = (&a, &b);
    let got = differential(
        "tcp_set_src_changes_the_session_client_as_in_haproxy",
        |imp| {
            let dir = TempDir::new("acltsrc");
            let sock = dir.0.join("admin.sock");
            let cfg = format!(
                "global
    stats socket {} level admin
{DEFAULTS}
listen li
    mode tcp
    bind 127.0.0.1:{}
    log stdout format raw local0
    log-format \"%ci:%cp %b/%s\"
    balance source
    stick-table type ip size 10 store conn_cnt
    tcp-request connection set-src str(10.1.2.3) if {{ src 127.0.0.2 }}
    tcp-request connection set-src str(192.168.3.4) if {{ src 127.0.0.3 }}
    tcp-request session set-src-port int(4242) if {{ src 192.168.3.4 }}
    tcp-request session track-sc0 src
    tcp-request content set-src str(10.5.5.5) if {{ src 127.0.0.4 }}
    server a 127.0.0.1:{}
    server b 127.0.0.1:{}
",
                sock.display(),
                p[0],
                p[1],
                p[2]
            );
            let px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
            let mut out = Vec::new();
            for c in [2u8, 3, 4, 2] {
                let mut s =
                    connect_from(Some(std::net::Ipv4Addr::new(127, 0, 0, c)), p[0]).unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                    .unwrap();
                let mut buf = [0u8; 16];
                let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
                out.push(format!(
                    ".{c} -> {}",
                    String::from_utf8_lossy(&buf[..n]).trim()
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
            // The sessions end together: their lines in any order.
            let mut logs: Vec<String> = px
                .stdout()
                .lines()
                .map(|l| {
                    let (addr, rest) = l.split_once(' ').unwrap_or((l, ""));
                    let (ip, port) = addr.rsplit_once(':').unwrap_or((addr, ""));
                    let port = if port == "4242" { port } else { "PORT" };
                    format!("log {ip}:{port} {rest}")
                })
                .collect();
            logs.sort();
            out.extend(logs);
            let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
            std::io::Write::write_all(&mut s, b"show table li\n").unwrap();
            let mut t = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut t);
            for l in t.lines().filter(|l| l.contains("key=")) {
                let k = l
                    .split(' ')
                    .skip(1)
                    .filter(|w| !w.starts_with("exp="))
                    .collect::<Vec<_>>();
                out.push(format!("table {}", k.join(" ")));
            }
            out
        },
    );
    println!("{}", got.join("\n"));
    assert!(
        got.iter()
            .any(|l| l == "log 10.1.2.3:PORT li/a" || l == "log 10.1.2.3:PORT li/b"),
        "{got:?}"
    );
}

/// Global `set-var` / `set-var-fmt`: process-wide variables set while parsing, read by the
/// rules (`var(proc.NAME)`), a later line reading an earlier one.
#[test]
fn global_set_var_is_read_by_the_rules_as_in_haproxy() {
    let got = differential("global_set_var_is_read_by_the_rules_as_in_haproxy", |imp| {
        let dir = TempDir::new("aclgvar");
        let p = free_ports(1);
        let cfg = format!(
            "global
    set-var proc.a str(primary)
    set-var proc.b int(100)
    set-var proc.c var(proc.b)
    set-var-fmt proc.d \"x-%[var(proc.a)]-y\"
{DEFAULTS}
frontend fe
    bind 127.0.0.1:{}
    http-request return status 200 content-type text/plain lf-string \"%[var(proc.a)] %[var(proc.b)] %[var(proc.c)] %[var(proc.d)]\"
",
            p[0]
        );
        let _px = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let r = http_once(p[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        vec![format!("{} {}", r.status, r.body_str())]
    });
    assert_eq!(got, ["200 primary 100 100 x-primary-y"]);
}
