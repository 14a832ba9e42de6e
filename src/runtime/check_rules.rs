//! Health-check rule sets: `option tcp-check` with `tcp-check` rules, `option httpchk` with
//! `http-check` rules (`disable-on-404`, `send-state`), the protocol checks HAProxy 2.6 builds
//! as rule sets (`redis-check`, `smtpchk`, `ssl-hello-chk`, `pgsql-check`, `mysql-check`,
//! `ldap-check`), and the plain connect check (an empty rule set).
//!
//! A check runs the rules in order on one connection (a `connect` rule opens a new one; without
//! a leading `connect` there is an implicit one to the server's check address, with a PROXY
//! line under `check-send-proxy`). The result and its texts follow HAProxy 2.6 (measured
//! against 2.6.12, see compat-tests/runtime_checks.rs):
//!
//! * connect failure: `Layer4 connection problem` / `Layer4 timeout`, info the error text;
//! * read/write failure after connect: `Socket error`;
//! * expect timeout: the rule's `tout-status` (default `Layer7 timeout`);
//! * expect mismatch: the rule's `error-status` (default `Layer7 invalid response`, with
//!   `TCPCHK did not match content 'X' at step N` for user rule sets); HTTP status/header
//!   mismatches are `Layer7 wrong status` with the code and reason;
//! * success: `Layer4 check passed` when the last step was a connect, else the last expect's
//!   `ok-status` (default `Layer7 check passed`) with `(tcp-check)` or its `on-success` text
//!   (HTTP: the status code, no info).
//!
//! With user `tcp-check` rules the info of connection errors and timeouts names the step
//! (` at step 2 of tcp-check (expect string '+PONG') comment: 'x'`); built-in rule sets do
//! not. Rule sets from a defaults section are used until a proxy has its own rules or its own
//! `option httpchk` (see [`crate::config::ir::Proxy::httpchk_send`]).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::backend::Backend;
use crate::config::ir::{
    CheckOption, CheckRule, CheckStatus, ConnectRule, ExpectMatch, ExpectRule, HdrMatchMethod,
    HdrPattern, HttpSendRule, Proxy, RulesKind,
};
use crate::tproxy::addr::ServerAddr;
use crate::tproxy::sockopt;

/// Most bytes an expect looks at (HAProxy's check buffer, `tune.bufsize`).
const CHECK_BUFSIZE: usize = 16384;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub st: CheckStatus,
    pub code: i32,
    pub info: String,
}

impl Outcome {
    pub fn new(st: CheckStatus, code: i32, info: impl Into<String>) -> Outcome {
        Outcome {
            st,
            code,
            info: info.into(),
        }
    }

    pub fn ok(&self) -> bool {
        matches!(
            self.st,
            CheckStatus::L4Ok | CheckStatus::L6Ok | CheckStatus::L7Ok | CheckStatus::L7OkC
        )
    }

    /// HAProxy's check status, which `option log-health-checks` compares with the previous
    /// check's (the info text does not count).
    pub fn kind(&self) -> CheckStatus {
        self.st
    }

    /// `reason: ...` text as HAProxy prints it (without the duration).
    pub fn reason(&self) -> String {
        let mut s = desc(self.st).to_string();
        if shows_code(self.st) {
            s.push_str(&format!(", code: {}", self.code));
        }
        if !self.info.is_empty() {
            s.push_str(&format!(", info: \"{}\"", self.info));
        }
        s
    }
}

/// HAProxy's description of a check status.
pub fn desc(st: CheckStatus) -> &'static str {
    match st {
        CheckStatus::SockErr => "Socket error",
        CheckStatus::L4Ok => "Layer4 check passed",
        CheckStatus::L4Tout => "Layer4 timeout",
        CheckStatus::L4Con => "Layer4 connection problem",
        CheckStatus::L6Ok => "Layer6 check passed",
        CheckStatus::L6Tout => "Layer6 timeout",
        CheckStatus::L6Rsp => "Layer6 invalid response",
        CheckStatus::L7Tout => "Layer7 timeout",
        CheckStatus::L7Rsp => "Layer7 invalid response",
        CheckStatus::L7Ok => "Layer7 check passed",
        CheckStatus::L7OkC => "Layer7 check conditionally passed",
        CheckStatus::L7Sts => "Layer7 wrong status",
    }
}

/// The short name `show stat` prints (`check_status`).
pub fn short_name(st: CheckStatus) -> &'static str {
    match st {
        CheckStatus::SockErr => "SOCKERR",
        CheckStatus::L4Ok => "L4OK",
        CheckStatus::L4Tout => "L4TOUT",
        CheckStatus::L4Con => "L4CON",
        CheckStatus::L6Ok => "L6OK",
        CheckStatus::L6Tout => "L6TOUT",
        CheckStatus::L6Rsp => "L6RSP",
        CheckStatus::L7Tout => "L7TOUT",
        CheckStatus::L7Rsp => "L7RSP",
        CheckStatus::L7Ok => "L7OK",
        CheckStatus::L7OkC => "L7OKC",
        CheckStatus::L7Sts => "L7STS",
    }
}

/// Statuses whose reason carries the response code (HAProxy's L5-7 data statuses).
pub fn shows_code(st: CheckStatus) -> bool {
    matches!(
        st,
        CheckStatus::L7Ok | CheckStatus::L7OkC | CheckStatus::L7Sts
    )
}

/// A compiled expect rule.
#[derive(Debug)]
pub struct Expect {
    pub rule: ExpectRule,
    re: Option<regex::bytes::Regex>,
    name_re: Option<regex::bytes::Regex>,
    value_re: Option<regex::bytes::Regex>,
    /// Built-in rule sets: the info on error / success taken from the response.
    on_error_payload: Option<PayloadText>,
    on_success_payload: Option<PayloadText>,
    /// smtpchk: the check code is the response's first three digits.
    code_from_payload: bool,
}

/// Texts the built-in rule sets take from the response (HAProxy's `res.payload` formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayloadText {
    /// The first line (`res.payload(0,0),cut_crlf`).
    FirstLine,
    /// The first line after the 3-digit code (`res.payload(4,0),ltrim(' '),cut_crlf`).
    AfterCode,
    /// A PostgreSQL error's severity (`res.payload(6,0)`, up to the first NUL).
    PgError,
}

impl PayloadText {
    fn render(self, buf: &[u8]) -> String {
        if self == PayloadText::PgError {
            let b = buf.get(6..).unwrap_or(b"");
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            return String::from_utf8_lossy(&b[..end]).into_owned();
        }
        let b = match self {
            PayloadText::PgError | PayloadText::FirstLine => buf,
            PayloadText::AfterCode => {
                let b = buf.get(4..).unwrap_or(b"");
                let n = b.iter().take_while(|&&c| c == b' ').count();
                &b[n..]
            }
        };
        let line = b.split(|&c| c == b'\r' || c == b'\n').next().unwrap_or(b"");
        String::from_utf8_lossy(line).into_owned()
    }
}

/// The first three bytes as a number (smtpchk's `status-code`).
fn payload_code(buf: &[u8]) -> i32 {
    buf.iter()
        .take(3)
        .take_while(|c| c.is_ascii_digit())
        .fold(0, |a, &c| a * 10 + (c - b'0') as i32)
}

#[derive(Debug)]
pub enum Rule {
    Comment,
    /// ssl-hello-chk's client hello (it carries the current time).
    SslHello,
    /// mysql-check: one MySQL packet, an error packet fails with its code and message.
    MysqlPacket,
    /// ldap-check: a bind response with result code 0.
    LdapBindResponse,
    Connect(ConnectRule),
    Send(Vec<u8>, Option<String>),
    Expect(Box<Expect>),
}

/// The rules one server's checks run, built from the backend's configuration.
#[derive(Debug, Default)]
pub struct Plan {
    pub rules: Vec<Rule>,
    /// A user `tcp-check` rule set: errors name the step.
    pub tcp_steps: bool,
    /// HTTP rule set: expects look at an HTTP response.
    pub http: bool,
    /// `http-check disable-on-404`: while the server is up, a 404 passes conditionally.
    pub disable_on_404: bool,
    /// `http-check send-state`: requests hold a marker where the header goes.
    pub send_state: bool,
}

/// Where `X-Haproxy-Server-State` goes in a prepared request (replaced at send time).
const STATE_MARK: &[u8] = b"\0RHX-STATE\0";

fn compile_expect(rule: ExpectRule) -> Expect {
    let re = match &rule.what {
        ExpectMatch::Rstring(s) | ExpectMatch::Rbinary(s) | ExpectMatch::Rstatus(s) => {
            regex::bytes::Regex::new(s).ok()
        }
        _ => None,
    };
    let hre = |p: &HdrPattern| {
        (p.method == HdrMatchMethod::Reg)
            .then(|| regex::bytes::Regex::new(&p.pattern).ok())
            .flatten()
    };
    let (name_re, value_re) = match &rule.what {
        ExpectMatch::Hdr { name, value, .. } => (hre(name), value.as_ref().and_then(hre)),
        _ => (None, None),
    };
    Expect {
        rule,
        re,
        name_re,
        value_re,
        on_error_payload: None,
        on_success_payload: None,
        code_from_payload: false,
    }
}

fn default_expect(what: ExpectMatch) -> ExpectRule {
    ExpectRule {
        inverse: false,
        what,
        min_recv: -1,
        ok_status: None,
        error_status: None,
        tout_status: None,
        on_success: None,
        on_error: None,
        comment: None,
    }
}

/// The HTTP request of a send rule over the `option httpchk` defaults.
/// `base` is the `option httpchk` request when it belongs to the rule set (else HAProxy's
/// defaults, `OPTIONS / HTTP/1.0`).
fn http_request(p: &Proxy, base: bool, send: Option<&HttpSendRule>) -> Vec<u8> {
    let (mut meth, mut uri, mut ver, mut hdrs) = match p.httpchk.as_ref().filter(|_| base) {
        Some(h) => (
            h.value.method.clone(),
            h.value.uri.clone(),
            h.value.version.clone(),
            h.value.headers.clone(),
        ),
        None => ("OPTIONS".into(), "/".into(), "HTTP/1.0".into(), Vec::new()),
    };
    let mut body = None;
    if let Some(s) = send {
        if let Some(m) = &s.meth {
            meth = m.clone();
        }
        if let Some(u) = &s.uri {
            uri = u.clone();
        }
        if let Some(v) = &s.ver {
            ver = v.clone();
        }
        hdrs.extend(s.hdrs.iter().cloned());
        body = s.body.clone();
    }
    let mut req = format!("{meth} {uri} {ver}\r\n");
    for (n, v) in &hdrs {
        req.push_str(&format!("{}: {v}\r\n", n.to_ascii_lowercase()));
    }
    if p.http_check_send_state {
        req.push_str(std::str::from_utf8(STATE_MARK).unwrap_or(""));
    }
    if let Some(b) = &body {
        req.push_str(&format!("content-length: {}\r\n", b.len()));
    }
    if ver.eq_ignore_ascii_case("HTTP/1.1") {
        req.push_str("connection: close\r\n");
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    if let Some(b) = body {
        out.extend_from_slice(b.as_bytes());
    }
    out
}

impl Plan {
    /// The rule set of a backend (an empty plan is a plain connect check).
    pub fn build(p: &Proxy) -> Plan {
        let rules_of = |kind: RulesKind| -> Vec<CheckRule> {
            match &p.check_rules {
                Some(r) if r.kind == kind => r.rules.iter().map(|l| l.value.clone()).collect(),
                _ => Vec::new(),
            }
        };
        match p.check_option.as_ref().map(|o| &o.value) {
            None => Plan::default(),
            Some(CheckOption::TcpCheck) => {
                let rules = rules_of(RulesKind::Tcp)
                    .into_iter()
                    .map(|r| match r {
                        CheckRule::Comment(_) => Rule::Comment,
                        CheckRule::Connect(c) => Rule::Connect(c),
                        CheckRule::Send { data, comment, .. } => Rule::Send(data, comment),
                        CheckRule::Expect(e) => Rule::Expect(Box::new(compile_expect(e))),
                        CheckRule::HttpSend(_) => Rule::Comment,
                    })
                    .collect();
                Plan {
                    rules,
                    tcp_steps: true,
                    http: false,
                    disable_on_404: false,
                    send_state: false,
                }
            }
            Some(CheckOption::RedisCheck) => {
                let mut e = default_expect(ExpectMatch::String(b"+PONG".to_vec()));
                e.error_status = Some(CheckStatus::L7Sts);
                e.on_success = Some("Redis server is ok".into());
                let mut e = compile_expect(e);
                e.on_error_payload = Some(PayloadText::FirstLine);
                Plan {
                    rules: vec![
                        Rule::Send(b"*1\r\n$4\r\nPING\r\n".to_vec(), None),
                        Rule::Expect(Box::new(e)),
                    ],
                    tcp_steps: false,
                    http: false,
                    disable_on_404: false,
                    send_state: false,
                }
            }
            Some(CheckOption::SmtpChk(cmd)) => {
                // HAProxy 2.6's smtpchk rule set (its steps and texts measured).
                let re = |r: &str, min: i64, err: CheckStatus| {
                    let mut e = default_expect(ExpectMatch::Rstring(r.into()));
                    e.min_recv = min;
                    e.error_status = Some(err);
                    compile_expect(e)
                };
                let mut banner = re("^[0-9]{3}[ \r]", 4, CheckStatus::L7Rsp);
                banner.on_error_payload = Some(PayloadText::FirstLine);
                let reply = |min: i64| {
                    let mut e = re(
                        if min > 0 {
                            "^2[0-9]{2}[ \r]"
                        } else {
                            "^2[0-9]{2}[- \r]"
                        },
                        min,
                        CheckStatus::L7Sts,
                    );
                    e.on_error_payload = Some(PayloadText::AfterCode);
                    e.code_from_payload = true;
                    e
                };
                let mut last = reply(-1);
                last.on_success_payload = Some(PayloadText::AfterCode);
                Plan {
                    rules: vec![
                        Rule::Connect(ConnectRule {
                            linger: true,
                            ..Default::default()
                        }),
                        Rule::Expect(Box::new(banner)),
                        Rule::Expect(Box::new(reply(4))),
                        Rule::Send(format!("{cmd}\r\n").into_bytes(), None),
                        Rule::Expect(Box::new(reply(-1))),
                        Rule::Send(b"QUIT\r\n".to_vec(), None),
                        Rule::Expect(Box::new(last)),
                    ],
                    tcp_steps: false,
                    http: false,
                    disable_on_404: false,
                    send_state: false,
                }
            }
            Some(CheckOption::PgsqlCheck(user)) => {
                // HAProxy 2.6's pgsql-check: a startup message (protocol 3.0, the user), then
                // not an error, then an authentication request (measured).
                let mut msg = Vec::new();
                msg.extend_from_slice(&[0x00, 0x03, 0x00, 0x00]);
                msg.extend_from_slice(b"user\0");
                msg.extend_from_slice(user.as_bytes());
                msg.extend_from_slice(b"\0\0");
                let mut data = ((msg.len() + 4) as u32).to_be_bytes().to_vec();
                data.extend_from_slice(&msg);
                let mut not_err = default_expect(ExpectMatch::Rstring("^E".into()));
                not_err.inverse = true;
                not_err.min_recv = 5;
                not_err.error_status = Some(CheckStatus::L7Rsp);
                let mut not_err = compile_expect(not_err);
                not_err.on_error_payload = Some(PayloadText::PgError);
                let mut auth = default_expect(ExpectMatch::Rbinary(
                    "^52000000[A-Z0-9]{2}000000(00|02|03|04|05|06|07|09|0A)".into(),
                ));
                auth.min_recv = 9;
                auth.error_status = Some(CheckStatus::L7Sts);
                auth.on_success = Some("PostgreSQL server is ok".into());
                auth.on_error = Some("PostgreSQL unknown error".into());
                Plan {
                    rules: vec![
                        Rule::Connect(ConnectRule {
                            default: true,
                            linger: true,
                            ..Default::default()
                        }),
                        Rule::Send(data, None),
                        Rule::Expect(Box::new(not_err)),
                        Rule::Expect(Box::new(compile_expect(auth))),
                    ],
                    tcp_steps: false,
                    http: false,
                    disable_on_404: false,
                    send_state: false,
                }
            }
            Some(CheckOption::MysqlCheck { user, pre41 }) => {
                let mut rules = vec![
                    Rule::Connect(ConnectRule {
                        default: true,
                        linger: true,
                        ..Default::default()
                    }),
                    Rule::MysqlPacket,
                ];
                if let Some(u) = user {
                    // The login HAProxy 2.6 sends (no password), then COM_QUIT (measured).
                    let mut payload = Vec::new();
                    if *pre41 {
                        payload.extend_from_slice(&[0x00, 0x80, 0x00, 0x00, 0x01]);
                        payload.extend_from_slice(u.as_bytes());
                        payload.extend_from_slice(&[0x00, 0x00]);
                    } else {
                        payload.extend_from_slice(&[
                            0x00, 0x82, 0x00, 0x00, 0x00, 0x80, 0x00, 0x01, 0x21,
                        ]);
                        payload.extend_from_slice(&[0u8; 23]);
                        payload.extend_from_slice(u.as_bytes());
                        payload.extend_from_slice(&[0x00, 0x00]);
                    }
                    let len = payload.len() as u32;
                    let mut data = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, 0x01];
                    data.extend_from_slice(&payload);
                    data.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x01]);
                    rules.push(Rule::Send(data, None));
                    rules.push(Rule::MysqlPacket);
                }
                Plan {
                    rules,
                    tcp_steps: false,
                    http: false,
                    disable_on_404: false,
                    send_state: false,
                }
            }
            Some(CheckOption::LdapCheck) => {
                // An anonymous simple bind, messageID 1 (the bytes HAProxy 2.6 sends).
                let bind = vec![
                    0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80,
                    0x00,
                ];
                let mut seq = default_expect(ExpectMatch::Rbinary("^30".into()));
                seq.min_recv = 14;
                Plan {
                    rules: vec![
                        Rule::Send(bind, None),
                        Rule::Expect(Box::new(compile_expect(seq))),
                        Rule::LdapBindResponse,
                    ],
                    tcp_steps: false,
                    http: false,
                    disable_on_404: false,
                    send_state: false,
                }
            }
            Some(CheckOption::SslHelloChk) => {
                let mut e = default_expect(ExpectMatch::Rbinary("^1[56]".into()));
                e.min_recv = 5;
                e.ok_status = Some(CheckStatus::L6Ok);
                e.error_status = Some(CheckStatus::L6Rsp);
                e.tout_status = Some(CheckStatus::L6Tout);
                e.on_success = Some(String::new());
                Plan {
                    rules: vec![Rule::SslHello, Rule::Expect(Box::new(compile_expect(e)))],
                    tcp_steps: false,
                    http: false,
                    disable_on_404: false,
                    send_state: false,
                }
            }
            Some(CheckOption::HttpChk) => {
                let user = rules_of(RulesKind::Http);
                let mut rules = Vec::new();
                let starts_with_connect = user
                    .iter()
                    .find(|r| !matches!(r, CheckRule::Comment(_)))
                    .is_some_and(|r| matches!(r, CheckRule::Connect(_)));
                let mut first_send_used = false;
                // `option httpchk` adds its request to the rule set of its own section only: a
                // proxy with its own http-check rules but the option from a defaults section
                // sends only what its rules say (nothing at all without a send rule).
                let base = p.httpchk_send;
                if !starts_with_connect && base {
                    // The implicit request: `option httpchk` completed by the first send rule.
                    let first = user.iter().find_map(|r| match r {
                        CheckRule::HttpSend(s) => Some(s),
                        _ => None,
                    });
                    first_send_used = first.is_some();
                    rules.push(Rule::Send(http_request(p, base, first), None));
                }
                let mut skipped_first = false;
                for r in &user {
                    rules.push(match r {
                        CheckRule::Comment(_) => Rule::Comment,
                        CheckRule::Connect(c) => Rule::Connect(c.clone()),
                        CheckRule::HttpSend(s) => {
                            // Only the first send completes the `option httpchk` request;
                            // later ones start from OPTIONS / HTTP/1.0 (measured).
                            let first = !skipped_first;
                            skipped_first = true;
                            if first && first_send_used {
                                Rule::Comment
                            } else {
                                Rule::Send(
                                    http_request(p, base && first, Some(s)),
                                    s.comment.clone(),
                                )
                            }
                        }
                        CheckRule::Send { data, comment, .. } => {
                            Rule::Send(data.clone(), comment.clone())
                        }
                        CheckRule::Expect(e) => Rule::Expect(Box::new(compile_expect(e.clone()))),
                    });
                }
                if !rules.iter().any(|r| matches!(r, Rule::Expect(_))) {
                    rules.push(Rule::Expect(Box::new(compile_expect(default_expect(
                        ExpectMatch::Status(vec![(200, 399)]),
                    )))));
                }
                Plan {
                    rules,
                    tcp_steps: false,
                    http: true,
                    disable_on_404: p.http_check_disable_on_404,
                    send_state: p.http_check_send_state,
                }
            }
        }
    }
}

/// Where the check of a server goes, and how long its parts may take.
pub struct Target {
    pub addr: SocketAddr,
    pub bind: sockopt::SourceBind,
    pub connect_timeout: Duration,
    /// `Some`: after connect, the rest of the check is bounded by this (`timeout check`);
    /// `None`: the whole check must fit in the connect deadline (`inter`).
    pub check_timeout: Option<Duration>,
    /// The server is not down (a 404 may then pass conditionally with disable-on-404).
    pub server_up: bool,
    /// `http-check send-state`: the header line, as of the start of this check.
    pub state_header: Option<String>,
    /// `check-send-proxy`: the implicit connect (and `connect default`) send a PROXY line.
    pub send_proxy: bool,
}

struct Run<'a> {
    plan: &'a Plan,
    target: &'a Target,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    eof: bool,
    deadline: Instant,
    /// The step being run (1-based, 0 for the implicit connect).
    step: usize,
    /// `connect ... linger`: close with a FIN instead of a reset.
    linger: bool,
    /// The last request sent was a HEAD (its response has no body).
    head_req: bool,
}

fn errno_text(e: &std::io::Error) -> String {
    super::listen::os_error_text(e)
}

fn dump_binary(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        if (0x20..0x7f).contains(&c) {
            s.push(c as char);
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

impl Run<'_> {
    /// ` at step N of tcp-check (...)` for user tcp-check rule sets, else nothing.
    fn where_(&self) -> String {
        if !self.plan.tcp_steps {
            return String::new();
        }
        if self.step == 0 {
            return " at initial connection step of tcp-check".into();
        }
        let mut s = format!(" at step {} of tcp-check", self.step);
        let (what, comment) = match &self.plan.rules[self.step - 1] {
            Rule::Connect(c) => (
                match c.port {
                    Some(p) => format!(" (connect port {p})"),
                    None => " (connect)".into(),
                },
                c.comment.as_deref(),
            ),
            Rule::Send(_, c) => (" (send)".into(), c.as_deref()),
            Rule::Expect(e) => (
                match &e.rule.what {
                    ExpectMatch::String(v) => {
                        format!(" (expect string '{}')", String::from_utf8_lossy(v))
                    }
                    ExpectMatch::Binary(v) => format!(" (expect binary '{}')", dump_binary(v)),
                    ExpectMatch::StringLf(_) => " (expect log-format string)".into(),
                    ExpectMatch::BinaryLf(_) => " (expect log-format binary)".into(),
                    ExpectMatch::Rstring(_) => " (expect regex)".into(),
                    ExpectMatch::Rbinary(_) => " (expect binary regex)".into(),
                    _ => String::new(),
                },
                e.rule.comment.as_deref(),
            ),
            Rule::Comment | Rule::SslHello | Rule::MysqlPacket | Rule::LdapBindResponse => {
                (String::new(), None)
            }
        };
        s.push_str(&what);
        if let Some(c) = comment {
            s.push_str(&format!(" comment: '{c}'"));
        }
        s
    }

    async fn connect(&mut self, c: Option<&ConnectRule>) -> Result<(), Outcome> {
        close(self.stream.take(), self.linger);
        self.linger = c.is_some_and(|c| c.linger);
        self.buf.clear();
        self.eof = false;
        let mut addr = self.target.addr;
        if let Some(c) = c {
            if let Some(ip) = c.addr {
                addr.set_ip(ip);
            }
            if let Some(p) = c.port {
                addr.set_port(p);
            }
        }
        let sock = sockopt::transparent_connect_socket(ServerAddr(addr), &self.target.bind)
            .map_err(|e| {
                Outcome::new(
                    CheckStatus::L4Con,
                    0,
                    format!("{}{}", errno_text(&e), self.where_()),
                )
            })?;
        let conn_deadline = Instant::now() + self.target.connect_timeout;
        let mut stream =
            match tokio::time::timeout_at(conn_deadline, sockopt::connect(sock, ServerAddr(addr)))
                .await
            {
                Err(_) => {
                    return Err(Outcome::new(CheckStatus::L4Tout, 0, self.where_()));
                }
                Ok(Err(e)) => {
                    return Err(Outcome::new(
                        CheckStatus::L4Con,
                        0,
                        format!("{}{}", errno_text(&e), self.where_()),
                    ));
                }
                Ok(Ok(s)) => s,
            };
        self.deadline = match self.target.check_timeout {
            Some(t) => Instant::now() + t,
            None => conn_deadline.max(Instant::now() + Duration::from_millis(1)),
        };
        let send_proxy = match c {
            None => self.target.send_proxy,
            Some(c) => c.send_proxy || (c.default && self.target.send_proxy),
        };
        if send_proxy {
            // HAProxy sends a v1 header with the check connection's own addresses.
            if let (Ok(l), Ok(r)) = (stream.local_addr(), stream.peer_addr()) {
                let fam = if l.is_ipv4() { "TCP4" } else { "TCP6" };
                let line = format!(
                    "PROXY {fam} {} {} {} {}\r\n",
                    l.ip(),
                    r.ip(),
                    l.port(),
                    r.port()
                );
                if let Err(e) = stream.write_all(line.as_bytes()).await {
                    return Err(self.sock_err(&e));
                }
            }
        }
        self.stream = Some(stream);
        Ok(())
    }

    fn sock_err(&self, e: &std::io::Error) -> Outcome {
        Outcome::new(
            CheckStatus::SockErr,
            0,
            format!("{}{}", errno_text(e), self.where_()),
        )
    }

    async fn send(&mut self, data: &[u8]) -> Result<(), Outcome> {
        self.buf.clear();
        self.eof = false;
        self.head_req = self.plan.http && data.starts_with(b"HEAD ");
        let owned;
        let data = match (&self.target.state_header, find_at(data, STATE_MARK)) {
            (hdr, Some(at)) => {
                let mut v = data[..at].to_vec();
                if let Some(h) = hdr {
                    v.extend_from_slice(h.as_bytes());
                }
                v.extend_from_slice(&data[at + STATE_MARK.len()..]);
                owned = v;
                &owned[..]
            }
            _ => data,
        };
        let Some(s) = self.stream.as_mut() else {
            return Ok(());
        };
        match tokio::time::timeout_at(self.deadline, s.write_all(data)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.sock_err(&e)),
            Err(_) => Err(Outcome::new(CheckStatus::L7Tout, 0, self.where_())),
        }
    }

    /// Reads more data: Ok(false) on timeout.
    async fn read_more(&mut self) -> Result<bool, Outcome> {
        let Some(s) = self.stream.as_mut() else {
            self.eof = true;
            return Ok(true);
        };
        let mut tmp = [0u8; 4096];
        match tokio::time::timeout_at(self.deadline, s.read(&mut tmp)).await {
            Err(_) => Ok(false),
            Ok(Ok(0)) => {
                self.eof = true;
                Ok(true)
            }
            Ok(Ok(n)) => {
                let room = CHECK_BUFSIZE.saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&tmp[..n.min(room)]);
                Ok(true)
            }
            Ok(Err(e)) => Err(self.sock_err(&e)),
        }
    }

    fn timeout(&self, e: &Expect) -> Outcome {
        let st = e.rule.tout_status.unwrap_or(CheckStatus::L7Tout);
        Outcome::new(st, 0, self.where_())
    }

    async fn expect_tcp(&mut self, e: &Expect) -> Result<(), Outcome> {
        loop {
            let last = self.eof || self.buf.len() >= CHECK_BUFSIZE;
            if !self.buf.is_empty() {
                let enough = e.rule.min_recv < 0 || self.buf.len() as i64 >= e.rule.min_recv;
                if enough || last {
                    let matched = match_tcp(e, &self.buf);
                    // Wait for more on a mismatch unless a minimum was given and reached.
                    if matched || last || e.rule.min_recv >= 0 {
                        if matched != e.rule.inverse {
                            return Ok(());
                        }
                        return Err(self.mismatch(e, matched));
                    }
                }
            } else if last {
                let st = e.rule.error_status.unwrap_or(CheckStatus::L7Rsp);
                let info = format!("TCPCHK got an empty response at step {}", self.step);
                return Err(Outcome::new(st, 0, info));
            }
            if !self.read_more().await? {
                return Err(self.timeout(e));
            }
        }
    }

    fn mismatch(&self, e: &Expect, matched: bool) -> Outcome {
        let st = e.rule.error_status.unwrap_or(CheckStatus::L7Rsp);
        let code = if e.code_from_payload {
            payload_code(&self.buf)
        } else {
            0
        };
        if let Some(t) = e.on_error_payload {
            return Outcome::new(st, code, t.render(&self.buf));
        }
        if let Some(t) = &e.rule.on_error {
            return Outcome::new(st, 0, t.clone());
        }
        // Built-in rule sets say nothing more than the status.
        if !self.plan.tcp_steps {
            return Outcome::new(st, code, "");
        }
        let mut info = if matched {
            "TCPCHK matched unwanted content".to_string()
        } else {
            "TCPCHK did not match content".to_string()
        };
        match &e.rule.what {
            ExpectMatch::String(v) => info.push_str(&format!(
                " '{}' at step {}",
                String::from_utf8_lossy(v),
                self.step
            )),
            ExpectMatch::Binary(_) => info.push_str(&format!(" (binary) at step {}", self.step)),
            ExpectMatch::StringLf(_) => {
                info.push_str(&format!(" (log-format string) at step {}", self.step))
            }
            ExpectMatch::BinaryLf(_) => {
                info.push_str(&format!(" (log-format binary) at step {}", self.step))
            }
            ExpectMatch::Rstring(_) => info.push_str(&format!(" (regex) at step {}", self.step)),
            ExpectMatch::Rbinary(_) => {
                info.push_str(&format!(" (binary regex) at step {}", self.step))
            }
            _ => {}
        }
        if let Some(c) = &e.rule.comment {
            info.push_str(&format!(" comment: '{c}'"));
        }
        Outcome::new(st, 0, info)
    }

    /// mysql-check: reads one whole packet (3-byte length, sequence, payload); an error
    /// packet (0xff) fails with its code and the text after it, a truncated one is invalid.
    async fn mysql_packet(&mut self) -> Result<(), Outcome> {
        loop {
            let b = &self.buf;
            if b.len() >= 4 {
                let len = b[0] as usize | (b[1] as usize) << 8 | (b[2] as usize) << 16;
                if b.len() >= 4 + len {
                    if b.get(4) == Some(&0xff) {
                        let code = b.get(5).copied().unwrap_or(0) as i32
                            | (b.get(6).copied().unwrap_or(0) as i32) << 8;
                        let text = b.get(7..).unwrap_or(b"");
                        let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
                        return Err(Outcome::new(
                            CheckStatus::L7Sts,
                            code,
                            String::from_utf8_lossy(&text[..end]).into_owned(),
                        ));
                    }
                    return Ok(());
                }
            }
            if self.eof || self.buf.len() >= CHECK_BUFSIZE {
                return Err(Outcome::new(CheckStatus::L7Rsp, 0, ""));
            }
            if !self.read_more().await? {
                return Err(Outcome::new(CheckStatus::L7Tout, 0, ""));
            }
        }
    }

    /// ldap-check: the LDAPv3 bind response (RFC 4511 4.2.2), checked as HAProxy 2.6 does.
    async fn ldap_bind_response(&mut self) -> Result<(), Outcome> {
        const NOT_V3: &str = "Not LDAPv3 protocol";
        loop {
            let b = &self.buf;
            let need_more = |n: usize| b.len() < n;
            if !need_more(7) {
                if b[0] != 0x30 {
                    return Err(Outcome::new(CheckStatus::L7Rsp, 0, NOT_V3));
                }
                let mut len = if b[1] & 0x80 != 0 {
                    (b[1] & 0x7f) as usize
                } else {
                    0
                };
                if len > 2 {
                    return Err(Outcome::new(CheckStatus::L7Rsp, 0, NOT_V3));
                }
                if !need_more(len + 10) {
                    if b[2 + len..6 + len] != [0x02, 0x01, 0x01, 0x61] {
                        return Err(Outcome::new(CheckStatus::L7Rsp, 0, NOT_V3));
                    }
                    if b[len + 6] & 0x80 != 0 {
                        len += (b[len + 6] & 0x7f) as usize;
                    }
                    if len > 4 || need_more(len + 10) {
                        if len > 4 {
                            return Err(Outcome::new(CheckStatus::L7Rsp, 0, NOT_V3));
                        }
                    } else {
                        if b[7 + len..9 + len] != [0x0a, 0x01] {
                            return Err(Outcome::new(CheckStatus::L7Rsp, 0, NOT_V3));
                        }
                        let code = b[len + 9];
                        if code != 0 {
                            return Err(Outcome::new(
                                CheckStatus::L7Sts,
                                code as i32,
                                "See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9",
                            ));
                        }
                        return Ok(());
                    }
                }
            }
            if self.eof || self.buf.len() >= CHECK_BUFSIZE {
                return Err(Outcome::new(CheckStatus::L7Rsp, 0, ""));
            }
            if !self.read_more().await? {
                return Err(Outcome::new(CheckStatus::L7Tout, 0, ""));
            }
        }
    }

    /// Reads a whole HTTP response (head, and the body when `body`), or fails.
    async fn http_response(&mut self, e: &Expect, body: bool) -> Result<HttpResp, Outcome> {
        loop {
            match parse_http(&self.buf) {
                Parsed::Bad => return Err(Outcome::new(CheckStatus::L7Rsp, 0, "")),
                Parsed::Head(r) => {
                    let complete = !body
                        || self.head_req
                        || self.eof
                        || self.buf.len() >= CHECK_BUFSIZE
                        || r.content_length
                            .is_some_and(|cl| self.buf.len() - r.head_len >= cl)
                        || (r.chunked && dechunk(&self.buf[r.head_len..]).1)
                        // Statuses without a body.
                        || r.code < 200
                        || r.code == 204
                        || r.code == 304;
                    if complete {
                        return Ok(r);
                    }
                }
                Parsed::Partial if self.eof || self.buf.len() >= CHECK_BUFSIZE => {
                    return Err(Outcome::new(CheckStatus::L7Rsp, 0, ""));
                }
                Parsed::Partial => {}
            }
            if !self.read_more().await? {
                let st = e.rule.tout_status.unwrap_or(CheckStatus::L7Tout);
                return Err(Outcome::new(st, 0, ""));
            }
        }
    }

    /// The body received so far and whether it is complete.
    fn body_so_far(&self, r: &HttpResp) -> (Vec<u8>, bool) {
        let raw = &self.buf[r.head_len.min(self.buf.len())..];
        let last = self.eof || self.buf.len() >= CHECK_BUFSIZE;
        if self.head_req || r.code < 200 || r.code == 204 || r.code == 304 {
            return (Vec::new(), true);
        }
        if r.chunked {
            let (b, done) = dechunk(raw);
            return (b, done || last);
        }
        match r.content_length {
            Some(cl) => (raw[..cl.min(raw.len())].to_vec(), raw.len() >= cl || last),
            None => (raw.to_vec(), last),
        }
    }

    async fn expect_http(&mut self, e: &Expect) -> Result<HttpResp, Outcome> {
        let needs_body = matches!(
            e.rule.what,
            ExpectMatch::String(_) | ExpectMatch::StringLf(_) | ExpectMatch::Rstring(_)
        );
        let r = self.http_response(e, false).await?;
        if self.plan.disable_on_404 && self.target.server_up && r.code == 404 {
            return Ok(r);
        }
        // Body matches look at what has arrived: a match decides at once, a mismatch waits
        // for the rest of the body.
        let mut body = Vec::new();
        if needs_body {
            loop {
                let (b, complete) = self.body_so_far(&r);
                let matched = match &e.rule.what {
                    ExpectMatch::String(s) | ExpectMatch::StringLf(s) => {
                        !b.is_empty() && find(&b, s)
                    }
                    ExpectMatch::Rstring(_) => {
                        !b.is_empty() && e.re.as_ref().is_some_and(|re| re.is_match(&b))
                    }
                    _ => false,
                };
                if matched || complete {
                    body = b;
                    break;
                }
                if !self.read_more().await? {
                    let st = e.rule.tout_status.unwrap_or(CheckStatus::L7Tout);
                    return Err(Outcome::new(st, 0, ""));
                }
            }
        }
        let body = &body[..];
        if needs_body && body.is_empty() {
            let st = e.rule.error_status.unwrap_or(CheckStatus::L7Rsp);
            let info =
                e.rule.on_error.clone().unwrap_or_else(|| {
                    "HTTP content check could not find a response body".to_string()
                });
            return Err(Outcome::new(st, r.code as i32, info));
        }
        let (matched, content) = match &e.rule.what {
            ExpectMatch::Status(ranges) => (
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&r.code)),
                false,
            ),
            ExpectMatch::Rstatus(_) => (
                e.re.as_ref()
                    .is_some_and(|re| re.is_match(r.code.to_string().as_bytes())),
                false,
            ),
            ExpectMatch::String(s) | ExpectMatch::StringLf(s) => (find(body, s), true),
            ExpectMatch::Rstring(_) => (e.re.as_ref().is_some_and(|re| re.is_match(body)), true),
            ExpectMatch::Hdr { name, value, full } => (
                r.headers.iter().any(|(n, v)| {
                    hdr_match(name, e.name_re.as_ref(), n, true)
                        && match value {
                            None => true,
                            Some(vp) => {
                                let vals: Vec<&[u8]> = if *full {
                                    vec![v.as_slice()]
                                } else {
                                    v.split(|&c| c == b',').map(trim).collect()
                                };
                                vals.iter()
                                    .any(|x| hdr_match(vp, e.value_re.as_ref(), x, false))
                            }
                        }
                }),
                false,
            ),
            ExpectMatch::Binary(_) | ExpectMatch::BinaryLf(_) | ExpectMatch::Rbinary(_) => {
                (false, false)
            }
        };
        if matched != e.rule.inverse {
            return Ok(r);
        }
        let info_default = if content {
            if matched {
                "HTTP check matched unwanted content".to_string()
            } else {
                "HTTP content check did not match".to_string()
            }
        } else {
            r.reason.clone()
        };
        let st = e.rule.error_status.unwrap_or(if content {
            CheckStatus::L7Rsp
        } else {
            CheckStatus::L7Sts
        });
        let info = e.rule.on_error.clone().unwrap_or(info_default);
        Err(Outcome::new(st, r.code as i32, info))
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map(|p| p + 1)
        .unwrap_or(s);
    &v[s..e.max(s)]
}

fn hdr_match(p: &HdrPattern, re: Option<&regex::bytes::Regex>, v: &[u8], name: bool) -> bool {
    let eq = |a: &[u8], b: &[u8]| {
        if name {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let pat = p.pattern.as_bytes();
    match p.method {
        HdrMatchMethod::Str => eq(v, pat),
        HdrMatchMethod::Beg => v.len() >= pat.len() && eq(&v[..pat.len()], pat),
        HdrMatchMethod::End => v.len() >= pat.len() && eq(&v[v.len() - pat.len()..], pat),
        HdrMatchMethod::Sub => {
            if name {
                find(&v.to_ascii_lowercase(), &pat.to_ascii_lowercase())
            } else {
                find(v, pat)
            }
        }
        HdrMatchMethod::Reg => re.is_some_and(|r| r.is_match(v)),
    }
}

fn find_at(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn match_tcp(e: &Expect, buf: &[u8]) -> bool {
    match &e.rule.what {
        ExpectMatch::String(s)
        | ExpectMatch::Binary(s)
        | ExpectMatch::StringLf(s)
        | ExpectMatch::BinaryLf(s) => find(buf, s),
        ExpectMatch::Rstring(_) => e.re.as_ref().is_some_and(|r| r.is_match(buf)),
        ExpectMatch::Rbinary(_) => {
            let hex: String = buf.iter().map(|b| format!("{b:02X}")).collect();
            e.re.as_ref().is_some_and(|r| r.is_match(hex.as_bytes()))
        }
        _ => false,
    }
}

#[derive(Debug, Clone)]
struct HttpResp {
    code: u16,
    reason: String,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    head_len: usize,
    content_length: Option<usize>,
    /// `Transfer-Encoding: chunked`: the body is decoded before matching.
    chunked: bool,
}

/// Decodes a chunked body: the data so far and whether the last chunk was seen.
fn dechunk(mut b: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return (out, false);
        };
        b = &b[eol + 2..];
        if size == 0 {
            return (out, true);
        }
        let take = size.min(b.len());
        out.extend_from_slice(&b[..take]);
        if b.len() < size + 2 {
            return (out, false);
        }
        b = &b[size + 2..];
    }
}

enum Parsed {
    Partial,
    Bad,
    Head(HttpResp),
}

fn parse_http(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut r = httparse::Response::new(&mut headers);
    match r.parse(buf) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Bad,
        Ok(httparse::Status::Complete(n)) => {
            let hs: Vec<(Vec<u8>, Vec<u8>)> = r
                .headers
                .iter()
                .map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
                .collect();
            let cl = hs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(b"content-length"))
                .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse().ok());
            let chunked = hs.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case(b"transfer-encoding")
                    && String::from_utf8_lossy(v)
                        .to_ascii_lowercase()
                        .contains("chunked")
            });
            Parsed::Head(HttpResp {
                code: r.code.unwrap_or(0),
                reason: r.reason.unwrap_or("").to_string(),
                headers: hs,
                head_len: n,
                content_length: if chunked { None } else { cl },
                chunked,
            })
        }
    }
}

/// Runs one check of the plan against `target`.
pub async fn run(plan: &Plan, target: &Target) -> Outcome {
    let mut run = Run {
        plan,
        target,
        stream: None,
        buf: Vec::new(),
        eof: false,
        deadline: Instant::now(),
        step: 0,
        linger: false,
        head_req: false,
    };
    let leading_connect = plan
        .rules
        .iter()
        .find(|r| !matches!(r, Rule::Comment))
        .is_some_and(|r| matches!(r, Rule::Connect(_)));
    if !leading_connect {
        if let Err(o) = run.connect(None).await {
            return o;
        }
    }
    let mut last_connect = true;
    let mut last_expect: Option<&Expect> = None;
    let mut last_http: Option<HttpResp> = None;
    // mysql-check passes with no text.
    let mut mysql = false;
    // The data the last expect matched (built-in texts of the success message).
    let mut last_buf: Vec<u8> = Vec::new();
    for (k, rule) in plan.rules.iter().enumerate() {
        run.step = k + 1;
        let r = match rule {
            Rule::Comment => continue,
            Rule::Connect(c) => {
                last_connect = true;
                run.connect(Some(c)).await
            }
            Rule::Send(data, _) => {
                last_connect = false;
                run.send(data).await
            }
            Rule::SslHello => {
                last_connect = false;
                run.send(&ssl_hello()).await
            }
            Rule::MysqlPacket => {
                last_connect = false;
                last_expect = None;
                mysql = true;
                run.mysql_packet().await
            }
            Rule::LdapBindResponse => {
                last_connect = false;
                last_expect = None;
                mysql = true;
                run.ldap_bind_response().await
            }
            Rule::Expect(e) => {
                last_connect = false;
                last_expect = Some(e);
                if plan.http {
                    run.expect_http(e).await.map(|r| last_http = Some(r))
                } else {
                    let r = run.expect_tcp(e).await;
                    last_buf.clone_from(&run.buf);
                    r
                }
            }
        };
        if let Err(o) = r {
            close(run.stream.take(), run.linger);
            return o;
        }
    }
    close(run.stream.take(), run.linger);
    if plan.rules.is_empty() {
        return Outcome::new(CheckStatus::L4Ok, 0, "");
    }
    if let Some(r) = last_http {
        if plan.disable_on_404 && target.server_up && r.code == 404 {
            return Outcome::new(CheckStatus::L7OkC, 404, "");
        }
        let st = last_expect
            .and_then(|e| e.rule.ok_status)
            .unwrap_or(CheckStatus::L7Ok);
        // HAProxy gives no info on HTTP success unless `on-success` says so.
        let info = last_expect
            .and_then(|e| e.rule.on_success.clone())
            .unwrap_or_default();
        return Outcome::new(st, r.code as i32, info);
    }
    if mysql {
        return Outcome::new(CheckStatus::L7Ok, 0, "");
    }
    let info = match last_expect {
        Some(e) => match (&e.rule.on_success, e.on_success_payload) {
            (Some(t), _) => t.clone(),
            (None, Some(p)) => p.render(&last_buf),
            (None, None) => "(tcp-check)".into(),
        },
        None => "(tcp-check)".into(),
    };
    if last_connect {
        return Outcome::new(CheckStatus::L4Ok, 0, info);
    }
    let st = last_expect
        .and_then(|e| e.rule.ok_status)
        .unwrap_or(CheckStatus::L7Ok);
    let code = match last_expect {
        Some(e) if e.code_from_payload => payload_code(&last_buf),
        _ => 0,
    };
    Outcome::new(st, code, info)
}

/// The SSLv3 client hello of `option ssl-hello-chk` as HAProxy 2.6 sends it: the current
/// time in the random, then `HAPROXYSSLCHK\n` twice, 39 cipher suites, no compression.
fn ssl_hello() -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let mut v = vec![
        0x16, 0x03, 0x00, 0x00, 0x79, 0x01, 0x00, 0x00, 0x75, 0x03, 0x00,
    ];
    v.extend_from_slice(&now.to_be_bytes());
    v.extend_from_slice(b"HAPROXYSSLCHK\nHAPROXYSSLCHK\n");
    v.extend_from_slice(&[0x00, 0x00, 0x4e]);
    for c in (0x01u16..=0x1b).chain(0x2f..=0x3a) {
        v.extend_from_slice(&c.to_be_bytes());
    }
    v.extend_from_slice(&[0x01, 0x00]);
    v
}

/// Checks end with a reset, as HAProxy's do (no TIME_WAIT left behind), unless `linger`.
fn close(s: Option<TcpStream>, linger: bool) {
    if let Some(s) = s {
        if !linger {
            let _ = sockopt::set_reset_on_close(&s);
        }
    }
}

/// The target of server `i`'s checks.
pub fn target(be: &Backend, i: usize) -> Option<Target> {
    let srv = &be.servers[i];
    let cp = srv.check.as_ref()?;
    let bind = srv
        .source
        .as_ref()
        .or(be.source.as_ref())
        .map(|p| p.for_health_check())
        .unwrap_or_else(sockopt::SourceBind::kernel);
    // With `timeout check`, connect is bounded by `timeout connect` and the rest by `timeout
    // check`; without it the whole check must fit in `inter`.
    let (connect_timeout, check_timeout) = match be.check_timeout {
        Some(tc) => (
            be.connect_timeout.unwrap_or(cp.inter).min(cp.inter),
            Some(tc),
        ),
        None => (cp.inter, None),
    };
    Some(Target {
        addr: cp.addr,
        bind,
        connect_timeout,
        check_timeout,
        server_up: srv.up.load(std::sync::atomic::Ordering::Acquire),
        state_header: be.check_plan.send_state.then(|| state_header(be, i)),
        send_proxy: cp.send_proxy,
    })
}

/// `x-haproxy-server-state: UP 2/3; address=...; port=...; name=be/srv; node=...;
/// weight=W/TOTAL; scur=S/B; qcur=Q` as HAProxy 2.6 sends it (measured).
fn state_header(be: &Backend, i: usize) -> String {
    use std::sync::atomic::Ordering::Acquire;
    let srv = &be.servers[i];
    let (rise, fall) = srv
        .check
        .as_ref()
        .map(|c| (c.rise, c.fall))
        .unwrap_or((1, 1));
    let h = srv.admin.chk.lock().map(|c| c.health).unwrap_or(rise);
    let full = rise + fall - 1;
    let st = if srv.up.load(Acquire) {
        let base = if srv.admin.stopping.load(Acquire) {
            "NOLB"
        } else {
            "UP"
        };
        if h >= rise && h < full {
            format!("{base} {}/{fall}", h - rise + 1)
        } else {
            base.to_string()
        }
    } else if h > 0 && h < rise {
        format!("DOWN {h}/{rise}")
    } else {
        "DOWN".to_string()
    };
    let weight = |s: &super::backend::Server| s.admin.uweight.load(Acquire);
    let usable: Vec<&super::backend::Server> = be
        .servers
        .iter()
        .filter(|s| super::admin::usable(s))
        .collect();
    let act: u32 = usable.iter().filter(|s| !s.backup).map(|s| weight(s)).sum();
    let total = if act > 0 {
        act
    } else {
        usable.iter().filter(|s| s.backup).map(|s| weight(s)).sum()
    };
    let (ip, port) = match &srv.target {
        crate::config::ir::ServerTarget::Addr(sa) => (sa.ip().to_string(), sa.port()),
        crate::config::ir::ServerTarget::AddrPortFromClient(ip, _) => (ip.to_string(), 0),
        crate::config::ir::ServerTarget::Intercept { port } => {
            ("0.0.0.0".to_string(), port.unwrap_or(0))
        }
    };
    format!(
        "x-haproxy-server-state: {st}; address={ip}; port={port}; name={}/{}; node={}; weight={}/{total}; scur={}/{}; qcur={}\r\n",
        be.name,
        srv.name,
        crate::log::syslog::system_hostname(),
        weight(srv),
        be.lb.served(i),
        be.active.load(Acquire),
        srv.queued.load(Acquire)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_like_haproxy() {
        assert_eq!(
            Outcome::new(CheckStatus::L7Ok, 0, "(tcp-check)").reason(),
            "Layer7 check passed, code: 0, info: \"(tcp-check)\""
        );
        assert_eq!(
            Outcome::new(CheckStatus::L4Ok, 0, "").reason(),
            "Layer4 check passed"
        );
        assert_eq!(
            Outcome::new(CheckStatus::L7Rsp, 0, "").reason(),
            "Layer7 invalid response"
        );
        assert_eq!(
            Outcome::new(CheckStatus::L7Sts, 503, "Service Unavailable").reason(),
            "Layer7 wrong status, code: 503, info: \"Service Unavailable\""
        );
    }

    #[test]
    fn http_parse_and_binary_dump() {
        match parse_http(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi") {
            Parsed::Head(r) => {
                assert_eq!(r.code, 200);
                assert_eq!(r.content_length, Some(2));
            }
            _ => panic!(),
        }
        assert!(matches!(parse_http(b"-ERR x\r\n"), Parsed::Bad));
        assert_eq!(dump_binary(b"+P\x00"), "+P\\x00");
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"),
            (b"abcde".to_vec(), true)
        );
        assert_eq!(dechunk(b"3\r\nab"), (b"ab".to_vec(), false));
        assert_eq!(dechunk(b"zz\r\n"), (Vec::new(), false));
    }
}
