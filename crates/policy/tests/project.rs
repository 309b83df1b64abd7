//! A project's own pytest configuration (`addopts` through the allowlist), opt-in option
//! groups, policies that build on the built-in one, and the effective policy with provenance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use proptest::prelude::*;
use warden_policy::{Authorized, Policy, Root, ToolRequest, Verdict};

/// A repository with `tests/test_a.py` and the given files.
fn repo(files: &[(&str, &str)]) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("tests")).unwrap();
    fs::write(dir.path().join("tests/test_a.py"), "def test_a(): pass\n").unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let root = Root::new(dir.path()).unwrap();
    (dir, root)
}

const TESTS: &str = r#"
version = 1
extends = "builtin"

[[rule]]
id = "tests"
effect = "allow"
tool = "pytest"
action = "run"
scope = ["tests"]
"#;

fn policy() -> Policy {
    Policy::from_toml_str(TESTS).unwrap()
}

fn authorize(policy: &Policy, root: &Root, args: &[&str]) -> Result<Authorized, String> {
    match policy.authorize(
        root,
        &ToolRequest::pytest_run("tests", args.iter().copied()),
    ) {
        Verdict::Allowed(auth) => Ok(auth),
        Verdict::Denied(decision) => Err(decision.reason),
    }
}

/// The items every configuration format below carries, and what pytest makes of them.
const ITEMS: &str = r#"-ra -q --tb=short -m "not stress" --strict-markers --strict-config --capture=sys -p no:logging --doctest-modules -W error::DeprecationWarning --import-mode=importlib"#;
const KEPT: [&str; 14] = [
    "-ra",
    "-q",
    "--tb=short",
    "-m",
    "not stress",
    "--strict-markers",
    "--strict-config",
    "--capture=sys",
    "-p",
    "no:logging",
    "--doctest-modules",
    "-W",
    "error::DeprecationWarning",
    "--import-mode=importlib",
];

#[test]
fn allowed_addopts_are_kept_in_order_from_every_kind_of_configuration_file() {
    let list = r#"["-ra", "-q", "--tb=short", "-m", "not stress", "--strict-markers", "--strict-config", "--capture=sys", "-p", "no:logging", "--doctest-modules", "-W", "error::DeprecationWarning", "--import-mode=importlib"]"#;
    let cases = [
        (
            "pytest.ini",
            format!("[pytest]\naddopts = {ITEMS}\n"),
            "[pytest]",
        ),
        (
            ".pytest.ini",
            format!("[pytest]\naddopts = {ITEMS}\n"),
            "[pytest]",
        ),
        (
            "tox.ini",
            "[tox]\nenvlist = py\n\n[pytest]\naddopts =\n    -ra -q --tb=short\n    -m \"not stress\" --strict-markers --strict-config\n    --capture=sys -p no:logging --doctest-modules\n    -W error::DeprecationWarning --import-mode=importlib\n"
                .to_owned(),
            "[pytest]",
        ),
        (
            "setup.cfg",
            format!("[metadata]\nname = x\n[tool:pytest]\naddopts = {ITEMS}\n"),
            "[tool:pytest]",
        ),
        (
            "pyproject.toml",
            format!("[project]\nname = \"x\"\n[tool.pytest.ini_options]\naddopts = '{ITEMS}'\n"),
            "[tool.pytest.ini_options]",
        ),
        (
            "pyproject.toml",
            format!("[tool.pytest.ini_options]\naddopts = {list}\n"),
            "[tool.pytest.ini_options]",
        ),
        (
            "pyproject.toml",
            format!("[tool.pytest]\naddopts = {list}\n"),
            "[tool.pytest]",
        ),
        (
            "pytest.toml",
            format!("[pytest]\naddopts = {list}\n"),
            "[pytest]",
        ),
    ];
    for (name, text, section) in cases {
        let (_dir, root) = repo(&[(name, &text)]);
        let auth = authorize(&policy(), &root, &[]).unwrap_or_else(|why| panic!("{name}: {why}"));
        assert_eq!(auth.addopts(), KEPT, "{name}");
        assert_eq!(
            auth.addopts_source(),
            Some(format!("`{name}` {section}").as_str()),
            "{name}"
        );
        assert!(auth.addopts_dropped().is_empty());
        assert_eq!(
            auth.config_file().map(|f| f.file_name().unwrap()),
            Some(name)
        );
        assert!(
            auth.decision().reason.contains("14 arguments kept"),
            "{}",
            auth.decision().reason
        );
    }
}

#[test]
fn denied_addopts_refuse_the_run_naming_the_file_the_item_and_what_would_allow_it() {
    let cases = [
        (
            "pytest.ini",
            "[pytest]\naddopts = -q -p evil\n",
            "`-p evil`",
            "no policy key",
        ),
        (
            "setup.cfg",
            "[tool:pytest]\naddopts = --rootdir=/ -q\n",
            "`--rootdir=/`",
            "no policy key",
        ),
        (
            "tox.ini",
            "[pytest]\naddopts = -x tests/other\n",
            "`tests/other`",
            "another target",
        ),
        (
            "pyproject.toml",
            "[tool.pytest.ini_options]\naddopts = \"-n 4\"\n",
            "`-n 4`",
            "allow_options = [\"xdist\"]",
        ),
        (
            "pytest.ini",
            "[pytest]\naddopts = -W error::evil.Warning\n",
            "`-W error::evil.Warning`",
            "import that module",
        ),
        (
            "pytest.ini",
            "[pytest]\naddopts = -p no:terminal\n",
            "`-p no:terminal`",
            "depends on",
        ),
        (
            "pytest.ini",
            "[pytest]\naddopts = -o addopts=-pevil\n",
            "`-o`",
            "overrides configuration",
        ),
        (
            "pytest.ini",
            "[pytest]\naddopts = -k 'not slow\n",
            "does not split",
            "pytest.ini",
        ),
        (
            "pytest.toml",
            "[pytest]\naddopts = \"-q\"\n",
            "not a list of strings",
            "pytest.toml",
        ),
        (
            "pytest.ini",
            "[pytest]\naddopts = @args.txt\n",
            "`@args.txt`",
            "read more arguments",
        ),
    ];
    for (name, text, item, why) in cases {
        let (_dir, root) = repo(&[(name, text)]);
        let reason = authorize(&policy(), &root, &[])
            .err()
            .unwrap_or_else(|| panic!("{text} allowed"));
        assert!(reason.contains(name), "{name}: {reason}");
        assert!(reason.contains(item), "{item}: {reason}");
        assert!(reason.contains(why), "{why}: {reason}");
        // `warden check` gives the same answer as `warden verify`.
        let decision = policy().decide(
            &root,
            &ToolRequest::pytest_run("tests", Vec::<String>::new()),
        );
        assert!(!decision.allowed);
        assert!(decision.matched_rules.is_empty());
    }
}

#[test]
fn items_that_only_write_files_or_use_the_cache_are_left_out_with_a_note() {
    let (_dir, root) = repo(&[(
        "setup.cfg",
        "[tool:pytest]\naddopts = --cov=pkg --cov-report term-missing -q --lf --junitxml=out.xml\n",
    )]);
    let auth = authorize(&policy(), &root, &[]).unwrap();
    assert_eq!(auth.addopts(), ["-q"]);
    let dropped: Vec<&str> = auth
        .addopts_dropped()
        .iter()
        .map(|(i, _)| i.as_str())
        .collect();
    assert_eq!(
        dropped,
        [
            "--cov=pkg",
            "--cov-report term-missing",
            "--lf",
            "--junitxml=out.xml"
        ]
    );
    let reason = &auth.decision().reason;
    assert!(
        reason.contains("`--cov=pkg` left out: `--cov` is a coverage option"),
        "{reason}"
    );
    assert!(reason.contains("`--lf` left out"), "{reason}");
    // The agent itself may not ask for them.
    assert!(authorize(&policy(), &root, &["--cov=pkg"]).is_err());
}

#[test]
fn no_configuration_or_no_addopts_adds_nothing() {
    let (_dir, root) = repo(&[]);
    let auth = authorize(&policy(), &root, &["-x"]).unwrap();
    assert!(auth.addopts().is_empty());
    assert_eq!(auth.config_file(), None);
    assert_eq!(auth.addopts_source(), None);
    let (_dir, root) = repo(&[("pytest.ini", "[pytest]\nmarkers = slow\n")]);
    let auth = authorize(&policy(), &root, &[]).unwrap();
    assert!(auth.addopts().is_empty());
    assert!(auth.config_file().is_some());
    assert!(!auth.decision().reason.contains("addopts"));
}

#[test]
fn configuration_above_the_root_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("pytest.ini"),
        "[pytest]\naddopts = -p evil\n",
    )
    .unwrap();
    fs::create_dir_all(dir.path().join("r/tests")).unwrap();
    let root = Root::new(dir.path().join("r")).unwrap();
    let auth = authorize(&policy(), &root, &[]).unwrap();
    assert_eq!(auth.config_file(), None);
    assert!(auth.addopts().is_empty());
}

#[test]
fn reruns_keep_the_checked_addopts() {
    let (_dir, root) = repo(&[("pytest.ini", "[pytest]\naddopts = -m 'not slow'\n")]);
    let auth = authorize(&policy(), &root, &[]).unwrap();
    let narrowed = auth
        .narrow(&["tests/test_a.py::test_a".to_owned()])
        .unwrap();
    assert_eq!(narrowed.addopts(), ["-m", "not slow"]);
    assert_eq!(narrowed.config_file(), auth.config_file());
}

#[test]
fn a_policy_opts_in_to_xdist_by_name() {
    let opted = Policy::from_toml_str(&format!("{TESTS}\n[pytest]\nallow_options = [\"xdist\"]\n"))
        .unwrap();
    let (_dir, root) = repo(&[(
        "pytest.ini",
        "[pytest]\naddopts = -p xdist -n 2 --dist=load\n",
    )]);
    let denied = authorize(&policy(), &root, &[]).unwrap_err();
    assert!(denied.contains("allow_options = [\"xdist\"]"), "{denied}");
    let auth = authorize(&opted, &root, &["-n", "auto"]).unwrap();
    assert_eq!(auth.addopts(), ["-p", "xdist", "-n", "2", "--dist=load"]);
    assert_eq!(auth.extra_args(), ["-n", "auto"]);
    // Remote workers and other interpreters stay out of reach.
    assert!(authorize(&opted, &root, &["--tx", "popen//python=/tmp/x"]).is_err());
    // An unknown group is an error when the file loads.
    let err = Policy::from_toml_str("version = 1\n[pytest]\nallow_options = [\"everything\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`everything`") && err.contains("xdist"),
        "{err}"
    );
}

#[test]
fn extends_builtin_adds_rules_and_keeps_the_builtin_ones() {
    let (_dir, root) = repo(&[("docs/00_foundations/charter.md", "x")]);
    let extended = policy();
    let run = |p: &Policy, target: &str| {
        p.decide(
            &root,
            &ToolRequest::pytest_run(target, Vec::<String>::new()),
        )
    };
    assert!(run(&extended, "tests").allowed);
    assert!(!run(&Policy::builtin(), "tests").allowed);
    // The built-in write rules still apply: a file that replaced them would deny all writes.
    let write = extended.decide(&root, &ToolRequest::fs_write("src/calc.py"));
    assert!(write.allowed, "{}", write.reason);
    let protected = extended.decide(
        &root,
        &ToolRequest::fs_write("docs/00_foundations/charter.md"),
    );
    assert_eq!(protected.matched_rules, ["protect-foundations"]);
    assert!(
        protected.reason.contains("built-in rule"),
        "{}",
        protected.reason
    );
    let replaced = Policy::from_toml_str(&TESTS.replace("extends = \"builtin\"\n", "")).unwrap();
    assert!(
        !replaced
            .decide(&root, &ToolRequest::fs_write("src/calc.py"))
            .allowed
    );
    // A built-in id cannot be reused, and no other base exists.
    let clash = TESTS.replace("id = \"tests\"", "id = \"fs-write-root\"");
    let err = Policy::from_toml_str(&clash).unwrap_err().to_string();
    assert!(
        err.contains("`fs-write-root`") && err.contains("built-in rule"),
        "{err}"
    );
    let err = Policy::from_toml_str("version = 1\nextends = \"strict\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("extends = \"strict\""), "{err}");
}

#[test]
fn the_effective_policy_says_where_each_setting_and_rule_came_from() {
    let file = format!(
        "{TESTS}\n[limits]\ntimeout_secs = 60\n[pytest]\nallow_options = [\"xdist\"]\n[sandbox]\nnetwork = \"none\"\n"
    );
    let effective = Policy::from_toml_str(&file).unwrap().effective();
    let from = |key: &str| {
        effective
            .limits
            .iter()
            .chain(&effective.pytest)
            .find(|s| s.key == key)
            .map(|s| s.from.clone())
            .unwrap()
    };
    assert_eq!(from("timeout_secs"), "(string)");
    assert_eq!(from("grace_secs"), "built-in");
    assert_eq!(from("allow_options"), "(string)");
    let sandbox = |e: &warden_policy::EffectivePolicy, key: &str| {
        e.sandbox.iter().find(|s| s.key == key).cloned().unwrap()
    };
    assert_eq!(sandbox(&effective, "network").value, "none");
    assert_eq!(sandbox(&effective, "network").from, "(string)");
    assert_eq!(sandbox(&effective, "mode").from, "built-in");
    let rules: Vec<(&str, &str)> = effective
        .rules
        .iter()
        .map(|r| (r.id.as_str(), r.from.as_str()))
        .collect();
    assert_eq!(rules[0], ("pytest-runtime-tests", "built-in"));
    assert_eq!(rules.last(), Some(&("tests", "(string)")));
    let json = serde_json::to_value(&effective).unwrap();
    assert_eq!(json["extends"], "builtin");
    assert_eq!(json["rules"][0]["from"], "built-in");
    let toml = effective.to_toml();
    assert!(
        toml.contains("timeout_secs = 60  # from: (string)"),
        "{toml}"
    );
    assert!(
        toml.contains("# from: built-in\n[[rule]]\nid = \"pytest-runtime-tests\""),
        "{toml}"
    );
    // The text is a policy of its own with the same decisions.
    let again = Policy::from_toml_str(&toml).unwrap().effective();
    assert_eq!(again.rules.len(), effective.rules.len());
    let values = |e: &warden_policy::EffectivePolicy| {
        e.sandbox
            .iter()
            .map(|s| s.value.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&again), values(&effective));
    assert_eq!(
        again.limits.iter().map(|s| &s.value).collect::<Vec<_>>(),
        effective
            .limits
            .iter()
            .map(|s| &s.value)
            .collect::<Vec<_>>()
    );
    // The built-in policy is all built-in.
    let builtin = Policy::builtin().effective();
    assert!(
        builtin
            .limits
            .iter()
            .chain(&builtin.pytest)
            .all(|s| s.from == "built-in")
    );
    assert!(builtin.rules.iter().all(|r| r.from == "built-in"));
}

#[test]
fn default_denials_name_the_rule_or_command_that_would_allow_them() {
    let (_dir, root) = repo(&[]);
    let builtin = Policy::builtin().decide(
        &root,
        &ToolRequest::pytest_run("tests", Vec::<String>::new()),
    );
    assert!(!builtin.allowed);
    assert!(
        builtin.reason.contains("scope = [\"tests\"]"),
        "{}",
        builtin.reason
    );
    assert!(builtin.reason.contains("warden init"), "{}", builtin.reason);
    assert!(
        builtin.reason.contains("extends = \"builtin\""),
        "{}",
        builtin.reason
    );
    let file = policy().decide(&root, &ToolRequest::pytest_run("src", Vec::<String>::new()));
    assert!(
        file.reason.contains("add a `[[rule]]`") && file.reason.contains("(string)"),
        "{}",
        file.reason
    );
    let unknown = policy().decide(&root, &ToolRequest::new("shell", "exec", Some("x".into())));
    assert!(
        unknown.reason.contains("no policy key allows it"),
        "{}",
        unknown.reason
    );
}

/// Items drawn from the kinds projects write, allowed or not.
fn item() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::select(vec![
        vec!["-q"],
        vec!["-ra"],
        vec!["--tb=short"],
        vec!["-m", "not slow"],
        vec!["--strict-markers"],
        vec!["-p", "no:logging"],
        vec!["-W", "error::DeprecationWarning"],
        vec!["--doctest-modules"],
        vec!["--import-mode=importlib"],
        vec!["-p", "evil"],
        vec!["--rootdir=/"],
        vec!["-n", "4"],
        vec!["other_target"],
        vec!["--cov=pkg"],
        vec!["--lf"],
    ])
}

fn allowed(item: &[&str]) -> bool {
    !matches!(item[0], "-p" if item[1] == "evil")
        && !matches!(
            item[0],
            "--rootdir=/" | "-n" | "other_target" | "--cov=pkg" | "--lf"
        )
}

fn droppable(item: &[&str]) -> bool {
    matches!(item[0], "--cov=pkg" | "--lf")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever a project writes: either the run is refused with the file and the first bad
    /// item named, or exactly the allowed items run, in order, and everything else is named as
    /// left out. Nothing is changed silently.
    #[test]
    fn addopts_are_kept_dropped_or_refused_never_changed_silently(items in prop::collection::vec(item(), 0..8)) {
        let text: Vec<String> = items.iter().map(|i| i.iter().map(|w| if w.contains(' ') { format!("'{w}'") } else { (*w).to_owned() }).collect::<Vec<_>>().join(" ")).collect();
        let (_dir, root) = repo(&[("tox.ini", &format!("[pytest]\naddopts = {}\n", text.join(" ")))]);
        let first_bad = items.iter().find(|i| !allowed(i) && !droppable(i));
        match (authorize(&policy(), &root, &[]), first_bad) {
            (Ok(auth), None) => {
                let kept: Vec<&str> = items.iter().filter(|i| allowed(i)).flat_map(|i| i.iter().copied()).collect();
                prop_assert_eq!(auth.addopts(), kept.as_slice());
                let dropped: Vec<String> = items.iter().filter(|i| droppable(i)).map(|i| i.join(" ")).collect();
                let noted: Vec<String> = auth.addopts_dropped().iter().map(|(i, _)| i.clone()).collect();
                prop_assert_eq!(noted, dropped);
            }
            (Err(reason), Some(bad)) => {
                prop_assert!(reason.contains("tox.ini"), "{}", reason);
                prop_assert!(reason.contains(&format!("`{}`", bad.join(" "))), "{}", reason);
            }
            (result, bad) => prop_assert!(false, "{:?} with first bad item {:?}", result.map(|a| a.addopts().to_vec()), bad),
        }
    }
}
