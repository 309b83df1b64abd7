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

use crate::style::{Palette, Tone, escape};

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

/// What the display knows about the verification it follows.
pub(crate) struct Plan {
    /// The target as asked for.
    pub(crate) target: String,
    /// At most this many reruns of failed tests.
    pub(crate) retries: u32,
    /// Colour for the lines that name failures.
    pub(crate) palette: Palette,
}

impl LiveProgress {
    /// Starts showing the progress of the verification's runs on stderr (call within the
    /// runtime): the progress line, and above it one line per failure as it happens.
    pub(crate) fn start(plan: Plan, mut progress: watch::Receiver<Progress>) -> LiveProgress {
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
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_secs(1) / u32::from(REDRAWS_PER_SECOND));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut follow = Follow::default();
            let mut open = true;
            loop {
                // Every change is looked at (a run's last failures must be named before the
                // next run replaces them); the line is redrawn on the tick.
                let redraw = tokio::select! {
                    _ = tick.tick() => true,
                    changed = progress.changed(), if open => {
                        open = changed.is_ok();
                        false
                    }
                };
                let snapshot = progress.borrow_and_update().clone();
                for failure in follow.failures(&plan, &snapshot) {
                    shown.println(failure);
                }
                if redraw {
                    shown.set_message(line(&plan, follow.attempt, &snapshot, Instant::now()));
                }
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

/// Which attempt the snapshots belong to, and which of its failures were named already.
#[derive(Debug, Default)]
struct Follow {
    /// 0 before the first run, 1 for the first run, 2 for the first rerun, ...
    attempt: u32,
    started: Option<Instant>,
    named: usize,
}

impl Follow {
    /// The lines naming the failures `snapshot` shows that were not named yet.
    fn failures(&mut self, plan: &Plan, snapshot: &Progress) -> Vec<String> {
        if snapshot.started.is_some() && snapshot.started != self.started {
            self.started = snapshot.started;
            self.attempt += 1;
            self.named = 0;
        }
        let new = snapshot.failed_tests.get(self.named..).unwrap_or_default();
        self.named = snapshot.failed_tests.len();
        let rerun = match self.attempt {
            0 | 1 => String::new(),
            n => format!(" (rerun {}/{})", n - 1, plan.retries),
        };
        new.iter()
            .map(|nodeid| {
                format!(
                    "    {} {}{rerun}",
                    plan.palette.paint(Tone::Bad, "FAILED"),
                    escape(nodeid)
                )
            })
            .collect()
    }
}

/// The progress line for a snapshot of attempt `attempt` taken at `now`. Node ids and the
/// target are escaped: the run names its tests.
fn line(plan: &Plan, attempt: u32, progress: &Progress, now: Instant) -> String {
    let target = escape(&plan.target);
    let Some(started) = progress.started else {
        return format!("{target}: preparing");
    };
    let label = match attempt {
        0 | 1 => format!("{target}: "),
        n => {
            let tests = match progress.collected {
                Some(1) => "1 failed test".to_owned(),
                Some(n) => format!("{n} failed tests"),
                None => "the failed tests".to_owned(),
            };
            format!("{target}: rerun {}/{} of {tests}: ", n - 1, plan.retries)
        }
    };
    if !progress.running {
        return format!("{label}{} tests done, finishing", progress.finished);
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
        "{label}{done}{failures}, {} of {}",
        seconds(elapsed),
        seconds(progress.deadline)
    );
    if let Some(test) = &progress.current_test {
        text.push_str(" | ");
        text.push_str(&escape(test));
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

    fn plan() -> Plan {
        Plan {
            target: "runtime/tests".into(),
            retries: 2,
            palette: Palette::PLAIN,
        }
    }

    #[test]
    fn the_line_says_what_is_happening() {
        let now = Instant::now();
        let idle = Progress::default();
        assert_eq!(line(&plan(), 0, &idle, now), "runtime/tests: preparing");

        let running = Progress {
            running: true,
            started: now.checked_sub(Duration::from_millis(2_500)),
            deadline: Duration::from_secs(300),
            collected: Some(40),
            finished: 12,
            failures: 2,
            current_test: Some("runtime/tests/test_a.py::test_b".into()),
            failed_tests: vec![],
        };
        assert_eq!(
            line(&plan(), 1, &running, now),
            "runtime/tests: 12/40 tests, 2 failing, 2.5 s of 300 s | \
             runtime/tests/test_a.py::test_b"
        );

        let uncounted = Progress {
            collected: None,
            failures: 0,
            current_test: None,
            ..running.clone()
        };
        assert_eq!(
            line(&plan(), 1, &uncounted, now),
            "runtime/tests: 12 tests, 2.5 s of 300 s"
        );

        let rerun = Progress {
            collected: Some(3),
            finished: 1,
            failures: 0,
            current_test: None,
            ..running.clone()
        };
        assert_eq!(
            line(&plan(), 2, &rerun, now),
            "runtime/tests: rerun 1/2 of 3 failed tests: 1/3 tests, 2.5 s of 300 s"
        );

        let ended = Progress {
            running: false,
            ..running
        };
        assert_eq!(
            line(&plan(), 1, &ended, now),
            "runtime/tests: 12 tests done, finishing"
        );
    }

    #[test]
    fn each_failure_is_named_once_and_escaped() {
        let now = Instant::now();
        let mut follow = Follow::default();
        let mut snapshot = Progress {
            running: true,
            started: Some(now),
            failed_tests: vec!["t.py::a".into()],
            ..Progress::default()
        };
        assert_eq!(follow.failures(&plan(), &snapshot), ["    FAILED t.py::a"]);
        assert!(follow.failures(&plan(), &snapshot).is_empty());
        snapshot.failed_tests.push("t.py::b[\u{1b}[2J]".into());
        assert_eq!(
            follow.failures(&plan(), &snapshot),
            ["    FAILED t.py::b[\\u{1b}[2J]"]
        );
        // A new run is a rerun: its failures are named again, labelled.
        let rerun = Progress {
            started: now.checked_add(Duration::from_secs(1)),
            failed_tests: vec!["t.py::a".into()],
            ..snapshot
        };
        assert_eq!(
            follow.failures(&plan(), &rerun),
            ["    FAILED t.py::a (rerun 1/2)"]
        );
        assert_eq!(follow.attempt, 2);
    }
}
