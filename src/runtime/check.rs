//! Health checks: the check loop, health counter and state changes (including the stopping
//! state of `http-check disable-on-404`). What one check does (connect, `tcp-check` /
//! `http-check` rules, `option httpchk` and the protocol checks) is in [`super::check_rules`].
//!
//! Server health follows HAProxy's counter: it runs from 0 to `rise + fall - 1`, the server is up
//! while it is at least `rise`. A server starts up with the counter at `rise`, so the first failed
//! check takes it down; once up after `rise` successes, it takes `fall` failures. The interval is
//! `inter` when stable, `fastinter` while changing, `downinter` when down.
//!
//! State changes update the balancer and print HAProxy's messages on stderr (as warnings, plus
//! the `has no server available!` alert), and send them to the backend's log targets at
//! HAProxy's levels (DOWN alert, UP notice, no server emerg).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::Shared;
use super::backend::Backend;
use super::logging;
use crate::config::ir::Cap;
use crate::log::syslog;

pub use super::check_rules::Outcome;

pub fn start_all(shared: &Arc<Shared>) {
    for be in &shared.backends {
        let n = be
            .servers
            .iter()
            .filter(|s| s.check.is_some())
            .count()
            .max(1) as u32;
        let mut k = 0u32;
        for (i, s) in be.servers.iter().enumerate() {
            if let Some(cp) = &s.check {
                // Spread the first checks over the interval, as HAProxy does.
                let first = cp.inter * k / n;
                k += 1;
                tokio::spawn(check_loop(Arc::clone(be), i, first));
            }
        }
    }
}

async fn check_loop(be: Arc<Backend>, i: usize, first: Duration) {
    let srv = &be.servers[i];
    let cp = srv.check.clone().expect("checked server");
    let full = cp.rise + cp.fall - 1;
    let mut health = cp.rise;
    let log_checks = be.proxy.option("log-health-checks");
    // The previous check's status (none before the first check, which is always reported).
    let mut prev_kind: Option<crate::config::ir::CheckStatus> = None;
    tokio::time::sleep(first).await;
    loop {
        if super::admin::check_paused(&be, i, &mut health) {
            tokio::time::sleep(cp.inter).await;
            continue;
        }
        let start = Instant::now();
        let outcome = run_check(&be, i).await;
        let took = start.elapsed().as_millis();
        if be.servers[i].admin.in_maint() {
            continue;
        }
        let was_up = srv.up.load(Ordering::Acquire);
        let (h, up) = next_health(health, outcome.ok(), cp.rise, cp.fall);
        if log_checks && (prev_kind != Some(outcome.kind()) || h != health) {
            log_check(&be, i, &outcome, took, h, cp.rise, cp.fall);
        }
        prev_kind = Some(outcome.kind());
        health = h;
        if up != was_up {
            set_state(&be, i, up, &outcome, took);
        } else if up {
            // `http-check disable-on-404`: a conditional pass stops the server, a pass
            // brings it back.
            let cond = outcome.st == crate::config::ir::CheckStatus::L7OkC;
            let stopping = srv.admin.stopping.load(Ordering::Acquire);
            if cond && !stopping {
                set_stopping(&be, i, true, &outcome, took);
            } else if stopping && !cond && outcome.ok() {
                set_stopping(&be, i, false, &outcome, took);
            }
        }
        super::admin::record_check(&be, i, &outcome, took, health);
        let wait = if health == 0 {
            cp.downinter
        } else if health < full {
            cp.fastinter
        } else {
            cp.inter
        };
        tokio::time::sleep(wait).await;
    }
}

/// One check result applied to the health counter: the new counter and whether the
/// server is up (counter at least `rise`).
pub fn next_health(health: u32, ok: bool, rise: u32, fall: u32) -> (u32, bool) {
    let full = rise + fall - 1;
    let h = if ok {
        if health < full {
            let h = health + 1;
            if h >= rise { full } else { h }
        } else {
            health
        }
    } else if health > rise {
        health - 1
    } else {
        0
    };
    (h, h >= rise)
}

/// `option log-health-checks`: a check whose status or health counter changed, as HAProxy
/// 2.6 reports it (warning on stderr, notice to the logs).
fn log_check(be: &Backend, i: usize, o: &Outcome, took: u128, health: u32, rise: u32, fall: u32) {
    let srv = &be.servers[i];
    let (n, d, st) = if health >= rise {
        let weight = srv.admin.uweight.load(Ordering::Acquire);
        (
            health - rise + 1,
            fall,
            if weight > 0 { "UP" } else { "DRAIN" },
        )
    } else {
        (health, rise, "DOWN")
    };
    let text = format!(
        "Health check for {}server {}/{} {}, reason: {}, check duration: {took}ms, status: {n}/{d} {st}.",
        if srv.backup { "backup " } else { "" },
        be.name,
        srv.name,
        if o.ok() { "succeeded" } else { "failed" },
        o.reason()
    );
    eprintln!("[WARNING]  ({}) : {text}", std::process::id());
    logging::event(&be.name, syslog::LEVEL_NOTICE, &text);
}

/// The `, reason: ..., check duration: Nms` part of a state change message; empty with
/// `option log-health-checks`, which reported it in the check's own line.
fn change_reason(be: &Backend, outcome: &Outcome, took: u128) -> String {
    if be.proxy.option("log-health-checks") {
        String::new()
    } else {
        format!(", reason: {}, check duration: {took}ms", outcome.reason())
    }
}

fn set_state(be: &Backend, i: usize, up: bool, outcome: &Outcome, took: u128) {
    let srv = &be.servers[i];
    // A stopping server is no longer counted among the servers online.
    let was_stopping = srv.admin.stopping.swap(false, Ordering::AcqRel);
    srv.up.store(up, Ordering::Release);
    super::admin::state_changed(be, i, up);
    let counter = if srv.backup {
        &be.backup_up
    } else {
        &be.active_up
    };
    if up {
        counter.fetch_add(1, Ordering::AcqRel);
    } else if !was_stopping {
        counter.fetch_sub(1, Ordering::AcqRel);
    }
    let act = be.active_up.load(Ordering::Acquire);
    let bck = be.backup_up.load(Ordering::Acquire);
    let queued: usize = be
        .servers
        .iter()
        .map(|s| s.queued.load(Ordering::Relaxed))
        .sum();
    let prefix = if srv.backup {
        "Backup Server"
    } else {
        "Server"
    };
    let pid = std::process::id();
    // HAProxy adds this whenever only backup servers are left up.
    let on_backup = if act == 0 && bck > 0 {
        " Running on backup."
    } else {
        ""
    };
    if up {
        let text = format!(
            "{prefix} {}/{} is UP{}. {act} active and {bck} backup servers online.{on_backup} 0 sessions requeued, {queued} total in queue.",
            be.name,
            srv.name,
            change_reason(be, outcome, took)
        );
        eprintln!("[WARNING]  ({pid}) : {text}");
        logging::event(&be.name, syslog::LEVEL_NOTICE, &text);
        be.wake_queue();
    } else {
        let text = format!(
            "{prefix} {}/{} is DOWN{}. {act} active and {bck} backup servers left.{on_backup} {} sessions active, 0 requeued, {} remaining in queue.",
            be.name,
            srv.name,
            change_reason(be, outcome, took),
            be.lb.served(i),
            srv.queued.load(Ordering::Relaxed)
        );
        eprintln!("[WARNING]  ({pid}) : {text}");
        logging::event(&be.name, syslog::LEVEL_ALERT, &text);
        if act == 0 && bck == 0 {
            no_server_alert(be);
        }
        // `on-marked-down shutdown-sessions`: the sessions still on it end now.
        if be
            .proxy
            .servers
            .get(i)
            .is_some_and(|s| s.params.on_marked_down_shutdown)
        {
            super::admin::shutdown_server_sessions(&be.name, srv);
        }
    }
}

/// `backend 'x' has no server available!` on stderr and in the logs.
fn no_server_alert(be: &Backend) {
    let pid = std::process::id();
    // `proxy` for a listen section, `backend` otherwise (HAProxy's proxy type).
    let kind = if be.proxy.cap().contains(Cap::FE) {
        "proxy"
    } else {
        "backend"
    };
    eprintln!(
        "[ALERT]    ({pid}) : {kind} '{}' has no server available!",
        be.name
    );
    // The log line has no quotes around the name, unlike the stderr alert.
    logging::event(
        &be.name,
        syslog::LEVEL_EMERG,
        &format!("{kind} {} has no server available!", be.name),
    );
}

/// An up server enters (`on`) or leaves the stopping state of `http-check disable-on-404`,
/// with HAProxy's messages.
fn set_stopping(be: &Backend, i: usize, on: bool, outcome: &Outcome, took: u128) {
    let srv = &be.servers[i];
    srv.admin.stopping.store(on, Ordering::Release);
    super::admin::sync_lb(be, i);
    let counter = if srv.backup {
        &be.backup_up
    } else {
        &be.active_up
    };
    if on {
        counter.fetch_sub(1, Ordering::AcqRel);
    } else {
        counter.fetch_add(1, Ordering::AcqRel);
    }
    let act = be.active_up.load(Ordering::Acquire);
    let bck = be.backup_up.load(Ordering::Acquire);
    let queued: usize = be
        .servers
        .iter()
        .map(|s| s.queued.load(Ordering::Relaxed))
        .sum();
    let prefix = if srv.backup {
        "Backup Server"
    } else {
        "Server"
    };
    let on_backup = if act == 0 && bck > 0 {
        " Running on backup."
    } else {
        ""
    };
    let text = format!(
        "{prefix} {}/{} is {}, reason: {}, check duration: {took}ms. {act} active and {bck} backup servers online.{on_backup} 0 sessions requeued, {queued} total in queue.",
        be.name,
        srv.name,
        if on { "stopping" } else { "UP" },
        outcome.reason()
    );
    eprintln!("[WARNING]  ({}) : {text}", std::process::id());
    logging::event(&be.name, syslog::LEVEL_NOTICE, &text);
    if on && act == 0 && bck == 0 {
        no_server_alert(be);
    }
    if !on {
        be.wake_queue();
    }
}

/// SIGHUP: the state of every server, as warnings.
pub fn dump_states(shared: &Shared) {
    let pid = std::process::id();
    for be in &shared.backends {
        for (i, s) in be.servers.iter().enumerate() {
            let st = if s.admin.in_maint() {
                "DOWN for maintenance"
            } else if s.up.load(Ordering::Acquire) {
                "UP"
            } else {
                "DOWN"
            };
            eprintln!(
                "[WARNING]  ({pid}) : SIGHUP: Server {}/{} is {st}. Conn: {} act, {} pend, {} tot.",
                be.name,
                s.name,
                be.lb.served(i),
                s.queued.load(Ordering::Relaxed),
                s.cum_conns.load(Ordering::Relaxed)
            );
        }
    }
}

async fn run_check(be: &Backend, i: usize) -> Outcome {
    match super::check_rules::target(be, i) {
        Some(t) => super::check_rules::run(&be.check_plan, &t).await,
        None => Outcome::new(crate::config::ir::CheckStatus::L4Con, 0, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::next_health;

    fn run(start: u32, rise: u32, fall: u32, results: &[bool]) -> Vec<bool> {
        let mut h = start;
        results
            .iter()
            .map(|&ok| {
                let (n, up) = next_health(h, ok, rise, fall);
                h = n;
                up
            })
            .collect()
    }

    #[test]
    fn starts_up_and_falls_at_the_first_failure() {
        // rise 2 fall 3: the counter starts at rise, so one failure takes the server down.
        assert_eq!(run(2, 2, 3, &[false]), [false]);
    }

    #[test]
    fn up_after_rise_then_down_after_fall() {
        let r = run(0, 2, 3, &[true, true, false, false, false, true, true]);
        assert_eq!(r, [false, true, true, true, false, false, true]);
    }

    #[test]
    fn a_success_in_between_restores_full_health() {
        let r = run(4, 2, 3, &[false, false, true, false, false, false]);
        assert_eq!(r, [true, true, true, true, true, false]);
    }
}
