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
    /// `peers` sections.
    pub peers: Vec<PeersSection>,
    pub files: Vec<String>,
}

/// A `peers` section: the processes that share stick tables, and the tables it declares
/// (`table NAME ...`, known to the proxies as `SECTION/NAME`).
#[derive(Debug, Clone, Default)]
pub struct PeersSection {
    pub name: String,
    pub loc: Loc,
    pub disabled: bool,
    /// `peer NAME ADDR` and `server NAME [ADDR]` lines.
    pub peers: Vec<Located<(String, Option<String>)>>,
    pub tables: Vec<(String, Located<StickTable>)>,
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
    /// `localpeer NAME`: this process's name in `peers` sections.
    pub localpeer: Option<Located<String>>,
    /// `log-send-hostname [NAME]`: `Some(None)` means "use the host name".
    pub log_send_hostname: Option<Located<Option<String>>>,
    pub hostname: Option<Located<String>>,
    pub zero_warning: bool,
    pub quiet: bool,
    pub hard_stop_after: Option<Located<u64>>,
    /// `h1-case-adjust FROM TO`: (lower-case name, name as written), in order.
    pub h1_case_adjust: Vec<(String, String)>,
    /// `grace`: delay between SIGUSR1 and the soft stop (listeners stay open meanwhile).
    pub grace: Option<Located<u64>>,
    pub bufsize: Option<Located<u32>>,
    /// `tune.pool-low-fd-ratio` / `tune.pool-high-fd-ratio`: percentages of `maxsock` in use
    /// above which idle server connections are no longer kept / are closed (20 and 25).
    pub pool_low_fd_ratio: Option<Located<u32>>,
    pub pool_high_fd_ratio: Option<Located<u32>>,
    pub stats_timeout: Option<Located<u64>>,
    /// `stats socket` lines (the runtime API).
    pub stats_sockets: Vec<Located<StatsSocket>>,
    /// `node` and `description` (shown by the stats page).
    pub node: Option<String>,
    pub description: Option<String>,
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

/// `http-reuse` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpReuse {
    Never,
    #[default]
    Safe,
    Aggressive,
    Always,
}

/// The server options that `default-server` can also set.
#[derive(Debug, Clone)]
pub struct ServerParams {
    pub weight: u32,
    pub backup: bool,
    pub disabled: bool,
    pub maxconn: Option<u32>,
    /// `minconn`: with the backend's `fullconn`, the server's limit grows from it to
    /// `maxconn` with the backend's load.
    pub minconn: Option<u32>,
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
    /// `check-send-proxy`: health checks start with a PROXY v1 line.
    pub check_send_proxy: bool,
    pub on_marked_down_shutdown: bool,
    /// `cookie VALUE`: the value that selects this server under `cookie` persistence.
    pub cookie: Option<String>,
    /// `pool-max-conn`: idle connections kept at most (-1: no limit, 0: none).
    pub pool_max_conn: i64,
    /// `pool-low-conn`: idle connections kept beyond the estimated need.
    pub pool_low_conn: u32,
    /// `pool-purge-delay` (ms): the period of the idle pool's purge; 0 disables pooling.
    pub pool_purge_delay: u64,
}

impl Default for ServerParams {
    fn default() -> Self {
        ServerParams {
            weight: 1,
            backup: false,
            disabled: false,
            maxconn: None,
            minconn: None,
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
            check_send_proxy: false,
            on_marked_down_shutdown: false,
            cookie: None,
            pool_max_conn: -1,
            pool_low_conn: 0,
            pool_purge_delay: 5000,
        }
    }
}

/// How `cookie` persistence treats the cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieMode {
    /// No mode word: the client's cookie selects the server, nothing is rewritten.
    #[default]
    Passive,
    /// The proxy sets the cookie itself (`Set-Cookie: NAME=SRVCOOKIE; path=/`).
    Insert,
    /// The server's own `NAME` cookie gets the server cookie as its value.
    Rewrite,
    /// The server's own `NAME` cookie gets `SRVCOOKIE~` before its value.
    Prefix,
}

/// `cookie NAME [rewrite|insert|prefix] [indirect] [nocache] [postonly] [preserve] [httponly]
/// [secure] [domain D]* [attr A]*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieCfg {
    pub name: String,
    pub mode: CookieMode,
    pub indirect: bool,
    pub nocache: bool,
    pub postonly: bool,
    pub preserve: bool,
    pub httponly: bool,
    pub secure: bool,
    pub domains: Vec<String>,
    pub attrs: Vec<String>,
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
    /// `track-scN`, `sc-inc-gpc*`, `sc-set-gpt0`.
    Stk(StkAction),
    /// `http-request|http-response capture EXPR id N|len N`: the sample into capture slot
    /// `idx` of the frontend (`%hr` / `%hs`).
    Capture {
        expr: crate::acl::fetch::SampleExpr,
        idx: usize,
    },
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
    /// `http-request set-src EXPR` / `set-src-port EXPR`: the client address the rest of the
    /// connection sees (fetches, logs, `X-Forwarded-For`, `balance source`, `usesrc clientip`).
    SetSrc(crate::acl::fetch::SampleExpr),
    SetSrcPort(crate::acl::fetch::SampleExpr),
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpAction {
    Accept,
    Reject,
    /// `track-scN`, `sc-inc-gpc*`, `sc-set-gpt0`: does not end the rules.
    Stk(StkAction),
    /// `tcp-request connection|session|content set-src[-port] EXPR`: the client address of
    /// the connection from then on.
    SetSrc {
        expr: crate::acl::fetch::SampleExpr,
        port_only: bool,
    },
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
    /// Headers smuggled after the version (`HTTP/1.1\r\nHost:\ x`), as HAProxy accepts.
    pub headers: Vec<(String, String)>,
}

/// Which health-check protocol `option ...` selected (the last one wins, as in HAProxy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOption {
    /// `option tcp-check`: the proxy's `tcp-check` rules (a plain connect check without any).
    TcpCheck,
    /// `option httpchk`: the request of [`Proxy::httpchk`] and the `http-check` rules.
    HttpChk,
    /// `option redis-check`: PING, expect `+PONG`.
    RedisCheck,
    /// `option smtpchk [HELO|EHLO domain]`: the greeting command (`HELO localhost` by default).
    SmtpChk(String),
    /// `option ssl-hello-chk`: an SSLv3 client hello, expect a handshake or alert record.
    SslHelloChk,
    /// `option pgsql-check user NAME`: a startup message, expect an authentication request.
    PgsqlCheck(String),
    /// `option mysql-check [user NAME [post-41|pre-41]]`: the server's greeting, and with a
    /// user a login (`post-41` unless `pre-41`), then an OK packet.
    MysqlCheck { user: Option<String>, pre41: bool },
    /// `option ldap-check`: an anonymous LDAPv3 bind, expect a successful bind response.
    LdapCheck,
}

/// A health-check status as HAProxy names it (`HCHK_STATUS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    SockErr,
    L4Ok,
    L4Tout,
    L4Con,
    L6Ok,
    L6Tout,
    L6Rsp,
    L7Tout,
    L7Rsp,
    L7Ok,
    L7OkC,
    L7Sts,
}

/// `tcp-check connect` / `http-check connect`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRule {
    pub port: Option<u16>,
    pub addr: Option<std::net::IpAddr>,
    pub send_proxy: bool,
    pub linger: bool,
    /// `default`: the server's check settings apply (`check-send-proxy`).
    pub default: bool,
    pub comment: Option<String>,
}

/// `http-check send`: each part overrides the `option httpchk` request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpSendRule {
    pub meth: Option<String>,
    pub uri: Option<String>,
    pub ver: Option<String>,
    pub hdrs: Vec<(String, String)>,
    pub body: Option<String>,
    pub comment: Option<String>,
}

/// How `http-check expect hdr` compares a name or a value (`-m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HdrMatchMethod {
    Str,
    Beg,
    End,
    Sub,
    Reg,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdrPattern {
    pub method: HdrMatchMethod,
    pub pattern: String,
}

/// What an expect rule looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectMatch {
    /// tcp-check: in the data; http-check: in the body.
    String(Vec<u8>),
    /// A regular expression (tcp-check `rstring`, http-check `rstring` on the body).
    Rstring(String),
    Binary(Vec<u8>),
    /// `string-lf` / `binary-lf` with a literal format (no `%` tag): matched like `string` /
    /// `binary`, named differently in messages.
    StringLf(Vec<u8>),
    BinaryLf(Vec<u8>),
    /// A regular expression on the hex dump of the data.
    Rbinary(String),
    /// HTTP status codes, as inclusive ranges.
    Status(Vec<(u16, u16)>),
    Rstatus(String),
    /// `hdr`/`fhdr name ... [value ...]`; `full` for fhdr (no comma split).
    Hdr {
        name: HdrPattern,
        value: Option<HdrPattern>,
        full: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectRule {
    pub inverse: bool,
    pub what: ExpectMatch,
    /// `min-recv`, -1 when unset.
    pub min_recv: i64,
    pub ok_status: Option<CheckStatus>,
    pub error_status: Option<CheckStatus>,
    pub tout_status: Option<CheckStatus>,
    /// `on-success` / `on-error` texts (log-format strings without `%` only).
    pub on_success: Option<String>,
    pub on_error: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckRule {
    Comment(String),
    Connect(ConnectRule),
    /// `tcp-check send` / `send-binary` (bytes already decoded).
    Send {
        data: Vec<u8>,
        binary: bool,
        comment: Option<String>,
    },
    HttpSend(HttpSendRule),
    Expect(ExpectRule),
}

/// Which keyword the rules came from; HAProxy keeps one list per proxy and a rule of the
/// other kind starts it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesKind {
    Tcp,
    Http,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRules {
    pub kind: RulesKind,
    pub rules: Vec<Located<CheckRule>>,
    /// Copied from a defaults section: the proxy's first own rule replaces them.
    pub inherited: bool,
}

/// `http-error status N ...`: a reply replacing HAProxy's page for N (built at parse time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpErrorReply {
    pub status: u16,
    /// The full HTTP/1 response as `errorfile` content, or `None` for `default-errorfiles`.
    pub content: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The header captured; empty for a slot filled by rules (`declare capture`,
    /// `http-request capture ... len N`).
    pub header: String,
    pub len: usize,
}

/// TCP keep-alive probes: `TCP_KEEPCNT`, and `TCP_KEEPIDLE` / `TCP_KEEPINTVL` in seconds; the
/// kernel's defaults when unset (or 0, as HAProxy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KaProbes {
    pub cnt: Option<u32>,
    pub idle: Option<u32>,
    pub intvl: Option<u32>,
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
    /// Set when a proxy used this defaults section without naming it.
    pub used_implicitly: bool,
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
    /// `cookie NAME ...`: cookie-based server persistence.
    pub cookie: Option<Located<CookieCfg>>,
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
    /// `clitcpka-cnt|idle|intvl` and `srvtcpka-*`: the kernel's keep-alive probe settings
    /// for the client and the server sockets (with `option clitcpka` / `srvtcpka`).
    pub clitcpka: KaProbes,
    pub srvtcpka: KaProbes,
    pub retries: Option<Located<u32>>,
    pub redispatch: Option<Located<bool>>,
    pub forwardfor: Option<Located<Forwardfor>>,
    /// `option originalto [except NET] [header NAME]` (`if_none` unused).
    pub originalto: Option<Located<Forwardfor>>,
    pub httpchk: Option<Located<HttpChk>>,
    /// `option tcp-check|httpchk|redis-check`.
    pub check_option: Option<Located<CheckOption>>,
    /// `tcp-check` / `http-check` rules.
    pub check_rules: Option<CheckRules>,
    /// `http-error` lines, in order (a later one for the same status wins).
    pub http_errors: Vec<Located<HttpErrorReply>>,
    /// `http-check disable-on-404`: a 404 puts an up server in the stopping state.
    pub http_check_disable_on_404: bool,
    /// `http-check send-state`: checks carry `X-Haproxy-Server-State`.
    pub http_check_send_state: bool,
    /// The check rule set was started in this section (by a rule or `option httpchk`),
    /// rather than inherited from the defaults section.
    pub check_rules_own: bool,
    /// The rule set holds the request of `option httpchk` (given in the section the rule set
    /// belongs to).
    pub httpchk_send: bool,
    /// `option httplog [clf]` / `option tcplog` / `log-format`.
    pub log_format: Option<Located<LogFormatChoice>>,
    pub log_format_sd: Option<Located<String>>,
    /// `log` lines after inheritance (`no log` empties it). `log global` is a line with one word.
    pub log: Vec<Located<Vec<String>>>,
    pub log_tag: Option<Located<String>>,
    pub capture_request: Vec<Capture>,
    /// `capture cookie NAME len N`: the first request `Cookie` and response `Set-Cookie`
    /// whose name starts with NAME, for `%CC` / `%CS`.
    pub capture_cookie: Option<Located<(String, usize)>>,
    /// `http-reuse`: which idle server connections a request may take (`never`: server
    /// connections stay private to their client session).
    pub http_reuse: HttpReuse,
    pub capture_response: Vec<Capture>,
    /// `errorfile STATUS PATH`.
    pub errorfiles: Vec<Located<(u16, String)>>,
    pub description: Option<String>,
    pub transparent_option: Option<Loc>,
    pub monitor_uri: Option<Located<String>>,
    /// `monitor fail if|unless COND`: the monitor URI answers 503 when one holds.
    pub monitor_fail: Vec<Rule<()>>,
    /// The stats page, once any `stats` keyword (but `stats socket`) was seen.
    pub stats: Option<StatsPage>,
    /// `stick-table ...`: the proxy's table, named after the proxy.
    pub stick_table: Option<Located<StickTable>>,
    /// `stick match|on|store-request ...` rules, in order.
    pub stick_rules: Vec<StickRule>,
}

/// The URI of a stats page when `stats uri` is not given.
pub const DEFAULT_STATS_URI: &str = "/haproxy?stats";

/// `stats enable|uri|realm|auth|refresh|admin|...` of one proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsPage {
    /// Prefix of the request URI that is answered by the page.
    pub uri: String,
    pub realm: Option<String>,
    /// `stats auth user:password` accounts (Basic authentication when not empty).
    pub auth: Vec<(String, String)>,
    /// `stats refresh`, seconds.
    pub refresh: Option<u64>,
    pub hide_version: bool,
    pub show_legends: bool,
    /// `stats show-node [NAME]` (`Some(None)`: the global `node`, else the host name).
    pub show_node: Option<Option<String>>,
    /// `stats show-desc [TEXT]` (`Some(None)`: the global `description`).
    pub show_desc: Option<Option<String>>,
    /// `stats scope NAME`: only these proxies are shown (`.` is the proxy itself).
    pub scope: Vec<String>,
    /// `stats admin if|unless COND` rules, in order.
    pub admin: Vec<Located<AdminRule>>,
}

impl Default for StatsPage {
    fn default() -> Self {
        StatsPage {
            uri: DEFAULT_STATS_URI.to_string(),
            realm: None,
            auth: Vec::new(),
            refresh: None,
            hide_version: false,
            show_legends: false,
            show_node: None,
            show_desc: None,
            scope: Vec::new(),
            admin: Vec::new(),
        }
    }
}

/// `stats admin if|unless COND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRule {
    pub cond: crate::acl::cond::Condition,
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
            used_implicitly: false,
            id: None,
            disabled: false,
            mode: Located::new(Mode::Tcp, loc),
            binds: Vec::new(),
            servers: Vec::new(),
            default_server: ServerParams::default(),
            balance: None,
            hash_type: None,
            hash_balance_factor: None,
            cookie: None,
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
            clitcpka: KaProbes::default(),
            srvtcpka: KaProbes::default(),
            retries: None,
            redispatch: None,
            forwardfor: None,
            originalto: None,
            httpchk: None,
            check_option: None,
            check_rules: None,
            http_errors: Vec::new(),
            http_check_disable_on_404: false,
            http_check_send_state: false,
            check_rules_own: false,
            httpchk_send: false,
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
            monitor_fail: Vec::new(),
            capture_cookie: None,
            http_reuse: HttpReuse::Safe,
            stats: None,
            stick_table: None,
            stick_rules: Vec::new(),
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
        p.used_implicitly = false;
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
        // `monitor-uri` is inherited (measured), `monitor fail` is not (it needs ACLs).
        p.monitor_fail.clear();
        if let Some(r) = &mut p.check_rules {
            r.inherited = true;
        }
        p.check_rules_own = false;
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
        let st = self.stick_rules.iter_mut().filter_map(|r| r.cond.as_mut());
        ub.chain(hr).chain(tr).chain(st)
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
        let st = self.stick_rules.iter().filter_map(|r| r.cond.as_ref());
        ub.chain(hr).chain(tr).chain(st)
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

/// A proxy's `stick-table` declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickTable {
    pub key: StickKeyType,
    /// Maximum number of entries.
    pub size: u64,
    /// `expire`: entries not touched for this long are removed (ms).
    pub expire_ms: Option<u64>,
    /// `nopurge`: a full table refuses new entries instead of dropping the oldest.
    pub nopurge: bool,
    /// `peers NAME`
    pub peers: Option<String>,
    /// `store` items, in the order written (each type once).
    pub store: Vec<StickStore>,
}

/// `type ip|ipv6|integer|string [len N]|binary [len N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickKeyType {
    Ip,
    Ipv6,
    Integer,
    /// Longest key kept, in bytes (longer strings are cut).
    String(u32),
    /// Key length in bytes (shorter samples are padded with zeros).
    Binary(u32),
}

impl StickKeyType {
    /// The name `show table` prints.
    pub fn name(&self) -> &'static str {
        match self {
            StickKeyType::Ip => "ip",
            StickKeyType::Ipv6 => "ipv6",
            StickKeyType::Integer => "integer",
            StickKeyType::String(_) => "string",
            StickKeyType::Binary(_) => "binary",
        }
    }
}

/// One `store` item: a data type with its period (rates) or its array size (`gpc(N)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StickStore {
    pub data: StickData,
    /// Period of a rate, ms (0 for the others).
    pub period_ms: u32,
    /// Number of elements of an array type (`gpc`, `gpt`, `gpc_rate`); 1 for the others.
    pub n: u32,
}

/// HAProxy 2.6's stick-table data types, in its order (the order `show table` prints them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StickData {
    ServerId,
    Gpt0,
    Gpc0,
    Gpc0Rate,
    ConnCnt,
    ConnRate,
    ConnCur,
    SessCnt,
    SessRate,
    HttpReqCnt,
    HttpReqRate,
    HttpErrCnt,
    HttpErrRate,
    BytesInCnt,
    BytesInRate,
    BytesOutCnt,
    BytesOutRate,
    Gpc1,
    Gpc1Rate,
    ServerKey,
    HttpFailCnt,
    HttpFailRate,
    Gpt,
    Gpc,
    GpcRate,
}

impl StickData {
    pub const ALL: [StickData; 25] = [
        StickData::ServerId,
        StickData::Gpt0,
        StickData::Gpc0,
        StickData::Gpc0Rate,
        StickData::ConnCnt,
        StickData::ConnRate,
        StickData::ConnCur,
        StickData::SessCnt,
        StickData::SessRate,
        StickData::HttpReqCnt,
        StickData::HttpReqRate,
        StickData::HttpErrCnt,
        StickData::HttpErrRate,
        StickData::BytesInCnt,
        StickData::BytesInRate,
        StickData::BytesOutCnt,
        StickData::BytesOutRate,
        StickData::Gpc1,
        StickData::Gpc1Rate,
        StickData::ServerKey,
        StickData::HttpFailCnt,
        StickData::HttpFailRate,
        StickData::Gpt,
        StickData::Gpc,
        StickData::GpcRate,
    ];

    /// HAProxy's name (`store` argument, `show table` field).
    pub fn name(self) -> &'static str {
        use StickData::*;
        match self {
            ServerId => "server_id",
            Gpt0 => "gpt0",
            Gpc0 => "gpc0",
            Gpc0Rate => "gpc0_rate",
            ConnCnt => "conn_cnt",
            ConnRate => "conn_rate",
            ConnCur => "conn_cur",
            SessCnt => "sess_cnt",
            SessRate => "sess_rate",
            HttpReqCnt => "http_req_cnt",
            HttpReqRate => "http_req_rate",
            HttpErrCnt => "http_err_cnt",
            HttpErrRate => "http_err_rate",
            BytesInCnt => "bytes_in_cnt",
            BytesInRate => "bytes_in_rate",
            BytesOutCnt => "bytes_out_cnt",
            BytesOutRate => "bytes_out_rate",
            Gpc1 => "gpc1",
            Gpc1Rate => "gpc1_rate",
            ServerKey => "server_key",
            HttpFailCnt => "http_fail_cnt",
            HttpFailRate => "http_fail_rate",
            Gpt => "gpt",
            Gpc => "gpc",
            GpcRate => "gpc_rate",
        }
    }

    pub fn from_name(n: &str) -> Option<StickData> {
        StickData::ALL.iter().copied().find(|d| d.name() == n)
    }

    /// A frequency counter over a period (`conn_rate(10s)`).
    pub fn is_rate(self) -> bool {
        self.name().ends_with("_rate")
    }

    /// An array type (`gpc(N)`, `gpt(N)`, `gpc_rate(N,PERIOD)`).
    pub fn is_array(self) -> bool {
        matches!(self, StickData::Gpt | StickData::Gpc | StickData::GpcRate)
    }
}

/// Stick-counter actions, in `tcp-request` and `http-request` rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StkAction {
    /// `track-scN KEY [table T]`: the entry of KEY in table T (the proxy's own by default)
    /// is tracked by counter N from now on, unless N already tracks one.
    Track {
        slot: u8,
        key: crate::acl::fetch::SampleExpr,
        table: Option<String>,
    },
    /// `sc-inc-gpc0(N)` (which 0) / `sc-inc-gpc1(N)` (which 1).
    IncGpc01 { slot: u8, which: u8 },
    /// `sc-inc-gpc(IDX,N)`
    IncGpc { idx: u32, slot: u8 },
    /// `sc-set-gpt0(N) VALUE|EXPR`
    SetGpt0 {
        slot: u8,
        value: crate::acl::fetch::SampleExpr,
    },
    /// `sc-set-gpt(IDX,N) VALUE|EXPR`
    SetGpt {
        idx: u32,
        slot: u8,
        value: crate::acl::fetch::SampleExpr,
    },
}

/// What a `stick` rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickKind {
    /// `stick match`: a request whose key is in the table goes to the server stored there.
    Match,
    /// `stick store-request`: the key is stored with the server the request went to.
    StoreRequest,
    /// `stick on`: both.
    On,
    /// `stick store-response`: the key (from the response) is stored with the server that
    /// answered.
    StoreResponse,
}

/// `stick match|on|store-request|store-response EXPR [table T] [if|unless COND]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickRule {
    pub kind: StickKind,
    pub expr: crate::acl::fetch::SampleExpr,
    /// The table (the proxy's own when not named; filled in by the validity pass).
    pub table: Option<String>,
    pub cond: Option<crate::acl::Condition>,
    pub loc: Loc,
}
