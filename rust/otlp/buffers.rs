//! Spare byte buffers, passed from one request to the next.
//!
//! A batch's spans are written into buffers of a few hundred kilobytes. Freed, glibc
//! hands such buffers back to the OS, and the next batch pays a page fault for every
//! 4 KiB it writes: measured, a third of the encoding time. Kept here, they are reused.

use std::sync::Mutex;

/// Buffers kept at most; a batch uses one per scope, plus its serialized body.
const SPARE_BUFFERS: usize = 8;
/// A bigger buffer (from an unusually large batch) is let go rather than kept.
const LARGEST_KEPT: usize = 8 << 20;

#[derive(Default)]
pub struct BufferPool {
    spare: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// An empty buffer, with room from an earlier request when one is spare.
    ///
    /// Only `try_lock` is used: a child forked while another thread held the lock finds
    /// it taken forever, and then simply allocates.
    pub fn take(&self) -> Vec<u8> {
        self.spare
            .try_lock()
            .ok()
            .and_then(|mut spare| spare.pop())
            .unwrap_or_default()
    }

    pub fn give(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() == 0 || buffer.capacity() > LARGEST_KEPT {
            return;
        }
        if let Ok(mut spare) = self.spare.try_lock() {
            if spare.len() < SPARE_BUFFERS {
                buffer.clear();
                spare.push(buffer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_comes_back_empty_with_its_room() {
        let pool = BufferPool::default();
        assert_eq!(pool.take().capacity(), 0);
        let mut buffer = Vec::with_capacity(1000);
        buffer.extend_from_slice(b"old");
        pool.give(buffer);
        let again = pool.take();
        assert!(again.is_empty() && again.capacity() >= 1000);
        assert_eq!(pool.take().capacity(), 0);
    }

    #[test]
    fn the_pool_is_bounded() {
        let pool = BufferPool::default();
        for _ in 0..SPARE_BUFFERS + 3 {
            pool.give(Vec::with_capacity(10));
        }
        pool.give(Vec::with_capacity(LARGEST_KEPT + 1));
        let kept = std::iter::from_fn(|| Some(pool.take()))
            .take_while(|b| b.capacity() > 0)
            .count();
        assert_eq!(kept, SPARE_BUFFERS);
    }

    #[test]
    fn a_held_lock_means_a_fresh_buffer() {
        let pool = BufferPool::default();
        pool.give(Vec::with_capacity(10));
        let _held = pool.spare.lock().unwrap();
        assert_eq!(pool.take().capacity(), 0);
    }
}
