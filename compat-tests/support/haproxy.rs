//! Generic helpers for tests that compare rhaproxy with the real HAProxy:
//! locate the binary, pick free loopback ports, run `haproxy -db -f cfg`
//! from a temporary directory (killed by PID on drop, also on panic), and a
//! minimal keep-alive HTTP/1.1 client on std `TcpStream`.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The haproxy binary (`$HAPROXY_BIN` or `haproxy` in `PATH`), if it runs.
/// The error explains why it is unusable.
pub fn haproxy_binary() -> Result<PathBuf, String> {
    let bin = std::env::var_os("HAPROXY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("haproxy"));
    match Command::new(&bin).arg("-v").output() {
        Ok(out) if out.status.success() => Ok(bin),
        Ok(out) => Err(format!("`{} -v` exited with {}", bin.display(), out.status)),
        Err(e) => Err(format!("cannot run `{} -v`: {e}", bin.display())),
    }
}

/// `n` distinct free TCP ports on 127.0.0.1 (listeners are held until all
/// are allocated, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    // Below the kernel's ephemeral range (32768 and up), so that no outgoing connection of a
    // proxy or a test can take a port between the moment it is chosen and the moment it is
    // bound; each process walks its own sequence, so two tests never get the same port.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    const LO: usize = 10_000;
    const SPAN: usize = 22_000;
    let seed = (std::process::id() as usize).wrapping_mul(7919) % SPAN;
    let mut out = Vec::with_capacity(n);
    let mut held = Vec::with_capacity(n);
    while out.len() < n {
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (LO + (seed + k * 37) % SPAN) as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            out.push(port);
            held.push(l);
        }
    }
    out
}

static DIR_SEQ: AtomicU32 = AtomicU32::new(0);

/// A running `haproxy -db -f <tmpdir>/haproxy.cfg`.
pub struct Haproxy {
    child: Child,
    pub dir: PathBuf,
}

impl Haproxy {
    /// Write `config` to a fresh temporary directory and start haproxy on it;
    /// wait until every port of `wait_ports` accepts connections.
    /// `@TMPDIR@` in `config` is replaced by that directory's path (for
    /// UNIX sockets such as `stats socket @TMPDIR@/admin.sock`).
    pub fn start(bin: &PathBuf, config: &str, wait_ports: &[u16]) -> Result<Haproxy, String> {
        let dir = std::env::temp_dir().join(format!(
            "rhaproxy-test-{}-{}",
            std::process::id(),
            DIR_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let cfg = dir.join("haproxy.cfg");
        let config = config.replace("@TMPDIR@", &dir.to_string_lossy());
        std::fs::write(&cfg, config).map_err(|e| format!("write config: {e}"))?;
        let out = std::fs::File::create(dir.join("haproxy.log")).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn haproxy: {e}"))?;
        let mut h = Haproxy { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        for &p in wait_ports {
            loop {
                if let Ok(Some(st)) = h.child.try_wait() {
                    return Err(format!("haproxy exited ({st}):\n{}", h.log()));
                }
                if TcpStream::connect(("127.0.0.1", p)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("haproxy not listening on {p}:\n{}", h.log()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(h)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything haproxy printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        // Kills exactly the process we spawned (by PID).
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A parsed response (status and headers; the body is read and dropped).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
    pub fn header_str(&self, name: &str) -> Option<String> {
        self.header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Keep-alive HTTP/1.1 client; reconnects when the server closed.
pub struct HttpClient {
    port: u16,
    conn: Option<BufReader<TcpStream>>,
}

impl HttpClient {
    pub fn new(port: u16) -> HttpClient {
        HttpClient { port, conn: None }
    }

    /// Send `GET`-like request `method uri` with `headers` (raw bytes
    /// allowed in values) and read the response.
    pub fn request(
        &mut self,
        method: &str,
        uri: &[u8],
        headers: &[(&str, &[u8])],
    ) -> io::Result<Response> {
        self.request_with_body(method, uri, headers, None)
    }

    /// Same as [`HttpClient::request`] with an optional body (sent with a
    /// `content-length`, in the same write as the head).
    pub fn request_with_body(
        &mut self,
        method: &str,
        uri: &[u8],
        headers: &[(&str, &[u8])],
        body: Option<&[u8]>,
    ) -> io::Result<Response> {
        let mut req = Vec::new();
        req.extend_from_slice(method.as_bytes());
        req.push(b' ');
        req.extend_from_slice(uri);
        req.extend_from_slice(b" HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            req.extend_from_slice(b"host: test\r\n");
        }
        for (n, v) in headers {
            req.extend_from_slice(n.as_bytes());
            req.extend_from_slice(b": ");
            req.extend_from_slice(v);
            req.extend_from_slice(b"\r\n");
        }
        if let Some(b) = body {
            req.extend_from_slice(format!("content-length: {}\r\n\r\n", b.len()).as_bytes());
            req.extend_from_slice(b);
        } else {
            req.extend_from_slice(b"\r\n");
        }
        for attempt in 0..2 {
            if self.conn.is_none() {
                let s = TcpStream::connect(("127.0.0.1", self.port))?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.set_nodelay(true)?;
                self.conn = Some(BufReader::new(s));
            }
            match self.exchange(&req) {
                Ok(r) => return Ok(r),
                Err(e) => {
                    self.conn = None;
                    if attempt == 1 {
                        return Err(e);
                    }
                }
            }
        }
        unreachable!()
    }

    fn exchange(&mut self, req: &[u8]) -> io::Result<Response> {
        let conn = self.conn.as_mut().unwrap();
        conn.get_mut().write_all(req)?;
        let mut line = Vec::new();
        if conn.read_until(b'\n', &mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        let status_line = String::from_utf8_lossy(&line).into_owned();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if conn.read_until(b'\n', &mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed in headers",
                ));
            }
            let l = line.strip_suffix(b"\n").unwrap_or(&line);
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            if l.is_empty() {
                break;
            }
            if let Some(p) = l.iter().position(|&c| c == b':') {
                let name = String::from_utf8_lossy(&l[..p]).into_owned();
                let v = l[p + 1..].trim_ascii().to_vec();
                headers.push((name, v));
            }
        }
        let resp = Response { status, headers };
        let close = resp
            .header_str("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if let Some(len) = resp.header_str("content-length") {
            let len: u64 = len.trim().parse().unwrap_or(0);
            io::copy(&mut conn.by_ref().take(len), &mut io::sink())?;
        } else if resp
            .header_str("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            loop {
                line.clear();
                conn.read_until(b'\n', &mut line)?;
                let sz = usize::from_str_radix(
                    String::from_utf8_lossy(&line)
                        .trim()
                        .split(';')
                        .next()
                        .unwrap_or("0"),
                    16,
                )
                .unwrap_or(0);
                io::copy(&mut conn.by_ref().take(sz as u64 + 2), &mut io::sink())?;
                if sz == 0 {
                    break;
                }
            }
        } else {
            // no length: body ends at close
            io::copy(conn, &mut io::sink())?;
            self.conn = None;
            return Ok(resp);
        }
        if close {
            self.conn = None;
        }
        Ok(resp)
    }
}
