//! The project's interpreter, found the way its users expect, through the real binary: an
//! explicit `WARDEN_PYTHON`, an active virtualenv (`VIRTUAL_ENV`), the root's `.venv` (or
//! `venv`); the report says which was chosen and why; and an installed pytest plugin keeps
//! working under Warden's environment.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use warden_e2e::{
    Fixture, Run, VERIFY_DEADLINE, python_with_pytest, run, verify_json, warden, write_executable,
};

/// A project whose policy allows pytest in `tests/`, with one passing test. The sandbox is
/// off: the stand-in interpreters are shell scripts that leave a marker outside the root and
/// exec a Python the sandbox is not told about (a real virtualenv under the sandbox is
/// `a_real_virtualenv_in_the_root_runs_under_the_sandbox`).
fn project() -> Fixture {
    let fixture = Fixture::empty();
    fixture.write("tests/test_a.py", "def test_a():\n    pass\n");
    fixture.write(
        "warden.toml",
        "version = 1\nextends = \"builtin\"\n[sandbox]\nmode = \"off\"\n[[rule]]\nid = \"tests\"\neffect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\nscope = [\"tests\"]\n",
    );
    fixture
}

/// A stand-in interpreter at `path`: it leaves `marker` behind, then runs the real Python.
fn spy_python(path: &Path, marker: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_executable(
        path,
        &format!(
            "#!/bin/sh\necho used > '{}'\nexec '{}' \"$@\"\n",
            marker.display(),
            python_with_pytest().display()
        ),
    );
}

/// `warden --json verify tests` with no interpreter named except by `env`.
fn verify(root: &Path, env: &[(&str, &Path)]) -> Run {
    let mut cmd = warden();
    cmd.env_remove("WARDEN_PYTHON").env_remove("VIRTUAL_ENV");
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.arg("--root")
        .arg(root)
        .args(["--json", "verify", "tests"]);
    run(&mut cmd, None, VERIFY_DEADLINE)
}

fn interpreter(out: &Run) -> Value {
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    out.json()["interpreter"].clone()
}

#[test]
fn the_roots_venv_is_used_when_nothing_else_names_an_interpreter() {
    let fixture = project();
    let marker = fixture.outside().join("dot-venv-used");
    let python: PathBuf = fixture.root().join(".venv/bin/python");
    spy_python(&python, &marker);
    let chosen = interpreter(&verify(fixture.root(), &[]));
    assert_eq!(chosen["path"], python.display().to_string());
    assert_eq!(chosen["source"], "root_venv");
    assert!(
        chosen["reason"].as_str().unwrap().contains("`.venv`"),
        "{chosen}"
    );
    assert!(marker.exists(), "the root's .venv did not run the tests");

    // The human output says it too.
    let mut cmd = warden();
    cmd.env_remove("WARDEN_PYTHON").env_remove("VIRTUAL_ENV");
    cmd.arg("--root")
        .arg(fixture.root())
        .args(["verify", "tests", "--no-ledger"]);
    let out = run(&mut cmd, None, VERIFY_DEADLINE);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("python:    {}", python.display())),
        "{}",
        out.stdout
    );
}

#[test]
fn an_active_virtualenv_wins_over_the_roots_and_warden_python_over_both() {
    let fixture = project();
    let root_marker = fixture.outside().join("dot-venv-used");
    spy_python(&fixture.root().join(".venv/bin/python"), &root_marker);
    let active = fixture.outside().join("active-venv");
    let active_marker = fixture.outside().join("active-venv-used");
    spy_python(&active.join("bin/python"), &active_marker);

    let chosen = interpreter(&verify(fixture.root(), &[("VIRTUAL_ENV", &active)]));
    assert_eq!(chosen["source"], "virtual_env");
    assert_eq!(
        chosen["path"],
        active.join("bin/python").display().to_string()
    );
    assert!(active_marker.exists() && !root_marker.exists());

    std::fs::remove_file(&active_marker).unwrap();
    let chosen = interpreter(&verify(
        fixture.root(),
        &[
            ("VIRTUAL_ENV", &active),
            ("WARDEN_PYTHON", python_with_pytest()),
        ],
    ));
    assert_eq!(chosen["source"], "warden_python");
    assert!(!active_marker.exists() && !root_marker.exists());
}

#[test]
fn a_denied_request_reports_no_interpreter() {
    let fixture = project();
    let out = verify_json(fixture.root(), &["src"]);
    assert_eq!(out.code, Some(3));
    assert!(out.json().get("interpreter").is_none(), "{}", out.stdout);
}

#[test]
fn an_installed_plugin_keeps_working() {
    let python = python_with_pytest();
    let mut probe = std::process::Command::new(python);
    probe.args(["-c", "import pytest_timeout"]);
    assert_eq!(
        run(&mut probe, None, VERIFY_DEADLINE).code,
        Some(0),
        "these tests need pytest-timeout (pinned in xtask/requirements.txt) in {}: run `cargo xtask test`, which installs every pin into target/venv",
        python.display()
    );
    let fixture = project();
    // `--strict-config` and `--strict-markers` make pytest stop on the plugin's ini key and
    // marker if it did not load, and only the plugin stops the sleeping test after a second.
    fixture.write(
        "pytest.ini",
        "[pytest]\ntimeout = 60\naddopts = --strict-config --strict-markers -p no:logging\n",
    );
    fixture.write(
        "tests/test_timeout.py",
        "import time\n\nimport pytest\n\n\n@pytest.mark.timeout(1)\ndef test_sleeps():\n    time.sleep(30)\n",
    );
    let out = verify_json(fixture.root(), &["tests", "--retries", "0"]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["counts"]["passed"], 1, "{doc}");
    assert_eq!(doc["counts"]["failed"], 1, "{doc}");
    let failed = doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["outcome"] == "failed")
        .unwrap();
    assert_eq!(failed["nodeid"], "tests/test_timeout.py::test_sleeps");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("pytest-timeout"),
        "{failed}"
    );
}

#[test]
fn xdist_workers_run_when_the_policy_opts_in_with_the_counts_of_a_serial_run() {
    let python = python_with_pytest();
    let mut probe = std::process::Command::new(python);
    probe.args(["-c", "import xdist"]);
    assert_eq!(
        run(&mut probe, None, VERIFY_DEADLINE).code,
        Some(0),
        "these tests need pytest-xdist (pinned in xtask/requirements.txt) in {}: run `cargo xtask test`, which installs every pin into target/venv",
        python.display()
    );
    let fixture = project();
    for i in 1..=4 {
        fixture.write(
            &format!("tests/test_{i}.py"),
            &format!("def test_a{i}():\n    pass\n\n\ndef test_b{i}():\n    assert {i} != 3\n"),
        );
    }
    // Without the opt-in, `-n` is denied and the denial names the key.
    let out = verify_json(fixture.root(), &["tests", "--", "-n", "2"]);
    assert_eq!(out.code, Some(3), "{}", out.stdout);
    let reason = out.json()["decision"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("allow_options = [\"xdist\"]"), "{reason}");

    fixture.write(
        "warden.toml",
        "version = 1\nextends = \"builtin\"\n[pytest]\nallow_options = [\"xdist\"]\n[[rule]]\nid = \"tests\"\neffect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\nscope = [\"tests\"]\n",
    );
    let serial = verify_json(fixture.root(), &["tests", "--retries", "0", "--no-ledger"]);
    let parallel = verify_json(
        fixture.root(),
        &["tests", "--retries", "0", "--no-ledger", "--", "-n", "2"],
    );
    for out in [&serial, &parallel] {
        assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    }
    let (serial, parallel) = (serial.json(), parallel.json());
    assert_eq!(parallel["counts"], serial["counts"], "{parallel}");
    assert_eq!(parallel["counts"]["passed"], 8);
    assert_eq!(parallel["counts"]["failed"], 1);
    assert_eq!(parallel["failure_class"], "test_failure");
}
