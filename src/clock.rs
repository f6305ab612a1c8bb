//! Wall-clock time as the wire and the store carry it: Unix seconds.
//!
//! Expiries kept in sessions and consent states are read by whichever instance gets the next request, so
//! they are wall-clock seconds, not `Instant`s; the wire faces' `created` fields are the same seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now (0 on a clock set before 1970).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
