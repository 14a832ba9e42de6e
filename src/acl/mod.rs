//! ACLs, conditions and sample fetches, the HAProxy 2.6 way (configuration manual §7).
//!
//! - [`fetch`]: sample fetches (`src`, `path`, `req.hdr(host)`, ...) and converters
//!   (`lower`, `upper`, `length`, `hex`).
//! - [`matcher`]: match methods (`-m str|beg|end|sub|reg|dom|dir|len|found|bool|int|ip|bin`)
//!   and pattern parsing.
//! - [`cond`]: named ACLs (`acl NAME FETCH [flags] [operator] VALUE...`), anonymous
//!   `{ ... }` ACLs, predefined ACLs (`TRUE`, `METH_GET`, ...) and `if|unless` conditions with
//!   implicit AND, `||`/`or` and `!`.
//! - [`fmt`]: the log-format strings of rule arguments (`set-header X %[src]`).
//!
//! # API for other modules
//!
//! A condition is plain data stored in the IR ([`Condition`], with the file:line of its rule).
//! Parse one while parsing a proxy keyword with [`cond::parse_condition`] (it needs the proxy's
//! named ACLs, `Proxy::acls`), then evaluate it at run time:
//!
//! ```ignore
//! let ctx = SampleCtx {
//!     src: Some(client_addr), dst: Some(local_addr),
//!     fe_name: "fe", fe_id: 2, be_name: Some("be"), be_id: Some(3),
//!     req: Some(&request),      // crate::http1::Request, or None at connection time
//!     res: None,                // crate::http1::Response for http-response rules
//!     servers: None,            // Some(&dyn ServerState) for nbsrv()/srv_is_up()
//! };
//! let yes: bool = crate::acl::eval(&cond, &ctx);
//! ```
//!
//! Rules are evaluated by `runtime::rules` (`on_request`, `on_response`, `tcp_start`,
//! `accept_connection`). `http-request use-service NAME` is parsed into the IR with its
//! condition; a service is enabled by adding its name to `config::keywords::rules::SERVICES` and
//! answering `ReqVerdict::Service` in `runtime::http::answer_locally`.
//!
//! Named ACLs referenced by a condition are copied into it when the configuration is complete
//! ([`resolve_proxy`], called by `config::validate`), so a condition evaluates on its own. A
//! condition stored in a new place of `Proxy` (e.g. `stats admin if COND`) must be listed by
//! `Proxy::conditions_mut`/`conditions` so that later `acl` lines with the same name extend it
//! and its `nbsrv()`/`srv_is_up()` arguments are checked. Errors: [`AclError::Haproxy`] carries
//! HAProxy's text (prefix it like `error detected while parsing ... : {text}.`),
//! [`AclError::Unsupported`] what rhaproxy lacks (report it with "not supported by rhaproxy"). Fetches HAProxy knows but rhaproxy
//! does not evaluate are refused at `-c` time ("not supported by rhaproxy"), never silently false.

pub mod cond;
pub mod converters;
pub mod fetch;
pub mod fmt;
pub mod matcher;
pub mod stk_fetch;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

pub use cond::{Acl, AclExpr, Condition, Term, eval};

/// One value produced by a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    Bool(bool),
    Int(i64),
    Ip(IpAddr),
    Str(Vec<u8>),
}

impl Sample {
    /// The value as text (integers in decimal, addresses in their usual form).
    pub fn as_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Sample::Str(b) => Cow::Borrowed(b),
            Sample::Bool(b) => Cow::Borrowed(if *b { b"1" } else { b"0" }),
            Sample::Int(n) => Cow::Owned(n.to_string().into_bytes()),
            Sample::Ip(ip) => Cow::Owned(ip.to_string().into_bytes()),
        }
    }
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Sample::Str(b) => b,
            o => o.as_bytes().into_owned(),
        }
    }
}

/// Server states for `nbsrv()` and `srv_is_up()`.
pub trait ServerState {
    /// Usable servers of backend `be` (`None`: no such backend).
    fn nbsrv(&self, be: &str) -> Option<u32>;
    /// Is server `srv` of backend `be` up (`None`: no such server)?
    fn srv_is_up(&self, be: &str, srv: &str) -> Option<bool>;
    /// Connections in progress on backend `be` (`be_conn`).
    fn be_conn(&self, _be: &str) -> Option<u32> {
        None
    }
    /// A soft stop is in progress (`stopping`).
    fn stopping(&self) -> bool {
        false
    }
}

/// What the fetches read.
#[derive(Clone, Copy, Default)]
pub struct SampleCtx<'a> {
    /// Client address (as accepted).
    pub src: Option<SocketAddr>,
    /// Local (or original destination) address.
    pub dst: Option<SocketAddr>,
    pub fe_name: &'a str,
    pub fe_id: u32,
    /// The backend chosen so far (the frontend itself before `use_backend` for a listen).
    pub be_name: Option<&'a str>,
    pub be_id: Option<u32>,
    pub req: Option<&'a crate::http1::Request>,
    pub res: Option<&'a crate::http1::Response>,
    pub servers: Option<&'a dyn ServerState>,
    /// Variables (`var()`), when the caller keeps them.
    pub vars: Option<&'a Vars>,
    /// Client bytes waiting (TCP content inspection: `req.len`, `req.payload`, `req.ssl_sni`).
    pub payload: Option<&'a [u8]>,
    /// During TCP content inspection: whether the inspection delay is over (`wait_end`);
    /// `None` elsewhere (then `wait_end` is true).
    pub wait_end: Option<bool>,
}

/// `proc.*` variables, shared by the whole process.
static PROC_VARS: std::sync::Mutex<Option<std::collections::HashMap<String, Sample>>> =
    std::sync::Mutex::new(None);

/// The variables of one connection and its current transaction (`set-var`), by full name
/// (`txn.x`); `proc.*` ones live in the process.
#[derive(Debug, Default, Clone)]
pub struct Vars {
    map: std::collections::HashMap<String, Sample>,
    /// The connection's destination as changed by `set-dst` / `set-dst-port` (kept for the
    /// connection's life, like HAProxy's).
    pub dst: Option<SocketAddr>,
    /// The client address as changed by `set-src` / `set-src-port` (the connection's from
    /// then on).
    pub src: Option<SocketAddr>,
    /// `set-log-level silent` on the current transaction.
    pub silent: bool,
    /// The stick counters tracked (`track-sc0..2`).
    pub stk: crate::runtime::stkctr::Trackers,
    /// What `capture` rules captured in this transaction: (response side, slot, value).
    pub captures: Vec<(bool, usize, Vec<u8>)>,
}

impl Vars {
    pub fn get(&self, name: &str) -> Option<Sample> {
        if name.starts_with("proc.") {
            let g = PROC_VARS.lock().unwrap_or_else(|e| e.into_inner());
            return g.as_ref().and_then(|m| m.get(name).cloned());
        }
        self.map.get(name).cloned()
    }
    pub fn set(&mut self, name: &str, v: Sample) {
        if name.starts_with("proc.") {
            let mut g = PROC_VARS.lock().unwrap_or_else(|e| e.into_inner());
            g.get_or_insert_with(Default::default)
                .insert(name.to_string(), v);
            return;
        }
        self.map.insert(name.to_string(), v);
    }
    pub fn unset(&mut self, name: &str) {
        if name.starts_with("proc.") {
            let mut g = PROC_VARS.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(m) = g.as_mut() {
                m.remove(name);
            }
            return;
        }
        self.map.remove(name);
    }
    /// A new transaction: `txn.`, `req.` and `res.` variables end, `sess.` ones stay.
    pub fn new_transaction(&mut self) {
        self.map.retain(|k, _| k.starts_with("sess."));
        self.silent = false;
        self.captures.clear();
    }
    /// `(name, value as text)` for the log record (`%[var(txn.x)]`).
    pub fn for_log(&self) -> Vec<(String, Vec<u8>)> {
        self.map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().into_owned()))
            .collect()
    }
}

/// Why an ACL, condition or sample expression was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclError {
    /// HAProxy refuses it too; HAProxy's text (without the "error detected while ..." prefix).
    Haproxy(String),
    /// Valid for HAProxy 2.6, not implemented by rhaproxy: what is missing.
    Unsupported(String),
}

impl From<fetch::FetchError> for AclError {
    fn from(e: fetch::FetchError) -> Self {
        match e {
            fetch::FetchError::Haproxy(m) => AclError::Haproxy(m),
            fetch::FetchError::Unsupported(m) => AclError::Unsupported(m),
        }
    }
}

/// Copies the named ACLs of `p` into every condition of `p` (HAProxy links a condition to the
/// ACL by name, and later `acl` lines with the same name extend it).
pub fn resolve_proxy(p: &mut crate::config::ir::Proxy) {
    let acls = std::mem::take(&mut p.acls);
    for c in p.conditions_mut() {
        c.resolve(&acls);
    }
    p.acls = acls;
}

/// Every fetch used by a condition, with the line of the ACL that holds it.
pub fn fetches(c: &Condition) -> impl Iterator<Item = &AclExpr> {
    c.groups.iter().flatten().flat_map(|t| t.acl.exprs.iter())
}

#[cfg(test)]
mod robustness {
    use super::*;
    use crate::config::ir::Loc;

    /// Hostile or truncated input never panics; errors are plain values.
    #[test]
    fn bad_input_never_panics() {
        let inputs = [
            "",
            "(",
            ")",
            ",",
            "%",
            "%[",
            "%[]",
            "%[src",
            "%[src,",
            "%[src,lower(",
            "%{+Q}",
            "hdr(",
            "hdr(,",
            "hdr(x,-99999999999)",
            "req.payload(",
            "req.payload(1)",
            "req.payload(x,y)",
            "int(",
            "int(99999999999999999999)",
            "var(",
            "var(x)",
            "field(",
            "path,field(",
            "path,field(1,",
            "path,field(0,/)",
            "path,map(",
            "path,map_zz(x)",
            "path,regsub(",
            "path,regsub((,x)",
            "nbsrv(",
            "srv_is_up(",
            "srv_is_up(a/b/c)",
            "\\",
            "path,\\",
            "url_param(,",
            "{",
            "}",
            "!",
            "!!",
            "{ }",
            "{ path",
            "or",
            "|| ||",
            "{ path_beg -m }",
            "{ path -f }",
            "{ src 1.2.3.4/99 }",
            "{ src_port gt }",
            "{ src_port 5:3 }",
            "{ path -m reg ( }",
        ];
        let acls = std::collections::BTreeMap::new();
        let loc = Loc::default();
        for i in inputs {
            let _ = fetch::parse_expr(i);
            let _ = fmt::Fmt::parse(i);
            let words: Vec<String> = i.split(' ').map(str::to_string).collect();
            let _ = cond::parse_acl_expr(&words, &loc);
            let _ = cond::parse_condition(false, &words, &acls, &loc);
        }
        // Truncated TLS records and odd payloads.
        let hello = [0x16u8, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3];
        for n in 0..hello.len() {
            let _ = fetch::tls_sni(&hello[..n]);
            let _ = fetch::tls_hello_type(&hello[..n]);
            let _ = fetch::payload_ready(&hello[..n]);
        }
        // The path of an absolute URI without one is an empty sub-slice of the URI.
        for u in [&b"http://host"[..], b"http://host?x", b"", b"*", b"http://"] {
            let p = fetch::uri_path(u);
            let start = p.as_ptr() as usize - u.as_ptr() as usize;
            assert!(start + p.len() <= u.len(), "{u:?}");
        }
    }
}
