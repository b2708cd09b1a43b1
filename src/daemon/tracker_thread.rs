//! The one thread that owns the tracker: inputs in, events out to the
//! recorder thread, which hands finished calls on to the sinks.
//!
//! Time inside the tracker is the packets' own capture time. When the line is
//! quiet, timers still have to fire, so once a second the thread offers the
//! wall clock, held back by `QUEUE_LAG` so that packets still waiting in the
//! queue (stamped earlier) are never "in the past" when they arrive.

use std::time::{Duration, Instant};

use crate::call::{EndReason, TrackerConfig};
use crate::capture::{Input, InputReceiver};
use crate::pipeline::Pipeline;
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
/// `shutdown`; the last records are handed on once every recording is done.
pub fn run(
    mut pipeline: Pipeline,
    input: InputReceiver,
    control: crossbeam_channel::Receiver<Control>,
    mut observer: Box<dyn Observer>,
) -> Pipeline {
    let mut last_tick = Instant::now();
    // Ends once every sender is gone and the queue is empty.
    while let Ok(first) = input.recv_timeout(TICK) {
        if let Some(first) = first {
            handle(&mut pipeline, first);
            for _ in 0..BURST {
                match input.try_recv() {
                    Some(i) => handle(&mut pipeline, i),
                    None => break,
                }
            }
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            while let Ok(c) = control.try_recv() {
                match c {
                    Control::SetTimers(t) => pipeline.tracker_mut().set_timers(&t),
                }
            }
            let now = Timestamp::now().saturating_add_micros(-QUEUE_LAG_US);
            pipeline.handle_timeout(now);
            observer.tick(&pipeline, &input);
        }
    }
    let open = pipeline.tracker().active_calls();
    tracing::info!(open_calls = open, "capture stopped; ending open calls");
    pipeline.close_all(Timestamp::now(), EndReason::Shutdown);
    observer.tick(&pipeline, &input);
    pipeline
}

fn handle(pipeline: &mut Pipeline, input: Input) {
    match input {
        Input::Frame { ts, link, data } => pipeline.handle_frame(ts, link, &data),
        Input::Hep { ts, data } => pipeline.handle_hep(ts, &data),
    }
}
