//! Harness for the runtime tests: temp dirs, free loopback ports, proxy processes (rhaproxy or
//! real HAProxy) killed by PID on drop, small std-thread backend servers that report their name,
//! and raw TCP/HTTP clients. Everything polls with generous deadlines instead of sleeping.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const RHAPROXY: &str = env!("CARGO_BIN_EXE_rhaproxy");

/// A generous deadline for anything that should happen "soon" on a loaded 2-core machine.
pub const SOON: Duration = Duration::from_secs(20);

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for: {what}");
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "rhaproxy-rt-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` distinct free loopback ports (all bound at once, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    // Below the kernel's ephemeral range (32768 and up), so that no outgoing connection of a
    // proxy or a test can take a port between the moment it is chosen and the moment it is
    // bound; each process walks its own sequence, so two tests never get the same port.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    const LO: usize = 10_000;
    const SPAN: usize = 22_000;
    let seed = (std::process::id() as usize).wrapping_mul(7919) % SPAN;
    // Ports some socket of any state still uses are skipped too: a connection to a port
    // with TIME_WAIT entries of an earlier test (whose sequence of ports overlaps) can be
    // refused or reset by the kernel.
    let busy = ports_in_use();
    let mut out = Vec::with_capacity(n);
    let mut held = Vec::with_capacity(n);
    while out.len() < n {
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (LO + (seed + k * 37) % SPAN) as u16;
        if busy.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            out.push(port);
            held.push(l);
        }
    }
    out
}

/// Every local and remote TCP port of the sockets of this network namespace, in any state.
fn ports_in_use() -> std::collections::HashSet<u16> {
    let mut ports = std::collections::HashSet::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let table = std::fs::read_to_string(f).unwrap_or_default();
        for l in table.lines().skip(1) {
            for addr in l.split_whitespace().skip(1).take(2) {
                if let Some(p) = addr
                    .rsplit(':')
                    .next()
                    .and_then(|h| u16::from_str_radix(h, 16).ok())
                {
                    ports.insert(p);
                }
            }
        }
    }
    ports
}

/// True when some socket listens on TCP `port` (read from /proc, so no connection is made and
/// no backend sees a probe).
pub fn is_listening(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let mut it = l.split_whitespace();
                let local = it.nth(1).unwrap_or("");
                let state = it.nth(1).unwrap_or("");
                state == "0A" && local.ends_with(&want)
            })
    })
}

pub fn which(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Which proxy implementation a test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Rhaproxy,
    Haproxy,
}

impl Impl {
    pub fn exe(self) -> &'static str {
        match self {
            Impl::Rhaproxy => RHAPROXY,
            Impl::Haproxy => "haproxy",
        }
    }
    /// The implementations to run: rhaproxy always, HAProxy when installed.
    pub fn all(test: &str) -> Vec<Impl> {
        if which("haproxy") {
            vec![Impl::Rhaproxy, Impl::Haproxy]
        } else {
            println!("SKIPPED the real-HAProxy half of {test}: haproxy is not installed");
            vec![Impl::Rhaproxy]
        }
    }
}

/// A running proxy; killed (by its PID) on drop.
pub struct ProxyProc {
    pub child: Child,
    pub stderr_path: PathBuf,
    pub stdout_path: PathBuf,
    pub which: Impl,
}

impl ProxyProc {
    /// Starts `exe -db -f cfg` and waits until every port in `ports` accepts connections.
    pub fn start(which: Impl, dir: &TempDir, cfg: &str, ports: &[u16]) -> ProxyProc {
        let mut p = Self::spawn(which, dir, cfg);
        for &port in ports {
            p.wait_port(port);
        }
        p
    }

    pub fn wait_port(&mut self, port: u16) {
        let which = self.which;
        wait_until(&format!("{which:?} listening on {port}"), SOON, || {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "{which:?} exited with {st} before listening; stderr:\n{}",
                    self.stderr()
                );
            }
            is_listening(port)
        });
    }

    pub fn spawn(which: Impl, dir: &TempDir, cfg: &str) -> ProxyProc {
        Self::spawn_args(which, dir, cfg, &["-db"])
    }

    /// Starts `exe ARGS -f cfg`.
    pub fn spawn_args(which: Impl, dir: &TempDir, cfg: &str, args: &[&str]) -> ProxyProc {
        static N: AtomicUsize = AtomicUsize::new(0);
        let k = N.fetch_add(1, Ordering::Relaxed);
        let cfg_path = dir.write(&format!("proxy-{k}.cfg"), cfg);
        let stderr_path = dir.0.join(format!("proxy-{k}.stderr"));
        let err = std::fs::File::create(&stderr_path).unwrap();
        let stdout_path = dir.0.join(format!("proxy-{k}.stdout"));
        let out = std::fs::File::create(&stdout_path).unwrap();
        let child = Command::new(which.exe())
            .args(args)
            .arg("-f")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", which.exe()));
        ProxyProc {
            child,
            stderr_path,
            stdout_path,
            which,
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        let sig = nix::sys::signal::Signal::try_from(sig).expect("signal number");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }

    /// Waits for the process to exit; returns its status code (or 128+signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                use std::os::unix::process::ExitStatusExt;
                return Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)));
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> String {
        let mut last = String::new();
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            last = self.stderr();
            if last.contains(needle) {
                return last;
            }
            thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "{:?} stderr never contained {needle:?}; stderr:\n{last}",
            self.which
        );
    }
}

pub const SIGTERM: i32 = 15;
pub const SIGUSR1: i32 = 10;
pub const SIGINT: i32 = 2;

impl Drop for ProxyProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------------------------------
// Backend servers

/// How a backend server behaves.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// TCP: write `NAME\n` and close.
    Name,
    /// TCP: read until EOF, then write `NAME:` + what was read, then close (half-close test).
    EchoAfterEof,
    /// TCP: write `NAME\n`, then echo every line back prefixed with the name, until EOF.
    LineEcho,
    /// TCP: accept and never answer (keep the socket open).
    Silent,
    /// TCP: read until EOF, then keep the socket open without a word (a peer that never
    /// closes its side).
    Hold,
    /// HTTP/1.1 server answering `200` with body `NAME` (keep-alive honoured). Paths:
    /// `/slow/MS` waits MS ms before answering; `/cut` sends headers announcing 100 bytes and
    /// closes after 5; `/status/N` answers status N; `/close` answers with `Connection: close`.
    /// Each request header `X-Reply-Header: NAME: VALUE` adds `NAME: VALUE` to the answer.
    Http,
}

/// A backend server on a loopback port; stopped (listener closed) on drop.
pub struct Backend {
    pub name: String,
    pub port: u16,
    pub accepted: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    pub concurrent: Arc<AtomicUsize>,
    pub max_concurrent: Arc<AtomicUsize>,
    /// HTTP requests being processed right now, and the most at once.
    pub inflight: Arc<AtomicUsize>,
    pub max_inflight: Arc<AtomicUsize>,
    /// Request heads seen (HTTP), in order.
    pub heads: Arc<Mutex<Vec<String>>>,
    /// Peer addresses of accepted connections.
    pub peers: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Backend {
    pub fn start(name: &str, port: u16, behavior: Behavior) -> Backend {
        // The port was free when `free_ports` chose it; a socket of another process still
        // closing on it (FIN_WAIT states, not TIME_WAIT) can refuse the bind for a moment.
        let deadline = Instant::now() + Duration::from_secs(3);
        let l = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
                {
                    thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!("backend {name} cannot bind {port}: {e}"),
            }
        };
        Self::from_listener(name, l, behavior)
    }

    pub fn from_listener(name: &str, l: TcpListener, behavior: Behavior) -> Backend {
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let concurrent = Arc::new(AtomicUsize::new(0));
        let max_concurrent = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let inflight = Arc::new(AtomicUsize::new(0));
        let max_inflight = Arc::new(AtomicUsize::new(0));
        let (inf, maxinf) = (inflight.clone(), max_inflight.clone());
        let peers = Arc::new(Mutex::new(Vec::new()));
        let (st, acc, req, cur, maxc, hd, pe) = (
            stop.clone(),
            accepted.clone(),
            requests.clone(),
            concurrent.clone(),
            max_concurrent.clone(),
            heads.clone(),
            peers.clone(),
        );
        let nm = name.to_string();
        let handle = thread::spawn(move || {
            for conn in l.incoming() {
                if st.load(Ordering::Acquire) {
                    break;
                }
                let Ok(c) = conn else { continue };
                acc.fetch_add(1, Ordering::AcqRel);
                if let Ok(p) = c.peer_addr() {
                    pe.lock().unwrap().push(p);
                }
                let (inf, maxinf) = (inf.clone(), maxinf.clone());
                let (nm, b, req, cur, maxc, hd, st2) = (
                    nm.clone(),
                    behavior.clone(),
                    req.clone(),
                    cur.clone(),
                    maxc.clone(),
                    hd.clone(),
                    st.clone(),
                );
                thread::spawn(move || {
                    let now = cur.fetch_add(1, Ordering::AcqRel) + 1;
                    maxc.fetch_max(now, Ordering::AcqRel);
                    let _ = serve(c, &nm, &b, &req, &hd, &st2, &inf, &maxinf);
                    cur.fetch_sub(1, Ordering::AcqRel);
                });
            }
        });
        Backend {
            name: name.to_string(),
            port,
            accepted,
            requests,
            concurrent,
            max_concurrent,
            inflight,
            max_inflight,
            heads,
            peers,
            stop,
            handle: Some(handle),
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Acquire)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn serve(
    mut c: TcpStream,
    name: &str,
    b: &Behavior,
    requests: &AtomicUsize,
    heads: &Mutex<Vec<String>>,
    stop: &AtomicBool,
    inflight: &AtomicUsize,
    max_inflight: &AtomicUsize,
) -> io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(60)))?;
    match b {
        Behavior::Name => {
            requests.fetch_add(1, Ordering::AcqRel);
            c.write_all(format!("{name}\n").as_bytes())?;
        }
        Behavior::EchoAfterEof => {
            let mut data = Vec::new();
            c.read_to_end(&mut data)?;
            requests.fetch_add(1, Ordering::AcqRel);
            c.write_all(format!("{name}:").as_bytes())?;
            c.write_all(&data)?;
        }
        Behavior::LineEcho => {
            c.write_all(format!("{name}\n").as_bytes())?;
            let mut r = BufReader::new(c.try_clone()?);
            let mut line = String::new();
            while r.read_line(&mut line)? > 0 {
                requests.fetch_add(1, Ordering::AcqRel);
                c.write_all(format!("{name}:{line}").as_bytes())?;
                line.clear();
            }
        }
        Behavior::Silent => {
            let mut buf = [0u8; 1024];
            while !stop.load(Ordering::Acquire) {
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        Behavior::Hold => {
            let mut buf = [0u8; 1024];
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
            let end = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Acquire) && Instant::now() < end {
                thread::sleep(Duration::from_millis(20));
            }
        }
        Behavior::Http => serve_http(c, name, requests, heads, inflight, max_inflight)?,
    }
    Ok(())
}

fn serve_http(
    c: TcpStream,
    name: &str,
    requests: &AtomicUsize,
    heads: &Mutex<Vec<String>>,
    inflight: &AtomicUsize,
    max_inflight: &AtomicUsize,
) -> io::Result<()> {
    let mut r = BufReader::new(c.try_clone()?);
    let mut w = c;
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let end = line == "\r\n" || line == "\n";
            head.push_str(&line);
            if end {
                break;
            }
        }
        requests.fetch_add(1, Ordering::AcqRel);
        let now = inflight.fetch_add(1, Ordering::AcqRel) + 1;
        max_inflight.fetch_max(now, Ordering::AcqRel);
        // Counted until the response starts going out (the proxy can only send the next
        // request after it got this response, so in-flight counts never overlap wrongly).
        let done = Dec(inflight);
        let first = head.lines().next().unwrap_or("").to_string();
        let mut it = first.split(' ');
        let method = it.next().unwrap_or("").to_string();
        let path = it.next().unwrap_or("/").to_string();
        let version = it.next().unwrap_or("HTTP/1.1").to_string();
        let hdr = |n: &str| -> Option<String> {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(n)
                    .then(|| v.trim().to_string())
            })
        };
        if hdr("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        // Request body (Content-Length or chunked).
        let mut body_len = 0usize;
        if let Some(cl) = hdr("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let mut body = vec![0u8; cl];
            r.read_exact(&mut body)?;
            body_len = cl;
        } else if hdr("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            loop {
                let mut l = String::new();
                r.read_line(&mut l)?;
                let sz = usize::from_str_radix(l.trim().split(';').next().unwrap_or("0"), 16)
                    .unwrap_or(0);
                let mut body = vec![0u8; sz + 2];
                if sz == 0 {
                    let mut t = String::new();
                    loop {
                        t.clear();
                        r.read_line(&mut t)?;
                        if t == "\r\n" || t == "\n" || t.is_empty() {
                            break;
                        }
                    }
                    break;
                }
                r.read_exact(&mut body)?;
                body_len += sz;
            }
        }
        heads
            .lock()
            .unwrap()
            .push(format!("{head}body-length: {body_len}\n"));
        let client_close = hdr("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || (version == "HTTP/1.0"
                && !hdr("connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")));
        let mut status = 200u16;
        let mut close = client_close;
        if let Some(ms) = path.strip_prefix("/slow/") {
            let ms: u64 = ms.parse().unwrap_or(0);
            thread::sleep(Duration::from_millis(ms));
        } else if path == "/cut" {
            w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabcde")?;
            w.flush()?;
            let _ = w.shutdown(Shutdown::Both);
            return Ok(());
        } else if let Some(s) = path.strip_prefix("/status/") {
            status = s.parse().unwrap_or(200);
        } else if path == "/close" {
            close = true;
        } else if path == "/upgrade" {
            w.write_all(
                format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\nX-Server: {name}\r\n\r\n").as_bytes(),
            )?;
            // Echo whatever comes next, prefixed with the name, line by line.
            let mut line = String::new();
            while r.read_line(&mut line)? > 0 {
                w.write_all(format!("{name}:{line}").as_bytes())?;
                line.clear();
            }
            return Ok(());
        } else if path == "/chunked" {
            let mut resp = format!(
                "HTTP/1.1 200 OK\r\nX-Server: {name}\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            for part in [&name[..1], &name[1..]] {
                if !part.is_empty() {
                    resp.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
                }
            }
            resp.push_str("0\r\n\r\n");
            w.write_all(resp.as_bytes())?;
            continue;
        } else if path == "/chunkext" {
            w.write_all(
                format!("HTTP/1.1 200 OK\r\nX-Server: {name}\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nhi\r\n0\r\nX-T: 1\r\n\r\n").as_bytes(),
            )?;
            continue;
        } else if path == "/nolen" {
            w.write_all(format!("HTTP/1.1 200 OK\r\nX-Server: {name}\r\n\r\n{name}").as_bytes())?;
            return Ok(());
        } else if path == "/silent" {
            thread::sleep(Duration::from_secs(30));
            return Ok(());
        }
        let body = if method == "HEAD" || status == 204 || status == 304 {
            String::new()
        } else {
            name.to_string()
        };
        let mut resp = format!(
            "HTTP/1.1 {status} X\r\nX-Server: {name}\r\nContent-Length: {}\r\n",
            if method == "HEAD" {
                name.len()
            } else {
                body.len()
            }
        );
        if status == 204 || status == 304 {
            resp = format!("HTTP/1.1 {status} X\r\nX-Server: {name}\r\n");
        }
        if close {
            resp.push_str("Connection: close\r\n");
        }
        // `X-Reply-Header: NAME: VALUE` asks for that header in the answer (once per field).
        for l in head.lines().skip(1) {
            if let Some((k, v)) = l.split_once(':') {
                if k.trim().eq_ignore_ascii_case("x-reply-header") {
                    resp.push_str(&format!("{}\r\n", v.trim()));
                }
            }
        }
        resp.push_str("\r\n");
        resp.push_str(&body);
        drop(done);
        w.write_all(resp.as_bytes())?;
        w.flush()?;
        if close {
            return Ok(());
        }
    }
}

struct Dec<'a>(&'a AtomicUsize);

impl Drop for Dec<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

// ------------------------------------------------------------------------------------------
// Clients

/// Connects from `src` (any 127.0.0.0/8 address) to `port`.
pub fn connect_from(src: Option<Ipv4Addr>, port: u16) -> io::Result<TcpStream> {
    match src {
        None => TcpStream::connect(("127.0.0.1", port)),
        Some(ip) => {
            use socket2::{Domain, Socket, Type};
            let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            s.bind(&SocketAddr::new(IpAddr::V4(ip), 0).into())?;
            s.connect(&SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port).into())?;
            Ok(s.into())
        }
    }
}

/// TCP exchange: connect, send `data`, half-close, read until EOF (or timeout).
pub fn tcp_exchange(port: u16, src: Option<Ipv4Addr>, data: &[u8]) -> io::Result<String> {
    let mut s = connect_from(src, port)?;
    s.set_read_timeout(Some(SOON))?;
    s.write_all(data)?;
    s.shutdown(Shutdown::Write)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// TCP: connect and read until EOF without sending anything.
pub fn tcp_read(port: u16, src: Option<Ipv4Addr>) -> io::Result<String> {
    let mut s = connect_from(src, port)?;
    s.set_read_timeout(Some(SOON))?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A parsed HTTP response.
#[derive(Debug, Clone, Default)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The server that answered (`X-Server`), or `-` for a proxy-generated response.
    pub fn server(&self) -> String {
        self.header("x-server").unwrap_or_else(|| "-".into())
    }
}

/// A client connection speaking HTTP/1.x over one TCP connection.
pub struct HttpConn {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

impl HttpConn {
    pub fn connect(port: u16) -> io::Result<HttpConn> {
        Self::connect_from(None, port)
    }
    pub fn connect_from(src: Option<Ipv4Addr>, port: u16) -> io::Result<HttpConn> {
        let s = connect_from(src, port)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(HttpConn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }

    pub fn send(&mut self, raw: &str) -> io::Result<()> {
        self.w.write_all(raw.as_bytes())
    }

    /// Sends `raw` and reads one response; `head_req` tells the response has no body.
    pub fn request(&mut self, raw: &str) -> io::Result<Resp> {
        self.send(raw)?;
        self.read_response(raw.starts_with("HEAD "))
    }

    pub fn get(&mut self, path: &str) -> io::Result<Resp> {
        self.request(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"))
    }

    pub fn read_response(&mut self, head_req: bool) -> io::Result<Resp> {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                if head.is_empty() {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
                }
                break;
            }
            let end = line == "\r\n" || line == "\n";
            head.push_str(&line);
            if end {
                break;
            }
        }
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad head {head:?}"))
            })?;
        let mut resp = Resp {
            status,
            head,
            body: Vec::new(),
        };
        if (100..200).contains(&status) {
            return Ok(resp);
        }
        if head_req || status == 204 || status == 304 {
            return Ok(resp);
        }
        if let Some(cl) = resp
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            let mut b = vec![0u8; cl];
            self.r.read_exact(&mut b)?;
            resp.body = b;
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            loop {
                let mut l = String::new();
                self.r.read_line(&mut l)?;
                let sz = usize::from_str_radix(l.trim().split(';').next().unwrap_or("0"), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk size"))?;
                if sz == 0 {
                    let mut t = String::new();
                    loop {
                        t.clear();
                        self.r.read_line(&mut t)?;
                        if t == "\r\n" || t == "\n" || t.is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let mut b = vec![0u8; sz + 2];
                self.r.read_exact(&mut b)?;
                resp.body.extend_from_slice(&b[..sz]);
            }
        } else {
            self.r.read_to_end(&mut resp.body)?;
        }
        Ok(resp)
    }

    /// True when the proxy closed the connection (EOF within `timeout`).
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let _ = self.w.set_read_timeout(Some(timeout));
        let mut b = [0u8; 1];
        matches!(self.r.read(&mut b), Ok(0) | Err(_))
    }
}

/// One request on a fresh connection.
pub fn http_once(port: u16, raw: &str) -> io::Result<Resp> {
    let mut c = HttpConn::connect(port)?;
    c.request(raw)
}

pub fn read_file(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The kernel's `TCP_INFO` of a socket (state, unacknowledged segments...).
pub fn tcp_info(s: &TcpStream) -> nix::libc::tcp_info {
    use std::os::fd::AsRawFd;
    let mut info: nix::libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<nix::libc::tcp_info>() as nix::libc::socklen_t;
    // SAFETY: `info` is a `tcp_info` of `len` bytes, written by the kernel.
    let rc = unsafe {
        nix::libc::getsockopt(
            s.as_raw_fd(),
            nix::libc::IPPROTO_TCP,
            nix::libc::TCP_INFO,
            (&mut info as *mut nix::libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt(TCP_INFO)");
    info
}
