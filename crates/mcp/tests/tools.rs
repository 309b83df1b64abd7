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
