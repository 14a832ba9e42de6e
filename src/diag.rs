//! Startup diagnostics printed the way HAProxy prints them:
//! `[ALERT]    (PID) : config : TEXT` on stderr, with the two version notices before the first
//! alert or warning, `-q` silencing everything, and the counts that decide the exit code.

use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Alert,
    Warning,
    Notice,
    Diag,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Alert => "[ALERT]    ",
            Severity::Warning => "[WARNING]  ",
            Severity::Notice => "[NOTICE]   ",
            Severity::Diag => "[DIAG]     ",
        }
    }
}

/// One printed message. `file`/`line` are set when the message concerns a config line; they are
/// kept apart from the text so tests can compare (file:line, severity) with HAProxy's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub severity: Severity,
    /// Printed after `config : ` (the `ctx` of HAProxy); `None` for post-parse startup messages.
    pub config_ctx: bool,
    pub text: String,
    pub file: Option<String>,
    pub line: Option<usize>,
}

/// Collects and prints diagnostics. Printing happens immediately (like HAProxy's fprintf) unless
/// `capture` is set, which tests use.
#[derive(Debug, Default)]
pub struct Diags {
    pub quiet: bool,
    pub show_diag: bool,
    pub capture: bool,
    pub messages: Vec<Message>,
    pub alerts: usize,
    pub warnings: usize,
    /// Set by fatal errors; decides exit status 1.
    pub fatal: bool,
    notices_printed: bool,
    pid: u32,
}

impl Diags {
    pub fn new(quiet: bool) -> Self {
        Diags {
            quiet,
            pid: std::process::id(),
            ..Default::default()
        }
    }

    pub fn captured() -> Self {
        Diags {
            capture: true,
            pid: std::process::id(),
            ..Default::default()
        }
    }

    /// A fatal config alert.
    pub fn alert(&mut self, loc: Option<(&str, usize)>, text: impl Into<String>) {
        self.fatal = true;
        self.emit(Severity::Alert, true, loc, text.into());
    }

    /// An alert that does not fail the check (HAProxy has a few, e.g. named defaults misuse).
    pub fn alert_nonfatal(&mut self, loc: Option<(&str, usize)>, text: impl Into<String>) {
        self.emit(Severity::Alert, true, loc, text.into());
    }

    pub fn warning(&mut self, loc: Option<(&str, usize)>, text: impl Into<String>) {
        self.warnings += 1;
        self.emit(Severity::Warning, true, loc, text.into());
    }

    pub fn notice(&mut self, loc: Option<(&str, usize)>, text: impl Into<String>) {
        self.emit(Severity::Notice, true, loc, text.into());
    }

    pub fn diag(&mut self, loc: Option<(&str, usize)>, text: impl Into<String>) {
        if self.show_diag {
            self.emit(Severity::Diag, true, loc, text.into());
        }
    }

    /// A message outside config parsing (no `config : ` context), e.g. bind failures at start.
    pub fn startup(&mut self, severity: Severity, text: impl Into<String>) {
        match severity {
            Severity::Alert => self.fatal = true,
            Severity::Warning => self.warnings += 1,
            _ => {}
        }
        self.emit(severity, false, None, text.into());
    }

    fn emit(
        &mut self,
        severity: Severity,
        config_ctx: bool,
        loc: Option<(&str, usize)>,
        text: String,
    ) {
        if severity == Severity::Alert {
            self.alerts += 1;
        }
        let msg = Message {
            severity,
            config_ctx,
            text,
            file: loc.map(|l| l.0.to_string()),
            line: loc.map(|l| l.1),
        };
        if !self.capture && !self.quiet {
            let mut out = String::new();
            if matches!(severity, Severity::Alert | Severity::Warning) && !self.notices_printed {
                self.notices_printed = true;
                let exe = std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{}({}) : rhaproxy version is {} (HAProxy {} compatible)\n{}({}) : path to executable is {}\n",
                    Severity::Notice.label(),
                    self.pid,
                    crate::config::build_info::RHAPROXY_VERSION,
                    crate::config::build_info::HAPROXY_VERSION,
                    Severity::Notice.label(),
                    self.pid,
                    exe
                ));
            }
            out.push_str(&self.format(&msg));
            out.push('\n');
            let _ = std::io::stderr().write_all(out.as_bytes());
        }
        self.messages.push(msg);
    }

    /// The line as printed, without the trailing newline.
    pub fn format(&self, m: &Message) -> String {
        format!(
            "{}({}) : {}{}",
            m.severity.label(),
            self.pid,
            if m.config_ctx { "config : " } else { "" },
            m.text
        )
    }
}
