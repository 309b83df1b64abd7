//! `cargo xtask test`: the whole test suite, the same on a laptop and in CI.
//!
//! Steps run cheapest first and stop at the first failure, naming it.

use std::io;
use std::process::Command;
use std::time::{Duration, Instant};

use camino::Utf8Path;

use crate::boundary::{self, BoundaryError};
use crate::process::{Unsuccessful, cargo, describe, succeed};
use crate::venv::{self, VenvError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum TestError {
    #[error("step `venv` failed: {0}")]
    Venv(#[from] VenvError),
    #[error("step `{step}` failed ({status}): `{command}`")]
    Failed {
        step: &'static str,
        command: String,
        status: String,
    },
    #[error("step `{step}` could not start `{command}`: {source}")]
    Spawn {
        step: &'static str,
        command: String,
        source: io::Error,
    },
    #[error("step `boundary` failed: {0}")]
    Boundary(#[source] BoundaryError),
}

/// One step of the suite.
struct Step {
    name: &'static str,
    action: Action,
}

enum Action {
    Run(Command),
    Boundary,
}

/// Runs the suite for the workspace at `root`.
pub(crate) fn run(root: &Utf8Path) -> Result<(), TestError> {
    let mut timings = Vec::new();
    let start = Instant::now();
    println!("==> venv");
    let python = venv::ensure(root)?;
    finished("venv", start.elapsed(), &mut timings);
    for step in steps(root, &python) {
        let name = step.name;
        let start = Instant::now();
        let result = step.run(root);
        if result.is_err() {
            println!("==> {name} FAILED after {}", seconds(start.elapsed()));
            return result;
        }
        finished(name, start.elapsed(), &mut timings);
    }
    println!("\nall steps passed:");
    for (name, elapsed) in &timings {
        println!("  {name:<10} {:>8}", seconds(*elapsed));
    }
    Ok(())
}

fn finished(name: &'static str, elapsed: Duration, timings: &mut Vec<(&'static str, Duration)>) {
    println!("==> {name} ok ({})", seconds(elapsed));
    timings.push((name, elapsed));
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}

/// The suite after the virtualenv, in order. The boundary audit is cheap and so runs early.
fn steps(root: &Utf8Path, python: &Utf8Path) -> Vec<Step> {
    let cargo_with = |args: &[&str]| {
        let mut command = cargo(root);
        command.args(args);
        command
    };
    let run = |name, command| Step {
        name,
        action: Action::Run(command),
    };
    let mut test = cargo_with(&["test", "--workspace"]);
    test.env("WARDEN_PYTHON", python);
    let mut doc = cargo_with(&["doc", "--workspace", "--no-deps"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    vec![
        run("fmt", cargo_with(&["fmt", "--all", "--check"])),
        Step {
            name: "boundary",
            action: Action::Boundary,
        },
        run(
            "clippy",
            cargo_with(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        ),
        run("test", test),
        run("doc", doc),
        // Benchmarks run with `cargo bench` or `cargo xtask bench`; here they only have to build.
        run("bench", cargo_with(&["bench", "--workspace", "--no-run"])),
    ]
}

impl Step {
    fn run(self, root: &Utf8Path) -> Result<(), TestError> {
        match self.action {
            Action::Boundary => {
                println!("==> boundary: cargo xtask boundary (in-process)");
                boundary::run(root).map_err(TestError::Boundary)
            }
            Action::Run(mut command) => {
                println!("==> {}: {}", self.name, describe(&command));
                let step = self.name;
                succeed(&mut command).map_err(|failure| match failure {
                    Unsuccessful::Spawn { command, source } => TestError::Spawn {
                        step,
                        command,
                        source,
                    },
                    Unsuccessful::Failed { command, status } => TestError::Failed {
                        step,
                        command,
                        status,
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> &'static Utf8Path {
        Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
    }

    #[test]
    fn steps_are_the_suite_in_order_with_their_environment() {
        let python = Utf8Path::new("/abs/venv/bin/python");
        let steps = steps(root(), python);
        let described: Vec<(&str, String)> = steps
            .iter()
            .map(|step| match &step.action {
                Action::Run(command) => {
                    assert_eq!(command.get_current_dir(), Some(root().as_std_path()));
                    (step.name, describe(command))
                }
                Action::Boundary => (step.name, "in-process".to_owned()),
            })
            .collect();
        assert_eq!(
            described,
            vec![
                ("fmt", "cargo fmt --all --check".to_owned()),
                ("boundary", "in-process".to_owned()),
                (
                    "clippy",
                    "cargo clippy --workspace --all-targets -- -D warnings".to_owned()
                ),
                (
                    "test",
                    "WARDEN_PYTHON=/abs/venv/bin/python cargo test --workspace".to_owned()
                ),
                (
                    "doc",
                    "RUSTDOCFLAGS='-D warnings' cargo doc --workspace --no-deps".to_owned()
                ),
                ("bench", "cargo bench --workspace --no-run".to_owned()),
            ]
        );
    }

    #[test]
    fn a_failing_step_is_named_with_its_command_and_status() {
        let mut command = Command::new("sh");
        command.args(["-c", "exit 7"]);
        let step = Step {
            name: "clippy",
            action: Action::Run(command),
        };
        match step.run(root()) {
            Err(error @ TestError::Failed { step: "clippy", .. }) => {
                let message = error.to_string();
                assert!(
                    message.starts_with("step `clippy` failed (exit status: 7): `sh -c 'exit 7'`"),
                    "{message}"
                );
                assert!(message.contains('7'), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_step_that_cannot_start_is_named() {
        let step = Step {
            name: "fmt",
            action: Action::Run(Command::new("/no/such/cargo-xtask-test")),
        };
        assert!(matches!(
            step.run(root()),
            Err(TestError::Spawn { step: "fmt", .. })
        ));
    }

    #[test]
    fn a_passing_step_passes() {
        let step = Step {
            name: "fmt",
            action: Action::Run(Command::new("true")),
        };
        step.run(root()).unwrap();
    }
}
