//! Process model: daemon mode, pid file, `-sf`/`-st`, `-x` socket transfer and the
//! master-worker mode (`-W`, `-Ws` with systemd's `sd_notify`).
//!
//! * A new process binds (taking the old process's listening sockets with `-x`), starts, then
//!   sends SIGUSR1 (`-sf`) or SIGTERM (`-st`) to the old pids.
//! * The master (`-W`) runs no proxy: it starts a worker (itself re-executed with
//!   `RHAPROXY_WORKER=1`), and on SIGUSR2/SIGHUP checks the configuration, starts a new worker
//!   with `-sf <old workers>` (and `-x <stats socket>` when one has `expose-fd listeners`), and
//!   keeps the old worker when the configuration is bad or the new worker does not start.
//!   A worker tells the master it is ready through a pipe inherited as `RHAPROXY_READY_FD`.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::config::ir::{Config, StatsAddr};

/// Command-line process settings (`-D`, `-sf`, `-st` are in [`super::RunOpts`]).
#[derive(Debug, Clone, Default)]
pub struct OpsOpts {
    /// `-x PATH`.
    pub xfer: Option<String>,
    /// Running as a master's worker (`RHAPROXY_WORKER`): no pid file, no daemon.
    pub worker: bool,
}

/// Written once the process serves (daemon parent, or master), then closed.
static READY: Mutex<Option<OwnedFd>> = Mutex::new(None);

fn warn(text: &str) {
    eprintln!("[WARNING]  ({}) : {}", std::process::id(), text);
}

fn alert(text: &str) {
    eprintln!("[ALERT]    ({}) : {}", std::process::id(), text);
}

fn notice(text: &str) {
    eprintln!("[NOTICE]   ({}) : {}", std::process::id(), text);
}

/// `-x`: fetch the old process's listening sockets before binding.
pub fn before_bind(o: &OpsOpts) {
    if let Some(path) = &o.xfer {
        if let Err(e) = super::admin::fetch_inherited(path) {
            warn(&e);
        }
    }
    if o.worker {
        if let Some(fd) = std::env::var("RHAPROXY_READY_FD")
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
        {
            // SAFETY: the master passed this pipe's write end to us and nobody else uses it.
            *READY.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
}

fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe {
                nix::libc::dup2(null.as_raw_fd(), fd);
            }
        }
    }
}

/// The process serves: tell the master (or the daemonized master's parent).
pub fn started(_o: &OpsOpts) {
    if let Some(fd) = READY.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let mut f = std::fs::File::from(fd);
        let _ = std::io::Write::write_all(&mut f, b"R");
    }
}

// ------------------------------------------------------------------------------------------
// sd_notify

/// Sends a state string to `$NOTIFY_SOCKET` (systemd's notify protocol), if set.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    if let Some(abs) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        if let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(abs) {
            let _ = sock.send_to_addr(state.as_bytes(), &addr);
        }
    } else {
        let _ = sock.send_to(state.as_bytes(), &path);
    }
}

// ------------------------------------------------------------------------------------------
// Master

/// What the master needs to start workers.
pub struct Master {
    /// The command line without master/daemon/pidfile/-sf/-st/-x arguments.
    pub worker_args: Vec<String>,
    /// Configuration files (for the reload check).
    pub files: Vec<String>,
    pub systemd: bool,
    pub daemon: bool,
    pub pidfile: Option<String>,
    /// `master-worker no-exit-on-failure` is not distinguished: the master exits when its
    /// current worker dies, as HAProxy does by default.
    pub cfg: Config,
}

/// Removes the arguments a worker must not get.
pub fn worker_args(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        match a {
            "-W" | "-Ws" | "-D" | "-db" => {}
            "-p" | "-x" | "-S" => i += 1,
            "-sf" | "-st" => {
                while i + 1 < argv.len() && !argv[i + 1].starts_with('-') {
                    i += 1;
                }
            }
            _ => out.push(argv[i].clone()),
        }
        i += 1;
    }
    out
}

fn expose_path(cfg: &Config) -> Option<String> {
    cfg.global
        .stats_sockets
        .iter()
        .find_map(|s| match &s.value.addr {
            StatsAddr::Unix(p) if s.value.expose_fd => Some(p.clone()),
            _ => None,
        })
}

struct Worker {
    pid: u32,
    child: std::process::Child,
}

fn spawn_worker(
    m: &Master,
    old: &[u32],
    xfer: Option<&str>,
) -> std::io::Result<(Worker, std::fs::File)> {
    use std::os::unix::process::CommandExt;
    let (r, w) = nix::unistd::pipe()?;
    use std::os::fd::AsRawFd;
    let wfd = w.as_raw_fd();
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(&m.worker_args);
    if let Some(x) = xfer {
        cmd.arg("-x").arg(x);
    }
    if !old.is_empty() {
        cmd.arg("-sf");
        for p in old {
            cmd.arg(p.to_string());
        }
    }
    cmd.env("RHAPROXY_WORKER", "1");
    cmd.env("RHAPROXY_READY_FD", wfd.to_string());
    cmd.env_remove("NOTIFY_SOCKET");
    // SAFETY: only async-signal-safe calls (fcntl, sigprocmask) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fl = nix::libc::fcntl(wfd, nix::libc::F_GETFD);
            if fl >= 0 {
                nix::libc::fcntl(wfd, nix::libc::F_SETFD, fl & !nix::libc::FD_CLOEXEC);
            }
            // The master blocks the signals it waits for; the worker must not inherit that.
            let mut set: nix::libc::sigset_t = std::mem::zeroed();
            nix::libc::sigemptyset(&mut set);
            nix::libc::sigprocmask(nix::libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(w);
    Ok((
        Worker {
            pid: child.id(),
            child,
        },
        std::fs::File::from(r),
    ))
}

/// Waits until a worker writes its ready byte (true) or closes the pipe/times out (false).
fn wait_ready(mut f: std::fs::File, timeout: Duration) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        let _ = tx.send(matches!(f.read(&mut b), Ok(1)));
    });
    rx.recv_timeout(timeout).unwrap_or(false)
}

/// Runs the master until it stops; returns the exit status.
pub fn run_master(mut m: Master) -> i32 {
    use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
    if m.daemon && !m.systemd {
        let (r, w) = match nix::unistd::pipe() {
            Ok(p) => p,
            Err(_) => return 1,
        };
        // SAFETY: single-threaded at this point.
        match unsafe { nix::unistd::fork() } {
            Err(_) => return 1,
            Ok(nix::unistd::ForkResult::Parent { .. }) => {
                drop(w);
                let mut f = std::fs::File::from(r);
                let mut b = [0u8; 1];
                return if matches!(f.read(&mut b), Ok(1)) {
                    0
                } else {
                    1
                };
            }
            Ok(nix::unistd::ForkResult::Child) => {
                drop(r);
                let _ = nix::unistd::setsid();
                *READY.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
            }
        }
    }
    let set: SigSet = [
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGCHLD,
        Signal::SIGTTOU,
        Signal::SIGTTIN,
        Signal::SIGQUIT,
    ]
    .into_iter()
    .collect();
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    if let Some(pf) = &m.pidfile {
        let _ = std::fs::write(pf, format!("{}\n", std::process::id()));
    }
    let (first, ready) = match spawn_worker(&m, &[], None) {
        Ok(x) => x,
        Err(e) => {
            alert(&format!("[haproxy.main()] Cannot fork: {e}."));
            return 1;
        }
    };
    let mut current = first;
    let mut old: Vec<Worker> = Vec::new();
    if !wait_ready(ready, Duration::from_secs(30)) {
        let status = current
            .child
            .wait()
            .ok()
            .and_then(|s| s.code())
            .unwrap_or(1);
        alert("[haproxy.main()] The worker failed to start. Exiting.");
        return if status == 0 { 1 } else { status };
    }
    notice(&format!("New worker ({}) forked", current.pid));
    notice("Loading success.");
    if m.systemd {
        sd_notify(&format!("READY=1\nMAINPID={}\n", std::process::id()));
    }
    if m.daemon && !m.systemd {
        detach_stdio();
    }
    started(&OpsOpts::default());
    let mut stopping = false;
    loop {
        let Ok(sig) = set.wait() else {
            continue;
        };
        match sig {
            Signal::SIGUSR2 | Signal::SIGHUP if !stopping => {
                if m.systemd {
                    sd_notify("RELOADING=1\nSTATUS=Reloading Configuration.\n");
                }
                notice("Reloading HAProxy");
                reload(&mut m, &mut current, &mut old);
                if m.systemd {
                    sd_notify("READY=1\nSTATUS=Ready.\n");
                }
            }
            Signal::SIGCHLD => {
                // Reap every exited worker.
                let mut i = 0;
                while i < old.len() {
                    if let Ok(Some(st)) = old[i].child.try_wait() {
                        warn(&format!(
                            "Former worker ({}) exited with code {} ({})",
                            old[i].pid,
                            st.code().unwrap_or(-1),
                            if st.success() { "Exit" } else { "Failure" }
                        ));
                        old.remove(i);
                    } else {
                        i += 1;
                    }
                }
                if let Ok(Some(st)) = current.child.try_wait() {
                    let code = st.code().unwrap_or_else(|| {
                        128 + std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0)
                    });
                    if stopping {
                        if old.is_empty() {
                            return 0;
                        }
                    } else {
                        alert(&format!(
                            "Current worker ({}) exited with code {code} ({})",
                            current.pid,
                            if st.success() { "Exit" } else { "Failure" }
                        ));
                        alert("exit-on-failure: killing every processes with SIGTERM");
                        for w in &old {
                            let _ = kill(Pid::from_raw(w.pid as i32), Signal::SIGTERM);
                        }
                        for w in &mut old {
                            let _ = w.child.wait();
                        }
                        return code;
                    }
                }
                if stopping && old.is_empty() && current.child.try_wait().ok().flatten().is_some() {
                    return 0;
                }
            }
            Signal::SIGTERM | Signal::SIGINT | Signal::SIGUSR1 => {
                let fwd = if sig == Signal::SIGUSR1 {
                    Signal::SIGUSR1
                } else {
                    Signal::SIGTERM
                };
                stopping = true;
                for p in std::iter::once(current.pid).chain(old.iter().map(|w| w.pid)) {
                    let _ = kill(Pid::from_raw(p as i32), fwd);
                }
                if fwd == Signal::SIGTERM {
                    let _ = current.child.wait();
                    for w in &mut old {
                        let _ = w.child.wait();
                    }
                    return 0;
                }
                // Soft stop: exit once every worker is gone (SIGCHLD above).
                if current.child.try_wait().ok().flatten().is_some() && old.is_empty() {
                    return 0;
                }
            }
            Signal::SIGTTOU | Signal::SIGTTIN | Signal::SIGQUIT => {
                for p in std::iter::once(current.pid).chain(old.iter().map(|w| w.pid)) {
                    let _ = kill(Pid::from_raw(p as i32), sig);
                }
            }
            _ => {}
        }
    }
}

fn reload(m: &mut Master, current: &mut Worker, old: &mut Vec<Worker>) {
    let mut diags = crate::diag::Diags::new(false);
    let Some((cfg, verdict)) = crate::cli::load(&m.files, &mut diags) else {
        alert("Reload failed: the new configuration has errors; the current worker keeps running.");
        return;
    };
    if !verdict.has_listener {
        alert(
            "Reload failed: the new configuration has no listener; the current worker keeps running.",
        );
        return;
    }
    let xfer = expose_path(&cfg).or_else(|| expose_path(&m.cfg));
    let mut olds: Vec<u32> = vec![current.pid];
    olds.extend(old.iter().map(|w| w.pid));
    let start = Instant::now();
    match spawn_worker(m, &olds, xfer.as_deref()) {
        Ok((w, ready)) => {
            if wait_ready(ready, Duration::from_secs(30)) {
                notice(&format!(
                    "New worker ({}) forked in {} ms",
                    w.pid,
                    start.elapsed().as_millis()
                ));
                notice("Loading success.");
                let prev = std::mem::replace(current, w);
                old.push(prev);
                m.cfg = cfg;
            } else {
                let mut w = w;
                let _ = kill(Pid::from_raw(w.pid as i32), Signal::SIGTERM);
                let _ = w.child.wait();
                alert(
                    "Reload failed: the new worker did not start; the current worker keeps running.",
                );
            }
        }
        Err(e) => alert(&format!("Reload failed: cannot start a worker: {e}")),
    }
}
