//! The proxy runtime, built from the checked IR.
//!
//! * [`listen`]: listening sockets for every `bind` form (ranges, v4v6/v6only, backlog,
//!   interface, `transparent` through [`crate::tproxy::sockopt::transparent_listener`]).
//! * [`backend`]: servers, slots and queues, the connect procedure (retries, redispatch,
//!   `source`/`usesrc`, interception servers).
//! * [`forward`]: full-duplex forwarding with HAProxy's timeouts and half-close.
//! * [`tcp`]: `mode tcp` sessions.
//! * [`check`]: health checks and server state changes.
//!
//! Threads: one tokio multi-thread runtime with `nbthread` workers (default: one per CPU).
//! Shared state is immutable `Arc`s plus atomics; nothing on the request path takes a global
//! lock.

pub mod admin;
pub mod aligned_cache;
pub mod backend;
pub mod boxfut;
pub mod bufpool;
pub mod check;
pub mod check_rules;
pub mod clock;
pub mod counters;
pub mod fds;
pub mod forward;
pub mod http;
pub mod lazyio;
pub mod listen;
pub mod logging;
pub mod ops;
pub mod persist;
pub mod prometheus;
pub mod rules;
pub mod srvpool;
pub mod stats_page;
pub mod stick;
pub mod stkctr;
pub mod tcp;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};

use crate::config::ir::{Cap, Config, Mode, Proxy, ProxyKind};
use crate::diag::{Diags, Severity};
use crate::tproxy::addr::{ClientAddr, OrigDstAddr};
use backend::{Backend, ms};

/// Command-line settings that affect the runtime.
#[derive(Debug, Clone, Default)]
pub struct RunOpts {
    /// `-n`: global maxconn override.
    pub maxconn: Option<u32>,
    /// `-N`: default per-proxy maxconn.
    pub proxy_maxconn: Option<u32>,
    /// `-p`: pid file.
    pub pidfile: Option<String>,
    /// `-D` / `daemon` without `-db`/`-d`: go to the background once listening.
    pub daemon: bool,
    /// `-sf PID...`: soft-stop (SIGUSR1) these processes once listening.
    pub soft_finish: Vec<u32>,
    /// `-st PID...`: hard-stop (SIGTERM) these processes once listening.
    pub hard_terminate: Vec<u32>,
    /// `-x` and master-worker settings.
    pub ops: ops::OpsOpts,
}

/// One frontend (a `frontend` or the frontend half of a `listen`).
pub struct Frontend {
    pub name: String,
    pub mode: Mode,
    pub proxy: Arc<Proxy>,
    /// Where connections go (first unconditional `use_backend`, `default_backend`, or the
    /// `listen` itself).
    pub backend: Option<Arc<Backend>>,
    pub client_timeout: Option<Duration>,
    pub client_fin_timeout: Option<Duration>,
    pub http_request_timeout: Option<Duration>,
    pub http_keep_alive_timeout: Option<Duration>,
    /// `option tcp-smart-accept` ([`listen::smart_accept`]): the client sockets start
    /// without quick-ack.
    pub smart_accept: bool,
    /// `option abortonclose` on the frontend (from `defaults` or a `listen`): in `mode http`
    /// HAProxy 2.6 applies the backend's option only when the frontend has it too (measured).
    pub abortonclose: bool,
    /// `option http-ignore-probes`: a connection that sends nothing is closed without a 408
    /// and without a log line.
    pub ignore_probes: bool,
    /// `option http-buffer-request` on the frontend.
    pub buffer_request: bool,
    /// `option idle-close-on-response`: on a soft stop an idle keep-alive connection stays
    /// until its next request, answered with `connection: close` (or its timeout).
    pub idle_close_on_response: bool,
    /// `option h1-case-adjust-bogus-client`: response header names as `h1-case-adjust` says.
    pub adjust_case_client: bool,
    maxconn: Arc<Semaphore>,
    pub cum_conns: AtomicU64,
    pub http: http::HttpSettings,
    pub limits: crate::http1::Limits,
    /// Traffic logging, set once privileges are dropped.
    pub log: std::sync::OnceLock<Option<logging::FrontendLog>>,
    pub maxconn_value: u32,
    pub active: AtomicUsize,
    /// ACL-based rules (`use_backend if`, `http-request`, `tcp-request`, ...).
    pub rules: rules::FeRules,
    /// Traffic counters (`show stat`).
    pub ctr: counters::FeCounters,
}

impl Frontend {
    pub fn log(&self) -> Option<&logging::FrontendLog> {
        self.log.get().and_then(|l| l.as_ref())
    }
    /// Connections in progress on this frontend (`%fc`).
    pub fn feconn(&self) -> u32 {
        self.active.load(Ordering::Relaxed) as u32
    }
}

/// Set once a soft stop began (read on the request path without any lock).
pub static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn is_stopping() -> bool {
    STOPPING.load(Ordering::Acquire)
}

/// A receiver of `Shared::stopping` to clone (see [`stop_watch`]).
static STOP_WATCH: std::sync::OnceLock<watch::Receiver<bool>> = std::sync::OnceLock::new();

/// A receiver that changes when a soft stop begins (kept only while a transaction runs: an
/// idle HTTP session learns of the soft stop through [`admin::wake_idle_sessions`]).
pub fn stop_watch() -> watch::Receiver<bool> {
    match STOP_WATCH.get() {
        Some(r) => r.clone(),
        None => {
            // Not running (a test): a receiver that never changes.
            let (tx, rx) = watch::channel(false);
            std::mem::forget(tx);
            rx
        }
    }
}

/// Connections in progress in the process (`%ac`; soft stop waits for zero).
pub static ACTCONN: AtomicUsize = AtomicUsize::new(0);

/// The global `maxconn` slots (their number is added once configured). Process-wide, as
/// [`ACTCONN`]: a session's guard need not point to the shared state.
static GLOBAL_CONNS: Semaphore = Semaphore::const_new(0);

/// Signalled when [`ACTCONN`] drops to zero.
static ALL_CLOSED: Notify = Notify::const_new();

/// Process-wide state shared by every worker.
pub struct Shared {
    pub frontends: Vec<Arc<Frontend>>,
    pub backends: Vec<Arc<Backend>>,
    /// The global `maxconn` (permits: [`GLOBAL_CONNS`]).
    pub maxconn: u32,
    /// `true` once a soft stop began.
    pub stopping: watch::Sender<bool>,
}

/// Held by a session for its whole life: its connection-limit slots (given back on drop:
/// global, frontend, and the `bind` line's when it has a `maxconn`) and the active counts.
/// Two pointers: it lives in every session task.
pub struct SessionGuard {
    fe: Arc<Frontend>,
    bind_max: Option<Arc<Semaphore>>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        GLOBAL_CONNS.add_permits(1);
        self.fe.maxconn.add_permits(1);
        if let Some(b) = &self.bind_max {
            b.add_permits(1);
        }
        self.fe.active.fetch_sub(1, Ordering::AcqRel);
        if ACTCONN.fetch_sub(1, Ordering::AcqRel) == 1 {
            ALL_CLOSED.notify_waiters();
        }
    }
}

/// What a session knows about its connection.
#[derive(Clone, Copy, Debug)]
pub struct Accepted {
    pub client: ClientAddr,
    pub orig_dst: Option<OrigDstAddr>,
    pub accept_utc: chrono::DateTime<chrono::Utc>,
    pub accept_at: tokio::time::Instant,
}

impl Accepted {
    /// The date of instant `t` (at or after the accept), from the accept date: a session
    /// keeps one date, not one per transaction.
    pub fn utc_at(&self, t: tokio::time::Instant) -> chrono::DateTime<chrono::Utc> {
        let d = t.saturating_duration_since(self.accept_at);
        self.accept_utc + chrono::TimeDelta::from_std(d).unwrap_or_default()
    }
}

/// Runs the configuration in the foreground; returns the process exit status.
pub fn run(cfg: Config, diags: &mut Diags) -> i32 {
    run_with(cfg, diags, &RunOpts::default())
}

fn notice_line(text: &str) {
    eprintln!("[NOTICE]   ({}) : {}", std::process::id(), text);
}

fn warn_line(text: &str) {
    eprintln!("[WARNING]  ({}) : {}", std::process::id(), text);
}

fn alert_line(text: &str) {
    eprintln!("[ALERT]    ({}) : {}", std::process::id(), text);
}

/// Raises RLIMIT_NOFILE's soft limit to the hard limit, as HAProxy sizes it for maxconn.
fn raise_nofile() -> u64 {
    use nix::libc;
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 1024;
        }
        if rl.rlim_cur < rl.rlim_max {
            let want = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
    }
    rl.rlim_cur
}

/// What HAProxy sizes `maxsock` with besides `maxconn`: the listening sockets (every port of
/// every `bind` address, every `stats socket`), the checked servers, the threads, the ratios.
fn socket_sizing(cfg: &Config, threads: usize) -> fds::Sizing {
    let live = || cfg.proxies.iter().filter(|p| !p.disabled);
    let listeners: usize = live()
        .filter(|p| p.cap().contains(Cap::FE))
        .flat_map(|p| &p.binds)
        .flat_map(|b| &b.addrs)
        .map(|a| (a.port_high.max(a.addr.port()) - a.addr.port()) as usize + 1)
        .sum();
    let checks = live()
        .filter(|p| p.cap().contains(Cap::BE))
        .flat_map(|p| &p.servers)
        .filter(|s| s.params.check)
        .count();
    fds::Sizing {
        maxconn: 0,
        listeners: listeners + cfg.global.stats_sockets.len(),
        checks,
        threads,
        low_ratio: cfg
            .global
            .pool_low_fd_ratio
            .as_ref()
            .map_or(20, |r| r.value),
        high_ratio: cfg
            .global
            .pool_high_fd_ratio
            .as_ref()
            .map_or(25, |r| r.value),
    }
}

/// Runs with command-line settings.
pub fn run_with(cfg: Config, diags: &mut Diags, opts: &RunOpts) -> i32 {
    let nofile = raise_nofile();
    let threads = cfg
        .global
        .nbthread
        .as_ref()
        .map(|n| n.value as usize)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    let sockets = socket_sizing(&cfg, threads);
    // Without `maxconn`, HAProxy's: two sockets per connection in what the file limit leaves.
    let global_maxconn = opts
        .maxconn
        .or(cfg.global.maxconn.as_ref().map(|m| m.value))
        .unwrap_or_else(|| {
            (nofile.saturating_sub(sockets.fixed() as u64) / 2).clamp(100, 1_000_000) as u32
        })
        .max(1);

    crate::http1::serialize::set_case_map(&cfg.global.h1_case_adjust);
    // Backends first, frontends refer to them.
    let mut startup_warnings = Vec::new();
    let mut backends: Vec<Arc<Backend>> = Vec::new();
    let mut be_by_name: HashMap<String, Arc<Backend>> = HashMap::new();
    let proxies: Vec<Arc<Proxy>> = cfg.proxies.iter().cloned().map(Arc::new).collect();
    for p in &proxies {
        if p.disabled || !p.cap().contains(Cap::BE) {
            continue;
        }
        let be = Arc::new(Backend::build(p, &mut |w| startup_warnings.push(w)));
        be_by_name.insert(p.name.clone(), Arc::clone(&be));
        backends.push(be);
    }
    let proxy_ids = admin::proxy_ids_by_name(&cfg);
    let mut frontends = Vec::new();
    let mut fe_proxies = Vec::new();
    for p in &proxies {
        if p.disabled || !p.cap().contains(Cap::FE) || p.binds.is_empty() {
            continue;
        }
        // The first unconditional `use_backend`; conditional ones before it are evaluated per
        // request (runtime::rules).
        let mut target = None;
        if let Some(ub) = p
            .use_backends
            .iter()
            .find(|u| u.cond.is_none() && u.dynamic.is_none())
        {
            target = be_by_name.get(&ub.backend).cloned();
        }
        if target.is_none() {
            if let Some(db) = &p.default_backend {
                target = be_by_name.get(&db.value).cloned();
            }
        }
        if target.is_none() && p.kind == ProxyKind::Listen {
            target = be_by_name.get(&p.name).cloned();
        }
        let fe_maxconn = p
            .maxconn
            .as_ref()
            .map(|m| m.value)
            .or(opts.proxy_maxconn)
            .unwrap_or(global_maxconn)
            .max(1);
        frontends.push(Arc::new(Frontend {
            name: p.name.clone(),
            mode: p.mode.value,
            proxy: Arc::clone(p),
            backend: target,
            client_timeout: ms(&p.timeouts.client),
            client_fin_timeout: ms(&p.timeouts.client_fin),
            http_request_timeout: ms(&p.timeouts.http_request),
            http_keep_alive_timeout: ms(&p.timeouts.http_keep_alive),
            smart_accept: listen::smart_accept(p),
            abortonclose: p.option("abortonclose"),
            ignore_probes: p.option("http-ignore-probes"),
            buffer_request: p.option("http-buffer-request"),
            idle_close_on_response: p.option("idle-close-on-response"),
            adjust_case_client: p.option("h1-case-adjust-bogus-client"),
            maxconn: Arc::new(Semaphore::new(fe_maxconn as usize)),
            cum_conns: AtomicU64::new(0),
            http: http::HttpSettings::build(p, &mut |w| startup_warnings.push(w)),
            limits: crate::http1::Limits {
                bufsize: cfg
                    .global
                    .bufsize
                    .as_ref()
                    .map(|b| b.value as usize)
                    .unwrap_or(16384),
                ..Default::default()
            },
            log: std::sync::OnceLock::new(),
            maxconn_value: fe_maxconn,
            active: AtomicUsize::new(0),
            rules: rules::FeRules::build(p, &be_by_name, &proxy_ids),
            ctr: Default::default(),
        }));
        fe_proxies.push(fe_maxconn);
    }
    stkctr::init(&cfg);
    // `fullconn` (for `minconn`): as set, else HAProxy's default, a tenth (rounded up) of the
    // `maxconn` of the frontends that lead to the backend, at least 1.
    for be in &backends {
        let full = be.proxy.fullconn.unwrap_or_else(|| {
            let sum: u64 = frontends
                .iter()
                .zip(&fe_proxies)
                .filter(|(f, _)| f.backend.as_ref().is_some_and(|b| Arc::ptr_eq(b, be)))
                .map(|(_, &m)| m as u64)
                .sum();
            sum.div_ceil(10).max(1) as u32
        });
        be.lb.set_fullconn(full);
    }

    // The listeners accept (into their backlog) from `listen()` on, so a supervisor or a test
    // may signal as soon as the port answers. Until `serve` installs the handlers these signals
    // stay pending instead of taking their default action, which would kill the process.
    // The worker threads inherit the mask, so the handlers always run on this thread.
    let early = early_signals();
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&early),
        None,
    );
    // Bind everything before starting threads (and before dropping privileges).
    ops::before_bind(&opts.ops);
    let mut bound: Vec<(usize, listen::Bound, Option<Arc<Semaphore>>)> = Vec::new();
    let mut failed = false;
    for (fi, fe) in frontends.iter().enumerate() {
        for (bi, b) in fe.proxy.binds.iter().enumerate() {
            // Without its own `maxconn`, a bind line has the frontend's, which the
            // frontend's slots already count.
            let bind_max = b
                .maxconn
                .filter(|&m| m > 0)
                .map(|m| Arc::new(Semaphore::new(m as usize)));
            match listen::bind_all(&fe.proxy, b, bi, fe_proxies[fi]) {
                Ok(list) => {
                    for l in list {
                        bound.push((fi, l, bind_max.clone()));
                    }
                }
                Err(msg) => {
                    diags.startup(Severity::Alert, msg);
                    failed = true;
                }
            }
        }
    }
    if failed {
        diags.startup(
            Severity::Alert,
            "[haproxy.main()] Some protocols failed to start their listeners! Exiting.",
        );
        return 1;
    }

    let cli_sockets = match admin::bind_sockets(&cfg) {
        Ok(v) => v,
        Err(msg) => {
            diags.startup(Severity::Alert, msg);
            diags.startup(
                Severity::Alert,
                "[haproxy.main()] Some protocols failed to start their listeners! Exiting.",
            );
            return 1;
        }
    };
    admin::drop_unclaimed();

    if let Some(code) = drop_privileges(&cfg, diags) {
        return code;
    }
    // A master's worker leaves the pid file to the master.
    let pidfile = opts
        .pidfile
        .clone()
        .or(cfg.global.pidfile.as_ref().map(|p| p.value.clone()))
        .filter(|_| !opts.ops.worker);
    if opts.daemon {
        // Fork before any thread exists; the parent reports the child's pid and leaves.
        // SAFETY: single-threaded at this point (no runtime, no log thread yet).
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                if let Some(pf) = &pidfile {
                    let _ = std::fs::write(pf, format!("{child}\n"));
                }
                return 0;
            }
            Ok(nix::unistd::ForkResult::Child) => {
                let _ = nix::unistd::setsid();
                if let Ok(null) = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
                {
                    use std::os::fd::AsRawFd;
                    for fd in 0..3 {
                        // SAFETY: dup2 onto the standard descriptors of this process.
                        unsafe {
                            nix::libc::dup2(null.as_raw_fd(), fd);
                        }
                    }
                }
                diags.quiet = true;
            }
            Err(e) => {
                diags.startup(
                    Severity::Alert,
                    format!("[haproxy.main()] Cannot fork: {e}."),
                );
                return 1;
            }
        }
    } else if let Some(pf) = &pidfile {
        let _ = std::fs::write(pf, format!("{}\n", std::process::id()));
    }
    // Old processes stop once we listen (`-sf` soft, `-st` hard).
    for (pids, sig) in [
        (&opts.soft_finish, nix::sys::signal::Signal::SIGUSR1),
        (&opts.hard_terminate, nix::sys::signal::Signal::SIGTERM),
    ] {
        for &pid in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
        }
    }
    let logging = logging::Logging::start();
    for fe in &frontends {
        let l = logging::FrontendLog::build(&cfg, &fe.proxy, &logging, &mut |w| {
            startup_warnings.push(w)
        });
        let _ = fe.log.set(l);
    }
    logging::init_events(
        &cfg,
        frontends
            .iter()
            .map(|f| &*f.proxy)
            .chain(backends.iter().map(|b| &*b.proxy)),
        &logging,
    );
    for w in &startup_warnings {
        diags.startup(Severity::Warning, w.clone());
    }

    srvpool::set_threads(threads);
    fds::init(&fds::Sizing {
        maxconn: global_maxconn as usize,
        ..sockets
    });
    // `nbthread 1` is one thread, as in HAProxy: the event loop runs on this one, and no worker
    // thread sits beside it. Besides a thread hop per wakeup, a second thread makes the kernel
    // count references to the file table on every socket call.
    let mut builder = if threads == 1 {
        aligned_cache::enable();
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads)
            .on_thread_start(aligned_cache::enable)
            .on_thread_stop(aligned_cache::disable);
        b
    };
    let rt = match builder.thread_name("rhaproxy-worker").enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            diags.startup(
                Severity::Alert,
                format!("[haproxy.main()] Cannot start the worker threads: {e}"),
            );
            return 1;
        }
    };
    GLOBAL_CONNS.add_permits(global_maxconn as usize);
    let (stop_tx, stop_rx) = watch::channel(false);
    let _ = STOP_WATCH.set(stop_rx);
    let shared = Arc::new(Shared {
        frontends,
        backends,
        maxconn: global_maxconn,
        stopping: stop_tx,
    });
    admin::start(&rt, &shared, &cfg, cli_sockets);
    ops::started(&opts.ops);
    rt.block_on(serve(
        shared,
        bound,
        cfg.global.hard_stop_after.as_ref().map(|h| h.value),
        cfg.global.grace.as_ref().map(|g| g.value).unwrap_or(0),
    ))
}

fn drop_privileges(cfg: &Config, diags: &mut Diags) -> Option<i32> {
    use crate::tproxy::privs;
    let g = &cfg.global;
    if g.user.is_none()
        && g.uid.is_none()
        && g.group.is_none()
        && g.gid.is_none()
        && g.chroot.is_none()
    {
        return None;
    }
    // One translation from the IR (also used by the host check): it keeps only the `setcap`
    // capabilities and empties the bounding set of everything else.
    let result = crate::tproxy::from_ir::priv_drop(cfg)
        .map_err(|e| e.to_string())
        .and_then(|pd| privs::drop_privileges(&pd).map_err(|e| e.to_string()));
    match result {
        Ok(()) => None,
        Err(e) => {
            diags.startup(Severity::Alert, format!("[haproxy.main()] {e}."));
            Some(1)
        }
    }
}

/// The signals `serve` handles that would kill or stop the process by default.
fn early_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::Signal::*;
    [SIGUSR1, SIGUSR2, SIGHUP, SIGTTOU, SIGTTIN, SIGQUIT]
        .into_iter()
        .collect()
}

async fn serve(
    shared: Arc<Shared>,
    bound: Vec<(usize, listen::Bound, Option<Arc<Semaphore>>)>,
    hard_stop_after: Option<u64>,
    grace_ms: u64,
) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    // SIGUSR1 first: the listeners already accept, and a SIGUSR1 arriving before its handler
    // is installed would kill the process.
    let mut usr1 = signal(SignalKind::user_defined1()).ok();
    let mut acceptors = Vec::new();
    for (fi, b, bind_max) in bound {
        admin::register_listener(fi, &b.socket);
        // SAFETY: the AsyncFd owns the std listener, whose fd stays open and the same for the
        // AsyncFd's whole life.
        let registered = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                b.socket,
                tokio::io::Interest::READABLE,
            )
        };
        let listener = match registered.map_err(|e| e.into_parts().1) {
            Ok(l) => l,
            Err(e) => {
                alert_line(&format!("cannot register listener {}: {e}", b.addr));
                return 1;
            }
        };
        let sh = Arc::clone(&shared);
        acceptors.push(tokio::spawn(accept_loop(
            sh,
            fi,
            listener,
            bind_max,
            b.fixed_local,
        )));
    }
    check::start_all(&shared);
    tokio::spawn(timer_heartbeat());

    // Signals that would otherwise kill or stop the process; SIGTERM/SIGINT keep their default
    // disposition (immediate exit, as HAProxy's hard stop).
    for kind in [
        SignalKind::hangup(),
        SignalKind::user_defined2(),
        SignalKind::from_raw(nix::libc::SIGTTOU),
        SignalKind::from_raw(nix::libc::SIGTTIN),
        SignalKind::quit(),
    ] {
        if let Ok(mut s) = signal(kind) {
            let sh = Arc::clone(&shared);
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if kind == SignalKind::hangup() {
                        check::dump_states(&sh);
                    }
                }
            });
        }
    }
    // Every handler is in place: let the signals that came meanwhile through (run_with blocked
    // them; `serve` runs on the thread that did, inside `block_on`).
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        Some(&early_signals()),
        None,
    );
    match usr1.as_mut() {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
    if grace_ms > 0 {
        // `grace`: the listeners keep accepting meanwhile, so that external health checks
        // see the stopping state before the sockets go (HAProxy's messages and levels).
        let text = format!("Scheduling a soft-stop in {grace_ms} ms.");
        notice_line(&text);
        logging::global_event(crate::log::syslog::LEVEL_WARNING, &text);
        tokio::time::sleep(Duration::from_millis(grace_ms)).await;
        let text = "Grace period expired, proceeding with soft-stop now.";
        notice_line(text);
        logging::global_event(crate::log::syslog::LEVEL_NOTICE, text);
    }
    // Soft stop: close the listeners, let sessions finish.
    STOPPING.store(true, Ordering::Release);
    let _ = shared.stopping.send(true);
    admin::wake_idle_sessions();
    admin::listeners_closed();
    for a in &acceptors {
        a.abort();
    }
    for a in acceptors {
        let _ = a.await;
    }
    let mut seen = std::collections::HashSet::new();
    for fe in &shared.frontends {
        seen.insert(fe.name.clone());
        let be = shared.backends.iter().find(|b| b.name == fe.name);
        let text = format!(
            "Proxy {} stopped (cumulated conns: FE: {}, BE: {}).",
            fe.name,
            fe.cum_conns.load(Ordering::Relaxed),
            be.map(|b| b.cum_conns.load(Ordering::Relaxed)).unwrap_or(0)
        );
        warn_line(&text);
        logging::event(&fe.name, crate::log::syslog::LEVEL_WARNING, &text);
    }
    for be in &shared.backends {
        if seen.insert(be.name.clone()) {
            let text = format!(
                "Proxy {} stopped (cumulated conns: FE: 0, BE: {}).",
                be.name,
                be.cum_conns.load(Ordering::Relaxed)
            );
            warn_line(&text);
            logging::event(&be.name, crate::log::syslog::LEVEL_WARNING, &text);
        }
    }
    let wait_idle = async {
        loop {
            let n = ALL_CLOSED.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if ACTCONN.load(Ordering::Acquire) == 0 {
                return;
            }
            n.await;
        }
    };
    match hard_stop_after.filter(|&h| h > 0) {
        Some(h) => {
            let _ = tokio::time::timeout(Duration::from_millis(h), wait_idle).await;
        }
        None => wait_idle.await,
    }
    logging::flush(Duration::from_millis(500));
    0
}

/// Keeps a timer due within [`HEARTBEAT`] at all times. Tokio wakes its I/O driver (an eventfd
/// write, then one more `epoll_wait`) whenever a timer is armed that is due before the driver's
/// next planned wake-up, which is "never" while no timer runs: without this, the first timer of
/// a connection on an idle proxy, and every `timeout connect` shorter than the client timeouts,
/// cost two syscalls. With it, only timers due within a second do. The price is one wake-up per
/// second (HAProxy's event loop wakes at least as often).
const HEARTBEAT: Duration = Duration::from_secs(1);

async fn timer_heartbeat() {
    let mut t = tokio::time::interval(HEARTBEAT);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        t.tick().await;
    }
}

/// The task of an accepted connection: `session`, registered for `show sess` (`sess`),
/// then its entry and its guard, dropped in that order when the session ends (tokio drops a
/// task's future as soon as it completes). A plain struct rather than an async block: it
/// keeps nothing but these three, and a task lives as long as its connection. Each poll of
/// the session runs as its entry ([`admin::SessEntry::enter`]): that is how soft stop reaches
/// an idle HTTP session ([`admin::idle_poll`]) without a future of its own, and how
/// [`admin::session_server`] finds the entry.
struct SessionTask<F> {
    session: F,
    sess: admin::SessEntry,
    _guard: SessionGuard,
}

fn session_task<F>(guard: SessionGuard, sess: admin::SessEntry, session: F) -> SessionTask<F>
where
    F: Future<Output = ()> + Send,
{
    SessionTask {
        session,
        sess,
        _guard: guard,
    }
}

impl<F: Future<Output = ()>> Future for SessionTask<F> {
    type Output = ();
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        // SAFETY: structural pinning of `session`: it is never moved out of the pinned task
        // (no method hands it out by value or by `&mut`), and `SessionTask` has no `Drop`.
        let this = unsafe { self.get_unchecked_mut() };
        let session = unsafe { std::pin::Pin::new_unchecked(&mut this.session) };
        this.sess.enter(|| session.poll(cx))
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    fi: usize,
    mut listener: tokio::io::unix::AsyncFd<std::net::TcpListener>,
    bind_max: Option<Arc<Semaphore>>,
    fixed_local: Option<std::net::SocketAddr>,
) {
    let fe = Arc::clone(&shared.frontends[fi]);
    let mut generation = admin::resume_generation();
    loop {
        // Wait for a pending connection first, then for the connection limits: while a limit
        // is reached the connection stays in the kernel's backlog, and no listener holds a
        // slot while idle (which would starve the other listeners).
        let Ok(mut ready) = listener.readable().await else {
            return;
        };
        // Never while the listeners are paused (SIGTTOU, `disable frontend`); a resumed
        // socket is registered afresh (its old registration stays "closed" for ever).
        admin::wait_resumed(fi).await;
        if admin::resume_generation() != generation {
            generation = admin::resume_generation();
            drop(ready);
            // SAFETY: as at the first registration: the AsyncFd owns the listener.
            let again = unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(
                    listener.into_inner(),
                    tokio::io::Interest::READABLE,
                )
            };
            match again {
                Ok(l) => listener = l,
                Err(_) => return,
            }
            continue;
        }
        // The permits are given back by the session's guard (`add_permits`): it keeps no
        // `OwnedSemaphorePermit`s (three more pointers per session).
        // The bind line's slot first: a listener waiting for its own slot holds none of
        // the frontend's or the process's, which the other listeners may use meanwhile.
        let p3 = match &bind_max {
            Some(b) => match b.acquire().await {
                Ok(p) => Some(p),
                Err(_) => return,
            },
            None => None,
        };
        let Ok(p2) = fe.maxconn.acquire().await else {
            return;
        };
        let Ok(p1) = GLOBAL_CONNS.acquire().await else {
            return;
        };
        // accept4 with SOCK_NONBLOCK: no ioctl per connection to make it non-blocking.
        let accepted = socket2::SockRef::from(listener.get_ref())
            .accept4(nix::libc::SOCK_NONBLOCK | nix::libc::SOCK_CLOEXEC)
            .and_then(|(s, a)| match a.as_socket() {
                Some(peer) => Ok((std::net::TcpStream::from(s), peer)),
                None => Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
            });
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Another worker took it (or it went away): wait for the next one.
                ready.clear_ready();
                continue;
            }
            Err(e) => {
                // EMFILE and friends: back off a little instead of spinning.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        drop(ready);
        // Registered with the event loop later: by the TCP session, by an HTTP session only
        // when it must wait (see `lazyio`). `TCP_NODELAY` and `option clitcpka` come from
        // the listening socket ([`listen::bind_all`]).
        ACTCONN.fetch_add(1, Ordering::AcqRel);
        fe.cum_conns.fetch_add(1, Ordering::Relaxed);
        let cur = fe.active.fetch_add(1, Ordering::AcqRel) + 1;
        counters::accepted(&fe.ctr, cur as u32);
        let guard = SessionGuard {
            fe: Arc::clone(&fe),
            bind_max: bind_max.clone(),
        };
        p1.forget();
        p2.forget();
        if let Some(p) = p3 {
            p.forget();
        }
        let mut acc = Accepted {
            client: ClientAddr(peer),
            orig_dst: match fixed_local {
                Some(a) => Some(OrigDstAddr(a)),
                None => crate::tproxy::sockopt::original_destination(&stream).ok(),
            },
            accept_utc: chrono::Utc::now(),
            accept_at: tokio::time::Instant::now(),
        };
        // The session's variables and stick counters, when rules may set them here.
        let mut vars: Option<Box<crate::acl::Vars>> =
            (!fe.proxy.tcp_request.is_empty()).then(Default::default);
        let verdict = match vars.as_deref_mut() {
            Some(v) => rules::accept_connection(&fe, &acc, v),
            None => rules::ConnVerdict::Accept,
        };
        // `tcp-request connection|session set-src`: the client of the whole session.
        if let Some(a) = vars.as_ref().and_then(|v| v.src) {
            acc.client = ClientAddr(a);
        }
        if verdict != rules::ConnVerdict::Accept {
            fe.ctr.denied_conn.fetch_add(1, Ordering::Relaxed);
            // `tcp-request connection reject`: reset at once (as HAProxy), not logged.
            if verdict == rules::ConnVerdict::Reset {
                let _ = crate::tproxy::sockopt::set_reset_on_close(&stream);
            }
            drop(guard);
            drop(stream);
            continue;
        }
        if let (Some(l), Some(od)) = (fe.log(), acc.orig_dst) {
            if l.wants_connect_line() {
                l.connect_line(peer, od.sock_addr(), &fe.name, fe.mode == Mode::Http);
            }
        }
        let sess = admin::session_opened(fi, fe.backend.as_ref(), peer);
        // One task type per mode: a task is sized for its own session future only (an idle
        // HTTP connection does not pay for the larger TCP one).
        match fe.mode {
            Mode::Tcp => {
                let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                    drop(guard);
                    drop(sess);
                    continue;
                };
                let session = tcp::session(Arc::clone(&fe), stream, acc, vars);
                tokio::spawn(session_task(guard, sess, session));
            }
            Mode::Http => {
                let client = lazyio::LazyTcp::new(stream);
                let session = http::session(Arc::clone(&fe), client, acc, vars);
                tokio::spawn(session_task(guard, sess, session));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an idle HTTP keep-alive connection costs is mostly its task: tokio allocates it
    /// 128-byte aligned with 104 bytes of its own, so a session future of at most 408 bytes
    /// makes a 512-byte task (HAProxy 2.6 keeps about 1.1 KiB per idle connection in all).
    /// A field added to `http::ClientConn` or to the session's idle state can cross that line
    /// (one more 128-byte step per connection): this says so.
    #[test]
    fn idle_http_session_task_fits_512_bytes() {
        let size = std::mem::size_of::<SessionTask<http::Serve>>();
        assert!(size <= 408, "the idle HTTP session task is {size} bytes");
    }
}
