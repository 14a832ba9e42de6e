//! `.if` / `.elif` conditions, with HAProxy 2.6's grammar and predicates.
//!
//! Grammar: `expr := and ('||' and)*`, `and := term ('&&' term)*`,
//! `term := '!' term | '(' expr ')' | integer | predicate '(' args ')'`; empty is false.

use crate::config::build_info;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondError {
    /// 0-based position in the expression.
    pub pos: usize,
    pub msg: String,
}

impl CondError {
    /// HAProxy's text for `.if`/`.elif` errors, with the caret line.
    pub fn render(&self, directive: &str, expr: &str) -> String {
        format!(
            "{} in '{directive}' at position {}:\n  {directive} {expr}\n  {}^",
            self.msg,
            self.pos + 1,
            " ".repeat(directive.len() + 1 + self.pos)
        )
    }
}

/// Evaluates `expr` (the words after `.if` joined by single spaces).
pub fn eval(expr: &str, env_defined: &dyn Fn(&str) -> bool) -> Result<bool, CondError> {
    let mut p = Parser {
        s: expr.as_bytes(),
        i: 0,
        defined: env_defined,
    };
    p.skip_ws();
    if p.i == p.s.len() {
        return Ok(false);
    }
    let v = p.expr()?;
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(p.unparsable());
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    defined: &'a dyn Fn(&str) -> bool,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] == b' ' || self.s[self.i] == b'\t') {
            self.i += 1;
        }
    }

    fn unparsable(&self) -> CondError {
        CondError {
            pos: self.i,
            msg: format!(
                "unparsable conditional expression '{}'",
                String::from_utf8_lossy(&self.s[self.i..])
            ),
        }
    }

    fn expr(&mut self) -> Result<bool, CondError> {
        let mut v = self.and()?;
        loop {
            self.skip_ws();
            if self.s[self.i..].starts_with(b"||") {
                let op_pos = self.i;
                self.i += 2;
                self.skip_ws();
                if self.i == self.s.len() {
                    self.i = op_pos;
                    return Err(self.unparsable());
                }
                let r = self.and()?;
                v = v || r;
            } else {
                return Ok(v);
            }
        }
    }

    fn and(&mut self) -> Result<bool, CondError> {
        let mut v = self.term()?;
        loop {
            self.skip_ws();
            if self.s[self.i..].starts_with(b"&&") {
                let op_pos = self.i;
                self.i += 2;
                self.skip_ws();
                if self.i == self.s.len() {
                    self.i = op_pos;
                    return Err(self.unparsable());
                }
                let r = self.term()?;
                v = v && r;
            } else {
                return Ok(v);
            }
        }
    }

    fn term(&mut self) -> Result<bool, CondError> {
        self.skip_ws();
        let Some(&c) = self.s.get(self.i) else {
            return Err(self.unparsable());
        };
        if c == b'!' {
            self.i += 1;
            return Ok(!self.term()?);
        }
        if c == b'(' {
            self.i += 1;
            let v = self.expr()?;
            self.skip_ws();
            if self.s.get(self.i) != Some(&b')') {
                return Err(self.unparsable());
            }
            self.i += 1;
            return Ok(v);
        }
        if c.is_ascii_digit() || c == b'-' {
            let start = self.i;
            self.i += 1;
            while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
                self.i += 1;
            }
            let t = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            let n = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                i64::from_str_radix(h, 16).ok()
            } else {
                t.parse::<i64>().ok()
            };
            return match n {
                Some(n) => Ok(n != 0),
                None => {
                    self.i = start;
                    Err(self.unparsable())
                }
            };
        }
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        let arity = match name.as_str() {
            "defined"
            | "feature"
            | "version_atleast"
            | "version_before"
            | "openssl_version_atleast"
            | "openssl_version_before"
            | "ssllib_name_startswith" => 1,
            "streq" | "strneq" => 2,
            _ => {
                self.i = start;
                return Err(self.unparsable());
            }
        };
        if self.s.get(self.i) != Some(&b'(') {
            self.i = start;
            return Err(self.unparsable());
        }
        self.i += 1;
        let mut args: Vec<String> = Vec::new();
        let mut cur = String::new();
        loop {
            match self.s.get(self.i) {
                None => {
                    self.i = start;
                    return Err(self.unparsable());
                }
                Some(b')') => {
                    if !cur.is_empty() || !args.is_empty() {
                        args.push(std::mem::take(&mut cur));
                    }
                    break;
                }
                Some(b',') => args.push(std::mem::take(&mut cur)),
                Some(&b) => cur.push(b as char),
            }
            self.i += 1;
        }
        if args.len() < arity {
            return Err(CondError {
                pos: self.i,
                msg: format!(
                    "missing arguments (got {}/{arity}), type 'string' expected in argument {} of predicate '{name}' used in conditional expression",
                    args.len(),
                    args.len() + 1
                ),
            });
        }
        if args.len() > arity {
            return Err(CondError {
                pos: self.i,
                msg: format!(
                    "end of arguments expected at position {}, but got ',{}' in predicate '{name}' used in conditional expression",
                    arity + 1,
                    args[arity..].join(",")
                ),
            });
        }
        self.i += 1;
        Ok(match name.as_str() {
            "defined" => (self.defined)(&args[0]),
            "feature" => build_info::FEATURES
                .iter()
                .any(|f| f.strip_prefix('+') == Some(args[0].as_str())),
            "streq" => args[0] == args[1],
            "strneq" => args[0] != args[1],
            "version_atleast" => compare_versions(build_info::HAPROXY_VERSION, &args[0]).is_ge(),
            "version_before" => compare_versions(build_info::HAPROXY_VERSION, &args[0]).is_lt(),
            // rhaproxy is built without an SSL library.
            _ => false,
        })
    }
}

/// Compares dotted version strings numerically, component by component (`2.6.12` > `2.6.9`).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| -> Vec<u64> {
        s.split(['.', '-'])
            .map(|p| {
                p.chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    let (x, y) = (parse(a), parse(b));
    let n = x.len().max(y.len());
    for i in 0..n {
        let o = x.get(i).unwrap_or(&0).cmp(y.get(i).unwrap_or(&0));
        if o.is_ne() {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(e: &str) -> Result<bool, CondError> {
        eval(e, &|v| v == "HOME")
    }

    #[test]
    fn values() {
        assert!(!ev("").unwrap());
        assert!(!ev("0").unwrap());
        assert!(ev("1").unwrap());
        assert!(ev("0x10").unwrap());
        assert!(ev("defined(HOME)").unwrap());
        assert!(!ev("defined(NOPE)").unwrap());
        assert!(ev("!defined(NOPE) && 1").unwrap());
        assert!(ev("0 || streq(a,a)").unwrap());
        assert!(!ev("streq(a,b)").unwrap());
        assert!(ev("strneq(a,b)").unwrap());
        assert!(ev("version_atleast(2.5)").unwrap());
        assert!(ev("version_before(2.6.13)").unwrap());
        assert!(!ev("version_atleast(2.8)").unwrap());
        assert!(ev("feature(LINUX_TPROXY)").unwrap());
        assert!(!ev("feature(OPENSSL)").unwrap());
        assert!(ev("(1 && (0 || 1))").unwrap());
        assert!(ev("1 || 0 && 0").unwrap(), "&& binds tighter than ||");
    }

    #[test]
    fn errors() {
        let e = ev("yes").unwrap_err();
        assert_eq!(
            e.render(".if", "yes"),
            "unparsable conditional expression 'yes' in '.if' at position 1:\n  .if yes\n      ^"
        );
        let e = ev("1 &&").unwrap_err();
        assert_eq!(
            e.render(".if", "1 &&"),
            "unparsable conditional expression '&&' in '.if' at position 3:\n  .if 1 &&\n        ^"
        );
        assert!(ev("nosuch(1)").is_err());
        let e = ev("streq(a)").unwrap_err();
        assert_eq!(e.pos + 1, 8);
        assert!(e.msg.starts_with("missing arguments (got 1/2)"));
    }
}
