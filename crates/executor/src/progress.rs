//! Live progress of a run, for a display that shows tests done against the deadline.

use std::time::{Duration, Instant};

/// A snapshot of a run in flight, published on a [`tokio::sync::watch`] channel by
/// [`PytestRunner`](crate::PytestRunner) as the output streams in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// A run is in flight.
    pub running: bool,
    /// When the current (or last) run started.
    pub started: Option<Instant>,
    /// The deadline the run was given.
    pub deadline: Duration,
    /// How many tests pytest collected, once it said so.
    pub collected: Option<u64>,
    /// Tests that have reported an outcome.
    pub finished: u64,
    /// Of those, how many failed or errored.
    pub failures: u64,
    /// The test running now, if pytest has named it.
    pub current_test: Option<String>,
    /// The tests that failed or errored so far, in the order they did, at most
    /// [`Progress::MAX_NAMED_FAILURES`] of them (a display names each failure as it happens).
    pub failed_tests: Vec<String>,
}

impl Progress {
    /// Bound on [`Progress::failed_tests`]: a display names this many, then only counts.
    pub const MAX_NAMED_FAILURES: usize = 100;
}
