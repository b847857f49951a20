//! Lock helpers. A panic while holding a lock must not take the whole server
//! down with it: the data behind these locks stays consistent at every
//! `.await`-free step, so a poisoned lock is simply taken over.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, recovering from poisoning.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
