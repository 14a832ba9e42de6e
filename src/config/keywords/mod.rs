//! The keyword tables: for every HAProxy 2.6 keyword, where it is valid, how it is parsed and
//! what rhaproxy does with it. `docs/compatibility.md` is generated from these tables
//! (`rhaproxy --dump-compat`), and a test fails when the file is out of date.

pub mod bind;
pub mod checks;
pub mod global;
pub mod other;
pub mod peers;
pub mod proxy;
pub mod rules;
pub mod server;
pub mod stick;

use crate::config::ir::Loc;
use crate::diag::Diags;

/// What rhaproxy does with a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Parsed and honoured at run time.
    Implemented,
    /// Parsed and accepted; has no effect in rhaproxy, for the reason given.
    NoEffect(&'static str),
    /// Recognised, but refused with an error saying it is not supported by rhaproxy yet.
    Unsupported,
}

impl Status {
    pub fn describe(self) -> String {
        match self {
            Status::Implemented => "implemented".into(),
            Status::NoEffect(why) => format!("accepted, no effect: {why}"),
            Status::Unsupported => "not supported yet (error)".into(),
        }
    }
}

/// State shared by every keyword parser of one line.
pub struct LineCtx<'a> {
    pub diags: &'a mut Diags,
    pub loc: Loc,
    /// `no` prefix given.
    pub negated: bool,
    /// `default` prefix given.
    pub defaulted: bool,
    /// Set by a parser whose error stops HAProxy's parsing at once (ERR_ABORT).
    pub abort: bool,
    /// "not supported by rhaproxy" errors reported on this line.
    pub unsupported: u32,
}

impl LineCtx<'_> {
    pub fn file(&self) -> &str {
        &self.loc.file
    }

    /// `parsing [F:L] : TEXT` as a fatal alert.
    pub fn alert(&mut self, text: impl AsRef<str>) {
        let t = format!("parsing [{}] : {}", self.loc, text.as_ref());
        let (f, l) = (self.loc.file.clone(), self.loc.line);
        self.diags.alert(Some((&f, l)), t);
    }

    /// `parsing [F:L]: TEXT` (no space before the colon) as a fatal alert.
    pub fn alert_tight(&mut self, text: impl AsRef<str>) {
        let t = format!("parsing [{}]: {}", self.loc, text.as_ref());
        let (f, l) = (self.loc.file.clone(), self.loc.line);
        self.diags.alert(Some((&f, l)), t);
    }

    /// `[F:L] : TEXT` as a fatal alert (the server parser's shape).
    pub fn alert_bare(&mut self, text: impl AsRef<str>) {
        let t = format!("[{}] : {}", self.loc, text.as_ref());
        let (f, l) = (self.loc.file.clone(), self.loc.line);
        self.diags.alert(Some((&f, l)), t);
    }

    pub fn warning(&mut self, text: impl AsRef<str>) {
        let t = format!("parsing [{}] : {}", self.loc, text.as_ref());
        let (f, l) = (self.loc.file.clone(), self.loc.line);
        self.diags.warning(Some((&f, l)), t);
    }

    pub fn warning_tight(&mut self, text: impl AsRef<str>) {
        let t = format!("parsing [{}]: {}", self.loc, text.as_ref());
        let (f, l) = (self.loc.file.clone(), self.loc.line);
        self.diags.warning(Some((&f, l)), t);
    }

    /// The error for a keyword rhaproxy recognises but does not implement.
    pub fn unsupported(&mut self, what: &str, section: &str) {
        self.unsupported += 1;
        self.alert(format!(
            "'{what}' in '{section}' section is a valid HAProxy 2.6 keyword but is not supported by rhaproxy yet."
        ));
    }

    /// A valid HAProxy argument form that rhaproxy does not implement.
    pub fn unsupported_arg(&mut self, what: &str, arg: &str) {
        self.unsupported += 1;
        self.alert(format!(
            "'{what}': '{arg}' is valid for HAProxy 2.6 but is not supported by rhaproxy yet."
        ));
    }
}

/// HAProxy's "did you mean": each word gets a fingerprint counting transitions between
/// character classes (letter a-z, digit, other, with begin and end markers); the candidate with
/// the smallest summed difference wins (first one on ties), unless that distance exceeds twice
/// the length of either word.
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    const BEGIN: usize = 28;
    const END: usize = 29;
    fn class(c: u8) -> usize {
        match c.to_ascii_lowercase() {
            c @ b'a'..=b'z' => (c - b'a') as usize,
            b'0'..=b'9' => 26,
            _ => 27,
        }
    }
    fn fingerprint(w: &str) -> [u8; 1024] {
        let mut sig = [0u8; 1024];
        let mut from = BEGIN;
        for &c in w.as_bytes() {
            let to = class(c);
            sig[from * 32 + to] = sig[from * 32 + to].saturating_add(1);
            from = to;
        }
        sig[from * 32 + END] = sig[from * 32 + END].saturating_add(1);
        sig
    }
    let f = fingerprint(word);
    let mut best: Option<(&str, usize)> = None;
    for c in candidates {
        let g = fingerprint(c);
        let d: usize = f
            .iter()
            .zip(g.iter())
            .map(|(a, b)| a.abs_diff(*b) as usize)
            .sum();
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((c, d));
        }
    }
    best.filter(|(c, d)| *d <= 2 * word.len() && *d <= 2 * c.len())
        .map(|(c, _)| c)
}

/// `; did you mean 'X' maybe ?` or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    match suggest(word, candidates) {
        Some(s) => format!("; did you mean '{s}' maybe ?"),
        None => String::new(),
    }
}

/// One row of docs/compatibility.md.
pub struct DocRow {
    pub section: &'static str,
    pub keyword: String,
    pub where_: String,
    pub status: Status,
}

/// Every keyword of every table, for the generated documentation.
pub fn all_rows() -> Vec<DocRow> {
    let mut rows = Vec::new();
    rows.extend(global::doc_rows());
    rows.extend(proxy::doc_rows());
    rows.extend(bind::doc_rows());
    rows.extend(server::doc_rows());
    rows.extend(other::doc_rows());
    rows
}

#[cfg(test)]
mod tests {
    use super::suggest;

    #[test]
    fn suggestions_like_haproxy() {
        let global = ["maxconn", "daemon", "nbthread", "unix-bind", "log", "user"];
        assert_eq!(suggest("maxconm", global.iter().copied()), Some("maxconn"));
        assert_eq!(suggest("deamon", global.iter().copied()), Some("daemon"));
        assert_eq!(suggest("nbthred", global.iter().copied()), Some("nbthread"));
        assert_eq!(suggest("bind", global.iter().copied()), Some("unix-bind"));
        assert_eq!(
            suggest("frobnicate", ["bind", "mode"].iter().copied()),
            None
        );
    }
}
