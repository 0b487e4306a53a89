//! The connection cap and each source's share of it (docs/spec/security.md "Bounded
//! resources"): each connection costs memory (buffers, a task), so a flood would otherwise grow
//! the process for as long as it lasts, and one host holding every place would lock everyone
//! else out. At the cap an idle connection is closed to make room (the most connected
//! source's first); only when none is idle is the new connection closed at once. Pure rules
//! over a registry, unit-tested here; the accept loop (`mod.rs`) applies them and each
//! connection's IO (`connection.rs`) keeps its `ConnState` current.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

/// What the accept loop knows of one open connection, shared with the connection's IO.
#[derive(Default)]
pub(super) struct ConnState {
    /// Bytes were read since the last response byte was written: a request is on its way or
    /// being served. Only a connection that is not busy may be closed to make room.
    pub(super) busy: AtomicBool,
    /// Told to close: its next read (while not busy) is an end of file, which hyper answers by
    /// closing the connection; a request under way finishes first.
    pub(super) evicted: AtomicBool,
    /// The read waiting on the socket, woken to see `evicted`.
    pub(super) waker: Mutex<Option<Waker>>,
}

impl ConnState {
    pub(super) fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        let waker = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The open connections of one listener, by source: what the cap and the shares count.
#[derive(Default)]
pub(super) struct Registry {
    next_id: u64,
    conns: HashMap<u64, (IpAddr, Arc<ConnState>)>,
    per_source: HashMap<IpAddr, usize>,
    /// Connections told to close that are still open.
    evicting: usize,
}

/// The answer to a new connection.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    Admit,
    /// Admit it, and close this idle connection to make room.
    AdmitEvicting(u64),
    Refuse,
}

impl Registry {
    /// Whether a connection from `source` may open: under its share (trusted proxies have
    /// none) and under the cap, or else in place of an idle connection — the source's own
    /// when it is at its share, the most connected source's at the cap. The longest-open idle
    /// connection goes first (ids grow with age).
    pub(super) fn admission(&self, source: IpAddr, share: Option<usize>, cap: usize) -> Admission {
        let held = self.per_source.get(&source).copied().unwrap_or(0);
        let live = self.conns.len() - self.evicting;
        let idle = |s: &Arc<ConnState>| {
            !s.busy.load(Ordering::Acquire) && !s.evicted.load(Ordering::Acquire)
        };
        if share.is_some_and(|share| held >= share) {
            return self
                .conns
                .iter()
                .filter(|(_, (src, s))| *src == source && idle(s))
                .map(|(id, _)| *id)
                .min()
                .map_or(Admission::Refuse, Admission::AdmitEvicting);
        }
        // Twice the cap at most, whatever is closing.
        if self.conns.len() >= cap.saturating_mul(2) {
            return Admission::Refuse;
        }
        if live < cap {
            return Admission::Admit;
        }
        self.conns
            .iter()
            .filter(|(_, (_, s))| idle(s))
            .map(|(id, (src, _))| {
                let n = self.per_source.get(src).copied().unwrap_or(0);
                (std::cmp::Reverse(n), *id)
            })
            .min()
            .map_or(Admission::Refuse, |(_, id)| Admission::AdmitEvicting(id))
    }

    pub(super) fn add(&mut self, source: IpAddr, state: Arc<ConnState>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(id, (source, state));
        *self.per_source.entry(source).or_default() += 1;
        id
    }

    pub(super) fn evict(&mut self, id: u64) {
        if let Some((_, s)) = self.conns.get(&id)
            && !s.evicted.load(Ordering::Acquire)
        {
            self.evicting += 1;
            s.evict();
        }
    }

    pub(super) fn remove(&mut self, id: u64) {
        let Some((source, s)) = self.conns.remove(&id) else {
            return;
        };
        if s.evicted.load(Ordering::Acquire) {
            self.evicting = self.evicting.saturating_sub(1);
        }
        if let Some(n) = self.per_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&source);
            }
        }
    }
}

pub(super) fn lock(r: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn open(r: &mut Registry, source: IpAddr, busy: bool) -> u64 {
        let s = Arc::new(ConnState::default());
        s.busy.store(busy, Ordering::Release);
        r.add(source, s)
    }

    #[test]
    fn a_source_at_its_share_replaces_its_own_idle_connection_or_is_refused() {
        let mut r = Registry::default();
        let first = open(&mut r, ip(1), false);
        open(&mut r, ip(1), true);
        assert_eq!(
            r.admission(ip(1), Some(2), 100),
            Admission::AdmitEvicting(first)
        );
        r.evict(first);
        // Its idle one is closing: nothing else of its own is idle.
        assert_eq!(r.admission(ip(1), Some(2), 100), Admission::Refuse);
        // Others are not held to its share; a trusted proxy has none.
        assert_eq!(r.admission(ip(2), Some(2), 100), Admission::Admit);
        assert_eq!(r.admission(ip(1), None, 100), Admission::Admit);
    }

    #[test]
    fn at_the_cap_the_busiest_sources_oldest_idle_connection_makes_room() {
        let mut r = Registry::default();
        let a = open(&mut r, ip(1), false);
        let b1 = open(&mut r, ip(2), true);
        let b2 = open(&mut r, ip(2), false);
        let b3 = open(&mut r, ip(2), false);
        assert_eq!(
            r.admission(ip(3), Some(10), 4),
            Admission::AdmitEvicting(b2)
        );
        r.evict(b2);
        // The one closing no longer counts against the cap.
        assert_eq!(r.admission(ip(3), Some(10), 4), Admission::Admit);
        open(&mut r, ip(3), true);
        assert_eq!(
            r.admission(ip(3), Some(10), 4),
            Admission::AdmitEvicting(b3)
        );
        r.evict(b3);
        open(&mut r, ip(3), true);
        // ip(2) has 3 (two closing), ip(3) 2 busy: only ip(1)'s idle one is left.
        assert_eq!(r.admission(ip(4), Some(10), 4), Admission::AdmitEvicting(a));
        r.remove(b2);
        r.remove(b3);
        r.remove(a);
        let _ = b1;
        // Every connection busy: refused.
        open(&mut r, ip(4), true);
        assert_eq!(r.admission(ip(5), Some(10), 4), Admission::Refuse);
        assert_eq!(r.evicting, 0);
    }

    #[test]
    fn closing_connections_never_let_the_total_pass_twice_the_cap() {
        let mut r = Registry::default();
        for _ in 0..4 {
            let id = open(&mut r, ip(1), false);
            r.evict(id);
        }
        open(&mut r, ip(2), false);
        assert_eq!(r.admission(ip(3), Some(10), 2), Admission::Refuse);
    }
}
