//! Operating rhaproxy like HAProxy: daemon mode and pid file, `-sf`/`-st`, SIGTTOU/SIGTTIN,
//! `hard-stop-after`, seamless reloads (`-x` over the stats socket) and the master-worker mode
//! (`-W` with SIGUSR2, `-Ws` with systemd notifications), under client traffic: no request may
//! fail and no connection may be refused while the proxy reloads.
//!
//! Every process started here is killed by PID when the test ends (guards), including the
//! daemonized ones (read from their pid files).

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn cmd(sock: &Path, c: &str) -> String {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(format!("{c}\n").as_bytes());
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The pid answering on the stats socket.
fn cli_pid(sock: &Path) -> Option<i32> {
    cmd(sock, "show info")
        .lines()
        .find_map(|l| l.strip_prefix("Pid: "))
        .and_then(|p| p.trim().parse().ok())
}

fn alive(pid: i32) -> bool {
    // A zombie (exited, not reaped) counts as gone, but only once its files are closed: the
    // main thread of a multi-threaded process shows `Z` while the other threads still tear
    // down and its listening sockets are still open.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let zombie = s
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'));
            !zombie
                || std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .is_ok_and(|mut d| d.next().is_some())
        }
        Err(_) => false,
    }
}

/// Kills (SIGKILL) the pids it holds when dropped; children are also reaped.
#[derive(Default)]
struct Reaper {
    pids: Mutex<Vec<i32>>,
    children: Mutex<Vec<Child>>,
}

impl Reaper {
    fn pid(&self, p: i32) {
        self.pids.lock().unwrap().push(p);
    }
    fn child(&self, c: Child) -> i32 {
        let p = c.id() as i32;
        self.children.lock().unwrap().push(c);
        p
    }
    /// Reaps exited children (so they do not stay zombies).
    fn reap(&self) {
        for c in self.children.lock().unwrap().iter_mut() {
            let _ = c.try_wait();
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in self.children.lock().unwrap().iter_mut() {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        for &p in self.pids.lock().unwrap().iter() {
            if p > 1 && alive(p) {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
    }
}

fn spawn(dir: &TempDir, args: &[&str], envs: &[(&str, &str)], log: &str) -> Child {
    let err = std::fs::File::create(dir.0.join(log)).unwrap();
    // OPS_RELOAD_BIN=haproxy runs the same tests on HAProxy for comparison.
    let bin = std::env::var("OPS_RELOAD_BIN").unwrap_or_else(|_| RHAPROXY.to_string());
    let mut c = Command::new(bin);
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(err));
    for (k, v) in envs {
        c.env(k, v);
    }
    c.spawn().expect("start rhaproxy")
}

fn config(dir: &TempDir, front: u16, back: u16, extra_global: &str) -> PathBuf {
    let d = dir.0.display();
    dir.write(
        "proxy.cfg",
        &format!(
            "global
    stats socket {d}/admin.sock level admin expose-fd listeners
{extra_global}
defaults
    mode tcp
    timeout connect 2s
    timeout client 20s
    timeout server 20s
listen li
    bind 127.0.0.1:{front}
    server s1 127.0.0.1:{back}
"
        ),
    )
}

/// Client traffic: new connections and keep-alive connections through the proxy to a
/// `LineEcho` backend. Every exchange must succeed.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

fn exchange_new(port: u16) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"ping\n").map_err(|e| format!("write: {e}"))?;
    let mut r = BufReader::new(s);
    let mut l = String::new();
    r.read_line(&mut l).map_err(|e| format!("greeting: {e}"))?;
    if l != "s1\n" {
        return Err(format!("greeting {l:?}"));
    }
    l.clear();
    r.read_line(&mut l).map_err(|e| format!("echo: {e}"))?;
    if l != "s1:ping\n" {
        return Err(format!("echo {l:?}"));
    }
    Ok(())
}

fn keepalive_session(port: u16, n: usize, ok: &AtomicUsize) -> Result<(), String> {
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let mut l = String::new();
    r.read_line(&mut l).map_err(|e| format!("greeting: {e}"))?;
    if l != "s1\n" {
        return Err(format!("greeting {l:?}"));
    }
    for i in 0..n {
        w.write_all(format!("req{i}\n").as_bytes())
            .map_err(|e| format!("write {i}: {e}"))?;
        l.clear();
        r.read_line(&mut l)
            .map_err(|e| format!("answer {i}: {e}"))?;
        if l != format!("s1:req{i}\n") {
            return Err(format!("answer {i}: {l:?}"));
        }
        ok.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

impl Load {
    fn start(port: u16, new_conn_threads: usize, keepalive_threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for k in 0..new_conn_threads + keepalive_threads {
            let (stop, ok, failed, errors) =
                (stop.clone(), ok.clone(), failed.clone(), errors.clone());
            threads.push(thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let r = if k < new_conn_threads {
                        exchange_new(port).map(|_| {
                            ok.fetch_add(1, Ordering::Relaxed);
                        })
                    } else {
                        keepalive_session(port, 20, &ok)
                    };
                    if let Err(e) = r {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let mut v = errors.lock().unwrap();
                        if v.len() < 20 {
                            v.push(e);
                        }
                    }
                }
            }));
        }
        Load {
            stop,
            ok,
            failed,
            errors,
            threads,
        }
    }

    /// Stops the clients; returns (ok, failed, first errors).
    fn finish(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            let _ = t.join();
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.errors.lock().unwrap().clone(),
        )
    }
}

/// HTTP traffic: `Connection: close` requests on new connections, and keep-alive connections
/// of 10 requests. A request on a reused connection that the proxy closed while it was idle
/// (soft stop of an old process) is retried once on a new connection, as HTTP clients do for
/// idempotent requests; those retries are counted apart. Anything else is a failure.
struct HttpLoad {
    load: Load,
    retried: Arc<AtomicUsize>,
}

impl HttpLoad {
    fn start(port: u16, new_conn_threads: usize, keepalive_threads: usize) -> HttpLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let retried = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for k in 0..new_conn_threads + keepalive_threads {
            let (stop, ok, failed, errors, retried) = (
                stop.clone(),
                ok.clone(),
                failed.clone(),
                errors.clone(),
                retried.clone(),
            );
            let keepalive = k >= new_conn_threads;
            threads.push(thread::spawn(move || {
                let fail = |e: String| {
                    failed.fetch_add(1, Ordering::Relaxed);
                    let mut v = errors.lock().unwrap();
                    if v.len() < 20 {
                        v.push(e);
                    }
                };
                let mut conn: Option<HttpConn> = None;
                let mut used = 0;
                while !stop.load(Ordering::Acquire) {
                    if conn.is_none() {
                        match HttpConn::connect(port) {
                            Ok(c) => conn = Some(c),
                            Err(e) => {
                                fail(format!("connect: {e}"));
                                continue;
                            }
                        }
                        used = 0;
                    }
                    let c = conn.as_mut().unwrap();
                    let req = if keepalive {
                        "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                    } else {
                        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                    };
                    match c.request(req) {
                        Ok(r) if r.status == 200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            used += 1;
                            let close = r
                                .header("connection")
                                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                            if close || !keepalive || used == 10 {
                                conn = None;
                            }
                        }
                        Ok(r) => {
                            fail(format!("status {}", r.status));
                            conn = None;
                        }
                        Err(e)
                            if used > 0
                                && matches!(
                                    e.kind(),
                                    std::io::ErrorKind::UnexpectedEof
                                        | std::io::ErrorKind::ConnectionReset
                                        | std::io::ErrorKind::BrokenPipe
                                ) =>
                        {
                            retried.fetch_add(1, Ordering::Relaxed);
                            conn = None;
                        }
                        Err(e) => {
                            fail(format!("request {used}: {e}"));
                            conn = None;
                        }
                    }
                }
            }));
        }
        HttpLoad {
            load: Load {
                stop,
                ok,
                failed,
                errors,
                threads,
            },
            retried,
        }
    }
}

fn reloads() -> usize {
    std::env::var("RHAPROXY_RELOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

#[test]
fn daemon_pidfile_and_soft_finish() {
    let dir = TempDir::new("ops-daemon");
    let p = free_ports(2);
    let _b = Backend::start("s1", p[1], Behavior::LineEcho);
    let cfg = config(&dir, p[0], p[1], "");
    let pidfile = dir.0.join("pid");
    let reaper = Reaper::default();
    let cfgs = cfg.to_str().unwrap();
    let pfs = pidfile.to_str().unwrap();
    // -D: the command returns once the daemon serves; the pid file names the daemon.
    let st = Command::new(RHAPROXY)
        .args(["-D", "-p", pfs, "-f", cfgs])
        .status()
        .unwrap();
    assert!(st.success());
    let p1: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    reaper.pid(p1);
    assert!(alive(p1));
    assert_eq!(cli_pid(&dir.0.join("admin.sock")), Some(p1));
    exchange_new(p[0]).unwrap();
    // A second daemon takes over with -sf: the old one finishes.
    let st = Command::new(RHAPROXY)
        .args(["-D", "-p", pfs, "-f", cfgs, "-x"])
        .arg(dir.0.join("admin.sock"))
        .arg("-sf")
        .arg(p1.to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let p2: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    reaper.pid(p2);
    assert_ne!(p1, p2);
    wait_until("the old daemon exits", SOON, || !alive(p1));
    assert_eq!(cli_pid(&dir.0.join("admin.sock")), Some(p2));
    exchange_new(p[0]).unwrap();
    // -st: hard stop, even with a session open.
    let mut held = TcpStream::connect(("127.0.0.1", p[0])).unwrap();
    let mut g = [0u8; 3];
    held.read_exact(&mut g).unwrap();
    let st = Command::new(RHAPROXY)
        .args(["-D", "-p", pfs, "-f", cfgs, "-st"])
        .arg(p2.to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let p3: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    reaper.pid(p3);
    wait_until("-st kills the old daemon", SOON, || !alive(p2));
    // Without -x the new daemon listens on its own socket beside the old one until the old
    // one dies; a connection the kernel queued on the old socket meanwhile is reset (as with
    // HAProxy: that is what -x is for, tested in the seamless reload tests). The new daemon
    // must serve.
    wait_until("the new daemon serves after -st", SOON, || {
        exchange_new(p[0]).is_ok()
    });
    let _ = kill(Pid::from_raw(p3), Signal::SIGTERM);
    wait_until("SIGTERM stops the daemon", SOON, || !alive(p3));
}

#[test]
fn pause_resume_and_hard_stop_after() {
    let dir = TempDir::new("ops-pause");
    let p = free_ports(2);
    let _b = Backend::start("s1", p[1], Behavior::LineEcho);
    let cfg = config(&dir, p[0], p[1], "    hard-stop-after 1s");
    let reaper = Reaper::default();
    let pid = reaper.child(spawn(
        &dir,
        &["-db", "-f", cfg.to_str().unwrap()],
        &[],
        "px.log",
    ));
    wait_until("listening", SOON, || is_listening(p[0]));
    exchange_new(p[0]).unwrap();
    let sock = dir.0.join("admin.sock");
    // SIGTTOU: the listeners stop listening (refused); SIGTTIN: served again.
    kill(Pid::from_raw(pid), Signal::SIGTTOU).unwrap();
    wait_until("frontend PAUSED", SOON, || {
        cmd(&sock, "show stat").contains(",PAUSED,")
    });
    wait_until("refused while paused", SOON, || {
        TcpStream::connect(("127.0.0.1", p[0])).is_err()
    });
    thread::sleep(Duration::from_millis(100));
    assert!(
        TcpStream::connect(("127.0.0.1", p[0])).is_err(),
        "accepted while paused"
    );
    kill(Pid::from_raw(pid), Signal::SIGTTIN).unwrap();
    wait_until("resumed", SOON, || exchange_new(p[0]).is_ok());
    // SIGUSR1 with a session still open: hard-stop-after ends it after 1 s.
    let mut held = TcpStream::connect(("127.0.0.1", p[0])).unwrap();
    let mut b = [0u8; 3];
    held.read_exact(&mut b).unwrap();
    let t = Instant::now();
    kill(Pid::from_raw(pid), Signal::SIGUSR1).unwrap();
    wait_until("hard-stop-after", Duration::from_secs(10), || {
        reaper.reap();
        !alive(pid)
    });
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "stopped after {took:?}"
    );
}

/// `-sf` + `-x` reloads under traffic: each new process takes the listening sockets from the
/// previous one, then finishes it.
#[test]
fn seamless_reload_with_sf_and_x_loses_nothing() {
    let dir = TempDir::new("ops-reload");
    let p = free_ports(2);
    let _b = Backend::start("s1", p[1], Behavior::LineEcho);
    let cfg = config(&dir, p[0], p[1], "");
    let cfgs = cfg.to_str().unwrap().to_string();
    let sock = dir.0.join("admin.sock");
    let socks = sock.to_str().unwrap().to_string();
    let reaper = Reaper::default();
    let mut cur = reaper.child(spawn(&dir, &["-db", "-f", &cfgs], &[], "px-0.log"));
    wait_until("first process serves", SOON, || cli_pid(&sock) == Some(cur));
    let load = Load::start(p[0], 2, 2);
    let n = reloads();
    let t = Instant::now();
    for i in 1..=n {
        let old = cur.to_string();
        cur = reaper.child(spawn(
            &dir,
            &["-db", "-f", &cfgs, "-x", &socks, "-sf", &old],
            &[],
            &format!("px-{i}.log"),
        ));
        wait_until(&format!("reload {i} serves"), SOON, || {
            cli_pid(&sock) == Some(cur)
        });
        reaper.reap();
    }
    let took = t.elapsed();
    thread::sleep(Duration::from_millis(200));
    let (ok, failed, errors) = load.finish();
    println!("{n} reloads with -sf -x in {took:?}: {ok} exchanges ok, {failed} failed");
    assert_eq!(failed, 0, "failures during reloads: {errors:?}");
    assert!(ok > n, "too little traffic: {ok}");
}

/// Child processes of `pid`.
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    out.retain(|&p| alive(p));
    out.sort();
    out
}

/// HTTP mode: 100 `-sf -x` reloads under keep-alive and new-connection traffic.
#[test]
fn seamless_reload_http_keepalive() {
    let dir = TempDir::new("ops-reload-http");
    let p = free_ports(2);
    let _b = Backend::start("s1", p[1], Behavior::Http);
    let cfg = config(&dir, p[0], p[1], "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("mode tcp", "mode http");
    std::fs::write(&cfg, text).unwrap();
    let cfgs = cfg.to_str().unwrap().to_string();
    let sock = dir.0.join("admin.sock");
    let socks = sock.to_str().unwrap().to_string();
    let reaper = Reaper::default();
    let mut cur = reaper.child(spawn(&dir, &["-db", "-f", &cfgs], &[], "px-0.log"));
    wait_until("first process serves", SOON, || cli_pid(&sock) == Some(cur));
    let load = HttpLoad::start(p[0], 2, 2);
    let n = reloads();
    let t = Instant::now();
    for i in 1..=n {
        let old = cur.to_string();
        cur = reaper.child(spawn(
            &dir,
            &["-db", "-f", &cfgs, "-x", &socks, "-sf", &old],
            &[],
            &format!("px-{i}.log"),
        ));
        wait_until(&format!("reload {i} serves"), SOON, || {
            cli_pid(&sock) == Some(cur)
        });
        reaper.reap();
    }
    let took = t.elapsed();
    thread::sleep(Duration::from_millis(200));
    let retried = load.retried.load(Ordering::Relaxed);
    let (ok, failed, errors) = load.load.finish();
    println!(
        "{n} HTTP reloads with -sf -x in {took:?}: {ok} requests ok, {failed} failed, {retried} retried after an idle keep-alive close"
    );
    assert_eq!(failed, 0, "failures during reloads: {errors:?}");
    assert!(ok > n, "too little traffic: {ok}");
}

fn notify_socket(dir: &TempDir) -> (std::os::unix::net::UnixDatagram, PathBuf) {
    let path = dir.0.join("notify.sock");
    let s = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    (s, path)
}

fn notify_recv(s: &std::os::unix::net::UnixDatagram) -> String {
    let mut b = [0u8; 512];
    match s.recv(&mut b) {
        Ok(n) => String::from_utf8_lossy(&b[..n]).into_owned(),
        Err(e) => format!("<no notification: {e}>"),
    }
}

/// Master-worker (`-Ws`): SIGUSR2 reloads under traffic with systemd notifications; a broken
/// configuration leaves the current worker serving.
#[test]
fn master_worker_reloads_under_load_and_survives_a_bad_config() {
    let dir = TempDir::new("ops-mworker");
    let p = free_ports(2);
    let _b = Backend::start("s1", p[1], Behavior::LineEcho);
    let cfg = config(&dir, p[0], p[1], "");
    let good = std::fs::read_to_string(&cfg).unwrap();
    let cfgs = cfg.to_str().unwrap().to_string();
    let sock = dir.0.join("admin.sock");
    let (notify, npath) = notify_socket(&dir);
    let reaper = Reaper::default();
    let master = reaper.child(spawn(
        &dir,
        &["-Ws", "-f", &cfgs],
        &[("NOTIFY_SOCKET", npath.to_str().unwrap())],
        "master.log",
    ));
    let ready = notify_recv(&notify);
    assert!(ready.contains("READY=1"), "first notification: {ready:?}");
    assert!(ready.contains(&format!("MAINPID={master}")), "{ready:?}");
    let mut worker = cli_pid(&sock).expect("a worker answers");
    reaper.pid(worker);
    assert_ne!(worker, master);
    let load = Load::start(p[0], 2, 2);
    let n = reloads();
    let t = Instant::now();
    for i in 1..=n {
        kill(Pid::from_raw(master), Signal::SIGUSR2).unwrap();
        let m1 = notify_recv(&notify);
        assert!(m1.contains("RELOADING=1"), "reload {i}: {m1:?}");
        let m2 = notify_recv(&notify);
        assert!(m2.contains("READY=1"), "reload {i}: {m2:?}");
        let new = cli_pid(&sock).expect("a worker answers");
        assert_ne!(new, worker, "reload {i} did not change the worker");
        reaper.pid(new);
        worker = new;
    }
    let took = t.elapsed();
    // A configuration that fails the check: the worker stays.
    std::fs::write(
        &cfg,
        good.replace("listen li", "listen li\n    bogus-keyword"),
    )
    .unwrap();
    kill(Pid::from_raw(master), Signal::SIGUSR2).unwrap();
    let _ = notify_recv(&notify);
    let m = notify_recv(&notify);
    assert!(m.contains("READY=1"), "after a failed reload: {m:?}");
    assert_eq!(
        cli_pid(&sock),
        Some(worker),
        "a bad config replaced the worker"
    );
    assert!(alive(master));
    // A configuration whose listener cannot bind: the worker stays too.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bport = busy.local_addr().unwrap().port();
    std::fs::write(
        &cfg,
        format!(
            "{good}listen other\n    bind 127.0.0.1:{bport}\n    server s1 127.0.0.1:{}\n",
            p[1]
        ),
    )
    .unwrap();
    kill(Pid::from_raw(master), Signal::SIGUSR2).unwrap();
    let _ = notify_recv(&notify);
    let _ = notify_recv(&notify);
    assert_eq!(
        cli_pid(&sock),
        Some(worker),
        "a failed start replaced the worker"
    );
    drop(busy);
    // Back to a good configuration: reloads work again.
    std::fs::write(&cfg, &good).unwrap();
    kill(Pid::from_raw(master), Signal::SIGUSR2).unwrap();
    let _ = notify_recv(&notify);
    let _ = notify_recv(&notify);
    let new = cli_pid(&sock).expect("a worker answers");
    reaper.pid(new);
    assert_ne!(new, worker);
    thread::sleep(Duration::from_millis(200));
    let (ok, failed, errors) = load.finish();
    // Old workers finish once their sessions end: only the current one remains.
    wait_until("old workers exit", SOON, || children(master) == vec![new]);
    println!("{n} master-worker reloads in {took:?}: {ok} exchanges ok, {failed} failed");
    assert_eq!(failed, 0, "failures during reloads: {errors:?}");
    // SIGTERM to the master stops everything.
    kill(Pid::from_raw(master), Signal::SIGTERM).unwrap();
    wait_until("master and worker stop", SOON, || {
        reaper.reap();
        !alive(master) && !alive(new)
    });
    let log = std::fs::read_to_string(dir.0.join("master.log")).unwrap_or_default();
    assert!(log.contains("Reload failed"), "master log:\n{log}");
}

/// `samples/systemd/rhaproxy.service` run the way systemd runs it (its ExecStart and
/// ExecReload lines, `$MAINPID`, `NOTIFY_SOCKET`), with `samples/systemd/rhaproxy.cfg` moved to
/// loopback ports and a temp directory, as an unprivileged user (`nobody` when the test runs
/// as root).
#[test]
fn systemd_sample_unit_runs_unprivileged_and_reloads() {
    let root = env!("CARGO_MANIFEST_DIR");
    let unit = std::fs::read_to_string(format!("{root}/samples/systemd/rhaproxy.service")).unwrap();
    let sample = std::fs::read_to_string(format!("{root}/samples/systemd/rhaproxy.cfg")).unwrap();
    let key = |k: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(String::from)
            .collect()
    };
    assert_eq!(key("Type"), vec!["notify"]);
    let exec_start = key("ExecStart").pop().expect("ExecStart");
    let exec_reload = key("ExecReload");
    assert!(exec_start.contains(" -Ws "), "{exec_start}");
    assert_eq!(exec_reload.len(), 2, "check, then SIGUSR2");

    let dir = TempDir::new("ops-systemd");
    let p = free_ports(3);
    let _b1 = Backend::start("app1", p[1], Behavior::Http);
    let _b2 = Backend::start("app2", p[2], Behavior::Http);
    let run = dir.0.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let cfg = dir.write(
        "rhaproxy.cfg",
        &sample
            .replace("/run/rhaproxy", run.to_str().unwrap())
            .replace("bind :80", &format!("bind 127.0.0.1:{}", p[0]))
            .replace("127.0.0.1:8081", &format!("127.0.0.1:{}", p[1]))
            .replace("127.0.0.1:8082", &format!("127.0.0.1:{}", p[2])),
    );
    let pidfile = run.join("rhaproxy.pid");
    let (notify, npath) = notify_socket(&dir);
    // Unprivileged: nobody when we are root (the temp dir and notify socket opened to it).
    let as_root = nix::unistd::geteuid().is_root();
    let uid = if as_root {
        65534
    } else {
        nix::unistd::geteuid().as_raw()
    };
    if as_root {
        use std::os::unix::fs::PermissionsExt;
        for p in [&dir.0, &run, &npath] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let expand = |line: &str, mainpid: i32| -> Vec<String> {
        line.replace("/usr/sbin/rhaproxy", RHAPROXY)
            .replace("$CONFIG", cfg.to_str().unwrap())
            .replace("$PIDFILE", pidfile.to_str().unwrap())
            .replace("$MAINPID", &mainpid.to_string())
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let command = |argv: &[String]| {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        if as_root {
            use std::os::unix::process::CommandExt;
            c.uid(65534).gid(65534);
        }
        c
    };
    let reaper = Reaper::default();
    let argv = expand(&exec_start, 0);
    let err = std::fs::File::create(dir.0.join("master.log")).unwrap();
    let master = reaper.child(
        command(&argv)
            .env("NOTIFY_SOCKET", &npath)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap(),
    );
    let m = notify_recv(&notify);
    assert!(
        m.contains("READY=1"),
        "{m:?}; log:\n{}",
        std::fs::read_to_string(dir.0.join("master.log")).unwrap_or_default()
    );
    let sock = run.join("admin.sock");
    let w1 = cli_pid(&sock).expect("worker answers");
    reaper.pid(w1);
    let owner = |pid: i32| -> u32 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next().map(|x| x.parse().unwrap_or(0)))
            .unwrap_or(0)
    };
    assert_eq!(owner(master), uid);
    assert_eq!(owner(w1), uid);
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        master.to_string(),
        "the pid file names the master (MAINPID)"
    );
    let mut c = HttpConn::connect(p[0]).unwrap();
    let r = c.get("/").unwrap();
    assert_eq!(r.status, 200);
    // systemctl reload: the check line, then kill -USR2 $MAINPID.
    for line in &exec_reload {
        let argv = expand(line, master);
        let st = command(&argv).status().unwrap();
        assert!(st.success(), "{line} failed");
    }
    assert!(notify_recv(&notify).contains("RELOADING=1"));
    assert!(notify_recv(&notify).contains("READY=1"));
    let w2 = cli_pid(&sock).expect("worker answers");
    reaper.pid(w2);
    assert_ne!(w1, w2);
    assert_eq!(owner(w2), uid);
    let mut c = HttpConn::connect(p[0]).unwrap();
    assert_eq!(c.get("/").unwrap().status, 200);
    // systemctl stop (KillMode=mixed): SIGTERM to the master.
    kill(Pid::from_raw(master), Signal::SIGTERM).unwrap();
    wait_until("stopped", SOON, || {
        reaper.reap();
        !alive(master) && !alive(w2)
    });
}

/// `-W -D -p`: the daemonized master writes its pid; SIGUSR1 soft-stops everything; a worker
/// that dies takes the master down (HAProxy's default, no `no-exit-on-failure`).
#[test]
fn master_worker_daemon_stop_and_worker_death() {
    let dir = TempDir::new("ops-mw-daemon");
    let p = free_ports(2);
    let _b = Backend::start("s1", p[1], Behavior::LineEcho);
    let cfg = config(&dir, p[0], p[1], "");
    let pidfile = dir.0.join("pid");
    let sock = dir.0.join("admin.sock");
    let reaper = Reaper::default();
    let st = Command::new(RHAPROXY)
        .args(["-W", "-D", "-p"])
        .arg(&pidfile)
        .arg("-f")
        .arg(&cfg)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let master: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    reaper.pid(master);
    let w = cli_pid(&sock).expect("worker answers");
    reaper.pid(w);
    assert_ne!(w, master);
    exchange_new(p[0]).unwrap();
    // SIGUSR1 to the master: soft stop of the worker, then the master leaves.
    kill(Pid::from_raw(master), Signal::SIGUSR1).unwrap();
    wait_until("soft stop of master and worker", SOON, || {
        !alive(master) && !alive(w)
    });
    // Foreground master: kill -9 its worker, the master exits with a failure.
    let master = reaper.child(spawn(
        &dir,
        &["-W", "-f", cfg.to_str().unwrap()],
        &[],
        "mw.log",
    ));
    wait_until("worker answers", SOON, || {
        cli_pid(&sock).is_some_and(|p| p != master)
    });
    let w = cli_pid(&sock).unwrap();
    reaper.pid(w);
    kill(Pid::from_raw(w), Signal::SIGKILL).unwrap();
    wait_until("master exits after its worker died", SOON, || {
        reaper.reap();
        !alive(master)
    });
    let log = std::fs::read_to_string(dir.0.join("mw.log")).unwrap_or_default();
    assert!(log.contains("exited with code"), "{log}");
}

/// Global `grace`: after SIGUSR1 the listeners keep accepting for the grace delay, then the soft
/// stop proceeds; the notices on stderr and the global log lines (levels included) are
/// HAProxy's. Run against both implementations.
#[test]
fn grace_delays_the_soft_stop() {
    for imp in Impl::all("grace_delays_the_soft_stop") {
        let dir = TempDir::new("grace");
        let p = free_ports(2);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let lport = udp.local_addr().unwrap().port();
        let cfg = format!(
            "global
    grace 1500ms
    log 127.0.0.1:{lport} local0
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen l
    log global
    bind 127.0.0.1:{}
    server s 127.0.0.1:{}
",
            p[0], p[1]
        );
        let mut proxy = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let t0 = Instant::now();
        proxy.signal(Signal::SIGUSR1 as i32);
        proxy.wait_stderr("Scheduling a soft-stop in 1500 ms.", SOON);
        // Still accepting well inside the grace delay.
        thread::sleep(Duration::from_millis(500));
        assert!(
            TcpStream::connect(("127.0.0.1", p[0])).is_ok(),
            "{imp:?}: listener closed during grace"
        );
        let code = proxy.wait_exit(SOON);
        let took = t0.elapsed();
        assert_eq!(code, Some(0), "{imp:?} exit status");
        assert!(
            took >= Duration::from_millis(1400),
            "{imp:?} stopped after {took:?}, before the grace delay"
        );
        let err = proxy.stderr();
        assert!(
            err.contains("Grace period expired, proceeding with soft-stop now."),
            "{imp:?} stderr: {err}"
        );
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = udp.recv(&mut buf) {
            let s = String::from_utf8_lossy(&buf[..n]).to_string();
            // `<PRI>Mmm dd HH:MM:SS tag[pid]: text`: keep PRI and text.
            let pri = &s[..s.find('>').unwrap() + 1];
            let text = &s[s.find("]: ").unwrap() + 3..];
            if text.contains("<HTTPCLIENT>") {
                continue;
            }
            let text = match text.find(" to 127.0.0.1:") {
                // The legacy connect line: the client's ephemeral port masked.
                Some(i) if text.starts_with("Connect from 127.0.0.1:") => {
                    format!("Connect from 127.0.0.1:N{}", &text[i..])
                }
                _ => text.to_string(),
            };
            lines.push(format!("{pri} {}", text.trim_end()));
        }
        assert_eq!(
            lines,
            [
                "<132> Scheduling a soft-stop in 1500 ms.".to_string(),
                format!(
                    "<134> Connect from 127.0.0.1:N to 127.0.0.1:{} (l/TCP)",
                    p[0]
                ),
                "<133> Grace period expired, proceeding with soft-stop now.".to_string(),
                "<132> Proxy l stopped (cumulated conns: FE: 1, BE: 1).".to_string(),
            ],
            "{imp:?} log lines"
        );
    }
}

/// A supervisor may signal as soon as the port answers: a SIGUSR1 (or SIGHUP) that arrives
/// between `listen()` and the handlers being installed is a soft stop (a state dump), not a
/// death by the signal's default action. The client connects in a tight loop so the signal
/// lands in that window; before the fix every round died of SIGUSR1.
#[test]
fn signals_right_after_listen_are_handled() {
    for imp in Impl::all("signals_right_after_listen_are_handled") {
        let dir = TempDir::new("early-sig");
        let p = free_ports(2);
        // The probe connections go through to a server that answers, so none of them waits
        // out connect retries before the soft stop can finish.
        let _b = Backend::start("s1", p[1], Behavior::Name);
        let cfg = format!(
            "defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen l
    bind 127.0.0.1:{}
    server s 127.0.0.1:{}
",
            p[0], p[1]
        );
        for round in 0..10 {
            let first = if round % 2 == 0 {
                Signal::SIGUSR1
            } else {
                Signal::SIGHUP
            };
            let mut proxy = ProxyProc::spawn(imp, &dir, &cfg);
            let end = Instant::now() + SOON;
            while TcpStream::connect(("127.0.0.1", p[0])).is_err() {
                assert!(Instant::now() < end, "{imp:?} never listened");
                if let Ok(Some(st)) = proxy.child.try_wait() {
                    panic!("{imp:?} exited with {st}: {}", proxy.stderr());
                }
            }
            proxy.signal(first as i32);
            if first == Signal::SIGHUP {
                // Still alive and serving after the dump; then a soft stop.
                thread::sleep(Duration::from_millis(100));
                assert!(
                    proxy.child.try_wait().unwrap().is_none(),
                    "{imp:?} round {round}: SIGHUP killed the process"
                );
                proxy.signal(Signal::SIGUSR1 as i32);
            }
            let code = proxy.wait_exit(SOON);
            assert_eq!(
                code,
                Some(0),
                "{imp:?} round {round} after {first:?}; stderr: {}",
                proxy.stderr()
            );
        }
    }
}
