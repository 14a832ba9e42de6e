//! Differential tests: rhaproxy's `lb::Balancer` must predict exactly the
//! server the real HAProxy picks, request by request.
//!
//! * `lb_matches_haproxy`: one haproxy runs a frontend that routes on `x-be`
//!   to one backend per variant (after `http-request set-src hdr(x-src)`),
//!   and "responder" `listen` sections answering `200` with `x-srv: <index>`.
//!   Every hash function with/without avalanche, map-based and consistent,
//!   `source` (IPv4, IPv6, IPv4-mapped), `uri` options, `url_param` (query
//!   and `check_post` bodies), `hdr` (+`use_domain_only`), `hash <expr>`,
//!   server layouts (ids, id-gap quirk, weight 0, disabled, backups with and
//!   without `allbackups`), redispatch on refused connections, and the
//!   sequential order of `roundrobin`, `static-rr`, `leastconn`, `first`.
//! * `lb_state_changes_match_haproxy`: the same while servers go to
//!   maintenance/drain and back and weights change (admin socket).
//! * `lb_concurrent_load_matches_haproxy`: test-owned servers hold requests
//!   so connection counts matter (leastconn, first, maxconn, minconn,
//!   hash-balance-factor).
//! * `lb_rdp_cookie_matches_haproxy`: `balance rdp-cookie` in TCP mode.
//! * `lb_source_accept_path_matches_haproxy`: `balance source` with real
//!   client addresses on IPv4 and dual-stack listeners.
//! * `lb_parsers_match_haproxy_check`: `balance`/`hash-type`/
//!   `hash-balance-factor` acceptance and messages against `haproxy -c`.
//!
//! Each test prints its per-variant counts and is skipped (with a message)
//! when haproxy is missing. `HAPROXY_BIN` overrides the binary.

#[path = "support/haproxy.rs"]
mod support;

use rhaproxy::lb::{
    Balancer, HashType, Headers, LbServer, RequestKey, assign_puids, parse_balance, parse_hash_type,
};
use std::fmt::Write as _;
use std::net::IpAddr;
use support::{Haproxy, HttpClient, free_ports, haproxy_binary};

#[derive(Clone)]
struct Srv {
    weight: u32,
    id: Option<u32>,
    backup: bool,
    disabled: bool,
    /// points to a closed port: connections are refused (redispatch tests)
    dead: bool,
    maxconn: Option<u32>,
    minconn: Option<u32>,
}

fn w(weight: u32) -> Srv {
    Srv {
        weight,
        id: None,
        backup: false,
        disabled: false,
        dead: false,
        maxconn: None,
        minconn: None,
    }
}
fn id(mut s: Srv, id: u32) -> Srv {
    s.id = Some(id);
    s
}
fn bk(mut s: Srv) -> Srv {
    s.backup = true;
    s
}
fn off(mut s: Srv) -> Srv {
    s.disabled = true;
    s
}
fn dead(mut s: Srv) -> Srv {
    s.dead = true;
    s
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Source,
    Uri,
    UrlParam,
    Hdr,
    Host,
    /// no key: sequential order (roundrobin, static-rr, leastconn, first)
    Order,
    /// url_param in the query or in a POST body (`check_post`)
    PostParam,
    /// `balance hash req.hdr(x-key)`: simple single values, some missing
    HashHdr,
}

struct Variant {
    name: String,
    balance: String,
    hash_type: Option<String>,
    servers: Vec<Srv>,
    allbackups: bool,
    kind: Kind,
    requests: usize,
    /// `retries 1` + `option redispatch` (dead servers are avoided once)
    redispatch: bool,
    /// `hash-balance-factor` (0 = none)
    hbf: u32,
    /// backend `fullconn` (0 = none)
    fullconn: u32,
}

fn layouts() -> Vec<(&'static str, Vec<Srv>, bool)> {
    vec![
        ("w111", vec![w(1), w(1), w(1)], false),
        ("w123", vec![w(1), w(2), w(3)], false),
        ("w10-20-30", vec![w(10), w(20), w(30)], false),
        ("w31271", vec![w(3), w(1), w(2), w(7), w(1)], false),
        (
            "explicit-ids",
            vec![id(w(1), 7), id(w(2), 3), id(w(1), 12), id(w(3), 5)],
            false,
        ),
        ("id-gap-quirk", vec![w(1), id(w(1), 1), w(1), w(2)], false),
        ("weight0", vec![w(1), w(0), w(2), w(1)], false),
        ("disabled", vec![w(1), off(w(1)), w(1), w(2)], false),
        (
            "backups-first",
            vec![off(w(1)), bk(w(1)), bk(w(2)), bk(w(1))],
            false,
        ),
        (
            "backups-all",
            vec![off(w(1)), bk(w(1)), bk(w(2)), bk(w(1))],
            true,
        ),
        (
            "backup-map-quirk",
            vec![off(w(1)), bk(w(2)), bk(w(4)), bk(w(1))],
            false,
        ),
        (
            "active-with-backup",
            vec![id(w(2), 20), w(5), bk(w(3)), w(1), w(3)],
            true,
        ),
        ("single", vec![w(3)], false),
    ]
}

fn variants() -> Vec<Variant> {
    let mut v = Vec::new();
    let mut add = |name: String,
                   balance: &str,
                   ht: Option<&str>,
                   servers: Vec<Srv>,
                   allb: bool,
                   kind: Kind,
                   requests: usize| {
        let servers_have_dead = servers.iter().any(|s| s.dead);
        v.push(Variant {
            name,
            balance: balance.to_string(),
            hash_type: ht.map(str::to_string),
            servers,
            allbackups: allb,
            kind,
            requests,
            redispatch: servers_have_dead,
            hbf: 0,
            fullconn: 0,
        })
    };
    const N: usize = 500;
    // balance source: every layout, map-based and consistent.
    for (lname, servers, allb) in layouts() {
        for ht in ["map-based", "consistent"] {
            add(
                format!("source/{ht}/{lname}"),
                "source",
                Some(ht),
                servers.clone(),
                allb,
                Kind::Source,
                N,
            );
        }
    }
    // balance source: other hash-type forms (function ignored, avalanche kept)
    for ht in [
        "map-based sdbm avalanche",
        "map-based crc32",
        "consistent sdbm",
        "consistent djb2 avalanche",
        "consistent wt6",
    ] {
        for (lname, servers) in [
            ("w123", vec![w(1), w(2), w(3)]),
            (
                "explicit-ids",
                vec![id(w(1), 7), id(w(2), 3), id(w(1), 12), id(w(3), 5)],
            ),
        ] {
            add(
                format!("source/{ht}/{lname}"),
                "source",
                Some(ht),
                servers,
                false,
                Kind::Source,
                N,
            );
        }
    }
    // Every hash function, with and without avalanche, map and consistent:
    // balance uri and url_param on a 5-server weighted layout.
    let five = vec![w(3), w(1), w(2), w(7), w(1)];
    for method in ["map-based", "consistent"] {
        for f in ["sdbm", "djb2", "wt6", "crc32"] {
            for aval in ["", " avalanche"] {
                let ht = format!("{method} {f}{aval}");
                add(
                    format!("uri/{ht}"),
                    "uri",
                    Some(&ht),
                    five.clone(),
                    false,
                    Kind::Uri,
                    N,
                );
                add(
                    format!("url_param/{ht}"),
                    "url_param userid",
                    Some(&ht),
                    five.clone(),
                    false,
                    Kind::UrlParam,
                    N,
                );
            }
        }
    }
    // url_param with check_post: POST bodies
    for ht in ["map-based", "consistent", "map-based wt6 avalanche"] {
        add(
            format!("url_param check_post/{ht}"),
            "url_param userid check_post",
            Some(ht),
            five.clone(),
            false,
            Kind::PostParam,
            N,
        );
    }
    // balance hash <expr>: the runtime evaluates the expression
    for ht in ["map-based", "consistent", "map-based djb2 avalanche"] {
        add(
            format!("hash req.hdr(x-key)/{ht}"),
            "hash req.hdr(x-key)",
            Some(ht),
            five.clone(),
            false,
            Kind::HashHdr,
            N,
        );
        add(
            format!("hash req.hdr(x-key)/{ht}/backup-map-quirk"),
            "hash req.hdr(x-key)",
            Some(ht),
            vec![off(w(1)), bk(w(2)), bk(w(4)), bk(w(1))],
            false,
            Kind::HashHdr,
            N,
        );
    }
    // uri options
    for opts in [
        "uri whole",
        "uri len 5",
        "uri depth 2",
        "uri depth 1",
        "uri path-only",
        "uri whole path-only",
        "uri len 9 depth 3 whole",
        "uri path-only len 7",
        "uri path-only depth 1 whole",
    ] {
        for ht in ["map-based", "consistent"] {
            add(
                format!("{opts}/{ht}"),
                opts,
                Some(ht),
                vec![w(1), w(2), w(3)],
                false,
                Kind::Uri,
                N,
            );
        }
    }
    // uri on every layout (consistent: ids matter)
    for (lname, servers, allb) in layouts() {
        add(
            format!("uri/consistent/{lname}"),
            "uri",
            Some("consistent"),
            servers,
            allb,
            Kind::Uri,
            N,
        );
    }
    // headers
    for ht in [
        "map-based",
        "consistent",
        "map-based djb2",
        "consistent wt6 avalanche",
        "map-based crc32 avalanche",
    ] {
        add(
            format!("hdr(x-key)/{ht}"),
            "hdr(x-key)",
            Some(ht),
            five.clone(),
            false,
            Kind::Hdr,
            N,
        );
        add(
            format!("hdr(host) use_domain_only/{ht}"),
            "hdr(host) use_domain_only",
            Some(ht),
            five.clone(),
            false,
            Kind::Host,
            N,
        );
    }
    add(
        "hdr(host)/consistent".into(),
        "hdr(host)",
        Some("consistent"),
        five.clone(),
        false,
        Kind::Host,
        N,
    );
    // redispatch: a refused connection is retried once on another server
    // chosen with the failed one to avoid (consistent: walk the ring;
    // map-based: avoid is ignored, so the same dead server => 503).
    for ht in ["consistent", "map-based", "consistent djb2"] {
        for (lname, servers) in [
            ("one-dead", vec![w(1), dead(w(2)), w(1), w(1)]),
            ("two-dead", vec![dead(w(1)), w(1), dead(w(1)), id(w(3), 9)]),
        ] {
            for (balance, kind) in [
                ("source", Kind::Source),
                ("uri", Kind::Uri),
                ("roundrobin", Kind::Order),
                ("leastconn", Kind::Order),
                ("static-rr", Kind::Order),
            ] {
                add(
                    format!("redispatch/{balance}/{ht}/{lname}"),
                    balance,
                    Some(ht),
                    servers.clone(),
                    false,
                    kind,
                    120,
                );
            }
        }
    }
    // sequential orders
    let mut order_layouts: Vec<(&str, Vec<Srv>, bool)> = layouts();
    order_layouts.push(("w531", vec![w(5), w(3), w(1)], false));
    order_layouts.push(("w256-1", vec![w(256), w(1)], false));
    order_layouts.push(("w2-3-5-7", vec![w(2), w(3), w(5), w(7)], false));
    for (lname, servers, allb) in order_layouts {
        for algo in ["roundrobin", "static-rr", "leastconn", "first"] {
            add(
                format!("{algo}/{lname}"),
                algo,
                None,
                servers.clone(),
                allb,
                Kind::Order,
                300,
            );
        }
    }
    v
}

/// Small deterministic generator.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
    fn word(&mut self, max: u32) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_.~ABCDEFXYZ";
        let len = 1 + self.below(max);
        (0..len)
            .map(|_| A[self.below(A.len() as u32) as usize] as char)
            .collect()
    }
}

/// One generated request: x-src, uri, extra headers, POST body.
struct Req {
    src: Option<String>,
    uri: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

fn gen_request(kind: Kind, n: usize, rng: &mut Lcg) -> Req {
    let mut r = Req {
        src: None,
        uri: b"/".to_vec(),
        headers: vec![],
        body: None,
    };
    match kind {
        Kind::Source => {
            let ip: IpAddr = match (n, n % 10) {
                (0, _) => "0.0.0.0".parse().unwrap(),
                (1, _) => "255.255.255.255".parse().unwrap(),
                (2, _) => "10.0.0.1".parse().unwrap(),
                (3, _) => "2001:db8::1".parse().unwrap(),
                (4, _) => "::ffff:10.0.0.1".parse().unwrap(),
                (_, 0..=6) => IpAddr::V4(rng.next().to_be_bytes().into()),
                (_, 7 | 8) => {
                    let mut o = [0u8; 16];
                    for c in o.chunks_mut(4) {
                        c.copy_from_slice(&rng.next().to_be_bytes());
                    }
                    if rng.below(2) == 0 {
                        o[0] = 0x20;
                        o[1] = 0x01;
                    }
                    IpAddr::V6(o.into())
                }
                _ => IpAddr::V6(std::net::Ipv4Addr::from(rng.next()).to_ipv6_mapped()),
            };
            r.src = Some(ip.to_string());
        }
        Kind::Uri => {
            let mut u = String::new();
            if n % 13 == 5 {
                // absolute form; HAProxy requires a matching Host header
                let mut auth = format!("h{}.example.com", rng.below(100));
                if n % 26 == 5 {
                    auth.push_str(":8080");
                }
                write!(u, "http://{auth}").unwrap();
                r.headers.push(("host".into(), auth.into_bytes()));
            }
            let depth = rng.below(5);
            for _ in 0..depth {
                write!(u, "/{}", rng.word(8)).unwrap();
            }
            if depth == 0 || rng.below(4) == 0 {
                u.push('/');
            }
            if rng.below(2) == 0 {
                write!(u, "?{}={}", rng.word(4), rng.word(6)).unwrap();
                if rng.below(3) == 0 {
                    write!(u, "/{}&a=%2F{}", rng.word(3), rng.word(3)).unwrap();
                }
            }
            r.uri = u.into_bytes();
        }
        Kind::UrlParam => {
            let val = match n % 11 {
                0 => String::new(),
                _ => rng.word(10),
            };
            let u = match rng.below(8) {
                0 => format!("/p/{}", rng.word(5)),
                1 => format!("/p?xuserid={val}&a=1"),
                2 => format!("/p?userid={val}"),
                3 => format!("/p?a={}&userid={val}", rng.word(4)),
                4 => format!("/p?a={}&userid={val}&b={}", rng.word(4), rng.word(4)),
                5 => "/p?userid".to_string(),
                6 => format!("/p?USERID={val}&userid={}", rng.word(3)),
                _ => format!("/{}?userid={val}&userid=zz", rng.word(4)),
            };
            r.uri = u.into_bytes();
        }
        Kind::Hdr => match n % 12 {
            0 => {}
            1 => r.headers.push(("x-key".into(), vec![])),
            2 => r.headers.push((
                "x-key".into(),
                format!("{}, {}", rng.word(6), rng.word(6)).into_bytes(),
            )),
            3 => r.headers.push((
                "x-key".into(),
                format!("\"{},{}\"", rng.word(4), rng.word(4)).into_bytes(),
            )),
            4 => {
                r.headers.push(("X-Key".into(), rng.word(5).into_bytes()));
                r.headers.push(("x-key".into(), rng.word(5).into_bytes()));
            }
            5 => {
                let mut v = rng.word(5).into_bytes();
                v.push(0xe9);
                v.push(0x80 + rng.below(0x7f) as u8);
                r.headers.push(("x-key".into(), v));
            }
            _ => r.headers.push(("x-key".into(), rng.word(12).into_bytes())),
        },
        Kind::Host => {
            let h = match n % 8 {
                0 => format!("www.{}.com", rng.word(8)),
                1 => format!("{}.org", rng.word(8)),
                2 => format!("a.b.{}.net", rng.word(6)),
                3 => format!("localhost{}", rng.below(1000)),
                4 => format!("{}.example.com:8{}", rng.word(5), rng.below(1000)),
                5 => format!(
                    "10.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    rng.below(256)
                ),
                6 => format!("{}.{}", rng.word(6), rng.word(3)),
                _ => format!("{}.co.uk", rng.word(7)),
            };
            r.headers.push(("host".into(), h.into_bytes()));
            // HAProxy 2.6's use_domain_only scan reads the byte right after
            // the value; with stale buffer data there ('.') it hashes the TLD.
            // A following header keeps that byte deterministic.
            r.headers.push(("x-after".into(), b"1".to_vec()));
        }
        Kind::HashHdr => {
            if n % 10 != 3 {
                r.headers.push(("x-key".into(), rng.word(12).into_bytes()));
            }
        }
        Kind::PostParam => {
            let val = rng.word(10);
            r.uri = match rng.below(5) {
                0 => format!("/p?userid={}", rng.word(6)).into_bytes(),
                1 => b"/p?a=1".to_vec(),
                _ => b"/p".to_vec(),
            };
            let body = match n % 9 {
                0 => None,
                1 => Some(b"a=1&b=2".to_vec()),
                2 => Some(format!("userid= {val}").into_bytes()),
                3 => Some(format!("userid=\x01{val}").into_bytes()),
                4 => Some(format!("x=1&userid={val}\x02zz&y=2").into_bytes()),
                5 => Some(b"userid=&x=1".to_vec()),
                _ => Some(format!("a={}&userid={val}&b=3", rng.word(3)).into_bytes()),
            };
            r.body = body;
        }
        Kind::Order => {}
    }
    r
}

fn config(vs: &[Variant], fe_port: u16, resp_ports: &[u16], dead_port: u16) -> String {
    config_with(vs, fe_port, resp_ports, dead_port, true)
}

/// `responders`: add the `listen` sections answering on `resp_ports`
/// (false when the test runs its own servers there).
fn config_with(
    vs: &[Variant],
    fe_port: u16,
    resp_ports: &[u16],
    dead_port: u16,
    responders: bool,
) -> String {
    let mut c = String::new();
    c.push_str(
        "global\n  nbthread 1\n  maxconn 2000\n\ndefaults\n  mode http\n  timeout client 30s\n  timeout server 30s\n  timeout connect 5s\n\n",
    );
    writeln!(
        c,
        "frontend fe\n  bind 127.0.0.1:{fe_port}\n  http-request set-src hdr(x-src) if {{ req.hdr(x-src) -m found }}\n  use_backend %[req.hdr(x-be)]\n"
    )
    .unwrap();
    for (i, v) in vs.iter().enumerate() {
        writeln!(c, "backend v{i}\n  # {}\n  balance {}", v.name, v.balance).unwrap();
        if let Some(ht) = &v.hash_type {
            writeln!(c, "  hash-type {ht}").unwrap();
        }
        if v.allbackups {
            c.push_str("  option allbackups\n");
        }
        if v.redispatch {
            c.push_str("  retries 1\n  option redispatch\n  timeout connect 20ms\n");
        }
        if v.hbf > 0 {
            writeln!(c, "  hash-balance-factor {}", v.hbf).unwrap();
        }
        if v.fullconn > 0 {
            writeln!(c, "  fullconn {}", v.fullconn).unwrap();
        }
        if !responders {
            c.push_str("  http-reuse never\n");
        }
        for (k, s) in v.servers.iter().enumerate() {
            let port = if s.dead { dead_port } else { resp_ports[k] };
            write!(c, "  server s{k} 127.0.0.1:{port} weight {}", s.weight).unwrap();
            if let Some(id) = s.id {
                write!(c, " id {id}").unwrap();
            }
            if s.backup {
                c.push_str(" backup");
            }
            if s.disabled {
                c.push_str(" disabled");
            }
            if let Some(m) = s.maxconn {
                write!(c, " maxconn {m}").unwrap();
            }
            if let Some(m) = s.minconn {
                write!(c, " minconn {m}").unwrap();
            }
            c.push('\n');
        }
        c.push('\n');
    }
    for (k, p) in resp_ports.iter().enumerate().filter(|_| responders) {
        writeln!(
            c,
            "listen r{k}\n  bind 127.0.0.1:{p}\n  http-request return status 200 hdr x-srv {k}\n"
        )
        .unwrap();
    }
    c
}

fn model(v: &Variant) -> Balancer {
    let puids = assign_puids(&v.servers.iter().map(|s| s.id).collect::<Vec<_>>());
    let servers = v
        .servers
        .iter()
        .zip(puids)
        .map(|(s, puid)| LbServer {
            puid,
            weight: s.weight,
            backup: s.backup,
            maxconn: s.maxconn,
            disabled: s.disabled,
        })
        .collect();
    let words: Vec<&str> = v.balance.split_whitespace().collect();
    let algo = parse_balance(&words).expect("balance");
    let ht = match &v.hash_type {
        Some(h) => parse_hash_type(&h.split_whitespace().collect::<Vec<_>>()).expect("hash-type"),
        None => HashType::MAP_BASED,
    };
    let b = Balancer::new(servers, algo, ht, v.allbackups, v.hbf);
    b.set_fullconn(v.fullconn);
    for (i, s) in v.servers.iter().enumerate() {
        b.set_minconn(i, s.minconn.unwrap_or(0));
    }
    b
}

#[test]
fn lb_matches_haproxy() {
    let bin = match haproxy_binary() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("SKIPPED lb_haproxy differential test: haproxy is not available ({why})");
            return;
        }
    };
    let vs = variants();
    let nresp = vs.iter().map(|v| v.servers.len()).max().unwrap();
    // the last port stays closed: servers pointing there are refused
    let ports = free_ports(nresp + 2);
    let (fe, resp, dead_port) = (ports[0], &ports[1..=nresp], ports[nresp + 1]);
    let cfg = config(&vs, fe, resp, dead_port);
    let mut wait = vec![fe];
    wait.extend_from_slice(resp);
    let hap = Haproxy::start(&bin, &cfg, &wait).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("haproxy pid {} started, {} variants", hap.pid(), vs.len());

    let mut client = HttpClient::new(fe);
    let mut stats = Stats::default();
    for (i, v) in vs.iter().enumerate() {
        let script = [Step::Req(v.requests)];
        run_variant(&hap, &mut client, i, v, &script, &mut stats);
    }
    drop(hap);
    stats.finish("lb_haproxy", vs.len());
}

#[derive(Default)]
struct Stats {
    total: usize,
    bad: usize,
    failures: String,
    report: String,
}

impl Stats {
    fn finish(&self, what: &str, variants: usize) {
        eprintln!("{}", self.report);
        eprintln!(
            "{what}: {variants} variants, {} requests compared, {} mismatches",
            self.total, self.bad
        );
        assert!(self.bad == 0, "mismatches:\n{}", self.failures);
    }
}

/// One step of a variant's script.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// send this many requests
    Req(usize),
    /// `set server <be>/s<k> state maint`
    Down(usize),
    /// `set server <be>/s<k> state ready`
    Up(usize),
    /// `set server <be>/s<k> weight <w>`
    Weight(usize, u32),
    /// `set server <be>/s<k> state drain` (no new traffic: like down)
    Drain(usize),
}

/// Send one command to haproxy's admin socket and return the answer.
fn admin(hap: &Haproxy, cmd: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(hap.dir.join("admin.sock"))
        .unwrap_or_else(|e| panic!("admin socket: {e}"));
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn run_variant(
    hap: &Haproxy,
    client: &mut HttpClient,
    i: usize,
    v: &Variant,
    script: &[Step],
    stats: &mut Stats,
) {
    let b = model(v);
    let mut rng = Lcg(0x5eed_0000 + i as u64);
    let mut counts = vec![0usize; v.servers.len()];
    let mut fallback = 0usize;
    let mut redispatched = 0usize;
    let mut bad = 0usize;
    let mut n = 0usize;
    let mut requests = 0usize;
    let be = format!("v{i}");
    for step in script {
        let count = match *step {
            Step::Req(c) => c,
            Step::Drain(k) => {
                let out = admin(hap, &format!("set server {be}/s{k} state drain"));
                assert!(out.trim().is_empty(), "admin command answered {out:?}");
                b.set_usable(k, false);
                continue;
            }
            Step::Weight(k, wt) => {
                let out = admin(hap, &format!("set server {be}/s{k} weight {wt}"));
                assert!(out.trim().is_empty(), "admin command answered {out:?}");
                b.set_weight(k, wt);
                continue;
            }
            Step::Down(k) | Step::Up(k) => {
                let up = matches!(step, Step::Up(_));
                let state = if up { "ready" } else { "maint" };
                let out = admin(hap, &format!("set server {be}/s{k} state {state}"));
                assert!(out.trim().is_empty(), "admin command answered {out:?}");
                b.set_usable(k, up);
                continue;
            }
        };
        for _ in 0..count {
            let r = gen_request(v.kind, n, &mut rng);
            n += 1;
            let mut hdrs: Vec<(&str, &[u8])> = vec![("x-be", be.as_bytes())];
            if let Some(s) = &r.src {
                hdrs.push(("x-src", s.as_bytes()));
            }
            for (n, val) in &r.headers {
                hdrs.push((n.as_str(), val.as_slice()));
            }
            let method = if r.body.is_some() { "POST" } else { "GET" };
            let resp = client
                .request_with_body(method, &r.uri, &hdrs, r.body.as_deref())
                .unwrap_or_else(|e| panic!("request failed: {e}\n{}", hap.log()));
            let got: Option<usize> = resp.header_str("x-srv").and_then(|s| s.parse().ok());
            // model
            let src: IpAddr = r.src.as_deref().unwrap_or("127.0.0.1").parse().unwrap();
            let hlist: Vec<(&[u8], &[u8])> = r
                .headers
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_slice()))
                .collect();
            let mut key = RequestKey::http(Some(src), &r.uri, Headers::List(&hlist));
            key.post_body = r.body.as_deref();
            if v.kind == Kind::HashHdr {
                // what the runtime's sample fetch would give
                key.sample = key.header(b"x-key");
            }
            if v.kind != Kind::Order && v.kind != Kind::Source && b.request_hash(&key).is_none() {
                fallback += 1;
            }
            let mut want = b.pick(&key, None);
            if let Some(s) = want
                && v.servers[s].dead
            {
                // the failed attempt was counted on the server, then dropped
                b.conn_start(s);
                b.conn_end(s);
                redispatched += 1;
                want = b.pick(&key, Some(s));
                if let Some(s2) = want
                    && v.servers[s2].dead
                {
                    b.conn_start(s2);
                    b.conn_end(s2);
                    want = None;
                }
            }
            if let Some(s) = want {
                b.conn_start(s);
                b.conn_end(s);
            }
            if let Some(g) = got {
                counts[g] += 1;
            }
            requests += 1;
            if got != want {
                bad += 1;
                if bad <= 3 {
                    writeln!(
                        stats.failures,
                        "  {} #{n} (after {:?}): uri={:?} src={:?} hdrs={:?}: haproxy {:?} (status {}), model {:?}",
                        v.name,
                        &script[..script.iter().position(|s| std::ptr::eq(s, step)).unwrap()],
                        String::from_utf8_lossy(&r.uri),
                        r.src,
                        r.headers
                            .iter()
                            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
                            .collect::<Vec<_>>(),
                        got,
                        resp.status,
                        want
                    )
                    .unwrap();
                }
            }
        }
    }
    stats.total += requests;
    stats.bad += bad;
    writeln!(
        stats.report,
        "{:<48} {:>4} requests {:>4} mismatches  fallback {:>3}  redispatched {:>3}  per-server {:?}",
        v.name, requests, bad, fallback, redispatched, counts
    )
    .unwrap();
}

/// Servers going to maintenance and back through the admin socket: the
/// model follows with `set_usable` and must keep predicting every pick
/// (tables/rings rebuilt, round-robin state carried over like HAProxy's).
#[test]
fn lb_state_changes_match_haproxy() {
    let bin = match haproxy_binary() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("SKIPPED lb_haproxy state-change test: haproxy is not available ({why})");
            return;
        }
    };
    let mut vs = Vec::new();
    let mut scripts = Vec::new();
    for (lname, servers, allb) in layouts() {
        if servers.len() < 2 {
            continue;
        }
        let act: Vec<usize> = (0..servers.len())
            .filter(|&k| !servers[k].backup && !servers[k].disabled && servers[k].weight > 0)
            .collect();
        let disabled: Vec<usize> = (0..servers.len())
            .filter(|&k| servers[k].disabled)
            .collect();
        let has_backup = servers.iter().any(|s| s.backup);
        let mut script = vec![Step::Req(37)];
        if act.len() >= 2 {
            let (a, c) = (act[1], act[0]);
            script.extend([
                Step::Down(a),
                Step::Req(23),
                Step::Down(c),
                Step::Req(29),
                Step::Up(a),
                Step::Req(31),
                Step::Up(c),
                Step::Req(40),
            ]);
        }
        for &d in &disabled {
            script.extend([Step::Up(d), Step::Req(33), Step::Down(d), Step::Req(17)]);
        }
        if has_backup {
            script.extend(act.iter().map(|&k| Step::Down(k)));
            script.push(Step::Req(25));
            let bk: Vec<usize> = (0..servers.len()).filter(|&k| servers[k].backup).collect();
            script.extend([
                Step::Down(bk[0]),
                Step::Req(21),
                Step::Up(bk[0]),
                Step::Req(22),
            ]);
            script.extend(act.iter().map(|&k| Step::Up(k)));
            script.push(Step::Req(19));
        }
        for (balance, ht, kind) in [
            ("roundrobin", None, Kind::Order),
            ("static-rr", None, Kind::Order),
            ("leastconn", None, Kind::Order),
            ("first", None, Kind::Order),
            ("source", Some("map-based"), Kind::Source),
            ("source", Some("consistent"), Kind::Source),
            ("hdr(x-key)", Some("map-based"), Kind::Hdr),
            ("hdr(x-key)", Some("consistent"), Kind::Hdr),
        ] {
            vs.push(Variant {
                name: format!("state/{balance}/{}/{lname}", ht.unwrap_or("-")),
                balance: balance.to_string(),
                hash_type: ht.map(str::to_string),
                servers: servers.clone(),
                allbackups: allb,
                kind,
                requests: 0,
                redispatch: false,
                hbf: 0,
                fullconn: 0,
            });
            // run-time weight changes; static algorithms only accept 0 and
            // the configured weight
            let mut sc = script.clone();
            if let (Some(&a), Some(&z)) = (act.first(), act.last()) {
                let (wa, wz) = (servers[a].weight, servers[z].weight);
                let dynamic = balance != "static-rr" && ht != Some("map-based");
                sc.extend([Step::Drain(a), Step::Req(27), Step::Up(a), Step::Req(18)]);
                if dynamic {
                    sc.extend([
                        Step::Weight(a, 5),
                        Step::Req(29),
                        Step::Weight(z, 0),
                        Step::Req(19),
                        Step::Weight(a, 1),
                        Step::Req(23),
                        Step::Weight(z, 3),
                        Step::Req(31),
                        Step::Weight(a, 256),
                        Step::Req(17),
                        Step::Weight(a, wa),
                        Step::Weight(z, wz),
                        Step::Req(21),
                    ]);
                } else {
                    sc.extend([
                        Step::Weight(z, 0),
                        Step::Req(19),
                        Step::Weight(z, wz),
                        Step::Req(31),
                    ]);
                }
            }
            scripts.push(sc);
        }
    }
    let nresp = vs.iter().map(|v| v.servers.len()).max().unwrap();
    let ports = free_ports(nresp + 2);
    let (fe, resp, dead_port) = (ports[0], &ports[1..=nresp], ports[nresp + 1]);
    let cfg = config(&vs, fe, resp, dead_port).replacen(
        "global\n",
        "global\n  stats socket @TMPDIR@/admin.sock level admin\n",
        1,
    );
    let mut wait = vec![fe];
    wait.extend_from_slice(resp);
    let hap = Haproxy::start(&bin, &cfg, &wait).unwrap_or_else(|e| panic!("{e}"));
    let mut client = HttpClient::new(fe);
    let mut stats = Stats::default();
    for (i, v) in vs.iter().enumerate() {
        run_variant(&hap, &mut client, i, v, &scripts[i], &mut stats);
    }
    drop(hap);
    stats.finish("lb_haproxy state changes", vs.len());
}

/// Test-owned servers that hold every request until released, so that
/// many streams stay attached to servers at once (connection counts matter
/// for leastconn, first, maxconn and hash-balance-factor).
struct HoldServers {
    ports: Vec<u16>,
    events: std::sync::mpsc::Receiver<(usize, u64)>,
    released: std::sync::Arc<(
        std::sync::Mutex<std::collections::HashSet<u64>>,
        std::sync::Condvar,
    )>,
}

impl HoldServers {
    fn start(n: usize) -> HoldServers {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::{Arc, Condvar, Mutex};
        let (tx, rx) = std::sync::mpsc::channel();
        let released = Arc::new((Mutex::new(std::collections::HashSet::new()), Condvar::new()));
        let mut ports = Vec::new();
        for k in 0..n {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            ports.push(l.local_addr().unwrap().port());
            let tx = tx.clone();
            let released = Arc::clone(&released);
            std::thread::spawn(move || {
                for conn in l.incoming() {
                    let Ok(mut conn) = conn else { continue };
                    let tx = tx.clone();
                    let released = Arc::clone(&released);
                    std::thread::spawn(move || {
                        let mut rd = BufReader::new(conn.try_clone().unwrap());
                        let mut id = None;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if rd.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let l = line.trim_end();
                            if l.is_empty() {
                                break;
                            }
                            if let Some(v) = l.strip_prefix("x-id: ") {
                                id = v.parse::<u64>().ok();
                            }
                        }
                        let Some(id) = id else { return };
                        let _ = tx.send((k, id));
                        let (set, cv) = &*released;
                        let mut g = set.lock().unwrap();
                        while !g.contains(&id) {
                            g = cv.wait(g).unwrap();
                        }
                        drop(g);
                        let _ = conn.write_all(
                            format!("HTTP/1.1 200 OK\r\nx-srv: {k}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .as_bytes(),
                        );
                    });
                }
            });
        }
        HoldServers {
            ports,
            events: rx,
            released,
        }
    }

    fn release(&self, id: u64) {
        let (set, cv) = &*self.released;
        set.lock().unwrap().insert(id);
        cv.notify_all();
    }
}

/// Requests kept open at the servers: leastconn order with loaded servers,
/// `first` and round-robin/static-rr with `maxconn`, bounded-load
/// consistent hashing (`hash-balance-factor`).
#[test]
fn lb_concurrent_load_matches_haproxy() {
    use std::io::{Read, Write};
    let bin = match haproxy_binary() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("SKIPPED lb_haproxy concurrency test: haproxy is not available ({why})");
            return;
        }
    };
    let mc = |mut s: Srv, m: u32| {
        s.maxconn = Some(m);
        s
    };
    let mut vs: Vec<Variant> = Vec::new();
    let mut push =
        |name: &str, balance: &str, ht: Option<&str>, servers: Vec<Srv>, hbf: u32, kind: Kind| {
            vs.push(Variant {
                name: name.to_string(),
                balance: balance.into(),
                hash_type: ht.map(str::to_string),
                servers,
                allbackups: false,
                kind,
                requests: 0,
                redispatch: false,
                hbf,
                fullconn: if name.contains("minconn") { 10 } else { 0 },
            })
        };
    push(
        "leastconn/w111",
        "leastconn",
        None,
        vec![w(1), w(1), w(1)],
        0,
        Kind::Order,
    );
    push(
        "leastconn/w123",
        "leastconn",
        None,
        vec![w(1), w(2), w(3)],
        0,
        Kind::Order,
    );
    push(
        "leastconn/w31271",
        "leastconn",
        None,
        vec![w(3), w(1), w(2), w(7), w(1)],
        0,
        Kind::Order,
    );
    push(
        "leastconn/ids-weight0",
        "leastconn",
        None,
        vec![id(w(2), 9), w(0), id(w(5), 2), w(1)],
        0,
        Kind::Order,
    );
    push(
        "first/maxconn",
        "first",
        None,
        vec![
            mc(id(w(1), 5), 2),
            mc(id(w(1), 2), 3),
            mc(w(1), 2),
            mc(id(w(1), 1), 1),
        ],
        0,
        Kind::Order,
    );
    let mn = |mut s: Srv, min: u32, max: Option<u32>| {
        s.minconn = Some(min);
        s.maxconn = max;
        s
    };
    push(
        "first/minconn",
        "first",
        None,
        vec![
            mn(w(1), 1, Some(6)),
            mn(id(w(1), 1), 2, Some(5)),
            mn(w(1), 3, None),
        ],
        0,
        Kind::Order,
    );
    push(
        "leastconn/minconn",
        "leastconn",
        None,
        vec![mn(w(1), 1, Some(8)), mn(w(3), 2, Some(4)), w(1)],
        0,
        Kind::Order,
    );
    push(
        "roundrobin/minconn",
        "roundrobin",
        None,
        vec![
            mn(w(2), 1, Some(8)),
            mn(w(1), 1, Some(3)),
            mn(w(1), 2, Some(9)),
        ],
        0,
        Kind::Order,
    );
    push(
        "roundrobin/maxconn",
        "roundrobin",
        None,
        vec![mc(w(1), 2), mc(w(2), 3), mc(w(3), 4)],
        0,
        Kind::Order,
    );
    push(
        "roundrobin/maxconn-equal",
        "roundrobin",
        None,
        vec![
            mc(w(1), 1),
            mc(w(1), 2),
            mc(w(1), 1),
            mc(w(1), 2),
            mc(w(1), 1),
        ],
        0,
        Kind::Order,
    );
    push(
        "roundrobin/maxconn-w2222",
        "roundrobin",
        None,
        vec![mc(w(2), 1), mc(w(2), 1), mc(w(2), 1), mc(w(2), 1)],
        0,
        Kind::Order,
    );
    push(
        "roundrobin/maxconn-mixed",
        "roundrobin",
        None,
        vec![mc(w(5), 3), w(1), mc(w(3), 1), mc(w(7), 2)],
        0,
        Kind::Order,
    );
    push(
        "static-rr/maxconn",
        "static-rr",
        None,
        vec![mc(w(1), 2), mc(w(2), 3), mc(w(3), 4)],
        0,
        Kind::Order,
    );
    push(
        "source/consistent/hbf150",
        "source",
        Some("consistent"),
        vec![w(1), w(1), w(2), w(1)],
        150,
        Kind::Source,
    );
    push(
        "uri/consistent/hbf125",
        "uri",
        Some("consistent"),
        vec![w(1), w(3), w(1)],
        125,
        Kind::Uri,
    );
    push(
        "source/consistent djb2/hbf110",
        "source",
        Some("consistent djb2"),
        vec![w(1), w(1), w(1), w(1), w(1)],
        110,
        Kind::Source,
    );
    let nsrv = vs.iter().map(|v| v.servers.len()).max().unwrap();
    let hold = HoldServers::start(nsrv);
    let fe = free_ports(1)[0];
    let cfg = config_with(&vs, fe, &hold.ports, 1, false).replacen(
        "global\n",
        "global\n  stats socket @TMPDIR@/admin.sock level admin\n",
        1,
    );
    let hap = Haproxy::start(&bin, &cfg, &[fe]).unwrap_or_else(|e| panic!("{e}"));
    // current sessions (scur) of backend server `s{k}` of `v{vi}`
    let scur = |vi: usize, k: usize| -> Option<u32> {
        let out = admin(&hap, "show stat");
        out.lines().find_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() > 4 && f[0] == format!("v{vi}") && f[1] == format!("s{k}"))
                .then(|| f[4].parse().ok())
                .flatten()
        })
    };

    let mut stats = Stats::default();
    let mut next_id = 0u64;
    for (vi, v) in vs.iter().enumerate() {
        let b = model(v);
        let capacity: u32 = v
            .servers
            .iter()
            .filter(|s| s.weight > 0 && !s.backup)
            .map(|s| s.maxconn.unwrap_or(1000))
            .sum();
        let mut rng = Lcg(0xc0c0 + vi as u64);
        let mut open: Vec<(u64, usize, std::net::TcpStream)> = Vec::new();
        let mut counts = vec![0usize; v.servers.len()];
        let (mut requests, mut bad) = (0usize, 0usize);
        let mut n = 0usize;
        for _step in 0..160 {
            // room left under the (dynamic) limits for one more stream
            let room = (0..v.servers.len()).any(|k| {
                let s = &v.servers[k];
                s.weight > 0 && !s.backup && b.dynamic_maxconn(k).is_none_or(|m| b.served(k) < m)
            });
            let send =
                open.is_empty() || (room && open.len() < capacity as usize && rng.below(10) < 6);
            if send {
                let r = gen_request(v.kind, n, &mut rng);
                n += 1;
                next_id += 1;
                let idn = next_id;
                let mut req = format!(
                    "GET {} HTTP/1.1\r\nx-be: v{vi}\r\nx-id: {idn}\r\nconnection: close\r\n",
                    String::from_utf8_lossy(&r.uri)
                );
                if !r.headers.iter().any(|(h, _)| h == "host") {
                    req.push_str("host: t\r\n");
                }
                for (h, val) in &r.headers {
                    req.push_str(&format!("{h}: {}\r\n", String::from_utf8_lossy(val)));
                }
                if let Some(src) = &r.src {
                    req.push_str(&format!("x-src: {src}\r\n"));
                }
                req.push_str("\r\n");
                let mut cs = std::net::TcpStream::connect(("127.0.0.1", fe)).unwrap();
                cs.write_all(req.as_bytes()).unwrap();
                let (k, got_id) = hold
                    .events
                    .recv_timeout(std::time::Duration::from_secs(5))
                    .unwrap_or_else(|_| {
                        panic!(
                            "{}: request {idn} never reached a server\n{}",
                            v.name,
                            hap.log()
                        )
                    });
                assert_eq!(got_id, idn);
                let src: IpAddr = r.src.as_deref().unwrap_or("127.0.0.1").parse().unwrap();
                let key = RequestKey::http(Some(src), &r.uri, Headers::None);
                let want = b.pick(&key, None);
                if let Some(s) = want {
                    b.conn_start(s);
                }
                counts[k] += 1;
                requests += 1;
                if want != Some(k) {
                    bad += 1;
                    if bad <= 3 {
                        writeln!(
                            stats.failures,
                            "  {} request {} with open {:?}: haproxy {k}, model {want:?}",
                            v.name,
                            requests,
                            open.iter().map(|o| o.1).collect::<Vec<_>>()
                        )
                        .unwrap();
                    }
                }
                // keep the model in step with what really happened
                if want != Some(k) {
                    if let Some(s) = want {
                        b.conn_end(s);
                    }
                    b.conn_start(k);
                }
                open.push((idn, k, cs));
            } else {
                let (idn, k, mut cs) = open.remove(rng.below(open.len() as u32) as usize);
                hold.release(idn);
                let mut resp = Vec::new();
                cs.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .unwrap();
                cs.read_to_end(&mut resp).unwrap();
                assert!(String::from_utf8_lossy(&resp).contains(&format!("x-srv: {k}")));
                b.conn_end(k);
                // wait until haproxy has released the stream too
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
                while scur(vi, k) != Some(b.served(k)) {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{}: s{k} never went down to {} sessions",
                        v.name,
                        b.served(k)
                    );
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
        for (idn, _, mut cs) in open.drain(..) {
            hold.release(idn);
            let mut resp = Vec::new();
            let _ = cs.read_to_end(&mut resp);
        }
        stats.total += requests;
        stats.bad += bad;
        writeln!(
            stats.report,
            "{:<48} {:>4} requests {:>4} mismatches  per-server {:?}",
            v.name, requests, bad, counts
        )
        .unwrap();
    }
    drop(hap);
    stats.finish("lb_haproxy concurrency", vs.len());
}

/// `balance rdp-cookie` in TCP mode: the cookie is taken from the RDP
/// connection request payload (`tcp-request inspect-delay` +
/// `tcp-request content accept if RDP_COOKIE`), servers are test-owned
/// listeners that write their index and close.
#[test]
fn lb_rdp_cookie_matches_haproxy() {
    use rhaproxy::lb::key::{RdpCookie, rdp_cookie};
    use std::io::{Read, Write};
    let bin = match haproxy_binary() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("SKIPPED lb_haproxy rdp-cookie test: haproxy is not available ({why})");
            return;
        }
    };
    // identifying servers
    let nsrv = 5;
    let mut srv_ports = Vec::new();
    for k in 0..nsrv {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        srv_ports.push(l.local_addr().unwrap().port());
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let _ = c.write_all(format!("{k}\n").as_bytes());
            }
        });
    }
    let variants: Vec<(&str, Option<&str>, Vec<Srv>)> = vec![
        ("rdp-cookie", None, vec![w(1), w(1), w(1)]),
        ("rdp-cookie", Some("consistent"), vec![w(1), w(2), w(3)]),
        (
            "rdp-cookie(user)",
            Some("map-based djb2"),
            vec![w(3), w(1), w(2), w(7), w(1)],
        ),
        (
            "rdp-cookie(user)",
            Some("consistent wt6 avalanche"),
            vec![w(1), id(w(1), 1), w(2)],
        ),
        (
            "rdp-cookie",
            Some("map-based crc32 avalanche"),
            vec![w(2), w(3), w(5), w(1)],
        ),
    ];
    let fe_ports = free_ports(variants.len());
    let mut cfg = String::from(
        "global\n  nbthread 1\n\ndefaults\n  mode tcp\n  timeout client 30s\n  timeout server 30s\n  timeout connect 5s\n\n",
    );
    for (i, (balance, ht, servers)) in variants.iter().enumerate() {
        writeln!(
            cfg,
            "listen v{i}\n  bind 127.0.0.1:{}\n  tcp-request inspect-delay 100ms\n  tcp-request content accept if RDP_COOKIE\n  balance {balance}",
            fe_ports[i]
        )
        .unwrap();
        if let Some(ht) = ht {
            writeln!(cfg, "  hash-type {ht}").unwrap();
        }
        for (k, s) in servers.iter().enumerate() {
            write!(
                cfg,
                "  server s{k} 127.0.0.1:{} weight {}",
                srv_ports[k], s.weight
            )
            .unwrap();
            if let Some(id) = s.id {
                write!(cfg, " id {id}").unwrap();
            }
            cfg.push('\n');
        }
        cfg.push('\n');
    }
    // Probe readiness on a separate listener: a bare connection to a
    // tested frontend would take a round-robin fallback pick.
    let ready = free_ports(1)[0];
    writeln!(
        cfg,
        "frontend ready\n  bind 127.0.0.1:{ready}\n  tcp-request connection reject\n"
    )
    .unwrap();
    let hap = Haproxy::start(&bin, &cfg, &[ready]).unwrap_or_else(|e| panic!("{e}"));
    let mut stats = Stats::default();
    for (i, (balance, ht, servers)) in variants.iter().enumerate() {
        let v = Variant {
            name: format!("tcp/{balance}/{}", ht.unwrap_or("-")),
            balance: balance.to_string(),
            hash_type: ht.map(str::to_string),
            servers: servers.clone(),
            allbackups: false,
            kind: Kind::Order,
            requests: 0,
            redispatch: false,
            hbf: 0,
            fullconn: 0,
        };
        let b = model(&v);
        let name: &[u8] = if balance.contains("(user)") {
            b"user"
        } else {
            b"mstshash"
        };
        let mut rng = Lcg(0x4d50 + i as u64);
        let mut counts = vec![0usize; servers.len()];
        let (mut requests, mut bad, mut fallback) = (0usize, 0usize, 0usize);
        for n in 0..200 {
            let mut p = b"\x03\x00\x00\x00\x06\xe0\x00\x00\x00\x00\x00".to_vec();
            let cname = String::from_utf8_lossy(name).to_string();
            match n % 40 {
                // empty value: fallback without waiting
                7 => p.extend_from_slice(format!("Cookie: {cname}=\r\n").as_bytes()),
                // another cookie name: waits for inspect-delay then falls back
                13 => p.extend_from_slice(b"Cookie: other=xyz\r\n"),
                _ => {
                    let sp = " ".repeat(rng.below(3) as usize);
                    let nm = if n % 5 == 0 {
                        cname.to_uppercase()
                    } else {
                        cname.clone()
                    };
                    p.extend_from_slice(format!("Cookie:{sp}{nm}={}\r\n", rng.word(12)).as_bytes());
                }
            }
            p.extend_from_slice(b"\x01\x00\x08\x00\x03\x00\x00\x00");
            let len = p.len() as u16;
            p[2..4].copy_from_slice(&len.to_be_bytes());
            let mut c = std::net::TcpStream::connect(("127.0.0.1", fe_ports[i])).unwrap();
            c.write_all(&p).unwrap();
            let mut out = String::new();
            c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let _ = c.read_to_string(&mut out);
            let got: Option<usize> = out.trim().parse().ok();
            let sample = match rdp_cookie(&p, name) {
                RdpCookie::Found(v) => Some(v),
                _ => None,
            };
            let key = RequestKey {
                src: Some("127.0.0.1".parse().unwrap()),
                sample,
                ..Default::default()
            };
            if b.request_hash(&key).is_none() {
                fallback += 1;
            }
            let want = b.pick(&key, None);
            if let Some(g) = got {
                counts[g] += 1;
            }
            requests += 1;
            if got != want {
                bad += 1;
                if bad <= 3 {
                    writeln!(
                        stats.failures,
                        "  {} #{n}: payload {:?}: haproxy {got:?}, model {want:?}",
                        v.name,
                        String::from_utf8_lossy(&p[11..])
                    )
                    .unwrap();
                }
            }
        }
        stats.total += requests;
        stats.bad += bad;
        writeln!(
            stats.report,
            "{:<48} {:>4} requests {:>4} mismatches  fallback {:>3}  per-server {:?}",
            v.name, requests, bad, fallback, counts
        )
        .unwrap();
    }
    drop(hap);
    stats.finish("lb_haproxy rdp-cookie", variants.len());
}

/// `balance source` on the real accept path: clients connect from many
/// 127.x.y.z addresses to an IPv4 listener and to a dual-stack
/// `bind :::port v4v6` listener, where HAProxy sees (and hashes) the
/// IPv4-mapped IPv6 address.
#[test]
fn lb_source_accept_path_matches_haproxy() {
    use std::io::{Read, Write};
    let bin = match haproxy_binary() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("SKIPPED lb_haproxy accept-path test: haproxy is not available ({why})");
            return;
        }
    };
    // IPv6 must be available for the dual-stack listener
    if std::net::TcpListener::bind("[::]:0").is_err() {
        eprintln!("SKIPPED lb_haproxy accept-path test: no IPv6 socket support");
        return;
    }
    let nsrv = 4;
    let mut srv_ports = Vec::new();
    for k in 0..nsrv {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        srv_ports.push(l.local_addr().unwrap().port());
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let _ = c.write_all(format!("{k}\n").as_bytes());
            }
        });
    }
    let ports = free_ports(5);
    let (v4_map, v6_map, v4_ch, v6_ch, ready) = (ports[0], ports[1], ports[2], ports[3], ports[4]);
    let mut cfg = String::from(
        "global\n  nbthread 1\n\ndefaults\n  mode tcp\n  timeout client 30s\n  timeout server 30s\n  timeout connect 5s\n\n",
    );
    let servers = [w(1), w(2), id(w(1), 1), w(3)];
    let mut backend = |name: &str, bind: String, ht: &str| {
        writeln!(
            cfg,
            "listen {name}\n  bind {bind}\n  balance source\n  hash-type {ht}"
        )
        .unwrap();
        for (k, s) in servers.iter().enumerate() {
            write!(
                cfg,
                "  server s{k} 127.0.0.1:{} weight {}",
                srv_ports[k], s.weight
            )
            .unwrap();
            if let Some(id) = s.id {
                write!(cfg, " id {id}").unwrap();
            }
            cfg.push('\n');
        }
        cfg.push('\n');
    };
    backend("v4map", format!("127.0.0.1:{v4_map}"), "map-based");
    backend("v6map", format!(":::{v6_map} v4v6"), "map-based");
    backend("v4ch", format!("127.0.0.1:{v4_ch}"), "consistent");
    backend("v6ch", format!(":::{v6_ch} v4v6"), "consistent");
    writeln!(
        cfg,
        "frontend ready\n  bind 127.0.0.1:{ready}\n  tcp-request connection reject\n"
    )
    .unwrap();
    let hap = Haproxy::start(&bin, &cfg, &[ready]).unwrap_or_else(|e| panic!("{e}"));
    let mut stats = Stats::default();
    for (name, port, ht) in [
        ("accept/ipv4-listener/map-based", v4_map, "map-based"),
        ("accept/dual-stack-listener/map-based", v6_map, "map-based"),
        ("accept/ipv4-listener/consistent", v4_ch, "consistent"),
        ("accept/dual-stack-listener/consistent", v6_ch, "consistent"),
    ] {
        let v = Variant {
            name: name.into(),
            balance: "source".into(),
            hash_type: Some(ht.into()),
            servers: servers.to_vec(),
            allbackups: false,
            kind: Kind::Source,
            requests: 0,
            redispatch: false,
            hbf: 0,
            fullconn: 0,
        };
        let b = model(&v);
        let mut rng = Lcg(0xacce + port as u64);
        let mut counts = vec![0usize; nsrv];
        let (mut requests, mut bad) = (0usize, 0usize);
        for _ in 0..150 {
            let v4 = std::net::Ipv4Addr::new(
                127,
                rng.below(256) as u8,
                rng.below(256) as u8,
                1 + rng.below(254) as u8,
            );
            let sock =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            sock.bind(&std::net::SocketAddr::new(v4.into(), 0).into())
                .unwrap();
            sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
                .unwrap();
            let mut c: std::net::TcpStream = sock.into();
            c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            let got: Option<usize> = out.trim().parse().ok();
            // what the listener reports as the client address
            let seen: IpAddr = if name.contains("dual-stack") {
                IpAddr::V6(v4.to_ipv6_mapped())
            } else {
                IpAddr::V4(v4)
            };
            let want = b.pick(&RequestKey::tcp(seen), None);
            if let Some(g) = got {
                counts[g] += 1;
            }
            requests += 1;
            if got != want {
                bad += 1;
                if bad <= 3 {
                    writeln!(
                        stats.failures,
                        "  {name}: client {v4}: haproxy {got:?}, model {want:?}"
                    )
                    .unwrap();
                }
            }
        }
        stats.total += requests;
        stats.bad += bad;
        writeln!(
            stats.report,
            "{name:<48} {requests:>4} requests {bad:>4} mismatches  per-server {counts:?}"
        )
        .unwrap();
    }
    drop(hap);
    stats.finish("lb_haproxy accept path", 4);
}

/// `balance`, `hash-type` and `hash-balance-factor` parsers against
/// `haproxy -c`: same acceptance, same error message.
#[test]
fn lb_parsers_match_haproxy_check() {
    use rhaproxy::lb::parse_hash_balance_factor;
    let bin = match haproxy_binary() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("SKIPPED lb_haproxy parser test: haproxy is not available ({why})");
            return;
        }
    };
    let cases: &[(&str, &str)] = &[
        ("balance", "roundrobin"),
        ("balance", "roundrobinx"),
        ("balance", "foo"),
        ("balance", "hdr"),
        ("balance", "hdr("),
        ("balance", "hdr()"),
        ("balance", "hdr(x"),
        ("balance", "hdr(x)y use_domain_only"),
        ("balance", "hdr(host) foo"),
        ("balance", "url_param"),
        ("balance", "url_param a check_post 10"),
        ("balance", "url_param a foo"),
        ("balance", "uri len"),
        ("balance", "uri len x"),
        ("balance", "uri len 0"),
        ("balance", "uri len 3x"),
        ("balance", "uri depth -1"),
        ("balance", "uri foo"),
        ("balance", "uri whole path-only len 2 depth 3"),
        ("balance", "random"),
        ("balance", "random(0)"),
        ("balance", "random(x)"),
        ("balance", "random(0x)"),
        ("balance", "random(2"),
        ("balance", "random()"),
        ("balance", "random(+3)"),
        ("balance", "randomfoo(3)"),
        ("balance", "rdp-cookie"),
        ("balance", "rdp-cookiex"),
        ("balance", "rdp-cookie()"),
        ("balance", "rdp-cookie(a)b"),
        ("balance", "hash"),
        ("balance", "first x"),
        ("balance", "static-rr"),
        ("balance", "leastconn"),
        ("balance", "source"),
        ("hash-type", ""),
        ("hash-type", "foo"),
        ("hash-type", "avalanche"),
        ("hash-type", "map-based"),
        ("hash-type", "map-basedx"),
        ("hash-type", "consistent avalanche"),
        ("hash-type", "consistent sdbm foo"),
        ("hash-type", "consistent sdbmx"),
        ("hash-type", "map-based crc32 avalanche x"),
        ("hash-type", "consistent wt6"),
        ("hash-balance-factor", ""),
        ("hash-balance-factor", "0"),
        ("hash-balance-factor", "50"),
        ("hash-balance-factor", "100"),
        ("hash-balance-factor", "101"),
        ("hash-balance-factor", "x"),
        ("hash-balance-factor", "-1"),
    ];
    let dir = std::env::temp_dir().join(format!("rhaproxy-lbparse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bad = Vec::new();
    for (kw, args) in cases {
        let cfg = format!(
            "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\nbackend b\n  {kw} {args}\n  server s1 127.0.0.1:1\n"
        );
        let path = dir.join("c.cfg");
        std::fs::write(&path, cfg).unwrap();
        let out = std::process::Command::new(&bin)
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        // "... parsing [<file>:8] : <message>"
        let theirs: Option<String> = text
            .lines()
            .find_map(|l| l.find(":8] : ").map(|p| l[p + 6..].trim_end().to_string()));
        let words: Vec<&str> = args.split_whitespace().collect();
        let ours: Option<String> = match *kw {
            "balance" => parse_balance(&words).err(),
            "hash-type" => parse_hash_type(&words).err(),
            _ => parse_hash_balance_factor(&words).err(),
        };
        if ours != theirs {
            bad.push(format!("{kw} {args}: haproxy {theirs:?}, ours {ours:?}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "lb_haproxy parsers: {} keyword lines compared with haproxy -c, {} differences",
        cases.len(),
        bad.len()
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
