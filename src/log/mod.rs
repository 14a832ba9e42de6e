//! Logging: HAProxy 2.6 log lines byte for byte.
//!
//! * [`format`](mod@format): `log-format` compiler and renderer, default formats.
//! * [`record`]: [`LogRecord`], the plain data a line is rendered from.
//! * [`syslog`]: datagram framing per `format` (local, rfc3164, rfc5424, ...), `len` truncation.
//! * [`target`]: the `log` directive parser ([`parse_log_args`]).
//! * [`sender`]: the non-blocking sender thread.
//! * [`policy`]: `dontlognull` / `dontlog-normal` / `log-separate-errors` decisions.
//!
//! Behaviours measured on HAProxy 2.6.12 that the runtime must feed into [`LogRecord`]:
//! * HTTP `%B`/`%U` are HTX sizes of the messages as received: 20 + the start line's three
//!   parts, name + value of each header (`Connection` without its close/keep-alive tokens),
//!   1 for the end of headers, the body data, and for chunked bodies the trailers + 1.
//!   HAProxy's own error responses count wire bytes minus 4 per line.
//! * `%ST` is 0 for TCP sessions, -1 when a TCP session got an HTTP transaction without
//!   status (e.g. its format uses `%[capture.req.hdr(N)]`); bad requests log 400.
//! * A request that fails to parse has no capture area (`req_captures: None`: `%hr` prints
//!   nothing), no backend (`%b` = frontend name, `%[be_name]` = `-`), `<BADREQ>`, TR/Tw/Tc/Tr
//!   absent; an empty connection is `CR--`, garbage `PR--`.
//!   Such lines are logged without a stream: set `session_only` (no `txn.` variables).
//! * `%fc %bc %sc %ac` are gauges read at log time (a connection that just closed may still
//!   count).
//! * A proxy without any log format logs `Connect from IP:PORT to IP:PORT (NAME/MODE)` at
//!   accept time ([`format::render_connect_line`]).
//! * HAProxy threads send a line to each target in turn: two targets may see lines in a
//!   different order.
//! * `option logasap`: an HTTP transaction is logged when the response head arrives (`%B` =
//!   the head plus the body bytes that came with it, `%U` = 0, `%Tt` = `%Ta` at that time), a
//!   TCP session once connected (`%B` = +0); every line of such a frontend gets the `+` signs,
//!   also those logged at the end (errors before a response).
//! * Termination states measured through the proxy (compat-tests/log_termination.rs), besides
//!   the obvious ones: an empty first connection is `CR--` 400 (a kept-alive one closing
//!   between requests logs nothing); a stalled request body is not ended by `timeout client`
//!   while the response is awaited, the server timeout gives 504 `sH--`; a client reset while
//!   the server is awaited, queued or being connected (HTTP) is not noticed (`sH`, then `CD`
//!   when answering, `sC`); in TCP mode a reset during the connect gives `CD` at once.
//!
//! Typical wiring:
//! ```no_run
//! use rhaproxy::log::{format, sender, syslog, target};
//! // configuration time
//! let fmt = format::compile(format::HTTPLOG_FORMAT, true).map_err(|e| e.alert("log-format", "x.cfg", 3)).unwrap();
//! let t = target::parse_global_log_args(&["127.0.0.1:514", "local0"]).unwrap();
//! let targets = vec![sender::OpenTarget::open(t).unwrap()];
//! let id = sender::LogIdentity { tag: "haproxy".into(), pid: std::process::id(), send_hostname: None };
//! let s = sender::LogSender::start(sender::DEFAULT_QUEUE);
//! // per session / request
//! let rec = rhaproxy::log::LogRecord::default();
//! sender::emit_record(&s, &id, &targets, &fmt, None, &rec, syslog::LEVEL_INFO, &syslog::now_local());
//! ```

pub mod format;
pub(crate) mod haproxy_names;
pub mod policy;
pub mod record;
pub mod sender;
pub mod syslog;
pub mod target;

pub use format::{LogFormat, compile};
pub use record::LogRecord;
pub use target::{LogTarget, parse_log_args};
