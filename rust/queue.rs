//! The bounded span queue and what happens when it is full.
//!
//! Memory follows use for large queues: up to `RING_SLOTS` slots the items live in crossbeam's
//! `ArrayQueue`, a preallocated ring (16 bytes a slot: 32 KB at the default 2048) whose push is
//! one compare-and-swap, bound check included. Larger queues keep their items in `SegQueue`,
//! which allocates a block per 31 items as they come and frees it once they are taken, so an
//! empty queue of 4,194,304 slots costs nothing (a preallocated ring cost 64 MB per lane); its
//! bound is an atomic count of slots taken, checked before an item goes in. A push there costs
//! three atomic read-modify-writes and a block allocation every 31 items: about twice the ring's.

use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_queue::{ArrayQueue, SegQueue};
use crossbeam_utils::{Backoff, CachePadded};

/// Largest queue kept in a preallocated ring: 1 MB of slots.
pub const RING_SLOTS: usize = 1 << 16;

/// What to do with a span that arrives when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropPolicy {
    /// Evict the oldest queued span to make room (the stock processor's behaviour).
    Oldest,
    /// Keep the queue as it is and refuse the new span.
    Newest,
    /// Refuse like `Newest`; the caller then waits for room (see `core.rs`).
    Block,
}

impl DropPolicy {
    /// The policy named as `drop_policy` names it: `oldest`, `newest` or `block`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "oldest" => Some(Self::Oldest),
            "newest" => Some(Self::Newest),
            "block" => Some(Self::Block),
            _ => None,
        }
    }
}

/// The result of offering a span to the queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Push<T> {
    Queued,
    /// Queued after evicting this item, the oldest one.
    QueuedEvicting(T),
    /// Refused because the queue is full; the item is handed back.
    Refused(T),
}

struct Slots<T> {
    items: SegQueue<T>,
    /// Slots taken. A push takes its slot before its item goes in and a pop gives it back
    /// after its items came out, so this is never below the number of items held, and never
    /// above the capacity.
    taken: CachePadded<AtomicUsize>,
}

/// Where the items live: see the module's comment.
enum Storage<T> {
    Ring(ArrayQueue<T>),
    Blocks(Slots<T>),
}

/// A lock-free bounded FIFO with a drop policy.
pub struct SpanQueue<T> {
    // Boxed: both storages are cache-line aligned (128 bytes), more than an embedding Python
    // object's allocation guarantees.
    storage: Box<Storage<T>>,
    capacity: usize,
    policy: DropPolicy,
}

impl<T> SpanQueue<T> {
    /// `capacity` must be at least 1.
    pub fn new(capacity: usize, policy: DropPolicy) -> Self {
        Self::with_ring(capacity, policy, capacity <= RING_SLOTS)
    }

    /// A queue in a preallocated ring (`ring`) or in blocks allocated as items come.
    fn with_ring(capacity: usize, policy: DropPolicy, ring: bool) -> Self {
        let storage = if ring {
            Storage::Ring(ArrayQueue::new(capacity))
        } else {
            Storage::Blocks(Slots {
                items: SegQueue::new(),
                taken: CachePadded::new(AtomicUsize::new(0)),
            })
        };
        Self {
            storage: Box::new(storage),
            capacity,
            policy,
        }
    }

    pub fn push(&self, item: T) -> Push<T> {
        match (&*self.storage, self.policy) {
            (Storage::Ring(ring), DropPolicy::Oldest) => match ring.force_push(item) {
                None => Push::Queued,
                Some(evicted) => Push::QueuedEvicting(evicted),
            },
            (Storage::Ring(ring), DropPolicy::Newest | DropPolicy::Block) => {
                match ring.push(item) {
                    Ok(()) => Push::Queued,
                    Err(item) => Push::Refused(item),
                }
            }
            (Storage::Blocks(slots), policy) => {
                if self.take_slot(slots) {
                    slots.items.push(item);
                    return Push::Queued;
                }
                match policy {
                    DropPolicy::Oldest => self.push_evicting(slots, item),
                    DropPolicy::Newest | DropPolicy::Block => Push::Refused(item),
                }
            }
        }
    }

    fn take_slot(&self, slots: &Slots<T>) -> bool {
        slots
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < self.capacity).then_some(taken + 1)
            })
            .is_ok()
    }

    /// The queue is full: `item` takes the slot of the oldest item, which is handed back.
    fn push_evicting(&self, slots: &Slots<T>, item: T) -> Push<T> {
        let backoff = Backoff::new();
        loop {
            if let Some(evicted) = slots.items.pop() {
                slots.items.push(item);
                return Push::QueuedEvicting(evicted);
            }
            // Full by count with nothing to take: the other slots belong to pushes and pops
            // between their two steps, a few instructions each. One of them frees a slot or
            // brings an item.
            if self.take_slot(slots) {
                slots.items.push(item);
                return Push::Queued;
            }
            backoff.snooze();
        }
    }

    /// Moves up to `max` of the oldest items into `out`, in queue order; returns how many.
    pub fn pop_into(&self, max: usize, out: &mut Vec<T>) -> usize {
        let before = out.len();
        let pop = || match &*self.storage {
            Storage::Ring(ring) => ring.pop(),
            Storage::Blocks(slots) => slots.items.pop(),
        };
        while out.len() - before < max {
            match pop() {
                Some(item) => out.push(item),
                None => break,
            }
        }
        let taken = out.len() - before;
        if let Storage::Blocks(slots) = &*self.storage {
            if taken > 0 {
                slots.taken.fetch_sub(taken, Ordering::AcqRel);
            }
        }
        taken
    }

    pub fn policy(&self) -> DropPolicy {
        self.policy
    }

    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// Items held, counting pushes under way.
    pub fn len(&self) -> usize {
        match &*self.storage {
            Storage::Ring(ring) => ring.len(),
            Storage::Blocks(slots) => slots.taken.load(Ordering::Acquire),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    /// The queue in each storage: a ring and blocks.
    fn both<T>(capacity: usize, policy: DropPolicy) -> [SpanQueue<T>; 2] {
        [true, false].map(|ring| SpanQueue::with_ring(capacity, policy, ring))
    }

    #[test]
    fn small_queues_take_a_ring_and_large_ones_blocks() {
        let small = SpanQueue::<u64>::new(RING_SLOTS, DropPolicy::Oldest);
        let large = SpanQueue::<u64>::new(RING_SLOTS + 1, DropPolicy::Oldest);
        assert!(matches!(*small.storage, Storage::Ring(_)));
        assert!(matches!(*large.storage, Storage::Blocks(_)));
    }

    #[test]
    fn alignment_needs_no_more_than_a_python_object_gives() {
        assert!(std::mem::align_of::<SpanQueue<u64>>() <= 16);
    }

    #[test]
    fn policies_are_parsed_by_name() {
        for policy in [DropPolicy::Oldest, DropPolicy::Newest, DropPolicy::Block] {
            let name = format!("{policy:?}");
            assert_eq!(DropPolicy::parse(&name.to_lowercase()), Some(policy));
            assert_eq!(DropPolicy::parse(&name), None, "names are lower case");
        }
    }

    #[test]
    fn oldest_policy_evicts_in_fifo_order() {
        for q in both(3, DropPolicy::Oldest) {
            for i in 0..3 {
                assert_eq!(q.push(i), Push::Queued);
                assert_eq!(q.len(), i + 1);
            }
            assert_eq!(q.push(3), Push::QueuedEvicting(0));
            let mut out = Vec::new();
            assert_eq!(q.pop_into(10, &mut out), 3);
            assert_eq!(out, vec![1, 2, 3]);
        }
    }

    #[test]
    fn newest_policy_refuses_and_keeps_the_queue() {
        for q in both(2, DropPolicy::Newest) {
            q.push('a');
            q.push('b');
            assert_eq!(q.push('c'), Push::Refused('c'));
            let mut out = Vec::new();
            q.pop_into(1, &mut out);
            assert_eq!(out, vec!['a']);
            assert_eq!(q.len(), 1);
        }
    }

    #[test]
    fn pop_into_respects_the_batch_limit() {
        for q in both(10, DropPolicy::Oldest) {
            (0..7).for_each(|i| {
                q.push(i);
            });
            let mut out = Vec::new();
            assert_eq!(q.pop_into(4, &mut out), 4);
            assert_eq!(q.pop_into(4, &mut out), 3);
            assert_eq!(out, (0..7).collect::<Vec<_>>());
            assert!(q.is_empty());
        }
    }

    #[test]
    fn every_item_comes_out_once_or_is_evicted_once_under_contention() {
        for ring in [true, false] {
            let q = Arc::new(SpanQueue::with_ring(64, DropPolicy::Oldest, ring));
            let producers: Vec<_> = (0..8u64)
                .map(|t| {
                    let q = Arc::clone(&q);
                    thread::spawn(move || {
                        let mut evicted = Vec::new();
                        for i in 0..10_000u64 {
                            if let Push::QueuedEvicting(e) = q.push(t * 1_000_000 + i) {
                                evicted.push(e);
                            }
                        }
                        evicted
                    })
                })
                .collect();
            let consumer = {
                let q = Arc::clone(&q);
                thread::spawn(move || {
                    let mut seen = Vec::new();
                    for _ in 0..2_000 {
                        q.pop_into(16, &mut seen);
                        thread::yield_now();
                    }
                    seen
                })
            };
            let mut all: Vec<u64> = producers
                .into_iter()
                .flat_map(|p| p.join().unwrap())
                .collect();
            all.extend(consumer.join().unwrap());
            q.pop_into(usize::MAX, &mut all);
            all.sort_unstable();
            let before = all.len();
            all.dedup();
            assert_eq!(before, all.len(), "an item came out twice");
            assert_eq!(all.len(), 80_000, "an item was lost");
        }
    }

    /// Pushes `per_thread` items from each of `threads` producers at once, with no consumer;
    /// returns every push result's evicted or refused item, and what the queue then holds.
    fn fill_from_threads(
        q: &Arc<SpanQueue<u64>>,
        threads: u64,
        per_thread: u64,
    ) -> (Vec<u64>, Vec<u64>) {
        let cap = q.capacity();
        let producers: Vec<_> = (0..threads)
            .map(|t| {
                let q = Arc::clone(q);
                thread::spawn(move || {
                    let mut out = Vec::new();
                    for i in 0..per_thread {
                        match q.push(t * 1_000_000 + i) {
                            Push::Queued => {}
                            Push::QueuedEvicting(e) | Push::Refused(e) => out.push(e),
                        }
                        assert!(q.len() <= cap, "len {} over capacity {cap}", q.len());
                    }
                    out
                })
            })
            .collect();
        let out = producers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        let mut held = Vec::new();
        q.pop_into(usize::MAX, &mut held);
        (out, held)
    }

    #[test]
    fn oldest_policy_keeps_exactly_the_bound_under_contention() {
        for ring in [true, false] {
            let q = Arc::new(SpanQueue::with_ring(64, DropPolicy::Oldest, ring));
            let (evicted, held) = fill_from_threads(&q, 8, 10_000);
            assert_eq!(held.len(), 64, "a full queue holds exactly its capacity");
            assert_eq!(
                evicted.len(),
                80_000 - 64,
                "every other item was evicted once"
            );
            // What stays is, per producer, that producer's newest items: eviction takes the oldest.
            for t in 0..8u64 {
                let mine: Vec<u64> = held
                    .iter()
                    .copied()
                    .filter(|v| v / 1_000_000 == t)
                    .collect();
                let newest = t * 1_000_000 + 10_000 - mine.len() as u64;
                assert_eq!(mine, (newest..t * 1_000_000 + 10_000).collect::<Vec<_>>());
            }
            let mut all: Vec<u64> = evicted.into_iter().chain(held).collect();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), 80_000, "an item was lost or came out twice");
        }
    }

    #[test]
    fn newest_policy_keeps_exactly_the_bound_under_contention() {
        for ring in [true, false] {
            let q = Arc::new(SpanQueue::with_ring(64, DropPolicy::Newest, ring));
            let (refused, held) = fill_from_threads(&q, 8, 10_000);
            assert_eq!(held.len(), 64);
            assert_eq!(refused.len(), 80_000 - 64);
            let mut all: Vec<u64> = refused.into_iter().chain(held).collect();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), 80_000, "an item was lost or came out twice");
        }
    }

    #[test]
    fn len_never_passes_the_bound_while_a_consumer_drains() {
        for ring in [true, false] {
            for policy in [DropPolicy::Oldest, DropPolicy::Newest] {
                let q = Arc::new(SpanQueue::with_ring(16, policy, ring));
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let consumer = {
                    let (q, stop) = (Arc::clone(&q), Arc::clone(&stop));
                    thread::spawn(move || {
                        let mut taken = Vec::new();
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            q.pop_into(5, &mut taken);
                            assert!(q.len() <= 16);
                        }
                        taken
                    })
                };
                let (dropped, held) = fill_from_threads(&q, 4, 20_000);
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                let taken = consumer.join().unwrap();
                assert!(held.len() <= 16);
                assert_eq!(
                    dropped.len() + held.len() + taken.len(),
                    80_000,
                    "{policy:?}"
                );
            }
        }
    }
}
