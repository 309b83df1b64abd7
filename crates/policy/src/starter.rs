//! A first policy file for a project, from what the project declares: what `warden init` writes.

use std::fmt::Write as _;

use serde::Serialize;

use crate::addopts::{self, as_args};
use crate::inifile;
use crate::root::Root;
use crate::target::parse_scope;

/// A commented `warden.toml` for a project: [`Starter::for_root`] reads the project's declared
/// test paths (`testpaths` in the pytest configuration file at the root: `pytest.toml`,
/// `pytest.ini`, `pyproject.toml`, `tox.ini` or `setup.cfg`), else takes `tests/` or `test/`
/// when one exists, and writes a policy that builds on the built-in one
/// (`extends = "builtin"`) and allows pytest there.
///
/// ```
/// use warden_policy::{Policy, Root, Starter, ToolRequest};
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("pytest.ini"), "[pytest]\ntestpaths = tests integration\n")?;
/// std::fs::create_dir_all(dir.path().join("tests"))?;
/// let root = Root::new(dir.path())?;
/// let starter = Starter::for_root(&root);
/// assert_eq!(starter.test_paths, ["tests", "integration"]);
/// assert_eq!(starter.source, "`testpaths` in `pytest.ini`");
/// let policy = Policy::from_toml_str_for(&root, &starter.text)?;
/// let run = ToolRequest::pytest_run("integration/test_x.py", Vec::<String>::new());
/// assert!(policy.decide(&root, &run).allowed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Starter {
    /// The root-relative directories the policy allows pytest to run in.
    pub test_paths: Vec<String>,
    /// Where they came from, in words: `` `testpaths` in `pyproject.toml` ``, `the tests/
    /// directory`, or that nothing was found.
    pub source: String,
    /// Declared test paths left out, each with why (a glob, a path outside the root, ...).
    pub skipped: Vec<String>,
    /// The policy file's text.
    pub text: String,
}

impl Starter {
    /// The starter policy for the project under `root`.
    pub fn for_root(root: &Root) -> Starter {
        let (test_paths, source, skipped) = test_paths(root);
        let text = render(&test_paths, &source, &skipped);
        Starter {
            test_paths,
            source,
            skipped,
            text,
        }
    }
}

/// The project's declared test paths, where they came from, and what was left out.
fn test_paths(root: &Root) -> (Vec<String>, String, Vec<String>) {
    let mut skipped = Vec::new();
    if let Some(file) = inifile::locate(root.path(), &[]) {
        let shown_file = file
            .strip_prefix(root.path())
            .map_or_else(|_| file.to_string(), |p| p.to_string());
        if let Ok(Some(found)) = addopts::read_key(&file, "testpaths")
            && let Some(items) = as_args(&found)
        {
            let mut paths = Vec::new();
            for item in items {
                match usable(&item) {
                    Ok(path) if !paths.contains(&path) => paths.push(path),
                    Ok(_) => {}
                    Err(why) => skipped.push(format!("`{item}` {why}")),
                }
            }
            if !paths.is_empty() {
                return (paths, format!("`testpaths` in `{shown_file}`"), skipped);
            }
        }
    }
    for dir in ["tests", "test"] {
        if root.path().join(dir).is_dir() {
            return (
                vec![dir.to_owned()],
                format!("the `{dir}/` directory (no `testpaths` declared)"),
                skipped,
            );
        }
    }
    (
        vec!["tests".to_owned()],
        "nothing: no `testpaths` declared and no `tests/` or `test/` directory, so the rule names `tests`; edit it".to_owned(),
        skipped,
    )
}

/// A declared test path as a scope: its directories up to the first glob component.
fn usable(item: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for part in item.split('/') {
        if part.contains(['*', '?', '[']) {
            break;
        }
        parts.push(part);
    }
    let path = parts.join("/");
    if path.trim_matches('/').is_empty() || path == "." {
        return Err("is a pattern for the whole root; name the directories instead".to_owned());
    }
    let components = parse_scope(&path).map_err(|why| format!("cannot be a scope: {why}"))?;
    Ok(components.join("/"))
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn render(paths: &[String], source: &str, skipped: &[String]) -> String {
    let mut out = String::new();
    let scope: Vec<String> = paths.iter().map(|p| toml_string(p)).collect();
    let _ = write!(
        out,
        r#"# Warden policy for this project, written by `warden init`.
# The test paths come from {source}.
#
# `warden policy` prints the policy in force, with where each rule and limit comes from.
# Every key is described in Warden's docs/policy.md. Unknown keys are errors; a file whose
# examples do not hold does not load, so an edit that breaks a promise is refused before
# anything runs.

version = 1

# Build on the built-in policy: its rules stay (pytest in runtime/tests; file writes anywhere
# in the root except docs/00_foundations, docs/01_governance, warden.toml and .warden/) and the
# rules below are added. Without this line the file replaces them.
extends = "builtin"

# Limits of governed runs; every key is optional. These are the defaults.
[limits]
# timeout_secs = 300        # deadline of one pytest run; then its whole process tree is killed
# grace_secs = 5            # between SIGTERM and SIGKILL at the deadline
# budget_secs = 600         # cumulative test time of one mission
# output_cap_bytes = 51200  # bytes kept of each output stream
# retries = 2               # reruns of failed tests, to tell a flake from a real failure
# env_allow = []            # more environment variables for the tests (TZ, ...)
# python = "/usr/bin/python3"  # the interpreter; by default `--python`, WARDEN_PYTHON,
#                              # an active VIRTUAL_ENV, the root's .venv/venv, then python3

# Options the argument allowlist refuses unless named here.
[pytest]
# allow_options = ["xdist"]   # pytest-xdist workers: -n N, --dist (same interpreter)

# pytest may run the project's tests: any target inside these paths (a directory, a file, a
# node id); anything outside them is denied.
[[rule]]
id = "project-tests"
effect = "allow"
tool = "pytest"
action = "run"
scope = [{}]
description = "the project's test paths"
"#,
        scope.join(", ")
    );
    if !skipped.is_empty() {
        out.push_str("\n# Declared test paths left out:\n");
        for why in skipped {
            let _ = writeln!(out, "#   {}", why.replace('\n', " "));
        }
    }
    out.push_str(
        "\n# Examples: requests with the outcome they must have, checked every time the file loads.\n",
    );
    for path in paths {
        let _ = write!(
            out,
            r#"
[[example]]
name = "the test path {name}"
expect = "allow"
tool = "pytest"
action = "run"
target = {target}
matched_rules = ["project-tests"]
"#,
            name = path.replace(['"', '\\'], ""),
            target = toml_string(path)
        );
    }
    out.push_str(
        r#"
[[example]]
name = "the policy itself"
expect = "deny"
tool = "fs"
action = "write"
target = "warden.toml"
matched_rules = ["protect-warden"]
"#,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    #[test]
    fn declared_paths_become_scopes_and_patterns_keep_their_directories() {
        assert_eq!(usable("tests/"), Ok("tests".to_owned()));
        assert_eq!(usable("./src/pkg/tests"), Ok("src/pkg/tests".to_owned()));
        assert_eq!(usable("pkgs/*/tests"), Ok("pkgs".to_owned()));
        assert!(usable("*").is_err());
        assert!(usable("../elsewhere").is_err());
        assert!(usable("/abs").is_err());
    }

    #[test]
    fn every_starter_loads_and_allows_its_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("setup.cfg"),
            "[tool:pytest]\ntestpaths = tests ../outside pkgs/*/tests \"with space\"\n",
        )
        .unwrap();
        let root = Root::new(dir.path()).unwrap();
        let starter = Starter::for_root(&root);
        assert_eq!(starter.test_paths, ["tests", "pkgs", "with space"]);
        assert_eq!(starter.skipped.len(), 1, "{:?}", starter.skipped);
        assert!(
            starter.text.contains("#   `../outside` cannot be a scope"),
            "{}",
            starter.text
        );
        let policy = Policy::from_toml_str_for(&root, &starter.text).unwrap();
        assert_eq!(policy.effective().extends.as_deref(), Some("builtin"));
        // Nothing declared and no test directory: a placeholder that says so.
        let empty = tempfile::tempdir().unwrap();
        let root = Root::new(empty.path()).unwrap();
        let starter = Starter::for_root(&root);
        assert_eq!(starter.test_paths, ["tests"]);
        assert!(starter.source.starts_with("nothing"), "{}", starter.source);
        Policy::from_toml_str_for(&root, &starter.text).unwrap();
    }
}
