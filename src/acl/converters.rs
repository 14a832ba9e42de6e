//! Converters (`fetch,conv(args),...`): `lower`, `upper`, `length`, `hex`, `field`, `word`,
//! `regsub`, `url_dec` and the `map*` family (map files loaded at parse time).

use std::sync::Arc;

use super::Sample;
use super::fetch::{FetchError, SmpType};
use super::matcher::{self, Method, Pattern, Re};

/// A loaded map file: keys matched with `method`, values returned as text or integers.
#[derive(Debug)]
pub struct MapFile {
    pub path: String,
    pub method: Method,
    pub out: SmpType,
    pub entries: Vec<(Vec<Pattern>, String)>,
    pub default: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Conv {
    Lower,
    Upper,
    Length,
    /// `hex`: bytes as uppercase hex.
    Hex,
    /// `field(INDEX,DELIMS[,COUNT])` / `word(...)` (words: empty fields skipped).
    Field {
        idx: i64,
        delims: Vec<u8>,
        count: i64,
        words: bool,
    },
    /// `regsub(REGEX,SUBST[,FLAGS])`
    Regsub {
        re: Re,
        subst: Vec<u8>,
        global: bool,
    },
    /// `url_dec([IN_FORM])`
    UrlDec {
        form: bool,
    },
    Map(Arc<MapFile>),
    /// `in_table([T])`: whether the sample is a key of table T.
    InTable(Option<String>),
    /// `table_expire(T[,DEFAULT])` / `table_idle(T[,DEFAULT])`: milliseconds before the
    /// sample's entry expires / since it was updated; DEFAULT (or no sample) without entry.
    TableTime {
        idle: bool,
        table: Option<String>,
        default: Option<i64>,
    },
    /// `table_X([T])`: what the entry of the sample in table T holds (0 when absent).
    Table {
        what: super::stk_fetch::StkWhat,
        table: Option<String>,
    },
}

impl PartialEq for Conv {
    fn eq(&self, o: &Conv) -> bool {
        use Conv::*;
        match (self, o) {
            (Lower, Lower) | (Upper, Upper) | (Length, Length) | (Hex, Hex) => true,
            (
                Field {
                    idx: a,
                    delims: b,
                    count: c,
                    words: d,
                },
                Field {
                    idx: e,
                    delims: f,
                    count: g,
                    words: h,
                },
            ) => a == e && b == f && c == g && d == h,
            (
                Regsub {
                    re: a,
                    subst: b,
                    global: c,
                },
                Regsub {
                    re: d,
                    subst: e,
                    global: f,
                },
            ) => a == d && b == e && c == f,
            (UrlDec { form: a }, UrlDec { form: b }) => a == b,
            (Map(a), Map(b)) => a.path == b.path && a.method == b.method && a.out == b.out,
            (InTable(a), InTable(b)) => a == b,
            (
                TableTime {
                    idle: a,
                    table: b,
                    default: c,
                },
                TableTime {
                    idle: d,
                    table: e,
                    default: f,
                },
            ) => a == d && b == e && c == f,
            (Table { what: a, table: b }, Table { what: c, table: d }) => a == c && b == d,
            _ => false,
        }
    }
}
impl Eq for Conv {}

fn int_arg(conv: &str, n: usize, a: Option<&String>) -> Result<i64, String> {
    let s = a.map(String::as_str).unwrap_or("");
    s.trim().parse::<i64>().map_err(|_| {
        format!("invalid arg {n} in converter '{conv}' : failed to parse '{s}' as type 'integer' at position {n}")
    })
}

fn missing(conv: &str, n: usize, got: usize, want: usize, ty: &str) -> String {
    format!(
        "invalid arg {n} in converter '{conv}' : missing arguments (got {got}/{want}), type '{ty}' expected"
    )
}

/// Parses one converter. `Ok(None)`: HAProxy knows it, rhaproxy does not evaluate it.
pub fn parse(name: &str, args: &[String], kw: &str) -> Result<Option<Conv>, FetchError> {
    let h = |m: String| FetchError::Haproxy(format!("ACL keyword '{kw}' : {m}."));
    let no_args = |c: Conv| -> Result<Option<Conv>, FetchError> {
        if !args.is_empty() {
            return Err(FetchError::Haproxy(format!(
                "ACL keyword '{kw}' : invalid arg 1 in converter '{name}' : expected ')' before '{})'.",
                args.join(",")
            )));
        }
        Ok(Some(c))
    };
    match name {
        "lower" => no_args(Conv::Lower),
        "upper" => no_args(Conv::Upper),
        "length" => no_args(Conv::Length),
        "hex" => no_args(Conv::Hex),
        "field" | "word" => {
            let idx = int_arg(name, 1, args.first()).map_err(h)?;
            let Some(d) = args.get(1) else {
                return Err(h(missing(name, 2, args.len(), 2, "string")));
            };
            let count = match args.get(2) {
                Some(_) => int_arg(name, 3, args.get(2)).map_err(h)?,
                None => 1,
            };
            Ok(Some(Conv::Field {
                idx,
                delims: d.as_bytes().to_vec(),
                count,
                words: name == "word",
            }))
        }
        "regsub" => {
            let (Some(r), Some(s)) = (args.first(), args.get(1)) else {
                return Err(h(missing(name, args.len() + 1, args.len(), 2, "string")));
            };
            let flags = args.get(2).map(String::as_str).unwrap_or("");
            let re =
                matcher::compile_regex(r, flags.contains('i')).map_err(FetchError::Unsupported)?;
            Ok(Some(Conv::Regsub {
                re,
                subst: s.as_bytes().to_vec(),
                global: flags.contains('g'),
            }))
        }
        "url_dec" => Ok(Some(Conv::UrlDec {
            form: args.first().is_some_and(|a| a.trim() != "0"),
        })),
        _ if name == "map" || name.starts_with("map_") => parse_map(name, args, kw).map(Some),
        "in_table" => Ok(Some(Conv::InTable(args.first().cloned()))),
        "table_expire" | "table_idle" => {
            let default = match args.get(1) {
                Some(_) => Some(int_arg(name, 2, args.get(1)).map_err(h)?),
                None => None,
            };
            Ok(Some(Conv::TableTime {
                idle: name == "table_idle",
                table: args.first().cloned(),
                default,
            }))
        }
        _ if name.starts_with("table_") => {
            let what = match &name[6..] {
                "trackers" => super::stk_fetch::StkWhat::Trackers,
                "kbytes_in" => super::stk_fetch::StkWhat::Kbytes { out: false },
                "kbytes_out" => super::stk_fetch::StkWhat::Kbytes { out: true },
                d => match crate::config::ir::StickData::from_name(d) {
                    Some(d) if !d.is_array() && d != crate::config::ir::StickData::ServerKey => {
                        super::stk_fetch::StkWhat::Data(d)
                    }
                    // `table_gpc(IDX,T)`, `table_gpc_rate(IDX,T)`, `table_gpt(IDX,T)`.
                    Some(data) if data.is_array() => {
                        let i = args.first().map(String::as_str).unwrap_or("");
                        let idx = i.trim().parse::<u32>().map_err(|_| {
                            h(format!(
                                "invalid arg 1 in converter '{name}' : failed to parse '{i}' as type 'integer' at position 1"
                            ))
                        })?;
                        return Ok(Some(Conv::Table {
                            what: super::stk_fetch::StkWhat::Arr { data, idx },
                            table: args.get(1).cloned(),
                        }));
                    }
                    _ => return Ok(None),
                },
            };
            Ok(Some(Conv::Table {
                what,
                table: args.first().cloned(),
            }))
        }
        _ => Ok(None),
    }
}

fn parse_map(name: &str, args: &[String], kw: &str) -> Result<Conv, FetchError> {
    let parts: Vec<&str> = name.split('_').skip(1).collect();
    let method_of = |s: &str| match s {
        "str" => Some(Method::Str),
        "beg" => Some(Method::Beg),
        "sub" => Some(Method::Sub),
        "dir" => Some(Method::Dir),
        "dom" => Some(Method::Dom),
        "end" => Some(Method::End),
        "reg" => Some(Method::Reg),
        "ip" => Some(Method::Ip),
        "int" => Some(Method::Int),
        _ => None,
    };
    let out_of = |s: &str| match s {
        "str" => Some(SmpType::Str),
        "int" => Some(SmpType::Int),
        "ip" => Some(SmpType::Ip),
        _ => None,
    };
    let (method, out) = match parts.as_slice() {
        [] => (Method::Str, SmpType::Str),
        [m] => match method_of(m) {
            Some(m) => (m, SmpType::Str),
            None => return Err(FetchError::Unsupported(format!("converter '{name}'"))),
        },
        [m, o] => match (method_of(m), out_of(o)) {
            (Some(m), Some(o)) => (m, o),
            _ => return Err(FetchError::Unsupported(format!("converter '{name}'"))),
        },
        _ => return Err(FetchError::Unsupported(format!("converter '{name}'"))),
    };
    let Some(path) = args.first().filter(|p| !p.is_empty()) else {
        return Err(FetchError::Haproxy(format!(
            "ACL keyword '{kw}' : invalid args in converter '{name}' : missing file name."
        )));
    };
    let text = std::fs::read_to_string(path).map_err(|_| {
        FetchError::Haproxy(format!(
            "ACL keyword '{kw}' : invalid args in converter '{name}' : failed to open pattern file <{path}>."
        ))
    })?;
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (k, v) = match l.find(char::is_whitespace) {
            Some(j) => (&l[..j], l[j..].trim()),
            None => (l, ""),
        };
        let bad = || {
            FetchError::Haproxy(format!(
                "\u{1}invalid args in converter '{name}' : unable to parse '{v}' at line {} of file '{path}'",
                i + 1
            ))
        };
        match out {
            SmpType::Int if v.parse::<i64>().is_err() => return Err(bad()),
            SmpType::Ip if v.parse::<std::net::IpAddr>().is_err() => return Err(bad()),
            _ => {}
        }
        let pats = matcher::parse_patterns(method, &[k.to_string()], false).map_err(|e| {
            FetchError::Haproxy(format!(
                "\u{1}invalid args in converter '{name}' : {e} at line {} of file '{path}'",
                i + 1
            ))
        })?;
        entries.push((pats, v.to_string()));
    }
    Ok(Conv::Map(Arc::new(MapFile {
        path: path.clone(),
        method,
        out,
        entries,
        default: args.get(1).cloned(),
    })))
}

/// A table converter's table: the one it names, else the frontend's.
fn or_fe<'a>(t: &'a Option<String>, ctx: &super::SampleCtx<'a>) -> &'a str {
    t.as_deref().unwrap_or(ctx.fe_name)
}

impl Conv {
    /// The type this converter outputs (`None`: same as its input).
    pub fn out_type(&self) -> Option<SmpType> {
        match self {
            Conv::Length => Some(SmpType::Int),
            Conv::Map(m) => Some(m.out),
            Conv::InTable(_) => Some(SmpType::Bool),
            Conv::TableTime { .. } => Some(SmpType::Int),
            Conv::Table { .. } => Some(SmpType::Int),
            _ => Some(SmpType::Str),
        }
    }

    /// Applies the converter; `None` drops the sample. The `table_*` converters that name no
    /// table read the frontend's (`ctx`).
    pub fn apply(&self, s: Sample, ctx: &super::SampleCtx) -> Option<Sample> {
        Some(match self {
            Conv::InTable(t) => {
                return crate::runtime::stkctr::table_conv(&s, None, or_fe(t, ctx));
            }
            Conv::TableTime {
                idle,
                table: t,
                default,
            } => {
                return crate::runtime::stkctr::table_time(&s, *idle, or_fe(t, ctx), *default);
            }
            Conv::Table { what, table: t } => {
                return crate::runtime::stkctr::table_conv(&s, Some(*what), or_fe(t, ctx));
            }
            Conv::Lower => Sample::Str(s.into_bytes().to_ascii_lowercase()),
            Conv::Upper => Sample::Str(s.into_bytes().to_ascii_uppercase()),
            Conv::Length => Sample::Int(s.into_bytes().len() as i64),
            Conv::Hex => {
                let b = s.into_bytes();
                let mut o = Vec::with_capacity(b.len() * 2);
                for x in b {
                    o.extend_from_slice(format!("{x:02X}").as_bytes());
                }
                Sample::Str(o)
            }
            Conv::Field {
                idx,
                delims,
                count,
                words,
            } => Sample::Str(field(&s.into_bytes(), *idx, delims, *count, *words)?),
            Conv::Regsub { re, subst, global } => {
                let b = s.into_bytes();
                let rep = regex::bytes::NoExpand(subst);
                let out = if *global {
                    re.re.replace_all(&b, rep)
                } else {
                    re.re.replace(&b, rep)
                };
                Sample::Str(out.into_owned())
            }
            Conv::UrlDec { form } => Sample::Str(url_dec(&s.into_bytes(), *form)?),
            Conv::Map(m) => {
                let v = m
                    .entries
                    .iter()
                    .find(|(p, _)| matcher::matches(m.method, false, &s, p))
                    .map(|(_, v)| v.clone())
                    .or_else(|| m.default.clone())?;
                match m.out {
                    SmpType::Int => Sample::Int(v.trim().parse().ok()?),
                    SmpType::Ip => Sample::Ip(v.trim().parse().ok()?),
                    _ => Sample::Str(v.into_bytes()),
                }
            }
        })
    }
}

/// `field`/`word`: `count` items from item `idx` (1-based; negative counts from the end).
fn field(b: &[u8], idx: i64, delims: &[u8], count: i64, words: bool) -> Option<Vec<u8>> {
    // Item boundaries (start, end) in order.
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for (i, c) in b.iter().enumerate() {
        if delims.contains(c) {
            items.push((start, i));
            start = i + 1;
        }
    }
    items.push((start, b.len()));
    if words {
        items.retain(|(s, e)| e > s);
    }
    if idx == 0 || items.is_empty() {
        return None;
    }
    let n = items.len() as i64;
    let count = if count <= 0 { n } else { count };
    let (first, last) = if idx > 0 {
        let f = idx - 1;
        (f, (f + count - 1).min(n - 1))
    } else {
        let l = n + idx;
        ((l - count + 1).max(0), l)
    };
    if first < 0 || first >= n || last < first {
        return Some(Vec::new());
    }
    Some(b[items[first as usize].0..items[last as usize].1].to_vec())
}

fn url_dec(b: &[u8], form: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    while i < b.len() {
        match b[i] {
            b'%' => {
                let (h, l) = (hex(*b.get(i + 1)?)?, hex(*b.get(i + 2)?)?);
                out.push(h * 16 + l);
                i += 3;
            }
            b'+' if form => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_words() {
        assert_eq!(field(b"/a/b/c", 2, b"/", 1, false).unwrap(), b"a");
        assert_eq!(field(b"/a/b/c", -1, b"/", 1, false).unwrap(), b"c");
        assert_eq!(field(b"/a/b/c", 2, b"/", 2, false).unwrap(), b"a/b");
        assert_eq!(field(b"//a//b", 2, b"/", 1, true).unwrap(), b"b");
        assert_eq!(field(b"x.y", 5, b".", 1, false).unwrap(), b"");
        assert_eq!(url_dec(b"a%3Db+c", true).unwrap(), b"a=b c");
        assert!(url_dec(b"bad%zz", false).is_none());
    }
}
