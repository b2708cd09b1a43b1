//! The wait between two attempts of a retry loop: exponential, capped, with
//! jitter so that many sensors (or tasks) that lost the same server do not
//! all come back in step.
//!
//! Pure arithmetic: the caller sleeps (a thread or a tokio task alike), so
//! capture threads and sinks tasks share it.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    jitter: bool,
}

impl Backoff {
    /// Starts at `min`, doubles per failure, never above `max`. Each wait is
    /// drawn from the upper half of its step.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
            jitter: true,
        }
    }

    /// The exact steps, for loops whose waits a test or a user counts on.
    pub fn without_jitter(mut self) -> Backoff {
        self.jitter = false;
        self
    }

    /// The step before jitter: what `next` would wait at most.
    pub fn current(&self) -> Duration {
        self.min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max)
    }

    /// The wait before the next attempt; each call counts one more failure.
    pub fn next_wait(&mut self) -> Duration {
        let step = self.current();
        self.attempt = self.attempt.saturating_add(1);
        if !self.jitter {
            return step;
        }
        let half = step / 2;
        let spread = (step - half).as_nanos().min(u128::from(u64::MAX)) as u64;
        // A fresh RandomState is seeded from the OS: enough to spread retries.
        let r = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        half + Duration::from_nanos(r % spread.saturating_add(1))
    }

    /// After a success: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_a_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let waits: Vec<Duration> = (0..12).map(|_| b.next_wait()).collect();
        assert!(waits[0] <= Duration::from_millis(500));
        assert!(waits[0] >= Duration::from_millis(250));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(60)));
        assert!(waits[11] >= Duration::from_secs(30));
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(500));
    }

    #[test]
    fn without_jitter_the_steps_are_exact() {
        let mut b =
            Backoff::new(Duration::from_millis(100), Duration::from_secs(10)).without_jitter();
        let waits: Vec<u128> = (0..9).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(b.next_wait() <= Duration::from_secs(60));
        }
    }
}
