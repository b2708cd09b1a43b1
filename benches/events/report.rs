//! The outcome of one case and the tables it is printed in.

use std::time::Duration;

/// Latencies of one kind, sorted.
#[derive(Default)]
pub struct Lat(pub Vec<Duration>);

impl Lat {
    pub fn at(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let i = ((self.0.len() as f64 * q).ceil() as usize).clamp(1, self.0.len()) - 1;
        self.0[i].as_secs_f64() * 1e3
    }
    pub fn show(&self) -> String {
        format!(
            "{:.1} / {:.1} / {:.1}",
            self.at(0.5),
            self.at(0.99),
            self.at(1.0)
        )
    }
}

pub struct Outcome {
    pub backend: &'static str,
    pub case: &'static str,
    pub calls: usize,
    pub ring: Lat,
    pub done: Lat,
    /// The same, up to the event being in the log.
    pub ring_log: Lat,
    pub done_log: Lat,
    /// Screen-pops that carried at least one CRM match.
    pub matched: usize,
    pub events: usize,
    pub events_per_sec: f64,
    pub offered_per_sec: f64,
    /// CPU per 1,000 events: the whole process, and without feeder and client.
    pub cpu_process_ms: f64,
    pub cpu_daemon_ms: f64,
    /// Of the daemon's: the recorder thread (WAV files, in-flight
    /// snapshots) and the persist thread (outbox).
    pub cpu_recorder_ms: f64,
    pub cpu_persist_ms: f64,
    /// How late the feeder was at worst (it must keep its pace).
    pub feed_lag: Duration,
    pub dropped: u64,
}

pub const LATENCY_HEAD: &str = "| backend | case | 180 → call.ringing on SSE | … in the log | BYE → call.completed on SSE | … in the log | screen-pops with a match |\n|---|---|---|---|---|---|---|";
pub const LOAD_HEAD: &str = "| backend | case | events/s on SSE (offered) | CPU ms / 1,000 events: daemon | … recorder thread | … persist thread | … the rest | whole process | worst feed lag ms | events dropped |\n|---|---|---|---|---|---|---|---|---|---|";

pub fn latency_row(o: &Outcome) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {}/{} |",
        o.backend,
        o.case,
        o.ring.show(),
        o.ring_log.show(),
        o.done.show(),
        o.done_log.show(),
        o.matched,
        o.calls,
    )
}

pub fn load_row(o: &Outcome) -> String {
    format!(
        "| {} | {} | {:.0} ({:.0}) | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {} |",
        o.backend,
        o.case,
        o.events_per_sec,
        o.offered_per_sec,
        o.cpu_daemon_ms,
        o.cpu_recorder_ms,
        o.cpu_persist_ms,
        o.cpu_daemon_ms - o.cpu_recorder_ms - o.cpu_persist_ms,
        o.cpu_process_ms,
        o.feed_lag.as_secs_f64() * 1e3,
        o.dropped,
    )
}
