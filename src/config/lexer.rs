//! Splits one configuration line into words with HAProxy 2.6's rules (its `parse_line` with
//! comments, backslash escapes, single and double quotes and environment expansion enabled).
//!
//! The rules that surprise people, all measured against HAProxy 2.6.12:
//! - `#` starts a comment anywhere outside quotes, even in the middle of a word;
//! - `$VAR` is expanded only inside double quotes, never bare and never inside single quotes;
//! - an unknown backslash escape keeps both characters, so regexes like `\.` survive;
//! - `\$` outside quotes keeps its backslash (the manual says otherwise; the binary does this).

/// Where a word-level error happened, reported as HAProxy does: a 1-based column in the raw line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub kind: LexErrorKind,
    /// Byte offset into the line as given (leading blanks included), 0-based.
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexErrorKind {
    UnmatchedQuote,
    UnmatchedBrace,
    ForbiddenVarChar,
    BadHex,
    TooManyWords { word: String },
}

impl LexError {
    /// The message text, as HAProxy prints it after `parsing [F:L]: `, including the caret lines.
    pub fn render(&self, line: &[u8]) -> String {
        let lead = line
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        let trimmed = String::from_utf8_lossy(trim_eol(&line[lead..]));
        let what = match &self.kind {
            LexErrorKind::UnmatchedQuote => "unmatched quote",
            LexErrorKind::UnmatchedBrace => "unmatched brace in environment variable name",
            LexErrorKind::ForbiddenVarChar => "forbidden first char in environment variable name",
            LexErrorKind::BadHex => "truncated or invalid hexadecimal sequence",
            LexErrorKind::TooManyWords { word } => {
                // Here HAProxy counts from the first non-blank character.
                return format!(
                    "too many words, truncating after word {}, position {}: <{}>.",
                    MAX_WORDS,
                    self.offset.saturating_sub(lead) + 1,
                    word
                );
            }
        };
        let col = self.offset.saturating_sub(lead);
        format!(
            "{what} at position {}:\n  {trimmed}\n  {}^",
            self.offset + 1,
            " ".repeat(col)
        )
    }
}

fn trim_eol(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 0 && (s[end - 1] == b'\n' || s[end - 1] == b'\r') {
        end -= 1;
    }
    &s[..end]
}

/// HAProxy's `MAX_LINE_ARGS`.
pub const MAX_WORDS: usize = 64;

/// What the lexer needs from the outside world to expand `"${VAR}"`.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment plus HAProxy's pseudo-variables.
pub struct ProcessEnv<'a> {
    pub file: &'a str,
    pub line: usize,
    pub section: &'a str,
}

impl Env for ProcessEnv<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            ".FILE" => Some(self.file.to_string()),
            ".LINE" => Some(self.line.to_string()),
            ".SECTION" => Some(self.section.to_string()),
            _ => std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
        }
    }
}

/// A map-backed environment for tests and fuzzing.
impl Env for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Quote {
    None,
    Double,
    Single,
}

/// Splits `line` into words. Returns an empty vector for blank and comment-only lines.
/// Words are kept as strings; invalid UTF-8 (rare, from `\xHH` or raw bytes) is replaced lossily.
#[allow(unused_assignments)] // the macro resets state also after the last word
pub fn split_line(line: &[u8], env: &dyn Env) -> Result<Vec<String>, LexError> {
    let mut words: Vec<Vec<u8>> = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    let mut word_start = 0usize;
    let mut cur: Vec<u8> = Vec::new();
    // A word exists once any character or quote pair is seen, so `""` yields an empty word.
    let mut in_word = false;
    let mut quote = Quote::None;
    let mut quote_start = 0;
    let mut i = 0;
    let n = line.len();

    macro_rules! end_word {
        () => {
            if in_word {
                if words.len() == MAX_WORDS {
                    // HAProxy names the last word it kept, at its position.
                    return Err(LexError {
                        kind: LexErrorKind::TooManyWords {
                            word: String::from_utf8_lossy(&words[MAX_WORDS - 1]).into_owned(),
                        },
                        offset: starts[MAX_WORDS - 1],
                    });
                }
                words.push(std::mem::take(&mut cur));
                starts.push(word_start);
                in_word = false;
            }
        };
    }

    while i < n {
        let c = line[i];
        if !in_word {
            word_start = i;
        }
        if quote == Quote::Single {
            if c == b'\'' {
                quote = Quote::None;
            } else if c == b'\n' || c == b'\r' {
                break;
            } else {
                cur.push(c);
            }
            i += 1;
            continue;
        }
        match c {
            b'\n' | b'\r' => break,
            b' ' | b'\t' if quote == Quote::None => {
                end_word!();
                i += 1;
            }
            b'#' if quote == Quote::None => break,
            b'\'' if quote == Quote::None => {
                quote = Quote::Single;
                quote_start = i;
                in_word = true;
                i += 1;
            }
            b'"' => {
                if quote == Quote::Double {
                    quote = Quote::None;
                } else {
                    quote = Quote::Double;
                    quote_start = i;
                }
                in_word = true;
                i += 1;
            }
            b'\\' => {
                in_word = true;
                let next = line.get(i + 1).copied();
                match next {
                    Some(b' ') | Some(b'\\') | Some(b'#') | Some(b'\'') | Some(b'"') => {
                        cur.push(next.unwrap());
                        i += 2;
                    }
                    Some(b't') => {
                        cur.push(b'\t');
                        i += 2;
                    }
                    Some(b'n') => {
                        cur.push(b'\n');
                        i += 2;
                    }
                    Some(b'r') => {
                        cur.push(b'\r');
                        i += 2;
                    }
                    Some(b'$') if quote == Quote::Double => {
                        cur.push(b'$');
                        i += 2;
                    }
                    Some(b'x') => {
                        let h = line.get(i + 2..i + 4).and_then(|h| {
                            std::str::from_utf8(h)
                                .ok()
                                .and_then(|s| u8::from_str_radix(s, 16).ok())
                                .filter(|_| h.iter().all(|b| b.is_ascii_hexdigit()))
                        });
                        match h {
                            Some(b) => {
                                cur.push(b);
                                i += 4;
                            }
                            None => {
                                return Err(LexError {
                                    kind: LexErrorKind::BadHex,
                                    offset: i,
                                });
                            }
                        }
                    }
                    _ => {
                        // Unknown escapes keep the backslash: `\.` stays `\.` for regexes.
                        cur.push(b'\\');
                        i += 1;
                    }
                }
            }
            b'$' if quote == Quote::Double => {
                in_word = true;
                let (consumed, value, split) = expand_var(line, i, env)?;
                i += consumed;
                if let Some(v) = value {
                    if split {
                        // `"${VAR[*]}"` turns the value into several words.
                        let mut parts = v.split([' ', '\t']).filter(|p| !p.is_empty());
                        if let Some(first) = parts.next() {
                            cur.extend_from_slice(first.as_bytes());
                        }
                        for p in parts {
                            end_word!();
                            in_word = true;
                            cur.extend_from_slice(p.as_bytes());
                        }
                    } else {
                        cur.extend_from_slice(v.as_bytes());
                    }
                }
            }
            _ => {
                in_word = true;
                cur.push(c);
                i += 1;
            }
        }
    }
    if quote != Quote::None {
        return Err(LexError {
            kind: LexErrorKind::UnmatchedQuote,
            offset: quote_start,
        });
    }
    end_word!();
    Ok(words
        .into_iter()
        .map(|w| match String::from_utf8(w) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
        .collect())
}

/// Expands the variable reference starting at `line[at] == b'$'`.
/// Returns (bytes consumed, value, split-into-words).
fn expand_var(
    line: &[u8],
    at: usize,
    env: &dyn Env,
) -> Result<(usize, Option<String>, bool), LexError> {
    let braced = line.get(at + 1) == Some(&b'{');
    let name_start = at + 1 + braced as usize;
    let is_first = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b'.';
    let is_rest = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    match line.get(name_start) {
        Some(&c) if is_first(c) => {}
        _ => {
            return Err(LexError {
                kind: LexErrorKind::ForbiddenVarChar,
                offset: name_start,
            });
        }
    }
    let mut j = name_start + 1;
    while j < line.len() && is_rest(line[j]) {
        j += 1;
    }
    let name = String::from_utf8_lossy(&line[name_start..j]).into_owned();
    if !braced {
        return Ok((j - at, env.get(&name), false));
    }
    let mut split = false;
    let mut default: Option<String> = None;
    if line[j..].starts_with(b"[*]") {
        split = true;
        j += 3;
    }
    if line.get(j) == Some(&b'-') {
        let start = j + 1;
        let mut k = start;
        while k < line.len() && line[k] != b'}' && line[k] != b'"' {
            k += 1;
        }
        default = Some(String::from_utf8_lossy(&line[start..k]).into_owned());
        j = k;
    }
    if line.get(j) != Some(&b'}') {
        return Err(LexError {
            kind: LexErrorKind::UnmatchedBrace,
            offset: at + 1,
        });
    }
    let value = env.get(&name).or(default);
    Ok((j + 1 - at, value, split))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<String, String> {
        let mut m = HashMap::new();
        m.insert("Y".to_string(), "a  b".to_string());
        m.insert("PORT".to_string(), "8080".to_string());
        m.insert("EMPTY".to_string(), String::new());
        m
    }

    fn split(s: &str) -> Vec<String> {
        split_line(s.as_bytes(), &env()).unwrap()
    }

    fn err(s: &str) -> LexError {
        split_line(s.as_bytes(), &env()).unwrap_err()
    }

    #[test]
    fn blanks_and_comments() {
        assert!(split("").is_empty());
        assert!(split("   # only a comment").is_empty());
        assert_eq!(split("  bind\t:80  # c"), vec!["bind", ":80"]);
        assert_eq!(split("abc#x def"), vec!["abc"]);
        assert_eq!(split("a \"#b\" '#c'"), vec!["a", "#b", "#c"]);
        assert_eq!(split("a b\r\n"), vec!["a", "b"]);
    }

    #[test]
    fn escapes_outside_quotes() {
        assert_eq!(split(r"a\ b"), vec!["a b"]);
        assert_eq!(split(r"a\\b"), vec![r"a\b"]);
        assert_eq!(split(r"\t\n\r"), vec!["\t\n\r"]);
        assert_eq!(split(r"\#"), vec!["#"]);
        assert_eq!(split(r"\'x\'"), vec!["'x'"]);
        assert_eq!(split(r#"\"x\""#), vec![r#""x""#]);
        assert_eq!(split(r"a\$b"), vec![r"a\$b"]);
        assert_eq!(split(r"\x41\x42"), vec!["AB"]);
        assert_eq!(split(r"^/a\.b\1"), vec![r"^/a\.b\1"]);
    }

    #[test]
    fn escapes_in_double_quotes() {
        assert_eq!(split(r#""a\ b\\c""#), vec![r"a b\c"]);
        assert_eq!(split(r#""\t\#\$""#), vec!["\t#$"]);
        assert_eq!(split(r#""\x41\.""#), vec![r"A\."]);
        assert_eq!(split(r#""\'\"""#), vec![r#"'""#]);
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(split(r"'a\ b\x41 $Y #'"), vec![r"a\ b\x41 $Y #"]);
        assert_eq!(split(r#"'"'"#), vec!["\""]);
    }

    #[test]
    fn quotes_concatenate_and_empty_words() {
        assert_eq!(split(r#"mix"ed "'quo ted'"#), vec!["mixed quo ted"]);
        assert_eq!(split(r#"a "" b"#), vec!["a", "", "b"]);
        assert_eq!(split("''"), vec![""]);
    }

    #[test]
    fn env_expansion_only_in_double_quotes() {
        assert_eq!(split("bind *:$PORT"), vec!["bind", "*:$PORT"]);
        assert_eq!(split("bind \"*:$PORT\""), vec!["bind", "*:8080"]);
        assert_eq!(split("\"${PORT}x\""), vec!["8080x"]);
        assert_eq!(split("'${PORT}'"), vec!["${PORT}"]);
        assert_eq!(split("\"$NOPE\""), vec![""]);
        assert_eq!(split("\"${NOPE-def ault}\""), vec!["def ault"]);
        assert_eq!(split("\"${EMPTY-def}\""), vec![""]);
        assert_eq!(split("\"${NOPE-}\""), vec![""]);
        assert_eq!(split("\"$Y\""), vec!["a  b"]);
        assert_eq!(split("x \"${Y[*]}\" z"), vec!["x", "a", "b", "z"]);
    }

    #[test]
    fn pseudo_variables() {
        let e = ProcessEnv {
            file: "f.cfg",
            line: 7,
            section: "global",
        };
        let w = split_line(b"\"${.FILE}:${.LINE} ${.SECTION}\"", &e).unwrap();
        assert_eq!(w, vec!["f.cfg:7 global"]);
    }

    #[test]
    fn errors_with_haproxy_positions() {
        let line = "    log-tag \"unterminated";
        let e = err(line);
        assert_eq!(e.kind, LexErrorKind::UnmatchedQuote);
        assert_eq!(
            e.render(line.as_bytes()),
            "unmatched quote at position 13:\n  log-tag \"unterminated\n          ^"
        );
        let line = "  log-tag a\\x4";
        assert_eq!(
            err(line).render(line.as_bytes()),
            "truncated or invalid hexadecimal sequence at position 12:\n  log-tag a\\x4\n           ^"
        );
        let line = "  log-tag \"${A\"";
        assert_eq!(
            err(line).render(line.as_bytes()),
            "unmatched brace in environment variable name at position 13:\n  log-tag \"${A\"\n            ^"
        );
        let line = "  log-tag \"${1A}\"";
        assert_eq!(
            err(line).render(line.as_bytes()),
            "forbidden first char in environment variable name at position 14:\n  log-tag \"${1A}\"\n             ^"
        );
        assert_eq!(err("\"$\"").kind, LexErrorKind::ForbiddenVarChar);
        assert_eq!(err("\"a$ b\"").offset, 3);
        assert_eq!(err("\"${X:-d}\"").kind, LexErrorKind::UnmatchedBrace);
        assert_eq!(err("'abc").kind, LexErrorKind::UnmatchedQuote);
    }

    #[test]
    fn word_limit() {
        let ok: Vec<String> = (0..64).map(|i| format!("w{i}")).collect();
        assert_eq!(split(&ok.join(" ")).len(), 64);
        let too: Vec<String> = (0..70).map(|i| format!("w{i}")).collect();
        let line = format!("  log-tag {}", too.join(" "));
        let e = err(&line);
        assert_eq!(
            e.render(line.as_bytes()),
            "too many words, truncating after word 64, position 247: <w62>."
        );
    }
}
