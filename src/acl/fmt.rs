//! The log-format strings that rule actions take (`set-header X-Client %[src]`,
//! `redirect location https://%[hdr(host)]%[path]`): literal text, `%[sample expression]`,
//! `%%`, and a few connection variables (`%ci %cp %fi %fp %f %b`).

use super::fetch::{self, Fetch, SampleExpr};
use super::{AclError, SampleCtx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(Vec<u8>),
    Sample(SampleExpr),
}

/// A compiled log-format string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fmt {
    pub parts: Vec<Part>,
}

fn var(f: Fetch, name: &str) -> Part {
    Part::Sample(SampleExpr {
        fetch: f,
        convs: Vec::new(),
        name: name.to_string(),
    })
}

impl Fmt {
    /// A string with no `%` expression.
    pub fn literal(s: &str) -> Fmt {
        Fmt {
            parts: vec![Part::Text(s.as_bytes().to_vec())],
        }
    }

    pub fn parse(s: &str) -> Result<Fmt, AclError> {
        let mut parts = Vec::new();
        let mut text = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                text.push(b[i]);
                i += 1;
                continue;
            }
            if b.get(i + 1) == Some(&b'%') {
                text.push(b'%');
                i += 2;
                continue;
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            if b.get(i + 1) == Some(&b'[') {
                let Some(end) = s[i + 2..].find(']') else {
                    return Err(AclError::Haproxy(format!(
                        "missing ']' after '{}'",
                        &s[i + 2..]
                    )));
                };
                let inner = &s[i + 2..i + 2 + end];
                let e = fetch::parse_expr(inner).map_err(|e| match e {
                    fetch::FetchError::Haproxy(m) if m.starts_with("unknown fetch") => {
                        let n = inner.split(['(', ',']).next().unwrap_or("");
                        AclError::Haproxy(format!(
                            "failed to parse sample expression <{}> : unknown fetch method '{n}'",
                            &s[i + 2..]
                        ))
                    }
                    e => e.into(),
                })?;
                parts.push(Part::Sample(e));
                i += end + 3;
                continue;
            }
            // `%{flags}` or a variable name.
            let rest = &s[i + 1..];
            let n = rest
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric())
                .count();
            let name = &rest[..n];
            let p = match name {
                "ci" => var(Fetch::Src, "src"),
                "cp" => var(Fetch::SrcPort, "src_port"),
                "fi" => var(Fetch::Dst, "dst"),
                "fp" => var(Fetch::DstPort, "dst_port"),
                "f" => var(Fetch::FeName, "fe_name"),
                "b" => var(Fetch::BeName, "be_name"),
                _ => {
                    let shown: String = rest.chars().take(n.max(1)).collect();
                    return Err(AclError::Unsupported(format!(
                        "log-format variable '%{shown}' in a rule argument"
                    )));
                }
            };
            parts.push(p);
            i += 1 + n;
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Fmt { parts })
    }

    pub fn render(&self, ctx: &SampleCtx) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.extend_from_slice(t),
                Part::Sample(e) => {
                    if let Some(v) = e.value(ctx) {
                        out.extend_from_slice(&v.as_bytes());
                    }
                }
            }
        }
        out
    }

    /// The most its fetches need.
    pub fn needs(&self) -> fetch::Needs {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Sample(e) => Some(e.fetch.needs()),
                _ => None,
            })
            .max()
            .unwrap_or(fetch::Needs::L4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_samples_and_text() {
        let f = Fmt::parse("a%%b %[src]:%[src_port] %ci-%[fe_name,upper]").unwrap();
        let ctx = SampleCtx {
            src: Some("10.0.0.1:5000".parse().unwrap()),
            fe_name: "web",
            ..Default::default()
        };
        assert_eq!(f.render(&ctx), b"a%b 10.0.0.1:5000 10.0.0.1-WEB");
        assert!(matches!(Fmt::parse("%[frob]"), Err(AclError::Haproxy(_))));
        assert!(matches!(Fmt::parse("%Tq"), Err(AclError::Unsupported(_))));
    }
}
