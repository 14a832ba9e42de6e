//! The keyword tables: for every HAProxy 2.6 keyword, where it is valid, how it is parsed and
//! what rhaproxy does with it. `docs/compatibility.md` is generated from these tables
//! (`rhaproxy --dump-compat`), and a test fails when the file is out of date.

pub mod bind;
pub mod global;
pub mod other;
pub mod proxy;
pub mod server;

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
        self.alert(format!(
            "'{what}' in '{section}' section is a valid HAProxy 2.6 keyword but is not supported by rhaproxy yet."
        ));
    }

    /// A valid HAProxy argument form that rhaproxy does not implement.
    pub fn unsupported_arg(&mut self, what: &str, arg: &str) {
        self.alert(format!(
            "'{what}': '{arg}' is valid for HAProxy 2.6 but is not supported by rhaproxy yet."
        ));
    }
}

/// HAProxy's "did you mean" helper compares bigram fingerprints of words; so do we.
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    fn fp(w: &str) -> std::collections::HashMap<(u8, u8), i32> {
        let mut m = std::collections::HashMap::new();
        let b = w.as_bytes();
        let mut prev = 0u8;
        for &c in b.iter().chain(std::iter::once(&0u8)) {
            *m.entry((prev, c)).or_insert(0) += 1;
            prev = c;
        }
        m
    }
    let f = fp(word);
    let mut best: Option<(&str, i32)> = None;
    for c in candidates {
        let g = fp(c);
        let mut d = 0;
        for (k, v) in &f {
            d += (v - g.get(k).copied().unwrap_or(0)).abs();
        }
        for (k, v) in &g {
            if !f.contains_key(k) {
                d += v;
            }
        }
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((c, d));
        }
    }
    // Accept only close matches: fewer differing bigrams than the word has.
    best.filter(|(_, d)| (*d as usize) < word.len() + 1)
        .map(|(c, _)| c)
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
