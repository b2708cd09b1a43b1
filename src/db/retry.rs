//! Waiting for a database that is away: say why once, retry quietly.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::DbError;
use crate::backoff::Backoff;

/// Says a database failure once, loudly, and its repeats quietly: a server
/// that stays away for an hour should not fill the log with a line per retry,
/// but a change of cause (refused, then a wrong password) is news.
#[derive(Debug, Default)]
pub struct FailureLog {
    shown: Option<String>,
    repeats: u64,
}

impl FailureLog {
    /// `what` is the line's message, e.g. "database unavailable; finished
    /// calls wait in the outbox".
    pub fn failed(&mut self, what: &str, e: &DbError, retry_in: Duration) {
        let text = e.to_string();
        if self.shown.as_deref() == Some(text.as_str()) {
            self.repeats += 1;
            tracing::debug!(error = %text, retry_in = ?retry_in, repeats = self.repeats, "{what}");
            return;
        }
        tracing::warn!(error = %text, retry_in = ?retry_in, "{what}");
        self.shown = Some(text);
        self.repeats = 0;
    }

    /// The last cause said, if the database has not answered since.
    pub fn last(&self) -> Option<&str> {
        self.shown.as_deref()
    }

    /// The database answered: the next failure is news again.
    pub fn recovered(&mut self) {
        if self.shown.take().is_some() {
            tracing::info!(
                failed_attempts = self.repeats + 1,
                "the database answers again"
            );
        }
        self.repeats = 0;
    }
}

/// Runs `attempt` until it succeeds, fails in a way waiting cannot fix (a
/// wrong password, no such database), or `deadline` passes (`None`: never),
/// sleeping `backoff` between attempts and telling `log` (message `what`).
/// The last attempt is made at the deadline; its error is the one returned.
pub async fn retry_until<T, F, Fut>(
    deadline: Option<Instant>,
    backoff: &mut Backoff,
    log: &mut FailureLog,
    what: &str,
    mut attempt: F,
) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    loop {
        let e = match attempt().await {
            Ok(v) => {
                log.recovered();
                return Ok(v);
            }
            Err(e) if !e.is_unavailable() => return Err(e),
            Err(e) => e,
        };
        let mut wait = backoff.next_wait();
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(e);
            }
            wait = wait.min(left);
        }
        log.failed(what, &e, wait);
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn refused() -> DbError {
        DbError::Refused {
            addr: "127.0.0.1:5433".into(),
        }
    }

    fn quick() -> Backoff {
        Backoff::new(Duration::from_millis(20), Duration::from_millis(200))
    }

    #[tokio::test]
    async fn a_server_that_starts_late_is_waited_for() {
        let up_at = Instant::now() + Duration::from_millis(600);
        let tries = AtomicU32::new(0);
        let deadline = Some(Instant::now() + Duration::from_secs(10));
        let mut log = FailureLog::default();
        let got = retry_until(deadline, &mut quick(), &mut log, "test", || async {
            tries.fetch_add(1, Ordering::Relaxed);
            if Instant::now() < up_at {
                Err(refused())
            } else {
                Ok("connected")
            }
        })
        .await
        .unwrap();
        assert_eq!(got, "connected");
        assert!(tries.load(Ordering::Relaxed) > 1);
        assert!(log.last().is_none(), "the recovery was told");
        // Retried at most the cap after it came up, not at the deadline.
        assert!(Instant::now() < up_at + Duration::from_secs(2));
    }

    #[tokio::test]
    async fn it_gives_up_at_the_deadline_with_the_cause() {
        let started = Instant::now();
        let wait = Duration::from_millis(700);
        let mut log = FailureLog::default();
        let e = retry_until(
            Some(started + wait),
            &mut quick(),
            &mut log,
            "test",
            || async { Err::<(), _>(refused()) },
        )
        .await
        .unwrap_err();
        let took = started.elapsed();
        assert!(took >= wait, "gave up early: {took:?}");
        assert!(
            took < wait + Duration::from_secs(1),
            "gave up late: {took:?}"
        );
        assert!(e
            .to_string()
            .contains("connection refused to 127.0.0.1:5433"));
        // Said once, then quietly: every later attempt was a repeat.
        assert!(log.repeats > 0);
        assert_eq!(log.last(), Some(e.to_string().as_str()));
    }

    #[tokio::test]
    async fn wrong_credentials_are_not_retried() {
        let tries = AtomicU32::new(0);
        let deadline = Some(Instant::now() + Duration::from_secs(30));
        let mut log = FailureLog::default();
        let e = retry_until(deadline, &mut quick(), &mut log, "test", || async {
            tries.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>(DbError::AuthRefused {
                addr: "127.0.0.1:5432".into(),
                user: "nobody".into(),
                source: sqlx::Error::Protocol("password authentication failed".into()),
            })
        })
        .await
        .unwrap_err();
        assert!(matches!(e, DbError::AuthRefused { .. }));
        assert_eq!(tries.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn repeats_are_remembered_until_the_database_answers() {
        let mut log = FailureLog::default();
        log.failed("x", &refused(), Duration::from_secs(1));
        log.failed("x", &refused(), Duration::from_secs(1));
        assert_eq!(log.repeats, 1);
        assert!(log.last().unwrap().contains("connection refused"));
        log.recovered();
        assert!(log.last().is_none());
    }
}
