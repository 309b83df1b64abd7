//! The spawn seam of the sandbox: wraps pytest's command line in the `warden-sandbox` helper,
//! gives the run a private temporary directory, and reads back what was in force.
//!
//! The helper is a program the caller names ([`PytestRunner::with_sandbox_launcher`]; the
//! `warden` binary names itself): the executor is a library and cannot assume which binary it
//! lives in. Without a launcher nothing is confined and the evidence says so (`sandbox: None`).
//!
//! [`PytestRunner::with_sandbox_launcher`]: crate::PytestRunner::with_sandbox_launcher

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use warden_governance_api::{SandboxMode, SandboxNetwork, SandboxSettings};
use warden_sandbox::{Config, DEVICE_WRITE, Limits, Mode, Network, SYSTEM_READ, Status};

use crate::invocation::Invocation;

/// What the runner was told to confine runs with.
#[derive(Debug, Clone)]
pub(crate) struct SandboxPlan {
    pub(crate) launcher: PathBuf,
    pub(crate) settings: SandboxSettings,
}

/// Paths in the root that always stay read-only to tests: Warden's state (ledger, bytecode
/// cache), the policy, and the repository's history.
const WARDEN_PROTECTED: &[&str] = &[".warden", "warden.toml", ".git"];

/// One confined run: its private directory (temporary files, the helper's status) and config.
pub(crate) struct Confinement {
    launcher: PathBuf,
    dir: tempfile::TempDir,
    config: Config,
}

impl Confinement {
    /// Prepares the confinement of `inv`, whose JUnit report goes into `report_dir`.
    pub(crate) fn prepare(
        plan: &SandboxPlan,
        inv: &Invocation,
        report_dir: &Path,
    ) -> Result<Confinement, String> {
        let mode = match plan.settings.mode {
            SandboxMode::Required => Mode::Required,
            SandboxMode::BestEffort => Mode::BestEffort,
            SandboxMode::Off => return Err("the sandbox is off".into()),
        };
        let dir = tempfile::Builder::new()
            .prefix("warden-sandbox-")
            .tempdir()
            .map_err(|e| format!("could not create the sandbox's private directory: {e}"))?;
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp)
            .map_err(|e| format!("could not create the run's private TMPDIR: {e}"))?;
        let root = inv.root.as_std_path().to_path_buf();
        let mut read: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
        if let Some(python) = resolve_program(&inv.program()) {
            read.extend(warden_sandbox::interpreter_trees(&python));
        }
        if let Some(cache) = &inv.bytecode_cache {
            read.push(cache.as_std_path().to_path_buf());
        }
        read.extend(plan.settings.read.iter().map(PathBuf::from));
        let mut write = vec![tmp, report_dir.to_path_buf()];
        write.extend(warden_sandbox::SYSTEM_WRITE.iter().map(PathBuf::from));
        write.extend(plan.settings.write.iter().map(PathBuf::from));
        let read_only = WARDEN_PROTECTED
            .iter()
            .map(|p| p.to_string())
            .chain(plan.settings.protected.iter().cloned())
            .filter(|p| !p.is_empty() && p != ".")
            .map(|p| root.join(p))
            .collect();
        let config = Config {
            mode,
            root,
            read,
            write,
            write_files: DEVICE_WRITE.iter().map(PathBuf::from).collect(),
            read_only,
            network: match plan.settings.network {
                SandboxNetwork::None => Network::None,
                SandboxNetwork::Loopback => Network::Loopback,
                SandboxNetwork::Host => Network::Host,
            },
            limits: Limits {
                memory_bytes: plan.settings.memory_bytes,
                processes: plan.settings.processes,
                file_size_bytes: plan.settings.file_size_bytes,
            },
            status_file: dir.path().join("status.json"),
        };
        Ok(Confinement {
            launcher: plan.launcher.clone(),
            dir,
            config,
        })
    }

    /// The helper's program and arguments running `argv` confined.
    pub(crate) fn command(&self, argv: &[String]) -> Result<(PathBuf, Vec<OsString>), String> {
        let config = serde_json::to_string(&self.config)
            .map_err(|e| format!("could not write the sandbox configuration: {e}"))?;
        let mut args: Vec<OsString> = vec![
            warden_sandbox::HELPER_ARG.into(),
            config.into(),
            "--".into(),
        ];
        args.extend(argv.iter().map(OsString::from));
        Ok((self.launcher.clone(), args))
    }

    /// The environment the confined run gets on top of the invocation's: its private
    /// temporary directory.
    pub(crate) fn environment(&self) -> Vec<(&'static str, PathBuf)> {
        let tmp = self.dir.path().join("tmp");
        ["TMPDIR", "TMP", "TEMP"]
            .into_iter()
            .map(|name| (name, tmp.clone()))
            .collect()
    }

    /// What the helper reported to have in force (`None` if it never got that far).
    pub(crate) fn status(&self) -> Option<Status> {
        let bytes = std::fs::read(&self.config.status_file).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The interpreter's path: a path as is, a bare name through `PATH`.
fn resolve_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The message for a run the sandbox refused: what is missing and how to choose.
pub(crate) fn refusal_message(reason: &str) -> String {
    format!(
        "the sandbox is required but not available: {reason}. Nothing ran. Fix the machine, or choose in warden.toml: `[sandbox] mode = \"best-effort\"` (run with what is available, the report names what is missing) or `mode = \"off\"` (no confinement)"
    )
}
