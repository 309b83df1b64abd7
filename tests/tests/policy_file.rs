//! Policy files through the real binary: the commented example `examples/policy.toml` loads
//! and decides as it says, and rollback (removing a rule, disabling it, or removing the policy
//! file) denies the rule's requests from the very next invocation.
//!
//! There is no policy cache: every `warden` invocation reads its policy file afresh, so a
//! rollback takes effect at the next request. These tests prove it by editing one file in
//! place between invocations.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use warden_e2e::{Fixture, Run, run, warden, workspace_root};

const DEADLINE: Duration = Duration::from_secs(60);

/// `warden --root ROOT [--policy FILE] --json check --tool T --action A --target X [--arg ..]`.
fn check(root: &Path, policy: Option<&Path>, request: (&str, &str, &str), args: &[&str]) -> Run {
    let (tool, action, target) = request;
    let mut cmd = warden();
    cmd.arg("--root").arg(root);
    if let Some(policy) = policy {
        cmd.arg("--policy").arg(policy);
    }
    cmd.args(["--json", "check", "--tool", tool, "--action", action]);
    cmd.args(["--target", target]);
    for arg in args {
        cmd.arg(format!("--arg={arg}"));
    }
    run(&mut cmd, None, DEADLINE)
}

/// The decision document of an allowed (exit 0) or denied (exit 1) request.
fn decided(out: &Run, allowed: bool) -> Value {
    assert_eq!(
        out.code,
        Some(if allowed { 0 } else { 1 }),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    let doc = out.json();
    assert_eq!(doc["allowed"], allowed, "{doc}");
    doc
}

#[test]
fn the_example_policy_loads_against_the_demo_and_decides_as_documented() {
    let demo = Fixture::demo();
    let policy = workspace_root().join("examples/policy.toml");
    let p = Some(policy.as_path());

    let doc = decided(
        &check(demo.root(), p, ("pytest", "run", "runtime/tests"), &["-x"]),
        true,
    );
    assert_eq!(doc["matched_rules"], json!(["pytest-runtime-tests"]));
    assert_eq!(doc["resolved_target"], "runtime/tests");

    let doc = decided(
        &check(demo.root(), p, ("pytest", "run", "runtime/slow_tests"), &[]),
        false,
    );
    assert_eq!(doc["matched_rules"], json!([]));
    let reason = doc["reason"].as_str().unwrap();
    assert!(
        reason.contains("rule `pytest-slow-tests` would allow it but is disabled"),
        "{reason}"
    );

    decided(
        &check(demo.root(), p, ("pytest", "run", "runtime/testsX"), &[]),
        false,
    );
    decided(
        &check(
            demo.root(),
            p,
            ("pytest", "run", "runtime/tests"),
            &["-p", "evil"],
        ),
        false,
    );
    let doc = decided(
        &check(demo.root(), p, ("fs", "write", "src/calc.py"), &[]),
        true,
    );
    assert_eq!(doc["matched_rules"], json!(["fs-write-code"]));
    let doc = decided(
        &check(
            demo.root(),
            p,
            ("fs", "write", "runtime/tests/conftest.py"),
            &[],
        ),
        false,
    );
    assert_eq!(doc["matched_rules"], json!(["protect-conftest"]));
    let doc = decided(
        &check(demo.root(), p, ("fs", "write", "warden.toml"), &[]),
        false,
    );
    assert_eq!(doc["matched_rules"], json!(["protect-warden"]));
    // Outside the allowed scopes, a write falls to the default deny.
    let doc = decided(
        &check(demo.root(), p, ("fs", "write", "README.md"), &[]),
        false,
    );
    assert_eq!(doc["matched_rules"], json!([]));

    // The same file as `warden.toml` in the root is picked up without `--policy`.
    fs::copy(&policy, demo.root().join("warden.toml")).unwrap();
    let doc = decided(
        &check(
            demo.root(),
            None,
            ("pytest", "run", "runtime/slow_tests"),
            &[],
        ),
        false,
    );
    assert!(
        doc["reason"].as_str().unwrap().contains("is disabled"),
        "{doc}"
    );
}

#[test]
fn the_example_policy_examples_are_checked_at_load() {
    // Breaking one of the file's promises makes it fail to load: exit 2, nothing decided.
    let demo = Fixture::demo();
    let text = fs::read_to_string(workspace_root().join("examples/policy.toml")).unwrap();
    let widened = text.replace(
        "scope = [\"src\", \"runtime/tests\"]",
        "scope = [\"src\", \"runtime/tests\", \".\"]",
    );
    assert_ne!(widened, text, "the example policy changed shape");
    // Widening the writes to the whole root is still safe: the deny rules hold.
    let policy = demo.outside().join("widened.toml");
    fs::write(&policy, &widened).unwrap();
    let doc = decided(
        &check(
            demo.root(),
            Some(&policy),
            ("fs", "write", ".warden/ledger.jsonl"),
            &[],
        ),
        false,
    );
    assert_eq!(doc["matched_rules"], json!(["protect-warden"]));
    // Switching the protection off breaks the examples that pin it.
    let unprotected = widened.replace(
        "scope = [\"warden.toml\", \".warden\"]",
        "scope = [\"warden.toml\", \".warden\"]\nenabled = false",
    );
    assert_ne!(unprotected, widened);
    fs::write(&policy, &unprotected).unwrap();
    let out = check(
        demo.root(),
        Some(&policy),
        ("pytest", "run", "runtime/tests"),
        &[],
    );
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    for fragment in [
        "example #10 \"the policy itself\"",
        "must be denied but the policy allows it",
    ] {
        assert!(out.stderr.contains(fragment), "{}", out.stderr);
    }
    assert!(out.error().contains("invalid policy"), "{}", out.stdout);
}

/// A policy allowing `tests/unit` (rule `unit`) and `runtime/tests` (rule `runtime`);
/// `switch` goes into the `unit` rule.
fn two_rules(switch: &str) -> String {
    format!(
        r#"version = 1

[[rule]]
id = "unit"
effect = "allow"
tool = "pytest"
action = "run"
scope = ["tests/unit"]
{switch}

[[rule]]
id = "runtime"
effect = "allow"
tool = "pytest"
action = "run"
scope = ["runtime/tests"]
"#
    )
}

#[test]
fn removing_or_disabling_a_rule_denies_its_requests_at_the_next_invocation() {
    let demo = Fixture::demo();
    demo.write("tests/unit/test_u.py", "def test_u():\n    pass\n");
    let policy = demo.outside().join("policy.toml");
    let p = Some(policy.as_path());
    let unit = ("pytest", "run", "tests/unit");

    fs::write(&policy, two_rules("")).unwrap();
    let doc = decided(&check(demo.root(), p, unit, &[]), true);
    assert_eq!(doc["matched_rules"], json!(["unit"]));

    // Disabled in place: the very next invocation denies, naming the rule.
    fs::write(&policy, two_rules("enabled = false")).unwrap();
    let doc = decided(&check(demo.root(), p, unit, &[]), false);
    assert_eq!(doc["matched_rules"], json!([]));
    let reason = doc["reason"].as_str().unwrap();
    assert!(reason.contains("default deny"), "{reason}");
    assert!(
        reason.contains("rule `unit` would allow it but is disabled"),
        "{reason}"
    );
    // The other rule is untouched.
    let doc = decided(
        &check(demo.root(), p, ("pytest", "run", "runtime/tests"), &[]),
        true,
    );
    assert_eq!(doc["matched_rules"], json!(["runtime"]));

    // Re-enabled: allowed again at once.
    fs::write(&policy, two_rules("enabled = true")).unwrap();
    decided(&check(demo.root(), p, unit, &[]), true);

    // Removed: denied at once, by default.
    let without: String = two_rules("")
        .split("[[rule]]")
        .filter(|block| !block.contains("id = \"unit\""))
        .collect::<Vec<_>>()
        .join("[[rule]]");
    assert!(!without.contains("\"unit\""));
    fs::write(&policy, without).unwrap();
    let doc = decided(&check(demo.root(), p, unit, &[]), false);
    assert_eq!(doc["matched_rules"], json!([]));
    assert!(
        doc["reason"]
            .as_str()
            .unwrap()
            .contains("outside every scope"),
        "{doc}"
    );
}

#[test]
fn removing_warden_toml_rolls_back_to_the_builtin_policy_at_once() {
    let demo = Fixture::demo();
    demo.write("tests/unit/test_u.py", "def test_u():\n    pass\n");
    demo.write("warden.toml", &two_rules(""));
    let unit = ("pytest", "run", "tests/unit");
    decided(&check(demo.root(), None, unit, &[]), true);

    fs::remove_file(demo.root().join("warden.toml")).unwrap();
    let doc = decided(&check(demo.root(), None, unit, &[]), false);
    assert_eq!(doc["matched_rules"], json!([]));
    // The built-in policy decides now.
    let doc = decided(
        &check(demo.root(), None, ("pytest", "run", "runtime/tests"), &[]),
        true,
    );
    assert_eq!(doc["matched_rules"], json!(["pytest-runtime-tests"]));
    let mut cmd = warden();
    cmd.arg("--root").arg(demo.root()).args([
        "check",
        "--tool",
        "pytest",
        "--action",
        "run",
        "--target",
        "runtime/tests",
    ]);
    let out = run(&mut cmd, None, DEADLINE);
    assert!(out.stdout.contains("policy: built-in"), "{}", out.stdout);
}
