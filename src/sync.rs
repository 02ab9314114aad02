//! The one locking helper: a mutex lock that survives poisoning.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering from poisoning: the library's critical sections
/// leave state consistent at every await-free step, so a panic elsewhere must
/// not turn into a cascade of panics here.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
