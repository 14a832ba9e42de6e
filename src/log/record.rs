//! The plain data a log line is rendered from.
//!
//! The runtime fills one [`LogRecord`] per logged session/request; the renderer in
//! [`crate::log::format`] reads nothing else. Every field maps to one or more log-format
//! variables (HAProxy 2.6 naming in brackets).

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Everything a log-format variable can print.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// Accept date, millisecond precision is used (`%t %T %Tl %Ts %ms`).
    pub accept_date: DateTime<Utc>,
    /// Date the first request byte arrived (`%tr %trg %trl`). HAProxy sets it to
    /// accept date + Th + Ti.
    pub request_date: DateTime<Utc>,

    /// Local host name (`%H`).
    pub hostname: Arc<str>,
    /// Process id (`%pid`).
    pub pid: u32,
    /// Unique id from `unique-id-format` (`%ID`), `None` prints `-`.
    pub unique_id: Option<String>,

    /// HTTP status (`%ST`). TCP sessions print 0, except that HAProxy 2.6.12 prints -1 when
    /// the session got an HTTP transaction without status (measured: a TCP frontend whose
    /// format uses `%[capture.req.hdr(N)]`).
    pub status: i32,
    /// Bytes sent to the client (`%B`). In HTTP mode HAProxy 2.6 counts the internal (HTX)
    /// size of the response as received (see the module doc of [`crate::log`]). TCP: wire
    /// bytes.
    pub bytes_out: u64,
    /// Bytes received from the client (`%U`), counted like `bytes_out`.
    pub bytes_in: u64,
    /// `option logasap`: the line is emitted before the end; `%B %Tt %Tu %Ta` get a `+`.
    pub logasap: bool,

    /// Handshake time (`%Th`).
    pub t_handshake: Option<i64>,
    /// Idle time before the first request byte (`%Ti`).
    pub t_idle: Option<i64>,
    /// Time to receive the request headers (`%TR`).
    pub t_request: Option<i64>,
    /// Th + Ti + TR (`%Tq`); see [`LogRecord::derive_timers`].
    pub t_q: Option<i64>,
    /// Time in queues (`%Tw`).
    pub t_queue: Option<i64>,
    /// Server connect time (`%Tc`).
    pub t_connect: Option<i64>,
    /// Server response (headers) time (`%Tr`).
    pub t_response: Option<i64>,
    /// Active time of the request (`%Ta`).
    pub t_active: Option<i64>,
    /// Data transfer time (`%Td`); see [`LogRecord::derive_timers`].
    pub t_data: Option<i64>,
    /// Total session time (`%Tt`).
    pub t_total: Option<i64>,
    /// Total time seen by the client, Tt - Ti (`%Tu`); see [`LogRecord::derive_timers`].
    pub t_user: Option<i64>,

    /// Process-wide concurrent connections (`%ac`).
    pub actconn: u32,
    /// Frontend concurrent connections (`%fc`).
    pub feconn: u32,
    /// Backend concurrent connections (`%bc`).
    pub beconn: u32,
    /// Server concurrent connections (`%sc`).
    pub srv_conn: u32,
    /// Connection retries (`%rc`).
    pub retries: u32,
    /// The session was redispatched: `%rc` gets a `+` prefix.
    pub redispatched: bool,
    /// Position in the server queue (`%sq`).
    pub srv_queue: u32,
    /// Position in the backend queue (`%bq`).
    pub backend_queue: u32,
    /// Frontend log counter (`%lc`).
    pub log_counter: u64,
    /// Request counter (`%rt`).
    pub req_counter: u64,

    /// Frontend name (`%f`, `%ft`, `%[fe_name]`).
    pub frontend: Arc<str>,
    /// The frontend connection is SSL: `%ft` gets a `~` suffix.
    pub frontend_ssl: bool,
    /// Backend name; `None` when no backend was assigned: `%b` then prints the frontend
    /// name and `%[be_name]` prints `-`.
    pub backend: Option<Arc<str>>,
    /// Server name; `None` prints `<NOSRV>` (`%s`) or `-` (`%[srv_name]`).
    pub server: Option<Arc<str>>,

    /// Client address (`%ci %cp %[src] %[src_port]`).
    pub client: Option<SocketAddr>,
    /// Accepting (frontend) address (`%fi %fp %[dst] %[dst_port]`).
    pub frontend_addr: Option<SocketAddr>,
    /// Source address used towards the server (`%bi %bp`).
    pub backend_src: Option<SocketAddr>,
    /// Server destination address (`%si %sp`).
    pub server_addr: Option<SocketAddr>,

    /// Captured request headers (`%hr %hrl %[capture.req.hdr(N)]`), one slot per
    /// `capture request header`; `None` when the stream has no capture area (no capture
    /// configured, or the request could not be parsed): `%hr`/`%hrl` then print nothing.
    /// Raw bytes: HAProxy prints bytes outside 0x20..0x7e (and `" # { | }`) as `#XX`.
    pub req_captures: Option<Vec<Option<Vec<u8>>>>,
    /// Captured response headers (`%hs %hsl %[capture.res.hdr(N)]`).
    pub res_captures: Option<Vec<Option<Vec<u8>>>>,
    /// Captured request cookie `name=value` (`%CC`).
    pub cookie_req: Option<Vec<u8>>,
    /// Captured response cookie (`%CS`).
    pub cookie_res: Option<Vec<u8>>,

    /// Raw request line `METHOD URI VERSION`; `None` = `<BADREQ>` (`%r %HM %HU %HP %HPO %HQ %HV`).
    pub request_line: Option<Vec<u8>>,

    /// SSL cipher (`%sslc`) / version (`%sslv`). `ssl_version` being set marks the front
    /// connection as SSL for the `ssl_fc*` sample fetches.
    pub ssl_cipher: Option<String>,
    pub ssl_version: Option<String>,
    /// SNI sent by the client (`%[ssl_fc_sni]`).
    pub ssl_sni: Option<String>,
    /// The SSL session was resumed (`%[ssl_fc_is_resumed]`).
    pub ssl_resumed: bool,
    /// SSL error codes (`%[ssl_fc_err]`, `%[ssl_c_err]`, `%[ssl_c_ca_err]`).
    pub ssl_fc_err: Option<u64>,
    pub ssl_c_err: Option<u64>,
    pub ssl_c_ca_err: Option<u64>,
    /// Front connection error code (`%[fc_err]`), 0 when none.
    pub fc_err: u32,
    /// The line is logged for a connection that never got a stream (HTTP request rejected by
    /// the parser, empty connection): `txn.` variables are then unavailable, even through a
    /// `var()` default (measured; `req.`/`res.` ones never are at log time).
    pub session_only: bool,
    /// Variables visible to `%[var(scope.name)]` at log time, by full name (`txn.x`); values
    /// as text (integers in decimal).
    pub vars: Vec<(String, Vec<u8>)>,

    /// Termination state: cause, phase, cookie from client, cookie action (`%ts` = 2 first, `%tsc` = 4).
    pub term_state: [u8; 4],
}

impl Default for LogRecord {
    fn default() -> Self {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        LogRecord {
            accept_date: epoch,
            request_date: epoch,
            hostname: Arc::from(""),
            pid: 0,
            unique_id: None,
            status: 0,
            bytes_out: 0,
            bytes_in: 0,
            logasap: false,
            t_handshake: None,
            t_idle: None,
            t_request: None,
            t_q: None,
            t_queue: None,
            t_connect: None,
            t_response: None,
            t_active: None,
            t_data: None,
            t_total: None,
            t_user: None,
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srv_conn: 0,
            retries: 0,
            redispatched: false,
            srv_queue: 0,
            backend_queue: 0,
            log_counter: 0,
            req_counter: 0,
            frontend: Arc::from(""),
            frontend_ssl: false,
            backend: None,
            server: None,
            client: None,
            frontend_addr: None,
            backend_src: None,
            server_addr: None,
            req_captures: None,
            res_captures: None,
            cookie_req: None,
            cookie_res: None,
            request_line: None,
            ssl_cipher: None,
            ssl_version: None,
            ssl_sni: None,
            ssl_resumed: false,
            ssl_fc_err: None,
            ssl_c_err: None,
            ssl_c_ca_err: None,
            fc_err: 0,
            session_only: false,
            vars: Vec::new(),
            term_state: *b"----",
        }
    }
}

impl LogRecord {
    /// Fill the derived timers `%Tq`, `%Td`, `%Tu` from the measured ones:
    /// Tq = Th + Ti + TR (absent when TR is), Tu = Tt - Ti, Td = Tt - (Tq + Tw + Tc + Tr)
    /// (absent when Tr or Tt is).
    pub fn derive_timers(&mut self) {
        let th = self.t_handshake.unwrap_or(0).max(0);
        let ti = self.t_idle.unwrap_or(0).max(0);
        self.t_q = self.t_request.filter(|v| *v >= 0).map(|tr| th + ti + tr);
        self.t_user = self.t_total.map(|tt| tt - ti);
        self.t_data = match (self.t_total, self.t_response, self.t_q) {
            (Some(tt), Some(tr), Some(tq)) if tr >= 0 => {
                let tw = self.t_queue.unwrap_or(0).max(0);
                let tc = self.t_connect.unwrap_or(0).max(0);
                Some(tt - (tq + tw + tc + tr))
            }
            _ => None,
        };
    }
}
