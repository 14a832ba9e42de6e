//! The runtime API: `stats socket` listeners speaking HAProxy 2.6's CLI.
//!
//! One command per line, several per line separated by `;`; without `prompt` the connection
//! closes once the lines received so far are answered (what `socat` expects), with `prompt` it
//! stays open and prints `> ` before each command. Every answer ends with an empty line.
//!
//! Server administration (`disable`/`enable server`, `set server ... state|weight`,
//! `set weight`) acts on the balancer through [`sync_lb`]: a server takes new traffic only
//! while it is up (checks), not in maintenance, not draining and its weight is not 0.
//!
//! Output formats (`show stat` columns, `show servers state`, `show info` fields, error
//! texts) were measured on HAProxy 2.6.12; values rhaproxy does not track are left as HAProxy
//! prints them for an idle proxy (`0` or empty).

use std::fmt::Write as _;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};

use super::backend::{Backend, Server};
use super::{Frontend, Shared};
use crate::config::ir::{CliLevel, Config, Mode, ProxyKind, ServerTarget, StatsAddr, StatsSocket};
use crate::log::syslog::{LEVEL_ALERT, LEVEL_EMERG, LEVEL_NOTICE, LEVEL_WARNING};

/// Administrative flags (HAProxy's `srv_admin_state` bits).
pub const ADM_FMAINT: u32 = 0x01;
pub const ADM_CMAINT: u32 = 0x04;
pub const ADM_FDRAIN: u32 = 0x08;
/// In maintenance. `CMAINT` only remembers that the configuration said `disabled`: it stays
/// set after `enable server`, as in HAProxy.
const ADM_MAINT: u32 = ADM_FMAINT;

/// HAProxy's health-check status codes (`srv_check_status` of `show servers state`).
const HCHK_INI: u8 = 1;
const HCHK_SOCKERR: u8 = 5;
const HCHK_L4OK: u8 = 6;
const HCHK_L4TOUT: u8 = 7;
const HCHK_L4CON: u8 = 8;
const HCHK_L6OK: u8 = 9;
const HCHK_L6TOUT: u8 = 10;
const HCHK_L6RSP: u8 = 11;
const HCHK_L7TOUT: u8 = 12;
const HCHK_L7RSP: u8 = 13;
const HCHK_L7OK: u8 = 15;
const HCHK_L7OKC: u8 = 16;
const HCHK_L7STS: u8 = 17;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The last health check of a server.
#[derive(Debug, Clone, Default)]
pub struct CheckInfo {
    /// HCHK code, 0 before the first check.
    pub status: u8,
    pub code: Option<u16>,
    pub duration_ms: u64,
    /// Free text (`Connection refused`, the HTTP reason).
    pub info: String,
    pub health: u32,
    pub passed: Option<bool>,
}

/// Administrative state and counters of one server, beside [`Server`].
pub struct SrvAdmin {
    pub flags: AtomicU32,
    pub uweight: AtomicU32,
    pub iweight: u32,
    /// `(rise, fall)` when the server has health checks.
    pub check: Option<(u32, u32)>,
    pub last_change: AtomicU64,
    pub down_since: AtomicU64,
    pub downtime: AtomicU64,
    pub chkfail: AtomicU64,
    pub chkdown: AtomicU64,
    pub smax: AtomicU32,
    pub chk: Mutex<CheckInfo>,
    /// Traffic counters (`show stat`).
    pub ctr: super::counters::BeCounters,
    kill: watch::Sender<u64>,
    /// Set when the server leaves maintenance: the check loop restarts at `rise`.
    check_reset: std::sync::atomic::AtomicBool,
    /// Up but stopping (`http-check disable-on-404` saw a 404): no new traffic.
    pub stopping: std::sync::atomic::AtomicBool,
}

impl SrvAdmin {
    pub fn new(disabled: bool, weight: u32, check: Option<(u32, u32)>) -> SrvAdmin {
        let now = now_secs();
        SrvAdmin {
            flags: AtomicU32::new(if disabled { ADM_FMAINT | ADM_CMAINT } else { 0 }),
            uweight: AtomicU32::new(weight),
            iweight: weight,
            check,
            last_change: AtomicU64::new(now),
            down_since: AtomicU64::new(0),
            downtime: AtomicU64::new(0),
            chkfail: AtomicU64::new(0),
            chkdown: AtomicU64::new(0),
            smax: AtomicU32::new(0),
            chk: Mutex::new(CheckInfo {
                health: if disabled {
                    0
                } else {
                    check.map(|c| c.0).unwrap_or(2)
                },
                ..Default::default()
            }),
            ctr: Default::default(),
            kill: watch::channel(0).0,
            check_reset: std::sync::atomic::AtomicBool::new(false),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn in_maint(&self) -> bool {
        self.flags.load(Ordering::Acquire) & ADM_MAINT != 0
    }

    /// A receiver that changes when `shutdown sessions server` targets this server.
    pub fn kill_watch(&self) -> watch::Receiver<u64> {
        self.kill.subscribe()
    }

    /// A connection was given to this server; `served` is its count now.
    pub fn on_conn(&self, served: u32) {
        self.smax.fetch_max(served, Ordering::Relaxed);
    }

    fn chk(&self) -> std::sync::MutexGuard<'_, CheckInfo> {
        self.chk.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Resolves when `shutdown sessions server` kills the sessions of the watched server (never
/// without a watch, nor once the watch is gone). A small future: the watch's `changed`
/// future is polled in place (an idle TCP pair keeps it as its stop future).
pub fn killed(
    rx: Option<&mut watch::Receiver<u64>>,
) -> Killed<impl Future<Output = WatchChanged> + '_> {
    Killed(rx.map(|rx| rx.changed()))
}

type WatchChanged = Result<(), watch::error::RecvError>;

/// See [`killed`].
pub struct Killed<F>(Option<F>);

impl<F> Future for Killed<F>
where
    F: Future<Output = WatchChanged>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the inner future is a pinned projection: polled and dropped in place only.
        let mut inner = unsafe { self.map_unchecked_mut(|k| &mut k.0) };
        let Some(f) = inner.as_mut().as_pin_mut() else {
            return Poll::Pending;
        };
        match f.poll(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(()),
            Poll::Ready(Err(_)) => {
                // The server is gone (reload): nothing can kill this session any more.
                inner.set(None);
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether server `srv` may take new traffic.
pub fn usable(srv: &Server) -> bool {
    srv.up.load(Ordering::Acquire)
        && !srv.admin.stopping.load(Ordering::Acquire)
        && srv.admin.flags.load(Ordering::Acquire) & (ADM_MAINT | ADM_FDRAIN) == 0
        && srv.admin.uweight.load(Ordering::Acquire) > 0
}

/// Brings the balancer in line with server `i`'s state.
pub fn sync_lb(be: &Backend, i: usize) {
    let srv = &be.servers[i];
    be.lb.set_usable(i, usable(srv));
    if usable(srv) {
        be.wake_queue();
    }
}

/// Health checks changed server `i`'s operational state (`up` already stored).
pub fn state_changed(be: &Backend, i: usize, up: bool) {
    let a = &be.servers[i].admin;
    let now = now_secs();
    a.last_change.store(now, Ordering::Relaxed);
    if up {
        let since = a.down_since.swap(0, Ordering::AcqRel);
        if since > 0 {
            a.downtime
                .fetch_add(now.saturating_sub(since), Ordering::Relaxed);
        }
    } else {
        a.chkdown.fetch_add(1, Ordering::Relaxed);
        a.down_since.store(now.max(1), Ordering::Release);
    }
    sync_lb(be, i);
}

/// Called by the check loop before each check: `true` while the server is in maintenance (no
/// check runs); once it leaves maintenance the health counter restarts at `rise`.
pub fn check_paused(be: &Backend, i: usize, health: &mut u32) -> bool {
    let a = &be.servers[i].admin;
    if a.in_maint() {
        *health = 0;
        true
    } else {
        if a.check_reset.swap(false, Ordering::AcqRel) {
            *health = a.check.map(|c| c.0).unwrap_or(*health);
        }
        false
    }
}

/// Records a check result (`health` is the counter after it).
pub fn record_check(
    be: &Backend,
    i: usize,
    outcome: &super::check::Outcome,
    took: u128,
    health: u32,
) {
    use crate::config::ir::CheckStatus as S;
    let a = &be.servers[i].admin;
    let mut c = a.chk();
    let status = match outcome.st {
        S::SockErr => HCHK_SOCKERR,
        S::L4Ok => HCHK_L4OK,
        S::L4Tout => HCHK_L4TOUT,
        S::L4Con => HCHK_L4CON,
        S::L6Ok => HCHK_L6OK,
        S::L6Tout => HCHK_L6TOUT,
        S::L6Rsp => HCHK_L6RSP,
        S::L7Tout => HCHK_L7TOUT,
        S::L7Rsp => HCHK_L7RSP,
        S::L7Ok => HCHK_L7OK,
        S::L7OkC => HCHK_L7OKC,
        S::L7Sts => HCHK_L7STS,
    };
    let code = super::check_rules::shows_code(outcome.st)
        .then_some(outcome.code.clamp(0, u16::MAX as i32) as u16);
    let info = outcome.info.clone();
    c.status = status;
    c.code = code;
    c.info = info;
    c.duration_ms = took as u64;
    c.health = health;
    c.passed = Some(outcome.ok());
    if !outcome.ok() {
        a.chkfail.fetch_add(1, Ordering::Relaxed);
    }
}

fn hchk_name(s: u8) -> &'static str {
    match s {
        HCHK_SOCKERR => "SOCKERR",
        HCHK_L6OK => "L6OK",
        HCHK_L6TOUT => "L6TOUT",
        HCHK_L6RSP => "L6RSP",
        HCHK_L7OKC => "L7OKC",
        HCHK_L4OK => "L4OK",
        HCHK_L4TOUT => "L4TOUT",
        HCHK_L4CON => "L4CON",
        HCHK_L7OK => "L7OK",
        HCHK_L7STS => "L7STS",
        HCHK_L7TOUT => "L7TOUT",
        HCHK_L7RSP => "L7RSP",
        HCHK_INI => "INI",
        _ => "UNK",
    }
}

fn hchk_desc(s: u8) -> &'static str {
    match s {
        HCHK_SOCKERR => "Socket error",
        HCHK_L6OK => "Layer6 check passed",
        HCHK_L6TOUT => "Layer6 timeout",
        HCHK_L6RSP => "Layer6 invalid response",
        HCHK_L7OKC => "Layer7 check conditionally passed",
        HCHK_L4OK => "Layer4 check passed",
        HCHK_L4TOUT => "Layer4 timeout",
        HCHK_L4CON => "Layer4 connection problem",
        HCHK_L7OK => "Layer7 check passed",
        HCHK_L7STS => "Layer7 wrong status",
        HCHK_L7TOUT => "Layer7 timeout",
        HCHK_L7RSP => "Layer7 invalid response",
        HCHK_INI => "Initializing",
        _ => "Unknown",
    }
}

// ------------------------------------------------------------------------------------------
// Process-wide view the CLI answers from.

/// One proxy as `show stat` lists it.
struct ProxyView {
    name: String,
    iid: u32,
    forced_id: bool,
    mode: Mode,
    fe: Option<(Arc<Frontend>, u32)>,
    be: Option<Arc<Backend>>,
    algo: String,
    fullconn: u32,
    description: Option<String>,
}

struct Ctx {
    shared: Arc<Shared>,
    proxies: Vec<ProxyView>,
    maxconn: u32,
    start: SystemTime,
    nbthread: usize,
    stats_timeout: Duration,
    conns: Arc<Semaphore>,
    fe_smax: Vec<AtomicU32>,
}

/// Listening sockets: `(frontend index, fd, paused)`.
static LISTENER_FDS: Mutex<Vec<(usize, RawFd, bool)>> = Mutex::new(Vec::new());
static PAUSED: OnceLock<watch::Sender<bool>> = OnceLock::new();

fn paused_tx() -> &'static watch::Sender<bool> {
    PAUSED.get_or_init(|| watch::channel(false).0)
}

/// A listening socket the process accepts on (handed to a new process by `_getsocks`).
pub fn register_listener(fe: usize, l: &std::net::TcpListener) {
    LISTENER_FDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((fe, l.as_raw_fd(), false));
}

/// Pauses or resumes each listening socket as the global (SIGTTOU) and per-frontend
/// (`disable frontend`, `shutdown frontend`) states say. As HAProxy on Linux, a paused socket
/// stops listening (`shutdown(SHUT_RD)`: new connections are refused) and resumes with
/// `listen()` again. The accept loops wait in [`wait_resumed`] meanwhile, and register a
/// resumed socket afresh ([`resume_generation`]).
fn apply_listen_state() {
    let global = *paused_tx().borrow();
    let want = |fi: usize| global || fe_state(fi).is_some_and(|s| *s.borrow() != FE_OPEN);
    let mut fds = LISTENER_FDS.lock().unwrap_or_else(|e| e.into_inner());
    for (fi, fd, paused) in fds.iter_mut() {
        let want = want(*fi);
        if want != *paused {
            // SAFETY: shutdown(2)/listen(2) on a listening socket this process owns; the
            // kernel caps the backlog at net.core.somaxconn.
            unsafe {
                if want {
                    nix::libc::shutdown(*fd, nix::libc::SHUT_RD);
                } else {
                    nix::libc::listen(*fd, 65535);
                    RESUME_GEN.fetch_add(1, Ordering::AcqRel);
                }
            }
            *paused = want;
        }
    }
    fds.retain(|(fi, _, _)| fe_state(*fi).is_none_or(|s| *s.borrow() != FE_STOPPED));
}

/// Soft stop: the listeners are closing, nothing to hand over any more.
pub fn listeners_closed() {
    LISTENER_FDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

/// SIGTTOU / SIGTTIN: pause or resume accepting.
pub fn set_paused(p: bool) {
    paused_tx().send_replace(p);
    apply_listen_state();
}

/// Bumped at every resume: accept loops then register their socket afresh, because the
/// poller keeps reporting a socket that was shut (paused) as closed for ever.
static RESUME_GEN: AtomicU64 = AtomicU64::new(0);

/// See [`RESUME_GEN`].
pub fn resume_generation() -> u64 {
    RESUME_GEN.load(Ordering::Acquire)
}

/// Per-frontend listener state: `disable frontend` pauses, `shutdown frontend` stops.
const FE_OPEN: u8 = 0;
const FE_PAUSED: u8 = 1;
const FE_STOPPED: u8 = 2;

static FE_STATE: OnceLock<Vec<watch::Sender<u8>>> = OnceLock::new();

fn fe_state(fi: usize) -> Option<&'static watch::Sender<u8>> {
    FE_STATE.get().and_then(|v| v.get(fi))
}

/// Accept loops of frontend `fi` wait here while its listeners are paused (SIGTTOU,
/// `disable frontend`), and for ever once it was shut down.
pub async fn wait_resumed(fi: usize) {
    loop {
        let tx = paused_tx();
        if *tx.borrow() {
            let mut rx = tx.subscribe();
            let _ = rx.wait_for(|p| !*p).await;
            continue;
        }
        let Some(st) = fe_state(fi) else {
            return;
        };
        let state = *st.borrow();
        match state {
            FE_OPEN => return,
            FE_STOPPED => std::future::pending::<()>().await,
            _ => {}
        }
        let mut rx = st.subscribe();
        let _ = rx.wait_for(|s| *s != FE_PAUSED).await;
    }
}

/// A bound stats socket, not yet serving.
pub struct BoundCli {
    pub cfg: StatsSocket,
    listener: CliListener,
}

enum CliListener {
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener),
}

/// Binds every `stats socket` (before privileges are dropped). Errors are alert texts.
pub fn bind_sockets(cfg: &Config) -> Result<Vec<BoundCli>, String> {
    let mut out = Vec::new();
    for s in &cfg.global.stats_sockets {
        let sc = &s.value;
        let listener = match &sc.addr {
            StatsAddr::Unix(path) => {
                // Bind to a temporary name then rename over the old socket, so a process
                // still serving on the old one is never left without a path mid-way.
                let tmp = format!("{path}.{}.tmp", std::process::id());
                let _ = std::fs::remove_file(&tmp);
                let l = std::os::unix::net::UnixListener::bind(&tmp).map_err(|e| {
                    format!(
                        "Binding [{}] for frontend GLOBAL: cannot bind UNIX socket ({}) [{path}]",
                        s.loc,
                        super::listen::os_error_text(&e)
                    )
                })?;
                use std::os::unix::fs::PermissionsExt;
                if let Some(m) = sc.mode {
                    let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(m));
                }
                if sc.uid.is_some() || sc.gid.is_some() {
                    let _ = nix::unistd::chown(
                        tmp.as_str(),
                        sc.uid.map(nix::unistd::Uid::from_raw),
                        sc.gid.map(nix::unistd::Gid::from_raw),
                    );
                }
                std::fs::rename(&tmp, path).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    format!(
                        "Binding [{}] for frontend GLOBAL: cannot change UNIX socket ownership ({}) [{path}]",
                        s.loc,
                        super::listen::os_error_text(&e)
                    )
                })?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                CliListener::Unix(l)
            }
            StatsAddr::Tcp(sa) => {
                let sock = socket2::Socket::new(
                    socket2::Domain::for_address(*sa),
                    socket2::Type::STREAM,
                    None,
                )
                .map_err(|e| e.to_string())?;
                let _ = sock.set_reuse_address(true);
                sock.bind(&(*sa).into())
                    .and_then(|_| sock.listen(16))
                    .map_err(|e| {
                        format!(
                            "Binding [{}] for frontend GLOBAL: cannot bind socket ({}) for [{}]",
                            s.loc,
                            super::listen::os_error_text(&e),
                            super::listen::addr_port(sa)
                        )
                    })?;
                sock.set_nonblocking(true).map_err(|e| e.to_string())?;
                CliListener::Tcp(sock.into())
            }
        };
        out.push(BoundCli {
            cfg: sc.clone(),
            listener,
        });
    }
    Ok(out)
}

/// Every proxy's id by name (`fe_id`, `be_id`).
pub fn proxy_ids_by_name(cfg: &Config) -> std::collections::HashMap<String, u32> {
    let real: Vec<_> = cfg
        .proxies
        .iter()
        .filter(|p| p.kind != ProxyKind::Defaults)
        .collect();
    let ids = proxy_ids(
        &real
            .iter()
            .map(|p| p.id.as_ref().map(|l| l.value))
            .collect::<Vec<_>>(),
    );
    real.iter().map(|p| p.name.clone()).zip(ids).collect()
}

/// Proxy ids as HAProxy 2.6 numbers them: explicit ids kept; the others take the smallest free
/// id at or above a counter that starts at 2 and advances after every proxy.
fn proxy_ids(explicit: &[Option<u32>]) -> Vec<u32> {
    let mut taken: std::collections::BTreeSet<u32> = explicit.iter().flatten().copied().collect();
    let mut next = 2u32;
    explicit
        .iter()
        .map(|e| match e {
            Some(id) => {
                next += 1;
                *id
            }
            None => {
                let mut c = next;
                while taken.contains(&c) {
                    c += 1;
                }
                taken.insert(c);
                next = c + 1;
                c
            }
        })
        .collect()
}

/// Starts serving the stats sockets on the runtime.
pub fn start(
    rt: &tokio::runtime::Runtime,
    shared: &Arc<Shared>,
    cfg: &Config,
    socks: Vec<BoundCli>,
) {
    let _g = rt.enter();
    let real: Vec<_> = cfg
        .proxies
        .iter()
        .filter(|p| p.kind != ProxyKind::Defaults)
        .collect();
    let ids = proxy_ids(
        &real
            .iter()
            .map(|p| p.id.as_ref().map(|l| l.value))
            .collect::<Vec<_>>(),
    );
    let mut proxies = Vec::new();
    for (p, iid) in real.iter().zip(ids) {
        if p.disabled {
            continue;
        }
        let fe = shared
            .frontends
            .iter()
            .find(|f| f.name == p.name)
            .map(|f| (Arc::clone(f), f.maxconn.available_permits() as u32));
        let be = shared.backends.iter().find(|b| b.name == p.name).cloned();
        if fe.is_none() && be.is_none() {
            continue;
        }
        let algo = match (&p.balance, p.mode.value) {
            (Some(b), Mode::Http) => b.value.first().cloned().unwrap_or_default(),
            (Some(b), Mode::Tcp) => {
                let w: Vec<&str> = b.value.iter().map(|s| s.as_str()).collect();
                match crate::lb::parse_balance(&w) {
                    Ok(a) if !a.is_l7() => b.value.first().cloned().unwrap_or_default(),
                    _ => "roundrobin".into(),
                }
            }
            (None, _) => "roundrobin".into(),
        };
        proxies.push(ProxyView {
            name: p.name.clone(),
            iid,
            forced_id: p.id.is_some(),
            mode: p.mode.value,
            fe,
            be,
            algo,
            fullconn: p.fullconn.unwrap_or(0),
            description: p.description.clone(),
        });
    }
    // Backend `slim`: `fullconn`, or its default (computed with the backends).
    for v in proxies.iter_mut() {
        if let Some(be) = &v.be {
            v.fullconn = be.lb.fullconn();
        }
    }
    let n = proxies.len();
    let _ = FE_STATE.set(
        shared
            .frontends
            .iter()
            .map(|_| watch::channel(FE_OPEN).0)
            .collect(),
    );
    let ctx = Arc::new(Ctx {
        shared: Arc::clone(shared),
        proxies,
        maxconn: shared.maxconn,
        start: SystemTime::now(),
        nbthread: rt.metrics().num_workers(),
        stats_timeout: Duration::from_millis(
            cfg.global
                .stats_timeout
                .as_ref()
                .map(|t| t.value)
                .unwrap_or(10_000),
        ),
        conns: Arc::new(Semaphore::new(64)),
        fe_smax: (0..n).map(|_| AtomicU32::new(0)).collect(),
    });
    let _ = CTX.set(Arc::clone(&ctx));
    super::stats_page::set_globals(cfg.global.node.clone(), cfg.global.description.clone());
    // SIGTTOU / SIGTTIN pause and resume the listeners.
    for (sig, pause) in [(nix::libc::SIGTTOU, true), (nix::libc::SIGTTIN, false)] {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut s) = signal(SignalKind::from_raw(sig)) {
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    set_paused(pause);
                }
            });
        }
    }
    for b in socks {
        let ctx = Arc::clone(&ctx);
        let level = b.cfg.level;
        let expose = b.cfg.expose_fd;
        match b.listener {
            CliListener::Unix(l) => {
                let Ok(l) = tokio::net::UnixListener::from_std(l) else {
                    continue;
                };
                tokio::spawn(async move {
                    loop {
                        let Ok((s, _)) = l.accept().await else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        let Ok(permit) = Arc::clone(&ctx.conns).try_acquire_owned() else {
                            continue;
                        };
                        let ctx = Arc::clone(&ctx);
                        tokio::spawn(async move {
                            let _p = permit;
                            serve_conn(ctx, s, level, expose).await;
                        });
                    }
                });
            }
            CliListener::Tcp(l) => {
                let Ok(l) = tokio::net::TcpListener::from_std(l) else {
                    continue;
                };
                tokio::spawn(async move {
                    loop {
                        let Ok((s, _)) = l.accept().await else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        let Ok(permit) = Arc::clone(&ctx.conns).try_acquire_owned() else {
                            continue;
                        };
                        let ctx = Arc::clone(&ctx);
                        tokio::spawn(async move {
                            let _p = permit;
                            serve_conn(ctx, s, level, false).await;
                        });
                    }
                });
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// What the stats page and the Prometheus exporter read.

static CTX: OnceLock<Arc<Ctx>> = OnceLock::new();

/// `show stat` as the stats page's `;csv` gives it (user level: no addresses, no algo).
/// `opts`: `up`, `no-maint`; `keep`: the proxies to list (`None`: all).
pub fn stats_csv(opts: &[String], keep: Option<&dyn Fn(&str) -> bool>) -> String {
    let mut out = String::new();
    if let Some(ctx) = CTX.get() {
        show_stat_filtered(ctx, CliLevel::User, opts, keep, &mut out);
    }
    out
}

/// The rows of `show stat` (level `level`) as `(header, rows)`.
pub fn stat_table(level: CliLevel, opts: &[String]) -> (Vec<String>, Vec<Vec<String>>) {
    let csv = match CTX.get() {
        Some(ctx) => {
            let mut out = String::new();
            show_stat_filtered(ctx, level, opts, None, &mut out);
            out
        }
        None => return (Vec::new(), Vec::new()),
    };
    parse_csv(&csv)
}

/// Splits `show stat` output into the column names and the rows.
pub fn parse_csv(csv: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or("")
        .trim_start_matches("# ")
        .trim_end_matches(',')
        .split(',')
        .map(String::from)
        .collect();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut r: Vec<String> = l.split(',').map(String::from).collect();
            r.truncate(header.len());
            r
        })
        .collect();
    (header, rows)
}

/// The `show info` fields.
pub fn info_fields() -> Vec<(&'static str, String)> {
    let Some(ctx) = CTX.get() else {
        return Vec::new();
    };
    let mut out = String::new();
    show_info(ctx, &mut out);
    let names = INFO_NAMES;
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            let k = names.iter().find(|n| **n == k)?;
            Some((*k, v.to_string()))
        })
        .collect()
}

const INFO_NAMES: &[&str] = &[
    "Name",
    "Version",
    "Release_date",
    "Nbthread",
    "Nbproc",
    "Process_num",
    "Pid",
    "Uptime",
    "Uptime_sec",
    "Memmax_MB",
    "PoolAlloc_MB",
    "PoolUsed_MB",
    "PoolFailed",
    "Ulimit-n",
    "Maxsock",
    "Maxconn",
    "Hard_maxconn",
    "CurrConns",
    "CumConns",
    "CumReq",
    "MaxSslConns",
    "CurrSslConns",
    "CumSslConns",
    "Maxpipes",
    "PipesUsed",
    "PipesFree",
    "ConnRate",
    "ConnRateLimit",
    "MaxConnRate",
    "SessRate",
    "SessRateLimit",
    "MaxSessRate",
    "SslRate",
    "SslRateLimit",
    "MaxSslRate",
    "SslFrontendKeyRate",
    "SslFrontendMaxKeyRate",
    "SslFrontendSessionReuse_pct",
    "SslBackendKeyRate",
    "SslBackendMaxKeyRate",
    "SslCacheLookups",
    "SslCacheMisses",
    "CompressBpsIn",
    "CompressBpsOut",
    "CompressBpsRateLim",
    "Tasks",
    "Run_queue",
    "Idle_pct",
    "node",
    "Stopping",
    "Jobs",
    "Unstoppable Jobs",
    "Listeners",
    "ActivePeers",
    "ConnectedPeers",
    "DroppedLogs",
    "BusyPolling",
    "FailedResolutions",
    "TotalBytesOut",
    "TotalSplicdedBytesOut",
    "BytesOutRate",
    "DebugCommandsIssued",
    "CumRecvLogs",
    "Build info",
    "Memmax_bytes",
    "PoolAlloc_bytes",
    "PoolUsed_bytes",
    "Start_time_sec",
    "Tainted",
];

/// Runs one runtime-API command at level admin (the stats page's admin actions); returns
/// its answer (empty when it succeeded silently).
pub fn admin_command(words: &[&str]) -> String {
    let Some(ctx) = CTX.get() else {
        return "not ready\n".into();
    };
    let mut sess = Session {
        level: CliLevel::Admin,
        prompt: false,
        timeout: ctx.stats_timeout,
        expose_fd: false,
        quit: false,
    };
    let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
    let mut out = String::new();
    let action = dispatch(ctx, &mut sess, &words, &mut out);
    if action.apply_listen {
        apply_listen_state();
    }
    out
}

/// `description` of every proxy that has one, by proxy name.
pub fn proxy_descriptions() -> Vec<(String, String)> {
    CTX.get()
        .map(|c| {
            c.proxies
                .iter()
                .filter_map(|p| Some((p.name.clone(), p.description.clone()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Proxy ids (`iid`) by name, for the page's `b=#IID` form field.
pub fn proxy_iid(name: &str) -> Option<u32> {
    CTX.get()?
        .proxies
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.iid)
}

// ------------------------------------------------------------------------------------------
// Connections.

/// Longest command line accepted (HAProxy's is its buffer size).
const MAX_LINE: usize = 16384;

trait CliStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + AsRawFd {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + AsRawFd> CliStream for T {}

struct Session {
    level: CliLevel,
    prompt: bool,
    timeout: Duration,
    expose_fd: bool,
    quit: bool,
}

async fn serve_conn<S: CliStream>(ctx: Arc<Ctx>, mut s: S, level: CliLevel, expose_fd: bool) {
    let mut sess = Session {
        level,
        prompt: false,
        timeout: ctx.stats_timeout,
        expose_fd,
        quit: false,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut tmp = [0u8; 4096];
    let mut eof = false;
    loop {
        // Answer every complete line already received.
        let mut answered = false;
        while let Some(pos) = buf.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let line = line.trim_end_matches('\r').to_string();
            if !run_line(&ctx, &mut sess, &mut s, &line).await {
                return;
            }
            answered = true;
            if sess.quit {
                return;
            }
        }
        if eof {
            // As HAProxy: a last line without its newline is not run.
            return;
        }
        if answered && !sess.prompt {
            return;
        }
        if buf.len() > MAX_LINE {
            // HAProxy closes without an answer when a line does not fit its buffer.
            return;
        }
        match tokio::time::timeout(sess.timeout, s.read(&mut tmp)).await {
            Err(_) | Ok(Err(_)) => return,
            Ok(Ok(0)) => eof = true,
            Ok(Ok(n)) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

/// Runs one input line (`;`-separated commands); `false` when the connection must close.
async fn run_line<S: CliStream>(ctx: &Ctx, sess: &mut Session, s: &mut S, line: &str) -> bool {
    let cmds = split_commands(line);
    for words in cmds {
        if words.first().map(String::as_str) == Some("_getsocks") {
            // Only sockets declared with `expose-fd listeners` hand out descriptors.
            if !sess.expose_fd {
                if s.write_all(b"Permission denied\n\n").await.is_err() {
                    return false;
                }
                continue;
            }
            let _ = send_listeners(s.as_raw_fd()).await;
            return false;
        }
        let mut out = String::new();
        let action = dispatch(ctx, sess, &words, &mut out);
        if action.apply_listen {
            apply_listen_state();
        }
        if sess.quit {
            return true;
        }
        if sess.prompt {
            out.push_str("\n> ");
        } else if !action.no_newline {
            out.push('\n');
        }
        if s.write_all(out.as_bytes()).await.is_err() {
            return false;
        }
        if sess.quit {
            return true;
        }
    }
    true
}

/// Splits a line into commands (`;`) and words (blanks), with `\` escaping the next byte.
fn split_commands(line: &str) -> Vec<Vec<String>> {
    let mut cmds = vec![];
    let mut words: Vec<String> = vec![];
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            ';' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                cmds.push(std::mem::take(&mut words));
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    cmds.push(words);
    // A trailing `;` does not make an extra empty command.
    if cmds.len() > 1 && cmds.last().is_some_and(|w| w.is_empty()) {
        cmds.pop();
    }
    cmds
}

#[derive(Default)]
struct Action {
    /// HAProxy forgets the final empty line after a few error messages.
    no_newline: bool,
    /// Listening sockets must follow a frontend state change before the answer.
    apply_listen: bool,
}

/// The commands rhaproxy answers, with HAProxy's help lines.
const COMMANDS: &[(&str, &str)] = &[
    (
        "clear table",
        "  clear table <table> [<filter>]*         : remove an entry from a table (filter: data/key)",
    ),
    (
        "disable frontend",
        "  disable frontend <frontend>             : temporarily disable specific frontend",
    ),
    (
        "disable server",
        "  disable server (DEPRECATED)             : disable a server for maintenance (use 'set server' instead)",
    ),
    (
        "enable frontend",
        "  enable frontend <frontend>              : re-enable specific frontend",
    ),
    (
        "enable server",
        "  enable server  (DEPRECATED)             : enable a disabled server (use 'set server' instead)",
    ),
    (
        "get weight",
        "  get weight <bk>/<srv>                   : report a server's current weight",
    ),
    (
        "operator",
        "  operator                                : lower the level of the current CLI session to operator",
    ),
    (
        "set server",
        "  set server <bk>/<srv> [opts]            : change a server's state, weight, address or ssl",
    ),
    (
        "set table",
        "  set table <table> key <k> [data.* <v>]* : update or create a table entry's data",
    ),
    (
        "set timeout",
        "  set timeout [cli] <delay>               : change a timeout setting",
    ),
    (
        "set weight",
        "  set weight <bk>/<srv>  (DEPRECATED)     : change a server's weight (use 'set server' instead)",
    ),
    (
        "show backend",
        "  show backend                            : list backends in the current running config",
    ),
    (
        "show cli level",
        "  show cli level                          : display the level of the current CLI session",
    ),
    (
        "show errors",
        "  show errors [<px>] [request|response]   : report last request and/or response errors for each proxy",
    ),
    (
        "show info",
        "  show info [desc|json|typed|float]*      : report information about the running process",
    ),
    (
        "show servers conn",
        "  show servers conn [<backend>]           : dump server connections status (all or for a single backend)",
    ),
    (
        "show servers state",
        "  show servers state [<backend>]          : dump volatile server information (all or for a single backend)",
    ),
    (
        "show sess",
        "  show sess [id]                          : report the list of current sessions or dump this exact session",
    ),
    (
        "show stat",
        "  show stat [desc|json|no-maint|typed|up]*: report counters for each proxy and server",
    ),
    (
        "show table",
        "  show table <table> [<filter>]*          : report table usage stats or dump this table's contents (filter: data/key)",
    ),
    (
        "show version",
        "  show version                            : show version of the current process",
    ),
    (
        "shutdown frontend",
        "  shutdown frontend <frontend>            : stop a specific frontend",
    ),
    (
        "shutdown sessions server",
        "  shutdown sessions server <bk>/<srv>     : kill sessions on a server",
    ),
    (
        "user",
        "  user                                    : lower the level of the current CLI session to user",
    ),
];

const TAIL: &str = "  help [<command>]                        : list matching or all commands
  prompt                                  : toggle interactive mode with prompt
  quit                                    : disconnect
";

fn help_all(out: &mut String, header: &str, filter: &[String]) {
    out.push_str(header);
    for (kw, line) in COMMANDS {
        let kws: Vec<&str> = kw.split(' ').collect();
        if filter.iter().zip(kws.iter()).all(|(a, b)| a == b) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(TAIL);
}

/// "Unknown command": the commands nearest to what was typed, as HAProxy does (all commands
/// sharing the typed words, else the five closest by word fingerprints).
fn unknown(out: &mut String, words: &[String]) {
    if words.is_empty() {
        help_all(
            out,
            "Unknown command. Please enter one of the following commands only:\n",
            &[],
        );
        return;
    }
    out.push_str("Unknown command, but maybe one of the following ones is a better match:\n");
    let exact: Vec<_> = COMMANDS
        .iter()
        .filter(|(kw, _)| {
            let kws: Vec<&str> = kw.split(' ').collect();
            kws.len() > words.len() && words.iter().zip(kws.iter()).all(|(a, b)| a == b)
        })
        .collect();
    if !exact.is_empty() {
        for (_, line) in exact {
            out.push_str(line);
            out.push('\n');
        }
    } else {
        let mut scored: Vec<(usize, usize)> = COMMANDS
            .iter()
            .enumerate()
            .map(|(i, (kw, _))| {
                let d: usize = kw
                    .split(' ')
                    .zip(words.iter())
                    .map(|(k, w)| fp_distance(k, w))
                    .sum();
                (d, i)
            })
            .collect();
        scored.sort();
        let mut best: Vec<usize> = scored.iter().take(5).map(|&(_, i)| i).collect();
        best.sort();
        for i in best {
            out.push_str(COMMANDS[i].1);
            out.push('\n');
        }
    }
    out.push_str(TAIL);
}

/// Distance between the character-class transition fingerprints of two words.
fn fp_distance(a: &str, b: &str) -> usize {
    fn fp(w: &str) -> std::collections::HashMap<(u8, u8), i32> {
        let class = |c: u8| match c.to_ascii_lowercase() {
            c @ b'a'..=b'z' => c - b'a',
            b'0'..=b'9' => 26,
            _ => 27,
        };
        let mut m = std::collections::HashMap::new();
        let mut from = 28u8;
        for &c in w.as_bytes() {
            let to = class(c);
            *m.entry((from, to)).or_insert(0) += 1;
            from = to;
        }
        *m.entry((from, 29)).or_insert(0) += 1;
        m
    }
    let (fa, fb) = (fp(a), fp(b));
    let mut d = 0usize;
    for (k, v) in &fa {
        d += (v - fb.get(k).copied().unwrap_or(0)).unsigned_abs() as usize;
    }
    for (k, v) in &fb {
        if !fa.contains_key(k) {
            d += v.unsigned_abs() as usize;
        }
    }
    d
}

fn denied(out: &mut String) {
    out.push_str("Permission denied\n");
}

fn dispatch(ctx: &Ctx, sess: &mut Session, w: &[String], out: &mut String) -> Action {
    let a = |i: usize| w.get(i).map(String::as_str).unwrap_or("");
    let need = |lvl: CliLevel, out: &mut String| -> bool {
        if sess.level < lvl {
            denied(out);
            false
        } else {
            true
        }
    };
    match (a(0), a(1)) {
        ("help", _) => {
            if w.len() > 1 {
                let f = &w[1..];
                if COMMANDS
                    .iter()
                    .any(|(kw, _)| kw.split(' ').next() == Some(f[0].as_str()))
                {
                    help_all(out, "The following commands are valid at this level:\n", f);
                } else {
                    unknown(out, w);
                }
            } else {
                help_all(
                    out,
                    "The following commands are valid at this level:\n",
                    &[],
                );
            }
        }
        ("prompt", _) => sess.prompt = !sess.prompt,
        ("quit", _) => sess.quit = true,
        ("operator", _) if sess.level >= CliLevel::Operator => sess.level = CliLevel::Operator,
        ("user", _) => sess.level = CliLevel::User,
        ("show", "cli") if a(2) == "level" => out.push_str(match sess.level {
            CliLevel::User => "user\n",
            CliLevel::Operator => "operator\n",
            CliLevel::Admin => "admin\n",
        }),
        ("show", "version") => {
            let _ = writeln!(out, "{}", version());
        }
        ("show", "info") => show_info(ctx, out),
        ("show", "table") => {
            super::stkctr::cli_show_table(w, sess.level >= CliLevel::Operator, out)
        }
        ("set", "table") => super::stkctr::cli_set_table(w, sess.level >= CliLevel::Operator, out),
        ("clear", "table") => {
            super::stkctr::cli_clear_table(w, sess.level >= CliLevel::Operator, out)
        }
        ("show", "stat") => show_stat(ctx, sess.level, &w[2..], out),
        ("show", "servers") if a(2) == "state" => show_servers_state(ctx, w.get(3), out),
        ("show", "servers") if a(2) == "conn" => show_servers_conn(ctx, w.get(3), out),
        ("show", "backend") => {
            out.push_str("# name\n");
            for p in ctx.proxies.iter().filter(|p| p.be.is_some()) {
                let _ = writeln!(out, "{}", p.name);
            }
        }
        ("show", "sess") => {
            if need(CliLevel::Operator, out) {
                show_sess(&ctx.shared, out);
            }
        }
        ("show", "errors") => {
            if need(CliLevel::Operator, out) {
                let now = chrono::Local::now();
                let _ = writeln!(
                    out,
                    "Total events captured on [{}] : 0",
                    now.format("%d/%b/%Y:%H:%M:%S%.3f")
                );
            }
        }
        ("get", "weight") => match find_server(ctx, a(2)) {
            Ok((_, srv)) => {
                let _ = writeln!(
                    out,
                    "{} (initial {})",
                    srv.admin.uweight.load(Ordering::Acquire),
                    srv.admin.iweight
                );
            }
            Err(e) => out.push_str(e),
        },
        ("set", "weight") => {
            if need(CliLevel::Admin, out) {
                match find_server(ctx, a(2)) {
                    Ok((be, srv)) => return set_weight(be, srv.idx, a(3), out),
                    Err(e) => out.push_str(e),
                }
            }
        }
        ("set", "timeout") => {
            if a(2) == "cli" {
                match crate::config::values::parse_time_ms(a(3)) {
                    Ok(ms) if ms > 0 => sess.timeout = Duration::from_millis(ms),
                    _ => out.push_str("Expects an integer value.\n"),
                }
            } else {
                out.push_str("'set timeout' only supports 'cli'.\n");
            }
        }
        ("disable", "server") | ("enable", "server") => {
            if need(CliLevel::Admin, out) {
                match find_server(ctx, a(2)) {
                    Ok((be, srv)) => {
                        if a(0) == "disable" {
                            set_maint(be, srv.idx, true);
                        } else {
                            state_ready(be, srv.idx);
                        }
                    }
                    Err(e) => out.push_str(e),
                }
            }
        }
        ("set", "server") => {
            if need(CliLevel::Admin, out) {
                return set_server(ctx, w, out);
            }
        }
        ("disable", "frontend") | ("enable", "frontend") | ("shutdown", "frontend") => {
            if need(CliLevel::Admin, out) && frontend_cmd(ctx, a(0), a(2), out) {
                return Action {
                    apply_listen: true,
                    ..Action::default()
                };
            }
        }
        ("shutdown", "sessions") if a(2) == "server" => {
            if need(CliLevel::Admin, out) {
                match find_server(ctx, a(3)) {
                    Ok((be, srv)) => shutdown_server_sessions(&be.name, srv),
                    Err(e) => out.push_str(e),
                }
            }
        }
        _ => unknown(out, w),
    }
    Action::default()
}

fn version() -> String {
    format!(
        "{}-rhaproxy-{}",
        crate::config::build_info::HAPROXY_VERSION,
        crate::config::build_info::RHAPROXY_VERSION
    )
}

fn find_server<'a>(
    ctx: &'a Ctx,
    arg: &str,
) -> Result<(&'a Arc<Backend>, &'a Server), &'static str> {
    let Some((b, s)) = arg.split_once('/') else {
        return Err("Require 'backend/server'.\n");
    };
    let be = ctx
        .proxies
        .iter()
        .filter_map(|p| p.be.as_ref())
        .find(|be| {
            be.name == b
                || b.strip_prefix('#')
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|id| ctx.proxies.iter().any(|p| p.iid == id && p.name == be.name))
        })
        .ok_or("No such backend.\n")?;
    let srv = be
        .servers
        .iter()
        .find(|x| x.name == s)
        .ok_or("No such server.\n")?;
    Ok((be, srv))
}

fn adjust_up_count(be: &Backend, i: usize, up: bool) {
    let srv = &be.servers[i];
    let counter = if srv.backup {
        &be.backup_up
    } else {
        &be.active_up
    };
    if up {
        counter.fetch_add(1, Ordering::AcqRel);
    } else {
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Usable active and backup servers (what HAProxy's state messages count).
fn usable_counts(be: &Backend) -> (u32, u32) {
    let (mut a, mut b) = (0, 0);
    for s in &be.servers {
        if usable(s) {
            if s.backup {
                b += 1;
            } else {
                a += 1;
            }
        }
    }
    (a, b)
}

fn srv_label(srv: &Server) -> &'static str {
    if srv.backup {
        "Backup Server"
    } else {
        "Server"
    }
}

fn warn_line(text: String) {
    eprintln!("[WARNING]  ({}) : {text}", std::process::id());
}

/// A warning that HAProxy also sends to `proxy`'s log targets at `level`.
fn warn_event(proxy: &str, level: u8, text: String) {
    super::logging::event(proxy, level, &text);
    warn_line(text);
}

/// Enters (`on`) or leaves forced maintenance, with HAProxy's messages.
pub fn set_maint(be: &Backend, i: usize, on: bool) {
    let srv = &be.servers[i];
    let a = &srv.admin;
    let label = srv_label(srv);
    if on {
        let old = a.flags.fetch_or(ADM_FMAINT, Ordering::AcqRel);
        if old & ADM_FMAINT != 0 {
            return;
        }
        // HAProxy closes the idle connections of a server entering maintenance (measured).
        srv.pool.close_all();
        a.chk().health = 0;
        let was_up = srv.up.swap(false, Ordering::AcqRel);
        // A stopping server (disable-on-404) is already out of the online count.
        let was_stopping = a.stopping.swap(false, Ordering::AcqRel);
        if was_up {
            if !was_stopping {
                adjust_up_count(be, i, false);
            }
            a.down_since.store(now_secs().max(1), Ordering::Release);
        }
        a.last_change.store(now_secs(), Ordering::Relaxed);
        sync_lb(be, i);
        if !was_up {
            warn_event(
                &be.name,
                LEVEL_NOTICE,
                format!(
                    "{label} {}/{} was DOWN and now enters maintenance.",
                    be.name, srv.name
                ),
            );
            return;
        }
        let (act, bck) = usable_counts(be);
        warn_event(
            &be.name,
            LEVEL_ALERT,
            format!(
                "{label} {}/{} is going DOWN for maintenance. {act} active and {bck} backup servers left.{} {} sessions active, 0 requeued, 0 remaining in queue.",
                be.name,
                srv.name,
                if act == 0 && bck > 0 {
                    " Running on backup."
                } else {
                    ""
                },
                be.lb.served(i)
            ),
        );
        if act == 0 && bck == 0 {
            let kind = super::listen::proxy_type(&be.proxy).replace("frontend", "proxy");
            eprintln!(
                "[ALERT]    ({}) : {kind} '{}' has no server available!",
                std::process::id(),
                be.name
            );
            let text = format!("{kind} {} has no server available!", be.name);
            super::logging::event(&be.name, LEVEL_EMERG, &text);
        }
    } else {
        let old = a.flags.fetch_and(!ADM_FMAINT, Ordering::AcqRel);
        if old & ADM_FMAINT == 0 {
            return;
        }
        a.last_change.store(now_secs(), Ordering::Relaxed);
        // As HAProxy: the server comes back up at once (a checked one at `rise`, so the
        // first failed check takes it down again).
        if let Some((rise, _)) = a.check {
            a.chk().health = rise;
            a.check_reset.store(true, Ordering::Release);
        }
        if !srv.up.swap(true, Ordering::AcqRel) {
            adjust_up_count(be, i, true);
            let since = a.down_since.swap(0, Ordering::AcqRel);
            if since > 0 {
                a.downtime
                    .fetch_add(now_secs().saturating_sub(since), Ordering::Relaxed);
            }
        }
        sync_lb(be, i);
        let drain = a.flags.load(Ordering::Acquire) & ADM_FDRAIN != 0;
        warn_event(
            &be.name,
            LEVEL_NOTICE,
            format!(
                "{label} {}/{} is UP/{} (leaving forced maintenance).",
                be.name,
                srv.name,
                if drain { "DRAIN" } else { "READY" }
            ),
        );
    }
}

/// Sets or clears forced drain, with HAProxy's messages (none while in maintenance).
fn set_drain(be: &Backend, i: usize, on: bool) {
    let srv = &be.servers[i];
    let a = &srv.admin;
    let old = if on {
        a.flags.fetch_or(ADM_FDRAIN, Ordering::AcqRel)
    } else {
        a.flags.fetch_and(!ADM_FDRAIN, Ordering::AcqRel)
    };
    if (old & ADM_FDRAIN != 0) == on {
        return;
    }
    a.last_change.store(now_secs(), Ordering::Relaxed);
    sync_lb(be, i);
    if old & ADM_FMAINT != 0 {
        return;
    }
    let label = srv_label(srv);
    if on {
        let (act, bck) = usable_counts(be);
        let queued: usize = be
            .servers
            .iter()
            .map(|s| s.queued.load(Ordering::Relaxed))
            .sum();
        warn_event(
            &be.name,
            LEVEL_NOTICE,
            format!(
                "{label} {}/{} enters drain state. {act} active and {bck} backup servers online. 0 sessions requeued, {queued} total in queue.",
                be.name, srv.name
            ),
        );
    } else {
        warn_event(
            &be.name,
            LEVEL_NOTICE,
            format!(
                "{label} {}/{} is UP (leaving forced drain).",
                be.name, srv.name
            ),
        );
    }
}

/// `set server ... state drain` (also leaves maintenance).
fn state_drain(be: &Backend, i: usize) {
    let srv = &be.servers[i];
    if srv.admin.in_maint() {
        set_drain(be, i, true);
        set_maint(be, i, false);
        warn_event(
            &be.name,
            LEVEL_NOTICE,
            format!(
                "{} {}/{} remains in forced drain mode.",
                srv_label(srv),
                be.name,
                srv.name
            ),
        );
    } else {
        set_drain(be, i, true);
    }
}

/// `set server ... state ready` / `enable server`: leaves maintenance and drain.
fn state_ready(be: &Backend, i: usize) {
    if be.servers[i].admin.in_maint() {
        // Leaving maintenance says UP/READY; the drain flag goes silently.
        let a = &be.servers[i].admin;
        a.flags.fetch_and(!ADM_FDRAIN, Ordering::AcqRel);
        set_maint(be, i, false);
    } else {
        set_drain(be, i, false);
    }
}

fn static_algo(be: &Backend) -> bool {
    use crate::lb::{Algorithm, HashMethod};
    match be.lb.algorithm() {
        Algorithm::StaticRr => true,
        a if a.is_hash() => be.lb.hash_type().method == HashMethod::MapBased,
        _ => false,
    }
}

fn set_weight(be: &Backend, i: usize, arg: &str, out: &mut String) -> Action {
    let srv = &be.servers[i];
    let digits = arg.trim_end_matches('%');
    let Ok(v) = digits.parse::<u64>() else {
        out.push_str("Empty weight string empty or preceded by garbage\n");
        return Action {
            no_newline: true,
            ..Action::default()
        };
    };
    let w = if arg.ends_with('%') {
        let w = srv.admin.iweight as u64 * v / 100;
        if w > 256 {
            out.push_str("Relative weight too large.\n");
            return Action::default();
        }
        w as u32
    } else {
        if v > 256 {
            out.push_str("Absolute weight can only be between 0 and 256 inclusive.\n");
            return Action::default();
        }
        v as u32
    };
    if static_algo(be) && w != 0 && w != srv.admin.iweight {
        out.push_str(
            "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n",
        );
        return Action::default();
    }
    srv.admin.uweight.store(w, Ordering::Release);
    lb_set_weight(be, i, w);
    Action::default()
}

/// Applies a user weight to the balancer (0 takes the server out of the rotation).
fn lb_set_weight(be: &Backend, i: usize, w: u32) {
    be.lb.set_weight(i, w);
    sync_lb(be, i);
}

fn set_server(ctx: &Ctx, w: &[String], out: &mut String) -> Action {
    let a = |i: usize| w.get(i).map(String::as_str).unwrap_or("");
    let (be, srv) = match find_server(ctx, a(2)) {
        Ok(x) => x,
        Err(e) => {
            out.push_str(e);
            return Action::default();
        }
    };
    let i = srv.idx;
    match a(3) {
        "state" => match a(4) {
            "ready" => state_ready(be, i),
            "drain" => state_drain(be, i),
            "maint" => set_maint(be, i, true),
            _ => out.push_str("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"),
        },
        "weight" => return set_weight(be, i, a(4), out),
        "" => out.push_str("usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send | check-addr | check-port | fqdn | health | ssl | state | weight\n"),
        "addr" | "agent" | "agent-addr" | "agent-port" | "agent-send" | "check-addr"
        | "check-port" | "fqdn" | "health" | "ssl" => {
            let _ = writeln!(out, "'set server <srv> {}' is not supported by rhaproxy yet.", a(3));
        }
        _ => out.push_str("usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send | check-addr | check-port | fqdn | health | ssl | state | weight\n"),
    }
    Action::default()
}

// ------------------------------------------------------------------------------------------
// show info / show stat / show servers state

fn nofile() -> u64 {
    let mut rl = nix::libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to a local struct.
    if unsafe { nix::libc::getrlimit(nix::libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return 0;
    }
    rl.rlim_cur
}

fn show_info(ctx: &Ctx, out: &mut String) {
    let up = ctx.start.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    let start_secs = ctx
        .start
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let cur = super::ACTCONN.load(Ordering::Acquire);
    let cum: u64 = ctx
        .shared
        .frontends
        .iter()
        .map(|f| f.cum_conns.load(Ordering::Relaxed))
        .sum();
    let listeners = LISTENER_FDS.lock().map(|v| v.len()).unwrap_or(0);
    let stopping = *ctx.shared.stopping.borrow();
    let host = super::stats_page::node_name();
    let nf = nofile();
    let g: &super::counters::Global = &super::counters::GLOBAL;
    let fields: Vec<(&str, String)> = vec![
        ("Name", "HAProxy".into()),
        ("Version", version()),
        ("Release_date", "".into()),
        ("Nbthread", ctx.nbthread.to_string()),
        ("Nbproc", "1".into()),
        ("Process_num", "1".into()),
        ("Pid", std::process::id().to_string()),
        (
            "Uptime",
            format!(
                "{}d {}h{:02}m{:02}s",
                up / 86400,
                (up / 3600) % 24,
                (up / 60) % 60,
                up % 60
            ),
        ),
        ("Uptime_sec", up.to_string()),
        ("Memmax_MB", "0".into()),
        ("PoolAlloc_MB", "0".into()),
        ("PoolUsed_MB", "0".into()),
        ("PoolFailed", "0".into()),
        ("Ulimit-n", nf.to_string()),
        ("Maxsock", super::fds::maxsock().to_string()),
        ("Maxconn", ctx.maxconn.to_string()),
        ("Hard_maxconn", ctx.maxconn.to_string()),
        ("CurrConns", cur.to_string()),
        ("CumConns", cum.to_string()),
        ("CumReq", load(&g.cum_req).to_string()),
        ("MaxSslConns", "0".into()),
        ("CurrSslConns", "0".into()),
        ("CumSslConns", "0".into()),
        ("Maxpipes", "0".into()),
        ("PipesUsed", "0".into()),
        ("PipesFree", "0".into()),
        ("ConnRate", g.conn_rate.read().to_string()),
        ("ConnRateLimit", "0".into()),
        (
            "MaxConnRate",
            g.conn_rate_max.load(Ordering::Relaxed).to_string(),
        ),
        ("SessRate", g.sess_rate.read().to_string()),
        ("SessRateLimit", "0".into()),
        (
            "MaxSessRate",
            g.sess_rate_max.load(Ordering::Relaxed).to_string(),
        ),
        ("SslRate", "0".into()),
        ("SslRateLimit", "0".into()),
        ("MaxSslRate", "0".into()),
        ("SslFrontendKeyRate", "0".into()),
        ("SslFrontendMaxKeyRate", "0".into()),
        ("SslFrontendSessionReuse_pct", "0".into()),
        ("SslBackendKeyRate", "0".into()),
        ("SslBackendMaxKeyRate", "0".into()),
        ("SslCacheLookups", "0".into()),
        ("SslCacheMisses", "0".into()),
        ("CompressBpsIn", "0".into()),
        ("CompressBpsOut", "0".into()),
        ("CompressBpsRateLim", "0".into()),
        ("Tasks", "0".into()),
        ("Run_queue", "0".into()),
        ("Idle_pct", "100".into()),
        ("node", host),
        ("Stopping", (stopping as u8).to_string()),
        ("Jobs", (cur + listeners).to_string()),
        ("Unstoppable Jobs", "0".into()),
        ("Listeners", listeners.to_string()),
        ("ActivePeers", "0".into()),
        ("ConnectedPeers", "0".into()),
        ("DroppedLogs", super::logging::dropped().to_string()),
        ("BusyPolling", "0".into()),
        ("FailedResolutions", "0".into()),
        ("TotalBytesOut", load(&g.bytes_out).to_string()),
        ("TotalSplicdedBytesOut", "0".into()),
        ("BytesOutRate", "0".into()),
        ("DebugCommandsIssued", "0".into()),
        ("CumRecvLogs", "0".into()),
        ("Build info", version()),
        ("Memmax_bytes", "0".into()),
        ("PoolAlloc_bytes", "0".into()),
        ("PoolUsed_bytes", "0".into()),
        ("Start_time_sec", start_secs.to_string()),
        ("Tainted", "0".into()),
    ];
    for (k, v) in fields {
        let _ = writeln!(out, "{k}: {v}");
    }
}

pub const STAT_COLUMNS: &[&str] = &[
    "pxname",
    "svname",
    "qcur",
    "qmax",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "qlimit",
    "pid",
    "iid",
    "sid",
    "throttle",
    "lbtot",
    "tracked",
    "type",
    "rate",
    "rate_lim",
    "rate_max",
    "check_status",
    "check_code",
    "check_duration",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "hanafail",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "cli_abrt",
    "srv_abrt",
    "comp_in",
    "comp_out",
    "comp_byp",
    "comp_rsp",
    "lastsess",
    "last_chk",
    "last_agt",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "agent_status",
    "agent_code",
    "agent_duration",
    "check_desc",
    "agent_desc",
    "check_rise",
    "check_fall",
    "check_health",
    "agent_rise",
    "agent_fall",
    "agent_health",
    "addr",
    "cookie",
    "mode",
    "algo",
    "conn_rate",
    "conn_rate_max",
    "conn_tot",
    "intercepted",
    "dcon",
    "dses",
    "wrew",
    "connect",
    "reuse",
    "cache_lookups",
    "cache_hits",
    "srv_icur",
    "src_ilim",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "eint",
    "idle_conn_cur",
    "safe_conn_cur",
    "used_conn_cur",
    "need_conn_est",
    "uweight",
    "agg_server_status",
    "agg_server_check_status",
    "agg_check_status",
    "-",
    "ssl_sess",
    "ssl_reused_sess",
    "ssl_failed_handshake",
    "h2_headers_rcvd",
    "h2_data_rcvd",
    "h2_settings_rcvd",
    "h2_rst_stream_rcvd",
    "h2_goaway_rcvd",
    "h2_detected_conn_protocol_errors",
    "h2_detected_strm_protocol_errors",
    "h2_rst_stream_resp",
    "h2_goaway_resp",
    "h2_open_connections",
    "h2_backend_open_streams",
    "h2_total_connections",
    "h2_backend_total_streams",
    "h1_open_connections",
    "h1_open_streams",
    "h1_total_connections",
    "h1_total_streams",
    "h1_bytes_in",
    "h1_bytes_out",
    "h1_spliced_bytes_in",
    "h1_spliced_bytes_out",
];
/// Columns that read `0` (not empty) in a FE row when nothing happened.
const FE_ZERO: &[usize] = &[
    4, 5, 7, 8, 9, 10, 11, 12, 28, 32, 33, 34, 35, 46, 47, 48, 51, 52, 53, 54, 77, 78, 79, 81, 82,
    83, 94, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120,
    121, 122, 123, 124, 125, 126, 127,
];
/// Columns that read `0` (not empty) in a SRV row when nothing happened.
const SRV_ZERO: &[usize] = &[
    2, 3, 4, 5, 7, 8, 9, 11, 13, 14, 15, 16, 20, 30, 33, 35, 49, 50, 58, 59, 60, 61, 83, 84, 85,
    88, 90, 91, 92, 93, 94, 95, 96, 97, 98, 104, 105, 106,
];
/// Columns that read `0` (not empty) in a BE row when nothing happened.
const BE_ZERO: &[usize] = &[
    2, 3, 4, 5, 7, 8, 9, 10, 11, 13, 14, 15, 16, 20, 22, 24, 28, 30, 33, 35, 49, 50, 51, 52, 53,
    54, 58, 59, 60, 61, 83, 84, 85, 90, 91, 92, 93, 94, 100, 101, 102, 104, 105, 106, 107, 108,
    109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127,
];

fn col(name: &str) -> usize {
    STAT_COLUMNS
        .iter()
        .position(|c| *c == name)
        .expect("known column")
}

struct Row(Vec<String>);

impl Row {
    fn new(zero: &[usize]) -> Row {
        let mut v = vec![String::new(); STAT_COLUMNS.len()];
        for &i in zero {
            v[i] = "0".into();
        }
        Row(v)
    }
    fn set(&mut self, name: &str, v: impl ToString) {
        let i = col(name);
        self.0[i] = v.to_string();
    }
    fn clear(&mut self, name: &str) {
        let i = col(name);
        self.0[i].clear();
    }
    fn write(&self, out: &mut String) {
        for f in &self.0 {
            // CSV: HAProxy never quotes; commas in free text are not expected here.
            out.push_str(&f.replace(',', " "));
            out.push(',');
        }
        out.push('\n');
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Tcp => "tcp",
        Mode::Http => "http",
    }
}

fn addr_text(srv: &Server) -> String {
    match &srv.target {
        ServerTarget::Addr(sa) => super::listen::addr_port(sa),
        ServerTarget::AddrPortFromClient(ip, off) => {
            if *off == 0 {
                format!("{ip}:0")
            } else {
                format!("{ip}:{off:+}")
            }
        }
        ServerTarget::Intercept { port } => format!("0.0.0.0:{}", port.unwrap_or(0)),
    }
}

fn srv_status(srv: &Server) -> String {
    let a = &srv.admin;
    let flags = a.flags.load(Ordering::Acquire);
    let up = srv.up.load(Ordering::Acquire);
    if flags & ADM_MAINT != 0 {
        return "MAINT".into();
    }
    let drain = flags & ADM_FDRAIN != 0;
    match a.check {
        None => {
            if drain {
                "DRAIN".into()
            } else {
                "no check".into()
            }
        }
        Some((rise, fall)) => {
            let h = a.chk().health;
            if up {
                if drain {
                    "DRAIN".into()
                } else if a.stopping.load(Ordering::Acquire) {
                    "NOLB".into()
                } else if h < rise + fall - 1 && h >= rise {
                    format!("UP {}/{}", h - rise + 1, fall)
                } else {
                    "UP".into()
                }
            } else if h > 0 && h < rise {
                format!("DOWN {h}/{rise}")
            } else {
                "DOWN".into()
            }
        }
    }
}

fn fe_index(ctx: &Ctx, fe: &Arc<Frontend>) -> Option<usize> {
    ctx.shared.frontends.iter().position(|f| Arc::ptr_eq(f, fe))
}

/// `disable`/`enable`/`shutdown frontend NAME`.
/// Returns `true` when the listening sockets must follow the new state.
fn frontend_cmd(ctx: &Ctx, verb: &str, name: &str, out: &mut String) -> bool {
    if name.is_empty() {
        out.push_str("A frontend name is expected.\n");
        return false;
    }
    let Some(fi) = ctx
        .proxies
        .iter()
        .filter_map(|p| p.fe.as_ref())
        .find(|(f, _)| f.name == name)
        .and_then(|(f, _)| fe_index(ctx, f))
    else {
        out.push_str("No such frontend.\n");
        return false;
    };
    let Some(st) = fe_state(fi) else {
        return false;
    };
    let cur = *st.borrow();
    match verb {
        "disable" => match cur {
            FE_STOPPED => out.push_str("Frontend was previously shut down, cannot disable.\n"),
            FE_PAUSED => out.push_str("All sockets are already disabled.\n"),
            _ => {
                st.send_replace(FE_PAUSED);
                return true;
            }
        },
        "enable" => match cur {
            FE_STOPPED => out.push_str("Frontend was previously shut down, cannot enable.\n"),
            FE_OPEN => out.push_str("All sockets are already enabled.\n"),
            _ => {
                st.send_replace(FE_OPEN);
                return true;
            }
        },
        _ => {
            if cur != FE_STOPPED {
                // The sockets stop listening (see `apply_listen_state`) and are no longer
                // handed to a new process.
                st.send_replace(FE_STOPPED);
                warn_event(
                    name,
                    LEVEL_WARNING,
                    format!(
                        "Proxy {name} stopped (cumulated conns: FE: {}, BE: 0).",
                        ctx.shared.frontends[fi].cum_conns.load(Ordering::Relaxed)
                    ),
                );
                return true;
            }
        }
    }
    false
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// The traffic columns of a frontend row.
fn fill_fe(r: &mut Row, c: &super::counters::FeCounters, mode: Mode) {
    r.set("bin", load(&c.bytes_in));
    r.set("bout", load(&c.bytes_out));
    r.set("dreq", load(&c.denied_req));
    r.set("dresp", load(&c.denied_resp));
    r.set("ereq", load(&c.failed_req));
    r.set("rate", c.sess_rate.read());
    r.set("rate_max", c.sess_rate_max.load(Ordering::Relaxed));
    r.set("conn_rate", c.conn_rate.read());
    r.set("conn_rate_max", c.conn_rate_max.load(Ordering::Relaxed));
    if mode == Mode::Http {
        r.set("intercepted", load(&c.intercepted));
        for (i, name) in HRSP.iter().enumerate() {
            r.set(name, load(&c.hrsp[i]));
        }
        r.set("cache_lookups", 0);
        r.set("cache_hits", 0);
        r.set("req_rate", c.req_rate.read());
        r.set("req_rate_max", c.req_rate_max.load(Ordering::Relaxed));
        r.set("req_tot", load(&c.req_tot));
    }
}

const HRSP: [&str; 6] = [
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
];

/// The traffic columns of a backend or server row.
fn fill_be(r: &mut Row, c: &super::counters::BeCounters, mode: Mode, backend: bool, samples: u64) {
    r.set("bin", load(&c.bytes_in));
    r.set("bout", load(&c.bytes_out));
    r.set("econ", load(&c.failed_conns));
    r.set("eresp", load(&c.failed_resp));
    r.set("wretr", load(&c.retries));
    r.set("wredis", load(&c.redispatches));
    r.set("rate", c.sess_rate.read());
    r.set("rate_max", c.sess_rate_max.load(Ordering::Relaxed));
    r.set("cli_abrt", load(&c.cli_aborts));
    r.set("srv_abrt", load(&c.srv_aborts));
    r.set("qtime", c.q_time.avg(samples));
    r.set("ctime", c.c_time.avg(samples));
    r.set("rtime", c.d_time.avg(samples));
    r.set("ttime", c.t_time.avg(samples));
    r.set("qtime_max", c.q_time.max());
    r.set("ctime_max", c.c_time.max());
    r.set("rtime_max", c.d_time.max());
    r.set("ttime_max", c.t_time.max());
    r.set("connect", load(&c.connect));
    r.set("reuse", load(&c.reuse));
    if mode == Mode::Http {
        for (i, name) in HRSP.iter().enumerate() {
            r.set(name, load(&c.hrsp[i]));
        }
        r.set("req_tot", load(&c.req_tot));
        if backend {
            r.set("cache_lookups", 0);
            r.set("cache_hits", 0);
        }
    }
}

fn show_stat(ctx: &Ctx, level: CliLevel, opts: &[String], out: &mut String) {
    show_stat_filtered(ctx, level, opts, None, out)
}

fn show_stat_filtered(
    ctx: &Ctx,
    level: CliLevel,
    opts: &[String],
    keep: Option<&dyn Fn(&str) -> bool>,
    out: &mut String,
) {
    let only_up = opts.iter().any(|o| o == "up");
    let no_maint = opts.iter().any(|o| o == "no-maint");
    // `show stat <iid|name> <type mask> <sid>`: 1 frontends, 2 backends, 4 servers.
    let num = |i: usize| opts.get(i).and_then(|s| s.parse::<i64>().ok());
    let filter = match (opts.first(), num(1), num(2)) {
        (Some(px), Some(ty), Some(sid)) => {
            let iid = px.parse::<i64>().ok().or_else(|| {
                ctx.proxies
                    .iter()
                    .find(|p| &p.name == px)
                    .map(|p| p.iid as i64)
            });
            iid.map(|iid| (iid, ty, sid))
        }
        _ => None,
    };
    let want_px = |iid: u32| filter.is_none_or(|(f, _, _)| f == -1 || f == iid as i64);
    let want_ty = |bit: i64| filter.is_none_or(|(_, t, _)| t == -1 || t & bit != 0);
    let want_sid = |sid: u32| filter.is_none_or(|(_, _, s)| s == -1 || s == sid as i64);
    let now = now_secs();
    let start = ctx
        .start
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(now);
    out.push_str("# ");
    for c in STAT_COLUMNS {
        out.push_str(c);
        out.push(',');
    }
    out.push('\n');
    let stopping = *ctx.shared.stopping.borrow();
    for (pi, p) in ctx.proxies.iter().enumerate() {
        if !want_px(p.iid) || keep.is_some_and(|k| !k(&p.name)) {
            continue;
        }
        if let Some((fe, slim)) = p.fe.as_ref().filter(|_| want_ty(1)) {
            let mut r = Row::new(FE_ZERO);
            let scur = fe.feconn();
            let smax = ctx.fe_smax[pi]
                .fetch_max(scur, Ordering::Relaxed)
                .max(scur)
                .max(fe.ctr.smax.load(Ordering::Relaxed));
            let cum = fe.cum_conns.load(Ordering::Relaxed);
            r.set("pxname", &p.name);
            r.set("svname", "FRONTEND");
            r.set("scur", scur);
            r.set("smax", smax);
            r.set("slim", slim);
            r.set(
                "stot",
                cum.saturating_sub(fe.ctr.denied_conn.load(Ordering::Relaxed)),
            );
            r.set("dcon", fe.ctr.denied_conn.load(Ordering::Relaxed));
            r.set(
                "status",
                if stopping
                    || fe_index(ctx, fe)
                        .and_then(fe_state)
                        .is_some_and(|s| *s.borrow() == FE_STOPPED)
                {
                    "STOP"
                } else if *paused_tx().borrow()
                    || fe_index(ctx, fe)
                        .and_then(fe_state)
                        .is_some_and(|s| *s.borrow() == FE_PAUSED)
                {
                    "PAUSED"
                } else {
                    "OPEN"
                },
            );
            r.set("pid", 1);
            r.set("iid", p.iid);
            r.set("mode", mode_name(p.mode));
            r.set("conn_tot", cum);
            fill_fe(&mut r, &fe.ctr, p.mode);
            r.set("-", "-");
            r.write(out);
        }
        let Some(be) = &p.be else {
            continue;
        };
        let mut act = 0u32;
        let mut bck = 0u32;
        let mut wact = 0u32;
        let mut wbck = 0u32;
        let mut scur_be = 0u32;
        let mut qcur_be = 0usize;
        let mut lbtot = 0u64;
        for srv in &be.servers {
            let a = &srv.admin;
            let uw = a.uweight.load(Ordering::Acquire);
            if usable(srv) {
                if srv.backup {
                    bck += 1;
                    wbck += uw;
                } else {
                    act += 1;
                    wact += uw;
                }
            }
            let flags = a.flags.load(Ordering::Acquire);
            let served = be.lb.served(srv.idx);
            let queued = srv.queued.load(Ordering::Relaxed);
            let cum = srv.cum_conns.load(Ordering::Relaxed);
            scur_be += served;
            qcur_be += queued;
            lbtot += cum;
            if no_maint && flags & ADM_MAINT != 0 {
                continue;
            }
            if only_up && !srv.up.load(Ordering::Acquire) {
                continue;
            }
            let sid = be.proxy.servers.get(srv.idx).map(|s| s.puid).unwrap_or(0);
            if !want_ty(4) || !want_sid(sid) {
                continue;
            }
            let mut r = Row::new(SRV_ZERO);
            r.set("pxname", &p.name);
            r.set("svname", &srv.name);
            r.set("qcur", queued);
            r.set("scur", served);
            r.set("smax", a.smax.load(Ordering::Relaxed).max(served));
            if let Some(m) = srv.maxconn {
                r.set("slim", m);
            }
            r.set("stot", a.ctr.stot.load(Ordering::Relaxed));
            fill_be(
                &mut r,
                &a.ctr,
                p.mode,
                false,
                a.ctr.samples.load(Ordering::Relaxed),
            );
            r.set("status", srv_status(srv));
            r.set("weight", uw);
            r.set("uweight", uw);
            r.set("act", (!srv.backup) as u8);
            r.set("bck", srv.backup as u8);
            r.set(
                "lastchg",
                now.saturating_sub(a.last_change.load(Ordering::Relaxed)),
            );
            r.set("pid", 1);
            r.set("iid", p.iid);
            r.set(
                "sid",
                be.proxy.servers.get(srv.idx).map(|s| s.puid).unwrap_or(0),
            );
            r.set("lbtot", cum);
            r.set("type", 2);
            let ps = srv.pool.stats();
            r.set("srv_icur", ps.idle + ps.safe);
            if let Some(m) = srv.pool.cfg.max_conn {
                r.set("src_ilim", m);
            }
            r.set("idle_conn_cur", ps.idle);
            r.set("safe_conn_cur", ps.safe);
            r.set("used_conn_cur", ps.used);
            r.set("need_conn_est", ps.need_est);
            r.set("lastsess", a.ctr.lastsess(now));
            r.set("-", "-");
            r.set("mode", mode_name(p.mode));
            if level >= CliLevel::Operator {
                r.set("addr", addr_text(srv));
                if let Some(c) = be
                    .proxy
                    .servers
                    .get(srv.idx)
                    .and_then(|s| s.params.cookie.as_ref())
                {
                    r.set("cookie", c);
                }
            }
            if let Some((rise, fall)) = a.check {
                let since = a.down_since.load(Ordering::Acquire);
                let down = a.downtime.load(Ordering::Relaxed)
                    + if since > 0 {
                        now.saturating_sub(since)
                    } else {
                        0
                    };
                r.set("chkfail", a.chkfail.load(Ordering::Relaxed));
                r.set("chkdown", a.chkdown.load(Ordering::Relaxed));
                r.set("downtime", down);
                if flags & ADM_MAINT == 0 {
                    let c = a.chk().clone();
                    if c.status != 0 {
                        r.set("check_status", hchk_name(c.status));
                        if let Some(code) = c.code {
                            r.set("check_code", code);
                        }
                        r.set("check_duration", c.duration_ms);
                        r.set("last_chk", &c.info);
                        r.set("check_desc", hchk_desc(c.status));
                    }
                    r.set("check_rise", rise);
                    r.set("check_fall", fall);
                    r.set("check_health", c.health);
                }
            }
            r.write(out);
        }
        if !want_ty(2) {
            continue;
        }
        let mut r = Row::new(BE_ZERO);
        let (weight, up) = if act > 0 {
            (wact, true)
        } else {
            (wbck, bck > 0)
        };
        let cum = be.cum_conns.load(Ordering::Relaxed);
        r.set("pxname", &p.name);
        r.set("svname", "BACKEND");
        let scur_be = (be.active.load(Ordering::Relaxed) as u32).max(scur_be);
        r.set("qcur", qcur_be);
        r.set("scur", scur_be);
        r.set("smax", scur_be.max(be.ctr.smax.load(Ordering::Relaxed)));
        r.set("slim", p.fullconn);
        r.set("stot", be.ctr.stot.load(Ordering::Relaxed));
        let _ = cum;
        fill_be(
            &mut r,
            &be.ctr,
            p.mode,
            true,
            be.ctr.samples.load(Ordering::Relaxed),
        );
        // A backend without servers reads UP, without downtime (HAProxy 2.6).
        r.set(
            "status",
            if up || be.servers.is_empty() {
                "UP"
            } else {
                "DOWN"
            },
        );
        if be.servers.is_empty() {
            r.clear("downtime");
        }
        r.set("weight", weight);
        r.set("uweight", weight);
        r.set("act", act);
        r.set("bck", bck);
        r.set("lastchg", now.saturating_sub(start));
        r.set("pid", 1);
        r.set("iid", p.iid);
        r.set("lbtot", lbtot);
        r.set("type", 1);
        r.set("lastsess", be.ctr.lastsess(now));
        r.set("-", "-");
        r.set("mode", mode_name(p.mode));
        if level >= CliLevel::Operator {
            r.set("algo", &p.algo);
            if let Some(c) = &be.proxy.cookie {
                r.set("cookie", &c.value.name);
            }
        } else {
            r.clear("algo");
        }
        r.write(out);
    }
}

/// `show servers conn`: the idle connection pools (`runtime::srvpool`), one line per server,
/// with the idle connections of each thread.
fn show_servers_conn(ctx: &Ctx, filter: Option<&String>, out: &mut String) {
    if let Some(f) = filter
        && !ctx.proxies.iter().any(|p| p.be.is_some() && &p.name == f)
    {
        out.push_str("Can't find backend.\n");
        return;
    }
    let nt = ctx.nbthread.max(1);
    let _ = writeln!(
        out,
        "# bkname/svname bkid/svid addr port - purge_delay used_cur used_max need_est unsafe_nb safe_nb idle_lim idle_cur idle_per_thr[{nt}]"
    );
    for p in &ctx.proxies {
        let Some(be) = &p.be else {
            continue;
        };
        if filter.is_some_and(|f| f != &p.name) {
            continue;
        }
        for srv in &be.servers {
            let sid = be.proxy.servers.get(srv.idx).map(|s| s.puid).unwrap_or(0);
            let (ip, port) = match &srv.target {
                ServerTarget::Addr(sa) => (sa.ip().to_string(), sa.port() as i64),
                ServerTarget::AddrPortFromClient(ip, off) => (ip.to_string(), *off as i64),
                ServerTarget::Intercept { port } => ("0.0.0.0".into(), port.unwrap_or(0) as i64),
            };
            let pool = &srv.pool;
            let st = pool.stats();
            let lim = pool.cfg.max_conn.map_or(-1, |m| m as i64);
            let mut per = vec![0usize; nt];
            for (i, n) in pool.per_shard().into_iter().enumerate() {
                per[i % nt] += n;
            }
            let per: Vec<String> = per.iter().map(|n| n.to_string()).collect();
            let _ = writeln!(
                out,
                "{}/{} {}/{sid} {ip} {port} - {} {} {} {} {} {} {lim} {} {}",
                p.name,
                srv.name,
                p.iid,
                pool.cfg.purge_delay.as_millis(),
                st.used,
                st.max_used,
                st.need_est,
                st.idle,
                st.safe,
                st.idle + st.safe,
                per.join(" ")
            );
        }
    }
}

fn show_servers_state(ctx: &Ctx, filter: Option<&String>, out: &mut String) {
    if let Some(f) = filter {
        if !ctx.proxies.iter().any(|p| p.be.is_some() && &p.name == f) {
            out.push_str("Can't find backend.\n");
            return;
        }
    }
    out.push_str("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n");
    let now = now_secs();
    for p in &ctx.proxies {
        let Some(be) = &p.be else {
            continue;
        };
        if filter.is_some_and(|f| f != &p.name) {
            continue;
        }
        for srv in &be.servers {
            let a = &srv.admin;
            let cfg = be.proxy.servers.get(srv.idx);
            let flags = a.flags.load(Ordering::Acquire);
            let maint = flags & ADM_MAINT != 0;
            let up = srv.up.load(Ordering::Acquire) && !maint;
            let c = a.chk().clone();
            let (ip, port) = match &srv.target {
                ServerTarget::Addr(sa) => (sa.ip().to_string(), sa.port()),
                ServerTarget::AddrPortFromClient(ip, off) => (ip.to_string(), *off as u16),
                ServerTarget::Intercept { port } => ("0.0.0.0".into(), port.unwrap_or(0)),
            };
            let (status, result, health, state) = match a.check {
                None => (
                    HCHK_INI,
                    0,
                    if up { c.health } else { 0 },
                    if flags & ADM_CMAINT != 0 { 8 } else { 0 },
                ),
                Some(_) => (
                    if c.status == 0 { HCHK_INI } else { c.status },
                    match c.passed {
                        _ if c.status == HCHK_L7OKC => 4,
                        Some(true) => 3,
                        Some(false) => 2,
                        None => 0,
                    },
                    if maint { 0 } else { c.health },
                    if maint { 14 } else { 6 },
                ),
            };
            let _ = writeln!(
                out,
                "{} {} {} {} {} {} {} {} {} {} {} {} {} {} 0 {} {} - {} - 0 {} - - 0",
                p.iid,
                p.name,
                cfg.map(|s| s.puid).unwrap_or(0),
                srv.name,
                ip,
                match (up, a.stopping.load(Ordering::Acquire)) {
                    (true, true) => 3,
                    (true, false) => 2,
                    _ => 0,
                },
                flags,
                a.uweight.load(Ordering::Acquire),
                a.iweight,
                now.saturating_sub(a.last_change.load(Ordering::Relaxed)),
                status,
                result,
                health,
                state,
                p.forced_id as u8,
                cfg.is_some_and(|s| s.id.is_some()) as u8,
                port,
                cfg.and_then(|s| s.params.check_port).unwrap_or(0),
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// Sessions (`show sess`).

/// One session in progress. Compact and free of allocations: names are found from the
/// frontend index and the backend's address when `show sess` asks, and the session's task is
/// reached through its waker (registered while it waits for a request).
struct SessSlot {
    /// Shown by `show sess`; 0 for a free slot.
    id: u64,
    src: std::net::SocketAddr,
    /// The backend in use (its address, 0: none) and the server's index in it.
    be: usize,
    /// Woken by soft stop while the session waits idle.
    waker: Option<std::task::Waker>,
    fe: u32,
    srv: u32,
    /// Seconds since [`sess_epoch`] at the session's start.
    start: u32,
    /// Next free slot (for a free slot).
    next_free: u32,
}

const SESS_SHARDS: usize = 32;
const NONE: u32 = u32::MAX;

/// A shard of the session registry: a slab whose freed slots are reused (last freed first),
/// so that it grows to the peak number of sessions only and touches no new memory after. In
/// chunks of [`SESS_CHUNK`] slots that never move: growing copies nothing and leaves no freed
/// block behind.
struct SessShard {
    chunks: Vec<Vec<SessSlot>>,
    free: u32,
}

const SESS_CHUNK: usize = 32;

impl SessShard {
    fn get_mut(&mut self, idx: usize) -> Option<&mut SessSlot> {
        self.chunks
            .get_mut(idx / SESS_CHUNK)
            .and_then(|c| c.get_mut(idx % SESS_CHUNK))
    }

    fn slots(&self) -> impl Iterator<Item = &SessSlot> {
        self.chunks.iter().flatten()
    }

    fn slots_mut(&mut self) -> impl Iterator<Item = &mut SessSlot> {
        self.chunks.iter_mut().flatten()
    }

    fn push(&mut self, slot: SessSlot) -> u32 {
        if self.chunks.last().is_none_or(|c| c.len() == SESS_CHUNK) {
            self.chunks.push(Vec::with_capacity(SESS_CHUNK));
        }
        let n = self.chunks.len();
        let last = &mut self.chunks[n - 1];
        last.push(slot);
        ((n - 1) * SESS_CHUNK + last.len() - 1) as u32
    }
}

/// Sessions in progress, sharded so accepting never contends on one lock.
static SESSIONS: [Mutex<SessShard>; SESS_SHARDS] = [const {
    Mutex::new(SessShard {
        chunks: Vec::new(),
        free: NONE,
    })
}; SESS_SHARDS];

static SESS_IDS: AtomicU64 = AtomicU64::new(1);

fn sess_epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

fn sess_now() -> u32 {
    sess_epoch().elapsed().as_secs() as u32
}

fn shard(i: usize) -> std::sync::MutexGuard<'static, SessShard> {
    SESSIONS[i].lock().unwrap_or_else(|e| e.into_inner())
}

/// Registered for the life of a session task (see [`session_opened`]): its shard and slot.
pub struct SessEntry {
    shard: u32,
    idx: u32,
}

impl SessEntry {
    fn packed(&self) -> u64 {
        (self.shard as u64) << 32 | self.idx as u64
    }
}

impl Drop for SessEntry {
    fn drop(&mut self) {
        let mut sh = shard(self.shard as usize);
        let free = sh.free;
        if let Some(s) = sh.get_mut(self.idx as usize) {
            s.id = 0;
            s.waker = None;
            s.next_free = free;
            sh.free = self.idx;
        }
    }
}

/// Registers a new session of frontend number `fe` (as in `Shared::frontends`).
pub fn session_opened(
    fe: usize,
    be: Option<&Arc<Backend>>,
    src: std::net::SocketAddr,
) -> SessEntry {
    let id = SESS_IDS.fetch_add(1, Ordering::Relaxed);
    let i = (id as usize) % SESS_SHARDS;
    let slot = SessSlot {
        id,
        src,
        be: be.map_or(0, |b| Arc::as_ptr(b) as usize),
        waker: None,
        fe: fe as u32,
        srv: NONE,
        start: sess_now(),
        next_free: NONE,
    };
    let mut sh = shard(i);
    let free = sh.free;
    let idx = match sh.get_mut(free as usize) {
        Some(s) => {
            let next = s.next_free;
            *s = slot;
            sh.free = next;
            free
        }
        None => sh.push(slot),
    };
    SessEntry {
        shard: i as u32,
        idx,
    }
}

thread_local! {
    /// The entry of the session task being polled on this thread ([`SessEntry::enter`]).
    static CURRENT: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

impl SessEntry {
    /// Runs `f` (a poll of the session) as this session: [`session_server`] and
    /// [`idle_poll`] find the entry through it.
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        /// Restores the previous entry, also when the poll panics (tokio goes on running
        /// other tasks on the thread).
        struct Restore(u64);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(self.packed())));
        f()
    }
}

fn current() -> Option<(usize, usize)> {
    let k = CURRENT.with(|c| c.get());
    (k != u64::MAX).then_some(((k >> 32) as usize, (k & 0xffff_ffff) as usize))
}

/// Polled by a session waiting for its next request: ready once a soft stop began, else its
/// task is woken when one begins (the waker stays registered until the session's next wait).
pub fn idle_poll(cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
    use std::task::Poll;
    if let Some((i, idx)) = current()
        && let Some(s) = shard(i).get_mut(idx)
    {
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
    }
    // After the registration: a soft stop that began before it is seen here, one that
    // begins after it finds the waker ([`wake_idle_sessions`]).
    if super::is_stopping() {
        return Poll::Ready(());
    }
    Poll::Pending
}

/// Soft stop: wakes every session waiting idle (they see [`super::is_stopping`]).
pub fn wake_idle_sessions() {
    for i in 0..SESS_SHARDS {
        let wakers: Vec<_> = shard(i)
            .slots_mut()
            .filter_map(|s| s.waker.take())
            .collect();
        for w in wakers {
            w.wake();
        }
    }
}

/// Ends every session of server `srv` of backend `be` (`shutdown sessions server`, and
/// `on-marked-down shutdown-sessions` when a check takes the server down): the sessions
/// using it watch the server (TCP sessions, HTTP transactions, which log the `K`
/// termination). As HAProxy, a client connection idle between two requests is left alone: it
/// has no stream on the server.
pub fn shutdown_server_sessions(_be: &str, srv: &Server) {
    srv.admin.kill.send_modify(|v| *v += 1);
}

/// The current session task is now connected to `srv` of `be`.
pub fn session_server(be: &Backend, srv: &Server) {
    let Some((i, idx)) = current() else {
        return;
    };
    if let Some(s) = shard(i).get_mut(idx) {
        s.be = be as *const Backend as usize;
        s.srv = srv.idx as u32;
    }
}

fn show_sess(shared: &Shared, out: &mut String) {
    let now = sess_now();
    for i in 0..SESS_SHARDS {
        let sh = shard(i);
        for s in sh.slots().filter(|s| s.id != 0) {
            let proto = if s.src.is_ipv4() { "tcpv4" } else { "tcpv6" };
            let be = shared
                .backends
                .iter()
                .find(|b| Arc::as_ptr(b) as usize == s.be);
            let srv = be.and_then(|b| b.servers.get(s.srv as usize));
            let _ = writeln!(
                out,
                "0x{:x}: proto={proto} src={} fe={} be={} srv={} age={}s",
                s.id,
                super::listen::addr_port(&s.src),
                shared
                    .frontends
                    .get(s.fe as usize)
                    .map_or("<NONE>", |f| f.name.as_str()),
                be.map_or("<NONE>", |b| b.name.as_str()),
                srv.map_or("<none>", |s| s.name.as_str()),
                now.saturating_sub(s.start)
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// Listening sockets handed to a new process (`-x`).

/// `_getsocks`: sends every listening socket, one per message (SCM_RIGHTS), after a 4-byte
/// count.
async fn send_listeners(fd: RawFd) -> std::io::Result<()> {
    let fds: Vec<RawFd> = LISTENER_FDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(_, fd, _)| *fd)
        .collect();
    tokio::task::spawn_blocking(move || xfer::send_fds(fd, &fds))
        .await
        .map_err(std::io::Error::other)?
}

/// The blocking halves of the fd transfer.
pub mod xfer {
    use std::io::{IoSlice, IoSliceMut};
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};

    use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

    fn set_blocking(fd: RawFd) {
        // SAFETY: fcntl on a descriptor the caller owns for the duration of the call.
        unsafe {
            let fl = nix::libc::fcntl(fd, nix::libc::F_GETFL);
            if fl >= 0 {
                nix::libc::fcntl(fd, nix::libc::F_SETFL, fl & !nix::libc::O_NONBLOCK);
            }
        }
    }

    pub fn send_fds(sock: RawFd, fds: &[RawFd]) -> std::io::Result<()> {
        set_blocking(sock);
        let n = (fds.len() as u32).to_le_bytes();
        sendmsg::<()>(sock, &[IoSlice::new(&n)], &[], MsgFlags::empty(), None)?;
        for fd in fds {
            let one = [*fd];
            let cmsg = [ControlMessage::ScmRights(&one)];
            sendmsg::<()>(sock, &[IoSlice::new(b"L")], &cmsg, MsgFlags::empty(), None)?;
        }
        Ok(())
    }

    /// Connects to `path`, asks for the listening sockets and returns them.
    pub fn fetch(path: &str) -> std::io::Result<Vec<OwnedFd>> {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let mut s = std::os::unix::net::UnixStream::connect(path)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        s.write_all(b"_getsocks\n")?;
        let mut n = [0u8; 4];
        s.read_exact(&mut n)?;
        let count = u32::from_le_bytes(n) as usize;
        if count > 65536 {
            return Err(std::io::Error::other("bad socket count"));
        }
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let mut b = [0u8; 1];
            let mut iov = [IoSliceMut::new(&mut b)];
            let mut space = nix::cmsg_space!([RawFd; 1]);
            let msg = recvmsg::<()>(
                s.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )?;
            if msg.bytes == 0 {
                return Err(std::io::Error::other("connection closed"));
            }
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for fd in fds {
                        // SAFETY: the kernel just installed this descriptor for us.
                        out.push(unsafe { OwnedFd::from_raw_fd(fd) });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Listening sockets received from the old process, by local address.
static INHERITED: Mutex<Vec<(std::net::SocketAddr, std::net::TcpListener)>> =
    Mutex::new(Vec::new());

/// `-x PATH`: fetches the old process's listening sockets. Errors are alert texts.
pub fn fetch_inherited(path: &str) -> Result<usize, String> {
    let fds = xfer::fetch(path).map_err(|e| {
        format!("Failed to get the sockets from the old process ({path}: {e}); binding new ones.")
    })?;
    let mut inh = INHERITED.lock().unwrap_or_else(|e| e.into_inner());
    for fd in fds {
        let l = std::net::TcpListener::from(fd);
        if let Ok(a) = l.local_addr() {
            inh.push((a, l));
        }
    }
    Ok(inh.len())
}

/// A listening socket for `addr` handed over by the old process, if any.
pub fn take_inherited(addr: &std::net::SocketAddr) -> Option<std::net::TcpListener> {
    let mut inh = INHERITED.lock().unwrap_or_else(|e| e.into_inner());
    let pos = inh.iter().position(|(a, _)| a == addr)?;
    let (_, l) = inh.swap_remove(pos);
    let _ = l.set_nonblocking(true);
    Some(l)
}

/// Drops the handed-over sockets nobody claimed (removed `bind` lines).
pub fn drop_unclaimed() {
    INHERITED.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Whether listeners are currently paused (for tests and `show stat`).
pub fn is_paused() -> bool {
    *paused_tx().borrow()
}

#[cfg(test)]
mod killed_tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::watch;

    #[tokio::test(start_paused = true)]
    async fn killed_resolves_on_a_kill_only() {
        let (tx, mut rx) = watch::channel(0u64);
        let k = killed(Some(&mut rx));
        tokio::pin!(k);
        assert!(
            tokio::time::timeout(Duration::from_secs(60), k.as_mut())
                .await
                .is_err()
        );
        tx.send(1).unwrap();
        tokio::time::timeout(Duration::from_secs(1), k.as_mut())
            .await
            .expect("the kill ends it");
    }

    #[tokio::test(start_paused = true)]
    async fn killed_never_resolves_without_a_watch_or_once_it_is_gone() {
        let none = killed(None);
        assert!(
            tokio::time::timeout(Duration::from_secs(60), none)
                .await
                .is_err()
        );
        let (tx, mut rx) = watch::channel(0u64);
        let k = killed(Some(&mut rx));
        tokio::pin!(k);
        drop(tx);
        // Polled again after the watch is gone: still pending, no panic.
        for _ in 0..3 {
            assert!(
                tokio::time::timeout(Duration::from_secs(60), k.as_mut())
                    .await
                    .is_err()
            );
        }
    }
}
