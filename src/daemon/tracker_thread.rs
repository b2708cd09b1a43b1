//! The one thread that owns the tracker: inputs in, finished calls out.
//!
//! Time inside the tracker is the packets' own capture time. When the line is
//! quiet, timers still have to fire, so once a second the thread offers the
//! wall clock, held back by `QUEUE_LAG` so that packets still waiting in the
//! queue (stamped earlier) are never "in the past" when they arrive.

use std::time::{Duration, Instant};

use crate::call::{EndReason, TrackerConfig};
use crate::capture::{Input, InputReceiver};
use crate::pipeline::Pipeline;
use crate::report::CallReport;
use crate::time::Timestamp;

const QUEUE_LAG_US: i64 = 500_000;
const TICK: Duration = Duration::from_millis(250);
/// Inputs handled between two looks at the clock and the control channel.
const BURST: usize = 4096;

pub enum Control {
    SetTimers(Box<TrackerConfig>),
}

/// What the thread shows the rest of the daemon once in a while.
pub trait Observer: Send {
    fn tick(&mut self, pipeline: &Pipeline, input: &InputReceiver);
}

/// Runs until every input sender is gone, then ends every open call with
/// `shutdown` and hands the last records on.
pub fn run(
    mut pipeline: Pipeline,
    input: InputReceiver,
    control: crossbeam_channel::Receiver<Control>,
    reports: crossbeam_channel::Sender<Vec<CallReport>>,
    mut observer: Box<dyn Observer>,
) -> Pipeline {
    let mut out: Vec<CallReport> = Vec::new();
    let mut last_tick = Instant::now();
    let send = |out: &mut Vec<CallReport>| {
        if !out.is_empty() {
            // Blocking is right here: a finished call must not be dropped, and
            // the persist thread only waits on its own disk.
            let _ = reports.send(std::mem::take(out));
        }
    };
    // Ends once every sender is gone and the queue is empty.
    while let Ok(first) = input.recv_timeout(TICK) {
        if let Some(first) = first {
            handle(&mut pipeline, first, &mut out);
            for _ in 0..BURST {
                match input.try_recv() {
                    Some(i) => handle(&mut pipeline, i, &mut out),
                    None => break,
                }
            }
        }
        send(&mut out);
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            while let Ok(c) = control.try_recv() {
                match c {
                    Control::SetTimers(t) => pipeline.tracker_mut().set_timers(&t),
                }
            }
            let now = Timestamp::now().saturating_add_micros(-QUEUE_LAG_US);
            pipeline.handle_timeout(now, &mut out);
            send(&mut out);
            observer.tick(&pipeline, &input);
        }
    }
    let open = pipeline.tracker().active_calls();
    tracing::info!(open_calls = open, "capture stopped; ending open calls");
    pipeline.close_all(Timestamp::now(), EndReason::Shutdown, &mut out);
    send(&mut out);
    observer.tick(&pipeline, &input);
    pipeline
}

fn handle(pipeline: &mut Pipeline, input: Input, out: &mut Vec<CallReport>) {
    match input {
        Input::Frame { ts, link, data } => pipeline.handle_frame(ts, link, &data, out),
        Input::Hep { ts, data } => pipeline.handle_hep(ts, &data, out),
    }
}
