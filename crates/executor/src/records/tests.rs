use super::*;

fn parsed(text: &str) -> Records {
    parse(text.as_bytes())
}

fn case<'a>(records: &'a Records, id: &str) -> &'a Case {
    records
        .cases
        .iter()
        .find(|c| c.nodeid == id)
        .unwrap_or_else(|| panic!("no case {id} in {:?}", records.cases))
}

#[test]
fn each_test_s_reports_become_one_case_as_pytest_s_junit_writer_made_them() {
    let records = parsed(concat!(
        r#"{"id": "t/a.py::ok", "when": "call", "outcome": "passed", "duration": 0.25}"#,
        "\n",
        r#"{"id": "t/a.py::f", "when": "call", "outcome": "failed", "duration": 0.5, "message": "assert 1 == 2"}"#,
        "\n",
        r#"{"id": "t/a.py::f", "when": "teardown", "outcome": "failed", "duration": 0.25, "message": "RuntimeError: boom"}"#,
        "\n",
        r#"{"id": "t/a.py::s", "when": "setup", "outcome": "skipped", "duration": 0.0, "message": "Skipped: no db"}"#,
        "\n",
        r#"{"id": "t/a.py::x", "when": "call", "outcome": "skipped", "duration": 0.0, "message": "AssertionError", "xfail": "reason: known"}"#,
        "\n",
        r#"{"id": "t/a.py::xp", "when": "call", "outcome": "passed", "duration": 0.0, "xfail": "maybe"}"#,
        "\n",
        r#"{"id": "t/a.py::e", "when": "setup", "outcome": "failed", "duration": 0.0, "message": "fixture 'db' not found"}"#,
        "\n",
        r#"{"end": 1}"#,
        "\n",
    ));
    assert!(records.complete);
    assert_eq!(records.cases.len(), 6);
    let ok = case(&records, "t/a.py::ok");
    assert_eq!(
        (ok.outcome, ok.duration_ms),
        (TestOutcome::Passed, Some(250))
    );
    // A call failure, then a teardown error: the error wins, as the last JUnit case did.
    let f = case(&records, "t/a.py::f");
    assert_eq!(f.outcome, TestOutcome::Error);
    assert_eq!(
        f.message.as_deref(),
        Some("failed on teardown with \"RuntimeError: boom\"")
    );
    assert_eq!(f.failure_messages, ["assert 1 == 2"]);
    assert_eq!(f.duration_ms, Some(750));
    let s = case(&records, "t/a.py::s");
    assert_eq!(
        (s.outcome, s.message.as_deref()),
        (TestOutcome::Skipped, Some("no db"))
    );
    let x = case(&records, "t/a.py::x");
    assert_eq!(
        (x.outcome, x.message.as_deref()),
        (TestOutcome::Xfailed, Some("known"))
    );
    assert_eq!(case(&records, "t/a.py::xp").outcome, TestOutcome::Xpassed);
    let e = case(&records, "t/a.py::e");
    assert_eq!(e.outcome, TestOutcome::Error);
    assert_eq!(
        e.message.as_deref(),
        Some("failed on setup with \"fixture 'db' not found\"")
    );
}

#[test]
fn failing_subtests_add_failures_in_order_and_do_not_start_an_attempt() {
    let records = parsed(concat!(
        r#"{"id": "t/a.py::sub", "when": "call", "outcome": "failed", "message": "first", "subtest": true}"#,
        "\n",
        r#"{"id": "t/a.py::sub", "when": "call", "outcome": "failed", "message": "second", "subtest": true}"#,
        "\n",
        r#"{"id": "t/a.py::sub", "when": "call", "outcome": "failed", "message": "contains 2 failed subtests"}"#,
        "\n",
        r#"{"end": 1}"#,
        "\n",
    ));
    let sub = case(&records, "t/a.py::sub");
    assert_eq!(sub.outcome, TestOutcome::Failed);
    assert_eq!(
        sub.failure_messages,
        ["first", "second", "contains 2 failed subtests"]
    );
}

#[test]
fn a_test_run_again_keeps_its_last_attempt_in_its_first_place() {
    let records = parsed(concat!(
        r#"{"id": "t/a.py::f", "when": "call", "outcome": "failed", "message": "first"}"#,
        "\n",
        r#"{"id": "t/a.py::g", "when": "call", "outcome": "passed"}"#,
        "\n",
        r#"{"id": "t/a.py::f", "when": "call", "outcome": "rerun", "message": "again"}"#,
        "\n",
        r#"{"id": "t/a.py::f", "when": "call", "outcome": "passed", "duration": 0.2}"#,
        "\n",
        r#"{"end": 0}"#,
        "\n",
    ));
    assert!(records.complete);
    let ids: Vec<&str> = records.cases.iter().map(|c| c.nodeid.as_str()).collect();
    assert_eq!(ids, ["t/a.py::f", "t/a.py::g"]);
    let f = case(&records, "t/a.py::f");
    assert_eq!(
        (f.outcome, f.message.as_deref()),
        (TestOutcome::Passed, None)
    );
    assert_eq!(f.duration_ms, Some(200));
    assert!(f.failure_messages.is_empty());
}

#[test]
fn collection_errors_carry_the_exception_their_traceback_ends_with() {
    let traceback = "t/test_bad.py:3: in <module>\n    import nope\nE   ModuleNotFoundError: No module named 'nope'";
    let syntax = "  File \"/r/t/test_syn.py\", line 1\n    def f(:\n          ^\nE   SyntaxError: invalid syntax";
    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        serde_json::json!({"id": "t/test_bad.py", "when": "collect", "outcome": "failed", "traceback": traceback}),
        serde_json::json!({"id": "t/test_syn.py", "when": "collect", "outcome": "failed", "traceback": syntax}),
        serde_json::json!({"id": "t/test_skip.py", "when": "collect", "outcome": "skipped"}),
        serde_json::json!({"id": "", "when": "collect", "outcome": "failed", "traceback": "E   x"}),
        serde_json::json!({"end": 2}),
    );
    let records = parsed(&text);
    assert!(records.complete);
    assert_eq!(records.cases.len(), 3, "the session itself names no test");
    let bad = case(&records, "t/test_bad.py");
    assert_eq!(bad.outcome, TestOutcome::Error);
    assert_eq!(bad.message.as_deref(), Some("collection failure"));
    let (message, syntax_error) = bad.collection_error.clone().unwrap();
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("No module named 'nope'")),
        "{message:?}"
    );
    assert!(!syntax_error);
    assert!(
        case(&records, "t/test_syn.py")
            .collection_error
            .clone()
            .unwrap()
            .1
    );
    let skipped = case(&records, "t/test_skip.py");
    assert_eq!(skipped.outcome, TestOutcome::Skipped);
    assert_eq!(skipped.collection_error, None);
}

#[test]
fn records_are_complete_only_when_the_session_s_end_ends_them_and_every_line_parsed() {
    let ok = "{\"id\": \"t/a.py::ok\", \"when\": \"call\", \"outcome\": \"passed\"}\n";
    let end = "{\"end\": 0}\n";
    assert!(parsed(&format!("{ok}{end}")).complete);
    // Killed before the session ended: what was written is kept.
    let cut = parsed(ok);
    assert!(!cut.complete);
    assert_eq!(cut.cases.len(), 1);
    // A line cut in the middle, a line of something else, an unknown field, a report of an
    // unknown shape, a record after the end: each leaves the records incomplete, the rest kept.
    for bad in [
        "{\"id\": \"t/a.py::x\", \"when\": \"ca",
        "PASSED everything",
        "{\"id\": \"t/a.py::x\", \"when\": \"call\", \"outcome\": \"passed\", \"verdict\": \"pass\"}",
        "{\"id\": \"t/a.py::x\", \"outcome\": \"passed\"}",
        "{\"id\": \"t/a.py::x\", \"when\": \"call\", \"outcome\": \"splendid\"}",
    ] {
        let records = parsed(&format!("{ok}{bad}\n{end}"));
        assert!(!records.complete, "{bad}");
        assert_eq!(records.cases[0].nodeid, "t/a.py::ok", "{bad}");
    }
    assert!(!parsed(&format!("{ok}{end}{ok}")).complete);
    assert!(!parsed(&format!("{end}{end}")).complete);
}

#[test]
fn a_line_over_the_bound_is_skipped_without_being_kept() {
    let huge = format!(
        "{{\"id\": \"t/a.py::big\", \"when\": \"call\", \"outcome\": \"failed\", \"message\": \"{}\"}}\n",
        "x".repeat(MAX_LINE_BYTES + 10)
    );
    let ok = "{\"id\": \"t/a.py::ok\", \"when\": \"call\", \"outcome\": \"passed\"}\n";
    let records = parsed(&format!("{huge}{ok}{{\"end\": 0}}\n"));
    assert!(!records.complete);
    let ids: Vec<&str> = records.cases.iter().map(|c| c.nodeid.as_str()).collect();
    assert_eq!(ids, ["t/a.py::ok"]);
}

#[test]
fn kept_names_and_messages_are_bounded_in_bytes_not_only_in_count() {
    let long = "n".repeat(4000);
    let mut text = String::new();
    for i in 0..2_000 {
        text.push_str(&format!(
            "{{\"id\": \"t/a.py::{long}{i}\", \"when\": \"call\", \"outcome\": \"failed\", \"message\": \"{long}\"}}\n"
        ));
    }
    text.push_str("{\"end\": 1}\n");
    let records = parsed(&text);
    let kept: usize = records
        .cases
        .iter()
        .map(|c| c.nodeid.len() + c.message.as_ref().map_or(0, String::len))
        .sum();
    assert!(kept <= MAX_RECORD_BYTES, "{kept}");
    assert!(records.omitted > 0);
    assert_eq!(records.cases.len() as u64 + records.omitted, 2_000);
    // Every test counted once, however many of its reports came after the bound was reached.
    assert!(records.complete);
}

#[test]
fn messages_are_cut_to_the_kept_length() {
    let text = format!(
        "{{\"id\": \"t/a.py::f\", \"when\": \"call\", \"outcome\": \"failed\", \"message\": \"{}\"}}\n{{\"end\": 1}}\n",
        "é".repeat(3_000)
    );
    let records = parsed(&text);
    let message = records.cases[0].message.as_deref().unwrap();
    assert_eq!(
        message.chars().count(),
        crate::lines::MAX_MESSAGE_CHARS + "...".len()
    );
}

#[test]
fn parsing_stops_at_its_deadline_and_says_the_records_are_incomplete() {
    let line = "{\"id\": \"t/a.py::ok\", \"when\": \"call\", \"outcome\": \"passed\"}\n";
    let text = format!("{}{{\"end\": 0}}\n", line.repeat(5_000));
    let past = Instant::now() - std::time::Duration::from_secs(1);
    let records = parse_until(text.as_bytes(), None, Some(past));
    assert!(!records.complete);
}
