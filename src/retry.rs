//! The one retry schedule for upstream calls: Alibaba Cloud RPC (`acs::rpc`: Agent Identity, STS, the vault)
//! and DashScope (`llm::client`, before the first token only). *What* is retryable stays each client's call
//! (its error's `is_retryable`); *how long* to wait, *how often*, and *when to give up instead* is decided
//! here, once, so the two clients cannot drift apart again.
//!
//! The rules, in the order [`RetryPolicy::next_delay`] applies them:
//! 1. at most `max_attempts` tries in all;
//! 2. a server hint (`Retry-After`, `x-acs-retry-after`) is obeyed as given, never shortened by our jitter —
//!    but one longer than [`MAX_HINT`] means "not within this turn": give up at once;
//! 3. otherwise exponential backoff from `base_delay`, capped at `max_delay`, jittered *down* to 50–100 %;
//! 4. never a pause that ends at or past the caller's deadline: failing now says more than failing later.

use std::time::Duration;

use tokio::time::Instant;

/// The longest server-requested pause we wait out. A service that asks for more is told no: the turn fails at
/// once (the hint is in the error message) rather than sit silent in front of its caller, who may retry
/// sooner with better knowledge than ours.
pub const MAX_HINT: Duration = Duration::from_secs(10);

/// How hard to retry. The deadline always wins over these numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries, the first one included (1 = never retry).
    pub max_attempts: u32,
    /// Pause before the first retry; each later one doubles it.
    pub base_delay: Duration,
    /// Cap of the doubled pause. Jitter only ever lowers a pause, so this is a true upper bound of our own
    /// backoff (a server hint may be longer, up to [`MAX_HINT`]).
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Alibaba Cloud RPC calls (token, credentials, vault): small idempotent requests whose throttling
    /// (`Throttling.User`) clears within a second or two, so four quick tries fit well inside any turn.
    pub const ACS: RetryPolicy =
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(2) };

    /// DashScope chat calls, before anything streamed: a model that is throttled or failing tends to stay so
    /// for longer, and every retry is time the caller sees nothing — two retries, starting a little later.
    pub const MODEL: RetryPolicy =
        RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(2) };

    /// Our own pause before retry number `retry` (1 = the first retry): `base_delay * 2^(retry-1)` capped at
    /// `max_delay`, then a uniform draw from 50–100 % of that. Jitter so that callers throttled together do
    /// not come back together; at least half, so a retry still gives the upstream time to recover.
    pub fn backoff(&self, retry: u32) -> Duration {
        self.backoff_with(retry, &mut fastrand::Rng::new())
    }

    fn backoff_with(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        // The shift is bounded so a long retry count saturates at the cap instead of overflowing.
        let doubled = self.base_delay.saturating_mul(1u32 << retry.saturating_sub(1).min(16));
        let full = doubled.min(self.max_delay).as_millis() as u64;
        Duration::from_millis(rng.u64(full / 2..=full))
    }

    /// After `attempts` tries (the first one included) all failed, the last one retryably: how long to wait
    /// before the next try, or `None` to give up and report that last failure. `hint` is the server's own
    /// requested pause, if it sent one.
    pub fn next_delay(&self, attempts: u32, hint: Option<Duration>, deadline: Instant) -> Option<Duration> {
        self.next_delay_at(attempts, hint, Instant::now(), deadline, &mut fastrand::Rng::new())
    }

    fn next_delay_at(
        &self,
        attempts: u32,
        hint: Option<Duration>,
        now: Instant,
        deadline: Instant,
        rng: &mut fastrand::Rng,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let delay = match hint {
            Some(hint) if hint > MAX_HINT => return None,
            Some(hint) => hint,
            None => self.backoff_with(attempts, rng),
        };
        (now + delay < deadline).then_some(delay)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::ACS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAR: Duration = Duration::from_secs(3600);

    fn schedule(policy: &RetryPolicy, seed: u64) -> Vec<Duration> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let now = Instant::now();
        (1..).map_while(|attempts| policy.next_delay_at(attempts, None, now, now + FAR, &mut rng)).collect()
    }

    #[test]
    fn the_number_of_retries_is_bounded() {
        for seed in 0..50 {
            assert_eq!(schedule(&RetryPolicy::ACS, seed).len(), 3, "4 tries = 3 pauses");
            assert_eq!(schedule(&RetryPolicy::MODEL, seed).len(), 2, "3 tries = 2 pauses");
        }
        let never = RetryPolicy { max_attempts: 1, ..RetryPolicy::ACS };
        assert!(schedule(&never, 0).is_empty());
    }

    #[test]
    fn each_pause_is_within_half_to_all_of_the_capped_doubling() {
        for policy in [RetryPolicy::ACS, RetryPolicy::MODEL] {
            let mut rng = fastrand::Rng::with_seed(7);
            for retry in 1..40 {
                let full = (policy.base_delay * 2u32.pow(retry.min(20) - 1)).min(policy.max_delay);
                for _ in 0..200 {
                    let pause = policy.backoff_with(retry, &mut rng);
                    assert!(
                        pause <= full && pause >= full / 2,
                        "retry {retry}: {pause:?} not in {full:?}/2..={full:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_first_pauses_are_what_the_clients_were_tuned_for() {
        // The model's first pause is 100–200 ms: tests/llm.rs relies on a 60 ms deadline leaving no room for one.
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..200 {
            let model = RetryPolicy::MODEL.backoff_with(1, &mut rng);
            assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&model), "{model:?}");
            let acs = RetryPolicy::ACS.backoff_with(1, &mut rng);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&acs), "{acs:?}");
        }
    }

    #[test]
    fn jitter_spreads_the_pauses() {
        let mut rng = fastrand::Rng::with_seed(3);
        let pauses: std::collections::HashSet<_> =
            (0..100).map(|_| RetryPolicy::ACS.backoff_with(3, &mut rng)).collect();
        assert!(pauses.len() > 20, "{pauses:?}");
    }

    #[test]
    fn a_server_hint_is_obeyed_as_given_up_to_the_bound() {
        let now = Instant::now();
        let mut rng = fastrand::Rng::with_seed(0);
        let hint = Duration::from_millis(1500);
        for policy in [RetryPolicy::ACS, RetryPolicy::MODEL] {
            assert_eq!(policy.next_delay_at(1, Some(hint), now, now + FAR, &mut rng), Some(hint));
            assert_eq!(policy.next_delay_at(1, Some(MAX_HINT), now, now + FAR, &mut rng), Some(MAX_HINT));
            // Asked for longer than a turn waits: give up now rather than sit silent.
            assert_eq!(policy.next_delay_at(1, Some(MAX_HINT * 3), now, now + FAR, &mut rng), None);
            // The hint does not buy a try past the bound.
            assert_eq!(policy.next_delay_at(policy.max_attempts, Some(hint), now, now + FAR, &mut rng), None);
        }
    }

    #[test]
    fn no_pause_ends_at_or_past_the_deadline() {
        let now = Instant::now();
        let mut rng = fastrand::Rng::with_seed(0);
        let policy = RetryPolicy::MODEL;
        // Shorter than the smallest first pause (100 ms): no retry at all.
        assert_eq!(policy.next_delay_at(1, None, now, now + Duration::from_millis(60), &mut rng), None);
        let hint = Duration::from_secs(2);
        assert_eq!(policy.next_delay_at(1, Some(hint), now, now + hint, &mut rng), None);
        assert_eq!(policy.next_delay_at(1, Some(hint), now, now + hint * 2, &mut rng), Some(hint));
    }

    #[test]
    fn a_long_retry_count_saturates_at_the_cap() {
        let policy = RetryPolicy { max_attempts: u32::MAX, ..RetryPolicy::ACS };
        let mut rng = fastrand::Rng::with_seed(0);
        assert!(policy.backoff_with(u32::MAX, &mut rng) <= policy.max_delay);
    }
}
