//! Stick counters: the tables by name, the entries a session or a request tracks
//! (`track-sc0..2`), the events counted on them, and the `sc_*`/`src_*`/`table_*` fetches.
//!
//! HAProxy 2.6 keeps two sets of trackers: the session's (`tcp-request connection|session`
//! rules), which live as long as the connection, and the stream's (`tcp-request content`,
//! `http-request`), which end with the stream, that is with each HTTP request. A stream
//! starts with the session's trackers: a counter the session tracks is not taken again.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::stick::{Entry, Table};
use crate::acl::stk_fetch::{StkFrom, StkWhat};
use crate::acl::{Sample, SampleCtx};
use crate::config::ir::{Config, StickData};

/// The tables in declaration order, and their index by name.
type Registry = (Vec<Arc<Table>>, HashMap<String, usize>);
static TABLES: OnceLock<Registry> = OnceLock::new();

/// Builds every table (once, at start): the proxies' and those of `peers` sections, in
/// declaration order.
pub fn init(cfg: &Config) {
    let _ = TABLES.get_or_init(|| {
        let mut defs: Vec<(
            &crate::config::ir::Loc,
            &str,
            &crate::config::ir::StickTable,
        )> = cfg
            .proxies
            .iter()
            .filter_map(|p| {
                let t = p.stick_table.as_ref()?;
                Some((&t.loc, p.name.as_str(), &t.value))
            })
            .chain(
                cfg.peers
                    .iter()
                    .flat_map(|s| s.tables.iter())
                    .map(|(n, t)| (&t.loc, n.as_str(), &t.value)),
            )
            .collect();
        let file_idx = |f: &str| cfg.files.iter().position(|x| x == f).unwrap_or(usize::MAX);
        defs.sort_by_key(|(l, _, _)| (file_idx(&l.file), l.line));
        let list: Vec<Arc<Table>> = defs
            .into_iter()
            .map(|(_, n, t)| Arc::new(Table::new(n, t)))
            .collect();
        let idx = list
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name().to_string(), i))
            .collect();
        (list, idx)
    });
}

/// The table named `name` (a proxy's name).
pub fn table(name: &str) -> Option<&'static Arc<Table>> {
    let (list, idx) = TABLES.get()?;
    list.get(*idx.get(name)?)
}

/// Every table, in declaration order.
pub fn tables() -> impl Iterator<Item = &'static Arc<Table>> {
    TABLES.get().into_iter().flat_map(|t| t.0.iter())
}

struct Tracked {
    table: Arc<Table>,
    entry: Arc<Entry>,
    /// A stream tracker (ends with the request).
    stream: bool,
    /// Started by an `http-response` rule: the status was counted then.
    res: bool,
}

/// The counters a session tracks, `sc0` to `sc2`. Each stream starts with the session's
/// trackers (HAProxy copies them into the stream), so a counter the session tracks is not
/// tracked again by the stream's rules.
#[derive(Default)]
pub struct Trackers {
    slots: [Option<Tracked>; 3],
    /// The current HTTP request was counted (`http_req`).
    req_counted: bool,
}

impl std::fmt::Debug for Trackers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used: Vec<bool> = self.slots.iter().map(Option::is_some).collect();
        write!(f, "Trackers({used:?})")
    }
}

impl Clone for Trackers {
    /// Trackers are not shared: a copy tracks nothing.
    fn clone(&self) -> Trackers {
        Trackers::default()
    }
}

impl Trackers {
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// `track-scN`: starts tracking `key` of `table` on counter `slot`, for the stream
    /// (`stream`) or the session, unless that counter already tracks an entry. `http_req`:
    /// the action runs on an HTTP request, which is counted at once (the request was counted
    /// on the other trackers before the rule ran).
    pub fn track(
        &mut self,
        slot: u8,
        table: &Arc<Table>,
        key: &Sample,
        stream: bool,
        http_req: bool,
    ) {
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if s.is_some() {
            return;
        }
        let Some(k) = table.key_of(key) else {
            return;
        };
        let Some(entry) = table.track(&k) else {
            return;
        };
        if http_req {
            entry.http_req(table);
        }
        *s = Some(Tracked {
            table: Arc::clone(table),
            entry,
            stream,
            res: false,
        });
    }

    /// `http-response track-scN`: a stream tracker started once the response status is
    /// known. HAProxy counts the request, and the status as an error (4xx) or a failure (5xx
    /// but 501 and 505), at once: the response was already counted on the other trackers.
    pub fn track_res(&mut self, slot: u8, table: &Arc<Table>, key: &Sample, status: u16) {
        if self.slots.get(slot as usize).is_none_or(Option::is_some) {
            return;
        }
        self.track(slot, table, key, true, true);
        if let Some(t) = self.slots[slot as usize].as_mut() {
            t.res = true;
            count_status(&t.table, &t.entry, status as i32);
        }
    }

    fn each(&self, f: impl Fn(&Table, &Entry)) {
        for t in self.slots.iter().flatten() {
            f(&t.table, &t.entry);
        }
    }

    /// A new HTTP request on the connection: counted on the session trackers.
    pub fn http_req(&mut self) {
        self.req_counted = true;
        self.each(|t, e| e.http_req(t));
    }

    /// The end of an HTTP request: its status counted as an error (4xx) or a failure (5xx
    /// but 501 and 505), its bytes counted, then the stream trackers end.
    pub fn end_request(&mut self, status: i32, bytes_in: u64, bytes_out: u64) {
        // A request that ended before its rules (a malformed one, a timeout, a client gone)
        // is counted too, as HAProxy does.
        if !std::mem::take(&mut self.req_counted) {
            self.each(|t, e| e.http_req(t));
        }
        for t in self.slots.iter().flatten() {
            if !t.res {
                count_status(&t.table, &t.entry, status);
            }
            t.entry.bytes(&t.table, bytes_in, bytes_out);
        }
        for s in self.slots.iter_mut() {
            if s.as_ref().is_some_and(|t| t.stream) {
                if let Some(t) = s.take() {
                    t.entry.track_end(&t.table);
                }
            }
        }
    }

    /// The end of a TCP session: its bytes.
    pub fn bytes(&self, bytes_in: u64, bytes_out: u64) {
        self.each(|t, e| e.bytes(t, bytes_in, bytes_out));
    }

    /// The session was accepted (its rules passed): counted on its own trackers.
    pub fn sess(&self) {
        for t in self.slots.iter().flatten().filter(|t| !t.stream) {
            t.entry.sess(&t.table);
        }
    }

    fn slot(&self, slot: u8) -> Option<&Tracked> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// `sc-inc-gpc0(N)` / `sc-inc-gpc1(N)`.
    pub fn inc_gpc01(&self, slot: u8, which: u8) {
        if let Some(t) = self.slot(slot) {
            if t.entry.inc_gpc01(&t.table, which).is_none() {
                // 2.6: without gpc0/gpc1 in the table, the first elements of `gpc` count.
                let _ = t.entry.inc_gpc(&t.table, which as usize);
            }
        }
    }

    /// `sc-inc-gpc(IDX,N)`.
    pub fn inc_gpc(&self, slot: u8, idx: u32) {
        if let Some(t) = self.slot(slot) {
            let _ = t.entry.inc_gpc(&t.table, idx as usize);
        }
    }

    /// `sc-set-gpt(IDX,N) VALUE`.
    pub fn set_gpt(&self, slot: u8, idx: u32, v: i64) {
        if let Some(t) = self.slot(slot) {
            let _ = t.entry.set_gpt(&t.table, idx as usize, v as u64);
        }
    }

    /// `sc-set-gpt0(N) VALUE`.
    pub fn set_gpt0(&self, slot: u8, v: i64) {
        if let Some(t) = self.slot(slot) {
            let v = v as u64;
            if !t.entry.set_gpt0(&t.table, v) {
                let _ = t.entry.set_gpt(&t.table, 0, v);
            }
        }
    }
}

/// A status counted as an error (4xx) or a failure (5xx but 501 and 505).
fn count_status(t: &Table, e: &Entry, status: i32) {
    if (400..500).contains(&status) {
        e.http_err(t);
    } else if (500..600).contains(&status) && status != 501 && status != 505 {
        e.http_fail(t);
    }
}

impl Drop for Trackers {
    fn drop(&mut self) {
        for t in self.slots.iter_mut().filter_map(Option::take) {
            t.entry.track_end(&t.table);
        }
    }
}

/// The table a fetch without a table argument reads: the frontend's (rules name their
/// proxy's table at configuration time).
fn default_table<'a>(ctx: &SampleCtx<'a>) -> &'a str {
    ctx.fe_name
}

/// The client's address as the `src` fetch gives it (the key of `src_*`).
fn src_sample(ctx: &SampleCtx) -> Option<Sample> {
    ctx.src
        .map(|a| Sample::Ip(crate::acl::fetch::unmap(a.ip())))
}

/// `sc_*`, `scN_*`, `src_*`.
pub fn fetch(ctx: &SampleCtx, from: StkFrom, what: StkWhat, table: Option<&str>) -> Option<Sample> {
    let trk = ctx.vars.map(|v| &v.stk);
    let (t, entry): (&Table, Option<Arc<Entry>>) = match from {
        StkFrom::Sc(n) => {
            let tr = trk.and_then(|k| k.slot(n));
            if what == StkWhat::Tracked {
                return Some(Sample::Bool(tr.is_some()));
            }
            let tr = tr?;
            match table {
                None => (&tr.table, Some(Arc::clone(&tr.entry))),
                // Another table: the tracked key looked up there.
                Some(name) => {
                    let t = self::table(name)?;
                    let e = t.lookup(tr.entry.key());
                    (t.as_ref(), e)
                }
            }
        }
        StkFrom::Src => {
            let t = self::table(table.unwrap_or_else(|| default_table(ctx)))?;
            let e = t.key_of(&src_sample(ctx)?).and_then(|k| t.lookup(&k));
            (t.as_ref(), e)
        }
    };
    let int = |v: u64| Some(Sample::Int(v.min(i64::MAX as u64) as i64));
    match what {
        StkWhat::Tracked => None,
        StkWhat::Trackers | StkWhat::Data(_) | StkWhat::Kbytes { .. } | StkWhat::Arr { .. } => {
            read(t, entry.as_deref(), what)
        }
        StkWhat::IncArr(_) | StkWhat::IncGpc(_) => {
            let e = match (from, entry) {
                (_, Some(e)) => e,
                // `src_inc_gpc*` creates the entry.
                (StkFrom::Src, None) => t.get_or_create(&t.key_of(&src_sample(ctx)?)?)?,
                _ => return None,
            };
            let v = match what {
                StkWhat::IncArr(idx) => e.inc_gpc(t, idx as usize),
                StkWhat::IncGpc(w) => e.inc_gpc01(t, w).or_else(|| e.inc_gpc(t, w as usize)),
                _ => None,
            };
            int(v?)
        }
        StkWhat::ClrArr(idx) => int(entry?.clr_gpc(t, idx as usize)?),
        StkWhat::ClrGpc(w) => {
            let e = entry?;
            int(e.clr_gpc01(t, w)?)
        }
    }
}

/// `table_cnt` / `table_avl`.
pub fn table_count(ctx: &SampleCtx, table: Option<&str>, avail: bool) -> Option<Sample> {
    let t = self::table(table.unwrap_or_else(|| default_table(ctx)))?;
    let v = if avail { t.avail() } else { t.used() };
    Some(Sample::Int(v as i64))
}

/// `show table [NAME [data.TYPE OP VALUE]... | [key KEY]]` on the stats socket, with
/// HAProxy 2.6's texts. `operator`: the CLI level allows seeing entries.
pub fn cli_show_table(w: &[String], operator: bool, out: &mut String) {
    let a = |i: usize| w.get(i).map(String::as_str).unwrap_or("");
    if a(2).is_empty() {
        // HAProxy lists its tables most recent first.
        let list: Vec<&Arc<Table>> = tables().collect();
        for t in list.into_iter().rev().filter(|t| t.def().size > 0) {
            t.show_header(out);
        }
        return;
    }
    let Some(t) = table(a(2)) else {
        out.push_str("No such table\n");
        return;
    };
    let denied = |out: &mut String| {
        t.show_header(out);
        out.push_str("# contents not dumped due to insufficient privileges\n");
    };
    match a(3) {
        "" if !operator => denied(out),
        "" => t.show_filtered(out, &[], None),
        "key" => match t.cli_key(a(4), false) {
            Err(m) => out.push_str(m),
            Ok(_) if !operator => out.push_str("Permission denied\n"),
            Ok(k) => t.show_filtered(out, &[], Some(&k)),
        },
        d if d.starts_with("data.") => match t.parse_filters(w) {
            Err(m) => out.push_str(&m),
            Ok(_) if !operator => denied(out),
            Ok(f) => t.show_filtered(out, &f, None),
        },
        _ => out.push_str(
            "Optional argument only supports \"data.<store_data_type>\" <operator> <value> and key <key>\n",
        ),
    }
}

/// `clear table NAME [data.TYPE OP VALUE]... | [key KEY]`.
pub fn cli_clear_table(w: &[String], operator: bool, out: &mut String) {
    const USAGE: &str = "Required arguments: <table> \"data.<store_data_type>\" <operator> <value> or <table> key <key>\n";
    let a = |i: usize| w.get(i).map(String::as_str).unwrap_or("");
    if a(2).is_empty() {
        out.push_str(USAGE);
        return;
    }
    let Some(t) = table(a(2)) else {
        out.push_str("No such table\n");
        return;
    };
    match a(3) {
        "" if operator => {
            t.clear_filtered(&[]);
        }
        "" => {}
        "key" => match t.cli_key(a(4), true) {
            Err(m) => out.push_str(m),
            Ok(_) if !operator => out.push_str("Permission denied\n"),
            Ok(k) => {
                if t.clear_key(&k) == super::stick::ClearKey::InUse {
                    out.push_str("Entry currently in use, cannot remove\n");
                }
            }
        },
        d if d.starts_with("data.") => match t.parse_filters(w) {
            Err(m) => out.push_str(&m),
            Ok(f) if operator => {
                t.clear_filtered(&f);
            }
            Ok(_) => {}
        },
        _ => out.push_str(USAGE),
    }
}

/// What the `stick` rules of a backend decided for a request.
#[derive(Default)]
pub struct Sticky {
    /// The server a `stick match|on` entry named, when it can take the request.
    pub server: Option<usize>,
    /// The entries `stick on|store-request` store once a server took the request (the first
    /// rule of each table only).
    store: Vec<(&'static Arc<Table>, super::stick::Key)>,
}

/// HAProxy's sticking rules on the request side, in order: a matching entry of the first
/// `stick match|on` that finds one chooses the server (if it is usable, or with `option
/// persist`), and is touched.
pub fn stick_request(be: &super::backend::Backend, c: &SampleCtx) -> Sticky {
    let mut out = Sticky::default();
    let p = &be.proxy;
    for r in &p.stick_rules {
        let Some(t) = r.table.as_deref().and_then(table) else {
            continue;
        };
        if r.kind == crate::config::ir::StickKind::StoreResponse {
            continue;
        }
        let store = r.kind != crate::config::ir::StickKind::Match;
        if store && out.store.iter().any(|(x, _)| Arc::ptr_eq(x, t)) {
            continue;
        }
        if r.cond.as_ref().is_some_and(|c2| !crate::acl::eval(c2, c)) {
            continue;
        }
        let Some(key) = r.expr.value(c).and_then(|v| t.key_of(&v)) else {
            continue;
        };
        if r.kind != crate::config::ir::StickKind::StoreRequest {
            if let Some(e) = t.lookup(&key) {
                if out.server.is_none() {
                    let id = e.server_id(t);
                    let i = p
                        .servers
                        .iter()
                        .position(|s| s.puid as i32 == id && id != 0);
                    if let Some(i) =
                        i.filter(|&i| super::admin::usable(&be.servers[i]) || p.option("persist"))
                    {
                        out.server = Some(i);
                    }
                }
                e.touch(t);
            }
        }
        if store && out.store.len() < 8 {
            out.store.push((t, key));
        }
    }
    out
}

/// `stick store-response` rules once the response head is in (or, in `mode tcp`, once the
/// server connection is made): the first rule of each table that gives a key stores it with
/// server `srv`.
pub fn stick_response(be: &super::backend::Backend, c: &SampleCtx, srv: usize) {
    let mut done: Vec<&'static Arc<Table>> = Vec::new();
    for r in &be.proxy.stick_rules {
        if r.kind != crate::config::ir::StickKind::StoreResponse {
            continue;
        }
        let Some(t) = r.table.as_deref().and_then(table) else {
            continue;
        };
        if done.iter().any(|x| Arc::ptr_eq(x, t)) {
            continue;
        }
        if r.cond.as_ref().is_some_and(|c2| !crate::acl::eval(c2, c)) {
            continue;
        }
        let Some(key) = r.expr.value(c).and_then(|v| t.key_of(&v)) else {
            continue;
        };
        done.push(t);
        Sticky {
            server: None,
            store: vec![(t, key)],
        }
        .store(be, srv);
    }
}

impl Sticky {
    /// The request went to server `srv` of `be`: its entries are stored.
    pub fn store(&self, be: &super::backend::Backend, srv: usize) {
        let Some(s) = be.proxy.servers.get(srv) else {
            return;
        };
        for (t, key) in &self.store {
            if let Some(e) = t.get_or_create(key) {
                e.set_server(t, s.puid as i32, &s.name);
            }
        }
    }
}

/// `in_table(T)` (`what` None) and the `table_*(T)` converters: the entry of `s` in table
/// `name`; a missing entry reads as 0 (false), a type the table does not store as no sample.
pub fn table_conv(s: &Sample, what: Option<StkWhat>, name: &str) -> Option<Sample> {
    let t = table(name)?;
    let e = t.key_of(s).and_then(|k| t.lookup(&k));
    let Some(what) = what else {
        return Some(Sample::Bool(e.is_some()));
    };
    read(t, e.as_deref(), what)
}

/// `table_expire(T[,DEFAULT])` / `table_idle(T[,DEFAULT])`.
pub fn table_time(s: &Sample, idle: bool, name: &str, default: Option<i64>) -> Option<Sample> {
    let t = table(name)?;
    let v = match t.key_of(s).and_then(|k| t.lookup(&k)) {
        Some(e) if idle => e.idle(t) as i64,
        Some(e) => e.expires_in(t) as i64,
        None => default?,
    };
    Some(Sample::Int(v))
}

/// What entry `e` of table `t` holds for a fetch or a converter: an absent entry reads as 0
/// (an empty counter, as in HAProxy), a type the table does not store gives no sample;
/// `gpc0`, `gpc1`, `gpt0` and their rates fall back to the arrays' first elements.
fn read(t: &Table, e: Option<&Entry>, what: StkWhat) -> Option<Sample> {
    let stored = |d: StickData| t.def().store.iter().any(|x| x.data == d);
    let v = match what {
        StkWhat::Trackers => e.map_or(0, |e| e.trackers() as u64),
        StkWhat::Kbytes { out } => {
            let d = if out {
                StickData::BytesOutCnt
            } else {
                StickData::BytesInCnt
            };
            if !stored(d) {
                return None;
            }
            e.and_then(|e| e.get(t, d, 0)).unwrap_or(0) >> 10
        }
        StkWhat::Data(StickData::ServerId) => {
            if !stored(StickData::ServerId) {
                return None;
            }
            return Some(Sample::Int(e.map_or(0, |e| e.server_id(t)) as i64));
        }
        StkWhat::Arr { data, idx } => {
            if !stored(data) {
                return None;
            }
            let n = t
                .def()
                .store
                .iter()
                .find(|x| x.data == data)
                .map_or(0, |x| x.n);
            if idx >= n {
                return None;
            }
            e.and_then(|e| e.get(t, data, idx as usize)).unwrap_or(0)
        }
        StkWhat::Data(d) => {
            let (d, idx) = match d {
                StickData::Gpc0 | StickData::Gpc1 if !stored(d) => {
                    (StickData::Gpc, usize::from(d == StickData::Gpc1))
                }
                StickData::Gpt0 if !stored(d) => (StickData::Gpt, 0),
                StickData::Gpc0Rate | StickData::Gpc1Rate if !stored(d) => {
                    (StickData::GpcRate, usize::from(d == StickData::Gpc1Rate))
                }
                _ => (d, 0),
            };
            if !stored(d) {
                return None;
            }
            e.and_then(|e| e.get(t, d, idx)).unwrap_or(0)
        }
        _ => return None,
    };
    Some(Sample::Int(v.min(i64::MAX as u64) as i64))
}

/// `set table NAME key KEY [data.TYPE VALUE]...`: creates the entry if needed, then sets each
/// value in turn (an error stops there, the values before it kept), HAProxy 2.6's texts.
pub fn cli_set_table(w: &[String], operator: bool, out: &mut String) {
    let a = |i: usize| w.get(i).map(String::as_str).unwrap_or("");
    if a(2).is_empty() {
        return;
    }
    let Some(t) = table(a(2)) else {
        out.push_str("No such table\n");
        return;
    };
    match a(3) {
        "" => return,
        "key" => {}
        _ => {
            out.push_str(
                "Required arguments: <table> key <key> [data.<store_data_type> <value>]*\n",
            );
            return;
        }
    }
    let k = match t.cli_key(a(4), false) {
        Ok(k) => k,
        Err(m) => {
            out.push_str(m);
            return;
        }
    };
    if !operator {
        out.push_str("Permission denied\n");
        return;
    }
    let Some(e) = t.get_or_create(&k) else {
        out.push_str("Unable to allocate a new entry\n");
        return;
    };
    e.touch(t);
    let mut i = 5;
    while i < w.len() {
        let Some(name) = a(i).strip_prefix("data.") else {
            out.push_str("\"data.<type>\" followed by a value expected\n");
            return;
        };
        let Some(d) = StickData::from_name(name) else {
            out.push_str("Unknown data type\n");
            return;
        };
        if !t.def().store.iter().any(|s| s.data == d) {
            out.push_str("Data type not stored in this table\n");
            return;
        }
        let Ok(v) = a(i + 1).parse::<i64>() else {
            out.push_str("Require a valid integer value to store\n");
            return;
        };
        e.cli_set(t, d, v);
        i += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile or truncated table commands and `stick-table` lines give an answer or an
    /// alert, never a panic.
    #[test]
    fn hostile_table_input_never_panics() {
        let text = "\
frontend f
    bind 127.0.0.1:1
    stick-table type ip size 2 expire 1s store gpc0,gpc(2),conn_rate(1s),server_id,server_key
backend s
    stick-table type string len 3 size 1 nopurge
backend b
    stick-table type binary len 2 size 1
backend i
    stick-table type integer size 1
backend v6
    stick-table type ipv6 size 1
";
        let mut d = crate::diag::Diags::new(true);
        let mut cfg = crate::config::parse_str("t.cfg", text, &mut d).expect("parses");
        crate::config::validate::check(&mut cfg, &mut d);
        init(&cfg);
        let words = [
            "",
            "f",
            "s",
            "b",
            "i",
            "v6",
            "nope",
            "key",
            "data.",
            "data.gpc0",
            "data.gpc",
            "data.server_id",
            "data.server_key",
            "data.conn_rate",
            "gt",
            "eq",
            "zz",
            "1",
            "-1",
            "99999999999999999999",
            "::1",
            "1.2.3.4",
            "abcdef",
            "\u{0}",
            "é",
            "0x",
            "4294967296",
        ];
        let mut n = 0u64;
        for cmd in ["show", "clear", "set"] {
            for a in words {
                for b in words {
                    for c in words {
                        for e in ["", "1", "x"] {
                            n = n.wrapping_mul(6364136223846793005).wrapping_add(1);
                            let extra = words[(n >> 33) as usize % words.len()];
                            let w: Vec<String> = [cmd, "table", a, b, c, e, extra]
                                .iter()
                                .map(|s| s.to_string())
                                .collect();
                            let mut out = String::new();
                            let op = n & 1 == 0;
                            match cmd {
                                "show" => cli_show_table(&w, op, &mut out),
                                "clear" => cli_clear_table(&w, op, &mut out),
                                _ => cli_set_table(&w, op, &mut out),
                            }
                        }
                    }
                }
            }
        }
        // Keys of every type from every kind of sample.
        let samples = [
            Sample::Int(-1),
            Sample::Int(i64::MAX),
            Sample::Bool(true),
            Sample::Str(Vec::new()),
            Sample::Str(vec![0xff; 100]),
            Sample::Ip("::ffff:1.2.3.4".parse().unwrap()),
            Sample::Ip("2001:db8::1".parse().unwrap()),
        ];
        for t in tables() {
            for s in &samples {
                if let Some(k) = t.key_of(s) {
                    let _ = t.get_or_create(&k);
                }
            }
            let mut out = String::new();
            t.show_filtered(&mut out, &[], None);
        }
    }
}
