//! Test-only helpers that may touch the real clock, which `core` itself never does.

use std::time::Instant;

/// An arbitrary base instant for tests; only the differences from it matter.
pub fn t0() -> Instant {
    Instant::now()
}
