//! Locking without parking_lot.
//!
//! parking_lot keeps parked threads in a process-wide table; after a `fork()` the child
//! keeps entries that point into dead threads' stacks and can crash on the next rehash.
//! `std`'s futex-based primitives keep all their state in the object itself.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`. Our locks guard plain values that a panic cannot leave half-written,
/// so a poisoned lock is still good to use.
pub fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
