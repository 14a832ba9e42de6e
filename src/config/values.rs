//! Value grammars shared by keyword parsers (nom): durations, integers, addresses.

use nom::{
    IResult, Parser,
    character::complete::{alpha0, digit1},
    combinator::{all_consuming, map_res},
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Parses HAProxy durations (`10`, `10ms`, `5s`, `1m`, `2h`, `1d`, `100us`) into milliseconds.
/// On error returns the offending character, for `unexpected character 'x' in 'timeout client'`.
pub fn parse_time_ms(s: &str) -> Result<u64, char> {
    parse_time_ms_lenient(s).map(|(v, _)| v)
}

/// Like [`parse_time_ms`], but reports HAProxy 2.6's leniency: a valid unit followed by more
/// letters (`10sec`) is accepted with a warning. Returns the value and whether to warn.
pub fn parse_time_ms_lenient(s: &str) -> Result<(u64, bool), char> {
    match parse_time_strict(s) {
        Ok(v) => Ok((v, false)),
        Err(c) => {
            for unit in ["ms", "us", "s", "m", "h", "d"] {
                let digits = s.bytes().take_while(u8::is_ascii_digit).count();
                if digits > 0 && s[digits..].starts_with(unit) && s.len() > digits + unit.len() {
                    if let Ok(v) = parse_time_strict(&s[..digits + unit.len()]) {
                        return Ok((v, true));
                    }
                }
            }
            Err(c)
        }
    }
}

fn parse_time_strict(s: &str) -> Result<u64, char> {
    fn num_unit(i: &str) -> IResult<&str, (u64, &str)> {
        (map_res(digit1, str::parse::<u64>), alpha0).parse(i)
    }
    match all_consuming(num_unit).parse(s) {
        Ok((_, (n, unit))) => {
            let mul: Option<(u64, u64)> = match unit {
                "" | "ms" => Some((1, 1)),
                "us" => Some((1, 1000)),
                "s" => Some((1000, 1)),
                "m" => Some((60_000, 1)),
                "h" => Some((3_600_000, 1)),
                "d" => Some((86_400_000, 1)),
                _ => None,
            };
            match mul {
                Some((m, d)) => Ok(n.saturating_mul(m).div_ceil(d)),
                None => Err(unit.chars().next().unwrap_or('?')),
            }
        }
        Err(_) => Err(s
            .chars()
            .find(|c| !c.is_ascii_alphanumeric())
            .or_else(|| s.chars().next())
            .unwrap_or('?')),
    }
}

/// HAProxy's `atoi`-like integer: leading digits only, must be non-empty and fully numeric.
/// C's `atoi`: leading blanks, an optional sign and leading digits, 0 when there are none
/// (saturating instead of C's undefined overflow).
pub fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let v = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |a, b| {
            a.saturating_mul(10).saturating_add((b - b'0') as i64)
        });
    if neg { -v } else { v }
}

pub fn parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An address with an optional port range, as written on `bind`, `server`, `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrPort {
    pub ip: Option<IpAddr>,
    pub family: Family,
    pub port: Option<PortSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSpec {
    Range(u16, u16),
    /// `+N` / `-N`: offset from the client's destination port (servers only).
    Offset(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    /// `invalid address: 'X' in 'Y'`
    Invalid(String),
    /// `invalid port 'X'`
    Port(String),
    /// `missing port specification in 'X'`
    MissingPort,
    /// Prefix not supported by rhaproxy (`unix@`, `abns@`, `fd@`, `quic4@`, ...).
    Unsupported(String),
    /// A hostname: rhaproxy resolves only IP literals at check time.
    Hostname(String),
}

/// Splits `[prefix@]host[:port]`. IPv6 literals may be bare (`::1`) or bracketed (`[::1]:80`);
/// a bare IPv6 literal takes its last `:` group as the port only when it parses as one.
pub fn parse_addr(text: &str, port_allowed: bool) -> Result<AddrPort, AddrError> {
    let (family, rest) = if let Some(r) = text.strip_prefix("ipv4@") {
        (Family::V4, r)
    } else if let Some(r) = text.strip_prefix("ipv6@") {
        (Family::V6, r)
    } else if let Some(r) = text.strip_prefix("tcp@") {
        (Family::Any, r)
    } else if let Some(r) = text.strip_prefix("tcp4@") {
        (Family::V4, r)
    } else if let Some(r) = text.strip_prefix("tcp6@") {
        (Family::V6, r)
    } else if let Some((p, _)) = text.split_once('@') {
        if matches!(
            p,
            "unix"
                | "abns"
                | "fd"
                | "sockpair"
                | "udp"
                | "udp4"
                | "udp6"
                | "quic4"
                | "quic6"
                | "uxst"
                | "uxdg"
        ) {
            return Err(AddrError::Unsupported(format!("{p}@")));
        }
        return Err(AddrError::Invalid(text.to_string()));
    } else if text.starts_with('/') {
        return Err(AddrError::Unsupported("unix socket path".into()));
    } else {
        (Family::Any, text)
    };

    let (host, port) = split_host_port(rest);
    let ip = if host.is_empty() || host == "*" {
        None
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        Some(ip)
    } else if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(AddrError::Invalid(host.to_string()));
    } else if host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    {
        if host == "localhost" {
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            return Err(AddrError::Hostname(host.to_string()));
        }
    } else {
        return Err(AddrError::Invalid(host.to_string()));
    };
    let ip = match (ip, family) {
        (Some(IpAddr::V6(_)), Family::V4) | (Some(IpAddr::V4(_)), Family::V6) => {
            return Err(AddrError::Invalid(host.to_string()));
        }
        (ip, _) => ip,
    };
    let port = match port {
        None => None,
        Some(p) if !port_allowed => return Err(AddrError::Port(p.to_string())),
        Some(p) => Some(parse_port_spec(p)?),
    };
    Ok(AddrPort { ip, family, port })
}

fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(r) = s.strip_prefix('[') {
        if let Some((h, tail)) = r.split_once(']') {
            return (h, tail.strip_prefix(':'));
        }
        return (s, None);
    }
    // HAProxy always takes the last colon of an unbracketed address as the port separator:
    // `:::80` is `::` port 80, and `::1` is the invalid address `:` with port 1.
    if let Some(idx) = s.rfind(':') {
        return (&s[..idx], Some(&s[idx + 1..]));
    }
    (s, None)
}

fn parse_port_spec(p: &str) -> Result<PortSpec, AddrError> {
    if p.is_empty() {
        return Err(AddrError::MissingPort);
    }
    if let Some(o) = p.strip_prefix('+') {
        return o
            .parse::<u16>()
            .map(|v| PortSpec::Offset(v as i32))
            .map_err(|_| AddrError::Port(p.to_string()));
    }
    if let Some(o) = p.strip_prefix('-') {
        return o
            .parse::<u16>()
            .map(|v| PortSpec::Offset(-(v as i32)))
            .map_err(|_| AddrError::Port(p.to_string()));
    }
    let (lo, hi) = match p.split_once('-') {
        Some((a, b)) => (a, b),
        None => (p, p),
    };
    let port = |s: &str| -> Result<u16, AddrError> {
        match parse_uint(s) {
            Some(v) if v <= 65535 => Ok(v as u16),
            _ => Err(AddrError::Port(s.to_string())),
        }
    };
    let (lo, hi) = (port(lo)?, port(hi)?);
    Ok(PortSpec::Range(lo, hi))
}

/// The unspecified address of a family.
pub fn any_addr(family: Family) -> IpAddr {
    match family {
        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

pub fn socket_addr(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time_ms("10"), Ok(10));
        assert_eq!(parse_time_ms("10ms"), Ok(10));
        assert_eq!(parse_time_ms("5s"), Ok(5000));
        assert_eq!(parse_time_ms("1m"), Ok(60000));
        assert_eq!(parse_time_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_time_ms("1d"), Ok(86_400_000));
        assert_eq!(parse_time_ms("1500us"), Ok(2));
        assert_eq!(parse_time_ms("5x"), Err('x'));
        assert_eq!(parse_time_ms("5sec"), Ok(5000));
        assert_eq!(parse_time_ms_lenient("5sec"), Ok((5000, true)));
        assert_eq!(parse_time_ms("5q"), Err('q'));
    }

    #[test]
    fn addresses() {
        let a = parse_addr(":80", true).unwrap();
        assert_eq!((a.ip, a.port), (None, Some(PortSpec::Range(80, 80))));
        let a = parse_addr("*:80-90", true).unwrap();
        assert_eq!(a.port, Some(PortSpec::Range(80, 90)));
        let a = parse_addr(":::8080", true).unwrap();
        assert_eq!(a.ip, Some("::".parse().unwrap()));
        assert_eq!(a.port, Some(PortSpec::Range(8080, 8080)));
        let a = parse_addr("[::1]:80", true).unwrap();
        assert_eq!(a.ip, Some("::1".parse().unwrap()));
        let a = parse_addr("ipv6@::1:80", true).unwrap();
        assert_eq!(a.ip, Some("::1".parse().unwrap()));
        assert_eq!(parse_addr("::1", true), Err(AddrError::Invalid(":".into())));
        assert_eq!(parse_addr("::", true), Err(AddrError::Invalid(":".into())));
        let a = parse_addr("[::]", true).unwrap();
        assert_eq!((a.ip, a.port), (Some("::".parse().unwrap()), None));
        let a = parse_addr("10.0.0.1:+1", true).unwrap();
        assert_eq!(a.port, Some(PortSpec::Offset(1)));
        assert_eq!(
            parse_addr("999.0.0.1:8080", true),
            Err(AddrError::Invalid("999.0.0.1".into()))
        );
        assert_eq!(
            parse_addr("1.2.3.4:99999", true),
            Err(AddrError::Port("99999".into()))
        );
        assert_eq!(parse_addr("*:", true), Err(AddrError::MissingPort));
        assert!(matches!(
            parse_addr("unix@/x", true),
            Err(AddrError::Unsupported(_))
        ));
        assert!(matches!(
            parse_addr("mptcp@[::]:5000", true),
            Err(AddrError::Invalid(_))
        ));
        assert!(matches!(
            parse_addr("example.com:80", true),
            Err(AddrError::Hostname(_))
        ));
    }
}
