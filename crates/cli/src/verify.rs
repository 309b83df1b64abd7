//! `warden verify`: the main job, from the command line to the exit code.
//!
//! Everything that can be wrong with the invocation is found before a test runs (exit 2): the
//! root and policy, where the ledger would be written (inside the root only), every history
//! file (checked in full). Then [`Mission::verify`] decides, runs, reruns, classifies and
//! records, on a tokio runtime built here for this command alone, while a terminal shows live
//! progress. SIGINT, SIGTERM and SIGHUP cancel the run: dropping the verification kills the
//! test's whole process group, nothing is recorded, and warden exits 128 + the signal number.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use warden_build_mission::ledger::DEFAULT_LEDGER_PATH;
use warden_build_mission::{History, LedgerError, Mission, MissionError, VerifyRequest};
use warden_rootfs::Dir;
use warden_taxonomy::VerifyReport;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::context::Context;
use crate::error::CliError;
use crate::human::{Evidence, render};
use crate::output::{print, print_json};
use crate::place::ledger_inside;
use crate::progress::{LiveProgress, Plan};

/// Exit code when Python or pytest is missing, or the evidence could not be recorded.
const EXIT_INFRASTRUCTURE: u8 = 5;

/// Runs `warden verify` and returns the contract's exit code.
pub(crate) fn run(global: &GlobalArgs, args: &VerifyArgs) -> Result<ExitCode, CliError> {
    let context = Context::load(global)?;
    let ledger = if args.no_ledger {
        None
    } else {
        let requested = args
            .ledger
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LEDGER_PATH));
        let place = |reason| CliError::LedgerPlace {
            path: requested.clone(),
            reason,
        };
        // The root is held from this check to the append: see `place`.
        let root = Dir::open(context.root.path()).map_err(|e| place(e.to_string()))?;
        Some(ledger_inside(&root, &requested).map_err(place)?)
    };
    // The ledger in use is history too: a test that passed there on the same code is a flake.
    let history = History::open(&args.history, ledger.as_ref())?;
    let history_problem = history.problem();

    let policy_retries = context.policy.limits().retries;
    let retries = args
        .retries
        .map_or(policy_retries, |r| r.min(policy_retries));
    // This binary is the sandbox helper too (`warden __sandbox-exec`, dispatched in main).
    let launcher = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut runner = Mission::runner_for(&context.root).with_sandbox_launcher(launcher);
    if let Some(python) = &args.python {
        runner = runner.with_python(python.clone());
    }
    let progress = runner.progress();
    let ledger_path = ledger.as_ref().map(|l| l.path().to_owned());
    let mut mission = Mission::new(context.root, context.policy)
        .with_runner(Arc::new(runner))
        .with_ledger(ledger)
        .with_mission_id(args.mission.clone());
    let request = VerifyRequest {
        target: args.target.clone(),
        extra_args: args.pytest_args.clone(),
        timeout: args.timeout,
        retries: args.retries,
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let live = !global.json && std::io::stderr().is_terminal();
    let finished = runtime.block_on(async {
        let display = live.then(|| {
            let plan = Plan {
                target: args.target.clone(),
                retries,
                palette: global.color.stderr(),
            };
            LiveProgress::start(plan, progress)
        });
        let finished = tokio::select! {
            verification = mission.verify(&request, history) => Ok(verification),
            signal = stop_signal() => Err(signal),
        };
        if let Some(display) = display {
            display.finish();
        }
        finished
    });
    // Without waiting for blocking work the verification left behind (a ledger lock being
    // waited for, a tree being hashed): a signal must end warden now, not at their deadlines.
    runtime.shutdown_background();
    let verification = match finished {
        Ok(Ok(verification)) => verification,
        Ok(Err(MissionError::Ledger { report, source })) => {
            return unrecorded(global, &report, &source);
        }
        Ok(Err(e)) => return Err(CliError::Mission(e.to_string())),
        Err(signal) => return interrupted(global, signal),
    };
    let mut notes = verification.notes.clone();
    if let Some(problem) = history_problem.take() {
        tracing::warn!(
            %problem,
            "part of the history could not be read; the classification used what was read"
        );
        notes.push(format!(
            "part of the history could not be read ({problem}); the classification used what was \
             read"
        ));
    }

    let report = &verification.report;
    if global.json {
        print_json(report)?;
    } else {
        let evidence = match (&verification.ledger_entry, &ledger_path) {
            (Some(entry), Some(path)) => Evidence::Recorded(path, entry),
            _ => Evidence::NotRecorded,
        };
        print(&render(report, &notes, &evidence, global.color.stdout()))?;
    }
    let code = verification.exit_code();
    tracing::info!(status = %report.status, code, "verification finished");
    Ok(exit_code(code))
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(EXIT_INFRASTRUCTURE))
}

/// The tests ran but the evidence could not be appended: the report is still printed (nothing
/// is lost), and the exit code is 5, because the evidence guarantee failed in Warden's own
/// environment (a full disk, a ledger locked too long), whatever the tests did.
fn unrecorded(
    global: &GlobalArgs,
    report: &VerifyReport,
    source: &LedgerError,
) -> Result<ExitCode, CliError> {
    let message = format!(
        "the verification finished ({}) but its evidence could not be recorded: {source}",
        report.status
    );
    eprintln!("warden: error: {}", crate::style::escape_lines(&message));
    if global.json {
        print_json(report)?;
    } else {
        print(&render(
            report,
            &[],
            &Evidence::Failed,
            global.color.stdout(),
        ))?;
    }
    Ok(ExitCode::from(EXIT_INFRASTRUCTURE))
}

/// A signal that stops the run.
#[derive(Debug, Clone, Copy)]
struct Stop {
    name: &'static str,
    number: u8,
}

/// Waits for SIGINT (Ctrl-C), SIGTERM or SIGHUP. A handler that cannot be installed just never
/// fires (and says so): the run then ends by itself, within its deadline.
async fn stop_signal() -> Stop {
    use tokio::signal::unix::{SignalKind, signal};

    let listen = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::warn!(signal = name, error = %e, "cannot listen for the signal");
            None
        }
    };
    let mut int = listen(SignalKind::interrupt(), "SIGINT");
    let mut term = listen(SignalKind::terminate(), "SIGTERM");
    let mut hup = listen(SignalKind::hangup(), "SIGHUP");
    async fn next(stream: &mut Option<tokio::signal::unix::Signal>) {
        match stream {
            Some(stream) => {
                stream.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    tokio::select! {
        () = next(&mut int) => Stop { name: "SIGINT", number: 2 },
        () = next(&mut term) => Stop { name: "SIGTERM", number: 15 },
        () = next(&mut hup) => Stop { name: "SIGHUP", number: 1 },
    }
}

/// The run was cancelled by a signal: its process group is gone, nothing was recorded.
fn interrupted(global: &GlobalArgs, stop: Stop) -> Result<ExitCode, CliError> {
    let message = format!(
        "interrupted by {}: the test run was stopped and its processes killed; no evidence was \
         recorded",
        stop.name
    );
    eprintln!("warden: {message}");
    if global.json {
        print_json(&serde_json::json!({ "error": message }))?;
    }
    Ok(ExitCode::from(128 + stop.number))
}
