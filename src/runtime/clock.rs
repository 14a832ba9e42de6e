//! One clock read per wake-up of a session, as HAProxy's `now_ms` is one read per poll loop.
//!
//! A `Connection: close` transaction took about a dozen timestamps (accept, head read, queue,
//! connect, request sent, response head, end, and the deadlines of its reads and writes), each
//! a `clock_gettime`: about 1.4 % of the proxy's CPU under that load. A session's poll is short
//! (its I/O never blocks), so the time read when the poll starts stands for every timestamp the
//! poll takes: log timings keep their millisecond resolution. Outside a [`Frozen`] scope,
//! [`now`] reads the clock.

use std::cell::Cell;

use tokio::time::Instant;

thread_local! {
    static NOW: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The time read when the current poll started (see [`freeze`]), else the clock.
#[inline]
pub fn now() -> Instant {
    NOW.with(Cell::get).unwrap_or_else(Instant::now)
}

/// Reads the clock once for the scope of the returned guard: [`now`] gives that time until
/// the guard is dropped (scopes nest; the outer time comes back).
#[must_use]
pub fn freeze() -> Frozen {
    Frozen(NOW.with(|n| n.replace(Some(Instant::now()))))
}

/// The scope of a [`freeze`].
pub struct Frozen(Option<Instant>);

impl Drop for Frozen {
    fn drop(&mut self) {
        NOW.with(|n| n.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn frozen_inside_the_scope_only() {
        let outer = freeze();
        let t0 = now();
        tokio::time::advance(Duration::from_millis(5)).await;
        assert_eq!(now(), t0, "the scope keeps the time it read");
        {
            let _inner = freeze();
            assert_eq!(now(), t0 + Duration::from_millis(5));
        }
        assert_eq!(now(), t0, "the outer scope's time comes back");
        drop(outer);
        tokio::time::advance(Duration::from_millis(3)).await;
        assert_eq!(now(), t0 + Duration::from_millis(8), "no scope: the clock");
    }
}
