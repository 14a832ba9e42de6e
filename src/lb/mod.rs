//! Server selection, exactly as HAProxy 2.6 does it.
//!
//! This module is pure (no I/O). The runtime builds one [`Balancer`] per
//! backend and calls [`Balancer::pick`] for every request (or connection in
//! TCP mode), then [`Balancer::conn_start`] / [`Balancer::conn_end`] (or the
//! RAII [`ConnGuard`]) around the time the stream is attached to the server.
//!
//! # Usage
//!
//! ```
//! use rhaproxy::lb::*;
//! use std::sync::Arc;
//! // backend: balance uri / hash-type consistent / server a, b id 1, c weight 3
//! let puids = assign_puids(&[None, Some(1), None]);
//! let weights = [1, 1, 3];
//! let servers = puids.iter().zip(weights).map(|(&p, w)| LbServer::new(p, w)).collect();
//! let algo = parse_balance(&["uri"]).unwrap();
//! let ht = parse_hash_type(&["consistent"]).unwrap();
//! let lb = Arc::new(Balancer::new(servers, algo, ht, false, 0));
//! let key = RequestKey::http(Some("10.0.0.1".parse().unwrap()), b"/img/a.png", Headers::None);
//! let srv = lb.pick(&key, None).unwrap();
//! let _guard = lb.conn_guard(srv); // counts the active connection until dropped
//! lb.set_usable(srv, false); // health check failed: tables are rebuilt
//! assert_ne!(lb.pick(&key, None), Some(srv));
//! ```
//!
//! # Concurrency design
//!
//! * Everything derived from the *usable set* (map table, consistent-hash
//!   ring, round-robin schedule, id order) lives in an immutable
//!   [`Snapshot`] behind an `Arc`. It is rebuilt by [`Balancer::set_usable`]
//!   (rare: health checks, admin actions) and published with a generation
//!   number.
//! * Each worker thread keeps a thread-local copy of the `Arc` for each
//!   balancer; the request path only does an atomic load of the generation
//!   and, when it changed, a short read-lock to refresh the copy. There is no
//!   lock on the steady-state request path.
//! * Mutable per-request state is atomics in the `Balancer` itself: the
//!   round-robin position counters, and per-server active-connection counts
//!   (`served`, used by `leastconn`, `first`, `random`, `maxconn` and
//!   `hash-balance-factor`). The one exception is `roundrobin` with
//!   `maxconn` servers or after a redispatch (see below).
//!
//! # What matches HAProxy exactly, and what does not
//!
//! * Hash algorithms (`source`, `uri`, `url_param`, `hdr`, `rdp-cookie`,
//!   `hash`) with `map-based` and `consistent`: exact, including the
//!   single-server "key 0" rule, the first-backup rule and its map-table
//!   quirk, GCD reduction, ring tie rule and the redispatch walk.
//! * `roundrobin`: HAProxy's FWRR scheduler is modelled ([`fwrr`]); its
//!   order is precomputed per usable set (prefix + cycle) and, on a state
//!   change, the scheduler state is advanced to the current position and
//!   the server is removed/re-inserted the way HAProxy does. Exact for
//!   sequential requests, including across servers going down and up.
//! * `static-rr` and the map-based missing-key fallback share HAProxy's
//!   persistent map index; the consistent-hash fallback walks the ring from
//!   the last point handed out (one pointer for the active and backup
//!   rings, moved to the next surviving point when its server goes away).
//!   Exact for sequential requests.
//!   With `maxconn` on a server, or from the first redispatch (`avoid`)
//!   on, the FWRR state runs live under the backend's writer lock (as
//!   HAProxy does under its LB lock), reproducing HAProxy's extraction and
//!   requeueing of saturated/avoided servers.
//! * `leastconn`: HAProxy's tree order (load key `(served+1)*4096/(w*16)`,
//!   0 when idle; ties: least recently repositioned) is reproduced with a
//!   per-server sequence stamp. `first`, `maxconn` and
//!   `hash-balance-factor` use the `served` counters fed by
//!   [`Balancer::conn_start`]/[`Balancer::conn_end`].
//! * `random`: power-of-`draws` choices on the consistent ring with a
//!   thread-local xorshift generator (not reproducible, by nature).
//! * Run-time weight changes ([`Balancer::set_weight`], HAProxy's
//!   `set server <b>/<s> weight`): ring points, FWRR positions and
//!   leastconn keys are updated the way HAProxy does it.
//! * `slowstart`: the runtime feeds [`slowstart_eweight`] into
//!   [`Balancer::set_eweight`] as time passes (HAProxy steps once a second).
//! * `url_param ... check_post` is supported when the runtime passes the
//!   buffered body of POST requests ([`RequestKey::post_body`]); the RDP
//!   cookie is extracted with [`key::rdp_cookie`].
//! * `minconn`/`fullconn` dynamic limits: [`Balancer::dynamic_maxconn`]
//!   (set the backend's `fullconn` with [`Balancer::set_fullconn`]).
//! * Not modelled: server/backend queues (`maxqueue`): the runtime queues
//!   when `pick` returns `None` (non-hashing algorithms) or when the hashed
//!   server is at its limit, and must count queued streams itself.
//!
//! When every usable server is saturated (`maxconn` reached) the
//! non-hashing algorithms return `None`; HAProxy then queues the request in
//! the backend.
//!
//! # HAProxy 2.6 behaviours established with the differential test
//!
//! Beyond the facts document (`compat-tests/lb_haproxy.rs` checks them all
//! against the real binary):
//! * `hdr(name)` hashes the first comma-separated element of the first
//!   occurrence (commas inside double quotes do not split), trimmed; an
//!   empty element means the round-robin fallback.
//! * With one usable server the key is 0 *before* any header/URI lookup, so
//!   the fallback walk does not move (map index and ring pointer unchanged).
//! * First backup alone with `map-based`/`static-rr`: the table has the
//!   first backup's weight as size but is filled by the smooth algorithm
//!   over *all* usable backups (weights 2 then 4: everything goes to the
//!   second backup).
//! * The `static-rr`/map fallback index survives table rebuilds (reset to 0
//!   only when beyond the new table). The consistent-hash fallback pointer
//!   is shared by the active and backup rings; when its point is removed it
//!   moves to the next surviving point (none: restart), and when a server's
//!   weight grows past its allocated points, all its points leave and come
//!   back (the pointer moves past them).
//! * FWRR: saturated/avoided servers are extracted (position advanced) and
//!   put back after the choice, most recent first; into `init` by weight
//!   when the window switched meanwhile.
//! * `leastconn`: idle servers have key 0; ties go to the least recently
//!   repositioned server (repositioned on every key change and on up/weight
//!   changes).
//! * `url_param ... check_post`: only the first byte of the body value is
//!   checked (blank: empty value; other non-token: no parameter).
//! * `rdp-cookie`: an empty cookie value falls back to round robin.
//! * `use_domain_only` reads one byte past the value (see
//!   [`key::domain_only`]).

pub mod algo;
pub mod fwrr;
pub mod hash;
pub mod key;

pub use algo::{
    Algorithm, HashMethod, HashType, assign_puids, l7_hash_tcp_warning, parse_balance,
    parse_hash_balance_factor, parse_hash_type,
};
pub use hash::{HashFn, full_hash};

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Effective-weight scale (HAProxy's BE_WEIGHT_SCALE).
const WEIGHT_SCALE: u32 = 16;
/// Largest effective weight (256 * 16).
const EWGHT_MAX: u32 = 4096;

/// One server as the load balancer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbServer {
    /// Server id (`id N` or automatic, see [`assign_puids`]).
    pub puid: u32,
    /// User weight (`weight`, default 1, 0..=256).
    pub weight: u32,
    /// `backup` server.
    pub backup: bool,
    /// `maxconn` (None or 0 = unlimited). For `minconn`, see
    /// [`Balancer::set_minconn`].
    pub maxconn: Option<u32>,
    /// Starts in maintenance (`disabled`): not usable until
    /// [`Balancer::set_usable`]`(i, true)`.
    pub disabled: bool,
}

impl LbServer {
    pub fn new(puid: u32, weight: u32) -> LbServer {
        LbServer {
            puid,
            weight,
            backup: false,
            maxconn: None,
            disabled: false,
        }
    }
}

/// HTTP request headers for `balance hdr(...)`.
#[derive(Clone, Copy, Default)]
pub enum Headers<'a> {
    /// No HTTP headers (TCP mode).
    #[default]
    None,
    /// `(name, value)` pairs in request order; names compared
    /// case-insensitively, first occurrence wins.
    List(&'a [(&'a [u8], &'a [u8])]),
    /// A lookup returning the first occurrence's raw value for a name.
    Lookup(&'a (dyn Fn(&[u8]) -> Option<&'a [u8]> + Sync)),
}

/// What a request offers as hashing input.
#[derive(Clone, Copy, Default)]
pub struct RequestKey<'a> {
    /// Client address as seen by the stream (after PROXY protocol /
    /// `set-src`). `None` for UNIX-socket clients.
    pub src: Option<IpAddr>,
    /// Request-line URI as sent (after `http-request` rewrites). `None` in
    /// TCP mode.
    pub uri: Option<&'a [u8]>,
    /// Request headers.
    pub headers: Headers<'a>,
    /// Pre-extracted input for `rdp-cookie` (cookie value) and `hash EXPR`
    /// (expression result as bytes). `None` = not found.
    pub sample: Option<&'a [u8]>,
    /// For `url_param NAME check_post`: the body buffered so far of a
    /// `POST` request (leave `None` for other methods).
    pub post_body: Option<&'a [u8]>,
}

impl<'a> RequestKey<'a> {
    /// A TCP-level key (client address only).
    pub fn tcp(src: IpAddr) -> Self {
        RequestKey {
            src: Some(src),
            ..Default::default()
        }
    }

    /// An HTTP key.
    pub fn http(src: Option<IpAddr>, uri: &'a [u8], headers: Headers<'a>) -> Self {
        RequestKey {
            src,
            uri: Some(uri),
            headers,
            sample: None,
            post_body: None,
        }
    }

    /// Raw value of the first occurrence of header `name`.
    pub fn header(&self, name: &[u8]) -> Option<&'a [u8]> {
        match self.headers {
            Headers::None => None,
            Headers::List(list) => list
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v),
            Headers::Lookup(f) => f(name),
        }
    }
}

/// Immutable lookup structures for one usable set.
#[derive(Debug)]
pub struct Snapshot {
    generation: u64,
    /// No usable server at all.
    empty: bool,
    /// First usable backup when it alone takes the traffic (no usable
    /// active server and no `option allbackups`).
    fbck: Option<usize>,
    /// Servers of the group in use, declaration order: usable active
    /// servers, or else all usable backups.
    set: Vec<usize>,
    /// HAProxy's `tot_used`.
    tot_used: usize,
    /// map-based table (`map-based` hashing and `static-rr`).
    map: Vec<u32>,
    /// Consistent-hash rings of the usable active (0) and backup (1)
    /// servers: (point key, server), sorted by key.
    rings: [Vec<(u32, u32)>; 2],
    /// The ring in use (None: no ring, or the first backup alone).
    ring_cls: Option<usize>,
    /// Total effective weight of the group (bounded load).
    tot_eweight: u32,
    /// Cumulative effective weight of the preceding servers of the same
    /// class (bounded load), per server.
    cumulative: Vec<u32>,
    /// Round-robin schedule, entries are server indexes.
    rr: Option<fwrr::Schedule>,
    /// Which FWRR group `rr` belongs to (0 active, 1 backup).
    rr_group: Option<usize>,
    /// Group sorted by id (`first`).
    by_id: Vec<usize>,
}

impl Snapshot {
    /// The map table (server indexes), for inspection and tests.
    pub fn map_table(&self) -> &[u32] {
        &self.map
    }
    /// The consistent-hash ring in use (key, server index), sorted.
    pub fn ring(&self) -> &[(u32, u32)] {
        match self.ring_cls {
            Some(c) => &self.rings[c],
            None => &[],
        }
    }
}

static NEXT_BALANCER_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static SNAP_CACHE: RefCell<Vec<(u64, Arc<Snapshot>)>> = const { RefCell::new(Vec::new()) };
    static RNG: Cell<u64> = Cell::new({
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        h.finish() | 1
    });
}

fn random_u32() -> u32 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    })
}

/// A backend's load balancer. Share it (e.g. in an `Arc`) between workers.
pub struct Balancer {
    id: u64,
    servers: Vec<LbServer>,
    algo: Algorithm,
    hash_type: HashType,
    allbackups: bool,
    hash_balance_factor: u32,
    /// backend `fullconn` (0 = none), for `minconn`
    fullconn: AtomicU32,
    /// per-server `minconn` (0 = none)
    minconn: Vec<AtomicU32>,
    /// Map weights after GCD reduction.
    map_weight: Vec<u32>,
    writer: Mutex<Writer>,
    generation: AtomicU64,
    current: RwLock<Arc<Snapshot>>,
    served: Vec<AtomicU32>,
    /// current effective weight per server (user weight x 16, less during
    /// slowstart)
    cur_eweight: Vec<AtomicU32>,
    /// current user weight per server
    cur_uweight: Vec<AtomicU32>,
    total_served: AtomicU32,
    /// leastconn: last reposition stamp per server.
    lc_stamp: Vec<AtomicU64>,
    lc_clock: AtomicU64,
    /// Picks made from the current snapshot's round-robin schedule.
    rr_pos: AtomicU64,
    /// roundrobin with `maxconn` servers, or once a redispatch asked to
    /// avoid a server: the FWRR state is run live under the writer lock
    /// (saturation and avoidance change HAProxy's order), like HAProxy's
    /// own lock.
    rr_live: AtomicBool,
    /// Map walk index (static-rr and map-based fallback), HAProxy's rr_idx.
    map_idx: AtomicU64,
    /// Key of the last ring point handed out by the consistent-hash
    /// fallback walk (`NO_POINT` = none).
    ring_last: AtomicU64,
}

const NO_POINT: u64 = u64::MAX;

/// State owned by the (rare) writers.
struct Writer {
    usable: Vec<bool>,
    /// current effective weights (user weight x 16)
    eweights: Vec<u32>,
    /// ring points allocated per server (grows with the largest weight)
    alloc_points: Vec<u32>,
    /// roundrobin only: FWRR state of the active (0) and backup (1) groups
    /// at the start of the current snapshot's schedule, with the server
    /// index of each group member.
    fwrr: Option<[(fwrr::Group, Vec<usize>); 2]>,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("servers", &self.servers)
            .field("algo", &self.algo)
            .field("hash_type", &self.hash_type)
            .field("allbackups", &self.allbackups)
            .finish()
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl Balancer {
    /// Create a balancer. Servers start usable unless
    /// [`LbServer::disabled`]. `hash_balance_factor` is
    /// `hash-balance-factor` (0 = off).
    pub fn new(
        servers: Vec<LbServer>,
        algo: Algorithm,
        hash_type: HashType,
        allbackups: bool,
        hash_balance_factor: u32,
    ) -> Balancer {
        let n = servers.len();
        let g = servers
            .iter()
            .map(|s| s.weight)
            .filter(|&w| w > 0)
            .fold(0, gcd)
            .max(1);
        let map_weight = servers.iter().map(|s| s.weight.div_ceil(g)).collect();
        let mut b = Balancer {
            id: NEXT_BALANCER_ID.fetch_add(1, Ordering::Relaxed),
            servers,
            algo,
            hash_type,
            allbackups,
            hash_balance_factor,
            fullconn: AtomicU32::new(0),
            minconn: (0..n).map(|_| AtomicU32::new(0)).collect(),
            map_weight,
            writer: Mutex::new(Writer {
                usable: vec![],
                eweights: vec![],
                alloc_points: vec![],
                fwrr: None,
            }),
            generation: AtomicU64::new(0),
            current: RwLock::new(Arc::new(Snapshot {
                generation: 0,
                empty: true,
                fbck: None,
                set: vec![],
                tot_used: 0,
                map: vec![],
                rings: [vec![], vec![]],
                ring_cls: None,
                tot_eweight: 0,
                cumulative: vec![],
                rr: None,
                rr_group: None,
                by_id: vec![],
            })),
            served: (0..n).map(|_| AtomicU32::new(0)).collect(),
            cur_eweight: (0..n).map(|_| AtomicU32::new(0)).collect(),
            cur_uweight: (0..n).map(|_| AtomicU32::new(0)).collect(),
            total_served: AtomicU32::new(0),
            lc_stamp: (0..n).map(|i| AtomicU64::new(i as u64)).collect(),
            lc_clock: AtomicU64::new(n as u64),
            rr_pos: AtomicU64::new(0),
            map_idx: AtomicU64::new(0),
            rr_live: AtomicBool::new(false),
            ring_last: AtomicU64::new(NO_POINT),
        };
        let usable: Vec<bool> = b.servers.iter().map(|s| !s.disabled).collect();
        b.rr_live = AtomicBool::new(
            matches!(b.algo, Algorithm::RoundRobin)
                && b.servers.iter().any(|s| s.maxconn.is_some_and(|m| m > 0)),
        );
        let fwrr = matches!(b.algo, Algorithm::RoundRobin).then(|| {
            [false, true].map(|backup| {
                let members: Vec<usize> =
                    (0..n).filter(|&i| b.servers[i].backup == backup).collect();
                let ews: Vec<u32> = members
                    .iter()
                    .map(|&i| b.servers[i].weight.min(256) * WEIGHT_SCALE)
                    .collect();
                let up: Vec<bool> = members.iter().map(|&i| usable[i]).collect();
                (fwrr::Group::new(&ews, &up), members)
            })
        });
        let eweights: Vec<u32> = b
            .servers
            .iter()
            .map(|s| s.weight.min(256) * WEIGHT_SCALE)
            .collect();
        for (i, &ew) in eweights.iter().enumerate() {
            b.cur_eweight[i].store(ew, Ordering::Relaxed);
            b.cur_uweight[i].store(ew / WEIGHT_SCALE, Ordering::Relaxed);
        }
        let alloc_points = eweights.clone();
        let mut w = Writer {
            usable,
            eweights,
            alloc_points,
            fwrr,
        };
        let snap = b.build(&mut w, 1);
        *b.current.get_mut().unwrap() = Arc::new(snap);
        *b.writer.get_mut().unwrap() = w;
        b.generation = AtomicU64::new(1);
        b
    }

    pub fn servers(&self) -> &[LbServer] {
        &self.servers
    }
    pub fn algorithm(&self) -> &Algorithm {
        &self.algo
    }
    pub fn hash_type(&self) -> HashType {
        self.hash_type
    }

    /// Mark server `i` usable or not. Not usable: down (checks),
    /// maintenance, or drain (HAProxy's drain behaves exactly like down
    /// for load balancing). A usable server with weight 0 still gets no
    /// traffic.
    pub fn set_usable(&self, i: usize, up: bool) {
        let mut up_all = self.usable();
        up_all[i] = up;
        self.set_usable_all(&up_all);
    }

    /// Set the usable flag of every server at once (changes are applied in
    /// server order).
    pub fn set_usable_all(&self, up: &[bool]) {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.usable.as_slice() == up {
            return;
        }
        let cur = self.snapshot();
        self.advance_rr(&mut w, &cur);
        for (i, &now_up) in up.iter().enumerate() {
            if w.usable[i] == now_up {
                continue;
            }
            w.usable[i] = now_up;
            if now_up {
                self.restamp(i);
            }
            if let Some(fw) = w.fwrr.as_mut() {
                let g = self.servers[i].backup as usize;
                let local = fw[g].1.iter().position(|&x| x == i).expect("member");
                if now_up {
                    fw[g].0.set_up(local);
                } else {
                    fw[g].0.set_down(local);
                }
            }
        }
        self.publish(&mut w, &cur);
    }

    /// Change server `i`'s user weight at run time (`set server b/s weight`,
    /// agent checks). 0 takes the server out like a down state. With the
    /// static algorithms (`static-rr`, `map-based` hashing) HAProxy only
    /// accepts 0% and 100%; any non-zero weight restores the configured one.
    pub fn set_weight(&self, i: usize, weight: u32) {
        let weight = weight.min(256);
        self.cur_uweight[i].store(weight, Ordering::Release);
        self.set_eweight(i, weight * WEIGHT_SCALE);
    }

    /// Set the *effective* weight of server `i` (user weight x 16), e.g.
    /// during `slowstart` (see [`slowstart_eweight`]). Before bringing a
    /// slow-starting server up, set its first-step effective weight, then
    /// call [`Balancer::set_usable`]; then raise it as time passes.
    pub fn set_eweight(&self, i: usize, eweight: u32) {
        let eweight = eweight.min(EWGHT_MAX);
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.eweights[i] == eweight {
            return;
        }
        let cur = self.snapshot();
        self.advance_rr(&mut w, &cur);
        let was_up = w.usable[i] && w.eweights[i] > 0;
        if eweight > w.alloc_points[i] {
            // HAProxy reallocates the server's ring points: they all leave
            // the ring and come back, so a walk pointer on one of them moves
            // on to the next point of another server.
            w.alloc_points[i] = eweight;
            let last = self.ring_last.load(Ordering::Relaxed);
            if last != NO_POINT
                && let Some(r) = cur
                    .rings
                    .iter()
                    .find(|r| r.binary_search_by_key(&(last as u32), |p| p.0).is_ok())
                && r.iter()
                    .any(|&(k, srv)| k as u64 == last && srv as usize == i)
            {
                let p = r.partition_point(|&(k, _)| (k as u64) <= last);
                let next = r[p..]
                    .iter()
                    .find(|&&(_, srv)| srv as usize != i)
                    .map_or(NO_POINT, |&(k, _)| k as u64);
                self.ring_last.store(next, Ordering::Relaxed);
            }
        }
        w.eweights[i] = eweight;
        self.cur_eweight[i].store(eweight, Ordering::Release);
        if w.usable[i] {
            self.restamp(i);
        }
        let usable = w.usable[i];
        if let Some(fw) = w.fwrr.as_mut() {
            let g = self.servers[i].backup as usize;
            let local = fw[g].1.iter().position(|&x| x == i).expect("member");
            if usable || was_up {
                fw[g].0.set_weight(local, eweight);
            } else {
                fw[g].0.set_ew(local, eweight);
            }
        }
        self.publish(&mut w, &cur);
    }

    /// Current user weight of server `i`.
    pub fn weight(&self, i: usize) -> u32 {
        self.cur_uweight[i].load(Ordering::Relaxed)
    }

    /// Current effective weight of server `i` (user weight x 16).
    pub fn eweight(&self, i: usize) -> u32 {
        self.cur_eweight[i].load(Ordering::Relaxed)
    }

    fn restamp(&self, i: usize) {
        self.lc_stamp[i].store(
            self.lc_clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }

    /// Bring the round-robin state to the current position (schedule mode).
    fn advance_rr(&self, w: &mut Writer, cur: &Snapshot) {
        if let (false, Some(fw), Some(g), Some(sched)) = (
            self.rr_live.load(Ordering::Acquire),
            w.fwrr.as_mut(),
            cur.rr_group,
            cur.rr.as_ref(),
        ) {
            let n = self.rr_pos.swap(0, Ordering::AcqRel);
            fw[g].0 = sched.state_at(n);
        }
    }

    /// Rebuild and publish the snapshot after a change.
    fn publish(&self, w: &mut Writer, cur: &Snapshot) {
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        let snap = Arc::new(self.build(w, generation));
        // When the consistent-hash walk's last point is removed, HAProxy
        // goes on from the next surviving point of that ring (none after
        // it: from the start).
        let last = self.ring_last.load(Ordering::Relaxed);
        if last != NO_POINT {
            let has = |r: &[(u32, u32)]| r.binary_search_by_key(&(last as u32), |p| p.0).is_ok();
            if let Some(c) = (0..2).find(|&c| has(&cur.rings[c]))
                && !has(&snap.rings[c])
            {
                let r = &snap.rings[c];
                let p = r.partition_point(|&(k, _)| (k as u64) < last);
                let next = r.get(p).map_or(NO_POINT, |&(k, _)| k as u64);
                self.ring_last.store(next, Ordering::Relaxed);
            }
        }
        self.rr_pos.store(0, Ordering::Release);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = snap;
        self.generation.store(generation, Ordering::Release);
    }

    /// Current usable flags.
    pub fn usable(&self) -> Vec<bool> {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .usable
            .clone()
    }

    /// The current snapshot (for inspection; `pick` does not need it).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn build(&self, w: &mut Writer, generation: u64) -> Snapshot {
        let usable = &w.usable;
        let eweights = &w.eweights;
        let n = self.servers.len();
        let ok = |i: usize| usable[i] && eweights[i] > 0;
        let act: Vec<usize> = (0..n)
            .filter(|&i| ok(i) && !self.servers[i].backup)
            .collect();
        let bck: Vec<usize> = (0..n)
            .filter(|&i| ok(i) && self.servers[i].backup)
            .collect();
        let mut cumulative = vec![0u32; n];
        let (mut ca, mut cb) = (0u32, 0u32);
        for (i, cum) in cumulative.iter_mut().enumerate() {
            if !ok(i) {
                continue;
            }
            let ew = eweights[i];
            if self.servers[i].backup {
                *cum = cb;
                cb += ew;
            } else {
                *cum = ca;
                ca += ew;
            }
        }
        let (set, fbck) = if !act.is_empty() {
            (act, None)
        } else if !bck.is_empty() && !self.allbackups {
            let f = bck[0];
            (bck, Some(f))
        } else {
            (bck, None)
        };
        let empty = set.is_empty();
        let tot_used = if fbck.is_some() { 1 } else { set.len() };
        let tot_eweight = match fbck {
            Some(f) => eweights[f],
            None => set.iter().map(|&i| eweights[i]).sum(),
        };

        let uses_map = matches!(self.algo, Algorithm::StaticRr)
            || (self.algo.is_hash() && self.hash_type.method == HashMethod::MapBased);
        let uses_ring = matches!(self.algo, Algorithm::Random { .. })
            || (self.algo.is_hash() && self.hash_type.method == HashMethod::Consistent);

        let map = if uses_map && !empty {
            let tot = match fbck {
                Some(f) => self.map_weight[f],
                None => set.iter().map(|&i| self.map_weight[i]).sum(),
            };
            self.build_map(&set, tot)
        } else {
            vec![]
        };

        let rings = if uses_ring {
            [false, true].map(|backup| {
                let mut ring = Vec::new();
                for i in (0..n).filter(|&i| ok(i) && self.servers[i].backup == backup) {
                    let pts = eweights[i].min(EWGHT_MAX);
                    let base = self.servers[i].puid.wrapping_mul(EWGHT_MAX);
                    for j in 0..pts {
                        ring.push((full_hash(base.wrapping_add(j)), i as u32));
                    }
                }
                ring.sort_unstable();
                ring
            })
        } else {
            [vec![], vec![]]
        };
        let ring_cls =
            (uses_ring && fbck.is_none() && !empty).then(|| self.servers[set[0]].backup as usize);

        let rr_group = match (&w.fwrr, fbck, empty) {
            (Some(_), None, false) => Some(self.servers[set[0]].backup as usize),
            _ => None,
        };
        let rr = rr_group
            .filter(|_| !self.rr_live.load(Ordering::Acquire))
            .and_then(|g| {
                let (group, members) = &w.fwrr.as_ref().expect("fwrr state")[g];
                let sched = group.schedule().map(|mut s| {
                    for x in s.seq.iter_mut() {
                        *x = members[*x as usize] as u32;
                    }
                    s
                });
                if sched.is_none() {
                    // cycle too long to precompute: run the scheduler live
                    self.rr_live.store(true, Ordering::Release);
                }
                sched
            });

        let mut by_id = set.clone();
        by_id.sort_by_key(|&i| self.servers[i].puid);

        Snapshot {
            generation,
            empty,
            fbck,
            set,
            tot_used,
            map,
            rings,
            ring_cls,
            tot_eweight,
            cumulative,
            rr,
            rr_group,
            by_id,
        }
    }

    /// Smooth weighted table of `tot` slots over `set` (declaration order,
    /// first server wins ties).
    fn build_map(&self, set: &[usize], tot: u32) -> Vec<u32> {
        let mut table = Vec::with_capacity(tot as usize);
        if tot == 1 {
            table.push(set[0] as u32);
            return table;
        }
        let mut score = vec![0i64; set.len()];
        let tot64 = tot as i64;
        for _ in 0..tot {
            let mut best: Option<usize> = None;
            let mut max = 0i64;
            for (k, &i) in set.iter().enumerate() {
                score[k] += self.map_weight[i] as i64;
                let v = (score[k] + tot64) / tot64;
                if best.is_none() || v > max {
                    max = v;
                    best = Some(k);
                }
            }
            let b = best.expect("non-empty set");
            table.push(set[b] as u32);
            score[b] -= tot64;
        }
        table
    }

    fn with_snapshot<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        let generation = self.generation.load(Ordering::Acquire);
        let mut f = Some(f);
        let r = SNAP_CACHE
            .try_with(|c| {
                let Ok(mut c) = c.try_borrow_mut() else {
                    return None;
                };
                let pos = c.iter().position(|(id, _)| *id == self.id);
                let idx = match pos {
                    Some(p) => {
                        if c[p].1.generation != generation {
                            c[p].1 = self.snapshot();
                        }
                        p
                    }
                    None => {
                        if c.len() >= 64 {
                            c.remove(0);
                        }
                        c.push((self.id, self.snapshot()));
                        c.len() - 1
                    }
                };
                let f = f.take()?;
                Some(f(&c[idx].1))
            })
            .ok()
            .flatten();
        match r {
            Some(r) => r,
            None => (f.take().expect("closure not consumed"))(&self.snapshot()),
        }
    }

    /// Server `i` is at its connection limit (its dynamic one with `minconn`).
    pub fn saturated(&self, i: usize) -> bool {
        match self.dynamic_maxconn(i) {
            Some(m) => self.served[i].load(Ordering::Relaxed) >= m,
            None => false,
        }
    }

    /// Set server `i`'s `minconn` (0 = none): with the backend's
    /// `fullconn`, its connection limit grows from `minconn` to `maxconn`
    /// with the backend's load.
    pub fn set_minconn(&self, i: usize, minconn: u32) {
        self.minconn[i].store(minconn, Ordering::Relaxed);
    }

    /// Set the backend's `fullconn` (HAProxy's default is 10% of the sum of
    /// the `maxconn` of the frontends using the backend). Only matters for
    /// servers with `minconn`.
    pub fn set_fullconn(&self, fullconn: u32) {
        self.fullconn.store(fullconn, Ordering::Relaxed);
    }

    /// The backend's `fullconn`, as set.
    pub fn fullconn(&self) -> u32 {
        self.fullconn.load(Ordering::Relaxed)
    }

    /// Current connection limit of server `i` (None: unlimited): `maxconn`,
    /// or with `minconn` and a backend below `fullconn`,
    /// `max(minconn, backend_conns * maxconn / fullconn)` where the backend
    /// count includes the stream being balanced.
    pub fn dynamic_maxconn(&self, i: usize) -> Option<u32> {
        let s = &self.servers[i];
        let (mut min, mut max) = (
            self.minconn[i].load(Ordering::Relaxed),
            s.maxconn.unwrap_or(0),
        );
        // as HAProxy normalises them at start-up
        if min > max {
            max = min;
        } else if max > 0 && min == 0 {
            min = max;
        }
        if max == 0 {
            return None;
        }
        let full = self.fullconn.load(Ordering::Relaxed) as u64;
        let beconn = self.total_served.load(Ordering::Relaxed) as u64 + 1;
        if beconn >= full || min == max {
            return Some(max);
        }
        Some(min.max((beconn * max as u64 / full) as u32))
    }

    /// Current active connections of server `i`.
    pub fn served(&self, i: usize) -> u32 {
        self.served[i].load(Ordering::Relaxed)
    }

    fn lc_key(&self, i: usize, served: u32) -> u32 {
        if served == 0 {
            return 0;
        }
        let ew = self.eweight(i).max(1);
        ((served as u64 + 1) * EWGHT_MAX as u64 / ew as u64) as u32
    }

    /// A connection/stream to server `i` starts (the server "takes" it).
    pub fn conn_start(&self, i: usize) {
        let old = self.served[i].fetch_add(1, Ordering::AcqRel);
        self.total_served.fetch_add(1, Ordering::AcqRel);
        if self.lc_key(i, old) != self.lc_key(i, old + 1) {
            self.lc_stamp[i].store(
                self.lc_clock.fetch_add(1, Ordering::AcqRel),
                Ordering::Release,
            );
        }
    }

    /// A connection/stream to server `i` ends.
    pub fn conn_end(&self, i: usize) {
        let old = self.served[i]
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1))
            .unwrap_or(0);
        if old == 0 {
            return;
        }
        let _ = self
            .total_served
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1));
        if self.lc_key(i, old) != self.lc_key(i, old - 1) {
            self.lc_stamp[i].store(
                self.lc_clock.fetch_add(1, Ordering::AcqRel),
                Ordering::Release,
            );
        }
    }

    /// [`Balancer::conn_start`] returning a guard that calls
    /// [`Balancer::conn_end`] on drop.
    pub fn conn_guard(self: &Arc<Self>, i: usize) -> ConnGuard {
        self.conn_start(i);
        ConnGuard {
            balancer: Arc::clone(self),
            server: i,
        }
    }

    /// Choose a server for a request (one call per load-balancing decision:
    /// the round-robin state advances).
    ///
    /// `avoid` is the server whose connection just failed when
    /// redispatching (`option redispatch`); it is honoured where HAProxy
    /// honours it (not by map-based hashing).
    ///
    /// Returns the server index, or `None` when no server is usable, when
    /// every candidate is at its connection limit (non-hashing algorithms:
    /// queue in the backend and retry when a connection ends), or for
    /// `source` with a non-IP client. Hashing algorithms return their server
    /// even when it is at its limit: the request waits in that server's
    /// queue. Call [`Balancer::conn_start`] (or [`Balancer::conn_guard`])
    /// when the stream is attached to the chosen server.
    pub fn pick(&self, key: &RequestKey<'_>, avoid: Option<usize>) -> Option<usize> {
        self.with_snapshot(|s| self.pick_in(s, key, avoid))
    }

    fn pick_in(&self, s: &Snapshot, key: &RequestKey<'_>, avoid: Option<usize>) -> Option<usize> {
        if s.empty {
            return None;
        }
        match &self.algo {
            Algorithm::RoundRobin => self.pick_fwrr(s, avoid),
            Algorithm::StaticRr => self.map_rr(s, avoid),
            Algorithm::LeastConn => self.pick_leastconn(s, avoid),
            Algorithm::First => self.pick_first(s, avoid),
            Algorithm::Random { draws } => self.pick_random(s, *draws, avoid),
            _ => {
                if matches!(self.algo, Algorithm::Source) && key.src.is_none() {
                    return None;
                }
                match self.hash_of(s, key) {
                    Some(h) => self.lookup_hash(s, h, avoid),
                    None => match self.hash_type.method {
                        HashMethod::MapBased => self.map_rr(s, avoid),
                        HashMethod::Consistent => self.chash_next(s, avoid),
                    },
                }
            }
        }
    }

    /// The hash key this request yields with the current usable set
    /// (`None` = input missing, round-robin fallback).
    pub fn request_hash(&self, key: &RequestKey<'_>) -> Option<u32> {
        self.with_snapshot(|s| self.hash_of(s, key))
    }

    fn hash_of(&self, s: &Snapshot, key: &RequestKey<'_>) -> Option<u32> {
        let ht = &self.hash_type;
        match &self.algo {
            Algorithm::Source => {
                let src = key.src?;
                if s.tot_used == 1 {
                    return Some(0);
                }
                let k = key::source_key(src);
                Some(if ht.avalanche { full_hash(k) } else { k })
            }
            Algorithm::Uri {
                whole,
                len,
                depth,
                path_only,
            } => {
                let uri = key.uri?;
                if s.tot_used == 1 {
                    return Some(0);
                }
                let uri = if *path_only { key::uri_path(uri) } else { uri };
                Some(ht.hash_bytes(key::uri_hash_input(uri, *whole, *len, *depth)))
            }
            Algorithm::UrlParam { name, check_post } => {
                let uri = key.uri?;
                let v = match key::url_param_value(uri, name.as_bytes()) {
                    Some(v) => v,
                    None if *check_post => {
                        key::url_param_body_value(key.post_body?, name.as_bytes())?
                    }
                    None => return None,
                };
                if s.tot_used == 1 {
                    return Some(0);
                }
                Some(ht.hash_bytes(v))
            }
            Algorithm::Hdr {
                name,
                use_domain_only,
            } => {
                key.uri?;
                if s.tot_used == 1 {
                    return Some(0);
                }
                let raw = key.header(name.as_bytes())?;
                let v = key::first_header_value(raw)?;
                let v = if *use_domain_only {
                    key::domain_only(v)
                } else {
                    v
                };
                Some(ht.hash_bytes(v))
            }
            Algorithm::RdpCookie { .. } => {
                // an empty cookie value means the round-robin fallback
                let v = key.sample.filter(|v| !v.is_empty())?;
                if s.tot_used == 1 {
                    return Some(0);
                }
                Some(ht.hash_bytes(v))
            }
            Algorithm::Hash { .. } => {
                let v = key.sample?;
                if s.tot_used == 1 {
                    return Some(0);
                }
                Some(ht.hash_bytes(v))
            }
            _ => None,
        }
    }

    fn lookup_hash(&self, s: &Snapshot, h: u32, avoid: Option<usize>) -> Option<usize> {
        match self.hash_type.method {
            HashMethod::MapBased => {
                if s.map.is_empty() {
                    return None;
                }
                Some(s.map[(h % s.map.len() as u32) as usize] as usize)
            }
            HashMethod::Consistent => self.chash_lookup(s, h, avoid),
        }
    }

    fn eligible(&self, s: &Snapshot, i: usize) -> bool {
        let f = self.hash_balance_factor as u64;
        let tot = s.tot_eweight as u64;
        if tot == 0 {
            return true;
        }
        let served_all = self.total_served.load(Ordering::Relaxed) as u64;
        let tot_slots = ((served_all + 1) * f).div_ceil(100);
        let per_weight = tot_slots / tot;
        let rem = tot_slots % tot;
        let ew = self.eweight(i) as u64;
        let cum = s.cumulative[i] as u64;
        let mut slots = ew * per_weight;
        slots += ((cum + ew) * rem) / tot - (cum * rem) / tot;
        if slots == 0 {
            slots = 1;
        }
        (self.served[i].load(Ordering::Relaxed) as u64) < slots
    }

    fn chash_lookup(&self, s: &Snapshot, h: u32, avoid: Option<usize>) -> Option<usize> {
        if let Some(f) = s.fbck {
            return Some(f);
        }
        let ring = s.ring();
        if ring.is_empty() {
            return None;
        }
        let len = ring.len();
        let next = ring.partition_point(|&(k, _)| k < h);
        let next = if next == len { 0 } else { next };
        let prev = if next == 0 { len - 1 } else { next - 1 };
        let dp = h.wrapping_sub(ring[prev].0);
        let dn = ring[next].0.wrapping_sub(h);
        let mut pos = if dp <= dn { prev } else { next };
        let mut srv = ring[pos].1 as usize;
        let mut wraps = 0;
        while Some(srv) == avoid || (self.hash_balance_factor != 0 && !self.eligible(s, srv)) {
            pos += 1;
            if pos == len {
                pos = 0;
                wraps += 1;
                if wraps > 1 {
                    break;
                }
            }
            srv = ring[pos].1 as usize;
        }
        Some(srv)
    }

    /// Round-robin walk of the map (static-rr, map-based fallback), with
    /// HAProxy's persistent index (reset to 0 when beyond the table).
    fn map_rr(&self, s: &Snapshot, avoid: Option<usize>) -> Option<usize> {
        let tot = s.map.len() as u64;
        if tot == 0 {
            return None;
        }
        loop {
            let prev = self.map_idx.load(Ordering::Acquire);
            let start = if prev >= tot { 0 } else { prev };
            let mut avoided = None;
            let mut chosen = None;
            for k in 0..tot {
                let pos = (start + k) % tot;
                let i = s.map[pos as usize] as usize;
                if self.saturated(i) {
                    continue;
                }
                if Some(i) != avoid {
                    chosen = Some((i, pos + 1));
                    break;
                }
                avoided = Some((i, pos + 1));
            }
            let (i, next) = chosen.or(avoided)?;
            if self
                .map_idx
                .compare_exchange(prev, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Some(i);
            }
        }
    }

    /// Round-robin walk of the ring (consistent-hash fallback): the point
    /// after the last one handed out.
    fn chash_next(&self, s: &Snapshot, avoid: Option<usize>) -> Option<usize> {
        if let Some(f) = s.fbck {
            return Some(f);
        }
        let ring = s.ring();
        let len = ring.len();
        if len == 0 {
            return None;
        }
        loop {
            let last = self.ring_last.load(Ordering::Acquire);
            let mut start = 0;
            if last != NO_POINT {
                let p = ring.partition_point(|&(k, _)| (k as u64) <= last);
                if p > 0 && ring[p - 1].0 as u64 == last {
                    start = if p == len { 0 } else { p };
                } else if let Some(c) = s.ring_cls {
                    // HAProxy keeps one pointer for both rings: when it
                    // is in the other ring, the walk goes on there until
                    // that ring's end.
                    let other = &s.rings[1 - c];
                    let q = other.partition_point(|&(k, _)| (k as u64) <= last);
                    if q > 0
                        && other[q - 1].0 as u64 == last
                        && let Some(&(k, i)) = other.get(q)
                    {
                        if self
                            .ring_last
                            .compare_exchange(last, k as u64, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                        {
                            return Some(i as usize);
                        }
                        continue;
                    }
                }
            }
            let mut avoided = None;
            let mut chosen = None;
            for k in 0..len {
                let pos = (start + k) % len;
                let i = ring[pos].1 as usize;
                if self.saturated(i) {
                    continue;
                }
                if Some(i) != avoid {
                    chosen = Some((i, pos));
                    break;
                }
                avoided = Some((i, pos));
            }
            let (i, pos) = chosen.or(avoided)?;
            if self
                .ring_last
                .compare_exchange(
                    last,
                    ring[pos].0 as u64,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                return Some(i);
            }
        }
    }

    fn pick_fwrr(&self, s: &Snapshot, avoid: Option<usize>) -> Option<usize> {
        if let Some(f) = s.fbck {
            return Some(f);
        }
        if avoid.is_some() || self.rr_live.load(Ordering::Acquire) {
            let g = s.rr_group?;
            let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            if !self.rr_live.load(Ordering::Acquire) {
                // leave the precomputed order: bring the state to the
                // current position and run it live from now on
                if let (Some(fw), Some(sched)) = (w.fwrr.as_mut(), s.rr.as_ref()) {
                    let n = self.rr_pos.swap(0, Ordering::AcqRel);
                    fw[g].0 = sched.state_at(n);
                }
                self.rr_live.store(true, Ordering::Release);
            }
            let (group, members) = &mut w.fwrr.as_mut()?[g];
            let members: &[usize] = members;
            let local_avoid = avoid.and_then(|a| members.iter().position(|&x| x == a));
            return group
                .next_live(|l| self.saturated(members[l]), local_avoid)
                .map(|l| members[l]);
        }
        let sched = s.rr.as_ref()?;
        let n = self.rr_pos.fetch_add(1, Ordering::Relaxed);
        let mut idx = sched.index(n);
        let cycle = sched.seq.len() - sched.prefix;
        let mut avoided = None;
        for _ in 0..sched.seq.len().max(1) {
            let i = sched.seq[idx] as usize;
            if !self.saturated(i) {
                if Some(i) != avoid {
                    return Some(i);
                }
                avoided = Some(i);
            }
            idx += 1;
            if idx == sched.seq.len() {
                if cycle == 0 {
                    break;
                }
                idx = sched.prefix;
            }
        }
        avoided
    }

    fn pick_leastconn(&self, s: &Snapshot, avoid: Option<usize>) -> Option<usize> {
        if let Some(f) = s.fbck {
            return Some(f);
        }
        let mut best: Option<(u32, u64, usize)> = None;
        let mut avoided = None;
        for &i in &s.set {
            let served = self.served[i].load(Ordering::Relaxed);
            if self.saturated(i) {
                continue;
            }
            if Some(i) == avoid {
                avoided = Some(i);
                continue;
            }
            let cand = (
                self.lc_key(i, served),
                self.lc_stamp[i].load(Ordering::Relaxed),
                i,
            );
            if best.is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                best = Some(cand);
            }
        }
        best.map(|b| b.2).or(avoided)
    }

    fn pick_first(&self, s: &Snapshot, avoid: Option<usize>) -> Option<usize> {
        if let Some(f) = s.fbck {
            return Some(f);
        }
        let mut avoided = None;
        for &i in &s.by_id {
            if self.saturated(i) {
                continue;
            }
            if Some(i) != avoid {
                return Some(i);
            }
            avoided = Some(i);
        }
        avoided
    }

    fn pick_random(&self, s: &Snapshot, draws: u32, avoid: Option<usize>) -> Option<usize> {
        let draws = draws.clamp(1, 64);
        let mut curr: Option<usize> = None;
        for _ in 0..draws {
            let prev = curr;
            let Some(mut c) = self.chash_lookup(s, random_u32(), avoid) else {
                curr = None;
                break;
            };
            if let Some(p) = prev
                && p != c
            {
                let sc = self.served[c].load(Ordering::Relaxed) as u64;
                let sp = self.served[p].load(Ordering::Relaxed) as u64;
                let wc = self.eweight(c) as u64;
                let wp = self.eweight(p) as u64;
                if sc * wp > sp * wc {
                    c = p;
                }
            }
            curr = Some(c);
        }
        match curr {
            Some(c) if self.saturated(c) => None,
            other => other,
        }
    }
}

/// HAProxy's slow-start effective weight: `uweight * w` where
/// `w = (16 * elapsed + slowstart) / slowstart` (whole seconds, as HAProxy
/// counts them; `slowstart` is the server's `slowstart` rounded up to
/// seconds), full weight (`uweight * 16`) once `elapsed >= slowstart`.
/// Only dynamic algorithms slow-start; static ones (`static-rr`,
/// `map-based`) use the full weight.
pub fn slowstart_eweight(uweight: u32, elapsed_secs: u64, slowstart_secs: u32) -> u32 {
    if slowstart_secs == 0 || elapsed_secs >= slowstart_secs as u64 {
        return uweight * WEIGHT_SCALE;
    }
    let ss = slowstart_secs as u64;
    let w = (WEIGHT_SCALE as u64 * elapsed_secs + ss) / ss;
    (uweight as u64 * w) as u32
}

/// Keeps a server's active-connection count incremented while alive.
#[derive(Debug)]
pub struct ConnGuard {
    balancer: Arc<Balancer>,
    server: usize,
}

impl ConnGuard {
    pub fn server(&self) -> usize {
        self.server
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.balancer.conn_end(self.server);
    }
}

#[cfg(test)]
mod tests;
