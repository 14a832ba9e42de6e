//! Helper for the scripts of `compat-tests/bench/` (not a test, not part of the cargo
//! workspace; the scripts compile it with plain `rustc -O`, std only).
//!
//! Subcommands:
//! * `ports N`: prints N free loopback TCP ports, one a line.
//! * `wait ADDR MS`: waits until ADDR accepts a connection (exit 1 after MS milliseconds).
//! * `probe ADDR`: prints `http` when the proxy at ADDR answers HTTP itself (a GET gets a 200
//!   and a malformed request gets a 400 that does not come from nginx), `tcp` otherwise.
//! * `whoami ADDR SRC`: connects from source address SRC, sends `GET /whoami` and prints the
//!   response body (the backend answers with the peer address it saw).
//! * `hold ADDR N PATH SECS`: opens N connections to ADDR, sends one keep-alive `GET PATH` on
//!   each and reads the whole response, then prints `ready N`, keeps them open and idle for
//!   SECS seconds and resets them (SO_LINGER 0: no TIME_WAIT left on the client side, which
//!   would slow the following runs' connects on loopback).
//! * `load ADDR N CONC close|ka`: sends N `GET /` requests to ADDR from CONC threads, each
//!   thread its share. `close`: a new connection per request with `Connection: close`, the
//!   response read to EOF; `ka`: one persistent connection per thread, each response read
//!   completely (Content-Length). Every response must start with `HTTP/1.1 200`; prints the
//!   number of such responses and exits 1 if any request failed (used by `instructions.sh`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let code = match a.as_slice() {
        ["ports", n] => ports(n.parse().expect("N")),
        ["wait", addr, ms] => wait(addr, ms.parse().expect("MS")),
        ["probe", addr] => probe(addr),
        ["whoami", addr, src] => whoami(addr, src),
        ["hold", addr, n, path, secs] => hold(
            addr,
            n.parse().expect("N"),
            path,
            secs.parse().expect("SECS"),
        ),
        ["load", addr, n, conc, mode @ ("close" | "ka")] => load(
            addr,
            n.parse().expect("N"),
            conc.parse().expect("CONC"),
            *mode == "ka",
        ),
        _ => {
            eprintln!("usage: benchtool ports N | wait ADDR MS | probe ADDR | whoami ADDR SRC | hold ADDR N PATH SECS | load ADDR N CONC close|ka");
            2
        }
    };
    std::process::exit(code);
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("bad address {s}: {e}"))
}

fn ports(n: usize) -> i32 {
    // Keep every listener open until all are chosen so the ports are distinct.
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    for l in &ls {
        println!("{}", l.local_addr().unwrap().port());
    }
    0
}

fn wait(a: &str, ms: u64) -> i32 {
    let a = addr(a);
    let end = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < end {
        if TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok() {
            return 0;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    1
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns (status line, headers, body).
fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<(String, String, Vec<u8>)> {
    let mut status = String::new();
    r.read_line(&mut status)?;
    if status.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before the response",
        ));
    }
    let mut headers = String::new();
    let mut len: Option<usize> = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok();
            }
        }
        headers.push_str(&line);
    }
    let mut body = Vec::new();
    match len {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body)?;
        }
        None => {
            r.read_to_end(&mut body)?;
        }
    }
    Ok((status, headers, body))
}

fn exchange(a: SocketAddr, req: &[u8]) -> Option<(String, String, Vec<u8>)> {
    let s = TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    (&s).write_all(req).ok()?;
    read_response(&mut BufReader::new(s)).ok()
}

fn probe(a: &str) -> i32 {
    let a = addr(a);
    let ok = exchange(
        a,
        b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n",
    )
    .is_some_and(|(st, _, _)| st.split_whitespace().nth(1) == Some("200"));
    let own_400 = exchange(a, b"GET / HTTP/1.1\r\nHost: probe\r\nBad Header\r\n\r\n").is_some_and(
        |(st, h, body)| {
            st.split_whitespace().nth(1) == Some("400")
                && !h.to_ascii_lowercase().contains("nginx")
                && !String::from_utf8_lossy(&body).contains("nginx")
        },
    );
    println!("{}", if ok && own_400 { "http" } else { "tcp" });
    0
}

fn whoami(a: &str, src: &str) -> i32 {
    use std::os::fd::FromRawFd;
    // std has no bind-before-connect, and this file has no crates: raw libc calls.
    let a = addr(a);
    let src: std::net::Ipv4Addr = src.parse().expect("SRC");
    let SocketAddr::V4(dst) = a else {
        eprintln!("IPv4 only");
        return 2;
    };
    // SAFETY: plain socket/bind/connect on a fresh descriptor with valid sockaddr_in values.
    let fd = unsafe {
        let fd = socket(2, 1, 0); // AF_INET, SOCK_STREAM
        if fd < 0 {
            return 1;
        }
        let sa = SockaddrIn {
            family: 2,
            port: 0,
            addr: u32::from_ne_bytes(src.octets()),
            zero: [0; 8],
        };
        if bind(fd, &sa, 16) != 0 {
            eprintln!("bind {src}: {}", std::io::Error::last_os_error());
            return 1;
        }
        let da = SockaddrIn {
            family: 2,
            port: dst.port().to_be(),
            addr: u32::from_ne_bytes(dst.ip().octets()),
            zero: [0; 8],
        };
        if connect(fd, &da, 16) != 0 {
            eprintln!("connect {dst}: {}", std::io::Error::last_os_error());
            return 1;
        }
        fd
    };
    // SAFETY: fd is a connected socket we own.
    let s = unsafe { TcpStream::from_raw_fd(fd) };
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    if (&s)
        .write_all(b"GET /whoami HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return 1;
    }
    match read_response(&mut BufReader::new(s)) {
        Ok((_, _, body)) => {
            println!("{}", String::from_utf8_lossy(&body).trim());
            0
        }
        Err(e) => {
            eprintln!("whoami: {e}");
            1
        }
    }
}

#[repr(C)]
struct SockaddrIn {
    family: u16,
    port: u16,
    addr: u32,
    zero: [u8; 8],
}

unsafe extern "C" {
    fn socket(domain: i32, ty: i32, proto: i32) -> i32;
    fn bind(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
    fn connect(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
    fn setsockopt(fd: i32, level: i32, name: i32, val: *const u8, len: u32) -> i32;
}

fn hold(a: &str, n: usize, path: &str, secs: f64) -> i32 {
    let a = addr(a);
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let s = match TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("connection {i}: {e}");
                return 1;
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut r = BufReader::new(s);
        if let Err(e) = r.get_mut().write_all(req.as_bytes()) {
            eprintln!("connection {i}: write: {e}");
            return 1;
        }
        match read_response(&mut r) {
            Ok((st, _, _)) if st.split_whitespace().nth(1) == Some("200") => {}
            Ok((st, _, _)) => {
                eprintln!("connection {i}: {}", st.trim());
                return 1;
            }
            Err(e) => {
                eprintln!("connection {i}: read: {e}");
                return 1;
            }
        }
        held.push(r);
    }
    println!("ready {n}");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs_f64(secs));
    reset_all(&held);
    0
}

fn reset_all(held: &[BufReader<TcpStream>]) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        onoff: i32,
        linger: i32,
    }
    let l = Linger {
        onoff: 1,
        linger: 0,
    };
    for r in held {
        // SAFETY: setsockopt(SOL_SOCKET, SO_LINGER) on an open socket with a valid struct.
        unsafe {
            setsockopt(
                r.get_ref().as_raw_fd(),
                1,  // SOL_SOCKET
                13, // SO_LINGER
                &l as *const Linger as *const u8,
                std::mem::size_of::<Linger>() as u32,
            );
        }
    }
}

fn load(a: &str, n: usize, conc: usize, keepalive: bool) -> i32 {
    let a = addr(a);
    let conc = conc.max(1);
    let threads: Vec<_> = (0..conc)
        .map(|t| {
            let share = n / conc + usize::from(t < n % conc);
            std::thread::spawn(move || {
                if keepalive {
                    load_keepalive(a, share, t)
                } else {
                    load_close(a, share, t)
                }
            })
        })
        .collect();
    let ok: usize = threads.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    println!("{ok}");
    if ok == n {
        0
    } else {
        eprintln!("load: {} of {n} requests failed", n - ok);
        1
    }
}

/// Read timeout of the load client: generous, the proxy may run under valgrind.
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// `share` requests, one connection each; returns the number answered `HTTP/1.1 200`.
fn load_close(a: SocketAddr, share: usize, t: usize) -> usize {
    let req = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    let mut ok = 0;
    let mut resp = Vec::with_capacity(512);
    for i in 0..share {
        let r = (|| -> std::io::Result<bool> {
            let mut s = TcpStream::connect_timeout(&a, LOAD_TIMEOUT)?;
            s.set_read_timeout(Some(LOAD_TIMEOUT))?;
            s.write_all(req)?;
            resp.clear();
            s.read_to_end(&mut resp)?;
            Ok(resp.starts_with(b"HTTP/1.1 200"))
        })();
        match r {
            Ok(true) => ok += 1,
            Ok(false) => eprintln!(
                "thread {t} request {i}: {:?}",
                String::from_utf8_lossy(&resp[..resp.len().min(80)])
            ),
            Err(e) => eprintln!("thread {t} request {i}: {e}"),
        }
    }
    ok
}

/// `share` requests on one persistent connection; stops at the first failure (the
/// connection's state is then unknown). Returns the number answered `HTTP/1.1 200`.
fn load_keepalive(a: SocketAddr, share: usize, t: usize) -> usize {
    if share == 0 {
        return 0;
    }
    let req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    let s = match TcpStream::connect_timeout(&a, LOAD_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("thread {t}: connect: {e}");
            return 0;
        }
    };
    s.set_read_timeout(Some(LOAD_TIMEOUT)).unwrap();
    let mut r = BufReader::new(s);
    for i in 0..share {
        if let Err(e) = r.get_mut().write_all(req) {
            eprintln!("thread {t} request {i}: write: {e}");
            return i;
        }
        match read_response(&mut r) {
            Ok((st, h, _)) if st.starts_with("HTTP/1.1 200") => {
                if !h.to_ascii_lowercase().contains("content-length:") {
                    eprintln!("thread {t} request {i}: response without Content-Length");
                    return i + 1;
                }
            }
            Ok((st, _, _)) => {
                eprintln!("thread {t} request {i}: {}", st.trim());
                return i;
            }
            Err(e) => {
                eprintln!("thread {t} request {i}: read: {e}");
                return i;
            }
        }
    }
    share
}
