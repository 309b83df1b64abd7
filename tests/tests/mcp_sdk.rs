//! `warden mcp` driven by an independent, real MCP client: the official Python SDK (`mcp` on
//! PyPI, pinned in xtask/requirements.txt) over stdio, through tests/mcp_client/client.py,
//! against the real binary on real fixture projects. The client prints what came back as JSON;
//! these tests assert on it (and on the process table and the ledger afterwards).

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_e2e::{
    Fixture, processes_mentioning, python, read_lines, run, verify_json, warden, warden_bin,
    workspace_root,
};
use warden_taxonomy::VerifyReport;

/// Deadline for one client process (it has its own, shorter one per scenario).
const CLIENT_DEADLINE: Duration = Duration::from_secs(300);

/// [`python`], checked once to have pytest and the MCP SDK; without them the test fails with a
/// message saying how to get them, never skips.
fn python_with_mcp() -> &'static Path {
    static CHECKED: OnceLock<std::path::PathBuf> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let python = python();
        let mut cmd = Command::new(&python);
        cmd.args(["-c", "import mcp, jsonschema, pytest"]);
        let out = run(&mut cmd, None, Duration::from_secs(60));
        assert_eq!(
            out.code,
            Some(0),
            "these tests need Python with pytest and the MCP SDK (`mcp`); `{}` lacks them (run \
             `cargo xtask test`, which installs xtask/requirements.txt into target/venv, or set \
             WARDEN_PYTHON to an interpreter that has them):\n{}",
            python.display(),
            out.stderr
        );
        python
    })
}

/// Plays `scenario` of the SDK client against `warden --root ROOT mcp`; its JSON answer.
fn client(root: &Path, scenario: &str, spec: Option<Value>) -> Value {
    let python = python_with_mcp();
    let mut cmd = Command::new(python);
    cmd.arg(workspace_root().join("tests/mcp_client/client.py"))
        .arg(warden_bin())
        .arg(root)
        .arg(scenario)
        .args(spec.map(|s| s.to_string()))
        .env("WARDEN_PYTHON", python)
        .env_remove("RUST_LOG");
    let out = run(&mut cmd, None, CLIENT_DEADLINE);
    assert_eq!(
        out.code,
        Some(0),
        "the MCP client failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    out.json()
}

/// The results of `calls` to one server, in order.
fn calls(root: &Path, calls: Value) -> Vec<Value> {
    let out = client(root, "calls", Some(calls));
    out["results"].as_array().unwrap().clone()
}

/// One tool call; its result (a tool result, never a JSON-RPC error).
fn call(root: &Path, tool: &str, arguments: Value) -> Value {
    let result = calls(root, json!([{ "tool": tool, "arguments": arguments }])).remove(0);
    assert!(result.get("error").is_none(), "a protocol error: {result}");
    result
}

/// Checks a `verify` result: the structured content is the contract's document (it reads back
/// as a `VerifyReport`), and the second text block is that document as JSON.
fn report(result: &Value) -> &Value {
    let doc = &result["structured"];
    serde_json::from_value::<VerifyReport>(doc.clone())
        .unwrap_or_else(|e| panic!("not the contract's verify document ({e}): {doc}"));
    let texts = result["texts"].as_array().unwrap();
    assert_eq!(texts.len(), 2, "{result}");
    let as_text: Value = serde_json::from_str(texts[1].as_str().unwrap()).unwrap();
    assert_eq!(&as_text, doc);
    doc
}

fn summary(result: &Value) -> &str {
    result["texts"][0].as_str().unwrap()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

fn keys(doc: &Value) -> BTreeSet<&str> {
    doc.as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// The records of the project's ledger (none when it was never written).
fn ledger_records(fixture: &Fixture) -> Vec<Value> {
    let ledger = fixture.ledger();
    if !ledger.exists() {
        return Vec::new();
    }
    read_lines(&ledger)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits (with a deadline) until nothing whose command line names the root is running.
fn assert_nothing_left(root: &Path) {
    let marker = root.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !processes_mentioning(&marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processes_mentioning(&marker), vec![]);
}

#[test]
fn the_sdk_initializes_and_every_tool_has_a_valid_input_schema() {
    let fixture = Fixture::named("passing");
    let out = client(fixture.root(), "tools", None);
    assert_eq!(out["server_name"], "warden");
    assert_eq!(out["tools_capability"], true);
    assert!(
        out["instructions"]
            .as_str()
            .unwrap()
            .contains("ONLY through the `verify` tool"),
        "{out}"
    );
    let tools = out["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["verify", "check", "policy", "classify", "ledger_stats"]
    );
    for tool in tools {
        let name = &tool["name"];
        assert_eq!(tool["schema_error"], Value::Null, "{name}: {tool}");
        assert_eq!(tool["input_schema"]["type"], "object", "{name}");
        assert!(
            tool["description"].as_str().unwrap().len() > 80,
            "{name}: a description that tells an agent when to use it"
        );
        assert_eq!(tool["read_only"], *name != "verify", "{name}");
    }
    // The schemas accept what the tools take and refuse what they refuse.
    let accepts = |tool: usize, sample: &str| tools[tool]["accepts"][sample].as_bool().unwrap();
    assert!(accepts(0, "target only") && accepts(0, "everything"));
    for refused in [
        "no target",
        "an unknown key",
        "a zero timeout",
        "negative retries",
        "args not a list",
    ] {
        assert!(!accepts(0, refused), "verify's schema accepts {refused}");
    }
    assert!(accepts(1, "empty") && accepts(1, "everything"));
    assert!(accepts(2, "empty") && !accepts(2, "an unknown key"));
    assert!(accepts(3, "empty") && accepts(3, "seq 3") && !accepts(3, "seq 0"));
    assert!(accepts(4, "empty") && !accepts(4, "an unknown key"));
}

#[test]
fn a_passing_verify_is_the_cli_document_and_runs_confined_like_warden_verify() {
    let fixture = Fixture::named("passing");
    let result = call(fixture.root(), "verify", json!({"target": "runtime/tests"}));
    assert_eq!(result["is_error"], false, "{result}");
    let doc = report(&result);
    assert_eq!(doc["status"], "passed");
    assert_eq!(doc["failure_class"], Value::Null);
    assert!(
        summary(&result).starts_with("passed"),
        "{}",
        summary(&result)
    );

    // The same request on the command line: the same document, the same sandbox in force.
    let cli = verify_json(fixture.root(), &["runtime/tests"]);
    assert_eq!(cli.code, Some(0), "{}", cli.stderr);
    let cli = cli.json();
    assert_eq!(keys(doc), keys(&cli));
    assert_eq!(doc["counts"], cli["counts"]);
    assert_eq!(doc["tests"].as_array().unwrap().len(), 9, "{doc}");
    assert_eq!(doc["fingerprint"], cli["fingerprint"]);
    let sandbox = &doc["sandbox"];
    assert_eq!(sandbox["mode"], "required", "{doc}");
    assert_eq!(sandbox["enforced"], true, "{sandbox}");
    assert!(
        strings(&sandbox["namespaces"]).contains(&"pid"),
        "{sandbox}"
    );
    assert_eq!(sandbox, &cli["sandbox"]);
    assert_eq!(doc["interpreter"]["path"], cli["interpreter"]["path"]);

    // Both were recorded, in one intact chain.
    assert_eq!(ledger_records(&fixture).len(), 2);
    let mut check = warden();
    check.arg("ledger").arg("verify").arg(fixture.ledger());
    let checked = run(&mut check, None, Duration::from_secs(60));
    assert_eq!(checked.code, Some(0), "{}", checked.stdout);
}

#[test]
fn a_failing_suite_is_a_normal_result_with_its_retry_context_and_progress() {
    let fixture = Fixture::named("failing");
    let result = call(fixture.root(), "verify", json!({"target": "runtime/tests"}));
    assert_eq!(
        result["is_error"], false,
        "a failing suite is no tool error"
    );
    let doc = report(&result);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["failure_class"], "test_failure");
    assert_eq!(doc["counts"]["failed"], 1);
    assert_eq!(doc["counts"]["passed"], 1);
    let context = &doc["retry_context"];
    assert_eq!(
        strings(&context["failed_tests"]),
        ["runtime/tests/test_math.py::test_wrong_answer"]
    );
    assert!(
        strings(&context["error_messages"])
            .iter()
            .any(|m| m.contains("the answer is wrong")),
        "{context}"
    );
    assert!(!context["suggestion"].as_str().unwrap().is_empty());
    // The built-in policy reruns a failure twice: three attempts.
    assert_eq!(doc["attempts"].as_array().unwrap().len(), 3);
    assert!(
        summary(&result).contains("test_wrong_answer"),
        "{}",
        summary(&result)
    );

    // Progress arrived while it ran: its whole part the tests done over all attempts,
    // increasing with each notification as MCP requires, never past a total, the first
    // attempt's total given, the failure counted.
    let progress = result["progress"].as_array().unwrap();
    assert!(!progress.is_empty(), "no progress notification");
    let done: Vec<f64> = progress.iter().map(|p| p[0].as_f64().unwrap()).collect();
    assert!(done.windows(2).all(|w| w[0] < w[1]), "{done:?}");
    assert_eq!(
        done.last().map(|d| d.floor()),
        Some(4.0),
        "2 tests, then 1 rerun twice: {done:?}"
    );
    assert!(
        progress.iter().all(|p| p[1]
            .as_f64()
            .is_none_or(|total| p[0].as_f64().unwrap() <= total)),
        "{progress:?}"
    );
    assert!(progress.iter().any(|p| p[1] == 2.0), "{progress:?}");
    assert!(
        progress
            .iter()
            .any(|p| p[2].as_str().unwrap().contains("1 failed")),
        "{progress:?}"
    );
    assert_eq!(ledger_records(&fixture).len(), 1);
}

#[test]
fn a_test_that_fails_then_passes_on_rerun_is_a_flake() {
    let fixture = Fixture::named("flaky");
    let state = fixture.outside().join("flaky-state");
    fixture.write("runtime/tests/state_dir.txt", state.to_str().unwrap());
    let result = call(fixture.root(), "verify", json!({"target": "runtime/tests"}));
    assert_eq!(result["is_error"], false);
    let doc = report(&result);
    assert_eq!(doc["status"], "passed");
    assert_eq!(doc["failure_class"], "test_flake");
    assert_eq!(
        strings(&doc["flaky_tests"]),
        ["runtime/tests/test_flaky.py::test_fails_first_time"]
    );
    assert_eq!(doc["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(doc["retry_context"]["failure_class"], "test_flake");
}

#[test]
fn a_denial_is_a_normal_result_runs_nothing_and_is_recorded() {
    let fixture = Fixture::named("passing");
    let results = calls(
        fixture.root(),
        json!([
            {"tool": "verify", "arguments": {"target": "src"}},
            {"tool": "verify", "arguments": {"target": "runtime/tests", "pytest_args": ["--rootdir=/"]}},
            {"tool": "check", "arguments": {"target": "../outside"}},
        ]),
    );
    for denied in &results[..2] {
        assert_eq!(
            denied["is_error"], false,
            "a denial is no tool error: {denied}"
        );
        let doc = report(denied);
        assert_eq!(doc["status"], "denied");
        assert_eq!(doc["failure_class"], "policy_denied");
        assert_eq!(doc["decision"]["allowed"], false);
        assert!(!doc["decision"]["reason"].as_str().unwrap().is_empty());
        assert_eq!(doc["attempts"], json!([]), "nothing ran");
        assert!(doc.get("sandbox").is_none());
        assert!(summary(denied).contains("denied: "), "{}", summary(denied));
    }
    assert!(
        results[1]["structured"]["decision"]["reason"]
            .as_str()
            .unwrap()
            .contains("--rootdir"),
        "{}",
        results[1]
    );
    assert_eq!(results[2]["is_error"], false);
    assert_eq!(results[2]["structured"]["allowed"], false);
    let records = ledger_records(&fixture);
    assert_eq!(records.len(), 2, "each denial is recorded");
}

#[test]
fn a_hang_times_out_with_its_whole_process_tree_killed() {
    let fixture = Fixture::named("hang");
    // Room for pytest to reach the hanging test under the sandbox (as in tests/tests/verify.rs).
    let result = call(
        fixture.root(),
        "verify",
        json!({"target": "runtime/tests", "timeout_secs": 8}),
    );
    assert_eq!(
        result["is_error"], false,
        "a timeout is a finding, not a tool error"
    );
    let doc = report(&result);
    assert_eq!(doc["status"], "timeout");
    assert_eq!(doc["failure_class"], "test_timeout");
    assert_eq!(
        doc["timed_out_test"],
        "runtime/tests/test_hang.py::test_hangs"
    );
    assert_eq!(doc["counts"]["passed"], 1, "what finished before the hang");
    assert_eq!(doc["attempts"].as_array().unwrap().len(), 1);
    assert_nothing_left(fixture.root());
    assert_eq!(ledger_records(&fixture).len(), 1);
}

#[test]
fn cancelling_a_verify_from_the_sdk_kills_the_run_and_records_nothing() {
    let fixture = Fixture::named("hang");
    let out = client(
        fixture.root(),
        "cancel",
        Some(json!({
            "call": {"tool": "verify", "arguments": {"target": "runtime/tests"}},
            // Once pytest names the hanging test its grandchild is about to start.
            "cancel_when": "running runtime/tests/test_hang.py::test_hangs",
        })),
    );
    assert_eq!(out["cancelled"], true, "{out}");
    assert_eq!(
        out["answer"],
        Value::Null,
        "the cancelled call was answered: {out}"
    );
    // The search saw the run (the sandbox helpers, pytest) when the client cancelled.
    let running = out["running_at_cancel"].as_array().unwrap();
    assert!(
        running
            .iter()
            .any(|p| p[1].as_str().unwrap().contains("pytest.main(")),
        "{running:?}"
    );
    // With the server still up, nothing of the run is left, and the server still answers.
    assert_eq!(out["left_behind"], json!([]), "{out}");
    assert_eq!(out["server_alive"], true);
    let stats = &out["ledger_stats"];
    assert_eq!(stats["is_error"], false, "{stats}");
    assert_eq!(
        stats["structured"]["runs"], 0,
        "a cancelled run is not recorded"
    );
    // Each process seen then is gone (its pid unused, or reused by something else).
    for process in running {
        let pid = process[0].as_i64().unwrap();
        let now = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        assert_ne!(
            now.trim_end(),
            process[1].as_str().unwrap(),
            "process {pid} of the run is still there"
        );
    }
    assert_nothing_left(fixture.root());
    assert_eq!(ledger_records(&fixture), Vec::<Value>::new());
}

#[test]
fn the_clients_request_timeout_leaves_no_process_behind_and_records_nothing() {
    let fixture = Fixture::named("hang");
    let out = client(
        fixture.root(),
        "cancel",
        Some(json!({
            "call": {"tool": "verify", "arguments": {"target": "runtime/tests"}},
            "read_timeout": 10,
        })),
    );
    // The SDK gives up with an error of its own and tells the server the request is cancelled.
    assert_eq!(out["cancelled"], true, "{out}");
    assert_eq!(out["left_behind"], json!([]), "{out}");
    assert_eq!(out["server_alive"], true);
    assert_eq!(out["ledger_stats"]["structured"]["runs"], 0, "{out}");
    assert_nothing_left(fixture.root());
    assert_eq!(ledger_records(&fixture), Vec::<Value>::new());
}

#[test]
fn two_verify_calls_at_once_on_one_root_are_both_answered_in_turn() {
    let fixture = Fixture::named("failing");
    let failing = "runtime/tests";
    let passing = "runtime/tests/test_math.py::test_right_answer";
    let out = client(
        fixture.root(),
        "queued",
        Some(json!([
            {"tool": "verify", "arguments": {"target": failing}},
            {"tool": "verify", "arguments": {"target": passing}},
        ])),
    );
    let results = out["results"].as_array().unwrap();
    let (first, second) = (report(&results[0]), report(&results[1]));
    assert_eq!(first["target"], failing);
    assert_eq!(first["status"], "failed");
    assert_eq!(first["failure_class"], "test_failure");
    assert_eq!(second["target"], passing);
    assert_eq!(second["status"], "passed");
    assert_eq!(second["counts"]["passed"], 1);
    // The second was sent while the first ran; it waited its turn and was answered after it.
    assert_eq!(out["answered_in_order"], json!([0, 1]));
    let records = ledger_records(&fixture);
    assert_eq!(records.len(), 2);
    let targets: Vec<&str> = records
        .iter()
        .map(|r| r["report"]["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [failing, passing],
        "recorded in the order they ran"
    );
    let mut check = warden();
    check.arg("ledger").arg("verify").arg(fixture.ledger());
    let checked = run(&mut check, None, Duration::from_secs(60));
    assert_eq!(checked.code, Some(0), "{}", checked.stdout);
}

#[test]
fn unknown_tools_and_arguments_outside_the_schema_are_errors_and_the_server_keeps_serving() {
    let fixture = Fixture::named("passing");
    let results = calls(
        fixture.root(),
        json!([
            {"tool": "run_pytest", "arguments": {"target": "runtime/tests"}},
            {"tool": "verify", "arguments": {"target": "runtime/tests", "bogus": 1}},
            {"tool": "verify", "arguments": {}},
            {"tool": "verify", "arguments": {"target": "runtime/tests", "timeout_secs": 0}},
            {"tool": "verify", "arguments": {"target": "runtime/tests", "retries": -1}},
            {"tool": "classify", "arguments": {"seq": 0}},
            {"tool": "policy", "arguments": {}, "progress": false},
        ]),
    );
    let errors: Vec<&Value> = results[..6].iter().map(|r| &r["error"]).collect();
    for error in &errors {
        assert_eq!(error["code"], -32602, "{error}");
    }
    let message = |i: usize| errors[i]["message"].as_str().unwrap();
    assert!(
        message(0).contains("unknown tool `run_pytest`"),
        "{}",
        message(0)
    );
    assert!(
        message(0).contains("verify"),
        "it names the tools there are"
    );
    assert!(message(1).contains("bogus"), "{}", message(1));
    assert!(message(2).contains("target"), "{}", message(2));
    assert!(message(3).contains("timeout_secs"), "{}", message(3));
    assert!(
        message(4).contains("retries") || message(4).contains("-1"),
        "{}",
        message(4)
    );
    assert!(message(5).contains("seq"), "{}", message(5));
    // Nothing ran and nothing was recorded; the next call is answered.
    assert_eq!(ledger_records(&fixture), Vec::<Value>::new());
    let policy = &results[6];
    assert_eq!(policy["is_error"], false, "{policy}");
    assert!(policy["structured"]["rules"].is_array());
}
