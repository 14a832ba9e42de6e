//! The configuration as plain data: no sockets, no threads, every item with its file:line.
//! The runtime is built from this and nothing else.
//!
//! Inheritance follows HAProxy: a proxy starts as a copy of its `defaults` section (the last one
//! above it, or the one named by `from`), then its own lines override. Values that came from a
//! defaults section keep the defaults' file:line, which is how diagnostics name "both places".

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

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
    /// `check-send-proxy`: health checks start with a PROXY v1 line.
    pub check_send_proxy: bool,
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
            check_send_proxy: false,
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
    /// The condition words after `if`/`unless`, `None` when unconditional.
    pub cond: Option<Vec<String>>,
    pub loc: Loc,
}

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
    pub maxconn: Option<Located<u32>>,
    pub fullconn: Option<u32>,
    pub backlog: Option<u32>,
    pub retries: Option<Located<u32>>,
    pub redispatch: Option<Located<bool>>,
    pub forwardfor: Option<Located<Forwardfor>>,
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
            maxconn: None,
            fullconn: None,
            backlog: None,
            retries: None,
            redispatch: None,
            forwardfor: None,
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
        p.description = None;
        p.monitor_uri = None;
        if let Some(r) = &mut p.check_rules {
            r.inherited = true;
        }
        p.check_rules_own = false;
        p
    }

    pub fn cap(&self) -> Cap {
        self.kind.cap()
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
