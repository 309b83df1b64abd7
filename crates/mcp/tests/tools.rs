//! The tool handlers without a transport, on real pytest runs of the fixture projects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_e2e::{Fixture, processes_mentioning, python_with_pytest};
use warden_mcp::params::{CheckParams, ClassifyParams, VerifyParams};
use warden_mcp::{Warden, tools};

fn warden(fixture: &Fixture) -> Warden {
    Warden::new(fixture.root(), None).with_python(Some(python_with_pytest().display().to_string()))
}

fn verify_params(target: &str) -> VerifyParams {
    VerifyParams {
        target: target.to_owned(),
        ..VerifyParams::default()
    }
}

#[test]
fn every_tool_has_a_description_and_an_object_schema() {
    let tools = tools();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        ["verify", "check", "policy", "classify", "ledger_stats"]
    );
    for tool in &tools {
        assert!(
            tool.description.as_ref().is_some_and(|d| d.len() > 80),
            "{}",
            tool.name
        );
        assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
    }
    let verify = &tools[0].input_schema;
    assert_eq!(verify["required"], json!(["target"]));
    for key in [
        "target",
        "pytest_args",
        "timeout_secs",
        "retries",
        "mission",
    ] {
        assert!(
            verify["properties"].get(key).is_some(),
            "verify lacks {key}"
        );
    }
}

#[test]
fn check_allows_in_scope_and_denies_out_of_scope_as_a_normal_answer() {
    let fixture = Fixture::named("passing");
    let warden = warden(&fixture);
    let allowed = warden.check(CheckParams {
        target: Some("runtime/tests".into()),
        args: vec!["-x".into()],
        ..CheckParams::default()
    });
    assert!(!allowed.is_error);
    assert_eq!(allowed.structured["allowed"], true);
    assert_eq!(allowed.structured["resolved_target"], "runtime/tests");
    let denied = warden.check(CheckParams {
        target: Some("runtime/tests".into()),
        args: vec!["--rootdir=/".into()],
        ..CheckParams::default()
    });
    assert!(!denied.is_error);
    assert_eq!(denied.structured["allowed"], false);
    assert!(denied.summary.starts_with("denied"), "{}", denied.summary);
}

#[test]
fn policy_shows_the_rules_with_their_scopes_and_the_limits() {
    let fixture = Fixture::named("passing");
    let output = warden(&fixture).policy();
    assert!(!output.is_error);
    let rules = output.structured["rules"].as_array().unwrap();
    assert!(
        rules.iter().any(|r| r["effect"] == "allow"
            && r["tool"] == "pytest"
            && r["scope"] == json!(["runtime/tests"])),
        "{rules:?}"
    );
    let limits = output.structured["limits"].as_array().unwrap();
    assert!(
        limits.iter().any(|l| l["key"] == "timeout_secs"),
        "{limits:?}"
    );
}

#[test]
fn a_broken_policy_is_a_tool_error_naming_it() {
    let fixture = Fixture::named("passing");
    fixture.write("warden.toml", "version = 1\n[[rule]]\nid = \n");
    let output = warden(&fixture).policy();
    assert!(output.is_error);
    assert!(output.summary.contains("warden.toml"), "{}", output.summary);
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_run_is_reported_with_its_retry_context_progress_and_evidence() {
    let fixture = Fixture::named("failing");
    let warden = warden(&fixture);
    let (sink, mut reports) = mpsc::unbounded_channel::<warden_mcp::RunProgress>();
    let output = warden
        .verify(
            verify_params("runtime/tests"),
            Some(sink),
            CancellationToken::new(),
        )
        .await;
    assert!(!output.is_error, "{}", output.summary);
    let report = &output.structured;
    assert_eq!(report["status"], "failed");
    assert_eq!(report["failure_class"], "test_failure");
    assert_eq!(report["counts"]["failed"], 1);
    let failed = &report["retry_context"]["failed_tests"];
    assert_eq!(
        failed,
        &json!(["runtime/tests/test_math.py::test_wrong_answer"])
    );
    assert!(
        output.summary.contains("test_wrong_answer"),
        "{}",
        output.summary
    );
    assert!(
        output.summary.contains("evidence: ledger record 1"),
        "{}",
        output.summary
    );

    let mut seen = Vec::new();
    while let Ok(report) = reports.try_recv() {
        seen.push(report);
    }
    assert!(!seen.is_empty(), "no progress was reported");
    assert!(seen.windows(2).all(|w| w[0].done <= w[1].done), "{seen:?}");

    let stats = warden.ledger_stats();
    assert_eq!(stats.structured["runs"], 1, "{}", stats.summary);
    let classified = warden.classify(ClassifyParams::default());
    assert_eq!(classified.structured["seq"], 1);
    assert_eq!(classified.structured["failure_class"], "test_failure");
    let missing = warden.classify(ClassifyParams { seq: Some(9) });
    assert!(missing.is_error);
}

#[tokio::test(flavor = "current_thread")]
async fn a_denied_verify_is_a_normal_answer_and_runs_nothing() {
    let fixture = Fixture::named("passing");
    let output = warden(&fixture)
        .verify(verify_params("src"), None, CancellationToken::new())
        .await;
    assert!(!output.is_error, "{}", output.summary);
    assert_eq!(output.structured["status"], "denied");
    assert_eq!(output.structured["failure_class"], "policy_denied");
    assert_eq!(output.structured["attempts"], json!([]));
    assert!(output.summary.contains("denied: "), "{}", output.summary);
}

#[tokio::test(flavor = "current_thread")]
async fn cancelling_a_verify_kills_its_process_tree_and_records_nothing() {
    let fixture = Fixture::named("hang");
    let warden = warden(&fixture);
    let (sink, mut reports) = mpsc::unbounded_channel::<warden_mcp::RunProgress>();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let watcher = async move {
        // Cancel once pytest names the hanging test: the tree is then fully grown.
        while let Some(report) = reports.recv().await {
            if report
                .running
                .as_deref()
                .is_some_and(|t| t.contains("test_hangs"))
            {
                break;
            }
        }
        trigger.cancel();
    };
    let (output, ()) = tokio::join!(
        warden.verify(verify_params("runtime/tests"), Some(sink), cancel),
        watcher
    );
    assert!(output.is_error);
    assert!(output.summary.contains("cancelled"), "{}", output.summary);
    let marker = fixture.root().display().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_mentioning(&marker).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(processes_mentioning(&marker), vec![]);
    let stats = warden.ledger_stats();
    assert_eq!(stats.structured["runs"], 0, "{}", stats.summary);
}

#[test]
fn arguments_the_schema_refuses_are_refused_by_validate() {
    let timeout = |secs: f64| VerifyParams {
        timeout_secs: Some(secs),
        ..verify_params("runtime/tests")
    };
    for refused in [0.0, -1.0, 0.0005, f64::NAN, f64::INFINITY] {
        let problem = timeout(refused).validate().unwrap_err();
        assert!(problem.contains("timeout_secs"), "{refused}: {problem}");
    }
    for accepted in [0.001, 2.5, 300.0] {
        assert_eq!(timeout(accepted).validate(), Ok(()), "{accepted}");
    }
    assert_eq!(verify_params("runtime/tests").validate(), Ok(()));
    assert!(ClassifyParams { seq: Some(0) }.validate().is_err());
    assert_eq!(ClassifyParams { seq: Some(1) }.validate(), Ok(()));
    assert_eq!(ClassifyParams::default().validate(), Ok(()));
}

#[tokio::test(flavor = "current_thread")]
async fn a_timeout_outside_the_schema_runs_nothing_and_records_nothing() {
    let fixture = Fixture::named("passing");
    let warden = warden(&fixture);
    let params = VerifyParams {
        timeout_secs: Some(0.0),
        ..verify_params("runtime/tests")
    };
    let output = warden.verify(params, None, CancellationToken::new()).await;
    assert!(output.is_error);
    assert!(
        output.summary.contains("timeout_secs"),
        "{}",
        output.summary
    );
    assert!(!fixture.ledger().exists());
}

#[test]
fn a_project_without_a_ledger_has_empty_stats_and_nothing_to_classify() {
    let fixture = Fixture::named("passing");
    let warden = warden(&fixture);
    let stats = warden.ledger_stats();
    assert!(!stats.is_error, "{}", stats.summary);
    assert_eq!(stats.structured["runs"], 0);
    assert_eq!(stats.structured["pass_rate"], serde_json::Value::Null);
    let classified = warden.classify(ClassifyParams::default());
    assert!(classified.is_error);
    assert!(
        classified.summary.contains("run `verify` first"),
        "{}",
        classified.summary
    );
}

#[test]
fn check_answers_for_file_writes_too() {
    let fixture = Fixture::named("passing");
    let warden = warden(&fixture);
    let write = |target: &str| {
        warden.check(CheckParams {
            target: Some(target.into()),
            tool: Some("fs".into()),
            action: Some("write".into()),
            ..CheckParams::default()
        })
    };
    let allowed = write("src/app.py");
    assert_eq!(allowed.structured["allowed"], true, "{}", allowed.summary);
    assert_eq!(allowed.structured["tool"], "fs");
    let protected = write("docs/00_foundations/charter.md");
    assert!(!protected.is_error);
    assert_eq!(protected.structured["allowed"], false);
    let unknown = warden.check(CheckParams {
        tool: Some("bash".into()),
        action: Some("run".into()),
        target: Some("rm -rf /".into()),
        ..CheckParams::default()
    });
    assert_eq!(unknown.structured["allowed"], false, "default deny");
}

/// The ledger is history for `verify` through MCP too: a test that passed on this very code
/// and now fails (its rerun too) is a flake, and `classify` says the same of the record.
#[tokio::test(flavor = "current_thread")]
async fn the_projects_ledger_is_history_so_a_pass_then_a_failure_on_the_same_code_is_a_flake() {
    let fixture = Fixture::named("flaky");
    let state = fixture.outside().join("flaky-state");
    fixture.write("runtime/tests/state_dir.txt", state.to_str().unwrap());
    let warden = warden(&fixture);
    let target = "runtime/tests/test_flaky.py::test_follows_switch";
    let first = warden
        .verify(verify_params(target), None, CancellationToken::new())
        .await;
    assert_eq!(first.structured["status"], "passed", "{}", first.summary);

    std::fs::write(state.join("switch"), "fail").unwrap();
    let params = VerifyParams {
        retries: Some(1),
        ..verify_params(target)
    };
    let second = warden.verify(params, None, CancellationToken::new()).await;
    assert!(!second.is_error, "{}", second.summary);
    assert_eq!(
        second.structured["fingerprint"],
        first.structured["fingerprint"]
    );
    assert_eq!(second.structured["failure_class"], "test_flake");
    assert_eq!(second.structured["flaky_tests"], json!([target]));

    let classified = warden.classify(ClassifyParams { seq: Some(2) });
    assert_eq!(classified.structured["failure_class"], "test_flake");
    assert_eq!(classified.structured["flaky_tests"], json!([target]));
    let stats = warden.ledger_stats();
    assert_eq!(stats.structured["runs"], 2);
    assert_eq!(stats.structured["flaky_runs"], 1, "{}", stats.structured);
}

#[test]
fn progress_messages_say_what_is_done_what_failed_and_what_runs() {
    let first = warden_mcp::RunProgress {
        done: 3,
        finished: 3,
        collected: Some(5),
        failures: 1,
        attempt: 1,
        running: Some("runtime/tests/test_a.py::test_slow".into()),
    };
    assert_eq!(
        first.message(),
        "3/5 tests done, 1 failed, running runtime/tests/test_a.py::test_slow"
    );
    let rerun = warden_mcp::RunProgress {
        done: 6,
        finished: 1,
        collected: None,
        failures: 0,
        attempt: 2,
        running: None,
    };
    assert_eq!(
        rerun.message(),
        "rerun 1 of the failed tests: 1 tests done, 0 failed"
    );
}
