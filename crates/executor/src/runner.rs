//! The public entry: the [`Runner`] trait and the real runner, [`PytestRunner`].

use std::time::Duration;

use async_trait::async_trait;
use camino::Utf8PathBuf;
use tokio::sync::watch;
use warden_governance_api::Authorized;
use warden_taxonomy::InterpreterChoice;

use crate::confine::SandboxPlan;
use crate::evidence::RunEvidence;
use crate::execute::execute;
use crate::gate::{StartGate, called_off};
use crate::interpreter::{self, Env, Sources};
use crate::invocation::Invocation;
use crate::progress::Progress;

/// Something that carries out an authorised pytest run.
///
/// Services can plug in their own (a remote runner, a fake for tests of orchestration logic);
/// [`PytestRunner`] is the real one. A run never fails with an error: a missing interpreter, a
/// crash or a timeout are all [`RunEvidence`] (see [`RunOutcome`](crate::RunOutcome)).
#[async_trait]
pub trait Runner: Send + Sync {
    /// Runs what `auth` permits and returns what happened.
    ///
    /// `deadline` is the time the run may take before its process tree is stopped; it is
    /// clamped to the policy's `limits().timeout`, so a caller can only shorten it (for
    /// instance to what is left of the mission's budget, see
    /// [`MissionBudget`](crate::MissionBudget)). Pass `auth.limits().timeout` for the policy's
    /// own deadline.
    async fn run(&self, auth: &Authorized, deadline: Duration) -> RunEvidence;

    /// Runs like [`Runner::run`], but starts nothing of the code under test before `gate`
    /// opens: what the run does first (preparing its sandbox, checking the bytecode cache) may
    /// overlap with the caller's own work before the tests, such as fingerprinting the tree.
    /// The deadline counts from the gate's opening. A gate whose key is dropped unopened calls
    /// the run off. A watched gate is told when the run's processes are gone. The default
    /// waits for the gate, then runs, and tells a watched gate when the run has returned.
    async fn run_gated(
        &self,
        auth: &Authorized,
        deadline: Duration,
        mut gate: StartGate,
    ) -> RunEvidence {
        if !gate.opened().await {
            return called_off(Vec::new(), deadline);
        }
        let evidence = self.run(auth, deadline).await;
        gate.ended();
        evidence
    }

    /// The interpreter a run of `auth` uses and why, for the report; `None` when the runner
    /// cannot say (a remote runner, a fake).
    fn interpreter(&self, _auth: &Authorized) -> Option<InterpreterChoice> {
        None
    }
}

/// The real runner: `python -m pytest` as a local child process. See the
/// [crate docs](crate) for how it runs, stops and reads pytest.
///
/// The interpreter is, in order: the policy's `limits().python`, the runner's
/// [`PytestRunner::with_python`], the `WARDEN_PYTHON` environment variable, an active
/// virtualenv (`VIRTUAL_ENV`), a `.venv` or `venv` in the root, `python3` (see
/// [`PytestRunner::choose_interpreter`]). A bare name is looked up on `PATH`; a relative path
/// is taken from the root.
#[derive(Debug)]
pub struct PytestRunner {
    python: Option<String>,
    bytecode_cache: Option<Utf8PathBuf>,
    sandbox_launcher: Option<std::path::PathBuf>,
    progress: watch::Sender<Progress>,
}

impl Default for PytestRunner {
    fn default() -> Self {
        PytestRunner::new()
    }
}

impl PytestRunner {
    /// A runner with the default interpreter lookup.
    pub fn new() -> Self {
        PytestRunner {
            python: None,
            bytecode_cache: None,
            sandbox_launcher: None,
            progress: watch::Sender::new(Progress::default()),
        }
    }

    /// Uses `python` unless the policy names an interpreter (the policy wins: it is the
    /// operator's word).
    pub fn with_python(mut self, python: impl Into<String>) -> Self {
        self.python = Some(python.into());
        self
    }

    /// Keeps Python's bytecode in `dir` (an absolute directory without symbolic links, created
    /// if missing) instead of compiling every module on every run; without it nothing is
    /// cached. Bytecode is never written into the tree, `__pycache__` directories there are
    /// ignored, and cached bytecode whose source may have changed is deleted before each run,
    /// so a cached module is always the source's own (see the crate docs). One run uses the
    /// cache at a time; another that starts meanwhile runs uncached.
    pub fn with_bytecode_cache(mut self, dir: impl Into<Utf8PathBuf>) -> Self {
        self.bytecode_cache = Some(dir.into());
        self
    }

    /// Confines runs with the sandbox the policy's `[sandbox]` section asks for, through the
    /// helper program `launcher` (a binary that dispatches `warden-sandbox`'s helper when its
    /// first argument is [`warden_sandbox::HELPER_ARG`]; the `warden` binary does, so it passes
    /// `std::env::current_exe()`). Without a launcher, runs are not confined and their evidence
    /// says so (`sandbox: None`).
    pub fn with_sandbox_launcher(mut self, launcher: impl Into<std::path::PathBuf>) -> Self {
        self.sandbox_launcher = Some(launcher.into());
        self
    }

    /// Live progress of this runner's runs. Runs on one runner should not overlap if the
    /// progress is to make sense.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// The interpreter a run of `auth` uses, and why: the policy's `python`, this runner's
    /// [`PytestRunner::with_python`], `WARDEN_PYTHON`, an active `VIRTUAL_ENV`, a `.venv` or
    /// `venv` in the root, then `python3`. Explicit, Warden-specific choices come before the
    /// ambient virtualenvs; the path is never canonicalised (a venv is found by it).
    pub fn choose_interpreter(&self, auth: &Authorized) -> InterpreterChoice {
        let env = Env::current();
        interpreter::choose(&Sources::from_env(
            auth.limits().python.as_deref(),
            self.python.as_deref(),
            &env,
            auth.root(),
        ))
    }

    fn invocation(&self, auth: &Authorized, deadline: Duration) -> Invocation {
        let limits = auth.limits();
        Invocation {
            root: auth.root().to_owned(),
            targets: auth.targets().to_vec(),
            config_file: auth.config_file().map(ToOwned::to_owned),
            addopts: auth.addopts().to_vec(),
            extra_args: auth.extra_args().to_vec(),
            python: self.choose_interpreter(auth).path,
            env_allow: limits.env_allow.clone(),
            deadline: deadline.min(limits.timeout),
            grace: limits.grace,
            output_cap: limits.output_cap_bytes,
            bytecode_cache: self.bytecode_cache.clone(),
        }
    }
}

#[async_trait]
impl Runner for PytestRunner {
    async fn run(&self, auth: &Authorized, deadline: Duration) -> RunEvidence {
        self.run_gated(auth, deadline, StartGate::open()).await
    }

    async fn run_gated(
        &self,
        auth: &Authorized,
        deadline: Duration,
        gate: StartGate,
    ) -> RunEvidence {
        let inv = self.invocation(auth, deadline);
        if (auth.tool(), auth.action()) != ("pytest", "run") {
            // A permission for another tool is no permission to run tests.
            return RunEvidence::not_started(
                Vec::new(),
                inv.deadline,
                format!(
                    "the permission is for {}/{}, not pytest/run: nothing ran",
                    auth.tool(),
                    auth.action()
                ),
            );
        }
        let sandbox = self
            .sandbox_launcher
            .as_ref()
            .filter(|_| auth.limits().sandbox.mode != warden_governance_api::SandboxMode::Off)
            .map(|launcher| SandboxPlan {
                launcher: launcher.clone(),
                settings: auth.limits().sandbox.clone(),
            });
        execute(&inv, sandbox.as_ref(), &self.progress, gate).await
    }

    fn interpreter(&self, auth: &Authorized) -> Option<InterpreterChoice> {
        Some(self.choose_interpreter(auth))
    }
}
