//! Traffic logs: one line per TCP session or HTTP transaction, rendered by [`crate::log`] with
//! the frontend's format (`option tcplog`, `option httplog [clf]`, `log-format`) and queued to
//! its `log` targets (`log global` expands to the global ones). Without a format option the
//! `Connect from ...` line is logged at accept time, as HAProxy does.

use std::sync::Arc;

use crate::config::ir::{Config, LogFormatChoice, Mode, Proxy};
use crate::log::format::{self, LogFormat};
use crate::log::sender::{self, LogIdentity, LogSender, OpenTarget};
use crate::log::target::{LogAddr, parse_global_log_args, parse_log_args};
use crate::log::{LogRecord, syslog};

/// Process-wide logging state.
pub struct Logging {
    pub sender: LogSender,
    pub hostname: Arc<str>,
}

/// The logging of one frontend.
pub struct FrontendLog {
    targets: Vec<OpenTarget>,
    /// `option dontlognull`: no line for a session that carried no data from the client.
    dontlognull: bool,
    /// `option dontlog-normal`: only abnormal sessions are logged.
    dontlog_normal: bool,
    /// `option log-separate-errors`: abnormal sessions at level err.
    separate_errors: bool,
    /// `option logasap`: HTTP transactions are logged when the response head arrives, TCP
    /// sessions once the server connection is established.
    pub logasap: bool,
    format: Option<LogFormat>,
    sd: Option<LogFormat>,
    id: LogIdentity,
    logging: Arc<Logging>,
}

impl Logging {
    pub fn start() -> Arc<Logging> {
        Arc::new(Logging {
            sender: LogSender::start(sender::DEFAULT_QUEUE),
            hostname: Arc::from(syslog::system_hostname()),
        })
    }
}

fn words(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.as_str()).collect()
}

impl FrontendLog {
    /// `None` when the frontend logs nowhere.
    pub fn build(
        cfg: &Config,
        p: &Proxy,
        logging: &Arc<Logging>,
        warn: &mut dyn FnMut(String),
    ) -> Option<FrontendLog> {
        let mut targets = Vec::new();
        for l in &p.log {
            let t = match parse_log_args(&words(&l.value)) {
                Ok(t) => t,
                Err(e) => {
                    warn(format!("parsing [{}] : {e}", l.loc));
                    continue;
                }
            };
            if t.addr == LogAddr::Global {
                for g in &cfg.global.log {
                    if let Ok(gt) = parse_global_log_args(&words(&g.value)) {
                        match OpenTarget::open(gt) {
                            Ok(o) => targets.push(o),
                            Err(e) => warn(format!("parsing [{}] : log : {e}", g.loc)),
                        }
                    }
                }
            } else {
                match OpenTarget::open(t) {
                    Ok(o) => targets.push(o),
                    Err(e) => warn(format!("parsing [{}] : log : {e}", l.loc)),
                }
            }
        }
        if targets.is_empty() {
            return None;
        }
        let http = p.mode.value == Mode::Http;
        let text = p.log_format.as_ref().map(|f| match &f.value {
            LogFormatChoice::TcpLog => format::TCPLOG_FORMAT.to_string(),
            LogFormatChoice::HttpLog if http => format::HTTPLOG_FORMAT.to_string(),
            LogFormatChoice::HttpLog => format::TCPLOG_FORMAT.to_string(),
            LogFormatChoice::HttpLogClf if http => format::CLF_HTTPLOG_FORMAT.to_string(),
            LogFormatChoice::HttpLogClf => format::TCPLOG_FORMAT.to_string(),
            LogFormatChoice::Custom(s) => s.clone(),
        });
        let format = text.and_then(|t| format::compile(&t, http).ok());
        let sd = p
            .log_format_sd
            .as_ref()
            .and_then(|s| format::compile(&s.value, http).ok());
        Some(FrontendLog {
            targets,
            dontlognull: p.option("dontlognull"),
            dontlog_normal: p.option("dontlog-normal"),
            separate_errors: p.option("log-separate-errors"),
            logasap: p.option("logasap") && format.is_some(),
            format,
            sd,
            id: identity(cfg, p.log_tag.as_ref(), logging),
            logging: Arc::clone(logging),
        })
    }

    /// Logs at accept time (`Connect from ...`) when no format is configured.
    pub fn wants_connect_line(&self) -> bool {
        self.format.is_none()
    }

    pub fn connect_line(
        &self,
        client: std::net::SocketAddr,
        local: std::net::SocketAddr,
        proxy: &str,
        http: bool,
    ) {
        let mut out = Vec::with_capacity(96);
        format::render_connect_line(&mut out, client, local, proxy, http);
        let now = syslog::now_local();
        for t in &self.targets {
            t.emit(
                &self.logging.sender,
                &self.id,
                syslog::LEVEL_INFO,
                &now,
                b"- ",
                &out,
            );
        }
    }

    /// Logs one session/transaction with the configured format.
    pub fn record(&self, mut rec: LogRecord) {
        let Some(f) = &self.format else {
            return;
        };
        // Abnormal: a termination cause, or a 5xx status.
        let error = rec.term_state[0] != b'-' || rec.status >= 500;
        if self.dontlog_normal && !error {
            return;
        }
        if self.dontlognull && rec.bytes_in == 0 && rec.request_line.is_none() {
            return;
        }
        let level = if self.separate_errors && error {
            syslog::LEVEL_ERR
        } else {
            syslog::LEVEL_INFO
        };
        // HAProxy prints the `+` signs on every line of a `logasap` frontend, also on those
        // logged at the end (errors before any response; measured).
        rec.logasap |= self.logasap;
        rec.hostname = Arc::clone(&self.logging.hostname);
        rec.pid = self.id.pid;
        rec.derive_timers();
        let now = syslog::now_local();
        sender::emit_record(
            &self.logging.sender,
            &self.id,
            &self.targets,
            f,
            self.sd.as_ref(),
            &rec,
            level,
            &now,
        );
    }
}

/// Event logs (server state changes, `no server available`, proxy stop), per proxy name: HAProxy
/// sends them to the proxy's own `log` targets (`log global` expands; a proxy without targets
/// sends none), with the proxy's tag and the target's framing, regardless of the log format.
static EVENTS: std::sync::OnceLock<std::collections::HashMap<String, FrontendLog>> =
    std::sync::OnceLock::new();

/// Prepares the event loggers of every proxy (called once at startup, before any check runs).
pub fn init_events<'a>(
    cfg: &Config,
    proxies: impl IntoIterator<Item = &'a Proxy>,
    logging: &Arc<Logging>,
) {
    let mut m = std::collections::HashMap::new();
    for p in proxies {
        if m.contains_key(&p.name) {
            continue;
        }
        // Parse warnings were already reported for the traffic loggers.
        if let Some(l) = FrontendLog::build(cfg, p, logging, &mut |_| {}) {
            m.insert(p.name.clone(), l);
        }
    }
    let _ = EVENTS.set(m);
    let _ = LOGGING.set(Arc::clone(logging));
    let mut targets = Vec::new();
    for g in &cfg.global.log {
        if let Ok(o) = parse_global_log_args(&words(&g.value))
            .and_then(|t| OpenTarget::open(t).map_err(|e| e.to_string()))
        {
            targets.push(o);
        }
    }
    if !targets.is_empty() {
        let _ = GLOBAL_EVENTS.set((targets, identity(cfg, None, logging)));
    }
}

/// Tag (the proxy's `log-tag`, else the global one, else `haproxy`), pid and host name of
/// the lines sent.
fn identity(
    cfg: &Config,
    tag: Option<&crate::config::ir::Located<String>>,
    logging: &Logging,
) -> LogIdentity {
    let tag = tag
        .or(cfg.global.log_tag.as_ref())
        .map(|t| t.value.clone())
        .unwrap_or_else(|| "haproxy".to_string());
    let send_hostname = cfg.global.log_send_hostname.as_ref().map(|h| {
        h.value
            .clone()
            .or(cfg.global.hostname.as_ref().map(|n| n.value.clone()))
            .unwrap_or_else(|| logging.hostname.to_string())
    });
    LogIdentity {
        tag,
        pid: std::process::id(),
        send_hostname,
    }
}

/// The global `log` targets, for the process's own events (HAProxy's `send_log(NULL, ...)`).
static GLOBAL_EVENTS: std::sync::OnceLock<(Vec<OpenTarget>, LogIdentity)> =
    std::sync::OnceLock::new();

/// Sends one process event (not tied to a proxy) to the global `log` targets.
pub fn global_event(level: u8, text: &str) {
    let (Some((targets, id)), Some(l)) = (GLOBAL_EVENTS.get(), LOGGING.get()) else {
        return;
    };
    let now = syslog::now_local();
    for t in targets {
        t.emit(&l.sender, id, level, &now, b"- ", text.as_bytes());
    }
}

static LOGGING: std::sync::OnceLock<Arc<Logging>> = std::sync::OnceLock::new();

/// Waits (at most `timeout`) until the lines queued so far were written: at exit, so the last
/// traffic lines and the `Proxy ... stopped` events are not lost.
pub fn flush(timeout: std::time::Duration) {
    if let Some(l) = LOGGING.get() {
        l.sender.flush(timeout);
    }
}

/// Lines dropped so far by the process-wide sender (full queue, unreachable or full target).
pub fn dropped() -> u64 {
    LOGGING.get().map(|l| l.sender.dropped()).unwrap_or(0)
}

/// Sends one event message for `proxy` at `level` (no-op when it logs nowhere).
pub fn event(proxy: &str, level: u8, text: &str) {
    let Some(l) = EVENTS.get().and_then(|m| m.get(proxy)) else {
        return;
    };
    let now = syslog::now_local();
    for t in &l.targets {
        t.emit(
            &l.logging.sender,
            &l.id,
            level,
            &now,
            b"- ",
            text.as_bytes(),
        );
    }
}

/// Milliseconds between two instants, as a log timer.
pub fn ms_between(a: tokio::time::Instant, b: tokio::time::Instant) -> i64 {
    b.saturating_duration_since(a).as_millis() as i64
}

/// The termination-state characters for `%ts`/`%tsc` (cause, phase, then `--` for cookies).
pub fn term(cause: u8, phase: u8) -> [u8; 4] {
    [cause, phase, b'-', b'-']
}
