//! Locking without `parking_lot`.
//!
//! `parking_lot` keeps parked threads in a process-wide table; after a `fork()` the child
//! keeps entries that point into dead threads' stacks and can crash on the next rehash.
//! `std`'s futex-based primitives keep all their state in the object itself.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Locks `mutex`. Our locks guard plain values that a panic cannot leave half-written,
/// so a poisoned lock is still good to use.
pub fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar`, holding `guard` whenever it looks, until `ready()` holds or `deadline`
/// passes; returns whether `ready()` held.
pub fn wait_until<T>(
    condvar: &Condvar,
    mut guard: MutexGuard<'_, T>,
    deadline: Instant,
    mut ready: impl FnMut() -> bool,
) -> bool {
    loop {
        if ready() {
            return true;
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return false;
        }
        guard = condvar
            .wait_timeout(guard, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}
