//! `stick-table` declarations and the stick-counter actions of `tcp-request` and
//! `http-request` rules (`track-scN`, `sc-inc-gpc0/1`, `sc-inc-gpc`, `sc-set-gpt0`), with
//! HAProxy 2.6's messages (measured against `haproxy -c`).

use super::LineCtx;
use crate::acl::fetch::{Needs, SampleExpr, parse_expr};
use crate::config::ir::*;

/// The number of stick counters per stream (HAProxy's MAX_SESS_STKCTR).
pub const MAX_SC: u8 = 3;

/// `stick-table type T [len N] size S [expire E] [nopurge] [peers P] [srvkey K] [store ...]`.
pub fn p_stick_table(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    if let Some(prev) = &p.stick_table {
        ctx.alert(format!(
            "stick-table name '{}' conflicts with table declared in {} '{}' at {}.",
            p.name,
            super::rules::ptype(p),
            p.name,
            prev.loc
        ));
        return;
    }
    if let Some(t) = parse_table(ctx, a) {
        p.stick_table = Some(Located::new(t, ctx.loc.clone()));
    }
}

/// The arguments of a `stick-table` line (`a[0]` is the keyword), or `None` after an alert.
pub fn parse_table(ctx: &mut LineCtx, a: &[String]) -> Option<StickTable> {
    let mut key = None;
    let mut size = 0u64;
    let mut expire_ms = None;
    let mut nopurge = false;
    let mut peers = None;
    let mut store: Vec<StickStore> = Vec::new();
    let mut i = 1;
    let err = |ctx: &mut LineCtx, m: String| {
        ctx.alert(format!("stick-table: {m}"));
        None
    };
    while i < a.len() {
        let w = a[i].as_str();
        let next = a.get(i + 1).map(String::as_str);
        match w {
            "type" => {
                let t = next.unwrap_or("");
                i += 1;
                key = Some(match t {
                    "ip" | "ipv4" => StickKeyType::Ip,
                    "ipv6" => StickKeyType::Ipv6,
                    "integer" => StickKeyType::Integer,
                    "string" | "binary" => {
                        let mut len = 32u32;
                        if a.get(i + 1).map(String::as_str) == Some("len") {
                            let v = a.get(i + 2).map(String::as_str).unwrap_or("");
                            i += 2;
                            match v.parse::<u32>() {
                                Ok(n) if n > 0 => len = n,
                                // HAProxy reports the length as the type it could not read.
                                _ => return err(ctx, format!("unknown type '{v}'.")),
                            }
                        }
                        if t == "string" {
                            StickKeyType::String(len)
                        } else {
                            StickKeyType::Binary(len)
                        }
                    }
                    _ => return err(ctx, format!("unknown type '{t}'.")),
                });
            }
            "size" => {
                let Some(v) = next else {
                    return err(ctx, "missing argument after 'size'.".into());
                };
                i += 1;
                match parse_size(v) {
                    Ok(n) => size = n,
                    Err(c) => {
                        return err(
                            ctx,
                            format!("unexpected character '{c}' in argument of 'size'."),
                        );
                    }
                }
            }
            "expire" => {
                let Some(v) = next else {
                    return err(ctx, "missing argument after 'expire'.".into());
                };
                i += 1;
                match crate::config::values::parse_time_ms(v) {
                    Ok(ms) if ms > i32::MAX as u64 => {
                        ctx.alert_tight(format!(
                            "stick-table: timer overflow in argument <{v}> to <expire>, maximum value is 2147483647 ms (~24.8 days)."
                        ));
                        return None;
                    }
                    Ok(ms) => expire_ms = Some(ms),
                    Err(c) => {
                        return err(
                            ctx,
                            format!("unexpected character '{c}' in argument of 'expire'."),
                        );
                    }
                }
            }
            "nopurge" => nopurge = true,
            "peers" => {
                let Some(v) = next else {
                    return err(ctx, "missing argument after 'peers'.".into());
                };
                peers = Some(v.to_string());
                i += 1;
            }
            "srvkey" => {
                let v = next.unwrap_or("");
                i += 1;
                match v {
                    "name" => {}
                    "addr" => {
                        ctx.unsupported_arg("stick-table", "srvkey addr");
                        return None;
                    }
                    _ => {
                        ctx.alert(format!("stick-table : unknown server key type '{v}'."));
                        return None;
                    }
                }
            }
            "store" => {
                let v = next.unwrap_or("");
                i += 1;
                if !v.is_empty() && !parse_store(ctx, v, &mut store) {
                    return None;
                }
            }
            _ => return err(ctx, format!("unknown argument '{w}'.")),
        }
        i += 1;
    }
    let has = |d: StickData| store.iter().any(|s| s.data == d);
    for (arr, one, name, names) in [
        (StickData::Gpt, &[StickData::Gpt0][..], "gpt", "gpt0"),
        (
            StickData::Gpc,
            &[StickData::Gpc0, StickData::Gpc1][..],
            "gpc",
            "gpc[0/1]",
        ),
        (
            StickData::GpcRate,
            &[StickData::Gpc0Rate, StickData::Gpc1Rate][..],
            "gpc_rate",
            "gpc[0/1]_rate",
        ),
    ] {
        if has(arr) && one.iter().any(|d| has(*d)) {
            return err(
                ctx,
                format!(
                    "simultaneous usage of '{name}' and '{names}' in a same table is not permitted as '{name}' overrides '{names}'."
                ),
            );
        }
    }
    let Some(key) = key else {
        return err(ctx, "missing type.".into());
    };
    if size == 0 {
        return err(ctx, "missing size.".into());
    }
    Some(StickTable {
        key,
        size,
        expire_ms,
        nopurge,
        peers,
        store,
    })
}

/// HAProxy's size argument: an unsigned 32-bit number with an optional k/m/g (x1024)
/// suffix. Err: the offending character.
fn parse_size(v: &str) -> Result<u64, char> {
    let mut n: u32 = 0;
    let mut chars = v.chars().peekable();
    if !chars.peek().is_some_and(char::is_ascii_digit) {
        return Err(chars.peek().copied().unwrap_or('\0'));
    }
    while let Some(&c) = chars.peek() {
        let Some(d) = c.to_digit(10) else { break };
        n = n.checked_mul(10).and_then(|x| x.checked_add(d)).ok_or(c)?;
        chars.next();
    }
    let mul: u64 = match chars.next() {
        None => 1,
        Some('k' | 'K') => 1 << 10,
        Some('m' | 'M') => 1 << 20,
        Some('g' | 'G') => 1 << 30,
        Some(c) => return Err(c),
    };
    if let Some(c) = chars.next() {
        return Err(c);
    }
    let r = n as u64 * mul;
    if r > u32::MAX as u64 {
        return Err(v.chars().last().unwrap_or('\0'));
    }
    Ok(r)
}

/// One `store` argument: comma-separated types, rates with `(PERIOD)`, arrays with `(N)` or
/// `(N,PERIOD)`. False after an alert.
fn parse_store(ctx: &mut LineCtx, v: &str, store: &mut Vec<StickStore>) -> bool {
    let mut rest = v;
    loop {
        let (name, arg, after) = match rest.find([',', '(']) {
            Some(p) if rest.as_bytes()[p] == b'(' => {
                let name = &rest[..p];
                let Some(close) = rest[p..].find(')') else {
                    ctx.alert(format!(
                        "stick-table: missing closing parenthesis after store option '{name}'."
                    ));
                    return false;
                };
                let arg = &rest[p + 1..p + close];
                let after = &rest[p + close + 1..];
                (name, Some(arg), after)
            }
            Some(p) => (&rest[..p], None, &rest[p..]),
            None => (rest, None, ""),
        };
        let Some(data) = StickData::from_name(name) else {
            ctx.alert(format!("stick-table: unknown store option '{name}'."));
            return false;
        };
        let mut item = StickStore {
            data,
            period_ms: 0,
            n: 1,
        };
        let bad = |ctx: &mut LineCtx| {
            ctx.alert(format!(
                "stick-table: error when processing store option '{name}'."
            ));
            false
        };
        let period = |s: &str| -> Option<u32> {
            crate::config::values::parse_time_ms(s.trim())
                .ok()
                .filter(|ms| *ms <= i32::MAX as u64)
                .map(|ms| ms as u32)
        };
        match (data.is_array(), data.is_rate(), arg) {
            (_, _, None) if data.is_array() || data.is_rate() => {
                ctx.alert(format!(
                    "stick-table: missing argument to store option '{name}'."
                ));
                return false;
            }
            (false, false, Some(_)) => {
                ctx.alert(format!(
                    "stick-table: unexpected argument to store option '{name}'."
                ));
                return false;
            }
            (false, true, Some(a)) => match period(a) {
                Some(p) => item.period_ms = p,
                None => return bad(ctx),
            },
            (true, rate, Some(a)) => {
                let mut parts = a.splitn(2, ',');
                let n = parts
                    .next()
                    .unwrap_or("")
                    .trim()
                    .parse::<u32>()
                    .unwrap_or(0);
                if !(1..=100).contains(&n) {
                    ctx.alert(format!(
                        "stick-table: array size is out of allowed range (1-100) for store option '{name}'."
                    ));
                    return false;
                }
                item.n = n;
                match (rate, parts.next()) {
                    (true, None) => {
                        ctx.alert(format!(
                            "stick-table: missing argument to store option '{name}'."
                        ));
                        return false;
                    }
                    (true, Some(p)) => match period(p) {
                        Some(p) => item.period_ms = p,
                        None => return bad(ctx),
                    },
                    (false, Some(_)) => {
                        ctx.alert(format!(
                            "stick-table: unexpected argument to store option '{name}'."
                        ));
                        return false;
                    }
                    (false, None) => {}
                }
            }
            _ => {}
        }
        if store.iter().any(|s| s.data == data) {
            ctx.warning_tight(format!(
                "stick-table: store option '{name}' already enabled, ignored."
            ));
        } else {
            store.push(item);
        }
        match after.strip_prefix(',') {
            Some(r) => rest = r,
            None if after.is_empty() => return true,
            None => {
                ctx.alert(format!("stick-table: unknown store option '{after}'."));
                return false;
            }
        }
    }
}

/// `N` of `track-scN`, `sc-inc-gpc0(N)`...: `None` after the alert.
fn slot_of(ctx: &mut LineCtx, prefix: &str, n: &str, track: bool) -> Option<u8> {
    match n.parse::<u8>() {
        Ok(s) if s < MAX_SC => Some(s),
        _ if track => {
            ctx.alert(format!(
                "{prefix} : {n} track-sc number exceeding 2 (MAX_SESS_STKCTR-1) value."
            ));
            None
        }
        _ => {
            ctx.alert(format!(
                "{prefix} : invalid stick table track ID. The max allowed ID is 2."
            ));
            None
        }
    }
}

/// Is `act` one of the stick-counter actions?
pub fn is_stk_action(act: &str) -> bool {
    act.starts_with("track-sc")
        || act.starts_with("sc-inc-gpc")
        || act.starts_with("sc-set-gpt0")
        || act.starts_with("sc-set-gpt(")
}

/// Parses a stick-counter action. `args` are the words after the action, before the
/// condition; `rule` is `http-request` or `tcp-request connection` ... (for messages);
/// `at_l4`: the rule runs before any request content exists. `None` after an alert.
pub fn parse_stk_action(
    ctx: &mut LineCtx,
    prefix: &str,
    rule: &str,
    act: &str,
    args: &[String],
    at_l4: bool,
) -> Option<Result<StkAction, String>> {
    if let Some(n) = act.strip_prefix("track-sc") {
        let slot = slot_of(ctx, prefix, n, true)?;
        let Some(e) = args.first() else {
            ctx.alert(format!("{prefix} : missing fetch method."));
            return None;
        };
        let key = expr(ctx, prefix, e)?;
        if at_l4 && key.fetch.needs() != Needs::L4 {
            let what = match key.fetch.needs() {
                Needs::Response => "HTTP response headers",
                _ => "HTTP request headers",
            };
            ctx.alert(format!(
                "'{rule} {act}' : fetch method '{e}' extracts information from '{what}', none of which is available here"
            ));
            return None;
        }
        let mut table = None;
        let mut rest = &args[1..];
        if rest.first().map(String::as_str) == Some("table") {
            let Some(t) = rest.get(1) else {
                ctx.alert(format!("{prefix} : missing table name."));
                return None;
            };
            table = Some(t.clone());
            rest = &rest[2..];
        }
        if let Some(w) = rest.first() {
            return Some(Err(w.clone()));
        }
        return Some(Ok(StkAction::Track { slot, key, table }));
    }
    let inner = |a: &str, pfx: &str| -> Option<String> {
        let r = a.strip_prefix(pfx)?;
        if r.is_empty() {
            return Some(String::new());
        }
        Some(r.strip_prefix('(')?.strip_suffix(')')?.to_string())
    };
    let action = if let Some(n) = inner(act, "sc-inc-gpc0").or_else(|| inner(act, "sc-inc-gpc1")) {
        let which = if act.starts_with("sc-inc-gpc0") { 0 } else { 1 };
        let slot = if n.is_empty() {
            0
        } else {
            slot_of(ctx, prefix, &n, false)?
        };
        StkAction::IncGpc01 { slot, which }
    } else if let Some(n) = inner(act, "sc-inc-gpc") {
        let (idx, n) = n.split_once(',').unwrap_or(("", ""));
        let Ok(idx) = idx.trim().parse::<u32>() else {
            ctx.alert(format!("{prefix} : invalid gpc ID '{idx}'."));
            return None;
        };
        let slot = slot_of(ctx, prefix, n.trim(), false)?;
        StkAction::IncGpc { idx, slot }
    } else if let Some(n) = inner(act, "sc-set-gpt0").or_else(|| inner(act, "sc-set-gpt")) {
        // `sc-set-gpt0(N)` (N may be left out) or `sc-set-gpt(IDX,N)`.
        let array = !act.starts_with("sc-set-gpt0");
        let (idx, n) = match n.split_once(',') {
            Some((i, n)) if array => (Some(i), n),
            _ => (None, n.as_str()),
        };
        let idx = match idx.map(|i| i.trim().parse::<u32>()) {
            Some(Ok(i)) => Some(i),
            Some(Err(_)) | None if array => {
                ctx.alert(format!(
                    "{prefix} : invalid gpt ID '{}'.",
                    idx.unwrap_or("")
                ));
                return None;
            }
            _ => None,
        };
        let slot = if n.is_empty() {
            0
        } else {
            slot_of(ctx, prefix, n.trim(), false)?
        };
        let Some(v) = args.first() else {
            ctx.unsupported_arg(rule, &format!("{act} without a value"));
            return None;
        };
        let value = expr(ctx, prefix, v)?;
        if let Some(w) = args.get(1) {
            return Some(Err(w.clone()));
        }
        return Some(Ok(match idx {
            Some(idx) => StkAction::SetGpt { idx, slot, value },
            None => StkAction::SetGpt0 { slot, value },
        }));
    } else {
        ctx.unsupported_arg(rule, act);
        return None;
    };
    if let Some(w) = args.first() {
        return Some(Err(w.clone()));
    }
    Some(Ok(action))
}

/// A key or value expression; a bare integer is the `int()` fetch, as HAProxy reads it.
fn expr(ctx: &mut LineCtx, prefix: &str, e: &str) -> Option<SampleExpr> {
    let digits = e.strip_prefix('-').unwrap_or(e);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return super::rules::rule_expr(ctx, prefix, &format!("int({e})"));
    }
    super::rules::rule_expr(ctx, prefix, e)
}

/// `stick match|on|store-request|store-response EXPR [table T] [if|unless COND]`.
pub fn p_stick(ctx: &mut LineCtx, p: &mut Proxy, a: &[String]) {
    let kind = match a.get(1).map(String::as_str).unwrap_or("") {
        "match" => StickKind::Match,
        "on" => StickKind::On,
        "store-request" => StickKind::StoreRequest,
        "store-response" => StickKind::StoreResponse,
        _ => {
            ctx.alert("'stick' expects 'on', 'match', or 'store'.");
            return;
        }
    };
    let Some(e) = a.get(2) else {
        ctx.alert("'stick' expects a fetch method.");
        return;
    };
    let expr = match parse_expr(e) {
        Ok(x) => x,
        Err(crate::acl::fetch::FetchError::Haproxy(m)) if m.starts_with("unknown fetch method") => {
            let n = e.split(['(', ',']).next().unwrap_or("");
            ctx.alert(format!("'stick': unknown fetch method '{n}'"));
            return;
        }
        Err(err) => {
            super::rules::report(ctx, "'stick'", err.into(), false);
            return;
        }
    };
    if expr.fetch.needs() == Needs::Response && kind != StickKind::StoreResponse {
        ctx.alert(format!(
            "'stick': fetch method '{}' extracts information from 'HTTP response headers', none of which is available during request.",
            expr.name
        ));
        return;
    }
    let mut table = None;
    let mut i = 3;
    let mut cond_at = None;
    while let Some(w) = a.get(i) {
        match w.as_str() {
            "table" => {
                table = Some(a.get(i + 1).cloned().unwrap_or_default());
                i += 2;
            }
            "if" | "unless" => {
                cond_at = Some(i);
                break;
            }
            _ => {
                ctx.alert(format!("'stick': unknown keyword '{w}'."));
                return;
            }
        }
    }
    let cond = match cond_at {
        None => None,
        Some(at) => {
            let unless = a[at] == "unless";
            match crate::acl::cond::parse_condition(unless, &a[at + 1..], &p.acls, &ctx.loc) {
                Ok((c, warns)) => {
                    for w in warns {
                        let (f, l) = (ctx.loc.file.clone(), ctx.loc.line);
                        ctx.diags.warning(Some((&f, l)), w);
                    }
                    if kind != StickKind::StoreResponse {
                        super::rules::warn_never_match_stick(ctx, p, &c);
                    }
                    Some(c)
                }
                Err(e) => {
                    super::rules::report(
                        ctx,
                        "'stick': error detected while parsing sticking condition",
                        e,
                        true,
                    );
                    return;
                }
            }
        }
    };
    p.stick_rules.push(StickRule {
        kind,
        expr,
        table,
        cond,
        loc: ctx.loc.clone(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Truncated stick-counter and tcp-request lines give alerts, never a panic (the
    /// fuzzer found `tcp-request connection` without an action slicing past the line).
    #[test]
    fn truncated_lines_never_panic() {
        for line in [
            "tcp-request connection",
            "tcp-request content",
            "tcp-request session track-sc0",
            "tcp-request connection track-sc1 src table",
            "http-request track-sc2",
            "http-request sc-set-gpt(1",
            "http-request sc-set-gpt(,) 1",
            "http-request sc-inc-gpc(",
            "http-response track-sc0 res.hdr(x) table",
            "stick on",
            "stick on src table",
            "stick on src if",
            "stick-table",
            "stick-table type",
            "stick-table type string len",
            "stick-table type ip size 1 store",
            "stick-table type ip size 1 store gpc(",
            "stick-table type ip size 1 store gpc_rate(1,",
        ] {
            let text = format!("frontend f\n    bind :1\n    {line}\n");
            let mut d = crate::diag::Diags::captured();
            if let Ok(mut cfg) = crate::config::parse_str("t.cfg", &text, &mut d) {
                let _ = crate::config::validate::check(&mut cfg, &mut d);
            }
        }
    }

    #[test]
    fn sizes_read_as_haproxy_reads_them() {
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("1z"), Err('z'));
        assert_eq!(parse_size("-1"), Err('-'));
        assert_eq!(parse_size("4294967296"), Err('6'));
    }
}
