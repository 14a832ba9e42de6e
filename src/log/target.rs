//! The `log` directive:
//! `log <target> [len <N>] [format <fmt>] [sample <ranges>:<size>] <facility> [<level> [<minlevel>]]`
//! and `log global` in proxies. Error texts are HAProxy 2.6.12's (the part after
//! `parsing [file:line] : `), measured with `haproxy -c`.
//!
//! Some HAProxy address errors end with a newline (the alert is then followed by an empty
//! line); the returned strings keep it so that the config parser prints them unchanged.

use crate::config::values::atoi;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use super::syslog::{DEFAULT_MAX_LEN, SyslogFormat, facility_from_name, level_from_name};

/// Default syslog port.
pub const DEFAULT_PORT: u16 = 514;

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogAddr {
    /// `log global` in a proxy: use the global section's targets.
    Global,
    /// UDP syslog server (`IP[:port]`, `[IPv6]:port`, `udp@`, `udp4@`, `udp6@`, `ipv4@`, `ipv6@`).
    Udp(SocketAddr),
    /// Unix datagram socket (`/dev/log`, `unix@path`).
    Unix(PathBuf),
    /// Abstract unix datagram socket (`abns@name`).
    Abns(String),
    /// File descriptor (`fd@N`, `stdout` = 1, `stderr` = 2).
    Fd(i32),
    /// `ring@NAME`.
    Ring(String),
    /// Stream target (`tcp@...`, `tcp4@`, `tcp6@`), which HAProxy serves through an implicit ring.
    Stream(SocketAddr),
}

/// `sample <ranges>:<size>`: of every `size` consecutive lines, send only those whose
/// 1-based position is in one of the inclusive `ranges`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSample {
    pub ranges: Vec<(u32, u32)>,
    pub size: u32,
}

impl LogSample {
    /// Whether the line numbered `counter` (0-based, counted per target) is sent.
    pub fn selects(&self, counter: u64) -> bool {
        let pos = (counter % self.size as u64) as u32 + 1;
        self.ranges.iter().any(|&(lo, hi)| lo <= pos && pos <= hi)
    }
}

/// One parsed `log` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub addr: LogAddr,
    /// `len` (default 1024).
    pub max_len: usize,
    /// Explicit `format`; `None` = default (see [`SyslogFormat::effective`]).
    pub format: Option<SyslogFormat>,
    pub sample: Option<LogSample>,
    /// Facility code (0..=23).
    pub facility: u8,
    /// Only messages at least this severe (numerically <=) are sent (default debug = 7).
    pub level: u8,
    /// More severe messages are lowered to this level (default emerg = 0).
    pub min_level: u8,
}

impl LogTarget {
    fn global() -> LogTarget {
        LogTarget {
            addr: LogAddr::Global,
            max_len: DEFAULT_MAX_LEN,
            format: None,
            sample: None,
            facility: 0,
            level: 7,
            min_level: 0,
        }
    }

    /// The level a message of `level` is sent with, or `None` if the target filters it out.
    pub fn effective_level(&self, level: u8) -> Option<u8> {
        if level > self.level {
            None
        } else {
            Some(level.max(self.min_level))
        }
    }
}

/// Parse the words after `log` in a proxy section (`defaults`, `frontend`, `listen`,
/// `backend`); `log global` gives a target with [`LogAddr::Global`].
pub fn parse_log_args(args: &[&str]) -> Result<LogTarget, String> {
    parse(args, false)
}

/// Parse the words after `log` in the `global` section.
pub fn parse_global_log_args(args: &[&str]) -> Result<LogTarget, String> {
    parse(args, true)
}

fn parse(args: &[&str], in_global: bool) -> Result<LogTarget, String> {
    if args.first() == Some(&"global") && args.len() == 1 {
        if in_global {
            return Err("log : 'global' is not supported for a global syslog server".into());
        }
        return Ok(LogTarget::global());
    }
    if args.len() < 2 {
        return Err(if in_global {
            "log : expects <address> and <facility>  as arguments".into()
        } else {
            "log : expects <address> and <facility> or global as arguments".into()
        });
    }
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    let mut i = 1;
    let mut max_len = DEFAULT_MAX_LEN;
    let mut format = None;
    let mut sample = None;
    if arg(i) == "len" {
        let v = atoi(arg(i + 1));
        if !(80..=65535).contains(&v) {
            return Err(format!(
                "log : invalid log length '{}', must be between 80 and 65535",
                arg(i + 1)
            ));
        }
        max_len = v as usize;
        i += 2;
    }
    if arg(i) == "format" {
        format = Some(
            SyslogFormat::from_name(arg(i + 1))
                .ok_or_else(|| format!("log : unknown log format '{}'", arg(i + 1)))?,
        );
        i += 2;
    }
    if arg(i) == "sample" {
        sample = Some(parse_sample(arg(i + 1))?);
        i += 2;
    }
    let facility = facility_from_name(arg(i))
        .ok_or_else(|| format!("log : unknown log facility '{}'", arg(i)))?;
    i += 1;
    let mut level = 7;
    let mut min_level = 0;
    if i < args.len() {
        level = level_from_name(arg(i))
            .ok_or_else(|| format!("log : unknown optional log level '{}'", arg(i)))?;
        i += 1;
        if i < args.len() {
            min_level = level_from_name(arg(i))
                .ok_or_else(|| format!("log : unknown optional minimum log level '{}'", arg(i)))?;
            i += 1;
        }
    }
    if i < args.len() {
        return Err(format!(
            "log : cannot handle unexpected argument '{}'",
            arg(i)
        ));
    }
    let addr = parse_addr(args[0])?;
    Ok(LogTarget {
        addr,
        max_len,
        format,
        sample,
        facility,
        level,
        min_level,
    })
}

fn parse_sample(spec: &str) -> Result<LogSample, String> {
    let Some((ranges_s, size_s)) = spec.split_once(':') else {
        return Err("log : Missing sample size".into());
    };
    let mut ranges = Vec::new();
    let mut rest = ranges_s;
    while !rest.is_empty() {
        let (item, next) = match rest.find(',') {
            Some(p) => (&rest[..p], &rest[p + 1..]),
            None => (rest, ""),
        };
        let parse_n = |s: &str| -> Option<u32> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            s.parse::<u32>().ok().filter(|n| *n >= 1)
        };
        let r = match item.split_once('-') {
            Some((lo, hi)) => match (parse_n(lo), parse_n(hi)) {
                (Some(lo), Some(hi)) if hi >= lo => Some((lo, hi)),
                _ => None,
            },
            None => parse_n(item).map(|n| (n, n)),
        };
        let Some(r) = r else {
            return Err(format!("log : wrong sample range '{rest}'"));
        };
        ranges.push(r);
        rest = next;
    }
    if ranges.is_empty() {
        return Err("log : no sampling ranges given".into());
    }
    let size = if !size_s.is_empty() && size_s.bytes().all(|c| c.is_ascii_digit()) {
        size_s.parse::<u32>().ok().filter(|n| *n > 0)
    } else {
        None
    };
    let Some(size) = size else {
        return Err(format!(
            "log : wrong sample size '{size_s}' for sample range '{ranges_s}'"
        ));
    };
    let mut sorted = ranges.clone();
    sorted.sort();
    if sorted.windows(2).any(|w| w[1].0 <= w[0].1) {
        return Err("log : ranges are overlapping".into());
    }
    let max_hi = sorted.iter().map(|r| r.1).max().unwrap_or(0);
    if size < max_hi {
        return Err(format!(
            "log : sample size {size} should be greater or equal to {max_hi} the maximum of the high ranges limits"
        ));
    }
    Ok(LogSample { ranges, size })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Any,
    V4,
    V6,
}

fn parse_addr(full: &str) -> Result<LogAddr, String> {
    match full {
        "stdout" => return Ok(LogAddr::Fd(1)),
        "stderr" => return Ok(LogAddr::Fd(2)),
        _ => {}
    }
    if full.starts_with('/') {
        return Ok(LogAddr::Unix(PathBuf::from(full)));
    }
    let (prefix, rest) = match full.find('@') {
        Some(p) if !full[..p].contains(':') && !full[..p].contains('/') => {
            (Some(&full[..p]), &full[p + 1..])
        }
        _ => (None, full),
    };
    let (family, stream, rest) = match prefix {
        None => (Family::Any, false, rest),
        Some(p @ ("udp" | "ipv4" | "udp4" | "ipv6" | "udp6" | "tcp" | "tcp4" | "tcp6")) => {
            let fam = if p.ends_with('4') {
                Family::V4
            } else if p.ends_with('6') {
                Family::V6
            } else {
                Family::Any
            };
            (fam, p.starts_with("tcp"), rest)
        }
        Some("unix") => return Ok(LogAddr::Unix(PathBuf::from(rest))),
        Some("abns") => return Ok(LogAddr::Abns(rest.to_string())),
        Some("ring") => return Ok(LogAddr::Ring(rest.to_string())),
        Some("fd") => {
            let bad =
                || format!("log : file descriptor '{rest}' is not a valid integer in '{full}'\n");
            if rest.is_empty() || !rest.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            return Ok(LogAddr::Fd(rest.parse().map_err(|_| bad())?));
        }
        // Unknown prefixes are taken as part of a host name, which does not resolve.
        Some(_) => (Family::Any, false, full),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[').and_then(|r| {
        let close = r.find(']')?;
        Some((&r[..close], &r[close + 1..]))
    }) {
        let (h, after) = inner;
        let port = after.strip_prefix(':');
        (h, port)
    } else {
        match rest.rfind(':') {
            Some(p) => (&rest[..p], Some(&rest[p + 1..])),
            None => (rest, None),
        }
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => parse_port(p, full)?,
    };
    let ip = resolve(host, family)
        .ok_or_else(|| format!("log : invalid address: '{host}' in '{full}'\n"))?;
    let sa = SocketAddr::new(ip, port);
    Ok(if stream {
        LogAddr::Stream(sa)
    } else {
        LogAddr::Udp(sa)
    })
}

fn parse_port(p: &str, full: &str) -> Result<u16, String> {
    if p.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    if p.starts_with('+') || p.starts_with('-') {
        return Err(format!("log : port offset not permitted here in '{full}'"));
    }
    if p.contains('-') {
        return Err(format!("log : port range not permitted here in '{full}'"));
    }
    let first = p.chars().next().unwrap();
    if !first.is_ascii_digit() {
        return Err(format!(
            "log : invalid character '{first}' in port number '{p}' in '{full}'\n"
        ));
    }
    let v = atoi(p);
    if v > 65535 {
        return Err(format!("log : invalid port '{p}'"));
    }
    Ok(if v == 0 { DEFAULT_PORT } else { v as u16 })
}

fn resolve(host: &str, family: Family) -> Option<IpAddr> {
    if host.is_empty() {
        return Some(match family {
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        });
    }
    let ok = |ip: &IpAddr| match family {
        Family::Any => true,
        Family::V4 => ip.is_ipv4(),
        Family::V6 => ip.is_ipv6(),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ok(&ip).then_some(ip);
    }
    if host.parse::<Ipv4Addr>().is_err()
        && !host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'_')
    {
        return None;
    }
    let addrs: Vec<IpAddr> = (host, 0u16)
        .to_socket_addrs()
        .ok()?
        .map(|a| a.ip())
        .filter(ok)
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<LogTarget, String> {
        let v: Vec<&str> = s.split_whitespace().collect();
        parse_log_args(&v)
    }
    fn g(s: &str) -> Result<LogTarget, String> {
        let v: Vec<&str> = s.split_whitespace().collect();
        parse_global_log_args(&v)
    }
    fn e(s: &str) -> String {
        g(s).unwrap_err()
    }

    #[test]
    fn valid_forms() {
        let t = g("127.0.0.1 local0").unwrap();
        assert_eq!(t.addr, LogAddr::Udp("127.0.0.1:514".parse().unwrap()));
        assert_eq!(
            (t.facility, t.level, t.min_level, t.max_len),
            (16, 7, 0, 1024)
        );
        assert_eq!(t.format, None);
        let t = g("127.0.0.1:5140 len 100 format rfc5424 sample 1,3-4:5 daemon info err").unwrap();
        assert_eq!(t.addr, LogAddr::Udp("127.0.0.1:5140".parse().unwrap()));
        assert_eq!(t.max_len, 100);
        assert_eq!(t.format, Some(SyslogFormat::Rfc5424));
        assert_eq!(
            t.sample,
            Some(LogSample {
                ranges: vec![(1, 1), (3, 4)],
                size: 5
            })
        );
        assert_eq!((t.facility, t.level, t.min_level), (3, 6, 3));
        assert_eq!(g("stdout local0").unwrap().addr, LogAddr::Fd(1));
        assert_eq!(g("stderr format raw daemon").unwrap().addr, LogAddr::Fd(2));
        assert_eq!(g("fd@3 local0").unwrap().addr, LogAddr::Fd(3));
        assert_eq!(
            g("/dev/log local0").unwrap().addr,
            LogAddr::Unix("/dev/log".into())
        );
        assert_eq!(
            g("unix@/tmp/x local0").unwrap().addr,
            LogAddr::Unix("/tmp/x".into())
        );
        assert_eq!(
            g("ring@foo local0").unwrap().addr,
            LogAddr::Ring("foo".into())
        );
        assert_eq!(
            g("udp@127.0.0.1:515 local0").unwrap().addr,
            LogAddr::Udp("127.0.0.1:515".parse().unwrap())
        );
        assert_eq!(
            g("udp4@127.0.0.1 local0").unwrap().addr,
            LogAddr::Udp("127.0.0.1:514".parse().unwrap())
        );
        assert_eq!(
            g("[::1]:515 local0").unwrap().addr,
            LogAddr::Udp("[::1]:515".parse().unwrap())
        );
        assert_eq!(
            g("[::1] local0").unwrap().addr,
            LogAddr::Udp("[::1]:514".parse().unwrap())
        );
        assert_eq!(
            g("::1:515 local0").unwrap().addr,
            LogAddr::Udp("[::1]:515".parse().unwrap())
        );
        assert_eq!(
            g("ipv6@[::1]:514 local0").unwrap().addr,
            LogAddr::Udp("[::1]:514".parse().unwrap())
        );
        assert_eq!(
            g("tcp@127.0.0.1:514 local0").unwrap().addr,
            LogAddr::Stream("127.0.0.1:514".parse().unwrap())
        );
        assert_eq!(
            g(":514 local0").unwrap().addr,
            LogAddr::Udp("0.0.0.0:514".parse().unwrap())
        );
        assert_eq!(
            g("127.0.0.1: local0").unwrap().addr,
            LogAddr::Udp("127.0.0.1:514".parse().unwrap())
        );
        assert_eq!(
            g("127.0.0.1:514x local0").unwrap().addr,
            LogAddr::Udp("127.0.0.1:514".parse().unwrap())
        );
        assert!(matches!(
            g("localhost local0").unwrap().addr,
            LogAddr::Udp(_)
        ));
        assert_eq!(g("127.0.0.1 len 100x local0").unwrap().max_len, 100);
        assert_eq!(g("127.0.0.1 len 65535 local0").unwrap().max_len, 65535);
        assert!(g("127.0.0.1 sample 3,1:3 local0").is_ok());
        assert_eq!(p("global").unwrap().addr, LogAddr::Global);
    }

    #[test]
    fn errors_match_haproxy() {
        let cases = [
            ("", "log : expects <address> and <facility>  as arguments"),
            (
                "127.0.0.1",
                "log : expects <address> and <facility>  as arguments",
            ),
            ("127.0.0.1 local9", "log : unknown log facility 'local9'"),
            ("127.0.0.1 LOCAL0", "log : unknown log facility 'LOCAL0'"),
            (
                "127.0.0.1 local0 nosuch",
                "log : unknown optional log level 'nosuch'",
            ),
            (
                "127.0.0.1 local0 INFO",
                "log : unknown optional log level 'INFO'",
            ),
            (
                "127.0.0.1 local0 info nosuch",
                "log : unknown optional minimum log level 'nosuch'",
            ),
            (
                "127.0.0.1 local0 info debug extra",
                "log : cannot handle unexpected argument 'extra'",
            ),
            (
                "127.0.0.1 len 70 local0",
                "log : invalid log length '70', must be between 80 and 65535",
            ),
            (
                "127.0.0.1 len 65536 local0",
                "log : invalid log length '65536', must be between 80 and 65535",
            ),
            (
                "127.0.0.1 len abc local0",
                "log : invalid log length 'abc', must be between 80 and 65535",
            ),
            (
                "127.0.0.1 len -1 local0",
                "log : invalid log length '-1', must be between 80 and 65535",
            ),
            (
                "127.0.0.1 len local0",
                "log : invalid log length 'local0', must be between 80 and 65535",
            ),
            ("127.0.0.1 len 100", "log : unknown log facility ''"),
            (
                "127.0.0.1 format nosuch local0",
                "log : unknown log format 'nosuch'",
            ),
            ("127.0.0.1 format", "log : unknown log format ''"),
            ("127.0.0.1 format rfc5424", "log : unknown log facility ''"),
            (
                "127.0.0.1 format raw len 100 local0",
                "log : unknown log facility 'len'",
            ),
            (
                "127.0.0.1 sample 1:2 format raw local0",
                "log : unknown log facility 'format'",
            ),
            (
                "127.0.0.1 sample 3:2 local0",
                "log : sample size 2 should be greater or equal to 3 the maximum of the high ranges limits",
            ),
            (
                "127.0.0.1 sample 0:2 local0",
                "log : wrong sample range '0'",
            ),
            (
                "127.0.0.1 sample 0:0 local0",
                "log : wrong sample range '0'",
            ),
            ("127.0.0.1 sample 1 local0", "log : Missing sample size"),
            ("127.0.0.1 sample local0", "log : Missing sample size"),
            ("127.0.0.1 sample", "log : Missing sample size"),
            (
                "127.0.0.1 sample 1-2:x local0",
                "log : wrong sample size 'x' for sample range '1-2'",
            ),
            (
                "127.0.0.1 sample 1: local0",
                "log : wrong sample size '' for sample range '1'",
            ),
            (
                "127.0.0.1 sample 1:0 local0",
                "log : wrong sample size '0' for sample range '1'",
            ),
            (
                "127.0.0.1 sample 1:5x local0",
                "log : wrong sample size '5x' for sample range '1'",
            ),
            (
                "127.0.0.1 sample a:2 local0",
                "log : wrong sample range 'a'",
            ),
            (
                "127.0.0.1 sample 2-1:3 local0",
                "log : wrong sample range '2-1'",
            ),
            (
                "127.0.0.1 sample 1-:3 local0",
                "log : wrong sample range '1-'",
            ),
            (
                "127.0.0.1 sample -2:3 local0",
                "log : wrong sample range '-2'",
            ),
            (
                "127.0.0.1 sample 1x:5 local0",
                "log : wrong sample range '1x'",
            ),
            (
                "127.0.0.1 sample 1,,2:5 local0",
                "log : wrong sample range ',2'",
            ),
            (
                "127.0.0.1 sample :2 local0",
                "log : no sampling ranges given",
            ),
            (
                "127.0.0.1 sample 1,1:3 local0",
                "log : ranges are overlapping",
            ),
            (
                "127.0.0.1 sample 1-3,2:5 local0",
                "log : ranges are overlapping",
            ),
            ("127.0.0.1:99999 local0", "log : invalid port '99999'"),
            ("127.0.0.1:65536 local0", "log : invalid port '65536'"),
            ("[::1]:99999 local0", "log : invalid port '99999'"),
            (
                "127.0.0.1:abc local0",
                "log : invalid character 'a' in port number 'abc' in '127.0.0.1:abc'\n",
            ),
            (
                "[::1]:abc local0",
                "log : invalid character 'a' in port number 'abc' in '[::1]:abc'\n",
            ),
            (
                "127.0.0.1:-5 local0",
                "log : port offset not permitted here in '127.0.0.1:-5'",
            ),
            (
                "127.0.0.1:1-5 local0",
                "log : port range not permitted here in '127.0.0.1:1-5'",
            ),
            (
                "rsyslog.invalid local0",
                "log : invalid address: 'rsyslog.invalid' in 'rsyslog.invalid'\n",
            ),
            (
                "global",
                "log : 'global' is not supported for a global syslog server",
            ),
            (
                "global local0",
                "log : invalid address: 'global' in 'global'\n",
            ),
            (
                "fd@x local0",
                "log : file descriptor 'x' is not a valid integer in 'fd@x'\n",
            ),
            (
                "fd@ local0",
                "log : file descriptor '' is not a valid integer in 'fd@'\n",
            ),
            (
                "fd@-1 local0",
                "log : file descriptor '-1' is not a valid integer in 'fd@-1'\n",
            ),
            (
                "fd@1x local0",
                "log : file descriptor '1x' is not a valid integer in 'fd@1x'\n",
            ),
            (
                "udp6@::1 local0",
                "log : invalid address: ':' in 'udp6@::1'\n",
            ),
            (
                "ipv6@::1 local0",
                "log : invalid address: ':' in 'ipv6@::1'\n",
            ),
            (
                "udp6@127.0.0.1 local0",
                "log : invalid address: '127.0.0.1' in 'udp6@127.0.0.1'\n",
            ),
            ("::1 local0", "log : invalid address: ':' in '::1'\n"),
            (":: local0", "log : invalid address: ':' in '::'\n"),
            (
                "fe80::1 local0",
                "log : invalid address: 'fe80:' in 'fe80::1'\n",
            ),
            (
                "2001:db8::1 local0",
                "log : invalid address: '2001:db8:' in '2001:db8::1'\n",
            ),
            ("[::1 local0", "log : invalid address: '[:' in '[::1'\n"),
            (
                "sctp@1.2.3.4 local0",
                "log : invalid address: 'sctp@1.2.3.4' in 'sctp@1.2.3.4'\n",
            ),
            (
                "rsyslog.invalid len 70 local0",
                "log : invalid log length '70', must be between 80 and 65535",
            ),
            (
                "rsyslog.invalid local9",
                "log : unknown log facility 'local9'",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(e(args), want, "log {args}");
        }
        assert_eq!(
            p("127.0.0.1").unwrap_err(),
            "log : expects <address> and <facility> or global as arguments"
        );
        assert_eq!(
            p("global local0").unwrap_err(),
            "log : invalid address: 'global' in 'global'\n"
        );
    }

    #[test]
    fn levels_and_sampling() {
        let t = g("127.0.0.1 local0 notice err").unwrap();
        assert_eq!(t.effective_level(6), None);
        assert_eq!(t.effective_level(5), Some(5));
        assert_eq!(t.effective_level(0), Some(3));
        let s = parse_sample("1,3-4:5").unwrap();
        let sel: Vec<bool> = (0..10).map(|c| s.selects(c)).collect();
        assert_eq!(
            sel,
            [
                true, false, true, true, false, true, false, true, true, false
            ]
        );
    }
}
