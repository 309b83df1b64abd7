//! A Rust service embedding Warden: an agent loop that verifies a target, reads the retry
//! context, and decides what to do next.
//!
//! ```text
//! cargo run -p warden-build-mission --example agent_loop -- [ROOT] [TARGET]
//! ```
//!
//! ROOT defaults to the bundled `examples/demo`, TARGET to `runtime/tests`. pytest runs with the
//! interpreter the policy names, else `WARDEN_PYTHON`, else `python3` (`cargo xtask test` makes
//! one with pytest in `target/venv`). The policy is `warden.toml` in the root if there is one,
//! else the built-in default. The evidence ledger goes to a temporary directory, so the project
//! is never written to. `RUST_LOG=info` shows Warden's own log on stderr.
//!
//! The loop is what an agent does with each verdict:
//!
//! - passed: done;
//! - a flake (passed, with flaky tests): the code is not shown wrong; verify once more to see
//!   whether the flake recurs before moving on;
//! - a test failure or a collection-level error: edit the code the retry context points at (this
//!   example prints what it would change, then stops: it has no model to write the fix);
//! - a timeout, a denial or an exhausted budget, an infrastructure error: stop and report, since
//!   retrying the same request cannot help.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;

use warden_build_mission::{Ledger, Mission, Verification, VerifyRequest};
use warden_executor::PytestRunner;
use warden_governance_api::{Policy, Root};
use warden_taxonomy::{FailureClass, RetryContext};

/// At most this many verifications per task: every one costs test time.
const MAX_STEPS: usize = 3;

/// What the agent does after a verification.
#[derive(Debug)]
enum Next {
    /// The task is verified.
    Done,
    /// Verify again unchanged (a flake may recur).
    VerifyAgain,
    /// Change the code as the retry context suggests, then verify again.
    Edit(RetryContext),
    /// Retrying cannot help; hand back to a person.
    Stop(String),
}

fn decide(verification: &Verification) -> Next {
    let report = &verification.report;
    let Some(context) = report.retry_context.clone() else {
        return Next::Done;
    };
    match context.failure_class {
        FailureClass::TestFlake => Next::VerifyAgain,
        FailureClass::TestFailure
        | FailureClass::SyntaxError
        | FailureClass::CollectionError
        | FailureClass::UsageError
        | FailureClass::NoTests => Next::Edit(context),
        FailureClass::TestTimeout
        | FailureClass::PolicyDenied
        | FailureClass::BudgetExhausted
        | FailureClass::Infrastructure
        | FailureClass::InternalError
        | FailureClass::Interrupted => Next::Stop(context.suggestion),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    // The exit code is the last verification's, as `warden verify` would give it.
    let code = match agent_loop().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("agent loop: {error}");
            2
        }
    };
    std::process::exit(code);
}

/// Runs the loop and returns the exit code (temporary files are gone by then).
async fn agent_loop() -> Result<i32, Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo"),
        PathBuf::from,
    );
    let target = args.next().unwrap_or_else(|| "runtime/tests".to_owned());

    let root = Root::new(&root)?;
    let policy_file = root.path().join("warden.toml");
    let policy = if policy_file.is_file() {
        Policy::load_for(&root, &policy_file)?
    } else {
        Policy::builtin()
    };
    let evidence = tempfile::tempdir()?;
    let ledger = Ledger::new(evidence.path().join("ledger.jsonl"));
    let mut mission = Mission::new(root, policy)
        .with_runner(Arc::new(PytestRunner::new()))
        .with_ledger(Some(ledger.clone()))
        .with_mission_id(Some(format!("agent-loop-{}", std::process::id())));

    let request = VerifyRequest::new(target);
    for step in 1..=MAX_STEPS {
        // Earlier verifications on the same tree are history: a test that passed on this very
        // code before and fails now is a flake, not a reason to edit.
        let history = ledger.lazy_history();
        let verification = match mission.verify(&request, history.clone()).await {
            Ok(verification) => verification,
            Err(error) => {
                eprintln!("step {step}: warden could not complete the verification: {error}");
                return Ok(5);
            }
        };
        if let Some(error) = history.take_error() {
            eprintln!("step {step}: history was cut short: {error}");
        }
        let report = &verification.report;
        println!(
            "step {step}: {} ({}) in {} ms, {} attempt(s), {} passed / {} failed, budget left {:.1} s",
            report.status,
            report.failure_class.map_or("clean", |c| c.as_str()),
            report.duration_ms,
            report.attempts.len(),
            report.counts.passed,
            report.counts.failures(),
            mission.budget().remaining().as_secs_f64(),
        );
        for note in &verification.notes {
            println!("  note: {note}");
        }
        match decide(&verification) {
            Next::Done => {
                println!("done: the target is verified");
                return Ok(0);
            }
            Next::VerifyAgain => {
                println!(
                    "  flaky, not failing: {}; verifying once more",
                    report.flaky_tests.join(", ")
                );
            }
            Next::Edit(context) => {
                println!("  the agent would now edit the code:");
                println!("    failing: {}", context.failed_tests.join(", "));
                for message in &context.error_messages {
                    println!("    error: {message}");
                }
                println!("    plan: {}", context.suggestion);
                println!("stopping: this example has no model to write the fix");
                return Ok(verification.exit_code());
            }
            Next::Stop(why) => {
                println!("stopping: {why}");
                return Ok(verification.exit_code());
            }
        }
    }
    println!("stopping: still flaky after {MAX_STEPS} verifications; make the tests deterministic");
    Ok(0)
}
