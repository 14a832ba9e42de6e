//! Whether and at which level a finished session is logged: `option dontlognull`,
//! `option dontlog-normal`, `option log-separate-errors`.
//!
//! Measured on HAProxy 2.6.12 (HTTP frontend with all three options, and with only
//! `log-separate-errors`):
//!
//! | session                                   | ts     | level  | logged with dontlog-normal |
//! |-------------------------------------------|--------|--------|----------------------------|
//! | 200                                       | `----` | info   | no                         |
//! | 404 from the server                       | `----` | info   | no                         |
//! | 500 from the server                       | `----` | err    | yes                        |
//! | 403 by `http-request return`              | `LR--` | info   | no                         |
//! | 503, server down, 1 retry                 | `SC--` | err    | yes                        |
//! | garbage request, 400                      | `PR--` | err    | yes                        |
//! | connection closed without any byte        | `CR--` | err    | yes (no with dontlognull)  |
//! | TCP session without any byte (dontlognull)| –      | –      | not logged                 |
//!
//! An abnormal session ("error") is: redispatched, or a termination cause other than `-` and
//! `L`, or retries on an otherwise normal session, or an HTTP status >= 500. (The
//! redispatch and retry-then-success cases follow HAProxy's documentation; they were not
//! reproduced live.)

use super::record::LogRecord;
use super::syslog::{LEVEL_ERR, LEVEL_INFO};

/// The proxy options that decide about traffic logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// `option dontlognull`
    pub dontlognull: bool,
    /// `option dontlog-normal`
    pub dontlog_normal: bool,
    /// `option log-separate-errors`
    pub log_separate_errors: bool,
}

/// Whether the session is abnormal in the sense of `dontlog-normal` / `log-separate-errors`.
pub fn is_error_session(r: &LogRecord, http: bool) -> bool {
    let cause = r.term_state[0];
    r.redispatched
        || !matches!(cause, b'-' | b'L')
        || (cause == b'-' && r.retries > 0)
        || (http && r.status >= 500)
}

/// The syslog level the session is logged at, or `None` when it must not be logged.
/// `null_session` means the client never sent a single byte (TCP: nothing received; HTTP:
/// the connection closed before any byte arrived).
pub fn session_log_level(
    r: &LogRecord,
    http: bool,
    opts: &LogOptions,
    null_session: bool,
) -> Option<u8> {
    if opts.dontlognull && null_session {
        return None;
    }
    let err = is_error_session(r, http);
    if opts.dontlog_normal && !err {
        return None;
    }
    Some(if err && opts.log_separate_errors {
        LEVEL_ERR
    } else {
        LEVEL_INFO
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: i32, ts: &[u8; 4], retries: u32) -> LogRecord {
        LogRecord {
            status,
            term_state: *ts,
            retries,
            ..LogRecord::default()
        }
    }

    #[test]
    fn measured_table() {
        let all = LogOptions {
            dontlognull: true,
            dontlog_normal: true,
            log_separate_errors: true,
        };
        let sep = LogOptions {
            log_separate_errors: true,
            ..LogOptions::default()
        };
        // (record, null session, with all options, with log-separate-errors only)
        let cases = [
            (rec(200, b"----", 0), false, None, Some(6)),
            (rec(404, b"----", 0), false, None, Some(6)),
            (rec(500, b"----", 0), false, Some(3), Some(3)),
            (rec(403, b"LR--", 0), false, None, Some(6)),
            (rec(503, b"SC--", 1), false, Some(3), Some(3)),
            (rec(400, b"PR--", 0), false, Some(3), Some(3)),
            (rec(400, b"CR--", 0), true, None, Some(3)),
        ];
        for (r, null, want_all, want_sep) in cases {
            assert_eq!(session_log_level(&r, true, &all, null), want_all, "{r:?}");
            assert_eq!(session_log_level(&r, true, &sep, null), want_sep, "{r:?}");
        }
        // TCP
        let tcp_null = LogOptions {
            dontlognull: true,
            log_separate_errors: true,
            ..LogOptions::default()
        };
        assert_eq!(
            session_log_level(&rec(0, b"----", 0), false, &tcp_null, true),
            None
        );
        assert_eq!(
            session_log_level(&rec(0, b"----", 0), false, &tcp_null, false),
            Some(6)
        );
        // defaults: everything at info
        assert_eq!(
            session_log_level(&rec(503, b"SC--", 1), true, &LogOptions::default(), false),
            Some(6)
        );
        // a TCP status never makes an error
        assert!(!is_error_session(&rec(500, b"----", 0), false));
        let mut r = rec(200, b"----", 0);
        r.redispatched = true;
        assert!(is_error_session(&r, true));
    }
}
