//! The idle connection pool of a server (HAProxy's `http-reuse`), and the server connection
//! type of `mode http` sessions.
//!
//! Why a pool per server rather than per client session: HAProxy 2.6 moves a server
//! connection whose response is done out of the client session into the server's idle pool,
//! shared by every session, and keeps there only about as many connections as the server
//! needed recently. 5000 sequential keep-alive clients leave HAProxy with one connection to
//! the server; keeping one per session would leave 5000 (and about 0.5 KiB each on the proxy).
//! Only private connections stay with their session (in `http.rs`): all of them under
//! `http-reuse never`, and those a 401/407 with an `NTLM` or `Negotiate` challenge bound to
//! their client (the session then prefers that server, as HAProxy does).
//!
//! What this reproduces, measured against HAProxy 2.6.12 (docs/performance.md, the tests in
//! compat-tests/runtime_reuse.rs):
//! - two lists per server: "idle" (the connection served one request) and "safe" (it served
//!   more); which ones a request may take depends on the `http-reuse` mode and on whether it
//!   is the first request of its client session ([`Lists::for_request`]); oldest first;
//! - a connection is matched by a [`ConnKey`]: the destination when the server has no fixed
//!   address, the source `usesrc` binds (HAProxy keys the PROXY line of `send-proxy` too,
//!   which rhaproxy does not support on servers);
//! - admission after a response: `pool-purge-delay` > 0, `pool-max-conn` not reached, and
//!   either `used + idle <= max(used, need_est) + pool-low-conn` (`used` counting this
//!   connection) or the thread's lists are empty (no safe connection, and no idle one unless
//!   this one is safe); otherwise the connection is closed (with an RST, as HAProxy does).
//!   (HAProxy also stops admitting when its used file descriptors pass
//!   `tune.pool-low-fd-ratio`/`-high-fd-ratio` of its limit; rhaproxy does not count them);
//! - an idle connection the server closes leaves the pool at once, as in HAProxy (whose idle
//!   connections stay polled for reading): each pooled connection leaves the pool's waker
//!   with tokio's reactor ([`ServerConn::watch`]), and the purge task, woken, sweeps the
//!   lists;
//! - every `pool-purge-delay` while the server has idle connections (those the server closed
//!   dropped first): `excess = used + idle -
//!   max(max_used, need_est)`; `need_est` decays to `max(max_used, (need_est + max_used) / 2)`,
//!   `max_used` restarts from `used`; when `excess > 0`, each shard closes up to
//!   `ceil(excess / 2) * its_idle / idle + 1` connections, idle list first (6 idle, nothing
//!   used for three periods: 6, 6, 3, 1, 0).
//!
//! No global lock on the request path: the lists are sharded, one shard per worker thread,
//! each behind its own mutex held only for a list operation. HAProxy's pools are per thread
//! and each accepted connection belongs to one thread, given in turn; here each client session
//! takes a shard in turn ([`session_shard`]) and plays the part of that thread: its shard is
//! where its connections go idle and where it looks first, before the others (HAProxy takes
//! from other threads too). The counters are atomics. The purge runs in a task spawned when
//! a server gets its first idle connection, and ends when it has none left.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::backend::ConnStats;

/// What a pooled connection was made for, besides its server: a request takes only a
/// connection with an equal key. Boxed in [`Key`], as most connections have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnKey {
    /// The destination, when the server has no fixed address (`0.0.0.0`, port offsets,
    /// `set-dst`).
    pub dst: Option<SocketAddr>,
    /// The source `usesrc clientip|client|hdr_ip(...)` binds.
    pub src: Option<SocketAddr>,
}

/// A connection's [`ConnKey`]; `None` when it has nothing but its server (the usual case: the
/// connection and the transaction future holding it stay small).
pub type Key = Option<Box<ConnKey>>;

impl ConnKey {
    pub fn boxed(self) -> Key {
        (self != ConnKey::default()).then(|| Box::new(self))
    }
}

/// A server connection of a `mode http` session.
pub struct ServerConn {
    pub r: OwnedReadHalf,
    pub w: OwnedWriteHalf,
    pub buf: Vec<u8>,
    pub srv: usize,
    /// Its server and local addresses, as the connect recorded them (for the log of the
    /// requests that reuse it: no getpeername/getsockname per request).
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    pub key: Key,
    /// Requests it carried to their end (a pooled connection with more than one is "safe").
    pub served: u32,
    /// Made private by a connection-based authentication (NTLM, Negotiate): it stays with
    /// its client session.
    pub private: bool,
    /// Counts the connection in its server's `used` while it serves a request.
    pub used: UsedTok,
    /// Counts its socket in the process's (`tune.pool-*-fd-ratio`).
    pub fd: super::fds::ServerFd,
}

/// A connection counted as used by its server's pool; the count drops with the token.
pub struct UsedTok(Option<Arc<SrvPool>>);

impl UsedTok {
    pub fn none() -> UsedTok {
        UsedTok(None)
    }
}

impl Drop for UsedTok {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.used.fetch_sub(1, Relaxed);
        }
    }
}

impl ServerConn {
    /// `cs`: the stats of the connect that opened `s` (its server and local addresses);
    /// `key`: what it was made for; `pool`: its server's pool, which counts it as used from
    /// now on.
    pub fn new(
        s: TcpStream,
        srv: usize,
        cs: &ConnStats,
        key: Key,
        pool: Option<&Arc<SrvPool>>,
    ) -> ServerConn {
        let (r, w) = s.into_split();
        ServerConn {
            r,
            w,
            buf: Vec::new(),
            srv,
            peer: cs.server_addr,
            local: cs.local_addr,
            key,
            served: 0,
            private: false,
            used: match pool {
                Some(p) => p.use_one(),
                None => UsedTok::none(),
            },
            fd: super::fds::ServerFd::new(),
        }
    }

    /// Takes what a server that speaks first (or answers before reading) already sent:
    /// once our request reaches a server socket that is already closed, the kernel's RST
    /// may discard unread data.
    /// Reads straight into the connection's buffer (one from the pool if it has none, given
    /// back if nothing came): usually nothing is ready, and tokio answers without a syscall.
    pub fn drain_ready(&mut self) {
        if self.buf.capacity() == 0 {
            self.buf = super::bufpool::take();
        }
        loop {
            self.buf.reserve(1);
            match self.r.try_read_buf(&mut self.buf) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        super::bufpool::release(&mut self.buf);
    }

    /// Closes the connection after its exchange with an RST and no FIN, as HAProxy closes a
    /// server connection it will not reuse: no TIME_WAIT is left on the proxy for the 4-tuple
    /// (with `usesrc clientip` that tuple comes from the client's own port space). Dropping
    /// tokio's write half would `shutdown(SHUT_WR)` first: a FIN, and a TIME_WAIT whenever the
    /// server's FIN crosses it.
    pub fn close_reset(mut self) {
        let _ = crate::tproxy::sockopt::set_reset_on_close(self.w.as_ref());
        // Its buffer goes back to the pool (a `Connection: close` exchange ends with it).
        super::bufpool::release_any(&mut self.buf);
        self.w.forget();
        drop(self.r);
    }

    /// No longer counted as used (a private connection idle in its session).
    pub fn unmark_used(&mut self) {
        self.used = UsedTok::none();
    }

    /// Like [`ServerConn::still_usable`], but asks the kernel (a `recv(MSG_PEEK)`): tokio's
    /// `try_read` does not enter the kernel until its reactor has seen the socket readable,
    /// which may come after a close the server made an instant ago.
    fn still_open_now(&self) -> bool {
        use nix::sys::socket::{MsgFlags, recv};
        use std::os::fd::AsRawFd;
        let mut b = [0u8; 1];
        let fd = self.r.as_ref().as_raw_fd();
        matches!(
            recv(fd, &mut b, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT),
            Err(nix::errno::Errno::EAGAIN)
        )
    }

    /// An idle connection the server has closed (or that has unexpected bytes) is unusable.
    pub fn still_usable(&self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.try_read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// For an idle connection: leaves `w` with tokio's reactor, to be woken when the socket
    /// turns readable (the server closed it, or sent what it should not have). False when
    /// it already is unusable. No syscall unless tokio still holds a readiness from the
    /// response's last read, which the check consumes.
    pub fn watch(&self, w: &Waker) -> bool {
        let mut cx = Context::from_waker(w);
        for _ in 0..2 {
            if self.r.as_ref().poll_read_ready(&mut cx).is_pending() {
                return true;
            }
            if !self.still_usable() {
                return false;
            }
        }
        // Readable twice without data or end: an error state the next check reports.
        self.still_usable()
    }
}

/// Wakes a pool's purge task when a watched idle connection turns readable.
struct DeadWake(tokio::sync::Notify);

impl std::task::Wake for DeadWake {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.notify_one();
    }
}

/// `http-reuse`: the IR's mode, as the configuration gives it.
pub use crate::config::ir::HttpReuse as ReuseMode;

/// The lists a request may take a pooled connection from, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lists {
    NoReuse,
    Safe,
    SafeThenIdle,
    IdleThenSafe,
}

impl Lists {
    /// `first`: the request is the first of its client session (measured: `safe` gives it a
    /// new connection, `aggressive` only a connection that already served two requests,
    /// `always` any; later requests take the idle list first).
    pub fn for_request(mode: ReuseMode, first: bool) -> Lists {
        match (mode, first) {
            (ReuseMode::Never, _) => Lists::NoReuse,
            (ReuseMode::Safe, true) => Lists::NoReuse,
            (ReuseMode::Aggressive, true) => Lists::Safe,
            (ReuseMode::Always, true) => Lists::SafeThenIdle,
            (_, false) => Lists::IdleThenSafe,
        }
    }
}

/// The pool settings of a server (`pool-max-conn`, `pool-low-conn`, `pool-purge-delay`).
#[derive(Debug, Clone, Copy)]
pub struct PoolCfg {
    /// `None`: unlimited (-1).
    pub max_conn: Option<usize>,
    pub low_conn: usize,
    /// Zero: no pooling.
    pub purge_delay: Duration,
}

impl Default for PoolCfg {
    fn default() -> Self {
        PoolCfg {
            max_conn: None,
            low_conn: 0,
            purge_delay: Duration::from_secs(5),
        }
    }
}

#[derive(Default)]
struct Shard {
    idle: VecDeque<ServerConn>,
    safe: VecDeque<ServerConn>,
}

/// The idle connections of one server, and its counts (`show stat`: `idle_conn_cur`,
/// `safe_conn_cur`, `used_conn_cur`, `need_conn_est`, `srv_icur`, `src_ilim`).
pub struct SrvPool {
    pub cfg: PoolCfg,
    /// Sized on first use, once the thread count is known.
    shards: std::sync::OnceLock<Box<[Mutex<Shard>]>>,
    /// Connections serving a request now.
    used: AtomicUsize,
    idle: AtomicUsize,
    safe: AtomicUsize,
    /// The most used at once since the last purge.
    max_used: AtomicUsize,
    need_est: AtomicUsize,
    purging: AtomicBool,
    /// Woken when an idle connection turns readable ([`ServerConn::watch`]).
    dead: Arc<DeadWake>,
    dead_waker: Waker,
}

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// The number of worker threads (`nbthread`), set before traffic starts.
pub fn set_threads(n: usize) {
    THREADS.store(n, Relaxed);
}

/// The number of shards: one per worker thread (else per CPU), 1 to 64.
fn shard_count() -> usize {
    match THREADS.load(Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, 64)
}

/// The shard of a new client session: HAProxy gives each accepted connection to one of its
/// threads in turn, and a session uses its thread's pools; here a session takes its shard in
/// turn (it may run on any worker).
pub fn session_shard() -> u8 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    (NEXT.fetch_add(1, Relaxed) % shard_count()) as u8
}

/// Pool counts, for the stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub idle: usize,
    pub safe: usize,
    pub used: usize,
    /// The most used at once since the last purge.
    pub max_used: usize,
    pub need_est: usize,
}

impl SrvPool {
    pub fn new(cfg: PoolCfg) -> SrvPool {
        let dead = Arc::new(DeadWake(tokio::sync::Notify::new()));
        SrvPool {
            cfg,
            shards: std::sync::OnceLock::new(),
            used: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            safe: AtomicUsize::new(0),
            max_used: AtomicUsize::new(0),
            need_est: AtomicUsize::new(0),
            purging: AtomicBool::new(false),
            dead: Arc::clone(&dead),
            dead_waker: Waker::from(dead),
        }
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            idle: self.idle.load(Relaxed),
            safe: self.safe.load(Relaxed),
            used: self.used.load(Relaxed),
            max_used: self.max_used.load(Relaxed),
            need_est: self.need_est.load(Relaxed),
        }
    }

    /// The idle connections of each shard (`show servers conn`).
    pub fn per_shard(&self) -> Vec<usize> {
        (0..self.shards().len())
            .map(|i| {
                let sh = self.shard(i);
                sh.idle.len() + sh.safe.len()
            })
            .collect()
    }

    fn shards(&self) -> &[Mutex<Shard>] {
        self.shards
            .get_or_init(|| (0..shard_count()).map(|_| Mutex::default()).collect())
    }

    fn shard(&self, i: usize) -> std::sync::MutexGuard<'_, Shard> {
        let all = self.shards();
        all[i % all.len()].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `c` as used again (a private connection a session takes back).
    pub fn mark_used(self: &Arc<Self>, c: &mut ServerConn) {
        c.used = self.use_one();
    }

    /// A connection attempt: the need estimate counts it before it is made (the connection,
    /// once made, is counted as used by [`ServerConn::new`]).
    pub fn note_attempt(&self) {
        self.note_used(self.used.load(Relaxed) + 1);
    }

    /// Counts one more connection in use (a new one, or one taken from the pool).
    fn use_one(self: &Arc<Self>) -> UsedTok {
        self.note_used(self.used.fetch_add(1, Relaxed) + 1);
        UsedTok(Some(Arc::clone(self)))
    }

    /// `n` connections in use: the maximum since the last purge and the need estimate.
    fn note_used(&self, n: usize) {
        self.max_used.fetch_max(n, Relaxed);
        self.need_est.fetch_max(n, Relaxed);
    }

    /// An idle connection with this key from `lists`, the session's shard (`home`) first;
    /// connections the server closed meanwhile are dropped on the way.
    pub fn take(self: &Arc<Self>, key: &Key, lists: Lists, home: usize) -> Option<ServerConn> {
        let order: &[bool] = match lists {
            Lists::NoReuse => return None,
            Lists::Safe => &[true],
            Lists::SafeThenIdle => &[true, false],
            Lists::IdleThenSafe => &[false, true],
        };
        if self.idle.load(Relaxed) + self.safe.load(Relaxed) == 0 {
            return None;
        }
        for &safe in order {
            let count = if safe { &self.safe } else { &self.idle };
            for k in 0..self.shards().len() {
                if count.load(Relaxed) == 0 {
                    break;
                }
                loop {
                    let c = {
                        let mut sh = self.shard(home + k);
                        let list = if safe { &mut sh.safe } else { &mut sh.idle };
                        let Some(pos) = list.iter().position(|c| c.key == *key) else {
                            break;
                        };
                        list.remove(pos)
                    };
                    let Some(mut c) = c else { break };
                    count.fetch_sub(1, Relaxed);
                    if c.still_usable() {
                        c.used = self.use_one();
                        return Some(c);
                    }
                    c.close_reset();
                }
            }
        }
        None
    }

    /// Closes one idle connection because the process is above `tune.pool-high-fd-ratio`
    /// ([`super::fds`]): the oldest of shard `home`'s idle list, else of another shard's idle
    /// then safe list, as HAProxy 2.6 does before it connects.
    pub fn kill_one(&self, home: usize) {
        if self.idle.load(Relaxed) + self.safe.load(Relaxed) == 0 {
            return;
        }
        let from = |k: usize, safe: bool| {
            let c = {
                let mut sh = self.shard(home + k);
                if safe { &mut sh.safe } else { &mut sh.idle }.pop_front()
            };
            if c.is_some() {
                if safe { &self.safe } else { &self.idle }.fetch_sub(1, Relaxed);
            }
            c
        };
        let victim = from(0, false).or_else(|| {
            (1..self.shards().len()).find_map(|k| from(k, false).or_else(|| from(k, true)))
        });
        if let Some(c) = victim {
            c.close_reset();
        }
    }

    /// A connection whose response is done, reusable: kept idle in shard `home` (the
    /// session's) when the pool wants it, else closed.
    pub fn release(self: &Arc<Self>, mut c: ServerConn, home: usize) {
        let cfg = &self.cfg;
        if cfg.purge_delay.is_zero() || cfg.max_conn == Some(0) {
            c.close_reset();
            return;
        }
        let safe = c.served > 1;
        let idle = self.idle.load(Relaxed) + self.safe.load(Relaxed);
        if super::fds::high_reached() || cfg.max_conn.is_some_and(|m| idle >= m) {
            c.close_reset();
            return;
        }
        // This thread's lists take their first connection whatever the counts say (a safe
        // one while they hold no safe one); measured: with 2 idle connections and the need
        // estimate decayed to 1, a connection that served a second request stays idle.
        let first_here = {
            let sh = self.shard(home);
            sh.safe.is_empty() && (safe || sh.idle.is_empty())
        };
        // `used` still counts this connection.
        // Above `tune.pool-low-fd-ratio`, only the first of the thread's lists.
        let admit = |this: &Self| {
            let used = this.used.load(Relaxed);
            let idle = this.idle.load(Relaxed) + this.safe.load(Relaxed);
            let need = used.max(this.need_est.load(Relaxed)) + cfg.low_conn;
            used + idle <= need && !super::fds::low_reached()
        };
        // HAProxy drops an idle connection as soon as the server closes it; here it is found
        // when it would be taken, now, before refusing a connection because of it (once
        // tokio's reactor has seen the close: a syscall per request and idle connection here
        // cost 10 syscalls per `Connection: close` request with 10 idle connections), or at
        // the next purge (which asks the kernel).
        if !first_here && !admit(self) && (self.drop_dead(false) == 0 || !admit(self)) {
            c.close_reset();
            return;
        }
        // With several threads, a close seen before the push below wakes a sweep that does
        // not find the connection yet; the next purge drops it then.
        if !c.watch(&self.dead_waker) {
            c.close_reset();
            return;
        }
        drop(std::mem::replace(&mut c.used, UsedTok::none()));
        super::bufpool::release(&mut c.buf);
        {
            let mut sh = self.shard(home);
            if safe {
                sh.safe.push_back(c);
            } else {
                sh.idle.push_back(c);
            }
            // Counted under the shard lock: a taker that sees the count finds the entry.
            if safe { &self.safe } else { &self.idle }.fetch_add(1, Relaxed);
        }
        if !self.purging.swap(true, Relaxed) {
            tokio::spawn(Arc::clone(self).purge_task());
        }
    }

    /// Closes every idle connection (the server enters maintenance).
    pub fn close_all(&self) {
        let mut all = Vec::new();
        for i in 0..self.shards().len() {
            let mut sh = self.shard(i);
            self.idle.fetch_sub(sh.idle.len(), Relaxed);
            self.safe.fetch_sub(sh.safe.len(), Relaxed);
            all.extend(sh.idle.drain(..));
            all.extend(sh.safe.drain(..));
        }
        for c in all {
            c.close_reset();
        }
    }

    /// Closes the idle connections the server has closed; returns how many. `kernel`: ask the
    /// kernel about each (a syscall each); else tokio's readiness tells (no syscall unless the
    /// socket was seen readable). Shards in use by another thread are skipped.
    fn drop_dead(&self, kernel: bool) -> usize {
        self.close_where(false, |c| {
            if kernel {
                !c.still_open_now()
            } else {
                !c.still_usable()
            }
        })
    }

    /// Drops the idle connections the server closed and watches the others again (tokio
    /// wakes a waker once).
    fn sweep(&self) {
        self.close_where(true, |c| !c.watch(&self.dead_waker));
    }

    /// Takes the idle connections for which `dead` holds out of the lists, uncounts them and
    /// closes them (outside the shard locks); returns how many. `wait`: lock every shard,
    /// else skip those another thread holds.
    fn close_where(&self, wait: bool, mut dead: impl FnMut(&ServerConn) -> bool) -> usize {
        let mut gone = Vec::new();
        for i in 0..self.shards().len() {
            let mut sh = if wait {
                self.shard(i)
            } else {
                match self.shards()[i].try_lock() {
                    Ok(sh) => sh,
                    Err(_) => continue,
                }
            };
            for safe in [false, true] {
                let list = if safe { &mut sh.safe } else { &mut sh.idle };
                let before = list.len();
                let mut k = 0;
                while k < list.len() {
                    if !dead(&list[k]) {
                        k += 1;
                    } else if let Some(c) = list.remove(k) {
                        gone.push(c);
                    }
                }
                let n = before - list.len();
                if n > 0 {
                    if safe { &self.safe } else { &self.idle }.fetch_sub(n, Relaxed);
                }
            }
        }
        let n = gone.len();
        for c in gone {
            c.close_reset();
        }
        n
    }

    /// Purges every `pool-purge-delay` while the server has idle connections.
    async fn purge_task(self: Arc<Self>) {
        loop {
            let next = tokio::time::Instant::now() + self.cfg.purge_delay;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => break,
                    _ = self.dead.0.notified() => self.sweep(),
                }
            }
            self.purge();
            if self.idle.load(Relaxed) + self.safe.load(Relaxed) == 0 {
                self.purging.store(false, Relaxed);
                // A connection admitted since the check started its own task, or finds
                // `purging` false and starts one.
                if self.idle.load(Relaxed) + self.safe.load(Relaxed) == 0
                    || self.purging.swap(true, Relaxed)
                {
                    return;
                }
            }
        }
    }

    /// One purge: updates the estimate of the connections needed and closes about half of
    /// the excess.
    fn purge(&self) {
        // The connections the server closed first: HAProxy no longer counts them.
        self.drop_dead(true);
        let used = self.used.load(Relaxed);
        let idle = self.idle.load(Relaxed) + self.safe.load(Relaxed);
        let max_used = self.max_used.swap(used, Relaxed);
        let est = self.need_est.load(Relaxed);
        let excess = (used + idle) as isize - max_used.max(est) as isize;
        self.need_est
            .store(max_used.max((est + max_used) / 2), Relaxed);
        if excess <= 0 || idle == 0 {
            return;
        }
        let half = (excess as usize).div_ceil(2);
        let mut doomed = Vec::new();
        for i in 0..self.shards().len() {
            let mut sh = self.shard(i);
            let here = sh.idle.len() + sh.safe.len();
            if here == 0 {
                continue;
            }
            let n = half * here / idle + 1;
            for _ in 0..n {
                if let Some(c) = sh.idle.pop_front() {
                    self.idle.fetch_sub(1, Relaxed);
                    doomed.push(c);
                } else if let Some(c) = sh.safe.pop_front() {
                    self.safe.fetch_sub(1, Relaxed);
                    doomed.push(c);
                } else {
                    break;
                }
            }
        }
        for c in doomed {
            c.close_reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_per_mode() {
        use ReuseMode as M;
        let l = Lists::for_request;
        assert_eq!(l(M::Never, true), Lists::NoReuse);
        assert_eq!(l(M::Never, false), Lists::NoReuse);
        assert_eq!(l(M::Safe, true), Lists::NoReuse);
        assert_eq!(l(M::Safe, false), Lists::IdleThenSafe);
        assert_eq!(l(M::Aggressive, true), Lists::Safe);
        assert_eq!(l(M::Aggressive, false), Lists::IdleThenSafe);
        assert_eq!(l(M::Always, true), Lists::SafeThenIdle);
        assert_eq!(l(M::Always, false), Lists::IdleThenSafe);
    }
}
