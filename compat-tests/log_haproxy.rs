//! rhaproxy's log engine against real HAProxy 2.6.
//!
//! (a) `haproxy -c` on many log-format strings (valid and invalid, HTTP and TCP proxies) and on
//!     `log` directive forms: our compiler / parser must accept and reject the same ones with
//!     the same alert texts.
//! (b) A real `haproxy -db` logging by UDP to sockets of this test, with `option httplog`,
//!     `option tcplog`, `option httplog clf` and custom formats using every variable and flag;
//!     requests go through it, and for every datagram we build a `LogRecord` from what the test
//!     knows and check that our renderer and framer produce the same bytes, after masking only
//!     clocks, timers, the concurrency gauges (`%ac %fc %bc %sc`: a connection that just
//!     closed may still be counted when the next line is logged) and `%rt`, which HAProxy's
//!     own internal requests move.
//!
//! Without `haproxy` on PATH every test prints `SKIPPED (haproxy not installed): ...`.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rhaproxy::log::format::{
    CLF_HTTPLOG_FORMAT, HTTPLOG_FORMAT, HTTPSLOG_FORMAT, LogFormat, Node, TCPLOG_FORMAT, Var,
    compile, render_connect_line,
};
use rhaproxy::log::record::LogRecord;
use rhaproxy::log::syslog::{self, Header, SyslogFormat};
use rhaproxy::log::target::{parse_global_log_args, parse_log_args};

const HAPROXY: &str = "haproxy";

fn haproxy_available(test: &str) -> bool {
    match Command::new(HAPROXY)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => true,
        _ => {
            println!("SKIPPED (haproxy not installed): {test}");
            false
        }
    }
}

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "rhap-log-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Quote a string as one double-quoted HAProxy config word.
fn cfg_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

/// Run `haproxy -c`; return stderr.
fn haproxy_check(cfg: &PathBuf) -> String {
    let out = Command::new(HAPROXY)
        .arg("-c")
        .arg("-f")
        .arg(cfg)
        .output()
        .expect("run haproxy -c");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The alert text HAProxy printed for config line `line` after `marker`, if any.
fn alert_for_line(stderr: &str, file: &str, line: usize, marker: &str) -> Option<String> {
    // configs are given by absolute path, which HAProxy prints in full
    let tags = [format!("/{file}:{line}]: "), format!("/{file}:{line}] : ")];
    let lines: Vec<&str> = stderr.lines().collect();
    for (k, l) in lines.iter().enumerate() {
        for tag in &tags {
            if let Some(p) = l.find(tag.as_str()) {
                let rest = &l[p + tag.len()..];
                if let Some(q) = rest.find(marker) {
                    let mut msg = rest[q + marker.len()..].to_string();
                    // a message ending with '\n' shows as an empty next line
                    if lines.get(k + 1) == Some(&"") {
                        msg.push('\n');
                    }
                    return Some(msg);
                }
            }
        }
    }
    None
}

// ------------------------------------------------------------------------------------------
// (a) haproxy -c comparisons
// ------------------------------------------------------------------------------------------

const EVERY_VAR: &str = "%o|%B|%U|%CC|%CS|%H|%HM|%HP|%HPO|%HQ|%HU|%HV|%ID|%ST|%T|%Tl|%Ts|%t|%tr|%trg|%trl|%ms|%Th|%Ti|%TR|%Tq|%Tw|%Tc|%Tr|%Ta|%Td|%Tt|%Tu|%ac|%fc|%bc|%sc|%rc|%sq|%bq|%b|%f|%ft|%s|%bi|%bp|%ci|%cp|%fi|%fp|%si|%sp|%hr|%hs|%hrl|%hsl|%lc|%pid|%r|%rt|%sslc|%sslv|%ts|%tsc";

fn format_cases() -> Vec<(bool, String)> {
    let mut v: Vec<(bool, String)> = [
        "%ci %zz",
        "%{+Q",
        "%{+Q}",
        "%{+Z}o",
        "%[src",
        "%[nosuch]",
        "%[nosuch] tail",
        "%[req.hdr(host)]",
        "%[res.hdr(server)]",
        "%",
        "abc%",
        "%%",
        "%{+Q,+E}o %ci",
        "%{Q}ci",
        "%{}ci",
        "%{+Q}%%",
        "%[src]x",
        "%Cx",
        "%{+Q}ci%",
        "%[capture.req.hdr(0)]",
        "%[capture.req.hdr(0)",
        "%[]",
        "%[ src]",
        "%{+X}Ts",
        "a %ci %[src,nosuchconv]",
        "%[src(1)]",
        "%[src()]",
        "%{+q}ci",
        "%{+E}",
        "%{+Q} x",
        "%{+Q}1",
        "%{+Q}ci1",
        "%ci1",
        "%Tt_x",
        "%Tt-x",
        "%[src,lower",
        "%[src,lower]",
        "%[src,upper]",
        "%[fe_name,upper,lower]",
        "%{+Q}{",
        "%{+Q,+E",
        "%{+Q}{+E}ci",
        "%9",
        "ab %9x",
        "% x",
        "%{",
        "%%%",
        "%[src,",
        "%[src,lower(]",
        "%[src]%[dst",
        "%tsc%",
        "%Tx",
        "%[fe_name ]",
        "%[src lower]",
        "%[src,lower,]",
        "%[src,,]",
        "%[src,upper(1)]",
        "%[capture.req.hdr]",
        "%[capture.req.hdr(x)]",
        "%[capture.res.hdr(1)]",
        "%[capture.req.hdr(0)]%[capture.req.hdr(1)]",
        "%[fe_name] %[be_name] %[srv_name] %[src_port] %[dst] %[dst_port]",
        "%{+Q}[src] %{+X}[src_port]",
        "%{+Q,-Q}ci %ci] %ci{",
        "  lead  and trail  ",
        TCPLOG_FORMAT,
        HTTPLOG_FORMAT,
        CLF_HTTPLOG_FORMAT,
        HTTPSLOG_FORMAT,
        "%[fc_err]/%[ssl_fc_err,hex]/%[ssl_c_err]/%[ssl_c_ca_err]/%[ssl_fc_is_resumed]/%[ssl_fc_sni]/%[ssl_fc]",
        "%[ssl_fc_sni,hex,lower]",
        "%[var(x)]",
        "%[var()]",
        "%[var]",
        "%[var(txn.x)] %[var(txn.x,def)] %[var(txn.a.b)] %[var(proc.x)] %[var(check.x)]",
        "%[var(foo.x)]",
        "%[var(txn.)]",
        "%[var(txn.x-y)]",
        "%[var(txn.x y)]",
        "%[var(TXN.x)]",
        "%[var(txn.x,def,3)]",
        "%[str()] %[str] %[str(abc)] %[env] %[env()] %[env(HOME)] %[hostname] %[hostname()]",
        "%[str(a,b)]",
        "%[env(A,B)]",
        "%[hostname(1)]",
        "%[str(a)b]",
        EVERY_VAR,
    ]
    .iter()
    .map(|s| (true, s.to_string()))
    .collect();
    for f in [
        "%r",
        "%HM %HP",
        "%CC",
        "%tr",
        "%Ta",
        "%ST %hr %hs %tsc %sslc %ID",
        TCPLOG_FORMAT,
        HTTPLOG_FORMAT,
        "%[capture.req.hdr(0)] %[src]",
    ] {
        v.push((false, f.to_string()));
    }
    for name in rhaproxy::log::format::variable_names() {
        v.push((false, format!("%{name}")));
    }
    v
}

/// Formats HAProxy accepts but rhaproxy refuses on purpose (sample fetches/converters it does
/// not evaluate at log time). Our error must say so.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "%[uuid]",
    "%[src,sha1]",
    "%[date]",
    "%[fc_err_str]",
    "%[always_true]",
];

#[test]
fn log_format_compile_matches_haproxy_check() {
    if !haproxy_available("log_format_compile_matches_haproxy_check") {
        return;
    }
    let dir = TempDir::new("fmt");
    let mut cases = format_cases();
    for u in KNOWN_UNSUPPORTED {
        cases.push((true, u.to_string()));
    }
    let mut cfg = String::from(
        "global\n    log 127.0.0.1:514 local0\ndefaults\n    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\n",
    );
    let mut lines = Vec::new();
    for (k, (http, f)) in cases.iter().enumerate() {
        cfg.push_str(&format!(
            "frontend f{k}\n    mode {}\n    log global\n",
            if *http { "http" } else { "tcp" }
        ));
        lines.push(cfg.lines().count() + 1);
        cfg.push_str(&format!("    log-format {}\n", cfg_quote(f)));
    }
    let path = dir.file("fmt.cfg", &cfg);
    let stderr = haproxy_check(&path);
    let mut failures = Vec::new();
    let mut compared = 0;
    for (k, (http, f)) in cases.iter().enumerate() {
        let theirs = alert_for_line(
            &stderr,
            "fmt.cfg",
            lines[k],
            "failed to parse log-format : ",
        );
        let ours = compile(f, *http).err().map(|e| e.0);
        if KNOWN_UNSUPPORTED.contains(&f.as_str()) {
            if theirs.is_some() {
                failures.push(format!("{f:?}: HAProxy now rejects it: {theirs:?}"));
            }
            match &ours {
                Some(m) if m.contains("not supported by rhaproxy") => {}
                _ => failures.push(format!(
                    "{f:?}: expected a 'not supported' error, got {ours:?}"
                )),
            }
            continue;
        }
        compared += 1;
        if theirs != ours {
            failures.push(format!(
                "mode {} format {f:?}\n   haproxy: {theirs:?}\n  rhaproxy: {ours:?}",
                if *http { "http" } else { "tcp" }
            ));
        }
    }
    println!("{compared} log-format strings compared with haproxy -c");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn log_directive_matches_haproxy_check() {
    if !haproxy_available("log_directive_matches_haproxy_check") {
        return;
    }
    let global_cases = [
        "",
        "127.0.0.1",
        "127.0.0.1 local9",
        "127.0.0.1 local0",
        "127.0.0.1 local0 info",
        "127.0.0.1 local0 nosuch",
        "127.0.0.1 local0 info nosuch",
        "127.0.0.1 local0 info debug extra",
        "127.0.0.1 len 70 local0",
        "127.0.0.1 len 65536 local0",
        "127.0.0.1 len abc local0",
        "127.0.0.1 len local0",
        "127.0.0.1 len 100",
        "127.0.0.1 len 100x local0",
        "127.0.0.1 format nosuch local0",
        "127.0.0.1 format",
        "127.0.0.1 format rfc5424",
        "127.0.0.1 format raw len 100 local0",
        "127.0.0.1 len 200 format rfc5424 sample 1,3-4:5 daemon info err",
        "127.0.0.1 sample 3:2 local0",
        "127.0.0.1 sample 0:2 local0",
        "127.0.0.1 sample 1 local0",
        "127.0.0.1 sample 1-2:x local0",
        "127.0.0.1 sample 2-1:3 local0",
        "127.0.0.1 sample 1,1:3 local0",
        "127.0.0.1 sample :2 local0",
        "127.0.0.1 sample 1,,2:5 local0",
        "127.0.0.1:99999 local0",
        "127.0.0.1:abc local0",
        "127.0.0.1:1-5 local0",
        "127.0.0.1:-5 local0",
        "rsyslog.invalid local0",
        "global",
        "global local0",
        "stdout local0",
        "stderr format raw daemon",
        "fd@1 local0",
        "fd@x local0",
        "/dev/log local0",
        "unix@/tmp/nowhere.sock local0",
        "udp@127.0.0.1:514 local0",
        "udp4@127.0.0.1 local0",
        "udp6@::1 local0",
        "udp6@[::1]:514 local0",
        "udp6@127.0.0.1 local0",
        "::1 local0",
        "fe80::1 local0",
        "[::1]:514 local0",
        "::1:514 local0",
        "[::1 local0",
        "localhost local0",
        "ring@foo local0",
        "tcp@127.0.0.1:514 local0",
        "127.0.0.1 LOCAL0",
    ];
    let proxy_cases = [
        "global",
        "127.0.0.1",
        "global local0",
        "127.0.0.1 len 70 local0",
    ];
    let dir = TempDir::new("dir");
    let mut cfg = String::from("global\n");
    let mut lines = Vec::new();
    for c in global_cases {
        lines.push(cfg.lines().count() + 1);
        cfg.push_str(&format!("    log {c}\n"));
    }
    cfg.push_str(
        "defaults\n    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\n",
    );
    cfg.push_str("frontend fe\n");
    let mut plines = Vec::new();
    for c in proxy_cases {
        plines.push(cfg.lines().count() + 1);
        cfg.push_str(&format!("    log {c}\n"));
    }
    let path = dir.file("log.cfg", &cfg);
    let stderr = haproxy_check(&path);
    let mut failures = Vec::new();
    let mut check = |c: &str, line: usize, ours: Option<String>| {
        let theirs = alert_for_line(&stderr, "log.cfg", line, "");
        if theirs != ours {
            failures.push(format!(
                "log {c}\n   haproxy: {theirs:?}\n  rhaproxy: {ours:?}"
            ));
        }
    };
    for (c, line) in global_cases.iter().zip(&lines) {
        let args: Vec<&str> = c.split_whitespace().collect();
        check(c, *line, parse_global_log_args(&args).err());
    }
    for (c, line) in proxy_cases.iter().zip(&plines) {
        let args: Vec<&str> = c.split_whitespace().collect();
        check(c, *line, parse_log_args(&args).err());
    }
    println!(
        "{} log directives compared with haproxy -c",
        global_cases.len() + proxy_cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ------------------------------------------------------------------------------------------
// (b) live haproxy -db
// ------------------------------------------------------------------------------------------

/// The haproxy this test started; killed (by PID) and reaped on drop.
struct HaproxyGuard(Child);

impl Drop for HaproxyGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port from a per-process sequence below the ephemeral range: `bind(0)` could hand
/// two tests running at once the same just-released port, and HAProxy binds with
/// SO_REUSEPORT, so two instances on one port would share its connections (seen once in CI: a
/// request reached the other test's frontend).
fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    const LO: usize = 10_000;
    const SPAN: usize = 22_000;
    // Offset from the sequence of compat-tests/support (same formula, other start).
    let seed = (std::process::id() as usize)
        .wrapping_mul(7919)
        .wrapping_add(11_000)
        % SPAN;
    loop {
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (LO + (seed + k * 37) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("haproxy did not listen on {port}");
}

/// Receive one datagram (5 s timeout).
fn recv(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 70000];
    let n = sock
        .recv(&mut buf)
        .expect("no log datagram from haproxy within 5s");
    buf.truncate(n);
    buf
}

/// Split a `local`-format datagram `<PRI>Mmm dd HH:MM:SS TAG[PID]: MSG\n` into (PRI, TAG, PID, MSG).
fn split_local(d: &[u8]) -> (u32, String, u32, String) {
    let s = String::from_utf8_lossy(d).into_owned();
    let gt = s.find('>').unwrap();
    let pri = s[1..gt].parse().unwrap();
    let rest = &s[gt + 1 + 16..];
    let lb = rest.find('[').unwrap();
    let rb = rest.find("]: ").unwrap();
    let tag = rest[..lb].to_string();
    let pid = rest[lb + 1..rb].parse().unwrap();
    let msg = rest[rb + 3..].strip_suffix('\n').unwrap().to_string();
    (pri, tag, pid, msg)
}

/// The raw message bytes of a `local`-format datagram.
fn raw_msg(d: &[u8]) -> Vec<u8> {
    let p = d.windows(3).position(|w| w == b"]: ").unwrap() + 3;
    d[p..d.len() - 1].to_vec()
}

/// Blank the timestamp of a framed datagram.
fn mask_ts(fmt: SyslogFormat, d: &[u8]) -> Vec<u8> {
    let mut d = d.to_vec();
    let (start, len) = match fmt {
        SyslogFormat::Local | SyslogFormat::Rfc3164 => {
            (d.iter().position(|&c| c == b'>').unwrap() + 1, 15)
        }
        SyslogFormat::Rfc5424 => (d.iter().position(|&c| c == b'>').unwrap() + 3, 32),
        SyslogFormat::Timed => (d.iter().position(|&c| c == b'>').unwrap() + 1, 32),
        SyslogFormat::Iso => (0, 32),
        _ => return d,
    };
    for c in &mut d[start..start + len] {
        *c = b'X';
    }
    d
}

fn is_masked(v: Var) -> bool {
    use Var::*;
    matches!(
        v,
        T | Tl | Ts | t | tr | trg | trl | ms // clocks
            | Th | Ti | TR | Tq | Tw | Tc | Tr | Ta | Td | Tt | Tu // timers
            | ac | fc | bc | sc // concurrency gauges: a just-closed connection may still count
            | rt // process-wide request counter, moved by haproxy's internal requests
    )
}

/// Cut `line` into one text per variable/sample node of `f` (literal nodes must match).
fn cut(f: &LogFormat, line: &str) -> Result<Vec<String>, String> {
    let mut pos = 0;
    let mut out = Vec::new();
    for (k, n) in f.nodes.iter().enumerate() {
        match n {
            Node::Text(t) => {
                if !line[pos..].starts_with(t.as_str()) {
                    return Err(format!("literal {t:?} expected at {pos} in {line:?}"));
                }
                pos += t.len();
            }
            Node::Sep => {
                if line[pos..].starts_with(' ') {
                    pos += 1;
                }
            }
            Node::Var {
                var: Var::hr | Var::hs,
                ..
            } if !line[pos..].starts_with('{') && !line[pos..].starts_with("\"{") => {
                // capture lists print nothing at all without a capture area
                out.push(String::new());
            }
            Node::Var { .. } | Node::Sample { .. } => {
                let term = match f.nodes.get(k + 1) {
                    Some(Node::Text(t)) => t.chars().next(),
                    Some(Node::Sep) => Some(' '),
                    _ => None,
                };
                let rest = &line[pos..];
                // A quoted value may contain the terminator: end at a quote followed by it.
                let quoted_end = rest.strip_prefix('"').and_then(|inner| {
                    let pat = match term {
                        Some(c) => format!("\"{c}"),
                        None => "\"".to_string(),
                    };
                    inner
                        .find(&pat)
                        .map(|e| e + 2)
                        .filter(|e| term.is_some() || *e == rest.len())
                });
                let end = quoted_end
                    .or_else(|| term.and_then(|c| rest.find(c)))
                    .map(|e| pos + e)
                    .unwrap_or(line.len());
                out.push(line[pos..end].to_string());
                pos = end;
            }
        }
    }
    if pos != line.len() {
        return Err(format!("trailing text {:?}", &line[pos..]));
    }
    Ok(out)
}

/// Compare HAProxy's line with ours, node by node, ignoring masked variables (whose shape
/// is still checked).
fn compare(f: &LogFormat, theirs: &str, ours: &str) -> Result<(), String> {
    let a = cut(f, theirs).map_err(|e| format!("haproxy line: {e}"))?;
    let b = cut(f, ours).map_err(|e| format!("our line: {e}"))?;
    let vars = f.nodes.iter().filter_map(|n| match n {
        Node::Var { var, .. } => Some(Some(*var)),
        Node::Sample { .. } => Some(None),
        _ => None,
    });
    for ((x, y), v) in a.iter().zip(&b).zip(vars) {
        match v {
            Some(v) if is_masked(v) => {
                if x.is_empty() != y.is_empty() {
                    return Err(format!("%{v:?}: {x:?} vs {y:?}"));
                }
            }
            _ => {
                if x != y {
                    return Err(format!("{v:?}: haproxy {x:?} vs ours {y:?}"));
                }
            }
        }
    }
    if a.len() != b.len() {
        return Err("different number of fields".into());
    }
    Ok(())
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

struct Ports {
    http: u16,
    clf: u16,
    https: u16,
    all: u16,
    allq: u16,
    allx: u16,
    allqe: u16,
    tcp: u16,
    tcpall: u16,
    ans: u16,
    probe: u16,
}

const TCP_VARS: &str = "%o^%B^%U^%H^%ID^%ST^%T^%Tl^%Ts^%t^%ms^%Th^%Tw^%Tc^%Td^%Tt^%Tu^%ac^%fc^%bc^%sc^%rc^%sq^%bq^%b^%f^%ft^%s^%bi^%bp^%ci^%cp^%fi^%fp^%si^%sp^%hr^%hs^%hrl^%hsl^%lc^%pid^%rt^%sslc^%sslv^%ts^%tsc^%[src]^%[dst]^%[src_port]^%[dst_port]^%[fe_name]^%[be_name]^%[srv_name]^%[capture.req.hdr(0)]";

fn all_http_vars() -> String {
    // '^' separates fields: captures contain '|'.
    let mut s = EVERY_VAR.replace('|', "^");
    s.push_str("^%[src]^%[dst]^%[src_port]^%[dst_port]^%[fe_name,upper]^%[be_name]^%[srv_name,lower]^%[capture.req.hdr(0)]^%[capture.req.hdr(1)]^%[capture.req.hdr(7)]^%[capture.res.hdr(0)]^%[src,hex]^%[dst_port,hex]^%[fe_name,hex]^%[src,upper,hex,lower]^%[ssl_fc]^%[fc_err]^%[ssl_fc_sni]^%[capture.req.hdr(1),hex]^%[str(lit)]^%[hostname]^%[env(HOME)]^%[var(txn.x)]^%[var(txn.nope,dflt)]^%[var(txn.x),upper]");
    s
}

fn live_config(p: &Ports, udp: &[(u16, &str)], echo: u16) -> String {
    let mut g = String::from("global\n");
    for (port, opts) in udp {
        g.push_str(&format!("    log 127.0.0.1:{port} {opts}\n"));
    }
    let all = all_http_vars();
    let caps = "    capture request header Host len 32\n    capture request header User-Agent len 12\n    capture response header Content-Type len 32\n    capture cookie SESS len 32\n    http-request set-var(txn.x) str(hello)\n";
    format!(
        "{g}defaults
    mode http
    log global
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe_http
    bind 127.0.0.1:{http}
    option httplog
    capture request header Host len 32
    capture response header Content-Type len 32
    default_backend be_http
frontend fe_clf
    bind 127.0.0.1:{clf}
    option httplog clf
    default_backend be_http
frontend fe_https
    bind 127.0.0.1:{https}
    option httpslog
    default_backend be_http
frontend fe_all
    bind 127.0.0.1:{all}
{caps}    log-format {f_all}
    default_backend be_http
frontend fe_allq
    bind 127.0.0.1:{allq}
{caps}    log-format {f_allq}
    default_backend be_http
frontend fe_allx
    bind 127.0.0.1:{allx}
{caps}    log-format {f_allx}
    default_backend be_http
frontend fe_allqe
    bind 127.0.0.1:{allqe}
{caps}    log-format {f_allqe}
    default_backend be_http
backend be_http
    server s1 127.0.0.1:{ans}
listen ans
    bind 127.0.0.1:{ans}
    http-request return status 200 content-type text/plain string \"hello\" hdr Set-Cookie \"SESS=fromsrv\"
frontend fe_tcp
    mode tcp
    bind 127.0.0.1:{tcp}
    option tcplog
    default_backend be_tcp
frontend fe_tcpall
    mode tcp
    bind 127.0.0.1:{tcpall}
    log-format {f_tcp}
    default_backend be_tcp
backend be_tcp
    mode tcp
    server echo 127.0.0.1:{echo}
listen probe
    mode tcp
    no log
    bind 127.0.0.1:{probe}
",
        http = p.http,
        clf = p.clf,
        https = p.https,
        all = p.all,
        allq = p.allq,
        allx = p.allx,
        allqe = p.allqe,
        ans = p.ans,
        tcp = p.tcp,
        tcpall = p.tcpall,
        probe = p.probe,
        f_all = cfg_quote(&format!("A {all}")),
        f_allq = cfg_quote(&format!("Q %{{+Q}}o{all}")),
        f_allx = cfg_quote(&format!("X %{{+X}}o{all}")),
        f_allqe = cfg_quote(&format!("QE %{{+Q,+E}}o{all}")),
        f_tcp = cfg_quote(&format!("T {TCP_VARS}")),
    )
}

/// Echo server for the TCP backend: echoes until EOF; reports each peer address.
fn echo_server() -> (u16, std::sync::mpsc::Receiver<SocketAddr>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = tx.send(s.peer_addr().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    (port, rx)
}

/// Send bytes, optionally half-close, read the whole answer. Returns (client address,
/// bytes received).
fn exchange_opt(port: u16, req: &[u8], half_close: bool) -> (SocketAddr, Vec<u8>) {
    exchange_to(SocketAddr::from(([127, 0, 0, 1], port)), req, half_close)
}

fn exchange_to(to: SocketAddr, req: &[u8], half_close: bool) -> (SocketAddr, Vec<u8>) {
    let mut s = TcpStream::connect(to).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = s.local_addr().unwrap();
    s.write_all(req).unwrap();
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    (me, resp)
}

/// HAProxy 2.6 counts HTTP bytes (`%B`, `%U`) on its internal HTX representation, which
/// drops the `": "` and CRLF of every header line: wire bytes minus 4 per header line
/// (measured; the runtime must report the same figures).
fn htx_bytes(wire: &[u8]) -> u64 {
    let head_end = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(wire.len());
    let head = &wire[..head_end];
    let lines = head.windows(2).filter(|w| w == b"\r\n").count();
    // minus the start line and the empty line
    let headers = lines.saturating_sub(2) as u64;
    wire.len() as u64 - 4 * headers
}

fn exchange(port: u16, req: &[u8]) -> (SocketAddr, Vec<u8>) {
    exchange_opt(port, req, true)
}

fn sa(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

fn zero_timers(r: &mut LogRecord) {
    for t in [
        &mut r.t_handshake,
        &mut r.t_idle,
        &mut r.t_request,
        &mut r.t_q,
        &mut r.t_queue,
        &mut r.t_connect,
        &mut r.t_response,
        &mut r.t_active,
        &mut r.t_data,
        &mut r.t_total,
        &mut r.t_user,
    ] {
        *t = Some(0);
    }
}

#[test]
fn live_haproxy_lines_match_our_renderer() {
    if !haproxy_available("live_haproxy_lines_match_our_renderer") {
        return;
    }
    let dir = TempDir::new("live");
    // Receivers: [0] local (main), then one per other framing, and a len-capped one.
    let formats: Vec<(SyslogFormat, &str, usize)> = vec![
        (SyslogFormat::Local, "local0", 1024),
        (SyslogFormat::Rfc3164, "format rfc3164 local1", 1024),
        (SyslogFormat::Rfc5424, "format rfc5424 local2", 1024),
        (SyslogFormat::Priority, "format priority local3", 1024),
        (SyslogFormat::Short, "format short local4", 1024),
        (SyslogFormat::Timed, "format timed local5", 1024),
        (SyslogFormat::Iso, "format iso local6", 1024),
        (SyslogFormat::Raw, "format raw local7", 1024),
        (SyslogFormat::Local, "len 120 daemon", 120),
    ];
    let socks: Vec<UdpSocket> = formats
        .iter()
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        })
        .collect();
    let udp: Vec<(u16, &str)> = socks
        .iter()
        .zip(&formats)
        .map(|(s, f)| (s.local_addr().unwrap().port(), f.1))
        .collect();
    let (echo_port, echo_peers) = echo_server();
    let p = Ports {
        http: free_port(),
        clf: free_port(),
        https: free_port(),
        all: free_port(),
        allq: free_port(),
        allx: free_port(),
        allqe: free_port(),
        tcp: free_port(),
        tcpall: free_port(),
        ans: free_port(),
        probe: free_port(),
    };
    // a tcp@ stream target: collect everything until haproxy exits
    let stream_l = TcpListener::bind("127.0.0.1:0").unwrap();
    let stream_port = stream_l.local_addr().unwrap().port();
    let stream_buf = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sb = stream_buf.clone();
    let stream_rx = std::thread::spawn(move || {
        let (mut c, _) = stream_l.accept().unwrap();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = c.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sb.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    let v6 = TcpListener::bind("[::1]:0").is_ok();
    if !v6 {
        println!("note: no IPv6 loopback, IPv6 requests skipped");
    }
    let mut cfg_text = live_config(&p, &udp, echo_port).replacen(
        "global\n",
        &format!("global\n    log tcp@127.0.0.1:{stream_port} format rfc5424 local0\n"),
        1,
    );
    if v6 {
        for port in [p.http, p.clf, p.https, p.all, p.allq, p.allx, p.allqe] {
            cfg_text = cfg_text.replace(
                &format!("    bind 127.0.0.1:{port}\n"),
                &format!("    bind 127.0.0.1:{port}\n    bind [::1]:{port}\n"),
            );
        }
    }
    let cfg = dir.file("live.cfg", &cfg_text);
    let check = haproxy_check(&cfg);
    assert!(
        !check.contains("ALERT"),
        "config rejected by haproxy:\n{check}"
    );
    let child = Command::new(HAPROXY)
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let guard = HaproxyGuard(child);
    let pid = guard.0.id();
    wait_listening(p.probe);

    let host = hostname();
    let main = &socks[0];
    let mut messages: Vec<Vec<u8>> = Vec::new(); // every raw message, for framing checks
    let mut checked = 0;
    let mut failures: Vec<String> = Vec::new();

    // Receive one traffic line, checking and skipping the `Connect from` line of `ans`.
    // Returns (message, backend source address seen by ans).
    let next_line =
        |expect_connect: bool, messages: &mut Vec<Vec<u8>>| -> (String, Option<SocketAddr>) {
            let mut bsrc = None;
            loop {
                let d = recv(main);
                let (pri, tag, dpid, msg) = split_local(&d);
                assert_eq!((pri, tag.as_str(), dpid), (134, "haproxy", pid), "{msg}");
                messages.push(raw_msg(&d));
                if let Some(rest) = msg.strip_prefix("Connect from ") {
                    assert!(expect_connect, "unexpected {msg}");
                    let from: SocketAddr = rest.split(' ').next().unwrap().parse().unwrap();
                    let mut ours = Vec::new();
                    render_connect_line(
                        &mut ours,
                        from,
                        format!("127.0.0.1:{}", p.ans).parse().unwrap(),
                        "ans",
                        true,
                    );
                    assert_eq!(String::from_utf8(ours).unwrap(), msg);
                    bsrc = Some(from);
                    continue;
                }
                return (msg, bsrc);
            }
        };

    let base = |fe: &str| LogRecord {
        hostname: Arc::from(host.as_str()),
        pid,
        frontend: Arc::from(fe),
        feconn: 1,
        accept_date: DateTime::<Utc>::UNIX_EPOCH,
        ..LogRecord::default()
    };

    // ---- HTTP requests through every HTTP frontend
    struct Http<'a> {
        fe: &'a str,
        port: u16,
        fmt: String,
        full_caps: bool,
    }
    let all = all_http_vars();
    let https = [
        Http {
            fe: "fe_http",
            port: p.http,
            fmt: HTTPLOG_FORMAT.into(),
            full_caps: false,
        },
        Http {
            fe: "fe_https",
            port: p.https,
            fmt: HTTPSLOG_FORMAT.into(),
            full_caps: false,
        },
        Http {
            fe: "fe_clf",
            port: p.clf,
            fmt: CLF_HTTPLOG_FORMAT.into(),
            full_caps: false,
        },
        Http {
            fe: "fe_all",
            port: p.all,
            fmt: format!("A {all}"),
            full_caps: true,
        },
        Http {
            fe: "fe_allq",
            port: p.allq,
            fmt: format!("Q %{{+Q}}o{all}"),
            full_caps: true,
        },
        Http {
            fe: "fe_allx",
            port: p.allx,
            fmt: format!("X %{{+X}}o{all}"),
            full_caps: true,
        },
        Http {
            fe: "fe_allqe",
            port: p.allqe,
            fmt: format!("QE %{{+Q,+E}}o{all}"),
            full_caps: true,
        },
    ];
    let mut requests: Vec<(&str, &str, &str, bool)> = vec![
        ("GET /foo?bar=1 HTTP/1.1", "example.com", "curl/8", false),
        ("GET /a/b HTTP/1.1", "h\"o]s\\t", "x\"y]z\\w|{}#", false),
        // '~' stands for the obs-text byte 0x80 (logged as #80 in %hr)
        ("POST /p%20q?x=\"]\\&y HTTP/1.1", "host:80", "u~a", false),
    ];
    if v6 {
        requests.push(("HEAD /v6 HTTP/1.1", "[::1]", "six", true));
    }
    for h in &https {
        let f = compile(&h.fmt, true).unwrap();
        for (lc, (rl, hosthdr, ua, over_v6)) in requests.iter().enumerate() {
            let req = format!(
                "{rl}\r\nHost: {hosthdr}\r\nUser-Agent: {ua}\r\nCookie: SESS=fromcli\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let fe_addr: SocketAddr = if *over_v6 {
                format!("[::1]:{}", h.port).parse().unwrap()
            } else {
                format!("127.0.0.1:{}", h.port).parse().unwrap()
            };
            let obs = |s: &str| -> Vec<u8> {
                s.bytes()
                    .map(|b| if b == b'~' { 0x80 } else { b })
                    .collect()
            };
            let req = obs(&req);
            let (me, resp) = exchange_to(fe_addr, &req, true);
            let (theirs, bsrc) = next_line(true, &mut messages);
            let ua_cap: Vec<u8> = obs(ua).into_iter().take(12).collect();
            let mut r = LogRecord {
                status: 200,
                bytes_out: htx_bytes(&resp),
                bytes_in: htx_bytes(&req),
                backend: Some(Arc::from("be_http")),
                server: Some(Arc::from("s1")),
                client: Some(me),
                frontend_addr: Some(fe_addr),
                backend_src: bsrc,
                server_addr: sa(&format!("127.0.0.1:{}", p.ans)),
                req_captures: Some(if h.full_caps {
                    vec![Some(hosthdr.as_bytes().to_vec()), Some(ua_cap)]
                } else if h.fe == "fe_http" {
                    vec![Some(hosthdr.as_bytes().to_vec())]
                } else {
                    vec![]
                }),
                res_captures: Some(if h.fe == "fe_clf" {
                    vec![]
                } else {
                    vec![Some("text/plain".into())]
                }),
                cookie_req: h.full_caps.then(|| "SESS=fromcli".into()),
                cookie_res: h.full_caps.then(|| "SESS=fromsrv".into()),
                vars: if h.full_caps {
                    vec![("txn.x".into(), b"hello".to_vec())]
                } else {
                    vec![]
                },
                request_line: Some(rl.as_bytes().to_vec()),
                log_counter: lc as u64,
                ..base(h.fe)
            };
            if h.fe == "fe_clf" || h.fe == "fe_https" {
                r.req_captures = None;
                r.res_captures = None;
            }
            zero_timers(&mut r);
            let ours = f.render_to_string(&r);
            checked += 1;
            if let Err(e) = compare(&f, &theirs, &ours) {
                failures.push(format!(
                    "{} request {lc}: {e}\n   haproxy: {theirs}\n  rhaproxy: {ours}",
                    h.fe
                ));
            }
        }
        // a garbage request: 400 <BADREQ>, no capture area, no backend
        let (me, _) = exchange_opt(h.port, b"garbage\r\n\r\n", false);
        let (theirs, _) = next_line(false, &mut messages);
        let mut r = LogRecord {
            status: 400,
            client: Some(me),
            frontend_addr: sa(&format!("127.0.0.1:{}", h.port)),
            term_state: *b"PR--",
            session_only: true,
            log_counter: requests.len() as u64,
            ..base(h.fe)
        };
        zero_timers(&mut r);
        r.t_request = None;
        r.t_q = None;
        r.t_queue = None;
        r.t_connect = None;
        r.t_response = None;
        r.t_data = None;
        let ours = f.render_to_string(&r);
        checked += 1;
        if let Err(e) = compare(&f, &theirs, &ours) {
            failures.push(format!(
                "{} badreq: {e}\n   haproxy: {theirs}\n  rhaproxy: {ours}",
                h.fe
            ));
        }
    }

    // ---- TCP sessions
    for (fe, port, fmt) in [
        ("fe_tcp", p.tcp, TCPLOG_FORMAT.to_string()),
        ("fe_tcpall", p.tcpall, format!("T {TCP_VARS}")),
    ] {
        let f = compile(&fmt, false).unwrap();
        for (lc, payload) in [&b"hello\n"[..], &[b'x'; 3000][..]].iter().enumerate() {
            let (me, resp) = exchange(port, payload);
            assert_eq!(resp.len(), payload.len());
            let bsrc = echo_peers.recv_timeout(Duration::from_secs(5)).unwrap();
            let (theirs, _) = next_line(false, &mut messages);
            let mut r = LogRecord {
                // HAProxy prints -1 when the format's capture.req.hdr() made it allocate an
                // HTTP transaction, 0 otherwise
                status: if fmt.contains("capture.req") { -1 } else { 0 },
                bytes_out: resp.len() as u64,
                bytes_in: payload.len() as u64,
                backend: Some(Arc::from("be_tcp")),
                server: Some(Arc::from("echo")),
                client: Some(me),
                frontend_addr: sa(&format!("127.0.0.1:{port}")),
                backend_src: Some(bsrc),
                server_addr: sa(&format!("127.0.0.1:{echo_port}")),
                log_counter: lc as u64,
                term_state: *b"----",
                ..base(fe)
            };
            zero_timers(&mut r);
            let ours = f.render_to_string(&r);
            checked += 1;
            if let Err(e) = compare(&f, &theirs, &ours) {
                failures.push(format!(
                    "{fe} session {lc}: {e}\n   haproxy: {theirs}\n  rhaproxy: {ours}"
                ));
            }
        }
    }

    // ---- framing: every receiver got every message. HAProxy threads send to the targets one
    // after the other, so the order may differ between receivers: compare as sorted lists.
    let now = syslog::now_local();
    let mut framed = 0;
    for (k, (fmt, opts, max_len)) in formats.iter().enumerate() {
        if k == 0 {
            continue;
        }
        let facility = syslog::facility_from_name(opts.split(' ').next_back().unwrap()).unwrap();
        let h = Header {
            format: *fmt,
            facility,
            level: 6,
            tag: "haproxy",
            pid,
            hostname: None,
            max_len: *max_len,
        };
        let mut theirs: Vec<Vec<u8>> = messages
            .iter()
            .map(|_| mask_ts(*fmt, &recv(&socks[k])))
            .collect();
        let mut ours: Vec<Vec<u8>> = messages
            .iter()
            .map(|msg| {
                let mut d = Vec::new();
                syslog::frame(&mut d, &h, &now, b"- ", msg);
                mask_ts(*fmt, &d)
            })
            .collect();
        theirs.sort();
        ours.sort();
        framed += theirs.len();
        for (a, b) in theirs.iter().zip(&ours) {
            if a != b {
                failures.push(format!(
                    "framing {opts}:\n   haproxy: {:?}\n  rhaproxy: {:?}",
                    String::from_utf8_lossy(a),
                    String::from_utf8_lossy(b)
                ));
            }
        }
    }
    // the tcp@ stream carries the same framed lines, LF-terminated; HAProxy forwards them
    // from a ring, so wait for them before stopping it
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && stream_buf
            .lock()
            .unwrap()
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            < messages.len()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(guard);
    stream_rx.join().unwrap();
    let stream = std::mem::take(&mut *stream_buf.lock().unwrap());
    let h = Header {
        format: SyslogFormat::Rfc5424,
        facility: 16,
        level: 6,
        tag: "haproxy",
        pid,
        hostname: None,
        max_len: 1024,
    };
    let mut theirs: Vec<Vec<u8>> = stream
        .split_inclusive(|&c| c == b'\n')
        .map(|l| mask_ts(SyslogFormat::Rfc5424, l))
        .collect();
    let mut ours: Vec<Vec<u8>> = messages
        .iter()
        .map(|msg| {
            let mut d = Vec::new();
            syslog::frame(&mut d, &h, &now, b"- ", msg);
            mask_ts(SyslogFormat::Rfc5424, &d)
        })
        .collect();
    theirs.sort();
    ours.sort();
    if theirs != ours {
        failures.push(format!(
            "tcp@ stream: {} lines vs {} expected; first differing: {:?}",
            theirs.len(),
            ours.len(),
            theirs
                .iter()
                .zip(&ours)
                .find(|(a, b)| a != b)
                .map(|(a, b)| (String::from_utf8_lossy(a), String::from_utf8_lossy(b)))
        ));
    }
    framed += theirs.len();
    println!(
        "{checked} HAProxy log lines re-rendered, {framed} datagrams/stream lines re-framed ({} UDP formats + tcp@)",
        formats.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `log-send-hostname` (default format becomes rfc3164, rfc5424 gets the host), global and
/// per-proxy `log-tag`, `log-format-sd` with flags and a capture, and local time with a
/// non-zero UTC offset (HAProxy runs with `TZ=Asia/Kolkata`, +05:30).
#[test]
fn live_send_hostname_tag_sd_and_timezone() {
    if !haproxy_available("live_send_hostname_tag_sd_and_timezone") {
        return;
    }
    let dir = TempDir::new("host");
    let formats = [
        (SyslogFormat::Rfc3164, "local0"),
        (SyslogFormat::Rfc5424, "format rfc5424 local1"),
        (SyslogFormat::Local, "format local local2"),
    ];
    let socks: Vec<UdpSocket> = formats
        .iter()
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        })
        .collect();
    let (p1, p2, pans, probe) = (free_port(), free_port(), free_port(), free_port());
    let sd_fmt = "%{+Q,+E}o[x@1 fe=%f srv=%s h=%[capture.req.hdr(0)]]";
    let mut cfg = String::from("global\n");
    for (s, (_, opts)) in socks.iter().zip(&formats) {
        cfg.push_str(&format!(
            "    log 127.0.0.1:{} {opts}\n",
            s.local_addr().unwrap().port()
        ));
    }
    cfg.push_str(&format!(
        "    log-send-hostname
    log-tag gtag
defaults
    mode http
    log global
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f1
    bind 127.0.0.1:{p1}
    log-tag ptag
    log-format \"%ci sd\"
    log-format-sd {sd}
    capture request header Host len 20
    default_backend bk
frontend f2
    bind 127.0.0.1:{p2}
    log-format \"%ci nosd\"
    default_backend bk
backend bk
    server s1 127.0.0.1:{pans}
listen ans
    bind 127.0.0.1:{pans}
    no log
    http-request return status 200 content-type text/plain string \"hello\"
listen probe
    mode tcp
    no log
    bind 127.0.0.1:{probe}
",
        sd = cfg_quote(sd_fmt)
    ));
    let path = dir.file("host.cfg", &cfg);
    let child = Command::new(HAPROXY)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .env("TZ", "Asia/Kolkata")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let guard = HaproxyGuard(child);
    let pid = guard.0.id();
    wait_listening(probe);
    let host = hostname();
    let ist = chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
    let now = Utc::now().with_timezone(&ist);
    let msg_f1 = compile("%ci sd", true).unwrap();
    let msg_f2 = compile("%ci nosd", true).unwrap();
    let sd = compile(sd_fmt, true).unwrap();
    let mut failures = Vec::new();
    let mut framed = 0;
    for (fe, port, tag) in [("f1", p1, "ptag"), ("f2", p2, "gtag")] {
        let req = b"GET /x HTTP/1.1\r\nHost: a\"b]\r\nConnection: close\r\n\r\n";
        let (me, _) = exchange(port, req);
        let r = LogRecord {
            frontend: Arc::from(fe),
            backend: Some(Arc::from("bk")),
            server: Some(Arc::from("s1")),
            client: Some(me),
            req_captures: Some(if fe == "f1" {
                vec![Some("a\"b]".into())]
            } else {
                vec![]
            }),
            request_line: Some("GET /x HTTP/1.1".into()),
            ..LogRecord::default()
        };
        let msg = if fe == "f1" { &msg_f1 } else { &msg_f2 };
        let msg = msg.render_to_string(&r);
        let sd_text = if fe == "f1" {
            sd.render_to_string(&r)
        } else {
            "- ".to_string()
        };
        for (k, (fmt, opts)) in formats.iter().enumerate() {
            let theirs = recv(&socks[k]);
            let facility =
                syslog::facility_from_name(opts.split(' ').next_back().unwrap()).unwrap();
            let h = Header {
                format: *fmt,
                facility,
                level: 6,
                tag,
                pid,
                hostname: Some(host.as_str()),
                max_len: 1024,
            };
            let mut ours = Vec::new();
            syslog::frame(&mut ours, &h, &now, sd_text.as_bytes(), msg.as_bytes());
            framed += 1;
            // mask the clock but keep the ISO offset (+05:30)
            let mask = |d: &[u8]| {
                let mut m = mask_ts(*fmt, d);
                if *fmt == SyslogFormat::Rfc5424 {
                    let off = 3 + d.iter().position(|&c| c == b'>').unwrap() + 26;
                    m[off..off + 6].copy_from_slice(&d[off..off + 6]);
                }
                m
            };
            if mask(&theirs) != mask(&ours) {
                failures.push(format!(
                    "{fe} {opts}:\n   haproxy: {:?}\n  rhaproxy: {:?}",
                    String::from_utf8_lossy(&theirs),
                    String::from_utf8_lossy(&ours)
                ));
            }
        }
    }
    drop(guard);
    println!("{framed} datagrams with hostname/tag/SD/offset re-framed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `option dontlognull`, `dontlog-normal` and `log-separate-errors`: which sessions HAProxy
/// logs and at which level, against `policy::session_log_level`.
#[test]
fn live_log_policy_options() {
    if !haproxy_available("live_log_policy_options") {
        return;
    }
    use rhaproxy::log::policy::{LogOptions, session_log_level};
    let dir = TempDir::new("policy");
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (fn_, fs, ok, e500, e404, dead, probe) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let routes = "    use_backend bdead if { path /dead }
    use_backend b500 if { path /500 }
    use_backend b404 if { path /404 }
    default_backend bk
    http-request return status 403 if { path /403 }
";
    let cfg = format!(
        "global
    log 127.0.0.1:{udp} local0
defaults
    mode http
    log global
    timeout client 2s
    timeout server 2s
    timeout connect 2s
frontend fn
    bind 127.0.0.1:{fn_}
    option dontlognull
    option dontlog-normal
    option log-separate-errors
    log-format \"fn %ST %tsc %rc\"
{routes}frontend fs
    bind 127.0.0.1:{fs}
    option log-separate-errors
    log-format \"fs %ST %tsc %rc\"
{routes}backend bk
    server s1 127.0.0.1:{ok}
backend b500
    server s1 127.0.0.1:{e500}
backend b404
    server s1 127.0.0.1:{e404}
backend bdead
    retries 1
    server s1 127.0.0.1:{dead}
listen a200
    bind 127.0.0.1:{ok}
    no log
    http-request return status 200 content-type text/plain string \"hello\"
listen a500
    bind 127.0.0.1:{e500}
    no log
    http-request return status 500 content-type text/plain string \"err\"
listen a404
    bind 127.0.0.1:{e404}
    no log
    http-request return status 404 content-type text/plain string \"nf\"
listen probe
    mode tcp
    no log
    bind 127.0.0.1:{probe}
",
        udp = rx.local_addr().unwrap().port()
    );
    let path = dir.file("policy.cfg", &cfg);
    let child = Command::new(HAPROXY)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let guard = HaproxyGuard(child);
    wait_listening(probe);
    let fmt_n = compile("fn %ST %tsc %rc", true).unwrap();
    let fmt_s = compile("fs %ST %tsc %rc", true).unwrap();
    let all = LogOptions {
        dontlognull: true,
        dontlog_normal: true,
        log_separate_errors: true,
    };
    let sep = LogOptions {
        log_separate_errors: true,
        ..LogOptions::default()
    };
    // (what to send, status, termination state, retries, null session)
    type Case<'a> = (&'a [u8], i32, &'a [u8; 4], u32, bool);
    let cases: [Case; 7] = [
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            200,
            b"----",
            0,
            false,
        ),
        (
            b"GET /500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            500,
            b"----",
            0,
            false,
        ),
        (
            b"GET /404 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            404,
            b"----",
            0,
            false,
        ),
        (
            b"GET /403 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            403,
            b"LR--",
            0,
            false,
        ),
        (
            b"GET /dead HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            503,
            b"SC--",
            1,
            false,
        ),
        (b"garbage\r\n\r\n", 400, b"PR--", 0, false),
        (b"", 400, b"CR--", 0, true),
    ];
    let mut expected: Vec<String> = Vec::new();
    for (port, fmt, opts) in [(fn_, &fmt_n, &all), (fs, &fmt_s, &sep)] {
        for (req, status, ts, retries, null) in cases {
            // the empty connection half-closes at once; the others wait for the answer
            let _ = exchange_opt(port, req, req.is_empty());
            let r = LogRecord {
                status,
                term_state: *ts,
                retries,
                ..LogRecord::default()
            };
            if let Some(level) = session_log_level(&r, true, opts, null) {
                expected.push(format!(
                    "<{}>{}",
                    16 * 8 + level as u32,
                    fmt.render_to_string(&r)
                ));
            }
        }
    }
    let mut got: Vec<String> = Vec::new();
    for _ in 0..expected.len() {
        let d = recv(&rx);
        let (pri, _, _, msg) = split_local(&d);
        got.push(format!("<{pri}>{msg}"));
    }
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    if let Ok(n) = rx.recv(&mut buf) {
        got.push(format!(
            "unexpected: {}",
            String::from_utf8_lossy(&buf[..n])
        ));
    }
    drop(guard);
    expected.sort();
    got.sort();
    println!("{} policy decisions checked", cases.len() * 2);
    assert_eq!(got, expected);
}
