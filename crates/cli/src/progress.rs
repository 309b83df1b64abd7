//! Live progress of `warden verify` on a terminal: one line on stderr, redrawn in place.
//!
//! The runner publishes [`Progress`] snapshots as pytest's output streams in; a task samples
//! them ten times a second and shows tests done, failures so far, the time against the
//! deadline and the test running now. The line is cleared when the run ends, so the report
//! that follows stands alone, and log lines are written above it ([`write_log`]), never
//! through it. Nothing is shown with `--json` or when stderr is not a terminal (the caller
//! decides).

use std::io::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use warden_executor::Progress;

/// Redraws per second, at most.
const REDRAWS_PER_SECOND: u8 = 10;

/// The progress line on screen, if any: log lines are written around it, not through it.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Writes one log event to stderr; while the progress line is shown, it is lifted for the
/// write and redrawn below, so the two never tear each other.
pub(crate) fn write_log(event: &[u8]) {
    let shown = SHOWN.lock().unwrap_or_else(PoisonError::into_inner);
    // A log line that cannot be written has nowhere else to go.
    let write = || {
        let _ = std::io::stderr().lock().write_all(event);
    };
    match shown.as_ref() {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// The progress line while it is shown.
pub(crate) struct LiveProgress {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

impl LiveProgress {
    /// Starts showing the progress of `target`'s runs on stderr (call within the runtime).
    pub(crate) fn start(target: &str, mut progress: watch::Receiver<Progress>) -> LiveProgress {
        let bar = ProgressBar::with_draw_target(
            None,
            ProgressDrawTarget::stderr_with_hz(REDRAWS_PER_SECOND),
        );
        // `wide_msg` cuts the line to the terminal's width, so it never wraps.
        bar.set_style(
            ProgressStyle::with_template("{wide_msg}").unwrap_or_else(|_| {
                // The template is a literal; should it ever fail to parse, the default shows too.
                ProgressStyle::default_spinner()
            }),
        );
        *SHOWN.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
        let label = target.to_owned();
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_secs(1) / u32::from(REDRAWS_PER_SECOND));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let snapshot = progress.borrow_and_update().clone();
                shown.set_message(line(&label, &snapshot, Instant::now()));
            }
        });
        LiveProgress { bar, task }
    }

    /// Stops and clears the line.
    pub(crate) fn finish(self) {
        self.task.abort();
        SHOWN.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.bar.finish_and_clear();
    }
}

/// The progress line for a snapshot taken at `now`.
fn line(target: &str, progress: &Progress, now: Instant) -> String {
    let Some(started) = progress.started else {
        return format!("{target}: preparing");
    };
    if !progress.running {
        return format!("{target}: {} tests done, finishing", progress.finished);
    }
    let done = match progress.collected {
        Some(collected) => format!("{}/{collected} tests", progress.finished),
        None => format!("{} tests", progress.finished),
    };
    let failures = match progress.failures {
        0 => String::new(),
        1 => ", 1 failing".to_owned(),
        n => format!(", {n} failing"),
    };
    let elapsed = now.saturating_duration_since(started);
    let mut text = format!(
        "{target}: {done}{failures}, {} of {}",
        seconds(elapsed),
        seconds(progress.deadline)
    );
    if let Some(test) = &progress.current_test {
        text.push_str(" | ");
        text.push_str(test);
    }
    text
}

/// Seconds with one decimal below a minute, whole seconds above.
fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        format!("{} s", duration.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_is_happening() {
        let now = Instant::now();
        let idle = Progress::default();
        assert_eq!(
            line("runtime/tests", &idle, now),
            "runtime/tests: preparing"
        );

        let running = Progress {
            running: true,
            started: now.checked_sub(Duration::from_millis(2_500)),
            deadline: Duration::from_secs(300),
            collected: Some(40),
            finished: 12,
            failures: 2,
            current_test: Some("runtime/tests/test_a.py::test_b".into()),
        };
        assert_eq!(
            line("runtime/tests", &running, now),
            "runtime/tests: 12/40 tests, 2 failing, 2.5 s of 300 s | \
             runtime/tests/test_a.py::test_b"
        );

        let uncounted = Progress {
            collected: None,
            failures: 0,
            current_test: None,
            ..running.clone()
        };
        assert_eq!(line("t", &uncounted, now), "t: 12 tests, 2.5 s of 300 s");

        let ended = Progress {
            running: false,
            ..running
        };
        assert_eq!(line("t", &ended, now), "t: 12 tests done, finishing");
    }
}
