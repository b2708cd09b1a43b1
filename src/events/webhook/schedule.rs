//! When to try a delivery again, and what an answer means. Pure: the
//! dispatcher brings the clock and the dice.

use std::time::Duration;

/// Waits are drawn from ±20% of the schedule's step, so endpoints that
/// failed together do not come back together.
const JITTER: f64 = 0.2;

/// The waits between attempts: after the first failure the first wait,
/// and so on; past the last the delivery has failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    waits: Vec<Duration>,
}

/// What one attempt's answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again; `after` when the receiver said when (Retry-After).
    Retry {
        after: Option<Duration>,
    },
    /// 410: the receiver wants no more; the endpoint is disabled.
    Gone,
}

impl Schedule {
    pub fn from_secs(secs: &[u64]) -> Schedule {
        Schedule {
            waits: secs.iter().map(|s| Duration::from_secs(*s)).collect(),
        }
    }

    pub fn from_waits(waits: Vec<Duration>) -> Schedule {
        Schedule { waits }
    }

    /// Attempts a delivery gets in all.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.waits.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The longest wait: what a Retry-After is capped at.
    pub fn max_wait(&self) -> Duration {
        self.waits.iter().copied().max().unwrap_or(Duration::ZERO)
    }

    /// The wait after `failed` attempts (1 after the first), or `None` when
    /// the schedule is used up. A receiver's Retry-After replaces the step,
    /// capped at the longest one; `dice` in [0, 1) draws the jitter.
    pub fn wait(&self, failed: u32, retry_after: Option<Duration>, dice: f64) -> Option<Duration> {
        let step = *self
            .waits
            .get(usize::try_from(failed.checked_sub(1)?).ok()?)?;
        Some(match retry_after {
            Some(asked) => asked.min(self.max_wait()),
            None => jitter(step, dice),
        })
    }
}

/// `d` moved by up to ±20%, by `dice` in [0, 1).
pub fn jitter(d: Duration, dice: f64) -> Duration {
    let factor = 1.0 + JITTER * (2.0 * dice.clamp(0.0, 1.0) - 1.0);
    d.mul_f64(factor)
}

/// A number in [0, 1) from the OS-seeded hasher, as `backoff` does: enough
/// to spread retries.
pub fn dice() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (r >> 11) as f64 / (1u64 << 53) as f64
}

/// The verdict on an HTTP status; `retry_after` is the header's value,
/// heeded on 429 and 503, `now_secs` the clock for a date in it.
pub fn verdict(status: u16, retry_after: Option<&str>, now_secs: i64) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        429 | 503 => Verdict::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, now_secs)),
        },
        _ => Verdict::Retry { after: None },
    }
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now_secs: i64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?.timestamp();
    Some(Duration::from_secs(
        u64::try_from(at.saturating_sub(now_secs)).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_default_schedule_runs_out_after_its_last_wait() {
        let sched = Schedule::from_secs(&[5, 300, 1800, 7200, 18_000, 36_000, 36_000]);
        assert_eq!(sched.attempts(), 8);
        assert_eq!(sched.wait(0, None, 0.5), None, "nothing failed yet");
        assert_eq!(sched.wait(1, None, 0.5), Some(s(5)));
        assert_eq!(sched.wait(2, None, 0.5), Some(s(300)));
        assert_eq!(sched.wait(7, None, 0.5), Some(s(36_000)));
        assert_eq!(sched.wait(8, None, 0.5), None);
        // About a day in all, as the specification's schedule.
        let total: Duration = (1..8).filter_map(|n| sched.wait(n, None, 0.5)).sum();
        assert_eq!(total, s(99_305));
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        let sched = Schedule::from_secs(&[100]);
        assert_eq!(sched.wait(1, None, 0.0), Some(s(80)));
        let top = sched.wait(1, None, 0.999_999).unwrap();
        assert!(
            top > Duration::from_secs_f64(119.99) && top < s(120),
            "{top:?}"
        );
        for _ in 0..1000 {
            let d = dice();
            assert!((0.0..1.0).contains(&d));
            let w = sched.wait(1, None, d).unwrap();
            assert!(w >= s(80) && w < s(120), "{w:?}");
        }
    }

    #[test]
    fn retry_after_replaces_the_step_up_to_the_longest() {
        let sched = Schedule::from_secs(&[1, 1, 60]);
        assert_eq!(sched.wait(1, Some(s(30)), 0.0), Some(s(30)));
        assert_eq!(sched.wait(1, Some(s(86_400)), 0.0), Some(s(60)));
        assert_eq!(
            sched.wait(4, Some(s(1)), 0.0),
            None,
            "still counts as an attempt"
        );
    }

    #[test]
    fn answers() {
        let now = 1_445_412_480; // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(verdict(200, None, now), Verdict::Delivered);
        assert_eq!(verdict(204, Some("5"), now), Verdict::Delivered);
        assert_eq!(verdict(410, None, now), Verdict::Gone);
        assert_eq!(verdict(500, Some("5"), now), Verdict::Retry { after: None });
        assert_eq!(verdict(301, None, now), Verdict::Retry { after: None });
        assert_eq!(
            verdict(429, Some("7"), now),
            Verdict::Retry { after: Some(s(7)) }
        );
        assert_eq!(
            verdict(503, Some("Wed, 21 Oct 2015 07:30:00 GMT"), now),
            Verdict::Retry {
                after: Some(s(120))
            }
        );
        assert_eq!(
            verdict(503, Some("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Verdict::Retry { after: Some(s(0)) }
        );
        assert_eq!(
            verdict(429, Some("soon"), now),
            Verdict::Retry { after: None }
        );
    }
}
