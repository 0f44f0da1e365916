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
fn an_emptied_queue_keeps_its_bound_and_policy_without_a_ring() {
    let ring = SpanQueue::<u64>::new(RING_SLOTS, DropPolicy::Newest);
    ring.push(1);
    let emptied = ring.emptied();
    assert!(matches!(*emptied.storage, Storage::Blocks(_)));
    assert_eq!(
        (emptied.capacity(), emptied.policy(), emptied.len()),
        (RING_SLOTS, DropPolicy::Newest, 0)
    );
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
