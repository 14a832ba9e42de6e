//! `balance roundrobin`: a model of HAProxy's "fast weighted round robin"
//! (FWRR) scheduler, used to precompute the exact order in which HAProxy
//! hands out servers of one group (active or backup) when no server is
//! saturated.
//!
//! Model (each server has an effective weight `ew = weight * 16`; the group
//! has `curr_pos`, `curr_weight`, `next_weight`, all starting at the sum of
//! `ew`): servers sit in one of three ordered trees — `curr` (keyed by next
//! position), `init` and `next` (keyed by `4096 - ew`); equal keys keep
//! insertion order. A pick takes the head of `curr` if its position has been
//! reached, else the head of `init` (position reset), else the head of
//! `curr` anyway; when nothing is left, `init` and `next` swap, and the
//! window restarts at `curr_pos = curr_weight = next_weight`. The picked
//! server's position advances by `next_weight / ew` (plus carried
//! remainder), `curr_pos` advances by one, and the server is requeued in
//! `curr` or, if beyond the window, in `next`.
//!
//! The schedule is periodic once the per-window state repeats; [`sequence`]
//! simulates until that happens and returns a prefix plus a cycle, so the
//! request path only needs an atomic counter.

use std::collections::{BTreeSet, HashMap};

const EWGHT_MAX: u32 = 256 * 16;
const UWGHT_RANGE: u32 = 256;
const SCALE: u32 = 16;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Tree {
    None,
    Curr,
    T0,
    T1,
}

#[derive(Clone, Copy, Debug)]
struct Srv {
    ew: u32,
    npos: u32,
    /// position before the last pick (used when the weight changes)
    lpos: u32,
    rweight: u32,
    tree: Tree,
    key: u32,
    ins: u64,
}

/// The running FWRR state of one server group (active or backup).
#[derive(Clone, Debug)]
pub struct Group {
    srv: Vec<Srv>,
    curr: BTreeSet<(u32, u64, usize)>,
    t0: BTreeSet<(u32, u64, usize)>,
    t1: BTreeSet<(u32, u64, usize)>,
    init_is_t0: bool,
    curr_pos: u32,
    curr_weight: u32,
    next_weight: u32,
    ins: u64,
}

impl Group {
    /// Initial state for servers with effective weights `ews` (`weight *
    /// 16`) of which those with `up[i]` are usable, in declaration order.
    pub fn new(ews: &[u32], up: &[bool]) -> Group {
        let ok = |i: usize| up[i] && ews[i] > 0;
        let tot: u32 = (0..ews.len()).filter(|&i| ok(i)).map(|i| ews[i]).sum();
        let mut g = Group {
            srv: ews
                .iter()
                .map(|&ew| Srv {
                    ew,
                    npos: 0,
                    lpos: 0,
                    rweight: 0,
                    tree: Tree::None,
                    key: 0,
                    ins: 0,
                })
                .collect(),
            curr: BTreeSet::new(),
            t0: BTreeSet::new(),
            t1: BTreeSet::new(),
            init_is_t0: true,
            curr_pos: tot,
            curr_weight: tot,
            next_weight: tot,
            ins: 0,
        };
        for i in 0..ews.len() {
            if ok(i) {
                let init = g.init_tree();
                g.queue_by_weight(init, i);
            }
        }
        g
    }

    /// True when server `i` is in the scheduler (usable).
    pub fn is_up(&self, i: usize) -> bool {
        self.srv[i].tree != Tree::None
    }

    /// Server `i` goes down (maintenance, failed checks).
    pub fn set_down(&mut self, i: usize) {
        if !self.is_up(i) {
            return;
        }
        self.next_weight -= self.srv[i].ew;
        self.dequeue(i);
    }

    /// Server `i` comes back up: it is placed a fraction of a window ahead
    /// of the current position.
    pub fn set_up(&mut self, i: usize) {
        let ew = self.srv[i].ew;
        if self.is_up(i) || ew == 0 {
            return;
        }
        self.next_weight += ew;
        let s = &mut self.srv[i];
        s.npos = self.curr_pos.wrapping_add(
            self.next_weight
                .wrapping_add(self.curr_weight)
                .wrapping_sub(self.curr_pos)
                / ew,
        );
        self.queue_srv(i);
    }

    /// Set the effective weight of a server that is not in the scheduler.
    pub fn set_ew(&mut self, i: usize, ew: u32) {
        self.srv[i].ew = ew;
    }

    /// Effective weight change of a usable server (HAProxy's weight update:
    /// a server going to/from 0 goes down/up; otherwise its next position
    /// is recomputed from its last one with the new step).
    pub fn set_weight(&mut self, i: usize, ew: u32) {
        let old = self.srv[i].ew;
        let was_up = self.is_up(i);
        if !was_up && ew == 0 {
            self.srv[i].ew = ew;
            return;
        }
        if !was_up {
            self.srv[i].ew = ew;
            self.set_up(i);
            return;
        }
        if ew == 0 {
            self.set_down(i);
            self.srv[i].ew = ew;
            return;
        }
        self.next_weight = self.next_weight.wrapping_sub(old).wrapping_add(ew);
        self.srv[i].ew = ew;
        let init = self.init_tree();
        if self.srv[i].tree == init {
            self.dequeue(i);
            self.queue_by_weight(init, i);
            return;
        }
        if self.srv[i].tree == self.next_tree() {
            self.srv[i].npos = self.srv[i].npos.wrapping_add(self.curr_weight);
        }
        let step = self.next_weight / ew;
        let s = &mut self.srv[i];
        let prev_next = s.npos;
        s.npos = s.lpos.wrapping_add(step);
        s.rweight = 0;
        if s.npos > prev_next {
            s.npos = prev_next;
        }
        if s.npos < self.curr_pos.wrapping_add(2) {
            s.npos = self.curr_pos.wrapping_add(step);
        }
        self.dequeue(i);
        self.queue_srv(i);
    }

    /// Perform `n` picks (state only).
    pub fn advance(&mut self, n: usize) {
        for _ in 0..n {
            if self.next(|_| {}).is_none() {
                break;
            }
        }
    }

    /// The schedule from this state on (`None` when no server is up, or when
    /// the cycle is too long to precompute).
    pub fn schedule(&self) -> Option<Schedule> {
        schedule_from(self.clone())
    }

    fn init_tree(&self) -> Tree {
        if self.init_is_t0 { Tree::T0 } else { Tree::T1 }
    }
    fn next_tree(&self) -> Tree {
        if self.init_is_t0 { Tree::T1 } else { Tree::T0 }
    }

    fn tree_mut(&mut self, t: Tree) -> &mut BTreeSet<(u32, u64, usize)> {
        match t {
            Tree::Curr => &mut self.curr,
            Tree::T0 => &mut self.t0,
            Tree::T1 => &mut self.t1,
            Tree::None => unreachable!(),
        }
    }

    fn insert(&mut self, t: Tree, i: usize, key: u32) {
        self.ins += 1;
        let ins = self.ins;
        let s = &mut self.srv[i];
        s.tree = t;
        s.key = key;
        s.ins = ins;
        self.tree_mut(t).insert((key, ins, i));
    }

    fn dequeue(&mut self, i: usize) {
        let s = self.srv[i];
        if s.tree != Tree::None {
            self.tree_mut(s.tree).remove(&(s.key, s.ins, i));
            self.srv[i].tree = Tree::None;
        }
    }

    fn queue_by_weight(&mut self, t: Tree, i: usize) {
        let key = EWGHT_MAX - self.srv[i].ew;
        self.insert(t, i, key);
    }

    fn queue_srv(&mut self, i: usize) {
        let s = self.srv[i];
        if s.ew == 0
            || s.npos >= 2 * self.curr_weight
            || s.npos >= self.curr_weight + self.next_weight
        {
            self.srv[i].npos = s.npos.wrapping_sub(self.curr_weight);
            let next = self.next_tree();
            self.queue_by_weight(next, i);
        } else {
            let key = UWGHT_RANGE
                .wrapping_mul(s.npos)
                .wrapping_add((EWGHT_MAX + s.rweight - s.ew) / SCALE);
            self.insert(Tree::Curr, i, key);
        }
    }

    fn take_candidate(&mut self) -> Option<usize> {
        let s1 = self.curr.first().map(|&(_, _, i)| i);
        if let Some(i) = s1 {
            let s = self.srv[i];
            if s.ew > 0 && s.npos <= self.curr_pos {
                return Some(i);
            }
        }
        let init = if self.init_is_t0 { &self.t0 } else { &self.t1 };
        if let Some(&(_, _, i)) = init.first()
            && self.srv[i].ew > 0
        {
            self.srv[i].npos = 0;
            self.srv[i].rweight = 0;
            return Some(i);
        }
        s1
    }

    fn update_position(&mut self, i: usize) {
        let nw = self.next_weight;
        let cp = self.curr_pos;
        let s = &mut self.srv[i];
        if s.ew == 0 {
            return;
        }
        if s.npos == 0 {
            s.npos = cp;
        }
        s.lpos = s.npos;
        s.npos = s.npos.wrapping_add(nw / s.ew);
        s.rweight += nw % s.ew;
        if s.rweight >= s.ew {
            s.rweight -= s.ew;
            s.npos = s.npos.wrapping_add(1);
        }
    }

    fn switch_trees(&mut self) {
        self.init_is_t0 = !self.init_is_t0;
        self.curr_weight = self.next_weight;
        self.curr_pos = self.curr_weight;
    }

    /// One pick; `on_switch` is called right after a tree switch.
    pub fn next(&mut self, mut on_switch: impl FnMut(&Group)) -> Option<usize> {
        if self.curr_weight == 0 {
            self.curr_pos = self.next_weight;
            self.curr_weight = self.next_weight;
        }
        let mut switched = false;
        let i = loop {
            if let Some(i) = self.take_candidate() {
                break i;
            }
            if switched {
                return None;
            }
            switched = true;
            self.switch_trees();
            on_switch(self);
        };
        self.update_position(i);
        self.dequeue(i);
        self.curr_pos = self.curr_pos.wrapping_add(1);
        self.queue_srv(i);
        Some(i)
    }

    /// One pick with HAProxy's handling of saturated servers (`full(i)`)
    /// and of the server to avoid: such servers are taken out (their
    /// position still advances), then put back after the choice (in the
    /// next window when the window switched meanwhile). `None` when every
    /// server is full (the request would be queued).
    pub fn next_live(
        &mut self,
        full: impl Fn(usize) -> bool,
        avoid: Option<usize>,
    ) -> Option<usize> {
        let mut switched = false;
        let mut avoided: Option<usize> = None;
        let mut fullsrv: Vec<usize> = Vec::new();
        let chosen = 'outer: loop {
            if self.curr_weight == 0 {
                self.curr_pos = self.next_weight;
                self.curr_weight = self.next_weight;
            }
            let i = loop {
                if let Some(i) = self.take_candidate() {
                    break i;
                }
                if switched {
                    break 'outer avoided;
                }
                switched = true;
                self.switch_trees();
            };
            self.update_position(i);
            self.dequeue(i);
            self.curr_pos = self.curr_pos.wrapping_add(1);
            if !full(i) {
                if Some(i) != avoid || avoided.is_some() {
                    break Some(i);
                }
                avoided = Some(i);
            }
            fullsrv.push(i);
        };
        if let Some(i) = chosen {
            self.queue_srv(i);
        }
        // Put the extracted servers back, most recently extracted first:
        // into `init` by weight when the window switched (their place is
        // lost), else as if they had been consumed.
        for &i in fullsrv.iter().rev() {
            if Some(i) == chosen {
                continue;
            }
            if switched {
                let init = self.init_tree();
                self.queue_by_weight(init, i);
            } else {
                self.queue_srv(i);
            }
        }
        chosen
    }

    /// A hashable image of the scheduling state (tree order, not insertion
    /// stamps).
    fn state(&self) -> Vec<u32> {
        let mut v = vec![
            self.curr_pos,
            self.curr_weight,
            self.next_weight,
            self.init_is_t0 as u32,
        ];
        for t in [&self.curr, &self.t0, &self.t1] {
            v.push(u32::MAX);
            for &(k, _, i) in t {
                v.push(k);
                v.push(i as u32);
            }
        }
        for s in &self.srv {
            v.push(s.npos);
            v.push(s.lpos);
            v.push(s.rweight);
            v.push(s.ew);
        }
        v
    }
}

/// The FWRR schedule of one group: `seq[..prefix]` happens once, then
/// `seq[prefix..]` repeats forever. Entries are indexes into `ews`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub prefix: usize,
    pub seq: Vec<u32>,
    /// Scheduler states at the start of picks `k * CHECKPOINT`, so that the
    /// state at any position can be rebuilt quickly.
    checkpoints: Vec<Group>,
}

/// Picks between two saved scheduler states.
const CHECKPOINT: usize = 1 << 14;

impl PartialEq for Group {
    fn eq(&self, other: &Self) -> bool {
        self.state() == other.state()
    }
}
impl Eq for Group {}

impl Schedule {
    /// The server handed out by the n-th pick (n starts at 0).
    pub fn at(&self, n: u64) -> u32 {
        let n = n as usize;
        if n < self.prefix || self.seq.len() == self.prefix {
            return self.seq[n.min(self.seq.len() - 1)];
        }
        let cyc = self.seq.len() - self.prefix;
        self.seq[self.prefix + (n - self.prefix) % cyc]
    }

    /// The scheduler state at the start of the n-th pick.
    pub fn state_at(&self, n: u64) -> Group {
        let idx = self.index(n);
        let mut g = self.checkpoints[idx / CHECKPOINT].clone();
        g.advance(idx % CHECKPOINT);
        g
    }

    /// Index in `seq` of the n-th pick.
    pub fn index(&self, n: u64) -> usize {
        let n = n as usize;
        if n < self.prefix {
            return n;
        }
        let cyc = self.seq.len() - self.prefix;
        self.prefix + (n - self.prefix) % cyc.max(1)
    }
}

/// Upper bound on precomputed picks (only reachable with hundreds of heavy
/// servers); beyond it [`Group::schedule`] gives up.
const MAX_PICKS: usize = 1 << 20;

/// Compute the FWRR schedule for servers with effective weights `ews`
/// (`weight * 16`, 0 for unusable servers), in declaration order, from the
/// initial state. Returns `None` when no server has a weight.
pub fn sequence(ews: &[u32]) -> Option<Schedule> {
    Group::new(ews, &vec![true; ews.len()]).schedule()
}

/// Simulate from `g` until the state at the start of a pick that follows a
/// window switch repeats; the state at the start of pick `n` then equals the
/// state at the start of pick `Schedule::index(n)`.
fn schedule_from(mut g: Group) -> Option<Schedule> {
    if g.next_weight == 0 && g.curr.is_empty() {
        return None;
    }
    let mut seen: HashMap<Vec<u32>, usize> = HashMap::new();
    let mut seq: Vec<u32> = Vec::new();
    let mut checkpoints = Vec::new();
    let mut switched = false;
    loop {
        if switched {
            let st = g.state();
            if let Some(&j) = seen.get(&st) {
                return Some(Schedule {
                    prefix: j,
                    seq,
                    checkpoints,
                });
            }
            seen.insert(st, seq.len());
        }
        if seq.len().is_multiple_of(CHECKPOINT) {
            checkpoints.push(g.clone());
        }
        switched = false;
        let i = g.next(|_| switched = true)?;
        seq.push(i as u32);
        if seq.len() >= MAX_PICKS {
            // too long to precompute: the caller runs the scheduler live
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ews: &[u32], n: usize) -> String {
        let s = sequence(ews).unwrap();
        (0..n as u64)
            .map(|k| char::from(b'a' + s.at(k) as u8))
            .collect()
    }

    #[test]
    fn lb_fwrr_equal_weights_rotate() {
        assert_eq!(names(&[16, 16, 16], 9), "abcabcabc");
    }

    /// Orders observed from the real HAProxy 2.6.12 (sequential requests
    /// right after start-up).
    #[test]
    fn lb_fwrr_matches_measured_orders() {
        assert_eq!(names(&[16, 32, 48], 24), "cbcacbcbcacbcbcacbcbcacb");
        assert_eq!(
            names(&[48, 16, 32, 112, 16], 28),
            "dadcdadbdedcaddadcdadbdedcad"
        );
    }

    #[test]
    fn lb_fwrr_state_at_matches_simulation() {
        let ews = [48u32, 16, 32, 112, 16];
        let g0 = Group::new(&ews, &[true; 5]);
        let s = g0.schedule().unwrap();
        let mut g = g0.clone();
        for n in 0..(3 * s.seq.len() as u64 + 7) {
            if n % 97 == 0 || n as usize == s.prefix {
                assert_eq!(s.state_at(n).state(), g.state(), "pick {n}");
            }
            assert_eq!(g.next(|_| {}), Some(s.at(n) as usize));
        }
    }

    #[test]
    fn lb_fwrr_schedule_is_periodic() {
        for ews in [&[16u32, 32, 48][..], &[48, 16, 32, 112, 16], &[16, 0, 16]] {
            let s = sequence(ews).unwrap();
            let tot: u32 = ews.iter().sum::<u32>() / 16;
            let cyc = &s.seq[s.prefix..];
            assert!(!cyc.is_empty());
            // over a cycle every server gets a share proportional to weight
            for (i, &ew) in ews.iter().enumerate() {
                let c = cyc.iter().filter(|&&x| x as usize == i).count() as u32;
                assert_eq!(c * tot, (ew / 16) * cyc.len() as u32, "{ews:?}");
            }
        }
    }
}
