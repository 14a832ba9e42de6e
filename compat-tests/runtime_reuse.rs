//! Server connection reuse (`http-reuse`, the servers' idle connection pools), differential
//! against HAProxy 2.6: the same configuration and the same scripted client sequence through
//! both, compared on which server connection carried each request (the test server numbers
//! its accepted connections and answers with the number), how many server connections are
//! open at chosen points, and the pool columns of `show stat`.
//!
//! Script tokens: `a` a request on client connection `a` (opened on first use); `a!` one with
//! `Connection: close`; `a/b2` one for `/b2` (routed to the second backend); `-a` closes
//! client `a`; `a>` sends a request the server holds until every `>` request of the batch
//! has arrived (concurrent server connections), `a<` reads its response; `a@1`, `a@2` a
//! request that `http-request set-dst-port` sends to the first or second test server (which
//! answers `2.N`); `C` records the number of open server connections (`N+M` once the second
//! server has some); `S` records the pool columns of `show stat`; `maint`, `ready` set the
//! server's state on the CLI; `V` records `show servers conn`; `sleepMS` waits; `a#` a
//! request the server answers with a 401 and `WWW-Authenticate: NTLM`; `a/bye` a request
//! after whose answer the server closes that connection (100 ms later). In the backend lines,
//! `{P2}` is the second test server's port.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The counting test server: connection numbers, open connections, held requests.
#[derive(Default)]
struct Counts {
    accepted: usize,
    open: usize,
    /// Arrivals per hold batch.
    held: HashMap<usize, usize>,
}

struct CountServer {
    st: Arc<(Mutex<Counts>, Condvar)>,
}

impl CountServer {
    /// `tag`: the prefix of the numbers it answers.
    fn start(l: TcpListener, tag: &'static str) -> CountServer {
        let st: Arc<(Mutex<Counts>, Condvar)> = Arc::default();
        let st2 = Arc::clone(&st);
        thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { return };
                let n = {
                    let mut g = st2.0.lock().unwrap();
                    g.accepted += 1;
                    g.open += 1;
                    g.accepted
                };
                let st3 = Arc::clone(&st2);
                thread::spawn(move || {
                    serve_conn(c, tag, n, &st3);
                    st3.0.lock().unwrap().open -= 1;
                });
            }
        });
        CountServer { st }
    }

    fn open(&self) -> usize {
        self.st.0.lock().unwrap().open
    }
}

/// Answers each request with the connection number; `/hold/B/N` first waits until `N`
/// requests of batch `B` have arrived, then they are answered one after another.
fn serve_conn(c: TcpStream, tag: &str, n: usize, st: &(Mutex<Counts>, Condvar)) {
    let mut w = match c.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(c);
    loop {
        let mut first = String::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if first.is_empty() {
                first = line;
            }
        }
        let path = first.split(' ').nth(1).unwrap_or("");
        if let Some(rest) = path.strip_prefix("/hold/") {
            let mut it = rest.split('/').map(|x| x.parse::<usize>().unwrap_or(0));
            let (b, want) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            let (m, cv) = st;
            let mut g = m.lock().unwrap();
            let arrived = g.held.entry(b).or_default();
            *arrived += 1;
            let order = *arrived;
            cv.notify_all();
            let end = Instant::now() + Duration::from_secs(10);
            while g.held[&b] < want && Instant::now() < end {
                g = cv.wait_timeout(g, Duration::from_millis(50)).unwrap().0;
            }
            drop(g);
            // Answered in the order of arrival: the order the connections go idle.
            thread::sleep(Duration::from_millis(60 * order as u64));
        }
        // `/bye`: a normal keep-alive answer, then the server closes the connection once it
        // is idle (a server's keep-alive timeout).
        let bye = path == "/bye";
        let body = format!("{tag}{n}\n");
        // `/ntlm`: a connection-based authentication challenge.
        let status = if path == "/ntlm" {
            "401 Unauthorized\r\nWWW-Authenticate: NTLM"
        } else {
            "200 OK"
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
        if bye {
            thread::sleep(Duration::from_millis(100));
            return;
        }
    }
}

struct Scenario {
    name: &'static str,
    /// Lines of the backend `be` (and of `be2`).
    backend: &'static str,
    /// Options of the servers; `@ADDR OPTIONS` replaces their address too.
    server: &'static str,
    script: &'static str,
    /// Clients connect from 127.0.0.2 (`a`), 127.0.0.3 (`b`)... (needs root for `usesrc`).
    source_per_client: bool,
    /// Lines added to the `global` section.
    global: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "sequential clients, one request each, kept open",
        backend: "",
        server: "",
        script: "a C b C c C d C e C a b c d e C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "one client, several requests",
        backend: "",
        server: "",
        script: "a a a a C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "interleaved clients",
        backend: "",
        server: "",
        script: "a b a b a C S V",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "closing clients",
        backend: "",
        server: "",
        script: "a -a C b C -b C c c C d! C e e C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "http-reuse safe",
        backend: "http-reuse safe",
        server: "",
        script: "a b C a a b b c C -a -b -c C d d C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "http-reuse aggressive",
        backend: "http-reuse aggressive",
        server: "",
        script: "a b C a a b b c C -a -b -c C d d C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "http-reuse always",
        backend: "http-reuse always",
        server: "",
        script: "a b C a a b b c C -a -b -c C d d C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "http-reuse never",
        backend: "http-reuse never",
        server: "",
        script: "a b C a a b b c C d! C -a -b -c C e e C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "concurrent connections stay pooled",
        backend: "",
        server: "",
        script: "a> b> c> a< b< c< C S V d d e e f f C S V",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "pool-max-conn 0",
        backend: "",
        server: "pool-max-conn 0",
        script: "a a C b C a> b> c> a< b< c< C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "pool-max-conn 1",
        backend: "",
        server: "pool-max-conn 1",
        script: "a a C b C a> b> c> a< b< c< C S V a b c C",
        source_per_client: false,
        global: "",
    },
    Scenario {
        // The server closes idle pooled connections (its keep-alive timeout): they leave
        // the pool at once, well before the next purge, and the next request connects anew.
        name: "server closes idle connections",
        backend: "",
        server: "",
        script: "a b -b a/bye -a sleep400 C S V c c C S -c d e -d e/bye -e sleep400 C S V f C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        // HAProxy 2.6 applies `max-reuse` to HTTP/2 server connections only (measured: the
        // same reuse pattern as without it on HTTP/1 servers, whether the connection stays
        // with its client or goes back to the pool).
        name: "max-reuse 1",
        backend: "",
        server: "max-reuse 1",
        script: "a a a C -a C b b C c c C d> e> d< e< C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "max-reuse 0 with http-reuse always",
        backend: "http-reuse always",
        server: "max-reuse 0",
        script: "a b C a a b b c C -a -b -c C d d C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "pool-low-conn 2",
        backend: "",
        server: "pool-low-conn 2",
        script: "a a C b C c C d d C e e C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        // Two idle connections, the need estimate decayed to 1 by the second purge: a
        // connection that served its second request still enters the empty safe list, the
        // next one is refused.
        name: "first safe connection of a thread",
        backend: "",
        server: "pool-purge-delay 1s",
        script: "a> b> a< b< C sleep2400 a C a C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        // A refused connection counts in the need estimate too.
        name: "refused connection",
        backend: "retries 0",
        server: "@127.0.0.1:1",
        script: "a S b S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        // NTLM makes the connection private to its session, whatever the mode.
        name: "NTLM, http-reuse safe",
        backend: "http-reuse safe",
        server: "",
        script: "a# b b C a a C S c a# c C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "NTLM, http-reuse always",
        backend: "http-reuse always",
        server: "",
        script: "a a# b b C a a C S c c C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        // ... and the session then prefers that server over round robin.
        name: "NTLM, round robin over two servers",
        backend: "balance roundrobin\n    server s2 127.0.0.1:{P2}",
        server: "",
        script: "a# a a b b b C S a a C",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "round robin over two servers without NTLM",
        backend: "balance roundrobin\n    server s2 127.0.0.1:{P2}",
        server: "",
        script: "a a a b b b C S a a C",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "prefer-last-server, http-reuse never",
        backend: "balance roundrobin\n    http-reuse never\n    option prefer-last-server\n    server s2 127.0.0.1:{P2}",
        server: "",
        script: "a a a b b b C S a a C",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "prefer-last-server, http-reuse safe",
        backend: "balance roundrobin\n    option prefer-last-server\n    server s2 127.0.0.1:{P2}",
        server: "",
        script: "a a a b b b C S a a C",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "pool-purge-delay 0",
        backend: "",
        server: "pool-purge-delay 0",
        script: "a a C b b C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "http-reuse never with pool-max-conn 0",
        backend: "http-reuse never",
        server: "pool-max-conn 0",
        script: "a a C b b C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "backend switching",
        backend: "",
        server: "",
        script: "a a/b2 a a/b2 C b b/b2 C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "maintenance closes idle connections",
        backend: "",
        server: "",
        script: "a b C maint C ready a C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "http-reuse never, maintenance",
        backend: "http-reuse never",
        server: "",
        script: "a b C maint C ready a C S",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "set-dst to an address-less server",
        backend: "http-request set-dst-port hdr(x-dst-port)\n    http-request set-dst str(127.0.0.1)",
        server: "@0.0.0.0:0",
        script: "a@1 a@2 a@1 a@2 b@2 b@1 b@2 C S V c@1 c@1 C",
        source_per_client: false,
        global: "",
    },
    Scenario {
        name: "usesrc clientip",
        backend: "source 0.0.0.0 usesrc clientip",
        server: "",
        script: "a b a b a C S",
        source_per_client: true,
        global: "",
    },
    Scenario {
        name: "usesrc clientip, http-reuse always",
        backend: "http-reuse always\n    source 0.0.0.0 usesrc clientip",
        server: "",
        script: "a b a b a C S",
        source_per_client: true,
        global: "",
    },
    Scenario {
        name: "fd ratios",
        backend: "",
        server: "",
        script: "a b c d e f g h i j k C S l C S m C S n C S o C S p C S q C S r C S s C S",
        source_per_client: false,
        global: "maxconn 20",
    },
    Scenario {
        // Above the low ratio only the first connection of the thread's lists stays idle,
        // below the high one; then the same without the low ratio's limit.
        name: "fd ratios, low 10 high 90",
        backend: "",
        server: "",
        script: "a> b> a< b< C S c> d> e> c< d< e< C S",
        source_per_client: false,
        global: "maxconn 20\n    tune.pool-low-fd-ratio 10\n    tune.pool-high-fd-ratio 90",
    },
    Scenario {
        name: "fd ratios, low 90 high 90",
        backend: "",
        server: "",
        script: "a> b> a< b< C S c> d> e> c< d< e< C S",
        source_per_client: false,
        global: "maxconn 20\n    tune.pool-low-fd-ratio 90\n    tune.pool-high-fd-ratio 90",
    },
];

/// The `show stat` columns compared.
const POOL_COLS: &[&str] = &[
    "connect",
    "reuse",
    "srv_icur",
    "src_ilim",
    "idle_conn_cur",
    "safe_conn_cur",
    "used_conn_cur",
    "need_conn_est",
];

fn show_stat(sock: &std::path::Path) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("stats socket");
    s.write_all(b"show stat\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or("")
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let mut rows = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() < 2 || f[1] != "s1" {
            continue;
        }
        let cols: Vec<String> = POOL_COLS
            .iter()
            .map(|c| {
                let i = header.iter().position(|h| h == c).expect("column");
                format!("{c}={}", f.get(i).unwrap_or(&""))
            })
            .collect();
        rows.push(format!("{}/s1 {}", f[0], cols.join(" ")));
    }
    rows.join("; ")
}

/// The open server connections, once they have settled (the proxies close with an RST,
/// which the server sees at once).
fn settled_open(srv: &CountServer) -> usize {
    thread::sleep(Duration::from_millis(150));
    let mut last = srv.open();
    for _ in 0..10 {
        thread::sleep(Duration::from_millis(30));
        let n = srv.open();
        if n == last {
            return n;
        }
        last = n;
    }
    last
}

fn config(imp_dir: &TempDir, port: u16, srv_port: u16, sc: &Scenario) -> String {
    config2(imp_dir, port, srv_port, 0, sc)
}

fn config2(imp_dir: &TempDir, port: u16, srv_port: u16, srv2_port: u16, sc: &Scenario) -> String {
    let d = imp_dir.0.display();
    let be = sc.backend.replace("{P2}", &srv2_port.to_string());
    let srv = match sc.server.strip_prefix('@') {
        Some(s) => s.to_string(),
        None => format!("127.0.0.1:{srv_port} {}", sc.server),
    };
    let global = sc.global;
    format!(
        "global
    nbthread 1
    stats socket {d}/admin.sock level admin
    {global}
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
frontend fe
    bind 127.0.0.1:{port}
    use_backend be2 if {{ path_beg /b2 }}
    default_backend be
backend be
    {be}
    server s1 {srv}
backend be2
    {be}
    server s1 {srv}
"
    )
}

fn run(imp: Impl, sc: &Scenario) -> Vec<String> {
    let dir = TempDir::new("runtime-reuse");
    let p = free_ports(3);
    let srv = CountServer::start(TcpListener::bind(("127.0.0.1", p[1])).unwrap(), "");
    let srv2 = CountServer::start(TcpListener::bind(("127.0.0.1", p[2])).unwrap(), "2.");
    let cfg = config2(&dir, p[0], p[1], p[2], sc);
    let _proxy = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
    let sock = dir.0.join("admin.sock");
    let mut clients: HashMap<String, HttpConn> = HashMap::new();
    let mut out = Vec::new();
    let mut batch = 0;
    let mut batch_size = 0;
    let mut in_batch = false;
    let tokens: Vec<&str> = sc.script.split_whitespace().collect();
    let connect = |name: &str| {
        let src = sc
            .source_per_client
            .then(|| Ipv4Addr::new(127, 0, 0, 2 + (name.as_bytes()[0] - b'a')));
        HttpConn::connect_from(src, p[0]).expect("connect to the proxy")
    };
    for (i, t) in tokens.iter().enumerate() {
        if *t == "C" {
            let n = settled_open(&srv);
            match srv2.open() {
                0 => out.push(format!("open={n}")),
                m => out.push(format!("open={n}+{m}")),
            }
            continue;
        }
        if *t == "V" {
            let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("stats socket");
            s.write_all(b"show servers conn\n").unwrap();
            let mut ans = String::new();
            let _ = s.read_to_string(&mut ans);
            let ans = ans
                .trim()
                .replace(&format!(" {} ", p[1]), " P1 ")
                .replace(&format!(" {} ", p[2]), " P2 ");
            out.push(ans.lines().collect::<Vec<_>>().join(" / "));
            continue;
        }
        if let Some(ms) = t.strip_prefix("sleep") {
            thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            continue;
        }
        if *t == "maint" || *t == "ready" {
            let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("stats socket");
            writeln!(s, "set server be/s1 state {t}").unwrap();
            let mut ans = String::new();
            let _ = s.read_to_string(&mut ans);
            out.push(format!("{t}:{}", ans.trim()));
            continue;
        }
        if *t == "S" {
            out.push(show_stat(&sock));
            continue;
        }
        if let Some(name) = t.strip_prefix('-') {
            clients.remove(name);
            continue;
        }
        if let Some(name) = t.strip_suffix('>') {
            if !in_batch {
                in_batch = true;
                batch += 1;
                batch_size = tokens[i..].iter().take_while(|x| x.ends_with('>')).count();
            }
            let c = clients
                .entry(name.to_string())
                .or_insert_with(|| connect(name));
            c.send(&format!(
                "GET /hold/{batch}/{batch_size} HTTP/1.1\r\nHost: t\r\n\r\n"
            ))
            .unwrap();
            // Each held request on its own server connection, in order.
            thread::sleep(Duration::from_millis(50));
            continue;
        }
        in_batch = false;
        if let Some(name) = t.strip_suffix('<') {
            let c = clients.get_mut(name).expect("a sent request");
            let r = c.read_response(false).expect("held response");
            out.push(format!("{t}{}", r.body_str().trim()));
            continue;
        }
        let (name, req) = if let Some(n) = t.strip_suffix('#') {
            (n, "GET /ntlm HTTP/1.1\r\nHost: t\r\n\r\n".to_string())
        } else if let Some(n) = t.strip_suffix('!') {
            (
                n,
                "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_string(),
            )
        } else if let Some((n, k)) = t.split_once('@') {
            let port = if k == "2" { p[2] } else { p[1] };
            (
                n,
                format!("GET / HTTP/1.1\r\nHost: t\r\nX-Dst-Port: {port}\r\n\r\n"),
            )
        } else if let Some((n, path)) = t.split_once('/') {
            (n, format!("GET /{path} HTTP/1.1\r\nHost: t\r\n\r\n"))
        } else {
            (*t, "GET / HTTP/1.1\r\nHost: t\r\n\r\n".to_string())
        };
        let c = clients
            .entry(name.to_string())
            .or_insert_with(|| connect(name));
        let r = c.request(&req).expect("response");
        if r.status == 200 {
            out.push(format!("{t}{}", r.body_str().trim()));
        } else if r.status == 401 {
            out.push(format!("{t}{}:401", r.body_str().trim()));
        } else {
            out.push(format!("{t}:{}", r.status));
            clients.remove(name);
            continue;
        }
        if t.ends_with('!') {
            clients.remove(name);
        }
    }
    out
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn reuse_patterns_match_haproxy() {
    let imps = Impl::all("runtime_reuse");
    let root = is_root();
    let mut failures = Vec::new();
    for sc in SCENARIOS {
        if sc.source_per_client && !root {
            println!("SKIPPED (needs root for usesrc) {}", sc.name);
            continue;
        }
        let results: Vec<(Impl, Vec<String>)> = imps.iter().map(|&i| (i, run(i, sc))).collect();
        for (imp, r) in &results {
            println!("{:?} {}: {}", imp, sc.name, r.join(" | "));
        }
        if let [(_, r), (_, h)] = &results[..]
            && r != h
        {
            failures.push(format!(
                "{}:\n  rhaproxy: {}\n  haproxy:  {}",
                sc.name,
                r.join(" | "),
                h.join(" | ")
            ));
        }
    }
    assert!(failures.is_empty(), "differences:\n{}", failures.join("\n"));
}

/// Many sequential keep-alive clients, each one request and kept open: the server sees about
/// one connection (not one per client).
#[test]
fn sequential_keepalive_clients_share_one_server_connection() {
    let sc = Scenario {
        name: "200 sequential clients",
        backend: "",
        server: "",
        script: "",
        source_per_client: false,
        global: "",
    };
    for imp in Impl::all("runtime_reuse") {
        let dir = TempDir::new("runtime-reuse-seq");
        let p = free_ports(2);
        let srv = CountServer::start(TcpListener::bind(("127.0.0.1", p[1])).unwrap(), "");
        let _proxy = ProxyProc::start(imp, &dir, &config(&dir, p[0], p[1], &sc), &[p[0]]);
        let mut held = Vec::new();
        for _ in 0..200 {
            let mut c = HttpConn::connect(p[0]).unwrap();
            assert_eq!(c.get("/").unwrap().status, 200);
            held.push(c);
        }
        let open = settled_open(&srv);
        println!("{imp:?}: {open} server connections open for 200 idle clients");
        assert!(open <= 1, "{imp:?}: {open} server connections");
    }
}

/// `pool-purge-delay`: idle connections beyond the recent need are closed by halves, one
/// purge period after another (4 idle: 4, 4, 2, 0 after the third and fourth purges).
#[test]
fn purge_closes_idle_connections_like_haproxy() {
    let sc = Scenario {
        name: "purge",
        backend: "",
        server: "pool-purge-delay 400ms",
        script: "",
        source_per_client: false,
        global: "",
    };
    let mut seen = Vec::new();
    for imp in Impl::all("runtime_reuse") {
        let dir = TempDir::new("runtime-reuse-purge");
        let p = free_ports(2);
        let srv = CountServer::start(TcpListener::bind(("127.0.0.1", p[1])).unwrap(), "");
        let _proxy = ProxyProc::start(imp, &dir, &config(&dir, p[0], p[1], &sc), &[p[0]]);
        let mut cs: Vec<HttpConn> = (0..4).map(|_| HttpConn::connect(p[0]).unwrap()).collect();
        for c in cs.iter_mut() {
            c.send("GET /hold/1/4 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        }
        for c in cs.iter_mut() {
            assert_eq!(c.read_response(false).unwrap().status, 200);
        }
        let t0 = Instant::now();
        // The distinct counts seen, and when the last connection went.
        let mut counts = vec![srv.open()];
        let mut gone_at = None;
        while t0.elapsed() < Duration::from_secs(6) {
            thread::sleep(Duration::from_millis(20));
            let n = srv.open();
            if counts.last() != Some(&n) {
                counts.push(n);
            }
            if n == 0 {
                gone_at = Some(t0.elapsed());
                break;
            }
        }
        println!("{imp:?}: counts {counts:?}, all closed after {gone_at:?}");
        let gone = gone_at.unwrap_or_else(|| panic!("{imp:?}: idle connections never purged"));
        // Four purges of 400 ms.
        assert!(
            gone >= Duration::from_millis(1400) && gone < Duration::from_millis(2600),
            "{imp:?}: purged after {gone:?}"
        );
        seen.push(counts);
    }
    if let [r, h] = &seen[..] {
        assert_eq!(r, h, "purge steps (rhaproxy, haproxy)");
    }
}

/// `nbthread 2`: each thread's pool takes its first connection, and sessions are spread over
/// the threads: sequential keep-alive clients leave one server connection per thread.
#[test]
fn two_threads_keep_one_idle_connection_each() {
    let sc = Scenario {
        name: "nbthread 2",
        backend: "",
        server: "",
        script: "",
        source_per_client: false,
        global: "",
    };
    let mut seen = Vec::new();
    for imp in Impl::all("runtime_reuse") {
        let dir = TempDir::new("runtime-reuse-nbthread");
        let p = free_ports(2);
        let srv = CountServer::start(TcpListener::bind(("127.0.0.1", p[1])).unwrap(), "");
        let cfg = config(&dir, p[0], p[1], &sc).replace("nbthread 1", "nbthread 2");
        let _proxy = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let mut held = Vec::new();
        let mut counts = Vec::new();
        for _ in 0..6 {
            let mut c = HttpConn::connect(p[0]).unwrap();
            assert_eq!(c.get("/").unwrap().status, 200);
            held.push(c);
            counts.push(settled_open(&srv));
        }
        println!("{imp:?}: open server connections after each client: {counts:?}");
        assert_eq!(counts.last(), Some(&2), "{imp:?}");
        seen.push(counts);
    }
    if let [r, h] = &seen[..] {
        assert_eq!(r, h, "(rhaproxy, haproxy)");
    }
}
