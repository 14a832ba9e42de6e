//! The configuration as plain data: no sockets, no threads, every item with its file:line.
//! The runtime is built from this and nothing else.
//!
//! Inheritance follows HAProxy: a proxy starts as a copy of its `defaults` section (the last one
//! above it, or the one named by `from`), then its own lines override. Values that came from a
//! defaults section keep the defaults' file:line, which is how diagnostics name "both places".

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub use crate::acl::Condition;
pub use crate::acl::fmt::Fmt;

/// A place in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: usize,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A value and the line that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Located<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Located { value, loc }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub global: Global,
    /// All `defaults` sections in declaration order.
    pub defaults: Vec<Proxy>,
    /// Frontends, backends and listens in declaration order (proxy ids follow this order).
    pub proxies: Vec<Proxy>,
    /// Sections recognised but not proxies: userlist, peers, resolvers, mailers, ...
    pub other_sections: Vec<OtherSection>,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherSection {
    pub kind: &'static str,
    pub name: Option<String>,
    pub loc: Loc,
}

#[derive(Debug, Clone, Default)]
pub struct Global {
    pub daemon: Option<Loc>,
    pub master_worker: Option<Loc>,
    pub maxconn: Option<Located<u32>>,
    pub nbthread: Option<Located<u32>>,
    pub user: Option<Located<String>>,
    pub group: Option<Located<String>>,
    pub uid: Option<Located<u32>>,
    pub gid: Option<Located<u32>>,
    pub chroot: Option<Located<String>>,
    pub pidfile: Option<Located<String>>,
    /// rhaproxy accepts HAProxy 2.9's `setcap` to keep capabilities across the uid change.
    pub setcap: Option<Located<Vec<String>>>,
    /// Raw `log` lines (the words after `log`), parsed by the logging module.
    pub log: Vec<Located<Vec<String>>>,
    pub log_tag: Option<Located<String>>,
    /// `log-send-hostname [NAME]`: `Some(None)` means "use the host name".
    pub log_send_hostname: Option<Located<Option<String>>>,
    pub hostname: Option<Located<String>>,
    pub zero_warning: bool,
    pub quiet: bool,
    pub hard_stop_after: Option<Located<u64>>,
    pub bufsize: Option<Located<u32>>,
    pub stats_timeout: Option<Located<u64>>,
    /// `stats socket` lines (the runtime API).
    pub stats_sockets: Vec<Located<StatsSocket>>,
}

/// Privilege level of a stats socket (`level`), ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum CliLevel {
    User,
    #[default]
    Operator,
    Admin,
}

/// Where a stats socket listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsAddr {
    Unix(String),
    Tcp(std::net::SocketAddr),
}

/// One `stats socket` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSocket {
    pub addr: StatsAddr,
    /// `mode` (octal permissions of a UNIX socket).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub level: CliLevel,
    /// `expose-fd listeners`: hands the listening sockets to a new process (`-x`).
    pub expose_fd: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Defaults,
    Frontend,
    Backend,
    Listen,
}

impl ProxyKind {
    pub fn keyword(self) -> &'static str {
        match self {
            ProxyKind::Defaults => "defaults",
            ProxyKind::Frontend => "frontend",
            ProxyKind::Backend => "backend",
            ProxyKind::Listen => "listen",
        }
    }
    pub fn cap(self) -> Cap {
        match self {
            ProxyKind::Frontend => Cap::FE,
            ProxyKind::Backend => Cap::BE,
            ProxyKind::Listen | ProxyKind::Defaults => Cap::FE_BE,
        }
    }
}

/// Proxy capabilities: can it accept connections (FE), can it hold servers (BE)?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap(u8);

impl Cap {
    pub const FE: Cap = Cap(1);
    pub const BE: Cap = Cap(2);
    pub const FE_BE: Cap = Cap(3);
    pub fn contains(self, o: Cap) -> bool {
        self.0 & o.0 == o.0
    }
    pub fn intersects(self, o: Cap) -> bool {
        self.0 & o.0 != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Tcp,
    Http,
}

/// HTTP connection modes; HAProxy applies the more restrictive of frontend and backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConnMode {
    KeepAlive,
    ServerClose,
    Close,
}

impl ConnMode {
    pub fn option_name(self) -> &'static str {
        match self {
            ConnMode::KeepAlive => "http-keep-alive",
            ConnMode::ServerClose => "http-server-close",
            ConnMode::Close => "httpclose",
        }
    }
}

/// Every timeout in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Timeouts {
    pub client: Option<Located<u64>>,
    pub client_fin: Option<Located<u64>>,
    pub server: Option<Located<u64>>,
    pub server_fin: Option<Located<u64>>,
    pub connect: Option<Located<u64>>,
    pub queue: Option<Located<u64>>,
    pub tunnel: Option<Located<u64>>,
    pub tarpit: Option<Located<u64>>,
    pub check: Option<Located<u64>>,
    pub http_request: Option<Located<u64>>,
    pub http_keep_alive: Option<Located<u64>>,
}

/// `source ADDR[:PORT[-PORT]] [usesrc ...] [interface NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub addr: std::net::IpAddr,
    pub port_low: u16,
    pub port_high: u16,
    pub usesrc: Option<UseSrc>,
    pub interface: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseSrc {
    /// The client's address and port.
    Client,
    /// The client's address, port chosen by the kernel.
    ClientIp,
    /// A fixed address (and optional port).
    Addr(std::net::IpAddr, u16),
    /// The last (or `occ`-th) address found in an HTTP header.
    HdrIp { header: String, occ: i32 },
}

/// One address of a `bind` line, as written and as resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    pub text: String,
    /// First and last port (equal when no range).
    pub addr: SocketAddr,
    pub port_high: u16,
}

#[derive(Debug, Clone, Default)]
pub struct Bind {
    pub loc: Loc,
    pub addrs: Vec<ListenSpec>,
    pub transparent: bool,
    pub maxconn: Option<u32>,
    pub backlog: Option<u32>,
    pub v4v6: bool,
    pub v6only: bool,
    pub name: Option<String>,
    pub interface: Option<String>,
    pub id: Option<u32>,
    pub accept_proxy: bool,
    pub defer_accept: bool,
}

/// The server options that `default-server` can also set.
#[derive(Debug, Clone)]
pub struct ServerParams {
    pub weight: u32,
    pub backup: bool,
    pub disabled: bool,
    pub maxconn: Option<u32>,
    pub maxqueue: Option<u32>,
    pub check: bool,
    pub inter: u64,
    pub fastinter: Option<u64>,
    pub downinter: Option<u64>,
    pub rise: u32,
    pub fall: u32,
    pub check_port: Option<u16>,
    pub check_addr: Option<std::net::IpAddr>,
    pub source: Option<Located<Source>>,
    pub send_proxy: bool,
    pub on_marked_down_shutdown: bool,
}

impl Default for ServerParams {
    fn default() -> Self {
        ServerParams {
            weight: 1,
            backup: false,
            disabled: false,
            maxconn: None,
            maxqueue: None,
            check: false,
            inter: 2000,
            fastinter: None,
            downinter: None,
            rise: 2,
            fall: 3,
            check_port: None,
            check_addr: None,
            source: None,
            send_proxy: false,
            on_marked_down_shutdown: false,
        }
    }
}

/// Where a server lives. `Intercept` is `0.0.0.0` / no address: connect to the original
/// destination of the accepted connection (TPROXY interception).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTarget {
    Addr(SocketAddr),
    /// Address fixed, port taken from the accepted connection (optionally with an offset).
    AddrPortFromClient(std::net::IpAddr, i32),
    Intercept {
        port: Option<u16>,
    },
}

#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub loc: Loc,
    pub addr_text: String,
    pub target: ServerTarget,
    /// Explicit `id N`.
    pub id: Option<u32>,
    /// The id HAProxy would assign (explicit or automatic; see `crate::lb::assign_puids`).
    pub puid: u32,
    pub params: ServerParams,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseBackend {
    pub backend: String,
    /// `use_backend %[...]`: the name is computed per request.
    pub dynamic: Option<Fmt>,
    /// The `if`/`unless` condition, `None` when unconditional.
    pub cond: Option<Condition>,
    pub loc: Loc,
}

/// One `http-request`, `http-response`, `tcp-request` or `redirect` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule<A> {
    pub action: A,
    pub cond: Option<Condition>,
    pub loc: Loc,
}

/// `redirect location|prefix|scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    Location,
    Prefix,
    Scheme,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub kind: RedirectKind,
    pub target: Fmt,
    /// 301, 302 (default), 303, 307 or 308.
    pub code: u16,
    pub drop_query: bool,
    pub append_slash: bool,
}

/// Actions of `http-request` and `http-response` rules (and the `redirect` keyword).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAction {
    /// Stop evaluating the rules of this list.
    Allow,
    /// Answer with the error page of `status` (403 by default).
    Deny {
        status: u16,
    },
    /// `return [status N] [content-type T] [string S | lf-string S] [hdr NAME FMT]...`
    Return {
        status: u16,
        content_type: Option<String>,
        body: Option<Fmt>,
        headers: Vec<(String, Fmt)>,
        /// A `deny` with its own answer (logged as a deny: termination `PR`/`PH`).
        deny: bool,
    },
    Redirect(Redirect),
    SetHeader(String, Fmt),
    AddHeader(String, Fmt),
    DelHeader(String),
    SetPath(Fmt),
    SetQuery(Fmt),
    SetUri(Fmt),
    SetMethod(Fmt),
    /// `http-response set-status N [reason R]`.
    SetStatus(u16, Option<String>),
    /// `use-service NAME`: kept for the service implementations; refused at `-c` until the
    /// service exists.
    UseService(String),
    /// `set-var(NAME[,COND]) EXPR`
    SetVar {
        name: String,
        expr: crate::acl::fetch::SampleExpr,
        only: VarCond,
    },
    UnsetVar(String),
    /// `replace-path|replace-uri|replace-header|replace-value`: when `re` matches, the whole
    /// value becomes `fmt` with `\N` replaced by the N-th group.
    Replace {
        what: ReplaceWhat,
        re: crate::acl::matcher::Re,
        fmt: Fmt,
    },
    /// `set-dst EXPR` / `set-dst-port EXPR`: the destination of the client connection (for the
    /// rest of the connection), used by servers with no address (`server NAME 0.0.0.0`).
    SetDst(crate::acl::fetch::SampleExpr),
    SetDstPort(crate::acl::fetch::SampleExpr),
    /// `set-log-level silent`: the transaction is not logged.
    SetLogSilent,
    /// Close the client connection without a response.
    Reject,
    /// Close the client connection with a reset, without a response.
    SilentDrop,
    /// Hold the request for `timeout tarpit`, then answer with the error page of `status`.
    Tarpit {
        status: u16,
    },
}

/// `set-var(NAME,COND)` conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarCond {
    Always,
    IfExists,
    IfNotExists,
    IfEmpty,
    IfNotEmpty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceWhat {
    Path,
    Uri,
    Header(String),
    Value(String),
}

/// Where a `tcp-request` rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpRuleKind {
    Connection,
    Session,
    Content,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpAction {
    Accept,
    Reject,
}

pub type HttpRule = Rule<HttpAction>;
pub type TcpRule = Rule<(TcpRuleKind, TcpAction)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwardfor {
    pub except: Option<String>,
    pub header: String,
    pub if_none: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpChk {
    pub method: String,
    pub uri: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub header: String,
    pub len: usize,
}

/// A frontend, backend, listen or defaults section after inheritance.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub kind: ProxyKind,
    pub name: String,
    pub loc: Loc,
    /// The defaults section this proxy was built from (its name, possibly empty) and its line.
    pub defaults_from: Option<Located<String>>,
    /// Set when this defaults section is referenced by `from` somewhere.
    pub referenced_by_from: bool,
    pub id: Option<Located<u32>>,
    pub disabled: bool,
    pub mode: Located<Mode>,
    pub binds: Vec<Bind>,
    pub servers: Vec<Server>,
    pub default_server: ServerParams,
    /// Raw `balance` words; parsed by the load-balancing module.
    pub balance: Option<Located<Vec<String>>>,
    /// Raw `hash-type` words.
    pub hash_type: Option<Located<Vec<String>>>,
    pub hash_balance_factor: Option<u32>,
    pub timeouts: Timeouts,
    /// Generic on/off options (`option NAME` / `no option NAME`), with where they were set.
    pub options: BTreeMap<String, Located<bool>>,
    pub conn_mode: Option<Located<ConnMode>>,
    pub source: Option<Located<Source>>,
    pub default_backend: Option<Located<String>>,
    pub use_backends: Vec<UseBackend>,
    /// Named ACLs (`acl NAME ...`, every line of a name).
    pub acls: BTreeMap<String, crate::acl::Acl>,
    pub http_request: Vec<HttpRule>,
    pub http_response: Vec<HttpRule>,
    /// `redirect` keyword rules (evaluated after the `http-request` rules).
    pub redirects: Vec<HttpRule>,
    pub tcp_request: Vec<TcpRule>,
    /// `tcp-request inspect-delay`, ms.
    pub inspect_delay: Option<Located<u64>>,
    pub maxconn: Option<Located<u32>>,
    pub fullconn: Option<u32>,
    pub backlog: Option<u32>,
    pub retries: Option<Located<u32>>,
    pub redispatch: Option<Located<bool>>,
    pub forwardfor: Option<Located<Forwardfor>>,
    pub httpchk: Option<Located<HttpChk>>,
    pub http_check_expect_status: Option<Located<Vec<u16>>>,
    /// `option httplog [clf]` / `option tcplog` / `log-format`.
    pub log_format: Option<Located<LogFormatChoice>>,
    pub log_format_sd: Option<Located<String>>,
    /// `log` lines after inheritance (`no log` empties it). `log global` is a line with one word.
    pub log: Vec<Located<Vec<String>>>,
    pub log_tag: Option<Located<String>>,
    pub capture_request: Vec<Capture>,
    pub capture_response: Vec<Capture>,
    /// `errorfile STATUS PATH`.
    pub errorfiles: Vec<Located<(u16, String)>>,
    pub description: Option<String>,
    pub transparent_option: Option<Loc>,
    pub monitor_uri: Option<Located<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormatChoice {
    TcpLog,
    HttpLog,
    HttpLogClf,
    Custom(String),
}

impl Proxy {
    pub fn new(kind: ProxyKind, name: String, loc: Loc) -> Self {
        Proxy {
            kind,
            name,
            loc: loc.clone(),
            defaults_from: None,
            referenced_by_from: false,
            id: None,
            disabled: false,
            mode: Located::new(Mode::Tcp, loc),
            binds: Vec::new(),
            servers: Vec::new(),
            default_server: ServerParams::default(),
            balance: None,
            hash_type: None,
            hash_balance_factor: None,
            timeouts: Timeouts::default(),
            options: BTreeMap::new(),
            conn_mode: None,
            source: None,
            default_backend: None,
            use_backends: Vec::new(),
            acls: BTreeMap::new(),
            http_request: Vec::new(),
            http_response: Vec::new(),
            redirects: Vec::new(),
            tcp_request: Vec::new(),
            inspect_delay: None,
            maxconn: None,
            fullconn: None,
            backlog: None,
            retries: None,
            redispatch: None,
            forwardfor: None,
            httpchk: None,
            http_check_expect_status: None,
            log_format: None,
            log_format_sd: None,
            log: Vec::new(),
            log_tag: None,
            capture_request: Vec::new(),
            capture_response: Vec::new(),
            errorfiles: Vec::new(),
            description: None,
            transparent_option: None,
            monitor_uri: None,
        }
    }

    /// A new proxy inheriting what HAProxy copies from a defaults section.
    pub fn from_defaults(kind: ProxyKind, name: String, loc: Loc, def: &Proxy) -> Self {
        let mut p = def.clone();
        p.kind = kind;
        p.name = name;
        p.loc = loc;
        p.defaults_from = Some(Located::new(def.name.clone(), def.loc.clone()));
        p.referenced_by_from = false;
        // Never inherited: identity, listeners, servers, routing.
        p.id = None;
        p.binds.clear();
        p.servers.clear();
        p.use_backends.clear();
        p.acls.clear();
        p.http_request.clear();
        p.http_response.clear();
        p.redirects.clear();
        p.tcp_request.clear();
        p.inspect_delay = None;
        p.description = None;
        p.monitor_uri = None;
        p
    }

    pub fn cap(&self) -> Cap {
        self.kind.cap()
    }

    /// Every condition of this proxy's rules.
    pub fn conditions_mut(&mut self) -> impl Iterator<Item = &mut Condition> {
        let ub = self.use_backends.iter_mut().filter_map(|u| u.cond.as_mut());
        let hr = self
            .http_request
            .iter_mut()
            .chain(self.http_response.iter_mut())
            .chain(self.redirects.iter_mut())
            .filter_map(|r| r.cond.as_mut());
        let tr = self.tcp_request.iter_mut().filter_map(|r| r.cond.as_mut());
        ub.chain(hr).chain(tr)
    }

    /// Every condition of this proxy's rules (read-only).
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        let ub = self.use_backends.iter().filter_map(|u| u.cond.as_ref());
        let hr = self
            .http_request
            .iter()
            .chain(self.http_response.iter())
            .chain(self.redirects.iter())
            .filter_map(|r| r.cond.as_ref());
        let tr = self.tcp_request.iter().filter_map(|r| r.cond.as_ref());
        ub.chain(hr).chain(tr)
    }

    pub fn option(&self, name: &str) -> bool {
        self.options.get(name).is_some_and(|o| o.value)
    }

    /// The effective transparent source for a server: its own, else the proxy's.
    pub fn effective_source<'a>(&'a self, srv: &'a Server) -> Option<&'a Located<Source>> {
        srv.params.source.as_ref().or(self.source.as_ref())
    }

    /// Does any server of this proxy (or the proxy itself) spoof the client address?
    pub fn uses_usesrc(&self) -> Option<&Located<Source>> {
        if let Some(s) = &self.source {
            if s.value.usesrc.is_some() {
                return Some(s);
            }
        }
        self.servers.iter().find_map(|s| {
            s.params
                .source
                .as_ref()
                .filter(|src| src.value.usesrc.is_some())
        })
    }
}
