//! Run-time stick tables, with HAProxy 2.6's semantics: keys, entries and their counters,
//! expiry, purge of a full table, and the `show table` / `clear table` texts.
//!
//! # Behaviour (measured on HAProxy 2.6.12, or read in its sources)
//!
//! * Keys sort as HAProxy's trees do, so `show table` lists them in its order: `ip` and `ipv6`
//!   as network-order bytes, `integer` as the **little-endian** bytes of the 32-bit value (256
//!   comes before 1), `string` as bytes (`a` before `ab`), `binary` as bytes.
//! * An entry expires `expire` ms after its last touch: creation, a tracker's start, each
//!   counter update. A tracked entry is never removed (it shows `exp=0` once expired); an
//!   expired one is removed when its last tracker stops. Finding an entry does not touch it.
//! * Creating an entry in a full table removes up to `size / 256 + 1` unused entries, those
//!   expiring first, visiting at most twice that many (in use, or touched since they were
//!   queued); when none could be removed (or with `nopurge`) the entry is not created.
//! * Counters are HAProxy's: 32-bit counters wrap, `bytes_*_cnt` are 64-bit, rates are
//!   `freq_ctr`s over their period ([`FreqCtr`]).
//! * `gpc0`/`gpc0_rate`/`gpc1`/`gpc1_rate`/`gpt0` fall back to `gpc[0]`/`gpc_rate[0]`/`gpc[1]`/
//!   `gpc_rate[1]`/`gpt[0]` when they are not stored (sc-inc-gpc0, sc_get_gpc0, ...).
//!
//! # CLI texts (for the command handler; the CLI adds its usual empty line after each answer)
//!
//! * `show table` (no name): one [`Table::show_header`] line per table whose size is not 0,
//!   **in reverse declaration order** (HAProxy prepends each table to its list). Any level.
//! * `show table NAME`: [`Table::show`]: the header, then one line per entry; nothing else.
//!   At level `user`, the header then `# contents not dumped due to insufficient privileges\n`
//!   (also with a `data.` filter).
//! * `show table NAME key K`: the header and the entry's line when it exists, **nothing at
//!   all** when it does not; at level `user` (after a valid key): `Permission denied\n`.
//!   Words after the key are ignored.
//! * `clear table NAME`, `clear table NAME data.T OP V`: nothing is printed (at level `user`
//!   nothing is removed either). `clear table NAME key K`: nothing printed, whether the key
//!   existed or not; `Entry currently in use, cannot remove\n` when it is tracked
//!   ([`Table::clear_key`]); at level `user` (after a valid key): `Permission denied\n`.
//! * Unknown table (show or clear, any level): `No such table\n`.
//! * `clear table` without a name: `Required arguments: <table> "data.<store_data_type>"
//!   <operator> <value> or <table> key <key>\n`; same text for `clear table NAME junk`.
//! * `show table NAME junk`: `Optional argument only supports "data.<store_data_type>"
//!   <operator> <value> and key <key>\n`.
//! * Key errors ([`Table::cli_key`]): `Key value expected\n` (no key word), `Invalid key\n`
//!   (ipv6 not parsable, integer not a decimal below 2^32), and for binary tables `Showing keys
//!   from tables of type other than ip, ipv6, string and integer is not supported\n` (show) /
//!   `Removing keys from tables of type other than ip, ipv6, string and integer is not
//!   supported\n` (clear). `ip` keys never fail: HAProxy reads them laxly (`127.0.0.1x`,
//!   `0127.0.0.1` and `127.0.0.1.5` are all 127.0.0.1).
//! * Filter errors: [`Table::parse_filters`] (up to 4 `data.T OP V` triplets).
//! * `clear table` (not by key) keeps an unused entry when the entry after it (in key order) is
//!   in use: HAProxy checks the next entry's use count where it means the current one's
//!   (measured; reproduced by [`Table::clear_filtered`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Bound;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::acl::Sample;
use crate::config::ir::{StickData, StickKeyType, StickTable};

/// Where the table clock starts: 2^31 ms, so that the 32-bit ticks of a fresh frequency
/// counter (tick 0) are a whole half-range away, as with HAProxy's wall-clock-based `now_ms`.
const CLOCK_START: u64 = 1 << 31;

/// The table clock in milliseconds (monotonic; the frozen time of the current poll, see
/// [`crate::runtime::clock`]). Frequency counters use its low 32 bits, which wrap as HAProxy's
/// ticks do.
pub fn now_ms() -> u64 {
    static BASE: OnceLock<tokio::time::Instant> = OnceLock::new();
    let base = *BASE.get_or_init(tokio::time::Instant::now);
    let d = crate::runtime::clock::now().saturating_duration_since(base);
    CLOCK_START + d.as_millis() as u64
}

/// HAProxy's frequency counter over a period (`struct freq_ctr` with
/// `update_freq_ctr_period` / `read_freq_ctr_period`, 2.6).
///
/// `curr_tick` is the start of the current period (always even: HAProxy uses the low bit as a
/// lock), `curr_ctr` the events counted since, `prev_ctr` those of the period before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreqCtr {
    pub curr_tick: u32,
    pub curr_ctr: u32,
    pub prev_ctr: u32,
}

impl FreqCtr {
    /// Counts `inc` events at `now`; returns the current period's count.
    ///
    /// Within the period, the count grows. Otherwise the period rotates: the current count
    /// becomes the previous one and the period start moves one period on; when that still
    /// leaves `now` a period or more ahead, two periods or more were missed: the previous
    /// count is 0 and the period starts at `now` (rounded down to even).
    pub fn update(&mut self, period: u32, inc: u32, now: u32) -> u32 {
        if now.wrapping_sub(self.curr_tick) < period {
            self.curr_ctr = self.curr_ctr.wrapping_add(inc);
            return self.curr_ctr;
        }
        self.prev_ctr = self.curr_ctr;
        self.curr_ctr = inc;
        let mut tick = self.curr_tick.wrapping_add(period);
        if now.wrapping_sub(tick) >= period {
            self.prev_ctr = 0;
            tick = now;
        }
        self.curr_tick = tick & !1;
        inc
    }

    /// The events over the last period as seen at `now`: the previous period's count weighted
    /// by the part of the current period not yet elapsed, plus the current count, rounded
    /// down. When the current period is over (not yet rotated), its count is the previous one
    /// and the weight is what is left of the period after it; two periods later it is 0. With
    /// nothing in the current period and at most one event in the previous, that count is
    /// reported as is (HAProxy's "flapping" correction).
    pub fn read(&self, period: u32, now: u32) -> u32 {
        if period == 0 {
            return 0;
        }
        let mut curr = self.curr_ctr as u64;
        let mut past = self.prev_ctr as u64;
        let mut remain = self.curr_tick.wrapping_add(period).wrapping_sub(now) as i32 as i64;
        if remain < 0 {
            remain += period as i64;
            past = if remain >= 0 { curr } else { 0 };
            curr = 0;
        }
        if curr == 0 && past <= 1 {
            return past as u32;
        }
        ((past * remain as u64 + curr * period as u64) / period as u64) as u32
    }
}

/// A table key, encoded so that the byte order is HAProxy's tree order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A `data.TYPE OP VALUE` comparison operator (`eq ne le lt ge gt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Le,
    Lt,
    Ge,
    Gt,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "le" => Op::Le,
            "lt" => Op::Lt,
            "ge" => Op::Ge,
            "gt" => Op::Gt,
            _ => return None,
        })
    }

    fn holds(self, data: i64, value: i64) -> bool {
        match self {
            Op::Eq => data == value,
            Op::Ne => data != value,
            Op::Le => data <= value,
            Op::Lt => data < value,
            Op::Ge => data >= value,
            Op::Gt => data > value,
        }
    }
}

/// One `data.TYPE OP VALUE` filter of `show table` / `clear table` (array types compare their
/// element `idx`; HAProxy's CLI uses element 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filter {
    pub data: StickData,
    pub idx: usize,
    pub op: Op,
    pub value: i64,
}

/// What `clear table NAME key K` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClearKey {
    Removed,
    /// No such entry (HAProxy prints nothing either).
    Absent,
    /// Tracked: `Entry currently in use, cannot remove\n`.
    InUse,
}

/// One stored value of an entry.
#[derive(Clone, Debug)]
enum Slot {
    Num(u64),
    Frq(FreqCtr),
    /// `server_key` (HAProxy's dictionary entry): `-` when unset.
    Dict(Option<String>),
}

/// Where a stored data type lives in an entry's slots.
#[derive(Clone, Copy, Debug)]
struct Col {
    at: usize,
    n: u32,
    period: u32,
}

/// The per-entry state the table lock protects.
struct Inner {
    map: BTreeMap<Key, Arc<Entry>>,
    /// The expiry queue, HAProxy's `exps` tree: keyed by the expiry date an entry had when it
    /// was queued, then by queueing order. Touches do not move an entry (they only change
    /// `Entry::expire`); the purges requeue the entries they find late.
    exps: BTreeMap<(u64, u64), Arc<Entry>>,
    seq: u64,
    /// When the next entry may expire (the expiry task's date).
    next_exp: u64,
}

/// A stick table.
pub struct Table {
    name: String,
    def: StickTable,
    expire: Option<u64>,
    cols: [Option<Col>; 25],
    nslots: usize,
    inner: Mutex<Inner>,
}

/// One entry of a table.
pub struct Entry {
    key: Key,
    data: Mutex<Box<[Slot]>>,
    /// Trackers (HAProxy's `ref_cnt`); changed under the table lock.
    refs: AtomicU32,
    /// Table clock date of expiry (the last touch's date when the table has no `expire`).
    expire: AtomicU64,
    /// Position in the expiry queue (changed under the table lock).
    qkey: AtomicU64,
    qseq: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Table {
    pub fn new(name: &str, def: &StickTable) -> Table {
        let mut cols = [None; 25];
        let mut nslots = 0;
        for d in StickData::ALL {
            if let Some(s) = def.store.iter().find(|s| s.data == d) {
                let n = if d.is_array() { s.n.max(1) } else { 1 };
                cols[d as usize] = Some(Col {
                    at: nslots,
                    n,
                    period: s.period_ms,
                });
                nslots += n as usize;
            }
        }
        Table {
            name: name.to_string(),
            def: def.clone(),
            expire: def.expire_ms.filter(|&e| e > 0),
            cols,
            nslots,
            inner: Mutex::new(Inner {
                map: BTreeMap::new(),
                exps: BTreeMap::new(),
                seq: 0,
                next_exp: u64::MAX,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn def(&self) -> &StickTable {
        &self.def
    }

    fn col(&self, d: StickData) -> Option<Col> {
        self.cols[d as usize]
    }

    fn expiry_from(&self, now: u64) -> u64 {
        now + self.expire.unwrap_or(0)
    }

    // ----- keys -----

    /// HAProxy's conversion of a sample to this table's key (`smp_to_stkey` after the sample
    /// cast), `None` when the sample has none:
    /// * `ip`: an IPv4 address; an IPv6 one only when IPv4-mapped; an integer as the 32-bit
    ///   address (`-1` is 255.255.255.255); a string read as dotted quad (HAProxy's lax
    ///   reader: leading zeros accepted, stops at the first other character after four fields,
    ///   so `1.2.3.4:80` is 1.2.3.4; `1.2.3` or IPv6 text: none).
    /// * `ipv6`: an IPv6 address; IPv4 (and integers as IPv4) mapped to `::ffff:a.b.c.d`; a
    ///   string only when it is IPv6 text (`1.2.3.4` as text: none).
    /// * `integer`: the integer's low 32 bits; an IPv4 address as its number; an IPv6 address:
    ///   none; a string read as HAProxy does (sign, then digits up to the first other
    ///   character, saturating: `12abc` is 12, `abc` 0, the empty string none).
    /// * `string`: the bytes (integers in decimal, booleans as 0/1, addresses as text), cut
    ///   at `len` (and at a NUL byte).
    /// * `binary`: the bytes (integers as 8 big-endian bytes, addresses as 4/16 bytes),
    ///   zero-padded or cut to `len`.
    pub fn key_of(&self, s: &Sample) -> Option<Key> {
        let int = |s: &Sample| match s {
            Sample::Bool(b) => Some(*b as i64),
            Sample::Int(i) => Some(*i),
            _ => None,
        };
        match self.def.key {
            StickKeyType::Ip => {
                let a = match s {
                    Sample::Ip(std::net::IpAddr::V4(a)) => *a,
                    Sample::Ip(std::net::IpAddr::V6(a)) => v6_to_v4(a)?,
                    Sample::Str(b) => buf2ip(b)?,
                    o => Ipv4Addr::from(int(o)? as u32),
                };
                Some(Key(a.octets().to_vec()))
            }
            StickKeyType::Ipv6 => {
                let a = match s {
                    Sample::Ip(std::net::IpAddr::V6(a)) => *a,
                    Sample::Ip(std::net::IpAddr::V4(a)) => a.to_ipv6_mapped(),
                    Sample::Str(b) => buf2ip6(b)?,
                    o => Ipv4Addr::from(int(o)? as u32).to_ipv6_mapped(),
                };
                Some(Key(a.octets().to_vec()))
            }
            StickKeyType::Integer => {
                let v = match s {
                    Sample::Ip(std::net::IpAddr::V4(a)) => u32::from(*a),
                    Sample::Ip(std::net::IpAddr::V6(_)) => return None,
                    Sample::Str(b) => {
                        if b.is_empty() {
                            return None;
                        }
                        read_int64(b) as u32
                    }
                    o => int(o)? as u32,
                };
                Some(Key(v.to_le_bytes().to_vec()))
            }
            StickKeyType::String(len) => {
                let mut b = match s {
                    Sample::Str(b) => b.clone(),
                    Sample::Ip(std::net::IpAddr::V6(a)) => fmt_ipv6(a).into_bytes(),
                    o => o.as_bytes().into_owned(),
                };
                if let Some(z) = b.iter().position(|&c| c == 0) {
                    b.truncate(z);
                }
                b.truncate(len as usize);
                Some(Key(b))
            }
            StickKeyType::Binary(len) => {
                let mut b = match s {
                    Sample::Str(b) => b.clone(),
                    Sample::Ip(std::net::IpAddr::V4(a)) => a.octets().to_vec(),
                    Sample::Ip(std::net::IpAddr::V6(a)) => a.octets().to_vec(),
                    o => int(o)?.to_be_bytes().to_vec(),
                };
                b.resize(len as usize, 0);
                Some(Key(b))
            }
        }
    }

    /// A key typed on the CLI (`show table T key K`, `clear table T key K`); `None` when
    /// HAProxy refuses it (see [`Table::cli_key`] for its messages).
    pub fn parse_key(&self, text: &str) -> Option<Key> {
        self.cli_key(text, false).ok()
    }

    /// A key typed on the CLI, or HAProxy's error text (ending with a newline): `clear` picks
    /// the binary-table message. The level check (`Permission denied`, operator needed)
    /// comes after this one.
    pub fn cli_key(&self, text: &str, clear: bool) -> Result<Key, &'static str> {
        if text.is_empty() {
            return Err("Key value expected\n");
        }
        match self.def.key {
            StickKeyType::Ip => Ok(Key(inetaddr_host(text.as_bytes()).to_be_bytes().to_vec())),
            StickKeyType::Ipv6 => text
                .parse::<Ipv6Addr>()
                .map(|a| Key(a.octets().to_vec()))
                .map_err(|_| "Invalid key\n"),
            StickKeyType::Integer => cli_u32(text)
                .map(|v| Key(v.to_le_bytes().to_vec()))
                .ok_or("Invalid key\n"),
            StickKeyType::String(len) => {
                let b = text.as_bytes();
                Ok(Key(b[..b.len().min(len as usize)].to_vec()))
            }
            StickKeyType::Binary(_) => Err(if clear {
                "Removing keys from tables of type other than ip, ipv6, string and integer is not supported\n"
            } else {
                "Showing keys from tables of type other than ip, ipv6, string and integer is not supported\n"
            }),
        }
    }

    fn fmt_key(&self, out: &mut String, k: &Key) {
        let b = &k.0;
        match self.def.key {
            StickKeyType::Ip if b.len() == 4 => {
                let _ = write!(out, "{}", Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            }
            StickKeyType::Ipv6 if b.len() == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(b);
                out.push_str(&fmt_ipv6(&Ipv6Addr::from(o)));
            }
            StickKeyType::Integer if b.len() == 4 => {
                let _ = write!(out, "{}", u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            }
            StickKeyType::String(_) => dump_text(out, b),
            _ => {
                for c in b {
                    let _ = write!(out, "{c:02X}");
                }
            }
        }
    }

    // ----- table operations -----

    /// Removes the expired unused entries when one may have expired (HAProxy's expiry task,
    /// run lazily): walks the queue in date order up to `now`, leaving the tracked entries in
    /// place and requeueing those touched since they were queued.
    fn trash_expired(&self, g: &mut Inner, now: u64) {
        if self.expire.is_none() || now < g.next_exp {
            return;
        }
        let mut cursor: Option<(u64, u64)> = None;
        loop {
            let next = match cursor {
                None => g.exps.iter().next(),
                Some(c) => g.exps.range((Bound::Excluded(c), Bound::Unbounded)).next(),
            }
            .map(|(q, e)| (*q, Arc::clone(e)));
            let Some((q, e)) = next else {
                g.next_exp = u64::MAX;
                return;
            };
            if now < q.0 {
                g.next_exp = q.0;
                return;
            }
            cursor = Some(q);
            if e.refs.load(Relaxed) != 0 {
                continue;
            }
            g.exps.remove(&q);
            let exp = e.expire.load(Relaxed);
            if exp > now {
                Self::enqueue(g, &e, exp);
                continue;
            }
            g.map.remove(&e.key);
        }
    }

    /// Removes up to `batch` unused entries, those queued first (HAProxy's
    /// `__stktable_trash_oldest`): an entry touched since it was queued is requeued at its
    /// date instead, and at most `2 * batch` entries are visited. Returns how many went.
    fn trash_oldest(&self, g: &mut Inner, batch: usize) -> usize {
        let mut budget = 2 * batch;
        let mut done = 0;
        let mut cursor: Option<(u64, u64)> = None;
        while done < batch {
            let next = match cursor {
                None => g.exps.iter().next(),
                Some(c) => g.exps.range((Bound::Excluded(c), Bound::Unbounded)).next(),
            }
            .map(|(q, e)| (*q, Arc::clone(e)));
            let Some((q, e)) = next else {
                break;
            };
            if budget == 0 {
                break;
            }
            budget -= 1;
            cursor = Some(q);
            if e.refs.load(Relaxed) != 0 {
                continue;
            }
            g.exps.remove(&q);
            let exp = e.expire.load(Relaxed);
            if exp != q.0 {
                Self::enqueue(g, &e, exp);
                continue;
            }
            g.map.remove(&e.key);
            done += 1;
        }
        done
    }

    fn enqueue(g: &mut Inner, e: &Arc<Entry>, exp: u64) {
        g.seq += 1;
        e.qkey.store(exp, Relaxed);
        e.qseq.store(g.seq, Relaxed);
        g.exps.insert((exp, g.seq), Arc::clone(e));
    }

    fn unlink(g: &mut Inner, e: &Arc<Entry>) {
        if g.map.get(&e.key).is_some_and(|x| Arc::ptr_eq(x, e)) {
            g.map.remove(&e.key);
            g.exps.remove(&(e.qkey.load(Relaxed), e.qseq.load(Relaxed)));
        }
    }

    fn get_or_create_locked(&self, g: &mut Inner, key: &Key, now: u64) -> Option<Arc<Entry>> {
        self.trash_expired(g, now);
        if let Some(e) = g.map.get(key) {
            return Some(Arc::clone(e));
        }
        if g.map.len() as u64 >= self.def.size {
            if self.def.nopurge {
                return None;
            }
            if self.trash_oldest(g, (self.def.size >> 8) as usize + 1) == 0 {
                return None;
            }
        }
        let slots: Vec<Slot> = StickData::ALL
            .iter()
            .filter_map(|&d| self.col(d).map(|c| (d, c)))
            .flat_map(|(d, c)| {
                let s = if d.is_rate() {
                    Slot::Frq(FreqCtr::default())
                } else if d == StickData::ServerKey {
                    Slot::Dict(None)
                } else {
                    Slot::Num(0)
                };
                std::iter::repeat_n(s, c.n as usize)
            })
            .collect();
        debug_assert_eq!(slots.len(), self.nslots);
        let exp = self.expiry_from(now);
        let e = Arc::new(Entry {
            key: key.clone(),
            data: Mutex::new(slots.into_boxed_slice()),
            refs: AtomicU32::new(0),
            expire: AtomicU64::new(exp),
            qkey: AtomicU64::new(0),
            qseq: AtomicU64::new(0),
        });
        Self::enqueue(g, &e, exp);
        if self.expire.is_some() {
            g.next_exp = g.next_exp.min(exp);
        }
        g.map.insert(key.clone(), Arc::clone(&e));
        Some(e)
    }

    /// Looks up or creates the entry (HAProxy's `stktable_get_entry`). A new entry expires
    /// `expire` ms from now; an existing one is not touched (tracking it does). `None` when
    /// the table is full and nothing could be purged, or with `nopurge`.
    pub fn get_or_create(&self, key: &Key) -> Option<Arc<Entry>> {
        self.get_or_create_at(key, now_ms())
    }

    fn get_or_create_at(&self, key: &Key, now: u64) -> Option<Arc<Entry>> {
        let mut g = lock(&self.inner);
        self.get_or_create_locked(&mut g, key, now)
    }

    /// [`Table::get_or_create`] then [`Entry::track_start`], the tracker counted under the
    /// same lock as the lookup (no purge can take the entry in between).
    pub fn track(&self, key: &Key) -> Option<Arc<Entry>> {
        self.track_at(key, now_ms())
    }

    fn track_at(&self, key: &Key, now: u64) -> Option<Arc<Entry>> {
        let e = {
            let mut g = lock(&self.inner);
            let e = self.get_or_create_locked(&mut g, key, now)?;
            e.refs.fetch_add(1, Relaxed);
            e
        };
        e.start_counters(self, now);
        Some(e)
    }

    /// Lookup without creation (`src_*` fetches, `table_*` converters); an expired entry is
    /// absent unless tracked. Does not touch the entry.
    pub fn lookup(&self, key: &Key) -> Option<Arc<Entry>> {
        self.lookup_at(key, now_ms())
    }

    fn lookup_at(&self, key: &Key, now: u64) -> Option<Arc<Entry>> {
        let mut g = lock(&self.inner);
        self.trash_expired(&mut g, now);
        g.map.get(key).cloned()
    }

    /// Entries in the table (`table_cnt`; expired unused ones are gone).
    pub fn used(&self) -> u64 {
        self.used_at(now_ms())
    }

    fn used_at(&self, now: u64) -> u64 {
        let mut g = lock(&self.inner);
        self.trash_expired(&mut g, now);
        g.map.len() as u64
    }

    /// Free slots (`table_avl`).
    pub fn avail(&self) -> u64 {
        self.def.size.saturating_sub(self.used())
    }

    fn header(&self, out: &mut String, used: usize) {
        let _ = writeln!(
            out,
            "# table: {}, type: {}, size:{}, used:{}",
            self.name,
            self.def.key.name(),
            self.def.size,
            used
        );
    }

    /// `# table: NAME, type: ip, size:N, used:M` and a newline.
    pub fn show_header(&self, out: &mut String) {
        let mut g = lock(&self.inner);
        self.trash_expired(&mut g, now_ms());
        self.header(out, g.map.len());
    }

    /// `show table NAME [data.TYPE OP VALUE] [key KEY]` at operator level or above (see the
    /// module's notes for `user`): the header and the matching entries' lines; with a key,
    /// nothing when the entry does not exist (the filter is then ignored, as HAProxy does).
    /// The value is compared as a signed 64-bit number (`u64::MAX` is -1).
    pub fn show(
        &self,
        out: &mut String,
        filter: Option<(StickData, usize, Op, u64)>,
        key: Option<&Key>,
    ) {
        let f: Vec<Filter> = filter.into_iter().map(to_filter).collect();
        self.show_filtered(out, &f, key);
    }

    /// [`Table::show`] with up to any number of filters (all must hold).
    pub fn show_filtered(&self, out: &mut String, filters: &[Filter], key: Option<&Key>) {
        self.show_at(out, filters, key, now_ms());
    }

    fn show_at(&self, out: &mut String, filters: &[Filter], key: Option<&Key>, now: u64) {
        let list: Vec<Arc<Entry>> = {
            let mut g = lock(&self.inner);
            self.trash_expired(&mut g, now);
            match key {
                Some(k) => match g.map.get(k) {
                    Some(e) => {
                        self.header(out, g.map.len());
                        vec![Arc::clone(e)]
                    }
                    None => return,
                },
                None => {
                    self.header(out, g.map.len());
                    g.map.values().cloned().collect()
                }
            }
        };
        for e in &list {
            let data = lock(&e.data);
            if key.is_none() && !filters.iter().all(|f| self.matches(&data, f, now)) {
                continue;
            }
            self.fmt_line(out, e, &data, now);
        }
    }

    fn fmt_line(&self, out: &mut String, e: &Arc<Entry>, data: &[Slot], now: u64) {
        let _ = write!(out, "0x{:x}: key=", Arc::as_ptr(e) as usize);
        self.fmt_key(out, &e.key);
        let _ = write!(
            out,
            " use={} exp={}",
            e.refs.load(Relaxed),
            e.expire.load(Relaxed).saturating_sub(now)
        );
        let now32 = now as u32;
        for d in StickData::ALL {
            let Some(c) = self.col(d) else {
                continue;
            };
            let name = d.name();
            for i in 0..c.n as usize {
                out.push(' ');
                if d.is_array() {
                    // The index goes before the first '_': gpc0, gpt1, gpc0_rate.
                    let (pfx, sfx) = name.split_at(name.find('_').unwrap_or(name.len()));
                    let _ = write!(out, "{pfx}{i}{sfx}");
                } else {
                    out.push_str(name);
                }
                if d.is_rate() {
                    let _ = write!(out, "({})", c.period);
                }
                out.push('=');
                match &data[c.at + i] {
                    Slot::Num(v) => {
                        if d == StickData::ServerId {
                            let _ = write!(out, "{}", *v as i32);
                        } else {
                            let _ = write!(out, "{v}");
                        }
                    }
                    Slot::Frq(f) => {
                        let _ = write!(out, "{}", f.read(c.period, now32));
                    }
                    Slot::Dict(k) => out.push_str(k.as_deref().unwrap_or("-")),
                }
            }
        }
        out.push('\n');
    }

    /// A filter's verdict on an entry's data (HAProxy reads the value as a signed 64-bit
    /// number; a type not stored reads 0).
    fn matches(&self, data: &[Slot], f: &Filter, now: u64) -> bool {
        let v = self.col(f.data).and_then(|c| {
            let i = if f.data.is_array() {
                (f.idx < c.n as usize).then_some(f.idx)?
            } else {
                0
            };
            Some(match &data[c.at + i] {
                Slot::Num(v) if f.data == StickData::ServerId => *v as i32 as i64,
                Slot::Num(v) => *v as i64,
                Slot::Frq(fc) => fc.read(c.period, now as u32) as i64,
                Slot::Dict(_) => 0,
            })
        });
        f.op.holds(v.unwrap_or(0), f.value)
    }

    /// `clear table NAME [data.TYPE OP VALUE] [key K]`: removes the matching entries not in
    /// use; returns how many went (see [`Table::clear_key`] for the in-use message).
    pub fn clear(&self, filter: Option<(StickData, usize, Op, u64)>, key: Option<&Key>) -> usize {
        match key {
            Some(k) => (self.clear_key(k) == ClearKey::Removed) as usize,
            None => {
                let f: Vec<Filter> = filter.into_iter().map(to_filter).collect();
                self.clear_filtered(&f)
            }
        }
    }

    /// `clear table NAME key K`.
    pub fn clear_key(&self, key: &Key) -> ClearKey {
        let mut g = lock(&self.inner);
        self.trash_expired(&mut g, now_ms());
        let Some(e) = g.map.get(key).cloned() else {
            return ClearKey::Absent;
        };
        if e.refs.load(Relaxed) != 0 {
            return ClearKey::InUse;
        }
        Self::unlink(&mut g, &e);
        ClearKey::Removed
    }

    /// `clear table NAME [data.T OP V]...`: removes the matching unused entries, except (as
    /// HAProxy 2.6 does) one whose next entry in key order is in use. Returns how many went.
    pub fn clear_filtered(&self, filters: &[Filter]) -> usize {
        self.clear_at(filters, now_ms())
    }

    fn clear_at(&self, filters: &[Filter], now: u64) -> usize {
        let mut g = lock(&self.inner);
        self.trash_expired(&mut g, now);
        let list: Vec<Arc<Entry>> = g.map.values().cloned().collect();
        let mut n = 0;
        for (i, e) in list.iter().enumerate() {
            let hit = {
                let data = lock(&e.data);
                filters.iter().all(|f| self.matches(&data, f, now))
            };
            let next_used = list.get(i + 1).is_some_and(|x| x.refs.load(Relaxed) != 0);
            if hit && !next_used && e.refs.load(Relaxed) == 0 {
                Self::unlink(&mut g, e);
                n += 1;
            }
        }
        n
    }

    /// The filters of `show table NAME data.T OP V ...` / `clear table NAME data.T OP V ...`
    /// from the command's words (`words[0]` is `show` or `clear`, `words[2]` the table,
    /// `words[3]` starts with `data.`), or HAProxy's error text (with its newline):
    /// `Filter entry #N: Unknown data type`, `Filter entry #N: Data type not stored in this
    /// table`, `Filter entry #N: Require and operator among "eq", "ne", "le", "ge", "lt",
    /// "gt"`, `Filter entry #N: Require a valid integer value to compare against`, `Detected
    /// extra data in filter, 16th word of input, after 'W'`. Up to four filters; HAProxy skips
    /// the first five characters of the later type words without checking them.
    pub fn parse_filters<S: AsRef<str>>(&self, words: &[S]) -> Result<Vec<Filter>, String> {
        let a = |i: usize| words.get(i).map(|s| s.as_ref()).unwrap_or("");
        let mut out = Vec::new();
        let mut i = 0;
        while i < 4 {
            let w = a(3 + 3 * i);
            if i > 0 && w.is_empty() {
                break;
            }
            let n = i + 1;
            let name = w.get(5..).unwrap_or("\u{0}");
            let data = match name {
                "server_name" => Some(StickData::ServerKey),
                _ => StickData::from_name(name),
            };
            let Some(data) = data else {
                return Err(format!("Filter entry #{n}: Unknown data type\n"));
            };
            if self.col(data).is_none() {
                return Err(format!(
                    "Filter entry #{n}: Data type not stored in this table\n"
                ));
            }
            let Some(op) = Op::parse(a(4 + 3 * i)) else {
                return Err(format!(
                    "Filter entry #{n}: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n"
                ));
            };
            let Some(value) = strl2llrc(a(5 + 3 * i)) else {
                return Err(format!(
                    "Filter entry #{n}: Require a valid integer value to compare against\n"
                ));
            };
            out.push(Filter {
                data,
                idx: 0,
                op,
                value,
            });
            i += 1;
        }
        if !a(3 + 3 * i).is_empty() {
            return Err(format!(
                "Detected extra data in filter, {}th word of input, after '{}'\n",
                3 + 3 * i + 1,
                a(2 + 3 * i)
            ));
        }
        Ok(out)
    }
}

fn to_filter((data, idx, op, value): (StickData, usize, Op, u64)) -> Filter {
    Filter {
        data,
        idx,
        op,
        value: value as i64,
    }
}

impl Entry {
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Number of trackers (`sc_trackers`; `use=` of `show table`).
    pub fn trackers(&self) -> u32 {
        self.refs.load(Relaxed)
    }

    /// Refreshes the expiry (HAProxy's `stktable_touch_local`).
    pub fn touch(&self, t: &Table) {
        self.touch_at(t, now_ms());
    }

    /// `table_expire`: milliseconds before the entry expires (0 in a table without
    /// `expire`, as HAProxy reports it).
    pub fn expires_in(&self, t: &Table) -> u64 {
        match t.expire {
            Some(_) => self.expire.load(Relaxed).saturating_sub(now_ms()),
            None => 0,
        }
    }

    /// `table_idle`: milliseconds since the entry was last updated (0 without `expire`).
    pub fn idle(&self, t: &Table) -> u64 {
        match t.expire {
            Some(e) => e.saturating_sub(self.expires_in(t)),
            None => 0,
        }
    }

    fn touch_at(&self, t: &Table, now: u64) {
        self.expire.store(t.expiry_from(now), Relaxed);
    }

    /// A tracker starts using this entry (track-sc at any level, HAProxy's
    /// `stream_track_stkctr`): one more user; conn_cnt +1, conn_cur +1, conn_rate +1 when
    /// stored; expiry refreshed in any case. Prefer [`Table::track`], which counts the user
    /// under the lookup's lock.
    pub fn track_start(&self, t: &Table) {
        let now = now_ms();
        {
            let _g = lock(&t.inner);
            self.refs.fetch_add(1, Relaxed);
        }
        self.start_counters(t, now);
    }

    fn start_counters(&self, t: &Table, now: u64) {
        {
            let mut d = lock(&self.data);
            if let Some(c) = t.col(StickData::ConnCur) {
                num_add32(&mut d[c.at], 1);
            }
            if let Some(c) = t.col(StickData::ConnCnt) {
                num_add32(&mut d[c.at], 1);
            }
            if let Some(c) = t.col(StickData::ConnRate) {
                frq_add(&mut d[c.at], c.period, 1, now);
            }
        }
        self.touch_at(t, now);
    }

    /// A tracker stops (HAProxy's `stream_store_counters`/`session_store_counters`): conn_cur
    /// -1 (not below 0) and the expiry refreshed **only when conn_cur is stored**; one user
    /// less; an unused entry already expired then goes at once.
    pub fn track_end(&self, t: &Table) {
        self.track_end_at(t, now_ms());
    }

    fn track_end_at(&self, t: &Table, now: u64) {
        if let Some(c) = t.col(StickData::ConnCur) {
            {
                let mut d = lock(&self.data);
                if let Slot::Num(v) = &mut d[c.at] {
                    *v = v.saturating_sub(1);
                }
            }
            self.touch_at(t, now);
        }
        let mut g = lock(&t.inner);
        let left = self
            .refs
            .fetch_update(Relaxed, Relaxed, |r| Some(r.saturating_sub(1)))
            .unwrap_or(0)
            .saturating_sub(1);
        if left == 0 && t.expire.is_some() {
            let exp = self.expire.load(Relaxed);
            if exp <= now {
                if let Some(me) = g.map.get(&self.key).filter(|x| std::ptr::eq(&***x, self)) {
                    let me = Arc::clone(me);
                    Table::unlink(&mut g, &me);
                }
            } else {
                // The expiry walks skipped it while tracked: make the next one come in time
                // (HAProxy's touch reschedules its expiry task).
                g.next_exp = g.next_exp.min(exp);
            }
        }
    }

    /// Adds to a counter and its rate (`inc` to both) when stored; touches when one is.
    fn count(&self, t: &Table, cnt: StickData, rate: StickData, inc: u64, now: u64) {
        let (c, r) = (t.col(cnt), t.col(rate));
        if c.is_none() && r.is_none() {
            return;
        }
        {
            let mut d = lock(&self.data);
            if let Some(c) = c {
                if let Slot::Num(v) = &mut d[c.at] {
                    *v = if matches!(cnt, StickData::BytesInCnt | StickData::BytesOutCnt) {
                        v.wrapping_add(inc)
                    } else {
                        (*v as u32).wrapping_add(inc as u32) as u64
                    };
                }
            }
            if let Some(r) = r {
                frq_add(&mut d[r.at], r.period, inc as u32, now);
            }
        }
        self.touch_at(t, now);
    }

    /// A session accepted by a connection/session-level tracker: sess_cnt, sess_rate.
    pub fn sess(&self, t: &Table) {
        self.count(t, StickData::SessCnt, StickData::SessRate, 1, now_ms());
    }

    /// An HTTP request: http_req_cnt, http_req_rate.
    pub fn http_req(&self, t: &Table) {
        self.count(
            t,
            StickData::HttpReqCnt,
            StickData::HttpReqRate,
            1,
            now_ms(),
        );
    }

    /// An HTTP error (4xx response, bad request): http_err_cnt, http_err_rate.
    pub fn http_err(&self, t: &Table) {
        self.count(
            t,
            StickData::HttpErrCnt,
            StickData::HttpErrRate,
            1,
            now_ms(),
        );
    }

    /// A server failure (5xx but 501/505): http_fail_cnt, http_fail_rate.
    pub fn http_fail(&self, t: &Table) {
        self.count(
            t,
            StickData::HttpFailCnt,
            StickData::HttpFailRate,
            1,
            now_ms(),
        );
    }

    /// Bytes from the client (`inb`) and to it (`outb`); a zero side counts nothing.
    pub fn bytes(&self, t: &Table, inb: u64, outb: u64) {
        let now = now_ms();
        if inb > 0 {
            self.count(t, StickData::BytesInCnt, StickData::BytesInRate, inb, now);
        }
        if outb > 0 {
            self.count(
                t,
                StickData::BytesOutCnt,
                StickData::BytesOutRate,
                outb,
                now,
            );
        }
    }

    /// The slot of a legacy counter, or its array fallback.
    fn legacy(t: &Table, d: StickData) -> Option<(Col, usize)> {
        let (arr, idx) = match d {
            StickData::Gpt0 => (StickData::Gpt, 0),
            StickData::Gpc0 => (StickData::Gpc, 0),
            StickData::Gpc0Rate => (StickData::GpcRate, 0),
            StickData::Gpc1 => (StickData::Gpc, 1),
            StickData::Gpc1Rate => (StickData::GpcRate, 1),
            _ => return t.col(d).map(|c| (c, 0)),
        };
        t.col(d)
            .map(|c| (c, 0))
            .or_else(|| t.col(arr).filter(|c| (idx as u32) < c.n).map(|c| (c, idx)))
    }

    fn arr(t: &Table, d: StickData, idx: usize) -> Option<(Col, usize)> {
        t.col(d).filter(|c| idx < c.n as usize).map(|c| (c, idx))
    }

    fn inc_slots(
        &self,
        t: &Table,
        gpc: Option<(Col, usize)>,
        rate: Option<(Col, usize)>,
        now: u64,
    ) -> Option<u64> {
        if gpc.is_none() && rate.is_none() {
            return None;
        }
        let mut ret = 0;
        {
            let mut d = lock(&self.data);
            if let Some((c, i)) = rate {
                frq_add(&mut d[c.at + i], c.period, 1, now);
                if let Slot::Frq(f) = &d[c.at + i] {
                    ret = f.curr_ctr as u64;
                }
            }
            if let Some((c, i)) = gpc {
                ret = num_add32(&mut d[c.at + i], 1);
            }
        }
        self.touch_at(t, now);
        Some(ret)
    }

    /// `sc-inc-gpc0` / `sc-inc-gpc1` (`which` 0/1), `sc_inc_gpc0/1` fetches: gpcN +1 and
    /// gpcN_rate +1 (falling back to gpc[N] / gpc_rate[N]); returns the new gpcN, or the rate's
    /// current-period count when only the rate is stored; `None` when neither is.
    pub fn inc_gpc01(&self, t: &Table, which: u8) -> Option<u64> {
        let (g, r) = if which == 0 {
            (StickData::Gpc0, StickData::Gpc0Rate)
        } else {
            (StickData::Gpc1, StickData::Gpc1Rate)
        };
        self.inc_slots(t, Self::legacy(t, g), Self::legacy(t, r), now_ms())
    }

    /// `sc-inc-gpc(IDX,SC)`, `sc_inc_gpc`: gpc[idx] and gpc_rate[idx] (no fallback).
    pub fn inc_gpc(&self, t: &Table, idx: usize) -> Option<u64> {
        self.inc_slots(
            t,
            Self::arr(t, StickData::Gpc, idx),
            Self::arr(t, StickData::GpcRate, idx),
            now_ms(),
        )
    }

    fn clr_slot(&self, t: &Table, s: Option<(Col, usize)>, now: u64) -> Option<u64> {
        let (c, i) = s?;
        let old = {
            let mut d = lock(&self.data);
            match &mut d[c.at + i] {
                Slot::Num(v) => std::mem::take(v),
                _ => 0,
            }
        };
        self.touch_at(t, now);
        Some(old)
    }

    /// `sc_clr_gpc0/1`: gpcN (or gpc[N]) set to 0 (its rate is left alone); returns the value
    /// before, `None` when not stored.
    pub fn clr_gpc01(&self, t: &Table, which: u8) -> Option<u64> {
        let g = if which == 0 {
            StickData::Gpc0
        } else {
            StickData::Gpc1
        };
        self.clr_slot(t, Self::legacy(t, g), now_ms())
    }

    /// `sc_clr_gpc(IDX,SC)`: gpc[idx] set to 0; returns the value before.
    pub fn clr_gpc(&self, t: &Table, idx: usize) -> Option<u64> {
        self.clr_slot(t, Self::arr(t, StickData::Gpc, idx), now_ms())
    }

    fn set_slot(&self, t: &Table, s: Option<(Col, usize)>, v: u64, now: u64) -> bool {
        let Some((c, i)) = s else {
            return false;
        };
        lock(&self.data)[c.at + i] = Slot::Num(v as u32 as u64);
        self.touch_at(t, now);
        true
    }

    /// `sc-set-gpt0`: gpt0 (or gpt[0]) = v (kept as 32 bits); false when not stored.
    pub fn set_gpt0(&self, t: &Table, v: u64) -> bool {
        self.set_slot(t, Self::legacy(t, StickData::Gpt0), v, now_ms())
    }

    /// `stick store-*`: the server a request went to, by id (`server_id`) and name
    /// (`server_key`); the entry is touched.
    pub fn set_server(&self, t: &Table, id: i32, name: &str) {
        {
            let mut d = lock(&self.data);
            if let Some(c) = t.col(StickData::ServerId) {
                d[c.at] = Slot::Num(id as u32 as u64);
            }
            if let Some(c) = t.col(StickData::ServerKey) {
                d[c.at] = Slot::Dict(Some(name.to_string()));
            }
        }
        self.touch_at(t, now_ms());
    }

    /// `set table T key K data.TYPE V`: element 0 of `d` = `v` (a rate: `v` events in a
    /// period starting now, the previous one empty, as HAProxy sets it); the entry is
    /// touched. False when the table does not store `d`.
    pub fn cli_set(&self, t: &Table, d: StickData, v: i64) -> bool {
        let Some(c) = t.col(d) else {
            return false;
        };
        let now = now_ms();
        {
            let mut data = lock(&self.data);
            data[c.at] = match &data[c.at] {
                Slot::Frq(_) => Slot::Frq(FreqCtr {
                    curr_tick: (now as u32) & !1,
                    curr_ctr: v as u32,
                    prev_ctr: 0,
                }),
                Slot::Dict(k) => Slot::Dict(k.clone()),
                Slot::Num(_) if matches!(d, StickData::BytesInCnt | StickData::BytesOutCnt) => {
                    Slot::Num(v as u64)
                }
                Slot::Num(_) => Slot::Num(v as u32 as u64),
            };
        }
        self.touch_at(t, now);
        true
    }

    /// The server id `stick store-*` kept (0: none).
    pub fn server_id(&self, t: &Table) -> i32 {
        let Some(c) = t.col(StickData::ServerId) else {
            return 0;
        };
        match &lock(&self.data)[c.at] {
            Slot::Num(v) => *v as u32 as i32,
            _ => 0,
        }
    }

    /// `sc-set-gpt(IDX,SC)`: gpt[idx] = v.
    pub fn set_gpt(&self, t: &Table, idx: usize, v: u64) -> bool {
        self.set_slot(t, Self::arr(t, StickData::Gpt, idx), v, now_ms())
    }

    /// A stored value now: counters as they are, rates as `read_freq_ctr_period` reports them
    /// at this instant, server_id as its (signed) number; `None` when the type (or index) is
    /// not stored, and for server_key. gpt0/gpc0/gpc0_rate/gpc1/gpc1_rate fall back to the
    /// arrays as HAProxy's fetches do. Does not touch the entry.
    pub fn get(&self, t: &Table, d: StickData, idx: usize) -> Option<u64> {
        self.get_at(t, d, idx, now_ms())
    }

    fn get_at(&self, t: &Table, d: StickData, idx: usize, now: u64) -> Option<u64> {
        let (c, i) = if d.is_array() {
            Self::arr(t, d, idx)?
        } else {
            Self::legacy(t, d)?
        };
        let data = lock(&self.data);
        match &data[c.at + i] {
            Slot::Num(v) => Some(*v),
            Slot::Frq(f) => Some(f.read(c.period, now as u32) as u64),
            Slot::Dict(_) => None,
        }
    }
}

/// Adds to a 32-bit counter (wrapping, as HAProxy's `unsigned int`); returns the new value.
fn num_add32(s: &mut Slot, inc: u32) -> u64 {
    match s {
        Slot::Num(v) => {
            *v = (*v as u32).wrapping_add(inc) as u64;
            *v
        }
        _ => 0,
    }
}

fn frq_add(s: &mut Slot, period: u32, inc: u32, now: u64) {
    if let Slot::Frq(f) = s {
        f.update(period, inc, now as u32);
    }
}

// ----- HAProxy's text readers and writers -----

/// HAProxy's `v6tov4`: only IPv4-mapped addresses have an IPv4 form.
fn v6_to_v4(a: &Ipv6Addr) -> Option<Ipv4Addr> {
    let o = a.octets();
    (o[..10] == [0; 10] && o[10] == 0xff && o[11] == 0xff)
        .then(|| Ipv4Addr::new(o[12], o[13], o[14], o[15]))
}

/// HAProxy's `buf2ip`: four dot-separated decimal fields of at most 255 (leading zeros
/// accepted), reading stops at the first character that is neither a digit nor a dot.
fn buf2ip(b: &[u8]) -> Option<Ipv4Addr> {
    let mut o = [0u32; 4];
    let mut fields = 0usize;
    let mut saw_digit = false;
    for &c in b {
        if c.is_ascii_digit() {
            if !saw_digit {
                fields += 1;
                if fields > 4 {
                    return None;
                }
                saw_digit = true;
            }
            let v = o[fields - 1] * 10 + (c - b'0') as u32;
            if v > 255 {
                return None;
            }
            o[fields - 1] = v;
        } else if c == b'.' {
            if !saw_digit || fields == 4 {
                return None;
            }
            saw_digit = false;
        } else {
            break;
        }
    }
    (fields == 4).then(|| Ipv4Addr::new(o[0] as u8, o[1] as u8, o[2] as u8, o[3] as u8))
}

/// HAProxy's `buf2ip6`: IPv6 text only (at most 46 characters).
fn buf2ip6(b: &[u8]) -> Option<Ipv6Addr> {
    if b.len() > 46 {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// HAProxy's `read_int64`: an optional sign, then digits up to the first other byte,
/// saturating at the 64-bit limits.
fn read_int64(b: &[u8]) -> i64 {
    let (neg, d) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let mut v: u64 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            break;
        }
        v = v
            .checked_mul(10)
            .and_then(|x| x.checked_add((c - b'0') as u64))
            .unwrap_or(u64::MAX);
    }
    if neg {
        if v > 1 << 63 {
            i64::MIN
        } else {
            (v as i64).wrapping_neg()
        }
    } else {
        v.min(i64::MAX as u64) as i64
    }
}

/// HAProxy's `inetaddr_host` (CLI keys of `ip` tables): up to four dot-separated fields, each
/// giving its last three digits (hundreds, tens, units) to its byte, carried over into the
/// byte above when over 255; stops at the first character that is not a digit or the dot
/// after a field. Never fails (`abc` is 0.0.0.0).
fn inetaddr_host(t: &[u8]) -> u32 {
    let mut acc: u32 = 0;
    let mut shift = 24;
    let mut p = 0;
    loop {
        let start = p;
        while p < t.len() && t[p].is_ascii_digit() {
            p += 1;
        }
        let f = &t[start..p];
        let dig = |k: usize| f.len().checked_sub(k).map_or(0, |i| (f[i] - b'0') as u32);
        let v = dig(3) * 100 + dig(2) * 10 + dig(1);
        acc = acc.wrapping_add(v.wrapping_shl(shift));
        if shift == 0 || t.get(p) != Some(&b'.') {
            return acc;
        }
        shift -= 8;
        p += 1;
    }
}

/// `strtoul(text, &end, 10)` as HAProxy's CLI checks it for integer keys: leading blanks, a
/// sign, at least one digit (what follows is ignored), no overflow, at most 2^32-1.
fn cli_u32(text: &str) -> Option<u32> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    let mut overflow = false;
    while i < b.len() && b[i].is_ascii_digit() {
        match v
            .checked_mul(10)
            .and_then(|x| x.checked_add((b[i] - b'0') as u64))
        {
            Some(x) => v = x,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start || overflow {
        return None;
    }
    let v = if neg { v.wrapping_neg() } else { v };
    u32::try_from(v).ok()
}

/// HAProxy's `strl2llrc`: `-?[0-9]*` fitting in 64 bits (a lone `-` is 0; `+` refused).
fn strl2llrc(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let (neg, d) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let mut v: i64 = 0;
    for c in d.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        let x = (c - b'0') as i64;
        v = if neg {
            v.checked_mul(10)?.checked_sub(x)?
        } else {
            v.checked_mul(10)?.checked_add(x)?
        };
    }
    Some(v)
}

/// glibc's `inet_ntop` for IPv6: the longest run of two or more zero groups (the first of
/// equals) as `::`, lowercase hex; `::a.b.c.d` and `::ffff:a.b.c.d` for the IPv4-compatible
/// and IPv4-mapped forms.
fn fmt_ipv6(a: &Ipv6Addr) -> String {
    let w = a.segments();
    let o = a.octets();
    let v4 = || format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
    if w[..5] == [0; 5] && w[5] == 0xffff {
        return format!("::ffff:{}", v4());
    }
    if w[..6] == [0; 6] && w[6] != 0 {
        return format!("::{}", v4());
    }
    let (mut best, mut best_len) = (8, 0);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let s = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - s > best_len {
                best = s;
                best_len = i - s;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        (best, best_len) = (8, 0);
    }
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if i == best {
            out.push_str("::");
            i += best_len;
            continue;
        }
        if i > 0 && i != best + best_len {
            out.push(':');
        }
        let _ = write!(out, "{:x}", w[i]);
        i += 1;
    }
    out
}

/// HAProxy's `dump_text` (string keys): printable ASCII as is but for space, `=` and `\`,
/// which are backslash-escaped like tab, newline, return and escape (`\t \n \r \e`); other
/// bytes as `\xHH` (uppercase).
fn dump_text(out: &mut String, b: &[u8]) {
    for &c in b {
        if c == 0 {
            break;
        }
        match c {
            b' ' | b'=' | b'\\' => {
                out.push('\\');
                out.push(c as char);
            }
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            0x1b => out.push_str("\\e"),
            0x21..=0x7e => out.push(c as char),
            _ => {
                let _ = write!(out, "\\x{c:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ir::StickStore;
    use std::net::IpAddr;

    fn store(d: StickData, period_ms: u32, n: u32) -> StickStore {
        StickStore {
            data: d,
            period_ms,
            n,
        }
    }

    fn table(key: StickKeyType, size: u64, expire: Option<u64>, st: Vec<StickStore>) -> Table {
        Table::new(
            "t",
            &StickTable {
                key,
                size,
                expire_ms: expire,
                nopurge: false,
                peers: None,
                store: st,
            },
        )
    }

    /// The lines of a dump with the pointers replaced by `P`.
    fn masked(s: &str) -> String {
        s.lines()
            .map(|l| match l.strip_prefix("0x") {
                Some(r) => format!("P{}", &r[r.find(':').unwrap()..]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Vectors by hand from HAProxy 2.6's formulas, period 10000, B = 1_000_000:
    /// * update at B on a fresh counter (tick 0): B - 0 >= period, rotate: prev = 0, curr = 1,
    ///   tick = 10000; B - 10000 >= period again: prev = 0, tick = B. Read at B: remain =
    ///   B+10000-B = 10000, (0*10000 + 1*10000)/10000 = 1.
    /// * updates at B+1000, B+2000: curr = 3; read at B+5000: remain 5000, 0 + 3 = 3.
    /// * read at B+12000 (not rotated): remain = -2000 + 10000 = 8000, past = 3, curr = 0:
    ///   3*8000/10000 = 2 (2.4 rounded down).
    /// * update at B+12000: rotate: prev = 3, curr = 1, tick = B+10000 (2000 < period, kept).
    ///   Read: remain = B+20000-(B+12000) = 8000: (3*8000 + 1*10000)/10000 = 3 (3.4).
    /// * read at B+25000: remain = -5000 + 10000 = 5000 >= 0: past = 1, curr = 0: flapping
    ///   correction, 1. At B+30001: remain = -10001 + 10000 < 0: 0.
    /// * update at B+35001: rotate to tick B+20000, still 15001 >= period behind: prev = 0,
    ///   tick = (B+35001) & !1 = B+35000, curr = 1. Read at B+35001: remain 9999: 1.
    /// * update at B+44999 (+2, inc 2): curr = 3; read at B+44999: remain 1: 3. Update at
    ///   B+45000 (tick + period): rotate, prev = 3, curr = 5 (inc 5), tick = B+45000; read
    ///   at B+47500: remain 7500: (3*7500 + 5*10000)/10000 = 7 (7.25).
    #[test]
    fn freq_ctr_vectors() {
        let p = 10_000;
        let b = 1_000_000u32;
        let mut f = FreqCtr::default();
        assert_eq!(f.update(p, 1, b), 1);
        assert_eq!(
            f,
            FreqCtr {
                curr_tick: b,
                curr_ctr: 1,
                prev_ctr: 0
            }
        );
        assert_eq!(f.read(p, b), 1);
        f.update(p, 1, b + 1000);
        assert_eq!(f.update(p, 1, b + 2000), 3);
        assert_eq!(f.read(p, b + 5000), 3);
        assert_eq!(f.read(p, b + 12000), 2);
        assert_eq!(f.update(p, 1, b + 12000), 1);
        assert_eq!(f.curr_tick, b + 10000);
        assert_eq!(f.prev_ctr, 3);
        assert_eq!(f.read(p, b + 12000), 3);
        assert_eq!(f.read(p, b + 25000), 1);
        assert_eq!(f.read(p, b + 30001), 0);
        f.update(p, 1, b + 35001);
        assert_eq!(
            f,
            FreqCtr {
                curr_tick: b + 35000,
                curr_ctr: 1,
                prev_ctr: 0
            }
        );
        assert_eq!(f.read(p, b + 35001), 1);
        assert_eq!(f.update(p, 2, b + 44999), 3);
        assert_eq!(f.read(p, b + 44999), 3);
        assert_eq!(f.update(p, 5, b + 45000), 5);
        assert_eq!(f.curr_tick, b + 45000);
        assert_eq!(f.prev_ctr, 3);
        assert_eq!(f.read(p, b + 47500), 7);
    }

    /// The tick arithmetic wraps as HAProxy's 32-bit ticks: a period straddling 2^32.
    #[test]
    fn freq_ctr_wraps() {
        let p = 1000;
        let t0 = u32::MAX - 399; // even
        let mut f = FreqCtr::default();
        f.update(p, 4, t0);
        assert_eq!(f.curr_tick, t0);
        // 500 ms later (wrapped past 0): same period; remain 500.
        let t1 = t0.wrapping_add(500);
        assert_eq!(f.update(p, 1, t1), 5);
        // 1200 ms after t0: rotated once; remain = 800: (5*800 + 1*1000)/1000 = 5.
        let t2 = t0.wrapping_add(1200);
        f.update(p, 1, t2);
        assert_eq!(f.curr_tick, t0.wrapping_add(1000));
        assert_eq!(f.read(p, t2), 5);
    }

    #[test]
    fn expiry_with_driven_time() {
        let t = table(
            StickKeyType::Ip,
            10,
            Some(1000),
            vec![store(StickData::HttpReqCnt, 0, 1)],
        );
        let now = CLOCK_START + 5;
        let k = t.key_of(&Sample::Ip("10.0.0.1".parse().unwrap())).unwrap();
        let e = t.get_or_create_at(&k, now).unwrap();
        assert_eq!(t.used_at(now + 999), 1);
        // Touched at +500 (a counter update): alive until +1500.
        e.count(
            &t,
            StickData::HttpReqCnt,
            StickData::HttpReqRate,
            1,
            now + 500,
        );
        assert_eq!(t.used_at(now + 1200), 1, "touched: still there");
        assert!(t.lookup_at(&k, now + 1499).is_some());
        assert!(t.lookup_at(&k, now + 1500).is_none(), "expired at +1500");
        assert_eq!(t.used_at(now + 1500), 0);
        // Lookup does not touch; creation again gives a fresh entry.
        let e2 = t.get_or_create_at(&k, now + 2000).unwrap();
        assert!(!Arc::ptr_eq(&e, &e2));
        assert_eq!(e2.get_at(&t, StickData::HttpReqCnt, 0, now + 2000), Some(0));
        assert!(t.lookup_at(&k, now + 2999).is_some());
        assert!(t.lookup_at(&k, now + 3000).is_none());
    }

    #[test]
    fn in_use_entries_survive_and_go_when_released() {
        let t = table(
            StickKeyType::Ip,
            10,
            Some(1000),
            vec![store(StickData::ConnCnt, 0, 1)],
        );
        let now = CLOCK_START;
        let k = t.key_of(&Sample::Ip("10.0.0.1".parse().unwrap())).unwrap();
        let e = t.track_at(&k, now).unwrap();
        assert_eq!(e.trackers(), 1);
        assert_eq!(t.used_at(now + 5000), 1, "tracked: kept although expired");
        let mut s = String::new();
        t.show_at(&mut s, &[], None, now + 5000);
        assert_eq!(
            masked(&s),
            "# table: t, type: ip, size:10, used:1\nP: key=10.0.0.1 use=1 exp=0 conn_cnt=1"
        );
        assert_eq!(t.clear_key(&k), ClearKey::InUse);
        assert_eq!(t.clear_at(&[], now + 5000), 0);
        // No conn_cur: the end does not touch, the expired entry goes at once.
        e.track_end_at(&t, now + 5000);
        assert_eq!(e.trackers(), 0);
        assert!(t.lookup_at(&k, now + 5000).is_none());
    }

    #[test]
    fn conn_cur_end_touches() {
        let t = table(
            StickKeyType::Ip,
            10,
            Some(1000),
            vec![
                store(StickData::ConnCur, 0, 1),
                store(StickData::ConnCnt, 0, 1),
                store(StickData::ConnRate, 10000, 1),
            ],
        );
        let now = CLOCK_START;
        let k = t.key_of(&Sample::Ip("10.0.0.1".parse().unwrap())).unwrap();
        let e = t.track_at(&k, now).unwrap();
        let e2 = t.track_at(&k, now + 10).unwrap();
        assert!(Arc::ptr_eq(&e, &e2));
        assert_eq!(e.get_at(&t, StickData::ConnCur, 0, now + 10), Some(2));
        assert_eq!(e.get_at(&t, StickData::ConnCnt, 0, now + 10), Some(2));
        assert_eq!(e.get_at(&t, StickData::ConnRate, 0, now + 10), Some(2));
        e.track_end_at(&t, now + 3000);
        e.track_end_at(&t, now + 3000);
        e.track_end_at(&t, now + 3000); // one too many: nothing below 0
        assert_eq!(e.get_at(&t, StickData::ConnCur, 0, now + 3000), Some(0));
        assert_eq!(e.trackers(), 0);
        // Touched at +3000: alive until +4000.
        assert!(t.lookup_at(&k, now + 3999).is_some());
        assert!(t.lookup_at(&k, now + 4000).is_none());
    }

    fn ip_key(t: &Table, s: &str) -> Key {
        t.key_of(&Sample::Ip(s.parse().unwrap())).unwrap()
    }

    #[test]
    fn purge_oldest_unused_when_full() {
        let t = table(
            StickKeyType::Ip,
            3,
            Some(10_000),
            vec![store(StickData::ConnCnt, 0, 1)],
        );
        let now = CLOCK_START;
        let a = ip_key(&t, "10.0.0.1");
        let b = ip_key(&t, "10.0.0.2");
        let c = ip_key(&t, "10.0.0.3");
        let d = ip_key(&t, "10.0.0.4");
        let ea = t.track_at(&a, now).unwrap(); // in use, oldest
        t.get_or_create_at(&b, now + 1).unwrap();
        t.get_or_create_at(&c, now + 2).unwrap();
        // Full: the oldest unused (b) goes.
        t.get_or_create_at(&d, now + 3).unwrap();
        assert!(t.lookup_at(&a, now + 3).is_some());
        assert!(t.lookup_at(&b, now + 3).is_none());
        assert!(t.lookup_at(&c, now + 3).is_some());
        assert_eq!(t.used_at(now + 3), 3);
        assert_eq!(t.avail(), 0);
        // c is touched (its queue date is stale), d is not: with a visit budget of 2 (batch 1),
        // a (in use) and c (requeued) use it up: HAProxy 2.6 refuses the entry (measured).
        t.lookup_at(&c, now + 4).unwrap().touch_at(&t, now + 4);
        let e = ip_key(&t, "10.0.0.5");
        assert!(t.get_or_create_at(&e, now + 5).is_none());
        // Next time c is in date order: d goes.
        assert!(t.get_or_create_at(&e, now + 6).is_some());
        assert!(t.lookup_at(&d, now + 6).is_none());
        assert!(t.lookup_at(&c, now + 6).is_some());
        drop(ea);
    }

    #[test]
    fn nopurge_and_all_in_use_refuse() {
        let mut def = StickTable {
            key: StickKeyType::Integer,
            size: 2,
            expire_ms: None,
            nopurge: true,
            peers: None,
            store: vec![],
        };
        let t = Table::new("n", &def);
        let now = CLOCK_START;
        let k = |i: i64| t.key_of(&Sample::Int(i)).unwrap();
        assert!(t.get_or_create_at(&k(1), now).is_some());
        assert!(t.get_or_create_at(&k(2), now).is_some());
        assert!(t.get_or_create_at(&k(3), now).is_none(), "nopurge");
        assert!(
            t.get_or_create_at(&k(1), now).is_some(),
            "existing keys still found"
        );
        def.nopurge = false;
        let t = Table::new("p", &def);
        let k = |i: i64| t.key_of(&Sample::Int(i)).unwrap();
        t.track_at(&k(1), now).unwrap();
        t.track_at(&k(2), now).unwrap();
        assert!(t.get_or_create_at(&k(3), now).is_none(), "all in use");
    }

    #[test]
    fn key_encoding_and_order() {
        let ip = table(StickKeyType::Ip, 10, None, vec![]);
        let k = |t: &Table, s: Sample| t.key_of(&s).map(|k| k.0);
        assert_eq!(
            k(&ip, Sample::Ip("1.2.3.4".parse().unwrap())),
            Some(vec![1, 2, 3, 4])
        );
        assert_eq!(
            k(&ip, Sample::Ip("::ffff:5.6.7.8".parse().unwrap())),
            Some(vec![5, 6, 7, 8])
        );
        assert_eq!(k(&ip, Sample::Ip("::1".parse().unwrap())), None);
        assert_eq!(k(&ip, Sample::Ip("2002:a0b:c0d::1".parse().unwrap())), None);
        assert_eq!(k(&ip, Sample::Int(16909060)), Some(vec![1, 2, 3, 4]));
        assert_eq!(k(&ip, Sample::Int(-1)), Some(vec![255; 4]));
        assert_eq!(
            k(&ip, Sample::Str(b"001.002.003.004".to_vec())),
            Some(vec![1, 2, 3, 4])
        );
        assert_eq!(
            k(&ip, Sample::Str(b"1.2.3.4:80".to_vec())),
            Some(vec![1, 2, 3, 4])
        );
        assert_eq!(k(&ip, Sample::Str(b"1.2.3.4.5".to_vec())), None);
        assert_eq!(k(&ip, Sample::Str(b"1.2.3".to_vec())), None);
        assert_eq!(k(&ip, Sample::Str(b"256.1.1.1".to_vec())), None);

        let v6 = table(StickKeyType::Ipv6, 10, None, vec![]);
        let mapped = "::ffff:1.2.3.4"
            .parse::<Ipv6Addr>()
            .unwrap()
            .octets()
            .to_vec();
        assert_eq!(
            k(&v6, Sample::Ip("1.2.3.4".parse().unwrap())),
            Some(mapped.clone())
        );
        assert_eq!(k(&v6, Sample::Int(16909060)), Some(mapped.clone()));
        assert_eq!(
            k(&v6, Sample::Str(b"::ffff:1.2.3.4".to_vec())),
            Some(mapped)
        );
        assert_eq!(k(&v6, Sample::Str(b"1.2.3.4".to_vec())), None);

        let int = table(StickKeyType::Integer, 10, None, vec![]);
        assert_eq!(k(&int, Sample::Int(256)), Some(vec![0, 1, 0, 0]));
        assert_eq!(k(&int, Sample::Int(4294967297)), Some(vec![1, 0, 0, 0]));
        assert_eq!(
            k(&int, Sample::Str(b"12abc".to_vec())),
            Some(vec![12, 0, 0, 0])
        );
        assert_eq!(k(&int, Sample::Str(b"-1".to_vec())), Some(vec![255; 4]));
        assert_eq!(k(&int, Sample::Str(b"--5".to_vec())), Some(vec![0; 4]));
        assert_eq!(
            k(&int, Sample::Str(b"99999999999999999999".to_vec())),
            Some(vec![255; 4])
        );
        assert_eq!(k(&int, Sample::Str(vec![])), None);
        assert_eq!(
            k(&int, Sample::Ip("1.2.3.4".parse().unwrap())),
            Some(vec![4, 3, 2, 1])
        );
        assert_eq!(k(&int, Sample::Ip("::ffff:1.2.3.4".parse().unwrap())), None);
        // HAProxy's order (measured): 0, 256, 1, 513, 2, 7, ...
        let mut ks: Vec<Key> = [1i64, 2, 256, 513, 0, 7]
            .iter()
            .map(|&i| int.key_of(&Sample::Int(i)).unwrap())
            .collect();
        ks.sort();
        let order: Vec<u32> = ks
            .iter()
            .map(|k| u32::from_le_bytes(k.0.clone().try_into().unwrap()))
            .collect();
        assert_eq!(order, vec![0, 256, 1, 513, 2, 7]);

        let st = table(StickKeyType::String(8), 10, None, vec![]);
        assert_eq!(
            k(&st, Sample::Str(b"abcdefghij".to_vec())),
            Some(b"abcdefgh".to_vec())
        );
        assert_eq!(k(&st, Sample::Int(-42)), Some(b"-42".to_vec()));
        assert_eq!(k(&st, Sample::Bool(true)), Some(b"1".to_vec()));
        assert_eq!(
            k(&st, Sample::Ip("2001:db8::1".parse().unwrap())),
            Some(b"2001:db8".to_vec())
        );
        let mut ks = [
            st.key_of(&Sample::Str(b"abc".to_vec())).unwrap(),
            st.key_of(&Sample::Str(b"ab".to_vec())).unwrap(),
            st.key_of(&Sample::Str(b"a b".to_vec())).unwrap(),
            st.key_of(&Sample::Str(b"".to_vec())).unwrap(),
        ];
        ks.sort();
        assert_eq!(
            ks.iter().map(|k| k.0.as_slice()).collect::<Vec<_>>(),
            vec![&b""[..], b"a b", b"ab", b"abc"]
        );

        let bin = table(StickKeyType::Binary(4), 10, None, vec![]);
        assert_eq!(
            k(&bin, Sample::Str(b"12".to_vec())),
            Some(b"12\0\0".to_vec())
        );
        assert_eq!(
            k(&bin, Sample::Str(b"1.2.3.4".to_vec())),
            Some(b"1.2.".to_vec())
        );
        assert_eq!(k(&bin, Sample::Int(-42)), Some(vec![255; 4]));
        assert_eq!(k(&bin, Sample::Int(7)), Some(vec![0; 4]));
        let bin32 = table(StickKeyType::Binary(32), 10, None, vec![]);
        let mut want = vec![1, 2, 3, 4];
        want.resize(32, 0);
        assert_eq!(
            k(&bin32, Sample::Ip(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)))),
            Some(want)
        );
    }

    #[test]
    fn cli_keys() {
        let ip = table(StickKeyType::Ip, 10, None, vec![]);
        for s in [
            "127.0.0.1",
            "127.0.0.1x",
            "127.0.0.001",
            "127.0.0.1.5",
            "0127.0.0.1",
            "1127.0.0.1",
        ] {
            assert_eq!(ip.parse_key(s).unwrap().0, vec![127, 0, 0, 1], "{s}");
        }
        assert_eq!(ip.parse_key("127.256.0.1").unwrap().0, vec![128, 0, 0, 1]);
        assert_eq!(ip.parse_key("abc").unwrap().0, vec![0; 4]);
        assert_eq!(ip.parse_key("1.2.3").unwrap().0, vec![1, 2, 3, 0]);
        assert_eq!(ip.cli_key("", false), Err("Key value expected\n"));
        let int = table(StickKeyType::Integer, 10, None, vec![]);
        assert_eq!(int.parse_key("12abc").unwrap().0, vec![12, 0, 0, 0]);
        assert_eq!(int.parse_key("4294967295").unwrap().0, vec![255; 4]);
        assert_eq!(int.parse_key("-0").unwrap().0, vec![0; 4]);
        for s in ["abc", "-1", "4294967296", "99999999999999999999999"] {
            assert_eq!(int.cli_key(s, true), Err("Invalid key\n"), "{s}");
        }
        let v6 = table(StickKeyType::Ipv6, 10, None, vec![]);
        assert_eq!(v6.cli_key("1.2.3.4", false), Err("Invalid key\n"));
        assert!(v6.parse_key("::1").is_some());
        let st = table(StickKeyType::String(3), 10, None, vec![]);
        assert_eq!(st.parse_key("abcdef").unwrap().0, b"abc".to_vec());
        let bin = table(StickKeyType::Binary(4), 10, None, vec![]);
        assert_eq!(
            bin.cli_key("61620000", false),
            Err(
                "Showing keys from tables of type other than ip, ipv6, string and integer is not supported\n"
            )
        );
        assert_eq!(
            bin.cli_key("61620000", true),
            Err(
                "Removing keys from tables of type other than ip, ipv6, string and integer is not supported\n"
            )
        );
    }

    fn full_store() -> Vec<StickStore> {
        // Written out of HAProxy's order on purpose: the dump uses the data type order.
        vec![
            store(StickData::BytesOutRate, 60000, 1),
            store(StickData::ConnCnt, 0, 1),
            store(StickData::ConnCur, 0, 1),
            store(StickData::ConnRate, 10000, 1),
            store(StickData::HttpReqCnt, 0, 1),
            store(StickData::HttpReqRate, 10000, 1),
            store(StickData::Gpc0, 0, 1),
            store(StickData::Gpc0Rate, 10000, 1),
            store(StickData::Gpt0, 0, 1),
            store(StickData::HttpErrCnt, 0, 1),
            store(StickData::BytesInCnt, 0, 1),
        ]
    }

    /// The measured HAProxy 2.6.12 lines, pointers masked (same scenario: four tracked
    /// requests from 127.0.0.1, each `sc-inc-gpc0`, 401 bytes in, 292 out, dumped 4 ms
    /// after the last touch).
    #[test]
    fn show_ip_line() {
        let t = Table::new(
            "fip",
            &StickTable {
                key: StickKeyType::Ip,
                size: 100,
                expire_ms: Some(30_000),
                nopurge: false,
                peers: None,
                store: full_store(),
            },
        );
        let now = CLOCK_START + 100;
        let k = ip_key(&t, "127.0.0.1");
        for i in 0..4 {
            let e = t.track_at(&k, now + i).unwrap();
            e.count(
                &t,
                StickData::HttpReqCnt,
                StickData::HttpReqRate,
                1,
                now + i,
            );
            e.inc_slots(
                &t,
                Entry::legacy(&t, StickData::Gpc0),
                Entry::legacy(&t, StickData::Gpc0Rate),
                now + i,
            );
            e.track_end_at(&t, now + i);
        }
        let e = t.lookup_at(&k, now + 3).unwrap();
        e.count(
            &t,
            StickData::BytesInCnt,
            StickData::BytesInRate,
            401,
            now + 3,
        );
        e.count(
            &t,
            StickData::BytesOutCnt,
            StickData::BytesOutRate,
            292,
            now + 3,
        );
        let mut s = String::new();
        t.show_at(&mut s, &[], None, now + 7);
        assert_eq!(
            masked(&s),
            "# table: fip, type: ip, size:100, used:1\n\
             P: key=127.0.0.1 use=0 exp=29996 gpt0=0 gpc0=4 gpc0_rate(10000)=4 conn_cnt=4 \
             conn_rate(10000)=4 conn_cur=0 http_req_cnt=4 http_req_rate(10000)=4 \
             http_err_cnt=0 bytes_in_cnt=401 bytes_out_rate(60000)=292"
        );
        assert!(s.ends_with("=292\n"));
        let mut h = String::new();
        t.show_header(&mut h);
        assert_eq!(h, "# table: fip, type: ip, size:100, used:1\n");
        // Filters and key.
        let gt = |v| Filter {
            data: StickData::Gpc0,
            idx: 0,
            op: Op::Gt,
            value: v,
        };
        let mut s = String::new();
        t.show_at(&mut s, &[gt(10)], None, now + 7);
        assert_eq!(s, "# table: fip, type: ip, size:100, used:1\n");
        let mut s = String::new();
        t.show_at(&mut s, &[gt(3), gt(-1)], None, now + 7);
        assert_eq!(s.lines().count(), 2);
        let mut s = String::new();
        t.show_at(&mut s, &[], Some(&ip_key(&t, "127.0.0.2")), now + 7);
        assert_eq!(s, "", "absent key: nothing at all");
        let mut s = String::new();
        t.show_at(&mut s, &[gt(10)], Some(&k), now + 7);
        assert_eq!(s.lines().count(), 2, "with a key the filter is ignored");
        // The line's pointer is the entry's.
        assert!(s.contains(&format!("0x{:x}: ", Arc::as_ptr(&e) as usize)));
    }

    #[test]
    fn show_string_line_arrays_and_escapes() {
        let t = Table::new(
            "fstr",
            &StickTable {
                key: StickKeyType::String(8),
                size: 10,
                expire_ms: Some(30_000),
                nopurge: false,
                peers: None,
                store: vec![
                    store(StickData::ServerId, 0, 1),
                    store(StickData::Gpt, 0, 2),
                    store(StickData::Gpc, 0, 2),
                    store(StickData::GpcRate, 5000, 2),
                    store(StickData::HttpFailRate, 3000, 1),
                    store(StickData::ServerKey, 0, 1),
                    store(StickData::SessCnt, 0, 1),
                ],
            },
        );
        let now = CLOCK_START;
        let key = t.key_of(&Sample::Str(b"a b=c\\d".to_vec())).unwrap();
        let e = t.get_or_create_at(&key, now).unwrap();
        assert_eq!(
            e.inc_slots(
                &t,
                Entry::arr(&t, StickData::Gpc, 1),
                Entry::arr(&t, StickData::GpcRate, 1),
                now
            ),
            Some(1)
        );
        assert!(e.set_slot(&t, Entry::arr(&t, StickData::Gpt, 1), 42, now));
        assert!(!e.set_gpt(&t, 2, 42));
        for k in [&b"x\ty"[..], "é".as_bytes(), b""] {
            t.get_or_create_at(&t.key_of(&Sample::Str(k.to_vec())).unwrap(), now);
        }
        let mut s = String::new();
        t.show_at(&mut s, &[], None, now + 86);
        let tail = " server_id=0 sess_cnt=0 server_key=- http_fail_rate(3000)=0 gpt0=0 gpt1=42 \
                    gpc0=0 gpc1=1 gpc0_rate(5000)=0 gpc1_rate(5000)=1";
        let tail0 = tail
            .replace("gpt1=42", "gpt1=0")
            .replace("gpc1=1", "gpc1=0")
            .replace("gpc1_rate(5000)=1", "gpc1_rate(5000)=0");
        assert_eq!(
            masked(&s),
            format!(
                "# table: fstr, type: string, size:10, used:4\n\
                 P: key= use=0 exp=29914{tail0}\n\
                 P: key=a\\ b\\=c\\\\d use=0 exp=29914{tail}\n\
                 P: key=x\\ty use=0 exp=29914{tail0}\n\
                 P: key=\\xC3\\xA9 use=0 exp=29914{tail0}"
            )
        );
        // Array filters read element 0.
        let f = Filter {
            data: StickData::Gpc,
            idx: 0,
            op: Op::Gt,
            value: 0,
        };
        let mut s = String::new();
        t.show_at(&mut s, &[f], None, now + 86);
        assert_eq!(s.lines().count(), 1);
    }

    #[test]
    fn show_other_key_types() {
        let one = vec![store(StickData::HttpReqCnt, 0, 1)];
        let now = CLOCK_START;
        let dump = |t: &Table, samples: &[Sample]| {
            for s in samples {
                let e = t.get_or_create_at(&t.key_of(s).unwrap(), now).unwrap();
                e.count(t, StickData::HttpReqCnt, StickData::HttpReqRate, 1, now);
            }
            let mut s = String::new();
            t.show_at(&mut s, &[], None, now + 4);
            masked(&s)
        };
        let int = table(StickKeyType::Integer, 10, None, one.clone());
        let ints = [1i64, 2, 256, 513, -1].map(Sample::Int);
        assert_eq!(
            dump(&int, &ints),
            "# table: t, type: integer, size:10, used:5\n\
             P: key=256 use=0 exp=0 http_req_cnt=1\n\
             P: key=1 use=0 exp=0 http_req_cnt=1\n\
             P: key=513 use=0 exp=0 http_req_cnt=1\n\
             P: key=2 use=0 exp=0 http_req_cnt=1\n\
             P: key=4294967295 use=0 exp=0 http_req_cnt=1"
        );
        let v6 = table(StickKeyType::Ipv6, 10, Some(60_000), one.clone());
        let ips = [
            "::1",
            "::1.2.3.4",
            "1.2.3.4",
            "2001:db8::1",
            "2002:0102:0304::1",
            "fe80::1:0:0:1",
            "::ffff:0.0.0.0",
        ]
        .map(|s| Sample::Ip(s.parse().unwrap()));
        assert_eq!(
            dump(&v6, &ips),
            "# table: t, type: ipv6, size:10, used:7\n\
             P: key=::1 use=0 exp=59996 http_req_cnt=1\n\
             P: key=::1.2.3.4 use=0 exp=59996 http_req_cnt=1\n\
             P: key=::ffff:0.0.0.0 use=0 exp=59996 http_req_cnt=1\n\
             P: key=::ffff:1.2.3.4 use=0 exp=59996 http_req_cnt=1\n\
             P: key=2001:db8::1 use=0 exp=59996 http_req_cnt=1\n\
             P: key=2002:102:304::1 use=0 exp=59996 http_req_cnt=1\n\
             P: key=fe80::1:0:0:1 use=0 exp=59996 http_req_cnt=1"
        );
        let bin = table(StickKeyType::Binary(4), 10, Some(60_000), one);
        let bins =
            [&b"ab"[..], b"abcdef", b"1.2.3.4", b"a\x01", b"12"].map(|b| Sample::Str(b.to_vec()));
        assert_eq!(
            dump(&bin, &bins),
            "# table: t, type: binary, size:10, used:5\n\
             P: key=312E322E use=0 exp=59996 http_req_cnt=1\n\
             P: key=31320000 use=0 exp=59996 http_req_cnt=1\n\
             P: key=61010000 use=0 exp=59996 http_req_cnt=1\n\
             P: key=61620000 use=0 exp=59996 http_req_cnt=1\n\
             P: key=61626364 use=0 exp=59996 http_req_cnt=1"
        );
    }

    #[test]
    fn clear_rules() {
        let t = table(
            StickKeyType::Ip,
            10,
            Some(3000),
            vec![store(StickData::ConnCnt, 0, 1)],
        );
        let now = CLOCK_START;
        let (a, b, c) = (
            ip_key(&t, "127.0.0.1"),
            ip_key(&t, "127.0.0.2"),
            ip_key(&t, "127.0.0.3"),
        );
        t.get_or_create_at(&a, now).unwrap();
        let eb = t.track_at(&b, now).unwrap();
        t.get_or_create_at(&c, now).unwrap();
        // Measured: .1 (unused, followed by the tracked .2) survives, .3 goes.
        assert_eq!(t.clear_at(&[], now + 1), 1);
        assert!(t.lookup_at(&a, now + 1).is_some());
        assert!(t.lookup_at(&b, now + 1).is_some());
        assert!(t.lookup_at(&c, now + 1).is_none());
        eb.track_end_at(&t, now + 2);
        let f = Filter {
            data: StickData::ConnCnt,
            idx: 0,
            op: Op::Eq,
            value: 1,
        };
        // Only .2 has conn_cnt 1.
        assert_eq!(t.clear_at(&[f], now + 2), 1);
        assert!(t.lookup_at(&b, now + 2).is_none());
        assert_eq!(t.clear_key(&b), ClearKey::Absent);
        assert_eq!(t.clear_key(&a), ClearKey::Removed);
        assert_eq!(t.used_at(now + 2), 0);
        // The brief's tuple form: u64 values compare as signed.
        t.get_or_create_at(&a, now + 3).unwrap();
        assert_eq!(
            t.clear(Some((StickData::ConnCnt, 0, Op::Gt, u64::MAX)), None),
            1
        );
    }

    #[test]
    fn filter_parsing_messages() {
        let t = table(
            StickKeyType::Integer,
            10,
            None,
            vec![
                store(StickData::HttpReqCnt, 0, 1),
                store(StickData::ServerKey, 0, 1),
            ],
        );
        let p = |s: &str| t.parse_filters(&s.split(' ').collect::<Vec<_>>());
        assert_eq!(
            p("show table t data.http_req_cnt gt 1").unwrap(),
            vec![Filter {
                data: StickData::HttpReqCnt,
                idx: 0,
                op: Op::Gt,
                value: 1
            }]
        );
        assert_eq!(p("show table t data.server_name eq -").unwrap()[0].value, 0);
        assert_eq!(
            p("clear table t data.gpc0 gt 1").unwrap_err(),
            "Filter entry #1: Data type not stored in this table\n"
        );
        assert_eq!(
            p("clear table t data.foo gt 1").unwrap_err(),
            "Filter entry #1: Unknown data type\n"
        );
        assert_eq!(
            p("clear table t data.http_req_cnt xx 1").unwrap_err(),
            "Filter entry #1: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n"
        );
        for v in ["gt", "gt x", "gt +0", "gt 0x1", "gt 99999999999999999999"] {
            assert_eq!(
                p(&format!("show table t data.http_req_cnt {v}")).unwrap_err(),
                "Filter entry #1: Require a valid integer value to compare against\n"
            );
        }
        assert_eq!(
            p("show table t data.http_req_cnt gt 1 data.http_req_cnt lt 3 extra").unwrap_err(),
            "Filter entry #3: Unknown data type\n"
        );
        let four = "data.http_req_cnt gt 1 ".repeat(4);
        assert_eq!(p(&format!("show table t {four}")).unwrap().len(), 4);
        assert_eq!(
            p(&format!("show table t {four}more")).unwrap_err(),
            "Detected extra data in filter, 16th word of input, after '1'\n"
        );
    }

    #[test]
    fn gpc_fallbacks_and_returns() {
        let t = table(
            StickKeyType::Ip,
            10,
            None,
            vec![
                store(StickData::Gpc, 0, 2),
                store(StickData::GpcRate, 1000, 2),
                store(StickData::Gpt, 0, 1),
            ],
        );
        let e = t.get_or_create(&ip_key(&t, "1.1.1.1")).unwrap();
        assert_eq!(e.inc_gpc01(&t, 0), Some(1));
        assert_eq!(e.inc_gpc01(&t, 1), Some(1));
        assert_eq!(e.inc_gpc01(&t, 1), Some(2));
        assert_eq!(e.get(&t, StickData::Gpc1, 0), Some(2));
        assert_eq!(e.get(&t, StickData::Gpc, 1), Some(2));
        assert_eq!(e.get(&t, StickData::Gpc1Rate, 0), Some(2));
        assert_eq!(e.clr_gpc01(&t, 1), Some(2));
        assert_eq!(e.get(&t, StickData::Gpc, 1), Some(0));
        assert_eq!(
            e.get(&t, StickData::GpcRate, 1),
            Some(2),
            "clr leaves the rate"
        );
        assert!(e.set_gpt0(&t, (1 << 32) + 5));
        assert_eq!(e.get(&t, StickData::Gpt, 0), Some(5), "32-bit");
        assert_eq!(e.get(&t, StickData::Gpc, 2), None);
        assert_eq!(e.inc_gpc(&t, 2), None);
        assert_eq!(e.get(&t, StickData::ConnCnt, 0), None);
        let r = table(
            StickKeyType::Ip,
            10,
            None,
            vec![store(StickData::Gpc0Rate, 1000, 1)],
        );
        let e = r.get_or_create(&ip_key(&r, "1.1.1.1")).unwrap();
        assert_eq!(e.inc_gpc01(&r, 0), Some(1), "rate only: its current count");
        assert_eq!(e.inc_gpc01(&r, 0), Some(2));
        assert_eq!(e.clr_gpc01(&r, 0), None);
        assert_eq!(e.inc_gpc01(&r, 1), None);
    }

    #[test]
    fn ipv6_text_like_glibc() {
        for (a, s) in [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
            ("::2:3:4:5:6:7", "::2:3:4:5:6:7"),
            ("::1:2", "::0.1.0.2"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ] {
            assert_eq!(fmt_ipv6(&a.parse().unwrap()), s, "{a}");
        }
    }
}
