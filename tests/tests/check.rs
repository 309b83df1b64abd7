//! `warden check` end to end: the real binary, both request forms, exit codes, JSON, policies.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use serde_json::{Value, json};
use warden_e2e::{Fixture, Run, run, warden};

const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `warden --root ROOT ARGS...` with optional stdin.
fn check(fixture: &Fixture, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = warden();
    cmd.arg("--root").arg(fixture.root()).args(args);
    run(&mut cmd, stdin.map(str::as_bytes), DEADLINE)
}

/// `--tool pytest --action run --target TARGET`: a pytest request in flag form.
fn pytest_flags(target: &str) -> [&str; 6] {
    ["--tool", "pytest", "--action", "run", "--target", target]
}

/// Runs `warden --root ROOT BEFORE... --tool pytest --action run --target TARGET AFTER...`.
fn check_pytest(fixture: &Fixture, before: &[&str], target: &str, after: &[&str]) -> Run {
    check(
        fixture,
        &[before, &pytest_flags(target), after].concat(),
        None,
    )
}

/// `warden --json check` of a pytest request, each of `extra` passed with `--arg`.
fn pytest_json(fixture: &Fixture, target: &str, extra: &[&str]) -> Run {
    let args: Vec<&str> = extra.iter().flat_map(|arg| ["--arg", arg]).collect();
    check_pytest(fixture, &["--json", "check"], target, &args)
}

/// The `reason` of a `--json` decision.
fn reason(out: &Run) -> String {
    out.json()["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason: {}", out.stdout))
        .to_owned()
}

fn keys(doc: &Value) -> BTreeSet<String> {
    doc.as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect()
}

const CONTRACT_KEYS: [&str; 7] = [
    "allowed",
    "reason",
    "matched_rules",
    "tool",
    "action",
    "target",
    "resolved_target",
];

fn assert_contract_shape(doc: &Value) {
    let want: BTreeSet<String> = CONTRACT_KEYS.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(keys(doc), want, "{doc}");
    assert!(doc["allowed"].is_boolean());
    assert!(doc["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(
        doc["matched_rules"]
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string))
    );
    assert!(doc["tool"].is_string() && doc["action"].is_string());
    assert!(doc["target"].is_string() || doc["target"].is_null());
    assert!(doc["resolved_target"].is_string() || doc["resolved_target"].is_null());
}

#[test]
fn flag_form_allows_and_prints_the_contract_json() {
    let demo = Fixture::demo();
    let out = pytest_json(
        &demo,
        "./runtime//tests",
        &["-x", "--maxfail=2", "-k", "add or sub"],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_contract_shape(&doc);
    assert_eq!(doc["allowed"], true);
    assert_eq!(doc["matched_rules"], json!(["pytest-runtime-tests"]));
    assert_eq!(doc["tool"], "pytest");
    assert_eq!(doc["action"], "run");
    assert_eq!(doc["target"], "./runtime//tests");
    assert_eq!(doc["resolved_target"], "runtime/tests");
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "one document: {}",
        out.stdout
    );
    assert!(
        out.stderr.is_empty(),
        "no diagnostics by default: {}",
        out.stderr
    );
}

#[test]
fn node_ids_keep_their_suffix() {
    let demo = Fixture::demo();
    let out = pytest_json(&demo, "runtime/tests/test_calc.py::test_add[a::b]", &[]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert_eq!(
        out.json()["resolved_target"],
        "runtime/tests/test_calc.py::test_add[a::b]"
    );
}

#[test]
fn flag_form_denies_with_exit_1() {
    let demo = Fixture::demo();
    let cases: &[(&str, &[&str], &str)] = &[
        ("runtime/testsX", &[], "default deny"),
        ("runtime/tests/../../..", &[], "leaves the root"),
        ("/etc", &[], "absolute"),
        ("runtime/tests", &["--rootdir=/"], "`--rootdir`"),
        ("runtime/tests", &["-pevil"], "`-p evil`"),
        ("runtime/tests", &["@args.txt"], "@"),
        ("runtime/tests", &["src"], "another target"),
        ("-x", &[], "option"),
    ];
    for (target, extra, fragment) in cases {
        let out = pytest_json(&demo, target, extra);
        assert_eq!(
            out.code,
            Some(1),
            "{target} {extra:?}: {}{}",
            out.stdout,
            out.stderr
        );
        let doc = out.json();
        assert_contract_shape(&doc);
        assert_eq!(doc["allowed"], false);
        assert_eq!(doc["resolved_target"], Value::Null);
        assert_eq!(doc["matched_rules"], json!([]));
        assert_eq!(doc["target"], *target);
        let reason = doc["reason"].as_str().unwrap();
        assert!(reason.contains(fragment), "{target} {extra:?}: {reason}");
    }
}

#[test]
fn deny_rules_are_named() {
    let demo = Fixture::demo();
    let out = check(
        &demo,
        &[
            "check",
            "--json",
            "--tool",
            "fs",
            "--action",
            "write",
            "--target",
            "docs/00_foundations/x.md",
        ],
        None,
    );
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let doc = out.json();
    assert_eq!(doc["matched_rules"], json!(["protect-foundations"]));
    let allowed = check(
        &demo,
        &[
            "--json",
            "check",
            "--tool",
            "fs",
            "--action",
            "write",
            "--target",
            "src/new.py",
        ],
        None,
    );
    assert_eq!(allowed.code, Some(0), "{}", allowed.stdout);
    assert_eq!(allowed.json()["matched_rules"], json!(["fs-write-root"]));
    let other = check(
        &demo,
        &["--json", "check", "--tool", "shell", "--action", "exec"],
        None,
    );
    assert_eq!(other.code, Some(1));
    assert_eq!(other.json()["target"], Value::Null);
}

#[test]
fn request_form_from_a_file_and_from_stdin() {
    let demo = Fixture::demo();
    let allowed = r#"{"tool": "pytest", "action": "run", "args": {"target": "runtime/tests", "extra_args": ["-x"]}}"#;
    let denied = r#"{"tool": "pytest", "action": "run", "args": {"target": "runtime/tests", "extra_args": ["-c", "/dev/null"]}}"#;
    let file = demo.outside().join("request.json");
    fs::write(&file, allowed).unwrap();
    let out = check(
        &demo,
        &["--json", "check", "--request", file.to_str().unwrap()],
        None,
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_contract_shape(&doc);
    assert_eq!(doc["resolved_target"], "runtime/tests");

    let out = check(&demo, &["--json", "check", "--request", "-"], Some(allowed));
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.json()["allowed"], true);

    let out = check(&demo, &["--json", "check", "--request", "-"], Some(denied));
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        reason(&out).contains("configuration file"),
        "{}",
        out.stdout
    );
}

#[test]
fn human_output_is_for_people() {
    let demo = Fixture::demo();
    let out = check_pytest(&demo, &["check"], "runtime/tests", &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("allowed: pytest/run runtime/tests"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("reason: allowed by rule `pytest-runtime-tests`"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("policy: built-in"), "{}", out.stdout);
    assert!(serde_json::from_str::<Value>(&out.stdout).is_err());
    let out = check_pytest(&demo, &["check"], "runtime/testsX", &[]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stdout.starts_with("denied: pytest/run runtime/testsX"),
        "{}",
        out.stdout
    );
}

#[test]
fn every_error_exits_2_with_a_message() {
    let demo = Fixture::demo();
    let missing = demo.outside().join("missing.json");
    let bad_json = demo.outside().join("bad.json");
    fs::write(&bad_json, "{\"tool\": \"pytest\",").unwrap();
    let unknown_key = demo.outside().join("unknown.json");
    fs::write(&unknown_key, r#"{"tool": "pytest", "action": "run", "args": {"target": "runtime/tests", "rootdir": "/"}}"#).unwrap();
    let root_file = demo.root().join("pytest.ini");
    let missing_policy = demo.outside().join("nope.toml");
    let cases: Vec<(Vec<String>, Option<&str>, &str)> = vec![
        (
            vec!["--root".into(), "/nonexistent/warden-root".into()],
            None,
            "cannot open the root",
        ),
        (
            vec!["--root".into(), root_file.display().to_string()],
            None,
            "not a directory",
        ),
        (
            vec!["--request".into(), missing.display().to_string()],
            None,
            "cannot read the request",
        ),
        (
            vec!["--request".into(), bad_json.display().to_string()],
            None,
            "not a valid request",
        ),
        (
            vec!["--request".into(), unknown_key.display().to_string()],
            None,
            "unknown field `rootdir`",
        ),
        (
            vec!["--request".into(), "-".into()],
            Some("not json"),
            "not a valid request",
        ),
        (
            vec!["--request".into(), "-".into()],
            Some(""),
            "not a valid request",
        ),
        (
            vec!["--policy".into(), missing_policy.display().to_string()],
            None,
            "cannot read the policy file",
        ),
    ];
    for (extra, stdin, fragment) in &cases {
        let mut args: Vec<&str> = vec!["check"];
        let uses_request = extra.iter().any(|a| a == "--request");
        if !uses_request {
            args.extend(pytest_flags("runtime/tests"));
        }
        args.extend(extra.iter().map(String::as_str));
        let out = check(&demo, &args, *stdin);
        assert_eq!(out.code, Some(2), "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(fragment), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("warden: error: "),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        // With --json, stdout carries the error as one document too.
        args.push("--json");
        let out = check(&demo, &args, *stdin);
        assert_eq!(out.code, Some(2));
        assert!(out.error().contains(fragment), "{}", out.stdout);
    }
}

#[test]
fn usage_errors_exit_2() {
    let demo = Fixture::demo();
    let cases: &[&[&str]] = &[
        &["check", "--tool", "pytest"],
        &["check"],
        &["check", "--request", "-", "--tool", "pytest"],
        &["check", "--request", "-", "--target", "x"],
        &["check", "--tool", "pytest", "--action", "run", "--bogus"],
        &["frobnicate"],
        &[],
    ];
    for args in cases {
        let out = check(&demo, args, Some("{}"));
        assert_eq!(out.code, Some(2), "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

const CUSTOM_POLICY: &str = r#"
version = 1

[limits]
timeout_secs = 60

[[rule]]
id = "unit-only"
effect = "allow"
tool = "pytest"
action = "run"
scope = ["tests/unit"]

[[example]]
expect = "deny"
tool = "pytest"
action = "run"
target = "runtime/tests"
"#;

#[test]
fn custom_policy_file() {
    let demo = Fixture::demo();
    demo.write("tests/unit/test_u.py", "def test_u(): pass\n");
    let policy = demo.outside().join("custom.toml");
    fs::write(&policy, CUSTOM_POLICY).unwrap();
    let policy = policy.to_str().unwrap();
    let out = check_pytest(
        &demo,
        &["--policy", policy, "--json", "check"],
        "tests/unit",
        &[],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.json()["matched_rules"], json!(["unit-only"]));
    let out = check_pytest(
        &demo,
        &["check", "--json"],
        "runtime/tests",
        &["--policy", policy],
    );
    assert_eq!(out.code, Some(1), "{}", out.stdout);
}

#[test]
fn broken_policy_files_exit_2() {
    let demo = Fixture::demo();
    let cases: &[(&str, &str)] = &[
        ("version = 1\n[[rule]]\nid = \"x\"\n", "missing field"),
        ("version = 1\nsurprise = true\n", "unknown field `surprise`"),
        ("version = 1\n[limits]\ntimeout_secs = 0\n", "timeout_secs"),
        (
            "version = 1\n[[example]]\nname = \"tests run\"\nexpect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\ntarget = \"runtime/tests\"\n",
            "example #1 \"tests run\"",
        ),
    ];
    for (text, fragment) in cases {
        let policy = demo.outside().join("broken.toml");
        fs::write(&policy, text).unwrap();
        let out = check_pytest(
            &demo,
            &["--policy", policy.to_str().unwrap(), "check"],
            "runtime/tests",
            &[],
        );
        assert_eq!(out.code, Some(2), "{text}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains("invalid policy"), "{}", out.stderr);
        assert!(out.stderr.contains(fragment), "{text}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn warden_toml_in_the_root_is_picked_up() {
    let demo = Fixture::demo();
    demo.write("tests/unit/test_u.py", "def test_u(): pass\n");
    demo.write("warden.toml", CUSTOM_POLICY);
    let out = check_pytest(&demo, &["--json", "check"], "tests/unit", &[]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.json()["matched_rules"], json!(["unit-only"]));
    let out = check_pytest(&demo, &["--json", "check"], "runtime/tests", &[]);
    assert_eq!(
        out.code,
        Some(1),
        "warden.toml replaces the built-in policy: {}",
        out.stdout
    );
    // --policy wins over warden.toml.
    let builtin = demo.policy("");
    let out = check_pytest(
        &demo,
        &["--policy", builtin.to_str().unwrap(), "--json", "check"],
        "runtime/tests",
        &[],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    // A broken warden.toml stops everything.
    demo.write("warden.toml", "version = 1\nrules = []\n");
    let out = check_pytest(&demo, &["--json", "check"], "runtime/tests", &[]);
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("warden.toml"), "{}", out.stderr);
}

#[test]
fn symlink_escapes_are_denied_through_the_binary() {
    let demo = Fixture::demo();
    let outside = demo.outside();
    fs::write(outside.join("test_secret.py"), "def test_secret(): pass\n").unwrap();
    demo.symlink("runtime/tests/evil", &outside);
    let out = pytest_json(&demo, "runtime/tests", &[]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let why = reason(&out);
    assert!(why.contains("`runtime/tests/evil` beneath target"), "{why}");
    assert!(why.contains("outside the root"), "{why}");
    let out = pytest_json(&demo, "runtime/tests/evil/test_secret.py", &[]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        reason(&out).contains("through symlink `runtime/tests/evil`"),
        "{}",
        out.stdout
    );
    // A file next to the link is still fine: only what pytest would reach matters.
    let out = pytest_json(&demo, "runtime/tests/test_calc.py", &[]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);

    let sibling = Fixture::demo();
    sibling.write("runtime/testsX/test_x.py", "def test_x(): pass\n");
    sibling.symlink("runtime/tests/sib", "../testsX");
    let out = pytest_json(&sibling, "runtime/tests/sib/test_x.py", &[]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        reason(&out).contains("outside scope `runtime/tests`"),
        "{}",
        out.stdout
    );
}

#[test]
fn diagnostics_go_to_stderr_only() {
    let demo = Fixture::demo();
    let out = check_pytest(&demo, &["-vv", "--json", "check"], "runtime/tests", &[]);
    assert_eq!(out.code, Some(0));
    assert_eq!(out.json()["allowed"], true);
    assert!(out.stderr.contains("governance loaded"), "{}", out.stderr);
    let mut cmd = warden();
    cmd.env("RUST_LOG", "info")
        .arg("--root")
        .arg(demo.root())
        .args(["check", "--json"])
        .args(pytest_flags("runtime/tests"));
    let out = run(&mut cmd, None, DEADLINE);
    assert_eq!(out.code, Some(0));
    assert_eq!(out.json()["allowed"], true);
    assert!(out.stderr.contains("governance loaded"), "{}", out.stderr);
}

#[test]
fn root_defaults_to_the_current_directory() {
    let demo = Fixture::demo();
    let mut cmd = warden();
    cmd.current_dir(demo.root())
        .args(["check", "--json"])
        .args(pytest_flags("runtime/tests"));
    let out = run(&mut cmd, None, DEADLINE);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let sub = demo.root().join("runtime");
    let mut cmd = warden();
    cmd.current_dir(&sub)
        .args(["-v", "check", "--json"])
        .args(pytest_flags("runtime/tests"));
    let out = run(&mut cmd, None, DEADLINE);
    assert!(
        out.stderr.contains(&format!("root={}", sub.display())),
        "the root is the current directory: {}",
        out.stderr
    );
}
