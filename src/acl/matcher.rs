//! Match methods (`-m str|beg|end|sub|reg|dom|dir|len|found|bool|int|ip|bin`) and pattern
//! parsing, with HAProxy 2.6's error texts.

use std::net::IpAddr;

use super::Sample;
use super::fetch::{SmpType, leading_int, parse_ip_bytes, unmap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Found,
    Bool,
    Int,
    Ip,
    Bin,
    Len,
    Str,
    Sub,
    Reg,
    Beg,
    End,
    Dir,
    Dom,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "found" => Method::Found,
            "bool" => Method::Bool,
            "int" => Method::Int,
            "ip" => Method::Ip,
            "bin" => Method::Bin,
            "len" => Method::Len,
            "str" => Method::Str,
            "sub" => Method::Sub,
            "reg" => Method::Reg,
            "beg" => Method::Beg,
            "end" => Method::End,
            "dir" => Method::Dir,
            "dom" => Method::Dom,
            _ => return None,
        })
    }

    pub fn default_for(t: SmpType) -> Method {
        match t {
            SmpType::Bool => Method::Bool,
            SmpType::Int => Method::Int,
            SmpType::Ip => Method::Ip,
            SmpType::Str => Method::Str,
        }
    }
}

/// A compiled regular expression, compared by its source text.
#[derive(Debug, Clone)]
pub struct Re {
    pub src: String,
    pub icase: bool,
    pub re: regex::bytes::Regex,
}

impl PartialEq for Re {
    fn eq(&self, o: &Re) -> bool {
        self.src == o.src && self.icase == o.icase
    }
}
impl Eq for Re {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Integer range, both ends inclusive.
    Int(i64, i64),
    /// Address and prefix length.
    Ip(IpAddr, u8),
    Bytes(Vec<u8>),
    Reg(Re),
}

/// Integer operators written before the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntOp {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// Parses `N`, `N:M`, `:M`, `N:` under an operator.
fn parse_int_pattern(s: &str, op: IntOp) -> Result<Pattern, String> {
    let num = |t: &str| -> Result<i64, String> {
        t.parse::<i64>()
            .map_err(|_| format!("'{t}' is not a number"))
    };
    if let Some((a, b)) = s.split_once(':') {
        if op != IntOp::Eq {
            return Err(format!("'{s}' is not a number"));
        }
        let lo = if a.is_empty() { i64::MIN } else { num(a)? };
        let hi = if b.is_empty() { i64::MAX } else { num(b)? };
        return Ok(Pattern::Int(lo, hi));
    }
    let n = num(s)?;
    Ok(match op {
        IntOp::Eq => Pattern::Int(n, n),
        IntOp::Ge => Pattern::Int(n, i64::MAX),
        IntOp::Gt => Pattern::Int(n.saturating_add(1), i64::MAX),
        IntOp::Le => Pattern::Int(i64::MIN, n),
        IntOp::Lt => Pattern::Int(i64::MIN, n.saturating_sub(1)),
    })
}

/// `ADDR[/LEN|/MASK]`.
pub fn parse_ip_pattern(s: &str) -> Result<Pattern, String> {
    let bad = || format!("'{s}' is not a valid IPv4 or IPv6 address");
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let ip: IpAddr = a.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match m {
        None => max,
        Some(m) => match m.parse::<u8>() {
            Ok(l) if l <= max => l,
            Ok(_) => return Err(bad()),
            Err(_) => {
                // Dotted mask (IPv4 only), contiguous.
                let mask: std::net::Ipv4Addr = m.parse().map_err(|_| bad())?;
                if !ip.is_ipv4() {
                    return Err(bad());
                }
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(bad());
                }
                bits.leading_ones() as u8
            }
        },
    };
    Ok(Pattern::Ip(unmap(ip), len))
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("'{s}' is not a valid hexadecimal string"));
    }
    Ok((0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect())
}

pub fn compile_regex(s: &str, icase: bool) -> Result<Re, String> {
    let re = regex::bytes::RegexBuilder::new(s)
        .case_insensitive(icase)
        .unicode(false)
        .build()
        .map_err(|e| {
            let short = e.to_string().lines().last().unwrap_or("").to_string();
            format!("regex '{s}' is refused by rhaproxy's regex engine ({short}); HAProxy 2.6 uses PCRE, whose extra syntax is not supported by rhaproxy yet.")
        })?;
    Ok(Re {
        src: s.to_string(),
        icase,
        re,
    })
}

/// Parses the pattern words of one ACL for `method`. Returns the patterns; operators
/// (`eq ge gt le lt`) are consumed for integer methods.
pub fn parse_patterns(
    method: Method,
    words: &[String],
    icase: bool,
) -> Result<Vec<Pattern>, String> {
    let mut out = Vec::new();
    let mut op = IntOp::Eq;
    for w in words {
        match method {
            Method::Int | Method::Len => {
                let o = match w.as_str() {
                    "eq" => Some(IntOp::Eq),
                    "ge" => Some(IntOp::Ge),
                    "gt" => Some(IntOp::Gt),
                    "le" => Some(IntOp::Le),
                    "lt" => Some(IntOp::Lt),
                    _ => None,
                };
                if let Some(o) = o {
                    op = o;
                    continue;
                }
                out.push(parse_int_pattern(w, op)?);
            }
            Method::Ip => out.push(parse_ip_pattern(w)?),
            Method::Bin => out.push(Pattern::Bytes(parse_hex(w)?)),
            Method::Reg => out.push(Pattern::Reg(compile_regex(w, icase)?)),
            Method::Found | Method::Bool => {
                return Err(format!(
                    "ACL -m {} doesn't take any pattern (got '{w}')",
                    if method == Method::Found {
                        "found"
                    } else {
                        "bool"
                    }
                ));
            }
            _ => out.push(Pattern::Bytes(w.as_bytes().to_vec())),
        }
    }
    Ok(out)
}

fn eq_bytes(a: &[u8], b: &[u8], icase: bool) -> bool {
    if icase {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn contains(h: &[u8], n: &[u8], icase: bool) -> bool {
    n.is_empty() || h.windows(n.len()).any(|w| eq_bytes(w, n, icase))
}

/// `dir`/`dom`: the pattern appears delimited by `delims` (or the string's ends).
fn delimited(h: &[u8], n: &[u8], icase: bool, delims: &[u8]) -> bool {
    // HAProxy strips delimiters around the pattern itself.
    let n = {
        let s = n
            .iter()
            .position(|c| !delims.contains(c))
            .unwrap_or(n.len());
        let e = n
            .iter()
            .rposition(|c| !delims.contains(c))
            .map_or(s, |i| i + 1);
        &n[s..e.max(s)]
    };
    if n.is_empty() {
        return false;
    }
    let mut i = 0;
    while i + n.len() <= h.len() {
        if eq_bytes(&h[i..i + n.len()], n, icase) {
            let before = i == 0 || delims.contains(&h[i - 1]);
            let after = i + n.len() == h.len() || delims.contains(&h[i + n.len()]);
            if before && after {
                return true;
            }
        }
        i += 1;
    }
    false
}

fn ip_in(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (unmap(ip), net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len as u32)
            };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len as u32)
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

/// Does one sample match one of the patterns?
pub fn matches(method: Method, icase: bool, s: &Sample, pats: &[Pattern]) -> bool {
    match method {
        Method::Found => true,
        Method::Bool => match s {
            Sample::Bool(b) => *b,
            Sample::Int(n) => *n != 0,
            _ => false,
        },
        Method::Int | Method::Len => {
            let v = if method == Method::Len {
                s.as_bytes().len() as i64
            } else {
                match s {
                    Sample::Int(n) => *n,
                    Sample::Bool(b) => *b as i64,
                    Sample::Str(b) => leading_int(b),
                    Sample::Ip(_) => return false,
                }
            };
            pats.iter()
                .any(|p| matches!(p, Pattern::Int(lo, hi) if *lo <= v && v <= *hi))
        }
        Method::Ip => {
            let ip = match s {
                Sample::Ip(ip) => *ip,
                Sample::Str(b) => match parse_ip_bytes(b) {
                    Some(ip) => ip,
                    None => return false,
                },
                _ => return false,
            };
            pats.iter()
                .any(|p| matches!(p, Pattern::Ip(n, l) if ip_in(ip, *n, *l)))
        }
        _ => {
            let h = s.as_bytes();
            pats.iter().any(|p| match p {
                Pattern::Reg(r) => r.re.is_match(&h),
                Pattern::Bytes(n) => match method {
                    Method::Str | Method::Bin => eq_bytes(&h, n, icase),
                    Method::Beg => h.len() >= n.len() && eq_bytes(&h[..n.len()], n, icase),
                    Method::End => {
                        h.len() >= n.len() && eq_bytes(&h[h.len() - n.len()..], n, icase)
                    }
                    Method::Sub => contains(&h, n, icase),
                    Method::Dir => delimited(&h, n, icase, b"/?"),
                    Method::Dom => delimited(&h, n, icase, b"/?.:"),
                    _ => false,
                },
                _ => false,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn int_ranges_and_operators() {
        let p = parse_patterns(Method::Int, &w(&["gt", "5"]), false).unwrap();
        assert!(matches(Method::Int, false, &Sample::Int(6), &p));
        assert!(!matches(Method::Int, false, &Sample::Int(5), &p));
        let p = parse_patterns(Method::Int, &w(&["1:3", ":0", "10:"]), false).unwrap();
        for (v, m) in [(2, true), (4, false), (-7, true), (11, true)] {
            assert_eq!(matches(Method::Int, false, &Sample::Int(v), &p), m, "{v}");
        }
        assert_eq!(
            parse_patterns(Method::Int, &w(&["x"]), false).unwrap_err(),
            "'x' is not a number"
        );
    }

    #[test]
    fn ip_networks() {
        let p = parse_patterns(
            Method::Ip,
            &w(&["10.0.0.0/8", "192.168.1.0/255.255.255.0", "::1"]),
            false,
        )
        .unwrap();
        let ip = |s: &str| Sample::Ip(s.parse().unwrap());
        assert!(matches(Method::Ip, false, &ip("10.2.3.4"), &p));
        assert!(matches(Method::Ip, false, &ip("192.168.1.77"), &p));
        assert!(!matches(Method::Ip, false, &ip("192.168.2.1"), &p));
        assert!(matches(Method::Ip, false, &ip("::1"), &p));
        assert!(matches(Method::Ip, false, &ip("::ffff:10.1.1.1"), &p));
        assert!(parse_ip_pattern("10.0.0.0/33").is_err());
        assert!(parse_ip_pattern("1.2.3.300").is_err());
    }

    #[test]
    fn string_methods() {
        let s = |t: &str| Sample::Str(t.as_bytes().to_vec());
        let p = |v: &[&str]| parse_patterns(Method::Str, &w(v), false).unwrap();
        assert!(matches(Method::Beg, false, &s("/api/x"), &p(&["/api"])));
        assert!(!matches(Method::Beg, false, &s("/API/x"), &p(&["/api"])));
        assert!(matches(Method::Beg, true, &s("/API/x"), &p(&["/api"])));
        assert!(matches(
            Method::End,
            false,
            &s("a.jpg"),
            &p(&[".png", ".jpg"])
        ));
        assert!(matches(Method::Sub, false, &s("xxadminxx"), &p(&["admin"])));
        assert!(matches(Method::Dir, false, &s("/a/img/b"), &p(&["img"])));
        assert!(!matches(Method::Dir, false, &s("/a/imgs/b"), &p(&["img"])));
        assert!(matches(
            Method::Dom,
            false,
            &s("www.example.com:80"),
            &p(&["example"])
        ));
        assert!(!matches(
            Method::Dom,
            false,
            &s("www.myexample.com"),
            &p(&["example"])
        ));
        assert!(matches(
            Method::Len,
            false,
            &s("abcd"),
            &parse_patterns(Method::Len, &w(&["4"]), false).unwrap()
        ));
        let r = parse_patterns(Method::Reg, &w(&["^/v[0-9]+/"]), false).unwrap();
        assert!(matches(Method::Reg, false, &s("/v12/x"), &r));
        assert!(!matches(Method::Reg, false, &s("/vx/x"), &r));
        assert!(parse_patterns(Method::Reg, &w(&["(("]), false).is_err());
    }
}
