//! A 200 MiB output flood, in a test binary of its own so that this process's peak memory
//! (VmHWM) measures the executor alone.

mod support;

use std::time::Instant;

use support::{Project, runner, vm_hwm_kib};
use warden_executor::{ResultsSource, RunOutcome, Runner};
use warden_taxonomy::TestOutcome;

const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn a_200_mib_flood_keeps_the_verdict_exact_counts_and_flat_memory() {
    let project = Project::new("flood");
    let auth = project.authorize("runtime/tests", &[], "");
    let before = vm_hwm_kib();
    let started = Instant::now();
    let ev = runner().run(&auth, auth.limits().timeout).await;
    let peak = vm_hwm_kib();
    println!(
        "flood: {} bytes of stdout in {:?}; VmHWM {} KiB before, {} KiB after",
        ev.stdout.total_bytes,
        started.elapsed(),
        before,
        peak
    );
    assert_eq!(ev.outcome, RunOutcome::TestsFailed, "{:#?}", ev.diagnostics);
    assert_eq!(ev.results_source, ResultsSource::Records);
    assert_eq!(
        (ev.counts.passed, ev.counts.failed, ev.counts.total()),
        (1, 1, 2)
    );
    let tests: Vec<(&str, TestOutcome)> = ev
        .tests
        .iter()
        .map(|t| (t.nodeid.as_str(), t.outcome))
        .collect();
    assert_eq!(
        tests,
        [
            (
                "runtime/tests/test_flood.py::test_flood",
                TestOutcome::Passed
            ),
            (
                "runtime/tests/test_flood.py::test_after_flood",
                TestOutcome::Failed
            ),
        ],
        "the fake result line in the flood is not a test"
    );
    assert!(
        ev.tests[1]
            .message
            .as_deref()
            .unwrap()
            .contains("still counted")
    );
    // The whole stream was counted and hashed; only the cap was kept.
    assert!(ev.stdout.total_bytes > 200 * MIB);
    assert!(ev.stdout.truncated);
    assert!(ev.stdout.text.len() < 51_200 + 100);
    assert!(ev.stdout.text.contains("bytes omitted"));
    assert!(
        ev.stdout.text.contains("1 failed, 1 passed"),
        "the verdict is in the kept tail"
    );
    // Memory stayed flat: nowhere near the 200 MiB that went through.
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}
