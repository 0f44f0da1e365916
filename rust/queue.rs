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

    /// An empty queue of the same capacity and policy that allocates nothing until an item comes.
    #[must_use]
    pub fn emptied(&self) -> Self {
        Self::with_ring(self.capacity, self.policy, false)
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
mod tests;
