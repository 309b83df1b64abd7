//! The classifier on long histories: time must grow linearly with the number of history runs.
//!
//! Each history run carries 20 outcomes; half the runs are on the current tree. The two
//! currently failing tests never pass in history, so every run is read (the worst case).
//! History is streamed from a fixed pool of runs, so memory stays flat whatever its length.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use warden_classifier::{HistoryRun, Observation, classify};
use warden_taxonomy::{FailureClass, TestOutcome, TestResult};

const POOL: usize = 1_000;
const OUTCOMES_PER_RUN: usize = 20;

fn pool() -> Vec<HistoryRun> {
    (0..POOL)
        .map(|i| HistoryRun {
            fingerprint: Some(if i % 2 == 0 { "current" } else { "older" }.to_owned()),
            outcomes: (0..OUTCOMES_PER_RUN)
                .map(|t| {
                    let outcome = if (i + t) % 7 == 0 {
                        TestOutcome::Failed
                    } else {
                        TestOutcome::Passed
                    };
                    (format!("tests/test_mod_{}.py::test_{t}", t % 5), outcome)
                })
                .collect(),
        })
        .collect()
}

fn observation() -> Observation {
    let failing = |nodeid: &str| TestResult {
        nodeid: nodeid.to_owned(),
        outcome: TestOutcome::Failed,
        message: Some("assert 41 == 42".to_owned()),
        duration_ms: Some(3),
        subtests: Vec::new(),
    };
    Observation {
        exit_code: Some(1),
        tests: vec![
            failing("tests/test_new.py::test_regression"),
            failing("tests/test_new.py::test_other"),
        ],
        fingerprint: Some("current".to_owned()),
        ..Observation::default()
    }
}

fn history_length(c: &mut Criterion) {
    let pool = pool();
    let obs = observation();
    let mut group = c.benchmark_group("classify_history");
    group.sample_size(10);
    for runs in [10_000usize, 100_000, 1_000_000] {
        group.throughput(Throughput::Elements(runs as u64));
        group.bench_with_input(BenchmarkId::from_parameter(runs), &runs, |b, &runs| {
            b.iter(|| {
                let history = (0..runs).map(|i| &pool[i % POOL]);
                let verdict = classify(black_box(&obs), history);
                assert_eq!(verdict.failure_class, Some(FailureClass::TestFailure));
                verdict
            });
        });
    }
    group.finish();
}

criterion_group!(benches, history_length);
criterion_main!(benches);
