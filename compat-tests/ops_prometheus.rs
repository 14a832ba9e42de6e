//! The Prometheus exporter (`http-request use-service prometheus-exporter`): the answer must
//! parse as the Prometheus text format (checked by a strict parser below), carry HAProxy's
//! metric names, types and labels, and the family names must be those HAProxy 2.6 serves for
//! the same configuration.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::collections::{BTreeMap, BTreeSet};

/// One parsed exposition.
#[derive(Debug, Default)]
struct Exposition {
    /// family → type
    types: BTreeMap<String, String>,
    /// family → help text
    helps: BTreeMap<String, String>,
    /// (sample name, sorted labels) → value
    samples: BTreeMap<(String, Vec<(String, String)>), f64>,
    /// Families in order of appearance.
    order: Vec<String>,
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => {
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
                return Err(format!("bad value {v:?}"));
            }
            v.parse::<f64>()
                .map_err(|e| format!("bad value {v:?}: {e}"))
        }
    }
}

/// Labels `{a="x",b="y"}` (the braces excluded); returns them and the rest of the line.
type Labels = Vec<(String, String)>;

fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        if b.get(i) == Some(&b'}') {
            return Ok((out, &s[i + 1..]));
        }
        let start = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let name = &s[start..i];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        if b.get(i + 1) != Some(&b'"') {
            return Err(format!("label {name}: value not quoted"));
        }
        i += 2;
        let mut val = String::new();
        loop {
            match b.get(i) {
                None => return Err("unterminated label value".into()),
                Some(b'"') => break,
                Some(b'\\') => {
                    match b.get(i + 1) {
                        Some(b'\\') => val.push('\\'),
                        Some(b'"') => val.push('"'),
                        Some(b'n') => val.push('\n'),
                        other => return Err(format!("bad escape {other:?}")),
                    }
                    i += 2;
                }
                Some(_) => {
                    let ch = s[i..].chars().next().unwrap();
                    if ch == '\n' {
                        return Err("raw newline in label value".into());
                    }
                    val.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        i += 1;
        if out.iter().any(|(n, _): &(String, String)| n == name) {
            return Err(format!("label {name} twice"));
        }
        out.push((name.to_string(), val));
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {}
            _ => return Err("expected ',' or '}' after a label".into()),
        }
    }
}

/// The family a sample belongs to (histogram/summary suffixes are not used by HAProxy).
fn family_of(name: &str) -> &str {
    name
}

/// A strict parser of the Prometheus text format 0.0.4.
fn parse(text: &str) -> Result<Exposition, String> {
    let mut e = Exposition::default();
    let mut current: Option<String> = None;
    let mut closed: BTreeSet<String> = BTreeSet::new();
    for (n, line) in text.split('\n').enumerate() {
        let ctx = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            let kind = w.next().unwrap_or("");
            let name = w.next().unwrap_or("");
            let arg = w.next().unwrap_or("");
            match kind {
                "HELP" | "TYPE" => {
                    if !is_metric_name(name) {
                        return Err(ctx(format!("bad metric name {name:?}")));
                    }
                    if current.as_deref() != Some(name) {
                        if let Some(c) = current.take() {
                            closed.insert(c);
                        }
                        if closed.contains(name) {
                            return Err(ctx(format!("family {name} split in two")));
                        }
                        current = Some(name.to_string());
                        e.order.push(name.to_string());
                    }
                    if kind == "HELP" {
                        if e.helps.insert(name.into(), arg.into()).is_some() {
                            return Err(ctx("HELP twice".into()));
                        }
                        if e.types.contains_key(name) {
                            return Err(ctx("HELP after TYPE".into()));
                        }
                    } else {
                        if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg) {
                            return Err(ctx(format!("bad type {arg:?}")));
                        }
                        if e.types.insert(name.into(), arg.into()).is_some() {
                            return Err(ctx("TYPE twice".into()));
                        }
                        if e.samples.keys().any(|(s, _)| family_of(s) == name) {
                            return Err(ctx("TYPE after samples".into()));
                        }
                    }
                }
                _ => {} // other comments are allowed
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| ctx("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(ctx(format!("bad metric name {name:?}")));
        }
        let (mut labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end + 1..]).map_err(ctx)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| ctx("no space before the value".into()))?;
        let mut parts = rest.split(' ');
        let value = parse_value(parts.next().unwrap_or("")).map_err(ctx)?;
        if let Some(ts) = parts.next() {
            ts.parse::<i64>()
                .map_err(|_| ctx(format!("bad timestamp {ts:?}")))?;
        }
        if parts.next().is_some() {
            return Err(ctx("trailing fields".into()));
        }
        let fam = family_of(name);
        if current.as_deref() != Some(fam) {
            return Err(ctx(format!(
                "sample of {fam} outside its family (HELP/TYPE must come first)"
            )));
        }
        if !e.types.contains_key(fam) {
            return Err(ctx("sample before TYPE".into()));
        }
        labels.sort();
        if e.samples
            .insert((name.to_string(), labels), value)
            .is_some()
        {
            return Err(ctx("duplicate sample".into()));
        }
    }
    if !text.ends_with('\n') {
        return Err("the exposition does not end with a newline".into());
    }
    Ok(e)
}

fn sample(e: &Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    l.sort();
    e.samples.get(&(name.to_string(), l)).copied()
}

/// Label names used by each family.
fn label_sets(e: &Exposition) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, labels) in e.samples.keys() {
        let set = m.entry(name.clone()).or_default();
        for (l, _) in labels {
            set.insert(l.clone());
        }
    }
    m
}

#[test]
fn strict_parser_rejects_bad_expositions() {
    let good = "# HELP a_b x\n# TYPE a_b gauge\na_b{proxy=\"p\\\"q\"} 1.5\n";
    parse(good).unwrap();
    for bad in [
        "a_b 1\n",                                        // no TYPE
        "# TYPE a_b gauge\na_b 1",                        // no final newline
        "# TYPE a_b gauge\na_b{x=\"1} 1\n",               // unterminated
        "# TYPE a_b gauge\na_b{1x=\"1\"} 1\n",            // label name
        "# TYPE a_b gauge\na_b one\n",                    // value
        "# TYPE a-b gauge\n",                             // metric name
        "# TYPE a_b gauge\na_b 1\na_b 2\n",               // duplicate
        "# TYPE a_b gauge\n# TYPE c gauge\nc 1\na_b 1\n", // outside its family
        "# TYPE a_b gauge\na_b 1\n# HELP a_b late\n",     // HELP after
        "# TYPE a_b gauge\na_b{x=\"1\",x=\"2\"} 1\n",     // label twice
        "# TYPE a_b gauge\na_b{x=\"\\t\"} 1\n",           // bad escape
    ] {
        assert!(parse(bad).is_err(), "accepted: {bad:?}");
    }
}

/// How the metrics are obtained.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `http-request use-service prometheus-exporter` on the frontend.
    Endpoint,
    /// rhaproxy's renderer fed with `show info` and `show stat` from the stats socket (the
    /// same function the service calls).
    Renderer,
}

fn cli(sock: &std::path::Path, c: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(SOON)).unwrap();
    s.write_all(format!("{c}\n").as_bytes()).unwrap();
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn render_from_socket(sock: &std::path::Path) -> String {
    let info: Vec<(&str, String)> = cli(sock, "show info")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            let k: &'static str = Box::leak(k.to_string().into_boxed_str());
            Some((k, v.to_string()))
        })
        .collect();
    let (header, rows) = rhaproxy::runtime::admin::parse_csv(&cli(sock, "show stat"));
    rhaproxy::runtime::prometheus::render(&info, &header, &rows)
}

fn fetch_metrics(imp: Impl, via: Via) -> (Resp, Exposition) {
    let dir = TempDir::new("ops-prometheus");
    let p = free_ports(5);
    let _servers = [
        Backend::start("s1", p[1], Behavior::Http),
        Backend::start("s2", p[2], Behavior::Http),
        Backend::start("t", p[4], Behavior::EchoAfterEof),
    ];
    let service = if via == Via::Endpoint {
        "http-request use-service prometheus-exporter if { path /metrics }"
    } else {
        ""
    };
    let cfg = format!(
        "global
    stats socket {d}/admin.sock level admin
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{fe}
    {service}
    default_backend be
backend be
    server s1 127.0.0.1:{s1} check inter 200ms
    server s2 127.0.0.1:{s2}
    server s3 127.0.0.1:{s2} disabled
listen lt
    mode tcp
    bind 127.0.0.1:{lt}
    server t 127.0.0.1:{t}
",
        fe = p[0],
        s1 = p[1],
        s2 = p[2],
        lt = p[3],
        t = p[4],
        d = dir.0.display(),
    );
    let _proxy = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[3]]);
    for _ in 0..3 {
        let mut c = HttpConn::connect(p[0]).unwrap();
        assert_eq!(c.get("/x").unwrap().status, 200);
    }
    let _ = tcp_exchange(p[3], None, b"hello");
    // The checked server passes its first check.
    let sock = dir.0.join("admin.sock");
    let mut last = None;
    wait_until("s1 checked and the TCP session counted", SOON, || {
        let r = if via == Via::Endpoint {
            let mut c = HttpConn::connect(p[0]).unwrap();
            c.get("/metrics").unwrap()
        } else {
            Resp {
                status: 200,
                head: "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n".into(),
                body: render_from_socket(&sock).into_bytes(),
            }
        };
        let body = r.body_str();
        // The checked server passed a check, and the TCP session is over (bytes counted).
        let ok = parse(&body).is_ok_and(|e| {
            let srv = |s: &'static str| [("proxy", "be"), ("server", s)];
            let l4ok = [("proxy", "be"), ("server", "s1"), ("state", "L4OK")];
            sample(&e, "haproxy_server_check_status", &l4ok) == Some(1.0)
                && sample(&e, "haproxy_server_bytes_in_total", &[("proxy", "lt"), ("server", "t")])
                    == Some(5.0)
                // The three requests are over (counted when they end).
                && ["s1", "s2"]
                    .iter()
                    .filter_map(|s| sample(&e, "haproxy_server_sessions_total", &srv(s)))
                    .sum::<f64>()
                    >= 3.0
        });
        last = Some(r);
        ok
    });
    let r = last.unwrap();
    let e = parse(&r.body_str()).unwrap_or_else(|err| panic!("{imp:?}: {err}"));
    (r, e)
}

/// The reference exposition passes the strict parser (checks the parser, and HAProxy's
/// output is what the comparison below relies on).
#[test]
fn haproxy_exposition_parses() {
    if !which("haproxy") {
        println!("SKIPPED haproxy_exposition_parses: haproxy is not installed");
        return;
    }
    let (_, e) = fetch_metrics(Impl::Haproxy, Via::Endpoint);
    assert!(e.types.len() > 150, "{}", e.types.len());
}

#[test]
fn exporter_matches_haproxy_names_and_labels() {
    compare(Via::Endpoint);
}

/// The renderer alone, on live counters read from the stats socket.
#[test]
fn renderer_matches_haproxy_names_and_labels() {
    compare(Via::Renderer);
}

fn compare(via: Via) {
    let (resp, ours) = fetch_metrics(Impl::Rhaproxy, via);
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4")
    );
    // Expected names and labels, by construction.
    let fe = [("proxy", "fe")];
    // Three requests, plus the earlier polls of /metrics (counted once finished).
    assert!(sample(&ours, "haproxy_frontend_http_requests_total", &fe).unwrap() >= 3.0);
    let ok = sample(
        &ours,
        "haproxy_frontend_http_responses_total",
        &[("proxy", "fe"), ("code", "2xx")],
    );
    assert!(ok.unwrap() >= 3.0);
    assert_eq!(
        sample(
            &ours,
            "haproxy_frontend_status",
            &[("proxy", "lt"), ("state", "UP")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &ours,
            "haproxy_server_status",
            &[("proxy", "be"), ("server", "s3"), ("state", "MAINT")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &ours,
            "haproxy_server_sessions_total",
            &[("proxy", "lt"), ("server", "t")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &ours,
            "haproxy_server_bytes_in_total",
            &[("proxy", "lt"), ("server", "t")]
        ),
        Some(5.0)
    );
    assert!(
        sample(
            &ours,
            "haproxy_server_limit_sessions",
            &[("proxy", "be"), ("server", "s2")]
        )
        .unwrap()
        .is_nan()
    );
    assert!(
        sample(
            &ours,
            "haproxy_frontend_http_requests_total",
            &[("proxy", "lt")]
        )
        .is_none()
    );
    assert_eq!(
        ours.types
            .get("haproxy_backend_http_requests_total")
            .map(|s| s.as_str()),
        Some("counter")
    );
    assert_eq!(
        ours.types
            .get("haproxy_backend_current_sessions")
            .map(|s| s.as_str()),
        Some("gauge")
    );
    assert!(
        ours.samples.keys().any(
            |(n, l)| n == "haproxy_process_build_info" && l.iter().any(|(k, _)| k == "version")
        )
    );

    if !which("haproxy") {
        println!("SKIPPED the comparison with HAProxy: haproxy is not installed");
        return;
    }
    let (_, theirs) = fetch_metrics(Impl::Haproxy, Via::Endpoint);
    let our_names: BTreeSet<&String> = ours.types.keys().collect();
    let their_names: BTreeSet<&String> = theirs.types.keys().collect();
    let missing: Vec<_> = their_names.difference(&our_names).collect();
    let extra: Vec<_> = our_names.difference(&their_names).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "metric families differ: missing {missing:?}, extra {extra:?}"
    );
    for (name, t) in &theirs.types {
        assert_eq!(ours.types.get(name), Some(t), "type of {name}");
    }
    assert_eq!(ours.order, theirs.order, "family order");
    // Same label names per family, and the same label sets (values aside from version).
    assert_eq!(label_sets(&ours), label_sets(&theirs));
    let keys = |e: &Exposition| -> BTreeSet<(String, Vec<(String, String)>)> {
        e.samples
            .keys()
            .filter(|(n, _)| n != "haproxy_process_build_info")
            .cloned()
            .collect()
    };
    let (a, b) = (keys(&ours), keys(&theirs));
    let only_ours: Vec<_> = a.difference(&b).collect();
    let only_theirs: Vec<_> = b.difference(&a).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "samples differ: only rhaproxy {only_ours:?}, only HAProxy {only_theirs:?}"
    );
    println!(
        "{} metric families and {} samples, same names, types and labels as HAProxy 2.6",
        ours.types.len(),
        a.len()
    );
}
