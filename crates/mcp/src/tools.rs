//! The tools themselves, without a transport: [`Warden`] answers each call with a
//! [`ToolOutput`], and the server (or a test) decides how to deliver it.
//!
//! Every call loads the root and the policy afresh (as every `warden` invocation does), so a
//! policy edited or rolled back between calls applies to the next call. `verify` calls take
//! turns on one lock: they share the ledger, the bytecode cache and the tree they fingerprint,
//! and a second run would otherwise race the first. The lock is fair, so queued calls run in
//! the order they arrived. `check`, `policy`, `classify` and `ledger_stats` write nothing and
//! never wait for a run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, watch};
use tokio_util::sync::CancellationToken;
use warden_build_mission::{
    History, LedgerError, Mission, MissionError, VerifyRequest, load_governance,
};
use warden_classifier::classify_report;
use warden_executor::Progress;
use warden_governance_api::{Policy, RequestArgs, Root, ToolRequest, Verdict};

use crate::params::{CheckParams, ClassifyParams, VerifyParams};
use crate::summary;

/// What a tool call answers: structured content, a short text for people and models that read
/// only text, and whether the tool could not do its job (a failing test suite is not that).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// The structured content (for `verify`, the contract's verify document).
    pub structured: Value,
    /// A short human summary.
    pub summary: String,
    /// The tool could not give its answer (a policy that does not load, a damaged ledger, a
    /// cancelled run); findings about the tests are never errors.
    pub is_error: bool,
}

impl ToolOutput {
    fn ok(structured: Value, summary: String) -> ToolOutput {
        ToolOutput {
            structured,
            summary,
            is_error: false,
        }
    }

    fn error(message: String) -> ToolOutput {
        ToolOutput {
            structured: json!({ "error": message }),
            summary: format!("error: {message}"),
            is_error: true,
        }
    }
}

/// A progress report of a running `verify`, for `notifications/progress`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunProgress {
    /// Tests finished over all attempts so far; never decreases (the notification's
    /// `progress`).
    pub done: u64,
    /// Tests finished in the current attempt.
    pub finished: u64,
    /// Tests the current attempt collected, once pytest said so.
    pub collected: Option<u64>,
    /// Failures in the current attempt so far.
    pub failures: u64,
    /// The attempt (1 for the first run, 2 and on for reruns of failed tests).
    pub attempt: u32,
    /// The test running now, if pytest has named it.
    pub running: Option<String>,
}

impl RunProgress {
    /// One line for the notification's `message`.
    pub fn message(&self) -> String {
        let done = match self.collected {
            Some(collected) => format!("{}/{collected} tests done", self.finished),
            None => format!("{} tests done", self.finished),
        };
        let rerun = if self.attempt > 1 {
            format!("rerun {} of the failed tests: ", self.attempt - 1)
        } else {
            String::new()
        };
        let running = self
            .running
            .as_deref()
            .map(|t| format!(", running {t}"))
            .unwrap_or_default();
        format!("{rerun}{done}, {} failed{running}", self.failures)
    }
}

/// How often progress is reported at most while tests stream in.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Warden's tools on one root under one policy choice.
#[derive(Debug)]
pub struct Warden {
    root: PathBuf,
    policy: Option<PathBuf>,
    python: Option<String>,
    /// The program that confines runs (see [`Warden::with_sandbox_launcher`]).
    sandbox_launcher: Option<PathBuf>,
    /// `verify` calls take turns (see the module documentation).
    runs: Mutex<()>,
}

impl Warden {
    /// Tools on `root` under `policy` (else `warden.toml` in the root, else the built-in
    /// policy), as `warden --root ROOT [--policy FILE]` would use them.
    pub fn new(root: impl Into<PathBuf>, policy: Option<PathBuf>) -> Warden {
        Warden {
            root: root.into(),
            policy,
            python: None,
            sandbox_launcher: None,
            runs: Mutex::new(()),
        }
    }

    /// Runs pytest with this interpreter unless the policy names one (default: `WARDEN_PYTHON`,
    /// else `python3`).
    pub fn with_python(mut self, python: Option<String>) -> Warden {
        self.python = python;
        self
    }

    /// Confines runs with the sandbox the policy's `[sandbox]` asks for, through the helper
    /// program `launcher` (the `warden` binary, which `warden mcp` passes as itself, as
    /// `warden verify` does). Without one, runs are not confined and their reports have no
    /// `sandbox` object: only for tests and embedders that confine runs otherwise.
    pub fn with_sandbox_launcher(mut self, launcher: Option<PathBuf>) -> Warden {
        self.sandbox_launcher = launcher;
        self
    }

    fn governance(&self) -> Result<(Root, Policy), String> {
        load_governance(&self.root, self.policy.as_deref()).map_err(|e| e.to_string())
    }

    /// `verify`: decide, run, rerun failures, classify, record; as `warden verify --json`.
    ///
    /// Progress goes to `progress` (if given) while tests run. When `cancel` fires, the run's
    /// whole process group is killed and nothing is recorded, as with Ctrl-C on the command
    /// line; the answer then says so.
    pub async fn verify(
        &self,
        params: VerifyParams,
        progress: Option<mpsc::UnboundedSender<RunProgress>>,
        cancel: CancellationToken,
    ) -> ToolOutput {
        tokio::select! {
            // Dropping the verification (the other branch) kills the run's process group
            // before the drop returns, and a dropped verification appends nothing.
            output = self.verify_in_turn(params, progress) => output,
            () = cancel.cancelled() => {
                tracing::info!("verify cancelled: the run was stopped and nothing recorded");
                ToolOutput::error(
                    "cancelled: the test run was stopped and its processes killed; no evidence \
                     was recorded"
                        .to_owned(),
                )
            }
        }
    }

    async fn verify_in_turn(
        &self,
        params: VerifyParams,
        progress: Option<mpsc::UnboundedSender<RunProgress>>,
    ) -> ToolOutput {
        let timeout = match params.timeout_secs {
            None => None,
            Some(secs) if secs.is_finite() && secs > 0.0 => {
                match Duration::try_from_secs_f64(secs) {
                    Ok(d) => Some(d),
                    Err(e) => return ToolOutput::error(format!("timeout_secs {secs}: {e}")),
                }
            }
            Some(secs) => {
                return ToolOutput::error(format!(
                    "timeout_secs must be a positive number of seconds, not {secs}"
                ));
            }
        };
        let _turn = self.runs.lock().await;
        let (root, policy) = match self.governance() {
            Ok(governance) => governance,
            Err(e) => return ToolOutput::error(e),
        };
        // The project's ledger is history too: a test that passed there on the same code is a
        // flake. A damaged ledger stops the call before anything runs.
        let ledger = Mission::ledger_for(&root);
        let history = match History::open(&[], Some(&ledger)) {
            Ok(history) => history,
            Err(e) => return ToolOutput::error(e.to_string()),
        };
        let history_problem = history.problem();
        let mut runner = Mission::runner_for(&root);
        if let Some(python) = &self.python {
            runner = runner.with_python(python.clone());
        }
        if let Some(launcher) = &self.sandbox_launcher {
            runner = runner.with_sandbox_launcher(launcher.clone());
        }
        let watch = runner.progress();
        let mut mission = Mission::new(root, policy)
            .with_runner(Arc::new(runner))
            .with_mission_id(params.mission.clone());
        let request = VerifyRequest {
            target: params.target.clone(),
            extra_args: params.pytest_args.clone(),
            timeout,
            retries: params.retries,
        };
        let finished = match progress {
            Some(sink) => {
                tokio::select! {
                    finished = mission.verify(&request, history) => finished,
                    never = forward_progress(watch, sink) => match never {},
                }
            }
            None => mission.verify(&request, history).await,
        };
        let mut verification = match finished {
            Ok(verification) => verification,
            Err(MissionError::Ledger { report, source }) => {
                return unrecorded(&report, &source);
            }
            Err(e) => return ToolOutput::error(e.to_string()),
        };
        if let Some(problem) = history_problem.take() {
            verification.notes.push(format!(
                "part of the history could not be read ({problem}); the classification used \
                 what was read"
            ));
        }
        let text = summary::verify(&verification);
        match serde_json::to_value(&verification.report) {
            Ok(report) => ToolOutput::ok(report, text),
            Err(e) => ToolOutput::error(format!("cannot encode the report: {e}")),
        }
    }

    /// `check`: the policy's decision on one request, as `warden check --json`.
    pub fn check(&self, params: CheckParams) -> ToolOutput {
        let (root, policy) = match self.governance() {
            Ok(governance) => governance,
            Err(e) => return ToolOutput::error(e),
        };
        let request = ToolRequest {
            tool: params.tool.unwrap_or_else(|| "pytest".to_owned()),
            action: params.action.unwrap_or_else(|| "run".to_owned()),
            args: RequestArgs {
                target: params.target,
                extra_args: params.args,
            },
        };
        let verdict = policy.authorize(&root, &request);
        let resolved_target = match &verdict {
            Verdict::Allowed(authorized) => authorized.targets().first().cloned(),
            Verdict::Denied(_) => None,
        };
        let decision = verdict.decision();
        let output = CheckOutput {
            allowed: decision.allowed,
            reason: decision.reason.clone(),
            matched_rules: decision.matched_rules.clone(),
            tool: request.tool.clone(),
            action: request.action.clone(),
            target: request.args.target.clone(),
            resolved_target,
        };
        let text = format!(
            "{}: {}/{} {}: {}",
            if output.allowed { "allowed" } else { "denied" },
            output.tool,
            output.action,
            output.target.as_deref().unwrap_or("(no target)"),
            output.reason
        );
        encode(&output, text)
    }

    /// `policy`: the effective policy (limits, `[pytest]` settings, rules with their scopes),
    /// with where each setting came from, as `warden policy --json`.
    pub fn policy(&self) -> ToolOutput {
        let (_root, policy) = match self.governance() {
            Ok(governance) => governance,
            Err(e) => return ToolOutput::error(e),
        };
        let effective = policy.effective();
        encode(&effective, effective.to_toml())
    }

    /// `ledger_stats`: the success metrics of the project's ledger, as `warden ledger stats
    /// --json .warden/ledger.jsonl`.
    pub fn ledger_stats(&self) -> ToolOutput {
        let (root, _policy) = match self.governance() {
            Ok(governance) => governance,
            Err(e) => return ToolOutput::error(e),
        };
        let ledger = Mission::ledger_for(&root);
        match ledger.stats() {
            Ok(stats) => {
                let rate = |r: Option<f64>| {
                    r.map_or_else(|| "n/a".to_owned(), |r| format!("{:.0}%", r * 100.0))
                };
                let text = format!(
                    "{} runs in the ledger, pass rate {}, flake rate {}, timeout rate {}",
                    stats.runs,
                    rate(stats.pass_rate),
                    rate(stats.flake_rate),
                    rate(stats.timeout_rate)
                );
                encode(&stats, text)
            }
            Err(e) => ToolOutput::error(format!("no statistics: {e}")),
        }
    }

    /// `classify`: one ledger record (the latest unless `seq` names one) classified again,
    /// with the whole ledger as history, as `warden classify` does for a stored result.
    pub fn classify(&self, params: ClassifyParams) -> ToolOutput {
        let (root, _policy) = match self.governance() {
            Ok(governance) => governance,
            Err(e) => return ToolOutput::error(e),
        };
        let ledger = Mission::ledger_for(&root);
        let found = (|| -> Result<Option<warden_build_mission::LedgerEntry>, LedgerError> {
            let mut found = None;
            for entry in ledger.entries()? {
                let entry = entry?;
                match params.seq {
                    Some(seq) if entry.seq == seq => return Ok(Some(entry)),
                    Some(_) => {}
                    None => found = Some(entry),
                }
            }
            Ok(found)
        })();
        let entry = match found {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                return ToolOutput::error(match params.seq {
                    Some(seq) => format!("the ledger has no record {seq}"),
                    None => "the ledger has no records yet: run `verify` first".to_owned(),
                });
            }
            Err(e) => return ToolOutput::error(e.to_string()),
        };
        let history = match History::open(&[], Some(&ledger)) {
            Ok(history) => history,
            Err(e) => return ToolOutput::error(e.to_string()),
        };
        let problem = history.problem();
        let classification = classify_report(&entry.report, history);
        if let Some(problem) = problem.take() {
            return ToolOutput::error(format!(
                "the history could not be read to the end: {problem}"
            ));
        }
        let output = ClassifyOutput {
            seq: entry.seq,
            failure_class: classification.failure_class.map(|c| c.as_str().to_owned()),
            flaky_tests: classification.flaky_tests,
            retry_context: classification.retry_context,
        };
        let text = match (&output.failure_class, &output.retry_context) {
            (Some(class), Some(context)) => {
                format!("record {}: {class}. {}", output.seq, context.suggestion)
            }
            (Some(class), None) => format!("record {}: {class}", output.seq),
            (None, _) => format!("record {}: passed", output.seq),
        };
        encode(&output, text)
    }
}

/// The contract's answer of `check`.
#[derive(Debug, Serialize)]
struct CheckOutput {
    allowed: bool,
    reason: String,
    matched_rules: Vec<String>,
    tool: String,
    action: String,
    target: Option<String>,
    resolved_target: Option<String>,
}

/// `classify`'s answer: `warden classify`'s document with the record it is about.
#[derive(Debug, Serialize)]
struct ClassifyOutput {
    seq: u64,
    failure_class: Option<String>,
    flaky_tests: Vec<String>,
    retry_context: Option<warden_taxonomy::RetryContext>,
}

fn encode<T: Serialize>(value: &T, summary: String) -> ToolOutput {
    match serde_json::to_value(value) {
        Ok(structured) => ToolOutput::ok(structured, summary),
        Err(e) => ToolOutput::error(format!("cannot encode the answer: {e}")),
    }
}

/// The tests ran but their evidence could not be appended: the report is still handed out
/// (nothing is lost), marked as an error, since the evidence guarantee failed.
fn unrecorded(report: &warden_taxonomy::VerifyReport, source: &LedgerError) -> ToolOutput {
    let structured = serde_json::to_value(report).unwrap_or(Value::Null);
    ToolOutput {
        structured,
        summary: format!(
            "error: the verification finished ({}) but its evidence could not be recorded: \
             {source}",
            report.status
        ),
        is_error: true,
    }
}

/// Turns the runner's progress snapshots into [`RunProgress`] reports: a new attempt at once,
/// then at most one report per [`PROGRESS_EVERY`], the latest state always sent in the end
/// (a test that hangs is named even if it started right after a report). Never returns: the
/// verification it runs beside decides when it ends.
async fn forward_progress(
    mut watch: watch::Receiver<Progress>,
    sink: mpsc::UnboundedSender<RunProgress>,
) -> std::convert::Infallible {
    let mut base = 0;
    let mut last_finished = 0;
    let mut started = None;
    let mut attempt = 0;
    let mut sent_at: Option<tokio::time::Instant> = None;
    let mut unsent: Option<RunProgress> = None;
    let mut open = true;
    loop {
        let due = unsent
            .as_ref()
            .map(|_| sent_at.map_or_else(tokio::time::Instant::now, |at| at + PROGRESS_EVERY));
        tokio::select! {
            changed = watch.changed(), if open => {
                if changed.is_err() {
                    open = false;
                    continue;
                }
                let snapshot = watch.borrow_and_update().clone();
                if snapshot.started.is_none() {
                    continue;
                }
                let new_attempt = snapshot.started != started;
                if new_attempt {
                    started = snapshot.started;
                    attempt += 1;
                    base += last_finished;
                }
                last_finished = snapshot.finished;
                let report = RunProgress {
                    done: base + snapshot.finished,
                    finished: snapshot.finished,
                    collected: snapshot.collected,
                    failures: snapshot.failures,
                    attempt,
                    running: snapshot.current_test.clone(),
                };
                if new_attempt {
                    let _ = sink.send(report);
                    sent_at = Some(tokio::time::Instant::now());
                    unsent = None;
                } else {
                    unsent = Some(report);
                }
            }
            () = sleep_until(due), if due.is_some() => {
                if let Some(report) = unsent.take() {
                    let _ = sink.send(report);
                    sent_at = Some(tokio::time::Instant::now());
                }
            }
            () = std::future::pending::<()>(), if !open && due.is_none() => {}
        }
    }
}

async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

impl Warden {
    /// Resolves once no `verify` is running or queued (the shutdown waits for it).
    pub async fn idle(&self) {
        drop(self.runs.lock().await);
    }
}
