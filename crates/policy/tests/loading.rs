//! Policy files: what loads, and every way a file fails to load.

mod common;

use std::fs;
use std::time::Duration;

use common::World;
use warden_policy::{InvalidPolicy, Limits, Policy, PolicyError, Root, ToolRequest};

const RULE: &str = r#"
[[rule]]
id = "tests"
effect = "allow"
tool = "pytest"
action = "run"
scope = ["tests"]
"#;

fn problem(text: &str) -> InvalidPolicy {
    match Policy::from_toml_str(text) {
        Ok(_) => panic!("loaded but should not:\n{text}"),
        Err(PolicyError::Invalid { origin, problem }) => {
            assert_eq!(origin, "(string)");
            problem
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

fn message(text: &str) -> String {
    problem(text).to_string()
}

#[test]
fn builtin_is_the_contract_default() {
    let policy = Policy::builtin();
    assert_eq!(policy.origin(), "built-in");
    // The sandbox keeps the built-in deny rules' surfaces read-only to tests too.
    let mut expected = Limits::default();
    expected.sandbox.protected = policy.limits().sandbox.protected.clone();
    assert!(
        expected
            .sandbox
            .protected
            .contains(&"docs/00_foundations".to_owned())
    );
    assert_eq!(policy.limits(), &expected);
    assert_eq!(policy.limits().timeout, Duration::from_secs(300));
    assert_eq!(policy.limits().grace, Duration::from_secs(5));
    assert_eq!(policy.limits().budget, Duration::from_secs(600));
    assert_eq!(policy.limits().output_cap_bytes, 51_200);
    assert_eq!(policy.limits().retries, 2);
    assert!(policy.limits().env_allow.is_empty());
    assert_eq!(policy.limits().python, None);
    // The embedded file is the same policy, loadable like any other file.
    let parsed = Policy::from_toml_str(Policy::BUILTIN_TOML).unwrap();
    assert_eq!(parsed.limits(), policy.limits());
}

#[test]
fn builtin_examples_also_hold_on_a_real_root() {
    let world = World::new();
    Policy::from_toml_str_for(&world.root, Policy::BUILTIN_TOML).unwrap();
}

#[test]
fn a_full_file_loads() {
    let policy = Policy::from_toml_str(
        r#"
        version = 1
        [limits]
        timeout_secs = 30
        grace_secs = 0
        budget_secs = 120
        output_cap_bytes = 4096
        retries = 0
        env_allow = ["LANG", "MY_FLAG"]
        python = "/usr/bin/python3"

        [[rule]]
        id = "all.tests_1"
        effect = "allow"
        tool = "*"
        action = "*"
        scope = ["tests/", "./more//tests"]
        description = "tests and files under tests"

        [[rule]]
        id = "no-fixtures"
        effect = "deny"
        tool = "fs"
        action = "*"
        scope = ["tests/fixtures"]

        [[example]]
        expect = "allow"
        tool = "pytest"
        action = "run"
        target = "more/tests/test_x.py::test[1]"
        extra_args = ["-q"]
        matched_rules = ["all.tests_1"]

        [[example]]
        name = "fixtures are read-only"
        expect = "deny"
        tool = "fs"
        action = "write"
        target = "tests/fixtures/data.json"
        matched_rules = ["no-fixtures"]
        "#,
    )
    .unwrap();
    let limits = policy.limits();
    assert_eq!(limits.timeout, Duration::from_secs(30));
    assert_eq!(limits.grace, Duration::ZERO);
    assert_eq!(limits.budget, Duration::from_secs(120));
    assert_eq!(limits.output_cap_bytes, 4096);
    assert_eq!(limits.retries, 0);
    assert_eq!(limits.env_allow, ["LANG", "MY_FLAG"]);
    assert_eq!(limits.python.as_deref(), Some("/usr/bin/python3"));

    let world = World::new();
    world.file("tests/test_a.py");
    let d = policy.decide(&world.root, &ToolRequest::fs_write("tests/new.py"));
    assert!(d.allowed, "{}", d.reason);
    let d = policy.decide(&world.root, &ToolRequest::fs_write("tests/fixtures/x"));
    assert_eq!(d.matched_rules, ["no-fixtures"]);
    let d = policy.decide(
        &world.root,
        &ToolRequest::pytest_run("tests/fixtures", ["-q"]),
    );
    assert!(d.allowed, "the deny rule is for fs only: {}", d.reason);
}

#[test]
fn partial_limits_take_defaults() {
    let policy = Policy::from_toml_str("version = 1\n[limits]\ntimeout_secs = 60\n").unwrap();
    assert_eq!(policy.limits().timeout, Duration::from_secs(60));
    assert_eq!(policy.limits().budget, Duration::from_secs(600));
    let empty = Policy::from_toml_str("version = 1\n").unwrap();
    let world = World::new();
    let d = empty.decide(
        &world.root,
        &ToolRequest::pytest_run("runtime/tests", Vec::<String>::new()),
    );
    assert!(!d.allowed);
    assert!(
        d.reason.contains("no allow rule for pytest/run"),
        "{}",
        d.reason
    );
}

#[test]
fn syntax_and_shape_errors() {
    let cases: &[(&str, &str)] = &[
        ("version = ", "TOML"),
        ("", "missing field `version`"),
        ("version = 1\nextra = true\n", "unknown field `extra`"),
        (
            "version = 1\n[limits]\ntimeout = 3\n",
            "unknown field `timeout`",
        ),
        ("version = 1\n[limits]\ntimeout_secs = -1\n", "timeout_secs"),
        (
            "version = 1\n[limits]\ntimeout_secs = \"300\"\n",
            "timeout_secs",
        ),
        (
            "version = 1\n[[rule]]\nid = \"a\"\neffect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\nscope = [\"t\"]\nscopes = [\"u\"]\n",
            "unknown field `scopes`",
        ),
        (
            "version = 1\n[[rule]]\nid = \"a\"\neffect = \"maybe\"\ntool = \"pytest\"\naction = \"run\"\nscope = [\"t\"]\n",
            "unknown variant `maybe`",
        ),
        (
            "version = 1\n[[rule]]\nid = \"a\"\neffect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\n",
            "missing field `scope`",
        ),
        (
            "version = 1\n[[example]]\nexpect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\ntarget = \"t\"\nwhy = 1\n",
            "unknown field `why`",
        ),
        (
            "version = 1\n[[example]]\nexpect = \"sometimes\"\ntool = \"pytest\"\naction = \"run\"\n",
            "unknown variant `sometimes`",
        ),
    ];
    for (text, fragment) in cases {
        let problem = problem(text);
        assert!(
            matches!(problem, InvalidPolicy::Toml(_)),
            "{text}: {problem:?}"
        );
        let shown = problem.to_string();
        assert!(shown.contains(fragment), "{text:?}: {shown}");
    }
}

#[test]
fn unsupported_version() {
    assert!(matches!(
        problem("version = 2\n"),
        InvalidPolicy::UnsupportedVersion { found: 2 }
    ));
}

#[test]
fn rule_errors() {
    let rule = |id: &str, tool: &str, action: &str, scope: &str| {
        format!(
            "version = 1\n[[rule]]\nid = {id:?}\neffect = \"allow\"\ntool = {tool:?}\naction = {action:?}\nscope = {scope}\n"
        )
    };
    let dup = format!("version = 1\n{RULE}{RULE}");
    match problem(&dup) {
        InvalidPolicy::DuplicateRuleId { id, first, second } => {
            assert_eq!((id.as_str(), first, second), ("tests", 1, 2));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        problem(&rule("", "pytest", "run", "[\"t\"]")),
        InvalidPolicy::BadRuleId { index: 1, .. }
    ));
    assert!(matches!(
        problem(&rule("has space", "pytest", "run", "[\"t\"]")),
        InvalidPolicy::BadRuleId { .. }
    ));
    assert!(matches!(
        problem(&rule("a", "shell", "run", "[\"t\"]")),
        InvalidPolicy::UnknownTool { .. }
    ));
    assert!(matches!(
        problem(&rule("a", "pytest", "exec", "[\"t\"]")),
        InvalidPolicy::UnknownAction { .. }
    ));
    assert!(matches!(
        problem(&rule("a", "fs", "run", "[\"t\"]")),
        InvalidPolicy::UnknownAction { .. }
    ));
    assert!(matches!(
        problem(&rule("a", "pytest", "run", "[]")),
        InvalidPolicy::EmptyScope { .. }
    ));
    let scope_cases: &[(&str, &str)] = &[
        ("[\"\"]", "is empty"),
        ("[\"/etc\"]", "absolute"),
        ("[\"../x\"]", "`..`"),
        ("[\"a/../b\"]", "`..`"),
        ("[\"~/x\"]", "`~`"),
        ("[\"a\\\\b\"]", "backslash"),
        ("[\"a\\u0000b\"]", "NUL"),
        ("[\"a\\nb\"]", "U+000A"),
    ];
    for (scope, fragment) in scope_cases {
        let text = rule("a", "pytest", "run", scope);
        match problem(&text) {
            InvalidPolicy::BadScope { rule, problem, .. } => {
                assert_eq!(rule, "a");
                assert!(problem.contains(fragment), "{scope}: {problem}");
            }
            other => panic!("{scope}: {other:?}"),
        }
    }
    assert!(
        message(&rule("a", "pytest", "run", "[\"/etc\"]"))
            .contains("rule `a`: scope path `/etc` is absolute")
    );
}

#[test]
fn limit_errors() {
    let cases: &[(&str, &str)] = &[
        ("timeout_secs = 0", "timeout_secs"),
        ("timeout_secs = 86401", "timeout_secs"),
        ("grace_secs = 601", "grace_secs"),
        ("budget_secs = 10", "budget_secs"),
        ("budget_secs = 700000", "budget_secs"),
        ("output_cap_bytes = 0", "output_cap_bytes"),
        ("output_cap_bytes = 100000000", "output_cap_bytes"),
        ("retries = 11", "retries"),
        ("python = \"\"", "python"),
        ("python = \"py\\nthon\"", "python"),
    ];
    for (line, key) in cases {
        let text = format!("version = 1\n[limits]\n{line}\n");
        match problem(&text) {
            InvalidPolicy::BadLimit { key: got, .. } => assert_eq!(got, *key, "{line}"),
            other => panic!("{line}: {other:?}"),
        }
    }
    let env_cases: &[(&str, &str)] = &[
        ("[\"PYTEST_ADDOPTS\"]", "argument allowlist"),
        ("[\"pythonpath\"]", "import path"),
        ("[\"LD_PRELOAD\"]", "dynamic linker"),
        ("[\"COV_CORE_SOURCE\"]", "coverage"),
        // Names the executor would drop anyway are refused, not silently ignored.
        ("[\"PYTHONSAFEPATH\"]", "Python's own settings"),
        (
            "[\"PYTEST_DISABLE_PLUGIN_AUTOLOAD\"]",
            "pytest's own settings",
        ),
        ("[\"WARDEN_RUN_ID\"]", "Warden's own"),
        ("[\"BASH_ENV\"]", "start-up script"),
        ("[\"ENV\"]", "start-up script"),
        ("[\"Env\"]", "start-up script"),
        ("[\"1X\"]", "plain variable name"),
        ("[\"A=B\"]", "plain variable name"),
        ("[\"\"]", "plain variable name"),
        ("[\"LANG\", \"LANG\"]", "twice"),
    ];
    for (list, fragment) in env_cases {
        let text = format!("version = 1\n[limits]\nenv_allow = {list}\n");
        match problem(&text) {
            InvalidPolicy::BadEnvName { problem, .. } => {
                assert!(problem.contains(fragment), "{list}: {problem}")
            }
            other => panic!("{list}: {other:?}"),
        }
    }
}

#[test]
fn failing_examples_stop_the_load() {
    let allow_expected = format!(
        "version = 1\n{RULE}\n[[example]]\nname = \"sibling\"\nexpect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\ntarget = \"testsX\"\n"
    );
    match problem(&allow_expected) {
        InvalidPolicy::ExampleFailed {
            example,
            expected_allowed,
            decision,
        } => {
            assert!(example.contains("#1 \"sibling\""), "{example}");
            assert!(example.contains("target \"testsX\""), "{example}");
            assert!(expected_allowed);
            assert!(!decision.allowed);
        }
        other => panic!("{other:?}"),
    }
    let shown = message(&allow_expected);
    assert!(
        shown.contains("must be allowed but the policy denies it"),
        "{shown}"
    );
    assert!(shown.contains("outside every scope"), "{shown}");

    let deny_expected = format!(
        "version = 1\n{RULE}\n[[example]]\nexpect = \"deny\"\ntool = \"pytest\"\naction = \"run\"\ntarget = \"tests/a.py\"\nextra_args = [\"-q\"]\n"
    );
    let shown = message(&deny_expected);
    assert!(shown.contains("example #1 (pytest/run target \"tests/a.py\" extra_args [\"-q\"]) must be denied but the policy allows it"), "{shown}");
    assert!(shown.contains("(rules: tests)"), "{shown}");

    let wrong_rules = format!(
        "version = 1\n{RULE}\n[[example]]\nexpect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\ntarget = \"tests\"\nmatched_rules = [\"other\"]\n"
    );
    assert!(matches!(
        problem(&wrong_rules),
        InvalidPolicy::ExampleRulesDiffer { .. }
    ));
    let shown = message(&wrong_rules);
    assert!(
        shown.contains("decided by rules [other] but was decided by [tests]"),
        "{shown}"
    );
}

#[test]
fn examples_that_need_the_file_system_are_checked_against_the_given_root() {
    let world = World::new();
    world.link("runtime/tests/evil", "{outside}");
    let text = r#"
        version = 1
        [[rule]]
        id = "tests"
        effect = "allow"
        tool = "pytest"
        action = "run"
        scope = ["runtime/tests"]

        [[example]]
        expect = "deny"
        tool = "pytest"
        action = "run"
        target = "runtime/tests/evil/secret.py"
    "#;
    // Against the real root the link exists and the example holds.
    Policy::from_toml_str_for(&world.root, text).unwrap();
    let path = world.path("custom.toml");
    fs::write(&path, text).unwrap();
    let policy = Policy::load_for(&world.root, &path).unwrap();
    assert_eq!(policy.origin(), path.display().to_string());
    // Against an empty root there is no link, so the example does not hold.
    match Policy::load(&path) {
        Err(PolicyError::Invalid {
            origin,
            problem: InvalidPolicy::ExampleFailed { .. },
        }) => {
            assert_eq!(origin, path.display().to_string());
        }
        other => panic!("{other:?}"),
    }
    // And a real root can make an otherwise fine example fail.
    let other = World::new();
    other.link("runtime/tests", "{outside}");
    let err = Policy::from_toml_str_for(&other.root, Policy::BUILTIN_TOML).unwrap_err();
    assert!(
        err.to_string()
            .contains("must be allowed but the policy denies it"),
        "{err}"
    );
}

#[test]
fn file_errors() {
    let world = World::new();
    let missing = world.path("nope.toml");
    assert!(matches!(
        Policy::load(&missing),
        Err(PolicyError::Read { .. })
    ));
    let dir = world.path("runtime");
    assert!(matches!(Policy::load(&dir), Err(PolicyError::Read { .. })));
    let big = world.path("big.toml");
    fs::write(
        &big,
        format!("version = 1\n{}", "# padding\n".repeat(200_000)),
    )
    .unwrap();
    assert!(matches!(
        Policy::load(&big),
        Err(PolicyError::TooLarge { .. })
    ));
    let broken = world.path("broken.toml");
    fs::write(&broken, "version = 1\n[[rule]]\nid = 3\n").unwrap();
    let err = Policy::load(&broken).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("invalid policy {}:", broken.display())),
        "{shown}"
    );
    assert!(shown.contains("line 3"), "{shown}");
    // A FIFO where the policy should be (a test can leave one as `warden.toml`): refused at
    // once, never waited on.
    let fifo = world.path("fifo.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Policy::load(&fifo).map(|_| ()).map_err(|e| e.to_string()));
    });
    let refused = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("loading a FIFO as the policy waited on it");
    let message = refused.unwrap_err();
    assert!(message.contains("named pipe (FIFO)"), "{message}");
}

#[test]
fn root_errors() {
    let world = World::new();
    assert!(matches!(
        Root::new(world.path("missing")),
        Err(PolicyError::RootUnavailable { .. })
    ));
    assert!(matches!(
        Root::new(world.path("src/calc.py")),
        Err(PolicyError::RootNotDirectory { .. })
    ));
    world.link("alias", ".");
    let via_link = Root::new(world.path("alias")).unwrap();
    assert_eq!(via_link.path(), world.root.path(), "the root is canonical");
    assert!(via_link.path().is_absolute());
}
