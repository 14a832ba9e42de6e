//! Syslog message framing per `log ... format <fmt>`, as HAProxy 2.6 sends it.
//!
//! The `syslog` crate is not used here: it has no HAProxy `local` (hostname-less legacy)
//! format, formats RFC 5424 timestamps and structured data its own way, and has no
//! `len`-style truncation of header + message. Framing is a few lines of byte pushing.

use std::io::Write as _;

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

/// Facility names in code order (`kern` = 0 ... `local7` = 23).
pub const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
    "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Level names in code order (`emerg` = 0 ... `debug` = 7).
pub const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Level used for traffic logs.
pub const LEVEL_INFO: u8 = 6;
/// Event levels HAProxy 2.6 uses (measured): `has no server available!` at emerg, server DOWN
/// at alert, `Proxy ... stopped` at warning, server UP at notice.
pub const LEVEL_EMERG: u8 = 0;
pub const LEVEL_ALERT: u8 = 1;
pub const LEVEL_WARNING: u8 = 4;
pub const LEVEL_NOTICE: u8 = 5;
/// Level used for abnormal sessions with `option log-separate-errors`.
pub const LEVEL_ERR: u8 = 3;

pub fn facility_from_name(name: &str) -> Option<u8> {
    FACILITIES.iter().position(|f| *f == name).map(|p| p as u8)
}

pub fn level_from_name(name: &str) -> Option<u8> {
    LEVELS.iter().position(|l| *l == name).map(|p| p as u8)
}

/// `format` of a `log` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogFormat {
    /// `<PRI>Mmm dd HH:MM:SS TAG[PID]: MSG` (no hostname). HAProxy's default.
    Local,
    /// `<PRI>Mmm dd HH:MM:SS HOST TAG[PID]: MSG`. Default when `log-send-hostname` is set.
    Rfc3164,
    /// `<PRI>1 ISO-TIME HOST TAG PID - SD MSG`.
    Rfc5424,
    /// `<PRI>MSG`.
    Priority,
    /// `<LEVEL>MSG`.
    Short,
    /// `<LEVEL>ISO-TIME MSG`.
    Timed,
    /// `ISO-TIME MSG`.
    Iso,
    /// `MSG`.
    Raw,
}

impl SyslogFormat {
    pub fn from_name(name: &str) -> Option<SyslogFormat> {
        Some(match name {
            "local" => SyslogFormat::Local,
            "rfc3164" => SyslogFormat::Rfc3164,
            "rfc5424" => SyslogFormat::Rfc5424,
            "priority" => SyslogFormat::Priority,
            "short" => SyslogFormat::Short,
            "timed" => SyslogFormat::Timed,
            "iso" => SyslogFormat::Iso,
            "raw" => SyslogFormat::Raw,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SyslogFormat::Local => "local",
            SyslogFormat::Rfc3164 => "rfc3164",
            SyslogFormat::Rfc5424 => "rfc5424",
            SyslogFormat::Priority => "priority",
            SyslogFormat::Short => "short",
            SyslogFormat::Timed => "timed",
            SyslogFormat::Iso => "iso",
            SyslogFormat::Raw => "raw",
        }
    }

    /// The format used by a target: its explicit `format`, else `rfc3164` when the global
    /// `log-send-hostname` is set, else `local`.
    pub fn effective(configured: Option<SyslogFormat>, send_hostname: bool) -> SyslogFormat {
        configured.unwrap_or(if send_hostname {
            SyslogFormat::Rfc3164
        } else {
            SyslogFormat::Local
        })
    }
}

/// Default `len`.
pub const DEFAULT_MAX_LEN: usize = 1024;

/// Everything of a datagram that is not the message.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    pub format: SyslogFormat,
    pub facility: u8,
    pub level: u8,
    /// `log-tag` (default: the program name, `haproxy`).
    pub tag: &'a str,
    pub pid: u32,
    /// The `log-send-hostname` value, `None` when not set (rfc3164 then prints
    /// `localhost`, rfc5424 prints `-`).
    pub hostname: Option<&'a str>,
    /// `len`: cap on header + message bytes; the final LF is added after truncation.
    pub max_len: usize,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Mmm dd HH:MM:SS` with the day padded with a space.
fn put_legacy_date(out: &mut Vec<u8>, t: &DateTime<FixedOffset>) {
    let _ = write!(
        out,
        "{} {:2} {:02}:{:02}:{:02}",
        MONTHS[t.month0() as usize],
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
}

/// `YYYY-MM-DDTHH:MM:SS.uuuuuu+hh:mm`.
fn put_iso_date(out: &mut Vec<u8>, t: &DateTime<FixedOffset>) {
    let off = t.offset().local_minus_utc();
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.abs();
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_micros().min(999_999),
        sign,
        off / 3600,
        (off / 60) % 60
    );
}

/// Append one complete datagram (header, message, LF) to `out`.
/// `sd` is the rendered `log-format-sd` (used by rfc5424 only; empty prints `-`).
/// `now` is the local time of emission.
pub fn frame(out: &mut Vec<u8>, h: &Header, now: &DateTime<FixedOffset>, sd: &[u8], msg: &[u8]) {
    let start = out.len();
    let pri = h.facility as u32 * 8 + h.level as u32;
    match h.format {
        SyslogFormat::Local | SyslogFormat::Rfc3164 => {
            let _ = write!(out, "<{pri}>");
            put_legacy_date(out, now);
            out.push(b' ');
            if h.format == SyslogFormat::Rfc3164 {
                out.extend_from_slice(h.hostname.unwrap_or("localhost").as_bytes());
                out.push(b' ');
            }
            let _ = write!(out, "{}[{}]: ", h.tag, h.pid);
        }
        SyslogFormat::Rfc5424 => {
            let _ = write!(out, "<{pri}>1 ");
            put_iso_date(out, now);
            let host = h.hostname.filter(|s| !s.is_empty()).unwrap_or("-");
            let tag = if h.tag.is_empty() { "-" } else { h.tag };
            let _ = write!(out, " {host} {tag} {} - ", h.pid);
            if sd.is_empty() {
                out.extend_from_slice(b"- ");
            } else {
                out.extend_from_slice(sd);
                if sd.last() != Some(&b' ') {
                    out.push(b' ');
                }
            }
        }
        SyslogFormat::Priority => {
            let _ = write!(out, "<{pri}>");
        }
        SyslogFormat::Short => {
            let _ = write!(out, "<{}>", h.level);
        }
        SyslogFormat::Timed => {
            let _ = write!(out, "<{}>", h.level);
            put_iso_date(out, now);
            out.push(b' ');
        }
        SyslogFormat::Iso => {
            put_iso_date(out, now);
            out.push(b' ');
        }
        SyslogFormat::Raw => {}
    }
    let mut m = msg;
    while let Some((&last, rest)) = m.split_last() {
        if last == b'\n' || last == b'\0' {
            m = rest;
        } else {
            break;
        }
    }
    out.extend_from_slice(m);
    if out.len() - start > h.max_len {
        out.truncate(start + h.max_len);
    }
    out.push(b'\n');
}

/// The system host name, as `log-send-hostname` without argument and `%H` use it.
pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Local time now, as used by [`frame`].
pub fn now_local() -> DateTime<FixedOffset> {
    chrono::Local::now().fixed_offset()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t() -> DateTime<FixedOffset> {
        FixedOffset::east_opt(0)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 26, 14, 44, 37)
            .unwrap()
            + chrono::Duration::microseconds(347_674)
    }

    fn h(format: SyslogFormat) -> Header<'static> {
        Header {
            format,
            facility: 16,
            level: 6,
            tag: "hap",
            pid: 8618,
            hostname: None,
            max_len: DEFAULT_MAX_LEN,
        }
    }

    fn f(h: &Header, sd: &[u8], msg: &str) -> String {
        let mut v = Vec::new();
        frame(&mut v, h, &t(), sd, msg.as_bytes());
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn every_format_frames_like_haproxy() {
        use SyslogFormat::*;
        let cases = [
            (Local, "<134>Nov 26 14:44:37 hap[8618]: MSG\n"),
            (Rfc3164, "<134>Nov 26 14:44:37 localhost hap[8618]: MSG\n"),
            (
                Rfc5424,
                "<134>1 2026-11-26T14:44:37.347674+00:00 - hap 8618 - - MSG\n",
            ),
            (Priority, "<134>MSG\n"),
            (Short, "<6>MSG\n"),
            (Timed, "<6>2026-11-26T14:44:37.347674+00:00 MSG\n"),
            (Iso, "2026-11-26T14:44:37.347674+00:00 MSG\n"),
            (Raw, "MSG\n"),
        ];
        for (fmt, want) in cases {
            assert_eq!(f(&h(fmt), b"- ", "MSG"), want, "{fmt:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for n in [
            "local", "rfc3164", "rfc5424", "priority", "short", "timed", "iso", "raw",
        ] {
            assert_eq!(SyslogFormat::from_name(n).unwrap().name(), n);
        }
        assert_eq!(SyslogFormat::from_name("RFC5424"), None);
        assert_eq!(facility_from_name("local0"), Some(16));
        assert_eq!(facility_from_name("local7"), Some(23));
        assert_eq!(facility_from_name("cron2"), Some(15));
        assert_eq!(level_from_name("info"), Some(6));
        assert_eq!(level_from_name("INFO"), None);
    }

    #[test]
    fn default_format_follows_send_hostname() {
        assert_eq!(SyslogFormat::effective(None, false), SyslogFormat::Local);
        assert_eq!(SyslogFormat::effective(None, true), SyslogFormat::Rfc3164);
        assert_eq!(
            SyslogFormat::effective(Some(SyslogFormat::Local), true),
            SyslogFormat::Local
        );
    }

    #[test]
    fn hostname_and_sd() {
        let mut hh = h(SyslogFormat::Rfc3164);
        hh.hostname = Some("myhost");
        hh.facility = 18;
        hh.tag = "haproxy";
        hh.pid = 9720;
        assert_eq!(
            f(&hh, b"", "x"),
            "<150>Nov 26 14:44:37 myhost haproxy[9720]: x\n"
        );
        let mut hh = h(SyslogFormat::Rfc5424);
        hh.facility = 19;
        assert_eq!(
            f(
                &hh,
                b"[exampleSDID@1234 ip=\"127.0.0.1\"]",
                "127.0.0.1 GET /sd HTTP/1.1"
            ),
            "<158>1 2026-11-26T14:44:37.347674+00:00 - hap 8618 - [exampleSDID@1234 ip=\"127.0.0.1\"] 127.0.0.1 GET /sd HTTP/1.1\n"
        );
        hh.hostname = Some("myhost");
        assert_eq!(
            f(&hh, b"[b] ", "m"),
            "<158>1 2026-11-26T14:44:37.347674+00:00 myhost hap 8618 - [b] m\n"
        );
        assert_eq!(
            f(&hh, b"-", "m"),
            "<158>1 2026-11-26T14:44:37.347674+00:00 myhost hap 8618 - - m\n"
        );
    }

    #[test]
    fn day_is_space_padded_and_offset_printed() {
        let t = FixedOffset::east_opt(3600 + 1800)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 6, 4, 5, 6)
            .unwrap();
        let mut v = Vec::new();
        frame(&mut v, &h(SyslogFormat::Local), &t, b"", b"m");
        assert_eq!(v, b"<134>Nov  6 04:05:06 hap[8618]: m\n");
        v.clear();
        frame(&mut v, &h(SyslogFormat::Iso), &t, b"", b"m");
        assert_eq!(v, b"2026-11-06T04:05:06.000000+01:30 m\n");
        let t = FixedOffset::west_opt(5 * 3600)
            .unwrap()
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .unwrap();
        v.clear();
        frame(&mut v, &h(SyslogFormat::Iso), &t, b"", b"m");
        assert_eq!(v, b"2026-01-02T03:04:05.000000-05:00 m\n");
    }

    #[test]
    fn len_truncates_header_plus_message_then_adds_lf() {
        // Captured from HAProxy 2.6.12: `len 80 format rfc5424` / `len 80 format rfc3164`.
        let t = FixedOffset::east_opt(0)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 26, 17, 1, 21)
            .unwrap()
            + chrono::Duration::microseconds(547_819);
        let msg = "127.0.0.1 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";
        let mut hh = Header {
            format: SyslogFormat::Rfc5424,
            facility: 16,
            level: 6,
            tag: "haproxy",
            pid: 17635,
            hostname: Some("myhost"),
            max_len: 80,
        };
        let mut v = Vec::new();
        frame(&mut v, &hh, &t, b"[a]", msg.as_bytes());
        assert_eq!(
            v,
            b"<134>1 2026-11-26T17:01:21.547819+00:00 myhost haproxy 17635 - [a] 127.0.0.1 012\n"
        );
        assert_eq!(v.len(), 81);
        hh.format = SyslogFormat::Rfc3164;
        hh.facility = 17;
        v.clear();
        frame(&mut v, &hh, &t, b"", msg.as_bytes());
        assert_eq!(
            v,
            b"<142>Nov 26 17:01:21 myhost haproxy[17635]: 127.0.0.1 01234567890123456789012345\n"
        );
        // no truncation below the limit
        hh.max_len = 1024;
        v.clear();
        frame(&mut v, &hh, &t, b"", msg.as_bytes());
        assert!(v.ends_with(b"789\n"));
    }

    #[test]
    fn trailing_lf_and_nul_are_stripped() {
        let mut v = Vec::new();
        frame(&mut v, &h(SyslogFormat::Raw), &t(), b"", b"abc\n\0\n");
        assert_eq!(v, b"abc\n");
        v.clear();
        frame(&mut v, &h(SyslogFormat::Raw), &t(), b"", b"");
        assert_eq!(v, b"\n");
    }
}
