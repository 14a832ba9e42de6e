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

/// EOF from the proxy within 150 ms (a read timeout means the connection is still open).
fn closed(c: &mut HttpConn) -> bool {
    use std::io::Read;
    let _ = c.w.set_read_timeout(Some(Duration::from_millis(150)));
    let mut b = [0u8; 1];
    let r = c.r.read(&mut b);
    let _ = c.w.set_read_timeout(Some(Duration::from_secs(30)));
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
