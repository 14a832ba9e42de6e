//! The Prometheus exporter (`http-request use-service prometheus-exporter`): HAProxy 2.6's
//! metric names, types and labels (`proxy`, `server`, `state`, `code`, `version`), rendered by
//! [`render`], a pure function of the `show info` fields and the `show stat` rows.
//!
//! As HAProxy's exporter: families in the order process, frontend, backend, server; each
//! family once, with its `# HELP` and `# TYPE` lines before its first sample, and all the
//! proxies' samples together; a family without any sample is not printed; HTTP metrics only
//! for `mode http` proxies; `NaN` for limits that are not set and for check figures of servers
//! without checks; times in seconds with six decimals. The HELP texts are rhaproxy's own.

use std::fmt::Write as _;

/// What a sample's value comes from.
#[derive(Clone, Copy)]
enum Src {
    /// A `show info` field.
    Info(&'static str),
    /// A `show stat` column.
    Col(&'static str),
    /// A column, NaN when empty.
    ColNan(&'static str),
    /// A column in milliseconds, shown in seconds.
    Ms(&'static str),
    /// A constant.
    Const(f64),
    /// State labels: the value is 1 for the row's state, 0 for the others.
    States(&'static [&'static str], Sel),
    /// `code="1xx"`... from the `hrsp_*` columns.
    Codes,
    /// `version="..."` = 1.
    Build,
    /// Servers of the backend per state (`agg_*`).
    Agg(&'static [&'static str], Sel),
}

/// How a row's state is read for [`Src::States`] / [`Src::Agg`].
#[derive(Clone, Copy)]
enum Sel {
    /// Frontend or backend `status` as UP/DOWN.
    UpDown,
    /// A server's `status` as DOWN/UP/MAINT/DRAIN/NOLB.
    Server,
    /// A server's `check_status`.
    Check,
}

/// Which rows a family applies to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Only {
    All,
    /// `mode http` proxies only.
    Http,
    /// Servers with health checks only.
    Checked,
}

struct Metric {
    name: &'static str,
    counter: bool,
    help: &'static str,
    src: Src,
    only: Only,
}

const fn g(name: &'static str, help: &'static str, src: Src) -> Metric {
    Metric {
        name,
        counter: false,
        help,
        src,
        only: Only::All,
    }
}

const fn c(name: &'static str, help: &'static str, src: Src) -> Metric {
    Metric {
        name,
        counter: true,
        help,
        src,
        only: Only::All,
    }
}

const fn http(m: Metric) -> Metric {
    Metric {
        only: Only::Http,
        ..m
    }
}

const fn checked(m: Metric) -> Metric {
    Metric {
        only: Only::Checked,
        ..m
    }
}

use Src::*;

const UPDOWN: &[&str] = &["DOWN", "UP"];
const SRV_STATES: &[&str] = &["DOWN", "UP", "MAINT", "DRAIN", "NOLB"];
const CHECK_STATES: &[&str] = &[
    "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP", "L7TOUT", "L7RSP",
    "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK",
];

const PROCESS: &[Metric] = &[
    g("nbthread", "Worker threads started", Info("Nbthread")),
    g("nbproc", "Worker processes (always 1)", Info("Nbproc")),
    g(
        "relative_process_id",
        "Number of this worker process (1)",
        Info("Process_num"),
    ),
    g(
        "uptime_seconds",
        "Seconds since this worker started",
        Info("Uptime_sec"),
    ),
    c(
        "pool_failures_total",
        "Failed memory pool allocations",
        Info("PoolFailed"),
    ),
    g(
        "max_fds",
        "File descriptor limit of the process",
        Info("Ulimit-n"),
    ),
    g(
        "max_sockets",
        "Socket limit of the process",
        Info("Maxsock"),
    ),
    g(
        "max_connections",
        "Connection limit of the process (maxconn)",
        Info("Maxconn"),
    ),
    g(
        "hard_max_connections",
        "Hard connection limit of the process",
        Info("Hard_maxconn"),
    ),
    g(
        "current_connections",
        "Connections open now",
        Info("CurrConns"),
    ),
    c(
        "connections_total",
        "Connections accepted since start",
        Info("CumConns"),
    ),
    c(
        "requests_total",
        "HTTP requests received since start",
        Info("CumReq"),
    ),
    g(
        "max_ssl_connections",
        "SSL connection limit",
        Info("MaxSslConns"),
    ),
    g(
        "current_ssl_connections",
        "SSL connections open now",
        Info("CurrSslConns"),
    ),
    c(
        "ssl_connections_total",
        "SSL connections since start",
        Info("CumSslConns"),
    ),
    g("max_pipes", "Pipe limit", Info("Maxpipes")),
    c("pipes_used_total", "Pipes in use", Info("PipesUsed")),
    c(
        "pipes_free_total",
        "Pipes allocated and free",
        Info("PipesFree"),
    ),
    g(
        "current_connection_rate",
        "Connections accepted over the last second",
        Info("ConnRate"),
    ),
    g(
        "limit_connection_rate",
        "Connection rate limit",
        Info("ConnRateLimit"),
    ),
    g(
        "max_connection_rate",
        "Highest connection rate seen",
        Info("MaxConnRate"),
    ),
    g(
        "current_session_rate",
        "Sessions created over the last second",
        Info("SessRate"),
    ),
    g(
        "limit_session_rate",
        "Session rate limit",
        Info("SessRateLimit"),
    ),
    g(
        "max_session_rate",
        "Highest session rate seen",
        Info("MaxSessRate"),
    ),
    g(
        "current_ssl_rate",
        "SSL sessions over the last second",
        Info("SslRate"),
    ),
    g(
        "limit_ssl_rate",
        "SSL session rate limit",
        Info("SslRateLimit"),
    ),
    g(
        "max_ssl_rate",
        "Highest SSL session rate seen",
        Info("MaxSslRate"),
    ),
    g(
        "current_frontend_ssl_key_rate",
        "Frontend SSL key computations over the last second",
        Info("SslFrontendKeyRate"),
    ),
    g(
        "max_frontend_ssl_key_rate",
        "Highest frontend SSL key computation rate",
        Info("SslFrontendMaxKeyRate"),
    ),
    g(
        "frontend_ssl_reuse",
        "Frontend SSL session reuse ratio (percent)",
        Info("SslFrontendSessionReuse_pct"),
    ),
    g(
        "current_backend_ssl_key_rate",
        "Backend SSL key computations over the last second",
        Info("SslBackendKeyRate"),
    ),
    g(
        "max_backend_ssl_key_rate",
        "Highest backend SSL key computation rate",
        Info("SslBackendMaxKeyRate"),
    ),
    c(
        "ssl_cache_lookups_total",
        "SSL session cache lookups",
        Info("SslCacheLookups"),
    ),
    c(
        "ssl_cache_misses_total",
        "SSL session cache misses",
        Info("SslCacheMisses"),
    ),
    c(
        "http_comp_bytes_in_total",
        "Bytes fed to the HTTP compressor",
        Info("CompressBpsIn"),
    ),
    c(
        "http_comp_bytes_out_total",
        "Bytes produced by the HTTP compressor",
        Info("CompressBpsOut"),
    ),
    g(
        "limit_http_comp",
        "HTTP compression rate limit",
        Info("CompressBpsRateLim"),
    ),
    g(
        "current_zlib_memory",
        "Memory used by HTTP compression (bytes)",
        Const(f64::NAN),
    ),
    g(
        "max_zlib_memory",
        "Memory limit of HTTP compression (bytes)",
        Const(f64::NAN),
    ),
    g("current_tasks", "Tasks", Info("Tasks")),
    g(
        "current_run_queue",
        "Tasks in the run queue",
        Info("Run_queue"),
    ),
    g(
        "idle_time_percent",
        "Idle time of the threads (percent)",
        Info("Idle_pct"),
    ),
    g(
        "stopping",
        "1 while the process is stopping",
        Info("Stopping"),
    ),
    g(
        "jobs",
        "Active jobs (listeners, sessions, ...)",
        Info("Jobs"),
    ),
    g(
        "unstoppable_jobs",
        "Jobs that a soft stop waits for",
        Info("Unstoppable Jobs"),
    ),
    g("listeners", "Listening sockets", Info("Listeners")),
    g("active_peers", "Active peers", Info("ActivePeers")),
    g("connected_peers", "Connected peers", Info("ConnectedPeers")),
    c(
        "dropped_logs_total",
        "Log lines dropped",
        Info("DroppedLogs"),
    ),
    g(
        "busy_polling_enabled",
        "1 when busy polling is on",
        Info("BusyPolling"),
    ),
    c(
        "failed_resolutions",
        "Failed DNS resolutions",
        Info("FailedResolutions"),
    ),
    c(
        "bytes_out_total",
        "Bytes sent to clients",
        Info("TotalBytesOut"),
    ),
    c(
        "spliced_bytes_out_total",
        "Bytes sent to clients by splicing",
        Info("TotalSplicdedBytesOut"),
    ),
    g(
        "bytes_out_rate",
        "Bytes sent over the last second",
        Info("BytesOutRate"),
    ),
    c(
        "recv_logs_total",
        "Log messages received by log forwarders",
        Info("CumRecvLogs"),
    ),
    g("build_info", "Version of the running program", Build),
    g(
        "max_memory_bytes",
        "Memory limit (bytes)",
        Info("Memmax_bytes"),
    ),
    g(
        "pool_allocated_bytes",
        "Memory allocated in pools (bytes)",
        Info("PoolAlloc_bytes"),
    ),
    g(
        "pool_used_bytes",
        "Memory used from pools (bytes)",
        Info("PoolUsed_bytes"),
    ),
    g(
        "start_time_seconds",
        "Start time of the process (Unix seconds)",
        Info("Start_time_sec"),
    ),
];

const FRONTEND: &[Metric] = &[
    g("current_sessions", "Sessions open now", Col("scur")),
    g("max_sessions", "Most sessions open at once", Col("smax")),
    g("limit_sessions", "Session limit (maxconn)", ColNan("slim")),
    c("sessions_total", "Sessions since start", Col("stot")),
    c("bytes_in_total", "Bytes received from clients", Col("bin")),
    c("bytes_out_total", "Bytes sent to clients", Col("bout")),
    c(
        "requests_denied_total",
        "Requests denied by rules",
        Col("dreq"),
    ),
    c(
        "responses_denied_total",
        "Responses denied by rules",
        Col("dresp"),
    ),
    c("request_errors_total", "Invalid requests", Col("ereq")),
    g(
        "status",
        "1 for the current state (UP or DOWN), 0 for the other",
        States(UPDOWN, Sel::UpDown),
    ),
    g("limit_session_rate", "Session rate limit", Col("rate_lim")),
    g(
        "max_session_rate",
        "Highest session rate seen",
        Col("rate_max"),
    ),
    http(c(
        "http_responses_total",
        "HTTP responses by status class",
        Codes,
    )),
    http(g(
        "http_requests_rate_max",
        "Highest HTTP request rate seen",
        Col("req_rate_max"),
    )),
    http(c(
        "http_requests_total",
        "HTTP requests received",
        Col("req_tot"),
    )),
    http(c(
        "http_comp_bytes_in_total",
        "Bytes fed to the HTTP compressor",
        Col("comp_in"),
    )),
    http(c(
        "http_comp_bytes_out_total",
        "Bytes produced by the HTTP compressor",
        Col("comp_out"),
    )),
    http(c(
        "http_comp_bytes_bypassed_total",
        "Bytes that bypassed the HTTP compressor",
        Col("comp_byp"),
    )),
    http(c(
        "http_comp_responses_total",
        "Compressed HTTP responses",
        Col("comp_rsp"),
    )),
    g(
        "connections_rate_max",
        "Highest connection rate seen",
        Col("conn_rate_max"),
    ),
    c("connections_total", "Connections accepted", Col("conn_tot")),
    http(c(
        "intercepted_requests_total",
        "Requests answered by the proxy itself (stats page, services)",
        Col("intercepted"),
    )),
    c(
        "denied_connections_total",
        "Connections denied by rules",
        Col("dcon"),
    ),
    c(
        "denied_sessions_total",
        "Sessions denied by rules",
        Col("dses"),
    ),
    c(
        "failed_header_rewriting_total",
        "Failed header rewrites",
        Col("wrew"),
    ),
    http(c(
        "http_cache_lookups_total",
        "HTTP cache lookups",
        Col("cache_lookups"),
    )),
    http(c(
        "http_cache_hits_total",
        "HTTP cache hits",
        Col("cache_hits"),
    )),
    c("internal_errors_total", "Internal errors", Col("eint")),
];

const BACKEND: &[Metric] = &[
    g(
        "current_queue",
        "Requests waiting in the queue now",
        Col("qcur"),
    ),
    g("max_queue", "Most requests waiting at once", Col("qmax")),
    g("current_sessions", "Sessions open now", Col("scur")),
    g("max_sessions", "Most sessions open at once", Col("smax")),
    g("limit_sessions", "Session limit", ColNan("slim")),
    c("sessions_total", "Sessions since start", Col("stot")),
    c("bytes_in_total", "Bytes received from clients", Col("bin")),
    c("bytes_out_total", "Bytes sent to clients", Col("bout")),
    c(
        "requests_denied_total",
        "Requests denied by rules",
        Col("dreq"),
    ),
    c(
        "responses_denied_total",
        "Responses denied by rules",
        Col("dresp"),
    ),
    c(
        "connection_errors_total",
        "Failed connections to servers",
        Col("econ"),
    ),
    c(
        "response_errors_total",
        "Invalid or aborted server responses",
        Col("eresp"),
    ),
    c("retry_warnings_total", "Connection retries", Col("wretr")),
    c(
        "redispatch_warnings_total",
        "Redispatches to another server",
        Col("wredis"),
    ),
    g(
        "status",
        "1 for the current state (UP or DOWN), 0 for the other",
        States(UPDOWN, Sel::UpDown),
    ),
    g(
        "weight",
        "Sum of the weights of the servers in use",
        Col("weight"),
    ),
    g("active_servers", "Active servers in use", Col("act")),
    g("backup_servers", "Backup servers in use", Col("bck")),
    c(
        "check_up_down_total",
        "UP to DOWN transitions",
        Col("chkdown"),
    ),
    g(
        "check_last_change_seconds",
        "Seconds since the last state change",
        Col("lastchg"),
    ),
    c(
        "downtime_seconds_total",
        "Seconds spent DOWN",
        Col("downtime"),
    ),
    c(
        "loadbalanced_total",
        "Times a server was chosen by the balancer",
        Col("lbtot"),
    ),
    g(
        "max_session_rate",
        "Highest session rate seen",
        Col("rate_max"),
    ),
    http(c(
        "http_responses_total",
        "HTTP responses by status class",
        Codes,
    )),
    http(c("http_requests_total", "HTTP requests", Col("req_tot"))),
    c(
        "client_aborts_total",
        "Transfers aborted by the client",
        Col("cli_abrt"),
    ),
    c(
        "server_aborts_total",
        "Transfers aborted by the server",
        Col("srv_abrt"),
    ),
    http(c(
        "http_comp_bytes_in_total",
        "Bytes fed to the HTTP compressor",
        Col("comp_in"),
    )),
    http(c(
        "http_comp_bytes_out_total",
        "Bytes produced by the HTTP compressor",
        Col("comp_out"),
    )),
    http(c(
        "http_comp_bytes_bypassed_total",
        "Bytes that bypassed the HTTP compressor",
        Col("comp_byp"),
    )),
    http(c(
        "http_comp_responses_total",
        "Compressed HTTP responses",
        Col("comp_rsp"),
    )),
    g(
        "last_session_seconds",
        "Seconds since the last session (-1: none yet)",
        Col("lastsess"),
    ),
    g(
        "queue_time_average_seconds",
        "Average time in the queue over the last 1024 sessions",
        Ms("qtime"),
    ),
    g(
        "connect_time_average_seconds",
        "Average connect time over the last 1024 sessions",
        Ms("ctime"),
    ),
    g(
        "response_time_average_seconds",
        "Average response time over the last 1024 sessions",
        Ms("rtime"),
    ),
    g(
        "total_time_average_seconds",
        "Average session time over the last 1024 sessions",
        Ms("ttime"),
    ),
    c(
        "failed_header_rewriting_total",
        "Failed header rewrites",
        Col("wrew"),
    ),
    c(
        "connection_attempts_total",
        "Connections attempted to servers",
        Col("connect"),
    ),
    c(
        "connection_reuses_total",
        "Idle server connections reused",
        Col("reuse"),
    ),
    http(c(
        "http_cache_lookups_total",
        "HTTP cache lookups",
        Col("cache_lookups"),
    )),
    http(c(
        "http_cache_hits_total",
        "HTTP cache hits",
        Col("cache_hits"),
    )),
    g(
        "max_queue_time_seconds",
        "Longest time in the queue",
        Ms("qtime_max"),
    ),
    g(
        "max_connect_time_seconds",
        "Longest connect time",
        Ms("ctime_max"),
    ),
    g(
        "max_response_time_seconds",
        "Longest response time",
        Ms("rtime_max"),
    ),
    g(
        "max_total_time_seconds",
        "Longest session time",
        Ms("ttime_max"),
    ),
    c("internal_errors_total", "Internal errors", Col("eint")),
    g(
        "uweight",
        "Sum of the configured weights of the servers in use",
        Col("uweight"),
    ),
    g(
        "agg_server_status",
        "Servers per state",
        Agg(SRV_STATES, Sel::Server),
    ),
    g(
        "agg_server_check_status",
        "Servers per state (same as agg_server_status)",
        Agg(SRV_STATES, Sel::Server),
    ),
    g(
        "agg_check_status",
        "Servers per last health check result",
        Agg(CHECK_STATES, Sel::Check),
    ),
];

const SERVER: &[Metric] = &[
    g(
        "current_queue",
        "Requests waiting for this server now",
        Col("qcur"),
    ),
    g("max_queue", "Most requests waiting at once", Col("qmax")),
    g("current_sessions", "Sessions open now", Col("scur")),
    g("max_sessions", "Most sessions open at once", Col("smax")),
    g(
        "limit_sessions",
        "Session limit (maxconn), NaN when unlimited",
        ColNan("slim"),
    ),
    c("sessions_total", "Sessions since start", Col("stot")),
    c("bytes_in_total", "Bytes received from clients", Col("bin")),
    c("bytes_out_total", "Bytes sent to clients", Col("bout")),
    c(
        "responses_denied_total",
        "Responses denied by rules",
        Col("dresp"),
    ),
    c("connection_errors_total", "Failed connections", Col("econ")),
    c(
        "response_errors_total",
        "Invalid or aborted responses",
        Col("eresp"),
    ),
    c("retry_warnings_total", "Connection retries", Col("wretr")),
    c(
        "redispatch_warnings_total",
        "Redispatches away from this server",
        Col("wredis"),
    ),
    g(
        "status",
        "1 for the current state, 0 for the others",
        States(SRV_STATES, Sel::Server),
    ),
    g("weight", "Effective weight", Col("weight")),
    c(
        "check_failures_total",
        "Failed health checks (NaN without checks)",
        ColNan("chkfail"),
    ),
    c(
        "check_up_down_total",
        "UP to DOWN transitions (NaN without checks)",
        ColNan("chkdown"),
    ),
    g(
        "check_last_change_seconds",
        "Seconds since the last state change",
        Col("lastchg"),
    ),
    c(
        "downtime_seconds_total",
        "Seconds spent DOWN (NaN without checks)",
        ColNan("downtime"),
    ),
    g(
        "queue_limit",
        "Queue limit (maxqueue), NaN when unlimited",
        ColNan("qlimit"),
    ),
    g(
        "current_throttle",
        "Slow-start throttle (percent), NaN when none",
        ColNan("throttle"),
    ),
    c(
        "loadbalanced_total",
        "Times chosen by the balancer",
        Col("lbtot"),
    ),
    g(
        "max_session_rate",
        "Highest session rate seen",
        Col("rate_max"),
    ),
    checked(g(
        "check_status",
        "1 for the last health check result, 0 for the others",
        States(CHECK_STATES, Sel::Check),
    )),
    checked(g(
        "check_code",
        "Layer 5-7 code of the last health check",
        Col("check_code"),
    )),
    checked(g(
        "check_duration_seconds",
        "Duration of the last health check",
        Ms("check_duration"),
    )),
    http(c(
        "http_responses_total",
        "HTTP responses by status class",
        Codes,
    )),
    c(
        "client_aborts_total",
        "Transfers aborted by the client",
        Col("cli_abrt"),
    ),
    c(
        "server_aborts_total",
        "Transfers aborted by the server",
        Col("srv_abrt"),
    ),
    g(
        "last_session_seconds",
        "Seconds since the last session (-1: none yet)",
        Col("lastsess"),
    ),
    g(
        "queue_time_average_seconds",
        "Average time in the queue over the last 1024 sessions",
        Ms("qtime"),
    ),
    g(
        "connect_time_average_seconds",
        "Average connect time over the last 1024 sessions",
        Ms("ctime"),
    ),
    g(
        "response_time_average_seconds",
        "Average response time over the last 1024 sessions",
        Ms("rtime"),
    ),
    g(
        "total_time_average_seconds",
        "Average session time over the last 1024 sessions",
        Ms("ttime"),
    ),
    c(
        "failed_header_rewriting_total",
        "Failed header rewrites",
        Col("wrew"),
    ),
    c(
        "connection_attempts_total",
        "Connections attempted",
        Col("connect"),
    ),
    c(
        "connection_reuses_total",
        "Idle connections reused",
        Col("reuse"),
    ),
    g(
        "idle_connections_current",
        "Idle connections now",
        Col("srv_icur"),
    ),
    g(
        "idle_connections_limit",
        "Idle connection limit, NaN when none",
        ColNan("src_ilim"),
    ),
    g(
        "max_queue_time_seconds",
        "Longest time in the queue",
        Ms("qtime_max"),
    ),
    g(
        "max_connect_time_seconds",
        "Longest connect time",
        Ms("ctime_max"),
    ),
    g(
        "max_response_time_seconds",
        "Longest response time",
        Ms("rtime_max"),
    ),
    g(
        "max_total_time_seconds",
        "Longest session time",
        Ms("ttime_max"),
    ),
    c("internal_errors_total", "Internal errors", Col("eint")),
    g(
        "unsafe_idle_connections_current",
        "Idle connections not safe to reuse for any request",
        Col("idle_conn_cur"),
    ),
    g(
        "safe_idle_connections_current",
        "Idle connections safe to reuse",
        Col("safe_conn_cur"),
    ),
    g(
        "used_connections_current",
        "Connections in use",
        Col("used_conn_cur"),
    ),
    g(
        "need_connections_current",
        "Estimated connections needed",
        Col("need_conn_est"),
    ),
    g("uweight", "Configured weight", Col("uweight")),
];

/// Escapes a label value (backslash, double quote, newline).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn num(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok()
}

fn fmt_int(out: &mut String, v: &str) {
    match v.trim().parse::<i64>() {
        Ok(n) => {
            let _ = write!(out, "{n}");
        }
        Err(_) => match num(v) {
            Some(f) => {
                let _ = write!(out, "{f}");
            }
            None => out.push('0'),
        },
    }
}

fn fmt_f(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
    } else {
        let _ = write!(out, "{f:.6}");
    }
}

/// The state of a row as [`Sel`] reads it.
fn state_of<'a>(sel: Sel, status: &'a str, check: &'a str) -> &'a str {
    match sel {
        Sel::UpDown => match status {
            "OPEN" | "UP" | "PAUSED" => "UP",
            s if s.starts_with("UP") => "UP",
            _ => "DOWN",
        },
        Sel::Server => match status {
            "no check" => "UP",
            s if s.starts_with("UP") => "UP",
            s if s.starts_with("DOWN") => "DOWN",
            s if s.starts_with("MAINT") => "MAINT",
            "DRAIN" => "DRAIN",
            "NOLB" => "NOLB",
            _ => "DOWN",
        },
        Sel::Check => check.trim_start_matches('*'),
    }
}

/// Renders the exporter's answer. `header` and `rows` are `show stat`'s; `info` is
/// `show info`'s. Servers are the rows that are neither `FRONTEND` nor `BACKEND`.
pub fn render(info: &[(&str, String)], header: &[String], rows: &[Vec<String>]) -> String {
    let col = |name: &str| header.iter().position(|c| c == name);
    let get = |r: &[String], name: &str| -> String {
        col(name)
            .and_then(|i| r.get(i))
            .cloned()
            .unwrap_or_default()
    };
    let info_get = |k: &str| {
        info.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let is = |r: &[String], kind: &str| {
        let sv = r.get(1).map(String::as_str).unwrap_or("");
        match kind {
            "frontend" => sv == "FRONTEND",
            "backend" => sv == "BACKEND",
            _ => sv != "FRONTEND" && sv != "BACKEND",
        }
    };
    let mut out = String::with_capacity(64 * 1024);
    let head = |out: &mut String, full: &str, m: &Metric| {
        let _ = writeln!(out, "# HELP {full} {}", m.help);
        let _ = writeln!(
            out,
            "# TYPE {full} {}",
            if m.counter { "counter" } else { "gauge" }
        );
    };
    for m in PROCESS {
        let full = format!("haproxy_process_{}", m.name);
        head(&mut out, &full, m);
        match m.src {
            Info(k) => {
                out.push_str(&full);
                out.push(' ');
                fmt_int(&mut out, &info_get(k));
                out.push('\n');
            }
            Const(f) => {
                out.push_str(&full);
                out.push(' ');
                fmt_f(&mut out, f);
                out.push('\n');
            }
            Build => {
                let _ = writeln!(
                    out,
                    "{full}{{version=\"{}\"}} 1",
                    label(&info_get("Version"))
                );
            }
            _ => {}
        }
    }
    for (kind, table) in [
        ("frontend", FRONTEND),
        ("backend", BACKEND),
        ("server", SERVER),
    ] {
        for m in table {
            let full = format!("haproxy_{kind}_{}", m.name);
            let mut body = String::new();
            for r in rows.iter().filter(|r| is(r, kind)) {
                let http = get(r, "mode") == "http";
                if m.only == Only::Http && !http {
                    continue;
                }
                if m.only == Only::Checked && get(r, "chkfail").is_empty() {
                    continue;
                }
                let px = label(r.first().map(String::as_str).unwrap_or(""));
                let labels = if kind == "server" {
                    format!(
                        "proxy=\"{px}\",server=\"{}\"",
                        label(r.get(1).map(String::as_str).unwrap_or(""))
                    )
                } else {
                    format!("proxy=\"{px}\"")
                };
                match m.src {
                    Col(c) => {
                        let _ = write!(body, "{full}{{{labels}}} ");
                        fmt_int(&mut body, &get(r, c));
                        body.push('\n');
                    }
                    ColNan(c) => {
                        let v = get(r, c);
                        let _ = write!(body, "{full}{{{labels}}} ");
                        if v.is_empty() {
                            body.push_str("NaN");
                        } else {
                            fmt_int(&mut body, &v);
                        }
                        body.push('\n');
                    }
                    Ms(c) => {
                        let _ = write!(body, "{full}{{{labels}}} ");
                        fmt_f(&mut body, num(&get(r, c)).unwrap_or(0.0) / 1000.0);
                        body.push('\n');
                    }
                    Const(f) => {
                        let _ = write!(body, "{full}{{{labels}}} ");
                        fmt_f(&mut body, f);
                        body.push('\n');
                    }
                    States(states, sel) => {
                        let (st, ck) = (get(r, "status"), get(r, "check_status"));
                        let cur = state_of(sel, &st, &ck);
                        for s in states {
                            let _ = writeln!(
                                body,
                                "{full}{{{labels},state=\"{s}\"}} {}",
                                (cur == *s) as u8
                            );
                        }
                    }
                    Codes => {
                        for (code, c) in [
                            ("1xx", "hrsp_1xx"),
                            ("2xx", "hrsp_2xx"),
                            ("3xx", "hrsp_3xx"),
                            ("4xx", "hrsp_4xx"),
                            ("5xx", "hrsp_5xx"),
                            ("other", "hrsp_other"),
                        ] {
                            let _ = write!(body, "{full}{{{labels},code=\"{code}\"}} ");
                            fmt_int(&mut body, &get(r, c));
                            body.push('\n');
                        }
                    }
                    Agg(states, sel) => {
                        let servers: Vec<&Vec<String>> = rows
                            .iter()
                            .filter(|s| is(s, "server") && s.first() == r.first())
                            .collect();
                        for st in states {
                            let n = servers
                                .iter()
                                .filter(|s| {
                                    state_of(sel, &get(s, "status"), &get(s, "check_status")) == *st
                                })
                                .count();
                            let _ = writeln!(body, "{full}{{{labels},state=\"{st}\"}} {n}");
                        }
                    }
                    Info(_) | Build => {}
                }
            }
            if !body.is_empty() {
                head(&mut out, &full, m);
                out.push_str(&body);
            }
        }
    }
    out
}

/// Every metric family name the exporter can emit (for tests and documentation).
pub fn family_names() -> Vec<String> {
    let mut v: Vec<String> = PROCESS
        .iter()
        .map(|m| format!("haproxy_process_{}", m.name))
        .collect();
    for (kind, table) in [
        ("frontend", FRONTEND),
        ("backend", BACKEND),
        ("server", SERVER),
    ] {
        v.extend(table.iter().map(|m| format!("haproxy_{kind}_{}", m.name)));
    }
    v
}

/// Answers a request with the metrics (the `prometheus-exporter` service): 200 with
/// `content-type: text/plain; version=0.0.4`. Returns the transaction's status and byte count.
pub async fn serve<W>(
    fe: &super::Frontend,
    req: &crate::http1::Request,
    cw: &mut W,
) -> super::stats_page::Served
where
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    fe.ctr
        .intercepted
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut keep = crate::http1::plan_request(req, fe.http.mode, fe.http.mode).client_keep_alive
        && matches!(
            req.body,
            crate::http1::BodyKind::None | crate::http1::BodyKind::Length(0)
        )
        && !super::is_stopping();
    let (header, rows) = super::admin::stat_table(crate::config::ir::CliLevel::Admin, &[]);
    let body = render(&super::admin::info_fields(), &header, &rows);
    let head = super::stats_page::response_head(
        200,
        "OK",
        &[
            ("cache-control", "no-cache".into()),
            ("content-type", "text/plain; version=0.0.4".into()),
            ("content-length", body.len().to_string()),
        ],
        super::stats_page::conn_header(req, keep),
    );
    let mut bytes = head.into_bytes();
    if !req.is_head() {
        bytes.extend_from_slice(body.as_bytes());
    }
    if cw.write_all(&bytes).await.is_err() || !keep {
        let _ = cw.shutdown().await;
        keep = false;
    }
    super::stats_page::Served {
        status: 200,
        bytes_out: super::http::error_htx(&bytes),
        keep_alive: keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn renders_families_once_with_labels() {
        let header = s(&[
            "pxname",
            "svname",
            "scur",
            "status",
            "mode",
            "hrsp_2xx",
            "chkfail",
            "check_status",
            "slim",
            "qtime",
        ]);
        let rows = vec![
            s(&[
                "fe", "FRONTEND", "3", "OPEN", "http", "7", "", "", "100", "",
            ]),
            s(&["t", "FRONTEND", "1", "OPEN", "tcp", "", "", "", "100", ""]),
            s(&[
                "be", "a\"b", "0", "UP", "http", "5", "0", "L4OK", "", "1500",
            ]),
            s(&["be", "c", "0", "MAINT", "http", "0", "", "", "", ""]),
            s(&[
                "be", "BACKEND", "0", "UP", "http", "5", "", "", "10", "1500",
            ]),
        ];
        let info = vec![
            ("Version", "2.6.12-x".to_string()),
            ("Nbthread", "2".into()),
        ];
        let out = render(&info, &header, &rows);
        assert!(out.contains("haproxy_process_nbthread 2\n"));
        assert!(out.contains("haproxy_process_build_info{version=\"2.6.12-x\"} 1\n"));
        assert!(out.contains("haproxy_process_current_zlib_memory NaN\n"));
        assert!(out.contains("haproxy_frontend_current_sessions{proxy=\"fe\"} 3\n"));
        assert!(
            out.contains("haproxy_frontend_http_responses_total{proxy=\"fe\",code=\"2xx\"} 7\n")
        );
        assert!(!out.contains("haproxy_frontend_http_responses_total{proxy=\"t\""));
        assert!(out.contains("haproxy_frontend_status{proxy=\"t\",state=\"UP\"} 1\n"));
        assert!(
            out.contains("haproxy_server_status{proxy=\"be\",server=\"a\\\"b\",state=\"UP\"} 1\n")
        );
        assert!(
            out.contains("haproxy_server_status{proxy=\"be\",server=\"c\",state=\"MAINT\"} 1\n")
        );
        assert!(out.contains(
            "haproxy_server_check_status{proxy=\"be\",server=\"a\\\"b\",state=\"L4OK\"} 1\n"
        ));
        assert!(!out.contains("haproxy_server_check_status{proxy=\"be\",server=\"c\""));
        assert!(out.contains("haproxy_server_limit_sessions{proxy=\"be\",server=\"c\"} NaN\n"));
        assert!(out.contains(
            "haproxy_server_queue_time_average_seconds{proxy=\"be\",server=\"a\\\"b\"} 1.500000\n"
        ));
        assert!(
            out.contains("haproxy_backend_agg_server_status{proxy=\"be\",state=\"MAINT\"} 1\n")
        );
        assert!(out.contains("haproxy_backend_agg_check_status{proxy=\"be\",state=\"L4OK\"} 1\n"));
        // One HELP and one TYPE per family.
        for name in family_names() {
            let helps = out.matches(&format!("# HELP {name} ")).count();
            assert!(helps <= 1, "{name}");
        }
        assert_eq!(family_names().len(), 187);
    }
}
