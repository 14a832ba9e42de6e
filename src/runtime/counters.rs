//! Traffic counters of frontends, backends and servers (`show stat`, the stats page, the
//! Prometheus exporter), as HAProxy 2.6 keeps them.
//!
//! Everything is an atomic: a finished session (TCP) or transaction (HTTP) updates the
//! counters of its frontend, backend and server in [`finished`], called once at the point
//! where its log record is complete; accept-time rates are counted in [`accepted`], connect
//! attempts, retries, redispatches and connect errors where the connect procedure makes them
//! (`backend.rs`). No lock is taken.
//!
//! Rates are HAProxy's `freq_ctr` over one second (the current second's count plus the
//! previous second's, weighted by what is left of the current second); the `*time` averages
//! are HAProxy's sliding sums over the last 1024 samples.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

/// Samples of the `qtime`/`ctime`/`rtime`/`ttime` averages.
pub const TIME_SAMPLES: u64 = 1024;

/// Unix milliseconds from the kernel's coarse clock (updated every tick, read without the
/// TSC): rates and ages need no finer time, and this is read on every request.
fn now_ms() -> u64 {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    if unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
        return ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Events per second: packed `(second mod 2^16, current count, previous count)`.
#[derive(Default)]
pub struct Rate(AtomicU64);

const R_MASK: u64 = (1 << 24) - 1;

fn unpack(v: u64) -> (u64, u64, u64) {
    (v & 0xffff, (v >> 16) & R_MASK, (v >> 40) & R_MASK)
}

impl Rate {
    /// Counts one event; returns the rate right after it.
    pub fn hit(&self) -> u32 {
        self.hit_at(now_ms())
    }

    /// Counts one event at `ms` (Unix milliseconds); returns the rate right after it.
    pub fn hit_at(&self, ms: u64) -> u32 {
        let sec = (ms / 1000) & 0xffff;
        let r = self.0.fetch_update(Relaxed, Relaxed, |v| {
            let (s, cur, prev) = unpack(v);
            let (cur, prev) = if s == sec {
                (cur, prev)
            } else if (s + 1) & 0xffff == sec {
                (0, cur)
            } else {
                (0, 0)
            };
            let cur = (cur + 1).min(R_MASK);
            Some(sec | (cur << 16) | (prev << 40))
        });
        let _ = r;
        self.read_at(ms)
    }

    /// The current rate (events over the last second).
    pub fn read(&self) -> u32 {
        self.read_at(now_ms())
    }

    fn read_at(&self, ms: u64) -> u32 {
        let (s, cur, prev) = unpack(self.0.load(Relaxed));
        let sec = (ms / 1000) & 0xffff;
        let left = 1000 - ms % 1000;
        let (cur, prev) = if s == sec {
            (cur, prev)
        } else if (s + 1) & 0xffff == sec {
            (0, cur)
        } else {
            return 0;
        };
        (cur + (prev * left) / 1000) as u32
    }
}

/// A sliding average over the last [`TIME_SAMPLES`] values (HAProxy's `swrate`).
#[derive(Default)]
pub struct Avg {
    sum: AtomicU64,
    max: AtomicU64,
}

impl Avg {
    pub fn add(&self, v: u64) {
        let _ = self
            .sum
            .fetch_update(Relaxed, Relaxed, |s| Some(s - s.div_ceil(TIME_SAMPLES) + v));
        self.max.fetch_max(v, Relaxed);
    }
    /// The average over `min(samples, TIME_SAMPLES)` values (`samples`: how many were added).
    pub fn avg(&self, samples: u64) -> u64 {
        let n = samples.clamp(1, TIME_SAMPLES);
        self.sum.load(Relaxed).div_ceil(n)
    }
    pub fn max(&self) -> u64 {
        self.max.load(Relaxed)
    }
}

/// HTTP response classes: 1xx..5xx, other.
pub fn status_class(status: i32) -> Option<usize> {
    match status {
        100..=199 => Some(0),
        200..=299 => Some(1),
        300..=399 => Some(2),
        400..=499 => Some(3),
        500..=599 => Some(4),
        s if s > 0 => Some(5),
        _ => None,
    }
}

/// The counters of a frontend (HAProxy's `fe_counters`).
#[derive(Default)]
pub struct FeCounters {
    /// Most sessions at once (`smax`).
    pub smax: AtomicU32,
    /// Connections refused by `tcp-request connection` rules (`dcon`): counted in `conn_tot`,
    /// not in `stot`.
    pub denied_conn: AtomicU64,
    /// Connections (`conn_tot`) and sessions (`stot`) are the frontend's `cum_conns`.
    pub conn_rate: Rate,
    pub conn_rate_max: AtomicU32,
    pub sess_rate: Rate,
    pub sess_rate_max: AtomicU32,
    pub req_rate: Rate,
    pub req_rate_max: AtomicU32,
    pub req_tot: AtomicU64,
    pub hrsp: [AtomicU64; 6],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub denied_req: AtomicU64,
    pub denied_resp: AtomicU64,
    /// Invalid requests (`ereq`).
    pub failed_req: AtomicU64,
    /// Requests answered by rhaproxy itself (stats page, services).
    pub intercepted: AtomicU64,
}

/// The counters of a backend or a server (HAProxy's `be_counters`).
#[derive(Default)]
pub struct BeCounters {
    /// Most sessions at once (`smax`, backends; servers keep theirs in `SrvAdmin`).
    pub smax: AtomicU32,
    pub stot: AtomicU64,
    pub sess_rate: Rate,
    pub sess_rate_max: AtomicU32,
    pub req_tot: AtomicU64,
    pub hrsp: [AtomicU64; 6],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub denied_req: AtomicU64,
    pub denied_resp: AtomicU64,
    /// Connect errors (`econ`).
    pub failed_conns: AtomicU64,
    /// Response errors (`eresp`).
    pub failed_resp: AtomicU64,
    pub retries: AtomicU64,
    pub redispatches: AtomicU64,
    pub cli_aborts: AtomicU64,
    pub srv_aborts: AtomicU64,
    /// New connections attempted (`connect`) and idle ones reused (`reuse`).
    pub connect: AtomicU64,
    pub reuse: AtomicU64,
    /// Unix time (s) of the last session, 0 before the first.
    pub last_sess: AtomicU64,
    /// Samples of the time averages (sessions that reached a server).
    pub samples: AtomicU64,
    pub q_time: Avg,
    pub c_time: Avg,
    pub d_time: Avg,
    pub t_time: Avg,
}

impl BeCounters {
    /// `lastsess`: seconds since the last session, -1 before the first.
    pub fn lastsess(&self, now_s: u64) -> i64 {
        match self.last_sess.load(Relaxed) {
            0 => -1,
            t => now_s.saturating_sub(t) as i64,
        }
    }
    fn session(&self, ms: u64) {
        self.stot.fetch_add(1, Relaxed);
        let r = self.sess_rate.hit_at(ms);
        self.sess_rate_max.fetch_max(r, Relaxed);
        self.last_sess.store((ms / 1000).max(1), Relaxed);
    }
}

/// Process-wide figures of `show info`.
#[derive(Default)]
pub struct Global {
    pub conn_rate: Rate,
    pub conn_rate_max: AtomicU32,
    pub sess_rate: Rate,
    pub sess_rate_max: AtomicU32,
    pub cum_req: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bytes_out_rate: Rate,
}

pub static GLOBAL: std::sync::LazyLock<Global> = std::sync::LazyLock::new(Global::default);

/// A connection was accepted by a frontend (its `cum_conns` is counted by the accept loop).
pub fn accepted(fe: &FeCounters, cur: u32) {
    let ms = now_ms();
    fe.smax.fetch_max(cur, Relaxed);
    let r = fe.conn_rate.hit_at(ms);
    fe.conn_rate_max.fetch_max(r, Relaxed);
    let r = fe.sess_rate.hit_at(ms);
    fe.sess_rate_max.fetch_max(r, Relaxed);
    let g = &*GLOBAL;
    let r = g.conn_rate.hit_at(ms);
    g.conn_rate_max.fetch_max(r, Relaxed);
    let r = g.sess_rate.hit_at(ms);
    g.sess_rate_max.fetch_max(r, Relaxed);
}

/// A request denied by an `http-request deny` rule (`dreq`).
pub fn denied_request(fe: &super::Frontend, be: Option<&super::backend::Backend>) {
    fe.ctr.denied_req.fetch_add(1, Relaxed);
    if let Some(b) = be.filter(|b| b.name != fe.name) {
        b.ctr.denied_req.fetch_add(1, Relaxed);
    }
}

/// What a finished session (TCP) or transaction (HTTP) did, from its log record's figures.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub http: bool,
    /// HTTP status sent to the client (≤ 0: none).
    pub status: i32,
    /// Whether the status came from the server (not generated by the proxy).
    pub from_server: bool,
    /// The response was sent by the HTTP framer before any stream (a parse error):
    /// HAProxy counts the request and its status, but no backend.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The backend was reached (a stream was assigned to it).
    pub backend: bool,
    pub server: Option<usize>,
    /// The server connection was an idle one reused.
    pub reused: bool,
    pub retries: u32,
    /// Termination state (`%ts`): cause then phase.
    pub term: [u8; 2],
    /// `%Tw`, `%Tc`, `%Tr` (HTTP), `%Tt`; negative when the phase was not reached.
    pub t_queue: i64,
    pub t_connect: i64,
    pub t_response: i64,
    pub t_total: i64,
}

fn add_status(h: &[AtomicU64; 6], status: i32) {
    if let Some(c) = status_class(status) {
        h[c].fetch_add(1, Relaxed);
    }
}

/// Updates the counters of the frontend, backend and server of a finished session or
/// transaction.
pub fn finished(fe: &FeCounters, be: Option<&super::backend::Backend>, f: &Finished) {
    let ms = now_ms();
    fe.bytes_in.fetch_add(f.bytes_in, Relaxed);
    fe.bytes_out.fetch_add(f.bytes_out, Relaxed);
    GLOBAL.bytes_out.fetch_add(f.bytes_out, Relaxed);
    if f.http {
        GLOBAL.cum_req.fetch_add(1, Relaxed);
        fe.req_tot.fetch_add(1, Relaxed);
        let r = fe.req_rate.hit_at(ms);
        fe.req_rate_max.fetch_max(r, Relaxed);
        add_status(&fe.hrsp, f.status);
        // Invalid requests (the parser's answers; a `deny` is `PR` too but counted in `dreq`
        // by [`denied_request`], with 403 or its `deny_status`).
        let parser_status = matches!(f.status, 400 | 408 | 413 | 414 | 431 | 501 | 505);
        if f.term == *b"PR" && parser_status || f.status == 408 && f.term[0] == b'c' {
            fe.failed_req.fetch_add(1, Relaxed);
        }
    }
    let Some(be) = be.filter(|_| f.backend) else {
        return;
    };
    let now = ms;
    let srv = f
        .server
        .and_then(|i| be.servers.get(i))
        .map(|s| &s.admin.ctr);
    let b = &be.ctr;
    // No server available, or the queue timed out: a connect error for the backend (and the
    // server whose queue it was); failed connects were counted by the connect procedure.
    match (&f.term, srv) {
        (b"SC", None) => {
            b.failed_conns.fetch_add(1, Relaxed);
        }
        (b"sQ", s) => {
            b.failed_conns.fetch_add(1, Relaxed);
            if let Some(s) = s {
                s.failed_conns.fetch_add(1, Relaxed);
            }
        }
        _ => {}
    }
    for c in [Some(b), srv].into_iter().flatten() {
        c.bytes_in.fetch_add(f.bytes_in, Relaxed);
        c.bytes_out.fetch_add(f.bytes_out, Relaxed);
    }
    // A TCP session counts in the backend when it starts (`tcp.rs` calls `be_session`).
    if f.http {
        b.session(now);
        b.req_tot.fetch_add(1, Relaxed);
        add_status(&b.hrsp, f.status);
    }
    if let Some(s) = srv {
        if f.http {
            s.session(now);
            s.stot.fetch_add(f.retries as u64, Relaxed);
            if f.from_server {
                s.req_tot.fetch_add(1, Relaxed);
                add_status(&s.hrsp, f.status);
            }
        }
        if f.reused {
            s.reuse.fetch_add(1, Relaxed);
            b.reuse.fetch_add(1, Relaxed);
        }
    }
    // Aborts and response errors, from the termination state.
    let (cause, phase) = (f.term[0], f.term[1]);
    let abort = |c: &BeCounters, field: fn(&BeCounters) -> &AtomicU64| {
        field(c).fetch_add(1, Relaxed);
    };
    for c in [Some(b), srv].into_iter().flatten() {
        match (cause, phase) {
            (b'C' | b'c', b'D' | b'H') => abort(c, |c| &c.cli_aborts),
            (b'S' | b's', b'D') => abort(c, |c| &c.srv_aborts),
            (b'S' | b's', b'H') => abort(c, |c| &c.failed_resp),
            _ => {}
        }
    }
    // Time averages: only sessions that reached a server and got through.
    if f.t_connect >= 0 && f.t_total >= 0 && (!f.http || f.t_response >= 0) {
        for c in [Some(b), srv].into_iter().flatten() {
            c.samples.fetch_add(1, Relaxed);
            c.q_time.add(f.t_queue.max(0) as u64);
            c.c_time.add(f.t_connect as u64);
            c.d_time.add(f.t_response.max(0) as u64);
            c.t_time.add(f.t_total as u64);
        }
    }
}

/// A TCP session got its server connection (or failed to): it counts in the backend and the
/// server from now on, as in HAProxy.
pub fn tcp_started(be: &super::backend::Backend, cs: &super::backend::ConnStats) {
    let now = now_ms();
    be.ctr.session(now);
    if let Some(s) = cs.server.and_then(|i| be.servers.get(i)) {
        s.admin.ctr.session(now);
        s.admin.ctr.stot.fetch_add(cs.retries as u64, Relaxed);
    }
}

/// A finished TCP session: `fwd` is what forwarding did (`None` when no server connection
/// was made, then `term` is the termination state).
pub fn tcp_session(
    fe: &super::Frontend,
    be: &super::backend::Backend,
    cs: &super::backend::ConnStats,
    fwd: Option<(&super::forward::Stats, bool)>,
    term: [u8; 4],
    acc: &super::Accepted,
) {
    use super::forward::End;
    let (term, bytes_in, bytes_out) = match fwd {
        None => ([term[0], term[1]], 0, 0),
        Some((st, killed)) => (
            match st.end {
                _ if killed => *b"KD",
                End::Done => *b"--",
                End::Timeout { client: true } => *b"cD",
                End::Timeout { client: false } => *b"sD",
                End::Error { client: true } => *b"CD",
                End::Error { client: false } => *b"SD",
                End::Killed => *b"KD",
            },
            st.to_server,
            st.to_client,
        ),
    };
    let f = Finished {
        http: false,
        bytes_in,
        bytes_out,
        backend: true,
        server: cs.server,
        retries: cs.retries,
        term,
        t_queue: if cs.server.is_some() { cs.queue_ms } else { -1 },
        t_connect: if fwd.is_some() { cs.connect_ms } else { -1 },
        t_response: 0,
        t_total: super::logging::ms_between(acc.accept_at, tokio::time::Instant::now()),
        ..Default::default()
    };
    finished(&fe.ctr, Some(be), &f);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_decay_over_the_next_second() {
        let r = Rate::default();
        for _ in 0..10 {
            r.hit_at(5_000);
        }
        assert_eq!(r.read_at(5_999), 10);
        // Half of the next second left: half the previous count.
        assert_eq!(r.read_at(6_500), 5);
        assert_eq!(r.read_at(6_000), 10);
        assert_eq!(r.read_at(7_100), 0);
        assert_eq!(r.hit_at(6_500), 6);
    }

    #[test]
    fn averages_follow_haproxy_swrate() {
        let a = Avg::default();
        for _ in 0..5000 {
            a.add(100);
        }
        let v = a.avg(5000);
        assert!((99..=100).contains(&v), "{v}");
        a.add(1000);
        assert_eq!(a.max(), 1000);
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(101), Some(0));
        assert_eq!(status_class(503), Some(4));
        assert_eq!(status_class(600), Some(5));
        assert_eq!(status_class(0), None);
        assert_eq!(status_class(-1), None);
    }
}
