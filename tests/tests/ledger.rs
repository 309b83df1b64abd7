//! `warden ledger verify` and `warden ledger stats` end to end, on ledgers written by real
//! `warden verify` runs: intact, tampered, corrupt and torn chains, and the success metrics.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use warden_e2e::{Fixture, Run, read_lines, run, verify_json, warden, write_lines};

const DEADLINE: Duration = Duration::from_secs(60);

/// `warden [--json] ledger SUBCOMMAND FILE`.
fn ledger(subcommand: &str, file: &Path, json: bool) -> Run {
    let mut cmd = warden();
    if json {
        cmd.arg("--json");
    }
    cmd.args(["ledger", subcommand]).arg(file);
    run(&mut cmd, None, DEADLINE)
}

/// A project whose ledger holds four real runs, oldest first: a pass, a flake, a failure and
/// a denial.
fn recorded() -> Fixture {
    let fixture = Fixture::named("flaky");
    let state = fixture.outside().join("state");
    fixture.write("runtime/tests/state_dir.txt", state.to_str().unwrap());
    fixture.write(
        "runtime/tests/test_wrong.py",
        "def test_wrong():\n    assert 6 * 9 == 42\n",
    );
    for (target, code) in [
        ("runtime/tests/test_flaky.py::test_steady", 0),
        ("runtime/tests/test_flaky.py::test_fails_first_time", 0),
        ("runtime/tests/test_wrong.py", 1),
        ("src", 3),
    ] {
        let out = verify_json(fixture.root(), &[target, "--retries", "1"]);
        assert_eq!(
            out.code,
            Some(code),
            "{target}: {}{}",
            out.stdout,
            out.stderr
        );
    }
    fixture
}

#[test]
fn a_ledger_of_real_runs_is_intact() {
    let fixture = recorded();
    let out = ledger("verify", &fixture.ledger(), true);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["intact"], true);
    assert_eq!(doc["status"], "intact");
    assert_eq!(doc["records"], 4);
    let last: Value = serde_json::from_str(read_lines(&fixture.ledger()).last().unwrap()).unwrap();
    assert_eq!(doc["head"], last["hash"]);

    let out = ledger("verify", &fixture.ledger(), false);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("intact: 4 records"), "{}", out.stdout);
}

#[test]
fn one_changed_byte_is_caught_and_the_record_named() {
    let fixture = recorded();
    let path = fixture.ledger();
    let mut records = read_lines(&path);
    // Rewrite history: the failing run's first attempt "passed".
    assert!(records[2].contains(r#""failed":1"#));
    records[2] = records[2].replacen(r#""failed":1"#, r#""failed":0"#, 1);
    write_lines(&path, &records);

    let out = ledger("verify", &path, true);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["intact"], false);
    assert_eq!(doc["status"], "tampered");
    assert_eq!(
        (doc["line"].clone(), doc["seq"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(doc["problem"]["kind"], "hash_mismatch");

    let out = ledger("verify", &path, false);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stdout.contains("tampered: line 3 (record seq 3)"),
        "{}",
        out.stdout
    );

    // Metrics over a broken chain would be evidence of nothing.
    let out = ledger("stats", &path, true);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(out.error().contains("line 3"), "{}", out.stdout);

    // And no verification chains onto it or runs on it.
    let out = verify_json(
        fixture.root(),
        &["runtime/tests/test_flaky.py::test_steady"],
    );
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    assert_eq!(read_lines(&path).len(), 4);
}

#[test]
fn a_removed_record_and_a_garbage_line_are_reported() {
    let fixture = recorded();
    let path = fixture.ledger();
    let records = read_lines(&path);

    let mut removed = records.clone();
    removed.remove(1);
    write_lines(&path, &removed);
    let doc = ledger("verify", &path, true).json();
    assert_eq!(doc["status"], "tampered");
    assert_eq!(doc["line"], 2);
    assert_eq!(doc["problem"]["kind"], "sequence_break");

    let mut garbage = records.clone();
    garbage[1] = "not a record".to_owned();
    write_lines(&path, &garbage);
    let out = ledger("verify", &path, true);
    assert_eq!(out.code, Some(1));
    let doc = out.json();
    assert_eq!(doc["status"], "corrupt");
    assert_eq!(doc["line"], 2);
}

#[test]
fn a_torn_final_line_is_reported_apart_from_tampering_and_healed_by_the_next_run() {
    let fixture = recorded();
    let path = fixture.ledger();
    let text = fs::read_to_string(&path).unwrap();
    // A crash mid-append: the last record lost its end and its newline.
    fs::write(&path, &text[..text.len() - 40]).unwrap();

    let out = ledger("verify", &path, true);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["status"], "torn_tail");
    assert_eq!(doc["intact"], false);
    assert_eq!(doc["records"], 3);
    assert_eq!(doc["line"], 4);
    let out = ledger("verify", &path, false);
    assert!(out.stdout.contains("torn tail"), "{}", out.stdout);
    assert!(out.stdout.contains("not tampering"), "{}", out.stdout);
    assert!(!out.stdout.contains("tampered"), "{}", out.stdout);

    // Stats count the three whole records and say the tail is torn.
    let out = ledger("stats", &path, true);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let stats = out.json();
    assert_eq!(stats["runs"], 3);
    assert_eq!(stats["torn_tail"], true);

    // The next verification cuts the torn line off and chains on.
    let out = verify_json(
        fixture.root(),
        &["runtime/tests/test_flaky.py::test_steady"],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let doc = ledger("verify", &path, true).json();
    assert_eq!(doc["status"], "intact");
    assert_eq!(doc["records"], 4);
}

#[test]
fn stats_of_real_runs_match_the_records() {
    let fixture = recorded();
    let path = fixture.ledger();
    let records: Vec<Value> = read_lines(&path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let out = ledger("stats", &path, true);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let stats = out.json();
    assert_eq!(stats["schema_version"], 1);
    assert_eq!(stats["runs"], 4);
    assert_eq!(stats["executed_runs"], 3);
    assert_eq!(stats["torn_tail"], false);
    assert_eq!(
        stats["by_status"],
        json!({"passed": 2, "failed": 1, "timeout": 0, "denied": 1, "error": 0})
    );
    let classes = &stats["failure_classes"];
    assert_eq!(classes["test_flake"], 1);
    assert_eq!(classes["test_failure"], 1);
    assert_eq!(classes["policy_denied"], 1);
    assert_eq!(classes["test_timeout"], 0);
    assert_eq!(stats["flaky_runs"], 1);
    assert_eq!(
        stats["flakiest_tests"],
        json!([{"nodeid": "runtime/tests/test_flaky.py::test_fails_first_time", "flaky_runs": 1}])
    );
    let rate = |key: &str| stats[key].as_f64().unwrap();
    assert!((rate("pass_rate") - 2.0 / 3.0).abs() < 1e-9);
    assert!((rate("flake_rate") - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(rate("timeout_rate"), 0.0);
    // Test time: the executed runs' durations, and every attempt's.
    let executed = records.iter().filter(|r| r["report"]["status"] != "denied");
    let total: u64 = executed
        .clone()
        .map(|r| r["report"]["duration_ms"].as_u64().unwrap())
        .sum();
    let attempts: u64 = executed
        .flat_map(|r| r["report"]["attempts"].as_array().unwrap().clone())
        .map(|a| a["duration_ms"].as_u64().unwrap())
        .sum();
    assert_eq!(stats["test_time"]["total_ms"], total);
    assert_eq!(stats["test_time"]["attempts_ms"], attempts);
    assert_eq!(stats["first_ts_ms"], records[0]["ts_ms"]);
    assert_eq!(stats["last_ts_ms"], records[3]["ts_ms"]);

    let out = ledger("stats", &path, false);
    assert_eq!(out.code, Some(0));
    for expected in [
        "pass rate",
        "66.7%",
        "flake rate",
        "33.3%",
        "runtime/tests/test_flaky.py::test_fails_first_time",
    ] {
        assert!(
            out.stdout.contains(expected),
            "{expected:?}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn a_missing_ledger_is_an_error_not_an_empty_chain() {
    let fixture = Fixture::empty();
    let missing = fixture.root().join(".warden/ledger.jsonl");
    for subcommand in ["verify", "stats"] {
        let out = ledger(subcommand, &missing, true);
        assert_eq!(
            out.code,
            Some(2),
            "{subcommand}: {}{}",
            out.stdout,
            out.stderr
        );
        assert!(out.error().contains("does not exist"), "{}", out.stdout);
    }
    // An empty file is an empty, intact ledger.
    fixture.write("empty.jsonl", "");
    let out = ledger("verify", &fixture.root().join("empty.jsonl"), true);
    assert_eq!(out.code, Some(0));
    assert_eq!(out.json()["records"], 0);
}
