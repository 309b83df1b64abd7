//! Runs an authorised pytest command with a hard deadline, a fixed memory bound and exact result
//! parsing.
//!
//! The executor's one job: given an [`Authorized`](warden_governance_api::Authorized)
//! permission (only the policy can make one, so nothing runs without a decision), run
//! `python -m pytest` on what it names and return complete [`RunEvidence`]. A run never fails
//! with an error: a missing interpreter, a crash, a timeout are all evidence, told apart by
//! [`RunOutcome`].
//!
//! - **Command** ([`PytestRunner`]): pytest as `python -P -c BOOTSTRAP` (like `python -m
//!   pytest`, but nothing at the root can stand in for pytest or the standard library; see
//!   `invocation`), in the root, stdin from `/dev/null`,
//!   the allowed extra arguments, then Warden's own options (which win): `--rootdir=<root>`,
//!   `--config-file` and `--confcutdir` (configuration and conftests come from inside the root
//!   only), `-p no:cacheprovider`, `-o addopts=` (a project's ini cannot smuggle in options the
//!   policy refuses; the `addopts` items the policy checked and kept are passed explicitly,
//!   first, where pytest itself would put them), `--color=no -ra -v`,
//!   then `--` and the targets. The environment is an allowlist (`PATH`, `HOME`, `LANG`, `LC_*`,
//!   `TMPDIR`, the policy's `env_allow`); names that inject code or options (`PYTHON*`,
//!   `PYTEST_*`, `LD_*`, ...) never pass, and no bytecode is written into the tree: with
//!   [`PytestRunner::with_bytecode_cache`] it goes to a cache outside it, where Warden deletes
//!   any module whose source may have changed before each run (the tree's own `__pycache__`
//!   is then never read either); without, none is written.
//! - **Deadline and process tree**: the child leads its own process group. At the deadline the
//!   group gets SIGINT (so pytest reports the tests that ran before the hang), SIGTERM three
//!   quarters of the way through the policy's grace period, and SIGKILL at its end. When the main process
//!   has exited, anything left in the group, or marked as the run's outside it (it left the
//!   group with `setsid`), is killed and reported in [`RunEvidence::leaked_processes`]; pipes
//!   held open by a process Warden cannot reach are abandoned after a short drain deadline.
//!   Dropping the future kills the group too. A [`MissionBudget`] caps the mission's
//!   cumulative test time: no run is granted a deadline past it.
//! - **Output**: each stream is read in fixed chunks into a bounded head+tail capture (the
//!   policy's cap, most of it for the tail) with a visible omission marker, UTF-8-safe cuts,
//!   and the total size and SHA-256 of the whole stream. Memory stays flat however much a test
//!   prints.
//! - **Results**: parsed from the whole stream as it flows ([`lines::LineParser`]) and from
//!   the records Warden's plugin in the pytest process writes, one per report, into a private
//!   temporary directory (read within fixed bounds and a deadline; node ids and messages kept
//!   are bounded in bytes), merged per node id and cross-checked with pytest's final counts
//!   line. A run that exited 0 is [`RunOutcome::Passed`] only when it is complete (every
//!   collected test reported, the counts line printed, the records read to the session's
//!   end); else it is
//!   [`RunOutcome::Interrupted`], with a diagnostic naming what is missing. Collection errors (syntax errors told apart), broken
//!   conftests and empty runs are recognised; on a timeout the running test is named.
//!
//! Known gap: a process that leaves the process group *and* replaces its environment escapes
//! both nets (it would take a cgroup or PID namespace to contain it). If it holds the output
//! pipes, the evidence says so ([`RunEvidence::output_complete`] is `false`).
//!
//! ```
//! use std::time::Duration;
//! use warden_executor::{MissionBudget, PytestRunner, RunOutcome, Runner};
//! use warden_governance_api::{Policy, Root, ToolRequest, Verdict};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir_all(dir.path().join("runtime/tests"))?;
//! let root = Root::new(dir.path())?;
//! let request = ToolRequest::pytest_run("runtime/tests", ["-x"]);
//! let Verdict::Allowed(auth) = Policy::builtin().authorize(&root, &request) else {
//!     panic!("the built-in policy allows runtime/tests");
//! };
//!
//! // An interpreter that does not exist: the run cannot start, and says what to do.
//! let runner = PytestRunner::new().with_python("/nonexistent/python3");
//! let mut budget = MissionBudget::from_limits(auth.limits());
//! let evidence = budget.run(&runner, &auth).await?;
//! assert_eq!(evidence.outcome, RunOutcome::Infrastructure);
//! assert!(evidence.diagnostics[0].contains("was not found"));
//!
//! // A caller can shorten the policy's deadline, never extend it.
//! let evidence = runner.run(&auth, Duration::from_secs(86_400)).await;
//! assert_eq!(evidence.deadline_ms, 300_000);
//! # Ok(())
//! # }
//! ```

mod budget;
mod bytecode;
mod capture;
mod confine;
mod evidence;
mod execute;
mod gate;
mod hygiene;
mod interpreter;
mod invocation;
pub mod lines;
mod precompile;
mod process;
mod progress;
mod records;
mod results;
mod runner;
mod scratch;

pub use budget::{BudgetExhausted, MissionBudget};
pub use evidence::{CollectionError, LeakedProcess, ResultsSource, RunEvidence, RunOutcome};
pub use gate::{GateKey, RunEnded, StartGate};
pub use hygiene::{close_inherited_descriptors, harden_process};
pub use interpreter::{DEFAULT_PYTHON, PYTHON_ENV_VAR};
pub use progress::Progress;
pub use runner::{PytestRunner, Runner};
/// What the sandbox had in force for a run (see [`RunEvidence::sandbox`]).
pub use warden_sandbox::Status as SandboxStatus;
