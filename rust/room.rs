//! Producers that wait for room in a full queue (the `block` drop policy).
//!
//! The worker must not pay for this when nobody blocks: it reads one counter after
//! each pop and takes the lock only when a producer is waiting. A `SeqCst` fence on
//! both sides (Dekker's pattern) makes sure that either the worker sees the waiter or
//! the waiter sees the room the pop made, so no wake-up is lost.
//!
//! A producer counts as waiting from its first refusal to its last try (`Waiter`), not only
//! while asleep: woken, it still has to take the GIL back before it can push, and the room is
//! kept for it meanwhile (see `PyBatchCore::leaves_room_to_waiting_producers`).

use crate::sync::{locked, wait_until};
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

#[derive(Debug, Default)]
pub struct Room {
    waiting: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
}

impl Room {
    /// Counts the calling producer as waiting until the `Waiter` is dropped.
    pub fn waiter(&self) -> Waiter<'_> {
        self.claim();
        Waiter { room: self }
    }

    /// Counts one more producer as waiting, until `unclaim`: one that waits between calls, a
    /// greenlet's `RoomWait`, which no `Waiter` can outlive a borrow for.
    pub fn claim(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
    }

    pub fn unclaim(&self) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// Producers waiting for room now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Called after room was made or shutdown began: wakes every waiting producer, if any.
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders the notification after a waiter's own check of `ready`.
            let _guard = locked(&self.lock);
            self.freed.notify_all();
        }
    }
}

/// One producer waiting for room, counted while it lives.
pub struct Waiter<'a> {
    room: &'a Room,
}

impl Waiter<'_> {
    /// Waits until `ready()` holds or `deadline` passes; returns whether `ready()` held.
    pub fn wait_for(&self, deadline: Instant, ready: impl Fn() -> bool) -> bool {
        fence(Ordering::SeqCst);
        wait_until(&self.room.freed, locked(&self.room.lock), deadline, ready)
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.room.unclaim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn a_wait_times_out_without_room() {
        let room = Room::default();
        let start = Instant::now();
        assert!(!room
            .waiter()
            .wait_for(start + Duration::from_millis(30), || false));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(room.waiting.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn room_made_by_another_thread_is_never_missed() {
        // Each round the waiter blocks with a long deadline; a lost wake-up would hang the test.
        let room = Arc::new(Room::default());
        let free = Arc::new(AtomicBool::new(false));
        for _ in 0..500 {
            free.store(false, Ordering::SeqCst);
            let maker = {
                let (room, free) = (Arc::clone(&room), Arc::clone(&free));
                thread::spawn(move || {
                    free.store(true, Ordering::SeqCst);
                    room.notify();
                })
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            assert!(room
                .waiter()
                .wait_for(deadline, || free.load(Ordering::SeqCst)));
            maker.join().unwrap();
        }
    }
}
