//! The process's sockets against `maxsock`, for HAProxy 2.6's limits on idle server
//! connections: `tune.pool-low-fd-ratio` (default 20 %: above it a server connection whose
//! response is done is kept idle only as the first of its thread's pool) and
//! `tune.pool-high-fd-ratio` (default 25 %: at it none is kept, and above it each request
//! that needs a server connection first closes an idle one of its server).
//!
//! `maxsock` is HAProxy's (`show info`): two sockets per `maxconn`, one per listener (`bind`
//! address and `stats socket`) and per checked server, three per thread and 20 more
//! (measured against HAProxy 2.6.12's `Maxsock` with 1 and 2 threads, 1 and 2 binds, 0 and 2
//! checks, `maxconn` 20 and 100). The sockets in use count the listeners, the client and
//! the server connections, and what HAProxy registers besides them: two more at `nbthread 1`
//! (measured: the `runtime_reuse` scenario "fd ratios" finds HAProxy's limits at the same
//! connection counts with them).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

static SERVER_FDS: AtomicUsize = AtomicUsize::new(0);
/// Listeners and the fixed sockets.
static BASE: AtomicUsize = AtomicUsize::new(0);
static LOW: AtomicUsize = AtomicUsize::new(usize::MAX);
static HIGH: AtomicUsize = AtomicUsize::new(usize::MAX);
static MAXSOCK: AtomicUsize = AtomicUsize::new(0);

/// The sizes `maxsock` is made of.
pub struct Sizing {
    pub maxconn: usize,
    pub listeners: usize,
    pub checks: usize,
    pub threads: usize,
    /// Percentages (HAProxy's defaults 20 and 25).
    pub low_ratio: u32,
    pub high_ratio: u32,
}

impl Sizing {
    /// The sockets of `maxsock` that do not depend on `maxconn`.
    pub fn fixed(&self) -> usize {
        self.listeners + self.checks + 3 * self.threads + 20
    }
}

/// `(maxsock, low count, high count)`.
fn limits(s: &Sizing) -> (usize, usize, usize) {
    let maxsock = 2 * s.maxconn + s.fixed();
    // HAProxy rounds the counts up.
    let count = |ratio: u32| (maxsock * ratio as usize).div_ceil(100);
    (maxsock, count(s.low_ratio), count(s.high_ratio))
}

/// Sets `maxsock` and the limits; once, before the listeners accept.
pub fn init(s: &Sizing) {
    let (maxsock, low, high) = limits(s);
    MAXSOCK.store(maxsock, Relaxed);
    LOW.store(low, Relaxed);
    HIGH.store(high, Relaxed);
    BASE.store(s.listeners + s.threads + 1, Relaxed);
}

/// HAProxy's `Maxsock`.
pub fn maxsock() -> usize {
    MAXSOCK.load(Relaxed)
}

/// Sockets in use now.
pub fn used() -> usize {
    BASE.load(Relaxed) + super::ACTCONN.load(Relaxed) + SERVER_FDS.load(Relaxed)
}

/// At or above `tune.pool-low-fd-ratio`.
pub fn low_reached() -> bool {
    used() >= LOW.load(Relaxed)
}

/// At or above `tune.pool-high-fd-ratio`: no connection enters an idle pool.
pub fn high_reached() -> bool {
    used() >= HIGH.load(Relaxed)
}

/// Above `tune.pool-high-fd-ratio`: a request that needs a server connection closes an idle
/// one first.
pub fn above_high() -> bool {
    used() > HIGH.load(Relaxed)
}

/// Counts an open server connection's socket until dropped.
pub struct ServerFd(());

impl ServerFd {
    #[allow(clippy::new_without_default)] // a count, not a default value
    pub fn new() -> ServerFd {
        SERVER_FDS.fetch_add(1, Relaxed);
        ServerFd(())
    }
}

impl Drop for ServerFd {
    fn drop(&mut self) {
        SERVER_FDS.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxsock_and_limits_as_haproxy() {
        let sizing = |maxconn, threads, checks| Sizing {
            maxconn,
            listeners: 2,
            checks,
            threads,
            low_ratio: 20,
            high_ratio: 25,
        };
        // HAProxy 2.6.12, `maxconn 20`, one bind, one stats socket, `nbthread 1`: Maxsock 65.
        assert_eq!(limits(&sizing(20, 1, 0)), (65, 13, 17));
        // `nbthread 2`: 68; `maxconn 100`: 225; two checked servers: 67.
        assert_eq!(limits(&sizing(20, 2, 0)).0, 68);
        assert_eq!(limits(&sizing(100, 1, 0)).0, 225);
        assert_eq!(limits(&sizing(20, 1, 2)).0, 67);
    }
}
