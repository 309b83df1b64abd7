//! The `verify` orchestration: policy, budget, the governed run, reruns of failed tests,
//! classification, report and evidence.
//!
//! # What one verification does
//!
//! 1. **Policy.** The request goes through the facade (`policy.authorize`). A denial is a
//!    complete report (`denied`, `policy_denied`, the decision with its reason and rules, no
//!    resolved target, no attempts, empty streams, a retry context) appended to the ledger;
//!    nothing runs.
//! 2. **Limits.** [`VerifyRequest::timeout`] and [`VerifyRequest::retries`] may only lower the
//!    policy's `timeout` and `retries` (a request above is clamped, with a warning and a note).
//! 3. **Budget.** The mission's cumulative test time (policy `budget`, default 600 s). With a
//!    mission id ([`Mission::with_mission_id`]) the time already spent is read from the ledger
//!    (every attempt of every record with that id, streamed) on the first verification, so the
//!    budget holds across processes (a ledger that cannot be read then is
//!    [`MissionError::Budget`], and nothing runs); without one, each verification is a mission
//!    of its own.
//!    When less than [`MissionBudget::MIN_GRANT`] is left the run is refused before it starts
//!    (`denied`, `budget_exhausted`, exit 3), and no run is granted a deadline past what is left.
//! 4. **The run**, with the granted deadline, after fingerprinting the working tree: the run
//!    prepares (its sandbox, the bytecode cache) while the tree is fingerprinted, and its
//!    tests start only once the fingerprint is taken (a [`StartGate`]).
//! 5. **Reruns** of only the failed test ids (narrowed through the policy), up to `retries`
//!    times, each rerunning *every* test that failed in the first attempt, so a test failing on
//!    every attempt is observed as such; they stop as soon as each of those tests has passed
//!    once (nothing is left to learn). There are no reruns after a timeout, a collection or
//!    usage error, a crash, an interruption, an infrastructure failure or no tests (a rerun
//!    would not tell a flake from anything), when more than [`MAX_RERUN_TESTS`] tests failed (a
//!    broad failure is not a flake, and rerunning it spends budget to say nothing), when the
//!    tree could not be fingerprinted (a rerun's pass could not be tied to the same code), or
//!    when the policy refuses the narrowed rerun. A rerun the budget cannot pay for is skipped,
//!    and a rerun that ends other than passed or failed stops the reruns. Every skip is a note
//!    ([`Verification::notes`]) and a log event, never a failure.
//! 6. **Same code.** The tree is fingerprinted again after the last attempt (when that is the
//!    first, as soon as its processes are gone, while the run reads what they left). If it
//!    changed, the tests did not all see one tree: the report's fingerprint is `null` (so
//!    neither history nor this record can prove a flake later). If only files that are
//!    neither code nor configuration changed (state the tests wrote, see [`changes`]), the
//!    reruns still ran the same code and their passes are flakes, whose retry context names
//!    the files; if code or configuration changed, rerun passes are not flake evidence, and the
//!    retry context says that a test passed only on other code.
//! 7. **Classification** of the first attempt's evidence, the reruns and the caller's history
//!    (streamed, read only now and only if it matters), and the report: counts, tests and
//!    streams of the first attempt, every attempt's summary, duration of the whole verification.
//! 8. **Evidence.** One ledger record per verification, denials included, with the mission id.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument as _;
use warden_classifier::{Gate, HistoryRun, Observation, TreeChange, classify};
use warden_executor::{MissionBudget, PytestRunner, RunEvidence, RunOutcome, Runner, StartGate};
use warden_governance_api::{Authorized, Policy, Root, ToolRequest, Verdict};
use warden_rootfs::Dir;
use warden_taxonomy::{TestOutcome, VerifyReport};

use crate::changes;
use crate::fingerprint::{FingerprintOptions, Manifest, fingerprint_with_manifest};
use crate::ledger::{DEFAULT_LEDGER_PATH, Ledger, LedgerEntry, LedgerError};
use crate::report::{self, Facts, exit_code_for};
use crate::warden_dir;

/// Above this many failing tests a first attempt is not rerun: so broad a failure is not a
/// flake, and rerunning it would spend budget to say nothing.
pub const MAX_RERUN_TESTS: usize = 20;

/// What an agent asks `verify` to do: the contract's `warden verify TARGET [--timeout SECS]
/// [--retries N] [-- PYTEST_ARGS...]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyRequest {
    /// The pytest target (a path or node id), relative to the root.
    pub target: String,
    /// Extra pytest arguments, checked against the policy's allowlist.
    pub extra_args: Vec<String>,
    /// A shorter per-run deadline than the policy's; a longer one is clamped to the policy's.
    pub timeout: Option<Duration>,
    /// Fewer reruns of failed tests than the policy's `retries`; more are clamped to it.
    pub retries: Option<u32>,
}

impl VerifyRequest {
    /// A request for `target` with the policy's limits and no extra arguments.
    pub fn new(target: impl Into<String>) -> VerifyRequest {
        VerifyRequest {
            target: target.into(),
            ..VerifyRequest::default()
        }
    }
}

/// The result of one verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The contract's `verify` document.
    pub report: VerifyReport,
    /// The evidence of every attempt, in order (empty when nothing ran).
    pub attempts: Vec<RunEvidence>,
    /// The ledger record appended for it (`None` without a ledger).
    pub ledger_entry: Option<LedgerEntry>,
    /// What the mission decided along the way that the report has no field for: a clamped
    /// timeout, reruns skipped and why, a working tree that changed during the run.
    pub notes: Vec<String>,
}

impl Verification {
    /// The contract's exit code: 0 passed, 1 failed, 3 denied (policy or budget), 4 timeout,
    /// 5 infrastructure.
    pub fn exit_code(&self) -> i32 {
        exit_code_for(&self.report)
    }
}

/// Why a verification could not be completed as asked. Findings about the tests are never
/// errors; they are in the report.
#[derive(Debug, thiserror::Error)]
pub enum MissionError {
    /// The verification is complete but its evidence record could not be appended. The report
    /// is kept here so nothing is lost; the caller decides whether to use it.
    #[error(
        "the verification finished ({}) but its evidence could not be appended to the ledger: \
         {source}",
        report.status
    )]
    Ledger {
        /// The finished verification's report.
        report: Box<VerifyReport>,
        /// Why the append failed.
        #[source]
        source: LedgerError,
    },
    /// The mission's spent budget could not be read from the ledger, so nothing ran: running
    /// without knowing what is left could overspend it.
    #[error(
        "cannot tell how much of mission `{mission}`'s test-time budget is spent, so nothing ran: \
         {source}"
    )]
    Budget {
        /// The mission id.
        mission: String,
        /// Why the ledger could not be read.
        #[source]
        source: LedgerError,
    },
}

impl MissionError {
    /// The finished verification's report, when the failure came after it.
    pub fn report(&self) -> Option<&VerifyReport> {
        match self {
            MissionError::Ledger { report, .. } => Some(report),
            MissionError::Budget { .. } => None,
        }
    }
}

/// A mission: verifications of one repository under one policy, sharing a test-time budget and
/// an evidence ledger. See the [module documentation](self) for what a verification does.
pub struct Mission {
    root: Root,
    policy: Policy,
    runner: Arc<dyn Runner>,
    budget: MissionBudget,
    ledger: Option<Ledger>,
    mission_id: Option<String>,
    /// The budget already holds what the ledger says the mission spent.
    restored: bool,
}

impl fmt::Debug for Mission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mission")
            .field("root", &self.root)
            .field("policy", &self.policy.origin())
            .field("budget", &self.budget)
            .field("ledger", &self.ledger)
            .field("mission_id", &self.mission_id)
            .finish_non_exhaustive()
    }
}

/// Where a mission's runner keeps Python's bytecode, under the root (Warden's own directory,
/// which the fingerprint leaves out and the built-in policy protects from writes).
pub const BYTECODE_CACHE_PATH: &str = ".warden/pycache";

impl Mission {
    /// The real runner as a mission uses it: bytecode cached in [`BYTECODE_CACHE_PATH`] under
    /// `root` (see [`PytestRunner::with_bytecode_cache`]), so an unchanged module is not
    /// re-compiled on every run and the tree's own `__pycache__` is never read.
    pub fn runner_for(root: &Root) -> PytestRunner {
        PytestRunner::new().with_bytecode_cache(root.path().join(BYTECODE_CACHE_PATH))
    }

    /// The ledger a mission keeps by default: [`DEFAULT_LEDGER_PATH`] beneath a handle on
    /// `root` opened now and held, so no link under the root (a `.warden` swapped for one)
    /// can send a record elsewhere. (If the root cannot be opened, every append says why.)
    pub fn ledger_for(root: &Root) -> Ledger {
        match Dir::open(root.path()) {
            Ok(dir) => Ledger::beneath(dir, DEFAULT_LEDGER_PATH),
            Err(e) => {
                tracing::warn!(error = %e, "the root cannot be opened for the ledger");
                Ledger::new(root.path().as_std_path().join(DEFAULT_LEDGER_PATH))
            }
        }
    }

    /// A mission on `root` under `policy`: the real runner ([`Mission::runner_for`]), the
    /// policy's budget, and the ledger at `.warden/ledger.jsonl` under the root.
    pub fn new(root: Root, policy: Policy) -> Mission {
        let ledger = Mission::ledger_for(&root);
        Mission {
            budget: MissionBudget::from_limits(policy.limits()),
            runner: Arc::new(Mission::runner_for(&root)),
            root,
            policy,
            ledger: Some(ledger),
            mission_id: None,
            restored: false,
        }
    }

    /// Runs tests with `runner` instead (a configured [`PytestRunner`], or another service).
    pub fn with_runner(self, runner: Arc<dyn Runner>) -> Mission {
        Mission { runner, ..self }
    }

    /// Keeps evidence in `ledger`; `None` keeps none (`--no-ledger`).
    pub fn with_ledger(self, ledger: Option<Ledger>) -> Mission {
        Mission {
            ledger,
            restored: false,
            ..self
        }
    }

    /// Makes verifications parts of the mission `id`: they share one budget, and the time
    /// earlier verifications of `id` spent (as the ledger records it, across processes) counts
    /// against it. `None`: each verification is a mission of its own.
    pub fn with_mission_id(self, id: Option<String>) -> Mission {
        Mission {
            budget: MissionBudget::from_limits(self.policy.limits()),
            mission_id: id,
            restored: false,
            ..self
        }
    }

    /// The repository root.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The mission's budget as it stands (for a mission id, restored from the ledger by the
    /// first verification).
    pub fn budget(&self) -> &MissionBudget {
        &self.budget
    }

    /// The evidence ledger, if one is kept.
    pub fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
    }

    /// The mission id, if one was given.
    pub fn mission_id(&self) -> Option<&str> {
        self.mission_id.as_deref()
    }

    /// Verifies `request`: see the [module documentation](self).
    ///
    /// `history` (earlier runs, e.g. [`Ledger::lazy_history`]) is read only after the runs, and
    /// only when the verdict comes down to flake versus failure; it is streamed, so memory does
    /// not grow with its length. An iterator that holds a ledger's lock (such as
    /// [`Ledger::history`]) holds it for the whole verification: prefer a lazy one.
    pub async fn verify<H>(
        &mut self,
        request: &VerifyRequest,
        history: H,
    ) -> Result<Verification, MissionError>
    where
        H: IntoIterator<Item = HistoryRun> + Send + 'static,
        H::IntoIter: Send,
    {
        let span = tracing::info_span!(
            "verify",
            target = %request.target,
            mission = self.mission_id.as_deref().unwrap_or("-"),
        );
        self.verify_in_span(request, history).instrument(span).await
    }

    async fn verify_in_span<H>(
        &mut self,
        request: &VerifyRequest,
        history: H,
    ) -> Result<Verification, MissionError>
    where
        H: IntoIterator<Item = HistoryRun> + Send + 'static,
        H::IntoIter: Send,
    {
        let started = Instant::now();
        let mut notes = Vec::new();

        let tool_request =
            ToolRequest::pytest_run(request.target.clone(), request.extra_args.clone());
        let auth = match self.policy.authorize(&self.root, &tool_request) {
            Verdict::Allowed(auth) => auth,
            Verdict::Denied(decision) => {
                // Release whatever the history holds before the ledger is written.
                drop(history);
                tracing::info!(
                    reason = %decision.reason,
                    rules = ?decision.matched_rules,
                    "denied by policy; nothing runs"
                );
                let observation = Observation {
                    gate: Gate::PolicyDenied,
                    diagnostics: vec![decision.reason.clone()],
                    ..Observation::default()
                };
                let report = report::refused(
                    Facts {
                        target: &request.target,
                        decision: decision.record(),
                        resolved_target: None,
                        fingerprint: None,
                        duration_ms: millis(started.elapsed()),
                        interpreter: None,
                    },
                    classify(&observation, std::iter::empty::<HistoryRun>()),
                );
                return self.finish(report, Vec::new(), notes).await;
            }
        };
        tracing::info!(
            targets = ?auth.targets(),
            rules = ?auth.decision().matched_rules,
            "allowed by policy"
        );
        // Only a run needs the budget (a denial is reported whatever the ledger holds).
        self.prepare_budget().await?;
        // Warden's own directory, with its `.gitignore`, before the bytecode cache makes it bare.
        if let Err(e) = Dir::open(self.root.path()).and_then(|root| warden_dir::ensure(&root)) {
            tracing::warn!(error = %e, "Warden's directory cannot be used");
        }

        let limits = auth.limits();
        let timeout = clamp("timeout", request.timeout, limits.timeout, &mut notes);
        let retries = clamp("retries", request.retries, limits.retries, &mut notes);
        let resolved_target = auth.targets().first().cloned();

        let deadline = match self.budget.grant(timeout) {
            Ok(deadline) => deadline,
            Err(exhausted) => {
                drop(history);
                tracing::info!(%exhausted, "budget exhausted; nothing runs");
                let observation = Observation {
                    gate: Gate::BudgetExhausted,
                    diagnostics: vec![exhausted.to_string()],
                    ..Observation::default()
                };
                let report = report::refused(
                    Facts {
                        target: &request.target,
                        decision: auth.decision().record(),
                        resolved_target,
                        fingerprint: None,
                        duration_ms: millis(started.elapsed()),
                        interpreter: None,
                    },
                    classify(&observation, std::iter::empty::<HistoryRun>()),
                );
                return self.finish(report, Vec::new(), notes).await;
            }
        };
        if deadline < timeout {
            tracing::info!(
                ?deadline,
                ?timeout,
                remaining = ?self.budget.remaining(),
                "the budget left shortens the run's deadline"
            );
            notes.push(format!(
                "the run's deadline was cut from {:.1} s to the {:.1} s left of the mission's budget",
                timeout.as_secs_f64(),
                deadline.as_secs_f64()
            ));
        }

        let options = self.fingerprint_options();
        let (key, gate) = StartGate::closed();
        let (gate, ended) = gate.watched();
        let root = self.root.clone();
        let fingerprinting = async {
            let taken = take_fingerprint(&root, &options).await;
            key.open();
            taken
        };
        // Once the first attempt's processes are gone the tree is what its tests left: the
        // fingerprint after it is taken while the run still reads its results, and used when
        // no rerun follows.
        let fingerprinting_after = async {
            if ended.wait().await {
                Some(take_fingerprint(&root, &options).await)
            } else {
                None
            }
        };
        let (taken, first, after_first) = tokio::join!(
            fingerprinting,
            self.run_gated(&auth, deadline, gate),
            fingerprinting_after
        );
        let before = fingerprinted(taken, &mut notes);
        let mut attempts = vec![first];
        // Results from outside the scope (a link made and removed during the run) are a
        // policy violation: no reruns, and never a pass.
        let mut violation = self.scope_violation(&auth, &attempts).await;
        if violation.is_none() {
            let plan = Reruns {
                retries,
                timeout,
                fingerprinted: before.is_some(),
            };
            self.rerun_failed(&auth, plan, &mut attempts, &mut notes)
                .await;
            if attempts.len() > 1 {
                violation = self.scope_violation(&auth, &attempts[1..]).await;
            }
        }

        let reran = attempts.len() > 1;
        let (fingerprint, tree) = match before {
            // Without a first fingerprint there were no reruns: nothing to tie to one code.
            None => (None, TreeChange::Unchanged),
            Some((before, before_files)) => {
                let after = match after_first.filter(|_| !reran) {
                    Some(taken) => taken,
                    None => take_fingerprint(&self.root, &options).await,
                };
                match fingerprinted(after, &mut notes) {
                    Some((after, _)) if after == before => (Some(before), TreeChange::Unchanged),
                    Some((_, after_files)) => {
                        let tree = changes::tree_change(&before_files, &after_files);
                        note_tree_change(&tree, &mut notes);
                        (None, tree)
                    }
                    None if reran => (None, TreeChange::Unknown),
                    None => (None, TreeChange::Unchanged),
                }
            }
        };
        let mut observation =
            report::observation(&attempts[0], &attempts[1..], fingerprint.clone(), tree);
        let mut decision = auth.decision().record();
        if let Some(reason) = &violation {
            tracing::warn!(%reason, "results from outside the authorised scope");
            observation.gate = Gate::PolicyDenied;
            observation.diagnostics.insert(0, reason.clone());
            decision.allowed = false;
            decision.reason = reason.clone();
            notes.push(format!("policy violation after the run: {reason}"));
        }
        // History may be read from a ledger (a lock with a deadline, a file of any size): off
        // the async workers, so a signal is still heard meanwhile.
        let without_history = observation.clone();
        let classification = match tokio::task::spawn_blocking(move || {
            classify(&observation, history)
        })
        .await
        {
            Ok(classification) => classification,
            Err(e) => {
                tracing::warn!(error = %e, "classifying with history failed; classifying without");
                classify(&without_history, std::iter::empty::<HistoryRun>())
            }
        };
        tracing::info!(
            class = ?classification.failure_class,
            flaky = ?classification.flaky_tests,
            failed = classification.failed_tests.len(),
            "classified"
        );
        let report = report::ran(
            Facts {
                target: &request.target,
                decision,
                resolved_target,
                fingerprint,
                duration_ms: millis(started.elapsed()),
                interpreter: self.runner.interpreter(&auth),
            },
            &attempts,
            classification,
        );
        self.finish(report, attempts, notes).await
    }

    /// Why `attempts` reported results from outside what `auth` allows, if they did (see
    /// [`crate::scope`]). The check reads the file system: off the async workers.
    async fn scope_violation(&self, auth: &Authorized, attempts: &[RunEvidence]) -> Option<String> {
        let files = crate::scope::reported(auth, attempts);
        let (root, auth) = (self.root.clone(), auth.clone());
        tokio::task::spawn_blocking(move || crate::scope::violation(&root, &auth, &files))
            .await
            .unwrap_or_else(|e| Some(format!("the scope check failed: {e}")))
    }

    /// A fresh budget for a verification without a mission id; for a mission id, the time the
    /// ledger says it has spent, read once.
    async fn prepare_budget(&mut self) -> Result<(), MissionError> {
        let Some(id) = self.mission_id.clone() else {
            self.budget = MissionBudget::from_limits(self.policy.limits());
            return Ok(());
        };
        if self.restored {
            return Ok(());
        }
        let mut budget = MissionBudget::from_limits(self.policy.limits());
        if let Some(ledger) = self.ledger.clone() {
            // Reading the ledger waits for its lock: off the async workers.
            let key = id.clone();
            let spent = tokio::task::spawn_blocking(move || ledger.mission_spent(&key))
                .await
                .unwrap_or_else(|e| {
                    Err(LedgerError::Io {
                        action: "read",
                        path: PathBuf::new(),
                        source: std::io::Error::other(e.to_string()),
                    })
                })
                .map_err(|source| MissionError::Budget {
                    mission: id.clone(),
                    source,
                })?;
            budget.charge(spent);
            tracing::info!(
                ?spent,
                total = ?budget.total(),
                "restored the mission's spent budget from the ledger"
            );
        }
        self.budget = budget;
        self.restored = true;
        Ok(())
    }

    /// One attempt, charged to the budget.
    async fn run(&mut self, auth: &Authorized, deadline: Duration) -> RunEvidence {
        self.run_gated(auth, deadline, StartGate::open()).await
    }

    /// One attempt whose tests wait for `gate`, charged to the budget.
    async fn run_gated(
        &mut self,
        auth: &Authorized,
        deadline: Duration,
        gate: StartGate,
    ) -> RunEvidence {
        tracing::debug!(targets = ?auth.targets(), ?deadline, "starting a run");
        let evidence = self.runner.run_gated(auth, deadline, gate).await;
        self.budget.charge(evidence.duration());
        tracing::info!(
            outcome = %evidence.outcome,
            exit_code = ?evidence.exit_code,
            duration_ms = evidence.duration_ms,
            passed = evidence.counts.passed,
            failures = evidence.counts.failures(),
            budget_left = ?self.budget.remaining(),
            "run finished"
        );
        tracing::debug!(argv = ?evidence.argv, diagnostics = ?evidence.diagnostics, "run details");
        evidence
    }

    /// Reruns the first attempt's failed tests to tell flakes from failures (see the module
    /// documentation for when it does not).
    async fn rerun_failed(
        &mut self,
        auth: &Authorized,
        plan: Reruns,
        attempts: &mut Vec<RunEvidence>,
        notes: &mut Vec<String>,
    ) {
        let Reruns {
            retries,
            timeout,
            fingerprinted,
        } = plan;
        let first = &attempts[0];
        let failed = first.failed_tests();
        if retries == 0 || failed.is_empty() {
            return;
        }
        if first.outcome != RunOutcome::TestsFailed || !first.collection_errors.is_empty() {
            tracing::debug!(outcome = %first.outcome, "no reruns after this outcome");
            return;
        }
        let failures = failed.len().max(first.counts.failures() as usize);
        if failures > MAX_RERUN_TESTS {
            tracing::info!(failures, "too many failures to rerun");
            notes.push(format!(
                "no reruns: {failures} tests failed, more than the {MAX_RERUN_TESTS} worth \
                 rerunning to look for flakes"
            ));
            return;
        }
        if !fingerprinted {
            notes.push(
                "no reruns: the tree has no fingerprint, so a rerun's pass could not be tied to \
                 the same code"
                    .to_owned(),
            );
            return;
        }
        let narrowed = match auth.narrow(&failed) {
            Ok(narrowed) => narrowed,
            Err(denied) => {
                tracing::info!(reason = %denied.reason, "the policy refused the rerun");
                notes.push(format!("no reruns: {}", denied.reason));
                return;
            }
        };
        let mut unproven = failed;
        for n in 1..=retries {
            let deadline = match self.budget.grant(timeout) {
                Ok(deadline) => deadline,
                Err(exhausted) => {
                    tracing::info!(%exhausted, "rerun skipped: the budget cannot pay for it");
                    notes.push(format!("rerun {n} of {retries} skipped: {exhausted}"));
                    break;
                }
            };
            tracing::info!(
                rerun = n,
                of = retries,
                tests = unproven.len(),
                "rerunning failed tests"
            );
            let evidence = self.run(&narrowed, deadline).await;
            unproven.retain(|id| !passed(&evidence, id));
            let outcome = evidence.outcome;
            attempts.push(evidence);
            if unproven.is_empty() {
                tracing::debug!("every failed test has passed on a rerun");
                break;
            }
            if !matches!(outcome, RunOutcome::Passed | RunOutcome::TestsFailed) && n < retries {
                notes.push(format!("reruns stopped: rerun {n} ended as {outcome}"));
                break;
            }
        }
    }

    /// The fingerprint options: Warden's own directory is always left out, and so is the
    /// ledger when it lies inside the root (it changes with every verification).
    fn fingerprint_options(&self) -> FingerprintOptions {
        let mut options = FingerprintOptions::default();
        if let Some(ledger) = &self.ledger
            && let Some(inside) = within(self.root.path().as_std_path(), ledger.path())
        {
            options.exclude.push(inside);
        }
        options
    }

    /// Appends the evidence and hands out the verification.
    ///
    /// The append runs off the async workers: it waits for the ledger's lock (up to its
    /// deadline), and a signal must still end the verification meanwhile. Dropping this future
    /// then abandons the wait; an append already writing may still complete.
    async fn finish(
        &self,
        report: VerifyReport,
        attempts: Vec<RunEvidence>,
        notes: Vec<String>,
    ) -> Result<Verification, MissionError> {
        tracing::info!(
            status = %report.status,
            class = report.failure_class.map(|c| c.as_str()).unwrap_or("-"),
            attempts = attempts.len(),
            duration_ms = report.duration_ms,
            "verification finished"
        );
        let ledger_entry = match self.ledger.clone() {
            None => None,
            Some(ledger) => {
                let record = report.clone();
                let mission = self.mission_id.clone();
                let path = ledger.path().to_owned();
                let appended = tokio::task::spawn_blocking(move || {
                    ledger.append_with(&record, mission.as_deref())
                })
                .await
                .unwrap_or_else(|e| {
                    Err(LedgerError::Io {
                        action: "append to",
                        path,
                        source: std::io::Error::other(e.to_string()),
                    })
                });
                match appended {
                    Ok(entry) => {
                        tracing::debug!(seq = entry.seq, hash = %entry.hash, "evidence appended");
                        Some(entry)
                    }
                    Err(source) => {
                        tracing::warn!(%source, "the evidence could not be appended to the ledger");
                        return Err(MissionError::Ledger {
                            report: Box::new(report),
                            source,
                        });
                    }
                }
            }
        };
        Ok(Verification {
            report,
            attempts,
            ledger_entry,
            notes,
        })
    }
}

/// How the failed tests of a first attempt may be rerun.
#[derive(Debug, Clone, Copy)]
struct Reruns {
    /// At most this many reruns.
    retries: u32,
    /// Each with at most this deadline (less when the budget has less).
    timeout: Duration,
    /// The tree was fingerprinted before the first attempt.
    fingerprinted: bool,
}

/// The fingerprint of `root`'s tree and what it was computed from, or why it cannot be taken.
async fn take_fingerprint(
    root: &Root,
    options: &FingerprintOptions,
) -> Result<(String, Manifest), String> {
    let root = root.path().as_std_path().to_owned();
    let options = options.clone();
    // Hashing the tree reads files and may run git: keep it off the async workers.
    match tokio::task::spawn_blocking(move || fingerprint_with_manifest(&root, &options)).await {
        Ok(Ok(taken)) => Ok(taken),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the fingerprint task failed: {e}")),
    }
}

/// The fingerprint taken, or `None` with a warning and a note.
fn fingerprinted(
    taken: Result<(String, Manifest), String>,
    notes: &mut Vec<String>,
) -> Option<(String, Manifest)> {
    match taken {
        Ok((print, files)) => {
            tracing::debug!(fingerprint = %print, "fingerprinted the working tree");
            Some((print, files))
        }
        Err(problem) => {
            tracing::warn!(%problem, "no fingerprint; history cannot prove a flake for this run");
            notes.push(format!("no fingerprint: {problem}"));
            None
        }
    }
}

/// The request's value when it does not exceed the policy's, else the policy's (with a
/// warning and a note).
fn clamp<T>(what: &str, asked: Option<T>, policy: T, notes: &mut Vec<String>) -> T
where
    T: PartialOrd + fmt::Debug + Copy,
{
    match asked {
        Some(asked) if asked > policy => {
            tracing::warn!(
                ?asked,
                ?policy,
                "{what} above the policy's; using the policy's"
            );
            notes.push(format!(
                "{what} {asked:?} is above the policy's {policy:?}; the policy's applies"
            ));
            policy
        }
        Some(asked) => asked,
        None => policy,
    }
}

/// Says in a log event and a note how the tree changed during the verification, and what that
/// means for the reruns.
fn note_tree_change(tree: &TreeChange, notes: &mut Vec<String>) {
    match tree {
        TreeChange::StateWritten(files) => {
            tracing::info!(
                ?files,
                "the run wrote files that are neither code nor configuration"
            );
            notes.push(format!(
                "the tree changed during the verification, but only in files that are neither \
                 code nor configuration ({}): the reruns ran the same code, so their passes count \
                 as flakes; the report gets no fingerprint",
                files.join(", ")
            ));
        }
        TreeChange::CodeChanged(files) => {
            tracing::warn!(
                ?files,
                "the code changed during the verification; it gets no fingerprint, and rerun \
                 passes are not taken as flakes"
            );
            notes.push(format!(
                "the code changed during the verification ({}): no fingerprint, and rerun passes \
                 are not evidence of flakes",
                files.join(", ")
            ));
        }
        TreeChange::Unchanged | TreeChange::Unknown => {}
    }
}

/// Whether `nodeid` passed in `evidence`.
fn passed(evidence: &RunEvidence, nodeid: &str) -> bool {
    evidence
        .tests
        .iter()
        .any(|t| t.nodeid == nodeid && t.outcome == TestOutcome::Passed)
}

/// `path` relative to `root` when it lies inside it, after resolving symbolic links in the
/// part of it that exists (a ledger that does not exist yet will, after the first append).
fn within(root: &Path, path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let mut existing = absolute.as_path();
    let mut missing = Vec::new();
    let resolved = loop {
        match existing.canonicalize() {
            Ok(resolved) => break resolved,
            Err(_) => {
                missing.push(existing.file_name()?);
                existing = existing.parent()?;
            }
        }
    };
    // (`..` after a missing directory has no file name and ended the search above: such a
    // path cannot be resolved, and is not excluded.)
    let mut full = resolved;
    for part in missing.iter().rev() {
        full.push(part);
    }
    full.strip_prefix(root)
        .ok()
        .filter(|inside| !inside.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// Whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
