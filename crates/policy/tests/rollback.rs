//! Rollback: removing a rule, or switching it off with `enabled = false`, takes effect at the
//! next decision, and a switched-off rule is still held to every validation rule.

mod common;

use common::World;
use warden_policy::{InvalidPolicy, Policy, PolicyError, ToolRequest};

/// A policy with an allow rule for `runtime/tests`, a second allow rule for `src`, and a deny
/// rule protecting `src/vendor`; `switch` is inserted into the `runtime-tests` rule.
fn policy(switch: &str) -> String {
    format!(
        r#"
version = 1

[[rule]]
id = "runtime-tests"
effect = "allow"
tool = "pytest"
action = "run"
scope = ["runtime/tests"]
{switch}

[[rule]]
id = "src-writes"
effect = "allow"
tool = "fs"
action = "write"
scope = ["src"]

[[rule]]
id = "vendor"
effect = "deny"
tool = "fs"
action = "write"
scope = ["src/vendor"]
"#
    )
}

fn tests_request() -> ToolRequest {
    ToolRequest::pytest_run("runtime/tests", ["-x"])
}

fn problem(text: &str) -> InvalidPolicy {
    match Policy::from_toml_str(text) {
        Ok(_) => panic!("loaded but should not:\n{text}"),
        Err(PolicyError::Invalid { problem, .. }) => problem,
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[test]
fn removing_an_allow_rule_denies_its_requests_at_once() {
    let world = World::new();
    let with_rule = Policy::from_toml_str(&policy("")).unwrap();
    let allowed = with_rule.decide(&world.root, &tests_request());
    assert!(allowed.allowed, "{}", allowed.reason);
    assert_eq!(allowed.matched_rules, ["runtime-tests"]);

    // The same file with the rule deleted: the request falls to the default deny.
    let text = policy("");
    let start = text.find("[[rule]]\nid = \"runtime-tests\"").unwrap();
    let end = text.find("[[rule]]\nid = \"src-writes\"").unwrap();
    let without = format!("{}{}", &text[..start], &text[end..]);
    assert!(!without.contains("runtime-tests"));
    let rolled_back = Policy::from_toml_str(&without).unwrap();
    let denied = rolled_back.decide(&world.root, &tests_request());
    assert!(!denied.allowed);
    assert!(denied.matched_rules.is_empty());
    assert!(
        denied.reason.contains("no allow rule for pytest/run"),
        "{}",
        denied.reason
    );
    assert!(denied.reason.contains("default deny"), "{}", denied.reason);
    // Nothing else changed.
    let write = rolled_back.decide(&world.root, &ToolRequest::fs_write("src/calc.py"));
    assert_eq!(write.matched_rules, ["src-writes"]);
}

#[test]
fn disabling_an_allow_rule_denies_its_requests_and_names_the_rule() {
    let world = World::new();
    let disabled = Policy::from_toml_str(&policy("enabled = false")).unwrap();
    let denied = disabled.decide(&world.root, &tests_request());
    assert!(!denied.allowed);
    assert!(
        denied.matched_rules.is_empty(),
        "a disabled rule decides nothing"
    );
    assert!(denied.reason.contains("default deny"), "{}", denied.reason);
    assert!(
        denied
            .reason
            .contains("rule `runtime-tests` would allow it but is disabled (`enabled = false`)"),
        "{}",
        denied.reason
    );
    // A node id inside the scope is refused the same way; one outside it does not mention
    // the disabled rule, which would not have allowed it either.
    let node = disabled.decide(
        &world.root,
        &ToolRequest::pytest_run("runtime/tests/test_a.py::test_x", Vec::<String>::new()),
    );
    assert!(!node.allowed);
    assert!(node.reason.contains("`runtime-tests`"), "{}", node.reason);
    let sibling = disabled.decide(
        &world.root,
        &ToolRequest::pytest_run("runtime/testsX", Vec::<String>::new()),
    );
    assert!(!sibling.allowed);
    assert!(!sibling.reason.contains("disabled"), "{}", sibling.reason);
    // Authorisation follows the decision: no permission is handed out.
    assert!(
        !disabled
            .authorize(&world.root, &tests_request())
            .is_allowed()
    );
    // The other rules still work.
    let write = disabled.decide(&world.root, &ToolRequest::fs_write("src/calc.py"));
    assert_eq!(write.matched_rules, ["src-writes"]);
}

#[test]
fn enabled_is_true_by_default_and_may_be_written_out() {
    let world = World::new();
    for switch in ["", "enabled = true"] {
        let policy = Policy::from_toml_str(&policy(switch)).unwrap();
        let decision = policy.decide(&world.root, &tests_request());
        assert!(decision.allowed, "{switch:?}: {}", decision.reason);
        assert_eq!(decision.matched_rules, ["runtime-tests"]);
    }
}

#[test]
fn disabling_a_deny_rule_reopens_what_it_protected() {
    let world = World::new();
    world.file("src/vendor/lib.py");
    let write = ToolRequest::fs_write("src/vendor/lib.py");
    let on = Policy::from_toml_str(&policy("")).unwrap();
    assert_eq!(on.decide(&world.root, &write).matched_rules, ["vendor"]);
    let text = policy("").replace(
        "scope = [\"src/vendor\"]",
        "scope = [\"src/vendor\"]\nenabled = false",
    );
    let off = Policy::from_toml_str(&text).unwrap();
    let decision = off.decide(&world.root, &write);
    assert!(decision.allowed, "{}", decision.reason);
    assert_eq!(decision.matched_rules, ["src-writes"]);
}

#[test]
fn examples_guard_against_switching_off_the_wrong_rule() {
    // An example that pins the protection makes a file that disables it fail to load.
    let guarded = format!(
        "{}\n[[example]]\nexpect = \"deny\"\ntool = \"fs\"\naction = \"write\"\ntarget = \"src/vendor/lib.py\"\nmatched_rules = [\"vendor\"]\n",
        policy("").replace(
            "scope = [\"src/vendor\"]",
            "scope = [\"src/vendor\"]\nenabled = false"
        )
    );
    assert!(matches!(
        problem(&guarded),
        InvalidPolicy::ExampleFailed {
            expected_allowed: false,
            ..
        }
    ));
    // And an example expecting a disabled rule to decide fails too.
    let stale = format!(
        "{}\n[[example]]\nexpect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\ntarget = \"runtime/tests\"\n",
        policy("enabled = false")
    );
    let shown = problem(&stale).to_string();
    assert!(
        shown.contains("must be allowed but the policy denies it"),
        "{shown}"
    );
    assert!(shown.contains("is disabled"), "{shown}");
}

#[test]
fn a_disabled_rule_is_still_validated() {
    let bad_scope = policy("enabled = false").replace("[\"runtime/tests\"]", "[\"../elsewhere\"]");
    assert!(matches!(
        problem(&bad_scope),
        InvalidPolicy::BadScope { rule, .. } if rule == "runtime-tests"
    ));
    let unknown_tool = policy("enabled = false").replace("tool = \"pytest\"", "tool = \"shell\"");
    assert!(matches!(
        problem(&unknown_tool),
        InvalidPolicy::UnknownTool { .. }
    ));
    let duplicate =
        policy("enabled = false").replace("id = \"src-writes\"", "id = \"runtime-tests\"");
    assert!(matches!(
        problem(&duplicate),
        InvalidPolicy::DuplicateRuleId { .. }
    ));
    for switch in ["enabled = \"no\"", "enabled = 0", "enabled = \"false\""] {
        match problem(&policy(switch)) {
            InvalidPolicy::Toml(message) => {
                assert!(message.contains("enabled"), "{switch}: {message}");
            }
            other => panic!("{switch}: {other:?}"),
        }
    }
    // A misspelt key is an error, not a silently enabled rule.
    match problem(&policy("enable = false")) {
        InvalidPolicy::Toml(message) => {
            assert!(message.contains("unknown field `enable`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
