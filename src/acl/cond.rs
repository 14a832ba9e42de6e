//! ACL expressions (`FETCH [flags] [operator] VALUE...`), named and predefined ACLs, and
//! `if|unless` conditions.

use std::collections::BTreeMap;

use super::fetch::{self, Fetch, SampleExpr};
use super::matcher::{self, Method, Pattern};
use super::{AclError, SampleCtx};
use crate::config::ir::Loc;

/// One ACL line (or one anonymous ACL): a sample expression, a match method, patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclExpr {
    pub expr: SampleExpr,
    pub method: Method,
    pub icase: bool,
    pub patterns: Vec<Pattern>,
    pub loc: Loc,
}

/// A named ACL (every line with that name, OR-ed) or an anonymous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// `None` for `{ ... }`.
    pub name: Option<String>,
    pub exprs: Vec<AclExpr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub negate: bool,
    pub acl: Acl,
}

/// `if|unless TERM... [|| TERM...]...`: OR of AND-groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `unless`
    pub unless: bool,
    pub groups: Vec<Vec<Term>>,
    pub loc: Loc,
}

/// Checks an ACL name the way HAProxy does.
pub fn check_acl_name(name: &str) -> Result<(), String> {
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        Some(c) => Err(format!(
            "character '{c}' is not permitted in acl name '{name}'."
        )),
        None => Ok(()),
    }
}

/// Parses `FETCH [flags] [operator] VALUE...`. Returns the expression and, when no pattern was
/// given for a method that needs one, HAProxy's warning text.
pub fn parse_acl_expr(words: &[String], loc: &Loc) -> Result<(AclExpr, Option<String>), AclError> {
    let Some(first) = words.first() else {
        return Err(AclError::Haproxy(
            "missing fetch method in ACL expression ''".into(),
        ));
    };
    // ACL-only keywords (`path_beg`) stand for a fetch with a fixed match method.
    let base_name = first.split(['(', ',']).next().unwrap_or("");
    let (expr, mut method) = match fetch::acl_only_keyword(base_name) {
        Some((f, m)) if !matches!(base_name, "method" | "path" | "url" | "base") => {
            let text = format!("{f}{}", &first[base_name.len()..]);
            let e = fetch::parse_expr(&text).map_err(|e| match e {
                fetch::FetchError::Unsupported(m) if m.starts_with("sample fetch") => {
                    AclError::Unsupported(format!("ACL keyword '{base_name}'"))
                }
                fetch::FetchError::Haproxy(m) => AclError::Haproxy(
                    m.replace(
                        &format!("ACL keyword '{f}'"),
                        &format!("ACL keyword '{base_name}'"),
                    )
                    .replace(
                        &format!("ACL expression '{text}'"),
                        &format!("ACL expression '{first}'"),
                    ),
                ),
                e => e.into(),
            })?;
            (
                SampleExpr {
                    name: base_name.to_string(),
                    ..e
                },
                Method::parse(m),
            )
        }
        _ => (fetch::parse_expr(first)?, None),
    };
    let mut icase = false;
    let mut files = Vec::new();
    let mut i = 1;
    while i < words.len() {
        let w = words[i].as_str();
        if !w.starts_with('-') {
            break;
        }
        match w {
            "--" => {
                i += 1;
                break;
            }
            "-i" => icase = true,
            "-n" | "-u" => {}
            _ if !matches!(w, "-f" | "-M" | "-m") => {
                return Err(AclError::Haproxy(format!(
                    "'{w}' is not a valid ACL option. Please use '--' before any pattern beginning with a '-'"
                )));
            }
            "-f" | "-M" => {
                let Some(f) = words.get(i + 1) else {
                    return Err(AclError::Haproxy(format!(
                        "'{w}' must be followed by a file name"
                    )));
                };
                if w == "-M" {
                    return Err(AclError::Unsupported("ACL flag '-M' (map files)".into()));
                }
                files.push(f.clone());
                i += 1;
            }
            "-m" => {
                let Some(m) = words.get(i + 1) else {
                    return Err(AclError::Haproxy(
                        "missing matching method after '-m'".into(),
                    ));
                };
                method = Some(Method::parse(m).ok_or_else(|| {
                    AclError::Haproxy(format!(
                        "unknown matching method '{m}' when parsing ACL expression"
                    ))
                })?);
                i += 1;
            }
            _ => break,
        }
        i += 1;
    }
    let method = method.unwrap_or_else(|| Method::default_for(expr.smp_type()));
    let mut pattern_words: Vec<String> = words[i..].to_vec();
    for f in &files {
        let text = std::fs::read_to_string(f)
            .map_err(|_| AclError::Haproxy(format!("failed to open pattern file <{f}>")))?;
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            pattern_words.push(l.to_string());
        }
    }
    if matches!(method, Method::Found | Method::Bool) {
        // HAProxy ignores patterns given to these methods.
        pattern_words.clear();
    }
    let patterns = matcher::parse_patterns(method, &pattern_words, icase).map_err(|e| {
        if e.contains("regex engine") {
            AclError::Unsupported(e)
        } else {
            AclError::Haproxy(e)
        }
    })?;
    let mut warning = None;
    let dashdash = words[1..].iter().any(|w| w == "--");
    if patterns.is_empty()
        && files.is_empty()
        && !dashdash
        && !matches!(method, Method::Found | Method::Bool)
    {
        warning = Some(format!(
            "parsing acl keyword '{}' :\n  no pattern to match against were provided, so this ACL will never match.\n  If this is what you intended, please add '--' to get rid of this warning.\n  If you intended to match only for existence, please use '-m found'.\n  If you wanted to force an int to match as a bool, please use '-m bool'.\n",
            base_name
        ));
    }
    Ok((
        AclExpr {
            expr,
            method,
            icase,
            patterns,
            loc: loc.clone(),
        },
        warning,
    ))
}

fn words(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// HAProxy's predefined ACLs.
pub fn predefined(name: &str, loc: &Loc) -> Option<Result<Acl, AclError>> {
    let def: &[&str] = match name {
        "TRUE" => &["always_true"],
        "FALSE" => &["always_false"],
        "LOCALHOST" => &["src", "127.0.0.1/8", "::1"],
        "HTTP" => &["req.proto_http"],
        "HTTP_1.0" => &["req.ver", "1.0"],
        "HTTP_1.1" => &["req.ver", "1.1"],
        "HTTP_2.0" => &["req.ver", "2.0"],
        "HTTP_CONTENT" => &["req.hdr_val(content-length)", "gt", "0"],
        "HTTP_URL_ABS" => &["url_reg", "^[^/:]*://"],
        "HTTP_URL_SLASH" => &["url_beg", "/"],
        "HTTP_URL_STAR" => &["url", "*"],
        "METH_CONNECT" => &["method", "CONNECT"],
        "METH_DELETE" => &["method", "DELETE"],
        "METH_GET" => &["method", "GET", "HEAD"],
        "METH_HEAD" => &["method", "HEAD"],
        "METH_OPTIONS" => &["method", "OPTIONS"],
        "METH_POST" => &["method", "POST"],
        "METH_PUT" => &["method", "PUT"],
        "METH_TRACE" => &["method", "TRACE"],
        "REQ_CONTENT" => &["req.len", "gt", "0"],
        "WAIT_END" => &["wait_end"],
        "RDP_COOKIE" => {
            return Some(Err(AclError::Unsupported(format!(
                "predefined ACL '{name}' (TCP content inspection)"
            ))));
        }
        _ => return None,
    };
    Some(parse_acl_expr(&words(def), loc).map(|(e, _)| Acl {
        name: Some(name.to_string()),
        exprs: vec![e],
    }))
}

/// Parses the words after `if`/`unless`. `acls` are the proxy's named ACLs so far. Returns the
/// condition and the warnings of its anonymous ACLs.
pub fn parse_condition(
    unless: bool,
    ws: &[String],
    acls: &BTreeMap<String, Acl>,
    loc: &Loc,
) -> Result<(Condition, Vec<String>), AclError> {
    let mut groups: Vec<Vec<Term>> = vec![Vec::new()];
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < ws.len() {
        let mut w = ws[i].as_str();
        if w == "||" || w == "or" {
            groups.push(Vec::new());
            i += 1;
            continue;
        }
        let mut negate = false;
        while let Some(r) = w.strip_prefix('!') {
            negate = !negate;
            w = r;
        }
        if w.is_empty() {
            // A lone `!` applies to the next word.
            i += 1;
            if i >= ws.len() {
                break;
            }
            w = ws[i].as_str();
            while let Some(r) = w.strip_prefix('!') {
                negate = !negate;
                w = r;
            }
        }
        let acl = if w == "{" {
            let Some(end) = ws[i + 1..].iter().position(|x| x == "}") else {
                return Err(AclError::Haproxy("missing closing '}' in condition".into()));
            };
            let inner = &ws[i + 1..i + 1 + end];
            let (e, warn) = parse_acl_expr(inner, loc)?;
            warnings.extend(warn);
            i += end + 1;
            Acl {
                name: None,
                exprs: vec![e],
            }
        } else if let Some(a) = acls.get(w) {
            Acl {
                name: Some(w.to_string()),
                exprs: a.exprs.clone(),
            }
        } else if let Some(p) = predefined(w, loc) {
            p?
        } else {
            return Err(AclError::Haproxy(format!("no such ACL : '{w}'")));
        };
        groups
            .last_mut()
            .unwrap_or(&mut Vec::new())
            .push(Term { negate, acl });
        i += 1;
    }
    groups.retain(|g| !g.is_empty());
    Ok((
        Condition {
            unless,
            groups,
            loc: loc.clone(),
        },
        warnings,
    ))
}

impl Condition {
    /// Refreshes named ACLs from the proxy's final ACL table (later lines extend a name).
    pub fn resolve(&mut self, acls: &BTreeMap<String, Acl>) {
        for t in self.groups.iter_mut().flatten() {
            if let Some(n) = &t.acl.name {
                if let Some(a) = acls.get(n) {
                    t.acl.exprs = a.exprs.clone();
                }
            }
        }
    }

    /// The most a fetch of this condition needs (connection, request or response).
    pub fn needs(&self) -> fetch::Needs {
        super::fetches(self)
            .map(|e| e.expr.fetch.needs())
            .max()
            .unwrap_or(fetch::Needs::L4)
    }
}

fn expr_matches(e: &AclExpr, ctx: &SampleCtx) -> bool {
    let vals = e.expr.values(ctx);
    vals.iter()
        .any(|s| matcher::matches(e.method, e.icase, s, &e.patterns))
}

/// Evaluates a condition (`true`: the rule applies).
pub fn eval(c: &Condition, ctx: &SampleCtx) -> bool {
    let r = c.groups.iter().any(|g| {
        g.iter()
            .all(|t| t.acl.exprs.iter().any(|e| expr_matches(e, ctx)) != t.negate)
    });
    // An empty condition (`if` alone) is true, as in HAProxy.
    let r = r || c.groups.is_empty();
    r != c.unless
}

/// Three-valued evaluation while TCP content is still arriving: `None` when the answer may
/// still change with more data (HAProxy's MISS). `incomplete` tells which fetches may still
/// change; an expression that does not match yet on such a fetch is a MISS.
pub fn eval_partial(
    c: &Condition,
    ctx: &SampleCtx,
    incomplete: &dyn Fn(&Fetch) -> bool,
) -> Option<bool> {
    let expr = |e: &AclExpr| -> Option<bool> {
        if expr_matches(e, ctx) {
            Some(true)
        } else if incomplete(&e.expr.fetch) {
            None
        } else {
            Some(false)
        }
    };
    let term = |t: &Term| -> Option<bool> {
        // An ACL is the OR of its expressions.
        let mut miss = false;
        for e in &t.acl.exprs {
            match expr(e) {
                Some(true) => return Some(!t.negate),
                None => miss = true,
                Some(false) => {}
            }
        }
        if miss { None } else { Some(t.negate) }
    };
    let group = |g: &Vec<Term>| -> Option<bool> {
        let mut miss = false;
        for t in g {
            match term(t) {
                Some(false) => return Some(false),
                None => miss = true,
                Some(true) => {}
            }
        }
        if miss { None } else { Some(true) }
    };
    let r = if c.groups.is_empty() {
        Some(true)
    } else {
        let mut miss = false;
        let mut any = false;
        for g in &c.groups {
            match group(g) {
                Some(true) => {
                    any = true;
                    break;
                }
                None => miss = true,
                Some(false) => {}
            }
        }
        if any {
            Some(true)
        } else if miss {
            None
        } else {
            Some(false)
        }
    };
    r.map(|v| v != c.unless)
}

/// Does a fetch of this expression name a backend or server that must exist?
pub fn referenced_proxy(e: &AclExpr) -> Option<(&str, Option<&str>)> {
    match &e.expr.fetch {
        Fetch::NbSrv(Some(b)) => Some((b, None)),
        Fetch::SrvIsUp(b, s) => Some((b, Some(s))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{Limits, Parsed, parse_request};

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn req(raw: &str) -> crate::http1::Request {
        match parse_request(raw.as_bytes(), &Limits::default()) {
            Ok(Parsed::Complete(r)) => r,
            _ => panic!("bad request"),
        }
    }

    fn acls(defs: &[(&str, &str)]) -> BTreeMap<String, Acl> {
        let mut m: BTreeMap<String, Acl> = BTreeMap::new();
        for (n, d) in defs {
            let (e, _) = parse_acl_expr(&w(d), &Loc::default()).unwrap();
            m.entry(n.to_string())
                .or_insert_with(|| Acl {
                    name: Some(n.to_string()),
                    exprs: Vec::new(),
                })
                .exprs
                .push(e);
        }
        m
    }

    fn check(cond: &str, acl: &BTreeMap<String, Acl>, r: &crate::http1::Request) -> bool {
        let (c, _) = parse_condition(false, &w(cond), acl, &Loc::default()).unwrap();
        let ctx = SampleCtx {
            src: Some("10.1.2.3:4000".parse().unwrap()),
            dst: Some("127.0.0.1:80".parse().unwrap()),
            fe_name: "fe",
            req: Some(r),
            ..Default::default()
        };
        eval(&c, &ctx)
    }

    #[test]
    fn conditions() {
        let a = acls(&[
            ("api", "path_beg /api"),
            ("api", "path_beg /v2"),
            ("lan", "src 10.0.0.0/8"),
            ("host_a", "hdr(host) -i a.example"),
            ("cnt", "hdr_cnt(x-a) ge 2"),
        ]);
        let r = req(
            "GET /v2/x?id=7&n=a HTTP/1.1\r\nHost: A.example\r\nX-A: 1, 2\r\nCookie: s=abc; t=1\r\n\r\n",
        );
        assert!(check("api", &a, &r));
        assert!(check("api lan host_a", &a, &r));
        assert!(!check("api !lan", &a, &r));
        assert!(check("!lan || api", &a, &r));
        assert!(check("!lan or api", &a, &r));
        assert!(check("cnt", &a, &r));
        assert!(check(
            "{ url_param(id) 7 } { cook(s) abc } METH_GET HTTP_1.1",
            &a,
            &r
        ));
        assert!(!check("{ url_param(id) 8 }", &a, &r));
        assert!(check(
            "{ query -m sub n=a } { req.ver 1.1 } !{ ssl_fc }",
            &a,
            &r
        ));
        assert!(check("{ hdr(host),lower -m str a.example }", &a, &r));
        assert!(check("{ base -i -m beg a.example/v2 }", &a, &r));
        assert!(check("TRUE !FALSE", &a, &r));
        assert!(!check("LOCALHOST", &a, &r));
        assert!(check("{ hdr_val(x-a) 1 } { hdr(x-a,-1) 2 }", &a, &r));
        assert!(check("", &a, &r));
    }

    #[test]
    fn errors_like_haproxy() {
        let a = BTreeMap::new();
        let e = |s: &str| parse_condition(false, &w(s), &a, &Loc::default()).unwrap_err();
        assert_eq!(
            e("nosuch"),
            AclError::Haproxy("no such ACL : 'nosuch'".into())
        );
        assert_eq!(
            e("{ path_beg /x"),
            AclError::Haproxy("missing closing '}' in condition".into())
        );
        assert_eq!(
            e("{ foo_bar x }"),
            AclError::Haproxy("unknown fetch method 'foo_bar' in ACL expression 'foo_bar'".into())
        );
        assert!(matches!(
            e("{ req.rdp_cookie x }"),
            AclError::Unsupported(_)
        ));
        assert!(matches!(
            e("{ req.rdp_cookie x }"),
            AclError::Unsupported(_)
        ));
        assert!(matches!(e("RDP_COOKIE"), AclError::Unsupported(_)));
        let (_, warn) = parse_acl_expr(&w("path_beg"), &Loc::default()).unwrap();
        assert!(warn.unwrap().contains("no pattern to match against"));
        assert!(
            parse_acl_expr(&w("path_beg --"), &Loc::default())
                .unwrap()
                .1
                .is_none()
        );
        assert_eq!(
            parse_acl_expr(&w("hdr(host) -m frob x"), &Loc::default()).unwrap_err(),
            AclError::Haproxy("unknown matching method 'frob' when parsing ACL expression".into())
        );
    }
}

#[cfg(test)]
mod partial_tests {
    use super::*;

    /// Three-valued evaluation: a MISS waits unless another term already decides.
    #[test]
    fn miss_propagates_like_haproxy() {
        let acls = BTreeMap::new();
        let loc = Loc::default();
        let w = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_string).collect() };
        let c = |s: &str| parse_condition(false, &w(s), &acls, &loc).unwrap().0;
        let ctx = SampleCtx {
            payload: Some(b"hel"),
            wait_end: Some(false),
            ..Default::default()
        };
        let inc = |f: &Fetch| matches!(f, Fetch::WaitEnd | Fetch::ReqLen);
        assert_eq!(eval_partial(&c("WAIT_END"), &ctx, &inc), None);
        assert_eq!(eval_partial(&c("FALSE WAIT_END"), &ctx, &inc), Some(false));
        assert_eq!(eval_partial(&c("TRUE || WAIT_END"), &ctx, &inc), Some(true));
        assert_eq!(eval_partial(&c("!WAIT_END"), &ctx, &inc), None);
        assert_eq!(eval_partial(&c("{ req.len gt 2 }"), &ctx, &inc), Some(true));
        assert_eq!(eval_partial(&c("{ req.len gt 5 }"), &ctx, &inc), None);
        let done = SampleCtx {
            wait_end: Some(true),
            ..ctx
        };
        assert_eq!(eval_partial(&c("WAIT_END"), &done, &|_| false), Some(true));
    }
}
