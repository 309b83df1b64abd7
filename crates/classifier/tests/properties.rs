//! Property tests: classification is deterministic, independent of input order, bounded, and
//! never calls a test flaky without a pass on the same code.

use proptest::prelude::*;
use warden_classifier::{Classification, CollectionFault, Gate, HistoryRun, Observation, classify};
use warden_taxonomy::{RetryContext, TestOutcome, TestResult};

const IDS: [&str; 8] = [
    "t/test_a.py::test_1",
    "t/test_a.py::test_2",
    "t/test_a.py::test_3[x]",
    "t/test_b.py::T::test_4",
    "t/test_b.py::test_5",
    "t/test_c.py::test_6",
    "t/test_bad.py",
    "t/test_imp.py",
];

fn nodeid() -> impl Strategy<Value = String> {
    prop::sample::select(IDS.to_vec()).prop_map(str::to_owned)
}

fn outcome() -> impl Strategy<Value = TestOutcome> {
    prop::sample::select(TestOutcome::ALL.to_vec())
}

fn message() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just("assert 1 == 2".to_owned()),
        Just("AssertionError".to_owned()),
        Just("E   SyntaxError: invalid syntax".to_owned()),
        Just("ImportError while loading conftest 'c.py'.".to_owned()),
        Just("ModuleNotFoundError: No module named 'x'".to_owned()),
        "[a-zA-Z :=0-9\n]{0,40}",
        ".{0,400}",
    ])
}

fn test_result() -> impl Strategy<Value = TestResult> {
    (nodeid(), outcome(), message(), prop::option::of(0u64..1000)).prop_map(
        |(nodeid, outcome, message, duration_ms)| TestResult {
            nodeid,
            outcome,
            message,
            duration_ms,
            subtests: Vec::new(),
        },
    )
}

fn fingerprint() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec!["f1", "f2", "f3"]).prop_map(str::to_owned))
}

fn observation() -> impl Strategy<Value = Observation> {
    (
        prop::sample::select(vec![
            Gate::Allowed,
            Gate::Allowed,
            Gate::Allowed,
            Gate::PolicyDenied,
            Gate::BudgetExhausted,
        ]),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::option::of(nodeid()),
        prop::sample::select(vec![
            None,
            Some(0),
            Some(1),
            Some(1),
            Some(1),
            Some(2),
            Some(3),
            Some(4),
            Some(5),
            Some(-9),
        ]),
        prop::collection::vec(test_result(), 0..12),
        prop::option::of(prop::sample::select(vec![
            CollectionFault::SyntaxError,
            CollectionFault::CollectionError,
            CollectionFault::UsageError,
            CollectionFault::InternalError,
            CollectionFault::Interrupted,
        ])),
        prop::collection::vec(message().prop_map(Option::unwrap_or_default), 0..3),
        prop::collection::vec(prop::collection::vec(test_result(), 0..6), 0..3),
        fingerprint(),
    )
        .prop_map(
            |(
                gate,
                infrastructure,
                timed_out,
                timed_out_test,
                exit_code,
                tests,
                fault,
                diagnostics,
                reruns,
                fingerprint,
            )| Observation {
                gate,
                infrastructure,
                timed_out,
                timed_out_test,
                exit_code,
                tests,
                fault: fault.filter(|_| exit_code == Some(2)),
                diagnostics,
                reruns,
                fingerprint,
                tree: warden_classifier::TreeChange::Unchanged,
            },
        )
}

fn history() -> impl Strategy<Value = Vec<HistoryRun>> {
    prop::collection::vec(
        (
            fingerprint(),
            prop::collection::vec((nodeid(), outcome()), 0..8),
        )
            .prop_map(|(fingerprint, outcomes)| HistoryRun {
                fingerprint,
                outcomes,
            }),
        0..6,
    )
}

/// A deterministic Fisher-Yates shuffle driven by `seed`.
fn shuffle<T>(items: &mut [T], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let j = (*seed % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

fn shuffled(obs: &Observation, hist: &[HistoryRun], seed: u64) -> (Observation, Vec<HistoryRun>) {
    let mut seed = seed | 1;
    let mut obs = obs.clone();
    shuffle(&mut obs.tests, &mut seed);
    shuffle(&mut obs.diagnostics, &mut seed);
    shuffle(&mut obs.reruns, &mut seed);
    for rerun in &mut obs.reruns {
        shuffle(rerun, &mut seed);
    }
    let mut hist = hist.to_vec();
    shuffle(&mut hist, &mut seed);
    for run in &mut hist {
        shuffle(&mut run.outcomes, &mut seed);
    }
    (obs, hist)
}

fn assert_bounded(verdict: &Classification) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        verdict.failure_class.is_none(),
        verdict.retry_context.is_none()
    );
    if let Some(context) = &verdict.retry_context {
        prop_assert_eq!(Some(context.failure_class), verdict.failure_class);
        prop_assert!(context.failed_tests.len() <= RetryContext::MAX_FAILED_TESTS);
        prop_assert!(context.error_messages.len() <= RetryContext::MAX_ERROR_MESSAGES);
        for (i, message) in context.error_messages.iter().enumerate() {
            prop_assert!(message.chars().count() <= RetryContext::MAX_MESSAGE_CHARS);
            prop_assert!(!message.is_empty());
            prop_assert!(
                !context.error_messages[..i].contains(message),
                "duplicate {message}"
            );
        }
        prop_assert!(!context.suggestion.is_empty());
    }
    for list in [&verdict.flaky_tests, &verdict.failed_tests] {
        prop_assert!(
            list.windows(2).all(|w| w[0] < w[1]),
            "sorted and distinct: {list:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn classification_is_deterministic(obs in observation(), hist in history()) {
        let first = classify(&obs, &hist);
        let second = classify(&obs.clone(), hist.clone());
        prop_assert_eq!(first, second);
    }

    #[test]
    fn classification_does_not_depend_on_input_order(
        obs in observation(),
        hist in history(),
        seed in any::<u64>(),
    ) {
        let (obs2, hist2) = shuffled(&obs, &hist, seed);
        prop_assert_eq!(classify(&obs, &hist), classify(&obs2, &hist2));
    }

    #[test]
    fn retry_context_stays_within_its_bounds(obs in observation(), hist in history()) {
        assert_bounded(&classify(&obs, &hist))?;
    }

    #[test]
    fn a_flake_always_has_a_pass_on_the_same_code(obs in observation(), hist in history()) {
        let verdict = classify(&obs, &hist);
        for id in &verdict.flaky_tests {
            let passed_here = obs
                .tests
                .iter()
                .chain(obs.reruns.iter().flatten())
                .any(|t| &t.nodeid == id && t.outcome == TestOutcome::Passed);
            let passed_on_same_tree = obs.fingerprint.is_some()
                && hist.iter().any(|run| {
                    run.fingerprint == obs.fingerprint
                        && run.outcomes.iter().any(|(n, o)| n == id && *o == TestOutcome::Passed)
                });
            prop_assert!(passed_here || passed_on_same_tree, "{id} has no pass on this code");
            prop_assert!(
                obs.tests.iter().any(|t| &t.nodeid == id && t.outcome.is_failure()),
                "{id} never failed"
            );
        }
    }

    #[test]
    fn history_of_other_trees_never_changes_the_verdict(obs in observation(), hist in history()) {
        let others: Vec<HistoryRun> = hist
            .into_iter()
            .filter(|run| obs.fingerprint.is_none() || run.fingerprint != obs.fingerprint)
            .collect();
        prop_assert_eq!(
            classify(&obs, &others),
            classify(&obs, std::iter::empty::<HistoryRun>())
        );
    }

    #[test]
    fn without_a_fingerprint_history_is_irrelevant(obs in observation(), hist in history()) {
        let obs = Observation { fingerprint: None, ..obs };
        prop_assert_eq!(
            classify(&obs, &hist),
            classify(&obs, std::iter::empty::<HistoryRun>())
        );
    }
}
