//! The bounded span queue and what happens when it is full.

use crossbeam_queue::ArrayQueue;

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

/// A lock-free bounded FIFO with a drop policy.
pub struct SpanQueue<T> {
    // Boxed: ArrayQueue is cache-line aligned (128 bytes), more than an embedding
    // Python object's allocation guarantees.
    items: Box<ArrayQueue<T>>,
    policy: DropPolicy,
}

impl<T> SpanQueue<T> {
    /// `capacity` must be at least 1.
    pub fn new(capacity: usize, policy: DropPolicy) -> Self {
        Self {
            items: Box::new(ArrayQueue::new(capacity)),
            policy,
        }
    }

    pub fn push(&self, item: T) -> Push<T> {
        match self.policy {
            DropPolicy::Oldest => match self.items.force_push(item) {
                None => Push::Queued,
                Some(evicted) => Push::QueuedEvicting(evicted),
            },
            DropPolicy::Newest | DropPolicy::Block => match self.items.push(item) {
                Ok(()) => Push::Queued,
                Err(item) => Push::Refused(item),
            },
        }
    }

    /// Moves up to `max` of the oldest items into `out`, in queue order; returns how many.
    pub fn pop_into(&self, max: usize, out: &mut Vec<T>) -> usize {
        let before = out.len();
        while out.len() - before < max {
            match self.items.pop() {
                Some(item) => out.push(item),
                None => break,
            }
        }
        out.len() - before
    }

    pub fn policy(&self) -> DropPolicy {
        self.policy
    }

    pub fn is_full(&self) -> bool {
        self.items.is_full()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.items.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

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
        let q = SpanQueue::new(3, DropPolicy::Oldest);
        for i in 0..3 {
            assert_eq!(q.push(i), Push::Queued);
            assert_eq!(q.len(), i + 1);
        }
        assert_eq!(q.push(3), Push::QueuedEvicting(0));
        let mut out = Vec::new();
        assert_eq!(q.pop_into(10, &mut out), 3);
        assert_eq!(out, vec![1, 2, 3]);
    }

    #[test]
    fn newest_policy_refuses_and_keeps_the_queue() {
        let q = SpanQueue::new(2, DropPolicy::Newest);
        q.push('a');
        q.push('b');
        assert_eq!(q.push('c'), Push::Refused('c'));
        let mut out = Vec::new();
        q.pop_into(1, &mut out);
        assert_eq!(out, vec!['a']);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn pop_into_respects_the_batch_limit() {
        let q = SpanQueue::new(10, DropPolicy::Oldest);
        (0..7).for_each(|i| {
            q.push(i);
        });
        let mut out = Vec::new();
        assert_eq!(q.pop_into(4, &mut out), 4);
        assert_eq!(q.pop_into(4, &mut out), 3);
        assert_eq!(out, (0..7).collect::<Vec<_>>());
        assert!(q.is_empty());
    }

    #[test]
    fn every_item_comes_out_once_or_is_evicted_once_under_contention() {
        let q = Arc::new(SpanQueue::new(64, DropPolicy::Oldest));
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
