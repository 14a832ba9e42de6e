//! Backends at run time: servers, their state, connection slots with queueing, and the
//! connect procedure (retries, redispatch, transparent source binding).
//!
//! The request path takes no global lock: server choice goes through the lock-free
//! [`Balancer`] snapshot, slots are per-server semaphores (FIFO, so a server's queue is served in
//! order) and counters are atomics.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::clock;
use crate::config::ir::{self, Mode, Proxy, ServerTarget};
use crate::lb::{Algorithm, Balancer, ConnGuard, HashType, LbServer, RequestKey};
use crate::tproxy::addr::{ClientAddr, OrigDstAddr, ServerAddr};
use crate::tproxy::sockopt::{self, PortSpec, SourcePolicy};

/// A duration from a config timeout in milliseconds; 0 and unset mean "no timeout".
pub fn ms(v: &Option<ir::Located<u64>>) -> Option<Duration> {
    v.as_ref()
        .filter(|l| l.value > 0)
        .map(|l| Duration::from_millis(l.value))
}

/// Converts the IR `source` statement into the socket layer's policy.
pub fn source_policy(s: &ir::Source) -> SourcePolicy {
    let ports = port_spec(s.port_low, s.port_high);
    let usesrc = s.usesrc.as_ref().map(|u| match u {
        ir::UseSrc::Client => sockopt::UseSrc::Client,
        ir::UseSrc::ClientIp => sockopt::UseSrc::ClientIp,
        ir::UseSrc::Addr(ip, port) => sockopt::UseSrc::Addr {
            ip: *ip,
            ports: port_spec(*port, *port),
        },
        ir::UseSrc::HdrIp { header, occ } => sockopt::UseSrc::HdrIp {
            header: header.clone(),
            occ: *occ,
        },
    });
    SourcePolicy {
        ip: s.addr,
        ports,
        usesrc,
        interface: s.interface.clone(),
    }
}

fn port_spec(low: u16, high: u16) -> PortSpec {
    if low == 0 {
        PortSpec::Any
    } else if high <= low {
        PortSpec::Fixed(low)
    } else {
        PortSpec::Range { low, high }
    }
}

/// Health-check parameters of one server.
#[derive(Debug, Clone)]
pub struct CheckParams {
    pub inter: Duration,
    pub fastinter: Duration,
    pub downinter: Duration,
    pub rise: u32,
    pub fall: u32,
    /// Where checks connect.
    pub addr: SocketAddr,
    /// `check-send-proxy`.
    pub send_proxy: bool,
}

/// One server at run time.
pub struct Server {
    pub name: String,
    pub idx: usize,
    pub target: ServerTarget,
    pub source: Option<SourcePolicy>,
    pub maxconn: Option<u32>,
    /// `minconn` below `maxconn`: the limit is the balancer's dynamic one
    /// ([`Balancer::dynamic_maxconn`]), which the slots' count bounds.
    pub dynamic: bool,
    /// `maxqueue`: most requests waiting in this server's queue.
    pub maxqueue: Option<u32>,
    pub backup: bool,
    /// `disabled`: in maintenance from the start, never checked, never chosen.
    pub disabled: bool,
    /// Connection slots when `maxconn` is set.
    slots: Option<Arc<Semaphore>>,
    /// Requests waiting for a slot of this server.
    pub queued: AtomicUsize,
    /// Requests served from this server's queue so far (for `%sq`, as HAProxy's `queue.idx`).
    pub queue_idx: AtomicU64,
    /// Operational state (health checks).
    pub up: AtomicBool,
    pub check: Option<CheckParams>,
    /// Cumulated connections.
    pub cum_conns: AtomicU64,
    pub send_proxy: bool,
    /// Administrative state (runtime API) and stats counters.
    pub admin: super::admin::SrvAdmin,
    /// Its idle connections (`http-reuse`).
    pub pool: Arc<super::srvpool::SrvPool>,
}

impl Server {
    /// The address a connection goes to. `orig_dst` is the accepted socket's local address.
    pub fn address(&self, orig_dst: Option<OrigDstAddr>) -> Option<SocketAddr> {
        match &self.target {
            ServerTarget::Addr(sa) => Some(*sa),
            ServerTarget::AddrPortFromClient(ip, off) => {
                let port = orig_dst?.port() as i32 + off;
                Some(SocketAddr::new(*ip, port.clamp(0, 65535) as u16))
            }
            ServerTarget::Intercept { port } => {
                let od = orig_dst?;
                Some(SocketAddr::new(od.ip(), port.unwrap_or(od.port())))
            }
        }
    }
}

/// A server's `(minconn, maxconn)` as HAProxy 2.6 settles them at start-up (`None`: no
/// limit): a `minconn` above `maxconn` (or alone) becomes the `maxconn`, a `maxconn` alone is
/// also the `minconn` (a fixed limit).
pub fn conn_limits(sp: &crate::config::ir::ServerParams) -> (Option<u32>, Option<u32>) {
    let min = sp.minconn.unwrap_or(0);
    let max = sp.maxconn.unwrap_or(0);
    match (min, max) {
        (_, _) if min > max => (Some(min), Some(min)),
        (0, 0) => (None, None),
        (0, _) => (Some(max), Some(max)),
        _ => (Some(min), Some(max)),
    }
}

/// One backend (a `backend` or the backend half of a `listen`).
pub struct Backend {
    pub name: String,
    pub mode: Mode,
    pub servers: Vec<Server>,
    pub lb: Arc<Balancer>,
    pub hashing: bool,
    pub retries: u32,
    pub redispatch: bool,
    pub source: Option<SourcePolicy>,
    /// `option transparent`: with no server, connect to the original destination.
    pub transparent: bool,
    /// `option srvtcpka` / `option tcpka`: kernel keep-alive probes towards the servers.
    pub srv_tcpka: bool,
    /// `option nolinger`: in `mode tcp`, the client's FIN resets the server connection
    /// ([`super::forward::Forward::nolinger_server`]).
    pub nolinger: bool,
    /// `option abortonclose`: a client's FIN aborts its request while it waits in a queue or
    /// for the response head (`mode http`).
    pub abortonclose: bool,
    /// `option http-buffer-request` on the backend.
    pub buffer_request: bool,
    /// `option h1-case-adjust-bogus-server`: request header names as `h1-case-adjust` says.
    pub adjust_case_server: bool,
    pub connect_timeout: Option<Duration>,
    pub server_timeout: Option<Duration>,
    pub server_fin_timeout: Option<Duration>,
    pub queue_timeout: Option<Duration>,
    pub tunnel_timeout: Option<Duration>,
    pub check_timeout: Option<Duration>,
    /// What each health check runs.
    pub check_plan: Arc<super::check_rules::Plan>,
    /// Signalled whenever a server slot is released or a server comes up.
    freed: Notify,
    /// Requests waiting in the backend queue.
    waiting: AtomicUsize,
    /// Requests served from the backend queue so far (for `%bq`).
    queue_idx: AtomicU64,
    /// The backend queue's order: tickets of the waiting requests, served first in first out
    /// as HAProxy does (only the head may take a freed slot).
    fifo: std::sync::Mutex<std::collections::VecDeque<u64>>,
    tickets: AtomicU64,
    /// Requests registered for slot wake-ups (waiting, or about to).
    picking: AtomicUsize,
    pub cum_conns: AtomicU64,
    /// Sessions/transactions using this backend now (`%bc`).
    pub active: AtomicUsize,
    /// Servers currently up (active, backup), for the state messages.
    pub active_up: AtomicU32,
    pub backup_up: AtomicU32,
    pub proxy: Arc<Proxy>,
    pub http: super::http::HttpSettings,
    /// Traffic counters (`show stat`).
    pub ctr: super::counters::BeCounters,
    /// `cookie` persistence (HTTP backends).
    pub persist: Option<super::persist::Persist>,
    /// `option prefer-last-server`: a request goes to the server of the session's idle
    /// connection when it is usable.
    pub prefer_last: bool,
    /// The backend has `stick store-response` rules.
    pub stores_response: bool,
    /// `http-reuse`.
    pub reuse: super::srvpool::ReuseMode,
    /// The balancing algorithm lets a session go back to its last server (not hashing).
    pub last_ok: bool,
}

/// What the connect procedure did, for the logs.
#[derive(Debug, Clone, Default)]
pub struct ConnStats {
    /// Time waiting for a slot (`%Tw`), ms.
    pub queue_ms: i64,
    /// Time of the last connect attempt (`%Tc`), ms; -1 when none succeeded.
    pub connect_ms: i64,
    pub retries: u32,
    pub redispatched: bool,
    /// The server of the last attempt.
    pub server: Option<usize>,
    pub server_addr: Option<SocketAddr>,
    /// Local address of the server connection (`%bi:%bp`); set by the caller, only when it
    /// logs (it costs a getsockname).
    pub local_addr: Option<SocketAddr>,
    /// The last connect attempt timed out (`sC` rather than `SC`).
    pub connect_timed_out: bool,
    /// Position in the server / backend queue as HAProxy logs it (`%sq` / `%bq`): 1 + the
    /// requests served from that queue while this one waited; 0 when it did not queue.
    pub srv_queue_pos: u32,
    pub be_queue_pos: u32,
    /// The server connection was an idle one reused (HTTP keep-alive).
    pub reused: bool,
    /// Answered by the stats page or a service instead of a server: the name the logs give
    /// in place of the server (`<STATS>`, `<PROMEX>`), the frontend standing as backend.
    pub applet: Option<&'static str>,
}

/// Why no server connection could be made.
#[derive(Debug)]
pub enum ConnectError {
    /// No usable server (all down, or none).
    NoServer,
    /// Waited `timeout queue` for a slot.
    QueueTimeout,
    /// Every attempt failed (refused, unreachable, or `timeout connect`).
    ConnectFailed { server: usize, timed_out: bool },
    /// Local resource problem (source binding refused, ...): HAProxy's `R` cause.
    Resource(String),
}

/// A server slot held while a connection (TCP) or a request (HTTP) uses the server.
pub struct Slot {
    be: Arc<Backend>,
    pub srv: usize,
    permit: Option<OwnedSemaphorePermit>,
    guard: Option<ConnGuard>,
}

/// Counts a session/transaction in [`Backend::active`] while alive.
pub struct BeActive(Arc<Backend>);

impl BeActive {
    pub fn new(be: &Arc<Backend>) -> BeActive {
        let cur = be.active.fetch_add(1, Ordering::AcqRel) + 1;
        be.ctr.smax.fetch_max(cur as u32, Ordering::Relaxed);
        BeActive(Arc::clone(be))
    }
}

impl Drop for BeActive {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slot {
    pub fn server(&self) -> &Server {
        &self.be.servers[self.srv]
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.permit.take();
        self.guard.take();
        // Wake requests waiting for a slot, if any (no lock taken otherwise).
        if self.be.picking.load(Ordering::SeqCst) > 0 {
            self.be.freed.notify_waiters();
        }
    }
}

/// Counts a request looking for a slot after a first failed attempt.
/// A place in the backend queue, given up on drop (served, timed out or cancelled); the next
/// request in line is then woken.
struct Ticket<'a>(&'a Backend, u64);

impl Ticket<'_> {
    fn is_head(&self) -> bool {
        self.0
            .fifo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .front()
            == Some(&self.1)
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut q = self.0.fifo.lock().unwrap_or_else(|e| e.into_inner());
        let head = q.front() == Some(&self.1);
        q.retain(|&t| t != self.1);
        drop(q);
        if head {
            self.0.freed.notify_waiters();
        }
    }
}

struct Picking<'a>(&'a AtomicUsize);

impl<'a> Picking<'a> {
    fn new(c: &'a AtomicUsize) -> Picking<'a> {
        c.fetch_add(1, Ordering::SeqCst);
        Picking(c)
    }
}

impl Drop for Picking<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The connection context a server choice and a connect need.
#[derive(Clone, Copy, Debug)]
pub struct ConnCtx {
    pub client: ClientAddr,
    pub orig_dst: Option<OrigDstAddr>,
}

impl Backend {
    pub fn build(p: &Arc<Proxy>, warn: &mut dyn FnMut(String)) -> Backend {
        let mut algo = match &p.balance {
            Some(b) => {
                let words: Vec<&str> = b.value.iter().map(|s| s.as_str()).collect();
                crate::lb::parse_balance(&words).unwrap_or(Algorithm::RoundRobin)
            }
            None => Algorithm::RoundRobin,
        };
        if p.mode.value == Mode::Tcp && algo.is_l7() {
            algo = Algorithm::RoundRobin;
        }
        let hash_type = match &p.hash_type {
            Some(h) => {
                let words: Vec<&str> = h.value.iter().map(|s| s.as_str()).collect();
                crate::lb::parse_hash_type(&words).unwrap_or(HashType::MAP_BASED)
            }
            None => HashType::MAP_BASED,
        };
        let connect_timeout = ms(&p.timeouts.connect);
        let lbs: Vec<LbServer> = p
            .servers
            .iter()
            .map(|s| LbServer {
                puid: s.puid,
                weight: s.params.weight,
                backup: s.params.backup,
                maxconn: conn_limits(&s.params).1,
                disabled: s.params.disabled,
            })
            .collect();
        let hashing = algo.is_hash();
        // `option prefer-last-server` applies to the algorithms HAProxy does not hash
        // (`random` is one of its hashing kinds).
        // Only private (`http-reuse never`) connections stay attached to the session in HAProxy
        // 2.6, so that is when the option has an effect (measured).
        let last_ok = !hashing && !matches!(algo, crate::lb::Algorithm::Random { .. });
        let prefer_last = p.option("prefer-last-server")
            && p.http_reuse == crate::config::ir::HttpReuse::Never
            && last_ok;
        let lb = Arc::new(Balancer::new(
            lbs,
            algo,
            hash_type,
            p.option("allbackups"),
            p.hash_balance_factor.unwrap_or(0),
        ));
        for (i, s) in p.servers.iter().enumerate() {
            lb.set_minconn(i, conn_limits(&s.params).0.unwrap_or(0));
        }
        let servers: Vec<Server> = p
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let sp = &s.params;
                let limits = conn_limits(sp);
                let check = if sp.check {
                    let base = match &s.target {
                        ServerTarget::Addr(sa) => Some(*sa),
                        ServerTarget::AddrPortFromClient(ip, _) => {
                            sp.check_port.map(|port| SocketAddr::new(*ip, port))
                        }
                        ServerTarget::Intercept { .. } => None,
                    };
                    match base {
                        Some(mut a) => {
                            if let Some(ip) = sp.check_addr {
                                a.set_ip(ip);
                            }
                            if let Some(port) = sp.check_port {
                                a.set_port(port);
                            }
                            let inter = Duration::from_millis(sp.inter.max(1));
                            Some(CheckParams {
                                inter,
                                fastinter: sp.fastinter.map(Duration::from_millis).unwrap_or(inter),
                                downinter: sp.downinter.map(Duration::from_millis).unwrap_or(inter),
                                rise: sp.rise.max(1),
                                fall: sp.fall.max(1),
                                addr: a,
                                send_proxy: sp.check_send_proxy,
                            })
                        }
                        None => {
                            warn(format!(
                                "Health check for server {}/{} disabled: no address to check (set 'port' and 'addr').",
                                p.name, s.name
                            ));
                            None
                        }
                    }
                } else {
                    None
                };
                Server {
                    name: s.name.clone(),
                    idx: i,
                    target: s.target.clone(),
                    source: sp.source.as_ref().map(|l| source_policy(&l.value)),
                    maxconn: limits.1,
                    dynamic: limits.0 < limits.1,
                    maxqueue: sp.maxqueue.filter(|&m| m > 0),
                    backup: sp.backup,
                    disabled: sp.disabled,
                    slots: limits
                        .1
                        .map(|m| Arc::new(Semaphore::new(m as usize))),
                    queued: AtomicUsize::new(0),
                    queue_idx: AtomicU64::new(0),
                    up: AtomicBool::new(!sp.disabled),
                    check: check.clone(),
                    cum_conns: AtomicU64::new(0),
                    send_proxy: sp.send_proxy,
                    admin: super::admin::SrvAdmin::new(
                        sp.disabled,
                        sp.weight,
                        check.as_ref().map(|c| (c.rise, c.fall)),
                    ),
                    pool: Arc::new(super::srvpool::SrvPool::new(super::srvpool::PoolCfg {
                        max_conn: usize::try_from(sp.pool_max_conn).ok(),
                        low_conn: sp.pool_low_conn as usize,
                        purge_delay: Duration::from_millis(sp.pool_purge_delay),
                    })),
                }
            })
            .collect();
        let active_up = servers.iter().filter(|s| !s.disabled && !s.backup).count() as u32;
        let backup_up = servers.iter().filter(|s| !s.disabled && s.backup).count() as u32;
        Backend {
            name: p.name.clone(),
            mode: p.mode.value,
            servers,
            lb,
            hashing,
            retries: p.retries.as_ref().map(|r| r.value).unwrap_or(3),
            redispatch: p.redispatch.as_ref().is_some_and(|r| r.value),
            source: p.source.as_ref().map(|l| source_policy(&l.value)),
            transparent: p.transparent_option.is_some() || p.option("transparent"),
            connect_timeout,
            server_timeout: ms(&p.timeouts.server),
            server_fin_timeout: ms(&p.timeouts.server_fin),
            queue_timeout: ms(&p.timeouts.queue).or(connect_timeout),
            tunnel_timeout: ms(&p.timeouts.tunnel),
            check_timeout: ms(&p.timeouts.check),
            check_plan: Arc::new(super::check_rules::Plan::build(p)),
            freed: Notify::new(),
            waiting: AtomicUsize::new(0),
            queue_idx: AtomicU64::new(0),
            fifo: std::sync::Mutex::new(std::collections::VecDeque::new()),
            tickets: AtomicU64::new(0),
            picking: AtomicUsize::new(0),
            cum_conns: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            active_up: AtomicU32::new(active_up),
            backup_up: AtomicU32::new(backup_up),
            proxy: Arc::clone(p),
            http: super::http::HttpSettings::build(p, warn),
            ctr: Default::default(),
            persist: super::persist::Persist::build(p),
            prefer_last,
            stores_response: p
                .stick_rules
                .iter()
                .any(|r| r.kind == crate::config::ir::StickKind::StoreResponse),
            srv_tcpka: p.option("srvtcpka") || p.option("tcpka"),
            nolinger: p.option("nolinger"),
            abortonclose: p.option("abortonclose"),
            buffer_request: p.option("http-buffer-request"),
            adjust_case_server: p.option("h1-case-adjust-bogus-server"),
            last_ok,
            reuse: p.http_reuse,
        }
    }

    /// Counts one event in the counters of server `i` and of the backend.
    fn count(&self, i: usize, field: fn(&super::counters::BeCounters) -> &AtomicU64) {
        if let Some(s) = self.servers.get(i) {
            field(&s.admin.ctr).fetch_add(1, Ordering::Relaxed);
        }
        field(&self.ctr).fetch_add(1, Ordering::Relaxed);
    }

    /// Wakes requests waiting for a slot (a server came up).
    pub fn wake_queue(&self) {
        self.freed.notify_waiters();
    }

    /// Requests are queued for server `i` (its own queue or the backend's).
    pub fn has_waiters(&self, i: usize) -> bool {
        self.servers[i].queued.load(Ordering::Acquire) > 0
            || (self.servers[i].maxconn.is_some() && self.waiting.load(Ordering::Acquire) > 0)
    }

    fn any_usable(&self) -> bool {
        self.servers.iter().any(|s| s.up.load(Ordering::Acquire))
    }

    /// Takes a slot on server `i` if one is free right now.
    fn try_slot(self: &Arc<Self>, i: usize) -> Option<Slot> {
        let srv = &self.servers[i];
        if srv.dynamic && self.lb.saturated(i) {
            return None;
        }
        let permit = match &srv.slots {
            Some(sem) => Some(Arc::clone(sem).try_acquire_owned().ok()?),
            None => None,
        };
        Some(self.make_slot(i, permit))
    }

    fn make_slot(self: &Arc<Self>, i: usize, permit: Option<OwnedSemaphorePermit>) -> Slot {
        let guard = self.lb.conn_guard(i);
        self.servers[i].cum_conns.fetch_add(1, Ordering::Relaxed);
        self.servers[i].admin.on_conn(self.lb.served(i));
        Slot {
            be: Arc::clone(self),
            srv: i,
            permit,
            guard: Some(guard),
        }
    }

    /// Chooses a server and takes a slot on it, queueing (up to `timeout queue`) when the
    /// chosen server, or every server, is at its `maxconn`.
    pub async fn assign(
        self: &Arc<Self>,
        key: &RequestKey<'_>,
        avoid: Option<usize>,
    ) -> Result<Slot, ConnectError> {
        self.assign_with(key, avoid, &mut ConnStats::default())
            .await
    }

    /// [`Backend::assign`], recording the queue positions in `stats`.
    pub async fn assign_with(
        self: &Arc<Self>,
        key: &RequestKey<'_>,
        avoid: Option<usize>,
        stats: &mut ConnStats,
    ) -> Result<Slot, ConnectError> {
        // `queue_idx` when this request entered the backend queue.
        let mut entered: Option<u64> = None;
        let pos = |be: &Backend, e: Option<u64>| {
            e.map(|e| (be.queue_idx.load(Ordering::Acquire) - e + 1) as u32)
        };
        let deadline = self.queue_timeout.map(|d| clock::now() + d);
        // The first attempt takes no lock at all; only when it finds every candidate full does
        // the request register for wake-ups (then retries once before sleeping).
        let mut first = true;
        let mut ticket: Option<Ticket<'_>> = None;
        loop {
            let _picking = (!first).then(|| Picking::new(&self.picking));
            let notified = self.freed.notified();
            tokio::pin!(notified);
            if !first {
                notified.as_mut().enable();
            }
            // Requests already wait: a new one queues behind them, a waiting one tries only
            // at the head of the line.
            let behind = match &ticket {
                Some(t) => !t.is_head(),
                None => {
                    self.waiting.load(Ordering::Acquire) > 0
                        && !self
                            .fifo
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .is_empty()
                }
            };
            match (!behind).then(|| self.lb.pick(key, avoid)).flatten() {
                Some(i) => {
                    if let Some(slot) = self.try_slot(i) {
                        if let Some(p) = pos(self, entered) {
                            stats.be_queue_pos = p;
                            self.queue_idx.fetch_add(1, Ordering::AcqRel);
                        }
                        return Ok(slot);
                    }
                    if self.hashing {
                        let srv = &self.servers[i];
                        let full = srv
                            .maxqueue
                            .is_some_and(|m| srv.queued.load(Ordering::Acquire) >= m as usize);
                        if !full {
                            // A hashed request belongs to its server: wait in its queue.
                            return self.wait_server_slot(i, deadline, stats).await;
                        }
                        // `maxqueue` reached: another server with a free slot if redispatch
                        // is allowed, else the request is refused at once.
                        if self.redispatch {
                            if let Some(j) = self.lb.pick(key, Some(i)).filter(|&j| j != i) {
                                if let Some(slot) = self.try_slot(j) {
                                    return Ok(slot);
                                }
                            }
                        }
                        return Err(ConnectError::QueueTimeout);
                    }
                }
                None => {
                    if !self.any_usable() {
                        return Err(ConnectError::NoServer);
                    }
                }
            }
            if first {
                first = false;
                if behind {
                    ticket = Some(self.take_ticket());
                }
                continue;
            }
            // Every candidate is saturated: wait in the backend queue.
            if ticket.is_none() {
                ticket = Some(self.take_ticket());
            }
            entered.get_or_insert_with(|| self.queue_idx.load(Ordering::Acquire));
            // Kept if the wait is given up (`option abortonclose`: HAProxy logs the position).
            stats.be_queue_pos = pos(self, entered).unwrap_or(0);
            self.waiting.fetch_add(1, Ordering::AcqRel);
            let timed_out = match deadline {
                Some(d) => tokio::time::timeout_at(d, notified).await.is_err(),
                None => {
                    notified.await;
                    false
                }
            };
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            if timed_out {
                stats.be_queue_pos = pos(self, entered).unwrap_or(0);
                return Err(ConnectError::QueueTimeout);
            }
        }
    }

    /// A slot on server `i` chosen by persistence (a cookie): taken at once, or queued on
    /// that server as a hashed request would be.
    pub async fn assign_server(
        self: &Arc<Self>,
        i: usize,
        stats: &mut ConnStats,
    ) -> Result<Slot, ConnectError> {
        if let Some(slot) = self.try_slot(i) {
            return Ok(slot);
        }
        let deadline = self.queue_timeout.map(|d| clock::now() + d);
        self.wait_server_slot(i, deadline, stats).await
    }

    fn take_ticket(&self) -> Ticket<'_> {
        let t = self.tickets.fetch_add(1, Ordering::AcqRel);
        self.fifo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(t);
        Ticket(self, t)
    }

    async fn wait_server_slot(
        self: &Arc<Self>,
        i: usize,
        deadline: Option<Instant>,
        stats: &mut ConnStats,
    ) -> Result<Slot, ConnectError> {
        let entered = self.servers[i].queue_idx.load(Ordering::Acquire);
        if self.servers[i].dynamic {
            return self.wait_dynamic_slot(i, deadline, stats, entered).await;
        }
        let sem = Arc::clone(
            self.servers[i]
                .slots
                .as_ref()
                .expect("saturated without maxconn"),
        );
        self.servers[i].queued.fetch_add(1, Ordering::AcqRel);
        let r = match deadline {
            Some(d) => tokio::time::timeout_at(d, sem.acquire_owned()).await.ok(),
            None => Some(sem.acquire_owned().await),
        };
        self.servers[i].queued.fetch_sub(1, Ordering::AcqRel);
        stats.srv_queue_pos =
            (self.servers[i].queue_idx.load(Ordering::Acquire) - entered + 1) as u32;
        if matches!(r, Some(Ok(_))) {
            self.servers[i].queue_idx.fetch_add(1, Ordering::AcqRel);
        }
        match r {
            Some(Ok(p)) => Ok(self.make_slot(i, Some(p))),
            _ => Err(ConnectError::QueueTimeout),
        }
    }

    /// [`Backend::wait_server_slot`] for a server whose limit moves with the backend's load
    /// (`minconn`): a slot can free up without a connection ending, so the request tries
    /// again whenever one ends anywhere in the backend.
    async fn wait_dynamic_slot(
        self: &Arc<Self>,
        i: usize,
        deadline: Option<Instant>,
        stats: &mut ConnStats,
        entered: u64,
    ) -> Result<Slot, ConnectError> {
        let srv = &self.servers[i];
        srv.queued.fetch_add(1, Ordering::AcqRel);
        let slot = loop {
            let _picking = Picking::new(&self.picking);
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(slot) = self.try_slot(i) {
                break Some(slot);
            }
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, notified).await.is_err() {
                        break None;
                    }
                }
                None => notified.await,
            }
        };
        srv.queued.fetch_sub(1, Ordering::AcqRel);
        stats.srv_queue_pos = (srv.queue_idx.load(Ordering::Acquire) - entered + 1) as u32;
        match slot {
            Some(s) => {
                srv.queue_idx.fetch_add(1, Ordering::AcqRel);
                Ok(s)
            }
            None => Err(ConnectError::QueueTimeout),
        }
    }

    /// Connects to a server for this connection/request: choice, queue, connect with
    /// `retries`, `option redispatch` on the last retry, HAProxy's turn-around delay between
    /// attempts on the same server.
    pub async fn connect(
        self: &Arc<Self>,
        key: &RequestKey<'_>,
        ctx: ConnCtx,
        hdr_ip: Option<IpAddr>,
    ) -> Result<(TcpStream, Option<Slot>), ConnectError> {
        self.connect_with(key, ctx, hdr_ip, None, &mut ConnStats::default())
            .await
    }

    /// [`Backend::connect`] starting with an already assigned slot.
    pub async fn connect_with(
        self: &Arc<Self>,
        key: &RequestKey<'_>,
        ctx: ConnCtx,
        hdr_ip: Option<IpAddr>,
        first: Option<Slot>,
        stats: &mut ConnStats,
    ) -> Result<(TcpStream, Option<Slot>), ConnectError> {
        stats.connect_ms = -1;
        if self.servers.is_empty() {
            if self.transparent {
                if let Some(od) = ctx.orig_dst {
                    let s = self
                        .dial(od.sock_addr(), self.source.as_ref(), ctx, hdr_ip)
                        .await
                        .map_err(|e| match e {
                            DialError::Resource(m) => ConnectError::Resource(m),
                            DialError::Failed(t) => ConnectError::ConnectFailed {
                                server: usize::MAX,
                                timed_out: t,
                            },
                        })?;
                    return Ok((s, None));
                }
            }
            return Err(ConnectError::NoServer);
        }
        let mut left = self.retries;
        let mut slot: Option<Slot> = first;
        let mut avoid = None;
        loop {
            let s = match slot.take() {
                Some(s) => s,
                None => {
                    let t = clock::now();
                    let r = self.assign_with(key, avoid, stats).await;
                    stats.queue_ms += clock::now().saturating_duration_since(t).as_millis() as i64;
                    r?
                }
            };
            let srv = s.server();
            stats.server = Some(s.srv);
            let Some(addr) = srv.address(ctx.orig_dst) else {
                return Err(ConnectError::Resource(format!(
                    "server {}/{} has no destination address for this connection",
                    self.name, srv.name
                )));
            };
            let policy = srv.source.as_ref().or(self.source.as_ref());
            stats.server_addr = Some(addr);
            let t = clock::now();
            self.count(s.srv, |c| &c.connect);
            // HAProxy counts a connection in the server's need estimate from its attempt (a
            // refused one too, and in `mode tcp`).
            srv.pool.note_attempt();
            let r = self.dial(addr, policy, ctx, hdr_ip).await;
            stats.connect_ms = clock::now().saturating_duration_since(t).as_millis() as i64;
            let (server, timed_out) = match r {
                // `stats.local_addr` is left to the caller: a getsockname only when it logs.
                Ok(stream) => return Ok((stream, Some(s))),
                Err(DialError::Resource(m)) => {
                    eprintln!("[ALERT]    ({}) : {}", std::process::id(), m);
                    if left == 0 {
                        stats.connect_ms = -1;
                        self.count(s.srv, |c| &c.failed_conns);
                        return Err(ConnectError::Resource(m));
                    }
                    (s.srv, false)
                }
                Err(DialError::Failed(timed_out)) => {
                    stats.connect_timed_out = timed_out;
                    if left == 0 {
                        stats.connect_ms = -1;
                        self.count(s.srv, |c| &c.failed_conns);
                        return Err(ConnectError::ConnectFailed {
                            server: s.srv,
                            timed_out,
                        });
                    }
                    (s.srv, timed_out)
                }
            };
            left -= 1;
            stats.retries += 1;
            let done = self.retries - left;
            // HAProxy redispatches when the server is not running, on the retry chosen by
            // `option redispatch` (default: the last one), or at every retry when more than
            // one active server is up and the algorithm is not a hash.
            let srv_act = self.active_up.load(Ordering::Acquire);
            let redispatch = self.redispatch
                && (!self.servers[server].up.load(Ordering::Acquire)
                    || done.is_multiple_of(self.retries.max(1))
                    || (srv_act > 1 && !self.hashing));
            if redispatch {
                stats.redispatched = true;
                self.count(server, |c| &c.redispatches);
            }
            self.count(server, |c| &c.retries);
            if redispatch {
                avoid = Some(server);
                drop(s);
                if srv_act <= 1 && !timed_out {
                    self.turnaround().await;
                }
            } else {
                if !timed_out {
                    self.turnaround().await;
                }
                slot = Some(s);
            }
        }
    }

    /// HAProxy waits min(1s, timeout connect) before retrying after a fast connect error.
    async fn turnaround(&self) {
        let mut d = Duration::from_secs(1);
        if let Some(c) = self.connect_timeout {
            d = d.min(c);
        }
        tokio::time::sleep(d).await;
    }

    async fn dial(
        &self,
        addr: SocketAddr,
        policy: Option<&SourcePolicy>,
        ctx: ConnCtx,
        hdr_ip: Option<IpAddr>,
    ) -> Result<TcpStream, DialError> {
        let bind = match policy {
            Some(p) => p
                .for_connection(Some(ctx.client), hdr_ip)
                .map_err(|e| DialError::Resource(e.to_string()))?,
            None => sockopt::SourceBind::kernel(),
        };
        let spoof_client = matches!(bind.mode, sockopt::SourceMode::Client(_));
        let sock = sockopt::transparent_connect_socket(ServerAddr(addr), &bind).map_err(|e| {
            let what = if bind.is_transparent() {
                "tproxy source address"
            } else {
                "source address"
            };
            let _ = e;
            DialError::Resource(format!(
                "Cannot bind to {what} before connect() for backend {}. Aborting.",
                self.name
            ))
        })?;
        let fut = sockopt::connect(sock, ServerAddr(addr));
        let r = match self.connect_timeout {
            Some(t) => match tokio::time::timeout_at(clock::now() + t, fut).await {
                Ok(r) => r,
                Err(_) => return Err(DialError::Failed(true)),
            },
            None => fut.await,
        };
        match r {
            Ok(s) => {
                if spoof_client {
                    let _ = sockopt::set_reset_on_close(&s);
                }
                // `option srvtcpka` / `option tcpka`: kernel keep-alive probes towards the server.
                if self.srv_tcpka {
                    let _ = super::listen::set_keepalive(
                        &socket2::SockRef::from(&s),
                        &self.proxy.srvtcpka,
                    );
                }
                Ok(s)
            }
            Err(_) => Err(DialError::Failed(false)),
        }
    }
}

enum DialError {
    Resource(String),
    /// `true` when `timeout connect` expired.
    Failed(bool),
}
