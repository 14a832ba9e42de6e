//! Configuration front end: files -> lines -> words ([`lexer`]) -> keyword tables
//! ([`keywords`]) -> IR ([`ir`]) -> validity pass ([`validate`]).

pub mod build_info;
pub mod cond;
pub mod ir;
pub mod keywords;
pub mod lexer;
pub mod transparency;
pub mod validate;
pub mod values;

use crate::diag::Diags;
use ir::*;
use keywords::{LineCtx, Status};
use std::sync::Arc;

/// HAProxy stops reading a file after this many fatal errors.
const MAX_FATAL_PER_FILE: usize = 50;

const SECTION_KEYWORDS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "userlist",
    "peers",
    "mailers",
    "resolvers",
    "namespace_list",
    "cache",
    "fcgi-app",
    "http-errors",
    "log-forward",
    "program",
    "ring",
];

/// Expands `-f` arguments: a directory gives its `*.cfg` files (not hidden) in byte order.
pub fn expand_paths(paths: &[String], diags: &mut Diags) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let mut names: Vec<String> = match std::fs::read_dir(p) {
                    Ok(rd) => rd
                        .filter_map(|e| e.ok())
                        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.ends_with(".cfg") && !n.starts_with('.'))
                        .collect(),
                    Err(e) => {
                        diags.alert(
                            None,
                            format!(
                                "Cannot open configuration file/directory {p} : {}",
                                errno_text(&e)
                            ),
                        );
                        return None;
                    }
                };
                names.sort();
                out.extend(
                    names
                        .into_iter()
                        .map(|n| format!("{}/{}", p.trim_end_matches('/'), n)),
                );
            }
            Ok(_) => out.push(p.clone()),
            Err(e) => {
                diags.alert(
                    None,
                    format!(
                        "Cannot open configuration file/directory {p} : {}",
                        errno_text(&e)
                    ),
                );
                return None;
            }
        }
    }
    Some(out)
}

/// The working directory when parsing began: `default-path` changes it while the files are
/// parsed (as HAProxy does, so that relative file names resolve against it), and it comes back
/// when they are done.
static INITIAL_CWD: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);

/// The working directory when parsing began (the current one outside parsing).
pub fn initial_cwd() -> std::path::PathBuf {
    let g = INITIAL_CWD.lock().unwrap_or_else(|e| e.into_inner());
    g.clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default()
}

/// Restores the working directory `default-path` may have changed.
struct RestoreCwd(Option<std::path::PathBuf>);

impl Drop for RestoreCwd {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            if std::env::current_dir().ok().as_ref() != Some(&d) {
                let _ = std::env::set_current_dir(&d);
            }
        }
        *INITIAL_CWD.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

pub(crate) fn errno_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    // std appends " (os error N)"; HAProxy prints strerror() alone.
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

enum Current {
    None,
    Global,
    Proxy(Box<Proxy>),
    Other(&'static keywords::other::SectionKw),
    /// A `peers` section (the last of `Config::peers`).
    Peers,
    /// A section whose header failed; its lines are skipped.
    Broken,
    /// After the pre-1.5 `listen NAME ADDR` form HAProxy rejects every line of the section.
    BrokenListen,
}

/// One `.if` level: whether some branch already ran, whether this branch runs, `.else` seen.
struct CondLevel {
    taken: bool,
    active: bool,
    else_seen: bool,
    parent_active: bool,
}

pub struct Parser<'d> {
    pub diags: &'d mut Diags,
    pub cfg: Config,
    cur: Current,
    /// Proxy names already declared, for the duplicate check.
    declared: std::collections::HashMap<String, Vec<(ProxyKind, Loc)>>,
}

/// Parsing stopped at once (HAProxy's ERR_ABORT): no further checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aborted;

/// Parses every file in order; `Err(Aborted)` when a fatal error stopped parsing at once.
pub fn parse_files(files: &[String], diags: &mut Diags) -> Result<Config, Aborted> {
    let mut p = Parser {
        diags,
        cfg: Config::default(),
        cur: Current::None,
        declared: Default::default(),
    };
    let cwd = std::env::current_dir().ok();
    *INITIAL_CWD.lock().unwrap_or_else(|e| e.into_inner()) = cwd.clone();
    let _restore = RestoreCwd(cwd);
    for f in files {
        // Each file is opened, and starts, from the directory parsing began in.
        if let Some(d) = &_restore.0 {
            if std::env::current_dir().ok().as_ref() != Some(d) {
                let _ = std::env::set_current_dir(d);
            }
        }
        let data = match std::fs::read(f) {
            Ok(d) => d,
            Err(e) => {
                p.diags.alert(
                    None,
                    format!(
                        "Cannot open configuration file/directory {f} : {}",
                        errno_text(&e)
                    ),
                );
                return Err(Aborted);
            }
        };
        p.cfg.files.push(f.clone());
        let before = p.diags.fatal;
        p.diags.fatal = false;
        let aborted = p.parse_file(f, &data);
        if p.diags.fatal {
            p.diags
                .alert(None, format!("Error(s) found in configuration file : {f}"));
        }
        p.diags.fatal |= before;
        if aborted {
            return Err(Aborted);
        }
    }
    Ok(p.cfg)
}

/// Parses configuration text held in memory (tests and fuzzing).
pub fn parse_str(name: &str, text: &str, diags: &mut Diags) -> Result<Config, Aborted> {
    let mut p = Parser {
        diags,
        cfg: Config::default(),
        cur: Current::None,
        declared: Default::default(),
    };
    p.cfg.files.push(name.to_string());
    let aborted = p.parse_file(name, text.as_bytes());
    if p.diags.fatal {
        p.diags.alert(
            None,
            format!("Error(s) found in configuration file : {name}"),
        );
    }
    if aborted { Err(Aborted) } else { Ok(p.cfg) }
}

impl Parser<'_> {
    /// Returns true when parsing must stop at once (ERR_ABORT).
    fn parse_file(&mut self, fname: &str, data: &[u8]) -> bool {
        let file: Arc<str> = Arc::from(fname);
        let mut conds: Vec<CondLevel> = Vec::new();
        let mut fatal_count = 0usize;
        let lines = data.split_inclusive(|b| *b == b'\n');
        let mut lineno = 0usize;
        let mut aborted = false;
        for raw in lines {
            lineno += 1;
            let loc = Loc {
                file: file.clone(),
                line: lineno,
            };
            let alerts_before = self.diags.alerts;
            if !raw.ends_with(b"\n") {
                self.diags.alert(
                    Some((fname, lineno)),
                    format!(
                        "parsing [{loc}]: Missing LF on last line, file might have been truncated at position {}.",
                        raw.len() + 1
                    ),
                );
            }
            if let Some(pos) = raw.iter().position(|b| *b == 0) {
                self.diags.alert(
                    Some((fname, lineno)),
                    format!(
                        "parsing [{loc}]: Stray NUL character at position {}.",
                        pos + 1
                    ),
                );
                fatal_count += 1;
                continue;
            }
            let section_name = match &self.cur {
                Current::Global => "global".to_string(),
                Current::Proxy(p) if !p.name.is_empty() => p.name.clone(),
                Current::Proxy(p) => p.kind.keyword().to_string(),
                Current::Other(s) => s.section.to_string(),
                _ => String::new(),
            };
            let env = lexer::ProcessEnv {
                file: fname,
                line: lineno,
                section: &section_name,
            };
            let words = match lexer::split_line(raw, &env) {
                Ok(w) => w,
                Err(e) => {
                    self.diags.alert(
                        Some((fname, lineno)),
                        format!("parsing [{loc}]: {}", e.render(raw)),
                    );
                    fatal_count += 1;
                    continue;
                }
            };
            if words.is_empty() {
                continue;
            }
            let active = conds.last().is_none_or(|c| c.active);
            // Conditional directives are interpreted even inside inactive blocks.
            match words[0].as_str() {
                ".if" | ".elif" => {
                    let is_if = words[0] == ".if";
                    if !is_if && (conds.is_empty() || conds.last().is_some_and(|c| c.else_seen)) {
                        let m = if conds.is_empty() {
                            "lone '.elif' with no matching '.if'."
                        } else {
                            "'.elif' after '.else' is not permitted."
                        };
                        self.diags
                            .alert(Some((fname, lineno)), format!("parsing [{loc}]: {m}"));
                        aborted = true;
                        break;
                    }
                    if is_if && conds.len() >= 100 {
                        self.diags.alert(
                            Some((fname, lineno)),
                            format!("parsing [{loc}]: too many nested '.if', max is 100."),
                        );
                        aborted = true;
                        break;
                    }
                    let parent_active = if is_if {
                        active
                    } else {
                        conds.last().unwrap().parent_active
                    };
                    let already = !is_if && conds.last().unwrap().taken;
                    let expr = words[1..].join(" ");
                    let value = if parent_active && !already {
                        match cond::eval(&expr, &|v| std::env::var_os(v).is_some()) {
                            Ok(v) => v,
                            Err(e) => {
                                self.diags.alert(
                                    Some((fname, lineno)),
                                    format!("parsing [{loc}]: {}", e.render(&words[0], &expr)),
                                );
                                aborted = true;
                                break;
                            }
                        }
                    } else {
                        false
                    };
                    if is_if {
                        conds.push(CondLevel {
                            taken: value,
                            active: parent_active && value,
                            else_seen: false,
                            parent_active,
                        });
                    } else {
                        let c = conds.last_mut().unwrap();
                        c.active = parent_active && !c.taken && value;
                        c.taken |= value;
                    }
                    continue;
                }
                ".else" | ".endif" => {
                    if let Some(x) = words.get(1) {
                        self.diags.alert(
                            Some((fname, lineno)),
                            format!(
                                "parsing [{loc}]: Unexpected argument '{x}' for '{}'.",
                                words[0]
                            ),
                        );
                        aborted = true;
                        break;
                    }
                    let Some(c) = conds.last_mut() else {
                        self.diags.alert(
                            Some((fname, lineno)),
                            format!(
                                "parsing [{loc}]: lone '{}' with no matching '.if'.",
                                words[0]
                            ),
                        );
                        aborted = true;
                        break;
                    };
                    if words[0] == ".endif" {
                        conds.pop();
                    } else {
                        if c.else_seen {
                            self.diags.alert(
                                Some((fname, lineno)),
                                format!("parsing [{loc}]: '.else' after '.else' is not permitted."),
                            );
                            aborted = true;
                            break;
                        }
                        c.else_seen = true;
                        c.active = c.parent_active && !c.taken;
                        c.taken = true;
                    }
                    continue;
                }
                _ => {}
            }
            if !active {
                continue;
            }
            if words[0].starts_with('.') {
                if self.directive(&words, &loc) {
                    aborted = true;
                    break;
                }
            } else if self.line(words, loc) {
                aborted = true;
                break;
            }
            if self.diags.alerts > alerts_before && self.diags.fatal {
                fatal_count += 1;
                if fatal_count >= MAX_FATAL_PER_FILE {
                    self.diags.alert(
                        Some((fname, lineno)),
                        format!("parsing [{fname}:{lineno}]: too many fatal errors ({MAX_FATAL_PER_FILE}), stopping now."),
                    );
                    break;
                }
            }
        }
        if !aborted && !conds.is_empty() {
            self.diags.alert(
                Some((fname, lineno)),
                format!("parsing [{fname}:{lineno}]: non-terminated '.if' block."),
            );
            aborted = true;
        }
        self.close_section();
        aborted
    }

    /// `.diag`, `.notice`, `.warning`, `.alert`; returns true to abort.
    fn directive(&mut self, words: &[String], loc: &Loc) -> bool {
        let d = words[0].as_str();
        if !matches!(d, ".diag" | ".notice" | ".warning" | ".alert") {
            self.diags.alert(
                Some((&loc.file, loc.line)),
                format!("parsing [{loc}]: unknown directive '{d}'."),
            );
            return false;
        }
        if let Some(x) = words.get(2) {
            self.diags.alert(
                Some((&loc.file, loc.line)),
                format!("parsing [{loc}]: Unexpected argument '{x}' for '{d}'. Use quotes if the message should contain spaces."),
            );
            return false;
        }
        let text = format!(
            "parsing [{loc}]: '{}'.",
            words.get(1).map(String::as_str).unwrap_or("")
        );
        let l = Some((&*loc.file, loc.line));
        match d {
            ".diag" => self.diags.diag(l, text),
            ".notice" => self.diags.notice(l, text),
            ".warning" => self.diags.warning(l, text),
            _ => {
                self.diags.alert(l, text);
                return true;
            }
        }
        false
    }

    fn close_section(&mut self) {
        if let Current::Proxy(p) = std::mem::replace(&mut self.cur, Current::None) {
            if p.kind == ProxyKind::Defaults {
                self.cfg.defaults.push(*p);
            } else {
                self.cfg.proxies.push(*p);
            }
        }
    }

    /// Handles one active configuration line; returns true to abort parsing.
    fn line(&mut self, mut words: Vec<String>, loc: Loc) -> bool {
        let mut negated = false;
        let mut defaulted = false;
        if words[0] == "no" || words[0] == "default" {
            if words[0] == "no" {
                negated = true;
            } else {
                defaulted = true;
            }
            words.remove(0);
            let allowed = matches!(
                words.first().map(String::as_str),
                Some(
                    "option"
                        | "log"
                        | "busy-polling"
                        | "set-dumpable"
                        | "strict-limits"
                        | "insecure-fork-wanted"
                        | "numa-cpu-mapping"
                )
            );
            if !allowed {
                self.diags.alert(
                    Some((&loc.file, loc.line)),
                    format!("parsing [{loc}]: negation/default currently supported only for options, log, busy-polling, set-dumpable, strict-limits, insecure-fork-wanted and numa-cpu-mapping."),
                );
                if words.is_empty() {
                    return false;
                }
            }
        }
        if SECTION_KEYWORDS.contains(&words[0].as_str()) {
            return self.section_header(&words, loc);
        }
        let mut ctx = LineCtx {
            diags: self.diags,
            loc,
            negated,
            defaulted,
            abort: false,
            unsupported: 0,
        };
        match &mut self.cur {
            Current::None => {
                ctx.alert_tight(format!("unknown keyword '{}' out of section.", words[0]));
            }
            Current::Broken => {}
            Current::BrokenListen => ctx.alert("'listen' or 'defaults' expected."),
            Current::Global => global_line(&mut ctx, &mut self.cfg.global, &words),
            Current::Proxy(p) => proxy_line(&mut ctx, p, &words),
            Current::Peers => {
                if let Some(s) = self.cfg.peers.last_mut() {
                    keywords::peers::peers_line(&mut ctx, s, &words);
                }
            }
            Current::Other(s) => {
                if !s.keywords.contains(&words[0].as_str()) {
                    ctx.alert(format!(
                        "unknown keyword '{}' in '{}' section",
                        words[0], s.section
                    ));
                }
            }
        }
        ctx.abort
    }

    fn section_header(&mut self, words: &[String], loc: Loc) -> bool {
        self.close_section();
        let kw = words[0].as_str();
        let l = Some((&*loc.file, loc.line));
        let kind = match kw {
            "global" => {
                if let Some(x) = words.get(1) {
                    self.diags.alert(
                        l,
                        format!(
                            "parsing [{loc}] : 'global' cannot handle unexpected argument '{x}'."
                        ),
                    );
                }
                self.cur = Current::Global;
                return false;
            }
            "defaults" => ProxyKind::Defaults,
            "frontend" => ProxyKind::Frontend,
            "backend" => ProxyKind::Backend,
            "listen" => ProxyKind::Listen,
            other => {
                let s =
                    keywords::other::section(other).expect("section table covers SECTION_KEYWORDS");
                self.cfg.other_sections.push(OtherSection {
                    kind: s.section,
                    name: words.get(1).cloned(),
                    loc: loc.clone(),
                });
                if s.status == Status::Unsupported {
                    self.diags.alert(
                        l,
                        format!("parsing [{loc}] : '{other}' sections are valid in HAProxy 2.6 but not supported by rhaproxy yet."),
                    );
                }
                if other == "peers" {
                    self.cfg.peers.push(crate::config::ir::PeersSection {
                        name: words.get(1).cloned().unwrap_or_default(),
                        loc: loc.clone(),
                        ..Default::default()
                    });
                    self.cur = Current::Peers;
                    return false;
                }
                self.cur = Current::Other(s);
                return false;
            }
        };
        let mut name = words.get(1).cloned().unwrap_or_default();
        let mut rest = 2;
        if kind == ProxyKind::Defaults && name == "from" {
            name = String::new();
            rest = 1;
        }
        if kind != ProxyKind::Defaults && name.is_empty() {
            self.diags.alert(
                l,
                format!("parsing [{loc}] : '{kw}' expects an <id> argument"),
            );
            return true;
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
        {
            self.diags.alert(
                l,
                format!(
                    "parsing [{loc}] : character '{bad}' is not permitted in '{kw}' name '{name}'."
                ),
            );
            self.cur = Current::Broken;
            return false;
        }
        // `listen NAME ADDR:PORT` is the pre-1.5 syntax.
        let mut from: Option<String> = None;
        match (words.get(rest).map(String::as_str), words.get(rest + 1)) {
            (None, _) => {}
            (Some("from"), Some(d)) if words.len() == rest + 2 => from = Some(d.clone()),
            (Some("from"), _) => {
                self.diags
                    .alert(l, format!("parsing [{loc}] : '{kw}' expects 'from' followed by a defaults section name."));
                self.cur = Current::Broken;
                return false;
            }
            (Some(_), _) if kind != ProxyKind::Defaults => {
                self.diags.alert(
                    l,
                    format!(
                        "parsing [{loc}] : please use the 'bind' keyword for listening addresses."
                    ),
                );
                self.cur = Current::BrokenListen;
                return false;
            }
            // HAProxy 2.6 ignores extra words after a defaults section's name.
            (Some(_), _) => {}
        }
        if kind != ProxyKind::Defaults {
            let cap = kind.cap();
            if let Some((pk, ploc)) = self
                .declared
                .get(&name)
                .and_then(|v| v.iter().find(|(k, _)| k.cap().intersects(cap)))
            {
                self.diags.alert(
                    l,
                    format!(
                        "Parsing [{loc}]: {} '{}' has the same name as {} '{}' declared at {}.",
                        kw,
                        name,
                        pk.keyword(),
                        name,
                        ploc
                    ),
                );
            }
            self.declared
                .entry(name.clone())
                .or_default()
                .push((kind, loc.clone()));
        }
        // Find the defaults to inherit from.
        let base: Option<usize> = match &from {
            Some(d) => {
                match self.cfg.defaults.iter().rposition(|x| x.name == *d) {
                    Some(i) => {
                        let dd = &mut self.cfg.defaults[i];
                        dd.referenced_by_from = true;
                        if dd.used_implicitly {
                            // The other order of the mix below (HAProxy 2.6 alerts at each
                            // `from` that names a section already used implicitly).
                            let (dn, dl) = (dd.name.clone(), dd.loc.clone());
                            self.diags
                                .alert_nonfatal(l, mixed_defaults_use(&loc, &dn, &dl));
                        }
                        Some(i)
                    }
                    None => {
                        self.diags.alert(
                        l,
                        format!("parsing [{loc}] : defaults section '{d}' not found for {kw} '{name}'."),
                    );
                        return true;
                    }
                }
            }
            // A `defaults` section without `from` starts afresh (HAProxy 2.6, measured: the
            // previous one's timeouts and `log` lines do not carry over).
            None if kind == ProxyKind::Defaults => None,
            None => self.cfg.defaults.len().checked_sub(1),
        };
        if from.is_none() {
            if let Some(i) = base {
                let d = &self.cfg.defaults[i];
                if d.referenced_by_from && !d.name.is_empty() && kind != ProxyKind::Defaults {
                    let (dn, dl) = (d.name.clone(), d.loc.clone());
                    self.diags
                        .alert_nonfatal(l, mixed_defaults_use(&loc, &dn, &dl));
                }
                if kind != ProxyKind::Defaults {
                    self.cfg.defaults[i].used_implicitly = true;
                }
            }
        }
        let proxy = match base {
            Some(i) => Proxy::from_defaults(kind, name, loc, &self.cfg.defaults[i]),
            None => Proxy::new(kind, name, loc),
        };
        self.cur = Current::Proxy(Box::new(proxy));
        false
    }
}

/// HAProxy 2.6's alert for a named defaults section both used implicitly and named by `from`.
fn mixed_defaults_use(
    loc: &impl std::fmt::Display,
    name: &str,
    at: &impl std::fmt::Display,
) -> String {
    format!(
        "parsing [{loc}] : defaults section '{name}' (declared at {at}) is explicitly referenced by another proxy and implicitly used here. To avoid any ambiguity don't mix both usage. Add a last defaults section not explicitly used or always use explicit references."
    )
}

fn global_line(ctx: &mut LineCtx, g: &mut Global, words: &[String]) {
    let w = words[0].as_str();
    let Some((name, status, parse)) = keywords::global::lookup(w) else {
        let cands = keywords::global::GLOBAL_KEYWORDS
            .iter()
            .map(|(n, _, _)| *n)
            .filter(|n| !n.ends_with('.') && !n.ends_with('-'));
        match keywords::suggest(w, cands) {
            Some(s) => ctx.alert(format!(
                "unknown keyword '{w}' in 'global' section; did you mean '{s}' maybe ?"
            )),
            None => ctx.alert(format!("unknown keyword '{w}' in 'global' section")),
        }
        return;
    };
    match (parse, status) {
        (Some(f), _) => f(ctx, g, words),
        (None, Status::Unsupported) => {
            ctx.unsupported(if name.ends_with(['.', '-']) { w } else { name }, "global")
        }
        _ => {}
    }
}

fn proxy_line(ctx: &mut LineCtx, p: &mut Proxy, words: &[String]) {
    let w = words[0].as_str();
    if let Some(m) = keywords::proxy::removed_keyword(w) {
        ctx.alert(m);
        return;
    }
    let Some(k) = keywords::proxy::lookup(words) else {
        let cands = keywords::proxy::PROXY_KEYWORDS
            .iter()
            .map(|k| k.name.split(' ').next().unwrap_or(k.name));
        let dym = keywords::did_you_mean(w, cands);
        ctx.alert(format!(
            "unknown keyword '{w}' in '{}' section{dym}",
            p.kind.keyword()
        ));
        return;
    };
    let named = !p.name.is_empty();
    let shown = if k.name.contains(' ') { k.name } else { w };
    if p.kind == ProxyKind::Defaults {
        if !keywords::proxy::allowed_in(k, p.kind, named) {
            if k.allowed.contains('d') {
                ctx.alert(format!(
                    "'{shown}' not allowed in anonymous 'defaults' section."
                ));
            } else {
                ctx.alert(format!("'{shown}' not allowed in 'defaults' section."));
            }
            return;
        }
    } else if !keywords::proxy::allowed_in(k, p.kind, named) {
        let (has, lacks) = if p.kind == ProxyKind::Frontend {
            ("frontend", "backend")
        } else {
            ("backend", "frontend")
        };
        let shown1 = words[0].as_str();
        use keywords::proxy::Miss;
        match k.miss {
            Miss::Warn => ctx.warning(format!(
                "'{shown1}' ignored because {has} '{}' has no {lacks} capability.",
                p.name
            )),
            Miss::WarnHint(h) => ctx.warning(format!(
                "'{shown1}' ignored because {has} '{}' has no {lacks} capability. Maybe you want '{h}' instead ?",
                p.name
            )),
            Miss::WarnWill => ctx.warning(format!(
                "{shown1} will be ignored because {has} '{}' has no {lacks} capability",
                p.name
            )),
            Miss::Fatal => {
                let t = format!(
                    "parsing [{}] : '{shown1}' not allowed because {has} '{}' has no {lacks} capability.",
                    ctx.loc, p.name
                );
                ctx.alert_bare(t);
            }
            Miss::FatalText(t) => ctx.alert(t),
            Miss::WarnParse => {
                ctx.warning(format!(
                    "'{shown1}' ignored because {has} '{}' has no {lacks} capability.",
                    p.name
                ));
                let alerts = ctx.diags.alerts;
                if let Some(f) = k.parse {
                    f(ctx, p, words);
                }
                // HAProxy's tcp-check parser, and http-check's option-like actions, then
                // report a warning without text.
                let action = words.get(1).map(String::as_str).unwrap_or("");
                let null = w == "tcp-check" || matches!(action, "disable-on-404" | "send-state");
                if ctx.diags.alerts == alerts && null {
                    ctx.warning("(null)");
                }
            }
        }
        return;
    }
    // `timeout X` on a proxy lacking the capability for X is a warning, not an error.
    if w == "timeout" && p.kind != ProxyKind::Defaults {
        if let Some(cap) = words.get(1).and_then(|n| keywords::proxy::timeout_cap(n)) {
            if !p.cap().intersects(cap) {
                let (has, lacks) = if p.kind == ProxyKind::Frontend {
                    ("frontend", "backend")
                } else {
                    ("backend", "frontend")
                };
                ctx.warning(format!(
                    "'timeout {}' will be ignored because {has} '{}' has no {lacks} capability",
                    words[1], p.name
                ));
                return;
            }
        }
    }
    if w == "log-format" && p.kind == ProxyKind::Backend {
        ctx.warning(format!(
            "backend '{}' : 'log-format' directive is ignored in backends.",
            p.name
        ));
        return;
    }
    match (k.parse, k.status) {
        (_, Status::Unsupported) => ctx.unsupported(shown, p.kind.keyword()),
        (Some(f), _) => f(ctx, p, words),
        (None, _) => {}
    }
}
