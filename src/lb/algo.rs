//! Configuration side of load balancing: the `balance` and `hash-type`
//! keywords (with HAProxy 2.6's exact error messages) and server id (`puid`)
//! assignment.

use super::hash::HashFn;
use std::collections::HashSet;

/// `hash-type` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashMethod {
    /// `map-based` (default): `table[hash % total_weight]`.
    #[default]
    MapBased,
    /// `consistent`: ring of weight x 16 points per server.
    Consistent,
}

/// Parsed `hash-type <method> [<function> [avalanche]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashType {
    pub method: HashMethod,
    pub function: HashFn,
    pub avalanche: bool,
}

impl HashType {
    /// `hash-type map-based` (the default when the keyword is absent).
    pub const MAP_BASED: HashType = HashType {
        method: HashMethod::MapBased,
        function: HashFn::Sdbm,
        avalanche: false,
    };
    /// `hash-type consistent` without a function: sdbm + avalanche.
    pub const CONSISTENT: HashType = HashType {
        method: HashMethod::Consistent,
        function: HashFn::Sdbm,
        avalanche: true,
    };

    /// Hash a byte string as the L7 hash algorithms do (function, then
    /// avalanche if configured).
    pub fn hash_bytes(&self, data: &[u8]) -> u32 {
        let h = self.function.hash(data);
        if self.avalanche {
            super::hash::full_hash(h)
        } else {
            h
        }
    }
}

/// `balance` algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Algorithm {
    /// `roundrobin` (weighted, dynamic; HAProxy's FWRR order).
    RoundRobin,
    /// `static-rr`: the map-based table walked in order.
    StaticRr,
    /// `leastconn`.
    LeastConn,
    /// `first`: lowest id with a free connection slot (up to `maxconn`).
    First,
    /// `random[(draws)]`: random points on the consistent ring, keep the least
    /// loaded of `draws` candidates.
    Random { draws: u32 },
    /// `source`: client address.
    Source,
    /// `uri [whole] [len N] [depth N] [path-only]`.
    Uri {
        whole: bool,
        len: Option<u32>,
        depth: Option<u32>,
        path_only: bool,
    },
    /// `url_param NAME [check_post [N]]`. With `check_post`, a POST body
    /// is searched when the query string lacks the parameter (see
    /// [`super::RequestKey::post_body`]).
    UrlParam { name: String, check_post: bool },
    /// `hdr(NAME) [use_domain_only]`.
    Hdr { name: String, use_domain_only: bool },
    /// `rdp-cookie[(NAME)]`; the runtime extracts the cookie and passes it as
    /// [`super::RequestKey::sample`].
    RdpCookie { name: String },
    /// `hash EXPR`; the runtime evaluates the expression and passes the bytes
    /// as [`super::RequestKey::sample`].
    Hash { expr: String },
}

impl Algorithm {
    /// True for the algorithms that use `hash-type` (static hashing).
    pub fn is_hash(&self) -> bool {
        matches!(
            self,
            Algorithm::Source
                | Algorithm::Uri { .. }
                | Algorithm::UrlParam { .. }
                | Algorithm::Hdr { .. }
                | Algorithm::RdpCookie { .. }
                | Algorithm::Hash { .. }
        )
    }

    /// True for the algorithms that need HTTP (`uri`, `url_param`, `hdr`).
    /// HAProxy warns and falls back to `roundrobin` when they are used in a
    /// TCP proxy; the runtime is expected to do the same.
    pub fn is_l7(&self) -> bool {
        matches!(
            self,
            Algorithm::Uri { .. } | Algorithm::UrlParam { .. } | Algorithm::Hdr { .. }
        )
    }
}

const BALANCE_GENERIC: &str = "balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', 'url_param', 'hdr(name)' and 'rdp-cookie(name)' options.";

/// C `atoi`-like: leading blanks, optional sign, digits; garbage after the
/// digits is ignored; no digits gives 0. Saturates instead of overflowing.
fn atoi(s: &str) -> i64 {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for c in digits.bytes() {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    if neg { -v } else { v }
}

/// Parse the words following `balance` (`args[0]` is the algorithm name).
///
/// Error strings are HAProxy 2.6's messages (without the
/// `parsing [file:line] : ` prefix). An empty `args` (bare `balance`) is
/// accepted by HAProxy and changes nothing; here it yields `RoundRobin`, so
/// callers that want the exact inheritance semantics should skip the call.
pub fn parse_balance(args: &[&str]) -> Result<Algorithm, String> {
    let arg = |i: usize| -> &str { args.get(i).copied().unwrap_or("") };
    let word = arg(0);
    match word {
        "" | "roundrobin" => return Ok(Algorithm::RoundRobin),
        "static-rr" => return Ok(Algorithm::StaticRr),
        "first" => return Ok(Algorithm::First),
        "leastconn" => return Ok(Algorithm::LeastConn),
        "source" => return Ok(Algorithm::Source),
        "uri" => return parse_uri_opts(&args[1..]),
        "url_param" => {
            let name = arg(1);
            if name.is_empty() {
                return Err("balance url_param requires an URL parameter name.".into());
            }
            let modifier = arg(2);
            let check_post = match modifier {
                "" => false,
                "check_post" => true,
                other => {
                    return Err(format!(
                        "balance url_param only accepts 'check_post' modifier (got '{other}')."
                    ));
                }
            };
            return Ok(Algorithm::UrlParam {
                name: name.to_string(),
                check_post,
            });
        }
        "hash" => {
            let expr = arg(1);
            if expr.is_empty() {
                return Err("balance hash requires a sample expression.".into());
            }
            return Ok(Algorithm::Hash {
                expr: expr.to_string(),
            });
        }
        _ => {}
    }
    if let Some(rest) = word.strip_prefix("random") {
        let mut draws = 2u32;
        if let Some(inner) = rest.strip_prefix('(') {
            if !inner.contains(')') {
                return Err("balance random : missing closing parenthesis.".into());
            }
            if !inner.starts_with(')') {
                // strtol-like: optional blanks and sign, then digits.
                let bytes = inner.as_bytes();
                let mut i = 0;
                while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                    i += 1;
                }
                let mut j = i;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                let dstart = j;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                let end = if j == dstart { 0 } else { j };
                if bytes[end] != b')' {
                    return Err(format!(
                        "balance random : unexpected character '{}' after argument.",
                        inner[end..].chars().next().unwrap_or(' ')
                    ));
                }
                let v = atoi(&inner[..end]);
                // HAProxy stores the value in a C int.
                let v = v as i32;
                if v < 1 {
                    return Err("balance random : number of draws must be at least 1.".into());
                }
                draws = v as u32;
            }
        }
        return Ok(Algorithm::Random { draws });
    }
    if let Some(rest) = word.strip_prefix("hdr(") {
        let name = match rest.find(')') {
            Some(end) if end > 0 => &rest[..end],
            _ => return Err("balance hdr requires an http header field name.".into()),
        };
        let use_domain_only = match arg(1) {
            "" => false,
            "use_domain_only" => true,
            other => {
                return Err(format!(
                    "balance hdr({name}) only accepts 'use_domain_only' modifier (got '{other}')."
                ));
            }
        };
        return Ok(Algorithm::Hdr {
            name: name.to_string(),
            use_domain_only,
        });
    }
    if let Some(rest) = word.strip_prefix("rdp-cookie") {
        if rest.is_empty() {
            return Ok(Algorithm::RdpCookie {
                name: "mstshash".into(),
            });
        }
        if let Some(inner) = rest.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && end > 0
        {
            return Ok(Algorithm::RdpCookie {
                name: inner[..end].to_string(),
            });
        }
        return Err("balance rdp-cookie : missing cookie name.".into());
    }
    Err(BALANCE_GENERIC.into())
}

fn parse_uri_opts(args: &[&str]) -> Result<Algorithm, String> {
    let (mut whole, mut len, mut depth, mut path_only) = (false, None, None, false);
    let mut i = 0;
    while i < args.len() && !args[i].is_empty() {
        match args[i] {
            "len" | "depth" => {
                let kw = args[i];
                let val = args.get(i + 1).copied().unwrap_or("");
                let v = atoi(val);
                if v <= 0 {
                    return Err(format!(
                        "balance uri : '{kw}' expects a positive integer (got '{val}')."
                    ));
                }
                // stored in a C int
                let v = (v as i32).max(0) as u32;
                if kw == "len" {
                    len = Some(v);
                } else {
                    depth = Some(v);
                }
                i += 2;
            }
            "whole" => {
                whole = true;
                i += 1;
            }
            "path-only" => {
                path_only = true;
                i += 1;
            }
            other => {
                return Err(format!(
                    "balance uri only accepts parameters 'len', 'depth', 'path-only', and 'whole' (got '{other}')."
                ));
            }
        }
    }
    Ok(Algorithm::Uri {
        whole,
        len,
        depth,
        path_only,
    })
}

/// Parse the words following `hash-type`. Error strings are HAProxy 2.6's.
pub fn parse_hash_type(args: &[&str]) -> Result<HashType, String> {
    let arg = |i: usize| -> &str { args.get(i).copied().unwrap_or("") };
    let method = match arg(0) {
        "consistent" => HashMethod::Consistent,
        "map-based" => HashMethod::MapBased,
        "avalanche" => {
            return Err("experimental feature 'hash-type avalanche' is not supported anymore, please use 'hash-type map-based sdbm avalanche' instead.".into());
        }
        _ => return Err("'hash-type' only supports 'consistent' and 'map-based'.".into()),
    };
    let function = match arg(1) {
        "" => {
            return Ok(match method {
                HashMethod::Consistent => HashType::CONSISTENT,
                HashMethod::MapBased => HashType::MAP_BASED,
            });
        }
        "sdbm" => HashFn::Sdbm,
        "djb2" => HashFn::Djb2,
        "crc32" => HashFn::Crc32,
        "wt6" => HashFn::Wt6,
        _ => {
            return Err(
                "'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions."
                    .into(),
            );
        }
    };
    let avalanche = match arg(2) {
        "" => false,
        "avalanche" => true,
        _ => {
            return Err(
                "'hash-type' only supports 'avalanche' as a modifier for hash functions.".into(),
            );
        }
    };
    Ok(HashType {
        method,
        function,
        avalanche,
    })
}

/// Parse the words following `hash-balance-factor` (0 = off, else > 100).
/// Error strings are HAProxy 2.6's. Like HAProxy, a non-numeric word reads
/// as 0.
pub fn parse_hash_balance_factor(args: &[&str]) -> Result<u32, String> {
    let a = args.first().copied().unwrap_or("");
    if a.is_empty() {
        return Err("'hash-balance-factor' expects an integer argument.".into());
    }
    let v = atoi(a) as i32;
    if v != 0 && v <= 100 {
        return Err("'hash-balance-factor' must be 0 or greater than 100.".into());
    }
    Ok(v as u32)
}

impl Algorithm {
    /// The algorithm a backend really uses: L7 hashes in a TCP backend fall
    /// back to `roundrobin` (with [`l7_hash_tcp_warning`]).
    pub fn effective(&self, http_mode: bool) -> Algorithm {
        if self.is_l7() && !http_mode {
            Algorithm::RoundRobin
        } else {
            self.clone()
        }
    }
}

/// HAProxy 2.6's warning for an L7 `balance` in a TCP backend.
pub fn l7_hash_tcp_warning(backend: &str) -> String {
    format!(
        "Layer 7 hash not possible for backend '{backend}' (needs 'mode http'). Falling back to round robin."
    )
}

/// Assign server ids (`puid`) the way HAProxy 2.6 does.
///
/// `explicit[i]` is the `id N` of the i-th server in declaration order, if
/// any. A counter starts at 1; a server without an id takes the smallest
/// unused id >= counter and the counter jumps to it; the counter is then
/// incremented after *every* server, including those with an explicit id.
/// So `a`, `b id 1`, `c` gives a=2, b=1, c=4.
pub fn assign_puids(explicit: &[Option<u32>]) -> Vec<u32> {
    let mut used: HashSet<u32> = explicit.iter().flatten().copied().collect();
    let mut next: u32 = 1;
    let mut out = Vec::with_capacity(explicit.len());
    for e in explicit {
        match e {
            Some(id) => out.push(*id),
            None => {
                while used.contains(&next) {
                    next += 1;
                }
                used.insert(next);
                out.push(next);
            }
        }
        next += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lb_puid_quirk() {
        assert_eq!(assign_puids(&[None, Some(1), None]), vec![2, 1, 4]);
        assert_eq!(assign_puids(&[None, None, None]), vec![1, 2, 3]);
        assert_eq!(assign_puids(&[Some(10), None, None]), vec![10, 2, 3]);
        assert_eq!(assign_puids(&[None, Some(3), None, None]), vec![1, 3, 4, 5]);
        assert_eq!(assign_puids(&[None, Some(2), None]), vec![1, 2, 3]);
        assert_eq!(assign_puids(&[Some(2), Some(1), None]), vec![2, 1, 3]);
    }

    #[test]
    fn lb_parse_balance_ok() {
        assert_eq!(parse_balance(&["roundrobin"]), Ok(Algorithm::RoundRobin));
        assert_eq!(parse_balance(&["source", "x"]), Ok(Algorithm::Source));
        assert_eq!(
            parse_balance(&["random"]),
            Ok(Algorithm::Random { draws: 2 })
        );
        assert_eq!(
            parse_balance(&["random(3)"]),
            Ok(Algorithm::Random { draws: 3 })
        );
        assert_eq!(
            parse_balance(&["randomfoo(3)"]),
            Ok(Algorithm::Random { draws: 2 })
        );
        assert_eq!(
            parse_balance(&["random()"]),
            Ok(Algorithm::Random { draws: 2 })
        );
        assert_eq!(
            parse_balance(&["random(+3)x"]),
            Ok(Algorithm::Random { draws: 3 })
        );
        assert_eq!(
            parse_balance(&["uri", "whole", "len", "3x", "depth", "2", "path-only"]),
            Ok(Algorithm::Uri {
                whole: true,
                len: Some(3),
                depth: Some(2),
                path_only: true
            })
        );
        assert_eq!(
            parse_balance(&["hdr(Host)y", "use_domain_only", "x"]),
            Ok(Algorithm::Hdr {
                name: "Host".into(),
                use_domain_only: true
            })
        );
        assert_eq!(
            parse_balance(&["url_param", "a", "check_post", "10"]),
            Ok(Algorithm::UrlParam {
                name: "a".into(),
                check_post: true
            })
        );
        assert_eq!(
            parse_balance(&["rdp-cookie"]),
            Ok(Algorithm::RdpCookie {
                name: "mstshash".into()
            })
        );
        assert_eq!(
            parse_balance(&["rdp-cookie(a)b"]),
            Ok(Algorithm::RdpCookie { name: "a".into() })
        );
    }

    #[test]
    fn lb_parse_balance_errors() {
        let e = |a: &[&str]| parse_balance(a).unwrap_err();
        for w in ["foo", "hdr", "roundrobinx", "hdrx(a)", "hashx", "urix"] {
            assert_eq!(e(&[w]), BALANCE_GENERIC);
        }
        assert_eq!(
            e(&["url_param"]),
            "balance url_param requires an URL parameter name."
        );
        assert_eq!(
            e(&["url_param", "a", "foo"]),
            "balance url_param only accepts 'check_post' modifier (got 'foo')."
        );
        for w in ["hdr(", "hdr()", "hdr(x"] {
            assert_eq!(e(&[w]), "balance hdr requires an http header field name.");
        }
        assert_eq!(
            e(&["hdr(host)", "foo"]),
            "balance hdr(host) only accepts 'use_domain_only' modifier (got 'foo')."
        );
        assert_eq!(
            e(&["uri", "len"]),
            "balance uri : 'len' expects a positive integer (got '')."
        );
        assert_eq!(
            e(&["uri", "len", "0"]),
            "balance uri : 'len' expects a positive integer (got '0')."
        );
        assert_eq!(
            e(&["uri", "depth", "-1"]),
            "balance uri : 'depth' expects a positive integer (got '-1')."
        );
        assert_eq!(
            e(&["uri", "foo"]),
            "balance uri only accepts parameters 'len', 'depth', 'path-only', and 'whole' (got 'foo')."
        );
        assert_eq!(
            e(&["random(0)"]),
            "balance random : number of draws must be at least 1."
        );
        assert_eq!(
            e(&["random(-1)"]),
            "balance random : number of draws must be at least 1."
        );
        assert_eq!(
            e(&["random(x)"]),
            "balance random : unexpected character 'x' after argument."
        );
        assert_eq!(
            e(&["random(0x)"]),
            "balance random : unexpected character 'x' after argument."
        );
        assert_eq!(
            e(&["random(2"]),
            "balance random : missing closing parenthesis."
        );
        for w in ["rdp-cookiex", "rdp-cookie()", "rdp-cookie(x"] {
            assert_eq!(e(&[w]), "balance rdp-cookie : missing cookie name.");
        }
        assert_eq!(e(&["hash"]), "balance hash requires a sample expression.");
    }

    #[test]
    fn lb_parse_hash_balance_factor() {
        assert_eq!(parse_hash_balance_factor(&["0"]), Ok(0));
        assert_eq!(parse_hash_balance_factor(&["150", "x"]), Ok(150));
        assert_eq!(parse_hash_balance_factor(&["x"]), Ok(0));
        for bad in ["50", "100", "-1"] {
            assert_eq!(
                parse_hash_balance_factor(&[bad]),
                Err("'hash-balance-factor' must be 0 or greater than 100.".into())
            );
        }
        assert_eq!(
            parse_hash_balance_factor(&[]),
            Err("'hash-balance-factor' expects an integer argument.".into())
        );
        let uri = parse_balance(&["uri"]).unwrap();
        assert_eq!(uri.effective(false), Algorithm::RoundRobin);
        assert_eq!(uri.effective(true), uri);
    }

    #[test]
    fn lb_parse_hash_type() {
        assert_eq!(parse_hash_type(&["map-based"]), Ok(HashType::MAP_BASED));
        assert_eq!(parse_hash_type(&["consistent"]), Ok(HashType::CONSISTENT));
        assert_eq!(
            parse_hash_type(&["consistent", "sdbm"]),
            Ok(HashType {
                method: HashMethod::Consistent,
                function: HashFn::Sdbm,
                avalanche: false
            })
        );
        assert_eq!(
            parse_hash_type(&["map-based", "crc32", "avalanche", "x"]),
            Ok(HashType {
                method: HashMethod::MapBased,
                function: HashFn::Crc32,
                avalanche: true
            })
        );
        let e = |a: &[&str]| parse_hash_type(a).unwrap_err();
        assert_eq!(
            e(&[]),
            "'hash-type' only supports 'consistent' and 'map-based'."
        );
        assert_eq!(
            e(&["map-basedx"]),
            "'hash-type' only supports 'consistent' and 'map-based'."
        );
        assert_eq!(
            e(&["avalanche"]),
            "experimental feature 'hash-type avalanche' is not supported anymore, please use 'hash-type map-based sdbm avalanche' instead."
        );
        assert_eq!(
            e(&["consistent", "avalanche"]),
            "'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions."
        );
        assert_eq!(
            e(&["consistent", "sdbm", "foo"]),
            "'hash-type' only supports 'avalanche' as a modifier for hash functions."
        );
    }
}
