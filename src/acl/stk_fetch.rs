//! The stick-counter sample fetches: `sc_X(N[,TABLE])`, `scN_X([TABLE])`, `src_X([TABLE])`,
//! `table_cnt([TABLE])` and `table_avl([TABLE])` (HAProxy 2.6 configuration manual 7.3.3).
//! They are evaluated by `runtime::stkctr`.

use super::fetch::{Fetch, FetchError};
use crate::config::ir::StickData;

/// Whose entry a fetch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StkFrom {
    /// The entry tracked by counter N (`sc_X(N)`, `scN_X`).
    Sc(u8),
    /// The entry of the client's address (`src_X`), looked up without being created.
    Src,
}

/// What a fetch reads from the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StkWhat {
    /// A stored counter or rate (`conn_cnt`, `http_req_rate`, `get_gpc0`...).
    Data(StickData),
    /// `kbytes_in` / `kbytes_out`: the byte counters divided by 1024.
    Kbytes { out: bool },
    /// `inc_gpc0` / `inc_gpc1`: increments, gives the new value.
    IncGpc(u8),
    /// `clr_gpc0` / `clr_gpc1`: clears, gives the value before.
    ClrGpc(u8),
    /// `scN_tracked`: whether counter N tracks an entry (boolean).
    Tracked,
    /// `scN_trackers`: how many trackers the entry has.
    Trackers,
    /// `get_gpc(IDX,..)`, `gpc_rate(IDX,..)`, `get_gpt(IDX,..)`: element IDX of an array.
    Arr { data: StickData, idx: u32 },
    /// `inc_gpc(IDX,..)`: increments element IDX of `gpc` (and `gpc_rate`), gives the new value.
    IncArr(u32),
    /// `clr_gpc(IDX,..)`: clears element IDX of `gpc`, gives the value before.
    ClrArr(u32),
}

/// The array fetches (`sc_get_gpc(IDX,N[,T])`, `src_get_gpc(IDX[,T])`...): what they read
/// once given the element.
fn array_what(x: &str, idx: u32) -> Option<StkWhat> {
    Some(match x {
        "get_gpc" => StkWhat::Arr {
            data: StickData::Gpc,
            idx,
        },
        "gpc_rate" => StkWhat::Arr {
            data: StickData::GpcRate,
            idx,
        },
        "get_gpt" => StkWhat::Arr {
            data: StickData::Gpt,
            idx,
        },
        "inc_gpc" => StkWhat::IncArr(idx),
        "clr_gpc" => StkWhat::ClrArr(idx),
        _ => return None,
    })
}

/// Argument `pos` (1-based) as an integer, HAProxy's messages otherwise.
fn int_arg(name: &str, a: &[String], pos: usize) -> Result<u32, FetchError> {
    let n = a.get(pos - 1).map(String::as_str).unwrap_or("");
    if n.is_empty() {
        return Err(FetchError::Haproxy(format!(
            "fetch method '{name}' : expected type 'integer' at position {pos}, but got nothing"
        )));
    }
    n.trim().parse::<u32>().map_err(|_| {
        FetchError::Haproxy(format!(
            "fetch method '{name}' : failed to parse '{n}' as type integer at position {pos}"
        ))
    })
}

/// The fetch for `name`, if it is one of the stick-counter fetches rhaproxy evaluates.
/// `Ok(None)`: not such a fetch.
pub fn parse(name: &str, args: &Option<Vec<String>>) -> Result<Option<Fetch>, FetchError> {
    let a: &[String] = args.as_deref().unwrap_or(&[]);
    if name == "table_cnt" || name == "table_avl" {
        let t = a.first().cloned().filter(|t| !t.is_empty());
        return Ok(Some(if name == "table_cnt" {
            Fetch::TableCnt(t)
        } else {
            Fetch::TableAvl(t)
        }));
    }
    let arrays = ["get_gpc", "gpc_rate", "get_gpt", "inc_gpc", "clr_gpc"];
    let (from, what, table) = if let Some(x) = name
        .strip_prefix("sc_")
        .or_else(|| name.strip_prefix("src_"))
        .filter(|x| arrays.contains(x))
    {
        let idx = int_arg(name, a, 1)?;
        let what = array_what(x, idx).unwrap_or(StkWhat::Tracked);
        if name.starts_with("sc_") {
            let slot = int_arg(name, a, 2)?.min(255) as u8;
            (StkFrom::Sc(slot), what, a.get(2).cloned().map(|t| (t, 3)))
        } else {
            // HAProxy 2.6 wants the table of these.
            let Some(t) = a.get(1).filter(|t| !t.is_empty()) else {
                return Err(FetchError::Haproxy(format!(
                    "fetch method '{name}' : missing arguments (got 1/2), type 'table' expected"
                )));
            };
            (StkFrom::Src, what, Some((t.clone(), 2)))
        }
    } else if let Some(x) = name.strip_prefix("sc_") {
        let Some(what) = what_of(x, true) else {
            return Ok(None);
        };
        let n = a.first().map(String::as_str).unwrap_or("");
        if n.is_empty() {
            return Err(FetchError::Haproxy(format!(
                "fetch method '{name}' : expected type 'integer' at position 1, but got nothing"
            )));
        }
        let slot = n.trim().parse::<u8>().map_err(|_| {
            FetchError::Haproxy(format!(
                "fetch method '{name}' : failed to parse '{n}' as type integer at position 1"
            ))
        })?;
        (StkFrom::Sc(slot), what, a.get(1).cloned().map(|t| (t, 2)))
    } else if let Some(x) = name.strip_prefix("src_") {
        let Some(what) = what_of(x, false) else {
            return Ok(None);
        };
        (StkFrom::Src, what, a.first().cloned().map(|t| (t, 1)))
    } else if let Some(rest) = name.strip_prefix("sc") {
        let (d, x) = rest.split_at(rest.len().min(1));
        let (Ok(slot), Some(x)) = (d.parse::<u8>(), x.strip_prefix('_')) else {
            return Ok(None);
        };
        if slot > 2 {
            return Ok(None);
        }
        let Some(what) = what_of(x, true) else {
            return Ok(None);
        };
        (StkFrom::Sc(slot), what, a.first().cloned().map(|t| (t, 1)))
    } else {
        return Ok(None);
    };
    Ok(Some(Fetch::Stk {
        from,
        what,
        table: table.filter(|t| !t.0.is_empty()),
    }))
}

fn what_of(x: &str, sc: bool) -> Option<StkWhat> {
    use StickData::*;
    Some(match x {
        "get_gpc0" => StkWhat::Data(Gpc0),
        "get_gpc1" => StkWhat::Data(Gpc1),
        "get_gpt0" => StkWhat::Data(Gpt0),
        "kbytes_in" => StkWhat::Kbytes { out: false },
        "kbytes_out" => StkWhat::Kbytes { out: true },
        "inc_gpc0" => StkWhat::IncGpc(0),
        "inc_gpc1" => StkWhat::IncGpc(1),
        "clr_gpc0" => StkWhat::ClrGpc(0),
        "clr_gpc1" => StkWhat::ClrGpc(1),
        "tracked" if sc => StkWhat::Tracked,
        "trackers" if sc => StkWhat::Trackers,
        "bytes_in_rate" | "bytes_out_rate" | "conn_cnt" | "conn_cur" | "conn_rate" | "sess_cnt"
        | "sess_rate" | "http_req_cnt" | "http_req_rate" | "http_err_cnt" | "http_err_rate"
        | "http_fail_cnt" | "http_fail_rate" | "gpc0_rate" | "gpc1_rate" => {
            StkWhat::Data(StickData::from_name(x)?)
        }
        _ => return None,
    })
}

/// The table a fetch names explicitly, with the argument position naming it.
pub fn named_table(f: &Fetch) -> Option<(&str, u8)> {
    match f {
        Fetch::Stk {
            table: Some((t, pos)),
            ..
        } => Some((t.as_str(), *pos)),
        Fetch::TableCnt(Some(t)) | Fetch::TableAvl(Some(t)) => Some((t.as_str(), 1)),
        _ => None,
    }
}

/// The name of a table converter and the table it names.
pub fn conv_table(c: &super::fetch::Conv) -> Option<(String, &str)> {
    use super::fetch::Conv;
    match c {
        Conv::InTable(Some(t)) => Some(("in_table".into(), t.as_str())),
        Conv::TableTime {
            idle,
            table: Some(t),
            ..
        } => Some((
            if *idle { "table_idle" } else { "table_expire" }.into(),
            t.as_str(),
        )),
        Conv::Table {
            what,
            table: Some(t),
        } => {
            let n = match what {
                StkWhat::Data(d) | StkWhat::Arr { data: d, .. } => d.name().to_string(),
                StkWhat::Kbytes { out: false } => "kbytes_in".into(),
                StkWhat::Kbytes { out: true } => "kbytes_out".into(),
                _ => "trackers".into(),
            };
            Some((format!("table_{n}"), t.as_str()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Fetch {
        let e = crate::acl::fetch::parse_expr(s).unwrap();
        e.fetch
    }

    #[test]
    fn the_three_spellings() {
        assert_eq!(
            p("sc_http_req_rate(1)"),
            Fetch::Stk {
                from: StkFrom::Sc(1),
                what: StkWhat::Data(StickData::HttpReqRate),
                table: None
            }
        );
        assert_eq!(
            p("sc2_conn_cur(t)"),
            Fetch::Stk {
                from: StkFrom::Sc(2),
                what: StkWhat::Data(StickData::ConnCur),
                table: Some(("t".into(), 1))
            }
        );
        assert_eq!(
            p("src_get_gpc0"),
            Fetch::Stk {
                from: StkFrom::Src,
                what: StkWhat::Data(StickData::Gpc0),
                table: None
            }
        );
        assert_eq!(p("table_cnt(x)"), Fetch::TableCnt(Some("x".into())));
        assert!(crate::acl::fetch::parse_expr("sc_http_req_rate").is_err());
        assert!(crate::acl::fetch::parse_expr("src_tracked").is_err());
    }
}
