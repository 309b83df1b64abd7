//! `cargo xtask demo`: Warden at work on the bundled example project, `examples/demo`.
//!
//! The demo is a script of [`Step`]s run against a temporary copy of the project (some steps
//! plant hostile files, and the repository must stay clean). Each request states the decision
//! it expects, so the demo is also a smoke test of the real binary: any surprise makes it fail.
//! To show more, add steps to [`script`] (and, for new kinds of request, a [`Step`] variant;
//! steps that run pytest get their interpreter from `crate::venv::ensure`).

use std::fs;
use std::io::{self, BufReader};
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};
use cargo_metadata::Message;
use serde::Deserialize;

use crate::process::{cargo, describe};

#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    #[error("could not build the warden binary: `{command}` {problem}")]
    Build { command: String, problem: String },
    #[error("cannot copy the example project {from} to {to}: {source}")]
    Copy {
        from: Utf8PathBuf,
        to: Utf8PathBuf,
        source: io::Error,
    },
    #[error("the temporary directory {0} is not valid UTF-8")]
    NonUtf8Temp(String),
    #[error("cannot prepare the demo project ({what}): {source}")]
    Prepare {
        what: &'static str,
        source: io::Error,
    },
    #[error("{failed} of {total} demo steps did not behave as expected (marked UNEXPECTED above)")]
    Unexpected { failed: usize, total: usize },
}

/// A decision the script expects.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Allowed, resolving to this root-relative path (a node id's `::...` part aside).
    Allow(&'static str),
    Deny,
}

/// One request to `warden check`.
#[derive(Debug, Clone, Copy)]
struct Check {
    tool: &'static str,
    action: &'static str,
    target: Option<&'static str>,
    args: &'static [&'static str],
    expect: Expect,
}

/// One step of the demo script.
enum Step {
    /// Change the project copy, as an agent (or an attacker) might.
    Prepare {
        what: &'static str,
        apply: fn(&Utf8Path) -> io::Result<()>,
    },
    /// Ask `warden check` for a decision.
    Check { what: &'static str, check: Check },
}

fn pytest(target: &'static str, args: &'static [&'static str], expect: Expect) -> Check {
    Check {
        tool: "pytest",
        action: "run",
        target: Some(target),
        args,
        expect,
    }
}

fn write_file(target: &'static str, expect: Expect) -> Check {
    Check {
        tool: "fs",
        action: "write",
        target: Some(target),
        args: &[],
        expect,
    }
}

/// The demo, in the order it is told.
fn script() -> Vec<Step> {
    use Expect::{Allow, Deny};
    let check = |what, check| Step::Check { what, check };
    let mut steps = vec![
        check(
            "run the project's tests",
            pytest("runtime/tests", &[], Allow("runtime/tests")),
        ),
        check(
            "run one test by node id",
            pytest(
                "runtime/tests/test_calc.py::test_add",
                &[],
                Allow("runtime/tests/test_calc.py"),
            ),
        ),
        check(
            "run with allowlisted pytest options",
            pytest(
                "runtime/tests",
                &["-x", "-q", "--tb=short"],
                Allow("runtime/tests"),
            ),
        ),
        check(
            "run the source tree (out of scope)",
            pytest("src", &[], Deny),
        ),
        check(
            "escape the scope with `..`",
            pytest("runtime/tests/../../src", &[], Deny),
        ),
        check(
            "escape the root with `..`",
            pytest("../../../etc", &[], Deny),
        ),
        check("an absolute path", pytest("/etc", &[], Deny)),
        Step::Prepare {
            what: "plant runtime/testsX/test_sneaky.py, a sibling whose name extends the scope's",
            apply: |root| {
                fs::create_dir_all(root.join("runtime/testsX"))?;
                fs::write(
                    root.join("runtime/testsX/test_sneaky.py"),
                    "def test_sneaky():\n    pass\n",
                )
            },
        },
        check(
            "the prefix trick runtime/testsX",
            pytest("runtime/testsX", &[], Deny),
        ),
        check(
            "move pytest's root with --rootdir=/",
            pytest("runtime/tests", &["--rootdir=/"], Deny),
        ),
        check(
            "load a plugin with -p",
            pytest("runtime/tests", &["-p", "evil_plugin"], Deny),
        ),
        Step::Prepare {
            what: "add the protected surface docs/00_foundations",
            apply: |root| {
                fs::create_dir_all(root.join("docs/00_foundations"))?;
                fs::write(root.join("docs/00_foundations/charter.md"), "# Charter\n")
            },
        },
        check(
            "write into the protected docs/00_foundations",
            write_file("docs/00_foundations/charter.md", Deny),
        ),
        check(
            "write to the source tree",
            write_file("src/calc.py", Allow("src/calc.py")),
        ),
        check(
            "an unknown tool",
            Check {
                tool: "shell",
                action: "exec",
                target: Some("runtime/tests"),
                args: &[],
                expect: Deny,
            },
        ),
    ];
    if cfg!(unix) {
        steps.extend([
            Step::Prepare {
                what: "plant a symlink runtime/tests/escape -> ../../src",
                apply: symlink_escape,
            },
            check(
                "run through the symlink",
                pytest("runtime/tests/escape", &[], Deny),
            ),
            check(
                "run the scope that now holds an escaping link",
                pytest("runtime/tests", &[], Deny),
            ),
        ]);
    }
    steps
}

#[cfg(unix)]
fn symlink_escape(root: &Utf8Path) -> io::Result<()> {
    std::os::unix::fs::symlink("../../src", root.join("runtime/tests/escape"))
}

#[cfg(not(unix))]
fn symlink_escape(_: &Utf8Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "symlinks are only planted on unix",
    ))
}

/// Runs the demo from the workspace at `root`.
pub(crate) fn run(root: &Utf8Path) -> Result<(), DemoError> {
    let warden = build_warden(root)?;
    let temp = tempfile::tempdir().map_err(|source| DemoError::Prepare {
        what: "create a temporary directory",
        source,
    })?;
    let temp_path = Utf8Path::from_path(temp.path())
        .ok_or_else(|| DemoError::NonUtf8Temp(temp.path().display().to_string()))?;
    let project = temp_path.join("demo");
    let example = root.join("examples").join("demo");
    copy_tree(&example, &project).map_err(|source| DemoError::Copy {
        from: example.clone(),
        to: project.clone(),
        source,
    })?;
    println!("Warden demo: `warden check` on a copy of examples/demo at {project}");
    println!("(each request runs as `warden check --root <copy> --json ...`)\n");

    let steps = script();
    let mut failed = 0;
    let mut number = 0;
    for step in &steps {
        match step {
            Step::Prepare { what, apply } => {
                println!("-- {what}\n");
                apply(&project).map_err(|source| DemoError::Prepare { what, source })?;
            }
            Step::Check { what, check } => {
                number += 1;
                println!("[{number}] {what}");
                if let Err(problem) = run_check(&warden, &project, check) {
                    println!("    UNEXPECTED: {problem}");
                    failed += 1;
                }
                println!();
            }
        }
    }
    if failed > 0 {
        return Err(DemoError::Unexpected {
            failed,
            total: number,
        });
    }
    println!("demo: all {number} requests were decided as expected");
    Ok(())
}

/// `warden check --json` output (the contract's keys this demo reads; others are ignored).
#[derive(Debug, Deserialize)]
struct CheckOutput {
    allowed: bool,
    reason: String,
    matched_rules: Vec<String>,
    resolved_target: Option<String>,
}

/// Runs one check, prints its decision, and says what was unexpected about it, if anything.
fn run_check(warden: &Utf8Path, project: &Utf8Path, check: &Check) -> Result<(), String> {
    let mut command = Command::new(warden);
    command.args(["check", "--tool", check.tool, "--action", check.action]);
    if let Some(target) = check.target {
        // `--flag=value` keeps a value that starts with `-` from reading as a flag.
        command.arg(format!("--target={target}"));
    }
    for arg in check.args {
        command.arg(format!("--arg={arg}"));
    }
    println!("    $ {}", describe(&command));
    command
        .arg("--root")
        .arg(project)
        .arg("--json")
        .stdin(Stdio::null());
    let output = command
        .output()
        .map_err(|e| format!("could not run {warden}: {e}"))?;
    let code = output.status.code();
    let decision: CheckOutput = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "{}, and stdout is not the contract's JSON ({e}){}{}",
            output.status,
            excerpt("stdout", &output.stdout),
            excerpt("stderr", &output.stderr)
        )
    })?;

    let verdict = if decision.allowed {
        "ALLOWED"
    } else {
        "DENIED "
    };
    println!("    {verdict}  {}", decision.reason);
    if !decision.matched_rules.is_empty() {
        println!("             rules: {}", decision.matched_rules.join(", "));
    }
    if let Some(resolved) = &decision.resolved_target {
        println!("             resolved target: {resolved}");
    }

    let expected_code = if decision.allowed { Some(0) } else { Some(1) };
    if code != expected_code {
        return Err(format!(
            "{} does not match allowed={} (contract: exit 0 allowed, 1 denied)",
            output.status, decision.allowed
        ));
    }
    match (check.expect, decision.allowed) {
        (Expect::Deny, true) => Err("expected a denial, but warden allowed it".to_owned()),
        (Expect::Allow(_), false) => {
            Err("expected it to be allowed, but warden denied it".to_owned())
        }
        (Expect::Allow(path), true) => {
            let resolved = decision.resolved_target.unwrap_or_default();
            let resolved_path = resolved.split("::").next().unwrap_or_default();
            if resolved_path == path {
                Ok(())
            } else {
                Err(format!(
                    "expected the resolved target {path}, got {resolved:?}"
                ))
            }
        }
        (Expect::Deny, false) => Ok(()),
    }
}

/// A short labelled excerpt of a child's output for an error message, or nothing if empty.
fn excerpt(label: &str, bytes: &[u8]) -> String {
    const LIMIT: usize = 400;
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(LIMIT) {
        _ if text.is_empty() => String::new(),
        Some((cut, _)) => format!("; {label}: {}...", &text[..cut]),
        None => format!("; {label}: {text}"),
    }
}

/// Builds the `warden` binary and returns its path, as cargo reports it (so the target
/// directory may be anywhere).
fn build_warden(root: &Utf8Path) -> Result<Utf8PathBuf, DemoError> {
    let mut command = cargo(root);
    command
        .args([
            "build",
            "--package",
            "warden-cli",
            "--bin",
            "warden",
            "--quiet",
        ])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    let described = describe(&command);
    let failed = |problem: String| DemoError::Build {
        command: described.clone(),
        problem,
    };
    println!("==> building warden: {described}");
    let mut child = command
        .spawn()
        .map_err(|e| failed(format!("could not start: {e}")))?;
    let mut binary = None;
    if let Some(stdout) = child.stdout.take() {
        for message in Message::parse_stream(BufReader::new(stdout)) {
            let message = message.map_err(|e| failed(format!("unreadable output: {e}")))?;
            if let Message::CompilerArtifact(artifact) = message
                && artifact.target.name == "warden"
                && let Some(executable) = artifact.executable
            {
                binary = Some(executable);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| failed(format!("could not wait for it: {e}")))?;
    if !status.success() {
        return Err(failed(format!("exited with {status}")));
    }
    binary.ok_or_else(|| failed("reported no `warden` executable".to_owned()))
}

/// Copies a project tree, leaving out Python and Warden caches; symlinks stay symlinks (never
/// followed: a link in the example must not copy files from outside it).
fn copy_tree(from: &Utf8Path, to: &Utf8Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in from.read_dir_utf8()? {
        let entry = entry?;
        if matches!(
            entry.file_name(),
            "__pycache__" | ".pytest_cache" | ".warden"
        ) {
            continue;
        }
        let destination = to.join(entry.file_name());
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            copy_tree(entry.path(), &destination)?;
        } else if file_type.is_symlink() {
            copy_symlink(entry.path(), &destination)?;
        } else {
            fs::copy(entry.path(), &destination)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn copy_symlink(from: &Utf8Path, to: &Utf8Path) -> io::Result<()> {
    std::os::unix::fs::symlink(fs::read_link(from)?, to)
}

#[cfg(not(unix))]
fn copy_symlink(from: &Utf8Path, _: &Utf8Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("cannot copy the symlink {from} on this platform"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_expects_both_decisions() {
        let expectations: Vec<Expect> = script()
            .iter()
            .filter_map(|step| match step {
                Step::Check { check, .. } => Some(check.expect),
                Step::Prepare { .. } => None,
            })
            .collect();
        assert!(expectations.iter().any(|e| matches!(e, Expect::Allow(_))));
        assert!(
            expectations
                .iter()
                .filter(|e| matches!(e, Expect::Deny))
                .count()
                >= 8
        );
    }

    /// A stand-in `warden` that answers every check with `json` and exits with `code`.
    #[cfg(unix)]
    fn fake_warden(dir: &Utf8Path, json: &str, code: i32) -> Utf8PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("warden");
        fs::write(
            &path,
            format!("#!/bin/sh\ncat <<'EOF'\n{json}\nEOF\nexit {code}\n"),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[cfg(unix)]
    #[test]
    fn run_check_catches_a_misbehaving_binary() {
        let temp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(temp.path()).unwrap();
        let allow = r#"{"allowed": true, "reason": "r", "matched_rules": ["a"], "tool": "pytest", "action": "run", "target": "src", "resolved_target": "src"}"#;
        let deny = r#"{"allowed": false, "reason": "r", "matched_rules": [], "tool": "pytest", "action": "run", "target": "src", "resolved_target": null}"#;
        let denied = pytest("src", &[], Expect::Deny);
        let allowed = pytest("src", &[], Expect::Allow("src"));

        assert_eq!(run_check(&fake_warden(dir, deny, 1), dir, &denied), Ok(()));
        assert_eq!(
            run_check(&fake_warden(dir, allow, 0), dir, &allowed),
            Ok(())
        );

        let cases = [
            (allow, 0, denied, "expected a denial"),
            (deny, 1, allowed, "expected it to be allowed"),
            (deny, 0, denied, "does not match allowed=false"),
            (allow, 1, allowed, "does not match allowed=true"),
            (deny, 2, denied, "does not match"),
            (
                "usage: warden check ...",
                2,
                denied,
                "not the contract's JSON",
            ),
        ];
        for (json, code, check, expected) in cases {
            let problem = run_check(&fake_warden(dir, json, code), dir, &check).unwrap_err();
            assert!(problem.contains(expected), "{json} exit {code}: {problem}");
        }
        let elsewhere = pytest("src", &[], Expect::Allow("runtime/tests"));
        let problem = run_check(&fake_warden(dir, allow, 0), dir, &elsewhere).unwrap_err();
        assert!(
            problem.contains("expected the resolved target runtime/tests"),
            "{problem}"
        );
    }

    #[test]
    fn preparations_apply_to_a_copy_of_the_example() {
        let temp = tempfile::tempdir().unwrap();
        let project = Utf8Path::from_path(temp.path()).unwrap().join("demo");
        let example = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
        copy_tree(&example, &project).unwrap();
        assert!(project.join("runtime/tests/test_calc.py").is_file());
        assert!(project.join("pytest.ini").is_file());
        for step in script() {
            if let Step::Prepare { what, apply } = step {
                apply(&project).unwrap_or_else(|e| panic!("{what}: {e}"));
            }
        }
        assert!(project.join("runtime/testsX/test_sneaky.py").is_file());
        assert!(project.join("docs/00_foundations/charter.md").is_file());
        // The example itself is untouched.
        assert!(!example.join("runtime/testsX").exists());
        assert!(!example.join("docs").exists());
    }
}
