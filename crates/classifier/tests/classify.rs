//! Table tests: every class, the priority conflicts between them, flakes versus regressions,
//! and the retry context's content and bounds.

use std::cell::Cell;

use warden_classifier::{
    Classification, CollectionFault, Gate, HistoryRun, Observation, TreeChange, classify,
    classify_report,
};
use warden_taxonomy::{
    AttemptSummary, CapturedStream, DecisionRecord, FailureClass, RetryContext, RunStatus,
    TestCounts, TestOutcome, TestResult, VerifyReport,
};

fn result(nodeid: &str, outcome: TestOutcome, message: Option<&str>) -> TestResult {
    TestResult {
        nodeid: nodeid.into(),
        outcome,
        message: message.map(Into::into),
        duration_ms: Some(1),
        subtests: Vec::new(),
    }
}

fn pass(nodeid: &str) -> TestResult {
    result(nodeid, TestOutcome::Passed, None)
}

fn fail(nodeid: &str, message: &str) -> TestResult {
    result(nodeid, TestOutcome::Failed, Some(message))
}

fn error(nodeid: &str, message: &str) -> TestResult {
    result(nodeid, TestOutcome::Error, Some(message))
}

fn run(exit_code: Option<i32>, tests: Vec<TestResult>) -> Observation {
    Observation {
        exit_code,
        tests,
        fingerprint: Some("f-now".into()),
        ..Observation::default()
    }
}

fn history(fingerprint: Option<&str>, outcomes: &[(&str, TestOutcome)]) -> HistoryRun {
    HistoryRun {
        fingerprint: fingerprint.map(Into::into),
        outcomes: outcomes
            .iter()
            .map(|(id, outcome)| ((*id).to_owned(), *outcome))
            .collect(),
    }
}

const A: &str = "tests/test_a.py::test_a";
const B: &str = "tests/test_a.py::test_b";
const SYNTAX: &str =
    "E     File \"tests/test_bad.py\", line 1\nE       def f(:\nE   SyntaxError: invalid syntax";
const IMPORT: &str = "ImportError while importing test module 'tests/test_imp.py'.\nE   ModuleNotFoundError: No module named 'nosuchmod'";

fn class_of(obs: &Observation, hist: &[HistoryRun]) -> Option<FailureClass> {
    classify(obs, hist).failure_class
}

#[test]
fn every_class_and_priority_conflict() {
    use FailureClass::*;
    let failing = || vec![pass(B), fail(A, "assert 1 == 2")];
    let cases: Vec<(&str, Observation, Option<FailureClass>)> = vec![
        ("clean pass", run(Some(0), vec![pass(A), pass(B)]), None),
        (
            "skips and xfails pass",
            run(
                Some(0),
                vec![
                    pass(A),
                    result(B, TestOutcome::Skipped, Some("later")),
                    result("t.py::x", TestOutcome::Xfailed, None),
                ],
            ),
            None,
        ),
        (
            "policy denial beats everything",
            Observation {
                gate: Gate::PolicyDenied,
                infrastructure: true,
                timed_out: true,
                ..run(Some(2), vec![error("tests/test_bad.py", SYNTAX)])
            },
            Some(PolicyDenied),
        ),
        (
            "budget exhaustion beats infrastructure and timeout",
            Observation {
                gate: Gate::BudgetExhausted,
                infrastructure: true,
                timed_out: true,
                ..run(None, vec![])
            },
            Some(BudgetExhausted),
        ),
        (
            "infrastructure beats timeout",
            Observation {
                infrastructure: true,
                timed_out: true,
                ..run(None, vec![])
            },
            Some(Infrastructure),
        ),
        (
            "timeout beats collection errors and failures",
            Observation {
                timed_out: true,
                timed_out_test: Some(B.into()),
                ..run(None, vec![error("tests/test_bad.py", SYNTAX), fail(A, "x")])
            },
            Some(TestTimeout),
        ),
        (
            "syntax error in a test module",
            run(Some(2), vec![error("tests/test_bad.py", SYNTAX)]),
            Some(SyntaxError),
        ),
        (
            "syntax error beats an import error elsewhere",
            run(
                Some(2),
                vec![
                    error("tests/test_imp.py", IMPORT),
                    error("tests/test_bad.py", SYNTAX),
                ],
            ),
            Some(SyntaxError),
        ),
        (
            "import error at collection",
            run(Some(2), vec![error("tests/test_imp.py", IMPORT)]),
            Some(CollectionError),
        ),
        (
            "collector error without a recognisable message is still a collection error",
            run(
                Some(2),
                vec![error("tests/test_x.py", "collection failure")],
            ),
            Some(CollectionError),
        ),
        (
            "collection error beats test failures (--continue-on-collection-errors)",
            Observation {
                reruns: vec![vec![pass(A)]],
                ..run(
                    Some(1),
                    vec![error("tests/test_imp.py", IMPORT), fail(A, "assert 0")],
                )
            },
            Some(CollectionError),
        ),
        (
            "conftest that fails to import",
            Observation {
                diagnostics: vec![
                    "ImportError while loading conftest '/r/tests/conftest.py'.\n\
                     E   ModuleNotFoundError: No module named 'nosuch'"
                        .into(),
                ],
                ..run(Some(4), vec![])
            },
            Some(UsageError),
        ),
        (
            "conftest with a syntax error",
            Observation {
                diagnostics: vec![
                    "ImportError while loading conftest '/r/tests/conftest.py'.\n\
                     E   SyntaxError: invalid syntax"
                        .into(),
                ],
                ..run(Some(4), vec![])
            },
            Some(SyntaxError),
        ),
        ("bad usage", run(Some(4), vec![]), Some(UsageError)),
        (
            "internal error",
            run(Some(3), vec![pass(A)]),
            Some(InternalError),
        ),
        (
            "interrupted",
            run(Some(2), vec![pass(A)]),
            Some(Interrupted),
        ),
        (
            "killed by a foreign signal",
            run(None, vec![pass(A)]),
            Some(Interrupted),
        ),
        (
            "an exit code pytest never uses",
            run(Some(7), vec![pass(A)]),
            Some(InternalError),
        ),
        (
            "the executor's explicit fault counts",
            Observation {
                fault: Some(CollectionFault::CollectionError),
                ..run(Some(2), vec![])
            },
            Some(CollectionError),
        ),
        (
            "a derived syntax error beats a weaker explicit fault",
            Observation {
                fault: Some(CollectionFault::Interrupted),
                ..run(Some(2), vec![error("tests/test_bad.py", SYNTAX)])
            },
            Some(SyntaxError),
        ),
        (
            "diagnostics after a normal exit are not faults",
            Observation {
                diagnostics: vec!["SyntaxWarning: invalid escape; SyntaxError later".into()],
                ..run(Some(1), failing())
            },
            Some(TestFailure),
        ),
        ("nothing collected", run(Some(5), vec![]), Some(NoTests)),
        (
            "exit 0 without a single result is not a pass",
            run(Some(0), vec![]),
            Some(NoTests),
        ),
        ("a failing test", run(Some(1), failing()), Some(TestFailure)),
        (
            "an error in setup is a test failure, not a collection error",
            run(
                Some(1),
                vec![error(A, "failed on setup with \"ValueError: boom\"")],
            ),
            Some(TestFailure),
        ),
        (
            "exit 1 naming no test is still a failure",
            run(Some(1), vec![pass(A)]),
            Some(TestFailure),
        ),
        (
            "a failing entry under exit 0 is not ignored",
            run(Some(0), failing()),
            Some(TestFailure),
        ),
        (
            "fails on every rerun",
            Observation {
                reruns: vec![
                    vec![fail(A, "assert 1 == 2")],
                    vec![fail(A, "assert 1 == 2")],
                ],
                ..run(Some(1), failing())
            },
            Some(TestFailure),
        ),
        (
            "flake confirmed by the second rerun",
            Observation {
                reruns: vec![vec![fail(A, "assert 1 == 2")], vec![pass(A)]],
                ..run(Some(1), failing())
            },
            Some(TestFlake),
        ),
        (
            "a rerun that skips proves nothing",
            Observation {
                reruns: vec![vec![result(A, TestOutcome::Skipped, None)]],
                ..run(Some(1), failing())
            },
            Some(TestFailure),
        ),
        (
            "one flaky and one real failure is a failure",
            Observation {
                reruns: vec![vec![
                    pass(A),
                    fail("tests/test_c.py::test_c", "assert 2 == 3"),
                ]],
                ..run(
                    Some(1),
                    vec![
                        fail(A, "assert 1 == 2"),
                        fail("tests/test_c.py::test_c", "assert 2 == 3"),
                    ],
                )
            },
            Some(TestFailure),
        ),
        (
            "timeout beats a flake",
            Observation {
                timed_out: true,
                reruns: vec![vec![pass(A)]],
                ..run(None, failing())
            },
            Some(TestTimeout),
        ),
    ];
    for (name, obs, expected) in cases {
        let got = classify(&obs, std::iter::empty::<HistoryRun>());
        assert_eq!(got.failure_class, expected, "case: {name}");
        assert_eq!(
            got.status(),
            expected.map_or(RunStatus::Passed, FailureClass::status),
            "case: {name}"
        );
        assert_eq!(
            got.retry_context.is_some(),
            expected.is_some(),
            "case: {name}"
        );
        if let Some(context) = &got.retry_context {
            assert_eq!(Some(context.failure_class), expected, "case: {name}");
        }
    }
}

#[test]
fn flake_confirmed_by_rerun_is_reported_as_passed_and_listed() {
    let obs = Observation {
        reruns: vec![vec![pass(A)]],
        ..run(Some(1), vec![pass(B), fail(A, "assert 1 == 2")])
    };
    let verdict = classify(&obs, std::iter::empty::<HistoryRun>());
    assert_eq!(verdict.failure_class, Some(FailureClass::TestFlake));
    assert_eq!(verdict.status(), RunStatus::Passed);
    assert_eq!(verdict.flaky_tests, [A]);
    assert!(verdict.failed_tests.is_empty());
    let context = verdict.retry_context.unwrap();
    assert_eq!(context.failed_tests, [A]);
    assert_eq!(context.error_messages, ["assert 1 == 2"]);
    assert!(context.suggestion.contains(A), "{}", context.suggestion);
}

#[test]
fn naive_trap_pass_then_edit_then_fail_is_a_regression() {
    // Run 1 on the original tree: everything passed.
    let before = history(
        Some("f-before"),
        &[(A, TestOutcome::Passed), (B, TestOutcome::Passed)],
    );
    // The agent edits the code; run 2 sees a new tree and A fails on every attempt.
    let after = Observation {
        fingerprint: Some("f-after".into()),
        reruns: vec![
            vec![fail(A, "assert 1 == 2")],
            vec![fail(A, "assert 1 == 2")],
        ],
        ..run(Some(1), vec![pass(B), fail(A, "assert 1 == 2")])
    };
    let verdict = classify(&after, [&before]);
    assert_eq!(verdict.failure_class, Some(FailureClass::TestFailure));
    assert_eq!(verdict.failed_tests, [A]);
    assert!(verdict.flaky_tests.is_empty());
}

#[test]
fn history_with_the_same_fingerprint_proves_a_flake() {
    let obs = run(Some(1), vec![fail(A, "assert 1 == 2")]);
    let hist = [
        history(Some("f-other"), &[(A, TestOutcome::Failed)]),
        history(Some("f-now"), &[(A, TestOutcome::Passed)]),
    ];
    let verdict = classify(&obs, &hist);
    assert_eq!(verdict.failure_class, Some(FailureClass::TestFlake));
    assert_eq!(verdict.flaky_tests, [A]);
}

#[test]
fn history_of_other_outcomes_on_the_same_tree_proves_nothing() {
    let obs = run(Some(1), vec![fail(A, "assert 1 == 2")]);
    for outcome in [
        TestOutcome::Failed,
        TestOutcome::Error,
        TestOutcome::Skipped,
        TestOutcome::Xfailed,
        TestOutcome::Xpassed,
    ] {
        let hist = [history(
            Some("f-now"),
            &[(A, outcome), (B, TestOutcome::Passed)],
        )];
        assert_eq!(
            class_of(&obs, &hist),
            Some(FailureClass::TestFailure),
            "{outcome}"
        );
    }
}

#[test]
fn without_a_fingerprint_history_cannot_prove_a_flake() {
    let passes = [(A, TestOutcome::Passed)];
    // The current run has no fingerprint: no history run can be shown to be on the same code.
    let unknown_now = Observation {
        fingerprint: None,
        ..run(Some(1), vec![fail(A, "assert 1 == 2")])
    };
    for hist in [history(None, &passes), history(Some("f-now"), &passes)] {
        assert_eq!(
            class_of(&unknown_now, std::slice::from_ref(&hist)),
            Some(FailureClass::TestFailure)
        );
    }
    // A history run without a fingerprint proves nothing about the current tree.
    let known_now = run(Some(1), vec![fail(A, "assert 1 == 2")]);
    assert_eq!(
        class_of(&known_now, &[history(None, &passes)]),
        Some(FailureClass::TestFailure)
    );
    // A rerun still proves a flake without a fingerprint: it ran on the same code by
    // construction.
    let rerun_now = Observation {
        reruns: vec![vec![pass(A)]],
        ..unknown_now
    };
    assert_eq!(class_of(&rerun_now, &[]), Some(FailureClass::TestFlake));
}

/// An iterator that counts how many history runs were pulled from it.
fn counted<'a>(
    runs: &'a [HistoryRun],
    pulled: &'a Cell<usize>,
) -> impl Iterator<Item = &'a HistoryRun> {
    runs.iter().inspect(move |_| pulled.set(pulled.get() + 1))
}

#[test]
fn history_is_read_only_while_it_can_change_the_verdict() {
    let hist: Vec<HistoryRun> = (0..100)
        .map(|_| history(Some("f-now"), &[(A, TestOutcome::Passed)]))
        .collect();
    let pulled = Cell::new(0);

    // Decided before flake-versus-failure: history is not touched.
    let syntax = run(Some(2), vec![error("tests/test_bad.py", SYNTAX)]);
    classify(&syntax, counted(&hist, &pulled));
    assert_eq!(pulled.get(), 0);

    // Nothing failed: nothing to prove.
    classify(&run(Some(0), vec![pass(A)]), counted(&hist, &pulled));
    assert_eq!(pulled.get(), 0);

    // The first run proves the only failing test flaky: reading stops there.
    let flaky = run(Some(1), vec![fail(A, "assert 1 == 2")]);
    let verdict = classify(&flaky, counted(&hist, &pulled));
    assert_eq!(verdict.failure_class, Some(FailureClass::TestFlake));
    assert_eq!(pulled.get(), 1);
}

#[test]
fn retry_context_is_bounded_sorted_and_ranked() {
    let mut tests: Vec<TestResult> = (0..25)
        .map(|i| {
            fail(
                &format!("tests/test_m.py::test_{i:02}"),
                &format!("ValueError: case {i}"),
            )
        })
        .collect();
    tests.push(fail("tests/test_m.py::test_values", "assert 41 == 42"));
    tests.push(fail("tests/test_m.py::test_bare", "AssertionError"));
    tests.push(fail("tests/test_m.py::test_long", &"x".repeat(1000)));
    tests.reverse();
    let verdict = classify(&run(Some(1), tests), std::iter::empty::<HistoryRun>());
    let context = verdict.retry_context.unwrap();
    assert_eq!(context.failure_class, FailureClass::TestFailure);
    assert_eq!(context.failed_tests.len(), RetryContext::MAX_FAILED_TESTS);
    let mut sorted = context.failed_tests.clone();
    sorted.sort();
    assert_eq!(context.failed_tests, sorted);
    assert_eq!(context.failed_tests[0], "tests/test_m.py::test_00");
    assert_eq!(verdict.failed_tests.len(), 28);
    assert_eq!(
        context.error_messages.len(),
        RetryContext::MAX_ERROR_MESSAGES
    );
    // The assertion with values first, then exceptions with text, alphabetically.
    assert_eq!(context.error_messages[0], "assert 41 == 42");
    assert_eq!(context.error_messages[1], "ValueError: case 0");
    assert_eq!(context.error_messages[2], "ValueError: case 1");
    assert_eq!(context.error_messages[3], "ValueError: case 10");
    for message in &context.error_messages {
        assert!(message.chars().count() <= RetryContext::MAX_MESSAGE_CHARS);
    }
}

#[test]
fn messages_are_deduplicated_counted_and_truncated() {
    let long = format!("RuntimeError: {}", "é".repeat(500));
    let tests = vec![
        fail(
            "t.py::a",
            "AssertionError: <Obj at 0x7f00aa11bb22> is broken",
        ),
        fail(
            "t.py::b",
            "AssertionError:   <Obj at 0x7f00cc33dd44>\n is broken",
        ),
        fail("t.py::c", "TypeError: one"),
        fail("t.py::d", &long),
    ];
    let context = classify(&run(Some(1), tests), std::iter::empty::<HistoryRun>())
        .retry_context
        .unwrap();
    // Same rank (exceptions with text): the message two tests share comes first.
    assert_eq!(
        context.error_messages,
        [
            "AssertionError: <Obj at 0x…> is broken".to_owned(),
            format!(
                "RuntimeError: {}…",
                "é".repeat(RetryContext::MAX_MESSAGE_CHARS - 15)
            ),
            "TypeError: one".to_owned(),
        ]
    );
    assert_eq!(
        context.error_messages[1].chars().count(),
        RetryContext::MAX_MESSAGE_CHARS
    );
}

#[test]
fn collection_errors_lead_with_the_broken_files_and_their_errors() {
    let obs = run(
        Some(2),
        vec![
            error("tests/test_imp.py", IMPORT),
            error("tests/test_bad.py", SYNTAX),
        ],
    );
    let verdict = classify(&obs, std::iter::empty::<HistoryRun>());
    assert_eq!(verdict.failure_class, Some(FailureClass::SyntaxError));
    let context = verdict.retry_context.unwrap();
    assert_eq!(
        context.failed_tests,
        ["tests/test_bad.py", "tests/test_imp.py"]
    );
    assert_eq!(
        context.error_messages,
        [
            "File \"tests/test_bad.py\", line 1 def f(: SyntaxError: invalid syntax",
            "ImportError while importing test module 'tests/test_imp.py'. \
             ModuleNotFoundError: No module named 'nosuchmod'",
        ]
    );
    assert!(
        context.suggestion.contains("tests/test_bad.py"),
        "{}",
        context.suggestion
    );
}

#[test]
fn a_real_failure_ranks_its_messages_before_those_of_flaky_tests() {
    let obs = Observation {
        reruns: vec![vec![pass(A), fail(B, "ValueError: real")]],
        ..run(
            Some(1),
            vec![
                fail(A, "SyntaxError: flaky eval"),
                fail(B, "ValueError: real"),
            ],
        )
    };
    let verdict = classify(&obs, std::iter::empty::<HistoryRun>());
    assert_eq!(verdict.failure_class, Some(FailureClass::TestFailure));
    let context = verdict.retry_context.unwrap();
    assert_eq!(context.failed_tests, [B]);
    assert_eq!(
        context.error_messages,
        ["ValueError: real", "SyntaxError: flaky eval"]
    );
}

#[test]
fn timeout_context_names_the_test_that_hung() {
    let obs = Observation {
        timed_out: true,
        timed_out_test: Some("tests/test_h.py::test_hang".into()),
        ..run(None, vec![pass(A), fail(B, "assert 0 == 1")])
    };
    let context = classify(&obs, std::iter::empty::<HistoryRun>())
        .retry_context
        .unwrap();
    assert_eq!(context.failure_class, FailureClass::TestTimeout);
    assert_eq!(
        context.timed_out_test.as_deref(),
        Some("tests/test_h.py::test_hang")
    );
    assert_eq!(context.failed_tests, [B]);
    assert!(
        context
            .suggestion
            .starts_with("`tests/test_h.py::test_hang` did not finish")
    );
}

#[test]
fn denial_context_carries_the_reason() {
    let obs = Observation {
        gate: Gate::PolicyDenied,
        diagnostics: vec!["target `etc` is outside the allowed scope `runtime/tests`".into()],
        ..Observation::default()
    };
    let context = classify(&obs, std::iter::empty::<HistoryRun>())
        .retry_context
        .unwrap();
    assert_eq!(context.failure_class, FailureClass::PolicyDenied);
    assert!(context.failed_tests.is_empty());
    assert_eq!(
        context.error_messages,
        ["target `etc` is outside the allowed scope `runtime/tests`"]
    );
}

#[test]
fn every_class_has_a_one_sentence_suggestion() {
    // Drive each class through the classifier and check the sentence it suggests.
    let observations = [
        Observation {
            gate: Gate::PolicyDenied,
            ..Observation::default()
        },
        Observation {
            gate: Gate::BudgetExhausted,
            ..Observation::default()
        },
        Observation {
            infrastructure: true,
            ..Observation::default()
        },
        Observation {
            timed_out: true,
            ..Observation::default()
        },
        run(Some(2), vec![error("t.py", SYNTAX)]),
        run(Some(2), vec![error("t.py", IMPORT)]),
        run(Some(4), vec![]),
        run(Some(3), vec![]),
        run(Some(2), vec![]),
        run(Some(5), vec![]),
        run(Some(1), vec![fail(A, "x")]),
        Observation {
            reruns: vec![vec![pass(A)]],
            ..run(Some(1), vec![fail(A, "x")])
        },
    ];
    let mut seen = Vec::new();
    for obs in &observations {
        let context = classify(obs, std::iter::empty::<HistoryRun>())
            .retry_context
            .unwrap();
        let s = &context.suggestion;
        assert!(s.ends_with('.'), "{s}");
        assert!(!s.contains('\n') && !s.contains("  "), "{s}");
        assert_eq!(s.matches(". ").count(), 0, "one sentence: {s}");
        seen.push(context.failure_class);
    }
    assert_eq!(seen, FailureClass::ALL);
}

fn report_of(obs: &Observation, verdict: &Classification) -> VerifyReport {
    let counts = TestCounts::of(&obs.tests);
    VerifyReport {
        schema_version: VerifyReport::SCHEMA_VERSION,
        status: verdict.status(),
        failure_class: verdict.failure_class,
        decision: DecisionRecord {
            allowed: obs.gate != Gate::PolicyDenied,
            reason: "because".into(),
            matched_rules: vec![],
        },
        target: "tests".into(),
        resolved_target: Some("tests".into()),
        fingerprint: obs.fingerprint.clone(),
        exit_code: obs.exit_code,
        duration_ms: 5,
        counts,
        tests: obs.tests.clone(),
        timed_out_test: obs.timed_out_test.clone(),
        flaky_tests: verdict.flaky_tests.clone(),
        stdout: CapturedStream::default(),
        stderr: CapturedStream::default(),
        attempts: vec![AttemptSummary {
            exit_code: obs.exit_code,
            duration_ms: 5,
            counts,
        }],
        retry_context: verdict.retry_context.clone(),
        interpreter: None,
        sandbox: None,
    }
}

#[test]
fn a_stored_report_classifies_as_it_did_and_history_can_change_only_the_flake_verdict() {
    // Stored as a failure; later evidence on the same tree shows the test passing.
    let obs = run(Some(1), vec![fail(A, "assert 1 == 2"), pass(B)]);
    let verdict = classify(&obs, std::iter::empty::<HistoryRun>());
    let report = report_of(&obs, &verdict);
    let again = classify_report(&report, std::iter::empty::<HistoryRun>());
    assert_eq!(again, verdict);
    let later = history(Some("f-now"), &[(A, TestOutcome::Passed)]);
    let with_history = classify_report(&report, [later]);
    assert_eq!(with_history.failure_class, Some(FailureClass::TestFlake));
    assert_eq!(with_history.flaky_tests, [A]);

    // A stored flake stays a flake: its rerun evidence survives as `flaky_tests`.
    let flaky = Observation {
        reruns: vec![vec![pass(A)]],
        ..obs.clone()
    };
    let verdict = classify(&flaky, std::iter::empty::<HistoryRun>());
    let report = report_of(&flaky, &verdict);
    assert_eq!(
        classify_report(&report, std::iter::empty::<HistoryRun>()).failure_class,
        Some(FailureClass::TestFlake)
    );
    // ... and, as history, proves the same test flaky on the same tree.
    let hist = HistoryRun::from_report(&report);
    assert!(hist.outcomes.contains(&(A.to_owned(), TestOutcome::Passed)));
    assert_eq!(class_of(&obs, &[hist]), Some(FailureClass::TestFlake));

    // Facts only the stored class keeps survive reclassification.
    for (obs, class) in [
        (
            Observation {
                gate: Gate::BudgetExhausted,
                ..Observation::default()
            },
            FailureClass::BudgetExhausted,
        ),
        (
            Observation {
                gate: Gate::PolicyDenied,
                ..Observation::default()
            },
            FailureClass::PolicyDenied,
        ),
        (
            Observation {
                infrastructure: true,
                ..Observation::default()
            },
            FailureClass::Infrastructure,
        ),
        (
            Observation {
                timed_out: true,
                ..run(None, vec![])
            },
            FailureClass::TestTimeout,
        ),
        (
            Observation {
                diagnostics: vec![
                    "ImportError while loading conftest 'c.py'.\nE   SyntaxError: x".into(),
                ],
                ..run(Some(4), vec![])
            },
            FailureClass::SyntaxError,
        ),
    ] {
        let verdict = classify(&obs, std::iter::empty::<HistoryRun>());
        assert_eq!(verdict.failure_class, Some(class));
        let again = classify_report(&report_of(&obs, &verdict), std::iter::empty::<HistoryRun>());
        assert_eq!(again.failure_class, Some(class));
    }
}

#[test]
fn a_stored_report_reads_from_the_contract_json() {
    let json = r#"{
      "schema_version": 1, "status": "failed", "failure_class": "test_failure",
      "decision": {"allowed": true, "reason": "ok", "matched_rules": ["allow-pytest"]},
      "target": "runtime/tests", "resolved_target": "runtime/tests", "fingerprint": "abc",
      "exit_code": 1, "duration_ms": 10,
      "counts": {"passed": 0, "failed": 1, "errors": 0, "skipped": 0, "xfailed": 0, "xpassed": 0},
      "tests": [{"nodeid": "runtime/tests/test_a.py::test_a", "outcome": "failed",
                 "message": "assert 1 == 2", "duration_ms": 1}],
      "timed_out_test": null, "flaky_tests": [],
      "stdout": {"text": "", "total_bytes": 0, "truncated": false, "sha256": ""},
      "stderr": {"text": "", "total_bytes": 0, "truncated": false, "sha256": ""},
      "attempts": [], "retry_context": null, "some_future_key": 1
    }"#;
    let report: VerifyReport = serde_json::from_str(json).unwrap();
    let same_tree = history(
        Some("abc"),
        &[("runtime/tests/test_a.py::test_a", TestOutcome::Passed)],
    );
    let other_tree = history(
        Some("abd"),
        &[("runtime/tests/test_a.py::test_a", TestOutcome::Passed)],
    );
    assert_eq!(
        classify_report(&report, [&other_tree]).failure_class,
        Some(FailureClass::TestFailure)
    );
    assert_eq!(
        classify_report(&report, [&other_tree, &same_tree]).failure_class,
        Some(FailureClass::TestFlake)
    );
}

/// A first failure and a passing rerun, on a tree that changed as `tree` says.
fn passed_on_rerun(tree: TreeChange) -> Classification {
    let obs = Observation {
        reruns: vec![vec![pass(A)]],
        fingerprint: None,
        tree,
        ..run(Some(1), vec![fail(A, "assert 0 == 1"), pass(B)])
    };
    classify(&obs, std::iter::empty::<HistoryRun>())
}

#[test]
fn a_pass_after_the_run_wrote_state_is_a_flake_that_names_the_state() {
    let verdict = passed_on_rerun(TreeChange::StateWritten(vec![
        "runtime/tests/x/.state".into(),
    ]));
    assert_eq!(verdict.failure_class, Some(FailureClass::TestFlake));
    assert_eq!(verdict.flaky_tests, [A]);
    let suggestion = verdict.retry_context.unwrap().suggestion;
    assert!(
        suggestion.contains("depends on state it writes: runtime/tests/x/.state"),
        "{suggestion}"
    );
}

#[test]
fn a_pass_after_the_code_changed_is_no_flake_and_is_said_truthfully() {
    for tree in [
        TreeChange::CodeChanged(vec!["src/app.py".into()]),
        TreeChange::Unknown,
    ] {
        let verdict = passed_on_rerun(tree.clone());
        assert_eq!(
            verdict.failure_class,
            Some(FailureClass::TestFailure),
            "{tree:?}"
        );
        assert!(verdict.flaky_tests.is_empty());
        let suggestion = verdict.retry_context.unwrap().suggestion;
        assert!(
            suggestion.contains("failed on the first attempt and passed on a rerun"),
            "{suggestion}"
        );
        assert!(suggestion.contains("not a flake"), "{suggestion}");
        assert!(!suggestion.contains("on every attempt"), "{suggestion}");
        if let TreeChange::CodeChanged(_) = tree {
            assert!(suggestion.contains("src/app.py"), "{suggestion}");
        }
    }
    // Failing on every attempt while the code changed: not "on this code".
    let obs = Observation {
        reruns: vec![vec![fail(A, "assert 0 == 1")]],
        fingerprint: None,
        tree: TreeChange::CodeChanged(vec!["src/app.py".into()]),
        ..run(Some(1), vec![fail(A, "assert 0 == 1")])
    };
    let suggestion = classify(&obs, std::iter::empty::<HistoryRun>())
        .retry_context
        .unwrap()
        .suggestion;
    assert!(
        suggestion.contains("did not all run the same code"),
        "{suggestion}"
    );
    assert!(!suggestion.contains("on this code"), "{suggestion}");
}
