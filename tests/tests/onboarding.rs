//! A project's first steps with Warden, through the real binary: `warden init` writes a policy
//! from what the project declares (and never overwrites one), `warden policy` shows the policy
//! in force with where each rule came from, `extends = "builtin"` keeps the built-in rules,
//! denials say what would allow them, and a project's `addopts` select tests as under bare
//! pytest.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use warden_e2e::{Fixture, Run, python_with_pytest, run, verify_json, warden, warden_at};

const DEADLINE: Duration = Duration::from_secs(60);

fn warden_in(root: &Path, args: &[&str]) -> Run {
    let mut cmd = warden();
    cmd.arg("--root").arg(root).args(args);
    run(&mut cmd, None, DEADLINE)
}

fn check_tests(root: &Path, target: &str) -> Run {
    warden_in(
        root,
        &[
            "--json", "check", "--tool", "pytest", "--action", "run", "--target", target,
        ],
    )
}

/// A project with `tests/test_a.py` and the given files.
fn project(files: &[(&str, &str)]) -> Fixture {
    let fixture = Fixture::empty();
    fixture.write("tests/test_a.py", "def test_a():\n    pass\n");
    for (path, text) in files {
        fixture.write(path, text);
    }
    fixture
}

#[test]
fn init_reads_testpaths_from_every_kind_of_configuration_file() {
    let cases = [
        (
            "pyproject.toml",
            "[tool.pytest.ini_options]\ntestpaths = [\"tests\", \"integration\"]\n",
        ),
        (
            "pyproject.toml",
            "[tool.pytest]\ntestpaths = [\"tests\", \"integration\"]\n",
        ),
        ("pytest.ini", "[pytest]\ntestpaths = tests integration\n"),
        (
            "setup.cfg",
            "[metadata]\nname = x\n[tool:pytest]\ntestpaths =\n    tests\n    integration\n",
        ),
        (
            "tox.ini",
            "[tox]\nenvlist = py\n[pytest]\ntestpaths = tests integration\n",
        ),
    ];
    for (name, text) in cases {
        let fixture = project(&[
            (name, text),
            ("integration/test_i.py", "def test_i(): pass\n"),
        ]);
        let root = fixture.root();
        let out = warden_in(root, &["--json", "init"]);
        assert_eq!(out.code, Some(0), "{name}: {}{}", out.stdout, out.stderr);
        let doc = out.json();
        assert_eq!(
            doc["test_paths"],
            serde_json::json!(["tests", "integration"]),
            "{name}"
        );
        assert_eq!(doc["source"], format!("`testpaths` in `{name}`"), "{name}");
        let written = fs::read_to_string(root.join("warden.toml")).unwrap();
        assert!(written.contains("extends = \"builtin\""), "{written}");
        assert!(
            written.contains("scope = [\"tests\", \"integration\"]"),
            "{written}"
        );
        // The new policy is picked up and allows exactly the declared paths.
        assert_eq!(
            check_tests(root, "integration/test_i.py").code,
            Some(0),
            "{name}"
        );
        assert_eq!(check_tests(root, "tests").code, Some(0), "{name}");
        assert_eq!(check_tests(root, "src").code, Some(1), "{name}");
    }
}

#[test]
fn init_falls_back_to_tests_then_test_and_says_so() {
    let fixture = project(&[]);
    let out = warden_in(fixture.root(), &["init"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("wrote "), "{}", out.stdout);
    assert!(out.stdout.contains("`tests`"), "{}", out.stdout);
    assert!(
        out.stdout.contains("the `tests/` directory"),
        "{}",
        out.stdout
    );

    let fixture = Fixture::empty();
    fixture.write("test/test_b.py", "def test_b(): pass\n");
    let out = warden_in(fixture.root(), &["--json", "init"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.json()["test_paths"], serde_json::json!(["test"]));
    assert_eq!(check_tests(fixture.root(), "test/test_b.py").code, Some(0));
}

#[test]
fn init_never_overwrites_an_existing_policy() {
    let fixture = project(&[]);
    let mine = "version = 1\n# my own policy\n";
    fixture.write("warden.toml", mine);
    let out = warden_in(fixture.root(), &["--json", "init"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["written"], Value::Null);
    assert!(doc["exists"].as_str().unwrap().ends_with("warden.toml"));
    assert!(out.stderr.contains("left alone"), "{}", out.stderr);
    assert_eq!(
        fs::read_to_string(fixture.root().join("warden.toml")).unwrap(),
        mine
    );

    // A dangling symlink by that name is not followed either.
    let fixture = project(&[]);
    let target = fixture.outside().join("written-through-a-link.toml");
    std::os::unix::fs::symlink(&target, fixture.root().join("warden.toml")).unwrap();
    let out = warden_in(fixture.root(), &["init"]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(!target.exists(), "init wrote through a symlink");
}

#[test]
fn policy_prints_the_effective_policy_with_provenance() {
    let fixture = project(&[]);
    let out = warden_in(fixture.root(), &["policy"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("from built-in"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("# from: built-in\n[[rule]]\nid = \"pytest-runtime-tests\""),
        "{}",
        out.stdout
    );

    fixture.write(
        "warden.toml",
        "version = 1\nextends = \"builtin\"\n[limits]\nretries = 1\n[[rule]]\nid = \"tests\"\neffect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\nscope = [\"tests\"]\n",
    );
    let out = warden_in(fixture.root(), &["--json", "policy"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["extends"], "builtin");
    let file = fixture.root().join("warden.toml").display().to_string();
    let rules = doc["rules"].as_array().unwrap();
    let from = |id: &str| rules.iter().find(|r| r["id"] == id).unwrap()["from"].clone();
    assert_eq!(from("tests"), Value::String(file.clone()));
    assert_eq!(from("protect-warden"), "built-in");
    let retries = doc["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "retries")
        .unwrap();
    assert_eq!(
        (retries["value"].as_u64(), retries["from"].as_str()),
        (Some(1), Some(file.as_str()))
    );

    // The TOML form is a policy file that decides the same.
    let out = warden_in(fixture.root(), &["policy"]);
    let printed = fixture.outside().join("printed.toml");
    fs::write(&printed, &out.stdout).unwrap();
    let mut cmd = warden();
    cmd.arg("--root")
        .arg(fixture.root())
        .arg("--policy")
        .arg(&printed);
    cmd.args([
        "--json", "check", "--tool", "fs", "--action", "write", "--target", "src/x.py",
    ]);
    assert_eq!(run(&mut cmd, None, DEADLINE).code, Some(0));
}

#[test]
fn a_file_without_extends_replaces_the_builtin_rules_and_one_with_it_keeps_them() {
    let rule = "[[rule]]\nid = \"tests\"\neffect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\nscope = [\"tests\"]\n";
    let write = |root: &Path| {
        warden_in(
            root,
            &[
                "--json", "check", "--tool", "fs", "--action", "write", "--target", "src/x.py",
            ],
        )
    };
    let fixture = project(&[("warden.toml", &format!("version = 1\n{rule}"))]);
    assert_eq!(check_tests(fixture.root(), "tests").code, Some(0));
    assert_eq!(
        write(fixture.root()).code,
        Some(1),
        "replaced: no write rule"
    );
    let fixture = project(&[(
        "warden.toml",
        &format!("version = 1\nextends = \"builtin\"\n{rule}"),
    )]);
    assert_eq!(check_tests(fixture.root(), "tests").code, Some(0));
    assert_eq!(
        write(fixture.root()).code,
        Some(0),
        "extended: the built-in write rule"
    );
}

#[test]
fn denials_name_the_rule_or_command_that_would_allow_them() {
    let fixture = project(&[]);
    let out = check_tests(fixture.root(), "tests");
    assert_eq!(out.code, Some(1));
    let reason = out.json()["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("warden init"), "{reason}");
    assert!(reason.contains("scope = [\"tests\"]"), "{reason}");
    let out = verify_json(fixture.root(), &["tests"]);
    assert_eq!(out.code, Some(3));
    assert!(
        out.json()["decision"]["reason"]
            .as_str()
            .unwrap()
            .contains("warden init")
    );

    let out = warden_in(
        fixture.root(),
        &[
            "--json",
            "check",
            "--tool",
            "pytest",
            "--action",
            "run",
            "--target",
            "runtime/tests",
            "--arg=-n",
            "--arg=2",
        ],
    );
    assert_eq!(out.code, Some(1));
    let reason = out.json()["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("allow_options = [\"xdist\"]"), "{reason}");
}

/// Counts of bare pytest, from its final line (`2 passed, 1 deselected in 0.01s`).
fn bare_pytest_counts(root: &Path, target: &str) -> String {
    let out = run(
        Command::new(python_with_pytest())
            .args(["-m", "pytest", "-p", "no:cacheprovider", target])
            .current_dir(root),
        None,
        DEADLINE,
    );
    let last = out
        .stdout
        .lines()
        .rev()
        .find(|l| l.contains(" in "))
        .unwrap_or_default();
    last.trim_matches('=')
        .trim()
        .split(" in ")
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_projects_addopts_give_the_counts_of_bare_pytest() {
    let fixture = project(&[
        (
            "pyproject.toml",
            "[tool.pytest.ini_options]\nmarkers = [\"slow: long\"]\naddopts = '-m \"not slow\" --strict-markers -ra -p no:logging --cov=pkg'\n",
        ),
        (
            "tests/test_mix.py",
            "import pytest\n\n@pytest.mark.slow\ndef test_slow():\n    assert False\n\ndef test_fast():\n    pass\n\n@pytest.mark.parametrize('n', [1, 2])\ndef test_param(n):\n    assert n\n",
        ),
        (
            "warden.toml",
            "version = 1\nextends = \"builtin\"\n[[rule]]\nid = \"tests\"\neffect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\nscope = [\"tests\"]\n",
        ),
    ]);
    // Bare pytest (without --cov, which needs pytest-cov and changes no outcome).
    let bare_root = Fixture::copy(fixture.root());
    let pyproject = bare_root.root().join("pyproject.toml");
    let text = fs::read_to_string(&pyproject)
        .unwrap()
        .replace(" --cov=pkg", "");
    fs::write(&pyproject, text).unwrap();
    let bare = bare_pytest_counts(bare_root.root(), "tests");
    assert_eq!(bare, "4 passed, 1 deselected");

    let out = verify_json(fixture.root(), &["tests"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["counts"]["passed"], 4, "{doc}");
    assert_eq!(doc["counts"]["failed"], 0, "{doc}");
    let reason = doc["decision"]["reason"].as_str().unwrap();
    assert!(reason.contains("`--cov=pkg` left out"), "{reason}");

    // An item the allowlist refuses stops the run before Python starts: exit 3, the file named.
    fixture.write(
        "pyproject.toml",
        "[tool.pytest.ini_options]\naddopts = \"-q -p evil_plugin\"\n",
    );
    let out = verify_json(fixture.root(), &["tests"]);
    assert_eq!(out.code, Some(3), "{}", out.stdout);
    let reason = out.json()["decision"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("`pyproject.toml` [tool.pytest.ini_options]"),
        "{reason}"
    );
    assert!(reason.contains("`-p evil_plugin`"), "{reason}");
    // warden_at is the same binary with the test interpreter; the policy answers alike.
    let mut cmd = warden_at(fixture.root());
    cmd.args([
        "--json", "check", "--tool", "pytest", "--action", "run", "--target", "tests",
    ]);
    assert_eq!(run(&mut cmd, None, DEADLINE).code, Some(1));
}
